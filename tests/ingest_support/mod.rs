//! Helpers shared by the ingest integration tests.
#![allow(dead_code)]

use cyberfilter::ingest::{read_file, FileSummary, IngestError, IngestOptions};
use cyberfilter::Record;
use std::ops::ControlFlow;
use std::path::Path;

pub struct Read {
    pub records: Vec<Record>,
    pub errors: Vec<IngestError>,
    pub summary: FileSummary,
}

pub fn read_with(path: &Path, opts: &IngestOptions) -> Read {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    let summary = read_file(path, opts, &mut |r| {
        match r {
            Ok(rec) => records.push(rec),
            Err(e) => errors.push(e),
        }
        ControlFlow::Continue(())
    });
    assert_eq!(
        summary.records as usize,
        records.len(),
        "summary counts records"
    );
    assert_eq!(
        summary.errors as usize,
        errors.len(),
        "summary counts errors"
    );
    Read {
        records,
        errors,
        summary,
    }
}

pub fn read(path: &Path) -> Read {
    read_with(path, &IngestOptions::default())
}

pub fn find<'a>(records: &'a [Record], id: &str) -> &'a Record {
    records
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("record {id} not found"))
}

pub fn count(records: &[Record], pred: impl Fn(&Record) -> bool) -> usize {
    records.iter().filter(|r| pred(r)).count()
}
