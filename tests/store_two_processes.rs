//! Two processes on one store, all real binaries: a headless `cyberfilter run` writes the
//! store (slow verifier batches keep it running) while `cyberfilter relabel` and
//! `cyberfilter export` run on the same file again and again (WAL, busy timeouts). No label
//! lost or doubled, every export consistent with itself, the running engine picks the outside
//! labels up (its `labelled` count), and a second `run` on the store is refused (exit 75).
//! Loss accounting: records in = kept + removed + pending, labels in = labels out.

mod common;

use common::{cyberfilter_cmd, export_lines, nvd_copies, stderr, test_hash_run};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn run_cmd(store: &Path, input: &Path) -> Command {
    let mut c = test_hash_run(store, input, "json");
    c.args([
        "--stats-interval-ms",
        "100",
        "--batch-size",
        "8",
        "--batch-wait-ms",
        "20",
    ])
    .env("CYBERFILTER_TEST_VERIFIER_DELAY_MS", "150");
    c
}

/// Every exported record line (kept, removed, pending files) and summary.json.
fn export(store: &Path, out: &Path) -> (Vec<serde_json::Value>, serde_json::Value) {
    export_lines(store, out)
}

fn labels_of(lines: &[serde_json::Value]) -> BTreeMap<String, String> {
    lines
        .iter()
        .filter(|v| !v["cyberfilter"]["label"].is_null())
        .map(|v| {
            (
                v["cyberfilter"]["id"].as_str().unwrap().to_string(),
                v["cyberfilter"]["label"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn relabel_and_export_while_a_run_writes_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (input, n_in) = nvd_copies(dir.path(), 20);
    let store = dir.path().join("shared.cfrun");

    let mut child = run_cmd(&store, &input)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<serde_json::Value>();
    let err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    // Wait for stored records.
    let start = Instant::now();
    let mut last = serde_json::Value::Null;
    while last["records_read"].as_u64().unwrap_or(0) < 200 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run never got going"
        );
        last = rx.recv_timeout(Duration::from_secs(60)).expect("progress");
    }
    // A second run on the same store is refused while this one holds it.
    let second = run_cmd(&store, &input).output().unwrap();
    assert_eq!(second.status.code(), Some(75), "{}", stderr(&second));
    assert!(stderr(&second).contains("in use"), "{}", stderr(&second));

    // Relabel and export while the run writes.
    let mut labels: Vec<(String, &str)> = Vec::new();
    let mut exports = 0;
    let mut finished = None;
    let mut round = 0;
    while labels.len() < 12 {
        round += 1;
        let ids: Vec<String> = {
            let c = rusqlite::Connection::open_with_flags(
                &store,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .unwrap();
            c.busy_timeout(Duration::from_secs(10)).unwrap();
            let mut st = c
                .prepare("SELECT id FROM records WHERE label IS NULL ORDER BY seq DESC LIMIT 1")
                .unwrap();
            st.query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let id = ids[0].clone();
        let label = if round % 2 == 0 { "keep" } else { "reject" };
        let o = cyberfilter_cmd()
            .arg("relabel")
            .arg(&store)
            .args([id.as_str(), label])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "relabel {id} during the run: {}",
            stderr(&o)
        );
        labels.push((id, label));
        if round % 3 == 0 {
            exports += 1;
            let (lines, summary) = export(&store, &dir.path().join(format!("out-{round}")));
            // Consistent with itself: one line per stored record, no record twice, its
            // summary counts the same, every label committed before it is in it.
            let keys: HashSet<(String, u64)> = lines
                .iter()
                .map(|v| {
                    (
                        v["cyberfilter"]["id"].to_string(),
                        v["cyberfilter"]["index"].as_u64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(keys.len(), lines.len(), "a record exported twice");
            let total = summary["records"]
                .as_u64()
                .or_else(|| summary["total"].as_u64());
            if let Some(t) = total {
                assert_eq!(t as usize, lines.len(), "summary vs lines: {summary}");
            }
            let got = labels_of(&lines);
            for (id, l) in &labels {
                assert_eq!(
                    got.get(id).map(String::as_str),
                    Some(*l),
                    "label of {id} exported"
                );
            }
        }
        // Progress of the run meanwhile.
        while let Ok(v) = rx.try_recv() {
            if v["event"] == "finished" {
                finished = Some(v.clone());
            }
            last = v;
        }
    }
    assert!(exports >= 3);
    assert!(
        finished.is_none() && child.try_wait().unwrap().is_none(),
        "the run ended before the relabels and exports did; nothing ran side by side"
    );
    // The run goes on to the end and has seen every outside label.
    let status = child.wait().unwrap();
    reader.join().unwrap();
    for v in rx.try_iter() {
        if v["event"] == "finished" {
            finished = Some(v.clone());
        }
        last = v;
    }
    assert!(status.success(), "the run failed; last event {last}");
    let finished = finished.expect("finished event");
    assert_eq!(
        finished["labelled"].as_u64(),
        Some(labels.len() as u64),
        "{finished}"
    );

    // Final accounting.
    let (lines, _) = export(&store, &dir.path().join("out-final"));
    assert_eq!(lines.len(), n_in, "records in = kept + removed + pending");
    let got = labels_of(&lines);
    assert_eq!(got.len(), labels.len(), "labels in = labels out");
    for (id, l) in &labels {
        assert_eq!(got.get(id).map(String::as_str), Some(*l));
        let line = lines
            .iter()
            .find(|v| v["cyberfilter"]["id"] == id.as_str())
            .unwrap();
        let verdict = line["cyberfilter"]["verdict"].as_str().unwrap_or_default();
        assert_eq!(
            verdict,
            if *l == "keep" { "kept" } else { "removed" },
            "{line}"
        );
    }
    let c = rusqlite::Connection::open(&store).unwrap();
    let logged: i64 = c
        .query_row("SELECT count(*) FROM label_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        logged as usize,
        labels.len(),
        "one label-log entry per relabel, none doubled"
    );
}
