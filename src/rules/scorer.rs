//! The compiled scorer: one leftmost-first pass over the text counts matches per rule (capped by
//! the rule file), with the same result as one leftmost-first regex over every rule.
//!
//! One forward pass is what makes scoring fast: the earlier design (a `RegexSet` to find the matching
//! rules, then one `find_iter` per matching rule) scanned a typical CVE text ten times and ran
//! at a fifth of the speed. The price is that a stretch of text counts for one rule only: the
//! match that starts first, and among matches starting at the same place, the rule that comes
//! first in the file. Rules therefore do not double-count the same words.
//!
//! How it is searched. One regex over every rule is slow on diverse real text: its lazy DFA
//! builds a state for each combination of partial matches it meets (34k NFA states for the rules
//! of issue #12), and new text keeps meeting new ones, so most of the time went into building
//! states, not searching. Instead the rules are cut into *units* (a rule, or the branches of its
//! top-level alternation; see `prefilter`) and each unit gets the literals that its matches start
//! with. Per text, one pass over its words (`starts`) finds the places where some unit can
//! start (with the unit's `\b` and case-sensitive letters checked on the spot), and each such
//! place is tried with an anchored search of that unit alone, in (start, unit) order: the first
//! that matches is the leftmost-first match. An anchored search of one unit only walks that
//! unit's NFA states, so the lazy DFA stays small and is quickly warm. Units without a literal
//! start (a pattern that begins with `\w+` or a wide class) go into unanchored multi-pattern
//! regexes (`Part`); the overall match is the one with the smallest (start, unit) of both, and a
//! part's next match stays valid until the search position passes its start, so each part scans
//! each text about once.

use super::file::{parse_pattern, RuleSpec, SIZE_LIMIT};
use super::prefilter::{self, Plain, Start};
use super::starts::{FindScratch, StartFinder};
use super::{RuleHit, Score};
use regex_automata::{meta, Anchored, Input, MatchKind, PatternID};
use regex_syntax::hir::Hir;

/// Room for the lazy DFA's states of each regex; grows on demand, so small rule sets stay small.
const DFA_CACHE: usize = 32 * 1024 * 1024;

/// Pattern text per unanchored part: consecutive units go into one regex until their patterns
/// pass this many bytes (a longer unit gets a part of its own). Before the literal prefilter the
/// default rules (≈ 42 KB) made 5 parts; on the texts of ../shared/realdata 12 KB parts took
/// 1.09 s of CPU against 1.42 s for one regex (8 KB: 1.10 s, 8 rules a part: 1.22 s, 2 KB:
/// slower than one regex); see the README.
const PART_BUDGET: usize = 12_000;

/// A run of units without a literal start, compiled into one unanchored regex.
#[derive(Debug, Clone)]
struct Part {
    /// The unit of each pattern of `regex`.
    units: Vec<u32>,
    regex: meta::Regex,
}

/// A part's next match (start, end, unit), as found from some earlier position.
type Pending = Option<Option<(usize, usize, u32)>>;

/// The units with a literal start (or the text start), searched anchored where they may start.
#[derive(Debug, Clone)]
struct Prefiltered {
    /// Where the units' start literals occur.
    finder: StartFinder,
    /// (unit, pattern) of the units that can only match at the start of a text.
    at_text_start: Vec<(u32, u32)>,
    /// Every such unit, one pattern each, searched with `Anchored::Pattern`.
    regex: meta::Regex,
    /// For each pattern: the unit's strings when it is a plain alternation (checked directly).
    plain: Vec<Option<Plain>>,
}

/// A rule with `max_lines`: searched on its own, in texts that short only.
#[derive(Debug, Clone)]
struct Standalone {
    rule: usize,
    max_lines: usize,
    regex: meta::Regex,
}

#[derive(Debug, Clone)]
pub struct Scorer {
    specs: Vec<RuleSpec>,
    standalone: Vec<Standalone>,
    /// The rule of each unit (units are in priority order).
    unit_rule: Vec<u32>,
    anchored: Option<Prefiltered>,
    parts: Vec<Part>,
}

/// One text's search: the candidate starts and each regex's state.
struct Search<'h> {
    hay: &'h [u8],
    /// (start, unit, pattern) where a unit may start, sorted.
    hits: Vec<(usize, u32, u32)>,
    next_hit: usize,
    /// A hit whose anchored search matched: (start, end, unit).
    found: Option<(usize, usize, u32)>,
    pending: Vec<Pending>,
    find: FindScratch,
}

