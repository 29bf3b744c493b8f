//! The in-memory index of decision inputs: 16 bytes per record plus its seq, so re-deciding a
//! million records after a threshold move is a tight loop over a vector, not a database scan.

use crate::decide::{decide, group_inputs, DecidedBy, Decision, DecisionInputs, Label, Verdict};
use crate::engine::types::{FlipPreview, LabelAgreement};
use crate::record::SourceKind;
use crate::rules::{Thresholds, Tier};
use std::collections::{HashMap, HashSet};

/// One record's decision inputs and current decision, packed.
#[derive(Debug, Clone, Copy)]
struct Entry {
    score: f32,
    /// NaN when there is no LLM answer.
    p_yes: f32,
    /// NaN when no verdict head scored this record.
    p_head: f32,
    text_len: u32,
    /// bit 0: scored; bits 1-2: label (0 none, 1 keep, 2 reject); bit 3: queued for the
    /// verifier; bits 4-7: source kind.
    bits: u8,
    /// bits 0-1: tier; bits 2-3: verdict; bits 4-6: decided_by (0 none).
    decision: u8,
}

const QUEUED: u8 = 1 << 3;

fn pack_decision(d: &Decision) -> u8 {
    let tier = match d.tier {
        Tier::Keep => 0,
        Tier::Verify => 1,
        Tier::Reject => 2,
    };
    let verdict = match d.verdict {
        Verdict::Kept => 0,
        Verdict::Removed => 1,
        Verdict::Pending => 2,
    };
    let by = match d.decided_by {
        None => 0,
        Some(DecidedBy::Rule) => 1,
        Some(DecidedBy::Llm) => 2,
        Some(DecidedBy::Human) => 3,
        Some(DecidedBy::Head) => 4,
    };
    tier | (verdict << 2) | (by << 4)
}

fn unpack_decision(b: u8) -> Decision {
    Decision {
        tier: match b & 3 {
            0 => Tier::Keep,
            1 => Tier::Verify,
            _ => Tier::Reject,
        },
        verdict: match (b >> 2) & 3 {
            0 => Verdict::Kept,
            1 => Verdict::Removed,
            _ => Verdict::Pending,
        },
        decided_by: match (b >> 4) & 7 {
            0 => None,
            1 => Some(DecidedBy::Rule),
            2 => Some(DecidedBy::Llm),
            3 => Some(DecidedBy::Human),
            _ => Some(DecidedBy::Head),
        },
    }
}

fn source_code(s: SourceKind) -> u8 {
    SourceKind::ALL.iter().position(|k| *k == s).unwrap_or(6) as u8
}

/// Counts kept current with every change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub keep: u64,
    pub verify: u64,
    pub reject: u64,
    pub kept: u64,
    pub removed: u64,
    pub pending: u64,
    pub labelled: u64,
}

impl Counts {
    fn apply(&mut self, d: &Decision, sign: i64) {
        let add = |x: &mut u64| *x = (*x as i64 + sign) as u64;
        match d.tier {
            Tier::Keep => add(&mut self.keep),
            Tier::Verify => add(&mut self.verify),
            Tier::Reject => add(&mut self.reject),
        }
        match d.verdict {
            Verdict::Kept => add(&mut self.kept),
            Verdict::Removed => add(&mut self.removed),
            Verdict::Pending => add(&mut self.pending),
        }
    }
}

/// What re-deciding changed.
#[derive(Debug, Default)]
pub struct Redecision {
    pub flips: FlipPreview,
    /// Records whose stored decision must be rewritten.
    pub changed: Vec<(i64, Decision)>,
    /// Records that newly need the verifier (and were not queued yet).
    pub newly_needing: Vec<i64>,
}

#[derive(Debug, Default)]
pub struct Index {
    seqs: Vec<i64>,
    entries: Vec<Entry>,
    counts: Counts,
    /// Duplicate groups: each record's representative (its own position when it is none's
    /// duplicate), and each representative's duplicates.
    follow: Vec<u32>,
    followers: HashMap<u32, Vec<u32>>,
    /// Decisions of duplicates changed as a side effect of their representative's change,
    /// for the store (drained by [`Index::take_changes`]).
    changes: Vec<(i64, Decision)>,
}

impl Index {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The seq the next record gets.
    pub fn next_seq(&self) -> i64 {
        self.seqs.last().map(|s| s + 1).unwrap_or(1)
    }

