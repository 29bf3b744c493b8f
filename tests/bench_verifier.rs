//! `cyberfilter bench verifier` and `bench accuracy` through the real binary on the real default
//! model (SmolLM2, fetched by scripts/setup.sh); they skip with a note when it is missing.

mod common;

use std::io::Write;

use common::{cyberfilter, cyberfilter_cmd, realdata_path, smollm2_or_skip, stderr, stdout};
use common::{json, venv_python_or_skip};
use cyberfilter::verify::mlx::default_model_path;
use serde_json::Value;

/// A few labelled records in the arXiv sample's shape: two about security, two not.
fn labelled_input() -> tempfile::NamedTempFile {
    let rows = [
        ("s1", "Remote code execution in a TLS library", "A heap buffer overflow in the certificate parser lets a remote attacker execute arbitrary code; we describe the exploit and a patch.", "security"),
        ("n1", "Sourdough baking at home", "We compare flour hydration levels and proofing times for a crisp crust and an open crumb.", "non-security"),
        ("s2", "Detecting ransomware with system-call traces", "We train a classifier on system-call sequences to flag ransomware and malware before files are encrypted.", "security"),
        ("n2", "Graph neural networks for traffic forecasting", "A spatio-temporal graph model predicts road traffic speed from sensor data across a city.", "non-security"),
    ];
    let mut f = tempfile::Builder::new()
        .suffix(".jsonl")
        .tempfile()
        .unwrap();
    for (id, title, abs, label) in rows {
        let line = serde_json::json!({"id": id, "title": title, "abstract": abs, "label": label});
        writeln!(f, "{line}").unwrap();
    }
    f.flush().unwrap();
    f
}

fn run_json(args: &[&str]) -> Value {
    let out = cyberfilter(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}\n{}\n{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    json(&out)
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing or not a number in {v}"))
}

#[test]
fn bench_verifier_reports_each_batch_size_and_the_sgemm_peak() {
    if smollm2_or_skip().is_none() {
        return;
    }
    let input = labelled_input();
    let path = input.path().to_str().unwrap();
    let v = run_json(&[
        "bench",
        "verifier",
        "--input",
        path,
        "--records",
        "4",
        "--batch-sizes",
        "1,2",
        "--max-text-tokens",
        "64",
        "--baseline",
        "skip",
        "--json",
    ]);
    let peak = &v["sgemm_peak"];
    assert!(
        num(peak, "gflops") > 0.0 && num(peak, "seconds") > 0.0,
        "{peak}"
    );
    assert!(v["flop_formula"].as_str().unwrap().contains("2*P"));
    assert!(v["baseline"].is_null() && v["ratios"].is_null());
    assert!(v["baseline_note"].as_str().unwrap().contains("skip"));
    assert!(num(&v, "prompt_tokens") > 4.0 * 20.0, "{v}");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, batch) in rows.iter().zip([1.0, 2.0]) {
        assert_eq!(num(row, "batch"), batch);
        assert_eq!(num(row, "records"), 4.0);
        assert!(num(row, "records_per_s") > 0.0, "{row}");
        assert!(num(row, "prompt_tokens_per_s") > num(row, "records_per_s"));
        let fill = num(row, "fill");
        assert!(fill > 0.0 && fill <= 1.0, "{row}");
        assert!(num(row, "gflop") > 0.0 && num(row, "gflops") > 0.0, "{row}");
    }
    // Unbatched there is no padding; two rows at a time ask for at most half the forward passes.
    assert_eq!(num(&rows[0], "fill"), 1.0);
    assert_eq!(num(&rows[0], "forward_batches"), 4.0);
    assert!(num(&rows[1], "forward_batches") <= 4.0);
}

#[test]
fn bench_accuracy_reports_auc_and_the_cuts() {
    if smollm2_or_skip().is_none() {
        return;
    }
    let input = labelled_input();
    let path = input.path().to_str().unwrap();
    let v = run_json(&[
        "bench",
        "accuracy",
        "--input",
        path,
        "--max-text-tokens",
        "64",
        "--json",
    ]);
    assert_eq!(num(&v, "records"), 4.0);
    assert_eq!(num(&v, "positives"), 2.0);
    let auc = num(&v, "roc_auc");
    assert!((0.0..=1.0).contains(&auc), "{v}");
    assert_eq!(num(&v, "cut"), 0.5, "the default rules' p_yes_cut");
    let best = num(&v, "best_cut");
    assert!((0.0..=1.0).contains(&best), "{v}");
    let at_best = &v["at_best_cut"];
    // The best cut is at least as good as the default one and as keeping everything.
    assert!(num(at_best, "f1") >= num(&v["at_cut"], "f1"));
    assert!(num(at_best, "f1") >= num(&v, "f1_keep_all") - 1e-12);
    // Keeping everything finds both positives among four: F1 = 2*0.5*1/1.5.
    assert!((num(&v, "f1_keep_all") - 2.0 / 3.0).abs() < 1e-9);
    for key in ["tp", "fp", "fn_", "tn"] {
        assert!(at_best[key].is_u64(), "{key} in {at_best}");
    }
}

#[test]
fn bench_accuracy_names_the_file_without_labels() {
    let mut f = tempfile::Builder::new()
        .suffix(".jsonl")
        .tempfile()
        .unwrap();
    writeln!(
        f,
        r#"{{"id": "a", "title": "T", "abstract": "no label here"}}"#
    )
    .unwrap();
    f.flush().unwrap();
    let out = cyberfilter_cmd()
        .args(["bench", "accuracy", "--input", f.path().to_str().unwrap()])
        .env("CYBERFILTER_MODEL", default_model_path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = stderr(&out);
    if smollm2_or_skip().is_none() {
        // Then it fails on the model, naming it.
        assert!(stderr.contains("model"), "{stderr}");
        return;
    }
    assert!(stderr.contains(f.path().to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("label"), "{stderr}");
}

#[test]
fn bench_verifier_on_the_verify_tier_gives_the_baseline_the_same_records() {
    if smollm2_or_skip().is_none() {
        return;
    }
    let Some(python) = venv_python_or_skip() else {
        return;
    };
    // CAPEC: most patterns are kept by the rules outright; a few land in the verify tier.
    let capec = realdata_path("capec/capec_v3.9.xml");
    let v = run_json(&[
        "bench",
        "verifier",
        "--input",
        capec.to_str().unwrap(),
        "--verify-tier",
        "--records",
        "2",
        "--batch-sizes",
        "2",
        "--max-text-tokens",
        "64",
        "--python",
        python.to_str().unwrap(),
        "--json",
    ]);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(num(&rows[0], "records"), 2.0);
    let baseline = &v["baseline"];
    assert_eq!(num(baseline, "records"), 2.0, "{v}");
    assert!(num(baseline, "records_per_s") > 0.0, "{baseline}");
    // Both sides read the texts our extractor produced, so the baseline saw real prompts.
    assert!(num(baseline, "prompt_tokens") > 2.0 * 40.0, "{baseline}");
    assert!(num(&v["ratios"], "best") > 0.0, "{v}");
}
