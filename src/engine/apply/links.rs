//! The other names of a hard-linked inode whose set of names changed: their link counts are
//! stale (no event names them), so each is found in the tree and stat'ed again.

use std::collections::HashSet;

use super::{Applier, Outcome};
use crate::scan::ScanError;
pub(in crate::engine) use crate::tree::Linked;
use crate::tree::{self, NodeId};

impl Applier<'_> {
    /// Stats again every name in the tree of an inode whose set of names changed in this
    /// batch (a link added, removed, or its count changed), so each name's link count and the
    /// group's one charge are right. The tree indexes only linked inodes by (dev, ino), and an
    /// inode that just became linked has its other names unindexed: one pass over the inode
    /// fingerprints (4 bytes an entry), once per batch that touched links, then only the
    /// candidates' nodes.
    pub(super) fn relink(&self, out: &mut Outcome) -> Result<(), ScanError> {
        // What the applier saw, and what the tree noted wherever names changed (a directory
        // re-read whole, a new subtree scanned).
        let mut keys: HashSet<Linked> = out.linked.drain(..).collect();
        keys.extend(tree::write(self.lock).take_linked());
        if keys.is_empty() {
            return Ok(());
        }
        let inodes: Vec<(u64, u64)> = keys.iter().map(|k| (k.dev, k.ino)).collect();
        let by_inode: HashSet<(u64, u64)> = inodes.iter().copied().collect();
        let by_fingerprint: HashSet<u32> = keys
            .iter()
            .filter(|k| k.ino != 0)
            .map(|k| tree::fingerprint(k.dev, k.ino))
            .collect();
        // Keys without an inode (a linked entry whose inode the tree did not know) match
        // by sizes alone; so does an entry whose inode the tree cannot tell.
        let by_sizes: HashSet<(u64, u64, u64, i64)> = keys.iter().map(Linked::sizes).collect();
        let sizes_only: HashSet<(u64, u64, u64, i64)> = keys
            .iter()
            .filter(|k| k.ino == 0)
            .map(Linked::sizes)
            .collect();
        let members: Vec<(NodeId, Vec<u8>, NodeId)> = {
            let t = tree::read(self.lock);
            t.inode_candidates(&inodes)
                .into_iter()
                .filter(|&id| {
                    let Some(dev) = t.dev(id) else {
                        return false;
                    };
                    let o = t.own(id);
                    let sizes = (dev, o.apparent, o.disk, o.mtime.sec);
                    match (o.ino, t.fingerprint(id)) {
                        (Some(ino), _) => {
                            by_inode.contains(&(dev, ino)) || sizes_only.contains(&sizes)
                        }
                        // A matching fingerprint names the inode, bar a collision (which
                        // costs a stat).
                        (None, Some(fp)) => {
                            by_fingerprint.contains(&fp) || sizes_only.contains(&sizes)
                        }
                        (None, None) => by_sizes.contains(&sizes),
                    }
                })
                .filter_map(|id| Some((t.parent(id)?, t.name(id).to_vec(), id)))
                .collect()
        };
        for (parent, name, id) in members {
            self.settle(parent, &name, Some(id), out)?;
        }
        // Their own link counts changed too: already settled.
        out.linked.clear();
        tree::write(self.lock).take_linked();
        Ok(())
    }

    /// Stats again every name of the linked inodes whose names in the tree are not as many as
    /// their link count: after a pass that ran while names came and went, an inode's other
    /// name may have been stat'ed before a name of it went (or came), and no event names it.
    /// Costs a stat per name of such an inode (a link to outside the root is one, once).
    pub(in crate::engine) fn relink_odd(&self) -> Result<(), ScanError> {
        let keys = {
            let mut t = tree::write(self.lock);
            let odd = t.odd_links();
            odd.into_iter()
                .filter_map(|id| t.linked(id))
                .collect::<Vec<_>>()
        };
        if keys.is_empty() {
            return Ok(());
        }
        self.relink_keys(keys)
    }

    /// Stats again every name in the tree of these inodes, and of those the tree's `linked`
    /// log holds: a pass that verified one subtree stat'ed the names inside it, but a name
    /// removed or added there changed the link count of the inode's names outside it too.
    pub(in crate::engine) fn relink_keys(&self, keys: Vec<Linked>) -> Result<(), ScanError> {
        let mut out = Outcome {
            linked: keys,
            ..Outcome::default()
        };
        self.relink(&mut out)
    }
}
