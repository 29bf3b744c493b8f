//! The record view (also the review queues): extracted text with matched rules highlighted,
//! the score broken down by rule, the probability, why the verdict is what it is, and the
//! original record.

use super::{block, head};
use crate::engine::types::{RecordDetail, TextMatch};
use crate::tui::app::{App, Pane, RecordView};
use crate::tui::format::fmt_count;
use crate::tui::layout::is_wide;
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

pub fn draw(app: &App, rv: &RecordView, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let title = match &app.review {
        Some(r) => format!(
            "{} · {} of {} · {} labelled",
            r.kind.title(),
            fmt_count((app.table.selected + 1).min(app.table.total)),
            fmt_count(app.table.total),
            r.labelled
        ),
        None => format!("Record {}", rv.id),
    };
    let blk = block(t, &title, app.overlay.is_none());
    let inner = blk.inner(area);
    f.render_widget(blk, area);
    let Some(d) = &rv.detail else {
        let msg = if rv.missing {
            format!("{}: the engine has no such record", rv.id)
        } else {
            format!("loading {}…", rv.id)
        };
        f.render_widget(Paragraph::new(msg).style(t.dim), inner);
        return;
    };

    let summary = summary_lines(t, d, inner.width as usize);
    let [top, body] =
        Layout::vertical([Constraint::Length(summary.len() as u16), Constraint::Min(1)])
            .areas(inner);
    f.render_widget(Paragraph::new(summary), top);

    if is_wide(f.area()) {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                .areas(body);
        let rules_h = (d.hits.len() as u16 + 4).clamp(4, left.height / 2);
        let [text_a, rules_a] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(rules_h)]).areas(left);
        text_pane(app, rv, d, f, text_a, true);
        rules_pane(t, d, f, rules_a);
        original_pane(app, rv, d, f, right, true);
    } else {
        match rv.pane {
            Pane::Text => {
                let rules_h = (d.hits.len() as u16 + 4).clamp(3, body.height / 2);
                let [text_a, rules_a] =
                    Layout::vertical([Constraint::Min(2), Constraint::Length(rules_h)]).areas(body);
                text_pane(app, rv, d, f, text_a, false);
                rules_pane(t, d, f, rules_a);
            }
            Pane::Original => original_pane(app, rv, d, f, body, false),
        }
    }
}

fn summary_lines<'a>(t: &Theme, d: &'a RecordDetail, width: usize) -> Vec<Line<'a>> {
    let r = &d.row;
    let p = r
        .p_yes
        .map_or_else(|| "–".to_string(), |p| format!("{p:.2}"));
    let mut lines = vec![
        Line::from(vec![
            Span::styled(r.id.clone(), t.title),
            Span::styled(format!("  {} · {}", r.source.as_str(), r.kind), t.dim),
            Span::styled(
                format!(
                    "  {}",
                    head(&d.locator, width.saturating_sub(r.id.len() + 30))
                ),
                t.dim,
            ),
        ]),
        Line::from(vec![
            Span::styled("score ", t.dim),
            Span::styled(format!("{:.2}", r.score), t.base),
            Span::styled("  tier ", t.dim),
            Span::styled(r.tier.as_str(), t.base),
            Span::styled("  P(yes) ", t.dim),
            Span::styled(p, t.base),
            Span::styled(
                d.model
                    .as_ref()
                    .map_or(String::new(), |m| format!(" ({m})")),
                t.dim,
            ),
            // The learned head's probability, when a head scored the record ("by head" below
            // says when it decided).
            Span::styled(
                if d.row.p_head.is_some() {
                    "  P(head) "
                } else {
                    ""
                },
                t.dim,
            ),
            Span::styled(
                d.row.p_head.map_or(String::new(), |p| format!("{p:.2}")),
                t.base,
            ),
        ]),
        Line::from(vec![
            Span::styled("verdict ", t.dim),
            Span::styled(
                r.verdict.as_str(),
                t.verdict(r.verdict)
                    .add_modifier(ratatui::style::Modifier::BOLD),
            ),
            Span::styled("  by ", t.dim),
            Span::styled(r.decided_by.map_or("–", |b| b.as_str()), t.base),
            Span::styled("  label ", t.dim),
            Span::styled(r.label.map_or("none", |l| l.as_str()), t.human),
        ]),
        Line::from(vec![
            Span::styled("why  ", t.dim),
            Span::styled(d.why.clone(), t.base),
        ]),
    ];
    if width >= 100 {
        // Wide: numbers and decision fit on one line.
        let decision = lines.remove(2);
        lines[1].spans.push(Span::raw("  "));
        lines[1].spans.extend(decision.spans);
    }
    lines
}

