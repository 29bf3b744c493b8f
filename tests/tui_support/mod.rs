//! Test double for the engine (the only one allowed): a task that answers `Command`s from an
//! in-memory set of records, decides them with the real `decide`, runs a deterministic test
//! verifier, keeps a label log with undo, and emits Stats/Files/Verdicts events when the test
//! reveals more records. Everything is deterministic: no wall clock, no randomness.

#![allow(dead_code)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use cyberfilter::decide::{decide, DecisionInputs, Label, Verdict};
use cyberfilter::engine::index::count_flip;
use cyberfilter::engine::query;
use cyberfilter::engine::suggest::{suggestions, with_rule};
use cyberfilter::engine::types::*;
use cyberfilter::record::SourceKind;
use cyberfilter::rules::suggest::{Corpus, SuggestOptions};
use cyberfilter::rules::{RuleHit, RuleSet, Thresholds, Tier};
use cyberfilter::tui::app::{App, SessionInfo};
use cyberfilter::tui::keymap::Keymap;
use cyberfilter::tui::theme::Theme;
use cyberfilter::tui::{Msg, Session};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone)]
pub struct FakeRecord {
    pub id: String,
    pub source: SourceKind,
    pub kind: String,
    pub file: String,
    pub score: f32,
    pub text: String,
    pub hits: Vec<RuleHit>,
    pub matches: Vec<TextMatch>,
    pub p_yes: Option<f32>,
    pub label: Option<Label>,
    pub seq: i64,
}

const WORDS: [(&str, &str, f32); 8] = [
    ("SQL injection", "sqli", 3.0),
    ("remote code execution", "rce", 3.5),
    ("buffer overflow", "memory", 2.5),
    ("cross-site scripting", "xss", 2.0),
    ("privilege escalation", "privesc", 2.5),
    ("denial of service", "dos", 1.5),
    ("example", "example_text", -1.0),
    ("marketing newsletter", "off_topic", -2.0),
];

const FILES: [&str; 4] = [
    "sample_data/nvdcve-2.0-2024.json",
    "sample_data/cvelistV5-2024.jsonl",
    "sample_data/enterprise-attack.json",
    "sample_data/capec_v3.9.xml",
];

/// Deterministic records: ids, sources, texts with known keywords, scores from the keywords.
pub fn sample_records(n: usize) -> Vec<FakeRecord> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    (0..n)
        .map(|i| {
            let file_i = i % FILES.len();
            let source = [
                SourceKind::NvdApi2,
                SourceKind::Cve5,
                SourceKind::Stix,
                SourceKind::Capec,
            ][file_i];
            let id = match source {
                SourceKind::Stix => format!("attack-pattern--{:04x}", i * 37 % 65536),
                SourceKind::Capec => format!("CAPEC-{}", 100 + i),
                _ => format!("CVE-2024-{:05}", 1000 + i * 7),
            };
            // STIX objects start with their ATT&CK id and name, as the reader writes them.
            let mut text = match source {
                SourceKind::Stix => format!("T{} Sample technique {i}\n", 1000 + i),
                _ => format!("{id}: "),
            };
            let mut hits: Vec<RuleHit> = Vec::new();
            let mut matches = Vec::new();
            let k = 1 + next() % 3;
            for _ in 0..k {
                let (w, rule, weight) = WORDS[(next() % WORDS.len() as u32) as usize];
                if hits.iter().any(|h| h.rule == rule) {
                    continue;
                }
                text.push_str("A flaw allowing ");
                let start = text.len();
                text.push_str(w);
                matches.push(TextMatch {
                    start,
                    end: text.len(),
                    rule: rule.into(),
                    negative: weight < 0.0,
                });
                text.push_str(" in the parser of component ");
                text.push_str(&format!("lib{}.\n", next() % 50));
                hits.push(RuleHit {
                    rule: rule.into(),
                    category: if weight < 0.0 {
                        "negative".into()
                    } else {
                        "attack".into()
                    },
                    count: 1,
                    contribution: weight,
                });
            }
            text.push_str(
                "Affected versions before 2.4.1 are vulnerable; see the advisory for details.",
            );
            let score: f32 =
                hits.iter().map(|h| h.contribution).sum::<f32>() + (next() % 4) as f32 * 0.5;
            FakeRecord {
                id,
                source,
                kind: match source {
                    SourceKind::Stix => "attack-pattern".into(),
                    SourceKind::Capec => "Attack_Pattern".into(),
                    _ => "cve".into(),
                },
                file: FILES[file_i].into(),
                score,
                text,
                hits,
                matches,
                p_yes: None,
                label: None,
                seq: i as i64 + 1,
            }
        })
        .collect()
}

