//! `cyberfilter eval INPUT... --label-field NAME --positive VALUE`: measure a rule set on
//! labelled records: precision, recall and F1 of keep and of keep+verify, the confusion matrix,
//! and a sweep of both thresholds.

use super::pipeline::{stream, Item};
use super::{text_chars, InputArgs, RuleArgs, EXIT_DATAERR, EXIT_NOINPUT, EXIT_OK, EXIT_USAGE};
use crate::rules::{tier_for, Thresholds, Tier};
use serde::Serialize;
use std::ops::ControlFlow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Unlabelled {
    /// Leave records without the label field out of the measure.
    Skip,
    /// Count them as positives (e.g. a CVE feed next to a labelled file).
    Positive,
    /// Count them as negatives.
    Negative,
}

#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Top-level field of JSON records that holds the label.
    #[arg(long, value_name = "NAME")]
    pub label_field: String,
    /// Label value(s) that mean "security-relevant" (compared as strings; repeatable).
    #[arg(long, value_name = "VALUE", required = true)]
    pub positive: Vec<String>,
    /// What records without the label field count as.
    #[arg(long, value_enum, default_value = "skip")]
    pub unlabelled: Unlabelled,
    /// Sweep thresholds from this score...
    #[arg(long, default_value_t = -4.0, allow_negative_numbers = true)]
    pub sweep_min: f32,
    /// ...to this score...
    #[arg(long, default_value_t = 20.0, allow_negative_numbers = true)]
    pub sweep_max: f32,
    /// ...in steps of this size.
    #[arg(long, default_value_t = 0.5)]
    pub sweep_step: f32,
    /// Largest share of records the verify band may hold when choosing the best pair.
    #[arg(long, default_value_t = 0.10)]
    pub verify_budget: f64,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Precision, recall and F1 of one binary decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Prf {
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
    pub tn: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Prf {
    pub fn new(tp: u64, fp: u64, fn_: u64, tn: u64) -> Prf {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = ratio(tp, tp + fp);
        let recall = ratio(tp, tp + fn_);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Prf {
            tp,
            fp,
            fn_,
            tn,
            precision,
            recall,
            f1,
        }
    }
}

/// One scored, labelled record as the measure needs it.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub score: f32,
    /// Scored kind and long enough text: otherwise always rejected.
    pub eligible: bool,
    pub positive: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SweepRow {
    pub threshold: f32,
    /// Share of records with score >= threshold.
    pub share: f64,
    pub prf: Prf,
}

#[derive(Debug, Clone, Serialize)]
pub struct PairRow {
    pub low: f32,
    pub high: f32,
    pub keep: Prf,
    pub keep_verify: Prf,
    pub verify_share: f64,
    /// F1 if the verifier decided the verify band without error.
    pub f1_verified: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub records: u64,
    pub positives: u64,
    pub negatives: u64,
    pub unlabelled: u64,
    pub errors: u64,
    pub high: f32,
    pub low: f32,
    pub min_text_len: usize,
    /// Rows keep/verify/reject, columns positive/negative.
    pub confusion: [[u64; 2]; 3],
    pub keep: Prf,
    pub keep_verify: Prf,
    pub sweep: Vec<SweepRow>,
    pub best_keep: Option<SweepRow>,
    pub best_pair: Option<PairRow>,
    pub pairs: Vec<PairRow>,
}

fn decision(samples: &[Sample], t: f32) -> Prf {
    let (mut tp, mut fp, mut fn_, mut tn) = (0, 0, 0, 0);
    for s in samples {
        let yes = s.eligible && s.score >= t;
        match (yes, s.positive) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => tn += 1,
        }
    }
    Prf::new(tp, fp, fn_, tn)
}

