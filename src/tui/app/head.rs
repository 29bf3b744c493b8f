//! The verdict-head panel: what the head learned from and how well, what its last retrain or
//! switch changed, and the keys to retrain it now or to turn it off and on. The engine owns
//! the head; the panel asks for its state when it opens and after every head event.

use super::*;
use crate::engine::types::HeadStatus;

#[derive(Debug, Clone, Default)]
pub struct HeadPanel {
    /// The engine's last answer (None until it comes).
    pub status: Option<HeadStatus>,
}

impl App {
    pub(super) fn open_head(&mut self, fx: &mut Vec<Effect>) {
        self.overlay = Some(Overlay::Head(Box::default()));
        fx.push(Effect::HeadStatus);
    }

    /// After a head event or a re-decision: the panel, when open, asks again.
    pub(super) fn refresh_head_panel(&mut self, fx: &mut Vec<Effect>) {
        if matches!(self.overlay, Some(Overlay::Head(_))) {
            fx.push(Effect::HeadStatus);
        }
    }

    pub(super) fn on_head_status(&mut self, status: HeadStatus) {
        if let Some(Overlay::Head(p)) = self.overlay.as_mut() {
            p.status = Some(status);
        }
    }

    pub(super) fn head_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        let Some(Overlay::Head(p)) = self.overlay.as_ref() else {
            return;
        };
        let Some(st) = p.status.as_ref() else {
            return self.set_status(StatusKind::Warn, "waiting for the engine's head state");
        };
        if let Some(why) = &st.off_reason {
            let msg = format!("no verdict head in this run: {why}");
            return self.set_status(StatusKind::Warn, msg);
        }
        match action {
            Action::RetrainHead => {
                fx.push(Effect::Send(Command::RetrainHead));
                self.set_status(StatusKind::Info, "retraining the head…");
            }
            Action::ToggleHead if st.version.is_none() => self.set_status(
                StatusKind::Warn,
                "no head trained yet: label a few records or press r",
            ),
            Action::ToggleHead => {
                fx.push(Effect::Send(Command::SetHeadEnabled(!st.enabled)));
            }
            _ => {}
        }
    }
}
