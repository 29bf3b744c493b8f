//! `cyberfilter bench verifier`: throughput of the MLX verifier at several batch sizes beside
//! the Python pipeline's way (one `mlx_lm.generate` per record, `benches/
//! verifier_python_baseline.py`) and this machine's sgemm peak, all in one invocation.
//! `cyberfilter bench accuracy`: P(yes) of every labelled record, ROC AUC and the P(yes) cut
//! that maximises F1.

use super::eval::Prf;
use super::pipeline::{stream, Item};
use super::text_chars;
use super::{EXIT_DATAERR, EXIT_FAILURE, EXIT_NOINPUT, EXIT_OK, EXIT_USAGE, EXIT_VERIFIER};
use crate::ingest::IngestOptions;
use crate::rules::{tier_for, RuleSet, Tier};
use crate::verify::mlx::bench::FLOP_FORMULA;
use crate::verify::mlx::bench::{bench, sgemm_peak, BenchReport, BenchRow, SgemmPeak};
use crate::verify::mlx::{default_model_path, MlxOptions, MlxVerifier};
use crate::verify::Verifier;
use serde::Serialize;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;

const SAMPLE: &str = "../shared/realdata/arxiv/arxiv-cs-sample100_albertomontero.labelled.jsonl";
const BASELINE_SCRIPT: &str = "benches/verifier_python_baseline.py";

#[derive(Debug, Clone, clap::Subcommand)]
pub enum BenchCommand {
    /// Verifier throughput at several batch sizes, the Python baseline, and the sgemm peak.
    Verifier(VerifierArgs),
    /// P(yes) of the verifier on labelled records: ROC AUC and the F1-maximising cut.
    Accuracy(AccuracyArgs),
    /// Duplicate grouping: time and memory on a generated 1M-record input, recall and
    /// precision on planted similarities, engine throughput on/off, real-data overlap.
    Dedup(super::bench_dedup::DedupArgs),
}

pub fn run(cmd: &BenchCommand) -> i32 {
    match cmd {
        BenchCommand::Verifier(a) => run_verifier(a),
        BenchCommand::Accuracy(a) => run_accuracy(a),
        BenchCommand::Dedup(a) => super::bench_dedup::run(a),
    }
}

/// Flags both subcommands share: model, input, text cut.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelInput {
    /// GGUF model (default: the SmolLM2 fetched by scripts/setup.sh, or CYBERFILTER_MODEL).
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// JSONL (or any input `scan` reads); default: the labelled arXiv sample in ../shared.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Record text is cut to this many tokens.
    #[arg(long, value_name = "T", default_value_t = MlxOptions::default().max_text_tokens)]
    pub max_text_tokens: usize,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

impl ModelInput {
    fn model_path(&self) -> PathBuf {
        self.model.clone().unwrap_or_else(default_model_path)
    }

    fn input_path(&self) -> PathBuf {
        self.input.clone().unwrap_or_else(|| manifest_path(SAMPLE))
    }

