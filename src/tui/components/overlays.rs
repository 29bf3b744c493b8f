//! Overlays drawn over the dashboard: help, threshold tuning, export.

use super::{block, centered};
use crate::engine::types::FlipPreview;
use crate::store::export::{ExportFormat, ExportLayout};
use crate::tui::app::{
    precision_recall, App, ExportDialog, ExportField, Overlay, ThresholdField, ThresholdPanel,
};
use crate::tui::format::{fmt_count, fmt_prob};
use crate::tui::keymap::Mode;
use crate::tui::layout::is_wide;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Clear, Dataset, GraphType, Paragraph};
use ratatui::Frame;

pub fn draw(app: &App, f: &mut Frame, area: Rect) {
    match &app.overlay {
        None => {}
        Some(Overlay::Help(h)) => help(app, h.scroll, f, area),
        Some(Overlay::Thresholds(p)) => thresholds(app, p, f, area),
        Some(Overlay::Export(d)) => export(app, d, f, area),
        Some(Overlay::Head(p)) => super::head::draw(app, p, f, area),
        Some(Overlay::Group(p)) => super::group::draw(app, p, f, area),
        Some(Overlay::Suggest(p)) => super::suggest::draw(app, p, f, area),
    }
}

/// The help text, generated from the keymap: one section per mode.
pub fn help_lines(app: &App) -> Vec<Line<'static>> {
    let t = &app.theme;
    let mut lines = Vec::new();
    for mode in Mode::ALL {
        let rows = app.keymap.help_rows(mode);
        if rows.is_empty() {
            continue;
        }
        if !lines.is_empty() {
            lines.push(Line::raw(""));
        }
        lines.push(Line::styled(mode.title().to_string(), t.title));
        let key_w = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0)
            .min(22);
        for (keys, desc) in rows {
            lines.push(Line::from(vec![
                Span::styled(format!("  {keys:<key_w$}  "), t.marker),
                Span::styled(desc.to_string(), t.base),
            ]));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "Search: type to filter, Enter keeps it, Esc clears it. Typed values: Enter sets, Esc cancels.".to_string(),
        t.dim,
    ));
    lines.push(Line::styled(
        "Keys are remappable in the config file: [tui.keys.<mode>] \"key\" = \"action\"."
            .to_string(),
        t.dim,
    ));
    lines
}

fn help(app: &App, scroll: u16, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let r = centered(area, 84, area.height.saturating_sub(2));
    f.render_widget(Clear, r);
    let lines = help_lines(app);
    let max_scroll = (lines.len() as u16).saturating_sub(r.height.saturating_sub(2));
    let blk = block(t, "Help: keys (Esc closes, j/k scroll)", true);
    f.render_widget(
        Paragraph::new(lines)
            .block(blk)
            .scroll((scroll.min(max_scroll), 0))
            .style(t.base),
        r,
    );
}

/// A panel overlay's rectangle: `w` wide and up to 30 rows, centred, on wide screens; the whole
/// screen less a margin on narrow ones.
pub fn panel_rect(area: Rect, w: u16) -> Rect {
    if is_wide(area) {
        centered(area, w, 30.min(area.height.saturating_sub(2)))
    } else {
        centered(
            area,
            area.width.saturating_sub(2),
            area.height.saturating_sub(2),
        )
    }
}

