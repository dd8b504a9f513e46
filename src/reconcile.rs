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

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;

use nix::errno::Errno;

use crate::fs::{Reopener, RootDir, sys};
use crate::scan::{self, Progress, ScanError, ScanOptions};
use crate::tree::{self, EntryInfo, Kind, NodeId, Tree, flags};

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

/// An fd held by queued visits, counted against the pass's budget.
struct HeldFd<'a> {
    fd: OwnedFd,
    count: &'a AtomicUsize,
}

impl Drop for HeldFd<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A directory still to visit.
struct Visit<'a> {
    node: NodeId,
    /// Its parent's fd while the budget allows; else it is reopened through the tree.
    parent_fd: Option<Arc<HeldFd<'a>>>,
    name: CString,
    /// Only when exclude patterns match on paths.
    path: Arc<[u8]>,
}

/// Entries stat'ed per write-locked step of a directory.
const SLICE: usize = 512;
/// A directory with more entries than this is stat'ed by several threads.
const WIDE: usize = 8 * SLICE;
/// `EMFILE` is retried this many times (closing what can be closed) before the pass fails.
const EMFILE_RETRIES: u32 = 50;

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
    let queue: Mutex<Vec<Job>> = Mutex::new(vec![(
        Visit {
            node: start,
            parent_fd: None,
            name: CString::default(),
            path: start_path,
        },
        start_fd,
    )]);
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

type Job<'a> = (Visit<'a>, Option<OwnedFd>);

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

/// What one range of a directory's merged listing produced.
#[derive(Default)]
struct RangeOut {
    stats: ReconcileStats,
    /// Cached children that are gone or replaced, removed together at the end.
    gone: Vec<NodeId>,
    /// Subdirectories to visit: (node, index in the listing).
    subdirs: Vec<(NodeId, u32)>,
    /// New directories to scan: (node, index in the listing).
    new_dirs: Vec<(NodeId, u32)>,
    error: Option<ScanError>,
}

