//! The mmap state: every entry of the scanned tree as a fixed-size node in a memory-mapped
//! arena, names as raw bytes in a name heap, subtree totals kept exact by bubbling deltas up to
//! the root in O(depth), and hard links charged once per (device, inode).
//!
//! One writer at a time (scan, reconcile) holds `&mut Tree`, normally through a `RwLock`; readers
//! take the read lock only for what they look at.

pub mod arena;
mod idtable;
mod index;
mod inodes;
pub mod node;
pub use inodes::fingerprint;
mod rows;
mod validate;

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use arena::{Arena, ArenaError};
pub use node::{DirRec, Kind, Node, NodeId, Own, Rare, Time, Totals, dir_flags, flag_char, flags};
pub use rows::{Census, Changes, Row, RowChunk};

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

/// A change of what is charged to a directory's totals. Wide enough that no sum of real sizes
/// overflows it; totals themselves saturate at `u64::MAX` (see `Tree::apply`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delta {
    pub apparent: i128,
    pub disk: i128,
    pub items: i64,
}

impl Delta {
    fn is_zero(self) -> bool {
        self.apparent == 0 && self.disk == 0 && self.items == 0
    }

    pub fn add(&mut self, o: Delta) {
        self.apparent += o.apparent;
        self.disk += o.disk;
        self.items += o.items;
    }
}

impl std::ops::Neg for Delta {
    type Output = Delta;
    fn neg(self) -> Delta {
        Delta {
            apparent: -self.apparent,
            disk: -self.disk,
            items: -self.items,
        }
    }
}

type Charge = Delta;

/// Adds a signed change to a saturating total.
fn sat_add(total: u64, d: i128) -> u64 {
    (i128::from(total) + d).clamp(0, i128::from(u64::MAX)) as u64
}

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

/// Proof that `Tree::validate_arena` passed, for `Tree::from_validated`.
#[derive(Debug)]
pub struct Validated(());

pub struct Tree {
    arena: Arena,
    /// The charged member of each hard-link group, found by (device, inode); a group's
    /// members form a ring through their rare records. Built on first need (`ensure_links`):
    /// a tree loaded from the cache may never change a link.
    links: idtable::SparseIdTable,
    links_built: bool,
    /// A direct-mapped cache of recently stored names: repeated names (`index.js`,
    /// `__init__.py`, `.git/objects/00`) share their bytes in the heap, which is append-only,
    /// so sharing is safe. A slot holds the heap offset, the length and 24 more bits of the
    /// name's hash, so that the heap (out of the CPU's caches) is read only for a likely hit;
    /// a hit is still checked against the heap's bytes. Not persisted; it starts empty.
    name_cache: Vec<u64>,
    /// Ids of nodes changed since the last `take_changes`, once tracking is on.
    changes: Option<HashSet<u32>>,
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
}

/// Slots of the name cache (a power of two): on the benchmark tree 2^15 (256 KiB) keep 0.5
/// bytes of names per entry more than 2^13 did, and cost 0.4 more.
const NAME_CACHE_BITS: u32 = 15;

/// The hash of a hard-link group's key (device index, inode).
fn link_hash(key: (u32, u64)) -> u64 {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&key.0.to_le_bytes());
    b[4..].copy_from_slice(&key.1.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64(&b)
}

