//! Verdict-head state in the run store: pooled features per text (f16), trained heads with
//! their metrics and flips, the head's own labels (seed file, weak labels from the rules'
//! confident tiers), and each record's P(head). Created from the schema by [`ensure`].

use super::{SqlContext, StoreError};
use crate::verify::head::{Head, LabelSource};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS features (
    content_hash BLOB NOT NULL,
    spec TEXT NOT NULL,
    p_yes REAL,
    vec BLOB NOT NULL,
    PRIMARY KEY (content_hash, spec)
);
CREATE TABLE IF NOT EXISTS heads (
    version TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    head TEXT NOT NULL,
    trained_at INTEGER NOT NULL,
    cv_auc REAL,
    examples INTEGER NOT NULL,
    to_kept INTEGER NOT NULL DEFAULT 0,
    to_removed INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS head_labels (
    content_hash BLOB NOT NULL,
    source TEXT NOT NULL,
    positive INTEGER NOT NULL,
    grp TEXT NOT NULL,
    text TEXT,
    PRIMARY KEY (content_hash, source)
);
";

/// Creates the head's tables and the `records.p_head` column when missing.
pub fn ensure(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.execute_batch(SCHEMA).ctx(path)?;
    let has: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('records') WHERE name = 'p_head'")
        .and_then(|mut st| st.exists([]))
        .ctx(path)?;
    if !has {
        conn.execute_batch(
            "ALTER TABLE records ADD COLUMN p_head REAL; ALTER TABLE records ADD COLUMN head TEXT;",
        )
        .ctx(path)?;
    }
    Ok(())
}

/// True when `records` exists and lacks the head's columns (a store from before the head).
pub fn needs_upgrade(conn: &Connection) -> bool {
    let records: bool = conn
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records'")
        .and_then(|mut st| st.exists([]))
        .unwrap_or(false);
    let has: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('records') WHERE name = 'p_head'")
        .and_then(|mut st| st.exists([]))
        .unwrap_or(true);
    records && !has
}

/// IEEE half precision from f32 (round to nearest even; overflow to infinity).
pub fn f16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rest = m & ((1 << shift) - 1);
        let mut v = m >> shift;
        if rest > half || (rest == half && v & 1 == 1) {
            v += 1;
        }
        return sign | v as u16;
    }
    let mut v = ((e as u32) << 10) | (man >> 13);
    let rest = man & 0x1fff;
    if rest > 0x1000 || (rest == 0x1000 && v & 1 == 1) {
        v += 1;
    }
    sign | v as u16
}

pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = if exp == 0 {
        if man == 0 {
            sign
        } else {
            // subnormal: normalise
            let mut e = 127 - 15 + 1;
            let mut m = man;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((m & 0x3ff) << 13)
        }
    } else if exp == 0x1f {
        sign | 0x7f80_0000 | (man << 13)
    } else {
        sign | ((exp + 127 - 15) << 23) | (man << 13)
    };
    f32::from_bits(bits)
}

pub fn encode_vec(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| f16_bits(*x).to_le_bytes()).collect()
}

pub fn decode_vec(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(2)
        .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
        .collect()
}

/// One text's pooled features.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFeatures {
    pub content_hash: [u8; 32],
    pub p_yes: Option<f32>,
    pub vec: Vec<f32>,
}

pub fn put_features(
    conn: &Connection,
    path: &Path,
    spec: &str,
    items: &[StoredFeatures],
) -> Result<(), StoreError> {
    let mut st = conn
        .prepare_cached(
            "INSERT OR REPLACE INTO features(content_hash, spec, p_yes, vec) VALUES (?1, ?2, ?3, ?4)",
        )
        .ctx(path)?;
    for f in items {
        st.execute(params![
            &f.content_hash[..],
            spec,
            f.p_yes.map(|p| p as f64),
            encode_vec(&f.vec)
        ])
        .ctx(path)?;
    }
    Ok(())
}

/// One text's stored features for `spec`.
pub fn get_features(
    conn: &Connection,
    path: &Path,
    spec: &str,
    hash: &[u8; 32],
) -> Result<Option<StoredFeatures>, StoreError> {
    conn.prepare_cached("SELECT p_yes, vec FROM features WHERE content_hash = ?1 AND spec = ?2")
        .ctx(path)?
        .query_row(params![&hash[..], spec], |r| {
            Ok(StoredFeatures {
                content_hash: *hash,
                p_yes: r.get::<_, Option<f64>>(0)?.map(|p| p as f32),
                vec: decode_vec(&r.get::<_, Vec<u8>>(1)?),
            })
        })
        .optional()
        .ctx(path)
}

