//! The fuzz targets in the test command: every seed of `fuzz/corpus/TARGET`, every input the
//! fuzzer once crashed or hung on (`fuzz/regressions/TARGET`, each named in the README's
//! reliability table), and a short smoke run of seeded random mutations of the seeds, through
//! the same functions the libFuzzer harness calls (`cyberfilter::fuzzing`). The long
//! coverage-guided runs are `scripts/fuzz.sh TARGET SECONDS`.

mod common;

use common::root;
use cyberfilter::fuzzing::{target, TARGETS};
use std::path::Path;
use std::time::{Duration, Instant};

/// The files of `dir`, sorted (none when it does not exist).
fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

/// Runs `f` on `data`, naming the target and input when it panics; slower than `limit` fails.
fn run_one(name: &str, input: &str, f: fn(&[u8]), data: &[u8], limit: Duration) {
    let t = Instant::now();
    let r = std::panic::catch_unwind(|| f(data));
    assert!(r.is_ok(), "fuzz target {name} panicked on {input}");
    assert!(
        t.elapsed() < limit,
        "fuzz target {name} took {:?} on {input} (limit {limit:?})",
        t.elapsed()
    );
}

#[test]
fn every_target_has_seeds_and_replays_them() {
    for (name, f) in TARGETS {
        let seeds = inputs(&root().join("fuzz/corpus").join(name));
        assert!(
            seeds.len() >= 3,
            "fuzz/corpus/{name}: {} seeds",
            seeds.len()
        );
        for (input, data) in &seeds {
            run_one(name, input, *f, data, Duration::from_secs(10));
        }
    }
}

#[test]
fn found_crashes_stay_fixed() {
    let dir = root().join("fuzz/regressions");
    for (name, _) in TARGETS {
        for (input, data) in inputs(&dir.join(name)) {
            run_one(
                name,
                &input,
                target(name).unwrap(),
                &data,
                Duration::from_secs(10),
            );
        }
    }
    // No stray folder: a regression filed under a target that does not exist would never run.
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                target(&n).is_some() || n.starts_with('.'),
                "fuzz/regressions/{n}: no such target"
            );
        }
    }
}

/// xorshift64*: the smoke run's mutations are the same on every machine.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to the readers: structure, escapes, UTF-8 and gzip edges.
const INTERESTING: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b"\\u",
    b"\\ud800",
    b",",
    b":",
    b"\n",
    b"<",
    b">",
    b"</",
    b"<!DOCTYPE x [<!ENTITY a \"b\">]>",
    b"&amp;",
    b"&#0;",
    b"<![CDATA[",
    b"\0",
    b"\xff",
    b"\xc3",
    b"\xef\xbb\xbf",
    b"\x1f\x8b",
    b"1e999",
    b"-0",
    b"null",
    b"\"cve\":",
    b"\"vulnerabilities\":[",
    b"\"CVE_Items\":[",
    b"\"objects\":[",
    b"\"type\":\"malware\"",
    b"[[rule]]",
    b"pattern = \"(",
    b"weight = inf",
    b"cap = -1",
];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 => v.truncate(at),
            1 if at < v.len() => v[at] = rng.next() as u8,
            2 => {
                let ins = INTERESTING[rng.below(INTERESTING.len())];
                v.splice(at..at, ins.iter().copied());
            }
            3 if at < v.len() => {
                let end = (at + 1 + rng.below(64)).min(v.len());
                v.drain(at..end);
            }
            4 if at < v.len() => {
                // Repeat a slice: deep nesting and long runs.
                let end = (at + 1 + rng.below(16)).min(v.len());
                let piece = v[at..end].to_vec();
                for _ in 0..rng.below(200) {
                    v.splice(at..at, piece.iter().copied());
                }
            }
            _ => {
                let other = rng.below(v.len() + 1);
                if other < v.len() && at < v.len() {
                    v.swap(at, other);
                }
            }
        }
    }
    v
}

