//! Header, footer and the live panels: throughput, verifier, counts, files, errors.

use super::{bar, block, head, tail};
use crate::tui::action::Action;
use crate::tui::app::{precision_recall, App, EngineState, StatusKind};
use crate::tui::format::{fmt_bytes, fmt_count, fmt_duration, fmt_prob, fmt_rate};
use crate::tui::keymap::Mode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};
use ratatui::Frame;

pub fn header(app: &App, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let s = &app.stats;
    let (state, state_style) = match app.engine {
        EngineState::Running => ("● running", t.kept),
        EngineState::Paused => ("‖ paused", t.pending),
        EngineState::Finished => ("✓ done", t.kept),
        EngineState::Stopping => ("… stopping", t.warn),
        EngineState::Gone => ("✗ engine gone", t.error),
    };
    let (done, total) = app.files.iter().fold((0u64, 0u64), |(d, tt), fp| {
        (d + fp.bytes_done, tt + fp.bytes_total)
    });
    let files_done = app.files.iter().filter(|fp| fp.done).count();
    let pct = if total > 0 {
        done as f64 / total as f64 * 100.0
    } else {
        0.0
    };
    let th = s.thresholds;
    let mut spans = vec![
        Span::styled(" cyberfilter ", app.theme.header),
        Span::raw(" "),
        Span::styled(state, state_style),
        Span::raw("  "),
        Span::styled(fmt_duration(s.elapsed), t.base),
        Span::styled(
            format!(
                "  files {files_done}/{} {pct:.0}%  {} rec",
                app.files.len(),
                fmt_count(s.records_read)
            ),
            t.base,
        ),
        Span::styled(
            format!("  high {} low {} P≥{:.2}", th.high, th.low, th.p_yes_cut),
            t.dim,
        ),
    ];
    if app.frozen {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(
            " FROZEN ",
            t.marker.add_modifier(ratatui::style::Modifier::REVERSED),
        ));
    }
    let used: usize = spans.iter().map(|s| s.width()).sum();
    let title = if app.session.resumed {
        format!("{} (resumed)", app.session.title)
    } else {
        app.session.title.clone()
    };
    let title = &title;
    let room = (area.width as usize).saturating_sub(used + 2);
    if room > 8 && !title.is_empty() {
        let shown = tail(title, room);
        let pad = room - shown.chars().count();
        spans.push(Span::raw(" ".repeat(pad + 1)));
        spans.push(Span::styled(shown, t.dim));
    }
    f.render_widget(Paragraph::new(Line::from(spans)).style(t.base), area);
}

/// The footer: the current mode's main keys, from the keymap, and the status message.
pub fn footer(app: &App, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let mode = app.mode();
    let actions: &[Action] = match mode {
        Mode::Table | Mode::Global if app.search.is_some() => &[],
        Mode::Table | Mode::Global => &[
            Action::Help,
            Action::Search,
            Action::Open,
            Action::LabelKeep,
            Action::LabelReject,
            Action::UndoLabel,
            Action::CycleVerdict,
            Action::CycleSort,
            Action::Freeze,
            Action::OpenThresholds,
            Action::ReviewUncertain,
            Action::OpenExport,
            Action::Quit,
        ],
        Mode::Record => &[
            Action::LabelKeep,
            Action::LabelReject,
            Action::LabelClear,
            Action::UndoLabel,
            Action::NextRecord,
            Action::PrevRecord,
            Action::SwitchPane,
            Action::Close,
            Action::Help,
        ],
        Mode::Thresholds => &[
            Action::NextField,
            Action::Increase,
            Action::Decrease,
            Action::TypeValue,
            Action::Apply,
            Action::Reset,
            Action::Close,
        ],
        Mode::Export => &[
            Action::NextField,
            Action::Increase,
            Action::TypeValue,
            Action::Apply,
            Action::Close,
        ],
        Mode::Head => &[Action::RetrainHead, Action::ToggleHead, Action::Close],
        Mode::Group => &[
            Action::Down,
            Action::Up,
            Action::ChooseRepresentative,
            Action::SplitDuplicate,
            Action::Close,
        ],
        Mode::Suggest => &[
            Action::Down,
            Action::Up,
            Action::Apply,
            Action::Reset,
            Action::Close,
        ],
        Mode::Help => &[Action::Down, Action::Up, Action::Close],
    };
    let mut spans: Vec<Span> = Vec::new();
    if app.search.is_some() {
        spans.push(Span::styled(" Enter ", t.key));
        spans.push(Span::styled(" keep search ", t.dim));
        spans.push(Span::styled(" Esc ", t.key));
        spans.push(Span::styled(" clear ", t.dim));
    }
    for a in actions {
        if let Some(k) = app.keymap.keys_for(mode, *a).first() {
            spans.push(Span::styled(format!(" {k} "), t.key));
            spans.push(Span::styled(format!(" {} ", a.short()), t.dim));
        }
    }
    let status = app.status_text().map(|s| {
        let style = match s.kind {
            StatusKind::Info => t.base,
            StatusKind::Warn => t.warn,
            StatusKind::Error => t.error,
        };
        (s.text.clone(), style)
    });
    let width = area.width as usize;
    let status_w = status
        .as_ref()
        .map_or(0, |(s, _)| s.chars().count().min(width * 2 / 3) + 2);
    let mut used = 0;
    let mut keep = Vec::new();
    // Keys in pairs (key, word); drop whole pairs that do not fit beside the status.
    for pair in spans.chunks(2) {
        let w: usize = pair.iter().map(|s| s.width()).sum();
        if used + w + status_w > width {
            break;
        }
        used += w;
        keep.extend_from_slice(pair);
    }
    if let Some((text, style)) = status {
        let room = width.saturating_sub(used + 1);
        let text = head(&text, room);
        keep.push(Span::raw(
            " ".repeat(room.saturating_sub(text.chars().count()) + 1),
        ));
        keep.push(Span::styled(text, style));
    }
    f.render_widget(Paragraph::new(Line::from(keep)).style(t.base), area);
}

