//! Hugging Face folders: `config.json`, `model.safetensors` (or shards listed in
//! `model.safetensors.index.json`), `tokenizer.json`, and the chat template from
//! `tokenizer_config.json` or `chat_template.jinja`. Dense f32/f16/bf16 weights, or the MLX
//! affine-quantized layout of mlx-community models (`weight` packed `uint32`, `scales`,
//! `biases`, with `"quantization": {"group_size", "bits"}` in `config.json`).
//!
//! Hugging Face keeps Llama's Q/K rows in their natural order and rotates split halves
//! (non-traditional RoPE); GGUF files hold them permuted for adjacent-pair RoPE. Both land in
//! the same [`Model`], so the forward pass is shared: only `rope_traditional` differs.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use mlx_rs::Array;
use serde_json::Value;

use super::model::{Model, ModelConfig};
use super::weights::{self, Build};
use super::LoadError;

/// Everything a Hugging Face folder carries that the verifier needs.
pub struct HfModel {
    pub model: Model,
    pub tokenizer: tokenizers::Tokenizer,
    pub chat_template: Option<String>,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
}

/// `model_type` values and the `architectures` class names that mean them.
pub const ARCHITECTURES: [(&str, &str); 3] = [
    ("llama", "LlamaForCausalLM"),
    ("qwen2", "Qwen2ForCausalLM"),
    ("qwen3", "Qwen3ForCausalLM"),
];

/// Bound on every size in `config.json`, so products of them stay within `i32`.
const MAX_SIZE: i64 = 1 << 24;

/// Safetensors dtypes the model tensors may have (U32 holds packed quantized weights).
const TENSOR_DTYPES: [(&str, u64); 4] = [("F32", 4), ("F16", 2), ("BF16", 2), ("U32", 4)];

/// Loads a Hugging Face model folder. `keep_quantized` keeps MLX-quantized linears packed
/// (and dense ones in their stored dtype); otherwise everything is f32, as the GGUF path does.
pub fn load(dir: &Path, keep_quantized: bool) -> Result<HfModel, LoadError> {
    if !dir.is_dir() {
        return Err(LoadError::new(dir, "folder does not exist".into()));
    }
    let config_path = dir.join("config.json");
    if !config_path.exists() {
        return Err(LoadError::new(&config_path, missing_config_reason(dir)));
    }
    let config = read_json(&config_path, "the model's config.json")?;
    let cfg = Config {
        json: &config,
        path: &config_path,
    };
    let arch = cfg.arch()?;
    let quant = Quantization::from_config(&cfg)?;
    let mut arrays = load_tensors(dir)?;
    // Precomputed RoPE tables some checkpoints carry; our RoPE computes them.
    arrays.retain(|name, _| !name.ends_with(".rotary_emb.inv_freq"));
    let tie = cfg.bool("tie_word_embeddings")?;
    if tie == Some(true) {
        // transformers and mlx_lm ignore a stored head when the config ties it.
        arrays.retain(|name, _| !name.starts_with("lm_head."));
    }
    let model_config = cfg.model_config(&arch, &arrays)?;

    let tokenizer_path = dir.join("tokenizer.json");
    if !tokenizer_path.is_file() {
        return Err(LoadError::new(
            &tokenizer_path,
            "tokenizer.json is missing (the loader needs the fast-tokenizer file)".into(),
        ));
    }
    let tokenizer = super::tokenizer::from_json(&tokenizer_path)?;
    check_vocabulary(&tokenizer, &tokenizer_path, model_config.vocab_size)?;
    let chat = ChatFiles::read(dir, &config, &tokenizer)?;

    let rule = |prefix: &str, w: &Array, scales: &Array| quant.rule(prefix, w, scales);
    let build = Build {
        layout: &weights::HF,
        quant: &rule,
        keep_quantized,
        require_head: tie == Some(false),
    };
    let model = weights::build_model(dir, model_config, &mut arrays, &build)?;
    if !arrays.is_empty() {
        let names: BTreeSet<&String> = arrays.keys().collect();
        let some: Vec<&str> = names.iter().take(3).map(|s| s.as_str()).collect();
        return Err(LoadError::new(
            dir,
            format!(
                "{} tensors this {arch} loader does not know (e.g. {}); the checkpoint has parts \
                 the forward pass would ignore",
                names.len(),
                some.join(", ")
            ),
        ));
    }
    Ok(HfModel {
        model,
        tokenizer,
        chat_template: chat.template,
        bos_token: chat.bos,
        eos_token: chat.eos,
    })
}

