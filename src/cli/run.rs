//! `cyberfilter run`: the engine without a screen. Progress on stderr (a bar on a terminal,
//! JSON lines otherwise), a JSON summary on stdout at the end.

use super::{EXIT_CONFIG, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_VERIFIER};
use crate::engine::{self, EngineConfig, EngineError, EngineEvent, StatsSnapshot};
use crate::rules::{RuleSet, Thresholds};
use crate::store::paths;
use crate::store::RunStore;
use crate::verify::backend::{self, BackendChoice, VerifierKind};
use crate::verify::{VerifierFactory, VerifyError};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, JSON lines otherwise.
    Auto,
    Bar,
    Json,
    None,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Input files or folders (folders are walked for feeds).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The run store; an existing store is resumed. Default: a new store in the data dir.
    #[arg(long, env = "CYBERFILTER_STORE")]
    pub store: Option<PathBuf>,
    /// Resume the latest store made for these inputs (in the data dir).
    #[arg(long)]
    pub resume: bool,
    /// Verifier backend for verify-tier records (`none`: they stay pending).
    #[arg(long, value_enum, default_value = "mlx", env = "CYBERFILTER_VERIFIER")]
    pub verifier: VerifierKind,
    /// Model of the MLX verifier: a .gguf file or a Hugging Face folder (default: the
    /// SmolLM2-135M-Instruct GGUF fetched by scripts/setup.sh).
    #[arg(long, value_name = "PATH", env = "CYBERFILTER_MODEL")]
    pub model: Option<PathBuf>,
    /// The MLX verifier reads at most this many tokens of a record's text, keeping its head
    /// (default 256; part of the cache key, so answers for other lengths are not reused).
    #[arg(long, value_name = "N")]
    pub max_text_tokens: Option<usize>,
    /// Keep at or above this rule score.
    #[arg(long, env = "CYBERFILTER_HIGH", allow_negative_numbers = true)]
    pub high: Option<f32>,
    /// Reject below this rule score (between low and high: ask the verifier).
    #[arg(long, env = "CYBERFILTER_LOW", allow_negative_numbers = true)]
    pub low: Option<f32>,
    /// Rule file (TOML); default: the built-in rules.
    #[arg(long, env = "CYBERFILTER_RULES")]
    pub rules: Option<PathBuf>,
    /// Records per verifier batch (default: the backend's preferred size).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Send a partial batch once its oldest record has waited this long.
    #[arg(long, default_value_t = 200)]
    pub batch_wait_ms: u64,
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
    /// How often progress is reported (default: 200 ms for the bar, 500 ms for JSON lines).
    #[arg(long)]
    pub stats_interval_ms: Option<u64>,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub head: super::head::HeadArgs,
}

/// Flags of `--verifier http` (an OpenAI-compatible server: mlx_lm.server, llama.cpp, vLLM).
#[derive(Debug, Clone, clap::Args)]
pub struct HttpArgs {
    /// Base URL of the server (`/v1/chat/completions` is appended).
    #[arg(long, env = "CYBERFILTER_HTTP_URL", default_value = crate::verify::http::DEFAULT_URL)]
    pub http_url: String,
    /// Model name sent as `model` (default: none sent; the server uses the model it serves).
    #[arg(long, env = "CYBERFILTER_HTTP_MODEL")]
    pub http_model: Option<String>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub http_concurrency: usize,
    /// Limit for one request, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    pub http_timeout_ms: u64,
    /// Retries after the first try, on connection errors, 5xx and 429 (exponential backoff).
    #[arg(long, default_value_t = 2)]
    pub http_retries: u32,
    /// Alternatives asked for the first answer token (mlx_lm.server allows at most 11).
    #[arg(long, default_value_t = 10)]
    pub http_top_logprobs: u32,
    /// The served model's tokenizer.json or GGUF: records are then cut at 256 tokens like
    /// the MLX verifier does; without it, at 1024 characters.
    #[arg(long)]
    pub http_tokenizer: Option<PathBuf>,
}

impl HttpArgs {
    pub fn options(&self) -> crate::verify::http::HttpOptions {
        crate::verify::http::HttpOptions {
            url: self.http_url.clone(),
            model: self.http_model.clone(),
            concurrency: self.http_concurrency.max(1),
            timeout: Duration::from_millis(self.http_timeout_ms.max(1)),
            retries: self.http_retries,
            top_logprobs: self.http_top_logprobs,
            tokenizer: self.http_tokenizer.clone(),
            ..Default::default()
        }
    }
}

