//! The decider: the engine's hub. It takes scored records, assigns their arrival order,
//! decides them, keeps the index, batches verify-tier records for the verifier, answers every
//! command and sends aggregated events. It never blocks on the verifier.

use super::index::Index;
use super::metrics::{Counters, LlmWindow, Rates};
use super::source::{Flags, ReaderMsg};
use super::stats::rss_bytes;
use super::types::*;
use super::verifier::{BatchResult, Item, Job, VerifierThread};
use super::writer::WriterMsg;
use super::EngineError;
use crate::decide::{Decision, DecisionInputs, Label};
use crate::rules::{RuleSet, Thresholds};
use crate::store::{
    Answer, FileRow, LabelChange, NewRecord, RunState, RunStore, StoredInputs, StoredRecord,
};
use crate::verify::batcher::Batcher;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[path = "decider_head.rs"]
mod head_ops;
#[path = "decider_retry.rs"]
mod retry_ops;

/// Everything that reaches the decider, through one bounded channel.
pub enum Msg {
    Reader(ReaderMsg),
    Verified(BatchResult),
    Command(Command),
}

pub struct Setup {
    pub store_path: PathBuf,
    pub thresholds: Thresholds,
    pub stored: Vec<StoredInputs>,
    pub file_rows: HashMap<i64, FileRow>,
    pub file_ids: Vec<i64>,
    pub flags: Arc<Flags>,
    pub readers: usize,
    pub verifier: Option<VerifierThread>,
    pub batch_size: Option<usize>,
    pub batch_wait: Duration,
    pub verify_retry: super::retry::RetryPolicy,
    pub stats_interval: Duration,
    pub exit_when_done: bool,
    pub writer: SyncSender<WriterMsg>,
    pub events: mpsc::Sender<EngineEvent>,
    pub startup_errors: Vec<String>,
    /// The run's rules, to show where they matched in an opened record.
    pub rules: Arc<RuleSet>,
    /// Where the run's rules came from (`None`: built in); added rules are written there.
    pub rules_file: Option<PathBuf>,
    pub head: super::head::HeadOptions,
    pub dedup: Option<crate::dedup::Settings>,
}

/// Queued texts kept in memory up to this many bytes; beyond, the verifier reads them back.
const QUEUE_TEXT_BYTES: usize = 16 * 1024 * 1024;
/// Give an in-flight batch this long to come back on stop. Past it the run stops without the
/// batch: its records stay pending in the store and are asked again on resume, so nothing is
/// lost, and a curator pressing `q` during a long CPU forward pass is not kept waiting.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Newly decided rows sent per stats interval (a live sample; the table queries the store).
const VERDICT_ROWS_PER_TICK: usize = 256;

pub struct Decider {
    store_path: PathBuf,
    rules: Arc<RuleSet>,
    rules_file: Option<PathBuf>,
    read: RunStore,
    t: Thresholds,
    index: Index,
    files: HashMap<i64, FileRow>,
    file_order: Vec<i64>,
    flags: Arc<Flags>,
    readers_left: usize,
    verifier: Option<VerifierThread>,
    /// Verify-tier records waiting for the verifier, and the batches out.
    batcher: Batcher<Item>,
    /// Records of failed batches waiting to be asked again (the in-run retry policy).
    retry: super::retry::RetryQueue,
    stats_interval: Duration,
    exit_when_done: bool,
    writer: SyncSender<WriterMsg>,
    events: mpsc::Sender<EngineEvent>,
    c: Counters,
    started: Instant,
    rates: Rates,
    llm_window: LlmWindow,
    last_metrics: Instant,
    /// The label log read up to here; later entries come from another process.
    label_log_seen: i64,
    recent: Vec<RecordRow>,
    stopping: Option<Instant>,
    drained_sent: bool,
    fatal: Option<EngineError>,
    head: super::head::HeadState,
    /// Features and P(head) of the answers being applied, written after them.
    head_pending: HeadPending,
    /// Duplicate grouping (positions are the index's), when on.
    groups: Option<crate::dedup::group::Grouper>,
}

/// Signatures and membership rows of one chunk of new records.
#[derive(Default)]
struct DedupWrites {
    sigs: Vec<(i64, crate::dedup::minhash::Signature)>,
    members: Vec<crate::store::groups::Member>,
}

/// Re-scored records: (seq, score, hits).
type RescoredRecords = Vec<(i64, f32, Vec<crate::rules::RuleHit>)>;

type HeadPending = (Vec<(i64, Option<f32>, Vec<f32>)>, Vec<(i64, Option<f32>)>);

