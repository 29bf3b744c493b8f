//! Turning one JSON record's bytes into a `Record`, fastest path first: a one-pass cursor for
//! NVD items, typed serde structs when the wrapper key names the shape, and a classifying path
//! over `serde_json::Value` for everything else (and for labels).

use super::common::{Place, RecordParts};
use super::cve5::{cve5_parts, Cve5Record};
use super::generic::{generic_parts, label_of};
use super::json_nav::Cursor;
use super::json_stream::Container;
use super::nvd::{
    api2_parts, api2_parts_fast, legacy_parts, legacy_parts_fast, Api2Item, LegacyItem,
};
use super::stix::{stix_parts, StixObject};
use super::IngestError;
use crate::record::Record;
use serde::Deserialize;
use serde_json::Value;

/// The shape of a JSON record, told from its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    NvdApi2,
    NvdLegacy,
    Cve5,
    Stix,
    Other,
}

pub(crate) fn classify(v: &Value) -> Shape {
    let Some(o) = v.as_object() else {
        return Shape::Other;
    };
    if o.get("cveMetadata").is_some_and(Value::is_object) {
        return Shape::Cve5;
    }
    if let Some(cve) = o.get("cve").and_then(Value::as_object) {
        if cve.contains_key("CVE_data_meta") {
            return Shape::NvdLegacy;
        }
        if cve.get("id").is_some_and(Value::is_string) {
            return Shape::NvdApi2;
        }
    }
    let is_stix_id = o
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|id| id.contains("--"));
    if is_stix_id && o.get("type").is_some_and(Value::is_string) {
        return Shape::Stix;
    }
    Shape::Other
}

/// The shape the wrapper key promises, for the typed fast path.
fn promised_shape(container: Container<'_>) -> Option<Shape> {
    match container {
        Container::Wrapper("vulnerabilities") => Some(Shape::NvdApi2),
        Container::Wrapper("CVE_Items") => Some(Shape::NvdLegacy),
        Container::Wrapper("objects") => Some(Shape::Stix),
        _ => None,
    }
}

fn typed_parts<'de, D>(shape: Shape, de: D, place: &Place<'_>) -> Result<RecordParts, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let max = place.opts.max_text_bytes;
    Ok(match shape {
        Shape::NvdApi2 => api2_parts(Api2Item::deserialize(de)?, max),
        Shape::NvdLegacy => legacy_parts(LegacyItem::deserialize(de)?, max),
        Shape::Cve5 => cve5_parts(Cve5Record::deserialize(de)?, max),
        Shape::Stix => stix_parts(StixObject::deserialize(de)?, &place.opts.stix_types, max),
        Shape::Other => {
            return Err(serde::de::Error::custom("no typed shape"));
        }
    })
}

fn first_key_is_cve(text: &str) -> bool {
    let mut c = Cursor::new(text);
    c.enter_object().is_ok() && matches!(c.next_key(), Ok(Some("cve")))
}

/// Absolute offset of a serde_json error inside `text` that starts at `offset`.
fn error_offset(text: &str, offset: u64, e: &serde_json::Error) -> u64 {
    let mut line_start = 0usize;
    for _ in 1..e.line() {
        match text[line_start..].find('\n') {
            Some(i) => line_start += i + 1,
            None => break,
        }
    }
    offset + (line_start + e.column().saturating_sub(1)) as u64
}

pub(crate) fn json_record(
    place: &Place<'_>,
    container: Container<'_>,
    bytes: &[u8],
) -> Result<Record, IngestError> {
    let text = std::str::from_utf8(bytes).map_err(|e| IngestError::InvalidUtf8 {
        file: place.file.as_ref().clone(),
        place: format!("byte {}", place.offset + e.valid_up_to() as u64),
    })?;
    let syntax = |e: serde_json::Error| {
        let at = error_offset(text, place.offset, &e);
        if e.to_string().starts_with("recursion limit exceeded") {
            IngestError::TooDeep {
                file: place.file.as_ref().clone(),
                place: format!("byte {at}"),
                limit: super::MAX_JSON_DEPTH,
            }
        } else {
            place.syntax(at, format!("{}; expected valid JSON", strip_position(&e)))
        }
    };
    // Fastest path: navigate NVD records, parsing only the fields that are read.
    if place.opts.label_field.is_none() {
        let max = place.opts.max_text_bytes;
        let fast = match container {
            Container::Wrapper("vulnerabilities") => api2_parts_fast(text, max).ok(),
            Container::Wrapper("CVE_Items") => legacy_parts_fast(text, max).ok(),
            // NVD items outside their wrapper (JSON Lines, a plain array): `{"cve": …` first.
            _ if first_key_is_cve(text) => api2_parts_fast(text, max)
                .or_else(|_| legacy_parts_fast(text, max))
                .ok(),
            _ => None,
        };
        if let Some(parts) = fast {
            return Ok(place.record(parts));
        }
    }
    // Fast path: typed straight from the text when the wrapper names the shape.
    if place.opts.label_field.is_none() {
        if let Some(shape) = promised_shape(container) {
            let mut de = serde_json::Deserializer::from_str(text);
            match typed_parts(shape, &mut de, place).and_then(|p| de.end().map(|_| p)) {
                Ok(parts) => return Ok(place.record(parts)),
                Err(e) if e.is_data() => {} // another shape under that key: classify below
                Err(e) => return Err(syntax(e)),
            }
        }
    }
    let value: Value = serde_json::from_str(text).map_err(syntax)?;
    let shape = classify(&value);
    let parts = match typed_parts(shape, &value, place) {
        Ok(parts) => parts,
        Err(_) => generic_parts(&value, place.fallback_id(), place.opts.max_text_bytes),
    };
    let mut record = place.record(parts);
    if let Some(field) = &place.opts.label_field {
        record.label = label_of(&value, field);
    }
    Ok(record)
}

/// serde_json messages end in " at line L column C"; the place is reported separately.
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes_from_keys() {
        assert_eq!(
            classify(&json!({"dataType": "CVE_RECORD", "cveMetadata": {}})),
            Shape::Cve5
        );
        assert_eq!(classify(&json!({"cve": {"id": "CVE-1"}})), Shape::NvdApi2);
        assert_eq!(
            classify(&json!({"cve": {"CVE_data_meta": {}}})),
            Shape::NvdLegacy
        );
        assert_eq!(
            classify(&json!({"type": "malware", "id": "malware--1"})),
            Shape::Stix
        );
        assert_eq!(classify(&json!({"type": "note", "id": "7"})), Shape::Other);
        assert_eq!(classify(&json!([1])), Shape::Other);
    }
}
