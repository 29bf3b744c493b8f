//! The one launch path, through the real binaries: what a new user hit (store identity, bad
//! thresholds, stores shared by runs in one second, silent exits on bad input, a killed run
//! left "running") and the drifts between `cyberfilter run` and `cyberfilter-tui` (the shared
//! answer cache, threshold checks, `--resume`, `--print-config`). Each test has its own data
//! dir, config dir and working folders.

mod common;

use common::{root, stderr, tmux, tmux_capture, tmux_or_skip, TmuxSession};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn cli() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cyberfilter"))
}

fn tui() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cyberfilter-tui"))
}

/// A private world: data dir, config home and a scratch folder.
struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        World {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn data(&self) -> PathBuf {
        self.path("data")
    }
    fn runs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.data().join("runs"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "cfrun"))
            .collect();
        v.sort();
        v
    }
    fn cmd(&self, bin: &Path, cwd: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(bin);
        c.args(args)
            .current_dir(cwd)
            .env("CYBERFILTER_DATA_DIR", self.data())
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env_remove("CYBERFILTER_CONFIG")
            .env_remove("CYBERFILTER_STORE")
            .env_remove("CYBERFILTER_HIGH")
            .env_remove("CYBERFILTER_LOW");
        c
    }
    fn run(&self, cwd: &Path, args: &[&str]) -> Output {
        let mut full = vec!["run", "--progress", "none"];
        full.extend_from_slice(args);
        self.cmd(&cli(), cwd, &full).output().unwrap()
    }
}

