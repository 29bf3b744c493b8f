//! LSH banding over MinHash signatures, with memory fixed per record.
//!
//! The signature's `PERMS` values are cut into `BANDS` bands of `ROWS`; two records are
//! candidates when any band is equal. Per band a direct-mapped table of chain heads (a power of
//! two slots, at least twice the records) and per record and band the previous record in its
//! chain: `4·BANDS` bytes per record plus `8·BANDS` per slot pair, nothing that grows with the
//! text. Slot collisions only add candidates, which the caller checks by estimated similarity.
//! With 16 bands of 4 rows a pair at Jaccard 0.7 is a candidate with probability 0.99, at 0.5
//! 0.64, at 0.3 0.12.

use super::minhash::{mix64, Signature, PERMS};

pub const BANDS: usize = 16;
pub const ROWS: usize = PERMS / BANDS;
const NONE: u32 = u32::MAX;

/// Chain entries looked at per band and query: a bucket shared by thousands of records (a
/// template) would otherwise make grouping quadratic. Members of one group are skipped cheaply
/// by the caller, so the cap only matters for thousands of distinct near-misses.
pub const MAX_CHAIN: usize = 256;

fn band_key(sig: &Signature, band: usize) -> u64 {
    let mut h = band as u64;
    for v in &sig[band * ROWS..(band + 1) * ROWS] {
        h = mix64(h.rotate_left(16) ^ *v as u64);
    }
    h
}

/// The band tables.
#[derive(Debug, Default)]
pub struct Lsh {
    /// `BANDS` tables of `1 << bits` chain heads.
    heads: Vec<u32>,
    bits: u32,
    /// Per record and band: the previous record in the chain.
    next: Vec<u32>,
    /// Records inserted (ids are `0..len`, with holes for records without a signature).
    len: usize,
    /// Chain walks cut at `MAX_CHAIN`.
    pub truncated: u64,
}

impl Lsh {
    fn slot(&self, key: u64, band: usize) -> usize {
        (band << self.bits) | (key as usize & ((1usize << self.bits) - 1))
    }

    /// Grow to at least twice `n` slots per band, re-linking from the signatures.
    fn grow(&mut self, n: usize, sig_of: &dyn Fn(u32) -> Option<Signature>) {
        let bits = ((2 * n).max(1024)).next_power_of_two().trailing_zeros();
        if bits <= self.bits && !self.heads.is_empty() {
            return;
        }
        self.bits = bits;
        self.heads = vec![NONE; BANDS << bits];
        for id in 0..self.len as u32 {
            if let Some(sig) = sig_of(id) {
                self.link(id, &sig);
            }
        }
    }

    fn link(&mut self, id: u32, sig: &Signature) {
        for b in 0..BANDS {
            let s = self.slot(band_key(sig, b), b);
            self.next[id as usize * BANDS + b] = self.heads[s];
            self.heads[s] = id;
        }
    }

    /// Add record `id` (ids are given in increasing order; a record without a signature is a
    /// hole). `sig_of` gives earlier records' signatures when the tables grow.
    pub fn insert(&mut self, id: u32, sig: &Signature, sig_of: &dyn Fn(u32) -> Option<Signature>) {
        let id_us = id as usize;
        debug_assert!(id_us >= self.len);
        self.next.resize((id_us + 1) * BANDS, NONE);
        self.len = id_us + 1;
        if self.heads.is_empty() || self.len * 2 > (1usize << self.bits) {
            // Rebuild from the earlier records only; the new one is linked below.
            self.len = id_us;
            self.grow(id_us + 1, sig_of);
            self.len = id_us + 1;
        }
        self.link(id, sig);
    }

    /// Call `f` with each record sharing a band with `sig` (a record may come more than once;
    /// slot collisions come too). The `BANDS` chains are walked in lockstep: each step's
    /// loads are independent of each other, so their cache misses overlap instead of
    /// queueing one behind the other.
    pub fn candidates(&mut self, sig: &Signature, mut f: impl FnMut(u32)) {
        if self.heads.is_empty() {
            return;
        }
        let mut cur = [NONE; BANDS];
        for (b, c) in cur.iter_mut().enumerate() {
            *c = self.heads[self.slot(band_key(sig, b), b)];
        }
        for _ in 0..MAX_CHAIN {
            let mut live = false;
            for (b, c) in cur.iter_mut().enumerate() {
                if *c != NONE {
                    f(*c);
                    *c = self.next[*c as usize * BANDS + b];
                    live = true;
                }
            }
            if !live {
                return;
            }
        }
        self.truncated += cur.iter().filter(|c| **c != NONE).count() as u64;
    }

    /// Bytes held by the tables.
    pub fn bytes(&self) -> usize {
        (self.heads.capacity() + self.next.capacity()) * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::minhash::signature;

    #[test]
    fn near_copies_are_candidates_and_growth_keeps_them() {
        let mut sigs: Vec<Signature> = Vec::new();
        let mut lsh = Lsh::default();
        // Enough records to grow the tables several times.
        for i in 0..3000u32 {
            let text = format!(
                "record {i} describes a distinct weakness number {i} in component c{i} of product p{}",
                i * 31
            );
            let s = signature(&text).unwrap();
            lsh.insert(i, &s, &|id| sigs.get(id as usize).copied());
            sigs.push(s);
        }
        let probe = signature(
            "record 1234 describes a distinct weakness number 1234 in component c1234 of product p38254",
        )
        .unwrap();
        let mut found = vec![];
        lsh.candidates(&probe, |id| found.push(id));
        assert!(found.contains(&1234), "the identical text is a candidate");
        // Few unrelated candidates: slot collisions and chance band matches only.
        found.sort_unstable();
        found.dedup();
        assert!(found.len() < 40, "{} candidates", found.len());
    }
}
