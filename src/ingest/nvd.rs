//! NVD CVE API 2.0 (`vulnerabilities[].cve`) and legacy NVD JSON 1.1 (`CVE_Items[]`) records.
//! Typed structs name only the fields a curator reads; serde skips the rest.

use super::common::RecordParts;
use super::json_nav::{parse, str_value, Bad, Cursor};
use super::text::{english_first, push_unique, TextBuilder};
use crate::record::{RecordFlags, SourceKind};
use serde::Deserialize;
use std::borrow::Cow;

#[derive(Deserialize)]
pub(crate) struct LangValue<'a> {
    #[serde(borrow, default)]
    pub lang: Cow<'a, str>,
    #[serde(borrow, default)]
    pub value: Cow<'a, str>,
}

// ---- API 2.0 ----

#[derive(Deserialize)]
pub(crate) struct Api2Item<'a> {
    #[serde(borrow)]
    cve: Api2Cve<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Api2Cve<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    vuln_status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    descriptions: Vec<LangValue<'a>>,
    #[serde(borrow, default)]
    weaknesses: Vec<Api2Weakness<'a>>,
    #[serde(borrow, default)]
    metrics: Api2Metrics<'a>,
}

#[derive(Deserialize)]
struct Api2Weakness<'a> {
    #[serde(borrow, default)]
    description: Vec<LangValue<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Api2Metrics<'a> {
    #[serde(borrow, default, rename = "cvssMetricV2")]
    v2: Vec<Api2Metric<'a>>,
    #[serde(borrow, default, rename = "cvssMetricV30")]
    v30: Vec<Api2Metric<'a>>,
    #[serde(borrow, default, rename = "cvssMetricV31")]
    v31: Vec<Api2Metric<'a>>,
    #[serde(borrow, default, rename = "cvssMetricV40")]
    v40: Vec<Api2Metric<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Api2Metric<'a> {
    #[serde(borrow)]
    cvss_data: CvssData<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CvssData<'a> {
    #[serde(borrow, default)]
    pub vector_string: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub version: Option<Cow<'a, str>>,
}

/// The vector as a curator reads it; V2 vectors carry no `CVSS:` prefix in the feeds.
pub(crate) fn vector_text(vector: &str, version: Option<&str>) -> String {
    if vector.starts_with("CVSS:") {
        vector.to_string()
    } else {
        match version {
            Some(v) if !v.is_empty() => format!("CVSS:{v}/{vector}"),
            _ => vector.to_string(),
        }
    }
}

pub(crate) fn is_rejected_description(d: &str) -> bool {
    d.trim_start().starts_with("** REJECT **")
}

/// Shared CVE text layout: id, descriptions (English first), CWE ids, CVSS vectors.
pub(crate) fn cve_text(
    max: usize,
    id: &str,
    title: Option<&str>,
    descriptions: &[&str],
    cwes: &[String],
    vectors: &[String],
) -> String {
    let mut t = TextBuilder::new(max);
    t.line(id);
    if let Some(title) = title {
        t.line(title);
    }
    for d in descriptions {
        t.line(d);
    }
    t.joined("", " ", cwes.iter().map(String::as_str));
    for v in vectors {
        t.line(v);
    }
    t.finish()
}

pub(crate) fn api2_parts(item: Api2Item<'_>, max_text: usize) -> RecordParts {
    let cve = item.cve;
    let descs = english_first(
        cve.descriptions
            .iter()
            .map(|d| (d.lang.as_ref(), d.value.as_ref())),
    );
    let mut cwes = Vec::new();
    for w in &cve.weaknesses {
        for d in &w.description {
            if d.value.starts_with("CWE-") {
                push_unique(&mut cwes, &d.value);
            }
        }
    }
    let mut vectors = Vec::new();
    let m = &cve.metrics;
    for (list, version) in [
        (&m.v2, "2.0"),
        (&m.v30, "3.0"),
        (&m.v31, "3.1"),
        (&m.v40, "4.0"),
    ] {
        for metric in list {
            if let Some(v) = &metric.cvss_data.vector_string {
                push_unique(&mut vectors, &vector_text(v, Some(version)));
            }
        }
    }
    let rejected = cve
        .vuln_status
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("rejected"))
        || descs.iter().any(|d| is_rejected_description(d));
    RecordParts {
        id: cve.id.to_string(),
        source: SourceKind::NvdApi2,
        kind: "cve".into(),
        text: cve_text(max_text, &cve.id, None, &descs, &cwes, &vectors),
        flags: RecordFlags {
            rejected,
            ..RecordFlags::default()
        },
        scored: true,
    }
}

