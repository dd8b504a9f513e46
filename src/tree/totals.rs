//! Subtree totals: what an entry charges its parent, and changes bubbled up to the root in
//! O(depth), saturating at `u64::MAX` (a saturated total shrinks by a recount of its children).

use super::{NodeId, Totals, Tree, flags};

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

pub(super) type Charge = Delta;

/// Adds a signed change to a saturating total.
fn sat_add(total: u64, d: i128) -> u64 {
    (i128::from(total) + d).clamp(0, i128::from(u64::MAX)) as u64
}

impl Tree {
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
    pub(super) fn charge(&self, id: NodeId) -> Charge {
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

    /// The parent to which `dir`'s totals are charged (`None` for the root, or when `dir` is
    /// excluded, on another filesystem or otherwise not charged).
    pub(super) fn charged_parent(&self, dir: NodeId) -> Option<NodeId> {
        if self.node(dir).flags & flags::NOT_CHARGED != 0 {
            return None;
        }
        self.parent(dir)
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

    /// Adds a delta to the totals of `dir` and of every ancestor: O(depth).
    pub(super) fn bubble(&mut self, dir: NodeId, c: Charge) {
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
    pub(super) fn apply(&mut self, dir: NodeId, c: Charge) -> Delta {
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
}
