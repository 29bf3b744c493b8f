//! `cyberfilter bench verifier`: records/s, prompt tokens/s, batch fill and achieved GFLOP/s of
//! the MLX verifier at several batch sizes, on the same texts, in one process, beside this
//! machine's sgemm peak measured through MLX itself.
//!
//! The FLOP count is a model of the work, not a hardware counter: see [`FLOP_FORMULA`].

use std::time::Instant;

use mlx_rs::Array;
use serde::Serialize;

use super::model::ModelConfig;
use super::{scoring, MlxVerifier};
use crate::verify::{Verifier, VerifyError};

/// How [`forward_flops`] counts, for the output.
pub const FLOP_FORMULA: &str = "FLOPs of one forward batch (rows x L padded positions after a \
shared prompt head of P0 positions, computed once) = 2*P*(P0 + rows*L) (every layer's q,k,v,o,\
gate,up,down matmuls; P = their weights, one multiply-add each per position) + \
4*(heads*head_dim)*layers*(P0^2 + rows*L*(P0+L)) (QK^T and PV over every query-key pair, as \
computed) + 2*dim*vocab*rows (LM head at the last position only); norms, RoPE, softmax and the \
embedding lookup are not counted";

/// Weights of every layer's matmuls, i.e. multiply-adds per position (LM head excluded).
pub fn matmul_params_per_token(c: &ModelConfig) -> f64 {
    let (dim, hidden) = (c.dim as f64, c.hidden_dim as f64);
    let q_out = (c.n_heads * c.head_dim) as f64;
    let kv_out = (c.n_kv_heads * c.head_dim) as f64;
    let per_layer = dim * q_out + 2.0 * dim * kv_out + q_out * dim + 3.0 * dim * hidden;
    per_layer * c.n_layers as f64
}

/// FLOPs of one forward batch of `rows` sequences padded to `len` positions after a shared head
/// of `prefix` positions ([`FLOP_FORMULA`]). With no prefix: `2 P rows L + 4 L^2 d layers rows
/// + 2 dim vocab rows`.
pub fn forward_flops(c: &ModelConfig, rows: usize, len: usize, prefix: usize) -> f64 {
    let (rows, len, p0) = (rows as f64, len as f64, prefix as f64);
    let attn = 4.0 * (c.n_heads * c.head_dim) as f64 * c.n_layers as f64;
    2.0 * matmul_params_per_token(c) * (p0 + rows * len)
        + attn * (p0 * p0 + rows * len * (p0 + len))
        + 2.0 * c.dim as f64 * c.vocab_size as f64 * rows
}

/// FLOPs of sending these prompts in consecutive chunks of `batch`, each chunk bucketed into
/// forward batches and each batch's shared head computed once, exactly as
/// [`MlxVerifier::answer`] does.
/// With `cached_head` > 0 every row continues the verifier's cached prompt head of that many
/// tokens (computed once per model, so not counted here).
pub fn planned_flops(
    c: &ModelConfig,
    prompts: &[Vec<u32>],
    batch: usize,
    limits: scoring::BatchLimits,
    cached_head: usize,
) -> f64 {
    prompts
        .chunks(batch.max(1))
        .flat_map(|chunk| {
            // Bucketed by what each row costs after the cached head, as `answer` does.
            let lengths = scoring::lengths_after_head(chunk, cached_head);
            scoring::buckets(&lengths, limits)
                .into_iter()
                .map(move |g| {
                    let rows: Vec<&[u32]> = g.iter().map(|&i| chunk[i].as_slice()).collect();
                    let longest = rows.iter().map(|r| r.len()).max().unwrap_or(0);
                    if cached_head > 0 && rows.iter().all(|r| r.len() > cached_head) {
                        // The head alone (no rows): what the cache saves each batch.
                        let head = forward_flops(c, 0, 0, cached_head);
                        return forward_flops(c, rows.len(), longest - cached_head, cached_head)
                            - head;
                    }
                    let shared = scoring::shared_prefix_len(&rows);
                    forward_flops(c, rows.len(), longest - shared, shared)
                })
        })
        .sum()
}

