//! Themes: TOML files of named style slots (`themes/*.toml`, the built-ins embedded). Under
//! `NO_COLOR` or `TERM=dumb` the monochrome theme is used, so selection and verdicts stay
//! visible through bold/reverse/underline rather than disappearing.

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

pub const BUILTIN_THEMES: [(&str, &str); 3] = [
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("mono", include_str!("../../themes/mono.toml")),
];

#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("{origin}: invalid theme TOML: {message}")]
    Toml { origin: String, message: String },
    #[error("{origin}: slot `{slot}`: {reason}")]
    Slot {
        origin: String,
        slot: String,
        reason: String,
    },
    #[error("unknown theme `{0}` (built-in: dark, light, mono; or a path to a .toml file)")]
    Unknown(String),
    #[error("{path}: cannot read theme: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotSpec {
    fg: Option<String>,
    bg: Option<String>,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    dim: bool,
    #[serde(default)]
    italic: bool,
    #[serde(default)]
    underline: bool,
    #[serde(default)]
    reversed: bool,
}

#[derive(Debug, Deserialize)]
struct ThemeFile {
    name: Option<String>,
    #[serde(default)]
    slots: BTreeMap<String, SlotSpec>,
}

/// Resolved styles for every slot the UI paints.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub base: Style,
    pub dim: Style,
    pub title: Style,
    pub border: Style,
    pub border_focus: Style,
    pub header: Style,
    pub table_header: Style,
    pub selected: Style,
    pub kept: Style,
    pub removed: Style,
    pub pending: Style,
    pub human: Style,
    pub highlight: Style,
    pub negative: Style,
    pub warn: Style,
    pub error: Style,
    pub key: Style,
    pub chart_a: Style,
    pub chart_b: Style,
    pub gauge: Style,
    pub marker: Style,
}

impl Theme {
    pub fn builtin(name: &str) -> Option<Theme> {
        BUILTIN_THEMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, src)| Theme::from_toml(src, n).expect("built-in themes parse"))
    }

    pub fn dark() -> Theme {
        Theme::builtin("dark").expect("dark theme")
    }

    pub fn mono() -> Theme {
        Theme::builtin("mono").expect("mono theme")
    }

    /// A built-in name or a path to a theme file.
    pub fn load(name_or_path: &str) -> Result<Theme, ThemeError> {
        if let Some(t) = Theme::builtin(name_or_path) {
            return Ok(t);
        }
        let path = Path::new(name_or_path);
        if path.extension().is_some_and(|e| e == "toml") || path.exists() {
            let src = std::fs::read_to_string(path).map_err(|source| ThemeError::Io {
                path: name_or_path.into(),
                source,
            })?;
            return Theme::from_toml(&src, name_or_path);
        }
        Err(ThemeError::Unknown(name_or_path.into()))
    }

    /// Slots missing from the file fall back to the dark theme's, so a user theme can be short.
    pub fn from_toml(src: &str, origin: &str) -> Result<Theme, ThemeError> {
        let file: ThemeFile = toml::from_str(src).map_err(|e| ThemeError::Toml {
            origin: origin.into(),
            message: e.to_string(),
        })?;
        let mut theme = if origin == "dark" {
            Theme::blank()
        } else {
            Theme::dark()
        };
        theme.name = file.name.unwrap_or_else(|| origin.to_string());
        for (slot, spec) in &file.slots {
            let style = spec_style(spec).map_err(|reason| ThemeError::Slot {
                origin: origin.into(),
                slot: slot.clone(),
                reason,
            })?;
            let target = theme.slot_mut(slot).ok_or_else(|| ThemeError::Slot {
                origin: origin.into(),
                slot: slot.clone(),
                reason: "unknown slot".into(),
            })?;
            *target = style;
        }
        Ok(theme)
    }

    fn blank() -> Theme {
        let s = Style::default();
        Theme {
            name: String::new(),
            base: s,
            dim: s,
            title: s,
            border: s,
            border_focus: s,
            header: s,
            table_header: s,
            selected: s,
            kept: s,
            removed: s,
            pending: s,
            human: s,
            highlight: s,
            negative: s,
            warn: s,
            error: s,
            key: s,
            chart_a: s,
            chart_b: s,
            gauge: s,
            marker: s,
        }
    }

    fn slot_mut(&mut self, slot: &str) -> Option<&mut Style> {
        Some(match slot {
            "base" => &mut self.base,
            "dim" => &mut self.dim,
            "title" => &mut self.title,
            "border" => &mut self.border,
            "border_focus" => &mut self.border_focus,
            "header" => &mut self.header,
            "table_header" => &mut self.table_header,
            "selected" => &mut self.selected,
            "kept" => &mut self.kept,
            "removed" => &mut self.removed,
            "pending" => &mut self.pending,
            "human" => &mut self.human,
            "highlight" => &mut self.highlight,
            "negative" => &mut self.negative,
            "warn" => &mut self.warn,
            "error" => &mut self.error,
            "key" => &mut self.key,
            "chart_a" => &mut self.chart_a,
            "chart_b" => &mut self.chart_b,
            "gauge" => &mut self.gauge,
            "marker" => &mut self.marker,
            _ => return None,
        })
    }

    /// Colour for a verdict.
    pub fn verdict(&self, v: crate::decide::Verdict) -> Style {
        match v {
            crate::decide::Verdict::Kept => self.kept,
            crate::decide::Verdict::Removed => self.removed,
            crate::decide::Verdict::Pending => self.pending,
        }
    }
}

