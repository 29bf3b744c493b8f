//! `cyberfilter run`: the engine without a screen. Progress on stderr (a bar on a terminal,
//! JSON lines otherwise), a JSON summary on stdout at the end.

use super::{EXIT_DATAERR, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK};
use crate::engine::launch::{launch, EngineArgs, EngineSettings, LaunchRequest};
use crate::engine::{self, EngineEvent, StatsSnapshot};
use crate::store::RunStore;
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
    /// Input files or folders (folders are walked for feeds); with `--resume` alone, the
    /// stored run's own.
    #[arg(value_name = "INPUT", required_unless_present_any = ["resume", "store", "print_config"])]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
    /// How often progress is reported (default: 200 ms for the bar, 500 ms for JSON lines).
    #[arg(long)]
    pub stats_interval_ms: Option<u64>,
}

/// `matches` are the `run` subcommand's (they tell flags from environment variables for
/// `--print-config`).
pub fn run(args: &RunArgs, matches: Option<&clap::ArgMatches>) -> i32 {
    let env = |k: &str| std::env::var(k).ok();
    let settings = match EngineSettings::resolve(&args.engine, matches, env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cyberfilter: {e}");
            return e.code;
        }
    };
    if args.engine.print_config {
        print!("{}", settings.to_toml());
        match settings.pick_store(&args.inputs, &args.engine.resume, &args.engine.store) {
            Ok(s) => println!("# store: {}", s.display()),
            Err(e) => println!("# store: {e}"),
        }
        return EXIT_OK;
    }
    let mode = match args.progress {
        ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bar,
        ProgressMode::Auto => ProgressMode::Json,
        m => m,
    };
    let launched = match launch(
        &settings,
        &LaunchRequest {
            inputs: &args.inputs,
            resume: &args.engine.resume,
            store: &args.engine.store,
            exit_when_done: true,
            stats_interval: Duration::from_millis(
                args.stats_interval_ms
                    .unwrap_or(if mode == ProgressMode::Bar { 200 } else { 500 }),
            ),
            test_delay_ms: 0,
        },
    ) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cyberfilter: {e}");
            return e.code;
        }
    };
    for note in &launched.notes {
        eprintln!("cyberfilter: {note}");
    }
    let store = launched.store.clone();
    eprintln!(
        "cyberfilter: store {}{}",
        store.display(),
        if launched.resumed { " (resumed)" } else { "" }
    );
    let handle = launched.handle;
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
            // A store that cannot be written (disk full): EX_IOERR, and the store resumes.
            if matches!(&e, engine::EngineError::Store(s) if s.is_write_failure()) {
                return super::EXIT_IOERR;
            }
            return EXIT_FAILURE;
        }
        Err(_) => {
            eprintln!("cyberfilter: the engine thread panicked");
            return EXIT_FAILURE;
        }
    };
    let stats = last.unwrap_or(stats);
    // Input errors of this store (every session of it): they went to stderr as they came.
    let input_errors: u64 = RunStore::open_read(&store)
        .and_then(|s| s.files())
        .map(|f| f.iter().map(|f| f.errors).sum())
        .unwrap_or(0);
    print_summary(&store, &stats, interrupted, input_errors);
    if interrupted {
        EXIT_INTERRUPTED
    } else if input_errors > 0 {
        EXIT_DATAERR
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
                        // Reader messages already start with their file; name it once.
                        let line = if message.starts_with(file.as_str()) {
                            format!("error: {message}")
                        } else {
                            format!("error: {file}: {message}")
                        };
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
                        None => eprintln!("cyberfilter: {}", h.message),
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
            let retrying = match s.verifier_retrying {
                0 => String::new(),
                n => format!(" retrying {n}"),
            };
            b.set_message(format!(
                "{} rec ({:.0}/s) kept {} removed {} pending {} queue {}{retrying} fill {:.2} rss {} MB",
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
        // Seconds as a number (a Duration serialises as {secs, nanos}).
        o.insert("elapsed".into(), s.elapsed.as_secs_f64().into());
        o.insert("elapsed_s".into(), s.elapsed.as_secs_f64().into());
    }
    eprintln!("{v}");
}

fn print_summary(store: &std::path::Path, s: &StatsSnapshot, interrupted: bool, input_errors: u64) {
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
        "verifier_retrying": s.verifier_retrying,
        "verifier_failed_rounds": s.verifier_failed_rounds,
        "verifier_gave_up": s.verifier_gave_up,
        "input_errors": input_errors,
        "peak_rss_bytes": crate::engine::stats::peak_rss_bytes(),
    });
    println!("{v}");
    eprintln!(
        "cyberfilter: {} records this run in {:.1}s; kept {}, removed {}, pending {}; {}{}; store {}",
        s.records_read,
        s.elapsed.as_secs_f64(),
        s.kept,
        s.removed,
        s.pending,
        plural(s.errors, "error"),
        if interrupted {
            " (interrupted; run again to resume)"
        } else {
            ""
        },
        store.display()
    );
}

/// `1 error`, `2 errors`.
pub fn plural(n: u64, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}