    /// Add a record (seqs must grow); returns its decision.
    pub fn push(
        &mut self,
        seq: i64,
        source: SourceKind,
        inputs: &DecisionInputs,
        t: &Thresholds,
    ) -> Decision {
        debug_assert!(self.seqs.last().is_none_or(|l| *l < seq));
        let d = decide(inputs, t);
        let label = match inputs.label {
            None => 0,
            Some(Label::Keep) => 1,
            Some(Label::Reject) => 2,
        };
        self.entries.push(Entry {
            score: inputs.score,
            p_yes: inputs.p_yes.unwrap_or(f32::NAN),
            p_head: inputs.p_head.unwrap_or(f32::NAN),
            text_len: inputs.text_len.min(u32::MAX as usize) as u32,
            bits: (inputs.scored as u8) | (label << 1) | (source_code(source) << 4),
            decision: pack_decision(&d),
        });
        self.seqs.push(seq);
        self.follow.push(self.follow.len() as u32);
        self.counts.apply(&d, 1);
        if inputs.label.is_some() {
            self.counts.labelled += 1;
        }
        d
    }

    pub fn pos(&self, seq: i64) -> Option<usize> {
        self.seqs.binary_search(&seq).ok()
    }

    pub fn seq_at(&self, pos: usize) -> i64 {
        self.seqs[pos]
    }

    pub fn inputs_at(&self, pos: usize) -> DecisionInputs {
        let e = &self.entries[pos];
        DecisionInputs {
            score: e.score,
            text_len: e.text_len as usize,
            scored: e.bits & 1 != 0,
            p_yes: if e.p_yes.is_nan() {
                None
            } else {
                Some(e.p_yes)
            },
            p_head: (!e.p_head.is_nan()).then_some(e.p_head),
            label: match (e.bits >> 1) & 3 {
                1 => Some(Label::Keep),
                2 => Some(Label::Reject),
                _ => None,
            },
        }
    }

    pub fn decision_at(&self, pos: usize) -> Decision {
        unpack_decision(self.entries[pos].decision)
    }

    pub fn source_at(&self, pos: usize) -> SourceKind {
        SourceKind::ALL[((self.entries[pos].bits >> 4) as usize).min(6)]
    }

    pub fn queued_at(&self, pos: usize) -> bool {
        self.entries[pos].bits & QUEUED != 0
    }

    pub fn set_queued(&mut self, pos: usize, q: bool) {
        if q {
            self.entries[pos].bits |= QUEUED;
        } else {
            self.entries[pos].bits &= !QUEUED;
        }
    }

    /// Change a record's inputs and re-decide it; returns (old, new) decisions.
    fn update(
        &mut self,
        pos: usize,
        inputs: &DecisionInputs,
        t: &Thresholds,
    ) -> (Decision, Decision) {
        let old = self.decision_at(pos);
        let had_label = self.inputs_at(pos).label.is_some();
        let e = &mut self.entries[pos];
        e.p_yes = inputs.p_yes.unwrap_or(f32::NAN);
        e.p_head = inputs.p_head.unwrap_or(f32::NAN);
        let label = match inputs.label {
            None => 0,
            Some(Label::Keep) => 1,
            Some(Label::Reject) => 2,
        };
        e.bits = (e.bits & !(3 << 1)) | (label << 1);
        match (had_label, inputs.label.is_some()) {
            (false, true) => self.counts.labelled += 1,
            (true, false) => self.counts.labelled -= 1,
            _ => {}
        }
        let d = self.decide_at(pos, t);
        self.entries[pos].decision = pack_decision(&d);
        self.counts.apply(&old, -1);
        self.counts.apply(&d, 1);
        // A member's label is the group's (`group_label`): the representative and every
        // other member may follow it.
        let rep = self.follow[pos] as usize;
        if rep != pos {
            self.redecide_one(rep, t);
        }
        self.refresh_followers(rep, t);
        (old, d)
    }

    /// The label a group decides by: the representative's, else its members' (`group_label`).
    fn group_label(&self, rep: usize) -> Option<Label> {
        let own = self.inputs_at(rep).label;
        if own.is_some() || self.counts.labelled == 0 {
            return own;
        }
        let members = self.followers.get(&(rep as u32)).map(Vec::as_slice);
        crate::decide::group_label(
            None,
            members
                .unwrap_or_default()
                .iter()
                .map(|&p| self.inputs_at(p as usize).label),
        )
    }