/// A folder without `config.json` is not a Hugging Face model; if it holds GGUF files, the
/// user most likely meant one of them.
fn missing_config_reason(dir: &Path) -> String {
    let mut ggufs: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".gguf"))
        .collect();
    ggufs.sort();
    match ggufs.first() {
        Some(first) => format!(
            "the model's config.json is missing; the folder holds GGUF files: pass one of them \
             (e.g. {})",
            dir.join(first).display()
        ),
        None => "the model's config.json is missing (not a Hugging Face model folder)".into(),
    }
}

fn read_json(path: &Path, what: &str) -> Result<Value, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let reason = if e.kind() == std::io::ErrorKind::NotFound {
            format!("{what} is missing")
        } else {
            format!("cannot read {what}: {e}")
        };
        LoadError::new(path, reason)
    })?;
    serde_json::from_str(&text).map_err(|e| LoadError::new(path, format!("not valid JSON: {e}")))
}

/// Typed access to `config.json` with errors that name the key.
struct Config<'a> {
    json: &'a Value,
    path: &'a Path,
}

impl Config<'_> {
    fn error(&self, reason: String) -> LoadError {
        LoadError::new(self.path, reason)
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.json.get(key).filter(|v| !v.is_null())
    }

    fn int(&self, key: &str) -> Result<Option<i64>, LoadError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .filter(|n| (0..=i32::MAX as i64).contains(n))
                .map(Some)
                .ok_or_else(|| {
                    self.error(format!("{key} is {v}, expected a non-negative integer"))
                }),
        }
    }

    fn req_int(&self, key: &str) -> Result<i32, LoadError> {
        self.int(key)?
            .map(|v| v as i32)
            .ok_or_else(|| self.error(format!("{key} is missing")))
    }

    fn float(&self, key: &str) -> Result<Option<f64>, LoadError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.error(format!("{key} is {v}, expected a number"))),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, LoadError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.error(format!("{key} is {v}, expected true or false"))),
        }
    }

    /// `model_type`, or the first `architectures` entry we know.
    fn arch(&self) -> Result<String, LoadError> {
        let supported = ARCHITECTURES.map(|(t, _)| t).join(", ");
        if let Some(t) = self.get("model_type") {
            let t = t
                .as_str()
                .ok_or_else(|| self.error(format!("model_type is {t}, expected a string")))?;
            return match ARCHITECTURES.iter().find(|(name, _)| *name == t) {
                Some((name, _)) => Ok(name.to_string()),
                None => Err(self.error(format!(
                    "unsupported model_type {t:?} (supported: {supported})"
                ))),
            };
        }
        let classes: Vec<&str> = self
            .get("architectures")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        classes
            .iter()
            .find_map(|c| ARCHITECTURES.iter().find(|(_, class)| class == c))
            .map(|(name, _)| name.to_string())
            .ok_or_else(|| {
                self.error(format!(
                    "no model_type, and architectures {classes:?} has none of {}",
                    ARCHITECTURES.map(|(_, c)| c).join(", ")
                ))
            })
    }

    fn model_config(
        &self,
        arch: &str,
        arrays: &HashMap<String, Array>,
    ) -> Result<ModelConfig, LoadError> {
        let rope_theta = self.float("rope_theta")?.unwrap_or(10_000.0) as f32;
        let dim = self.req_int("hidden_size")?;
        let n_heads = self.req_int("num_attention_heads")?;
        let n_kv_heads = self
            .int("num_key_value_heads")?
            .map_or(n_heads, |v| v as i32);
        let head_dim = self
            .int("head_dim")?
            .map_or(dim / n_heads.max(1), |v| v as i32);
        if n_heads <= 0
            || n_kv_heads <= 0
            || n_heads % n_kv_heads != 0
            || head_dim <= 0
            || n_heads as i64 * head_dim as i64 > MAX_SIZE
        {
            return Err(self.error(format!(
                "inconsistent attention shape: {n_heads} heads, {n_kv_heads} kv heads, head dim {head_dim}"
            )));
        }
        let embed_key = format!("{}.weight", weights::HF.embed);
        let embed_rows = match arrays.get(&embed_key).map(|a| a.shape()) {
            Some([rows, _]) => *rows,
            Some(shape) => {
                return Err(LoadError::new(
                    self.path,
                    format!("tensor {embed_key} has shape {shape:?}, expected a matrix"),
                ))
            }
            None => {
                return Err(LoadError::new(
                    self.path,
                    format!("tensor {embed_key} is missing"),
                ))
            }
        };
        if let Some(v) = self.int("vocab_size")? {
            if v != embed_rows as i64 {
                return Err(self.error(format!(
                    "vocab_size is {v} but tensor {embed_key} has {embed_rows} rows"
                )));
            }
        }
        Ok(ModelConfig {
            arch: arch.to_string(),
            n_layers: self.req_int("num_hidden_layers")? as usize,
            dim,
            n_heads,
            n_kv_heads,
            head_dim,
            hidden_dim: self.req_int("intermediate_size")?,
            vocab_size: embed_rows,
            // transformers' defaults for these three models.
            rms_eps: self.float("rms_norm_eps")?.unwrap_or(1e-6) as f32,
            rope_theta,
            rope_traditional: self.bool("rope_traditional")?.unwrap_or(false),
            rope_periods: self.rope_periods(rope_theta, head_dim)?,
        })
    }

    /// RoPE periods changed by `rope_scaling`: `None` for plain RoPE; Llama 3.1+'s `llama3`
    /// scaling computed as transformers and mlx_lm do; anything else is refused, since running
    /// without it would give plausible but wrong logits.
    fn rope_periods(&self, theta: f32, head_dim: i32) -> Result<Option<Vec<f32>>, LoadError> {
        let Some(scaling) = self.get("rope_scaling") else {
            return Ok(None);
        };
        let kind = scaling
            .get("rope_type")
            .or_else(|| scaling.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("?");
        let num = |key: &str| scaling.get(key).and_then(Value::as_f64);
        let factor = num("factor");
        match kind {
            "default" => Ok(None),
            "linear" if factor == Some(1.0) => Ok(None),
            "llama3" => {
                let (Some(factor), Some(low), Some(high), Some(context)) = (
                    factor,
                    num("low_freq_factor"),
                    num("high_freq_factor"),
                    num("original_max_position_embeddings"),
                ) else {
                    return Err(self.error(format!(
                        "rope_scaling {scaling}: llama3 needs factor, low_freq_factor, \
                         high_freq_factor and original_max_position_embeddings"
                    )));
                };
                if factor <= 0.0 || high <= low || context <= 0.0 {
                    return Err(self.error(format!("rope_scaling {scaling}: inconsistent values")));
                }
                Ok(Some(llama3_periods(
                    theta, head_dim, factor, low, high, context,
                )))
            }
            _ => Err(self.error(format!(
                "rope_scaling {scaling} is not supported (plain RoPE and llama3 scaling are)"
            ))),
        }
    }
}