/// True when the environment asks for no colour (`NO_COLOR` set and non-empty, or `TERM=dumb`).
pub fn env_wants_mono(no_color: Option<&str>, term: Option<&str>) -> bool {
    no_color.is_some_and(|v| !v.is_empty()) || term == Some("dumb")
}

fn spec_style(spec: &SlotSpec) -> Result<Style, String> {
    let mut style = Style::default();
    if let Some(fg) = &spec.fg {
        style = style.fg(parse_color(fg)?);
    }
    if let Some(bg) = &spec.bg {
        style = style.bg(parse_color(bg)?);
    }
    let flags = [
        (spec.bold, Modifier::BOLD),
        (spec.dim, Modifier::DIM),
        (spec.italic, Modifier::ITALIC),
        (spec.underline, Modifier::UNDERLINED),
        (spec.reversed, Modifier::REVERSED),
    ];
    for (on, m) in flags {
        if on {
            style = style.add_modifier(m);
        }
    }
    Ok(style)
}

fn parse_color(s: &str) -> Result<Color, String> {
    Color::from_str(s).map_err(|_| format!("invalid colour `{s}` (an ANSI name or #rrggbb)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_mono_has_no_colours() {
        for (name, _) in BUILTIN_THEMES {
            let t = Theme::builtin(name).unwrap();
            assert_eq!(t.name, name);
        }
        let mono = Theme::mono();
        for s in [
            mono.kept,
            mono.removed,
            mono.selected,
            mono.header,
            mono.highlight,
        ] {
            assert_eq!((s.fg, s.bg), (None, None));
        }
        // Selection and verdicts stay distinguishable without colour.
        assert!(mono.selected.add_modifier.contains(Modifier::REVERSED));
        assert_ne!(mono.kept, mono.removed);
    }

    #[test]
    fn bad_theme_names_the_slot() {
        let err =
            Theme::from_toml("[slots]\nkept = { fg = \"greenish\" }\n", "my.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "my.toml: slot `kept`: invalid colour `greenish` (an ANSI name or #rrggbb)"
        );
        let err = Theme::from_toml("[slots]\nkep = {}\n", "my.toml").unwrap_err();
        assert!(err.to_string().contains("unknown slot"));
        assert!(matches!(Theme::load("nosuch"), Err(ThemeError::Unknown(_))));
    }

    #[test]
    fn no_color_rules() {
        assert!(env_wants_mono(Some("1"), Some("xterm")));
        assert!(!env_wants_mono(Some(""), Some("xterm")));
        assert!(env_wants_mono(None, Some("dumb")));
        assert!(!env_wants_mono(None, None));
    }
}
