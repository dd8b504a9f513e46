//! What a delete may remove, fixed before the user is asked: per directory below each target,
//! its identity and the names it holds with their kind and identity (an inode; a plain file the
//! tree keeps no inode for by its size and mtime, as `Target::matches`). Copied from the tree
//! under one read lock (what the browser shows), and counted on the disk where the tree holds
//! nothing: an excluded directory (`<`), one that could not be read, a target the tree does not
//! know (changed on the disk since it was shown). The dialog shows the plan's counts, and the
//! walk deletes nothing the plan does not hold, so what moves in later is never deleted.
//!
//! What a plan says it frees is what the walk will free: a directory, a file of one name, and an
//! inode with other names only when every one of them is among the plan's entries (its link
//! count reached), counted once. The tree's totals charge a hard-linked inode at one of its
//! names whether or not the others are selected, so they are not what a delete frees; the
//! bytes of inodes that keep a name outside are said apart (`Plan::kept`).
//!
//! The disk is counted by the scanner (bounded fds, never following a symlink) into a
//! throwaway tree of anonymous memory, from a directory opened by path and checked to be the
//! one the plan names by device and inode; the live tree is never touched.

use std::collections::{HashMap, VecDeque};
use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use nix::errno::Errno;

use super::{
    DeleteError, Listener, Progress, Target, components, is_bare, locate, outermost, same_fs, short,
};
use crate::fs::{FsError, RootDir, sys};
use crate::scan::{self, Excludes, ScanError, ScanOptions};
use crate::tree::{self, Arena, ArenaError, Kind, NodeId, Tree, TreeError, flags};

/// How an entry is recognized on the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ident {
    /// By inode (directories, hard links, anything the plan stat'ed itself).
    Ino(u64),
    /// A plain file the tree keeps no inode for: its size and mtime (whole seconds).
    Plain { size: u64, mtime: i64 },
    /// Not known (its stat failed): nothing on the disk is it, so it stays.
    Unknown,
}

/// Why a directory of the plan could not be counted on the disk (said in `Plan::uncounted`).
#[derive(Debug, thiserror::Error)]
enum Uncounted {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("{}: replaced while being counted", short(.0))]
    Replaced(PathBuf),
    #[error(transparent)]
    Arena(#[from] ArenaError),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error("cancelled")]
    Cancelled,
}

/// "No directory of the manifest": a non-directory, or a directory never entered.
pub(super) const NO_DIR: u32 = u32::MAX;

/// One directory of the manifest: its identity and its entries (a range sorted by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MDir {
    pub dev: u64,
    pub ino: u64,
    /// Its identity is known (else no directory on the disk is it).
    pub known: bool,
    first: usize,
    len: u32,
}

/// One name of a directory of the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MEntry {
    name: usize,
    name_len: u8,
    pub kind: Kind,
    pub ident: Ident,
    /// Its `MDir`, for a directory to enter.
    pub dir: u32,
}

/// Every directory and name a plan holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    dirs: Vec<MDir>,
    entries: Vec<MEntry>,
    names: Vec<u8>,
}

impl Manifest {
    pub(super) fn dir(&self, i: u32) -> Option<&MDir> {
        self.dirs.get(i as usize)
    }

    fn name(&self, e: &MEntry) -> &[u8] {
        &self.names[e.name..e.name + usize::from(e.name_len)]
    }

    fn position(&self, dir: u32, name: &[u8]) -> Option<usize> {
        let d = self.dir(dir)?;
        let range = &self.entries[d.first..d.first + d.len as usize];
        range
            .binary_search_by(|e| self.name(e).cmp(name))
            .ok()
            .map(|i| d.first + i)
    }

    /// The entry `name` of directory `dir`, if the plan holds it.
    pub(super) fn find(&self, dir: u32, name: &[u8]) -> Option<&MEntry> {
        self.position(dir, name).map(|i| &self.entries[i])
    }

