//! Following the mounts inside the watched root, for every backend: a thread (`dtui-mounts`)
//! waits on `/proc/self/mountinfo`, which the kernel wakes with `POLLPRI` (and `POLLERR`) at
//! every change of this mount namespace's table, so a mount or an unmount is seen at once, not
//! at the next tick of a timer, and nothing is read while the table does not change.
//!
//! At each change the mounts strictly inside the root are compared with the last set, by
//! (mount id, mount point): a mount point that gained or lost a mount (or whose mount was
//! replaced) is handed to the backend first, which watches what is there now (`Rewatch`: the
//! directories of the new filesystem, or those that the unmount uncovered), and only then
//! reported as `Modified`: the engine stats it in its parent, finds another device (or
//! another inode) than its node has, and replaces the node with its whole subtree, read
//! again. Watch first, then read: a change made in between is in what is read.
//!
//! The table is opened, and the mounts inside the root read, before the backend places its
//! watches: a change from then on wakes the thread (the kernel compares the table's event
//! count with the one it had when the file was opened or last polled).

use std::fs::File;
use std::io::{Read as _, Seek as _};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::{Backend, FsEvent, FsEventKind, Sink};

/// One mount inside the root: its id, its mount point, and the unique id of the mount seen
/// at that point (`STATX_MNT_ID_UNIQUE`, Linux 6.8; 0 before). mountinfo's ids are reused:
/// `umount m && mount -t tmpfs none m` can give the new mount the same id, the same
/// anonymous device number and the same root inode as the old one, and only the unique id
/// tells them apart.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Mount {
    pub id: u64,
    pub point: PathBuf,
    pub unique: u64,
}

/// The open mount table and the mounts inside `root` it held when last read.
pub(crate) struct Table {
    file: File,
    root: PathBuf,
    pub mounts: Vec<Mount>,
}

impl Table {
    /// Opens `/proc/self/mountinfo` and reads the mounts inside `root` (none if it cannot be
    /// opened: mounts are then not followed, and the caller says so).
    pub(crate) fn open(root: &Path) -> std::io::Result<Table> {
        let mut t = Table {
            file: File::open("/proc/self/mountinfo")?,
            root: root.to_path_buf(),
            mounts: Vec::new(),
        };
        t.mounts = t.read()?;
        Ok(t)
    }

    /// The mounts strictly inside the root now, sorted by mount point (outer ones first).
    fn read(&mut self) -> std::io::Result<Vec<Mount>> {
        self.file.rewind()?;
        let mut text = Vec::new();
        self.file.read_to_end(&mut text)?;
        Ok(mounts_inside(&self.root, &text))
    }
}

/// The mounts strictly inside `root` in mountinfo's text (`id parent major:minor root point
/// ...`, the point with `\040`-style escapes), sorted by mount point.
fn mounts_inside(root: &Path, text: &[u8]) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let mut fields = line.split(|&b| b == b' ');
        let Some(id) = fields
            .next()
            .and_then(|f| std::str::from_utf8(f).ok())
            .and_then(|f| f.parse().ok())
        else {
            continue;
        };
        let Some(point) = fields.nth(3) else {
            continue;
        };
        let point = PathBuf::from(std::ffi::OsString::from_vec(unescape(point)));
        if crate::path::is_strictly_within(root, &point) {
            let unique = unique_mount_id(&point);
            out.push(Mount { id, point, unique });
        }
    }
    out.sort();
    out.dedup();
    out.sort_by(|a, b| a.point.cmp(&b.point));
    out
}

/// The unique id of the mount seen at `point` (0 where the kernel has none, or `point` is
/// gone): one `statx` per mount inside the root at each change of the table.
fn unique_mount_id(point: &Path) -> u64 {
    let Ok(c) = std::ffi::CString::new(point.as_os_str().as_bytes()) else {
        return 0;
    };
    // SAFETY: an all-zero `statx` is a valid value of this plain C struct.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a writable `statx` that outlives the call.
    let r = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT,
            libc::STATX_MNT_ID_UNIQUE,
            &raw mut st,
        )
    };
    if r == 0 && st.stx_mask & libc::STATX_MNT_ID_UNIQUE != 0 {
        st.stx_mnt_id
    } else {
        0
    }
}

