//! The compile step of the prefiltered scorer: each rule's pattern is cut into *units* (the whole
//! rule, or the branches of its top-level alternation) and each unit gets the set of literals that
//! every one of its matches starts with, so that one pass over a text's words (`starts`) lists
//! the places where a unit can start, and only those places are tried (anchored, see `scorer`).
//!
//! Cutting a rule into its branches keeps leftmost-first semantics: at a given start, a
//! leftmost-first search tries the branches of `x(?:a|b)y` in order, so the match of the whole is
//! the match of the first branch unit `xay`, `xby` that matches there, as long as `x` can match in
//! only one way at a position (look-arounds, literals and single-byte classes). Branches are
//! therefore ordered units, and the scorer's merge takes the match with the smallest (start, unit).

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// At most this many literals per node while extracting (a concatenation that would pass it
/// stops extending its literals there).
const MAX_LITS: usize = 256;
/// An alternation with more literals than this gives up (its rule is cut into branches instead).
const MAX_UNION: usize = 4096;
/// Literal bytes kept per prefix: longer ones only cost automaton size.
const MAX_LEN: usize = 12;
/// A class spreads into at most this many literals (after ASCII case folding): `[- ]`, `['"]`,
/// `[sz]`, `(?i)[rsdbu]` do, `\d`, `\w`, `[^>]` do not.
const MAX_CLASS: usize = 6;
/// How deep a rule is cut into the branches of branches when a branch has no literal prefix.
const MAX_SPLIT_DEPTH: usize = 3;

/// A literal prefix: `bytes` (ASCII letters lower-cased where either case matches), `exact` the
/// positions whose byte must match exactly (a letter of a case-sensitive pattern), `complete`
/// whether the literal is a whole match of the node it came from (so what follows may extend it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Lit {
    pub bytes: Vec<u8>,
    pub exact: u16,
    complete: bool,
}

impl Lit {
    fn empty() -> Lit {
        Lit {
            bytes: Vec::new(),
            exact: 0,
            complete: true,
        }
    }

    fn push(&mut self, byte: u8, exact: bool) {
        if self.bytes.len() == MAX_LEN {
            self.complete = false;
            return;
        }
        if exact && byte.is_ascii_alphabetic() {
            self.exact |= 1 << self.bytes.len();
        }
        self.bytes.push(byte);
    }

    /// Whether every text this literal accepts at a position, `other` accepts too.
    fn covers(&self, other: &Lit) -> bool {
        let n = self.bytes.len();
        n <= other.bytes.len()
            && self.bytes.eq_ignore_ascii_case(&other.bytes[..n])
            && self.exact & !other.exact == 0
            && (0..n).all(|i| self.exact & (1 << i) == 0 || self.bytes[i] == other.bytes[i])
    }
}

/// Where a unit can start.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Start {
    /// At an occurrence of one of these literals; `word_boundary`: the unit begins with `\b`.
    Literals { lits: Vec<Lit>, word_boundary: bool },
    /// Only at the start of the text (`^` without the `m` flag).
    BeginningOfText,
    /// Anywhere: the unit goes to the unanchored regexes.
    Anywhere,
}

/// One searchable piece of a rule, in priority order.
#[derive(Debug, Clone)]
pub(super) struct Unit {
    pub rule: usize,
    pub hir: Hir,
    pub start: Start,
    /// Set when the unit is a plain alternation of strings: then its match at a place is found
    /// without a regex (see `Plain`).
    pub plain: Option<Plain>,
}

/// A unit `\b?(?:s1|s2|…)\b?` whose middle has no look-around and matches finitely many strings:
/// its leftmost-first match at a place (where the leading `\b`, if any, holds) is the first of
/// `strings`, in the order a backtracking search tries them, found there and followed by a word
/// boundary if `boundary_after`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plain {
    /// Each string as (byte, exact): exact bytes compare as they are, the others ASCII
    /// case-insensitively (letters stored lower-case).
    pub strings: Vec<Vec<(u8, bool)>>,
    pub boundary_after: bool,
}

/// At most this many strings (and bytes per string) in a `Plain` unit.
const MAX_PLAIN: usize = 64;

