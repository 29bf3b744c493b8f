//! Builds a [`Model`] from named tensors, whichever checkpoint they came from: GGUF names
//! (`blk.N.attn_q.weight`) or Hugging Face ones (`model.layers.N.self_attn.q_proj.weight`).
//! Both loaders share this, so shapes, quantized triplets and the tied head are checked the
//! same way, and [`super::convert`] uses the same name table to write a folder back.

use std::collections::HashMap;
use std::path::Path;

use mlx_rs::{Array, Dtype};

use super::model::{Layer, Linear, Model, ModelConfig, Weight};
use super::LoadError;

/// The tensors of one decoder layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    AttnNorm,
    Q,
    K,
    V,
    O,
    QNorm,
    KNorm,
    FfnNorm,
    Gate,
    Up,
    Down,
}

/// Where a checkpoint format keeps each tensor; names are prefixes, `.weight` / `.bias` /
/// `.scales` / `.biases` are appended.
pub struct Layout {
    pub layer: fn(usize, Part) -> String,
    pub embed: &'static str,
    pub norm: &'static str,
    pub head: &'static str,
}

/// llama.cpp's names.
pub const GGUF: Layout = Layout {
    layer: |i, part| {
        let s = match part {
            Part::AttnNorm => "attn_norm",
            Part::Q => "attn_q",
            Part::K => "attn_k",
            Part::V => "attn_v",
            Part::O => "attn_output",
            Part::QNorm => "attn_q_norm",
            Part::KNorm => "attn_k_norm",
            Part::FfnNorm => "ffn_norm",
            Part::Gate => "ffn_gate",
            Part::Up => "ffn_up",
            Part::Down => "ffn_down",
        };
        format!("blk.{i}.{s}")
    },
    embed: "token_embd",
    norm: "output_norm",
    head: "output",
};

/// transformers' (and mlx_lm's) names for LlamaForCausalLM / Qwen2ForCausalLM / Qwen3ForCausalLM.
pub const HF: Layout = Layout {
    layer: |i, part| {
        let s = match part {
            Part::AttnNorm => "input_layernorm",
            Part::Q => "self_attn.q_proj",
            Part::K => "self_attn.k_proj",
            Part::V => "self_attn.v_proj",
            Part::O => "self_attn.o_proj",
            Part::QNorm => "self_attn.q_norm",
            Part::KNorm => "self_attn.k_norm",
            Part::FfnNorm => "post_attention_layernorm",
            Part::Gate => "mlp.gate_proj",
            Part::Up => "mlp.up_proj",
            Part::Down => "mlp.down_proj",
        };
        format!("model.layers.{i}.{s}")
    },
    embed: "model.embed_tokens",
    norm: "model.norm",
    head: "lm_head",
};

/// Bit widths MLX's affine quantization packs (`mlx.core.quantize`).
pub const SUPPORTED_BITS: [i32; 6] = [2, 3, 4, 5, 6, 8];

/// Finds the `(group_size, bits)` of a quantized triplet from its tensor prefix and the packed
/// weight / scales shapes, or says why it cannot.
pub type QuantRule<'a> = &'a dyn Fn(&str, &Array, &Array) -> Result<(i32, i32), String>;

/// Everything the builder needs besides the tensors.
pub struct Build<'a> {
    pub layout: &'a Layout,
    pub quant: QuantRule<'a>,
    /// Keep quantized linears packed, and dense ones in their stored dtype.
    pub keep_quantized: bool,
    /// The checkpoint must have its own head (an untied model); otherwise a missing head ties
    /// it to the embedding.
    pub require_head: bool,
}

/// Takes the model's tensors out of `arrays` (what is left was not used) and checks shapes.
pub fn build_model(
    path: &Path,
    config: ModelConfig,
    arrays: &mut HashMap<String, Array>,
    b: &Build,
) -> Result<Model, LoadError> {
    let c = &config;
    let (q_out, kv_out) = (c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim);
    let mut layers = Vec::with_capacity(c.n_layers);
    for i in 0..c.n_layers {
        let p = |part| (b.layout.layer)(i, part);
        let mut lin = |part, out_in| linear(path, arrays, &p(part), out_in, b);
        let (q, k, v) = (
            lin(Part::Q, (q_out, c.dim))?,
            lin(Part::K, (kv_out, c.dim))?,
            lin(Part::V, (kv_out, c.dim))?,
        );
        let o = lin(Part::O, (c.dim, q_out))?;
        let (gate, up) = (
            lin(Part::Gate, (c.hidden_dim, c.dim))?,
            lin(Part::Up, (c.hidden_dim, c.dim))?,
        );
        let down = lin(Part::Down, (c.dim, c.hidden_dim))?;
        let w = |part| format!("{}.weight", p(part));
        layers.push(Layer {
            attn_norm: vector(path, arrays, &w(Part::AttnNorm), c.dim)?,
            q,
            k,
            v,
            o,
            q_norm: optional_vector(path, arrays, &w(Part::QNorm), c.head_dim)?,
            k_norm: optional_vector(path, arrays, &w(Part::KNorm), c.head_dim)?,
            ffn_norm: vector(path, arrays, &w(Part::FfnNorm), c.dim)?,
            gate,
            up,
            down,
        });
    }
    let embed_weight = weight(path, arrays, b.layout.embed, b)?;
    let head_key = format!("{}.weight", b.layout.head);
    let head = if arrays.contains_key(&head_key) {
        weight(path, arrays, b.layout.head, b)?
    } else if b.require_head {
        return Err(LoadError::new(
            path,
            format!(
                "tensor {head_key} is missing (the model does not tie its head to the embedding)"
            ),
        ));
    } else {
        embed_weight.clone()
    };
    if head.out_in() != (c.vocab_size, c.dim) || embed_weight.out_in() != (c.vocab_size, c.dim) {
        return Err(LoadError::new(
            path,
            format!(
                "embedding {:?} / head {:?} do not match vocab {} x dim {}",
                embed_weight.out_in(),
                head.out_in(),
                c.vocab_size,
                c.dim
            ),
        ));
    }
    let embed = embed_weight
        .to_dense_f32()
        .map_err(|e| LoadError::new(path, format!("{}: {e}", b.layout.embed)))?;
    let norm = vector(path, arrays, &format!("{}.weight", b.layout.norm), c.dim)?;
    let model = Model {
        config,
        embed,
        layers,
        norm,
        head,
    };
    model
        .materialize()
        .map_err(|e| LoadError::new(path, e.to_string()))?;
    Ok(model)
}

