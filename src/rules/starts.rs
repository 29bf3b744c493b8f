//! Where the anchored units may start in a text: the places where one of a unit's start literals
//! occurs (with the unit's leading `\b` and case-sensitive letters holding there), found in one
//! pass over the text's words and the bytes between them.
//!
//! Almost every start literal (8,768 of the 8,837 of the default rules) begins with a word byte:
//! - After a `\b` it can only occur at a word start. Each word is hashed once, byte by byte
//!   (ASCII case folded), and looked up in two tables: the literals whose first word ends inside
//!   the literal (`buffer overf…`: 8,022 literals, 1,435 distinct first words) by the whole
//!   word's hash, and the literals of word bytes only (`exploit`, a long word cut at 12 bytes)
//!   by the hash of the word's first n bytes, for each n such a literal has.
//! - Without a `\b` (`exec(`, `union `), when its first word ends inside the literal, that word
//!   ends where a text word ends: looked up at word ends by the hash of the word's last n bytes,
//!   behind a filter on the word's last two bytes. The rare rest (`ctf` of `ctf\w{0,6}\{`) goes
//!   to a small Aho-Corasick automaton.
//!
//! The literals that begin with another byte (payload syntax, quotes, non-ASCII words) are
//! listed by that byte and tried where it occurs. A table's lookup passes an 8 KB bit filter
//! first; the literals filed under one hash are sorted, so that those the text starts with are
//! found by one binary search (`Table::visit`), and each is then compared with the text in one
//! masked 128-bit compare.
//!
//! This replaced one Aho-Corasick DFA over every literal: at 14.6 MB it missed the cache on
//! most bytes and took a fifth of the rules' compile time; the pass here scores at the same
//! speed or a little faster (README, Rules speed).

use super::prefilter::{Lit, WORD};
use aho_corasick::{AhoCorasick, MatchKind as AcMatchKind};
use std::collections::HashMap;

/// (start, unit, pattern): a unit that may start at a place, and its pattern in the anchored
/// regex.
pub(super) type Hit = (usize, u32, u32);

/// Longest literal the word index holds: one 16-byte window (the extraction keeps at most 12).
const MAX_LIT: usize = 16;

/// A literal at a word start, compared in one go: `(text | fold) ^ bytes` is zero on its `len`
/// bytes when the text matches (`fold` sets bit 5 of the letters that match in either case).
#[derive(Debug, Clone)]
struct WordLit {
    bytes: u128,
    fold: u128,
    len: u8,
    /// The unit begins with `\b` (checked for literals that need not start a word).
    word_boundary: bool,
    unit: u32,
    pattern: u32,
}

/// The 16 bytes of text from a word start, as the literals are compared with them.
struct Window {
    /// The bytes as they are, little-endian (zeros past the end of the text).
    raw: u128,
    /// How many of them are text.
    avail: usize,
    /// Every byte case-folded (bit 5 set), big-endian, zeros past the end of the text: orders
    /// like the folded `Node::key`s.
    folded: u128,
}

impl Window {
    fn at(hay: &[u8], at: usize) -> Window {
        let (raw, avail) = match hay.get(at..at + 16) {
            Some(s) => (u128::from_le_bytes(s.try_into().expect("16 bytes")), 16),
            None => {
                let mut buf = [0u8; 16];
                let n = hay.len() - at;
                buf[..n].copy_from_slice(&hay[at..]);
                (u128::from_le_bytes(buf), n)
            }
        };
        Window {
            raw,
            avail,
            folded: folded_be(raw, avail),
        }
    }
}

/// A mask of the low `n` bytes (n ≤ 16).
fn low_bytes(n: usize) -> u128 {
    if n >= 16 {
        u128::MAX
    } else {
        (1u128 << (8 * n)) - 1
    }
}

impl WordLit {
    fn matches(&self, w: &Window) -> bool {
        let len = usize::from(self.len);
        len <= w.avail && ((w.raw | self.fold) ^ self.bytes) & low_bytes(len) == 0
    }
}