    /// The representative's inputs, with the group's label, when `pos` is a duplicate.
    fn rep_inputs(&self, pos: usize) -> Option<DecisionInputs> {
        let r = self.follow[pos] as usize;
        (r != pos).then(|| {
            let mut i = self.inputs_at(r);
            i.label = self.group_label(r);
            i
        })
    }

    /// The inputs `pos` is decided on: its representative's when it is a duplicate, its own
    /// otherwise; either way with the group's label unless it carries its own.
    pub fn group_inputs_at(&self, pos: usize) -> DecisionInputs {
        let own = self.inputs_at(pos);
        if own.label.is_none() && self.follow[pos] as usize == pos {
            let mut i = own;
            i.label = self.group_label(pos);
            return i;
        }
        group_inputs(&own, self.rep_inputs(pos).as_ref())
    }

    /// `pos`'s decision under `t`, following its representative.
    fn decide_at(&self, pos: usize, t: &Thresholds) -> Decision {
        decide(&self.group_inputs_at(pos), t)
    }

    /// Re-decide one record in place; a change goes to `changes`.
    fn redecide_one(&mut self, pos: usize, t: &Thresholds) -> Option<Decision> {
        let old = self.decision_at(pos);
        let d = self.decide_at(pos, t);
        if d == old {
            return None;
        }
        self.entries[pos].decision = pack_decision(&d);
        self.counts.apply(&old, -1);
        self.counts.apply(&d, 1);
        self.changes.push((self.seqs[pos], d));
        Some(d)
    }

    fn refresh_followers(&mut self, pos: usize, t: &Thresholds) {
        if let Some(f) = self.followers.get(&(pos as u32)).cloned() {
            for p in f {
                self.redecide_one(p as usize, t);
            }
        }
    }

    /// Decisions changed as a side effect since the last call (duplicates following their
    /// representative, records regrouped).
    pub fn take_changes(&mut self) -> Vec<(i64, Decision)> {
        std::mem::take(&mut self.changes)
    }

    /// `pos`'s representative (itself when it is not a duplicate).
    pub fn rep_at(&self, pos: usize) -> usize {
        self.follow[pos] as usize
    }

    pub fn is_duplicate(&self, pos: usize) -> bool {
        self.follow[pos] as usize != pos
    }

    /// Whether `pos` is in a group of two or more.
    pub fn in_group(&self, pos: usize) -> bool {
        self.is_duplicate(pos) || self.followers.contains_key(&(pos as u32))
    }

    /// True when this record needs an LLM answer it does not have. A duplicate never does:
    /// its verdict follows its representative's, which is asked once for the group.
    pub fn needs_verifier(&self, pos: usize) -> bool {
        !self.is_duplicate(pos)
            && self
                .decision_at(pos)
                .needs_verifier(&self.group_inputs_at(pos))
    }

    /// Point `positions` at their new representatives (`rep_of`) and re-decide them; returns
    /// the positions that now need the verifier (a former duplicate on its own again).
    pub fn repoint(
        &mut self,
        positions: &[u32],
        rep_of: impl Fn(u32) -> u32,
        t: &Thresholds,
    ) -> Vec<usize> {
        let mut by_old: HashMap<u32, HashSet<u32>> = HashMap::new();
        let mut moving = Vec::new();
        for &p in positions {
            let new = rep_of(p);
            let old = self.follow[p as usize];
            if old != new {
                by_old.entry(old).or_default().insert(p);
                moving.push((p, new));
            }
        }
        for (old, set) in by_old {
            if let Some(f) = self.followers.get_mut(&old) {
                f.retain(|x| !set.contains(x));
                if f.is_empty() {
                    self.followers.remove(&old);
                }
            }
        }
        let mut needing = Vec::new();
        for &(p, new) in &moving {
            self.follow[p as usize] = new;
            if new != p {
                self.followers.entry(new).or_default().push(p);
            }
        }
        for &(p, _) in &moving {
            let p = p as usize;
            self.redecide_one(p, t);
            if self.needs_verifier(p) && !self.queued_at(p) {
                needing.push(p);
            }
        }
        needing
    }

