//! Fuzz entry points of the readers (see [`crate::fuzzing`]): each takes arbitrary bytes, runs
//! one reader over them in memory and checks what every reader promises: no panic, the summary
//! counts what was emitted, every error names the file, every record points into the file and
//! its text stays under the cap.

use super::common::Place;
use super::json_stream::{Container, JsonScanner};
use super::{FileSummary, IngestError, IngestOptions, MAX_JSON_DEPTH};
use crate::record::Record;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The name records and errors carry in the fuzz targets.
pub const FUZZ_FILE: &str = "fuzz-input";

/// Options under fuzzing: the defaults with small caps, so that the size limits are reached.
pub fn fuzz_options() -> IngestOptions {
    IngestOptions {
        max_record_bytes: 64 * 1024,
        max_text_bytes: 4 * 1024,
        ..IngestOptions::default()
    }
}

/// What one reader emitted, already checked against the promises above.
#[derive(Debug, Default)]
pub struct Emitted {
    pub records: u64,
    pub errors: u64,
}

struct Check<'a> {
    file: &'a Path,
    opts: &'a IngestOptions,
    got: Emitted,
}

impl Check<'_> {
    fn see(&mut self, r: Result<Record, IngestError>) -> ControlFlow<()> {
        match r {
            Ok(rec) => {
                self.got.records += 1;
                assert_eq!(rec.locator.file.as_path(), self.file, "record file");
                assert!(
                    rec.text.len() <= self.opts.max_text_bytes,
                    "text of {} bytes over the cap {}",
                    rec.text.len(),
                    self.opts.max_text_bytes
                );
                assert!(!rec.id.is_empty(), "record without an id");
            }
            Err(e) => {
                self.got.errors += 1;
                assert_eq!(e.file(), self.file, "error names the file: {e}");
                let _ = e.to_string();
            }
        }
        ControlFlow::Continue(())
    }

    fn finish(self, sum: &FileSummary) -> Emitted {
        assert_eq!(sum.records, self.got.records, "summary records");
        assert_eq!(sum.errors, self.got.errors, "summary errors");
        self.got
    }
}

/// Format detection and the whole reader behind it (`read_file` on bytes).
pub fn detect_and_read(data: &[u8]) -> Emitted {
    let opts = fuzz_options();
    let file = Path::new(FUZZ_FILE);
    let mut check = Check {
        file,
        opts: &opts,
        got: Emitted::default(),
    };
    let sum = super::read_bytes(file, data.to_vec(), &opts, &mut |r| check.see(r));
    check.finish(&sum)
}

/// Gzip: the input behind a gzip magic (as-is when it has one), then detection and reading.
pub fn gzip(data: &[u8]) -> Emitted {
    if data.starts_with(&[0x1f, 0x8b]) {
        detect_and_read(data)
    } else {
        let mut v = vec![0x1f, 0x8b];
        v.extend_from_slice(data);
        detect_and_read(&v)
    }
}

/// The JSON stream reader on one document (array, wrapper object or single record), whatever
/// detection would say.
pub fn json_document(data: &[u8]) -> Emitted {
    json(data, false)
}

/// The JSON Lines reader.
pub fn json_lines(data: &[u8]) -> Emitted {
    json(data, true)
}

fn json(data: &[u8], lines: bool) -> Emitted {
    checked_read(&mut |file, opts, sum, emit| {
        let reader: Box<dyn std::io::Read> = Box::new(std::io::Cursor::new(data.to_vec()));
        super::read_json(reader, lines, file, opts, sum, emit);
    })
}

/// The CAPEC/CWE XML reader.
pub fn xml(data: &[u8]) -> Emitted {
    checked_read(&mut |file, opts, sum, emit| {
        let _ = super::read_xml(data, file, None, opts, sum, emit);
    })
}

type Emit<'a> = dyn FnMut(Result<Record, IngestError>) -> ControlFlow<()> + 'a;
/// One reader run: the file, the options, the summary to fill, where records go.
type ReadWith<'r> = dyn FnMut(&Arc<PathBuf>, &IngestOptions, &mut FileSummary, &mut Emit<'_>) + 'r;

/// Runs one reader on the fuzz file under the fuzz options, checking what it emits.
fn checked_read(read: &mut ReadWith<'_>) -> Emitted {
    let opts = fuzz_options();
    let path = PathBuf::from(FUZZ_FILE);
    let file = Arc::new(path.clone());
    let mut check = Check {
        file: &path,
        opts: &opts,
        got: Emitted::default(),
    };
    let mut sum = FileSummary::default();
    read(&file, &opts, &mut sum, &mut |r| check.see(r));
    check.finish(&sum)
}

/// The text extraction of each feed on one record: the first byte picks the container the
/// record came from (which picks the NVD 2.0/1.1, STIX or classifying path) and whether a
/// label field is asked for; the rest is the record's bytes.
pub fn record_text(data: &[u8]) -> Emitted {
    let Some((&sel, bytes)) = data.split_first() else {
        return Emitted::default();
    };
    let container = match sel % 6 {
        0 => Container::Wrapper("vulnerabilities"),
        1 => Container::Wrapper("CVE_Items"),
        2 => Container::Wrapper("objects"),
        3 => Container::RootArray,
        4 => Container::Line,
        _ => Container::Single,
    };
    let mut opts = fuzz_options();
    if sel & 0x80 != 0 {
        opts.label_field = Some("label".into());
    }
    let path = PathBuf::from(FUZZ_FILE);
    let file = Arc::new(path.clone());
    let place = Place {
        file: &file,
        opts: &opts,
        index: 0,
        offset: 0,
        len: bytes.len() as u64,
        outer_offset: None,
    };
    let mut check = Check {
        file: &path,
        opts: &opts,
        got: Emitted::default(),
    };
    let _ = check.see(super::json_records::json_record(&place, container, bytes));
    // The scanner on the same bytes as a document: the record it yields (if any) is the same.
    let mut scanner = JsonScanner::new(bytes, opts.max_record_bytes, MAX_JSON_DEPTH);
    let _ = scanner.run_document(&mut |_| ControlFlow::Continue(()));
    check.got
}
