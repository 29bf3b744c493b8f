//! The readers on the real feeds in `../shared/realdata`: exact counts, field-by-field text of
//! known records, locator round trips, gzip, JSON Lines and `xml_data` wrappers.

mod common;
mod ingest_support;

use common::realdata;
use cyberfilter::ingest::{discover, read_original, IngestOptions};
use cyberfilter::{Record, SourceKind};
use ingest_support::{count, find, read, read_with};
use std::io::Write;
use std::path::{Path, PathBuf};

fn lines(r: &Record) -> Vec<&str> {
    r.text.lines().collect()
}

#[test]
fn nvd_api2_page0_counts_and_known_record() {
    let Some(rd) = realdata("") else { return };
    let got = read(&rd.join("nvd/nvd-api2.0-page0-startIndex0-2000cves_reaphsoft.json"));
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    assert_eq!(got.records.len(), 2000);
    assert_eq!(got.summary.format, Some(SourceKind::NvdApi2));
    assert_eq!(count(&got.records, |r| r.flags.rejected), 34);
    assert!(got
        .records
        .iter()
        .all(|r| r.source == SourceKind::NvdApi2 && r.kind == "cve" && r.scored));
    assert!(got.records.iter().all(|r| r.id.starts_with("CVE-")));
    let r = find(&got.records, "CVE-1999-0095");
    assert_eq!(r.locator.index, 0);
    assert_eq!(
        lines(r),
        [
            "CVE-1999-0095",
            "The debug command in Sendmail is enabled, allowing attackers to execute commands as root.",
            "CVSS:2.0/AV:N/AC:L/Au:N/C:C/I:C/A:C",
        ]
    );
    // The Spanish description is left out when an English one exists.
    assert!(!r.text.contains("depuraci"));
    assert!(!r.text.contains("nvd-api2.0"), "never the file name");
}

