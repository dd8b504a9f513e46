//! Changing an entry that stays: a fresh stat applied in place (its hard-link group with it),
//! and a rename that moves a subtree keeping its ids and totals.

use super::links::Join;
use super::{Delta, EntryInfo, NodeId, Own, Time, Tree, TreeError, flags};

impl Tree {
    /// Updates an entry from a fresh stat when it is still the same kind of thing (same kind,
    /// inode where the tree knows it, a directory's device, hard-link status and scan flags): sizes, mtime and link
    /// count, with the size difference bubbled up. Returns false, changing nothing, when the
    /// entry must be replaced instead (removed and added again).
    ///
    /// A plain file's inode is not kept (see `Own::stored`): one replaced by another file of
    /// the same kind and link status is updated in place, which leaves the tree as a
    /// replacement would (same name, the new sizes and mtime).
    pub fn update_in_place(&mut self, id: NodeId, e: &EntryInfo) -> Result<bool, TreeError> {
        let n = *self.node(id);
        let dir = n.is_dir();
        let cur = self.own(id);
        let want = if dir { e.own() } else { e.own().stored() };
        let linked =
            |dir: bool, fl: u8, nlink: u32| !dir && fl & flags::READ_ERROR == 0 && nlink > 1;
        // A directory's read error is cleared or set by whoever re-reads it; any other change
        // of the scan's verdict (excluded, other filesystem, unreadable file) replaces it.
        let diff = n.flags ^ e.flags;
        let flags_ok = diff & (flags::EXCLUDED | flags::OTHER_FS) == 0
            && (dir || diff & flags::READ_ERROR == 0);
        let same_ino = match (cur.ino, want.ino) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        // A directory on another device is another directory, whatever its inode: a
        // filesystem mounted over it, or unmounted from it. Its device, own sizes and
        // everything below are those of the other filesystem, so it is replaced (and its
        // subtree read again), never updated in place. (A non-directory's device is its
        // parent's, so only a directory can tell.)
        let same_dev = !dir || self.dev(id).is_none_or(|d| d == e.dev);
        let compatible = n.kind() == e.kind && same_ino && same_dev && flags_ok;
        if !compatible {
            return Ok(false);
        }
        self.note_inode(id, e);
        // A file that gained or lost names (or a hard link whose inode was not known: an
        // import, a damaged record) changes groups in place.
        let was_linked = linked(dir, n.flags, cur.nlink);
        let now_linked = linked(dir, e.flags, e.nlink);
        if was_linked != now_linked || (now_linked && cur.ino.is_none()) {
            self.relink_in_place(id, &want)?;
            return Ok(true);
        }
        let same = cur.apparent == want.apparent
            && cur.disk == want.disk
            && cur.mtime == want.mtime
            && (dir || (cur.nlink, cur.errno, cur.ino) == (want.nlink, want.errno, want.ino));
        if same {
            return Ok(true); // nothing to write, nothing to persist
        }
        // The sizes first: whether the entry needs a rare record is decided on the new ones,
        // so that a plain file that grows past 4 GiB (or gets a time before 1970) keeps the
        // inode it now has room for.
        self.set_own(id, e.apparent, e.disk, want.mtime)?;
        if !dir {
            if cur.nlink != want.nlink {
                self.log_linked(id);
            }
            let o = Own {
                nlink: want.nlink,
                errno: want.errno,
                ino: want.ino.or(cur.ino),
                ..self.own(id)
            };
            self.store_own(id, &o)?;
        }
        Ok(true)
    }

    /// A non-directory whose link status changed takes its new attributes `want` where it
    /// stands: out of its charge and its old group, stored, into its new group (charged if it
    /// is the group's first name), charged again. The node keeps its slot and its place among
    /// its siblings: a remove and an add would walk a wide directory's sibling list, and
    /// `cp -al` or removing a snapshot turns every file of a directory so.
    fn relink_in_place(&mut self, id: NodeId, want: &Own) -> Result<(), TreeError> {
        self.ensure_links();
        let parent = self.parent(id);
        let c = self.charge(id);
        if let Some(p) = parent {
            self.bubble(p, -c);
        }
        self.log_linked(id);
        if let Some(key) = self.link_key(id)
            && let Some(next) = self.leave_group(id, key)
        {
            self.take_charge(next);
        }
        self.node_mut(id).flags &= !flags::HARDLINK_DUP;
        self.store_own(id, want)?;
        if self.link_key(id).is_some() {
            self.join_link_group(id, Join::Known)?;
        }
        let c = self.charge(id);
        if let Some(p) = parent {
            self.bubble(p, c);
        }
        self.mark_changed(id);
        Ok(())
    }

    /// Replaces the own sizes and mtime of an entry and bubbles the difference. A hard link
    /// is one inode seen through several names: every member of its group takes the new
    /// sizes, and the group's one charge moves by the difference, whichever name was stat'ed.
    pub fn set_own(
        &mut self,
        id: NodeId,
        apparent: u64,
        disk: u64,
        mtime: Time,
    ) -> Result<(), TreeError> {
        self.ensure_links();
        for m in self.group_of(id) {
            if !self.is_live(m) {
                continue;
            }
            let old = self.own(m);
            let flags = self.node(m).flags;
            let dir = self.node(m).is_dir();
            self.store_own(
                m,
                &Own {
                    apparent,
                    disk,
                    mtime,
                    ..old
                },
            )?;
            let delta = Delta {
                apparent: i128::from(apparent) - i128::from(old.apparent),
                disk: i128::from(disk) - i128::from(old.disk),
                items: 0,
            };
            let delta = if dir { self.apply(m, delta) } else { delta };
            if flags & flags::NOT_CHARGED == 0
                && let Some(p) = self.parent(m)
            {
                self.bubble(p, delta);
            }
        }
        Ok(())
    }

    /// Moves an entry, with its subtree, under `new_parent` as `new_name` (a rename): ids,
    /// totals and link groups are kept; the old parent's ancestors lose its charge and the new
    /// one's gain it, O(depth). Refused (false) if that would put a directory inside itself.
    pub fn move_node(
        &mut self,
        id: NodeId,
        new_parent: NodeId,
        new_name: &[u8],
    ) -> Result<bool, TreeError> {
        let Some(old_parent) = self.parent(id) else {
            return Ok(false);
        };
        if self.dir_rec(new_parent).is_none() {
            return Ok(false);
        }
        let mut cur = Some(new_parent);
        while let Some(c) = cur {
            if c == id {
                return Ok(false);
            }
            cur = self.parent(c);
        }
        let len = u8::try_from(new_name.len())
            .map_err(|_| TreeError::NameTooLong(crate::path::display_name(new_name)))?;
        self.arena.reserve(0, 0, u64::from(len))?;
        let c = self.charge(id);
        let errors = self.node(id).flags & (flags::READ_ERROR | flags::ERROR_BELOW) != 0;
        self.unlink_child(old_parent, id);
        self.bubble(old_parent, -c);
        let off = self.store_name(new_name);
        self.dead_names += u64::from(self.node(id).name_len);
        let n = self.node_mut(id);
        n.name_off = off;
        n.name_len = len;
        n.parent = new_parent.0;
        self.link_child(new_parent, id);
        self.bubble(new_parent, c);
        if errors {
            self.recompute_error_below(old_parent);
            self.mark_error_below(new_parent);
        }
        Ok(true)
    }
}
