//! Validation of an arena read from the cache: everything a later access relies on, so that
//! no access can panic or loop on a file whose checksum happens to pass.
//!
//! A start from the cache is this check and nothing else of size, so it is built for speed:
//! the nodes are read once, front to back, on every core, each thread hashing its chunks of
//! the file (see `Arena::compute_body_checksum`) and checking them while they are in its
//! cache; what is looked up at random afterwards (parents, sibling links) lives in compact
//! arrays of 4 bytes per node, not in the 28-byte nodes (a walk of the child lists through
//! the nodes was most of a start's time: cache misses).

use std::sync::atomic::{AtomicU64, Ordering};

use super::arena::{CHUNK_BYTES, NODES_PER_CHUNK, chunk_hash};
use super::{Arena, DirRec, Node, Rare, flags};
use crate::threads::spawn_or_run;

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

/// Everything one thread learns of its range of nodes in the first pass.
#[derive(Default)]
struct Part {
    /// (directory, its first child), for the second pass.
    heads: Vec<(u32, u32)>,
    /// Nodes whose parent's kind is checked after the pass (a parent not below the node in
    /// this range).
    late: Vec<u32>,
    /// Some parent is above its child: parents may form a cycle (checked from the root).
    parent_up: bool,
    live: u32,
    bad_name: bool,
    /// Chunk hashes of the nodes, then (for the last part) of the directory records and the
    /// names.
    hashes: Vec<u64>,
    err: Option<&'static str>,
}

/// The read-only facts every thread checks against.
struct Ctx<'a> {
    nodes: &'a [Node],
    dirs: &'a [DirRec],
    names: &'a [u8],
    count: u32,
    root: usize,
    /// Byte ranges of the name heap where a '/' may be (the root's path and name).
    skip: [(usize, usize); 2],
    /// The directory records some live directory uses: one record per directory (two
    /// sharing one would see each other's children, and freeing one frees the other's).
    rec_used: Vec<AtomicU64>,
    rares: &'a [Rare],
    /// The rare records some live node uses: one node per record, for the same reasons.
    rare_used: Vec<AtomicU64>,
}

impl Ctx<'_> {
    fn in_nodes(&self, i: u32) -> bool {
        i == u32::MAX || i < self.count
    }
}

