//! The threshold panel: the draft thresholds, their preview of flips, the sweep chart and
//! precision/recall against the curator's labels.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdField {
    High,
    Low,
    PCut,
}

impl ThresholdField {
    pub const ALL: [ThresholdField; 3] = [
        ThresholdField::High,
        ThresholdField::Low,
        ThresholdField::PCut,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ThresholdField::High => "high (keep ≥)",
            ThresholdField::Low => "low (reject <)",
            ThresholdField::PCut => "P(yes) cut",
        }
    }

    /// The label with the probability the cut applies to: P(head) while a head decides.
    pub fn label_for(self, head_in_force: bool) -> &'static str {
        match self {
            ThresholdField::PCut if head_in_force => "P(head) cut",
            f => f.label(),
        }
    }

    pub fn get(self, t: &Thresholds) -> f32 {
        match self {
            ThresholdField::High => t.high,
            ThresholdField::Low => t.low,
            ThresholdField::PCut => t.p_yes_cut,
        }
    }

    fn step(self) -> f32 {
        match self {
            ThresholdField::PCut => 0.05,
            _ => 0.5,
        }
    }

    /// Sets the value, keeping `low ≤ high` and the cut within [0, 1].
    pub fn set(self, t: &mut Thresholds, v: f32) {
        match self {
            ThresholdField::High => t.high = v.max(t.low),
            ThresholdField::Low => t.low = v.min(t.high),
            ThresholdField::PCut => t.p_yes_cut = v.clamp(0.0, 1.0),
        }
    }

    /// The x values of the sweep chart for this field.
    pub fn sweep_values(self, t: &Thresholds) -> Vec<f32> {
        let (lo, hi, n) = match self {
            ThresholdField::High => (t.low, (t.high * 2.0).max(t.low + 4.0), 13),
            ThresholdField::Low => (t.low.min(0.0), t.high, 13),
            ThresholdField::PCut => (0.0, 1.0, 11),
        };
        (0..n)
            .map(|i| lo + (hi - lo) * i as f32 / (n - 1) as f32)
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepPoint {
    pub value: f32,
    pub agreement: Option<LabelAgreement>,
}

#[derive(Debug, Clone)]
pub struct ThresholdPanel {
    pub draft: Thresholds,
    pub field: ThresholdField,
    pub input: Option<TextArea<'static>>,
    pub input_error: Option<String>,
    pub preview: Option<FlipPreview>,
    pub(super) preview_gen: u64,
    pub draft_agreement: Option<LabelAgreement>,
    pub sweep_field: ThresholdField,
    pub sweep: Vec<SweepPoint>,
    pub(super) sweep_gen: u64,
}

/// Precision and recall of a decision against labels; `None` when undefined (no positives).
pub fn precision_recall(a: &LabelAgreement) -> (Option<f64>, Option<f64>) {
    let p = (a.true_pos + a.false_pos > 0)
        .then(|| a.true_pos as f64 / (a.true_pos + a.false_pos) as f64);
    let r = (a.true_pos + a.false_neg > 0)
        .then(|| a.true_pos as f64 / (a.true_pos + a.false_neg) as f64);
    (p, r)
}

pub(super) fn round_to(v: f32, step: f32) -> f32 {
    (v / step).round() * step
}

/// What a key did to the panel, for the App to follow up (previews, the sweep, applying).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PanelChange {
    Nothing,
    /// Another field is selected: its sweep is wanted.
    Field,
    /// The draft changed: its preview and agreement are wanted.
    Draft,
    /// Apply these thresholds.
    Apply(Thresholds),
}

impl ThresholdPanel {
    /// A panel drafting from the thresholds in force.
    pub fn new(running: Thresholds) -> ThresholdPanel {
        ThresholdPanel {
            draft: running,
            field: ThresholdField::High,
            input: None,
            input_error: None,
            preview: None,
            preview_gen: 0,
            draft_agreement: None,
            sweep_field: ThresholdField::High,
            sweep: Vec::new(),
            sweep_gen: 0,
        }
    }

    /// One action on the panel; `running` is what Reset returns to.
    pub fn handle(&mut self, action: Action, running: Thresholds) -> PanelChange {
        let fields = ThresholdField::ALL;
        let idx = fields.iter().position(|f| *f == self.field).unwrap_or(0);
        match action {
            Action::NextField | Action::PrevField => {
                let n = fields.len();
                let next = if action == Action::NextField {
                    (idx + 1) % n
                } else {
                    (idx + n - 1) % n
                };
                self.field = fields[next];
                PanelChange::Field
            }
            Action::Increase | Action::Decrease => {
                let sign = if action == Action::Increase {
                    1.0
                } else {
                    -1.0
                };
                let f = self.field;
                let v = round_to(f.get(&self.draft) + sign * f.step(), f.step());
                f.set(&mut self.draft, v);
                PanelChange::Draft
            }
            Action::TypeValue => {
                let mut ta = TextArea::new(vec![format!("{}", self.field.get(&self.draft))]);
                ta.move_cursor(tui_textarea::CursorMove::End);
                ta.set_cursor_line_style(ratatui::style::Style::default());
                self.input = Some(ta);
                self.input_error = None;
                PanelChange::Nothing
            }
            Action::Apply => PanelChange::Apply(self.draft),
            Action::Reset => {
                self.draft = running;
                PanelChange::Draft
            }
            _ => PanelChange::Nothing,
        }
    }

