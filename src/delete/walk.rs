//! The walk that empties and removes one target directory, keeping to its plan: depth first
//! without recursion (trees thousands deep must not overflow the stack), each name of a
//! listing looked up in the plan's manifest and stat'ed, and only a name the plan holds that
//! is still that entry removed (`unlinkat` on the fd it was listed from). Anything else is
//! left, counted and reported without a question, and its directory stays (not an error per
//! ancestor: a directory that keeps something is simply not removed).
//!
//! A directory is entered only if it is the plan's (device, inode), opened `O_NOFOLLOW` from
//! its parent's fd; before its entries go, and again every `CHECK_EVERY` entries and whenever
//! the walk comes back to it, it is checked to still be in its parent (its name there is its
//! inode), and the whole chain up to the root is checked now and then (amortized: at most
//! one pass of `..` opens per `4 × depth + 64` entries). A directory found moved away is left
//! with what is in it. At most `FD_WINDOW` directory fds are held (the deepest); one above
//! them is reopened through `..` of its child, checked by device and inode, as the walk climbs
//! back (or name by name from the nearest fd held, if the child moved), and `EMFILE` halves
//! the window: an open that fails for want of fds (a check, a reopen) is tried again with fewer
//! held, and never taken for a directory that moved.

mod place;

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use nix::errno::Errno;
use nix::unistd::{UnlinkatFlags, unlinkat};

use place::Lost;

use super::plan::Manifest;
use super::{Decision, DeleteError, Listener, Located, Outcome, Progress, same_fs};
use crate::fs::{RootDir, sys};
use crate::tree::Kind;

/// Directory fds the walk holds at most (the deepest directories of the path it is on).
const FD_WINDOW: usize = 32;
/// Entries of a directory between two checks that it is still in its parent.
const CHECK_EVERY: u32 = 64;
/// Entries left that an outcome keeps to show (the rest are only counted).
pub const LEFT_SHOWN: usize = 100;
/// How many entries between two `Listener::tick`s.
const TICK_EVERY: u64 = 16;

/// One directory being emptied.
struct Frame {
    /// `None` while it is above the window of fds held.
    fd: Option<OwnedFd>,
    dev: u64,
    ino: u64,
    /// Its directory in the manifest.
    mdir: u32,
    listing: sys::Listing,
    next: usize,
    /// Its name in its parent.
    name: CString,
    path: PathBuf,
    own: u64,
    /// Something inside stays (so it cannot go either; not asked about again).
    kept: bool,
    /// To be checked in its parent before its next entry.
    check: bool,
    /// Entries since it was last checked.
    since: u32,
}

pub(super) struct Walk<'a> {
    root: &'a RootDir,
    manifest: &'a Manifest,
    progress: &'a Progress,
    listener: &'a mut dyn Listener,
    ignore_all: bool,
    pub stop: bool,
    pub out: &'a mut Outcome,
    stack: Vec<Frame>,
    window: usize,
    buf: Vec<u8>,
}

