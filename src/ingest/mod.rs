//! Ingest: discover input files, detect each one's format from its content, and stream its
//! records one by one. Never holds a whole file in memory: memory is bounded by one record
//! (`IngestOptions::max_record_bytes`) plus fixed buffers.
//!
//! - `source`: open a file, decompress gzip by its magic bytes, peek at the first bytes.
//! - `detect`: JSON document, JSON Lines, XML, or refused (binary, empty, unknown).
//! - `json_stream`: structural scanner that yields each record's bytes and offset.
//! - `json_records`: record bytes → `Record` (typed fast path by wrapper key, else classify).
//! - `nvd`, `cve5`, `stix`, `generic`: per-format fields and text.
//! - `xml`: CAPEC/CWE catalogues as XML events, DTD entities refused.
//! - `text`: the text builder (line per field, byte cap on a char boundary).
//!
//! CONTRACT (used by rules, engine, scan/eval): `discover`, `read_file`, `read_original`,
//! `IngestOptions`, `IngestError`, `FileSummary`. Additions are fine; changes need care.

mod common;
mod cve5;
mod detect;
#[doc(hidden)]
pub mod fuzz;
mod generic;
mod json_nav;
mod json_records;
mod json_stream;
mod nvd;
mod source;
mod stix;
mod text;
mod xml;

use crate::record::{Locator, Record, SourceKind};
use common::Place;
use json_stream::{Item, JsonScanner, ScanStop};
use std::io::{BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// JSON nested deeper than this is refused (serde_json's own recursion limit is 128 too).
pub const MAX_JSON_DEPTH: u32 = 128;

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
        /// "byte 12345"; "byte 12345 (line 3, column 17)" for the error that stops a file.
        place: String,
        what: String,
    },
    #[error("{file}: unsupported input: {what}")]
    Unsupported { file: PathBuf, what: String },
    /// Bytes that are not UTF-8 inside a record; the record is skipped.
    #[error("{file}: invalid UTF-8 at {place}; expected UTF-8 text")]
    InvalidUtf8 { file: PathBuf, place: String },
    /// A record over `IngestOptions::max_record_bytes`; skipped, the next one is read.
    #[error(
        "{file}: a record of {len} bytes at {place} is over the limit of {limit} bytes; skipped"
    )]
    RecordTooLarge {
        file: PathBuf,
        place: String,
        len: u64,
        limit: u64,
    },
    /// JSON nested deeper than `MAX_JSON_DEPTH`; the record is skipped.
    #[error("{file}: nested deeper than {limit} at {place}; expected at most {limit} levels, record skipped")]
    TooDeep {
        file: PathBuf,
        place: String,
        limit: u32,
    },
    /// An XML DOCTYPE declaring entities or an external DTD: refused, never expanded.
    #[error("{file}: XML DOCTYPE with entity declarations or an external DTD at {place}; entities are never expanded")]
    XmlEntities { file: PathBuf, place: String },
}

impl IngestError {
    pub fn file(&self) -> &Path {
        match self {
            IngestError::Io { file, .. }
            | IngestError::Syntax { file, .. }
            | IngestError::Unsupported { file, .. }
            | IngestError::InvalidUtf8 { file, .. }
            | IngestError::RecordTooLarge { file, .. }
            | IngestError::TooDeep { file, .. }
            | IngestError::XmlEntities { file, .. } => file,
        }
    }

