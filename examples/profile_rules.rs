//! Scores the texts of sample_data/<dir> with the default rules N times, for `perf record`.
//! Run: `cargo run --release --example profile_rules -- nvd 200` (`RULES=FILE` for another
//! rule file); e.g. `perf record -g target/release/examples/profile_rules nvd 5000`.
use cyberfilter::ingest::scored_texts;
use cyberfilter::rules::RuleSet;
use std::path::Path;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "nvd".into());
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample_data")
        .join(&dir);
    let texts = scored_texts(&[root]).expect("sample_data");
    let rules = match std::env::var_os("RULES") {
        Some(p) => RuleSet::from_file(Path::new(&p)).unwrap(),
        None => RuleSet::default_rules(),
    };
    let bytes: usize = texts.iter().map(String::len).sum();
    let start = std::time::Instant::now();
    let mut total = 0.0f32;
    for _ in 0..rounds {
        for t in &texts {
            total += rules.score(std::hint::black_box(t)).score;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{dir}: {} texts, {:.1} MiB/s ({total})",
        texts.len(),
        (bytes * rounds) as f64 / secs / (1 << 20) as f64
    );
}