/// The report for these samples under `t`, with a sweep over `grid`.
pub fn evaluate(samples: &[Sample], t: &Thresholds, grid: &[f32], budget: f64) -> EvalReport {
    let mut confusion = [[0u64; 2]; 3];
    for s in samples {
        let tier = tier_for(s.score, usize::MAX, s.eligible, t);
        let row = match tier {
            Tier::Keep => 0,
            Tier::Verify => 1,
            Tier::Reject => 2,
        };
        confusion[row][usize::from(!s.positive)] += 1;
    }
    let n = samples.len().max(1) as f64;
    let positives = samples.iter().filter(|s| s.positive).count() as u64;
    let sweep: Vec<SweepRow> = grid
        .iter()
        .map(|&th| {
            let prf = decision(samples, th);
            SweepRow {
                threshold: th,
                share: (prf.tp + prf.fp) as f64 / n,
                prf,
            }
        })
        .collect();
    let best_keep = sweep
        .iter()
        .max_by(|a, b| a.prf.f1.total_cmp(&b.prf.f1))
        .cloned();
    let mut pairs = Vec::new();
    for (i, lo) in sweep.iter().enumerate() {
        for hi in &sweep[i..] {
            // keep+verify at `low`, keep at `high`; the band between them is verified.
            let band = lo.share - hi.share;
            let (tp, fp) = (lo.prf.tp, hi.prf.fp);
            let verified = Prf::new(
                tp,
                fp,
                lo.prf.fn_,
                samples.len() as u64 - tp - fp - lo.prf.fn_,
            );
            pairs.push(PairRow {
                low: lo.threshold,
                high: hi.threshold,
                keep: hi.prf,
                keep_verify: lo.prf,
                verify_share: band,
                f1_verified: verified.f1,
            });
        }
    }
    let best_pair = pairs
        .iter()
        .filter(|p| p.verify_share <= budget + 1e-12)
        .max_by(|a, b| {
            a.f1_verified
                .total_cmp(&b.f1_verified)
                // Among equals, the smaller verify band (fewer LLM calls).
                .then(b.verify_share.total_cmp(&a.verify_share))
        })
        .cloned();
    EvalReport {
        records: samples.len() as u64,
        positives,
        negatives: samples.len() as u64 - positives,
        unlabelled: 0,
        errors: 0,
        high: t.high,
        low: t.low,
        min_text_len: t.min_text_len,
        confusion,
        keep: decision(samples, t.high),
        keep_verify: decision(samples, t.low),
        sweep,
        best_keep,
        best_pair,
        pairs,
    }
}

fn grid(min: f32, max: f32, step: f32) -> Result<Vec<f32>, String> {
    if !(step > 0.0 && min.is_finite() && max.is_finite() && min <= max) {
        return Err("the sweep needs --sweep-min <= --sweep-max and --sweep-step > 0".into());
    }
    let n = ((max - min) / step).floor() as usize;
    if n > 2000 {
        return Err("the sweep has more than 2000 steps; use a larger --sweep-step".into());
    }
    Ok((0..=n).map(|i| min + step * i as f32).collect())
}

pub fn run(args: &EvalArgs) -> i32 {
    let (rules, thresholds) = match args.rules.load() {
        Ok(x) => x,
        Err(msg) => {
            eprintln!("cyberfilter eval: {msg}");
            return EXIT_USAGE;
        }
    };
    let grid = match grid(args.sweep_min, args.sweep_max, args.sweep_step) {
        Ok(g) => g,
        Err(msg) => {
            eprintln!("cyberfilter eval: {msg}");
            return EXIT_USAGE;
        }
    };
    let opts = args.input.ingest_options(Some(args.label_field.clone()));
    let mut samples = Vec::new();
    let (mut unlabelled, mut errors, mut files) = (0u64, 0u64, 0u64);
    let mut consume = |item: Item| -> ControlFlow<()> {
        match item {
            Item::Record(rec) => {
                let positive = match &rec.label {
                    Some(l) => args.positive.iter().any(|p| p == l),
                    None => {
                        unlabelled += 1;
                        match args.unlabelled {
                            Unlabelled::Skip => return ControlFlow::Continue(()),
                            Unlabelled::Positive => true,
                            Unlabelled::Negative => false,
                        }
                    }
                };
                let score = if rec.scored {
                    rules.score(&rec.text).score
                } else {
                    0.0
                };
                samples.push(Sample {
                    score,
                    eligible: rec.scored && text_chars(&rec.text) >= thresholds.min_text_len,
                    positive,
                });
            }
            Item::Error(e) => {
                errors += 1;
                eprintln!("cyberfilter eval: {e}");
            }
            Item::FileDone { .. } => files += 1,
        }
        ControlFlow::Continue(())
    };
    if let Err(e) = stream(
        &args.input.inputs,
        &opts,
        args.input.single_thread,
        &mut consume,
    ) {
        eprintln!("cyberfilter eval: {e}");
        return EXIT_NOINPUT;
    }
    if files == 0 {
        eprintln!("cyberfilter eval: no input files found");
        return EXIT_NOINPUT;
    }
    let mut report = evaluate(&samples, &thresholds, &grid, args.verify_budget);
    report.unlabelled = unlabelled;
    report.errors = errors;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("report serialises")
        );
    } else {
        print!("{}", render(&report, args));
    }
    if errors > 0 {
        EXIT_DATAERR
    } else {
        EXIT_OK
    }
}

fn prf_line(name: &str, p: &Prf) -> String {
    format!(
        "{name:<13} precision {:.4}  recall {:.4}  F1 {:.4}  (tp {} fp {} fn {} tn {})\n",
        p.precision, p.recall, p.f1, p.tp, p.fp, p.fn_, p.tn
    )
}

