//! Streaming grouping: union-find over records linked by a shared natural id, an equal content
//! hash, or a MinHash similarity at or above the threshold among LSH candidates.
//!
//! Groups are the connected components of those links, so they do not depend on the order the
//! records arrive in (up to `lsh::MAX_CHAIN`). Each group's representative is its best member by
//! the preference (a pinned member first, then source order, then the longest text, then the
//! earliest); the others are `duplicate of` it. A split member links to nothing.

use super::lsh::Lsh;
use super::minhash::{similarity, Signature};
use super::Settings;
#[cfg(test)]
use super::DEFAULT_THRESHOLD;
use crate::record::SourceKind;
use std::collections::HashMap;

/// One record as the grouper sees it.
#[derive(Debug, Clone)]
pub struct Item {
    /// Natural-id keys (see [`super::natural_keys`]), hashed.
    pub keys: Vec<u64>,
    /// The content hash's first 8 bytes.
    pub hash: u64,
    pub source: SourceKind,
    pub text_len: u32,
    pub sig: Option<Signature>,
    /// The signature's sketch and LSH band keys (zero without a signature), made with it.
    pub sketch: Sketch,
    pub band_keys: super::lsh::BandKeys,
    /// Marked `not a duplicate`: stays alone.
    pub split: bool,
    /// Chosen as its group's representative.
    pub pinned: bool,
    /// Last tie-break between equally good representatives: the record's place in its input
    /// (file number and index), so the choice does not depend on arrival order.
    pub order: u64,
}

/// The low 2 bits of each signature value, packed: where two signatures are equal, so are
/// their sketches, so the share of equal sketch positions bounds the estimated similarity from
/// above. A candidate whose bound is under the threshold cannot reach it: dropping it changes
/// no link. Unrelated values agree on 2 bits one time in 4, so a pair at Jaccard 0.3 has a
/// bound near 0.48 and is dropped at the default 0.7.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sketch([u64; 2]);

impl Sketch {
    pub fn of(sig: &Signature) -> Sketch {
        let mut w = [0u64; 2];
        for (i, v) in sig.iter().enumerate() {
            w[i / 32] |= ((*v & 3) as u64) << (2 * (i % 32));
        }
        Sketch(w)
    }

    /// At least the estimated similarity of the two signatures: the share of equal 2-bit
    /// positions (computed as `similarity` is, so the comparison with a threshold is exact).
    #[inline]
    pub fn bound(&self, o: &Sketch) -> f32 {
        const LOW: u64 = 0x5555_5555_5555_5555;
        let differ: u32 = (0..2)
            .map(|k| {
                let x = self.0[k] ^ o.0[k];
                ((x | (x >> 1)) & LOW).count_ones()
            })
            .sum();
        (super::minhash::PERMS as u32 - differ) as f32 / super::minhash::PERMS as f32
    }
}

/// How a record joined its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Alone,
    Id,
    Text,
    Near,
}

/// The grouping state: a few dozen bytes per record plus the signature and band tables.
#[derive(Debug, Default)]
pub struct Grouper {
    settings: Settings,
    parent: Vec<u32>,
    /// Circular list of each group's members.
    ring: Vec<u32>,
    /// At roots: the group's representative.
    rep: Vec<u32>,
    /// At roots: the group's size.
    size: Vec<u32>,
    rank: Vec<u8>,
    text_len: Vec<u32>,
    pinned: Vec<bool>,
    order: Vec<u64>,
    via: Vec<Via>,
    hashes: Vec<u64>,
    /// Signatures by position (zeros where `has_sig` is false).
    sigs: Vec<Signature>,
    /// Their 2-bit sketches (the candidates' first, cheap test).
    sketch: Vec<Sketch>,
    has_sig: Vec<bool>,
    ids: HashMap<u64, u32>,
    texts: HashMap<u64, u32>,
    lsh: Lsh,
    /// Scratch list of LSH candidates (kept to spare an allocation per record).
    cands: Vec<u32>,
    /// Groups with more than one member.
    groups: u64,
}

