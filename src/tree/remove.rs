//! Removing entries: a subtree unlinked and freed (its slots, records and names given
//! back), its charge taken off its ancestors and handed on within its hard-link groups.

use super::{DirRec, Node, NodeId, Tree, flags, node};

impl Tree {
    /// Removes several children of one directory: one pass over its sibling list instead of
    /// one per child (a directory losing most of 1,000,000 entries stays linear).
    pub fn remove_children(&mut self, parent: NodeId, ids: &[NodeId]) {
        if ids.len() < 8 {
            for &id in ids {
                self.remove(id);
            }
            return;
        }
        let mut doomed = std::collections::HashSet::with_capacity(ids.len());
        for &id in ids {
            if self.is_live(id) && self.node(id).parent == parent.0 {
                doomed.insert(id.0);
            }
        }
        // Relink the survivors, then detach each doomed child (now first in the list, so its
        // unlink is O(1)) and remove it.
        let kids: Vec<NodeId> = self.children(parent).collect();
        let mut head = u32::MAX;
        for &k in kids.iter().rev() {
            if !doomed.contains(&k.0) {
                self.node_mut(k).next_sibling = head;
                head = k.0;
            }
        }
        for &k in kids.iter().rev() {
            if doomed.contains(&k.0) {
                self.node_mut(k).next_sibling = head;
                head = k.0;
            }
        }
        if let Some(d) = self.dir_rec_totals_mut(parent) {
            d.first_child = head;
        }
        for &k in &kids {
            if doomed.contains(&k.0) {
                self.remove(k);
            }
        }
    }

    /// Removes an entry and everything below it; the totals of its ancestors drop by what it was
    /// charged, and a hard-link group that loses its charged member charges a remaining one.
    pub fn remove(&mut self, id: NodeId) {
        self.ensure_links();
        let Some(parent) = self.parent(id) else {
            return; // the root stays
        };
        let c = self.charge(id);
        self.unlink_child(parent, id);
        self.bubble(parent, -c);
        // Walk the subtree iteratively (deep trees must not overflow the stack), leaving hard-link
        // groups while every parent is still live (a link's key holds its parent's device),
        // then free it all.
        let mut had_error = false;
        let mut recharge = Vec::new();
        let mut doomed = Vec::new();
        let mut stack = vec![id];
        while let Some(cur) = stack.pop() {
            stack.extend(self.children(cur));
            doomed.push(cur);
            let n = *self.node(cur);
            had_error |= n.flags & (flags::READ_ERROR | flags::ERROR_BELOW) != 0;
            if let Some(key) = self.link_key(cur)
                && let Some(next) = self.leave_group(cur, key)
            {
                recharge.push(next);
            }
        }
        for cur in doomed {
            self.free_node(cur);
        }
        // Each group that lost its charged member charges the next (one that goes too is
        // skipped here, and its own successor was pushed after it).
        for next in recharge {
            self.take_charge(next);
        }
        if had_error {
            self.recompute_error_below(parent);
        }
    }

    pub(super) fn unlink_child(&mut self, parent: NodeId, id: NodeId) {
        self.index_unlinked(parent, id);
        let next = self.node(id).next_sibling;
        let first = self.dir_rec(parent).map_or(u32::MAX, |d| d.first_child);
        if first == id.0 {
            if let Some(d) = self.dir_rec_totals_mut(parent) {
                d.first_child = next;
            }
            return;
        }
        let mut prev = NodeId(first);
        while !prev.is_none() {
            let n = self.node(prev).next_sibling;
            if n == id.0 {
                self.node_mut(prev).next_sibling = next;
                return;
            }
            prev = NodeId(n);
        }
    }

    fn free_node(&mut self, id: NodeId) {
        let n = *self.node(id);
        if let Some(f) = self.inodes.as_mut()
            && f.get(id).is_some()
        {
            f.set(id, 0);
        }
        self.dead_names += u64::from(n.name_len);
        if let Some(r) = n.rare_index() {
            self.free_rare(r);
        }
        if n.is_dir() {
            self.index_dropped(id);
            self.free_dir_rec(n.aux);
        }
        let head = self.arena.header().free_node;
        let slot = self.node_mut(id);
        *slot = Node {
            next_sibling: head,
            flags: flags::FREE,
            generation: n.generation.wrapping_add(1),
            parent: u32::MAX,
            ..bytemuck::Zeroable::zeroed()
        };
        let h = self.arena.header_mut();
        h.free_node = id.0;
        h.live_nodes -= 1;
    }

    /// Puts a directory record on the free list (zeroed, so nothing stale is read from it).
    pub(super) fn free_dir_rec(&mut self, rec: u32) {
        let head = self.arena.header().free_dir;
        self.arena.dirs_mut()[rec as usize] = DirRec {
            first_child: head,
            dev: node::NO_DEV,
            ..bytemuck::Zeroable::zeroed()
        };
        self.arena.header_mut().free_dir = rec;
    }
}
