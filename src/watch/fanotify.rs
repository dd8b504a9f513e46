//! The fanotify backend over `libc` (nix drops the info records it needs): one filesystem mark
//! with `FAN_REPORT_DFID_NAME_TARGET` and the kernel's bounded queue (an overflow becomes a
//! re-verification), so create, delete, rename (one event, both names), modify, close-write and
//! attrib arrive for every directory of the filesystem, new ones included: no per-directory
//! watches and no new-directory race.
//!
//! Events name a directory by file handle, resolved through `handles::Handles` (a table of the
//! directories under the root, and the directories seen to be outside it, which also get a
//! kernel ignore mark: somebody else's writes elsewhere on the filesystem cost nothing or a
//! hash lookup). Our own pid's events are
//! dropped; events outside the root are dropped by a component check. The reader waits a few
//! milliseconds after emptying the queue, so a steady trickle is read in batches. The unsafe
//! code of the watch engine is here, each block with its reason.

mod handles;

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use nix::errno::Errno;

use super::gate::Gate;
use super::{Backend, FsEvent, FsEventKind, Sink, WatchError, inside};
pub use handles::open_handle;
use handles::{Handles, handle_of};

const MASK: u64 = libc::FAN_CREATE
    | libc::FAN_DELETE
    | libc::FAN_RENAME
    | libc::FAN_MODIFY
    | libc::FAN_CLOSE_WRITE
    | libc::FAN_ATTRIB
    | libc::FAN_ONDIR;

pub struct FanotifyWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for FanotifyWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn os_error(e: Errno) -> String {
    format!("{} ({})", e.desc(), e as i32)
}

impl FanotifyWatch {
    /// Marks the root's filesystem and starts the reader. Fails with the kernel's reason
    /// (EPERM without CAP_SYS_ADMIN, EINVAL on an old kernel, ENODEV/EOPNOTSUPP/EXDEV where the
    /// filesystem cannot report handles, EMFILE).
    pub fn start(root: &Path, tx: Sink) -> Result<FanotifyWatch, WatchError> {
        let fail = |why: String| WatchError::Fanotify {
            path: root.to_path_buf(),
            why,
        };
        // The kernel's queue stays bounded (fs.fanotify.max_queued_events): a stopped reader
        // must not grow kernel memory without end; an overflow becomes a re-verification.
        let fan = init_and_mark(
            root,
            libc::FAN_REPORT_DFID_NAME_TARGET,
            libc::FAN_MARK_FILESYSTEM,
            MASK,
        )?;
        let mount = crate::fs::sys::open_root_nofollow(root)
            .map_err(|e| fail(format!("open: {}", os_error(e))))?;
        let root_handle = handle_of(&mount, c"")
            .map_err(|e| fail(format!("name_to_handle_at: {}", os_error(e))))?;
        let group = fan.try_clone().map_err(|e| fail(format!("dup: {e}")))?;
        let mut table = Handles::new(root.to_path_buf(), mount, root_handle, group);
        let stop = Arc::new(AtomicBool::new(false));
        let gate = tx.gates().add(Some(fan.as_fd()));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("dtui-fanotify".into())
                .spawn(move || {
                    // The mark is in place: nothing is missed while the table is filled.
                    table.fill();
                    read_loop(&fan, &mut table, &tx, &gate, &stop);
                })
                .map_err(|e| fail(e.to_string()))?
        };
        Ok(FanotifyWatch {
            stop,
            thread: Some(thread),
        })
    }
}

/// A notification group (`init_flags` added to the non-blocking, close-on-exec basics) with one
/// mark of kind `mark_kind` (filesystem or mount) on `root`, or the kernel's reason why not.
fn init_and_mark(
    root: &Path,
    init_flags: u32,
    mark_kind: u32,
    mask: u64,
) -> Result<OwnedFd, WatchError> {
    let fail = |what: &str, e: Errno| WatchError::Fanotify {
        path: root.to_path_buf(),
        why: format!("{what}: {}", os_error(e)),
    };
    let flags = libc::FAN_CLASS_NOTIF | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK | init_flags;
    let event_flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_LARGEFILE) as u32;
    // SAFETY: plain syscall with constant arguments; the result is checked.
    let fd = unsafe { libc::fanotify_init(flags, event_flags) };
    if fd < 0 {
        return Err(fail("fanotify_init", Errno::last()));
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let fan = unsafe { OwnedFd::from_raw_fd(fd) };
    let c_root =
        CString::new(root.as_os_str().as_bytes()).map_err(|_| fail("path", Errno::EINVAL))?;
    // SAFETY: `c_root` is NUL-terminated and outlives the call; the result is checked.
    let rc = unsafe {
        libc::fanotify_mark(
            fan.as_raw_fd(),
            libc::FAN_MARK_ADD | mark_kind,
            mask,
            libc::AT_FDCWD,
            c_root.as_ptr(),
        )
    };
    if rc != 0 {
        let what = if mark_kind == libc::FAN_MARK_FILESYSTEM {
            "fanotify_mark(FAN_MARK_FILESYSTEM)"
        } else {
            "fanotify_mark(FAN_MARK_MOUNT)"
        };
        return Err(fail(what, Errno::last()));
    }
    Ok(fan)
}

