//! The verdict head: a logistic regression on the verifier's pooled hidden states (plus the
//! zero-shot P(yes)), trained in-process from curator labels, a seed file and the rules'
//! confident tiers. It belongs to verify/ (features and training); its use is the decision's.
//!
//! A head is tied to the features it was trained on ([`FeatureSpec`]: model, layer, pooling,
//! text cut); loading one for other features is an error, never a silent mismatch.

pub mod lr;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Layer the head reads by default (of SmolLM2-135M's 30): on the arXiv sample, heads trained
/// on weak labels from the rest of realdata reached ROC AUC 0.996 on layers 16 and 24 against
/// 0.97 on the last, and layer 24 had the best F1 at the default cut (`cyberfilter bench
/// accuracy --layers`; README).
pub const DEFAULT_MIDDLE_LAYER: usize = 24;

/// What a feature vector is: which model read the text, which layer was pooled and how.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// The verifier's model id (`mlx:SmolLM2-135M-Instruct.Q4_1.gguf`).
    pub model: String,
    /// 1-based layer; the model's last layer is read after its final norm.
    pub layer: usize,
    /// `mean` over the record's own tokens (not the prompt, not padding).
    pub pooling: String,
    /// Record text cut to this many tokens before the pass.
    pub max_text_tokens: usize,
    pub dim: usize,
}

impl FeatureSpec {
    pub fn key(&self) -> String {
        format!(
            "{}|layer{}|{}|t{}|d{}",
            self.model, self.layer, self.pooling, self.max_text_tokens, self.dim
        )
    }
}

/// The head shipped for the default model (SmolLM2-135M-Instruct Q4_1 GGUF), trained by
/// `scripts/train-default-head.sh` on weak labels over ../shared/realdata; its manifest sits
/// beside it (`default/smollm2-135m.manifest.json`).
pub const SHIPPED_DEFAULT: &str = include_str!("default/smollm2-135m.head.json");

/// The shipped default head, when it reads exactly the features `run` makes (same model
/// file, layer, pooling and text cut); another model starts without it.
pub fn shipped_default_for(run: &FeatureSpec) -> Option<Head> {
    let h = Head::from_json(SHIPPED_DEFAULT, "shipped default head").ok()?;
    h.check_features(run).ok()?;
    Some(h)
}

/// Where a training example's label came from (curator labels weigh most).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelSource {
    Curator,
    Seed,
    Weak,
}

impl LabelSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LabelSource::Curator => "curator",
            LabelSource::Seed => "seed",
            LabelSource::Weak => "weak",
        }
    }
    /// Default weight of one example of this source.
    pub fn weight(self) -> f64 {
        match self {
            LabelSource::Curator => 4.0,
            LabelSource::Seed => 2.0,
            LabelSource::Weak => 1.0,
        }
    }
}

/// One labelled feature vector.
#[derive(Debug, Clone)]
pub struct Example {
    /// Stable identity (content hash, record id): part of the head's version.
    pub key: String,
    /// Where the example comes from, for the metrics (a source kind, a file, `seed`).
    pub group: String,
    pub pooled: Vec<f32>,
    pub p_yes: Option<f32>,
    /// The rule score, when this example may teach its weight: curator and seed labels. Weak
    /// labels leave it out (`None`): the score chose them, so it would only learn itself.
    pub score: Option<f32>,
    pub positive: bool,
    pub source: LabelSource,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HeadError {
    #[error("no training examples")]
    Empty,
    #[error("the training set has one class only ({positives} positive, {negatives} negative): a head needs both")]
    OneClass { positives: usize, negatives: usize },
    #[error("example {key}: {got} features, the head reads {want} ({spec})")]
    Dim {
        key: String,
        got: usize,
        want: usize,
        spec: String,
    },
    #[error("head {version} was trained on features `{trained}`, this run makes `{run}`: it cannot read them (a different model, layer, pooling or text cut); retrain it on this model")]
    OtherFeatures {
        version: String,
        trained: String,
        run: String,
    },
    #[error("head file {path}: {reason}")]
    File { path: String, reason: String },
}

/// How a head is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// L2 penalty on the standardised weights (towards the prior head's, when refining).
    pub l2: f64,
    /// Folds of the cross-validation that gives the AUC and the calibration.
    pub folds: usize,
    /// Use the zero-shot P(yes) as an input.
    pub use_p_yes: bool,
    /// Use the rule score as an input once some example carries one.
    pub use_score: bool,
    pub max_iter: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            l2: 0.05,
            folds: 5,
            use_p_yes: true,
            use_score: true,
            max_iter: 300,
        }
    }
}

