//! The group view (`m` on a row): the duplicate group of the selected record, its members with
//! their sources, files, verdicts and similarity to the representative. `P` makes the selected
//! member the representative and `S` splits it off, as on the table; the view then asks again.

use super::*;
use crate::engine::types::GroupView;

#[derive(Debug, Clone, Default)]
pub struct GroupPanel {
    /// The record the view was opened on (`#seq`: that record, not every one with its id).
    pub of: String,
    /// The engine's answer: `Some(None)` when the record is in no group.
    pub view: Option<Option<GroupView>>,
    pub selected: usize,
}

impl GroupPanel {
    /// One action on the view: the command for the engine, if any.
    pub fn handle(&mut self, action: Action) -> Option<Command> {
        let members = self
            .view
            .as_ref()
            .and_then(Option::as_ref)
            .map_or(&[][..], |v| &v.members[..]);
        let last = members.len().saturating_sub(1);
        match action {
            Action::Down => self.selected = (self.selected + 1).min(last),
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Top => self.selected = 0,
            Action::Bottom => self.selected = last,
            Action::SplitDuplicate | Action::ChooseRepresentative => {
                let m = members.get(self.selected)?;
                let id = format!("#{}", m.seq);
                return Some(match action {
                    Action::SplitDuplicate => Command::SplitDuplicate { id, split: true },
                    _ => Command::ChooseRepresentative { id },
                });
            }
            _ => {}
        }
        None
    }
}

impl App {
    pub(super) fn open_group(&mut self, fx: &mut Vec<Effect>) {
        let Some(row) = self.table.selected_row() else {
            return;
        };
        let of = format!("#{}", row.seq);
        fx.push(Effect::Group { id: of.clone() });
        self.overlay = Some(Overlay::Group(Box::new(GroupPanel {
            of,
            ..GroupPanel::default()
        })));
    }

    pub(super) fn on_group(&mut self, id: String, view: Option<GroupView>) {
        if let Some(Overlay::Group(p)) = self.overlay.as_mut() {
            if p.of == id {
                let n = view.as_ref().map_or(0, |v| v.members.len());
                p.selected = p.selected.min(n.saturating_sub(1));
                p.view = Some(view);
            }
        }
    }

    pub(super) fn group_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        let Some(Overlay::Group(p)) = self.overlay.as_mut() else {
            return;
        };
        if let Some(cmd) = p.handle(action) {
            let of = p.of.clone();
            fx.push(Effect::Send(cmd));
            // The group as it is now, and the table with it.
            fx.push(Effect::Group { id: of });
            self.query_now(fx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::types::GroupMember;

    fn member(seq: i64, rep: bool) -> GroupMember {
        GroupMember {
            seq,
            id: format!("CVE-2024-{seq:04}"),
            source: SourceKind::Cve5,
            file: "a.json".into(),
            verdict: Verdict::Kept,
            similarity: Some(0.9),
            via: "near".into(),
            representative: rep,
        }
    }

    #[test]
    fn the_view_moves_over_members_and_turns_keys_into_group_commands() {
        let mut p = GroupPanel::default();
        assert!(
            p.handle(Action::SplitDuplicate).is_none(),
            "nothing to split yet"
        );
        p.view = Some(Some(GroupView {
            rep_seq: 3,
            members: vec![member(3, true), member(9, false)],
        }));
        p.handle(Action::Down);
        p.handle(Action::Down);
        assert_eq!(p.selected, 1);
        assert!(matches!(
            p.handle(Action::ChooseRepresentative),
            Some(Command::ChooseRepresentative { id }) if id == "#9"
        ));
        p.handle(Action::Top);
        assert!(matches!(
            p.handle(Action::SplitDuplicate),
            Some(Command::SplitDuplicate { id, split: true }) if id == "#3"
        ));
    }
}
