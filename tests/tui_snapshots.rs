//! Frame snapshots of every view at 80×24, 120×40 and 200×60, from a scripted session: the
//! fake engine reveals records in steps, the test verifier answers, keys drive the UI.

mod tui_support;

use crossterm::event::KeyCode;
use cyberfilter::tui::theme::Theme;
use tui_support::Harness;

async fn scripted(width: u16, height: u16) {
    let size = format!("{width}x{height}");
    let mut h = Harness::new(240, width, height, Theme::dark()).await;
    h.feed(6, 30).await;
    h.engine
        .error(
            "sample_data/capec_v3.9.xml",
            "line 812: unexpected end of <Attack_Pattern>",
        )
        .await;
    h.tick(300).await;
    insta::assert_snapshot!(format!("dashboard_{size}"), h.render());

    // Filters: verdict kept, sorted by score.
    h.keys("vo").await;
    insta::assert_snapshot!(format!("filtered_{size}"), h.render());
    h.keys("c").await;

    // Search while typing.
    h.keys("/sql").await;
    insta::assert_snapshot!(format!("search_{size}"), h.render());
    h.key(KeyCode::Enter).await;
    h.key(KeyCode::Esc).await;

    // Record view of the third row.
    h.keys("gjj").await;
    h.key(KeyCode::Enter).await;
    insta::assert_snapshot!(format!("record_{size}"), h.render());
    h.key(KeyCode::Esc).await;

    // Label a few records (keep, keep, reject, keep, reject), then tune thresholds.
    h.keys("gaaxax").await;
    h.keys("T").await;
    h.keys("ll").await;
    insta::assert_snapshot!(format!("thresholds_{size}"), h.render());
    h.key(KeyCode::Esc).await;

    h.keys("?").await;
    insta::assert_snapshot!(format!("help_{size}"), h.render());
    h.key(KeyCode::Esc).await;

    h.keys("E").await;
    insta::assert_snapshot!(format!("export_{size}"), h.render());
    h.key(KeyCode::Esc).await;

    h.keys("R").await;
    insta::assert_snapshot!(format!("review_{size}"), h.render());
}

#[tokio::test]
async fn views_at_80x24() {
    scripted(80, 24).await;
}

#[tokio::test]
async fn views_at_120x40() {
    scripted(120, 40).await;
}

#[tokio::test]
async fn views_at_200x60() {
    scripted(200, 60).await;
}

/// NO_COLOR: the mono theme paints no colour at all, and the selection and verdicts stay
/// visible through modifiers.
#[tokio::test]
async fn mono_theme_uses_no_colour_but_keeps_the_selection_visible() {
    use ratatui::style::{Color, Modifier};
    let mut h = Harness::new(60, 80, 24, Theme::mono()).await;
    h.feed(2, 20).await;
    h.render();
    let buf = h.terminal.backend().buffer().clone();
    for cell in buf.content() {
        assert_eq!(
            (cell.fg, cell.bg),
            (Color::Reset, Color::Reset),
            "coloured cell {cell:?}"
        );
    }
    // The selected (last) row is drawn reversed.
    let reversed_rows: Vec<u16> = (0..buf.area.height)
        .filter(|&y| {
            (1..buf.area.width - 1).all(|x| buf[(x, y)].modifier.contains(Modifier::REVERSED))
        })
        .collect();
    assert_eq!(reversed_rows.len(), 1, "{reversed_rows:?}");
}
