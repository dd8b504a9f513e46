//! The memory-mapped file behind the tree: a header page, then the node array, the directory
//! records and the name heap, each a region with its own capacity.
//!
//! Growing a region doubles its capacity, extends the file, remaps it and moves the regions
//! behind it up (amortised O(1) per entry). Every access goes through the header's offsets, and
//! the borrow checker keeps references from living across a remap.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use bytemuck::{Pod, Zeroable};
use memmap2::MmapMut;

use super::node::{DirRec, Node};

pub const MAGIC: [u8; 8] = *b"DTUITREE";
/// Bumped whenever the layout of the header, `Node` or `DirRec` changes.
pub const FORMAT_VERSION: u32 = 2;
pub const HEADER_BYTES: usize = 4096;
pub const MAX_DEVICES: usize = 128;
/// The header's `state` while a writer has the file open.
pub const STATE_DIRTY: u32 = 0;
/// The header's `state` after a clean close: the contents match the header.
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
    pub devices: [u64; MAX_DEVICES],
    /// xxh3 of the used part of every region, written at a clean close.
    pub body_checksum: u64,
    /// FNV-1a of every byte above.
    pub checksum: u64,
}

const _: () = assert!(std::mem::size_of::<Header>() <= HEADER_BYTES);

impl Header {
    #[must_use]
    pub fn compute_checksum(&self) -> u64 {
        let bytes = bytemuck::bytes_of(self);
        fnv1a(&bytes[..bytes.len() - 8])
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Why an arena file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ArenaError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not a dtui tree file ({why})")]
    Invalid { path: PathBuf, why: &'static str },
    #[error("the tree is full: more than {0} entries")]
    Full(u64),
}

/// The mapped file (or anonymous memory) and its regions.
pub struct Arena {
    /// None: anonymous memory, nothing on disk.
    file: Option<File>,
    map: MmapMut,
    path: Option<PathBuf>,
}

const MIN_NODES: u64 = 1024;
const MIN_DIRS: u64 = 256;
const MIN_NAMES: u64 = 16 * 1024;

fn align64(v: u64) -> u64 {
    v.div_ceil(64) * 64
}

impl Arena {
    /// A new arena in anonymous memory (nothing written to disk; gone with the process).
    pub fn create_temp() -> Result<Arena, ArenaError> {
        Self::init(None, None)
    }

    /// A new arena at `path`, replacing whatever was there.
    pub fn create_at(path: &Path) -> Result<Arena, ArenaError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|source| ArenaError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Self::init(Some(file), Some(path.to_path_buf()))
    }

    fn init(file: Option<File>, path: Option<PathBuf>) -> Result<Arena, ArenaError> {
        let mut header = Header::zeroed();
        header.magic = MAGIC;
        header.version = FORMAT_VERSION;
        header.state = STATE_DIRTY;
        header.free_node = u32::MAX;
        header.free_dir = u32::MAX;
        header.root = u32::MAX;
        let (nodes_off, dirs_off, names_off, len) = layout(MIN_NODES, MIN_DIRS, MIN_NAMES);
        header.node_cap = MIN_NODES as u32;
        header.dir_cap = MIN_DIRS as u32;
        header.names_cap = MIN_NAMES;
        header.nodes_off = nodes_off;
        header.dirs_off = dirs_off;
        header.names_off = names_off;
        let err = |source| ArenaError::Io {
            path: path.clone().unwrap_or_else(std::env::temp_dir),
            source,
        };
        let map = match &file {
            Some(f) => {
                allocate(f, len).map_err(err)?;
                map_file(f).map_err(err)?
            }
            None => MmapMut::map_anon(len as usize).map_err(err)?,
        };
        let mut arena = Arena { file, map, path };
        *arena.header_mut() = header;
        Ok(arena)
    }

    /// Maps an existing file after checking its header (magic, version, checksum, sizes).
    /// Whether its contents can be trusted (clean state, generation) is the caller's call.
    pub fn open(path: &Path) -> Result<Arena, ArenaError> {
        let invalid = |why| ArenaError::Invalid {
            path: path.to_path_buf(),
            why,
        };
        let err = |source| ArenaError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(err)?;
        let len = file.metadata().map_err(err)?.len();
        if len < HEADER_BYTES as u64 {
            return Err(invalid("shorter than its header"));
        }
        let map = map_file(&file).map_err(err)?;
        let arena = Arena {
            file: Some(file),
            map,
            path: Some(path.to_path_buf()),
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
        let (nodes_off, dirs_off, names_off, need) =
            layout(u64::from(h.node_cap), u64::from(h.dir_cap), h.names_cap);
        if (h.nodes_off, h.dirs_off, h.names_off) != (nodes_off, dirs_off, names_off)
            || need > len
            || h.node_count > h.node_cap
            || h.dir_count > h.dir_cap
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
    pub fn header(&self) -> &Header {
        bytemuck::from_bytes(&self.map[..std::mem::size_of::<Header>()])
    }

    pub fn header_mut(&mut self) -> &mut Header {
        bytemuck::from_bytes_mut(&mut self.map[..std::mem::size_of::<Header>()])
    }

    #[must_use]
    pub fn nodes(&self) -> &[Node] {
        let h = self.header();
        let start = h.nodes_off as usize;
        let len = h.node_count as usize * std::mem::size_of::<Node>();
        bytemuck::cast_slice(&self.map[start..start + len])
    }

    pub fn nodes_mut(&mut self) -> &mut [Node] {
        let h = *self.header();
        let start = h.nodes_off as usize;
        let len = h.node_count as usize * std::mem::size_of::<Node>();
        bytemuck::cast_slice_mut(&mut self.map[start..start + len])
    }

    #[must_use]
    pub fn dirs(&self) -> &[DirRec] {
        let h = self.header();
        let start = h.dirs_off as usize;
        let len = h.dir_count as usize * std::mem::size_of::<DirRec>();
        bytemuck::cast_slice(&self.map[start..start + len])
    }

    pub fn dirs_mut(&mut self) -> &mut [DirRec] {
        let h = *self.header();
        let start = h.dirs_off as usize;
        let len = h.dir_count as usize * std::mem::size_of::<DirRec>();
        bytemuck::cast_slice_mut(&mut self.map[start..start + len])
    }

    #[must_use]
    pub fn names(&self) -> &[u8] {
        let h = self.header();
        let start = h.names_off as usize;
        &self.map[start..start + h.names_len as usize]
    }

    /// Makes room for `nodes` more nodes, `dirs` more directory records and `names` more name
    /// bytes (beyond the current counts), growing the file if needed.
    pub fn reserve(&mut self, nodes: u64, dirs: u64, names: u64) -> Result<(), ArenaError> {
        let h = *self.header();
        let need_nodes = u64::from(h.node_count) + nodes;
        let need_dirs = u64::from(h.dir_count) + dirs;
        let need_names = h.names_len + names;
        if need_nodes <= u64::from(h.node_cap)
            && need_dirs <= u64::from(h.dir_cap)
            && need_names <= h.names_cap
        {
            return Ok(());
        }
        let limit = u64::from(u32::MAX - 1);
        if need_nodes > limit || need_dirs > limit || need_names > limit {
            return Err(ArenaError::Full(limit));
        }
        let grow = |need: u64, cap: u64| if need <= cap { cap } else { need.max(cap * 2) };
        let node_cap = grow(need_nodes, u64::from(h.node_cap)).min(limit);
        let dir_cap = grow(need_dirs, u64::from(h.dir_cap)).min(limit);
        let names_cap = grow(need_names, h.names_cap).min(limit);
        let (nodes_off, dirs_off, names_off, len) = layout(node_cap, dir_cap, names_cap);
        let err = |source| ArenaError::Io {
            path: self.path.clone().unwrap_or_else(std::env::temp_dir),
            source,
        };
        let dirs_len = h.dir_count as usize * std::mem::size_of::<DirRec>();
        let names_len = h.names_len as usize;
        if let Some(file) = &self.file {
            allocate(file, len).map_err(err)?;
            self.map = map_file(file).map_err(err)?;
            // Regions only move up, so moving the last one first never overwrites unmoved data.
            self.map.copy_within(
                h.names_off as usize..h.names_off as usize + names_len,
                names_off as usize,
            );
            self.map.copy_within(
                h.dirs_off as usize..h.dirs_off as usize + dirs_len,
                dirs_off as usize,
            );
        } else {
            let mut map = MmapMut::map_anon(len as usize).map_err(err)?;
            let nodes_end =
                h.nodes_off as usize + h.node_count as usize * std::mem::size_of::<Node>();
            map[..nodes_end].copy_from_slice(&self.map[..nodes_end]);
            map[dirs_off as usize..dirs_off as usize + dirs_len]
                .copy_from_slice(&self.map[h.dirs_off as usize..h.dirs_off as usize + dirs_len]);
            map[names_off as usize..names_off as usize + names_len]
                .copy_from_slice(&self.map[h.names_off as usize..h.names_off as usize + names_len]);
            self.map = map;
        }
        debug_assert_eq!(nodes_off, h.nodes_off);
        let hm = self.header_mut();
        hm.node_cap = node_cap as u32;
        hm.dir_cap = dir_cap as u32;
        hm.names_cap = names_cap;
        hm.dirs_off = dirs_off;
        hm.names_off = names_off;
        Ok(())
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

    /// Bytes of the file in use (header, records and names; not the spare capacity).
    #[must_use]
    pub fn used_bytes(&self) -> u64 {
        let h = self.header();
        HEADER_BYTES as u64
            + u64::from(h.node_count) * std::mem::size_of::<Node>() as u64
            + u64::from(h.dir_count) * std::mem::size_of::<DirRec>() as u64
            + h.names_len
    }

    /// xxh3 over the used bytes of the three regions.
    #[must_use]
    pub fn compute_body_checksum(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(bytemuck::cast_slice(self.nodes()));
        h.update(bytemuck::cast_slice(self.dirs()));
        h.update(self.names());
        h.digest()
    }

    /// Does the body match the checksum written at the last clean close?
    #[must_use]
    pub fn body_is_intact(&self) -> bool {
        self.header().body_checksum == self.compute_body_checksum()
    }

    /// Marks the file clean (body flushed first, then the header with the body checksum) or
    /// dirty (only the header, flushed before any change is made to the body).
    pub fn sync(&mut self, state: u32) -> Result<(), ArenaError> {
        let path = self.path.clone().unwrap_or_else(std::env::temp_dir);
        let err = |source| ArenaError::Io {
            path: path.clone(),
            source,
        };
        if state == STATE_CLEAN {
            self.map.flush().map_err(err)?;
            let body = self.compute_body_checksum();
            self.header_mut().body_checksum = body;
        }
        let h = self.header_mut();
        h.state = state;
        h.checksum = h.compute_checksum();
        self.map.flush_range(0, HEADER_BYTES).map_err(err)
    }

    /// The file's length on disk (capacity included).
    #[must_use]
    pub fn file_len(&self) -> u64 {
        self.map.len() as u64
    }
}

/// Offsets of the three regions and the file length for the given capacities.
fn layout(node_cap: u64, dir_cap: u64, names_cap: u64) -> (u64, u64, u64, u64) {
    let nodes_off = HEADER_BYTES as u64;
    let dirs_off = align64(nodes_off + node_cap * std::mem::size_of::<Node>() as u64);
    let names_off = align64(dirs_off + dir_cap * std::mem::size_of::<DirRec>() as u64);
    (nodes_off, dirs_off, names_off, names_off + names_cap)
}

/// Extends the file to `len` with its blocks reserved: writing through the map to a page the
/// filesystem cannot back would kill the process (SIGBUS); a full disk fails here instead.
fn allocate(file: &File, len: u64) -> io::Result<()> {
    let current = file.metadata()?.len();
    if len > current {
        nix::fcntl::posix_fallocate(file, 0, len as i64).map_err(io::Error::from)?;
    }
    Ok(())
}

fn map_file(file: &File) -> io::Result<MmapMut> {
    // SAFETY: the file is ours: a private temp file or a cache file that only one dtui process
    // writes at a time. Another process truncating it under us is outside what we defend.
    unsafe { MmapMut::map_mut(file) }
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
            a.nodes_mut()[n as usize].ino = u64::from(i);
            let d = a.push_dirs(1);
            a.dirs_mut()[d as usize].items = i * 3;
            a.push_name(&i.to_le_bytes());
        }
        assert!(a.header().node_cap >= 5000);
        for i in 0..5000u32 {
            assert_eq!(a.nodes()[i as usize].ino, u64::from(i));
            assert_eq!(a.dirs()[i as usize].items, i * 3);
            let at = i as usize * 4;
            assert_eq!(&a.names()[at..at + 4], &i.to_le_bytes());
        }
    }

    #[test]
    fn a_reopened_file_keeps_its_contents_and_a_damaged_header_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.arena");
        {
            let mut a = Arena::create_at(&path).expect("create");
            a.reserve(3000, 0, 0).expect("reserve");
            a.push_nodes(3000);
            a.nodes_mut()[2999].apparent = 77;
            a.sync(STATE_CLEAN).expect("sync");
        }
        let a = Arena::open(&path).expect("reopen");
        assert_eq!(a.header().state, STATE_CLEAN);
        assert_eq!(a.nodes()[2999].apparent, 77);
        drop(a);
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
}
