//! The records table: only the rows in view are built, from the page the engine sent.

use super::{block, head};
use crate::engine::types::{RecordRow, SortBy};
use crate::tui::app::App;
use crate::tui::format::fmt_count;
use crate::tui::layout::is_wide;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;

pub fn sort_name(s: SortBy) -> &'static str {
    match s {
        SortBy::Arrival => "arrival",
        SortBy::Score => "score",
        SortBy::Uncertainty => "uncertainty",
    }
}

/// The active filters as `verdict=kept tier=verify …`.
pub fn filter_summary(app: &App) -> String {
    let f = &app.filter;
    let mut parts = Vec::new();
    if let Some(v) = f.verdict {
        parts.push(format!("verdict={}", v.as_str()));
    }
    if let Some(t) = f.tier {
        parts.push(format!("tier={}", t.as_str()));
    }
    if let Some(s) = f.source {
        parts.push(format!("source={}", s.as_str()));
    }
    if let Some(d) = f.decided_by {
        parts.push(format!("by={}", d.as_str()));
    }
    if let Some(l) = f.labelled {
        parts.push(if l { "labelled" } else { "unlabelled" }.to_string());
    }
    if f.duplicates {
        parts.push("duplicates".to_string());
    }
    if let Some(s) = &f.search {
        parts.push(format!("/{s}"));
    }
    parts.join(" ")
}

pub fn draw(app: &App, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let tv = &app.table;
    let filters = filter_summary(app);
    let mut title = format!(
        "Records {}{} · sort {}",
        if tv.total > 0 {
            fmt_count(tv.selected + 1) + "/"
        } else {
            String::new()
        },
        fmt_count(tv.total),
        sort_name(app.sort)
    );
    if !filters.is_empty() {
        title.push_str(" · ");
        title.push_str(&filters);
    }
    let title = head(&title, area.width.saturating_sub(16) as usize);
    let mut blk = block(t, &title, app.overlay.is_none());
    if app.frozen {
        blk = blk.title_top(Line::styled(" FROZEN ", t.marker).right_aligned());
    } else if tv.follow {
        blk = blk.title_top(Line::styled(" following ", t.dim).right_aligned());
    }
    let inner = blk.inner(area);
    f.render_widget(blk, area);

    let mut table_area = inner;
    if let Some(ta) = &app.search {
        let [s, rest] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
        let [label, input] =
            Layout::horizontal([Constraint::Length(8), Constraint::Min(1)]).areas(s);
        f.render_widget(Paragraph::new(Span::styled(" search ", t.key)), label);
        f.render_widget(ta, input);
        table_area = rest;
    }

    // Tier and rules columns when there is room for them.
    let wide = is_wide(f.area()) && table_area.width >= 110;
    // A P(head) column only while the verdict head scores the rows on screen.
    let with_head = tv.rows.iter().any(|r| r.p_head.is_some());
    let mut header_cells: Vec<&str> = vec!["id", "source"];
    let mut widths = vec![
        Constraint::Min(if wide { 18 } else { 16 }),
        Constraint::Length(10),
    ];
    if wide {
        header_cells.push("tier");
        widths.push(Constraint::Length(6));
    }
    header_cells.extend(["score", "P(yes)"]);
    widths.extend([Constraint::Length(6), Constraint::Length(6)]);
    if with_head {
        header_cells.push("P(head)");
        widths.push(Constraint::Length(7));
    }
    header_cells.extend(["verdict", "by", "label"]);
    widths.extend([
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(6),
    ]);
    if wide {
        header_cells.push("rules");
        widths.push(Constraint::Fill(1));
    }
    let header = Row::new(header_cells.iter().map(|h| Cell::from(*h))).style(t.table_header);

    let cap = table_area.height.saturating_sub(1) as u64;
    let end = (tv.top + cap).min(tv.total);
    let rows: Vec<Row> = (tv.top..end)
        .map(|i| {
            let selected = i == tv.selected;
            let row = match tv.row(i) {
                Some(r) => record_row(app, r, wide, with_head),
                None => Row::new(vec![Cell::from("…")]).style(t.dim),
            };
            if selected {
                row.style(t.selected)
            } else {
                row
            }
        })
        .collect();
    let empty = rows.is_empty();
    f.render_widget(
        Table::new(rows, widths).header(header).column_spacing(1),
        table_area,
    );
    if empty && table_area.height > 2 {
        let msg = if !tv.loaded {
            "loading…"
        } else if app.filter != Default::default() {
            "no records match these filters (c clears them)"
        } else {
            "no records yet"
        };
        let [_, m] =
            Layout::vertical([Constraint::Length(2), Constraint::Length(1)]).areas(table_area);
        f.render_widget(Paragraph::new(msg).style(t.dim).centered(), m);
    }
}

fn record_row<'a>(app: &App, r: &'a RecordRow, wide: bool, with_head: bool) -> Row<'a> {
    let t = &app.theme;
    let p = r
        .p_yes
        .map_or_else(|| "–".to_string(), |p| format!("{p:.2}"));
    let by = r.decided_by.map_or("–", |d| d.as_str());
    let label = r.label.map_or("", |l| l.as_str());
    let by_style = match r.decided_by {
        Some(crate::decide::DecidedBy::Human) => t.human,
        _ => t.dim,
    };
    let name = if r.name.is_empty() {
        r.id.as_str()
    } else {
        r.name.as_str()
    };
    // Duplicate groups: `◆` marks a representative, `≡` a duplicate that follows it.
    let (name, name_style) = match r.group {
        Some(g) if g == r.seq => (format!("◆ {name}"), t.base),
        Some(_) => (format!("≡ {name}"), t.dim),
        None => (name.to_string(), t.base),
    };
    let mut cells = vec![
        Cell::from(name).style(name_style),
        Cell::from(r.source.as_str()).style(t.dim),
    ];
    if wide {
        cells.push(Cell::from(r.tier.as_str()).style(t.dim));
    }
    cells.extend([
        Cell::from(Line::from(format!("{:.1}", r.score)).right_aligned()).style(t.base),
        Cell::from(Line::from(p).right_aligned()).style(t.base),
    ]);
    if with_head {
        let ph = r
            .p_head
            .map_or_else(|| "–".to_string(), |p| format!("{p:.2}"));
        cells.push(Cell::from(Line::from(ph).right_aligned()).style(t.base));
    }
    cells.extend([
        Cell::from(r.verdict.as_str()).style(t.verdict(r.verdict)),
        Cell::from(by).style(by_style),
        Cell::from(label).style(t.human),
    ]);
    if wide {
        cells.push(Cell::from(r.rules.join(", ")).style(t.dim));
    }
    Row::new(cells)
}
