//! The run store (SQLite): the source of truth for a run. Exports are views over it.
