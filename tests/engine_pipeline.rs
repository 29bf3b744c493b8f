//! The engine end to end with an in-memory source: every record stored once, verify-tier
//! records answered through the cache, resume skips what is stored, commands answered.

mod engine_support;

use cyberfilter::decide::{decide, Label, Verdict};
use cyberfilter::engine::{self, Command, EngineEvent, RecordFilter, SortBy};
use cyberfilter::rules::Tier;
use cyberfilter::store::RunStore;
use engine_support::*;
use std::collections::HashSet;
use std::time::Duration;

#[test]
fn every_record_is_stored_once_and_identical_texts_are_asked_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("run.cfrun");
    // Texts repeat across files (unique = false): the cache must answer the repeats.
    let (mut c, t) = spread_config(&store, MemorySource::new(3, 400, false));
    let seen = recording(&mut c, 16);
    c.verifier_name = "recording".into();
    let stats = run_to_end(c);
    assert_eq!(stats.records_read, 1200);
    assert_eq!(stats.pending, 0, "every verify-tier record was answered");
    assert!(
        stats.verify > 0 && stats.keep > 0 && stats.reject > 0,
        "{stats:?}"
    );

    let s = RunStore::open_read(&store).unwrap();
    let inputs = s.load_inputs().unwrap();
    assert_eq!(inputs.len(), 1200);
    let keys: HashSet<(i64, u64)> = inputs.iter().map(|i| (i.file_id, i.index)).collect();
    assert_eq!(keys.len(), 1200, "no record stored twice");

    // Each distinct verify-tier text was asked about exactly once.
    let seen = seen.lock().unwrap();
    let asked: HashSet<&String> = seen.texts.iter().collect();
    assert_eq!(asked.len(), seen.texts.len(), "a text was asked twice");
    let mut verify_texts = HashSet::new();
    s.for_each_record(|r| {
        let d = decide(&r.inputs(), &t);
        assert_ne!(d.verdict, Verdict::Pending);
        if d.tier == Tier::Verify {
            verify_texts.insert(r.text.clone());
            let want = engine::verifier::hash_p_yes(&r.text);
            assert_eq!(r.p_yes, Some(want), "answer stored for {}", r.id);
            assert_eq!(r.model.as_deref(), Some("recording"));
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(asked.len(), verify_texts.len());
    assert!(stats.cache_hits > 0, "repeated texts came from the cache");
    assert!(seen.batches.iter().all(|&b| b <= 16));
    drop(seen);

    // The same store again: every file is done, nothing is read or asked again.
    let mut c = config(&store, MemorySource::new(3, 400, false));
    let seen2 = recording(&mut c, 16);
    let stats = run_to_end(c);
    assert_eq!(stats.records_read, 0);
    assert!(seen2.lock().unwrap().texts.is_empty());
    assert_eq!(
        RunStore::open_read(&store)
            .unwrap()
            .load_inputs()
            .unwrap()
            .len(),
        1200
    );
}

#[test]
fn without_a_verifier_verify_tier_records_stay_pending_and_a_later_verifier_answers_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("run.cfrun");
    let (c, _) = spread_config(&store, MemorySource::new(2, 300, true));
    let stats = run_to_end(c);
    assert_eq!(stats.records_read, 600);
    assert!(stats.pending > 0);
    assert_eq!(stats.pending, stats.verify);
    let sum = RunStore::open_read(&store).unwrap().summary().unwrap();
    assert_eq!(
        sum.pending, stats.pending,
        "pending records are stored as pending"
    );

    // Resume with a verifier: nothing is read again, the pending ones are asked.
    let mut c = config(&store, MemorySource::new(2, 300, true));
    let seen = recording(&mut c, 8);
    let stats2 = run_to_end(c);
    assert_eq!(stats2.records_read, 0);
    assert_eq!(stats2.pending, 0);
    assert_eq!(seen.lock().unwrap().texts.len() as u64, stats.pending);
}

#[test]
fn commands_relabel_undo_query_and_detail() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("run.cfrun");
    let (mut c, _) = spread_config(&store, MemorySource::new(1, 200, true));
    c.exit_when_done = false;
    let mut h = engine::start(c).unwrap();
    events_until(&mut h, Duration::from_secs(30), |e| {
        matches!(e, EngineEvent::Drained(_))
    });

    // Find a kept record and reject it by hand.
    let page = query(
        &h,
        RecordFilter {
            verdict: Some(Verdict::Kept),
            ..Default::default()
        },
        SortBy::Score,
        5,
    );
    assert!(page.total > 0 && !page.rows.is_empty());
    assert!(page.rows.windows(2).all(|w| w[0].score >= w[1].score));
    let target = page.rows[0].id.clone();
    h.commands
        .blocking_send(Command::Relabel {
            id: target.clone(),
            label: Some(Label::Reject),
        })
        .unwrap();
    let d = get_record(&h, &target).expect("record found");
    assert_eq!(d.row.verdict, Verdict::Removed);
    assert_eq!(d.row.label, Some(Label::Reject));
    assert!(d.why.contains("curator"), "{}", d.why);
    assert!(!d.text.is_empty());

    // The label is in the store already (its own transaction), with its log entry.
    {
        let s = RunStore::open_read(&store).unwrap();
        let log = s.label_log().unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].old_verdict, Verdict::Kept);
        assert_eq!(s.summary().unwrap().labelled, 1);
    }

    // Labelled-only query, then undo.
    let page = query(
        &h,
        RecordFilter {
            labelled: Some(true),
            ..Default::default()
        },
        SortBy::Arrival,
        10,
    );
    assert_eq!(page.total, 1);
    assert_eq!(page.rows[0].id, target);
    h.commands.blocking_send(Command::UndoLabel).unwrap();
    let d = get_record(&h, &target).unwrap();
    assert_eq!(d.row.verdict, Verdict::Kept);
    assert_eq!(d.row.label, None);

    // Search is case-insensitive over id and text.
    let page = query(
        &h,
        RecordFilter {
            search: Some("BAKE SALE".into()),
            ..Default::default()
        },
        SortBy::Arrival,
        1000,
    );
    assert!(page.total > 0);
    assert!(page
        .rows
        .iter()
        .all(|r| r.seq > 0 && !r.rules.contains(&String::new())));

    h.commands.blocking_send(Command::Stop).unwrap();
    let fin = events_until(&mut h, Duration::from_secs(30), |e| {
        matches!(e, EngineEvent::Finished(_))
    });
    assert!(matches!(fin.last(), Some(EngineEvent::Finished(_))));
    h.join.join().unwrap().unwrap();
    let s = RunStore::open_read(&store).unwrap();
    assert_eq!(
        s.label_log().unwrap().len(),
        2,
        "undo is appended, not erased"
    );
    assert_eq!(s.summary().unwrap().labelled, 0);
}

