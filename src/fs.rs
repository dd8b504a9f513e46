//! The filesystem as dtui reaches it: the root of a session opened once and checked
//! (`RootDir`), directories below it opened from its fd and never through a symlink
//! (`Reopener`, `open_node_dir`), the syscalls under both (`sys`), and the token a long walk
//! is cancelled with. The scanner, reconcile, the engine's batches, the delete and the
//! watchers all open the disk through here; this layer knows the tree only to find a
//! directory's names.

mod reopen;
pub mod sys;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;

pub use reopen::{Reopener, open_node_dir};
pub(crate) use reopen::{chain_names, open_down};

use crate::tree::{Arena, EntryInfo, Kind, Tree, TreeError};

/// Why a root could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{}: {source}", crate::path::display_path(.path))]
    Root {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a directory", crate::path::display_path(.0))]
    NotADirectory(PathBuf),
}

fn root_error(path: &Path, e: Errno) -> FsError {
    if e == Errno::ENOTDIR {
        return FsError::NotADirectory(path.to_path_buf());
    }
    FsError::Root {
        path: path.to_path_buf(),
        source: std::io::Error::from_raw_os_error(e as i32),
    }
}

/// Asks a running walk (a scan, a reconcile, a delete) to stop; any thread may ask or look.
#[derive(Debug, Default)]
pub struct Cancel(AtomicBool);

impl Cancel {
    /// Asks the walk to stop at its next step.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    #[must_use]
    pub fn cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Resolves a user's root argument: absolute, symlinks resolved, must be a readable directory.
pub fn resolve_root(path: &Path) -> Result<PathBuf, FsError> {
    let canon = std::fs::canonicalize(path).map_err(|source| FsError::Root {
        path: path.to_path_buf(),
        source,
    })?;
    let meta = std::fs::metadata(&canon).map_err(|source| FsError::Root {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(FsError::NotADirectory(path.to_path_buf()));
    }
    Ok(canon)
}

/// The root of a session, opened once: the user's path is resolved once, opened with no
/// symlink in any component, checked against the (dev, ino) that the resolution saw, and
/// every later open of anything below it starts from this fd, never from the path string
/// (a root swapped for a symlink meanwhile is refused, not followed).
pub struct RootDir {
    pub path: PathBuf,
    fd: OwnedFd,
    stat: sys::Stat,
    /// Whether it is on ext4 (`sys::ListEnd::Ext4`: listings of its device end a call early).
    ext4: bool,
}

impl RootDir {
    /// Resolves and opens `path` (a user's argument, or a cached canonical root).
    pub fn open(path: &Path) -> Result<RootDir, FsError> {
        use std::os::unix::fs::MetadataExt;
        let canon = resolve_root(path)?;
        let seen = std::fs::metadata(&canon).map_err(|source| FsError::Root {
            path: path.to_path_buf(),
            source,
        })?;
        let fd = sys::open_root_nofollow(&canon).map_err(|e| root_error(path, e))?;
        let stat = sys::stat_fd(fd.as_fd()).map_err(|e| root_error(path, e))?;
        if stat.kind() != Kind::Dir {
            return Err(FsError::NotADirectory(path.to_path_buf()));
        }
        if (stat.dev, stat.ino) != (seen.dev(), seen.ino()) {
            return Err(FsError::Root {
                path: path.to_path_buf(),
                source: std::io::Error::other("it was replaced while being opened"),
            });
        }
        // Listing it now turns an unreadable root into a clear error instead of a flagged tree.
        let mut probe = sys::Listing::default();
        sys::read_dir(fd.as_fd(), &mut Vec::new(), &mut probe).map_err(|e| root_error(path, e))?;
        sys::rewind_dir(fd.as_fd()).map_err(|e| root_error(path, e))?;
        let ext4 = sys::fs_magic(fd.as_fd()) == Some(sys::EXT4_MAGIC);
        Ok(RootDir {
            path: canon,
            fd,
            stat,
            ext4,
        })
    }

    #[must_use]
    pub fn info(&self) -> EntryInfo {
        self.stat.info(0)
    }

    #[must_use]
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    #[must_use]
    pub fn stat(&self) -> &sys::Stat {
        &self.stat
    }

    /// How listings of a directory on device `dev` end: early on the root's device when it
    /// is ext4 (see `sys::ListEnd`).
    #[must_use]
    pub fn list_end(&self, dev: u64) -> sys::ListEnd {
        if self.ext4 && dev == self.stat.dev {
            sys::ListEnd::Ext4
        } else {
            sys::ListEnd::EmptyRead
        }
    }

    /// A tree holding only this root, in `arena`.
    pub fn new_tree(&self, arena: Arena) -> Result<Tree, TreeError> {
        Tree::create(arena, &self.path, &self.info())
    }

    /// Is `tree` a tree of this directory (same path, and its root node the same inode)?
    #[must_use]
    pub fn matches(&self, tree: &Tree) -> bool {
        tree.root_path() == self.path && tree.ino(tree.root()) == Some(self.stat.ino)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_end_early_only_on_the_roots_device_and_only_on_ext4() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = RootDir::open(dir.path()).expect("root");
        let fs = sys::fs_magic(root.fd());
        let dev = root.stat().dev;
        let want = if fs == Some(sys::EXT4_MAGIC) {
            sys::ListEnd::Ext4
        } else {
            sys::ListEnd::EmptyRead
        };
        assert_eq!(root.list_end(dev), want);
        // Another device below it (a mount) is not known to be ext4.
        assert_eq!(root.list_end(dev ^ 1), sys::ListEnd::EmptyRead);
        let proc_root = RootDir::open(Path::new("/proc")).expect("/proc");
        assert_eq!(
            proc_root.list_end(proc_root.stat().dev),
            sys::ListEnd::EmptyRead
        );
    }
}
