//! Which trash directory takes an entry (the home trash on its filesystem, else the shared
//! `.Trash/$uid` or `.Trash-$uid` at the top of its filesystem), and that of an earlier move
//! opened again to put an entry back.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::{Trashed, Unusable};
use crate::fs::sys;
use crate::trusted::{self, TrustError};

/// A trash directory chosen for an entry, open; `relative_to` is its filesystem's top directory
/// when the `.trashinfo` path is written relative to it (a per-filesystem trash).
pub(super) struct TrashDir {
    pub(super) fd: OwnedFd,
    /// Where it is, with no symlink in the path.
    pub(super) base: PathBuf,
    pub(super) relative_to: Option<PathBuf>,
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
pub(super) fn own_dir_at(
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
pub(super) fn trash_for(path: &Path, dev: u64) -> Result<TrashDir, Unusable> {
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

/// The trash directory of an earlier move, opened again with no symlink anywhere in its path
/// and checked to be the same directory (device and inode).
pub(super) fn reopen_trash(t: &Trashed) -> Result<OwnedFd, Unusable> {
    let fd = sys::open_root_nofollow(&t.trash).map_err(|e| Unusable::sys(&t.trash, e))?;
    let st = sys::stat_fd(fd.as_fd()).map_err(Unusable::Stat)?;
    if (st.dev, st.ino) != t.trash_id {
        return Err(Unusable::Replaced(t.trash.clone()));
    }
    Ok(fd)
}