    /// Is what `st` found the entry `e` of directory `dir` of the plan?
    pub(super) fn matches(&self, dir: u32, e: &MEntry, st: &sys::Stat) -> bool {
        if st.kind() != e.kind {
            return false;
        }
        let dev = match self.dir(e.dir) {
            Some(sub) => sub.dev,
            // A non-directory is on its directory's device (the tree keeps no other).
            None if e.kind != Kind::Dir => self.dir(dir).map_or(st.dev, |d| d.dev),
            // A directory never entered (another filesystem): by its inode alone.
            None => st.dev,
        };
        st.dev == dev
            && match e.ident {
                Ident::Ino(ino) => st.ino == ino,
                Ident::Plain { size, mtime } => (st.size, st.mtime) == (size, mtime),
                Ident::Unknown => false,
            }
    }

    fn new_dir(&mut self, dev: u64, ino: u64, known: bool) -> u32 {
        let i = u32::try_from(self.dirs.len()).expect("fewer directories than the tree's nodes");
        self.dirs.push(MDir {
            dev,
            ino,
            known,
            first: self.entries.len(),
            len: 0,
        });
        i
    }

    fn push_entry(&mut self, name: &[u8], kind: Kind, ident: Ident, dir: u32) {
        let at = self.names.len();
        self.names.extend_from_slice(name);
        self.entries.push(MEntry {
            name: at,
            name_len: u8::try_from(name.len()).unwrap_or(u8::MAX),
            kind,
            ident,
            dir,
        });
    }

    /// Makes the entries pushed since `first` the entries of `dir`, sorted by name.
    fn close_dir(&mut self, dir: u32, first: usize) {
        let names = &self.names;
        let key = |e: &MEntry| &names[e.name..e.name + usize::from(e.name_len)];
        self.entries[first..].sort_unstable_by(|a, b| key(a).cmp(key(b)));
        let d = &mut self.dirs[dir as usize];
        d.first = first;
        d.len = u32::try_from(self.entries.len() - first).unwrap_or(u32::MAX);
    }

    /// Bytes held (for measurements).
    fn heap_bytes(&self) -> usize {
        self.dirs.capacity() * std::mem::size_of::<MDir>()
            + self.entries.capacity() * std::mem::size_of::<MEntry>()
            + self.names.capacity()
    }
}

/// What the user is asked to confirm: the targets with what the plan counted for each, and the
/// manifest the walk keeps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Outermost first-level targets, with the identity and counts the plan found.
    pub targets: Vec<Target>,
    /// Per target, its directory in the manifest (`NO_DIR` for anything else).
    roots: Vec<u32>,
    manifest: Arc<Manifest>,
    /// Directories whose contents the tree did not hold, counted on the disk: (path, items).
    pub counted: Vec<(PathBuf, u64)>,
    /// Directories whose contents could not be counted (why): their contents stay.
    pub uncounted: Vec<(PathBuf, String)>,
    /// Targets the delete refuses whatever is in them (below another mount, a mount point,
    /// the root, outside it): left out of `targets`, said before anything is asked.
    pub refused: Vec<DeleteError>,
    /// Counting was cancelled: this plan is not to be offered.
    pub cancelled: bool,
    /// Disk usage of the hard-linked files among the targets with a name outside them (their
    /// link count not reached inside): it stays, and is not in the targets' `disk`.
    pub kept: u64,
    /// How many such inodes.
    pub kept_files: u64,
}

impl Plan {
    #[must_use]
    pub fn items(&self) -> u64 {
        self.targets.iter().map(|t| t.items).sum()
    }

    /// Disk space the delete frees (see the module's comment).
    #[must_use]
    pub fn disk(&self) -> u64 {
        self.targets.iter().map(|t| t.disk).sum()
    }

    /// The memory its manifest takes (for measurements).
    #[must_use]
    pub fn manifest_bytes(&self) -> usize {
        self.manifest.heap_bytes()
    }

    pub(super) fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub(super) fn roots(&self) -> &[u32] {
        &self.roots
    }