/// Narrow screens: three small panels in a row.
pub fn strip(app: &App, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let s = &app.stats;
    let [a, b, c] = Layout::horizontal([
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
    ])
    .areas(area);

    let blk = block(t, "Throughput", false);
    let inner = blk.inner(a);
    f.render_widget(blk, a);
    let [l1, l2, l3] = Layout::vertical([Constraint::Length(1); 3]).areas(inner);
    f.render_widget(
        Paragraph::new(format!(
            "{} rec/s {} MB/s",
            fmt_rate(s.records_per_sec),
            fmt_rate(s.mb_per_sec)
        ))
        .style(t.base),
        l1,
    );
    spark(app, f, l2, |x| x.records_per_sec, t.chart_a);
    f.render_widget(
        Paragraph::new(format!(
            "{} · {}",
            fmt_count(s.records_read),
            fmt_bytes(s.bytes_read)
        ))
        .style(t.dim),
        l3,
    );

    let blk = block(t, "Verifier", false);
    let inner = blk.inner(b);
    f.render_widget(blk, b);
    let w = inner.width.saturating_sub(10) as usize;
    let lines = vec![
        Line::from(vec![
            Span::styled("fill ", t.dim),
            Span::styled(bar(s.batch_fill, w.min(12)), t.gauge),
            Span::styled(format!(" {:.0}%", s.batch_fill * 100.0), t.base),
        ]),
        Line::styled(
            format!(
                "queue {} · {} rec/s",
                fmt_count(s.verifier_queue),
                fmt_rate(s.llm_records_per_sec)
            ),
            t.base,
        ),
        Line::styled(
            format!(
                "{:.0} ms · mem {}",
                s.batch_latency_ms,
                fmt_bytes(s.rss_bytes)
            ),
            t.dim,
        ),
    ];
    f.render_widget(Paragraph::new(lines), inner);

    let blk = block(t, "Verdicts", false);
    let inner = blk.inner(c);
    f.render_widget(blk, c);
    let (p, r) = app
        .agreement
        .as_ref()
        .map_or((None, None), precision_recall);
    let lines = vec![
        Line::from(vec![
            Span::styled(format!("kept {}", fmt_count(s.kept)), t.kept),
            Span::raw(" "),
            Span::styled(format!("rm {}", fmt_count(s.removed)), t.removed),
        ]),
        Line::from(vec![
            Span::styled(format!("pend {}", fmt_count(s.pending)), t.pending),
            Span::styled(
                format!(" err {}", fmt_count(s.errors)),
                if s.errors > 0 { t.error } else { t.dim },
            ),
        ]),
        Line::styled(
            format!(
                "lab {} P {} R {}",
                fmt_count(s.labelled),
                fmt_prob(p),
                fmt_prob(r)
            ),
            t.human,
        ),
    ];
    f.render_widget(Paragraph::new(lines), inner);
}

fn spark(
    app: &App,
    f: &mut Frame,
    area: Rect,
    pick: impl Fn(&crate::tui::app::Sample) -> f64,
    style: Style,
) {
    let n = area.width as usize;
    let skip = app.history.len().saturating_sub(n);
    let data: Vec<u64> = app
        .history
        .iter()
        .skip(skip)
        .map(|x| (pick(x) * 100.0).max(0.0).round() as u64)
        .collect();
    f.render_widget(Sparkline::default().data(&data).style(style), area);
}