/// The test head: a fixed probability per record id, unlike the test verifier's.
pub fn test_head(id: &str) -> f32 {
    let h = id
        .bytes()
        .rev()
        .fold(11u32, |a, b| a.wrapping_mul(37).wrapping_add(b as u32));
    (h % 101) as f32 / 100.0
}

/// The test verifier: a fixed probability per record id.
pub fn test_verifier(id: &str) -> f32 {
    let h = id
        .bytes()
        .fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
    (h % 101) as f32 / 100.0
}

pub struct FakeState {
    pub records: Vec<FakeRecord>,
    pub revealed: usize,
    pub thresholds: Thresholds,
    pub label_log: Vec<(String, Option<Label>, Option<Label>)>,
    pub paused: bool,
    pub steps: u32,
    pub commands_seen: Vec<String>,
    pub errors: u64,
    pub max_query_limit: u64,
    /// The fake verdict head: off unless a test switches it on with [`FakeEngine::head_on`].
    pub head: HeadStatus,
    /// Duplicate groups by seq, representative first (none unless a test sets them).
    pub groups: Vec<Vec<i64>>,
}

impl FakeState {
    fn inputs(&self, r: &FakeRecord) -> DecisionInputs {
        DecisionInputs {
            score: r.score,
            text_len: r.text.chars().count(),
            scored: true,
            p_yes: r.p_yes,
            p_head: self.p_head(r),
            label: r.label,
        }
    }

    /// P(head) of an answered record while the fake head is on.
    fn p_head(&self, r: &FakeRecord) -> Option<f32> {
        let on = self.head.enabled && self.head.version.is_some();
        r.p_yes.filter(|_| on).map(|_| test_head(&r.id))
    }

    pub fn row(&self, r: &FakeRecord) -> RecordRow {
        let d = decide(&self.inputs(r), &self.thresholds);
        RecordRow {
            seq: r.seq,
            id: r.id.clone(),
            name: cyberfilter::record::display_name(r.source, &r.id, &r.text),
            source: r.source,
            kind: r.kind.clone(),
            file: r.file.clone(),
            score: r.score,
            p_yes: r.p_yes,
            p_head: self.p_head(r),
            tier: d.tier,
            verdict: d.verdict,
            decided_by: d.decided_by,
            label: r.label,
            rules: r.hits.iter().map(|h| h.rule.clone()).collect(),
            group: None,
        }
    }

    fn visible(&self) -> &[FakeRecord] {
        &self.records[..self.revealed]
    }

    fn flips(&self, t: &Thresholds) -> FlipPreview {
        let mut f = FlipPreview::default();
        for r in self.visible() {
            let i = self.inputs(r);
            let (a, b) = (decide(&i, &self.thresholds), decide(&i, t));
            // The engine's own counting: the fake cannot drift from it.
            cyberfilter::engine::index::count_flip(&mut f, &a, &b, &i, false);
        }
        f
    }

    fn agreement(&self, t: &Thresholds) -> LabelAgreement {
        let mut a = LabelAgreement::default();
        for r in self.visible() {
            let Some(label) = r.label else { continue };
            let mut i = self.inputs(r);
            i.label = None;
            let kept = decide(&i, t).verdict == Verdict::Kept;
            a.labelled += 1;
            match (kept, label == Label::Keep) {
                (true, true) => a.true_pos += 1,
                (true, false) => a.false_pos += 1,
                (false, true) => a.false_neg += 1,
                (false, false) => a.true_neg += 1,
            }
        }
        a
    }