    fn load(&self, who: &str) -> Result<MlxVerifier, i32> {
        let options = MlxOptions {
            max_text_tokens: self.max_text_tokens,
            ..Default::default()
        };
        MlxVerifier::load_with(self.model_path(), options).map_err(|e| {
            eprintln!("cyberfilter bench {who}: {e}");
            EXIT_VERIFIER
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Baseline {
    /// Run the Python baseline when its interpreter is there; say so when it is not.
    Auto,
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BaselineBlas {
    Same,
    Wheel,
}

#[derive(Debug, Clone, clap::Args)]
pub struct VerifierArgs {
    #[command(flatten)]
    pub common: ModelInput,
    /// Records measured at each batch size (the first N of the input).
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub records: usize,
    #[arg(long, value_delimiter = ',', default_value = "1,8,16,32")]
    pub batch_sizes: Vec<usize>,
    /// Measure only the records the default rules send to the verifier (the verify tier), the
    /// verifier's real workload; e.g. `--input ../shared/realdata --verify-tier`.
    #[arg(long)]
    pub verify_tier: bool,
    /// Positions per forward batch (rows x longest row after the cached head); default: the
    /// verifier's own budget for this platform.
    #[arg(long, value_name = "N")]
    pub batch_tokens: Option<usize>,
    #[arg(long, value_enum, default_value = "auto")]
    pub baseline: Baseline,
    /// BLAS of the baseline: `same` preloads the OpenBLAS this binary links (like for like);
    /// `wheel` leaves Python on the reference BLAS the mlx-cpu wheel installs with.
    #[arg(long, value_enum, default_value = "same")]
    pub baseline_blas: BaselineBlas,
    /// Python with mlx-lm for the baseline.
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Also measure passes that stop after this layer (features for the verdict head only:
    /// no later layers, no LM head, no P(yes)), beside the full passes.
    #[arg(long, value_name = "L")]
    pub stop_at_layer: Option<usize>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct AccuracyArgs {
    #[command(flatten)]
    pub common: ModelInput,
    /// Top-level field of JSON records that holds the label.
    #[arg(long, value_name = "NAME", default_value = "label")]
    pub label_field: String,
    /// Label value(s) that mean "security-relevant" (repeatable).
    #[arg(long, value_name = "VALUE", default_values_t = ["security".to_string()])]
    pub positive: Vec<String>,
    /// The P(yes) cut reported beside the best one (default: `p_yes_cut` of the default rules).
    #[arg(long, value_name = "P")]
    pub cut: Option<f32>,
    /// Measure only the labelled records the default rules put in the verify tier (the band
    /// the verifier decides).
    #[arg(long)]
    pub verify_tier: bool,
    #[command(flatten)]
    pub head: super::bench_head::HeadBenchArgs,
}

/// The Python pipeline's figures, as its script prints them.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct BaselineRun {
    pub records: usize,
    pub seconds: f64,
    pub records_per_s: f64,
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    #[serde(default)]
    pub blas: Option<String>,
}

/// Our records/s over the baseline's, at the best batch size and unbatched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ratios {
    pub best_batch: usize,
    pub best: f64,
    pub batch1: Option<f64>,
}

pub fn ratios(rows: &[BenchRow], baseline_records_per_s: f64) -> Option<Ratios> {
    if baseline_records_per_s <= 0.0 {
        return None;
    }
    let best = rows
        .iter()
        .max_by(|a, b| a.records_per_s.total_cmp(&b.records_per_s))?;
    Some(Ratios {
        best_batch: best.batch,
        best: best.records_per_s / baseline_records_per_s,
        batch1: rows
            .iter()
            .find(|r| r.batch == 1)
            .map(|r| r.records_per_s / baseline_records_per_s),
    })
}

#[derive(Debug, Clone, Serialize)]
struct VerifierJson<'a> {
    #[serde(flatten)]
    report: &'a BenchReport,
    input: String,
    sgemm_peak: &'a SgemmPeak,
    flop_formula: &'static str,
    baseline: Option<&'a BaselineRun>,
    baseline_note: Option<&'a str>,
    ratios: Option<&'a Ratios>,
}

/// Labelled or not, the records' texts in input order, with every read error reported.
struct Texts {
    texts: Vec<String>,
    labels: Vec<Option<String>>,
    errors: u64,
}

fn read_texts(
    path: &Path,
    label_field: Option<&str>,
    limit: usize,
    verify_tier_only: bool,
    who: &str,
) -> Result<Texts, i32> {
    let rules = RuleSet::default_rules();
    let thresholds = rules.thresholds();
    let wanted = |text: &str| {
        !verify_tier_only
            || tier_for(rules.score(text).score, text_chars(text), true, &thresholds)
                == Tier::Verify
    };
    let opts = IngestOptions {
        label_field: label_field.map(str::to_string),
        ..Default::default()
    };
    let mut out = Texts {
        texts: Vec::new(),
        labels: Vec::new(),
        errors: 0,
    };
    let mut files = 0;
    let mut consume = |item: Item| -> ControlFlow<()> {
        match item {
            Item::Record(rec) if rec.scored && !rec.text.trim().is_empty() && wanted(&rec.text) => {
                out.texts.push(rec.text);
                out.labels.push(rec.label);
                if out.texts.len() >= limit {
                    return ControlFlow::Break(());
                }
            }
            Item::Record(_) => {}
            Item::Error(e) => {
                out.errors += 1;
                eprintln!("cyberfilter bench {who}: {e}");
            }
            Item::FileDone { .. } => files += 1,
        }
        ControlFlow::Continue(())
    };
    if let Err(e) = stream(&[path.to_path_buf()], &opts, true, &mut consume) {
        eprintln!("cyberfilter bench {who}: {e}");
        return Err(EXIT_NOINPUT);
    }
    // Readers of several files may hand over a few records past the break.
    out.texts.truncate(limit);
    out.labels.truncate(limit);
    if out.texts.is_empty() {
        eprintln!(
            "cyberfilter bench {who}: {}: no record with text",
            path.display()
        );
        return Err(if files == 0 {
            EXIT_NOINPUT
        } else {
            EXIT_DATAERR
        });
    }
    Ok(out)
}

/// A path of the source tree (benches/, ../shared), wherever the binary is run from.
fn manifest_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The OpenBLAS our build links ahead of the mlx-cpu wheel's reference BLAS (see build.rs): the
/// baseline gets it too through LD_PRELOAD, so both sides run the same sgemm.
fn openblas() -> Option<PathBuf> {
    option_env!("CYBERFILTER_OPENBLAS").map(PathBuf::from)
}

/// The texts exactly as our extractor produced them, one `{"text": ...}` line each, so the
/// baseline reads the same records whatever the input's format; removed on drop.
struct TextsFile(PathBuf);

impl TextsFile {
    fn write(texts: &[String]) -> Result<Self, String> {
        let path = std::env::temp_dir().join(format!(
            "cyberfilter-bench-texts-{}.jsonl",
            std::process::id()
        ));
        let mut body = String::new();
        for t in texts {
            body.push_str(&serde_json::json!({ "text": t }).to_string());
            body.push('\n');
        }
        std::fs::write(&path, body).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for TextsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn run_baseline(
    python: &Path,
    texts: &[String],
    model: &Path,
    blas: BaselineBlas,
) -> Result<BaselineRun, String> {
    let script = manifest_path(BASELINE_SCRIPT);
    let input = TextsFile::write(texts)?;
    let mut cmd = Command::new(python);
    cmd.arg(&script)
        .arg(texts.len().to_string())
        .arg("--input")
        .arg(&input.0)
        .arg("--model")
        .arg(model);
    if let (BaselineBlas::Same, Some(blas)) = (blas, openblas()) {
        if cfg!(target_os = "linux") {
            cmd.env("LD_PRELOAD", &blas).env("BASELINE_BLAS", &blas);
        }
    }
    let out = cmd
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(format!(
            "{} {} failed ({}): {}",
            python.display(),
            script.display(),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| format!("{}: printed no JSON line", script.display()))?;
    serde_json::from_str(line).map_err(|e| format!("{}: {e} in {line:?}", script.display()))
}

fn run_verifier(args: &VerifierArgs) -> i32 {
    let c = &args.common;
    if args.records == 0 || args.batch_sizes.is_empty() || args.batch_sizes.contains(&0) {
        eprintln!("cyberfilter bench verifier: --records and every --batch-sizes entry must be at least 1");
        return EXIT_USAGE;
    }
    let input = c.input_path();
    let texts = match read_texts(&input, None, args.records, args.verify_tier, "verifier") {
        Ok(t) => t,
        Err(code) => return code,
    };
    let mut verifier = match c.load("verifier") {
        Ok(v) => v,
        Err(code) => return code,
    };
    let peak = match sgemm_peak(&[1024, 1536, 2048], 3) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cyberfilter bench verifier: {e}");
            return EXIT_FAILURE;
        }
    };
    if let Some(t) = args.batch_tokens {
        verifier.options_mut().max_batch_tokens = t.max(1);
    }
    let n = texts.texts.len();
    if !c.json {
        println!(
            "verifier {}, {n} records{} of {}, text cut to {} tokens, forward batches of at most {} positions",
            verifier.model_id(),
            if args.verify_tier { " (verify tier)" } else { "" },
            input.display(),
            c.max_text_tokens,
            verifier.options_mut().max_batch_tokens
        );
        println!(
            "sgemm peak through MLX (f32, n = 1024/1536/2048, best of 3): {:.1} GFLOP/s at n = {}",
            peak.gflops, peak.n
        );
        println!("batch  records  seconds  records/s  prompt tok/s  fill  GFLOP/s  of peak");
    }
    let refs: Vec<&str> = texts.texts.iter().map(String::as_str).collect();
    let report = match bench(&mut verifier, &refs, &args.batch_sizes, |r| {
        if !c.json {
            println!(
                "{:>5}  {:>7}  {:>7.2}  {:>9.3}  {:>12.1}  {:>4.2}  {:>7.1}  {:>6.1}%",
                r.batch,
                r.records,
                r.seconds,
                r.records_per_s,
                r.prompt_tokens_per_s,
                r.fill,
                r.gflops,
                100.0 * r.gflops / peak.gflops
            );
        }
    }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cyberfilter bench verifier: {e}");
            return EXIT_VERIFIER;
        }
    };
    if let Some(layer) = args.stop_at_layer {
        let n_layers = verifier.config().n_layers;
        for &batch in &args.batch_sizes {
            verifier.options_mut().max_batch = batch.max(1);
            let started = std::time::Instant::now();
            for chunk in refs.chunks(batch.max(1)) {
                if let Err(e) = verifier.answer_pooled(chunk, &[layer], false) {
                    eprintln!("cyberfilter bench verifier: --stop-at-layer {layer}: {e}");
                    return EXIT_VERIFIER;
                }
            }
            let s = started.elapsed().as_secs_f64().max(1e-9);
            let full = report.rows.iter().find(|r| r.batch == batch.max(1));
            if c.json {
                println!(
                    "{}",
                    serde_json::json!({"stop_at_layer": layer, "layers": n_layers, "batch": batch,
                        "records_per_s": refs.len() as f64 / s,
                        "full_pass_records_per_s": full.map(|r| r.records_per_s)})
                );
            } else {
                println!(
                    "stop after layer {layer} of {n_layers} (features only, no LM head): batch {batch}: {:.3} records/s ({:.2}x the full pass)",
                    refs.len() as f64 / s,
                    full.map_or(f64::NAN, |r| refs.len() as f64 / s / r.records_per_s)
                );
            }
        }
    }
    drop(verifier); // free the model's memory before Python loads its copy
    let python = args
        .python
        .clone()
        .unwrap_or_else(|| manifest_path(".venv/bin/python"));
    let (baseline, note) = match args.baseline {
        Baseline::Skip => (None, Some("skipped (--baseline skip)".to_string())),
        Baseline::Auto if !python.exists() => (
            None,
            Some(format!(
                "skipped: {} not found (--python)",
                python.display()
            )),
        ),
        Baseline::Auto => {
            match run_baseline(&python, &texts.texts, &c.model_path(), args.baseline_blas) {
                Ok(b) => (Some(b), None),
                Err(e) => (None, Some(format!("failed: {e}"))),
            }
        }
    };
    let ratios = baseline
        .as_ref()
        .and_then(|b| ratios(&report.rows, b.records_per_s));
    if c.json {
        let json = VerifierJson {
            report: &report,
            input: input.display().to_string(),
            sgemm_peak: &peak,
            flop_formula: FLOP_FORMULA,
            baseline: baseline.as_ref(),
            baseline_note: note.as_deref(),
            ratios: ratios.as_ref(),
        };
        println!(
            "{}",
            serde_json::to_string(&json).expect("report serialises")
        );
    } else {
        match (&baseline, &note) {
            (Some(b), _) => {
                let tps = b
                    .prompt_tokens
                    .map(|t| format!(", {:.1} prompt tok/s", t as f64 / b.seconds.max(1e-9)))
                    .unwrap_or_default();
                println!(
                    "python baseline (one mlx_lm.generate per record, max_tokens=5, BLAS {}): {} records in {:.2} s, {:.3} records/s{tps}",
                    b.blas.as_deref().unwrap_or("as installed"),
                    b.records,
                    b.seconds,
                    b.records_per_s
                );
            }
            (None, Some(note)) => println!("python baseline: {note}"),
            (None, None) => {}
        }
        if let Some(r) = &ratios {
            let b1 = r
                .batch1
                .map(|x| format!(", batch 1 {x:.2}x"))
                .unwrap_or_default();
            println!(
                "records/s over the baseline: best (batch {}) {:.2}x{b1}",
                r.best_batch, r.best
            );
        }
        println!(
            "{} prompt tokens per pass; {FLOP_FORMULA}",
            report.prompt_tokens
        );
    }
    if texts.errors > 0 {
        EXIT_DATAERR
    } else {
        EXIT_OK
    }
}

/// ROC AUC: the chance that a random positive scores above a random negative (ties count
/// half). `None` without both classes. One implementation (rank-based, O(n log n)) serves the
/// bench and the head's cross-validation.
pub fn roc_auc(scores: &[f32], positive: &[bool]) -> Option<f64> {
    let wide: Vec<f64> = scores.iter().map(|&s| s as f64).collect();
    crate::verify::head::lr::roc_auc(&wide, positive)
}

/// Precision, recall and F1 of "P(yes) >= cut".
pub fn prf_at(scores: &[f32], positive: &[bool], cut: f32) -> Prf {
    let (mut tp, mut fp, mut fn_, mut tn) = (0, 0, 0, 0);
    for (&s, &p) in scores.iter().zip(positive) {
        match (s >= cut, p) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => tn += 1,
        }
    }
    Prf::new(tp, fp, fn_, tn)
}

/// The cut (one of the scores) with the highest F1; the higher cut among equals (fewer kept).
pub fn best_f1_cut(scores: &[f32], positive: &[bool]) -> Option<(f32, Prf)> {
    let mut cuts: Vec<f32> = scores.to_vec();
    cuts.sort_by(|a, b| b.total_cmp(a));
    cuts.dedup();
    let mut best: Option<(f32, Prf)> = None;
    for cut in cuts {
        let prf = prf_at(scores, positive, cut);
        if best.as_ref().is_none_or(|(_, b)| prf.f1 > b.f1) {
            best = Some((cut, prf));
        }
    }
    best
}

#[derive(Debug, Clone, Serialize)]
pub struct AccuracyReport {
    pub model_id: String,
    pub input: String,
    pub max_text_tokens: usize,
    pub records: usize,
    pub positives: usize,
    pub unlabelled: usize,
    pub roc_auc: Option<f64>,
    pub best_cut: Option<f32>,
    pub at_best_cut: Option<Prf>,
    pub cut: f32,
    pub at_cut: Prf,
    /// F1 of keeping every record, what a useless verifier could reach.
    pub f1_keep_all: f64,
    pub p_yes_positive_mean: f64,
    pub p_yes_negative_mean: f64,
    pub seconds: f64,
}

fn mean(xs: impl Iterator<Item = f32>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for x in xs {
        sum += x as f64;
        n += 1;
    }
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

fn run_accuracy(args: &AccuracyArgs) -> i32 {
    let c = &args.common;
    let cut = args.cut.unwrap_or_else(|| {
        crate::rules::RuleSet::default_rules()
            .thresholds()
            .p_yes_cut
    });
    let input = c.input_path();
    let texts = match read_texts(
        &input,
        Some(&args.label_field),
        usize::MAX,
        args.verify_tier,
        "accuracy",
    ) {
        Ok(t) => t,
        Err(code) => return code,
    };
    // Only labelled records are measured.
    let (mut labelled, mut positive) = (Vec::new(), Vec::new());
    for (text, label) in texts.texts.iter().zip(&texts.labels) {
        if let Some(l) = label {
            labelled.push(text.as_str());
            positive.push(args.positive.iter().any(|p| p == l));
        }
    }
    let unlabelled = texts.texts.len() - labelled.len();
    if labelled.is_empty() {
        eprintln!(
            "cyberfilter bench accuracy: {}: no record has the label field {:?}",
            input.display(),
            args.label_field
        );
        return EXIT_DATAERR;
    }
    let mut verifier = match c.load("accuracy") {
        Ok(v) => v,
        Err(code) => return code,
    };
    let started = std::time::Instant::now();
    let hb = &args.head;
    let feats = if hb.layers.is_empty() {
        None
    } else {
        match super::bench_head::featurize(
            &mut verifier,
            &labelled,
            &hb.layers,
            hb.features_cache.as_deref(),
            "accuracy",
        ) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("cyberfilter bench accuracy: {e}");
                return EXIT_VERIFIER;
            }
        }
    };
    let scores = match &feats {
        Some(f) => f.iter().map(|f| f.p_yes).collect(),
        None => match verifier.verify_batch(&labelled) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cyberfilter bench accuracy: {e}");
                return EXIT_VERIFIER;
            }
        },
    };
    let best = best_f1_cut(&scores, &positive);
    let report = AccuracyReport {
        model_id: verifier.model_id(),
        input: input.display().to_string(),
        max_text_tokens: c.max_text_tokens,
        records: labelled.len(),
        positives: positive.iter().filter(|p| **p).count(),
        unlabelled,
        roc_auc: roc_auc(&scores, &positive),
        best_cut: best.map(|b| b.0),
        at_best_cut: best.map(|b| b.1),
        cut,
        at_cut: prf_at(&scores, &positive, cut),
        f1_keep_all: prf_at(&scores, &positive, f32::NEG_INFINITY).f1,
        p_yes_positive_mean: mean(scores.iter().zip(&positive).filter(|p| *p.1).map(|p| *p.0)),
        p_yes_negative_mean: mean(scores.iter().zip(&positive).filter(|p| !*p.1).map(|p| *p.0)),
        seconds: started.elapsed().as_secs_f64(),
    };
    let mut head_rows = None;
    if let Some(feats) = &feats {
        match run_head_bench(args, &mut verifier, &labelled, &positive, feats, cut) {
            Ok(r) => head_rows = Some(r),
            Err(e) => {
                eprintln!("cyberfilter bench accuracy: {e}");
                return EXIT_DATAERR;
            }
        }
    }
    if c.json {
        let mut v = serde_json::to_value(&report).expect("report serialises");
        if let Some(rows) = &head_rows {
            v["heads"] = serde_json::to_value(rows).expect("rows serialise");
        }
        println!("{v}");
    } else {
        print!("{}", render_accuracy(&report));
        if let Some(rows) = &head_rows {
            print!("{}", super::bench_head::render(rows));
        }
    }
    if texts.errors > 0 {
        EXIT_DATAERR
    } else {
        EXIT_OK
    }
}

