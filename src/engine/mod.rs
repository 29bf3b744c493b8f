//! The engine: the only place that wires ingest → rules → verify → decide → store together.
//! Commands in, aggregated events out.

pub mod types;

pub use types::*;
