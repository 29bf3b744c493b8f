//! One engine per store. A run holds an exclusive `flock` on a sidecar file `STORE.lock` for as
//! long as its engine lives; the kernel drops the lock when the process dies, however it dies.
//! So a second `run` (or TUI) on the same store refuses at once instead of interleaving, and a
//! store whose state says "running" while nobody holds its lock was left by a killed process:
//! it is reported as interrupted and resumes normally.
//!
//! The lock file is left in place on exit: unlinking it would let a waiter lock an inode that
//! a third process can no longer see. Readers (`export`, `relabel`, `runs`) never take it.

use super::StoreError;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Held while the run is open; dropping it (or the process dying) releases the store.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    path: PathBuf,
}

/// The sidecar lock file of a store.
pub fn lock_path(store: &Path) -> PathBuf {
    let mut s = store.as_os_str().to_os_string();
    s.push(".lock");
    PathBuf::from(s)
}

impl StoreLock {
    /// Take the store's lock, or say which process holds it.
    pub fn acquire(store: &Path) -> Result<StoreLock, StoreError> {
        let path = lock_path(store);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::Invalid {
                path: store.display().to_string(),
                what: format!("cannot create the store here ({}: {e})", path.display()),
            })?;
        if !try_lock(&file) {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            return Err(StoreError::Invalid {
                path: store.display().to_string(),
                what: format!(
                    "in use by another cyberfilter process{}; wait for it to finish or stop it \
                     (a store takes one run at a time)",
                    if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {holder})")
                    }
                ),
            });
        }
        // Our pid, for the message above; a failure here does not weaken the lock.
        let _ = file.set_len(0);
        let _ = std::io::Write::write_all(&mut &file, std::process::id().to_string().as_bytes());
        Ok(StoreLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether a live process holds the store's lock now (a store without a lock file: no).
pub fn is_held(store: &Path) -> bool {
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(lock_path(store))
    else {
        return false;
    };
    // Taking it ourselves for an instant is the only portable test; it is released when
    // `file` closes at the end of this function.
    !try_lock(&file)
}

#[cfg(unix)]
fn try_lock(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_the_lock_frees_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("r.cfrun");
        assert!(!is_held(&store), "no lock file yet");
        let lock = StoreLock::acquire(&store).unwrap();
        assert!(is_held(&store));
        let err = StoreLock::acquire(&store).unwrap_err().to_string();
        assert!(
            err.contains("in use by another cyberfilter process"),
            "{err}"
        );
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(lock);
        assert!(!is_held(&store));
        let _again = StoreLock::acquire(&store).unwrap();
    }
}
