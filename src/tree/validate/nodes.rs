//! Pass 1 of the check, over the nodes: each thread's run of chunks hashed, then every node's
//! ranges, name and kind checked while the chunk is in the cache, and its parent and next
//! sibling copied into the compact arrays that pass 2 reads.

use std::sync::atomic::{AtomicU64, Ordering};

use super::FREE_SLOT;
use crate::tree::arena::{CHUNK_BYTES, NODES_PER_CHUNK, chunk_hash};
use crate::tree::{DirRec, Node, Rare, flags};

/// Everything one thread learns of its range of nodes in the first pass.
#[derive(Default)]
pub(super) struct Part {
    /// (directory, its first child), for the second pass.
    pub(super) heads: Vec<(u32, u32)>,
    /// Nodes whose parent's kind is checked after the pass (a parent not below the node in
    /// this range).
    pub(super) late: Vec<u32>,
    /// Some parent is above its child: parents may form a cycle (checked from the root).
    pub(super) parent_up: bool,
    pub(super) live: u32,
    pub(super) bad_name: bool,
    /// Chunk hashes of the nodes, then (for the last part) of the directory records and the
    /// names.
    pub(super) hashes: Vec<u64>,
    pub(super) err: Option<&'static str>,
}

/// The read-only facts every thread checks against.
pub(super) struct Ctx<'a> {
    pub(super) nodes: &'a [Node],
    pub(super) dirs: &'a [DirRec],
    pub(super) names: &'a [u8],
    pub(super) count: u32,
    pub(super) root: usize,
    /// Byte ranges of the name heap where a '/' may be (the root's path and name).
    pub(super) skip: [(usize, usize); 2],
    /// The directory records some live directory uses: one record per directory (two
    /// sharing one would see each other's children, and freeing one frees the other's).
    pub(super) rec_used: Vec<AtomicU64>,
    pub(super) rares: &'a [Rare],
    /// The rare records some live node uses: one node per record, for the same reasons.
    pub(super) rare_used: Vec<AtomicU64>,
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

/// Pass 1 over nodes `lo..hi`, one chunk at a time: its hash (if asked), then ranges, names,
/// the live count, each node's parent and next sibling into the compact arrays (`parent_of`
/// and `next_of` hold this range, `live_dir` its words), the live directories into the bit
/// set, each directory's first child. A parent below its child within this range is checked
/// against the bit set at once; the others after the pass. `tail`: also the directory records
/// and the names.
#[expect(clippy::too_many_arguments, reason = "one thread's share of the pass")]
pub(super) fn first_pass(
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