fn thresholds(app: &App, p: &ThresholdPanel, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let r = panel_rect(area, 96);
    f.render_widget(Clear, r);
    let blk = block(t, "Thresholds: tune, preview, apply", true);
    let inner = blk.inner(r);
    f.render_widget(blk, r);
    let cur = app.stats.thresholds;

    let mut lines: Vec<Line> = Vec::new();
    for field in ThresholdField::ALL {
        let sel = field == p.field;
        let now = field.get(&cur);
        let draft = field.get(&p.draft);
        let fmt = |v: f32| {
            if field == ThresholdField::PCut {
                format!("{v:.2}")
            } else {
                format!("{v:.1}")
            }
        };
        let mut spans = vec![
            Span::styled(if sel { " ▸ " } else { "   " }, t.marker),
            Span::styled(
                format!("{:<15}", field.label_for(app.head_in_force)),
                if sel { t.title } else { t.base },
            ),
            Span::styled(format!("{:>6}", fmt(now)), t.dim),
            Span::styled(" → ", t.dim),
        ];
        match (&p.input, sel) {
            (Some(_), true) => spans.push(Span::styled("      ", t.base)),
            _ => spans.push(Span::styled(
                format!("{:>6}", fmt(draft)),
                if draft != now { t.marker } else { t.base },
            )),
        }
        lines.push(Line::from(spans));
    }
    let flips = match &p.preview {
        Some(fp) => flips_line(t, " If applied: ", fp),
        None => Line::styled(" If applied: computing…", t.dim),
    };
    lines.push(Line::raw(""));
    lines.push(flips);
    let (pn, rn) = app
        .agreement
        .as_ref()
        .map_or((None, None), precision_recall);
    let (pd, rd) = p
        .draft_agreement
        .as_ref()
        .map_or((None, None), precision_recall);
    let labelled = app.agreement.map_or(0, |a| a.labelled);
    lines.push(Line::from(vec![
        Span::styled(format!(" Against {} labels: ", fmt_count(labelled)), t.dim),
        Span::styled(
            format!("precision {} → {}", fmt_prob(pn), fmt_prob(pd)),
            t.chart_a,
        ),
        Span::raw("  "),
        Span::styled(
            format!("recall {} → {}", fmt_prob(rn), fmt_prob(rd)),
            t.chart_b,
        ),
    ]));
    if let Some(err) = &p.input_error {
        lines.push(Line::styled(format!(" {err}"), t.error));
    }
    let head_h = lines.len() as u16;
    let [top, chart_a] =
        Layout::vertical([Constraint::Length(head_h), Constraint::Min(0)]).areas(inner);
    f.render_widget(Paragraph::new(lines), top);
    if let Some(input) = &p.input {
        let idx = ThresholdField::ALL
            .iter()
            .position(|x| *x == p.field)
            .unwrap_or(0) as u16;
        let input_area = Rect::new(
            top.x + 27,
            top.y + idx,
            10.min(top.width.saturating_sub(27)),
            1,
        );
        f.render_widget(input, input_area);
    }
    if chart_a.height >= 5 {
        sweep_chart(app, p, f, chart_a);
    }
}

fn sweep_chart(app: &App, p: &ThresholdPanel, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let prec: Vec<(f64, f64)> = p
        .sweep
        .iter()
        .filter_map(|pt| {
            pt.agreement
                .as_ref()
                .and_then(|a| precision_recall(a).0)
                .map(|v| (pt.value as f64, v))
        })
        .collect();
    let rec: Vec<(f64, f64)> = p
        .sweep
        .iter()
        .filter_map(|pt| {
            pt.agreement
                .as_ref()
                .and_then(|a| precision_recall(a).1)
                .map(|v| (pt.value as f64, v))
        })
        .collect();
    let (x0, x1) = match (p.sweep.first(), p.sweep.last()) {
        (Some(a), Some(b)) if b.value > a.value => (a.value as f64, b.value as f64),
        _ => (0.0, 1.0),
    };
    let x_now = p.sweep_field.get(&p.draft) as f64;
    let marker = vec![(x_now, 0.0), (x_now, 1.0)];
    let title = format!(
        "Sweep of {}: precision and recall against labels (│ = draft)",
        p.sweep_field.label_for(app.head_in_force)
    );
    let datasets = vec![
        Dataset::default()
            .name("precision")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.chart_a)
            .data(&prec),
        Dataset::default()
            .name("recall")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.chart_b)
            .data(&rec),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.marker)
            .data(&marker),
    ];
    let fmt = |v: f64| format!("{v:.1}");
    let chart = Chart::new(datasets)
        .block(block(t, &title, false))
        .x_axis(
            Axis::default()
                .bounds([x0, x1])
                .labels(vec![
                    Span::styled(fmt(x0), t.dim),
                    Span::styled(fmt((x0 + x1) / 2.0), t.dim),
                    Span::styled(fmt(x1), t.dim),
                ])
                .style(t.border),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, 1.0])
                .labels(vec![Span::styled("0", t.dim), Span::styled("1", t.dim)])
                .style(t.border),
        );
    if prec.is_empty() && rec.is_empty() {
        let msg = if p.sweep.iter().all(|pt| pt.agreement.is_none()) {
            "computing…"
        } else {
            "no labels yet: label a few records (a/x) to see precision and recall"
        };
        f.render_widget(
            Paragraph::new(msg)
                .style(t.dim)
                .block(block(t, &title, false)),
            area,
        );
        return;
    }
    f.render_widget(chart, area);
}

