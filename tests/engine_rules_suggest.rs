//! Rules mined from the curator's labels in a running engine (the workbench's suggest
//! overlay): the engine lists the candidate that separates the labels, previews the flips of
//! adding it by re-scoring the stored texts, and adding it writes the session's rule file,
//! re-scores the store and re-decides with exactly the flips previewed; the run resumes with
//! the written rule file.

mod engine_support;

use cyberfilter::decide::{decide, Label};
use cyberfilter::engine::index::count_flip;
use cyberfilter::engine::suggest::with_rule;
use cyberfilter::engine::{self, Command, EngineEvent, FlipPreview};
use cyberfilter::rules::RuleSet;
use cyberfilter::store::RunStore;
use engine_support::*;
use std::path::PathBuf;
use std::time::Duration;

/// 40 texts with a phrase no default rule knows, 40 without; none scores on its own.
fn source() -> MemorySource {
    let with: Vec<String> = (0..40)
        .map(|i| format!("The frobnicator quirk lets a stranger rewrite the ledger, case {i}."))
        .collect();
    let without: Vec<String> = (0..40)
        .map(|i| format!("Routine change to the ledger layout and its colours, case {i}."))
        .collect();
    MemorySource {
        files: vec![
            (PathBuf::from("/memory/a.jsonl"), with),
            (PathBuf::from("/memory/b.jsonl"), without),
        ],
        delay: Duration::ZERO,
    }
}

/// Send the command `make` builds around a reply channel and wait for the answer.
fn ask<T>(
    h: &engine::EngineHandle,
    make: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> Command,
) -> T {
    let (tx, rx) = tokio::sync::oneshot::channel();
    h.commands.blocking_send(make(tx)).unwrap();
    rx.blocking_recv().unwrap()
}

fn drained(e: &EngineEvent) -> bool {
    matches!(e, EngineEvent::Drained(_))
}

#[test]
fn adding_a_mined_rule_rescores_the_store_and_reports_the_previewed_flips() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("run.cfrun");
    let mut c = config(&store, source());
    c.exit_when_done = false;
    let mut h = engine::start(c).unwrap();
    events_until(&mut h, Duration::from_secs(60), drained);

    // Label half of each side: the phrase separates the labels; the other halves stay
    // unlabelled, so adding the rule flips them.
    for i in 0..20 {
        for (file, label) in [("a", Label::Keep), ("b", Label::Reject)] {
            h.commands
                .blocking_send(Command::Relabel {
                    id: format!("/memory/{file}.jsonl#{i}"),
                    label: Some(label),
                })
                .unwrap();
        }
    }
    let list = ask(&h, |reply| Command::SuggestRules { reply }).expect("candidates");
    assert_eq!((list.kept, list.rejected), (20, 20));
    let top = list
        .candidates
        .iter()
        .find(|c| c.phrase.contains("frobnicator"))
        .unwrap_or_else(|| panic!("no frobnicator candidate in {:?}", list.candidates));
    assert_eq!((top.pos, top.neg), (20, 0));
    assert!(top.toml.contains("[[rule]]"), "{}", top.toml);

    // What the store holds now, and what the rule would make of it (brute force).
    let rules = RuleSet::default_rules();
    let added = with_rule(&rules, &top.toml, "test").unwrap();
    let mut want = FlipPreview::default();
    let mut raised = 0;
    {
        let s = RunStore::open_read(&store).unwrap();
        let t = s.thresholds().unwrap().unwrap();
        s.for_each_record(|r| {
            let old = decide(&r.inputs(), &t);
            let mut i = r.inputs();
            i.score = added.score(&r.text).score;
            raised += usize::from(i.score > r.score);
            count_flip(&mut want, &old, &decide(&i, &t), &i, false);
            Ok(())
        })
        .unwrap();
    }
    assert_eq!(raised, 40, "every text with the phrase scores higher");
    assert_eq!(
        want.to_kept + want.to_pending,
        20,
        "the unlabelled texts with the phrase leave reject: {want:?}"
    );

    let preview = ask(&h, |reply| Command::PreviewRule {
        rule: top.toml.clone(),
        reply,
    });
    assert_eq!(preview, Ok(want), "preview");

    // Adding it: the rule file beside the store, re-scored records, the same flips.
    let add = |h: &engine::EngineHandle| {
        ask(h, |reply| Command::AddRule {
            rule: top.toml.clone(),
            reply,
        })
    };
    let file = add(&h).expect("rule added");
    assert_eq!(
        file,
        PathBuf::from(format!("{}.rules.toml", store.display()))
    );
    let ev = events_until(&mut h, Duration::from_secs(30), |e| {
        matches!(e, EngineEvent::Redecided(_))
    });
    let Some(EngineEvent::Redecided(flips)) = ev.last() else {
        unreachable!()
    };
    assert_eq!(*flips, want, "flips reported");
    // A second candidate built on the same phrase name is refused with the file named.
    let err = add(&h).unwrap_err();
    assert!(err.contains(&file.display().to_string()), "{err}");

    h.commands.blocking_send(Command::Stop).unwrap();
    events_until(&mut h, Duration::from_secs(30), |e| {
        matches!(e, EngineEvent::Finished(_))
    });
    h.join.join().unwrap().unwrap();

    // The file is the built-in rules plus the rule; the store carries its hash and the new
    // scores.
    let written = RuleSet::from_file(&file).unwrap();
    assert_eq!(written.len(), rules.len() + 1);
    assert!(written.rules().any(|r| r.name == top.name));
    let s = RunStore::open_read(&store).unwrap();
    assert_eq!(s.config().unwrap().unwrap().rules_hash, written.hash());
    s.for_each_record(|r| {
        assert_eq!(
            r.score,
            written.score(&r.text).score,
            "stored score of {}",
            r.id
        );
        Ok(())
    })
    .unwrap();
    drop(s);

    // The run resumes with the written file (the hash matches).
    let mut c = config(&store, source());
    c.rules = std::sync::Arc::new(written);
    c.rules_file = Some(file);
    assert!(run_to_end(c).records_read <= 80);
}
