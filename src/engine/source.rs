//! Where records come from, and the reader threads that pull them, score them and hand them on.
//! Each reader thread has a scoring thread beside it: reading and extracting a file is one
//! stream, scoring and hashing its records another, so even a one-file run keeps two cores busy
//! (as `cyberfilter scan` does) while the store writer works. With grouping on, a third thread
//! per reader makes the records' grouping items (MinHash signatures) after the scorer: on the
//! scoring thread they made it the bottleneck of a one-file run (0.72x of the records/s of
//! grouping off on a generated NVD file; 0.82x with the third thread; see the README).
//! `cyberfilter run` uses the real ingest; tests inject their own source.

use crate::ingest::{FileSummary, IngestError, IngestOptions};
use crate::record::Record;
use crate::rules::{RuleSet, Score};
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A source of records: the input files and a streaming reader for one file.
pub trait RecordSource: Send + Sync {
    /// Expand the inputs into the files to read, in a stable order.
    fn files(&self, inputs: &[PathBuf]) -> Result<Vec<PathBuf>, String>;
    /// Stream every record of one file (same contract as `ingest::read_file`).
    fn read(
        &self,
        path: &Path,
        emit: &mut dyn FnMut(Result<Record, IngestError>) -> ControlFlow<()>,
    ) -> FileSummary;
}

/// The real feed readers.
pub struct IngestSource {
    pub options: IngestOptions,
}

impl RecordSource for IngestSource {
    fn files(&self, inputs: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
        crate::ingest::discover(inputs).map_err(|e| e.to_string())
    }
    fn read(
        &self,
        path: &Path,
        emit: &mut dyn FnMut(Result<Record, IngestError>) -> ControlFlow<()>,
    ) -> FileSummary {
        crate::ingest::read_file(path, &self.options, emit)
    }
}

/// A record after scoring, on its way to the decider.
pub struct Scored {
    pub file_id: i64,
    pub record: Record,
    pub score: Score,
    pub hash: [u8; 32],
    pub text_len: usize,
    /// What grouping needs of the record (grouping on): its natural-id keys and its MinHash
    /// signature (when the text has enough words) with the signature's sketch and band keys,
    /// all made before the decider (on the grouping thread after each scorer), so the
    /// decider's serial part only links.
    pub item: Option<crate::dedup::group::Item>,
}

/// What a reader reports.
pub enum ReaderMsg {
    /// Scored records, in file order.
    Records(Vec<Scored>),
    Error {
        file_id: i64,
        message: String,
    },
    Progress {
        file_id: i64,
        bytes_done: u64,
    },
    FileDone {
        file_id: i64,
        summary: FileSummary,
        /// False when reading stopped early (stop command).
        complete: bool,
    },
    /// This reader thread has no more files.
    Exit,
}

/// One file to read.
pub struct FileJob {
    pub file_id: i64,
    pub path: PathBuf,
    /// Indices already stored (sorted): skipped on resume.
    pub stored: Vec<u64>,
}

pub struct Flags {
    pub paused: AtomicBool,
    pub stop: AtomicBool,
    /// Compute each record's MinHash signature beside its score (grouping on).
    pub signatures: bool,
}

/// Start `n` reader threads over the jobs; each sends through `send` (which blocks when the
/// channel is full: backpressure) and returns false once the engine has gone.
pub fn spawn_readers(
    n: usize,
    jobs: Vec<FileJob>,
    source: Arc<dyn RecordSource>,
    rules: Arc<RuleSet>,
    flags: Arc<Flags>,
    send: impl Fn(ReaderMsg) -> bool + Send + Sync + Clone + 'static,
) -> usize {
    let queue = Arc::new(Mutex::new(VecDeque::from(jobs)));
    let n = n.max(1);
    for i in 0..n {
        let queue = queue.clone();
        let source = source.clone();
        let flags = flags.clone();
        let (stage_tx, stage_rx) = sync_channel::<Stage>(SCORER_QUEUE);
        // Grouping on: the records' grouping items are made on a thread of their own after
        // the scorer's, so that a one-file run's scoring thread is not the bottleneck.
        let scorer_send: Box<dyn Fn(ReaderMsg) -> bool + Send> = if flags.signatures {
            let (group_tx, group_rx) = sync_channel::<ReaderMsg>(SCORER_QUEUE);
            let send = send.clone();
            let grouper = std::thread::Builder::new()
                .name(format!("cyberfilter-group-{i}"))
                .spawn(move || group_stage(group_rx, &send));
            if grouper.is_err() {
                return i.max(1);
            }
            Box::new(move |m| group_tx.send(m).is_ok())
        } else {
            let send = send.clone();
            Box::new(send)
        };
        let scorer = {
            let rules = rules.clone();
            std::thread::Builder::new()
                .name(format!("cyberfilter-score-{i}"))
                .spawn(move || score_stage(stage_rx, &rules, &*scorer_send))
        };
        if scorer.is_err() {
            return i.max(1);
        }
        let spawned = std::thread::Builder::new()
            .name(format!("cyberfilter-reader-{i}"))
            .spawn(move || {
                // False once the scorer (and so the engine) has gone.
                let to_scorer = |stage: Stage| stage_tx.send(stage).is_ok();
                loop {
                    let job = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some(job) = job else { break };
                    if flags.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if !read_one(&job, source.as_ref(), &flags, &to_scorer) {
                        break;
                    }
                }
                to_scorer(Stage::Msg(ReaderMsg::Exit));
            });
        if spawned.is_err() {
            // Count only the threads that run; the others' files are read by those. The
            // scorer whose reader never started ends when its channel closes, saying nothing.
            return i.max(1);
        }
    }
    n
}