/// The literals that are the same once case-folded, in a group sorted by `key`; `up` is the
/// longest other node of the group that is a prefix of this one, so that the nodes that are
/// prefixes of a text are found from one binary search.
#[derive(Debug, Clone)]
struct Node {
    /// The folded bytes, big-endian, zero-padded (folded bytes are never zero, so a prefix sorts
    /// before what extends it).
    key: u128,
    len: u8,
    up: u32,
    lits: (u32, u32),
}

const NO_NODE: u32 = u32::MAX;

/// Hash of one more (case-folded) byte of a word: rotate and xor, one cycle a byte (`mix`
/// spreads it when it is looked up). Folding sets bit 5, which makes upper- and lower-case
/// letters equal and leaves digits as they are; `_` becomes 0x7f, which no other word byte does.
#[inline(always)]
fn step(h: u64, b: u8) -> u64 {
    h.rotate_left(5) ^ u64::from(b | 0x20)
}

const SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// Spread of a hash over the filter and the table (`step` only rotates and xors).
#[inline(always)]
fn mix(h: u64) -> u64 {
    h.wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

/// Literals by the hash of a word (or of a word's first n bytes): a bit filter, then an
/// open-addressing table of (hash, range of `nodes`).
#[derive(Debug, Clone, Default)]
struct Table {
    filter: Vec<u64>,
    slots: Vec<(u64, u32, u32)>,
    nodes: Vec<Node>,
    lits: Vec<WordLit>,
}

/// Bits of the filter's index: 2^16 bits, 8 KB.
const FILTER_BITS: u32 = 16;

/// The first `n` bytes of `raw` (little-endian) case-folded, big-endian, zeros after them.
fn folded_be(raw: u128, n: usize) -> u128 {
    (raw | (u128::from_le_bytes([0x20; 16]) & low_bytes(n))).swap_bytes()
}

fn folded_key(lit: &WordLit) -> u128 {
    folded_be(lit.bytes, usize::from(lit.len))
}

/// Where hash `h` lies in a table's filter: (word, bit).
#[inline(always)]
fn filter_bit(h: u64) -> (usize, u64) {
    let f = (mix(h) >> (64 - FILTER_BITS)) as usize;
    (f >> 6, 1 << (f & 63))
}

/// The first slot to probe for hash `h` in a table of `mask + 1` slots.
#[inline(always)]
fn first_slot(h: u64, mask: usize) -> usize {
    ((mix(h) >> 24) as usize) & mask
}

impl Table {
    fn build(groups: HashMap<u64, Vec<WordLit>>) -> Table {
        let size = (groups.len() * 2).next_power_of_two().max(16);
        let mut t = Table {
            filter: vec![0; 1 << (FILTER_BITS - 6)],
            slots: vec![(0, 0, 0); size],
            nodes: Vec::new(),
            lits: Vec::new(),
        };
        let mut groups: Vec<(u64, Vec<WordLit>)> = groups.into_iter().collect();
        groups.sort_by_key(|(h, _)| *h);
        for (h, mut lits) in groups {
            lits.sort_by_key(|l| (folded_key(l), l.unit));
            let first = t.nodes.len();
            // Nodes in key order; a stack of the nodes that are prefixes of the current one.
            let mut stack: Vec<u32> = Vec::new();
            for l in lits {
                let key = folded_key(&l);
                if let Some(n) = t.nodes[first..].last_mut().filter(|n| n.key == key) {
                    n.lits.1 += 1;
                    t.lits.push(l);
                    continue;
                }
                let is_prefix = |n: &Node| {
                    let keep = !(u128::MAX >> (8 * u32::from(n.len)));
                    (n.key ^ key) & keep == 0
                };
                while stack
                    .last()
                    .is_some_and(|&i| !is_prefix(&t.nodes[first + i as usize]))
                {
                    stack.pop();
                }
                let at = t.lits.len() as u32;
                t.nodes.push(Node {
                    key,
                    len: l.len,
                    up: stack.last().copied().unwrap_or(NO_NODE),
                    lits: (at, at + 1),
                });
                stack.push((t.nodes.len() - 1 - first) as u32);
                t.lits.push(l);
            }
            let (word, bit) = filter_bit(h);
            t.filter[word] |= bit;
            let mut i = first_slot(h, size - 1);
            while t.slots[i].2 != 0 {
                i = (i + 1) & (size - 1);
            }
            t.slots[i] = (h, first as u32, t.nodes.len() as u32);
        }
        t
    }

    /// The nodes filed under hash `h` (or none).
    #[inline(always)]
    fn get(&self, h: u64) -> &[Node] {
        let (word, bit) = filter_bit(h);
        if self.filter[word] & bit == 0 {
            return &[];
        }
        let mask = self.slots.len() - 1;
        let mut i = first_slot(h, mask);
        loop {
            let (key, from, to) = self.slots[i];
            if to == 0 {
                return &[];
            }
            if key == h {
                return &self.nodes[from as usize..to as usize];
            }
            i = (i + 1) & mask;
        }
    }

    /// Push a hit for each literal of `group` that the text at `at` starts with.
    fn visit(&self, group: &[Node], w: &Window, at: usize, hits: &mut Vec<Hit>) {
        let j = group.partition_point(|n| n.key <= w.folded);
        let Some(last) = j.checked_sub(1) else {
            return;
        };
        // The nodes that are prefixes of the text are `last` and some of its prefixes: those no
        // longer than what `last` has in common with the text.
        let common = (group[last].key ^ w.folded).leading_zeros() / 8;
        let mut i = last as u32;
        while i != NO_NODE {
            let n = &group[i as usize];
            if u32::from(n.len) <= common {
                for l in &self.lits[n.lits.0 as usize..n.lits.1 as usize] {
                    if l.matches(w) {
                        hits.push((at, l.unit, l.pattern));
                    }
                }
            }
            i = n.up;
        }
    }
}

/// The literals that start with a byte other than a word byte (payload syntax, quotes,
/// non-ASCII words), by that byte.
#[derive(Debug, Clone)]
struct ByFirstByte {
    /// The literals of byte b are `lits[at[b]..at[b + 1]]`.
    at: Vec<u32>,
    lits: Vec<WordLit>,
}

impl ByFirstByte {
    fn build(mut lits: Vec<WordLit>) -> ByFirstByte {
        lits.sort_by_key(|l| (l.bytes as u8, l.unit));
        let mut at = vec![0u32; 257];
        for l in &lits {
            at[usize::from(l.bytes as u8) + 1] += 1;
        }
        for b in 0..256 {
            at[b + 1] += at[b];
        }
        ByFirstByte { at, lits }
    }

    #[inline(always)]
    fn of(&self, b: u8) -> &[WordLit] {
        &self.lits[self.at[usize::from(b)] as usize..self.at[usize::from(b) + 1] as usize]
    }
}

/// The word-byte literals that need not begin at a word start and are all word bytes (so may
/// lie anywhere inside a word: `ctf` of `ctf\w{0,6}\{`): a small Aho-Corasick automaton.
#[derive(Debug, Clone)]
struct Inner {
    literals: AhoCorasick,
    /// The (unit, pattern, literal) of each automaton pattern.
    lits: Vec<WordLit>,
}

#[derive(Debug, Clone)]
pub(super) struct StartFinder {
    /// Literals at a word start whose first word is a whole word, by that word's hash.
    whole: Table,
    /// Literals at a word start of word bytes only, by the hash of their bytes (a word's first
    /// n bytes).
    prefix: Table,
    /// Bit n set: some literal of `prefix` has n bytes.
    prefix_lengths: u32,
    /// Longest first word in `whole`.
    longest_whole: usize,
    /// Literals not at a word start whose first word ends inside the literal (`exec(`,
    /// `union `): that word ends where a text word ends, so they are looked up at word ends, by
    /// the hash of the word's last n bytes taken backwards.
    suffix: Table,
    /// Bit n set: some literal of `suffix` has a first word of n bytes.
    suffix_lengths: u32,
    /// (last byte, the one before), folded: a bit set for each literal of `suffix`.
    suffix_gate: Vec<u64>,
    /// Literals that start with a byte other than a word byte.
    punct: ByFirstByte,
    /// Whether a byte starts some literal of `punct`.
    punct_first: [bool; 256],
    inner: Option<Inner>,
}

/// The buffers of one search, kept by the caller from text to text.
#[derive(Default)]
pub(super) struct FindScratch {
    inner: Vec<Hit>,
}

impl FindScratch {
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }
}

