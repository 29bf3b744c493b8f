//! CVE JSON 5 records (cvelistV5 / vulnrichment): the CNA container first, then ADP containers
//! (CISA adds CWE ids and CVSS vectors there).

use super::common::RecordParts;
use super::nvd::{cve_text, is_rejected_description, vector_text, CvssData, LangValue};
use super::text::{english_first, push_unique};
use crate::record::{RecordFlags, SourceKind};
use serde::Deserialize;
use std::borrow::Cow;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Cve5Record<'a> {
    #[serde(borrow)]
    cve_metadata: Metadata<'a>,
    #[serde(borrow, default)]
    containers: Containers<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata<'a> {
    #[serde(borrow)]
    cve_id: Cow<'a, str>,
    #[serde(borrow, default)]
    state: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct Containers<'a> {
    #[serde(borrow, default)]
    cna: Option<Container<'a>>,
    #[serde(borrow, default)]
    adp: Vec<Container<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Container<'a> {
    #[serde(borrow, default)]
    title: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    descriptions: Vec<LangValue<'a>>,
    #[serde(borrow, default)]
    rejected_reasons: Vec<LangValue<'a>>,
    #[serde(borrow, default)]
    problem_types: Vec<ProblemType<'a>>,
    #[serde(borrow, default)]
    metrics: Vec<Metric<'a>>,
}

#[derive(Deserialize)]
struct ProblemType<'a> {
    #[serde(borrow, default)]
    descriptions: Vec<ProblemDescription<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProblemDescription<'a> {
    #[serde(borrow, default)]
    cwe_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    description: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Metric<'a> {
    #[serde(borrow, default, rename = "cvssV2_0")]
    v2: Option<CvssData<'a>>,
    #[serde(borrow, default, rename = "cvssV3_0")]
    v30: Option<CvssData<'a>>,
    #[serde(borrow, default, rename = "cvssV3_1")]
    v31: Option<CvssData<'a>>,
    #[serde(borrow, default, rename = "cvssV4_0")]
    v40: Option<CvssData<'a>>,
}

/// The leading `CWE-n` of a problem-type description, when the `cweId` field is missing.
fn cwe_in(text: &str) -> Option<&str> {
    let t = text.trim_start();
    let digits = t.strip_prefix("CWE-")?;
    let n = digits.bytes().take_while(u8::is_ascii_digit).count();
    (n > 0).then(|| &t[..4 + n])
}

pub(crate) fn cve5_parts(rec: Cve5Record<'_>, max_text: usize) -> RecordParts {
    let meta = &rec.cve_metadata;
    let cna = rec.containers.cna.as_ref();
    let containers = cna.into_iter().chain(rec.containers.adp.iter());
    let mut descs: Vec<&str> = cna
        .map(|c| {
            english_first(
                c.descriptions
                    .iter()
                    .map(|d| (d.lang.as_ref(), d.value.as_ref())),
            )
        })
        .unwrap_or_default();
    if descs.is_empty() {
        if let Some(c) = cna {
            descs = english_first(
                c.rejected_reasons
                    .iter()
                    .map(|d| (d.lang.as_ref(), d.value.as_ref())),
            );
        }
    }
    let mut cwes = Vec::new();
    let mut vectors = Vec::new();
    for c in containers {
        for p in &c.problem_types {
            for d in &p.descriptions {
                let id = d
                    .cwe_id
                    .as_deref()
                    .or_else(|| d.description.as_deref().and_then(cwe_in));
                if let Some(id) = id.filter(|id| id.starts_with("CWE-")) {
                    push_unique(&mut cwes, id);
                }
            }
        }
        for m in &c.metrics {
            for (cvss, version) in [
                (&m.v2, "2.0"),
                (&m.v30, "3.0"),
                (&m.v31, "3.1"),
                (&m.v40, "4.0"),
            ] {
                if let Some(v) = cvss.as_ref().and_then(|c| c.vector_string.as_deref()) {
                    push_unique(&mut vectors, &vector_text(v, Some(version)));
                }
            }
        }
    }
    let rejected = meta
        .state
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("REJECTED"))
        || descs.iter().any(|d| is_rejected_description(d));
    let title = cna.and_then(|c| c.title.as_deref());
    RecordParts {
        id: meta.cve_id.to_string(),
        source: SourceKind::Cve5,
        kind: "cve".into(),
        text: cve_text(max_text, &meta.cve_id, title, &descs, &cwes, &vectors),
        flags: RecordFlags {
            rejected,
            ..RecordFlags::default()
        },
        scored: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cna_then_adp_fields() {
        let j = r#"{"dataType":"CVE_RECORD","cveMetadata":{"cveId":"CVE-2024-9","state":"PUBLISHED"},
          "containers":{"cna":{"title":"Overflow in X","descriptions":[{"lang":"en-US","value":"A bug."}],
             "problemTypes":[{"descriptions":[{"lang":"en","description":"CWE-787 Out-of-bounds Write","type":"CWE"}]}],
             "metrics":[{"cvssV3_1":{"vectorString":"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}}]},
           "adp":[{"problemTypes":[{"descriptions":[{"cweId":"CWE-121","description":"x"}]}],
                   "metrics":[{"other":{"type":"ssvc"}},{"cvssV2_0":{"vectorString":"AV:N/AC:L/Au:N/C:P/I:P/A:P"}}]}]}}"#;
        let p = cve5_parts(serde_json::from_str(j).unwrap(), 1 << 16);
        assert_eq!(
            p.text,
            "CVE-2024-9\nOverflow in X\nA bug.\nCWE-787 CWE-121\n\
             CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H\nCVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P"
        );
        assert!(!p.flags.rejected);
    }

    #[test]
    fn rejected_record_uses_reason() {
        let j = r#"{"cveMetadata":{"cveId":"CVE-1","state":"REJECTED"},"containers":{"cna":{"rejectedReasons":[{"lang":"en","value":"Duplicate."}]}}}"#;
        let p = cve5_parts(serde_json::from_str(j).unwrap(), 100);
        assert!(p.flags.rejected);
        assert_eq!(p.text, "CVE-1\nDuplicate.");
    }
}
