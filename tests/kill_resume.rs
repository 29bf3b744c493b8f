//! Kill the real `cyberfilter run` with SIGKILL at random points (while records are being
//! stored, while a verifier batch is in flight, at random times), resume each time, label
//! records between kills, and compare the final export with an uninterrupted run: identical,
//! no record lost or doubled, every label kept.
//!
//! The verifier is the binary's deterministic stand-in (`--verifier test-hash`, for tests
//! only): its P(yes) comes from the text hash and each batch sleeps, so batches are in flight
//! long enough to be killed and both runs get the same answers.

mod common;

use common::{cyberfilter_cmd, realdata};
use cyberfilter::ingest::{read_file, IngestOptions};
use cyberfilter::rules::RuleSet;
use cyberfilter::store::RunStore;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn inputs() -> Option<Vec<PathBuf>> {
    Some(vec![
        realdata("nvd/nvd-api2.0-page0-startIndex0-2000cves_reaphsoft.json")?,
        realdata("capec/capec_v3.9.xml")?,
    ])
}

/// Thresholds that send about 40% of the scored records to the verifier.
fn band(inputs: &[PathBuf]) -> (f32, f32) {
    let rules = RuleSet::default_rules();
    let mut scores = Vec::new();
    for f in inputs {
        read_file(f, &IngestOptions::default(), &mut |r| {
            if let Ok(r) = r {
                if r.scored {
                    scores.push(rules.score(&r.text).score);
                }
            }
            ControlFlow::Continue(())
        });
    }
    scores.sort_by(|a, b| a.total_cmp(b));
    let low = scores[scores.len() * 3 / 10];
    let high = scores[scores.len() * 7 / 10];
    assert!(low < high, "need a verify band: {low} {high}");
    (low, high)
}

/// Records in the inputs (what a finished run has stored).
fn record_count(inputs: &[PathBuf]) -> u64 {
    let mut n = 0;
    for f in inputs {
        read_file(f, &IngestOptions::default(), &mut |r| {
            n += u64::from(r.is_ok());
            ControlFlow::Continue(())
        });
    }
    n
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

/// The data dir (and so the shared LLM answer cache) of a store: one per store, so the
/// reference run asks the verifier itself and a restarted killed run starts cold.
fn data_dir(store: &Path) -> PathBuf {
    store.with_extension("data")
}

fn run_cmd(store: &Path, inputs: &[PathBuf], band: (f32, f32)) -> Command {
    let mut c = cyberfilter_cmd();
    c.arg("run")
        .args(inputs)
        .arg("--store")
        .arg(store)
        .args(["--verifier", "test-hash", "--progress", "json"])
        .args(["--stats-interval-ms", "50", "--batch-wait-ms", "20"])
        // Small, slow batches: the verifier's wall time (not the machine's speed) sets how
        // long a run lasts, so twelve kills fit before the work runs out.
        .args(["--batch-size", "8"])
        .arg("--high")
        .arg(band.1.to_string())
        .arg("--low")
        .arg(band.0.to_string())
        .env("CYBERFILTER_TEST_VERIFIER_DELAY_MS", "40")
        .env("CYBERFILTER_DATA_DIR", data_dir(store));
    c
}

fn relabel(store: &Path, id: &str, label: &str) {
    let st = cyberfilter_cmd()
        .args(["relabel"])
        .arg(store)
        .args([id, label])
        .status()
        .unwrap();
    assert!(st.success(), "relabel {id} {label}");
}

fn export(store: &Path, out: &Path) -> BTreeMap<String, String> {
    let st = cyberfilter_cmd()
        .arg("export")
        .arg(store)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(out).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        // summary.json and metrics.jsonl carry times; the record files must be identical.
        if name.ends_with(".kept.jsonl")
            || name.ends_with(".removed.jsonl")
            || name.ends_with(".pending.jsonl")
        {
            let text = std::fs::read_to_string(&p).unwrap();
            files.insert(
                name,
                text.lines()
                    .map(common::without_llm_answer_if_labelled)
                    .collect(),
            );
        }
    }
    files
}