/// Features of stored records, by seq (the content hash is the record's).
pub fn put_features_by_seq(
    conn: &Connection,
    path: &Path,
    spec: &str,
    rows: &[(i64, Option<f32>, Vec<f32>)],
) -> Result<(), StoreError> {
    let mut st = conn
        .prepare_cached(
            "INSERT OR REPLACE INTO features(content_hash, spec, p_yes, vec)
             SELECT content_hash, ?2, ?3, ?4 FROM records WHERE seq = ?1",
        )
        .ctx(path)?;
    for (seq, p, v) in rows {
        st.execute(params![seq, spec, p.map(|p| p as f64), encode_vec(v)])
            .ctx(path)?;
    }
    Ok(())
}

/// Weak labels on stored records, by seq: (seq, positive, group).
pub fn put_weak_labels_by_seq(
    conn: &Connection,
    path: &Path,
    rows: &[(i64, bool, String)],
) -> Result<(), StoreError> {
    let mut st = conn
        .prepare_cached(
            "INSERT OR REPLACE INTO head_labels(content_hash, source, positive, grp, text)
             SELECT content_hash, 'weak', ?2, ?3, NULL FROM records WHERE seq = ?1",
        )
        .ctx(path)?;
    for (seq, positive, group) in rows {
        st.execute(params![seq, *positive as i64, group])
            .ctx(path)?;
    }
    Ok(())
}

/// Every stored feature vector of `spec`, by content hash.
pub fn load_features(
    conn: &Connection,
    path: &Path,
    spec: &str,
) -> Result<HashMap<[u8; 32], StoredFeatures>, StoreError> {
    let mut st = conn
        .prepare("SELECT content_hash, p_yes, vec FROM features WHERE spec = ?1")
        .ctx(path)?;
    let rows = st
        .query_map([spec], |r| {
            let h: Vec<u8> = r.get(0)?;
            let mut content_hash = [0u8; 32];
            if h.len() == 32 {
                content_hash.copy_from_slice(&h);
            }
            Ok(StoredFeatures {
                content_hash,
                p_yes: r.get::<_, Option<f64>>(1)?.map(|p| p as f32),
                vec: decode_vec(&r.get::<_, Vec<u8>>(2)?),
            })
        })
        .ctx(path)?;
    let mut out = HashMap::new();
    for f in rows {
        let f = f.ctx(path)?;
        out.insert(f.content_hash, f);
    }
    Ok(out)
}

/// Feature specs present in the store, with counts.
pub fn feature_specs(conn: &Connection, path: &Path) -> Result<Vec<(String, u64)>, StoreError> {
    let mut st = conn
        .prepare("SELECT spec, COUNT(*) FROM features GROUP BY spec ORDER BY spec")
        .ctx(path)?;
    let v = st
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
        .ctx(path)?
        .collect::<Result<Vec<_>, _>>()
        .ctx(path)?;
    Ok(v)
}

/// A label the head learns from that is not a curator's (seed file, weak label).
#[derive(Debug, Clone, PartialEq)]
pub struct HeadLabel {
    pub content_hash: [u8; 32],
    pub source: LabelSource,
    pub positive: bool,
    pub group: String,
    pub text: Option<String>,
}

pub fn put_head_labels(
    conn: &Connection,
    path: &Path,
    labels: &[HeadLabel],
) -> Result<(), StoreError> {
    let mut st = conn
        .prepare_cached(
            "INSERT OR REPLACE INTO head_labels(content_hash, source, positive, grp, text)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .ctx(path)?;
    for l in labels {
        st.execute(params![
            &l.content_hash[..],
            l.source.as_str(),
            l.positive as i64,
            l.group,
            l.text
        ])
        .ctx(path)?;
    }
    Ok(())
}

pub fn head_labels(conn: &Connection, path: &Path) -> Result<Vec<HeadLabel>, StoreError> {
    let mut st = conn
        .prepare("SELECT content_hash, source, positive, grp, text FROM head_labels ORDER BY rowid")
        .ctx(path)?;
    let v = st
        .query_map([], |r| {
            let h: Vec<u8> = r.get(0)?;
            let mut content_hash = [0u8; 32];
            if h.len() == 32 {
                content_hash.copy_from_slice(&h);
            }
            let source: String = r.get(1)?;
            Ok(HeadLabel {
                content_hash,
                source: match source.as_str() {
                    "seed" => LabelSource::Seed,
                    "curator" => LabelSource::Curator,
                    _ => LabelSource::Weak,
                },
                positive: r.get::<_, i64>(2)? != 0,
                group: r.get(3)?,
                text: r.get(4)?,
            })
        })
        .ctx(path)?
        .collect::<Result<Vec<_>, _>>()
        .ctx(path)?;
    Ok(v)
}

/// Flips of one retrain, each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Flips {
    pub to_kept: u64,
    pub to_removed: u64,
}

/// Stores a trained head; it becomes the active one (the newest).
pub fn put_head(
    conn: &Connection,
    path: &Path,
    head: &Head,
    flips: Flips,
    reason: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR REPLACE INTO heads(version, spec, head, trained_at, cv_auc, examples, to_kept,
            to_removed, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            head.version,
            head.spec.key(),
            head.to_json(),
            head.metrics.trained_at as i64,
            head.metrics.cv_auc,
            head.metrics.examples as i64,
            flips.to_kept as i64,
            flips.to_removed as i64,
            reason
        ],
    )
    .ctx(path)?;
    super::set_meta_value(conn, "head_active", &head.version).ctx(path)
}