fn vector(
    path: &Path,
    arrays: &mut HashMap<String, Array>,
    name: &str,
    len: i32,
) -> Result<Array, LoadError> {
    optional_vector(path, arrays, name, len)?
        .ok_or_else(|| LoadError::new(path, format!("tensor {name} is missing")))
}

fn optional_vector(
    path: &Path,
    arrays: &mut HashMap<String, Array>,
    name: &str,
    len: i32,
) -> Result<Option<Array>, LoadError> {
    let Some(a) = arrays.remove(name) else {
        return Ok(None);
    };
    if a.shape() != [len] {
        return Err(LoadError::new(
            path,
            format!("tensor {name} has shape {:?}, expected [{len}]", a.shape()),
        ));
    }
    a.as_dtype(Dtype::Float32)
        .map(Some)
        .map_err(|e| LoadError::new(path, format!("{name}: {e}")))
}

fn linear(
    path: &Path,
    arrays: &mut HashMap<String, Array>,
    prefix: &str,
    out_in: (i32, i32),
    b: &Build,
) -> Result<Linear, LoadError> {
    let weight = weight(path, arrays, prefix, b)?;
    if weight.out_in() != out_in {
        return Err(LoadError::new(
            path,
            format!(
                "tensor {prefix}.weight has shape {:?}, expected {out_in:?}",
                weight.out_in()
            ),
        ));
    }
    let bias = optional_vector(path, arrays, &format!("{prefix}.bias"), out_in.0)?;
    Ok(Linear { weight, bias })
}

/// One weight matrix: dense as f32 (or as stored when keeping quantized weights), or a
/// quantized triplet, dequantized to f32 unless kept.
fn weight(
    path: &Path,
    arrays: &mut HashMap<String, Array>,
    prefix: &str,
    b: &Build,
) -> Result<Weight, LoadError> {
    let mlx = |e: mlx_rs::error::Exception| LoadError::new(path, format!("{prefix}: {e}"));
    let w = arrays
        .remove(&format!("{prefix}.weight"))
        .ok_or_else(|| LoadError::new(path, format!("tensor {prefix}.weight is missing")))?;
    if w.ndim() != 2 {
        return Err(LoadError::new(
            path,
            format!(
                "tensor {prefix}.weight has shape {:?}, expected a matrix",
                w.shape()
            ),
        ));
    }
    let scales = arrays.remove(&format!("{prefix}.scales"));
    let biases = arrays.remove(&format!("{prefix}.biases"));
    let weight = match (scales, biases) {
        (Some(scales), Some(biases)) => {
            let bad = |why: String| {
                LoadError::new(
                    path,
                    format!("tensor {prefix}: unsupported quantisation layout: {why}"),
                )
            };
            if w.dtype() != Dtype::Uint32 {
                return Err(bad(format!(
                    "packed weight is {:?}, expected uint32",
                    w.dtype()
                )));
            }
            if scales.ndim() != 2 || scales.shape() != biases.shape() {
                return Err(bad(format!(
                    "scales {:?} and biases {:?} must be equal matrices",
                    scales.shape(),
                    biases.shape()
                )));
            }
            let (group_size, bits) = (b.quant)(prefix, &w, &scales).map_err(bad)?;
            if !SUPPORTED_BITS.contains(&bits) {
                return Err(bad(format!(
                    "{bits}-bit weights (supported: {SUPPORTED_BITS:?})"
                )));
            }
            let (rows, w_cols, s_cols) = (w.shape()[0], w.shape()[1], scales.shape()[1]);
            let n_in = s_cols * group_size;
            if scales.shape()[0] != rows || w_cols * 32 != bits * n_in {
                return Err(bad(format!(
                    "{w_cols} packed columns and {s_cols} groups of {group_size} do not fit {bits}-bit weights"
                )));
            }
            Weight::Quantized {
                w,
                scales,
                biases,
                group_size,
                bits,
            }
        }
        (None, None) => Weight::Dense(w),
        _ => {
            return Err(LoadError::new(
                path,
                format!("tensor {prefix}: scales without biases (or the reverse)"),
            ))
        }
    };
    if b.keep_quantized {
        return Ok(weight);
    }
    Ok(Weight::Dense(weight.to_dense_f32().map_err(mlx)?))
}