impl Grouper {
    pub fn new(settings: Settings) -> Grouper {
        Grouper {
            settings,
            ..Default::default()
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn len(&self) -> usize {
        self.parent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// Groups of two or more records.
    pub fn groups(&self) -> u64 {
        self.groups
    }

    /// LSH chain walks cut short (see `lsh::MAX_CHAIN`).
    pub fn truncated(&self) -> u64 {
        self.lsh.truncated
    }

    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = p;
        }
        x
    }

    fn root(&self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            x = self.parent[x as usize];
        }
        x
    }

    /// The representative of `pos`'s group (`pos` itself when alone).
    pub fn rep_of(&self, pos: u32) -> u32 {
        self.rep[self.root(pos) as usize]
    }

    /// Members of `pos`'s group, `pos` first.
    pub fn members(&self, pos: u32) -> Vec<u32> {
        let mut v = vec![pos];
        let mut cur = self.ring[pos as usize];
        while cur != pos {
            v.push(cur);
            cur = self.ring[cur as usize];
        }
        v
    }

    pub fn via(&self, pos: u32) -> Via {
        self.via[pos as usize]
    }

    /// Similarity of two records: 1 for equal text, the MinHash estimate when both have a
    /// signature, `None` otherwise (linked by id only).
    pub fn similarity(&self, a: u32, b: u32) -> Option<f32> {
        let (a, b) = (a as usize, b as usize);
        if self.hashes[a] == self.hashes[b] {
            return Some(1.0);
        }
        (self.has_sig[a] && self.has_sig[b]).then(|| similarity(&self.sigs[a], &self.sigs[b]))
    }

    /// Is `a` a better representative than `b`?
    fn better(&self, a: u32, b: u32) -> bool {
        let key = |x: u32| {
            let x = x as usize;
            (
                !self.pinned[x],
                self.rank[x],
                std::cmp::Reverse(self.text_len[x]),
                self.order[x],
                x,
            )
        };
        key(a) < key(b)
    }

    /// Start loading what `push(it)` will read first (its LSH chain heads): called with the
    /// next record while this one is pushed.
    pub fn prefetch(&self, it: &Item) {
        if it.sig.is_some() && !it.split {
            self.lsh.prefetch(&it.band_keys);
        }
    }

