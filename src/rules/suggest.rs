//! Candidate rules mined from labelled text (`cyberfilter rules suggest`).
//!
//! Every record is cut into lowercase ASCII word tokens, and each word and short phrase (up to
//! `max_n` words) is counted once per record, per class. A phrase separates the classes when
//! its *document frequency* differs between them more than chance allows; the statistic is the
//! log-odds ratio with an informative Dirichlet prior of Monroe, Colaresi and Quinn ("Fightin'
//! Words", Political Analysis 16(4), 2008), computed on document frequencies:
//!
//! ```text
//! α_w   = a0 · (y_w⁺ + y_w⁻) / (n⁺ + n⁻)                 (prior: the phrase's pooled rate)
//! δ_w   = ln((y_w⁺ + α_w) / (n⁺ + a0 − y_w⁺ − α_w)) − ln((y_w⁻ + α_w) / (n⁻ + a0 − y_w⁻ − α_w))
//! σ²_w  ≈ 1/(y_w⁺ + α_w) + 1/(y_w⁻ + α_w)
//! z_w   = δ_w / σ_w
//! ```
//!
//! where `y_w±` counts the positive/negative records containing the phrase and `n±` the records
//! of each class. The prior shrinks rare phrases toward "no difference", so a phrase seen in three
//! positive records does not outrank one seen in eighty; `min_support` drops the rarest outright.
//! Candidates are ranked by `z`, phrases the current rules already match are left out, and each
//! comes with its precision, recall and the records its rule would move between tiers.
//!
//! Nothing here reads files: the CLI (`cli::rules_suggest`) feeds texts in.

use super::{tier_for, RuleSet, Thresholds, Tier};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Words too common to make a rule on their own, or to start or end a phrase.
const STOPWORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been",
    "before", "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has",
    "have", "he", "her", "his", "how", "i", "if", "in", "into", "is", "it", "its", "just", "may",
    "me", "more", "my", "no", "not", "now", "of", "on", "one", "only", "or", "our", "out", "over",
    "s", "she", "should", "so", "some", "such", "than", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "those", "to", "too", "up", "us", "very", "was", "we",
    "were", "what", "when", "where", "which", "while", "who", "will", "with", "would", "you",
    "your",
];

/// Knobs of the miner; the defaults suit a few thousand records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuggestOptions {
    /// Longest phrase, in words (1 to 3).
    pub max_n: usize,
    /// Least number of positive records a candidate must occur in.
    pub min_support: u32,
    /// Prior strength `a0` (in records).
    pub prior: f64,
    /// How many candidates to return on each side.
    pub top: usize,
    /// Also return phrases typical of the negative class, as negative-weight rules.
    pub negatives: bool,
}

impl Default for SuggestOptions {
    fn default() -> Self {
        SuggestOptions {
            max_n: 3,
            min_support: 5,
            prior: 10.0,
            top: 20,
            negatives: false,
        }
    }
}

/// Records moved by a candidate rule: (tier before, tier after) → [positives, negatives].
pub type Moves = BTreeMap<(Tier, Tier), [u32; 2]>;

/// One mined candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The phrase as counted: lowercase words joined by single spaces.
    pub phrase: String,
    /// Positive and negative records containing it.
    pub pos: u32,
    pub neg: u32,
    /// Smoothed log-odds ratio (positive: typical of the positive class) and its z-score.
    pub log_odds: f64,
    pub z: f64,
    /// Share of the records containing it that are positive, and share of positives containing it.
    pub precision: f64,
    pub recall: f64,
    /// Suggested weight (from the log-odds, rounded to 0.5; negative for negative evidence).
    pub weight: f32,
    /// Records whose tier would change if the rule were added with `weight`.
    pub moves: Moves,
}

impl Candidate {
    /// A rule name made of the phrase (`use after free` → `mined-use-after-free`).
    pub fn rule_name(&self) -> String {
        format!("mined-{}", self.phrase.replace(' ', "-"))
    }

