//! Keymap: a TOML table per mode mapping key names to [`Action`]s. The default is embedded; a
//! user's bindings are layered over it. The help overlay and footer are generated from it, so
//! they cannot drift from what the keys do.

use super::action::Action;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

pub const DEFAULT_KEYMAP_TOML: &str = include_str!("keymap.toml");

/// The screen context that decides which bindings apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Global,
    Table,
    Record,
    Thresholds,
    Export,
    Head,
    Group,
    Suggest,
    Help,
}

impl Mode {
    pub const ALL: [Mode; 9] = [
        Mode::Global,
        Mode::Table,
        Mode::Record,
        Mode::Thresholds,
        Mode::Export,
        Mode::Head,
        Mode::Group,
        Mode::Suggest,
        Mode::Help,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Mode::Global => "Everywhere",
            Mode::Table => "Records table",
            Mode::Record => "Record view and review queues",
            Mode::Thresholds => "Threshold panel",
            Mode::Export => "Export dialog",
            Mode::Head => "Verdict head panel",
            Mode::Group => "Duplicate group view",
            Mode::Suggest => "Rules from labels",
            Mode::Help => "Help",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Mode::Global => "global",
            Mode::Table => "table",
            Mode::Record => "record",
            Mode::Thresholds => "thresholds",
            Mode::Export => "export",
            Mode::Head => "head",
            Mode::Group => "group",
            Mode::Suggest => "suggest",
            Mode::Help => "help",
        }
    }
}

/// A key with its modifiers, normalised so that `G` and `shift-g` are the same binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub code: KeyCodeOrd,
    pub ctrl: bool,
    pub alt: bool,
}

/// `KeyCode` subset we bind, ordered so keymaps print stably.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyCodeOrd {
    Char(char),
    F(u8),
    Enter,
    Esc,
    Tab,
    BackTab,
    Backspace,
    Delete,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    PageUp,
    PageDown,
    Insert,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KeymapError {
    #[error("{origin}: invalid keymap TOML: {message}")]
    Toml { origin: String, message: String },
    #[error("{origin}: [{section}] unknown mode (expected one of global, table, record, thresholds, export, head, group, suggest, help)")]
    UnknownMode { origin: String, section: String },
    #[error("{origin}: [{section}] key `{key}`: {reason}")]
    BadKey {
        origin: String,
        section: String,
        key: String,
        reason: String,
    },
    #[error("{origin}: [{section}] `{key}` = `{action}`: unknown action")]
    UnknownAction {
        origin: String,
        section: String,
        key: String,
        action: String,
    },
}

impl Key {
    pub fn from_event(ev: &KeyEvent) -> Option<Key> {
        let code = match ev.code {
            KeyCode::Char(c) => KeyCodeOrd::Char(c),
            KeyCode::F(n) => KeyCodeOrd::F(n),
            KeyCode::Enter => KeyCodeOrd::Enter,
            KeyCode::Esc => KeyCodeOrd::Esc,
            KeyCode::Tab => KeyCodeOrd::Tab,
            KeyCode::BackTab => KeyCodeOrd::BackTab,
            KeyCode::Backspace => KeyCodeOrd::Backspace,
            KeyCode::Delete => KeyCodeOrd::Delete,
            KeyCode::Up => KeyCodeOrd::Up,
            KeyCode::Down => KeyCodeOrd::Down,
            KeyCode::Left => KeyCodeOrd::Left,
            KeyCode::Right => KeyCodeOrd::Right,
            KeyCode::Home => KeyCodeOrd::Home,
            KeyCode::End => KeyCodeOrd::End,
            KeyCode::PageUp => KeyCodeOrd::PageUp,
            KeyCode::PageDown => KeyCodeOrd::PageDown,
            KeyCode::Insert => KeyCodeOrd::Insert,
            _ => return None,
        };
        Some(Key {
            code,
            ctrl: ev.modifiers.contains(KeyModifiers::CONTROL),
            alt: ev.modifiers.contains(KeyModifiers::ALT),
        })
    }

