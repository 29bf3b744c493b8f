//! The workbench state and its one `update` function. `update` never awaits and never does
//! I/O: it changes state and returns [`Effect`]s (commands for the engine, requests that
//! expect a reply, or exit). The runtime carries effects out and feeds replies back as
//! [`Msg`]s, so the whole UI can be driven and checked without a terminal.

use super::action::Action;
use super::keymap::{Keymap, Mode};
use super::theme::Theme;
use super::{format, layout};
use crate::decide::{DecidedBy, Label, Verdict};
use crate::engine::types::{
    Command, EngineEvent, ExportFormat, ExportLayout, FileProgress, FlipPreview, LabelAgreement,
    RecordDetail, RecordFilter, RecordPage, RecordRow, SortBy, StatsSnapshot,
};
use crate::record::SourceKind;
use crate::rules::{Thresholds, Tier};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;
use tui_textarea::TextArea;

// One file per view: its state and the handling of its keys (they extend `App`).
mod export;
mod group;
mod head;
mod record;
mod suggest;
mod table;
mod thresholds;

pub use export::{ExportDialog, ExportField};
pub use group::GroupPanel;
pub use head::HeadPanel;
pub use record::{Pane, RecordView, Review, ReviewKind};
pub use suggest::SuggestPanel;
#[cfg(test)]
use table::cycle;
pub use table::TableView;
pub use thresholds::{precision_recall, SweepPoint, ThresholdField, ThresholdPanel};

/// Samples kept for the time-series panels (one per stats event, a few per second).
pub const HISTORY_LEN: usize = 600;
/// Error lines kept for the errors panel.
pub const ERRORS_KEPT: usize = 200;
/// How long a status message stays in the footer.
const STATUS_TTL: Duration = Duration::from_secs(8);

/// Everything that can happen to the UI.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Resize {
        width: u16,
        height: u16,
    },
    /// Time since the session started (injected, so tests are deterministic).
    Tick(Duration),
    Engine(EngineEvent),
    /// The engine's event channel closed.
    EngineClosed,
    Page {
        gen: u64,
        page: RecordPage,
    },
    Detail {
        id: String,
        detail: Option<RecordDetail>,
    },
    Preview {
        gen: u64,
        preview: FlipPreview,
    },
    Agreement {
        tag: AgreementTag,
        gen: u64,
        value: LabelAgreement,
    },
    HeadStatus(crate::engine::types::HeadStatus),
    /// The duplicate group of the record asked for (`None`: in no group).
    Group {
        id: String,
        view: Option<crate::engine::types::GroupView>,
    },
    /// Candidate rules mined from the session's labels.
    Suggestions(Result<crate::engine::suggest::Suggestions, String>),
    /// The flips of adding the candidate asked for under `gen`.
    RulePreview {
        gen: u64,
        preview: Result<FlipPreview, String>,
    },
    /// A candidate added to the session's rule file (the file), or why not.
    RuleAdded(Result<PathBuf, String>),
    /// The engine dropped a reply channel (it stopped or failed that request).
    ReplyLost(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgreementTag {
    /// Against the thresholds in force.
    Current,
    /// Against the thresholds being tuned.
    Draft,
    /// One point of the sweep chart.
    Sweep(usize),
}

/// What `update` asks the runtime to do.
#[derive(Debug)]
pub enum Effect {
    /// A command without a reply.
    Send(Command),
    Query {
        gen: u64,
        filter: RecordFilter,
        sort: SortBy,
        offset: u64,
        limit: u64,
    },
    GetRecord {
        id: String,
    },
    Preview {
        gen: u64,
        thresholds: Thresholds,
    },
    Agreement {
        tag: AgreementTag,
        gen: u64,
        thresholds: Thresholds,
    },
    /// The verdict head's state, for the head panel.
    HeadStatus,
    /// The duplicate group of this record (`#seq`), for the group view.
    Group {
        id: String,
    },
    /// Mine candidate rules from the session's labels.
    Suggest,
    /// Preview adding this `[[rule]]` (re-scored from stored text).
    PreviewRule {
        gen: u64,
        rule: String,
    },
    /// Add this `[[rule]]` to the session's rule file and re-score the run.
    AddRule {
        rule: String,
    },
    /// Leave the main loop (the engine has stopped or is gone).
    Exit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineState {
    Running,
    Paused,
    /// All input read; the engine still answers queries.
    Finished,
    /// `Stop` sent, waiting for `Finished`.
    Stopping,
    /// The event channel closed without a clean stop.
    Gone,
}

/// One sample of the time-series panels.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    pub t: f64,
    pub records_per_sec: f64,
    pub mb_per_sec: f64,
    pub llm_records_per_sec: f64,
    pub batch_latency_ms: f64,
    pub batch_fill: f64,
    pub queue: u64,
    pub rss_bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ErrorLine {
    pub file: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub text: String,
    pub kind: StatusKind,
    pub at: Duration,
}

/// The help overlay: the keymap, scrolled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HelpView {
    pub scroll: u16,
}

impl HelpView {
    pub fn handle(&mut self, action: Action) {
        self.scroll = match action {
            Action::Down => self.scroll.saturating_add(1),
            Action::Up => self.scroll.saturating_sub(1),
            Action::PageDown => self.scroll.saturating_add(10),
            Action::PageUp => self.scroll.saturating_sub(10),
            Action::Top => 0,
            Action::Bottom => u16::MAX / 2,
            _ => self.scroll,
        };
    }
}

/// What is drawn over the dashboard; each holds its own state and handles its own keys
/// (`handle(action)`), returning what the App must do next.
#[derive(Debug, Clone)]
pub enum Overlay {
    Help(HelpView),
    Thresholds(Box<ThresholdPanel>),
    Export(Box<ExportDialog>),
    Head(Box<HeadPanel>),
    Group(Box<GroupPanel>),
    Suggest(Box<SuggestPanel>),
}

/// Fixed facts about the session shown in the header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionInfo {
    /// The store path or the inputs, as the curator gave them.
    pub title: String,
    pub resumed: bool,
}

