//! The tree as rows, for the store: one `Row` per live node (what the `entries` table holds),
//! the set of nodes changed since the last batch, and the rebuild of an arena from rows (same
//! node ids, so the store and the arena stay aligned).

use std::collections::HashSet;
use std::path::Path;

use super::{Arena, DirRec, Kind, Node, NodeId, Own, Time, Tree, TreeError, flags};

/// One node as a table row. The name is separate (`Tree::name`) so copying rows out needs no
/// allocation per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub id: u32,
    /// `u32::MAX` for the root.
    pub parent: u32,
    pub kind: u8,
    pub flags: u8,
    /// 0 when the tree does not keep it (a plain file: see `Own::stored`).
    pub ino: u64,
    /// Raw `st_dev` of a directory (0 for other kinds, which live on their parent's).
    pub dev: u64,
    /// Link count of a non-directory, errno of an unreadable entry.
    pub aux: u32,
    pub mtime: i64,
    pub mtime_nsec: u32,
    /// A directory's listing stamp (`DirRec::ctime`, `ctime_nsec`, `dflags`); 0 otherwise.
    pub ctime: i64,
    pub ctime_nsec: u32,
    pub dflags: u8,
    pub apparent: u64,
    pub disk: u64,
    pub total_apparent: u64,
    pub total_disk: u64,
    pub items: u32,
    pub errno: u32,
}

/// Rows with their names packed in one buffer (no allocation per row).
/// What `Tree::census` counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Census {
    pub dirs: u64,
    /// Entries marked `!` (the entry, or a directory's listing, could not be read).
    pub unreadable: u64,
}

#[derive(Debug, Default, Clone)]
pub struct RowChunk {
    pub rows: Vec<Row>,
    names: Vec<u8>,
    ends: Vec<u32>,
}

impl RowChunk {
    #[must_use]
    pub fn with_capacity(n: usize) -> RowChunk {
        RowChunk {
            rows: Vec::with_capacity(n),
            names: Vec::with_capacity(n * 16),
            ends: Vec::with_capacity(n),
        }
    }

    pub fn push(&mut self, row: Row, name: &[u8]) {
        self.rows.push(row);
        self.names.extend_from_slice(name);
        self.ends.push(self.names.len() as u32);
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    #[must_use]
    pub fn name(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.names[start..self.ends[i] as usize]
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Row, &[u8])> {
        self.rows.iter().enumerate().map(|(i, r)| (r, self.name(i)))
    }
}

/// What changed since the last `take_changes`: rows to write and ids to delete.
#[derive(Debug, Default)]
pub struct Changes {
    pub upserts: RowChunk,
    pub deletes: Vec<u32>,
    /// Live directories whose totals (or child list) alone changed: not written (totals are
    /// recomputed when the tree is rebuilt from the rows), but touched.
    pub totals: Vec<u32>,
    /// The tree's generation after these changes.
    pub generation: u64,
    /// Live entries in the tree after these changes.
    pub entries: u64,
}

impl Changes {
    /// Nothing to write (totals alone are not written).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty()
    }

    /// Every node these changes touched: written, totals moved, or freed.
    pub fn touched(&self) -> impl Iterator<Item = u32> + '_ {
        self.upserts
            .rows
            .iter()
            .map(|r| r.id)
            .chain(self.totals.iter().copied())
            .chain(self.deletes.iter().copied())
    }
}

impl Tree {
    /// The row of a live node.
    #[must_use]
    pub fn row(&self, id: NodeId) -> Row {
        let n = self.node(id);
        let d = self.dir_rec(id).copied();
        let o = self.own(id);
        let error = n.flags & flags::READ_ERROR != 0;
        Row {
            id: id.0,
            parent: n.parent,
            kind: n.kind() as u8,
            flags: n.flags,
            ino: o.ino.unwrap_or(0),
            dev: if d.is_some() {
                self.dev(id).unwrap_or(0)
            } else {
                0
            },
            aux: match (d.is_some(), error) {
                (true, _) => 0,
                (false, true) => o.errno,
                (false, false) => o.nlink,
            },
            mtime: o.mtime.sec,
            mtime_nsec: o.mtime.nsec,
            ctime: d.map_or(0, |_| self.listing_stamp(id).map_or(0, |s| s.0.sec)),
            ctime_nsec: d.map_or(0, |_| self.listing_stamp(id).map_or(0, |s| s.0.nsec)),
            dflags: d.map_or(0, |d| d.dflags),
            apparent: o.apparent,
            disk: o.disk,
            total_apparent: d.map_or(o.apparent, |d| d.total_apparent),
            total_disk: d.map_or(o.disk, |d| d.total_disk),
            items: d.map_or(0, |d| d.items),
            errno: d.map_or(0, |_| o.errno),
        }
    }

