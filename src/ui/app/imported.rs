//! The browser on an imported export (`dtui -f FILE`): the tree came from a file, not from the
//! disk, so everything that reads or changes the disk is off, and the key says why.

use ratatui::crossterm::event::KeyCode;

use crate::ui::keys::Action;

use super::{App, Command, Inspection, Popup, Sel};
use crate::tree::Tree;

impl App {
    /// Why `code` does nothing on an imported tree, or `None` if it works as usual.
    pub(super) fn refused_on_import(&self, code: KeyCode) -> Option<String> {
        self.imported.as_ref()?;
        let why = match crate::ui::keys::action(code)? {
            Action::Reread | Action::RereadAll => {
                "r and R re-read the disk, and this tree came from an export file"
            }
            Action::Shell => {
                "no shell: this tree came from an export file, its directories may not exist here"
            }
            Action::OpenFile => "nothing to open: this tree came from an export file",
            Action::QuitPrint => {
                "Q prints a directory of this disk, and this tree came from an export file (q quits)"
            }
            Action::Delete | Action::Trash | Action::Undo => {
                "nothing to delete: this tree came from an export file"
            }
            _ => return None,
        };
        Some(format!("read-only: {why}"))
    }

    /// The state word on an imported tree: `imported` and when the export was written.
    pub(super) fn imported_word(&self) -> Option<String> {
        self.imported.as_ref().map(|when| match when {
            Some(t) => format!("imported · {t}"),
            None => "imported".to_owned(),
        })
    }

    /// `i`: the info window on the selected entry, with what the disk says of it (looked up
    /// off this thread) unless the tree is an import, whose paths name nothing on this disk.
    pub(super) fn open_info(&mut self, tree: &Tree) {
        let Sel::Node(id) = self.selected else {
            return;
        };
        let node = tree.node_ref(id);
        self.popup = Popup::Info(node);
        self.inspection = None;
        if self.imported.is_some() {
            let ins = Inspection {
                error: Some("not on this disk: from the export".to_owned()),
                ..Inspection::default()
            };
            self.inspection = Some((node, ins));
        } else {
            self.commands.push(Command::Inspect {
                node,
                path: tree.path_of(id),
            });
        }
    }
}
