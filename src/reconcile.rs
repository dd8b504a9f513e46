//! Aligning the tree with the disk, applying only the differences.
//!
//! `full` walks every directory of the tree: one whose mtime is unchanged (and not so recent
//! that a change within the same second could hide) keeps its list of names, but each child is
//! still stat'ed; any other is re-read. New children are added (a new directory is scanned once,
//! in parallel), vanished ones removed, changed ones updated, and every size difference bubbles
//! to the root. Used to catch up after loading a cache, and by `reconcile --full`.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;

use nix::errno::Errno;

use crate::scan::{self, Progress, ScanError, ScanOptions, sys};
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
    /// Directories whose listing was known unchanged (mtime), their children stat'ed only.
    pub dirs_kept: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

impl ReconcileStats {
    #[must_use]
    pub fn changed(&self) -> bool {
        self.added + self.removed + self.resized + self.replaced > 0
    }
}

/// A directory still to visit: the root, or a child opened relative to its parent's fd.
struct Visit {
    node: NodeId,
    parent_fd: Option<Arc<OwnedFd>>,
    name: Vec<u8>,
}

/// Seconds of slack around `verified_at`: a directory modified this close to the last check
/// may have changed again within the same mtime second, so it is re-read.
const MTIME_SLACK: i64 = 2;

/// Walks the whole tree and applies every difference with the disk. `verified_at` is when the
/// tree was last known exact (seconds since the epoch; 0 if unknown: every directory is read).
pub fn full(
    lock: &RwLock<Tree>,
    opts: &ScanOptions,
    progress: &Progress,
    verified_at: u64,
) -> Result<ReconcileStats, ScanError> {
    let t0 = Instant::now();
    let (root, root_path) = {
        let t = tree::read(lock);
        (t.root(), t.root_path())
    };
    let root_fd = sys::open_dir_path(&root_path).map_err(|e| ScanError::Root {
        path: root_path.clone(),
        source: std::io::Error::from_raw_os_error(e as i32),
    })?;
    let root_stat = sys::stat_fd(root_fd.as_fd()).map_err(|e| ScanError::Root {
        path: root_path.clone(),
        source: std::io::Error::from_raw_os_error(e as i32),
    })?;
    let ctx = Ctx {
        lock,
        opts,
        single: ScanOptions {
            threads: 1,
            ..opts.clone()
        },
        progress,
        verified_at,
        root_mnt: root_stat.mnt_id,
        root_dev: root_stat.dev,
    };
    // Directories are independent: workers take them from a shared stack (their children go
    // back on it: depth first, so few directories hold an open fd at a time), read and stat
    // without the tree lock, and apply each directory's differences under one short write lock.
    let _ = sys::raise_fd_limit();
    let queue: Mutex<Vec<Job>> = Mutex::new(Vec::new());
    let pending = AtomicUsize::new(1);
    let failure: Mutex<Option<ScanError>> = Mutex::new(None);
    queue.lock().unwrap_or_else(PoisonError::into_inner).push((
        Visit {
            node: root,
            parent_fd: None,
            name: Vec::new(),
        },
        Some(root_fd),
    ));
    let threads = opts.threads.max(1);
    let totals = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
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
    for t in totals {
        stats.added += t.added;
        stats.removed += t.removed;
        stats.resized += t.resized;
        stats.replaced += t.replaced;
        stats.dirs_read += t.dirs_read;
        stats.dirs_kept += t.dirs_kept;
        stats.errors += t.errors;
    }
    stats.elapsed = t0.elapsed();
    Ok(stats)
}

type Job = (Visit, Option<OwnedFd>);

