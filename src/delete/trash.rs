//! The freedesktop.org trash (Trash specification 1.0): an entry goes to the trash of its own
//! filesystem, by one `rename(2)` (never a copy and a delete): `$XDG_DATA_HOME/Trash` when it
//! is on the filesystem of the home trash, else `$topdir/.Trash/$uid` (a shared, sticky
//! `.Trash` that is not a symlink) or `$topdir/.Trash-$uid` at the top of its filesystem.
//! Each trashed entry has its `info/NAME.trashinfo` (created first, `O_EXCL`, which reserves
//! the name) with its original path, percent-encoded, and the deletion date. `restore` puts
//! the last one back where it was, if that name is still free.

use std::ffi::{CStr, CString, OsStr};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, RenameFlags, renameat2};
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::{DeleteError, Target, locate, same_fs};
use crate::fs::{RootDir, sys};
use crate::tree::Kind;
use crate::trusted::{self, TrustError};

/// An entry in the trash, enough to put it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trashed {
    pub original: PathBuf,
    /// The trash directory (holding `files/` and `info/`), with no symlink in the path.
    pub trash: PathBuf,
    /// Its device and inode, checked when it is opened again to put the entry back.
    pub trash_id: (u64, u64),
    /// Its name in `files/` (`NAME.trashinfo` in `info/`).
    pub name: Vec<u8>,
    pub dev: u64,
    pub ino: u64,
    pub kind: Kind,
    pub disk: u64,
    pub items: u64,
}

impl Trashed {
    #[must_use]
    pub fn file(&self) -> PathBuf {
        self.trash.join("files").join(OsStr::from_bytes(&self.name))
    }

    #[must_use]
    pub fn info(&self) -> PathBuf {
        let mut n = self.name.clone();
        n.extend_from_slice(b".trashinfo");
        self.trash.join("info").join(OsStr::from_bytes(&n))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrashError {
    /// No trash can take it (why): the caller may offer to delete it instead.
    #[error("{}: no usable trash on its filesystem ({why})", super::show(.path))]
    NoTrash { path: PathBuf, why: String },
    #[error(transparent)]
    Delete(#[from] DeleteError),
}

/// Why no trash could take an entry, as `TrashError::NoTrash` says it.
#[derive(Debug, thiserror::Error)]
enum Unusable {
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error("{} belongs to uid {uid}, not to you (uid {euid})", super::show(.path))]
    Owner { path: PathBuf, uid: u32, euid: u32 },
    #[error("{} is not yours", super::show(.0))]
    NotYours(PathBuf),
    #[error("cannot create {}: {}", super::show(.path), .errno.desc())]
    Create { path: PathBuf, errno: Errno },
    #[error("{} is not a directory", super::show(.0))]
    NotADirectory(PathBuf),
    #[error("{}: {}", super::show(.path), .errno.desc())]
    Sys { path: PathBuf, errno: Errno },
    /// An `fstat` of a directory just opened failed.
    #[error("{}", .0.desc())]
    Stat(Errno),
    #[error("{}", .0)]
    Write(std::io::Error),
    #[error("{} is on another filesystem", super::show(.0))]
    OtherFilesystem(PathBuf),
    #[error("{} is not sticky", super::show(.0))]
    NotSticky(PathBuf),
    #[error(
        "{} was made by uid {uid}, neither root nor the owner of {}",
        super::show(.path),
        super::show(.top)
    )]
    SharedOwner {
        path: PathBuf,
        uid: u32,
        top: PathBuf,
    },
    #[error("{} moved", super::show(.0))]
    Moved(PathBuf),
    #[error("{} was replaced", super::show(.0))]
    Replaced(PathBuf),
    #[error("no free name in the trash")]
    NoFreeName,
    /// Every place tried, each with its reason.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    All(Vec<Unusable>),
}

impl Unusable {
    fn sys(path: &Path, errno: Errno) -> Unusable {
        Unusable::Sys {
            path: path.to_path_buf(),
            errno,
        }
    }

