//! Bad input for the verdict head, each a clear error with nothing lost: a seed file without
//! the label field, a seed (or a training set) with one class only, a head made for another
//! model's features. And `cyberfilter head train|show` on a store: retrain from stored
//! features and labels (no model), re-decide, report.

use cyberfilter::decide::{decide, DecisionInputs};
use cyberfilter::rules::Thresholds;
use cyberfilter::store::features::{self as sf, HeadLabel, StoredFeatures};
use cyberfilter::store::{NewRecord, RunStore};
use cyberfilter::verify::head::{self, FeatureSpec, LabelSource};
use cyberfilter::SourceKind;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cyberfilter");

fn cyberfilter(args: &[&str], data: &Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("CYBERFILTER_DATA_DIR", data)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `cyberfilter run INPUT --head-seed SEED` with no verifier.
fn run_with_seed(input: &Path, store: &Path, seed: &Path, cwd: &Path) -> (i32, String, String) {
    cyberfilter(
        &[
            "run",
            input.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
            "--verifier",
            "none",
            "--progress",
            "none",
            "--head-seed",
            seed.to_str().unwrap(),
        ],
        cwd,
    )
}

#[test]
fn a_seed_without_the_label_field_or_with_one_class_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let cwe = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/cwe");
    let store = dir.path().join("run.cfrun");
    let nolabel = dir.path().join("nolabel.jsonl");
    std::fs::write(
        &nolabel,
        "{\"text\": \"a heap overflow in the parser\"}\n{\"text\": \"fix typo in docs\"}\n",
    )
    .unwrap();
    let (code, _, err) = run_with_seed(&cwe, &store, &nolabel, dir.path());
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("no record has the label field \"label\""),
        "{err}"
    );
    assert!(err.contains("nolabel.jsonl"), "{err}");
    assert!(!store.exists(), "nothing was started");

    let one = dir.path().join("one.jsonl");
    std::fs::write(
        &one,
        "{\"text\": \"a heap overflow in the parser\", \"label\": \"security\"}\n{\"text\": \"SQL injection in login\", \"label\": \"security\"}\n",
    )
    .unwrap();
    let (code, _, err) = run_with_seed(&cwe, &store, &one, dir.path());
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("every labelled record is positive"), "{err}");
    assert!(err.contains("a head needs both classes"), "{err}");
    assert!(!store.exists());
}

#[test]
fn the_shipped_head_refuses_another_models_features() {
    let shipped = head::Head::from_json(head::SHIPPED_DEFAULT, "shipped").unwrap();
    assert!(head::shipped_default_for(&shipped.spec).is_some());
    for other in [
        FeatureSpec {
            model: "mlx:Qwen2.5-0.5B-Instruct".into(),
            ..shipped.spec.clone()
        },
        FeatureSpec {
            layer: shipped.spec.layer + 1,
            ..shipped.spec.clone()
        },
        FeatureSpec {
            max_text_tokens: 48,
            ..shipped.spec.clone()
        },
    ] {
        assert!(head::shipped_default_for(&other).is_none());
        let err = shipped.check_features(&other).unwrap_err().to_string();
        assert!(
            err.contains(&other.key()) && err.contains("retrain it on this model"),
            "{err}"
        );
    }
}

const DIM: usize = 6;

fn spec() -> FeatureSpec {
    FeatureSpec {
        model: "test-model".into(),
        layer: 3,
        pooling: "mean".into(),
        max_text_tokens: 64,
        dim: DIM,
    }
}

/// A store of 40 records in the verify band with P(yes) and features, whose first feature says
/// the class; `weak` labels of the given classes on 20 of them.
fn store_with_features(path: &Path, classes: &[bool]) {
    let mut s = RunStore::open(path).unwrap();
    let f = s.file_id("a.jsonl", 10).unwrap();
    let t = Thresholds::default();
    let mid = (t.low + t.high) / 2.0;
    let mut rows = Vec::new();
    for i in 0..40u64 {
        let inputs = DecisionInputs {
            score: mid,
            text_len: 100,
            scored: true,
            p_yes: Some(0.2),
            p_head: None,
            label: None,
        };
        rows.push(NewRecord {
            seq: i as i64 + 1,
            file_id: f,
            index: i,
            id: format!("r{i}"),
            source: SourceKind::Json,
            kind: "json".into(),
            offset: 0,
            len: 1,
            outer_offset: None,
            content_hash: *blake3::hash(format!("text {i}").as_bytes()).as_bytes(),
            text: format!("text {i}"),
            text_len: 100,
            scored: true,
            score: mid,
            hits: vec![],
            p_yes: Some(0.2),
            model: Some("test-model".into()),
            prompt_version: Some("v1".into()),
            decision: decide(&inputs, &t),
        });
    }
    s.insert_records(&rows).unwrap();
    s.set_thresholds(&t).unwrap();
    let feats: Vec<StoredFeatures> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| StoredFeatures {
            content_hash: r.content_hash,
            p_yes: Some(0.2),
            vec: (0..DIM)
                .map(|j| {
                    if j == 0 {
                        (i % 2) as f32 * 2.0 - 1.0
                    } else {
                        ((i * 7 + j * 3) % 5) as f32 / 5.0
                    }
                })
                .collect(),
        })
        .collect();
    sf::put_features(s.conn(), path, &spec().key(), &feats).unwrap();
    let labels: Vec<HeadLabel> = rows
        .iter()
        .take(20)
        .enumerate()
        .map(|(i, r)| HeadLabel {
            content_hash: r.content_hash,
            source: LabelSource::Weak,
            positive: classes[i % classes.len()] && i % 2 == 1,
            group: "json".into(),
            text: None,
        })
        .collect();
    sf::put_head_labels(s.conn(), path, &labels).unwrap();
}

#[test]
fn head_train_with_one_class_changes_nothing_and_with_both_re_decides_and_reports_flips() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("one.cfrun");
    store_with_features(&store, &[false]);
    let before = std::fs::read(&store).ok();
    let (code, _, err) = cyberfilter(&["head", "train", store.to_str().unwrap()], dir.path());
    assert_eq!(code, 65, "{err}");
    assert!(
        err.contains("one class only (0 positive, 20 negative)"),
        "{err}"
    );
    assert!(err.contains("the store is unchanged"), "{err}");
    let s = RunStore::open_read(&store).unwrap();
    assert!(sf::heads(s.conn(), s.path()).unwrap().is_empty());
    drop(s);
    let _ = before;

    let store = dir.path().join("both.cfrun");
    store_with_features(&store, &[true]);
    let (code, out, err) = cyberfilter(&["head", "train", store.to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("40 records rescored"), "{out}");
    let s = RunStore::open_read(&store).unwrap();
    let h = sf::active_head(s.conn(), s.path()).unwrap().unwrap();
    assert_eq!(h.spec, spec());
    // Every record is re-decided by the head: the half whose first feature says "security" flips
    // to kept (P(yes) 0.2 had removed them all).
    let n: i64 = s
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM records WHERE decided_by = 'head' AND verdict = 'kept'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 20);
    assert!(out.contains("flips: +20 kept, -0 removed"), "{out}");
    drop(s);
    let (code, out, _) = cyberfilter(&["head", "show", store.to_str().unwrap()], dir.path());
    assert_eq!(code, 0);
    assert!(out.contains(&h.version) && out.contains("head 40"), "{out}");
}
