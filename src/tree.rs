//! The mmap state: every entry of the scanned tree as a fixed-size node in a memory-mapped
//! arena, names as raw bytes in a name heap, subtree totals kept exact by bubbling deltas up to
//! the root in O(depth), and hard links charged once per (device, inode).
//!
//! One writer at a time (scan, reconcile) holds `&mut Tree`, normally through a `RwLock`; readers
//! take the read lock only for what they look at.
//!
//! The edits are in `insert`, `update` (a fresh stat, a rename) and `remove`; what they keep
//! exact in `totals`, `links` (hard-link groups), `attrs` (an entry's own attributes, read
//! errors) and `names` (the name heap).

pub mod arena;
mod attrs;
mod bulk;
mod idtable;
mod index;
mod inodes;
mod insert;
mod links;
mod memory;
mod names;
pub mod node;
mod preview;
pub use inodes::fingerprint;
pub use links::Linked;
mod remove;
mod rows;
mod totals;
mod update;
mod validate;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use arena::{Arena, ArenaError};
pub use memory::MemoryUse;
pub use names::{NameCacheHint, first_bytes_le};
pub use node::{DirRec, Kind, Node, NodeId, Own, Rare, Time, Totals, dir_flags, flag_char, flags};
pub use rows::{Census, Changes, Row, RowChunk};
use totals::Charge;
pub use totals::Delta;

/// A node as a client holds it: the id and the slot's generation, so a slot freed and reused
/// since is told apart from the node it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeRef {
    pub id: NodeId,
    pub generation: u8,
}

/// The stat of an entry, as the scanner hands it to the tree.
#[derive(Debug, Clone, Copy)]
pub struct EntryInfo {
    pub kind: Kind,
    pub flags: u8,
    pub ino: u64,
    pub dev: u64,
    pub nlink: u32,
    pub mtime: i64,
    pub mtime_nsec: u32,
    pub apparent: u64,
    pub disk: u64,
    /// errno when `flags` has `READ_ERROR`, else 0.
    pub errno: u32,
}

impl EntryInfo {
    /// Its own attributes as the tree keeps them (before any trimming, see `Own::stored`).
    #[must_use]
    pub fn own(&self) -> Own {
        Own {
            apparent: self.apparent,
            disk: self.disk,
            mtime: Time {
                sec: self.mtime,
                nsec: self.mtime_nsec,
            },
            ino: (self.ino != 0).then_some(self.ino),
            nlink: self.nlink,
            errno: if self.flags & flags::READ_ERROR != 0 {
                self.errno
            } else {
                0
            },
        }
    }

    /// An entry known only by name and kind (excluded, or its stat failed).
    #[must_use]
    pub fn bare(kind: Kind, flags: u8, errno: u32) -> EntryInfo {
        EntryInfo {
            kind,
            flags,
            ino: 0,
            dev: 0,
            nlink: 1,
            mtime: 0,
            mtime_nsec: 0,
            apparent: 0,
            disk: 0,
            errno,
        }
    }
}

