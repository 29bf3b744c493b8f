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

impl ExportDialog {
    pub fn new(path: PathBuf) -> ExportDialog {
        ExportDialog {
            format: ExportFormat::Jsonl,
            layout: ExportLayout::PerInput,
            path,
            field: ExportField::Format,
            input: None,
        }
    }

    /// One action on the dialog; `Some` is the export to start (the dialog is done).
    pub fn handle(&mut self, action: Action) -> Option<Command> {
        const FIELDS: [ExportField; 3] =
            [ExportField::Format, ExportField::Layout, ExportField::Path];
        let idx = FIELDS.iter().position(|f| *f == self.field).unwrap_or(0);
        match action {
            Action::NextField => self.field = FIELDS[(idx + 1) % 3],
            Action::PrevField => self.field = FIELDS[(idx + 2) % 3],
            Action::Increase | Action::Decrease => match self.field {
                ExportField::Format => {
                    self.format = match self.format {
                        ExportFormat::Jsonl => ExportFormat::Json,
                        ExportFormat::Json => ExportFormat::Jsonl,
                    }
                }
                ExportField::Layout => {
                    self.layout = match self.layout {
                        ExportLayout::PerInput => ExportLayout::Upstream,
                        ExportLayout::Upstream => ExportLayout::PerInput,
                    }
                }
                ExportField::Path => {}
            },
            Action::TypeValue => {
                let mut ta = TextArea::new(vec![self.path.display().to_string()]);
                ta.move_cursor(tui_textarea::CursorMove::End);
                ta.set_cursor_line_style(ratatui::style::Style::default());
                self.field = ExportField::Path;
                self.input = Some(ta);
            }
            Action::Apply => {
                return Some(Command::Export {
                    out: self.path.clone(),
                    format: self.format,
                    layout: self.layout,
                })
            }
            _ => {}
        }
        None
    }

    /// A key while the folder is being typed: Enter keeps it, Esc drops the edit.
    pub fn on_input_key(&mut self, ev: KeyEvent) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        match ev.code {
            KeyCode::Enter => {
                let text = input.lines().join("");
                if !text.trim().is_empty() {
                    self.path = PathBuf::from(text.trim());
                }
                self.input = None;
            }
            KeyCode::Esc => self.input = None,
            _ => {
                input.input(ev);
            }
        }
    }
}

impl App {
    pub(super) fn export_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        let Some(Overlay::Export(d)) = self.overlay.as_mut() else {
            return;
        };
        if let Some(cmd) = d.handle(action) {
            self.overlay = None;
            if let Command::Export { out, .. } = &cmd {
                let msg = format!("exporting to {}…", out.display());
                self.set_status(StatusKind::Info, msg);
            }
            fx.push(Effect::Send(cmd));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dialog_cycles_its_fields_and_applies_to_an_export_command() {
        let mut d = ExportDialog::new(PathBuf::from("out"));
        assert!(d.handle(Action::Increase).is_none());
        assert_eq!(d.format, ExportFormat::Json);
        d.handle(Action::NextField);
        d.handle(Action::Decrease);
        assert_eq!(d.layout, ExportLayout::Upstream);
        d.handle(Action::TypeValue);
        assert_eq!(d.field, ExportField::Path);
        for c in "/x".chars() {
            d.on_input_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        }
        d.on_input_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        assert_eq!(d.path, PathBuf::from("out/x"));
        match d.handle(Action::Apply) {
            Some(Command::Export {
                out,
                format,
                layout,
            }) => {
                assert_eq!(out, PathBuf::from("out/x"));
                assert_eq!(
                    (format, layout),
                    (ExportFormat::Json, ExportLayout::Upstream)
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
