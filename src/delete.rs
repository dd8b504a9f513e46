//! Deleting entries of the tree from the disk, safely, without a terminal: the browser's `d`
//! and `dtui delete` both run `delete` (on a worker, `worker`), and `trash` moves entries to
//! the freedesktop trash of their own filesystem instead (and back).
//!
//! Everything is relative to directory fds: the parent of a target is opened name by name
//! from the root's fd with `O_NOFOLLOW|O_DIRECTORY`, each directory below it the same way from
//! its parent's fd, and every removal is an `unlinkat` on the fd it was listed from. So a
//! symlink is removed as a link and never followed, a directory swapped for a symlink while
//! the walk runs is removed as that link (what it points to is never reached), and nothing
//! outside the root can be named: a target is refused unless its components lead strictly
//! below the root (never the root itself, never `..`), and the fd walk can only go down.
//! A directory on another filesystem (a mount point, by device or mount id) is never entered
//! nor removed. Before anything goes, each target is checked on the disk against what the
//! user was shown (device, inode, kind); a mismatch deletes nothing and is handed back to be
//! asked again. Errors are asked about (abort, ignore, ignore all) through a `Listener`.

pub mod command;
pub mod trash;
pub mod worker;

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nix::errno::Errno;
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::path::display_name;
use crate::scan::{RootDir, sys};
use crate::tree::{Kind, NodeId, Tree};

/// An entry as the user was shown it: what must still be on the disk for it to be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Absolute, below the root.
    pub path: PathBuf,
    pub dev: u64,
    /// `None` for a plain file: the tree keeps no inode number for it (see
    /// `tree::Own::stored`), so its size and mtime stand in (see `matches`).
    pub ino: Option<u64>,
    pub kind: Kind,
    /// Own apparent size and mtime (whole seconds), which identify a plain file.
    pub apparent: u64,
    pub mtime: i64,
    /// Disk usage and entries shown for it (for the dialog and the progress).
    pub disk: u64,
    pub items: u64,
}

impl Target {
    /// An entry of the tree as it is shown now.
    #[must_use]
    pub fn of(tree: &Tree, id: NodeId) -> Target {
        let t = tree.totals(id);
        let own = tree.own(id);
        Target {
            path: tree.path_of(id),
            dev: tree.dev(id).unwrap_or(0),
            ino: own.ino,
            kind: tree.kind(id),
            apparent: own.apparent,
            mtime: own.mtime.sec,
            disk: t.disk,
            items: t.items + 1,
        }
    }

    /// Is what `st` found at the path still the entry that was shown? By (device, inode,
    /// kind) where the inode is known (directories, hard links); a plain file by (device,
    /// kind, size, mtime in seconds) instead, since the tree keeps no inode for it: a
    /// different file alike in all four is not told apart, and it is what the user saw.
    #[must_use]
    pub fn matches(&self, st: &sys::Stat) -> bool {
        (st.dev, st.kind()) == (self.dev, self.kind)
            && match self.ino {
                Some(ino) => st.ino == ino,
                None => (st.size, st.mtime) == (self.apparent, self.mtime),
            }
    }
}

/// Why an entry (or a part of it) could not go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeleteError {
    #[error("{}: not inside the root", show(.0))]
    OutsideRoot(PathBuf),
    #[error("{}: the root itself is never deleted", show(.0))]
    Root(PathBuf),
    #[error("{}: another filesystem is mounted there (not entered)", show(.0))]
    OtherFilesystem(PathBuf),
    #[error("{}: changed on disk since it was shown", show(.0))]
    Changed(PathBuf),
    #[error("{}: {}", show(.path), .errno.desc())]
    Io { path: PathBuf, errno: Errno },
}

impl DeleteError {
    #[must_use]
    pub fn path(&self) -> &Path {
        match self {
            DeleteError::OutsideRoot(p)
            | DeleteError::Root(p)
            | DeleteError::OtherFilesystem(p)
            | DeleteError::Changed(p)
            | DeleteError::Io { path: p, .. } => p,
        }
    }
}

