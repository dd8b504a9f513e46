//! Aligning the tree with the disk, applying only the differences.
//!
//! `full` walks every directory of the tree. A directory whose listing can be trusted (its
//! ctime and mtime, to the nanosecond, are those recorded when the listing was read, and that
//! read was more than a clock tick after its last change) keeps its list of names, but each
//! child is still stat'ed; any other is read again. `Trust::Nothing` (`reconcile --full`)
//! reads every directory. New children are added (a new directory is scanned once), vanished
//! ones removed, changed ones updated, and every size difference bubbles to the root.
//!
//! Cost: like a scan. The cached children of a directory are sorted by name once and merged
//! with the sorted listing (no allocation per entry), wide directories are stat'ed in slices by
//! several threads, and no path is built unless exclude patterns need one.
//!
//! This file is the pass's entry points and what it reports; the walk over directories is
//! `walk`, the merge of one directory's listing with its cached children `merge`.

mod merge;
mod walk;

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::fs::{Reopener, RootDir, sys};
use crate::scan::{self, Progress, ScanError, ScanOptions};
use crate::tree::{self, Kind, NodeId, Tree};
use walk::{Job, Visit};

/// What a reconcile pass changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileStats {
    /// Entries that appeared (a new directory counts with everything in it).
    pub added: u64,
    /// Entries that went away (a removed directory counts with everything it held).
    pub removed: u64,
    /// Entries whose size changed.
    pub resized: u64,
    /// Entries replaced by something else under the same name (a file became a directory…).
    pub replaced: u64,
    /// Directories whose listing was read again.
    pub dirs_read: u64,
    /// Directories whose listing was known unchanged (ctime), their children stat'ed only.
    pub dirs_kept: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

impl ReconcileStats {
    #[must_use]
    pub fn changed(&self) -> bool {
        self.added + self.removed + self.resized + self.replaced > 0
    }

    fn add(&mut self, o: &ReconcileStats) {
        self.added += o.added;
        self.removed += o.removed;
        self.resized += o.resized;
        self.replaced += o.replaced;
        self.dirs_read += o.dirs_read;
        self.dirs_kept += o.dirs_kept;
        self.errors += o.errors;
    }
}

/// What a pass may take on trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// A directory whose listing stamp is unchanged keeps its names (the catch-up).
    Listings,
    /// Every directory is read again, whatever the times say (`reconcile --full`).
    Nothing,
}

/// Walks the whole tree and applies every difference with the disk.
pub fn full(
    lock: &RwLock<Tree>,
    root: &RootDir,
    opts: &ScanOptions,
    progress: &Progress,
    trust: Trust,
) -> Result<ReconcileStats, ScanError> {
    let start = tree::read(lock).root();
    run(lock, root, start, opts, progress, trust, true)
}

/// Aligns the subtree of directory `start` (all of it, or with `recurse` false only its
/// direct children: new subdirectories are still scanned whole).
pub fn run(
    lock: &RwLock<Tree>,
    root: &RootDir,
    start: NodeId,
    opts: &ScanOptions,
    progress: &Progress,
    trust: Trust,
    recurse: bool,
) -> Result<ReconcileStats, ScanError> {
    let t0 = Instant::now();
    let (root_node, start_path) = {
        let t = tree::read(lock);
        if !root.matches(&t) {
            return Err(ScanError::Root {
                path: root.path.clone(),
                source: std::io::Error::other("the cached tree belongs to another directory"),
            });
        }
        if !t.is_live(start) || t.kind(start) != Kind::Dir {
            return Err(ScanError::NoSuchNode(t.path_of(start)));
        }
        let path = if opts.excludes.needs_path() {
            Arc::from(std::os::unix::ffi::OsStrExt::as_bytes(
                t.path_of(start).as_os_str(),
            ))
        } else {
            Arc::from(&b""[..])
        };
        (t.root(), path)
    };
    let fd_limit = sys::raise_fd_limit();
    let open_fds = AtomicUsize::new(0);
    let ctx = Ctx {
        lock,
        root,
        reopen: Reopener::new(root),
        opts,
        single: ScanOptions {
            threads: 1,
            ..opts.clone()
        },
        progress,
        trust,
        recurse,
        open_fds: &open_fds,
        fd_budget: usize::try_from(fd_limit / 2).unwrap_or(usize::MAX).max(16),
    };
    // Directories are independent: workers take them from a shared stack (their children go
    // back on it: depth first, so few directories hold an open fd at a time), read and stat
    // without the tree lock, and apply each slice of differences under one short write lock.
    let start_fd = if start == root_node {
        Some(sys::dup_dir(root.fd()).map_err(|e| ScanError::Root {
            path: root.path.clone(),
            source: std::io::Error::from_raw_os_error(e as i32),
        })?)
    } else {
        None // opened through the tree by the first worker
    };
    let queue: Mutex<Vec<Job>> = Mutex::new(vec![(Visit::start(start, start_path), start_fd)]);
    let pending = AtomicUsize::new(1);
    let failure: Mutex<Option<ScanError>> = Mutex::new(None);
    let threads = opts.threads.clamp(1, scan::MAX_THREADS);
    let totals = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                crate::threads::spawn_or_run(s, "dtui-verify", || {
                    let mut stats = ReconcileStats::default();
                    ctx.work(&queue, &pending, &failure, &mut stats);
                    stats
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect::<Vec<_>>()
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(PoisonError::into_inner) {
        return Err(e);
    }
    if progress.cancelled() {
        return Err(ScanError::Cancelled);
    }
    let mut stats = ReconcileStats::default();
    for t in &totals {
        stats.add(t);
    }
    stats.elapsed = t0.elapsed();
    Ok(stats)
}

/// What a pass's workers share.
struct Ctx<'a> {
    lock: &'a RwLock<Tree>,
    root: &'a RootDir,
    reopen: Reopener<'a>,
    opts: &'a ScanOptions,
    /// `opts` with one thread, for new subtrees found by a worker (the workers are the
    /// parallelism).
    single: ScanOptions,
    progress: &'a Progress,
    trust: Trust,
    /// Visit subdirectories too (else only the start's direct children).
    recurse: bool,
    open_fds: &'a AtomicUsize,
    fd_budget: usize,
}
