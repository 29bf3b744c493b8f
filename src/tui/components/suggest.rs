//! The suggest overlay: candidates mined from the session's labels on the left, the selected
//! one's `[[rule]]` and the flips adding it would make on the right.

use super::overlays::{flips_line, panel_rect};
use super::{block, head};
use crate::tui::app::{App, SuggestPanel};
use crate::tui::format::fmt_count;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(app: &App, p: &SuggestPanel, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let r = panel_rect(area, 110);
    f.render_widget(Clear, r);
    let blk = block(
        t,
        "Rules from your labels: j/k choose, Enter adds, r re-mines",
        true,
    );
    let inner = blk.inner(r);
    f.render_widget(blk, r);

    let list = match &p.list {
        None => {
            let msg = Line::styled(" mining candidates from the labels…", t.dim);
            return f.render_widget(Paragraph::new(msg), inner);
        }
        Some(Err(e)) => {
            let msg = Line::styled(format!(" no candidates: {e}"), t.warn);
            return f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: false }), inner);
        }
        Some(Ok(s)) => s,
    };
    let [top, body] = Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(inner);
    let mut summary = vec![Line::styled(
        format!(
            " {} candidates from {} labelled keep and {} labelled reject (phrases the rules already match left out)",
            list.candidates.len(),
            fmt_count(list.kept as u64),
            fmt_count(list.rejected as u64)
        ),
        t.dim,
    )];
    if let Some(file) = &p.added_to {
        summary.push(Line::styled(
            format!(" last rule added to {}", file.display()),
            t.marker,
        ));
    }
    f.render_widget(Paragraph::new(summary), top);
    if list.candidates.is_empty() {
        let msg = Line::styled(" no phrase passed the minimum support", t.dim);
        return f.render_widget(Paragraph::new(msg), body);
    }
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(body);

    // The list, scrolled so the selection stays in view.
    let rows = left.height as usize;
    let first = p.selected.saturating_sub(rows.saturating_sub(1));
    let w = left.width.saturating_sub(24) as usize;
    let lines: Vec<Line> = list
        .candidates
        .iter()
        .enumerate()
        .skip(first)
        .take(rows)
        .map(|(i, c)| {
            let sel = i == p.selected;
            Line::from(vec![
                Span::styled(if sel { " ▸ " } else { "   " }, t.marker),
                Span::styled(
                    format!("{:<w$}", head(&c.phrase, w)),
                    if sel { t.title } else { t.base },
                ),
                Span::styled(format!(" {:>4.1}", c.weight), t.dim),
                Span::styled(format!(" p {:.2}", c.precision), t.chart_a),
                Span::styled(format!(" {}/{}", c.pos, c.neg), t.dim),
            ])
        })
        .collect();
    f.render_widget(Paragraph::new(lines), left);

    let mut lines = Vec::new();
    if let Some(c) = p.selected_rule() {
        lines.push(match &p.preview {
            Some(Ok(fp)) => flips_line(t, " If added: ", fp),
            Some(Err(e)) => Line::styled(format!(" If added: {e}"), t.error),
            None => Line::styled(" If added: re-scoring the stored texts…", t.dim),
        });
        lines.push(Line::raw(""));
        for l in c.toml.lines() {
            let style = if l.starts_with('#') { t.dim } else { t.base };
            lines.push(Line::styled(format!(" {l}"), style));
        }
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), right);
}