    fn uncertainty(&self, r: &FakeRecord) -> f32 {
        let i = self.inputs(r);
        query::uncertainty(&i, &decide(&i, &self.thresholds), &self.thresholds)
    }

    /// The engine's own filter, order and paging (`engine::query`); only the text search is
    /// the fake's (the engine asks the store).
    fn query(
        &mut self,
        filter: &RecordFilter,
        sort: SortBy,
        offset: u64,
        limit: u64,
    ) -> RecordPage {
        self.max_query_limit = self.max_query_limit.max(limit);
        let mut rows: Vec<(&FakeRecord, RecordRow)> = self
            .visible()
            .iter()
            .map(|r| (r, self.row(r)))
            .filter(|(r, row)| {
                let d = decide(&self.inputs(r), &self.thresholds);
                query::matches(filter, &d, row.source, row.label.is_some())
                    && filter.search.as_ref().is_none_or(|s| {
                        let s = s.to_lowercase();
                        r.id.to_lowercase().contains(&s) || r.text.to_lowercase().contains(&s)
                    })
            })
            .collect();
        rows.sort_by_key(|(r, _)| r.seq);
        query::sort(&mut rows, sort, |a| a.0.score, |a| self.uncertainty(a.0));
        let range = query::page(rows.len(), offset, limit);
        let total = rows.len() as u64;
        let rows = rows.drain(range).map(|(_, row)| row).collect();
        RecordPage { rows, total }
    }

    fn detail(&self, id: &str) -> Option<RecordDetail> {
        let r = self.visible().iter().find(|r| r.id == id)?;
        let row = self.row(r);
        let t = &self.thresholds;
        // The engine's own explanation, so the record view cannot drift from it.
        let i = self.inputs(r);
        let why = cyberfilter::decide::why(&i, &decide(&i, t), t);
        let original = serde_json::to_string_pretty(&serde_json::json!({
            "id": r.id,
            "descriptions": [{"lang": "en", "value": r.text}],
            "source": r.source.as_str(),
        }))
        .map_err(|e| e.to_string());
        Some(RecordDetail {
            row,
            text: r.text.clone(),
            hits: r.hits.clone(),
            locator: format!("{}#{}@{}+{}", r.file, r.seq - 1, (r.seq - 1) * 812, 812),
            model: r.p_yes.map(|_| "test-verifier".to_string()),
            original,
            why,
            matches: r.matches.clone(),
        })
    }

    pub fn stats(&self) -> StatsSnapshot {
        let s = self.steps as u64;
        let mut st = StatsSnapshot {
            elapsed: Duration::from_millis(500 * s),
            records_read: self.revealed as u64,
            bytes_read: self.revealed as u64 * 812,
            records_per_sec: [120.0, 180.0, 240.0, 210.0, 260.0, 300.0, 280.0][(s % 7) as usize],
            mb_per_sec: [0.1, 0.15, 0.2, 0.17, 0.21, 0.24, 0.22][(s % 7) as usize],
            verifier_queue: (s * 3) % 17,
            batch_fill: [0.5, 0.75, 1.0, 0.875][(s % 4) as usize],
            batch_latency_ms: 640.0 + (s % 5) as f64 * 40.0,
            llm_records_per_sec: [4.0, 6.5, 8.0, 7.2][(s % 4) as usize],
            llm_calls: s * 2,
            cache_hits: s / 2,
            verifier_errors: 0,
            rss_bytes: (48 + s) * 1024 * 1024,
            errors: self.errors,
            paused: self.paused,
            thresholds: self.thresholds,
            ..StatsSnapshot::default()
        };
        for r in self.visible() {
            let row = self.row(r);
            match row.tier {
                Tier::Keep => st.keep += 1,
                Tier::Verify => st.verify += 1,
                Tier::Reject => st.reject += 1,
            }
            match row.verdict {
                Verdict::Kept => st.kept += 1,
                Verdict::Removed => st.removed += 1,
                Verdict::Pending => st.pending += 1,
            }
            st.labelled += u64::from(row.label.is_some());
        }
        st
    }

