//! Where the dashboard's parts go at a given terminal size (the app asks how many table rows
//! fit; the components draw into these areas).

use ratatui::layout::{Constraint, Layout, Rect};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_fit_small_and_large_screens() {
        assert_eq!(table_capacity(80, 24, false), 14);
        assert!(areas(Rect::new(0, 0, 80, 24)).side.is_none());
        let big = areas(Rect::new(0, 0, 200, 60));
        assert!(big.side.is_some());
        assert_eq!(table_capacity(200, 60, false), 55);
    }
}