#[test]
fn a_new_run_over_the_same_texts_takes_answers_from_the_shared_cache() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("llm-cache.sqlite");
    let mut asked = Vec::new();
    for name in ["first.cfrun", "second.cfrun"] {
        let (mut c, _) = spread_config(&dir.path().join(name), MemorySource::new(1, 300, true));
        c.shared_cache = Some(shared.clone());
        let seen = recording(&mut c, 8);
        let stats = run_to_end(c);
        assert_eq!(stats.pending, 0);
        asked.push((
            seen.lock().unwrap().texts.len(),
            stats.cache_hits,
            stats.verify,
        ));
    }
    assert!(asked[0].0 > 0, "the first run asks");
    assert_eq!(asked[1].0, 0, "the second run (a new store) asks nothing");
    assert_eq!(
        asked[1].1, asked[1].2,
        "every verify-tier answer came from the cache"
    );
}

#[test]
fn pause_holds_ingest_and_reverify_asks_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("run.cfrun");
    let mut src = MemorySource::new(1, 400, true);
    src.delay = Duration::from_millis(2);
    let (mut c, _) = spread_config(&store, src);
    c.exit_when_done = false;
    let seen = recording(&mut c, 8);
    let mut h = engine::start(c).unwrap();
    events_until(
        &mut h,
        Duration::from_secs(30),
        |e| matches!(e, EngineEvent::Stats(s) if s.records_read > 20),
    );
    h.commands.blocking_send(Command::Pause).unwrap();
    let ev = events_until(
        &mut h,
        Duration::from_secs(10),
        |e| matches!(e, EngineEvent::Stats(s) if s.paused),
    );
    let Some(EngineEvent::Stats(first)) = ev.last() else {
        unreachable!()
    };
    std::thread::sleep(Duration::from_millis(400));
    let ev = events_until(&mut h, Duration::from_secs(10), |e| {
        matches!(e, EngineEvent::Stats(_))
    });
    let Some(EngineEvent::Stats(later)) = ev.last() else {
        unreachable!()
    };
    // At most what was already in the channel arrives while paused.
    assert!(later.records_read < 400, "{later:?}");
    assert!(later.records_read <= first.records_read + 64 * 2);
    h.commands.blocking_send(Command::Resume).unwrap();
    events_until(
        &mut h,
        Duration::from_secs(60),
        |e| matches!(e, EngineEvent::Drained(s) if s.records_read == 400),
    );

    // Re-verify one answered record: the verifier is asked about exactly that text again.
    let row = query(
        &h,
        RecordFilter {
            tier: Some(Tier::Verify),
            ..Default::default()
        },
        SortBy::Arrival,
        1,
    )
    .rows
    .remove(0);
    assert!(row.p_yes.is_some());
    seen.lock().unwrap().texts.clear();
    h.commands
        .blocking_send(Command::Reverify { id: row.id.clone() })
        .unwrap();
    events_until(&mut h, Duration::from_secs(30), |e| {
        matches!(e, EngineEvent::Drained(_))
    });
    let d = get_record(&h, &row.id).unwrap();
    assert_eq!(seen.lock().unwrap().texts, vec![d.text.clone()]);
    assert_eq!(
        d.row.p_yes, row.p_yes,
        "the stand-in answers the same again"
    );
    h.commands.blocking_send(Command::Stop).unwrap();
    events_until(&mut h, Duration::from_secs(30), |e| {
        matches!(e, EngineEvent::Finished(_))
    });
    h.join.join().unwrap().unwrap();
}