    /// Where in the file the problem is, when the error names a place.
    pub fn place(&self) -> Option<&str> {
        match self {
            IngestError::Syntax { place, .. }
            | IngestError::InvalidUtf8 { place, .. }
            | IngestError::RecordTooLarge { place, .. }
            | IngestError::TooDeep { place, .. }
            | IngestError::XmlEntities { place, .. } => Some(place),
            IngestError::Io { .. } | IngestError::Unsupported { .. } => None,
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
    let mut out = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|source| IngestError::Io {
            file: input.clone(),
            source,
        })?;
        if meta.is_dir() {
            walk(input, &mut out)?;
        } else {
            out.push(input.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), IngestError> {
    let io = |source| IngestError::Io {
        file: dir.to_path_buf(),
        source,
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if kind.is_symlink() {
            // Linked files are read; linked folders are not followed (no cycles).
            if path.is_file() && looks_like_feed(&name) {
                out.push(path);
            }
        } else if looks_like_feed(&name) {
            out.push(path);
        }
    }
    Ok(())
}

fn looks_like_feed(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let lower = lower.strip_suffix(".gz").unwrap_or(&lower);
    [".json", ".jsonl", ".ndjson", ".xml"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

/// Stream every record of one file into `emit`. Per-record problems are emitted as `Err` and
/// reading goes on; a problem that stops the file (truncated JSON) is emitted too and ends the
/// file. `emit` returning `Break` stops reading early. Returns the summary for the file.
pub fn read_file(
    path: &Path,
    opts: &IngestOptions,
    emit: &mut dyn FnMut(Result<Record, IngestError>) -> ControlFlow<()>,
) -> FileSummary {
    read_opened(path, source::open_and_peek(path), opts, emit)
}

/// The texts of the scored records of `inputs` (folders walked as for a run; unreadable records
/// left out), for benchmarks and profiling.
pub fn scored_texts(inputs: &[PathBuf]) -> Result<Vec<String>, IngestError> {
    let mut texts = Vec::new();
    for file in discover(inputs)? {
        read_file(&file, &IngestOptions::default(), &mut |r| {
            if let Ok(rec) = r {
                if rec.scored {
                    texts.push(rec.text);
                }
            }
            ControlFlow::Continue(())
        });
    }
    Ok(texts)
}

/// `read_file` over bytes in memory; `name` stands for the file in records and errors (the
/// fuzz targets in [`crate::fuzzing`] and tests use it).
pub fn read_bytes(
    name: &Path,
    bytes: Vec<u8>,
    opts: &IngestOptions,
    emit: &mut dyn FnMut(Result<Record, IngestError>) -> ControlFlow<()>,
) -> FileSummary {
    read_opened(name, source::peek_bytes(bytes), opts, emit)
}

fn read_opened(
    path: &Path,
    opened: std::io::Result<source::Opened>,
    opts: &IngestOptions,
    emit: &mut dyn FnMut(Result<Record, IngestError>) -> ControlFlow<()>,
) -> FileSummary {
    let file = Arc::new(path.to_path_buf());
    let mut sum = FileSummary::default();
    let mut fail = |sum: &mut FileSummary, e: IngestError| {
        sum.errors += 1;
        let _ = emit(Err(e));
    };
    let opened = match opened {
        Ok(o) => o,
        Err(source) => {
            fail(
                &mut sum,
                IngestError::Io {
                    file: path.to_path_buf(),
                    source,
                },
            );
            return sum;
        }
    };
    let unsupported = |what: String| IngestError::Unsupported {
        file: path.to_path_buf(),
        what,
    };
    match detect::detect(&opened.peek, path) {
        detect::Detected::Binary { offset } => fail(
            &mut sum,
            unsupported(format!(
                "binary content (NUL byte at byte {offset}{}); expected JSON or XML text",
                if opened.gzip {
                    " after gzip decompression"
                } else {
                    ""
                }
            )),
        ),
        detect::Detected::Unknown { offset, byte } => fail(
            &mut sum,
            unsupported(format!(
                "starts with {} at byte {offset}; expected JSON ('{{' or '[') or XML ('<')",
                json_stream::show_byte(byte)
            )),
        ),
        detect::Detected::Empty => fail(
            &mut sum,
            unsupported("empty input; expected JSON or XML".into()),
        ),
        detect::Detected::Xml => {
            let src = BufReader::with_capacity(256 * 1024, opened.reader);
            let _ = read_xml(src, &file, None, opts, &mut sum, emit);
        }
        detect::Detected::JsonDocument => {
            read_json(opened.reader, false, &file, opts, &mut sum, emit)
        }
        detect::Detected::JsonLines => read_json(opened.reader, true, &file, opts, &mut sum, emit),
    }
    sum
}

fn read_xml<R: BufRead>(
    src: R,
    file: &Arc<PathBuf>,
    outer_offset: Option<u64>,
    opts: &IngestOptions,
    sum: &mut FileSummary,
    emit: &mut dyn FnMut(Result<Record, IngestError>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let at = xml::XmlSource {
        file,
        outer_offset,
        first_index: sum.records + sum.errors,
    };
    let mut counting = |r: Result<Record, IngestError>| {
        match &r {
            Ok(rec) => {
                sum.records += 1;
                sum.format.get_or_insert(rec.source);
            }
            Err(_) => sum.errors += 1,
        }
        emit(r)
    };
    let result = xml::read_catalog(src, &at, opts, &mut counting);
    if let ControlFlow::Continue(x) = result {
        if outer_offset.is_none() {
            sum.bytes = x.bytes;
        }
        if sum.format.is_none() {
            sum.format = x.catalog_source;
        }
        ControlFlow::Continue(())
    } else {
        ControlFlow::Break(())
    }
}

fn read_json(
    reader: Box<dyn Read>,
    lines: bool,
    file: &Arc<PathBuf>,
    opts: &IngestOptions,
    sum: &mut FileSummary,
    emit: &mut dyn FnMut(Result<Record, IngestError>) -> ControlFlow<()>,
) {
    let mut scanner = JsonScanner::new(reader, opts.max_record_bytes, MAX_JSON_DEPTH);
    let path = || file.as_ref().clone();
    let mut on_item = |item: Item<'_>| -> ControlFlow<()> {
        let result = match item {
            Item::Record {
                container,
                index,
                offset,
                bytes,
                ..
            } => {
                let place = Place {
                    file,
                    opts,
                    index,
                    offset,
                    len: bytes.len() as u64,
                    outer_offset: None,
                };
                json_records::json_record(&place, container, bytes)
            }
            Item::Oversized { offset, len, .. } => Err(IngestError::RecordTooLarge {
                file: path(),
                place: format!("byte {offset}"),
                len,
                limit: opts.max_record_bytes,
            }),
            Item::TooDeep { offset, at, .. } => Err(IngestError::TooDeep {
                file: path(),
                place: format!("byte {at} (record starting at byte {offset})"),
                limit: MAX_JSON_DEPTH,
            }),
            Item::XmlString {
                offset, decoded, ..
            } => {
                let src = std::io::Cursor::new(decoded.as_bytes());
                return read_xml(src, file, Some(offset), opts, sum, emit);
            }
        };
        match &result {
            Ok(rec) => {
                sum.records += 1;
                sum.format.get_or_insert(rec.source);
            }
            Err(_) => sum.errors += 1,
        }
        emit(result)
    };
    let outcome = if lines {
        scanner.run_lines(&mut on_item)
    } else {
        scanner.run_document(&mut on_item)
    };
    sum.bytes = scanner.consumed();
    let err = match outcome {
        Ok(()) | Err(ScanStop::Stopped) => return,
        Err(ScanStop::Io(source)) => IngestError::Io {
            file: path(),
            source,
        },
        Err(ScanStop::Syntax { offset, what }) => IngestError::Syntax {
            file: path(),
            place: source::describe_place(file, offset),
            what,
        },
    };
    sum.errors += 1;
    let _ = emit(Err(err));
}

/// Read back the original bytes of a record from its locator.
pub fn read_original(locator: &Locator) -> Result<Vec<u8>, IngestError> {
    let file = locator.file.as_ref();
    let io = |source| IngestError::Io {
        file: file.clone(),
        source,
    };
    match locator.outer_offset {
        None => {
            let reader = source::open_at(file, locator.offset).map_err(io)?;
            // No allocation up front: a stale or corrupt locator must not ask for terabytes.
            let mut out = Vec::new();
            reader.take(locator.len).read_to_end(&mut out).map_err(io)?;
            if (out.len() as u64) < locator.len {
                return Err(IngestError::Syntax {
                    file: file.clone(),
                    place: format!("byte {}", locator.offset.saturating_add(out.len() as u64)),
                    what: format!("the file ends before the record's {} bytes", locator.len),
                });
            }
            Ok(out)
        }
        Some(outer) => {
            // The record sits inside a JSON string: decode the string, then slice it.
            let reader = source::open_at(file, outer).map_err(io)?;
            let raw = source::read_json_string(reader).map_err(io)?;
            let decoded =
                json_stream::decode_json_string(&raw).map_err(|what| IngestError::Syntax {
                    file: file.clone(),
                    place: format!("byte {outer}"),
                    what,
                })?;
            let start = usize::try_from(locator.offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(usize::try_from(locator.len).unwrap_or(usize::MAX));
            decoded
                .as_bytes()
                .get(start..end)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| IngestError::Syntax {
                    file: file.clone(),
                    place: format!("byte {start} of the string at byte {outer}"),
                    what: format!("the string is only {} bytes long", decoded.len()),
                })
        }
    }
}

#[cfg(test)]
mod throughput {
    //! Stage-by-stage timing of the JSON path (ignored; run in release with --nocapture).
    use super::*;
    use std::time::Instant;

    #[test]
    #[ignore = "timing check"]
    fn stages() {
        let page = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sample_data/nvd/nvd-api2.0-page0-sample.json");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(page).unwrap()).unwrap();
        let elems: Vec<String> = v["vulnerabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        let mut doc = b"{\"vulnerabilities\":[".to_vec();
        while doc.len() < 128 << 20 {
            for e in &elems {
                doc.extend_from_slice(e.as_bytes());
                doc.push(b',');
            }
        }
        doc.pop();
        doc.extend_from_slice(b"]}");
        let mb = doc.len() as f64 / 1e6;
        let file = Arc::new(PathBuf::from("mem.json"));
        let opts = IngestOptions::default();
        let stages = std::env::var("STAGES").unwrap_or_else(|_| "scan,utf8,serde,full".into());
        for stage in stages.split(',') {
            let t = Instant::now();
            let mut n = 0u64;
            let mut s = JsonScanner::new(&doc[..], 1 << 24, 128);
            s.run_document(&mut |item| {
                if let Item::Record {
                    bytes,
                    container,
                    index,
                    offset,
                } = item
                {
                    n += 1;
                    match stage {
                        "utf8" => {
                            std::str::from_utf8(bytes).unwrap();
                        }
                        "serde" => {
                            let t = std::str::from_utf8(bytes).unwrap();
                            let _: nvd::Api2Item = serde_json::from_str(t).unwrap();
                        }
                        "full" => {
                            let place = Place {
                                file: &file,
                                opts: &opts,
                                index,
                                offset,
                                len: bytes.len() as u64,
                                outer_offset: None,
                            };
                            json_records::json_record(&place, container, bytes).unwrap();
                        }
                        _ => {}
                    }
                }
                ControlFlow::Continue(())
            })
            .unwrap();
            let secs = t.elapsed().as_secs_f64();
            println!(
                "{stage}: {n} records {mb:.0} MB in {secs:.3}s = {:.0} MB/s",
                mb / secs
            );
        }
    }
}