/// The same record as `api2_parts`, read by navigating the text: only `id`, `vulnStatus`,
/// `descriptions`, `weaknesses` and the metrics' `vectorString`s are parsed; the rest
/// (configurations, references, scores) is skipped unparsed. `Err` means: use the serde path.
pub(crate) fn api2_parts_fast(text: &str, max_text: usize) -> Result<RecordParts, Bad> {
    let mut id = None;
    let mut status = None;
    let mut descriptions: Vec<LangValue<'_>> = Vec::new();
    let mut weaknesses: Vec<Api2Weakness<'_>> = Vec::new();
    // Vectors per version, in the order V2, V3.0, V3.1, V4.0 whatever the key order.
    let mut by_version: [Vec<String>; 4] = Default::default();
    let mut c = Cursor::new(text);
    c.enter_object()?;
    let mut seen_cve = false;
    while let Some(key) = c.next_key()? {
        if key != "cve" || seen_cve {
            c.skip()?;
            continue;
        }
        seen_cve = true;
        c.enter_object()?;
        while let Some(k) = c.next_key()? {
            match k {
                "id" => id = Some(str_value(c.value()?)?),
                "vulnStatus" => status = Some(str_value(c.value()?)?),
                "descriptions" => descriptions = parse(c.value()?)?,
                "weaknesses" => weaknesses = parse(c.value()?)?,
                "metrics" => read_metrics(&mut c, &mut by_version)?,
                _ => c.skip()?,
            }
        }
    }
    let id = id.ok_or(Bad)?;
    let descs = english_first(
        descriptions
            .iter()
            .map(|d| (d.lang.as_ref(), d.value.as_ref())),
    );
    let mut cwes = Vec::new();
    for w in &weaknesses {
        for d in &w.description {
            if d.value.starts_with("CWE-") {
                push_unique(&mut cwes, &d.value);
            }
        }
    }
    let mut vectors = Vec::new();
    for v in by_version.iter().flatten() {
        push_unique(&mut vectors, v);
    }
    let rejected = status
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("rejected"))
        || descs.iter().any(|d| is_rejected_description(d));
    Ok(RecordParts {
        text: cve_text(max_text, &id, None, &descs, &cwes, &vectors),
        id: id.into_owned(),
        source: SourceKind::NvdApi2,
        kind: "cve".into(),
        flags: RecordFlags {
            rejected,
            ..RecordFlags::default()
        },
        scored: true,
    })
}

/// `metrics: {cvssMetricV2: [{cvssData: {vectorString}}], …}`: only the vectors are read.
fn read_metrics(c: &mut Cursor<'_>, by_version: &mut [Vec<String>; 4]) -> Result<(), Bad> {
    c.enter_object()?;
    while let Some(list) = c.next_key()? {
        let (slot, version) = match list {
            "cvssMetricV2" => (0, "2.0"),
            "cvssMetricV30" => (1, "3.0"),
            "cvssMetricV31" => (2, "3.1"),
            "cvssMetricV40" => (3, "4.0"),
            _ => {
                c.skip()?;
                continue;
            }
        };
        c.enter_array()?;
        while c.next_item()? {
            c.enter_object()?;
            while let Some(field) = c.next_key()? {
                if field != "cvssData" {
                    c.skip()?;
                    continue;
                }
                c.enter_object()?;
                while let Some(k) = c.next_key()? {
                    if k == "vectorString" {
                        let v = vector_text(&str_value(c.value()?)?, Some(version));
                        push_unique(&mut by_version[slot], &v);
                    } else {
                        c.skip()?;
                    }
                }
            }
        }
    }
    Ok(())
}

// ---- legacy 1.1 ----

#[derive(Deserialize)]
pub(crate) struct LegacyItem<'a> {
    #[serde(borrow)]
    cve: LegacyCve<'a>,
    #[serde(borrow, default)]
    impact: LegacyImpact<'a>,
}

#[derive(Deserialize)]
struct LegacyCve<'a> {
    #[serde(borrow, rename = "CVE_data_meta")]
    meta: LegacyMeta<'a>,
    #[serde(borrow, default)]
    problemtype: LegacyProblemType<'a>,
    #[serde(borrow, default)]
    description: LegacyDescription<'a>,
}

