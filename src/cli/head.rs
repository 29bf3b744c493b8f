//! The verdict head on the command line: `--head auto|off`, `--head-seed FILE` and friends for
//! `run` (one `HeadArgs`, flattened), and `cyberfilter head show|train STORE`: metrics, a retrain
//! from the store's features and labels, re-deciding the verify band, flips each way.

use super::{EXIT_CONFIG, EXIT_DATAERR, EXIT_FAILURE, EXIT_OK, EXIT_VERIFIER};
use crate::decide::{decide, Decision, DecisionInputs, Label, Verdict};
use crate::engine::head::{read_seed, HeadMode, HeadOptions};
use crate::store::features::{self as sf, Flips};
use crate::store::{parse_verdict, RunStore};
use crate::verify::head::{self, Example, Extra, FeatureSpec, Head, LabelSource, TrainOptions};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// Verdict-head flags of `run` (and the TUI).
#[derive(Debug, Clone, clap::Args)]
pub struct HeadArgs {
    /// Verdict head on the model's hidden states: `auto` decides the verify band by P(head)
    /// when the verifier gives features (the shipped default for the default model, refined
    /// by this run's labels); `off`: zero-shot P(yes) only.
    #[arg(long, value_enum, default_value = "auto", env = "CYBERFILTER_HEAD")]
    pub head: HeadMode,
    /// Labelled texts for the head (any format `scan` reads, with a label field).
    #[arg(long, value_name = "FILE")]
    pub head_seed: Option<PathBuf>,
    /// Label field of the seed file, and the value(s) meaning "security-relevant".
    #[arg(long, value_name = "NAME", default_value = "label")]
    pub head_label_field: String,
    #[arg(long, value_name = "VALUE", default_values_t = ["security".to_string(), "keep".to_string()])]
    pub head_positive: Vec<String>,
    /// Retrain the head after this many new curator labels.
    #[arg(long, value_name = "N", default_value_t = HeadOptions::default().retrain_every)]
    pub head_retrain_every: usize,
    /// Weak labels sampled per class from the rules' confident tiers (0: none).
    #[arg(long, value_name = "N", default_value_t = HeadOptions::default().weak_per_class)]
    pub head_weak: usize,
    /// Layer whose mean-pooled hidden states the head reads.
    #[arg(long, value_name = "L", default_value_t = head::DEFAULT_MIDDLE_LAYER)]
    pub head_layer: usize,
}

