//! Export formats and the store listing, through the real binary on a real NVD file; Ctrl-C
//! (SIGINT) stops cleanly with exit code 130 and the run resumes.

mod common;

use common::{cyberfilter_cmd, json, realdata, stderr, stdout};
use cyberfilter::store::RunStore;
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

fn run(store: &Path, input: &Path, extra: &[&str]) -> std::process::Output {
    cyberfilter_cmd()
        .arg("run")
        .arg(input)
        .arg("--store")
        .arg(store)
        .args(["--verifier", "test-hash", "--progress", "json"])
        .args(["--high", "12", "--low", "6"])
        .args(extra)
        .env("CYBERFILTER_DATA_DIR", store.parent().unwrap())
        .output()
        .unwrap()
}

fn export(store: &Path, out: &Path, extra: &[&str]) -> Value {
    let o = cyberfilter_cmd()
        .arg("export")
        .arg(store)
        .arg("--out")
        .arg(out)
        .arg("--json")
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    json(&o)
}

#[test]
fn exports_in_every_layout_carry_originals_and_decisions() {
    let Some(input) = realdata("nvd/nvd-api2.0-search-47cves_nvdlib.json") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("runs").join("s.cfrun");
    let o = run(&store, &input, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let summary = json(&o);
    assert_eq!(summary["records_read"], 47);
    // Progress went to stderr as JSON lines.
    assert!(stderr(&o)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|v| v["event"] == "finished" && v["records_read"] == 47));

    // Per input, JSON lines.
    let out = dir.path().join("jsonl");
    let rep = export(&store, &out, &[]);
    assert_eq!(rep["records"], 47);
    let stem = "nvd-api2.0-search-47cves_nvdlib";
    let mut n = 0;
    let mut ids = Vec::new();
    // This page holds a run of Cisco advisories sharing one description: grouping (on by
    // default) writes one of them to kept/removed and the others, near-duplicates, to
    // `{stem}.duplicates.jsonl`, each naming the record it duplicates.
    for v in ["kept", "removed", "pending", "duplicates"] {
        // Only verdicts with records get a file.
        let path = out.join(format!("{stem}.{v}.jsonl"));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(path.exists(), !text.is_empty(), "no empty files: {path:?}");
        for line in text.lines() {
            let rec: Value = serde_json::from_str(line).unwrap();
            let cf = &rec["cyberfilter"];
            if v == "duplicates" {
                assert!(cf["duplicate_of"]["id"].is_string(), "{cf}");
            } else {
                assert_eq!(cf["verdict"], v);
            }
            // The original NVD item, untouched, with the decision beside it.
            assert_eq!(rec["cve"]["id"], cf["id"]);
            assert!(cf["score"].is_number() && cf["tier"].is_string());
            if cf["tier"] == "verify" {
                assert!(cf["p_yes"].is_number());
                assert_eq!(cf["decided_by"], "llm");
            }
            ids.push(cf["id"].as_str().unwrap().to_string());
            n += 1;
        }
    }
    assert_eq!(n, 47);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["records"], 47);
    assert!(summary["duplicates"].as_u64().unwrap() > 0);
    assert_eq!(
        summary["kept"].as_u64().unwrap()
            + summary["removed"].as_u64().unwrap()
            + summary["duplicates"].as_u64().unwrap(),
        47
    );
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert!(metrics.lines().count() >= 1);
    for l in metrics.lines() {
        let m: Value = serde_json::from_str(l).unwrap();
        assert!(m["rss_bytes"].as_u64().unwrap() > 0);
        assert!(m.get("batch_fill").is_some() && m.get("verifier_ms_total").is_some());
    }

    // A label shows in the next export.
    let st = cyberfilter_cmd()
        .arg("relabel")
        .arg(&store)
        .args([ids[0].as_str(), "reject"])
        .status()
        .unwrap();
    assert!(st.success());
    let st = cyberfilter_cmd()
        .arg("relabel")
        .arg(&store)
        .args(["CVE-0000-NOPE", "keep"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(1), "unknown id");

    // Per input, JSON arrays: the same records.
    let out2 = dir.path().join("json");
    export(&store, &out2, &["--format", "json"]);
    let arr: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(out2.join(format!("{stem}.removed.json"))).unwrap(),
    )
    .unwrap();
    let labelled = arr
        .iter()
        .find(|r| r["cyberfilter"]["id"] == ids[0].as_str())
        .expect("labelled record is removed");
    assert_eq!(labelled["cyberfilter"]["label"], "reject");
    assert_eq!(labelled["cyberfilter"]["decided_by"], "human");

    // Upstream layout: {stem}_filtered_{ts}.json / {stem}_removed_{ts}.json arrays.
    let out3 = dir.path().join("upstream");
    export(&store, &out3, &["--layout", "upstream"]);
    let names: Vec<String> = std::fs::read_dir(&out3)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let filtered = names
        .iter()
        .find(|n| n.starts_with(&format!("{stem}_filtered_")))
        .expect("filtered file");
    let ts = filtered
        .trim_start_matches(&format!("{stem}_filtered_"))
        .trim_end_matches(".json");
    assert_eq!(ts.len(), 15, "YYYYmmdd_HHMMSS: {ts}");
    assert_eq!(&ts[8..9], "_");
    let kept: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(out3.join(filtered)).unwrap()).unwrap();
    assert!(!kept.is_empty());
    for r in &kept {
        assert_eq!(r["is_relevant"], true);
        assert_eq!(r["_source_file"], "nvd-api2.0-search-47cves_nvdlib.json");
        assert!(r["cve"].is_object());
    }
    let removed = names
        .iter()
        .find(|n| n.starts_with(&format!("{stem}_removed_")))
        .expect("removed file");
    let removed: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(out3.join(removed)).unwrap()).unwrap();
    assert!(removed
        .iter()
        .all(|r| r["filtered_reason"].as_str().is_some_and(|s| !s.is_empty())));
    let dups = names
        .iter()
        .find(|n| n.starts_with(&format!("{stem}_duplicates_")))
        .expect("duplicates file");
    let dups: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(out3.join(dups)).unwrap()).unwrap();
    assert_eq!(kept.len() + removed.len() + dups.len(), 47);

    // `--dedup off`: every record by its own verdict, no duplicates file (today's output).
    let out4 = dir.path().join("nodedup");
    let r = export(&store, &out4, &["--dedup", "off"]);
    assert_eq!(r["duplicates"], 0);
    assert_eq!(
        r["kept"].as_u64().unwrap()
            + r["removed"].as_u64().unwrap()
            + r["pending"].as_u64().unwrap(),
        47
    );
    assert!(!out4.join(format!("{stem}.duplicates.jsonl")).exists());

    // Exporting again into the same folder: refused without --force (73); with it, the
    // earlier timestamped arrays are replaced rather than piled up.
    let again = |extra: &[&str]| {
        cyberfilter_cmd()
            .arg("export")
            .arg(&store)
            .arg("--out")
            .arg(&out3)
            .args(["--layout", "upstream"])
            .args(extra)
            .output()
            .unwrap()
    };
    assert_eq!(again(&[]).status.code(), Some(73));
    std::thread::sleep(std::time::Duration::from_millis(1100)); // a new timestamp
    let o = again(&["--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("exported 47 records"));
    let filtered_files = std::fs::read_dir(&out3)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().contains("_filtered_")
        })
        .count();
    assert_eq!(filtered_files, 1, "replaced, not piled up");
    // --format means nothing to the upstream layout: refused, not ignored.
    assert_eq!(again(&["--format", "json"]).status.code(), Some(2));

    // --merge: one file per verdict across inputs, each record saying why.
    let out4 = dir.path().join("merged");
    export(&store, &out4, &["--merge"]);
    let mut merged = 0;
    for v in ["kept", "removed", "duplicates"] {
        let text = std::fs::read_to_string(out4.join(format!("all.{v}.jsonl"))).unwrap();
        for line in text.lines() {
            let rec: Value = serde_json::from_str(line).unwrap();
            assert!(rec["cyberfilter"]["why"]
                .as_str()
                .is_some_and(|w| !w.is_empty()));
            merged += 1;
        }
    }
    assert_eq!(merged, 47);
    assert!(!out4.join(format!("{stem}.kept.jsonl")).exists());

    // An output folder that cannot be made is an I/O error (74), not a failure (1).
    let o = cyberfilter_cmd()
        .arg("export")
        .arg(&store)
        .args(["--out", "/proc/cyberfilter-export-test"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(74), "{}", stderr(&o));

    // `runs` lists the store with its state.
    let o = cyberfilter_cmd()
        .args(["runs", "--json", "--dir"])
        .arg(store.parent().unwrap())
        .output()
        .unwrap();
    let line: Value = json(&o);
    assert_eq!(line["state"], "finished");
    assert_eq!(line["summary"]["records"], 47);
    assert_eq!(line["summary"]["labelled"], 1);
}