    fn files(&self) -> Vec<FileProgress> {
        FILES
            .iter()
            .enumerate()
            .map(|(fi, f)| {
                let all = self.records.iter().filter(|r| r.file == *f).count() as u64;
                let done = self.visible().iter().filter(|r| r.file == *f).count() as u64;
                FileProgress {
                    file: f.to_string(),
                    bytes_done: done * 812,
                    bytes_total: all * 812,
                    records: done,
                    errors: u64::from(fi == 3 && self.errors > 0),
                    done: done == all,
                }
            })
            .collect()
    }
}

pub enum Ctl {
    /// Reveal `n` more records: the test verifier answers the pending ones, then Stats, Files
    /// and Verdicts are emitted, then `ack`.
    Reveal(usize, oneshot::Sender<()>),
    Error(String, String, oneshot::Sender<()>),
}

pub struct FakeEngine {
    pub state: Arc<Mutex<FakeState>>,
    ctl: mpsc::UnboundedSender<Ctl>,
}

impl FakeEngine {
    /// Spawns the fake engine; returns it with the channels a TUI session needs.
    pub fn spawn(
        records: Vec<FakeRecord>,
    ) -> (
        FakeEngine,
        mpsc::Sender<Command>,
        mpsc::Receiver<EngineEvent>,
    ) {
        let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(64);
        let (ev_tx, ev_rx) = mpsc::channel::<EngineEvent>(1024);
        let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel::<Ctl>();
        let state = Arc::new(Mutex::new(FakeState {
            records,
            revealed: 0,
            thresholds: Thresholds::default(),
            label_log: Vec::new(),
            paused: false,
            steps: 0,
            commands_seen: Vec::new(),
            errors: 0,
            max_query_limit: 0,
            head: HeadStatus {
                off_reason: Some("the test engine has no verifier features".into()),
                ..HeadStatus::default()
            },
            groups: Vec::new(),
        }));
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    biased;
                    c = ctl_rx.recv() => match c {
                        Some(Ctl::Reveal(n, ack)) => {
                            let (stats, files, rows) = {
                                let mut s = st.lock().unwrap();
                                let from = s.revealed;
                                // The test verifier answers everything pending before the step.
                                let t = s.thresholds;
                                for r in s.records.iter_mut().take(from) {
                                    let i = DecisionInputs { score: r.score, text_len: r.text.chars().count(), scored: true, p_yes: r.p_yes, p_head: None, label: r.label };
                                    if decide(&i, &t).needs_verifier(&i) {
                                        r.p_yes = Some(test_verifier(&r.id));
                                    }
                                }
                                s.revealed = (from + n).min(s.records.len());
                                // Half of the new verify-tier records get their answer in the same step.
                                let to = s.revealed;
                                for (k, r) in s.records[from..to].iter_mut().enumerate() {
                                    if k % 2 == 0 {
                                        r.p_yes = Some(test_verifier(&r.id));
                                    }
                                }
                                s.steps += 1;
                                let rows: Vec<RecordRow> = s.records[from..to].iter().map(|r| s.row(r)).collect();
                                (s.stats(), s.files(), rows)
                            };
                            let _ = ev_tx.send(EngineEvent::Verdicts(rows)).await;
                            let _ = ev_tx.send(EngineEvent::Files(files)).await;
                            let _ = ev_tx.send(EngineEvent::Stats(stats)).await;
                            let _ = ack.send(());
                        }
                        Some(Ctl::Error(file, message, ack)) => {
                            st.lock().unwrap().errors += 1;
                            let _ = ev_tx.send(EngineEvent::Error { file, message }).await;
                            let _ = ack.send(());
                        }
                        None => {}
                    },
                    c = cmd_rx.recv() => {
                        let Some(c) = c else { break };
                        let stop = matches!(c, Command::Stop);
                        let events = handle(&st, c);
                        for e in events {
                            let _ = ev_tx.send(e).await;
                        }
                        if stop {
                            break;
                        }
                    }
                }
            }
        });
        (FakeEngine { state, ctl: ctl_tx }, cmd_tx, ev_rx)
    }

    pub async fn reveal(&self, n: usize) {
        let (tx, rx) = oneshot::channel();
        self.ctl.send(Ctl::Reveal(n, tx)).unwrap();
        rx.await.unwrap();
    }

    /// Switch the fake head on: a trained head with these metrics decides the verify band.
    pub fn head_on(&self, metrics: cyberfilter::verify::head::HeadMetrics) {
        let mut s = self.state.lock().unwrap();
        s.head = HeadStatus {
            off_reason: None,
            enabled: true,
            version: Some("fake-0".into()),
            shipped_default: true,
            metrics: Some(metrics),
            features: Some("test|layer16|mean|t96|d576".into()),
            records_with_features: s.records.iter().filter(|r| r.p_yes.is_some()).count(),
            idle_left: 0,
            labels_since: 0,
            retrain_every: 10,
            last_flips: None,
            cut: s.thresholds.p_yes_cut,
        };
    }

    pub async fn error(&self, file: &str, message: &str) {
        let (tx, rx) = oneshot::channel();
        self.ctl
            .send(Ctl::Error(file.into(), message.into(), tx))
            .unwrap();
        rx.await.unwrap();
    }
}

