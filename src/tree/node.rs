//! The fixed-size records of the arena: `Node` (every entry) and `DirRec` (directories only).
//!
//! Both are `#[repr(C)]` plain integers with no padding, so they can be cast from the bytes of a
//! memory-mapped file as they are, and mapped back on the next start without parsing.

use bytemuck::{Pod, Zeroable};

/// An index into the node array. `NodeId::NONE` marks the end of a list or "no parent".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    pub const NONE: NodeId = NodeId(u32::MAX);

    #[must_use]
    pub fn is_none(self) -> bool {
        self == Self::NONE
    }

    #[must_use]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What an entry is. Stored as a `u8` in the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    File = 0,
    Dir = 1,
    Symlink = 2,
    /// fifo, socket, device node
    Other = 3,
    /// could not be stat'ed
    Unknown = 4,
}

impl Kind {
    #[must_use]
    pub fn from_u8(v: u8) -> Kind {
        match v {
            0 => Kind::File,
            1 => Kind::Dir,
            2 => Kind::Symlink,
            3 => Kind::Other,
            _ => Kind::Unknown,
        }
    }

    /// From the `S_IFMT` bits of a mode.
    #[must_use]
    pub fn from_mode(mode: u32) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            _ => Kind::Other,
        }
    }
}

/// Per-node flag bits (a `u8` in the node). The letters are ncdu's flag column.
pub mod flags {
    /// `!`: this entry (or, for a directory, its listing) could not be read
    pub const READ_ERROR: u8 = 1;
    /// `.`: something below this directory could not be read
    pub const ERROR_BELOW: u8 = 1 << 1;
    /// `<`: excluded by a pattern, not scanned or counted
    pub const EXCLUDED: u8 = 1 << 2;
    /// `>`: on another filesystem, not scanned or counted (with `-x`)
    pub const OTHER_FS: u8 = 1 << 3;
    /// `H`: a hard link whose inode is already counted through another link
    pub const HARDLINK_DUP: u8 = 1 << 4;
    /// the entry's data may be out of date (cache loaded, not yet verified)
    pub const STALE: u8 = 1 << 5;
    /// the slot is on the free list
    pub const FREE: u8 = 1 << 6;

    /// Flags under which an entry contributes nothing to its parent's sizes.
    pub const NOT_CHARGED: u8 = EXCLUDED | OTHER_FS | HARDLINK_DUP;
}

/// One entry. 56 bytes; the name lives in the name heap.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct Node {
    pub parent: u32,
    pub next_sibling: u32,
    /// Directory: index of its `DirRec`. Other kinds: the link count, or the errno when
    /// `READ_ERROR` is set. Free slot: unused.
    pub aux: u32,
    pub name_off: u32,
    pub name_len: u8,
    pub kind: u8,
    pub flags: u8,
    /// Bumped each time the slot is freed, so a holder of a stale id can tell.
    pub generation: u8,
    /// Nanoseconds of `mtime`.
    pub mtime_nsec: u32,
    /// `st_mtime` in seconds since the epoch, at full range (before 1970 too).
    pub mtime: i64,
    pub ino: u64,
    /// Own apparent size (`st_size`).
    pub apparent: u64,
    /// Own disk usage (`st_blocks * 512`).
    pub disk: u64,
}

/// The directory-only part of a node. 48 bytes.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct DirRec {
    /// First child, or `NONE`. On the free list: the next free record.
    pub first_child: u32,
    /// Entries below this directory (not counting itself).
    pub items: u32,
    /// Own apparent size plus everything charged below.
    pub total_apparent: u64,
    /// Own disk usage plus everything charged below.
    pub total_disk: u64,
    /// Index into the header's device table (`u32::MAX`: unknown).
    pub dev: u32,
    /// errno of the failed open or read when `READ_ERROR` is set, else 0.
    pub errno: u32,
    /// `st_ctime` (seconds, then nanoseconds) seen when the listing was last read: user space
    /// cannot set it, and every add, remove and rename in the directory moves it.
    pub ctime: i64,
    pub ctime_nsec: u32,
    /// `dir_flags` bits.
    pub dflags: u32,
}

/// Bits of `DirRec::dflags`.
pub mod dir_flags {
    /// The listing was read more than a clock tick after the directory's last change, so an
    /// unchanged (ctime, mtime) proves an unchanged listing. A listing read within the same
    /// tick as a change may have missed a later change stamped with the same time.
    pub const LISTING_TRUSTED: u32 = 1;
}

/// A timestamp at full precision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time {
    pub sec: i64,
    pub nsec: u32,
}

impl Time {
    /// Nanoseconds since the epoch (saturating), for comparisons with a clock.
    #[must_use]
    pub fn as_nanos(self) -> i128 {
        i128::from(self.sec) * 1_000_000_000 + i128::from(self.nsec)
    }
}

/// Totals of a subtree (or the own sizes of a non-directory).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub apparent: u64,
    pub disk: u64,
    /// Entries below (for a directory), 0 for other kinds.
    pub items: u64,
}

/// ncdu's flag column for an entry (one character, space if none).
#[must_use]
pub fn flag_char(f: u8, kind: Kind) -> &'static str {
    if f & flags::READ_ERROR != 0 {
        "!"
    } else if f & flags::ERROR_BELOW != 0 {
        "."
    } else if f & flags::EXCLUDED != 0 {
        "<"
    } else if f & flags::OTHER_FS != 0 {
        ">"
    } else if kind == Kind::Symlink {
        "@"
    } else if f & flags::HARDLINK_DUP != 0 {
        "H"
    } else {
        " "
    }
}

const _: () = assert!(std::mem::size_of::<Node>() == 56);
const _: () = assert!(std::mem::size_of::<DirRec>() == 48);
