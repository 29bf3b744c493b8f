//! The compiled scorer: the rules' patterns go into a few multi-pattern regexes (one per run of
//! consecutive rules, see `PART_BUDGET`), and one leftmost-first pass over the text counts matches
//! per rule (capped by the rule file).
//!
//! One forward pass is what makes scoring fast: the earlier design (a `RegexSet` to find the matching
//! rules, then one `find_iter` per matching rule) scanned a typical CVE text ten times and ran
//! at a fifth of the speed. The price is that a stretch of text counts for one rule only: the
//! match that starts first, and among matches starting at the same place, the rule that comes
//! first in the file. Rules therefore do not double-count the same words.
//!
//! Why a few regexes and not one: the lazy DFA of one regex over every rule builds a state for
//! each combination of partial matches it meets, and on diverse real text it keeps meeting new
//! ones (a warm second pass over the same 18 MB of realdata texts takes a tenth of the first), so
//! most of the time goes into building states, not into searching. Each part's DFA meets far fewer
//! combinations. The leftmost-first result is the same: the overall match is the part match with
//! the smallest start, ties going to the rule that comes first; a part's next match stays valid
//! until the search position passes its start, so each part scans each text about once.

use super::file::{RuleSpec, SIZE_LIMIT};
use super::{RuleHit, Score};
use regex_automata::{meta, util::syntax, Input, MatchKind};

/// Room for the lazy DFA's states of each part; grows on demand, so small rule sets stay small.
const DFA_CACHE: usize = 32 * 1024 * 1024;

/// Pattern text per part: consecutive rules go into one regex until their full patterns pass this
/// many bytes (a longer rule gets a part of its own). The default rules (≈ 42 KB) make 5 parts;
/// on the texts of ../shared/realdata this took 1.09 s of CPU against 1.42 s for one regex (8 KB:
/// 1.10 s, 8 rules a part: 1.22 s, 2 KB: slower than one regex); see the README.
const PART_BUDGET: usize = 12_000;

/// One run of consecutive rules, `first..first + n`, compiled into one regex.
#[derive(Debug, Clone)]
struct Part {
    first: usize,
    regex: meta::Regex,
}

/// A part's next match (start, end, rule index), as found from some earlier position.
type Pending = Option<Option<(usize, usize, usize)>>;

#[derive(Debug, Clone)]
pub struct Scorer {
    parts: Vec<Part>,
    specs: Vec<RuleSpec>,
}

impl Scorer {
    /// Compile validated rules. Patterns were checked one by one already, so only the size of
    /// the whole set can still fail here.
    pub fn compile(specs: Vec<RuleSpec>) -> Result<Scorer, String> {
        Scorer::compile_parts(specs, PART_BUDGET)
    }

    /// `compile` with another budget of pattern bytes per part (tests compare part layouts).
    pub(super) fn compile_parts(specs: Vec<RuleSpec>, budget: usize) -> Result<Scorer, String> {
        let patterns: Vec<String> = specs.iter().map(RuleSpec::full_pattern).collect();
        let mut parts = Vec::new();
        let mut first = 0;
        while first < patterns.len() {
            let mut end = first + 1;
            let mut bytes = patterns[first].len();
            while end < patterns.len() && bytes + patterns[end].len() <= budget {
                bytes += patterns[end].len();
                end += 1;
            }
            let regex = meta::Regex::builder()
                // Same syntax as `file::build_regex`: bytes, ASCII classes and case folding.
                .syntax(syntax::Config::new().unicode(false).utf8(false))
                .configure(
                    meta::Config::new()
                        .match_kind(MatchKind::LeftmostFirst)
                        .nfa_size_limit(Some(SIZE_LIMIT))
                        .hybrid_cache_capacity(DFA_CACHE),
                )
                .build_many(&patterns[first..end])
                .map_err(|e| e.to_string())?;
            parts.push(Part { first, regex });
            first = end;
        }
        Ok(Scorer { parts, specs })
    }

    /// The next counted match at or after `at`: (start, end, rule index). `pending` holds each
    /// part's next match from earlier calls on the same text (all `None` for a new text); a
    /// pending match that starts at or after `at` is still the part's leftmost-first match from
    /// `at` (nothing of that part starts in between, and look-behind sees the whole text).
    fn next_match(
        &self,
        hay: &[u8],
        at: usize,
        pending: &mut [Pending],
    ) -> Option<(usize, usize, usize)> {
        let mut best: Option<(usize, usize, usize)> = None;
        for (part, slot) in self.parts.iter().zip(pending.iter_mut()) {
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
                        .map(|m| (m.start(), m.end(), part.first + m.pattern().as_usize())),
                );
            }
            if let Some(Some(m)) = *slot {
                if best.is_none_or(|b| (m.0, m.2) < (b.0, b.2)) {
                    best = Some(m);
                }
            }
        }
        best
    }

    /// How many regexes the rules were split into.
    #[cfg(test)]
    pub(super) fn part_count(&self) -> usize {
        self.parts.len()
    }

    pub fn specs(&self) -> impl Iterator<Item = &RuleSpec> {
        self.specs.iter()
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Where each counted match lies in `text` (byte ranges, with the rule's index), for
    /// highlighting. Same leftmost-first pass as `score`, but with full match spans; it is only
    /// called for the one record a curator opens, never on the hot path.
    pub fn spans(&self, text: &str) -> Vec<(std::ops::Range<usize>, usize)> {
        let hay = text.as_bytes();
        let mut pending = vec![None; self.parts.len()];
        let mut spans = Vec::new();
        let mut at = 0;
        while let Some((start, end, rule)) = self.next_match(hay, at, &mut pending) {
            spans.push((start..end, rule));
            at = end.max(at + 1);
        }
        spans
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
        if let [part] = &self.parts[..] {
            // One part: only ends are needed to count and go on, so each step is a forward DFA
            // search (`search_half`) without the reverse search that would find where a match
            // starts.
            while at < hay.len() {
                let input = Input::new(hay).span(at..hay.len());
                let Some(m) = part.regex.search_half(&input) else {
                    break;
                };
                count(m.pattern().as_usize());
                at = m.offset().max(at + 1);
            }
        } else {
            let mut pending = [None; 16];
            let mut big = Vec::new();
            let pending: &mut [Pending] = if self.parts.len() <= pending.len() {
                &mut pending[..self.parts.len()]
            } else {
                big.resize(self.parts.len(), None);
                &mut big
            };
            while at < hay.len() {
                let Some((_, end, rule)) = self.next_match(hay, at, pending) else {
                    break;
                };
                count(rule);
                at = end.max(at + 1);
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
