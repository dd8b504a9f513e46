//! A scan's slice added in bulk: the same nodes, records, links and totals as adding each
//! entry through `write_node` and `link_child`, without their per-entry bookkeeping (change
//! records, the free lists, a parent's child index), which a first scan never has. Node and
//! directory slots are taken in one step each, each node is written once from its stat, the
//! parent's child list is threaded in place and its charge summed as the nodes are written;
//! rare entries (hard links, errors, odd sizes or times) go through the general path.
//!
//! On the 2M benchmark tree the general path spent about 120 ns an entry under the tree's
//! lock, much of it in accessor calls that re-read the node just written (BENCHMARKS.md,
//! "The scan against the syscall floor", round 3).

use super::{
    Charge, Delta, DirRec, EntryInfo, Kind, NewEntry, Node, NodeId, Tree, TreeError, flags, node,
};

impl Tree {
    /// Whether `add_children_local` may take the bulk path for children of `parent`: no
    /// change recording, no free slot to reuse, no child index on `parent`.
    pub(super) fn can_add_in_bulk(&self, parent: NodeId) -> bool {
        #[cfg(test)]
        if self.bulk_off {
            return false;
        }
        let h = self.arena.header();
        self.changes.is_none()
            && h.free_node == u32::MAX
            && h.free_dir == u32::MAX
            && !self.is_indexed(parent)
            && self.dir_rec(parent).is_some()
    }

    /// `add_children_local`'s bulk path (see the module doc); capacity is reserved and
    /// `can_add_in_bulk(parent)` holds.
    pub(super) fn add_in_bulk(
        &mut self,
        parent: NodeId,
        entries: &[NewEntry],
        names: &[u8],
        mut on_dir: impl FnMut(NodeId, usize),
    ) -> Result<Delta, TreeError> {
        let n = entries.len();
        if n == 0 {
            return Ok(self.apply(parent, Charge::default()));
        }
        let mut offs = std::mem::take(&mut self.bulk_names);
        offs.clear();
        for e in entries {
            let name = &names[e.name_start as usize..][..usize::from(e.name_len)];
            offs.push(self.store_name(name));
        }
        // The devices of the plain directories are interned first (the header's table), with
        // the rare ones' in entry order among them: once the table is full, the general path
        // gives its last slot to the directory listed first.
        let mut devs = std::mem::take(&mut self.bulk_devs);
        devs.clear();
        for e in entries.iter().filter(|e| e.info.kind == Kind::Dir) {
            let dev = self.intern_dev(e.info.dev);
            if plain_dir(&e.info) {
                devs.push(dev);
            }
        }
        let first = self.arena.push_nodes(n as u32);
        self.arena.header_mut().live_nodes += n as u32;
        let first_dir = self.arena.push_dirs(devs.len() as u32);
        let old_first = self.dir_rec(parent).map_or(u32::MAX, |d| d.first_child);
        let mut sum = self.write_plain_nodes(parent, entries, &offs, first, first_dir, old_first);
        self.write_plain_dirs(entries, &devs, first_dir);
        if self.inodes.is_some() {
            for (i, e) in entries.iter().enumerate() {
                self.note_inode(NodeId(first + i as u32), &e.info);
            }
        }
        let rare = self.add_rare_entries(parent, entries, &offs, first)?;
        sum.apparent += rare.apparent;
        sum.disk += rare.disk;
        sum.items += rare.items;
        if let Some(d) = self.dir_rec_totals_mut(parent) {
            d.first_child = first + n as u32 - 1;
        }
        for (i, e) in entries.iter().enumerate() {
            if e.info.kind == Kind::Dir {
                on_dir(NodeId(first + i as u32), i);
            }
        }
        self.bulk_names = offs;
        self.bulk_devs = devs;
        let owed = self.apply(parent, sum);
        if entries
            .iter()
            .any(|e| e.info.flags & (flags::READ_ERROR | flags::ERROR_BELOW) != 0)
        {
            self.mark_error_below(parent);
        }
        Ok(owed)
    }