    /// The place is not there at all.
    fn missing(&self) -> bool {
        matches!(
            self,
            Unusable::Sys {
                errno: Errno::ENOENT,
                ..
            } | Unusable::Stat(Errno::ENOENT)
        )
    }
}

/// A trash directory chosen for an entry, open; `relative_to` is its filesystem's top directory
/// when the `.trashinfo` path is written relative to it (a per-filesystem trash).
struct TrashDir {
    fd: OwnedFd,
    /// Where it is, with no symlink in the path.
    base: PathBuf,
    relative_to: Option<PathBuf>,
}

fn uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Where the home trash may be, in order: `$XDG_DATA_HOME/Trash` (an absolute one), then
/// `$HOME/.local/share/Trash`, then the effective user's own home from the password database
/// (`sudo -E` keeps another user's `HOME`, whose trash is not root's to use).
fn home_trash_candidates() -> Vec<PathBuf> {
    let abs = |v: &str| {
        std::env::var_os(v)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let own = nix::unistd::User::from_uid(nix::unistd::Uid::effective())
        .ok()
        .flatten()
        .map(|u| u.dir)
        .filter(|d| d.is_absolute());
    [
        abs("XDG_DATA_HOME"),
        abs("HOME").map(|h| h.join(".local/share")),
        own.map(|h| h.join(".local/share")),
    ]
    .into_iter()
    .flatten()
    .map(|d| d.join("Trash"))
    .collect()
}

/// The home trash, if the entry is on its filesystem (device `dev`): the first candidate
/// whose existing part is reached through a trusted walk (`crate::trusted`: no directory or
/// symlink another user controls) and is the effective user's; created there (`0700`) if
/// missing. `Ok(None)`: the entry is on another filesystem, or no candidate is usable.
fn home_trash(dev: u64, refused: &mut Vec<Unusable>) -> Result<Option<TrashDir>, Unusable> {
    for cand in home_trash_candidates() {
        // Another user's place (`sudo -E` kept their HOME): the next candidate. One of ours
        // that cannot be used (a file where the directory should be): no home trash at all,
        // as the user named it, rather than another one they did not.
        let r = match trusted::resolve(&cand) {
            Ok(r) => r,
            Err(e @ TrustError::Untrusted(_)) => {
                refused.push(e.into());
                continue;
            }
            Err(e @ TrustError::Unusable(_)) => return Err(e.into()),
        };
        if r.stat.st_uid != uid() {
            refused.push(Unusable::Owner {
                path: r.existing.clone(),
                uid: r.stat.st_uid,
                euid: uid(),
            });
            continue;
        }
        // The data directory may not exist yet (a fresh account has no ~/.local/share): its
        // filesystem is that of its nearest existing part, where it would be created.
        if r.stat.st_dev != dev {
            return Ok(None);
        }
        let d = trusted::open_or_create(&cand)?;
        if d.stat.st_uid != uid() {
            return Err(Unusable::NotYours(d.path));
        }
        if d.stat.st_dev != dev {
            return Ok(None);
        }
        return Ok(Some(TrashDir {
            fd: d.fd,
            base: d.path,
            relative_to: None,
        }));
    }
    Ok(None)
}

/// The directory `name` in `parent` (made `0700` if missing): ours, a real directory (never a
/// symlink), on `dev`; opened by fd, so the directory checked is the one used.
fn own_dir_at(
    parent: BorrowedFd<'_>,
    name: &CStr,
    shown: &Path,
    dev: u64,
) -> Result<OwnedFd, Unusable> {
    match nix::sys::stat::mkdirat(
        parent,
        name,
        nix::sys::stat::Mode::from_bits_truncate(0o700),
    ) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(errno) => {
            return Err(Unusable::Create {
                path: shown.to_path_buf(),
                errno,
            });
        }
    }
    let fd = sys::open_dir_at(parent, name).map_err(|e| match e {
        Errno::ELOOP | Errno::ENOTDIR => Unusable::NotADirectory(shown.to_path_buf()),
        e => Unusable::sys(shown, e),
    })?;
    let st = nix::sys::stat::fstat(&fd).map_err(Unusable::Stat)?;
    if st.st_uid != uid() {
        return Err(Unusable::NotYours(shown.to_path_buf()));
    }
    if st.st_dev != dev {
        return Err(Unusable::OtherFilesystem(shown.to_path_buf()));
    }
    Ok(fd)
}

