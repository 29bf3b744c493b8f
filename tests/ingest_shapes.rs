//! The upstream collector's JSON shapes (`papers`, `entries`, `value`, `summary`, list roots),
//! written from the shapes described in the upstream notes. Text never contains the file name.

mod ingest_support;

use cyberfilter::ingest::IngestOptions;
use cyberfilter::SourceKind;
use ingest_support::{read, read_with};
use serde_json::json;

fn write(dir: &std::path::Path, name: &str, v: &serde_json::Value) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

#[test]
fn upstream_collector_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "arxiv_papers_20250715_183646.json",
            json!({"papers": [{"id": "http://arxiv.org/abs/cs/9901001v1", "title": "Key Recovery Attacks",
                "summary": "We present a known-plaintext attack.", "author": "B. Author",
                "links": [{"href": "http://arxiv.org/abs/cs/9901001v1"}], "arxiv_primary_category": {"term": "cs.CR"}}]}),
            "http://arxiv.org/abs/cs/9901001v1",
            "Key Recovery Attacks\nWe present a known-plaintext attack.",
        ),
        (
            "ubuntu_security_20250715_183646.json",
            json!({"entries": [{"title": "USN-7650-1: Linux kernel vulnerabilities",
                "title_detail": {"type": "text/plain", "value": "USN-7650-1: Linux kernel vulnerabilities"},
                "link": "https://ubuntu.com/security/notices/USN-7650-1",
                "summary": "Several security issues were discovered in the Linux kernel.",
                "id": "https://ubuntu.com/security/notices/USN-7650-1", "published_parsed": [2025, 7, 15, 12, 4, 33, 1, 196, 0]}]}),
            "https://ubuntu.com/security/notices/USN-7650-1",
            "USN-7650-1: Linux kernel vulnerabilities\nSeveral security issues were discovered in the Linux kernel.",
        ),
        (
            "microsoft_security_20250715_183647.json",
            json!({"@odata.context": "https://api.msrc.microsoft.com/cvrf/v2.0/$metadata#updates",
                "value": [{"ID": "2025-Jul", "Alias": "2025-Jul", "DocumentTitle": "July 2025 Security Updates",
                    "Severity": null, "CvrfUrl": "https://api.msrc.microsoft.com/cvrf/v2.0/cvrf/2025-Jul"}]}),
            "2025-Jul",
            "",
        ),
        (
            "opencve_data_20250715_183643.json",
            json!({"summary": [{"cve_id": "CVE-2025-40001",
                "description": "SQL injection in the login form of ShopNet 2.1 allows unauthenticated attackers to dump the users table.",
                "created_at": "2025-07-14T21:15:23Z"}]}),
            "CVE-2025-40001",
            "SQL injection in the login form of ShopNet 2.1 allows unauthenticated attackers to dump the users table.",
        ),
        (
            "ctf_data_20250715_183648.json",
            json!([{"title": "Example CTF 2025", "description": "A jeopardy-style contest.", "url": "https://ctf.example"}]),
            "ctf_data_20250715_183648.json#0",
            "Example CTF 2025\nA jeopardy-style contest.",
        ),
    ];
    for (name, doc, id, text) in cases {
        let got = read(&write(tmp.path(), name, &doc));
        assert!(got.errors.is_empty(), "{name}: {:?}", got.errors);
        assert_eq!(got.records.len(), 1, "{name}");
        let r = &got.records[0];
        assert_eq!(r.source, SourceKind::Json, "{name}");
        assert_eq!(r.id, id, "{name}");
        assert_eq!(r.text, text, "{name}");
        let stem = name.split('_').next().unwrap();
        assert!(
            !r.text.contains(name) && !r.text.contains(stem),
            "{name}: never the file name"
        );
    }
}

#[test]
fn a_cve_batch_in_a_wrapper_mixes_shapes_per_record() {
    // Like upstream's test batch: NVD items plus a non-CVE entry under `vulnerabilities`.
    let tmp = tempfile::tempdir().unwrap();
    let doc = json!({"vulnerabilities": [
        {"cve": {"id": "CVE-2024-51234", "descriptions": [{"lang": "en", "value": "A heap-based buffer overflow."}]}},
        {"id": "test-003", "title": "Weekly team lunch", "description": "Pizza on Friday."}
    ]});
    let got = read(&write(tmp.path(), "batch.json", &doc));
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    assert_eq!(got.records[0].source, SourceKind::NvdApi2);
    assert_eq!(
        got.records[0].text,
        "CVE-2024-51234\nA heap-based buffer overflow."
    );
    assert_eq!(got.records[1].source, SourceKind::Json);
    assert_eq!(got.records[1].id, "test-003");
    assert_eq!(got.records[1].text, "Weekly team lunch\nPizza on Friday.");
}

#[test]
fn label_field_and_text_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("l.jsonl");
    let long = "é".repeat(100);
    std::fs::write(
        &p,
        format!(
            "{}\n{}\n",
            json!({"id": 1, "text": long, "is_sec": true}),
            json!({"id": 2, "text": "x", "is_sec": 0})
        ),
    )
    .unwrap();
    let opts = IngestOptions {
        label_field: Some("is_sec".into()),
        max_text_bytes: 11,
        ..IngestOptions::default()
    };
    let got = read_with(&p, &opts);
    assert_eq!(got.records[0].label.as_deref(), Some("true"));
    assert_eq!(got.records[1].label.as_deref(), Some("0"));
    assert_eq!(got.records[0].text, "é".repeat(5), "cut on a char boundary");
}
