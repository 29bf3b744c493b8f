//! The store writer: one thread owns the write connection and applies every change in arrival
//! order inside batched transactions (up to `MAX_OPS` changes or `MAX_WAIT` per commit).
//! Labels are committed at once in their own transaction so a crash never loses one.

use crate::decide::Decision;
use crate::rules::Thresholds;
use crate::store::features as sf;
use crate::store::groups as sg;
use crate::store::{
    Answer, FileRow, LabelChange, NewRecord, RunState, RunStore, SqlContext, StoreError,
};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const MAX_OPS: usize = 1000;
const MAX_WAIT: Duration = Duration::from_millis(100);

pub enum WriterMsg {
    Inserts(Vec<NewRecord>),
    Answers(Vec<Answer>),
    Decisions(Vec<(i64, Decision)>),
    Label(LabelChange, Sender<Result<i64, String>>),
    File(FileRow),
    Error {
        file: String,
        message: String,
    },
    Thresholds(Thresholds),
    /// A rule added: the run's new rules hash and every re-scored record (seq, score, hits).
    Rules {
        hash: String,
        scores: Vec<(i64, f32, Vec<crate::rules::RuleHit>)>,
    },
    Metrics(String),
    State(RunState),
    /// Commit everything so far, then answer.
    Flush(Sender<()>),
    /// Verdict head: features of answered records (by seq), of seed texts, weak labels,
    /// P(head) values, a trained head with its flips, the head switched on/off.
    HeadFeatures {
        spec: String,
        rows: Vec<(i64, Option<f32>, Vec<f32>)>,
    },
    HeadSeeds {
        spec: String,
        rows: Vec<crate::store::features::StoredFeatures>,
        labels: Vec<crate::store::features::HeadLabel>,
    },
    HeadWeak(Vec<(i64, bool, String)>),
    PHead {
        version: Option<String>,
        values: Vec<(i64, Option<f32>)>,
    },
    HeadTrained {
        head: Box<crate::verify::head::Head>,
        flips: crate::store::features::Flips,
        reason: String,
    },
    HeadActive(Option<String>),
    /// Duplicates: signatures of new records, membership rows (`clear`: replace them all),
    /// the settings in force, a curator's mark.
    Sigs(Vec<(i64, crate::dedup::minhash::Signature)>),
    Members {
        rows: Vec<sg::Member>,
        alone: Vec<i64>,
        clear: bool,
    },
    DedupConfig(sg::DedupConfig),
    Mark(i64, Option<sg::Mark>),
}

struct Batch {
    open: bool,
    ops: usize,
    since: Instant,
}

/// Checkpoints (copying the WAL into the database, the only fsyncs in WAL/NORMAL mode) run on
/// their own connection and thread, so inserts never wait for the disk. The thread waits on a
/// channel, not in sleeps, so dropping `stop` ends it at once: a sleeping checkpointer held
/// every run's end by up to 100 ms (run times came out in 0.1 s steps).
fn spawn_checkpointer(
    path: std::path::PathBuf,
    stop: std::sync::mpsc::Receiver<()>,
) -> Option<JoinHandle<()>> {
    let conn = rusqlite::Connection::open(&path).ok()?;
    conn.busy_timeout(Duration::from_secs(5)).ok()?;
    std::thread::Builder::new()
        .name("cyberfilter-checkpoint".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stop.recv_timeout(Duration::from_secs(1))
            {
                // PASSIVE never blocks the writer; a busy moment is simply retried later.
                let _ = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)");
            }
        })
        .ok()
}

/// Run the writer until every sender is gone; the last batch is committed.
pub fn run(store: RunStore, rx: Receiver<WriterMsg>) -> Result<(), StoreError> {
    let (stop, stop_rx) = std::sync::mpsc::channel::<()>();
    // Only switch off automatic checkpoints when the background one is running.
    let checkpointer = spawn_checkpointer(store.path().to_path_buf(), stop_rx);
    if checkpointer.is_some() {
        store
            .conn()
            .pragma_update(None, "wal_autocheckpoint", 0)
            .ctx(store.path())?;
    }
    let r = write_loop(store, rx);
    drop(stop);
    if let Some(c) = checkpointer {
        let _ = c.join();
    }
    r
}

