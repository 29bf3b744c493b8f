//! The rule file format (TOML) and its validation.
//!
//! Validation collects *every* problem (unknown keys, missing fields, bad types, bad regexes,
//! zero or non-finite weights, duplicate names, bad thresholds) so `cyberfilter rules check`
//! can list them all at once instead of one per edit.

use super::{RuleError, Thresholds};
use regex_automata::meta;
use regex_syntax::hir::{Hir, HirKind};
use std::collections::HashSet;
use toml::{Spanned, Table, Value};

/// Matches counted per rule when the rule file gives no `cap`.
pub const DEFAULT_CAP: u32 = 3;

const RULE_KEYS: &[&str] = &[
    "name",
    "pattern",
    "weight",
    "category",
    "word_bounded",
    "case_sensitive",
    "cap",
    "requires_other_evidence",
    "max_lines",
    "description",
];
const THRESHOLD_KEYS: &[&str] = &["high", "low", "min_text_len", "p_yes_cut"];

/// One rule as written in the file, after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub name: String,
    pub pattern: String,
    pub weight: f32,
    pub category: String,
    pub word_bounded: bool,
    pub case_sensitive: bool,
    pub cap: u32,
    /// A generic word (attack, security, threat, …) that ordinary prose uses in other senses:
    /// such rules together add at most what the other positive rules add (see `Scorer::score`),
    /// so on their own they add nothing.
    pub requires_other_evidence: bool,
    /// Counts only in a text of at most this many lines (a report title, a commit subject):
    /// such a rule is searched on its own, beside the leftmost-first pass, so it takes no
    /// stretch of text from the other rules (it may span what they match) and adds to them.
    pub max_lines: Option<u32>,
    pub description: Option<String>,
}

/// Lines of a text as `max_lines` counts them: line breaks plus one, a trailing break not
/// counted.
pub fn line_count(text: &[u8]) -> usize {
    let trimmed = text.strip_suffix(b"\n").unwrap_or(text);
    memchr::memchr_iter(b'\n', trimmed).count() + 1
}

impl RuleSpec {
    /// The regex actually compiled: case folding and word boundaries added as asked.
    /// Patterns are compiled in ASCII mode (see `build_regex`), so `\b`, `\w` and `(?i)` are
    /// ASCII: that keeps the DFA small and fast, and every keyword is ASCII anyway.
    pub fn full_pattern(&self) -> String {
        let flags = if self.case_sensitive { "" } else { "(?i)" };
        if self.word_bounded {
            format!(r"{flags}\b(?:{})\b", self.pattern)
        } else {
            format!("{flags}(?:{})", self.pattern)
        }
    }
}

/// Size limit for compiled regexes, large enough for a few hundred keyword rules.
pub(crate) const SIZE_LIMIT: usize = 64 * 1024 * 1024;

/// Positions a rule's pattern may expand to (see [`expansion`]). Keyword alternations of a
/// few hundred words stay far below it (the largest shipped rule: 5,640); `(a{1000}){1000}` (a million) is refused before the
/// regex compiler spends seconds and 64 MiB reaching its size limit.
pub(crate) const MAX_EXPANSION: u64 = 100_000;

/// How many positions a pattern expands to when compiled: a literal byte or a class counts
/// one, a counted repeat multiplies its body by its largest count (an open-ended one by its
/// least count plus one), concatenations and alternations add up. The regex crate's NFA is
/// about this many states, so this bounds compile time and memory. `None`: the pattern does
/// not parse (the compiler reports why).
#[cfg(test)]
pub(crate) fn expansion(pattern: &str) -> Option<u64> {
    parse_pattern(pattern).ok().map(|h| expansion_of(&h))
}