/// One parsed info record.
#[derive(Clone, Copy)]
struct Record<'a> {
    kind: u8,
    handle: &'a [u8],
    name: Option<&'a [u8]>,
}

/// The info records of one event (at most three are asked for: the old and new directory
/// with names and the child's handle), on the stack.
struct Records<'a> {
    list: [Record<'a>; 4],
    len: usize,
}

impl<'a> Records<'a> {
    /// The record of this type, if any (their order is not guaranteed).
    fn find(&self, kind: u8) -> Option<&Record<'a>> {
        self.list[..self.len].iter().find(|r| r.kind == kind)
    }
}

/// The info records of one event, by type and length.
fn records(mut rest: &[u8]) -> Records<'_> {
    let none = Record {
        kind: 0,
        handle: &[],
        name: None,
    };
    let mut out = Records {
        list: [none; 4],
        len: 0,
    };
    while rest.len() >= 4 && out.len < out.list.len() {
        let kind = rest[0];
        let len = u16::from_ne_bytes([rest[2], rest[3]]) as usize;
        if len < 4 || len > rest.len() {
            break;
        }
        let body = &rest[4..len];
        rest = &rest[len..];
        // fsid (8 bytes), then file_handle: handle_bytes u32, handle_type i32, bytes.
        if body.len() < 16 {
            continue;
        }
        let hb = u32::from_ne_bytes([body[8], body[9], body[10], body[11]]) as usize;
        let end = 16 + hb;
        if end > body.len() {
            continue;
        }
        let handle = &body[12..end];
        let name = matches!(
            kind,
            libc::FAN_EVENT_INFO_TYPE_DFID_NAME
                | libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME
                | libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME
        )
        .then(|| {
            let raw = &body[end..];
            &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())]
        });
        out.list[out.len] = Record { kind, handle, name };
        out.len += 1;
    }
    out
}

/// The fixed part of an event (`fanotify_event_metadata`), its fd owned (closed on drop).
struct Meta {
    version: u8,
    records_at: usize,
    mask: u64,
    fd: Option<OwnedFd>,
    pid: i32,
}

/// After a read that emptied the kernel's queue, wait this long before the next: a steady
/// trickle (another process writing elsewhere on the filesystem) is then read in batches, not
/// with a wake-up, a poll and a read per event. Events wait at most this much longer, against
/// the engine's 75 ms quiet window.
const READ_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// Polls the group until `stop`, reads what is there and hands each event to `f` with its
/// bytes (metadata and info records).
fn read_events(
    fan: &OwnedFd,
    stop: &AtomicBool,
    gate: &Gate,
    buf_len: usize,
    mut f: impl FnMut(Meta, &[u8]),
) {
    let mut buf = vec![0u8; buf_len];
    while !stop.load(Ordering::SeqCst) {
        let mut pfd = libc::pollfd {
            fd: fan.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        if unsafe { libc::poll(&raw mut pfd, 1, 100) } <= 0 {
            continue;
        }
        // Counted in before the read, out once what it read is handed over (`Gate`).
        let round = gate.round();
        // SAFETY: `buf` is writable for its whole length.
        let n = unsafe { libc::read(fan.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = Errno::last();
            if e != Errno::EAGAIN && e != Errno::EINTR {
                // The kernel dropped an event it could not deliver (EMFILE in fd mode, say):
                // report it as lost, never silently.
                f(overflow_meta(), &[]);
            }
            continue;
        }
        if n == 0 {
            continue;
        }
        let data = &buf[..n as usize];
        let mut off = 0;
        // fanotify_event_metadata: event_len u32, vers u8, reserved u8, metadata_len u16,
        // mask u64, fd i32, pid i32.
        while off + 24 <= data.len() {
            let ev = &data[off..];
            let event_len = u32::from_ne_bytes([ev[0], ev[1], ev[2], ev[3]]) as usize;
            if event_len < 24 || off + event_len > data.len() {
                break;
            }
            off += event_len;
            let ev = &ev[..event_len];
            let fd = i32::from_ne_bytes(ev[16..20].try_into().expect("4 bytes"));
            let meta = Meta {
                version: ev[4],
                records_at: (u16::from_ne_bytes([ev[6], ev[7]]) as usize).min(event_len),
                mask: u64::from_ne_bytes(ev[8..16].try_into().expect("8 bytes")),
                // SAFETY: the kernel opened this descriptor for us; we own and close it.
                fd: (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) }),
                pid: i32::from_ne_bytes(ev[20..24].try_into().expect("4 bytes")),
            };
            f(meta, ev);
        }
        drop(round);
        if (n as usize) < buf.len() / 2 {
            std::thread::sleep(READ_PAUSE);
        }
    }
}