fn text_pane(app: &App, rv: &RecordView, d: &RecordDetail, f: &mut Frame, area: Rect, wide: bool) {
    let t = &app.theme;
    let title = if wide {
        "Text (matches highlighted)"
    } else {
        "Text (Tab: original)"
    };
    let blk = block(t, title, rv.pane == Pane::Text);
    let lines = highlighted(t, &d.text, &d.matches);
    f.render_widget(
        Paragraph::new(lines)
            .block(blk)
            .wrap(Wrap { trim: false })
            .scroll((if rv.pane == Pane::Text { rv.scroll } else { 0 }, 0)),
        area,
    );
}

/// Splits the text into lines and styles the matched byte ranges (overlaps merged, bad ranges
/// ignored rather than trusted).
pub fn highlighted<'a>(t: &Theme, text: &'a str, matches: &[TextMatch]) -> Vec<Line<'a>> {
    let mut ranges: Vec<(usize, usize, bool)> = matches
        .iter()
        .filter(|m| {
            m.start < m.end
                && text.is_char_boundary(m.start)
                && text.is_char_boundary(m.end.min(text.len()))
        })
        .map(|m| (m.start, m.end.min(text.len()), m.negative))
        .collect();
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize, bool)> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.0 < last.1 => last.1 = last.1.max(r.1),
            _ => merged.push(r),
        }
    }
    let mut lines = Vec::new();
    let mut line_start = 0;
    for line in text.split('\n') {
        let line_end = line_start + line.len();
        let mut spans = Vec::new();
        let mut pos = line_start;
        for &(s, e, neg) in merged
            .iter()
            .filter(|(s, e, _)| *e > line_start && *s < line_end)
        {
            let (s, e) = (s.max(line_start), e.min(line_end));
            if s > pos {
                spans.push(Span::styled(&text[pos..s], t.base));
            }
            spans.push(Span::styled(
                &text[s..e],
                if neg { t.negative } else { t.highlight },
            ));
            pos = e;
        }
        if pos < line_end {
            spans.push(Span::styled(&text[pos..line_end], t.base));
        }
        lines.push(Line::from(spans));
        line_start = line_end + 1;
    }
    lines
}

fn rules_pane(t: &Theme, d: &RecordDetail, f: &mut Frame, area: Rect) {
    let blk = block(t, "Score by rule", false);
    let mut hits: Vec<_> = d.hits.iter().collect();
    hits.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
    let rows: Vec<Row> = hits
        .iter()
        .map(|h| {
            let style = if h.contribution < 0.0 {
                t.removed
            } else {
                t.kept
            };
            Row::new(vec![
                Cell::from(h.rule.as_str()).style(t.base),
                Cell::from(h.category.as_str()).style(t.dim),
                Cell::from(Line::from(format!("×{}", h.count)).right_aligned()).style(t.dim),
                Cell::from(Line::from(format!("{:+.2}", h.contribution)).right_aligned())
                    .style(style),
            ])
        })
        .collect();
    if rows.is_empty() {
        f.render_widget(
            Paragraph::new("no rule matched").style(t.dim).block(blk),
            area,
        );
        return;
    }
    let sum: f32 = d.hits.iter().map(|h| h.contribution).sum();
    // Borders, header and total take four lines; when rules do not fit, the last visible
    // line says how many are hidden (largest contributions come first).
    let fits = (area.height as usize).saturating_sub(4);
    let mut rows = rows;
    if rows.len() > fits && fits > 0 {
        let hidden = rows.len() - (fits - 1);
        rows.truncate(fits - 1);
        rows.push(
            Row::new(vec![Cell::from(format!(
                "… {hidden} more rule{}",
                if hidden == 1 { "" } else { "s" }
            ))])
            .style(t.dim),
        );
    }
    let table = Table::new(
        rows,
        [
            Constraint::Fill(2),
            Constraint::Fill(1),
            Constraint::Length(5),
            Constraint::Length(7),
        ],
    )
    .header(Row::new(vec!["rule", "category", "n", "points"]).style(t.table_header))
    .footer(
        Row::new(vec![
            Cell::from("total"),
            Cell::from(""),
            Cell::from(""),
            Cell::from(Line::from(format!("{sum:+.2}")).right_aligned()),
        ])
        .style(t.title),
    )
    .block(blk);
    f.render_widget(table, area);
}

fn original_pane(
    app: &App,
    rv: &RecordView,
    d: &RecordDetail,
    f: &mut Frame,
    area: Rect,
    wide: bool,
) {
    let t = &app.theme;
    let title = if wide {
        "Original (Tab: scroll here)"
    } else {
        "Original (Tab: text)"
    };
    let blk = block(t, title, rv.pane == Pane::Original);
    let para = match &d.original {
        Ok(s) => Paragraph::new(s.as_str()).style(t.base),
        Err(e) => Paragraph::new(format!("cannot read the original: {e}")).style(t.error),
    };
    let scroll = if rv.pane == Pane::Original {
        rv.scroll
    } else {
        0
    };
    f.render_widget(
        para.block(blk)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        area,
    );
}