/// The buffers of a search, kept per thread from text to text so that scoring a text allocates
/// nothing; one text's worth at most (a buffer that grew past `KEEP` is dropped, not kept).
#[derive(Default)]
struct Scratch {
    hits: Vec<(usize, u32, u32)>,
    pending: Vec<Pending>,
    find: FindScratch,
}

const KEEP: usize = 1 << 16;

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::new(Scratch::default());
}

impl Drop for Search<'_> {
    fn drop(&mut self) {
        let (mut hits, mut pending, find) = (
            std::mem::take(&mut self.hits),
            std::mem::take(&mut self.pending),
            std::mem::take(&mut self.find),
        );
        if hits.capacity() <= KEEP && pending.capacity() <= KEEP && find.capacity() <= KEEP {
            hits.clear();
            pending.clear();
            SCRATCH.set(Scratch {
                hits,
                pending,
                find,
            });
        }
    }
}

fn regex_config() -> meta::Config {
    meta::Config::new()
        .match_kind(MatchKind::LeftmostFirst)
        .nfa_size_limit(Some(SIZE_LIMIT))
        .hybrid_cache_capacity(DFA_CACHE)
}

impl Scorer {
    /// Compile validated rules. Patterns were checked one by one already, so only the size of
    /// the whole set can still fail here.
    pub fn compile(specs: Vec<RuleSpec>) -> Result<Scorer, String> {
        Scorer::build(specs, true, PART_BUDGET)
    }

    /// Without the literal prefilter: every rule unanchored, in parts of `budget` pattern bytes
    /// (`usize::MAX`: one regex over every rule, the reference the tests compare with).
    #[cfg(test)]
    pub(super) fn compile_parts(specs: Vec<RuleSpec>, budget: usize) -> Result<Scorer, String> {
        Scorer::build(specs, false, budget)
    }

    fn build(specs: Vec<RuleSpec>, prefiltered: bool, budget: usize) -> Result<Scorer, String> {
        // The rules of the leftmost-first pass (their spec index) and the standalone ones.
        let mut pass_rules = Vec::new();
        let mut hirs = Vec::new();
        let mut standalone = Vec::new();
        for (rule, spec) in specs.iter().enumerate() {
            let hir = parse_pattern(&spec.full_pattern())?;
            match spec.max_lines {
                Some(n) => standalone.push(Standalone {
                    rule,
                    max_lines: n as usize,
                    regex: meta::Builder::new()
                        .configure(regex_config())
                        .build_from_hir(&hir)
                        .map_err(|e| e.to_string())?,
                }),
                None => {
                    pass_rules.push(rule as u32);
                    hirs.push(hir);
                }
            }
        }
        let units = if prefiltered {
            prefilter::plan(hirs)
        } else {
            hirs.into_iter()
                .enumerate()
                .map(|(rule, hir)| prefilter::Unit {
                    rule,
                    hir,
                    start: Start::Anywhere,
                    plain: None,
                })
                .collect()
        };
        let unit_rule = units.iter().map(|u| pass_rules[u.rule]).collect();
        let mut loose: Vec<(u32, Hir)> = Vec::new();
        let mut anchored: Vec<Hir> = Vec::new();
        let mut starts: Vec<(u32, u32, Vec<prefilter::Lit>, bool)> = Vec::new();
        let mut at_text_start = Vec::new();
        let mut plain = Vec::new();
        for (unit, u) in units.into_iter().enumerate() {
            let unit = unit as u32;
            let pattern = anchored.len() as u32;
            match u.start {
                Start::Anywhere => {
                    loose.push((unit, u.hir));
                    continue;
                }
                Start::BeginningOfText => at_text_start.push((unit, pattern)),
                Start::Literals {
                    lits,
                    word_boundary,
                } => starts.push((unit, pattern, lits, word_boundary)),
            }
            anchored.push(u.hir);
            plain.push(u.plain);
        }
        let anchored = if anchored.is_empty() {
            None
        } else {
            let finder = StartFinder::new(&starts)?;
            // Only ever searched anchored at a found start: a prefilter would never be used, and
            // extracting its literals from every unit took a fifth of the rules' compile time.
            let regex = meta::Builder::new()
                .configure(regex_config().auto_prefilter(false))
                .build_many_from_hir(&anchored)
                .map_err(|e| e.to_string())?;
            Some(Prefiltered {
                finder,
                at_text_start,
                regex,
                plain,
            })
        };
        let mut parts = Vec::new();
        let sizes: Vec<usize> = loose.iter().map(|(_, h)| h.to_string().len()).collect();
        let mut first = 0;
        while first < loose.len() {
            let mut end = first + 1;
            let mut bytes = sizes[first];
            while end < loose.len() && bytes.saturating_add(sizes[end]) <= budget {
                bytes += sizes[end];
                end += 1;
            }
            let hirs: Vec<&Hir> = loose[first..end].iter().map(|(_, h)| h).collect();
            let regex = meta::Builder::new()
                .configure(regex_config())
                .build_many_from_hir(&hirs)
                .map_err(|e| e.to_string())?;
            parts.push(Part {
                units: loose[first..end].iter().map(|(u, _)| *u).collect(),
                regex,
            });
            first = end;
        }
        Ok(Scorer {
            specs,
            standalone,
            unit_rule,
            anchored,
            parts,
        })
    }