/// A synthetic overflow event (for read errors).
fn overflow_meta() -> Meta {
    Meta {
        version: libc::FANOTIFY_METADATA_VERSION,
        records_at: 0,
        mask: libc::FAN_Q_OVERFLOW,
        fd: None,
        pid: 0,
    }
}

fn read_loop(fan: &OwnedFd, table: &mut Handles, tx: &Sink, gate: &Gate, stop: &AtomicBool) {
    let me = std::process::id() as i32;
    let root = table.root.clone();
    let send = |kind: FsEventKind, path: &Path, is_dir: bool| {
        if inside(&root, path) {
            tx.send(FsEvent {
                kind,
                path: path.as_os_str().as_bytes().to_vec(),
                is_dir: Some(is_dir),
                backend: Backend::Fanotify,
            });
        }
    };
    read_events(fan, stop, gate, 256 * 1024, |meta, ev| {
        if meta.version != libc::FANOTIFY_METADATA_VERSION || meta.mask & libc::FAN_Q_OVERFLOW != 0
        {
            table.events_lost();
            send(FsEventKind::Overflow, &root, true);
        } else if meta.pid != me {
            // (Our own pid's events are our own writes: the cache, when it lives here.)
            handle_event(meta.mask, &records(&ev[meta.records_at..]), table, &send);
            if std::mem::take(&mut table.lost) {
                send(FsEventKind::Overflow, &root, true);
            }
        }
    });
}

fn handle_event(
    mask: u64,
    recs: &Records<'_>,
    table: &mut Handles,
    send: &impl Fn(FsEventKind, &Path, bool),
) {
    use libc::{
        FAN_EVENT_INFO_TYPE_DFID_NAME as DFID_NAME, FAN_EVENT_INFO_TYPE_FID as FID,
        FAN_EVENT_INFO_TYPE_NEW_DFID_NAME as NEW_DFID_NAME,
        FAN_EVENT_INFO_TYPE_OLD_DFID_NAME as OLD_DFID_NAME,
    };
    let is_dir = mask & libc::FAN_ONDIR != 0;
    let path_of = |table: &mut Handles, r: &Record<'_>| -> Option<PathBuf> {
        let dir = table.resolve(r.handle)?;
        match r.name {
            Some(n) if n == b"." || n.is_empty() => Some(dir),
            Some(n) if crate::path::is_plain_name(n) => Some(dir.join(OsStr::from_bytes(n))),
            Some(_) => None,
            None => Some(dir),
        }
    };
    let child_fid = recs.find(FID);
    if mask & libc::FAN_RENAME != 0 {
        let (old, new) = (recs.find(OLD_DFID_NAME), recs.find(NEW_DFID_NAME));
        let old_out = old.is_some_and(|r| table.is_outside(r.handle));
        let new_out = new.is_some_and(|r| table.is_outside(r.handle));
        if old_out && new_out {
            return; // moved from outside to outside: nothing of ours
        }
        let from = old.filter(|_| !old_out).and_then(|r| path_of(table, r));
        let to = new.filter(|_| !new_out).and_then(|r| path_of(table, r));
        let root = table.root.clone();
        if is_dir {
            table.dir_moved(from.as_deref(), to.as_deref(), new_out);
            if let (Some(fid), Some(to)) = (child_fid, &to)
                && inside(&root, to)
            {
                table.created(fid.handle, to);
            }
        }
        // Out of the root: with the moved inode's handle, when the kernel gave it.
        let moved_out = || {
            child_fid.map_or(FsEventKind::Removed, |fid| FsEventKind::MovedOut {
                handle: fid.handle.into(),
            })
        };
        match (from, to) {
            (Some(from), Some(to)) => match (inside(&root, &from), inside(&root, &to)) {
                (true, true) => send(
                    FsEventKind::Renamed {
                        to: to.as_os_str().as_bytes().to_vec(),
                    },
                    &from,
                    is_dir,
                ),
                (true, false) => send(moved_out(), &from, is_dir),
                (false, true) => send(FsEventKind::Created, &to, is_dir),
                (false, false) => {}
            },
            (Some(from), None) => send(moved_out(), &from, is_dir),
            (None, Some(to)) => send(FsEventKind::Created, &to, is_dir),
            (None, None) => {}
        }
        return;
    }
    let Some(rec) = recs.find(DFID_NAME) else {
        return;
    };
    if table.outside_event(rec.handle) {
        // Somebody else's directory (an event queued before its ignore mark, or a
        // subdirectory's deletion, which bounds the set).
        if is_dir
            && mask & libc::FAN_DELETE != 0
            && let Some(fid) = child_fid
        {
            table.deleted(fid.handle);
        }
        return;
    }
    if table.other_child_of_ancestor(rec.handle, rec.name) {
        return;
    }
    let Some(path) = path_of(table, rec) else {
        return; // its directory is gone (and its parent reports that) or lives elsewhere
    };
    if mask & libc::FAN_CREATE != 0 {
        if is_dir && let Some(fid) = child_fid {
            table.created(fid.handle, &path);
        }
        send(FsEventKind::Created, &path, is_dir);
    }
    if mask & libc::FAN_DELETE != 0 {
        if is_dir && let Some(fid) = child_fid {
            table.deleted(fid.handle);
        }
        send(FsEventKind::Removed, &path, is_dir);
    }
    if mask & (libc::FAN_MODIFY | libc::FAN_CLOSE_WRITE | libc::FAN_ATTRIB) != 0 {
        send(FsEventKind::Modified, &path, is_dir);
    }
}