    /// The regex of the rule: the words in order, with any run of non-word characters between
    /// them (the tokenizer's separators), word-bounded by the rule file.
    pub fn pattern(&self) -> String {
        self.phrase
            .split(' ')
            .map(regex::escape)
            .collect::<Vec<_>>()
            .join(r"\W+")
    }

    /// The candidate as a ready `[[rule]]` table, its figures in a comment above it.
    pub fn to_toml(&self, positive_label: &str) -> String {
        let mut moves = Vec::new();
        for ((from, to), [p, n]) in &self.moves {
            moves.push(format!(
                "{}→{} {} ({} {positive_label}, {} other)",
                from.as_str(),
                to.as_str(),
                p + n,
                p,
                n
            ));
        }
        let moves = if moves.is_empty() {
            "no tier changes".to_string()
        } else {
            moves.join(", ")
        };
        let category = if self.weight < 0.0 {
            "negative"
        } else {
            "mined"
        };
        format!(
            "# precision {:.2}, recall {:.3} ({} {positive_label} / {} other records), log-odds {:.2}, z {:.1}\n\
             # moves: {moves}\n\
             [[rule]]\n\
             name = \"{}\"\n\
             category = \"{category}\"\n\
             pattern = '{}'\n\
             weight = {:.1}\n\
             cap = 1\n",
            self.precision,
            self.recall,
            self.pos,
            self.neg,
            self.log_odds,
            self.z,
            self.rule_name(),
            self.pattern(),
            self.weight,
        )
    }
}

/// Lowercase ASCII word tokens (`[a-z0-9_]+`); every other byte separates. Tokens of digits
/// only, and tokens longer than 30 bytes (hashes, blobs), are dropped, which also breaks a
/// phrase across them.
pub fn tokens(text: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for raw in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if raw.is_empty() {
            continue;
        }
        if raw.len() > 30 || raw.bytes().all(|b| b.is_ascii_digit()) {
            out.push(None);
        } else {
            out.push(Some(raw.to_ascii_lowercase()));
        }
    }
    out
}

fn is_stopword(w: &str) -> bool {
    STOPWORDS.binary_search(&w).is_ok() || w.len() < 2
}

/// The distinct phrases of up to `max_n` words in `text`; phrases may not start or end with a
/// stopword (so `the overflow` and `overflow in` are not counted beside `overflow`).
pub fn phrases(text: &str, max_n: usize) -> HashSet<String> {
    let toks = tokens(text);
    let mut out = HashSet::new();
    for i in 0..toks.len() {
        for n in 1..=max_n.clamp(1, 3) {
            if i + n > toks.len() {
                break;
            }
            let window = &toks[i..i + n];
            if window.iter().any(Option::is_none) {
                break;
            }
            let words: Vec<&str> = window.iter().map(|t| t.as_deref().unwrap()).collect();
            if is_stopword(words[0]) || is_stopword(words[n - 1]) {
                continue;
            }
            out.insert(words.join(" "));
        }
    }
    out
}

/// Smoothed log-odds ratio and its z-score for a phrase in `pos` of `n_pos` positive and `neg`
/// of `n_neg` negative records, with prior strength `a0` (see the module docs).
pub fn log_odds(pos: u32, neg: u32, n_pos: u32, n_neg: u32, a0: f64) -> (f64, f64) {
    let (y1, y2) = (pos as f64, neg as f64);
    let (n1, n2) = (n_pos as f64, n_neg as f64);
    let total = (n1 + n2).max(1.0);
    let alpha = (a0 * (y1 + y2) / total).max(1e-3);
    let odds = |y: f64, n: f64| ((y + alpha) / (n + a0 - y - alpha).max(1e-9)).ln();
    let delta = odds(y1, n1) - odds(y2, n2);
    let var = 1.0 / (y1 + alpha) + 1.0 / (y2 + alpha);
    (delta, delta / var.sqrt())
}