impl<'a> Ctx<'a> {
    fn work(
        &self,
        queue: &Mutex<Vec<Job<'a>>>,
        pending: &AtomicUsize,
        failure: &Mutex<Option<ScanError>>,
        stats: &mut ReconcileStats,
    ) {
        let backoff = Backoff::new();
        let mut children = Vec::new();
        loop {
            let next = queue.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let Some(job) = next else {
                if pending.load(Ordering::SeqCst) == 0 {
                    return;
                }
                if backoff.is_completed() {
                    std::thread::sleep(Duration::from_micros(50));
                } else {
                    backoff.snooze();
                }
                continue;
            };
            backoff.reset();
            let stop = self.progress.cancelled()
                || failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_some();
            if !stop {
                children.clear();
                if let Err(e) = self.visit(job, &mut children, stats) {
                    failure
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get_or_insert(e);
                }
                pending.fetch_add(children.len(), Ordering::SeqCst);
                queue
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(children.drain(..).map(|c| (c, None)));
            }
            pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Opens a queued directory: from its parent's fd, else through the tree; `EMFILE` is
    /// waited out (fds held elsewhere get closed), never taken for "unreadable".
    fn open(&self, v: &Visit<'a>) -> Result<OwnedFd, Errno> {
        let mut tries = 0;
        loop {
            let r = match &v.parent_fd {
                Some(p) => sys::open_dir_at(p.fd.as_fd(), &v.name),
                None => self
                    .reopen
                    .open(self.lock, v.node)
                    .and_then(|fd| sys::dup_dir(fd.as_fd())),
            };
            match r {
                Err(Errno::EMFILE | Errno::ENFILE) if tries < EMFILE_RETRIES => {
                    tries += 1;
                    self.reopen.clear();
                    std::thread::sleep(Duration::from_millis(u64::from(tries)));
                }
                other => return other,
            }
        }
    }

    /// Opens one queued directory and reconciles it.
    fn visit(
        &self,
        (v, fd): Job<'a>,
        children: &mut Vec<Visit<'a>>,
        stats: &mut ReconcileStats,
    ) -> Result<(), ScanError> {
        let fd = match fd {
            Some(fd) => Ok(fd),
            None => self.open(&v),
        };
        drop(v.parent_fd);
        match fd {
            Ok(fd) => self.dir(v.node, fd, &v.path, children, stats),
            Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => {
                // Gone, or no longer a directory, since its parent was read: its parent's next
                // pass sees what is there now; drop the stale subtree.
                let mut t = tree::write(self.lock);
                if t.is_live(v.node) {
                    stats.removed += 1 + t.totals(v.node).items;
                    t.remove(v.node);
                }
                Ok(())
            }
            Err(e @ (Errno::EMFILE | Errno::ENFILE)) => Err(ScanError::Root {
                path: self.root.path.clone(),
                source: std::io::Error::from_raw_os_error(e as i32),
            }),
            Err(e) => {
                stats.errors += 1;
                self.progress.errors.fetch_add(1, Ordering::Relaxed);
                let mut t = tree::write(self.lock);
                if t.is_live(v.node) {
                    stats.removed += unreadable(&mut t, v.node, e);
                }
                Ok(())
            }
        }
    }

    /// Reconciles one directory's direct children; queues its subdirectories.
    #[expect(
        clippy::too_many_lines,
        reason = "stat, decide, list, merge, remove, queue: one sequence over the same locals"
    )]
    fn dir(
        &self,
        dir: NodeId,
        fd: OwnedFd,
        path: &Arc<[u8]>,
        queue: &mut Vec<Visit<'a>>,
        stats: &mut ReconcileStats,
    ) -> Result<(), ScanError> {
        self.progress.current.store(dir.0, Ordering::Relaxed);
        let before = scan::listing_clock();
        let Ok(own) = sys::stat_fd(fd.as_fd()) else {
            return Ok(());
        };
        // The cached children, sorted by name (ids only: no allocation per entry).
        let (kids, unchanged, had_error) = {
            let t = tree::read(self.lock);
            if !t.is_live(dir) {
                return Ok(());
            }
            let mut kids: Vec<NodeId> = t.children(dir).collect();
            // Prefix first, names on ties (see `sys::name_prefix`).
            let mut keyed: Vec<(u64, NodeId)> = kids
                .iter()
                .map(|&k| (sys::name_prefix(t.name(k)), k))
                .collect();
            keyed.sort_unstable_by(|&(pa, a), &(pb, b)| {
                pa.cmp(&pb).then_with(|| t.name(a).cmp(t.name(b)))
            });
            kids.clear();
            kids.extend(keyed.into_iter().map(|(_, k)| k));
            let dir_flags = t.flags(dir);
            let mtime = t.mtime(dir);
            let trusted = t.listing_stamp(dir).is_some_and(|(ctime, trusted)| {
                trusted && ctime.sec == own.ctime && ctime.nsec == own.ctime_nsec
            });
            let unchanged = self.trust == Trust::Listings
                && trusted
                && mtime.sec == own.mtime
                && mtime.nsec == own.mtime_nsec
                && dir_flags & (flags::READ_ERROR | flags::STALE) == 0;
            (kids, unchanged, dir_flags & flags::READ_ERROR != 0)
        };

        // What is on disk now, in name order.
        let mut listing = sys::Listing::default();
        if unchanged {
            stats.dirs_kept += 1;
            let t = tree::read(self.lock);
            for &k in &kids {
                listing.push(t.name(k), dtype_of(t.kind(k)));
            }
        } else {
            stats.dirs_read += 1;
            // One getdents buffer per worker thread (a fresh 64 KiB per directory was
            // zeroed 47,000 times on the benchmark tree).
            thread_local! {
                static DIRENTS: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
            }
            let read =
                DIRENTS.with(|b| sys::read_dir(fd.as_fd(), &mut b.borrow_mut(), &mut listing));
            if let Err(e) = read {
                stats.errors += 1;
                self.progress.errors.fetch_add(1, Ordering::Relaxed);
                stats.removed += unreadable(&mut tree::write(self.lock), dir, e);
                return Ok(());
            }
        }
        let mut order = Vec::new();
        if unchanged {
            order.extend(0..listing.len() as u32);
        } else {
            listing.sorted_indexes(&mut order);
        }
        {
            let mut t = tree::write(self.lock);
            if !t.is_live(dir) {
                return Ok(());
            }
            if had_error {
                t.clear_read_error(dir);
            }
            let mut own_info = own.info(0);
            own_info.flags = t.flags(dir) & !flags::READ_ERROR;
            t.update_in_place(dir, &own_info)?;
        }

        let fd = Arc::new(fd);
        let (gone, subdirs, new_dirs) =
            self.merge_all(dir, &fd, path, &listing, &order, &kids, unchanged, stats)?;
        {
            let mut t = tree::write(self.lock);
            for &g in &gone {
                if t.is_live(g) {
                    stats.removed += 1 + t.totals(g).items;
                }
            }
            t.remove_children(dir, &gone);
            // Only a listing merged to its end may be trusted later, and clears `STALE`.
            if !unchanged && !self.progress.cancelled() && t.is_live(dir) {
                let (ctime, trusted) = scan::listing_stamp(&own, before);
                t.set_listing_stamp(dir, ctime, trusted);
                t.set_flag(dir, flags::STALE, false);
            }
        }
        // Existing subdirectories are visited later (through the stack); new ones are scanned
        // now, each once.
        let held = if subdirs.is_empty() && new_dirs.is_empty() {
            None
        } else {
            self.hold(fd)
        };
        for (node, i) in subdirs.into_iter().filter(|_| self.recurse) {
            queue.push(Visit {
                node,
                parent_fd: held.clone(),
                name: listing.c_name(i as usize).to_owned(),
                path: self.child_path(path, listing.name(i as usize)),
            });
        }
        for (id, i) in new_dirs {
            let sub_fd = match &held {
                Some(h) => sys::open_dir_at(h.fd.as_fd(), listing.c_name(i as usize)).ok(),
                None => None,
            };
            let s = scan::scan_subtree_fd(
                self.lock,
                self.root,
                id,
                sub_fd,
                &self.single,
                self.progress,
            )?;
            stats.added += s.entries;
            stats.errors += s.errors;
            let mut t = tree::write(self.lock);
            if t.is_live(id) {
                t.set_flag(id, flags::STALE, false);
            }
        }
        Ok(())
    }

