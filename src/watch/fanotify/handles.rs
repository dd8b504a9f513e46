//! The fanotify backend's directory handles: the current path of each directory under the
//! root, and which directories are known to lie outside it.
//!
//! A filesystem mark reports every directory of the filesystem, so on a busy filesystem most
//! events are about somebody else's directories. Resolving such a handle costs
//! `open_by_handle_at` + `readlink` + two stats (8–22 µs); it is done once, and the handle is
//! then remembered in `outside`. The directory also gets an ignore mark (evictable: it does not
//! pin the inode), so the kernel stops queueing its entries' creations, deletions, writes and
//! attribute changes for us; an event that still comes costs one hash lookup. Renames are never
//! ignored: they are what can bring a directory in.
//!
//! Whether a directory is outside changes only when it, or a directory above it, is renamed
//! (the mark sees one filesystem; a deleted directory's handle is never reused, handles carry
//! a generation). The reader applies each rename in event order: a directory moved into the
//! root, or to a place that cannot be resolved, empties `outside` and removes every ignore mark
//! (its descendants are not known, and a move in is rare); one moved out takes the handles
//! below it from the table into `outside`. A change in a moved-in directory that the kernel
//! ignored before the reader got to its rename is not lost: the engine scans a directory that
//! appears (`Created`, sent after the marks are gone) whole. The root's ancestors are never
//! outside: an event there can name the root itself (its deletion or rename), which must reach
//! the engine.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use super::super::inside;

/// A handle key: handle type and bytes (one filesystem, so the fsid is implied).
pub(super) type HandleKey = Box<[u8]>;

/// At most this many handles are remembered as outside (about 70 B each); past it the set is
/// emptied and refilled as events come (one resolution per directory again; the kernel's
/// ignore marks stay, they are still right).
const OUTSIDE_CAP: usize = 32_768;

/// What an outside directory's ignore mark ignores: everything we ask for but renames, for its
/// entries (files and subdirectories) and itself.
const IGNORED: u64 = libc::FAN_CREATE
    | libc::FAN_DELETE
    | libc::FAN_MODIFY
    | libc::FAN_CLOSE_WRITE
    | libc::FAN_ATTRIB
    | libc::FAN_ONDIR
    | libc::FAN_EVENT_ON_CHILD;

/// An event from a directory marked longer ago than this means its mark is gone (the kernel
/// evicted the inode): it is marked again. Events queued before the mark come sooner.
const REMARK_AFTER: Duration = Duration::from_secs(1);

/// Whether ignore marks can be placed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Marking {
    On,
    /// The kernel's mark limit was hit: none until the next flush.
    Full,
    /// Refused (a kernel before 6.0): none at all.
    Off,
}

/// `name_to_handle_at(dirfd, name)` as a key (`name` empty: the fd itself).
pub(super) fn handle_of(dir: &OwnedFd, name: &std::ffi::CStr) -> Result<HandleKey, Errno> {
    const MAX: usize = 128;
    // file_handle header (8 bytes) + MAX_HANDLE_SZ, 4-aligned.
    let mut buf = [0u32; (8 + MAX) / 4];
    let mut mount_id: libc::c_int = 0;
    buf[0] = MAX as u32;
    let flags = if name.is_empty() {
        libc::AT_EMPTY_PATH
    } else {
        0
    };
    // SAFETY: `buf` is a properly aligned file_handle with room for MAX bytes, as declared in
    // its handle_bytes field; `name` is NUL-terminated.
    let rc = unsafe {
        libc::name_to_handle_at(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast::<libc::file_handle>(),
            &raw mut mount_id,
            flags,
        )
    };
    if rc != 0 {
        return Err(Errno::last());
    }
    let bytes: &[u8] = bytemuck::cast_slice(&buf);
    let len = (buf[0] as usize).min(MAX);
    Ok(bytes[4..8 + len].into())
}

