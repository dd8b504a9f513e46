//! The freedesktop.org trash (Trash specification 1.0): an entry goes to the trash of its own
//! filesystem, by one `rename(2)` (never a copy and a delete): `$XDG_DATA_HOME/Trash` when it
//! is on the filesystem of the home trash, else `$topdir/.Trash/$uid` (a shared, sticky
//! `.Trash` that is not a symlink) or `$topdir/.Trash-$uid` at the top of its filesystem.
//! Each trashed entry has its `info/NAME.trashinfo` (created first, `O_EXCL`, which reserves
//! the name) with its original path, percent-encoded, and the deletion date. `restore` puts
//! the last one back where it was, if that name is still free.

mod dir;
mod info;

use std::ffi::{CString, OsStr};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, RenameFlags, renameat2};
use nix::unistd::{UnlinkatFlags, unlinkat};

use dir::{own_dir_at, reopen_trash, trash_for};
pub use info::decode;
use info::{encode, local_now, trash_stem};

use super::{DeleteError, Target, locate, same_fs};
use crate::fs::{RootDir, sys};
use crate::tree::Kind;
use crate::trusted::TrustError;

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
