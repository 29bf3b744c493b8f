//! The duplicate group view (`m`): the members of the selected record's group, representative
//! first, with source, file, verdict, how each joined and its similarity to the representative.

use super::{block, centered, tail};
use crate::tui::app::{App, GroupPanel};
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Clear, Paragraph, Row, Table};
use ratatui::Frame;

pub fn draw(app: &App, p: &GroupPanel, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let r = centered(area, 110, 20.min(area.height.saturating_sub(2)));
    f.render_widget(Clear, r);
    let title = match p.view.as_ref().and_then(Option::as_ref) {
        Some(v) => format!(
            "Duplicate group: {} records · P representative · S split off · Esc",
            v.members.len()
        ),
        None => "Duplicate group · Esc closes".to_string(),
    };
    let blk = block(t, &title, true);
    let inner = blk.inner(r);
    f.render_widget(blk, r);
    let view = match &p.view {
        None => return f.render_widget(Paragraph::new(" asking the engine…").style(t.dim), inner),
        Some(None) => {
            let msg = " This record is in no duplicate group (or grouping is off).";
            return f.render_widget(Paragraph::new(msg).style(t.dim), inner);
        }
        Some(Some(v)) => v,
    };
    let file_w = inner.width.saturating_sub(70).max(12) as usize;
    let rows: Vec<Row> = view
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let sim = m
                .similarity
                .map_or_else(|| "–".to_string(), |s| format!("{s:.2}"));
            let row = Row::new(vec![
                Cell::from(if m.representative { "◆" } else { "≡" }).style(t.marker),
                Cell::from(m.id.clone()).style(t.base),
                Cell::from(m.source.as_str()).style(t.dim),
                Cell::from(m.verdict.as_str()).style(t.verdict(m.verdict)),
                Cell::from(m.via.clone()).style(t.dim),
                Cell::from(Line::from(sim).right_aligned()).style(t.base),
                Cell::from(tail(&m.file, file_w)).style(t.dim),
            ]);
            if i == p.selected {
                row.style(t.selected)
            } else {
                row
            }
        })
        .collect();
    let widths = [
        Constraint::Length(1),
        Constraint::Min(18),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(5),
        Constraint::Fill(1),
    ];
    let header =
        Row::new(["", "id", "source", "verdict", "via", "sim", "file"]).style(t.table_header);
    f.render_widget(
        Table::new(rows, widths).header(header).column_spacing(1),
        inner,
    );
}