/// The heads of `bench accuracy --layers`: cross-validated on the input, or trained on
/// `--train` and tested on the input.
fn run_head_bench(
    args: &AccuracyArgs,
    verifier: &mut MlxVerifier,
    labelled: &[&str],
    positive: &[bool],
    feats: &[super::bench_head::Featurized],
    cut: f32,
) -> Result<Vec<super::bench_head::HeadRow>, String> {
    use super::bench_head::{featurize, Labelled};
    let hb = &args.head;
    let input = Labelled {
        texts: labelled.to_vec(),
        positive: positive.to_vec(),
    };
    let mut extra = serde_json::Value::Null;
    let train_texts = match &hb.train {
        Some(path) => {
            let t = read_texts(path, Some(&args.label_field), usize::MAX, false, "accuracy")
                .map_err(|code| format!("--train {}: unreadable (exit {code})", path.display()))?;
            let sidecar = path.with_extension("sources.json");
            extra = std::fs::read_to_string(&sidecar)
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_else(|| serde_json::json!({ "file": path.display().to_string() }));
            Some(t)
        }
        None => None,
    };
    let mut train = None;
    if let Some(t) = &train_texts {
        let (mut texts, mut pos) = (Vec::new(), Vec::new());
        for (text, label) in t.texts.iter().zip(&t.labels) {
            if let Some(l) = label {
                texts.push(text.as_str());
                pos.push(args.positive.iter().any(|p| p == l));
            }
        }
        train = Some(Labelled {
            texts,
            positive: pos,
        });
    }
    let train_feats = match &train {
        Some(t) => Some(featurize(
            verifier,
            &t.texts,
            &hb.layers,
            hb.features_cache.as_deref(),
            "accuracy",
        )?),
        None => None,
    };
    let out = super::bench_head::run(
        verifier,
        hb,
        &input,
        train.as_ref(),
        feats,
        train_feats.as_deref(),
        cut,
        extra,
    )?;
    if let Some((path, h)) = &out.saved {
        eprintln!(
            "cyberfilter bench accuracy: head {} ({} examples, CV AUC {}) written to {}",
            h.version,
            h.metrics.examples,
            h.metrics.cv_auc.map_or("-".into(), |a| format!("{a:.3}")),
            path.display()
        );
    }
    Ok(out.rows)
}

