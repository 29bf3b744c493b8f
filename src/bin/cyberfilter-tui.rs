//! `cyberfilter-tui`: the curation workbench. Thin: parse flags, resolve config and paths,
//! start the engine, hand its channels to `tui::run_tui`, print a summary after the terminal
//! is restored.

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser};
use cyberfilter::engine::types::{Command, EngineEvent};
use cyberfilter::tui::config::{Paths, TuiConfig};
use cyberfilter::tui::keymap::Mode;
use cyberfilter::tui::{run_tui, SessionInfo, TuiOptions};
use std::future::Future;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::mpsc;

/// Curate security feeds live: the engine streams, scores and verifies records in the
/// background while you watch, tune thresholds and relabel.
#[derive(Debug, Parser)]
#[command(name = "cyberfilter-tui", version, about, long_about = None)]
struct Cli {
    /// Input files or folders (NVD, CVE 5, STIX, CAPEC/CWE XML, JSONL; .gz too).
    /// Default: sample_data/.
    #[arg(value_name = "INPUT")]
    inputs: Vec<PathBuf>,

    /// Open an existing run where it stopped (default: the most recent run).
    #[arg(long, value_name = "STORE", num_args = 0..=1, conflicts_with = "inputs")]
    resume: Option<Option<PathBuf>>,

    /// Where to keep this run's store (records, decisions, label log).
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,

    /// Config file (default: $CYBERFILTER_CONFIG, else $XDG_CONFIG_HOME/cyberfilter/config.toml).
    #[arg(long, value_name = "PATH", env = "CYBERFILTER_CONFIG")]
    config: Option<PathBuf>,

    /// Print the resolved configuration and paths, then exit.
    #[arg(long)]
    print_config: bool,

    /// Theme: dark, light, mono, or a path to a theme TOML (NO_COLOR picks mono otherwise).
    #[arg(long, value_name = "NAME|PATH")]
    theme: Option<String>,

    /// Rule file (TOML); default: the built-in rules (a resumed run needs the rules it began with).
    #[arg(long, value_name = "PATH", env = "CYBERFILTER_RULES")]
    rules: Option<PathBuf>,

    /// Verifier backend for uncertain records: mlx (default), http, or none (they stay pending).
    #[arg(long, value_name = "KIND", env = "CYBERFILTER_VERIFIER")]
    verifier: Option<String>,

    /// Model of the MLX verifier: a .gguf file or a Hugging Face folder (default: the
    /// SmolLM2-135M-Instruct GGUF fetched by scripts/setup.sh).
    #[arg(long, value_name = "PATH", env = "CYBERFILTER_MODEL")]
    model: Option<String>,

    /// The MLX verifier reads at most this many tokens of a record's text (default 256).
    #[arg(long, value_name = "N")]
    max_text_tokens: Option<usize>,

    /// Keep records scoring at or above this.
    #[arg(long, value_name = "SCORE")]
    high: Option<f32>,

    /// Reject records scoring below this; between low and high the verifier decides.
    #[arg(long, value_name = "SCORE")]
    low: Option<f32>,

    /// P(yes) at or above which the verifier's answer keeps a record.
    #[arg(long, value_name = "P")]
    p_yes_cut: Option<f32>,

    /// Log file (default: $XDG_STATE_HOME/cyberfilter/cyberfilter-tui.log).
    #[arg(long, value_name = "PATH")]
    log_file: Option<PathBuf>,
}

/// What the engine needs to start this session: everything the curator chose on the command
/// line, plus the config file the engine reads its own sections from.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    pub inputs: Vec<PathBuf>,
    /// `Some(None)`: resume the most recent run; `Some(Some(path))`: that store.
    pub resume: Option<Option<PathBuf>>,
    pub store: Option<PathBuf>,
    pub config_file: PathBuf,
    pub rules: Option<PathBuf>,
    pub verifier: Option<String>,
    pub model: Option<String>,
    pub max_text_tokens: Option<usize>,
    pub high: Option<f32>,
    pub low: Option<f32>,
    pub p_yes_cut: Option<f32>,
}

/// The engine seen from the TUI: its two channels and a future that resolves when it has
/// stopped (with its error, if it failed).
pub struct EngineChannels {
    pub commands: mpsc::Sender<Command>,
    pub events: mpsc::Receiver<EngineEvent>,
    pub finished: Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>,
}

