//! The parallel scanner: fills a `Tree` from the filesystem.
//!
//! Work-stealing over directories and over slices of wide directories, everything relative to
//! the parent's fd (`openat`, `statx`), raw `getdents64`, no symlink ever followed, no
//! allocation or channel message per entry. Errors are data: a directory that cannot be read is
//! flagged on its node and counted, and the scan goes on. Progress counters are atomics that
//! anyone may read while it runs.
//!
//! Besides the full scan, later stages use `read_children` (one directory's direct children,
//! for reconcile) and `scan_subtree` (a new directory found by a watcher, into the live tree).

mod entry;
mod exclude;
mod walk;

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use nix::errno::Errno;

pub use entry::{EntryCtx, stat_entry, stat_name};
pub use exclude::{ExcludeError, Excludes};

use crate::fs::{Cancel, FsError, RootDir, chain_names, open_down, open_node_dir, sys};
use crate::tree::{self, Arena, EntryInfo, Kind, NodeId, Time, Tree, TreeError};

/// How to scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Worker threads (at least 1).
    pub threads: usize,
    /// `-x`: do not cross into other filesystems (by mount id).
    pub one_filesystem: bool,
    pub excludes: Excludes,
    /// `--exclude-caches`: a directory holding a valid `CACHEDIR.TAG` is listed, excluded.
    pub exclude_caches: bool,
    /// `--exclude-kernfs`: a directory on a kernel filesystem (`/proc`, `/sys`, cgroup,
    /// debugfs...) is listed, excluded.
    pub exclude_kernfs: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            threads: default_threads(),
            one_filesystem: false,
            excludes: Excludes::default(),
            exclude_caches: false,
            exclude_kernfs: false,
        }
    }
}

/// More scanner threads than this only add contention (and `-t` with a huge number must not
/// exhaust memory spawning them).
pub const MAX_THREADS: usize = 256;

/// The number of cores, the default thread count.
#[must_use]
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Counters a scan updates as it goes; safe to read from any thread at any time.
#[derive(Debug, Default)]
pub struct Progress {
    pub entries: AtomicU64,
    pub dirs: AtomicU64,
    pub apparent: AtomicU64,
    pub disk: AtomicU64,
    pub errors: AtomicU64,
    /// The directory a worker entered last (a `NodeId`), for "current path" displays.
    pub current: AtomicU32,
    /// Set to stop a running scan or reconcile early (the user quit).
    pub cancel: Cancel,
}

impl Progress {
    #[must_use]
    pub fn new() -> Progress {
        Progress {
            current: AtomicU32::new(u32::MAX),
            ..Progress::default()
        }
    }

