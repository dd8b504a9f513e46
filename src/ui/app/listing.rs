//! The open directory as a list: its rows filtered and sorted, listed again only when the
//! engine's delta says something in it changed (or the user changed the order), with the
//! cursor kept on its entry and on its screen row through every re-sort. Rows a batch changed
//! are highlighted for `FLASH` with the sign and size of their change. The newest mtime of a
//! subtree (`m`, `M`) is computed only while shown, and kept per tree generation.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::Instant;

use ratatui::layout::Rect;

use super::{App, FLASH, Sel, SortKey, is_hidden};
use crate::engine::TreeDelta;
use crate::tree::{Kind, NodeId, NodeRef, Tree};

/// What the order of the list depends on, besides the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ViewKey {
    cwd: NodeId,
    sort: SortKey,
    reverse: bool,
    dirs_first: bool,
    apparent: bool,
    hide_hidden: bool,
    busy: bool,
    mtime_shown: bool,
    /// The baseline the order by change was computed against.
    baseline_at: Option<i64>,
}

/// A row a batch changed, highlighted until `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flash {
    pub node: NodeRef,
    /// Change of the apparent size and of the disk usage (bytes, signed).
    pub apparent: i128,
    pub disk: i128,
    /// The entry appeared with this batch (moved in, created).
    pub new: bool,
    pub until: Instant,
}

/// Newest mtime of each directory's subtree, valid for one tree generation and carried to the
/// next by each delta (whose `touched` holds every changed node and its ancestors).
#[derive(Debug, Default)]
pub(super) struct Mtimes {
    generation: Option<u64>,
    /// What is kept is a preview's (`Tree::is_preview`): its lists below the root are cut,
    /// and the whole tree that replaces it has the same generation.
    of_preview: bool,
    newest: HashMap<NodeId, i64>,
}

impl Mtimes {
    /// Forgets what `delta` changed; a delta that does not follow the cached generation (one
    /// missed, or a pass that changed the tree without one) forgets everything.
    fn forget(&mut self, delta: &TreeDelta) {
        if !self.of_preview && self.generation.is_some_and(|g| g + 1 == delta.generation) {
            for r in &delta.touched {
                self.newest.remove(&r.id);
            }
            self.generation = Some(delta.generation);
        } else {
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.newest.clear();
        self.generation = None;
    }

    /// The newest mtime in `id`'s subtree (its own for a non-directory). Walks a directory's
    /// subtree once per generation, keeping every directory below on the way.
    fn get(&mut self, tree: &Tree, id: NodeId) -> i64 {
        if tree.kind(id) != Kind::Dir {
            return tree.mtime(id).sec;
        }
        if self.generation != Some(tree.generation()) || self.of_preview != tree.is_preview() {
            self.newest.clear();
            self.generation = Some(tree.generation());
            self.of_preview = tree.is_preview();
        }
        if let Some(&m) = self.newest.get(&id) {
            return m;
        }
        // Post-order without recursion (trees 10,000 deep must not overflow the stack).
        let mut stack = vec![(id, false)];
        while let Some((dir, children_done)) = stack.pop() {
            if children_done {
                let mut m = tree.mtime(dir).sec;
                for c in tree.children(dir) {
                    let cm = if tree.kind(c) == Kind::Dir {
                        self.newest.get(&c).copied().unwrap_or(i64::MIN)
                    } else {
                        tree.mtime(c).sec
                    };
                    m = m.max(cm);
                }
                self.newest.insert(dir, m);
            } else if !self.newest.contains_key(&dir) {
                stack.push((dir, true));
                for c in tree.children(dir) {
                    if tree.kind(c) == Kind::Dir && !self.newest.contains_key(&c) {
                        stack.push((c, false));
                    }
                }
            }
        }
        self.newest.get(&id).copied().unwrap_or(0)
    }

    /// As `get`, keeping nothing: what was kept for this generation, else a walk of its own.
    fn peek(&self, tree: &Tree, id: NodeId) -> i64 {
        if tree.kind(id) != Kind::Dir {
            return tree.mtime(id).sec;
        }
        if self.generation == Some(tree.generation())
            && self.of_preview == tree.is_preview()
            && let Some(&m) = self.newest.get(&id)
        {
            return m;
        }
        Mtimes::default().get(tree, id)
    }
}

impl App {
    /// Before each frame, from the loop: where the list lies on screen (`list`: its first row,
    /// for clicks, and its height, the page the keys move by), then the selection, the rows
    /// and the view made valid for the tree as it is now, and the newest mtimes of the rows on
    /// screen kept, so that the frame is drawn from this state alone (`view::draw`).
    pub fn lay_out(&mut self, list: Rect, tree: &Tree) {
        self.page = usize::from(list.height.max(1));
        self.list_top = list.y;
        self.sync(tree);
        self.scroll_to_cursor(tree);
        if self.search.showing {
            // The results' first line says what was searched.
            self.search.page = usize::from(list.height.saturating_sub(1)).max(1);
            self.search.scroll();
            return;
        }
        self.refresh_rows(tree);
        if self.show_mtime {
            let up = usize::from(self.has_up(tree));
            let first = self.offset.saturating_sub(up).min(self.rows.len());
            let end = (self.offset + self.page)
                .saturating_sub(up)
                .min(self.rows.len());
            for &id in &self.rows[first..end] {
                self.mtimes.get(tree, id);
            }
        }
    }