/// Wide screens: the column of panels beside the table.
pub fn side(app: &App, f: &mut Frame, area: Rect) {
    let h = area.height;
    let (tp_h, err_h) = if h >= 50 { (14, 8) } else { (8, 5) };
    let [tp, ver, cnt, files, errs] = Layout::vertical([
        Constraint::Length(tp_h),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Min(3),
        Constraint::Length(err_h),
    ])
    .areas(area);
    throughput(app, f, tp);
    verifier(app, f, ver);
    counts(app, f, cnt);
    files_panel(app, f, files);
    errors_panel(app, f, errs);
}

fn throughput(app: &App, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let s = &app.stats;
    let blk = block(t, "Throughput", false);
    let inner = blk.inner(area);
    f.render_widget(blk, area);
    let half = inner.height.saturating_sub(2) / 2;
    let [l1, g1, l2, g2] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(half),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .areas(inner);
    let peak = app
        .history
        .iter()
        .map(|x| x.records_per_sec)
        .fold(0.0, f64::max);
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(
                format!("{} records/s", fmt_rate(s.records_per_sec)),
                t.chart_a,
            ),
            Span::styled(
                format!(
                    "  peak {}  total {}",
                    fmt_rate(peak),
                    fmt_count(s.records_read)
                ),
                t.dim,
            ),
        ])),
        l1,
    );
    spark(app, f, g1, |x| x.records_per_sec, t.chart_a);
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(format!("{} MB/s", fmt_rate(s.mb_per_sec)), t.chart_b),
            Span::styled(format!("  read {}", fmt_bytes(s.bytes_read)), t.dim),
        ])),
        l2,
    );
    spark(app, f, g2, |x| x.mb_per_sec, t.chart_b);
}

fn verifier(app: &App, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let s = &app.stats;
    let blk = block(t, "Verifier", false);
    let inner = blk.inner(area);
    f.render_widget(blk, area);
    let w = inner.width.saturating_sub(18) as usize;
    let [l1, l2, g, l4] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(2),
        Constraint::Length(1),
    ])
    .areas(inner);
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("batch fill ", t.dim),
            Span::styled(bar(s.batch_fill, w), t.gauge),
            Span::styled(format!(" {:>3.0}%", s.batch_fill * 100.0), t.base),
        ])),
        l1,
    );
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(format!("queue {}", fmt_count(s.verifier_queue)), t.base),
            // Records of failed batches waiting for their retry (shown only when some do).
            Span::styled(
                match s.verifier_retrying {
                    0 => String::new(),
                    n => format!(" +{} retrying", fmt_count(n)),
                },
                t.error,
            ),
            Span::styled(
                format!("  {} rec/s", fmt_rate(s.llm_records_per_sec)),
                t.chart_a,
            ),
            Span::styled(format!("  latency {:.0} ms", s.batch_latency_ms), t.base),
        ])),
        l2,
    );
    spark(app, f, g, |x| x.llm_records_per_sec, t.chart_a);
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(
                format!(
                    "calls {} · cache {} · ",
                    fmt_count(s.llm_calls),
                    fmt_count(s.cache_hits)
                ),
                t.dim,
            ),
            Span::styled(
                format!("errors {}", fmt_count(s.verifier_errors)),
                if s.verifier_errors > 0 {
                    t.error
                } else {
                    t.dim
                },
            ),
        ])),
        l4,
    );
}

