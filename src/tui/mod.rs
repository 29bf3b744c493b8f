//! The curation workbench: a window onto the engine. Never touches a file or the model.
//!
//! - [`app`]: all UI state and the one `update` function (keys, engine events, replies in;
//!   effects out).
//! - [`ui`] and [`components`]: the pure `draw(&App, &mut Frame)`; [`layout`] (where parts
//!   go) and [`format`] (how numbers read), shared by the app and the components.
//! - [`runtime`]: the main loop that owns the `App`, the input thread, the engine channels,
//!   terminal setup/restore and the panic hook.
//! - [`keymap`], [`theme`], [`config`]: TOML-driven bindings, themes and the `[tui]` config.

pub mod action;
pub mod app;
pub mod components;
pub mod config;
pub mod format;
pub mod keymap;
pub mod layout;
pub mod runtime;
pub mod theme;
pub mod ui;

pub use app::{App, Effect, Msg, SessionInfo};
pub use runtime::{run_tui, Session, SessionEnd, TuiOptions};