    /// A key while a value is typed: Enter sets it (or says why not), Esc cancels.
    pub fn on_input_key(&mut self, ev: KeyEvent) -> PanelChange {
        let Some(input) = self.input.as_mut() else {
            return PanelChange::Nothing;
        };
        match ev.code {
            KeyCode::Esc => self.input = None,
            KeyCode::Enter => {
                let text = input.lines().join("");
                match text.trim().parse::<f32>() {
                    Ok(v) if v.is_finite() => {
                        self.field.set(&mut self.draft, v);
                        self.input = None;
                        self.input_error = None;
                        return PanelChange::Draft;
                    }
                    _ => self.input_error = Some(format!("`{}` is not a number", text.trim())),
                }
            }
            _ => {
                input.input(ev);
            }
        }
        PanelChange::Nothing
    }
}

impl App {
    pub(super) fn open_thresholds(&mut self, fx: &mut Vec<Effect>) {
        let panel = ThresholdPanel::new(self.stats.thresholds);
        self.overlay = Some(Overlay::Thresholds(Box::new(panel)));
        self.request_agreement(fx);
        self.draft_changed(fx);
        self.request_sweep(fx);
    }

    pub(super) fn threshold_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        let Some(Overlay::Thresholds(p)) = self.overlay.as_mut() else {
            return;
        };
        let change = p.handle(action, self.stats.thresholds);
        self.follow_panel_change(change, fx);
    }

    pub(super) fn on_threshold_input(&mut self, ev: KeyEvent, fx: &mut Vec<Effect>) {
        let Some(Overlay::Thresholds(p)) = self.overlay.as_mut() else {
            return;
        };
        let change = p.on_input_key(ev);
        self.follow_panel_change(change, fx);
    }

    fn follow_panel_change(&mut self, change: PanelChange, fx: &mut Vec<Effect>) {
        match change {
            PanelChange::Nothing => {}
            PanelChange::Field => self.request_sweep(fx),
            PanelChange::Draft => self.draft_changed(fx),
            PanelChange::Apply(t) => {
                fx.push(Effect::Send(Command::SetThresholds(t)));
                // Shown at once; the engine's next stats confirm it.
                self.stats.thresholds = t;
                self.set_status(
                    StatusKind::Info,
                    format!(
                        "applied high {} low {} P(yes) cut {:.2}",
                        t.high, t.low, t.p_yes_cut
                    ),
                );
                self.table_stale = true;
                self.last_query_at = None;
                self.query_now(fx);
                self.request_agreement(fx);
                self.draft_changed(fx);
                self.request_sweep(fx);
            }
        }
    }

    pub(super) fn draft_changed(&mut self, fx: &mut Vec<Effect>) {
        self.agreement_gen += 1;
        let gen = self.agreement_gen;
        let Some(Overlay::Thresholds(p)) = self.overlay.as_mut() else {
            return;
        };
        p.preview_gen += 1;
        fx.push(Effect::Preview {
            gen: p.preview_gen,
            thresholds: p.draft,
        });
        fx.push(Effect::Agreement {
            tag: AgreementTag::Draft,
            gen,
            thresholds: p.draft,
        });
    }

    pub(super) fn request_sweep(&mut self, fx: &mut Vec<Effect>) {
        let Some(Overlay::Thresholds(p)) = self.overlay.as_mut() else {
            return;
        };
        p.sweep_gen += 1;
        p.sweep_field = p.field;
        let base = self.stats.thresholds;
        p.sweep = p
            .field
            .sweep_values(&base)
            .into_iter()
            .map(|value| SweepPoint {
                value,
                agreement: None,
            })
            .collect();
        for (i, pt) in p.sweep.iter().enumerate() {
            let mut t = base;
            // Sweeping one value at a time: clamp only against the fixed others.
            match p.field {
                ThresholdField::High => t.high = pt.value.max(t.low),
                ThresholdField::Low => t.low = pt.value.min(t.high),
                ThresholdField::PCut => t.p_yes_cut = pt.value,
            }
            fx.push(Effect::Agreement {
                tag: AgreementTag::Sweep(i),
                gen: p.sweep_gen,
                thresholds: t,
            });
        }
    }

    pub(super) fn request_agreement(&mut self, fx: &mut Vec<Effect>) {
        fx.push(Effect::Agreement {
            tag: AgreementTag::Current,
            gen: 0,
            thresholds: self.stats.thresholds,
        });
    }

    pub(super) fn on_agreement(&mut self, tag: AgreementTag, gen: u64, value: LabelAgreement) {
        match tag {
            AgreementTag::Current => self.agreement = Some(value),
            AgreementTag::Draft => {
                if let Some(Overlay::Thresholds(p)) = self.overlay.as_mut() {
                    if gen == self.agreement_gen {
                        p.draft_agreement = Some(value);
                    }
                }
            }
            AgreementTag::Sweep(i) => {
                if let Some(Overlay::Thresholds(p)) = self.overlay.as_mut() {
                    if gen == p.sweep_gen {
                        if let Some(pt) = p.sweep.get_mut(i) {
                            pt.agreement = Some(value);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panel_drafts_resets_and_applies_without_the_app() {
        let running = Thresholds::default();
        let mut p = ThresholdPanel::new(running);
        assert_eq!(p.handle(Action::Increase, running), PanelChange::Draft);
        assert_eq!(p.draft.high, running.high + 0.5);
        assert_eq!(p.handle(Action::NextField, running), PanelChange::Field);
        assert_eq!(p.field, ThresholdField::Low);
        assert_eq!(p.handle(Action::TypeValue, running), PanelChange::Nothing);
        p.on_input_key(KeyEvent::new(KeyCode::Char('x'), KeyModifiers::NONE));
        let enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(p.on_input_key(enter), PanelChange::Nothing);
        assert!(p.input_error.as_deref().unwrap().contains("not a number"));
        assert_eq!(p.handle(Action::Reset, running), PanelChange::Draft);
        assert_eq!(p.draft, running);
        assert_eq!(
            p.handle(Action::Apply, running),
            PanelChange::Apply(running)
        );
    }
}
