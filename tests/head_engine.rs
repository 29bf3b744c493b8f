//! The verdict head in the real engine with the default model (SmolLM2-135M-Instruct through
//! MLX, on `sample_data/`): weak labels are featurized once the input is read, the curator
//! labels a handful of verify-tier records, the head retrains, and the flips it reports equal
//! a brute-force recomputation from the store's features; a resumed run and an export give
//! the live session's verdicts. Skips with a note when the model is missing.

mod engine_support;

use cyberfilter::decide::{decide, DecisionInputs, Label, Verdict};
use cyberfilter::engine::head::{HeadMode, HeadOptions};
use cyberfilter::engine::{self, Command, EngineConfig, EngineEvent, ExportFormat, ExportLayout};
use cyberfilter::rules::RuleSet;
use cyberfilter::store::features as sf;
use cyberfilter::store::RunStore;
use cyberfilter::verify::head::Extra;
use cyberfilter::verify::mlx::{default_model_path, factory_with, MlxOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Short texts keep the debug build's CPU passes to seconds.
const MAX_TEXT_TOKENS: usize = 48;

fn config(store: &Path, exit_when_done: bool) -> EngineConfig {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data");
    let mut c = EngineConfig::new(store.to_path_buf(), vec![sample], RuleSet::default_rules());
    c.verifier = Some(factory_with(
        default_model_path(),
        MlxOptions {
            max_text_tokens: MAX_TEXT_TOKENS,
            ..Default::default()
        },
    ));
    c.verifier_name = "mlx".into();
    c.batch_wait = Duration::from_millis(20);
    c.stats_interval = Duration::from_millis(100);
    c.exit_when_done = exit_when_done;
    c.head = HeadOptions {
        mode: HeadMode::Auto,
        weak_per_class: 6,
        retrain_every: 4,
        ..Default::default()
    };
    // The flips are checked against a brute-force decision of each record on its own inputs;
    // sample_data holds CVEs in several feeds, which grouping would tie to one verdict.
    c.dedup = None;
    c
}

/// Events until `stop` says so; fails the test on a timeout, listing what came.
fn wait_for(
    h: &mut engine::EngineHandle,
    secs: u64,
    mut stop: impl FnMut(&EngineEvent) -> bool,
) -> Vec<EngineEvent> {
    let mut hit = false;
    let out = engine_support::events_until(h, Duration::from_secs(secs), |e| {
        hit = stop(e);
        hit
    });
    assert!(
        hit,
        "timed out; events so far: {:?}",
        out.iter()
            .map(|e| format!("{e:?}").chars().take(160).collect::<String>())
            .collect::<Vec<_>>()
    );
    out
}

/// (seq, id, verdict, decided_by) of every record, by seq.
fn verdicts(store: &Path) -> BTreeMap<i64, (String, String, Option<String>)> {
    let s = RunStore::open_read(store).unwrap();
    let mut q = s
        .conn()
        .prepare("SELECT seq, id, verdict, decided_by FROM records ORDER BY seq")
        .unwrap();
    let rows = q
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))
        .unwrap()
        .collect::<Result<BTreeMap<_, _>, _>>()
        .unwrap();
    rows
}

/// Every record's verdict recomputed by hand from the store: the active head applied to the
/// stored features of each answered record, then the pure decision.
fn brute_force(store: &Path) -> BTreeMap<i64, Verdict> {
    let s = RunStore::open_read(store).unwrap();
    let head = sf::active_head(s.conn(), s.path())
        .unwrap()
        .expect("a head in force");
    let feats = sf::load_features(s.conn(), s.path(), &head.spec.key()).unwrap();
    let t = s.thresholds().unwrap().unwrap();
    let mut out = BTreeMap::new();
    for r in sf::head_records(s.conn(), s.path()).unwrap() {
        let p_head = match (r.p_yes, feats.get(&r.content_hash)) {
            (Some(p), Some(f)) => {
                Some(head.predict(&f.vec, Extra::new(Some(p), r.scored.then_some(r.score))))
            }
            _ => None,
        };
        let i = DecisionInputs {
            score: r.score,
            text_len: r.text_len,
            scored: r.scored,
            p_yes: r.p_yes,
            p_head,
            label: r.label.as_deref().and_then(Label::parse),
        };
        out.insert(r.seq, decide(&i, &t).verdict);
    }
    out
}

