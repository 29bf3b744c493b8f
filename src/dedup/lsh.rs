//! LSH banding over MinHash signatures, with memory fixed per record.
//!
//! The signature's `PERMS` values are cut into `BANDS` bands of `ROWS`; two records are
//! candidates when any band is equal. Per band a direct-mapped table of chain heads (a power of
//! two slots, at least twice the records) and per record and band the previous record in its
//! chain: `4·BANDS` bytes per record plus `8·BANDS` per slot pair, nothing that grows with the
//! text. Slot collisions only add candidates, which the caller checks by estimated similarity.
//! With 16 bands of 4 rows a pair at Jaccard 0.7 is a candidate with probability 0.99, at 0.5
//! 0.64, at 0.3 0.12.
//!
//! A chain costs one cache miss per entry (each entry is in another record's row), which is fine
//! for the short chains of ordinary text but not for templated text, where a band shared by a
//! template collects hundreds of records: on 59,157 generated NVD descriptions most of the
//! decider's grouping time went into such walks. So a chain that reaches `HOT` entries becomes a
//! *hot bucket*: its ids move to a contiguous list (newest last) that later records are appended
//! to and queries read sequentially. The candidates and their order are those of the chain, so
//! the groups do not change; a hot bucket only costs memory where records share a band.

use super::minhash::{mix64, Signature, PERMS};

pub const BANDS: usize = 16;
pub const ROWS: usize = PERMS / BANDS;
const NONE: u32 = u32::MAX;

/// A chain head (`heads` entry): the newest record's id in the low `ID_BITS` bits, the chain's
/// length (saturating below `HOT`) above them; or, with `HOT_FLAG`, the index of a hot bucket.
const ID_BITS: u32 = 26;
const ID_MASK: u32 = (1 << ID_BITS) - 1;
const HOT_FLAG: u32 = 1 << 31;
/// Entries at which a chain becomes a hot bucket (fits the 5 length bits). 4 rather than 16:
/// `bench dedup --records 1000000` 8.1 s -> 5.3 s, 438 -> 445 bytes a record (a list per bucket
/// of 4 or more is rare outside templated text).
const HOT: u32 = 4;
/// The most records the tables hold (ids above `ID_MASK` are not inserted: see `insert`).
pub const MAX_RECORDS: usize = ID_MASK as usize;

/// Chain entries looked at per band and query: a bucket shared by thousands of records (a
/// template) would otherwise make grouping quadratic. Members of one group are skipped cheaply
/// by the caller, so the cap only matters for thousands of distinct near-misses.
pub const MAX_CHAIN: usize = 256;

/// How far along a hot bucket `candidates` announces ids before it hands them over.
const AHEAD: usize = 8;

/// A hint to load the cache line of `x`; no effect on what the program computes.
#[inline(always)]
pub fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and `x` is a valid reference.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            x as *const T as *const i8,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// A signature's key per band, computed once per record (a query and an insert both need them).
pub type BandKeys = [u64; BANDS];

