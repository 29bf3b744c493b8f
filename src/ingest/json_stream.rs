//! A byte-level structural scanner for JSON that streams the records of a document without
//! parsing them: it tracks strings, escapes and nesting depth only, and hands each record's
//! bytes (with their absolute offset) to a callback. Memory is bounded by one record.
//!
//! Shapes: an array root (each element is a record), an object root with a list under a known
//! key (each list element is a record), an object root with an `xml_data` string (a CAPEC
//! catalogue), a single record object, and JSON Lines (each non-blank line is a record).

use std::io::{self, Read};
use std::ops::ControlFlow;

/// Keys of a root object whose list value holds the records.
pub(crate) const LIST_KEYS: &[&str] = &[
    "vulnerabilities",
    "CVE_Items",
    "objects",
    "papers",
    "entries",
    "value",
    "summary",
    "data",
    "items",
    "records",
    "results",
    "ctftime_events",
];

const BUF_BYTES: usize = 256 * 1024;
const MAX_HINT_BYTES: usize = 256;

/// Where a record sits in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Container<'a> {
    /// Element of a root array.
    RootArray,
    /// Element of the list under this key of the root object.
    Wrapper(&'a str),
    /// The root object itself.
    Single,
    /// One line of JSON Lines.
    Line,
}

/// What the scanner found. Borrowed slices live until the callback returns.
#[derive(Debug)]
pub(crate) enum Item<'a> {
    Record {
        container: Container<'a>,
        index: u64,
        offset: u64,
        bytes: &'a [u8],
    },
    /// A record larger than the limit; skipped.
    Oversized { offset: u64, len: u64 },
    /// A record nested deeper than the limit; skipped. `at` is where the limit was crossed.
    TooDeep { offset: u64, at: u64 },
    /// The decoded value of a root `xml_data` string; `offset` is the opening quote's.
    XmlString { offset: u64, decoded: String },
}

/// Why scanning stopped before the end of the document.
#[derive(Debug)]
pub(crate) enum ScanStop {
    Io(io::Error),
    /// Malformed or truncated structure: the rest of the file cannot be trusted.
    Syntax {
        offset: u64,
        what: String,
    },
    /// The callback asked to stop.
    Stopped,
}

type Emit<'e> = dyn FnMut(Item<'_>) -> ControlFlow<()> + 'e;

// Byte classes for the structural fast path.
pub(crate) const PLAIN: u8 = 0;
pub(crate) const QUOTE: u8 = 1;
pub(crate) const OPEN: u8 = 2;
const CLOSE: u8 = 3;

pub(crate) static CLASS: [u8; 256] = {
    let mut t = [PLAIN; 256];
    t[b'"' as usize] = QUOTE;
    t[b'{' as usize] = OPEN;
    t[b'[' as usize] = OPEN;
    t[b'}' as usize] = CLOSE;
    t[b']' as usize] = CLOSE;
    t
};

pub(crate) struct JsonScanner<R: Read> {
    src: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Absolute offset of `buf[0]`.
    base: u64,
    /// Start of the bytes being kept (a record being captured); `None` keeps nothing.
    mark: Option<usize>,
    /// The marked bytes grew past `max_record`; capture was dropped.
    overflow: bool,
    eof: bool,
    max_record: usize,
    max_depth: u32,
    /// Where the current value first crossed `max_depth`.
    too_deep: Option<u64>,
    index: u64,
    /// Largest the buffer has been (for the memory tests).
    peak_buf: usize,
}

impl<R: Read> JsonScanner<R> {
    pub(crate) fn new(src: R, max_record: u64, max_depth: u32) -> Self {
        JsonScanner {
            src,
            buf: vec![0; BUF_BYTES],
            pos: 0,
            end: 0,
            base: 0,
            mark: None,
            overflow: false,
            eof: false,
            max_record: usize::try_from(max_record).unwrap_or(usize::MAX).max(1),
            max_depth,
            too_deep: None,
            index: 0,
            peak_buf: BUF_BYTES,
        }
    }

