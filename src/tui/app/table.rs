//! The records table: its state (page, selection, follow), the filters and sort, and the
//! keys that move and query it.

use super::*;

/// The records table: a window of rows around the viewport, paged from the engine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableView {
    /// Loaded rows, starting at `rows_offset` in the filtered, sorted list.
    pub rows: Vec<RecordRow>,
    pub rows_offset: u64,
    /// Rows matching the filter in all.
    pub total: u64,
    pub selected: u64,
    /// First row shown.
    pub top: u64,
    /// Keep the selection on the newest row as rows arrive.
    pub follow: bool,
    /// A page has arrived at least once.
    pub loaded: bool,
    /// Position in `rows` by record id, so verdict events update rows in O(1).
    pub(super) by_id: HashMap<String, usize>,
}

impl TableView {
    pub fn row(&self, index: u64) -> Option<&RecordRow> {
        index
            .checked_sub(self.rows_offset)
            .and_then(|i| self.rows.get(i as usize))
    }

    pub fn selected_row(&self) -> Option<&RecordRow> {
        self.row(self.selected)
    }
}

pub(super) fn cycle<T: Copy + PartialEq>(current: Option<T>, all: &[T]) -> Option<T> {
    match current {
        None => all.first().copied(),
        Some(c) => {
            let i = all.iter().position(|x| *x == c).unwrap_or(all.len());
            all.get(i + 1).copied()
        }
    }
}