pub struct App {
    pub keymap: Keymap,
    pub theme: Theme,
    pub session: SessionInfo,
    pub width: u16,
    pub height: u16,
    pub now: Duration,
    pub refresh_every: Duration,
    pub export_dir: PathBuf,

    pub engine: EngineState,
    pub stats: StatsSnapshot,
    pub history: VecDeque<Sample>,
    pub files: Vec<FileProgress>,
    pub errors: VecDeque<ErrorLine>,
    pub last_redecided: Option<FlipPreview>,
    pub agreement: Option<LabelAgreement>,
    agreement_gen: u64,

    pub filter: RecordFilter,
    pub sort: SortBy,
    pub table: TableView,
    pub frozen: bool,
    pub search: Option<TextArea<'static>>,
    query_gen: u64,
    query_offset: u64,
    query_in_flight: bool,
    table_stale: bool,
    last_query_at: Option<Duration>,
    /// Open the record at this index once the next page arrives.
    pending_open: Option<u64>,

    pub record: Option<RecordView>,
    pub review: Option<Review>,
    pub overlay: Option<Overlay>,
    pub status: Option<Status>,
    pub labels_this_session: u64,
    /// A verdict head decides the verify band (from the engine's last head event).
    pub head_in_force: bool,
}

impl App {
    pub fn new(keymap: Keymap, theme: Theme, session: SessionInfo) -> App {
        App {
            keymap,
            theme,
            session,
            width: 80,
            height: 24,
            now: Duration::ZERO,
            refresh_every: Duration::from_millis(250),
            export_dir: PathBuf::from("export"),
            engine: EngineState::Running,
            stats: StatsSnapshot::default(),
            history: VecDeque::with_capacity(HISTORY_LEN),
            files: Vec::new(),
            errors: VecDeque::new(),
            last_redecided: None,
            agreement: None,
            agreement_gen: 0,
            filter: RecordFilter::default(),
            sort: SortBy::Arrival,
            table: TableView {
                follow: true,
                ..TableView::default()
            },
            frozen: false,
            search: None,
            query_gen: 0,
            query_offset: 0,
            query_in_flight: false,
            table_stale: true,
            last_query_at: None,
            pending_open: None,
            record: None,
            review: None,
            overlay: None,
            status: None,
            labels_this_session: 0,
            head_in_force: false,
        }
    }

    /// The first requests of a session: the table page and the label agreement.
    pub fn start(&mut self) -> Vec<Effect> {
        let mut fx = Vec::new();
        self.query_now(&mut fx);
        self.request_agreement(&mut fx);
        fx
    }