fn write_loop(mut store: RunStore, rx: Receiver<WriterMsg>) -> Result<(), StoreError> {
    let path = store.path().to_path_buf();
    let mut b = Batch {
        open: false,
        ops: 0,
        since: Instant::now(),
    };
    let commit = |store: &RunStore, b: &mut Batch| -> Result<(), StoreError> {
        if b.open {
            store.conn().execute_batch("COMMIT").ctx(store.path())?;
            b.open = false;
            b.ops = 0;
        }
        Ok(())
    };
    loop {
        let msg = if b.open {
            let left = MAX_WAIT.saturating_sub(b.since.elapsed());
            match rx.recv_timeout(left) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => break,
            }
        };
        let Some(msg) = msg else {
            commit(&store, &mut b)?;
            continue;
        };
        match msg {
            WriterMsg::Label(change, reply) => {
                commit(&store, &mut b)?;
                let r = store.apply_label(&change);
                let _ = reply.send(r.as_ref().map(|x| *x).map_err(|e| e.to_string()));
                r?;
                continue;
            }
            WriterMsg::Flush(reply) => {
                commit(&store, &mut b)?;
                let _ = reply.send(());
                continue;
            }
            other => {
                if !b.open {
                    store.conn().execute_batch("BEGIN").ctx(&path)?;
                    b.open = true;
                    b.since = Instant::now();
                }
                b.ops += match &other {
                    WriterMsg::Inserts(v) => v.len(),
                    WriterMsg::Sigs(v) => v.len() / 4,
                    _ => 1,
                };
                apply(&store, other)?;
            }
        }
        if b.ops >= MAX_OPS || b.since.elapsed() >= MAX_WAIT {
            commit(&store, &mut b)?;
        }
    }
    commit(&store, &mut b)?;
    // Fold the WAL back so the store is one self-contained file after a clean stop.
    let _ = store
        .conn()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
    Ok(())
}

fn apply(store: &RunStore, msg: WriterMsg) -> Result<(), StoreError> {
    let conn = store.conn();
    let path = store.path();
    match msg {
        WriterMsg::Inserts(rows) => {
            for r in &rows {
                RunStore::insert_record(conn, path, r)?;
            }
            Ok(())
        }
        WriterMsg::Answers(a) => RunStore::set_answers(conn, path, &a),
        WriterMsg::Decisions(d) => RunStore::set_decisions(conn, path, &d),
        WriterMsg::File(f) => RunStore::set_file_progress(conn, path, &f),
        WriterMsg::Error { file, message } => RunStore::add_error(conn, path, &file, &message),
        WriterMsg::Thresholds(t) => store.set_thresholds(&t),
        WriterMsg::Rules { hash, scores } => store.set_rules(&hash, &scores),
        WriterMsg::Metrics(line) => RunStore::add_metrics(conn, path, &line),
        WriterMsg::State(s) => store.set_state(s),
        WriterMsg::HeadFeatures { spec, rows } => sf::put_features_by_seq(conn, path, &spec, &rows),
        WriterMsg::HeadSeeds { spec, rows, labels } => {
            sf::put_features(conn, path, &spec, &rows)?;
            sf::put_head_labels(conn, path, &labels)
        }
        WriterMsg::HeadWeak(rows) => sf::put_weak_labels_by_seq(conn, path, &rows),
        WriterMsg::PHead { version, values } => {
            sf::set_p_head(conn, path, version.as_deref(), &values)
        }
        WriterMsg::HeadTrained {
            head,
            flips,
            reason,
        } => sf::put_head(conn, path, &head, flips, &reason),
        WriterMsg::HeadActive(v) => sf::set_active(conn, path, v.as_deref()),
        WriterMsg::Sigs(rows) => {
            for (seq, sig) in &rows {
                sg::insert_sig(conn, path, *seq, sig)?;
            }
            Ok(())
        }
        WriterMsg::Members { rows, alone, clear } => {
            if clear {
                conn.execute_batch("DELETE FROM dedup_members").ctx(path)?;
            }
            sg::write_members(conn, path, &rows, &alone)
        }
        WriterMsg::DedupConfig(c) => sg::set_config(conn, path, &c),
        WriterMsg::Mark(seq, m) => sg::set_mark(conn, path, seq, m),
        WriterMsg::Label(..) | WriterMsg::Flush(_) => unreachable!("handled by the loop"),
    }
}