/// (records, distinct (file, index)) in a store.
fn counts(store: &Path) -> (u64, u64) {
    let s = RunStore::open_read(store).unwrap();
    s.conn()
        .query_row(
            "SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT file_id, idx FROM records))
             FROM records",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )
        .unwrap()
}

/// A record of the NVD page that is a copy in its duplicate group (see the last check).
const COPY_ID: &str = "CVE-1999-0616";

#[derive(Debug, Clone, Copy, PartialEq)]
enum When {
    Random,
    VerifierBatch,
    Inserting,
}

#[test]
fn sigkill_at_random_points_then_resume_equals_an_uninterrupted_run() {
    let Some(inputs) = inputs() else { return };
    let band = band(&inputs);
    let total = record_count(&inputs);
    let dir = tempfile::tempdir().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("seed {seed}, band {band:?}");
    let mut rng = Lcg(seed);

    // The interrupted run.
    let store = dir.path().join("killed.cfrun");
    let mut labels: Vec<(String, &str)> = Vec::new();
    let mut kills = Vec::new();
    let mut finished_early = 0;
    let started = Instant::now();
    while kills.len() < 12 {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "test too slow"
        );
        let mut when = match kills.len() % 3 {
            0 => When::Inserting,
            1 => When::VerifierBatch,
            _ => When::Random,
        };
        // The two files are read and stored in well under 100 ms, so after the first kills
        // nothing may be left to insert: a run that can only verify is killed at random.
        if when == When::Inserting && store.exists() && counts(&store).0 >= total {
            when = When::Random;
        }
        let mut child = run_cmd(&store, &inputs, band)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + Duration::from_millis(100 + rng.next(700));
        let mut saw = false;
        let mut last_records = None;
        loop {
            if when == When::Random && Instant::now() >= deadline {
                saw = true;
                break;
            }
            let Some(Ok(line)) = lines.next() else { break };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["event"] != "progress" {
                continue;
            }
            let records = v["records_read"].as_u64().unwrap_or(0);
            let moved = last_records.is_some_and(|l| records > l);
            last_records = Some(records);
            let hit = match when {
                When::Inserting => moved,
                When::VerifierBatch => {
                    v["verifier_queue"].as_u64().unwrap_or(0) > 0
                        && v["llm_calls"].as_u64().unwrap_or(0) > 0
                }
                When::Random => false,
            };
            if hit {
                saw = true;
                // A little further into the transaction or the batch.
                std::thread::sleep(Duration::from_millis(rng.next(30)));
                break;
            }
        }
        // SIGKILL: no handler, no flush.
        let _ = child.kill();
        let status = child.wait().unwrap();
        drop(lines);
        if status.success() {
            // The run ended before the kill point: start a fresh store would hide nothing,
            // so count it and go on (the loop needs kills, not finishes).
            finished_early += 1;
            assert!(finished_early < 30, "runs finish before they can be killed");
            std::fs::remove_file(&store).ok();
            std::fs::remove_file(store.with_extension("cfrun-wal")).ok();
            std::fs::remove_file(store.with_extension("cfrun-shm")).ok();
            std::fs::remove_dir_all(data_dir(&store)).ok();
            labels.clear();
            kills.clear();
            continue;
        }
        if saw {
            kills.push(when);
        }
        if !store.exists() {
            continue;
        }
        let (n, distinct) = counts(&store);
        assert_eq!(
            n,
            distinct,
            "a record was stored twice after kill {}",
            kills.len()
        );
        // Label a stored record now and then; the label must survive the kills that follow.
        if n > 0 && kills.len() % 2 == 0 {
            let s = RunStore::open_read(&store).unwrap();
            let id: String = s
                .conn()
                .query_row(
                    "SELECT id FROM records ORDER BY seq LIMIT 1 OFFSET ?1",
                    [rng.next(n) as i64],
                    |r| r.get(0),
                )
                .unwrap();
            drop(s);
            let label = if rng.next(2) == 0 { "keep" } else { "reject" };
            relabel(&store, &id, label);
            labels.push((id, label));
        }
    }
    // Finish the interrupted run.
    let out = run_cmd(&store, &inputs, band)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(out.code(), Some(0));
    assert!(kills.contains(&When::VerifierBatch) && kills.contains(&When::Inserting));
    // One label always lands on a copy (a rejected CVE whose boilerplate text groups it with
    // twenty others), so the check below covers a label on a group member every time.
    relabel(&store, COPY_ID, "reject");
    labels.push((COPY_ID.to_string(), "reject"));
    eprintln!("kills: {kills:?}, labels: {}", labels.len());

    // The uninterrupted run, with the same labels applied in the same order.
    let reference = dir.path().join("reference.cfrun");
    let out = run_cmd(&reference, &inputs, band)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(out.code(), Some(0));
    for (id, label) in &labels {
        relabel(&reference, id, label);
    }

    let a = export(&store, &dir.path().join("out-killed"));
    let b = export(&reference, &dir.path().join("out-reference"));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    let total: usize = b.values().map(|t| t.lines().count()).sum();
    assert!(total > 2000, "{total} records exported");
    for (name, text) in &b {
        if a[name] != *text {
            let first = a[name]
                .lines()
                .zip(text.lines())
                .find(|(x, y)| x != y)
                .map(|(x, y)| format!("killed:    {x}\nreference: {y}"));
            panic!(
                "{name} differs after kills and resumes ({} vs {} lines); first difference:\n{}",
                a[name].lines().count(),
                text.lines().count(),
                first.unwrap_or_else(|| "(one is a prefix of the other)".into())
            );
        }
    }
    // Nothing left pending: everything waiting for the verifier at a kill was asked again.
    assert!(b
        .iter()
        .filter(|(n, _)| n.ends_with(".pending.jsonl"))
        .all(|(_, t)| t.is_empty()));
    let (n, distinct) = counts(&store);
    assert_eq!((n, distinct), counts(&reference));
    // Every label is in the export of the interrupted run, on the labelled record's own line
    // (a copy's line is in `.duplicates.jsonl`), and a label on a copy decides its group: the
    // line that stands for the group says a curator decided it.
    let mut lines_by_id: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut groups_by_member: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for e in std::fs::read_dir(dir.path().join("out-killed")).unwrap() {
        let p = e.unwrap().path();
        if !p.to_string_lossy().ends_with(".jsonl")
            || p.to_string_lossy().ends_with("metrics.jsonl")
        {
            continue;
        }
        for line in std::fs::read_to_string(&p).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let cf = &v["cyberfilter"];
            for m in cf["group"]["members"].as_array().into_iter().flatten() {
                groups_by_member.insert(m["id"].as_str().unwrap().to_string(), v.clone());
            }
            lines_by_id.insert(cf["id"].as_str().unwrap().to_string(), v);
        }
    }
    for (id, label) in &labels {
        let last = labels.iter().rev().find(|(i, _)| i == id).unwrap().1;
        let v = lines_by_id
            .get(id)
            .unwrap_or_else(|| panic!("{id} exported"));
        assert_eq!(v["cyberfilter"]["label"], last, "label of {id} ({label})");
        assert!(
            id != COPY_ID || groups_by_member.contains_key(id),
            "{id} is a copy"
        );
        if let Some(rep) = groups_by_member.get(id) {
            assert_eq!(
                rep["cyberfilter"]["decided_by"], "human",
                "the group of the copy {id} is decided by its label: {rep}"
            );
        }
    }
}
