//! Duplicate grouping in the engine, on real JSONL files through the real readers: the
//! verifier is asked once per group, a duplicate's verdict follows its representative's, a
//! label on any member applies to the group, a split is remembered, a threshold change
//! regroups from stored signatures, and the export writes one record per group.

mod engine_support;

use cyberfilter::decide::{Label, Verdict};
use cyberfilter::engine::{self, Command, EngineEvent, IngestSource, RecordFilter, SortBy};
use cyberfilter::rules::Thresholds;
use cyberfilter::store::RunStore;
use engine_support::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const NEAR: &str = "An out-of-bounds write in the TIFF decoder of Acme Imaging Library before \
                    4.2.1 allows remote attackers to execute arbitrary code or cause a denial \
                    of service via a crafted image with an oversized strip count";

fn line(id: &str, text: &str) -> String {
    serde_json::json!({"id": id, "description": text}).to_string() + "\n"
}

/// Two files: one CVE in both (different wording), a near-duplicate pair under different ids,
/// and three unrelated records.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let a = dir.join("a.jsonl");
    let b = dir.join("b.jsonl");
    std::fs::write(
        &a,
        [
            line(
                "CVE-2024-1000",
                "A heap overflow in the PNG decoder of Foo 1.2 allows remote attackers to run \
                 code via a crafted file.",
            ),
            line("doc-1", NEAR),
            line(
                "other-1",
                "Cross-site scripting in the comment form of Bar CMS 3 lets attackers inject \
                 script into pages viewed by administrators.",
            ),
            line(
                "other-2",
                "SQL injection in the search endpoint of Baz Shop exposes customer records to \
                 unauthenticated users through the q parameter.",
            ),
        ]
        .concat(),
    )
    .unwrap();
    std::fs::write(
        &b,
        [
            line(
                "CVE-2024-1000",
                "Foo 1.2: remote code execution through a heap buffer overflow when decoding \
                 PNG images.",
            ),
            line("doc-2", &NEAR.replace("oversized", "overlong")),
            line(
                "other-3",
                "Improper certificate validation in the Qux mobile client allows a network \
                 attacker to intercept and modify traffic.",
            ),
        ]
        .concat(),
    )
    .unwrap();
    vec![a, b]
}

/// Every record in the verify band, grouping on with the default settings.
fn dedup_config(store: &Path, inputs: Vec<PathBuf>) -> engine::EngineConfig {
    let mut c = engine::EngineConfig::new(
        store.to_path_buf(),
        inputs,
        cyberfilter::rules::RuleSet::default_rules(),
    );
    c.source = Arc::new(IngestSource {
        options: Default::default(),
    });
    c.thresholds = Some(Thresholds {
        low: -1000.0,
        high: 1000.0,
        min_text_len: 5,
        p_yes_cut: 0.5,
    });
    c.batch_wait = Duration::from_millis(20);
    c.stats_interval = Duration::from_millis(50);
    // One reader: a.jsonl's records arrive first, so which record was asked before its
    // better duplicate arrived is fixed (the groups themselves do not depend on it).
    c.readers = 1;
    c
}

fn all_rows(h: &engine::EngineHandle) -> Vec<engine::RecordRow> {
    query(h, RecordFilter::default(), SortBy::Arrival, 100).rows
}

fn drained(h: &mut engine::EngineHandle) {
    events_until(h, Duration::from_secs(30), |e| {
        matches!(e, EngineEvent::Drained(_))
    });
}

/// A live engine on the two files (a recording verifier), drained.
fn live(store: &Path, files: &[PathBuf]) -> (engine::EngineHandle, Arc<std::sync::Mutex<Seen>>) {
    let mut c = dedup_config(store, files.to_vec());
    c.exit_when_done = false;
    let seen = recording(&mut c, 4);
    let mut h = engine::start(c).unwrap();
    drained(&mut h);
    (h, seen)
}

/// A live, drained engine on the two files in a new directory, with doc-2 (b.jsonl) checked
/// to be the copy of doc-1 (a.jsonl), which represents the pair.
fn live_pair() -> (
    tempfile::TempDir,
    PathBuf,
    Vec<PathBuf>,
    engine::EngineHandle,
) {
    let dir = tempfile::tempdir().unwrap();
    let (store, files) = (dir.path().join("run.cfrun"), inputs(dir.path()));
    let (h, _seen) = live(&store, &files);
    let rep = get_record(&h, "doc-1").unwrap().row.seq;
    assert_eq!(get_record(&h, "doc-2").unwrap().row.group, Some(rep));
    (dir, store, files, h)
}

