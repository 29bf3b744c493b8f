//! Whole-run benchmark (ignored by default): builds an NVD-shaped file (default 1 GiB) from the
//! real page-0 file, then times `cyberfilter run` (store on) against a read+score pass over the
//! same file (`cyberfilter scan` when the binary has it, else the same work in-process), and
//! checks the run's peak memory.
//!
//! Run: `CYBERFILTER_BENCH_MB=1024 cargo test --release --test engine_bench -- --ignored --nocapture`

mod common;

use common::{cyberfilter_cmd, json, realdata, replicate_nvd_page};
use cyberfilter::ingest::{read_file, IngestOptions};
use cyberfilter::rules::RuleSet;
use std::ops::ControlFlow;
use std::process::Stdio;
use std::time::Instant;

#[test]
#[ignore = "benchmark; run in release with --ignored --nocapture"]
fn whole_run_throughput_and_memory() {
    let Some(page) = realdata("nvd/nvd-api2.0-page0-startIndex0-2000cves_reaphsoft.json") else {
        return;
    };
    let mb: u64 = std::env::var("CYBERFILTER_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("nvd-big.json");
    let n = replicate_nvd_page(&page, &big, mb, false);
    let size = std::fs::metadata(&big).unwrap().len();
    println!("input: {n} records, {:.0} MB", size as f64 / 1e6);

    // Baseline: read and score only.
    let has_scan = cyberfilter_cmd()
        .args(["scan", "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let t = Instant::now();
    let baseline = if has_scan {
        let st = cyberfilter_cmd()
            .arg("scan")
            .arg(&big)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        "cyberfilter scan"
    } else {
        let rules = RuleSet::default_rules();
        let mut total = 0f32;
        read_file(&big, &IngestOptions::default(), &mut |r| {
            if let Ok(r) = r {
                total += rules.score(&r.text).score;
            }
            ControlFlow::Continue(())
        });
        assert!(total > 0.0);
        "read_file + RuleSet::score in-process (no scan subcommand in this build)"
    };
    let scan_s = t.elapsed().as_secs_f64();

    let store = dir.path().join("bench.cfrun");
    let t = Instant::now();
    let out = cyberfilter_cmd()
        .arg("run")
        .arg(&big)
        .arg("--store")
        .arg(&store)
        .args(["--progress", "none", "--verifier", "none"])
        .env("CYBERFILTER_DATA_DIR", dir.path())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let run_s = t.elapsed().as_secs_f64();
    assert!(out.status.success());
    let summary = json(&out);
    assert_eq!(summary["records_read"].as_u64(), Some(n));
    let peak = summary["peak_rss_bytes"].as_u64().unwrap();
    let store_mb = std::fs::metadata(&store).unwrap().len() as f64 / 1e6;
    println!(
        "baseline ({baseline}): {scan_s:.2}s = {:.0} MB/s",
        size as f64 / 1e6 / scan_s
    );
    println!(
        "cyberfilter run (store on): {run_s:.2}s = {:.0} MB/s, {:.0} records/s, peak RSS {:.0} MB, store {store_mb:.0} MB",
        size as f64 / 1e6 / run_s,
        n as f64 / run_s,
        peak as f64 / 1048576.0
    );
    println!("run/baseline throughput: {:.2}", scan_s / run_s);
    assert!(peak < 128 << 20, "peak RSS {peak}");
    assert!(
        scan_s / run_s >= 0.5,
        "run is slower than half the baseline"
    );
}