#[test]
fn bad_configuration_and_unreachable_verifier_have_their_own_exit_codes() {
    let Some(input) = realdata("nvd/nvd-api2.0-search-47cves_nvdlib.json") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.cfrun");
    assert_eq!(run(&store, &input, &[]).status.code(), Some(0));
    // The same store with another input: refused as bad configuration.
    let other = realdata("nvd/nvd-api2.0-single-CVE-2017-7542_nvdlib.json").unwrap();
    assert_eq!(run(&store, &other, &[]).status.code(), Some(3));
    let o = cyberfilter_cmd()
        .arg("run")
        .arg(&input)
        .arg("--store")
        .arg(dir.path().join("t.cfrun"))
        .args(["--verifier", "http", "--progress", "none"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(
        cyberfilter_cmd()
            .args(["run", "--bogus"])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .code(),
        Some(2)
    );
}

#[test]
fn ctrl_c_stops_cleanly_with_130_and_the_run_resumes() {
    let Some(input) = realdata("nvd/nvd-api2.0-page0-startIndex0-2000cves_reaphsoft.json") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.cfrun");
    let mut child = cyberfilter_cmd()
        .arg("run")
        .arg(&input)
        .arg("--store")
        .arg(&store)
        .args(["--verifier", "test-hash", "--progress", "json"])
        .args(["--high", "12", "--low", "6", "--stats-interval-ms", "50"])
        // A slow verifier keeps the run going long enough to interrupt it.
        .env("CYBERFILTER_TEST_VERIFIER_DELAY_MS", "200")
        // Its own data dir: the shared LLM answer cache of an earlier run would answer
        // everything at once and the run would end before the signal.
        .env("CYBERFILTER_DATA_DIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    while let Some(Ok(l)) = lines.next() {
        if l.contains("\"llm_calls\":") && !l.contains("\"llm_calls\":0") {
            break;
        }
    }
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    {
        let s = RunStore::open_read(&store).unwrap();
        assert!(matches!(
            s.state().unwrap(),
            Some(cyberfilter::store::RunState::Stopped)
                | Some(cyberfilter::store::RunState::Finished)
        ));
        assert!(s.summary().unwrap().records > 0);
    }
    let o = cyberfilter_cmd()
        .arg("run")
        .arg(&input)
        .arg("--store")
        .arg(&store)
        .args(["--verifier", "test-hash", "--progress", "none"])
        .args(["--high", "12", "--low", "6"])
        .env("CYBERFILTER_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    std::thread::sleep(Duration::from_millis(10));
    let s = RunStore::open_read(&store).unwrap();
    let sum = s.summary().unwrap();
    assert_eq!(sum.records, 2000);
    assert_eq!(sum.pending, 0);
}