    /// The part of the plan for the targets `keep` accepts (the same manifest). Each target
    /// keeps its count from the whole plan: an inode whose names were spread over targets
    /// that are not all kept is still counted as freed.
    #[must_use]
    pub fn subset(&self, keep: impl Fn(&Target) -> bool) -> Plan {
        let (targets, roots) = self
            .targets
            .iter()
            .zip(&self.roots)
            .filter(|(t, _)| keep(t))
            .map(|(t, r)| (t.clone(), *r))
            .unzip();
        Plan {
            targets,
            roots,
            manifest: Arc::clone(&self.manifest),
            counted: Vec::new(),
            uncounted: Vec::new(),
            refused: Vec::new(),
            cancelled: false,
            kept: 0,
            kept_files: 0,
        }
    }
}

/// What the dialog and `dtui delete` say of the bytes a plan does not free because of hard
/// links with names outside it, if any.
#[must_use]
pub fn kept_note(plan: &Plan) -> Option<String> {
    (plan.kept_files > 0).then(|| {
        format!(
            "Not freed, they stay: {} in {} with hard links outside",
            crate::format::size(plan.kept),
            super::count(plan.kept_files, "file", "files")
        )
    })
}

/// One inode with other names, as far as the plan's entries hold it.
#[derive(Debug, Clone, Copy)]
struct Names {
    /// How many of its names the plan holds.
    held: u32,
    nlink: u32,
    disk: u64,
    /// The first target that holds a name of it (which counts it if it is freed).
    target: usize,
}

/// What the plan frees, per target, tallied entry by entry as the plan copies or counts them.
#[derive(Debug, Default)]
struct Freed {
    /// Per target: its directories and files of one name.
    bytes: Vec<u64>,
    /// The inodes with other names, by (device, inode).
    linked: HashMap<(u64, u64), Names>,
    /// Inodes with other names whose inode is not known (never matched with the others).
    unknown: (u64, u64),
}

impl Freed {
    fn new(targets: usize) -> Freed {
        Freed {
            bytes: vec![0; targets],
            ..Freed::default()
        }
    }

    /// A directory (its own blocks), or anything that is the only name of what it is.
    fn own(&mut self, target: usize, disk: u64) {
        self.bytes[target] = self.bytes[target].saturating_add(disk);
    }

    /// A non-directory with `nlink` names.
    fn name(&mut self, target: usize, dev: u64, ino: Option<u64>, nlink: u32, disk: u64) {
        if nlink < 2 {
            return self.own(target, disk);
        }
        let Some(ino) = ino.filter(|&i| i != 0) else {
            self.unknown.0 = self.unknown.0.saturating_add(disk);
            self.unknown.1 += 1;
            return;
        };
        let n = self.linked.entry((dev, ino)).or_insert(Names {
            held: 0,
            nlink,
            disk,
            target,
        });
        n.held += 1;
        // The newest stat is the newest word on the count (the tree's names of one inode
        // agree; one counted on the disk may be newer).
        n.nlink = nlink;
    }

    /// Per target what it frees, and (bytes, inodes) kept by names outside the plan.
    fn finish(mut self) -> (Vec<u64>, u64, u64) {
        let (mut kept, mut files) = self.unknown;
        for n in std::mem::take(&mut self.linked).into_values() {
            if n.held >= n.nlink {
                self.own(n.target, n.disk);
            } else {
                kept = kept.saturating_add(n.disk);
                files += 1;
            }
        }
        (self.bytes, kept, files)
    }
}

/// Names of one directory of the manifest to stat on the disk (the tree knows only their name
/// and kind), and the target they count towards.
struct Fix {
    dir: u32,
    path: PathBuf,
    names: Vec<Vec<u8>>,
    target: usize,
}