    /// Add the next record; returns the positions whose representative changed (the new record
    /// among them when it is a duplicate). Read each one's new representative with
    /// [`Grouper::rep_of`].
    pub fn push(&mut self, it: &Item) -> Vec<u32> {
        let pos = self.parent.len() as u32;
        self.parent.push(pos);
        self.ring.push(pos);
        self.rep.push(pos);
        self.size.push(1);
        self.rank.push(self.settings.rank(it.source));
        self.text_len.push(it.text_len);
        self.pinned.push(it.pinned);
        self.order.push(it.order);
        self.via.push(Via::Alone);
        self.hashes.push(it.hash);
        self.sigs.push(it.sig.unwrap_or([0; super::minhash::PERMS]));
        self.sketch.push(it.sketch);
        self.has_sig.push(it.sig.is_some());
        if it.split {
            return vec![];
        }
        // (other record, how) pairs to link.
        let mut links: Vec<(u32, Via)> = Vec::new();
        for k in &it.keys {
            match self.ids.get(k) {
                Some(&o) => links.push((o, Via::Id)),
                None => {
                    self.ids.insert(*k, pos);
                }
            }
        }
        let same_text = match self.texts.get(&it.hash) {
            Some(&o) => {
                links.push((o, Via::Text));
                true
            }
            None => {
                self.texts.insert(it.hash, pos);
                false
            }
        };
        // An equal text has the same signature as its first copy, which is in the tables.
        if let (Some(sig), false) = (it.sig, same_text) {
            let keys = &it.band_keys;
            if self.settings.threshold <= 1.0 {
                let mut cands = std::mem::take(&mut self.cands);
                cands.clear();
                // Most candidates of templated text are far below the threshold: the 2-bit
                // sketches (16 bytes a record, close together) drop them as they are found,
                // without touching their signatures, exactly (see `Sketch`).
                let (sk, need, sketches) = (it.sketch, self.settings.threshold, &self.sketch);
                self.lsh.candidates(
                    keys,
                    |c| {
                        if sk.bound(&sketches[c as usize]) >= need {
                            cands.push(c);
                        }
                    },
                    |c| super::lsh::prefetch(&sketches[c as usize]),
                );
                // A candidate sharing several bands is compared once.
                cands.sort_unstable();
                cands.dedup();
                let mut roots: Vec<u32> = Vec::new();
                for (o, _) in &links {
                    let r = self.find(*o);
                    roots.push(r);
                }
                for &c in &cands {
                    // Only a similar candidate's group matters: one already joined adds
                    // nothing (the same links as looking at the group first).
                    if similarity(&sig, &self.sigs[c as usize]) < need {
                        continue;
                    }
                    let r = self.find(c);
                    if !roots.contains(&r) {
                        links.push((c, Via::Near));
                        roots.push(r);
                    }
                }
                self.cands = cands;
            }
            let (sigs, has) = (&self.sigs, &self.has_sig);
            self.lsh
                .insert(pos, keys, &|id| has[id as usize].then(|| sigs[id as usize]));
        }
        if links.is_empty() {
            return vec![];
        }
        self.via[pos as usize] = links
            .iter()
            .map(|l| l.1)
            .min_by_key(|v| match v {
                Via::Text => 0,
                Via::Id => 1,
                _ => 2,
            })
            .unwrap_or(Via::Alone);
        let mut roots: Vec<u32> = links.iter().map(|(o, _)| *o).collect();
        for r in roots.iter_mut() {
            *r = self.find(*r);
        }
        roots.sort_unstable();
        roots.dedup();
        let mut best = pos;
        for &r in &roots {
            let rp = self.rep[r as usize];
            if self.better(rp, best) {
                best = rp;
            }
        }
        let mut changed = Vec::new();
        for &r in &roots {
            if self.rep[r as usize] != best {
                changed.extend(self.members(r));
            }
            if self.size[r as usize] > 1 {
                self.groups -= 1;
            }
        }
        if best != pos {
            changed.push(pos);
        }
        let mut root = pos;
        for &r in &roots {
            // Union by size; splice the two rings.
            let (big, small) = if self.size[r as usize] >= self.size[root as usize] {
                (r, root)
            } else {
                (root, r)
            };
            self.parent[small as usize] = big;
            self.size[big as usize] += self.size[small as usize];
            self.ring.swap(big as usize, small as usize);
            root = big;
        }
        self.groups += 1;
        self.rep[root as usize] = best;
        changed
    }

    /// Bytes held, roughly (for `bench dedup`).
    pub fn bytes(&self) -> usize {
        let n = self.parent.capacity();
        n * (4 * 5
            + 1
            + 1
            + 1
            + 8
            + 8
            + std::mem::size_of::<Signature>()
            + std::mem::size_of::<Sketch>()
            + 1)
            + (self.ids.capacity() + self.texts.capacity()) * 16
            + self.lsh.bytes()
    }

    /// Representative of every position, in order.
    pub fn reps(&self) -> Vec<u32> {
        (0..self.len() as u32).map(|p| self.rep_of(p)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::minhash::signature;

    #[test]
    fn the_sketch_bound_is_never_below_the_similarity_and_drops_unrelated_texts() {
        let words: Vec<String> = (0..80).map(|i| format!("w{i}")).collect();
        let a = signature(&words.join(" ")).unwrap();
        let mut dropped = 0;
        for changed in 0..80 {
            let mut other = words.clone();
            for (k, w) in other.iter_mut().enumerate().take(changed) {
                *w = format!("x{k}");
            }
            let b = signature(&other.join(" ")).unwrap();
            let (sim, bound) = (similarity(&a, &b), Sketch::of(&a).bound(&Sketch::of(&b)));
            assert!(
                bound >= sim,
                "{changed} changed: bound {bound} < similarity {sim}"
            );
            dropped += usize::from(bound < DEFAULT_THRESHOLD);
        }
        // Texts with most words changed are far below 0.7 and nearly all dropped by the sketch.
        assert!(dropped >= 50, "only {dropped} of 80 dropped");
        assert_eq!(Sketch::of(&a).bound(&Sketch::of(&a)), 1.0);
    }
}