impl Plain {
    /// The end of the unit's match at `at`, if it matches there.
    pub fn match_at(&self, hay: &[u8], at: usize) -> Option<usize> {
        let rest = &hay[at..];
        self.strings.iter().find_map(|s| {
            let ok = s.len() <= rest.len()
                && s.iter().zip(rest).all(|(&(b, exact), &t)| {
                    if exact {
                        t == b
                    } else {
                        t.to_ascii_lowercase() == b
                    }
                });
            let end = at + s.len();
            let bounded = !self.boundary_after
                || is_word(hay.get(end.wrapping_sub(1))) != is_word(hay.get(end));
            (ok && bounded).then_some(end)
        })
    }

    fn of(hir: &Hir) -> Option<Plain> {
        let subs: &[Hir] = match hir.kind() {
            HirKind::Concat(subs) => subs,
            _ => std::slice::from_ref(hir),
        };
        let word = |h: &Hir| matches!(h.kind(), HirKind::Look(Look::WordAscii));
        let mut middle = subs;
        if middle.first().is_some_and(word) {
            middle = &middle[1..];
        }
        let boundary_after = middle.last().is_some_and(word);
        if boundary_after {
            middle = &middle[..middle.len() - 1];
        }
        if middle.is_empty() || middle.iter().any(|h| !h.properties().look_set().is_empty()) {
            return None;
        }
        let mut strings = vec![Vec::new()];
        for h in middle {
            strings = cross(strings, plain_strings(h)?)?;
        }
        (!strings.iter().any(Vec::is_empty)).then_some(Plain {
            strings,
            boundary_after,
        })
    }
}

/// Whether each byte is an ASCII word byte (`\w`).
pub(super) const WORD: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = (b as u8).is_ascii_alphanumeric() || b == b'_' as usize;
        b += 1;
    }
    t
};

/// Whether `b` is an ASCII word byte (`\w`); `None` (outside the text) is not.
pub(super) fn is_word(b: Option<&u8>) -> bool {
    b.is_some_and(|&b| WORD[usize::from(b)])
}

/// Every `a` followed by every `b`, in priority order.
fn cross(a: Vec<Vec<(u8, bool)>>, b: Vec<Vec<(u8, bool)>>) -> Option<Vec<Vec<(u8, bool)>>> {
    if a.len() * b.len() > MAX_PLAIN {
        return None;
    }
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in &a {
        for y in &b {
            let s: Vec<(u8, bool)> = x.iter().chain(y).copied().collect();
            if s.len() > MAX_PLAIN {
                return None;
            }
            out.push(s);
        }
    }
    Some(out)
}

/// The lists `f` gives for each of `alts`, one after the other; `None` when one of them is `None`
/// or there are more than `max` in all.
fn union<T>(alts: &[Hir], max: usize, f: fn(&Hir) -> Option<Vec<T>>) -> Option<Vec<T>> {
    let mut out = Vec::new();
    for a in alts {
        out.extend(f(a)?);
        if out.len() > max {
            return None;
        }
    }
    Some(out)
}

/// The strings a look-free `hir` matches, in the order a backtracking search tries them.
fn plain_strings(hir: &Hir) -> Option<Vec<Vec<(u8, bool)>>> {
    match hir.kind() {
        HirKind::Empty => Some(vec![Vec::new()]),
        HirKind::Literal(lit) => Some(vec![lit.0.iter().map(|&b| (b, true)).collect()]),
        // Distinct single bytes: their order does not matter, at most one fits a place.
        HirKind::Class(class) => Some(
            class_lits(class)?
                .into_iter()
                .map(|l| {
                    vec![(
                        l.bytes[0],
                        l.exact != 0 || !l.bytes[0].is_ascii_alphabetic(),
                    )]
                })
                .collect(),
        ),
        HirKind::Capture(c) => plain_strings(&c.sub),
        HirKind::Concat(subs) => {
            let mut strings = vec![Vec::new()];
            for h in subs {
                strings = cross(strings, plain_strings(h)?)?;
            }
            Some(strings)
        }
        HirKind::Alternation(alts) => union(alts, MAX_PLAIN, plain_strings),
        HirKind::Repetition(r) => {
            let sub = plain_strings(&r.sub)?;
            match (r.min, r.max) {
                (1, Some(1)) => Some(sub),
                (0, Some(1)) if r.greedy => Some([sub, vec![Vec::new()]].concat()),
                (0, Some(1)) => Some([vec![Vec::new()], sub].concat()),
                _ => None,
            }
        }
        HirKind::Look(_) => None,
    }
}

