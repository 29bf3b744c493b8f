//! Any other JSON record: the fields a reader would read, in a fixed order, never the file name.

use super::common::RecordParts;
use super::text::TextBuilder;
use crate::record::{RecordFlags, SourceKind};
use serde_json::Value;

/// Fields whose text a curator reads, in this order.
const TEXT_FIELDS: &[&str] = &[
    "title",
    "name",
    "summary",
    "description",
    "descriptions",
    "abstract",
    "text",
    "content",
    "details",
    "message",
];

/// Fields that hold a record's natural identifier.
const ID_FIELDS: &[&str] = &["id", "cve_id", "cveId", "ID"];

pub(crate) fn natural_id(v: &Value) -> Option<String> {
    let obj = v.as_object()?;
    ID_FIELDS.iter().find_map(|k| match obj.get(*k)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// A top-level scalar rendered as a label (`"security"`, `true`, `1`).
pub(crate) fn label_of(v: &Value, field: &str) -> Option<String> {
    match v.as_object()?.get(field)? {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn push_value(t: &mut TextBuilder, v: &Value, depth: u8) {
    match v {
        Value::String(s) => t.line(s),
        Value::Array(items) if depth < 2 => {
            for item in items {
                push_value(t, item, depth + 1);
            }
        }
        // `{"lang": "en", "value": "..."}` and feedparser's `title_detail`-style objects.
        Value::Object(o) if depth < 2 => {
            if let Some(inner) = o.get("value") {
                push_value(t, inner, depth + 1);
            }
        }
        _ => {}
    }
}

pub(crate) fn generic_parts(v: &Value, fallback_id: String, max_text: usize) -> RecordParts {
    let mut t = TextBuilder::new(max_text);
    match v {
        Value::Object(o) => {
            for field in TEXT_FIELDS {
                if let Some(value) = o.get(*field) {
                    push_value(&mut t, value, 0);
                }
            }
        }
        Value::String(s) => t.line(s),
        Value::Array(_) => push_value(&mut t, v, 0),
        other => t.line(&other.to_string()),
    }
    RecordParts {
        id: natural_id(v).unwrap_or(fallback_id),
        source: SourceKind::Json,
        kind: "json".into(),
        text: t.finish(),
        flags: RecordFlags::default(),
        scored: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_in_order_and_nested_values() {
        let v = json!({"link": "http://x", "summary": "S", "title": "T", "id": 7,
            "descriptions": [{"lang": "en", "value": "D1"}, "D2"], "other": "never"});
        let p = generic_parts(&v, "f#0".into(), 1000);
        assert_eq!(p.id, "7");
        assert_eq!(p.text, "T\nS\nD1\nD2");
        let p = generic_parts(&json!({"x": 1}), "f.json#3".into(), 1000);
        assert_eq!((p.id.as_str(), p.text.as_str()), ("f.json#3", ""));
        assert_eq!(label_of(&json!({"l": true}), "l").as_deref(), Some("true"));
        assert_eq!(label_of(&json!({"l": [1]}), "l"), None);
    }
}
