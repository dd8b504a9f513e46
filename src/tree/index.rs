//! The child index: (directory, name) to node without walking the sibling list, for wide
//! directories only (a directory is indexed the first time it is searched with at least
//! `WIDE` children; a narrow one is searched in place). In memory only, never persisted.
//!
//! Each indexed directory has a table of its children's ids (`IdTable`: 4 bytes a slot, about
//! 5 bytes a child), found by the hash of the name; a probe compares the name of the node in
//! the slot, so no key is stored. Every child linked under an indexed directory is entered
//! and every child unlinked taken out, so a miss is an answer; a slot whose node is no longer
//! that directory's child (which the tree's bookkeeping never leaves) is skipped, not trusted.
//!
//! The index is a cache with a budget: at most `BUDGET_PER_ENTRY` of a byte per live entry
//! (or `MIN_BUDGET`). Past it, the tables of the directories searched longest ago are dropped
//! (a dropped one is built again on its next search, O(its children), what a walk costs), so a
//! long watch that touches every wide directory does not grow the tree's memory by ~2.4 bytes
//! per entry.

use std::collections::HashMap;

use super::idtable::IdTable;
use super::{NodeId, Tree};

/// Children a directory must have before a search builds its index.
const WIDE: usize = 32;
/// The index's budget, in bytes per live entry of the tree, as a fraction.
const BUDGET_PER_ENTRY: (usize, usize) = (3, 4);
/// The budget of a small tree.
const MIN_BUDGET: usize = 64 << 10;

#[derive(Default)]
pub(super) struct ChildIndex {
    /// Per indexed directory: its table, and when it was last searched (`clock`).
    tables: HashMap<u32, (IdTable, u64)>,
    clock: u64,
    /// Bytes of the tables.
    bytes: usize,
}

impl ChildIndex {
    /// Applies `f` to `dir`'s table, keeping the byte count.
    fn update(&mut self, dir: u32, f: impl FnOnce(&mut IdTable)) {
        if let Some((table, _)) = self.tables.get_mut(&dir) {
            let before = table.bytes();
            f(table);
            self.bytes = self.bytes + table.bytes() - before;
        }
    }
}

fn name_hash(name: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(name)
}

impl Tree {
    /// The child of `dir` named `name`: O(1) in a wide directory (indexed on first use).
    pub fn find_child(&mut self, dir: NodeId, name: &[u8]) -> Option<NodeId> {
        self.index.clock += 1;
        if let Some((_, used)) = self.index.tables.get_mut(&dir.0) {
            *used = self.index.clock;
        } else {
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
        let (table, _) = self.index.tables.get(&dir.0)?;
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
        self.index.bytes += table.bytes();
        self.index.tables.insert(dir.0, (table, self.index.clock));
        self.trim_index(dir);
    }

    /// The most bytes the index may hold for this tree.
    fn index_budget(&self) -> usize {
        let (num, den) = BUDGET_PER_ENTRY;
        (usize::try_from(self.len()).unwrap_or(usize::MAX) / den * num).max(MIN_BUDGET)
    }

    /// Over budget: drops the tables searched longest ago (never `keep`'s) until the index is
    /// at 3/4 of its budget, so that trims are rare.
    fn trim_index(&mut self, keep: NodeId) {
        let budget = self.index_budget();
        if self.index.bytes <= budget {
            return;
        }
        let mut by_age: Vec<(u64, u32)> = self
            .index
            .tables
            .iter()
            .filter(|&(&d, _)| d != keep.0)
            .map(|(&d, &(_, used))| (used, d))
            .collect();
        by_age.sort_unstable();
        for (_, d) in by_age {
            if self.index.bytes <= budget / 4 * 3 {
                break;
            }
            if let Some((table, _)) = self.index.tables.remove(&d) {
                self.index.bytes -= table.bytes();
            }
        }
        self.index.tables.shrink_to_fit();
    }

    /// Whether `dir` has a child index (which every child added must join).
    pub(super) fn is_indexed(&self, dir: NodeId) -> bool {
        self.index.tables.contains_key(&dir.0)
    }

    /// Keeps the index of `parent` (if it has one) in step with a newly linked child.
    pub(super) fn index_linked(&mut self, parent: NodeId, id: NodeId) {
        if !self.is_indexed(parent) {
            return;
        }
        let hash = self.name_hash_of(id.0);
        let mut index = std::mem::take(&mut self.index);
        index.update(parent.0, |t| t.insert(id.0, hash, |s| self.name_hash_of(s)));
        self.index = index;
        self.trim_index(parent);
    }

    /// Keeps the index of `parent` in step with a child unlinked from it (called while the
    /// child still has its name).
    pub(super) fn index_unlinked(&mut self, parent: NodeId, id: NodeId) {
        if !self.is_indexed(parent) {
            return;
        }
        let hash = self.name_hash_of(id.0);
        let mut index = std::mem::take(&mut self.index);
        index.update(parent.0, |t| {
            t.remove(id.0, hash, |s| self.name_hash_of(s));
        });
        self.index = index;
    }

    /// Forgets the index of a directory being freed (its children go with it).
    pub(super) fn index_dropped(&mut self, dir: NodeId) {
        if let Some((table, _)) = self.index.tables.remove(&dir.0) {
            self.index.bytes -= table.bytes();
        }
    }

    /// Entries held by the index (for tests).
    #[must_use]
    pub fn index_len(&self) -> usize {
        self.index.tables.values().map(|(t, _)| t.len()).sum()
    }

    /// Bytes the index holds: its tables, and a map entry per indexed directory.
    #[must_use]
    pub fn index_bytes(&self) -> usize {
        self.index.tables.capacity() * (std::mem::size_of::<(u32, (IdTable, u64))>() + 1)
            + self.index.bytes
    }

    /// The most the index can hold on this tree, in bytes: every directory of at least `WIDE`
    /// children indexed (as a long watch that touched each of them would leave it), or its
    /// budget when that is less.
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
        let map = |dirs: usize| {
            let cap = if dirs == 0 {
                0
            } else {
                (dirs * 8 / 7).next_power_of_two()
            };
            cap * (std::mem::size_of::<(u32, (IdTable, u64))>() + 1)
        };
        let all = map(dirs) + slots * 4;
        // Within the budget the map holds fewer directories: at most its share of them.
        let budget = self.index_budget();
        if all <= budget {
            all
        } else {
            map(dirs * budget / (slots * 4).max(1)) + budget
        }
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
                self.index.clock += 1;
                self.build_index(d, n);
            }
        }
    }
}