/// Cut the rules into units, in priority order (rule order, then branch order).
pub(super) fn plan(hirs: Vec<Hir>) -> Vec<Unit> {
    let mut units = Vec::new();
    for (rule, hir) in hirs.into_iter().enumerate() {
        cut(rule, hir, 0, &mut units);
    }
    units
}

fn cut(rule: usize, hir: Hir, depth: usize, units: &mut Vec<Unit>) {
    let start = start_of(&hir);
    // A rule is always cut into its branches (plain ones then need no regex); a branch only
    // when it has no literal start.
    if (depth == 0 || start == Start::Anywhere) && depth < MAX_SPLIT_DEPTH {
        if let Some(branches) = branches(&hir) {
            for b in branches {
                cut(rule, b, depth + 1, units);
            }
            return;
        }
    }
    let plain = match start {
        Start::Literals { .. } => Plain::of(&hir),
        _ => None,
    };
    units.push(Unit {
        rule,
        hir,
        start,
        plain,
    });
}

/// `hir` as an ordered list of alternatives, when it has a top-level alternation that only
/// one-way constructs precede (see the module comment).
fn branches(hir: &Hir) -> Option<Vec<Hir>> {
    match hir.kind() {
        HirKind::Alternation(alts) => Some(alts.clone()),
        HirKind::Concat(subs) => {
            let i = subs.iter().position(|s| {
                !matches!(
                    s.kind(),
                    HirKind::Look(_) | HirKind::Literal(_) | HirKind::Class(_)
                )
            })?;
            let HirKind::Alternation(alts) = subs[i].kind() else {
                return None;
            };
            Some(
                alts.iter()
                    .map(|a| {
                        let mut parts = subs[..i].to_vec();
                        parts.push(a.clone());
                        parts.extend_from_slice(&subs[i + 1..]);
                        Hir::concat(parts)
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

fn start_of(hir: &Hir) -> Start {
    let first = match hir.kind() {
        HirKind::Concat(subs) => subs.first().unwrap_or(hir),
        _ => hir,
    };
    if matches!(first.kind(), HirKind::Look(Look::Start)) {
        return Start::BeginningOfText;
    }
    let word_boundary = matches!(first.kind(), HirKind::Look(Look::WordAscii));
    match prefixes(hir) {
        Some(lits) if lits.iter().all(|l| !l.bytes.is_empty()) => Start::Literals {
            lits: minimise(lits),
            word_boundary,
        },
        _ => Start::Anywhere,
    }
}

/// Drop literals that a shorter one in the set already covers (it reports every place they would).
fn minimise(mut lits: Vec<Lit>) -> Vec<Lit> {
    lits.sort_by(|a, b| a.bytes.len().cmp(&b.bytes.len()).then_with(|| a.cmp(b)));
    let mut kept: Vec<Lit> = Vec::with_capacity(lits.len());
    for l in lits {
        if !kept.iter().any(|k| k.covers(&l)) {
            kept.push(l);
        }
    }
    kept
}

/// Literals one of which every match of `hir` starts with, or `None` when there is no such
/// bounded set.
fn prefixes(hir: &Hir) -> Option<Vec<Lit>> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Some(vec![Lit::empty()]),
        HirKind::Literal(lit) => {
            let mut l = Lit::empty();
            for &b in lit.0.iter() {
                l.push(b, true);
            }
            Some(vec![l])
        }
        HirKind::Class(class) => class_lits(class),
        HirKind::Capture(c) => prefixes(&c.sub),
        // `x+` is `x x*`: what may follow the first `x` (another `x`, or what comes after)
        // extends the literals, so that `or\s+1` starts with `or 1`, `or  `…, not just `or `.
        HirKind::Repetition(r) if r.min == 1 && r.max.is_none() => {
            let rest = Hir::repetition(regex_syntax::hir::Repetition {
                min: 0,
                ..r.clone()
            });
            prefixes(&Hir::concat(vec![(*r.sub).clone(), rest]))
        }
        HirKind::Repetition(r) => {
            let mut lits = prefixes(&r.sub)?;
            if r.max != Some(1) {
                // More repetitions may follow a whole one: the literal cannot be extended.
                lits.iter_mut().for_each(|l| l.complete = false);
            }
            if r.min == 0 {
                lits.push(Lit::empty());
            }
            Some(lits)
        }
        HirKind::Concat(subs) => {
            let mut acc = vec![Lit::empty()];
            for sub in subs {
                if acc.iter().all(|l| !l.complete) {
                    break;
                }
                let next = prefixes(sub);
                let grow = acc.iter().filter(|l| l.complete).count();
                match next {
                    Some(next) if acc.len() - grow + grow * next.len() <= MAX_LITS => {
                        let mut out = Vec::with_capacity(acc.len() + grow * next.len());
                        for a in acc {
                            if !a.complete {
                                out.push(a);
                                continue;
                            }
                            for n in &next {
                                let mut l = a.clone();
                                for (i, &b) in n.bytes.iter().enumerate() {
                                    l.push(b, n.exact & (1 << i) != 0);
                                }
                                if l.complete {
                                    l.complete = n.complete;
                                }
                                out.push(l);
                            }
                        }
                        out.sort();
                        out.dedup();
                        acc = out;
                    }
                    _ => {
                        acc.iter_mut().for_each(|l| l.complete = false);
                        break;
                    }
                }
            }
            Some(acc)
        }
        HirKind::Alternation(alts) => {
            let mut out = union(alts, MAX_UNION, prefixes)?;
            out.sort();
            out.dedup();
            Some(out)
        }
    }
}

/// A class as single-byte literals (letters present in both cases fold to one), if it is small.
fn class_lits(class: &Class) -> Option<Vec<Lit>> {
    let mut bytes = [false; 256];
    match class {
        Class::Bytes(c) => {
            if c.ranges()
                .iter()
                .map(|r| usize::from(r.end() - r.start()) + 1)
                .sum::<usize>()
                > 2 * MAX_CLASS
            {
                return None;
            }
            for r in c.ranges() {
                for b in r.start()..=r.end() {
                    bytes[b as usize] = true;
                }
            }
        }
        Class::Unicode(c) => {
            let mut n = 0;
            for r in c.ranges() {
                if !r.end().is_ascii() {
                    return None;
                }
                n += r.end() as usize - r.start() as usize + 1;
                if n > 2 * MAX_CLASS {
                    return None;
                }
                for b in r.start() as u8..=r.end() as u8 {
                    bytes[b as usize] = true;
                }
            }
        }
    }
    let mut lits = Vec::new();
    for b in 0..=255u8 {
        if !bytes[b as usize] {
            continue;
        }
        let mut l = Lit::empty();
        if b.is_ascii_alphabetic() {
            let (lo, up) = (b.to_ascii_lowercase(), b.to_ascii_uppercase());
            if bytes[lo as usize] && bytes[up as usize] {
                if b == up {
                    continue; // the lower-case byte stands for both
                }
                l.push(lo, false);
            } else {
                l.push(b, true);
            }
        } else {
            l.push(b, true);
        }
        lits.push(l);
    }
    (lits.len() <= MAX_CLASS).then_some(lits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start_literals(pattern: &str) -> Vec<String> {
        let hir = super::super::file::parse_pattern(pattern).unwrap();
        match start_of(&hir) {
            Start::Literals { lits, .. } => lits
                .iter()
                .map(|l| String::from_utf8_lossy(&l.bytes).into_owned())
                .collect(),
            other => panic!("{pattern}: no start literals: {other:?}"),
        }
    }

    /// `x+` extends the literals with what may follow its first `x`: a unit `or\s+1` is asked
    /// where `or` and a space are followed by `1` or more space, not at every `or `.
    #[test]
    fn one_or_more_extends_the_start_literals() {
        let lits = start_literals(r"\bor\s+1\s*=");
        let space = |c: u8| c == b' ' || (b'\t'..=b'\r').contains(&c);
        assert!(
            lits.iter().all(|l| {
                let b = l.as_bytes();
                b.len() >= 4 && b.starts_with(b"or") && space(b[2]) && (space(b[3]) || b[3] == b'1')
            }),
            "{lits:?}"
        );
        assert!(lits.contains(&"or 1=".to_string()), "{lits:?}");
        assert!(lits.contains(&"or  ".to_string()), "{lits:?}");
        // Without a `+` nothing changes: `x*` may match nothing, so what follows starts too.
        let lits = start_literals(r"\bor\s*1");
        assert!(lits.contains(&"or1".to_string()), "{lits:?}");
    }
}
