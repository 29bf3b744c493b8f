//! The small tools around a run store, through the real binary: `show` explains a record,
//! `relabel` names what it changed, completions and man pages come from the clap definitions.

mod common;

use common::{cyberfilter as cf, root, stderr, stdout};
use serde_json::Value;
use std::process::{Command, Output};

fn text(o: &Output) -> (String, String) {
    (stdout(o), stderr(o))
}

#[test]
fn show_explains_a_record_and_relabel_names_the_verdict_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.cfrun");
    let s = store.to_str().unwrap();
    let input = root().join("sample_data/nvd/nvd-api2.0-page0-sample.json");
    let o = cf(&[
        "run",
        "--progress",
        "none",
        "--verifier",
        "none",
        "--store",
        s,
        input.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);

    // The first stored row, by #SEQ, as JSON: a kept CVE with the rule that kept it.
    let o = cf(&["show", s, "#1", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
    let rec: Value = serde_json::from_str(text(&o).0.lines().next().unwrap()).unwrap();
    let id = rec["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("CVE-"), "{rec}");
    assert_eq!(rec["verdict"], "kept");
    assert_eq!(rec["decided_by"], "rule");
    assert!(rec["why"].as_str().unwrap().starts_with("score "), "{rec}");
    assert!(rec["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["rule"] == "cve-id"));

    // The same record by id, as text.
    let (out, _) = text(&cf(&["show", s, &id]));
    assert!(out.contains(&format!("{id} (#1)")), "{out}");
    assert!(out.contains("verdict  kept (decided by rule)"), "{out}");
    assert!(out.contains("cve-id"), "{out}");

    // Relabel says which record moved where.
    let o = cf(&["relabel", s, &id, "reject"]);
    assert_eq!(o.status.code(), Some(0));
    let (_, err) = text(&o);
    assert!(
        err.contains(&format!(
            "{id} (#1, nvd-api2.0-page0-sample.json): kept -> removed (labelled reject)"
        )),
        "{err}"
    );
    let (out, _) = text(&cf(&["show", s, "#1"]));
    assert!(
        out.contains("decided by human): curator label: reject"),
        "{out}"
    );

    let o = cf(&["show", s, "CVE-0000-0000"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("no record with id CVE-0000-0000"));
}

#[test]
fn completions_and_man_pages_are_generated() {
    let (out, _) = text(&cf(&["completions", "bash"]));
    assert!(
        out.contains("_cyberfilter()") && out.contains("relabel"),
        "bash completion"
    );
    let dir = tempfile::tempdir().unwrap();
    let o = cf(&["man", "--out", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let page = std::fs::read_to_string(dir.path().join("cyberfilter-run.1")).unwrap();
    assert!(
        page.contains("\\-\\-resume"),
        "the run page documents its flags"
    );
    let tui = Command::new(env!("CARGO_BIN_EXE_cyberfilter-tui"))
        .args(["--completions", "fish"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&tui.stdout).contains("cyberfilter-tui"));
}