fn relabel(h: &engine::EngineHandle, id: &str, label: Option<Label>) {
    let id = id.to_string();
    h.commands
        .blocking_send(Command::Relabel { id, label })
        .unwrap();
}

fn stop(mut h: engine::EngineHandle) -> engine::StatsSnapshot {
    h.commands.blocking_send(Command::Stop).unwrap();
    events_until(&mut h, Duration::from_secs(30), |e| {
        matches!(e, EngineEvent::Finished(_))
    });
    h.join.join().unwrap().unwrap()
}

#[test]
fn the_verifier_is_asked_once_per_group_and_duplicates_follow_their_representative() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("run.cfrun");
    let mut c = dedup_config(&store, inputs(dir.path()));
    let seen = recording(&mut c, 4);
    let stats = run_to_end(c);
    assert_eq!(stats.records_read, 7);
    // Groups: the CVE (two feeds), the near pair; three singles: five asks, two saved.
    assert_eq!((stats.groups, stats.duplicates), (2, 2), "{stats:?}");
    assert_eq!(stats.pending, 0);
    let asked = seen.lock().unwrap().texts.clone();
    assert_eq!(asked.len(), 5, "{asked:#?}");
    // The near pair's representative is the earlier record (same source, same length):
    // doc-2's text was never asked.
    assert!(asked.iter().all(|t| !t.contains("overlong")));

    // Stored decisions: each duplicate has its representative's verdict.
    let s = RunStore::open_read(&store).unwrap();
    let mut by_id = std::collections::HashMap::new();
    s.for_each_record(|r| {
        by_id.entry(r.id.clone()).or_insert_with(Vec::new).push(r);
        Ok(())
    })
    .unwrap();
    let verdict = |seq: i64| -> String {
        s.conn()
            .query_row("SELECT verdict FROM records WHERE seq = ?1", [seq], |r| {
                r.get(0)
            })
            .unwrap()
    };
    let cve = &by_id["CVE-2024-1000"];
    assert_eq!(verdict(cve[0].seq), verdict(cve[1].seq));
    assert_eq!(
        verdict(by_id["doc-1"][0].seq),
        verdict(by_id["doc-2"][0].seq)
    );
    assert!(
        by_id["doc-2"][0].p_yes.is_none(),
        "the duplicate was not asked"
    );
    // The metrics line reports it.
    let m = s.metrics_lines().unwrap();
    let last: serde_json::Value = serde_json::from_str(m.last().unwrap()).unwrap();
    assert_eq!(last["duplicates"], 2);
    assert_eq!(last["groups"], 2);

    // Export: one record per group in the verdict files, the copies in duplicates.
    let out = dir.path().join("out");
    let rep = cyberfilter::store::export::export(
        &store,
        &out,
        Default::default(),
        Default::default(),
        None,
    )
    .unwrap();
    assert_eq!((rep.records, rep.duplicates), (7, 2));
    assert_eq!(rep.kept + rep.removed + rep.pending, 5);
    let dups = std::fs::read_to_string(out.join("b.duplicates.jsonl")).unwrap();
    let ids: Vec<String> = dups
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(v["cyberfilter"]["duplicate_of"]["id"].is_string());
            v["cyberfilter"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids, vec!["CVE-2024-1000", "doc-2"]);
    let kept_or_removed: String = ["kept", "removed"]
        .iter()
        .map(|v| std::fs::read_to_string(out.join(format!("a.{v}.jsonl"))).unwrap_or_default())
        .collect();
    let doc1 = kept_or_removed
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["cyberfilter"]["id"] == "doc-1")
        .unwrap();
    let members = doc1["cyberfilter"]["group"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[1]["id"], "doc-2");
}