    /// Replace every representative at once (a regrouping) and re-decide every record;
    /// returns the positions that now need the verifier.
    pub fn set_reps(&mut self, reps: &[u32], t: &Thresholds) -> Vec<usize> {
        debug_assert_eq!(reps.len(), self.len());
        self.follow = reps.to_vec();
        self.followers.clear();
        for (p, &r) in reps.iter().enumerate() {
            if r as usize != p {
                self.followers.entry(r).or_default().push(p as u32);
            }
        }
        let mut needing = Vec::new();
        for p in 0..self.len() {
            self.redecide_one(p, t);
            if self.needs_verifier(p) && !self.queued_at(p) {
                needing.push(p);
            }
        }
        needing
    }

    /// (groups of two or more, duplicates in them, duplicates that would each have needed
    /// the verifier on their own: the verifier asks saved).
    pub fn group_counts(&self, t: &Thresholds) -> (u64, u64, u64) {
        let mut dups = 0u64;
        let mut saved = 0u64;
        for f in self.followers.values() {
            dups += f.len() as u64;
            for &p in f {
                let i = self.inputs_at(p as usize);
                if i.label.is_none()
                    && i.p_yes.is_none()
                    && crate::rules::tier_for(i.score, i.text_len, i.scored, t) == Tier::Verify
                {
                    saved += 1;
                }
            }
        }
        (self.followers.len() as u64, dups, saved)
    }

    pub fn set_answer(&mut self, pos: usize, p_yes: f32, t: &Thresholds) -> Decision {
        let mut i = self.inputs_at(pos);
        i.p_yes = Some(p_yes);
        self.update(pos, &i, t).1
    }

    /// Set P(yes) and P(head) together (a verifier answer with features); returns the new
    /// decision.
    pub fn set_answer_head(
        &mut self,
        pos: usize,
        p_yes: f32,
        p_head: Option<f32>,
        t: &Thresholds,
    ) -> Decision {
        let mut i = self.inputs_at(pos);
        i.p_yes = Some(p_yes);
        i.p_head = p_head;
        self.update(pos, &i, t).1
    }

    /// Replace P(head) of records without deciding (a retrain; then [`Self::redecide`]).
    pub fn set_p_head(&mut self, pos: usize, p_head: Option<f32>) {
        self.entries[pos].p_head = p_head.unwrap_or(f32::NAN);
    }

    /// Forget the LLM answer (re-verify); returns the new decision.
    pub fn clear_answer(&mut self, pos: usize, t: &Thresholds) -> Decision {
        let mut i = self.inputs_at(pos);
        i.p_yes = None;
        i.p_head = None;
        self.update(pos, &i, t).1
    }

    pub fn set_label(
        &mut self,
        pos: usize,
        label: Option<Label>,
        t: &Thresholds,
    ) -> (Decision, Decision) {
        let mut i = self.inputs_at(pos);
        i.label = label;
        self.update(pos, &i, t)
    }

    /// What applying `t` would change, without changing anything.
    pub fn preview(&self, t: &Thresholds) -> FlipPreview {
        let mut f = FlipPreview::default();
        for pos in 0..self.entries.len() {
            let old = self.decision_at(pos);
            let d = self.decide_at(pos, t);
            let queued = self.queued_at(pos) || self.is_duplicate(pos);
            count_flip(&mut f, &old, &d, &self.inputs_at(pos), queued);
        }
        f
    }

    /// What re-deciding under `t` would change if the records at these positions had these
    /// scores (a rule added), without changing anything.
    pub fn preview_scores(&self, scores: &[(usize, f32)], t: &Thresholds) -> FlipPreview {
        let mut f = FlipPreview::default();
        for &(pos, score) in scores {
            let old = self.decision_at(pos);
            let mut i = self.inputs_at(pos);
            i.score = score;
            count_flip(&mut f, &old, &decide(&i, t), &i, self.queued_at(pos));
        }
        f
    }

    /// Replace a record's rule score without deciding (a rule added; then [`Self::redecide`]).
    pub fn set_score(&mut self, pos: usize, score: f32) {
        self.entries[pos].score = score;
    }

    /// Re-decide every record under `t`.
    pub fn redecide(&mut self, t: &Thresholds) -> Redecision {
        let mut r = Redecision::default();
        let mut counts = Counts {
            labelled: self.counts.labelled,
            ..Counts::default()
        };
        for pos in 0..self.entries.len() {
            let old_b = self.entries[pos].decision;
            let i = self.inputs_at(pos);
            let d = self.decide_at(pos, t);
            let new_b = pack_decision(&d);
            counts.apply(&d, 1);
            if new_b != old_b {
                let old = unpack_decision(old_b);
                let queued = self.queued_at(pos) || self.is_duplicate(pos);
                if count_flip(&mut r.flips, &old, &d, &i, queued) {
                    r.newly_needing.push(self.seqs[pos]);
                }
                self.entries[pos].decision = new_b;
                r.changed.push((self.seqs[pos], d));
            }
        }
        self.counts = counts;
        r
    }