/// Llama 3.1's RoPE scaling: wavelengths longer than `context / low` rotate `factor` times
/// slower, those shorter than `context / high` are kept, and the band between is blended.
fn llama3_periods(
    theta: f32,
    head_dim: i32,
    factor: f64,
    low: f64,
    high: f64,
    context: f64,
) -> Vec<f32> {
    ModelConfig::plain_rope_periods(theta, head_dim)
        .into_iter()
        .map(|p| {
            let p = p as f64;
            let wavelength = 2.0 * std::f64::consts::PI * p;
            let scaled = if wavelength > context / low {
                p * factor
            } else if wavelength < context / high {
                p
            } else {
                let smooth = (context / wavelength - low) / (high - low);
                p / ((1.0 - smooth) / factor + smooth)
            };
            scaled as f32
        })
        .collect()
}

/// MLX's `(group_size, bits)` for affine quantization when a config leaves them out.
const AFFINE_DEFAULT: (i32, i32) = (64, 4);

/// `(group_size, bits)` of an MLX-quantized checkpoint: one default, and mlx_lm's per-module
/// overrides (`"model.layers.0.mlp.down_proj": {"group_size": 64, "bits": 8}` or `false`).
struct Quantization {
    path: PathBuf,
    default: Option<(i32, i32)>,
    per_module: HashMap<String, Option<(i32, i32)>>,
}

