//! The keys: Ctrl-C and Ctrl-Z from everywhere, then the open dialog's or window's keys, the
//! search's, and the list's (`keys::Action`): moves, sorts, toggles, re-reads, the shell, the
//! windows and the deletes. An unknown key says so with a hint; every message lasts until the next key.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::{App, Command, Popup, Request, Sel, SortKey};
use crate::path::display_name;
use crate::tree::Tree;
use crate::ui::keys::{self, Action};

impl App {
    /// A key while a window (help, info) is open: these close it, the help scrolls on a
    /// short terminal, everything else is ignored.
    fn popup_key(&mut self, code: KeyCode) {
        match code {
            KeyCode::Esc | KeyCode::Char('q' | 'i' | '?') | KeyCode::Enter => {
                self.popup = Popup::None;
                self.help_scroll = 0;
            }
            KeyCode::Down | KeyCode::PageDown | KeyCode::Char('j' | ' ') => {
                let step = if matches!(code, KeyCode::PageDown | KeyCode::Char(' ')) {
                    self.page.max(1)
                } else {
                    1
                };
                // Past the last line is clamped by the view, and here to the lines there are.
                self.help_scroll = (self.help_scroll + step).min(keys::help_len() - 1);
            }
            KeyCode::Home => self.help_scroll = 0,
            KeyCode::End => self.help_scroll = keys::help_len() - 1,
            KeyCode::Up | KeyCode::Char('k') | KeyCode::PageUp => {
                let step = if code == KeyCode::PageUp {
                    self.page.max(1)
                } else {
                    1
                };
                self.help_scroll = self.help_scroll.saturating_sub(step);
            }
            _ => {}
        }
    }

    pub(super) fn key(&mut self, k: KeyEvent, tree: &Tree) {
        // Ctrl-C and Ctrl-Z work from every window (raw mode turns them into keys).
        if k.modifiers.contains(KeyModifiers::CONTROL) {
            match k.code {
                KeyCode::Char('c') => {
                    self.request = Some(Request::Quit);
                    return;
                }
                KeyCode::Char('z') => {
                    self.request = Some(Request::Suspend);
                    return;
                }
                _ => {}
            }
        }
        if self.delete.dialog.is_some() {
            self.dialog_key(k);
            return;
        }
        if self.popup != Popup::None {
            self.popup_key(k.code);
            return;
        }
        // A message (a hint, a toggle's note, a re-read's outcome, a directory gone) lasts
        // until the next key: it has been read by then, and an old one would read as news.
        // An engine's error stays until something else is said.
        if self.message != self.error {
            self.message = None;
        }
        if self.search_key(k, tree) {
            return;
        }
        if let Some(why) = self.refused_on_import(k.code) {
            self.message = Some(why);
            return;
        }
        let Some(action) = keys::action(k.code) else {
            self.user_order = false;
            // Lone modifiers and key releases are not keys the user meant.
            if !matches!(k.code, KeyCode::Modifier(_) | KeyCode::Null) {
                self.note(&format!("unknown key {}: {HINT}", key_name(k.code)));
            }
            return;
        };
        let cursor = self.cursor(tree);
        let page = self.page.max(1);
        let mut moved = true;
        match action {
            Action::Up => self.select_index(tree, cursor.saturating_sub(1)),
            Action::Down => self.select_index(tree, cursor + 1),
            Action::First => self.select_index(tree, 0),
            Action::Last => self.select_index(tree, usize::MAX),
            Action::PageUp => self.select_index(tree, cursor.saturating_sub(page)),
            Action::PageDown => self.select_index(tree, cursor + page),
            Action::Mark => {
                if let Sel::Node(id) = self.selected {
                    let r = tree.node_ref(id);
                    if !self.marked.remove(&r) {
                        self.marked.insert(r);
                    }
                }
                self.select_index(tree, cursor + 1);
            }
            _ => moved = false,
        }
        if moved {
            self.follow_top = false;
            return;
        }
        self.user_order = matches!(
            action,
            Action::SortName
                | Action::SortSize
                | Action::SortItems
                | Action::SortMtime
                | Action::DirsFirst
                | Action::Apparent
                | Action::Hidden
                | Action::SortChange
                | Action::ChangePeriod
        );
        self.act(action, tree);
    }

