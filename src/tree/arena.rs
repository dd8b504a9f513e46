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

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytemuck::{Pod, Zeroable};
use memmap2::MmapMut;

use super::node::{DirRec, Node, Rare};

pub const MAGIC: [u8; 8] = *b"DTUITREE";
/// Bumped whenever the layout of the header, `Node`, `DirRec` or `Rare`, or the checksum,
/// changes.
pub const FORMAT_VERSION: u32 = 6;

/// Nodes per chunk of the body checksum (a multiple of 64: a chunk's directory bits fill
/// whole words; 112 KiB, so a chunk hashed is still in the cache when it is checked).
pub const NODES_PER_CHUNK: usize = 4096;
/// Bytes per chunk of the body checksum, in the directory records, the rare records and the
/// names.
pub const CHUNK_BYTES: usize = 1 << 20;

/// The hash of one chunk of the body.
#[must_use]
pub fn chunk_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}
pub const HEADER_BYTES: usize = 4096;
pub const MAX_DEVICES: usize = 128;
/// The header's `state` in memory, while the tree is being changed.
pub const STATE_DIRTY: u32 = 0;
/// The header's `state` in a saved file: complete, with its body checksum.
pub const STATE_CLEAN: u32 = 1;

/// The first page of the file.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct Header {
    pub magic: [u8; 8],
    pub version: u32,
    pub state: u32,
    pub generation: u64,
    pub node_count: u32,
    pub node_cap: u32,
    pub dir_count: u32,
    pub dir_cap: u32,
    pub names_len: u64,
    pub names_cap: u64,
    pub nodes_off: u64,
    pub dirs_off: u64,
    pub names_off: u64,
    pub free_node: u32,
    pub free_dir: u32,
    pub live_nodes: u32,
    pub root: u32,
    pub root_path_off: u64,
    pub root_path_len: u32,
    pub device_count: u32,
    pub rare_count: u32,
    pub rare_cap: u32,
    pub free_rare: u32,
    /// Unused (keeps `rare_off` aligned).
    pub spare: u32,
    pub rare_off: u64,
    pub devices: [u64; MAX_DEVICES],
    /// Identifies the lineage of this tree: the database snapshot it was written with carries
    /// the same value, so an old arena cannot pass for a new database's at the same
    /// generation number.
    pub epoch: u64,
    /// xxh3 of the used part of every region, written at a clean close.
    pub body_checksum: u64,
    /// FNV-1a of every byte above.
    pub checksum: u64,
}

const _: () = assert!(std::mem::size_of::<Header>() <= HEADER_BYTES);

impl Header {
    /// Sets the capacities and the region offsets they imply; returns the file length.
    fn set_layout(&mut self, caps: Caps) -> u64 {
        let l = layout(caps);
        self.node_cap = caps.nodes as u32;
        self.dir_cap = caps.dirs as u32;
        self.rare_cap = caps.rares as u32;
        self.names_cap = caps.names;
        self.nodes_off = l.nodes;
        self.dirs_off = l.dirs;
        self.rare_off = l.rares;
        self.names_off = l.names;
        l.len
    }

    fn caps(&self) -> Caps {
        Caps {
            nodes: u64::from(self.node_cap),
            dirs: u64::from(self.dir_cap),
            rares: u64::from(self.rare_cap),
            names: self.names_cap,
        }
    }

    fn counts(&self) -> Caps {
        Caps {
            nodes: u64::from(self.node_count),
            dirs: u64::from(self.dir_count),
            rares: u64::from(self.rare_count),
            names: self.names_len,
        }
    }

    #[must_use]
    pub fn compute_checksum(&self) -> u64 {
        let bytes = bytemuck::bytes_of(self);
        fnv1a(&bytes[..bytes.len() - 8])
    }
}

/// The bytes of a region of `count` records of `T` at `off`.
#[inline]
fn region<T>(off: u64, count: u32) -> std::ops::Range<usize> {
    let start = off as usize;
    start..start + count as usize * std::mem::size_of::<T>()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
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

const MIN_NODES: u64 = 1024;
const MIN_DIRS: u64 = 256;
const MIN_RARES: u64 = 16;
const MIN_NAMES: u64 = 16 * 1024;

/// A count or a capacity of each region (records; bytes for the names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Caps {
    nodes: u64,
    dirs: u64,
    rares: u64,
    names: u64,
}

