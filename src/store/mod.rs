//! The run store (SQLite): the source of truth for a run. Exports are views over it.
//!
//! One file per run, WAL mode. The engine's writer thread owns the only write connection;
//! readers (queries, export, the verifier's text fetch) open their own read connections.
//! Records are keyed by (file, index within the file) so a resumed run can skip what is
//! already stored and a record is never stored twice; the natural id is a plain column
//! because the same CVE can appear in several feeds.

pub mod cache;
pub mod export;
pub mod features;
pub mod groups;
pub mod lock;
pub mod paths;

use crate::decide::{DecidedBy, Decision, DecisionInputs, Label, Verdict};
use crate::record::SourceKind;
use crate::rules::{RuleHit, Thresholds, Tier};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Bumped when the schema changes incompatibly.
pub const SCHEMA_VERSION: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("store {path}: {what}")]
    Invalid { path: String, what: String },
    #[error(
        "store {path}: cannot write ({source}): the disk is full, a file size limit was reached \
         or the disk failed; everything committed before is kept: free space and run the same \
         command again to resume"
    )]
    WriteFailed {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Attach the store path to a rusqlite error.
pub(crate) trait SqlContext<T> {
    fn ctx(self, path: &Path) -> Result<T, StoreError>;
}

impl<T> SqlContext<T> for Result<T, rusqlite::Error> {
    fn ctx(self, path: &Path) -> Result<T, StoreError> {
        self.map_err(|source| {
            let path = path.display().to_string();
            if is_write_failure(&source) {
                StoreError::WriteFailed { path, source }
            } else {
                StoreError::Sqlite { path, source }
            }
        })
    }
}

/// SQLite could not write: the disk is full (SQLITE_FULL), or the write itself failed
/// (SQLITE_IOERR: a file size limit gives EFBIG, a failing disk EIO).
fn is_write_failure(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure)
    )
}

impl StoreError {
    /// The store could not be written (disk full, file size limit, I/O error): what was
    /// committed before is kept; freeing space and running again resumes (exit code 74).
    pub fn is_write_failure(&self) -> bool {
        matches!(self, StoreError::WriteFailed { .. })
    }
}

/// What a run was started with; stored once and checked on resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Inputs as canonical absolute paths (stores made by earlier builds hold them as typed).
    pub inputs: Vec<PathBuf>,
    /// Hash of the rule file text.
    pub rules_hash: String,
    pub thresholds: Thresholds,
    /// Verifier backend name (`none`, `mlx`, `http`, …).
    pub verifier: String,
}

/// State of a run as recorded in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Running, or killed while running (a resume picks it up).
    Running,
    /// Stopped on request before the inputs were exhausted.
    Stopped,
    /// Every input read; records may still be pending.
    Finished,
    /// Never stored: what `Running` reads as when no live process holds the store's lock (the
    /// run was killed); a resume picks it up where it was.
    Interrupted,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Stopped => "stopped",
            RunState::Finished => "finished",
            RunState::Interrupted => "interrupted",
        }
    }
    pub fn parse(s: &str) -> Option<RunState> {
        match s {
            "running" => Some(RunState::Running),
            "stopped" => Some(RunState::Stopped),
            "finished" => Some(RunState::Finished),
            _ => None,
        }
    }
}

/// A record row ready to insert (the writer batches these).
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub seq: i64,
    pub file_id: i64,
    pub index: u64,
    pub id: String,
    pub source: SourceKind,
    pub kind: String,
    /// Where the original bytes are (the file is the record's file).
    pub offset: u64,
    pub len: u64,
    pub outer_offset: Option<u64>,
    pub content_hash: [u8; 32],
    pub text: String,
    pub text_len: usize,
    pub scored: bool,
    pub score: f32,
    pub hits: Vec<RuleHit>,
    pub p_yes: Option<f32>,
    pub model: Option<String>,
    pub prompt_version: Option<String>,
    pub decision: Decision,
}

/// A record's decision inputs as loaded on resume (no text).
#[derive(Debug, Clone)]
pub struct StoredInputs {
    pub seq: i64,
    pub file_id: i64,
    pub index: u64,
    pub source: SourceKind,
    pub inputs: DecisionInputs,
    /// The decision as stored (may lag a threshold change when the run was killed).
    pub verdict: Option<Verdict>,
    pub tier: Option<Tier>,
}

/// An input file's progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileRow {
    pub file_id: i64,
    pub path: String,
    pub bytes_total: u64,
    pub bytes_done: u64,
    pub records: u64,
    pub errors: u64,
    pub done: bool,
}

/// One entry of the append-only label log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelLogEntry {
    pub log_id: i64,
    pub record_seq: i64,
    pub record_id: String,
    pub old_verdict: Verdict,
    pub old_label: Option<Label>,
    pub new_label: Option<Label>,
    pub time: u64,
    /// Set when this entry undoes an earlier one.
    pub undoes: Option<i64>,
}

