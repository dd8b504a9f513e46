//! What the tree holds in memory, by part (the arena's regions and the side tables).

use super::{DirRec, Node, Rare, Tree, arena};

/// Bytes the tree holds, by part (see `Tree::memory`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryUse {
    pub header: u64,
    pub nodes: u64,
    pub dirs: u64,
    pub rares: u64,
    pub names: u64,
    /// The child index as it is now (built on first search of a wide directory).
    pub index: u64,
    /// The child index with every wide directory indexed.
    pub index_all_wide: u64,
    /// The table that shares repeated names while entries are added.
    pub name_cache: u64,
    /// The table of hard-link groups (their rings live in the rare records).
    pub links: u64,
    /// The inode fingerprints of a watched tree (see `Tree::track_inodes`).
    pub inodes: u64,
}

impl MemoryUse {
    /// Everything the tree holds, the child index counted with every wide directory in it.
    #[must_use]
    pub fn all_in(&self) -> u64 {
        self.header
            + self.nodes
            + self.dirs
            + self.rares
            + self.names
            + self.index.max(self.index_all_wide)
            + self.name_cache
            + self.links
            + self.inodes
    }
}

impl Tree {
    /// Bytes held, by part: the arena's used regions and the side tables in memory.
    #[must_use]
    pub fn memory(&self) -> MemoryUse {
        let h = self.arena.header();
        let size = |n: u32, each: usize| u64::from(n) * each as u64;
        let links = self.links.bytes();
        MemoryUse {
            header: arena::HEADER_BYTES as u64,
            nodes: size(h.node_count, std::mem::size_of::<Node>()),
            dirs: size(h.dir_count, std::mem::size_of::<DirRec>()),
            rares: size(h.rare_count, std::mem::size_of::<Rare>()),
            names: h.names_len,
            index: self.index_bytes() as u64,
            index_all_wide: self.index_bytes_all_wide() as u64,
            name_cache: (self.name_cache.capacity() * size_of::<super::names::CachedName>()) as u64,
            links: links as u64,
            inodes: self.inodes.as_ref().map_or(0, |f| f.bytes() as u64),
        }
    }
}
