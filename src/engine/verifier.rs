//! The verifier thread: owns the backend (created there, MLX is not thread-safe), answers one
//! batch at a time, and never asks the model twice about the same text: answers are cached by
//! (content hash, model, prompt version), loaded from the store and kept for the run.

use crate::store::cache::SharedCache;
use crate::store::RunStore;
use crate::verify::head::FeatureSpec;
use crate::verify::{Verifier, VerifierFactory, VerifyError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One record to verify. Without `text`, the thread reads it from the store.
#[derive(Debug, Clone)]
pub struct Item {
    pub seq: i64,
    pub text: Option<(Arc<str>, [u8; 32])>,
    /// Re-verify: ignore cached answers.
    pub force: bool,
    /// The verdict head's own work (a seed text, a weak label): not counted as records'
    /// answers, cache hits or LLM calls.
    pub idle: bool,
}

impl crate::verify::batcher::Queued for Item {
    fn text_bytes(&self) -> usize {
        self.text.as_ref().map_or(0, |(t, _)| t.len())
    }
}

pub struct Job {
    pub items: Vec<Item>,
    pub batch_size: usize,
}

#[derive(Debug, Default)]
pub struct BatchResult {
    /// (seq, P(yes)).
    pub answers: Vec<(i64, f32)>,
    pub cache_hits: u64,
    /// Rows not committed yet: queue them again.
    pub missing: Vec<Item>,
    /// Seqs of a failed batch: they stay pending.
    pub failed: Vec<i64>,
    pub error: Option<String>,
    /// Distinct texts sent to the model, and the batch size aimed at.
    pub model_batch: usize,
    pub batch_size: usize,
    pub latency: Duration,
    /// Pooled features of answered texts, per seq (verdict head; empty without features).
    pub features: Vec<(i64, Arc<[f32]>)>,
    /// Idle (head) texts answered from the caches / asked to the model.
    pub idle_hits: u64,
    pub idle_asked: usize,
}

#[derive(Debug, Clone)]
pub struct VerifierInfo {
    pub model: String,
    pub prompt_version: String,
    pub preferred_batch: usize,
    /// The features the backend pools with every answer (verdict head), when asked for.
    pub features: Option<FeatureSpec>,
    /// Why there are no features, when the backend says (the head's off line).
    pub features_off: Option<String>,
}

pub struct VerifierThread {
    pub jobs: SyncSender<Job>,
    pub info: VerifierInfo,
    pub join: JoinHandle<()>,
}

/// Start the thread; fails when the backend cannot be created (unreachable, no model).
pub fn spawn(
    factory: VerifierFactory,
    store: PathBuf,
    shared_cache: Option<PathBuf>,
    feature_layer: Option<usize>,
    report: Box<dyn Fn(BatchResult) -> bool + Send>,
) -> Result<VerifierThread, VerifyError> {
    let (ready_tx, ready_rx) = sync_channel::<Result<VerifierInfo, VerifyError>>(1);
    let (jobs_tx, jobs_rx) = sync_channel::<Job>(1);
    let join = std::thread::Builder::new()
        .name("cyberfilter-verifier".into())
        .spawn(move || {
            let mut v = match factory() {
                Ok(v) => v,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let (features, features_off) = if v.set_feature_layer(feature_layer) {
                (v.feature_spec(), None)
            } else {
                (None, v.features_unavailable())
            };
            let info = VerifierInfo {
                model: v.model_id(),
                prompt_version: v.prompt_version(),
                preferred_batch: v.preferred_batch().max(1),
                features,
                features_off,
            };
            let store = match RunStore::open_read(&store) {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready_tx.send(Err(VerifyError::Unavailable(e.to_string())));
                    return;
                }
            };
            // A shared cache that cannot be opened only costs repeated questions.
            let shared = shared_cache.and_then(|p| SharedCache::open(&p).ok());
            let caches = Caches {
                store,
                shared,
                recent: HashMap::new(),
                model: info.model.clone(),
                prompt: info.prompt_version.clone(),
                features: info.features.as_ref().map(FeatureSpec::key),
            };
            let _ = ready_tx.send(Ok(info));
            serve(v.as_mut(), caches, jobs_rx, report);
        })
        .map_err(|e| VerifyError::Unavailable(format!("cannot start verifier thread: {e}")))?;
    let info = ready_rx
        .recv()
        .map_err(|_| VerifyError::Unavailable("verifier thread ended during start".into()))??;
    Ok(VerifierThread {
        jobs: jobs_tx,
        info,
        join,
    })
}

/// Answers already known: this run's (bounded), this store's, and the data dir's.
struct Caches {
    store: RunStore,
    shared: Option<SharedCache>,
    recent: HashMap<[u8; 32], f32>,
    model: String,
    prompt: String,
    /// Key of the features asked for: an answer counts as known only with its features.
    features: Option<String>,
}

/// This run's answers kept in memory at most (the store has them all).
const RECENT_MAX: usize = 100_000;

impl Caches {
    /// A known answer, with its stored features when the head wants them (`None` when the
    /// features are missing: the model is asked again).
    fn get_with_features(&self, hash: &[u8; 32]) -> Option<(f32, Option<Arc<[f32]>>)> {
        let p = self.get(hash)?;
        match &self.features {
            None => Some((p, None)),
            Some(spec) => {
                let in_store = crate::store::features::get_features(
                    self.store.conn(),
                    self.store.path(),
                    spec,
                    hash,
                )
                .ok()
                .flatten()
                .map(|f| f.vec);
                let f = in_store.or_else(|| {
                    self.shared
                        .as_ref()
                        .and_then(|s| s.get_features(hash, spec).ok().flatten())
                })?;
                Some((p, Some(Arc::from(f))))
            }
        }
    }

    fn put_features(&mut self, items: &[crate::store::features::StoredFeatures]) {
        if let (Some(s), Some(spec)) = (self.shared.as_mut(), &self.features) {
            let _ = s.put_features(spec, items);
        }
    }

    fn get(&self, hash: &[u8; 32]) -> Option<f32> {
        if let Some(p) = self.recent.get(hash) {
            return Some(*p);
        }
        if let Ok(Some(p)) = self.store.cached_answer(hash, &self.model, &self.prompt) {
            return Some(p);
        }
        self.shared
            .as_ref()
            .and_then(|s| s.get(hash, &self.model, &self.prompt).ok().flatten())
    }

    fn put(&mut self, answers: &[([u8; 32], f32)]) {
        if self.recent.len() + answers.len() > RECENT_MAX {
            self.recent.clear();
        }
        self.recent.extend(answers.iter().copied());
        if let Some(s) = self.shared.as_mut() {
            let _ = s.put_all(answers, &self.model, &self.prompt);
        }
    }
}

fn serve(
    v: &mut dyn Verifier,
    mut caches: Caches,
    jobs: Receiver<Job>,
    report: Box<dyn Fn(BatchResult) -> bool + Send>,
) {
    while let Ok(job) = jobs.recv() {
        let started = Instant::now();
        let mut r = BatchResult {
            batch_size: job.batch_size,
            ..Default::default()
        };
        // Distinct texts to ask about, and the seqs waiting on each.
        let mut asked: Vec<(Arc<str>, [u8; 32])> = Vec::new();
        let mut waiting: HashMap<[u8; 32], (usize, Vec<i64>)> = HashMap::new();
        let mut idle_texts = std::collections::HashSet::new();
        for item in job.items {
            let (text, hash) = match &item.text {
                Some((t, h)) => (t.clone(), *h),
                None => match caches.store.text_for(item.seq) {
                    Ok(Some((t, h))) => (Arc::from(t), h),
                    Ok(None) => {
                        r.missing.push(item);
                        continue;
                    }
                    Err(e) => {
                        r.failed.push(item.seq);
                        r.error = Some(e.to_string());
                        continue;
                    }
                },
            };
            if !item.force {
                if let Some((p, f)) = caches.get_with_features(&hash) {
                    r.answers.push((item.seq, p));
                    if let Some(f) = f {
                        r.features.push((item.seq, f));
                    }
                    if item.idle {
                        r.idle_hits += 1;
                    } else {
                        r.cache_hits += 1;
                    }
                    continue;
                }
            }
            if item.idle {
                idle_texts.insert(hash);
            }
            match waiting.get_mut(&hash) {
                Some((_, seqs)) => seqs.push(item.seq),
                None => {
                    waiting.insert(hash, (asked.len(), vec![item.seq]));
                    asked.push((text, hash));
                }
            }
        }
        r.idle_asked = asked.iter().filter(|(_, h)| idle_texts.contains(h)).count();
        r.model_batch = asked.len() - r.idle_asked;
        if !asked.is_empty() {
            let texts: Vec<&str> = asked.iter().map(|(t, _)| t.as_ref()).collect();
            BUSY.fetch_add(1, Ordering::SeqCst);
            let outcome = if caches.features.is_some() {
                v.verify_batch_features(&texts).map(|rows| {
                    let (ps, fs): (Vec<f32>, Vec<Vec<f32>>) = rows.into_iter().unzip();
                    (ps, Some(fs))
                })
            } else {
                v.verify_batch(&texts).map(|ps| (ps, None))
            };
            BUSY.fetch_sub(1, Ordering::SeqCst);
            match outcome {
                Ok((ps, fs)) if ps.len() == asked.len() => {
                    if let Some(fs) = fs {
                        let mut shared = Vec::new();
                        for (i, (_, hash)) in asked.iter().enumerate() {
                            if !ps[i].is_finite() || fs[i].is_empty() {
                                continue;
                            }
                            shared.push(crate::store::features::StoredFeatures {
                                content_hash: *hash,
                                p_yes: Some(ps[i]),
                                vec: fs[i].clone(),
                            });
                            let f: Arc<[f32]> = Arc::from(fs[i].as_slice());
                            for seq in &waiting[hash].1 {
                                r.features.push((*seq, f.clone()));
                            }
                        }
                        caches.put_features(&shared);
                    }
                    let mut fresh = Vec::with_capacity(asked.len());
                    let mut failed_texts = 0;
                    for (i, (_, hash)) in asked.iter().enumerate() {
                        let seqs = &waiting[hash].1;
                        // A non-finite answer is this text's failure: its records stay
                        // pending (and nothing is cached), the rest of the batch is kept.
                        if !ps[i].is_finite() {
                            failed_texts += 1;
                            r.failed.extend(seqs.iter().copied());
                            continue;
                        }
                        let p = ps[i].clamp(0.0, 1.0);
                        fresh.push((*hash, p));
                        r.answers.extend(seqs.iter().map(|seq| (*seq, p)));
                    }
                    caches.put(&fresh);
                    if failed_texts > 0 {
                        let why = v
                            .failure_reason()
                            .unwrap_or_else(|| "no answer (non-finite P(yes))".into());
                        r.error = Some(format!(
                            "{failed_texts} of {} texts failed: {why}",
                            asked.len()
                        ));
                    }
                }
                Ok((ps, _)) => {
                    r.error = Some(format!(
                        "verifier returned {} answers for {} texts",
                        ps.len(),
                        asked.len()
                    ));
                    r.failed
                        .extend(waiting.values().flat_map(|(_, s)| s.iter().copied()));
                }
                Err(e) => {
                    r.error = Some(e.to_string());
                    r.failed
                        .extend(waiting.values().flat_map(|(_, s)| s.iter().copied()));
                }
            }
        }
        r.latency = started.elapsed();
        if !report(r) {
            break;
        }
    }
}

/// Backends in the middle of a batch, process-wide.
static BUSY: AtomicUsize = AtomicUsize::new(0);

/// True while some verifier thread is inside a batch. A stopped engine does not wait for a
/// batch past its grace time; the binaries then leave with [`exit_process`], since running
/// the process's exit handlers (MLX's C++ static destructors) under a forward pass crashes.
pub fn busy() -> bool {
    BUSY.load(Ordering::SeqCst) > 0
}

/// Ends the process with `code`. With a batch still in flight the exit handlers are skipped
/// (`_exit`): the store is already committed, and nothing else needs them.
pub fn exit_process(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    if busy() {
        // SAFETY: _exit only ends the process; the store's transactions are committed.
        unsafe { libc::_exit(code) }
    }
    std::process::exit(code)
}

// The test stand-in lives with the other backends; re-exported for the tests that use it.
pub use crate::verify::test_hash::{hash_p_yes, HashVerifier};
