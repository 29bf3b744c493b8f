//! `cyberfilter bench accuracy --layers ...`: the verdict head against the zero-shot P(yes) on
//! labelled inputs. Every labelled text goes through the verifier once, with the hidden states
//! of the record's own tokens mean-pooled at each layer asked for (cached on disk with
//! `--features-cache`), then per layer a logistic-regression head is cross-validated on the
//! input (or trained on `--train` and tested on the input).

use super::bench::{best_f1_cut, prf_at, roc_auc};
use super::eval::Prf;
use crate::verify::head::{self, Example, Extra, FeatureSpec, Head, LabelSource, TrainOptions};
use crate::verify::mlx::MlxVerifier;
use crate::verify::Verifier;
use serde::Serialize;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct HeadBenchArgs {
    /// Layers whose mean-pooled hidden states feed a head (1-based; the last is read after the
    /// final norm), e.g. `8,16,24,30`. Without it only the zero-shot P(yes) is measured.
    #[arg(long, value_delimiter = ',', value_name = "L,..")]
    pub layers: Vec<usize>,
    /// Keep pooled features in this file (appended as computed; reused when model, layers and
    /// text cut match), so a rerun does not call the model again.
    #[arg(long, value_name = "FILE")]
    pub features_cache: Option<PathBuf>,
    /// Folds of the cross-validation.
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// L2 penalties tried (each reported).
    #[arg(long, value_delimiter = ',', default_value = "0.05")]
    pub l2: Vec<f64>,
    /// Train the head on this labelled file instead of cross-validating on the input; the
    /// input is then only tested on.
    #[arg(long, value_name = "FILE")]
    pub train: Option<PathBuf>,
    /// Write the head trained on `--train` (or on the whole input) at `--head-layer` here,
    /// with a `.manifest.json` beside it.
    #[arg(long, value_name = "FILE")]
    pub save_head: Option<PathBuf>,
    /// Layer of the saved head (default: the verifier's middle layer).
    #[arg(long, value_name = "L")]
    pub head_layer: Option<usize>,
    /// Also a head on these layers' pooled states side by side (e.g. `16,24,30`; each must be
    /// among --layers).
    #[arg(long, value_delimiter = ',', value_name = "L,..")]
    pub concat: Vec<usize>,
    /// Also test a saved head (e.g. the shipped default) on the input, as it is.
    #[arg(long, value_name = "FILE")]
    pub eval_head: Option<PathBuf>,
}

/// Pooled features for one text: P(yes), then `layers.len() * dim` floats.
#[derive(Debug, Clone)]
pub struct Featurized {
    pub p_yes: f32,
    pub pooled: Vec<f32>,
}

/// An append-only file of featurized texts keyed by (model, layers, cut, text).
struct FeatureCache {
    path: Option<PathBuf>,
    map: HashMap<[u8; 32], Featurized>,
    salt: String,
}

impl FeatureCache {
    fn open(path: Option<&Path>, salt: String) -> Self {
        let mut map = HashMap::new();
        if let Some(p) = path {
            if let Ok(mut f) = std::fs::File::open(p) {
                let mut buf = Vec::new();
                let _ = f.read_to_end(&mut buf);
                let mut at = 0;
                while at + 40 <= buf.len() {
                    let key: [u8; 32] = buf[at..at + 32].try_into().expect("32 bytes");
                    let n =
                        u32::from_le_bytes(buf[at + 32..at + 36].try_into().expect("4")) as usize;
                    let end = at + 36 + 4 * (n + 1);
                    if end > buf.len() {
                        break; // a torn last record
                    }
                    let floats: Vec<f32> = buf[at + 36..end]
                        .chunks(4)
                        .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
                        .collect();
                    map.insert(
                        key,
                        Featurized {
                            p_yes: floats[0],
                            pooled: floats[1..].to_vec(),
                        },
                    );
                    at = end;
                }
            }
        }
        Self {
            path: path.map(Path::to_path_buf),
            map,
            salt,
        }
    }

