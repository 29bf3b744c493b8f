//! Zero-copy navigation inside one record's JSON text: visit an object's fields or an array's
//! items as sub-slices, skipping the values nobody reads (NVD `configurations`, `references`,
//! most of `metrics`) at memchr speed instead of parsing them.
//!
//! Skipped values are only checked for balanced nesting and terminated strings, not fully
//! validated; any inconsistency makes the caller fall back to the full serde parse, which
//! then reports the exact error.

use super::json_stream::{CLASS, OPEN, PLAIN, QUOTE};
use std::borrow::Cow;

/// Malformed or unexpected structure (the caller falls back to serde).
#[derive(Debug)]
pub(crate) struct Bad;

/// Next `"` or `\\` at or after `from`. Most JSON strings are short, so look at a few bytes
/// directly before paying for a memchr call.
#[inline]
pub(crate) fn find_quote_or_escape(s: &[u8], from: usize) -> Option<usize> {
    let near = s.len().min(from + 16);
    if let Some(i) = s[from..near].iter().position(|&b| b == b'"' || b == b'\\') {
        return Some(from + i);
    }
    if near == s.len() {
        return None;
    }
    memchr::memchr2(b'"', b'\\', &s[near..]).map(|j| near + j)
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && matches!(s[i], b' ' | b'\n' | b'\r' | b'\t') {
        i += 1;
    }
    i
}

/// Index just past the string whose opening quote is at `i`.
fn string_end(s: &[u8], mut i: usize) -> Result<usize, Bad> {
    i += 1;
    loop {
        let j = find_quote_or_escape(s, i).ok_or(Bad)?;
        if s[j] == b'"' {
            return Ok(j + 1);
        }
        i = j + 2;
        if i > s.len() {
            return Err(Bad);
        }
    }
}

/// Index just past the value starting at `i`.
fn value_end(s: &[u8], i: usize) -> Result<usize, Bad> {
    match s.get(i).ok_or(Bad)? {
        b'"' => string_end(s, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = i;
            while i < s.len() {
                match CLASS[s[i] as usize] {
                    PLAIN => {}
                    QUOTE => {
                        i = string_end(s, i)?;
                        continue;
                    }
                    OPEN => depth += 1,
                    _ => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(i + 1);
                        }
                    }
                }
                i += 1;
            }
            Err(Bad)
        }
        _ => {
            let mut j = i;
            while j < s.len() && !matches!(s[j], b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
            {
                j += 1;
            }
            if j == i {
                Err(Bad)
            } else {
                Ok(j)
            }
        }
    }
}

/// A one-pass cursor over a record's JSON text: descend into the values you read, skip the
/// rest; every byte is looked at once.
pub(crate) struct Cursor<'a> {
    text: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Cursor { text, i: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn ws(&mut self) -> Option<u8> {
        self.i = skip_ws(self.bytes(), self.i);
        self.bytes().get(self.i).copied()
    }

    /// Consume `{` of the object at the cursor.
    pub(crate) fn enter_object(&mut self) -> Result<(), Bad> {
        if self.ws() != Some(b'{') {
            return Err(Bad);
        }
        self.i += 1;
        Ok(())
    }

    /// The next key of the current object (cursor then at its value), or `None` after `}`.
    pub(crate) fn next_key(&mut self) -> Result<Option<&'a str>, Bad> {
        match self.ws() {
            Some(b'}') => {
                self.i += 1;
                return Ok(None);
            }
            Some(b',') => {
                self.i += 1;
                self.ws();
            }
            _ => {}
        }
        if self.bytes().get(self.i) != Some(&b'"') {
            return Err(Bad);
        }
        let end = string_end(self.bytes(), self.i)?;
        let key = &self.text[self.i + 1..end - 1];
        self.i = end;
        if self.ws() != Some(b':') {
            return Err(Bad);
        }
        self.i += 1;
        self.ws();
        Ok(Some(key))
    }

    /// Consume `[` of the array at the cursor.
    pub(crate) fn enter_array(&mut self) -> Result<(), Bad> {
        if self.ws() != Some(b'[') {
            return Err(Bad);
        }
        self.i += 1;
        Ok(())
    }

    /// Whether another item follows (cursor then at it); consumes `]` at the end.
    pub(crate) fn next_item(&mut self) -> Result<bool, Bad> {
        match self.ws() {
            Some(b']') => {
                self.i += 1;
                Ok(false)
            }
            Some(b',') => {
                self.i += 1;
                self.ws();
                Ok(true)
            }
            Some(_) => Ok(true),
            None => Err(Bad),
        }
    }

    /// Consume the value at the cursor and return its text.
    pub(crate) fn value(&mut self) -> Result<&'a str, Bad> {
        self.ws();
        let start = self.i;
        self.i = value_end(self.bytes(), start)?;
        Ok(&self.text[start..self.i])
    }

    /// Consume the value at the cursor.
    pub(crate) fn skip(&mut self) -> Result<(), Bad> {
        self.value().map(|_| ())
    }
}