/// Counts for `cyberfilter runs` and summaries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreSummary {
    pub records: u64,
    pub kept: u64,
    pub removed: u64,
    pub pending: u64,
    pub labelled: u64,
    pub errors: u64,
    pub files: u64,
    pub files_done: u64,
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    file_id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    bytes_total INTEGER NOT NULL DEFAULT 0,
    bytes_done INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0,
    fingerprint TEXT
);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files(file_id),
    idx INTEGER NOT NULL,
    id TEXT NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    offset INTEGER NOT NULL,
    len INTEGER NOT NULL,
    outer_offset INTEGER,
    content_hash BLOB NOT NULL,
    text TEXT NOT NULL,
    text_len INTEGER NOT NULL,
    scored INTEGER NOT NULL,
    score REAL NOT NULL,
    rules TEXT NOT NULL,
    tier TEXT NOT NULL,
    p_yes REAL,
    model TEXT,
    prompt_version TEXT,
    label TEXT,
    label_time INTEGER,
    verdict TEXT NOT NULL,
    decided_by TEXT,
    UNIQUE(file_id, idx)
);
CREATE INDEX IF NOT EXISTS records_id ON records(id);
CREATE TABLE IF NOT EXISTS errors (
    err_id INTEGER PRIMARY KEY,
    file TEXT NOT NULL,
    message TEXT NOT NULL,
    time INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS label_log (
    log_id INTEGER PRIMARY KEY,
    record_seq INTEGER NOT NULL,
    record_id TEXT NOT NULL,
    old_verdict TEXT NOT NULL,
    old_label TEXT,
    new_label TEXT,
    time INTEGER NOT NULL,
    undoes INTEGER
);
CREATE TABLE IF NOT EXISTS metrics (
    metric_id INTEGER PRIMARY KEY,
    line TEXT NOT NULL
);
";

/// The SQLite file header: magic, page size and the page count of the last checkpoint.
const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

fn invalid(path: &Path, what: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        path: path.display().to_string(),
        what: what.into(),
    }
}

/// Whether `path` holds an existing database (false: absent or empty, a new store). Refuses a
/// file that is not SQLite, one shorter than its header says (truncated) and, when `write`,
/// one that is read-only, each with what to do about it.
fn inspect_file(path: &Path, write: bool) -> Result<bool, StoreError> {
    use std::io::Read;
    let io = |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io(e)),
    };
    if meta.is_dir() {
        return Err(invalid(path, "is a folder, not a run store"));
    }
    if meta.len() == 0 {
        return Ok(false);
    }
    let mut head = Vec::with_capacity(100);
    std::fs::File::open(path)
        .map_err(io)?
        .take(100)
        .read_to_end(&mut head)
        .map_err(io)?;
    if !head.starts_with(SQLITE_MAGIC) {
        return Err(invalid(
            path,
            "not a SQLite database, so not a cyberfilter run store; left unchanged \
             (give another --store path)",
        ));
    }
    if head.len() < 100 {
        return Err(invalid(
            path,
            format!(
                "truncated: {} bytes, shorter than a SQLite header; left unchanged (restore \
                 it from a backup or give another --store path)",
                meta.len()
            ),
        ));
    }
    let page_size = match u16::from_be_bytes([head[16], head[17]]) {
        1 => 65536,
        n => u64::from(n),
    };
    let pages = u64::from(u32::from_be_bytes([head[28], head[29], head[30], head[31]]));
    // The page count is valid when the change counters at 24 and 92 agree (SQLite >= 3.7).
    let counted = head[24..28] == head[92..96];
    // Only a store at rest: with a WAL beside it another process may be checkpointing, which
    // writes the header before the file has grown to it (a damaged store is then reported by
    // SQLite's own read, see `damaged`).
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let at_rest = std::fs::metadata(PathBuf::from(wal)).map_or(true, |m| m.len() == 0);
    if at_rest && counted && pages > 0 && meta.len() < pages.saturating_mul(page_size) {
        return Err(invalid(
            path,
            format!(
                "truncated: {} bytes, its header says {pages} pages of {page_size} bytes \
                 ({} bytes); left unchanged (restore it from a backup or give another \
                 --store path)",
                meta.len(),
                pages.saturating_mul(page_size)
            ),
        ));
    }
    let writable = || {
        !meta.permissions().readonly()
            && std::fs::OpenOptions::new().append(true).open(path).is_ok()
    };
    if write && !writable() {
        return Err(invalid(
            path,
            "read-only: this command writes to the store; make it writable (chmod u+w) or \
             read it with `cyberfilter export`",
        ));
    }
    Ok(true)
}

