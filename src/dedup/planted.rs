//! A generated set with near-duplicates planted at known Jaccard similarities, to measure the
//! grouping's recall and precision (unit tests, `cyberfilter bench dedup`).
//!
//! Base texts are 60–160 words drawn from a synthetic vocabulary. For a share of them a copy is
//! planted whose words are replaced one at a time until the exact shingle Jaccard with the
//! base falls to a drawn target (0.3–1.0); the exact value is recorded as the truth.

use super::group::Grouper;
use super::minhash::jaccard;
use super::Settings;

/// One generated record.
#[derive(Debug, Clone)]
pub struct GenRecord {
    pub id: String,
    pub text: String,
}

/// A planted pair: positions and the exact Jaccard similarity of their texts.
#[derive(Debug, Clone, Copy)]
pub struct Pair {
    pub a: usize,
    pub b: usize,
    pub jaccard: f32,
}

#[derive(Debug, Clone)]
pub struct Planted {
    pub records: Vec<GenRecord>,
    pub pairs: Vec<Pair>,
}

pub use crate::rng::Rng;

const VOCAB: u64 = 20_000;

/// A base text of `n` words.
pub fn base_text(rng: &mut Rng, n: usize) -> Vec<String> {
    (0..n).map(|_| format!("w{}", rng.below(VOCAB))).collect()
}

/// `n` base records; every other one gets a planted near-copy.
pub fn generate(n: usize, seed: u64) -> Planted {
    let mut rng = Rng::new(seed);
    let mut records = Vec::new();
    let mut pairs = Vec::new();
    let targets = [0.3f32, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0];
    for i in 0..n {
        let len = 60 + rng.below(100) as usize;
        let words = base_text(&mut rng, len);
        let text = words.join(" ");
        records.push(GenRecord {
            id: format!("base-{i}"),
            text: text.clone(),
        });
        if i % 2 == 0 {
            let target = targets[rng.below(targets.len() as u64) as usize];
            let mut copy = words.clone();
            let mut copy_text = text.clone();
            let mut j = 1.0f32;
            while j > target {
                let k = rng.below(copy.len() as u64) as usize;
                copy[k] = format!("v{}", rng.below(VOCAB));
                copy_text = copy.join(" ");
                j = jaccard(&text, &copy_text);
            }
            pairs.push(Pair {
                a: records.len() - 1,
                b: records.len(),
                jaccard: j,
            });
            records.push(GenRecord {
                id: format!("copy-{i}"),
                text: copy_text,
            });
        }
    }
    Planted { records, pairs }
}

/// Recall and precision of a grouping over a planted set, against "exact Jaccard ≥ threshold".
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quality {
    /// Planted pairs at or above the threshold.
    pub true_pairs: u64,
    /// ... of which grouped together.
    pub found: u64,
    /// Pairs of records grouped together.
    pub grouped_pairs: u64,
    /// ... that are planted pairs at or above the threshold minus `tolerance`.
    pub correct: u64,
    pub recall: f64,
    pub precision: f64,
}

/// Group the set and score it. A grouped pair counts as correct when it is a planted pair whose
/// exact similarity is at least `threshold - tolerance` (the estimate has a spread of about
/// ±0.06 at 64 hashes, so a pair just under the threshold may fairly land either side).
pub fn evaluate(p: &Planted, settings: &Settings, tolerance: f32) -> Quality {
    let mut g = Grouper::new(settings.clone());
    for r in &p.records {
        let h = *blake3::hash(r.text.as_bytes()).as_bytes();
        g.push(&super::item(
            crate::record::SourceKind::Json,
            &r.id,
            &r.text,
            &h,
            r.text.len(),
            super::minhash::signature(&r.text),
        ));
    }
    let t = settings.threshold;
    let mut q = Quality::default();
    let mut planted: std::collections::HashMap<(usize, usize), f32> = Default::default();
    for pr in &p.pairs {
        planted.insert((pr.a, pr.b), pr.jaccard);
        if pr.jaccard >= t {
            q.true_pairs += 1;
            if g.rep_of(pr.a as u32) == g.rep_of(pr.b as u32) {
                q.found += 1;
            }
        }
    }
    let mut seen = vec![false; p.records.len()];
    for i in 0..p.records.len() {
        if seen[i] {
            continue;
        }
        let mut m: Vec<usize> = g
            .members(i as u32)
            .into_iter()
            .map(|x| x as usize)
            .collect();
        m.sort_unstable();
        for &x in &m {
            seen[x] = true;
        }
        for a in 0..m.len() {
            for b in a + 1..m.len() {
                q.grouped_pairs += 1;
                if planted
                    .get(&(m[a], m[b]))
                    .is_some_and(|j| *j >= t - tolerance)
                {
                    q.correct += 1;
                }
            }
        }
    }
    q.recall = q.found as f64 / q.true_pairs.max(1) as f64;
    q.precision = if q.grouped_pairs == 0 {
        1.0
    } else {
        q.correct as f64 / q.grouped_pairs as f64
    };
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_pairs_have_their_recorded_similarity() {
        let p = generate(20, 3);
        assert_eq!(p.pairs.len(), 10);
        for pr in &p.pairs {
            let j = jaccard(&p.records[pr.a].text, &p.records[pr.b].text);
            assert!((j - pr.jaccard).abs() < 1e-6);
        }
    }

    /// The figure the README quotes: recall and precision at the default threshold on 4000
    /// base texts (2000 planted pairs spread over 0.3–1.0).
    #[test]
    fn recall_and_precision_at_the_default_threshold() {
        let p = generate(4000, 11);
        let q = evaluate(&p, &Settings::default(), 0.1);
        eprintln!("planted set at the default threshold: {q:?}");
        assert!(q.true_pairs > 500, "{q:?}");
        assert!(q.recall >= 0.9, "{q:?}");
        assert!(q.precision >= 0.95, "{q:?}");
        // Nothing planted below 0.5 gets grouped at 0.7 (strictly: pairs grouped are planted).
        let strict = evaluate(&p, &Settings::default(), 0.2);
        assert_eq!(strict.correct, strict.grouped_pairs, "{strict:?}");
    }
}
