//! A set of node ids in an open-addressing table keyed by something each node holds (its
//! name, its inode): the key is not stored, a probe asks the caller whether the id in a slot
//! is the one it wants, so a slot costs 4 bytes. Linear probing, removal by shifting the rest
//! of the run back (no tombstones), so a miss is an answer.
//!
//! A dense table (the child index: many tables, a memory budget) is 4/5 full when built and
//! at most 7/8 full. A sparse one (the hard-link groups: one table, looked up for every
//! linked entry a scan meets, most of them misses) is half full when grown and at most 5/8
//! full: at 7/8 a miss probes about 32 slots, each a question about a node elsewhere in
//! memory; at 5/8, about 4.

const EMPTY: u32 = u32::MAX;

/// A dense table (`SPARSE` false) or a sparse one; the kind is in the type, so a table costs
/// no more than its slots and its length (the child index keeps thousands).
pub(super) struct IdTable<const SPARSE: bool = false> {
    slots: Box<[u32]>,
    len: usize,
}

/// The hard-link groups' table.
pub(super) type SparseIdTable = IdTable<true>;

impl<const SPARSE: bool> Default for IdTable<SPARSE> {
    fn default() -> Self {
        IdTable {
            slots: Box::new([]),
            len: 0,
        }
    }
}

impl IdTable<false> {
    /// An empty table 4/5 full once `n` ids are in it.
    pub(super) fn with_room_for(n: usize) -> Self {
        Self::with_slots(Self::slots_for(n))
    }

    /// Slots a table built for `n` ids has (for memory figures).
    pub(super) fn slots_for(n: usize) -> usize {
        (n + n / 4).max(16)
    }
}

impl IdTable<true> {
    /// An empty table that stays at most 5/8 full (see the module's note), half full once `n`
    /// ids are in it.
    pub(super) fn sparse_for(n: usize) -> Self {
        Self::with_slots(if n == 0 { 0 } else { (n * 2).max(16) })
    }
}

impl<const SPARSE: bool> IdTable<SPARSE> {
    fn with_slots(cap: usize) -> Self {
        IdTable {
            slots: vec![EMPTY; cap].into_boxed_slice(),
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of its slots.
    pub(super) fn bytes(&self) -> usize {
        self.slots.len() * 4
    }

    fn home(&self, hash: u64) -> usize {
        // Multiply-shift onto any table size: no power of two, so no space lost rounding up.
        ((u128::from(hash) * self.slots.len() as u128) >> 64) as usize
    }

    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() { 0 } else { i + 1 }
    }

    /// The first id of `hash`'s probe run for which `is` holds.
    pub(super) fn find(&self, hash: u64, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        self.find_slot(hash, &mut is).map(|i| self.slots[i])
    }

    fn find_slot(&self, hash: u64, is: &mut impl FnMut(u32) -> bool) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = self.home(hash);
        for _ in 0..self.slots.len() {
            let id = self.slots[i];
            if id == EMPTY {
                return None;
            }
            if is(id) {
                return Some(i);
            }
            i = self.next(i);
        }
        None
    }

    /// Adds `id` (its key hashing to `hash`); past 7/8 full (sparse: 5/8) the table grows,
    /// rehashing every id through `hash_of`.
    pub(super) fn insert(&mut self, id: u32, hash: u64, hash_of: impl Fn(u32) -> u64) {
        let most_eighths = if SPARSE { 5 } else { 7 };
        if (self.len + 1) * 8 > self.slots.len() * most_eighths {
            // Dense: two thirds full after growing; sparse: half. Growth stays geometric.
            let slots = if SPARSE {
                (self.len + 1) * 2
            } else {
                (self.len + 1) * 3 / 2
            };
            let mut grown = Self::with_slots(slots);
            for &s in &self.slots {
                if s != EMPTY {
                    grown.put(s, hash_of(s));
                }
            }
            *self = grown;
        }
        self.put(id, hash);
    }

    fn put(&mut self, id: u32, hash: u64) {
        let mut i = self.home(hash);
        while self.slots[i] != EMPTY {
            i = self.next(i);
        }
        self.slots[i] = id;
        self.len += 1;
    }

    /// Puts `new` in the slot of `old` (both with the same key). False if `old` is not in.
    pub(super) fn replace(&mut self, old: u32, new: u32, hash: u64) -> bool {
        match self.find_slot(hash, &mut |s| s == old) {
            Some(i) => {
                self.slots[i] = new;
                true
            }
            None => false,
        }
    }

    /// Takes `id` out (its key hashing to `hash`), moving back the rest of its run so that
    /// every probe still finds what it holds. False if `id` is not in.
    pub(super) fn remove(&mut self, id: u32, hash: u64, hash_of: impl Fn(u32) -> u64) -> bool {
        let Some(mut hole) = self
            .find_slot(hash, &mut |s| s == id)
            .or_else(|| self.slots.iter().position(|&s| s == id))
        else {
            return false;
        };
        self.slots[hole] = EMPTY;
        self.len -= 1;
        let mut j = hole;
        loop {
            j = self.next(j);
            let s = self.slots[j];
            if s == EMPTY {
                return true;
            }
            // `s` may fill the hole unless its home lies cyclically in (hole, j].
            let start = self.home(hash_of(s));
            let stays = if hole <= j {
                hole < start && start <= j
            } else {
                hole < start || start <= j
            };
            if !stays {
                self.slots[hole] = s;
                self.slots[j] = EMPTY;
                hole = j;
            }
        }
    }

    #[cfg(test)]
    fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots.iter().copied().filter(|&s| s != EMPTY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(id: u32) -> u64 {
        // Few distinct homes: long runs, wrapping around the end.
        u64::from(id % 5).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn exercise<const SPARSE: bool>(mut t: IdTable<SPARSE>) {
        for id in 0..200 {
            t.insert(id, h(id), h);
            if SPARSE {
                assert!(
                    t.len() * 8 <= t.slots.len() * 5,
                    "a sparse table stays at most 5/8 full"
                );
            }
        }
        for id in (0..200).step_by(3) {
            assert!(t.remove(id, h(id), h));
        }
        for id in 0..200 {
            let found = t.find(h(id), |s| s == id);
            assert_eq!(found.is_some(), id % 3 != 0, "id {id}");
        }
        assert_eq!(t.len(), 200 - 67);
        assert_eq!(t.ids().count(), t.len());
    }

    #[test]
    fn every_id_stays_findable_through_inserts_growth_and_removals() {
        exercise(IdTable::<false>::default());
        exercise(IdTable::with_room_for(40));
        exercise(SparseIdTable::default());
        exercise(SparseIdTable::sparse_for(40));
    }
}
