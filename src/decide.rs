//! The decision: a pure function of stored inputs (rule score, LLM probability and verdict-head
//! probability if any, thresholds, the curator's label). Because it is pure and cheap, moving a threshold
//! re-decides every stored record without reading any input again.

use crate::rules::{tier_for, Thresholds, Tier};
use serde::{Deserialize, Serialize};

/// A curator's label. It always wins over rules and the LLM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Keep,
    Reject,
}

impl Label {
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Keep => "keep",
            Label::Reject => "reject",
        }
    }
    pub fn parse(s: &str) -> Option<Label> {
        match s {
            "keep" => Some(Label::Keep),
            "reject" => Some(Label::Reject),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Kept,
    Removed,
    /// In the verify tier with no LLM answer yet: stored, counted, exported as pending;
    /// never silently kept or dropped.
    Pending,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Kept => "kept",
            Verdict::Removed => "removed",
            Verdict::Pending => "pending",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum DecidedBy {
    Rule,
    Llm,
    /// The verdict head (a classifier on the model's hidden states), when one is trained.
    Head,
    Human,
}

impl DecidedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            DecidedBy::Rule => "rule",
            DecidedBy::Llm => "llm",
            DecidedBy::Head => "head",
            DecidedBy::Human => "human",
        }
    }
}

/// The stored inputs of one record's decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecisionInputs {
    pub score: f32,
    /// Length of the extracted text in chars.
    pub text_len: usize,
    pub scored: bool,
    pub p_yes: Option<f32>,
    /// P(head) from the active verdict head, when one exists and the record has features.
    pub p_head: Option<f32>,
    pub label: Option<Label>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub tier: Tier,
    pub verdict: Verdict,
    /// `None` while pending.
    pub decided_by: Option<DecidedBy>,
}

impl Decision {
    /// True when this record needs an LLM answer it does not have.
    pub fn needs_verifier(&self, inputs: &DecisionInputs) -> bool {
        self.tier == Tier::Verify && inputs.p_yes.is_none() && inputs.label.is_none()
    }
}

pub fn decide(i: &DecisionInputs, t: &Thresholds) -> Decision {
    let tier = tier_for(i.score, i.text_len, i.scored, t);
    let (verdict, decided_by) = match (i.label, tier, i.p_yes) {
        (Some(Label::Keep), _, _) => (Verdict::Kept, Some(DecidedBy::Human)),
        (Some(Label::Reject), _, _) => (Verdict::Removed, Some(DecidedBy::Human)),
        (None, Tier::Keep, _) => (Verdict::Kept, Some(DecidedBy::Rule)),
        (None, Tier::Reject, _) => (Verdict::Removed, Some(DecidedBy::Rule)),
        (None, Tier::Verify, Some(_)) if i.p_head.is_some() => {
            let p = i.p_head.unwrap_or_default();
            let v = if p >= t.p_yes_cut {
                Verdict::Kept
            } else {
                Verdict::Removed
            };
            (v, Some(DecidedBy::Head))
        }
        (None, Tier::Verify, Some(p)) if p >= t.p_yes_cut => (Verdict::Kept, Some(DecidedBy::Llm)),
        (None, Tier::Verify, Some(_)) => (Verdict::Removed, Some(DecidedBy::Llm)),
        (None, Tier::Verify, None) => (Verdict::Pending, None),
    };
    Decision {
        tier,
        verdict,
        decided_by,
    }
}

/// The inputs a record is decided on when it may be a duplicate: its own when it is not one
/// (`rep` is `None`) or when it carries its own label, else its group representative's (a
/// duplicate's verdict follows its representative's, label included). `rep` carries the
/// group's label ([`group_label`]), so a label on any member reaches the whole group.
pub fn group_inputs(own: &DecisionInputs, rep: Option<&DecisionInputs>) -> DecisionInputs {
    match rep {
        Some(r) if own.label.is_none() => *r,
        _ => *own,
    }
}

/// The label a duplicate group is decided by: the representative's own when it has one, else
/// the members' (keep when any member says keep: a copy a curator kept is not dropped for a
/// sibling marked reject). Order-free, so it does not depend on which member arrived or was
/// labelled first: a label given to a copy before its representative arrived, or by
/// `cyberfilter relabel` on a stopped store, still decides the group.
pub fn group_label(
    rep: Option<Label>,
    members: impl IntoIterator<Item = Option<Label>>,
) -> Option<Label> {
    if rep.is_some() {
        return rep;
    }
    let mut found = None;
    for l in members.into_iter().flatten() {
        if l == Label::Keep {
            return Some(l);
        }
        found = Some(l);
    }
    found
}