#[test]
fn nvd_api2_other_files_and_cwe_cvss_fields() {
    let Some(rd) = realdata("") else { return };
    for (name, n) in [
        ("nvd-api2.0-recent-2025-07-01-94cves_vulnwatch.json", 94),
        ("nvd-api2.0-search-47cves_nvdlib.json", 47),
        ("nvd-api2.0-single-CVE-2017-7542_nvdlib.json", 1),
        ("nvd-api2.0-single-CVE-2021-26855_nvdlib.json", 1),
        ("nvd-api2.0-single-CVE-2021-45357_nvdlib.json", 1),
    ] {
        let got = read(&rd.join("nvd").join(name));
        assert!(got.errors.is_empty(), "{name}: {:?}", got.errors);
        assert_eq!(got.records.len(), n, "{name}");
        assert_eq!(got.summary.format, Some(SourceKind::NvdApi2), "{name}");
    }
    let got = read(&rd.join("nvd/nvd-api2.0-single-CVE-2021-26855_nvdlib.json"));
    let r = find(&got.records, "CVE-2021-26855");
    assert_eq!(
        lines(r),
        [
            "CVE-2021-26855",
            "Microsoft Exchange Server Remote Code Execution Vulnerability This CVE ID is unique from \
             CVE-2021-26412, CVE-2021-26854, CVE-2021-26857, CVE-2021-26858, CVE-2021-27065, CVE-2021-27078.",
            "CWE-918",
            "CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        ]
    );
}

#[test]
fn nvd_legacy_feeds() {
    let Some(rd) = realdata("") else { return };
    for (name, n, rejected) in [
        ("nvdcve-1.1-recent-2019-09-26_jeromeli.json", 463, 2),
        ("nvdcve-1.1-recent-2024-06-21_researchersec.json", 1185, 0),
        ("nvdcve-1.1-recent-2025-04-16_gmouheb.json", 1280, 0),
    ] {
        let got = read(&rd.join("nvd").join(name));
        assert!(got.errors.is_empty(), "{name}: {:?}", got.errors);
        assert_eq!(got.records.len(), n, "{name}");
        assert_eq!(got.summary.format, Some(SourceKind::NvdLegacy));
        assert_eq!(
            count(&got.records, |r| r.flags.rejected),
            rejected,
            "{name}"
        );
    }
    let got = read(&rd.join("nvd/nvdcve-1.1-recent-2019-09-26_jeromeli.json"));
    let r = find(&got.records, "CVE-2013-0169");
    let l = lines(r);
    assert_eq!(l[0], "CVE-2013-0169");
    assert!(l[1].starts_with(
        "The TLS protocol 1.1 and 1.2 and the DTLS protocol 1.0 and 1.2, as used in OpenSSL"
    ));
    assert_eq!(l[l.len() - 2], "CWE-310");
    assert_eq!(l[l.len() - 1], "CVSS:2.0/AV:N/AC:H/Au:N/C:P/I:N/A:N");
}

#[test]
fn cve5_folder_of_605_files() {
    let Some(rd) = realdata("") else { return };
    let files = discover(&[rd.join("cve5")]).unwrap();
    assert_eq!(files.len(), 605, "the .txt path list is not a feed");
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted, "discovery is sorted");
    let mut all = Vec::new();
    for f in &files {
        let got = read(f);
        assert!(got.errors.is_empty(), "{}: {:?}", f.display(), got.errors);
        assert_eq!(got.records.len(), 1, "{}", f.display());
        let r = &got.records[0];
        assert_eq!(r.source, SourceKind::Cve5);
        assert_eq!(
            f.file_stem().unwrap().to_str().unwrap(),
            r.id,
            "id from cveMetadata"
        );
        all.extend(got.records);
    }
    assert_eq!(count(&all, |r| r.flags.rejected), 3);
    let r = find(&all, "CVE-2024-0083");
    assert_eq!(
        lines(r),
        [
            "CVE-2024-0083",
            "CVE",
            "NVIDIA ChatRTX for Windows contains a vulnerability in the UI, where an attacker can cause a \
             cross-site scripting error by network by running malicious scripts in users' browsers. A successful \
             exploit of this vulnerability might lead to code execution, denial of service, and information disclosure.",
            "CWE-79",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:L",
        ]
    );
    // CWE and CVSS that only CISA's ADP container adds are kept too.
    let r = find(&all, "CVE-1999-0006");
    assert_eq!(
        lines(r),
        [
            "CVE-1999-0006",
            "Buffer overflow in POP servers based on BSD/Qualcomm's qpopper allows remote attackers to gain \
             root access using a long PASS command.",
            "CWE-121",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        ]
    );
}

#[test]
fn enterprise_attack_bundle() {
    let Some(rd) = realdata("") else { return };
    let got = read(&rd.join("attack/enterprise-attack-v18.1-from-mitre-cti.json"));
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    let recs = &got.records;
    assert_eq!(recs.len(), 24_771);
    assert_eq!(got.summary.format, Some(SourceKind::Stix));
    assert_eq!(count(recs, |r| r.kind == "attack-pattern"), 835);
    assert_eq!(count(recs, |r| r.kind == "relationship"), 20_048);
    assert_eq!(count(recs, |r| r.kind == "malware"), 696);
    assert_eq!(count(recs, |r| r.kind == "x-mitre-analytic"), 1_739);
    assert_eq!(count(recs, |r| r.flags.revoked), 140);
    assert_eq!(count(recs, |r| r.flags.deprecated), 287);
    // Default scored types: relationships and analytics are carried but not scored.
    assert_eq!(count(recs, |r| r.scored), 2_143);
    assert_eq!(count(recs, |r| r.kind == "relationship" && r.scored), 0);
    let t1059 = find(recs, "attack-pattern--7385dfaf-6886-4229-9ecd-6fd678040830");
    let l = lines(t1059);
    assert_eq!(l[0], "T1059 Command and Scripting Interpreter");
    assert!(l[1]
        .starts_with("Adversaries may abuse command and script interpreters to execute commands"));
    assert_eq!(
        l[l.len() - 2],
        "Platforms: ESXi, IaaS, Identity Provider, Linux, macOS, Network Devices, Office Suite, Windows"
    );
    assert_eq!(l[l.len() - 1], "Tactics: execution");
    // Which types are scored is configurable.
    let opts = IngestOptions {
        stix_types: vec!["relationship".into()],
        ..IngestOptions::default()
    };
    let got = read_with(
        &rd.join("attack/enterprise-attack-v18.1-from-mitre-cti.json"),
        &opts,
    );
    assert_eq!(count(&got.records, |r| r.scored), 20_048);
}