    fn key(&self, text: &str) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(self.salt.as_bytes());
        h.update(&[0]);
        h.update(text.as_bytes());
        *h.finalize().as_bytes()
    }

    fn append(&mut self, items: &[([u8; 32], Featurized)]) -> std::io::Result<()> {
        if let Some(p) = &self.path {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?;
            let mut buf = Vec::new();
            for (k, v) in items {
                buf.extend_from_slice(k);
                buf.extend_from_slice(&(v.pooled.len() as u32).to_le_bytes());
                buf.extend_from_slice(&v.p_yes.to_le_bytes());
                for x in &v.pooled {
                    buf.extend_from_slice(&x.to_le_bytes());
                }
            }
            f.write_all(&buf)?;
        }
        for (k, v) in items {
            self.map.insert(*k, v.clone());
        }
        Ok(())
    }
}

/// Every text through the verifier once (what the cache lacks), in chunks, with progress.
pub fn featurize(
    v: &mut MlxVerifier,
    texts: &[&str],
    layers: &[usize],
    cache_path: Option<&Path>,
    who: &str,
) -> Result<Vec<Featurized>, String> {
    let salt = format!("{}|{:?}|t{}", v.model_id(), layers, v.prompt_version());
    let mut cache = FeatureCache::open(cache_path, salt);
    let keys: Vec<[u8; 32]> = texts.iter().map(|t| cache.key(t)).collect();
    let todo: Vec<usize> = (0..texts.len())
        .filter(|&i| !cache.map.contains_key(&keys[i]))
        .collect();
    if !todo.is_empty() {
        eprintln!(
            "cyberfilter bench {who}: featurizing {} of {} texts ({} cached)",
            todo.len(),
            texts.len(),
            texts.len() - todo.len()
        );
    }
    let started = std::time::Instant::now();
    for (n, chunk) in todo.chunks(32).enumerate() {
        let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
        let out = v
            .answer_pooled(&batch, layers, true)
            .map_err(|e| e.to_string())?;
        let items: Vec<([u8; 32], Featurized)> = chunk
            .iter()
            .zip(out)
            .map(|(&i, (a, pooled))| {
                (
                    keys[i],
                    Featurized {
                        p_yes: a.map_or(f32::NAN, |a| a.p_yes),
                        pooled,
                    },
                )
            })
            .collect();
        cache
            .append(&items)
            .map_err(|e| format!("features cache: {e}"))?;
        let done = ((n + 1) * 32).min(todo.len());
        eprintln!(
            "  {done}/{} texts, {:.2} texts/s",
            todo.len(),
            done as f64 / started.elapsed().as_secs_f64()
        );
    }
    Ok(keys.iter().map(|k| cache.map[k].clone()).collect())
}

/// One head configuration's figures.
#[derive(Debug, Clone, Serialize)]
pub struct HeadRow {
    /// The layer, or `a+b+c` for layers side by side.
    pub layer: String,
    pub pooling: &'static str,
    pub with_p_yes: bool,
    /// The default rules' score as an input (the engine's head learns its weight from curator
    /// labels; here every example is a real label).
    #[serde(default)]
    pub with_score: bool,
    pub l2: f64,
    /// `cv` (k-fold on the input) or `train` (trained on --train, tested on the input).
    pub protocol: &'static str,
    pub roc_auc: Option<f64>,
    pub best_cut: Option<f32>,
    pub at_best_cut: Option<Prf>,
    pub at_cut: Prf,
    /// With --train: the head's own CV AUC on the training file.
    pub train_cv_auc: Option<f64>,
}

