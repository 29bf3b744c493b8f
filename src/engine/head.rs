//! The verdict head inside the engine: which features the verifier pools, the head in force
//! (the store's, else the shipped default for this model), the examples it learns from
//! (curator labels, a seed file, weak labels sampled from the rules' confident tiers while the
//! verifier is idle), retraining, and P(head) for every record that has features.
//!
//! P(head) is stored on each record and is a decision input like P(yes): a retrain rescores the
//! records from their stored features (no model call) and re-decides them like a threshold move.
//!
//! The head also reads the record's rule score, but learns its weight from curator labels only:
//! weak labels were chosen *by* the score (a head taught by them would just echo it), and seeds
//! carry no score of this run's rules.

use crate::decide::{DecisionInputs, Label};
use crate::rules::{Thresholds, Tier};
use crate::store::features::{self as sf, Flips, HeadLabel, StoredFeatures};
use crate::verify::head::{self, Example, Extra, FeatureSpec, Head, LabelSource, TrainOptions};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// `--head auto|off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
pub enum HeadMode {
    /// A head decides the verify band when the verifier gives features: the shipped default
    /// for the default model, refined by this run's labels.
    #[default]
    Auto,
    /// Zero-shot P(yes) only.
    Off,
}

/// Engine options of the verdict head (`EngineConfig::head`).
#[derive(Debug, Clone)]
pub struct HeadOptions {
    pub mode: HeadMode,
    /// Layer whose mean-pooled hidden states the head reads.
    pub layer: usize,
    /// Labelled texts to learn from (`--head-seed`), already read: (text, security?, group).
    pub seed: Vec<(String, bool, String)>,
    /// Retrain after this many new curator labels on records with features.
    pub retrain_every: usize,
    /// Weak labels sampled per class from the rules' confident tiers (0: none).
    pub weak_per_class: usize,
    /// Start from the shipped default head when it fits the model.
    pub use_default: bool,
    pub train: TrainOptions,
}

impl Default for HeadOptions {
    fn default() -> Self {
        Self {
            mode: HeadMode::Auto,
            layer: head::DEFAULT_MIDDLE_LAYER,
            seed: Vec::new(),
            retrain_every: 10,
            weak_per_class: 200,
            use_default: true,
            train: TrainOptions::default(),
        }
    }
}

/// Weak labels: well above `high` (positives) or well below `low` (negatives).
pub fn weak_label(i: &DecisionInputs, tier: Tier, t: &Thresholds) -> Option<bool> {
    if !i.scored || i.text_len < 80 || i.label.is_some() {
        return None;
    }
    match tier {
        Tier::Keep if i.score >= t.high + (t.high - t.low).max(1.0) * 2.0 => Some(true),
        Tier::Reject if i.text_len >= t.min_text_len && i.score <= t.low / 2.0 => Some(false),
        _ => None,
    }
}

/// Features kept in memory per record: f16 bits (half the memory of f32).
pub type Packed = Arc<[u16]>;

pub fn pack(v: &[f32]) -> Packed {
    v.iter().map(|x| sf::f16_bits(*x)).collect()
}

pub fn unpack(v: &[u16]) -> Vec<f32> {
    v.iter().map(|h| sf::f16_to_f32(*h)).collect()
}

/// The engine's head state (owned by the decider).
pub struct HeadState {
    pub opts: HeadOptions,
    /// The features the verifier pools; `None`: the head is off (`off_reason` says why).
    pub spec: Option<FeatureSpec>,
    pub off_reason: Option<String>,
    /// The head in force and whether the curator has it switched on.
    pub active: Option<Head>,
    pub enabled: bool,
    /// The shipped default for this model, if it fits: the prior retrains refine.
    pub prior: Option<Head>,
    /// Features of records, by seq.
    pub feats: HashMap<i64, Packed>,
    /// Seed and weak examples (label source, positive, group, features, P(yes)).
    pub extra: Vec<(String, LabelSource, bool, String, Packed, Option<f32>)>,
    /// Curator labels since the last training.
    pub labels_since: usize,
    pub last_flips: Option<Flips>,
    /// Seeds still to featurize (index into opts.seed) and weak seqs in flight / to send.
    pub seeds_left: Vec<usize>,
    pub weak_todo: Vec<(i64, bool)>,
    pub weak_in_flight: HashMap<i64, bool>,
    pub weak_picked: bool,
    /// Idle work was sent since the last training: retrain once it is all back.
    pub idle_sent: bool,
}

