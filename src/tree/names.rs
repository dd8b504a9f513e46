//! The name heap: repeated names shared through a small cache of recent ones, and the heap
//! compacted once freed names are a good part of it.

use std::collections::HashMap;

use super::{NodeId, Tree, flags};

/// Slots of the name cache (a power of two): 2^14 slots of 16 bytes take the 256 KiB that
/// 2^15 offsets with a hash tag took, and scan the benchmark trees faster (no heap read for a
/// short repeat) for 0.26 bytes of names per entry more.
const NAME_CACHE_BITS: u32 = 14;

/// The bytes of a name a slot holds: all of a name this short, the first ones of a longer
/// one (whose rest is compared in the heap).
const INLINE: usize = 11;

/// A name stored recently: where it lies in the heap, its length and its first bytes (as
/// `Parts` packs them), so that a repeat is recognized without reading the heap when it is
/// short, and the heap is read only for a likely hit when it is not.
#[derive(Clone, Copy, Default)]
#[repr(C, align(16))]
pub(super) struct CachedName {
    off: u32,
    /// The length (low byte) and the first 3 bytes.
    meta: u32,
    /// Bytes 3 to 10.
    rest: u64,
}

/// Up to the first 8 bytes of `b`, little-endian and zero-padded (as if copied into a zeroed
/// `[u8; 8]`), in at most three loads and no call to `memcpy` (which a copy of a variable
/// length compiles to: four calls per entry of a scan). `sys::name_prefix` is its bytes
/// swapped.
#[inline]
#[must_use]
pub fn first_bytes_le(b: &[u8]) -> u64 {
    let n = b.len();
    if n >= 8 {
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    } else if n >= 4 {
        // Two loads that overlap where n < 8; the bytes they share are the same.
        let lo = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let hi = u32::from_le_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]);
        u64::from(lo) | (u64::from(hi) << (8 * (n - 4)))
    } else if n > 0 {
        u64::from(b[0])
            | (u64::from(b[n / 2]) << (8 * (n / 2)))
            | (u64::from(b[n - 1]) << (8 * (n - 1)))
    } else {
        0
    }
}

/// A cheap hash of a name: its first and last 8 bytes and its length (this runs for every
/// entry of a scan; a byte-by-byte hash cost 4% of a scan's CPU). `first` is
/// `first_bytes_le(name)`.
#[inline]
fn name_hash(name: &[u8], first: u64) -> u64 {
    let n = name.len();
    let last = if n >= 8 {
        first_bytes_le(&name[n - 8..])
    } else {
        first
    };
    let x = first ^ last.rotate_left(29) ^ ((n as u64) << 56);
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// What the cache knows a name by: its hash and a slot's `meta` and `rest`.
struct Parts {
    hash: u64,
    meta: u32,
    rest: u64,
}

impl Parts {
    /// A name of at most 255 bytes (every name in the tree; a longer one is never cached).
    #[inline]
    fn of(name: &[u8]) -> Parts {
        let n = name.len();
        let first = first_bytes_le(name);
        let hash = name_hash(name, first);
        let after = name.get(8..n.min(INLINE)).map_or(0, first_bytes_le);
        Parts {
            hash,
            meta: (n & 0xff) as u32 | ((first as u32) << 8),
            rest: (first >> 24) | (after << 40),
        }
    }

    fn slot(&self) -> usize {
        slot_of_hash(self.hash)
    }

    /// Whether `c` holds a name of this length and these first bytes.
    fn matches(&self, c: CachedName) -> bool {
        c.meta == self.meta && c.rest == self.rest
    }
}

fn slot_of_hash(hash: u64) -> usize {
    (hash >> (64 - NAME_CACHE_BITS)) as usize
}

/// The name cache's slot of a name (its hash only: a prefetch needs no key).
pub(super) fn slot_of(name: &[u8]) -> usize {
    slot_of_hash(name_hash(name, first_bytes_le(name)))
}

/// The address of a tree's name cache, for prefetching the slots of names about to be
/// stored without the tree's lock (see `Tree::name_cache_hint`).
#[derive(Clone, Copy)]
pub struct NameCacheHint {
    base: usize,
}

impl NameCacheHint {
    /// Starts loading the cache slot of `name` into the CPU's caches. Only a hint: the address
    /// may be stale (a compaction reallocates the cache), and a prefetch never faults.
    #[inline]
    pub fn prefetch(self, name: &[u8]) {
        let addr = self
            .base
            .wrapping_add(slot_of(name) * std::mem::size_of::<CachedName>());
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch reads nothing the program sees and never faults, whatever the
        // address (`prefetcht0`).
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                addr as *const i8,
            );
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = addr;
    }
}

impl Tree {
    /// Allocates the name cache on first use (and again after a compaction cleared it).
    fn ensure_name_cache(&mut self) {
        if self.name_cache.is_empty() {
            self.name_cache = vec![CachedName::default(); 1 << NAME_CACHE_BITS];
        }
    }

