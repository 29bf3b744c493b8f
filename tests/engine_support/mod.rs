//! Test doubles and helpers for the engine tests: an in-memory record source and verifiers
//! that record, slow down or fail. Used only by tests.
#![allow(dead_code)]

use cyberfilter::engine::{self, EngineConfig, EngineEvent, EngineHandle, RecordSource};
use cyberfilter::engine::{Command, RecordDetail, RecordFilter, RecordPage, SortBy};
use cyberfilter::ingest::{FileSummary, IngestError};
use cyberfilter::rules::{RuleSet, Thresholds};
use cyberfilter::verify::{Verifier, VerifyError};
use cyberfilter::{Locator, Record, RecordFlags, SourceKind};
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sentences with different amounts of security evidence, so records land in every tier.
const PARTS: &[&str] = &[
    "A heap-based buffer overflow in the parser allows remote attackers to execute arbitrary code",
    "via a crafted packet, as exploited in the wild (CVE-2021-44228, CWE-787).",
    "Cross-site scripting lets an attacker inject script into the admin page.",
    "SQL injection in the login form exposes the user table.",
    "Adversaries may use phishing to gain initial access (T1566).",
    "The bake sale moves to Friday and the choir meets at noon.",
    "Update the translation files and fix a typo in the manual page.",
    "Denial of service through memory exhaustion when parsing large inputs.",
    "privilege escalation",
    "Improve documentation of the build system for new contributors.",
];

/// A deterministic text for record `i` of file `f`; `unique` makes every text distinct.
pub fn text_for(f: usize, i: usize, unique: bool) -> String {
    let mut s = String::new();
    let n = 1 + (i * 7 + f * 3) % 3;
    for k in 0..n {
        s.push_str(PARTS[(i * 31 + k * 17 + f) % PARTS.len()]);
        s.push(' ');
    }
    if unique {
        s.push_str(&format!("(entry {f}-{i})"));
    }
    s
}

/// Records held in memory, one list of texts per pseudo file.
pub struct MemorySource {
    pub files: Vec<(PathBuf, Vec<String>)>,
    /// Sleep per record, to make ingest slow enough to observe.
    pub delay: Duration,
}

impl MemorySource {
    pub fn new(n_files: usize, per_file: usize, unique: bool) -> MemorySource {
        MemorySource {
            files: (0..n_files)
                .map(|f| {
                    (
                        PathBuf::from(format!("/memory/file{f}.jsonl")),
                        (0..per_file).map(|i| text_for(f, i, unique)).collect(),
                    )
                })
                .collect(),
            delay: Duration::ZERO,
        }
    }

    pub fn total(&self) -> usize {
        self.files.iter().map(|f| f.1.len()).sum()
    }

    /// Every text, file after file.
    pub fn texts(&self) -> Vec<String> {
        self.files.iter().flat_map(|f| f.1.clone()).collect()
    }
}

impl RecordSource for MemorySource {
    fn files(&self, _inputs: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
        Ok(self.files.iter().map(|f| f.0.clone()).collect())
    }
    fn read(
        &self,
        path: &Path,
        emit: &mut dyn FnMut(Result<Record, IngestError>) -> ControlFlow<()>,
    ) -> FileSummary {
        let (p, texts) = self.files.iter().find(|f| f.0 == path).expect("known file");
        let file = Arc::new(p.clone());
        let mut summary = FileSummary {
            format: Some(SourceKind::Json),
            ..Default::default()
        };
        for (i, t) in texts.iter().enumerate() {
            if !self.delay.is_zero() {
                std::thread::sleep(self.delay);
            }
            let r = Record {
                id: format!("{}#{i}", p.display()),
                source: SourceKind::Json,
                kind: "entry".into(),
                locator: Locator {
                    file: file.clone(),
                    index: i as u64,
                    offset: i as u64 * 100,
                    len: 100,
                    outer_offset: None,
                },
                text: t.clone(),
                flags: RecordFlags::default(),
                scored: true,
                label: None,
            };
            summary.records += 1;
            summary.bytes += 100;
            if emit(Ok(r)).is_break() {
                break;
            }
        }
        summary
    }
}

/// What a verifier double saw.
#[derive(Default)]
pub struct Seen {
    pub texts: Vec<String>,
    pub batches: Vec<usize>,
}

/// P(yes) from the text (like the stand-in), recording every text it is asked about;
/// optionally slow, and failing every `fail_every`-th batch.
pub struct RecordingVerifier {
    pub seen: Arc<Mutex<Seen>>,
    pub delay: Duration,
    pub fail_every: Option<usize>,
    pub batch: usize,
    calls: usize,
}

impl RecordingVerifier {
    pub fn factory(
        seen: Arc<Mutex<Seen>>,
        delay: Duration,
        fail_every: Option<usize>,
        batch: usize,
    ) -> cyberfilter::verify::VerifierFactory {
        Box::new(move || {
            Ok(Box::new(RecordingVerifier {
                seen,
                delay,
                fail_every,
                batch,
                calls: 0,
            }) as Box<dyn Verifier>)
        })
    }
}