fn prf_line(name: &str, p: &Prf) -> String {
    format!(
        "{name:<22} precision {:.3}  recall {:.3}  F1 {:.3}  (tp {} fp {} fn {} tn {})\n",
        p.precision, p.recall, p.f1, p.tp, p.fp, p.fn_, p.tn
    )
}

pub fn render_accuracy(r: &AccuracyReport) -> String {
    let mut s = format!(
        "verifier {} on {} ({} labelled records, {} positive{}), text cut to {} tokens, {:.1} s\n",
        r.model_id,
        r.input,
        r.records,
        r.positives,
        if r.unlabelled > 0 {
            format!(", {} unlabelled left out", r.unlabelled)
        } else {
            String::new()
        },
        r.max_text_tokens,
        r.seconds
    );
    s += &format!(
        "mean P(yes): positives {:.4}, negatives {:.4}\n",
        r.p_yes_positive_mean, r.p_yes_negative_mean
    );
    match r.roc_auc {
        Some(auc) => s += &format!("ROC AUC {auc:.3} (0.5 = chance)\n"),
        None => s += "ROC AUC: needs both positive and negative records\n",
    }
    if let (Some(cut), Some(p)) = (r.best_cut, &r.at_best_cut) {
        s += &prf_line(&format!("best-F1 cut P>={cut:.4}"), p);
    }
    s += &prf_line(&format!("default cut P>={:.2}", r.cut), &r.at_cut);
    s += &format!("F1 of keeping every record: {:.3}\n", r.f1_keep_all);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_by_hand() {
        // Positives 0.9 and 0.4; negatives 0.5, 0.1, 0.4: pairs won 3 + 1 + a tie = 4.5 of 6.
        let scores = [0.9, 0.5, 0.4, 0.1, 0.4];
        let pos = [true, false, true, false, false];
        assert_eq!(roc_auc(&scores, &pos), Some(4.5 / 6.0));
        assert_eq!(roc_auc(&[0.1, 0.9], &[false, true]), Some(1.0));
        assert_eq!(roc_auc(&[0.1, 0.9], &[true, false]), Some(0.0));
        assert_eq!(roc_auc(&[0.1, 0.9], &[true, true]), None);
    }

    #[test]
    fn best_f1_cut_by_hand() {
        // Sorted: 0.9+ 0.8- 0.7+ 0.3- 0.2+.
        let scores = [0.3, 0.9, 0.2, 0.8, 0.7];
        let pos = [false, true, true, false, true];
        // cut 0.9: P1 R1/3 F1 .5; 0.8: P.5 R1/3 F.4; 0.7: P2/3 R2/3 F2/3; 0.3: P.5 R2/3 F4/7;
        // 0.2: P.6 R1 F.75 -> the lowest cut wins here.
        let (cut, prf) = best_f1_cut(&scores, &pos).unwrap();
        assert_eq!(cut, 0.2);
        assert_eq!((prf.tp, prf.fp, prf.fn_, prf.tn), (3, 2, 0, 0));
        assert!((prf.f1 - 0.75).abs() < 1e-12);
        // Separable: the cut is the lowest positive score, F1 1.
        let (cut, prf) = best_f1_cut(&[0.1, 0.6, 0.7, 0.2], &[false, true, true, false]).unwrap();
        assert_eq!((cut, prf.f1), (0.6, 1.0));
        // Equal F1 (2/3) at 0.9 (tp 1, fn 1) and at 0.6 (tp 2, fp 2): the higher cut is kept.
        let (cut, prf) = best_f1_cut(&[0.9, 0.8, 0.7, 0.6], &[true, false, false, true]).unwrap();
        assert_eq!(cut, 0.9);
        assert!((prf.f1 - 2.0 / 3.0).abs() < 1e-12);
        assert!(best_f1_cut(&[], &[]).is_none());
    }

    #[test]
    fn prf_at_counts() {
        let p = prf_at(&[0.6, 0.4, 0.5], &[true, true, false], 0.5);
        assert_eq!((p.tp, p.fp, p.fn_, p.tn), (1, 1, 1, 0));
    }

    #[test]
    fn ratios_pick_the_best_row_and_batch_one() {
        let row = |batch, rps| BenchRow {
            batch,
            records: 8,
            seconds: 1.0,
            records_per_s: rps,
            prompt_tokens_per_s: 0.0,
            fill: 1.0,
            forward_batches: 1,
            gflop: 0.0,
            gflops: 0.0,
        };
        let r = ratios(&[row(1, 2.0), row(8, 5.0), row(16, 4.0)], 0.5).unwrap();
        assert_eq!((r.best_batch, r.best, r.batch1), (8, 10.0, Some(4.0)));
        assert!(ratios(&[row(8, 1.0)], 0.0).is_none());
        assert_eq!(ratios(&[row(8, 1.0)], 1.0).unwrap().batch1, None);
    }
}
