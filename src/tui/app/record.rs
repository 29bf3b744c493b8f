//! The record view and the review queues: opening a record, stepping through records,
//! labelling and undo.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Text,
    Original,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordView {
    pub id: String,
    pub detail: Option<RecordDetail>,
    /// The engine answered that no such record exists.
    pub missing: bool,
    pub scroll: u16,
    pub pane: Pane,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewKind {
    /// Unlabelled records, closest to a threshold first.
    Uncertain,
    /// Unlabelled removed records, highest score first (the likeliest mistakes).
    Rejected,
}

impl ReviewKind {
    pub fn title(self) -> &'static str {
        match self {
            ReviewKind::Uncertain => "Review: most uncertain first",
            ReviewKind::Rejected => "Spot-check: rejected, highest score first",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub kind: ReviewKind,
    pub labelled: u64,
    pub(super) saved_filter: RecordFilter,
    pub(super) saved_sort: SortBy,
}

impl App {
    pub(super) fn open_record(&mut self, id: String, fx: &mut Vec<Effect>) {
        let pane = self.record.as_ref().map_or(Pane::Text, |r| r.pane);
        self.record = Some(RecordView {
            id: id.clone(),
            detail: None,
            missing: false,
            scroll: 0,
            pane,
        });
        fx.push(Effect::GetRecord { id });
    }

    pub(super) fn record_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        match action {
            Action::Down
            | Action::Up
            | Action::PageDown
            | Action::PageUp
            | Action::Top
            | Action::Bottom => {
                if let Some(rv) = self.record.as_mut() {
                    rv.scroll = match action {
                        Action::Down => rv.scroll.saturating_add(1),
                        Action::Up => rv.scroll.saturating_sub(1),
                        Action::PageDown => rv.scroll.saturating_add(10),
                        Action::PageUp => rv.scroll.saturating_sub(10),
                        Action::Top => 0,
                        _ => u16::MAX / 2,
                    };
                }
            }
            Action::SwitchPane => {
                if let Some(rv) = self.record.as_mut() {
                    rv.pane = match rv.pane {
                        Pane::Text => Pane::Original,
                        Pane::Original => Pane::Text,
                    };
                    rv.scroll = 0;
                }
            }
            Action::NextRecord => self.step_record(1, fx),
            Action::PrevRecord => self.step_record(-1, fx),
            Action::LabelKeep => self.label_open(Some(Label::Keep), fx),
            Action::LabelReject => self.label_open(Some(Label::Reject), fx),
            Action::LabelClear => self.label_open(None, fx),
            Action::UndoLabel => {
                self.undo(fx);
                if let Some(rv) = &self.record {
                    fx.push(Effect::GetRecord { id: rv.id.clone() });
                }
            }
            Action::Reverify => {
                if let Some(rv) = &self.record {
                    let id = rv.id.clone();
                    self.set_status(
                        StatusKind::Info,
                        format!("{id}: sent to the verifier again"),
                    );
                    fx.push(Effect::Send(Command::Reverify { id }));
                }
            }
            _ => {}
        }
    }

    pub(super) fn step_record(&mut self, delta: i64, fx: &mut Vec<Effect>) {
        let last = self.table.total.saturating_sub(1) as i64;
        let next = (self.table.selected as i64 + delta).clamp(0, last) as u64;
        if next == self.table.selected {
            return;
        }
        self.table.follow = false;
        self.table.selected = next;
        match self.table.row(next) {
            Some(row) => {
                let id = row.id.clone();
                self.open_record(id, fx);
                self.scroll_to_selection(fx);
            }
            None => {
                self.pending_open = Some(next);
                self.scroll_to_selection(fx);
                if !self.query_in_flight {
                    self.query_now(fx);
                }
            }
        }
    }

    pub(super) fn send_label(&mut self, id: String, label: Option<Label>, fx: &mut Vec<Effect>) {
        let what = label.map_or("cleared", |l| l.as_str());
        self.set_status(StatusKind::Info, format!("{id}: {what} (u undoes)"));
        self.labels_this_session += 1;
        if let Some(r) = self.review.as_mut() {
            r.labelled += 1;
        }
        // Show the label at once; the refresh that follows brings the engine's verdict.
        if let Some(row) = self
            .table
            .by_id
            .get(&id)
            .and_then(|&i| self.table.rows.get_mut(i))
        {
            row.label = label;
        }
        fx.push(Effect::Send(Command::Relabel { id, label }));
    }

    pub(super) fn label_selected(&mut self, label: Option<Label>, fx: &mut Vec<Effect>) {
        let Some(row) = self.table.selected_row() else {
            return;
        };
        let id = row.id.clone();
        self.send_label(id, label, fx);
        self.move_selection(1, fx);
        self.query_now(fx);
        self.request_agreement(fx);
    }

    /// Labels the open record and moves on: in a queue the labelled record leaves the filtered
    /// list, so the next one takes its index.
    pub(super) fn label_open(&mut self, label: Option<Label>, fx: &mut Vec<Effect>) {
        let Some(rv) = self.record.as_ref() else {
            return;
        };
        let id = rv.id.clone();
        self.send_label(id, label, fx);
        let stays_in_list = self.review.is_none() || label.is_none();
        let next = self.table.selected + u64::from(stays_in_list);
        self.table.follow = false;
        self.table.selected = next;
        self.pending_open = Some(next);
        self.scroll_to_selection(fx);
        self.query_now(fx);
        self.request_agreement(fx);
    }

    pub(super) fn undo(&mut self, fx: &mut Vec<Effect>) {
        fx.push(Effect::Send(Command::UndoLabel));
        self.set_status(StatusKind::Info, "last label change undone");
        self.query_now(fx);
        self.request_agreement(fx);
    }

    pub(super) fn start_review(&mut self, kind: ReviewKind, fx: &mut Vec<Effect>) {
        self.overlay = None;
        let (saved_filter, saved_sort) = match self.review.take() {
            Some(r) => (r.saved_filter, r.saved_sort),
            None => (self.filter.clone(), self.sort),
        };
        self.review = Some(Review {
            kind,
            labelled: 0,
            saved_filter,
            saved_sort,
        });
        self.filter = RecordFilter {
            labelled: Some(false),
            verdict: (kind == ReviewKind::Rejected).then_some(Verdict::Removed),
            ..RecordFilter::default()
        };
        self.sort = match kind {
            ReviewKind::Uncertain => SortBy::Uncertainty,
            ReviewKind::Rejected => SortBy::Score,
        };
        self.reset_selection();
        self.record = None;
        self.pending_open = Some(0);
        self.query_now(fx);
    }
}