impl HeadRow {
    /// The figures of `scores` against the labels; the head's description is filled in by the
    /// caller (defaults: layer-less, mean-pooled, P(yes) and score out, CV).
    fn measured(scores: &[f32], positive: &[bool], cut: f32) -> HeadRow {
        let best = best_f1_cut(scores, positive);
        HeadRow {
            layer: String::new(),
            pooling: "mean",
            with_p_yes: false,
            with_score: false,
            l2: 0.0,
            protocol: "cv",
            roc_auc: roc_auc(scores, positive),
            best_cut: best.as_ref().map(|b| b.0),
            at_best_cut: best.map(|b| b.1),
            at_cut: prf_at(scores, positive, cut),
            train_cv_auc: None,
        }
    }
}

/// P(head) of each `test` example: from a head trained on `train` when given (protocol
/// `train`, with that head's own CV AUC), else out-of-fold by k-fold CV on `test` (`cv`).
fn head_scores(
    spec: &FeatureSpec,
    test: &[Example],
    train: Option<Vec<Example>>,
    opts: &TrainOptions,
) -> Result<(Vec<f32>, &'static str, Option<f64>), String> {
    match train {
        Some(ex) => {
            let h = head::train(spec, &ex, opts, None).map_err(|e| e.to_string())?;
            let s = test
                .iter()
                .map(|e| h.predict(&e.pooled, extra(e)))
                .collect();
            Ok((s, "train", h.metrics.cv_auc))
        }
        None => {
            let (_, oof) =
                head::train_with_oof(spec, test, opts, None).map_err(|e| e.to_string())?;
            let oof = oof.ok_or("too few examples of a class for cross-validation")?;
            Ok((oof, "cv", None))
        }
    }
}

pub struct Labelled<'a> {
    pub texts: Vec<&'a str>,
    pub positive: Vec<bool>,
}

impl Labelled<'_> {
    /// The default rules' score of each text.
    pub fn rule_scores(&self) -> Vec<f32> {
        let rules = crate::rules::RuleSet::default_rules();
        self.texts.iter().map(|t| rules.score(t).score).collect()
    }
}

/// Examples of one layer's slot; `scores` (the rule score per text) when the head reads it.
fn examples(
    feats: &[Featurized],
    positive: &[bool],
    scores: Option<&[f32]>,
    slot: usize,
    dim: usize,
    group: &str,
) -> Vec<Example> {
    feats
        .iter()
        .zip(positive)
        .enumerate()
        .map(|(i, (f, &p))| Example {
            key: format!("{group}:{i}"),
            group: group.into(),
            pooled: f.pooled[slot * dim..(slot + 1) * dim].to_vec(),
            p_yes: f.p_yes.is_finite().then_some(f.p_yes),
            score: scores.map(|s| s[i]),
            positive: p,
            source: LabelSource::Seed,
        })
        .collect()
}

fn extra(e: &Example) -> Extra {
    Extra::new(e.p_yes, e.score)
}

pub struct HeadBench {
    pub rows: Vec<HeadRow>,
    pub saved: Option<(PathBuf, Head)>,
}

