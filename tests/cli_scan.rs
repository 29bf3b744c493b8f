//! The real `cyberfilter` binary: scan output lines and summary, exit codes, `rules check`
//! listing every error, `eval` on a labelled file, and `gen-nvd` feeding `scan`.

mod common;

use common::{cyberfilter as run, json, json_lines as lines, root, stderr};
use std::path::Path;

#[test]
fn scan_prints_one_json_line_per_record_and_a_summary() {
    let nvd = root().join("sample_data/nvd/nvd-api2.0-page0-sample.json");
    let debian = root().join("sample_data/nonsecurity/debian-bookworm-changelog-sample.jsonl");
    let out = run(&["scan", nvd.to_str().unwrap(), debian.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let recs = lines(&out);
    assert!(recs.len() > 20);
    for r in &recs {
        for key in ["id", "source", "kind", "tier", "score", "rules", "at"] {
            assert!(r.get(key).is_some(), "missing {key} in {r}");
        }
        assert!(["keep", "verify", "reject"].contains(&r["tier"].as_str().unwrap()));
        assert!(r.get("text").is_none(), "text only with --text");
    }
    let cves: Vec<_> = recs.iter().filter(|r| r["source"] == "nvd-api2").collect();
    assert!(!cves.is_empty());
    let kept = cves.iter().filter(|r| r["tier"] == "keep").count();
    assert!(
        kept * 10 >= cves.len() * 9,
        "{kept} of {} CVEs kept",
        cves.len()
    );
    let cve = cves.iter().find(|r| r["tier"] == "keep").unwrap();
    assert!(cve["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "cve-id"));
    assert!(cve["score"].as_f64().unwrap() >= 4.5);

    let err = stderr(&out);
    assert!(err.contains("nvd-api2"), "{err}");
    assert!(err.contains("json"), "{err}");
    assert!(err.contains("records/s") && err.contains("MB/s"), "{err}");
    assert!(err.contains("2 files"), "{err}");
}

#[test]
fn scan_text_flag_and_threshold_overrides() {
    let nvd = root().join("sample_data/nvd/nvd-api2.0-page0-sample.json");
    let nvd = nvd.to_str().unwrap();
    let out = run(&["scan", "--text", "--high", "1000", "--low", "999", nvd]);
    assert_eq!(out.status.code(), Some(0));
    let recs = lines(&out);
    assert!(recs.iter().all(|r| r["tier"] == "reject"));
    assert!(recs
        .iter()
        .all(|r| r["text"].as_str().unwrap().starts_with("CVE-")));

    let out = run(&["scan", "--high", "1", "--low", "2", nvd]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "low above high is a usage error"
    );
    assert!(stderr(&out).contains("is above high"));
}

#[test]
fn scan_reports_input_errors_and_exits_65_but_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.json");
    std::fs::write(&bad, br#"{"vulnerabilities":[{"cve":{"id":"CVE-2024-1","descriptions":[{"lang":"en","value":"A heap overflow lets remote attackers execute arbitrary code."}]}},{"cve":"#).unwrap();
    let good = root().join("sample_data/nvd/nvd-api2.0-page0-sample.json");
    let out = run(&["scan", bad.to_str().unwrap(), good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("broken.json"), "error names the file: {err}");
    let recs = lines(&out);
    assert!(
        recs.iter().any(|r| r["id"] == "CVE-2024-1"),
        "records before the break are kept"
    );
    assert!(recs.len() > 10, "the good file is still read");
}

#[test]
fn scan_usage_and_missing_inputs() {
    assert_eq!(run(&["scan"]).status.code(), Some(2));
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
    let out = run(&["scan", "/nonexistent/feed.json"]);
    assert_eq!(out.status.code(), Some(66), "{}", stderr(&out));
}

#[test]
fn single_thread_and_reader_thread_agree() {
    let dir = root().join("sample_data");
    let a = run(&["scan", dir.to_str().unwrap()]);
    let b = run(&["scan", "--single-thread", dir.to_str().unwrap()]);
    assert_eq!(a.status.code(), b.status.code());
    assert_eq!(a.stdout, b.stdout);
    assert!(lines(&a).len() > 300);
}

const BROKEN_RULES: &str = r#"
[thresholds]
high = 2
low = 5

[[rule]]
name = "fine"
category = "vulnerability"
pattern = 'exploit'
weight = 3

[[rule]]
name = "bad-regex"
category = "vulnerability"
pattern = 'over(flow'
weight = 2

[[rule]]
name = "fine"
category = "attack"
pattern = 'attacker'
weight = 0

[[rule]]
name = "typo"
category = "attack"
patern = 'malware'
weight = 1
"#;

#[test]
fn rules_check_lists_every_error_with_rule_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(&file, BROKEN_RULES).unwrap();
    let out = run(&["rules", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for needle in [
        "`low` (5) must not be above `high` (2)",
        "rule `bad-regex`: bad pattern",
        "rule `fine`: `weight` is 0",
        "rule `fine`: duplicate rule name",
        "rule `typo`: unknown key `patern`",
        "rule `typo`: missing `pattern`",
        "6 errors",
    ] {
        assert!(err.contains(needle), "no {needle:?} in:\n{err}");
    }

    let default = root().join("rules/default.toml");
    let out = run(&["rules", "check", "--list", default.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(": ok,") && text.contains("cve-id"), "{text}");

    // A scan with the broken file refuses to start.
    let nvd = root().join("sample_data/nvd/nvd-api2.0-page0-sample.json");
    let out = run(&[
        "scan",
        "--rules",
        file.to_str().unwrap(),
        nvd.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad-regex"));
}

#[test]
fn eval_reports_prf_confusion_and_sweep() {
    let arxiv = root().join("sample_data/arxiv/arxiv-cs-sample100_albertomontero.labelled.jsonl");
    let a = arxiv.to_str().unwrap();
    let out = run(&[
        "eval",
        a,
        "--label-field",
        "label",
        "--positive",
        "security",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "keep+verify",
        "precision",
        "recall",
        "F1 peak",
        "best pair",
        "reject",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }

    let out = run(&[
        "eval",
        a,
        "--label-field",
        "label",
        "--positive",
        "security",
        "--json",
    ]);
    let v = json(&out);
    let n = v["records"].as_u64().unwrap();
    let confusion: u64 = v["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()))
        .sum();
    assert_eq!(confusion, n, "the confusion matrix covers every record");
    assert!(v["positives"].as_u64().unwrap() >= 1);
    let f1 = v["keep"]["f1"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&f1));
    assert!(!v["sweep"].as_array().unwrap().is_empty());

    assert_eq!(
        run(&["eval", a]).status.code(),
        Some(2),
        "label flags are required"
    );
}

#[test]
fn gen_nvd_output_scans_cleanly_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let f1 = dir.path().join("a.json");
    let f2 = dir.path().join("b.json");
    for f in [&f1, &f2] {
        let out = run(&[
            "gen-nvd",
            "--size",
            "300K",
            "--seed",
            "9",
            f.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let bytes = std::fs::read(&f1).unwrap();
    assert_eq!(bytes, std::fs::read(&f2).unwrap());
    assert!(bytes.len() >= 300 * 1024 && bytes.len() < 310 * 1024);

    let out = run(&["scan", f1.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let recs = lines(&out);
    assert!(recs.len() > 100);
    assert!(recs.iter().all(|r| r["source"] == "nvd-api2"));
    let kept = recs.iter().filter(|r| r["tier"] == "keep").count();
    assert!(kept * 100 >= recs.len() * 85, "{kept} of {}", recs.len());
    assert!(Path::new(&f1).exists());
}

#[test]
fn scan_groups_prints_one_line_per_duplicate_group() {
    let data = root().join("sample_data");
    let out = run(&["scan", data.to_str().unwrap(), "--groups"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let groups = lines(&out);
    assert!(!groups.is_empty());
    let mut ids = std::collections::HashSet::new();
    for g in &groups {
        let members = g["members"].as_array().unwrap();
        assert!(members.len() >= 2, "{g}");
        assert_eq!(g["size"], members.len());
        // The group id is its representative's place, one of the members.
        assert_eq!(g["group"], g["representative"]["at"]);
        assert!(members.iter().any(|m| m["at"] == g["group"]));
        assert!(
            ids.insert(g["group"].as_str().unwrap().to_string()),
            "ids are unique"
        );
        for m in members {
            assert!(["first", "id", "text", "near"].contains(&m["via"].as_str().unwrap()));
        }
    }
    // CAPEC-1 comes both as XML and as the JSON-wrapped catalogue: one group.
    assert!(groups.iter().any(|g| g["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["id"] == "CAPEC-1")
        .count()
        == 2));
    assert!(stderr(&out).contains("duplicate groups"));
}