    /// Bytes consumed so far.
    pub(crate) fn consumed(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn abs(&self, at: usize) -> u64 {
        self.base + at as u64
    }

    /// Make `pos < end` true by reading more; false at end of input.
    fn fill(&mut self) -> Result<bool, ScanStop> {
        if self.pos < self.end {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        if let Some(m) = self.mark {
            if self.end - m > self.max_record {
                // Too big to keep: drop it and fall back to counting only.
                self.mark = None;
                self.overflow = true;
            }
        }
        let keep = self.mark.unwrap_or(self.pos);
        if keep > 0 {
            self.buf.copy_within(keep..self.end, 0);
            self.base += keep as u64;
            self.end -= keep;
            self.pos -= keep;
            if self.mark.is_some() {
                self.mark = Some(0);
            }
        }
        if self.mark.is_none() && self.buf.len() > BUF_BYTES && self.end < BUF_BYTES {
            // A past large record grew the buffer; give the memory back.
            self.buf.truncate(BUF_BYTES);
            self.buf.shrink_to_fit();
        }
        if self.end == self.buf.len() {
            // Only a marked record fills the buffer; it never needs more than the limit.
            let cap = self.max_record.saturating_add(BUF_BYTES);
            let grown = self.buf.len().saturating_mul(2).min(cap).max(self.end + 1);
            self.buf.resize(grown, 0);
            self.peak_buf = self.peak_buf.max(grown);
        }
        loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ScanStop::Io(e)),
            }
        }
    }

    fn truncated(&self, what: &str) -> ScanStop {
        ScanStop::Syntax {
            offset: self.abs(self.end),
            what: format!("unexpected end of input; expected {what}"),
        }
    }

    /// Skip whitespace; the next byte (not consumed), or `None` at end of input.
    fn skip_ws(&mut self) -> Result<Option<u8>, ScanStop> {
        loop {
            while self.pos < self.end {
                let b = self.buf[self.pos];
                if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                    return Ok(Some(b));
                }
                self.pos += 1;
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    fn expect_byte(&mut self, what: &str) -> Result<u8, ScanStop> {
        self.skip_ws()?.ok_or_else(|| self.truncated(what))
    }

    /// Consume a string; `pos` is at its opening quote.
    fn scan_string(&mut self) -> Result<(), ScanStop> {
        self.pos += 1;
        loop {
            match super::json_nav::find_quote_or_escape(&self.buf[..self.end], self.pos) {
                Some(at) => {
                    if self.buf[at] == b'"' {
                        self.pos = at + 1;
                        return Ok(());
                    }
                    // A backslash: skip it and the escaped byte.
                    self.pos = at + 1;
                    if self.pos == self.end && !self.fill()? {
                        return Err(self.truncated("the end of a string"));
                    }
                    self.pos += 1;
                }
                None => {
                    self.pos = self.end;
                    if !self.fill()? {
                        return Err(self.truncated("the end of a string"));
                    }
                }
            }
        }
    }

    /// Consume one value; `pos` is at its first byte. Nesting deeper than `max_depth` is
    /// noted in `too_deep` and counted on (no recursion, so any depth is safe).
    fn scan_value(&mut self) -> Result<(), ScanStop> {
        match self.buf[self.pos] {
            b'"' => self.scan_string(),
            b'{' | b'[' => self.scan_nested(),
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => self.scan_scalar(),
            b => Err(ScanStop::Syntax {
                offset: self.abs(self.pos),
                what: format!("expected a JSON value, found {}", show_byte(b)),
            }),
        }
    }

    fn scan_scalar(&mut self) -> Result<(), ScanStop> {
        loop {
            while self.pos < self.end {
                if matches!(
                    self.buf[self.pos],
                    b',' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t'
                ) {
                    return Ok(());
                }
                self.pos += 1;
            }
            if !self.fill()? {
                return Ok(());
            }
        }
    }

    fn scan_nested(&mut self) -> Result<(), ScanStop> {
        let mut depth: u32 = 0;
        loop {
            if self.pos == self.end && !self.fill()? {
                return Err(self.truncated("'}' or ']' to close the record"));
            }
            // Hot loop over the bytes in the buffer.
            let mut pos = self.pos;
            let bytes = &self.buf[..self.end];
            'bytes: while pos < bytes.len() {
                match CLASS[bytes[pos] as usize] {
                    PLAIN => pos += 1,
                    QUOTE => {
                        // Strings that end inside the buffer are skipped here; others below.
                        let mut at = pos + 1;
                        loop {
                            match super::json_nav::find_quote_or_escape(bytes, at) {
                                Some(q) if bytes[q] == b'"' => {
                                    pos = q + 1;
                                    continue 'bytes;
                                }
                                Some(e) if e + 2 <= bytes.len() => at = e + 2,
                                _ => break 'bytes,
                            }
                        }
                    }
                    OPEN => {
                        depth += 1;
                        if depth > self.max_depth && self.too_deep.is_none() {
                            self.too_deep = Some(self.base + pos as u64);
                        }
                        pos += 1;
                    }
                    _ => {
                        depth = depth.saturating_sub(1);
                        pos += 1;
                        if depth == 0 {
                            self.pos = pos;
                            return Ok(());
                        }
                    }
                }
            }
            let in_buffer = pos < bytes.len();
            self.pos = pos;
            if in_buffer {
                self.scan_string()?;
            }
        }
    }

    /// Scan one record value at `pos` with capture, and emit it.
    fn record(&mut self, container: Container<'_>, emit: &mut Emit<'_>) -> Result<(), ScanStop> {
        let start = self.pos;
        let offset = self.abs(start);
        self.mark = Some(start);
        self.overflow = false;
        self.too_deep = None;
        self.scan_value()?;
        let index = self.index;
        self.index += 1;
        let len = self.consumed() - offset;
        let flow = if self.overflow || len > self.max_record as u64 {
            emit(Item::Oversized { offset, len })
        } else if let Some(at) = self.too_deep {
            emit(Item::TooDeep { offset, at })
        } else {
            let m = self.mark.unwrap_or(0);
            emit(Item::Record {
                container,
                index,
                offset,
                bytes: &self.buf[m..self.pos],
            })
        };
        self.mark = None;
        self.overflow = false;
        match flow {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(ScanStop::Stopped),
        }
    }

    /// Read a whole document.
    pub(crate) fn run_document(&mut self, emit: &mut Emit<'_>) -> Result<(), ScanStop> {
        self.skip_bom()?;
        match self.skip_ws()? {
            None => Ok(()),
            Some(b'[') => {
                self.run_array(Container::RootArray, emit)?;
                self.expect_end()
            }
            Some(b'{') => {
                self.run_object_root(emit)?;
                // Concatenated documents (pretty-printed records one after another): each
                // further value is one record.
                while let Some(b) = self.skip_ws()? {
                    if b != b'{' {
                        return self.expect_end();
                    }
                    self.record(Container::Single, emit)?;
                }
                Ok(())
            }
            Some(b) => Err(ScanStop::Syntax {
                offset: self.consumed(),
                what: format!(
                    "expected '{{' or '[' to start a JSON document, found {}",
                    show_byte(b)
                ),
            }),
        }
    }

    fn skip_bom(&mut self) -> Result<(), ScanStop> {
        while self.end - self.pos < 3 && !self.eof {
            // Keep reading until three bytes are here (or the input ends).
            self.mark = Some(self.pos);
            let before = self.end;
            self.pos = self.end;
            let more = self.fill()?;
            self.pos = self.mark.take().unwrap_or(0);
            if !more || self.end == before {
                break;
            }
        }
        if self.buf[self.pos..self.end].starts_with(b"\xEF\xBB\xBF") {
            self.pos += 3;
        }
        Ok(())
    }

    fn expect_end(&mut self) -> Result<(), ScanStop> {
        match self.skip_ws()? {
            None => Ok(()),
            Some(b) => Err(ScanStop::Syntax {
                offset: self.consumed(),
                what: format!(
                    "expected end of input after the JSON document, found {}",
                    show_byte(b)
                ),
            }),
        }
    }

    /// Stream the elements of the array at `pos` as records.
    fn run_array(&mut self, container: Container<'_>, emit: &mut Emit<'_>) -> Result<(), ScanStop> {
        self.pos += 1; // '['
        if self.expect_byte("a record or ']'")? == b']' {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.record(container, emit)?;
            match self.expect_byte("',' or ']' after a record")? {
                b',' => {
                    self.pos += 1;
                    self.expect_byte("a record after ','")?;
                }
                b']' => {
                    self.pos += 1;
                    return Ok(());
                }
                b => {
                    return Err(ScanStop::Syntax {
                        offset: self.consumed(),
                        what: format!("expected ',' or ']' after a record, found {}", show_byte(b)),
                    })
                }
            }
        }
    }

    /// Read a string at `pos` and return its raw (still escaped) content, if short enough.
    fn short_string(&mut self) -> Result<Option<String>, ScanStop> {
        let outer = self.mark;
        let start_abs = self.consumed();
        if outer.is_none() {
            self.mark = Some(self.pos);
        }
        self.scan_string()?;
        let end_abs = self.consumed();
        let len = (end_abs - start_abs) as usize;
        let out = if self.mark.is_some() && len <= MAX_HINT_BYTES + 2 {
            let start = (start_abs - self.base) as usize;
            std::str::from_utf8(&self.buf[start + 1..self.pos - 1])
                .ok()
                .map(str::to_string)
        } else {
            None
        };
        if outer.is_none() {
            self.mark = None;
        }
        Ok(out)
    }

    /// The root is an object: find the record list (or `xml_data`), else it is one record.
    fn run_object_root(&mut self, emit: &mut Emit<'_>) -> Result<(), ScanStop> {
        let start = self.pos;
        let offset = self.abs(start);
        self.mark = Some(start);
        self.overflow = false;
        self.too_deep = None;
        let mut found_records = false;
        self.pos += 1; // '{'
        let mut first = true;
        loop {
            match self.expect_byte("a key or '}'")? {
                b'}' if first => {
                    self.pos += 1;
                    break;
                }
                b'"' => {}
                b => {
                    return Err(ScanStop::Syntax {
                        offset: self.consumed(),
                        what: format!("expected a key string, found {}", show_byte(b)),
                    })
                }
            }
            first = false;
            let key_at = self.consumed();
            let key = self.short_string()?.unwrap_or_default();
            if self.expect_byte("':' after a key")? != b':' {
                return Err(ScanStop::Syntax {
                    offset: self.consumed(),
                    what: format!("expected ':' after the key at byte {key_at}"),
                });
            }
            self.pos += 1;
            let value_first = self.expect_byte("a value")?;
            if !found_records && value_first == b'[' && LIST_KEYS.contains(&key.as_str()) {
                found_records = true;
                self.mark = None;
                self.run_array(Container::Wrapper(&key), emit)?;
            } else if !found_records && value_first == b'"' && key == "xml_data" {
                found_records = true;
                self.mark = None;
                self.xml_string(emit)?;
            } else {
                self.scan_value()?;
            }
            match self.expect_byte("',' or '}'")? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    break;
                }
                b => {
                    return Err(ScanStop::Syntax {
                        offset: self.consumed(),
                        what: format!(
                            "expected ',' or '}}' in the root object, found {}",
                            show_byte(b)
                        ),
                    })
                }
            }
        }
        if found_records {
            return Ok(());
        }
        // No list: the root object is the record.
        let index = self.index;
        self.index += 1;
        let len = self.consumed() - offset;
        let flow = if self.overflow || len > self.max_record as u64 {
            emit(Item::Oversized { offset, len })
        } else {
            let m = self.mark.unwrap_or(0);
            emit(Item::Record {
                container: Container::Single,
                index,
                offset,
                bytes: &self.buf[m..self.pos],
            })
        };
        self.mark = None;
        match flow {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(ScanStop::Stopped),
        }
    }

    fn xml_string(&mut self, emit: &mut Emit<'_>) -> Result<(), ScanStop> {
        let start = self.pos;
        let offset = self.abs(start);
        self.mark = Some(start);
        self.overflow = false;
        self.scan_string()?;
        self.index += 1;
        let len = self.consumed() - offset;
        let item = if self.overflow || len > self.max_record as u64 {
            Item::Oversized { offset, len }
        } else {
            let m = self.mark.unwrap_or(0);
            match decode_json_string(&self.buf[m..self.pos]) {
                Ok(decoded) => Item::XmlString { offset, decoded },
                Err(what) => {
                    self.mark = None;
                    return Err(ScanStop::Syntax { offset, what });
                }
            }
        };
        self.mark = None;
        match emit(item) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(ScanStop::Stopped),
        }
    }

    /// JSON Lines: every non-blank line is a record, so one bad line never hides the next.
    pub(crate) fn run_lines(&mut self, emit: &mut Emit<'_>) -> Result<(), ScanStop> {
        self.skip_bom()?;
        loop {
            if self.skip_ws()?.is_none() {
                return Ok(());
            }
            let start = self.pos;
            let offset = self.abs(start);
            self.mark = Some(start);
            self.overflow = false;
            // Find the end of the line.
            loop {
                if let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos..self.end]) {
                    self.pos += i;
                    break;
                }
                self.pos = self.end;
                if !self.fill()? {
                    break;
                }
            }
            let index = self.index;
            self.index += 1;
            let len = self.consumed() - offset;
            let flow = if self.overflow || len > self.max_record as u64 {
                emit(Item::Oversized { offset, len })
            } else {
                let m = self.mark.unwrap_or(0);
                let mut line = &self.buf[m..self.pos];
                while let [rest @ .., b' ' | b'\r' | b'\t'] = line {
                    line = rest;
                }
                emit(Item::Record {
                    container: Container::Line,
                    index,
                    offset,
                    bytes: line,
                })
            };
            self.mark = None;
            if flow.is_break() {
                return Err(ScanStop::Stopped);
            }
        }
    }
}

