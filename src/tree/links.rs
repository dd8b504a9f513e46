//! Hard links: one charge per (device, inode) group. A group's members form a ring through
//! their rare records and its charged member is found by its key in `Tree::links`; both are
//! built from the nodes on first need (a tree loaded from the cache may never change a link).

use super::{Charge, EntryInfo, Kind, NodeId, Tree, TreeError, flags, idtable};

/// A linked inode whose set of names changed (a name came, went, or its link count moved):
/// its other names in the tree hold a link count no event corrects, so whoever applies
/// changes stats them again (`take_linked`). Found by (dev, ino) where the tree keeps the
/// inode or its fingerprint, else by its sizes and mtime (a name loaded from the cache and
/// not stat'ed since).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Linked {
    pub dev: u64,
    /// 0 when not known.
    pub ino: u64,
    pub apparent: u64,
    pub disk: u64,
    pub mtime: i64,
}

impl Linked {
    /// The inode a stat describes.
    #[must_use]
    pub fn of(info: &EntryInfo) -> Linked {
        Linked {
            dev: info.dev,
            ino: info.ino,
            apparent: info.apparent,
            disk: info.disk,
            mtime: info.mtime,
        }
    }

    /// (dev, apparent, disk, mtime): what tells an inode without its number.
    #[must_use]
    pub fn sizes(&self) -> (u64, u64, u64, i64) {
        (self.dev, self.apparent, self.disk, self.mtime)
    }
}

/// How an entry joins its hard-link group (see `Tree::join_link_group`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Join {
    /// A name new to the tree: counted elsewhere if its group has a charged name.
    New,
    /// A name the tree held before its inode had other names in it: it takes the charge.
    Known,
}

/// The hash of a hard-link group's key (device index, inode).
fn link_hash(key: (u32, u64)) -> u64 {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&key.0.to_le_bytes());
    b[4..].copy_from_slice(&key.1.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64(&b)
}

impl Tree {
    /// Rebuilds the hard-link groups from the nodes (only rare nodes can be links): each
    /// group's charged member in `links`, and the ring of its members through their records.
    pub(super) fn rebuild_links(&mut self) {
        let linked: Vec<NodeId> = self
            .arena
            .nodes()
            .iter()
            .enumerate()
            .filter(|&(i, n)| n.is_rare() && self.holds_entry(i, n))
            .map(|(i, _)| NodeId(i as u32))
            .filter(|&id| self.link_key(id).is_some())
            .collect();
        let mut table = idtable::TaggedIdTable::sparse_for(linked.len() / 2);
        let dup = |t: &Tree, n: NodeId| t.node(n).flags & flags::HARDLINK_DUP != 0;
        // One member of each group (to find its head once all are in), and the members
        // charged besides their group's head.
        let mut groups = Vec::new();
        let mut charged_twice = Vec::new();
        for id in linked {
            let Some(key) = self.link_key(id) else {
                continue;
            };
            let hash = link_hash(key);
            match table.find(hash, |s| self.link_key(NodeId(s)) == Some(key)) {
                None => {
                    self.set_ring_next(id, id);
                    table.insert(id.0, hash);
                    groups.push((id, key));
                }
                Some(head) => {
                    let head = NodeId(head);
                    let after = self.ring_next(head).unwrap_or(head);
                    self.set_ring_next(id, after);
                    self.set_ring_next(head, id);
                    match (dup(self, head), dup(self, id)) {
                        (true, false) => {
                            table.replace(head.0, id.0, hash);
                        }
                        (false, false) => charged_twice.push(id),
                        _ => {}
                    }
                }
            }
        }
        self.links = table;
        self.links_built = true;
        // A loaded tree holds exactly one charged member per group, unless its cache lied (a
        // forged flag or inode): one charged twice, or none, would stay so through every
        // catch-up, since each name on its own is unchanged. The head is the one charged.
        for id in charged_twice {
            self.node_mut(id).flags |= flags::HARDLINK_DUP;
            self.recharge(id, -1);
        }
        for (id, key) in groups {
            let head = self.group_head(key).unwrap_or(id);
            if dup(self, head) {
                self.node_mut(head).flags &= !flags::HARDLINK_DUP;
                self.recharge(head, 1);
            }
        }
    }

