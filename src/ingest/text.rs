//! Building the curator-facing text of a record: one field per line, capped at a byte budget.

/// Collects text lines up to `max_bytes`, cutting the last one on a char boundary.
pub(crate) struct TextBuilder {
    out: String,
    max_bytes: usize,
}

impl TextBuilder {
    pub(crate) fn new(max_bytes: usize) -> Self {
        TextBuilder {
            out: String::new(),
            max_bytes,
        }
    }

    /// Append `line` (trimmed) on its own line; empty lines are skipped.
    pub(crate) fn line(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() || self.out.len() >= self.max_bytes {
            return;
        }
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        let room = self.max_bytes.saturating_sub(self.out.len());
        self.out.push_str(truncate_str(line, room));
    }

    /// Append items joined by `sep`, after `prefix`, as one line; nothing when `items` is empty.
    pub(crate) fn joined<'a, I: IntoIterator<Item = &'a str>>(
        &mut self,
        prefix: &str,
        sep: &str,
        items: I,
    ) {
        let mut s = String::from(prefix);
        let mut any = false;
        for item in items {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            if any {
                s.push_str(sep);
            }
            s.push_str(item);
            any = true;
        }
        if any {
            self.line(&s);
        }
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub(crate) fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// Whether a language tag denotes English (`en`, `en-US`, `eng`).
pub(crate) fn is_english(lang: &str) -> bool {
    let l = lang.trim();
    // `get`, not `[..3]`: a tag is whatever the feed holds, and byte 3 may fall inside a
    // multi-byte character (found by the fuzz smoke run).
    let head = l.get(..3).filter(|_| l.len() > 3);
    l.eq_ignore_ascii_case("en")
        || l.eq_ignore_ascii_case("eng")
        || head.is_some_and(|h| h.eq_ignore_ascii_case("en-") || h.eq_ignore_ascii_case("en_"))
}

/// Pick descriptions to show: all English ones, or every one when none is English.
pub(crate) fn english_first<'a>(
    items: impl Iterator<Item = (&'a str, &'a str)> + Clone,
) -> Vec<&'a str> {
    let english: Vec<&str> = items
        .clone()
        .filter(|(lang, _)| is_english(lang))
        .map(|(_, v)| v)
        .collect();
    if english.is_empty() {
        items.map(|(_, v)| v).collect()
    } else {
        english
    }
}

/// Push `item` unless already present (small lists: CWE ids, CVSS vectors).
pub(crate) fn push_unique(list: &mut Vec<String>, item: &str) {
    let item = item.trim();
    if !item.is_empty() && !list.iter().any(|x| x == item) {
        list.push(item.to_string());
    }
}

/// Collapse runs of whitespace to single spaces (XML text, multi-line descriptions).
pub(crate) fn collapse_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate_str("héllo", 2), "h");
        assert_eq!(truncate_str("héllo", 3), "hé");
        let mut t = TextBuilder::new(5);
        t.line("abc");
        t.line("défg");
        assert_eq!(t.finish(), "abc\nd");
    }

    #[test]
    fn english_detection() {
        assert!(is_english("en"));
        assert!(is_english("en-US"));
        assert!(!is_english("es"));
        assert!(!is_english("eno"));
        // Byte 3 inside a character: no panic, not English (fuzz regression).
        assert!(!is_english("enés"));
        assert!(!is_english("e€x"));
        let v = [("es", "hola"), ("en", "hello")];
        assert_eq!(english_first(v.iter().copied()), vec!["hello"]);
        let v = [("es", "hola"), ("fr", "salut")];
        assert_eq!(english_first(v.iter().copied()), vec!["hola", "salut"]);
    }

    #[test]
    fn builder_skips_empty_and_joins() {
        let mut t = TextBuilder::new(100);
        t.line("  ");
        t.line("a");
        t.joined("Platforms: ", ", ", ["Linux", "", "Windows"]);
        t.joined("X: ", ", ", Vec::<&str>::new());
        assert_eq!(t.finish(), "a\nPlatforms: Linux, Windows");
        assert_eq!(collapse_ws(" a \n\t b  c "), "a b c");
    }
}
