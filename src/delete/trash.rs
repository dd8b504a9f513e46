//! The freedesktop.org trash (Trash specification 1.0): an entry goes to the trash of its own
//! filesystem, by one `rename(2)` (never a copy and a delete): `$XDG_DATA_HOME/Trash` when it
//! is on the filesystem of the home trash, else `$topdir/.Trash/$uid` (a shared, sticky
//! `.Trash` that is not a symlink) or `$topdir/.Trash-$uid` at the top of its filesystem.
//! Each trashed entry has its `info/NAME.trashinfo` (created first, `O_EXCL`, which reserves
//! the name) with its original path, percent-encoded, and the deletion date. `restore` puts
//! the last one back where it was, if that name is still free.

use std::ffi::{CString, OsStr};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{RenameFlags, renameat2};
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::{DeleteError, Target, locate, same_fs};
use crate::scan::{RootDir, sys};
use crate::tree::Kind;

/// An entry in the trash, enough to put it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trashed {
    pub original: PathBuf,
    /// The trash directory (holding `files/` and `info/`), canonical.
    pub trash: PathBuf,
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

/// A trash directory chosen for an entry; `relative_to` is its filesystem's top directory
/// when the `.trashinfo` path is written relative to it (a per-filesystem trash).
struct TrashDir {
    base: PathBuf,
    relative_to: Option<PathBuf>,
}

fn uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// `$XDG_DATA_HOME/Trash` (an absolute `XDG_DATA_HOME`), else `$HOME/.local/share/Trash`.
fn home_trash() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".local/share"))
        })?;
    Some(data.join("Trash"))
}

/// A directory we own (created 0700 if missing), not a symlink, on `dev`.
fn own_dir(path: &Path, dev: u64) -> Result<(), String> {
    if std::fs::symlink_metadata(path).is_err() {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(path)
            .map_err(|e| format!("cannot create {}: {e}", super::show(path)))?;
    }
    let m = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    if !m.file_type().is_dir() {
        return Err(format!("{} is not a directory", super::show(path)));
    }
    if m.uid() != uid() {
        return Err(format!("{} is not ours", super::show(path)));
    }
    if m.dev() != dev {
        return Err(format!("{} is on another filesystem", super::show(path)));
    }
    Ok(())
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

/// Chooses the trash for an entry at `path` on device `dev`.
fn trash_for(path: &Path, dev: u64) -> Result<TrashDir, String> {
    if let Some(home) = home_trash() {
        let data = home.parent().unwrap_or(&home);
        // The data directory may not exist yet (a fresh account has no ~/.local/share): its
        // filesystem is that of its nearest existing ancestor, where it would be created.
        let on_home = data
            .ancestors()
            .find_map(|a| std::fs::metadata(a).ok())
            .is_some_and(|m| m.dev() == dev);
        if on_home {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(data)
                .map_err(|e| e.to_string())?;
            own_dir(&home, dev)?;
            return Ok(TrashDir {
                base: home,
                relative_to: None,
            });
        }
    }
    let top = top_dir(path, dev);
    let shared = top.join(".Trash");
    let sticky = std::fs::symlink_metadata(&shared)
        .is_ok_and(|m| m.file_type().is_dir() && m.mode() & 0o1000 != 0);
    let mut why = Vec::new();
    if sticky {
        let mine = shared.join(uid().to_string());
        match own_dir(&mine, dev) {
            Ok(()) => {
                return Ok(TrashDir {
                    base: mine,
                    relative_to: Some(top),
                });
            }
            Err(e) => why.push(e),
        }
    }
    let mine = top.join(format!(".Trash-{}", uid()));
    match own_dir(&mine, dev) {
        Ok(()) => Ok(TrashDir {
            base: mine,
            relative_to: Some(top),
        }),
        Err(e) => {
            why.push(e);
            Err(why.join("; "))
        }
    }
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
        .map_or(0, |d| d.as_secs()) as libc::time_t;
    // SAFETY: all zero is a valid `tm`; `localtime_r` writes only into it and reads `now`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    let ok = !unsafe { libc::localtime_r(&raw const now, &raw mut tm) }.is_null();
    if !ok {
        return "1970-01-01T00:00:00".into();
    }
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

fn open_dir(path: &Path) -> Result<OwnedFd, String> {
    let canon = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
    sys::open_root_nofollow(&canon).map_err(|e| format!("{}: {}", super::show(path), e.desc()))
}

/// Moves `target` to the trash of its filesystem. Refused as a delete is (outside the root,
/// the root, changed since shown, a mount point); `NoTrash` when no trash there can take it.
#[expect(
    clippy::too_many_lines,
    reason = "one sequence of checked steps: locate, choose, reserve the name, rename"
)]
pub fn trash(root: &RootDir, target: &Target) -> Result<Trashed, TrashError> {
    let at = locate(root, &target.path)?;
    let st = at.stat;
    if !target.matches(&st) {
        return Err(DeleteError::Changed(target.path.clone()).into());
    }
    if st.kind() == Kind::Dir && !same_fs(root, &st) {
        return Err(DeleteError::OtherFilesystem(target.path.clone()).into());
    }
    let no_trash = |why: String| TrashError::NoTrash {
        path: target.path.clone(),
        why,
    };
    let dir = trash_for(&target.path, st.dev).map_err(no_trash)?;
    let base = std::fs::canonicalize(&dir.base).map_err(|e| no_trash(e.to_string()))?;
    for sub in ["files", "info"] {
        own_dir(&base.join(sub), st.dev).map_err(no_trash)?;
    }
    let files = open_dir(&base.join("files")).map_err(no_trash)?;
    let info = open_dir(&base.join("info")).map_err(no_trash)?;
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
    let stem = at.name.as_bytes().to_vec();
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
        // The info file first, exclusively: it reserves the name among trashers.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&info_path);
        let mut file = match file {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(no_trash(format!("{}: {e}", super::show(&info_path)))),
        };
        let written = file
            .write_all(content.as_bytes())
            .and_then(|()| file.sync_all());
        let c_name = CString::new(name.clone()).map_err(|_| io(Errno::EINVAL))?;
        let c_info = CString::new(info_name).map_err(|_| io(Errno::EINVAL))?;
        if let Err(e) = written {
            let _ = unlinkat(info.as_fd(), c_info.as_c_str(), UnlinkatFlags::NoRemoveDir);
            return Err(no_trash(e.to_string()));
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
                        return Err(no_trash(format!(
                            "{} is on another filesystem",
                            super::show(&base)
                        )));
                    }
                    other => return Err(io(other)),
                }
            }
        }
    }
    Err(no_trash("no free name in the trash".into()))
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
    let files = open_dir(&t.trash.join("files")).map_err(|why| TrashError::NoTrash {
        path: t.file(),
        why,
    })?;
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
    let _ = std::fs::remove_file(t.info());
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