/// The top directory of the filesystem holding `path` (device `dev`).
fn top_dir(path: &Path, dev: u64) -> PathBuf {
    let mut top = path.to_path_buf();
    let mut cur = path.parent();
    while let Some(p) = cur {
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.dev() == dev => top = p.to_path_buf(),
            _ => break,
        }
        cur = p.parent();
    }
    top
}

/// The shared `$topdir/.Trash`, if the spec allows it: a real directory (not a symlink), with
/// the sticky bit, made by root or by the owner of the filesystem's top (its administrator);
/// one that any other user made is not used, since that user could read or remove our
/// entries in it.
fn shared_trash(top_fd: BorrowedFd<'_>, top: &Path, dev: u64) -> Result<OwnedFd, Unusable> {
    let shared = top.join(".Trash");
    let fd = sys::open_dir_at(top_fd, c".Trash").map_err(|e| Unusable::sys(&shared, e))?;
    let st = nix::sys::stat::fstat(&fd).map_err(Unusable::Stat)?;
    let top_owner = nix::sys::stat::fstat(top_fd).map_or(0, |t| t.st_uid);
    if st.st_mode & 0o1000 == 0 {
        return Err(Unusable::NotSticky(shared));
    }
    if st.st_uid != 0 && st.st_uid != top_owner {
        return Err(Unusable::SharedOwner {
            path: shared,
            uid: st.st_uid,
            top: top.to_path_buf(),
        });
    }
    if st.st_dev != dev {
        return Err(Unusable::OtherFilesystem(shared));
    }
    Ok(fd)
}

/// Chooses the trash for an entry at `path` on device `dev`.
fn trash_for(path: &Path, dev: u64) -> Result<TrashDir, Unusable> {
    let mut why = Vec::new();
    if let Some(home) = home_trash(dev, &mut why)? {
        return Ok(home);
    }
    let top = top_dir(path, dev);
    let top_fd = sys::open_root_nofollow(&top).map_err(|e| Unusable::sys(&top, e))?;
    if sys::stat_fd(top_fd.as_fd()).map_err(Unusable::Stat)?.dev != dev {
        return Err(Unusable::Moved(top));
    }
    let me = uid().to_string();
    let c_me = CString::new(me.clone()).expect("digits have no NUL");
    match shared_trash(top_fd.as_fd(), &top, dev) {
        Ok(shared) => {
            let base = top.join(".Trash").join(&me);
            match own_dir_at(shared.as_fd(), &c_me, &base, dev) {
                Ok(fd) => {
                    return Ok(TrashDir {
                        fd,
                        base,
                        relative_to: Some(top),
                    });
                }
                Err(e) => why.push(e),
            }
        }
        Err(e) if e.missing() => {}
        Err(e) => why.push(e),
    }
    let name = format!(".Trash-{me}");
    let base = top.join(&name);
    let c_name = CString::new(name).expect("digits have no NUL");
    match own_dir_at(top_fd.as_fd(), &c_name, &base, dev) {
        Ok(fd) => Ok(TrashDir {
            fd,
            base,
            relative_to: Some(top),
        }),
        Err(e) => {
            why.push(e);
            Err(Unusable::All(why))
        }
    }
}

/// The longest name a directory entry may have (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// A name for the trash's `files/` that leaves room for `.trashinfo` and a `.N` suffix within
/// `NAME_MAX`: a long name is cut (at a character boundary where it is UTF-8); its
/// `.trashinfo` keeps the original path, so nothing is lost.
fn trash_stem(name: &[u8]) -> Vec<u8> {
    let room = NAME_MAX - ".trashinfo".len() - ".9999".len();
    if name.len() <= room {
        return name.to_vec();
    }
    let mut cut = room;
    if let Ok(s) = std::str::from_utf8(name) {
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
    }
    name[..cut].to_vec()
}