    /// Parses `q`, `G`, `ctrl-c`, `alt-x`, `enter`, `esc`, `tab`, `backtab`, `space`, `up`,
    /// `pagedown`, `f1`, … (case-insensitive names; single characters are taken as written).
    pub fn parse(s: &str) -> Result<Key, String> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            if rest.chars().count() > 1 && lower.starts_with("ctrl-") {
                ctrl = true;
                rest = &rest[5..];
            } else if rest.chars().count() > 1 && lower.starts_with("alt-") {
                alt = true;
                rest = &rest[4..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCodeOrd::Char(if ctrl { c.to_ascii_lowercase() } else { c }),
            (None, _) => return Err("empty key".into()),
            _ => match rest.to_ascii_lowercase().as_str() {
                "enter" | "return" => KeyCodeOrd::Enter,
                "esc" | "escape" => KeyCodeOrd::Esc,
                "tab" => KeyCodeOrd::Tab,
                "backtab" | "shift-tab" => KeyCodeOrd::BackTab,
                "backspace" => KeyCodeOrd::Backspace,
                "delete" | "del" => KeyCodeOrd::Delete,
                "space" => KeyCodeOrd::Char(' '),
                "up" => KeyCodeOrd::Up,
                "down" => KeyCodeOrd::Down,
                "left" => KeyCodeOrd::Left,
                "right" => KeyCodeOrd::Right,
                "home" => KeyCodeOrd::Home,
                "end" => KeyCodeOrd::End,
                "pageup" | "pgup" => KeyCodeOrd::PageUp,
                "pagedown" | "pgdown" | "pgdn" => KeyCodeOrd::PageDown,
                "insert" => KeyCodeOrd::Insert,
                other => match other.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()) {
                    Some(n) if (1..=12).contains(&n) => KeyCodeOrd::F(n),
                    _ => return Err(format!("unknown key name `{rest}`")),
                },
            },
        };
        Ok(Key { code, ctrl, alt })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("^")?;
        }
        if self.alt {
            f.write_str("M-")?;
        }
        match self.code {
            KeyCodeOrd::Char(' ') => f.write_str("Space"),
            KeyCodeOrd::Char(c) => write!(f, "{c}"),
            KeyCodeOrd::F(n) => write!(f, "F{n}"),
            KeyCodeOrd::Enter => f.write_str("Enter"),
            KeyCodeOrd::Esc => f.write_str("Esc"),
            KeyCodeOrd::Tab => f.write_str("Tab"),
            KeyCodeOrd::BackTab => f.write_str("S-Tab"),
            KeyCodeOrd::Backspace => f.write_str("Bksp"),
            KeyCodeOrd::Delete => f.write_str("Del"),
            KeyCodeOrd::Up => f.write_str("↑"),
            KeyCodeOrd::Down => f.write_str("↓"),
            KeyCodeOrd::Left => f.write_str("←"),
            KeyCodeOrd::Right => f.write_str("→"),
            KeyCodeOrd::Home => f.write_str("Home"),
            KeyCodeOrd::End => f.write_str("End"),
            KeyCodeOrd::PageUp => f.write_str("PgUp"),
            KeyCodeOrd::PageDown => f.write_str("PgDn"),
            KeyCodeOrd::Insert => f.write_str("Ins"),
        }
    }
}

/// Bindings per mode, in the order they were written (defaults first, user keys after).
#[derive(Debug, Clone, PartialEq)]
pub struct Keymap {
    modes: BTreeMap<Mode, Vec<(Key, Action)>>,
}

type RawKeymap = BTreeMap<String, BTreeMap<String, String>>;

impl Keymap {
    pub fn default_keymap() -> Keymap {
        let mut k = Keymap {
            modes: BTreeMap::new(),
        };
        k.layer_toml(DEFAULT_KEYMAP_TOML, "<default keymap>")
            .expect("the embedded keymap parses");
        k
    }

    /// Layers a TOML keymap (sections per mode) over this one.
    pub fn layer_toml(&mut self, src: &str, origin: &str) -> Result<(), KeymapError> {
        let raw: RawKeymap = toml::from_str(src).map_err(|e| KeymapError::Toml {
            origin: origin.into(),
            message: e.to_string(),
        })?;
        self.layer(&raw, origin)
    }