// Engine wiring: the TUI owns no engine code; it starts one and keeps its two channels.
fn start_engine(launch: &LaunchOptions) -> anyhow::Result<EngineChannels> {
    use cyberfilter::engine::{self, EngineConfig};
    use cyberfilter::rules::{RuleSet, Thresholds};
    use cyberfilter::store::{paths, RunStore};
    let rules = match &launch.rules {
        Some(p) => RuleSet::from_file(p)?,
        None => RuleSet::default_rules(),
    };
    let store = match (&launch.store, &launch.resume) {
        (Some(s), _) | (None, Some(Some(s))) => s.clone(),
        (None, Some(None)) => paths::list_stores(&paths::runs_dir())
            .into_iter()
            .next()
            .with_context(|| format!("--resume: no run in {}", paths::runs_dir().display()))?,
        (None, None) => paths::new_store_path(&launch.inputs),
    };
    let stored = RunStore::open_read(&store)
        .ok()
        .and_then(|s| s.config().ok().flatten());
    // A resumed run reads its own inputs.
    let inputs = match (&launch.resume, stored.as_ref()) {
        (Some(_), Some(c)) if launch.inputs.is_empty() => c.inputs.clone(),
        _ => launch.inputs.clone(),
    };
    if let Some(dir) = store.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
    }
    let mut config = EngineConfig::new(store.clone(), inputs, rules.clone());
    if launch.high.is_some() || launch.low.is_some() || launch.p_yes_cut.is_some() {
        let base = RunStore::open_read(&store)
            .ok()
            .and_then(|s| s.thresholds().ok().flatten())
            .unwrap_or_else(|| rules.thresholds());
        config.thresholds = Some(Thresholds {
            high: launch.high.unwrap_or(base.high),
            low: launch.low.unwrap_or(base.low),
            p_yes_cut: launch.p_yes_cut.unwrap_or(base.p_yes_cut),
            ..base
        });
    }
    use cyberfilter::verify::backend::{self, BackendChoice, VerifierKind};
    let name = launch.verifier.as_deref().unwrap_or("mlx");
    let Ok(kind) = <VerifierKind as clap::ValueEnum>::from_str(name, true) else {
        anyhow::bail!("verifier `{name}` is not part of this build (mlx, http, none)");
    };
    let model = launch.model.as_deref().map(PathBuf::from);
    config.verifier = backend::factory(&BackendChoice {
        kind,
        model: model.clone(),
        max_text_tokens: launch.max_text_tokens,
        // An OpenAI-compatible server at $CYBERFILTER_HTTP_URL; --model is the name sent.
        http: cyberfilter::verify::http::HttpOptions {
            url: std::env::var("CYBERFILTER_HTTP_URL")
                .unwrap_or_else(|_| cyberfilter::verify::http::DEFAULT_URL.into()),
            model: launch.model.clone(),
            ..Default::default()
        },
        test_delay_ms: 300,
    })?;
    if kind == VerifierKind::Mlx {
        // The model loads before the screen opens (a few seconds for the default one).
        let path = backend::mlx_model_path(model.as_deref());
        eprintln!("cyberfilter-tui: loading {}", path.display());
    }
    config.verifier_name = kind.name().into();
    config.exit_when_done = false;
    config.stats_interval = Duration::from_millis(250);
    let h = engine::start(config)?;
    let join = h.join;
    Ok(EngineChannels {
        commands: h.commands,
        events: h.events,
        finished: Box::pin(async move {
            match tokio::task::spawn_blocking(move || join.join()).await? {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.into()),
                Err(_) => anyhow::bail!("the engine thread panicked"),
            }
        }),
    })
}

fn after_help(paths: &Paths) -> String {
    let keymap = cyberfilter::tui::keymap::Keymap::default_keymap();
    let mut s = String::from("Keys (press ? in the app for all; remap them in the config file):\n");
    for mode in [Mode::Global, Mode::Table] {
        for (keys, desc) in keymap.help_rows(mode).into_iter().take(12) {
            s.push_str(&format!("  {keys:<10} {desc}\n"));
        }
    }
    s.push_str(&format!(
        "\nFiles:\n  config  {}\n  log     {}\n\nEnvironment: CYBERFILTER_CONFIG, CYBERFILTER_LOG (log level, e.g. debug), \
         NO_COLOR (monochrome theme), XDG_CONFIG_HOME, XDG_STATE_HOME.\n\
         For scripts and CI use `cyberfilter` (the same engine, no screen).",
        paths.config_file.display(),
        paths.log_file(&TuiConfig::default()).display()
    ));
    s
}

fn init_logging(path: &std::path::Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the log folder", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("{}: cannot open the log file", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("CYBERFILTER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_env_filter(filter)
        .init();
    Ok(())
}