#[test]
fn mobile_attack_stix21_bundle() {
    let Some(rd) = realdata("") else { return };
    let got = read(&rd.join("attack/mobile-attack-17.1.json"));
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    assert_eq!(got.records.len(), 2_148);
    assert_eq!(count(&got.records, |r| r.kind == "attack-pattern"), 188);
    assert_eq!(count(&got.records, |r| r.kind == "relationship"), 1_766);
    assert_eq!(count(&got.records, |r| r.flags.revoked), 53);
    assert_eq!(count(&got.records, |r| r.flags.deprecated), 20);
    assert_eq!(count(&got.records, |r| r.scored), 354);
}

#[test]
fn capec_catalogue() {
    let Some(rd) = realdata("") else { return };
    let got = read(&rd.join("capec/capec_v3.9.xml"));
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    let recs = &got.records;
    assert_eq!(got.summary.format, Some(SourceKind::Capec));
    assert_eq!(count(recs, |r| r.kind == "Attack_Pattern"), 615);
    assert_eq!(
        count(recs, |r| r.kind == "Attack_Pattern" && !r.flags.deprecated),
        559
    );
    assert_eq!(count(recs, |r| r.kind == "Category"), 78);
    assert_eq!(count(recs, |r| r.kind == "View"), 13);
    assert_eq!(count(recs, |r| r.kind == "View" && r.scored), 0);
    let r = find(recs, "CAPEC-66");
    assert_eq!(r.kind, "Attack_Pattern");
    let l = lines(r);
    assert_eq!(l.len(), 4);
    assert_eq!(l[0], "CAPEC-66 SQL Injection");
    assert!(l[1].starts_with(
        "This attack exploits target software that constructs SQL statements based on user input."
    ));
    assert!(l[1].ends_with(
        "SQL Injection results from failure of the application to appropriately validate input."
    ));
    assert!(
        l[2].starts_with("When specially crafted user-controlled input consisting of SQL syntax")
    );
    assert_eq!(l[3], "Related weaknesses: CWE-89, CWE-1286");
}

#[test]
fn cwe_catalogue() {
    let Some(rd) = realdata("") else { return };
    let got = read(&rd.join("cwe/cwec_v4.14.xml"));
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    let recs = &got.records;
    assert_eq!(got.summary.format, Some(SourceKind::Cwe));
    assert_eq!(count(recs, |r| r.kind == "Weakness"), 963);
    assert_eq!(
        count(recs, |r| r.kind == "Weakness" && r.flags.deprecated),
        25
    );
    assert_eq!(count(recs, |r| r.kind == "Category"), 409);
    assert_eq!(count(recs, |r| r.kind == "View"), 54);
    let r = find(recs, "CWE-79");
    let l = lines(r);
    assert_eq!(l.len(), 4);
    assert_eq!(
        l[0],
        "CWE-79 Improper Neutralization of Input During Web Page Generation ('Cross-site Scripting')"
    );
    assert_eq!(
        l[1],
        "The product does not neutralize or incorrectly neutralizes user-controllable input before it is \
         placed in output that is used as a web page that is served to other users."
    );
    // Extended description: xhtml paragraphs and lists flattened into one readable line.
    assert!(l[2].starts_with(
        "Cross-site scripting (XSS) vulnerabilities occur when: Untrusted data enters"
    ));
    assert!(l[2].contains("Type 1: Reflected XSS (or Non-Persistent)"));
    assert_eq!(l[3], "Related weaknesses: CWE-74, CWE-494, CWE-352");
}

