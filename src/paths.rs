//! Where things live, resolved in one place for both binaries and every subcommand:
//! - the config file: `$CYBERFILTER_CONFIG`, else `$XDG_CONFIG_HOME/cyberfilter/config.toml`,
//!   else `~/.config/cyberfilter/config.toml`, else the platform config dir;
//! - the data dir (run stores in `runs/`, the shared LLM answer cache): `$CYBERFILTER_DATA_DIR`,
//!   else the config file's `[engine] data_dir`, else `$XDG_DATA_HOME/cyberfilter`, else the
//!   platform data dir;
//! - the state dir (logs): `$XDG_STATE_HOME/cyberfilter`, else `$XDG_DATA_HOME/cyberfilter`,
//!   else `~/.local/state/cyberfilter`.
//!
//! `XDG_*` are honoured on every OS before `directories` (macOS users of terminal tools expect
//! `~/.config`, not `~/Library/Application Support`).

use std::path::{Path, PathBuf};

pub const APP: &str = "cyberfilter";

/// Where a resolved value came from (`--print-config` shows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Default,
    File,
    Env,
    Flag,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Default => "default",
            Origin::File => "config file",
            Origin::Env => "environment",
            Origin::Flag => "flag",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Paths {
    pub config_file: PathBuf,
    pub state_dir: PathBuf,
    pub data_dir: PathBuf,
    pub data_dir_origin: Origin,
}

impl Paths {
    /// `env` looks a variable up (the process environment in the binaries, a map in tests);
    /// `file_data_dir` is the config file's `[engine] data_dir`, when it sets one.
    pub fn resolve(env: impl Fn(&str) -> Option<String>, file_data_dir: Option<&Path>) -> Paths {
        let nonempty = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = nonempty("HOME");
        let dirs = directories::ProjectDirs::from("", "", APP);
        let config_file = nonempty("CYBERFILTER_CONFIG")
            .or_else(|| nonempty("XDG_CONFIG_HOME").map(|d| d.join(APP).join("config.toml")))
            .or_else(|| {
                home.as_ref()
                    .map(|h| h.join(".config").join(APP).join("config.toml"))
            })
            .or_else(|| dirs.as_ref().map(|d| d.config_dir().join("config.toml")))
            .unwrap_or_else(|| PathBuf::from("cyberfilter.toml"));
        let state_dir = nonempty("XDG_STATE_HOME")
            .map(|d| d.join(APP))
            .or_else(|| nonempty("XDG_DATA_HOME").map(|d| d.join(APP)))
            .or_else(|| {
                home.as_ref()
                    .map(|h| h.join(".local").join("state").join(APP))
            })
            .or_else(|| dirs.as_ref().map(|d| d.data_local_dir().to_path_buf()))
            .unwrap_or_else(|| PathBuf::from("."));
        let (data_dir, data_dir_origin) = if let Some(d) = nonempty("CYBERFILTER_DATA_DIR") {
            (d, Origin::Env)
        } else if let Some(d) = file_data_dir {
            (d.to_path_buf(), Origin::File)
        } else {
            let d = nonempty("XDG_DATA_HOME")
                .map(|d| d.join(APP))
                .or_else(|| dirs.as_ref().map(|d| d.data_dir().to_path_buf()))
                .unwrap_or_else(|| PathBuf::from(".cyberfilter"));
            (d, Origin::Default)
        };
        Paths {
            config_file,
            state_dir,
            data_dir,
            data_dir_origin,
        }
    }

    /// The process environment, with the data dir of the config file the environment names
    /// (used by subcommands that take no `--config`: `runs`, `export`, `relabel`).
    pub fn from_env() -> Paths {
        let env = |k: &str| std::env::var(k).ok();
        let first = Paths::resolve(env, None);
        let file_dir = crate::engine::launch::EngineFile::load(&first.config_file, false)
            .ok()
            .and_then(|f| f.data_dir);
        Paths::resolve(env, file_dir.as_deref())
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.data_dir.join("runs")
    }

    /// The answer cache shared by every run (`cyberfilter run` and the TUI alike).
    pub fn shared_cache(&self) -> PathBuf {
        self.data_dir.join("llm-cache.sqlite")
    }

    /// The TUI's log file: the configured one, else `<state dir>/cyberfilter-tui.log`.
    pub fn log_file(&self, configured: Option<&Path>) -> PathBuf {
        configured
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.state_dir.join("cyberfilter-tui.log"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn xdg_wins_over_home_and_explicit_env_wins_over_xdg() {
        let p = Paths::resolve(
            env(&[
                ("HOME", "/h"),
                ("XDG_CONFIG_HOME", "/x"),
                ("XDG_STATE_HOME", "/s"),
                ("XDG_DATA_HOME", "/d"),
            ]),
            None,
        );
        assert_eq!(p.config_file, PathBuf::from("/x/cyberfilter/config.toml"));
        assert_eq!(p.state_dir, PathBuf::from("/s/cyberfilter"));
        assert_eq!(p.data_dir, PathBuf::from("/d/cyberfilter"));
        assert_eq!(p.runs_dir(), PathBuf::from("/d/cyberfilter/runs"));
        let p = Paths::resolve(env(&[("HOME", "/h")]), None);
        assert_eq!(
            p.config_file,
            PathBuf::from("/h/.config/cyberfilter/config.toml")
        );
        assert_eq!(p.state_dir, PathBuf::from("/h/.local/state/cyberfilter"));
        let p = Paths::resolve(
            env(&[("HOME", "/h"), ("CYBERFILTER_CONFIG", "/c.toml")]),
            None,
        );
        assert_eq!(p.config_file, PathBuf::from("/c.toml"));
    }

    #[test]
    fn data_dir_layers_env_over_file_over_xdg() {
        let file = Path::new("/from-file");
        let p = Paths::resolve(env(&[("XDG_DATA_HOME", "/d")]), Some(file));
        assert_eq!(
            (p.data_dir.as_path(), p.data_dir_origin),
            (file, Origin::File)
        );
        let p = Paths::resolve(
            env(&[("XDG_DATA_HOME", "/d"), ("CYBERFILTER_DATA_DIR", "/e")]),
            Some(file),
        );
        assert_eq!(p.data_dir, PathBuf::from("/e"));
        assert_eq!(p.data_dir_origin, Origin::Env);
        let p = Paths::resolve(env(&[("XDG_DATA_HOME", "/d")]), None);
        assert_eq!(p.data_dir_origin, Origin::Default);
    }
}
