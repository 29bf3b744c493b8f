//! Support every integration test shares (each test file says `mod common;`): where the crate
//! and `../shared/realdata` are, the one skip note, the `cyberfilter` binary run to the end,
//! the default model (SmolLM2) or a skip, `RecordRow` fixtures, and an NVD page of any size
//! made from a real one. Helpers of one area stay in `engine_support`, `ingest_support`,
//! `mlx_support` and `tui_support`.
//!
//! Every test binary compiles this file and each uses only part of it.
#![allow(dead_code)]

use cyberfilter::decide::{DecidedBy, Verdict};
use cyberfilter::engine::types::RecordRow;
use cyberfilter::rules::Tier;
use cyberfilter::verify::mlx::default_model_path;
use cyberfilter::SourceKind;
use serde_json::Value;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// ---------------------------------------------------------------- places and skips

/// The crate's folder (`CARGO_MANIFEST_DIR`).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The one way a test says it skips: `SKIPPED: WHY` on stderr (seen with `--nocapture`).
pub fn skip(why: impl Display) {
    eprintln!("SKIPPED: {why}");
}

/// `path`, or `None` with the skip note naming it and `hint` when it does not exist.
pub fn existing_or_skip(path: PathBuf, hint: &str) -> Option<PathBuf> {
    if path.exists() {
        Some(path)
    } else {
        skip(format_args!("{} is missing; {hint}", path.display()));
        None
    }
}

/// `../shared/realdata/REL` beside the crate (the folder itself for `""`), there or not.
pub fn realdata_path(rel: &str) -> PathBuf {
    let dir = root().join("../shared/realdata");
    if rel.is_empty() {
        dir
    } else {
        dir.join(rel)
    }
}

/// [`realdata_path`], or `None` with the skip note when it is missing (the real feeds are not
/// in the repository, so tests on them skip where they are absent).
pub fn realdata(rel: &str) -> Option<PathBuf> {
    existing_or_skip(realdata_path(rel), "this test reads ../shared/realdata")
}

/// The default model (SmolLM2-135M-Instruct, `default_model_path()`), or `None` with the skip
/// note when it is not installed.
pub fn smollm2_or_skip() -> Option<PathBuf> {
    existing_or_skip(
        default_model_path(),
        "run ./scripts/setup.sh to fetch SmolLM2",
    )
}

/// `.venv`'s python (Python mlx_lm, made by scripts/setup.sh), or `None` with the skip note.
pub fn venv_python_or_skip() -> Option<PathBuf> {
    existing_or_skip(
        root().join(".venv/bin/python"),
        "run ./scripts/setup.sh to make .venv with mlx_lm",
    )
}

// ---------------------------------------------------------------- the binaries

/// The `cyberfilter` binary of this build.
pub const CYBERFILTER: &str = env!("CARGO_BIN_EXE_cyberfilter");
/// The `cyberfilter-tui` binary of this build.
pub const CYBERFILTER_TUI: &str = env!("CARGO_BIN_EXE_cyberfilter-tui");

/// `cyberfilter`, for a test to add arguments, environment and stdio to.
pub fn cyberfilter_cmd() -> Command {
    Command::new(CYBERFILTER)
}

/// `cyberfilter ARGS` run to the end, its output captured.
pub fn cyberfilter(args: &[&str]) -> Output {
    cyberfilter_cmd()
        .args(args)
        .output()
        .expect("run cyberfilter")
}

/// Its stdout as text (lossy).
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Its stderr as text (lossy).
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code (-1 when a signal ended it), stdout and stderr.
pub fn code_out_err(o: &Output) -> (i32, String, String) {
    (o.status.code().unwrap_or(-1), stdout(o), stderr(o))
}

/// Stdout as one JSON value.
pub fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {}", stdout(o)))
}