    /// Which keymap section applies now.
    pub fn mode(&self) -> Mode {
        match &self.overlay {
            Some(Overlay::Help(_)) => Mode::Help,
            Some(Overlay::Thresholds(_)) => Mode::Thresholds,
            Some(Overlay::Export(_)) => Mode::Export,
            Some(Overlay::Head(_)) => Mode::Head,
            Some(Overlay::Group(_)) => Mode::Group,
            Some(Overlay::Suggest(_)) => Mode::Suggest,
            None if self.record.is_some() => Mode::Record,
            None => Mode::Table,
        }
    }

    /// Rows the table shows at the current size.
    pub fn table_capacity(&self) -> u64 {
        layout::table_capacity(self.width, self.height, self.search.is_some()) as u64
    }

    pub fn status_text(&self) -> Option<&Status> {
        self.status
            .as_ref()
            .filter(|s| self.now.saturating_sub(s.at) < STATUS_TTL)
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        let mut fx = Vec::new();
        match msg {
            Msg::Key(ev) => self.on_key(ev, &mut fx),
            Msg::Resize { width, height } => {
                self.width = width;
                self.height = height;
                self.scroll_to_selection(&mut fx);
            }
            Msg::Tick(now) => {
                self.now = now;
                self.maybe_refresh(&mut fx);
            }
            Msg::Engine(ev) => self.on_engine(ev, &mut fx),
            Msg::EngineClosed => {
                if self.engine == EngineState::Stopping {
                    fx.push(Effect::Exit);
                } else if self.engine == EngineState::Finished {
                    // A finished engine may close its channel; nothing went wrong.
                    self.engine = EngineState::Gone;
                    self.set_status(
                        StatusKind::Info,
                        "the engine has finished and closed; q quits",
                    );
                } else if self.engine != EngineState::Gone {
                    self.engine = EngineState::Gone;
                    self.set_status(
                        StatusKind::Error,
                        "the engine stopped unexpectedly (see the log); q quits",
                    );
                }
            }
            Msg::Page { gen, page } => self.on_page(gen, page, &mut fx),
            Msg::Detail { id, detail } => {
                if let Some(rv) = self.record.as_mut().filter(|r| r.id == id) {
                    rv.missing = detail.is_none();
                    rv.detail = detail;
                }
            }
            Msg::Preview { gen, preview } => {
                if let Some(Overlay::Thresholds(p)) = self.overlay.as_mut() {
                    if p.preview_gen == gen {
                        p.preview = Some(preview);
                    }
                }
            }
            Msg::Agreement { tag, gen, value } => self.on_agreement(tag, gen, value),
            Msg::HeadStatus(status) => self.on_head_status(status),
            Msg::Group { id, view } => self.on_group(id, view),
            Msg::Suggestions(list) => self.on_suggestions(list, &mut fx),
            Msg::RulePreview { gen, preview } => self.on_rule_preview(gen, preview),
            Msg::RuleAdded(result) => self.on_rule_added(result, &mut fx),
            Msg::ReplyLost(what) => {
                if what == "query" {
                    self.query_in_flight = false;
                }
                if self.engine != EngineState::Stopping {
                    self.set_status(
                        StatusKind::Warn,
                        format!("the engine did not answer a {what} request"),
                    );
                }
            }
        }
        fx
    }

