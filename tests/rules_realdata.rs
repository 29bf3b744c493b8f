//! The default rules on ../shared/realdata through the real readers: the targets of the issue.
//! - at least 99% of non-rejected CVEs (NVD API 2.0, legacy NVD 1.1, CVE 5), ATT&CK
//!   attack-patterns (not revoked or deprecated), non-deprecated CAPEC attack patterns and CWE
//!   weaknesses land in keep;
//! - at most 5% of Debian changelog entries with neither `suite_is_security` nor
//!   `mentions_cve` do.
//!
//! Skips with a note when realdata is missing.

use cyberfilter::ingest::{discover, read_file, IngestOptions};
use cyberfilter::rules::{tier_for, RuleSet, Tier};
use cyberfilter::{Record, SourceKind};
use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

fn realdata() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/realdata");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("NOTE: {} is missing; skipping", dir.display());
        None
    }
}

fn records(inputs: &[PathBuf]) -> Vec<Record> {
    let mut out = Vec::new();
    for file in discover(inputs).expect("discover") {
        let summary = read_file(&file, &IngestOptions::default(), &mut |r| {
            out.push(r.unwrap_or_else(|e| panic!("ingest error: {e}")));
            ControlFlow::Continue(())
        });
        assert_eq!(summary.errors, 0, "{}", file.display());
    }
    out
}

/// NVD's newer rejected records carry the reason in their description rather than a status
/// the readers flag; they are rejected all the same.
fn is_rejected(r: &Record) -> bool {
    r.flags.rejected || r.text.contains("\nRejected reason:") || r.text.contains("** REJECT **")
}

#[derive(Default, Debug)]
struct Tally {
    n: usize,
    tiers: [usize; 3],
}

impl Tally {
    fn add(&mut self, t: Tier) {
        self.n += 1;
        self.tiers[match t {
            Tier::Keep => 0,
            Tier::Verify => 1,
            Tier::Reject => 2,
        }] += 1;
    }
    fn keep_share(&self) -> f64 {
        self.tiers[0] as f64 / self.n.max(1) as f64
    }
}

#[test]
fn default_rules_meet_the_keep_targets_on_realdata() {
    let Some(root) = realdata() else { return };
    let rules = RuleSet::default_rules();
    let t = rules.thresholds();
    let tier = |r: &Record| {
        let s = rules.score(&r.text).score;
        tier_for(s, r.text.chars().count(), r.scored, &t)
    };

    let mut groups: BTreeMap<&str, Tally> = BTreeMap::new();
    for r in records(&[root.join("nvd"), root.join("cve5")]) {
        if is_rejected(&r) {
            continue;
        }
        let g = match r.source {
            SourceKind::NvdApi2 => "nvd-api2",
            SourceKind::NvdLegacy => "nvd-legacy",
            SourceKind::Cve5 => "cve5",
            other => panic!("unexpected source {other} in nvd/cve5"),
        };
        groups.entry(g).or_default().add(tier(&r));
    }
    for r in records(&[root.join("attack")]) {
        if r.kind == "attack-pattern" && !r.flags.revoked && !r.flags.deprecated {
            groups.entry("attack-pattern").or_default().add(tier(&r));
        }
    }
    for r in records(&[root.join("capec"), root.join("cwe")]) {
        if r.flags.deprecated {
            continue;
        }
        match (r.source, r.kind.as_str()) {
            (SourceKind::Capec, "Attack_Pattern") => {
                groups.entry("capec").or_default().add(tier(&r))
            }
            (SourceKind::Cwe, "Weakness") => groups.entry("cwe").or_default().add(tier(&r)),
            _ => {}
        }
    }

    // Debian: the weak signals come from the file itself.
    let deb = root.join("nonsecurity/debian-bookworm-changelog-entries.jsonl");
    let signals: HashMap<String, bool> = std::fs::read_to_string(&deb)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let sec =
                v["suite_is_security"].as_bool().unwrap() || v["mentions_cve"].as_bool().unwrap();
            (v["id"].as_str().unwrap().to_string(), sec)
        })
        .collect();
    for r in records(&[deb]) {
        let g = if signals[&r.id] {
            "debian-security-signal"
        } else {
            "debian-neither"
        };
        groups.entry(g).or_default().add(tier(&r));
    }

    for (g, tally) in &groups {
        eprintln!(
            "{g:<24} n={:<5} keep={:<5} verify={:<5} reject={:<5} keep={:.1}%",
            tally.n,
            tally.tiers[0],
            tally.tiers[1],
            tally.tiers[2],
            100.0 * tally.keep_share()
        );
    }
    let expected_sizes = [
        ("nvd-api2", 2000),
        ("nvd-legacy", 2800),
        ("cve5", 600),
        ("attack-pattern", 800),
        ("capec", 550),
        ("cwe", 900),
        ("debian-neither", 2200),
    ];
    for (g, min_n) in expected_sizes {
        let tally = &groups[g];
        assert!(tally.n >= min_n, "{g}: only {} records read", tally.n);
        if g == "debian-neither" {
            assert!(
                tally.keep_share() <= 0.05,
                "{g}: {:.2}% kept, more than 5%",
                100.0 * tally.keep_share()
            );
        } else {
            assert!(
                tally.keep_share() >= 0.99,
                "{g}: only {:.2}% kept, below 99%",
                100.0 * tally.keep_share()
            );
        }
    }
}
