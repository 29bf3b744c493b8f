//! Rules: a TOML rule file compiled once into a scorer. Rules only compute numbers (a score and
//! the matched rules); tiers come from two thresholds. No decision is taken here.
//!
//! CONTRACT (used by engine, store, scan/eval, TUI): `RuleSet::{default_rules, from_toml,
//! from_file, score, hash}`, `Score`, `RuleHit`, `Thresholds`, `Tier`, `tier_for`, `RuleError`.

mod file;
mod prefilter;
mod scorer;
mod starts;
pub mod suggest;

pub use file::{RuleSpec, DEFAULT_CAP};

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The rule file shipped with the binary (also `rules/default.toml` in the repo).
pub const DEFAULT_RULES_TOML: &str = include_str!("../../rules/default.toml");

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: rule `{rule}`: {reason}")]
    Rule {
        origin: String,
        rule: String,
        reason: String,
    },
    #[error("{origin}: cannot read: {source}")]
    Io {
        origin: String,
        #[source]
        source: std::io::Error,
    },
    /// Several problems in one file; `rules check` lists each.
    #[error("{} errors in the rule file: {}", .0.len(), join_errors(.0))]
    Many(Vec<RuleError>),
}

fn join_errors(errors: &[RuleError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

impl RuleError {
    /// Every single problem this error stands for (one, or each of `Many`).
    pub fn all(&self) -> Vec<&RuleError> {
        match self {
            RuleError::Many(list) => list.iter().flat_map(|e| e.all()).collect(),
            one => vec![one],
        }
    }

    fn from_list(mut errors: Vec<RuleError>) -> RuleError {
        if errors.len() == 1 {
            errors.pop().expect("one error")
        } else {
            RuleError::Many(errors)
        }
    }
}

/// One matched rule in a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleHit {
    pub rule: String,
    pub category: String,
    /// Number of matches counted (capped per rule by the rule file).
    pub count: u32,
    /// Contribution to the score (weight × min(count, cap)), negative for negative evidence.
    pub contribution: f32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub score: f32,
    pub hits: Vec<RuleHit>,
}

impl Score {
    pub fn rule_names(&self) -> Vec<&str> {
        self.hits.iter().map(|h| h.rule.as_str()).collect()
    }
}

/// Tier from the rule score alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Keep,
    Verify,
    Reject,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Keep => "keep",
            Tier::Verify => "verify",
            Tier::Reject => "reject",
        }
    }
}

/// Plain values that may change while a run is going.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Keep at or above this score.
    pub high: f32,
    /// Verify between `low` (inclusive) and `high`; reject below.
    pub low: f32,
    /// Text shorter than this (chars) is rejected whatever its score.
    pub min_text_len: usize,
    /// P(yes) at or above which the verifier's answer keeps a verify-tier record.
    pub p_yes_cut: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        // Same values as the `[thresholds]` of rules/default.toml (a unit test checks).
        Thresholds {
            high: 4.5,
            low: 2.0,
            min_text_len: 10,
            p_yes_cut: 0.5,
        }
    }
}

impl Thresholds {
    /// Every check a threshold set must pass before a run uses or stores it: finite numbers
    /// (a NaN would be written as `null` and make the store unreadable), `low` not above
    /// `high`, and the P(yes) cut a probability. The message names the offending values.
    pub fn validate(&self) -> Result<(), String> {
        if !self.high.is_finite() || !self.low.is_finite() {
            return Err(format!(
                "thresholds: high ({}) and low ({}) must be finite numbers",
                self.high, self.low
            ));
        }
        if self.low > self.high {
            return Err(format!(
                "thresholds: low ({}) is above high ({})",
                self.low, self.high
            ));
        }
        if !(0.0..=1.0).contains(&self.p_yes_cut) {
            return Err(format!(
                "thresholds: the P(yes) cut ({}) must be between 0 and 1",
                self.p_yes_cut
            ));
        }
        Ok(())
    }
}

/// The tier of a record with this score, text length and scored flag.
pub fn tier_for(score: f32, text_len: usize, scored: bool, t: &Thresholds) -> Tier {
    if !scored || text_len < t.min_text_len || score < t.low {
        Tier::Reject
    } else if score >= t.high {
        Tier::Keep
    } else {
        Tier::Verify
    }
}

/// A compiled rule set.
#[derive(Debug, Clone)]
pub struct RuleSet {
    hash: String,
    /// The rule file's text, so a rule can be added to it (`engine::suggest`).
    source: std::sync::Arc<str>,
    thresholds: Thresholds,
    scorer: scorer::Scorer,
}

impl RuleSet {
    pub fn default_rules() -> RuleSet {
        RuleSet::from_toml(DEFAULT_RULES_TOML, "<default rules>").expect("default rules compile")
    }

    pub fn from_file(path: &Path) -> Result<RuleSet, RuleError> {
        let src = std::fs::read_to_string(path).map_err(|source| RuleError::Io {
            origin: path.display().to_string(),
            source,
        })?;
        RuleSet::from_toml(&src, &path.display().to_string())
    }

    /// Parse, validate and compile a rule file. When several things are wrong the error is
    /// `RuleError::Many` with every one of them (see `RuleError::all`).
    pub fn from_toml(src: &str, origin: &str) -> Result<RuleSet, RuleError> {
        let parsed = file::parse(src, origin).map_err(RuleError::from_list)?;
        let scorer = scorer::Scorer::compile(parsed.rules).map_err(|e| RuleError::Parse {
            origin: origin.to_string(),
            message: format!("the rules together do not compile: {e}"),
        })?;
        Ok(RuleSet {
            hash: blake3::hash(src.as_bytes()).to_hex().to_string(),
            source: src.into(),
            thresholds: parsed.thresholds,
            scorer,
        })
    }

    /// The rule file's text as compiled.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Hex hash of the rule file text, stored with a run.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Thresholds from the file's `[thresholds]` table (defaults for what it leaves out).
    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// The rules in file order.
    pub fn rules(&self) -> impl Iterator<Item = &RuleSpec> {
        self.scorer.specs()
    }

    pub fn len(&self) -> usize {
        self.scorer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scorer.len() == 0
    }

    /// Every counted match in `text` as (byte range, rule), in text order, for highlighting.
    pub fn match_spans(&self, text: &str) -> Vec<(std::ops::Range<usize>, &RuleSpec)> {
        let specs: Vec<&RuleSpec> = self.rules().collect();
        self.scorer
            .spans(text)
            .into_iter()
            .map(|(r, i)| (r, specs[i]))
            .collect()
    }

    /// Score one text: the sum of matched rules' contributions and the list of hits.
    pub fn score(&self, text: &str) -> Score {
        self.scorer.score(text)
    }
}

#[cfg(test)]
mod tests;