/// This machine's f32 matmul speed through MLX (and whatever BLAS it runs on).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SgemmPeak {
    /// Side of the square matmul that was fastest.
    pub n: usize,
    pub seconds: f64,
    pub gflops: f64,
}

/// Square f32 matmuls of each size in `sizes`, `reps` timed runs each after one warm-up; the
/// best rate (2 n^3 FLOPs over the fastest run) wins.
pub fn sgemm_peak(sizes: &[usize], reps: usize) -> Result<SgemmPeak, VerifyError> {
    let fail = |e: mlx_rs::error::Exception| VerifyError::Failed(format!("sgemm peak: {e}"));
    let mut best: Option<SgemmPeak> = None;
    for &n in sizes {
        let values: Vec<f32> = (0..n * n)
            .map(|i| ((i % 251) as f32 - 125.0) / 125.0)
            .collect();
        let a = Array::from_slice(&values, &[n as i32, n as i32]);
        let b = a.t();
        a.matmul(&b).and_then(|c| c.eval()).map_err(fail)?;
        for _ in 0..reps.max(1) {
            let started = Instant::now();
            a.matmul(&b).and_then(|c| c.eval()).map_err(fail)?;
            let seconds = started.elapsed().as_secs_f64().max(1e-9);
            let gflops = 2.0 * (n as f64).powi(3) / seconds / 1e9;
            if best.as_ref().is_none_or(|b| gflops > b.gflops) {
                best = Some(SgemmPeak { n, seconds, gflops });
            }
        }
    }
    best.ok_or_else(|| VerifyError::Failed("sgemm peak: no sizes given".into()))
}

/// One measured batch size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchRow {
    pub batch: usize,
    pub records: usize,
    pub seconds: f64,
    pub records_per_s: f64,
    pub prompt_tokens_per_s: f64,
    /// Real tokens over computed (padded) positions.
    pub fill: f64,
    pub forward_batches: u64,
    /// [`planned_flops`] of this pass, in GFLOP, and that over `seconds`.
    pub gflop: f64,
    pub gflops: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    pub model_id: String,
    pub max_text_tokens: usize,
    /// Prompt tokens of one pass over the texts.
    pub prompt_tokens: usize,
    pub rows: Vec<BenchRow>,
}

