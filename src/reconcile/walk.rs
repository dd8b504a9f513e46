//! The pass's walk: workers take directories from a shared stack (depth first, so few hold an
//! open fd at a time), open each from its parent's fd while the fd budget allows (else through
//! the tree), read its listing unless its stamp is trusted, merge it (`merge`), and queue its
//! subdirectories; new ones are scanned whole, once.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crossbeam_utils::Backoff;

use nix::errno::Errno;

use super::{Ctx, ReconcileStats, Trust};
use crate::fs::sys;
use crate::scan::{self, ScanError};
use crate::tree::{self, Kind, NodeId, Tree, flags};

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
pub(super) struct Visit<'a> {
    node: NodeId,
    /// Its parent's fd while the budget allows; else it is reopened through the tree.
    parent_fd: Option<Arc<HeldFd<'a>>>,
    name: CString,
    /// Only when exclude patterns match on paths.
    path: Arc<[u8]>,
}
impl Visit<'_> {
    /// The pass's first directory, opened through the tree (or given its fd).
    pub(super) fn start(node: NodeId, path: Arc<[u8]>) -> Self {
        Visit {
            node,
            parent_fd: None,
            name: CString::default(),
            path,
        }
    }
}

/// `EMFILE` is retried this many times (closing what can be closed) before the pass fails.
const EMFILE_RETRIES: u32 = 50;
pub(super) type Job<'a> = (Visit<'a>, Option<OwnedFd>);
impl<'a> Ctx<'a> {
    pub(super) fn work(
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
            // On ext4, ended without the empty read (`sys::ListEnd`), by the device the open
            // directory itself is on.
            let end = self.root.list_end(own.dev);
            let read = DIRENTS
                .with(|b| sys::read_dir_until(fd.as_fd(), &mut b.borrow_mut(), &mut listing, end));
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
