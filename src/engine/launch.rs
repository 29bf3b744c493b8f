//! One way in: the flags, the config file's `[engine]` table and the environment that both
//! binaries start the engine with, resolved in one place (defaults ← file ← environment ←
//! flags), and the one launch path that turns them into a running engine: the store to use
//! (the one resume rule), the inputs, the thresholds, the verifier with the shared answer
//! cache. `cyberfilter run` and `cyberfilter-tui` differ only in what they do with the handle.

use super::{EngineConfig, EngineError, EngineHandle};
use crate::paths::{Origin, Paths};
use crate::rules::{RuleSet, Thresholds};
use crate::store::{paths as store_paths, RunStore, StoreError};
use crate::verify::backend::{self, BackendChoice, VerifierKind};
use crate::verify::http::{HttpOptions, DEFAULT_URL};
use clap::parser::ValueSource;
use clap::ArgMatches;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Exit codes of a failed launch, shared by both binaries (see `crate::cli`).
pub mod exit {
    pub const FAILURE: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const CONFIG: i32 = 3;
    pub const VERIFIER: i32 = 4;
    pub const NOINPUT: i32 = 66;
    /// EX_IOERR: the store cannot be written (disk full); it resumes once there is room.
    pub const IOERR: i32 = 74;
    /// EX_TEMPFAIL: the store is in use by another run; try again when it ends.
    pub const IN_USE: i32 = 75;
}

