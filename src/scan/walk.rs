//! The work-stealing walk. Jobs are "open and list a directory" and "stat a slice of a listed
//! directory and add it to the tree"; each worker keeps a LIFO deque (depth first, so open
//! directories stay few) and steals from the others when it runs dry.
//!
//! A listed directory lives in an `Arc<Dir>` with its fd and names, shared by the jobs of its
//! slices and of its subdirectories (which open themselves relative to it), and closed when the
//! last of them is done: a 10,000-deep chain holds two or three fds at a time.
//!
//! Totals stay linear in the number of entries whatever the depth: directories near the start
//! bubble each slice to the root at once (so readers see the totals grow), deeper ones keep
//! what they owe their ancestors in a `Pending` record and hand it up one level when the last
//! directory below them is done.

mod pending;
mod seen;

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use crossbeam_utils::Backoff;
use nix::errno::Errno;

use pending::Pending;
use seen::{Seen, seen_stamp};

use super::entry::{EntryCtx, stat_name_ctime};
use super::{Progress, ScanError, ScanOptions, ScanStats};
use crate::fs::sys::{self, Listing};
use crate::fs::{Reopener, RootDir};
use crate::tree::{self, NewEntry, NodeId, Time, Tree, TreeError, flags};

/// Entries stat'ed and committed per job; wider directories are split into slices.
const SLICE: usize = 512;

pub(super) struct Start {
    pub fd: OwnedFd,
    pub node: NodeId,
    /// The start's absolute path, used only when exclude patterns match on paths.
    pub path: Vec<u8>,
}

impl Start {
    pub fn at(fd: OwnedFd, node: NodeId, path: &Path) -> Start {
        Start {
            fd,
            node,
            path: path.as_os_str().as_bytes().to_vec(),
        }
    }
}

struct Dir<'t> {
    /// Taken away (closed) once every slice is in the tree when too many directories hold an
    /// fd; its subdirectories are then opened from the root by path components instead.
    fd: std::sync::RwLock<Option<OwnedFd>>,
    /// Slices not yet in the tree (the one that takes this to 0 sets the listing stamp).
    slices_left: AtomicUsize,
    /// The run's count of directories holding their fd (see `Shared::open_dirs`).
    open_dirs: Arc<AtomicUsize>,
    node: NodeId,
    path: Vec<u8>,
    listing: Listing,
    pending: Arc<Pending<'t>>,
    /// The listing stamp, set on the node when its last slice is in the tree.
    stamp: Option<(crate::tree::Time, bool)>,
}

enum Job<'t> {
    /// List a directory that is already open.
    List {
        fd: OwnedFd,
        node: NodeId,
        path: Vec<u8>,
    },
    /// Open entry `index` of `parent` (a directory) and list it.
    Open {
        parent: Arc<Dir<'t>>,
        index: u32,
        node: NodeId,
        seen: Seen,
    },
    /// Stat entries `start..end` of `dir` and add them to the tree.
    Stat {
        dir: Arc<Dir<'t>>,
        start: u32,
        end: u32,
    },
}

struct Shared<'a> {
    tree: &'a RwLock<Tree>,
    root: &'a RootDir,
    reopen: Reopener<'a>,
    opts: &'a ScanOptions,
    progress: &'a Progress,
    injector: Injector<Job<'a>>,
    stealers: Vec<Stealer<Job<'a>>>,
    pending: AtomicUsize,
    abort: AtomicBool,
    /// A worker panicked: its job (and what it held back) never leaves `pending`, so the
    /// others stop instead of waiting for it, and the scope hands the panic to the caller.
    panicked: AtomicBool,
    failure: Mutex<Option<TreeError>>,
    /// Directory fds held by listed directories, and how many may be before they are given up.
    open_dirs: Arc<AtomicUsize>,
    fd_budget: usize,
    /// This run's own counts (`progress` may be shared with other runs at the same time).
    entries: std::sync::atomic::AtomicU64,
    dirs: std::sync::atomic::AtomicU64,
    errors: std::sync::atomic::AtomicU64,
    root_mnt: Option<u64>,
    root_dev: u64,
}

impl Drop for Dir<'_> {
    fn drop(&mut self) {
        let fd = self.fd.get_mut().unwrap_or_else(PoisonError::into_inner);
        if fd.take().is_some() {
            self.open_dirs.fetch_sub(1, Ordering::Relaxed);
        }
        ListingPool::give(std::mem::take(&mut self.listing));
    }
}