impl HeadArgs {
    /// The engine's options; reads and checks the seed file.
    pub fn options(&self) -> Result<HeadOptions, String> {
        let seed = match (&self.head_seed, self.head) {
            (Some(p), HeadMode::Auto) => read_seed(p, &self.head_label_field, &self.head_positive)?,
            _ => Vec::new(),
        };
        Ok(HeadOptions {
            mode: self.head,
            layer: self.head_layer,
            seed,
            retrain_every: self.head_retrain_every,
            weak_per_class: self.head_weak,
            ..Default::default()
        })
    }
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum HeadCommand {
    /// The head in force: examples by source, CV AUC, when trained, flips of each retrain.
    Show(ShowArgs),
    /// Retrain from the store's features and labels (no model call), re-decide the verify
    /// band, report flips each way.
    Train(TrainArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ShowArgs {
    /// The run store (path, or name in the runs folder).
    pub store: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    pub store: PathBuf,
    /// L2 penalty (towards the shipped default head when it fits the model).
    #[arg(long, default_value_t = TrainOptions::default().l2)]
    pub l2: f64,
    /// Start from scratch instead of refining the shipped default head.
    #[arg(long)]
    pub no_default: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: &HeadCommand) -> i32 {
    match cmd {
        HeadCommand::Show(a) => show(a),
        HeadCommand::Train(a) => train(a),
    }
}

fn show(a: &ShowArgs) -> i32 {
    let path = super::resolve_store(&a.store);
    let store = match RunStore::open_read(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cyberfilter head show: {e}");
            return EXIT_CONFIG;
        }
    };
    let (conn, p) = (store.conn(), store.path());
    let (heads, active, specs) = match (
        sf::heads(conn, p),
        sf::active_head(conn, p),
        sf::feature_specs(conn, p),
    ) {
        (Ok(h), Ok(a), Ok(s)) => (h, a, s),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("cyberfilter head show: {e}");
            return EXIT_FAILURE;
        }
    };
    let decided: Vec<(String, i64)> = conn
        .prepare("SELECT COALESCE(decided_by, 'pending'), COUNT(*) FROM records WHERE tier = 'verify' GROUP BY 1 ORDER BY 1")
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap_or_default();
    if a.json {
        let v = serde_json::json!({
            "store": path.display().to_string(),
            "active": active,
            "history": heads.iter().map(|e| serde_json::json!({
                "version": e.head.version, "trained_at": e.head.metrics.trained_at,
                "examples": e.head.metrics.examples, "cv_auc": e.head.metrics.cv_auc,
                "to_kept": e.flips.to_kept, "to_removed": e.flips.to_removed, "reason": e.reason,
            })).collect::<Vec<_>>(),
            "features": specs,
            "verify_tier_decided_by": decided.iter().cloned().collect::<BTreeMap<_, _>>(),
        });
        println!("{v}");
        return EXIT_OK;
    }
    println!("store {}", path.display());
    for (spec, n) in &specs {
        println!("features {spec}: {n} texts");
    }
    match &active {
        None => println!("head: none in force (zero-shot P(yes) decides the verify band)"),
        Some(h) => print!("{}", describe(h)),
    }
    if !heads.is_empty() {
        println!("retrains (oldest first):");
        for e in &heads {
            println!(
                "  {}  trained {}  {} examples  CV AUC {}  flips +{} kept -{} removed  ({})",
                e.head.version,
                e.head.metrics.trained_at,
                e.head.metrics.examples,
                e.head
                    .metrics
                    .cv_auc
                    .map_or("-".into(), |a| format!("{a:.3}")),
                e.flips.to_kept,
                e.flips.to_removed,
                e.reason
            );
        }
    }
    println!(
        "verify tier decided by: {}",
        decided
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    EXIT_OK
}

/// A head's metrics, a few lines.
pub fn describe(h: &Head) -> String {
    let mut s = format!(
        "head {} on `{}`{}\n  {} examples ({} positive), CV AUC {} over {} folds, l2 {}, trained at {}{}\n",
        h.version,
        h.spec.key(),
        if h.use_p_yes { " + P(yes)" } else { "" },
        h.metrics.examples,
        h.metrics.positives,
        h.metrics.cv_auc.map_or("-".into(), |a| format!("{a:.3}")),
        h.metrics.folds,
        h.metrics.l2,
        h.metrics.trained_at,
        h.metrics
            .prior
            .as_ref()
            .map_or(String::new(), |p| format!(", refining {p}"))
    );
    s += "  examples by source: ";
    s += &h
        .metrics
        .by_source
        .iter()
        .map(|(k, [p, n])| format!("{k} {p}+/{n}-"))
        .collect::<Vec<_>>()
        .join(", ");
    s += "\n  by group: ";
    s += &h
        .metrics
        .by_group
        .iter()
        .map(|(k, [p, n])| format!("{k} {p}+/{n}-"))
        .collect::<Vec<_>>()
        .join(", ");
    s += "\n";
    s
}

/// The training examples of a store for `spec`: curator labels on records with features,
/// then seed and weak labels (a text labelled by the curator is not counted again).
pub fn store_examples(store: &RunStore, spec: &FeatureSpec) -> Result<Vec<Example>, String> {
    let (conn, p) = (store.conn(), store.path());
    let feats = sf::load_features(conn, p, &spec.key()).map_err(|e| e.to_string())?;
    let records = sf::head_records(conn, p).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in &records {
        let Some(label) = r.label.as_deref().and_then(Label::parse) else {
            continue;
        };
        if let Some(f) = feats.get(&r.content_hash) {
            if seen.insert(r.content_hash) {
                out.push(Example {
                    key: format!("seq:{}", r.seq),
                    group: "curator".into(),
                    pooled: f.vec.clone(),
                    p_yes: r.p_yes.or(f.p_yes),
                    score: r.scored.then_some(r.score),
                    positive: label == Label::Keep,
                    source: LabelSource::Curator,
                });
            }
        }
    }
    // Weak labels are keyed like the engine's (by seq) so both give the same version.
    let seq_of: HashMap<[u8; 32], i64> = records.iter().map(|r| (r.content_hash, r.seq)).collect();
    for l in sf::head_labels(conn, p).map_err(|e| e.to_string())? {
        if seen.contains(&l.content_hash) {
            continue;
        }
        if let Some(f) = feats.get(&l.content_hash) {
            let key = match (l.source, seq_of.get(&l.content_hash)) {
                (LabelSource::Weak, Some(seq)) => format!("seq:{seq}"),
                _ => crate::engine::head::hex(&l.content_hash),
            };
            out.push(Example {
                key,
                group: l.group.clone(),
                pooled: f.vec.clone(),
                p_yes: f.p_yes,
                // As in the engine: only curator labels teach the score's weight.
                score: None,
                positive: l.positive,
                source: l.source,
            });
        }
    }
    Ok(out)
}

/// What re-deciding a store's records under `head` changes: P(head) per record with features
/// and an answer, the decisions that differ from the stored ones, and flips each way.
pub struct StoreRedecision {
    pub p_head: Vec<(i64, Option<f32>)>,
    pub changed: Vec<(i64, Decision)>,
    pub flips: Flips,
}

/// Re-decides every stored record from stored inputs with P(head) from `head` (None: no
/// head) and the store's features: no model call.
pub fn redecide_store(store: &RunStore, head: Option<&Head>) -> Result<StoreRedecision, String> {
    let (conn, p) = (store.conn(), store.path());
    let t = store
        .thresholds()
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let feats = match head {
        Some(h) => sf::load_features(conn, p, &h.spec.key()).map_err(|e| e.to_string())?,
        None => HashMap::new(),
    };
    let mut out = StoreRedecision {
        p_head: Vec::new(),
        changed: Vec::new(),
        flips: Flips::default(),
    };
    for r in sf::head_records(conn, p).map_err(|e| e.to_string())? {
        let p_head = match (head, r.p_yes, feats.get(&r.content_hash)) {
            (Some(h), Some(py), Some(f)) => {
                Some(h.predict(&f.vec, Extra::new(Some(py), r.scored.then_some(r.score))))
            }
            _ => None,
        };
        let inputs = DecisionInputs {
            score: r.score,
            text_len: r.text_len,
            scored: r.scored,
            p_yes: r.p_yes,
            p_head,
            label: r.label.as_deref().and_then(Label::parse),
        };
        let d = decide(&inputs, &t);
        if p_head != r.p_head {
            out.p_head.push((r.seq, p_head));
        }
        let old = parse_verdict(&r.verdict);
        if old != Some(d.verdict) {
            match d.verdict {
                Verdict::Kept => out.flips.to_kept += 1,
                Verdict::Removed => out.flips.to_removed += 1,
                Verdict::Pending => {}
            }
        }
        out.changed.push((r.seq, d));
    }
    Ok(out)
}

fn train(a: &TrainArgs) -> i32 {
    let path = super::resolve_store(&a.store);
    let mut store = match RunStore::open(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cyberfilter head train: {e}");
            return EXIT_CONFIG;
        }
    };
    let (conn, p) = (store.conn(), store.path());
    // The features to train on: the head in force's, else the most common in the store.
    let spec = match sf::active_head(conn, p) {
        Ok(Some(h)) => Some(h.spec),
        _ => None,
    };
    let spec = spec.or_else(|| {
        let specs = sf::feature_specs(conn, p).ok()?;
        let (key, _) = specs.into_iter().max_by_key(|s| s.1)?;
        sf::heads(conn, p)
            .ok()?
            .into_iter()
            .map(|e| e.head.spec)
            .find(|s| s.key() == key)
            .or_else(|| spec_from_key(&key))
    });
    let Some(spec) = spec else {
        eprintln!(
            "cyberfilter head train: {}: no features stored; run with --head auto and the MLX verifier first",
            path.display()
        );
        return EXIT_DATAERR;
    };
    let examples = match store_examples(&store, &spec) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cyberfilter head train: {e}");
            return EXIT_FAILURE;
        }
    };
    let prior = (!a.no_default)
        .then(|| head::shipped_default_for(&spec))
        .flatten();
    let opts = TrainOptions {
        l2: a.l2,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let h = match head::train(&spec, &examples, &opts, prior.as_ref()) {
        Ok(h) => h,
        Err(e) => {
            // Nothing changes in the store.
            eprintln!(
                "cyberfilter head train: {}: {e}; the store is unchanged",
                path.display()
            );
            return EXIT_DATAERR;
        }
    };
    let train_ms = started.elapsed().as_millis();
    let r = match redecide_store(&store, Some(&h)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cyberfilter head train: {e}");
            return EXIT_FAILURE;
        }
    };
    let mut write = || -> Result<(), crate::store::StoreError> {
        let tx = store.begin()?;
        sf::set_p_head(&tx, &path, Some(&h.version), &r.p_head)?;
        RunStore::set_decisions(&tx, &path, &r.changed)?;
        sf::put_head(&tx, &path, &h, r.flips, "head train")?;
        tx.commit()
            .map_err(|source| crate::store::StoreError::Sqlite {
                path: path.display().to_string(),
                source,
            })
    };
    if let Err(e) = write() {
        eprintln!("cyberfilter head train: {e}");
        return EXIT_FAILURE;
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({"head": h, "to_kept": r.flips.to_kept, "to_removed": r.flips.to_removed,
                "rescored": r.p_head.len(), "train_ms": train_ms})
        );
    } else {
        print!("{}", describe(&h));
        println!(
            "trained in {train_ms} ms; {} records rescored; flips: +{} kept, -{} removed",
            r.p_head.len(),
            r.flips.to_kept,
            r.flips.to_removed
        );
    }
    EXIT_OK
}

/// A feature spec back from its key (`model|layerN|pooling|tT|dD`).
pub fn spec_from_key(key: &str) -> Option<FeatureSpec> {
    let parts: Vec<&str> = key.rsplitn(5, '|').collect();
    if parts.len() != 5 {
        return None;
    }
    Some(FeatureSpec {
        dim: parts[0].strip_prefix('d')?.parse().ok()?,
        max_text_tokens: parts[1].strip_prefix('t')?.parse().ok()?,
        pooling: parts[2].to_string(),
        layer: parts[3].strip_prefix("layer")?.parse().ok()?,
        model: parts[4].to_string(),
    })
}

#[allow(dead_code)]
const _: i32 = EXIT_VERIFIER;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_comes_back_from_its_key_even_with_bars_in_the_model_name() {
        let s = FeatureSpec {
            model: "http:a|b".into(),
            layer: 16,
            pooling: "mean".into(),
            max_text_tokens: 256,
            dim: 576,
        };
        assert_eq!(spec_from_key(&s.key()), Some(s));
        assert_eq!(spec_from_key("nonsense"), None);
    }
}
