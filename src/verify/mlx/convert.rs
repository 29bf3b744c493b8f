//! A GGUF model written back out as a Hugging Face folder: `model.safetensors` with the
//! weights exactly as the GGUF path uses them (dequantized to f32, or cast to f16/bf16), Llama's
//! Q/K rows un-permuted to the Hugging Face order, `config.json`, `tokenizer.json`,
//! `tokenizer_config.json` (with the chat template) and `generation_config.json`. The folder
//! loads through [`super::hf`], in transformers and in mlx_lm, so the two load paths can be
//! compared and other runtimes can serve the same model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mlx_rs::{Array, Dtype};
use serde_json::{json, Value};

use super::gguf::{self, GgufModel};
use super::model::{Linear, Model, Weight};
use super::weights::{Part, HF};
use super::LoadError;

/// The dtype of the written weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutDtype {
    F32,
    F16,
    Bf16,
}

impl OutDtype {
    fn mlx(self) -> Dtype {
        match self {
            OutDtype::F32 => Dtype::Float32,
            OutDtype::F16 => Dtype::Float16,
            OutDtype::Bf16 => Dtype::Bfloat16,
        }
    }

    /// The name transformers uses in `torch_dtype`.
    pub fn torch_name(self) -> &'static str {
        match self {
            OutDtype::F32 => "float32",
            OutDtype::F16 => "float16",
            OutDtype::Bf16 => "bfloat16",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The GGUF could not be read.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A file of the folder could not be written.
    #[error("{path}: {reason}")]
    Write { path: String, reason: String },
}

fn write_err(path: &Path, reason: impl std::fmt::Display) -> ConvertError {
    ConvertError::Write {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// What was written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConvertReport {
    pub out: PathBuf,
    pub arch: String,
    pub dtype: &'static str,
    pub tensors: usize,
    /// Size of `model.safetensors`.
    pub bytes: u64,
    pub tied_embeddings: bool,
    /// Llama Q/K rows were put back into the Hugging Face order.
    pub unpermuted_qk: bool,
    pub files: Vec<String>,
}

/// Files of an earlier folder that would change how the new one loads (stale shards, a chat
/// template file that overrides `tokenizer_config.json`); removed before writing.
fn stale_files(out: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(out) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            (name.starts_with("model") && name.ends_with(".safetensors"))
                || matches!(
                    name,
                    "model.safetensors.index.json" | "chat_template.jinja" | "chat_template.json"
                )
        })
        .collect()
}

/// Converts `gguf_path` into a Hugging Face folder at `out` (created if needed; files of the
/// same names are replaced).
pub fn convert(
    gguf_path: &Path,
    out: &Path,
    dtype: OutDtype,
) -> Result<ConvertReport, ConvertError> {
    let loaded = gguf::load(gguf_path, false)?;
    if loaded.model.config.rope_periods.is_some() {
        // Its per-pair factors do not say which `rope_scaling` parameters made them, and a
        // config.json without them would load as plain RoPE and give wrong logits.
        return Err(LoadError::new(
            gguf_path,
            "scaled RoPE (tensor rope_freqs.weight) cannot be written as a config.json yet".into(),
        )
        .into());
    }
    let tensors = hf_tensors(gguf_path, &loaded.model, dtype)?;
    let tied = !tensors.contains_key(&format!("{}.weight", HF.head));
    std::fs::create_dir_all(out).map_err(|e| write_err(out, e))?;
    for stale in stale_files(out) {
        std::fs::remove_file(&stale).map_err(|e| write_err(&stale, e))?;
    }

    let weights = out.join("model.safetensors");
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    Array::save_safetensors(tensors.iter(), &metadata, &weights)
        .map_err(|e| write_err(&weights, e))?;
    let bytes = std::fs::metadata(&weights)
        .map_err(|e| write_err(&weights, e))?
        .len();

    let files = [
        ("config.json", config_json(&loaded, dtype, tied)),
        ("tokenizer_config.json", tokenizer_config_json(&loaded)),
        ("generation_config.json", generation_config_json(&loaded)),
    ];
    for (name, value) in &files {
        let path = out.join(name);
        let text = serde_json::to_string_pretty(value).map_err(|e| write_err(&path, e))?;
        std::fs::write(&path, text + "\n").map_err(|e| write_err(&path, e))?;
    }
    let tokenizer = out.join("tokenizer.json");
    loaded
        .tokenizer
        .save(&tokenizer, false)
        .map_err(|e| write_err(&tokenizer, e))?;

    let mut names: Vec<String> = vec!["model.safetensors".into(), "tokenizer.json".into()];
    names.extend(files.iter().map(|(n, _)| n.to_string()));
    names.sort();
    Ok(ConvertReport {
        out: out.to_path_buf(),
        arch: loaded.model.config.arch.clone(),
        dtype: dtype.torch_name(),
        tensors: tensors.len(),
        bytes,
        tied_embeddings: tied,
        unpermuted_qk: loaded.model.config.rope_traditional,
        files: names,
    })
}

