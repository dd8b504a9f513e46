//! Sets of node ids in open-addressing tables keyed by something each node holds (its name,
//! its inode). Linear probing, removal by shifting the rest of the run back (no tombstones),
//! so a miss is an answer.
//!
//! `IdTable` (the child index: many tables, a memory budget) does not store the key: a probe
//! asks the caller whether the id in a slot is the one it wants, and growing or removing asks
//! for each moved id's hash again, so a slot costs 4 bytes. It is 4/5 full when built and at
//! most 7/8 full.
//!
//! `TaggedIdTable` (the hard-link groups: one table, looked up for every linked entry a scan
//! meets, about half of them misses) keeps the upper half of each id's hash beside it, 8
//! bytes a slot. Asking about an id means reading its node, its rare record and its parent's
//! records, several cache misses apiece: with the hash kept, a probe asks only about an id
//! whose hash matches (a miss asks about none), and growing or removing asks about none. On
//! the 2M tree (20,000 groups) the untagged table, 1/2 to 5/8 full, asked some 160,000
//! times a scan (its growth by 1.25x re-read every id each time); the tagged one, 2/3 to 7/8
//! full, asks 20,000 times (once per hit), for about 3 more bytes per group.

const EMPTY: u32 = u32::MAX;

/// Node ids whose keys are not stored (see the module's note).
#[derive(Default)]
pub(super) struct IdTable {
    slots: Box<[u32]>,
    len: usize,
}

impl IdTable {
    /// An empty table 4/5 full once `n` ids are in it.
    pub(super) fn with_room_for(n: usize) -> Self {
        Self::with_slots(Self::slots_for(n))
    }

    /// Slots a table built for `n` ids has (for memory figures).
    pub(super) fn slots_for(n: usize) -> usize {
        (n + n / 4).max(16)
    }

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
        home(hash, self.slots.len())
    }

    /// The first id of `hash`'s probe run for which `is` holds.
    pub(super) fn find(&self, hash: u64, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        self.find_slot(hash, &mut is).map(|i| self.slots[i])
    }

    fn find_slot(&self, hash: u64, is: &mut impl FnMut(u32) -> bool) -> Option<usize> {
        probe(&self.slots, self.home(hash), is)
    }

    /// Adds `id` (its key hashing to `hash`); past 7/8 full the table grows to two thirds
    /// full, rehashing every id through `hash_of`.
    pub(super) fn insert(&mut self, id: u32, hash: u64, hash_of: impl Fn(u32) -> u64) {
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            let mut grown = Self::with_slots((self.len + 1) * 3 / 2);
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
        let start = self.home(hash);
        put(&mut self.slots, start, id);
        self.len += 1;
    }

    /// Takes `id` out (its key hashing to `hash`), moving back the rest of its run so that
    /// every probe still finds what it holds. False if `id` is not in.
    pub(super) fn remove(&mut self, id: u32, hash: u64, hash_of: impl Fn(u32) -> u64) -> bool {
        let Some(hole) = self
            .find_slot(hash, &mut |s| s == id)
            .or_else(|| self.slots.iter().position(|&s| s == id))
        else {
            return false;
        };
        let n = self.slots.len();
        close_hole(&mut self.slots, hole, |s| home(hash_of(s), n));
        self.len -= 1;
        true
    }

    #[cfg(test)]
    fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots.iter().copied().filter(|&s| s != EMPTY)
    }
}

/// Node ids with the upper half of each one's hash (see the module's note). A slot is
/// `tag << 32 | id`; its home is from the tag alone, so the table moves ids without their
/// keys.
#[derive(Default)]
pub(super) struct TaggedIdTable {
    slots: Box<[u64]>,
    len: usize,
}

const TAGGED_EMPTY: u64 = EMPTY as u64;

fn tag_of(hash: u64) -> u32 {
    (hash >> 32) as u32
}

fn id_of(slot: u64) -> u32 {
    slot as u32
}

fn slot_tag(slot: u64) -> u32 {
    (slot >> 32) as u32
}

/// A tag's home slot in a table of `slots` (the tag is a hash's upper half).
fn tagged_home(tag: u32, slots: usize) -> usize {
    home(u64::from(tag) << 32, slots)
}