    /// What a key that does not move the cursor does.
    fn act(&mut self, action: Action, tree: &Tree) {
        match action {
            Action::Quit => self.request = Some(Request::Quit),
            Action::QuitPrint => self.request = Some(Request::QuitPrint(tree.path_of(self.cwd))),
            Action::OpenFile => self.open_file(tree),
            Action::Open => self.open(tree),
            Action::Parent => self.up(tree),
            Action::SortName => self.sort_by(SortKey::Name),
            Action::SortSize => self.sort_by(SortKey::Size),
            Action::SortItems => self.sort_by(SortKey::Items),
            Action::SortMtime => self.sort_by(SortKey::Mtime),
            Action::DirsFirst
            | Action::Apparent
            | Action::Graph
            | Action::ItemsColumn
            | Action::MtimeColumn
            | Action::Hidden => self.toggle(action),
            Action::ChangeColumn => self.toggle_changes(),
            Action::SortChange => self.sort_by_change(),
            Action::ChangePeriod => self.next_period(),
            Action::Info => self.open_info(tree),
            Action::Help => self.popup = Popup::Help,
            Action::Delete => self.delete_key(tree, false),
            Action::Trash => self.delete_key(tree, true),
            Action::Undo => self.undo_key(),
            Action::Reread => self.reconcile(tree, false),
            Action::RereadAll => self.reconcile(tree, true),
            Action::Shell => {
                if self.read_only {
                    self.message = Some("read-only mode: the shell is disabled".into());
                } else if self.no_shell {
                    self.message = Some("the shell is disabled (--disable-shell)".into());
                } else {
                    self.request = Some(Request::Shell(tree.path_of(self.cwd)));
                }
            }
            // Moves were handled above; `/` by the search, before this.
            Action::Up
            | Action::Down
            | Action::First
            | Action::Last
            | Action::PageUp
            | Action::PageDown
            | Action::Mark
            | Action::Search => {}
        }
    }

    /// The view toggles: `t`, `a`, `g`, `c`, `m`, `e`.
    fn toggle(&mut self, action: Action) {
        match action {
            Action::DirsFirst => {
                self.dirs_first = !self.dirs_first;
                self.note(if self.dirs_first {
                    "directories first"
                } else {
                    "directories mixed with files"
                });
            }
            Action::Apparent => {
                self.apparent = !self.apparent;
                self.note(if self.apparent {
                    "apparent sizes (a: disk usage)"
                } else {
                    "disk usage (a: apparent sizes)"
                });
            }
            Action::Graph => self.graph = self.graph.next(),
            Action::ItemsColumn => self.show_items = !self.show_items,
            Action::MtimeColumn => self.show_mtime = !self.show_mtime,
            Action::Hidden => {
                self.hide_hidden = !self.hide_hidden;
                self.note(if self.hide_hidden {
                    "hidden and excluded entries not listed (still counted; e lists them)"
                } else {
                    "hidden and excluded entries listed"
                });
            }
            _ => {}
        }
    }

    /// What a toggle did (its column may not show it), or a hint: until the next key, as
    /// every message.
    fn note(&mut self, text: &str) {
        self.message = Some(text.to_owned());
    }

    /// `o`: the selected entry handed to `xdg-open` by the loop (never started here), if
    /// there is a display to show it on.
    fn open_file(&mut self, tree: &Tree) {
        let Sel::Node(id) = self.selected else {
            self.note("o opens the selected entry: select one first");
            return;
        };
        if !self.display {
            self.note("o needs a display (DISPLAY or WAYLAND_DISPLAY is not set)");
            return;
        }
        let path = tree.path_of(id);
        self.note(&format!(
            "opening {} with xdg-open",
            display_name(path.as_os_str().as_encoded_bytes())
        ));
        self.commands.push(Command::Open(path));
    }

    /// `r` (this directory's subtree) and `R` (everything): re-read in the engine.
    fn reconcile(&mut self, tree: &Tree, everything: bool) {
        if self.busy() {
            self.message = Some(format!(
                "{} already: r and R wait until it ends",
                self.state_word()
            ));
            return;
        }
        self.rereading = Some(tree.node_ref(if everything { tree.root() } else { self.cwd }));
        let (dir, what) = if everything {
            (None, "everything".to_owned())
        } else {
            (
                Some(tree.node_ref(self.cwd)),
                display_name(tree.path_of(self.cwd).as_os_str().as_encoded_bytes()),
            )
        };
        self.commands.push(Command::Reconcile { dir, full: true });
        self.message = Some(format!("re-reading {what}…"));
    }

    pub(super) fn sort_by(&mut self, key: SortKey) {
        // A chosen order keeps the cursor on its entry, not on the top row.
        self.follow_top = false;
        if self.sort == key {
            self.reverse = !self.reverse;
        } else {
            self.sort = key;
            self.reverse = false;
        }
    }
}

/// The end of the hint an unknown key shows.
const HINT: &str = "? for help";

fn key_name(k: KeyCode) -> String {
    match k {
        KeyCode::Char(c) if c.is_control() => format!("^{}", char::from(c as u8 ^ 0x40)),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::F(n) => format!("F{n}"),
        other => format!("{other:?}"),
    }
}