/// The engine's flags, flattened into both binaries: same names, defaults and variables.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Engine")]
pub struct EngineArgs {
    /// The run store to use; an existing store is resumed. Default: a new store in the data dir.
    #[arg(long, value_name = "PATH", env = "CYBERFILTER_STORE")]
    pub store: Option<PathBuf>,
    /// Resume a run where it stopped: `--resume=STORE` that store; `--resume` the latest store
    /// made for the given inputs, or without inputs the most recent run.
    #[arg(long, value_name = "STORE", num_args = 0..=1, require_equals = true)]
    pub resume: Option<Option<PathBuf>>,
    /// Config file (default: $CYBERFILTER_CONFIG, else $XDG_CONFIG_HOME/cyberfilter/config.toml).
    #[arg(long, value_name = "PATH", env = "CYBERFILTER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print every resolved setting with where it came from, then exit.
    #[arg(long)]
    pub print_config: bool,
    /// Rule file (TOML); default: the built-in rules (a resumed run needs the rules it began with).
    #[arg(long, value_name = "FILE", env = "CYBERFILTER_RULES")]
    pub rules: Option<PathBuf>,
    /// Verifier for verify-tier records: mlx (default), http, or none (they stay pending).
    #[arg(long, value_enum, value_name = "KIND", env = "CYBERFILTER_VERIFIER")]
    pub verifier: Option<VerifierKind>,
    /// Model of the MLX verifier: a .gguf file or a Hugging Face folder (default: the
    /// SmolLM2-135M-Instruct GGUF fetched by scripts/setup.sh).
    #[arg(long, value_name = "PATH", env = "CYBERFILTER_MODEL")]
    pub model: Option<PathBuf>,
    /// The MLX verifier reads at most this many tokens of a record's text, keeping its head
    /// (default 256; part of the cache key).
    #[arg(long, value_name = "N", env = "CYBERFILTER_MAX_TEXT_TOKENS")]
    pub max_text_tokens: Option<usize>,
    /// Keep at or above this rule score.
    #[arg(
        long,
        value_name = "SCORE",
        env = "CYBERFILTER_HIGH",
        allow_negative_numbers = true
    )]
    pub high: Option<f32>,
    /// Reject below this rule score; between low and high the verifier decides.
    #[arg(
        long,
        value_name = "SCORE",
        env = "CYBERFILTER_LOW",
        allow_negative_numbers = true
    )]
    pub low: Option<f32>,
    /// P(yes) at or above which the verifier's answer keeps a record.
    #[arg(long, value_name = "P", env = "CYBERFILTER_P_YES_CUT")]
    pub p_yes_cut: Option<f32>,
    /// Reject texts shorter than this many characters.
    #[arg(long, value_name = "CHARS", env = "CYBERFILTER_MIN_TEXT_LEN")]
    pub min_text_len: Option<usize>,
    /// Records per verifier batch (default: the backend's preferred size).
    #[arg(long, value_name = "N", env = "CYBERFILTER_BATCH_SIZE")]
    pub batch_size: Option<usize>,
    /// Send a partial batch once its oldest record has waited this long (default 200).
    #[arg(long, value_name = "MS", env = "CYBERFILTER_BATCH_WAIT_MS")]
    pub batch_wait_ms: Option<u64>,
    /// Records of a failed verifier batch (transport error, timeout, bad answer) are asked
    /// again this many times within the run, with exponential backoff plus jitter (default 5;
    /// 0: they wait for a resume). Records whose retries are used up stay pending.
    #[arg(long, value_name = "N", env = "CYBERFILTER_VERIFY_RETRIES")]
    pub verify_retries: Option<u32>,
    /// The wait before the first retry of a failed batch, doubled for each further one (at
    /// most 30 s; jitter takes each wait between half and all of it; default 500).
    #[arg(long, value_name = "MS", env = "CYBERFILTER_VERIFY_RETRY_BACKOFF_MS")]
    pub verify_retry_backoff_ms: Option<u64>,
    /// A failed record is given up (pending for a resume) once its next retry would come
    /// later than this after its first failure (default 300000).
    #[arg(long, value_name = "MS", env = "CYBERFILTER_VERIFY_RETRY_MAX_WAIT_MS")]
    pub verify_retry_max_wait_ms: Option<u64>,
    /// Where run stores and the shared answer cache live (default: $XDG_DATA_HOME/cyberfilter).
    #[arg(long, value_name = "DIR", env = "CYBERFILTER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `--verifier http`: base URL of an OpenAI-compatible server (mlx_lm.server, llama.cpp,
    /// vLLM); `/v1/chat/completions` is appended.
    #[arg(long, value_name = "URL", env = "CYBERFILTER_HTTP_URL")]
    pub http_url: Option<String>,
    /// `--verifier http`: model name sent as `model` (default: none; the server's own).
    #[arg(long, value_name = "NAME", env = "CYBERFILTER_HTTP_MODEL")]
    pub http_model: Option<String>,
    /// `--verifier http`: requests in flight at once (default 4).
    #[arg(long, value_name = "N", env = "CYBERFILTER_HTTP_CONCURRENCY")]
    pub http_concurrency: Option<usize>,
    /// `--verifier http`: limit for one request in milliseconds (default 60000).
    #[arg(long, value_name = "MS", env = "CYBERFILTER_HTTP_TIMEOUT_MS")]
    pub http_timeout_ms: Option<u64>,
    /// `--verifier http`: retries after the first try on connection errors, 5xx and 429 (default 2).
    #[arg(long, value_name = "N", env = "CYBERFILTER_HTTP_RETRIES")]
    pub http_retries: Option<u32>,
    /// `--verifier http`: alternatives asked for the first answer token (default 10;
    /// mlx_lm.server allows at most 11).
    #[arg(long, value_name = "N", env = "CYBERFILTER_HTTP_TOP_LOGPROBS")]
    pub http_top_logprobs: Option<u32>,
    /// `--verifier http`: the served model's tokenizer.json or GGUF, to cut records at 256
    /// tokens like the MLX verifier does (without it, at 1024 characters).
    #[arg(long, value_name = "FILE", env = "CYBERFILTER_HTTP_TOKENIZER")]
    pub http_tokenizer: Option<PathBuf>,
    /// Group duplicates (one CVE, ATT&CK, CAPEC or CWE id across feeds; equal or near-equal
    /// text) and ask the verifier once per group: on (default) or off (every record on its own).
    #[arg(long, value_enum, value_name = "ON|OFF", env = "CYBERFILTER_DEDUP")]
    pub dedup: Option<OnOff>,
    /// Estimated Jaccard similarity of word shingles at or above which two texts are
    /// near-duplicates (default 0.7; above 1: ids and equal texts only).
    #[arg(long, value_name = "J", env = "CYBERFILTER_DEDUP_THRESHOLD")]
    pub dedup_threshold: Option<f32>,
    /// Source order for a group's representative, best first (default
    /// cve5,nvd-api2,nvd-legacy,stix,capec,cwe,json; then the longest text).
    #[arg(long, value_name = "SOURCES", env = "CYBERFILTER_DEDUP_PREFER")]
    pub dedup_prefer: Option<String>,
    /// The learned verdict head (`--head`, `--head-seed`, …).
    #[command(flatten)]
    pub head: crate::cli::head::HeadArgs,
}

/// A switch given as `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnOff {
    On,
    Off,
}

/// The config file's `[engine]` table: the same settings as the flags, flag names with `_`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineFile {
    pub rules: Option<PathBuf>,
    pub verifier: Option<String>,
    pub model: Option<PathBuf>,
    pub max_text_tokens: Option<usize>,
    pub high: Option<f32>,
    pub low: Option<f32>,
    pub p_yes_cut: Option<f32>,
    pub min_text_len: Option<usize>,
    pub batch_size: Option<usize>,
    pub batch_wait_ms: Option<u64>,
    pub verify_retries: Option<u32>,
    pub verify_retry_backoff_ms: Option<u64>,
    pub verify_retry_max_wait_ms: Option<u64>,
    pub data_dir: Option<PathBuf>,
    pub http_url: Option<String>,
    pub http_model: Option<String>,
    pub http_concurrency: Option<usize>,
    pub http_timeout_ms: Option<u64>,
    pub http_retries: Option<u32>,
    pub http_top_logprobs: Option<u32>,
    pub http_tokenizer: Option<PathBuf>,
    pub dedup: Option<OnOff>,
    pub dedup_threshold: Option<f32>,
    pub dedup_prefer: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct FileView {
    #[serde(default)]
    engine: Option<toml::Value>,
}