impl Verifier for RecordingVerifier {
    fn model_id(&self) -> String {
        "recording".into()
    }
    fn prompt_version(&self) -> String {
        "t1".into()
    }
    fn preferred_batch(&self) -> usize {
        self.batch
    }
    fn verify_batch(&mut self, texts: &[&str]) -> Result<Vec<f32>, VerifyError> {
        self.calls += 1;
        std::thread::sleep(self.delay);
        if self.fail_every.is_some_and(|n| self.calls % n == 0) {
            return Err(VerifyError::Failed(format!(
                "injected failure {}",
                self.calls
            )));
        }
        let mut s = self.seen.lock().unwrap();
        s.batches.push(texts.len());
        s.texts.extend(texts.iter().map(|t| t.to_string()));
        Ok(texts
            .iter()
            .map(|t| engine::verifier::hash_p_yes(t))
            .collect())
    }
}

/// Thresholds that put a good share of `texts` in each tier under `rules`.
pub fn spread_thresholds(rules: &RuleSet, texts: &[String]) -> Thresholds {
    let mut scores: Vec<f32> = texts.iter().map(|t| rules.score(t).score).collect();
    scores.sort_by(|a, b| a.total_cmp(b));
    scores.dedup();
    assert!(
        scores.len() >= 3,
        "test texts need at least three distinct scores"
    );
    let low = scores[scores.len() / 3];
    let high = scores[2 * scores.len() / 3];
    Thresholds {
        low,
        high,
        min_text_len: 5,
        p_yes_cut: 0.5,
    }
}

/// [`spread_thresholds`] of `src`'s texts under the default rules.
pub fn spread(src: &MemorySource) -> Thresholds {
    spread_thresholds(&RuleSet::default_rules(), &src.texts())
}

/// [`config`] with the [`spread`] thresholds of `src`, and those thresholds.
pub fn spread_config(store: &Path, src: MemorySource) -> (EngineConfig, Thresholds) {
    let t = spread(&src);
    let mut c = config(store, src);
    c.thresholds = Some(t);
    (c, t)
}

/// Gives `c` a [`RecordingVerifier`] answering at once, never failing, in batches of `batch`;
/// returns what it will see.
pub fn recording(c: &mut EngineConfig, batch: usize) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    c.verifier = Some(RecordingVerifier::factory(
        seen.clone(),
        Duration::ZERO,
        None,
        batch,
    ));
    seen
}

pub fn config(store: &Path, source: MemorySource) -> EngineConfig {
    let mut c = EngineConfig::new(
        store.to_path_buf(),
        vec![PathBuf::from("/memory")],
        RuleSet::default_rules(),
    );
    c.source = Arc::new(source);
    c.batch_wait = Duration::from_millis(20);
    c.stats_interval = Duration::from_millis(50);
    // The synthetic texts are built from a handful of phrases, so nearly all of them are
    // near-duplicates of each other; the tests built on this source are about the pipeline
    // record by record. Grouping has its own tests (tests/dedup_engine.rs).
    c.dedup = None;
    c
}

/// Collect events until `stop(event)` says so or the timeout passes; returns all of them.
pub fn events_until(
    h: &mut EngineHandle,
    timeout: Duration,
    mut stop: impl FnMut(&EngineEvent) -> bool,
) -> Vec<EngineEvent> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        match h.events.try_recv() {
            Ok(e) => {
                let done = stop(&e);
                out.push(e);
                if done {
                    return out;
                }
            }
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(_) => return out,
        }
    }
    panic!("timed out waiting for an engine event");
}

/// Send the command `make` builds around a reply channel and wait for the engine's answer.
pub fn ask<T>(
    h: &EngineHandle,
    make: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> Command,
) -> T {
    let (tx, rx) = tokio::sync::oneshot::channel();
    h.commands.blocking_send(make(tx)).unwrap();
    rx.blocking_recv().unwrap()
}

/// The engine's page of records for `filter` in `sort` order, `limit` from the first.
pub fn query(h: &EngineHandle, filter: RecordFilter, sort: SortBy, limit: u64) -> RecordPage {
    ask(h, |reply| Command::Query {
        filter,
        sort,
        offset: 0,
        limit,
        reply,
    })
}

/// The engine's view of record `id`.
pub fn get_record(h: &EngineHandle, id: &str) -> Option<RecordDetail> {
    let id = id.to_string();
    ask(h, |reply| Command::GetRecord { id, reply })
}

/// The engine's duplicate group of record `id`.
pub fn group_view(h: &EngineHandle, id: &str) -> Option<cyberfilter::engine::GroupView> {
    let id = id.to_string();
    ask(h, |reply| Command::Group { id, reply })
}

/// Run to the end (headless mode) and return the final stats.
pub fn run_to_end(c: EngineConfig) -> engine::StatsSnapshot {
    let mut h = engine::start(c).expect("engine starts");
    events_until(&mut h, Duration::from_secs(60), |e| {
        matches!(e, EngineEvent::Finished(_))
    });
    h.join.join().expect("engine thread").expect("engine ok")
}

/// Text per (file, index) from the source, for brute-force checks.
pub fn texts_by_key(src: &MemorySource) -> HashMap<(String, u64), String> {
    let mut m = HashMap::new();
    for (p, texts) in &src.files {
        for (i, t) in texts.iter().enumerate() {
            m.insert((p.display().to_string(), i as u64), t.clone());
        }
    }
    m
}
