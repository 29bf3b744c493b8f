//! Where run stores live: `$CYBERFILTER_DATA_DIR`, else `$XDG_DATA_HOME/cyberfilter` (on every
//! OS), else the platform data dir from `directories`; stores sit in its `runs/` folder.

use std::path::{Path, PathBuf};

/// File extension of run stores.
pub const STORE_EXT: &str = "cfrun";

pub fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CYBERFILTER_DATA_DIR").filter(|s| !s.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|s| !s.is_empty()) {
        return PathBuf::from(x).join("cyberfilter");
    }
    directories::ProjectDirs::from("", "", "cyberfilter")
        .map(|p| p.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".cyberfilter"))
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

/// A new store path for these inputs: `runs/{YYYYmmdd-HHMMSS}-{hash8}.cfrun`.
pub fn new_store_path(inputs: &[PathBuf]) -> PathBuf {
    let mut h = blake3::Hasher::new();
    for i in inputs {
        h.update(i.to_string_lossy().as_bytes());
        h.update(b"\0");
    }
    let hex = h.finalize().to_hex();
    runs_dir().join(format!(
        "{}-{}.{STORE_EXT}",
        timestamp(crate::store::now_secs(), "-"),
        &hex[..8]
    ))
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
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(timestamp(0, "_"), "19700101_000000");
        // 2025-07-29 07:41:30 UTC
        assert_eq!(timestamp(1_753_774_890, "_"), "20250729_074130");
        assert_eq!(timestamp(951_782_400, "-"), "20000229-000000");
    }
}
