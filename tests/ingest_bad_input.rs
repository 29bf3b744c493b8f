//! Bad input: every case gets a typed error that names the file and the place, and the good
//! records around it (and the other files of the folder) are still read.

mod common;
mod ingest_support;

use common::root;
use cyberfilter::ingest::{discover, IngestError, IngestOptions};
use ingest_support::{read, read_with};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn corpus(name: &str) -> PathBuf {
    root().join("tests/bad_input").join(name)
}

fn ids(recs: &[cyberfilter::Record]) -> Vec<&str> {
    recs.iter().map(|r| r.id.as_str()).collect()
}

/// Byte offset of `needle` in the file.
fn offset_of(path: &Path, needle: &[u8]) -> usize {
    let data = std::fs::read(path).unwrap();
    data.windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

/// "byte N (line L, column C)", counted here from the file's bytes.
fn full_place(path: &Path, offset: usize) -> String {
    let data = std::fs::read(path).unwrap();
    let before = &data[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = offset
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
        + 1;
    format!("byte {offset} (line {line}, column {col})")
}

fn assert_names(e: &IngestError, path: &Path) {
    assert_eq!(e.file(), path, "error names the file: {e}");
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
}

#[test]
fn truncated_json_keeps_the_records_before_it() {
    let p = corpus("truncated.json");
    let got = read(&p);
    assert_eq!(ids(&got.records), ["CVE-2099-0001", "CVE-2099-0002"]);
    assert_eq!(got.errors.len(), 1);
    let e = &got.errors[0];
    assert_names(e, &p);
    let len = std::fs::metadata(&p).unwrap().len() as usize;
    match e {
        IngestError::Syntax { place, what, .. } => {
            // The error that stops a file also gets its line and column.
            assert_eq!(place, &full_place(&p, len));
            assert_eq!(place, &format!("byte {len} (line 1, column {})", len + 1));
            assert!(what.contains("unexpected end of input"), "{what}");
            assert!(what.contains("expected the end of a string"), "{what}");
        }
        other => panic!("expected Syntax, got {other:?}"),
    }
}

#[test]
fn invalid_utf8_skips_only_that_record() {
    let p = corpus("invalid-utf8.jsonl");
    let got = read(&p);
    assert_eq!(ids(&got.records), ["line-1", "line-3"]);
    assert_eq!(got.errors.len(), 1);
    assert_names(&got.errors[0], &p);
    let at = offset_of(&p, b"\xff");
    match &got.errors[0] {
        IngestError::InvalidUtf8 { place, .. } => assert_eq!(place, &format!("byte {at}")),
        other => panic!("expected InvalidUtf8, got {other:?}"),
    }

    let p = corpus("invalid-utf8-array.json");
    let got = read(&p);
    assert_eq!(ids(&got.records), ["a", "c"]);
    let at = offset_of(&p, b"\xe9");
    match &got.errors[..] {
        [IngestError::InvalidUtf8 { place, file }] => {
            assert_eq!(place, &format!("byte {at}"));
            assert_eq!(file, &p);
        }
        other => panic!("expected one InvalidUtf8, got {other:?}"),
    }
}

#[test]
fn syntax_error_inside_one_record() {
    let p = corpus("syntax-error.json");
    let got = read(&p);
    assert_eq!(ids(&got.records), ["s1", "s3"]);
    let at = offset_of(&p, b",,") + 1;
    match &got.errors[..] {
        [e @ IngestError::Syntax { place, what, .. }] => {
            assert_names(e, &p);
            assert_eq!(place, &format!("byte {at}"));
            assert!(what.contains("expected"), "{what}");
        }
        other => panic!("expected one Syntax error, got {other:?}"),
    }
}

#[test]
fn a_malformed_nvd_record_is_reported_by_the_full_parse() {
    // The fast path gives up on it; the serde parse names the exact byte.
    let p = corpus("nvd-bad-record.json");
    let got = read(&p);
    assert_eq!(ids(&got.records), ["CVE-2099-1001", "CVE-2099-1003"]);
    let at = offset_of(&p, br#""en" "value""#) + 5;
    match &got.errors[..] {
        [e @ IngestError::Syntax { place, what, .. }] => {
            assert_names(e, &p);
            assert_eq!(place, &format!("byte {at}"));
            assert!(what.contains("expected `,` or `}`"), "{what}");
        }
        other => panic!("expected one Syntax error, got {other:?}"),
    }
}

#[test]
fn binary_and_non_json_files_are_refused() {
    let p = corpus("binary.json");
    let got = read(&p);
    assert!(got.records.is_empty());
    match &got.errors[..] {
        [e @ IngestError::Unsupported { what, .. }] => {
            assert_names(e, &p);
            assert!(what.contains("binary") && what.contains("byte 8"), "{what}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    let p = corpus("plain-text.json");
    match &read(&p).errors[..] {
        [IngestError::Unsupported { what, .. }] => {
            assert!(
                what.contains("'h' at byte 0") && what.contains("expected JSON"),
                "{what}"
            )
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn xml_entities_are_refused_never_expanded() {
    for (name, _) in [("entity-bomb.xml", ()), ("external-entity.xml", ())] {
        let p = corpus(name);
        let t = Instant::now();
        let got = read(&p);
        assert!(t.elapsed() < Duration::from_secs(2), "{name}: no expansion");
        assert!(
            got.records.is_empty(),
            "{name}: nothing after a refused DOCTYPE"
        );
        let doctype = offset_of(&p, b"<!DOCTYPE");
        match &got.errors[..] {
            [e @ IngestError::XmlEntities { place, .. }] => {
                assert_names(e, &p);
                assert_eq!(place, &format!("byte {doctype}"));
            }
            other => panic!("{name}: expected XmlEntities, got {other:?}"),
        }
        assert!(
            !got.errors[0].to_string().contains("root:"),
            "never read /etc/passwd"
        );
    }
}

#[test]
fn undeclared_entity_skips_only_that_record() {
    let p = corpus("unknown-entity.xml");
    let got = read(&p);
    assert_eq!(ids(&got.records), ["CAPEC-1", "CAPEC-3"]);
    assert!(got.records[0].text.contains("First & fine."));
    let at = offset_of(&p, b"Uses &custom;");
    match &got.errors[..] {
        [e @ IngestError::Syntax { place, what, .. }] => {
            assert_names(e, &p);
            assert_eq!(place, &format!("byte {at}"));
            assert!(
                what.contains("custom") && what.contains("never expanded"),
                "{what}"
            );
        }
        other => panic!("expected Syntax, got {other:?}"),
    }
}

#[test]
fn malformed_xml_stops_the_file_after_the_good_records() {
    let p = corpus("mismatched-tag.xml");
    let got = read(&p);
    assert_eq!(ids(&got.records), ["CAPEC-1"]);
    let at = offset_of(&p, b"</Summary>");
    match &got.errors[..] {
        [e @ IngestError::Syntax { place, what, .. }] => {
            assert_names(e, &p);
            assert_eq!(place, &full_place(&p, at));
            assert!(place.ends_with("(line 5, column 55)"), "{place}");
            assert!(what.contains("malformed XML"), "{what}");
        }
        other => panic!("expected Syntax, got {other:?}"),
    }
}

#[test]
fn a_50_mb_record_is_skipped_and_the_next_one_read() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("huge.json");
    let huge = format!(r#"{{"id":"huge","text":"{}"}}"#, "x".repeat(50 << 20));
    let doc = format!(r#"[{{"id":"before","title":"b"}},{huge},{{"id":"after","title":"a"}}]"#);
    std::fs::write(&p, &doc).unwrap();
    let got = read(&p);
    assert_eq!(ids(&got.records), ["before", "after"]);
    let at = doc.find(r#"{"id":"huge""#).unwrap();
    match &got.errors[..] {
        [e @ IngestError::RecordTooLarge {
            place, len, limit, ..
        }] => {
            assert_names(e, &p);
            assert_eq!(place, &format!("byte {at}"));
            assert_eq!(*len, huge.len() as u64);
            assert_eq!(*limit, IngestOptions::default().max_record_bytes);
        }
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    // The same limit applies to JSON Lines and XML records.
    let opts = IngestOptions {
        max_record_bytes: 64,
        ..IngestOptions::default()
    };
    let got = read_with(&corpus("good-capec.xml"), &opts);
    assert!(got.records.is_empty());
    assert!(got
        .errors
        .iter()
        .all(|e| matches!(e, IngestError::RecordTooLarge { .. })));
    assert_eq!(got.errors.len(), 2);
    let jl = tmp.path().join("lines.jsonl");
    std::fs::write(&jl, format!("{{\"id\":\"a\"}}\n{huge}\n{{\"id\":\"b\"}}\n")).unwrap();
    let got = read(&jl);
    assert_eq!(ids(&got.records), ["a", "b"]);
    assert!(
        matches!(&got.errors[..], [IngestError::RecordTooLarge { place, .. }] if place == "byte 11")
    );
}

#[test]
fn json_nested_10000_deep_is_skipped_and_the_next_one_read() {
    let tmp = tempfile::tempdir().unwrap();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let p = tmp.path().join("deep.json");
    let doc = format!(r#"[{{"id":"d0"}},{deep},{{"id":"d2"}}]"#);
    std::fs::write(&p, &doc).unwrap();
    let got = read(&p);
    assert_eq!(ids(&got.records), ["d0", "d2"]);
    let start = doc.find("[[").unwrap();
    match &got.errors[..] {
        [e @ IngestError::TooDeep { place, limit, .. }] => {
            assert_names(e, &p);
            assert_eq!(*limit, 128);
            // The byte where depth 129 was reached, and where the record starts.
            assert_eq!(
                place,
                &format!("byte {} (record starting at byte {start})", start + 128)
            );
        }
        other => panic!("expected TooDeep, got {other:?}"),
    }
    // In JSON Lines the line is parsed directly: serde's own limit, same typed error.
    let jl = tmp.path().join("deep.jsonl");
    let deep_obj = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    std::fs::write(
        &jl,
        format!("{{\"id\":\"l0\"}}\n{deep_obj}\n{{\"id\":\"l2\"}}\n"),
    )
    .unwrap();
    let got = read(&jl);
    assert_eq!(ids(&got.records), ["l0", "l2"]);
    assert!(
        matches!(&got.errors[..], [IngestError::TooDeep { .. }]),
        "{:?}",
        got.errors
    );
    // A whole document that is one deep value.
    let whole = tmp.path().join("whole.json");
    std::fs::write(&whole, &deep).unwrap();
    let got = read(&whole);
    assert!(got.records.is_empty());
    assert!(
        matches!(&got.errors[..], [IngestError::TooDeep { .. }]),
        "{:?}",
        got.errors
    );
}

#[test]
fn the_rest_of_the_folder_is_still_read() {
    let dir = corpus("");
    let files = discover(std::slice::from_ref(&dir)).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "binary.json",
            "entity-bomb.xml",
            "external-entity.xml",
            "good-capec.xml",
            "good-nvd.json",
            "invalid-utf8-array.json",
            "invalid-utf8.jsonl",
            "mismatched-tag.xml",
            "nvd-bad-record.json",
            "plain-text.json",
            "syntax-error.json",
            "truncated.json",
            "unknown-entity.xml",
        ]
    );
    let mut all_ids = Vec::new();
    let mut errors = 0;
    for f in &files {
        let got = read(f);
        for e in &got.errors {
            assert_eq!(e.file(), f.as_path());
        }
        errors += got.errors.len();
        all_ids.extend(got.records.into_iter().map(|r| r.id));
    }
    assert_eq!(errors, 11, "one error per bad file");
    assert_eq!(
        all_ids,
        [
            "CAPEC-10",
            "CAPEC-11",
            "CVE-2099-0001",
            "CVE-2099-0002",
            "a",
            "c",
            "line-1",
            "line-3",
            "CAPEC-1",
            "CVE-2099-1001",
            "CVE-2099-1003",
            "s1",
            "s3",
            "CVE-2099-0001",
            "CVE-2099-0002",
            "CAPEC-1",
            "CAPEC-3",
        ]
    );
}

#[test]
fn a_truncated_gzip_keeps_the_records_before_the_cut() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let mut plain = Vec::new();
    for i in 0..20_000 {
        writeln!(
            plain,
            r#"{{"id":"r{i}","title":"entry {i} {}"}}"#,
            i * 7919 % 10007
        )
        .unwrap();
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&plain).unwrap();
    let gz = enc.finish().unwrap();
    let p = tmp.path().join("cut.jsonl.gz");
    std::fs::write(&p, &gz[..gz.len() * 3 / 4]).unwrap();
    let got = read(&p);
    assert!(
        got.records.len() > 1000 && got.records.len() < 20_000,
        "{}",
        got.records.len()
    );
    for (i, r) in got.records.iter().enumerate() {
        assert_eq!(r.id, format!("r{i}"));
    }
    match &got.errors[..] {
        [.., e @ IngestError::Io { .. }] => assert_names(e, &p),
        other => panic!("expected an Io error last, got {other:?}"),
    }
}

#[test]
fn a_stale_locator_is_an_error_not_a_panic() {
    let p = corpus("good-nvd.json");
    let mut loc = read(&p).records[1].locator.clone();
    assert!(cyberfilter::ingest::read_original(&loc).is_ok());
    loc.len = u64::MAX / 2;
    match cyberfilter::ingest::read_original(&loc) {
        Err(e @ IngestError::Syntax { .. }) => assert_names(&e, &p),
        other => panic!("expected Syntax, got {other:?}"),
    }
    loc.offset = u64::MAX / 2;
    assert!(cyberfilter::ingest::read_original(&loc).is_err());
    loc.outer_offset = Some(0);
    assert!(cyberfilter::ingest::read_original(&loc).is_err());
}