fn counts(app: &App, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let s = &app.stats;
    let blk = block(t, "Counts", false);
    let inner = blk.inner(area);
    f.render_widget(blk, area);
    let (p, r) = app
        .agreement
        .as_ref()
        .map_or((None, None), precision_recall);
    let total = (s.kept + s.removed + s.pending).max(1) as f64;
    let pct = |n: u64| format!("{:>5.1}%", n as f64 / total * 100.0);
    let mut lines = vec![
        Line::from(vec![
            Span::styled("tier    ", t.dim),
            Span::styled(format!("keep {}", fmt_count(s.keep)), t.kept),
            Span::styled(" · ", t.dim),
            Span::styled(format!("verify {}", fmt_count(s.verify)), t.pending),
            Span::styled(" · ", t.dim),
            Span::styled(format!("reject {}", fmt_count(s.reject)), t.removed),
        ]),
        Line::from(vec![
            Span::styled("kept    ", t.dim),
            Span::styled(format!("{:>10} {}", fmt_count(s.kept), pct(s.kept)), t.kept),
        ]),
        Line::from(vec![
            Span::styled("removed ", t.dim),
            Span::styled(
                format!("{:>10} {}", fmt_count(s.removed), pct(s.removed)),
                t.removed,
            ),
        ]),
        Line::from(vec![
            Span::styled("pending ", t.dim),
            Span::styled(
                format!("{:>10} {}", fmt_count(s.pending), pct(s.pending)),
                t.pending,
            ),
        ]),
        Line::from(vec![
            Span::styled("labels  ", t.dim),
            Span::styled(
                format!(
                    "{:>10}  precision {}  recall {}",
                    fmt_count(s.labelled),
                    fmt_prob(p),
                    fmt_prob(r)
                ),
                t.human,
            ),
        ]),
        Line::from(vec![
            Span::styled("memory  ", t.dim),
            Span::styled(format!("{:>10}", fmt_bytes(s.rss_bytes)), t.base),
            Span::styled("  errors ", t.dim),
            Span::styled(
                fmt_count(s.errors),
                if s.errors > 0 { t.error } else { t.base },
            ),
        ]),
    ];
    if s.groups > 0 {
        // Before the memory line: groups of duplicates, their copies, verifier asks saved.
        let at = lines.len().saturating_sub(1);
        lines.insert(
            at,
            Line::from(vec![
                Span::styled("groups  ", t.dim),
                Span::styled(
                    format!(
                        "{:>10}  copies {}  verifier asks saved {}",
                        fmt_count(s.groups),
                        fmt_count(s.duplicates),
                        fmt_count(s.verifier_saved)
                    ),
                    t.base,
                ),
            ]),
        );
    }
    f.render_widget(Paragraph::new(lines), inner);
}

fn files_panel(app: &App, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let title = format!("Files {}", app.files.len());
    let blk = block(t, &title, false);
    let inner = blk.inner(area);
    f.render_widget(blk, area);
    let w = inner.width as usize;
    let bar_w = 10;
    let name_w = w.saturating_sub(bar_w + 16).max(6);
    let rows = inner.height as usize;
    // Files still in progress first, then finished ones.
    let mut order: Vec<&crate::engine::types::FileProgress> = app.files.iter().collect();
    order.sort_by_key(|fp| fp.done);
    let lines: Vec<Line> = order
        .iter()
        .take(rows)
        .map(|fp| {
            let ratio = if fp.bytes_total > 0 {
                fp.bytes_done as f64 / fp.bytes_total as f64
            } else if fp.done {
                1.0
            } else {
                0.0
            };
            let name = std::path::Path::new(&fp.file)
                .file_name()
                .map_or(fp.file.clone(), |n| n.to_string_lossy().into_owned());
            let mark = if fp.done { "✓" } else { " " };
            let mut spans = vec![
                Span::styled(
                    format!("{mark}{:<name_w$} ", head(&name, name_w)),
                    if fp.done { t.dim } else { t.base },
                ),
                Span::styled(bar(ratio, bar_w), t.gauge),
                Span::styled(
                    format!(" {:>3.0}%{:>7}", ratio * 100.0, fmt_count(fp.records)),
                    t.base,
                ),
            ];
            if fp.errors > 0 {
                spans.push(Span::styled(format!(" ✗{}", fp.errors), t.error));
            }
            Line::from(spans)
        })
        .collect();
    if lines.is_empty() {
        f.render_widget(
            Paragraph::new("waiting for the first file…").style(t.dim),
            inner,
        );
    } else {
        f.render_widget(Paragraph::new(lines), inner);
    }
}

fn errors_panel(app: &App, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let title = format!(
        "Errors {}",
        fmt_count(app.stats.errors.max(app.errors.len() as u64))
    );
    let blk = block(t, &title, false);
    let inner = blk.inner(area);
    f.render_widget(blk, area);
    let rows = inner.height as usize;
    let w = inner.width as usize;
    let skip = app.errors.len().saturating_sub(rows);
    let lines: Vec<Line> = app
        .errors
        .iter()
        .skip(skip)
        .map(|e| {
            let name = std::path::Path::new(&e.file)
                .file_name()
                .map_or(e.file.clone(), |n| n.to_string_lossy().into_owned());
            let name = head(&name, w / 3);
            let msg_w = w.saturating_sub(name.chars().count() + 2);
            Line::from(vec![
                Span::styled(format!("{name}: "), t.error),
                Span::styled(head(&e.message, msg_w), t.base),
            ])
        })
        .collect();
    if lines.is_empty() {
        f.render_widget(Paragraph::new("none").style(t.dim), inner);
    } else {
        f.render_widget(Paragraph::new(lines), inner);
    }
}