#[test]
fn a_label_applies_to_the_group_a_split_is_remembered_and_a_threshold_move_regroups() {
    let dir = tempfile::tempdir().unwrap();
    let (store, files) = (dir.path().join("run.cfrun"), inputs(dir.path()));
    let (mut h, seen) = live(&store, &files);

    let g = group_view(&h, "doc-2").expect("in a group");
    assert_eq!(g.members.len(), 2);
    assert!(g.members[0].representative && g.members[0].id == "doc-1");
    assert!(g.members.iter().any(|m| m.via == "near"), "{g:?}");
    assert!(g.members[1].similarity.unwrap() >= 0.7);
    let dup_only = query(
        &h,
        RecordFilter {
            duplicates: true,
            ..Default::default()
        },
        SortBy::Arrival,
        100,
    );
    assert_eq!(dup_only.total, 4, "two groups of two");

    // A label on the duplicate applies to its whole group.
    relabel(&h, "doc-2", Some(Label::Reject));
    for id in ["doc-1", "doc-2"] {
        let d = get_record(&h, id).unwrap();
        assert_eq!(d.row.label, Some(Label::Reject), "{id}");
        assert_eq!(d.row.verdict, Verdict::Removed, "{id}");
    }
    // One undo takes the whole group's label back, then label it again.
    h.commands.blocking_send(Command::UndoLabel).unwrap();
    for id in ["doc-1", "doc-2"] {
        assert_eq!(get_record(&h, id).unwrap().row.label, None, "{id}");
    }
    relabel(&h, "doc-1", Some(Label::Reject));
    assert_eq!(
        get_record(&h, "doc-2").unwrap().row.label,
        Some(Label::Reject)
    );

    // Split doc-2 off: it stands alone (its own label stays with it); the store keeps the mark.
    let doc2_seq = get_record(&h, "doc-2").unwrap().row.seq;
    h.commands
        .blocking_send(Command::SplitDuplicate {
            id: format!("#{doc2_seq}"),
            split: true,
        })
        .unwrap();
    let g = group_view(&h, "doc-2").unwrap();
    assert_eq!(g.members.len(), 1);
    assert_eq!(get_record(&h, "doc-2").unwrap().row.group, None);
    // Clearing the label of a record on its own again sends it to the verifier.
    relabel(&h, "doc-2", None);
    drained(&mut h);
    assert!(seen
        .lock()
        .unwrap()
        .texts
        .iter()
        .any(|t| t.contains("overlong")));

    // Above 1: only ids and equal texts group; the CVE stays one group.
    h.commands
        .blocking_send(Command::SetDedupThreshold(1.01))
        .unwrap();
    let rows = all_rows(&h);
    let grouped: Vec<&str> = rows
        .iter()
        .filter(|r| r.group.is_some())
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(grouped, vec!["CVE-2024-1000", "CVE-2024-1000"]);
    h.commands
        .blocking_send(Command::SetDedupThreshold(0.7))
        .unwrap();
    stop(h);

    // Resume: the split is remembered (doc-2 stays alone), nothing is read again.
    let mut c = dedup_config(&store, files);
    c.exit_when_done = false;
    let mut h = engine::start(c).unwrap();
    drained(&mut h);
    assert_eq!(group_view(&h, "doc-2").unwrap().members.len(), 1);
    assert_eq!(group_view(&h, "doc-1").unwrap().members.len(), 1);
    assert_eq!(group_view(&h, "CVE-2024-1000").unwrap().members.len(), 2);
    let d1 = get_record(&h, "doc-1").unwrap();
    assert_eq!(d1.row.label, Some(Label::Reject), "the group label stayed");
    let fin = stop(h);
    assert_eq!(fin.records_read, 0);
    assert_eq!((fin.groups, fin.duplicates), (1, 1));
}

