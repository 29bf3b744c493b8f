//! The TUI's part of the config file (`[tui]`), where that file lives, and where logs go.
//! Paths honour `CYBERFILTER_CONFIG`, `XDG_CONFIG_HOME` and `XDG_STATE_HOME`/`XDG_DATA_HOME` on
//! every OS before falling back to `directories` (macOS users of terminal tools expect
//! `~/.config`, not `~/Library/Application Support`).

use super::keymap::{Keymap, KeymapError};
use super::theme::{env_wants_mono, Theme, ThemeError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use crate::paths::APP;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read config: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid config: {message}")]
    Toml { path: String, message: String },
    #[error(transparent)]
    Keymap(#[from] KeymapError),
    #[error(transparent)]
    Theme(#[from] ThemeError),
}

/// `[tui]` in the config file. Every field has a default, so an empty file is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TuiConfig {
    /// `dark`, `light`, `mono` or a path to a theme file.
    pub theme: String,
    /// Upper bound on redraws per second while the engine runs (a key press redraws at once).
    pub fps: u32,
    /// Minimum time between two table refreshes caused by new verdicts.
    pub table_refresh_ms: u64,
    /// Default folder offered by the export dialog.
    pub export_dir: PathBuf,
    /// Scroll the table with the mouse wheel.
    pub mouse: bool,
    /// Log file; default `<state dir>/cyberfilter-tui.log`.
    pub log_file: Option<PathBuf>,
    /// Key bindings layered over the defaults: `[tui.keys.table] "J" = "down"`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<String, BTreeMap<String, String>>,
}

impl Default for TuiConfig {
    fn default() -> Self {
        TuiConfig {
            theme: "dark".into(),
            fps: 30,
            table_refresh_ms: 250,
            export_dir: PathBuf::from("export"),
            mouse: false,
            log_file: None,
            keys: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct FileView {
    #[serde(default)]
    tui: Option<toml::Value>,
}

impl TuiConfig {
    /// Reads `[tui]` from a config file; other sections belong to the engine and are ignored here.
    pub fn from_toml(src: &str, path: &str) -> Result<TuiConfig, ConfigError> {
        let view: FileView = toml::from_str(src).map_err(|e| ConfigError::Toml {
            path: path.into(),
            message: e.to_string(),
        })?;
        match view.tui {
            None => Ok(TuiConfig::default()),
            Some(v) => v
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Toml {
                    path: path.into(),
                    message: format!("[tui]: {e}"),
                }),
        }
    }

    /// Loads the file if it exists; a missing default file is not an error, a missing
    /// explicitly named one is.
    pub fn load(path: &Path, explicit: bool) -> Result<TuiConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(src) => TuiConfig::from_toml(&src, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                Ok(TuiConfig::default())
            }
            Err(source) => Err(ConfigError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    pub fn keymap(&self) -> Result<Keymap, ConfigError> {
        let mut k = Keymap::default_keymap();
        k.layer(&self.keys, "config [tui.keys]")?;
        Ok(k)
    }

    /// The theme to use: an explicit `--theme` wins; otherwise `NO_COLOR`/`TERM=dumb` pick mono;
    /// otherwise the config's.
    pub fn theme(
        &self,
        flag: Option<&str>,
        no_color: Option<&str>,
        term: Option<&str>,
    ) -> Result<Theme, ConfigError> {
        if let Some(name) = flag {
            return Ok(Theme::load(name)?);
        }
        if env_wants_mono(no_color, term) {
            return Ok(Theme::mono());
        }
        Ok(Theme::load(&self.theme)?)
    }

    /// The resolved `[tui]` section as TOML (bindings written out in full).
    pub fn to_toml(&self) -> String {
        let mut plain = self.clone();
        plain.keys.clear();
        let body = toml::to_string(&plain).unwrap_or_default();
        let keys = self
            .keymap()
            .map(|k| k.to_toml())
            .unwrap_or_else(|e| format!("# keymap error: {e}\n"));
        format!("[tui]\n{body}\n{keys}")
    }
}

/// Where things live: one resolver for the whole project.
pub use crate::paths::Paths;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tui_section_is_read_and_other_sections_ignored() {
        let src = "[engine]\nbatch = 8\n[tui]\ntheme = \"light\"\nfps = 20\n[tui.keys.table]\nJ = \"down\"\n";
        let c = TuiConfig::from_toml(src, "c.toml").unwrap();
        assert_eq!(c.theme, "light");
        assert_eq!(c.fps, 20);
        assert_eq!(c.table_refresh_ms, 250);
        assert!(c.keymap().is_ok());
        let err = TuiConfig::from_toml("[tui]\nthem = \"x\"\n", "c.toml").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("c.toml: invalid config: [tui]:"),
            "{err}"
        );
        assert!(err.to_string().contains("them"), "{err}");
    }

    #[test]
    fn no_color_picks_mono_unless_a_theme_flag_is_given() {
        let c = TuiConfig::default();
        assert_eq!(c.theme(None, Some("1"), None).unwrap().name, "mono");
        assert_eq!(
            c.theme(Some("light"), Some("1"), None).unwrap().name,
            "light"
        );
        assert_eq!(c.theme(None, None, Some("xterm")).unwrap().name, "dark");
    }

    #[test]
    fn printed_config_parses_back() {
        let c = TuiConfig::default();
        let printed = c.to_toml();
        let back = TuiConfig::from_toml(&printed, "printed").unwrap();
        assert_eq!(back.keymap().unwrap(), c.keymap().unwrap());
        assert_eq!(back.theme, c.theme);
    }

    #[test]
    fn missing_default_file_is_fine_missing_explicit_file_is_not() {
        let p = Path::new("/nonexistent/cyberfilter/config.toml");
        assert!(TuiConfig::load(p, false).is_ok());
        assert!(TuiConfig::load(p, true).is_err());
    }
}