/// Runs `texts` through the verifier at each batch size, the way the engine sends them
/// (consecutive chunks of `batch`), after one warm-up batch. `on_row` sees each row as soon as
/// it is measured.
pub fn bench(
    verifier: &mut MlxVerifier,
    texts: &[&str],
    batch_sizes: &[usize],
    mut on_row: impl FnMut(&BenchRow),
) -> Result<BenchReport, VerifyError> {
    let prompts: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| verifier.prompt_tokens(t))
        .collect::<Result<_, _>>()?;
    let config = verifier.config().clone();
    let mut rows = Vec::new();
    if let Some(first) = texts.first() {
        verifier.verify_batch(&[first])?;
    }
    for &batch in batch_sizes {
        let batch = batch.max(1);
        verifier.options_mut().max_batch = batch;
        let limits = verifier.batch_limits();
        let before = verifier.stats().clone();
        let started = Instant::now();
        for chunk in texts.chunks(batch) {
            verifier.verify_batch(chunk)?;
        }
        let seconds = started.elapsed().as_secs_f64().max(1e-9);
        let after = verifier.stats();
        let prompt = after.prompt_tokens - before.prompt_tokens;
        let padded = after.padded_tokens - before.padded_tokens;
        let gflop =
            planned_flops(&config, &prompts, batch, limits, verifier.cached_head_len()) / 1e9;
        let row = BenchRow {
            batch,
            records: texts.len(),
            seconds,
            records_per_s: texts.len() as f64 / seconds,
            prompt_tokens_per_s: prompt as f64 / seconds,
            fill: if padded == 0 {
                0.0
            } else {
                prompt as f64 / padded as f64
            },
            forward_batches: after.forward_batches - before.forward_batches,
            gflop,
            gflops: gflop / seconds,
        };
        on_row(&row);
        rows.push(row);
    }
    Ok(BenchReport {
        model_id: verifier.model_id(),
        max_text_tokens: verifier.options_mut().max_text_tokens,
        prompt_tokens: prompts.iter().map(Vec::len).sum(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ModelConfig {
        ModelConfig {
            arch: "llama".into(),
            n_layers: 2,
            dim: 4,
            n_heads: 2,
            n_kv_heads: 1,
            head_dim: 2,
            hidden_dim: 8,
            vocab_size: 10,
            rms_eps: 1e-5,
            rope_theta: 1e4,
            rope_traditional: false,
            rope_periods: None,
        }
    }

    #[test]
    fn params_per_token_counts_every_projection() {
        // q 4x4 + k,v 4x2 each + o 4x4 + gate,up,down 4x8 each = 16+16+16+96 = 144 per layer.
        assert_eq!(matmul_params_per_token(&config()), 288.0);
    }

    #[test]
    fn forward_flops_by_hand() {
        // 3 rows of 5 positions: 2*288*15 + 4*25*4*2*3 + 2*4*10*3.
        let want = 8640.0 + 2400.0 + 240.0;
        assert_eq!(forward_flops(&config(), 3, 5, 0), want);
        assert_eq!(forward_flops(&config(), 0, 5, 0), 0.0);
        // A shared head of 2 then 3 rows of 3: matmuls 2*288*(2+9), attention
        // 4*4*2*(2*2 + 3*3*(2+3)), head 2*4*10*3.
        let want = 6336.0 + 32.0 * 49.0 + 240.0;
        assert_eq!(forward_flops(&config(), 3, 3, 2), want);
    }

    #[test]
    fn smollm2_flops_per_token_is_about_twice_its_weights() {
        let c = ModelConfig {
            arch: "llama".into(),
            n_layers: 30,
            dim: 576,
            n_heads: 9,
            n_kv_heads: 3,
            head_dim: 64,
            hidden_dim: 1536,
            vocab_size: 49152,
            rms_eps: 1e-5,
            rope_theta: 1e5,
            rope_traditional: true,
            rope_periods: None,
        };
        // 106.2M weights outside the embedding: ~212 MFLOP a position before attention.
        assert!((matmul_params_per_token(&c) - 106_168_320.0).abs() < 1.0);
    }

    #[test]
    fn planned_flops_follow_the_buckets_and_the_shared_head() {
        let c = config();
        let p = |v: &[u32]| v.to_vec();
        // Rows share the head [1, 2]; lengths 5, 3, 5.
        let prompts = [p(&[1, 2, 3, 4, 5]), p(&[1, 2, 7]), p(&[1, 2, 3, 4, 6])];
        // Batch 1: every prompt alone at its own length, nothing shared.
        let lim = |rows, max_pad_fraction| scoring::BatchLimits {
            max_rows: rows,
            max_tokens: usize::MAX,
            max_pad_fraction,
        };
        let alone = forward_flops(&c, 1, 5, 0) * 2.0 + forward_flops(&c, 1, 3, 0);
        assert_eq!(planned_flops(&c, &prompts, 1, lim(1, 0.25), 0), alone);
        // Batch 4, no padding allowed: the two 5s share a batch (and the head [1,2,3,4]), the
        // 3 goes alone.
        let want = forward_flops(&c, 2, 1, 4) + forward_flops(&c, 1, 3, 0);
        assert_eq!(planned_flops(&c, &prompts, 4, lim(4, 0.0), 0), want);
        // Any padding allowed: one batch of 3 rows of 3 after the head [1, 2].
        assert_eq!(
            planned_flops(&c, &prompts, 4, lim(4, 1.0), 0),
            forward_flops(&c, 3, 3, 2)
        );
        // A cached head of [1, 2]: batch 1 pays only for each row after it, with attention
        // over the head's keys.
        let after = |len| forward_flops(&c, 1, len, 2) - forward_flops(&c, 0, 0, 2);
        assert_eq!(
            planned_flops(&c, &prompts, 1, lim(1, 0.25), 2),
            after(3) * 2.0 + after(1)
        );
        // A budget of 5 positions after that head: the two rows of 3 cannot share a batch.
        let budget = scoring::BatchLimits {
            max_tokens: 5,
            ..lim(4, 1.0)
        };
        assert_eq!(
            planned_flops(&c, &prompts, 4, budget, 2),
            after(3) * 2.0 + after(1)
        );
    }
}