/// Turns the head off (`None`) or back on (a stored version).
pub fn set_active(conn: &Connection, path: &Path, version: Option<&str>) -> Result<(), StoreError> {
    super::set_meta_value(conn, "head_active", version.unwrap_or("")).ctx(path)
}

/// A stored head and its history line.
#[derive(Debug, Clone)]
pub struct HeadEntry {
    pub head: Head,
    pub flips: Flips,
    pub reason: String,
}

pub fn heads(conn: &Connection, path: &Path) -> Result<Vec<HeadEntry>, StoreError> {
    let mut st = conn
        .prepare("SELECT head, to_kept, to_removed, reason, version FROM heads ORDER BY trained_at, rowid")
        .ctx(path)?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .ctx(path)?
        .collect::<Result<Vec<_>, _>>()
        .ctx(path)?;
    rows.into_iter()
        .map(|(json, k, r, reason, version)| {
            let head = Head::from_json(&json, &format!("{} head {version}", path.display()))
                .map_err(|e| StoreError::Invalid {
                    path: path.display().to_string(),
                    what: e.to_string(),
                })?;
            Ok(HeadEntry {
                head,
                flips: Flips {
                    to_kept: k as u64,
                    to_removed: r as u64,
                },
                reason,
            })
        })
        .collect()
}

/// The head in force, if any (none before the first training, or after `set_active(None)`).
pub fn active_head(conn: &Connection, path: &Path) -> Result<Option<Head>, StoreError> {
    let v = super::meta_value(conn, "head_active").ctx(path)?;
    let Some(v) = v.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    Ok(heads(conn, path)?
        .into_iter()
        .find(|e| e.head.version == v)
        .map(|e| e.head))
}

/// Writes P(head) (and the head version that gave it) for records.
pub fn set_p_head(
    conn: &Connection,
    path: &Path,
    version: Option<&str>,
    values: &[(i64, Option<f32>)],
) -> Result<(), StoreError> {
    let mut st = conn
        .prepare_cached("UPDATE records SET p_head = ?2, head = ?3 WHERE seq = ?1")
        .ctx(path)?;
    for (seq, p) in values {
        st.execute(params![seq, p.map(|p| p as f64), p.and(version)])
            .ctx(path)?;
    }
    Ok(())
}

/// Records the head decides or learns from: seq, content hash, P(yes), tier, label, source kind.
#[derive(Debug, Clone)]
pub struct HeadRecord {
    pub seq: i64,
    pub content_hash: [u8; 32],
    pub p_yes: Option<f32>,
    pub p_head: Option<f32>,
    pub tier: String,
    pub label: Option<String>,
    pub source: String,
    pub file_id: i64,
    pub score: f32,
    pub text_len: usize,
    pub scored: bool,
    pub verdict: String,
}

pub fn head_records(conn: &Connection, path: &Path) -> Result<Vec<HeadRecord>, StoreError> {
    let mut st = conn
        .prepare(
            "SELECT seq, content_hash, p_yes, p_head, tier, label, source, file_id, score, text_len,
                scored, verdict FROM records ORDER BY seq",
        )
        .ctx(path)?;
    let v = st
        .query_map([], |r| {
            let h: Vec<u8> = r.get(1)?;
            let mut content_hash = [0u8; 32];
            if h.len() == 32 {
                content_hash.copy_from_slice(&h);
            }
            Ok(HeadRecord {
                seq: r.get(0)?,
                content_hash,
                p_yes: r.get::<_, Option<f64>>(2)?.map(|p| p as f32),
                p_head: r.get::<_, Option<f64>>(3)?.map(|p| p as f32),
                tier: r.get(4)?,
                label: r.get(5)?,
                source: r.get(6)?,
                file_id: r.get(7)?,
                score: r.get::<_, f64>(8)? as f32,
                text_len: r.get::<_, i64>(9)? as usize,
                scored: r.get::<_, i64>(10)? != 0,
                verdict: r.get(11)?,
            })
        })
        .ctx(path)?
        .collect::<Result<Vec<_>, _>>()
        .ctx(path)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_round_trips_within_half_precision() {
        for x in [0.0f32, 1.0, -2.5, 0.1, 65504.0, 1e-5, -3.25, 1234.5] {
            let y = f16_to_f32(f16_bits(x));
            assert!((x - y).abs() <= x.abs() * 1e-3 + 1e-7, "{x} -> {y}");
        }
        assert_eq!(f16_bits(1.0), 0x3c00);
        assert_eq!(f16_bits(-2.0), 0xc000);
        assert!(f16_to_f32(f16_bits(1e6)).is_infinite());
        let v = vec![0.5f32, -1.25, 3.0];
        assert_eq!(decode_vec(&encode_vec(&v)), v);
    }
}
