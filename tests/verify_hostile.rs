//! A hostile verifier server against the real engine (`cyberfilter run --verifier http`): a
//! local server that is good for the startup check and the first requests, then closes the
//! connection mid-body, answers garbage or truncated JSON, answers 200 without log-probs,
//! trickles its answer slower than the timeout (slowloris), answers as another model, flaps
//! between down and up, or is down for a while and then up.
//!
//! The in-run retry policy (`--verify-retries`, `--verify-retry-backoff-ms`): a server that
//! recovers within it (flapping; down then up) ends the run with nothing pending and every
//! record decided once (one good answer per text in the server's log, none given up); one
//! that never recovers is asked each failed record exactly once per round (its request log)
//! and the run finishes with those records pending and visible in the export, given up after
//! the configured rounds. Nothing is dropped (records in = kept + removed + pending), and a
//! resume against the recovered server asks only the pending records again (none decided
//! twice) and leaves nothing pending. Memory stays bounded with thousands of records waiting
//! for a slow server.

mod common;

use common::{cyberfilter_cmd, export_lines, root, stderr};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Good,
    CloseMidBody,
    Garbage,
    TruncatedJson,
    NoLogprobs,
    Slowloris,
    WrongModel,
    Flapping,
    /// Connection reset and 503 in turns for `DOWN_FOR` after the first hostile request,
    /// then up for good.
    DownThenUp,
    /// Every request reset, for good.
    Down,
}

/// How long `Mode::DownThenUp` stays down.
const DOWN_FOR: Duration = Duration::from_millis(2500);

struct Server {
    url: String,
    /// Requests answered well from this many on: the hostile part is before.
    mode: Arc<Mutex<Mode>>,
    /// Record texts answered well, in order (the user message of each request).
    asked: Arc<Mutex<Vec<String>>>,
    /// Every request's record text, answered well or not.
    requests: Arc<Mutex<Vec<String>>>,
    good_first: usize,
    stop: Arc<AtomicBool>,
}

/// P(yes) of a text, fixed by its bytes: the good server's answer.
fn p_of(text: &str) -> f64 {
    let h = text.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    0.05 + 0.9 * ((h % 1000) as f64 / 1000.0)
}

fn good_body(text: &str, model: &str) -> String {
    let p = p_of(text);
    serde_json::json!({"model": model, "choices": [{"index": 0, "logprobs": {"content": [
        {"token": "yes", "logprob": p.ln(), "top_logprobs": [
            {"token": "yes", "logprob": p.ln()}, {"token": "no", "logprob": (1.0 - p).ln()}]}]}}]})
    .to_string()
}

fn write_response(s: &mut TcpStream, status: &str, body: &str) {
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// What one request met: its number, when the server first turned hostile, and the logs.
struct Conn<'a> {
    n: usize,
    good_first: usize,
    hostile_since: &'a Mutex<Option<Instant>>,
    asked: &'a Mutex<Vec<String>>,
    requests: &'a Mutex<Vec<String>>,
}