/// mountinfo's octal escapes (`\040` for a space, `\012` for a newline...) decoded.
fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && i + 3 < s.len()
            && s[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u32::from(s[i + 1] - b'0') * 64
                + u32::from(s[i + 2] - b'0') * 8
                + u32::from(s[i + 3] - b'0');
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// The mount points whose mounts changed between two reads (sorted, each once).
fn changed(old: &[Mount], new: &[Mount]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = old
        .iter()
        .filter(|m| !new.contains(m))
        .chain(new.iter().filter(|m| !old.contains(m)))
        .map(|m| m.point.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What a backend does when the filesystem seen at these mount points changed, before the
/// engine hears of them: watch what is there now. Also given the mounts inside the root now.
pub(crate) type OnChange = Box<dyn FnMut(&[PathBuf], &[Mount]) + Send>;

/// The running thread; dropping it stops the thread.
pub(crate) struct Follower {
    stop: Option<OwnedFd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Follower {
    /// Follows `table` from its last read on: each change goes to `on_change`, then to `tx` as
    /// `Reread` of each mount point (said to come from `backend`).
    pub(crate) fn start(
        mut table: Table,
        tx: Sink,
        backend: Backend,
        mut on_change: OnChange,
    ) -> std::io::Result<Follower> {
        let (stop_rx, stop_tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let thread = std::thread::Builder::new()
            .name("dtui-mounts".into())
            .spawn(move || {
                while wait(&table.file, &stop_rx) {
                    let Ok(now) = table.read() else {
                        return;
                    };
                    let points = changed(&table.mounts, &now);
                    table.mounts = now;
                    if points.is_empty() {
                        continue; // a mount elsewhere
                    }
                    on_change(&points, &table.mounts);
                    for p in points {
                        tx.send(FsEvent {
                            kind: FsEventKind::Reread,
                            path: p.as_os_str().as_bytes().to_vec(),
                            is_dir: Some(true),
                            backend,
                        });
                    }
                }
            })?;
        Ok(Follower {
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

/// Waits until the mount table changes (true) or `stop` hangs up (false).
fn wait(table: &File, stop: &OwnedFd) -> bool {
    loop {
        let mut fds = [
            PollFd::new(table.as_fd(), PollFlags::POLLPRI),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(_) => return false,
        }
        if fds[1].any().unwrap_or(true) {
            return false;
        }
        let woke = fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLPRI | PollFlags::POLLERR));
        if woke {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: u64, p: &str) -> Mount {
        Mount {
            id,
            point: PathBuf::from(p),
            unique: 0,
        }
    }

    #[test]
    fn only_mounts_strictly_inside_the_root_with_escapes_decoded() {
        let text = b"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
            30 22 0:40 / /w rw - tmpfs none rw\n\
            31 30 0:41 / /w/a\\040b rw - tmpfs none rw\n\
            32 31 0:42 / /w/a\\040b/c rw - tmpfs none rw\n\
            33 22 0:43 / /wx rw - tmpfs none rw\n";
        assert_eq!(
            mounts_inside(Path::new("/w"), text),
            vec![m(31, "/w/a b"), m(32, "/w/a b/c")]
        );
    }

    #[test]
    fn a_mount_replaced_at_the_same_place_is_a_change() {
        let old = vec![m(31, "/w/a"), m(32, "/w/b")];
        let new = vec![m(31, "/w/a"), m(40, "/w/b"), m(41, "/w/c")];
        assert_eq!(
            changed(&old, &new),
            vec![PathBuf::from("/w/b"), PathBuf::from("/w/c")]
        );
        assert!(changed(&new, &new).is_empty());
        let mut again = new.clone();
        again[0].unique = 7;
        assert_eq!(changed(&new, &again), vec![PathBuf::from("/w/a")]);
    }
}
