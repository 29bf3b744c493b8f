//! Format detection from content: the first bytes decide between XML, a JSON document, JSON
//! Lines, and inputs we refuse (binary, empty, unknown). The name only breaks the tie for
//! JSON Lines whose first line is too long to see in the peek.

use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detected {
    /// One JSON document (array root, wrapper object, or a single record object).
    JsonDocument,
    /// Several JSON values, one per line.
    JsonLines,
    /// An XML document (CAPEC or CWE is decided by the root element).
    Xml,
    /// Only whitespace.
    Empty,
    /// A NUL byte at this offset: a binary file.
    Binary { offset: usize },
    /// Starts with something that is neither JSON nor XML.
    Unknown { offset: usize, byte: u8 },
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Offset of the first content byte after an optional UTF-8 BOM and whitespace.
pub(crate) fn first_content(peek: &[u8]) -> Option<usize> {
    let start = if peek.starts_with(BOM) { BOM.len() } else { 0 };
    peek[start..]
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| i + start)
}

pub(crate) fn detect(peek: &[u8], path: &Path) -> Detected {
    // Text formats never contain NUL; look at the first 8 KiB.
    if let Some(offset) = memchr::memchr(0, &peek[..peek.len().min(8192)]) {
        return Detected::Binary { offset };
    }
    let Some(at) = first_content(peek) else {
        return Detected::Empty;
    };
    match peek[at] {
        b'<' => Detected::Xml,
        b'{' | b'[' => {
            if name_says_lines(path) || looks_like_lines(&peek[at..]) {
                Detected::JsonLines
            } else {
                Detected::JsonDocument
            }
        }
        byte => Detected::Unknown { offset: at, byte },
    }
}

fn name_says_lines(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    name.ends_with(".jsonl") || name.ends_with(".ndjson")
}

/// True when the first JSON value ends on its line and another value starts on a later line.
fn looks_like_lines(s: &[u8]) -> bool {
    let Some(end) = end_of_first_value(s) else {
        return false;
    };
    // Pretty-printed values span lines; JSON Lines keeps each value on one.
    if s[..end].contains(&b'\n') {
        return false;
    }
    let rest = &s[end..];
    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
        return false;
    };
    if rest[..nl].iter().any(|b| !b.is_ascii_whitespace()) {
        return false;
    }
    matches!(
        rest[nl..].iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{') | Some(b'[')
    )
}

/// End (exclusive) of the object or array at the start of `s`, if it ends within `s`.
fn end_of_first_value(s: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'"' => {
                i += 1;
                loop {
                    // An escape may be the peek's last byte: `i` then points past the end.
                    let j = memchr::memchr2(b'"', b'\\', s.get(i..)?)? + i;
                    if s[j] == b'\\' {
                        i = j + 2;
                    } else {
                        i = j + 1;
                        break;
                    }
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &[u8]) -> Detected {
        detect(s, Path::new("x.json"))
    }

    #[test]
    fn detects_shapes() {
        assert_eq!(d(b"  [1,2]"), Detected::JsonDocument);
        assert_eq!(d(b"\xEF\xBB\xBF{\"a\":1}\n"), Detected::JsonDocument);
        assert_eq!(d(b"{\"a\":\"}\\\"\"}\n{\"b\":2}\n"), Detected::JsonLines);
        assert_eq!(d(b"{\"a\":1} {\"b\":2}"), Detected::JsonDocument);
        assert_eq!(d(b"{\n\"a\":1\n}\n{\n\"b\":2\n}\n"), Detected::JsonDocument);
        assert_eq!(d(b"<?xml version='1.0'?><a/>"), Detected::Xml);
        assert_eq!(d(b" \n "), Detected::Empty);
        assert_eq!(d(b"\x89PNG\r\n\x1a\n\0\0"), Detected::Binary { offset: 8 });
        assert_eq!(
            d(b"hello"),
            Detected::Unknown {
                offset: 0,
                byte: b'h'
            }
        );
        // Found by fuzzing (fuzz/regressions/detect): a peek ending in a backslash.
        assert_eq!(d(b"{\"a\":\"x\\"), Detected::JsonDocument);
        assert_eq!(
            detect(b"{\"a\":1", Path::new("x.JSONL.gz")),
            Detected::JsonLines
        );
    }
}
