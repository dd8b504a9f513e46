//! The tree replaced under the browser (the owner it was attached to went away, and this
//! process opened the root itself): where the user was, by path, carried to the new tree.

use std::path::PathBuf;

use super::{App, Sel, Status};
use crate::tree::Tree;

/// Where the user is, by path: what survives the tree being replaced.
pub struct Place {
    cwd: PathBuf,
    selected: Option<PathBuf>,
    marked: Vec<PathBuf>,
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
        }
    }

    /// This app over another tree of the same root: the user's choices of view kept, the
    /// place found again by path (the nearest directory still there), the marks that still
    /// name something; what referred to the old tree's entries (dialogs, the info window,
    /// highlights, search matches) starts over.
    #[must_use]
    pub fn rebound(self, place: &Place, tree: &Tree, origin: String, status: Status) -> App {
        let mut a = App::new(tree, origin, status);
        a.sort = self.sort;
        a.reverse = self.reverse;
        a.dirs_first = self.dirs_first;
        a.apparent = self.apparent;
        a.graph = self.graph;
        a.show_items = self.show_items;
        a.show_mtime = self.show_mtime;
        a.hide_hidden = self.hide_hidden;
        a.read_only = self.read_only;
        a.no_shell = self.no_shell;
        a.display = self.display;
        a.color = self.color;
        a.local_time = self.local_time;
        a.changes.shown = self.changes.shown;
        a.changes.since = self.changes.since;
        if a.changes.shown {
            // The baseline is loaded again, from this process's own history now.
            let since = a.changes.since();
            a.changes.loading = Some(since);
            a.commands.push(super::Command::LoadBaseline(since));
        }
        a.delete.disabled = self.delete.disabled;
        a.delete.dont_ask = self.delete.dont_ask;
        a.delete.last_trash = self.delete.last_trash;
        a.delete.freed = self.delete.freed;
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
        a.remember_cwd(tree);
        a
    }
}