/// What a trained head reports about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadMetrics {
    pub examples: usize,
    pub positives: usize,
    /// Examples per label source and per group: `[positives, negatives]`.
    pub by_source: BTreeMap<String, [usize; 2]>,
    pub by_group: BTreeMap<String, [usize; 2]>,
    /// k-fold cross-validated ROC AUC (None when a class has fewer examples than folds).
    pub cv_auc: Option<f64>,
    pub folds: usize,
    pub l2: f64,
    /// Unix seconds.
    pub trained_at: u64,
    /// Version of the head this one refined, if any.
    pub prior: Option<String>,
}

/// A trained head: standardisation, weights, bias, calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Head {
    pub spec: FeatureSpec,
    pub use_p_yes: bool,
    /// The rule score is the last input (heads made before it existed read without it).
    #[serde(default)]
    pub use_score: bool,
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    pub w: Vec<f32>,
    pub b: f32,
    /// Platt scaling of the logit, fitted on cross-validated logits: `sigmoid(a z + c)`.
    pub platt_a: f32,
    pub platt_c: f32,
    pub metrics: HeadMetrics,
    /// Hash of the training set and the weights.
    pub version: String,
}

fn p_yes_input(p: Option<f32>) -> Option<f32> {
    p.map(|p| {
        let p = p.clamp(1e-6, 1.0 - 1e-6) as f64;
        (p / (1.0 - p)).ln() as f32
    })
}

/// What a head reads beside the pooled vector: the zero-shot P(yes) and the rule score.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Extra {
    pub p_yes: Option<f32>,
    pub score: Option<f32>,
}

impl Extra {
    pub fn new(p_yes: Option<f32>, score: Option<f32>) -> Extra {
        Extra { p_yes, score }
    }
}

/// Raw head inputs of one example: the pooled vector, then logit(P(yes)) and the rule score
/// when used (`NaN` when missing: replaced by the mean, i.e. 0 after standardisation).
fn raw_inputs(pooled: &[f32], e: Extra, use_p_yes: bool, use_score: bool, out: &mut Vec<f32>) {
    out.extend_from_slice(pooled);
    if use_p_yes {
        out.push(p_yes_input(e.p_yes).unwrap_or(f32::NAN));
    }
    if use_score {
        out.push(e.score.filter(|s| s.is_finite()).unwrap_or(f32::NAN));
    }
}

struct Scaler {
    mean: Vec<f32>,
    scale: Vec<f32>,
}

impl Scaler {
    fn fit(x: &[f32], d: usize, rows: &[usize]) -> Scaler {
        let mut mean = vec![0.0f64; d];
        let mut count = vec![0usize; d];
        for &i in rows {
            for j in 0..d {
                let v = x[i * d + j];
                if v.is_finite() {
                    mean[j] += v as f64;
                    count[j] += 1;
                }
            }
        }
        for j in 0..d {
            mean[j] /= count[j].max(1) as f64;
        }
        let mut var = vec![0.0f64; d];
        for &i in rows {
            for j in 0..d {
                let v = x[i * d + j];
                if v.is_finite() {
                    var[j] += (v as f64 - mean[j]).powi(2);
                }
            }
        }
        let scale = (0..d)
            .map(|j| ((var[j] / count[j].max(1) as f64).sqrt().max(1e-6)) as f32)
            .collect();
        Scaler {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            scale,
        }
    }

    fn apply(&self, x: &[f32], d: usize, rows: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows.len() * d);
        for &i in rows {
            for j in 0..d {
                let v = x[i * d + j];
                out.push(if v.is_finite() {
                    (v - self.mean[j]) / self.scale[j]
                } else {
                    0.0
                });
            }
        }
        out
    }
}

impl Head {
    /// Number of inputs (pooled dims plus P(yes)).
    pub fn inputs(&self) -> usize {
        self.w.len()
    }

