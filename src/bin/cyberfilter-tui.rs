//! `cyberfilter-tui`: the curation workbench. Thin: parse flags, resolve config and paths,
//! start the engine, hand its channels to `tui::run_tui`, print a summary after the terminal
//! is restored.

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser};
use cyberfilter::engine::launch::{prepare, EngineArgs, EngineSettings, LaunchRequest};
use cyberfilter::engine::types::{Command, EngineEvent};
use cyberfilter::paths::Paths;
use cyberfilter::tui::config::TuiConfig;
use cyberfilter::tui::keymap::Mode;
use cyberfilter::tui::{run_tui, SessionInfo, TuiOptions};
use cyberfilter::verify::backend::VerifierKind;
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
    /// Default: sample_data/ when the current folder has one.
    #[arg(value_name = "INPUT")]
    inputs: Vec<PathBuf>,

    #[command(flatten)]
    engine: EngineArgs,

    /// Theme: dark, light, mono, or a path to a theme TOML (NO_COLOR picks mono otherwise).
    #[arg(long, value_name = "NAME|PATH")]
    theme: Option<String>,

    /// Log file (default: $XDG_STATE_HOME/cyberfilter/cyberfilter-tui.log).
    #[arg(long, value_name = "PATH")]
    log_file: Option<PathBuf>,

    /// Print shell completions for cyberfilter-tui (bash, zsh, fish, …) and exit.
    #[arg(long, value_name = "SHELL", value_enum)]
    completions: Option<clap_complete::Shell>,

    /// Write the cyberfilter-tui man page into this folder and exit.
    #[arg(long, value_name = "DIR")]
    man: Option<PathBuf>,
}

/// The engine seen from the TUI: its two channels and a future that resolves when it has
/// stopped (with its error, if it failed).
pub struct EngineChannels {
    pub commands: mpsc::Sender<Command>,
    pub events: mpsc::Receiver<EngineEvent>,
    pub finished: Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>,
}

fn channels(handle: cyberfilter::engine::EngineHandle) -> EngineChannels {
    let join = handle.join;
    EngineChannels {
        commands: handle.commands,
        events: handle.events,
        finished: Box::pin(async move {
            match tokio::task::spawn_blocking(move || join.join()).await? {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.into()),
                Err(_) => anyhow::bail!("the engine thread panicked"),
            }
        }),
    }
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
        paths.log_file(None).display()
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
    let paths = Paths::resolve(env, None);
    let matches = Cli::command().after_help(after_help(&paths)).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    match run(cli, &matches) {
        Ok(code) => cyberfilter::engine::verifier::exit_process(code),
        Err(e) => {
            eprintln!("cyberfilter-tui: {e:#}");
            cyberfilter::engine::verifier::exit_process(1);
        }
    }
}

/// A config file that does not parse: the same code as the CLI's bad configuration.
const EXIT_CONFIG: i32 = cyberfilter::engine::launch::exit::CONFIG;

fn run(cli: Cli, matches: &clap::ArgMatches) -> anyhow::Result<i32> {
    use cyberfilter::cli::{write_docs, DocsArgs};
    if let Some(shell) = cli.completions {
        return Ok(write_docs(Cli::command(), &DocsArgs::Completions { shell }));
    }
    if let Some(out) = &cli.man {
        return Ok(write_docs(
            Cli::command(),
            &DocsArgs::Man { out: out.clone() },
        ));
    }
    let env = |k: &str| std::env::var(k).ok();
    let settings = match EngineSettings::resolve(&cli.engine, Some(matches), env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cyberfilter-tui: {e}");
            return Ok(e.code);
        }
    };
    let paths = &settings.paths;
    let mut cfg = match TuiConfig::load(&paths.config_file, settings.config_file_explicit) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cyberfilter-tui: {e}");
            return Ok(EXIT_CONFIG);
        }
    };
    if let Some(l) = &cli.log_file {
        cfg.log_file = Some(l.clone());
    }
    let log_file = paths.log_file(cfg.log_file.as_deref());
    // No inputs and no run to resume: the samples when this folder has them (the README's
    // first command), otherwise the launch says what to pass.
    let inputs = if cli.inputs.is_empty()
        && cli.engine.resume.is_none()
        && cli.engine.store.is_none()
        && std::path::Path::new("sample_data").is_dir()
    {
        vec![PathBuf::from("sample_data")]
    } else {
        cli.inputs.clone()
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

    if cli.engine.print_config {
        print!("{}", settings.to_toml());
        match settings.pick_store(&inputs, &cli.engine.resume, &cli.engine.store) {
            Ok(s) => println!("# store: {}", s.display()),
            Err(e) => println!("# store: {e}"),
        }
        println!("# log file: {}", log_file.display());
        println!("# theme in use: {}\n", theme.name);
        print!("{}", cfg.to_toml());
        return Ok(0);
    }

    // Every check that can fail is done before the screen opens (and before any store exists).
    let prepared = match prepare(
        &settings,
        &LaunchRequest {
            inputs: &inputs,
            resume: &cli.engine.resume,
            store: &cli.engine.store,
            exit_when_done: false,
            stats_interval: Duration::from_millis(250),
            test_delay_ms: 300,
        },
    ) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cyberfilter-tui: {e}");
            return Ok(e.code);
        }
    };
    if !std::io::stdout().is_terminal() {
        eprintln!(
            "cyberfilter-tui: stdout is not a terminal; use `cyberfilter` for scripts and pipes"
        );
        return Ok(1);
    }
    init_logging(&log_file)?;
    tracing::info!(?inputs, ?cli.engine, "starting a session");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        // The model loads before the screen opens (a few seconds for the default one).
        if settings.verifier == VerifierKind::Mlx {
            let path = cyberfilter::verify::backend::mlx_model_path(settings.model.as_deref());
            eprintln!("cyberfilter-tui: loading {}", path.display());
        }
        let launched = match prepared.start() {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cyberfilter-tui: {e}");
                return Ok(e.code);
            }
        };
        for note in &launched.notes {
            tracing::info!("{note}");
        }
        let store = launched.store.clone();
        let engine = channels(launched.handle);
        let opts = TuiOptions {
            keymap,
            theme,
            session: SessionInfo {
                title: store.display().to_string(),
                resumed: launched.resumed,
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
            "{} records in {:.1?}: {} kept, {} removed, {} pending; {} labels this session; store {}",
            s.records_read, s.elapsed, s.kept, s.removed, s.pending, end.labels, store.display()
        );
        Ok(0)
    })
}

fn env_str(k: &str) -> Option<String> {
    std::env::var(k).ok()
}