impl HeadState {
    /// The head's state at engine start. `store` is the run store (read); `spec` what the
    /// verifier offers.
    pub fn new(
        opts: HeadOptions,
        spec: Option<FeatureSpec>,
        verifier: Option<(&str, Option<&str>)>,
        store: &crate::store::RunStore,
    ) -> (HeadState, Vec<String>) {
        let mut notes = Vec::new();
        let mut st = HeadState {
            seeds_left: (0..opts.seed.len()).collect(),
            opts,
            spec: None,
            off_reason: None,
            active: None,
            enabled: true,
            prior: None,
            feats: HashMap::new(),
            extra: Vec::new(),
            labels_since: 0,
            last_flips: None,
            weak_todo: Vec::new(),
            weak_in_flight: HashMap::new(),
            weak_picked: false,
            idle_sent: false,
        };
        if st.opts.mode == HeadMode::Off {
            st.off_reason = Some("--head off".into());
            return (st, notes);
        }
        let Some(spec) = spec else {
            let why = match verifier {
                None => "no verifier".to_string(),
                Some((_, Some(reason))) => {
                    format!("{reason}; verify-tier records are decided by P(yes)")
                }
                Some((v, None)) => format!(
                    "the {v} verifier gives no hidden-state features; verify-tier records are \
                     decided by P(yes)"
                ),
            };
            notes.push(format!("head off: {why}"));
            st.off_reason = Some(why);
            st.seeds_left.clear();
            return (st, notes);
        };
        if st.opts.use_default {
            st.prior = head::shipped_default_for(&spec);
            if st.prior.is_none() {
                notes.push(format!(
                    "head: no shipped default head for features `{}`; the head starts when labels arrive",
                    spec.key()
                ));
            }
        }
        let conn = store.conn();
        let path = store.path();
        // The store's active head, if it reads these features.
        match sf::active_head(conn, path) {
            Ok(Some(h)) => match h.check_features(&spec) {
                Ok(()) => st.active = Some(h),
                Err(e) => notes.push(format!("head: stored head ignored: {e}")),
            },
            Ok(None) => {}
            Err(e) => notes.push(format!("head: {e}")),
        }
        if st.active.is_none() {
            st.active = st.prior.clone();
        }
        // Stored features of this run's records, and the seed/weak examples.
        let key = spec.key();
        if let Ok(by_hash) = sf::load_features(conn, path, &key) {
            if !by_hash.is_empty() {
                if let Ok(records) = sf::head_records(conn, path) {
                    for r in records {
                        if let Some(f) = by_hash.get(&r.content_hash) {
                            st.feats.insert(r.seq, pack(&f.vec));
                        }
                    }
                }
                if let Ok(labels) = sf::head_labels(conn, path) {
                    for l in labels {
                        if let Some(f) = by_hash.get(&l.content_hash) {
                            st.extra.push((
                                hex(&l.content_hash),
                                l.source,
                                l.positive,
                                l.group.clone(),
                                pack(&f.vec),
                                f.p_yes,
                            ));
                            if l.source == LabelSource::Weak {
                                st.weak_picked = true;
                            }
                        }
                    }
                }
            }
        }
        // Seeds already featurized in an earlier session are not asked again.
        let known: HashSet<String> = st.extra.iter().map(|e| e.0.clone()).collect();
        st.seeds_left.retain(|&i| {
            !known.contains(&hex(blake3::hash(st.opts.seed[i].0.as_bytes()).as_bytes()))
        });
        st.spec = Some(spec);
        (st, notes)
    }

    pub fn on(&self) -> bool {
        self.spec.is_some()
    }

    /// P(head) of a record with these features and P(yes), when a head is in force.
    pub fn predict(&self, feats: &[u16], extra: Extra) -> Option<f32> {
        let h = self.active.as_ref().filter(|_| self.enabled)?;
        Some(h.predict_f16(feats, extra))
    }

    /// Training examples: curator labels on records with features, then seeds and weak
    /// labels (a text labelled by the curator is not counted twice).
    /// `labelled`: (seq, label, P(yes), rule score when the record was scored).
    pub fn examples(&self, labelled: &[(i64, Label, Option<f32>, Option<f32>)]) -> Vec<Example> {
        let mut out = Vec::new();
        for (seq, label, p_yes, score) in labelled {
            if let Some(f) = self.feats.get(seq) {
                out.push(Example {
                    key: format!("seq:{seq}"),
                    group: "curator".into(),
                    pooled: unpack(f),
                    p_yes: *p_yes,
                    score: *score,
                    positive: *label == Label::Keep,
                    source: LabelSource::Curator,
                });
            }
        }
        for (key, source, positive, group, f, p_yes) in &self.extra {
            out.push(Example {
                key: key.clone(),
                group: group.clone(),
                pooled: unpack(f),
                p_yes: *p_yes,
                // Seeds and weak labels do not teach the score's weight (module doc).
                score: None,
                positive: *positive,
                source: *source,
            });
        }
        out
    }

    /// Trains a new head from `examples` (the shipped default as prior when there is one).
    pub fn train(&self, examples: &[Example]) -> Result<Head, String> {
        let spec = self.spec.as_ref().ok_or("the head is off")?;
        head::train(spec, examples, &self.opts.train, self.prior.as_ref())
            .map_err(|e| e.to_string())
    }

