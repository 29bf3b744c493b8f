//! Behaviour of a whole session against the fake engine, driven by keys.

mod tui_support;

use crossterm::event::{KeyCode, KeyModifiers};
use cyberfilter::decide::{Label, Verdict};
use cyberfilter::engine::types::SortBy;
use cyberfilter::tui::app::{EngineState, Overlay};
use cyberfilter::tui::theme::Theme;
use cyberfilter::tui::Msg;
use tui_support::Harness;

async fn started(records: usize) -> Harness {
    let mut h = Harness::new(records, 120, 40, Theme::dark()).await;
    h.feed(4, 25).await;
    h
}

#[tokio::test]
async fn table_follows_new_rows_and_pages_with_flat_memory() {
    let mut h = started(300).await;
    let app = h.app();
    assert_eq!(app.table.total, 100);
    assert!(app.table.follow);
    assert_eq!(app.table.selected, 99);
    let cap = app.table_capacity();
    // Only a window around the viewport is held, never the whole run.
    assert!(
        app.table.rows.len() as u64 <= cap * 4,
        "{} rows held",
        app.table.rows.len()
    );
    h.feed(4, 50).await;
    assert_eq!(h.app().table.total, 300);
    assert_eq!(h.app().table.selected, 299);
    assert_eq!(h.app().table.selected_row().unwrap().id, "CAPEC-399");
    assert!(h.engine.state.lock().unwrap().max_query_limit <= cap * 4);
    // Jumping to the top fetches that page.
    h.keys("g").await;
    assert_eq!(h.app().table.selected_row().unwrap().id, "CVE-2024-01000");
    assert!(!h.app().table.follow);
}

#[tokio::test]
async fn freeze_stops_the_table_but_not_the_panels() {
    let mut h = started(300).await;
    h.keys("f").await;
    let before: Vec<String> = h.app().table.rows.iter().map(|r| r.id.clone()).collect();
    let read_before = h.app().stats.records_read;
    h.feed(3, 20).await;
    let after: Vec<String> = h.app().table.rows.iter().map(|r| r.id.clone()).collect();
    assert_eq!(before, after, "the frozen table moved");
    assert_eq!(h.app().table.total, 100);
    assert!(
        h.app().stats.records_read > read_before,
        "panels stopped updating"
    );
    assert!(h.render().contains("FROZEN"));
    h.keys("f").await;
    assert_eq!(h.app().table.total, 160);
}

#[tokio::test]
async fn filters_sorts_and_search_reach_the_engine() {
    let mut h = started(200).await;
    h.keys("v").await; // kept
    assert!(h
        .app()
        .table
        .rows
        .iter()
        .all(|r| r.verdict == Verdict::Kept));
    h.keys("v").await; // removed
    assert!(h
        .app()
        .table
        .rows
        .iter()
        .all(|r| r.verdict == Verdict::Removed));
    h.keys("o").await; // sort by score
    assert_eq!(h.app().sort, SortBy::Score);
    let scores: Vec<f32> = h.app().table.rows.iter().map(|r| r.score).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    h.keys("c").await;
    assert_eq!(h.app().table.total, 100);
    h.keys("/capec-1").await;
    assert!(h.app().search.is_some());
    let ids: Vec<String> = h.app().table.rows.iter().map(|r| r.id.clone()).collect();
    assert!(
        !ids.is_empty() && ids.iter().all(|i| i.starts_with("CAPEC-1")),
        "{ids:?}"
    );
    h.key(KeyCode::Enter).await;
    assert!(h.app().search.is_none());
    assert_eq!(h.app().filter.search.as_deref(), Some("capec-1"));
    // Esc with nothing open clears the search.
    h.key(KeyCode::Esc).await;
    assert_eq!(h.app().filter.search, None);
    assert_eq!(h.app().table.total, 100);
}

#[tokio::test]
async fn labels_go_to_the_engine_at_once_and_undo_restores() {
    let mut h = started(200).await;
    h.keys("g").await;
    let first = h.app().table.selected_row().unwrap().id.clone();
    h.keys("x").await;
    {
        let s = h.engine.state.lock().unwrap();
        assert_eq!(
            s.label_log.last().unwrap(),
            &(first.clone(), None, Some(Label::Reject))
        );
    }
    // Label and move on.
    assert_eq!(h.app().table.selected, 1);
    let row = h.app().table.row(0).unwrap();
    assert_eq!(
        (row.label, row.verdict),
        (Some(Label::Reject), Verdict::Removed)
    );
    h.keys("u").await;
    assert!(h.engine.state.lock().unwrap().label_log.is_empty());
    assert_eq!(h.app().table.row(0).unwrap().label, None);
    assert_eq!(h.app().stats.labelled, 0);
}

#[tokio::test]
async fn record_view_shows_the_decision_and_walks_records() {
    let mut h = started(200).await;
    h.keys("g").await;
    h.key(KeyCode::Enter).await;
    let d = h.app().record.as_ref().unwrap().detail.clone().unwrap();
    assert_eq!(d.row.id, "CVE-2024-01000");
    let screen = h.render();
    assert!(screen.contains(&d.why), "why missing");
    assert!(screen.contains("Score by rule"));
    h.keys("n").await;
    assert_eq!(h.app().record.as_ref().unwrap().id, "CVE-2024-01007");
    // Label keep in the record view: label sent, next record opened.
    h.keys("a").await;
    assert_eq!(h.app().record.as_ref().unwrap().id, "attack-pattern--004a");
    assert_eq!(
        h.engine.state.lock().unwrap().label_log.last().unwrap().0,
        "CVE-2024-01007"
    );
    h.key(KeyCode::Esc).await;
    assert!(h.app().record.is_none());
}