/// `expansion` of a parsed pattern.
fn expansion_of(hir: &Hir) -> u64 {
    fn walk(h: &Hir) -> u64 {
        match h.kind() {
            HirKind::Empty | HirKind::Look(_) => 0,
            HirKind::Literal(l) => l.0.len() as u64,
            HirKind::Class(_) => 1,
            HirKind::Repetition(r) => {
                let copies = match r.max {
                    Some(max) => u64::from(max.max(r.min)),
                    None => u64::from(r.min) + 1,
                };
                copies.saturating_mul(walk(&r.sub))
            }
            HirKind::Capture(c) => walk(&c.sub),
            HirKind::Concat(hs) | HirKind::Alternation(hs) => {
                hs.iter().fold(0u64, |n, h| n.saturating_add(walk(h)))
            }
        }
    }
    walk(hir)
}

/// Parse a pattern the way the scorer does: byte-oriented and ASCII-only (`unicode(false)`);
/// non-ASCII literals in a pattern still match their UTF-8 bytes.
pub(super) fn parse_pattern(pattern: &str) -> Result<Hir, String> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .map_err(|e| e.to_string())
}

/// Compile one parsed pattern, only to validate a rule (the scorer compiles its own regexes),
/// so without a prefilter: extracting its literals took a third of the check's time and would
/// never be used.
fn build_regex(hir: &Hir) -> Result<meta::Regex, String> {
    meta::Builder::new()
        .configure(
            meta::Config::new()
                .nfa_size_limit(Some(SIZE_LIMIT))
                .auto_prefilter(false),
        )
        .build_from_hir(hir)
        .map_err(|e| e.to_string())
}

/// A validated rule file.
#[derive(Debug, Clone)]
pub struct RuleFile {
    pub thresholds: Thresholds,
    pub rules: Vec<RuleSpec>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    version: Option<i64>,
    #[serde(default)]
    thresholds: Option<Spanned<Table>>,
    #[serde(default)]
    rule: Vec<Spanned<Table>>,
}

/// 1-based line of a byte offset in `src`.
fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Parse and validate a rule file; every problem found is returned.
pub fn parse(src: &str, origin: &str) -> Result<RuleFile, Vec<RuleError>> {
    let raw: RawFile = toml::from_str(src).map_err(|e| {
        vec![RuleError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().replace('\n', " "),
        }]
    })?;
    let mut errors = Vec::new();
    let parse_err = |message: String| RuleError::Parse {
        origin: origin.to_string(),
        message,
    };

    if let Some(v) = raw.version {
        if v != 1 {
            errors.push(parse_err(format!(
                "unsupported version {v} (this build reads version 1)"
            )));
        }
    }

    let thresholds = match &raw.thresholds {
        Some(t) => parse_thresholds(t, src, origin, &mut errors),
        None => Thresholds::default(),
    };

    if raw.rule.is_empty() {
        errors.push(parse_err("no [[rule]] entries".into()));
    }

    let mut rules = Vec::with_capacity(raw.rule.len());
    let mut seen = HashSet::new();
    for (i, table) in raw.rule.iter().enumerate() {
        let line = line_of(src, table.span().start);
        if let Some(spec) = parse_rule(i, line, table.get_ref(), origin, &mut seen, &mut errors) {
            rules.push(spec);
        }
    }

    if errors.is_empty() {
        Ok(RuleFile { thresholds, rules })
    } else {
        Err(errors)
    }
}

