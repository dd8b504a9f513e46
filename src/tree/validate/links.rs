//! Pass 2 of the check, over the compact arrays: the child lists (every live node but the root
//! led to once, by its own parent's list), then the free lists and the chains of parents.

use super::FREE_SLOT;
use crate::tree::Arena;

/// What one thread of pass 2 found.
pub(super) struct Edges {
    pub(super) count: u64,
    /// Every sibling link goes to a lower (`down`) or higher (`up`) index.
    pub(super) down: bool,
    pub(super) up: bool,
    /// The nodes some edge of this thread leads to.
    pub(super) seen: Vec<u64>,
}

/// Pass 2 over the sibling links of nodes `lo..hi` and the first-child links `heads`.
pub(super) fn second_pass(
    parent_of: &[u32],
    next_of: &[u32],
    heads: &[(u32, u32)],
    lo: usize,
    hi: usize,
) -> Result<Edges, &'static str> {
    let mut seen = vec![0u64; parent_of.len().div_ceil(64)];
    let mut mark = |s: u32| {
        let (w, b) = (s as usize / 64, 1u64 << (s % 64));
        let fresh = seen[w] & b == 0;
        seen[w] |= b;
        fresh
    };
    let mut edges = 0u64;
    for &(d, f) in heads {
        if parent_of[f as usize] != d || !mark(f) {
            return Err("a child linked twice or under the wrong parent");
        }
        edges += 1;
    }
    let (mut down, mut up) = (true, true);
    for c in lo..hi {
        let (p, s) = (parent_of[c], next_of[c]);
        if p == FREE_SLOT || s == u32::MAX {
            continue;
        }
        if parent_of[s as usize] != p || !mark(s) {
            return Err("a child linked twice or under the wrong parent");
        }
        edges += 1;
        down &= (s as usize) < c;
        up &= (s as usize) > c;
    }
    Ok(Edges {
        count: edges,
        down,
        up,
        seen,
    })
}

/// The free lists hold only free slots and unused directory and rare records, and end: an allocation
/// from them must never hand out a live node or record. O(free slots + free records), both
/// walked in the compact arrays or the small record bit set.
pub(super) fn check_free_lists(
    arena: &Arena,
    parent_of: &[u32],
    next_of: &[u32],
    mut rec_used: Vec<u64>,
    mut rare_used: Vec<u64>,
) -> Result<(), &'static str> {
    let h = arena.header();
    let free_slots = u64::from(h.node_count - h.live_nodes);
    let mut c = h.free_node;
    let mut steps = 0u64;
    while c != u32::MAX {
        // In range: every next link was checked in pass 1.
        if parent_of[c as usize] != FREE_SLOT {
            return Err("the free list reaches a live node");
        }
        steps += 1;
        if steps > free_slots {
            return Err("the free list loops");
        }
        c = next_of[c as usize];
    }
    let dirs = arena.dirs();
    let mut c = h.free_dir;
    while c != u32::MAX {
        let Some(d) = dirs.get(c as usize) else {
            return Err("free list out of range");
        };
        // Marked as used as it is walked, so a ring comes back to a marked record.
        let (w, bit) = (c as usize / 64, 1u64 << (c % 64));
        if rec_used[w] & bit != 0 {
            return Err("the free record list reaches a used record or loops");
        }
        rec_used[w] |= bit;
        c = d.first_child;
    }
    let rares = arena.rares();
    let mut c = h.free_rare;
    while c != u32::MAX {
        let Some(r) = rares.get(c as usize) else {
            return Err("free list out of range");
        };
        let (w, bit) = (c as usize / 64, 1u64 << (c % 64));
        if rare_used[w] & bit != 0 {
            return Err("the free rare list reaches a used record or loops");
        }
        rare_used[w] |= bit;
        c = r.link;
    }
    Ok(())
}

/// Every live node's chain of parents ends at the root: O(n), each node resolved once.
pub(super) fn check_parents_reach_root(parent_of: &[u32], root: u32) -> Result<(), &'static str> {
    const UNKNOWN: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![UNKNOWN; parent_of.len()];
    state[root as usize] = DONE;
    let mut path = Vec::new();
    for i in 0..parent_of.len() {
        if parent_of[i] == FREE_SLOT || state[i] == DONE {
            continue;
        }
        let mut cur = i;
        while state[cur] == UNKNOWN {
            state[cur] = ON_PATH;
            path.push(cur);
            cur = parent_of[cur] as usize;
        }
        if state[cur] == ON_PATH {
            return Err("a cycle");
        }
        for p in path.drain(..) {
            state[p] = DONE;
        }
    }
    Ok(())
}
