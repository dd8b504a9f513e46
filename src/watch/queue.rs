//! The `DirtyQueue`: events de-duplicated per path, released as one batch after a quiet window
//! or a maximum delay (so a file that grows continuously still updates), with memory bounded
//! under a flood: past `max_paths` pending paths they collapse into "this directory is dirty",
//! past `max_dirs` dirty directories into "rescan the root". Overflow from a backend is a
//! rescan of the root, never silence.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::{Backend, FsEvent, FsEventKind};

#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Release after this long without a new event.
    pub quiet: Duration,
    /// Release at the latest this long after the first pending event.
    pub max_delay: Duration,
    /// Pending paths before collapsing them into their directories.
    pub max_paths: usize,
    /// Dirty directories before collapsing everything into a rescan of the root.
    pub max_dirs: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            quiet: Duration::from_millis(75),
            max_delay: Duration::from_secs(1),
            max_paths: 20_000,
            max_dirs: 2_000,
        }
    }
}

/// Bits of what happened to one path within a batch.
pub mod kinds {
    pub const CREATED: u8 = 1;
    pub const MODIFIED: u8 = 1 << 1;
    pub const REMOVED: u8 = 1 << 2;
    pub const RENAMED_FROM: u8 = 1 << 3;
    pub const RENAMED_TO: u8 = 1 << 4;
    pub const RESCAN: u8 = 1 << 5;
    /// Verify the subtree once (`FsEventKind::Reread`); like `RESCAN`, never collapsed into
    /// a re-read of its parent's entries.
    pub const REREAD: u8 = 1 << 6;
    /// The bits a flood must not collapse.
    pub const SUBTREE: u8 = RESCAN | REREAD;
}

/// What one path went through in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathChange {
    pub path: Vec<u8>,
    pub kinds: u8,
    pub is_dir: Option<bool>,
    /// For a rename source: where it went.
    pub to: Option<Vec<u8>>,
    /// It moved out of the root: the kernel's handle of what moved (`FsEventKind::MovedOut`).
    pub moved_out: Option<Box<[u8]>>,
    pub backend: Backend,
}

/// A released batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batch {
    pub id: u64,
    /// Coalesced per-path changes, sorted by path.
    pub changes: Vec<PathChange>,
    /// Directories whose direct children must be re-read (a flood collapsed into them).
    pub dirty_dirs: Vec<Vec<u8>>,
    /// Everything under the root must be verified (overflow, or a flood beyond `max_dirs`).
    pub rescan_root: bool,
    /// Raw events folded into this batch.
    pub events: u64,
}

impl Batch {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.dirty_dirs.is_empty() && !self.rescan_root
    }
}

pub struct DirtyQueue {
    limits: QueueLimits,
    pending: BTreeMap<Vec<u8>, PathChange>,
    dirty_dirs: BTreeSet<Vec<u8>>,
    rescan_root: bool,
    events: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    next_id: u64,
}

fn parent_of(path: &[u8]) -> Vec<u8> {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) => b"/".to_vec(),
        Some(i) => path[..i].to_vec(),
        None => path.to_vec(),
    }
}

impl DirtyQueue {
    #[must_use]
    pub fn new(limits: QueueLimits) -> DirtyQueue {
        DirtyQueue {
            limits,
            pending: BTreeMap::new(),
            dirty_dirs: BTreeSet::new(),
            rescan_root: false,
            events: 0,
            first: None,
            last: None,
            next_id: 1,
        }
    }

    /// Pending paths and dirty directories (what memory holds).
    #[must_use]
    pub fn len(&self) -> usize {
        self.pending.len() + self.dirty_dirs.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.dirty_dirs.is_empty() && !self.rescan_root
    }

