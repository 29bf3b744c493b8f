//! The suggest overlay: candidate rules mined from the session's labels (the engine runs the
//! same miner as `cyberfilter rules suggest --store`), the flips the selected candidate would
//! make if it were added (re-scored from stored text, as the threshold panel previews a
//! threshold move), and a key that adds it to the session's rule file.

use super::*;
use crate::engine::suggest::{SuggestedRule, Suggestions};

#[derive(Debug, Clone, Default)]
pub struct SuggestPanel {
    /// `None` while the engine mines; `Err` when it cannot (labels of one kind only).
    pub list: Option<Result<Suggestions, String>>,
    pub selected: usize,
    /// The flips of the selected candidate; `None` while the engine re-scores.
    pub preview: Option<Result<FlipPreview, String>>,
    pub(super) preview_gen: u64,
    /// An add is in flight (the next one waits for it).
    pub adding: bool,
    /// The rule file the last add wrote.
    pub added_to: Option<PathBuf>,
}

impl SuggestPanel {
    pub fn candidates(&self) -> &[SuggestedRule] {
        match &self.list {
            Some(Ok(s)) => &s.candidates,
            _ => &[],
        }
    }

    pub fn selected_rule(&self) -> Option<&SuggestedRule> {
        self.candidates().get(self.selected)
    }
}

impl App {
    pub(super) fn open_suggest(&mut self, fx: &mut Vec<Effect>) {
        self.overlay = Some(Overlay::Suggest(Box::default()));
        fx.push(Effect::Suggest);
    }

    pub(super) fn suggest_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        let Some(Overlay::Suggest(p)) = self.overlay.as_mut() else {
            return;
        };
        let n = p.candidates().len();
        let before = p.selected;
        match action {
            Action::Down | Action::NextField => p.selected = (p.selected + 1).min(n.max(1) - 1),
            Action::Up | Action::PrevField => p.selected = p.selected.saturating_sub(1),
            Action::PageDown => p.selected = (p.selected + 10).min(n.max(1) - 1),
            Action::PageUp => p.selected = p.selected.saturating_sub(10),
            Action::Top => p.selected = 0,
            Action::Bottom => p.selected = n.saturating_sub(1),
            Action::Reset => {
                p.list = None;
                p.preview = None;
                fx.push(Effect::Suggest);
                return;
            }
            Action::Apply => {
                if p.adding {
                    return;
                }
                let Some(rule) = p.selected_rule() else {
                    return;
                };
                let msg = format!("adding `{}` and re-scoring the run…", rule.name);
                fx.push(Effect::AddRule {
                    rule: rule.toml.clone(),
                });
                p.adding = true;
                return self.set_status(StatusKind::Info, msg);
            }
            _ => {}
        }
        if p.selected != before {
            self.request_rule_preview(fx);
        }
    }

    fn request_rule_preview(&mut self, fx: &mut Vec<Effect>) {
        let Some(Overlay::Suggest(p)) = self.overlay.as_mut() else {
            return;
        };
        p.preview = None;
        p.preview_gen += 1;
        if let Some(rule) = p.selected_rule() {
            fx.push(Effect::PreviewRule {
                gen: p.preview_gen,
                rule: rule.toml.clone(),
            });
        }
    }

    pub(super) fn on_suggestions(
        &mut self,
        list: Result<Suggestions, String>,
        fx: &mut Vec<Effect>,
    ) {
        let Some(Overlay::Suggest(p)) = self.overlay.as_mut() else {
            return;
        };
        p.list = Some(list);
        p.selected = 0;
        self.request_rule_preview(fx);
    }

    pub(super) fn on_rule_preview(&mut self, gen: u64, preview: Result<FlipPreview, String>) {
        if let Some(Overlay::Suggest(p)) = self.overlay.as_mut() {
            if p.preview_gen == gen {
                p.preview = Some(preview);
            }
        }
    }

    /// The engine added the rule (and sent `Redecided`) or said why not.
    pub(super) fn on_rule_added(&mut self, result: Result<PathBuf, String>, fx: &mut Vec<Effect>) {
        let refresh = match self.overlay.as_mut() {
            Some(Overlay::Suggest(p)) => {
                p.adding = false;
                p.added_to = result.as_ref().ok().cloned();
                true
            }
            _ => false,
        };
        match result {
            Ok(file) => {
                self.set_status(
                    StatusKind::Info,
                    format!("rule added to {}: the run re-scored", file.display()),
                );
                // The added phrase is matched now, so it leaves the list.
                if refresh {
                    if let Some(Overlay::Suggest(p)) = self.overlay.as_mut() {
                        p.list = None;
                        p.preview = None;
                    }
                    fx.push(Effect::Suggest);
                }
            }
            Err(e) => self.set_status(StatusKind::Error, format!("rule not added: {e}")),
        }
    }
}
