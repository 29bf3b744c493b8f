//! Our own decoder forward pass on mlx-rs ops, for the Llama family (SmolLM2, Llama 3.x) and
//! Qwen2/2.5/3 (q/k/v bias, q/k norm, tied or untied head).
//!
//! A verdict needs only the logits at the last position of one prefill, so there is no KV cache
//! across calls: `logits_at` runs a whole right-padded batch once and returns `(B, vocab)`
//! logits; the prompt head the rows share is computed once per batch ([`Model::prefix`]).

use mlx_rs::error::Exception;
use mlx_rs::{fast, ops, Array, Dtype};

/// Shape and numerics of a model, read from GGUF metadata or a Hugging Face `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// `llama`, `qwen2` or `qwen3`.
    pub arch: String,
    pub n_layers: usize,
    pub dim: i32,
    pub n_heads: i32,
    pub n_kv_heads: i32,
    pub head_dim: i32,
    pub hidden_dim: i32,
    pub vocab_size: i32,
    pub rms_eps: f32,
    pub rope_theta: f32,
    /// llama.cpp permutes Llama Q/K rows for its "normal" RoPE, which is MLX's traditional one.
    pub rope_traditional: bool,
    /// When a RoPE scaling (Llama 3.1+ `llama3`) changes the rotation speeds: per rotated pair,
    /// the period over 2π (`rope_theta^(2i/d)` unscaled), as MLX's `fast::rope` takes `freqs`.
    pub rope_periods: Option<Vec<f32>>,
}

impl ModelConfig {
    /// Unscaled RoPE periods `theta^(2i/d)` for `i < d/2`.
    pub fn plain_rope_periods(theta: f32, head_dim: i32) -> Vec<f32> {
        (0..head_dim / 2)
            .map(|i| (theta as f64).powf(2.0 * i as f64 / head_dim as f64) as f32)
            .collect()
    }
}

/// A linear layer `y = x W^T (+ b)`, dense or MLX affine-quantized.
#[derive(Debug, Clone)]
pub enum Weight {
    /// `(out, in)` floating point.
    Dense(Array),
    /// MLX affine quantization: packed `u32` weights `(out, in*bits/32)`, scales and biases
    /// `(out, in/group)`.
    Quantized {
        w: Array,
        scales: Array,
        biases: Array,
        group_size: i32,
        bits: i32,
    },
}

impl Weight {
    pub fn apply(&self, x: &Array) -> Result<Array, Exception> {
        match self {
            Weight::Dense(w) => x.matmul(w.t()),
            Weight::Quantized {
                w,
                scales,
                biases,
                group_size,
                bits,
            } => ops::quantized_matmul(x, w, scales, biases, true, *group_size, *bits),
        }
    }

    /// The `(out, in)` matrix as f32 (dequantized when needed).
    pub fn to_dense_f32(&self) -> Result<Array, Exception> {
        match self {
            Weight::Dense(w) => w.as_dtype(Dtype::Float32),
            Weight::Quantized {
                w,
                scales,
                biases,
                group_size,
                bits,
            } => {
                // GGUF scales/biases are f16; dequantizing in f16 would round every weight.
                let scales = scales.as_dtype(Dtype::Float32)?;
                let biases = biases.as_dtype(Dtype::Float32)?;
                ops::dequantize(w, &scales, &biases, *group_size, *bits)
            }
        }
    }

    /// `(out, in)` of the logical matrix.
    pub fn out_in(&self) -> (i32, i32) {
        match self {
            Weight::Dense(w) => (w.shape()[0], w.shape()[1]),
            Weight::Quantized { w, bits, .. } => (w.shape()[0], w.shape()[1] * 32 / bits),
        }
    }
}

#[derive(Debug)]
pub struct Linear {
    pub weight: Weight,
    pub bias: Option<Array>,
}

impl Linear {
    pub fn apply(&self, x: &Array) -> Result<Array, Exception> {
        let y = self.weight.apply(x)?;
        match &self.bias {
            Some(b) => y.add(b),
            None => Ok(y),
        }
    }
}

