//! Criterion benchmarks of the hot paths:
//! - `score/*`: the default rules over real record texts (from sample_data through ingest);
//! - `scan/nvd`: read + extract + score of an NVD-shaped file made by `gen-nvd` (16 MiB);
//! - `score_cold/realdata`: the default rules over diverse real texts (the first 384 KB of texts of
//!   each feed of `../shared/realdata`), each iteration with a fresh copy of the rules, so with
//!   a cold lazy-DFA cache as a scan of new records meets it. `score/*` repeats a few hundred texts
//!   and runs on a warm cache, which hid a 2-3x slowdown of larger rule sets on real data.
//!
//! Run: `cargo bench --bench rules` (pin to one core with `taskset -c 0` for per-core figures).
//! `CYBERFILTER_BENCH_RULES=FILE` scores with that rule file instead of the default rules, to
//! compare two rule sets back to back with the same build.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use cyberfilter::cli::gen_nvd;
use cyberfilter::ingest::{discover, read_file, scored_texts, IngestOptions};
use cyberfilter::rules::{tier_for, RuleSet};
use std::hint::black_box;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

fn sample_texts(dir: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample_data")
        .join(dir);
    let texts = scored_texts(&[root]).expect("sample_data");
    assert!(!texts.is_empty(), "no records in sample_data/{dir}");
    texts
}

/// The default rules, or the file named by `CYBERFILTER_BENCH_RULES`.
fn bench_rules() -> RuleSet {
    match std::env::var_os("CYBERFILTER_BENCH_RULES") {
        Some(path) => RuleSet::from_file(Path::new(&path)).expect("CYBERFILTER_BENCH_RULES"),
        None => RuleSet::default_rules(),
    }
}

fn bench_score(c: &mut Criterion) {
    let rules = bench_rules();
    let mut group = c.benchmark_group("score");
    for dir in ["nvd", "attack", "cwe", "nonsecurity"] {
        let texts = sample_texts(dir);
        let bytes: usize = texts.iter().map(String::len).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_with_input(BenchmarkId::from_parameter(dir), &texts, |b, texts| {
            b.iter(|| {
                let mut total = 0.0f32;
                for t in texts {
                    total += rules.score(black_box(t)).score;
                }
                total
            })
        });
    }
    group.finish();
}

/// Up to `budget` bytes of scored texts from each feed folder of `../shared/realdata`, or `None`
/// (with a note) when that folder is not there.
fn realdata_texts(budget: usize) -> Option<Vec<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/realdata");
    if !root.is_dir() {
        eprintln!(
            "score_cold/realdata skipped: {} not found (the shared real data)",
            root.display()
        );
        return None;
    }
    let mut texts = Vec::new();
    for feed in [
        "nvd",
        "cve5",
        "attack",
        "capec",
        "cwe",
        "nonsecurity",
        "arxiv",
    ] {
        let dir = root.join(feed);
        let Ok(files) = discover(std::slice::from_ref(&dir)) else {
            eprintln!("score_cold/realdata: no {} (left out)", dir.display());
            continue;
        };
        let mut bytes = 0;
        for file in files {
            read_file(&file, &IngestOptions::default(), &mut |r| {
                if let Ok(rec) = r {
                    if rec.scored {
                        bytes += rec.text.len();
                        texts.push(rec.text);
                    }
                }
                if bytes < budget {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                }
            });
            if bytes >= budget {
                break;
            }
        }
    }
    Some(texts)
}

fn bench_score_cold(c: &mut Criterion) {
    let Some(texts) = realdata_texts(384 << 10) else {
        return;
    };
    let rules = bench_rules();
    let bytes: usize = texts.iter().map(String::len).sum();
    let mut group = c.benchmark_group("score_cold");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_with_input(
        BenchmarkId::from_parameter("realdata"),
        &texts,
        |b, texts| {
            // A clone of the rules has its own, empty regex caches.
            b.iter_batched(
                || rules.clone(),
                |rules| {
                    let mut total = 0.0f32;
                    for t in texts {
                        total += rules.score(black_box(t)).score;
                    }
                    total
                },
                BatchSize::PerIteration,
            )
        },
    );
    group.finish();
}

fn bench_scan(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("nvd-16m.json");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    gen_nvd::generate(&mut f, 2026, 16 << 20).unwrap();
    drop(f);
    let size = std::fs::metadata(&path).unwrap().len();
    let rules = bench_rules();
    let t = rules.thresholds();
    let opts = IngestOptions::default();

    let mut group = c.benchmark_group("scan");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(size));
    group.bench_function("nvd", |b| {
        b.iter(|| {
            let mut kept = 0u64;
            read_file(&path, &opts, &mut |r| {
                if let Ok(rec) = r {
                    let s = rules.score(&rec.text);
                    let tier = tier_for(s.score, rec.text.len(), rec.scored, &t);
                    kept += u64::from(tier == cyberfilter::rules::Tier::Keep);
                }
                ControlFlow::Continue(())
            });
            kept
        })
    });
    group.finish();
}

criterion_group!(benches, bench_score, bench_score_cold, bench_scan);
criterion_main!(benches);