    /// Counts from zero again, for the next pass (a cancel asked stays asked): each pass
    /// says what it did, so a verification never counts past the tree's entries.
    pub fn restart(&self) {
        for c in [
            &self.entries,
            &self.dirs,
            &self.apparent,
            &self.disk,
            &self.errors,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        self.current.store(u32::MAX, Ordering::Relaxed);
    }

    /// Takes the counts another process's engine reported (an attached client's replica).
    pub fn set(&self, p: &ProgressSnapshot) {
        self.entries.store(p.entries, Ordering::Relaxed);
        self.dirs.store(p.dirs, Ordering::Relaxed);
        self.apparent.store(p.apparent, Ordering::Relaxed);
        self.disk.store(p.disk, Ordering::Relaxed);
        self.errors.store(p.errors, Ordering::Relaxed);
        self.current.store(p.current.0, Ordering::Relaxed);
    }

    /// Asks a running scan or reconcile to stop at the next directory.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    #[must_use]
    pub fn cancelled(&self) -> bool {
        self.cancel.cancelled()
    }

    #[must_use]
    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            entries: self.entries.load(Ordering::Relaxed),
            dirs: self.dirs.load(Ordering::Relaxed),
            apparent: self.apparent.load(Ordering::Relaxed),
            disk: self.disk.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            current: NodeId(self.current.load(Ordering::Relaxed)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressSnapshot {
    pub entries: u64,
    pub dirs: u64,
    pub apparent: u64,
    pub disk: u64,
    pub errors: u64,
    pub current: NodeId,
}

impl Default for ProgressSnapshot {
    /// Nothing counted, no directory being read.
    fn default() -> ProgressSnapshot {
        ProgressSnapshot {
            entries: 0,
            dirs: 0,
            apparent: 0,
            disk: 0,
            errors: 0,
            current: NodeId::NONE,
        }
    }
}

/// What a finished scan reports.
#[derive(Debug, Clone, Copy)]
pub struct ScanStats {
    /// Entries found below the scanned directory.
    pub entries: u64,
    pub dirs: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

/// The margin for the kernel's file timestamps: they come from a coarse clock (one tick,
/// up to 10 ms, behind the real time), so a directory changed less than this before its
/// listing was read may change again later with the very same ctime.
const TIMESTAMP_MARGIN_NS: i128 = 50_000_000;
/// Filesystems that keep whole seconds (a ctime with 0 ns, almost surely) need a second.
const COARSE_MARGIN_NS: i128 = 2_000_000_000;

/// The real-time clock, in nanoseconds, read just before a directory's stat and listing.
#[must_use]
pub fn listing_clock() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// The stamp a listing read after `stat` (taken at `before`, see `listing_clock`) leaves on
/// its directory: the ctime, and whether an unchanged ctime will prove an unchanged listing.
#[must_use]
pub fn listing_stamp(stat: &sys::Stat, before: i128) -> (Time, bool) {
    ctime_stamp(
        Time {
            sec: stat.ctime,
            nsec: stat.ctime_nsec,
        },
        before,
    )
}

/// `listing_stamp` from the ctime alone.
#[must_use]
pub fn ctime_stamp(ctime: Time, before: i128) -> (Time, bool) {
    let margin = if ctime.nsec == 0 {
        COARSE_MARGIN_NS
    } else {
        TIMESTAMP_MARGIN_NS
    };
    (ctime, ctime.as_nanos() + margin < before)
}

/// Why a scan could not start (errors below the root are recorded in the tree instead).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{}: {source}", crate::path::display_path(.path))]
    Root {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("{}: not in the tree, or not a directory", crate::path::display_path(.0))]
    NoSuchNode(PathBuf),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("cancelled")]
    Cancelled,
}

/// Scans a whole tree: opens `path`, builds a tree in a temporary arena and fills it.
pub fn scan_path(
    path: &Path,
    opts: &ScanOptions,
    progress: &Progress,
) -> Result<(Tree, ScanStats), ScanError> {
    let root = RootDir::open(path)?;
    let tree = RwLock::new(root.new_tree(Arena::create_temp().map_err(TreeError::from)?)?);
    let stats = scan_root(&root, &tree, opts, progress)?;
    let tree = tree
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok((tree, stats))
}

/// Fills `tree` (which holds only `root`'s node) from `root`. Readers may lock the tree while
/// this runs and see the totals grow.
pub fn scan_root(
    root: &RootDir,
    tree: &RwLock<Tree>,
    opts: &ScanOptions,
    progress: &Progress,
) -> Result<ScanStats, ScanError> {
    let node = tree::read(tree).root();
    let fd = sys::dup_dir(root.fd()).map_err(|e| ScanError::Root {
        path: root.path.clone(),
        source: std::io::Error::from_raw_os_error(e as i32),
    })?;
    walk::run(
        tree,
        root,
        opts,
        progress,
        walk::Start::at(fd, node, &root.path),
    )
}

/// Scans a directory of the tree afresh (a new directory found after the first scan), in
/// parallel, into the live tree. Children it already has are dropped first, so a second scan
/// of the same directory never adds them twice.
pub fn scan_subtree(
    tree: &RwLock<Tree>,
    root: &RootDir,
    node: NodeId,
    opts: &ScanOptions,
    progress: &Progress,
) -> Result<ScanStats, ScanError> {
    scan_subtree_fd(tree, root, node, None, opts, progress)
}

/// `scan_subtree` with the directory already open (by its parent's fd), or `None` to open
/// it from the root's.
pub fn scan_subtree_fd(
    tree: &RwLock<Tree>,
    root: &RootDir,
    node: NodeId,
    fd: Option<OwnedFd>,
    opts: &ScanOptions,
    progress: &Progress,
) -> Result<ScanStats, ScanError> {
    let (path, names) = {
        let mut t = tree::write(tree);
        if !t.is_live(node) || t.kind(node) != Kind::Dir {
            return Err(ScanError::NoSuchNode(t.path_of(node)));
        }
        let old: Vec<NodeId> = t.children(node).collect();
        t.remove_children(node, &old);
        let path = if opts.excludes.needs_path() {
            t.path_of(node)
        } else {
            PathBuf::new()
        };
        let names = fd.is_none().then(|| chain_names(&t, node, |_| false).1);
        (path, names)
    };
    // Opened without the lock held.
    let opened = match (fd, names) {
        (Some(fd), _) => Ok(fd),
        (None, Some(names)) => open_down(root.fd(), &names),
        (None, None) => Err(Errno::EBADF),
    };
    let fd = match opened {
        Ok(fd) => fd,
        Err(e) => {
            tree::write(tree).set_read_error(node, e as u32);
            progress.errors.fetch_add(1, Ordering::Relaxed);
            return Ok(ScanStats {
                entries: 0,
                dirs: 0,
                errors: 1,
                elapsed: Duration::ZERO,
            });
        }
    };
    walk::run(tree, root, opts, progress, walk::Start::at(fd, node, &path))
}

/// One direct child of a directory, as `read_children` found it.
#[derive(Debug, Clone)]
pub struct Child {
    pub name: Vec<u8>,
    pub info: EntryInfo,
}

/// Reads the direct children of a directory of the tree (no recursion, the tree untouched):
/// the shallow re-read that reconcile diffs against the cached children.
pub fn read_children(
    tree: &RwLock<Tree>,
    root: &RootDir,
    node: NodeId,
    opts: &ScanOptions,
) -> Result<Vec<Child>, Errno> {
    let (fd, path) = {
        let t = tree::read(tree);
        (open_node_dir(&t, root, node)?, t.path_of(node))
    };
    let mut listing = sys::Listing::default();
    sys::read_dir(fd.as_fd(), &mut Vec::new(), &mut listing)?;
    let mut out = Vec::with_capacity(listing.len());
    let mut path_buf = Vec::new();
    let ctx = EntryCtx {
        dir: fd.as_fd(),
        dir_path: path.as_os_str().as_bytes(),
        opts,
        root_mnt: root.stat().mnt_id,
        root_dev: root.stat().dev,
    };
    for i in 0..listing.len() {
        if let Some(info) = stat_entry(&ctx, &listing, i, &mut path_buf) {
            out.push(Child {
                name: listing.name(i).to_vec(),
                info,
            });
        }
    }
    Ok(out)
}