#[derive(Debug)]
pub struct Layer {
    pub attn_norm: Array,
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    /// Qwen3 normalises each query/key head before RoPE.
    pub q_norm: Option<Array>,
    pub k_norm: Option<Array>,
    pub ffn_norm: Array,
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

#[derive(Debug)]
pub struct Model {
    pub config: ModelConfig,
    /// `(vocab, dim)` f32 rows looked up by token id.
    pub embed: Array,
    pub layers: Vec<Layer>,
    pub norm: Array,
    /// LM head; the embedding matrix when the model ties them.
    pub head: Weight,
}

impl Model {
    /// Evaluates every weight once, so load errors surface at load and not in the first batch.
    pub fn materialize(&self) -> Result<(), Exception> {
        let mut all: Vec<&Array> = vec![&self.embed, &self.norm];
        for layer in &self.layers {
            all.push(&layer.attn_norm);
            all.push(&layer.ffn_norm);
            for lin in [
                &layer.q,
                &layer.k,
                &layer.v,
                &layer.o,
                &layer.gate,
                &layer.up,
                &layer.down,
            ] {
                match &lin.weight {
                    Weight::Dense(a) => all.push(a),
                    Weight::Quantized {
                        w, scales, biases, ..
                    } => {
                        all.extend([w, scales, biases]);
                    }
                }
                if let Some(b) = &lin.bias {
                    all.push(b);
                }
            }
            all.extend(layer.q_norm.iter().chain(layer.k_norm.iter()));
        }
        match &self.head {
            Weight::Dense(a) => all.push(a),
            Weight::Quantized {
                w, scales, biases, ..
            } => all.extend([w, scales, biases]),
        }
        mlx_rs::transforms::eval(all)
    }

    /// Keys and values of `tokens` at every layer, for rows that all start with them.
    pub fn prefix(&self, tokens: &[u32]) -> Result<SharedPrefix, Exception> {
        let ids: Vec<i32> = tokens.iter().map(|&t| t as i32).collect();
        let len = ids.len() as i32;
        let mut h = self
            .embed
            .take_axis(Array::from_slice(&ids, &[1, len]), 0)?;
        let mask = causal_mask(len as usize, 0);
        let mut kv = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            // The last layer's output is never read: MLX's lazy graph leaves it uncomputed.
            let (next, k, v) = self.layer_forward(layer, &h, None, &mask)?;
            kv.push((k, v));
            h = next;
        }
        Ok(SharedPrefix { len, kv })
    }

    /// Logits at position `last[b]` of every row: `tokens` is `(B, L)` i32, right-padded (the
    /// padding comes after each row's last token, so causal attention never lets a real token
    /// see it, and every row sits at the positions it has alone). With `prefix`, the rows
    /// continue it: their positions start at its length and they attend to its keys.
    /// Returns `(B, vocab)` f32.
    pub fn logits_at(
        &self,
        tokens: &Array,
        last: &[i32],
        prefix: Option<&SharedPrefix>,
    ) -> Result<Array, Exception> {
        let (logits, _) = self.forward_pooled(tokens, last, prefix, None)?;
        logits.ok_or_else(|| Exception::custom("forward pass stopped before the LM head"))
    }

    /// [`Self::logits_at`] that also mean-pools hidden states over each row's span
    /// ([`Pooling`]): one `(B, dim)` array per requested layer, in the order asked. With
    /// `pool.logits == false` the pass stops after the deepest requested layer (no later
    /// layers, no LM head) and returns no logits.
    pub fn forward_pooled(
        &self,
        tokens: &Array,
        last: &[i32],
        prefix: Option<&SharedPrefix>,
        pool: Option<&Pooling>,
    ) -> Result<(Option<Array>, Vec<Array>), Exception> {
        let (b, l) = (tokens.shape()[0], tokens.shape()[1]);
        let c = &self.config;
        let n = self.layers.len();
        let past = prefix.map_or(0, |p| p.len);
        let mask = causal_mask(l as usize, past as usize);
        let depth = match pool {
            Some(p) if !p.logits => p.layers.iter().copied().max().unwrap_or(n).min(n),
            _ => n,
        };
        let weights = pool.map(|p| p.weights(b, l)).transpose()?;
        let mut pooled: Vec<Option<Array>> = vec![None; pool.map_or(0, |p| p.layers.len())];
        let mut h = self.embed.take_axis(tokens, 0)?; // (B, L, dim)
        for (i, layer) in self.layers.iter().enumerate().take(depth) {
            let past_kv = prefix.map(|p| &p.kv[i]);
            h = self.layer_forward(layer, &h, past_kv, &mask)?.0;
            if let (Some(p), Some(w)) = (pool, &weights) {
                for (slot, &want) in p.layers.iter().enumerate() {
                    if want == i + 1 {
                        // The last layer is read after the final norm, as the LM head reads it.
                        let x = if want == n {
                            fast::rms_norm(&h, Some(&self.norm), c.rms_eps)?
                        } else {
                            h.clone()
                        };
                        // (B, 1, L) x (B, L, dim) -> (B, 1, dim)
                        let m = w.matmul(&x)?.reshape(&[b, c.dim])?;
                        pooled[slot] = Some(m.as_dtype(Dtype::Float32)?);
                    }
                }
            }
        }
        let pooled: Vec<Array> = pooled
            .into_iter()
            .map(|p| p.ok_or_else(|| Exception::custom("a pooled layer is out of range")))
            .collect::<Result<_, _>>()?;
        if depth < n {
            return Ok((None, pooled));
        }
        let rows: Vec<i32> = last
            .iter()
            .enumerate()
            .map(|(row, &at)| row as i32 * l + at)
            .collect();
        let last = h
            .reshape(&[b * l, c.dim])?
            .take_axis(Array::from_slice(&rows, &[b]), 0)?; // (B, dim)
        let last = fast::rms_norm(&last, Some(&self.norm), c.rms_eps)?;
        Ok((
            Some(self.head.apply(&last)?.as_dtype(Dtype::Float32)?),
            pooled,
        ))
    }