/// Suggested weight for a log-odds ratio: the ratio itself, rounded to 0.5 and kept within
/// ±4.5 (a keep on its own at most), never 0.
pub fn weight_for(log_odds: f64) -> f32 {
    let w = ((log_odds * 2.0).round() / 2.0).clamp(-4.5, 4.5) as f32;
    if w == 0.0 {
        0.5_f32.copysign(log_odds as f32)
    } else {
        w
    }
}

struct Doc {
    positive: bool,
    score: f32,
    chars: usize,
    scored: bool,
    phrases: Vec<u32>,
}

/// Labelled records, counted as they come.
#[derive(Default)]
pub struct Corpus {
    ids: HashMap<String, u32>,
    names: Vec<String>,
    /// Records containing each phrase: [positive, negative].
    df: Vec<[u32; 2]>,
    docs: Vec<Doc>,
    max_n: usize,
}

impl Corpus {
    pub fn new(max_n: usize) -> Corpus {
        Corpus {
            max_n: max_n.clamp(1, 3),
            ..Default::default()
        }
    }

    /// Add one record: its text, its class, and its current rule score (for the moves).
    pub fn add(&mut self, text: &str, positive: bool, score: f32, scored: bool) {
        let mut ids = Vec::new();
        for p in phrases(text, self.max_n) {
            let id = match self.ids.get(&p) {
                Some(&id) => id,
                None => {
                    let id = self.names.len() as u32;
                    self.names.push(p.clone());
                    self.df.push([0, 0]);
                    self.ids.insert(p, id);
                    id
                }
            };
            self.df[id as usize][usize::from(!positive)] += 1;
            ids.push(id);
        }
        self.docs.push(Doc {
            positive,
            score,
            chars: text.chars().count(),
            scored,
            phrases: ids,
        });
    }

    /// Records added so far: [positive, negative].
    /// The longest phrase counted, in words.
    pub fn max_n(&self) -> usize {
        self.max_n
    }

    pub fn class_sizes(&self) -> [u32; 2] {
        let pos = self.docs.iter().filter(|d| d.positive).count() as u32;
        [pos, self.docs.len() as u32 - pos]
    }