/// What a reader hands its scoring thread, in file order.
enum Stage {
    /// Records of one file, not scored yet.
    Raw { file_id: i64, records: Vec<Record> },
    /// Anything else, passed on as it is (after the records before it).
    Msg(ReaderMsg),
}

/// Chunks waiting between a reader and its scorer (bounded: backpressure reaches the reader).
const SCORER_QUEUE: usize = 4;

/// The scoring thread: scores and hashes each chunk and passes everything on in order, until
/// the reader is done or the engine has gone.
fn score_stage(
    stages: std::sync::mpsc::Receiver<Stage>,
    rules: &RuleSet,
    send: &dyn Fn(ReaderMsg) -> bool,
) {
    for stage in stages {
        let msg = match stage {
            Stage::Raw { file_id, records } => ReaderMsg::Records(
                records
                    .into_iter()
                    .map(|record| score_record(file_id, record, rules))
                    .collect(),
            ),
            Stage::Msg(m) => m,
        };
        if !send(msg) {
            break;
        }
    }
}

/// The grouping thread (grouping on): adds each scored record's grouping item and passes
/// everything on in order.
fn group_stage(msgs: std::sync::mpsc::Receiver<ReaderMsg>, send: &dyn Fn(ReaderMsg) -> bool) {
    for mut msg in msgs {
        if let ReaderMsg::Records(records) = &mut msg {
            for s in records.iter_mut() {
                s.item = Some(group_item(s));
            }
        }
        if !send(msg) {
            break;
        }
    }
}

fn score_record(file_id: i64, record: Record, rules: &RuleSet) -> Scored {
    let score = if record.scored {
        rules.score(&record.text)
    } else {
        Score::default()
    };
    let hash = record.content_hash();
    let text_len = if record.text.is_ascii() {
        record.text.len()
    } else {
        record.text.chars().count()
    };
    Scored {
        file_id,
        record,
        score,
        hash,
        text_len,
        item: None,
    }
}

/// What grouping needs of a scored record: its natural-id keys and MinHash signature.
fn group_item(s: &Scored) -> crate::dedup::group::Item {
    let mut item = crate::dedup::record_item(&s.record, &s.hash, s.text_len);
    item.order = crate::dedup::order_key(s.file_id, s.record.locator.index);
    item
}

/// Records per message: batching the hand-offs keeps thread wake-ups off the hot path.
pub const CHUNK: usize = 64;
/// A partial chunk is sent after this long (slow sources still show up promptly).
const CHUNK_WAIT: Duration = Duration::from_millis(20);

/// Read one file; false when the engine has gone.
fn read_one(
    job: &FileJob,
    source: &dyn RecordSource,
    flags: &Flags,
    send: &dyn Fn(Stage) -> bool,
) -> bool {
    let mut alive = true;
    let mut stopped = false;
    let mut last_progress = Instant::now();
    let mut bytes_done = 0u64;
    let mut chunk: Vec<Record> = Vec::with_capacity(CHUNK);
    let mut chunk_since = Instant::now();
    let summary = source.read(&job.path, &mut |item| {
        if flags.stop.load(Ordering::Relaxed) {
            stopped = true;
            return ControlFlow::Break(());
        }
        while flags.paused.load(Ordering::Relaxed) && !flags.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut other = None;
        match item {
            Ok(record) => {
                bytes_done = bytes_done.max(record.locator.offset + record.locator.len);
                if job.stored.binary_search(&record.locator.index).is_err() {
                    if chunk.is_empty() {
                        chunk_since = Instant::now();
                    }
                    chunk.push(record);
                }
            }
            Err(e) => {
                other = Some(ReaderMsg::Error {
                    file_id: job.file_id,
                    message: e.to_string(),
                })
            }
        }
        let progress_due = last_progress.elapsed() >= Duration::from_millis(200);
        let flush = chunk.len() >= CHUNK
            || other.is_some()
            || progress_due
            || (!chunk.is_empty() && chunk_since.elapsed() >= CHUNK_WAIT);
        if flush && !chunk.is_empty() {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if !send(Stage::Raw {
                file_id: job.file_id,
                records: full,
            }) {
                alive = false;
                return ControlFlow::Break(());
            }
        }
        if let Some(m) = other {
            if !send(Stage::Msg(m)) {
                alive = false;
                return ControlFlow::Break(());
            }
        }
        if progress_due {
            last_progress = Instant::now();
            if !send(Stage::Msg(ReaderMsg::Progress {
                file_id: job.file_id,
                bytes_done,
            })) {
                alive = false;
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    if !alive {
        return false;
    }
    if !chunk.is_empty()
        && !send(Stage::Raw {
            file_id: job.file_id,
            records: chunk,
        })
    {
        return false;
    }
    send(Stage::Msg(ReaderMsg::FileDone {
        file_id: job.file_id,
        summary,
        complete: !stopped,
    }))
}