impl Quantization {
    fn from_config(cfg: &Config) -> Result<Self, LoadError> {
        let mut q = Self {
            path: cfg.path.to_path_buf(),
            default: None,
            per_module: HashMap::new(),
        };
        let Some(section) = cfg
            .get("quantization")
            .or_else(|| cfg.get("quantization_config"))
        else {
            return Ok(q);
        };
        let obj = section
            .as_object()
            .ok_or_else(|| cfg.error(format!("quantization is {section}, expected an object")))?;
        let pair = |where_: &str, v: &Value| -> Result<(i32, i32), LoadError> {
            if let Some(mode) = v.get("mode").and_then(Value::as_str) {
                if mode != "affine" {
                    return Err(cfg.error(format!(
                        "{where_}: quantization mode {mode:?} is not supported (affine only)"
                    )));
                }
            }
            // mlx_lm writes `null` for "the mode's default" in per-layer entries.
            let num = |k: &str, default: i32| match v.get(k) {
                None | Some(Value::Null) => Ok(default),
                Some(n) => n
                    .as_i64()
                    .map(|n| n as i32)
                    .ok_or_else(|| cfg.error(format!("{where_}: {k} is {n}, expected a number"))),
            };
            let (group_size, bits) = (
                num("group_size", AFFINE_DEFAULT.0)?,
                num("bits", AFFINE_DEFAULT.1)?,
            );
            if !weights::SUPPORTED_BITS.contains(&bits) {
                return Err(cfg.error(format!(
                    "{where_}: unsupported quantization bits {bits} (supported: {:?})",
                    weights::SUPPORTED_BITS
                )));
            }
            if !matches!(group_size, 32 | 64 | 128) {
                return Err(cfg.error(format!(
                    "{where_}: unsupported quantization group_size {group_size} (supported: 32, 64, 128)"
                )));
            }
            Ok((group_size, bits))
        };
        if obj.contains_key("bits") || obj.contains_key("group_size") {
            q.default = Some(pair("quantization", section)?);
        }
        for (key, v) in obj {
            match v {
                Value::Object(_) => {
                    let gb = pair(&format!("quantization.{key}"), v)?;
                    q.per_module.insert(key.clone(), Some(gb));
                }
                Value::Bool(false) => {
                    q.per_module.insert(key.clone(), None);
                }
                _ => {}
            }
        }
        Ok(q)
    }

    fn rule(&self, prefix: &str, _w: &Array, _scales: &Array) -> Result<(i32, i32), String> {
        match self.per_module.get(prefix) {
            Some(Some(gb)) => Ok(*gb),
            Some(None) => Err(format!(
                "it has scales but {} says {prefix} is not quantized",
                self.path.display()
            )),
            None => self.default.ok_or_else(|| {
                format!(
                    "it has scales but {} has no \"quantization\" section",
                    self.path.display()
                )
            }),
        }
    }
}

