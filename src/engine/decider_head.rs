//! The decider's verdict-head operations (a child module, so it shares the decider's state):
//! P(head) on every answer with features, idle-time featurization of seeds and weak labels,
//! retraining and re-deciding the verify band from stored features.

use super::super::head::{self as eh, HeadMode};
use super::super::types::{EngineEvent, FlipPreview, HeadEvent, HeadStatus};
use super::super::verifier::{BatchResult, Item, Job};
use super::super::writer::WriterMsg;
use super::Decider;
use crate::store::features::Flips;
use crate::verify::head::LabelSource;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Decider {
    fn head_event(&self, message: String, flips: Flips) -> HeadEvent {
        let h = self.head.active.as_ref().filter(|_| self.head.enabled);
        HeadEvent {
            message,
            version: h.map(|h| h.version.clone()),
            examples: h.map_or(0, |h| h.metrics.examples),
            cv_auc: h.and_then(|h| h.metrics.cv_auc),
            to_kept: flips.to_kept,
            to_removed: flips.to_removed,
        }
    }

    /// The head panel's view of the head.
    pub(super) fn head_status(&self) -> HeadStatus {
        let h = &self.head;
        let active = h.active.as_ref();
        HeadStatus {
            off_reason: h.off_reason.clone(),
            enabled: h.enabled && active.is_some(),
            version: active.map(|a| a.version.clone()),
            shipped_default: active.is_some()
                && h.prior.as_ref().map(|p| &p.version) == active.map(|a| &a.version),
            metrics: active.map(|a| a.metrics.clone()),
            features: h.spec.as_ref().map(|s| s.key()),
            records_with_features: h.feats.len(),
            idle_left: h.seeds_left.len() + h.weak_todo.len() + h.weak_in_flight.len(),
            labels_since: h.labels_since,
            retrain_every: h.opts.retrain_every,
            last_flips: h.last_flips.map(|f| (f.to_kept, f.to_removed)),
            cut: self.t.p_yes_cut,
        }
    }

    pub(super) fn head_note(&mut self, message: String) {
        tracing::info!("{message}");
        let ev = self.head_event(message, Flips::default());
        self.emit(EngineEvent::Head(ev));
    }

    /// True while seeds or weak labels are still being featurized.
    pub(super) fn head_busy(&self) -> bool {
        self.head.idle_pending()
    }

    /// At start: P(head) of every stored record with features and an answer, under the head
    /// in force (the store's, else the shipped default), and the decisions that follow.
    pub(super) fn head_start(&mut self) {
        if !self.head.on() {
            return;
        }
        let msg = match &self.head.active {
            Some(h) => format!(
                "head {} on layer {} ({} examples, CV AUC {}){}",
                h.version,
                h.spec.layer,
                h.metrics.examples,
                h.metrics.cv_auc.map_or("-".into(), |a| format!("{a:.3}")),
                if self.head.prior.as_ref().map(|p| &p.version) == Some(&h.version) {
                    ", the shipped default"
                } else {
                    ""
                }
            ),
            None => "head: none yet; it trains when labels arrive".into(),
        };
        self.head_note(msg);
        let (flips, _) = self.head_rescore();
        if flips.to_kept + flips.to_removed > 0 {
            self.emit(EngineEvent::Redecided(flips));
        }
    }

    /// P(head) for every record with features and an answer, then re-decide; returns flips.
    fn head_rescore(&mut self) -> (FlipPreview, usize) {
        let head = self.head.active.as_ref().filter(|_| self.head.enabled);
        let values = eh::rescore_index(&mut self.index, &self.head.feats, head);
        let n = values.len();
        let version = self
            .head
            .active
            .as_ref()
            .filter(|_| self.head.enabled)
            .map(|h| h.version.clone());
        for chunk in values.chunks(10_000) {
            self.write(WriterMsg::PHead {
                version: version.clone(),
                values: chunk.to_vec(),
            });
        }
        let r = self.index.redecide(&self.t);
        for chunk in r.changed.chunks(10_000) {
            self.write(WriterMsg::Decisions(chunk.to_vec()));
        }
        if let Ok(rows) = self.rows_for(
            &r.changed
                .iter()
                .take(super::VERDICT_ROWS_PER_TICK)
                .filter_map(|(s, _)| self.index.pos(*s))
                .collect::<Vec<_>>(),
        ) {
            if !rows.is_empty() {
                self.emit(EngineEvent::Verdicts(rows));
            }
        }
        for seq in r.newly_needing {
            if let Some(pos) = self.index.pos(seq) {
                self.enqueue(pos, seq, None, false);
            }
        }
        (r.flips, n)
    }

    /// P(head) of one answered record; its features are kept and written.
    pub(super) fn head_on_answer(
        &mut self,
        seq: i64,
        p_yes: f32,
        feats: Option<&Arc<[f32]>>,
    ) -> Option<f32> {
        let f = feats?;
        if !self.head.on() {
            return None;
        }
        let packed = eh::pack(f);
        let score = self
            .index
            .pos(seq)
            .and_then(|pos| eh::score_input(&self.index.inputs_at(pos)));
        let p = self
            .head
            .predict(&packed, crate::verify::head::Extra::new(Some(p_yes), score));
        self.head.feats.insert(seq, packed);
        self.head_pending.0.push((seq, Some(p_yes), f.to_vec()));
        self.head_pending.1.push((seq, p));
        p
    }

    pub(super) fn head_flush_answers(&mut self) {
        let Some(spec) = self.head.spec.as_ref().map(|s| s.key()) else {
            return;
        };
        let (rows, values) = std::mem::take(&mut self.head_pending);
        if !rows.is_empty() {
            self.write(WriterMsg::HeadFeatures { spec, rows });
        }
        if !values.is_empty() {
            let version = self
                .head
                .active
                .as_ref()
                .filter(|_| self.head.enabled)
                .map(|h| h.version.clone());
            self.write(WriterMsg::PHead { version, values });
        }
    }

    /// Takes the seed and weak-label answers out of a verifier result (they are the head's
    /// examples, not records' answers).
    pub(super) fn head_take_idle(&mut self, r: &mut BatchResult, feats: &HashMap<i64, Arc<[f32]>>) {
        if !self.head.on()
            || (self.head.weak_in_flight.is_empty() && !r.answers.iter().any(|a| a.0 < 0))
        {
            return;
        }
        let spec = self.head.spec.as_ref().map(|s| s.key()).unwrap_or_default();
        let mut seeds_rows = Vec::new();
        let mut seed_labels = Vec::new();
        let mut weak_rows = Vec::new();
        let mut weak_labels = Vec::new();
        let mut rest = Vec::with_capacity(r.answers.len());
        for (seq, p) in r.answers.drain(..) {
            if seq < 0 {
                let i = (-seq - 1) as usize;
                let Some((text, positive, group)) = self.head.opts.seed.get(i).cloned() else {
                    continue;
                };
                if let Some(f) = feats.get(&seq) {
                    let hash = *blake3::hash(text.as_bytes()).as_bytes();
                    seeds_rows.push(eh::stored(hash, Some(p), f));
                    seed_labels.push(eh::label_row(
                        hash,
                        LabelSource::Seed,
                        positive,
                        &group,
                        Some(text),
                    ));
                    self.head.extra.push((
                        eh::hex(&hash),
                        LabelSource::Seed,
                        positive,
                        group,
                        eh::pack(f),
                        Some(p),
                    ));
                }
            } else if let Some(positive) = self.head.weak_in_flight.remove(&seq) {
                if let Some(f) = feats.get(&seq) {
                    let group = self
                        .index
                        .pos(seq)
                        .map(|pos| self.index.source_at(pos).as_str().to_string())
                        .unwrap_or_default();
                    weak_rows.push((seq, Some(p), f.to_vec()));
                    weak_labels.push((seq, positive, group.clone()));
                    self.head.extra.push((
                        format!("seq:{seq}"),
                        LabelSource::Weak,
                        positive,
                        group,
                        eh::pack(f),
                        Some(p),
                    ));
                }
            } else {
                rest.push((seq, p));
            }
        }
        r.answers = rest;
        let mut missing = Vec::new();
        for item in r.missing.drain(..) {
            match self.head.weak_in_flight.remove(&item.seq) {
                Some(positive) => self.head.weak_todo.push((item.seq, positive)),
                None => missing.push(item),
            }
        }
        r.missing = missing;
        r.failed
            .retain(|seq| *seq >= 0 && self.head.weak_in_flight.remove(seq).is_none());
        if !seeds_rows.is_empty() {
            self.write(WriterMsg::HeadSeeds {
                spec: spec.clone(),
                rows: seeds_rows,
                labels: seed_labels,
            });
        }
        if !weak_rows.is_empty() {
            self.write(WriterMsg::HeadFeatures {
                spec,
                rows: weak_rows,
            });
            self.write(WriterMsg::HeadWeak(weak_labels));
        }
        if self.head.idle_sent && !self.head.idle_pending() {
            self.head.idle_sent = false;
            self.head_retrain("seed and weak labels featurized");
        }
    }

    /// A curator label on a record with features counts towards the next retrain.
    pub(super) fn head_on_label(&mut self, seq: i64) {
        if !self.head.on() || !self.head.feats.contains_key(&seq) {
            return;
        }
        self.head.labels_since += 1;
        if self.head.labels_since >= self.head.opts.retrain_every.max(1) {
            let n = self.head.labels_since;
            self.head_retrain(&format!("{n} new curator labels"));
        }
    }

    /// Trains a head on every example there is and re-decides from stored features.
    pub(super) fn head_retrain(&mut self, reason: &str) {
        if !self.head.on() {
            let why = self.head.off_reason.clone().unwrap_or_default();
            self.head_note(format!("head off ({why}): nothing to retrain"));
            return;
        }
        let mut labelled = Vec::new();
        for &seq in self.head.feats.keys() {
            if let Some(pos) = self.index.pos(seq) {
                let i = self.index.inputs_at(pos);
                if let Some(l) = i.label {
                    labelled.push((seq, l, i.p_yes, eh::score_input(&i)));
                }
            }
        }
        labelled.sort_by_key(|x| x.0);
        let examples = self.head.examples(&labelled);
        let started = std::time::Instant::now();
        match self.head.train(&examples) {
            Ok(h) => {
                self.head.active = Some(h.clone());
                self.head.enabled = true;
                self.head.labels_since = 0;
                let (flips, rescored) = self.head_rescore();
                let f = Flips {
                    to_kept: flips.to_kept,
                    to_removed: flips.to_removed,
                };
                self.head.last_flips = Some(f);
                self.write(WriterMsg::HeadTrained {
                    head: Box::new(h.clone()),
                    flips: f,
                    reason: reason.into(),
                });
                let curator = labelled.len();
                let msg = format!(
                    "head {} retrained ({reason}): {} examples ({curator} curator), CV AUC {}, {} ms; {rescored} records rescored, +{} kept, -{} removed",
                    h.version,
                    h.metrics.examples,
                    h.metrics.cv_auc.map_or("-".into(), |a| format!("{a:.3}")),
                    started.elapsed().as_millis(),
                    f.to_kept,
                    f.to_removed
                );
                tracing::info!("{msg}");
                let ev = self.head_event(msg, f);
                self.emit(EngineEvent::Head(ev));
                self.emit(EngineEvent::Redecided(flips));
            }
            Err(e) => {
                // Nothing is lost: the head in force stays. Only a retrain asked for is an
                // error; an automatic one with too few examples is a note.
                let msg = format!("head retrain ({reason}) not done, the head in force stays: {e}");
                if reason == "on demand" {
                    self.error("head", msg);
                } else {
                    self.head_note(msg);
                }
            }
        }
    }

    pub(super) fn head_set_enabled(&mut self, on: bool) {
        if !self.head.on() || self.head.active.is_none() {
            self.head_note("head: no head to switch".into());
            return;
        }
        self.head.enabled = on;
        self.write(WriterMsg::HeadActive(
            self.head
                .active
                .as_ref()
                .filter(|_| on)
                .map(|h| h.version.clone()),
        ));
        let (flips, _) = self.head_rescore();
        self.head.last_flips = Some(Flips {
            to_kept: flips.to_kept,
            to_removed: flips.to_removed,
        });
        let msg = format!(
            "head {}: +{} kept, -{} removed",
            if on { "on" } else { "off (P(yes) decides)" },
            flips.to_kept,
            flips.to_removed
        );
        let ev = self.head_event(
            msg,
            Flips {
                to_kept: flips.to_kept,
                to_removed: flips.to_removed,
            },
        );
        self.emit(EngineEvent::Head(ev));
        self.emit(EngineEvent::Redecided(flips));
    }

    /// Weak labels from the rules' confident tiers: up to `weak_per_class` a class, spread
    /// across source kinds (and files, by taking evenly spaced records of each kind).
    fn head_pick_weak(&mut self) {
        self.head.weak_picked = true;
        let quota = self.head.opts.weak_per_class;
        if quota == 0 {
            return;
        }
        let mut pools: [HashMap<String, Vec<i64>>; 2] = Default::default();
        for pos in 0..self.index.len() {
            let seq = self.index.seq_at(pos);
            if self.head.feats.contains_key(&seq) {
                continue;
            }
            let i = self.index.inputs_at(pos);
            let tier = self.index.decision_at(pos).tier;
            if let Some(positive) = eh::weak_label(&i, tier, &self.t) {
                let kind = self.index.source_at(pos).as_str().to_string();
                pools[usize::from(!positive)]
                    .entry(kind)
                    .or_default()
                    .push(seq);
            }
        }
        for (class, pool) in pools.iter().enumerate() {
            let mut kinds: Vec<(&String, &Vec<i64>)> = pool.iter().collect();
            kinds.sort();
            let total: usize = kinds.iter().map(|k| k.1.len()).sum();
            if total == 0 {
                continue;
            }
            // Even share per kind, the rest to kinds with more records.
            let mut left = quota.min(total);
            let mut share: Vec<usize> = vec![0; kinds.len()];
            while left > 0 {
                let mut gave = false;
                for (k, (_, seqs)) in kinds.iter().enumerate() {
                    if left > 0 && share[k] < seqs.len() {
                        share[k] += 1;
                        left -= 1;
                        gave = true;
                    }
                }
                if !gave {
                    break;
                }
            }
            for (k, (_, seqs)) in kinds.iter().enumerate() {
                let n = share[k];
                for j in 0..n {
                    let seq = seqs[j * seqs.len() / n];
                    self.head.weak_todo.push((seq, class == 0));
                }
            }
        }
    }

    /// While the verifier has nothing else to do: featurize seeds, then weak labels.
    pub(super) fn head_idle_work(&mut self) {
        if !self.head.on() || self.head.opts.mode == HeadMode::Off || self.verifier.is_none() {
            return;
        }
        if self.flags.paused.load(Ordering::Relaxed) || self.stopping.is_some() {
            return;
        }
        if self.head.seeds_left.is_empty() && self.readers_left == 0 && !self.head.weak_picked {
            self.head_pick_weak();
        }
        let n = self.batcher.size;
        let mut items = Vec::new();
        let mut weak = Vec::new();
        let mut seeds = Vec::new();
        if !self.head.seeds_left.is_empty() {
            let take = n.min(self.head.seeds_left.len());
            seeds = self.head.seeds_left.drain(..take).collect();
            for &i in &seeds {
                let text = &self.head.opts.seed[i].0;
                let hash = *blake3::hash(text.as_bytes()).as_bytes();
                items.push(Item {
                    seq: -(i as i64) - 1,
                    text: Some((Arc::from(text.as_str()), hash)),
                    force: false,
                    idle: true,
                });
            }
        } else if self.readers_left == 0 {
            let take = n.min(self.head.weak_todo.len());
            for (seq, positive) in self.head.weak_todo.drain(..take) {
                weak.push((seq, positive));
                items.push(Item {
                    seq,
                    text: None,
                    force: false,
                    idle: true,
                });
            }
        }
        if items.is_empty() {
            return;
        }
        let Some(v) = &self.verifier else { return };
        match v.jobs.try_send(Job {
            items,
            batch_size: self.batcher.size,
        }) {
            Ok(()) => {
                // A batch out, but none of the records' items: they are the head's.
                self.batcher.sent(0);
                self.head.idle_sent = true;
                self.head.weak_in_flight.extend(weak);
            }
            Err(_) => {
                // Busy after all: everything goes back for the next idle moment.
                self.head.weak_todo.extend(weak);
                for i in seeds.into_iter().rev() {
                    self.head.seeds_left.insert(0, i);
                }
            }
        }
    }
}
