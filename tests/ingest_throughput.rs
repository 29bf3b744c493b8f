//! A quick throughput check of the readers (not the benchmark suite): builds an NVD-shaped
//! file (256 MB, or `INGEST_MB`) from the real page-0 file and times `read_file` over it,
//! then prints the peak RSS of the process.
//! Run: `cargo test --release --test ingest_throughput -- --ignored --nocapture`

use cyberfilter::ingest::{read_file, IngestOptions};
use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

const PAGE0: &str = "../shared/realdata/nvd/nvd-api2.0-page0-startIndex0-2000cves_reaphsoft.json";
const SAMPLE: &str = "sample_data/nvd/nvd-api2.0-page0-sample.json";

/// CPU time of this thread: a per-core figure that other processes on the machine disturb less
/// than wall time does.
fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
#[ignore = "timing check; run in release with --ignored --nocapture"]
fn nvd_read_and_extract_throughput() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = [root.join(PAGE0), root.join(SAMPLE)]
        .into_iter()
        .find(|p| p.exists())
        .expect("an NVD page to replicate");
    let raw = std::fs::read_to_string(&page).unwrap();
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let elems: Vec<String> = v["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    // INGEST_SHAPE=jsonl writes one NVD item per line instead of an API page.
    let jsonl = std::env::var("INGEST_SHAPE").is_ok_and(|s| s == "jsonl");
    let big = dir.path().join(if jsonl {
        "nvd-big.jsonl"
    } else {
        "nvd-big.json"
    });
    let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
    if !jsonl {
        write!(f, "{{\"resultsPerPage\":2000,\"format\":\"NVD_CVE\",\"version\":\"2.0\",\"vulnerabilities\":[").unwrap();
    }
    let mb: u64 = std::env::var("INGEST_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let target = mb << 20;
    let (mut written, mut n) = (0u64, 0u64);
    while written < target {
        for e in &elems {
            if n > 0 {
                f.write_all(if jsonl { b"\n" } else { b"," }).unwrap();
            }
            f.write_all(e.as_bytes()).unwrap();
            written += e.len() as u64 + 1;
            n += 1;
        }
    }
    if !jsonl {
        write!(f, "]}}").unwrap();
    }
    f.flush().unwrap();
    drop(f);
    drop(elems);
    drop(v);
    drop(raw);
    println!("peak RSS after building the file: {:?} kB", peak_rss_kb());
    // Reset the high-water mark so the figure below is the reading alone (Linux).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    println!("peak RSS reset to: {:?} kB", peak_rss_kb());
    let opts = IngestOptions::default();
    for round in 0..3 {
        let t = Instant::now();
        let cpu = thread_cpu_secs();
        let mut text_bytes = 0usize;
        let sum = read_file(&big, &opts, &mut |r| {
            text_bytes += r.unwrap().text.len();
            ControlFlow::Continue(())
        });
        let secs = t.elapsed().as_secs_f64();
        let cpu_secs = thread_cpu_secs() - cpu;
        assert_eq!(sum.records, n);
        let mb = sum.bytes as f64 / 1e6;
        println!(
            "round {round}: {} records, {mb:.1} MB in {secs:.2}s wall = {:.0} MB/s; {cpu_secs:.2}s CPU = {:.0} MB/s per core (text {text_bytes} B)",
            sum.records,
            mb / secs,
            mb / cpu_secs
        );
    }
    println!("peak RSS after reading: {:?} kB", peak_rss_kb());
}