/// Listings of directories done, kept for the next ones: a fresh `Listing` per directory
/// cost a malloc, the reallocs of its growth and a free (and page faults for new heap),
/// 2-3 % of a scan's samples. Kept per thread (the thread that drops a directory keeps its
/// listing): a pool behind a mutex cost 3 % of the scan's user time in the lock alone.
struct ListingPool;

thread_local! {
    static LISTINGS: std::cell::RefCell<Vec<Listing>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl ListingPool {
    /// At most this many kept, none holding more than this many bytes (of names, or of
    /// entries): the pool must not keep a wide directory's listing resident for the rest of
    /// the scan.
    const KEEP: usize = 8;
    const KEEP_BYTES: usize = 16 * 1024;

    fn take() -> Listing {
        LISTINGS
            .try_with(|p| p.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn give(listing: Listing) {
        let entries = listing.entries.capacity() * std::mem::size_of::<(u32, u8, u8)>();
        if listing.names.capacity().max(entries) > Self::KEEP_BYTES {
            return;
        }
        // (A thread being torn down drops it instead.)
        let _ = LISTINGS.try_with(|p| {
            let mut kept = p.borrow_mut();
            if kept.len() < Self::KEEP {
                kept.push(listing);
            }
        });
    }

    /// Frees this thread's listings (the walk's first worker is the caller's thread, which
    /// outlives the walk).
    fn clear() {
        let _ = LISTINGS.try_with(|p| p.borrow_mut().clear());
    }
}

/// A slice stat'ed and not yet in the tree: its entries, and where they came from. A clone
/// holds just the size it needs (what a slice held back keeps).
#[derive(Clone)]
struct Staged<'t> {
    dir: Option<Arc<Dir<'t>>>,
    entries: Vec<NewEntry>,
    /// The index in the listing of each entry of `entries`.
    listing_index: Vec<u32>,
    /// The ctime of each entry of `entries` (zero when it was not stat'ed).
    ctimes: Vec<Time>,
    /// The directories the slice added: their ids, and their index in `entries`.
    new_dirs: Vec<(NodeId, usize)>,
    errors: u64,
    /// The listing clock before the slice's first stat (the stamps of its subdirectories).
    before: i128,
    /// Whether it was the directory's last slice into the tree (set when added).
    last: bool,
}

impl Staged<'_> {
    fn with_capacity(n: usize) -> Self {
        Staged {
            dir: None,
            entries: Vec::with_capacity(n),
            listing_index: Vec::with_capacity(n),
            ctimes: Vec::with_capacity(n),
            new_dirs: Vec::new(),
            errors: 0,
            before: 0,
            last: false,
        }
    }

    fn clear(&mut self) {
        self.dir = None;
        self.entries.clear();
        self.listing_index.clear();
        self.ctimes.clear();
        self.new_dirs.clear();
        self.errors = 0;
        self.last = false;
    }
}

/// Slices a worker holds back while the tree's lock is taken, at most: it stats the next
/// ones instead of sleeping on the lock, and adds them all at its next hold.
const MAX_DEFERRED: usize = 8;

/// And at most this many entries in them: each held back is a copy (about 90 bytes an
/// entry), and peak RSS is at its budget on the 500k tree.
const MAX_DEFERRED_ENTRIES: usize = 512;

/// Per-worker buffers, reused for every directory.
struct Local<'t> {
    deque: Worker<Job<'t>>,
    dirent_buf: Vec<u8>,
    /// The slice being stat'ed.
    cur: Staged<'t>,
    /// Slices stat'ed while the tree was locked, oldest first (see `MAX_DEFERRED`); each
    /// counts in `Shared::pending` until it is in the tree.
    deferred: Vec<Staged<'t>>,
    path_buf: Vec<u8>,
    /// Where the tree's name cache was at this worker's last hold of the lock.
    names: Option<tree::NameCacheHint>,
}

