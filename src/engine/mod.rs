//! The engine: the only place that wires ingest → rules → verify → decide → store together.
//! Commands in, aggregated events out.
//!
//! Threads, all linked by bounded channels (backpressure, never unbounded memory):
//! - readers (one per input file, up to the core count): read, score, send on;
//! - the decider: assigns arrival order, decides, keeps the in-memory index, batches
//!   verify-tier records by size and maximum wait, answers every command, emits events;
//! - the verifier: owns the backend, one batch at a time, with the answer cache;
//! - the store writer: batched transactions, labels committed at once.
//!
//! The verify queue lives in the decider as record seqs (text kept only up to a cap; the
//! verifier reads the rest back from the store), so a slow or failing verifier never holds
//! ingest back: records stay `pending` until it answers.

mod decider;
pub mod head;
pub mod index;
pub mod launch;
pub mod metrics;
pub mod query;
pub mod retry;
pub mod source;
pub mod stats;
pub mod suggest;
pub mod types;
pub mod verifier;
mod writer;

pub use source::{IngestSource, RecordSource};
pub use types::*;

use crate::rules::{RuleSet, Thresholds};
use crate::store::lock::StoreLock;
use crate::store::{paths, RunConfig, RunState, RunStore, StoreError};
use crate::verify::{VerifierFactory, VerifyError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("bad configuration: {0}")]
    Config(String),
    #[error("inputs: {0}")]
    Inputs(String),
    /// The backend's own message says what failed (a model file, a server).
    #[error(transparent)]
    Verifier(VerifyError),
    #[error("engine thread: {0}")]
    Thread(String),
}

/// Everything a run needs.
pub struct EngineConfig {
    /// The run store file (created when absent; an existing one is resumed).
    pub store: PathBuf,
    pub inputs: Vec<PathBuf>,
    pub rules: Arc<RuleSet>,
    /// The rule file `rules` came from (`None`: the built-in rules); rules the curator adds
    /// from the workbench are written there (see [`suggest::session_rule_file`]).
    pub rules_file: Option<PathBuf>,
    /// Thresholds to apply; `None` keeps the store's (or the defaults for a new store).
    pub thresholds: Option<Thresholds>,
    /// The verifier backend; `None` leaves verify-tier records pending.
    pub verifier: Option<VerifierFactory>,
    /// Name stored with the run (`none`, `mlx`, `http`, `test-hash`).
    pub verifier_name: String,
    /// When the backend cannot be created: fail `start` (true) or run without it (false,
    /// reported as an error event).
    pub require_verifier: bool,
    pub source: Arc<dyn RecordSource>,
    /// Records per verifier batch; `None` takes the backend's preferred size.
    pub batch_size: Option<usize>,
    /// A partial batch is sent once its oldest record has waited this long.
    pub batch_wait: Duration,
    /// Failed verifier batches: how often and how long their records are asked again.
    pub verify_retry: retry::RetryPolicy,
    /// Bound of the reader → decider channel, in records (readers send chunks of 64).
    pub channel_capacity: usize,
    /// How often stats events are sent (metrics lines are written once a second).
    pub stats_interval: Duration,
    /// Stop by itself once every input is read and the verifier queue is empty (headless);
    /// otherwise emit `Drained` and keep answering commands (TUI).
    pub exit_when_done: bool,
    /// Reader threads (0: one per core, at most one per file).
    pub readers: usize,
    /// The answer cache shared between runs (`cyberfilter run` uses the data dir's
    /// `llm-cache.sqlite`); `None`: only the store's own cache.
    pub shared_cache: Option<PathBuf>,
    /// The verdict head (`--head`, `--head-seed`, ...).
    pub head: head::HeadOptions,
    /// Duplicate grouping (`--dedup`, `--dedup-threshold`); `None`: off, every record on its
    /// own as before.
    pub dedup: Option<crate::dedup::Settings>,
    /// Resuming: use the grouping stored with the run when it has one, not `dedup`.
    pub dedup_from_store: bool,
}

impl EngineConfig {
    /// Defaults for a run over `inputs` into `store` with the real ingest and no verifier.
    pub fn new(store: PathBuf, inputs: Vec<PathBuf>, rules: RuleSet) -> EngineConfig {
        EngineConfig {
            store,
            inputs,
            rules: Arc::new(rules),
            rules_file: None,
            thresholds: None,
            verifier: None,
            verifier_name: "none".into(),
            require_verifier: true,
            source: Arc::new(IngestSource {
                options: Default::default(),
            }),
            batch_size: None,
            batch_wait: Duration::from_millis(200),
            verify_retry: retry::RetryPolicy::default(),
            channel_capacity: 1024,
            stats_interval: Duration::from_millis(250),
            exit_when_done: true,
            readers: 0,
            shared_cache: None,
            head: head::HeadOptions::default(),
            dedup: Some(crate::dedup::Settings::default()),
            dedup_from_store: false,
        }
    }
}