    /// One decoder layer over `h` `(B, L, dim)` whose positions start after `past` (keys and
    /// values `(1, KV, P, D)` of a shared prefix); returns the new hidden state and this block's
    /// keys (after RoPE) and values.
    fn layer_forward(
        &self,
        layer: &Layer,
        h: &Array,
        past: Option<&(Array, Array)>,
        mask: &Array,
    ) -> Result<(Array, Array, Array), Exception> {
        let (b, l) = (h.shape()[0], h.shape()[1]);
        let c = &self.config;
        let hd = c.head_dim;
        let scale = 1.0 / (hd as f32).sqrt();
        let offset = past.map_or(0, |(k, _)| k.shape()[2]);
        let x = fast::rms_norm(h, Some(&layer.attn_norm), c.rms_eps)?;
        let heads = |lin: &Linear, n: i32, norm: Option<&Array>| -> Result<Array, Exception> {
            let y = lin.apply(&x)?.reshape(&[b, l, n, hd])?;
            let y = match norm {
                Some(w) => fast::rms_norm(&y, Some(w), c.rms_eps)?,
                None => y,
            };
            y.transpose_axes(&[0, 2, 1, 3])
        };
        let q = heads(&layer.q, c.n_heads, layer.q_norm.as_ref())?;
        let k = heads(&layer.k, c.n_kv_heads, layer.k_norm.as_ref())?;
        let v = heads(&layer.v, c.n_kv_heads, None)?;
        // Scaled RoPE passes its periods; plain RoPE derives them from the base.
        let periods = c
            .rope_periods
            .as_ref()
            .map(|p| Array::from_slice(p, &[p.len() as i32]));
        let base = periods.is_none().then_some(c.rope_theta);
        let rope = |x: &Array| {
            fast::rope(
                x,
                hd,
                c.rope_traditional,
                base,
                1.0,
                offset,
                periods.as_ref(),
            )
        };
        let (q, k) = (rope(&q)?, rope(&k)?);
        let (keys, values) = match past {
            None => (k.clone(), v.clone()),
            Some((pk, pv)) => {
                let shape = |a: &Array| [b, a.shape()[1], a.shape()[2], a.shape()[3]];
                (
                    ops::concatenate(&[ops::broadcast_to(pk, &shape(pk))?, k.clone()], 2)?,
                    ops::concatenate(&[ops::broadcast_to(pv, &shape(pv))?, v.clone()], 2)?,
                )
            }
        };
        let o = attention(&q, &keys, &values, scale, mask)?;
        let o = o
            .transpose_axes(&[0, 2, 1, 3])?
            .reshape(&[b, l, c.n_heads * hd])?;
        let h = h.add(layer.o.apply(&o)?)?;
        let x = fast::rms_norm(&h, Some(&layer.ffn_norm), c.rms_eps)?;
        let gated = silu_mul(&layer.gate.apply(&x)?, &layer.up.apply(&x)?)?;
        Ok((h.add(layer.down.apply(&gated)?)?, k, v))
    }
}

/// Which hidden states a forward pass mean-pools, and over which positions of each row.
#[derive(Debug, Clone, PartialEq)]
pub struct Pooling {
    /// 1-based layer numbers whose output is pooled; the last layer (`n_layers`) is read after
    /// the final norm.
    pub layers: Vec<usize>,
    /// Per row, the half-open span `[start, end)` of positions averaged (the record's own
    /// tokens in the row as computed; an empty span pools to zeros).
    pub spans: Vec<(usize, usize)>,
    /// Run the whole model and return the logits too; `false` stops after the deepest layer.
    pub logits: bool,
}

