//! The child index: (directory, name) to node without walking the sibling list, for wide
//! directories only (a directory is indexed the first time it is searched with at least
//! `WIDE` children; a narrow one is searched in place). In memory only, never persisted.
//!
//! Entries are keyed by a hash of the name and always checked against the node itself (live,
//! under that parent, same name), so a stale or colliding entry falls back to a walk instead of
//! giving a wrong answer; a miss in an indexed directory is an answer, because every child
//! linked under it is entered.

use std::collections::{HashMap, HashSet};

use super::{NodeId, Tree};

/// Children a directory must have before a search builds its index.
const WIDE: usize = 32;

#[derive(Default)]
pub(super) struct ChildIndex {
    indexed: HashSet<u32>,
    map: HashMap<(u32, u64), u32>,
}

fn key(dir: NodeId, name: &[u8]) -> (u32, u64) {
    (dir.0, xxhash_rust::xxh3::xxh3_64(name))
}

impl Tree {
    /// The child of `dir` named `name`: O(1) in a wide directory (indexed on first use).
    pub fn find_child(&mut self, dir: NodeId, name: &[u8]) -> Option<NodeId> {
        if !self.index.indexed.contains(&dir.0) {
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
            self.build_index(dir);
        }
        if let Some(&id) = self.index.map.get(&key(dir, name)) {
            let id = NodeId(id);
            if self.is_live(id) && self.node(id).parent == dir.0 && self.name(id) == name {
                return Some(id);
            }
            // A stale or colliding entry: answer by a walk.
            return self.child_by_name(dir, name);
        }
        None
    }

    fn build_index(&mut self, dir: NodeId) {
        let kids: Vec<NodeId> = self.children(dir).collect();
        for c in kids {
            let k = key(dir, self.name(c));
            self.index.map.insert(k, c.0);
        }
        self.index.indexed.insert(dir.0);
    }

    /// Keeps the index of `parent` (if it has one) in step with a newly linked child.
    pub(super) fn index_linked(&mut self, parent: NodeId, id: NodeId) {
        if self.index.indexed.contains(&parent.0) {
            let k = key(parent, self.name(id));
            self.index.map.insert(k, id.0);
        }
    }

    /// Keeps the index of `parent` in step with a child unlinked from it.
    pub(super) fn index_unlinked(&mut self, parent: NodeId, id: NodeId) {
        if self.index.indexed.contains(&parent.0) {
            let k = key(parent, self.name(id));
            if self.index.map.get(&k) == Some(&id.0) {
                self.index.map.remove(&k);
            }
        }
    }

    /// Forgets the index of a directory being freed (its children go with it).
    pub(super) fn index_dropped(&mut self, dir: NodeId) {
        if self.index.indexed.remove(&dir.0) {
            let kids: Vec<NodeId> = self.children(dir).collect();
            for c in kids {
                let k = key(dir, self.name(c));
                self.index.map.remove(&k);
            }
        }
    }

    /// Entries held by the index (for memory accounting and tests).
    #[must_use]
    pub fn index_len(&self) -> usize {
        self.index.map.len()
    }
}
