//! How the browser starts: the display settings the command line asks for (ncdu's `--sort`,
//! `--show-mtime`, `-e`, `--apparent-size`, `--color off`...), each left at dtui's default when
//! not given. The keys change them afterwards as usual.

use super::{App, Graph, SortKey};

/// Start settings for the browser; `None` keeps the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prefs {
    /// The column and whether its order is reversed (`r` pressed once: names Z to A, sizes,
    /// counts and times smallest first).
    pub sort: Option<(SortKey, bool)>,
    pub dirs_first: Option<bool>,
    pub apparent: Option<bool>,
    /// The bar column shown.
    pub graph: Option<bool>,
    /// The percent column shown.
    pub percent: Option<bool>,
    pub show_items: Option<bool>,
    pub show_mtime: Option<bool>,
    pub hide_hidden: Option<bool>,
    /// Colours (`--color off`: none, as with `NO_COLOR`).
    pub color: Option<bool>,
    /// `b` refused (ncdu's `--disable-shell`, `-rr`).
    pub no_shell: bool,
}

impl App {
    /// Starts with `prefs` (before the first frame).
    pub fn apply_prefs(&mut self, prefs: &Prefs) {
        if let Some((key, reverse)) = prefs.sort {
            self.sort = key;
            self.reverse = reverse;
        }
        let set = |to: &mut bool, from: Option<bool>| {
            if let Some(v) = from {
                *to = v;
            }
        };
        set(&mut self.dirs_first, prefs.dirs_first);
        set(&mut self.apparent, prefs.apparent);
        set(&mut self.show_items, prefs.show_items);
        set(&mut self.show_mtime, prefs.show_mtime);
        set(&mut self.hide_hidden, prefs.hide_hidden);
        if prefs.color == Some(false) {
            self.color = false;
        }
        if prefs.graph.is_some() || prefs.percent.is_some() {
            let (bar, percent) = match self.graph {
                Graph::Both => (true, true),
                Graph::Bar => (true, false),
                Graph::Percent => (false, true),
                Graph::None => (false, false),
            };
            self.graph = match (prefs.graph.unwrap_or(bar), prefs.percent.unwrap_or(percent)) {
                (true, true) => Graph::Both,
                (true, false) => Graph::Bar,
                (false, true) => Graph::Percent,
                (false, false) => Graph::None,
            };
        }
        self.no_shell |= prefs.no_shell;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Freshness;
    use crate::scan::ProgressSnapshot;
    use crate::tree::{Arena, EntryInfo, Kind, Tree};
    use crate::ui::Status;

    fn app() -> App {
        let root = EntryInfo::bare(Kind::Dir, 0, 0);
        let arena = Arena::create_temp().expect("arena");
        let tree = Tree::create(arena, std::path::Path::new("/r"), &root).expect("tree");
        let status = Status {
            freshness: Freshness::Fresh,
            progress: ProgressSnapshot::default(),
        };
        App::new(&tree, String::new(), status)
    }

    #[test]
    fn unset_prefs_keep_the_defaults() {
        let mut a = app();
        a.apply_prefs(&Prefs::default());
        assert_eq!(
            (a.sort, a.reverse, a.graph),
            (SortKey::Size, false, Graph::Both)
        );
        assert!(!a.show_mtime && !a.no_shell && a.color);
    }

    #[test]
    fn hiding_the_graph_keeps_the_percent_column() {
        let mut a = app();
        a.apply_prefs(&Prefs {
            graph: Some(false),
            show_mtime: Some(true),
            sort: Some((SortKey::Name, true)),
            color: Some(false),
            no_shell: true,
            ..Prefs::default()
        });
        assert_eq!(a.graph, Graph::Percent);
        assert_eq!((a.sort, a.reverse), (SortKey::Name, true));
        assert!(a.show_mtime && a.no_shell && !a.color);
    }
}