impl<'a> Walk<'a> {
    pub fn new(
        root: &'a RootDir,
        manifest: &'a Manifest,
        progress: &'a Progress,
        listener: &'a mut dyn Listener,
        out: &'a mut Outcome,
    ) -> Walk<'a> {
        Walk {
            root,
            manifest,
            progress,
            listener,
            ignore_all: false,
            stop: false,
            out,
            stack: Vec::new(),
            window: FD_WINDOW,
            buf: Vec::new(),
        }
    }

    /// Records an error and asks what to do; true when the whole delete stops.
    pub fn fail(&mut self, e: DeleteError) -> bool {
        let decision = if self.ignore_all {
            Decision::Ignore
        } else {
            self.listener.failed(&e)
        };
        self.out.failed.push(e);
        match decision {
            Decision::Abort => {
                self.out.aborted = true;
                self.stop = true;
            }
            Decision::Ignore => {}
            Decision::IgnoreAll => self.ignore_all = true,
        }
        self.stop
    }

    /// Records an entry left because it is not what was confirmed (never asked about).
    fn leave(&mut self, e: DeleteError) {
        self.out.left_count += 1;
        if self.out.left.len() < LEFT_SHOWN {
            self.out.left.push(e);
        }
    }

    /// Counts a removed entry: its blocks are freed unless the inode keeps other names.
    fn gone(&mut self, blocks: u64, last_name: bool) {
        let n = self.progress.items.fetch_add(1, Ordering::Relaxed) + 1;
        if last_name {
            self.progress
                .bytes
                .fetch_add(blocks.saturating_mul(512), Ordering::Relaxed);
        }
        if n % TICK_EVERY == 0 {
            self.listener.tick(self.progress);
        }
    }

    /// Removes one target (checked to be what was shown); a directory with what the plan's
    /// directory `dir` holds of it.
    pub fn remove_target(&mut self, path: &Path, at: &Located, dir: u32) {
        if at.stat.kind() != Kind::Dir {
            self.unlink(at.parent.as_fd(), &at.name, &at.stat, path);
            return;
        }
        if !same_fs(self.root, &at.stat) {
            self.fail(DeleteError::OtherFilesystem(path.to_path_buf()));
            return;
        }
        let want = (at.stat.dev, at.stat.ino);
        let Some(first) = self.open(None, at, &at.name, want, dir, path) else {
            return;
        };
        self.stack.clear();
        self.stack.push(first);
        self.empty(at);
        self.stack.clear();
    }

    /// Removes a non-directory by name (a symlink as the link itself).
    fn unlink(&mut self, dir: BorrowedFd<'_>, name: &CString, st: &sys::Stat, path: &Path) -> bool {
        match unlinkat(dir, name.as_c_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) => {
                self.gone(st.blocks, st.nlink <= 1);
                true
            }
            Err(Errno::ENOENT) => true,
            Err(errno) => {
                self.fail(DeleteError::Io {
                    path: path.to_path_buf(),
                    errno,
                });
                false
            }
        }
    }

    /// The fd of frame `i`, or of the target's parent for `None` (held: see `ensure_fd`).
    fn fd_of<'b>(&'b self, i: Option<usize>, at: &'b Located) -> Option<BorrowedFd<'b>> {
        match i {
            None => Some(at.parent.as_fd()),
            Some(i) => self.stack.get(i)?.fd.as_ref().map(AsFd::as_fd),
        }
    }

    /// Opens directory `name` in frame `parent` (`None`: the target's parent) to empty it:
    /// `O_NOFOLLOW|O_DIRECTORY`, checked to be the inode `want` that was stat'ed by name (else
    /// it was swapped meanwhile), and listed.
    fn open(
        &mut self,
        parent: Option<usize>,
        at: &Located,
        name: &CString,
        want: (u64, u64),
        mdir: u32,
        path: &Path,
    ) -> Option<Frame> {
        let opened = loop {
            let Some(dir) = self.fd_of(parent, at) else {
                break Err(Errno::EBADF);
            };
            match sys::open_dir_at(dir, name) {
                // Fewer held, again, as long as some can be given up (halving the window once
                // may not be enough under a low limit).
                Err(Errno::EMFILE | Errno::ENFILE) if self.shed() => {}
                r => break r,
            }
        };
        let fd = match opened {
            Ok(fd) => fd,
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                // Swapped for a symlink or a file since it was listed: not what was shown.
                self.leave(DeleteError::Changed(path.to_path_buf()));
                return None;
            }
            Err(Errno::ENOENT) => return None,
            Err(errno) => {
                self.fail(DeleteError::Io {
                    path: path.to_path_buf(),
                    errno,
                });
                return None;
            }
        };
        let opened = sys::stat_fd(fd.as_fd()).ok()?;
        if (opened.dev, opened.ino) != want || !same_fs(self.root, &opened) {
            self.leave(DeleteError::Changed(path.to_path_buf()));
            return None;
        }
        let mut listing = sys::Listing::default();
        if let Err(errno) = sys::read_dir(fd.as_fd(), &mut self.buf, &mut listing) {
            self.fail(DeleteError::Io {
                path: path.to_path_buf(),
                errno,
            });
            return None;
        }
        self.listener.entered(path);
        Some(Frame {
            fd: Some(fd),
            dev: want.0,
            ino: want.1,
            mdir,
            listing,
            next: 0,
            name: name.clone(),
            path: path.to_path_buf(),
            own: opened.blocks,
            kept: false,
            check: true,
            since: 0,
        })
    }

    /// Gives up fds after `EMFILE`: the window halves, from what is held now (a walk not yet
    /// as deep as its window holds fewer), at least the two deepest staying. False if no fd was
    /// given up (none held above the two deepest).
    fn shed(&mut self) -> bool {
        let n = self.stack.len();
        self.window = (self.window.min(n) / 2).max(2);
        let mut freed = false;
        for f in &mut self.stack[..n.saturating_sub(self.window)] {
            freed |= f.fd.take().is_some();
        }
        freed
    }

    /// A check or a reopen could not get an fd (`EMFILE`), which says nothing of a move: fds
    /// are given up and it is tried again; if none can be given up, the walk cannot go on
    /// below frame `i` (an error, asked about), and what is there stays.
    fn short_of_fds(&mut self, i: usize) {
        if !self.shed() {
            self.out_of_fds(i);
        }
    }

    /// No fd can be had even with the fewest held: frame `i` and what is below it stay, said
    /// as an error.
    fn out_of_fds(&mut self, i: usize) {
        let path = self
            .stack
            .get(i)
            .map(|f| f.path.clone())
            .unwrap_or_default();
        self.fail(DeleteError::Io {
            path,
            errno: Errno::EMFILE,
        });
        self.stack.truncate(i);
        if let Some(p) = self.stack.last_mut() {
            p.kept = true;
            p.check = true;
        }
    }

    /// Empties and removes the directory on top of the stack (`at` is its parent).
    fn empty(&mut self, at: &Located) {
        let mut since_chain = 0usize;
        while let Some(top) = self.stack.len().checked_sub(1) {
            if self.stop || self.progress.cancelled() {
                self.stop = true;
                return;
            }
            if self.stack[top].fd.is_none() {
                match self.reopen(top, at, None) {
                    Ok(()) => {}
                    Err(Lost::Moved(i)) => {
                        self.abandon(i);
                        continue;
                    }
                    Err(Lost::Fds) => {
                        self.short_of_fds(top);
                        continue;
                    }
                }
            }
            if since_chain >= 4 * (self.stack.len() + at.chain.len()) + 64 {
                match self.check_chain(at) {
                    Ok(()) => since_chain = 0,
                    Err(Lost::Moved(i)) => {
                        since_chain = 0;
                        self.abandon(i);
                        continue;
                    }
                    // Checked again once fds are given up (`since_chain` stays due).
                    Err(Lost::Fds) => {
                        self.short_of_fds(top);
                        continue;
                    }
                }
            }
            if self.stack[top].check || self.stack[top].since >= CHECK_EVERY {
                match self.in_place(top, at) {
                    Ok(true) => {}
                    Ok(false) => {
                        self.abandon(top);
                        continue;
                    }
                    Err(_) => {
                        self.short_of_fds(top);
                        continue;
                    }
                }
            }
            let f = &mut self.stack[top];
            f.check = false;
            if f.since >= CHECK_EVERY {
                f.since = 0;
            }
            if f.next < f.listing.len() {
                let i = f.next;
                f.next += 1;
                f.since += 1;
                since_chain += 1;
                self.entry(top, i, at);
                continue;
            }
            self.finish(at);
        }
    }

    /// One listed name of the top directory: removed, entered, or left.
    fn entry(&mut self, top: usize, i: usize, at: &Located) {
        let f = &self.stack[top];
        let name = CString::from(f.listing.c_name(i));
        let path = f.path.join(OsStr::from_bytes(f.listing.name(i)));
        let mdir = f.mdir;
        let Some(e) = self.manifest.find(mdir, name.as_bytes()).copied() else {
            self.stack[top].kept = true;
            self.leave(DeleteError::NotShown(path));
            return;
        };
        // Held outside the stack while `self` is borrowed mutably; put back below.
        let Some(fd) = self.stack[top].fd.take() else {
            return;
        };
        let st = match sys::stat_at(fd.as_fd(), &name) {
            Ok(st) => st,
            Err(Errno::ENOENT) => {
                self.stack[top].fd = Some(fd);
                return;
            }
            Err(errno) => {
                self.stack[top].fd = Some(fd);
                self.stack[top].kept = true;
                self.fail(DeleteError::Io { path, errno });
                return;
            }
        };
        if !self.manifest.matches(mdir, &e, &st) {
            self.stack[top].fd = Some(fd);
            self.stack[top].kept = true;
            self.leave(DeleteError::Changed(path));
            return;
        }
        if st.kind() != Kind::Dir {
            let removed = self.unlink(fd.as_fd(), &name, &st, &path);
            self.stack[top].fd = Some(fd);
            self.stack[top].kept |= !removed;
            return;
        }
        self.stack[top].fd = Some(fd);
        if !same_fs(self.root, &st) {
            self.stack[top].kept = true;
            self.fail(DeleteError::OtherFilesystem(path));
            return;
        }
        if let Some(child) = self.open(Some(top), at, &name, (st.dev, st.ino), e.dir, &path) {
            self.stack.push(child);
            let n = self.stack.len();
            if n > self.window {
                self.stack[n - self.window - 1].fd = None;
            }
        } else {
            // Gone, changed, or an error already told.
            let still = self
                .fd_of(Some(top), at)
                .is_some_and(|d| sys::stat_at(d, &name).is_ok());
            self.stack[top].kept |= still;
        }
    }

    /// The top directory is done: removed from its parent unless something in it stays.
    fn finish(&mut self, at: &Located) {
        let Some(done) = self.stack.pop() else {
            return;
        };
        let parent = self.stack.len().checked_sub(1);
        if let Some(p) = parent {
            self.stack[p].check = true;
            if self.stack[p].fd.is_none() {
                let via = done.fd.as_ref().map(AsFd::as_fd);
                let mut reopened = self.reopen(p, at, via);
                while reopened == Err(Lost::Fds) && self.shed() {
                    reopened = self.reopen(p, at, via);
                }
                match reopened {
                    Ok(()) => {}
                    Err(Lost::Moved(i)) => {
                        self.abandon(i);
                        return;
                    }
                    Err(Lost::Fds) => {
                        // `done` is emptied but stays: its parent cannot be reached to
                        // remove it from.
                        self.out_of_fds(p);
                        return;
                    }
                }
            }
        }
        // The parent's fd is held outside the stack while `self` is borrowed mutably.
        let held = match parent {
            Some(p) => match self.stack[p].fd.take() {
                Some(fd) => Some(fd),
                None => return,
            },
            None => None,
        };
        let pfd = held.as_ref().map_or(at.parent.as_fd(), AsFd::as_fd);
        let removed = if done.kept {
            self.left_behind(&done, false);
            false
        } else if !sys::stat_at(pfd, &done.name)
            .is_ok_and(|s| (s.dev, s.ino) == (done.dev, done.ino))
        {
            // Its name names another entry now (or none): it moved away, with what is left.
            let gone = matches!(sys::stat_at(pfd, &done.name), Err(Errno::ENOENT));
            if !gone {
                self.leave(DeleteError::Moved(done.path.clone()));
            }
            gone
        } else {
            match unlinkat(pfd, done.name.as_c_str(), UnlinkatFlags::RemoveDir) {
                Ok(()) => {
                    self.gone(done.own, true);
                    true
                }
                Err(Errno::ENOENT) => true,
                Err(Errno::ENOTEMPTY | Errno::EEXIST) => {
                    self.left_behind(&done, true);
                    false
                }
                Err(errno) => {
                    self.fail(DeleteError::Io {
                        path: done.path.clone(),
                        errno,
                    });
                    false
                }
            }
        };
        if let (Some(p), Some(fd)) = (parent, held) {
            self.stack[p].fd = Some(fd);
        }
        if !removed && let Some(p) = parent {
            self.stack[p].kept = true;
        }
    }

    /// What is in a directory that stays besides what its listing held (it came in since):
    /// left, and said. `all`: everything listed now (a directory emptied of everything it had
    /// listed that is not empty).
    fn left_behind(&mut self, done: &Frame, all: bool) {
        let Some(fd) = done.fd.as_ref() else {
            return;
        };
        let mut now = sys::Listing::default();
        if sys::rewind_dir(fd.as_fd()).is_err()
            || sys::read_dir(fd.as_fd(), &mut self.buf, &mut now).is_err()
        {
            if all {
                self.leave(DeleteError::NotShown(done.path.clone()));
            }
            return;
        }
        let mut before = Vec::new();
        done.listing.sorted_indexes(&mut before);
        let listed = |name: &[u8]| {
            before
                .binary_search_by(|&i| done.listing.name(i as usize).cmp(name))
                .is_ok()
        };
        for i in 0..now.len() {
            if all || !listed(now.name(i)) {
                let path = done.path.join(OsStr::from_bytes(now.name(i)));
                self.leave(DeleteError::NotShown(path));
            }
        }
    }

    /// Frame `i` moved away (or cannot be reached): it and everything below it stay.
    fn abandon(&mut self, i: usize) {
        if let Some(f) = self.stack.get(i) {
            let path = f.path.clone();
            self.leave(DeleteError::Moved(path));
        }
        self.stack.truncate(i);
        if let Some(p) = self.stack.last_mut() {
            p.kept = true;
            p.check = true;
        }
    }
}
