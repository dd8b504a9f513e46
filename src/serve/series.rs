//! Which directories a root exports: every directory down to a depth, and the largest
//! anywhere. Chosen off the scrape path (one pass over the tree's nodes, under its read lock),
//! held by `NodeRef` with each one's label already escaped, so that a scrape only reads the
//! totals of the directories chosen: O(series), never O(tree).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::os::unix::ffi::OsStringExt;
use std::time::Instant;

use super::metrics::push_label_value;
use crate::tree::{Kind, NodeId, NodeRef, Tree};

/// How many directories to export (`--metrics-depth`, `--metrics-top`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    /// Every directory at most this many levels below the root (the root is level 0).
    pub depth: usize,
    /// And the largest directories by disk usage, anywhere.
    pub top: usize,
}

impl Default for Selection {
    fn default() -> Selection {
        Selection { depth: 2, top: 50 }
    }
}

/// One exported directory.
#[derive(Debug, Clone)]
pub struct Series {
    pub node: NodeRef,
    /// `root="...",path="..."`, escaped for the exposition format.
    pub labels: String,
}

/// The directories one root exports, as of `built`.
#[derive(Debug, Clone)]
pub struct SeriesSet {
    /// Sorted by path, so a scrape lists them in the same order every time.
    pub series: Vec<Series>,
    pub built: Instant,
}

impl SeriesSet {
    #[must_use]
    pub fn empty() -> SeriesSet {
        SeriesSet {
            series: Vec::new(),
            built: Instant::now(),
        }
    }
}

/// Chooses the directories of `tree` to export: every directory within `sel.depth` levels of
/// the root, and the `sel.top` largest by disk usage anywhere. `root_label` is the escaped
/// `root="..."` pair every series starts with. O(entries): one pass over the nodes, plus the
/// children of the directories above the depth limit.
#[must_use]
pub fn choose(tree: &Tree, sel: Selection, root_label: &str) -> SeriesSet {
    let mut chosen: HashSet<NodeId> = HashSet::new();
    let mut level = vec![tree.root()];
    chosen.insert(tree.root());
    for _ in 0..sel.depth {
        let mut next = Vec::new();
        for &dir in &level {
            next.extend(tree.children(dir).filter(|&c| tree.kind(c) == Kind::Dir));
        }
        chosen.extend(next.iter().copied());
        level = next;
    }
    if sel.top > 0 {
        // A min-heap of the `top` largest seen so far: its smallest is the one to beat.
        let mut heap: BinaryHeap<Reverse<(u64, u32)>> = BinaryHeap::with_capacity(sel.top + 1);
        for id in tree.live_ids() {
            if tree.kind(id) != Kind::Dir {
                continue;
            }
            let disk = tree.totals(id).disk;
            if heap.len() < sel.top {
                heap.push(Reverse((disk, id.0)));
            } else if heap.peek().is_some_and(|Reverse((least, _))| disk > *least) {
                heap.pop();
                heap.push(Reverse((disk, id.0)));
            }
        }
        chosen.extend(heap.into_iter().map(|Reverse((_, id))| NodeId(id)));
    }
    let mut series: Vec<(Vec<u8>, Series)> = chosen
        .into_iter()
        .map(|id| {
            let path = tree.path_of(id).into_os_string().into_vec();
            let mut labels = String::with_capacity(root_label.len() + path.len() + 10);
            labels.push_str(root_label);
            labels.push_str(",path=\"");
            push_label_value(&mut labels, &path);
            labels.push('"');
            let node = tree.node_ref(id);
            (path, Series { node, labels })
        })
        .collect();
    series.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    SeriesSet {
        series: series.into_iter().map(|(_, s)| s).collect(),
        built: Instant::now(),
    }
}
