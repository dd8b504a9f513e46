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

mod exclude;
pub mod sys;
mod walk;

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use nix::errno::Errno;

pub use exclude::{ExcludeError, Excludes};
pub use walk::{EntryCtx, stat_entry};

use crate::tree::{self, Arena, EntryInfo, Kind, NodeId, Tree, TreeError};

/// How to scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Worker threads (at least 1).
    pub threads: usize,
    /// `-x`: do not cross into other filesystems (by mount id).
    pub one_filesystem: bool,
    pub excludes: Excludes,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            threads: default_threads(),
            one_filesystem: false,
            excludes: Excludes::default(),
        }
    }
}

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
    pub cancel: std::sync::atomic::AtomicBool,
}

impl Progress {
    #[must_use]
    pub fn new() -> Progress {
        Progress {
            current: AtomicU32::new(u32::MAX),
            ..Progress::default()
        }
    }

    /// Asks a running scan or reconcile to stop at the next directory.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    #[must_use]
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
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

/// What a finished scan reports.
#[derive(Debug, Clone, Copy)]
pub struct ScanStats {
    /// Entries found below the scanned directory.
    pub entries: u64,
    pub dirs: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

/// Why a scan could not start (errors below the root are recorded in the tree instead).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{path}: {source}")]
    Root {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: not a directory")]
    NotADirectory(PathBuf),
    #[error("{0}: not in the tree, or not a directory")]
    NoSuchNode(PathBuf),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("cancelled")]
    Cancelled,
}

fn root_error(path: &Path, e: Errno) -> ScanError {
    if e == Errno::ENOTDIR {
        return ScanError::NotADirectory(path.to_path_buf());
    }
    ScanError::Root {
        path: path.to_path_buf(),
        source: std::io::Error::from_raw_os_error(e as i32),
    }
}

/// Resolves a user's root argument: absolute, symlinks resolved, must be a readable directory.
pub fn resolve_root(path: &Path) -> Result<PathBuf, ScanError> {
    let canon = std::fs::canonicalize(path).map_err(|source| ScanError::Root {
        path: path.to_path_buf(),
        source,
    })?;
    let meta = std::fs::metadata(&canon).map_err(|source| ScanError::Root {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(ScanError::NotADirectory(path.to_path_buf()));
    }
    Ok(canon)
}

/// An open root, ready to be scanned into a new tree.
pub struct RootDir {
    pub path: PathBuf,
    fd: OwnedFd,
    stat: sys::Stat,
}

impl RootDir {
    /// Opens `path` (already resolved by `resolve_root`, or any absolute directory path).
    pub fn open(path: &Path) -> Result<RootDir, ScanError> {
        let fd = sys::open_dir_path(path).map_err(|e| root_error(path, e))?;
        let stat = sys::stat_fd(fd.as_fd()).map_err(|e| root_error(path, e))?;
        if stat.kind() != Kind::Dir {
            return Err(ScanError::NotADirectory(path.to_path_buf()));
        }
        // Listing it now turns an unreadable root into a clear error instead of a flagged tree.
        let mut probe = sys::Listing::default();
        sys::read_dir(fd.as_fd(), &mut Vec::new(), &mut probe).map_err(|e| root_error(path, e))?;
        // getdents moved the offset to the end; a fresh fd keeps the walk simple.
        let fd = sys::open_dir_path(path).map_err(|e| root_error(path, e))?;
        Ok(RootDir {
            path: path.to_path_buf(),
            fd,
            stat,
        })
    }

    #[must_use]
    pub fn info(&self) -> EntryInfo {
        self.stat.info(0)
    }

    /// A tree holding only this root, in `arena`.
    pub fn new_tree(&self, arena: Arena) -> Result<Tree, ScanError> {
        Ok(Tree::create(arena, &self.path, &self.info())?)
    }
}

/// Scans a whole tree: opens `path`, builds a tree in a temporary arena and fills it.
pub fn scan_path(
    path: &Path,
    opts: &ScanOptions,
    progress: &Progress,
) -> Result<(Tree, ScanStats), ScanError> {
    let root = RootDir::open(&resolve_root(path)?)?;
    let tree = RwLock::new(root.new_tree(Arena::create_temp().map_err(TreeError::from)?)?);
    let stats = scan_root(root, &tree, opts, progress)?;
    let tree = tree
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok((tree, stats))
}

/// Fills `tree` (which holds only `root`'s node) from `root`. Readers may lock the tree while
/// this runs and see the totals grow.
pub fn scan_root(
    root: RootDir,
    tree: &RwLock<Tree>,
    opts: &ScanOptions,
    progress: &Progress,
) -> Result<ScanStats, ScanError> {
    let node = tree::read(tree).root();
    let root_mnt = root.stat.mnt_id;
    let root_dev = root.stat.dev;
    walk::run(
        tree,
        opts,
        progress,
        walk::Start {
            fd: root.fd,
            node,
            path: root.path.as_os_str().as_bytes().to_vec(),
            root_mnt,
            root_dev,
        },
    )
}

/// Opens a directory that is in the tree, component by component from the root with
/// `O_NOFOLLOW` (so paths longer than `PATH_MAX` work and no symlink is followed on the way).
pub fn open_node_dir(tree: &Tree, node: NodeId) -> Result<OwnedFd, Errno> {
    let mut chain = Vec::new();
    let mut cur = node;
    while let Some(p) = tree.parent(cur) {
        chain.push(cur);
        cur = p;
    }
    let mut fd = sys::open_dir_path(&tree.root_path())?;
    for &c in chain.iter().rev() {
        let name = CString::new(tree.name(c)).map_err(|_| Errno::EINVAL)?;
        fd = sys::open_dir_at(fd.as_fd(), &name)?;
    }
    Ok(fd)
}

/// Scans a directory that is already in the tree but has no children yet (a new directory
/// found after the first scan), in parallel, into the live tree.
pub fn scan_subtree(
    tree: &RwLock<Tree>,
    node: NodeId,
    opts: &ScanOptions,
    progress: &Progress,
) -> Result<ScanStats, ScanError> {
    let (path, fd, root_mnt, root_dev) = {
        let t = tree::read(tree);
        if !t.is_live(node) || t.kind(node) != Kind::Dir {
            return Err(ScanError::NoSuchNode(t.path_of(node)));
        }
        let path = t.path_of(node);
        let root_fd = sys::open_dir_path(&t.root_path()).map_err(|e| root_error(&path, e))?;
        let root_stat = sys::stat_fd(root_fd.as_fd()).map_err(|e| root_error(&path, e))?;
        let fd = match open_node_dir(&t, node) {
            Ok(fd) => fd,
            Err(e) => {
                drop(t);
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
        (path, fd, root_stat.mnt_id, root_stat.dev)
    };
    walk::run(
        tree,
        opts,
        progress,
        walk::Start {
            fd,
            node,
            path: path.as_os_str().as_bytes().to_vec(),
            root_mnt,
            root_dev,
        },
    )
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
    node: NodeId,
    opts: &ScanOptions,
) -> Result<Vec<Child>, Errno> {
    let (fd, path, root_mnt, root_dev) = {
        let t = tree::read(tree);
        let root_fd = sys::open_dir_path(&t.root_path())?;
        let root_stat = sys::stat_fd(root_fd.as_fd())?;
        (
            open_node_dir(&t, node)?,
            t.path_of(node),
            root_stat.mnt_id,
            root_stat.dev,
        )
    };
    let mut listing = sys::Listing::default();
    sys::read_dir(fd.as_fd(), &mut Vec::new(), &mut listing)?;
    let mut out = Vec::with_capacity(listing.len());
    let mut path_buf = Vec::new();
    for i in 0..listing.len() {
        let name = listing.name(i);
        let info = stat_entry(
            &EntryCtx {
                dir: fd.as_fd(),
                dir_path: path.as_os_str().as_bytes(),
                opts,
                root_mnt,
                root_dev,
            },
            &listing,
            i,
            &mut path_buf,
        );
        if let Some(info) = info {
            out.push(Child {
                name: name.to_vec(),
                info,
            });
        }
    }
    Ok(out)
}