impl Pooling {
    /// `(B, 1, L)` averaging weights: `1/len` inside each row's span, 0 elsewhere.
    fn weights(&self, b: i32, l: i32) -> Result<Array, Exception> {
        if self.spans.len() != b as usize {
            return Err(Exception::custom(format!(
                "pooling has {} spans for {b} rows",
                self.spans.len()
            )));
        }
        let mut w = vec![0.0f32; (b * l) as usize];
        for (row, &(start, end)) in self.spans.iter().enumerate() {
            let end = end.min(l as usize);
            if end > start {
                let v = 1.0 / (end - start) as f32;
                w[row * l as usize + start..row * l as usize + end].fill(v);
            }
        }
        Ok(Array::from_slice(&w, &[b, 1, l]))
    }
}

/// Keys and values (after RoPE) of a prompt head shared by every row of a batch, per layer,
/// `(1, KV, P, D)` each: computed once instead of once a row.
#[derive(Debug)]
pub struct SharedPrefix {
    pub len: i32,
    kv: Vec<(Array, Array)>,
}

impl SharedPrefix {
    /// Computes the keys and values now, so a prefix kept across batches is not recomputed
    /// as part of every batch's lazy graph.
    pub fn eval(&self) -> Result<(), Exception> {
        mlx_rs::transforms::eval(self.kv.iter().flat_map(|(k, v)| [k, v]))
    }
}

/// MLX's CPU build for x86-64 evaluates `exp` (hence `softmax`, `sigmoid`, `silu`,
/// `log_softmax`) through out-of-line `fma` calls: 20-80 ns an element, 50x a multiply, and
/// more time than all the matmuls of a layer (examples/profile_forward.rs). The attention
/// softmax and the MLP's `silu(gate) * up` run as Rust kernels ([`super::cpu_kernels`]); the
/// one softmax over the vocabulary at the last position uses `power(2, x)` (libm's `powf`,
/// 3-13x cheaper than MLX's `exp`, equal within 2e-7). Metal has fused kernels for all of
/// these, so macOS keeps MLX's own ops.
const CPU_MATH: bool = !cfg!(target_os = "macos");

fn exp_via_pow2(x: &Array) -> Result<Array, Exception> {
    Array::from_f32(2.0).power(x.multiply(Array::from_f32(std::f32::consts::LOG2_E))?)
}

/// Log-softmax over the last axis (`x - logsumexp(x)`).
pub fn log_softmax_last(x: &Array) -> Result<Array, Exception> {
    if !CPU_MATH {
        return mlx_rs::nn::log_softmax(x, -1);
    }
    let m = x.max_axis(-1, true)?;
    let shifted = x.subtract(&m)?;
    shifted.subtract(exp_via_pow2(&shifted)?.sum_axis(-1, true)?.log()?)
}

/// `silu(gate) * up`, with `silu(g) = g / (1 + e^-g)`.
fn silu_mul(gate: &Array, up: &Array) -> Result<Array, Exception> {
    if !CPU_MATH {
        return mlx_rs::nn::silu(gate)?.multiply(up);
    }
    super::cpu_kernels::silu_mul(gate, up)
}

/// Scaled dot-product attention with grouped KV heads: `q` `(B, H, L, D)`, `k`/`v`
/// `(B, KV, S, D)`, additive causal `mask` `(L, S)` (query `i` sees keys `0..=S-L+i`). On the
/// CPU MLX's `fast` version falls back to slow composed ops; here the query heads of one KV
/// head are stacked into one `(rep*L, D) x (D, S)` matmul per KV head, and the softmax is
/// [`super::cpu_kernels::causal_softmax`], which applies that same causal rule itself.
fn attention(
    q: &Array,
    k: &Array,
    v: &Array,
    scale: f32,
    mask: &Array,
) -> Result<Array, Exception> {
    if !CPU_MATH {
        return fast::scaled_dot_product_attention(q, k, v, scale, mask, None);
    }
    let qs = q.shape();
    let (b, h, l, d) = (qs[0], qs[1], qs[2], qs[3]);
    let kv = k.shape()[1];
    let rep = h / kv;
    let q = q
        .multiply(Array::from_f32(scale))?
        .reshape(&[b, kv, rep * l, d])?;
    let scores = q.matmul(k.transpose_axes(&[0, 1, 3, 2])?)?; // (B, KV, rep*L, S)
    let p = super::cpu_kernels::causal_softmax(&scores, l as usize)?;
    p.matmul(v)?.reshape(&[b, h, l, d])
}

/// The additive causal mask `(L, past + L)` of a block whose `L` queries follow `past` keys.
pub fn causal_mask(len: usize, past: usize) -> Array {
    let keys = past + len;
    let mut data = vec![0.0f32; len * keys];
    for i in 0..len {
        for j in past + i + 1..keys {
            data[i * keys + j] = f32::NEG_INFINITY;
        }
    }
    Array::from_slice(&data, &[len as i32, keys as i32])
}