impl TaggedIdTable {
    /// An empty table two thirds full once `n` ids are in it.
    pub(super) fn sparse_for(n: usize) -> Self {
        Self::with_slots(if n == 0 { 0 } else { (n * 3 / 2).max(16) })
    }

    fn with_slots(cap: usize) -> Self {
        TaggedIdTable {
            slots: vec![TAGGED_EMPTY; cap].into_boxed_slice(),
            len: 0,
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of its slots.
    pub(super) fn bytes(&self) -> usize {
        self.slots.len() * 8
    }

    fn home(&self, tag: u32) -> usize {
        tagged_home(tag, self.slots.len())
    }

    /// The first id of `hash`'s probe run whose hash matches and for which `is` holds.
    pub(super) fn find(&self, hash: u64, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        self.find_slot(hash, &mut is).map(|i| id_of(self.slots[i]))
    }

    fn find_slot(&self, hash: u64, is: &mut impl FnMut(u32) -> bool) -> Option<usize> {
        let tag = tag_of(hash);
        probe(&self.slots, self.home(tag), &mut |s: u64| {
            slot_tag(s) == tag && is(id_of(s))
        })
    }

    /// Adds `id` (its key hashing to `hash`); past 7/8 full the table grows to two thirds
    /// full (the table keeps what it needs of each hash: no id's key is asked for).
    pub(super) fn insert(&mut self, id: u32, hash: u64) {
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            let mut grown = Self::with_slots(((self.len + 1) * 3 / 2).max(16));
            for &s in &self.slots {
                if s != TAGGED_EMPTY {
                    grown.put(s);
                }
            }
            *self = grown;
        }
        self.put(u64::from(tag_of(hash)) << 32 | u64::from(id));
    }

    fn put(&mut self, slot: u64) {
        let start = self.home(slot_tag(slot));
        put(&mut self.slots, start, slot);
        self.len += 1;
    }

    /// Puts `new` in the slot of `old` (both with the same key). False if `old` is not in.
    pub(super) fn replace(&mut self, old: u32, new: u32, hash: u64) -> bool {
        match self.find_slot(hash, &mut |s| s == old) {
            Some(i) => {
                self.slots[i] = self.slots[i] & !u64::from(u32::MAX) | u64::from(new);
                true
            }
            None => false,
        }
    }

    /// Takes `id` out (its key hashing to `hash`), moving back the rest of its run so that
    /// every probe still finds what it holds. False if `id` is not in.
    pub(super) fn remove(&mut self, id: u32, hash: u64) -> bool {
        let Some(hole) = self.find_slot(hash, &mut |s| s == id).or_else(|| {
            self.slots
                .iter()
                .position(|&s| s != TAGGED_EMPTY && id_of(s) == id)
        }) else {
            return false;
        };
        let n = self.slots.len();
        close_hole(&mut self.slots, hole, |s| tagged_home(slot_tag(s), n));
        self.len -= 1;
        true
    }

    #[cfg(test)]
    fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .iter()
            .copied()
            .filter(|&s| s != TAGGED_EMPTY)
            .map(id_of)
    }
}

/// A hash's home slot in a table of `slots`: multiply-shift onto any size (no power of two,
/// so no space lost rounding up), from the hash's upper bits.
fn home(hash: u64, slots: usize) -> usize {
    ((u128::from(hash) * slots as u128) >> 64) as usize
}

/// What a table's slot holds (an id, or an id and its tag), and its empty value.
trait Slot: Copy + PartialEq {
    const EMPTY: Self;
}

impl Slot for u32 {
    const EMPTY: u32 = EMPTY;
}

impl Slot for u64 {
    const EMPTY: u64 = TAGGED_EMPTY;
}

fn next(i: usize, slots: usize) -> usize {
    if i + 1 == slots { 0 } else { i + 1 }
}

/// The first slot of the run from `start` whose content `is` accepts (`None` at the run's
/// end, an empty slot).
fn probe<S: Slot>(slots: &[S], start: usize, is: &mut impl FnMut(S) -> bool) -> Option<usize> {
    let mut i = start;
    for _ in 0..slots.len() {
        let s = slots[i];
        if s == S::EMPTY {
            return None;
        }
        if is(s) {
            return Some(i);
        }
        i = next(i, slots.len());
    }
    None
}