/// Tier (b), for filesystems that refuse a filesystem mark but accept a mount mark: the mount
/// mark reports writes (modify, close-write) and queue overflow; create, delete and rename
/// come from a directory watch (inotify) merged into the same stream.
pub struct FanotifyMountWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    dirs: super::DirWatch,
}

impl Drop for FanotifyMountWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl FanotifyMountWatch {
    pub fn start(root: &Path, tx: Sink) -> Result<FanotifyMountWatch, WatchError> {
        let fail = |why: String| WatchError::Fanotify {
            path: root.to_path_buf(),
            why,
        };
        let fan = init_and_mark(
            root,
            0,
            libc::FAN_MARK_MOUNT,
            libc::FAN_MODIFY | libc::FAN_CLOSE_WRITE,
        )?;
        let dirs = super::DirWatch::start(root, tx.clone())?;
        let stop = Arc::new(AtomicBool::new(false));
        let gate = tx.gates().add(Some(fan.as_fd()));
        let thread = {
            let stop = Arc::clone(&stop);
            let root = root.to_path_buf();
            std::thread::Builder::new()
                .name("dtui-fanotify-mount".into())
                .spawn(move || mount_read_loop(&fan, &root, &tx, &gate, &stop))
                .map_err(|e| fail(e.to_string()))?
        };
        Ok(FanotifyMountWatch {
            stop,
            thread: Some(thread),
            dirs,
        })
    }

    /// Its watches per directory follow mounts (the mount mark sees only the root's mount;
    /// writes in a filesystem mounted inside come through those watches).
    pub(crate) fn rewatcher(&self) -> super::Rewatch {
        self.dirs.rewatcher()
    }
}

/// Reads fd-mode events: each names its file by an open fd, whose path we read and close.
fn mount_read_loop(fan: &OwnedFd, root: &Path, tx: &Sink, gate: &Gate, stop: &AtomicBool) {
    let me = std::process::id() as i32;
    read_events(fan, stop, gate, 64 * 1024, |meta, _| {
        if meta.mask & libc::FAN_Q_OVERFLOW != 0 {
            tx.send(FsEvent {
                kind: FsEventKind::Overflow,
                path: root.as_os_str().as_bytes().to_vec(),
                is_dir: Some(true),
                backend: Backend::Fanotify,
            });
            return;
        }
        let Some(file) = meta.fd else { return };
        if meta.pid == me {
            return;
        }
        let Ok(path) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) else {
            return;
        };
        if inside(root, &path) {
            tx.send(FsEvent {
                kind: FsEventKind::Modified,
                path: path.as_os_str().as_bytes().to_vec(),
                is_dir: Some(false),
                backend: Backend::Fanotify,
            });
        }
    });
}