fn head_event(h: &HeadStatus, message: String) -> EngineEvent {
    EngineEvent::Head(HeadEvent {
        message,
        version: h.version.clone().filter(|_| h.enabled),
        examples: h.metrics.as_ref().map_or(0, |m| m.examples),
        cv_auc: h.metrics.as_ref().and_then(|m| m.cv_auc),
        to_kept: h.last_flips.map_or(0, |f| f.0),
        to_removed: h.last_flips.map_or(0, |f| f.1),
    })
}

fn handle(st: &Arc<Mutex<FakeState>>, c: Command) -> Vec<EngineEvent> {
    let mut s = st.lock().unwrap();
    let name = format!("{c:?}");
    let name = name.split([' ', '(', '{']).next().unwrap_or("").to_string();
    s.commands_seen.push(name);
    match c {
        Command::Pause => {
            s.paused = true;
            vec![EngineEvent::Stats(s.stats())]
        }
        Command::Resume => {
            s.paused = false;
            vec![EngineEvent::Stats(s.stats())]
        }
        Command::Stop => vec![EngineEvent::Finished(s.stats())],
        Command::HeadStatus { reply } => {
            let _ = reply.send(s.head.clone());
            vec![]
        }
        Command::RetrainHead => {
            if s.head.off_reason.is_some() {
                return vec![head_event(&s.head, "head off: nothing to retrain".into())];
            }
            // A retrain that learned nothing new: same verdicts, a new version.
            let n = s.label_log.len();
            s.head.version = Some(format!("fake-{n}"));
            s.head.last_flips = Some((0, 0));
            s.head.labels_since = 0;
            let msg = format!("head fake-{n} retrained (on demand)");
            vec![
                head_event(&s.head, msg),
                EngineEvent::Redecided(FlipPreview::default()),
            ]
        }
        Command::SetHeadEnabled(on) => {
            let before: Vec<Verdict> = s.visible().iter().map(|r| s.row(r).verdict).collect();
            s.head.enabled = on;
            let mut f = FlipPreview::default();
            let after: Vec<Verdict> = s.visible().iter().map(|r| s.row(r).verdict).collect();
            for (b, a) in before.iter().zip(&after) {
                match (b, a) {
                    (Verdict::Removed, Verdict::Kept) => f.to_kept += 1,
                    (Verdict::Kept, Verdict::Removed) => f.to_removed += 1,
                    _ => {}
                }
            }
            s.head.last_flips = Some((f.to_kept, f.to_removed));
            let msg = format!("head {}", if on { "on" } else { "off" });
            vec![head_event(&s.head, msg), EngineEvent::Redecided(f)]
        }
        // The fake engine has no duplicate groups.
        Command::SplitDuplicate { .. }
        | Command::ChooseRepresentative { .. }
        | Command::SetDedupThreshold(_) => vec![],
        Command::Group { id, reply } => {
            let seq: Option<i64> = id.strip_prefix('#').and_then(|n| n.parse().ok());
            let view = s
                .groups
                .iter()
                .find(|g| seq.is_some_and(|q| g.contains(&q)))
                .map(|g| GroupView {
                    rep_seq: g[0],
                    members: g
                        .iter()
                        .filter_map(|q| s.records.iter().find(|r| r.seq == *q))
                        .map(|r| GroupMember {
                            seq: r.seq,
                            id: r.id.clone(),
                            source: r.source,
                            file: r.file.clone(),
                            verdict: s.row(r).verdict,
                            similarity: (r.seq != g[0]).then_some(0.82),
                            via: if r.seq == g[0] { "alone" } else { "near" }.into(),
                            representative: r.seq == g[0],
                        })
                        .collect(),
                });
            let _ = reply.send(view);
            vec![]
        }
        Command::SetThresholds(t) => {
            let flips = s.flips(&t);
            let before: Vec<RecordRow> = s.visible().iter().map(|r| s.row(r)).collect();
            s.thresholds = t;
            let changed = s.changed_rows(before);
            vec![
                EngineEvent::Redecided(flips),
                EngineEvent::Verdicts(changed),
                EngineEvent::Stats(s.stats()),
            ]
        }
        Command::PreviewThresholds(t, reply) => {
            let _ = reply.send(s.flips(&t));
            vec![]
        }
        Command::Relabel { id, label } => {
            let Some(i) = s.visible().iter().position(|r| r.id == id) else {
                return vec![];
            };
            let old = s.records[i].label;
            s.records[i].label = label;
            s.label_log.push((id, old, label));
            let row = s.row(&s.records[i]);
            vec![
                EngineEvent::Verdicts(vec![row]),
                EngineEvent::Stats(s.stats()),
            ]
        }
        Command::UndoLabel => {
            let Some((id, old, _)) = s.label_log.pop() else {
                return vec![];
            };
            let Some(i) = s.records.iter().position(|r| r.id == id) else {
                return vec![];
            };
            s.records[i].label = old;
            let row = s.row(&s.records[i]);
            vec![
                EngineEvent::Verdicts(vec![row]),
                EngineEvent::Stats(s.stats()),
            ]
        }
        Command::Reverify { .. } => vec![],
        Command::Export { out, .. } => {
            let records = s.stats().kept;
            vec![EngineEvent::Exported { out, records }]
        }
        Command::Query {
            filter,
            sort,
            offset,
            limit,
            reply,
        } => {
            let page = if limit == 0 {
                RecordPage::default()
            } else {
                s.query(&filter, sort, offset, limit)
            };
            let _ = reply.send(page);
            vec![]
        }
        Command::GetRecord { id, reply } => {
            let _ = reply.send(s.detail(&id));
            vec![]
        }
        Command::Agreement { thresholds, reply } => {
            let _ = reply.send(s.agreement(&thresholds));
            vec![]
        }
        // Rules from labels: the real miner over the revealed records' texts and labels; an
        // added rule changes each score by what it adds under the real rule set.
        Command::SuggestRules { reply } => {
            let rules = RuleSet::default_rules();
            let mut corpus = Corpus::new(3);
            for r in s.visible() {
                if let Some(l) = r.label {
                    corpus.add(&r.text, l == Label::Keep, r.score, true);
                }
            }
            let opts = SuggestOptions {
                min_support: 2,
                ..SuggestOptions::default()
            };
            let _ = reply.send(suggestions(&corpus, &rules, &s.thresholds, &opts));
            vec![]
        }
        Command::PreviewRule { rule, reply } => {
            let _ = reply.send(s.rule_scores(&rule).map(|scores| s.score_flips(&scores)));
            vec![]
        }
        Command::AddRule { rule, reply } => {
            let scores = match s.rule_scores(&rule) {
                Ok(x) => x,
                Err(e) => {
                    let _ = reply.send(Err(e));
                    return vec![];
                }
            };
            let flips = s.score_flips(&scores);
            let before: Vec<RecordRow> = s.visible().iter().map(|r| s.row(r)).collect();
            for (i, score) in scores.into_iter().enumerate() {
                s.records[i].score = score;
            }
            let changed = s.changed_rows(before);
            let _ = reply.send(Ok(PathBuf::from("fake.rules.toml")));
            vec![
                EngineEvent::Redecided(flips),
                EngineEvent::Verdicts(changed),
                EngineEvent::Stats(s.stats()),
            ]
        }
    }
}

