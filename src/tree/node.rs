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

/// One entry. 28 bytes, no 64-bit field: what does not fit (see `Rare`) lives in a side
/// record; the name lives in the name heap.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct Node {
    pub parent: u32,
    pub next_sibling: u32,
    pub name_off: u32,
    pub name_len: u8,
    /// The `Kind` in the low bits, `RARE_BIT` on top (read through `kind()` and `is_rare()`).
    pub kind_bits: u8,
    pub flags: u8,
    /// Bumped each time the slot is freed, so a holder of a stale id can tell.
    pub generation: u8,
    /// Directory: index of its `DirRec`. Rare non-directory: index of its `Rare` record.
    /// Other kinds: the own apparent size. Free slot: unused.
    pub aux: u32,
    /// Own disk usage in 512-byte blocks (unused when rare: the record holds it).
    pub disk_blocks: u32,
    /// Non-directory: `st_mtime` in whole seconds since the epoch (unused when rare).
    /// Directory: its `Rare` index when rare, else 0 (its mtime lives in the `DirRec`).
    pub word: u32,
}

/// The top bit of `Node::kind_bits`: the entry's own attributes are in a `Rare` record.
pub const RARE_BIT: u8 = 0x80;

impl Node {
    #[must_use]
    #[inline]
    pub fn kind(&self) -> Kind {
        Kind::from_u8(self.kind_bits & !RARE_BIT)
    }

    #[must_use]
    #[inline]
    pub fn is_dir(&self) -> bool {
        self.kind_bits & !RARE_BIT == Kind::Dir as u8
    }

    #[must_use]
    #[inline]
    pub fn is_rare(&self) -> bool {
        self.kind_bits & RARE_BIT != 0
    }

    /// The index of its `Rare` record, if it has one.
    #[must_use]
    #[inline]
    pub fn rare_index(&self) -> Option<u32> {
        if !self.is_rare() {
            None
        } else if self.is_dir() {
            Some(self.word)
        } else {
            Some(self.aux)
        }
    }
}

/// The directory-only part of a node. 56 bytes: a directory keeps its identity (device,
/// inode) and its times at full precision (nanoseconds since the epoch, 1678..2262; a time
/// outside makes the directory rare, or its listing untrusted), which prove an unchanged
/// listing.
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
    pub ino: u64,
    /// `st_mtime` in nanoseconds since the epoch (see `Time::as_ns`); 0 when the node is rare
    /// (its `Rare` record holds it).
    pub mtime_ns: i64,
    /// `st_ctime` in nanoseconds, seen when the listing was last read: user space cannot set
    /// it, and every add, remove and rename in the directory moves it. `NO_CTIME`: none
    /// that fits (the listing is then never trusted).
    pub ctime_ns: i64,
    /// Own apparent size (when the node is rare, its `Rare` record holds it instead).
    pub apparent: u32,
    /// errno of the failed open or read when `READ_ERROR` is set, else 0.
    pub errno: u16,
    /// Index into the header's device table (`NO_DEV`: unknown).
    pub dev: u8,
    /// `dir_flags` bits.
    pub dflags: u8,
}

/// `DirRec::dev` of a directory whose device is not in the table.
pub const NO_DEV: u8 = u8::MAX;

/// `DirRec::ctime_ns` when the ctime does not fit.
pub const NO_CTIME: i64 = i64::MIN;

/// What an entry's own attributes need when they do not fit the node's words: an apparent
/// size of 4 GiB or more, a disk usage that is not whole 512-byte blocks or not below 2 TiB,
/// an mtime outside 1970..2106, a hard link (its inode and link count), a read error (its
/// errno). 48 bytes, in a region of its own with a free list; most trees have almost none.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub struct Rare {
    pub apparent: u64,
    pub disk: u64,
    pub mtime: i64,
    /// 0 when unknown (an imported entry).
    pub ino: u64,
    pub mtime_nsec: u32,
    pub nlink: u32,
    pub errno: u32,
    /// A hard link: the next member of its group's ring (in memory only: rebuilt from the
    /// inodes before a group is first used, see `Tree::links`). On the free list: the next
    /// free record (`u32::MAX` ends it).
    pub link: u32,
}

/// An entry's own attributes at full precision, as stored (see `Tree::own`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Own {
    pub apparent: u64,
    pub disk: u64,
    pub mtime: Time,
    /// Known for directories, hard links and other rare entries; `None` for a plain file,
    /// whose node has no room for it.
    pub ino: Option<u64>,
    pub nlink: u32,
    /// errno when `READ_ERROR` is set, else 0.
    pub errno: u32,
}

impl Own {
    /// Does a non-directory with these attributes need a `Rare` record?
    #[must_use]
    pub fn needs_rare(&self) -> bool {
        self.apparent > u64::from(u32::MAX)
            || !plain_disk(self.disk)
            || !plain_mtime(self.mtime.sec)
            || self.nlink > 1
            || self.errno != 0
    }

    /// These attributes as a non-directory stores them: a plain entry keeps no inode and
    /// no sub-second mtime. (Comparing a fresh stat with what is stored goes through this.)
    #[must_use]
    pub fn stored(mut self) -> Own {
        if self.needs_rare() {
            if self.ino == Some(0) {
                self.ino = None;
            }
        } else {
            self.ino = None;
            self.mtime.nsec = 0;
            self.nlink = 1;
        }
        self
    }
}

/// Is this disk usage whole 512-byte blocks, below 2^32 of them?
#[must_use]
pub fn plain_disk(disk: u64) -> bool {
    disk % 512 == 0 && u32::try_from(disk / 512).is_ok()
}

/// Does this mtime fit whole seconds since the epoch in a `u32`?
#[must_use]
pub fn plain_mtime(sec: i64) -> bool {
    (0..=i64::from(u32::MAX)).contains(&sec)
}

/// Bits of `DirRec::dflags`.
pub mod dir_flags {
    /// The listing was read more than a clock tick after the directory's last change, so an
    /// unchanged (ctime, mtime) proves an unchanged listing. A listing read within the same
    /// tick as a change may have missed a later change stamped with the same time.
    pub const LISTING_TRUSTED: u8 = 1;
}

/// A timestamp at full precision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time {
    pub sec: i64,
    pub nsec: u32,
}

impl Time {
    /// Nanoseconds since the epoch in an `i64` (1678..2262), if it fits exactly.
    #[must_use]
    pub fn as_ns(self) -> Option<i64> {
        if self.nsec >= 1_000_000_000 {
            return None;
        }
        self.sec
            .checked_mul(1_000_000_000)?
            .checked_add(i64::from(self.nsec))
            .filter(|&ns| ns != NO_CTIME)
    }

    #[must_use]
    pub fn from_ns(ns: i64) -> Time {
        Time {
            sec: ns.div_euclid(1_000_000_000),
            nsec: ns.rem_euclid(1_000_000_000) as u32,
        }
    }

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

const _: () = assert!(std::mem::size_of::<Node>() == 28);
const _: () = assert!(std::mem::size_of::<DirRec>() == 56);
const _: () = assert!(std::mem::size_of::<Rare>() == 48);
