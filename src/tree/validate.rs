//! Validation of an arena read from the cache: everything a later access relies on, so that
//! no access can panic or loop on a file whose checksum happens to pass.

use super::{Arena, Kind, flags};

/// In the compact parent array: a free slot (`u32::MAX` is the root's parent).
const FREE_SLOT: u32 = u32::MAX - 1;

/// Checks that every index in a mapped arena is in range and that the tree is a tree
/// (no cycles, every live node listed once, under its own parent), so that no later
/// access can panic or loop on a file whose checksums happen to pass. Every name is
/// checked to be one plain component (not empty, not `.` or `..`, no `/` or NUL): a
/// forged `..` must not walk anything out of the root. O(n), and read in memory order:
/// the nodes are read once, front to back; what is looked up at random (parents, sibling
/// links) lives in compact arrays of a few bytes per node, not in the 56-byte nodes (a
/// walk of the child lists through the nodes was most of a start's time: cache misses).
#[expect(
    clippy::too_many_lines,
    reason = "one pass over the nodes and one over their links, sharing their locals"
)]
pub(super) fn arena(arena: &Arena) -> Result<(), &'static str> {
    let bit = |set: &[u64], i: usize| set[i / 64] & (1 << (i % 64)) != 0;
    let h = arena.header();
    let count = h.node_count;
    let n_dirs = h.dir_count;
    let names = arena.names();
    let nodes = arena.nodes();
    let dirs = arena.dirs();
    let in_nodes = |i: u32| i == u32::MAX || i < count;
    if h.root >= count || count >= FREE_SLOT {
        return Err("root out of range");
    }
    if h.root_path_off + u64::from(h.root_path_len) > names.len() as u64 {
        return Err("root path out of range");
    }
    if !in_nodes(h.free_node) || !(h.free_dir == u32::MAX || h.free_dir < n_dirs) {
        return Err("free list out of range");
    }
    let root_idx = h.root as usize;
    let root = &nodes[root_idx];
    if root.flags & flags::FREE != 0
        || root.kind != Kind::Dir as u8
        || root.parent != u32::MAX
        || root.next_sibling != u32::MAX
    {
        return Err("the root is not a directory");
    }
    // Names live back to back in the heap: outside the root's path, the heap holds no '/'
    // and no NUL at all, checked once in one vectorized sweep; then only a name that
    // overlaps the root's path needs its own bytes looked at.
    // The root's path, and the root node's own name (a copy of the path when the tree
    // was rebuilt from rows), are the only places a '/' may be.
    let root_name = (
        root.name_off as usize,
        root.name_off as usize + usize::from(root.name_len),
    );
    if root_name.1 > names.len() {
        return Err("name out of range");
    }
    let mut skip = [
        (
            h.root_path_off as usize,
            h.root_path_off as usize + h.root_path_len as usize,
        ),
        root_name,
    ];
    skip.sort_unstable();
    let sep = |bytes: &[u8]| {
        bytes
            .iter()
            .fold(0u8, |b, &c| b | u8::from(c == b'/') | u8::from(c == 0))
    };
    let mut bad = 0u8;
    let mut from = 0;
    for &(start, end) in &skip {
        if start > from {
            bad |= sep(&names[from..start]);
        }
        from = from.max(end);
    }
    bad |= sep(&names[from.min(names.len())..]);
    if bad != 0 {
        return Err("a name that is not one plain component");
    }
    // Pass 1, over the nodes in memory order: ranges, names, the live count, each node's
    // parent and next sibling into the compact arrays, the live directories into a bit
    // set, each directory's first child. A parent below its child (as a scan allocates
    // them) is checked against the bit set at once; the others after the pass.
    let len = count as usize;
    let mut parent_of: Vec<u32> = Vec::with_capacity(len);
    let mut next_of: Vec<u32> = Vec::with_capacity(len);
    let mut live_dir = vec![0u64; len.div_ceil(64)];
    let mut heads: Vec<(u32, u32)> = Vec::new();
    let mut late: Vec<u32> = Vec::new();
    let mut live = 0u32;
    for (i, n) in nodes.iter().enumerate() {
        if !in_nodes(n.next_sibling) || !in_nodes(n.parent) {
            return Err("link out of range");
        }
        if n.flags & flags::FREE != 0 {
            parent_of.push(FREE_SLOT);
            next_of.push(u32::MAX);
            continue;
        }
        live += 1;
        parent_of.push(n.parent);
        next_of.push(n.next_sibling);
        if n.kind == Kind::Dir as u8 {
            let Some(d) = dirs.get(n.aux as usize) else {
                return Err("directory record out of range");
            };
            if !in_nodes(d.first_child) {
                return Err("child out of range");
            }
            live_dir[i / 64] |= 1 << (i % 64);
            if d.first_child != u32::MAX {
                heads.push((i as u32, d.first_child));
            }
        }
        if i == root_idx {
            continue;
        }
        let start = n.name_off as usize;
        let Some(name) = names.get(start..start + usize::from(n.name_len)) else {
            return Err("name out of range");
        };
        bad |= u8::from(name.is_empty() || name == b"." || name == b"..");
        if skip
            .iter()
            .any(|&(a, b)| start < b && start + name.len() > a)
        {
            bad |= sep(name);
        }
        let p = n.parent as usize;
        if p < i {
            if !bit(&live_dir, p) {
                return Err("a parent that is not a live directory");
            }
        } else {
            late.push(i as u32);
        }
    }
    if bad != 0 {
        return Err("a name that is not one plain component");
    }
    if live != h.live_nodes {
        return Err("live count mismatch");
    }
    for &i in &late {
        let p = parent_of[i as usize];
        if p == u32::MAX {
            return Err("a live node without a parent");
        }
        if !bit(&live_dir, p as usize) {
            return Err("a parent that is not a live directory");
        }
    }
    // Pass 2, over the links: every edge of a child list (a directory's first child, a
    // node's next sibling) leads to a live node under the same parent, and no node is led
    // to twice. With live - 1 edges in all, every live node but the root (which no edge
    // can reach: its parent is none) is led to exactly once.
    let mut seen = vec![0u64; len.div_ceil(64)];
    let mut mark = |s: u32| {
        let (w, b) = (s as usize / 64, 1u64 << (s % 64));
        let fresh = seen[w] & b == 0;
        seen[w] |= b;
        fresh
    };
    let mut edges = 0u64;
    for &(d, f) in &heads {
        if parent_of[f as usize] != d || !mark(f) {
            return Err("a child linked twice or under the wrong parent");
        }
        edges += 1;
    }
    let (mut down, mut up) = (true, true);
    for (c, (&p, &s)) in parent_of.iter().zip(&next_of).enumerate() {
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
    if edges + 1 != u64::from(live) {
        return Err("a node not linked under its parent");
    }
    // Each node is led to once, so the lists are paths from the heads, plus perhaps
    // cycles that no head leads into. Sibling links that all go one way close no cycle;
    // otherwise walk the lists (in the compact array) and count.
    if !(down || up) {
        let mut listed = 0u64;
        for &(_, f) in &heads {
            let mut c = f;
            while c != u32::MAX {
                listed += 1;
                if listed >= u64::from(live) {
                    return Err("a sibling cycle");
                }
                c = next_of[c as usize];
            }
        }
        if listed + 1 != u64::from(live) {
            return Err("a sibling cycle");
        }
    }
    // No cycle of parents (one not reachable from the root). Parents below their children
    // cannot form one; otherwise follow each chain once.
    if !late.is_empty() {
        check_parents_reach_root(&parent_of, h.root)?;
    }
    Ok(())
}

/// Every live node's chain of parents ends at the root: O(n), each node resolved once.
fn check_parents_reach_root(parent_of: &[u32], root: u32) -> Result<(), &'static str> {
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
