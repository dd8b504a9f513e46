//! Validation of an arena read from the cache: everything a later access relies on, so that
//! no access can panic or loop on a file whose checksum happens to pass.
//!
//! A start from the cache is this check and nothing else of size, so it is built for speed:
//! the nodes are read once, front to back, on every core, each thread hashing its chunks of
//! the file (see `Arena::compute_body_checksum`) and checking them while they are in its
//! cache; what is looked up at random afterwards (parents, sibling links) lives in compact
//! arrays of 4 bytes per node, not in the 28-byte nodes (a walk of the child lists through
//! the nodes was most of a start's time: cache misses).
//!
//! Pass 1 is in `nodes`; pass 2, the free lists and the chains of parents in `links`.

mod links;
mod nodes;

use std::sync::atomic::AtomicU64;

use super::arena::NODES_PER_CHUNK;
use super::{Arena, Node, flags};
use crate::threads::spawn_or_run;
use links::{check_free_lists, check_parents_reach_root, second_pass};
use nodes::{Ctx, Part, first_pass};

/// In the compact parent array: a free slot (`u32::MAX` is the root's parent).
const FREE_SLOT: u32 = u32::MAX - 1;

/// Below this many nodes one thread does it all (a thread costs more than it saves).
const PARALLEL_FROM: usize = 4 * NODES_PER_CHUNK;

/// What a check of an arena found.
pub(super) struct Checked {
    /// The tree's structure: every index in range, a tree, plain names.
    pub structure: Result<(), &'static str>,
    /// The body matches its checksum (`None`: not asked).
    pub intact: Option<bool>,
}

/// Checks the structure of `arena` (see `check`), without its checksum.
pub(super) fn arena(arena: &Arena) -> Result<(), &'static str> {
    check(arena, false).structure
}

/// Checks that every index in the arena is in range and that the tree is a tree (no cycles,
/// every live node listed once, under its own parent), so that no later access can panic or
/// loop; that each directory has a record of its own; that the free lists hold only free
/// slots and unused records and end (an allocation must never hand out a live one). Every
/// name is checked to be one plain component (not empty, not `.` or `..`, no
/// `/` or NUL): a forged `..` must not walk anything out of the root. An entry counted
/// elsewhere must be a hard link. With `body`, the body checksum is checked in the same pass.
/// O(n), on every core.
pub(super) fn check(arena: &Arena, body: bool) -> Checked {
    let threads = if (arena.header().node_count as usize) < PARALLEL_FROM {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    };
    let mut hashes = Vec::new();
    let structure = run(arena, threads, body.then_some(&mut hashes));
    let intact = body.then(|| arena.header().body_checksum == Arena::combine_chunk_hashes(&hashes));
    Checked { structure, intact }
}

