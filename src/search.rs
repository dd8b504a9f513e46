//! Name search over the whole tree: a pattern compiled once into a `Matcher` (a substring or
//! a glob, smart case, on bytes: `matcher`), then one pass over the arena's node slice
//! matching each name's bytes where they lie in the name heap, with no allocation per entry.
//!
//! `Results` keeps what a search found by handle (`NodeRef`), so a slot freed and reused never
//! shows another entry, ranks it largest first, and follows each `TreeDelta` by re-matching
//! only the nodes it touched.

mod matcher;

use std::collections::HashSet;

pub use matcher::{Matcher, SearchError};

use crate::engine::TreeDelta;
use crate::tree::{NodeId, NodeRef, Tree};

/// At most this many results are ranked and kept for the list; the count says how many matched.
pub const MAX_SHOWN: usize = 10_000;

/// Every live entry below the root whose name matches, in slot order, appended to `out`.
/// One pass over the node slice; each name is read where it lies in the name heap.
pub fn search_into(tree: &Tree, m: &Matcher, out: &mut Vec<NodeId>) {
    for (id, name) in tree.live_names() {
        let name = name.expect("`Tree::from_arena` checked every live name is in range");
        if m.is_match(name) {
            out.push(id);
        }
    }
}

/// `search_into` a new vector.
#[must_use]
pub fn search(tree: &Tree, m: &Matcher) -> Vec<NodeId> {
    let mut out = Vec::new();
    search_into(tree, m, &mut out);
    out
}

/// What a search found, kept current as the tree changes.
#[derive(Debug, Clone)]
pub struct Results {
    pub matcher: Matcher,
    /// Every match by handle.
    all: Vec<NodeRef>,
    /// The largest `MAX_SHOWN` matches, largest first.
    shown: Vec<NodeRef>,
    /// Ranked by apparent size (else disk usage).
    apparent: bool,
    /// The tree's generation the results are exact for.
    generation: u64,
    /// Live entries when last run from scratch (a pass sends no deltas: see `stale_pass`).
    entries: u64,
}

impl Results {
    /// Runs `matcher` over the whole tree.
    #[must_use]
    pub fn run(tree: &Tree, matcher: Matcher, apparent: bool) -> Results {
        let mut r = Results {
            matcher,
            all: Vec::new(),
            shown: Vec::new(),
            apparent,
            generation: 0,
            entries: 0,
        };
        r.rerun(tree);
        r
    }

    /// Matches the whole tree again (after a pass, or a delta that does not follow ours).
    pub fn rerun(&mut self, tree: &Tree) {
        let mut ids = Vec::new();
        search_into(tree, &self.matcher, &mut ids);
        self.all = ids.into_iter().map(|id| tree.node_ref(id)).collect();
        self.generation = tree.generation();
        self.entries = tree.len();
        self.rank(tree);
    }

    /// How many entries match.
    #[must_use]
    pub fn count(&self) -> usize {
        self.all.len()
    }

    /// The ranked matches, largest first (at most `MAX_SHOWN`).
    #[must_use]
    pub fn shown(&self) -> &[NodeRef] {
        &self.shown
    }

    #[must_use]
    pub fn apparent(&self) -> bool {
        self.apparent
    }

    /// Ranks by the other size.
    pub fn set_apparent(&mut self, tree: &Tree, apparent: bool) {
        if self.apparent != apparent {
            self.apparent = apparent;
            self.rank(tree);
        }
    }

    /// Has the tree grown or shrunk since the last full run without a delta (a scan or a
    /// verification in progress)?
    #[must_use]
    pub fn stale_pass(&self, tree: &Tree) -> bool {
        tree.len() != self.entries && tree.generation() == self.generation
    }

    /// Follows one applied batch: only the nodes it touched (written, their ancestors, freed)
    /// are matched again, then the list is ranked again (sizes above a change moved). A delta
    /// that does not follow the last one seen means something was missed: all is run again.
    pub fn applied(&mut self, delta: &TreeDelta, tree: &Tree) {
        if delta.generation <= self.generation {
            return;
        }
        if delta.generation != self.generation + 1 {
            self.rerun(tree);
            return;
        }
        let touched: HashSet<NodeId> = delta.touched.iter().map(|r| r.id).collect();
        self.all.retain(|r| !touched.contains(&r.id));
        let root = tree.root();
        for &id in &touched {
            if id != root && tree.is_live(id) && self.matcher.is_match(tree.name(id)) {
                self.all.push(tree.node_ref(id));
            }
        }
        self.generation = delta.generation;
        self.entries = tree.len();
        self.rank(tree);
    }

    /// The largest first (ties by name, then slot, for a stable order); only the top
    /// `MAX_SHOWN` sorted.
    fn rank(&mut self, tree: &Tree) {
        let size = |id: NodeId| {
            let t = tree.totals(id);
            if self.apparent { t.apparent } else { t.disk }
        };
        let mut keyed: Vec<(u64, NodeRef)> = self
            .all
            .iter()
            .filter(|r| tree.resolve(**r).is_some())
            .map(|&r| (size(r.id), r))
            .collect();
        let order = |a: &(u64, NodeRef), b: &(u64, NodeRef)| {
            b.0.cmp(&a.0)
                .then_with(|| tree.name(a.1.id).cmp(tree.name(b.1.id)))
                .then(a.1.id.cmp(&b.1.id))
        };
        if keyed.len() > MAX_SHOWN {
            keyed.select_nth_unstable_by(MAX_SHOWN, order);
            keyed.truncate(MAX_SHOWN);
        }
        keyed.sort_unstable_by(order);
        self.shown = keyed.into_iter().map(|(_, r)| r).collect();
    }
}
