//! An entry's own attributes: sizes, mtime, inode and link count in the node's words or a
//! rare record, a directory's device and listing stamp, and read errors (the entry's errno,
//! and the mark on every ancestor above it).

use super::{Node, NodeId, Own, Rare, Time, Tree, TreeError, dir_flags, flags, node};

impl Tree {
    /// An entry's own attributes at full precision (a plain file has no inode number and
    /// whole seconds of mtime: see `Own::stored`).
    #[must_use]
    pub fn own(&self, id: NodeId) -> Own {
        let n = self.node(id);
        let rare = n.rare_index().map(|r| &self.arena.rares()[r as usize]);
        let error = n.flags & flags::READ_ERROR != 0;
        if n.is_dir() {
            let d = &self.arena.dirs()[n.aux as usize];
            let (apparent, disk) = rare.map_or(
                (u64::from(d.apparent), u64::from(n.disk_blocks) * 512),
                |r| (r.apparent, r.disk),
            );
            let mtime = rare.map_or(Time::from_ns(d.mtime_ns), |r| Time {
                sec: r.mtime,
                nsec: r.mtime_nsec,
            });
            return Own {
                apparent,
                disk,
                mtime,
                ino: Some(d.ino),
                nlink: 1,
                errno: if error { u32::from(d.errno) } else { 0 },
            };
        }
        match rare {
            Some(r) => Own {
                apparent: r.apparent,
                disk: r.disk,
                mtime: Time {
                    sec: r.mtime,
                    nsec: r.mtime_nsec,
                },
                ino: (r.ino != 0).then_some(r.ino),
                nlink: r.nlink,
                errno: if error { r.errno } else { 0 },
            },
            None => Own {
                apparent: u64::from(n.aux),
                disk: u64::from(n.disk_blocks) * 512,
                mtime: Time {
                    sec: i64::from(n.word),
                    nsec: 0,
                },
                ino: None,
                nlink: 1,
                errno: 0,
            },
        }
    }

    /// The inode number, where the tree keeps it (directories, hard links, rare entries).
    #[must_use]
    pub fn ino(&self, id: NodeId) -> Option<u64> {
        self.own(id).ino
    }

    /// The modification time (whole seconds for a plain file).
    #[must_use]
    pub fn mtime(&self, id: NodeId) -> Time {
        self.own(id).mtime
    }

    /// Writes an entry's own attributes: in the node's words when they fit, else in a `Rare`
    /// record, taken or given back as needed. A directory keeps its inode, times and errno in
    /// its `DirRec`; only sizes that do not fit make it rare.
    pub(super) fn store_own(&mut self, id: NodeId, o: &Own) -> Result<(), TreeError> {
        let n = *self.node(id);
        let dir = n.is_dir();
        let rare = if dir {
            o.apparent > u64::from(u32::MAX)
                || !node::plain_disk(o.disk)
                || o.mtime.as_ns().is_none()
        } else {
            o.needs_rare()
        };
        let slot = match (n.rare_index(), rare) {
            (Some(r), true) => Some(r),
            (None, true) => Some(self.alloc_rare()?),
            (Some(r), false) => {
                self.free_rare(r);
                None
            }
            (None, false) => None,
        };
        if let Some(r) = slot {
            // A kept record keeps its place in a hard-link ring.
            let link = match n.rare_index() {
                Some(_) => self.arena.rares()[r as usize].link,
                None => r,
            };
            self.arena.rares_mut()[r as usize] = Rare {
                apparent: o.apparent,
                disk: o.disk,
                mtime: o.mtime.sec,
                ino: o.ino.unwrap_or(0),
                mtime_nsec: o.mtime.nsec,
                nlink: o.nlink,
                errno: o.errno,
                link,
            };
        }
        let node = self.node_mut(id);
        if rare {
            node.kind_bits |= node::RARE_BIT;
        } else {
            node.kind_bits &= !node::RARE_BIT;
        }
        if dir {
            node.disk_blocks = if rare { 0 } else { (o.disk / 512) as u32 };
            node.word = slot.unwrap_or(0);
            let aux = node.aux as usize;
            let d = &mut self.arena.dirs_mut()[aux];
            d.apparent = if rare { 0 } else { o.apparent as u32 };
            d.mtime_ns = if rare {
                0
            } else {
                o.mtime.as_ns().unwrap_or(0)
            };
            d.ino = o.ino.unwrap_or(0);
            d.errno = u16::try_from(o.errno).unwrap_or(u16::MAX);
        } else if let Some(r) = slot {
            node.aux = r;
            node.disk_blocks = 0;
            node.word = 0;
        } else {
            node.aux = o.apparent as u32;
            node.disk_blocks = (o.disk / 512) as u32;
            node.word = o.mtime.sec as u32;
        }
        Ok(())
    }

    fn alloc_rare(&mut self) -> Result<u32, TreeError> {
        let free = self.arena.header().free_rare;
        if free != u32::MAX {
            self.arena.header_mut().free_rare = self.arena.rares()[free as usize].link;
            return Ok(free);
        }
        self.arena.reserve_rares(1)?;
        Ok(self.arena.push_rares(1))
    }