    /// The weights with the standardisation folded in, for scoring many records.
    pub fn folded(&self) -> Folded {
        let d = self.spec.dim.min(self.w.len());
        let mut b = self.b as f64;
        let mut w = Vec::with_capacity(d);
        for j in 0..d {
            let wj = self.w[j] as f64 / self.scale[j] as f64;
            b -= wj * self.mean[j] as f64;
            w.push(wj);
        }
        let column = |j: usize| (self.w[j] as f64 / self.scale[j] as f64, self.mean[j] as f64);
        let p_yes = (self.use_p_yes && self.w.len() > d).then(|| column(d));
        let s = d + usize::from(self.use_p_yes);
        let score = (self.use_score && self.w.len() > s).then(|| column(s));
        Folded {
            w,
            b,
            p_yes,
            score,
            a: self.platt_a as f64,
            c: self.platt_c as f64,
        }
    }

    /// [`Self::predict`] on f16 features (as the engine keeps them).
    pub fn predict_f16(&self, pooled: &[u16], extra: Extra) -> f32 {
        self.folded().predict_f16(pooled, extra)
    }

    /// Calibrated P(head).
    pub fn predict(&self, pooled: &[f32], extra: Extra) -> f32 {
        self.folded().predict(pooled, extra)
    }

    /// The uncalibrated logit (as trained, before folding).
    pub fn logit(&self, pooled: &[f32], extra: Extra) -> f64 {
        let mut x = Vec::with_capacity(self.w.len());
        raw_inputs(pooled, extra, self.use_p_yes, self.use_score, &mut x);
        let mut z = self.b as f64;
        for (j, &v) in x.iter().enumerate().take(self.w.len()) {
            if v.is_finite() {
                z += self.w[j] as f64 * ((v - self.mean[j]) / self.scale[j]) as f64;
            }
        }
        z
    }

    /// Errors unless this head reads exactly the features `run` makes.
    pub fn check_features(&self, run: &FeatureSpec) -> Result<(), HeadError> {
        if &self.spec != run {
            return Err(HeadError::OtherFeatures {
                version: self.version.clone(),
                trained: self.spec.key(),
                run: run.key(),
            });
        }
        Ok(())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a head serialises")
    }

    pub fn from_json(s: &str, origin: &str) -> Result<Head, HeadError> {
        let h: Head = serde_json::from_str(s).map_err(|e| HeadError::File {
            path: origin.into(),
            reason: e.to_string(),
        })?;
        let n = h.spec.dim + usize::from(h.use_p_yes) + usize::from(h.use_score);
        if h.w.len() != n || h.mean.len() != n || h.scale.len() != n {
            return Err(HeadError::File {
                path: origin.into(),
                reason: format!(
                    "{} weights, {} means, {} scales for {n} inputs",
                    h.w.len(),
                    h.mean.len(),
                    h.scale.len()
                ),
            });
        }
        Ok(h)
    }
}

/// A head's weights over raw features (standardisation folded in): P(head) of many records
/// without a division per feature. Both `Head::predict` paths go through it, so the engine, the
/// CLI and a brute-force check compute the same number.
#[derive(Debug, Clone)]
pub struct Folded {
    w: Vec<f64>,
    b: f64,
    /// Weight over raw logit P(yes), and its mean (a missing P(yes) counts as the mean).
    p_yes: Option<(f64, f64)>,
    /// The same for the rule score.
    score: Option<(f64, f64)>,
    a: f64,
    c: f64,
}

impl Folded {
    fn finish(&self, mut z: f64, e: Extra) -> f32 {
        if let (Some((w, mean)), Some(v)) = (self.p_yes, p_yes_input(e.p_yes)) {
            z += w * (v as f64 - mean);
        }
        if let (Some((w, mean)), Some(v)) = (self.score, e.score.filter(|s| s.is_finite())) {
            z += w * (v as f64 - mean);
        }
        lr::sigmoid(self.a * z + self.c) as f32
    }

    pub fn predict(&self, pooled: &[f32], extra: Extra) -> f32 {
        let mut z = self.b;
        for (w, x) in self.w.iter().zip(pooled) {
            if x.is_finite() {
                z += w * *x as f64;
            }
        }
        self.finish(z, extra)
    }