/// A new child, its name a range of a caller's name buffer (no allocation per entry).
#[derive(Debug, Clone, Copy)]
pub struct NewEntry {
    pub name_start: u32,
    pub name_len: u8,
    pub info: EntryInfo,
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error(transparent)]
    Arena(#[from] ArenaError),
    #[error("{0}: a name longer than 255 bytes")]
    NameTooLong(String),
    #[error("the stored tree is inconsistent: {0}")]
    Corrupt(&'static str),
}

/// Proof that `Tree::validate_arena` passed, for `Tree::from_validated`.
#[derive(Debug)]
pub struct Validated(());

pub struct Tree {
    arena: Arena,
    /// The charged member of each hard-link group, found by (device, inode); a group's
    /// members form a ring through their rare records. Built on first need (`ensure_links`):
    /// a tree loaded from the cache may never change a link.
    links: idtable::TaggedIdTable,
    links_built: bool,
    /// A direct-mapped cache of recently stored names: repeated names (`index.js`,
    /// `__init__.py`, `.git/objects/00`) share their bytes in the heap, which is append-only,
    /// so sharing is safe (a compaction clears the cache). Slots: `names::CachedName`. Not
    /// persisted; it starts empty.
    name_cache: Vec<names::CachedName>,
    /// Ids of nodes changed since the last `take_changes`, once tracking is on.
    changes: Option<HashSet<u32>>,
    /// `add_in_bulk`'s buffers (the name offsets and devices of a slice), kept between slices.
    bulk_names: Vec<u32>,
    bulk_devs: Vec<u8>,
    /// Every add through the general path (tests compare the two).
    #[cfg(test)]
    bulk_off: bool,
    /// Directories whose totals, item count or child list alone changed since then (their
    /// rows hold nothing else that moved): touched for readers and the history, but their
    /// rows are not written again, since totals are derived data recomputed on a rebuild.
    /// A change deep in the tree writes its own row and its parent's, not every ancestor's.
    totals_changed: HashSet<u32>,
    /// (directory, name) to child, for wide directories (see `index`).
    index: index::ChildIndex,
    /// Name bytes given up by freed or renamed nodes since the last compaction (an upper
    /// bound: names are shared).
    dead_names: u64,
    /// Each entry's inode fingerprint, once a watch asks (`track_inodes`).
    inodes: Option<inodes::Fingerprints>,
    /// Linked inodes whose names changed since the last `take_linked` (a watched tree that
    /// records its changes: see `Linked`).
    linked_log: Vec<Linked>,
    /// A preview's copied slots, a bit each (`Tree::preview`): every other slot is blank
    /// (zero, which has no `FREE` flag) and holds no entry.
    copied: Option<Box<[u64]>>,
}

impl Tree {
    /// A tree holding only its root, in the given (new) arena.
    pub fn create(mut arena: Arena, root_path: &Path, root: &EntryInfo) -> Result<Tree, TreeError> {
        let path = root_path.as_os_str().as_bytes();
        arena.reserve(1, 1, path.len() as u64)?;
        let off = arena.push_name(path);
        let h = arena.header_mut();
        h.root_path_off = off;
        h.root_path_len = path.len() as u32;
        // No entry is linked yet: the (empty) groups are built.
        let mut tree = Tree::bare(arena, true);
        let (id, generation) = tree.alloc_node();
        tree.arena.header_mut().root = id.0;
        tree.write_node(id, generation, NodeId::NONE, 0, 0, root)?;
        Ok(tree)
    }

    /// A tree over an existing arena (its header already checked by `Arena::open`): every
    /// index is validated. The hard-link groups are built on first need (a change to a linked
    /// entry), not here: a start from the cache only reads.
    pub fn from_arena(arena: Arena) -> Result<Tree, TreeError> {
        let valid = Self::validate_arena(&arena).map_err(TreeError::Corrupt)?;
        Ok(Self::from_validated(arena, valid))
    }

    /// A tree over an arena that `validate_arena` passed (so a caller can check the body's
    /// checksum on another thread meanwhile: both read the whole file).
    #[must_use]
    pub fn from_validated(arena: Arena, _valid: Validated) -> Tree {
        Tree::bare(arena, false)
    }

    /// A tree over `arena` with nothing derived from it yet (no caches, no tracking, no
    /// index); `links_built` says whether the hard-link groups are already complete.
    fn bare(arena: Arena, links_built: bool) -> Tree {
        Tree {
            arena,
            links: idtable::TaggedIdTable::default(),
            links_built,
            name_cache: Vec::new(),
            changes: None,
            bulk_names: Vec::new(),
            bulk_devs: Vec::new(),
            #[cfg(test)]
            bulk_off: false,
            totals_changed: HashSet::new(),
            index: index::ChildIndex::default(),
            dead_names: 0,
            inodes: None,
            linked_log: Vec::new(),
            copied: None,
        }
    }

    /// `validate` for an arena not yet made a tree.
    pub fn validate_arena(arena: &Arena) -> Result<Validated, &'static str> {
        validate::arena(arena).map(|()| Validated(()))
    }

    /// `validate_arena` and `Arena::body_is_intact` in one pass on every core, as a start
    /// from the cache needs both: `Err(Some(why))` for the structure (a pass that stops
    /// there has not hashed everything), else `Err(None)` if the checksum does not match.
    pub fn check_arena(arena: &Arena) -> Result<Validated, Option<&'static str>> {
        let checked = validate::check(arena, true);
        checked.structure.map_err(Some)?;
        if checked.intact != Some(true) {
            return Err(None);
        }
        Ok(Validated(()))
    }

    /// Checks that every index in the arena is in range and that the tree is a tree (see
    /// `validate::arena`).
    pub fn validate(&self) -> Result<(), &'static str> {
        validate::arena(&self.arena)
    }

    #[must_use]
    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    pub fn arena_mut(&mut self) -> &mut Arena {
        &mut self.arena
    }

    #[must_use]
    pub fn root(&self) -> NodeId {
        NodeId(self.arena.header().root)
    }

    #[must_use]
    pub fn root_path(&self) -> PathBuf {
        let h = self.arena.header();
        let off = h.root_path_off as usize;
        let bytes = &self.arena.names()[off..off + h.root_path_len as usize];
        PathBuf::from(OsStr::from_bytes(bytes))
    }

    /// Live entries, the root included.
    #[must_use]
    pub fn len(&self) -> u64 {
        u64::from(self.arena.header().live_nodes)
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The lineage id shared with the database snapshot (see `arena::Header::epoch`).
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.arena.header().epoch
    }

    pub fn set_epoch(&mut self, epoch: u64) {
        self.arena.header_mut().epoch = epoch;
    }

    #[must_use]
    pub fn generation(&self) -> u64 {
        self.arena.header().generation
    }

    pub fn bump_generation(&mut self) -> u64 {
        let h = self.arena.header_mut();
        h.generation += 1;
        h.generation
    }

    /// A client's handle on a node (see `NodeRef`).
    #[must_use]
    pub fn node_ref(&self, id: NodeId) -> NodeRef {
        NodeRef {
            id,
            generation: self
                .arena
                .nodes()
                .get(id.index())
                .map_or(0, |n| n.generation),
        }
    }

    /// The node a client's handle names, if it is still that node.
    #[must_use]
    pub fn resolve(&self, r: NodeRef) -> Option<NodeId> {
        (self.is_live(r.id) && self.node(r.id).generation == r.generation).then_some(r.id)
    }

    #[must_use]
    pub fn node(&self, id: NodeId) -> &Node {
        &self.arena.nodes()[id.index()]
    }

    fn node_mut(&mut self, id: NodeId) -> &mut Node {
        self.mark_changed(id);
        &mut self.arena.nodes_mut()[id.index()]
    }

    #[must_use]
    pub fn kind(&self, id: NodeId) -> Kind {
        self.node(id).kind()
    }

    #[must_use]
    pub fn flags(&self, id: NodeId) -> u8 {
        self.node(id).flags
    }

    /// Sets or clears flag bits (those that do not change what is charged: `STALE`).
    pub fn set_flag(&mut self, id: NodeId, bit: u8, on: bool) {
        debug_assert_eq!(
            bit & flags::NOT_CHARGED,
            0,
            "charging flags go through add/remove"
        );
        let n = self.node_mut(id);
        if on {
            n.flags |= bit;
        } else {
            n.flags &= !bit;
        }
    }

    /// Is `id` a live node of this tree (in range and not freed)?
    #[must_use]
    pub fn is_live(&self, id: NodeId) -> bool {
        self.arena
            .nodes()
            .get(id.index())
            .is_some_and(|n| self.holds_entry(id.index(), n))
    }

    /// Does slot `i` (node `n`) hold an entry: not free, and in a preview one it copied?
    #[inline]
    fn holds_entry(&self, i: usize, n: &Node) -> bool {
        n.flags & flags::FREE == 0
            && self
                .copied
                .as_ref()
                .is_none_or(|c| c.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1))
    }

    /// Is this the first screen of a tree not yet validated (`Tree::preview`): the root and
    /// its listing only, the lists below cut? What is derived from its subtrees (the newest
    /// mtime below a directory) is not the tree's.
    #[must_use]
    pub fn is_preview(&self) -> bool {
        self.copied.is_some()
    }

    #[must_use]
    pub fn parent(&self, id: NodeId) -> Option<NodeId> {
        let p = NodeId(self.node(id).parent);
        (!p.is_none()).then_some(p)
    }

    /// The node's own name; the root's is its full path.
    #[must_use]
    pub fn name(&self, id: NodeId) -> &[u8] {
        if id == self.root() {
            let h = self.arena.header();
            let off = h.root_path_off as usize;
            return &self.arena.names()[off..off + h.root_path_len as usize];
        }
        let n = self.node(id);
        let off = n.name_off as usize;
        &self.arena.names()[off..off + n.name_len as usize]
    }

    #[must_use]
    pub fn dir_rec(&self, id: NodeId) -> Option<&DirRec> {
        let n = self.node(id);
        n.is_dir().then(|| &self.arena.dirs()[n.aux as usize])
    }

    /// A directory's record, for a change of its totals or child list only (see
    /// `totals_changed`).
    fn dir_rec_totals_mut(&mut self, id: NodeId) -> Option<&mut DirRec> {
        self.mark_totals_changed(id);
        let n = *self.node(id);
        n.is_dir()
            .then(|| &mut self.arena.dirs_mut()[n.aux as usize])
    }

    fn dir_rec_mut(&mut self, id: NodeId) -> Option<&mut DirRec> {
        self.mark_changed(id);
        let n = *self.node(id);
        n.is_dir()
            .then(|| &mut self.arena.dirs_mut()[n.aux as usize])
    }

    /// The children of a directory, in no particular order.
    #[must_use]
    pub fn children(&self, id: NodeId) -> Children<'_> {
        let next = self
            .dir_rec(id)
            .map_or(NodeId::NONE, |d| NodeId(d.first_child));
        Children { tree: self, next }
    }

    #[must_use]
    pub fn child_by_name(&self, dir: NodeId, name: &[u8]) -> Option<NodeId> {
        self.children(dir).find(|&c| self.name(c) == name)
    }

    /// The node at `path`, if `path` is inside the root (by components) and in the tree.
    #[must_use]
    pub fn lookup(&self, path: &Path) -> Option<NodeId> {
        let root_path = self.root_path();
        let mut id = self.root();
        for name in crate::path::relative_components(&root_path, path)? {
            id = self.child_by_name(id, name.as_bytes())?;
        }
        Some(id)
    }

    /// The absolute path of a node.
    #[must_use]
    pub fn path_of(&self, id: NodeId) -> PathBuf {
        let mut chain = Vec::new();
        let mut cur = id;
        while cur != self.root() && !cur.is_none() {
            chain.push(cur);
            cur = NodeId(self.node(cur).parent);
        }
        let mut path = self.root_path();
        for &c in chain.iter().rev() {
            path.push(OsStr::from_bytes(self.name(c)));
        }
        path
    }

    /// Depth below the root (the root is 0).
    #[must_use]
    pub fn depth(&self, id: NodeId) -> usize {
        let mut d = 0;
        let mut cur = NodeId(self.node(id).parent);
        while !cur.is_none() {
            d += 1;
            cur = NodeId(self.node(cur).parent);
        }
        d
    }

    /// Saves the tree to `path` (whole, atomically, marked clean at its generation).
    pub fn save(&self, path: &Path) -> Result<(), ArenaError> {
        self.arena.save(path)
    }

    /// The bytes the arena takes once saved (see `Arena::saved_len`).
    #[must_use]
    pub fn saved_len(&self) -> u64 {
        self.arena.saved_len()
    }
}