    pub(super) fn free_rare(&mut self, r: u32) {
        let head = self.arena.header().free_rare;
        self.arena.rares_mut()[r as usize] = Rare {
            link: head,
            ..bytemuck::Zeroable::zeroed()
        };
        self.arena.header_mut().free_rare = r;
    }

    /// The errno recorded for a failed read of this entry (0 if none).
    #[must_use]
    pub fn errno(&self, id: NodeId) -> u32 {
        if self.node(id).flags & flags::READ_ERROR == 0 {
            return 0;
        }
        self.own(id).errno
    }

    /// The link count of a non-directory (directories report 1).
    #[must_use]
    pub fn nlink(&self, id: NodeId) -> u32 {
        let n = self.node(id);
        if n.is_dir() || !n.is_rare() || n.flags & flags::READ_ERROR != 0 {
            1
        } else {
            self.own(id).nlink
        }
    }

    /// The raw `st_dev` of an entry (a non-directory's is its parent's).
    #[must_use]
    pub fn dev(&self, id: NodeId) -> Option<u64> {
        let idx = match self.dir_rec(id) {
            Some(d) => u32::from(d.dev),
            None => self.dev_index_of_parent(self.node(id)),
        };
        let h = self.arena.header();
        (idx < h.device_count).then(|| h.devices[idx as usize])
    }

    pub(super) fn dev_index_of_parent(&self, n: &Node) -> u32 {
        if n.parent == u32::MAX {
            return u32::MAX;
        }
        self.dir_rec(NodeId(n.parent))
            .map_or(u32::MAX, |d| u32::from(d.dev))
    }

    /// The listing state of a directory: the ctime its listing was read at and whether that
    /// listing can be trusted while (ctime, mtime) stay the same.
    #[must_use]
    pub fn listing_stamp(&self, dir: NodeId) -> Option<(Time, bool)> {
        self.dir_rec(dir).map(|d| {
            if d.ctime_ns == node::NO_CTIME {
                return (Time::default(), false);
            }
            (
                Time::from_ns(d.ctime_ns),
                d.dflags & dir_flags::LISTING_TRUSTED != 0,
            )
        })
    }

    /// Records that a directory's listing was read while its ctime was `ctime`; `trusted`
    /// when that was more than a clock tick after the change (see `dir_flags`).
    pub fn set_listing_stamp(&mut self, dir: NodeId, ctime: Time, trusted: bool) {
        if let Some(d) = self.dir_rec_mut(dir) {
            // A ctime that does not fit is never a proof: the listing is read again.
            let ns = ctime.as_ns();
            d.ctime_ns = ns.unwrap_or(node::NO_CTIME);
            if trusted && ns.is_some() {
                d.dflags |= dir_flags::LISTING_TRUSTED;
            } else {
                d.dflags &= !dir_flags::LISTING_TRUSTED;
            }
        }
    }

    pub(super) fn mark_error_below(&mut self, from: NodeId) {
        let mut cur = from;
        while !cur.is_none() {
            let n = self.node_mut(cur);
            if n.flags & flags::ERROR_BELOW != 0 {
                return;
            }
            n.flags |= flags::ERROR_BELOW;
            cur = NodeId(n.parent);
        }
    }

    /// Records that a directory could not be opened or listed.
    pub fn set_read_error(&mut self, dir: NodeId, errno: u32) {
        self.node_mut(dir).flags |= flags::READ_ERROR;
        self.set_errno(dir, errno);
        if let Some(p) = self.parent(dir) {
            self.mark_error_below(p);
        }
    }

    fn set_errno(&mut self, id: NodeId, errno: u32) {
        if let Some(d) = self.dir_rec_mut(id) {
            d.errno = u16::try_from(errno).unwrap_or(u16::MAX);
        } else {
            let mut o = self.own(id);
            o.errno = errno;
            // Only directories are reported unreadable after they were added; should the
            // rare records fail to grow, the flag stays without its errno.
            let _ = self.store_own(id, &o);
        }
    }

    /// Clears the flags the scanner sets on a directory before it (re-)reads it.
    pub fn clear_read_error(&mut self, dir: NodeId) {
        if self.node(dir).flags & flags::READ_ERROR == 0 {
            return;
        }
        self.set_errno(dir, 0);
        self.node_mut(dir).flags &= !flags::READ_ERROR;
        if let Some(p) = self.parent(dir) {
            self.recompute_error_below(p);
        }
    }

    pub(super) fn recompute_error_below(&mut self, from: NodeId) {
        let mut cur = from;
        while !cur.is_none() {
            let below = self
                .children(cur)
                .any(|c| self.flags(c) & (flags::READ_ERROR | flags::ERROR_BELOW) != 0);
            let n = self.node_mut(cur);
            let had = n.flags & flags::ERROR_BELOW != 0;
            if had == below {
                return;
            }
            if below {
                n.flags |= flags::ERROR_BELOW;
            } else {
                n.flags &= !flags::ERROR_BELOW;
            }
            cur = NodeId(n.parent);
        }
    }
}
