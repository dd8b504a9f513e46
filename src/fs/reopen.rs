//! Opening a directory of the tree below the root: by its chain of names from the root's fd
//! (or from a nearer fd kept open), never following a symlink on the way.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use nix::errno::Errno;

use super::{RootDir, sys};
use crate::tree::{self, Kind, NodeId, Tree};

/// The names from the root down to `node` (empty for the root), copied out of the tree so
/// that no lock is held across the opens.
pub(crate) fn chain_names(
    tree: &Tree,
    node: NodeId,
    stop: impl Fn(NodeId) -> bool,
) -> (NodeId, Vec<CString>) {
    let mut chain = Vec::new();
    let mut cur = node;
    while !stop(cur) {
        let Some(p) = tree.parent(cur) else {
            break;
        };
        chain.push(CString::new(tree.name(cur)).unwrap_or_default());
        cur = p;
    }
    chain.reverse();
    (cur, chain)
}

/// Opens `names` below `fd`, never following a symlink on the way: in one
/// `openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS)` where the kernel has it and the path fits,
/// else one `openat(O_NOFOLLOW)` per name (a live batch opens a random directory per change:
/// one system call instead of one per level).
pub(crate) fn open_down(fd: BorrowedFd<'_>, names: &[CString]) -> Result<OwnedFd, Errno> {
    if names.iter().any(|n| n.as_bytes().is_empty()) {
        return Err(Errno::EINVAL);
    }
    if !names.is_empty() {
        match sys::open_dir_beneath(fd, names) {
            Err(Errno::ENOSYS | Errno::E2BIG | Errno::ENAMETOOLONG | Errno::EAGAIN) => {}
            done => return done,
        }
    }
    let mut cur = sys::dup_dir(fd)?;
    for name in names {
        cur = sys::open_dir_at(cur.as_fd(), name)?;
    }
    Ok(cur)
}

/// Opens a directory that is in the tree, component by component from the root's fd with
/// `O_NOFOLLOW` (so paths longer than `PATH_MAX` work and no symlink is followed on the way).
pub fn open_node_dir(tree: &Tree, root: &RootDir, node: NodeId) -> Result<OwnedFd, Errno> {
    let (_, names) = chain_names(tree, node, |_| false);
    open_down(root.fd(), &names)
}

/// Reopens directories whose fd a walk gave up (an fd budget, or `EMFILE`), cheaply: a few
/// recently reopened fds are kept, and a directory is opened from the nearest of them, from
/// a cached child by `..` (checked by device and inode), or from the root's fd. A deep chain
/// whose side branches are visited on the way back up costs O(1) per reopen, not O(depth).
pub struct Reopener<'a> {
    root: &'a RootDir,
    cache: Mutex<Vec<(NodeId, Arc<OwnedFd>)>>,
}

const REOPEN_CACHE: usize = 8;

impl<'a> Reopener<'a> {
    #[must_use]
    pub fn new(root: &'a RootDir) -> Reopener<'a> {
        Reopener {
            root,
            cache: Mutex::new(Vec::with_capacity(REOPEN_CACHE)),
        }
    }

    /// An fd of directory `node` of the tree behind `lock`.
    pub fn open(&self, lock: &RwLock<Tree>, node: NodeId) -> Result<Arc<OwnedFd>, Errno> {
        let cached: Vec<(NodeId, Arc<OwnedFd>)> = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some((_, fd)) = cached.iter().find(|(n, _)| *n == node) {
            return Ok(Arc::clone(fd));
        }
        let (want, child, start, names) = {
            let t = tree::read(lock);
            if !t.is_live(node) || t.kind(node) != Kind::Dir {
                return Err(Errno::ENOENT);
            }
            let want = (t.ino(node).unwrap_or(0), t.dev(node));
            let child = cached
                .iter()
                .find(|(n, _)| t.is_live(*n) && t.parent(*n) == Some(node))
                .map(|(_, fd)| Arc::clone(fd));
            let (start, names) = chain_names(&t, node, |n| cached.iter().any(|(c, _)| *c == n));
            (want, child, start, names)
        };
        let mut opened = None;
        if let Some(child) = child
            && let Ok(fd) = sys::open_parent(child.as_fd())
            && sys::stat_fd(fd.as_fd()).is_ok_and(|s| (s.ino, Some(s.dev)) == want)
        {
            opened = Some(fd);
        }
        let fd = match opened {
            Some(fd) => fd,
            None => {
                // `names` lead from `start`: a cached ancestor, or else the root.
                match cached.iter().find(|(n, _)| *n == start) {
                    Some((_, fd)) => open_down(fd.as_fd(), &names)?,
                    None => open_down(self.root.fd(), &names)?,
                }
            }
        };
        let fd = Arc::new(fd);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= REOPEN_CACHE {
            cache.remove(0);
        }
        cache.push((node, Arc::clone(&fd)));
        Ok(fd)
    }

    /// Closes the cached fds (to free descriptors before a retry after `EMFILE`).
    pub fn clear(&self) {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