#[test]
fn jsonl_feeds_with_ids_and_labels() {
    let Some(rd) = realdata("") else { return };
    let got = read(&rd.join("nonsecurity/debian-bookworm-changelog-entries.jsonl"));
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    assert_eq!(got.records.len(), 2_540);
    assert_eq!(
        got.records[0].id,
        "debian-changelog/adwaita-icon-theme/43-1"
    );
    assert_eq!(got.records[0].text, "* New upstream release");
    assert_eq!(got.records[0].source, SourceKind::Json);
    let opts = IngestOptions {
        label_field: Some("label".into()),
        ..IngestOptions::default()
    };
    let got = read_with(
        &rd.join("arxiv/arxiv-cs-sample100_albertomontero.labelled.jsonl"),
        &opts,
    );
    assert_eq!(got.records.len(), 100);
    assert_eq!(
        count(&got.records, |r| r.label.as_deref() == Some("security")),
        6
    );
    assert_eq!(
        count(&got.records, |r| r.label.as_deref() == Some("non-security")),
        94
    );
    let r = find(&got.records, "1801.00779");
    assert!(r.text.starts_with(
        "Machine Learning for Building Energy and Indoor Environment: A Perspective\nMachine learning is a promising"
    ));
}

/// Write `bytes` to a fresh file named `name` and read it back alone.
fn reread(dir: &Path, name: &str, bytes: &[u8]) -> Vec<Record> {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    let got = read(&p);
    assert!(got.errors.is_empty(), "{name}: {:?}", got.errors);
    got.records
}

#[test]
fn locators_read_back_the_original_record() {
    let Some(rd) = realdata("") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, Option<(&str, &str)>); 6] = [
        (
            "nvd/nvd-api2.0-page0-startIndex0-2000cves_reaphsoft.json",
            None,
        ),
        ("nvd/nvdcve-1.1-recent-2019-09-26_jeromeli.json", None),
        ("attack/mobile-attack-17.1.json", None),
        ("cve5/vulnrichment/2024/0xxx/CVE-2024-0083.json", None),
        (
            "capec/capec_v3.9.xml",
            Some((
                "<Attack_Pattern_Catalog><Attack_Patterns>",
                "</Attack_Patterns></Attack_Pattern_Catalog>",
            )),
        ),
        (
            "cwe/cwec_v4.14.xml",
            Some((
                "<Weakness_Catalog xmlns='http://cwe.mitre.org/cwe-6'><Weaknesses>",
                "</Weaknesses></Weakness_Catalog>",
            )),
        ),
    ];
    for (rel, wrap) in cases {
        let got = read(&rd.join(rel));
        let n = got.records.len();
        for i in [0, n / 2, n - 1] {
            let rec = &got.records[i];
            if wrap.is_some() && rec.kind != "Attack_Pattern" && rec.kind != "Weakness" {
                continue;
            }
            let bytes = read_original(&rec.locator).unwrap();
            assert_eq!(bytes.len() as u64, rec.locator.len);
            let (doc, name) = match wrap {
                Some((open, close)) => {
                    let mut d = open.as_bytes().to_vec();
                    d.extend_from_slice(&bytes);
                    d.extend_from_slice(close.as_bytes());
                    (d, "one.xml")
                }
                None => (bytes, "one.json"),
            };
            let back = reread(tmp.path(), name, &doc);
            assert_eq!(back.len(), 1, "{rel}#{i}");
            assert_eq!(back[0].id, rec.id, "{rel}#{i}");
            assert_eq!(back[0].source, rec.source, "{rel}#{i}");
            assert_eq!(back[0].kind, rec.kind, "{rel}#{i}");
            assert_eq!(back[0].text, rec.text, "{rel}#{i}");
            assert_eq!(back[0].flags, rec.flags, "{rel}#{i}");
        }
    }
}

fn gzip(src: &Path, dst: &Path) {
    let data = std::fs::read(src).unwrap();
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(dst).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&data).unwrap();
    enc.finish().unwrap();
}