impl Decider {
    pub fn new(s: Setup) -> Result<Decider, EngineError> {
        let read = RunStore::open_read(&s.store_path)?;
        let mut index = Index::default();
        for st in &s.stored {
            index.push(st.seq, st.source, &st.inputs, &s.thresholds);
        }
        // The groups of everything stored, recomputed from stored signatures, ids and hashes.
        let mut members = None;
        let groups = match &s.dedup {
            None => None,
            Some(settings) => {
                let g = crate::store::groups::grouping(read.conn(), &s.store_path, settings)?;
                if g.seqs.len() != index.len() {
                    return Err(EngineError::Thread(format!(
                        "store {}: {} records grouped, {} indexed",
                        s.store_path.display(),
                        g.seqs.len(),
                        index.len()
                    )));
                }
                index.set_reps(&g.grouper.reps(), &s.thresholds);
                index.take_changes();
                members = Some(g.members());
                Some(g.grouper)
            }
        };
        let mut stale = Vec::new();
        for (pos, st) in s.stored.iter().enumerate() {
            let d = index.decision_at(pos);
            if st.verdict != Some(d.verdict) || st.tier != Some(d.tier) {
                stale.push((st.seq, d));
            }
        }
        let batch_size = match (&s.verifier, s.batch_size) {
            (_, Some(n)) => n.max(1),
            (Some(v), None) => v.info.preferred_batch,
            (None, None) => 1,
        };
        let now = Instant::now();
        let (head, head_notes) = super::head::HeadState::new(
            s.head,
            s.verifier.as_ref().and_then(|v| v.info.features.clone()),
            s.verifier
                .as_ref()
                .map(|v| (v.info.model.as_str(), v.info.features_off.as_deref())),
            &read,
        );
        let mut d = Decider {
            store_path: s.store_path,
            rules: s.rules,
            rules_file: s.rules_file,
            read,
            t: s.thresholds,
            index,
            files: s.file_rows,
            file_order: s.file_ids,
            flags: s.flags,
            readers_left: s.readers,
            verifier: s.verifier,
            batcher: Batcher::new(batch_size, s.batch_wait),
            retry: super::retry::RetryQueue::new(s.verify_retry),
            stats_interval: s.stats_interval,
            exit_when_done: s.exit_when_done,
            writer: s.writer,
            events: s.events,
            c: Counters::default(),
            started: now,
            rates: Rates::new(now),
            llm_window: LlmWindow::default(),
            last_metrics: now,
            label_log_seen: 0,
            recent: Vec::new(),
            stopping: None,
            drained_sent: false,
            fatal: None,
            head,
            head_pending: Default::default(),
            groups,
        };
        if let Some(rows) = members {
            d.write(WriterMsg::Members {
                rows,
                alone: vec![],
                clear: true,
            });
        }
        for note in head_notes {
            d.head_note(note);
        }
        d.head_start();
        if !stale.is_empty() {
            d.write(WriterMsg::Decisions(stale));
        }
        // Records that were waiting for the verifier when the last run ended go first.
        if d.verifier.is_some() {
            for pos in d.index.needing_verifier() {
                let seq = d.index.seq_at(pos);
                d.enqueue(pos, seq, None, false);
            }
        }
        for e in s.startup_errors {
            d.error("verifier", e);
        }
        Ok(d)
    }

    fn write(&mut self, m: WriterMsg) {
        if self.writer.send(m).is_err() && self.fatal.is_none() {
            self.fatal = Some(EngineError::Thread(
                "the store writer stopped (see the store error)".into(),
            ));
            self.begin_stop();
        }
    }

    fn emit(&self, e: EngineEvent) {
        // Aggregated events may be dropped when the front end lags; the next one supersedes.
        let _ = self.events.try_send(e);
    }

    fn error(&mut self, file: impl Into<String>, message: String) {
        let file = file.into();
        self.c.errors += 1;
        self.write(WriterMsg::Error {
            file: file.clone(),
            message: message.clone(),
        });
        self.emit(EngineEvent::Error { file, message });
    }

    fn flush(&mut self) {
        let (tx, rx) = std::sync::mpsc::channel();
        self.write(WriterMsg::Flush(tx));
        let _ = rx.recv();
    }

    fn begin_stop(&mut self) {
        if self.stopping.is_none() {
            self.stopping = Some(Instant::now());
            self.flags.stop.store(true, Ordering::Relaxed);
            self.flags.paused.store(false, Ordering::Relaxed);
        }
    }