/// An existing SQLite database must be a cyberfilter run store this build can read.
fn check_existing(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .and_then(|mut st| {
            st.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(|e| damaged(path, e))?;
    if tables.is_empty() {
        return Ok(());
    }
    if !tables.iter().any(|t| t == "meta") || !tables.iter().any(|t| t == "records") {
        let mut shown = tables
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if tables.len() > 5 {
            shown.push_str(", …");
        }
        return Err(invalid(
            path,
            format!(
                "a SQLite database of another tool (tables: {shown}), not a cyberfilter run \
                 store; left unchanged (give another --store path)"
            ),
        ));
    }
    let version = meta_value(conn, "schema_version").map_err(|e| damaged(path, e))?;
    if let Some(v) = version {
        match v.parse::<i64>() {
            Ok(n) if n > SCHEMA_VERSION => {
                return Err(invalid(
                    path,
                    format!(
                        "made by a newer cyberfilter (store schema version {n}, this build \
                         reads up to {SCHEMA_VERSION}); open it with that release, this one \
                         leaves it unchanged"
                    ),
                ))
            }
            Ok(n) if n >= 1 => {}
            _ => {
                return Err(invalid(
                    path,
                    format!("schema version {v:?} is not a version this build knows"),
                ))
            }
        }
    }
    Ok(())
}

/// A query on an existing database failed: say it is damaged, not just the SQLite code.
fn damaged(path: &Path, e: rusqlite::Error) -> StoreError {
    let code = e.sqlite_error_code();
    if matches!(
        code,
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    ) {
        invalid(
            path,
            format!("damaged or truncated SQLite file ({e}); left unchanged (restore it from a backup or give another --store path)"),
        )
    } else {
        match Err::<(), _>(e).ctx(path) {
            Err(e) => e,
            Ok(()) => unreachable!(),
        }
    }
}

/// One `meta` value by key.
pub(crate) fn meta_value(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

/// Set one `meta` value.
pub(crate) fn set_meta_value(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )
    .map(|_| ())
}

/// Bring a store of this or an earlier release up to `SCHEMA_VERSION`, in one transaction:
/// the tables of the current schema (CREATE TABLE IF NOT EXISTS: other rooms add their own the
/// same way), columns added since (`add_missing_columns`, `features::ensure`), then the
/// version stamp. Every step is idempotent, so a migration cut short is redone on the next
/// open. Version history: 1, the first versioned store (stores without a `schema_version`
/// row predate versioning and are stamped 1 after the same steps).
fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE").ctx(path)?;
    let steps = || -> Result<(), StoreError> {
        conn.execute_batch(SCHEMA).ctx(path)?;
        conn.execute_batch(cache::ANSWERS_TABLE).ctx(path)?;
        add_missing_columns(conn).ctx(path)?;
        features::ensure(conn, path)?;
        groups::ensure(conn, path)?;
        let have = meta_value(conn, "schema_version").ctx(path)?;
        let want = SCHEMA_VERSION.to_string();
        if have.as_deref() != Some(want.as_str()) {
            set_meta_value(conn, "schema_version", &want).ctx(path)?;
        }
        Ok(())
    };
    match steps() {
        Ok(()) => conn.execute_batch("COMMIT").ctx(path),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Columns added after a store format was released: added in place, so stores made by an
/// earlier build open and resume (older builds ignore them).
fn add_missing_columns(conn: &Connection) -> rusqlite::Result<()> {
    let has = |table: &str, column: &str| -> rusqlite::Result<bool> {
        let mut st = conn.prepare(&format!("PRAGMA table_info({table})"))?;
        let names = st
            .query_map([], |r| r.get::<_, String>(1))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(names.iter().any(|n| n == column))
    };
    if !has("files", "fingerprint")? {
        conn.execute_batch("ALTER TABLE files ADD COLUMN fingerprint TEXT")?;
    }
    Ok(())
}

fn tier_str(t: Tier) -> &'static str {
    t.as_str()
}

pub fn parse_tier(s: &str) -> Option<Tier> {
    match s {
        "keep" => Some(Tier::Keep),
        "verify" => Some(Tier::Verify),
        "reject" => Some(Tier::Reject),
        _ => None,
    }
}

pub fn parse_verdict(s: &str) -> Option<Verdict> {
    match s {
        "kept" => Some(Verdict::Kept),
        "removed" => Some(Verdict::Removed),
        "pending" => Some(Verdict::Pending),
        _ => None,
    }
}

pub fn parse_decided_by(s: &str) -> Option<DecidedBy> {
    match s {
        "rule" => Some(DecidedBy::Rule),
        "head" => Some(DecidedBy::Head),
        "llm" => Some(DecidedBy::Llm),
        "human" => Some(DecidedBy::Human),
        _ => None,
    }
}

/// A connection to one run store.
pub struct RunStore {
    conn: Connection,
    path: PathBuf,
}

/// Stores this process has open, with how many connections. `inspect_file` opens and closes
/// its own descriptor on the file, and closing any descriptor of a file drops every POSIX
/// lock this process holds on it (SQLite's locks included): so a store already open here is
/// never inspected again (it was when first opened).
static OPEN_HERE: std::sync::Mutex<Option<HashMap<PathBuf, usize>>> = std::sync::Mutex::new(None);

fn open_key(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn open_here(path: &Path) -> bool {
    let key = open_key(path);
    let map = OPEN_HERE.lock().unwrap_or_else(|e| e.into_inner());
    map.as_ref()
        .and_then(|m| m.get(&key))
        .is_some_and(|n| *n > 0)
}

fn note_open(path: &Path, delta: isize) {
    let key = open_key(path);
    let mut map = OPEN_HERE.lock().unwrap_or_else(|e| e.into_inner());
    let n = map.get_or_insert_with(HashMap::new).entry(key).or_insert(0);
    *n = n.saturating_add_signed(delta);
}

impl Drop for RunStore {
    fn drop(&mut self) {
        note_open(&self.path, -1);
    }
}

impl RunStore {
    /// Open (creating if needed) a store for writing.
    pub fn open(path: &Path) -> Result<RunStore, StoreError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
        }
        // Look at what is there before SQLite writes a byte: a file that is not a SQLite
        // database, a truncated one, another tool's database or a newer store is refused,
        // never turned into (or mixed with) a new store.
        let existing = if open_here(path) {
            true
        } else {
            inspect_file(path, true)?
        };
        let conn = Connection::open(path).ctx(path)?;
        if existing {
            check_existing(&conn, path)?;
        }
        // Larger pages and a bounded 32 MB cache: fewer page reads and WAL frames per insert.
        // (page_size only takes effect on a new file, before WAL is switched on.)
        conn.pragma_update(None, "page_size", 16384).ctx(path)?;
        conn.pragma_update(None, "cache_size", -32768).ctx(path)?;
        conn.pragma_update(None, "journal_mode", "WAL").ctx(path)?;
        // NORMAL in WAL mode: a crash loses at most the last commits, never consistency.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .ctx(path)?;
        // Checkpoints (the only fsyncs in WAL/NORMAL) every 64 MB of WAL instead of 16 MB.
        conn.pragma_update(None, "wal_autocheckpoint", 4096)
            .ctx(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .ctx(path)?;
        migrate(&conn, path)?;
        note_open(path, 1);
        Ok(RunStore {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Open an existing store read-only (queries, export, `runs`).
    pub fn open_read(path: &Path) -> Result<RunStore, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Invalid {
                path: path.display().to_string(),
                what: "no such store".into(),
            });
        }
        if !open_here(path) && !inspect_file(path, false)? {
            return Err(invalid(path, "empty file, not a cyberfilter run store"));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ctx(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .ctx(path)?;
        check_existing(&conn, path)?;
        // A store written before the verdict head gets its columns from a short write
        // connection (best effort: an unwritable old store then fails on the first query).
        if features::needs_upgrade(&conn) {
            if let Ok(rw) = Connection::open(path) {
                let _ = rw.busy_timeout(std::time::Duration::from_secs(10));
                let _ = features::ensure(&rw, path);
            }
        }
        note_open(path, 1);
        let store = RunStore {
            conn,
            path: path.to_path_buf(),
        };
        let has_meta: Option<String> = store
            .conn
            .query_row(
                "SELECT name FROM sqlite_master WHERE type='table' AND name='records'",
                [],
                |r| r.get(0),
            )
            .optional()
            .ctx(path)?;
        if has_meta.is_none() {
            return Err(StoreError::Invalid {
                path: path.display().to_string(),
                what: "not a cyberfilter run store".into(),
            });
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        meta_value(&self.conn, key).ctx(&self.path)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        set_meta_value(&self.conn, key, value).ctx(&self.path)
    }

    pub fn config(&self) -> Result<Option<RunConfig>, StoreError> {
        match self.meta("config")? {
            None => Ok(None),
            Some(s) => serde_json::from_str(&s)
                .map(Some)
                .map_err(|e| StoreError::Invalid {
                    path: self.path.display().to_string(),
                    what: format!("bad stored config: {e}"),
                }),
        }
    }

    /// Stores the run's config; thresholds that would not read back (NaN, low above high)
    /// are refused here, the last gate before the file.
    pub fn set_config(&self, c: &RunConfig) -> Result<(), StoreError> {
        c.thresholds
            .validate()
            .map_err(|what| StoreError::Invalid {
                path: self.path.display().to_string(),
                what,
            })?;
        let s = serde_json::to_string(c).expect("config serialises");
        self.set_meta("config", &s)
    }

    /// The thresholds in force (changed by `SetThresholds`), else those of the config.
    pub fn thresholds(&self) -> Result<Option<Thresholds>, StoreError> {
        if let Some(s) = self.meta("thresholds")? {
            if let Ok(t) = serde_json::from_str(&s) {
                return Ok(Some(t));
            }
        }
        Ok(self.config()?.map(|c| c.thresholds))
    }

    pub fn set_thresholds(&self, t: &Thresholds) -> Result<(), StoreError> {
        t.validate().map_err(|what| StoreError::Invalid {
            path: self.path.display().to_string(),
            what,
        })?;
        self.set_meta(
            "thresholds",
            &serde_json::to_string(t).expect("thresholds serialise"),
        )
    }

    /// A rule added to the run: the config's rules hash (a resume checks it) and every
    /// re-scored record's score and hits, inside the writer's transaction.
    pub fn set_rules(
        &self,
        hash: &str,
        scores: &[(i64, f32, Vec<RuleHit>)],
    ) -> Result<(), StoreError> {
        if let Some(mut c) = self.config()? {
            c.rules_hash = hash.to_string();
            self.set_config(&c)?;
        }
        let mut st = self
            .conn
            .prepare_cached("UPDATE records SET score = ?2, rules = ?3 WHERE seq = ?1")
            .ctx(&self.path)?;
        for (seq, score, hits) in scores {
            st.execute(params![seq, *score as f64, encode_hits(hits)])
                .ctx(&self.path)?;
        }
        Ok(())
    }

    pub fn state(&self) -> Result<Option<RunState>, StoreError> {
        Ok(self.meta("state")?.and_then(|s| RunState::parse(&s)))
    }

    /// The state as a person should read it: `running` only while a process holds the store.
    pub fn observed_state(&self) -> Result<Option<RunState>, StoreError> {
        Ok(match self.state()? {
            Some(RunState::Running) if !lock::is_held(&self.path) => Some(RunState::Interrupted),
            s => s,
        })
    }

    pub fn set_state(&self, s: RunState) -> Result<(), StoreError> {
        self.set_meta("state", s.as_str())
    }

    /// Register an input file with its content fingerprint and return its id. A file already
    /// registered under a different fingerprint has changed since this store read it: an error
    /// that names it, rather than records of two versions mixed in one store. (A row without a
    /// fingerprint, from a store made before they were kept, takes this one.)
    pub fn register_file(
        &self,
        path: &str,
        bytes_total: u64,
        fingerprint: &str,
    ) -> Result<i64, StoreError> {
        let id = self.file_id(path, bytes_total)?;
        let stored: Option<String> = self
            .conn
            .query_row(
                "SELECT fingerprint FROM files WHERE file_id = ?1",
                [id],
                |r| r.get(0),
            )
            .ctx(&self.path)?;
        match stored {
            Some(f) if f != fingerprint => Err(StoreError::Invalid {
                path: self.path.display().to_string(),
                what: format!(
                    "input {path} changed since this store read it (fingerprint {f}, now \
                     {fingerprint}); start a new run for the new content"
                ),
            }),
            Some(_) => Ok(id),
            None => {
                self.conn
                    .execute(
                        "UPDATE files SET fingerprint = ?2 WHERE file_id = ?1",
                        params![id, fingerprint],
                    )
                    .ctx(&self.path)?;
                Ok(id)
            }
        }
    }

    /// Rewrite stored file paths (a store made before inputs were stored canonically: its
    /// relative paths become the absolute ones they name from here). Returns rows changed.
    pub fn rename_files(&self, renames: &[(String, String)]) -> Result<usize, StoreError> {
        let mut n = 0;
        for (from, to) in renames {
            n += self
                .conn
                .execute(
                    "UPDATE files SET path = ?2 WHERE path = ?1",
                    params![from, to],
                )
                .ctx(&self.path)?;
        }
        Ok(n)
    }

    /// The file's id, registering it when new.
    pub fn file_id(&self, path: &str, bytes_total: u64) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO files(path, bytes_total) VALUES (?1, ?2) ON CONFLICT(path) DO NOTHING",
                params![path, bytes_total as i64],
            )
            .ctx(&self.path)?;
        self.conn
            .query_row("SELECT file_id FROM files WHERE path = ?1", [path], |r| {
                r.get(0)
            })
            .ctx(&self.path)
    }

    pub fn files(&self) -> Result<Vec<FileRow>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT file_id, path, bytes_total, bytes_done, records, errors, done
                 FROM files ORDER BY file_id",
            )
            .ctx(&self.path)?;
        let rows = st
            .query_map([], |r| {
                Ok(FileRow {
                    file_id: r.get(0)?,
                    path: r.get(1)?,
                    bytes_total: r.get::<_, i64>(2)? as u64,
                    bytes_done: r.get::<_, i64>(3)? as u64,
                    records: r.get::<_, i64>(4)? as u64,
                    errors: r.get::<_, i64>(5)? as u64,
                    done: r.get::<_, i64>(6)? != 0,
                })
            })
            .ctx(&self.path)?
            .collect::<Result<Vec<_>, _>>()
            .ctx(&self.path)?;
        Ok(rows)
    }

    /// Indices already stored for a file (resume skips them).
    pub fn stored_indices(&self, file_id: i64) -> Result<Vec<u64>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT idx FROM records WHERE file_id = ?1 ORDER BY idx")
            .ctx(&self.path)?;
        let v = st
            .query_map([file_id], |r| r.get::<_, i64>(0).map(|x| x as u64))
            .ctx(&self.path)?
            .collect::<Result<Vec<_>, _>>()
            .ctx(&self.path)?;
        Ok(v)
    }

    /// Every stored record's decision inputs, in seq order (the engine's in-memory index).
    pub fn load_inputs(&self) -> Result<Vec<StoredInputs>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT seq, file_id, idx, source, score, text_len, scored, p_yes, label, verdict,
                    tier, p_head FROM records ORDER BY seq",
            )
            .ctx(&self.path)?;
        let v = st
            .query_map([], |r| {
                let source: String = r.get(3)?;
                let label: Option<String> = r.get(8)?;
                Ok(StoredInputs {
                    seq: r.get(0)?,
                    file_id: r.get(1)?,
                    index: r.get::<_, i64>(2)? as u64,
                    source: SourceKind::parse(&source).unwrap_or(SourceKind::Json),
                    inputs: DecisionInputs {
                        score: r.get::<_, f64>(4)? as f32,
                        text_len: r.get::<_, i64>(5)? as usize,
                        scored: r.get::<_, i64>(6)? != 0,
                        p_yes: r.get::<_, Option<f64>>(7)?.map(|p| p as f32),
                        p_head: r.get::<_, Option<f64>>(11)?.map(|p| p as f32),
                        label: label.as_deref().and_then(Label::parse),
                    },
                    verdict: parse_verdict(&r.get::<_, String>(9)?),
                    tier: parse_tier(&r.get::<_, String>(10)?),
                })
            })
            .ctx(&self.path)?
            .collect::<Result<Vec<_>, _>>()
            .ctx(&self.path)?;
        Ok(v)
    }

    /// Insert a batch of records in one transaction. A record already stored (same file and
    /// index) is left as it is: a record is never stored twice.
    pub fn insert_records(&mut self, rows: &[NewRecord]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self.conn.transaction().ctx(&path)?;
        for r in rows {
            RunStore::insert_record(&tx, &path, r)?;
        }
        tx.commit().ctx(&path)
    }

    /// Insert one record inside the caller's transaction.
    pub fn insert_record(conn: &Connection, path: &Path, r: &NewRecord) -> Result<(), StoreError> {
        let mut st = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO records(seq, file_id, idx, id, source, kind, offset, len, outer_offset,
                    content_hash, text, text_len, scored, score, rules, tier, p_yes, model,
                    prompt_version, verdict, decided_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                    ?16, ?17, ?18, ?19, ?20, ?21)",
            )
            .ctx(path)?;
        let rules = encode_hits(&r.hits);
        st.execute(params![
            r.seq,
            r.file_id,
            r.index as i64,
            r.id,
            r.source.as_str(),
            r.kind,
            r.offset as i64,
            r.len as i64,
            r.outer_offset.map(|o| o as i64),
            &r.content_hash[..],
            r.text,
            r.text_len as i64,
            r.scored as i64,
            r.score as f64,
            rules,
            tier_str(r.decision.tier),
            r.p_yes.map(|p| p as f64),
            r.model,
            r.prompt_version,
            r.decision.verdict.as_str(),
            r.decision.decided_by.map(|d| d.as_str()),
        ])
        .ctx(path)?;
        Ok(())
    }

    /// Record a file's progress.
    pub fn set_file_progress(
        conn: &Connection,
        path: &Path,
        f: &FileRow,
    ) -> Result<(), StoreError> {
        conn.prepare_cached(
            "UPDATE files SET bytes_total = ?2, bytes_done = ?3, records = ?4, errors = ?5,
                done = ?6 WHERE file_id = ?1",
        )
        .ctx(path)?
        .execute(params![
            f.file_id,
            f.bytes_total as i64,
            f.bytes_done as i64,
            f.records as i64,
            f.errors as i64,
            f.done as i64
        ])
        .ctx(path)?;
        Ok(())
    }

    pub fn add_error(
        conn: &Connection,
        path: &Path,
        file: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        conn.prepare_cached("INSERT INTO errors(file, message, time) VALUES (?1, ?2, ?3)")
            .ctx(path)?
            .execute(params![file, message, now_secs() as i64])
            .ctx(path)?;
        Ok(())
    }

    pub fn add_metrics(conn: &Connection, path: &Path, line: &str) -> Result<(), StoreError> {
        conn.prepare_cached("INSERT INTO metrics(line) VALUES (?1)")
            .ctx(path)?
            .execute([line])
            .ctx(path)?;
        Ok(())
    }

    /// Start a transaction for a group of writes (the writer batches everything).
    pub fn begin(&mut self) -> Result<rusqlite::Transaction<'_>, StoreError> {
        let path = self.path.clone();
        self.conn.transaction().ctx(&path)
    }

    /// Record `p_yes` answers and the decisions they lead to.
    pub fn set_answers(tx: &Connection, path: &Path, answers: &[Answer]) -> Result<(), StoreError> {
        let mut st = tx
            .prepare_cached(
                "UPDATE records SET p_yes = ?2, model = ?3, prompt_version = ?4, tier = ?5,
                    verdict = ?6, decided_by = ?7 WHERE seq = ?1",
            )
            .ctx(path)?;
        let mut cache = tx
            .prepare_cached(
                "INSERT OR REPLACE INTO llm_cache(content_hash, model, prompt_version, p_yes)
                 SELECT content_hash, ?2, ?3, ?4 FROM records WHERE seq = ?1",
            )
            .ctx(path)?;
        for a in answers {
            st.execute(params![
                a.seq,
                a.p_yes as f64,
                a.model,
                a.prompt_version,
                tier_str(a.decision.tier),
                a.decision.verdict.as_str(),
                a.decision.decided_by.map(|d| d.as_str()),
            ])
            .ctx(path)?;
            cache
                .execute(params![a.seq, a.model, a.prompt_version, a.p_yes as f64])
                .ctx(path)?;
        }
        Ok(())
    }

    /// Rewrite the stored tier/verdict of re-decided records.
    pub fn set_decisions(
        tx: &Connection,
        path: &Path,
        decisions: &[(i64, Decision)],
    ) -> Result<(), StoreError> {
        let mut st = tx
            .prepare_cached(
                "UPDATE records SET tier = ?2, verdict = ?3, decided_by = ?4 WHERE seq = ?1",
            )
            .ctx(path)?;
        for (seq, d) in decisions {
            st.execute(params![
                seq,
                tier_str(d.tier),
                d.verdict.as_str(),
                d.decided_by.map(|x| x.as_str())
            ])
            .ctx(path)?;
        }
        Ok(())
    }

    /// Apply a label in its own transaction, with its log entry, so it survives a crash.
    pub fn apply_label(&mut self, change: &LabelChange) -> Result<i64, StoreError> {
        let path = self.path.clone();
        let tx = self.conn.transaction().ctx(&path)?;
        let now = now_secs();
        tx.execute(
            "UPDATE records SET label = ?2, label_time = ?3, tier = ?4, verdict = ?5,
                decided_by = ?6 WHERE seq = ?1",
            params![
                change.seq,
                change.new_label.map(|l| l.as_str()),
                change.new_label.map(|_| now as i64),
                tier_str(change.decision.tier),
                change.decision.verdict.as_str(),
                change.decision.decided_by.map(|d| d.as_str()),
            ],
        )
        .ctx(&path)?;
        tx.execute(
            "INSERT INTO label_log(record_seq, record_id, old_verdict, old_label, new_label,
                time, undoes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                change.seq,
                change.record_id,
                change.old_verdict.as_str(),
                change.old_label.map(|l| l.as_str()),
                change.new_label.map(|l| l.as_str()),
                now as i64,
                change.undoes,
            ],
        )
        .ctx(&path)?;
        let id = tx.last_insert_rowid();
        tx.commit().ctx(&path)?;
        Ok(id)
    }

    /// The most recent label change that has not been undone (and is not itself an undo).
    pub fn last_undoable_label(&self) -> Result<Option<LabelLogEntry>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT log_id FROM label_log l WHERE undoes IS NULL
                   AND NOT EXISTS (SELECT 1 FROM label_log u WHERE u.undoes = l.log_id)
                 ORDER BY log_id DESC LIMIT 1",
                [],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .ctx(&self.path)?;
        match row {
            None => Ok(None),
            Some(id) => Ok(self.label_log()?.into_iter().find(|e| e.log_id == id)),
        }
    }

    pub fn label_log(&self) -> Result<Vec<LabelLogEntry>, StoreError> {
        self.label_log_after(0)
    }

    /// Label-log entries after `log_id`, oldest first (a running engine reads what another
    /// process, `cyberfilter relabel`, wrote since it last looked).
    pub fn label_log_after(&self, log_id: i64) -> Result<Vec<LabelLogEntry>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT log_id, record_seq, record_id, old_verdict, old_label, new_label, time,
                    undoes FROM label_log WHERE log_id > ?1 ORDER BY log_id",
            )
            .ctx(&self.path)?;
        let v = st
            .query_map([log_id], |r| {
                let ov: String = r.get(3)?;
                let ol: Option<String> = r.get(4)?;
                let nl: Option<String> = r.get(5)?;
                Ok(LabelLogEntry {
                    log_id: r.get(0)?,
                    record_seq: r.get(1)?,
                    record_id: r.get(2)?,
                    old_verdict: parse_verdict(&ov).unwrap_or(Verdict::Pending),
                    old_label: ol.as_deref().and_then(Label::parse),
                    new_label: nl.as_deref().and_then(Label::parse),
                    time: r.get::<_, i64>(6)? as u64,
                    undoes: r.get(7)?,
                })
            })
            .ctx(&self.path)?
            .collect::<Result<Vec<_>, _>>()
            .ctx(&self.path)?;
        Ok(v)
    }

    /// Seqs of the records with this natural id (`#SEQ` names one row directly).
    pub fn seqs_for_id(&self, id: &str) -> Result<Vec<i64>, StoreError> {
        if let Some(n) = id.strip_prefix('#').and_then(|s| s.parse::<i64>().ok()) {
            let found: Option<i64> = self
                .conn
                .query_row("SELECT seq FROM records WHERE seq = ?1", [n], |r| r.get(0))
                .optional()
                .ctx(&self.path)?;
            return Ok(found.into_iter().collect());
        }
        let mut st = self
            .conn
            .prepare_cached("SELECT seq FROM records WHERE id = ?1 ORDER BY seq")
            .ctx(&self.path)?;
        let v = st
            .query_map([id], |r| r.get(0))
            .ctx(&self.path)?
            .collect::<Result<Vec<i64>, _>>()
            .ctx(&self.path)?;
        Ok(v)
    }

    /// This store's cached answer for one text, model and prompt version.
    pub fn cached_answer(
        &self,
        hash: &[u8; 32],
        model: &str,
        prompt_version: &str,
    ) -> Result<Option<f32>, StoreError> {
        cache::lookup(&self.conn, &self.path, hash, model, prompt_version)
    }

    /// Cached LLM answers for one model and prompt version.
    pub fn load_cache(
        &self,
        model: &str,
        prompt_version: &str,
    ) -> Result<HashMap<[u8; 32], f32>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT content_hash, p_yes FROM llm_cache WHERE model = ?1 AND prompt_version = ?2",
            )
            .ctx(&self.path)?;
        let mut map = HashMap::new();
        let rows = st
            .query_map(params![model, prompt_version], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, f64>(1)?))
            })
            .ctx(&self.path)?;
        for row in rows {
            let (h, p) = row.ctx(&self.path)?;
            if let Ok(h) = <[u8; 32]>::try_from(h.as_slice()) {
                map.insert(h, p as f32);
            }
        }
        Ok(map)
    }

    pub fn summary(&self) -> Result<StoreSummary, StoreError> {
        let mut s = StoreSummary::default();
        let mut st = self
            .conn
            .prepare("SELECT verdict, count(*), count(label) FROM records GROUP BY verdict")
            .ctx(&self.path)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                ))
            })
            .ctx(&self.path)?;
        for row in rows {
            let (v, n, l) = row.ctx(&self.path)?;
            s.records += n;
            s.labelled += l;
            match parse_verdict(&v) {
                Some(Verdict::Kept) => s.kept += n,
                Some(Verdict::Removed) => s.removed += n,
                _ => s.pending += n,
            }
        }
        s.errors = self
            .conn
            .query_row("SELECT count(*) FROM errors", [], |r| r.get::<_, i64>(0))
            .ctx(&self.path)? as u64;
        let files = self.files()?;
        s.files = files.len() as u64;
        s.files_done = files.iter().filter(|f| f.done).count() as u64;
        Ok(s)
    }

    pub fn errors(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT file, message FROM errors ORDER BY err_id")
            .ctx(&self.path)?;
        let v = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .ctx(&self.path)?
            .collect::<Result<Vec<(String, String)>, _>>()
            .ctx(&self.path)?;
        Ok(v)
    }

    pub fn metrics_lines(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT line FROM metrics ORDER BY metric_id")
            .ctx(&self.path)?;
        let v = st
            .query_map([], |r| r.get(0))
            .ctx(&self.path)?
            .collect::<Result<Vec<String>, _>>()
            .ctx(&self.path)?;
        Ok(v)
    }
}

