//! The run store under faults, with the real `cyberfilter` binary: the disk fills up (an
//! `RLIMIT_FSIZE` on the child, SIGXFSZ ignored so writes fail with EFBIG as on a full disk)
//! while records and labels are written; stores that are read-only, truncated, not SQLite,
//! from a newer schema or from another tool; and the migration of a store of this release
//! that lacks later columns. Loss accounting throughout: records in = kept + removed +
//! pending in the export, labels in = labels out.

mod common;

use common::{cyberfilter_cmd, export_files, nvd_copies, root, stderr, test_hash_run};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run_cmd(store: &Path, input: &Path) -> Command {
    test_hash_run(store, input, "none")
}

/// Runs `c` with files limited to `bytes` (the disk is full past that), or without a limit.
fn output_limited(mut c: Command, bytes: Option<u64>) -> Output {
    if let Some(bytes) = bytes {
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            c.pre_exec(move || {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let lim = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    c.output().unwrap()
}

fn relabel(store: &Path, id: &str, label: &str, limit: Option<u64>) -> Output {
    let mut c = cyberfilter_cmd();
    c.arg("relabel").arg(store).args([id, label]);
    output_limited(c, limit)
}

/// The exported record files (kept/removed/pending), by name.
/// The record files of an export; for records a curator's label decides, without the
/// verifier's answer (see `without_llm_answer_if_labelled`: whether the failed run asked the
/// verifier before the label came depends on where the disk filled up).
fn export(store: &Path, out: &Path) -> BTreeMap<String, String> {
    export_files(store, out)
        .0
        .into_iter()
        .map(|(name, text)| {
            let lines = text.lines().map(common::without_llm_answer_if_labelled);
            (name, lines.collect())
        })
        .collect()
}

/// (records exported, labelled records exported).
fn accounted(files: &BTreeMap<String, String>) -> (usize, usize) {
    let lines: Vec<&str> = files.values().flat_map(|t| t.lines()).collect();
    let labelled = lines
        .iter()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            !v["cyberfilter"]["label"].is_null()
        })
        .count();
    (lines.len(), labelled)
}

fn sql<T: rusqlite::types::FromSql>(store: &Path, q: &str) -> T {
    let c = rusqlite::Connection::open(store).unwrap();
    c.query_row(q, [], |r| r.get(0)).unwrap()
}

/// Records in the input, as the readers count them.
fn records_in(input: &Path) -> usize {
    let mut n = 0;
    cyberfilter::ingest::read_file(input, &Default::default(), &mut |r| {
        n += usize::from(r.is_ok());
        std::ops::ControlFlow::Continue(())
    });
    n
}

fn nvd_input(dir: &Path) -> PathBuf {
    nvd_copies(dir, 20).0
}

#[test]
fn disk_full_while_records_and_labels_are_written_then_resume_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = nvd_input(dir.path());
    let n_in = records_in(&input);
    assert!(n_in > 1000, "{n_in} records");

    // The smallest limit at which some records were committed before the disk filled up.
    let store = dir.path().join("full.cfrun");
    let mut limit = 256 * 1024u64;
    let (out, stored) = loop {
        for f in [
            "full.cfrun",
            "full.cfrun-wal",
            "full.cfrun-shm",
            "full.cfrun.lock",
        ] {
            let _ = std::fs::remove_file(dir.path().join(f));
        }
        let out = output_limited(run_cmd(&store, &input), Some(limit));
        assert_ne!(
            out.status.code(),
            Some(0),
            "finished under a {limit}-byte limit"
        );
        // Under the smallest limits not even the tables were made (nothing to resume yet).
        let made: i64 = sql(
            &store,
            "SELECT count(*) FROM sqlite_master WHERE name = 'records'",
        );
        let stored: i64 = if made == 1 {
            sql(&store, "SELECT count(*) FROM records")
        } else {
            0
        };
        if stored > 0 {
            break (out, stored);
        }
        limit = limit * 5 / 4;
        assert!(limit < 16 << 20, "never stored anything");
    };
    let err = stderr(&out);
    eprintln!("limit {limit} bytes: {stored} of {n_in} records stored; {err}");
    assert_eq!(out.status.code(), Some(74), "EX_IOERR: {err}");
    assert!(
        err.contains(&store.display().to_string()) && err.contains("cannot write"),
        "{err}"
    );
    assert!(err.contains("resume"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Consistent: SQLite's own check, and no record twice.
    assert_eq!(sql::<String>(&store, "PRAGMA integrity_check"), "ok");
    let distinct: i64 = sql(
        &store,
        "SELECT count(*) FROM (SELECT DISTINCT file_id, idx FROM records)",
    );
    assert_eq!(distinct, stored);

    // Labels: two committed while there is room, a third while the disk is full.
    let ids = common::first_ids(&store, 3);
    let labels = [(ids[0].as_str(), "reject"), (ids[1].as_str(), "keep")];
    for (id, l) in labels {
        let o = relabel(&store, id, l, None);
        assert!(o.status.success(), "relabel: {}", stderr(&o));
    }
    let full = relabel(&store, &ids[2], "reject", Some(16 * 1024));
    let e = stderr(&full);
    assert_eq!(full.status.code(), Some(74), "relabel on a full disk: {e}");
    assert!(
        e.contains(&store.display().to_string()) && !e.contains("panicked"),
        "{e}"
    );
    let logged: i64 = sql(&store, "SELECT count(*) FROM label_log");
    assert_eq!(
        logged, 2,
        "the two committed labels are kept, the failed one is not half-made"
    );

    // A resume on the still-full disk fails the same way and loses nothing.
    let again = output_limited(run_cmd(&store, &input), Some(16 * 1024));
    assert_eq!(again.status.code(), Some(74), "{}", stderr(&again));
    assert_eq!(sql::<i64>(&store, "SELECT count(*) FROM label_log"), 2);
    // Space freed: the resume finishes.
    let done = output_limited(run_cmd(&store, &input), None);
    assert!(done.status.success(), "resume: {}", stderr(&done));

    // The uninterrupted run, with the same labels.
    let reference = dir.path().join("reference.cfrun");
    let r = output_limited(run_cmd(&reference, &input), None);
    assert!(r.status.success(), "{}", stderr(&r));
    for (id, l) in labels {
        assert!(relabel(&reference, id, l, None).status.success());
    }
    let a = export(&store, &dir.path().join("out-full"));
    let b = export(&reference, &dir.path().join("out-ref"));
    assert_eq!(
        accounted(&a),
        (n_in, labels.len()),
        "records in = out, labels in = out"
    );
    assert_eq!(accounted(&b), (n_in, labels.len()));
    assert_eq!(
        a, b,
        "export after disk full + resume = uninterrupted export"
    );
}

/// A good store made by a short run, checkpointed (the WAL folded into the file).
fn good_store(dir: &Path, name: &str) -> PathBuf {
    let store = dir.join(name);
    let input = root().join("sample_data/nvd/nvd-api2.0-page0-sample.json");
    let o = output_limited(run_cmd(&store, &input), None);
    assert!(o.status.success(), "{}", stderr(&o));
    let c = rusqlite::Connection::open(&store).unwrap();
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    store
}

#[test]
fn bad_store_files_are_clear_errors_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let input = root().join("sample_data/nvd/nvd-api2.0-page0-sample.json");
    let d = dir.path();

    let not_sqlite = d.join("notes.cfrun");
    std::fs::write(&not_sqlite, "these are my notes, not a database\n").unwrap();

    let truncated = good_store(d, "truncated.cfrun");
    let len = std::fs::metadata(&truncated).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);

    let newer = good_store(d, "newer.cfrun");
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute(
            "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();

    let other = d.join("other-tool.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users(name) VALUES ('ada');")
        .unwrap();

    let read_only = good_store(d, "read-only.cfrun");
    for f in ["read-only.cfrun-wal", "read-only.cfrun-shm"] {
        let _ = std::fs::remove_file(d.join(f));
    }
    std::fs::set_permissions(
        &read_only,
        std::os::unix::fs::PermissionsExt::from_mode(0o444),
    )
    .unwrap();

    let cases: [(&Path, &str, bool); 5] = [
        (&not_sqlite, "not a SQLite database", false),
        (&truncated, "truncated", false),
        (&newer, "newer cyberfilter", false),
        (&other, "another tool", false),
        // Read-only: writing commands refuse, export reads it.
        (&read_only, "read-only", true),
    ];
    for (store, why, exportable) in cases {
        let before = std::fs::read(store).unwrap();
        let name = store.display().to_string();
        let mut outs = vec![
            ("run", output_limited(run_cmd(store, &input), None)),
            ("relabel", relabel(store, "CVE-1999-0001", "keep", None)),
        ];
        let exp = cyberfilter_cmd()
            .arg("export")
            .arg(store)
            .arg("--out")
            .arg(d.join(format!(
                "out-{}",
                store.file_name().unwrap().to_string_lossy()
            )))
            .output()
            .unwrap();
        if exportable {
            assert!(exp.status.success(), "export of {name}: {}", stderr(&exp));
        } else {
            outs.push(("export", exp));
        }
        for (cmd, o) in outs {
            let e = stderr(&o);
            assert!(!o.status.success(), "{cmd} on {name} succeeded: {e}");
            assert_ne!(o.status.code(), Some(101), "{cmd} on {name} panicked: {e}");
            assert!(!e.contains("panicked"), "{cmd} on {name}: {e}");
            assert!(e.contains(&name), "{cmd} on {name} names the file: {e}");
            assert!(e.contains(why), "{cmd} on {name} says {why:?}: {e}");
        }
        assert_eq!(std::fs::read(store).unwrap(), before, "{name} was changed");
    }
}

#[test]
fn a_store_of_this_release_without_later_columns_migrates_and_exports_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let store = good_store(dir.path(), "old.cfrun");
    let id: String = sql(&store, "SELECT id FROM records ORDER BY seq LIMIT 1");
    assert!(relabel(&store, &id, "reject", None).status.success());
    let before = export(&store, &dir.path().join("before"));
    // What an earlier build of this release wrote: no fingerprint, no head columns, no
    // schema_version row.
    rusqlite::Connection::open(&store)
        .unwrap()
        .execute_batch(
            "ALTER TABLE files DROP COLUMN fingerprint;
             ALTER TABLE records DROP COLUMN p_head;
             ALTER TABLE records DROP COLUMN head;
             DELETE FROM meta WHERE key = 'schema_version';",
        )
        .unwrap();
    // A writing command migrates it.
    let o = relabel(&store, &id, "keep", None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        sql::<String>(
            &store,
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ),
        cyberfilter::store::SCHEMA_VERSION.to_string()
    );
    for (table, col) in [
        ("files", "fingerprint"),
        ("records", "p_head"),
        ("records", "head"),
    ] {
        let n: i64 = sql(
            &store,
            &format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = '{col}'"),
        );
        assert_eq!(n, 1, "{table}.{col} added back");
    }
    assert!(relabel(&store, &id, "reject", None).status.success());
    let after = export(&store, &dir.path().join("after"));
    assert_eq!(accounted(&after), accounted(&before));
    assert_eq!(after, before);
}
