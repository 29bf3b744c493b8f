//! The headless command line: one module per subcommand, each with its clap `Args` and a `run`
//! that returns the process exit code. `src/bin/cyberfilter.rs` only dispatches.
//!
//! Exit codes (shared by every subcommand):
//! - 0: success.
//! - 1: the thing checked is wrong (`rules check` found errors).
//! - 2: usage error, or a rule file that does not compile.
//! - 65 (EX_DATAERR): some input had errors; they went to stderr with file and place, and every
//!   readable record was still processed.
//! - 66 (EX_NOINPUT): no input file could be found.
//! - 74 (EX_IOERR): writing the output failed.
//!
//! `run`, `export`, `runs` and `relabel` add:
//! - 1: a runtime failure (the store cannot be written, a record id not found).
//! - 2: a rule file that does not compile (the same report as `rules check`, one error a line).
//! - 3: bad configuration (a store made for other inputs or rules, a changed input file,
//!   thresholds that are not finite or have low above high).
//! - 4: the verifier backend is unreachable or cannot be loaded.
//! - 65: `run` read inputs with errors (each went to stderr with file and place; every
//!   readable record is in the store); 66: `run` found no input or no feed file in it.
//! - 75: the store is in use by another run (one run per store at a time).
//! - 130: interrupted (Ctrl-C / SIGTERM) after a clean stop: the store is consistent and a
//!   `run` over the same store resumes.

pub mod bench;
pub mod bench_dedup;
pub mod bench_head;
pub mod eval;
pub mod export;
pub mod gen_nvd;
pub mod head;
pub mod model;
pub mod pipeline;
pub mod relabel;
pub mod rules_check;
pub mod rules_suggest;
pub mod run;
pub mod runs;
pub mod scan;
pub mod show;

use crate::rules::{RuleSet, Thresholds};
use std::path::{Path, PathBuf};

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED_CHECK: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_DATAERR: i32 = 65;
pub const EXIT_NOINPUT: i32 = 66;
pub const EXIT_IOERR: i32 = 74;
pub const EXIT_FAILURE: i32 = 1;
pub const EXIT_CONFIG: i32 = 3;
pub const EXIT_VERIFIER: i32 = 4;
pub const EXIT_INTERRUPTED: i32 = 130;
/// EX_TEMPFAIL: the store is in use by another run.
pub const EXIT_IN_USE: i32 = 75;

/// Write shell completions (`SHELL`) or man pages (`man`) for a binary's clap command.
pub fn write_docs(cmd: clap::Command, what: &DocsArgs) -> i32 {
    let name = cmd.get_name().to_string();
    match what {
        DocsArgs::Completions { shell } => {
            let mut cmd = cmd;
            clap_complete::generate(*shell, &mut cmd, name, &mut std::io::stdout());
            EXIT_OK
        }
        DocsArgs::Man { out } => {
            if let Err(e) = std::fs::create_dir_all(out) {
                eprintln!("{name}: {}: {e}", out.display());
                return EXIT_IOERR;
            }
            match clap_mangen::generate_to(cmd, out) {
                Ok(()) => {
                    eprintln!("{name}: man pages written to {}", out.display());
                    EXIT_OK
                }
                Err(e) => {
                    eprintln!("{name}: writing man pages to {}: {e}", out.display());
                    EXIT_IOERR
                }
            }
        }
    }
}

/// `completions SHELL` and `man --out DIR`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum DocsArgs {
    /// Print shell completions (bash, zsh, fish, elvish, powershell) on stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages (one per subcommand) into a folder.
    Man {
        #[arg(long, default_value = "man")]
        out: PathBuf,
    },
}

/// Rule-set and threshold flags shared by `scan` and `eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct RuleArgs {
    /// Rule file (TOML); the embedded default rules when not given.
    #[arg(long, value_name = "FILE", env = "CYBERFILTER_RULES")]
    pub rules: Option<PathBuf>,
    /// Keep at or above this score (overrides the rule file's [thresholds]).
    #[arg(long, allow_negative_numbers = true)]
    pub high: Option<f32>,
    /// Reject below this score; between low and high is verify.
    #[arg(long, allow_negative_numbers = true)]
    pub low: Option<f32>,
    /// Reject texts shorter than this many characters.
    #[arg(long, value_name = "CHARS")]
    pub min_text_len: Option<usize>,
}

impl RuleArgs {
    /// The compiled rules and the thresholds after flag overrides; a message on failure.
    pub fn load(&self) -> Result<(RuleSet, Thresholds), String> {
        let rules = match &self.rules {
            Some(path) => RuleSet::from_file(path).map_err(|e| {
                let lines: Vec<String> = e.all().iter().map(|e| e.to_string()).collect();
                crate::engine::launch::rule_errors_report(path, &lines)
            })?,
            None => RuleSet::default_rules(),
        };
        let mut t = rules.thresholds();
        if let Some(h) = self.high {
            t.high = h;
        }
        if let Some(l) = self.low {
            t.low = l;
        }
        if let Some(m) = self.min_text_len {
            t.min_text_len = m;
        }
        t.validate()?;
        Ok((rules, t))
    }
}

/// Ingest flags shared by `scan` and `eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct InputArgs {
    /// Input files or folders (folders are walked for feed files).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// STIX object types to score, comma-separated (others are counted and rejected).
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    pub stix_types: Option<Vec<String>>,
    /// Read and score on one thread (default: a reader thread feeds the scorer).
    #[arg(long)]
    pub single_thread: bool,
}

impl InputArgs {
    pub fn ingest_options(&self, label_field: Option<String>) -> crate::ingest::IngestOptions {
        let mut o = crate::ingest::IngestOptions {
            label_field,
            ..Default::default()
        };
        if let Some(types) = &self.stix_types {
            o.stix_types = types.clone();
        }
        o
    }
}

/// Text length in characters, as `Thresholds::min_text_len` counts it.
pub fn text_chars(text: &str) -> usize {
    if text.is_ascii() {
        text.len()
    } else {
        text.chars().count()
    }
}

/// A store given by path, or by file name (with or without extension) in the runs folder.
pub fn resolve_store(s: &Path) -> PathBuf {
    crate::engine::launch::resolve_store_in(&crate::store::paths::runs_dir(), s)
}
