//! The other names of a hard-linked inode whose set of names changed: their link counts are
//! stale (no event names them), so each is found in the tree and stat'ed again.
//!
//! An inode is known to have changed names when the applier stats a name of it, when the tree
//! removes or re-reads one, and when a name of it left the root by a rename in this batch: a
//! hard link made in the root and moved out before the batch (`ln a b; mv b /elsewhere`) is
//! gone when the batch stats `b`, so the inode is stat'ed where it went, by the handle the
//! backend gave with the move (fanotify; inotify reports no link-count change to a directory
//! watch, and names nothing but `b`).

use std::collections::HashSet;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{Applier, Outcome};
use crate::fs::sys;
use crate::scan::ScanError;
pub(in crate::engine) use crate::tree::Linked;
use crate::tree::{self, Kind, NodeId};
use crate::watch::Batch;
use crate::watch::queue::kinds;

/// A stat of a name that may be another name of an inode with names in the tree: its key,
/// if it has other names.
fn with_other_names(st: &sys::Stat) -> Option<Linked> {
    (st.kind() != Kind::Dir && st.nlink > 1).then(|| Linked::of(&st.info(0)))
}

/// `path` below `top` (both absolute), as names; `None` if not strictly below.
fn names_below(top: &[u8], path: &[u8]) -> Option<Vec<CString>> {
    let (top, path) = (
        Path::new(OsStr::from_bytes(top)),
        Path::new(OsStr::from_bytes(path)),
    );
    let names: Vec<CString> = crate::path::relative_components(top, path)?
        .filter_map(|n| CString::new(n.as_bytes()).ok())
        .collect();
    (!names.is_empty()).then_some(names)
}

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

    /// The inodes that left the root by a rename of this batch, each stat'ed where it is now
    /// by its handle: a file directly; a directory opened, and in it the names this batch
    /// created below it (and the entries of the directories it re-reads there: a flood
    /// collapsed the names into them). Each that has other names is relinked. One that cannot
    /// be opened any more has no name left, so none inside changed count through it.
    pub(super) fn moved_out(&self, batch: &Batch, out: &mut Outcome) {
        for c in &batch.changes {
            let Some(handle) = &c.moved_out else {
                continue;
            };
            let flags = libc::O_PATH | libc::O_CLOEXEC;
            let Ok(fd) = crate::watch::fanotify::open_handle(self.root.fd(), handle, flags) else {
                continue;
            };
            let Ok(st) = sys::stat_fd(fd.as_fd()) else {
                continue;
            };
            if st.kind() != Kind::Dir {
                out.linked.extend(with_other_names(&st));
                continue;
            }
            for d in batch
                .changes
                .iter()
                .filter(|d| d.kinds & kinds::CREATED != 0 && d.is_dir != Some(true))
            {
                if let Some(mut names) = names_below(&c.path, &d.path) {
                    let name = names.pop().expect("not empty");
                    let linked = crate::fs::open_down(fd.as_fd(), &names)
                        .and_then(|dir| sys::stat_at(dir.as_fd(), &name));
                    out.linked
                        .extend(linked.ok().as_ref().and_then(with_other_names));
                }
            }
            for d in &batch.dirty_dirs {
                let names = if *d == c.path {
                    Some(Vec::new())
                } else {
                    names_below(&c.path, d)
                };
                if let Some(names) = names {
                    linked_in(fd.as_fd(), &names, &mut out.linked);
                }
            }
        }
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

/// The entries of directory `names` below `top` that have other names.
fn linked_in(top: BorrowedFd<'_>, names: &[CString], out: &mut Vec<Linked>) {
    let Ok(dir) = crate::fs::open_down(top, names) else {
        return;
    };
    let (mut buf, mut listing) = (Vec::new(), sys::Listing::default());
    if sys::read_dir(dir.as_fd(), &mut buf, &mut listing).is_err() {
        return;
    }
    for i in 0..listing.len() {
        if listing.d_type(i) != sys::DT_DIR
            && let Ok(st) = sys::stat_at(dir.as_fd(), listing.c_name(i))
        {
            out.extend(with_other_names(&st));
        }
    }
}