    fn set_status(&mut self, kind: StatusKind, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            kind,
            at: self.now,
        });
    }

    // ----- keys -------------------------------------------------------------------------

    fn on_key(&mut self, ev: KeyEvent, fx: &mut Vec<Effect>) {
        let ctrl_c = ev.code == KeyCode::Char('c') && ev.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl_c {
            return self.quit(fx);
        }
        if self.search.is_some() {
            return self.on_search_key(ev, fx);
        }
        if let Some(Overlay::Thresholds(p)) = self.overlay.as_mut() {
            if p.input.is_some() {
                return self.on_threshold_input(ev, fx);
            }
        }
        if let Some(Overlay::Export(d)) = self.overlay.as_mut() {
            if d.input.is_some() {
                return d.on_input_key(ev);
            }
        }
        if let Some(action) = self.keymap.action(self.mode(), &ev) {
            self.perform(action, fx);
        }
    }

    pub fn perform(&mut self, action: Action, fx: &mut Vec<Effect>) {
        match action {
            Action::Quit => return self.quit(fx),
            Action::Help => {
                self.overlay = match self.overlay {
                    Some(Overlay::Help(_)) => None,
                    _ => Some(Overlay::Help(HelpView::default())),
                };
                return;
            }
            Action::Close => return self.close(fx),
            Action::Freeze => {
                self.frozen = !self.frozen;
                if self.frozen {
                    self.set_status(
                        StatusKind::Info,
                        "table frozen: panels keep updating; f resumes",
                    );
                } else {
                    self.set_status(StatusKind::Info, "table live again");
                    self.maybe_refresh(fx);
                }
                return;
            }
            Action::PauseEngine => {
                match self.engine {
                    EngineState::Running => {
                        fx.push(Effect::Send(Command::Pause));
                        self.engine = EngineState::Paused;
                        self.set_status(StatusKind::Info, "engine paused; p resumes");
                    }
                    EngineState::Paused => {
                        fx.push(Effect::Send(Command::Resume));
                        self.engine = EngineState::Running;
                        self.set_status(StatusKind::Info, "engine resumed");
                    }
                    _ => {}
                }
                return;
            }
            Action::Search if self.overlay.is_none() && self.record.is_none() => {
                let mut ta = TextArea::new(vec![self.filter.search.clone().unwrap_or_default()]);
                ta.move_cursor(tui_textarea::CursorMove::End);
                ta.set_cursor_line_style(ratatui::style::Style::default());
                ta.set_placeholder_text("id or text…");
                self.search = Some(ta);
                self.scroll_to_selection(fx);
                return;
            }
            Action::OpenThresholds => return self.open_thresholds(fx),
            Action::OpenSuggest => return self.open_suggest(fx),
            Action::OpenExport => {
                let dialog = ExportDialog::new(self.export_dir.clone());
                self.overlay = Some(Overlay::Export(Box::new(dialog)));
                return;
            }
            Action::ReviewUncertain => return self.start_review(ReviewKind::Uncertain, fx),
            Action::ReviewRejected => return self.start_review(ReviewKind::Rejected, fx),
            Action::OpenHead => return self.open_head(fx),
            _ => {}
        }
        match self.mode() {
            Mode::Help => self.help_action(action),
            Mode::Thresholds => self.threshold_action(action, fx),
            Mode::Export => self.export_action(action, fx),
            Mode::Head => self.head_action(action, fx),
            Mode::Group => self.group_action(action, fx),
            Mode::Suggest => self.suggest_action(action, fx),
            Mode::Record => self.record_action(action, fx),
            Mode::Table | Mode::Global => self.table_action(action, fx),
        }
    }

    fn quit(&mut self, fx: &mut Vec<Effect>) {
        match self.engine {
            EngineState::Gone => fx.push(Effect::Exit),
            // A second quit while stopping leaves at once.
            EngineState::Stopping => fx.push(Effect::Exit),
            _ => {
                self.engine = EngineState::Stopping;
                self.set_status(StatusKind::Info, "stopping the engine…");
                fx.push(Effect::Send(Command::Stop));
            }
        }
    }

    fn close(&mut self, fx: &mut Vec<Effect>) {
        if self.overlay.take().is_some() {
            return;
        }
        if self.record.take().is_some() {
            if let Some(review) = self.review.take() {
                self.filter = review.saved_filter;
                self.sort = review.saved_sort;
                self.set_status(
                    StatusKind::Info,
                    format!("review closed: {} labelled", review.labelled),
                );
                self.reset_selection();
                self.query_now(fx);
            }
            return;
        }
        if self.filter.search.is_some() {
            self.filter.search = None;
            self.reset_selection();
            self.query_now(fx);
        }
    }

    fn on_search_key(&mut self, ev: KeyEvent, fx: &mut Vec<Effect>) {
        let Some(ta) = self.search.as_mut() else {
            return;
        };
        match ev.code {
            KeyCode::Enter => {
                self.search = None;
            }
            KeyCode::Esc => {
                self.search = None;
                if self.filter.search.take().is_some() {
                    self.reset_selection();
                    self.query_now(fx);
                }
            }
            _ => {
                if ta.input(ev) {
                    let text = ta.lines().join("");
                    let new = (!text.is_empty()).then_some(text);
                    if new != self.filter.search {
                        self.filter.search = new;
                        self.reset_selection();
                        self.query_now(fx);
                    }
                }
            }
        }
    }

    fn help_action(&mut self, action: Action) {
        if let Some(Overlay::Help(h)) = self.overlay.as_mut() {
            h.handle(action);
        }
    }

    // ----- table ------------------------------------------------------------------------

    // ----- records and labels -------------------------------------------------------------

    // ----- thresholds -------------------------------------------------------------------

    // ----- export -----------------------------------------------------------------------

    // ----- engine events ----------------------------------------------------------------

    fn on_engine(&mut self, ev: EngineEvent, fx: &mut Vec<Effect>) {
        match ev {
            EngineEvent::Stats(s) => self.on_stats(s),
            EngineEvent::Files(files) => self.files = files,
            EngineEvent::Verdicts(rows) => {
                if !self.frozen {
                    // Re-decided rows change on screen now; new rows come with the refresh.
                    for row in rows {
                        if let Some(&i) = self.table.by_id.get(&row.id) {
                            if let Some(slot) = self.table.rows.get_mut(i) {
                                *slot = row.clone();
                            }
                        }
                        if let Some(d) = self
                            .record
                            .as_mut()
                            .and_then(|r| r.detail.as_mut())
                            .filter(|d| d.row.id == row.id)
                        {
                            d.row = row;
                        }
                    }
                }
                self.table_stale = true;
                self.maybe_refresh(fx);
            }
            EngineEvent::Redecided(flips) => {
                self.last_redecided = Some(flips);
                self.set_status(StatusKind::Info, format!("re-decided: {}", flips.summary()));
                self.table_stale = true;
                self.last_query_at = None;
                self.maybe_refresh(fx);
                self.request_agreement(fx);
                self.refresh_head_panel(fx);
            }
            EngineEvent::Head(h) => {
                self.head_in_force = h.version.is_some();
                self.set_status(StatusKind::Info, h.message);
                self.refresh_head_panel(fx);
            }
            EngineEvent::Error { file, message } => {
                if self.errors.len() == ERRORS_KEPT {
                    self.errors.pop_front();
                }
                self.errors.push_back(ErrorLine { file, message });
            }
            EngineEvent::Exported { out, records } => {
                self.set_status(
                    StatusKind::Info,
                    format!(
                        "exported {} records to {}",
                        format::fmt_count(records),
                        out.display()
                    ),
                );
            }
            EngineEvent::Drained(s) => {
                let pending = s.pending;
                self.on_stats(s);
                if matches!(self.engine, EngineState::Running | EngineState::Paused) {
                    self.engine = EngineState::Finished;
                    // Drained with records pending: no verifier answered them (none runs, or
                    // it failed); saying "verified" would hide them.
                    let msg = if pending == 0 {
                        "all input read and verified: keep curating, export, or q to quit"
                            .to_string()
                    } else {
                        format!(
                            "all input read; {} pending (no verifier answered them): label them, \
                             export, or q to quit",
                            format::fmt_count(pending)
                        )
                    };
                    self.set_status(StatusKind::Info, msg);
                }
                self.table_stale = true;
                self.maybe_refresh(fx);
            }
            EngineEvent::Finished(s) => {
                self.on_stats(s);
                if self.engine == EngineState::Stopping {
                    fx.push(Effect::Exit);
                } else {
                    self.engine = EngineState::Finished;
                    self.set_status(
                        StatusKind::Info,
                        "all input read: the engine is idle; keep curating or q to quit",
                    );
                    self.table_stale = true;
                    self.maybe_refresh(fx);
                }
            }
        }
    }

    fn on_stats(&mut self, s: StatsSnapshot) {
        if matches!(self.engine, EngineState::Running | EngineState::Paused) {
            self.engine = if s.paused {
                EngineState::Paused
            } else {
                EngineState::Running
            };
        }
        if self.history.len() == HISTORY_LEN {
            self.history.pop_front();
        }
        self.history.push_back(Sample {
            t: s.elapsed.as_secs_f64(),
            records_per_sec: s.records_per_sec,
            mb_per_sec: s.mb_per_sec,
            llm_records_per_sec: s.llm_records_per_sec,
            batch_latency_ms: s.batch_latency_ms,
            batch_fill: s.batch_fill,
            queue: s.verifier_queue,
            rss_bytes: s.rss_bytes,
        });
        self.stats = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycling_a_filter_walks_every_value_then_clears() {
        let all = [Verdict::Kept, Verdict::Removed, Verdict::Pending];
        let mut v = None;
        let mut seen = Vec::new();
        for _ in 0..4 {
            v = cycle(v, &all);
            seen.push(v);
        }
        assert_eq!(
            seen,
            vec![
                Some(Verdict::Kept),
                Some(Verdict::Removed),
                Some(Verdict::Pending),
                None
            ]
        );
    }

    #[test]
    fn threshold_fields_keep_low_at_most_high_and_cut_in_range() {
        let mut t = Thresholds::default();
        ThresholdField::Low.set(&mut t, 100.0);
        assert_eq!(t.low, t.high);
        ThresholdField::High.set(&mut t, -5.0);
        assert_eq!(t.high, t.low);
        ThresholdField::PCut.set(&mut t, 1.7);
        assert_eq!(t.p_yes_cut, 1.0);
        let xs = ThresholdField::PCut.sweep_values(&t);
        assert_eq!((xs.len(), xs[0], xs[10]), (11, 0.0, 1.0));
    }

    #[test]
    fn precision_recall_handles_empty_labels() {
        assert_eq!(precision_recall(&LabelAgreement::default()), (None, None));
        let a = LabelAgreement {
            labelled: 10,
            true_pos: 6,
            false_pos: 2,
            false_neg: 3,
            true_neg: 0,
        };
        let (p, r) = precision_recall(&a);
        assert!((p.unwrap() - 0.75).abs() < 1e-9);
        assert!((r.unwrap() - 6.0 / 9.0).abs() < 1e-9);
    }

    fn app() -> App {
        App::new(
            Keymap::default_keymap(),
            Theme::dark(),
            SessionInfo::default(),
        )
    }

    fn key(c: char) -> Msg {
        Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    #[test]
    fn quit_sends_stop_and_exits_only_when_the_engine_finished() {
        let mut a = app();
        let fx = a.update(key('q'));
        assert!(matches!(fx.as_slice(), [Effect::Send(Command::Stop)]));
        assert_eq!(a.engine, EngineState::Stopping);
        let fx = a.update(Msg::Engine(EngineEvent::Finished(StatsSnapshot::default())));
        assert!(matches!(fx.as_slice(), [Effect::Exit]));
    }

    #[test]
    fn drained_means_done_but_still_serving() {
        let mut a = app();
        a.update(Msg::Engine(EngineEvent::Drained(StatsSnapshot::default())));
        assert_eq!(a.engine, EngineState::Finished);
        // Quitting still stops the engine properly.
        assert!(matches!(
            a.update(key('q')).as_slice(),
            [Effect::Send(Command::Stop)]
        ));
    }

    #[test]
    fn a_finished_engine_closing_its_channel_is_not_an_error() {
        let mut a = app();
        a.update(Msg::Engine(EngineEvent::Finished(StatsSnapshot::default())));
        assert_eq!(a.engine, EngineState::Finished);
        a.update(Msg::EngineClosed);
        assert_eq!(a.engine, EngineState::Gone);
        assert_eq!(a.status.as_ref().unwrap().kind, StatusKind::Info);
        // Nothing to stop any more: q leaves at once.
        assert!(matches!(a.update(key('q')).as_slice(), [Effect::Exit]));
        let mut b = app();
        b.update(Msg::EngineClosed);
        assert_eq!(b.status.as_ref().unwrap().kind, StatusKind::Error);
    }

    #[test]
    fn esc_closes_the_overlay_before_anything_else() {
        let mut a = app();
        a.update(key('?'));
        a.update(key('E'));
        assert!(matches!(a.overlay, Some(Overlay::Export(_))));
        a.update(Msg::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)));
        assert!(a.overlay.is_none());
        // q in the overlay still quits (Esc is the way out of overlays).
        a.update(key('?'));
        assert!(matches!(
            a.update(key('q')).as_slice(),
            [Effect::Send(Command::Stop)]
        ));
    }

    #[test]
    fn stale_table_refreshes_at_most_every_interval_and_not_when_frozen() {
        let mut a = app();
        let fx = a.start();
        let gen = fx
            .iter()
            .find_map(|e| match e {
                Effect::Query { gen, .. } => Some(*gen),
                _ => None,
            })
            .unwrap();
        a.update(Msg::Page {
            gen,
            page: RecordPage::default(),
        });
        let fx = a.update(Msg::Engine(EngineEvent::Verdicts(vec![])));
        assert!(fx.is_empty(), "refreshed inside the interval: {fx:?}");
        let fx = a.update(Msg::Tick(Duration::from_millis(300)));
        assert!(matches!(fx.as_slice(), [Effect::Query { .. }]));
        let gen = match &fx[0] {
            Effect::Query { gen, .. } => *gen,
            _ => unreachable!(),
        };
        a.update(Msg::Page {
            gen,
            page: RecordPage::default(),
        });
        a.update(key('f'));
        a.update(Msg::Engine(EngineEvent::Verdicts(vec![])));
        assert!(a.update(Msg::Tick(Duration::from_secs(5))).is_empty());
        let fx = a.update(key('f'));
        assert!(matches!(fx.as_slice(), [Effect::Query { .. }]));
    }
}