fn main() {
    let env = |k: &str| std::env::var(k).ok();
    let paths = Paths::resolve(env);
    let matches = Cli::command().after_help(after_help(&paths)).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    match run(cli, paths) {
        Ok(code) => cyberfilter::engine::verifier::exit_process(code),
        Err(e) => {
            eprintln!("cyberfilter-tui: {e:#}");
            cyberfilter::engine::verifier::exit_process(1);
        }
    }
}

/// EX_CONFIG from sysexits: the configuration is wrong.
const EXIT_CONFIG: i32 = 78;

fn run(cli: Cli, paths: Paths) -> anyhow::Result<i32> {
    let explicit = cli.config.is_some();
    let config_file = cli
        .config
        .clone()
        .unwrap_or_else(|| paths.config_file.clone());
    let mut cfg = match TuiConfig::load(&config_file, explicit) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cyberfilter-tui: {e}");
            return Ok(EXIT_CONFIG);
        }
    };
    if let Some(l) = &cli.log_file {
        cfg.log_file = Some(l.clone());
    }
    let log_file = paths.log_file(&cfg);
    let inputs = if cli.inputs.is_empty() && cli.resume.is_none() {
        vec![PathBuf::from("sample_data")]
    } else {
        cli.inputs.clone()
    };
    let launch = LaunchOptions {
        inputs,
        resume: cli.resume.clone(),
        store: cli.store.clone(),
        config_file: config_file.clone(),
        rules: cli.rules.clone(),
        verifier: cli.verifier.clone(),
        model: cli.model.clone(),
        max_text_tokens: cli.max_text_tokens,
        high: cli.high,
        low: cli.low,
        p_yes_cut: cli.p_yes_cut,
    };
    let (keymap, theme) = match (
        cfg.keymap(),
        cfg.theme(
            cli.theme.as_deref(),
            env_str("NO_COLOR").as_deref(),
            env_str("TERM").as_deref(),
        ),
    ) {
        (Ok(k), Ok(t)) => (k, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("cyberfilter-tui: {e}");
            return Ok(EXIT_CONFIG);
        }
    };

    if cli.print_config {
        let exists = if config_file.exists() {
            ""
        } else {
            " (not found: defaults in use)"
        };
        println!("# config file: {}{exists}", config_file.display());
        println!("# log file:    {}", log_file.display());
        println!("# theme in use: {}", theme.name);
        println!(
            "# session: inputs {:?}, resume {:?}, store {:?}",
            launch.inputs, launch.resume, launch.store
        );
        println!(
            "# verifier {:?}, model {:?}, high {:?}, low {:?}, p_yes_cut {:?}\n",
            launch.verifier, launch.model, launch.high, launch.low, launch.p_yes_cut
        );
        print!("{}", cfg.to_toml());
        return Ok(0);
    }

    if !std::io::stdout().is_terminal() {
        eprintln!(
            "cyberfilter-tui: stdout is not a terminal; use `cyberfilter` for scripts and pipes"
        );
        return Ok(1);
    }
    init_logging(&log_file)?;
    tracing::info!(?launch, "starting a session");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let engine = start_engine(&launch)?;
        let title = match (&launch.resume, &launch.store) {
            (Some(Some(p)), _) | (_, Some(p)) => p.display().to_string(),
            (Some(None), None) => "resumed run".to_string(),
            _ => launch.inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" "),
        };
        let opts = TuiOptions {
            keymap,
            theme,
            session: SessionInfo {
                title,
                resumed: launch.resume.is_some(),
            },
            fps: cfg.fps,
            table_refresh: Duration::from_millis(cfg.table_refresh_ms),
            export_dir: cfg.export_dir.clone(),
            mouse: cfg.mouse,
            stop_timeout: Duration::from_secs(15),
        };
        let ui = run_tui(engine.commands, engine.events, opts).await;
        // The terminal is restored here; what follows prints to the normal screen.
        let engine_result = tokio::time::timeout(Duration::from_secs(15), engine.finished).await;
        let end = ui.context("the terminal UI failed")?;
        match engine_result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!("engine: {e:#}");
                eprintln!("cyberfilter-tui: the engine failed: {e:#} (log: {})", log_file.display());
                return Ok(1);
            }
            Err(_) => eprintln!("cyberfilter-tui: the engine did not stop within 15 s; the store keeps every label already sent"),
        }
        let s = &end.stats;
        println!(
            "{} records in {:.1?}: {} kept, {} removed, {} pending; {} labels this session",
            s.records_read, s.elapsed, s.kept, s.removed, s.pending, end.labels
        );
        Ok(0)
    })
}

fn env_str(k: &str) -> Option<String> {
    std::env::var(k).ok()
}
