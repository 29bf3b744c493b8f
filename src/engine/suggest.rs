//! Rules mined from the curator's labels, for a running engine (the workbench's suggest
//! overlay) and for `cyberfilter rules suggest --store`: both read the labelled corpus with
//! [`corpus_from_store`], so the list is the same. A candidate is tried by re-scoring every
//! stored text with the run's rules plus the candidate ([`rescore`]); the engine previews the
//! flips that gives and, when the curator adds it, writes the rule file and re-decides.

use crate::decide::Label;
use crate::rules::suggest::{Candidate, Corpus, SuggestOptions};
use crate::rules::{RuleHit, RuleSet, Thresholds};
use crate::store::RunStore;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One candidate as the workbench lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuggestedRule {
    /// The mined phrase (lowercase words).
    pub phrase: String,
    /// The rule's name in the TOML (`mined-…`).
    pub name: String,
    /// The ready `[[rule]]` table, its figures in a comment above it.
    pub toml: String,
    pub weight: f32,
    /// Labelled records containing the phrase: kept (positive) and rejected.
    pub pos: u32,
    pub neg: u32,
    pub precision: f64,
    pub recall: f64,
    pub z: f64,
}

impl SuggestedRule {
    pub fn from_candidate(c: &Candidate) -> SuggestedRule {
        SuggestedRule {
            phrase: c.phrase.clone(),
            name: c.rule_name(),
            toml: c.to_toml("keep"),
            weight: c.weight,
            pos: c.pos,
            neg: c.neg,
            precision: c.precision,
            recall: c.recall,
            z: c.z,
        }
    }
}

/// The candidates mined from a run's labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Suggestions {
    pub candidates: Vec<SuggestedRule>,
    /// Labelled records of each class (labelled keep, labelled reject).
    pub kept: u32,
    pub rejected: u32,
}

/// The curator's labels from the store's label log (the last entry per record wins; an undo
/// entry carries the label it restores), each record's stored text scored by `rules`.
/// Returns the corpus and how many labelled records had no stored text.
pub fn corpus_from_store(
    store: &RunStore,
    rules: &RuleSet,
    max_n: usize,
) -> Result<(Corpus, u64), String> {
    let mut corpus = Corpus::new(max_n);
    let mut labels: HashMap<i64, Option<Label>> = HashMap::new();
    for entry in store.label_log().map_err(|e| e.to_string())? {
        labels.insert(entry.record_seq, entry.new_label);
    }
    let mut seqs: Vec<(i64, Label)> = labels
        .into_iter()
        .filter_map(|(seq, l)| l.map(|l| (seq, l)))
        .collect();
    seqs.sort_unstable_by_key(|(seq, _)| *seq);
    let mut missing = 0u64;
    for (seq, label) in seqs {
        match store.text_for(seq).map_err(|e| e.to_string())? {
            Some((text, _)) => {
                let score = rules.score(&text).score;
                corpus.add(&text, label == Label::Keep, score, true);
            }
            None => missing += 1,
        }
    }
    Ok((corpus, missing))
}

/// Candidates from a store's labels under `rules` (the workbench's list).
pub fn suggest_from_store(
    store: &RunStore,
    rules: &RuleSet,
    t: &Thresholds,
    opts: &SuggestOptions,
) -> Result<Suggestions, String> {
    let (corpus, _) = corpus_from_store(store, rules, opts.max_n)?;
    suggestions(&corpus, rules, t, opts)
}

/// Candidates from a labelled corpus (labelled keep positive), or why there are none.
pub fn suggestions(
    corpus: &Corpus,
    rules: &RuleSet,
    t: &Thresholds,
    opts: &SuggestOptions,
) -> Result<Suggestions, String> {
    let [kept, rejected] = corpus.class_sizes();
    if kept == 0 || rejected == 0 {
        return Err(format!(
            "label records of both kinds first ({kept} labelled keep, {rejected} labelled reject)"
        ));
    }
    let candidates = corpus
        .suggest(rules, t, opts)
        .iter()
        .map(SuggestedRule::from_candidate)
        .collect();
    Ok(Suggestions {
        candidates,
        kept,
        rejected,
    })
}

/// The run's rule text with `rule_toml` appended, compiled; the error names the rule file.
pub fn with_rule(rules: &RuleSet, rule_toml: &str, origin: &str) -> Result<RuleSet, String> {
    let mut src = rules.source().to_string();
    if !src.ends_with('\n') {
        src.push('\n');
    }
    src.push('\n');
    src.push_str(rule_toml);
    RuleSet::from_toml(&src, origin).map_err(|e| e.to_string())
}

/// Every scored stored record's new score and hits under `rules`, by seq.
pub fn rescore(store: &RunStore, rules: &RuleSet) -> Result<Vec<(i64, f32, Vec<RuleHit>)>, String> {
    let mut out = Vec::new();
    store
        .for_each_record(|r| {
            if r.scored {
                let s = rules.score(&r.text);
                out.push((r.seq, s.score, s.hits));
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    out.sort_unstable_by_key(|(seq, ..)| *seq);
    Ok(out)
}

/// Where a run's added rules are written: the rule file it was started with, or for the
/// built-in rules a file beside the store (`RUN.rules.toml`, the built-in rules plus what the
/// curator added; resume with `--rules` naming it).
pub fn session_rule_file(rules_file: Option<&Path>, store: &Path) -> PathBuf {
    match rules_file {
        Some(p) => p.to_path_buf(),
        None => {
            let mut name = store.as_os_str().to_owned();
            name.push(".rules.toml");
            PathBuf::from(name)
        }
    }
}
