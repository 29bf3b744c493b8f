//! The real engine on `sample_data/` with the default model (SmolLM2-135M-Instruct through
//! MLX): `cyberfilter run` as a user runs it. Every verify-tier record gets a real P(yes)
//! (the same the model gives in-process), and a second run over the same texts, with a new
//! store but the same data dir, asks the model nothing: every answer comes from the cache.
//! Skips with a note when the model is missing (`./scripts/setup.sh` fetches it).

mod common;

use common::{cyberfilter_cmd, json, root, smollm2_or_skip, stderr};
use cyberfilter::store::RunStore;
use cyberfilter::verify::mlx::{MlxOptions, MlxVerifier};
use cyberfilter::verify::Verifier;
use std::path::Path;
/// Short texts keep the CPU forward passes of a debug test run to seconds; the cut is part of
/// the prompt version, so these answers never stand in for full-length ones.
const MAX_TEXT_TOKENS: usize = 48;

fn run(store: &Path, data_dir: &Path) -> serde_json::Value {
    let sample = root().join("sample_data");
    let out = cyberfilter_cmd()
        .arg("run")
        .arg(&sample)
        .arg("--store")
        .arg(store)
        .args(["--verifier", "mlx", "--progress", "none"])
        .args(["--max-text-tokens", &MAX_TEXT_TOKENS.to_string()])
        // The answer cache is under test here, not the verdict head's weak labels.
        .args(["--head-weak", "0"])
        // Every verify-tier record asked on its own: which copy of a duplicate pair is asked
        // depends on how the reader threads interleave, so the cache-hit count would too.
        .args(["--dedup", "off"])
        .env("CYBERFILTER_DATA_DIR", data_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "run failed: {}", stderr(&out));
    json(&out)
}

/// (id, text, p_yes, model) of every verify-tier record, in arrival order.
fn verified(store: &Path) -> Vec<(String, String, Option<f64>, Option<String>)> {
    let s = RunStore::open_read(store).unwrap();
    let mut q = s
        .conn()
        .prepare("SELECT id, text, p_yes, model FROM records WHERE tier = 'verify' ORDER BY seq")
        .unwrap();
    let rows = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    rows
}

#[test]
fn sample_data_gets_real_probabilities_and_a_rerun_asks_the_model_nothing() {
    let Some(model) = smollm2_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let first = run(&dir.path().join("first.cfrun"), &data);
    let verify = first["verify"].as_u64().unwrap();
    assert!(verify > 0, "sample_data has verify-tier records: {first}");
    assert_eq!(first["pending"], 0, "every verify-tier record answered");
    assert_eq!(first["verifier_errors"], 0);
    assert!(first["llm_calls"].as_u64().unwrap() > 0);
    let rows = verified(&dir.path().join("first.cfrun"));
    assert_eq!(rows.len() as u64, verify);
    for (id, _, p, m) in &rows {
        let p = p.unwrap_or_else(|| panic!("{id} has no P(yes)"));
        assert!(p > 0.0 && p < 1.0, "{id}: P(yes) {p}");
        assert!(
            m.as_deref().is_some_and(|m| m.starts_with("mlx:SmolLM2")),
            "{id}: model {m:?}"
        );
    }
    let distinct: std::collections::BTreeSet<u64> =
        rows.iter().map(|r| (r.2.unwrap() * 1e6) as u64).collect();
    assert!(distinct.len() > rows.len() / 2, "answers vary by text");

    // The stored answers are the model's own: recompute a few in-process, unbatched.
    let mut v = MlxVerifier::load_with(
        &model,
        MlxOptions {
            max_text_tokens: MAX_TEXT_TOKENS,
            ..Default::default()
        },
    )
    .unwrap();
    for (id, text, p, _) in rows.iter().take(3) {
        let here = v.verify_batch(&[text.as_str()]).unwrap()[0] as f64;
        assert!(
            (here - p.unwrap()).abs() < 1e-3,
            "{id}: stored {p:?}, in-process {here}"
        );
    }
    drop(v);

    // A new store over the same texts: all answers from the data dir's cache.
    let second = run(&dir.path().join("second.cfrun"), &data);
    assert_eq!(second["llm_calls"], 0, "{second}");
    assert_eq!(second["cache_hits"].as_u64(), Some(verify));
    assert_eq!(second["pending"], 0);
    let again = verified(&dir.path().join("second.cfrun"));
    // Reader threads interleave files differently from run to run: compare as sets.
    let answers = |rows: &[(String, String, Option<f64>, Option<String>)]| {
        let mut v: Vec<(String, u64)> = rows
            .iter()
            .map(|r| (r.0.clone(), r.2.unwrap().to_bits()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(answers(&rows), answers(&again));

    // The same store again: nothing is read twice and nothing is asked.
    let resumed = run(&dir.path().join("first.cfrun"), &data);
    assert_eq!(resumed["llm_calls"], 0, "{resumed}");
    assert_eq!(resumed["pending"], 0);
}
