//! The browser's keys: each binding sits next to the help line that explains it (`BINDINGS`),
//! so a key cannot be added, moved or dropped without its line; the help window shows them,
//! then `NOTES` (what the marks and words on the screen mean). `action` is what the list's key
//! handler asks; the prompts and dialogs read their own keys (text entry, yes/no).

use ratatui::crossterm::event::KeyCode;

/// What a key does in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    First,
    Last,
    PageUp,
    PageDown,
    Open,
    Parent,
    SortSize,
    SortName,
    SortItems,
    SortMtime,
    DirsFirst,
    Apparent,
    Graph,
    ItemsColumn,
    MtimeColumn,
    ChangeColumn,
    SortChange,
    ChangePeriod,
    Hidden,
    Info,
    Mark,
    Reread,
    RereadAll,
    Shell,
    OpenFile,
    Search,
    Delete,
    Trash,
    Undo,
    Help,
    Quit,
    QuitPrint,
}

/// Keys and the help line that explains them.
pub struct Binding {
    /// The keys as the help shows them.
    pub label: &'static str,
    pub help: &'static str,
    pub keys: &'static [(KeyCode, Action)],
}

const fn ch(c: char) -> KeyCode {
    KeyCode::Char(c)
}

/// Every key of the list, in the order the help shows them.
pub const BINDINGS: &[Binding] = &[
    Binding {
        label: "↑ ↓ j k",
        help: "move the cursor",
        keys: &[
            (KeyCode::Up, Action::Up),
            (ch('k'), Action::Up),
            (KeyCode::Down, Action::Down),
            (ch('j'), Action::Down),
        ],
    },
    Binding {
        label: "Home End PgUp PgDn",
        help: "first, last, page up, page down",
        keys: &[
            (KeyCode::Home, Action::First),
            (KeyCode::End, Action::Last),
            (KeyCode::PageUp, Action::PageUp),
            (KeyCode::PageDown, Action::PageDown),
        ],
    },
    Binding {
        label: "→ Enter l",
        help: "open the selected directory",
        keys: &[
            (KeyCode::Right, Action::Open),
            (KeyCode::Enter, Action::Open),
            (ch('l'), Action::Open),
        ],
    },
    Binding {
        label: "← < h Backspace",
        help: "go to the parent directory",
        keys: &[
            (KeyCode::Left, Action::Parent),
            (ch('<'), Action::Parent),
            (ch('h'), Action::Parent),
            (KeyCode::Backspace, Action::Parent),
        ],
    },
    Binding {
        label: "s",
        help: "sort by size (again: reverse)",
        keys: &[(ch('s'), Action::SortSize)],
    },
    Binding {
        label: "n",
        help: "sort by name (again: reverse)",
        keys: &[(ch('n'), Action::SortName)],
    },
    Binding {
        label: "C",
        help: "sort by items (again: reverse)",
        keys: &[(ch('C'), Action::SortItems)],
    },
    Binding {
        label: "M",
        help: "sort by modification time (again: reverse)",
        keys: &[(ch('M'), Action::SortMtime)],
    },
    Binding {
        label: "t",
        help: "directories first",
        keys: &[(ch('t'), Action::DirsFirst)],
    },
    Binding {
        label: "a",
        help: "apparent size / disk usage",
        keys: &[(ch('a'), Action::Apparent)],
    },
    Binding {
        label: "g",
        help: "percent and graph: both, none, graph, percent",
        keys: &[(ch('g'), Action::Graph)],
    },
    Binding {
        label: "c",
        help: "item counts column",
        keys: &[(ch('c'), Action::ItemsColumn)],
    },
    Binding {
        label: "m",
        help: "modification time column",
        keys: &[(ch('m'), Action::MtimeColumn)],
    },
    Binding {
        label: "v V p",
        help: "change column, sort by change, change period",
        keys: &[
            (ch('v'), Action::ChangeColumn),
            (ch('V'), Action::SortChange),
            (ch('p'), Action::ChangePeriod),
        ],
    },
    Binding {
        label: "e",
        help: "hide / show hidden and excluded entries",
        keys: &[(ch('e'), Action::Hidden)],
    },
    Binding {
        label: "i",
        help: "information about the selected entry",
        keys: &[(ch('i'), Action::Info)],
    },
    Binding {
        label: "Space",
        help: "mark / unmark the selected entry",
        keys: &[(ch(' '), Action::Mark)],
    },
    Binding {
        label: "r",
        help: "re-read this directory's subtree from the disk",
        keys: &[(ch('r'), Action::Reread)],
    },
    Binding {
        label: "R",
        help: "re-read everything from the disk",
        keys: &[(ch('R'), Action::RereadAll)],
    },
    Binding {
        label: "b",
        help: "a shell in the current directory",
        keys: &[(ch('b'), Action::Shell)],
    },
    Binding {
        label: "o",
        help: "open the selected entry with xdg-open (needs a display)",
        keys: &[(ch('o'), Action::OpenFile)],
    },
    Binding {
        label: "/",
        help: "search names (text, or a glob: * ? [ ]); Esc back",
        keys: &[(ch('/'), Action::Search)],
    },
    Binding {
        label: "d D u",
        help: "delete, move to the trash, undo that move",
        keys: &[
            (ch('d'), Action::Delete),
            (ch('D'), Action::Trash),
            (ch('u'), Action::Undo),
        ],
    },
    Binding {
        label: "?",
        help: "this help",
        keys: &[(ch('?'), Action::Help)],
    },
    Binding {
        label: "q",
        help: "quit",
        keys: &[(ch('q'), Action::Quit)],
    },
    Binding {
        label: "Q",
        help: "quit and print the directory on screen",
        keys: &[(ch('Q'), Action::QuitPrint)],
    },
];

/// The help's lines after the keys: the mouse, and what the marks and words mean.
pub const NOTES: &[(&str, &str)] = &[
    ("mouse", "wheel scrolls, click selects, double click opens"),
    ("flags", "! unreadable  . error below  < excluded"),
    ("", "> other filesystem  @ symlink  e empty dir"),
    ("", "H hard link counted elsewhere  * marked"),
    ("", "~ stale: being verified again"),
    ("states", "live  scanning  verifying  stale: why  cached"),
];

/// What `code` does in the list, if anything.
#[must_use]
pub fn action(code: KeyCode) -> Option<Action> {
    BINDINGS
        .iter()
        .flat_map(|b| b.keys.iter())
        .find(|(k, _)| *k == code)
        .map(|&(_, a)| a)
}

/// The help window's lines: (keys, what they do).
pub fn help() -> impl Iterator<Item = (&'static str, &'static str)> {
    BINDINGS
        .iter()
        .map(|b| (b.label, b.help))
        .chain(NOTES.iter().copied())
}

/// How many lines the help has.
#[must_use]
pub fn help_len() -> usize {
    BINDINGS.len() + NOTES.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_does_two_things_and_every_action_has_a_key() {
        let all: Vec<(KeyCode, Action)> = BINDINGS
            .iter()
            .flat_map(|b| b.keys.iter().copied())
            .collect();
        for (i, (k, _)) in all.iter().enumerate() {
            assert!(
                all[i + 1..].iter().all(|(o, _)| o != k),
                "{k:?} is bound twice"
            );
        }
        assert_eq!(action(ch('q')), Some(Action::Quit));
        assert_eq!(action(KeyCode::Backspace), Some(Action::Parent));
        assert_eq!(action(ch('x')), None);
        assert_eq!(help().count(), help_len());
    }
}