/// Opens what a handle key (handle type and bytes, as the events carry it) names on the
/// filesystem of `mount`, with these `open` flags (`O_PATH`: any kind, only to stat it).
/// Needs `CAP_DAC_READ_SEARCH`, as the fanotify filesystem mark needs `CAP_SYS_ADMIN`.
pub fn open_handle(mount: BorrowedFd<'_>, key: &[u8], flags: i32) -> Result<OwnedFd, Errno> {
    if key.len() < 4 {
        return Err(Errno::EINVAL);
    }
    let mut buf = vec![0u32; (4 + key.len()).div_ceil(4) + 1];
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
    bytes[..4].copy_from_slice(&((key.len() - 4) as u32).to_ne_bytes());
    bytes[4..4 + key.len()].copy_from_slice(key);
    // SAFETY: `buf` holds a file_handle (handle_bytes, handle_type, the bytes) of the size
    // its header says; the returned fd is checked and then owned.
    let fd = unsafe {
        libc::open_by_handle_at(
            mount.as_raw_fd(),
            buf.as_mut_ptr().cast::<libc::file_handle>(),
            flags,
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Is the path `p` (bytes) `from` or below it?
fn under(p: &Path, from: &[u8]) -> bool {
    let b = p.as_os_str().as_bytes();
    b.len() >= from.len()
        && b[..from.len()] == *from
        && (b.len() == from.len() || b[from.len()] == b'/')
}

/// Directory handles and what they stand for.
pub(super) struct Handles {
    pub(super) root: PathBuf,
    mount: OwnedFd,
    /// Directories under the root and the root's ancestors, with their current paths.
    map: HashMap<HandleKey, PathBuf, Xxh3DefaultBuilder>,
    /// The root's ancestors, each with the name of its child on the way to the root: an event
    /// there about any other name is not ours.
    ancestors: HashMap<HandleKey, Box<[u8]>, Xxh3DefaultBuilder>,
    /// Directories seen to be outside the root (neither under it nor above it), with when
    /// their ignore mark was placed (`None`: not yet).
    outside: HashMap<HandleKey, Option<Instant>, Xxh3DefaultBuilder>,
    /// The notification group, for ignore marks.
    group: OwnedFd,
    marking: Marking,
    /// Some ignore mark may be in place (since the last flush).
    placed: bool,
    /// Removing the ignore marks failed: events may have been ignored inside the root.
    pub(super) lost: bool,
}

impl Handles {
    pub(super) fn new(
        root: PathBuf,
        mount: OwnedFd,
        root_handle: HandleKey,
        group: OwnedFd,
    ) -> Handles {
        let mut map = HashMap::default();
        map.insert(root_handle, root.clone());
        Handles {
            root,
            mount,
            map,
            ancestors: HashMap::default(),
            outside: HashMap::default(),
            group,
            marking: Marking::On,
            placed: false,
            lost: false,
        }
    }

    /// Records the handle of every directory under the root (not following symlinks, staying
    /// on the root's filesystem, which is the only one marked).
    pub(super) fn fill(&mut self) {
        use crate::fs::sys;
        // Each stacked directory is opened when it is popped (through its parent's shared fd),
        // so a wide directory does not hold one fd per pending child.
        let root = self.root.clone();
        let Ok(root_fd) = sys::open_root_nofollow(&root) else {
            return;
        };
        let Ok(root_stat) = sys::stat_fd(root_fd.as_fd()) else {
            return;
        };
        let mut stack: Vec<(Arc<OwnedFd>, Vec<u8>, PathBuf)> = Vec::new();
        let mut listing = sys::Listing::default();
        let mut buf = Vec::new();
        let mut visit = |fd: Arc<OwnedFd>, path: PathBuf, stack: &mut Vec<_>| {
            if sys::read_dir(fd.as_fd(), &mut buf, &mut listing).is_err() {
                return;
            }
            for i in 0..listing.len() {
                if listing.d_type(i) != sys::DT_DIR {
                    continue;
                }
                // Only the root's filesystem is marked: a mount inside it reports nothing
                // here, and its handles could collide with ours (every ext4 root is inode 2).
                let same_fs = sys::stat_at(fd.as_fd(), listing.c_name(i)).is_ok_and(|st| {
                    match (st.mnt_id, root_stat.mnt_id) {
                        (Some(a), Some(b)) => a == b,
                        _ => st.dev == root_stat.dev,
                    }
                });
                if !same_fs {
                    continue;
                }
                if let Ok(key) = handle_of(&fd, listing.c_name(i)) {
                    let child = path.join(OsStr::from_bytes(listing.name(i)));
                    self.map.insert(key, child.clone());
                    stack.push((Arc::clone(&fd), listing.name(i).to_vec(), child));
                }
            }
        };
        visit(Arc::new(root_fd), root, &mut stack);
        while let Some((parent, name, path)) = stack.pop() {
            let Ok(c) = CString::new(name) else { continue };
            if let Ok(fd) = sys::open_dir_at(parent.as_fd(), &c) {
                drop(parent);
                visit(Arc::new(fd), path, &mut stack);
            }
        }
    }

    /// Is this directory known to be outside the root?
    pub(super) fn is_outside(&self, key: &[u8]) -> bool {
        !self.outside.is_empty() && self.outside.contains_key(key)
    }

    /// Is this directory, named by an event its ignore mark does not cover (renames aside),
    /// known to be outside the root? If so, and its mark is missing (never placed, or evicted
    /// with its inode), it is marked now.
    pub(super) fn outside_event(&mut self, key: &[u8]) -> bool {
        if self.outside.is_empty() {
            return false;
        }
        let Some(&marked) = self.outside.get(key) else {
            return false;
        };
        if self.marking == Marking::On && marked.is_none_or(|t| t.elapsed() > REMARK_AFTER) {
            let now = self.open_by_handle(key).map(|(fd, _)| self.ignore(&fd));
            if let Some(m) = self.outside.get_mut(key) {
                // Not openable (deleted meanwhile): not tried again either.
                *m = Some(now.flatten().unwrap_or_else(Instant::now));
            }
        }
        true
    }

    /// Is this an event in one of the root's ancestors about a name that does not lead to the
    /// root (a sibling's file, say)? Renames excepted: they can move something into the root.
    pub(super) fn other_child_of_ancestor(&self, key: &[u8], name: Option<&[u8]>) -> bool {
        !self.ancestors.is_empty()
            && self
                .ancestors
                .get(key)
                .is_some_and(|next| name != Some(&**next))
    }

    /// The current path of a directory handle: from the table, else opened by handle and
    /// checked (the path must name the same inode), else `None` (deleted, or not resolvable).
    /// A resolved directory is remembered: in the table if under or above the root, else as
    /// outside (and marked so).
    pub(super) fn resolve(&mut self, key: &[u8]) -> Option<PathBuf> {
        if let Some(p) = self.map.get(key) {
            return Some(p.clone());
        }
        let (fd, path) = self.open_by_handle(key)?;
        let path = path?;
        if inside(&self.root, &path) {
            self.map.insert(key.into(), path.clone());
        } else if let Some(next) = next_name(&path, &self.root) {
            self.map.insert(key.into(), path.clone());
            self.ancestors.insert(key.into(), next);
        } else {
            let marked = self.ignore(&fd);
            self.remember_outside(key.into(), marked);
        }
        Some(path)
    }

    fn remember_outside(&mut self, key: HandleKey, marked: Option<Instant>) {
        if self.outside.len() >= OUTSIDE_CAP {
            self.outside.clear();
        }
        self.outside.insert(key, marked);
    }

    /// Places an ignore mark on an outside directory (by fd, never by path: a path could be
    /// swapped for a symlink into the root meanwhile); when, if it was placed.
    fn ignore(&mut self, dir: &OwnedFd) -> Option<Instant> {
        if self.marking != Marking::On {
            return None;
        }
        let flags = libc::FAN_MARK_ADD | libc::FAN_MARK_IGNORE_SURV | libc::FAN_MARK_EVICTABLE;
        // SAFETY: both fds are open; a NULL path marks `dir` itself. The result is checked.
        let rc = unsafe {
            libc::fanotify_mark(
                self.group.as_raw_fd(),
                flags,
                IGNORED,
                dir.as_raw_fd(),
                std::ptr::null(),
            )
        };
        if rc == 0 {
            self.placed = true;
            return Some(Instant::now());
        }
        self.marking = match Errno::last() {
            Errno::ENOSPC | Errno::ENOMEM => Marking::Full,
            _ => Marking::Off,
        };
        None
    }

    /// Forgets every outside directory and removes every ignore mark (the group's inode
    /// marks: the filesystem mark stays).
    fn forget_outside(&mut self) {
        self.outside.clear();
        if !self.placed {
            return;
        }
        // SAFETY: the group fd is open; FLUSH takes no path. The result is checked.
        let rc = unsafe {
            libc::fanotify_mark(
                self.group.as_raw_fd(),
                libc::FAN_MARK_FLUSH,
                0,
                libc::AT_FDCWD,
                std::ptr::null(),
            )
        };
        if rc == 0 {
            self.placed = false;
            if self.marking == Marking::Full {
                self.marking = Marking::On;
            }
        } else {
            // Marks may be left on directories now inside: no more, and verify everything.
            self.marking = Marking::Off;
            self.lost = true;
        }
    }

    /// The kernel dropped events (its queue overflowed): renames among them may have moved
    /// directories in or out, so nothing recorded is trusted any more. Every directory is
    /// resolved again when an event names it, and no ignore mark stays (one on a directory
    /// that came in would hide its changes for good; the engine re-reads the root meanwhile).
    pub(super) fn events_lost(&mut self) {
        let root = self.map.iter().find(|(_, p)| **p == self.root);
        let root = root.map(|(k, p)| (k.clone(), p.clone()));
        self.map.clear();
        self.map.extend(root);
        self.ancestors.clear();
        self.forget_outside();
    }

    /// A directory appeared at `path` (created, or moved in).
    pub(super) fn created(&mut self, key: &[u8], path: &Path) {
        if inside(&self.root, path) {
            self.map.insert(key.into(), path.to_path_buf());
        }
    }

    /// A directory was deleted: its handle will not come back.
    pub(super) fn deleted(&mut self, key: &[u8]) {
        self.map.remove(key);
        self.outside.remove(key);
    }

    /// Opens a directory by handle (read-only: an ignore mark needs a real fd), with its path
    /// if the path checks out (`/proc/self/fd` names the same inode).
    fn open_by_handle(&self, key: &[u8]) -> Option<(OwnedFd, Option<PathBuf>)> {
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
        let fd = open_handle(self.mount.as_fd(), key, flags).ok()?;
        let path = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .ok()
            .filter(|path| {
                // The link text is only a hint (a bind mount, a deleted dir): it must name
                // the same inode.
                let by_fd = nix::sys::stat::fstat(&fd);
                let by_path = nix::sys::stat::lstat(path);
                matches!((by_fd, by_path), (Ok(a), Ok(b)) if a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            });
        Some((fd, path))
    }

    /// A directory moved, its old and new places as resolved (`None`: not resolvable), and
    /// whether the new parent is known to be outside. Keeps the table and `outside` true.
    pub(super) fn dir_moved(&mut self, from: Option<&Path>, to: Option<&Path>, to_outside: bool) {
        let from_in = from.is_some_and(|f| inside(&self.root, f));
        let to_in = to.is_some_and(|t| inside(&self.root, t));
        // Known outside: the parent said so, or it resolved to a path outside.
        let to_out = to_outside || to.is_some_and(|t| !inside(&self.root, t));
        match (from, to) {
            (Some(f), Some(t)) if from_in && to_in => self.moved(f, t),
            (Some(f), _) if from_in => self.left(f, to_out),
            _ if !to_out => {
                // In from outside, or to a place not known: what was outside below it may
                // not be any more.
                self.forget_outside();
            }
            (Some(f), Some(t)) if next_name(f, &self.root).is_some() => {
                // An ancestor of the root moved (so did the root): its paths follow.
                self.moved(f, t);
            }
            _ => {} // outside to outside: nothing recorded changes
        }
    }

    /// A directory moved inside the root: every recorded path under `from` now lives under
    /// `to`. Byte prefixes, not parsed components: this runs over the whole table (a parse per
    /// entry cost 38.8 ms per rename with 95,000 directories in the table).
    fn moved(&mut self, from: &Path, to: &Path) {
        let (from, to) = (from.as_os_str().as_bytes(), to.as_os_str().as_bytes());
        for p in self.map.values_mut() {
            if under(p, from) {
                let b = p.as_os_str().as_bytes();
                let mut np = Vec::with_capacity(to.len() + b.len() - from.len());
                np.extend_from_slice(to);
                np.extend_from_slice(&b[from.len()..]);
                *p = PathBuf::from(OsStr::from_bytes(&np));
            }
        }
    }

    /// The directory at `from` left the root: the handles below it are outside now (if where
    /// it went is known to be outside), or forgotten, to be resolved again when named.
    fn left(&mut self, from: &Path, to_outside: bool) {
        let from = from.as_os_str().as_bytes();
        let mut gone = Vec::new();
        self.map.retain(|k, p| {
            let keep = !under(p, from);
            if !keep {
                gone.push(k.clone());
            }
            keep
        });
        if to_outside {
            // Marked when an event names them (opening each now would cost the move).
            for k in gone {
                self.remember_outside(k, None);
            }
        }
    }
}

/// If `dir` is a strict ancestor of `root`, the name of its child on the way to `root`.
fn next_name(dir: &Path, root: &Path) -> Option<Box<[u8]>> {
    match root.strip_prefix(dir).ok()?.components().next()? {
        Component::Normal(n) => Some(n.as_bytes().into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ancestor_names_its_child_on_the_way_to_the_root() {
        let root = Path::new("/a/b/c");
        assert_eq!(next_name(Path::new("/a"), root).as_deref(), Some(&b"b"[..]));
        assert_eq!(next_name(Path::new("/"), root).as_deref(), Some(&b"a"[..]));
        assert_eq!(
            next_name(Path::new("/a/b/c"), root),
            None,
            "the root itself"
        );
        assert_eq!(next_name(Path::new("/a/b/c/d"), root), None, "inside");
        assert_eq!(next_name(Path::new("/a/bb"), root), None, "a sibling");
    }

    /// A table for root `/r` whose keys are names (no kernel behind it: no mark is placed,
    /// so none is flushed).
    fn table() -> Handles {
        let fd = || OwnedFd::from(std::fs::File::open("/").expect("open /"));
        Handles::new(PathBuf::from("/r"), fd(), key("r"), fd())
    }

    fn key(k: &str) -> HandleKey {
        k.as_bytes().into()
    }

    #[test]
    fn moves_across_the_root_keep_the_outside_set_true() {
        let mut t = table();
        let p = Path::new;
        t.map.insert(key("a"), PathBuf::from("/r/a"));
        t.map.insert(key("ab"), PathBuf::from("/r/a/b"));
        t.remember_outside(key("o"), None);
        t.remember_outside(key("op"), None);

        // Outside to outside (its parent known outside, or resolved there): nothing changes.
        t.dir_moved(None, None, true);
        t.dir_moved(Some(p("/o/p")), Some(p("/o/q")), false);
        assert!(t.is_outside(b"o") && t.is_outside(b"op"));

        // Inside to inside: the paths follow.
        t.dir_moved(Some(p("/r/a")), Some(p("/r/c")), false);
        assert_eq!(t.resolve(b"ab"), Some(PathBuf::from("/r/c/b")));

        // Out to a known outside place: the subtree is outside now.
        t.dir_moved(Some(p("/r/c")), Some(p("/x/c")), false);
        assert!(t.is_outside(b"a") && t.is_outside(b"ab"));
        assert!(!t.map.contains_key(&key("ab")[..]));

        // In: nothing is known to be outside any more.
        t.dir_moved(None, Some(p("/r/c")), false);
        assert!(!t.is_outside(b"a") && !t.is_outside(b"o"));

        // Out to a place not known: forgotten (resolved again when named), not outside.
        t.map.insert(key("d"), PathBuf::from("/r/d"));
        t.dir_moved(Some(p("/r/d")), None, false);
        assert!(!t.map.contains_key(&key("d")[..]) && !t.is_outside(b"d"));

        // From outside to a place not known: it may have come in.
        t.remember_outside(key("o"), None);
        t.dir_moved(Some(p("/o")), None, false);
        assert!(!t.is_outside(b"o"));
    }

    #[test]
    fn an_event_in_an_ancestor_about_another_name_is_not_ours() {
        let mut t = table();
        t.ancestors.insert(key("top"), b"r".as_slice().into());
        assert!(t.other_child_of_ancestor(b"top", Some(b"syslog")));
        assert!(t.other_child_of_ancestor(b"top", Some(b".")));
        assert!(
            !t.other_child_of_ancestor(b"top", Some(b"r")),
            "the root itself"
        );
        assert!(
            !t.other_child_of_ancestor(b"r", Some(b"x")),
            "not an ancestor"
        );
        t.events_lost();
        assert!(!t.other_child_of_ancestor(b"top", Some(b"syslog")));
        assert_eq!(t.resolve(b"r"), Some(PathBuf::from("/r")), "the root stays");
    }

    #[test]
    fn under_is_by_whole_names() {
        assert!(under(Path::new("/r/a"), b"/r/a"));
        assert!(under(Path::new("/r/a/b"), b"/r/a"));
        assert!(!under(Path::new("/r/ab"), b"/r/a"));
        assert!(!under(Path::new("/r"), b"/r/a"));
    }
}
