//! Adding entries: slots and records allocated (free lists first), a batch of children
//! linked under their directory with one bubble-up, new hard links joined to their groups.

use super::links::Join;
use super::{
    Charge, Delta, DirRec, EntryInfo, Kind, NewEntry, Node, NodeId, Tree, TreeError, arena, flags,
    node,
};

impl Tree {
    /// A slot for a new node, and the generation it must keep. A fresh slot is zeroed
    /// (generation 0) and not read here: its page's first touch must be the write, since a
    /// read first maps the shared zero page and the write after it then costs a TLB flush on
    /// every CPU the scan runs on (1.9 % of a scan's time, measured).
    pub(super) fn alloc_node(&mut self) -> (NodeId, u8) {
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

    pub(super) fn alloc_dir(&mut self) -> u32 {
        let free = self.arena.header().free_dir;
        if free == u32::MAX {
            self.arena.push_dirs(1)
        } else {
            self.arena.header_mut().free_dir = self.arena.dirs()[free as usize].first_child;
            free
        }
    }

    pub(super) fn intern_dev(&mut self, dev: u64) -> u8 {
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
    pub(super) fn write_node(
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
        if self.can_add_in_bulk(parent) {
            return self.add_in_bulk(parent, entries, names, on_dir);
        }
        let mut sum = Charge::default();
        let mut error = false;
        for (i, e) in entries.iter().enumerate() {
            let start = e.name_start as usize;
            let name = &names[start..start + e.name_len as usize];
            let name_off = self.store_name(name);
            let (id, generation) = self.alloc_node();
            self.write_node(id, generation, parent, name_off, e.name_len, &e.info)?;
            self.link_child(parent, id);
            self.join_and_charge(id, &mut sum)?;
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

    /// A new entry, written and linked: joined to its hard-link group if it is a linked
    /// file, then its charge added to `sum`.
    pub(super) fn join_and_charge(
        &mut self,
        id: NodeId,
        sum: &mut Charge,
    ) -> Result<(), TreeError> {
        if self.link_key(id).is_some() {
            self.join_link_group(id, Join::New)?;
        }
        let c = self.charge(id);
        sum.apparent += c.apparent;
        sum.disk += c.disk;
        sum.items += c.items;
        Ok(())
    }

    pub(super) fn link_child(&mut self, parent: NodeId, id: NodeId) {
        let d = self
            .dir_rec_totals_mut(parent)
            .expect("children are only added to directories");
        let old = d.first_child;
        d.first_child = id.0;
        self.node_mut(id).next_sibling = old;
        self.index_linked(parent, id);
    }
}