/// The model's tensors under Hugging Face names, in the Hugging Face row order.
pub fn hf_tensors(
    path: &Path,
    model: &Model,
    dtype: OutDtype,
) -> Result<HashMap<String, Array>, LoadError> {
    let c = &model.config;
    let mlx =
        |what: &str, e: mlx_rs::error::Exception| LoadError::new(path, format!("{what}: {e}"));
    let mut out = HashMap::new();
    let mut put = |name: String, a: Array| -> Result<(), LoadError> {
        let a = a.as_dtype(dtype.mlx()).map_err(|e| mlx(&name, e))?;
        out.insert(name, a);
        Ok(())
    };
    let dense = |what: &str, w: &Weight| w.to_dense_f32().map_err(|e| mlx(what, e));
    let unpermute = |what: &str, a: Array, heads: i32| -> Result<Array, LoadError> {
        if !c.rope_traditional {
            return Ok(a);
        }
        unpermute_rows(&a, heads, c.head_dim).map_err(|e| mlx(what, e))
    };
    let embed_name = format!("{}.weight", HF.embed);
    put(embed_name, model.embed.clone())?;
    let head = dense("head", &model.head)?;
    // A tied GGUF has no `output` tensor and its head is the embedding itself.
    let tied = head.shape() == model.embed.shape()
        && head.eq_values(&model.embed).map_err(|e| mlx("head", e))?;
    if !tied {
        put(format!("{}.weight", HF.head), head)?;
    }
    put(format!("{}.weight", HF.norm), model.norm.clone())?;
    for (i, layer) in model.layers.iter().enumerate() {
        let name = |part| (HF.layer)(i, part);
        let mut linear = |part: Part, lin: &Linear, heads: Option<i32>| -> Result<(), LoadError> {
            let p = name(part);
            let mut w = dense(&p, &lin.weight)?;
            let mut b = lin.bias.clone();
            if let Some(h) = heads {
                w = unpermute(&p, w, h)?;
                b = b.map(|b| unpermute(&p, b, h)).transpose()?;
            }
            put(format!("{p}.weight"), w)?;
            if let Some(b) = b {
                put(format!("{p}.bias"), b)?;
            }
            Ok(())
        };
        linear(Part::Q, &layer.q, Some(c.n_heads))?;
        linear(Part::K, &layer.k, Some(c.n_kv_heads))?;
        linear(Part::V, &layer.v, None)?;
        linear(Part::O, &layer.o, None)?;
        linear(Part::Gate, &layer.gate, None)?;
        linear(Part::Up, &layer.up, None)?;
        linear(Part::Down, &layer.down, None)?;
        put(
            format!("{}.weight", name(Part::AttnNorm)),
            layer.attn_norm.clone(),
        )?;
        put(
            format!("{}.weight", name(Part::FfnNorm)),
            layer.ffn_norm.clone(),
        )?;
        // Qwen3's per-head norms; llama.cpp does not permute Qwen rows, so they stay as they are.
        if let Some(n) = &layer.q_norm {
            put(format!("{}.weight", name(Part::QNorm)), n.clone())?;
        }
        if let Some(n) = &layer.k_norm {
            put(format!("{}.weight", name(Part::KNorm)), n.clone())?;
        }
    }
    Ok(out)
}

