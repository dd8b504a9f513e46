//! The session's `Recorder`: the samples a batch (or a whole tree) gives of the tracked
//! directories, and the tombstones of those deleted or moved away (`history` says which
//! directories are tracked, and why they are keyed by path).

use std::collections::{BTreeMap, HashMap};

use super::{TRACK_BYTES, TRACK_DEPTH, depth_of, join, rel_path};
use crate::store::{Base, GONE, Sample};
use crate::tree::{Changes, Kind, NodeId, Totals, Tree};

/// `items` of a recorded state that is not known to be stored: never equal to a real one.
const UNKNOWN: i64 = i64::MIN;

fn tracked(depth: usize, disk: u64, known: bool) -> bool {
    known || depth <= TRACK_DEPTH || disk >= TRACK_BYTES
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Last {
    disk: u64,
    apparent: u64,
    items: i64,
    id: Option<u32>,
}

/// The session's side of the history: what was last recorded per tracked directory, and which
/// node each one is, so a batch costs O(its directories) and a deletion or a move can be told.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Tracked directories in the tree now, by node id.
    by_id: HashMap<u32, Vec<u8>>,
    /// The newest recorded totals of every tracked directory that is not gone, by path.
    last: BTreeMap<Vec<u8>, Last>,
    /// Samples of this session are never stamped before it began (so "since the previous
    /// session" never sees them, even within the same minute).
    session_start_ms: i64,
}

impl Recorder {
    /// A recorder that knows the newest stored sample of each directory.
    #[must_use]
    pub fn new(session_start_ms: i64, latest: Vec<(Vec<u8>, Base)>) -> Recorder {
        Recorder {
            by_id: HashMap::new(),
            last: latest
                .into_iter()
                .map(|(p, b)| {
                    (
                        p,
                        Last {
                            disk: b.disk,
                            apparent: b.apparent,
                            items: b.items,
                            id: None,
                        },
                    )
                })
                .collect(),
            session_start_ms,
        }
    }

    /// Takes in the newest stored samples that came after this recorder was made: what this
    /// session recorded meanwhile is newer and stays.
    pub fn learn(&mut self, latest: Vec<(Vec<u8>, Base)>) {
        for (p, b) in latest {
            self.last.entry(p).or_insert(Last {
                disk: b.disk,
                apparent: b.apparent,
                items: b.items,
                id: None,
            });
        }
    }

    /// The time a sample taken now is stored under: per minute, never before the session.
    fn stamp(&self, now: i64) -> i64 {
        (now - now.rem_euclid(60_000)).max(self.session_start_ms)
    }

    fn record(&mut self, out: &mut Vec<Sample>, path: Vec<u8>, t: Totals, id: u32, time: i64) {
        let now = Last {
            disk: t.disk,
            apparent: t.apparent,
            items: t.items as i64,
            id: Some(id),
        };
        let changed = self
            .last
            .get(&path)
            .is_none_or(|l| (l.disk, l.apparent, l.items) != (now.disk, now.apparent, now.items));
        if changed {
            out.push(Sample {
                dir: path.clone(),
                time_ms: time,
                disk: now.disk,
                apparent: now.apparent,
                items: now.items,
            });
        }
        self.by_id.insert(id, path.clone());
        self.last.insert(path, now);
    }

    fn tombstone(&mut self, out: &mut Vec<Sample>, path: &[u8], time: i64) {
        if let Some(l) = self.last.remove(path) {
            if let Some(id) = l.id
                && self.by_id.get(&id).is_some_and(|p| p == path)
            {
                self.by_id.remove(&id);
            }
            out.push(Sample {
                dir: path.to_vec(),
                time_ms: time,
                disk: 0,
                apparent: 0,
                items: GONE,
            });
        }
    }