impl Ctx<'_> {
    fn work(
        &self,
        queue: &Mutex<Vec<Job>>,
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
                    std::thread::sleep(std::time::Duration::from_micros(50));
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

    /// Opens one queued directory and reconciles it.
    fn visit(
        &self,
        (v, fd): Job,
        children: &mut Vec<Visit>,
        stats: &mut ReconcileStats,
    ) -> Result<(), ScanError> {
        let fd = match (fd, &v.parent_fd) {
            (Some(fd), _) => Ok(fd),
            (None, Some(parent)) => CString::new(v.name.clone())
                .map_err(|_| Errno::EINVAL)
                .and_then(|c| sys::open_dir_at(parent.as_fd(), &c)),
            (None, None) => return Ok(()),
        };
        match fd {
            Ok(fd) => self.dir(v.node, &Arc::new(fd), children, stats),
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
}

struct Ctx<'a> {
    lock: &'a RwLock<Tree>,
    opts: &'a ScanOptions,
    /// `opts` with one thread, for new subtrees found by a worker (the workers are the
    /// parallelism).
    single: ScanOptions,
    progress: &'a Progress,
    verified_at: u64,
    root_mnt: Option<u64>,
    root_dev: u64,
}

impl Ctx<'_> {
    /// Reconciles one directory's direct children; queues its subdirectories.
    #[expect(
        clippy::too_many_lines,
        reason = "read, stat, diff and apply are one sequence over the same locals"
    )]
    fn dir(
        &self,
        dir: NodeId,
        fd: &Arc<OwnedFd>,
        stack: &mut Vec<Visit>,
        stats: &mut ReconcileStats,
    ) -> Result<(), ScanError> {
        self.progress.current.store(dir.0, Ordering::Relaxed);
        let Ok(own) = sys::stat_fd(fd.as_fd()) else {
            return Ok(());
        };
        let (cached_mtime, dir_flags, path, cached) = {
            let t = tree::read(self.lock);
            if !t.is_live(dir) {
                return Ok(());
            }
            let cached: HashMap<Vec<u8>, (NodeId, Kind)> = t
                .children(dir)
                .map(|c| (t.name(c).to_vec(), (c, t.kind(c))))
                .collect();
            (t.node(dir).mtime, t.flags(dir), t.path_of(dir), cached)
        };
        let had_error = dir_flags & flags::READ_ERROR != 0;
        // A directory's listing is trusted only if its mtime is the one recorded when it was
        // last read (its parent's pass leaves it alone for this), that was not too close to
        // the last verification, and it was read to the end (not `STALE`).
        let unchanged = dir_flags & (flags::READ_ERROR | flags::STALE) == 0
            && crate::tree::node::clamp_mtime(own.mtime) == cached_mtime
            && own.mtime + MTIME_SLACK < self.verified_at as i64;

        // What is on disk now: (name, stat or None if it vanished).
        let mut listing = sys::Listing::default();
        if unchanged {
            stats.dirs_kept += 1;
            for (name, &(_, kind)) in &cached {
                listing.push(name, dtype_of(kind));
            }
        } else {
            stats.dirs_read += 1;
            if let Err(e) = sys::read_dir(fd.as_fd(), &mut Vec::new(), &mut listing) {
                stats.errors += 1;
                self.progress.errors.fetch_add(1, Ordering::Relaxed);
                stats.removed += unreadable(&mut tree::write(self.lock), dir, e);
                return Ok(());
            }
        }
        let ectx = scan::EntryCtx {
            dir: fd.as_fd(),
            dir_path: std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()),
            opts: self.opts,
            root_mnt: self.root_mnt,
            root_dev: self.root_dev,
        };
        let mut path_buf = Vec::new();
        let fresh: Vec<Option<EntryInfo>> = (0..listing.len())
            .map(|i| scan::stat_entry(&ectx, &listing, i, &mut path_buf))
            .collect();
        self.progress
            .entries
            .fetch_add(listing.len() as u64, Ordering::Relaxed);

        let mut new_dirs = Vec::new();
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
            t.update_in_place(dir, &own_info);
            let mut cached: HashMap<Vec<u8>, NodeId> =
                cached.into_iter().map(|(k, (id, _))| (k, id)).collect();
            for (i, info) in fresh.iter().enumerate() {
                let name = listing.name(i);
                let old = cached.remove(name);
                let Some(info) = info else {
                    if let Some(id) = old {
                        stats.removed += 1 + t.totals(id).items;
                        t.remove(id);
                    }
                    continue;
                };
                let id = if let Some(id) = old {
                    {
                        let was = *t.node(id);
                        let mut same = *info;
                        if info.kind == Kind::Dir && was.kind == Kind::Dir as u8 {
                            // Its own visit compares and records its mtime.
                            same.mtime = i64::from(was.mtime);
                        }
                        if t.update_in_place(id, &same) {
                            if was.apparent != info.apparent || was.disk != info.disk {
                                stats.resized += 1;
                            }
                            if info.kind == Kind::Dir && info.flags & flags::NOT_CHARGED == 0 {
                                stack.push(Visit {
                                    node: id,
                                    parent_fd: Some(Arc::clone(fd)),
                                    name: name.to_vec(),
                                });
                            }
                            continue;
                        }
                        stats.replaced += 1;
                        stats.removed += t.totals(id).items;
                        t.remove(id);
                        t.add_child(dir, name, info)?
                    }
                } else {
                    stats.added += 1;
                    t.add_child(dir, name, info)?
                };
                if info.kind == Kind::Dir
                    && info.flags & (flags::NOT_CHARGED | flags::READ_ERROR) == 0
                {
                    // Until its scan has run to the end, its (empty) listing is not trusted.
                    t.set_flag(id, flags::STALE, true);
                    new_dirs.push(id);
                }
            }
            if !unchanged {
                for (_, id) in cached {
                    stats.removed += 1 + t.totals(id).items;
                    t.remove(id);
                }
            }
        }
        for id in new_dirs {
            let s = scan::scan_subtree(self.lock, id, &self.single, self.progress)?;
            stats.added += s.entries;
            stats.errors += s.errors;
            let mut t = tree::write(self.lock);
            if t.is_live(id) {
                t.set_flag(id, flags::STALE, false);
            }
        }
        Ok(())
    }
}

/// A directory that can no longer be opened or listed: flagged, and its cached contents
/// dropped, as a fresh scan would show it. Returns the entries removed.
fn unreadable(t: &mut Tree, dir: NodeId, e: Errno) -> u64 {
    let kids: Vec<NodeId> = t.children(dir).collect();
    let mut removed = 0;
    for k in kids {
        removed += 1 + t.totals(k).items;
        t.remove(k);
    }
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