fn export(app: &App, d: &ExportDialog, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let r = centered(area, 64, 10);
    f.render_widget(Clear, r);
    let blk = block(t, "Export kept / removed / pending", true);
    let inner = blk.inner(r);
    f.render_widget(blk, r);
    let choice = |on: bool, s: &'static str| {
        if on {
            Span::styled(format!("[{s}]"), t.marker.add_modifier(Modifier::BOLD))
        } else {
            Span::styled(format!(" {s} "), t.dim)
        }
    };
    let sel = |field: ExportField| {
        if d.field == field {
            Span::styled(" ▸ ", t.marker)
        } else {
            Span::raw("   ")
        }
    };
    let lines = vec![
        Line::from(vec![
            sel(ExportField::Format),
            Span::styled("format  ", t.base),
            choice(d.format == ExportFormat::Jsonl, "jsonl"),
            Span::raw(" "),
            choice(d.format == ExportFormat::Json, "json"),
        ]),
        Line::from(vec![
            sel(ExportField::Layout),
            Span::styled("layout  ", t.base),
            choice(d.layout == ExportLayout::PerInput, "per input"),
            Span::raw(" "),
            choice(d.layout == ExportLayout::Upstream, "upstream"),
        ]),
        Line::from(vec![
            sel(ExportField::Path),
            Span::styled("folder  ", t.base),
            Span::styled(
                if d.input.is_some() {
                    String::new()
                } else {
                    d.path.display().to_string()
                },
                t.title,
            ),
        ]),
        Line::raw(""),
        Line::styled(
            "   Same files as `cyberfilter export`; written from the store,",
            t.dim,
        ),
        Line::styled("   so the run keeps going while it writes.", t.dim),
    ];
    f.render_widget(Paragraph::new(lines), inner);
    if let Some(input) = &d.input {
        let a = Rect::new(inner.x + 11, inner.y + 2, inner.width.saturating_sub(12), 1);
        f.render_widget(input, a);
    }
}

/// What a change would flip (threshold move or added rule): what enters and leaves each verdict.
pub fn flips_line<'a>(t: &crate::tui::theme::Theme, lead: &'a str, fp: &FlipPreview) -> Line<'a> {
    Line::from(vec![
        Span::styled(lead, t.dim),
        Span::styled(
            format!(
                "kept +{} −{}",
                fmt_count(fp.to_kept),
                fmt_count(fp.from_kept)
            ),
            t.kept,
        ),
        Span::raw("  "),
        Span::styled(
            format!(
                "removed +{} −{}",
                fmt_count(fp.to_removed),
                fmt_count(fp.from_removed)
            ),
            t.removed,
        ),
        Span::raw("  "),
        Span::styled(
            format!(
                "pending +{} −{}",
                fmt_count(fp.to_pending),
                fmt_count(fp.from_pending)
            ),
            t.pending,
        ),
    ])
}