fn serve(mut s: TcpStream, mode: Mode, c: Conn) {
    let Some(body) = common::read_json_request(&mut s) else {
        return;
    };
    let text = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    c.requests.lock().unwrap().push(text.clone());
    let (n, asked) = (c.n, c.asked);
    let mode = if n < c.good_first { Mode::Good } else { mode };
    let mode = match mode {
        Mode::DownThenUp => {
            let since = *c
                .hostile_since
                .lock()
                .unwrap()
                .get_or_insert_with(Instant::now);
            if since.elapsed() < DOWN_FOR {
                // Down: reset and 503 in turns.
                if n % 2 == 0 {
                    return drop(s);
                }
                return write_response(&mut s, "503 Service Unavailable", "{\"error\":\"down\"}");
            }
            Mode::Good
        }
        m => m,
    };
    let good = good_body(&text, "served-model");
    match mode {
        Mode::Good => {
            asked.lock().unwrap().push(text.clone());
            write_response(&mut s, "200 OK", &good)
        }
        Mode::CloseMidBody => {
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                good.len(),
                &good[..good.len() / 3]
            );
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        Mode::Garbage => write_response(&mut s, "200 OK", "<html>\u{0}\u{7f} not json at all"),
        Mode::TruncatedJson => write_response(&mut s, "200 OK", &good[..good.len() / 2]),
        Mode::NoLogprobs => write_response(
            &mut s,
            "200 OK",
            r#"{"model":"served-model","choices":[{"index":0,"message":{"role":"assistant","content":"yes"}}]}"#,
        ),
        Mode::Slowloris => {
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                good.len()
            );
            for b in good.bytes() {
                if s.write_all(&[b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Mode::Down => drop(s),
        Mode::DownThenUp => unreachable!("answered above"),
        Mode::WrongModel => write_response(&mut s, "200 OK", &good_body(&text, "another-model")),
        Mode::Flapping => {
            // Down (connection reset, then 503) and up in turns of three requests.
            match (n / 3) % 3 {
                0 => drop(s),
                1 => write_response(&mut s, "503 Service Unavailable", "{\"error\":\"loading\"}"),
                _ => {
                    asked.lock().unwrap().push(text.clone());
                    write_response(&mut s, "200 OK", &good)
                }
            }
        }
    }
}

impl Server {
    fn start(mode: Mode, good_first: usize, delay: Duration) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let mode = Arc::new(Mutex::new(mode));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, a, r, st) = (mode.clone(), asked.clone(), requests.clone(), stop.clone());
        std::thread::spawn(move || {
            let count = Arc::new(AtomicUsize::new(0));
            let hostile_since = Arc::new(Mutex::new(None));
            while !st.load(Ordering::Relaxed) {
                let Ok((s, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let m = *m.lock().unwrap();
                let (a, r, count, hs) =
                    (a.clone(), r.clone(), count.clone(), hostile_since.clone());
                std::thread::spawn(move || {
                    s.set_nonblocking(false).unwrap();
                    std::thread::sleep(delay);
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    let c = Conn {
                        n,
                        good_first,
                        hostile_since: &hs,
                        asked: &a,
                        requests: &r,
                    };
                    serve(s, m, c);
                });
            }
        });
        Server {
            url,
            mode,
            asked,
            requests,
            good_first,
            stop,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn run(store: &Path, input: &Path, url: &str, extra: &[&str]) -> std::process::Output {
    cyberfilter_cmd()
        .arg("run")
        .arg(input)
        .arg("--store")
        .arg(store)
        .args([
            "--verifier",
            "http",
            "--http-url",
            url,
            "--http-model",
            "served-model",
        ])
        // Every record on its own (the sample page's shared Cisco text would be one group):
        // the accounting below counts what the verifier was asked, record by record.
        .args(["--dedup", "off"])
        // No verdict head: its /v1/embeddings probe would be one of the requests the hostile
        // server counts (the head over HTTP is tested in verify_http.rs).
        .args(["--head", "off"])
        .args([
            "--http-timeout-ms",
            "700",
            "--http-retries",
            "2",
            "--http-concurrency",
            "4",
        ])
        // Every scored record goes to the verifier.
        .args(["--high", "1000", "--low", "-1000", "--progress", "json"])
        .args(extra)
        .env("CYBERFILTER_DATA_DIR", store.with_extension("data"))
        .output()
        .unwrap()
}

/// Exported records by (id, index): verdict and p_yes.
fn export(store: &Path, out: &Path) -> BTreeMap<(String, u64), (String, Option<f64>)> {
    let mut m = BTreeMap::new();
    for v in export_lines(store, out).0 {
        let cf = &v["cyberfilter"];
        let key = (
            cf["id"].as_str().unwrap().to_string(),
            cf["index"].as_u64().unwrap(),
        );
        let val = (
            cf["verdict"].as_str().unwrap().to_string(),
            cf["p_yes"].as_f64(),
        );
        assert!(m.insert(key, val).is_none(), "a record exported twice");
    }
    m
}

fn count(m: &BTreeMap<(String, u64), (String, Option<f64>)>, verdict: &str) -> usize {
    m.values().filter(|(v, _)| v == verdict).count()
}

/// Retries within the run against a server that never recovers: each failed record is asked
/// this many times more, 50 ms apart at first.
const ROUNDS: usize = 2;
const NEVER: [&str; 4] = ["--verify-retries", "2", "--verify-retry-backoff-ms", "50"];

/// The startup probe's text (`src/verify/http.rs`): asked once per run, not a record.
fn is_probe(text: &str) -> bool {
    text.contains("Log4j via JNDI")
}

/// How often the server saw each text, the probe left out.
fn tally(texts: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for t in texts.iter().filter(|t| !is_probe(t)) {
        *m.entry(t.clone()).or_insert(0) += 1;
    }
    m
}

/// A scratch dir, the 60-record NVD page, a store in the dir, and a server that answers the
/// startup probe and the first 12 records well and then turns `mode`.
fn setup(mode: Mode) -> (tempfile::TempDir, PathBuf, PathBuf, Server) {
    let dir = tempfile::tempdir().unwrap();
    let input = root().join("sample_data/nvd/nvd-api2.0-page0-sample.json");
    let store = dir.path().join("h.cfrun");
    (dir, input, store, Server::start(mode, 13, Duration::ZERO))
}

/// A server that stays hostile: the run gives each failed record its rounds, then finishes
/// with them pending; a resume against the recovered server asks only those.
fn never_recovers(mode: Mode, requests_per_round: usize) {
    let (dir, input, store, server) = setup(mode);
    let n_in = 60;
    let t = Instant::now();
    let first = run(&store, &input, &server.url, &NEVER);
    let took = t.elapsed();
    let err = stderr(&first);
    assert_eq!(first.status.code(), Some(0), "{mode:?}: {err}");
    assert!(
        took < Duration::from_secs(120),
        "{mode:?}: the run took {took:?}"
    );
    assert!(
        err.contains("asked again in") && err.contains("stay pending for a resume"),
        "{mode:?}: the failures, retries and give-ups are reported: {err}"
    );
    let a = export(&store, &dir.path().join("a"));
    let pending = count(&a, "pending");
    assert_eq!(
        a.len(),
        n_in,
        "{mode:?}: records in = kept + removed + pending"
    );
    assert_eq!(count(&a, "kept") + count(&a, "removed") + pending, n_in);
    assert_eq!(
        pending,
        n_in - 12,
        "{mode:?}: every hostile answer stays pending"
    );
    for (k, (v, p)) in &a {
        assert_eq!(v == "pending", p.is_none(), "{mode:?}: {k:?} {v} {p:?}");
    }
    // Each pending record was asked once per round (its first ask and ROUNDS retries; a
    // transport error also gets the HTTP client's own tries within each round), no more.
    let good = tally(&server.asked.lock().unwrap());
    let all = tally(&server.requests.lock().unwrap());
    assert_eq!(good.len(), 12, "{mode:?}: {good:?}");
    let failed: Vec<usize> = all
        .iter()
        .filter(|(t, _)| !good.contains_key(*t))
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(
        failed.len(),
        pending,
        "{mode:?}: every pending record was asked"
    );
    assert!(
        failed
            .iter()
            .all(|n| *n == (ROUNDS + 1) * requests_per_round),
        "{mode:?}: asks per pending record {failed:?}, expected {} rounds of {requests_per_round}",
        ROUNDS + 1
    );
    let sum = common::json(&first);
    assert_eq!(sum["verifier_gave_up"], pending as u64, "{mode:?}: {sum}");
    assert_eq!(
        sum["verifier_failed_rounds"],
        (pending * (ROUNDS + 1)) as u64,
        "{mode:?}: {sum}"
    );
    assert_eq!(sum["verifier_retrying"], 0, "{mode:?}: {sum}");
    eprintln!(
        "{mode:?}: {pending} pending after {} rounds in {:.1} s",
        ROUNDS + 1,
        took.as_secs_f64()
    );
    let asked_before: HashSet<String> = server.asked.lock().unwrap().iter().cloned().collect();

    // The server recovers: the resume asks only the pending records.
    *server.mode.lock().unwrap() = Mode::Good;
    let good_from = server.asked.lock().unwrap().len();
    let again = run(&store, &input, &server.url, &[]);
    assert_eq!(again.status.code(), Some(0), "{mode:?}: {}", stderr(&again));
    let b = export(&store, &dir.path().join("b"));
    assert_eq!(b.len(), n_in);
    assert_eq!(count(&b, "pending"), 0, "{mode:?}: nothing left pending");
    let asked_after: Vec<String> = server.asked.lock().unwrap()[good_from..].to_vec();
    // The startup probe plus one request per pending record.
    assert!(
        asked_after.len() <= pending + 1,
        "{mode:?}: {} asked",
        asked_after.len()
    );
    for t in asked_after.iter().filter(|t| !is_probe(t)) {
        assert!(!asked_before.contains(t), "{mode:?}: asked twice");
    }
    // Decided once: the answers of the first run are unchanged.
    for (k, (v, p)) in &a {
        if v != "pending" {
            assert_eq!(&b[k], &(v.clone(), *p), "{mode:?}: {k:?} decided again");
        }
    }
    let _ = server.good_first;
}

/// A server that recovers within the policy: the run itself finishes with nothing pending,
/// every record answered well exactly once (the server's log) and none given up.
fn recovers(mode: Mode) {
    let (dir, input, store, server) = setup(mode);
    let n_in = 60;
    let t = Instant::now();
    let policy = ["--verify-retries", "8", "--verify-retry-backoff-ms", "100"];
    let first = run(&store, &input, &server.url, &policy);
    let took = t.elapsed();
    let err = stderr(&first);
    assert_eq!(first.status.code(), Some(0), "{mode:?}: {err}");
    assert!(took < Duration::from_secs(90), "{mode:?}: {took:?}");
    let a = export(&store, &dir.path().join("a"));
    assert_eq!(a.len(), n_in, "{mode:?}: records in = kept + removed");
    assert_eq!(count(&a, "pending"), 0, "{mode:?}: nothing left pending");
    assert_eq!(count(&a, "kept") + count(&a, "removed"), n_in);
    let good = tally(&server.asked.lock().unwrap());
    assert_eq!(good.len(), n_in, "{mode:?}: every record answered");
    assert!(
        good.values().all(|n| *n == 1),
        "{mode:?}: a record answered twice: {good:?}"
    );
    let sum = common::json(&first);
    assert_eq!(sum["pending"], 0, "{mode:?}: {sum}");
    assert_eq!(sum["verifier_gave_up"], 0, "{mode:?}: {sum}");
    assert_eq!(sum["verifier_retrying"], 0, "{mode:?}: {sum}");
    let failed_rounds = sum["verifier_failed_rounds"].as_u64().unwrap();
    let requests = server.requests.lock().unwrap().len();
    eprintln!(
        "{mode:?}: recovered in {:.1} s, {failed_rounds} failed asks retried, {requests} requests",
        took.as_secs_f64()
    );
    if mode == Mode::DownThenUp {
        assert!(
            failed_rounds > 0,
            "{mode:?}: the outage failed batches: {sum}"
        );
        assert!(err.contains("asked again in"), "{mode:?}: {err}");
    }
    // Nothing is left for a resume: it asks no record again.
    *server.mode.lock().unwrap() = Mode::Good;
    let good_from = server.asked.lock().unwrap().len();
    let again = run(&store, &input, &server.url, &[]);
    assert_eq!(again.status.code(), Some(0), "{mode:?}: {}", stderr(&again));
    let asked_after = tally(&server.asked.lock().unwrap()[good_from..]);
    assert!(
        asked_after.is_empty(),
        "{mode:?}: asked again {asked_after:?}"
    );
    assert_eq!(export(&store, &dir.path().join("b")), a, "{mode:?}");
}

#[test]
fn hostile_server_closes_the_connection_mid_body() {
    // A connection error: the HTTP client's own three tries within each round.
    never_recovers(Mode::CloseMidBody, 3);
}

#[test]
fn hostile_server_answers_garbage() {
    never_recovers(Mode::Garbage, 1);
}

#[test]
fn hostile_server_answers_truncated_json() {
    never_recovers(Mode::TruncatedJson, 1);
}

#[test]
fn hostile_server_answers_200_without_log_probs() {
    never_recovers(Mode::NoLogprobs, 1);
}

#[test]
fn hostile_server_is_slower_than_the_timeout() {
    never_recovers(Mode::Slowloris, 1);
}

#[test]
fn hostile_server_answers_as_another_model() {
    never_recovers(Mode::WrongModel, 1);
}

#[test]
fn hostile_server_flaps_between_down_and_up() {
    recovers(Mode::Flapping);
}

#[test]
fn hostile_server_down_then_up_recovers_within_the_run() {
    recovers(Mode::DownThenUp);
}

/// A thousand records wait for a slow server: the engine's memory stays bounded (it holds
/// queue entries, not texts), and a clean stop keeps every record (pending ones included).
#[test]
fn thousands_waiting_for_a_slow_server_keep_memory_bounded() {
    let server = Server::start(Mode::Good, 0, Duration::from_millis(300));
    let w = thousands_waiting(&server, &[], "verifier_queue");
    assert!(w.max_queue >= 1000, "{} waiting", w.max_queue);
}

/// Thousands of records wait in the retry queue of a server that is down (every request
/// reset, no HTTP-level retries): memory stays bounded (the retry queue holds seqs), they
/// are pending meanwhile, and a SIGTERM stops cleanly with every record kept.
#[test]
fn thousands_waiting_to_retry_keep_memory_bounded_and_stop_cleanly() {
    let server = Server::start(Mode::Down, 1, Duration::ZERO);
    // The first retry waits 15 to 30 s (60 s capped at 30, jittered): the stop comes first.
    let extra = [
        "--verify-retries",
        "3",
        "--verify-retry-backoff-ms",
        "60000",
        "--http-retries",
        "0",
    ];
    let w = thousands_waiting(&server, &extra, "verifier_retrying");
    assert!(w.max_retrying >= 1000, "{} retrying", w.max_retrying);
    assert!(
        w.pending >= w.max_retrying as usize,
        "the records waiting to retry are pending: {} pending, {} retrying",
        w.pending,
        w.max_retrying
    );
}

/// What [`thousands_waiting`] saw.
struct Waiting {
    max_queue: u64,
    max_retrying: u64,
    pending: usize,
}

/// 2,400 records (40 copies of the NVD sample page) against `server`, stopped by SIGTERM
/// once all are read and `until` (a progress field) has passed 1,000; RSS stays under
/// 200 MB and every record is exported after the stop.
fn thousands_waiting(server: &Server, extra: &[&str], until: &str) -> Waiting {
    let dir = tempfile::tempdir().unwrap();
    let page = root().join("sample_data/nvd/nvd-api2.0-page0-sample.json");
    let input = dir.path().join("big.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(page).unwrap()).unwrap();
    let items = v["vulnerabilities"].as_array().unwrap().clone();
    let all: Vec<serde_json::Value> = (0..40)
        .flat_map(|k| {
            items.iter().map(move |it| {
                let mut it = it.clone();
                let d = format!(
                    "{} (copy {k})",
                    it["cve"]["descriptions"][0]["value"].as_str().unwrap()
                );
                it["cve"]["descriptions"][0]["value"] = d.into();
                it
            })
        })
        .collect();
    let n_in = all.len();
    v["vulnerabilities"] = all.into();
    std::fs::write(&input, serde_json::to_vec(&v).unwrap()).unwrap();
    let store = dir.path().join("slow.cfrun");
    let mut child = cyberfilter_cmd()
        .arg("run")
        .arg(&input)
        .arg("--store")
        .arg(&store)
        .args([
            "--verifier",
            "http",
            "--http-url",
            &server.url,
            "--http-concurrency",
            "1",
        ])
        .args(["--high", "1000", "--low", "-1000", "--progress", "json"])
        // Copies of one page: every one waits on its own (no grouping, no embeddings probe).
        .args(["--dedup", "off", "--head", "off"])
        .args(["--stats-interval-ms", "100"])
        .args(extra)
        .env("CYBERFILTER_DATA_DIR", store.with_extension("data"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // stderr is read to the end by a thread (a closed pipe would fail the child's writes).
    let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
    let err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let (mut max_rss, mut max_queue, mut max_retrying) = (0u64, 0u64, 0u64);
    let t = Instant::now();
    while let Ok(v) = rx.recv_timeout(Duration::from_secs(90)) {
        max_rss = max_rss.max(v["rss_bytes"].as_u64().unwrap_or(0));
        max_queue = max_queue.max(v["verifier_queue"].as_u64().unwrap_or(0));
        max_retrying = max_retrying.max(v["verifier_retrying"].as_u64().unwrap_or(0));
        if v["records_read"].as_u64() == Some(n_in as u64)
            && v[until].as_u64().unwrap_or(0) >= 1000
            && t.elapsed() > Duration::from_secs(3)
        {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "never read the input"
        );
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    reader.join().unwrap();
    for v in rx.try_iter() {
        max_rss = max_rss.max(v["rss_bytes"].as_u64().unwrap_or(0));
    }
    assert_eq!(status.code(), Some(130), "a clean stop");
    eprintln!(
        "{n_in} records, at most {max_queue} queued and {max_retrying} retrying, RSS at most {} MB",
        max_rss >> 20
    );
    assert!(
        max_rss < 200 << 20,
        "RSS {} MB with {max_queue} queued, {max_retrying} retrying",
        max_rss >> 20
    );
    let m = export(&store, &dir.path().join("out"));
    assert_eq!(
        m.len(),
        n_in,
        "records in = kept + removed + pending after the stop"
    );
    let pending = count(&m, "pending");
    assert!(pending >= 1000, "{pending} pending");
    Waiting {
        max_queue,
        max_retrying,
        pending,
    }
}