    /// Adds (`sign` 1) or takes away (-1) an entry's own sizes from its ancestors' totals: its
    /// charge began or ended, the entry itself unchanged.
    fn recharge(&mut self, id: NodeId, sign: i128) {
        let own = self.own(id);
        if let Some(p) = self.parent(id) {
            self.bubble(
                p,
                Charge {
                    apparent: sign * i128::from(own.apparent),
                    disk: sign * i128::from(own.disk),
                    items: 0,
                },
            );
        }
    }

    /// Builds the hard-link groups now, if this tree has not yet, rather than at their first
    /// use: a group a loaded cache left charged twice or not at all is charged once from
    /// here on (see `rebuild_links`), even if no member of it ever changes.
    pub fn build_links(&mut self) {
        self.ensure_links();
    }

    /// Builds the hard-link groups if this tree has not yet (see `links`).
    pub(super) fn ensure_links(&mut self) {
        if !self.links_built {
            self.rebuild_links();
        }
    }

    /// The charged member of the hard-link group with this key.
    fn group_head(&self, key: (u32, u64)) -> Option<NodeId> {
        self.links
            .find(link_hash(key), |s| self.link_key(NodeId(s)) == Some(key))
            .map(NodeId)
    }

    /// The next member of a hard link's ring (`None` for an entry without a record).
    fn ring_next(&self, id: NodeId) -> Option<NodeId> {
        let r = self.node(id).rare_index()?;
        let next = NodeId(self.arena.rares()[r as usize].link);
        self.is_live(next).then_some(next)
    }

    fn set_ring_next(&mut self, id: NodeId, next: NodeId) {
        if let Some(r) = self.node(id).rare_index() {
            self.arena.rares_mut()[r as usize].link = next.0;
        }
    }

    /// The members of `id`'s hard-link group, `id` first (only `id` for anything else).
    pub(super) fn group_of(&self, id: NodeId) -> Vec<NodeId> {
        let mut out = vec![id];
        if self.link_key(id).is_none() {
            return out;
        }
        let mut cur = self.ring_next(id);
        while let Some(c) = cur.filter(|&c| c != id && out.len() <= self.len() as usize) {
            out.push(c);
            cur = self.ring_next(c);
        }
        out
    }

    /// Takes `id` out of its hard-link group; returns the member that is to carry the charge
    /// now, if `id` carried it and others remain.
    pub(super) fn leave_group(&mut self, id: NodeId, key: (u32, u64)) -> Option<NodeId> {
        self.log_linked(id);
        let head = self.group_head(key);
        let hash = link_hash(key);
        let next = self.ring_next(id).filter(|&n| n != id);
        let Some(next) = next else {
            if head == Some(id) {
                self.links.remove(id.0, hash);
            }
            return None;
        };
        let mut prev = next;
        for _ in 0..self.len() {
            match self.ring_next(prev) {
                Some(p) if p == id => break,
                Some(p) => prev = p,
                None => break,
            }
        }
        self.set_ring_next(prev, next);
        self.set_ring_next(id, id);
        if head == Some(id) {
            self.links.replace(id.0, next.0, hash);
            return Some(next);
        }
        None
    }

    /// A group's member that is to carry the charge now (its charged member left): charged
    /// to its ancestors, unless it went too.
    pub(super) fn take_charge(&mut self, next: NodeId) {
        if self.is_live(next) && self.node(next).flags & flags::HARDLINK_DUP != 0 {
            self.node_mut(next).flags &= !flags::HARDLINK_DUP;
            self.recharge(next, 1);
        }
    }