fn gate_index(last: u8, before: u8) -> usize {
    (usize::from(last | 0x20) << 8) | usize::from(before | 0x20)
}

impl StartFinder {
    /// From each unit's (unit, pattern, start literals, begins with `\b`), in any order.
    pub fn new(units: &[(u32, u32, Vec<Lit>, bool)]) -> Result<StartFinder, String> {
        let (mut whole, mut prefix, mut suffix) = (HashMap::new(), HashMap::new(), HashMap::new());
        let (mut prefix_lengths, mut suffix_lengths, mut longest_whole) = (0u32, 0u32, 0usize);
        let mut suffix_gate = vec![0u64; 1 << 10];
        let (mut punct, mut inner) = (Vec::new(), Vec::new());
        for &(unit, pattern, ref lits, word_boundary) in units {
            for lit in lits {
                let b = &lit.bytes;
                if b.is_empty() || b.len() > MAX_LIT {
                    return Err(format!("start literal of {} bytes", b.len()));
                }
                let (mut bytes, mut fold) = ([0u8; 16], [0u8; 16]);
                bytes[..b.len()].copy_from_slice(b);
                for (i, &c) in b.iter().enumerate() {
                    if c.is_ascii_alphabetic() && lit.exact & (1 << i) == 0 {
                        fold[i] = 0x20;
                    }
                }
                let entry = WordLit {
                    bytes: u128::from_le_bytes(bytes),
                    fold: u128::from_le_bytes(fold),
                    len: b.len() as u8,
                    word_boundary,
                    unit,
                    pattern,
                };
                let word = b.iter().take_while(|&&c| WORD[usize::from(c)]).count();
                if word == 0 {
                    punct.push(entry);
                } else if word_boundary {
                    let h = b[..word].iter().fold(SEED, |h, &c| step(h, c));
                    if word < b.len() {
                        longest_whole = longest_whole.max(word);
                        whole.entry(h).or_insert_with(Vec::new).push(entry);
                    } else {
                        prefix_lengths |= 1 << word;
                        prefix.entry(h).or_insert_with(Vec::new).push(entry);
                    }
                } else if word >= 2 && word < b.len() {
                    let h = b[..word].iter().rev().fold(SEED, |h, &c| step(h, c));
                    suffix_lengths |= 1 << word;
                    let g = gate_index(b[word - 1], b[word - 2]);
                    suffix_gate[g >> 6] |= 1 << (g & 63);
                    suffix.entry(h).or_insert_with(Vec::new).push(entry);
                } else {
                    inner.push(entry);
                }
            }
        }
        let inner = if inner.is_empty() {
            None
        } else {
            let keys: Vec<Vec<u8>> = inner
                .iter()
                .map(|l| l.bytes.to_le_bytes()[..usize::from(l.len)].to_vec())
                .collect();
            let literals = AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(AcMatchKind::Standard)
                .build(&keys)
                .map_err(|e| e.to_string())?;
            Some(Inner {
                literals,
                lits: inner,
            })
        };
        let mut punct_first = [false; 256];
        for l in &punct {
            punct_first[usize::from(l.bytes as u8)] = true;
        }
        Ok(StartFinder {
            whole: Table::build(whole),
            prefix: Table::build(prefix),
            prefix_lengths,
            longest_whole,
            suffix: Table::build(suffix),
            suffix_lengths,
            suffix_gate,
            punct: ByFirstByte::build(punct),
            punct_first,
            inner,
        })
    }