#[tokio::test]
async fn review_queue_walks_uncertain_unlabelled_records_then_restores_the_table() {
    let mut h = started(200).await;
    h.keys("v").await; // a filter that the queue must restore afterwards
    h.keys("R").await;
    assert_eq!(h.app().sort, SortBy::Uncertainty);
    let first = h.app().record.as_ref().unwrap().id.clone();
    let queue_len = h.app().table.total;
    h.keys("a").await;
    let second = h.app().record.as_ref().unwrap().id.clone();
    assert_ne!(first, second);
    // The labelled record left the queue; the next one took its place.
    assert_eq!(h.app().table.total, queue_len - 1);
    assert_eq!(h.app().table.selected, 0);
    h.keys("x").await;
    assert_eq!(h.app().review.as_ref().unwrap().labelled, 2);
    h.key(KeyCode::Esc).await;
    assert!(h.app().review.is_none());
    assert_eq!(h.app().filter.verdict, Some(Verdict::Kept));
    assert_eq!(h.app().sort, SortBy::Arrival);
    // Spot-check queue: only removed, unlabelled records, highest score first.
    h.keys("X").await;
    let d = h.app().record.as_ref().unwrap().detail.clone().unwrap();
    assert_eq!(d.row.verdict, Verdict::Removed);
    assert!(h
        .app()
        .table
        .rows
        .iter()
        .all(|r| r.verdict == Verdict::Removed && r.label.is_none()));
}

#[tokio::test]
async fn threshold_preview_matches_what_applying_does() {
    let mut h = started(200).await;
    h.keys("gaaxaxa").await; // some labels for precision/recall
    h.keys("T").await;
    h.keys("hhhh").await; // four steps of 0.5 down from the default high
    let (preview, draft) = match &h.app().overlay {
        Some(Overlay::Thresholds(p)) => (p.preview.unwrap(), p.draft),
        _ => panic!("no threshold panel"),
    };
    let target = cyberfilter::rules::Thresholds::default().high - 2.0;
    assert_eq!(draft.high, target);
    assert!(preview.to_kept > 0, "{preview:?}");
    let kept_before = h.app().stats.kept;
    let screen = h.render();
    assert!(
        screen.contains(&format!("kept +{} −0", preview.to_kept)),
        "{screen}"
    );
    h.key(KeyCode::Enter).await;
    assert_eq!(h.app().stats.thresholds.high, target);
    assert_eq!(h.app().last_redecided, Some(preview));
    // Lowering `high` only moves verify-tier records into keep: nothing leaves kept.
    assert_eq!(preview.to_removed, 0);
    assert_eq!(h.app().stats.kept, kept_before + preview.to_kept);
    assert_eq!(h.app().stats, h.engine.state.lock().unwrap().stats());
    // The table shows the new verdicts without a key press.
    let tier_ok = h
        .app()
        .table
        .rows
        .iter()
        .all(|r| r.label.is_some() || r.score < target || r.verdict == Verdict::Kept);
    assert!(tier_ok);
    // Typed value, rejected when not a number.
    h.keys("=").await;
    h.key(KeyCode::Backspace).await;
    h.key(KeyCode::Backspace).await;
    h.key(KeyCode::Backspace).await;
    h.keys("abc").await;
    h.key(KeyCode::Enter).await;
    match &h.app().overlay {
        Some(Overlay::Thresholds(p)) => assert!(p.input_error.is_some()),
        _ => panic!(),
    }
    h.key(KeyCode::Esc).await;
    h.key(KeyCode::Esc).await;
    assert!(h.app().overlay.is_none());
}

#[tokio::test]
async fn export_sends_the_chosen_format_and_reports_the_result() {
    let mut h = started(100).await;
    h.keys("E").await;
    h.keys("l").await; // json
    h.keys("e").await;
    for _ in 0..6 {
        h.key(KeyCode::Backspace).await;
    }
    h.keys("out/x").await;
    h.key(KeyCode::Enter).await;
    h.key(KeyCode::Enter).await;
    assert!(h.app().overlay.is_none());
    let status = h.app().status.as_ref().unwrap().text.clone();
    assert!(
        status.starts_with("exported ") && status.ends_with("records to out/x"),
        "{status}"
    );
    assert!(h.saw("Export"));
}

#[tokio::test]
async fn quit_stops_the_engine_and_waits_for_it() {
    let mut h = started(100).await;
    h.keys("?").await;
    h.key_mod(KeyCode::Char('c'), KeyModifiers::CONTROL).await;
    assert!(h.session.should_exit());
    assert!(h.saw("Stop"));
}

#[tokio::test]
async fn engine_failure_is_shown_and_q_then_leaves_at_once() {
    let (engine, commands, events) =
        tui_support::FakeEngine::spawn(tui_support::sample_records(10));
    drop(engine);
    let app = cyberfilter::tui::App::new(
        cyberfilter::tui::keymap::Keymap::default_keymap(),
        Theme::mono(),
        Default::default(),
    );
    let mut session = cyberfilter::tui::Session::new(app, commands, events);
    // The engine's channels close: simulate the engine task ending with an error.
    session.handle(Msg::EngineClosed);
    assert_eq!(session.app.engine, EngineState::Gone);
    session.handle(Msg::Key(crossterm::event::KeyEvent::new(
        KeyCode::Char('q'),
        KeyModifiers::NONE,
    )));
    assert!(session.should_exit());
}
