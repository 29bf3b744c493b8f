//! The read model the workbench queries: which records a filter keeps, how uncertain each
//! decision is, and in what order a page lists them. Pure functions over decision inputs, so the
//! engine and the TUI's test engine answer the same question the same way.

use super::types::{RecordFilter, SortBy};
use crate::decide::{Decision, DecisionInputs};
use crate::record::SourceKind;
use crate::rules::{Thresholds, Tier};
use std::ops::Range;

/// Whether a record passes the filter's fields other than the text search (which the store
/// answers).
pub fn matches(f: &RecordFilter, d: &Decision, source: SourceKind, labelled: bool) -> bool {
    f.verdict.is_none_or(|v| v == d.verdict)
        && f.tier.is_none_or(|t| t == d.tier)
        && f.decided_by.is_none_or(|b| Some(b) == d.decided_by)
        && f.source.is_none_or(|s| s == source)
        && f.labelled.is_none_or(|l| l == labelled)
}

/// How close a decision is to flipping, 0 = on the edge: for a verify-tier record with an
/// answer, the distance of the probability that decides it (P(head) when a head scored it,
/// else P(yes)) from the cut; otherwise the score's distance to the nearer threshold, as a
/// share of the band.
pub fn uncertainty(i: &DecisionInputs, d: &Decision, t: &Thresholds) -> f32 {
    let band = (t.high - t.low).abs().max(1e-3);
    match (d.tier, i.p_head.or(i.p_yes)) {
        (Tier::Verify, Some(p)) => (p - t.p_yes_cut).abs(),
        _ => (i.score - t.low).abs().min((i.score - t.high).abs()) / band,
    }
}

/// Order records (given in arrival order) for a page: arrival as is, score highest first,
/// uncertainty lowest first; ties keep arrival order.
pub fn sort<K>(
    items: &mut [K],
    sort: SortBy,
    score: impl Fn(&K) -> f32,
    uncertainty: impl Fn(&K) -> f32,
) {
    match sort {
        SortBy::Arrival => {}
        SortBy::Score => items.sort_by(|a, b| score(b).total_cmp(&score(a))),
        SortBy::Uncertainty => items.sort_by(|a, b| uncertainty(a).total_cmp(&uncertainty(b))),
    }
}

/// The slice of `total` matches a page at `offset` of `limit` rows shows.
pub fn page(total: usize, offset: u64, limit: u64) -> Range<usize> {
    let start = (offset as usize).min(total);
    start..start.saturating_add(limit as usize).min(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{decide, test_inputs as inputs, Label, Verdict};

    #[test]
    fn filters_combine_and_uncertainty_orders_closest_first() {
        let t = Thresholds::default();
        let recs = [
            inputs(9.0, None, None),       // keep, far from the edge
            inputs(3.0, Some(0.52), None), // verify, P(yes) just above the cut
            inputs(1.0, None, None),       // reject
            inputs(3.0, Some(0.9), Some(Label::Reject)),
        ];
        let ds: Vec<Decision> = recs.iter().map(|i| decide(i, &t)).collect();
        let kept = RecordFilter {
            verdict: Some(Verdict::Kept),
            ..Default::default()
        };
        let n = (0..4)
            .filter(|&k| matches(&kept, &ds[k], SourceKind::Json, recs[k].label.is_some()))
            .count();
        assert_eq!(n, 2);
        let labelled = RecordFilter {
            labelled: Some(true),
            ..Default::default()
        };
        assert!(matches(&labelled, &ds[3], SourceKind::Json, true));
        assert!(!matches(&labelled, &ds[1], SourceKind::Json, false));

        let mut order: Vec<usize> = (0..4).collect();
        sort(
            &mut order,
            SortBy::Uncertainty,
            |&k| recs[k].score,
            |&k| uncertainty(&recs[k], &ds[k], &t),
        );
        assert_eq!(
            order[0], 1,
            "P(yes) 0.52 against a 0.5 cut is the closest call"
        );
        let mut by_score: Vec<usize> = (0..4).collect();
        sort(&mut by_score, SortBy::Score, |&k| recs[k].score, |_| 0.0);
        assert_eq!(by_score, vec![0, 1, 3, 2], "ties keep arrival order");
        assert_eq!(page(10, 8, 5), 8..10);
        assert_eq!(page(10, 20, 5), 10..10);
    }
}
