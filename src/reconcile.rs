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
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

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
    let mut stats = ReconcileStats::default();
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
        progress,
        verified_at,
        root_mnt: root_stat.mnt_id,
        root_dev: root_stat.dev,
    };
    let mut stack = vec![Visit {
        node: root,
        parent_fd: None,
        name: Vec::new(),
    }];
    let mut root_fd = Some(root_fd);
    while let Some(v) = stack.pop() {
        if progress.cancelled() {
            return Err(ScanError::Cancelled);
        }
        let fd = match (&v.parent_fd, root_fd.take()) {
            (None, Some(fd)) => Ok(fd),
            (Some(parent), _) => CString::new(v.name.clone())
                .map_err(|_| Errno::EINVAL)
                .and_then(|c| sys::open_dir_at(parent.as_fd(), &c)),
            (None, None) => continue,
        };
        match fd {
            Ok(fd) => ctx.dir(v.node, &Arc::new(fd), &mut stack, &mut stats)?,
            Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => {
                // Gone, or no longer a directory, since its parent was read: its parent's next
                // pass sees what is there now; drop the stale subtree.
                let mut t = tree::write(lock);
                if t.is_live(v.node) {
                    stats.removed += 1 + t.totals(v.node).items;
                    t.remove(v.node);
                }
            }
            Err(e) => {
                stats.errors += 1;
                progress.errors.fetch_add(1, Ordering::Relaxed);
                tree::write(lock).set_read_error(v.node, e as u32);
            }
        }
    }
    stats.elapsed = t0.elapsed();
    Ok(stats)
}

struct Ctx<'a> {
    lock: &'a RwLock<Tree>,
    opts: &'a ScanOptions,
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
        let (cached_mtime, had_error, path, cached) = {
            let t = tree::read(self.lock);
            if !t.is_live(dir) {
                return Ok(());
            }
            let cached: HashMap<Vec<u8>, NodeId> =
                t.children(dir).map(|c| (t.name(c).to_vec(), c)).collect();
            (
                t.node(dir).mtime,
                t.flags(dir) & flags::READ_ERROR != 0,
                t.path_of(dir),
                cached,
            )
        };
        let unchanged = !had_error
            && crate::tree::node::clamp_mtime(own.mtime) == cached_mtime
            && own.mtime + MTIME_SLACK < self.verified_at as i64;

        // What is on disk now: (name, stat or None if it vanished).
        let mut listing = sys::Listing::default();
        if unchanged {
            stats.dirs_kept += 1;
            for name in cached.keys() {
                listing.push(name, sys::DT_UNKNOWN);
            }
        } else {
            stats.dirs_read += 1;
            if let Err(e) = sys::read_dir(fd.as_fd(), &mut Vec::new(), &mut listing) {
                stats.errors += 1;
                self.progress.errors.fetch_add(1, Ordering::Relaxed);
                tree::write(self.lock).set_read_error(dir, e as u32);
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
            let mut cached = cached;
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
                        if t.update_in_place(id, info) {
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
            let s = scan::scan_subtree(self.lock, id, self.opts, self.progress)?;
            stats.added += s.entries;
            stats.errors += s.errors;
        }
        Ok(())
    }
}
