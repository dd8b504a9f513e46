//! The child index: (directory, name) to node without walking the sibling list, for wide
//! directories only (a directory is indexed the first time it is searched with at least
//! `WIDE` children; a narrow one is searched in place). In memory only, never persisted.
//!
//! Each indexed directory has a table of its children's ids (`IdTable`: 4 bytes a slot, about
//! 5 bytes a child), found by the hash of the name; a probe compares the name of the node in
//! the slot, so no key is stored. Every child linked under an indexed directory is entered
//! and every child unlinked taken out, so a miss is an answer; a slot whose node is no longer
//! that directory's child (which the tree's bookkeeping never leaves) is skipped, not trusted.

use std::collections::HashMap;

use super::idtable::IdTable;
use super::{NodeId, Tree};

/// Children a directory must have before a search builds its index.
const WIDE: usize = 32;

#[derive(Default)]
pub(super) struct ChildIndex {
    tables: HashMap<u32, IdTable>,
}

fn name_hash(name: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(name)
}

impl Tree {
    /// The child of `dir` named `name`: O(1) in a wide directory (indexed on first use).
    pub fn find_child(&mut self, dir: NodeId, name: &[u8]) -> Option<NodeId> {
        if !self.index.tables.contains_key(&dir.0) {
            let mut n = 0;
            let mut found = None;
            for c in self.children(dir) {
                n += 1;
                if found.is_none() && self.name(c) == name {
                    found = Some(c);
                }
            }
            if n < WIDE {
                return found;
            }
            self.build_index(dir, n);
        }
        let table = self.index.tables.get(&dir.0)?;
        table
            .find(name_hash(name), |id| {
                self.is_child_named(NodeId(id), dir, name)
            })
            .map(NodeId)
    }

    fn is_child_named(&self, id: NodeId, dir: NodeId, name: &[u8]) -> bool {
        self.is_live(id) && self.node(id).parent == dir.0 && self.name(id) == name
    }

    fn name_hash_of(&self, id: u32) -> u64 {
        name_hash(self.name(NodeId(id)))
    }

    fn build_index(&mut self, dir: NodeId, n: usize) {
        let mut table = IdTable::with_room_for(n);
        for c in self.children(dir) {
            table.insert(c.0, name_hash(self.name(c)), |s| self.name_hash_of(s));
        }
        self.index.tables.insert(dir.0, table);
    }

    /// Keeps the index of `parent` (if it has one) in step with a newly linked child.
    pub(super) fn index_linked(&mut self, parent: NodeId, id: NodeId) {
        let Some(mut table) = self.index.tables.remove(&parent.0) else {
            return;
        };
        table.insert(id.0, self.name_hash_of(id.0), |s| self.name_hash_of(s));
        self.index.tables.insert(parent.0, table);
    }

    /// Keeps the index of `parent` in step with a child unlinked from it (called while the
    /// child still has its name).
    pub(super) fn index_unlinked(&mut self, parent: NodeId, id: NodeId) {
        let Some(mut table) = self.index.tables.remove(&parent.0) else {
            return;
        };
        table.remove(id.0, self.name_hash_of(id.0), |s| self.name_hash_of(s));
        self.index.tables.insert(parent.0, table);
    }

    /// Forgets the index of a directory being freed (its children go with it).
    pub(super) fn index_dropped(&mut self, dir: NodeId) {
        self.index.tables.remove(&dir.0);
    }

    /// Entries held by the index (for tests).
    #[must_use]
    pub fn index_len(&self) -> usize {
        self.index.tables.values().map(IdTable::len).sum()
    }

    /// Bytes the index holds: its tables, and a map entry per indexed directory.
    #[must_use]
    pub fn index_bytes(&self) -> usize {
        self.index.tables.capacity() * (std::mem::size_of::<(u32, IdTable)>() + 1)
            + self
                .index
                .tables
                .values()
                .map(IdTable::bytes)
                .sum::<usize>()
    }

    /// What the index would hold with every directory of at least `WIDE` children indexed
    /// (as a long watch that touched each of them would leave it), in bytes.
    #[must_use]
    pub fn index_bytes_all_wide(&self) -> usize {
        let mut dirs = 0usize;
        let mut slots = 0usize;
        for d in self.live_ids() {
            if self.dir_rec(d).is_some() {
                let n = self.children(d).count();
                if n >= WIDE {
                    dirs += 1;
                    slots += IdTable::slots_for(n);
                }
            }
        }
        // A hash map's capacity: the next power of two past 8/7 of its entries.
        let map_cap = if dirs == 0 {
            0
        } else {
            (dirs * 8 / 7).next_power_of_two()
        };
        map_cap * (std::mem::size_of::<(u32, IdTable)>() + 1) + slots * 4
    }

    /// Indexes every directory with at least `WIDE` children.
    pub fn index_all_wide(&mut self) {
        let dirs: Vec<NodeId> = self
            .live_ids()
            .filter(|&d| self.dir_rec(d).is_some())
            .collect();
        for d in dirs {
            let n = self.children(d).count();
            if n >= WIDE && !self.index.tables.contains_key(&d.0) {
                self.build_index(d, n);
            }
        }
    }
}