impl App {
    pub(super) fn table_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        let page = self.table_capacity().max(1);
        match action {
            Action::Down => self.move_selection(1, fx),
            Action::Up => self.move_selection(-1, fx),
            Action::PageDown => self.move_selection(page as i64, fx),
            Action::PageUp => self.move_selection(-(page as i64), fx),
            Action::Top => {
                self.table.follow = false;
                self.table.selected = 0;
                self.scroll_to_selection(fx);
            }
            Action::Bottom => {
                self.table.follow = true;
                self.table.selected = self.table.total.saturating_sub(1);
                self.scroll_to_selection(fx);
            }
            Action::Open => match self.table.selected_row() {
                Some(row) => {
                    let id = row.id.clone();
                    self.open_record(id, fx);
                }
                // Keys can outrun the page: open the row when it arrives.
                None if self.table.selected < self.table.total => {
                    self.pending_open = Some(self.table.selected);
                    if !self.query_in_flight {
                        self.query_now(fx);
                    }
                }
                None => {}
            },
            Action::CycleVerdict => {
                self.filter.verdict = cycle(
                    self.filter.verdict,
                    &[Verdict::Kept, Verdict::Removed, Verdict::Pending],
                );
                self.filter_changed(fx);
            }
            Action::CycleTier => {
                self.filter.tier =
                    cycle(self.filter.tier, &[Tier::Keep, Tier::Verify, Tier::Reject]);
                self.filter_changed(fx);
            }
            Action::CycleSource => {
                self.filter.source = cycle(self.filter.source, &SourceKind::ALL);
                self.filter_changed(fx);
            }
            Action::CycleDecidedBy => {
                self.filter.decided_by = cycle(
                    self.filter.decided_by,
                    &[DecidedBy::Rule, DecidedBy::Llm, DecidedBy::Human],
                );
                self.filter_changed(fx);
            }
            Action::CycleLabelled => {
                self.filter.labelled = cycle(self.filter.labelled, &[true, false]);
                self.filter_changed(fx);
            }
            Action::OpenGroup => self.open_group(fx),
            Action::ToggleDuplicates => {
                self.filter.duplicates = !self.filter.duplicates;
                self.filter_changed(fx);
            }
            Action::SplitDuplicate | Action::ChooseRepresentative => {
                if let Some(row) = self.table.selected_row() {
                    // `#seq`: this record only, not every record with its id.
                    let id = format!("#{}", row.seq);
                    let (cmd, what) = match action {
                        Action::SplitDuplicate => (
                            Command::SplitDuplicate { id, split: true },
                            "split off its group",
                        ),
                        _ => (
                            Command::ChooseRepresentative { id },
                            "now represents its group",
                        ),
                    };
                    self.set_status(StatusKind::Info, format!("{}: {what}", row.id));
                    fx.push(Effect::Send(cmd));
                    self.query_now(fx);
                }
            }
            Action::CycleSort => {
                self.sort = match self.sort {
                    SortBy::Arrival => SortBy::Score,
                    SortBy::Score => SortBy::Uncertainty,
                    SortBy::Uncertainty => SortBy::Arrival,
                };
                self.filter_changed(fx);
            }
            Action::ClearFilters => {
                self.filter = RecordFilter::default();
                self.sort = SortBy::Arrival;
                self.filter_changed(fx);
            }
            Action::LabelKeep => self.label_selected(Some(Label::Keep), fx),
            Action::LabelReject => self.label_selected(Some(Label::Reject), fx),
            Action::LabelClear => self.label_selected(None, fx),
            Action::UndoLabel => self.undo(fx),
            Action::Reverify => {
                if let Some(row) = self.table.selected_row() {
                    let id = row.id.clone();
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

    pub(super) fn filter_changed(&mut self, fx: &mut Vec<Effect>) {
        self.reset_selection();
        self.query_now(fx);
    }

    pub(super) fn reset_selection(&mut self) {
        self.table.selected = 0;
        self.table.top = 0;
        self.table.follow = false;
        self.table.rows.clear();
        self.table.by_id.clear();
        self.table.rows_offset = 0;
        self.table.loaded = false;
    }

    pub(super) fn move_selection(&mut self, delta: i64, fx: &mut Vec<Effect>) {
        let last = self.table.total.saturating_sub(1);
        let next = (self.table.selected as i64 + delta).clamp(0, last as i64) as u64;
        self.table.selected = next;
        self.table.follow = self.table.total > 0 && next == last && delta > 0;
        self.scroll_to_selection(fx);
    }

    /// Keeps the selection in view and fetches the page around the viewport if it is not loaded.
    pub(super) fn scroll_to_selection(&mut self, fx: &mut Vec<Effect>) {
        let cap = self.table_capacity().max(1);
        let t = &mut self.table;
        if t.selected < t.top {
            t.top = t.selected;
        } else if t.selected >= t.top + cap {
            t.top = t.selected + 1 - cap;
        }
        // Do not leave blank rows below the last one when the table could be full.
        if t.total > 0 && t.top + cap > t.total {
            t.top = t.total.saturating_sub(cap);
        }
        let want_end = (t.top + cap).min(t.total);
        let have_end = t.rows_offset + t.rows.len() as u64;
        if t.loaded && (t.top < t.rows_offset || want_end > have_end) {
            self.query_now(fx);
        }
    }

    /// Refreshes the table when new verdicts made it stale, at most every `refresh_every`.
    pub(super) fn maybe_refresh(&mut self, fx: &mut Vec<Effect>) {
        if !self.table_stale || self.frozen || self.query_in_flight {
            return;
        }
        let due = self
            .last_query_at
            .is_none_or(|t| self.now.saturating_sub(t) >= self.refresh_every);
        if due {
            self.query_now(fx);
        }
    }

    pub(super) fn query_now(&mut self, fx: &mut Vec<Effect>) {
        let cap = self.table_capacity().max(1);
        // One screen above and two below the viewport, so scrolling rarely waits.
        let offset = self.table.top.saturating_sub(cap);
        let limit = cap * 4;
        self.query_gen += 1;
        self.query_offset = offset;
        self.query_in_flight = true;
        self.table_stale = false;
        self.last_query_at = Some(self.now);
        fx.push(Effect::Query {
            gen: self.query_gen,
            filter: self.filter.clone(),
            sort: self.sort,
            offset,
            limit,
        });
    }

    pub(super) fn on_page(&mut self, gen: u64, page: RecordPage, fx: &mut Vec<Effect>) {
        if gen != self.query_gen {
            return;
        }
        self.query_in_flight = false;
        let t = &mut self.table;
        t.rows = page.rows;
        t.by_id = t
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
        t.rows_offset = self.query_offset;
        t.total = page.total;
        t.loaded = true;
        if t.follow && t.total > 0 {
            t.selected = t.total - 1;
        }
        t.selected = t.selected.min(t.total.saturating_sub(1));
        // Following new rows can move the viewport past the loaded ones: that fetches again.
        self.scroll_to_selection(fx);
        if let Some(index) = self.pending_open.take() {
            match self.table.row(index).map(|r| r.id.clone()) {
                Some(id) => {
                    self.table.selected = index;
                    self.open_record(id, fx);
                }
                None if self.table.total == 0 || index >= self.table.total => {
                    self.record = None;
                    let msg = if self.review.is_some() {
                        "queue empty: nothing left to review (Esc leaves the queue)"
                    } else {
                        "no more records"
                    };
                    self.set_status(StatusKind::Info, msg);
                }
                None => self.pending_open = Some(index),
            }
        }
    }
}
