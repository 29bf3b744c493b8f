//! The headless subcommands of `cyberfilter`. The binary stays thin: it parses arguments and
//! calls into these modules, which return the process exit code.
//!
//! Exit codes (documented in the README and `cyberfilter --help`):
//! - 0: done
//! - 1: a runtime failure (the store cannot be written, a record id not found, …)
//! - 2: usage error (bad arguments; clap's own code)
//! - 3: bad configuration (unreadable rule file, missing inputs, a store made for other
//!   inputs or rules)
//! - 4: the verifier backend is unreachable or cannot be loaded
//! - 130: interrupted (Ctrl-C / SIGTERM) after a clean stop: the store is consistent and a
//!   `run` over the same store resumes

pub mod export;
pub mod relabel;
pub mod run;
pub mod runs;

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILURE: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_CONFIG: i32 = 3;
pub const EXIT_VERIFIER: i32 = 4;
pub const EXIT_INTERRUPTED: i32 = 130;

use std::path::{Path, PathBuf};

/// A store given by path, or by file name (with or without extension) in the runs folder.
pub fn resolve_store(s: &Path) -> PathBuf {
    if s.exists() {
        return s.to_path_buf();
    }
    let dir = crate::store::paths::runs_dir();
    let direct = dir.join(s);
    if direct.exists() {
        return direct;
    }
    let with_ext = dir.join(format!(
        "{}.{}",
        s.display(),
        crate::store::paths::STORE_EXT
    ));
    if with_ext.exists() {
        return with_ext;
    }
    s.to_path_buf()
}