/// A cheap hash of a name: its first and last 8 bytes and its length (this runs for every entry
/// of a scan; a byte-by-byte hash cost 4% of a scan's CPU).
fn name_hash(name: &[u8]) -> u64 {
    let n = name.len();
    let k = n.min(8);
    let (mut head, mut tail) = ([0u8; 8], [0u8; 8]);
    head[..k].copy_from_slice(&name[..k]);
    tail[..k].copy_from_slice(&name[n - k..]);
    let x =
        u64::from_le_bytes(head) ^ u64::from_le_bytes(tail).rotate_left(29) ^ ((n as u64) << 56);
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15)
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
        let mut tree = Tree {
            arena,
            links: idtable::SparseIdTable::default(),
            links_built: true,
            name_cache: Vec::new(),
            changes: None,
            totals_changed: HashSet::new(),
            index: index::ChildIndex::default(),
            dead_names: 0,
            inodes: None,
        };
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
        Tree {
            arena,
            links: idtable::SparseIdTable::default(),
            links_built: false,
            name_cache: Vec::new(),
            changes: None,
            totals_changed: HashSet::new(),
            index: index::ChildIndex::default(),
            dead_names: 0,
            inodes: None,
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

    /// Rebuilds the hard-link groups from the nodes (only rare nodes can be links): each
    /// group's charged member in `links`, and the ring of its members through their records.
    fn rebuild_links(&mut self) {
        let linked: Vec<NodeId> = self
            .arena
            .nodes()
            .iter()
            .enumerate()
            .filter(|(_, n)| n.is_rare() && n.flags & flags::FREE == 0)
            .map(|(i, _)| NodeId(i as u32))
            .filter(|&id| self.link_key(id).is_some())
            .collect();
        let mut table = idtable::SparseIdTable::sparse_for(linked.len() / 2);
        let dup = |t: &Tree, n: NodeId| t.node(n).flags & flags::HARDLINK_DUP != 0;
        // One member of each group (to find its head once all are in), and the members
        // charged besides their group's head.
        let mut groups = Vec::new();
        let mut charged_twice = Vec::new();
        for id in linked {
            let Some(key) = self.link_key(id) else {
                continue;
            };
            let hash = link_hash(key);
            match table.find(hash, |s| self.link_key(NodeId(s)) == Some(key)) {
                None => {
                    self.set_ring_next(id, id);
                    table.insert(id.0, hash, |s| self.link_hash_of(s));
                    groups.push((id, key));
                }
                Some(head) => {
                    let head = NodeId(head);
                    let after = self.ring_next(head).unwrap_or(head);
                    self.set_ring_next(id, after);
                    self.set_ring_next(head, id);
                    match (dup(self, head), dup(self, id)) {
                        (true, false) => {
                            table.replace(head.0, id.0, hash);
                        }
                        (false, false) => charged_twice.push(id),
                        _ => {}
                    }
                }
            }
        }
        self.links = table;
        self.links_built = true;
        // A loaded tree holds exactly one charged member per group, unless its cache lied (a
        // forged flag or inode): one charged twice, or none, would stay so through every
        // catch-up, since each name on its own is unchanged. The head is the one charged.
        for id in charged_twice {
            self.node_mut(id).flags |= flags::HARDLINK_DUP;
            self.recharge(id, -1);
        }
        for (id, key) in groups {
            let head = self.group_head(key).unwrap_or(id);
            if dup(self, head) {
                self.node_mut(head).flags &= !flags::HARDLINK_DUP;
                self.recharge(head, 1);
            }
        }
    }

    /// Adds (`sign` 1) or takes away (-1) an entry's own sizes from its ancestors' totals: its
    /// charge began or ended, the entry itself unchanged.
    fn recharge(&mut self, id: NodeId, sign: i128) {
        let own = self.own(id);
        if let Some(p) = self.parent(id) {
            self.bubble(
                p,
                Charge {
                    apparent: sign * i128::from(own.apparent),
                    disk: sign * i128::from(own.disk),
                    items: 0,
                },
            );
        }
    }

    /// Builds the hard-link groups now, if this tree has not yet, rather than at their first
    /// use: a group a loaded cache left charged twice or not at all is charged once from
    /// here on (see `rebuild_links`), even if no member of it ever changes.
    pub fn build_links(&mut self) {
        self.ensure_links();
    }

    /// Builds the hard-link groups if this tree has not yet (see `links`).
    fn ensure_links(&mut self) {
        if !self.links_built {
            self.rebuild_links();
        }
    }

    fn link_hash_of(&self, id: u32) -> u64 {
        self.link_key(NodeId(id)).map_or(0, link_hash)
    }

    /// The charged member of the hard-link group with this key.
    fn group_head(&self, key: (u32, u64)) -> Option<NodeId> {
        self.links
            .find(link_hash(key), |s| self.link_key(NodeId(s)) == Some(key))
            .map(NodeId)
    }

    /// The next member of a hard link's ring (`None` for an entry without a record).
    fn ring_next(&self, id: NodeId) -> Option<NodeId> {
        let r = self.node(id).rare_index()?;
        let next = NodeId(self.arena.rares()[r as usize].link);
        self.is_live(next).then_some(next)
    }

    fn set_ring_next(&mut self, id: NodeId, next: NodeId) {
        if let Some(r) = self.node(id).rare_index() {
            self.arena.rares_mut()[r as usize].link = next.0;
        }
    }

    /// The members of `id`'s hard-link group, `id` first (only `id` for anything else).
    fn group_of(&self, id: NodeId) -> Vec<NodeId> {
        let mut out = vec![id];
        if self.link_key(id).is_none() {
            return out;
        }
        let mut cur = self.ring_next(id);
        while let Some(c) = cur.filter(|&c| c != id && out.len() <= self.len() as usize) {
            out.push(c);
            cur = self.ring_next(c);
        }
        out
    }

    /// Takes `id` out of its hard-link group; returns the member that is to carry the charge
    /// now, if `id` carried it and others remain.
    fn leave_group(&mut self, id: NodeId, key: (u32, u64)) -> Option<NodeId> {
        let head = self.group_head(key);
        let hash = link_hash(key);
        let next = self.ring_next(id).filter(|&n| n != id);
        let Some(next) = next else {
            if head == Some(id) {
                let mut table = std::mem::take(&mut self.links);
                table.remove(id.0, hash, |s| self.link_hash_of(s));
                self.links = table;
            }
            return None;
        };
        let mut prev = next;
        for _ in 0..self.len() {
            match self.ring_next(prev) {
                Some(p) if p == id => break,
                Some(p) => prev = p,
                None => break,
            }
        }
        self.set_ring_next(prev, next);
        self.set_ring_next(id, id);
        if head == Some(id) {
            self.links.replace(id.0, next.0, hash);
            return Some(next);
        }
        None
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

    /// Is `id` a live node of this tree (in range and not freed)?
    #[must_use]
    pub fn is_live(&self, id: NodeId) -> bool {
        self.arena
            .nodes()
            .get(id.index())
            .is_some_and(|n| n.flags & flags::FREE == 0)
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

    /// Sets a directory's subtree totals as they were recomputed from its entries (see
    /// `cache::recompute_totals`); recorded as a change. Nothing else moves: the caller
    /// recomputes every ancestor too.
    pub fn set_dir_totals(&mut self, dir: NodeId, apparent: u64, disk: u64, items: u32) {
        if let Some(rec) = self.dir_rec_totals_mut(dir) {
            rec.total_apparent = apparent;
            rec.total_disk = disk;
            rec.items = items;
        }
    }

    /// An entry's own attributes at full precision (a plain file has no inode number and
    /// whole seconds of mtime: see `Own::stored`).
    #[must_use]
    pub fn own(&self, id: NodeId) -> Own {
        let n = self.node(id);
        let rare = n.rare_index().map(|r| &self.arena.rares()[r as usize]);
        let error = n.flags & flags::READ_ERROR != 0;
        if n.is_dir() {
            let d = &self.arena.dirs()[n.aux as usize];
            let (apparent, disk) = rare.map_or(
                (u64::from(d.apparent), u64::from(n.disk_blocks) * 512),
                |r| (r.apparent, r.disk),
            );
            let mtime = rare.map_or(Time::from_ns(d.mtime_ns), |r| Time {
                sec: r.mtime,
                nsec: r.mtime_nsec,
            });
            return Own {
                apparent,
                disk,
                mtime,
                ino: Some(d.ino),
                nlink: 1,
                errno: if error { u32::from(d.errno) } else { 0 },
            };
        }
        match rare {
            Some(r) => Own {
                apparent: r.apparent,
                disk: r.disk,
                mtime: Time {
                    sec: r.mtime,
                    nsec: r.mtime_nsec,
                },
                ino: (r.ino != 0).then_some(r.ino),
                nlink: r.nlink,
                errno: if error { r.errno } else { 0 },
            },
            None => Own {
                apparent: u64::from(n.aux),
                disk: u64::from(n.disk_blocks) * 512,
                mtime: Time {
                    sec: i64::from(n.word),
                    nsec: 0,
                },
                ino: None,
                nlink: 1,
                errno: 0,
            },
        }
    }

    /// The inode number, where the tree keeps it (directories, hard links, rare entries).
    #[must_use]
    pub fn ino(&self, id: NodeId) -> Option<u64> {
        self.own(id).ino
    }

    /// The modification time (whole seconds for a plain file).
    #[must_use]
    pub fn mtime(&self, id: NodeId) -> Time {
        self.own(id).mtime
    }

    /// Writes an entry's own attributes: in the node's words when they fit, else in a `Rare`
    /// record, taken or given back as needed. A directory keeps its inode, times and errno in
    /// its `DirRec`; only sizes that do not fit make it rare.
    fn store_own(&mut self, id: NodeId, o: &Own) -> Result<(), TreeError> {
        let n = *self.node(id);
        let dir = n.is_dir();
        let rare = if dir {
            o.apparent > u64::from(u32::MAX)
                || !node::plain_disk(o.disk)
                || o.mtime.as_ns().is_none()
        } else {
            o.needs_rare()
        };
        let slot = match (n.rare_index(), rare) {
            (Some(r), true) => Some(r),
            (None, true) => Some(self.alloc_rare()?),
            (Some(r), false) => {
                self.free_rare(r);
                None
            }
            (None, false) => None,
        };
        if let Some(r) = slot {
            // A kept record keeps its place in a hard-link ring.
            let link = match n.rare_index() {
                Some(_) => self.arena.rares()[r as usize].link,
                None => r,
            };
            self.arena.rares_mut()[r as usize] = Rare {
                apparent: o.apparent,
                disk: o.disk,
                mtime: o.mtime.sec,
                ino: o.ino.unwrap_or(0),
                mtime_nsec: o.mtime.nsec,
                nlink: o.nlink,
                errno: o.errno,
                link,
            };
        }
        let node = self.node_mut(id);
        if rare {
            node.kind_bits |= node::RARE_BIT;
        } else {
            node.kind_bits &= !node::RARE_BIT;
        }
        if dir {
            node.disk_blocks = if rare { 0 } else { (o.disk / 512) as u32 };
            node.word = slot.unwrap_or(0);
            let aux = node.aux as usize;
            let d = &mut self.arena.dirs_mut()[aux];
            d.apparent = if rare { 0 } else { o.apparent as u32 };
            d.mtime_ns = if rare {
                0
            } else {
                o.mtime.as_ns().unwrap_or(0)
            };
            d.ino = o.ino.unwrap_or(0);
            d.errno = u16::try_from(o.errno).unwrap_or(u16::MAX);
        } else if let Some(r) = slot {
            node.aux = r;
            node.disk_blocks = 0;
            node.word = 0;
        } else {
            node.aux = o.apparent as u32;
            node.disk_blocks = (o.disk / 512) as u32;
            node.word = o.mtime.sec as u32;
        }
        Ok(())
    }

    fn alloc_rare(&mut self) -> Result<u32, TreeError> {
        let free = self.arena.header().free_rare;
        if free != u32::MAX {
            self.arena.header_mut().free_rare = self.arena.rares()[free as usize].link;
            return Ok(free);
        }
        self.arena.reserve_rares(1)?;
        Ok(self.arena.push_rares(1))
    }

    fn free_rare(&mut self, r: u32) {
        let head = self.arena.header().free_rare;
        self.arena.rares_mut()[r as usize] = Rare {
            link: head,
            ..bytemuck::Zeroable::zeroed()
        };
        self.arena.header_mut().free_rare = r;
    }

    /// The errno recorded for a failed read of this entry (0 if none).
    #[must_use]
    pub fn errno(&self, id: NodeId) -> u32 {
        if self.node(id).flags & flags::READ_ERROR == 0 {
            return 0;
        }
        self.own(id).errno
    }

    /// The link count of a non-directory (directories report 1).
    #[must_use]
    pub fn nlink(&self, id: NodeId) -> u32 {
        let n = self.node(id);
        if n.is_dir() || !n.is_rare() || n.flags & flags::READ_ERROR != 0 {
            1
        } else {
            self.own(id).nlink
        }
    }

    /// The raw `st_dev` of an entry (a non-directory's is its parent's).
    #[must_use]
    pub fn dev(&self, id: NodeId) -> Option<u64> {
        let idx = match self.dir_rec(id) {
            Some(d) => u32::from(d.dev),
            None => self.dev_index_of_parent(self.node(id)),
        };
        let h = self.arena.header();
        (idx < h.device_count).then(|| h.devices[idx as usize])
    }

    fn dev_index_of_parent(&self, n: &Node) -> u32 {
        if n.parent == u32::MAX {
            return u32::MAX;
        }
        self.dir_rec(NodeId(n.parent))
            .map_or(u32::MAX, |d| u32::from(d.dev))
    }

    /// Subtree totals of a directory, own sizes of anything else (items 0).
    #[must_use]
    pub fn totals(&self, id: NodeId) -> Totals {
        if let Some(d) = self.dir_rec(id) {
            return Totals {
                apparent: d.total_apparent,
                disk: d.total_disk,
                items: u64::from(d.items),
            };
        }
        let o = self.own(id);
        Totals {
            apparent: o.apparent,
            disk: o.disk,
            items: 0,
        }
    }

    /// What this entry adds to its parent's totals (0 bytes when excluded, on another
    /// filesystem, or a hard link already counted; always one item).
    fn charge(&self, id: NodeId) -> Charge {
        let n = self.node(id);
        if n.flags & flags::NOT_CHARGED != 0 {
            return Charge {
                items: 1,
                ..Charge::default()
            };
        }
        let t = self.totals(id);
        Charge {
            apparent: i128::from(t.apparent),
            disk: i128::from(t.disk),
            items: t.items as i64 + 1,
        }
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

    /// A slot for a new node, and the generation it must keep. A fresh slot is zeroed
    /// (generation 0) and not read here: its page's first touch must be the write, since a
    /// read first maps the shared zero page and the write after it then costs a TLB flush on
    /// every CPU the scan runs on (1.9 % of a scan's time, measured).
    fn alloc_node(&mut self) -> (NodeId, u8) {
        let free = self.arena.header().free_node;
        let slot = if free == u32::MAX {
            (NodeId(self.arena.push_nodes(1)), 0)
        } else {
            let n = *self.node(NodeId(free));
            self.arena.header_mut().free_node = n.next_sibling;
            (NodeId(free), n.generation)
        };
        self.arena.header_mut().live_nodes += 1;
        slot
    }

    fn alloc_dir(&mut self) -> u32 {
        let free = self.arena.header().free_dir;
        if free == u32::MAX {
            self.arena.push_dirs(1)
        } else {
            self.arena.header_mut().free_dir = self.arena.dirs()[free as usize].first_child;
            free
        }
    }

    fn intern_dev(&mut self, dev: u64) -> u8 {
        const _: () = assert!(arena::MAX_DEVICES <= node::NO_DEV as usize);
        let h = self.arena.header_mut();
        let n = h.device_count as usize;
        if let Some(i) = h.devices[..n].iter().position(|&d| d == dev) {
            return i as u8;
        }
        if n == arena::MAX_DEVICES {
            return node::NO_DEV;
        }
        h.devices[n] = dev;
        h.device_count += 1;
        n as u8
    }

    /// Fills a freshly allocated slot (not linked anywhere yet).
    fn write_node(
        &mut self,
        id: NodeId,
        generation: u8,
        parent: NodeId,
        name_off: u32,
        name_len: u8,
        e: &EntryInfo,
    ) -> Result<(), TreeError> {
        let aux = if e.kind == Kind::Dir {
            let dev = self.intern_dev(e.dev);
            let d = self.alloc_dir();
            self.arena.dirs_mut()[d as usize] = DirRec {
                first_child: u32::MAX,
                items: 0,
                total_apparent: e.apparent,
                total_disk: e.disk,
                dev,
                ..bytemuck::Zeroable::zeroed()
            };
            d
        } else {
            0
        };
        *self.node_mut(id) = Node {
            parent: parent.0,
            next_sibling: u32::MAX,
            aux,
            name_off,
            name_len,
            kind_bits: e.kind as u8,
            flags: e.flags & !flags::FREE,
            generation,
            disk_blocks: 0,
            word: 0,
        };
        self.note_inode(id, e);
        self.store_own(id, &e.own())
    }

    /// Starts keeping each entry's inode fingerprint (a watched tree: see `inodes`). Entries
    /// already in the tree are unknown until stat'ed again (a catch-up stats them all).
    pub fn track_inodes(&mut self) {
        if self.inodes.is_none() {
            let slots = self.arena.header().node_count as usize;
            self.inodes = Some(inodes::Fingerprints::with_slots(slots));
        }
    }

    /// Records the inode a stat says an entry is (when fingerprints are kept).
    fn note_inode(&mut self, id: NodeId, e: &EntryInfo) {
        if let Some(f) = self.inodes.as_mut() {
            let known = e.flags & flags::READ_ERROR == 0 && e.ino != 0;
            f.set(id, if known { fingerprint(e.dev, e.ino) } else { 0 });
        }
    }

    /// The fingerprint of the inode entry `id` was when last stat'ed (see `inodes`), if the
    /// tree keeps them and has stat'ed it since.
    #[must_use]
    pub fn fingerprint(&self, id: NodeId) -> Option<u32> {
        self.inodes.as_ref()?.get(id)
    }

    /// Live non-directories that may be a name of one of these inodes (`dev`, `ino`): those
    /// whose fingerprint matches, and those without one. One pass
    /// over the fingerprints (4 bytes a slot); only these nodes are read.
    #[must_use]
    pub fn inode_candidates(&self, keys: &[(u64, u64)]) -> Vec<NodeId> {
        let slots = self.arena.header().node_count as usize;
        let plain = |id: NodeId| {
            let n = self.node(id);
            n.flags & (flags::FREE | flags::READ_ERROR) == 0 && !n.is_dir()
        };
        let Some(f) = self.inodes.as_ref() else {
            return (0..slots as u32)
                .map(NodeId)
                .filter(|&id| plain(id))
                .collect();
        };
        let mut wanted: Vec<u32> = keys.iter().map(|&(d, i)| fingerprint(d, i)).collect();
        wanted.sort_unstable();
        wanted.dedup();
        f.candidates(&wanted, slots)
            .filter(|&id| plain(id))
            .collect()
    }

    /// Adds children to a directory in one step (one bubble-up for the batch). `on_dir` is
    /// called with the id of each new directory and its index in `entries`.
    pub fn add_children(
        &mut self,
        parent: NodeId,
        entries: &[NewEntry],
        names: &[u8],
        on_dir: impl FnMut(NodeId, usize),
    ) -> Result<(), TreeError> {
        let sum = self.add_children_local(parent, entries, names, on_dir)?;
        if let Some(grand) = self.charged_parent(parent) {
            self.bubble(grand, sum);
        }
        Ok(())
    }

    /// The parent to which `dir`'s totals are charged (`None` for the root, or when `dir` is
    /// excluded, on another filesystem or otherwise not charged).
    fn charged_parent(&self, dir: NodeId) -> Option<NodeId> {
        if self.node(dir).flags & flags::NOT_CHARGED != 0 {
            return None;
        }
        self.parent(dir)
    }

    /// Adds children to a directory, applying their charge to that directory's own totals
    /// only, and returns the change its ancestors still owe (see `bubble_from`). A scan of a
    /// deep chain uses this to stay linear: it hands the change up one level when a
    /// directory's subtree is complete, instead of walking every ancestor per directory.
    pub fn add_children_local(
        &mut self,
        parent: NodeId,
        entries: &[NewEntry],
        names: &[u8],
        mut on_dir: impl FnMut(NodeId, usize),
    ) -> Result<Delta, TreeError> {
        // The groups first, from the nodes as they are: the new ones join them below.
        self.ensure_links();
        let n_dirs = entries.iter().filter(|e| e.info.kind == Kind::Dir).count();
        let name_bytes: u64 = entries.iter().map(|e| u64::from(e.name_len)).sum();
        self.arena
            .reserve(entries.len() as u64, n_dirs as u64, name_bytes)?;
        let n_rare = entries.iter().filter(|e| e.info.own().needs_rare()).count();
        self.arena.reserve_rares(n_rare as u64)?;
        let mut sum = Charge::default();
        let mut error = false;
        for (i, e) in entries.iter().enumerate() {
            let start = e.name_start as usize;
            let name = &names[start..start + e.name_len as usize];
            let name_off = self.store_name(name);
            let (id, generation) = self.alloc_node();
            self.write_node(id, generation, parent, name_off, e.name_len, &e.info)?;
            self.link_child(parent, id);
            if self.link_key(id).is_some() {
                self.join_link_group(id)?;
            }
            let c = self.charge(id);
            sum.apparent += c.apparent;
            sum.disk += c.disk;
            sum.items += c.items;
            error |= e.info.flags & (flags::READ_ERROR | flags::ERROR_BELOW) != 0;
            if e.info.kind == Kind::Dir {
                on_dir(id, i);
            }
        }
        let owed = self.apply(parent, sum);
        if error {
            self.mark_error_below(parent);
        }
        Ok(owed)
    }

    /// Applies a change to `dir`'s own totals and returns what its charged parent owes.
    pub fn apply_local(&mut self, dir: NodeId, d: Delta) -> Delta {
        let owed = self.apply(dir, d);
        if self.node(dir).flags & flags::NOT_CHARGED != 0 {
            return Delta::default();
        }
        owed
    }

    /// Adds a change that `dir`'s subtree owes to its ancestors: `dir`'s own totals already
    /// hold it; every charged ancestor gets it. O(depth).
    pub fn bubble_from(&mut self, dir: NodeId, d: Delta) {
        if let Some(p) = self.charged_parent(dir) {
            self.bubble(p, d);
        }
    }

    /// Adds one child; returns its id.
    pub fn add_child(
        &mut self,
        parent: NodeId,
        name: &[u8],
        info: &EntryInfo,
    ) -> Result<NodeId, TreeError> {
        let len = u8::try_from(name.len())
            .map_err(|_| TreeError::NameTooLong(crate::path::display_name(name)))?;
        let entry = NewEntry {
            name_start: 0,
            name_len: len,
            info: *info,
        };
        let mut id = NodeId::NONE;
        self.add_children(parent, &[entry], name, |_, _| {})?;
        if let Some(first) = self.dir_rec(parent).map(|d| NodeId(d.first_child)) {
            id = first;
        }
        Ok(id)
    }

    /// Stores a name in the heap, or reuses identical bytes stored recently.
    fn store_name(&mut self, name: &[u8]) -> u32 {
        if self.name_cache.is_empty() {
            self.name_cache = vec![0; 1 << NAME_CACHE_BITS];
        }
        let h = name_hash(name);
        let slot = (h >> (64 - NAME_CACHE_BITS)) as usize;
        // Offset in the low 32 bits, then the length, then 24 bits of the hash (an empty
        // name, length 0, never hits).
        let key = ((name.len() as u64) << 32) | (((h >> 16) & 0xff_ffff) << 40);
        let cached = self.name_cache[slot];
        if !name.is_empty() && cached & !0xffff_ffff == key {
            let off = (cached & 0xffff_ffff) as usize;
            if self.arena.names().get(off..off + name.len()) == Some(name) {
                return off as u32;
            }
        }
        let off = self.arena.push_name(name) as u32;
        self.name_cache[slot] = key | u64::from(off);
        off
    }

    fn link_child(&mut self, parent: NodeId, id: NodeId) {
        let d = self
            .dir_rec_totals_mut(parent)
            .expect("children are only added to directories");
        let old = d.first_child;
        d.first_child = id.0;
        self.node_mut(id).next_sibling = old;
        self.index_linked(parent, id);
    }

    /// Adds a linked entry to its group; the first member carries the charge. A newcomer's
    /// stat is the newest word on the inode's sizes, so the group takes them.
    fn join_link_group(&mut self, id: NodeId) -> Result<(), TreeError> {
        let Some(key) = self.link_key(id) else {
            return Ok(());
        };
        match self.group_head(key) {
            None => {
                self.set_ring_next(id, id);
                let mut table = std::mem::take(&mut self.links);
                table.insert(id.0, link_hash(key), |s| self.link_hash_of(s));
                self.links = table;
            }
            Some(charged) => {
                let after = self.ring_next(charged).unwrap_or(charged);
                self.set_ring_next(id, after);
                self.set_ring_next(charged, id);
                self.node_mut(id).flags |= flags::HARDLINK_DUP;
                let (c, n) = (self.own(charged), self.own(id));
                if (c.apparent, c.disk) != (n.apparent, n.disk) {
                    self.set_own(charged, n.apparent, n.disk, n.mtime)?;
                }
            }
        }
        Ok(())
    }

    /// The listing state of a directory: the ctime its listing was read at and whether that
    /// listing can be trusted while (ctime, mtime) stay the same.
    #[must_use]
    pub fn listing_stamp(&self, dir: NodeId) -> Option<(Time, bool)> {
        self.dir_rec(dir).map(|d| {
            if d.ctime_ns == node::NO_CTIME {
                return (Time::default(), false);
            }
            (
                Time::from_ns(d.ctime_ns),
                d.dflags & dir_flags::LISTING_TRUSTED != 0,
            )
        })
    }

    /// Records that a directory's listing was read while its ctime was `ctime`; `trusted`
    /// when that was more than a clock tick after the change (see `dir_flags`).
    pub fn set_listing_stamp(&mut self, dir: NodeId, ctime: Time, trusted: bool) {
        if let Some(d) = self.dir_rec_mut(dir) {
            // A ctime that does not fit is never a proof: the listing is read again.
            let ns = ctime.as_ns();
            d.ctime_ns = ns.unwrap_or(node::NO_CTIME);
            if trusted && ns.is_some() {
                d.dflags |= dir_flags::LISTING_TRUSTED;
            } else {
                d.dflags &= !dir_flags::LISTING_TRUSTED;
            }
        }
    }

    /// Adds a delta to the totals of `dir` and of every ancestor: O(depth).
    fn bubble(&mut self, dir: NodeId, c: Charge) {
        let mut c = c;
        let mut cur = dir;
        while !cur.is_none() && !c.is_zero() {
            let n = *self.node(cur);
            // What the parent sees is what this directory's totals actually moved by (they
            // saturate).
            c = self.apply(cur, c);
            if n.flags & flags::NOT_CHARGED != 0 {
                // An excluded or other-filesystem directory charges nothing upwards, but its own
                // totals still change.
                return;
            }
            cur = NodeId(n.parent);
        }
    }

    /// Adds a change to one directory's totals; returns how much they actually moved. Totals
    /// saturate at `u64::MAX` (three 8 EiB sparse files); a decrease of a saturated total is
    /// recomputed from the children, so totals never wrap and stay the saturated sum of what
    /// is stored below.
    fn apply(&mut self, dir: NodeId, c: Charge) -> Delta {
        let old = *self.dir_rec(dir).expect("bubble-up walks directories");
        let (mut apparent, mut disk) = (
            sat_add(old.total_apparent, c.apparent),
            sat_add(old.total_disk, c.disk),
        );
        let saturated = |v: u64, d: i128| v == u64::MAX && d < 0;
        if saturated(old.total_apparent, c.apparent) || saturated(old.total_disk, c.disk) {
            let (a, k) = self.sum_children(dir);
            apparent = a;
            disk = k;
        }
        let items = (i64::from(old.items) + c.items).clamp(0, i64::from(u32::MAX)) as u32;
        let d = self
            .dir_rec_totals_mut(dir)
            .expect("bubble-up walks directories");
        d.total_apparent = apparent;
        d.total_disk = disk;
        d.items = items;
        Delta {
            apparent: i128::from(apparent) - i128::from(old.total_apparent),
            disk: i128::from(disk) - i128::from(old.total_disk),
            items: i64::from(items) - i64::from(old.items),
        }
    }

    /// A directory's own sizes plus the charges of its children, saturated.
    fn sum_children(&self, dir: NodeId) -> (u64, u64) {
        let n = self.own(dir);
        let (mut a, mut d) = (i128::from(n.apparent), i128::from(n.disk));
        for c in self.children(dir) {
            let ch = self.charge(c);
            a += ch.apparent;
            d += ch.disk;
        }
        (sat_add(0, a), sat_add(0, d))
    }

    fn mark_error_below(&mut self, from: NodeId) {
        let mut cur = from;
        while !cur.is_none() {
            let n = self.node_mut(cur);
            if n.flags & flags::ERROR_BELOW != 0 {
                return;
            }
            n.flags |= flags::ERROR_BELOW;
            cur = NodeId(n.parent);
        }
    }

    /// Records that a directory could not be opened or listed.
    pub fn set_read_error(&mut self, dir: NodeId, errno: u32) {
        self.node_mut(dir).flags |= flags::READ_ERROR;
        self.set_errno(dir, errno);
        if let Some(p) = self.parent(dir) {
            self.mark_error_below(p);
        }
    }

    fn set_errno(&mut self, id: NodeId, errno: u32) {
        if let Some(d) = self.dir_rec_mut(id) {
            d.errno = u16::try_from(errno).unwrap_or(u16::MAX);
        } else {
            let mut o = self.own(id);
            o.errno = errno;
            // Only directories are reported unreadable after they were added; should the
            // rare records fail to grow, the flag stays without its errno.
            let _ = self.store_own(id, &o);
        }
    }

    /// Clears the flags the scanner sets on a directory before it (re-)reads it.
    pub fn clear_read_error(&mut self, dir: NodeId) {
        if self.node(dir).flags & flags::READ_ERROR == 0 {
            return;
        }
        self.set_errno(dir, 0);
        self.node_mut(dir).flags &= !flags::READ_ERROR;
        if let Some(p) = self.parent(dir) {
            self.recompute_error_below(p);
        }
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

    /// Updates an entry from a fresh stat when it is still the same kind of thing (same kind,
    /// inode where the tree knows it, a directory's device, hard-link status and scan flags): sizes, mtime and link
    /// count, with the size difference bubbled up. Returns false, changing nothing, when the
    /// entry must be replaced instead (removed and added again).
    ///
    /// A plain file's inode is not kept (see `Own::stored`): one replaced by another file of
    /// the same kind and link status is updated in place, which leaves the tree as a
    /// replacement would (same name, the new sizes and mtime).
    pub fn update_in_place(&mut self, id: NodeId, e: &EntryInfo) -> Result<bool, TreeError> {
        let n = *self.node(id);
        let dir = n.is_dir();
        let cur = self.own(id);
        let want = if dir { e.own() } else { e.own().stored() };
        let linked =
            |dir: bool, fl: u8, nlink: u32| !dir && fl & flags::READ_ERROR == 0 && nlink > 1;
        // A directory's read error is cleared or set by whoever re-reads it; any other change
        // of the scan's verdict (excluded, other filesystem, unreadable file) replaces it.
        let diff = n.flags ^ e.flags;
        let flags_ok = diff & (flags::EXCLUDED | flags::OTHER_FS) == 0
            && (dir || diff & flags::READ_ERROR == 0);
        let same_ino = match (cur.ino, want.ino) {
            (Some(a), Some(b)) => a == b,
            // A hard link whose inode was not known (an import, a damaged record) must join
            // its group, charged once: added again, not updated in place.
            (None, Some(_)) => !linked(dir, e.flags, e.nlink),
            _ => true,
        };
        // A directory on another device is another directory, whatever its inode: a
        // filesystem mounted over it, or unmounted from it. Its device, own sizes and
        // everything below are those of the other filesystem, so it is replaced (and its
        // subtree read again), never updated in place. (A non-directory's device is its
        // parent's, so only a directory can tell.)
        let same_dev = !dir || self.dev(id).is_none_or(|d| d == e.dev);
        let compatible = n.kind() == e.kind
            && same_ino
            && same_dev
            && linked(dir, n.flags, cur.nlink) == linked(e.kind == Kind::Dir, e.flags, e.nlink)
            && flags_ok;
        if !compatible {
            return Ok(false);
        }
        self.note_inode(id, e);
        let same = cur.apparent == want.apparent
            && cur.disk == want.disk
            && cur.mtime == want.mtime
            && (dir || (cur.nlink, cur.errno, cur.ino) == (want.nlink, want.errno, want.ino));
        if same {
            return Ok(true); // nothing to write, nothing to persist
        }
        // The sizes first: whether the entry needs a rare record is decided on the new ones,
        // so that a plain file that grows past 4 GiB (or gets a time before 1970) keeps the
        // inode it now has room for.
        self.set_own(id, e.apparent, e.disk, want.mtime)?;
        if !dir {
            let o = Own {
                nlink: want.nlink,
                errno: want.errno,
                ino: want.ino.or(cur.ino),
                ..self.own(id)
            };
            self.store_own(id, &o)?;
        }
        Ok(true)
    }

    /// Replaces the own sizes and mtime of an entry and bubbles the difference. A hard link
    /// is one inode seen through several names: every member of its group takes the new
    /// sizes, and the group's one charge moves by the difference, whichever name was stat'ed.
    pub fn set_own(
        &mut self,
        id: NodeId,
        apparent: u64,
        disk: u64,
        mtime: Time,
    ) -> Result<(), TreeError> {
        self.ensure_links();
        for m in self.group_of(id) {
            if !self.is_live(m) {
                continue;
            }
            let old = self.own(m);
            let flags = self.node(m).flags;
            let dir = self.node(m).is_dir();
            self.store_own(
                m,
                &Own {
                    apparent,
                    disk,
                    mtime,
                    ..old
                },
            )?;
            let delta = Delta {
                apparent: i128::from(apparent) - i128::from(old.apparent),
                disk: i128::from(disk) - i128::from(old.disk),
                items: 0,
            };
            let delta = if dir { self.apply(m, delta) } else { delta };
            if flags & flags::NOT_CHARGED == 0
                && let Some(p) = self.parent(m)
            {
                self.bubble(p, delta);
            }
        }
        Ok(())
    }

    /// The hard-link group key of a linked non-directory (only a rare node can be one: it
    /// keeps the inode and the link count).
    fn link_key(&self, id: NodeId) -> Option<(u32, u64)> {
        let n = self.node(id);
        if n.is_dir() || !n.is_rare() || n.flags & flags::READ_ERROR != 0 {
            return None;
        }
        let o = self.own(id);
        (o.nlink > 1).then(|| (self.dev_index_of_parent(n), o.ino.unwrap_or(0)))
    }

    /// Moves an entry, with its subtree, under `new_parent` as `new_name` (a rename): ids,
    /// totals and link groups are kept; the old parent's ancestors lose its charge and the new
    /// one's gain it, O(depth). Refused (false) if that would put a directory inside itself.
    pub fn move_node(
        &mut self,
        id: NodeId,
        new_parent: NodeId,
        new_name: &[u8],
    ) -> Result<bool, TreeError> {
        let Some(old_parent) = self.parent(id) else {
            return Ok(false);
        };
        if self.dir_rec(new_parent).is_none() {
            return Ok(false);
        }
        let mut cur = Some(new_parent);
        while let Some(c) = cur {
            if c == id {
                return Ok(false);
            }
            cur = self.parent(c);
        }
        let len = u8::try_from(new_name.len())
            .map_err(|_| TreeError::NameTooLong(crate::path::display_name(new_name)))?;
        self.arena.reserve(0, 0, u64::from(len))?;
        let c = self.charge(id);
        let errors = self.node(id).flags & (flags::READ_ERROR | flags::ERROR_BELOW) != 0;
        self.unlink_child(old_parent, id);
        self.bubble(old_parent, -c);
        let off = self.store_name(new_name);
        self.dead_names += u64::from(self.node(id).name_len);
        let n = self.node_mut(id);
        n.name_off = off;
        n.name_len = len;
        n.parent = new_parent.0;
        self.link_child(new_parent, id);
        self.bubble(new_parent, c);
        if errors {
            self.recompute_error_below(old_parent);
            self.mark_error_below(new_parent);
        }
        Ok(true)
    }

    /// Removes several children of one directory: one pass over its sibling list instead of
    /// one per child (a directory losing most of 1,000,000 entries stays linear).
    pub fn remove_children(&mut self, parent: NodeId, ids: &[NodeId]) {
        if ids.len() < 8 {
            for &id in ids {
                self.remove(id);
            }
            return;
        }
        let mut doomed = std::collections::HashSet::with_capacity(ids.len());
        for &id in ids {
            if self.is_live(id) && self.node(id).parent == parent.0 {
                doomed.insert(id.0);
            }
        }
        // Relink the survivors, then detach each doomed child (now first in the list, so its
        // unlink is O(1)) and remove it.
        let kids: Vec<NodeId> = self.children(parent).collect();
        let mut head = u32::MAX;
        for &k in kids.iter().rev() {
            if !doomed.contains(&k.0) {
                self.node_mut(k).next_sibling = head;
                head = k.0;
            }
        }
        for &k in kids.iter().rev() {
            if doomed.contains(&k.0) {
                self.node_mut(k).next_sibling = head;
                head = k.0;
            }
        }
        if let Some(d) = self.dir_rec_totals_mut(parent) {
            d.first_child = head;
        }
        for &k in &kids {
            if doomed.contains(&k.0) {
                self.remove(k);
            }
        }
    }

    /// Removes an entry and everything below it; the totals of its ancestors drop by what it was
    /// charged, and a hard-link group that loses its charged member charges a remaining one.
    pub fn remove(&mut self, id: NodeId) {
        self.ensure_links();
        let Some(parent) = self.parent(id) else {
            return; // the root stays
        };
        let c = self.charge(id);
        self.unlink_child(parent, id);
        self.bubble(parent, -c);
        // Walk the subtree iteratively (deep trees must not overflow the stack), leaving hard-link
        // groups while every parent is still live (a link's key holds its parent's device),
        // then free it all.
        let mut had_error = false;
        let mut recharge = Vec::new();
        let mut doomed = Vec::new();
        let mut stack = vec![id];
        while let Some(cur) = stack.pop() {
            stack.extend(self.children(cur));
            doomed.push(cur);
            let n = *self.node(cur);
            had_error |= n.flags & (flags::READ_ERROR | flags::ERROR_BELOW) != 0;
            if let Some(key) = self.link_key(cur)
                && let Some(next) = self.leave_group(cur, key)
            {
                recharge.push(next);
            }
        }
        for cur in doomed {
            self.free_node(cur);
        }
        // Each group that lost its charged member charges the next (one that goes too is
        // skipped here, and its own successor was pushed after it).
        for next in recharge {
            if self.is_live(next) && self.node(next).flags & flags::HARDLINK_DUP != 0 {
                self.node_mut(next).flags &= !flags::HARDLINK_DUP;
                let n = self.own(next);
                if let Some(p) = self.parent(next) {
                    self.bubble(
                        p,
                        Charge {
                            apparent: i128::from(n.apparent),
                            disk: i128::from(n.disk),
                            items: 0,
                        },
                    );
                }
            }
        }
        if had_error {
            self.recompute_error_below(parent);
        }
    }

    fn unlink_child(&mut self, parent: NodeId, id: NodeId) {
        self.index_unlinked(parent, id);
        let next = self.node(id).next_sibling;
        let first = self.dir_rec(parent).map_or(u32::MAX, |d| d.first_child);
        if first == id.0 {
            if let Some(d) = self.dir_rec_totals_mut(parent) {
                d.first_child = next;
            }
            return;
        }
        let mut prev = NodeId(first);
        while !prev.is_none() {
            let n = self.node(prev).next_sibling;
            if n == id.0 {
                self.node_mut(prev).next_sibling = next;
                return;
            }
            prev = NodeId(n);
        }
    }

    fn free_node(&mut self, id: NodeId) {
        let n = *self.node(id);
        if let Some(f) = self.inodes.as_mut()
            && f.get(id).is_some()
        {
            f.set(id, 0);
        }
        self.dead_names += u64::from(n.name_len);
        if let Some(r) = n.rare_index() {
            self.free_rare(r);
        }
        if n.is_dir() {
            self.index_dropped(id);
            self.free_dir_rec(n.aux);
        }
        let head = self.arena.header().free_node;
        let slot = self.node_mut(id);
        *slot = Node {
            next_sibling: head,
            flags: flags::FREE,
            generation: n.generation.wrapping_add(1),
            parent: u32::MAX,
            ..bytemuck::Zeroable::zeroed()
        };
        let h = self.arena.header_mut();
        h.free_node = id.0;
        h.live_nodes -= 1;
    }

    /// Puts a directory record on the free list (zeroed, so nothing stale is read from it).
    fn free_dir_rec(&mut self, rec: u32) {
        let head = self.arena.header().free_dir;
        self.arena.dirs_mut()[rec as usize] = DirRec {
            first_child: head,
            dev: node::NO_DEV,
            ..bytemuck::Zeroable::zeroed()
        };
        self.arena.header_mut().free_dir = rec;
    }

    fn recompute_error_below(&mut self, from: NodeId) {
        let mut cur = from;
        while !cur.is_none() {
            let below = self
                .children(cur)
                .any(|c| self.flags(c) & (flags::READ_ERROR | flags::ERROR_BELOW) != 0);
            let n = self.node_mut(cur);
            let had = n.flags & flags::ERROR_BELOW != 0;
            if had == below {
                return;
            }
            if below {
                n.flags |= flags::ERROR_BELOW;
            } else {
                n.flags &= !flags::ERROR_BELOW;
            }
            cur = NodeId(n.parent);
        }
    }

    /// Reclaims the names of freed and renamed nodes once they are at least a MiB and half
    /// the heap (so a long-running watch that creates and deletes files stays flat): the live
    /// names are copied into a fresh heap, shared again, and every offset rewritten. O(n),
    /// amortised O(1) per freed name. Returns whether it compacted.
    pub fn maybe_compact_names(&mut self) -> bool {
        let len = self.arena.header().names_len;
        if self.dead_names < (1 << 20) || self.dead_names * 2 < len {
            return false;
        }
        self.compact_names();
        true
    }

    fn compact_names(&mut self) {
        let old = self.arena.names().to_vec();
        let mut heap = Vec::with_capacity(old.len() / 2);
        let mut seen: HashMap<&[u8], u32> = HashMap::new();
        let h = *self.arena.header();
        let root_path = &old[h.root_path_off as usize..][..h.root_path_len as usize];
        heap.extend_from_slice(root_path);
        let root = h.root as usize;
        let mut offsets = Vec::with_capacity(self.arena.nodes().len());
        for (i, n) in self.arena.nodes().iter().enumerate() {
            if n.flags & flags::FREE != 0 || i == root {
                offsets.push(n.name_off);
                continue;
            }
            let name = &old[n.name_off as usize..][..n.name_len as usize];
            let off = *seen.entry(name).or_insert_with(|| {
                let at = heap.len() as u32;
                heap.extend_from_slice(name);
                at
            });
            offsets.push(off);
        }
        self.arena.replace_names(&heap);
        self.arena.header_mut().root_path_off = 0;
        for (n, off) in self.arena.nodes_mut().iter_mut().zip(offsets) {
            n.name_off = off;
        }
        self.name_cache.clear();
        self.dead_names = 0;
    }

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
            name_cache: (self.name_cache.capacity() * 8) as u64,
            links: links as u64,
            inodes: self.inodes.as_ref().map_or(0, |f| f.bytes() as u64),
        }
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
