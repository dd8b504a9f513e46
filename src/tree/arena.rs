//! The memory behind the tree: a header page, then the node array, the directory records, the
//! rare records and the name heap, each a region with its own capacity.
//!
//! A new tree lives in anonymous memory. A saved one is a file in the same layout, written
//! whole to a temporary name and renamed into place (so a file on disk is always complete and
//! marked clean), and mapped back copy-on-write on the next start: no parsing, and changes made
//! while running never touch the file, which stays the last clean save until the next one.
//! Growing a region doubles its capacity (amortised O(1) per entry) by remapping the pages, not
//! copying them, and hands the pages it vacates back to the kernel.
//! Every access goes through the header's offsets, and the borrow checker keeps references from
//! living across a remap.
//!
//! The header and the layout it describes are in `header`, the saved file and its checksum in
//! `file`, growth in `grow`.

mod file;
mod grow;
mod header;

use std::io;
use std::path::{Path, PathBuf};

use bytemuck::Zeroable;
use memmap2::MmapMut;

use super::node::{DirRec, Node, Rare};
pub use file::{CHUNK_BYTES, NODES_PER_CHUNK, chunk_hash};
use header::{Caps, MIN_DIRS, MIN_NAMES, MIN_NODES, MIN_RARES};
pub use header::{
    FORMAT_VERSION, HEADER_BYTES, Header, MAGIC, MAX_DEVICES, STATE_CLEAN, STATE_DIRTY,
};

/// The bytes of a region of `count` records of `T` at `off`.
#[inline]
fn region<T>(off: u64, count: u32) -> std::ops::Range<usize> {
    let start = off as usize;
    start..start + count as usize * std::mem::size_of::<T>()
}

/// Why an arena file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ArenaError {
    #[error("{}: {source}", crate::path::display_path(.path))]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: not a dtui tree file ({why})", crate::path::display_path(.path))]
    Invalid { path: PathBuf, why: &'static str },
    #[error("the tree is full: more than {0} entries")]
    Full(u64),
}

/// The mapped memory and its regions.
pub struct Arena {
    map: MmapMut,
    /// The file it was mapped from (copy-on-write), if any.
    path: Option<PathBuf>,
    /// Bumped by every `&mut` access: a copy taken under a read lock is adopted only if no
    /// write came in between (`detached_copy`).
    writes: u64,
}

impl Arena {
    /// A new, empty arena in anonymous memory.
    pub fn create_temp() -> Result<Arena, ArenaError> {
        let mut header = Header::zeroed();
        header.magic = MAGIC;
        header.version = FORMAT_VERSION;
        header.state = STATE_DIRTY;
        header.free_node = u32::MAX;
        header.free_dir = u32::MAX;
        header.free_rare = u32::MAX;
        header.root = u32::MAX;
        let len = header.set_layout(Caps {
            nodes: MIN_NODES,
            dirs: MIN_DIRS,
            rares: MIN_RARES,
            names: MIN_NAMES,
        });
        Arena::anonymous(&header, len)
    }

    /// `len` bytes of anonymous memory (zero) under `header`.
    fn anonymous(header: &Header, len: u64) -> Result<Arena, ArenaError> {
        let map = MmapMut::map_anon(len as usize).map_err(|source| ArenaError::Io {
            path: PathBuf::from("(memory)"),
            source,
        })?;
        let mut arena = Arena {
            map,
            path: None,
            writes: 0,
        };
        *arena.header_mut() = *header;
        Ok(arena)
    }

    /// An arena in anonymous memory with this one's header and layout (counts included) and
    /// every record and name byte zero: a sparse copy's start (`Tree::preview`). Untouched
    /// pages are address space only.
    pub fn blank_like(&self) -> Result<Arena, ArenaError> {
        let mut header = *self.header();
        header.state = STATE_DIRTY;
        Arena::anonymous(&header, header::layout(header.caps()).len)
    }

    /// Copies the name bytes at `off` of `from` to the same place here (in the heap in use).
    pub(crate) fn copy_name(&mut self, from: &Arena, off: usize, len: usize) {
        let at = self.header().names_off as usize + off;
        self.map[at..at + len].copy_from_slice(&from.names()[off..off + len]);
    }

    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    #[must_use]
    #[inline]
    pub fn header(&self) -> &Header {
        bytemuck::from_bytes(&self.map[..std::mem::size_of::<Header>()])
    }