pub(crate) fn show_paths(p: &[PathBuf]) -> String {
    p.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A running engine. Send commands, read events; `join` returns the final stats.
pub struct EngineHandle {
    pub commands: mpsc::Sender<Command>,
    pub events: mpsc::Receiver<EngineEvent>,
    pub join: std::thread::JoinHandle<Result<StatsSnapshot, EngineError>>,
}

/// Open (or resume) the store, start every thread, and return the handle.
pub fn start(config: EngineConfig) -> Result<EngineHandle, EngineError> {
    let thresholds_flag = config.thresholds;
    if let Some(t) = &thresholds_flag {
        t.validate().map_err(EngineError::Config)?;
    }
    if let Some(d) = &config.dedup {
        d.validate().map_err(EngineError::Config)?;
    }
    // Inputs first: a run whose inputs cannot be read creates no store.
    let files = config
        .source
        .files(&config.inputs)
        .map_err(EngineError::Inputs)?;
    // One engine per store, held until the decider thread ends (or the process dies).
    let lock = StoreLock::acquire(&config.store)?;
    let store = RunStore::open(&config.store)?;
    let rules_hash = config.rules.hash().to_string();
    let canonical = paths::canonical_inputs(&config.inputs);
    match store.config()? {
        Some(mut c) => {
            let stored = paths::canonical_inputs(&c.inputs);
            if stored != canonical {
                return Err(EngineError::Config(format!(
                    "store {} belongs to a run over {}, not {}",
                    config.store.display(),
                    show_paths(&stored),
                    show_paths(&canonical)
                )));
            }
            if c.rules_hash != rules_hash {
                return Err(EngineError::Config(format!(
                    "store {} was scored with another rule file (hash {}), this one is {}",
                    config.store.display(),
                    &c.rules_hash[..c.rules_hash.len().min(12)],
                    &rules_hash[..rules_hash.len().min(12)]
                )));
            }
            if c.inputs != stored {
                // A store from before inputs were kept canonically: its relative file paths
                // name the same files from here, so they take their absolute form once.
                let renames: Vec<(String, String)> = store
                    .files()?
                    .into_iter()
                    .filter(|f| Path::new(&f.path).is_relative())
                    .map(|f| {
                        let abs = paths::canonical_input(Path::new(&f.path));
                        (f.path, abs.display().to_string())
                    })
                    .collect();
                store.rename_files(&renames)?;
                c.inputs = stored;
                store.set_config(&c)?;
            }
        }
        None => store.set_config(&RunConfig {
            inputs: canonical,
            rules_hash,
            thresholds: thresholds_flag.unwrap_or_else(|| config.rules.thresholds()),
            verifier: config.verifier_name.clone(),
        })?,
    }
    let thresholds = match thresholds_flag {
        Some(t) => t,
        None => store
            .thresholds()?
            .unwrap_or_else(|| config.rules.thresholds()),
    };
    store.set_thresholds(&thresholds)?;
    let mut dedup = config.dedup.clone();
    if config.dedup_from_store {
        if let Some(c) = crate::store::groups::config(store.conn(), store.path())? {
            dedup = c.enabled.then_some(c.settings);
        }
    }
    crate::store::groups::set_config(
        store.conn(),
        store.path(),
        &crate::store::groups::DedupConfig {
            enabled: dedup.is_some(),
            settings: dedup.clone().unwrap_or_default(),
        },
    )?;
    store.set_state(RunState::Running)?;

    let mut file_rows = HashMap::new();
    let mut file_ids = Vec::new();
    for f in &files {
        let size = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        // Test sources name files that do not exist; only real files have a fingerprint.
        let id = match f.is_file() {
            true => {
                let fp = paths::file_fingerprint(f)
                    .map_err(|e| EngineError::Inputs(format!("{}: {e}", f.display())))?;
                store.register_file(&f.display().to_string(), size, &fp)?
            }
            false => store.file_id(&f.display().to_string(), size)?,
        };
        file_ids.push(id);
    }
    for row in store.files()? {
        file_rows.insert(row.file_id, row);
    }

    // The index of everything stored so far; its stored indices are what resume skips.
    let stored = store.load_inputs()?;
    let mut per_file: HashMap<i64, Vec<u64>> = HashMap::new();
    for s in &stored {
        per_file.entry(s.file_id).or_default().push(s.index);
    }
    let mut jobs = Vec::new();
    for (path, id) in files.iter().zip(&file_ids) {
        if file_rows.get(id).is_some_and(|r| r.done) {
            continue;
        }
        let mut idx = per_file.remove(id).unwrap_or_default();
        idx.sort_unstable();
        jobs.push(source::FileJob {
            file_id: *id,
            path: path.clone(),
            stored: idx,
        });
    }

    let chunks = (config.channel_capacity / source::CHUNK).max(4);
    let (main_tx, main_rx) = sync_channel::<decider::Msg>(chunks);
    let (events_tx, events_rx) = mpsc::channel::<EngineEvent>(256);
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(64);

    let mut startup_errors = Vec::new();
    let verifier = match config.verifier {
        None => None,
        Some(factory) => {
            let tx = main_tx.clone();
            match verifier::spawn(
                factory,
                config.store.clone(),
                config.shared_cache.clone(),
                (config.head.mode == head::HeadMode::Auto).then_some(config.head.layer),
                Box::new(move |r| tx.send(decider::Msg::Verified(r)).is_ok()),
            ) {
                Ok(v) => Some(v),
                Err(e) if config.require_verifier => return Err(EngineError::Verifier(e)),
                Err(e) => {
                    startup_errors.push(format!("verifier unavailable: {e}"));
                    None
                }
            }
        }
    };

    // Up to 64 messages (inserts travel as chunks of up to 64 rows).
    let (writer_tx, writer_rx) = sync_channel::<writer::WriterMsg>(64);
    let writer_join = std::thread::Builder::new()
        .name("cyberfilter-writer".into())
        .spawn(move || writer::run(store, writer_rx))
        .map_err(|e| EngineError::Thread(e.to_string()))?;

    let flags = Arc::new(source::Flags {
        paused: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        signatures: dedup.is_some(),
    });
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let wanted = if config.readers == 0 {
        cores
    } else {
        config.readers
    };
    let n_readers = wanted.min(jobs.len()).max(1);
    let reader_tx = main_tx.clone();
    let n_readers = source::spawn_readers(
        n_readers,
        jobs,
        config.source.clone(),
        config.rules.clone(),
        flags.clone(),
        move |m| reader_tx.send(decider::Msg::Reader(m)).is_ok(),
    );

    // Commands arrive on a tokio channel (the TUI's side); forward them into the decider.
    let fwd_tx = main_tx.clone();
    std::thread::Builder::new()
        .name("cyberfilter-commands".into())
        .spawn(move || {
            while let Some(c) = cmd_rx.blocking_recv() {
                if fwd_tx.send(decider::Msg::Command(c)).is_err() {
                    return;
                }
            }
            // Every command sender is gone: nobody can stop us any more, so stop now.
            let _ = fwd_tx.send(decider::Msg::Command(Command::Stop));
        })
        .map_err(|e| EngineError::Thread(e.to_string()))?;
    drop(main_tx);

    let d = decider::Decider::new(decider::Setup {
        store_path: config.store.clone(),
        thresholds,
        stored,
        file_rows,
        file_ids,
        flags,
        readers: n_readers,
        verifier,
        batch_size: config.batch_size,
        batch_wait: config.batch_wait,
        verify_retry: config.verify_retry,
        stats_interval: config.stats_interval,
        exit_when_done: config.exit_when_done,
        writer: writer_tx,
        events: events_tx,
        startup_errors,
        rules: config.rules.clone(),
        rules_file: config.rules_file.clone(),
        head: config.head.clone(),
        dedup,
    })?;
    let join = std::thread::Builder::new()
        .name("cyberfilter-decider".into())
        .spawn(move || {
            let r = d.run(main_rx);
            let joined = writer_join.join();
            // The store is consistent and closed: another run may take it now.
            drop(lock);
            match joined {
                Ok(Ok(())) => r,
                Ok(Err(e)) => Err(EngineError::Store(e)),
                Err(_) => Err(EngineError::Thread("store writer panicked".into())),
            }
        })
        .map_err(|e| EngineError::Thread(e.to_string()))?;
    Ok(EngineHandle {
        commands: cmd_tx,
        events: events_rx,
        join,
    })
}
