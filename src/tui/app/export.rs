//! The export dialog: format, layout and folder, sent to the engine.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportField {
    Format,
    Layout,
    Path,
}

#[derive(Debug, Clone)]
pub struct ExportDialog {
    pub format: ExportFormat,
    pub layout: ExportLayout,
    pub path: PathBuf,
    pub field: ExportField,
    pub input: Option<TextArea<'static>>,
}

impl App {
    pub(super) fn export_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        let Some(Overlay::Export(d)) = self.overlay.as_mut() else {
            return;
        };
        const FIELDS: [ExportField; 3] =
            [ExportField::Format, ExportField::Layout, ExportField::Path];
        let idx = FIELDS.iter().position(|f| *f == d.field).unwrap_or(0);
        match action {
            Action::NextField => d.field = FIELDS[(idx + 1) % 3],
            Action::PrevField => d.field = FIELDS[(idx + 2) % 3],
            Action::Increase | Action::Decrease => match d.field {
                ExportField::Format => {
                    d.format = match d.format {
                        ExportFormat::Jsonl => ExportFormat::Json,
                        ExportFormat::Json => ExportFormat::Jsonl,
                    }
                }
                ExportField::Layout => {
                    d.layout = match d.layout {
                        ExportLayout::PerInput => ExportLayout::Upstream,
                        ExportLayout::Upstream => ExportLayout::PerInput,
                    }
                }
                ExportField::Path => {}
            },
            Action::TypeValue => {
                let mut ta = TextArea::new(vec![d.path.display().to_string()]);
                ta.move_cursor(tui_textarea::CursorMove::End);
                ta.set_cursor_line_style(ratatui::style::Style::default());
                d.field = ExportField::Path;
                d.input = Some(ta);
            }
            Action::Apply => {
                let (out, format, layout) = (d.path.clone(), d.format, d.layout);
                self.overlay = None;
                self.set_status(StatusKind::Info, format!("exporting to {}…", out.display()));
                fx.push(Effect::Send(Command::Export {
                    out,
                    format,
                    layout,
                }));
            }
            _ => {}
        }
    }
}