fn show(p: &Path) -> String {
    display_name(p.as_os_str().as_bytes())
}

/// What to do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Stop here (what went is gone; nothing more goes).
    Abort,
    /// Leave this one and go on.
    Ignore,
    /// Leave this one and every later one without asking.
    IgnoreAll,
}

/// Counters of a running delete, readable from any thread.
#[derive(Debug, Default)]
pub struct Progress {
    pub items: AtomicU64,
    pub bytes: AtomicU64,
    cancel: AtomicBool,
}

impl Progress {
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    #[must_use]
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    #[must_use]
    pub fn snapshot(&self) -> (u64, u64) {
        (
            self.items.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

/// Who is asked about errors and told about progress.
pub trait Listener {
    fn failed(&mut self, error: &DeleteError) -> Decision;
    /// A directory is about to be emptied (its listing was just read).
    fn entered(&mut self, _dir: &Path) {}
    /// Called every few hundred entries (for a throttled progress display).
    fn tick(&mut self, _progress: &Progress) {}
}

/// What became of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub path: PathBuf,
    pub items: u64,
    pub bytes: u64,
    /// It is gone entirely (else some of it is left).
    pub whole: bool,
}

/// What a delete did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub items: u64,
    /// Disk space freed (a name of an inode with other names frees nothing).
    pub bytes: u64,
    pub done: Vec<Done>,
    pub failed: Vec<DeleteError>,
    /// Targets that are not what was shown: nothing was deleted; these are what is there now,
    /// to be confirmed again.
    pub changed: Vec<Target>,
    pub aborted: bool,
    pub cancelled: bool,
}

/// The names from the root down to `path` (at least one), or why it is refused.
pub fn components(root: &Path, path: &Path) -> Result<Vec<CString>, DeleteError> {
    let Some(rest) = crate::path::relative_components(root, path) else {
        return Err(DeleteError::OutsideRoot(path.to_path_buf()));
    };
    let names: Vec<CString> = rest
        .map(|c| CString::new(c.as_bytes()).map_err(|_| DeleteError::OutsideRoot(path.into())))
        .collect::<Result<_, _>>()?;
    if names.is_empty() {
        return Err(DeleteError::Root(path.to_path_buf()));
    }
    Ok(names)
}

/// Does this directory stat belong to the root's filesystem (and mount)?
fn same_fs(root: &RootDir, st: &sys::Stat) -> bool {
    let r = root.stat();
    st.dev == r.dev && (r.mnt_id.is_none() || st.mnt_id.is_none() || st.mnt_id == r.mnt_id)
}

/// An entry's parent opened from the root's fd, and the entry's name and stat.
pub struct Located {
    pub parent: OwnedFd,
    pub name: CString,
    pub stat: sys::Stat,
}

/// Opens the parent of `path` from the root's fd (`O_NOFOLLOW` at each step, staying on the
/// root's filesystem) and stats the entry's name in it.
pub fn locate(root: &RootDir, path: &Path) -> Result<Located, DeleteError> {
    let mut names = components(&root.path, path)?;
    let name = names.pop().expect("components returns at least one name");
    let io = |errno| DeleteError::Io {
        path: path.to_path_buf(),
        errno,
    };
    let mut dir = sys::dup_dir(root.fd()).map_err(io)?;
    for n in &names {
        dir = sys::open_dir_at(dir.as_fd(), n).map_err(io)?;
        let st = sys::stat_fd(dir.as_fd()).map_err(io)?;
        if !same_fs(root, &st) {
            return Err(DeleteError::OtherFilesystem(path.to_path_buf()));
        }
    }
    let stat = sys::stat_at(dir.as_fd(), &name).map_err(io)?;
    Ok(Located {
        parent: dir,
        name,
        stat,
    })
}

/// Drops targets inside another target (a marked directory and marks below it): the outer
/// one takes them along.
#[must_use]
pub fn outermost(mut targets: Vec<Target>) -> Vec<Target> {
    targets.sort_by(|a, b| a.path.cmp(&b.path));
    targets.dedup_by(|a, b| a.path == b.path);
    let all: Vec<PathBuf> = targets.iter().map(|t| t.path.clone()).collect();
    targets.retain(|t| {
        !all.iter()
            .any(|o| o != &t.path && crate::path::is_within(o, &t.path))
    });
    targets
}

/// Checks every target against the disk: the ones that differ from what was shown, as they
/// are now (an entry that is gone is an error instead).
#[must_use]
pub fn verify(root: &RootDir, targets: &[Target]) -> (Vec<Target>, Vec<DeleteError>) {
    let mut changed = Vec::new();
    let mut errors = Vec::new();
    for t in targets {
        match locate(root, &t.path) {
            Ok(l) => {
                let st = l.stat;
                if !t.matches(&st) {
                    changed.push(Target {
                        dev: st.dev,
                        ino: Some(st.ino),
                        kind: st.kind(),
                        apparent: st.size,
                        mtime: st.mtime,
                        ..t.clone()
                    });
                }
            }
            Err(e) => errors.push(e),
        }
    }
    (changed, errors)
}

/// Deletes `targets` (an entry inside another is taken along with it). Nothing is deleted if
/// any target differs from what was shown (`Outcome::changed`); the root is never deleted.
pub fn delete(
    root: &RootDir,
    targets: &[Target],
    progress: &Progress,
    listener: &mut dyn Listener,
) -> Outcome {
    let targets = outermost(targets.to_vec());
    let mut out = Outcome::default();
    let (changed, errors) = verify(root, &targets);
    if !changed.is_empty() {
        out.changed = changed;
        return out;
    }
    let mut walk = Walk {
        root,
        progress,
        listener,
        ignore_all: false,
        stop: false,
        out: &mut out,
    };
    for e in errors {
        if walk.fail(e) {
            break;
        }
    }
    for t in &targets {
        if walk.stop {
            break;
        }
        let Ok(located) = locate(root, &t.path) else {
            continue; // reported by `verify`
        };
        // Checked again as it is reached: the earlier targets may have taken long, and what
        // is at this path now may be another entry (a directory renamed over it), which the
        // user never confirmed.
        if !t.matches(&located.stat) {
            if walk.fail(DeleteError::Changed(t.path.clone())) {
                break;
            }
            continue;
        }
        let before = progress.snapshot();
        walk.remove_target(&t.path, &located);
        let after = progress.snapshot();
        let whole = matches!(
            sys::stat_at(located.parent.as_fd(), &located.name),
            Err(Errno::ENOENT)
        );
        walk.out.done.push(Done {
            path: t.path.clone(),
            items: after.0 - before.0,
            bytes: after.1 - before.1,
            whole,
        });
    }
    let (items, bytes) = progress.snapshot();
    out.items = items;
    out.bytes = bytes;
    out.cancelled = progress.cancelled();
    out
}

/// One directory being emptied.
struct Frame {
    fd: OwnedFd,
    listing: sys::Listing,
    next: usize,
    /// Its name in its parent.
    name: CString,
    path: PathBuf,
    own: u64,
    /// Something inside could not go (so it cannot either; not asked about again).
    kept: bool,
}

struct Walk<'a> {
    root: &'a RootDir,
    progress: &'a Progress,
    listener: &'a mut dyn Listener,
    ignore_all: bool,
    stop: bool,
    out: &'a mut Outcome,
}

