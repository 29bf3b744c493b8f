//! Duplicates: one record per fact across feeds.
//!
//! Records are grouped when they share a natural id ([`natural_keys`]: a CVE id, a STIX id, an
//! ATT&CK id, `CAPEC-n`, `CWE-n`), when their extracted texts are equal (the content hash the
//! store keeps), or when their MinHash signatures ([`minhash`]) estimate a Jaccard similarity
//! of word shingles at or above the threshold among LSH candidates ([`lsh`]). The grouping
//! ([`group::Grouper`]) streams: a fixed amount of memory per record, groups as the records
//! arrive. A pure module: the engine feeds it, the store keeps its inputs.

pub mod group;
pub mod lsh;
pub mod minhash;
pub mod planted;

use crate::record::SourceKind;
use serde::{Deserialize, Serialize};

/// Default Jaccard threshold for near-duplicate text (chosen from measurement: README
/// "Duplicates").
pub const DEFAULT_THRESHOLD: f32 = 0.7;

/// How records are grouped and which member represents a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Estimated Jaccard similarity at or above which two texts are near-duplicates (above 1:
    /// only ids and equal texts group).
    pub threshold: f32,
    /// Source preference for the representative, best first; sources not named come after.
    pub prefer: Vec<SourceKind>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            threshold: DEFAULT_THRESHOLD,
            prefer: vec![
                SourceKind::Cve5,
                SourceKind::NvdApi2,
                SourceKind::NvdLegacy,
                SourceKind::Stix,
                SourceKind::Capec,
                SourceKind::Cwe,
                SourceKind::Json,
            ],
        }
    }
}

impl Settings {
    pub fn rank(&self, s: SourceKind) -> u8 {
        self.prefer
            .iter()
            .position(|p| *p == s)
            .unwrap_or(self.prefer.len()) as u8
    }

    /// A threshold that can be used: within (0, 1], or above 1 to turn near-duplicates off.
    pub fn validate(&self) -> Result<(), String> {
        if self.threshold.is_nan() || self.threshold <= 0.0 || !self.threshold.is_finite() {
            return Err(format!(
                "dedup threshold {} must be a number above 0 (at most 1; above 1 turns \
                 near-duplicate text off)",
                self.threshold
            ));
        }
        Ok(())
    }

