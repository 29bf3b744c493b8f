//! The compiled scorer: one `RegexSet` pass tells which rules match at all (most records match
//! only a handful of rules), then only those rules count their matches, up to their cap.

use super::file::{build_regex, RuleSpec, SIZE_LIMIT};
use super::{RuleHit, Score};
use regex::bytes::{Regex, RegexSet, RegexSetBuilder};

#[derive(Debug, Clone)]
pub struct Scorer {
    set: RegexSet,
    rules: Vec<CompiledRule>,
}

#[derive(Debug, Clone)]
struct CompiledRule {
    spec: RuleSpec,
    regex: Regex,
}

impl Scorer {
    /// Compile validated rules. Patterns were checked one by one already, so only the size of
    /// the whole set can still fail here.
    pub fn compile(specs: Vec<RuleSpec>) -> Result<Scorer, regex::Error> {
        let patterns: Vec<String> = specs.iter().map(RuleSpec::full_pattern).collect();
        let set = RegexSetBuilder::new(&patterns)
            .unicode(false)
            .size_limit(SIZE_LIMIT)
            .dfa_size_limit(SIZE_LIMIT)
            .build()?;
        let rules = specs
            .into_iter()
            .zip(&patterns)
            .map(|(spec, p)| {
                Ok(CompiledRule {
                    regex: build_regex(p)?,
                    spec,
                })
            })
            .collect::<Result<Vec<_>, regex::Error>>()?;
        Ok(Scorer { set, rules })
    }

    pub fn specs(&self) -> impl Iterator<Item = &RuleSpec> {
        self.rules.iter().map(|r| &r.spec)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Score = Σ weight × min(matches, cap) over matching rules; hits in rule-file order.
    pub fn score(&self, text: &str) -> Score {
        let text = text.as_bytes();
        let matched = self.set.matches(text);
        if !matched.matched_any() {
            return Score::default();
        }
        let mut score = 0.0f32;
        let mut hits = Vec::with_capacity(matched.len());
        for idx in matched.iter() {
            let rule = &self.rules[idx];
            let cap = rule.spec.cap as usize;
            let count = rule.regex.find_iter(text).take(cap).count().max(1);
            let contribution = rule.spec.weight * count as f32;
            score += contribution;
            hits.push(RuleHit {
                rule: rule.spec.name.clone(),
                category: rule.spec.category.clone(),
                count: count as u32,
                contribution,
            });
        }
        Score { score, hits }
    }
}
