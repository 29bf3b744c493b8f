//! `cyberfilter rules suggest` on a small labelled file written for this test
//! (`tests/rules_suggest/labelled.jsonl`): every `security` record names a "double fetch race",
//! which no `other` record does; half of them also say "overflow", which the rule file given
//! (`one-rule.toml`) already matches; the `other` records are housekeeping commits.

use cyberfilter::rules::RuleSet;
use std::path::Path;
use std::process::Command;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/rules_suggest")
        .join(name)
        .display()
        .to_string()
}

fn suggest(extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cyberfilter"))
        .args(["rules", "suggest", &fixture("labelled.jsonl")])
        .args(["--rules", &fixture("one-rule.toml"), "--min-support", "3"])
        .args(extra)
        .output()
        .expect("run cyberfilter");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn suggest_finds_the_known_separating_phrase() {
    let (code, out, err) = suggest(&["--top", "3", "--negatives"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("# rules suggest: 24 `security` and 48 other records (1 unlabelled"),
        "{out}"
    );
    // The whole output is a rule file: comments and ready [[rule]] tables.
    let rules = RuleSet::from_toml(&out, "suggested").expect("output compiles as rules");
    let names: Vec<&str> = rules.rules().map(|r| r.name.as_str()).collect();
    assert_eq!(names[0], "mined-double-fetch-race", "{out}");
    assert!(
        !names.iter().any(|n| n.contains("overflow")),
        "already matched by the rule file: {names:?}"
    );
    // Its figures: in every security record and no other; the 8 records that the overflow rule
    // puts in verify move to keep, the 16 others from reject to verify.
    let first = out.split("[[rule]]").next().unwrap();
    assert!(
        first.contains("precision 1.00, recall 1.000 (24 security / 0 other records)"),
        "{first}"
    );
    assert!(
        first.contains(
            "verify→keep 8 (8 security, 0 other), reject→verify 16 (16 security, 0 other)"
        ),
        "{first}"
    );
    let top = rules.rules().next().unwrap();
    assert!(top.weight >= 2.0 && top.cap == 1, "{top:?}");
    assert!(rules.score("a Double-Fetch  race in foo").score >= 2.0);
    // Housekeeping words come out as negative evidence, never from the security side.
    let negative: Vec<_> = rules.rules().filter(|r| r.weight < 0.0).collect();
    assert_eq!(negative.len(), 3, "{out}");
    assert!(negative.iter().all(|r| r.category == "negative"));
    for r in &negative {
        assert!(
            rules
                .score("fix a double fetch race")
                .hits
                .iter()
                .all(|h| h.rule != r.name),
            "{} matches a security record",
            r.name
        );
    }
}

#[test]
fn suggest_needs_both_classes_and_a_label_field() {
    // Every record counted positive: nothing to separate.
    let (code, _, err) = suggest(&["--positive", "security,other"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("both classes"), "{err}");
    // No such field: every record unlabelled.
    let (code, _, err) = suggest(&["--label-field", "verdict"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("73 unlabelled"), "{err}");
}

#[test]
fn suggest_reads_the_curators_labels_from_a_run_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.cfstore").display().to_string();
    let bin = env!("CARGO_BIN_EXE_cyberfilter");
    let ok = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .output()
            .expect("run cyberfilter");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    ok(&[
        "run",
        &fixture("labelled.jsonl"),
        "--store",
        &store,
        "--verifier",
        "none",
    ]);
    for i in 0..12 {
        ok(&["relabel", &store, &format!("pos-{i}"), "keep"]);
        ok(&["relabel", &store, &format!("neg-{i}"), "reject"]);
    }
    // A cleared label leaves the record out.
    ok(&["relabel", &store, "neg-11", "clear"]);
    let out = ok(&[
        "rules",
        "suggest",
        "--store",
        &store,
        "--rules",
        &fixture("one-rule.toml"),
        "--min-support",
        "3",
        "--top",
        "1",
    ]);
    assert!(
        out.starts_with("# rules suggest: 12 `keep` and 11 other records"),
        "{out}"
    );
    assert!(out.contains("name = \"mined-double-fetch-race\""), "{out}");
    assert!(out.contains("(12 keep / 0 other records)"), "{out}");
}