    /// A new search of `hay`: where the anchored units may start, in (start, unit) order.
    fn search<'h>(&self, hay: &'h [u8]) -> Search<'h> {
        let Scratch {
            mut hits,
            mut pending,
            mut find,
        } = SCRATCH.take();
        pending.resize(self.parts.len(), None);
        if let Some(a) = &self.anchored {
            hits.extend(a.at_text_start.iter().map(|&(u, p)| (0, u, p)));
            a.finder.find(hay, &mut hits, &mut find);
        }
        Search {
            hay,
            hits,
            next_hit: 0,
            found: None,
            pending,
            find,
        }
    }

    /// The next counted match at or after `at`: (start, end, unit). `s` holds each part's next
    /// match from earlier calls on the same text; a pending match that starts at or after `at` is
    /// still the part's leftmost-first match from `at` (nothing of that part starts in between,
    /// and look-behind sees the whole text). Likewise the hits before `s.next_hit` that start at
    /// or after `at` were tried and did not match (an anchored search does not depend on `at`).
    fn next_match(&self, s: &mut Search, at: usize) -> Option<(usize, usize, u32)> {
        let hay = s.hay;
        let mut best: Option<(usize, usize, u32)> = None;
        for (part, slot) in self.parts.iter().zip(s.pending.iter_mut()) {
            let stale = match *slot {
                None => true,
                Some(Some((start, _, _))) => start < at,
                Some(None) => false,
            };
            if stale {
                let input = Input::new(hay).span(at..hay.len());
                *slot = Some(
                    part.regex
                        .find(input)
                        .map(|m| (m.start(), m.end(), part.units[m.pattern().as_usize()])),
                );
            }
            if let Some(Some(m)) = *slot {
                if best.is_none_or(|b| (m.0, m.2) < (b.0, b.2)) {
                    best = Some(m);
                }
            }
        }
        let Some(a) = &self.anchored else {
            return best;
        };
        if s.found.is_some_and(|f| f.0 < at) {
            s.found = None;
        }
        while s.found.is_none() {
            let Some(&(start, unit, pattern)) = s.hits.get(s.next_hit) else {
                break;
            };
            if start < at {
                s.next_hit += 1;
                continue;
            }
            if best.is_some_and(|b| (b.0, b.2) < (start, unit)) {
                break;
            }
            s.next_hit += 1;
            let end = match &a.plain[pattern as usize] {
                Some(plain) => plain.match_at(hay, start),
                None => {
                    let input = Input::new(hay)
                        .span(start..hay.len())
                        .anchored(Anchored::Pattern(PatternID::new_unchecked(
                            pattern as usize,
                        )));
                    a.regex.search_half(&input).map(|m| m.offset())
                }
            };
            if let Some(end) = end {
                s.found = Some((start, end, unit));
            }
        }
        match (s.found, best) {
            (Some(f), Some(b)) if (b.0, b.2) < (f.0, f.2) => Some(b),
            (Some(f), _) => Some(f),
            (None, b) => b,
        }
    }

    /// How many unanchored regexes the rules were split into.
    #[cfg(test)]
    pub(super) fn part_count(&self) -> usize {
        self.parts.len()
    }

    /// How many units are searched anchored at their start literals, of how many.
    #[cfg(test)]
    pub(super) fn anchored_units(&self) -> (usize, usize) {
        let n = self.anchored.as_ref().map_or(0, |a| a.regex.pattern_len());
        (n, self.unit_rule.len())
    }

    pub fn specs(&self) -> impl Iterator<Item = &RuleSpec> {
        self.specs.iter()
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Where each counted match lies in `text` (byte ranges, with the rule's index), for
    /// highlighting. Same leftmost-first pass as `score`, but with full match spans, then the
    /// standalone (`max_lines`) rules' matches where they cover no other; it is only called for
    /// the one record a curator opens, never on the hot path.
    pub fn spans(&self, text: &str) -> Vec<(std::ops::Range<usize>, usize)> {
        let mut search = self.search(text.as_bytes());
        let mut spans = Vec::new();
        let mut at = 0;
        while let Some((start, end, unit)) = self.next_match(&mut search, at) {
            spans.push((start..end, self.unit_rule[unit as usize] as usize));
            at = end.max(at + 1);
        }
        // A standalone rule's matches may cover the pass's: shown where they cover none.
        let pass = spans.len();
        for st in self.qualifying(text.as_bytes()) {
            for m in st.regex.find_iter(text.as_bytes()) {
                if !spans[..pass]
                    .iter()
                    .any(|(r, _)| r.start < m.end() && m.start() < r.end)
                {
                    spans.push((m.start()..m.end(), st.rule));
                }
            }
        }
        spans.sort_by_key(|(r, rule)| (r.start, *rule));
        spans
    }

    /// The standalone rules that count in `hay` (it has few enough lines).
    fn qualifying<'a>(&'a self, hay: &[u8]) -> impl Iterator<Item = &'a Standalone> {
        let lines = if self.standalone.is_empty() {
            0
        } else {
            super::file::line_count(hay)
        };
        self.standalone
            .iter()
            .filter(move |st| lines <= st.max_lines)
    }

    /// Score = Σ weight × min(matches, cap) over matching rules, except that the rules marked
    /// `requires_other_evidence` together add at most the positive total of the other rules
    /// (their contributions are scaled down to fit, and dropped when nothing else matched);
    /// hits in rule-file order.
    pub fn score(&self, text: &str) -> Score {
        // Counts per rule on the stack for ordinary rule sets, on the heap for huge ones.
        let mut small = [0u32; 256];
        let mut big = Vec::new();
        let counts: &mut [u32] = if self.specs.len() <= small.len() {
            &mut small[..self.specs.len()]
        } else {
            big.resize(self.specs.len(), 0);
            &mut big
        };
        let mut any = 0usize;
        let mut count = |rule: usize| {
            let c = &mut counts[rule];
            any += usize::from(*c == 0);
            *c += 1;
        };
        // Patterns never match the empty string (validation), so `at` always advances.
        let hay = text.as_bytes();
        let mut at = 0;
        if let (None, [part]) = (&self.anchored, &self.parts[..]) {
            // One regex (the reference layout): only ends are needed to count and go on, so each
            // step is a forward DFA search (`search_half`) without the reverse search that would
            // find where a match starts.
            while at < hay.len() {
                let input = Input::new(hay).span(at..hay.len());
                let Some(m) = part.regex.search_half(&input) else {
                    break;
                };
                count(self.unit_rule[part.units[m.pattern().as_usize()] as usize] as usize);
                at = m.offset().max(at + 1);
            }
        } else {
            let mut search = self.search(hay);
            while at < hay.len() {
                let Some((_, end, unit)) = self.next_match(&mut search, at) else {
                    break;
                };
                count(self.unit_rule[unit as usize] as usize);
                at = end.max(at + 1);
            }
        }
        for st in self.qualifying(hay) {
            let cap = self.specs[st.rule].cap as usize;
            for _ in st.regex.find_iter(hay).take(cap) {
                count(st.rule);
            }
        }
        if any == 0 {
            return Score::default();
        }
        // Positive evidence that stands on its own, and what the generic rules would add.
        let (mut specific, mut generic) = (0.0f32, 0.0f32);
        for (spec, &n) in self.specs.iter().zip(counts.iter()) {
            if n > 0 {
                let c = spec.weight * n.min(spec.cap) as f32;
                if spec.requires_other_evidence {
                    generic += c;
                } else if c > 0.0 {
                    specific += c;
                }
            }
        }
        let generic_scale = if generic > specific {
            specific / generic
        } else {
            1.0
        };
        let mut score = 0.0f32;
        let mut hits = Vec::with_capacity(any);
        for (spec, &n) in self.specs.iter().zip(counts.iter()) {
            if n == 0 {
                continue;
            }
            let count = n.min(spec.cap);
            let mut contribution = spec.weight * count as f32;
            if spec.requires_other_evidence {
                if generic_scale == 0.0 {
                    continue;
                }
                contribution *= generic_scale;
            }
            score += contribution;
            hits.push(RuleHit {
                rule: spec.name.clone(),
                category: spec.category.clone(),
                count,
                contribution,
            });
        }
        Score { score, hits }
    }
}