fn verifier_factory(args: &RunArgs) -> Result<Option<VerifierFactory>, VerifyError> {
    let factory = backend::factory(&BackendChoice {
        kind: args.verifier,
        model: args.model.clone(),
        max_text_tokens: args.max_text_tokens,
        http: args.http.options(),
        test_delay_ms: 0,
    })?;
    if args.verifier == VerifierKind::Mlx {
        let path = backend::mlx_model_path(args.model.as_deref());
        eprintln!("cyberfilter: verifier mlx, model {}", path.display());
    }
    Ok(factory)
}

/// The store to use: given, the latest one for these inputs (`--resume`), or a new one.
fn pick_store(args: &RunArgs) -> Result<PathBuf, String> {
    if let Some(s) = &args.store {
        return Ok(s.clone());
    }
    if args.resume {
        for p in paths::list_stores(&paths::runs_dir()) {
            let Ok(s) = RunStore::open_read(&p) else {
                continue;
            };
            if s.config()
                .ok()
                .flatten()
                .is_some_and(|c| c.inputs == args.inputs)
            {
                return Ok(p);
            }
        }
        return Err(format!(
            "--resume: no store for these inputs in {}",
            paths::runs_dir().display()
        ));
    }
    Ok(paths::new_store_path(&args.inputs))
}

pub fn run(args: &RunArgs) -> i32 {
    let rules = match &args.rules {
        None => RuleSet::default_rules(),
        Some(p) => match RuleSet::from_file(p) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("cyberfilter: {e}");
                return EXIT_CONFIG;
            }
        },
    };
    let store = match pick_store(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cyberfilter: {e}");
            return EXIT_CONFIG;
        }
    };
    for i in &args.inputs {
        if !i.exists() {
            eprintln!("cyberfilter: input {} does not exist", i.display());
            return super::EXIT_NOINPUT;
        }
    }
    // Thresholds from flags apply on top of the store's (or the defaults).
    let thresholds = if args.high.is_some() || args.low.is_some() {
        let base = RunStore::open_read(&store)
            .ok()
            .and_then(|s| s.thresholds().ok().flatten())
            .unwrap_or_else(|| rules.thresholds());
        let t = Thresholds {
            high: args.high.unwrap_or(base.high),
            low: args.low.unwrap_or(base.low),
            ..base
        };
        if t.low > t.high {
            eprintln!("cyberfilter: --low {} is above --high {}", t.low, t.high);
            return EXIT_CONFIG;
        }
        Some(t)
    } else {
        None
    };
    let factory = match verifier_factory(args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cyberfilter: verifier {}: {e}", args.verifier.name());
            return EXIT_VERIFIER;
        }
    };
    let mode = match args.progress {
        ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bar,
        ProgressMode::Auto => ProgressMode::Json,
        m => m,
    };
    let mut config = EngineConfig::new(store.clone(), args.inputs.clone(), rules);
    config.thresholds = thresholds;
    config.verifier = factory;
    config.verifier_name = args.verifier.name().into();
    config.batch_size = args.batch_size;
    config.shared_cache = Some(paths::data_dir().join("llm-cache.sqlite"));
    config.head = match args.head.options() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("cyberfilter: {e}");
            return EXIT_CONFIG;
        }
    };
    config.batch_wait = Duration::from_millis(args.batch_wait_ms);
    config.stats_interval = Duration::from_millis(
        args.stats_interval_ms
            .unwrap_or(if mode == ProgressMode::Bar { 200 } else { 500 }),
    );
    let handle = match engine::start(config) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("cyberfilter: {e}");
            return match e {
                EngineError::Config(_) => EXIT_CONFIG,
                EngineError::Inputs(_) => super::EXIT_NOINPUT,
                EngineError::Verifier(_) => EXIT_VERIFIER,
                _ => EXIT_FAILURE,
            };
        }
    };
    eprintln!("cyberfilter: store {}", store.display());
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cyberfilter: cannot start the runtime: {e}");
            return EXIT_FAILURE;
        }
    };
    let (interrupted, last) = rt.block_on(watch(handle.commands, handle.events, mode));
    let result = handle.join.join();
    let stats = match result {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            eprintln!("cyberfilter: {e}");
            return EXIT_FAILURE;
        }
        Err(_) => {
            eprintln!("cyberfilter: the engine thread panicked");
            return EXIT_FAILURE;
        }
    };
    let stats = last.unwrap_or(stats);
    print_summary(&store, &stats, interrupted);
    if interrupted {
        EXIT_INTERRUPTED
    } else {
        EXIT_OK
    }
}