/// Plans `targets` (an entry inside another goes with it): from `tree` where it holds them as
/// they were shown, else from the disk. Counting on the disk reports through `listener.tick`
/// (`progress.items`: entries counted) and stops when `progress` is cancelled.
pub fn plan(
    root: &RootDir,
    tree: Option<&RwLock<Tree>>,
    targets: Vec<Target>,
    progress: &Progress,
    listener: &mut dyn Listener,
) -> Plan {
    let (targets, refused) = refuse(root, outermost(targets));
    let mut m = Manifest::default();
    let mut fixes = Vec::new();
    let mut roots = vec![NO_DIR; targets.len()];
    let mut out = targets.clone();
    let mut on_disk = Vec::new();
    let mut freed = Freed::new(targets.len());
    match tree {
        Some(lock) => {
            let t = tree::read(lock);
            for (i, target) in targets.iter().enumerate() {
                let shown = t.lookup(&target.path).map(|id| (id, Target::of(&t, id)));
                match shown {
                    Some((id, now)) if !now.bare && now.same_entry(target) => {
                        let own = t.own(id);
                        if now.kind == Kind::Dir {
                            freed.own(i, own.disk);
                        } else {
                            freed.name(i, now.dev, own.ino, nlink_of(&t, id), own.disk);
                        }
                        if now.kind == Kind::Dir && t.flags(id) & flags::OTHER_FS == 0 {
                            let d = m.new_dir(now.dev, now.ino.unwrap_or(0), true);
                            copy_tree(&mut m, &t, id, d, &mut freed, i, Some(&mut fixes));
                            roots[i] = d;
                        }
                        out[i] = now;
                    }
                    _ => on_disk.push(i),
                }
            }
        }
        None => on_disk.extend(0..targets.len()),
    }
    let mut c = Counter {
        root,
        progress,
        listener,
        plan: Plan {
            targets: out,
            roots,
            manifest: Arc::default(),
            counted: Vec::new(),
            uncounted: Vec::new(),
            refused: Vec::new(),
            cancelled: false,
            kept: 0,
            kept_files: 0,
        },
        manifest: m,
        freed,
    };
    for i in on_disk {
        c.plan_on_disk(i);
    }
    for f in &fixes {
        c.fix(f);
    }
    let mut plan = c.plan;
    plan.refused = refused;
    let (bytes, kept, kept_files) = c.freed.finish();
    for (t, b) in plan.targets.iter_mut().zip(bytes) {
        t.disk = b;
    }
    (plan.kept, plan.kept_files) = (kept, kept_files);
    plan.cancelled = progress.cancelled();
    plan.manifest = Arc::new(c.manifest);
    plan
}

/// Splits off the targets the delete would refuse whatever is in them, found by opening
/// their parents from the root as the delete will (`locate`): below another mount inside the
/// root, a mount point itself (of any kind), the root, outside it. Anything else `locate` meets (gone,
/// unreadable) is the delete's to report, as it finds it then.
fn refuse(root: &RootDir, targets: Vec<Target>) -> (Vec<Target>, Vec<DeleteError>) {
    let mut kept = Vec::with_capacity(targets.len());
    let mut refused = Vec::new();
    for t in targets {
        match locate(root, &t.path) {
            Err(
                e @ (DeleteError::BelowMount { .. }
                | DeleteError::OutsideRoot(_)
                | DeleteError::Root(_)),
            ) => refused.push(e),
            // A mount point (a file bind-mounted over a file, too: the kernel would say EBUSY).
            Ok(at) if !same_fs(root, &at.stat) => {
                refused.push(DeleteError::OtherFilesystem(t.path));
            }
            _ => kept.push(t),
        }
    }
    (kept, refused)
}

/// The link count of a non-directory as the tree has it (an entry whose stat failed has
/// one: nothing is known of its other names).
fn nlink_of(t: &Tree, id: NodeId) -> u32 {
    if t.flags(id) & flags::READ_ERROR != 0 {
        1
    } else {
        t.nlink(id)
    }
}

