//! A set of node ids in an open-addressing table keyed by something each node holds (its
//! name, its inode): the key is not stored, a probe asks the caller whether the id in a slot
//! is the one it wants, so a slot costs 4 bytes. Linear probing, removal by shifting the rest
//! of the run back (no tombstones), so a miss is an answer.
//!
//! A dense table (the child index: many tables, a memory budget) is 4/5 full when built and
//! at most 7/8 full. A sparse one (the hard-link groups: one table, looked up for every
//! linked entry a scan meets, most of them misses) is at most half full: at 7/8 a miss probes
//! about 32 slots, each a question about a node elsewhere in memory; at 1/2, about 2.5.

const EMPTY: u32 = u32::MAX;

pub(super) struct IdTable {
    slots: Box<[u32]>,
    len: usize,
    sparse: bool,
}

impl Default for IdTable {
    fn default() -> IdTable {
        IdTable {
            slots: Box::new([]),
            len: 0,
            sparse: false,
        }
    }
}

impl IdTable {
    /// An empty table 4/5 full once `n` ids are in it.
    pub(super) fn with_room_for(n: usize) -> IdTable {
        IdTable::with_slots(Self::slots_for(n))
    }

    /// An empty table that stays at most half full (see the module's note), a third full once
    /// `n` ids are in it.
    pub(super) fn sparse_for(n: usize) -> IdTable {
        IdTable {
            sparse: true,
            ..IdTable::with_slots(if n == 0 { 0 } else { (n * 3).max(16) })
        }
    }

    fn with_slots(cap: usize) -> IdTable {
        IdTable {
            slots: vec![EMPTY; cap].into_boxed_slice(),
            len: 0,
            sparse: false,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of its slots.
    pub(super) fn bytes(&self) -> usize {
        self.slots.len() * 4
    }

    /// Slots a table built for `n` ids has (for memory figures).
    pub(super) fn slots_for(n: usize) -> usize {
        (n + n / 4).max(16)
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

    /// Adds `id` (its key hashing to `hash`); past 7/8 full the table grows, rehashing every
    /// id through `hash_of`.
    pub(super) fn insert(&mut self, id: u32, hash: u64, hash_of: impl Fn(u32) -> u64) {
        let most_eighths = if self.sparse { 4 } else { 7 };
        if (self.len + 1) * 8 > self.slots.len() * most_eighths {
            // Dense: two thirds full after growing; sparse: a third. Growth stays geometric.
            let slots = if self.sparse {
                (self.len + 1) * 3
            } else {
                (self.len + 1) * 3 / 2
            };
            let mut grown = IdTable::with_slots(slots);
            grown.sparse = self.sparse;
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

    #[test]
    fn every_id_stays_findable_through_inserts_growth_and_removals() {
        for mut t in [
            IdTable::default(),
            IdTable::sparse_for(0),
            IdTable::sparse_for(40),
        ] {
            for id in 0..200 {
                t.insert(id, h(id), h);
                if t.sparse {
                    assert!(
                        t.len() * 2 <= t.slots.len(),
                        "a sparse table stays half empty"
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
    }
}