    /// Layers already-parsed sections (the config file's `[tui.keys]`) over this one.
    pub fn layer(&mut self, raw: &RawKeymap, origin: &str) -> Result<(), KeymapError> {
        for (section, binds) in raw {
            let mode = Mode::ALL
                .into_iter()
                .find(|m| m.key() == section)
                .ok_or_else(|| KeymapError::UnknownMode {
                    origin: origin.into(),
                    section: section.clone(),
                })?;
            for (key_name, action_name) in binds {
                let key = Key::parse(key_name).map_err(|reason| KeymapError::BadKey {
                    origin: origin.into(),
                    section: section.clone(),
                    key: key_name.clone(),
                    reason,
                })?;
                let action: Action =
                    serde::Deserialize::deserialize(toml::Value::String(action_name.clone()))
                        .map_err(|_: toml::de::Error| KeymapError::UnknownAction {
                            origin: origin.into(),
                            section: section.clone(),
                            key: key_name.clone(),
                            action: action_name.clone(),
                        })?;
                let list = self.modes.entry(mode).or_default();
                if let Some(slot) = list.iter_mut().find(|(k, _)| *k == key) {
                    slot.1 = action;
                } else {
                    list.push((key, action));
                }
            }
        }
        Ok(())
    }

    /// The action for a key in a mode: the mode's own binding first, then the global one.
    /// The help overlay only falls back to the global bindings that close or quit.
    pub fn action(&self, mode: Mode, ev: &KeyEvent) -> Option<Action> {
        let key = Key::from_event(ev)?;
        let find = |m: Mode| {
            self.modes
                .get(&m)
                .and_then(|l| l.iter().find(|(k, _)| *k == key).map(|(_, a)| *a))
        };
        let found = find(mode).or_else(|| find(Mode::Global))?;
        (found != Action::None).then_some(found)
    }

    /// The bindings of a mode, unbound keys left out.
    pub fn bindings(&self, mode: Mode) -> impl Iterator<Item = (Key, Action)> + '_ {
        self.modes
            .get(&mode)
            .into_iter()
            .flatten()
            .copied()
            .filter(|(_, a)| *a != Action::None)
    }

    /// The keys bound to an action in a mode (or globally), for the footer and help: the most
    /// telling first (Enter/Esc, then letters and digits, then other keys).
    pub fn keys_for(&self, mode: Mode, action: Action) -> Vec<Key> {
        let mut keys: Vec<Key> = self
            .bindings(mode)
            .filter(|(_, a)| *a == action)
            .map(|(k, _)| k)
            .collect();
        if keys.is_empty() && mode != Mode::Global {
            keys = self
                .bindings(Mode::Global)
                .filter(|(_, a)| *a == action)
                .map(|(k, _)| k)
                .collect();
        }
        keys.sort_by_key(key_rank);
        keys
    }

    /// Help rows per mode: (keys joined, description), one row per action, in the order the
    /// actions are declared (related actions stay together).
    pub fn help_rows(&self, mode: Mode) -> Vec<(String, &'static str)> {
        let mut rows: Vec<(Action, Vec<Key>)> = Vec::new();
        for (k, a) in self.bindings(mode) {
            match rows.iter_mut().find(|(ra, _)| *ra == a) {
                Some((_, ks)) => ks.push(k),
                None => rows.push((a, vec![k])),
            }
        }
        rows.sort_by_key(|(a, _)| *a);
        for (_, ks) in rows.iter_mut() {
            ks.sort_by_key(key_rank);
        }
        rows.into_iter()
            .map(|(a, ks)| {
                let keys = ks
                    .iter()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(" ");
                (keys, a.description())
            })
            .collect()
    }

    /// The whole keymap as TOML (for `--print-config` and to start a user keymap from).
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        for (mode, binds) in &self.modes {
            out.push_str(&format!("[tui.keys.{}]\n", mode.key()));
            for (k, a) in binds {
                let action = toml::Value::try_from(a)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                out.push_str(&format!("{:?} = {:?}\n", key_name(k), action));
            }
            out.push('\n');
        }
        out
    }
}

/// Sort key for showing bindings: Enter/Esc first, then letters and digits, then the rest.
fn key_rank(k: &Key) -> (bool, bool, u8, Key) {
    let rank = match k.code {
        KeyCodeOrd::Enter | KeyCodeOrd::Esc => 0,
        KeyCodeOrd::Char(c) if c.is_ascii_alphanumeric() => 1,
        KeyCodeOrd::Char(_) => 2,
        _ => 3,
    };
    (k.ctrl, k.alt, rank, *k)
}

