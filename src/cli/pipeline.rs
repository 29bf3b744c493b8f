//! Streaming records from inputs to a consumer, on one thread or with a reader thread in front.
//! Memory stays bounded: at most `QUEUE_BATCHES` batches of `BATCH` records are in flight.

use crate::ingest::{discover, read_file, FileSummary, IngestError, IngestOptions};
use crate::record::Record;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::mpsc::sync_channel;

const BATCH: usize = 256;
const QUEUE_BATCHES: usize = 8;

/// What the readers produce, in file order.
#[derive(Debug)]
pub enum Item {
    Record(Record),
    /// A problem with one record or one file; reading goes on.
    Error(IngestError),
    /// A file is finished.
    FileDone {
        path: PathBuf,
        summary: FileSummary,
    },
}

/// Discover the inputs and feed every item to `consume` until it breaks. Fails only when the
/// inputs cannot be expanded at all.
pub fn stream(
    inputs: &[PathBuf],
    opts: &IngestOptions,
    single_thread: bool,
    consume: &mut dyn FnMut(Item) -> ControlFlow<()>,
) -> Result<(), IngestError> {
    let files = discover(inputs)?;
    if single_thread {
        for path in files {
            let summary = read_file(&path, opts, &mut |r| match r {
                Ok(rec) => consume(Item::Record(rec)),
                Err(e) => consume(Item::Error(e)),
            });
            if consume(Item::FileDone { path, summary }).is_break() {
                break;
            }
        }
        return Ok(());
    }

    let (tx, rx) = sync_channel::<Vec<Item>>(QUEUE_BATCHES);
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            for path in files {
                let mut gone = false;
                let summary = read_file(&path, opts, &mut |r| {
                    batch.push(match r {
                        Ok(rec) => Item::Record(rec),
                        Err(e) => Item::Error(e),
                    });
                    if batch.len() >= BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        if tx.send(full).is_err() {
                            gone = true;
                            return ControlFlow::Break(());
                        }
                    }
                    ControlFlow::Continue(())
                });
                if gone {
                    return;
                }
                batch.push(Item::FileDone { path, summary });
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if tx.send(full).is_err() {
                    return;
                }
            }
        });
        'outer: for batch in rx.iter() {
            for item in batch {
                if consume(item).is_break() {
                    break 'outer;
                }
            }
        }
        // Dropping the receiver here makes the reader's next send fail, so it stops.
        drop(rx);
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<PathBuf> {
        vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sample_data")]
    }

    fn ids(single_thread: bool, stop_after: Option<usize>) -> (Vec<String>, usize) {
        let mut seen = Vec::new();
        let mut files = 0;
        stream(
            &sample(),
            &IngestOptions::default(),
            single_thread,
            &mut |item| {
                match item {
                    Item::Record(r) => seen.push(r.id),
                    Item::Error(e) => panic!("sample_data error: {e}"),
                    Item::FileDone { .. } => files += 1,
                }
                match stop_after {
                    Some(n) if seen.len() >= n => ControlFlow::Break(()),
                    _ => ControlFlow::Continue(()),
                }
            },
        )
        .expect("discover sample_data");
        (seen, files)
    }

    #[test]
    fn both_modes_give_the_same_records_in_order() {
        let (a, files_a) = ids(true, None);
        let (b, files_b) = ids(false, None);
        assert!(a.len() > 300, "{} records", a.len());
        assert_eq!(a, b);
        assert_eq!(files_a, files_b);
        assert!(files_a >= 8);
    }

    #[test]
    fn a_break_stops_both_modes() {
        for single in [true, false] {
            let (seen, _) = ids(single, Some(5));
            assert_eq!(seen.len(), 5, "single_thread = {single}");
        }
    }

    #[test]
    fn missing_inputs_fail_discovery() {
        let err = stream(
            &[PathBuf::from("/nonexistent/feeds")],
            &IngestOptions::default(),
            true,
            &mut |_| ControlFlow::Continue(()),
        );
        assert!(err.is_err());
    }
}