impl FakeState {
    /// The visible rows that differ from `before` (the rows before a change), as re-decided.
    fn changed_rows(&self, before: Vec<RecordRow>) -> Vec<RecordRow> {
        self.visible()
            .iter()
            .zip(before)
            .filter_map(|(r, b)| {
                let now = self.row(r);
                (now != b).then_some(now)
            })
            .collect()
    }

    /// Whether a command of this name (`AddRule`, `Export`, …) reached the engine.
    pub fn saw(&self, command: &str) -> bool {
        self.commands_seen.iter().any(|c| c == command)
    }

    /// The visible records' scores with `rule` added: each changes by what the rule adds to
    /// the real default rules' score of its text.
    pub fn rule_scores(&self, rule: &str) -> Result<Vec<f32>, String> {
        let base = RuleSet::default_rules();
        let with = with_rule(&base, rule, "fake.rules.toml")?;
        Ok(self
            .visible()
            .iter()
            .map(|r| r.score + with.score(&r.text).score - base.score(&r.text).score)
            .collect())
    }

    /// What giving the visible records these scores would flip (the engine's counting).
    pub fn score_flips(&self, scores: &[f32]) -> FlipPreview {
        let mut f = FlipPreview::default();
        for (r, &score) in self.visible().iter().zip(scores) {
            let old = decide(&self.inputs(r), &self.thresholds);
            let mut i = self.inputs(r);
            i.score = score;
            count_flip(&mut f, &old, &decide(&i, &self.thresholds), &i, false);
        }
        f
    }
}