/// Puts `s` in the first empty slot of the run from `start` (the table has one).
fn put<S: Slot>(slots: &mut [S], start: usize, s: S) {
    let mut i = start;
    while slots[i] != S::EMPTY {
        i = next(i, slots.len());
    }
    slots[i] = s;
}

/// Empties slot `hole` and moves back the rest of its run (each slot's home from `home_of`),
/// so that every probe still finds what the table holds.
fn close_hole<S: Slot>(slots: &mut [S], mut hole: usize, home_of: impl Fn(S) -> usize) {
    slots[hole] = S::EMPTY;
    let mut j = hole;
    loop {
        j = next(j, slots.len());
        let s = slots[j];
        if s == S::EMPTY {
            return;
        }
        if !stays(hole, home_of(s), j) {
            slots[hole] = s;
            slots[j] = S::EMPTY;
            hole = j;
        }
    }
}

/// Whether an id at `j` whose home is `start` must stay when `hole` (before `j` in its run)
/// empties: it stays if its home lies cyclically in (hole, j].
fn stays(hole: usize, start: usize, j: usize) -> bool {
    if hole <= j {
        hole < start && start <= j
    } else {
        hole < start || start <= j
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(id: u32) -> u64 {
        // Few distinct homes: long runs, wrapping around the end.
        u64::from(id % 5).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// The operations both tables share, for one exercise of either.
    trait Table {
        fn insert(&mut self, id: u32);
        fn remove(&mut self, id: u32) -> bool;
        fn has(&self, id: u32) -> bool;
        fn len(&self) -> usize;
        fn ids(&self) -> usize;
    }

    impl Table for IdTable {
        fn insert(&mut self, id: u32) {
            IdTable::insert(self, id, h(id), h);
        }
        fn remove(&mut self, id: u32) -> bool {
            IdTable::remove(self, id, h(id), h)
        }
        fn has(&self, id: u32) -> bool {
            self.find(h(id), |s| s == id).is_some()
        }
        fn len(&self) -> usize {
            IdTable::len(self)
        }
        fn ids(&self) -> usize {
            IdTable::ids(self).count()
        }
    }

    impl Table for TaggedIdTable {
        fn insert(&mut self, id: u32) {
            TaggedIdTable::insert(self, id, h(id));
        }
        fn remove(&mut self, id: u32) -> bool {
            TaggedIdTable::remove(self, id, h(id))
        }
        fn has(&self, id: u32) -> bool {
            self.find(h(id), |s| s == id).is_some()
        }
        fn len(&self) -> usize {
            TaggedIdTable::len(self)
        }
        fn ids(&self) -> usize {
            TaggedIdTable::ids(self).count()
        }
    }

    fn exercise(mut t: impl Table) {
        for id in 0..200 {
            t.insert(id);
        }
        for id in (0..200).step_by(3) {
            assert!(t.remove(id));
        }
        for id in 0..200 {
            assert_eq!(t.has(id), id % 3 != 0, "id {id}");
        }
        assert_eq!(t.len(), 200 - 67);
        assert_eq!(t.ids(), t.len());
    }

    #[test]
    fn every_id_stays_findable_through_inserts_growth_and_removals() {
        exercise(IdTable::default());
        exercise(IdTable::with_room_for(40));
        exercise(TaggedIdTable::default());
        exercise(TaggedIdTable::sparse_for(40));
    }

    #[test]
    fn a_tagged_probe_asks_only_about_ids_whose_hash_matches() {
        let hash = |id: u32| u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1 << 40;
        let mut t = TaggedIdTable::default();
        for id in 0..100 {
            t.insert(id, hash(id));
        }
        for id in 0..100 {
            let mut asked = 0;
            let found = t.find(hash(id), |s| {
                asked += 1;
                s == id
            });
            assert_eq!((found, asked), (Some(id), 1), "id {id}");
        }
        let mut asked = 0;
        assert_eq!(
            t.find(hash(1000), |_| {
                asked += 1;
                false
            }),
            None
        );
        assert_eq!(asked, 0, "a miss asks about no id");
    }
}
