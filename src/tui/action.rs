//! Everything a key can do. Keymap TOML values are these names in snake_case, so bindings map
//! straight onto actions and every action carries the description the help overlay shows.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    // Global.
    Quit,
    Help,
    Close,
    Freeze,
    PauseEngine,
    Search,
    OpenThresholds,
    OpenExport,
    ReviewUncertain,
    ReviewRejected,
    // Moving around a list or a text.
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    NextRecord,
    PrevRecord,
    SwitchPane,
    // Filters and sorting.
    CycleVerdict,
    CycleTier,
    CycleSource,
    CycleDecidedBy,
    CycleLabelled,
    CycleSort,
    ClearFilters,
    // Labels.
    LabelKeep,
    LabelReject,
    LabelClear,
    UndoLabel,
    Reverify,
    // Threshold panel and dialogs.
    Increase,
    Decrease,
    NextField,
    PrevField,
    TypeValue,
    Apply,
    Reset,
    /// Unbinds a key in a user keymap (`"x" = "none"`).
    None,
}

impl Action {
    /// One line for the help overlay.
    pub fn description(self) -> &'static str {
        match self {
            Action::Quit => "Quit: stop the engine cleanly and leave",
            Action::Help => "Show or hide this help",
            Action::Close => "Close the overlay or view on top",
            Action::Freeze => "Freeze the table (panels keep updating)",
            Action::PauseEngine => "Pause or resume the engine",
            Action::Search => "Search ids and text",
            Action::OpenThresholds => "Tune thresholds (high, low, P(yes) cut)",
            Action::OpenExport => "Export kept/removed records",
            Action::ReviewUncertain => "Review queue: most uncertain unlabelled first",
            Action::ReviewRejected => "Spot-check queue: rejected, unlabelled",
            Action::Up => "Move up",
            Action::Down => "Move down",
            Action::PageUp => "Page up",
            Action::PageDown => "Page down",
            Action::Top => "Go to the first row",
            Action::Bottom => "Go to the last row (follow new rows)",
            Action::Open => "Open the record view",
            Action::NextRecord => "Next record",
            Action::PrevRecord => "Previous record",
            Action::SwitchPane => "Switch between text and original",
            Action::CycleVerdict => "Filter by verdict (cycle)",
            Action::CycleTier => "Filter by tier (cycle)",
            Action::CycleSource => "Filter by source (cycle)",
            Action::CycleDecidedBy => "Filter by who decided (cycle)",
            Action::CycleLabelled => "Filter labelled / unlabelled (cycle)",
            Action::CycleSort => "Sort: arrival, score, uncertainty",
            Action::ClearFilters => "Clear all filters and the search",
            Action::LabelKeep => "Label keep, then next",
            Action::LabelReject => "Label reject, then next",
            Action::LabelClear => "Clear the label, then next",
            Action::UndoLabel => "Undo the last label change",
            Action::Reverify => "Ask the verifier again",
            Action::Increase => "Increase the selected value",
            Action::Decrease => "Decrease the selected value",
            Action::NextField => "Next field",
            Action::PrevField => "Previous field",
            Action::TypeValue => "Type a value",
            Action::Apply => "Apply (verdicts change at once)",
            Action::Reset => "Reset to the running values",
            Action::None => "Unbound",
        }
    }

    /// A word or two for the footer.
    pub fn short(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::Close => "back",
            Action::Freeze => "freeze",
            Action::PauseEngine => "pause",
            Action::Search => "search",
            Action::OpenThresholds => "thresholds",
            Action::OpenExport => "export",
            Action::ReviewUncertain => "review",
            Action::ReviewRejected => "spot-check",
            Action::Up => "up",
            Action::Down => "down",
            Action::PageUp => "page up",
            Action::PageDown => "page down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::Open => "open",
            Action::NextRecord => "next",
            Action::PrevRecord => "prev",
            Action::SwitchPane => "pane",
            Action::CycleVerdict => "verdict",
            Action::CycleTier => "tier",
            Action::CycleSource => "source",
            Action::CycleDecidedBy => "by",
            Action::CycleLabelled => "labelled",
            Action::CycleSort => "sort",
            Action::ClearFilters => "clear",
            Action::LabelKeep => "keep",
            Action::LabelReject => "reject",
            Action::LabelClear => "unlabel",
            Action::UndoLabel => "undo",
            Action::Reverify => "reverify",
            Action::Increase => "+",
            Action::Decrease => "-",
            Action::NextField => "field",
            Action::PrevField => "field",
            Action::TypeValue => "type",
            Action::Apply => "apply",
            Action::Reset => "reset",
            Action::None => "",
        }
    }
}
