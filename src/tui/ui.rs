//! Layout and the pure `draw` entry point: the frame is a function of [`App`] alone.

use super::app::App;
use super::components;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::Frame;
use std::time::Duration;

/// Where the dashboard's parts go at a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub header: Rect,
    /// Narrow screens: one row of small panels above the table.
    pub strip: Option<Rect>,
    /// Wide screens: a column of panels beside the table.
    pub side: Option<Rect>,
    /// The table, or the record view when one is open.
    pub main: Rect,
    pub footer: Rect,
}

/// Wide enough for a side column of panels.
pub fn is_wide(area: Rect) -> bool {
    area.width >= 120 && area.height >= 30
}

pub fn areas(area: Rect) -> Areas {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    if is_wide(area) {
        let side_w = (area.width * 36 / 100).clamp(44, 72);
        let [side, main] =
            Layout::horizontal([Constraint::Length(side_w), Constraint::Min(20)]).areas(body);
        Areas {
            header,
            strip: None,
            side: Some(side),
            main,
            footer,
        }
    } else {
        let strip_h = if body.height >= 14 { 5 } else { 0 };
        let [strip, main] =
            Layout::vertical([Constraint::Length(strip_h), Constraint::Min(1)]).areas(body);
        Areas {
            header,
            strip: (strip_h > 0).then_some(strip),
            side: None,
            main,
            footer,
        }
    }
}

/// Data rows the table shows: the main area less its borders, the column header and the
/// search line when it is open.
pub fn table_capacity(width: u16, height: u16, search_open: bool) -> u16 {
    let a = areas(Rect::new(0, 0, width, height));
    a.main.height.saturating_sub(3 + u16::from(search_open))
}

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

// ----- formatting shared by the components ------------------------------------------------

/// `1234567` → `1,234,567`.
pub fn fmt_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in B/KB/MB/GB (powers of 1024, one decimal above KB).
pub fn fmt_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `hh:mm:ss`.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// A rate with a sensible number of digits.
pub fn fmt_rate(v: f64) -> String {
    if v >= 1000.0 {
        fmt_count(v.round() as u64)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A probability as `0.83`, or a dash.
pub fn fmt_prob(p: Option<f64>) -> String {
    p.map_or_else(|| "–".to_string(), |p| format!("{p:.2}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_for_people() {
        assert_eq!(fmt_count(0), "0");
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_count(1000), "1,000");
        assert_eq!(fmt_count(1234567), "1,234,567");
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(1536), "1.5 KB");
        assert_eq!(fmt_bytes(3 * 1024 * 1024), "3.0 MB");
        assert_eq!(fmt_duration(Duration::from_secs(3723)), "01:02:03");
        assert_eq!(fmt_rate(12345.6), "12,346");
        assert_eq!(fmt_rate(3.21), "3.2");
    }

    #[test]
    fn layouts_fit_small_and_large_screens() {
        assert_eq!(table_capacity(80, 24, false), 14);
        assert!(areas(Rect::new(0, 0, 80, 24)).side.is_none());
        let big = areas(Rect::new(0, 0, 200, 60));
        assert!(big.side.is_some());
        assert_eq!(table_capacity(200, 60, false), 55);
    }
}