impl<'t> Local<'t> {
    fn new(deque: Worker<Job<'t>>) -> Local<'t> {
        Local {
            deque,
            dirent_buf: Vec::new(),
            cur: Staged::with_capacity(SLICE),
            deferred: Vec::with_capacity(MAX_DEFERRED),
            path_buf: Vec::new(),
            names: None,
        }
    }
}

pub(super) fn run(
    tree: &RwLock<Tree>,
    root: &RootDir,
    opts: &ScanOptions,
    progress: &Progress,
    start: Start,
) -> Result<ScanStats, ScanError> {
    let t0 = Instant::now();
    let threads = opts.threads.clamp(1, super::MAX_THREADS);
    let fd_limit = sys::raise_fd_limit();
    let deques: Vec<Worker<Job>> = (0..threads).map(|_| Worker::new_lifo()).collect();
    let shared = Shared {
        tree,
        root,
        reopen: Reopener::new(root),
        opts,
        progress,
        injector: Injector::new(),
        stealers: deques.iter().map(Worker::stealer).collect(),
        pending: AtomicUsize::new(0),
        abort: AtomicBool::new(false),
        panicked: AtomicBool::new(false),
        failure: Mutex::new(None),
        open_dirs: Arc::new(AtomicUsize::new(0)),
        fd_budget: usize::try_from(fd_limit / 2).unwrap_or(usize::MAX).max(16),
        entries: std::sync::atomic::AtomicU64::new(0),
        dirs: std::sync::atomic::AtomicU64::new(0),
        errors: std::sync::atomic::AtomicU64::new(0),
        root_mnt: root.stat().mnt_id,
        root_dev: root.stat().dev,
    };
    shared.pending.fetch_add(1, Ordering::SeqCst);
    shared.injector.push(Job::List {
        fd: start.fd,
        node: start.node,
        path: start.path,
    });
    std::thread::scope(|s| {
        let mut deques = deques.into_iter();
        let first = deques.next().expect("threads is at least 1");
        for deque in deques {
            let shared = &shared;
            // A thread that cannot be made (a thread limit, no memory for its stack) leaves
            // the work to the others: this one always takes part.
            let made = std::thread::Builder::new()
                .name("dtui-scan".into())
                .spawn_scoped(s, move || shared.work(&mut Local::new(deque)));
            if made.is_err() {
                break;
            }
        }
        shared.work(&mut Local::new(first));
    });
    ListingPool::clear();
    if let Some(e) = shared
        .failure
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    {
        return Err(e.into());
    }
    if progress.cancelled() {
        return Err(ScanError::Cancelled);
    }
    Ok(ScanStats {
        entries: shared.entries.load(Ordering::Relaxed),
        dirs: shared.dirs.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed),
        elapsed: t0.elapsed(),
    })
}

