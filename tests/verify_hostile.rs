//! A hostile verifier server against the real engine (`cyberfilter run --verifier http`): a
//! local server that is good for the startup check and the first requests, then closes the
//! connection mid-body, answers garbage or truncated JSON, answers 200 without log-probs,
//! trickles its answer slower than the timeout (slowloris), answers as another model, or
//! flaps between down and up. Each time: the run finishes, the records whose answers failed
//! stay pending and visible in the export, nothing is dropped (records in = kept + removed +
//! pending), and a resume against the recovered server asks only those records again (none
//! decided twice) and leaves nothing pending. Memory stays bounded with a thousand records
//! waiting for a slow server.

mod common;

use common::{cyberfilter_cmd, export_lines, root, stderr};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
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
}

struct Server {
    url: String,
    /// Requests answered well from this many on: the hostile part is before.
    mode: Arc<Mutex<Mode>>,
    /// Record texts asked, in order (the user message of each request).
    asked: Arc<Mutex<Vec<String>>>,
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

fn serve(mut s: TcpStream, mode: Mode, n: usize, good_first: usize, asked: &Mutex<Vec<String>>) {
    let Some(body) = common::read_json_request(&mut s) else {
        return;
    };
    let text = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let mode = if n < good_first { Mode::Good } else { mode };
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
        let stop = Arc::new(AtomicBool::new(false));
        let (m, a, st) = (mode.clone(), asked.clone(), stop.clone());
        std::thread::spawn(move || {
            let count = Arc::new(AtomicUsize::new(0));
            while !st.load(Ordering::Relaxed) {
                let Ok((s, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let (m, a, count) = (*m.lock().unwrap(), a.clone(), count.clone());
                std::thread::spawn(move || {
                    s.set_nonblocking(false).unwrap();
                    std::thread::sleep(delay);
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    serve(s, m, n, good_first, &a);
                });
            }
        });
        Server {
            url,
            mode,
            asked,
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

fn hostile(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let input = root().join("sample_data/nvd/nvd-api2.0-page0-sample.json");
    let n_in = 60;
    let store = dir.path().join("h.cfrun");
    // The startup probe and the first 12 records are answered well, the rest hostile.
    let server = Server::start(mode, 13, Duration::ZERO);
    let t = Instant::now();
    let first = run(&store, &input, &server.url, &[]);
    let took = t.elapsed();
    let err = stderr(&first);
    assert_eq!(first.status.code(), Some(0), "{mode:?}: {err}");
    assert!(
        took < Duration::from_secs(120),
        "{mode:?}: the run took {took:?}"
    );
    assert!(
        err.contains("verifier"),
        "{mode:?}: the failures are reported: {err}"
    );
    let a = export(&store, &dir.path().join("a"));
    let pending = count(&a, "pending");
    assert_eq!(
        a.len(),
        n_in,
        "{mode:?}: records in = kept + removed + pending"
    );
    assert_eq!(count(&a, "kept") + count(&a, "removed") + pending, n_in);
    assert!(
        pending > 0,
        "{mode:?}: the hostile answers left records pending"
    );
    if mode != Mode::Flapping {
        assert_eq!(
            pending,
            n_in - 12,
            "{mode:?}: every hostile answer stays pending"
        );
    }
    for (k, (v, p)) in &a {
        assert_eq!(v == "pending", p.is_none(), "{mode:?}: {k:?} {v} {p:?}");
    }
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
    // The startup probe plus one request per pending record (equal texts share an answer).
    assert!(
        asked_after.len() <= pending + 1,
        "{mode:?}: {} asked",
        asked_after.len()
    );
    for t in &asked_after[1..] {
        assert!(
            !asked_before.contains(t) || t.contains("Log4j"),
            "{mode:?}: asked twice"
        );
    }
    // Decided once: the answers of the first run are unchanged.
    for (k, (v, p)) in &a {
        if v != "pending" {
            assert_eq!(&b[k], &(v.clone(), *p), "{mode:?}: {k:?} decided again");
        }
    }
    let _ = server.good_first;
}

#[test]
fn hostile_server_closes_the_connection_mid_body() {
    hostile(Mode::CloseMidBody);
}

#[test]
fn hostile_server_answers_garbage() {
    hostile(Mode::Garbage);
}

#[test]
fn hostile_server_answers_truncated_json() {
    hostile(Mode::TruncatedJson);
}

#[test]
fn hostile_server_answers_200_without_log_probs() {
    hostile(Mode::NoLogprobs);
}

#[test]
fn hostile_server_is_slower_than_the_timeout() {
    hostile(Mode::Slowloris);
}

#[test]
fn hostile_server_answers_as_another_model() {
    hostile(Mode::WrongModel);
}

#[test]
fn hostile_server_flaps_between_down_and_up() {
    hostile(Mode::Flapping);
}

/// A thousand records wait for a slow server: the engine's memory stays bounded (it holds
/// queue entries, not texts), and a clean stop keeps every record (pending ones included).
#[test]
fn thousands_waiting_for_a_slow_server_keep_memory_bounded() {
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
    let server = Server::start(Mode::Good, 0, Duration::from_millis(300));
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
    let (mut max_rss, mut max_queue) = (0u64, 0u64);
    let t = Instant::now();
    while let Ok(v) = rx.recv_timeout(Duration::from_secs(90)) {
        max_rss = max_rss.max(v["rss_bytes"].as_u64().unwrap_or(0));
        max_queue = max_queue.max(v["verifier_queue"].as_u64().unwrap_or(0));
        if v["records_read"].as_u64() == Some(n_in as u64) && t.elapsed() > Duration::from_secs(3) {
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
        "{n_in} records, at most {max_queue} waiting, RSS at most {} MB",
        max_rss >> 20
    );
    assert!(max_queue >= 1000, "{max_queue} waiting");
    assert!(
        max_rss < 200 << 20,
        "RSS {} MB with {max_queue} waiting",
        max_rss >> 20
    );
    let m = export(&store, &dir.path().join("out"));
    assert_eq!(
        m.len(),
        n_in,
        "records in = kept + removed + pending after the stop"
    );
    assert!(count(&m, "pending") >= 1000);
}