fn parse_thresholds(
    t: &Spanned<Table>,
    src: &str,
    origin: &str,
    errors: &mut Vec<RuleError>,
) -> Thresholds {
    let line = line_of(src, t.span().start);
    let table = t.get_ref();
    let mut out = Thresholds::default();
    let mut err = |message: String| {
        errors.push(RuleError::Parse {
            origin: origin.to_string(),
            message: format!("[thresholds] (line {line}): {message}"),
        })
    };
    for key in table.keys() {
        if !THRESHOLD_KEYS.contains(&key.as_str()) {
            err(format!(
                "unknown key `{key}` (expected one of {})",
                THRESHOLD_KEYS.join(", ")
            ));
        }
    }
    let number = |key: &str, err: &mut dyn FnMut(String)| -> Option<f32> {
        match table.get(key) {
            None => None,
            Some(v) => match as_f64(v) {
                Some(x) if x.is_finite() => Some(x as f32),
                Some(_) => {
                    err(format!("`{key}` must be a finite number"));
                    None
                }
                None => {
                    err(format!("`{key}` must be a number, found {}", v.type_str()));
                    None
                }
            },
        }
    };
    if let Some(x) = number("high", &mut err) {
        out.high = x;
    }
    if let Some(x) = number("low", &mut err) {
        out.low = x;
    }
    if let Some(x) = number("p_yes_cut", &mut err) {
        if (0.0..=1.0).contains(&x) {
            out.p_yes_cut = x;
        } else {
            err(format!("`p_yes_cut` must be between 0 and 1, found {x}"));
        }
    }
    match table.get("min_text_len") {
        None => {}
        Some(Value::Integer(n)) if *n >= 0 => out.min_text_len = *n as usize,
        Some(v) => err(format!(
            "`min_text_len` must be a non-negative integer, found {v}"
        )),
    }
    if out.low > out.high {
        err(format!(
            "`low` ({}) must not be above `high` ({})",
            out.low, out.high
        ));
    }
    out
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Float(f) => Some(*f),
        Value::Integer(i) => Some(*i as f64),
        _ => None,
    }
}

fn parse_rule(
    index: usize,
    line: usize,
    table: &Table,
    origin: &str,
    seen: &mut HashSet<String>,
    errors: &mut Vec<RuleError>,
) -> Option<RuleSpec> {
    // Name the rule by its `name` when it has one, else by its position and line.
    let label = match table.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => format!("#{} (line {line})", index + 1),
    };
    let before = errors.len();
    let mut err = |reason: String| {
        errors.push(RuleError::Rule {
            origin: origin.to_string(),
            rule: label.clone(),
            reason,
        })
    };

    for key in table.keys() {
        if !RULE_KEYS.contains(&key.as_str()) {
            err(format!(
                "unknown key `{key}` (expected one of {})",
                RULE_KEYS.join(", ")
            ));
        }
    }

    let string = |key: &str, required: bool, err: &mut dyn FnMut(String)| match table.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::String(_)) => {
            err(format!("`{key}` is empty"));
            None
        }
        Some(v) => {
            err(format!("`{key}` must be a string, found {}", v.type_str()));
            None
        }
        None => {
            if required {
                err(format!("missing `{key}`"));
            }
            None
        }
    };
    let name = string("name", true, &mut err);
    let pattern = string("pattern", true, &mut err);
    let category = string("category", true, &mut err);
    let description = string("description", false, &mut err);

    let weight = match table.get("weight") {
        None => {
            err("missing `weight`".into());
            None
        }
        Some(v) => match as_f64(v) {
            Some(w) if !w.is_finite() => {
                err(format!("`weight` must be a finite number, found {w}"));
                None
            }
            Some(0.0) => {
                err("`weight` is 0: the rule would never change a score".into());
                None
            }
            Some(w) => Some(w as f32),
            None => {
                err(format!("`weight` must be a number, found {}", v.type_str()));
                None
            }
        },
    };

    let boolean = |key: &str, default: bool, err: &mut dyn FnMut(String)| match table.get(key) {
        None => default,
        Some(Value::Boolean(b)) => *b,
        Some(v) => {
            err(format!(
                "`{key}` must be true or false, found {}",
                v.type_str()
            ));
            default
        }
    };
    let word_bounded = boolean("word_bounded", true, &mut err);
    let case_sensitive = boolean("case_sensitive", false, &mut err);
    let requires_other_evidence = boolean("requires_other_evidence", false, &mut err);
    if requires_other_evidence && weight.is_some_and(|w| w < 0.0) {
        err(
            "`requires_other_evidence` is for positive evidence; a negative weight always counts"
                .into(),
        );
    }

    let cap = match table.get("cap") {
        None => DEFAULT_CAP,
        Some(Value::Integer(n)) if (1..=1000).contains(n) => *n as u32,
        Some(v) => {
            err(format!(
                "`cap` must be an integer from 1 to 1000, found {v}"
            ));
            DEFAULT_CAP
        }
    };

    let max_lines = match table.get("max_lines") {
        None => None,
        Some(Value::Integer(n)) if (1..=1000).contains(n) => Some(*n as u32),
        Some(v) => {
            err(format!(
                "`max_lines` must be an integer from 1 to 1000, found {v}"
            ));
            None
        }
    };

    if let Some(name) = &name {
        if !seen.insert(name.clone()) {
            err("duplicate rule name".into());
        }
    }

    let spec = RuleSpec {
        name: name.unwrap_or_default(),
        pattern: pattern.unwrap_or_default(),
        weight: weight.unwrap_or(0.0),
        category: category.unwrap_or_default(),
        word_bounded,
        case_sensitive,
        cap,
        requires_other_evidence,
        max_lines,
        description,
    };
    // Parsed once for both checks.
    let parsed = parse_pattern(&spec.full_pattern());
    let expands = parsed.as_ref().map_or(0, expansion_of);
    if expands > MAX_EXPANSION {
        err(format!(
            "pattern repeats too much: it expands to about {expands} positions when compiled \
             (at most {MAX_EXPANSION}); lower the repeat counts or use + or *"
        ));
    } else if !spec.pattern.is_empty() {
        match parsed.and_then(|h| build_regex(&h)) {
            Err(e) => {
                // Report the error against the pattern as written, not the wrapped one.
                let detail = match parse_pattern(&spec.pattern).and_then(|h| build_regex(&h)) {
                    Err(inner) => inner.to_string(),
                    Ok(_) => e.to_string(),
                };
                err(format!(
                    "bad pattern: {}",
                    detail.trim_end().replace('\n', " | ")
                ));
            }
            // An empty match would count on every record and say nothing about it.
            Ok(re) if re.is_match(b"") || re.find_iter(b"ab cd").any(|m| m.is_empty()) => {
                err("pattern matches the empty string".into());
            }
            Ok(_) => {}
        }
    }
    (errors.len() == before).then_some(spec)
}

