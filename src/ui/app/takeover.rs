//! The tree replaced under the browser (the owner it was attached to went away, and this
//! process opened the root itself): where the user was, by path, carried to the new tree.

use std::path::PathBuf;

use super::{App, Popup, Sel, Status};
use crate::tree::Tree;

/// Where the user is, by path: what survives the tree being replaced.
pub struct Place {
    cwd: PathBuf,
    selected: Option<PathBuf>,
    marked: Vec<PathBuf>,
    /// The entry the info window shows, if it is open.
    info: Option<PathBuf>,
}

impl App {
    /// Where the user is in `tree`, by path.
    #[must_use]
    pub fn place(&self, tree: &Tree) -> Place {
        Place {
            cwd: tree.path_of(self.cwd),
            selected: match self.selected {
                Sel::Node(id) if tree.is_live(id) => Some(tree.path_of(id)),
                _ => None,
            },
            marked: self
                .marked
                .iter()
                .filter_map(|&m| tree.resolve(m))
                .map(|id| tree.path_of(id))
                .collect(),
            info: match self.popup {
                Popup::Info(r) => tree.resolve(r).map(|id| tree.path_of(id)),
                _ => None,
            },
        }
    }

    /// This app over another tree of the same root: the user's choices of view kept, the
    /// place found again by path (the nearest directory still there), the marks that still
    /// name something, the help or the info window left open (a key pressed as the tree is
    /// replaced is not lost); what referred to the old tree's entries otherwise (dialogs,
    /// highlights, search matches) starts over.
    pub fn rebind(&mut self, place: &Place, tree: &Tree, origin: String, status: Status) {
        let old = std::mem::replace(self, App::new(tree, origin, status));
        let a = self;
        a.sort = old.sort;
        a.reverse = old.reverse;
        a.dirs_first = old.dirs_first;
        a.apparent = old.apparent;
        a.graph = old.graph;
        a.show_items = old.show_items;
        a.show_mtime = old.show_mtime;
        a.hide_hidden = old.hide_hidden;
        a.read_only = old.read_only;
        a.no_shell = old.no_shell;
        a.display = old.display;
        a.color = old.color;
        a.local_time = old.local_time;
        a.changes.shown = old.changes.shown;
        a.changes.since = old.changes.since;
        if a.changes.shown {
            // The baseline is loaded again, from this process's own history now.
            let since = a.changes.since();
            a.changes.loading = Some(since);
            a.commands.push(super::Command::LoadBaseline(since));
        }
        a.delete.disabled = old.delete.disabled;
        a.delete.dont_ask = old.delete.dont_ask;
        a.delete.last_trash = old.delete.last_trash;
        a.delete.freed = old.delete.freed;
        let mut cwd = Some(place.cwd.as_path());
        while let Some(p) = cwd {
            if let Some(id) = tree.lookup(p).filter(|&id| tree.dir_rec(id).is_some()) {
                a.cwd = id;
                break;
            }
            cwd = p.parent();
        }
        if let Some(id) = place.selected.as_deref().and_then(|p| tree.lookup(p))
            && tree.parent(id) == Some(a.cwd)
        {
            a.selected = Sel::Node(id);
            a.follow_top = false;
        }
        a.marked = place
            .marked
            .iter()
            .filter_map(|p| tree.lookup(p))
            .map(|id| tree.node_ref(id))
            .collect();
        a.popup = match old.popup {
            Popup::Help => Popup::Help,
            Popup::Info(_) => match place.info.as_deref().and_then(|p| tree.lookup(p)) {
                Some(id) => {
                    // Looked up again: an answer on its way names the old tree's entry.
                    let node = tree.node_ref(id);
                    a.commands.push(super::Command::Inspect {
                        node,
                        path: tree.path_of(id),
                    });
                    Popup::Info(node)
                }
                None => Popup::None,
            },
            Popup::None => Popup::None,
        };
        a.help_scroll = old.help_scroll;
        a.remember_cwd(tree);
    }
}
