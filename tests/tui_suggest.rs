//! The suggest overlay against the fake engine (whose miner is the real one): `M` lists the
//! candidates mined from the session's labels, moving the selection previews the flips of
//! adding one, Enter adds it and the re-decided flips come back as for a threshold move.

mod tui_support;

use crossterm::event::KeyCode;
use cyberfilter::decide::Label;
use cyberfilter::tui::app::Overlay;
use cyberfilter::tui::theme::Theme;
use std::path::Path;
use tui_support::Harness;

#[tokio::test]
async fn suggest_lists_previews_and_adds_a_rule_from_the_labels() {
    let mut h = Harness::new(240, 120, 40, Theme::dark()).await;
    h.feed(6, 30).await;
    // The curator's labels on the first half: the ATT&CK techniques kept, everything else
    // rejected. The phrase "sample technique" separates them and no default rule matches it;
    // the unlabelled half is what adding it flips.
    {
        let mut s = h.engine.state.lock().unwrap();
        let n = s.revealed / 2;
        for r in &mut s.records[..n] {
            r.label = Some(if r.text.contains("Sample technique") {
                Label::Keep
            } else {
                Label::Reject
            });
        }
    }
    h.keys("M").await;
    let (pos, preview) = {
        let Some(Overlay::Suggest(p)) = &h.app().overlay else {
            panic!("no suggest overlay")
        };
        let list = p.list.clone().expect("mined").expect("candidates");
        assert!(list.kept > 0 && list.rejected > 0, "{list:?}");
        let pos = list
            .candidates
            .iter()
            .position(|c| c.phrase == "sample technique")
            .unwrap_or_else(|| panic!("{:?}", list.candidates));
        assert_eq!(list.candidates[pos].neg, 0);
        // The first candidate's flips were asked for as soon as the list came.
        (pos, p.preview.clone())
    };
    assert!(matches!(preview, Some(Ok(_))), "{preview:?}");
    for _ in 0..pos {
        h.keys("j").await;
    }
    let want = {
        let Some(Overlay::Suggest(p)) = &h.app().overlay else {
            unreachable!()
        };
        assert_eq!(p.selected, pos);
        let rule = p.selected_rule().unwrap().toml.clone();
        let s = h.engine.state.lock().unwrap();
        let want = s.score_flips(&s.rule_scores(&rule).unwrap());
        assert_eq!(
            p.preview,
            Some(Ok(want)),
            "the selected candidate's preview"
        );
        want
    };
    assert!(want.to_kept + want.to_pending > 0, "{want:?}");
    insta::assert_snapshot!("suggest_120x40", h.render());

    h.key(KeyCode::Enter).await;
    assert_eq!(h.app().last_redecided, Some(want), "flips reported");
    let Some(Overlay::Suggest(p)) = &h.app().overlay else {
        panic!("the overlay closed")
    };
    assert_eq!(p.added_to.as_deref(), Some(Path::new("fake.rules.toml")));
    assert!(h.render().contains("last rule added to fake.rules.toml"));
    assert!(h.engine.state.lock().unwrap().saw("AddRule"));
    h.key(KeyCode::Esc).await;
    assert!(h.app().overlay.is_none());
}