impl EngineFile {
    pub fn from_toml(src: &str, path: &Path) -> Result<EngineFile, String> {
        let bad = |e: String| format!("{}: invalid config: {e}", path.display());
        let view: FileView = toml::from_str(src).map_err(|e| bad(e.to_string()))?;
        match view.engine {
            None => Ok(EngineFile::default()),
            Some(v) => v
                .try_into()
                .map_err(|e: toml::de::Error| bad(format!("[engine]: {e}"))),
        }
    }

    /// The file's `[engine]` table; a missing default file is empty, a missing file named
    /// explicitly (`--config`, `$CYBERFILTER_CONFIG`) is an error.
    pub fn load(path: &Path, explicit: bool) -> Result<EngineFile, String> {
        match std::fs::read_to_string(path) {
            Ok(src) => EngineFile::from_toml(&src, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                Ok(EngineFile::default())
            }
            Err(e) => Err(format!("{}: cannot read config: {e}", path.display())),
        }
    }
}

/// Every engine setting after layering, with where each came from.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub paths: Paths,
    pub config_file_explicit: bool,
    pub rules: Option<PathBuf>,
    pub verifier: VerifierKind,
    pub model: Option<PathBuf>,
    pub max_text_tokens: Option<usize>,
    pub high: Option<f32>,
    pub low: Option<f32>,
    pub p_yes_cut: Option<f32>,
    pub min_text_len: Option<usize>,
    pub batch_size: Option<usize>,
    pub batch_wait: Duration,
    /// The in-run retry policy for failed verifier batches.
    pub verify_retry: super::retry::RetryPolicy,
    pub http: HttpOptions,
    /// The verdict head's flags (flags and environment only).
    pub head: crate::cli::head::HeadArgs,
    /// Duplicate grouping; `None` when off.
    pub dedup: Option<crate::dedup::Settings>,
    /// (setting, value as printed, origin), in `--print-config` order.
    pub origins: Vec<(&'static str, String, Origin)>,
}

/// A launch that could not happen: the message to print and the exit code, the same in
/// both binaries.
#[derive(Debug)]
pub struct LaunchError {
    pub code: i32,
    pub message: String,
}

