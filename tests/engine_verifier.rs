//! A slow or failing verifier does not hold ingest back and never loses a record; its errors
//! are counted and visible.

mod engine_support;

use cyberfilter::decide::{decide, Verdict};
use cyberfilter::engine::retry::RetryPolicy;
use cyberfilter::engine::{self, EngineError, EngineEvent, StatsSnapshot};
use cyberfilter::rules::{Thresholds, Tier};
use cyberfilter::store::RunStore;
use cyberfilter::verify::VerifyError;
use engine_support::*;
use std::collections::HashMap;
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

/// A failing backend: every batch fails until its `down_for`-th call (an outage), and with
/// `some_texts` it answers NaN ("this text failed") for texts whose stand-in answer is below
/// 0.3 and the stand-in answer otherwise (some records of a batch fail, others do not). Counts
/// how often each text was asked and keeps the texts answered.
struct Flaky {
    down_for: usize,
    some_texts: bool,
    calls: usize,
    log: Arc<Mutex<Asked>>,
}

#[derive(Default)]
struct Asked {
    times: HashMap<String, usize>,
    answered: Vec<String>,
}

type FlakyFactory = (cyberfilter::verify::VerifierFactory, Arc<Mutex<Asked>>);

impl Flaky {
    fn factory(down_for: usize, some_texts: bool) -> FlakyFactory {
        let log = Arc::new(Mutex::new(Asked::default()));
        let l = log.clone();
        let f: cyberfilter::verify::VerifierFactory = Box::new(move || {
            Ok(Box::new(Flaky {
                down_for,
                some_texts,
                calls: 0,
                log: l,
            }) as Box<dyn cyberfilter::verify::Verifier>)
        });
        (f, log)
    }
}

/// A run of 300 spread records with `flaky` as the backend and the retry policy `rounds`
/// and `backoff_ms`, to the end: its events, final stats, thresholds and the backend's log.
fn run_flaky(
    store: &std::path::Path,
    (factory, log): FlakyFactory,
    rounds: u32,
    backoff_ms: u64,
) -> (
    Vec<EngineEvent>,
    StatsSnapshot,
    Thresholds,
    Arc<Mutex<Asked>>,
) {
    let (mut c, t) = spread_config(store, MemorySource::new(1, 300, true));
    c.verifier = Some(factory);
    c.stats_interval = Duration::from_millis(20);
    c.verify_retry = RetryPolicy {
        rounds,
        backoff: Duration::from_millis(backoff_ms),
        ..RetryPolicy::default()
    };
    let mut h = engine::start(c).unwrap();
    let ev = events_until(&mut h, Duration::from_secs(60), |e| {
        matches!(e, EngineEvent::Finished(_))
    });
    let fin = h.join.join().unwrap().unwrap();
    (ev, fin, t, log)
}

fn fails(text: &str) -> bool {
    engine::verifier::hash_p_yes(text) < 0.3
}

impl cyberfilter::verify::Verifier for Flaky {
    fn model_id(&self) -> String {
        "flaky".into()
    }
    fn prompt_version(&self) -> String {
        "t1".into()
    }
    fn preferred_batch(&self) -> usize {
        8
    }
    fn verify_batch(&mut self, texts: &[&str]) -> Result<Vec<f32>, VerifyError> {
        self.calls += 1;
        let mut log = self.log.lock().unwrap();
        for t in texts {
            *log.times.entry(t.to_string()).or_insert(0) += 1;
        }
        if self.calls <= self.down_for {
            return Err(VerifyError::Failed(format!("down (call {})", self.calls)));
        }
        let mut out = Vec::with_capacity(texts.len());
        for t in texts {
            if self.some_texts && fails(t) {
                out.push(f32::NAN);
            } else {
                log.answered.push(t.to_string());
                out.push(engine::verifier::hash_p_yes(t));
            }
        }
        Ok(out)
    }
    fn failure_reason(&mut self) -> Option<String> {
        self.some_texts
            .then(|| "injected per-record failure".into())
    }
}

#[test]
fn a_failed_record_stays_pending_while_the_rest_of_its_batch_is_decided() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("run.cfrun");
    // Two retries within the run, 20 ms apart at first: a record that always fails is
    // asked three times, then stays pending for a resume.
    let (ev, fin, t, asked) = run_flaky(&store, Flaky::factory(0, true), 2, 20);
    assert!(ev.iter().any(|e| matches!(e,
        EngineEvent::Error { message, .. } if message.contains("injected per-record failure"))));
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
    // Each failing text asked once per round, each answered one once; the given-up ones
    // are exactly the pending ones.
    for (text, n) in asked.lock().unwrap().times.iter() {
        assert_eq!(*n, if fails(text) { 3 } else { 1 }, "{text}");
    }
    assert_eq!(fin.verifier_gave_up, failed, "{fin:?}");
    assert_eq!(fin.verifier_failed_rounds, 3 * failed, "{fin:?}");
    assert_eq!(fin.verifier_retrying, 0);
    assert!(s
        .errors()
        .unwrap()
        .iter()
        .any(|(_, m)| m.contains("texts failed: injected per-record failure")));
}

/// The retry policy with any backend: records of failed batches are pending and counted as
/// retrying while they wait, are asked again, and the run finishes only once every one is
/// answered, each exactly once.
#[test]
fn failed_batches_are_retried_within_the_run_until_the_backend_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("run.cfrun");
    let (ev, fin, t, log) = run_flaky(&store, Flaky::factory(3, false), 6, 100);
    // While they waited, the failed records were pending and counted as retrying.
    let waiting = ev
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Stats(s) if s.verifier_retrying > 0 => Some(s),
            _ => None,
        })
        .next()
        .expect("a stats event while records waited to retry");
    assert!(waiting.pending >= waiting.verifier_retrying, "{waiting:?}");
    assert!(ev.iter().any(|e| matches!(e,
        EngineEvent::Error { message, .. } if message.contains("asked again in"))));
    assert_eq!(fin.pending, 0, "{fin:?}");
    assert_eq!(fin.verifier_gave_up, 0, "{fin:?}");
    assert!(fin.verifier_failed_rounds > 0, "{fin:?}");
    assert_eq!(fin.verifier_errors, 3, "{fin:?}");

    // Every verify-tier record answered exactly once, with the backend's answer.
    let seen = &log.lock().unwrap().answered;
    let distinct: std::collections::HashSet<&String> = seen.iter().collect();
    assert_eq!(
        distinct.len(),
        seen.len(),
        "a record asked twice after answering"
    );
    let s = RunStore::open_read(&store).unwrap();
    let mut verify = 0;
    s.for_each_record(|r| {
        if decide(&r.inputs(), &t).tier == Tier::Verify {
            verify += 1;
            assert_eq!(r.p_yes, Some(engine::verifier::hash_p_yes(&r.text)));
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(verify, seen.len());
    assert_eq!(s.summary().unwrap().pending, 0);
}