/// How many entries between two `Listener::tick`s.
const TICK_EVERY: u64 = 16;

impl Walk<'_> {
    /// Records an error and asks what to do; true when the whole delete stops.
    fn fail(&mut self, e: DeleteError) -> bool {
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

    fn remove_target(&mut self, path: &Path, at: &Located) {
        if at.stat.kind() != Kind::Dir {
            self.unlink(at.parent.as_fd(), &at.name, &at.stat, path);
            return;
        }
        if !same_fs(self.root, &at.stat) {
            self.fail(DeleteError::OtherFilesystem(path.to_path_buf()));
            return;
        }
        let Some(first) = self.open(at.parent.as_fd(), &at.name, &at.stat, path) else {
            return;
        };
        self.empty(at.parent.as_fd(), first);
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

    /// Opens a directory to empty it: `O_NOFOLLOW|O_DIRECTORY` relative to its parent, and
    /// checked to be the inode that was stat'ed by name (else it was swapped meanwhile).
    fn open(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &CString,
        st: &sys::Stat,
        path: &Path,
    ) -> Option<Frame> {
        let fd = match sys::open_dir_at(parent, name) {
            Ok(fd) => fd,
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                // Swapped for a symlink or a file since it was listed: remove what is there
                // now, as itself (a link is never followed).
                if let Ok(now) = sys::stat_at(parent, name)
                    && now.kind() != Kind::Dir
                {
                    self.unlink(parent, name, &now, path);
                }
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
        if (opened.dev, opened.ino) != (st.dev, st.ino) || !same_fs(self.root, &opened) {
            self.fail(DeleteError::Changed(path.to_path_buf()));
            return None;
        }
        let mut listing = sys::Listing::default();
        if let Err(errno) = sys::read_dir(fd.as_fd(), &mut Vec::new(), &mut listing) {
            self.fail(DeleteError::Io {
                path: path.to_path_buf(),
                errno,
            });
            return None;
        }
        self.listener.entered(path);
        Some(Frame {
            fd,
            listing,
            next: 0,
            name: name.clone(),
            path: path.to_path_buf(),
            own: opened.blocks,
            kept: false,
        })
    }

    /// Empties and removes a directory, depth first without recursion (trees thousands deep
    /// must not overflow the stack); `parent` is the fd `first` was opened from.
    fn empty(&mut self, parent: BorrowedFd<'_>, first: Frame) {
        let mut stack = vec![first];
        while let Some(top) = stack.last_mut() {
            if self.stop || self.progress.cancelled() {
                self.stop = true;
                return;
            }
            if top.next < top.listing.len() {
                let i = top.next;
                top.next += 1;
                let name = CString::from(top.listing.c_name(i));
                let path = top.path.join(OsStr::from_bytes(top.listing.name(i)));
                let dir = top.fd.as_fd();
                let st = match sys::stat_at(dir, &name) {
                    Ok(st) => st,
                    Err(Errno::ENOENT) => continue,
                    Err(errno) => {
                        top.kept = true;
                        self.fail(DeleteError::Io { path, errno });
                        continue;
                    }
                };
                if st.kind() != Kind::Dir {
                    if !self.unlink(dir, &name, &st, &path) {
                        top.kept = true;
                    }
                    continue;
                }
                if !same_fs(self.root, &st) {
                    top.kept = true;
                    self.fail(DeleteError::OtherFilesystem(path));
                    continue;
                }
                match self.open(dir, &name, &st, &path) {
                    Some(child) => stack.push(child),
                    // Gone, removed as a link, or an error already told.
                    None => {
                        if sys::stat_at(dir, &name).is_ok() {
                            top.kept = true;
                        }
                    }
                }
                continue;
            }
            let done = stack.pop().expect("the loop holds a frame");
            let parent_fd = stack.last().map_or(parent, |f| f.fd.as_fd());
            let removed = if done.kept {
                false
            } else {
                match unlinkat(parent_fd, done.name.as_c_str(), UnlinkatFlags::RemoveDir) {
                    Ok(()) => {
                        self.gone(done.own, true);
                        true
                    }
                    Err(Errno::ENOENT) => true,
                    Err(errno) => {
                        self.fail(DeleteError::Io {
                            path: done.path.clone(),
                            errno,
                        });
                        false
                    }
                }
            };
            if !removed && let Some(up) = stack.last_mut() {
                up.kept = true;
            }
        }
    }
}

/// "1 item", "2 items": for messages about what went.
#[must_use]
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
