//! Types that cross from the engine to its front ends (headless CLI, TUI).
//!
//! CONTRACT shared by the engine and the TUI. Additions are fine; renames need both sides.

use crate::decide::{DecidedBy, Label, Verdict};
use crate::record::SourceKind;
use crate::rules::{RuleHit, Thresholds, Tier};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::oneshot;

/// One row of the records table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordRow {
    /// Store row id: the arrival order.
    pub seq: i64,
    pub id: String,
    /// What the table shows: the id, or for STIX objects their ATT&CK id and name
    /// ([`crate::record::display_name`]).
    #[serde(default)]
    pub name: String,
    pub source: SourceKind,
    pub kind: String,
    pub file: String,
    pub score: f32,
    pub p_yes: Option<f32>,
    /// P(head) when the verdict head scored this record.
    #[serde(default)]
    pub p_head: Option<f32>,
    pub tier: Tier,
    pub verdict: Verdict,
    pub decided_by: Option<DecidedBy>,
    pub label: Option<Label>,
    /// Matched rule names, most weighty first.
    pub rules: Vec<String>,
    /// The duplicate group this record is in (its representative's seq), when the group has
    /// two or more records; the record is a duplicate when this is not its own seq.
    #[serde(default)]
    pub group: Option<i64>,
}

/// Everything the record view shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordDetail {
    pub row: RecordRow,
    pub text: String,
    pub hits: Vec<RuleHit>,
    pub locator: String,
    pub model: Option<String>,
    /// The original record bytes, pretty-printed when they are JSON; or the error reading them.
    pub original: Result<String, String>,
    /// Human-readable reason for the verdict ("score 7.5 ≥ high 6", "P(yes) 0.81 ≥ 0.5", …).
    pub why: String,
    /// Where rules matched in `text`, for highlighting (empty when the engine does not say).
    #[serde(default)]
    pub matches: Vec<TextMatch>,
}

/// One rule match in a record's extracted text: byte offsets into `RecordDetail::text`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextMatch {
    pub start: usize,
    pub end: usize,
    pub rule: String,
    /// The rule counts against the record (negative weight).
    pub negative: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SortBy {
    /// Arrival order.
    #[default]
    Arrival,
    /// Highest score first.
    Score,
    /// Closest to a threshold (score to low/high, or P(yes) to the cut) first.
    Uncertainty,
}

/// Which records a query returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordFilter {
    pub verdict: Option<Verdict>,
    pub tier: Option<Tier>,
    pub source: Option<SourceKind>,
    pub decided_by: Option<DecidedBy>,
    /// Some(true): only labelled; Some(false): only unlabelled.
    pub labelled: Option<bool>,
    /// Substring search over id and text (case-insensitive).
    pub search: Option<String>,
    /// Only records in a duplicate group of two or more.
    #[serde(default)]
    pub duplicates: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordPage {
    pub rows: Vec<RecordRow>,
    /// Rows matching the filter in all.
    pub total: u64,
}

/// What would change if these thresholds were applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlipPreview {
    /// Records whose verdict would become kept.
    pub to_kept: u64,
    /// Records whose verdict would become removed.
    pub to_removed: u64,
    /// Records whose verdict would become pending (they wait for the verifier).
    pub to_pending: u64,
    /// Records that would leave kept (to removed or pending).
    pub from_kept: u64,
    /// Records that would leave removed.
    pub from_removed: u64,
    /// Records that would leave pending.
    pub from_pending: u64,
    /// Records that would newly need the verifier (sent to it when applied).
    pub newly_pending: u64,
}

impl FlipPreview {
    /// One line for the threshold panel and the status after applying: what enters and
    /// leaves each verdict, so a record leaving kept for pending reads as leaving kept.
    pub fn summary(&self) -> String {
        format!(
            "kept +{} −{} · removed +{} −{} · pending +{} −{} · {} to ask the LLM",
            self.to_kept,
            self.from_kept,
            self.to_removed,
            self.from_removed,
            self.to_pending,
            self.from_pending,
            self.newly_pending
        )
    }
}

