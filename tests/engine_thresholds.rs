//! Threshold changes re-decide every stored record (checked against a brute-force
//! recomputation) and queue for the verifier exactly the records that newly need it.

mod engine_support;

use cyberfilter::decide::{decide, DecisionInputs, Verdict};
use cyberfilter::engine::index::Index;
use cyberfilter::engine::{self, Command, EngineEvent, FlipPreview};
use cyberfilter::rules::{RuleSet, Thresholds};
use cyberfilter::store::{parse_verdict, RunStore};
use cyberfilter::SourceKind;
use engine_support::*;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn drained(e: &EngineEvent) -> bool {
    matches!(e, EngineEvent::Drained(_))
}

#[test]
fn threshold_change_redecides_like_brute_force_and_queues_only_newly_needing_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("run.cfrun");
    let src = MemorySource::new(2, 400, true);
    let all = src.texts();
    let rules = RuleSet::default_rules();
    let t1 = spread_thresholds(&rules, &all);
    let mut scores: Vec<f32> = all.iter().map(|t| rules.score(t).score).collect();
    scores.sort_by(|a, b| a.total_cmp(b));
    scores.dedup();
    // A wider verify band: some rejected records now need the verifier, some kept ones too.
    let t2 = Thresholds {
        low: scores[scores.len() / 6],
        high: scores[(5 * scores.len() / 6).min(scores.len() - 1)],
        ..t1
    };
    assert!(t2.low < t1.low && t2.high > t1.high, "{t1:?} {t2:?}");

    let mut c = config(&store, src);
    c.thresholds = Some(t1);
    c.exit_when_done = false;
    let seen = recording(&mut c, 8);
    let mut h = engine::start(c).unwrap();
    events_until(&mut h, Duration::from_secs(60), drained);
    let asked_before: HashSet<String> = seen.lock().unwrap().texts.drain(..).collect();

    // Widen the band: records newly need the verifier, and exactly they are asked.
    let asked_after = change_and_check(&mut h, &store, &seen, t1, t2);
    assert!(!asked_after.is_empty());
    assert!(
        asked_after.is_disjoint(&asked_before),
        "nothing asked twice"
    );
    // Narrow it to nothing: verdicts flip to kept/removed, nobody is asked.
    let t3 = Thresholds {
        low: t1.low,
        high: t1.low,
        ..t1
    };
    let asked_3 = change_and_check(&mut h, &store, &seen, t2, t3);
    assert!(asked_3.is_empty());
    let t2 = t3;

    h.commands.blocking_send(Command::Stop).unwrap();
    events_until(&mut h, Duration::from_secs(30), |e| {
        matches!(e, EngineEvent::Finished(_))
    });
    h.join.join().unwrap().unwrap();

    // Stored verdicts equal the brute-force decision under t2 with the stored answers.
    let s = RunStore::open_read(&store).unwrap();
    assert_eq!(s.thresholds().unwrap(), Some(t2));
    let stored: HashMap<i64, Verdict> = {
        let mut st = s
            .conn()
            .prepare("SELECT seq, verdict FROM records")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get::<_, String>(1)?)))
            .unwrap()
            .map(|x| {
                let (a, b) = x.unwrap();
                (a, parse_verdict(&b).unwrap())
            })
            .collect()
    };
    let mut n = 0;
    s.for_each_record(|r| {
        let d = decide(&r.inputs(), &t2);
        assert_ne!(d.verdict, Verdict::Pending, "{} still pending", r.id);
        assert_eq!(stored[&r.seq], d.verdict, "stored verdict of {}", r.id);
        n += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(n, 800);
}

/// Apply `to` (from `from`), check the flips and the preview against a brute-force
/// recomputation over the store, wait for the verifier, and return the texts it was asked.
fn change_and_check(
    h: &mut engine::EngineHandle,
    store: &std::path::Path,
    seen: &Arc<Mutex<Seen>>,
    from: Thresholds,
    to: Thresholds,
) -> HashSet<String> {
    seen.lock().unwrap().texts.clear();
    let before: Vec<(String, DecisionInputs)> = {
        let s = RunStore::open_read(store).unwrap();
        let mut v = Vec::new();
        s.for_each_record(|r| {
            v.push((r.text.clone(), r.inputs()));
            Ok(())
        })
        .unwrap();
        v
    };
    assert_eq!(before.len(), 800);
    let mut want = FlipPreview::default();
    let mut want_asked = HashSet::new();
    for (text, i) in &before {
        let (a, b) = (decide(i, &from), decide(i, &to));
        if a.verdict != b.verdict {
            match b.verdict {
                Verdict::Kept => want.to_kept += 1,
                Verdict::Removed => want.to_removed += 1,
                Verdict::Pending => want.to_pending += 1,
            }
            match a.verdict {
                Verdict::Kept => want.from_kept += 1,
                Verdict::Removed => want.from_removed += 1,
                Verdict::Pending => want.from_pending += 1,
            }
        }
        if b.needs_verifier(i) && !a.needs_verifier(i) {
            want.newly_pending += 1;
            want_asked.insert(text.clone());
        }
    }
    assert!(
        want.newly_pending + want.to_kept + want.to_removed > 0,
        "the change must change something: {want:?}"
    );
    let (tx, rx) = tokio::sync::oneshot::channel();
    h.commands
        .blocking_send(Command::PreviewThresholds(to, tx))
        .unwrap();
    assert_eq!(rx.blocking_recv().unwrap(), want, "preview");
    h.commands
        .blocking_send(Command::SetThresholds(to))
        .unwrap();
    let ev = events_until(h, Duration::from_secs(30), |e| {
        matches!(e, EngineEvent::Redecided(_))
    });
    let Some(EngineEvent::Redecided(flips)) = ev.last() else {
        unreachable!()
    };
    assert_eq!(*flips, want, "flips reported");
    if want.newly_pending > 0 {
        events_until(h, Duration::from_secs(60), drained);
    } else {
        // Give a wrongly queued batch the time to show up.
        std::thread::sleep(Duration::from_millis(300));
    }
    let asked: HashSet<String> = seen.lock().unwrap().texts.iter().cloned().collect();
    assert_eq!(
        asked, want_asked,
        "exactly the newly needing records were verified"
    );
    asked
}

#[test]
fn redeciding_a_million_records() {
    let t1 = Thresholds::default();
    let t2 = Thresholds {
        high: 5.0,
        low: 1.5,
        ..t1
    };
    let mut ix = Index::default();
    let mut brute = Vec::with_capacity(1_000_000);
    for n in 0..1_000_000u32 {
        let x = n.wrapping_mul(2_654_435_761);
        let i = DecisionInputs {
            score: (x % 1000) as f32 / 100.0,
            text_len: 10 + (x % 200) as usize,
            scored: x % 17 != 0,
            p_yes: (x % 3 == 0).then(|| (x % 101) as f32 / 100.0),
            p_head: None,
            label: None,
        };
        ix.push(n as i64 + 1, SourceKind::Json, &i, &t1);
        brute.push(i);
    }
    let start = Instant::now();
    let r = ix.redecide(&t2);
    let took = start.elapsed();
    let mut changed = 0;
    for (pos, i) in brute.iter().enumerate() {
        let (a, b) = (decide(i, &t1), decide(i, &t2));
        assert_eq!(ix.decision_at(pos), b);
        if a != b {
            changed += 1;
        }
    }
    assert_eq!(r.changed.len(), changed);
    eprintln!("re-decided 1,000,000 records in {took:?}");
    if !cfg!(debug_assertions) {
        assert!(took < Duration::from_secs(1), "{took:?}");
    }
}