    /// The newest mtime in an entry's subtree (what `m` shows and `M` sorts by).
    pub fn newest_mtime(&mut self, tree: &Tree, id: NodeId) -> i64 {
        self.mtimes.get(tree, id)
    }

    /// `newest_mtime` for drawing: what `lay_out` kept for the rows on screen.
    #[must_use]
    pub fn shown_mtime(&self, tree: &Tree, id: NodeId) -> i64 {
        self.mtimes.peek(tree, id)
    }

    fn view_key(&self) -> ViewKey {
        ViewKey {
            cwd: self.cwd,
            sort: self.sort,
            reverse: self.reverse,
            dirs_first: self.dirs_first,
            apparent: self.apparent,
            hide_hidden: self.hide_hidden,
            busy: self.busy(),
            mtime_shown: self.show_mtime,
            baseline_at: self.changes.baseline.as_ref().map(|b| b.at_ms),
        }
    }

    /// A batch was applied: list the directory again if the batch touched it (every changed
    /// node comes with its ancestors), and highlight the rows whose size changed or that
    /// appeared.
    pub(super) fn applied(&mut self, delta: &TreeDelta, tree: &Tree) {
        self.mtimes.forget(delta);
        if !delta.touched.iter().any(|r| r.id == self.cwd) {
            return;
        }
        self.rows_dirty = true;
        let until = Instant::now() + FLASH;
        for r in &delta.touched {
            let Some(id) = tree.resolve(*r) else {
                continue;
            };
            if tree.parent(id) != Some(self.cwd) || (self.hide_hidden && is_hidden(tree, id)) {
                continue;
            }
            let t = tree.totals(id);
            let (apparent, disk, new) = match self.sizes.get(&id) {
                Some(&(g, a, d)) if g == r.generation => (a, d, false),
                _ => (0, 0, true),
            };
            let flash = Flash {
                node: *r,
                apparent: i128::from(t.apparent) - i128::from(apparent),
                disk: i128::from(t.disk) - i128::from(disk),
                new,
                until,
            };
            if new || flash.apparent != 0 || flash.disk != 0 {
                self.flashes.insert(id, flash);
            }
            self.sizes.insert(id, (r.generation, t.apparent, t.disk));
        }
    }

    /// The children of the current directory, filtered and sorted.
    pub fn rows(&mut self, tree: &Tree) -> &[NodeId] {
        self.refresh_rows(tree);
        &self.rows
    }

    /// Lists the directory again when its order may have changed: a delta touched it, the user
    /// changed the order or the directory, a pass (which sends no deltas until it ends)
    /// changed its totals, or a row on screen is no longer a child of it.
    pub(super) fn refresh_rows(&mut self, tree: &Tree) {
        let key = self.view_key();
        let guess = self.busy().then(|| {
            let t = tree.totals(self.cwd);
            (t.apparent, t.disk, t.items, tree.children(self.cwd).next())
        });
        let page = self.page.max(1);
        let shown = self.offset.min(self.rows.len())..(self.offset + page).min(self.rows.len());
        let gone = self.rows[shown]
            .iter()
            .any(|&r| !tree.is_live(r) || tree.parent(r) != Some(self.cwd));
        if self.rows_key == Some(key) && !self.rows_dirty && guess == self.pass_guess && !gone {
            return;
        }
        let same_dir = self.rows_key.is_some_and(|k| k.cwd == self.cwd);
        let up = usize::from(self.has_up(tree));
        // Where the cursor was: its index, and its row on screen.
        let before = match self.selected {
            Sel::Up => Some(0),
            Sel::Node(id) => self.rows.iter().position(|&r| r == id).map(|i| i + up),
        };
        if key.busy || self.rows_key.is_some_and(|k| k.busy != key.busy) {
            // A pass changes mtimes without deltas.
            self.mtimes.clear();
        }
        let mut rows: Vec<NodeId> = tree
            .children(self.cwd)
            .filter(|&c| !self.hide_hidden || !is_hidden(tree, c))
            .collect();
        self.sort_rows(tree, &mut rows);
        self.sizes.clear();
        for &r in &rows {
            let t = tree.totals(r);
            self.sizes
                .insert(r, (tree.node(r).generation, t.apparent, t.disk));
        }
        self.rows = rows;
        self.rows_key = Some(key);
        self.rows_dirty = false;
        self.pass_guess = guess;
        if !same_dir {
            // Entering or leaving a directory places the cursor itself.
            return;
        }
        let count = self.rows.len() + up;
        if self.follow_top {
            self.selected = self.rows.first().map_or(Sel::Up, |&r| Sel::Node(r));
            self.offset = 0;
            return;
        }
        let after = match self.selected {
            Sel::Up => Some(0),
            Sel::Node(id) => self.rows.iter().position(|&r| r == id).map(|i| i + up),
        };
        let index = match (after, before) {
            (Some(i), _) => i,
            // The entry went: the cursor stays on its screen row, on whatever is there now.
            (None, Some(b)) if count > 0 => {
                let b = b.min(count - 1);
                self.selected = if up == 1 && b == 0 {
                    Sel::Up
                } else {
                    Sel::Node(self.rows[b - up])
                };
                b
            }
            (None, _) => return,
        };
        if let Some(b) = before
            && !self.user_order
        {
            // The view follows the entry so that it stays on the same screen row (as far as
            // the list reaches: no empty rows below it while rows above are hidden).
            let screen = b.saturating_sub(self.offset);
            self.offset = index.saturating_sub(screen).min(count.saturating_sub(page));
        }
    }