/// Decode a JSON string literal (with its quotes).
pub(crate) fn decode_json_string(raw: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(raw).map_err(|e| {
        format!(
            "invalid UTF-8 in a string at byte {} of it",
            e.valid_up_to()
        )
    })?;
    serde_json::from_str::<String>(text).map_err(|e| format!("bad JSON string: {e}"))
}

pub(crate) fn show_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Got {
        Rec(String, u64, String),
        Oversized(u64, u64),
        TooDeep(u64),
        Xml(u64, String),
    }

    fn scan(
        input: &[u8],
        lines: bool,
        max_record: u64,
        buf_reads: usize,
    ) -> (Vec<Got>, Option<String>) {
        // A reader that returns at most `buf_reads` bytes per read, to exercise refills.
        struct Slow<'a>(&'a [u8], usize);
        impl Read for Slow<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(out.len()).min(self.1);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut s = JsonScanner::new(Slow(input, buf_reads), max_record, 128);
        let mut got = Vec::new();
        let mut emit = |item: Item<'_>| {
            got.push(match item {
                Item::Record {
                    container,
                    offset,
                    bytes,
                    ..
                } => Got::Rec(
                    format!("{container:?}"),
                    offset,
                    String::from_utf8_lossy(bytes).into_owned(),
                ),
                Item::Oversized { offset, len, .. } => Got::Oversized(offset, len),
                Item::TooDeep { offset, .. } => Got::TooDeep(offset),
                Item::XmlString {
                    offset, decoded, ..
                } => Got::Xml(offset, decoded),
            });
            ControlFlow::Continue(())
        };
        let r = if lines {
            s.run_lines(&mut emit)
        } else {
            s.run_document(&mut emit)
        };
        let err = match r {
            Ok(()) => None,
            Err(ScanStop::Syntax { offset, what }) => Some(format!("{offset}: {what}")),
            Err(e) => Some(format!("{e:?}")),
        };
        (got, err)
    }

    fn rec(c: &str, off: u64, s: &str) -> Got {
        Got::Rec(c.to_string(), off, s.to_string())
    }

    #[test]
    fn array_root_with_tricky_strings() {
        for chunk in [1, 3, 7, 4096] {
            let (got, err) = scan(
                br#" [ {"a":"x]}\"\\"} , [1,{"b":[]}], "s", 12 ]"#,
                false,
                1 << 20,
                chunk,
            );
            assert_eq!(err, None);
            assert_eq!(
                got,
                vec![
                    rec("RootArray", 3, r#"{"a":"x]}\"\\"}"#),
                    rec("RootArray", 21, r#"[1,{"b":[]}]"#),
                    rec("RootArray", 35, r#""s""#),
                    rec("RootArray", 40, "12"),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn wrapper_key_hints_and_trailing_keys() {
        let doc = br#"{"type":"bundle","id":"b--1","objects":[{"type":"x","id":"x--1"}],"after":{"objects":[1]}}"#;
        for chunk in [1, 5, 4096] {
            let (got, err) = scan(doc, false, 1 << 20, chunk);
            assert_eq!(err, None);
            assert_eq!(
                got,
                vec![rec(
                    "Wrapper(\"objects\")",
                    40,
                    r#"{"type":"x","id":"x--1"}"#
                )]
            );
        }
    }

    #[test]
    fn single_object_and_xml_data() {
        let (got, _) = scan(
            br#"{"cveMetadata":{"cveId":"CVE-1"},"n":[1]}"#,
            false,
            1 << 20,
            3,
        );
        assert_eq!(
            got,
            vec![rec(
                "Single",
                0,
                r#"{"cveMetadata":{"cveId":"CVE-1"},"n":[1]}"#
            )]
        );
        let (got, err) = scan(
            br#"{"xml_data": "<a x=\"1\">\u00e9</a>"}"#,
            false,
            1 << 20,
            2,
        );
        assert_eq!(err, None);
        assert_eq!(got, vec![Got::Xml(13, "<a x=\"1\">é</a>".to_string())]);
    }

    #[test]
    fn oversized_and_too_deep_records_are_skipped() {
        let big = format!(r#"[{{"a":"{}"}},{{"b":1}}]"#, "x".repeat(5000));
        let (got, err) = scan(big.as_bytes(), false, 1000, 700);
        assert_eq!(err, None);
        assert_eq!(
            got,
            vec![
                Got::Oversized(1, 5008),
                rec("RootArray", 5010, r#"{"b":1}"#)
            ]
        );
        let deep = format!(
            "[{}{},{{\"ok\":1}}]",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let (got, err) = scan(deep.as_bytes(), false, 1 << 20, 4096);
        assert_eq!(err, None);
        assert_eq!(
            got,
            vec![Got::TooDeep(1), rec("RootArray", 20_002, r#"{"ok":1}"#)]
        );
    }

    #[test]
    fn truncated_input_names_the_offset() {
        let (got, err) = scan(br#"[{"a":1},{"b":"unterminated"#, false, 1 << 20, 4);
        assert_eq!(got.len(), 1);
        assert_eq!(
            err.unwrap(),
            "27: unexpected end of input; expected the end of a string"
        );
        let (_, err) = scan(br#"[{"a":1} {"b":2}]"#, false, 1 << 20, 4);
        assert!(err.unwrap().starts_with("9: expected ',' or ']'"));
    }

    #[test]
    fn concatenated_pretty_printed_objects() {
        let (got, err) = scan(b"{\n \"a\": 1\n}\n{\n \"b\": [2]\n}\n", false, 1 << 20, 3);
        assert_eq!(err, None);
        assert_eq!(
            got,
            vec![
                rec("Single", 0, "{\n \"a\": 1\n}"),
                rec("Single", 12, "{\n \"b\": [2]\n}")
            ]
        );
    }

    /// Generates `[{"id":0,"pad":"…"}, …]` on the fly, with one oversized record early on.
    struct Generated {
        next: u64,
        count: u64,
        pending: Vec<u8>,
    }

    impl Read for Generated {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            while self.pending.len() < out.len() && self.next <= self.count {
                let i = self.next;
                self.next += 1;
                let pad = if i == 10 { 3 << 20 } else { 200 };
                let sep = if i == 0 { "[" } else { "," };
                let rec = format!(r#"{sep}{{"id":{i},"pad":"{}"}}"#, "p".repeat(pad));
                self.pending.extend_from_slice(rec.as_bytes());
                if self.next > self.count {
                    self.pending.push(b']');
                }
            }
            let n = self.pending.len().min(out.len());
            out[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn memory_is_bounded_by_one_record_not_the_input() {
        let count = 60_000; // ~13 MB of input
        let src = Generated {
            next: 0,
            count,
            pending: Vec::new(),
        };
        let mut s = JsonScanner::new(src, 1 << 20, 128);
        let (mut records, mut oversized) = (0u64, 0u64);
        let mut emit = |item: Item<'_>| {
            match item {
                Item::Record { .. } => records += 1,
                Item::Oversized { .. } => oversized += 1,
                _ => panic!("unexpected item"),
            }
            ControlFlow::Continue(())
        };
        s.run_document(&mut emit).unwrap();
        assert_eq!((records, oversized), (count, 1));
        assert!(s.consumed() > 12_000_000);
        // The 3 MB record grew the buffer to at most the limit plus one buffer, never more,
        // and the buffer went back to its base size after it.
        assert!(s.peak_buf <= (1 << 20) + BUF_BYTES, "peak {}", s.peak_buf);
        assert!(s.peak_buf > BUF_BYTES);
        assert_eq!(s.buf.len(), BUF_BYTES);
    }

    #[test]
    fn json_lines_one_record_per_line() {
        let (got, err) = scan(b"{\"a\":1}\r\n\n{\"b\":\n{\"c\":3}  \n", true, 1 << 20, 2);
        assert_eq!(err, None);
        assert_eq!(
            got,
            vec![
                rec("Line", 0, r#"{"a":1}"#),
                rec("Line", 10, r#"{"b":"#),
                rec("Line", 16, r#"{"c":3}"#)
            ]
        );
    }
}
