//! GGUF loading through mlx-rs `GgufFile`: F32 and F16 tensors arrive as they are, Q4_0, Q4_1
//! and Q8_0 as MLX affine "quantized triplets" (`name.weight` packed `u32`, `name.scales`,
//! `name.biases`, group size 32). Any other GGML type makes MLX refuse the file.

use std::collections::HashMap;
use std::path::Path;

use mlx_rs::io::{GgufFile, GgufMetadataValue};
use mlx_rs::{Array, Dtype};

use super::model::{Model, ModelConfig};
use super::weights::{self, Build};
use super::LoadError;

/// llama.cpp's GGUF quantized blocks all hold 32 values.
const GGUF_GROUP: i32 = 32;

/// Everything a GGUF file carries that the verifier needs.
pub struct GgufModel {
    pub model: Model,
    pub tokenizer: tokenizers::Tokenizer,
    pub chat_template: Option<String>,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    /// `general.name`, for the model id.
    pub name: Option<String>,
    /// `{arch}.context_length`, for a converted `config.json`.
    pub context_length: Option<i64>,
}

/// Typed access to GGUF metadata with errors that name the key.
pub struct Meta<'a> {
    file: &'a GgufFile,
    path: &'a Path,
}

impl<'a> Meta<'a> {
    pub fn error(&self, reason: String) -> LoadError {
        LoadError::new(self.path, reason)
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, LoadError> {
        match self.file.get_metadata(key) {
            Ok(Some(GgufMetadataValue::String(s))) => Ok(Some(s)),
            Ok(Some(_)) => Err(self.error(format!("metadata {key} is not a string"))),
            Ok(None) => Ok(None),
            Err(e) => Err(self.error(format!("metadata {key}: {e}"))),
        }
    }

    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, LoadError> {
        match self.file.get_metadata(key) {
            Ok(Some(GgufMetadataValue::Strings(s))) => Ok(Some(s)),
            Ok(Some(_)) => Err(self.error(format!("metadata {key} is not a string list"))),
            Ok(None) => Ok(None),
            Err(e) => Err(self.error(format!("metadata {key}: {e}"))),
        }
    }

    pub fn array(&self, key: &str) -> Result<Option<Array>, LoadError> {
        match self.file.get_metadata(key) {
            Ok(Some(GgufMetadataValue::Array(a))) => Ok(Some(a)),
            Ok(Some(_)) => Err(self.error(format!("metadata {key} is not numeric"))),
            Ok(None) => Ok(None),
            Err(e) => Err(self.error(format!("metadata {key}: {e}"))),
        }
    }

    fn scalar_f64(&self, key: &str) -> Result<Option<f64>, LoadError> {
        let Some(a) = self.array(key)? else {
            return Ok(None);
        };
        let a = a
            .as_dtype(Dtype::Float32)
            .map_err(|e| self.error(format!("metadata {key}: {e}")))?;
        match a.try_as_slice::<f32>() {
            Ok([v]) => Ok(Some(*v as f64)),
            Ok(_) => Err(self.error(format!("metadata {key} is not a scalar"))),
            Err(e) => Err(self.error(format!("metadata {key}: {e}"))),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, LoadError> {
        Ok(self.scalar_f64(key)?.map(|v| v as i64))
    }

    pub fn req_int(&self, key: &str) -> Result<i64, LoadError> {
        self.int(key)?
            .ok_or_else(|| self.error(format!("metadata {key} is missing")))
    }

    pub fn float(&self, key: &str) -> Result<Option<f64>, LoadError> {
        self.scalar_f64(key)
    }

    pub fn i32_list(&self, key: &str) -> Result<Option<Vec<i32>>, LoadError> {
        let Some(a) = self.array(key)? else {
            return Ok(None);
        };
        let a = a
            .as_dtype(Dtype::Int32)
            .map_err(|e| self.error(format!("metadata {key}: {e}")))?;
        a.try_as_slice::<i32>()
            .map(|s| Some(s.to_vec()))
            .map_err(|e| self.error(format!("metadata {key}: {e}")))
    }
}

/// Reads the first bytes to tell "not a GGUF" apart from a GGUF MLX cannot read.
fn check_magic(path: &Path) -> Result<(), LoadError> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(|e| LoadError::new(path, e.to_string()))?;
    match f.read_exact(&mut magic) {
        Ok(()) if &magic == b"GGUF" => Ok(()),
        _ => Err(LoadError::new(
            path,
            "not a GGUF file (no GGUF magic at the start)".into(),
        )),
    }
}

/// GGML tensor types this loader reads (MLX's GGUF reader handles exactly these).
const SUPPORTED_TYPES: [(u32, &str); 5] = [
    (0, "F32"),
    (1, "F16"),
    (2, "Q4_0"),
    (3, "Q4_1"),
    (8, "Q8_0"),
];

fn ggml_type_name(t: u32) -> String {
    const NAMES: [&str; 31] = [
        "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K",
        "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL",
        "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16",
    ];
    NAMES
        .get(t as usize)
        .map_or_else(|| format!("type {t}"), |n| n.to_string())
}

/// Reads the GGUF header (metadata skipped, tensor infos read) and rejects tensor types MLX
/// cannot load, before MLX sees the file: MLX would otherwise accept some of them as raw bytes.
fn check_tensor_types(path: &Path) -> Result<(), LoadError> {
    use std::io::{BufReader, Read, Seek, SeekFrom};
    let bad = |what: String| LoadError::new(path, format!("malformed GGUF header: {what}"));
    let file = std::fs::File::open(path).map_err(|e| LoadError::new(path, e.to_string()))?;
    let mut r = BufReader::new(file);
    let u32_ = |r: &mut BufReader<std::fs::File>| -> Result<u32, LoadError> {
        let mut b = [0u8; 4];
        r.read_exact(&mut b).map_err(|e| bad(e.to_string()))?;
        Ok(u32::from_le_bytes(b))
    };
    let u64_ = |r: &mut BufReader<std::fs::File>| -> Result<u64, LoadError> {
        let mut b = [0u8; 8];
        r.read_exact(&mut b).map_err(|e| bad(e.to_string()))?;
        Ok(u64::from_le_bytes(b))
    };
    let skip = |r: &mut BufReader<std::fs::File>, n: u64| -> Result<(), LoadError> {
        r.seek(SeekFrom::Current(n as i64))
            .map(|_| ())
            .map_err(|e| bad(e.to_string()))
    };
    let _magic = u32_(&mut r)?;
    let version = u32_(&mut r)?;
    if version < 2 {
        return Err(LoadError::new(
            path,
            format!("GGUF version {version} is not supported (need 2 or 3)"),
        ));
    }
    let n_tensors = u64_(&mut r)?;
    let n_kv = u64_(&mut r)?;
    fn scalar_size(t: u32) -> Option<u64> {
        match t {
            0 | 1 | 7 => Some(1),
            2 | 3 => Some(2),
            4..=6 => Some(4),
            10..=12 => Some(8),
            _ => None,
        }
    }
    for _ in 0..n_kv {
        let key_len = u64_(&mut r)?;
        skip(&mut r, key_len)?;
        let t = u32_(&mut r)?;
        let (elem, count) = if t == 9 {
            (u32_(&mut r)?, u64_(&mut r)?)
        } else {
            (t, 1)
        };
        if elem == 8 {
            for _ in 0..count {
                let len = u64_(&mut r)?;
                skip(&mut r, len)?;
            }
        } else {
            let size =
                scalar_size(elem).ok_or_else(|| bad(format!("metadata value type {elem}")))?;
            skip(&mut r, size * count)?;
        }
    }
    for _ in 0..n_tensors {
        let name_len = u64_(&mut r)?;
        let mut name = vec![0u8; name_len.min(1 << 16) as usize];
        r.read_exact(&mut name).map_err(|e| bad(e.to_string()))?;
        let n_dims = u32_(&mut r)?;
        skip(&mut r, 8 * n_dims as u64)?;
        let t = u32_(&mut r)?;
        let _offset = u64_(&mut r)?;
        if !SUPPORTED_TYPES.iter().any(|(id, _)| *id == t) {
            return Err(LoadError::new(
                path,
                format!(
                    "tensor {} has unsupported quantisation {} (supported: {})",
                    String::from_utf8_lossy(&name),
                    ggml_type_name(t),
                    SUPPORTED_TYPES.map(|(_, n)| n).join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Maps MLX's loader failure to a reason a user can act on.
fn explain_load_failure(path: &Path, message: String) -> LoadError {
    let lower = message.to_lowercase();
    let reason = if lower.contains("type") || lower.contains("quant") || lower.contains("support") {
        format!(
            "unsupported tensor type or quantisation (this loader reads F32, F16, Q4_0, Q4_1 and \
             Q8_0; K-quants and others are not supported): {message}"
        )
    } else {
        format!("cannot read GGUF: {message}")
    };
    LoadError::new(path, reason)
}

/// Loads a GGUF model file. `keep_quantized` keeps Q4/Q8 linears packed (fast on Metal); on
/// the CPU dense f32 is about 14x faster, so the CPU path dequantizes at load.
pub fn load(path: &Path, keep_quantized: bool) -> Result<GgufModel, LoadError> {
    if !path.exists() {
        return Err(LoadError::new(path, "file does not exist".into()));
    }
    check_magic(path)?;
    // mlx-rs insists on the extension; a valid GGUF without it gets a clear message.
    if path.extension().and_then(|e| e.to_str()) != Some("gguf") {
        return Err(LoadError::new(
            path,
            "GGUF files must have a .gguf extension".into(),
        ));
    }
    check_tensor_types(path)?;
    let file = GgufFile::load(path).map_err(|e| explain_load_failure(path, e.to_string()))?;
    let meta = Meta { file: &file, path };
    let arch = meta
        .string("general.architecture")?
        .ok_or_else(|| LoadError::new(path, "metadata general.architecture is missing".into()))?;
    if !matches!(arch.as_str(), "llama" | "qwen2" | "qwen3") {
        return Err(LoadError::new(
            path,
            format!("unsupported architecture {arch:?} (supported: llama, qwen2, qwen3)"),
        ));
    }
    let mut arrays: HashMap<String, Array> = file
        .arrays()
        .map_err(|e| explain_load_failure(path, e.to_string()))?;
    let config = config_from_meta(&meta, &arch, &arrays)?;
    let tokenizer = super::tokenizer::from_gguf(&meta)?;
    let vocab = tokenizer.get_vocab_size(true) as i32;
    if vocab != config.vocab_size {
        return Err(LoadError::new(
            path,
            format!(
                "tokenizer has {vocab} tokens but the embedding has {} rows",
                config.vocab_size
            ),
        ));
    }
    let token = |key: &str| -> Result<Option<String>, LoadError> {
        Ok(meta
            .int(key)?
            .and_then(|id| tokenizer.id_to_token(id as u32)))
    };
    let bos_token = token("tokenizer.ggml.bos_token_id")?;
    let eos_token = token("tokenizer.ggml.eos_token_id")?;
    let chat_template = meta.string("tokenizer.chat_template")?;
    let name = meta.string("general.name")?;
    let context_length = meta.int(&format!("{arch}.context_length"))?;
    let gguf_blocks = |_: &str, w: &Array, scales: &Array| -> Result<(i32, i32), String> {
        let n_in = scales.shape()[1] * GGUF_GROUP;
        match w.shape()[1] * 32 / n_in.max(1) {
            bits @ (4 | 8) => Ok((GGUF_GROUP, bits)),
            bits => Err(format!(
                "{bits}-bit blocks (GGUF Q4_0, Q4_1 and Q8_0 are 4 and 8)"
            )),
        }
    };
    let build = Build {
        layout: &weights::GGUF,
        quant: &gguf_blocks,
        keep_quantized,
        require_head: false,
    };
    let model = weights::build_model(path, config, &mut arrays, &build)?;
    Ok(GgufModel {
        model,
        tokenizer,
        chat_template,
        bos_token,
        eos_token,
        name,
        context_length,
    })
}

fn config_from_meta(
    meta: &Meta,
    arch: &str,
    arrays: &HashMap<String, Array>,
) -> Result<ModelConfig, LoadError> {
    let k = |s: &str| format!("{arch}.{s}");
    let dim = meta.req_int(&k("embedding_length"))? as i32;
    let n_heads = meta.req_int(&k("attention.head_count"))? as i32;
    let n_kv_heads = meta
        .int(&k("attention.head_count_kv"))?
        .map(|v| v as i32)
        .unwrap_or(n_heads);
    let head_dim = meta
        .int(&k("attention.key_length"))?
        .map(|v| v as i32)
        .unwrap_or(dim / n_heads.max(1));
    let embed_rows = arrays
        .get("token_embd.weight")
        .map(|a| a.shape()[0])
        .ok_or_else(|| meta.error("tensor token_embd.weight is missing".into()))?;
    let mut config = ModelConfig {
        arch: arch.to_string(),
        n_layers: meta.req_int(&k("block_count"))? as usize,
        dim,
        n_heads,
        n_kv_heads,
        head_dim,
        hidden_dim: meta.req_int(&k("feed_forward_length"))? as i32,
        vocab_size: embed_rows,
        rms_eps: meta
            .float(&k("attention.layer_norm_rms_epsilon"))?
            .unwrap_or(1e-5) as f32,
        rope_theta: meta.float(&k("rope.freq_base"))?.unwrap_or(10_000.0) as f32,
        rope_traditional: arch == "llama",
        rope_periods: None,
    };
    // Llama 3.1+ GGUFs carry their RoPE scaling as per-pair factors that divide each rotation
    // speed (llama.cpp's `rope_freqs.weight`).
    if let Some(factors) = arrays.get("rope_freqs.weight") {
        let factors = factors
            .as_dtype(mlx_rs::Dtype::Float32)
            .and_then(|a| a.contiguous())
            .map_err(|e| meta.error(format!("tensor rope_freqs.weight: {e}")))?;
        factors
            .eval()
            .map_err(|e| meta.error(format!("tensor rope_freqs.weight: {e}")))?;
        let factors = factors.as_slice::<f32>();
        let plain = ModelConfig::plain_rope_periods(config.rope_theta, head_dim);
        if factors.len() != plain.len() {
            return Err(meta.error(format!(
                "tensor rope_freqs.weight has {} factors, the heads rotate {} pairs",
                factors.len(),
                plain.len()
            )));
        }
        config.rope_periods = Some(plain.iter().zip(factors).map(|(p, f)| p * f).collect());
    }
    if n_heads <= 0 || n_kv_heads <= 0 || n_heads % n_kv_heads != 0 || head_dim <= 0 {
        return Err(meta.error(format!(
            "inconsistent attention shape: {n_heads} heads, {n_kv_heads} kv heads, head dim {head_dim}"
        )));
    }
    Ok(config)
}