#[cfg(test)]
mod typeahead_tests {
    use super::*;
    use crate::decide::Verdict;
    use crate::rules::Tier;

    pub(super) fn row(i: u64) -> RecordRow {
        RecordRow {
            seq: i as i64,
            id: format!("r{i}"),
            name: String::new(),
            source: SourceKind::Json,
            kind: "x".into(),
            file: "f".into(),
            score: 0.0,
            p_yes: None,
            p_head: None,
            tier: Tier::Reject,
            verdict: Verdict::Removed,
            decided_by: None,
            label: None,
            rules: vec![],
            group: None,
        }
    }

    /// Answers the query in `fx` the way an engine holding 1000 rows would.
    fn answer(a: &mut App, fx: &[Effect]) -> Vec<Effect> {
        let (gen, offset, limit) = fx
            .iter()
            .find_map(|e| match e {
                Effect::Query {
                    gen, offset, limit, ..
                } => Some((*gen, *offset, *limit)),
                _ => None,
            })
            .expect("a query");
        let rows = (offset..(offset + limit).min(1000)).map(row).collect();
        a.update(Msg::Page {
            gen,
            page: RecordPage { rows, total: 1000 },
        })
    }

    #[test]
    fn enter_typed_before_the_page_arrives_opens_the_row_when_it_does() {
        let mut a = App::new(
            Keymap::default_keymap(),
            Theme::dark(),
            SessionInfo::default(),
        );
        let fx = a.start();
        // Following the tail moves the viewport past the first page: a second query.
        let fx = answer(&mut a, &fx);
        let fx2 = answer(&mut a, &fx);
        assert!(fx2.is_empty());
        assert_eq!(a.table.selected, 999);
        let g = a.update(Msg::Key(KeyEvent::new(
            KeyCode::Char('g'),
            KeyModifiers::NONE,
        )));
        let enter = a.update(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
        assert!(enter.is_empty(), "{enter:?}");
        assert!(a.record.is_none());
        let fx = answer(&mut a, &g);
        assert_eq!(a.record.as_ref().unwrap().id, "r0");
        assert!(matches!(fx.as_slice(), [Effect::GetRecord { id }] if id == "r0"));
    }
}

#[cfg(test)]
mod duplicate_keys_tests {
    use super::*;

    fn key(c: char) -> Msg {
        Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::SHIFT))
    }

    #[test]
    fn d_filters_duplicates_and_s_p_split_or_promote_the_selected_record_only() {
        let mut a = App::new(
            Keymap::default_keymap(),
            Theme::dark(),
            SessionInfo::default(),
        );
        a.start();
        let fx = a.update(key('D'));
        assert!(a.filter.duplicates);
        let gen = fx
            .iter()
            .find_map(|e| match e {
                Effect::Query { gen, filter, .. } if filter.duplicates => Some(*gen),
                _ => None,
            })
            .expect("a duplicates-only query");
        let mut row = super::typeahead_tests::row(7);
        row.group = Some(3);
        a.update(Msg::Page {
            gen,
            page: RecordPage {
                rows: vec![row],
                total: 1,
            },
        });
        let fx = a.update(key('S'));
        assert!(fx.iter().any(|e| matches!(e,
            Effect::Send(Command::SplitDuplicate { id, split: true }) if id == "#7")));
        let fx = a.update(key('P'));
        assert!(fx.iter().any(|e| matches!(e,
            Effect::Send(Command::ChooseRepresentative { id }) if id == "#7")));
    }
}
