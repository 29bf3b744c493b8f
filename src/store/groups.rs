//! Duplicate groups in the run store: each record's MinHash signature, the curator's marks
//! (`split`: not a duplicate; `rep`: chosen representative), the dedup settings in force, and
//! the membership the engine last computed (a view for `scan --groups`-style readers; the
//! grouping itself is always recomputed from signatures, ids and hashes by [`grouping`], so it
//! is a pure function of stored inputs). Created by [`ensure`], beside the main schema.

use super::{SqlContext, StoreError};
use crate::dedup::group::{Grouper, Via};
use crate::dedup::minhash::{self, Signature};
use crate::dedup::Settings;
use crate::record::SourceKind;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS dedup_sigs (seq INTEGER PRIMARY KEY, sig BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS dedup_marks (
    seq INTEGER PRIMARY KEY,
    mark TEXT NOT NULL,
    time INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dedup_members (
    seq INTEGER PRIMARY KEY,
    rep_seq INTEGER NOT NULL,
    via TEXT NOT NULL,
    similarity REAL
);
CREATE INDEX IF NOT EXISTS dedup_members_rep ON dedup_members(rep_seq);
";

/// The meta key holding [`DedupConfig`].
const META_KEY: &str = "dedup";

pub fn ensure(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.execute_batch(SCHEMA).ctx(path)
}

fn has_tables(conn: &Connection) -> bool {
    conn.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dedup_sigs'")
        .and_then(|mut st| st.exists([]))
        .unwrap_or(false)
}

/// The representative (seq, id) of a stored copy in a duplicate group, as the engine last wrote
/// the membership; `None` for a record that stands for itself or a store without groups.
pub fn stored_rep(
    conn: &Connection,
    path: &Path,
    seq: i64,
) -> Result<Option<(i64, String)>, StoreError> {
    if !has_tables(conn) {
        return Ok(None);
    }
    conn.query_row(
        "SELECT m.rep_seq, r.id FROM dedup_members m JOIN records r ON r.seq = m.rep_seq
         WHERE m.seq = ?1 AND m.rep_seq != m.seq",
        [seq],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .ctx(path)
}

/// Grouping on or off, and its settings, as the run last used them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DedupConfig {
    pub enabled: bool,
    pub settings: Settings,
}

/// A curator's mark on a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    /// Not a duplicate: stays out of every group.
    Split,
    /// Its group's representative.
    Rep,
}

impl Mark {
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Split => "split",
            Mark::Rep => "rep",
        }
    }
    pub fn parse(s: &str) -> Option<Mark> {
        match s {
            "split" => Some(Mark::Split),
            "rep" => Some(Mark::Rep),
            _ => None,
        }
    }
}

pub fn config(conn: &Connection, path: &Path) -> Result<Option<DedupConfig>, StoreError> {
    let s = super::meta_value(conn, META_KEY).ctx(path)?;
    match s {
        None => Ok(None),
        Some(s) => serde_json::from_str(&s)
            .map(Some)
            .map_err(|e| StoreError::Invalid {
                path: path.display().to_string(),
                what: format!("bad stored dedup settings: {e}"),
            }),
    }
}

pub fn set_config(conn: &Connection, path: &Path, c: &DedupConfig) -> Result<(), StoreError> {
    c.settings.validate().map_err(|what| StoreError::Invalid {
        path: path.display().to_string(),
        what,
    })?;
    let value = serde_json::to_string(c).expect("settings serialise");
    super::set_meta_value(conn, META_KEY, &value).ctx(path)
}

pub fn insert_sig(
    conn: &Connection,
    path: &Path,
    seq: i64,
    sig: &Signature,
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT OR IGNORE INTO dedup_sigs(seq, sig) VALUES (?1, ?2)")
        .ctx(path)?
        .execute(params![seq, minhash::to_bytes(sig)])
        .ctx(path)?;
    Ok(())
}

/// Set (or with `None` clear) a record's mark, committed at once by the caller.
pub fn set_mark(
    conn: &Connection,
    path: &Path,
    seq: i64,
    mark: Option<Mark>,
) -> Result<(), StoreError> {
    match mark {
        Some(m) => conn
            .execute(
                "INSERT INTO dedup_marks(seq, mark, time) VALUES (?1, ?2, ?3)
                 ON CONFLICT(seq) DO UPDATE SET mark = excluded.mark, time = excluded.time",
                params![seq, m.as_str(), super::now_secs() as i64],
            )
            .ctx(path)?,
        None => conn
            .execute("DELETE FROM dedup_marks WHERE seq = ?1", [seq])
            .ctx(path)?,
    };
    Ok(())
}

pub fn marks(conn: &Connection, path: &Path) -> Result<HashMap<i64, Mark>, StoreError> {
    if !has_tables(conn) {
        return Ok(HashMap::new());
    }
    let mut st = conn
        .prepare("SELECT seq, mark FROM dedup_marks")
        .ctx(path)?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .ctx(path)?;
    let mut m = HashMap::new();
    for row in rows {
        let (seq, mark) = row.ctx(path)?;
        if let Some(mk) = Mark::parse(&mark) {
            m.insert(seq, mk);
        }
    }
    Ok(m)
}

/// One membership row: the record, its representative, how it joined, its similarity to the
/// representative (none when linked by id only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub seq: i64,
    pub rep_seq: i64,
    pub via: String,
    pub similarity: Option<f32>,
}

pub fn via_str(v: Via) -> &'static str {
    match v {
        Via::Alone => "first",
        Via::Id => "id",
        Via::Text => "text",
        Via::Near => "near",
    }
}

