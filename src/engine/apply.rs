//! Applying one released watch batch to the tree, in O(changes): each changed path is looked
//! up through the child index, its parent directory opened (relative to fds we hold, never
//! following a symlink) and that one name stat'ed: there now and in the tree means an update
//! (or a replacement), there and not in the tree an addition (a new directory is scanned once,
//! whole), gone a removal. A rename the backend reported with both names moves the node with
//! its subtree when the destination is the same inode. A directory the flood collapsed into
//! "dirty" has its direct children re-read; "verify this subtree" goes back to the engine as a
//! rescan. Every size change bubbles to the root in O(depth).
//!
//! Renames are in `rename`, the other names of hard links in `links`, re-reads in `reread`.

mod links;
mod rename;
mod reread;

use std::ffi::CString;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::RwLock;

use nix::errno::Errno;

use crate::fs::{Reopener, RootDir, sys};
use crate::scan::{self, EntryCtx, Progress, ScanError, ScanOptions};
use crate::tree::{self, EntryInfo, Kind, NodeId, NodeRef, Tree, flags};
use crate::watch::Batch;
use crate::watch::queue::kinds;
use links::Linked;
use rename::moved_paths;

/// What a change did, for reports (`dtui watch` prints one line each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeLine {
    pub kind: ChangeKind,
    /// Relative to the root.
    pub path: Vec<u8>,
    /// A move's destination, relative to the root.
    pub to: Option<Vec<u8>>,
    /// How the root's disk usage moved.
    pub disk: i128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
    Moved,
    /// A directory re-read, or a subtree verified.
    Verified,
}

/// What applying a batch left to do and to say.
#[derive(Debug, Default)]
pub struct Outcome {
    pub lines: Vec<ChangeLine>,
    /// Subtrees to verify (a backend asked, or a path could not be resolved): the engine runs
    /// a parallel catch-up of each.
    /// Held as references: a node freed later in the batch may have its slot reused.
    pub rescans: Vec<NodeRef>,
    pub rescan_root: bool,
    /// Hard-linked inodes whose set of names changed: every other name of them in the tree
    /// has a stale link count (no event names it), so each is stat'ed again.
    pub(super) linked: Vec<Linked>,
}

/// Where a changed path is in the tree.
enum Place {
    /// Its parent directory is in the tree: (parent, name, child if in the tree).
    Known(NodeId, Vec<u8>, Option<NodeId>),
    /// Outside the root, or below something that is not scanned (excluded, another
    /// filesystem, unreadable): nothing to do.
    Ignored,
}

pub struct Applier<'a> {
    pub lock: &'a RwLock<Tree>,
    pub root: &'a RootDir,
    pub reopen: &'a Reopener<'a>,
    pub opts: &'a ScanOptions,
    pub progress: &'a Progress,
}