    /// The best candidates, strongest first: phrases typical of the positive class (and, with
    /// `opts.negatives`, of the negative class after them) that no rule of `rules` matches.
    pub fn suggest(
        &self,
        rules: &RuleSet,
        t: &Thresholds,
        opts: &SuggestOptions,
    ) -> Vec<Candidate> {
        let [n_pos, n_neg] = self.class_sizes();
        if n_pos == 0 || n_neg == 0 {
            return Vec::new();
        }
        let mut scored: Vec<(u32, f64, f64)> = Vec::new();
        for (id, &[p, n]) in self.df.iter().enumerate() {
            let (d, z) = log_odds(p, n, n_pos, n_neg, opts.prior);
            let support_ok = if z > 0.0 {
                p >= opts.min_support
            } else {
                opts.negatives && n >= opts.min_support
            };
            if support_ok {
                scored.push((id as u32, d, z));
            }
        }
        // Strongest first. On a tie the longer phrase goes first: with the same records it is
        // the more specific rule (`double fetch race` before `race`). Then by phrase, so the
        // output is stable.
        let words = |id: u32| self.names[id as usize].split(' ').count();
        scored.sort_by(|a, b| {
            b.2.abs()
                .total_cmp(&a.2.abs())
                .then_with(|| words(b.0).cmp(&words(a.0)))
                .then_with(|| self.names[a.0 as usize].cmp(&self.names[b.0 as usize]))
        });
        // A phrase alone is a one-line text: a `max_lines` rule (a title rule) matching it says
        // nothing about whether the rules already see it in ordinary text.
        let covered = |phrase: &str| {
            rules
                .match_spans(phrase)
                .iter()
                .any(|(_, rule)| rule.max_lines.is_none())
        };
        let mut picked: Vec<(u32, f64, f64)> = Vec::new();
        let (mut n_up, mut n_down) = (0, 0);
        for (id, d, z) in scored {
            let side = if z > 0.0 { &mut n_up } else { &mut n_down };
            if *side >= opts.top || covered(&self.names[id as usize]) {
                continue;
            }
            // A longer phrase adds little beside a picked phrase it contains, or that contains it
            // with nearly the same records: keep the first (stronger) one.
            let name = &self.names[id as usize];
            if picked.iter().any(|(o, _, _)| {
                let other = &self.names[*o as usize];
                contains_words(name, other) || contains_words(other, name)
            }) {
                continue;
            }
            *side += 1;
            picked.push((id, d, z));
            if n_up >= opts.top && (!opts.negatives || n_down >= opts.top) {
                break;
            }
        }

        // Moves of the picked candidates, in one pass over the records.
        let index: HashMap<u32, usize> = picked
            .iter()
            .enumerate()
            .map(|(i, (id, _, _))| (*id, i))
            .collect();
        let weights: Vec<f32> = picked.iter().map(|(_, d, _)| weight_for(*d)).collect();
        let mut moves: Vec<Moves> = vec![Moves::new(); picked.len()];
        for doc in &self.docs {
            let before = tier_for(doc.score, doc.chars, doc.scored, t);
            for id in &doc.phrases {
                if let Some(&i) = index.get(id) {
                    let after = tier_for(doc.score + weights[i], doc.chars, doc.scored, t);
                    if after != before {
                        moves[i].entry((before, after)).or_default()[usize::from(!doc.positive)] +=
                            1;
                    }
                }
            }
        }
        let mut out: Vec<Candidate> = picked
            .into_iter()
            .zip(moves)
            .zip(weights)
            .map(|(((id, d, z), moves), weight)| {
                let [p, n] = self.df[id as usize];
                Candidate {
                    phrase: self.names[id as usize].clone(),
                    pos: p,
                    neg: n,
                    log_odds: d,
                    z,
                    precision: p as f64 / (p + n).max(1) as f64,
                    recall: p as f64 / n_pos as f64,
                    weight,
                    moves,
                }
            })
            .collect();
        // Positive candidates first, then negative ones, each strongest first.
        out.sort_by(|a, b| {
            (a.z < 0.0)
                .cmp(&(b.z < 0.0))
                .then_with(|| b.z.abs().total_cmp(&a.z.abs()))
        });
        out
    }
}

