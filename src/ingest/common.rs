//! What every reader needs to build a record: its place in the file, the options, and helpers
//! for ids and errors.

use super::{IngestError, IngestOptions};
use crate::record::{Locator, Record, RecordFlags, SourceKind};
use std::path::PathBuf;
use std::sync::Arc;

/// Where the record being built sits, and the options it is built under.
pub(crate) struct Place<'a> {
    pub file: &'a Arc<PathBuf>,
    pub opts: &'a IngestOptions,
    pub index: u64,
    pub offset: u64,
    pub len: u64,
    pub outer_offset: Option<u64>,
}

impl Place<'_> {
    pub(crate) fn locator(&self) -> Locator {
        Locator {
            file: Arc::clone(self.file),
            index: self.index,
            offset: self.offset,
            len: self.len,
            outer_offset: self.outer_offset,
        }
    }

    /// `file_name#index`, for records without a natural id.
    pub(crate) fn fallback_id(&self) -> String {
        let name = self
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.file.display().to_string());
        format!("{name}#{}", self.index)
    }

    pub(crate) fn syntax(&self, at: u64, what: impl Into<String>) -> IngestError {
        IngestError::Syntax {
            file: self.file.as_ref().clone(),
            place: match self.outer_offset {
                Some(outer) => format!("byte {at} of the string at byte {outer}"),
                None => format!("byte {at}"),
            },
            what: what.into(),
        }
    }

    pub(crate) fn record(&self, parts: RecordParts) -> Record {
        // An empty natural id (`"id": ""`, found by fuzzing) would make the record
        // unaddressable (relabel, show): it gets the `file#index` id like a record without one.
        let id = if parts.id.trim().is_empty() {
            self.fallback_id()
        } else {
            parts.id
        };
        Record {
            id,
            source: parts.source,
            kind: parts.kind,
            locator: self.locator(),
            text: parts.text,
            flags: parts.flags,
            scored: parts.scored,
            label: None,
        }
    }
}

/// The format-specific part of a record.
pub(crate) struct RecordParts {
    pub id: String,
    pub source: SourceKind,
    pub kind: String,
    pub text: String,
    pub flags: RecordFlags,
    pub scored: bool,
}
