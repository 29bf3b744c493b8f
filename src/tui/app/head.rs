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

impl HeadPanel {
    /// One action on the panel: the command for the engine, or why there is none.
    pub fn handle(&self, action: Action) -> Result<Option<Command>, String> {
        let st = self
            .status
            .as_ref()
            .ok_or("waiting for the engine's head state")?;
        if let Some(why) = &st.off_reason {
            return Err(format!("no verdict head in this run: {why}"));
        }
        Ok(match action {
            Action::RetrainHead => Some(Command::RetrainHead),
            Action::ToggleHead if st.version.is_none() => {
                return Err("no head trained yet: label a few records or press r".into())
            }
            Action::ToggleHead => Some(Command::SetHeadEnabled(!st.enabled)),
            _ => None,
        })
    }
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
        match p.handle(action) {
            Ok(Some(cmd)) => {
                if matches!(cmd, Command::RetrainHead) {
                    self.set_status(StatusKind::Info, "retraining the head…");
                }
                fx.push(Effect::Send(cmd));
            }
            Ok(None) => {}
            Err(why) => self.set_status(StatusKind::Warn, why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panel_turns_keys_into_engine_commands_or_says_why_not() {
        let mut p = HeadPanel::default();
        assert!(p
            .handle(Action::RetrainHead)
            .unwrap_err()
            .contains("waiting"));
        p.status = Some(HeadStatus {
            off_reason: Some("--head off".into()),
            ..HeadStatus::default()
        });
        assert!(p
            .handle(Action::RetrainHead)
            .unwrap_err()
            .contains("--head off"));
        p.status = Some(HeadStatus::default());
        assert!(matches!(
            p.handle(Action::RetrainHead),
            Ok(Some(Command::RetrainHead))
        ));
        assert!(p
            .handle(Action::ToggleHead)
            .unwrap_err()
            .contains("no head"));
        p.status = Some(HeadStatus {
            version: Some("v1".into()),
            enabled: true,
            ..HeadStatus::default()
        });
        assert!(matches!(
            p.handle(Action::ToggleHead),
            Ok(Some(Command::SetHeadEnabled(false)))
        ));
        assert!(matches!(p.handle(Action::Down), Ok(None)));
    }
}