/// An LLM answer for one record.
#[derive(Debug, Clone)]
pub struct Answer {
    pub seq: i64,
    pub p_yes: f32,
    pub model: String,
    pub prompt_version: String,
    pub decision: Decision,
}

/// A label change for one record.
#[derive(Debug, Clone)]
pub struct LabelChange {
    pub seq: i64,
    pub record_id: String,
    pub old_verdict: Verdict,
    pub old_label: Option<Label>,
    pub new_label: Option<Label>,
    pub decision: Decision,
    pub undoes: Option<i64>,
}

/// A full stored record (queries, detail view, export).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    pub seq: i64,
    pub file: String,
    pub index: u64,
    pub id: String,
    pub source: SourceKind,
    pub kind: String,
    pub locator: crate::record::Locator,
    pub text: String,
    pub text_len: usize,
    pub scored: bool,
    pub score: f32,
    pub hits: Vec<RuleHit>,
    pub p_yes: Option<f32>,
    pub model: Option<String>,
    pub prompt_version: Option<String>,
    pub label: Option<Label>,
    pub label_time: Option<u64>,
    /// P(head) of the verdict head in force, when it scored this record.
    #[serde(default)]
    pub p_head: Option<f32>,
}

impl StoredRecord {
    pub fn inputs(&self) -> DecisionInputs {
        DecisionInputs {
            score: self.score,
            text_len: self.text_len,
            scored: self.scored,
            p_yes: self.p_yes,
            p_head: self.p_head,
            label: self.label,
        }
    }
}