    pub fn push(&mut self, ev: FsEvent, now: Instant) {
        self.events += 1;
        self.first.get_or_insert(now);
        self.last = Some(now);
        if self.rescan_root {
            return; // everything will be verified anyway
        }
        let mut moved_out = None;
        let (bits, to) = match ev.kind {
            FsEventKind::Created => (kinds::CREATED, None),
            FsEventKind::Modified => (kinds::MODIFIED, None),
            FsEventKind::Removed => (kinds::REMOVED, None),
            FsEventKind::MovedOut { handle } => {
                moved_out = Some(handle);
                (kinds::REMOVED, None)
            }
            FsEventKind::Renamed { to } => (kinds::RENAMED_FROM, Some(to)),
            FsEventKind::Rescan => (kinds::RESCAN, None),
            FsEventKind::Reread => (kinds::REREAD, None),
            FsEventKind::Overflow => {
                self.collapse_to_root();
                return;
            }
        };
        if let Some(to) = &to {
            if ev.is_dir != Some(false) && self.chained(&ev.path, to) {
                // A directory renamed again within the batch (a swap through a temporary
                // name, a chain of moves): one `to` per path cannot say where each subtree
                // went, and a change inside was named by a path that meant another directory
                // at the time. Every path of such renames is verified whole after the moves.
                self.reread_renames(&ev.path, to, ev.backend);
            }
            self.add(
                to.clone(),
                kinds::RENAMED_TO,
                ev.is_dir,
                None,
                None,
                ev.backend,
            );
        }
        self.add(ev.path, bits, ev.is_dir, to, moved_out, ev.backend);
        if self.pending.len() > self.limits.max_paths {
            self.collapse_to_dirs();
        }
    }

    fn add(
        &mut self,
        path: Vec<u8>,
        bits: u8,
        is_dir: Option<bool>,
        to: Option<Vec<u8>>,
        moved_out: Option<Box<[u8]>>,
        backend: Backend,
    ) {
        if bits & kinds::SUBTREE == 0
            && moved_out.is_none()
            && !self.dirty_dirs.is_empty()
            && self.dirty_dirs.contains(&parent_of(&path))
        {
            return; // its directory is re-read anyway (a subtree rescan is more, and stays)
        }
        let entry = self.pending.entry(path.clone()).or_insert(PathChange {
            path,
            kinds: 0,
            is_dir: None,
            to: None,
            moved_out: None,
            backend,
        });
        entry.kinds |= bits;
        if is_dir.is_some() {
            entry.is_dir = is_dir;
        }
        if to.is_some() {
            entry.to = to;
        }
        if moved_out.is_some() {
            entry.moved_out = moved_out;
        }
    }

    /// Does a rename `from` -> `to` meet a rename of this batch at either name (the same path
    /// renamed from or to before)?
    fn chained(&self, from: &[u8], to: &[u8]) -> bool {
        let renamed = kinds::RENAMED_FROM | kinds::RENAMED_TO;
        [from, to]
            .iter()
            .any(|p| self.pending.get(*p).is_some_and(|c| c.kinds & renamed != 0))
    }

    /// Marks both names of this rename, and every name of the batch's earlier renames, to be
    /// verified whole (`REREAD`) once the moves are applied.
    fn reread_renames(&mut self, from: &[u8], to: &[u8], backend: Backend) {
        let renamed = kinds::RENAMED_FROM | kinds::RENAMED_TO;
        for c in self.pending.values_mut() {
            if c.kinds & renamed != 0 && c.is_dir != Some(false) {
                c.kinds |= kinds::REREAD;
            }
        }
        for p in [from, to] {
            let c = self.pending.entry(p.to_vec()).or_insert(PathChange {
                path: p.to_vec(),
                kinds: 0,
                is_dir: None,
                to: None,
                moved_out: None,
                backend,
            });
            c.kinds |= kinds::REREAD;
        }
    }

    /// Too many paths: keep only their directories ("re-read this directory").
    fn collapse_to_dirs(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for (path, change) in pending {
            if change.kinds & kinds::SUBTREE != 0 || change.moved_out.is_some() {
                // "Verify this whole subtree" is more than "re-read a directory", and what
                // moved out of the root is stat'ed where it went by its handle (rare): kept.
                self.pending.insert(path, change);
                continue;
            }
            if change.is_dir == Some(true) {
                // A directory that appeared is dirty itself, too.
                self.dirty_dirs.insert(path.clone());
            }
            self.dirty_dirs.insert(parent_of(&path));
        }
        if self.dirty_dirs.len() + self.pending.len() > self.limits.max_dirs {
            self.collapse_to_root();
        }
    }

    fn collapse_to_root(&mut self) {
        self.pending.clear();
        self.dirty_dirs.clear();
        self.rescan_root = true;
    }

