//! Whether the walk's directories are still where it came down through: one in its parent,
//! the whole chain up to the root, and a frame's fd opened again once given up.

use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;

use super::Walk;
use crate::delete::Located;
use crate::fs::sys;

impl Walk<'_> {
    /// Is frame `i` still in its parent (frame `i - 1`, or the target's parent)?
    /// `Err(Lost::Fds)`: it could not be told for want of an fd.
    pub(super) fn in_place(&self, i: usize, at: &Located) -> Result<bool, Lost> {
        let f = &self.stack[i];
        let parent = if i == 0 { None } else { Some(i - 1) };
        if let Some(pfd) = self.fd_of(parent, at) {
            return Ok(sys::stat_at(pfd, &f.name).is_ok_and(|s| (s.dev, s.ino) == (f.dev, f.ino)));
        }
        let Some(fd) = f.fd.as_ref() else {
            return Ok(false);
        };
        let want = self.ident_of(parent, at);
        match sys::open_parent(fd.as_fd()) {
            Ok(up) => Ok(sys::stat_fd(up.as_fd()).is_ok_and(|s| (s.dev, s.ino) == want)),
            Err(e) if Lost::of(e, i) == Lost::Fds => Err(Lost::Fds),
            Err(_) => Ok(false),
        }
    }

    pub(super) fn ident_of(&self, i: Option<usize>, at: &Located) -> (u64, u64) {
        match i {
            Some(i) => (self.stack[i].dev, self.stack[i].ino),
            None => at.chain.last().copied().unwrap_or_default(),
        }
    }

    /// Checks the whole chain from the top directory up to the root; the first frame found
    /// no longer in its parent (`0` when the target itself or an ancestor of it moved).
    pub(super) fn check_chain(&self, at: &Located) -> Result<(), Lost> {
        let n = self.stack.len();
        let low = self.stack.iter().position(|f| f.fd.is_some()).unwrap_or(n);
        for i in (low + 1..n).rev() {
            if !self.in_place(i, at)? {
                return Err(Lost::Moved(i));
            }
        }
        let Some(start) = self.stack.get(low).and_then(|f| f.fd.as_ref()) else {
            return Ok(());
        };
        // Upwards by `..` from the lowest frame holding an fd: each parent must be the one the
        // walk came down through, then the target's parent and its ancestors to the root.
        let frames = (0..low)
            .rev()
            .map(|k| (k + 1, (self.stack[k].dev, self.stack[k].ino)));
        let above = at.chain.iter().rev().map(|&id| (0, id));
        let mut cur = sys::dup_dir(start.as_fd()).map_err(|e| Lost::of(e, low))?;
        for (child, want) in frames.chain(above) {
            let up = sys::open_parent(cur.as_fd()).map_err(|e| Lost::of(e, child))?;
            if !sys::stat_fd(up.as_fd()).is_ok_and(|s| (s.dev, s.ino) == want) {
                return Err(Lost::Moved(child));
            }
            cur = up;
        }
        Ok(())
    }

    /// Gives frame `i` its fd again: `..` of `via` (its child's fd) if that is still it, else
    /// name by name from the nearest frame holding an fd (or the target's parent), each
    /// directory checked by device and inode. `Lost::Moved(k)`: frame `k` on the way cannot be
    /// reached as it was.
    pub(super) fn reopen(
        &mut self,
        i: usize,
        at: &Located,
        via: Option<BorrowedFd<'_>>,
    ) -> Result<(), Lost> {
        let want = (self.stack[i].dev, self.stack[i].ino);
        if let Some(child) = via {
            match sys::open_parent(child) {
                Ok(fd) if sys::stat_fd(fd.as_fd()).is_ok_and(|s| (s.dev, s.ino) == want) => {
                    self.stack[i].fd = Some(fd);
                    return Ok(());
                }
                Err(e) if Lost::of(e, i) == Lost::Fds => return Err(Lost::Fds),
                _ => {}
            }
        }
        let from = (0..i).rev().find(|&k| self.stack[k].fd.is_some());
        let Some(start) = self.fd_of(from, at) else {
            return Err(Lost::Moved(i));
        };
        let mut cur = sys::dup_dir(start).map_err(|e| Lost::of(e, i))?;
        for k in from.map_or(0, |k| k + 1)..=i {
            let f = &self.stack[k];
            match sys::open_dir_at(cur.as_fd(), &f.name) {
                Ok(fd)
                    if sys::stat_fd(fd.as_fd()).is_ok_and(|s| (s.dev, s.ino) == (f.dev, f.ino)) =>
                {
                    cur = fd;
                }
                Err(e) if Lost::of(e, k) == Lost::Fds => return Err(Lost::Fds),
                _ => return Err(Lost::Moved(k)),
            }
        }
        self.stack[i].fd = Some(cur);
        Ok(())
    }
}

/// Why a frame of the walk could not be checked or reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lost {
    /// Frame `.0` is no longer where the walk came down through (moved away, or removed).
    Moved(usize),
    /// No fd to open with (`EMFILE`, `ENFILE`): nothing is known of a move.
    Fds,
}

impl Lost {
    /// What a failed open on the way to frame `i` means.
    fn of(e: Errno, i: usize) -> Lost {
        match e {
            Errno::EMFILE | Errno::ENFILE => Lost::Fds,
            _ => Lost::Moved(i),
        }
    }
}