/// Where each region starts, and the file length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    nodes: u64,
    dirs: u64,
    rares: u64,
    names: u64,
    len: u64,
}

fn align64(v: u64) -> u64 {
    v.div_ceil(64) * 64
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
        let map = MmapMut::map_anon(len as usize).map_err(|source| ArenaError::Io {
            path: PathBuf::from("(memory)"),
            source,
        })?;
        let mut arena = Arena {
            map,
            path: None,
            writes: 0,
        };
        *arena.header_mut() = header;
        Ok(arena)
    }

    /// Maps a saved file copy-on-write after checking its header (magic, version, checksum,
    /// sizes, clean state). Whether its body and generation can be trusted is the caller's
    /// call (`body_is_intact`, the header's generation).
    pub fn open(path: &Path) -> Result<Arena, ArenaError> {
        let file = File::open(path).map_err(|source| ArenaError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_file(&file, path)
    }

    /// `open` for a file the caller opened (and checked) itself; `path` names it in errors.
    pub fn from_file(file: &File, path: &Path) -> Result<Arena, ArenaError> {
        let invalid = |why| ArenaError::Invalid {
            path: path.to_path_buf(),
            why,
        };
        let err = |source| ArenaError::Io {
            path: path.to_path_buf(),
            source,
        };
        let len = file.metadata().map_err(err)?.len();
        if len < HEADER_BYTES as u64 {
            return Err(invalid("shorter than its header"));
        }
        // SAFETY: a private (copy-on-write) map: our writes never reach the file. Saves replace
        // the file by rename, never truncate it, so the pages stay valid while mapped.
        let map = unsafe { memmap2::MmapOptions::new().map_copy(file) }.map_err(err)?;
        let arena = Arena {
            map,
            path: Some(path.to_path_buf()),
            writes: 0,
        };
        let h = arena.header();
        if h.magic != MAGIC {
            return Err(invalid("bad magic"));
        }
        if h.version != FORMAT_VERSION {
            return Err(invalid("unsupported format version"));
        }
        if h.checksum != h.compute_checksum() {
            return Err(invalid("header checksum mismatch"));
        }
        if h.state != STATE_CLEAN {
            return Err(invalid("not saved cleanly"));
        }
        // Capacities from the file: a huge one must not wrap the layout arithmetic.
        if h.names_cap > len {
            return Err(invalid("inconsistent header"));
        }
        let l = layout(h.caps());
        if (h.nodes_off, h.dirs_off, h.rare_off, h.names_off) != (l.nodes, l.dirs, l.rares, l.names)
            || l.len > len
            || h.node_count > h.node_cap
            || h.dir_count > h.dir_cap
            || h.rare_count > h.rare_cap
            || h.names_len > h.names_cap
            || h.device_count as usize > MAX_DEVICES
        {
            return Err(invalid("inconsistent header"));
        }
        Ok(arena)
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

    /// Makes room for `nodes` more nodes, `dirs` more directory records and `names` more name
    /// bytes (beyond the current counts), growing the file if needed.
    pub fn reserve(&mut self, nodes: u64, dirs: u64, names: u64) -> Result<(), ArenaError> {
        self.reserve_all(Caps {
            nodes,
            dirs,
            rares: 0,
            names,
        })
    }

    /// Makes room for `n` more rare records.
    pub fn reserve_rares(&mut self, n: u64) -> Result<(), ArenaError> {
        self.reserve_all(Caps {
            nodes: 0,
            dirs: 0,
            rares: n,
            names: 0,
        })
    }

    fn reserve_all(&mut self, more: Caps) -> Result<(), ArenaError> {
        let h = *self.header();
        let (have, cap) = (h.counts(), h.caps());
        let need = Caps {
            nodes: have.nodes + more.nodes,
            dirs: have.dirs + more.dirs,
            rares: have.rares + more.rares,
            names: have.names + more.names,
        };
        if need.nodes <= cap.nodes
            && need.dirs <= cap.dirs
            && need.rares <= cap.rares
            && need.names <= cap.names
        {
            return Ok(());
        }
        let limit = u64::from(u32::MAX - 1);
        if need.nodes > limit || need.dirs > limit || need.rares > limit || need.names > limit {
            return Err(ArenaError::Full(limit));
        }
        let grow = |need: u64, cap: u64| {
            if need <= cap {
                cap
            } else {
                need.max(cap * 2).min(limit)
            }
        };
        let caps = Caps {
            nodes: grow(need.nodes, cap.nodes),
            dirs: grow(need.dirs, cap.dirs),
            rares: grow(need.rares, cap.rares),
            names: grow(need.names, cap.names),
        };
        let new = layout(caps);
        let io_err = |source| ArenaError::Io {
            path: PathBuf::from("(memory)"),
            source,
        };
        // (old offset, new offset, used bytes) of each region above the nodes, last first.
        let moves = [
            (h.names_off, new.names, h.names_len as usize),
            (
                h.rare_off,
                new.rares,
                h.rare_count as usize * std::mem::size_of::<Rare>(),
            ),
            (
                h.dirs_off,
                new.dirs,
                h.dir_count as usize * std::mem::size_of::<DirRec>(),
            ),
        ];
        if self.path.is_none() {
            // Anonymous memory grows in place or moves by page remapping (no copy of the
            // pages); then the regions move up, the last one first, so nothing unmoved is
            // overwritten.
            // SAFETY: `self.map` is our private anonymous map and no reference into it is
            // alive (`&mut self`).
            unsafe {
                self.map
                    .remap(
                        new.len as usize,
                        memmap2::RemapOptions::new().may_move(true),
                    )
                    .map_err(io_err)?;
            }
            for (from, to, len) in moves {
                if from != to {
                    self.map
                        .copy_within(from as usize..from as usize + len, to as usize);
                }
            }
            // What the moves left behind now lies in the spare capacity of a region below:
            // give those pages back (they read as zeroes when next touched), so that a grown
            // tree holds no more resident memory than it uses.
            let used_end = [
                (
                    h.nodes_off,
                    h.node_count as usize * std::mem::size_of::<Node>(),
                ),
                (new.dirs, moves[2].2),
                (new.rares, moves[1].2),
            ];
            let next_start = [new.dirs, new.rares, new.names];
            for ((start, used), next) in used_end.into_iter().zip(next_start) {
                self.discard(start as usize + used, next as usize);
            }
        } else {
            // A copy-on-write map of a saved file cannot grow past the file's end: move the
            // tree into anonymous memory.
            self.map = self.copy_to_anon(caps)?;
            self.path = None;
        }
        debug_assert_eq!(new.nodes, h.nodes_off);
        self.header_mut().set_layout(caps);
        Ok(())
    }

    /// The arena's bytes in new anonymous memory laid out for `caps` (at least the current
    /// capacities); the header still holds the old layout (the caller sets the new one).
    fn copy_to_anon(&self, caps: Caps) -> Result<MmapMut, ArenaError> {
        let h = *self.header();
        let new = layout(caps);
        let io_err = |source| ArenaError::Io {
            path: PathBuf::from("(memory)"),
            source,
        };
        let mut map = MmapMut::map_anon(new.len as usize).map_err(io_err)?;
        let nodes_end = h.nodes_off as usize + h.node_count as usize * std::mem::size_of::<Node>();
        map[..nodes_end].copy_from_slice(&self.map[..nodes_end]);
        let moves = [
            (h.names_off, new.names, h.names_len as usize),
            (
                h.rare_off,
                new.rares,
                h.rare_count as usize * std::mem::size_of::<Rare>(),
            ),
            (
                h.dirs_off,
                new.dirs,
                h.dir_count as usize * std::mem::size_of::<DirRec>(),
            ),
        ];
        for (from, to, len) in moves {
            map[to as usize..to as usize + len]
                .copy_from_slice(&self.map[from as usize..from as usize + len]);
        }
        Ok(map)
    }

    /// For an arena mapped from its saved file: the same tree in anonymous memory, with room
    /// for an eighth more of every region (at least the minimums), and the write count it was
    /// taken at (see `adopt`). `None` for an arena already in anonymous memory.
    ///
    /// A saved file's map cannot grow, so the first change that adds an entry would otherwise
    /// copy the whole tree under the tree's write lock (15 ms for 500,000 entries, inside the
    /// first live batch); this takes the copy where the caller chooses, under a read lock.
    pub fn detached_copy(&self) -> Result<Option<(Arena, u64)>, ArenaError> {
        if self.path.is_none() {
            return Ok(None);
        }
        let h = *self.header();
        let (have, cap) = (h.counts(), h.caps());
        let limit = u64::from(u32::MAX - 1);
        let room =
            |have: u64, cap: u64, min: u64| cap.max(have + (have / 8).max(min)).min(limit.max(cap));
        let caps = Caps {
            nodes: room(have.nodes, cap.nodes, MIN_NODES),
            dirs: room(have.dirs, cap.dirs, MIN_DIRS),
            rares: room(have.rares, cap.rares, MIN_RARES),
            names: room(have.names, cap.names, MIN_NAMES),
        };
        let mut copy = Arena {
            map: self.copy_to_anon(caps)?,
            path: None,
            writes: 0,
        };
        copy.header_mut().set_layout(caps);
        Ok(Some((copy, self.writes)))
    }

    /// Replaces this arena by `copy` (from `detached_copy`) if nothing was written since it
    /// was taken at `writes`; says whether it did.
    pub fn adopt(&mut self, copy: Arena, writes: u64) -> bool {
        if self.writes != writes || self.path.is_none() {
            return false;
        }
        *self = copy;
        true
    }

    /// Hands the whole pages of `from..to` back to the kernel (anonymous memory: they read as
    /// zeroes afterwards). Only a hint: a failure keeps them resident, nothing else.
    fn discard(&mut self, from: usize, to: usize) {
        const PAGE: usize = 4096;
        let (from, to) = (from.div_ceil(PAGE) * PAGE, to / PAGE * PAGE);
        if to > from && self.path.is_none() {
            // SAFETY: our private anonymous map, `&mut self` (no reference into it is alive),
            // and the range holds no record: the pages may read as zeroes from now on.
            let _ = unsafe {
                self.map
                    .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from)
            };
        }
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

    /// The checksum of the used bytes of the four regions: xxh3 over the xxh3 of each chunk
    /// (`NODES_PER_CHUNK` nodes; `CHUNK_BYTES` of directory records, of rare records, of
    /// names), so that a
    /// start can hash the chunks on several threads, each while it checks them (see
    /// `Tree::validate_arena`).
    #[must_use]
    pub fn compute_body_checksum(&self) -> u64 {
        let nodes: &[u8] = bytemuck::cast_slice(self.nodes());
        let dirs: &[u8] = bytemuck::cast_slice(self.dirs());
        let rares: &[u8] = bytemuck::cast_slice(self.rares());
        let hashes: Vec<u64> = nodes
            .chunks(NODES_PER_CHUNK * std::mem::size_of::<Node>())
            .chain(dirs.chunks(CHUNK_BYTES))
            .chain(rares.chunks(CHUNK_BYTES))
            .chain(self.names().chunks(CHUNK_BYTES))
            .map(chunk_hash)
            .collect();
        Self::combine_chunk_hashes(&hashes)
    }

    /// The body checksum from its chunks' hashes, in order.
    #[must_use]
    pub fn combine_chunk_hashes(hashes: &[u64]) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for c in hashes {
            h.update(&c.to_le_bytes());
        }
        h.digest()
    }

    /// Does the body match the checksum written at the last clean close?
    #[must_use]
    pub fn body_is_intact(&self) -> bool {
        self.header().body_checksum == self.compute_body_checksum()
    }

    /// The length of the file `save` writes now (the regions cut to what is used): what the
    /// arena adds to the cache on disk.
    #[must_use]
    pub fn saved_len(&self) -> u64 {
        let c = self.header().counts();
        layout(Caps {
            nodes: c.nodes.max(1),
            dirs: c.dirs.max(1),
            rares: c.rares.max(1),
            names: c.names.max(1),
        })
        .len
    }

    /// Saves the arena to `path`: the used part of each region (no spare capacity), marked
    /// clean with its checksums, written to a temporary file beside it, synced, and renamed
    /// over `path`. A failure (a full disk) leaves `path` as it was.
    pub fn save(&self, path: &Path) -> Result<(), ArenaError> {
        let err = |source| ArenaError::Io {
            path: path.to_path_buf(),
            source,
        };
        let src = *self.header();
        let mut h = src;
        let len = h.set_layout(Caps {
            nodes: u64::from(src.node_count).max(1),
            dirs: u64::from(src.dir_count).max(1),
            rares: u64::from(src.rare_count).max(1),
            names: src.names_len.max(1),
        });
        let (nodes_off, dirs_off, rare_off, names_off) =
            (h.nodes_off, h.dirs_off, h.rare_off, h.names_off);
        h.state = STATE_CLEAN;
        h.body_checksum = self.compute_body_checksum();
        h.checksum = h.compute_checksum();
        let dir = path.parent().unwrap_or(Path::new("."));
        // Named after its target (`.tmp-<file>.XXXXXX`), so that whoever owns the target (the
        // cache, under its lock) can tell an interrupted save's leftover from anyone else's.
        let mut prefix = std::ffi::OsString::from(".tmp-");
        prefix.push(path.file_name().unwrap_or_default());
        prefix.push(".");
        let tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .tempfile_in(dir)
            .map_err(err)?;
        {
            let mut out = io::BufWriter::new(tmp.as_file());
            let mut header_page = vec![0u8; HEADER_BYTES];
            header_page[..std::mem::size_of::<Header>()].copy_from_slice(bytemuck::bytes_of(&h));
            let pad = |out: &mut io::BufWriter<&File>, at: u64, to: u64| -> io::Result<()> {
                out.write_all(&vec![0u8; (to - at) as usize])
            };
            let nodes: &[u8] = bytemuck::cast_slice(self.nodes());
            let dirs: &[u8] = bytemuck::cast_slice(self.dirs());
            let rares: &[u8] = bytemuck::cast_slice(self.rares());
            let names = self.names();
            (|| -> io::Result<()> {
                out.write_all(&header_page)?;
                out.write_all(nodes)?;
                pad(&mut out, nodes_off + nodes.len() as u64, dirs_off)?;
                out.write_all(dirs)?;
                pad(&mut out, dirs_off + dirs.len() as u64, rare_off)?;
                out.write_all(rares)?;
                pad(&mut out, rare_off + rares.len() as u64, names_off)?;
                out.write_all(names)?;
                pad(&mut out, names_off + names.len() as u64, len)?;
                out.flush()
            })()
            .map_err(err)?;
        }
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(path).map_err(|e| err(e.error))?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Offsets of the four regions and the file length for the given capacities.
fn layout(caps: Caps) -> Layout {
    let nodes = HEADER_BYTES as u64;
    let dirs = align64(nodes + caps.nodes * std::mem::size_of::<Node>() as u64);
    let rares = align64(dirs + caps.dirs * std::mem::size_of::<DirRec>() as u64);
    let names = align64(rares + caps.rares * std::mem::size_of::<Rare>() as u64);
    Layout {
        nodes,
        dirs,
        rares,
        names,
        len: names + caps.names,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_keeps_every_region_intact() {
        let mut a = Arena::create_temp().expect("temp arena");
        for i in 0..5000u32 {
            a.reserve(1, 1, 8).expect("reserve");
            let n = a.push_nodes(1);
            a.nodes_mut()[n as usize].aux = i;
            a.reserve_rares(1).expect("reserve");
            let r = a.push_rares(1);
            a.rares_mut()[r as usize].ino = u64::from(i) * 7;
            let d = a.push_dirs(1);
            a.dirs_mut()[d as usize].items = i * 3;
            a.push_name(&i.to_le_bytes());
        }
        assert!(a.header().node_cap >= 5000);
        for i in 0..5000u32 {
            assert_eq!(a.nodes()[i as usize].aux, i);
            assert_eq!(a.rares()[i as usize].ino, u64::from(i) * 7);
            assert_eq!(a.dirs()[i as usize].items, i * 3);
            let at = i as usize * 4;
            assert_eq!(&a.names()[at..at + 4], &i.to_le_bytes());
        }
    }

    #[test]
    fn a_saved_file_maps_back_intact_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.arena");
        {
            let mut a = Arena::create_temp().expect("create");
            a.reserve(3000, 0, 0).expect("reserve");
            a.push_nodes(3000);
            a.nodes_mut()[2999].aux = 77;
            a.save(&path).expect("save");
        }
        let mut a = Arena::open(&path).expect("reopen");
        assert_eq!(a.header().state, STATE_CLEAN);
        assert!(a.body_is_intact());
        assert_eq!(a.nodes()[2999].aux, 77);
        // Changes stay in memory: the file keeps the saved state.
        a.nodes_mut()[2999].aux = 5;
        a.reserve(10_000, 0, 0).expect("grow");
        assert_eq!(a.nodes()[2999].aux, 5);
        drop(a);
        assert_eq!(Arena::open(&path).expect("again").nodes()[2999].aux, 77);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[20] ^= 0xff;
        std::fs::write(&path, &bytes).expect("write");
        assert!(matches!(
            Arena::open(&path),
            Err(ArenaError::Invalid {
                why: "header checksum mismatch",
                ..
            })
        ));
        std::fs::write(&path, b"short").expect("write");
        assert!(matches!(
            Arena::open(&path),
            Err(ArenaError::Invalid { .. })
        ));
    }

    #[test]
    fn a_saved_arena_detached_into_memory_keeps_every_region_and_has_room_to_grow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.arena");
        {
            let mut a = Arena::create_temp().expect("create");
            for i in 0..4000u32 {
                a.reserve(1, 1, 8).expect("reserve");
                let n = a.push_nodes(1);
                a.nodes_mut()[n as usize].aux = i;
                a.reserve_rares(1).expect("reserve");
                let r = a.push_rares(1);
                a.rares_mut()[r as usize].ino = u64::from(i) * 7;
                let d = a.push_dirs(1);
                a.dirs_mut()[d as usize].items = i * 3;
                a.push_name(&i.to_le_bytes());
            }
            a.save(&path).expect("save");
        }
        let mut a = Arena::open(&path).expect("reopen");
        let before = *a.header();
        let (copy, at) = a
            .detached_copy()
            .expect("copy")
            .expect("a mapped file is copied");
        // An arena already in memory has nothing to detach.
        assert!(copy.detached_copy().expect("no copy").is_none());
        assert!(a.adopt(copy, at));
        assert!(a.path().is_none());
        let h = *a.header();
        assert_eq!(h.counts(), before.counts());
        assert!(h.node_cap >= 4000 + 500 && h.dir_cap >= 4000 + 500 && h.rare_cap >= 4000 + 500);
        for i in 0..4000u32 {
            assert_eq!(a.nodes()[i as usize].aux, i);
            assert_eq!(a.rares()[i as usize].ino, u64::from(i) * 7);
            assert_eq!(a.dirs()[i as usize].items, i * 3);
            let at = i as usize * 4;
            assert_eq!(&a.names()[at..at + 4], &i.to_le_bytes());
        }
        // The room is there: adding an eighth more moves nothing.
        let nodes_at = a.nodes().as_ptr();
        a.reserve(500, 500, 0).expect("within the room");
        assert_eq!(a.nodes().as_ptr(), nodes_at);
    }

    #[test]
    fn a_detached_copy_is_not_adopted_after_a_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.arena");
        {
            let mut a = Arena::create_temp().expect("create");
            a.reserve(100, 0, 0).expect("reserve");
            a.push_nodes(100);
            a.save(&path).expect("save");
        }
        let mut a = Arena::open(&path).expect("reopen");
        let (copy, at) = a.detached_copy().expect("copy").expect("copied");
        a.nodes_mut()[7].aux = 9;
        assert!(
            !a.adopt(copy, at),
            "a write came between the copy and the swap"
        );
        assert_eq!(a.nodes()[7].aux, 9);
        assert!(a.path().is_some());
    }
}
