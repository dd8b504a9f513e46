//! The browser on an imported export (`dtui -f FILE`): the tree came from a file, not from the
//! disk, so everything that reads or changes the disk is off, and the key says why.

use ratatui::crossterm::event::KeyCode;

use super::App;

impl App {
    /// Why `code` does nothing on an imported tree, or `None` if it works as usual.
    pub(super) fn refused_on_import(&self, code: KeyCode) -> Option<String> {
        self.imported.as_ref()?;
        let why = match code {
            KeyCode::Char('r' | 'R') => {
                "r and R re-read the disk, and this tree came from an export file"
            }
            KeyCode::Char('b') => {
                "no shell: this tree came from an export file, its directories may not exist here"
            }
            KeyCode::Char('d' | 'D' | 'u') => {
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
}