/// Precision/recall of the current decision against the curator's labels so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LabelAgreement {
    pub labelled: u64,
    pub true_pos: u64,
    pub false_pos: u64,
    pub false_neg: u64,
    pub true_neg: u64,
}

// The export's own types live with the export writer; commands carry them.
pub use crate::store::export::{ExportFormat, ExportLayout};

/// Commands into a running engine. Queries carry a reply channel.
#[derive(Debug)]
pub enum Command {
    Pause,
    Resume,
    /// Stop cleanly: flush the store, then emit `EngineEvent::Finished`.
    Stop,
    SetThresholds(Thresholds),
    PreviewThresholds(Thresholds, oneshot::Sender<FlipPreview>),
    /// `None` clears the label.
    Relabel {
        id: String,
        label: Option<Label>,
    },
    /// Undo the most recent label change (from the label log).
    UndoLabel,
    Reverify {
        id: String,
    },
    Export {
        out: PathBuf,
        format: ExportFormat,
        layout: ExportLayout,
    },
    Query {
        filter: RecordFilter,
        sort: SortBy,
        offset: u64,
        limit: u64,
        reply: oneshot::Sender<RecordPage>,
    },
    GetRecord {
        id: String,
        reply: oneshot::Sender<Option<RecordDetail>>,
    },
    /// Threshold sweep (score threshold → precision/recall against labels) for the chart.
    Agreement {
        thresholds: Thresholds,
        reply: oneshot::Sender<LabelAgreement>,
    },
    /// Retrain the verdict head now and re-decide the verify band from stored features.
    RetrainHead,
    /// Switch the verdict head on or off (off: the verify band is decided by P(yes)).
    SetHeadEnabled(bool),
    /// The verdict head's state for the workbench's head panel.
    HeadStatus {
        reply: oneshot::Sender<HeadStatus>,
    },
    /// Candidate rules mined from the curator's labels (the miner of `rules suggest --store`).
    SuggestRules {
        reply: oneshot::Sender<Result<crate::engine::suggest::Suggestions, String>>,
    },
    /// What adding this `[[rule]]` to the run's rules would flip (every stored text
    /// re-scored), without changing anything.
    PreviewRule {
        rule: String,
        reply: oneshot::Sender<Result<FlipPreview, String>>,
    },
    /// Add this `[[rule]]` to the session's rule file, re-score every stored text and
    /// re-decide (`Redecided` follows); replies with the rule file written.
    AddRule {
        rule: String,
        reply: oneshot::Sender<Result<PathBuf, String>>,
    },
    /// Mark the records with this id `not a duplicate` (`true`) or clear the mark; the store
    /// remembers it and the groups are recomputed.
    SplitDuplicate {
        id: String,
        split: bool,
    },
    /// Make this record its group's representative.
    ChooseRepresentative {
        id: String,
    },
    /// Regroup every stored record under a new near-duplicate threshold (from stored
    /// signatures; no input is read again).
    SetDedupThreshold(f32),
    /// The group of the record with this id.
    Group {
        id: String,
        reply: oneshot::Sender<Option<GroupView>>,
    },
}

/// One member of a duplicate group, for the group view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMember {
    pub seq: i64,
    pub id: String,
    pub source: SourceKind,
    pub file: String,
    pub verdict: Verdict,
    /// Similarity to the representative: 1 for equal text, the MinHash estimate otherwise,
    /// `None` when linked by id only.
    pub similarity: Option<f32>,
    /// How it joined: `id`, `text`, `near` (or `alone` for the first).
    pub via: String,
    pub representative: bool,
}

/// A duplicate group: its members, representative first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupView {
    pub rep_seq: i64,
    pub members: Vec<GroupMember>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileProgress {
    pub file: String,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub records: u64,
    pub errors: u64,
    pub done: bool,
}