impl<'a> Shared<'a> {
    fn work(&self, local: &mut Local<'a>) {
        let _stop = StopOnPanic(&self.panicked);
        let backoff = Backoff::new();
        loop {
            if self.panicked.load(Ordering::SeqCst) {
                return;
            }
            if let Some(job) = self.find_job(&local.deque) {
                backoff.reset();
                if !self.abort.load(Ordering::Relaxed) && !self.progress.cancelled() {
                    self.run_job(job, local);
                }
                self.pending.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            if !local.deferred.is_empty() {
                // Out of work: what was held back goes in now (its subdirectories are work).
                self.flush(local);
                continue;
            }
            if self.pending.load(Ordering::SeqCst) == 0 {
                return;
            }
            if backoff.is_completed() {
                std::thread::sleep(Duration::from_micros(50));
            } else {
                backoff.snooze();
            }
        }
    }

    fn find_job(&self, local: &Worker<Job<'a>>) -> Option<Job<'a>> {
        if let Some(job) = local.pop() {
            return Some(job);
        }
        loop {
            let stolen = self
                .injector
                .steal_batch_and_pop(local)
                .or_else(|| self.stealers.iter().map(Stealer::steal).collect());
            match stolen {
                Steal::Success(job) => return Some(job),
                Steal::Empty => return None,
                Steal::Retry => {}
            }
        }
    }

    fn push(&self, local: &Local<'a>, job: Job<'a>) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        local.deque.push(job);
    }

    fn run_job(&self, job: Job<'a>, local: &mut Local<'a>) {
        match job {
            Job::List { fd, node, path } => {
                let pending = Arc::new(Pending::new(self.tree, node, None));
                self.list(fd, node, path, pending, None, local);
            }
            Job::Open {
                parent,
                index,
                node,
                seen,
            } => {
                self.progress.current.store(node.0, Ordering::Relaxed);
                let name = parent.listing.c_name(index as usize);
                let opened = {
                    let fd = parent.fd.read().unwrap_or_else(PoisonError::into_inner);
                    match fd.as_ref() {
                        Some(fd) => sys::open_dir_at(fd.as_fd(), name),
                        None => Err(Errno::EMFILE),
                    }
                };
                // The parent gave its fd up (or fds ran out): open it again from the nearest
                // directory still open, then this one.
                let opened = match opened {
                    Err(Errno::EMFILE | Errno::ENFILE) => self
                        .reopen
                        .open(self.tree, parent.node)
                        .and_then(|p| sys::open_dir_at(p.as_fd(), name)),
                    other => other,
                };
                match opened {
                    Ok(fd) => {
                        let mut path = Vec::new();
                        if self.opts.excludes.needs_path() {
                            let name = parent.listing.name(index as usize);
                            path.reserve(parent.path.len() + 1 + name.len());
                            path.extend_from_slice(&parent.path);
                            if path.last() != Some(&b'/') {
                                path.push(b'/');
                            }
                            path.extend_from_slice(name);
                        }
                        let pending = Arc::new(Pending::new(
                            self.tree,
                            node,
                            Some(Arc::clone(&parent.pending)),
                        ));
                        drop(parent);
                        self.list(fd, node, path, pending, Some(seen), local);
                    }
                    // Gone (or no longer a directory) since its parent was listed: a fresh
                    // scan would not show it, and its parent's ctime moved, so the next
                    // catch-up reads the parent again.
                    Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => {
                        let mut t = tree::write(self.tree);
                        if t.is_live(node) {
                            t.remove(node);
                        }
                    }
                    Err(e) => self.dir_error(node, e),
                }
            }
            Job::Stat { dir, start, end } => {
                self.stat_slice(&dir, start as usize, end as usize, local);
            }
        }
    }

    fn dir_error(&self, node: NodeId, e: Errno) {
        self.progress.errors.fetch_add(1, Ordering::Relaxed);
        self.errors.fetch_add(1, Ordering::Relaxed);
        tree::write(self.tree).set_read_error(node, e as u32);
    }

    fn list(
        &self,
        fd: OwnedFd,
        node: NodeId,
        path: Vec<u8>,
        pending: Arc<Pending<'a>>,
        seen: Option<Seen>,
        local: &mut Local<'a>,
    ) {
        let mut listing = ListingPool::take();
        // The stamp a later catch-up compares to know whether the listing can still be
        // trusted comes from a stat taken before the listing: the parent's (`Seen`), or else
        // the directory's own.
        let (mut stamp, dev) = if let Some(seen) = seen {
            (None, Some(seen.dev))
        } else {
            let before = super::listing_clock();
            let own = sys::stat_fd(fd.as_fd()).ok();
            let stamp = own.as_ref().map(|own| super::listing_stamp(own, before));
            (stamp, own.map(|own| own.dev))
        };
        // By the device a stat saw. A filesystem mounted on the name between the parent's
        // stat and the open is listed so too: only one that lies in its offsets could cut its
        // own listing short, and such a one decides what it lists anyway.
        let end = dev.map_or(sys::ListEnd::EmptyRead, |dev| self.root.list_end(dev));
        if let Err(e) = sys::read_dir_until(fd.as_fd(), &mut local.dirent_buf, &mut listing, end) {
            ListingPool::give(listing);
            self.dir_error(node, e);
            return;
        }
        if let Some(seen) = seen {
            stamp = match seen_stamp(fd.as_fd(), seen, &mut listing, &mut local.dirent_buf) {
                Ok(stamp) => stamp,
                Err(e) => {
                    ListingPool::give(listing);
                    self.dir_error(node, e);
                    return;
                }
            };
        }
        // Stamped once every entry is in the tree (an interrupted scan leaves it unstamped, so
        // a later catch-up reads it again instead of trusting a partial listing).
        self.progress.dirs.fetch_add(1, Ordering::Relaxed);
        self.dirs.fetch_add(1, Ordering::Relaxed);
        let n = listing.len();
        if n == 0 {
            ListingPool::give(listing);
            if let Some((ctime, trusted)) = stamp {
                tree::write(self.tree).set_listing_stamp(node, ctime, trusted);
            }
            return;
        }
        self.open_dirs.fetch_add(1, Ordering::Relaxed);
        let dir = Arc::new(Dir {
            fd: std::sync::RwLock::new(Some(fd)),
            slices_left: AtomicUsize::new(n.div_ceil(SLICE)),
            open_dirs: Arc::clone(&self.open_dirs),
            node,
            path,
            listing,
            pending,
            stamp,
        });
        let mut start = SLICE;
        while start < n {
            let end = (start + SLICE).min(n);
            self.push(
                local,
                Job::Stat {
                    dir: Arc::clone(&dir),
                    start: start as u32,
                    end: end as u32,
                },
            );
            start = end;
        }
        self.stat_slice(&dir, 0, n.min(SLICE), local);
    }

    fn stat_slice(&self, dir: &Arc<Dir<'a>>, start: usize, end: usize, local: &mut Local<'a>) {
        let staged = &mut local.cur;
        staged.clear();
        // The name cache's slots load while the names are stat'ed (they are read under the
        // tree's lock, where each miss held the other worker up).
        if let Some(hint) = local.names {
            for i in start..end {
                hint.prefetch(dir.listing.name(i));
            }
        }
        // Before every stat of the slice: the stamps of its subdirectories (see `Seen`).
        staged.before = super::listing_clock();
        let fd_guard = dir.fd.read().unwrap_or_else(PoisonError::into_inner);
        let Some(fd) = fd_guard.as_ref() else {
            return; // (cannot happen: the fd is given up only after the last slice)
        };
        let ctx = EntryCtx {
            dir: fd.as_fd(),
            dir_path: &dir.path,
            opts: self.opts,
            root_mnt: self.root_mnt,
            root_dev: self.root_dev,
        };
        for i in start..end {
            let listing = &dir.listing;
            let Some((info, ctime)) = stat_name_ctime(
                &ctx,
                listing.name(i),
                listing.c_name(i),
                listing.d_type(i),
                &mut local.path_buf,
            ) else {
                continue;
            };
            staged.ctimes.push(ctime);
            let (name_start, name_len, _) = dir.listing.entries[i];
            staged.errors += u64::from(info.flags & flags::READ_ERROR != 0);
            staged.entries.push(NewEntry {
                name_start,
                name_len,
                info,
            });
            staged.listing_index.push(i as u32);
        }
        drop(fd_guard);
        staged.dir = Some(Arc::clone(dir));
        self.add_or_defer(local);
    }

    /// Adds the slice just stat'ed (`local.cur`) to the tree, after the slices held back
    /// before it; or, when the tree is locked and this worker has other work queued, holds
    /// it back. A worker that waited for the lock sat idle for 15 us on average, each time
    /// the futex slept: on two cores about 3 % of a scan's wall time on the 2M tree.
    fn add_or_defer(&self, local: &mut Local<'a>) {
        let tree = match self.tree.try_write() {
            Ok(t) => t,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                let held: usize = local.deferred.iter().map(|s| s.entries.len()).sum();
                if local.deferred.len() < MAX_DEFERRED
                    && held + local.cur.entries.len() <= MAX_DEFERRED_ENTRIES
                    && !local.deque.is_empty()
                {
                    #[cfg(test)]
                    tests::HELD_BACK.fetch_add(1, Ordering::Relaxed);
                    self.pending.fetch_add(1, Ordering::SeqCst);
                    local.deferred.push(local.cur.clone());
                    local.cur.clear();
                    return;
                }
                tree::write(self.tree)
            }
        };
        self.add_all(tree, local, true);
    }

