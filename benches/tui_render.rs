//! Frame render time of the workbench (budget: < 5 ms at 200×60). Renders a fully populated
//! App into ratatui's TestBackend: the dashboard, the record view and the threshold panel.

use criterion::{criterion_group, criterion_main, Criterion};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use cyberfilter::decide::{DecidedBy, Verdict};
use cyberfilter::engine::types::*;
use cyberfilter::record::SourceKind;
use cyberfilter::rules::{RuleHit, Thresholds, Tier};
use cyberfilter::tui::app::{App, Effect, Msg, SessionInfo};
use cyberfilter::tui::keymap::Keymap;
use cyberfilter::tui::theme::Theme;
use cyberfilter::tui::ui;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::hint::black_box;
use std::time::Duration;

fn row(i: u64) -> RecordRow {
    RecordRow {
        seq: i as i64,
        id: format!("CVE-2024-{:05}", i),
        name: String::new(),
        source: SourceKind::ALL[(i % 7) as usize],
        kind: "cve".into(),
        file: "sample_data/nvdcve-2.0-2024.json".into(),
        score: (i % 13) as f32 * 0.75 - 1.0,
        p_yes: (i % 3 == 0).then_some((i % 100) as f32 / 100.0),
        p_head: None,
        tier: [Tier::Keep, Tier::Verify, Tier::Reject][(i % 3) as usize],
        verdict: [Verdict::Kept, Verdict::Removed, Verdict::Pending][(i % 3) as usize],
        decided_by: Some([DecidedBy::Rule, DecidedBy::Llm, DecidedBy::Human][(i % 3) as usize]),
        label: None,
        rules: vec!["sqli".into(), "rce".into(), "cwe_ref".into()],
        group: None,
    }
}

/// An app that has seen 10 minutes of stats, 40 files, errors and a full page of rows.
fn populated(width: u16, height: u16) -> App {
    let mut app = App::new(
        Keymap::default_keymap(),
        Theme::dark(),
        SessionInfo {
            title: "runs/bench.cfstore".into(),
            resumed: false,
        },
    );
    app.update(Msg::Resize { width, height });
    let mut gen = 0;
    for e in app.start() {
        if let Effect::Query { gen: g, .. } = e {
            gen = g;
        }
    }
    for s in 0..600u64 {
        app.update(Msg::Engine(EngineEvent::Stats(StatsSnapshot {
            elapsed: Duration::from_secs(s),
            records_read: s * 900,
            bytes_read: s * 900 * 1200,
            records_per_sec: 800.0 + (s % 17) as f64 * 20.0,
            mb_per_sec: 1.0 + (s % 11) as f64 * 0.1,
            kept: s * 300,
            removed: s * 550,
            pending: s * 50,
            keep: s * 300,
            verify: s * 100,
            reject: s * 500,
            verifier_queue: s % 40,
            batch_fill: 0.8,
            batch_latency_ms: 700.0,
            llm_records_per_sec: 6.0 + (s % 5) as f64,
            rss_bytes: 90 << 20,
            thresholds: Thresholds::default(),
            ..StatsSnapshot::default()
        })));
    }
    app.update(Msg::Engine(EngineEvent::Files(
        (0..40)
            .map(|i| FileProgress {
                file: format!("feeds/nvdcve-2.0-{i:02}.json.gz"),
                bytes_done: i * 1000,
                bytes_total: 40_000,
                records: i * 100,
                errors: i % 3,
                done: i % 4 == 0,
            })
            .collect(),
    )));
    for i in 0..200 {
        app.update(Msg::Engine(EngineEvent::Error {
            file: "feeds/capec.xml".into(),
            message: format!("line {i}: unexpected end of element"),
        }));
    }
    let total = 540_000;
    let cap = app.table_capacity();
    let offset = (total - cap).saturating_sub(cap);
    app.update(Msg::Page {
        gen,
        page: RecordPage {
            rows: (offset..offset + cap * 4).map(row).collect(),
            total,
        },
    });
    app
}

fn detail(id: &str) -> RecordDetail {
    let text = "A SQL injection in the login form of ExampleCMS 4.2 allows remote attackers to execute arbitrary SQL commands via the user parameter. ".repeat(12);
    RecordDetail {
        row: row(5),
        matches: (0..12)
            .map(|k| TextMatch {
                start: k * 133 + 2,
                end: k * 133 + 15,
                rule: "sqli".into(),
                negative: false,
            })
            .collect(),
        text,
        hits: (0..8)
            .map(|k| RuleHit {
                rule: format!("rule_{k}"),
                category: "attack".into(),
                count: 2,
                contribution: 1.5 - k as f32 * 0.4,
            })
            .collect(),
        locator: format!("feeds/nvd.json#5@{id}"),
        model: Some("qwen2.5-1.5b-instruct-4bit".into()),
        original: Ok(serde_json::to_string_pretty(&serde_json::json!({"cve": {"id": id, "descriptions": [{"lang": "en", "value": "x".repeat(2000)}]}})).unwrap()),
        why: "score 4.5 in [2, 6): P(yes) 0.81 ≥ cut 0.50".into(),
    }
}

fn bench(c: &mut Criterion) {
    for (w, h) in [(200u16, 60u16), (80, 24)] {
        let app = populated(w, h);
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        c.bench_function(&format!("dashboard_{w}x{h}"), |b| {
            b.iter(|| {
                term.draw(|f| ui::draw(black_box(&app), f)).unwrap();
            })
        });
    }
    let mut app = populated(200, 60);
    app.update(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
    let id = app
        .record
        .as_ref()
        .map(|r| r.id.clone())
        .unwrap_or_default();
    app.update(Msg::Detail {
        id: id.clone(),
        detail: Some(detail(&id)),
    });
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    c.bench_function("record_200x60", |b| {
        b.iter(|| {
            term.draw(|f| ui::draw(black_box(&app), f)).unwrap();
        })
    });

    let mut app = populated(200, 60);
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('T'),
        KeyModifiers::NONE,
    )));
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    c.bench_function("thresholds_200x60", |b| {
        b.iter(|| {
            term.draw(|f| ui::draw(black_box(&app), f)).unwrap();
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