/// The TOML name of a key (inverse of [`Key::parse`]).
pub fn key_name(k: &Key) -> String {
    let mut s = String::new();
    if k.ctrl {
        s.push_str("ctrl-");
    }
    if k.alt {
        s.push_str("alt-");
    }
    let code = match k.code {
        KeyCodeOrd::Char(' ') => "space".to_string(),
        KeyCodeOrd::Char(c) => c.to_string(),
        KeyCodeOrd::F(n) => format!("f{n}"),
        KeyCodeOrd::Enter => "enter".into(),
        KeyCodeOrd::Esc => "esc".into(),
        KeyCodeOrd::Tab => "tab".into(),
        KeyCodeOrd::BackTab => "backtab".into(),
        KeyCodeOrd::Backspace => "backspace".into(),
        KeyCodeOrd::Delete => "delete".into(),
        KeyCodeOrd::Up => "up".into(),
        KeyCodeOrd::Down => "down".into(),
        KeyCodeOrd::Left => "left".into(),
        KeyCodeOrd::Right => "right".into(),
        KeyCodeOrd::Home => "home".into(),
        KeyCodeOrd::End => "end".into(),
        KeyCodeOrd::PageUp => "pageup".into(),
        KeyCodeOrd::PageDown => "pagedown".into(),
        KeyCodeOrd::Insert => "insert".into(),
    };
    s.push_str(&code);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, m)
    }

    #[test]
    fn default_keymap_maps_vim_keys_arrows_and_globals() {
        let k = Keymap::default_keymap();
        let none = KeyModifiers::NONE;
        assert_eq!(
            k.action(Mode::Table, &ev(KeyCode::Char('j'), none)),
            Some(Action::Down)
        );
        assert_eq!(
            k.action(Mode::Table, &ev(KeyCode::Down, none)),
            Some(Action::Down)
        );
        assert_eq!(
            k.action(Mode::Table, &ev(KeyCode::Char('q'), none)),
            Some(Action::Quit)
        );
        assert_eq!(
            k.action(Mode::Record, &ev(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        // Shift is implied by the character itself.
        assert_eq!(
            k.action(Mode::Table, &ev(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            Some(Action::Bottom)
        );
        assert_eq!(
            k.action(Mode::Table, &ev(KeyCode::Esc, none)),
            Some(Action::Close)
        );
        assert_eq!(k.action(Mode::Table, &ev(KeyCode::Char('Z'), none)), None);
    }

    #[test]
    fn user_layer_rebinds_and_unbinds() {
        let mut k = Keymap::default_keymap();
        k.layer_toml("[table]\n\"J\" = \"down\"\n\"x\" = \"none\"\n", "user.toml")
            .unwrap();
        let none = KeyModifiers::NONE;
        assert_eq!(
            k.action(Mode::Table, &ev(KeyCode::Char('J'), none)),
            Some(Action::Down)
        );
        assert_eq!(k.action(Mode::Table, &ev(KeyCode::Char('x'), none)), None);
        assert!(k.keys_for(Mode::Table, Action::LabelReject).is_empty());
    }

    #[test]
    fn bad_user_keymaps_name_the_place() {
        let mut k = Keymap::default_keymap();
        let err = k
            .layer_toml("[table]\n\"j\" = \"fly\"\n", "user.toml")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "user.toml: [table] `j` = `fly`: unknown action"
        );
        let err = k
            .layer_toml("[tabel]\n\"j\" = \"down\"\n", "user.toml")
            .unwrap_err();
        assert!(err.to_string().contains("[tabel] unknown mode"), "{err}");
        let err = k
            .layer_toml("[table]\n\"hyper-q\" = \"down\"\n", "u")
            .unwrap_err();
        assert!(err.to_string().contains("unknown key name"), "{err}");
    }

    #[test]
    fn key_names_round_trip() {
        for name in [
            "q", "G", "ctrl-c", "enter", "backtab", "space", "f1", "pagedown", "?",
        ] {
            let k = Key::parse(name).unwrap();
            assert_eq!(Key::parse(&key_name(&k)).unwrap(), k, "{name}");
        }
    }

    #[test]
    fn help_rows_group_keys_of_one_action() {
        let k = Keymap::default_keymap();
        let rows = k.help_rows(Mode::Table);
        let down = rows
            .iter()
            .find(|(_, d)| *d == Action::Down.description())
            .unwrap();
        assert_eq!(down.0, "j ↓");
        let printed = k.to_toml();
        let mut again = Keymap {
            modes: BTreeMap::new(),
        };
        let stripped = printed.replace("[tui.keys.", "[");
        again.layer_toml(&stripped, "printed").unwrap();
        assert_eq!(again, k);
    }
}
