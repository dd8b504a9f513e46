//! What a directory still being walked owes its ancestors: near the start each change is
//! bubbled to the root at once; deeper, it waits in the directory's `Pending` and goes up one
//! level when the last directory below it is done.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::tree::{self, Delta, NodeId, Tree};

/// Directories this deep below the walk's start (or shallower) bubble every slice to the
/// root at once; deeper ones defer (see the module doc).
const EAGER_DEPTH: u32 = 48;

/// A directory whose subtree is still being walked, and the change of its totals that its
/// ancestors have not been charged yet. Dropped when the last directory below it is done;
/// the drop hands the change up one level.
pub(super) struct Pending<'t> {
    tree: &'t RwLock<Tree>,
    node: NodeId,
    depth: u32,
    owed: Mutex<Delta>,
    parent: Option<Arc<Pending<'t>>>,
}

impl<'t> Pending<'t> {
    /// The record of directory `node`, one level below `parent` (`None`: the walk's start).
    pub(super) fn new(
        tree: &'t RwLock<Tree>,
        node: NodeId,
        parent: Option<Arc<Pending<'t>>>,
    ) -> Pending<'t> {
        Pending {
            tree,
            node,
            depth: parent.as_ref().map_or(0, |p| p.depth + 1),
            owed: Mutex::new(Delta::default()),
            parent,
        }
    }

    /// Charges a change of this directory's totals to its ancestors, now or later.
    pub(super) fn owe(&self, d: Delta) {
        if d == Delta::default() {
            return;
        }
        if self.depth <= EAGER_DEPTH {
            tree::write(self.tree).bubble_from(self.node, d);
        } else {
            self.owe_later(d);
        }
    }

    /// `owe` with the tree already locked (one lock per slice, not two).
    pub(super) fn owe_locked(&self, t: &mut Tree, d: Delta) {
        if d == Delta::default() {
            return;
        }
        if self.depth <= EAGER_DEPTH {
            t.bubble_from(self.node, d);
        } else {
            self.owe_later(d);
        }
    }

    fn owe_later(&self, d: Delta) {
        self.owed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add(d);
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        // Iterative: a 100,000-deep chain finishing at once must not recurse.
        let mut owed = std::mem::take(self.owed.get_mut().unwrap_or_else(PoisonError::into_inner));
        let mut parent = self.parent.take();
        while let Some(p) = parent {
            if owed != Delta::default() {
                let moved = tree::write(self.tree).apply_local(p.node, owed);
                p.owe(moved);
            }
            match Arc::into_inner(p) {
                // This was the last reference: the parent is done too; hand its debt up.
                Some(mut done) => {
                    owed =
                        std::mem::take(done.owed.get_mut().unwrap_or_else(PoisonError::into_inner));
                    parent = done.parent.take();
                }
                None => return,
            }
        }
    }
}
