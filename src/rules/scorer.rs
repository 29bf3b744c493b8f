//! The compiled scorer: every rule's pattern goes into one multi-pattern regex, and a single
//! leftmost-first pass over the text counts matches per rule (capped by the rule file).
//!
//! One forward pass is what makes scoring fast: the earlier design (a `RegexSet` to find the matching
//! rules, then one `find_iter` per matching rule) scanned a typical CVE text ten times and ran
//! at a fifth of the speed. The price is that a stretch of text counts for one rule only: the
//! match that starts first, and among matches starting at the same place, the rule that comes
//! first in the file. Rules therefore do not double-count the same words.

use super::file::{RuleSpec, SIZE_LIMIT};
use super::{RuleHit, Score};
use regex_automata::{meta, util::syntax, Input, MatchKind};

/// Room for the lazy DFA's states; grows on demand, so small rule sets stay small.
const DFA_CACHE: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Scorer {
    regex: meta::Regex,
    specs: Vec<RuleSpec>,
}

impl Scorer {
    /// Compile validated rules. Patterns were checked one by one already, so only the size of
    /// the whole set can still fail here.
    pub fn compile(specs: Vec<RuleSpec>) -> Result<Scorer, String> {
        let patterns: Vec<String> = specs.iter().map(RuleSpec::full_pattern).collect();
        let regex = meta::Regex::builder()
            // Same syntax as `file::build_regex`: bytes, ASCII classes and case folding.
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .configure(
                meta::Config::new()
                    .match_kind(MatchKind::LeftmostFirst)
                    .nfa_size_limit(Some(SIZE_LIMIT))
                    .hybrid_cache_capacity(DFA_CACHE),
            )
            .build_many(&patterns)
            .map_err(|e| e.to_string())?;
        Ok(Scorer { regex, specs })
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
        self.regex
            .find_iter(text.as_bytes())
            .map(|m| (m.range(), m.pattern().as_usize()))
            .collect()
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
        // Only ends are needed to count and go on, so each step is a forward DFA search
        // (`search_half`) without the reverse search that would find where a match starts.
        // Patterns never match the empty string (validation), so `end` always advances.
        let hay = text.as_bytes();
        let mut at = 0;
        while at < hay.len() {
            let input = Input::new(hay).span(at..hay.len());
            let Some(m) = self.regex.search_half(&input) else {
                break;
            };
            let c = &mut counts[m.pattern().as_usize()];
            any += usize::from(*c == 0);
            *c += 1;
            at = m.offset().max(at + 1);
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
