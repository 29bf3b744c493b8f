//! The committed `sample_data/` reads cleanly, with the counts its SOURCES.md promises
//! (so these checks run in CI even where `../shared/realdata` is absent).

mod common;
mod ingest_support;

use common::root;
use cyberfilter::ingest::discover;
use cyberfilter::SourceKind;
use ingest_support::{count, find, read};
use std::collections::BTreeMap;

#[test]
fn every_sample_file_reads_without_errors() {
    let root = root().join("sample_data");
    let files = discover(&[root]).unwrap();
    let mut per_source: BTreeMap<SourceKind, usize> = BTreeMap::new();
    let mut all = Vec::new();
    for f in &files {
        let got = read(f);
        assert!(got.errors.is_empty(), "{}: {:?}", f.display(), got.errors);
        assert!(!got.records.is_empty(), "{}", f.display());
        for r in &got.records {
            *per_source.entry(r.source).or_default() += 1;
            assert!(
                !r.text.is_empty() || r.kind == "marking-definition",
                "{} has text",
                r.id
            );
        }
        all.extend(got.records);
    }
    assert_eq!(per_source[&SourceKind::NvdApi2], 60);
    assert_eq!(per_source[&SourceKind::NvdLegacy], 20);
    assert_eq!(per_source[&SourceKind::Cve5], 41);
    assert_eq!(per_source[&SourceKind::Stix], 81);
    // The CAPEC sample twice: as XML and inside the upstream `xml_data` wrapper.
    assert_eq!(per_source[&SourceKind::Capec], 2 * (32 + 5 + 2));
    assert_eq!(per_source[&SourceKind::Cwe], 32 + 5 + 2);
    assert_eq!(per_source[&SourceKind::Json], 160);
    assert_eq!(
        count(&all, |r| r.source == SourceKind::Cve5 && r.flags.rejected),
        3
    );
    assert_eq!(
        count(&all, |r| r.source == SourceKind::NvdApi2
            && r.flags.rejected),
        10
    );
    assert_eq!(
        count(&all, |r| r.source == SourceKind::Stix && r.flags.revoked),
        4
    );
    assert_eq!(
        count(&all, |r| r.source == SourceKind::Stix && r.scored),
        49
    );
    assert!(find(&all, "CAPEC-66")
        .text
        .starts_with("CAPEC-66 SQL Injection\n"));
    assert!(find(&all, "CWE-79")
        .text
        .starts_with("CWE-79 Improper Neutralization"));
    assert!(find(&all, "CVE-1999-0095").text.contains("Sendmail"));
}

#[test]
fn nvd_items_read_the_same_outside_their_wrapper() {
    let root = root().join("sample_data/nvd");
    let tmp = tempfile::tempdir().unwrap();
    for (name, key) in [
        ("nvd-api2.0-page0-sample.json", "vulnerabilities"),
        ("nvdcve-1.1-recent-2019-09-26-sample.json", "CVE_Items"),
    ] {
        let page = read(&root.join(name));
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(root.join(name)).unwrap()).unwrap();
        let items = v[key].as_array().unwrap();
        let lines: Vec<String> = items
            .iter()
            .map(|i| serde_json::to_string(i).unwrap())
            .collect();
        let jl = tmp.path().join("items.jsonl");
        std::fs::write(&jl, lines.join("\n")).unwrap();
        let arr = tmp.path().join("items.json");
        std::fs::write(&arr, serde_json::to_string_pretty(items).unwrap()).unwrap();
        for path in [&jl, &arr] {
            let got = read(path);
            assert!(got.errors.is_empty(), "{:?}", got.errors);
            assert_eq!(got.records.len(), page.records.len());
            for (a, b) in got.records.iter().zip(&page.records) {
                assert_eq!(
                    (&a.id, &a.text, a.source, a.flags),
                    (&b.id, &b.text, b.source, b.flags)
                );
            }
        }
    }
}