    /// Adds a linked entry to its group. A newcomer's stat is the newest word on the inode's
    /// sizes, so the group takes them.
    ///
    /// Which name carries the charge: the name the tree knew first, as `du` and ncdu charge
    /// the first name their walk meets. A group's first member carries it and a new name
    /// (`Join::New`: added by a scan, an event, a re-read) joins as counted elsewhere. A name
    /// that was in the tree before its inode had other names (`Join::Known`: a plain file that
    /// `ln` or `cp -al` just linked, re-stat'ed after the new names were added) takes the
    /// charge from them: the snapshot is what is new, the original keeps its bytes. A fresh
    /// scan charges the first name its walk adds, which its threads order as they go, so only
    /// the totals of the whole group's common ancestors are the same whichever name is charged.
    pub(super) fn join_link_group(&mut self, id: NodeId, join: Join) -> Result<(), TreeError> {
        let Some(key) = self.link_key(id) else {
            return Ok(());
        };
        self.log_linked(id);
        match self.group_head(key) {
            None => {
                self.set_ring_next(id, id);
                self.links.insert(id.0, link_hash(key));
            }
            Some(charged) => {
                let after = self.ring_next(charged).unwrap_or(charged);
                self.set_ring_next(id, after);
                self.set_ring_next(charged, id);
                self.node_mut(id).flags |= flags::HARDLINK_DUP;
                let (c, n) = (self.own(charged), self.own(id));
                if (c.apparent, c.disk) != (n.apparent, n.disk) {
                    self.set_own(charged, n.apparent, n.disk, n.mtime)?;
                }
                if join == Join::Known {
                    // The charge moves here; the caller charges `id` to its ancestors.
                    self.node_mut(charged).flags |= flags::HARDLINK_DUP;
                    self.recharge(charged, -1);
                    self.mark_changed(charged);
                    self.node_mut(id).flags &= !flags::HARDLINK_DUP;
                    self.links.replace(charged.0, id.0, link_hash(key));
                }
            }
        }
        Ok(())
    }

    /// The inode entry `id` is, if it is a linked non-directory.
    #[must_use]
    pub fn linked(&self, id: NodeId) -> Option<Linked> {
        if self.kind(id) == Kind::Dir || self.nlink(id) < 2 {
            return None;
        }
        let dev = self.dev(id)?;
        let o = self.own(id);
        Some(Linked {
            dev,
            ino: o.ino.unwrap_or(0),
            apparent: o.apparent,
            disk: o.disk,
            mtime: o.mtime.sec,
        })
    }

    /// Notes that a name of the linked inode `id` came, goes, or its link count moved, when
    /// this tree records its changes (not while a first scan fills it).
    pub(super) fn log_linked(&mut self, id: NodeId) {
        if self.changes.is_some()
            && let Some(l) = self.linked(id)
        {
            self.linked_log.push(l);
        }
    }

    /// The linked inodes whose names changed since the last call (see `Linked`).
    pub fn take_linked(&mut self) -> Vec<Linked> {
        std::mem::take(&mut self.linked_log)
    }

    /// The linked entries whose group holds another number of names in the tree than their
    /// link count: names outside the tree (outside the root, excluded, unreadable), or a
    /// link count read before a name came or went. O(linked entries).
    pub fn odd_links(&mut self) -> Vec<NodeId> {
        self.ensure_links();
        let linked: Vec<(NodeId, (u32, u64))> = self
            .arena
            .nodes()
            .iter()
            .enumerate()
            .filter(|&(i, n)| n.is_rare() && self.holds_entry(i, n))
            .filter_map(|(i, _)| Some((NodeId(i as u32), self.link_key(NodeId(i as u32))?)))
            .collect();
        let mut names: std::collections::HashMap<(u32, u64), u32> =
            std::collections::HashMap::with_capacity(linked.len());
        for (_, key) in &linked {
            *names.entry(*key).or_default() += 1;
        }
        linked
            .into_iter()
            .filter(|(id, key)| names.get(key).copied() != Some(self.nlink(*id)))
            .map(|(id, _)| id)
            .collect()
    }

    /// The hard-link group key of a linked non-directory (only a rare node can be one: it
    /// keeps the inode and the link count).
    pub(super) fn link_key(&self, id: NodeId) -> Option<(u32, u64)> {
        let n = self.node(id);
        if n.is_dir() || !n.is_rare() || n.flags & flags::READ_ERROR != 0 {
            return None;
        }
        let o = self.own(id);
        (o.nlink > 1).then(|| (self.dev_index_of_parent(n), o.ino.unwrap_or(0)))
    }
}
