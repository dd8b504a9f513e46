//! Growing the arena: a region doubles by remapping anonymous memory (the regions above move
//! up, the pages they vacate handed back), and a tree mapped from its file is moved into
//! anonymous memory, at once or through a copy taken under a read lock.

use std::path::PathBuf;

use memmap2::MmapMut;

use super::header::{Caps, Header, Layout, MIN_DIRS, MIN_NAMES, MIN_NODES, MIN_RARES, layout};
use super::{Arena, ArenaError, DirRec, Node, Rare};

/// How much a full region grows at once. Growing one region moves every region above it
/// (a copy of their used bytes, faulting in the pages they move to and handing back those
/// they leave), under the tree's write lock: doubling made a first scan move the names and
/// directory records some 27 times, 3,500 of its 10,000 page faults. A region's spare
/// capacity is address space only (never touched, so never resident; a save writes the used
/// part), so a larger step costs no memory.
const GROWTH: u64 = 8;
/// When the nodes grow, room for at least a directory record per this many nodes and a rare
/// record per that many (the benchmark tree: a directory per 10.5 entries, a rare record per
/// 50), so that on most trees only the node region's growth moves the regions above.
const DIRS_PER_NODE: u64 = 8;
const RARES_PER_NODE: u64 = 32;

impl Arena {
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
                need.max(cap * GROWTH).min(limit)
            }
        };
        let mut caps = Caps {
            nodes: grow(need.nodes, cap.nodes),
            dirs: grow(need.dirs, cap.dirs),
            rares: grow(need.rares, cap.rares),
            names: grow(need.names, cap.names),
        };
        if caps.nodes > cap.nodes {
            // The directory and rare records, above the nodes, grow with them (while the
            // regions above are still small to move) rather than each on its own later.
            caps.dirs = caps.dirs.max(caps.nodes / DIRS_PER_NODE);
            caps.rares = caps.rares.max(caps.nodes / RARES_PER_NODE);
        }
        let new = layout(caps);
        let moves = region_moves(&h, &new);
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
                    .map_err(memory_err)?;
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
        let mut map = MmapMut::map_anon(new.len as usize).map_err(memory_err)?;
        let nodes_end = h.nodes_off as usize + h.node_count as usize * std::mem::size_of::<Node>();
        map[..nodes_end].copy_from_slice(&self.map[..nodes_end]);
        let moves = region_moves(&h, &new);
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
}

/// (old offset, new offset, used bytes) of each region above the nodes, last first, when the
/// arena of header `h` is laid out anew as `new`.
fn region_moves(h: &Header, new: &Layout) -> [(u64, u64, usize); 3] {
    [
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
    ]
}

/// An error of the arena's anonymous memory (no file to name).
fn memory_err(source: std::io::Error) -> ArenaError {
    ArenaError::Io {
        path: PathBuf::from("(memory)"),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An arena grown one record at a time to `n` of each region, every record marked with
    /// its index.
    fn filled(n: u32) -> Arena {
        let mut a = Arena::create_temp().expect("temp arena");
        for i in 0..n {
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
        a
    }

    /// Every record `filled(n)` wrote is still there.
    fn assert_filled(a: &Arena, n: u32) {
        for i in 0..n {
            assert_eq!(a.nodes()[i as usize].aux, i);
            assert_eq!(a.rares()[i as usize].ino, u64::from(i) * 7);
            assert_eq!(a.dirs()[i as usize].items, i * 3);
            let at = i as usize * 4;
            assert_eq!(&a.names()[at..at + 4], &i.to_le_bytes());
        }
    }

    #[test]
    fn growing_keeps_every_region_intact() {
        let a = filled(5000);
        assert!(a.header().node_cap >= 5000);
        assert_filled(&a, 5000);
    }

    #[test]
    fn a_saved_arena_detached_into_memory_keeps_every_region_and_has_room_to_grow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.arena");
        filled(4000).save(&path).expect("save");
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
        assert_filled(&a, 4000);
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