#[test]
fn gzip_reads_the_same_as_plain() {
    let Some(rd) = realdata("") else { return };
    let tmp = tempfile::tempdir().unwrap();
    for rel in [
        "nvd/nvd-api2.0-search-47cves_nvdlib.json",
        "capec/capec_v3.9.xml",
    ] {
        let plain = rd.join(rel);
        // A misleading name: gzip is detected from the magic bytes.
        let gz: PathBuf = tmp.path().join("feed.data.gz");
        gzip(&plain, &gz);
        let a = read(&plain);
        let b = read(&gz);
        assert!(b.errors.is_empty(), "{:?}", b.errors);
        assert_eq!(a.records.len(), b.records.len());
        assert_eq!(a.summary.bytes, b.summary.bytes, "decompressed bytes");
        for (x, y) in a.records.iter().zip(&b.records) {
            assert_eq!(
                (&x.id, &x.text, x.locator.offset, x.locator.len),
                (&y.id, &y.text, y.locator.offset, y.locator.len)
            );
        }
        let last = b.records.last().unwrap();
        assert_eq!(
            read_original(&last.locator).unwrap(),
            read_original(&a.records.last().unwrap().locator).unwrap()
        );
    }
}

#[test]
fn jsonl_of_cve5_records_equals_the_files() {
    let Some(rd) = realdata("") else { return };
    let files = discover(&[rd.join("cve5")]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let jsonl = tmp.path().join("cve5-records");
    let mut out = Vec::new();
    let mut expected = Vec::new();
    for f in &files {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        out.extend_from_slice(serde_json::to_string(&v).unwrap().as_bytes());
        out.push(b'\n');
        expected.push(read(f).records.remove(0));
    }
    std::fs::write(&jsonl, &out).unwrap();
    let got = read(&jsonl);
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    assert_eq!(got.records.len(), 605);
    for (i, (a, b)) in got.records.iter().zip(&expected).enumerate() {
        assert_eq!(a.locator.index, i as u64);
        assert_eq!(
            (&a.id, &a.text, a.source, a.flags),
            (&b.id, &b.text, b.source, b.flags)
        );
    }
    // The same records as a JSON array.
    let mut arr = b"[".to_vec();
    arr.extend_from_slice(
        &out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(&b","[..]),
    );
    arr.push(b']');
    let got = reread(tmp.path(), "cve5-array.json", &arr);
    assert_eq!(got.len(), 605);
    assert!(got
        .iter()
        .zip(&expected)
        .all(|(a, b)| a.id == b.id && a.text == b.text));
}

#[test]
fn capec_catalogue_inside_xml_data_string() {
    let Some(rd) = realdata("") else { return };
    let xml = std::fs::read_to_string(rd.join("capec/capec_v3.9.xml")).unwrap();
    let doc = serde_json::json!({ "xml_data": xml }).to_string();
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("capec_data_20250716_121342.json");
    std::fs::write(&p, &doc).unwrap();
    let direct = read(&rd.join("capec/capec_v3.9.xml"));
    let wrapped = read(&p);
    assert!(wrapped.errors.is_empty(), "{:?}", wrapped.errors);
    assert_eq!(wrapped.summary.format, Some(SourceKind::Capec));
    assert_eq!(wrapped.records.len(), direct.records.len());
    for (a, b) in wrapped.records.iter().zip(&direct.records) {
        assert_eq!((&a.id, &a.text), (&b.id, &b.text));
        // Offsets are into the decoded string, which is the catalogue itself.
        assert_eq!(
            (a.locator.offset, a.locator.len),
            (b.locator.offset, b.locator.len)
        );
        assert_eq!(a.locator.outer_offset, Some(12));
    }
    let r = find(&wrapped.records, "CAPEC-66");
    let original = read_original(&r.locator).unwrap();
    assert!(original.starts_with(b"<Attack_Pattern ID=\"66\" Name=\"SQL Injection\""));
    assert_eq!(
        original,
        read_original(&find(&direct.records, "CAPEC-66").locator).unwrap()
    );
}