    /// Run until stopped; returns the final stats.
    pub fn run(mut self, rx: Receiver<Msg>) -> Result<StatsSnapshot, EngineError> {
        let mut next_tick = Instant::now() + self.stats_interval;
        loop {
            let wait = next_tick
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(50));
            match rx.recv_timeout(wait) {
                Ok(m) => {
                    self.handle(m);
                    // Drain what is already there before doing periodic work.
                    for _ in 0..256 {
                        match rx.try_recv() {
                            Ok(m) => self.handle(m),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if Instant::now() >= next_tick {
                self.tick();
                next_tick = Instant::now() + self.stats_interval;
            }
            self.retry_due();
            self.dispatch();
            let inputs_done = self.readers_left == 0;
            if let Some(since) = self.stopping {
                if inputs_done && (self.batcher.in_flight() == 0 || since.elapsed() > STOP_GRACE) {
                    break;
                }
            } else if inputs_done
                && (self.verifier.is_none()
                    || (self.batcher.is_empty()
                        && self.batcher.in_flight() == 0
                        && self.retry.is_empty()
                        && !self.head_busy()))
                && !self.drained_sent
            {
                self.drained_sent = true;
                // Drained means the store holds everything: commit before saying so.
                self.write_files();
                self.flush();
                let snap = self.snapshot();
                if self.exit_when_done {
                    self.begin_stop();
                } else {
                    self.emit(EngineEvent::Drained(snap));
                }
            }
        }
        self.finish()
    }

    fn finish(mut self) -> Result<StatsSnapshot, EngineError> {
        // Let the verifier end after its batch; its unanswered records stay pending.
        if let Some(v) = self.verifier.take() {
            drop(v.jobs);
            if self.batcher.in_flight() == 0 {
                let _ = v.join.join();
            }
        }
        self.write_files();
        let all_done = self.files.values().all(|f| f.done);
        self.write(WriterMsg::Metrics(self.metrics_line()));
        self.write(WriterMsg::State(if all_done {
            RunState::Finished
        } else {
            RunState::Stopped
        }));
        self.flush();
        let snap = self.snapshot();
        let events = self.events.clone();
        let fatal = self.fatal.take();
        drop(self);
        // The writer ends once its channel closes (dropped with self); `start` joins it.
        let _ = events.blocking_send(EngineEvent::Finished(snap.clone()));
        match fatal {
            Some(e) => Err(e),
            None => Ok(snap),
        }
    }

    fn handle(&mut self, m: Msg) {
        match m {
            Msg::Reader(r) => self.on_reader(r),
            Msg::Verified(r) => self.on_verified(r),
            Msg::Command(c) => self.on_command(c),
        }
    }

    fn on_reader(&mut self, r: ReaderMsg) {
        match r {
            ReaderMsg::Records(v) => {
                let mut inserts = Vec::with_capacity(v.len());
                let mut dd = DedupWrites::default();
                let mut records = v.into_iter().peekable();
                while let Some(s) = records.next() {
                    if let (Some(g), Some(next)) = (
                        self.groups.as_ref(),
                        records.peek().and_then(|n| n.item.as_ref()),
                    ) {
                        g.prefetch(next);
                    }
                    self.on_record(s, &mut inserts, &mut dd);
                }
                if !inserts.is_empty() {
                    // A later record of this chunk may have made an earlier one a duplicate.
                    if self.groups.is_some() {
                        for r in inserts.iter_mut() {
                            if let Some(pos) = self.index.pos(r.seq) {
                                r.decision = self.index.decision_at(pos);
                            }
                        }
                    }
                    self.write(WriterMsg::Inserts(inserts));
                }
                self.write_dedup(dd);
                self.write_index_changes();
            }
            ReaderMsg::Error { file_id, message } => {
                let file = self.file_name(file_id);
                if let Some(f) = self.files.get_mut(&file_id) {
                    f.errors += 1;
                }
                self.error(file, message);
            }
            ReaderMsg::Progress {
                file_id,
                bytes_done,
            } => {
                if let Some(f) = self.files.get_mut(&file_id) {
                    f.bytes_done = f.bytes_done.max(bytes_done);
                }
            }
            ReaderMsg::FileDone {
                file_id,
                summary,
                complete,
            } => {
                if let Some(f) = self.files.get_mut(&file_id) {
                    f.bytes_done = f.bytes_done.max(summary.bytes);
                    f.done = complete;
                    if complete && f.bytes_total < f.bytes_done {
                        f.bytes_total = f.bytes_done;
                    }
                    let row = f.clone();
                    // Written after every record of the file (same ordered channel).
                    self.write(WriterMsg::File(row));
                }
            }
            ReaderMsg::Exit => self.readers_left = self.readers_left.saturating_sub(1),
        }
    }

    fn file_name(&self, file_id: i64) -> String {
        self.files
            .get(&file_id)
            .map(|f| f.path.clone())
            .unwrap_or_default()
    }

    /// Decide one record; its row goes into `inserts` (written before anything that follows).
    fn on_record(
        &mut self,
        s: super::source::Scored,
        inserts: &mut Vec<NewRecord>,
        dd: &mut DedupWrites,
    ) {
        let seq = self.index.next_seq();
        let inputs = DecisionInputs {
            score: s.score.score,
            text_len: s.text_len,
            scored: s.record.scored,
            p_yes: None,
            p_head: None,
            label: None,
        };
        self.index.push(seq, s.record.source, &inputs, &self.t);
        let pos = self.index.len() - 1;
        if let (Some(g), Some(item)) = (self.groups.as_mut(), s.item.as_ref()) {
            let mut changed = g.push(item);
            if let Some(sig) = item.sig {
                dd.sigs.push((seq, sig));
            }
            let needing = self.index.repoint(&changed, |p| g.rep_of(p), &self.t);
            if g.via(pos as u32) != crate::dedup::group::Via::Alone {
                changed.push(pos as u32);
                changed.push(g.rep_of(pos as u32));
                for p in changed {
                    let rep = g.rep_of(p);
                    dd.members.push(crate::store::groups::Member {
                        seq: self.index.seq_at(p as usize),
                        rep_seq: self.index.seq_at(rep as usize),
                        via: crate::store::groups::via_str(g.via(p)).to_string(),
                        similarity: g.similarity(p, rep),
                    });
                }
            }
            if self.verifier.is_some() {
                for p in needing {
                    let sq = self.index.seq_at(p);
                    self.enqueue(p, sq, None, false);
                }
            }
        }
        let d = self.index.decision_at(pos);
        self.c.records_session += 1;
        if let Some(f) = self.files.get_mut(&s.file_id) {
            f.records += 1;
            f.bytes_done = f
                .bytes_done
                .max(s.record.locator.offset + s.record.locator.len);
        }
        if self.recent.len() < VERDICT_ROWS_PER_TICK {
            let mut hits = s.score.hits.clone();
            hits.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
            self.recent.push(RecordRow {
                seq,
                id: s.record.id.clone(),
                name: crate::record::display_name(s.record.source, &s.record.id, &s.record.text),
                source: s.record.source,
                kind: s.record.kind.clone(),
                file: s.record.locator.file.display().to_string(),
                score: s.score.score,
                p_yes: None,
                p_head: None,
                tier: d.tier,
                verdict: d.verdict,
                decided_by: d.decided_by,
                label: None,
                rules: hits.into_iter().map(|h| h.rule).collect(),
                group: self.group_of(pos),
            });
        }
        let wants_verifier = self.verifier.is_some() && self.index.needs_verifier(pos);
        let queued_text = if wants_verifier && self.batcher.text_bytes() < QUEUE_TEXT_BYTES {
            Some((Arc::<str>::from(s.record.text.as_str()), s.hash))
        } else {
            None
        };
        inserts.push(NewRecord {
            seq,
            file_id: s.file_id,
            index: s.record.locator.index,
            id: s.record.id,
            source: s.record.source,
            kind: s.record.kind,
            offset: s.record.locator.offset,
            len: s.record.locator.len,
            outer_offset: s.record.locator.outer_offset,
            content_hash: s.hash,
            text: s.record.text,
            text_len: s.text_len,
            scored: s.record.scored,
            score: s.score.score,
            hits: s.score.hits,
            p_yes: None,
            model: None,
            prompt_version: None,
            decision: d,
        });
        if wants_verifier {
            self.enqueue(pos, seq, queued_text, false);
        }
    }

    /// The group id (representative's seq) of a record in a group of two or more.
    fn group_of(&self, pos: usize) -> Option<i64> {
        self.index
            .in_group(pos)
            .then(|| self.index.seq_at(self.index.rep_at(pos)))
    }

    fn write_dedup(&mut self, dd: DedupWrites) {
        if !dd.sigs.is_empty() {
            self.write(WriterMsg::Sigs(dd.sigs));
        }
        if !dd.members.is_empty() {
            self.write(WriterMsg::Members {
                rows: dd.members,
                alone: vec![],
                clear: false,
            });
        }
    }

    /// Decisions that changed as a side effect (duplicates following their representative).
    fn write_index_changes(&mut self) {
        let changes = self.index.take_changes();
        if !changes.is_empty() {
            self.write(WriterMsg::Decisions(changes));
        }
    }

    fn enqueue(&mut self, pos: usize, seq: i64, text: Option<(Arc<str>, [u8; 32])>, force: bool) {
        if self.index.queued_at(pos) && !force {
            return;
        }
        self.index.set_queued(pos, true);
        self.batcher.push(
            Item {
                seq,
                text,
                force,
                idle: false,
            },
            Instant::now(),
        );
    }

    /// Send a batch when the verifier is free: a full one, or a partial one whose oldest
    /// record has waited `batch_wait` (or when nothing more can arrive).
    fn dispatch(&mut self) {
        let Some(v) = &self.verifier else { return };
        if self.flags.paused.load(Ordering::Relaxed) || self.stopping.is_some() {
            return;
        }
        if self.batcher.is_empty() && self.batcher.in_flight() == 0 {
            self.head_idle_work();
            return;
        }
        loop {
            let now = Instant::now();
            if !self.batcher.ready(now, self.readers_left == 0) {
                return;
            }
            // Thresholds or labels may have changed since an item was queued.
            let index = &mut self.index;
            let mut no_longer = Vec::new();
            let items = self.batcher.take(
                now,
                |item| {
                    index
                        .pos(item.seq)
                        .is_some_and(|pos| item.force || index.needs_verifier(pos))
                },
                |item| no_longer.push(item.seq),
            );
            for seq in no_longer {
                self.retry.done(seq);
                if let Some(pos) = self.index.pos(seq) {
                    self.index.set_queued(pos, false);
                }
            }
            if items.is_empty() {
                continue;
            }
            let n = items.len();
            for item in items.iter().filter(|i| i.force) {
                self.retry.sent_forced(item.seq);
            }
            match v.jobs.try_send(Job {
                items,
                batch_size: self.batcher.size,
            }) {
                Ok(()) => self.batcher.sent(n),
                Err(TrySendError::Full(job)) | Err(TrySendError::Disconnected(job)) => {
                    self.batcher.unsend(job.items, Instant::now());
                    return;
                }
            }
        }
    }

    fn on_verified(&mut self, mut r: BatchResult) {
        // Seeds and weak labels are the head's, not records' answers.
        let feats: HashMap<i64, Arc<[f32]>> = r.features.drain(..).collect();
        self.head_take_idle(&mut r, &feats);
        let n = r.answers.len() + r.missing.len() + r.failed.len();
        self.batcher.answered(n);
        self.c.cache_hits += r.cache_hits;
        if r.model_batch > 0 {
            self.c.llm_calls += 1;
            self.c.llm_records += r.model_batch as u64;
            self.c.batch(
                r.model_batch as f64 / r.batch_size.max(1) as f64,
                r.latency.as_secs_f64() * 1000.0,
            );
        }
        let (model, prompt) = self
            .verifier
            .as_ref()
            .map(|v| (v.info.model.clone(), v.info.prompt_version.clone()))
            .unwrap_or_default();
        let mut answers = Vec::with_capacity(r.answers.len());
        for (seq, p) in r.answers {
            let Some(pos) = self.index.pos(seq) else {
                continue;
            };
            self.index.set_queued(pos, false);
            self.retry.done(seq);
            let p_head = self.head_on_answer(seq, p, feats.get(&seq));
            let d = self.index.set_answer_head(pos, p, p_head, &self.t);
            answers.push(Answer {
                seq,
                p_yes: p,
                model: model.clone(),
                prompt_version: prompt.clone(),
                decision: d,
            });
        }
        if !answers.is_empty() {
            self.write(WriterMsg::Answers(answers));
        }
        self.write_index_changes();
        self.head_flush_answers();
        self.retry_failed(&r.failed, r.error);
        for item in r.missing {
            // Not committed yet: back of the queue.
            self.batcher.push(item, Instant::now());
        }
    }

    fn on_command(&mut self, c: Command) {
        match c {
            Command::Pause => self.flags.paused.store(true, Ordering::Relaxed),
            Command::Resume => self.flags.paused.store(false, Ordering::Relaxed),
            Command::Stop => self.begin_stop(),
            Command::SetThresholds(t) => self.set_thresholds(t),
            Command::PreviewThresholds(t, reply) => {
                let _ = reply.send(self.index.preview(&t));
            }
            Command::Relabel { id, label } => self.relabel(&id, label),
            Command::UndoLabel => self.undo_label(),
            Command::Reverify { id } => self.reverify(&id),
            Command::Export {
                out,
                format,
                layout,
            } => self.export(out, format, layout),
            Command::Query {
                filter,
                sort,
                offset,
                limit,
                reply,
            } => {
                self.flush();
                let page = self.query(&filter, sort, offset, limit);
                let _ = reply.send(page);
            }
            Command::GetRecord { id, reply } => {
                self.flush();
                let _ = reply.send(self.detail(&id));
            }
            Command::Agreement { thresholds, reply } => {
                let _ = reply.send(self.index.agreement(&thresholds));
            }
            Command::RetrainHead => self.head_retrain("on demand"),
            Command::SetHeadEnabled(on) => self.head_set_enabled(on),
            Command::HeadStatus { reply } => {
                let _ = reply.send(self.head_status());
            }
            Command::SuggestRules { reply } => {
                let _ = reply.send(self.suggest_rules());
            }
            Command::PreviewRule { rule, reply } => {
                let _ = reply.send(self.preview_rule(&rule));
            }
            Command::AddRule { rule, reply } => {
                let r = self.add_rule(&rule);
                if let Err(e) = &r {
                    self.error("rules", e.clone());
                }
                let _ = reply.send(r);
            }
            Command::SplitDuplicate { id, split } => {
                let mark = split.then_some(crate::store::groups::Mark::Split);
                self.mark(&id, mark)
            }
            Command::ChooseRepresentative { id } => {
                self.mark(&id, Some(crate::store::groups::Mark::Rep))
            }
            Command::SetDedupThreshold(th) => self.set_dedup_threshold(th),
            Command::Group { id, reply } => {
                let _ = reply.send(self.group_view(&id));
            }
        }
    }

    fn set_thresholds(&mut self, t: Thresholds) {
        // The TUI validates its drafts; this guards every other sender of the command, so a
        // threshold that would make the store unreadable is never written.
        if let Err(e) = t.validate() {
            self.error("thresholds", e);
            return;
        }
        self.t = t;
        self.write(WriterMsg::Thresholds(t));
        self.redecide_all();
    }

    /// Re-decide every record under the thresholds in force: write the changed decisions,
    /// queue what newly needs the verifier, report the flips.
    fn redecide_all(&mut self) {
        let r = self.index.redecide(&self.t);
        for chunk in r.changed.chunks(10_000) {
            self.write(WriterMsg::Decisions(chunk.to_vec()));
        }
        if self.verifier.is_some() {
            for seq in r.newly_needing {
                if let Some(pos) = self.index.pos(seq) {
                    self.enqueue(pos, seq, None, false);
                }
            }
        }
        self.drained_sent = self.drained_sent && self.batcher.is_empty();
        self.emit(EngineEvent::Redecided(r.flips));
    }

    // ----- rules mined from labels (the workbench's suggest overlay) --------------------

    fn suggest_rules(&mut self) -> Result<super::suggest::Suggestions, String> {
        self.flush();
        let opts = crate::rules::suggest::SuggestOptions::default();
        super::suggest::suggest_from_store(&self.read, &self.rules, &self.t, &opts)
    }

    /// The run's rules with `rule` added, and every stored text re-scored with them.
    fn rescored(&mut self, rule: &str) -> Result<(RuleSet, RescoredRecords), String> {
        self.flush();
        let file = super::suggest::session_rule_file(self.rules_file.as_deref(), &self.store_path);
        let rules = super::suggest::with_rule(&self.rules, rule, &file.display().to_string())?;
        let scores = super::suggest::rescore(&self.read, &rules)?;
        Ok((rules, scores))
    }

    fn preview_rule(&mut self, rule: &str) -> Result<FlipPreview, String> {
        let (_, scores) = self.rescored(rule)?;
        let at: Vec<(usize, f32)> = scores
            .iter()
            .filter_map(|(seq, s, _)| self.index.pos(*seq).map(|p| (p, *s)))
            .collect();
        Ok(self.index.preview_scores(&at, &self.t))
    }

    /// Add `rule` to the session's rule file, re-score and re-decide the run. Refused while
    /// inputs are still being read: the readers score with the rules they started with.
    fn add_rule(&mut self, rule: &str) -> Result<PathBuf, String> {
        if self.readers_left > 0 {
            return Err("inputs are still being read; add rules once reading is done".into());
        }
        let (rules, scores) = self.rescored(rule)?;
        let file = super::suggest::session_rule_file(self.rules_file.as_deref(), &self.store_path);
        let tmp = file.with_extension("toml.tmp");
        std::fs::write(&tmp, rules.source())
            .and_then(|()| std::fs::rename(&tmp, &file))
            .map_err(|e| format!("{}: cannot write: {e}", file.display()))?;
        for (seq, s, _) in &scores {
            if let Some(pos) = self.index.pos(*seq) {
                self.index.set_score(pos, *s);
            }
        }
        self.write(WriterMsg::Rules {
            hash: rules.hash().to_string(),
            scores,
        });
        self.rules = Arc::new(rules);
        self.rules_file = Some(file.clone());
        self.redecide_all();
        Ok(file)
    }

    fn seqs_for(&mut self, id: &str) -> Vec<i64> {
        self.flush();
        match self.read.seqs_for_id(id) {
            Ok(v) => v,
            Err(e) => {
                self.error("store", e.to_string());
                vec![]
            }
        }
    }

    fn relabel(&mut self, id: &str, label: Option<Label>) {
        let seqs = self.seqs_for(id);
        let seqs = self.with_group(seqs);
        if seqs.is_empty() {
            self.error("relabel", format!("no record with id {id}"));
            return;
        }
        for seq in seqs {
            self.apply_label(seq, id, label, None);
        }
    }

    /// These records and every member of their duplicate groups (a label on any member
    /// applies to the group), in seq order.
    fn with_group(&self, seqs: Vec<i64>) -> Vec<i64> {
        let Some(g) = &self.groups else { return seqs };
        let mut all: Vec<i64> = seqs
            .iter()
            .filter_map(|s| self.index.pos(*s))
            .flat_map(|p| g.members(p as u32))
            .map(|p| self.index.seq_at(p as usize))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Store a curator's mark on the records with this id, then regroup.
    fn mark(&mut self, id: &str, mark: Option<crate::store::groups::Mark>) {
        if self.groups.is_none() {
            self.error(
                "dedup",
                format!("cannot change {id}'s group: grouping is off"),
            );
            return;
        }
        let seqs = self.seqs_for(id);
        if seqs.is_empty() {
            self.error("dedup", format!("no record with id {id}"));
            return;
        }
        for seq in seqs {
            self.write(WriterMsg::Mark(seq, mark));
        }
        self.regroup();
    }

    fn set_dedup_threshold(&mut self, th: f32) {
        let Some(g) = &self.groups else {
            self.error(
                "dedup",
                "cannot set the dedup threshold: grouping is off".into(),
            );
            return;
        };
        let settings = crate::dedup::Settings {
            threshold: th,
            ..g.settings().clone()
        };
        if let Err(e) = settings.validate() {
            self.error("dedup", e);
            return;
        }
        self.write(WriterMsg::DedupConfig(crate::store::groups::DedupConfig {
            enabled: true,
            settings: settings.clone(),
        }));
        self.groups = Some(crate::dedup::group::Grouper::new(settings));
        self.regroup();
    }

    /// Recompute every group from the store (signatures, ids, hashes, marks) and re-decide.
    fn regroup(&mut self) {
        let Some(settings) = self.groups.as_ref().map(|g| g.settings().clone()) else {
            return;
        };
        self.flush();
        let g = match crate::store::groups::grouping(self.read.conn(), &self.store_path, &settings)
        {
            Ok(g) if g.seqs.len() == self.index.len() => g,
            Ok(g) => {
                let msg = format!(
                    "{} records grouped, {} indexed",
                    g.seqs.len(),
                    self.index.len()
                );
                self.error("dedup", msg);
                return;
            }
            Err(e) => {
                self.error("dedup", format!("regrouping: {e}"));
                return;
            }
        };
        let old: Vec<crate::decide::Decision> = (0..self.index.len())
            .map(|p| self.index.decision_at(p))
            .collect();
        let needing = self.index.set_reps(&g.grouper.reps(), &self.t);
        let changes = self.index.take_changes();
        let mut flips = FlipPreview::default();
        for (seq, d) in &changes {
            if let Some(pos) = self.index.pos(*seq) {
                let i = self.index.inputs_at(pos);
                super::index::count_flip(&mut flips, &old[pos], d, &i, true);
            }
        }
        flips.newly_pending = needing.len() as u64;
        for chunk in changes.chunks(10_000) {
            self.write(WriterMsg::Decisions(chunk.to_vec()));
        }
        self.write(WriterMsg::Members {
            rows: g.members(),
            alone: vec![],
            clear: true,
        });
        self.groups = Some(g.grouper);
        if self.verifier.is_some() {
            for p in needing {
                let seq = self.index.seq_at(p);
                self.enqueue(p, seq, None, false);
            }
            self.drained_sent = self.drained_sent && self.batcher.is_empty();
        }
        self.emit(EngineEvent::Redecided(flips));
    }

    fn group_view(&mut self, id: &str) -> Option<GroupView> {
        let seq = *self.seqs_for(id).first()?;
        let pos = self.index.pos(seq)?;
        let g = self.groups.as_ref()?;
        let rep = g.rep_of(pos as u32);
        let mut ms = g.members(rep);
        ms.sort_unstable();
        let seqs: Vec<i64> = ms.iter().map(|&p| self.index.seq_at(p as usize)).collect();
        let recs = self.read.records_by_seq(&seqs).ok()?;
        let mut members: Vec<GroupMember> = recs
            .into_iter()
            .filter_map(|r| {
                let p = self.index.pos(r.seq)?;
                Some(GroupMember {
                    seq: r.seq,
                    id: r.id,
                    source: r.source,
                    file: r.file,
                    verdict: self.index.decision_at(p).verdict,
                    similarity: g.similarity(p as u32, rep),
                    via: crate::store::groups::via_str(g.via(p as u32)).to_string(),
                    representative: p as u32 == rep,
                })
            })
            .collect();
        members.sort_by_key(|m| (!m.representative, m.seq));
        Some(GroupView {
            rep_seq: self.index.seq_at(rep as usize),
            members,
        })
    }

    fn apply_label(&mut self, seq: i64, id: &str, label: Option<Label>, undoes: Option<i64>) {
        let Some(pos) = self.index.pos(seq) else {
            return;
        };
        let old_label = self.index.inputs_at(pos).label;
        let (old, new) = self.index.set_label(pos, label, &self.t);
        let (tx, rx) = std::sync::mpsc::channel();
        self.write(WriterMsg::Label(
            LabelChange {
                seq,
                record_id: id.to_string(),
                old_verdict: old.verdict,
                old_label,
                new_label: label,
                decision: new,
                undoes,
            },
            tx,
        ));
        match rx.recv() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => self.error("store", format!("label for {id} not saved: {e}")),
            Err(_) => {}
        }
        self.head_on_label(seq);
        let _ = new;
        self.write_index_changes();
        if self.verifier.is_some() && self.index.needs_verifier(pos) {
            self.enqueue(pos, seq, None, false);
            // A `Drained` follows once the verifier has answered it.
            self.drained_sent = self.drained_sent && self.batcher.is_empty();
        }
        if let Ok(mut rows) = self.rows_for(&[pos]) {
            self.recent.append(&mut rows);
        }
    }

    /// Labels another process (`cyberfilter relabel`) wrote into this store while it runs: the
    /// store already holds them, so only the index, the counts and the table follow. Our own
    /// entries are already in the index; per record only its latest entry counts.
    fn pick_up_outside_labels(&mut self) {
        let entries = match self.read.label_log_after(self.label_log_seen) {
            Ok(e) => e,
            Err(e) => {
                self.error("store", format!("reading the label log: {e}"));
                return;
            }
        };
        let mut latest: std::collections::BTreeMap<i64, Option<Label>> = Default::default();
        for e in entries {
            self.label_log_seen = self.label_log_seen.max(e.log_id);
            latest.insert(e.record_seq, e.new_label);
        }
        let mut changed = Vec::new();
        for (seq, label) in latest {
            let Some(pos) = self.index.pos(seq) else {
                continue;
            };
            if self.index.inputs_at(pos).label == label {
                continue;
            }
            self.index.set_label(pos, label, &self.t);
            if self.verifier.is_some() && self.index.needs_verifier(pos) {
                self.enqueue(pos, seq, None, false);
            }
            changed.push(pos);
        }
        // The store already holds these labels; the duplicates that follow them do not.
        self.write_index_changes();
        if !changed.is_empty() {
            tracing::info!("{} label(s) from another process picked up", changed.len());
            if let Ok(mut rows) = self.rows_for(&changed) {
                self.recent.append(&mut rows);
            }
        }
    }

    fn undo_label(&mut self) {
        self.flush();
        match self.read.last_undoable_label() {
            Ok(Some(e)) => {
                self.apply_label(e.record_seq, &e.record_id, e.old_label, Some(e.log_id));
                self.undo_rest_of_group(&e);
            }
            Ok(None) => self.error("relabel", "no label change to undo".into()),
            Err(e) => self.error("store", e.to_string()),
        }
    }

    /// A label on a group was logged once per member: undo the entries of the same change
    /// (same label, same second, same group) with the one just undone.
    fn undo_rest_of_group(&mut self, first: &crate::store::LabelLogEntry) {
        let Some(g) = &self.groups else { return };
        let group_of = |seq: i64, ix: &Index| ix.pos(seq).map(|p| g.rep_of(p as u32));
        let Some(rep) = group_of(first.record_seq, &self.index) else {
            return;
        };
        let mut seen = std::collections::HashSet::new();
        loop {
            let next = match self.read.last_undoable_label() {
                Ok(Some(e)) if seen.insert(e.log_id) => e,
                _ => return,
            };
            let g = self.groups.as_ref().expect("checked above");
            let same = next.new_label == first.new_label
                && next.time == first.time
                && next.record_seq != first.record_seq
                && self.index.pos(next.record_seq).map(|p| g.rep_of(p as u32)) == Some(rep);
            if !same {
                return;
            }
            self.apply_label(
                next.record_seq,
                &next.record_id,
                next.old_label,
                Some(next.log_id),
            );
        }
    }

    fn reverify(&mut self, id: &str) {
        if self.verifier.is_none() {
            self.error(
                "verifier",
                format!("cannot re-verify {id}: no verifier is running"),
            );
            return;
        }
        for seq in self.seqs_for(id) {
            if let Some(pos) = self.index.pos(seq) {
                self.enqueue(pos, seq, None, true);
                // A `Drained` follows once the verifier has answered again.
                self.drained_sent = false;
            }
        }
    }

    fn export(&mut self, out: PathBuf, format: ExportFormat, layout: ExportLayout) {
        self.flush();
        let store = self.store_path.clone();
        let t = self.t;
        let events = self.events.clone();
        // Export reads its own snapshot of the store; the run goes on meanwhile.
        let spawned = std::thread::Builder::new()
            .name("cyberfilter-export".into())
            .spawn(move || {
                let ev = match crate::store::export::export(&store, &out, format, layout, Some(t)) {
                    Ok(r) => EngineEvent::Exported {
                        out,
                        records: r.records,
                    },
                    Err(e) => EngineEvent::Error {
                        file: out.display().to_string(),
                        message: format!("export failed: {e}"),
                    },
                };
                let _ = events.blocking_send(ev);
            });
        if let Err(e) = spawned {
            self.error("export", e.to_string());
        }
    }

    fn rows_for(&self, positions: &[usize]) -> Result<Vec<RecordRow>, crate::store::StoreError> {
        let seqs: Vec<i64> = positions.iter().map(|&p| self.index.seq_at(p)).collect();
        let recs = self.read.records_by_seq(&seqs)?;
        Ok(recs.into_iter().map(|r| self.row(&r)).collect())
    }

    fn row(&self, r: &StoredRecord) -> RecordRow {
        let d = self
            .index
            .pos(r.seq)
            .map(|p| self.index.decision_at(p))
            .unwrap_or_else(|| crate::decide::decide(&r.inputs(), &self.t));
        // The index holds the live inputs (answers and labels not yet written back).
        let (p_yes, p_head, label) = match self.index.pos(r.seq).map(|p| self.index.inputs_at(p)) {
            Some(i) => (i.p_yes, i.p_head, i.label),
            None => (r.p_yes, r.p_head, r.label),
        };
        let mut hits = r.hits.clone();
        hits.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
        RecordRow {
            seq: r.seq,
            id: r.id.clone(),
            name: crate::record::display_name(r.source, &r.id, &r.text),
            source: r.source,
            kind: r.kind.clone(),
            file: r.file.clone(),
            score: r.score,
            p_yes,
            p_head,
            tier: d.tier,
            verdict: d.verdict,
            decided_by: d.decided_by,
            label,
            rules: hits.into_iter().map(|h| h.rule).collect(),
            group: self.index.pos(r.seq).and_then(|p| self.group_of(p)),
        }
    }

    fn uncertainty(&self, pos: usize) -> f32 {
        super::query::uncertainty(
            &self.index.inputs_at(pos),
            &self.index.decision_at(pos),
            &self.t,
        )
    }

    fn query(&mut self, f: &RecordFilter, sort: SortBy, offset: u64, limit: u64) -> RecordPage {
        let search: Option<HashSet<i64>> = match f.search.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => match self.read.search(s) {
                Ok(v) => Some(v.into_iter().collect()),
                Err(e) => {
                    self.error("store", e.to_string());
                    return RecordPage::default();
                }
            },
        };
        let mut hits: Vec<usize> = (0..self.index.len())
            .filter(|&p| {
                super::query::matches(
                    f,
                    &self.index.decision_at(p),
                    self.index.source_at(p),
                    self.index.inputs_at(p).label.is_some(),
                ) && (!f.duplicates || self.index.in_group(p))
                    && search
                        .as_ref()
                        .is_none_or(|s| s.contains(&self.index.seq_at(p)))
            })
            .collect();
        super::query::sort(
            &mut hits,
            sort,
            |&p| self.index.inputs_at(p).score,
            |&p| self.uncertainty(p),
        );
        let range = super::query::page(hits.len(), offset, limit);
        let rows = self.rows_for(&hits[range]).unwrap_or_default();
        RecordPage {
            rows,
            total: hits.len() as u64,
        }
    }

    fn detail(&mut self, id: &str) -> Option<RecordDetail> {
        let seq = *self.read.seqs_for_id(id).ok()?.first()?;
        let rec = self.read.records_by_seq(&[seq]).ok()?.pop()?;
        let row = self.row(&rec);
        let original = crate::ingest::read_original(&rec.locator)
            .map_err(|e| e.to_string())
            .map(
                |bytes| match serde_json::from_slice::<serde_json::Value>(&bytes) {
                    Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
                    Err(_) => String::from_utf8_lossy(&bytes).into_owned(),
                },
            );
        let inputs = DecisionInputs {
            score: rec.score,
            text_len: rec.text_len,
            scored: rec.scored,
            p_yes: row.p_yes,
            p_head: row.p_head,
            label: row.label,
        };
        let why = crate::decide::why(
            &inputs,
            &Decision {
                tier: row.tier,
                verdict: row.verdict,
                decided_by: row.decided_by,
            },
            &self.t,
        );
        Some(RecordDetail {
            text: rec.text.clone(),
            hits: rec.hits.clone(),
            locator: rec.locator.to_string(),
            model: rec.model.clone(),
            original,
            why,
            row,
            matches: self
                .rules
                .match_spans(&rec.text)
                .into_iter()
                .map(|(range, rule)| TextMatch {
                    start: range.start,
                    end: range.end,
                    rule: rule.name.clone(),
                    negative: rule.weight < 0.0,
                })
                .collect(),
        })
    }

    fn write_files(&mut self) {
        let rows: Vec<FileRow> = self
            .file_order
            .iter()
            .filter_map(|id| self.files.get(id).cloned())
            .collect();
        for r in rows {
            self.write(WriterMsg::File(r));
        }
    }

    fn snapshot(&self) -> StatsSnapshot {
        let c = self.index.counts();
        let (groups, duplicates, verifier_saved) = self.index.group_counts(&self.t);
        let now = Instant::now();
        let bytes: u64 = self.files.values().map(|f| f.bytes_done).sum();
        let (records_per_sec, mb_per_sec) = self.rates.per_sec(now, self.c.records_session, bytes);
        StatsSnapshot {
            elapsed: self.started.elapsed(),
            records_read: self.c.records_session,
            bytes_read: bytes,
            records_per_sec,
            mb_per_sec,
            keep: c.keep,
            verify: c.verify,
            reject: c.reject,
            kept: c.kept,
            removed: c.removed,
            pending: c.pending,
            labelled: c.labelled,
            verifier_queue: self.batcher.waiting() as u64,
            batch_fill: self.c.last_fill,
            batch_latency_ms: self.c.last_latency_ms,
            llm_records_per_sec: self.llm_window.rate(now, self.c.llm_records),
            llm_calls: self.c.llm_calls,
            cache_hits: self.c.cache_hits,
            verifier_errors: self.c.verifier_errors,
            verifier_retrying: self.retry.waiting() as u64,
            verifier_failed_rounds: self.retry.failed_rounds,
            verifier_gave_up: self.retry.gave_up,
            rss_bytes: rss_bytes(),
            errors: self.c.errors,
            paused: self.flags.paused.load(Ordering::Relaxed),
            thresholds: self.t,
            groups,
            duplicates,
            verifier_saved,
        }
    }

    fn metrics_line(&self) -> String {
        super::metrics::metrics_line(&self.snapshot(), &self.c)
    }

    fn tick(&mut self) {
        let now = Instant::now();
        self.llm_window.push(now, self.c.llm_records);
        let snap = self.snapshot();
        if self.last_metrics.elapsed() >= Duration::from_secs(1) {
            self.last_metrics = Instant::now();
            let line = self.metrics_line();
            self.write(WriterMsg::Metrics(line));
            self.write_files();
            self.pick_up_outside_labels();
        }
        self.rates
            .mark(Instant::now(), self.c.records_session, snap.bytes_read);
        let files = self
            .file_order
            .iter()
            .filter_map(|id| self.files.get(id))
            .map(|f| FileProgress {
                file: f.path.clone(),
                bytes_done: f.bytes_done,
                bytes_total: f.bytes_total,
                records: f.records,
                errors: f.errors,
                done: f.done,
            })
            .collect();
        self.emit(EngineEvent::Stats(snap));
        self.emit(EngineEvent::Files(files));
        if !self.recent.is_empty() {
            let rows = std::mem::take(&mut self.recent);
            self.emit(EngineEvent::Verdicts(rows));
        }
    }
}