    /// Merges a directory's sorted listing with its cached children, in ranges of the name
    /// order (several threads for a wide directory): what went, the subdirectories to visit
    /// and the new ones to scan.
    #[expect(
        clippy::too_many_arguments,
        reason = "one directory: its fd, path, listing, order and cached children"
    )]
    #[expect(clippy::type_complexity, reason = "the three lists `dir` goes on with")]
    fn merge_all(
        &self,
        dir: NodeId,
        fd: &Arc<OwnedFd>,
        path: &Arc<[u8]>,
        listing: &sys::Listing,
        order: &[u32],
        kids: &[NodeId],
        unchanged: bool,
        stats: &mut ReconcileStats,
    ) -> Result<(Vec<NodeId>, Vec<(NodeId, u32)>, Vec<(NodeId, u32)>), ScanError> {
        let threads = if listing.len() > WIDE {
            self.opts.threads.clamp(1, scan::MAX_THREADS)
        } else {
            1
        };
        let bounds = self.ranges(listing, order, kids, threads);
        let outs: Vec<RangeOut> = if bounds.len() == 1 {
            let (o, k) = &bounds[0];
            vec![self.merge(dir, fd.as_fd(), path, listing, o, k, unchanged)]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = bounds
                    .iter()
                    .map(|(o, k)| {
                        let fd = fd.as_fd();
                        crate::threads::spawn_or_run(s, "dtui-verify", move || {
                            self.merge(dir, fd, path, listing, o, k, unchanged)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_default())
                    .collect()
            })
        };
        let mut gone = Vec::new();
        let mut subdirs = Vec::new();
        let mut new_dirs = Vec::new();
        for mut o in outs {
            if let Some(e) = o.error.take() {
                return Err(e);
            }
            // A replaced entry is not itself removed (it is there, as something else).
            stats.removed = stats.removed.saturating_sub(o.stats.replaced);
            stats.add(&o.stats);
            gone.append(&mut o.gone);
            subdirs.append(&mut o.subdirs);
            new_dirs.append(&mut o.new_dirs);
        }
        Ok((gone, subdirs, new_dirs))
    }

    /// Keeps a directory's fd for its queued subdirectories while the budget allows.
    fn hold(&self, fd: Arc<OwnedFd>) -> Option<Arc<HeldFd<'a>>> {
        if self.open_fds.fetch_add(1, Ordering::Relaxed) >= self.fd_budget {
            self.open_fds.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        let fd = Arc::try_unwrap(fd).or_else(|fd| sys::dup_dir(fd.as_fd()));
        if let Ok(fd) = fd {
            Some(Arc::new(HeldFd {
                fd,
                count: self.open_fds,
            }))
        } else {
            self.open_fds.fetch_sub(1, Ordering::Relaxed);
            None
        }
    }

    fn child_path(&self, parent: &Arc<[u8]>, name: &[u8]) -> Arc<[u8]> {
        if !self.opts.excludes.needs_path() {
            return Arc::clone(parent);
        }
        let mut p = parent.to_vec();
        if p.last() != Some(&b'/') {
            p.push(b'/');
        }
        p.extend_from_slice(name);
        Arc::from(p)
    }

    /// Splits the name order into `n` ranges, each with the cached children whose names fall
    /// in it.
    fn ranges<'o>(
        &self,
        listing: &sys::Listing,
        order: &'o [u32],
        kids: &'o [NodeId],
        n: usize,
    ) -> Vec<(&'o [u32], &'o [NodeId])> {
        if n <= 1 || order.is_empty() {
            return vec![(order, kids)];
        }
        let t = tree::read(self.lock);
        let per = order.len().div_ceil(n);
        let mut out = Vec::with_capacity(n);
        let (mut o_start, mut k_start) = (0, 0);
        while o_start < order.len() {
            let o_end = (o_start + per).min(order.len());
            let k_end = if o_end == order.len() {
                kids.len()
            } else {
                let bound = listing.name(order[o_end] as usize);
                k_start + kids[k_start..].partition_point(|&k| t.name(k) < bound)
            };
            out.push((&order[o_start..o_end], &kids[k_start..k_end]));
            o_start = o_end;
            k_start = k_end;
        }
        out
    }

    /// Merges one range of the sorted listing with the cached children of the same names:
    /// stats a slice without the lock, then applies it under one write lock.
    #[expect(
        clippy::too_many_arguments,
        reason = "one range of one directory: its fd, listing, order and cached children"
    )]
    fn merge(
        &self,
        dir: NodeId,
        fd: BorrowedFd<'_>,
        path: &Arc<[u8]>,
        listing: &sys::Listing,
        order: &[u32],
        kids: &[NodeId],
        unchanged: bool,
    ) -> RangeOut {
        let mut out = RangeOut::default();
        let ectx = scan::EntryCtx {
            dir: fd,
            dir_path: if self.opts.excludes.needs_path() {
                path
            } else {
                &[]
            },
            opts: self.opts,
            root_mnt: self.root.stat().mnt_id,
            root_dev: self.root.stat().dev,
        };
        let mut path_buf = Vec::new();
        let mut fresh: Vec<Option<EntryInfo>> = Vec::with_capacity(SLICE.min(order.len()));
        let mut k = 0; // cursor into `kids`
        for slice in order.chunks(SLICE) {
            if self.progress.cancelled() {
                return out;
            }
            fresh.clear();
            fresh.extend(
                slice
                    .iter()
                    .map(|&i| scan::stat_entry(&ectx, listing, i as usize, &mut path_buf)),
            );
            self.progress
                .entries
                .fetch_add(slice.len() as u64, Ordering::Relaxed);
            let mut t = tree::write(self.lock);
            if !t.is_live(dir) {
                return out;
            }
            for (j, &i) in slice.iter().enumerate() {
                let name = listing.name(i as usize);
                // Cached names before this one are not on disk any more.
                while k < kids.len() && t.name(kids[k]) < name {
                    if !unchanged {
                        out.gone.push(kids[k]);
                    }
                    k += 1;
                }
                let old = (k < kids.len() && t.name(kids[k]) == name).then(|| {
                    k += 1;
                    kids[k - 1]
                });
                if let Err(e) = Self::apply_entry(&mut t, dir, name, i, old, fresh[j], &mut out) {
                    out.error = Some(e);
                    return out;
                }
            }
        }
        if !unchanged {
            out.gone.extend_from_slice(&kids[k..]);
        }
        out
    }

    /// Applies what the disk says of one name to the tree.
    fn apply_entry(
        t: &mut Tree,
        dir: NodeId,
        name: &[u8],
        index: u32,
        old: Option<NodeId>,
        fresh: Option<EntryInfo>,
        out: &mut RangeOut,
    ) -> Result<(), ScanError> {
        let Some(info) = fresh else {
            // Vanished between the listing and its stat.
            if let Some(id) = old {
                out.gone.push(id);
            }
            return Ok(());
        };
        if let Some(id) = old {
            let was = t.own(id);
            let mut same = info;
            if info.kind == Kind::Dir && t.kind(id) == Kind::Dir {
                // Its own visit compares and records its times.
                same.mtime = was.mtime.sec;
                same.mtime_nsec = was.mtime.nsec;
            }
            if t.update_in_place(id, &same)? {
                if was.apparent != info.apparent || was.disk != info.disk {
                    out.stats.resized += 1;
                }
                if info.kind == Kind::Dir && info.flags & flags::NOT_CHARGED == 0 {
                    out.subdirs.push((id, index));
                }
                return Ok(());
            }
            // Counted as replaced, and what it held as removed (see `dir`).
            out.stats.replaced += 1;
            out.gone.push(id);
        } else {
            out.stats.added += 1;
        }
        let id = t.add_child(dir, name, &info)?;
        if info.kind == Kind::Dir && info.flags & (flags::NOT_CHARGED | flags::READ_ERROR) == 0 {
            // Until its scan has run to the end, its (empty) listing is not trusted.
            t.set_flag(id, flags::STALE, true);
            out.new_dirs.push((id, index));
        }
        Ok(())
    }
}

/// A directory that can no longer be opened or listed: flagged, and its cached contents
/// dropped, as a fresh scan would show it. Returns the entries removed.
fn unreadable(t: &mut Tree, dir: NodeId, e: Errno) -> u64 {
    let kids: Vec<NodeId> = t.children(dir).collect();
    let removed = kids.iter().map(|&k| 1 + t.totals(k).items).sum();
    t.remove_children(dir, &kids);
    t.set_read_error(dir, e as u32);
    removed
}

/// The `d_type` that stands for a cached kind (so an entry that is not stat'ed, excluded or
/// failing, keeps its kind).
fn dtype_of(kind: Kind) -> u8 {
    match kind {
        Kind::Dir => sys::DT_DIR,
        Kind::File => sys::DT_REG,
        Kind::Symlink => sys::DT_LNK,
        Kind::Other => libc::DT_FIFO,
        Kind::Unknown => sys::DT_UNKNOWN,
    }
}