#[cfg(test)]
mod expansion_tests {
    use super::*;

    fn errors_of(pattern: &str) -> Vec<String> {
        let src =
            format!("[[rule]]\nname = 'huge'\ncategory = 'c'\npattern = '{pattern}'\nweight = 1\n");
        match parse(&src, "r.toml") {
            Ok(_) => vec![],
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_pattern_whose_repeats_blow_up_is_refused_at_once_naming_the_rule() {
        // The fuzzer's two timeouts: the regex crate spent seconds reaching its size limit.
        for p in [
            "(a{1000}){1000}",
            "(?:[a-z]{100}x){1000}",
            "(a{1,1000}){1000,}",
        ] {
            let t = std::time::Instant::now();
            let e = errors_of(p);
            assert!(
                t.elapsed() < std::time::Duration::from_millis(500),
                "{p}: {:?}",
                t.elapsed()
            );
            assert_eq!(e.len(), 1, "{p}: {e:?}");
            assert!(
                e[0].contains("rule `huge`") && e[0].contains("repeats too much"),
                "{e:?}"
            );
        }
        assert_eq!(expansion("(a{1000}){1000}"), Some(1_000_000));
        assert_eq!(expansion("(?i)ab{2,5}|c+"), Some(1 + 5 + 2));
        // Ordinary counted repeats and long keyword lists pass.
        assert!(errors_of(r"\\w{1,200} overflow").is_empty());
        assert!(errors_of(r"cve-\\d{4}-\\d{4,7}").is_empty());
    }

    #[test]
    fn the_shipped_rules_are_far_below_the_limit() {
        let file = parse(crate::rules::DEFAULT_RULES_TOML, "default.toml").unwrap();
        let most = file
            .rules
            .iter()
            .map(|r| expansion(&r.full_pattern()).unwrap())
            .max()
            .unwrap();
        assert!(most * 10 < MAX_EXPANSION, "{most}");
    }
}
