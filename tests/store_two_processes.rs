//! Two processes on one store, all real binaries: a headless `cyberfilter run` writes the
//! store (slow verifier batches keep it running) while `cyberfilter relabel` and
//! `cyberfilter export` run on the same file again and again (WAL, busy timeouts). No label
//! lost or doubled, every export consistent with itself, the running engine picks the outside
//! labels up (its `labelled` count), and a second `run` on the store is refused (exit 75).
//! And the real `cyberfilter-tui` in a terminal (tmux) with `relabel` and `export` beside it:
//! its screen shows the outside labels (the engine reads the store's label log once a second),
//! a label given in the TUI and one given outside to the same record end as the later one.
//! Loss accounting: records in = kept + removed + pending, labels in = labels out.

mod common;

use common::{cyberfilter_cmd, export_lines, nvd_copies, root, stderr, test_hash_run};
use common::{tmux, tmux_capture, tmux_or_skip, TmuxSession, CYBERFILTER_TUI};
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

/// Distinct records (id, index) among exported lines.
fn distinct(lines: &[serde_json::Value]) -> usize {
    lines
        .iter()
        .map(|v| {
            (
                v["cyberfilter"]["id"].to_string(),
                v["cyberfilter"]["index"].as_u64().unwrap(),
            )
        })
        .collect::<HashSet<_>>()
        .len()
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
        relabel(&store, &id, label);
        labels.push((id, label));
        if round % 3 == 0 {
            exports += 1;
            let (lines, summary) = export(&store, &dir.path().join(format!("out-{round}")));
            // Consistent with itself: one line per stored record, no record twice, its
            // summary counts the same, every label committed before it is in it.
            assert_eq!(distinct(&lines), lines.len(), "a record exported twice");
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

/// The screen of `session` once `ok` holds for it, or `None` after `timeout`.
fn screen_when(session: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> Option<String> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        let screen = tmux_capture(session);
        if ok(&screen) {
            return Some(screen);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// The table row of `id` on `screen` shows `verdict  human label`.
fn row_shows(screen: &str, id: &str, verdict: &str, label: &str) -> bool {
    screen.lines().any(|l| {
        let w: Vec<&str> = l.split(|c: char| c == '│' || c.is_whitespace()).collect();
        let w: Vec<&str> = w.into_iter().filter(|w| !w.is_empty()).collect();
        w.contains(&id) && w.windows(3).any(|x| x == [verdict, "human", label])
    })
}

fn relabel(store: &Path, id: &str, label: &str) {
    let o = cyberfilter_cmd()
        .arg("relabel")
        .arg(store)
        .args([id, label])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "relabel {id} beside another process: {}",
        stderr(&o)
    );
}

#[test]
fn the_tui_shows_relabels_from_another_process_and_exports_stay_consistent() {
    if !tmux_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let store = state.join("tui.cfrun");
    let session = TmuxSession(format!("cf-two-{}", std::process::id()));
    // The rules decide the NVD sample at once (no verifier); every record on its own.
    let cmd = format!(
        "cd {dir} && XDG_STATE_HOME={st} XDG_CONFIG_HOME={st} XDG_DATA_HOME={st} {bin} --store {store} --verifier none --dedup off sample_data/nvd; echo EXIT=$?",
        dir = root().display(),
        st = state.display(),
        bin = CYBERFILTER_TUI,
        store = store.display(),
    );
    common::tmux_new_session(&session.0, &format!("{cmd}; sleep 30"));
    let s = &session.0;
    screen_when(s, Duration::from_secs(30), |sc| {
        sc.contains("all input read")
    })
    .unwrap_or_else(|| panic!("the TUI never drained: {}", tmux_capture(s)));
    let ids = common::first_ids(&store, 6);
    let n_in = 80;

    // The TUI labels the first record (arrival order, top row) reject.
    tmux(&["send-keys", "-t", s, "g"]);
    std::thread::sleep(Duration::from_millis(200));
    tmux(&["send-keys", "-t", s, "x"]);
    screen_when(s, Duration::from_secs(10), |sc| {
        row_shows(sc, &ids[0], "removed", "reject")
    })
    .unwrap_or_else(|| panic!("the TUI's own label: {}", tmux_capture(s)));

    // Beside it: four records relabelled outside, one of them keep, and the TUI's own record
    // overruled (keep); an export in between.
    let t = Instant::now();
    let outside = [
        (&ids[1], "reject"),
        (&ids[2], "reject"),
        (&ids[3], "keep"),
        (&ids[4], "reject"),
        (&ids[0], "keep"),
    ];
    for (i, (id, label)) in outside.iter().enumerate() {
        relabel(&store, id, label);
        if i == 2 {
            let (lines, _) = export_lines(&store, &dir.path().join("mid"));
            assert_eq!(
                lines.len(),
                n_in,
                "an export beside the TUI has every record"
            );
            let got = labels_of(&lines);
            for (id, l) in &outside[..3] {
                assert_eq!(got.get(*id).map(String::as_str), Some(*l), "{id}");
            }
        }
    }
    // The TUI's screen shows every outside label (it polls the label log once a second).
    let want = |sc: &str| {
        outside.iter().all(|(id, l)| {
            let verdict = if *l == "keep" { "kept" } else { "removed" };
            row_shows(sc, id, verdict, l)
        }) && sc.contains("labels           5")
    };
    let screen = screen_when(s, Duration::from_secs(10), want)
        .unwrap_or_else(|| panic!("outside labels not shown: {}", tmux_capture(s)));
    eprintln!(
        "outside labels on the TUI's screen {:.1} s after the first relabel",
        t.elapsed().as_secs_f64()
    );
    assert!(
        !row_shows(&screen, &ids[5], "removed", "reject"),
        "{screen}"
    );

    // The export beside the running TUI: consistent, every label once.
    let (lines, summary) = export_lines(&store, &dir.path().join("beside"));
    assert_eq!(lines.len(), n_in, "records in = kept + removed + pending");
    assert_eq!(distinct(&lines), n_in, "a record exported twice");
    let got = labels_of(&lines);
    assert_eq!(got.len(), 5, "labels in = labels out: {got:?}");
    for (id, l) in &outside {
        assert_eq!(got.get(*id).map(String::as_str), Some(*l), "{id}");
    }
    let kept_removed = |v: &serde_json::Value| {
        v["kept"].as_u64().unwrap_or(0) + v["removed"].as_u64().unwrap_or(0)
    };
    if summary["kept"].is_u64() {
        assert_eq!(
            kept_removed(&summary) + summary["pending"].as_u64().unwrap_or(0),
            n_in as u64,
            "{summary}"
        );
    }

    // q: the TUI ends cleanly, its session label counted once.
    tmux(&["send-keys", "-t", s, "q"]);
    let after = screen_when(s, Duration::from_secs(30), |sc| sc.contains("EXIT="))
        .unwrap_or_else(|| panic!("no exit on q: {}", tmux_capture(s)));
    assert!(after.contains("EXIT=0"), "{after}");
    let c = rusqlite::Connection::open(&store).unwrap();
    let logged: Vec<(String, Option<String>)> = c
        .prepare("SELECT record_id, new_label FROM label_log ORDER BY log_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // One entry per label given (the TUI's, then the five outside), none lost or doubled.
    assert_eq!(logged.len(), 6, "{logged:?}");
    assert_eq!(logged[0].0, ids[0]);
    let (final_lines, _) = export_lines(&store, &dir.path().join("final"));
    assert_eq!(
        labels_of(&final_lines),
        got,
        "the TUI's exit changed no label"
    );
}