pub(crate) const RECORD_COLUMNS: &str = "r.seq, f.path, r.idx, r.id, r.source, r.kind, r.offset,
    r.text, r.text_len, r.scored, r.score, r.rules, r.p_yes, r.model, r.prompt_version, r.label,
    r.label_time, r.len, r.outer_offset, r.p_head";

/// Matched rules, one per line: `rule \t category \t count \t contribution` (compact: the
/// rules column is written for every record).
pub fn encode_hits(hits: &[RuleHit]) -> String {
    let mut s = String::with_capacity(hits.len() * 32);
    for (i, h) in hits.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(&h.rule);
        s.push('\t');
        s.push_str(&h.category);
        s.push('\t');
        s.push_str(&h.count.to_string());
        s.push('\t');
        s.push_str(&h.contribution.to_string());
    }
    s
}

pub fn decode_hits(s: &str) -> Vec<RuleHit> {
    s.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some(RuleHit {
                rule: f.next()?.to_string(),
                category: f.next()?.to_string(),
                count: f.next()?.parse().ok()?,
                contribution: f.next()?.parse().ok()?,
            })
        })
        .collect()
}

pub(crate) fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRecord> {
    let source: String = r.get(4)?;
    let rules: String = r.get(11)?;
    let label: Option<String> = r.get(15)?;
    let file: String = r.get(1)?;
    let locator = crate::record::Locator {
        file: std::sync::Arc::new(PathBuf::from(&file)),
        index: r.get::<_, i64>(2)? as u64,
        offset: r.get::<_, i64>(6)? as u64,
        len: r.get::<_, i64>(17)? as u64,
        outer_offset: r.get::<_, Option<i64>>(18)?.map(|o| o as u64),
    };
    Ok(StoredRecord {
        seq: r.get(0)?,
        file,
        index: r.get::<_, i64>(2)? as u64,
        id: r.get(3)?,
        source: SourceKind::parse(&source).unwrap_or(SourceKind::Json),
        kind: r.get(5)?,
        locator,
        text: r.get(7)?,
        text_len: r.get::<_, i64>(8)? as usize,
        scored: r.get::<_, i64>(9)? != 0,
        score: r.get::<_, f64>(10)? as f32,
        hits: decode_hits(&rules),
        p_yes: r.get::<_, Option<f64>>(12)?.map(|p| p as f32),
        model: r.get(13)?,
        prompt_version: r.get(14)?,
        label: label.as_deref().and_then(Label::parse),
        label_time: r.get::<_, Option<i64>>(16)?.map(|t| t as u64),
        p_head: r.get::<_, Option<f64>>(19)?.map(|p| p as f32),
    })
}