    /// Precision/recall of the label-free decision under `t` against the labels.
    pub fn agreement(&self, t: &Thresholds) -> LabelAgreement {
        let mut a = LabelAgreement::default();
        for pos in 0..self.entries.len() {
            let Some(label) = self.inputs_at(pos).label else {
                continue;
            };
            // The label-free decision: a duplicate's follows its representative's.
            let mut i = match self.rep_inputs(pos) {
                Some(r) => r,
                None => self.inputs_at(pos),
            };
            i.label = None;
            a.labelled += 1;
            let predicted = match decide(&i, t).verdict {
                Verdict::Kept => true,
                Verdict::Removed => false,
                Verdict::Pending => continue,
            };
            match (predicted, label == Label::Keep) {
                (true, true) => a.true_pos += 1,
                (true, false) => a.false_pos += 1,
                (false, true) => a.false_neg += 1,
                (false, false) => a.true_neg += 1,
            }
        }
        a
    }

    /// Positions of records that need the verifier and are not queued.
    pub fn needing_verifier(&self) -> Vec<usize> {
        (0..self.entries.len())
            .filter(|&p| !self.queued_at(p) && self.needs_verifier(p))
            .collect()
    }
}

/// Count one record's change; returns true when it newly needs the verifier.
/// Count one record's change from `old` to `new` (the engine's preview and apply, and the
/// TUI's test engine, all count with this). Returns whether it newly needs the verifier.
pub fn count_flip(
    f: &mut FlipPreview,
    old: &Decision,
    new: &Decision,
    i: &DecisionInputs,
    queued: bool,
) -> bool {
    if old.verdict != new.verdict {
        match new.verdict {
            Verdict::Kept => f.to_kept += 1,
            Verdict::Removed => f.to_removed += 1,
            Verdict::Pending => f.to_pending += 1,
        }
        match old.verdict {
            Verdict::Kept => f.from_kept += 1,
            Verdict::Removed => f.from_removed += 1,
            Verdict::Pending => f.from_pending += 1,
        }
    }
    let newly = new.needs_verifier(i) && !old.needs_verifier(i) && !queued;
    if newly {
        f.newly_pending += 1;
    }
    newly
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_every_decision() {
        for tier in [Tier::Keep, Tier::Verify, Tier::Reject] {
            for verdict in [Verdict::Kept, Verdict::Removed, Verdict::Pending] {
                for by in [
                    None,
                    Some(DecidedBy::Rule),
                    Some(DecidedBy::Llm),
                    Some(DecidedBy::Human),
                    Some(DecidedBy::Head),
                ] {
                    let d = Decision {
                        tier,
                        verdict,
                        decided_by: by,
                    };
                    assert_eq!(unpack_decision(pack_decision(&d)), d);
                }
            }
        }
    }

    #[test]
    fn redecide_counts_flips_and_keeps_counts_consistent() {
        let t = Thresholds {
            high: 6.0,
            low: 2.0,
            min_text_len: 20,
            p_yes_cut: 0.5,
        };
        let mut ix = Index::default();
        for (n, s) in [1.0f32, 3.0, 5.0, 7.0].into_iter().enumerate() {
            let i = DecisionInputs {
                score: s,
                text_len: 100,
                scored: true,
                p_yes: None,
                p_head: None,
                label: None,
            };
            ix.push(n as i64 + 1, SourceKind::Json, &i, &t);
        }
        assert_eq!(ix.counts().pending, 2);
        let t2 = Thresholds {
            high: 4.0,
            low: 0.5,
            ..t
        };
        let preview = ix.preview(&t2);
        let r = ix.redecide(&t2);
        assert_eq!(preview, r.flips);
        // 5.0 becomes kept; 1.0 becomes pending (newly needs the verifier).
        assert_eq!(r.flips.to_kept, 1);
        assert_eq!(r.flips.newly_pending, 1);
        assert_eq!(r.newly_needing, vec![1]);
        let c = ix.counts();
        assert_eq!((c.kept, c.pending, c.removed), (2, 2, 0));
    }
}