fn summary(o: &Output) -> Value {
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no summary: {}", stderr(o)));
    serde_json::from_str(line).unwrap()
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

#[test]
fn two_folders_with_one_relative_name_are_two_inputs() {
    let w = World::new();
    let (a, b) = (w.path("a"), w.path("b"));
    copy(
        &root().join("sample_data/nvd/nvd-api2.0-page0-sample.json"),
        &a.join("coll/nvd.json"),
    );
    copy(
        &root().join("sample_data/capec/capec_v3.9-sample.xml"),
        &b.join("coll/capec.xml"),
    );
    let first = w.run(&a, &["--verifier", "none", "coll"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let n = summary(&first)["records_read"].as_u64().unwrap();
    assert!(n > 0);

    // Another folder's `coll`: --resume finds no store for it, nothing is mixed in.
    let other = w.run(&b, &["--verifier", "none", "--resume", "coll"]);
    assert_eq!(other.status.code(), Some(3), "{}", stderr(&other));
    assert!(
        stderr(&other).contains("no store for"),
        "{}",
        stderr(&other)
    );
    assert_eq!(w.runs().len(), 1);

    // `./coll/` and the absolute path are the same input as `coll`.
    for spelling in ["./coll/", a.join("coll").to_str().unwrap()] {
        let again = w.run(&a, &["--verifier", "none", "--resume", spelling]);
        assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
        assert_eq!(summary(&again)["records_read"], 0, "nothing read twice");
        assert!(stderr(&again).contains("(resumed)"), "{}", stderr(&again));
    }

    // The same store named explicitly from the other folder is refused, naming both.
    let store = w.runs()[0].clone();
    let mixed = w.run(
        &b,
        &[
            "--verifier",
            "none",
            "--store",
            store.to_str().unwrap(),
            "coll",
        ],
    );
    assert_eq!(mixed.status.code(), Some(3), "{}", stderr(&mixed));
    assert!(
        stderr(&mixed).contains("belongs to a run over"),
        "{}",
        stderr(&mixed)
    );

    // A changed input file is noticed on resume.
    std::fs::write(a.join("coll/nvd.json"), b"{\"vulnerabilities\": []}").unwrap();
    let changed = w.run(&a, &["--verifier", "none", "--resume", "coll"]);
    assert_eq!(changed.status.code(), Some(3), "{}", stderr(&changed));
    assert!(
        stderr(&changed).contains("changed since this store read it"),
        "{}",
        stderr(&changed)
    );
    assert_eq!(w.runs().len(), 1);
}

#[test]
fn non_finite_or_crossed_thresholds_are_refused_by_both_binaries_and_no_store_is_made() {
    let w = World::new();
    let nvd = root().join("sample_data/nvd");
    let nvd = nvd.to_str().unwrap();
    for bad in [["--high", "NaN"], ["--low", "inf"], ["--p-yes-cut", "1.5"]] {
        let o = w.run(&root(), &["--verifier", "none", bad[0], bad[1], nvd]);
        assert_eq!(o.status.code(), Some(3), "{bad:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("thresholds:"), "{}", stderr(&o));
    }
    let cli_err = w.run(
        &root(),
        &["--verifier", "none", "--low", "5", "--high", "2", nvd],
    );
    assert_eq!(cli_err.status.code(), Some(3));
    assert!(w.runs().is_empty(), "a refused run leaves no store");

    // The TUI refuses before it opens the screen, with the same message and code.
    let o = w
        .cmd(
            &tui(),
            &root(),
            &["--verifier", "none", "--low", "5", "--high", "2", nvd],
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let message = |s: String| s.split_once(": ").map(|(_, m)| m.to_string()).unwrap();
    assert_eq!(message(stderr(&o)), message(stderr(&cli_err)));
    let o = w
        .cmd(
            &tui(),
            &root(),
            &["--verifier", "none", "--high", "NaN", nvd],
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(w.runs().is_empty());
}

#[test]
fn runs_started_in_one_second_get_their_own_stores() {
    let w = World::new();
    let nvd = root().join("sample_data/nvd");
    let mut read = Vec::new();
    for _ in 0..3 {
        let o = w.run(&root(), &["--verifier", "none", nvd.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        read.push(summary(&o)["records_read"].as_u64().unwrap());
    }
    assert_eq!(w.runs().len(), 3, "three runs, three stores");
    assert!(read.iter().all(|&n| n == read[0] && n > 0), "{read:?}");
}

#[test]
fn run_exits_66_or_65_on_bad_input_as_scan_does() {
    let w = World::new();
    let empty_dir = w.path("empty");
    std::fs::create_dir_all(&empty_dir).unwrap();
    let no_feeds = w.path("nofeeds");
    std::fs::create_dir_all(&no_feeds).unwrap();
    std::fs::write(no_feeds.join("README.txt"), "notes").unwrap();
    for (input, code) in [(&empty_dir, 66), (&no_feeds, 66), (&w.path("missing"), 66)] {
        let o = w.run(&root(), &["--verifier", "none", input.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(code), "{input:?}: {}", stderr(&o));
        let scan = w
            .cmd(&cli(), &root(), &["scan", input.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(scan.status.code(), Some(code), "scan agrees on {input:?}");
    }
    assert!(w.runs().is_empty(), "no input, no store");

    let files = w.path("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("empty.json"), b"").unwrap();
    std::fs::write(
        files.join("truncated.json"),
        br#"{"vulnerabilities":[{"cve":{"id":"CVE-2024-1","descriptions":[{"lang":"en","value":"A heap overflow lets remote attackers run code."}]}},{"cve":"#,
    )
    .unwrap();
    std::fs::write(
        files.join("binary.json"),
        [0u8, 159, 146, 150, 255, 0, 1, 2],
    )
    .unwrap();
    for name in ["empty.json", "truncated.json", "binary.json"] {
        let f = files.join(name);
        let o = w.run(&root(), &["--verifier", "none", f.to_str().unwrap()]);
        let scan = w
            .cmd(&cli(), &root(), &["scan", f.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(scan.status.code(), Some(65), "scan on {name}");
        assert_eq!(o.status.code(), Some(65), "{name}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(name),
            "the error names the file: {}",
            stderr(&o)
        );
    }
    // The readable record of the truncated file is in its store all the same.
    let o = w.run(
        &root(),
        &[
            "--verifier",
            "none",
            files.join("truncated.json").to_str().unwrap(),
        ],
    );
    assert_eq!(summary(&o)["records_read"], 1);
}

/// `run` with every record in the verify band, so a slow test verifier keeps it going.
fn slow_run_args<'a>(store: &'a Path, input: &'a Path) -> Vec<&'a str> {
    vec![
        "run",
        "--progress",
        "none",
        "--verifier",
        "test-hash",
        "--high",
        "1000",
        "--low",
        "-1000",
        "--store",
        store.to_str().unwrap(),
        input.to_str().unwrap(),
    ]
}

#[test]
fn a_killed_run_reads_as_interrupted_and_a_second_run_on_a_held_store_is_refused() {
    let w = World::new();
    let store = w.path("data/runs/slow.cfrun");
    let nvd = root().join("sample_data/nvd");
    let args = slow_run_args(&store, &nvd);
    let mut slow = w
        .cmd(&cli(), &root(), &args)
        .env("CYBERFILTER_TEST_VERIFIER_DELAY_MS", "60000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let runs_state = || -> String {
        let o = w
            .cmd(&cli(), &root(), &["runs", "--json"])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        out.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["store"] == store.to_str().unwrap())
            .map(|v| v["state"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    let start = Instant::now();
    while runs_state() != "running" {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the run never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let second = w.cmd(&cli(), &root(), &args).output().unwrap();
    assert_eq!(second.status.code(), Some(75), "{}", stderr(&second));
    assert!(stderr(&second).contains("in use by another cyberfilter process"));

    slow.kill().unwrap(); // SIGKILL: no clean stop, the store still says "running"
    slow.wait().unwrap();
    assert_eq!(runs_state(), "interrupted");
    let rm = w
        .cmd(&cli(), &root(), &["runs", "rm", "slow"])
        .output()
        .unwrap();
    assert_eq!(rm.status.code(), Some(0), "{}", stderr(&rm));
    assert!(!store.exists());
}

/// The `[engine]` part of `--print-config` (everything before the `# store:` line).
fn engine_section(o: &Output) -> (String, String) {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (engine, rest) = out
        .split_once("# store:")
        .unwrap_or_else(|| panic!("{out}"));
    let store = rest.lines().next().unwrap().trim().to_string();
    (engine.to_string(), store)
}

#[test]
fn both_binaries_resolve_the_same_settings_and_resume_the_same_store() {
    let w = World::new();
    let cfg = w.path("c.toml");
    std::fs::write(
        &cfg,
        "[engine]\nhigh = 6.5\nbatch_wait_ms = 75\nverifier = \"none\"\n\n[tui]\nfps = 12\n",
    )
    .unwrap();
    let nvd = root().join("sample_data/nvd");
    let nvd = nvd.to_str().unwrap();
    // Two finished runs over the same inputs: --resume must pick the newer in both binaries.
    for _ in 0..2 {
        let o = w.run(&root(), &["--verifier", "none", nvd]);
        assert_eq!(o.status.code(), Some(0));
        std::thread::sleep(Duration::from_millis(20));
    }
    let args = [
        "--config",
        cfg.to_str().unwrap(),
        "--low",
        "1.5",
        "--print-config",
        "--resume",
        nvd,
    ];
    let a = w
        .cmd(&cli(), &root(), &[&["run"][..], &args[..]].concat())
        .env("CYBERFILTER_P_YES_CUT", "0.7")
        .output()
        .unwrap();
    let b = w
        .cmd(&tui(), &root(), &args)
        .env("CYBERFILTER_P_YES_CUT", "0.7")
        .output()
        .unwrap();
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert_eq!(b.status.code(), Some(0), "{}", stderr(&b));
    let (ea, sa) = engine_section(&a);
    let (eb, sb) = engine_section(&b);
    assert_eq!(ea, eb, "the same engine settings from both binaries");
    assert!(
        ea.contains("high = 6.5") && ea.contains("# config file"),
        "{ea}"
    );
    assert!(ea.contains("low = 1.5") && ea.contains("# flag"), "{ea}");
    assert!(
        ea.contains("p_yes_cut = 0.7") && ea.contains("# environment"),
        "{ea}"
    );
    assert_eq!(sa, sb, "--resume picks one store");
    let newest = w
        .runs()
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    assert_eq!(Path::new(&sa), newest.unwrap());
    assert!(String::from_utf8_lossy(&b.stdout).contains("fps = 12"));
}

// --- the TUI in a real terminal -------------------------------------------------------------

impl World {
    /// `cyberfilter-tui ARGS` in tmux (120×40) with this world's directories; the shell
    /// prints `EXIT=<code>` after it.
    fn tui_session(&self, name: &str, args: &str) -> TmuxSession {
        let s = TmuxSession(format!("cf-launch-{name}-{}", std::process::id()));
        let cmd = format!(
            "cd {root} && CYBERFILTER_DATA_DIR={data} XDG_CONFIG_HOME={cfg} XDG_STATE_HOME={state} {bin} {args}; echo EXIT=$?; sleep 30",
            root = root().display(),
            data = self.data().display(),
            cfg = self.path("config").display(),
            state = self.path("state").display(),
            bin = tui().display(),
        );
        common::tmux_new_session(&s.0, &cmd);
        s
    }
}

fn wait_screen(s: &TmuxSession, what: &str, timeout: Duration) -> String {
    let start = Instant::now();
    loop {
        let screen = tmux_capture(&s.0);
        if screen.contains(what) {
            return screen;
        }
        assert!(
            start.elapsed() < timeout,
            "waited for {what:?}; screen:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_tui_that_cannot_start_makes_no_store() {
    if !tmux_or_skip() {
        return;
    }
    let w = World::new();
    let s = w.tui_session("missing", "--verifier none no/such/folder");
    let screen = wait_screen(&s, "EXIT=", Duration::from_secs(20));
    assert!(screen.contains("EXIT=66"), "{screen}");
    assert!(screen.contains("no/such/folder does not exist"), "{screen}");
    assert!(w.runs().is_empty());
}

#[test]
fn answers_found_in_a_tui_session_are_not_asked_again_by_run() {
    if !tmux_or_skip() {
        return;
    }
    let w = World::new();
    let inputs = root().join("sample_data");
    let s = w.tui_session(
        "cache",
        &format!("--verifier test-hash {}", inputs.display()),
    );
    wait_screen(&s, "all input read and verified", Duration::from_secs(60));
    tmux(&["send-keys", "-t", &s.0, "q"]);
    let screen = wait_screen(&s, "EXIT=", Duration::from_secs(20));
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(
        w.data().join("llm-cache.sqlite").exists(),
        "the TUI filled the shared cache"
    );

    let o = w.run(
        &root(),
        &["--verifier", "test-hash", inputs.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let sum = summary(&o);
    assert_eq!(sum["llm_calls"], 0, "{sum}");
    assert!(sum["cache_hits"].as_u64().unwrap() > 0, "{sum}");
}

#[test]
fn a_label_written_by_relabel_reaches_the_running_engine() {
    let w = World::new();
    let store = w.path("data/runs/live.cfrun");
    let nvd = root().join("sample_data/nvd/nvd-api2.0-page0-sample.json");
    let slow = w
        .cmd(&cli(), &root(), &slow_run_args(&store, &nvd))
        .env("CYBERFILTER_TEST_VERIFIER_DELAY_MS", "60000")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the records are stored (all pending behind the slow verifier).
    let start = Instant::now();
    let id = loop {
        let o = w
            .cmd(
                &cli(),
                &root(),
                &["show", store.to_str().unwrap(), "#1", "--json"],
            )
            .output()
            .unwrap();
        if o.status.success() {
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            break v["id"].as_str().unwrap().to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no record stored"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let o = w
        .cmd(
            &cli(),
            &root(),
            &["relabel", store.to_str().unwrap(), &id, "keep"],
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("a run holds this store"),
        "{}",
        stderr(&o)
    );
    std::thread::sleep(Duration::from_millis(2500)); // the engine reads the log once a second
                                                     // SIGTERM: a clean stop with the engine's own counts in the summary.
    Command::new("kill")
        .args(["-TERM", &slow.id().to_string()])
        .status()
        .unwrap();
    let out = slow.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let sum = summary(&out);
    assert_eq!(sum["labelled"], 1, "{sum}");
    assert_eq!(
        sum["kept"], 1,
        "the labelled record is kept, the rest wait: {sum}"
    );
}