impl LaunchError {
    fn new(code: i32, message: impl Into<String>) -> LaunchError {
        LaunchError {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for LaunchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

struct Layers<'a> {
    matches: Option<&'a ArgMatches>,
    origins: Vec<(&'static str, String, Origin)>,
}

impl Layers<'_> {
    /// The value of one setting: the flag or its variable, else the file, else `None` (the
    /// built-in default, which `default` describes for `--print-config`).
    fn pick<T: Clone + std::fmt::Debug>(
        &mut self,
        id: &'static str,
        flag: &Option<T>,
        file: &Option<T>,
        default: &str,
    ) -> Option<T> {
        let (value, origin) = match (flag, file) {
            (Some(v), _) => {
                let origin = match self.matches.and_then(|m| m.value_source(id)) {
                    Some(ValueSource::EnvVariable) => Origin::Env,
                    _ => Origin::Flag,
                };
                (Some(v.clone()), origin)
            }
            (None, Some(v)) => (Some(v.clone()), Origin::File),
            (None, None) => (None, Origin::Default),
        };
        let shown = match &value {
            Some(v) => show(v),
            None => default.to_string(),
        };
        self.origins.push((id, shown, origin));
        value
    }
}

/// A value as `--print-config` shows it: TOML-like, paths and strings quoted.
fn show<T: std::fmt::Debug>(v: &T) -> String {
    let s = format!("{v:?}");
    s.strip_prefix("Some(")
        .and_then(|s| s.strip_suffix(')'))
        .map(str::to_string)
        .unwrap_or(s)
}

impl EngineSettings {
    /// Layer defaults ← config file ← environment ← flags. `matches` tells flags from
    /// variables for `--print-config` (clap reads both into `args`); `env` is the process
    /// environment in the binaries.
    pub fn resolve(
        args: &EngineArgs,
        matches: Option<&ArgMatches>,
        env: impl Fn(&str) -> Option<String> + Copy,
    ) -> Result<EngineSettings, LaunchError> {
        let first = Paths::resolve(env, None);
        let config_file = args.config.clone().unwrap_or(first.config_file.clone());
        let explicit = args.config.is_some();
        let file = EngineFile::load(&config_file, explicit)
            .map_err(|e| LaunchError::new(exit::CONFIG, e))?;
        let mut l = Layers {
            matches,
            origins: Vec::new(),
        };
        let data_dir = l.pick("data_dir", &args.data_dir, &file.data_dir, "");
        let mut paths = Paths::resolve(env, data_dir.as_deref());
        paths.config_file = config_file;
        if data_dir.is_none() {
            l.origins.last_mut().expect("data_dir pushed").1 =
                format!("{:?}", paths.data_dir.display().to_string());
        }
        let rules = l.pick("rules", &args.rules, &file.rules, "(built-in rules)");
        let verifier_file = match &file.verifier {
            None => None,
            Some(name) => Some(
                <VerifierKind as clap::ValueEnum>::from_str(name, true).map_err(|_| {
                    LaunchError::new(
                        exit::CONFIG,
                        format!(
                            "{}: [engine] verifier = {name:?} is not one of mlx, http, none",
                            paths.config_file.display()
                        ),
                    )
                })?,
            ),
        };
        let verifier = l
            .pick("verifier", &args.verifier, &verifier_file, "Mlx")
            .unwrap_or(VerifierKind::Mlx);
        let model = l.pick(
            "model",
            &args.model,
            &file.model,
            "(setup.sh's SmolLM2-135M)",
        );
        let max_text_tokens = l.pick(
            "max_text_tokens",
            &args.max_text_tokens,
            &file.max_text_tokens,
            "256",
        );
        let high = l.pick(
            "high",
            &args.high,
            &file.high,
            "(stored run, else rules file)",
        );
        let low = l.pick("low", &args.low, &file.low, "(stored run, else rules file)");
        let p_yes_cut = l.pick(
            "p_yes_cut",
            &args.p_yes_cut,
            &file.p_yes_cut,
            "(stored run, else rules file)",
        );
        let min_text_len = l.pick(
            "min_text_len",
            &args.min_text_len,
            &file.min_text_len,
            "(stored run, else rules file)",
        );
        let batch_size = l.pick(
            "batch_size",
            &args.batch_size,
            &file.batch_size,
            "(the backend's)",
        );
        let batch_wait_ms = l
            .pick(
                "batch_wait_ms",
                &args.batch_wait_ms,
                &file.batch_wait_ms,
                "200",
            )
            .unwrap_or(200);
        let verify_retry = {
            use super::retry::*;
            let rounds = l.pick(
                "verify_retries",
                &args.verify_retries,
                &file.verify_retries,
                &DEFAULT_ROUNDS.to_string(),
            );
            let backoff = l.pick(
                "verify_retry_backoff_ms",
                &args.verify_retry_backoff_ms,
                &file.verify_retry_backoff_ms,
                &DEFAULT_BACKOFF_MS.to_string(),
            );
            let max_wait = l.pick(
                "verify_retry_max_wait_ms",
                &args.verify_retry_max_wait_ms,
                &file.verify_retry_max_wait_ms,
                &DEFAULT_MAX_WAIT_MS.to_string(),
            );
            RetryPolicy {
                rounds: rounds.unwrap_or(DEFAULT_ROUNDS),
                backoff: Duration::from_millis(backoff.unwrap_or(DEFAULT_BACKOFF_MS)),
                max_wait: Duration::from_millis(max_wait.unwrap_or(DEFAULT_MAX_WAIT_MS)),
                ..RetryPolicy::default()
            }
        };
        let d = HttpOptions::default();
        let http = HttpOptions {
            url: l
                .pick(
                    "http_url",
                    &args.http_url,
                    &file.http_url,
                    &show(&DEFAULT_URL),
                )
                .unwrap_or_else(|| DEFAULT_URL.into()),
            model: l.pick("http_model", &args.http_model, &file.http_model, "(none)"),
            concurrency: l
                .pick(
                    "http_concurrency",
                    &args.http_concurrency,
                    &file.http_concurrency,
                    "4",
                )
                .unwrap_or(4)
                .max(1),
            timeout: Duration::from_millis(
                l.pick(
                    "http_timeout_ms",
                    &args.http_timeout_ms,
                    &file.http_timeout_ms,
                    "60000",
                )
                .unwrap_or(60_000)
                .max(1),
            ),
            retries: l
                .pick("http_retries", &args.http_retries, &file.http_retries, "2")
                .unwrap_or(2),
            top_logprobs: l
                .pick(
                    "http_top_logprobs",
                    &args.http_top_logprobs,
                    &file.http_top_logprobs,
                    "10",
                )
                .unwrap_or(10),
            tokenizer: l.pick(
                "http_tokenizer",
                &args.http_tokenizer,
                &file.http_tokenizer,
                "(none: cut at 1024 characters)",
            ),
            ..d
        };
        let dedup_on = l
            .pick("dedup", &args.dedup, &file.dedup, "On")
            .unwrap_or(OnOff::On);
        let dedup_threshold = l.pick(
            "dedup_threshold",
            &args.dedup_threshold,
            &file.dedup_threshold,
            &crate::dedup::DEFAULT_THRESHOLD.to_string(),
        );
        let dedup_prefer = l.pick(
            "dedup_prefer",
            &args.dedup_prefer,
            &file.dedup_prefer,
            "\"cve5,nvd-api2,nvd-legacy,stix,capec,cwe,json\"",
        );
        let mut dedup = crate::dedup::Settings::default();
        if let Some(t) = dedup_threshold {
            dedup.threshold = t;
        }
        if let Some(p) = &dedup_prefer {
            dedup.prefer = crate::dedup::Settings::parse_prefer(p)
                .map_err(|e| LaunchError::new(exit::CONFIG, e))?;
        }
        dedup
            .validate()
            .map_err(|e| LaunchError::new(exit::CONFIG, e))?;
        Ok(EngineSettings {
            dedup: (dedup_on == OnOff::On).then_some(dedup),
            paths,
            config_file_explicit: explicit,
            rules,
            verifier,
            model,
            max_text_tokens,
            high,
            low,
            p_yes_cut,
            min_text_len,
            batch_size,
            batch_wait: Duration::from_millis(batch_wait_ms),
            verify_retry,
            http,
            head: args.head.clone(),
            origins: l.origins,
        })
    }

    /// The `[engine]` section of `--print-config`: every setting, its value and its origin.
    /// Both binaries print exactly this for the same file, environment and flags.
    pub fn to_toml(&self) -> String {
        let mut s = format!(
            "# config file: {}{}\n[engine]\n",
            self.paths.config_file.display(),
            if self.paths.config_file.exists() {
                ""
            } else {
                " (not found: defaults in use)"
            }
        );
        for (id, value, origin) in &self.origins {
            let line = match origin {
                // A built-in default that is not a plain value reads as a comment.
                Origin::Default if value.starts_with('(') || value.is_empty() => {
                    format!("# {id} = {value}")
                }
                _ => format!("{id} = {}", toml_value(value)),
            };
            s.push_str(&format!("{line:<56} # {}\n", origin.as_str()));
        }
        s
    }

    /// The store a launch with these inputs and resume flags would use, without opening it:
    /// the one resume rule of both binaries.
    /// - `--store S`: S (an existing store is resumed, a new one created);
    /// - `--resume=S`: S, which must exist (a name is looked up in the runs folder);
    /// - `--resume` with inputs: the latest store made for the same canonical inputs;
    /// - `--resume` alone: the most recent run;
    /// - neither: a new store, never one that exists.
    pub fn pick_store(
        &self,
        inputs: &[PathBuf],
        resume: &Option<Option<PathBuf>>,
        store: &Option<PathBuf>,
    ) -> Result<PathBuf, LaunchError> {
        let runs = self.paths.runs_dir();
        if let Some(s) = store {
            return Ok(s.clone());
        }
        match resume {
            Some(Some(s)) => {
                let p = resolve_store_in(&runs, s);
                if p.is_file() {
                    Ok(p)
                } else {
                    Err(LaunchError::new(
                        exit::CONFIG,
                        format!(
                            "--resume: no store {} (nor in {})",
                            s.display(),
                            runs.display()
                        ),
                    ))
                }
            }
            Some(None) if inputs.is_empty() => store_paths::list_stores(&runs)
                .into_iter()
                .next()
                .ok_or_else(|| {
                    LaunchError::new(
                        exit::CONFIG,
                        format!("--resume: no run in {}", runs.display()),
                    )
                }),
            Some(None) => {
                let wanted = store_paths::canonical_inputs(inputs);
                store_paths::list_stores(&runs)
                    .into_iter()
                    .find(|p| {
                        RunStore::open_read(p)
                            .ok()
                            .and_then(|s| s.config().ok().flatten())
                            .is_some_and(|c| store_paths::canonical_inputs(&c.inputs) == wanted)
                    })
                    .ok_or_else(|| {
                        LaunchError::new(
                            exit::CONFIG,
                            format!(
                                "--resume: no store for {} in {}",
                                wanted
                                    .iter()
                                    .map(|p| p.display().to_string())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                runs.display()
                            ),
                        )
                    })
            }
            None => Ok(store_paths::new_store_path(&runs, inputs)),
        }
    }
}

fn toml_value(v: &str) -> String {
    // Debug output of enums (`Mlx`) and paths is close to TOML; make enums lowercase strings.
    if v.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && !v.contains(' ') {
        return format!("{:?}", v.to_ascii_lowercase().replace('_', "-"));
    }
    v.to_string()
}

/// A store given by path, or by file name (with or without extension) in the runs folder.
pub fn resolve_store_in(runs: &Path, s: &Path) -> PathBuf {
    if s.exists() {
        return s.to_path_buf();
    }
    let direct = runs.join(s);
    if direct.exists() {
        return direct;
    }
    let with_ext = runs.join(format!("{}.{}", s.display(), store_paths::STORE_EXT));
    if with_ext.exists() {
        return with_ext;
    }
    s.to_path_buf()
}

/// What a binary asks for beyond the settings.
pub struct LaunchRequest<'a> {
    pub inputs: &'a [PathBuf],
    pub resume: &'a Option<Option<PathBuf>>,
    pub store: &'a Option<PathBuf>,
    /// Headless: stop once everything is read and verified. TUI: keep answering commands.
    pub exit_when_done: bool,
    pub stats_interval: Duration,
    /// Batch delay of the hidden test verifier when its variable is unset.
    pub test_delay_ms: u64,
}

/// A started engine and what the binary should tell the user about it.
pub struct Launched {
    pub handle: EngineHandle,
    pub store: PathBuf,
    pub resumed: bool,
    pub inputs: Vec<PathBuf>,
    pub thresholds: Thresholds,
    /// One line each, for stderr (the model being loaded, the thresholds in force, …).
    pub notes: Vec<String>,
}

/// Every check of a launch done, nothing created on disk yet: the TUI prepares before it
/// takes the terminal, so a bad flag reads the same as from `cyberfilter run`.
pub struct Prepared {
    config: EngineConfig,
    store: PathBuf,
    resumed: bool,
    inputs: Vec<PathBuf>,
    thresholds: Thresholds,
    notes: Vec<String>,
}

/// Start the engine both binaries share: [`prepare`] then [`Prepared::start`].
pub fn launch(s: &EngineSettings, req: &LaunchRequest) -> Result<Launched, LaunchError> {
    prepare(s, req)?.start()
}

/// Check everything that can fail before a run (rule file, inputs, store, thresholds,
/// verifier) without creating anything.
pub fn prepare(s: &EngineSettings, req: &LaunchRequest) -> Result<Prepared, LaunchError> {
    let rules = match &s.rules {
        None => RuleSet::default_rules(),
        Some(p) => RuleSet::from_file(p).map_err(|e| {
            let lines: Vec<String> = e.all().iter().map(|e| e.to_string()).collect();
            LaunchError::new(exit::USAGE, rule_errors_report(p, &lines))
        })?,
    };
    for i in req.inputs {
        if !i.exists() {
            return Err(LaunchError::new(
                exit::NOINPUT,
                format!("input {} does not exist", i.display()),
            ));
        }
    }
    let store = s.pick_store(req.inputs, req.resume, req.store)?;
    let existing = store.is_file();
    let stored = match existing {
        false => None,
        true => {
            let open = RunStore::open_read(&store).map_err(store_error)?;
            let config = open.config().map_err(store_error)?;
            let thresholds = open.thresholds().map_err(store_error)?;
            Some((config, thresholds))
        }
    };
    // A resumed run reads its own inputs when none are given.
    let inputs = match (&stored, req.inputs.is_empty()) {
        (Some((Some(c), _)), true) => c.inputs.clone(),
        (_, true) => {
            return Err(LaunchError::new(
                exit::USAGE,
                "no inputs: pass feed files or folders (e.g. sample_data/), or --resume to \
                 continue a run",
            ))
        }
        (_, false) => store_paths::canonical_inputs(req.inputs),
    };
    let files = crate::ingest::discover(&inputs)
        .map_err(|e| LaunchError::new(exit::NOINPUT, e.to_string()))?;
    if files.is_empty() {
        return Err(LaunchError::new(
            exit::NOINPUT,
            format!(
                "no feed files (.json, .jsonl, .ndjson, .xml, optionally .gz) in {}",
                inputs
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }

    // Thresholds: the stored run's (else the rule file's), with any set value on top.
    let base = stored
        .as_ref()
        .and_then(|(_, t)| *t)
        .unwrap_or_else(|| rules.thresholds());
    let overridden =
        s.high.is_some() || s.low.is_some() || s.p_yes_cut.is_some() || s.min_text_len.is_some();
    let thresholds = Thresholds {
        high: s.high.unwrap_or(base.high),
        low: s.low.unwrap_or(base.low),
        p_yes_cut: s.p_yes_cut.unwrap_or(base.p_yes_cut),
        min_text_len: s.min_text_len.unwrap_or(base.min_text_len),
    };
    thresholds
        .validate()
        .map_err(|e| LaunchError::new(exit::CONFIG, e))?;
    let mut notes = Vec::new();
    let from = match (overridden && thresholds != base, existing) {
        (true, true) => {
            let flips = flips_in_store(&store, &base, &thresholds);
            format!("set now, replacing the stored run's; {flips}")
        }
        (true, false) => "set now".to_string(),
        (false, true) => "kept from the stored run".to_string(),
        (false, false) => "from the rule file".to_string(),
    };
    notes.push(format!(
        "thresholds: high {}, low {}, P(yes) cut {}, min text {} ({from})",
        thresholds.high, thresholds.low, thresholds.p_yes_cut, thresholds.min_text_len
    ));

    let factory = backend::factory(&BackendChoice {
        kind: s.verifier,
        model: s.model.clone(),
        max_text_tokens: s.max_text_tokens,
        http: s.http.clone(),
        test_delay_ms: req.test_delay_ms,
    })
    .map_err(|e| {
        LaunchError::new(
            exit::VERIFIER,
            format!("verifier {}: {e}", s.verifier.name()),
        )
    })?;
    if s.verifier == VerifierKind::Mlx {
        let path = backend::mlx_model_path(s.model.as_deref());
        notes.push(format!("verifier mlx, model {}", path.display()));
    }

    let mut config = EngineConfig::new(store.clone(), inputs.clone(), rules);
    config.rules_file = s.rules.clone();
    config.thresholds = (overridden || !existing).then_some(thresholds);
    config.verifier = factory;
    config.verifier_name = s.verifier.name().into();
    config.batch_size = s.batch_size;
    config.batch_wait = s.batch_wait;
    config.verify_retry = s.verify_retry;
    config.shared_cache = Some(s.paths.shared_cache());
    config.head = s
        .head
        .options()
        .map_err(|e| LaunchError::new(exit::CONFIG, e))?;
    config.dedup = s.dedup.clone();
    // Like the thresholds: a resumed run keeps the grouping it had (a threshold moved in the
    // workbench included) unless a flag, variable or the config file says otherwise.
    config.dedup_from_store = existing
        && s.origins
            .iter()
            .filter(|(id, _, _)| id.starts_with("dedup"))
            .all(|(_, _, o)| *o == Origin::Default);
    config.exit_when_done = req.exit_when_done;
    config.stats_interval = req.stats_interval;
    Ok(Prepared {
        config,
        store,
        resumed: existing,
        inputs,
        thresholds,
        notes,
    })
}

impl Prepared {
    pub fn store(&self) -> &Path {
        &self.store
    }

    /// Open (or resume) the store and start the engine.
    pub fn start(self) -> Result<Launched, LaunchError> {
        let Prepared {
            config,
            store,
            resumed,
            inputs,
            thresholds,
            notes,
        } = self;
        let handle = super::start(config).map_err(|e| {
            let code = match &e {
                EngineError::Config(_) => exit::CONFIG,
                EngineError::Inputs(_) => exit::NOINPUT,
                EngineError::Verifier(_) => exit::VERIFIER,
                EngineError::Store(StoreError::Invalid { what, .. }) if what.contains("in use") => {
                    exit::IN_USE
                }
                EngineError::Store(StoreError::Invalid { what, .. })
                    if what.contains("changed") =>
                {
                    exit::CONFIG
                }
                EngineError::Store(s) if s.is_write_failure() => exit::IOERR,
                _ => exit::FAILURE,
            };
            LaunchError::new(code, e.to_string())
        })?;
        Ok(Launched {
            handle,
            store,
            resumed,
            inputs,
            thresholds,
            notes,
        })
    }
}

/// The report of a rule file that does not compile, one error a line (regex carets intact)
/// and a count: `rules check`, `run`, `scan` and the TUI print the same.
pub fn rule_errors_report(file: &Path, errors: &[String]) -> String {
    let mut s = String::new();
    for e in errors {
        s.push_str(e);
        s.push('\n');
    }
    s.push_str(&format!(
        "{}: {} error{}",
        file.display(),
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    ));
    s
}

fn store_error(e: StoreError) -> LaunchError {
    let code = if e.is_write_failure() {
        exit::IOERR
    } else {
        exit::CONFIG
    };
    LaunchError::new(code, e.to_string())
}

/// How many stored verdicts a threshold change flips, for the line that announces it
/// (counted as the threshold panel counts them).
fn flips_in_store(store: &Path, old: &Thresholds, new: &Thresholds) -> String {
    let Ok(records) = RunStore::open_read(store).and_then(|s| s.load_inputs()) else {
        return "flips unknown (store unreadable)".into();
    };
    let mut f = super::FlipPreview::default();
    for r in &records {
        let a = crate::decide::decide(&r.inputs, old);
        let b = crate::decide::decide(&r.inputs, new);
        super::index::count_flip(&mut f, &a, &b, &r.inputs, false);
    }
    format!(
        "{} verdicts flip: {}",
        f.from_kept + f.from_removed + f.from_pending,
        f.summary()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};
    use std::collections::HashMap;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        engine: EngineArgs,
    }

    fn settings(argv: &[&str], vars: &[(&str, &str)]) -> EngineSettings {
        let m = Cli::command()
            .try_get_matches_from(std::iter::once("x").chain(argv.iter().copied()))
            .unwrap();
        let cli = Cli::from_arg_matches(&m).unwrap();
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EngineSettings::resolve(&cli.engine, Some(&m), |k| vars.get(k).cloned()).unwrap()
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(
            &cfg,
            "[engine]\nhigh = 6.0\nbatch_wait_ms = 50\nverifier = \"none\"\nverify_retries = 3\n\
             verify_retry_max_wait_ms = 9000\n[tui]\nfps = 10\n",
        )
        .unwrap();
        let c = cfg.to_str().unwrap();
        let s = settings(&["--config", c, "--high", "7"], &[]);
        assert_eq!(s.high, Some(7.0));
        // The verifier's retry policy: file, flag and default.
        assert_eq!(s.verify_retry.rounds, 3);
        assert_eq!(s.verify_retry.max_wait, Duration::from_millis(9000));
        assert_eq!(s.verify_retry.backoff, Duration::from_millis(500));
        let r = settings(&["--config", c, "--verify-retry-backoff-ms", "40"], &[]);
        assert_eq!(r.verify_retry.backoff, Duration::from_millis(40));
        let printed = r.to_toml();
        for line in [
            "verify_retries = 3",
            "verify_retry_backoff_ms = 40",
            "verify_retry_max_wait_ms = 9000",
        ] {
            assert!(printed.contains(line), "{line}: {printed}");
        }
        assert_eq!(s.batch_wait, Duration::from_millis(50));
        assert_eq!(s.verifier, VerifierKind::None);
        assert_eq!(s.low, None);
        let printed = s.to_toml();
        assert!(printed.contains("high = 7.0"), "{printed}");
        assert!(printed.contains("# flag"), "{printed}");
        assert!(printed.contains("batch_wait_ms = 50"), "{printed}");
        assert!(printed.contains("# config file"), "{printed}");
        assert!(printed.contains("verifier = \"none\""), "{printed}");
    }

    #[test]
    fn dedup_settings_layer_like_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, "[engine]\ndedup_threshold = 0.8\n").unwrap();
        let c = cfg.to_str().unwrap();
        // Default on, threshold from the file.
        let s = settings(&["--config", c], &[]);
        assert_eq!(s.dedup.as_ref().map(|d| d.threshold), Some(0.8));
        // A flag over the file.
        let s = settings(&["--config", c, "--dedup-threshold", "0.9"], &[]);
        assert_eq!(s.dedup.as_ref().map(|d| d.threshold), Some(0.9));
        let s = settings(&["--config", c, "--dedup", "off"], &[]);
        assert!(s.dedup.is_none());
        let printed = s.to_toml();
        assert!(printed.contains("dedup = \"off\""), "{printed}");
        assert!(printed.contains("dedup_threshold = 0.8"), "{printed}");
        let s = settings(&["--dedup-prefer", "nvd-legacy,cve5"], &[]);
        let d = s.dedup.unwrap();
        assert_eq!(
            d.prefer,
            vec![
                crate::record::SourceKind::NvdLegacy,
                crate::record::SourceKind::Cve5
            ]
        );
    }

    #[test]
    fn an_unknown_engine_key_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, "[engine]\nhihg = 6.0\n").unwrap();
        let e = EngineFile::load(&cfg, true).unwrap_err();
        assert!(e.contains("c.toml") && e.contains("hihg"), "{e}");
        assert!(EngineFile::load(&dir.path().join("none.toml"), false).is_ok());
        assert!(EngineFile::load(&dir.path().join("none.toml"), true).is_err());
    }

    #[test]
    fn resume_takes_a_value_only_with_an_equals_sign() {
        #[derive(Parser)]
        struct WithInputs {
            inputs: Vec<PathBuf>,
            #[command(flatten)]
            engine: EngineArgs,
        }
        let c = WithInputs::try_parse_from(["x", "--resume", "coll"]).unwrap();
        assert_eq!(c.engine.resume, Some(None));
        assert_eq!(c.inputs, vec![PathBuf::from("coll")]);
        let c = WithInputs::try_parse_from(["x", "--resume=run.cfrun"]).unwrap();
        assert_eq!(c.engine.resume, Some(Some(PathBuf::from("run.cfrun"))));
    }
}
