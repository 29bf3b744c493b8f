//! A slow or failing verifier does not hold ingest back and never loses a record; its errors
//! are counted and visible.

mod engine_support;

use cyberfilter::decide::{decide, Verdict};
use cyberfilter::engine::{self, EngineError, EngineEvent};
use cyberfilter::rules::Tier;
use cyberfilter::store::RunStore;
use cyberfilter::verify::VerifyError;
use engine_support::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn slow_failing_verifier_neither_stalls_ingest_nor_loses_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("run.cfrun");
    let (mut c, t) = spread_config(&store, MemorySource::new(3, 300, true));
    let seen = Arc::new(Mutex::new(Seen::default()));
    c.exit_when_done = false;
    c.channel_capacity = 32;
    // 150 ms per batch of 4, every third batch fails: hundreds of verify-tier records
    // would take many seconds to answer.
    c.verifier = Some(RecordingVerifier::factory(
        seen.clone(),
        Duration::from_millis(150),
        Some(3),
        4,
    ));
    let mut h = engine::start(c).unwrap();
    // Every record is read and stored while the verifier is still far behind.
    let ev = events_until(
        &mut h,
        Duration::from_secs(30),
        |e| matches!(e, EngineEvent::Stats(s) if s.records_read == 900),
    );
    let Some(EngineEvent::Stats(s)) = ev.last() else {
        unreachable!()
    };
    assert!(s.verify > 40, "{s:?}");
    assert!(
        s.verifier_queue > s.verify / 2,
        "ingest finished long before the verifier: {s:?}"
    );
    // Let a few batches fail, then stop.
    let ev = events_until(
        &mut h,
        Duration::from_secs(30),
        |e| matches!(e, EngineEvent::Stats(s) if s.verifier_errors >= 2),
    );
    assert!(ev.iter().any(
        |e| matches!(e, EngineEvent::Error { message, .. } if message.contains("injected failure"))
    ));
    h.commands.blocking_send(engine::Command::Stop).unwrap();
    let ev = events_until(&mut h, Duration::from_secs(30), |e| {
        matches!(e, EngineEvent::Finished(_))
    });
    let Some(EngineEvent::Finished(fin)) = ev.last() else {
        unreachable!()
    };
    let fin = fin.clone();
    h.join.join().unwrap().unwrap();
    assert!(fin.verifier_errors >= 2);
    assert!(fin.pending > 0, "unanswered records stay pending: {fin:?}");

    // Nothing lost: every record is stored once; each verify-tier record is answered
    // (with the verifier's answer) or pending.
    let s = RunStore::open_read(&store).unwrap();
    let (mut n, mut answered, mut pending) = (0, 0, 0);
    s.for_each_record(|r| {
        n += 1;
        let d = decide(&r.inputs(), &t);
        if d.tier == Tier::Verify {
            match r.p_yes {
                Some(p) => {
                    assert_eq!(p, engine::verifier::hash_p_yes(&r.text));
                    answered += 1;
                }
                None => {
                    assert_eq!(d.verdict, Verdict::Pending);
                    pending += 1;
                }
            }
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(n, 900);
    assert_eq!(answered + pending, fin.verify);
    assert_eq!(pending, fin.pending);
    assert_eq!(answered as usize, seen.lock().unwrap().texts.len());
    let errors = s.errors().unwrap();
    assert!(errors.iter().any(|(_, m)| m.contains("injected failure")));
    assert!(s.summary().unwrap().pending == pending);
}

#[test]
fn unreachable_verifier_fails_start_or_leaves_records_pending() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("run.cfrun");
    let down = || -> cyberfilter::verify::VerifierFactory {
        Box::new(|| Err(VerifyError::Unavailable("connection refused".into())))
    };
    let mut c = config(&store, MemorySource::new(1, 100, true));
    c.verifier = Some(down());
    match engine::start(c) {
        Err(EngineError::Verifier(_)) => {}
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("start must fail when the verifier is required"),
    }

    let (mut c, _) = spread_config(&store, MemorySource::new(1, 200, true));
    c.verifier = Some(down());
    c.require_verifier = false;
    let mut h = engine::start(c).unwrap();
    let ev = events_until(&mut h, Duration::from_secs(30), |e| {
        matches!(e, EngineEvent::Finished(_))
    });
    assert!(ev.iter().any(
        |e| matches!(e, EngineEvent::Error { message, .. } if message.contains("connection refused"))
    ));
    let fin = h.join.join().unwrap().unwrap();
    assert!(fin.verify > 0);
    assert_eq!(fin.pending, fin.verify);
    assert_eq!(
        RunStore::open_read(&store)
            .unwrap()
            .summary()
            .unwrap()
            .pending,
        fin.pending
    );
}

/// Answers NaN ("this text failed") for texts whose stand-in answer is below 0.3, and the
/// stand-in answer otherwise: a backend where some records of a batch fail and others do not.
struct PartlyFailingVerifier;

fn fails(text: &str) -> bool {
    engine::verifier::hash_p_yes(text) < 0.3
}

impl cyberfilter::verify::Verifier for PartlyFailingVerifier {
    fn model_id(&self) -> String {
        "partly-failing".into()
    }
    fn prompt_version(&self) -> String {
        "t1".into()
    }
    fn preferred_batch(&self) -> usize {
        8
    }
    fn verify_batch(&mut self, texts: &[&str]) -> Result<Vec<f32>, VerifyError> {
        Ok(texts
            .iter()
            .map(|t| match fails(t) {
                true => f32::NAN,
                false => engine::verifier::hash_p_yes(t),
            })
            .collect())
    }
    fn failure_reason(&mut self) -> Option<String> {
        Some("injected per-record failure".into())
    }
}

#[test]
fn a_failed_record_stays_pending_while_the_rest_of_its_batch_is_decided() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("run.cfrun");
    let (mut c, t) = spread_config(&store, MemorySource::new(1, 300, true));
    c.verifier = Some(Box::new(|| {
        Ok(Box::new(PartlyFailingVerifier) as Box<dyn cyberfilter::verify::Verifier>)
    }));
    let mut h = engine::start(c).unwrap();
    let ev = events_until(&mut h, Duration::from_secs(30), |e| {
        matches!(e, EngineEvent::Finished(_))
    });
    assert!(ev.iter().any(|e| matches!(e,
        EngineEvent::Error { message, .. } if message.contains("injected per-record failure"))));
    let fin = h.join.join().unwrap().unwrap();
    assert!(fin.verifier_errors > 0, "{fin:?}");

    let s = RunStore::open_read(&store).unwrap();
    let (mut failed, mut answered) = (0u64, 0u64);
    s.for_each_record(|r| {
        if decide(&r.inputs(), &t).tier == Tier::Verify {
            if fails(&r.text) {
                assert_eq!(r.p_yes, None, "a failed record has no answer: {}", r.text);
                failed += 1;
            } else {
                assert_eq!(r.p_yes, Some(engine::verifier::hash_p_yes(&r.text)));
                answered += 1;
            }
        }
        Ok(())
    })
    .unwrap();
    // Both kinds occur, the failed ones are exactly the pending ones.
    assert!(
        failed > 0 && answered > 0,
        "{failed} failed, {answered} answered"
    );
    assert_eq!(fin.pending, failed);
    assert_eq!(s.summary().unwrap().pending, failed);
    assert!(s
        .errors()
        .unwrap()
        .iter()
        .any(|(_, m)| m.contains("texts failed: injected per-record failure")));
}