    /// Parse `cve5,nvd-api2,nvd-legacy` into a preference order.
    pub fn parse_prefer(s: &str) -> Result<Vec<SourceKind>, String> {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(|x| {
                SourceKind::parse(x).ok_or_else(|| {
                    format!(
                        "unknown source `{x}` in the dedup preference (one of: {})",
                        SourceKind::ALL.map(|k| k.as_str()).join(", ")
                    )
                })
            })
            .collect()
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `CVE-2024-1234` in any case, normalised.
fn cve_key(id: &str) -> Option<String> {
    let up = id.trim().to_ascii_uppercase();
    let rest = up.strip_prefix("CVE-")?;
    let (y, n) = rest.split_once('-')?;
    (y.len() == 4 && is_digits(y) && is_digits(n)).then_some(up)
}

/// `CAPEC-66`, `CWE-79`.
fn numbered_key(id: &str, prefix: &str) -> Option<String> {
    let up = id.trim().to_ascii_uppercase();
    let n = up.strip_prefix(prefix)?.strip_prefix('-')?;
    is_digits(n).then_some(up)
}

/// An ATT&CK id at the start of a STIX record's first line (`T1059.001 PowerShell`).
fn attack_key(text: &str) -> Option<String> {
    let tok = text.split_whitespace().next()?;
    let b = tok.as_bytes();
    let letters = b.iter().take_while(|c| c.is_ascii_uppercase()).count();
    if !(1..=2).contains(&letters) {
        return None;
    }
    let (num, sub) = match tok[letters..].split_once('.') {
        Some((n, s)) => (n, Some(s)),
        None => (&tok[letters..], None),
    };
    let ok = num.len() == 4 && is_digits(num) && sub.is_none_or(|s| s.len() == 3 && is_digits(s));
    ok.then(|| format!("attack:{tok}"))
}

/// The start of a record's text that [`natural_keys`] looks at (an ATT&CK id on the first
/// line): its first `TEXT_HEAD` characters, borrowed. The store keeps the same cut in SQL.
pub fn text_head(text: &str) -> &str {
    let end = text
        .char_indices()
        .nth(crate::store::groups::TEXT_HEAD)
        .map_or(text.len(), |(i, _)| i);
    &text[..end]
}

/// The natural ids a record is known by. Fallback ids (`file#index`) and the free-form ids of
/// plain JSON records are not natural ids, unless they are CVE, CAPEC or CWE ids.
pub fn natural_keys(source: SourceKind, id: &str, text_head: &str) -> Vec<String> {
    let mut keys = Vec::new();
    match source {
        SourceKind::NvdApi2 | SourceKind::NvdLegacy | SourceKind::Cve5 => {
            keys.extend(cve_key(id));
        }
        SourceKind::Capec => keys.extend(numbered_key(id, "CAPEC")),
        SourceKind::Cwe => keys.extend(numbered_key(id, "CWE")),
        SourceKind::Stix => {
            if id.contains("--") && !id.contains('#') {
                keys.push(id.to_string());
            }
            keys.extend(attack_key(text_head));
        }
        SourceKind::Json => {
            keys.extend(
                cve_key(id)
                    .or_else(|| numbered_key(id, "CAPEC"))
                    .or_else(|| numbered_key(id, "CWE")),
            );
        }
    }
    keys
}

/// 64-bit key of a natural id.
pub fn key_hash(k: &str) -> u64 {
    let h = blake3::hash(k.as_bytes());
    u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// The grouper's item for a record.
pub fn item(
    source: SourceKind,
    id: &str,
    text_head: &str,
    content_hash: &[u8; 32],
    text_len: usize,
    sig: Option<minhash::Signature>,
) -> group::Item {
    group::Item {
        keys: natural_keys(source, id, text_head)
            .iter()
            .map(|k| key_hash(k))
            .collect(),
        hash: u64::from_le_bytes(content_hash[..8].try_into().expect("8 bytes")),
        source,
        text_len: text_len.min(u32::MAX as usize) as u32,
        sketch: sig.as_ref().map(group::Sketch::of).unwrap_or_default(),
        band_keys: sig.as_ref().map(lsh::band_keys).unwrap_or_default(),
        sig,
        split: false,
        pinned: false,
        order: 0,
    }
}

/// The grouper's item for a record read from a file: its natural ids, content hash and the
/// signature of its text. The caller sets `order` (how it numbers files differs).
pub fn record_item(
    rec: &crate::record::Record,
    content_hash: &[u8; 32],
    text_len: usize,
) -> group::Item {
    item(
        rec.source,
        &rec.id,
        text_head(&rec.text),
        content_hash,
        text_len,
        minhash::signature(&rec.text),
    )
}

/// The representative tie-break of a record: its file's number, then its index in the file.
pub fn order_key(file_id: i64, index: u64) -> u64 {
    ((file_id.max(0) as u64) << 40) | (index & ((1 << 40) - 1))
}

#[cfg(test)]
mod tests {
    use super::group::{Grouper, Via};
    use super::*;

    #[test]
    fn natural_keys_by_source() {
        assert_eq!(
            natural_keys(SourceKind::NvdApi2, "CVE-2024-0001", ""),
            vec!["CVE-2024-0001"]
        );
        assert_eq!(
            natural_keys(SourceKind::Json, "cve-2024-0001", ""),
            vec!["CVE-2024-0001"]
        );
        assert!(natural_keys(SourceKind::Json, "17", "").is_empty());
        assert!(natural_keys(SourceKind::NvdLegacy, "feed.json#3", "").is_empty());
        assert_eq!(
            natural_keys(SourceKind::Capec, "CAPEC-66", ""),
            vec!["CAPEC-66"]
        );
        assert_eq!(
            natural_keys(
                SourceKind::Stix,
                "attack-pattern--1",
                "T1059.001 PowerShell"
            ),
            vec!["attack-pattern--1", "attack:T1059.001"]
        );
        assert_eq!(
            natural_keys(SourceKind::Stix, "relationship--9", "uses"),
            vec!["relationship--9"]
        );
        assert!(attack_key("TA0001 Initial Access").is_some());
        assert!(attack_key("The 1234 thing").is_none());
    }

    fn it(source: SourceKind, id: &str, text: &str) -> group::Item {
        let h = *blake3::hash(text.as_bytes()).as_bytes();
        item(source, id, text, &h, text.len(), minhash::signature(text))
    }

    #[test]
    fn a_cve_in_three_feeds_is_one_group_with_the_cve5_record_as_representative() {
        let mut g = Grouper::new(Settings::default());
        let text = "A use after free in the renderer allows a remote attacker to run code.";
        g.push(&it(SourceKind::NvdLegacy, "CVE-2024-0001", text));
        g.push(&it(
            SourceKind::NvdApi2,
            "CVE-2024-0001",
            "different wording entirely here",
        ));
        let changed = g.push(&it(SourceKind::Cve5, "CVE-2024-0001", "x"));
        // The CVE 5 record (position 2) is the best source: everyone now follows it.
        assert_eq!(changed.len(), 2);
        assert_eq!(g.reps(), vec![2, 2, 2]);
        assert_eq!(g.groups(), 1);
        assert_eq!(g.via(1), Via::Id);
        // A fourth record with an equal text but another id joins by text.
        g.push(&it(SourceKind::Json, "doc-4", text));
        assert_eq!(g.rep_of(3), 2);
        assert_eq!(g.via(3), Via::Text);
        assert_eq!(g.members(3).len(), 4);
    }

    #[test]
    fn near_duplicates_group_and_unrelated_texts_do_not() {
        let mut g = Grouper::new(Settings::default());
        let a = "SQL injection in the login form of Acme Portal 3.2 lets remote attackers \
                 read the user table through the username parameter of login.php";
        let b = "SQL injection in the login form of Acme Portal 3.2 lets remote attackers \
                 read the user table through the username parameter of signin.php";
        let c = "Cross-site scripting in the comment widget of Foo Blog lets attackers \
                 inject script into pages other visitors open";
        g.push(&it(SourceKind::Json, "a", a));
        g.push(&it(SourceKind::Json, "b", b));
        g.push(&it(SourceKind::Json, "c", c));
        assert_eq!(g.rep_of(1), g.rep_of(0));
        assert_eq!(g.via(1), Via::Near);
        assert_eq!(g.rep_of(2), 2);
        // The longer text represents (equal sources).
        assert!(g.similarity(0, 1).unwrap() >= DEFAULT_THRESHOLD);
    }

    #[test]
    fn a_split_record_stays_alone_and_a_pinned_one_represents() {
        let mut g = Grouper::new(Settings::default());
        let mut a = it(SourceKind::NvdApi2, "CVE-2024-0002", "one");
        g.push(&a);
        a.split = true;
        g.push(&a);
        assert_eq!(g.reps(), vec![0, 1]);
        let mut c = it(SourceKind::NvdLegacy, "CVE-2024-0002", "three");
        c.pinned = true;
        g.push(&c);
        assert_eq!(g.reps(), vec![2, 1, 2]);
    }

    #[test]
    fn groups_do_not_depend_on_arrival_order() {
        let texts: Vec<(SourceKind, String, String)> = super::planted::generate(400, 7)
            .records
            .into_iter()
            .map(|r| (SourceKind::Json, r.id, r.text))
            .collect();
        let run = |order: &[usize]| {
            let mut g = Grouper::new(Settings::default());
            for &i in order {
                let (s, id, t) = &texts[i];
                g.push(&it(*s, id, t));
            }
            // Canonical: for each record (by original index), the smallest original index
            // in its group.
            let mut pos_of = vec![0u32; texts.len()];
            for (p, &i) in order.iter().enumerate() {
                pos_of[i] = p as u32;
            }
            (0..texts.len())
                .map(|i| {
                    g.members(pos_of[i])
                        .into_iter()
                        .map(|p| order[p as usize])
                        .min()
                        .unwrap()
                })
                .collect::<Vec<_>>()
        };
        let fwd: Vec<usize> = (0..texts.len()).collect();
        let rev: Vec<usize> = (0..texts.len()).rev().collect();
        assert_eq!(run(&fwd), run(&rev));
    }
}
