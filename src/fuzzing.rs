//! Fuzz targets: one function per reader and for the rule-file parser, each taking arbitrary
//! bytes. The coverage-guided harness (`fuzz/`, run by `scripts/fuzz.sh TARGET SECONDS`) and
//! the replay test (`tests/fuzz_replay.rs`, in the test command) call the same functions, so a
//! crash the fuzzer finds is replayed by `cargo test` from then on.

use crate::ingest::fuzz as ingest;
use crate::rules::RuleSet;

/// A fuzz target: arbitrary bytes in, a panic when a promise is broken.
pub type Target = fn(&[u8]);

/// Every fuzz target, by the name `scripts/fuzz.sh` takes.
pub const TARGETS: &[(&str, Target)] = &[
    ("detect", |d| {
        ingest::detect_and_read(d);
    }),
    ("json", |d| {
        ingest::json_document(d);
    }),
    ("jsonl", |d| {
        ingest::json_lines(d);
    }),
    ("xml", |d| {
        ingest::xml(d);
    }),
    ("gzip", |d| {
        ingest::gzip(d);
    }),
    ("record", |d| {
        ingest::record_text(d);
    }),
    ("rules", rules_check),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// `cyberfilter rules check` on a rule file: parse, validate and compile; a rule set that
/// compiles scores a fixed text and reports its spans; errors render with the rule's origin.
pub fn rules_check(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    match RuleSet::from_toml(src, "fuzz.toml") {
        Ok(rules) => {
            let text = "CVE-2024-1234: SQL injection in the login form allows remote code \
                        execution; buffer overflow, XSS, privilege escalation. Ünïcödé ✓";
            let score = rules.score(text);
            assert!(score.score.is_finite(), "score {}", score.score);
            for (span, _) in rules.match_spans(text) {
                assert!(
                    text.get(span.clone()).is_some(),
                    "span {span:?} off a char boundary"
                );
            }
            let _ = rules.thresholds().validate();
        }
        Err(e) => {
            for line in e.all() {
                let _ = line.to_string();
            }
        }
    }
}