    /// When the next batch is due, if anything is pending.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        Some((last + self.limits.quiet).min(first + self.limits.max_delay))
    }

    /// The batch, if its quiet window or maximum delay has passed at `now`.
    pub fn take_ready(&mut self, now: Instant) -> Option<Batch> {
        if now < self.deadline()? {
            return None;
        }
        Some(self.take())
    }

    /// Everything pending, due or not (a shutdown flushes the last batch).
    pub fn take(&mut self) -> Batch {
        let batch = Batch {
            id: self.next_id,
            changes: std::mem::take(&mut self.pending).into_values().collect(),
            dirty_dirs: std::mem::take(&mut self.dirty_dirs).into_iter().collect(),
            rescan_root: std::mem::replace(&mut self.rescan_root, false),
            events: std::mem::replace(&mut self.events, 0),
        };
        self.next_id += 1;
        self.first = None;
        self.last = None;
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: FsEventKind, path: &str) -> FsEvent {
        FsEvent {
            kind,
            path: path.as_bytes().to_vec(),
            is_dir: None,
            backend: Backend::Notify,
        }
    }

    /// A queue that collapses past 100 paths into directories, and past 10 of those into a
    /// rescan of the root.
    fn small_queue() -> DirtyQueue {
        DirtyQueue::new(QueueLimits {
            max_paths: 100,
            max_dirs: 10,
            ..QueueLimits::default()
        })
    }

    fn renamed(from: &str, to: &str, is_dir: Option<bool>) -> FsEvent {
        FsEvent {
            kind: FsEventKind::Renamed {
                to: to.as_bytes().to_vec(),
            },
            path: from.as_bytes().to_vec(),
            is_dir,
            backend: Backend::Fanotify,
        }
    }

    #[test]
    fn directories_swapped_through_a_temporary_name_are_verified_whole() {
        // Regression (live soak, fanotify seed 26): `mv A T; mv B A; mv T B` in one batch kept
        // one `to` per path, so a subtree went to the wrong name and a change made inside
        // it meanwhile (named by the path it had then) was lost.
        let mut q = DirtyQueue::new(QueueLimits::default());
        let t0 = Instant::now();
        q.push(renamed("/r/A", "/r/T", Some(true)), t0);
        q.push(renamed("/r/B", "/r/A", Some(true)), t0);
        q.push(renamed("/r/T", "/r/B", Some(true)), t0);
        let b = q.take();
        for p in ["/r/A", "/r/B", "/r/T"] {
            let c = b.changes.iter().find(|c| c.path == p.as_bytes());
            assert!(
                c.is_some_and(|c| c.kinds & kinds::REREAD != 0),
                "{p}: {:?}",
                b.changes
            );
        }
        // One move of a directory, or files saved through a temporary name: no re-read.
        q.push(renamed("/r/d", "/r/e", Some(true)), t0);
        q.push(renamed("/r/f", "/r/f~", Some(false)), t0);
        q.push(renamed("/r/f.tmp", "/r/f", Some(false)), t0);
        let b = q.take();
        assert!(
            b.changes.iter().all(|c| c.kinds & kinds::REREAD == 0),
            "{:?}",
            b.changes
        );
    }

    #[test]
    fn events_for_one_path_coalesce_and_release_after_the_quiet_window() {
        let mut q = DirtyQueue::new(QueueLimits::default());
        let t0 = Instant::now();
        q.push(ev(FsEventKind::Created, "/r/a"), t0);
        q.push(ev(FsEventKind::Modified, "/r/a"), t0);
        q.push(ev(FsEventKind::Modified, "/r/b"), t0);
        assert!(q.take_ready(t0 + Duration::from_millis(10)).is_none());
        let b = q.take_ready(t0 + Duration::from_millis(80)).expect("due");
        assert_eq!(b.events, 3);
        assert_eq!(b.changes.len(), 2);
        assert_eq!(b.changes[0].kinds, kinds::CREATED | kinds::MODIFIED);
        assert!(q.is_empty());
        assert!(q.deadline().is_none());
    }

    #[test]
    fn a_steady_stream_is_released_at_the_maximum_delay() {
        let mut q = DirtyQueue::new(QueueLimits::default());
        let t0 = Instant::now();
        let mut released = None;
        for i in 0..200u64 {
            let now = t0 + Duration::from_millis(i * 10);
            q.push(ev(FsEventKind::Modified, "/r/growing"), now);
            if let Some(b) = q.take_ready(now) {
                released = Some((i, b));
                break;
            }
        }
        let (i, b) = released.expect("released while events keep coming");
        assert_eq!(i, 100, "after 1 s");
        assert_eq!(b.changes.len(), 1);
    }

    #[test]
    fn a_flood_collapses_to_directories_then_to_a_root_rescan() {
        let mut q = small_queue();
        let t0 = Instant::now();
        for i in 0..1000 {
            q.push(ev(FsEventKind::Created, &format!("/r/d{}/f{i}", i % 5)), t0);
            assert!(q.len() <= 101, "bounded");
        }
        let b = q.take();
        assert!(!b.rescan_root);
        assert!(
            !b.dirty_dirs.is_empty(),
            "the flood collapsed into its directories"
        );
        assert!(b.dirty_dirs.iter().all(|d| d.starts_with(b"/r/d")));
        for i in 0..10_000 {
            q.push(ev(FsEventKind::Created, &format!("/r/x{i}/f")), t0);
            assert!(q.len() <= 111, "bounded");
        }
        let b = q.take();
        assert!(b.rescan_root, "many directories: rescan");
        assert_eq!(b.events, 10_000);
    }

    #[test]
    fn a_move_out_of_the_root_keeps_its_handle_through_a_flood() {
        // What moved out is stat'ed where it went by its handle (a hard link made and moved
        // out at once): a flood that collapses its directory must not lose it.
        let mut q = small_queue();
        let t0 = Instant::now();
        let out = |path: &str| FsEvent {
            kind: FsEventKind::MovedOut {
                handle: path.as_bytes().into(),
            },
            ..ev(FsEventKind::Removed, path)
        };
        q.push(ev(FsEventKind::Created, "/r/d/b"), t0);
        q.push(out("/r/d/b"), t0);
        for i in 0..200 {
            q.push(ev(FsEventKind::Created, &format!("/r/d/f{i}")), t0);
        }
        q.push(out("/r/d/late"), t0);
        let b = q.take();
        assert_eq!(b.dirty_dirs, vec![b"/r/d".to_vec()]);
        let moved: Vec<(&[u8], u8)> = b
            .changes
            .iter()
            .filter_map(|c| Some((c.moved_out.as_deref()?, c.kinds)))
            .collect();
        assert_eq!(
            moved,
            vec![
                (&b"/r/d/b"[..], kinds::CREATED | kinds::REMOVED),
                (&b"/r/d/late"[..], kinds::REMOVED)
            ]
        );
    }

    #[test]
    fn a_subtree_rescan_or_reread_survives_a_flood_in_its_parent() {
        // Regression: a rescan under a dirty directory was dropped or downgraded to a re-read.
        let mut q = small_queue();
        let t0 = Instant::now();
        for i in 0..200 {
            q.push(ev(FsEventKind::Created, &format!("/r/d/f{i}")), t0);
        }
        q.push(ev(FsEventKind::Rescan, "/r/d/sub"), t0);
        q.push(ev(FsEventKind::Reread, "/r/d/moved"), t0);
        for i in 200..300 {
            q.push(ev(FsEventKind::Created, &format!("/r/d/f{i}")), t0);
        }
        let b = q.take();
        assert!(b.dirty_dirs.contains(&b"/r/d".to_vec()));
        assert!(
            b.changes
                .iter()
                .any(|c| c.path == b"/r/d/sub" && c.kinds & kinds::RESCAN != 0),
            "{b:?}"
        );
        assert!(
            b.changes
                .iter()
                .any(|c| c.path == b"/r/d/moved" && c.kinds == kinds::REREAD),
            "a re-read of a moved directory is kept whole: {b:?}"
        );
    }

    #[test]
    fn overflow_is_a_rescan_of_the_root() {
        let mut q = DirtyQueue::new(QueueLimits::default());
        let t0 = Instant::now();
        q.push(ev(FsEventKind::Modified, "/r/a"), t0);
        q.push(ev(FsEventKind::Overflow, "/r"), t0);
        let b = q.take();
        assert!(b.rescan_root);
        assert!(b.changes.is_empty());
    }

    #[test]
    fn a_rename_marks_both_sides() {
        let mut q = DirtyQueue::new(QueueLimits::default());
        q.push(
            ev(
                FsEventKind::Renamed {
                    to: b"/r/new".to_vec(),
                },
                "/r/old",
            ),
            Instant::now(),
        );
        let b = q.take();
        assert_eq!(b.changes.len(), 2);
        assert_eq!(b.changes[0].path, b"/r/new");
        assert_eq!(b.changes[0].kinds, kinds::RENAMED_TO);
        assert_eq!(b.changes[1].to.as_deref(), Some(&b"/r/new"[..]));
    }
}