    fn sort_rows(&mut self, tree: &Tree, rows: &mut Vec<NodeId>) {
        let mtimes: Vec<i128> = match self.sort {
            SortKey::Mtime => rows
                .iter()
                .map(|&r| i128::from(self.mtimes.get(tree, r)))
                .collect(),
            SortKey::Change => rows.iter().map(|&r| self.change_key(tree, r)).collect(),
            _ => vec![0; rows.len()],
        };
        let mut keyed: Vec<(NodeId, i128)> = rows.iter().copied().zip(mtimes).collect();
        let by_name = |a: NodeId, b: NodeId| tree.name(a).cmp(tree.name(b));
        let size = |id: NodeId| {
            let t = tree.totals(id);
            if self.apparent { t.apparent } else { t.disk }
        };
        keyed.sort_by(|&(a, ma), &(b, mb)| {
            let primary = match self.sort {
                SortKey::Size => size(b).cmp(&size(a)),
                SortKey::Items => tree.totals(b).items.cmp(&tree.totals(a).items),
                SortKey::Mtime | SortKey::Change => mb.cmp(&ma),
                SortKey::Name => Ordering::Equal,
            };
            let primary = if self.reverse {
                primary.reverse()
            } else {
                primary
            };
            let name = if self.sort == SortKey::Name && self.reverse {
                by_name(b, a)
            } else {
                by_name(a, b)
            };
            let dirs = if self.dirs_first {
                let d = |x: NodeId| tree.kind(x) != Kind::Dir;
                d(a).cmp(&d(b))
            } else {
                Ordering::Equal
            };
            dirs.then(primary).then(name)
        });
        rows.clear();
        rows.extend(keyed.into_iter().map(|(id, _)| id));
    }

    /// The rows as last listed (by `lay_out` before a frame), for drawing.
    #[must_use]
    pub fn listed(&self) -> &[NodeId] {
        &self.rows
    }

    /// Index of the selected row in the list (`..` counted), clamped to the list.
    pub fn cursor(&mut self, tree: &Tree) -> usize {
        self.refresh_rows(tree);
        self.listed_cursor(tree)
    }

    /// `cursor` in the rows as last listed, for drawing.
    #[must_use]
    pub fn listed_cursor(&self, tree: &Tree) -> usize {
        let up = usize::from(self.has_up(tree));
        match self.selected {
            Sel::Up => 0,
            Sel::Node(id) => self
                .rows
                .iter()
                .position(|&r| r == id)
                .map_or(0, |i| i + up),
        }
    }

    pub(super) fn row_count(&mut self, tree: &Tree) -> usize {
        let up = usize::from(self.has_up(tree));
        self.rows(tree).len() + up
    }

    pub(super) fn select_index(&mut self, tree: &Tree, index: usize) {
        let up = usize::from(self.has_up(tree));
        let count = self.row_count(tree);
        if count == 0 {
            self.selected = Sel::Up;
            return;
        }
        let index = index.min(count - 1);
        self.selected = if up == 1 && index == 0 {
            Sel::Up
        } else {
            Sel::Node(self.rows(tree)[index - up])
        };
        self.scroll_to_cursor(tree);
    }

    /// Keeps the cursor on screen, moving the view only when it must.
    pub fn scroll_to_cursor(&mut self, tree: &Tree) {
        let cursor = self.cursor(tree);
        let page = self.page.max(1);
        if cursor < self.offset {
            self.offset = cursor;
        } else if cursor >= self.offset + page {
            self.offset = cursor + 1 - page;
        }
        // No empty screen rows below the list while rows above are hidden.
        let count = self.row_count(tree);
        self.offset = self.offset.min(count.saturating_sub(page));
    }
}
