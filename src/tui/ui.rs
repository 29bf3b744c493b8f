//! The pure `draw` entry point: the frame is a function of [`App`] alone. Where things go is
//! [`super::layout`]; how numbers read is [`super::format`].

use super::app::App;
use super::components;
use super::layout::areas;
use ratatui::Frame;

// Kept for callers of the old paths (benches, tests).
pub use super::format::{fmt_bytes, fmt_count, fmt_duration, fmt_prob, fmt_rate};
pub use super::layout::{is_wide, table_capacity, Areas};

pub fn draw(app: &App, f: &mut Frame) {
    let area = f.area();
    let a = areas(area);
    components::dashboard::header(app, f, a.header);
    if let (Some(strip), None) = (a.strip, &app.record) {
        components::dashboard::strip(app, f, strip);
    }
    if let Some(side) = a.side {
        components::dashboard::side(app, f, side);
    }
    match &app.record {
        // On narrow screens the record view takes the panel strip too.
        Some(rv) => {
            let area = a.strip.map_or(a.main, |s| s.union(a.main));
            components::record::draw(app, rv, f, area)
        }
        None => components::table::draw(app, f, a.main),
    }
    components::dashboard::footer(app, f, a.footer);
    components::overlays::draw(app, f, area);
}