    pub fn predict_f16(&self, pooled: &[u16], extra: Extra) -> f32 {
        let lut = f16_table();
        let mut z = self.b;
        for (w, h) in self.w.iter().zip(pooled) {
            let x = lut[*h as usize];
            if x.is_finite() {
                z += w * x as f64;
            }
        }
        self.finish(z, extra)
    }
}

/// Every f16 bit pattern as f32 (256 KB, built once).
fn f16_table() -> &'static [f32] {
    static T: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        (0..=u16::MAX)
            .map(crate::store::features::f16_to_f32)
            .collect()
    })
}

/// Trains a head on `examples` (every pooled vector `spec.dim` long). With `prior`, its
/// standardisation is kept and the weights are pulled towards its own instead of zero: the run's
/// labels refine it.
pub fn train(
    spec: &FeatureSpec,
    examples: &[Example],
    opts: &TrainOptions,
    prior: Option<&Head>,
) -> Result<Head, HeadError> {
    train_with_oof(spec, examples, opts, prior).map(|(h, _)| h)
}

/// [`train`], also returning each example's calibrated out-of-fold P(head) from the
/// cross-validation (None when there was none).
pub fn train_with_oof(
    spec: &FeatureSpec,
    examples: &[Example],
    opts: &TrainOptions,
    prior: Option<&Head>,
) -> Result<(Head, Option<Vec<f32>>), HeadError> {
    if examples.is_empty() {
        return Err(HeadError::Empty);
    }
    if let Some(p) = prior {
        p.check_features(spec)?;
    }
    let use_p_yes = prior.map_or(opts.use_p_yes, |p| p.use_p_yes);
    // The score is the last input; a prior without it reads as weight 0 there.
    let use_score = prior.is_some_and(|p| p.use_score)
        || (opts.use_score && examples.iter().any(|e| e.score.is_some_and(f32::is_finite)));
    let positives = examples.iter().filter(|e| e.positive).count();
    let negatives = examples.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(HeadError::OneClass {
            positives,
            negatives,
        });
    }
    let d = spec.dim + usize::from(use_p_yes) + usize::from(use_score);
    let mut x = Vec::with_capacity(examples.len() * d);
    for e in examples {
        if e.pooled.len() != spec.dim {
            return Err(HeadError::Dim {
                key: e.key.clone(),
                got: e.pooled.len(),
                want: spec.dim,
                spec: spec.key(),
            });
        }
        raw_inputs(
            &e.pooled,
            Extra::new(e.p_yes, e.score),
            use_p_yes,
            use_score,
            &mut x,
        );
    }
    let y: Vec<bool> = examples.iter().map(|e| e.positive).collect();
    // Source weights, then each class brought to half of the total.
    let raw: Vec<f64> = examples.iter().map(|e| e.source.weight()).collect();
    let (wp, wn) = raw.iter().zip(&y).fold(
        (0.0, 0.0),
        |(p, n), (w, y)| {
            if *y {
                (p + w, n)
            } else {
                (p, n + w)
            }
        },
    );
    let total = wp + wn;
    let weights: Vec<f64> = raw
        .iter()
        .zip(&y)
        .map(|(w, y)| w * total / (2.0 * if *y { wp } else { wn }))
        .collect();
    let prior_w: Option<Vec<f64>> = prior.map(|p| {
        let mut w: Vec<f64> = p.w.iter().map(|v| *v as f64).collect();
        w.resize(d, 0.0);
        w
    });
    let fit_rows = |rows: &[usize]| -> (Scaler, Vec<f64>, f64) {
        // A prior's standardisation is kept for the inputs it has; the rest is fitted.
        let mut scaler = Scaler::fit(&x, d, rows);
        if let Some(p) = prior {
            let n = p.mean.len().min(d);
            scaler.mean[..n].copy_from_slice(&p.mean[..n]);
            scaler.scale[..n].copy_from_slice(&p.scale[..n]);
        }
        let xs = scaler.apply(&x, d, rows);
        let ys: Vec<bool> = rows.iter().map(|&i| y[i]).collect();
        let ws: Vec<f64> = rows.iter().map(|&i| weights[i]).collect();
        let (w, b) = lr::fit(
            &lr::Design { x: &xs, d },
            &ys,
            &ws,
            opts.l2,
            prior_w.as_deref(),
            opts.max_iter,
        );
        (scaler, w, b)
    };
    // Stratified folds: the i-th example of a class (in key-hash order) goes to fold i % k.
    let k = opts.folds;
    let min_class = positives.min(negatives);
    let mut cv_auc = None;
    let mut oof_prob: Option<Vec<f32>> = None;
    let (mut platt_a, mut platt_c) = (1.0, 0.0);
    if k >= 2 && min_class >= k {
        let mut order: Vec<usize> = (0..examples.len()).collect();
        order.sort_by_key(|&i| blake3::hash(examples[i].key.as_bytes()).as_bytes()[..8].to_vec());
        let mut fold = vec![0usize; examples.len()];
        let (mut np, mut nn) = (0, 0);
        for &i in &order {
            if y[i] {
                fold[i] = np % k;
                np += 1;
            } else {
                fold[i] = nn % k;
                nn += 1;
            }
        }
        let mut oof = vec![0.0f64; examples.len()];
        for f in 0..k {
            let train_rows: Vec<usize> = (0..examples.len()).filter(|&i| fold[i] != f).collect();
            let test_rows: Vec<usize> = (0..examples.len()).filter(|&i| fold[i] == f).collect();
            let (scaler, w, b) = fit_rows(&train_rows);
            let xs = scaler.apply(&x, d, &test_rows);
            for (r, &i) in test_rows.iter().enumerate() {
                oof[i] = lr::linear(&w, b, &xs[r * d..(r + 1) * d]);
            }
        }
        cv_auc = lr::roc_auc(&oof, &y);
        let (a, c) = lr::platt(&oof, &y, &weights);
        // A degenerate fit (a <= 0) would invert the ranking: keep the raw logit then.
        if a > 0.0 && a.is_finite() && c.is_finite() {
            (platt_a, platt_c) = (a, c);
        }
        oof_prob = Some(
            oof.iter()
                .map(|z| lr::sigmoid(platt_a * z + platt_c) as f32)
                .collect(),
        );
    }
    let all: Vec<usize> = (0..examples.len()).collect();
    let (scaler, w, b) = fit_rows(&all);
    let mut by_source: BTreeMap<String, [usize; 2]> = BTreeMap::new();
    let mut by_group: BTreeMap<String, [usize; 2]> = BTreeMap::new();
    for e in examples {
        let slot = usize::from(!e.positive);
        by_source.entry(e.source.as_str().into()).or_default()[slot] += 1;
        by_group.entry(e.group.clone()).or_default()[slot] += 1;
    }
    let mut head = Head {
        spec: spec.clone(),
        use_p_yes,
        use_score,
        mean: scaler.mean,
        scale: scaler.scale,
        w: w.iter().map(|v| *v as f32).collect(),
        b: b as f32,
        platt_a: platt_a as f32,
        platt_c: platt_c as f32,
        metrics: HeadMetrics {
            examples: examples.len(),
            positives,
            by_source,
            by_group,
            cv_auc,
            folds: if cv_auc.is_some() { k } else { 0 },
            l2: opts.l2,
            trained_at: crate::store::now_secs(),
            prior: prior.map(|p| p.version.clone()),
        },
        version: String::new(),
    };
    head.version = version_of(examples, &head);
    Ok((head, oof_prob))
}

/// Hash of the training set (keys, labels, sources) and the weights: 16 hex digits.
fn version_of(examples: &[Example], head: &Head) -> String {
    let mut keys: Vec<(&str, bool, LabelSource)> = examples
        .iter()
        .map(|e| (e.key.as_str(), e.positive, e.source))
        .collect();
    keys.sort();
    let mut h = blake3::Hasher::new();
    h.update(head.spec.key().as_bytes());
    for (k, p, s) in keys {
        h.update(k.as_bytes());
        h.update(&[p as u8, s as u8, 0]);
    }
    for v in head.w.iter().chain([&head.b, &head.platt_a, &head.platt_c]) {
        h.update(&v.to_le_bytes());
    }
    h.finalize().to_hex()[..16].to_string()
}

#[cfg(test)]
mod tests;