/// A human-readable reason for a decision, beside the decision it explains: the record view,
/// `cyberfilter show` and the export's `why` all say this.
pub fn why(i: &DecisionInputs, d: &Decision, t: &Thresholds) -> String {
    if let Some(l) = i.label {
        return format!("curator label: {}", l.as_str());
    }
    match d.tier {
        Tier::Keep => format!("score {} ≥ high {}", i.score, t.high),
        Tier::Reject if !i.scored => "record kind is not scored".into(),
        Tier::Reject if i.text_len < t.min_text_len => {
            format!("text {} chars < minimum {}", i.text_len, t.min_text_len)
        }
        Tier::Reject => format!("score {} < low {}", i.score, t.low),
        Tier::Verify if d.decided_by == Some(DecidedBy::Head) => format!(
            "P(head) {:.2} {} cut {} (P(yes) {:.2})",
            i.p_head.unwrap_or_default(),
            if d.verdict == Verdict::Kept {
                "≥"
            } else {
                "<"
            },
            t.p_yes_cut,
            i.p_yes.unwrap_or_default()
        ),
        Tier::Verify => match (i.p_yes, d.verdict) {
            (Some(p), Verdict::Kept) => format!("P(yes) {p:.2} ≥ cut {}", t.p_yes_cut),
            (Some(p), _) => format!("P(yes) {p:.2} < cut {}", t.p_yes_cut),
            (None, _) => format!(
                "score {} in [low {}, high {}): waiting for the verifier",
                i.score, t.low, t.high
            ),
        },
    }
}

/// Decision inputs for unit tests: a scored 100-character text.
#[cfg(test)]
pub(crate) fn test_inputs(score: f32, p_yes: Option<f32>, label: Option<Label>) -> DecisionInputs {
    DecisionInputs {
        score,
        text_len: 100,
        scored: true,
        p_yes,
        p_head: None,
        label,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_decided_by_its_representatives_label_else_by_a_members() {
        use Label::{Keep, Reject};
        assert_eq!(group_label(Some(Reject), [Some(Keep)]), Some(Reject));
        assert_eq!(group_label(None, [None, Some(Reject), None]), Some(Reject));
        // Keep wins among members, whatever their order.
        assert_eq!(group_label(None, [Some(Reject), Some(Keep)]), Some(Keep));
        assert_eq!(group_label(None, [Some(Keep), Some(Reject)]), Some(Keep));
        assert_eq!(group_label(None, [None, None]), None);
        assert_eq!(group_label(None, []), None);
    }

    fn inputs(score: f32, p_yes: Option<f32>, label: Option<Label>) -> DecisionInputs {
        test_inputs(score, p_yes, label)
    }

    #[test]
    fn label_always_wins() {
        let t = Thresholds::default();
        let d = decide(&inputs(100.0, Some(0.99), Some(Label::Reject)), &t);
        assert_eq!(
            (d.verdict, d.decided_by),
            (Verdict::Removed, Some(DecidedBy::Human))
        );
        let d = decide(&inputs(-5.0, None, Some(Label::Keep)), &t);
        assert_eq!(
            (d.verdict, d.decided_by),
            (Verdict::Kept, Some(DecidedBy::Human))
        );
    }

    #[test]
    fn verify_tier_without_answer_is_pending() {
        let t = Thresholds::default();
        let i = inputs((t.low + t.high) / 2.0, None, None);
        let d = decide(&i, &t);
        assert_eq!(d.tier, Tier::Verify);
        assert_eq!(d.verdict, Verdict::Pending);
        assert!(d.needs_verifier(&i));
    }

    #[test]
    fn llm_answer_decides_verify_tier_at_the_cut() {
        let t = Thresholds::default();
        let mid = (t.low + t.high) / 2.0;
        assert_eq!(
            decide(&inputs(mid, Some(t.p_yes_cut), None), &t).verdict,
            Verdict::Kept
        );
        assert_eq!(
            decide(&inputs(mid, Some(t.p_yes_cut - 0.01), None), &t).verdict,
            Verdict::Removed
        );
        // The answer is ignored once the score leaves the verify band.
        assert_eq!(
            decide(&inputs(t.high, Some(0.0), None), &t).verdict,
            Verdict::Kept
        );
        assert_eq!(
            decide(&inputs(t.low - 1.0, Some(1.0), None), &t).verdict,
            Verdict::Removed
        );
    }

    #[test]
    fn the_head_decides_the_verify_tier_when_it_has_a_probability() {
        let t = Thresholds::default();
        let mid = (t.low + t.high) / 2.0;
        let mut i = inputs(mid, Some(0.1), None);
        i.p_head = Some(0.9);
        let d = decide(&i, &t);
        assert_eq!(
            (d.verdict, d.decided_by),
            (Verdict::Kept, Some(DecidedBy::Head))
        );
        i.p_head = Some(t.p_yes_cut - 0.01);
        i.p_yes = Some(0.99);
        assert_eq!(decide(&i, &t).verdict, Verdict::Removed);
        // Outside the band, and under a label, the head changes nothing.
        i.score = t.high + 1.0;
        assert_eq!(decide(&i, &t).decided_by, Some(DecidedBy::Rule));
        i.label = Some(Label::Keep);
        assert_eq!(decide(&i, &t).decided_by, Some(DecidedBy::Human));
    }

    #[test]
    fn short_or_unscored_text_is_rejected_by_rule() {
        let t = Thresholds::default();
        let mut i = inputs(100.0, None, None);
        i.text_len = t.min_text_len - 1;
        assert_eq!(decide(&i, &t).tier, Tier::Reject);
        let mut i = inputs(100.0, None, None);
        i.scored = false;
        assert_eq!(decide(&i, &t).verdict, Verdict::Removed);
    }
}