/// The human-readable report.
pub fn render(r: &EvalReport, args: &EvalArgs) -> String {
    let mut s = String::new();
    let unl = match args.unlabelled {
        Unlabelled::Skip => "skipped",
        Unlabelled::Positive => "counted as positive",
        Unlabelled::Negative => "counted as negative",
    };
    s += &format!(
        "{} records measured: {} positive ({} = {}), {} negative; {} without `{}` ({unl}); {} input errors\n",
        r.records,
        r.positives,
        args.label_field,
        args.positive.join("|"),
        r.negatives,
        r.unlabelled,
        args.label_field,
        r.errors
    );
    s += &format!(
        "thresholds: keep >= {}, verify >= {}, min text {} chars\n\n",
        r.high, r.low, r.min_text_len
    );
    s += &format!("{:<8} {:>10} {:>10}\n", "tier", "positive", "negative");
    for (name, row) in ["keep", "verify", "reject"].iter().zip(r.confusion) {
        s += &format!("{name:<8} {:>10} {:>10}\n", row[0], row[1]);
    }
    s += "\n";
    s += &prf_line("keep", &r.keep);
    s += &prf_line("keep+verify", &r.keep_verify);
    s += "\nsweep: decision `score >= t` (t as high: keep; t as low: keep+verify)\n";
    s += &format!(
        "{:>7} {:>7} {:>9} {:>7} {:>7}\n",
        "t", "share", "precision", "recall", "F1"
    );
    let best = r.best_keep.as_ref().map(|b| b.threshold);
    for row in &r.sweep {
        s += &format!(
            "{:>7.2} {:>7.3} {:>9.4} {:>7.4} {:>7.4}{}\n",
            row.threshold,
            row.share,
            row.prf.precision,
            row.prf.recall,
            row.prf.f1,
            if Some(row.threshold) == best {
                "  <- F1 peak"
            } else {
                ""
            }
        );
    }
    if let Some(b) = &r.best_keep {
        s += &format!(
            "\nF1 of keep peaks at high = {} (F1 {:.4}); keep+verify peaks at low = {} for the same reason\n",
            b.threshold, b.prf.f1, b.threshold
        );
    }
    if let Some(p) = &r.best_pair {
        s += &format!(
            "best pair with at most {:.0}% of records to verify: low = {}, high = {} (verify {:.1}%, keep F1 {:.4}, keep+verify F1 {:.4}, F1 if the band is verified correctly {:.4})\n",
            args.verify_budget * 100.0,
            p.low,
            p.high,
            p.verify_share * 100.0,
            p.keep.f1,
            p.keep_verify.f1,
            p.f1_verified
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(score: f32, positive: bool) -> Sample {
        Sample {
            score,
            eligible: true,
            positive,
        }
    }

    #[test]
    fn prf_counts_and_ratios() {
        let p = Prf::new(8, 2, 2, 88);
        assert_eq!((p.precision, p.recall), (0.8, 0.8));
        assert!((p.f1 - 0.8).abs() < 1e-12);
        assert_eq!(Prf::new(0, 0, 5, 5).f1, 0.0);
    }

    #[test]
    fn confusion_sweep_and_best_pair() {
        let samples = [
            s(10.0, true),
            s(8.0, true),
            s(4.0, true),
            s(4.0, false),
            s(1.0, false),
            s(0.0, false),
            Sample {
                score: 50.0,
                eligible: false,
                positive: true,
            },
        ];
        let t = Thresholds {
            high: 6.0,
            low: 2.0,
            ..Thresholds::default()
        };
        let grid: Vec<f32> = (0..=12).map(|i| i as f32).collect();
        let r = evaluate(&samples, &t, &grid, 0.5);
        assert_eq!(r.confusion, [[2, 0], [1, 1], [1, 2]]);
        assert_eq!((r.keep.tp, r.keep.fp, r.keep.fn_, r.keep.tn), (2, 0, 2, 3));
        assert_eq!(
            (r.keep_verify.tp, r.keep_verify.fp, r.keep_verify.fn_),
            (3, 1, 1)
        );
        // score >= 2..=4 keeps 3 of 4 positives and one negative: F1 0.75, the peak.
        let best = r.best_keep.unwrap();
        assert!((best.prf.f1 - 0.75).abs() < 1e-9, "{best:?}");
        // With the 4.0 pair in the band, a perfect verifier gets 3 of 4 positives, no FP.
        let pair = r.best_pair.unwrap();
        assert!(
            pair.low <= 4.0 && pair.low > 1.0 && pair.high > 4.0,
            "{pair:?}"
        );
        assert!((pair.f1_verified - 2.0 * 0.75 / 1.75).abs() < 1e-9);
    }

    #[test]
    fn grid_is_validated() {
        assert!(grid(0.0, 1.0, 0.0).is_err());
        assert!(grid(2.0, 1.0, 0.5).is_err());
        assert_eq!(grid(0.0, 1.0, 0.5).unwrap(), vec![0.0, 0.5, 1.0]);
    }
}