/// Follow events until `Finished`; Ctrl-C or SIGTERM asks for a clean stop.
async fn watch(
    commands: tokio::sync::mpsc::Sender<engine::Command>,
    mut events: tokio::sync::mpsc::Receiver<EngineEvent>,
    mode: ProgressMode,
) -> (bool, Option<StatsSnapshot>) {
    let bar = (mode == ProgressMode::Bar).then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {bytes}/{total_bytes} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b
    });
    let mut interrupted = false;
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    loop {
        #[cfg(unix)]
        let term_fut = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term_fut = std::future::pending::<()>();
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { return (interrupted, None) };
                match ev {
                    EngineEvent::Stats(s) => progress(&bar, mode, &s),
                    EngineEvent::Files(f) => {
                        if let Some(b) = &bar {
                            b.set_length(f.iter().map(|x| x.bytes_total).sum());
                        }
                    }
                    EngineEvent::Error { file, message } => {
                        let line = format!("error: {file}: {message}");
                        match &bar {
                            Some(b) => b.println(line),
                            None if mode == ProgressMode::Json => eprintln!(
                                "{}",
                                serde_json::json!({"event": "error", "file": file, "message": message})
                            ),
                            None => eprintln!("{line}"),
                        }
                    }
                    EngineEvent::Head(h) => match &bar {
                        Some(b) => b.println(&h.message),
                        None if mode == ProgressMode::Json => eprintln!(
                            "{}",
                            serde_json::json!({"event": "head", "message": h.message, "version": h.version, "cv_auc": h.cv_auc, "to_kept": h.to_kept, "to_removed": h.to_removed})
                        ),
                        None => eprintln!("{}", h.message),
                    },
                    EngineEvent::Finished(s) => {
                        if let Some(b) = &bar {
                            b.finish_and_clear();
                        }
                        if mode == ProgressMode::Json {
                            progress_line(&s, "finished");
                        }
                        return (interrupted, Some(s));
                    }
                    _ => {}
                }
            }
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                interrupted = true;
                let _ = commands.send(engine::Command::Stop).await;
            }
            _ = term_fut, if !interrupted => {
                interrupted = true;
                let _ = commands.send(engine::Command::Stop).await;
            }
        }
    }
}

fn progress(bar: &Option<indicatif::ProgressBar>, mode: ProgressMode, s: &StatsSnapshot) {
    match (bar, mode) {
        (Some(b), _) => {
            b.set_position(s.bytes_read);
            b.set_message(format!(
                "{} rec ({:.0}/s) kept {} removed {} pending {} queue {} fill {:.2} rss {} MB",
                s.records_read,
                s.records_per_sec,
                s.kept,
                s.removed,
                s.pending,
                s.verifier_queue,
                s.batch_fill,
                s.rss_bytes / (1024 * 1024)
            ));
        }
        (None, ProgressMode::Json) => progress_line(s, "progress"),
        _ => {}
    }
}

/// One JSON line on stderr: the snapshot plus `event` and `elapsed_s`.
fn progress_line(s: &StatsSnapshot, event: &str) {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("event".into(), event.into());
        o.insert("elapsed_s".into(), s.elapsed.as_secs_f64().into());
    }
    eprintln!("{v}");
}

fn print_summary(store: &std::path::Path, s: &StatsSnapshot, interrupted: bool) {
    let v = serde_json::json!({
        "store": store.display().to_string(),
        "interrupted": interrupted,
        "elapsed_s": s.elapsed.as_secs_f64(),
        "records_read": s.records_read,
        "bytes_read": s.bytes_read,
        "keep": s.keep, "verify": s.verify, "reject": s.reject,
        "kept": s.kept, "removed": s.removed, "pending": s.pending,
        "labelled": s.labelled,
        "llm_calls": s.llm_calls, "cache_hits": s.cache_hits,
        "verifier_errors": s.verifier_errors, "errors": s.errors,
        "peak_rss_bytes": crate::engine::stats::peak_rss_bytes(),
    });
    println!("{v}");
    eprintln!(
        "cyberfilter: {} records this run in {:.1}s; kept {}, removed {}, pending {}; {} errors{}",
        s.records_read,
        s.elapsed.as_secs_f64(),
        s.kept,
        s.removed,
        s.pending,
        s.errors,
        if interrupted {
            " (interrupted; run again to resume)"
        } else {
            ""
        }
    );
}
