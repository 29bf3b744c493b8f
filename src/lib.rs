//! cyberfilter: stream raw security feeds, score records with rules, verify the uncertain ones
//! with a local LLM in real batches, and keep every decision in a run store.
//!
//! Rooms (one concern each; see DESIGN.md):
//! - [`record`]: the `Record` type shared by all rooms.
//! - [`ingest`]: format detection and one streaming reader per feed format.
//! - [`rules`]: rule file → compiled scorer; tiers and thresholds.
//! - [`decide`]: the pure decision function over stored inputs.
//! - [`verify`]: the `Verifier` trait, batching, caching and backends.
//! - [`engine`]: tasks wiring ingest → rules → verify → store; commands in, events out.
//! - [`store`]: the SQLite run store and export writers.
//! - [`tui`]: the curation workbench.
//! - [`paths`]: where the config file, run stores, cache and logs live (one resolver).

pub mod cli;
pub mod decide;
pub mod dedup;
pub mod engine;
#[doc(hidden)]
pub mod fuzzing;
pub mod ingest;
pub mod paths;
pub mod record;
pub mod rng;
pub mod rules;
pub mod store;
pub mod tui;
pub mod verify;

pub use record::{Locator, Record, RecordFlags, SourceKind};