/// A TUI session on a TestBackend wired to a fake engine.
pub struct Harness {
    pub engine: FakeEngine,
    pub session: Session,
    pub terminal: Terminal<TestBackend>,
    pub now: Duration,
}

impl Harness {
    pub async fn new(records: usize, width: u16, height: u16, theme: Theme) -> Harness {
        let (engine, commands, events) = FakeEngine::spawn(sample_records(records));
        let app = App::new(
            Keymap::default_keymap(),
            theme,
            SessionInfo {
                title: "runs/2024-demo.cfstore".into(),
                resumed: false,
            },
        );
        let mut session = Session::new(app, commands, events);
        session.handle(Msg::Resize { width, height });
        session.start();
        session.settle().await;
        Harness {
            engine,
            session,
            terminal: Terminal::new(TestBackend::new(width, height)).unwrap(),
            now: Duration::ZERO,
        }
    }

    /// Reveals records in steps, advancing the injected clock past the refresh interval.
    pub async fn feed(&mut self, steps: usize, per_step: usize) {
        for _ in 0..steps {
            self.engine.reveal(per_step).await;
            self.session.settle().await;
            self.tick(300).await;
        }
    }

    pub async fn tick(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
        self.session.handle(Msg::Tick(self.now));
        self.session.settle().await;
    }

    pub async fn key(&mut self, code: KeyCode) {
        self.key_mod(code, KeyModifiers::NONE).await;
    }

    pub async fn key_mod(&mut self, code: KeyCode, m: KeyModifiers) {
        self.session.handle(Msg::Key(KeyEvent::new(code, m)));
        self.session.settle().await;
    }

    pub async fn keys(&mut self, s: &str) {
        for c in s.chars() {
            self.key(KeyCode::Char(c)).await;
        }
    }

    pub fn render(&mut self) -> String {
        let app = &self.session.app;
        self.terminal
            .draw(|f| cyberfilter::tui::ui::draw(app, f))
            .unwrap();
        self.terminal.backend().to_string()
    }

    pub fn app(&self) -> &App {
        &self.session.app
    }

    /// Whether the fake engine has received this command (by its variant name).
    pub fn saw(&self, command: &str) -> bool {
        self.engine.state.lock().unwrap().saw(command)
    }
}

pub fn out_dir() -> PathBuf {
    PathBuf::from("export")
}