/// Copies the subtree of `node` into `m` as its directory `into`, breadth first, tallying in
/// `freed` what goes with it towards target `target` (`node` itself not: its caller knows
/// what it is). With `fixes`, what the
/// tree knows by name only is noted to be stat'ed and counted on the disk; without, it stays
/// unknown.
fn copy_tree(
    m: &mut Manifest,
    t: &Tree,
    node: NodeId,
    as_dir: u32,
    freed: &mut Freed,
    target: usize,
    mut fixes: Option<&mut Vec<Fix>>,
) {
    let mut queue = VecDeque::from([(node, as_dir)]);
    while let Some((n, d)) = queue.pop_front() {
        let first = m.entries.len();
        let mut bare_names = Vec::new();
        for c in t.children(n) {
            let f = t.flags(c);
            let kind = t.kind(c);
            let own = t.own(c);
            let ino = own.ino.unwrap_or(0);
            let (ident, dir) = if is_bare(f, own.ino) {
                bare_names.push(t.name(c).to_vec());
                (Ident::Unknown, NO_DIR)
            } else if kind != Kind::Dir {
                let dev = t.dev(c).unwrap_or(0);
                freed.name(target, dev, own.ino, nlink_of(t, c), own.disk);
                let ident = own.ino.map_or(
                    Ident::Plain {
                        size: own.apparent,
                        mtime: own.mtime.sec,
                    },
                    Ident::Ino,
                );
                (ident, NO_DIR)
            } else if f & flags::OTHER_FS != 0 {
                (Ident::Ino(ino), NO_DIR)
            } else {
                let sub = m.new_dir(t.dev(c).unwrap_or(0), ino, true);
                if f & flags::READ_ERROR != 0 {
                    // Its listing could not be read: counted on the disk, if it can be now
                    // (itself with it).
                    bare_names.push(t.name(c).to_vec());
                } else {
                    freed.own(target, own.disk);
                    queue.push_back((c, sub));
                }
                (Ident::Ino(ino), sub)
            };
            m.push_entry(t.name(c), kind, ident, dir);
        }
        m.close_dir(d, first);
        if let Some(fixes) = fixes.as_mut()
            && !bare_names.is_empty()
        {
            fixes.push(Fix {
                dir: d,
                path: t.path_of(n),
                names: bare_names,
                target,
            });
        }
    }
}

/// Counts on the disk what the tree does not hold, into the plan and its manifest.
struct Counter<'a> {
    root: &'a RootDir,
    progress: &'a Progress,
    listener: &'a mut dyn Listener,
    plan: Plan,
    manifest: Manifest,
    freed: Freed,
}

