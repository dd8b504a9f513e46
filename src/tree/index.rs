//! The child index: (directory, name) to node without walking the sibling list, for wide
//! directories only (a directory is indexed the first time it is searched with at least
//! `WIDE` children; a narrow one is searched in place). In memory only, never persisted.
//!
//! Each indexed directory has an open-addressing table of node ids (4 bytes a slot, at most
//! 7/8 full, about 5 bytes per child): a slot is found by hashing the name, and a probe
//! compares the name of the node in the slot, so no key is stored. Every child linked under
//! an indexed directory is entered and every child unlinked is taken out (by shifting the
//! probe run back, no tombstones), so a miss is an answer. A slot whose node is no longer
//! that directory's child (which the tree's own bookkeeping never leaves) is skipped, not
//! trusted.

use std::collections::HashMap;

use super::{NodeId, Tree};

/// Children a directory must have before a search builds its index.
const WIDE: usize = 32;

const EMPTY: u32 = u32::MAX;

#[derive(Default)]
pub(super) struct ChildIndex {
    tables: HashMap<u32, Table>,
}

struct Table {
    slots: Box<[u32]>,
    len: usize,
}

impl Table {
    fn with_room_for(n: usize) -> Table {
        // About 3/4 full when built, grown past 7/8.
        let cap = (n + n / 3).max(16);
        Table {
            slots: vec![EMPTY; cap].into_boxed_slice(),
            len: 0,
        }
    }

    fn home(&self, name: &[u8]) -> usize {
        // Multiply-shift onto any table size (no power of two needed, so no space lost to
        // rounding up).
        let h = xxhash_rust::xxh3::xxh3_64(name);
        ((u128::from(h) * self.slots.len() as u128) >> 64) as usize
    }
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
        self.probe(table, dir, name).map(|(_, id)| id)
    }

    /// The slot and node of `dir`'s child named `name` in its table.
    fn probe(&self, table: &Table, dir: NodeId, name: &[u8]) -> Option<(usize, NodeId)> {
        let cap = table.slots.len();
        let mut i = table.home(name);
        for _ in 0..cap {
            let id = table.slots[i];
            if id == EMPTY {
                return None;
            }
            let id = NodeId(id);
            if self.is_child_named(id, dir, name) {
                return Some((i, id));
            }
            i = if i + 1 == cap { 0 } else { i + 1 };
        }
        None
    }

    fn is_child_named(&self, id: NodeId, dir: NodeId, name: &[u8]) -> bool {
        self.is_live(id) && self.node(id).parent == dir.0 && self.name(id) == name
    }

    fn build_index(&mut self, dir: NodeId, n: usize) {
        let mut table = Table::with_room_for(n);
        for c in self.children(dir) {
            self.insert(&mut table, c);
        }
        self.index.tables.insert(dir.0, table);
    }

    fn insert(&self, table: &mut Table, id: NodeId) {
        let cap = table.slots.len();
        let mut i = table.home(self.name(id));
        while table.slots[i] != EMPTY {
            i = if i + 1 == cap { 0 } else { i + 1 };
        }
        table.slots[i] = id.0;
        table.len += 1;
    }

    /// Keeps the index of `parent` (if it has one) in step with a newly linked child.
    pub(super) fn index_linked(&mut self, parent: NodeId, id: NodeId) {
        let Some(mut table) = self.index.tables.remove(&parent.0) else {
            return;
        };
        if (table.len + 1) * 8 > table.slots.len() * 7 {
            let mut grown = Table::with_room_for(table.len + 1);
            for &s in &table.slots {
                if s != EMPTY {
                    self.insert(&mut grown, NodeId(s));
                }
            }
            table = grown;
        }
        self.insert(&mut table, id);
        self.index.tables.insert(parent.0, table);
    }

    /// Keeps the index of `parent` in step with a child unlinked from it (called while the
    /// child still has its name).
    pub(super) fn index_unlinked(&mut self, parent: NodeId, id: NodeId) {
        let Some(mut table) = self.index.tables.remove(&parent.0) else {
            return;
        };
        let cap = table.slots.len();
        // Found by its name's probe run; a sweep only if the run misses it (never, while the
        // tree keeps the table in step).
        let mut at = None;
        let mut i = table.home(self.name(id));
        for _ in 0..cap {
            match table.slots[i] {
                EMPTY => break,
                s if s == id.0 => {
                    at = Some(i);
                    break;
                }
                _ => i = if i + 1 == cap { 0 } else { i + 1 },
            }
        }
        if at.is_none() {
            at = table.slots.iter().position(|&s| s == id.0);
        }
        if let Some(mut hole) = at {
            table.slots[hole] = EMPTY;
            table.len -= 1;
            // Shift back the rest of the run: an entry moves into the hole when its home is
            // not between the hole and its slot (cyclically), so every probe still finds it.
            let mut j = hole;
            loop {
                j = if j + 1 == cap { 0 } else { j + 1 };
                let s = table.slots[j];
                if s == EMPTY {
                    break;
                }
                let home = table.home(self.name(NodeId(s)));
                let between = if hole <= j {
                    hole < home && home <= j
                } else {
                    hole < home || home <= j
                };
                if !between {
                    table.slots[hole] = s;
                    table.slots[j] = EMPTY;
                    hole = j;
                }
            }
        }
        self.index.tables.insert(parent.0, table);
    }

    /// Forgets the index of a directory being freed (its children go with it).
    pub(super) fn index_dropped(&mut self, dir: NodeId) {
        self.index.tables.remove(&dir.0);
    }

    /// Entries held by the index (for tests).
    #[must_use]
    pub fn index_len(&self) -> usize {
        self.index.tables.values().map(|t| t.len).sum()
    }

    /// Bytes the index holds: its tables, and a map entry per indexed directory.
    #[must_use]
    pub fn index_bytes(&self) -> usize {
        let per_dir = std::mem::size_of::<(u32, Table)>() + 1;
        self.index.tables.capacity() * per_dir
            + self
                .index
                .tables
                .values()
                .map(|t| t.slots.len() * 4)
                .sum::<usize>()
    }

    /// What the index would hold with every directory of at least `WIDE` children indexed
    /// (as a long watch that touched each of them would leave it), in bytes.
    #[must_use]
    pub fn index_bytes_all_wide(&self) -> usize {
        let per_dir = std::mem::size_of::<(u32, Table)>() + 1;
        let mut dirs = 0usize;
        let mut slots = 0usize;
        for d in self.live_ids() {
            if self.dir_rec(d).is_some() {
                let n = self.children(d).count();
                if n >= WIDE {
                    dirs += 1;
                    slots += Table::with_room_for(n).slots.len();
                }
            }
        }
        // A hash map's capacity: the next power of two past 8/7 of its entries.
        let map_cap = if dirs == 0 {
            0
        } else {
            (dirs * 8 / 7).next_power_of_two()
        };
        map_cap * per_dir + slots * 4
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