#[test]
fn labels_retrain_the_head_and_flips_resume_and_export_agree() {
    let model = default_model_path();
    if !model.exists() {
        eprintln!(
            "SKIPPED: {} missing; run ./scripts/setup.sh",
            model.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("run.cfrun");
    let mut h = engine::start(config(&store, false)).expect("engine starts");
    // The input is read, verified, and the weak labels are featurized and trained on.
    let events = wait_for(&mut h, 600, |e| matches!(e, EngineEvent::Drained(_)));
    let heads: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Head(h) => Some(h.message.clone()),
            _ => None,
        })
        .collect();
    assert!(
        heads
            .iter()
            .any(|m| m.contains("retrained (seed and weak labels featurized)")),
        "{heads:?}"
    );
    let s = RunStore::open_read(&store).unwrap();
    let weak = sf::head_labels(s.conn(), s.path()).unwrap();
    assert!(
        weak.iter().any(|l| l.positive) && weak.iter().any(|l| !l.positive),
        "{weak:?}"
    );
    drop(s);

    // Label a handful of verify-tier records against what the head says: the 4th retrains.
    let before = verdicts(&store);
    let verify: Vec<(i64, String, String)> = {
        let s = RunStore::open_read(&store).unwrap();
        let mut q = s
            .conn()
            // Ids of one record each, so a label changes exactly the record chosen.
            .prepare(
                "SELECT seq, id, verdict FROM records WHERE tier = 'verify' AND p_head IS NOT NULL
                 AND id IN (SELECT id FROM records GROUP BY id HAVING COUNT(*) = 1) ORDER BY seq",
            )
            .unwrap();
        let v = q
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        v
    };
    assert!(
        verify.len() >= 4,
        "verify-tier records with P(head): {verify:?}"
    );
    for (_, id, verdict) in verify.iter().take(4) {
        let label = if verdict == "kept" {
            Label::Reject
        } else {
            Label::Keep
        };
        h.commands
            .blocking_send(Command::Relabel {
                id: id.clone(),
                label: Some(label),
            })
            .unwrap();
    }
    let events = wait_for(
        &mut h,
        120,
        |e| matches!(e, EngineEvent::Head(h) if h.message.contains("4 new curator labels")),
    );
    let EngineEvent::Head(report) = events.last().unwrap() else {
        unreachable!()
    };
    assert!(report.version.is_some(), "{report:?}");
    // The head panel's view agrees with the report: same head, same flips, curator examples.
    let (tx, rx) = tokio::sync::oneshot::channel();
    h.commands
        .blocking_send(Command::HeadStatus { reply: tx })
        .unwrap();
    let status = rx.blocking_recv().expect("head status");
    assert_eq!(status.version, report.version, "{status:?}");
    assert!(status.enabled && status.off_reason.is_none(), "{status:?}");
    assert_eq!(
        status.last_flips,
        Some((report.to_kept, report.to_removed)),
        "{status:?}"
    );
    let m = status.metrics.as_ref().expect("metrics");
    assert_eq!(
        m.by_source.get("curator").map(|n| n[0] + n[1]),
        Some(4),
        "{m:?}"
    );
    assert!(status.records_with_features >= verify.len(), "{status:?}");
    assert_eq!(status.labels_since, 0, "{status:?}");
    // Flush by asking for a record, then stop the live session.
    h.commands.blocking_send(Command::Stop).unwrap();
    wait_for(&mut h, 60, |e| matches!(e, EngineEvent::Finished(_)));
    h.join.join().unwrap().unwrap();

    // The flips reported = verdicts that changed from before the retrain (labels aside),
    // recomputed by hand from the stored features and the stored head.
    let live = verdicts(&store);
    let by_hand = brute_force(&store);
    let labelled: Vec<i64> = verify.iter().take(4).map(|v| v.0).collect();
    let (mut to_kept, mut to_removed) = (0u64, 0u64);
    for (seq, v) in &by_hand {
        assert_eq!(live[seq].1, v.as_str(), "seq {seq}: stored vs recomputed");
        if labelled.contains(seq) {
            continue;
        }
        if before[seq].1 != v.as_str() {
            match v {
                Verdict::Kept => to_kept += 1,
                Verdict::Removed => to_removed += 1,
                Verdict::Pending => {}
            }
        }
    }
    assert_eq!(
        (report.to_kept, report.to_removed),
        (to_kept, to_removed),
        "reported flips vs brute force ({report:?})"
    );
    assert!(
        live.values().any(|v| v.2.as_deref() == Some("head")),
        "some verify-tier record is decided by the head"
    );

    // A resumed run reads the same inputs and gives the same verdicts, asking nothing.
    let mut h = engine::start(config(&store, true)).expect("resume starts");
    wait_for(&mut h, 300, |e| matches!(e, EngineEvent::Finished(_)));
    let snap = h.join.join().unwrap().unwrap();
    assert_eq!(snap.pending, 0);
    assert_eq!(verdicts(&store), live, "resume changed verdicts");

    // The export's verdicts are the live session's.
    let out: PathBuf = dir.path().join("export");
    let report = cyberfilter::store::export::export(
        &store,
        &out,
        ExportFormat::Jsonl,
        ExportLayout::PerInput,
        None,
    )
    .unwrap();
    let kept = live.values().filter(|v| v.1 == "kept").count() as u64;
    let removed = live.values().filter(|v| v.1 == "removed").count() as u64;
    assert_eq!((report.kept, report.removed), (kept, removed));
    let mut by_head = 0;
    for f in std::fs::read_dir(&out).unwrap() {
        let p = f.unwrap().path();
        if p.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(&p).unwrap().lines() {
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let cf = &v["cyberfilter"];
            if cf["decided_by"] == "head" {
                by_head += 1;
                assert!(cf["p_head"].is_number() && cf["p_yes"].is_number(), "{cf}");
            }
        }
    }
    assert_eq!(
        by_head,
        live.values()
            .filter(|v| v.2.as_deref() == Some("head"))
            .count()
    );
}
