//! The LLM answer cache shared by every run in a data dir (`llm-cache.sqlite`), so a new run
//! over texts an earlier run already verified never asks the model again. Each run store also
//! keeps its own answers (`llm_cache` table), which is what a resume reads.

use super::{SqlContext, StoreError};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

/// The answer table, the same in the shared cache and in every run store.
pub(crate) const ANSWERS_TABLE: &str = "CREATE TABLE IF NOT EXISTS llm_cache (
    content_hash BLOB NOT NULL,
    model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    p_yes REAL NOT NULL,
    PRIMARY KEY (content_hash, model, prompt_version)
);";

/// One cached answer (the one lookup both the shared cache and a run store use).
pub(crate) fn lookup(
    conn: &Connection,
    path: &Path,
    hash: &[u8; 32],
    model: &str,
    prompt_version: &str,
) -> Result<Option<f32>, StoreError> {
    conn.prepare_cached(
        "SELECT p_yes FROM llm_cache
         WHERE content_hash = ?1 AND model = ?2 AND prompt_version = ?3",
    )
    .ctx(path)?
    .query_row(params![&hash[..], model, prompt_version], |r| {
        r.get::<_, f64>(0)
    })
    .optional()
    .ctx(path)
    .map(|p| p.map(|p| p as f32))
}

pub struct SharedCache {
    conn: Connection,
    path: PathBuf,
}

impl SharedCache {
    pub fn open(path: &Path) -> Result<SharedCache, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path).ctx(path)?;
        conn.pragma_update(None, "journal_mode", "WAL").ctx(path)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .ctx(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .ctx(path)?;
        conn.execute_batch(ANSWERS_TABLE).ctx(path)?;
        // Pooled features for the verdict head, like the run stores keep them.
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS features (
                content_hash BLOB NOT NULL,
                spec TEXT NOT NULL,
                p_yes REAL,
                vec BLOB NOT NULL,
                PRIMARY KEY (content_hash, spec)
            );",
        )
        .ctx(path)?;
        Ok(SharedCache {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Stored features of a text for `spec`.
    pub fn get_features(
        &self,
        hash: &[u8; 32],
        spec: &str,
    ) -> Result<Option<Vec<f32>>, StoreError> {
        Ok(super::features::get_features(&self.conn, &self.path, spec, hash)?.map(|f| f.vec))
    }

    pub fn put_features(
        &mut self,
        spec: &str,
        items: &[super::features::StoredFeatures],
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction().ctx(&self.path)?;
        super::features::put_features(&tx, &self.path, spec, items)?;
        tx.commit().ctx(&self.path)
    }

    pub fn get(
        &self,
        hash: &[u8; 32],
        model: &str,
        prompt: &str,
    ) -> Result<Option<f32>, StoreError> {
        lookup(&self.conn, &self.path, hash, model, prompt)
    }

    /// Store a batch of answers in one transaction.
    pub fn put_all(
        &mut self,
        answers: &[([u8; 32], f32)],
        model: &str,
        prompt: &str,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self.conn.transaction().ctx(&path)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO llm_cache(content_hash, model, prompt_version, p_yes)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .ctx(&path)?;
            for (h, p) in answers {
                st.execute(params![&h[..], model, prompt, *p as f64])
                    .ctx(&path)?;
            }
        }
        tx.commit().ctx(&path)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn answers_round_trip_per_model_and_prompt() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = super::SharedCache::open(&dir.path().join("c.sqlite")).unwrap();
        c.put_all(&[([7; 32], 0.25)], "m", "1").unwrap();
        assert_eq!(c.get(&[7; 32], "m", "1").unwrap(), Some(0.25));
        assert_eq!(c.get(&[7; 32], "m", "2").unwrap(), None);
        assert_eq!(c.get(&[8; 32], "m", "1").unwrap(), None);
    }
}