    /// Whether idle work (seed featurization, weak labels) is still to be sent or back.
    pub fn idle_pending(&self) -> bool {
        self.on()
            && (!self.seeds_left.is_empty()
                || !self.weak_todo.is_empty()
                || !self.weak_in_flight.is_empty())
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Store rows for the features of answered records.
pub fn stored(hash: [u8; 32], p_yes: Option<f32>, f: &[f32]) -> StoredFeatures {
    StoredFeatures {
        content_hash: hash,
        p_yes,
        vec: f.to_vec(),
    }
}

/// A seed or weak label row for the store.
pub fn label_row(
    hash: [u8; 32],
    source: LabelSource,
    positive: bool,
    group: &str,
    text: Option<String>,
) -> HeadLabel {
    HeadLabel {
        content_hash: hash,
        source,
        positive,
        group: group.into(),
        text,
    }
}

/// Reads a seed file (any input `scan` reads) with a label field: (text, security?, group).
/// Errors when no record has the field, or when all have the same class.
pub fn read_seed(
    path: &Path,
    label_field: &str,
    positive: &[String],
) -> Result<Vec<(String, bool, String)>, String> {
    use crate::cli::pipeline::{stream, Item};
    use std::ops::ControlFlow;
    let opts = crate::ingest::IngestOptions {
        label_field: Some(label_field.to_string()),
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut unlabelled = 0usize;
    let mut errors = Vec::new();
    let group = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "seed".into());
    let mut consume = |item: Item| -> ControlFlow<()> {
        match item {
            Item::Record(rec) if !rec.text.trim().is_empty() => match rec.label {
                Some(l) => out.push((rec.text, positive.contains(&l), group.clone())),
                None => unlabelled += 1,
            },
            Item::Error(e) => errors.push(e.to_string()),
            _ => {}
        }
        ControlFlow::Continue(())
    };
    stream(&[path.to_path_buf()], &opts, true, &mut consume)
        .map_err(|e| format!("--head-seed {}: {e}", path.display()))?;
    if let Some(e) = errors.first() {
        return Err(format!("--head-seed {}: {e}", path.display()));
    }
    if out.is_empty() {
        return Err(format!(
            "--head-seed {}: no record has the label field {label_field:?} ({unlabelled} records without it)",
            path.display()
        ));
    }
    let pos = out.iter().filter(|x| x.1).count();
    if pos == 0 || pos == out.len() {
        return Err(format!(
            "--head-seed {}: every labelled record is {} ({} records): a head needs both classes (positive values: {positive:?})",
            path.display(),
            if pos == 0 { "negative" } else { "positive" },
            out.len()
        ));
    }
    Ok(out)
}

/// The rule score as a head input: only for records the rules scored.
pub fn score_input(i: &DecisionInputs) -> Option<f32> {
    i.scored.then_some(i.score)
}

/// P(head) for every record of `index` with features and an answer, under `head` (None: no
/// head); returns the records whose P(head) changed. Follow with `Index::redecide`.
pub fn rescore_index(
    index: &mut crate::engine::index::Index,
    feats: &HashMap<i64, Packed>,
    head: Option<&Head>,
) -> Vec<(i64, Option<f32>)> {
    let mut changed = Vec::new();
    let folded = head.map(Head::folded);
    for (&seq, f) in feats {
        let Some(pos) = index.pos(seq) else {
            continue;
        };
        let i = index.inputs_at(pos);
        if i.p_yes.is_none() {
            continue;
        }
        let extra = Extra::new(i.p_yes, score_input(&i));
        let p = folded.as_ref().map(|h| h.predict_f16(f, extra));
        if p != i.p_head {
            index.set_p_head(pos, p);
            changed.push((seq, p));
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(score: f32, text_len: usize) -> DecisionInputs {
        DecisionInputs {
            score,
            text_len,
            scored: true,
            p_yes: None,
            p_head: None,
            label: None,
        }
    }

    #[test]
    fn weak_labels_come_only_from_well_inside_the_confident_tiers() {
        let t = Thresholds::default(); // high 4.5, low 2.0
        assert_eq!(weak_label(&inputs(20.0, 200), Tier::Keep, &t), Some(true));
        // Keep tier but near `high`: no label.
        assert_eq!(weak_label(&inputs(5.0, 200), Tier::Keep, &t), None);
        assert_eq!(weak_label(&inputs(0.0, 200), Tier::Reject, &t), Some(false));
        assert_eq!(weak_label(&inputs(1.9, 200), Tier::Reject, &t), None);
        // Too short, unscored, labelled, or in the band: none.
        assert_eq!(weak_label(&inputs(0.0, 40), Tier::Reject, &t), None);
        let mut i = inputs(20.0, 200);
        i.scored = false;
        assert_eq!(weak_label(&i, Tier::Keep, &t), None);
        i.scored = true;
        i.label = Some(Label::Reject);
        assert_eq!(weak_label(&i, Tier::Keep, &t), None);
        assert_eq!(weak_label(&inputs(3.0, 200), Tier::Verify, &t), None);
    }

    #[test]
    fn packed_features_round_trip_at_half_precision() {
        let v = [0.25f32, -1.5, 3.0, 1e-3];
        let back = unpack(&pack(&v));
        for (a, b) in v.iter().zip(&back) {
            assert!((a - b).abs() <= a.abs() * 1e-3);
        }
    }
}