    /// Adds the slices held back (blocking on the lock), or drops them once the scan is
    /// stopping.
    fn flush(&self, local: &mut Local<'a>) {
        if self.abort.load(Ordering::Relaxed) || self.progress.cancelled() {
            for _ in local.deferred.drain(..) {
                self.pending.fetch_sub(1, Ordering::SeqCst);
            }
            return;
        }
        let tree = tree::write(self.tree);
        self.add_all(tree, local, false);
    }

    /// Adds the slices held back, then `local.cur` if `with_cur`, under one hold of the
    /// lock; then queues their subdirectories. Each slice held back leaves `pending` after.
    fn add_all(&self, guard: RwLockWriteGuard<'_, Tree>, local: &mut Local<'a>, with_cur: bool) {
        let mut deferred = std::mem::take(&mut local.deferred);
        let mut cur = std::mem::replace(&mut local.cur, Staged::with_capacity(0));
        // Declared after the slices, so dropped before them if an add panics: a slice's
        // directory may be the last holder of a deep `Pending`, whose drop takes the lock.
        let mut t = guard;
        local.names = Some(t.name_cache_hint());
        let mut failed = None;
        for s in deferred.iter_mut().chain(with_cur.then_some(&mut cur)) {
            if let Err(e) = self.add_locked(&mut t, s) {
                failed = Some(e);
                break;
            }
        }
        drop(t);
        let added = failed.is_none();
        if let Some(e) = failed {
            self.abort.store(true, Ordering::Relaxed);
            self.failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert(e);
        }
        for s in deferred.drain(..) {
            if added {
                self.after_add(&s, local);
            }
            self.pending.fetch_sub(1, Ordering::SeqCst);
        }
        if with_cur && added {
            self.after_add(&cur, local);
        }
        cur.clear();
        local.cur = cur;
        local.deferred = deferred;
    }

