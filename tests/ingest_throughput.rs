//! A quick throughput check of the readers (not the benchmark suite): builds an NVD-shaped
//! file (256 MB, or `INGEST_MB`) from the real page-0 file and times `read_file` over it,
//! then prints the peak RSS of the process.
//! Run: `cargo test --release --test ingest_throughput -- --ignored --nocapture`

mod common;

use common::{realdata_path, replicate_nvd_page, root};
use cyberfilter::ingest::{read_file, IngestOptions};
use std::ops::ControlFlow;
use std::time::Instant;

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
    let page = [
        realdata_path("nvd/nvd-api2.0-page0-startIndex0-2000cves_reaphsoft.json"),
        root().join("sample_data/nvd/nvd-api2.0-page0-sample.json"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .expect("an NVD page to replicate");
    let dir = tempfile::tempdir().unwrap();
    // INGEST_SHAPE=jsonl writes one NVD item per line instead of an API page.
    let jsonl = std::env::var("INGEST_SHAPE").is_ok_and(|s| s == "jsonl");
    let big = dir.path().join(if jsonl {
        "nvd-big.jsonl"
    } else {
        "nvd-big.json"
    });
    let mb: u64 = std::env::var("INGEST_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let n = replicate_nvd_page(&page, &big, mb, jsonl);
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