impl Applier<'_> {
    pub fn apply(&self, batch: &Batch) -> Result<Outcome, ScanError> {
        let mut out = Outcome::default();
        if batch.rescan_root {
            out.rescan_root = true;
            return Ok(out);
        }
        // Renames first (both names known): a move keeps the subtree; the names are then
        // consistent for the plain changes that follow.
        let mut moves = Vec::new();
        for c in &batch.changes {
            if c.kinds & kinds::RENAMED_FROM != 0
                && let Some(to) = &c.to
                && self.rename(&c.path, to, &mut out)?
            {
                moves.push((c.path.as_slice(), to.as_slice()));
            }
        }
        for c in &batch.changes {
            if c.kinds & kinds::RESCAN != 0 {
                self.rescan_path(&c.path, &mut out);
                continue;
            }
            // A change below a directory this batch moved was named by its old path (the
            // batch is sorted by path, not time): it is settled at the new path as well.
            for path in moved_paths(&c.path, &moves) {
                let before = (c.kinds & kinds::REREAD != 0).then(|| self.node_at(&path));
                self.change(&path, &mut out)?;
                if let Some(before) = before {
                    self.reread_moved(&path, before, &mut out);
                }
            }
        }
        let dirty: Vec<Vec<u8>> = batch
            .dirty_dirs
            .iter()
            .flat_map(|d| moved_paths(d, &moves))
            .collect();
        for d in &dirty {
            match self.place(d) {
                Place::Known(parent, name, Some(id)) if self.is_dir(id) => {
                    let _ = (parent, name);
                    self.reread(id, &mut out)?;
                }
                Place::Known(parent, name, _) => {
                    self.settle(parent, &name, None, &mut out)?;
                }
                Place::Ignored => {}
            }
        }
        self.moved_out(batch, &mut out);
        self.relink(&mut out)?;
        Ok(out)
    }

    /// Opens directory `dir` of the tree and checks that it is that directory (its path may
    /// hold another one when a rename in this batch is not applied yet): `ESTALE` if not.
    fn open_dir(&self, dir: NodeId) -> Result<std::sync::Arc<std::os::fd::OwnedFd>, Errno> {
        let fd = self.reopen.open(self.lock, dir)?;
        let st = sys::stat_fd(fd.as_fd())?;
        let t = tree::read(self.lock);
        if !t.is_live(dir) || (Some(st.ino), Some(st.dev)) != (t.ino(dir), t.dev(dir)) {
            return Err(Errno::ESTALE);
        }
        Ok(fd)
    }

    fn rescan_later(&self, dir: NodeId, out: &mut Outcome) {
        out.rescans.push(tree::read(self.lock).node_ref(dir));
    }

    fn is_dir(&self, id: NodeId) -> bool {
        tree::read(self.lock).kind(id) == Kind::Dir
    }

    fn rel(&self, path: &[u8]) -> Vec<u8> {
        let root = self.root.path.as_os_str().as_encoded_bytes();
        let rest = path.strip_prefix(root).unwrap_or(path);
        rest.strip_prefix(b"/").unwrap_or(rest).to_vec()
    }

    /// Finds a changed path's parent in the tree. A missing ancestor stands for its first
    /// missing component (a new directory: scanning it covers the rest).
    fn place(&self, path: &[u8]) -> Place {
        let p = Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(path));
        let Some(comps) = crate::path::relative_components(&self.root.path, p) else {
            return Place::Ignored;
        };
        let comps: Vec<&[u8]> = comps.map(std::ffi::OsStr::as_encoded_bytes).collect();
        let mut t = tree::write(self.lock);
        let mut dir = t.root();
        if comps.is_empty() {
            return Place::Known(dir, Vec::new(), Some(dir));
        }
        for (k, name) in comps.iter().enumerate() {
            let unscanned = flags::NOT_CHARGED | flags::READ_ERROR;
            if t.kind(dir) != Kind::Dir || t.flags(dir) & unscanned != 0 {
                return Place::Ignored;
            }
            let child = t.find_child(dir, name);
            if k + 1 == comps.len() || child.is_none() {
                return Place::Known(dir, name.to_vec(), child);
            }
            dir = child.expect("checked above");
        }
        Place::Ignored
    }

    fn change(&self, path: &[u8], out: &mut Outcome) -> Result<(), ScanError> {
        match self.place(path) {
            Place::Known(dir, name, child) if name.is_empty() => {
                // The root itself: its own stat.
                let _ = child;
                self.refresh_own(dir);
                Ok(())
            }
            Place::Known(dir, name, child) => {
                self.settle(dir, &name, child, out)?;
                if self.opts.exclude_caches && name == b"CACHEDIR.TAG" {
                    // The tag decides whether its directory is excluded: settle that too.
                    let up = {
                        let t = tree::read(self.lock);
                        let parent = t.is_live(dir).then(|| t.parent(dir)).flatten();
                        parent.map(|p| (p, t.name(dir).to_vec()))
                    };
                    if let Some((parent, dir_name)) = up {
                        self.settle(parent, &dir_name, Some(dir), out)?;
                    }
                }
                Ok(())
            }
            Place::Ignored => Ok(()),
        }
    }

    /// Makes the tree agree with the disk about one name in `dir`.
    #[expect(
        clippy::too_many_lines,
        reason = "open, stat, compare, apply and report one name: one sequence"
    )]
    fn settle(
        &self,
        dir: NodeId,
        name: &[u8],
        child: Option<NodeId>,
        out: &mut Outcome,
    ) -> Result<(), ScanError> {
        let Ok(c_name) = CString::new(name) else {
            return Ok(());
        };
        let fd = match self.open_dir(dir) {
            Ok(fd) => fd,
            Err(Errno::EMFILE | Errno::ENFILE) => {
                self.rescan_later(dir, out);
                return Ok(());
            }
            Err(_) => {
                // The directory itself went, changed kind, or its path holds another one
                // (renamed over): its parent decides.
                let parent = tree::read(self.lock).parent(dir);
                self.rescan_later(parent.unwrap_or(dir), out);
                return Ok(());
            }
        };
        let needs_path = self.opts.excludes.needs_path();
        let dir_path = if needs_path {
            tree::read(self.lock).path_of(dir)
        } else {
            std::path::PathBuf::new()
        };
        let ctx = EntryCtx {
            dir: fd.as_fd(),
            dir_path: dir_path.as_os_str().as_encoded_bytes(),
            opts: self.opts,
            root_mnt: self.root.stat().mnt_id,
            root_dev: self.root.stat().dev,
        };
        let fresh = scan::stat_name(&ctx, name, &c_name, sys::DT_UNKNOWN, &mut Vec::new());
        let own = sys::stat_fd(fd.as_fd()).ok();
        let root = tree::read(self.lock).root();
        let before = tree::read(self.lock).totals(root).disk;
        let rel = {
            let t = tree::read(self.lock);
            let mut p = self.rel(t.path_of(dir).as_os_str().as_encoded_bytes());
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(name);
            p
        };
        let mut kind = None;
        let mut new_dir = None;
        {
            let mut t = tree::write(self.lock);
            if !t.is_live(dir) {
                return Ok(());
            }
            if let Some(own) = own {
                let mut info = own.info(0);
                info.flags = t.flags(dir) & !flags::READ_ERROR;
                t.update_in_place(dir, &info)?;
            }
            match (child.filter(|&c| t.is_live(c)), fresh) {
                (None, None) => {}
                (Some(id), None) => {
                    t.remove(id);
                    kind = Some(ChangeKind::Removed);
                }
                (Some(id), Some(info)) => {
                    let mut same = info;
                    let was = t.own(id);
                    let was_flags = t.flags(id);
                    if info.kind == Kind::Dir && t.kind(id) == Kind::Dir {
                        // Its own times are the listing's stamp: left to its own re-read.
                        same.mtime = was.mtime.sec;
                        same.mtime_nsec = was.mtime.nsec;
                    }
                    if t.update_in_place(id, &same)? {
                        if info.kind == Kind::Dir
                            && was_flags & (flags::READ_ERROR | flags::STALE) != 0
                        {
                            // Readable again (chmod), or never read to its end: its contents
                            // are read by a verification of its subtree.
                            out.rescans.push(t.node_ref(id));
                        }
                        let now = t.own(id);
                        let moved = (now.apparent, now.disk, now.mtime)
                            != (was.apparent, was.disk, was.mtime);
                        if moved {
                            kind = Some(ChangeKind::Changed);
                        }
                    } else {
                        t.remove(id);
                        new_dir = Self::add(&mut t, dir, name, &info)?;
                        kind = Some(ChangeKind::Added);
                    }
                }
                (None, Some(info)) => {
                    new_dir = Self::add(&mut t, dir, name, &info)?;
                    kind = Some(ChangeKind::Added);
                }
            }
        }
        if let Some(id) = new_dir {
            let sub = sys::open_dir_at(fd.as_fd(), &c_name).ok();
            scan::scan_subtree_fd(self.lock, self.root, id, sub, self.opts, self.progress)?;
            let mut t = tree::write(self.lock);
            if t.is_live(id) {
                t.set_flag(id, flags::STALE, false);
            }
        }
        if let Some(kind) = kind {
            let after = tree::read(self.lock).totals(root).disk;
            out.lines.push(ChangeLine {
                kind,
                path: rel,
                to: None,
                disk: i128::from(after) - i128::from(before),
            });
        }
        Ok(())
    }

    /// Adds one entry; a directory to scan is returned (flagged `STALE` until it is).
    fn add(
        t: &mut Tree,
        dir: NodeId,
        name: &[u8],
        info: &EntryInfo,
    ) -> Result<Option<NodeId>, ScanError> {
        let id = t.add_child(dir, name, info)?;
        if info.kind == Kind::Dir && info.flags & (flags::NOT_CHARGED | flags::READ_ERROR) == 0 {
            t.set_flag(id, flags::STALE, true);
            return Ok(Some(id));
        }
        Ok(None)
    }

    fn refresh_own(&self, dir: NodeId) {
        if let Ok(fd) = self.open_dir(dir)
            && let Ok(own) = sys::stat_fd(fd.as_fd())
        {
            let mut t = tree::write(self.lock);
            if t.is_live(dir) {
                let mut info = own.info(0);
                info.flags = t.flags(dir) & !flags::READ_ERROR;
                let was = t.mtime(dir);
                info.mtime = was.sec;
                info.mtime_nsec = was.nsec;
                // Only a failure to grow the arena stops this; the next change retries.
                let _ = t.update_in_place(dir, &info);
            }
        }
    }
}
