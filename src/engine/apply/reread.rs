//! Directories read again rather than settled name by name: a flood collapsed into "dirty"
//! has its direct children re-read here; a subtree to verify (a backend asked, a directory
//! whose watches were placed again) goes back to the engine as a rescan.

use super::{Applier, ChangeKind, ChangeLine, Outcome, Place};
use crate::reconcile::{self, Trust};
use crate::scan::{ScanError, ScanOptions};
use crate::tree::{self, NodeId, NodeRef};

impl Applier<'_> {
    pub(super) fn rescan_path(&self, path: &[u8], out: &mut Outcome) {
        match self.place(path) {
            Place::Known(_, _, Some(id)) if self.is_dir(id) => self.rescan_later(id, out),
            Place::Known(dir, _, _) => self.rescan_later(dir, out),
            Place::Ignored => {}
        }
    }

    /// The node at `path` now, if any.
    pub(super) fn node_at(&self, path: &[u8]) -> Option<NodeRef> {
        match self.place(path) {
            Place::Known(_, _, Some(id)) => Some(tree::read(self.lock).node_ref(id)),
            _ => None,
        }
    }

    /// A directory whose watches were placed again (it moved, or the filesystem seen at it
    /// changed), already settled in its parent: its subtree is verified once, unless settling
    /// it put a new node there (`before` is what was there), scanned whole just now. Gone
    /// from the tree, it was deleted or moved on (and is re-read where it went).
    pub(super) fn reread_moved(&self, path: &[u8], before: Option<NodeRef>, out: &mut Outcome) {
        if let Place::Known(_, _, Some(id)) = self.place(path)
            && self.is_dir(id)
            && before.is_some_and(|b| b == tree::read(self.lock).node_ref(id))
        {
            self.rescan_later(id, out);
        }
    }

    /// Re-reads one directory's direct children (a flood collapsed into it).
    pub(super) fn reread(&self, dir: NodeId, out: &mut Outcome) -> Result<(), ScanError> {
        let before = {
            let t = tree::read(self.lock);
            t.totals(t.root()).disk
        };
        let stats = reconcile::run(
            self.lock,
            self.root,
            dir,
            &ScanOptions {
                threads: 1,
                ..self.opts.clone()
            },
            self.progress,
            Trust::Nothing,
            false,
        );
        match stats {
            Ok(s) if s.changed() => {
                let t = tree::read(self.lock);
                let after = t.totals(t.root()).disk;
                out.lines.push(ChangeLine {
                    kind: ChangeKind::Verified,
                    path: self.rel(t.path_of(dir).as_os_str().as_encoded_bytes()),
                    to: None,
                    disk: i128::from(after) - i128::from(before),
                });
            }
            Ok(_) | Err(ScanError::NoSuchNode(_)) => {}
            Err(ScanError::Cancelled) => return Err(ScanError::Cancelled),
            Err(_) => self.rescan_later(dir, out),
        }
        Ok(())
    }
}
