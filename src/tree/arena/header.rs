//! The header page and the layout it describes: where each region starts for given
//! capacities, and the smallest capacities a new arena starts with.

use bytemuck::{Pod, Zeroable};

use super::super::node::{DirRec, Node, Rare};

pub const MAGIC: [u8; 8] = *b"DTUITREE";
/// Bumped whenever the layout of the header, `Node`, `DirRec` or `Rare`, or the checksum,
/// changes.
pub const FORMAT_VERSION: u32 = 6;

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
    pub(super) fn set_layout(&mut self, caps: Caps) -> u64 {
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

    pub(super) fn caps(&self) -> Caps {
        Caps {
            nodes: u64::from(self.node_cap),
            dirs: u64::from(self.dir_cap),
            rares: u64::from(self.rare_cap),
            names: self.names_cap,
        }
    }

    pub(super) fn counts(&self) -> Caps {
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

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The smallest capacity of each region (a new arena's).
pub(super) const MIN_NODES: u64 = 1024;
pub(super) const MIN_DIRS: u64 = 256;
pub(super) const MIN_RARES: u64 = 16;
pub(super) const MIN_NAMES: u64 = 16 * 1024;

/// A count or a capacity of each region (records; bytes for the names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Caps {
    pub(super) nodes: u64,
    pub(super) dirs: u64,
    pub(super) rares: u64,
    pub(super) names: u64,
}

/// Where each region starts, and the file length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Layout {
    pub(super) nodes: u64,
    pub(super) dirs: u64,
    pub(super) rares: u64,
    pub(super) names: u64,
    pub(super) len: u64,
}

fn align64(v: u64) -> u64 {
    v.div_ceil(64) * 64
}

/// Offsets of the four regions and the file length for the given capacities.
pub(super) fn layout(caps: Caps) -> Layout {
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
