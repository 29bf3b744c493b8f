//! `cyberfilter bench verifier`: records/s, prompt tokens/s and batch fill of the MLX verifier
//! at several batch sizes, on the same texts, in one process.

use std::fmt;
use std::time::Instant;

use super::{MlxStats, MlxVerifier};
use crate::verify::{Verifier, VerifyError};

/// One measured batch size.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRow {
    pub batch: usize,
    pub records: usize,
    pub seconds: f64,
    pub records_per_s: f64,
    pub prompt_tokens_per_s: f64,
    /// Real tokens over computed (padded) positions.
    pub fill: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    pub model_id: String,
    pub rows: Vec<BenchRow>,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "verifier {}", self.model_id)?;
        writeln!(f, "batch  records  seconds  records/s  prompt tok/s  fill")?;
        for r in &self.rows {
            writeln!(
                f,
                "{:>5}  {:>7}  {:>7.2}  {:>9.2}  {:>12.0}  {:>4.2}",
                r.batch, r.records, r.seconds, r.records_per_s, r.prompt_tokens_per_s, r.fill
            )?;
        }
        Ok(())
    }
}

/// Runs `texts` through the verifier at each batch size, the way the engine sends them
/// (consecutive chunks of `batch`), after one warm-up batch.
pub fn bench(
    verifier: &mut MlxVerifier,
    texts: &[&str],
    batch_sizes: &[usize],
) -> Result<BenchReport, VerifyError> {
    let mut rows = Vec::new();
    if let Some(first) = texts.first() {
        verifier.verify_batch(&[first])?;
    }
    for &batch in batch_sizes {
        let batch = batch.max(1);
        verifier.options_mut().max_batch = batch;
        let before: MlxStats = verifier.stats().clone();
        let started = Instant::now();
        for chunk in texts.chunks(batch) {
            verifier.verify_batch(chunk)?;
        }
        let seconds = started.elapsed().as_secs_f64().max(1e-9);
        let after = verifier.stats();
        let delta = MlxStats {
            prompt_tokens: after.prompt_tokens - before.prompt_tokens,
            padded_tokens: after.padded_tokens - before.padded_tokens,
            ..MlxStats::default()
        };
        rows.push(BenchRow {
            batch,
            records: texts.len(),
            seconds,
            records_per_s: texts.len() as f64 / seconds,
            prompt_tokens_per_s: delta.prompt_tokens as f64 / seconds,
            fill: delta.fill(),
        });
    }
    Ok(BenchReport {
        model_id: verifier.model_id(),
        rows,
    })
}