/// The weight files: shards named by `model.safetensors.index.json`, else `model*.safetensors`.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let json = read_json(&index, "the shard index")?;
        let map = json
            .get("weight_map")
            .and_then(Value::as_object)
            .ok_or_else(|| LoadError::new(&index, "weight_map is missing".into()))?;
        let mut files = BTreeSet::new();
        for (tensor, file) in map {
            let file = file.as_str().ok_or_else(|| {
                LoadError::new(&index, format!("weight_map.{tensor} is not a file name"))
            })?;
            if file.contains('/') || file.contains('\\') {
                return Err(LoadError::new(
                    &index,
                    format!("weight_map.{tensor}: {file:?} is not a file in the folder"),
                ));
            }
            files.insert(dir.join(file));
        }
        for f in &files {
            if !f.is_file() {
                return Err(LoadError::new(
                    f,
                    "shard listed in model.safetensors.index.json is missing".into(),
                ));
            }
        }
        return Ok(files.into_iter().collect());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| LoadError::new(dir, format!("cannot list the folder: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("model") && name.ends_with(".safetensors") && p.is_file()
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(LoadError::new(
            dir,
            "no model.safetensors (nor model-*.safetensors shards) in the folder".into(),
        ));
    }
    Ok(files)
}

fn load_tensors(dir: &Path) -> Result<HashMap<String, Array>, LoadError> {
    let mut all = HashMap::new();
    for file in weight_files(dir)? {
        check_safetensors(&file)?;
        let arrays = Array::load_safetensors(&file)
            .map_err(|e| LoadError::new(&file, format!("cannot read safetensors: {e}")))?;
        for (name, a) in arrays {
            if all.insert(name.clone(), a).is_some() {
                return Err(LoadError::new(
                    &file,
                    format!("tensor {name} is also in another shard"),
                ));
            }
        }
    }
    Ok(all)
}