/// llama.cpp stores each Llama head's Q/K rows as (pair, 2), for adjacent-pair RoPE; Hugging
/// Face as (2, pair), for split-half RoPE: row `2j + s` of a head goes to row `s * head_dim/2 + j`.
/// Works on weights `(heads * head_dim, in)` and biases `(heads * head_dim)`.
pub fn unpermute_rows(
    a: &Array,
    heads: i32,
    head_dim: i32,
) -> Result<Array, mlx_rs::error::Exception> {
    let shape = a.shape().to_vec();
    let mut split = vec![heads, head_dim / 2, 2];
    split.extend_from_slice(&shape[1..]);
    a.reshape(&split)?.swap_axes(1, 2)?.reshape(&shape)
}

/// An f32 as the decimal it was written from (`1e-5`, not `9.99999974e-6`).
fn short_f64(v: f32) -> f64 {
    format!("{v}").parse().unwrap_or(v as f64)
}

fn token_id(loaded: &GgufModel, token: &Option<String>) -> Value {
    token
        .as_deref()
        .and_then(|t| loaded.tokenizer.token_to_id(t))
        .map_or(Value::Null, |id| json!(id))
}

fn config_json(loaded: &GgufModel, dtype: OutDtype, tied: bool) -> Value {
    let c = &loaded.model.config;
    let class = super::hf::ARCHITECTURES
        .iter()
        .find(|(t, _)| *t == c.arch)
        .map_or("LlamaForCausalLM", |(_, class)| class);
    let layer = loaded.model.layers.first();
    let qkv_bias = layer.is_some_and(|l| l.q.bias.is_some());
    let mut config = json!({
        "architectures": [class],
        "model_type": c.arch,
        "hidden_size": c.dim,
        "intermediate_size": c.hidden_dim,
        "num_hidden_layers": c.n_layers,
        "num_attention_heads": c.n_heads,
        "num_key_value_heads": c.n_kv_heads,
        "head_dim": c.head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": short_f64(c.rms_eps),
        "rope_theta": short_f64(c.rope_theta),
        "rope_scaling": null,
        "vocab_size": c.vocab_size,
        "tie_word_embeddings": tied,
        "max_position_embeddings": loaded.context_length.unwrap_or(2048),
        "torch_dtype": dtype.torch_name(),
        "bos_token_id": token_id(loaded, &loaded.bos_token),
        "eos_token_id": token_id(loaded, &loaded.eos_token),
        "use_cache": true,
    });
    // Qwen2 always has q/k/v biases; Llama and Qwen3 say so with a flag.
    if c.arch != "qwen2" {
        config["attention_bias"] = json!(qkv_bias);
    }
    if c.arch == "llama" {
        config["mlp_bias"] = json!(false);
    }
    config
}

fn tokenizer_config_json(loaded: &GgufModel) -> Value {
    // The template our loader would fall back to, written out so other runtimes use the same.
    let template = loaded
        .chat_template
        .clone()
        .unwrap_or_else(|| super::prompt::CHATML.to_string());
    json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": loaded.bos_token,
        "eos_token": loaded.eos_token,
        "pad_token": loaded.eos_token,
        "unk_token": null,
        "add_bos_token": false,
        "add_eos_token": false,
        "clean_up_tokenization_spaces": false,
        "model_max_length": loaded.context_length.unwrap_or(2048),
        "chat_template": template,
    })
}

fn generation_config_json(loaded: &GgufModel) -> Value {
    json!({
        "bos_token_id": token_id(loaded, &loaded.bos_token),
        "eos_token_id": token_id(loaded, &loaded.eos_token),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_rows_go_back_to_split_halves() {
        // Two heads of four rows, one column: GGUF order 0..8 per row index.
        let rows: Vec<f32> = (0..8).map(|i| i as f32).collect();
        let w = Array::from_slice(&rows, &[8, 1]);
        let hf = unpermute_rows(&w, 2, 4).unwrap();
        assert_eq!(hf.as_slice::<f32>(), &[0., 2., 1., 3., 4., 6., 5., 7.]);
        let b = Array::from_slice(&rows, &[8]);
        let hf_b = unpermute_rows(&b, 2, 4).unwrap();
        assert_eq!(hf_b.as_slice::<f32>(), hf.as_slice::<f32>());
    }

    #[test]
    fn written_floats_keep_their_decimal_form() {
        assert_eq!(short_f64(1e-5), 1e-5);
        assert_eq!(short_f64(1e-6), 1e-6);
        assert_eq!(short_f64(100000.0), 100000.0);
    }
}