    /// Writes the slots `first..` in one pass: every node threaded on the parent's child
    /// list (each new one before the last, as `link_child` does), the plain ones whole (their
    /// directory records at `first_dir..`, in order), the rare ones only linked (see
    /// `add_rare_entries`). Returns the charge of the plain ones.
    fn write_plain_nodes(
        &mut self,
        parent: NodeId,
        entries: &[NewEntry],
        offs: &[u32],
        first: u32,
        first_dir: u32,
        old_first: u32,
    ) -> Charge {
        let mut sum = Charge::default();
        let nodes = &mut self.arena.nodes_mut()[first as usize..][..entries.len()];
        let mut dir_k = first_dir;
        for (i, (e, slot)) in entries.iter().zip(nodes.iter_mut()).enumerate() {
            let info = &e.info;
            let mut nd = Node {
                parent: parent.0,
                next_sibling: if i == 0 {
                    old_first
                } else {
                    first + i as u32 - 1
                },
                aux: 0,
                name_off: offs[i],
                name_len: e.name_len,
                kind_bits: info.kind as u8,
                flags: info.flags & !flags::FREE,
                generation: 0,
                disk_blocks: 0,
                word: 0,
            };
            if plain_dir(info) {
                nd.aux = dir_k;
                nd.disk_blocks = (info.disk / 512) as u32;
                dir_k += 1;
            } else if is_rare(info) {
                *slot = nd;
                continue;
            } else {
                nd.aux = info.apparent as u32;
                nd.disk_blocks = (info.disk / 512) as u32;
                nd.word = info.mtime as u32;
            }
            *slot = nd;
            sum.items += 1;
            if info.flags & flags::NOT_CHARGED == 0 {
                sum.apparent += i128::from(info.apparent);
                sum.disk += i128::from(info.disk);
            }
        }
        sum
    }

    /// The records of the plain directories of `entries`, at `first_dir..` in order.
    fn write_plain_dirs(&mut self, entries: &[NewEntry], devs: &[u8], first_dir: u32) {
        let dirs = &mut self.arena.dirs_mut()[first_dir as usize..][..devs.len()];
        let plain = entries.iter().filter(|e| plain_dir(&e.info));
        for ((e, rec), &dev) in plain.zip(dirs.iter_mut()).zip(devs) {
            let info = &e.info;
            let o = info.own();
            *rec = DirRec {
                first_child: u32::MAX,
                items: 0,
                total_apparent: info.apparent,
                total_disk: info.disk,
                dev,
                apparent: info.apparent as u32,
                mtime_ns: o.mtime.as_ns().unwrap_or(0),
                ino: o.ino.unwrap_or(0),
                errno: u16::try_from(o.errno).unwrap_or(u16::MAX),
                ..bytemuck::Zeroable::zeroed()
            };
        }
    }

    /// The rare entries of the slice through the general path, in entry order as it would
    /// take them (the first name of a hard-link group is its charged head); their slots are
    /// linked already. Returns their charge.
    fn add_rare_entries(
        &mut self,
        parent: NodeId,
        entries: &[NewEntry],
        offs: &[u32],
        first: u32,
    ) -> Result<Charge, TreeError> {
        let mut sum = Charge::default();
        for (i, e) in entries.iter().enumerate() {
            if !is_rare(&e.info) {
                continue;
            }
            let id = NodeId(first + i as u32);
            let next = self.node(id).next_sibling;
            self.write_node(id, 0, parent, offs[i], e.name_len, &e.info)?;
            self.node_mut(id).next_sibling = next;
            self.join_and_charge(id, &mut sum)?;
        }
        Ok(sum)
    }
}

/// A directory whose own attributes fit its record.
fn plain_dir(e: &EntryInfo) -> bool {
    e.kind == Kind::Dir && !dir_needs_rare(e)
}

/// An entry the bulk path leaves to the general one: a directory whose own attributes need
/// a rare record, or anything else that needs one.
fn is_rare(e: &EntryInfo) -> bool {
    if e.kind == Kind::Dir {
        dir_needs_rare(e)
    } else {
        e.own().needs_rare()
    }
}

/// Whether a directory's own attributes need a rare record (as `store_own` decides).
fn dir_needs_rare(e: &EntryInfo) -> bool {
    let o = e.own();
    o.apparent > u64::from(u32::MAX) || !node::plain_disk(o.disk) || o.mtime.as_ns().is_none()
}