#[expect(
    clippy::too_many_lines,
    reason = "the header checks, the two passes and their merges share their locals"
)]
fn run(arena: &Arena, threads: usize, hashes: Option<&mut Vec<u64>>) -> Result<(), &'static str> {
    let h = arena.header();
    let count = h.node_count;
    let names = arena.names();
    let nodes = arena.nodes();
    let dirs = arena.dirs();
    let rares = arena.rares();
    let hash = hashes.is_some();
    if h.root >= count || count >= FREE_SLOT {
        return Err("root out of range");
    }
    if h.root_path_off + u64::from(h.root_path_len) > names.len() as u64 {
        return Err("root path out of range");
    }
    let in_nodes = |i: u32| i == u32::MAX || i < count;
    if !in_nodes(h.free_node)
        || !(h.free_dir == u32::MAX || h.free_dir < h.dir_count)
        || !(h.free_rare == u32::MAX || h.free_rare < h.rare_count)
    {
        return Err("free list out of range");
    }
    let root_idx = h.root as usize;
    let root = &nodes[root_idx];
    if root.flags & flags::FREE != 0
        || !root.is_dir()
        || root.parent != u32::MAX
        || root.next_sibling != u32::MAX
    {
        return Err("the root is not a directory");
    }
    // Names live back to back in the heap: outside the root's path, the heap holds no '/'
    // and no NUL at all, checked in one sweep; then only a name that overlaps the root's
    // path needs its own bytes looked at. The root's path, and the root node's own name (a
    // copy of the path when the tree was rebuilt from rows), are the only places a '/' may be.
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
    let ctx = Ctx {
        nodes,
        dirs,
        names,
        count,
        root: root_idx,
        skip,
        rec_used: (0..dirs.len().div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect(),
        rares,
        rare_used: (0..rares.len().div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect(),
    };

    // Pass 1: each thread takes a run of whole chunks of nodes; the last also hashes the
    // directory records and sweeps and hashes the names (worth about half as much per byte
    // as nodes), so it takes fewer nodes.
    let len = count as usize;
    let chunks = len.div_ceil(NODES_PER_CHUNK);
    let extra = (std::mem::size_of_val(dirs) + std::mem::size_of_val(rares) + names.len())
        / (2 * NODES_PER_CHUNK * std::mem::size_of::<Node>());
    let share = (chunks + extra).div_ceil(threads);
    let mut bounds = Vec::with_capacity(threads + 1);
    for t in 0..threads {
        bounds.push((t * share).min(chunks) * NODES_PER_CHUNK);
    }
    bounds.push(len);
    let mut bounds: Vec<usize> = bounds.into_iter().map(|b| b.min(len)).collect();
    bounds.dedup();
    let mut parent_of = vec![0u32; len];
    let mut next_of = vec![0u32; len];
    let mut live_dir = vec![0u64; len.div_ceil(64)];
    let parts: Vec<Part> = {
        // Disjoint slices of the compact arrays for each range (ranges start at multiples of
        // 64 nodes, so the bit set splits on word boundaries).
        let mut jobs = Vec::new();
        let (mut p_rest, mut n_rest, mut d_rest) =
            (&mut parent_of[..], &mut next_of[..], &mut live_dir[..]);
        for w in bounds.windows(2) {
            let (lo, hi) = (w[0], w[1]);
            let (p, pr) = std::mem::take(&mut p_rest).split_at_mut(hi - lo);
            let (n, nr) = std::mem::take(&mut n_rest).split_at_mut(hi - lo);
            let words = hi.div_ceil(64) - lo / 64;
            let (d, dr) = std::mem::take(&mut d_rest).split_at_mut(words);
            (p_rest, n_rest, d_rest) = (pr, nr, dr);
            jobs.push((lo, hi, p, n, d));
        }
        let last = jobs.len() - 1;
        std::thread::scope(|s| {
            let ctx = &ctx;
            let mut jobs = jobs.into_iter().enumerate();
            let (_, first) = jobs.next().expect("at least one range");
            let handles: Vec<_> = jobs
                .map(|(t, (lo, hi, p, n, d))| {
                    spawn_or_run(s, "dtui-check", move || {
                        first_pass(ctx, lo, hi, p, n, d, hash, t == last)
                    })
                })
                .collect();
            let (lo, hi, p, n, d) = first;
            let mut parts = vec![first_pass(ctx, lo, hi, p, n, d, hash, last == 0)];
            for h in handles {
                parts.push(h.join().unwrap_or_else(|_| Part {
                    err: Some("a check thread failed"),
                    ..Part::default()
                }));
            }
            parts
        })
    };
    let mut live = 0u32;
    let mut parent_up = false;
    let mut heads = Vec::new();
    let mut late = Vec::new();
    let mut all_hashes = Vec::new();
    for part in parts {
        if let Some(e) = part.err {
            return Err(e);
        }
        if part.bad_name {
            return Err("a name that is not one plain component");
        }
        live += part.live;
        parent_up |= part.parent_up;
        heads.extend(part.heads);
        late.extend(part.late);
        all_hashes.extend(part.hashes);
    }
    if let Some(out) = hashes {
        *out = all_hashes;
    }
    if live != h.live_nodes {
        return Err("live count mismatch");
    }
    let rec_used: Vec<u64> = ctx
        .rec_used
        .into_iter()
        .map(AtomicU64::into_inner)
        .collect();
    let rare_used: Vec<u64> = ctx
        .rare_used
        .into_iter()
        .map(AtomicU64::into_inner)
        .collect();
    check_free_lists(arena, &parent_of, &next_of, rec_used, rare_used)?;
    let bit = |i: usize| live_dir[i / 64] & (1 << (i % 64)) != 0;
    for &i in &late {
        let p = parent_of[i as usize];
        if p == u32::MAX {
            return Err("a live node without a parent");
        }
        if !bit(p as usize) {
            return Err("a parent that is not a live directory");
        }
    }

    // Pass 2, over the links: every edge of a child list (a directory's first child, a
    // node's next sibling) leads to a live node under the same parent, and no node is led to
    // twice. With live - 1 edges in all, every live node but the root (which no edge can
    // reach: its parent is none) is led to exactly once. Each thread marks what it reaches in
    // a bit set of its own; the sets are then merged, an overlap being a node led to twice.
    let edge_bounds: Vec<usize> = (0..=threads).map(|t| t * len / threads).collect();
    let head_bounds: Vec<usize> = (0..=threads).map(|t| t * heads.len() / threads).collect();
    let edges = std::thread::scope(|s| {
        let (parent_of, next_of, heads) = (&parent_of, &next_of, &heads);
        let handles: Vec<_> = (1..threads)
            .map(|t| {
                let (lo, hi) = (edge_bounds[t], edge_bounds[t + 1]);
                let hs = &heads[head_bounds[t]..head_bounds[t + 1]];
                spawn_or_run(s, "dtui-check", move || {
                    second_pass(parent_of, next_of, hs, lo, hi)
                })
            })
            .collect();
        let hs = &heads[head_bounds[0]..head_bounds[1]];
        let mut out = vec![second_pass(
            parent_of,
            next_of,
            hs,
            edge_bounds[0],
            edge_bounds[1],
        )];
        for h in handles {
            out.push(h.join().unwrap_or(Err("a check thread failed")));
        }
        out
    });
    let (mut total, mut down, mut up) = (0u64, true, true);
    let mut seen: Option<Vec<u64>> = None;
    for e in edges {
        let e = e?;
        total += e.count;
        down &= e.down;
        up &= e.up;
        match &mut seen {
            None => seen = Some(e.seen),
            Some(all) => {
                for (a, b) in all.iter_mut().zip(&e.seen) {
                    if *a & b != 0 {
                        return Err("a child linked twice or under the wrong parent");
                    }
                    *a |= b;
                }
            }
        }
    }
    if total + 1 != u64::from(live) {
        return Err("a node not linked under its parent");
    }
    // Each node is led to once, so the lists are paths from the heads, plus perhaps cycles
    // that no head leads into. Sibling links that all go one way close no cycle; otherwise
    // walk the lists (in the compact array) and count.
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
    if parent_up {
        check_parents_reach_root(&parent_of, h.root)?;
    }
    Ok(())
}