/// Reads a safetensors header and checks that every tensor has a dtype we load and lies inside
/// the file, so a truncated or foreign file gets a clear message before MLX reads it.
pub fn check_safetensors(path: &Path) -> Result<(), LoadError> {
    use std::io::Read;
    let not = |why: String| LoadError::new(path, format!("not a safetensors file: {why}"));
    let file_len = std::fs::metadata(path)
        .map_err(|e| LoadError::new(path, e.to_string()))?
        .len();
    let mut f = std::fs::File::open(path).map_err(|e| LoadError::new(path, e.to_string()))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|_| not(format!("{file_len} bytes, shorter than a header")))?;
    let header_len = u64::from_le_bytes(len);
    if header_len > 100 << 20 || 8 + header_len > file_len {
        return Err(not(format!(
            "header length {header_len} does not fit a {file_len}-byte file"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    f.read_exact(&mut header).map_err(|e| not(e.to_string()))?;
    let header: Value =
        serde_json::from_slice(&header).map_err(|e| not(format!("header is not JSON: {e}")))?;
    let entries = header
        .as_object()
        .ok_or_else(|| not("header is not a JSON object".into()))?;
    let data_len = file_len - 8 - header_len;
    for (name, info) in entries {
        if name == "__metadata__" {
            continue;
        }
        let dtype = info.get("dtype").and_then(Value::as_str).unwrap_or("?");
        let size = TENSOR_DTYPES
            .iter()
            .find(|(d, _)| *d == dtype)
            .map(|(_, s)| *s)
            .ok_or_else(|| {
                LoadError::new(
                    path,
                    format!(
                        "tensor {name} has dtype {dtype} (supported: {})",
                        TENSOR_DTYPES.map(|(d, _)| d).join(", ")
                    ),
                )
            })?;
        let shape: Option<Vec<u64>> = info
            .get("shape")
            .and_then(Value::as_array)
            .map(|s| s.iter().filter_map(Value::as_u64).collect());
        let offsets: Option<Vec<u64>> = info
            .get("data_offsets")
            .and_then(Value::as_array)
            .map(|s| s.iter().filter_map(Value::as_u64).collect());
        let (Some(shape), Some([start, end])) = (shape, offsets.as_deref()) else {
            return Err(not(format!("tensor {name} has no shape or data_offsets")));
        };
        let bytes = shape.iter().product::<u64>() * size;
        if end < start || end - start != bytes {
            return Err(not(format!(
                "tensor {name}: {} bytes for shape {shape:?} {dtype}",
                end.saturating_sub(*start)
            )));
        }
        if *end > data_len {
            return Err(LoadError::new(
                path,
                format!("tensor {name} ends at byte {end} of {data_len}: the file is truncated"),
            ));
        }
    }
    Ok(())
}

/// A tokenizer that can produce ids past the embedding, or that clearly belongs to another
/// model, is refused. Embeddings may carry a few unused padding rows (Qwen pads its 151,6xx
/// tokens to 151,936 rows), so the tokenizer may be smaller by at most 1/64 of the rows.
fn check_vocabulary(
    tokenizer: &tokenizers::Tokenizer,
    path: &Path,
    rows: i32,
) -> Result<(), LoadError> {
    let tokens = tokenizer.get_vocab_size(true) as i64;
    let max_id = tokenizer
        .get_vocab(true)
        .values()
        .max()
        .map_or(-1, |&m| m as i64);
    let rows = rows as i64;
    if max_id >= rows || tokens + rows / 64 < rows {
        return Err(LoadError::new(
            path,
            format!(
                "tokenizer has {tokens} tokens (largest id {max_id}) but the embedding has {rows} rows"
            ),
        ));
    }
    Ok(())
}

/// The chat template and special tokens, from `tokenizer_config.json`, `chat_template.jinja`
/// or `chat_template.json` (the two files transformers writes since 4.43).
struct ChatFiles {
    template: Option<String>,
    bos: Option<String>,
    eos: Option<String>,
}

impl ChatFiles {
    fn read(
        dir: &Path,
        config: &Value,
        tokenizer: &tokenizers::Tokenizer,
    ) -> Result<Self, LoadError> {
        let tc_path = dir.join("tokenizer_config.json");
        let tc = if tc_path.is_file() {
            read_json(&tc_path, "tokenizer_config.json")?
        } else {
            Value::Null
        };
        let jinja = dir.join("chat_template.jinja");
        let json_template = dir.join("chat_template.json");
        let template = if jinja.is_file() {
            Some(
                std::fs::read_to_string(&jinja)
                    .map_err(|e| LoadError::new(&jinja, format!("cannot read: {e}")))?,
            )
        } else if json_template.is_file() {
            let v = read_json(&json_template, "chat_template.json")?;
            template_value(&json_template, v.get("chat_template"))?
        } else {
            template_value(&tc_path, tc.get("chat_template"))?
        };
        // A token given by string (or {"content": ...}), else by id in config.json.
        let token = |key: &str, id_key: &str| -> Option<String> {
            match tc.get(key) {
                Some(Value::String(s)) => return Some(s.clone()),
                Some(Value::Object(o)) => {
                    if let Some(s) = o.get("content").and_then(Value::as_str) {
                        return Some(s.to_string());
                    }
                }
                _ => {}
            }
            let id = match config.get(id_key)? {
                Value::Array(ids) => ids.first()?.as_u64()?,
                v => v.as_u64()?,
            };
            tokenizer.id_to_token(id as u32)
        };
        Ok(Self {
            template,
            bos: token("bos_token", "bos_token_id"),
            eos: token("eos_token", "eos_token_id"),
        })
    }
}

/// `chat_template` as a string, or a list of `{name, template}` (the one named "default").
fn template_value(path: &Path, v: Option<&Value>) -> Result<Option<String>, LoadError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Array(list)) => {
            let named = |n: &str| {
                list.iter().find_map(|t| {
                    (t.get("name").and_then(Value::as_str) == Some(n))
                        .then(|| t.get("template").and_then(Value::as_str))
                        .flatten()
                })
            };
            named("default")
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| {
                    LoadError::new(path, "chat_template list has no \"default\" entry".into())
                })
        }
        Some(other) => Err(LoadError::new(
            path,
            format!(
                "chat_template is {}, expected a string or a list",
                kind(other)
            ),
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg_arch(v: Value) -> Result<String, LoadError> {
        Config {
            json: &v,
            path: Path::new("m/config.json"),
        }
        .arch()
    }

    #[test]
    fn architecture_from_model_type_or_class_name() {
        assert_eq!(cfg_arch(json!({"model_type": "qwen3"})).unwrap(), "qwen3");
        let by_class = json!({"architectures": ["Foo", "LlamaForCausalLM"]});
        assert_eq!(cfg_arch(by_class).unwrap(), "llama");
        let e = cfg_arch(json!({"model_type": "phi3"})).unwrap_err();
        assert!(e.to_string().contains("m/config.json") && e.reason.contains("\"phi3\""));
        assert!(cfg_arch(json!({})).is_err());
    }

    fn quant(v: Value) -> Result<Quantization, LoadError> {
        Quantization::from_config(&Config {
            json: &v,
            path: Path::new("config.json"),
        })
    }

    #[test]
    fn quantization_default_and_per_module_overrides() {
        let q = quant(json!({"quantization": {
            "group_size": 32, "bits": 4,
            "model.layers.0.mlp.down_proj": {"group_size": 32, "bits": 8},
            "model.layers.0.mlp.up_proj": {"group_size": null, "bits": 6, "mode": "affine"},
            "lm_head": false,
        }}))
        .unwrap();
        assert_eq!(
            q.rule(
                "model.layers.0.mlp.up_proj",
                &Array::from_int(0),
                &Array::from_int(0)
            ),
            Ok((64, 6))
        );
        let a = Array::from_int(0);
        assert_eq!(q.rule("model.layers.1.mlp.down_proj", &a, &a), Ok((32, 4)));
        assert_eq!(q.rule("model.layers.0.mlp.down_proj", &a, &a), Ok((32, 8)));
        assert!(q
            .rule("lm_head", &a, &a)
            .unwrap_err()
            .contains("not quantized"));
        let none = quant(json!({})).unwrap();
        assert!(none
            .rule("x", &a, &a)
            .unwrap_err()
            .contains("no \"quantization\""));
        let bad = |v| quant(v).err().map(|e| e.reason).unwrap_or_default();
        assert!(bad(json!({"quantization": {"group_size": 64, "bits": 7}})).contains("bits 7"));
        assert!(
            bad(json!({"quantization": {"group_size": 48, "bits": 4}})).contains("group_size 48")
        );
        assert!(
            bad(json!({"quantization": {"group_size": 32, "bits": 4, "mode": "nvfp4"}}))
                .contains("nvfp4")
        );
        assert!(bad(json!({"quantization": 4})).contains("expected an object"));
    }

    #[test]
    fn chat_template_string_or_named_list() {
        let p = Path::new("tokenizer_config.json");
        assert_eq!(
            template_value(p, Some(&json!("T"))).unwrap().as_deref(),
            Some("T")
        );
        let list = json!([{"name": "rag", "template": "R"}, {"name": "default", "template": "D"}]);
        assert_eq!(
            template_value(p, Some(&list)).unwrap().as_deref(),
            Some("D")
        );
        assert_eq!(template_value(p, None).unwrap(), None);
        let no_default = json!([{"name": "rag", "template": "R"}]);
        assert!(template_value(p, Some(&no_default)).is_err());
        let e = template_value(p, Some(&json!(3))).unwrap_err();
        assert!(e.reason.contains("a number"), "{e}");
    }

    fn safetensors(header: &Value, data: usize) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new()
            .suffix(".safetensors")
            .tempfile()
            .unwrap();
        let h = header.to_string();
        let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
        bytes.extend(h.as_bytes());
        bytes.extend(std::iter::repeat_n(0u8, data));
        std::io::Write::write_all(&mut f, &bytes).unwrap();
        f
    }

    #[test]
    fn safetensors_header_is_checked_before_mlx_reads_it() {
        let ok = json!({"__metadata__": {"format": "pt"},
                        "a": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]}});
        assert!(check_safetensors(safetensors(&ok, 12).path()).is_ok());
        let e = check_safetensors(safetensors(&ok, 11).path()).unwrap_err();
        assert!(e.reason.contains("truncated"), "{e}");
        let f64_ = json!({"a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}});
        let e = check_safetensors(safetensors(&f64_, 8).path()).unwrap_err();
        assert!(e.reason.contains("dtype F64"), "{e}");
        let wrong = json!({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}});
        let e = check_safetensors(safetensors(&wrong, 8).path()).unwrap_err();
        assert!(e.reason.contains("8 bytes for shape [4]"), "{e}");
    }
}