#[derive(Deserialize)]
struct LegacyMeta<'a> {
    #[serde(borrow, rename = "ID")]
    id: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
struct LegacyProblemType<'a> {
    #[serde(borrow, default)]
    problemtype_data: Vec<LegacyDescription<'a>>,
}

#[derive(Deserialize, Default)]
struct LegacyDescription<'a> {
    #[serde(borrow, default, alias = "description")]
    description_data: Vec<LangValue<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LegacyImpact<'a> {
    #[serde(borrow, default)]
    base_metric_v2: Option<LegacyV2<'a>>,
    #[serde(borrow, default)]
    base_metric_v3: Option<LegacyV3<'a>>,
}

#[derive(Deserialize)]
struct LegacyV2<'a> {
    #[serde(borrow, rename = "cvssV2")]
    cvss: CvssData<'a>,
}

#[derive(Deserialize)]
struct LegacyV3<'a> {
    #[serde(borrow, rename = "cvssV3")]
    cvss: CvssData<'a>,
}

/// `legacy_parts` by navigation: `configurations` and `references` are skipped unparsed.
pub(crate) fn legacy_parts_fast(text: &str, max_text: usize) -> Result<RecordParts, Bad> {
    let mut meta = None;
    let mut problemtype = LegacyProblemType::default();
    let mut description = LegacyDescription::default();
    let mut impact = LegacyImpact::default();
    let mut c = Cursor::new(text);
    c.enter_object()?;
    while let Some(key) = c.next_key()? {
        match key {
            "cve" => {
                c.enter_object()?;
                while let Some(k) = c.next_key()? {
                    match k {
                        "CVE_data_meta" => meta = Some(parse(c.value()?)?),
                        "problemtype" => problemtype = parse(c.value()?)?,
                        "description" => description = parse(c.value()?)?,
                        _ => c.skip()?,
                    }
                }
            }
            "impact" => impact = parse(c.value()?)?,
            _ => c.skip()?,
        }
    }
    let item = LegacyItem {
        cve: LegacyCve {
            meta: meta.ok_or(Bad)?,
            problemtype,
            description,
        },
        impact,
    };
    Ok(legacy_parts(item, max_text))
}

