//! The name heap: repeated names shared through a small cache of recent ones, and the heap
//! compacted once freed names are a good part of it.

use std::collections::HashMap;

use super::{NodeId, Tree, flags};

/// Slots of the name cache (a power of two): on the benchmark tree 2^15 (256 KiB) keep 0.5
/// bytes of names per entry more than 2^13 did, and cost 0.4 more.
const NAME_CACHE_BITS: u32 = 15;

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

/// The name cache's slot of a name's hash, and the key its entry must hold: the length, then
/// 24 bits of the hash, above the 32-bit offset (an empty name, length 0, never hits).
fn slot_and_key(name: &[u8], h: u64) -> (usize, u64) {
    let slot = (h >> (64 - NAME_CACHE_BITS)) as usize;
    let key = ((name.len() as u64) << 32) | (((h >> 16) & 0xff_ffff) << 40);
    (slot, key)
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
        let (slot, _) = slot_and_key(name, name_hash(name));
        let addr = self.base.wrapping_add(slot * 8);
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
            self.name_cache = vec![0; 1 << NAME_CACHE_BITS];
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

    /// Reads, ahead of `store_name`, the cache slots of names about to be stored and the
    /// stored names they hold. Between two slices of a scan the kernel's stats evict the
    /// table from the CPU's caches, and each `store_name` then waited for its slot alone
    /// (94 % of its time on that one load, 3.6 % of a scan's samples with the compare that
    /// follows); read in a loop of independent loads, the misses overlap.
    pub(super) fn warm_names<'n>(&mut self, names: impl Iterator<Item = &'n [u8]>) {
        self.ensure_name_cache();
        let heap = self.arena.names();
        let mut seen = 0u64;
        for name in names {
            let (slot, key) = slot_and_key(name, name_hash(name));
            let cached = self.name_cache[slot];
            if cached & !0xffff_ffff == key {
                let off = (cached & 0xffff_ffff) as usize;
                seen = seen.wrapping_add(u64::from(heap.get(off).copied().unwrap_or(0)));
            }
        }
        // What was read must count for something, or the loads are optimized away.
        std::hint::black_box(seen);
    }

    /// Stores a name in the heap, or reuses identical bytes stored recently.
    pub(super) fn store_name(&mut self, name: &[u8]) -> u32 {
        self.ensure_name_cache();
        let (slot, key) = slot_and_key(name, name_hash(name));
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