/// The smoke run: a few seconds per target of random mutations of its seeds (not coverage
/// guided; that is scripts/fuzz.sh). `FUZZ_SMOKE_SECS` changes the time per target.
#[test]
fn smoke_run_of_every_target() {
    let secs: f64 = std::env::var("FUZZ_SMOKE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    for (i, (name, f)) in TARGETS.iter().enumerate() {
        let seeds = inputs(&root().join("fuzz/corpus").join(name));
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1));
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed().as_secs_f64() < secs {
            let (seed_name, seed) = &seeds[rng.below(seeds.len())];
            let data = mutate(&mut rng, seed);
            let r = std::panic::catch_unwind(|| f(&data));
            if r.is_err() {
                let dir = std::env::temp_dir().join("cyberfilter-fuzz-smoke");
                std::fs::create_dir_all(&dir).unwrap();
                let out = dir.join(format!("{name}-{n}"));
                std::fs::write(&out, &data).unwrap();
                panic!(
                    "fuzz target {name} panicked on a mutation of {seed_name}; input saved to {}",
                    out.display()
                );
            }
            n += 1;
        }
        eprintln!("fuzz smoke: {name}: {n} inputs in {secs} s");
    }
}

/// Found by `scripts/fuzz.sh detect` (fuzz/regressions/detect/peek-ends-in-backslash): format
/// detection panicked (slice out of range) when the 256 KiB it peeks at ended in the
/// backslash of an escape inside the first value. A real file of that shape is read whole.
#[test]
fn fuzz_regression_detect_peek_ending_in_an_escape() {
    const PEEK: usize = 256 * 1024;
    let head = "{\"vulnerabilities\":[{\"cve\":{\"id\":\"CVE-2099-0001\",\"descriptions\":\
                [{\"lang\":\"en\",\"value\":\"SQL injection ";
    let mut doc = head.to_string();
    while doc.len() < PEEK - 1 {
        doc.push('a');
    }
    doc.push_str("\\\"quoted\\\" more text\"}]}}]}");
    assert_eq!(doc.as_bytes()[PEEK - 1], b'\\');
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("escape-at-peek-end.json");
    std::fs::write(&path, &doc).unwrap();
    let mut ids = Vec::new();
    let sum = cyberfilter::ingest::read_file(
        &path,
        &cyberfilter::ingest::IngestOptions::default(),
        &mut |r| {
            ids.push(r.map(|r| r.id).map_err(|e| e.to_string()));
            std::ops::ControlFlow::Continue(())
        },
    );
    assert_eq!(ids, [Ok("CVE-2099-0001".to_string())]);
    assert_eq!((sum.records, sum.errors), (1, 0));
}

/// Found by `scripts/fuzz.sh record` (fuzz/regressions/record/nvd-empty-id): an NVD, CVE 5,
/// STIX or generic record whose id is the empty string was stored with an empty id, which no
/// `relabel` or `show` can name. It now gets the `file#index` id of a record without one.
#[test]
fn fuzz_regression_record_with_an_empty_id_gets_the_fallback_id() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("nvd.json", r#"{"vulnerabilities":[{"cve":{"id":"","descriptions":[{"lang":"en","value":"SQL injection in the login form."}]}}]}"#),
        ("generic.jsonl", "{\"id\": \"  \", \"text\": \"Buffer overflow in the parser.\"}\n{\"id\": \"\", \"text\": \"XSS in search.\"}\n"),
        ("stix.json", r#"{"type":"bundle","objects":[{"type":"malware","id":"","name":"X","description":"A trojan."}]}"#),
    ];
    for (name, text) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let mut ids = Vec::new();
        cyberfilter::ingest::read_file(
            &path,
            &cyberfilter::ingest::IngestOptions::default(),
            &mut |r| {
                ids.push(r.expect("record").id);
                std::ops::ControlFlow::Continue(())
            },
        );
        assert!(!ids.is_empty(), "{name}");
        for id in ids {
            assert!(id.starts_with(&format!("{name}#")), "{name}: id {id:?}");
        }
    }
}