    /// Walks the tracked directories of the whole tree (after a first scan, or when a cache
    /// is loaded): samples what differs from the last record, tombstones what is gone.
    pub fn sync_all(&mut self, tree: &Tree, time_ms: i64) -> Vec<Sample> {
        let mut out = Vec::new();
        self.by_id.clear();
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![(tree.root(), Vec::new())];
        while let Some((dir, path)) = stack.pop() {
            let depth = depth_of(&path);
            for c in tree.children(dir) {
                if tree.kind(c) != Kind::Dir {
                    continue;
                }
                let cp = join(&path, tree.name(c));
                if tracked(depth + 1, tree.totals(c).disk, self.last.contains_key(&cp)) {
                    stack.push((c, cp));
                }
            }
            seen.insert(path.clone());
            self.record(&mut out, path, tree.totals(dir), dir.0, time_ms);
        }
        let gone: Vec<Vec<u8>> = self
            .last
            .keys()
            .filter(|p| !seen.contains(*p))
            .cloned()
            .collect();
        for p in gone {
            self.tombstone(&mut out, &p, time_ms);
        }
        out
    }

    /// `sync_all`, sampling every tracked directory whatever was last recorded: after the
    /// store lost samples (a full disk), what this recorder last sent is not what is stored.
    pub fn resync_all(&mut self, tree: &Tree, time_ms: i64) -> Vec<Sample> {
        for l in self.last.values_mut() {
            l.items = UNKNOWN;
        }
        self.sync_all(tree, time_ms)
    }

    /// The samples one batch of changes makes: its directories (the changed ones and their
    /// ancestors) whose totals moved, and tombstones for tracked directories it removed or
    /// moved away.
    pub fn on_changes(&mut self, tree: &Tree, changes: &Changes, now_ms: i64) -> Vec<Sample> {
        let time = self.stamp(now_ms);
        let mut out = Vec::new();
        for id in &changes.deletes {
            // A removed subtree may be listed by its top alone: what was tracked below goes
            // with it.
            if let Some(p) = self.by_id.get(id).cloned() {
                self.moved(tree, &p, time, &mut out);
            }
        }
        // Directories written, and those whose totals alone moved (the ancestors of a change).
        let dirs = changes
            .upserts
            .rows
            .iter()
            .filter(|r| r.kind == Kind::Dir as u8)
            .map(|r| r.id)
            .chain(changes.totals.iter().copied());
        for rid in dirs {
            let id = NodeId(rid);
            if !tree.is_live(id) || tree.kind(id) != Kind::Dir {
                continue;
            }
            let path = rel_path(tree, id);
            if let Some(old) = self.by_id.get(&rid).cloned()
                && old != path
            {
                self.moved(tree, &old, time, &mut out);
            }
            let t = tree.totals(id);
            if tracked(depth_of(&path), t.disk, self.last.contains_key(&path)) {
                self.record(&mut out, path, t, rid, time);
            }
        }
        out
    }

    /// A tracked directory is no longer at `old` (moved, or its slot reused): `old` and the
    /// tracked directories below it are gone from there; those still in the tree are recorded
    /// where they are now.
    fn moved(&mut self, tree: &Tree, old: &[u8], time: i64, out: &mut Vec<Sample>) {
        let mut below = old.to_vec();
        below.push(b'/');
        let mut end = old.to_vec();
        end.push(b'/' + 1);
        let affected: Vec<(Vec<u8>, Option<u32>)> = std::iter::once(old.to_vec())
            .chain(self.last.range(below..end).map(|(p, _)| p.clone()))
            .filter_map(|p| self.last.get(&p).map(|l| (p, l.id)))
            .collect();
        for (p, id) in &affected {
            self.tombstone(out, p, time);
            if let Some(id) = *id {
                self.by_id.remove(&id);
            }
        }
        for (_, id) in affected {
            let Some(id) = id else { continue };
            let n = NodeId(id);
            if tree.is_live(n) && tree.kind(n) == Kind::Dir {
                let path = rel_path(tree, n);
                let t = tree.totals(n);
                if tracked(depth_of(&path), t.disk, false) {
                    self.record(out, path, t, id, time);
                }
            }
        }
    }

    /// Tracked directories known now (for tests and reports).
    #[must_use]
    pub fn tracked(&self) -> usize {
        self.last.len()
    }
}