    /// The name cache's address (allocating the cache): a scan prefetches the slots of a
    /// slice's names before it stats them, so that they are in the CPU's caches when the
    /// slice is stored under the tree's lock, instead of each load missing there.
    pub fn name_cache_hint(&mut self) -> NameCacheHint {
        self.ensure_name_cache();
        NameCacheHint {
            base: self.name_cache.as_ptr() as usize,
        }
    }

    /// Stores a name in the heap, or reuses identical bytes stored recently.
    pub(super) fn store_name(&mut self, name: &[u8]) -> u32 {
        self.ensure_name_cache();
        if name.len() > usize::from(u8::MAX) {
            return self.arena.push_name(name) as u32;
        }
        let p = Parts::of(name);
        let slot = p.slot();
        let cached = self.name_cache[slot];
        // An empty slot matches only the empty name, which any offset holds. A short name is
        // all in the slot: the heap is read only for a longer one's rest.
        let end = cached.off as usize + name.len();
        if p.matches(cached)
            && (name.len() <= INLINE
                || self.arena.names().get(end + INLINE - name.len()..end) == name.get(INLINE..))
        {
            return cached.off;
        }
        let off = self.arena.push_name(name) as u32;
        self.name_cache[slot] = CachedName {
            off,
            meta: p.meta,
            rest: p.rest,
        };
        off
    }

    /// Reclaims the names of freed and renamed nodes once they are at least 64 KiB and half
    /// the heap (so a long-running watch that creates and deletes files stays flat, and a
    /// small tree's saved arena does not carry its churn: the cache's budget counts it): the
    /// live names are copied into a fresh heap, shared again, and every offset rewritten.
    /// O(n), amortised O(1) per freed name. Returns whether it compacted.
    pub fn maybe_compact_names(&mut self) -> bool {
        let len = self.arena.header().names_len;
        if self.dead_names < (64 << 10) || self.dead_names * 2 < len {
            return false;
        }
        self.compact_names();
        true
    }

    /// Before a save (which is O(n) already): reclaims the dead names once they are an
    /// eighth of the heap, so the file on disk carries at most that much of them.
    pub fn compact_names_for_save(&mut self) -> bool {
        let len = self.arena.header().names_len;
        if self.dead_names < (4 << 10) || self.dead_names * 8 < len {
            return false;
        }
        self.compact_names();
        true
    }

    /// Every live node but the root, in slot order, with its name's bytes where they lie in
    /// the heap (`None` for a name out of range, which `from_arena` refuses): one pass over
    /// the node slice, for what reads every name (search, the cache's check).
    pub fn live_names(&self) -> impl Iterator<Item = (NodeId, Option<&[u8]>)> + '_ {
        let names = self.arena.names();
        let root = self.root().index();
        self.arena
            .nodes()
            .iter()
            .enumerate()
            .filter(move |&(i, n)| self.holds_entry(i, n) && i != root)
            .map(move |(i, n)| {
                let off = n.name_off as usize;
                (
                    NodeId(i as u32),
                    names.get(off..off + usize::from(n.name_len)),
                )
            })
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
            if n.flags & flags::FREE != 0 {
                offsets.push(n.name_off);
                continue;
            }
            if i == root {
                // Its own copy, kept apart from the shared names (a tree rebuilt from rows
                // names its root by the whole path, which may hold a '/').
                let name = &old[n.name_off as usize..][..n.name_len as usize];
                offsets.push(heap.len() as u32);
                heap.extend_from_slice(name);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Parts::of` as plain copies into zeroed arrays would give it.
    fn reference(name: &[u8]) -> (u64, u32, u64) {
        let n = name.len();
        let k = n.min(8);
        let (mut first, mut last) = ([0u8; 8], [0u8; 8]);
        first[..k].copy_from_slice(&name[..k]);
        last[..k].copy_from_slice(&name[n - k..]);
        let x = u64::from_le_bytes(first)
            ^ u64::from_le_bytes(last).rotate_left(29)
            ^ ((n as u64) << 56);
        let mut head = [0u8; 16];
        head[0] = n as u8;
        let m = n.min(INLINE);
        head[1..=m].copy_from_slice(&name[..m]);
        let meta = u32::from_le_bytes(head[..4].try_into().expect("4"));
        let rest = u64::from_le_bytes(head[4..12].try_into().expect("8"));
        (x.wrapping_mul(0x9E37_79B9_7F4A_7C15), meta, rest)
    }

    #[test]
    fn a_names_parts_are_its_bytes_whatever_its_length() {
        let bytes: Vec<u8> = (0..255u32).map(|i| (i * 37 + 11) as u8 | 1).collect();
        for n in 0..=255 {
            for name in [&bytes[..n], &bytes[255 - n..]] {
                let p = Parts::of(name);
                assert_eq!((p.hash, p.meta, p.rest), reference(name), "length {n}");
            }
        }
    }
}