    /// One slice into the tree, with the lock held.
    fn add_locked(&self, t: &mut Tree, s: &mut Staged<'a>) -> Result<(), TreeError> {
        let Some(dir) = s.dir.as_ref() else {
            return Ok(());
        };
        let new_dirs = &mut s.new_dirs;
        let owed = t.add_children_local(dir.node, &s.entries, &dir.listing.names, |id, k| {
            new_dirs.push((id, k));
        })?;
        s.last = dir.slices_left.fetch_sub(1, Ordering::AcqRel) == 1;
        if let (true, Some((ctime, trusted))) = (s.last, dir.stamp) {
            t.set_listing_stamp(dir.node, ctime, trusted);
        }
        dir.pending.owe_locked(t, owed);
        self.count(s, owed);
        Ok(())
    }

    /// The progress counts of a slice added (`owed`: what it was charged).
    fn count(&self, s: &Staged<'a>, owed: tree::Delta) {
        // The bytes the slice was charged, not the sum of its sizes: a second name of a
        // hard link adds nothing, so the progress never passes the final total.
        let p = self.progress;
        let n = s.entries.len() as u64;
        p.entries.fetch_add(n, Ordering::Relaxed);
        p.apparent
            .fetch_add(clamp_u64(owed.apparent), Ordering::Relaxed);
        p.disk.fetch_add(clamp_u64(owed.disk), Ordering::Relaxed);
        p.errors.fetch_add(s.errors, Ordering::Relaxed);
        self.entries.fetch_add(n, Ordering::Relaxed);
        self.errors.fetch_add(s.errors, Ordering::Relaxed);
    }

    /// Once a slice is in the tree: its directory's fd given up if it was the last slice and
    /// too many directories hold one, and an `Open` job queued for each of its directories.
    fn after_add(&self, s: &Staged<'a>, local: &Local<'a>) {
        let Some(dir) = s.dir.as_ref() else { return };
        if s.last && self.open_dirs.load(Ordering::Relaxed) > self.fd_budget {
            // Every slice is in; only subdirectory opens still need this fd, and too many
            // directories hold one: give it up (they reopen it through `Reopener`).
            if dir
                .fd
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .is_some()
            {
                self.open_dirs.fetch_sub(1, Ordering::Relaxed);
            }
        }
        for &(node, entry) in &s.new_dirs {
            let info = &s.entries[entry].info;
            if info.flags & (flags::NOT_CHARGED | flags::READ_ERROR) != 0 {
                continue; // excluded, other filesystem or unreadable: not descended into
            }
            let seen = Seen {
                ino: info.ino,
                dev: info.dev,
                stamp: super::ctime_stamp(s.ctimes[entry], s.before),
            };
            self.push(
                local,
                Job::Open {
                    parent: Arc::clone(dir),
                    index: s.listing_index[entry],
                    node,
                    seen,
                },
            );
        }
    }
}

/// Sets its flag if dropped while its thread unwinds (see `Shared::panicked`).
struct StopOnPanic<'s>(&'s AtomicBool);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