/// Aggregated statistics, sent a few times per second (never one event per record).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    pub elapsed: Duration,
    pub records_read: u64,
    pub bytes_read: u64,
    /// Over the last interval.
    pub records_per_sec: f64,
    pub mb_per_sec: f64,
    pub keep: u64,
    pub verify: u64,
    pub reject: u64,
    pub kept: u64,
    pub removed: u64,
    pub pending: u64,
    pub labelled: u64,
    pub verifier_queue: u64,
    /// Records per batch ÷ batch size, last batch and running mean.
    pub batch_fill: f64,
    pub batch_latency_ms: f64,
    /// Texts the model answered per second over the last 10 s (it answers in bursts).
    pub llm_records_per_sec: f64,
    pub llm_calls: u64,
    pub cache_hits: u64,
    pub verifier_errors: u64,
    /// Records of failed batches waiting to be asked again (pending meanwhile), the failed
    /// asks of records so far, and the records given up after their last retry (pending for
    /// a resume).
    #[serde(default)]
    pub verifier_retrying: u64,
    #[serde(default)]
    pub verifier_failed_rounds: u64,
    #[serde(default)]
    pub verifier_gave_up: u64,
    pub rss_bytes: u64,
    pub errors: u64,
    pub paused: bool,
    pub thresholds: Thresholds,
    /// Duplicate groups of two or more records, the duplicates in them (records beyond
    /// each group's representative), and the verifier asks saved (duplicates in the verify
    /// band that would each have been asked on their own).
    #[serde(default)]
    pub groups: u64,
    #[serde(default)]
    pub duplicates: u64,
    #[serde(default)]
    pub verifier_saved: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EngineEvent {
    Stats(StatsSnapshot),
    Files(Vec<FileProgress>),
    /// Newly decided or re-decided rows, in chunks.
    Verdicts(Vec<RecordRow>),
    /// After `SetThresholds` (or a head retrain): how many verdicts flipped each way.
    Redecided(FlipPreview),
    /// The verdict head: trained, turned on/off, or why it is off.
    Head(HeadEvent),
    Error {
        file: String,
        message: String,
    },
    Exported {
        out: PathBuf,
        records: u64,
    },
    /// The engine stopped (finished or on `Stop`); the store is consistent.
    Finished(StatsSnapshot),
    /// Every input is read and the verifier has nothing left to do; the store holds
    /// everything. The engine keeps answering commands (relabel, thresholds, export) until
    /// `Stop` (it stops by itself instead when `EngineConfig::exit_when_done` is set).
    Drained(StatsSnapshot),
}

/// The verdict head as the head panel shows it: what it learned from, how well, and
/// what its last retrain changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeadStatus {
    /// Why there is no head (`--head off`, a verifier without features); None: it can run.
    pub off_reason: Option<String>,
    /// Switched on by the curator (off: P(yes) decides the verify band).
    pub enabled: bool,
    /// The head in force: version, whether it is the shipped default, its training report.
    pub version: Option<String>,
    pub shipped_default: bool,
    pub metrics: Option<crate::verify::head::HeadMetrics>,
    /// The features it reads (`model|layer|pooling|tokens|dim`).
    pub features: Option<String>,
    /// Records of this run with stored features (what a retrain rescores).
    pub records_with_features: usize,
    /// Seed texts and weak labels still to featurize while the verifier idles.
    pub idle_left: usize,
    /// Curator labels since the last training, and how many trigger a retrain.
    pub labels_since: usize,
    pub retrain_every: usize,
    /// Flips of the last retrain or switch, each way.
    pub last_flips: Option<(u64, u64)>,
    /// The cut P(head) is compared with (the threshold panel's P cut).
    pub cut: f32,
}

/// What the verdict head did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadEvent {
    /// One line for a status bar or a log.
    pub message: String,
    /// Version, examples and CV AUC of the head in force (None: zero-shot P(yes) decides).
    pub version: Option<String>,
    pub examples: usize,
    pub cv_auc: Option<f64>,
    /// Flips of the last retrain, each way.
    pub to_kept: u64,
    pub to_removed: u64,
}