pub fn band_keys(sig: &Signature) -> BandKeys {
    std::array::from_fn(|b| band_key(sig, b))
}

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
    /// The hot buckets' ids, oldest first.
    hot: Vec<Vec<u32>>,
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
        self.hot.clear();
        for id in 0..self.len as u32 {
            if let Some(sig) = sig_of(id) {
                self.link(id, &band_keys(&sig));
            }
        }
    }

    fn link(&mut self, id: u32, keys: &BandKeys) {
        for (b, &key) in keys.iter().enumerate() {
            let s = self.slot(key, b);
            let head = self.heads[s];
            if head == NONE {
                self.next[id as usize * BANDS + b] = NONE;
                self.heads[s] = id | (1 << ID_BITS);
            } else if head & HOT_FLAG != 0 {
                self.hot[(head & !HOT_FLAG) as usize].push(id);
            } else if (head >> ID_BITS) + 1 < HOT {
                self.next[id as usize * BANDS + b] = head & ID_MASK;
                self.heads[s] = id | (((head >> ID_BITS) + 1) << ID_BITS);
            } else {
                // The chain's walk, once, into a list.
                let mut ids = Vec::with_capacity(2 * HOT as usize);
                let mut c = head & ID_MASK;
                while c != NONE {
                    ids.push(c);
                    c = self.next[c as usize * BANDS + b];
                }
                ids.reverse();
                ids.push(id);
                self.heads[s] = HOT_FLAG | self.hot.len() as u32;
                self.hot.push(ids);
            }
        }
    }

    /// Add record `id` (ids are given in increasing order; a record without a signature is a
    /// hole). `sig_of` gives earlier records' signatures when the tables grow.
    pub fn insert(&mut self, id: u32, keys: &BandKeys, sig_of: &dyn Fn(u32) -> Option<Signature>) {
        let id_us = id as usize;
        if id_us >= MAX_RECORDS {
            // 67M records would need 4 GB of chains alone; past that a record is not a
            // near-duplicate candidate (exact and id groups still form), rather than corrupt
            // the heads' packing.
            self.truncated += 1;
            return;
        }
        debug_assert!(id_us >= self.len);
        self.next.resize((id_us + 1) * BANDS, NONE);
        self.len = id_us + 1;
        if self.heads.is_empty() || self.len * 2 > (1usize << self.bits) {
            // Rebuild from the earlier records only; the new one is linked below.
            self.len = id_us;
            self.grow(id_us + 1, sig_of);
            self.len = id_us + 1;
        }
        self.link(id, keys);
    }

    /// Start loading the chain heads of `keys` (the next record's, while this one is grouped):
    /// 16 misses in tables of megabytes that would otherwise start the next query.
    pub fn prefetch(&self, keys: &BandKeys) {
        if self.heads.is_empty() {
            return;
        }
        for (b, &key) in keys.iter().enumerate() {
            prefetch(&self.heads[self.slot(key, b)]);
        }
    }

    /// Call `f` with each record sharing a band key with `keys` (a record may come more than once;
    /// slot collisions come too). The `BANDS` chains are walked in lockstep: each step's
    /// loads are independent of each other, so their cache misses overlap instead of
    /// queueing one behind the other.
    /// `ahead` is called with the id `AHEAD` places further along a hot bucket, so that the
    /// caller can start loading what it will read of that record.
    pub fn candidates(&mut self, keys: &BandKeys, mut f: impl FnMut(u32), ahead: impl Fn(u32)) {
        if self.heads.is_empty() {
            return;
        }
        // The 16 heads are 16 cache misses in tables of megabytes: loaded first, with nothing
        // between them that depends on a value, they are in flight together.
        let heads: [u32; BANDS] = std::array::from_fn(|b| self.heads[self.slot(keys[b], b)]);
        let mut cur = [NONE; BANDS];
        for (&head, c) in heads.iter().zip(cur.iter_mut()) {
            if head == NONE {
                continue;
            }
            if head & HOT_FLAG == 0 {
                *c = head & ID_MASK;
                continue;
            }
            // Newest first and at most MAX_CHAIN, like the chain it was.
            let ids = &self.hot[(head & !HOT_FLAG) as usize];
            let walk = ids.len().min(MAX_CHAIN);
            for (i, &id) in ids.iter().rev().take(walk).enumerate() {
                if i + AHEAD < walk {
                    ahead(ids[ids.len() - 1 - i - AHEAD]);
                }
                f(id);
            }
            if ids.len() > MAX_CHAIN {
                self.truncated += 1;
            }
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
            + self
                .hot
                .iter()
                .map(|h| h.capacity() * 4 + std::mem::size_of::<Vec<u32>>())
                .sum::<usize>()
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
            lsh.insert(i, &band_keys(&s), &|id| sigs.get(id as usize).copied());
            sigs.push(s);
        }
        let probe = signature(
            "record 1234 describes a distinct weakness number 1234 in component c1234 of product p38254",
        )
        .unwrap();
        let mut found = vec![];
        lsh.candidates(&band_keys(&probe), |id| found.push(id), |_| {});
        assert!(found.contains(&1234), "the identical text is a candidate");
        // Few unrelated candidates: slot collisions and chance band matches only.
        found.sort_unstable();
        found.dedup();
        assert!(found.len() < 40, "{} candidates", found.len());
    }

    /// Records that share bands with hundreds of others (a template): chains turn into hot
    /// buckets as they grow and the tables grow under them, and each query still gets exactly
    /// the records of its bands' slots, newest first, at most `MAX_CHAIN` per band.
    #[test]
    fn hot_buckets_give_the_chains_candidates() {
        let mut rng = crate::rng::Rng::new(7);
        let mut sigs: Vec<Signature> = Vec::new();
        let mut lsh = Lsh::default();
        for id in 0..6000u32 {
            // Band b of record id is one of (b + 1) * 3 shared values (band 0 of a third of
            // the records is equal, band 15 is rarer), or unique.
            let mut sig: Signature = [0; PERMS];
            for (b, band) in sig.chunks_mut(ROWS).enumerate() {
                let shared = rng.below(4) != 0;
                let v = if shared {
                    rng.below((b as u64 + 1) * 3) as u16
                } else {
                    30_000 + id as u16
                };
                band.iter_mut().for_each(|x| *x = v);
            }
            if id % 97 == 0 {
                let mut got = Vec::new();
                lsh.candidates(&band_keys(&sig), |c| got.push(c), |_| {});
                let mut want = Vec::new();
                for b in 0..BANDS {
                    let slot = lsh.slot(band_key(&sig, b), b);
                    let same: Vec<u32> = (0..id)
                        .rev()
                        .filter(|&o| lsh.slot(band_key(&sigs[o as usize], b), b) == slot)
                        .take(MAX_CHAIN)
                        .collect();
                    want.extend(same);
                }
                got.sort_unstable();
                want.sort_unstable();
                assert_eq!(got, want, "candidates of record {id}");
            }
            lsh.insert(id, &band_keys(&sig), &|o| sigs.get(o as usize).copied());
            sigs.push(sig);
        }
        assert!(!lsh.hot.is_empty() && lsh.truncated > 0);
    }
}