/// The per-layer heads. `input` is tested; `train` (when given) is what heads learn from.
#[allow(clippy::too_many_arguments)]
pub fn run(
    v: &mut MlxVerifier,
    args: &HeadBenchArgs,
    input: &Labelled,
    train: Option<&Labelled>,
    input_feats: &[Featurized],
    train_feats: Option<&[Featurized]>,
    cut: f32,
    manifest_extra: serde_json::Value,
) -> Result<HeadBench, String> {
    let dim = v.config().dim as usize;
    let model = v.model_id();
    let tokens = v.options().max_text_tokens;
    let spec_for = |layer: usize| FeatureSpec {
        model: model.clone(),
        layer,
        pooling: "mean".into(),
        max_text_tokens: tokens,
        dim,
    };
    let input_rule = input.rule_scores();
    let train_rule = train.map(Labelled::rule_scores);
    let mut rows = Vec::new();
    for (slot, &layer) in args.layers.iter().enumerate() {
        for (with_p_yes, with_score) in [(false, false), (true, false), (true, true)] {
            for &l2 in &args.l2 {
                let opts = TrainOptions {
                    l2,
                    folds: args.folds,
                    use_p_yes: with_p_yes,
                    use_score: with_score,
                    ..Default::default()
                };
                let spec = spec_for(layer);
                let rule = |s: &[f32]| with_score.then(|| s.to_vec());
                let test = examples(
                    input_feats,
                    &input.positive,
                    rule(&input_rule).as_deref(),
                    slot,
                    dim,
                    "input",
                );
                let train_ex = train.zip(train_feats).map(|(t, tf)| {
                    let tr = train_rule.as_deref().and_then(rule);
                    examples(tf, &t.positive, tr.as_deref(), slot, dim, "train")
                });
                let (scores, protocol, train_cv_auc) = head_scores(&spec, &test, train_ex, &opts)?;
                rows.push(HeadRow {
                    layer: layer.to_string(),
                    with_p_yes,
                    with_score,
                    l2,
                    protocol,
                    train_cv_auc,
                    ..HeadRow::measured(&scores, &input.positive, cut)
                });
            }
        }
    }
    if !args.concat.is_empty() {
        let slots: Vec<usize> = args
            .concat
            .iter()
            .map(|l| {
                args.layers
                    .iter()
                    .position(|x| x == l)
                    .ok_or(format!("--concat {l} is not among --layers"))
            })
            .collect::<Result<_, _>>()?;
        let join = |f: &[Featurized], pos: &[bool], group: &str| -> Vec<Example> {
            f.iter()
                .zip(pos)
                .enumerate()
                .map(|(i, (f, &p))| Example {
                    key: format!("{group}:{i}"),
                    group: group.into(),
                    pooled: slots
                        .iter()
                        .flat_map(|&s| f.pooled[s * dim..(s + 1) * dim].iter().copied())
                        .collect(),
                    p_yes: f.p_yes.is_finite().then_some(f.p_yes),
                    score: None,
                    positive: p,
                    source: LabelSource::Seed,
                })
                .collect()
        };
        let name = args
            .concat
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join("+");
        let spec = FeatureSpec {
            dim: dim * slots.len(),
            ..spec_for(0)
        };
        for &l2 in &args.l2 {
            let opts = TrainOptions {
                l2,
                folds: args.folds,
                use_p_yes: true,
                ..Default::default()
            };
            let test = join(input_feats, &input.positive, "input");
            let train_ex = train
                .zip(train_feats)
                .map(|(t, tf)| join(tf, &t.positive, "train"));
            let (scores, protocol, train_cv_auc) = head_scores(&spec, &test, train_ex, &opts)?;
            rows.push(HeadRow {
                layer: name.clone(),
                with_p_yes: true,
                with_score: false,
                l2,
                protocol,
                train_cv_auc,
                ..HeadRow::measured(&scores, &input.positive, cut)
            });
        }
    }
    if let Some(path) = &args.eval_head {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let h = Head::from_json(&text, &path.display().to_string()).map_err(|e| e.to_string())?;
        h.check_features(&spec_for(h.spec.layer))
            .map_err(|e| e.to_string())?;
        let slot = args
            .layers
            .iter()
            .position(|&l| l == h.spec.layer)
            .ok_or(format!(
                "the head reads layer {}: add it to --layers",
                h.spec.layer
            ))?;
        let test = examples(
            input_feats,
            &input.positive,
            h.use_score.then_some(input_rule.as_slice()),
            slot,
            dim,
            "input",
        );
        let scores: Vec<f32> = test
            .iter()
            .map(|e| h.predict(&e.pooled, extra(e)))
            .collect();
        rows.push(HeadRow {
            layer: h.spec.layer.to_string(),
            with_p_yes: h.use_p_yes,
            with_score: h.use_score,
            l2: h.metrics.l2,
            protocol: "saved",
            train_cv_auc: h.metrics.cv_auc,
            ..HeadRow::measured(&scores, &input.positive, cut)
        });
    }
    let mut saved = None;
    if let Some(path) = &args.save_head {
        let layer = args
            .head_layer
            .unwrap_or(head::DEFAULT_MIDDLE_LAYER.min(v.config().n_layers));
        let slot = args
            .layers
            .iter()
            .position(|&l| l == layer)
            .ok_or(format!("--head-layer {layer} is not among --layers"))?;
        let (src, feats, group) = match (train, train_feats) {
            (Some(t), Some(tf)) => (t, tf, "train"),
            _ => (input, input_feats, "input"),
        };
        // A shipped head reads no rule score: a curator's own rules score on their own scale,
        // and the run's curator labels teach that weight.
        let opts = TrainOptions {
            l2: args.l2[0],
            folds: args.folds,
            use_score: false,
            ..Default::default()
        };
        let ex = examples(feats, &src.positive, None, slot, dim, group);
        let h = head::train(&spec_for(layer), &ex, &opts, None).map_err(|e| e.to_string())?;
        std::fs::write(path, h.to_json() + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        let test = examples(input_feats, &input.positive, None, slot, dim, "input");
        let s: Vec<f32> = test
            .iter()
            .map(|e| h.predict(&e.pooled, extra(e)))
            .collect();
        let best = best_f1_cut(&s, &input.positive);
        let manifest = serde_json::json!({
            "head": path.file_name().map(|f| f.to_string_lossy().into_owned()),
            "version": h.version,
            "features": h.spec,
            "use_p_yes": h.use_p_yes,
            "trained_on": manifest_extra,
            "examples": h.metrics.examples,
            "positives": h.metrics.positives,
            "cv_folds": h.metrics.folds,
            "cv_roc_auc": h.metrics.cv_auc,
            "l2": h.metrics.l2,
            "tested_on": {
                "records": s.len(),
                "roc_auc": roc_auc(&s, &input.positive),
                "best_cut": best.as_ref().map(|b| b.0),
                "at_best_cut": best.map(|b| b.1),
                "at_cut": prf_at(&s, &input.positive, cut),
                "cut": cut,
            },
        });
        let mpath = manifest_path_for(path);
        std::fs::write(
            &mpath,
            serde_json::to_string_pretty(&manifest).expect("json") + "\n",
        )
        .map_err(|e| format!("{}: {e}", mpath.display()))?;
        saved = Some((path.clone(), h));
    }
    Ok(HeadBench { rows, saved })
}

/// `x.head.json` -> `x.manifest.json`.
pub fn manifest_path_for(head: &Path) -> PathBuf {
    let name = head
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".head.json").unwrap_or(&name);
    head.with_file_name(format!("{stem}.manifest.json"))
}

pub fn render(rows: &[HeadRow]) -> String {
    let mut s = String::from(
        "   layer pooling  P(yes) in  score in  l2      protocol  ROC AUC  best-F1 cut   F1@best  F1@cut  train CV AUC\n",
    );
    for r in rows {
        s += &format!(
            "{:>8} {:<8} {:<10} {:<9} {:<7} {:<9} {:>7}  {:>11}  {:>7}  {:>6.3}  {}\n",
            r.layer,
            r.pooling,
            if r.with_p_yes { "yes" } else { "no" },
            if r.with_score { "yes" } else { "no" },
            r.l2,
            r.protocol,
            r.roc_auc.map_or("-".into(), |a| format!("{a:.3}")),
            r.best_cut.map_or("-".into(), |c| format!("{c:.4}")),
            r.at_best_cut
                .as_ref()
                .map_or("-".into(), |p| format!("{:.3}", p.f1)),
            r.at_cut.f1,
            r.train_cv_auc.map_or("-".into(), |a| format!("{a:.3}")),
        );
    }
    s
}