impl Counter<'_> {
    /// A target the tree does not hold as it was shown: taken as the disk has it if that is
    /// still the entry shown (or the tree knew only its name), counted below; else left as it
    /// was, for the delete to hand back as changed.
    fn plan_on_disk(&mut self, i: usize) {
        let shown = &self.plan.targets[i];
        let Ok(at) = locate(self.root, &shown.path) else {
            return; // the delete reports why
        };
        if !shown.bare && !shown.matches(&at.stat) {
            return;
        }
        let now = shown.as_now(&at.stat);
        let st = &at.stat;
        if now.kind == Kind::Dir {
            self.freed.own(i, now.disk);
        } else {
            self.freed.name(i, st.dev, Some(st.ino), st.nlink, now.disk);
        }
        let path = now.path.clone();
        self.plan.targets[i] = now;
        if st.kind() == Kind::Dir && same_fs(self.root, st) {
            let dir = self.manifest.new_dir(st.dev, st.ino, true);
            self.plan.roots[i] = dir;
            self.count(dir, &path, i);
        }
    }

    /// Stats the names `fix` holds and counts the directories among them.
    fn fix(&mut self, fix: &Fix) {
        let Some(&want) = self.manifest.dir(fix.dir) else {
            return;
        };
        let Ok(fd) = open_dir_path(self.root, &fix.path) else {
            return; // they stay unknown: left by the walk, reported there
        };
        if !sys::stat_fd(fd.as_fd()).is_ok_and(|s| (s.dev, s.ino) == (want.dev, want.ino)) {
            return;
        }
        for name in &fix.names {
            if self.progress.cancelled() {
                return;
            }
            let Some(at) = self.manifest.position(fix.dir, name) else {
                continue;
            };
            let Ok(c_name) = CString::new(name.as_slice()) else {
                continue;
            };
            let Ok(st) = sys::stat_at(fd.as_fd(), &c_name) else {
                continue;
            };
            let shown = self.manifest.entries[at];
            if matches!(shown.ident, Ident::Ino(ino) if ino != 0 && ino != st.ino) {
                continue; // not the one the tree showed (it knew its inode): left
            }
            let mut dir = NO_DIR;
            let disk = st.blocks.saturating_mul(512);
            if st.kind() == Kind::Dir && same_fs(self.root, &st) {
                self.freed.own(fix.target, disk);
                dir = match shown.dir {
                    NO_DIR => self.manifest.new_dir(st.dev, st.ino, true),
                    known => {
                        let d = &mut self.manifest.dirs[known as usize];
                        (d.dev, d.ino, d.known) = (st.dev, st.ino, true);
                        known
                    }
                };
            } else if st.kind() != Kind::Dir {
                self.freed
                    .name(fix.target, st.dev, Some(st.ino), st.nlink, disk);
            }
            self.manifest.entries[at] = MEntry {
                kind: st.kind(),
                ident: Ident::Ino(st.ino),
                dir,
                ..shown
            };
            if dir != NO_DIR {
                self.count(dir, &fix.path.join(OsStr::from_bytes(name)), fix.target);
            }
        }
    }

    /// Counts the contents of directory `dir` of the manifest (at `path`) on the disk into it,
    /// adding them to target `target`'s (the directory itself is its caller's to count); says
    /// in the plan what was counted, or why not.
    fn count(&mut self, dir: u32, path: &Path, target: usize) {
        let Some(&want) = self.manifest.dir(dir) else {
            return;
        };
        match self.scan(path, (want.dev, want.ino)) {
            Ok(sub) => {
                let root = sub.root();
                copy_tree(
                    &mut self.manifest,
                    &sub,
                    root,
                    dir,
                    &mut self.freed,
                    target,
                    None,
                );
                let items = sub.totals(sub.root()).items;
                self.plan.targets[target].items += items;
                self.plan.counted.push((path.to_path_buf(), items));
            }
            Err(why) => self
                .plan
                .uncounted
                .push((path.to_path_buf(), why.to_string())),
        }
    }

    /// Scans `path` (which must be the directory `want`) into a throwaway tree.
    fn scan(&mut self, path: &Path, want: (u64, u64)) -> Result<Tree, Uncounted> {
        let sub = RootDir::open(path)?;
        if (sub.stat().dev, sub.stat().ino) != want {
            return Err(Uncounted::Replaced(path.to_path_buf()));
        }
        let arena = Arena::create_temp()?;
        let tree = RwLock::new(sub.new_tree(arena)?);
        let opts = ScanOptions {
            threads: scan::default_threads(),
            one_filesystem: true,
            excludes: Excludes::default(),
            exclude_caches: false,
            exclude_kernfs: false,
        };
        let scanned = scan::Progress::new();
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let base = self
            .progress
            .items
            .load(std::sync::atomic::Ordering::Relaxed);
        let result = std::thread::scope(|s| {
            s.spawn(|| {
                let r = scan::scan_root(&sub, &tree, &opts, &scanned);
                let _ = done_tx.send(r);
            });
            loop {
                if let Ok(r) = done_rx.recv_timeout(Duration::from_millis(30)) {
                    return r;
                }
                if self.progress.cancelled() {
                    scanned.cancel();
                }
                self.progress.items.store(
                    base + scanned.snapshot().entries,
                    std::sync::atomic::Ordering::Relaxed,
                );
                self.listener.tick(self.progress);
            }
        });
        result?;
        if self.progress.cancelled() {
            return Err(Uncounted::Cancelled);
        }
        let tree = tree
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.progress.items.store(
            base + tree.totals(tree.root()).items,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(tree)
    }
}

/// Opens a directory below (or at) the root, name by name with `O_NOFOLLOW`.
fn open_dir_path(root: &RootDir, path: &Path) -> Result<OwnedFd, Errno> {
    let mut fd = sys::dup_dir(root.fd())?;
    if path == root.path {
        return Ok(fd);
    }
    for n in components(&root.path, path).map_err(|_| Errno::EINVAL)? {
        fd = sys::open_dir_at(fd.as_fd(), &n)?;
    }
    Ok(fd)
}