    pub fn header_mut(&mut self) -> &mut Header {
        self.writes = self.writes.wrapping_add(1);
        bytemuck::from_bytes_mut(&mut self.map[..std::mem::size_of::<Header>()])
    }

    #[must_use]
    #[inline]
    pub fn nodes(&self) -> &[Node] {
        let h = self.header();
        bytemuck::cast_slice(&self.map[region::<Node>(h.nodes_off, h.node_count)])
    }

    #[inline]
    pub fn nodes_mut(&mut self) -> &mut [Node] {
        self.writes = self.writes.wrapping_add(1);
        let h = *self.header();
        bytemuck::cast_slice_mut(&mut self.map[region::<Node>(h.nodes_off, h.node_count)])
    }

    #[must_use]
    #[inline]
    pub fn dirs(&self) -> &[DirRec] {
        let h = self.header();
        bytemuck::cast_slice(&self.map[region::<DirRec>(h.dirs_off, h.dir_count)])
    }

    #[inline]
    pub fn dirs_mut(&mut self) -> &mut [DirRec] {
        self.writes = self.writes.wrapping_add(1);
        let h = *self.header();
        bytemuck::cast_slice_mut(&mut self.map[region::<DirRec>(h.dirs_off, h.dir_count)])
    }

    #[must_use]
    #[inline]
    pub fn rares(&self) -> &[Rare] {
        let h = self.header();
        bytemuck::cast_slice(&self.map[region::<Rare>(h.rare_off, h.rare_count)])
    }

    #[inline]
    pub fn rares_mut(&mut self) -> &mut [Rare] {
        self.writes = self.writes.wrapping_add(1);
        let h = *self.header();
        bytemuck::cast_slice_mut(&mut self.map[region::<Rare>(h.rare_off, h.rare_count)])
    }

    #[must_use]
    #[inline]
    pub fn names(&self) -> &[u8] {
        let h = self.header();
        let start = h.names_off as usize;
        &self.map[start..start + h.names_len as usize]
    }

    /// Appends zeroed nodes; returns the index of the first. Capacity must have been reserved.
    pub fn push_nodes(&mut self, n: u32) -> u32 {
        let h = self.header_mut();
        let first = h.node_count;
        assert!(
            u64::from(first) + u64::from(n) <= u64::from(h.node_cap),
            "reserve() before push_nodes()"
        );
        h.node_count += n;
        first
    }

    pub fn push_rares(&mut self, n: u32) -> u32 {
        let h = self.header_mut();
        let first = h.rare_count;
        assert!(
            u64::from(first) + u64::from(n) <= u64::from(h.rare_cap),
            "reserve_rares() before push_rares()"
        );
        h.rare_count += n;
        first
    }

    pub fn push_dirs(&mut self, n: u32) -> u32 {
        let h = self.header_mut();
        let first = h.dir_count;
        assert!(
            u64::from(first) + u64::from(n) <= u64::from(h.dir_cap),
            "reserve() before push_dirs()"
        );
        h.dir_count += n;
        first
    }

    /// Appends name bytes; returns their offset. Capacity must have been reserved.
    pub fn push_name(&mut self, name: &[u8]) -> u64 {
        let h = *self.header();
        assert!(
            h.names_len + name.len() as u64 <= h.names_cap,
            "reserve() before push_name()"
        );
        let at = (h.names_off + h.names_len) as usize;
        self.map[at..at + name.len()].copy_from_slice(name);
        self.header_mut().names_len += name.len() as u64;
        h.names_len
    }

    /// Replaces the whole name heap with `names` (no longer than the heap in use): the
    /// compaction that reclaims the names of freed nodes.
    pub fn replace_names(&mut self, names: &[u8]) {
        let h = *self.header();
        assert!(
            names.len() as u64 <= h.names_len,
            "a compacted heap is never larger"
        );
        let at = h.names_off as usize;
        self.map[at..at + names.len()].copy_from_slice(names);
        self.header_mut().names_len = names.len() as u64;
    }

    /// Bytes of the file in use (header, records and names; not the spare capacity).
    #[must_use]
    pub fn used_bytes(&self) -> u64 {
        let h = self.header();
        HEADER_BYTES as u64
            + u64::from(h.node_count) * std::mem::size_of::<Node>() as u64
            + u64::from(h.dir_count) * std::mem::size_of::<DirRec>() as u64
            + u64::from(h.rare_count) * std::mem::size_of::<Rare>() as u64
            + h.names_len
    }
}