/// A charged delta (never negative while a scan only adds) as a progress count.
fn clamp_u64(v: i128) -> u64 {
    u64::try_from(v.max(0)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    /// Slices held back for the tree's lock, by every scan of this test binary.
    pub(super) static HELD_BACK: AtomicUsize = AtomicUsize::new(0);

    #[test]
    fn slices_held_back_while_the_tree_is_locked_all_go_in_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A root of 6 slices and directories below it, each of 2 slices.
        for i in 0..2600 {
            std::fs::write(dir.path().join(format!("f{i}")), b"x").expect("write");
        }
        for d in 0..4 {
            let sub = dir.path().join(format!("d{d}"));
            std::fs::create_dir(&sub).expect("mkdir");
            for i in 0..700 {
                std::fs::write(sub.join(format!("g{i}")), vec![b'y'; 5000]).expect("write");
            }
        }
        let root = RootDir::open(dir.path()).expect("root");
        let tree = RwLock::new(
            root.new_tree(crate::tree::Arena::create_temp().expect("arena"))
                .expect("tree"),
        );
        let opts = ScanOptions {
            threads: 2,
            ..ScanOptions::default()
        };
        let progress = Progress::new();
        let before = HELD_BACK.load(Ordering::Relaxed);
        let node = tree::read(&tree).root();
        let fd = sys::dup_dir(root.fd()).expect("dup");
        let stats = std::thread::scope(|s| {
            // The lock taken before the scan starts, released once a worker stat'ed a slice
            // it could not add and went on (the root's listing is read without the lock).
            let mut held = Some(tree::write(&tree));
            let start = Start::at(fd, node, dir.path());
            let scan = s.spawn(|| run(&tree, &root, &opts, &progress, start));
            let deadline = Instant::now() + Duration::from_secs(20);
            while HELD_BACK.load(Ordering::Relaxed) == before && Instant::now() < deadline {
                std::thread::park_timeout(Duration::from_millis(1));
            }
            held.take();
            scan.join().expect("scan thread").expect("scan")
        });
        assert!(
            HELD_BACK.load(Ordering::Relaxed) > before,
            "no slice was held back"
        );
        let (fresh, _) =
            super::super::scan_path(dir.path(), &opts, &Progress::new()).expect("scan");
        let t = tree.read().expect("tree");
        assert_eq!(stats.entries, 2600 + 4 + 4 * 700);
        assert_eq!(t.totals(t.root()), fresh.totals(fresh.root()));
        for d in 0..4 {
            let path = dir.path().join(format!("d{d}"));
            let node = t.lookup(&path).expect("in the tree");
            assert_eq!(t.children(node).count(), 700, "d{d}");
            assert_stamped_with_its_ctime(&t, &path);
        }
        assert_stamped_with_its_ctime(&t, dir.path());
    }

    /// Regression: a worker that panicked (here: a listing added under a node that is not a
    /// directory) left its job in `pending`, and the other worker waited for it forever.
    #[test]
    fn a_worker_that_panics_stops_the_scan_instead_of_hanging_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("f"), b"x").expect("write");
        let root = RootDir::open(dir.path()).expect("root");
        let mut t = root
            .new_tree(crate::tree::Arena::create_temp().expect("arena"))
            .expect("tree");
        let top = t.root();
        let file = t
            .add_child(
                top,
                b"not-a-dir",
                &tree::EntryInfo::bare(tree::Kind::File, 0, 0),
            )
            .expect("add");
        let path = dir.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        // Its own thread, so that a scan that hangs fails the test instead.
        std::thread::spawn(move || {
            let tree = RwLock::new(t);
            let opts = ScanOptions {
                threads: 2,
                ..ScanOptions::default()
            };
            let fd = sys::dup_dir(root.fd()).expect("dup");
            let start = Start::at(fd, file, &path);
            let scan = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(&tree, &root, &opts, &Progress::new(), start)
            }));
            let _ = tx.send(scan.is_err());
        });
        let panicked = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the scan returned");
        assert!(panicked, "the worker's panic reaches the caller");
    }

    /// (`listing_stamp` is `Some` for every directory: one never stamped has a ctime of 0.)
    fn assert_stamped_with_its_ctime(t: &Tree, path: &std::path::Path) {
        let node = t.lookup(path).expect("in the tree");
        let (ctime, _) = t.listing_stamp(node).expect("a directory");
        let meta = std::fs::metadata(path).expect("stat");
        assert_eq!(
            (ctime.sec, i64::from(ctime.nsec)),
            (meta.ctime(), meta.ctime_nsec()),
            "{}",
            path.display()
        );
    }

    #[test]
    fn a_scan_stamps_every_directory_with_its_ctime() {
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["x", "x/y", "x/y/z", "w"] {
            std::fs::create_dir(dir.path().join(d)).expect("mkdir");
            std::fs::write(dir.path().join(d).join("f"), b"x").expect("write");
        }
        let opts = ScanOptions::default();
        let (tree, _) = super::super::scan_path(dir.path(), &opts, &Progress::new()).expect("scan");
        for d in ["x", "x/y", "x/y/z", "w"] {
            assert_stamped_with_its_ctime(&tree, &dir.path().join(d));
        }
    }
}
