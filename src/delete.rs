//! Deleting entries of the tree from the disk, safely, without a terminal: the browser's `d`
//! and `dtui delete` both first `plan::plan` what goes (and show it), then run `delete` (on a
//! worker, `worker`); `trash` moves entries to the freedesktop trash of their own filesystem
//! instead (and back).
//!
//! What goes is what was confirmed, never more: the plan copies, per directory below each
//! target, the names the tree showed with their kind and identity (inode, or size and mtime for
//! a plain file), and counts on the disk what the tree does not hold (an excluded directory),
//! before the user is asked. The walk deletes a name only if it is in the plan and still that
//! entry; anything else (moved in meanwhile, replaced) is left and reported, and its directory
//! stays. So the count removed never exceeds the count confirmed.
//!
//! Everything is relative to directory fds: the parent of a target is opened name by name
//! from the root's fd with `O_NOFOLLOW|O_DIRECTORY`, each directory below it the same way from
//! its parent's fd, and every removal is an `unlinkat` on the fd it was listed from. So a
//! symlink is removed as a link and never followed, a directory swapped for a symlink while
//! the walk runs is removed as that link (what it points to is never reached), and nothing
//! outside the root can be named: a target is refused unless its components lead strictly
//! below the root (never the root itself, never `..`), and the fd walk can only go down. A
//! directory is checked to still be in its confirmed parent before its entries go (and again
//! as the walk goes on: see `walk`), so one moved out of the root is not emptied there. The
//! walk holds a bounded number of fds (deeper ones are reopened through `..`, checked by
//! device and inode), so any depth can go under a low `ulimit -n`.
//! A directory on another filesystem (a mount point, by device or mount id) is never entered
//! nor removed. Before anything goes, each target is checked on the disk against what the
//! user was shown (device, inode, kind); a mismatch deletes nothing and is handed back to be
//! asked again. Errors are asked about (abort, ignore, ignore all) through a `Listener`.

pub mod command;
pub mod plan;
pub mod trash;
mod walk;
pub mod worker;

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;

pub use plan::Plan;

use crate::fs::{Cancel, RootDir, sys};
use crate::path::display_name;
use crate::tree::{Kind, NodeId, Tree, flags};

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
    /// The tree knows only its name and kind (excluded, or its stat failed): the plan takes
    /// its identity (and counts its contents) on the disk.
    pub bare: bool,
}

impl Target {
    /// An entry of the tree as it is shown now.
    #[must_use]
    pub fn of(tree: &Tree, id: NodeId) -> Target {
        let t = tree.totals(id);
        let own = tree.own(id);
        let f = tree.flags(id);
        Target {
            path: tree.path_of(id),
            dev: tree.dev(id).unwrap_or(0),
            ino: own.ino,
            kind: tree.kind(id),
            apparent: own.apparent,
            mtime: own.mtime.sec,
            disk: t.disk,
            items: t.items + 1,
            bare: is_bare(f, own.ino),
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

    /// Are both the same entry (by what identifies it, not by their totals)?
    #[must_use]
    pub fn same_entry(&self, other: &Target) -> bool {
        (&self.path, self.dev, self.kind, self.ino)
            == (&other.path, other.dev, other.kind, other.ino)
            && (self.ino.is_some() || (self.apparent, self.mtime) == (other.apparent, other.mtime))
    }

    /// As `st` says it is now (its totals its own, until counted).
    #[must_use]
    pub fn as_now(&self, st: &sys::Stat) -> Target {
        Target {
            dev: st.dev,
            ino: Some(st.ino),
            kind: st.kind(),
            apparent: st.size,
            mtime: st.mtime,
            disk: st.blocks.saturating_mul(512),
            items: 1,
            bare: false,
            path: self.path.clone(),
        }
    }
}

/// Is an entry with these flags and inode known by name and kind only (never stat'ed)?
fn is_bare(f: u8, ino: Option<u64>) -> bool {
    f & flags::EXCLUDED != 0 || (f & flags::READ_ERROR != 0 && ino.unwrap_or(0) == 0)
}

/// Why an entry (or a part of it) could not go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeleteError {
    #[error("{}: not inside the root", short(.0))]
    OutsideRoot(PathBuf),
    #[error("{}: the root itself is never deleted", short(.0))]
    Root(PathBuf),
    #[error("{}: another filesystem is mounted there (not entered)", short(.0))]
    OtherFilesystem(PathBuf),
    /// Below a mount point inside the root: delete stays on the root's filesystem (a bind
    /// mount there can show what lies outside the root).
    #[error(
        "{}: on the filesystem mounted at {} (dtui deletes only on the root's filesystem)",
        short(.path),
        short(.mount)
    )]
    BelowMount { path: PathBuf, mount: PathBuf },
    #[error("{}: changed on disk since it was shown", short(.0))]
    Changed(PathBuf),
    /// On the disk, not in what was confirmed (moved in, or created, since): left.
    #[error("{}: not shown when the delete was confirmed (left)", short(.0))]
    NotShown(PathBuf),
    /// No longer in the directory it was confirmed in (moved away while the walk ran): what
    /// is left in it stays.
    #[error("{}: moved away while being deleted (the rest of it stays)", short(.0))]
    Moved(PathBuf),
    #[error("{}: {}", short(.path), .errno.desc())]
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
            | DeleteError::NotShown(p)
            | DeleteError::Moved(p)
            | DeleteError::BelowMount { path: p, .. }
            | DeleteError::Io { path: p, .. } => p,
        }
    }
}