/// A curator's label given to a duplicate copy: the export's copy line in
/// `{stem}.duplicates.jsonl` carries it, and so does the group's representative line in the
/// verdict files (the label applies to the group), on the live session's store and after a
/// resume.
#[test]
fn a_label_on_a_duplicate_copy_is_exported_on_the_copy_and_on_its_representative() {
    let (dir, store, files, h) = live_pair();
    relabel(&h, "doc-2", Some(Label::Keep));
    assert_eq!(
        get_record(&h, "doc-1").unwrap().row.label,
        Some(Label::Keep)
    );
    stop(h);

    let check = |out: &Path| {
        cyberfilter::store::export::export(
            &store,
            out,
            Default::default(),
            Default::default(),
            None,
        )
        .unwrap();
        let find = |file: &str, id: &str| -> serde_json::Value {
            std::fs::read_to_string(out.join(file))
                .unwrap_or_else(|e| panic!("{file}: {e}"))
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .find(|v| v["cyberfilter"]["id"] == id)
                .unwrap_or_else(|| panic!("{id} in {file}"))
        };
        let copy = find("b.duplicates.jsonl", "doc-2");
        assert_eq!(copy["cyberfilter"]["label"], "keep", "{copy}");
        assert_eq!(copy["cyberfilter"]["verdict"], "kept", "{copy}");
        assert_eq!(copy["cyberfilter"]["duplicate_of"]["id"], "doc-1", "{copy}");
        let rep = find("a.kept.jsonl", "doc-1");
        assert_eq!(rep["cyberfilter"]["label"], "keep", "{rep}");
        assert_eq!(rep["cyberfilter"]["decided_by"], "human", "{rep}");
        let members: Vec<&str> = rep["cyberfilter"]["group"]["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(members, vec!["doc-1", "doc-2"]);
    };
    check(&dir.path().join("out"));

    // Resumed (nothing to read), the same export.
    let c = dedup_config(&store, files);
    let fin = run_to_end(c);
    assert_eq!(fin.records_read, 0);
    check(&dir.path().join("out2"));
}

/// A label given to a copy on a stopped store (`cyberfilter relabel`, no engine to label the
/// rest of the group) still decides the group: the export and a resumed engine derive the
/// group's label from its members, the same way.
#[test]
fn a_label_given_to_a_copy_on_a_stopped_store_decides_its_group() {
    let (dir, store, files, h) = live_pair();
    stop(h);

    let changed = cyberfilter::cli::relabel::relabel(&store, "doc-2", Some(Label::Reject)).unwrap();
    assert_eq!(
        changed.len(),
        1,
        "only the copy is labelled: {}",
        changed.len()
    );
    // The printout can say it is a copy, and of which record.
    let rep = changed[0].copy_of.as_ref().expect("doc-2 is a copy");
    assert_eq!(rep.1, "doc-1");

    let out = dir.path().join("out");
    cyberfilter::store::export::export(&store, &out, Default::default(), Default::default(), None)
        .unwrap();
    let lines = |file: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(out.join(file))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let removed = lines("a.removed.jsonl");
    let rep_line = removed
        .iter()
        .find(|v| v["cyberfilter"]["id"] == "doc-1")
        .unwrap_or_else(|| panic!("doc-1 follows its copy's label into a.removed.jsonl"));
    assert_eq!(rep_line["cyberfilter"]["label"], serde_json::Value::Null);
    assert_eq!(rep_line["cyberfilter"]["decided_by"], "human", "{rep_line}");
    assert!(
        rep_line["cyberfilter"]["why"]
            .as_str()
            .unwrap()
            .contains("member of its group"),
        "{rep_line}"
    );
    assert!(lines("a.kept.jsonl")
        .iter()
        .all(|v| v["cyberfilter"]["id"] != "doc-1"));
    let copy = lines("b.duplicates.jsonl")
        .into_iter()
        .find(|v| v["cyberfilter"]["id"] == "doc-2")
        .unwrap();
    assert_eq!(copy["cyberfilter"]["label"], "reject", "{copy}");

    // A resumed engine agrees: the representative is removed by the group's label.
    let mut c = dedup_config(&store, files);
    c.exit_when_done = false;
    let mut h = engine::start(c).unwrap();
    drained(&mut h);
    let doc1 = get_record(&h, "doc-1").unwrap();
    assert_eq!(doc1.row.verdict, Verdict::Removed, "{:?}", doc1.row);
    assert_eq!(
        doc1.row.decided_by,
        Some(cyberfilter::decide::DecidedBy::Human),
        "{:?}",
        doc1.row
    );
    assert_eq!(doc1.row.label, None);
    // Taking the copy's label back hands the decision back to the verifier's answers.
    relabel(&h, "doc-2", None);
    let doc1 = get_record(&h, "doc-1").unwrap();
    assert_ne!(
        doc1.row.decided_by,
        Some(cyberfilter::decide::DecidedBy::Human)
    );
    stop(h);
}
