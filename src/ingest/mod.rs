//! Ingest: discover input files, detect each one's format from its content, and stream its
//! records one by one. Never holds a whole file in memory.
//!
//! CONTRACT (used by rules, engine, scan/eval): `discover`, `read_file`, `read_original`,
//! `IngestOptions`, `IngestError`, `FileSummary`. Additions are fine; changes need care.

use crate::record::{Locator, Record, SourceKind};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// What the readers need to know beyond the file itself.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// STIX object types whose records are scored (`Record::scored`); others are emitted with
    /// `scored = false`. Default: the types a curator keeps (attack-pattern, malware, tool,
    /// intrusion-set, campaign, course-of-action, x-mitre-tactic, vulnerability, …).
    pub stix_types: Vec<String>,
    /// Copy this top-level field of JSON records into `Record::label` (for `eval`).
    pub label_field: Option<String>,
    /// A single record larger than this is reported as an error and skipped.
    pub max_record_bytes: u64,
    /// Text longer than this (bytes) is truncated at a char boundary.
    pub max_text_bytes: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            stix_types: default_stix_types(),
            label_field: None,
            max_record_bytes: 16 * 1024 * 1024,
            max_text_bytes: 64 * 1024,
        }
    }
}

pub fn default_stix_types() -> Vec<String> {
    [
        "attack-pattern",
        "malware",
        "tool",
        "intrusion-set",
        "campaign",
        "course-of-action",
        "x-mitre-tactic",
        "vulnerability",
        "threat-actor",
        "indicator",
        "infrastructure",
        "report",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

/// A problem with one input, always naming the file and the place.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {what} at {place}")]
    Syntax {
        file: PathBuf,
        /// "line 3, column 17" or "byte 12345".
        place: String,
        what: String,
    },
    #[error("{file}: unsupported input: {what}")]
    Unsupported { file: PathBuf, what: String },
}

impl IngestError {
    pub fn file(&self) -> &Path {
        match self {
            IngestError::Io { file, .. }
            | IngestError::Syntax { file, .. }
            | IngestError::Unsupported { file, .. } => file,
        }
    }
}

/// What reading one file produced.
#[derive(Debug, Clone, Default)]
pub struct FileSummary {
    pub format: Option<SourceKind>,
    pub records: u64,
    pub errors: u64,
    /// Bytes of (decompressed) input consumed.
    pub bytes: u64,
}

/// Expand inputs: files are kept, folders are walked recursively (sorted, hidden entries
/// skipped) for files that look like feeds (.json, .jsonl, .ndjson, .xml, and .gz of those).
pub fn discover(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, IngestError> {
    let _ = inputs;
    Err(IngestError::Unsupported {
        file: PathBuf::new(),
        what: "ingest not implemented yet".into(),
    })
}

/// Stream every record of one file into `emit`. Per-record problems are emitted as `Err` and
/// reading goes on; a problem that stops the file (truncated JSON) is emitted too and ends the
/// file. `emit` returning `Break` stops reading early. Returns the summary for the file.
pub fn read_file(
    path: &Path,
    opts: &IngestOptions,
    emit: &mut dyn FnMut(Result<Record, IngestError>) -> ControlFlow<()>,
) -> FileSummary {
    let _ = (opts, &emit);
    let _ = emit(Err(IngestError::Unsupported {
        file: path.to_path_buf(),
        what: "ingest not implemented yet".into(),
    }));
    FileSummary::default()
}

/// Read back the original bytes of a record from its locator.
pub fn read_original(locator: &Locator) -> Result<Vec<u8>, IngestError> {
    Err(IngestError::Unsupported {
        file: locator.file.as_ref().clone(),
        what: "ingest not implemented yet".into(),
    })
}