    /// Append to `hits` every place a unit may start in `hay`, sorted by (start, unit), one per
    /// (start, unit). `hits` may already hold hits at the start of the text.
    pub fn find(&self, hay: &[u8], hits: &mut Vec<Hit>, scratch: &mut FindScratch) {
        let inner = &mut scratch.inner;
        inner.clear();
        if let Some(o) = &self.inner {
            for m in o.literals.find_overlapping_iter(hay) {
                let l = &o.lits[m.pattern().as_usize()];
                if l.matches(&Window::at(hay, m.start())) {
                    inner.push((m.start(), l.unit, l.pattern));
                }
            }
            inner.sort_unstable();
        }
        let mut next_inner = 0;
        let n = hay.len();
        let mut i = 0;
        while i < n {
            let b = hay[i];
            if !WORD[usize::from(b)] {
                if self.punct_first[usize::from(b)] {
                    let w = Window::at(hay, i);
                    // A `\b` before a non-word byte: a word byte before it.
                    let boundary = i > 0 && WORD[usize::from(hay[i - 1])];
                    let group = hits.len();
                    for l in self.punct.of(b) {
                        if (!l.word_boundary || boundary) && l.matches(&w) {
                            hits.push((i, l.unit, l.pattern));
                        }
                    }
                    // Only the text-start hits can share the place (at 0).
                    if i == 0 && group > 0 && hits.len() > group {
                        hits.sort_unstable();
                    }
                }
                i += 1;
                continue;
            }
            // A word: the hits that start in it are pushed, then sorted together.
            let start = i;
            // (Hits at the same start already pushed: text-start ones at 0.)
            let mut group = hits.len();
            while group > 0 && hits[group - 1].0 == start {
                group -= 1;
            }
            let mut h = SEED;
            let mut window = None;
            while i < n && WORD[usize::from(hay[i])] {
                h = step(h, hay[i]);
                i += 1;
                let len = i - start;
                if len < 32 && self.prefix_lengths & (1 << len) != 0 {
                    let g = self.prefix.get(h);
                    if !g.is_empty() {
                        let w = window.get_or_insert_with(|| Window::at(hay, start));
                        self.prefix.visit(g, w, start, hits);
                    }
                }
            }
            let len = i - start;
            if len <= self.longest_whole {
                let g = self.whole.get(h);
                if !g.is_empty() {
                    let w = window.get_or_insert_with(|| Window::at(hay, start));
                    self.whole.visit(g, w, start, hits);
                }
            }
            if len >= 2 && i < n {
                let g = gate_index(hay[i - 1], hay[i - 2]);
                if self.suffix_gate[g >> 6] & (1 << (g & 63)) != 0 {
                    self.visit_suffixes(hay, start, i, hits);
                }
            }
            while let Some(&o) = inner.get(next_inner).filter(|o| o.0 < i) {
                hits.push(o);
                next_inner += 1;
            }
            if hits.len() - group > 1 {
                hits[group..].sort_unstable();
            }
        }
        hits.dedup_by_key(|h| (h.0, h.1));
    }

    /// The `suffix` literals whose first word is the end of the text word `start..end`.
    fn visit_suffixes(&self, hay: &[u8], start: usize, end: usize, hits: &mut Vec<Hit>) {
        let mut h = SEED;
        for m in 1..=(end - start).min(31) {
            h = step(h, hay[end - m]);
            if self.suffix_lengths & (1 << m) != 0 {
                let g = self.suffix.get(h);
                if !g.is_empty() {
                    let at = end - m;
                    self.suffix.visit(g, &Window::at(hay, at), at, hits);
                }
            }
        }
    }
}
