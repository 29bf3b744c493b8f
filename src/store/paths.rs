//! Where run stores live: `$CYBERFILTER_DATA_DIR`, else `$XDG_DATA_HOME/cyberfilter` (on every
//! OS), else the platform data dir from `directories`; stores sit in its `runs/` folder.

use std::path::{Path, PathBuf};

/// File extension of run stores.
pub const STORE_EXT: &str = "cfrun";

/// The data dir of the process environment (and the config file it names); see
/// [`crate::paths`], the one resolver.
pub fn data_dir() -> PathBuf {
    crate::paths::Paths::from_env().data_dir
}

pub fn runs_dir() -> PathBuf {
    data_dir().join("runs")
}

/// Every store in a folder, newest first (by modification time).
pub fn list_stores(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == STORE_EXT))
        .map(|p| {
            let t = std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (t, p)
        })
        .collect();
    v.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    v.into_iter().map(|(_, p)| p).collect()
}

/// A new store path for these inputs: `{runs}/{YYYYmmdd-HHMMSS}-{hex8}.cfrun`, never one that
/// exists. The hex part hashes the inputs with the process id, the clock's nanoseconds and a
/// counter, so runs started in the same second (by one process or several) get distinct stores.
pub fn new_store_path(runs: &Path, inputs: &[PathBuf]) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let secs = crate::store::now_secs();
    loop {
        let mut h = blake3::Hasher::new();
        for i in inputs {
            h.update(i.to_string_lossy().as_bytes());
            h.update(b"\0");
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        h.update(&nanos.to_le_bytes());
        h.update(&std::process::id().to_le_bytes());
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        h.update(&n.to_le_bytes());
        let hex = h.finalize().to_hex();
        let p = runs.join(format!(
            "{}-{}.{STORE_EXT}",
            timestamp(secs, "-"),
            &hex[..8]
        ));
        if !p.exists() && !super::lock::lock_path(&p).exists() {
            return p;
        }
    }
}

/// An input as the store records it: its canonical absolute path, so `coll`, `./coll`,
/// `coll/` and `/abs/coll` are one input and two folders named `coll` in different places are
/// two. A path that cannot be canonicalised (it does not exist) is made absolute as typed.
pub fn canonical_input(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    })
}

pub fn canonical_inputs(inputs: &[PathBuf]) -> Vec<PathBuf> {
    inputs.iter().map(|p| canonical_input(p)).collect()
}

/// A content fingerprint of an input file, cheap for any size: its length and the BLAKE3 of
/// its first and last 64 KiB. A file that was replaced, appended to or rewritten at either end
/// reads as changed; a same-length edit in the middle of a large file does not (a full hash of
/// a 1 GB feed on every resume would cost more than the run it protects).
pub fn file_fingerprint(path: &Path) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    const EDGE: u64 = 64 * 1024;
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut h = blake3::Hasher::new();
    h.update(&len.to_le_bytes());
    let mut buf = vec![0u8; EDGE as usize];
    let head = (len.min(EDGE)) as usize;
    f.read_exact(&mut buf[..head])?;
    h.update(&buf[..head]);
    if len > EDGE {
        let tail_start = len.saturating_sub(EDGE).max(EDGE);
        f.seek(SeekFrom::Start(tail_start))?;
        let n = (len - tail_start) as usize;
        f.read_exact(&mut buf[..n])?;
        h.update(&buf[..n]);
    }
    Ok(h.finalize().to_hex()[..16].to_string())
}

/// UTC `YYYYmmdd{sep}HHMMSS` for a Unix time (no date crate needed for this).
pub fn timestamp(secs: u64, sep: &str) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{sep}{:02}{:02}{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_store_paths_are_distinct_within_one_second() {
        let dir = tempfile::tempdir().unwrap();
        let inputs = vec![PathBuf::from("sample_data/nvd")];
        let a = new_store_path(dir.path(), &inputs);
        std::fs::write(&a, b"").unwrap();
        let b = new_store_path(dir.path(), &inputs);
        let c = new_store_path(dir.path(), &inputs);
        assert!(a != b && b != c && a != c, "{a:?} {b:?} {c:?}");
    }

    #[test]
    fn relative_spellings_of_one_input_are_one_canonical_input() {
        let dir = tempfile::tempdir().unwrap();
        let coll = dir.path().join("coll");
        std::fs::create_dir(&coll).unwrap();
        let a = canonical_input(&coll);
        let b = canonical_input(&dir.path().join("coll/"));
        let c = canonical_input(&dir.path().join("./coll/../coll"));
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert!(a.is_absolute());
    }

    #[test]
    fn fingerprints_notice_a_changed_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.jsonl");
        std::fs::write(&f, b"{\"id\":1}\n").unwrap();
        let one = file_fingerprint(&f).unwrap();
        assert_eq!(one, file_fingerprint(&f).unwrap());
        std::fs::write(&f, b"{\"id\":2}\n").unwrap();
        assert_ne!(one, file_fingerprint(&f).unwrap());
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&f, &big).unwrap();
        let before = file_fingerprint(&f).unwrap();
        let mut longer = big.clone();
        longer.push(7);
        std::fs::write(&f, &longer).unwrap();
        assert_ne!(before, file_fingerprint(&f).unwrap());
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(timestamp(0, "_"), "19700101_000000");
        // 2025-07-29 07:41:30 UTC
        assert_eq!(timestamp(1_753_774_890, "_"), "20250729_074130");
        assert_eq!(timestamp(951_782_400, "-"), "20000229-000000");
    }
}