impl RunStore {
    /// Full records for these seqs (missing ones are skipped).
    pub fn records_by_seq(&self, seqs: &[i64]) -> Result<Vec<StoredRecord>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM records r JOIN files f ON f.file_id = r.file_id
                 WHERE r.seq = ?1"
            ))
            .ctx(&self.path)?;
        let mut out = Vec::with_capacity(seqs.len());
        for &s in seqs {
            if let Some(rec) = st
                .query_row([s], record_from_row)
                .optional()
                .ctx(&self.path)?
            {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Seqs whose id or text contains `needle` (case-insensitive for ASCII).
    pub fn search(&self, needle: &str) -> Result<Vec<i64>, StoreError> {
        let pat = format!(
            "%{}%",
            needle
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let mut st = self
            .conn
            .prepare(
                "SELECT seq FROM records WHERE id LIKE ?1 ESCAPE '\\' OR text LIKE ?1 ESCAPE '\\'
                 ORDER BY seq",
            )
            .ctx(&self.path)?;
        let v = st
            .query_map([pat], |r| r.get(0))
            .ctx(&self.path)?
            .collect::<Result<Vec<i64>, _>>()
            .ctx(&self.path)?;
        Ok(v)
    }

    /// Text and content hash for verification (None when the row is not committed yet).
    pub fn text_for(&self, seq: i64) -> Result<Option<(String, [u8; 32])>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT text, content_hash FROM records WHERE seq = ?1")
            .ctx(&self.path)?;
        let row = st
            .query_row([seq], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .optional()
            .ctx(&self.path)?;
        Ok(row.map(|(t, h)| {
            let mut hash = [0u8; 32];
            if h.len() == 32 {
                hash.copy_from_slice(&h);
            }
            (t, hash)
        }))
    }

    /// Visit every record in export order (file, index).
    pub fn for_each_record(
        &self,
        mut f: impl FnMut(StoredRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {RECORD_COLUMNS} FROM records r JOIN files f ON f.file_id = r.file_id
                 ORDER BY r.file_id, r.idx"
            ))
            .ctx(&self.path)?;
        let mut rows = st.query([]).ctx(&self.path)?;
        while let Some(row) = rows.next().ctx(&self.path)? {
            f(record_from_row(row).ctx(&self.path)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::decide;

    fn new_record(seq: i64, file_id: i64, index: u64, score: f32) -> NewRecord {
        let t = Thresholds::default();
        let inputs = DecisionInputs {
            score,
            text_len: 40,
            scored: true,
            p_yes: None,
            p_head: None,
            label: None,
        };
        NewRecord {
            seq,
            file_id,
            index,
            id: format!("CVE-{index}"),
            source: SourceKind::NvdApi2,
            kind: "cve".into(),
            offset: 0,
            len: 10,
            outer_offset: None,
            content_hash: [index as u8; 32],
            text: format!("a heap overflow in the parser number {index}"),
            text_len: 40,
            scored: true,
            score,
            hits: vec![],
            p_yes: None,
            model: None,
            prompt_version: None,
            decision: decide(&inputs, &t),
        }
    }

    #[test]
    fn records_are_never_stored_twice_and_labels_are_logged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.cfrun");
        let mut s = RunStore::open(&path).unwrap();
        let f = s.file_id("a.json", 10).unwrap();
        assert_eq!(s.file_id("a.json", 10).unwrap(), f);
        s.insert_records(&[new_record(1, f, 0, 7.0), new_record(2, f, 1, 3.0)])
            .unwrap();
        // Same (file, index) again under another seq: ignored.
        s.insert_records(&[new_record(3, f, 1, 3.0)]).unwrap();
        assert_eq!(s.stored_indices(f).unwrap(), vec![0, 1]);
        assert_eq!(s.load_inputs().unwrap().len(), 2);
        let sum = s.summary().unwrap();
        assert_eq!((sum.kept, sum.pending), (1, 1));

        let t = Thresholds::default();
        let mut inputs = s.load_inputs().unwrap()[1].inputs;
        inputs.label = Some(Label::Reject);
        s.apply_label(&LabelChange {
            seq: 2,
            record_id: "CVE-1".into(),
            old_verdict: Verdict::Pending,
            old_label: None,
            new_label: Some(Label::Reject),
            decision: decide(&inputs, &t),
            undoes: None,
        })
        .unwrap();
        let log = s.last_undoable_label().unwrap().unwrap();
        assert_eq!(log.new_label, Some(Label::Reject));
        assert_eq!(s.summary().unwrap().removed, 1);
        assert_eq!(s.seqs_for_id("CVE-1").unwrap(), vec![2]);
        assert_eq!(s.seqs_for_id("#1").unwrap(), vec![1]);

        // A read-only connection sees the committed data.
        let r = RunStore::open_read(&path).unwrap();
        assert_eq!(
            r.records_by_seq(&[2]).unwrap()[0].label,
            Some(Label::Reject)
        );
        assert_eq!(r.search("NUMBER 1").unwrap(), vec![2]);
    }
}