/// Percent-encodes a path for `Path=` (RFC 2396 escaping; `/` kept).
fn encode(path: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for &b in path {
        if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Decodes a `Path=` value.
#[must_use]
pub fn decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The local time as `YYYY-MM-DDThh:mm:ss`, as the spec asks for `DeletionDate`.
fn local_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let Some(tm) = crate::format::local_tm(i64::try_from(now).unwrap_or(i64::MAX)) else {
        return "1970-01-01T00:00:00".into();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// The trash directory of an earlier move, opened again with no symlink anywhere in its path
/// and checked to be the same directory (device and inode).
fn reopen_trash(t: &Trashed) -> Result<OwnedFd, Unusable> {
    let fd = sys::open_root_nofollow(&t.trash).map_err(|e| Unusable::sys(&t.trash, e))?;
    let st = sys::stat_fd(fd.as_fd()).map_err(Unusable::Stat)?;
    if (st.dev, st.ino) != t.trash_id {
        return Err(Unusable::Replaced(t.trash.clone()));
    }
    Ok(fd)
}

/// Moves `target` to the trash of its filesystem. Refused as a delete is (outside the root,
/// the root, changed since shown, a mount point); `NoTrash` when no trash there can take it.
pub fn trash(root: &RootDir, target: &Target) -> Result<Trashed, TrashError> {
    let at = locate(root, &target.path)?;
    let st = at.stat;
    if !target.matches(&st) {
        return Err(DeleteError::Changed(target.path.clone()).into());
    }
    if st.kind() == Kind::Dir && !same_fs(root, &st) {
        return Err(DeleteError::OtherFilesystem(target.path.clone()).into());
    }
    let no_trash = |why: Unusable| TrashError::NoTrash {
        path: target.path.clone(),
        why: why.to_string(),
    };
    let dir = trash_for(&target.path, st.dev).map_err(no_trash)?;
    let base = dir.base.clone();
    let files =
        own_dir_at(dir.fd.as_fd(), c"files", &base.join("files"), st.dev).map_err(no_trash)?;
    let info = own_dir_at(dir.fd.as_fd(), c"info", &base.join("info"), st.dev).map_err(no_trash)?;
    let trash_st = sys::stat_fd(dir.fd.as_fd()).map_err(|e| no_trash(Unusable::Stat(e)))?;
    let recorded = match &dir.relative_to {
        Some(top) => target
            .path
            .strip_prefix(top)
            .map_or_else(|_| target.path.clone(), Path::to_path_buf),
        None => target.path.clone(),
    };
    let content = format!(
        "[Trash Info]\nPath={}\nDeletionDate={}\n",
        encode(recorded.as_os_str().as_bytes()),
        local_now()
    );
    let stem = trash_stem(at.name.as_bytes());
    let io = |errno| {
        TrashError::Delete(DeleteError::Io {
            path: target.path.clone(),
            errno,
        })
    };
    for k in 1u32..10_000 {
        let mut name = stem.clone();
        if k > 1 {
            name.extend_from_slice(format!(".{k}").as_bytes());
        }
        let mut info_name = name.clone();
        info_name.extend_from_slice(b".trashinfo");
        let info_path = base.join("info").join(OsStr::from_bytes(&info_name));
        let c_name = CString::new(name.clone()).map_err(|_| io(Errno::EINVAL))?;
        let c_info = CString::new(info_name).map_err(|_| io(Errno::EINVAL))?;
        // The info file first, exclusively: it reserves the name among trashers.
        let file = nix::fcntl::openat(
            info.as_fd(),
            c_info.as_c_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        );
        let mut file = match file {
            Ok(fd) => std::fs::File::from(fd),
            Err(Errno::EEXIST) => continue,
            Err(e) => {
                return Err(no_trash(Unusable::sys(&info_path, e)));
            }
        };
        let written = file
            .write_all(content.as_bytes())
            .and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = unlinkat(info.as_fd(), c_info.as_c_str(), UnlinkatFlags::NoRemoveDir);
            return Err(no_trash(Unusable::Write(e)));
        }
        match renameat2(
            at.parent.as_fd(),
            at.name.as_c_str(),
            files.as_fd(),
            c_name.as_c_str(),
            RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => {
                return Ok(Trashed {
                    original: target.path.clone(),
                    trash: base,
                    trash_id: (trash_st.dev, trash_st.ino),
                    name,
                    dev: st.dev,
                    ino: st.ino,
                    kind: st.kind(),
                    disk: target.disk,
                    items: target.items,
                });
            }
            Err(e) => {
                let _ = unlinkat(info.as_fd(), c_info.as_c_str(), UnlinkatFlags::NoRemoveDir);
                match e {
                    Errno::EEXIST => {}
                    Errno::EXDEV => {
                        return Err(no_trash(Unusable::OtherFilesystem(base)));
                    }
                    other => return Err(io(other)),
                }
            }
        }
    }
    Err(no_trash(Unusable::NoFreeName))
}

/// Puts a trashed entry back at its original path, if that name is free (never replacing
/// anything), and removes its `.trashinfo`.
pub fn restore(root: &RootDir, t: &Trashed) -> Result<(), TrashError> {
    let io = |errno| {
        TrashError::Delete(DeleteError::Io {
            path: t.original.clone(),
            errno,
        })
    };
    let no_trash = |why: Unusable| TrashError::NoTrash {
        path: t.file(),
        why: why.to_string(),
    };
    let trash = reopen_trash(t).map_err(no_trash)?;
    let files = sys::open_dir_at(trash.as_fd(), c"files")
        .map_err(|e| no_trash(Unusable::sys(&t.trash, e)))?;
    let name = CString::new(t.name.clone()).map_err(|_| io(Errno::EINVAL))?;
    let now = sys::stat_at(files.as_fd(), &name).map_err(|errno| DeleteError::Io {
        path: t.file(),
        errno,
    })?;
    if (now.dev, now.ino) != (t.dev, t.ino) {
        return Err(DeleteError::Changed(t.file()).into());
    }
    let at = match locate(root, &t.original) {
        Ok(_) => return Err(io(Errno::EEXIST)),
        Err(DeleteError::Io {
            errno: Errno::ENOENT,
            ..
        }) => {
            // The parent must be there; the name must not.
            let parent = t.original.parent().unwrap_or(&t.original);
            let fd = if parent == root.path {
                sys::dup_dir(root.fd()).map_err(io)?
            } else {
                let p = locate(root, parent)?;
                sys::open_dir_at(p.parent.as_fd(), &p.name).map_err(io)?
            };
            let leaf = t
                .original
                .file_name()
                .map(|n| CString::new(n.as_bytes()))
                .and_then(Result::ok)
                .ok_or(io(Errno::EINVAL))?;
            (fd, leaf)
        }
        Err(e) => return Err(e.into()),
    };
    renameat2(
        files.as_fd(),
        name.as_c_str(),
        at.0.as_fd(),
        at.1.as_c_str(),
        RenameFlags::RENAME_NOREPLACE,
    )
    .map_err(io)?;
    let mut info_name = t.name.clone();
    info_name.extend_from_slice(b".trashinfo");
    if let (Ok(info), Ok(c_info)) = (
        sys::open_dir_at(trash.as_fd(), c"info"),
        CString::new(info_name),
    ) {
        let _ = unlinkat(info.as_fd(), c_info.as_c_str(), UnlinkatFlags::NoRemoveDir);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trashinfo_paths_are_percent_encoded_and_decode_back() {
        let raw = b"/tmp/a b/\xff%x/caf\xc3\xa9";
        let enc = encode(raw);
        assert_eq!(enc, "/tmp/a%20b/%FF%25x/caf%C3%A9");
        assert_eq!(decode(&enc), raw.to_vec());
    }
}
