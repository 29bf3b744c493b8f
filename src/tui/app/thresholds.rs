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

impl App {
    pub(super) fn open_thresholds(&mut self, fx: &mut Vec<Effect>) {
        let panel = ThresholdPanel {
            draft: self.stats.thresholds,
            field: ThresholdField::High,
            input: None,
            input_error: None,
            preview: None,
            preview_gen: 0,
            draft_agreement: None,
            sweep_field: ThresholdField::High,
            sweep: Vec::new(),
            sweep_gen: 0,
        };
        self.overlay = Some(Overlay::Thresholds(Box::new(panel)));
        self.request_agreement(fx);
        self.draft_changed(fx);
        self.request_sweep(fx);
    }

    pub(super) fn threshold_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        let Some(Overlay::Thresholds(p)) = self.overlay.as_mut() else {
            return;
        };
        let fields = ThresholdField::ALL;
        let idx = fields.iter().position(|f| *f == p.field).unwrap_or(0);
        match action {
            Action::NextField | Action::PrevField => {
                let n = fields.len();
                let next = if action == Action::NextField {
                    (idx + 1) % n
                } else {
                    (idx + n - 1) % n
                };
                p.field = fields[next];
                self.request_sweep(fx);
            }
            Action::Increase | Action::Decrease => {
                let sign = if action == Action::Increase {
                    1.0
                } else {
                    -1.0
                };
                let f = p.field;
                let v = round_to(f.get(&p.draft) + sign * f.step(), f.step());
                f.set(&mut p.draft, v);
                self.draft_changed(fx);
            }
            Action::TypeValue => {
                let mut ta = TextArea::new(vec![format!("{}", p.field.get(&p.draft))]);
                ta.move_cursor(tui_textarea::CursorMove::End);
                ta.set_cursor_line_style(ratatui::style::Style::default());
                p.input = Some(ta);
                p.input_error = None;
            }
            Action::Apply => {
                let t = p.draft;
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
            Action::Reset => {
                p.draft = self.stats.thresholds;
                self.draft_changed(fx);
            }
            _ => {}
        }
    }

    pub(super) fn on_threshold_input(&mut self, ev: KeyEvent, fx: &mut Vec<Effect>) {
        let Some(Overlay::Thresholds(p)) = self.overlay.as_mut() else {
            return;
        };
        let Some(input) = p.input.as_mut() else {
            return;
        };
        match ev.code {
            KeyCode::Esc => p.input = None,
            KeyCode::Enter => {
                let text = input.lines().join("");
                match text.trim().parse::<f32>() {
                    Ok(v) if v.is_finite() => {
                        p.field.set(&mut p.draft, v);
                        p.input = None;
                        p.input_error = None;
                        self.draft_changed(fx);
                    }
                    _ => p.input_error = Some(format!("`{}` is not a number", text.trim())),
                }
            }
            _ => {
                input.input(ev);
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