/// Whether the words of `inner` appear as consecutive words of `outer`.
fn contains_words(outer: &str, inner: &str) -> bool {
    outer == inner
        || outer.starts_with(&format!("{inner} "))
        || outer.ends_with(&format!(" {inner}"))
        || outer.contains(&format!(" {inner} "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopwords_are_sorted_for_binary_search() {
        let mut sorted = STOPWORDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, STOPWORDS);
    }

    #[test]
    fn tokens_are_lowercase_words_and_numbers_break_phrases() {
        let t = tokens("Fix heap-overflow in v2 (CVE 2024)!");
        let words: Vec<_> = t.iter().map(|t| t.as_deref()).collect();
        assert_eq!(
            words,
            vec![
                Some("fix"),
                Some("heap"),
                Some("overflow"),
                Some("in"),
                Some("v2"),
                Some("cve"),
                None
            ]
        );
    }

    #[test]
    fn phrases_skip_stopword_edges_and_numbers() {
        let p = phrases("Fix the heap overflow in 2024 parser", 3);
        for want in [
            "fix",
            "heap",
            "overflow",
            "heap overflow",
            "parser",
            "fix the heap",
        ] {
            assert!(p.contains(want), "{want} missing from {p:?}");
        }
        for not in [
            "the",
            "the heap",
            "overflow in",
            "in",
            "2024",
            "overflow in 2024 parser",
        ] {
            assert!(!p.contains(not), "{not} should not be a phrase");
        }
        assert!(
            phrases("a b c", 1).is_empty(),
            "one-letter words are dropped"
        );
    }

    #[test]
    fn log_odds_is_signed_symmetric_and_shrunk_for_rare_phrases() {
        let (d, z) = log_odds(40, 2, 100, 100, 10.0);
        assert!(d > 2.0 && z > 5.0, "{d} {z}");
        let (d2, z2) = log_odds(2, 40, 100, 100, 10.0);
        assert!((d + d2).abs() < 1e-9 && (z + z2).abs() < 1e-9);
        // Same ratio, fewer records: smaller z (less evidence), and the prior shrinks δ.
        let (d_small, z_small) = log_odds(4, 0, 100, 100, 10.0);
        let (d_big, z_big) = log_odds(40, 0, 100, 100, 10.0);
        assert!(z_small < z_big && d_small < d_big);
        // Equal rates: no difference.
        let (d0, _) = log_odds(10, 20, 100, 200, 10.0);
        assert!(d0.abs() < 1e-9, "{d0}");
    }

    #[test]
    fn weights_are_rounded_bounded_and_never_zero() {
        assert_eq!(weight_for(2.26), 2.5);
        assert_eq!(weight_for(9.0), 4.5);
        assert_eq!(weight_for(-7.0), -4.5);
        assert_eq!(weight_for(0.1), 0.5);
        assert_eq!(weight_for(-0.1), -0.5);
    }

    fn one_rule() -> RuleSet {
        RuleSet::from_toml(
            "[[rule]]\nname = \"overflow\"\ncategory = \"v\"\npattern = 'overflow'\nweight = 3.0\n",
            "t.toml",
        )
        .unwrap()
    }

    #[test]
    fn suggest_finds_the_separating_phrase_and_leaves_out_covered_ones() {
        let rules = one_rule();
        let t = Thresholds::default();
        let mut c = Corpus::new(3);
        let verbs = ["avoid", "prevent", "stop"];
        let parts = ["parser", "decoder", "reader", "socket", "timer"];
        for i in 0..30 {
            // Positives: "stack smash" (not covered) and "overflow" (covered by the rule).
            let text = format!(
                "{}: {} a stack smash and an overflow",
                parts[i % 5],
                verbs[i % 3]
            );
            let s = rules.score(&text).score;
            c.add(&text, true, s, true);
        }
        for i in 0..60 {
            // Negatives use "stack" and "smash" apart, never together.
            let text = format!(
                "{}: print the stack in the manual page; smash hit {i}",
                parts[i % 5]
            );
            c.add(&text, false, 0.0, true);
        }
        let opts = SuggestOptions {
            top: 3,
            negatives: true,
            ..Default::default()
        };
        let got = c.suggest(&rules, &t, &opts);
        let names: Vec<&str> = got.iter().map(|c| c.phrase.as_str()).collect();
        assert!(!names.iter().any(|n| n.contains("overflow")), "{names:?}");
        let smash = got
            .iter()
            .find(|c| c.phrase == "stack smash")
            .expect("stack smash");
        assert_eq!((smash.pos, smash.neg), (30, 0));
        assert_eq!(smash.precision, 1.0);
        assert!((smash.recall - 1.0).abs() < 1e-9);
        assert!(smash.weight > 0.0);
        // Positives already score 3.0 (verify); the mined weight lifts them to keep.
        assert_eq!(smash.moves.get(&(Tier::Verify, Tier::Keep)), Some(&[30, 0]));
        // The negative side names the docs words, with negative weights.
        let neg = got
            .iter()
            .find(|c| c.z < 0.0)
            .expect("a negative candidate");
        assert!(neg.weight < 0.0 && neg.pos == 0, "{neg:?}");
        // And the rule text parses as a rule file.
        let toml = format!("{}\n{}", smash.to_toml("security"), neg.to_toml("security"));
        let parsed = RuleSet::from_toml(&toml, "mined.toml").expect("mined rules compile");
        assert!(parsed.score("a Stack-Smash here").score > 0.0);
    }

    #[test]
    fn no_candidates_without_both_classes() {
        let mut c = Corpus::new(2);
        c.add("heap spray", true, 0.0, true);
        assert!(c
            .suggest(
                &one_rule(),
                &Thresholds::default(),
                &SuggestOptions::default()
            )
            .is_empty());
    }
}