    /// The ids of all live nodes, in id order.
    pub fn live_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.arena
            .nodes()
            .iter()
            .enumerate()
            .filter(|&(i, n)| self.holds_entry(i, n))
            .map(|(i, _)| NodeId(i as u32))
    }

    /// Counts of the whole tree, in one pass over the nodes (a report needs both, and each
    /// pass over half a million nodes is a millisecond).
    #[must_use]
    pub fn census(&self) -> Census {
        let mut c = Census::default();
        for (i, n) in self.arena.nodes().iter().enumerate() {
            if self.holds_entry(i, n) {
                c.dirs += u64::from(n.is_dir());
                c.unreadable += u64::from(n.flags & flags::READ_ERROR != 0);
            }
        }
        c
    }

    /// Starts recording which nodes change (for `take_changes`).
    pub fn track_changes(&mut self) {
        if self.changes.is_none() {
            self.changes = Some(HashSet::new());
        }
    }

    /// Starts recording changes with every live node already recorded: for a tree that was
    /// filled while nothing recorded (a first scan that did not end), so the next batch
    /// carries all of it.
    pub fn track_changes_of_all(&mut self) {
        let ids: Vec<u32> = self.live_ids().map(|id| id.0).collect();
        self.changes.get_or_insert_with(HashSet::new).extend(ids);
    }

    pub(super) fn mark_changed(&mut self, id: NodeId) {
        if let Some(c) = &mut self.changes {
            c.insert(id.0);
        }
    }

    /// A directory whose totals, item count or child list changed (see `totals_changed`).
    pub(super) fn mark_totals_changed(&mut self, id: NodeId) {
        if self.changes.is_some() {
            self.totals_changed.insert(id.0);
        }
    }

    /// Is anything recorded and not yet taken?
    #[must_use]
    pub fn has_changes(&self) -> bool {
        self.changes.as_ref().is_some_and(|c| !c.is_empty()) || !self.totals_changed.is_empty()
    }

    /// The rows changed since the last call, with a new generation (bumped even when nothing
    /// changed, so every applied batch has its own).
    pub fn take_changes(&mut self) -> Changes {
        let mut ids: Vec<u32> = self
            .changes
            .as_mut()
            .map(|c| c.drain().collect())
            .unwrap_or_default();
        ids.sort_unstable();
        let mut out = Changes::default();
        for &id in &ids {
            let id = NodeId(id);
            if self.is_live(id) {
                out.upserts.push(self.row(id), self.name(id));
            } else {
                out.deletes.push(id.0);
            }
        }
        let moved = std::mem::take(&mut self.totals_changed);
        let mut totals: Vec<u32> = moved
            .into_iter()
            .filter(|&id| self.is_live(NodeId(id)) && ids.binary_search(&id).is_err())
            .collect();
        totals.sort_unstable();
        out.totals = totals;
        out.generation = self.bump_generation();
        out.entries = self.len();
        out
    }

    /// Rebuilds a tree in `arena` (new and empty) from rows in any order, keeping their ids.
    /// Rows whose parent is missing are dropped with their subtrees (and then no listing is
    /// trusted, so the catch-up finds them again); totals are taken as stored (they were
    /// written in the same transactions as the sizes).
    #[expect(
        clippy::too_many_lines,
        reason = "write the slots, link them, free the unreachable: one pass each, in order"
    )]
    pub fn from_rows(
        mut arena: Arena,
        root_path: &Path,
        rows: &RowChunk,
        generation: u64,
    ) -> Result<Tree, TreeError> {
        let max_id = rows.rows.iter().map(|r| r.id).max().unwrap_or(0);
        if u64::from(max_id) > u64::from(u32::MAX - 2) {
            return Err(TreeError::Corrupt("node id out of range"));
        }
        let n_dirs = rows
            .rows
            .iter()
            .filter(|r| r.kind == Kind::Dir as u8)
            .count();
        let name_bytes = rows.names.len() as u64;
        let path = std::os::unix::ffi::OsStrExt::as_bytes(root_path.as_os_str());
        arena.reserve(
            u64::from(max_id) + 1,
            n_dirs as u64,
            name_bytes + path.len() as u64,
        )?;
        let off = arena.push_name(path);
        {
            let h = arena.header_mut();
            h.root_path_off = off;
            h.root_path_len = path.len() as u32;
            h.generation = generation;
        }
        let count = arena.push_nodes(max_id + 1);
        debug_assert_eq!(count, 0);
        let mut tree = Tree::bare(arena, false);
        let mut root = None;
        let mut seen = vec![false; max_id as usize + 1];
        for (r, name) in rows.iter() {
            if std::mem::replace(&mut seen[r.id as usize], true) {
                return Err(TreeError::Corrupt("a node id appears twice"));
            }
            let name_off = tree.store_name(name);
            let dir = r.kind == Kind::Dir as u8;
            let aux = if dir {
                let dev = tree.intern_dev(r.dev);
                let d = tree.alloc_dir();
                tree.arena.dirs_mut()[d as usize] = DirRec {
                    first_child: u32::MAX,
                    items: r.items,
                    total_apparent: r.total_apparent,
                    total_disk: r.total_disk,
                    dev,
                    ctime_ns: Time {
                        sec: r.ctime,
                        nsec: r.ctime_nsec,
                    }
                    .as_ns()
                    .unwrap_or(super::node::NO_CTIME),
                    dflags: r.dflags,
                    ..bytemuck::Zeroable::zeroed()
                };
                d
            } else {
                0
            };
            tree.arena.nodes_mut()[r.id as usize] = Node {
                parent: r.parent,
                next_sibling: u32::MAX,
                aux,
                name_off,
                name_len: u8::try_from(name.len()).unwrap_or(u8::MAX),
                kind_bits: Kind::from_u8(r.kind) as u8,
                flags: r.flags & !flags::FREE,
                generation: 0,
                disk_blocks: 0,
                word: 0,
            };
            let error = r.flags & flags::READ_ERROR != 0;
            let own = Own {
                apparent: r.apparent,
                disk: r.disk,
                mtime: Time {
                    sec: r.mtime,
                    nsec: r.mtime_nsec,
                },
                ino: (r.ino != 0).then_some(r.ino),
                nlink: if dir || error { 1 } else { r.aux },
                errno: match (dir, error) {
                    (_, false) => 0,
                    (true, true) => r.errno,
                    (false, true) => r.aux,
                },
            };
            if dir || own.nlink < 2 {
                // Only a name of an inode with other names is counted elsewhere (a forged
                // flag would hide the entry's bytes from every total; `validate` refuses it
                // in an arena). Which name of a group is charged is settled by
                // `rebuild_links` below.
                tree.arena.nodes_mut()[r.id as usize].flags &= !flags::HARDLINK_DUP;
            }
            tree.store_own(NodeId(r.id), &own)?;
            if r.parent == u32::MAX {
                root = Some(r.id);
            }
        }
        let root = root.ok_or(TreeError::Corrupt("no root row"))?;
        if !tree.arena.nodes()[root as usize].is_dir() {
            return Err(TreeError::Corrupt("the root row is not a directory"));
        }
        let live = seen;
        // Link children to parents; a row whose parent is missing or not a directory is cut
        // (and freed below with everything else that the root cannot reach).
        for r in &rows.rows {
            if r.id == root {
                continue;
            }
            let parent_ok = live.get(r.parent as usize).copied().unwrap_or(false)
                && tree.arena.nodes()[r.parent as usize].is_dir();
            if parent_ok {
                tree.link_child(NodeId(r.parent), NodeId(r.id));
            }
        }
        // Free every slot that is not reachable from the root.
        let mut reachable = vec![false; max_id as usize + 1];
        let mut stack = vec![NodeId(root)];
        while let Some(cur) = stack.pop() {
            reachable[cur.index()] = true;
            stack.extend(tree.children(cur));
        }
        {
            let h = tree.arena.header_mut();
            h.root = root;
            h.live_nodes = 0;
        }
        let mut cut = false;
        for id in (0..=max_id).rev() {
            if reachable[id as usize] {
                tree.arena.header_mut().live_nodes += 1;
            } else {
                cut |= live[id as usize];
                let n = tree.arena.nodes()[id as usize];
                if let Some(r) = n.rare_index() {
                    tree.free_rare(r);
                }
                // A row never written (an id gap) is zeroed: not a directory, no record.
                if n.is_dir() {
                    tree.free_dir_rec(n.aux);
                }
                let head = tree.arena.header().free_node;
                tree.arena.nodes_mut()[id as usize] = Node {
                    next_sibling: head,
                    flags: flags::FREE,
                    parent: u32::MAX,
                    ..bytemuck::Zeroable::zeroed()
                };
                tree.arena.header_mut().free_node = id;
            }
        }
        if cut {
            // A row was dropped, and its directory (whichever it was: its parent link is what
            // was wrong) still has a listing stamp that the catch-up would trust, keeping the
            // entry missing for good: every listing is read again instead.
            for d in tree.arena.dirs_mut() {
                d.dflags &= !super::node::dir_flags::LISTING_TRUSTED;
            }
        }
        tree.rebuild_links();
        Ok(tree)
    }
}