/// Does this name heap slice hold a separator ('/' or NUL)? One vectorized sweep.
fn has_sep(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .fold(0u8, |b, &c| b | u8::from(c == b'/') | u8::from(c == 0))
        != 0
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

/// Pass 1 over nodes `lo..hi`, one chunk at a time: its hash (if asked), then ranges, names,
/// the live count, each node's parent and next sibling into the compact arrays (`parent_of`
/// and `next_of` hold this range, `live_dir` its words), the live directories into the bit
/// set, each directory's first child. A parent below its child within this range is checked
/// against the bit set at once; the others after the pass. `tail`: also the directory records
/// and the names.
#[expect(clippy::too_many_arguments, reason = "one thread's share of the pass")]
fn first_pass(
    ctx: &Ctx<'_>,
    lo: usize,
    hi: usize,
    parent_of: &mut [u32],
    next_of: &mut [u32],
    live_dir: &mut [u64],
    hash: bool,
    tail: bool,
) -> Part {
    let mut part = Part::default();
    let word0 = lo / 64;
    let mut chunk = lo;
    while chunk < hi {
        let end = (chunk + NODES_PER_CHUNK).min(hi);
        let block = &ctx.nodes[chunk..end];
        if hash {
            part.hashes.push(chunk_hash(bytemuck::cast_slice(block)));
        }
        for (k, n) in block.iter().enumerate() {
            let i = chunk + k;
            if let Err(e) = node(ctx, &mut part, i, n, lo, live_dir, word0) {
                part.err = Some(e);
                return part;
            }
            let j = i - lo;
            if n.flags & flags::FREE != 0 {
                // A free slot's next is the free list's (walked after the pass).
                parent_of[j] = FREE_SLOT;
                next_of[j] = n.next_sibling;
            } else {
                parent_of[j] = n.parent;
                next_of[j] = n.next_sibling;
            }
        }
        chunk = end;
    }
    if tail {
        let dirs: &[u8] = bytemuck::cast_slice(ctx.dirs);
        let rares: &[u8] = bytemuck::cast_slice(ctx.rares);
        if hash {
            part.hashes.extend(dirs.chunks(CHUNK_BYTES).map(chunk_hash));
            part.hashes
                .extend(rares.chunks(CHUNK_BYTES).map(chunk_hash));
        }
        let mut from = 0;
        let names = ctx.names;
        let sweep = |a: usize, b: usize, part: &mut Part| {
            part.bad_name |= has_sep(&names[a..b]);
        };
        for &(start, end) in &ctx.skip {
            if start > from {
                sweep(from, start, &mut part);
            }
            from = from.max(end);
        }
        sweep(from.min(names.len()), names.len(), &mut part);
        if hash {
            part.hashes
                .extend(names.chunks(CHUNK_BYTES).map(chunk_hash));
        }
    }
    part
}

/// Pass 1 for one node.
fn node(
    ctx: &Ctx<'_>,
    part: &mut Part,
    i: usize,
    n: &Node,
    lo: usize,
    live_dir: &mut [u64],
    word0: usize,
) -> Result<(), &'static str> {
    if !ctx.in_nodes(n.next_sibling) || !ctx.in_nodes(n.parent) {
        return Err("link out of range");
    }
    if n.flags & flags::FREE != 0 {
        return Ok(());
    }
    part.live += 1;
    if n.flags & flags::HARDLINK_DUP != 0
        && (n.is_dir()
            || n.rare_index()
                .and_then(|r| ctx.rares.get(r as usize))
                .is_none_or(|r| r.nlink < 2))
    {
        // Only a name of an inode with other names can be counted elsewhere; on anything
        // else the flag would hide its bytes from every total for good (no catch-up looks
        // at it again while the entry itself is unchanged).
        return Err("an entry counted elsewhere that is no hard link");
    }
    if let Some(r) = n.rare_index() {
        if r as usize >= ctx.rares.len() {
            return Err("rare record out of range");
        }
        let bit = 1u64 << (r % 64);
        if ctx.rare_used[r as usize / 64].fetch_or(bit, Ordering::Relaxed) & bit != 0 {
            return Err("a rare record used twice");
        }
    }
    if n.is_dir() {
        let Some(d) = ctx.dirs.get(n.aux as usize) else {
            return Err("directory record out of range");
        };
        if !ctx.in_nodes(d.first_child) {
            return Err("child out of range");
        }
        let bit = 1u64 << (n.aux % 64);
        if ctx.rec_used[n.aux as usize / 64].fetch_or(bit, Ordering::Relaxed) & bit != 0 {
            return Err("a directory record used twice");
        }
        live_dir[i / 64 - word0] |= 1 << (i % 64);
        if d.first_child != u32::MAX {
            part.heads.push((i as u32, d.first_child));
        }
    }
    if i == ctx.root {
        return Ok(());
    }
    let start = n.name_off as usize;
    let Some(name) = ctx.names.get(start..start + usize::from(n.name_len)) else {
        return Err("name out of range");
    };
    part.bad_name |= name.is_empty() || name == b"." || name == b"..";
    if ctx
        .skip
        .iter()
        .any(|&(a, b)| start < b && start + name.len() > a)
    {
        part.bad_name |= has_sep(name);
    }
    let p = n.parent as usize;
    if p >= i {
        part.parent_up = true;
    }
    if (lo..i).contains(&p) {
        if live_dir[p / 64 - word0] & (1 << (p % 64)) == 0 {
            return Err("a parent that is not a live directory");
        }
    } else {
        part.late.push(i as u32);
    }
    Ok(())
}

/// What one thread of pass 2 found.
struct Edges {
    count: u64,
    /// Every sibling link goes to a lower (`down`) or higher (`up`) index.
    down: bool,
    up: bool,
    /// The nodes some edge of this thread leads to.
    seen: Vec<u64>,
}

/// Pass 2 over the sibling links of nodes `lo..hi` and the first-child links `heads`.
fn second_pass(
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
fn check_free_lists(
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
