//! Verifier throughput at batch sizes 1, 8, 16, 32 on arXiv abstracts from the shared realdata
//! (falls back to built-in texts). Until `cyberfilter bench verifier` is wired, run:
//!     cargo run --release --example bench_verifier -- [RECORDS] [MAX_TEXT_TOKENS] [MODEL]
use cyberfilter::verify::mlx::{bench::bench, default_model_path, MlxOptions, MlxVerifier};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let records: usize = args.get(1).map_or(Ok(32), |s| s.parse())?;
    let max_text_tokens: usize = args.get(2).map_or(Ok(256), |s| s.parse())?;
    let model = args.get(3).map_or_else(default_model_path, Into::into);
    let sample = "../shared/realdata/arxiv/arxiv-cs-sample100_albertomontero.labelled.jsonl";
    let mut texts: Vec<String> = std::fs::read_to_string(sample)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|r| {
            format!(
                "{}\n{}",
                r["title"].as_str().unwrap_or(""),
                r["abstract"].as_str().unwrap_or("")
            )
        })
        .collect();
    if texts.is_empty() {
        texts =
            vec!["A heap overflow in the TLS parser allows remote code execution.".into(); records];
    }
    texts.truncate(records);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let options = MlxOptions {
        max_text_tokens,
        ..Default::default()
    };
    let load = std::time::Instant::now();
    let mut verifier = MlxVerifier::load_with(&model, options)?;
    println!(
        "loaded {} in {:.2}s",
        model.display(),
        load.elapsed().as_secs_f64()
    );
    // One size at a time, so each row shows as soon as it is measured.
    for size in [1, 8, 16, 32] {
        let report = bench(&mut verifier, &refs, &[size])?;
        print!("{report}");
    }
    Ok(())
}