/// Replace membership rows (records of groups of two or more; a record back on its own loses
/// its row).
pub fn write_members(
    conn: &Connection,
    path: &Path,
    rows: &[Member],
    alone: &[i64],
) -> Result<(), StoreError> {
    let mut up = conn
        .prepare_cached(
            "INSERT INTO dedup_members(seq, rep_seq, via, similarity) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(seq) DO UPDATE SET rep_seq = excluded.rep_seq, via = excluded.via,
                similarity = excluded.similarity",
        )
        .ctx(path)?;
    for m in rows {
        up.execute(params![
            m.seq,
            m.rep_seq,
            m.via,
            m.similarity.map(|s| s as f64)
        ])
        .ctx(path)?;
    }
    let mut del = conn
        .prepare_cached("DELETE FROM dedup_members WHERE seq = ?1")
        .ctx(path)?;
    for s in alone {
        del.execute([s]).ctx(path)?;
    }
    Ok(())
}

/// The grouping of every stored record, recomputed from stored inputs: positions are records
/// in seq order.
pub struct Grouping {
    pub seqs: Vec<i64>,
    pub ids: Vec<String>,
    pub sources: Vec<SourceKind>,
    /// (file id, index in the file) of each record.
    pub places: Vec<(i64, u64)>,
    pub grouper: Grouper,
    /// Records whose signature was computed from the stored text (none was stored).
    pub sigs_computed: u64,
}

impl Grouping {
    pub fn pos(&self, seq: i64) -> Option<u32> {
        self.seqs.binary_search(&seq).ok().map(|p| p as u32)
    }
    pub fn rep_seq(&self, seq: i64) -> Option<i64> {
        let p = self.pos(seq)?;
        Some(self.seqs[self.grouper.rep_of(p) as usize])
    }
    /// Membership rows of every record in a group of two or more.
    pub fn members(&self) -> Vec<Member> {
        let g = &self.grouper;
        (0..self.seqs.len() as u32)
            .filter(|&p| g.members(p).len() > 1)
            .map(|p| {
                let rep = g.rep_of(p);
                Member {
                    seq: self.seqs[p as usize],
                    rep_seq: self.seqs[rep as usize],
                    via: via_str(g.via(p)).to_string(),
                    similarity: g.similarity(p, rep),
                }
            })
            .collect()
    }
}

/// Characters of the text the natural-id keys look at (an ATT&CK id on the first line).
pub const TEXT_HEAD: usize = 64;

/// Recompute the grouping of every stored record under `settings`: signatures as stored (a
/// record stored without one, from a run with grouping off, gets it from its stored text),
/// natural ids, content hashes and the curator's marks. No input file is read.
pub fn grouping(
    conn: &Connection,
    path: &Path,
    settings: &Settings,
) -> Result<Grouping, StoreError> {
    let marks = marks(conn, path)?;
    let with_sigs = has_tables(conn);
    let sql = format!(
        "SELECT r.seq, r.id, r.source, substr(r.text, 1, {TEXT_HEAD}), r.content_hash, r.text_len, {},
            r.file_id, r.idx
         FROM records r {} ORDER BY r.seq",
        if with_sigs { "s.sig" } else { "NULL" },
        if with_sigs {
            "LEFT JOIN dedup_sigs s ON s.seq = r.seq"
        } else {
            ""
        }
    );
    let mut st = conn.prepare(&sql).ctx(path)?;
    let mut rows = st.query([]).ctx(path)?;
    let mut g = Grouping {
        seqs: Vec::new(),
        ids: Vec::new(),
        sources: Vec::new(),
        places: Vec::new(),
        grouper: Grouper::new(settings.clone()),
        sigs_computed: 0,
    };
    let mut text_of = conn
        .prepare_cached("SELECT text FROM records WHERE seq = ?1")
        .ctx(path)?;
    while let Some(r) = rows.next().ctx(path)? {
        let seq: i64 = r.get(0).ctx(path)?;
        let id: String = r.get(1).ctx(path)?;
        let source =
            SourceKind::parse(&r.get::<_, String>(2).ctx(path)?).unwrap_or(SourceKind::Json);
        let head: String = r.get(3).ctx(path)?;
        let hash_v: Vec<u8> = r.get(4).ctx(path)?;
        let mut hash = [0u8; 32];
        if hash_v.len() == 32 {
            hash.copy_from_slice(&hash_v);
        }
        let text_len = r.get::<_, i64>(5).ctx(path)? as usize;
        let sig = match r.get::<_, Option<Vec<u8>>>(6).ctx(path)? {
            Some(b) => minhash::from_bytes(&b),
            None => {
                g.sigs_computed += 1;
                let text: String = text_of.query_row([seq], |r| r.get(0)).ctx(path)?;
                minhash::signature(&text)
            }
        };
        let mut item = crate::dedup::item(source, &id, &head, &hash, text_len, sig);
        let file_id: i64 = r.get(7).ctx(path)?;
        let index = r.get::<_, i64>(8).ctx(path)? as u64;
        item.order = crate::dedup::order_key(file_id, index);
        match marks.get(&seq) {
            Some(Mark::Split) => item.split = true,
            Some(Mark::Rep) => item.pinned = true,
            None => {}
        }
        g.grouper.push(&item);
        g.seqs.push(seq);
        g.places.push((file_id, index));
        g.ids.push(id);
        g.sources.push(source);
    }
    Ok(g)
}
