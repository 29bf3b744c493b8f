//! The verdict-head panel (`H`): the head in force, what it learned from, how well it
//! separates (cross-validated), what its last retrain changed, and when it retrains next.

use super::{block, centered};
use crate::engine::types::HeadStatus;
use crate::store::paths::timestamp;
use crate::tui::app::{App, HeadPanel};
use crate::tui::format::fmt_count;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(app: &App, p: &HeadPanel, f: &mut Frame, area: Rect) {
    let t = &app.theme;
    let r = centered(area, 84, 22.min(area.height.saturating_sub(2)));
    f.render_widget(Clear, r);
    let blk = block(t, "Verdict head: r retrain · o on/off · Esc closes", true);
    let lines = match &p.status {
        None => vec![Line::styled(" asking the engine…", t.dim)],
        Some(st) => lines(app, st),
    };
    f.render_widget(
        Paragraph::new(lines)
            .block(blk)
            .wrap(Wrap { trim: false })
            .style(t.base),
        r,
    );
}

fn row<'a>(app: &App, name: &'a str, value: Vec<Span<'a>>) -> Line<'a> {
    let mut spans = vec![Span::styled(format!(" {name:<13}"), app.theme.dim)];
    spans.extend(value);
    Line::from(spans)
}

fn counts(n: [usize; 2]) -> String {
    format!(
        "{:>6}  ({} +, {} −)",
        fmt_count((n[0] + n[1]) as u64),
        fmt_count(n[0] as u64),
        fmt_count(n[1] as u64)
    )
}

/// Label sources as the curator knows them.
fn source_name(s: &str) -> &str {
    match s {
        "curator" => "your labels",
        "weak" => "weak (rules)",
        "seed" => "seed file",
        other => other,
    }
}

fn lines<'a>(app: &App, st: &'a HeadStatus) -> Vec<Line<'a>> {
    let t = &app.theme;
    let mut out = Vec::new();
    if let Some(why) = &st.off_reason {
        out.push(row(app, "state", vec![Span::styled("off", t.error)]));
        out.push(row(app, "why", vec![Span::styled(why.as_str(), t.base)]));
        out.push(Line::raw(""));
        out.push(Line::styled(
            " Verify-tier records are decided by the model's zero-shot P(yes).",
            t.dim,
        ));
        return out;
    }
    let state = match (&st.version, st.enabled) {
        (None, _) => Span::styled("none trained yet (labels train it)", t.pending),
        (Some(_), true) => Span::styled("on: P(head) decides the verify band", t.kept),
        (Some(_), false) => Span::styled("switched off: P(yes) decides (o turns it on)", t.pending),
    };
    out.push(row(app, "state", vec![state]));
    if let Some(v) = &st.version {
        let mut spans = vec![Span::styled(v.as_str(), t.base)];
        if st.shipped_default {
            spans.push(Span::styled("  the shipped default for this model", t.dim));
        }
        out.push(row(app, "head", spans));
    }
    out.push(row(
        app,
        "cut",
        vec![Span::styled(
            format!("kept when P(head) ≥ {:.2} (T moves it)", st.cut),
            t.base,
        )],
    ));
    if let Some(key) = &st.features {
        out.push(row(
            app,
            "features",
            vec![Span::styled(key.as_str(), t.base)],
        ));
    }
    out.push(row(
        app,
        "records",
        vec![Span::styled(
            format!(
                "{} with stored features (a retrain rescores them, no model call)",
                fmt_count(st.records_with_features as u64)
            ),
            t.base,
        )],
    ));
    if let Some(m) = &st.metrics {
        let auc = m.cv_auc.map_or("CV AUC –".to_string(), |a| {
            format!("{}-fold CV AUC {a:.3}", m.folds)
        });
        out.push(row(
            app,
            "trained",
            vec![
                Span::styled(format!("{} UTC  ", timestamp(m.trained_at, " ")), t.base),
                Span::styled(auc, t.title),
            ],
        ));
        out.push(row(
            app,
            "examples",
            vec![Span::styled(
                counts([m.positives, m.examples - m.positives.min(m.examples)]),
                t.base,
            )],
        ));
        for (source, n) in &m.by_source {
            out.push(row(
                app,
                "",
                vec![
                    Span::styled(format!("{:<13}", source_name(source)), t.dim),
                    Span::styled(counts(*n), t.base),
                ],
            ));
        }
        let mut groups: Vec<(&String, &[usize; 2])> = m.by_group.iter().collect();
        groups.sort_by_key(|(_, n)| std::cmp::Reverse(n[0] + n[1]));
        let shown: Vec<String> = groups
            .iter()
            .take(6)
            .map(|(g, n)| format!("{g} {}", n[0] + n[1]))
            .collect();
        if !shown.is_empty() {
            let more = groups.len().saturating_sub(shown.len());
            let mut text = shown.join(" · ");
            if more > 0 {
                text.push_str(&format!(" · +{more} more"));
            }
            out.push(row(app, "by source", vec![Span::styled(text, t.dim)]));
        }
    }
    let flips = match st.last_flips {
        Some((k, r)) => vec![
            Span::styled(format!("+{} kept", fmt_count(k)), t.kept),
            Span::raw("  "),
            Span::styled(format!("+{} removed", fmt_count(r)), t.removed),
        ],
        None => vec![Span::styled("no retrain in this session yet", t.dim)],
    };
    out.push(row(app, "last change", flips));
    let mut next = format!(
        "after {} new labels ({} so far)",
        st.retrain_every, st.labels_since
    );
    if st.idle_left > 0 {
        next.push_str(&format!(
            "; {} weak/seed examples still to featurize",
            fmt_count(st.idle_left as u64)
        ));
    }
    out.push(row(app, "next retrain", vec![Span::styled(next, t.base)]));
    out
}