fn show(p: &Path) -> String {
    display_name(p.as_os_str().as_bytes())
}

/// How many characters of a path an error line shows at most: the start and the end, the
/// middle cut (a path thousands deep would fill the screen).
const SHOWN_CHARS: usize = 120;

/// A path escaped for the terminal and cut to `SHOWN_CHARS` (its middle out).
#[must_use]
pub fn short(p: &Path) -> String {
    let s = show(p);
    let n = s.chars().count();
    if n <= SHOWN_CHARS {
        return s;
    }
    let head: String = s.chars().take(SHOWN_CHARS / 4).collect();
    let tail: String = s
        .chars()
        .skip(n - (SHOWN_CHARS - SHOWN_CHARS / 4 - 1))
        .collect();
    format!("{head}…{tail}")
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
    cancel: Cancel,
}

impl Progress {
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    #[must_use]
    pub fn cancelled(&self) -> bool {
        self.cancel.cancelled()
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
    /// Entries left because they are not what was confirmed (not shown, changed, moved away):
    /// the first `LEFT_SHOWN` of them, not asked about.
    pub left: Vec<DeleteError>,
    /// How many were left in all.
    pub left_count: u64,
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
    /// (device, inode) of the root and of each directory down to `parent` (included).
    pub chain: Vec<(u64, u64)>,
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
    let mut chain = vec![(root.stat().dev, root.stat().ino)];
    let mut mount = root.path.clone();
    for n in &names {
        dir = sys::open_dir_at(dir.as_fd(), n).map_err(io)?;
        let st = sys::stat_fd(dir.as_fd()).map_err(io)?;
        mount.push(std::ffi::OsStr::from_bytes(n.as_bytes()));
        if !same_fs(root, &st) {
            return Err(DeleteError::BelowMount {
                path: path.to_path_buf(),
                mount,
            });
        }
        chain.push((st.dev, st.ino));
    }
    let stat = sys::stat_at(dir.as_fd(), &name).map_err(io)?;
    Ok(Located {
        parent: dir,
        name,
        stat,
        chain,
    })
}

/// Drops targets inside another target (a marked directory and marks below it): the outer
/// one takes them along.
#[must_use]
pub fn outermost(mut targets: Vec<Target>) -> Vec<Target> {
    // Paths order by component, so what lies within a path comes right after it: one pass
    // against the last one kept (was every pair: 63 s for 5,000 marks 40 deep).
    targets.sort_by(|a, b| a.path.cmp(&b.path));
    let mut kept: Vec<Target> = Vec::with_capacity(targets.len());
    for t in targets {
        if kept
            .last()
            .is_none_or(|o| o.path != t.path && !crate::path::is_within(&o.path, &t.path))
        {
            kept.push(t);
        }
    }
    kept
}

/// Checks every target against the disk: the ones that differ from what was shown, as they
/// are now (to be planned and confirmed again; an entry that is gone is an error instead).
#[must_use]
pub fn verify(root: &RootDir, targets: &[Target]) -> (Vec<Target>, Vec<DeleteError>) {
    let mut changed = Vec::new();
    let mut errors = Vec::new();
    for t in targets {
        match locate(root, &t.path) {
            Ok(l) => {
                let st = l.stat;
                if !t.matches(&st) {
                    changed.push(t.as_now(&st));
                }
            }
            Err(e) => errors.push(e),
        }
    }
    (changed, errors)
}

/// Deletes what `plan` holds: each target, and below a directory only the entries the plan
/// holds that are still those entries. Nothing is deleted if any target differs from what was
/// shown (`Outcome::changed`); the root is never deleted.
pub fn delete(
    root: &RootDir,
    plan: &Plan,
    progress: &Progress,
    listener: &mut dyn Listener,
) -> Outcome {
    let mut out = Outcome::default();
    let (changed, errors) = verify(root, &plan.targets);
    if !changed.is_empty() {
        out.changed = changed;
        return out;
    }
    let mut walk = walk::Walk::new(root, plan.manifest(), progress, listener, &mut out);
    for e in errors {
        if walk.fail(e) {
            break;
        }
    }
    for (t, dir) in plan.targets.iter().zip(plan.roots()) {
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
        walk.remove_target(&t.path, &located, *dir);
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

/// "1 item", "2 items": for messages about what went.
#[must_use]
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