/// The value of a JSON string literal; borrowed when it has no escapes.
pub(crate) fn str_value(v: &str) -> Result<Cow<'_, str>, Bad> {
    let b = v.as_bytes();
    if b.len() < 2 || b[0] != b'"' || b[b.len() - 1] != b'"' {
        return Err(Bad);
    }
    if memchr::memchr(b'\\', b).is_none() {
        return Ok(Cow::Borrowed(&v[1..v.len() - 1]));
    }
    serde_json::from_str::<String>(v)
        .map(Cow::Owned)
        .map_err(|_| Bad)
}

/// Deserialize one sub-value with serde (the parts that are read in full).
pub(crate) fn parse<'a, T: serde::Deserialize<'a>>(v: &'a str) -> Result<T, Bad> {
    serde_json::from_str(v).map_err(|_| Bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(obj: &str) -> Result<Vec<(&str, &str)>, Bad> {
        let mut c = Cursor::new(obj);
        let mut out = Vec::new();
        c.enter_object()?;
        while let Some(k) = c.next_key()? {
            out.push((k, c.value()?));
        }
        Ok(out)
    }

    fn items(arr: &str) -> Result<Vec<&str>, Bad> {
        let mut c = Cursor::new(arr);
        let mut out = Vec::new();
        c.enter_array()?;
        while c.next_item()? {
            out.push(c.value()?);
        }
        Ok(out)
    }

    #[test]
    fn fields_items_and_strings() {
        let obj = r#" { "a" : [1, {"x":"]}\""}], "b":"q\"uote" ,"c":{} , "d": -1.5e3 } "#;
        let got = fields(obj).unwrap();
        assert_eq!(
            got,
            [
                ("a", r#"[1, {"x":"]}\""}]"#),
                ("b", r#""q\"uote""#),
                ("c", "{}"),
                ("d", "-1.5e3")
            ]
        );
        assert_eq!(str_value(got[1].1).unwrap(), "q\"uote");
        assert!(matches!(
            str_value(r#""plain""#).unwrap(),
            Cow::Borrowed("plain")
        ));
        assert_eq!(items(got[0].1).unwrap(), ["1", r#"{"x":"]}\""}"#]);
        let long = format!(r#""{}\"{}""#, "a".repeat(40), "b".repeat(40));
        assert_eq!(
            str_value(&long).unwrap(),
            format!("{}\"{}", "a".repeat(40), "b".repeat(40))
        );
    }

    #[test]
    fn cursor_descends_and_skips() {
        let text =
            r#"{"skip":{"x":[1,2,"}"]},"m":{"v":[{"d":{"s":"A"}},{"d":{"s":"B"}}]},"last":"z"}"#;
        let mut c = Cursor::new(text);
        let mut got = Vec::new();
        c.enter_object().unwrap();
        while let Some(k) = c.next_key().unwrap() {
            if k == "m" {
                c.enter_object().unwrap();
                while let Some(k2) = c.next_key().unwrap() {
                    assert_eq!(k2, "v");
                    c.enter_array().unwrap();
                    while c.next_item().unwrap() {
                        c.enter_object().unwrap();
                        while let Some(_d) = c.next_key().unwrap() {
                            got.push(c.value().unwrap());
                        }
                    }
                }
            } else {
                got.push(c.value().unwrap());
            }
        }
        assert_eq!(
            got,
            [
                r#"{"x":[1,2,"}"]}"#,
                r#"{"s":"A"}"#,
                r#"{"s":"B"}"#,
                r#""z""#
            ]
        );
        let mut c = Cursor::new(r#"{"a":[1,"#);
        c.enter_object().unwrap();
        assert_eq!(c.next_key().unwrap(), Some("a"));
        assert!(c.skip().is_err());
    }

    #[test]
    fn malformed_is_bad() {
        assert!(fields(r#"{"a":1"#).is_err());
        assert!(fields(r#"{"a" 1}"#).is_err());
        assert!(fields(r#"{"a":"x}"#).is_err());
        assert!(fields(r#"{"a":1,,"b":2}"#).is_err());
        assert!(fields("[1]").is_err());
        assert!(items("[1,").is_err());
    }
}