/// Iterator over a directory's children.
pub struct Children<'a> {
    tree: &'a Tree,
    next: NodeId,
}

impl Iterator for Children<'_> {
    type Item = NodeId;
    fn next(&mut self) -> Option<NodeId> {
        if self.next.is_none() {
            return None;
        }
        let id = self.next;
        self.next = NodeId(self.tree.node(id).next_sibling);
        Some(id)
    }
}

/// Read access to a shared tree; a panic elsewhere does not make the tree unreadable.
pub fn read(lock: &RwLock<Tree>) -> RwLockReadGuard<'_, Tree> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Moves a tree mapped from its saved file into anonymous memory with room to grow, copying
/// it under a read lock (readers go on) and swapping it in under the write lock if nothing
/// was written meanwhile. Without this, the first entry added (a live batch, or the catch-up)
/// makes that copy while holding the write lock. Says whether it moved; an error leaves the
/// tree as it was (the copy is then made when it grows, as before).
pub fn detach_from_file(lock: &RwLock<Tree>) -> bool {
    let Ok(Some((copy, writes))) = read(lock).arena.detached_copy() else {
        return false;
    };
    write(lock).arena.adopt(copy, writes)
}

/// Write access to a shared tree.
pub fn write(lock: &RwLock<Tree>) -> RwLockWriteGuard<'_, Tree> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