pub(crate) fn legacy_parts(item: LegacyItem<'_>, max_text: usize) -> RecordParts {
    let cve = &item.cve;
    let descs = english_first(
        cve.description
            .description_data
            .iter()
            .map(|d| (d.lang.as_ref(), d.value.as_ref())),
    );
    let mut cwes = Vec::new();
    for p in &cve.problemtype.problemtype_data {
        for d in &p.description_data {
            if d.value.starts_with("CWE-") {
                push_unique(&mut cwes, &d.value);
            }
        }
    }
    let mut vectors = Vec::new();
    if let Some(v2) = &item.impact.base_metric_v2 {
        if let Some(v) = &v2.cvss.vector_string {
            push_unique(&mut vectors, &vector_text(v, v2.cvss.version.as_deref()));
        }
    }
    if let Some(v3) = &item.impact.base_metric_v3 {
        if let Some(v) = &v3.cvss.vector_string {
            push_unique(&mut vectors, &vector_text(v, v3.cvss.version.as_deref()));
        }
    }
    let rejected = descs.iter().any(|d| is_rejected_description(d));
    RecordParts {
        id: cve.meta.id.to_string(),
        source: SourceKind::NvdLegacy,
        kind: "cve".into(),
        text: cve_text(max_text, &cve.meta.id, None, &descs, &cwes, &vectors),
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
    fn fast_path_equals_serde_path() {
        let json = r#"{"cve":{"id":"CVE-2024-1","vulnStatus":"Rejected","configurations":[{"nodes":[{"cpeMatch":[{"criteria":"cpe:2.3:a:x:y:*"}]}]}],
          "descriptions":[{"lang":"es","value":"hola"},{"lang":"en","value":"** REJECT ** \"dup\"."}],
          "metrics":{"cvssMetricV40":[{"source":"a","cvssData":{"version":"4.0","vectorString":"CVSS:4.0/AV:N"}}],
                     "cvssMetricV2":[{"cvssData":{"version":"2.0","vectorString":"AV:N/AC:L/Au:N/C:P/I:P/A:P"},"baseSeverity":"HIGH"}]},
          "weaknesses":[{"description":[{"lang":"en","value":"CWE-79"}]}],"references":[{"url":"http://x"}]}}"#;
        let slow = api2_parts(serde_json::from_str(json).unwrap(), 1 << 16);
        let fast = api2_parts_fast(json, 1 << 16).unwrap();
        assert_eq!(
            (fast.id, fast.text, fast.flags),
            (slow.id, slow.text.clone(), slow.flags)
        );
        assert_eq!(
            slow.text,
            "CVE-2024-1\n** REJECT ** \"dup\".\nCWE-79\nCVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P\nCVSS:4.0/AV:N"
        );
        assert!(api2_parts_fast(r#"{"cve":{"id":"CVE-1","references":[}}"#, 100).is_err());
        assert!(api2_parts_fast(r#"{"cve":{"descriptions":[]}}"#, 100).is_err());
    }

    #[test]
    fn api2_text_english_first_with_cwe_and_all_cvss_versions() {
        let json = r#"{"cve":{"id":"CVE-2024-1","vulnStatus":"Analyzed",
          "descriptions":[{"lang":"es","value":"hola"},{"lang":"en","value":"Heap overflow."}],
          "weaknesses":[{"description":[{"lang":"en","value":"CWE-122"},{"lang":"en","value":"NVD-CWE-Other"}]}],
          "metrics":{"cvssMetricV2":[{"cvssData":{"version":"2.0","vectorString":"AV:N/AC:L/Au:N/C:P/I:P/A:P"}}],
                     "cvssMetricV31":[{"cvssData":{"version":"3.1","vectorString":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}}],
                     "cvssMetricV40":[{"cvssData":{"version":"4.0","vectorString":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}}]},
          "configurations":[{"nodes":[]}]}}"#;
        let p = api2_parts(serde_json::from_str(json).unwrap(), 1 << 16);
        assert_eq!(p.id, "CVE-2024-1");
        assert!(!p.flags.rejected);
        assert_eq!(
            p.text,
            "CVE-2024-1\nHeap overflow.\nCWE-122\nCVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P\n\
             CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\n\
             CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
        );
    }

    #[test]
    fn rejected_by_status_or_text() {
        let j = r#"{"cve":{"id":"CVE-1","vulnStatus":"Rejected","descriptions":[]}}"#;
        assert!(
            api2_parts(serde_json::from_str(j).unwrap(), 100)
                .flags
                .rejected
        );
        let j = r#"{"cve":{"CVE_data_meta":{"ID":"CVE-2"},"description":{"description_data":[{"lang":"en","value":"** REJECT ** dup"}]}}}"#;
        let p = legacy_parts(serde_json::from_str(j).unwrap(), 100);
        assert!(p.flags.rejected);
        assert_eq!(p.text, "CVE-2\n** REJECT ** dup");
    }
}

#[cfg(test)]
mod sample_check {
    #[test]
    fn legacy_fast_path_covers_the_sample_feed() {
        let feed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sample_data/nvd/nvdcve-1.1-recent-2019-09-26-sample.json");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(feed).unwrap()).unwrap();
        for e in v["CVE_Items"].as_array().unwrap() {
            let text = serde_json::to_string_pretty(e).unwrap();
            let fast = super::legacy_parts_fast(&text, 1 << 16).expect("fast path");
            let slow = super::legacy_parts(serde_json::from_str(&text).unwrap(), 1 << 16);
            assert_eq!(
                (fast.id, fast.text, fast.flags),
                (slow.id, slow.text, slow.flags)
            );
        }
        assert!(super::legacy_parts_fast(r#"{"cve":{"description":{}}}"#, 100).is_err());
    }

    #[test]
    fn fast_path_covers_the_sample_page() {
        let page = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sample_data/nvd/nvd-api2.0-page0-sample.json");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(page).unwrap()).unwrap();
        for e in v["vulnerabilities"].as_array().unwrap() {
            let text = serde_json::to_string(e).unwrap();
            let fast = super::api2_parts_fast(&text, 1 << 16).expect("fast path");
            let slow = super::api2_parts(serde_json::from_str(&text).unwrap(), 1 << 16);
            assert_eq!(
                (fast.id, fast.text, fast.flags),
                (slow.id, slow.text, slow.flags)
            );
        }
    }
}