/// Stdout as JSON lines, one value a line; it must be UTF-8 and every line JSON.
pub fn json_lines(o: &Output) -> Vec<Value> {
    std::str::from_utf8(&o.stdout)
        .expect("stdout is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

// ---------------------------------------------------------------- a real terminal (tmux)

/// Whether tmux runs here; when not, the skip note.
pub fn tmux_or_skip() -> bool {
    let ok = Command::new("tmux").arg("-V").output().is_ok();
    if !ok {
        skip("tmux is not installed");
    }
    ok
}

/// `tmux ARGS`, its stdout.
pub fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("run tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the pane of tmux session `name` shows now.
pub fn tmux_capture(name: &str) -> String {
    tmux(&["capture-pane", "-p", "-t", name])
}

/// A new detached 120×40 tmux session `name` running `cmd` in a plain bash.
pub fn tmux_new_session(name: &str, cmd: &str) {
    tmux(&[
        "new-session",
        "-d",
        "-s",
        name,
        "-x",
        "120",
        "-y",
        "40",
        "bash",
        "--norc",
        "-c",
        cmd,
    ]);
}

/// The ids of the first `n` records of `store` in arrival order (read-only).
pub fn first_ids(store: &Path, n: usize) -> Vec<String> {
    let c =
        rusqlite::Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let mut st = c
        .prepare("SELECT id FROM records ORDER BY seq LIMIT ?1")
        .unwrap();
    st.query_map([n as i64], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// A tmux session by name, killed when dropped (also when the test panics).
pub struct TmuxSession(pub String);

impl Drop for TmuxSession {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .output();
    }
}

// ---------------------------------------------------------------- fixtures

/// A records-table row: record `seq` with `id`, a CVE 5 record of `feed.jsonl` with score 0 and
/// no rules, in the verify tier waiting for the verifier. Change what a test needs with
/// `RecordRow { score: 3.0, ..record_row(1, "CVE-2024-0001") }`.
pub fn record_row(seq: i64, id: impl Into<String>) -> RecordRow {
    RecordRow {
        seq,
        id: id.into(),
        name: String::new(),
        source: SourceKind::Cve5,
        kind: "cve".into(),
        file: "feed.jsonl".into(),
        score: 0.0,
        p_yes: None,
        p_head: None,
        tier: Tier::Verify,
        verdict: Verdict::Pending,
        decided_by: Some(DecidedBy::Rule),
        label: None,
        rules: vec![],
        group: None,
    }
}

/// An NVD file of about `mb` MiB at `out`: the `vulnerabilities` items of the NVD API 2.0 page
/// `page` repeated in turn, as one page, or with `jsonl` one item a line (the page writer of
/// `cyberfilter gen-nvd`). Returns how many records it holds.
pub fn replicate_nvd_page(page: &Path, out: &Path, mb: u64, jsonl: bool) -> u64 {
    let raw = std::fs::read(page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
    let v: Value = serde_json::from_slice(&raw).unwrap();
    let items: Vec<String> = v["vulnerabilities"]
        .as_array()
        .unwrap_or_else(|| panic!("{} is not an NVD API 2.0 page", page.display()))
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    drop((raw, v));
    let file = std::fs::File::create(out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    cyberfilter::cli::gen_nvd::replicate(&mut w, &items, mb << 20, jsonl).unwrap()
}

/// `cyberfilter export STORE --out OUT`, which must succeed: the record files (kept, removed,
/// pending) by name, and summary.json.
pub fn export_files(
    store: &Path,
    out: &Path,
) -> (std::collections::BTreeMap<String, String>, Value) {
    let o = cyberfilter_cmd()
        .arg("export")
        .arg(store)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "export {}: {}",
        store.display(),
        stderr(&o)
    );
    let mut files = std::collections::BTreeMap::new();
    let mut summary = Value::Null;
    for e in std::fs::read_dir(out).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&p).unwrap();
        if name == "summary.json" {
            summary = serde_json::from_str(&text).unwrap();
        } else if [
            ".kept.jsonl",
            ".removed.jsonl",
            ".pending.jsonl",
            // Copies of a group's representative (grouping on): records all the same.
            ".duplicates.jsonl",
        ]
        .iter()
        .any(|s| name.ends_with(s))
        {
            files.insert(name, text);
        }
    }
    (files, summary)
}

/// The exported record lines of `export_files`, parsed.
pub fn export_lines(store: &Path, out: &Path) -> (Vec<Value>, Value) {
    let (files, summary) = export_files(store, out);
    let lines = files
        .values()
        .flat_map(|t| t.lines())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, summary)
}

/// The JSON body of one HTTP request read from `stream` (the local test servers' side).
pub fn read_json_request(stream: &mut std::net::TcpStream) -> Option<Value> {
    use std::io::{BufRead, Read};
    let mut reader = std::io::BufReader::new(stream.try_clone().ok()?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

/// `cyberfilter run INPUT --store STORE` with the deterministic test verifier, thresholds 12/6,
/// progress as `progress` (none, json), the store's own data dir.
pub fn test_hash_run(store: &Path, input: &Path, progress: &str) -> Command {
    let mut c = cyberfilter_cmd();
    c.arg("run")
        .arg(input)
        .arg("--store")
        .arg(store)
        .args(["--verifier", "test-hash", "--progress", progress])
        .args(["--high", "12", "--low", "6"])
        // The copies of `nvd_copies` share their text: grouped, they would never reach the
        // verifier, and these runs are about the store and the verifier under faults.
        .args(["--dedup", "off"])
        .env("CYBERFILTER_DATA_DIR", store.with_extension("data"));
    c
}

/// The sample NVD page `copies` times over in `dir`, each copy's CVE ids made unique
/// (`CVE-…-K`); returns the file and its record count.
pub fn nvd_copies(dir: &Path, copies: usize) -> (PathBuf, usize) {
    let input = dir.join(format!("nvd-x{copies}.json"));
    let page = root().join("sample_data/nvd/nvd-api2.0-page0-sample.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(page).unwrap()).unwrap();
    let items = v["vulnerabilities"].as_array().unwrap().clone();
    let all: Vec<Value> = (0..copies)
        .flat_map(|k| {
            items.iter().map(move |it| {
                let mut it = it.clone();
                it["cve"]["id"] = format!("{}-{k}", it["cve"]["id"].as_str().unwrap()).into();
                it
            })
        })
        .collect();
    let n = all.len();
    v["vulnerabilities"] = all.into();
    std::fs::write(&input, serde_json::to_vec(&v).unwrap()).unwrap();
    (input, n)
}

/// A record the curator labels while it still waits for the verifier is never asked (the
/// label decides it), while in the uninterrupted run the same label lands after the answer.
/// Both are right; so for records a label decides — their own, or a label on another member
/// of their duplicate group (`decided_by: human`, `label` null on the representative) — the
/// LLM's answer (`p_yes`, `model`) is left out of the comparison. Everything else, the label
/// and the verdict included, must match.
pub fn without_llm_answer_if_labelled(line: &str) -> String {
    let mut v: Value = serde_json::from_str(line).unwrap();
    let cf = v["cyberfilter"].as_object_mut().unwrap();
    if !cf["label"].is_null() || cf["decided_by"] == "human" {
        cf.remove("p_yes");
        cf.remove("model");
    }
    format!("{v}\n")
}
