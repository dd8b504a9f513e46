//! The cache directory is private: reached only through directories and symlinks that root or
//! the effective user controls (`crate::trusted`), created `0700`, every file in it `0600`
//! whatever the umask, nothing in it opened through a symlink or waited on (a FIFO), and a
//! directory or file that someone else owns, or that group or others may write, is not used
//! at all. An existing directory's mode is never changed.
//!
//! Every check here says why it failed (`Refused`) in one phrase that names the path, for the
//! "running without a cache: ..." warning.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{Uid, User, geteuid};

use crate::path::display_name;
use crate::trusted::{self, TrustError};

/// Why a cache directory or file is not used, in one phrase that names the path (for the
/// "running without a cache: ..." warning).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    #[error("{}: {source}", shown(.path))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is a symbolic link", shown(.0))]
    Symlink(PathBuf),
    #[error("{} is not a regular file", shown(.0))]
    NotAFile(PathBuf),
    #[error("{} is owned by uid {uid}, not by you (uid {euid})", shown(.path))]
    FileOwner { path: PathBuf, uid: u32, euid: u32 },
    #[error("{} is writable by group or others (mode {mode:04o})", shown(.path))]
    Writable { path: PathBuf, mode: u32 },
    /// A hard link to a file elsewhere would have us write (or remove) that file.
    #[error("{} has {links} hard links", shown(.path))]
    HardLinks { path: PathBuf, links: u64 },
    #[error("{} was replaced while being opened", shown(.0))]
    Replaced(PathBuf),
    #[error("{}: vanished", shown(.0))]
    Vanished(PathBuf),
    #[error("{} belongs to uid {uid}, not to you (uid {euid})", shown(.path))]
    DirOwner { path: PathBuf, uid: u32, euid: u32 },
    #[error(
        "{} is readable by group or others (mode {mode:04o}), and dtui does not change the \
         mode of a directory it did not make (chmod 700 it, or use another directory)",
        shown(.path)
    )]
    Readable { path: PathBuf, mode: u32 },
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The default directory under `var` (an environment variable, or "your home").
    #[error("{var}: {source}")]
    Base {
        var: &'static str,
        source: TrustError,
    },
    #[error("{var}: {} belongs to uid {uid}, not to you (uid {euid})", shown(.path))]
    BaseOwner {
        var: &'static str,
        path: PathBuf,
        uid: u32,
        euid: u32,
    },
    #[error("{}: in use by another dtui process", shown(.0))]
    InUse(PathBuf),
    #[error("{}: {errno}", shown(.path))]
    Lock {
        path: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("no cache directory (set HOME or XDG_CACHE_HOME, or pass --cache-dir)")]
    NoDirectory,
    #[error("no cache directory of yours: {} (pass --cache-dir)", joined(.0))]
    NoneOfYours(Vec<Refused>),
}

impl Refused {
    fn io(path: &Path, source: std::io::Error) -> Refused {
        Refused::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Several refusals in one phrase.
fn joined(all: &[Refused]) -> String {
    all.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// How a path is shown in a warning (escaped like every other path we print).
pub(crate) fn shown(p: &Path) -> String {
    display_name(p.as_os_str().as_encoded_bytes())
}

/// `O_NOFOLLOW`: a symlink at the last component fails with `ELOOP` instead of being followed;
/// `O_NONBLOCK`: opening a FIFO returns at once instead of waiting for a writer.
const SAFE_OPEN: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;

/// Why a metadata record is not one of our private files (None: it is).
fn refuse_file(p: &Path, m: &fs::Metadata) -> Option<Refused> {
    let euid = geteuid().as_raw();
    let path = p.to_path_buf();
    if m.file_type().is_symlink() {
        return Some(Refused::Symlink(path));
    }
    if !m.file_type().is_file() {
        return Some(Refused::NotAFile(path));
    }
    if m.uid() != euid {
        return Some(Refused::FileOwner {
            path,
            uid: m.uid(),
            euid,
        });
    }
    if m.mode() & 0o022 != 0 {
        return Some(Refused::Writable {
            path,
            mode: m.mode() & 0o7777,
        });
    }
    if m.nlink() != 1 {
        return Some(Refused::HardLinks {
            path,
            links: m.nlink(),
        });
    }
    None
}

/// How `check_file` opens a file it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    /// Read-only, changing nothing (`cache list`, `cache clear`).
    Inspect,
    /// Read-only; a file only too readable (`0644`, as older versions left them) is made
    /// `0600`.
    Read,
    /// Read and write, made `0600` like `Read`.
    Write,
}

/// Checks an existing cache file without opening anything but a regular file: `lstat`, then
/// an `O_NOFOLLOW|O_NONBLOCK` open whose `fstat` must be the same regular file, ours and
/// private (see `Use` for what else). `Ok(None)`: there is no such file.
pub(crate) fn check_file(p: &Path, how: Use) -> Result<Option<File>, Refused> {
    let lm = match fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Refused::io(p, e)),
    };
    if let Some(why) = refuse_file(p, &lm) {
        return Err(why);
    }
    let file = match OpenOptions::new()
        .read(true)
        .write(how == Use::Write)
        .custom_flags(SAFE_OPEN)
        .open(p)
    {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Refused::io(p, e)),
    };
    checked(p, file, &lm, how != Use::Inspect).map(Some)
}

/// The `fstat` half of `check_file`: the open file is the one `lstat` saw, and it is private.
fn checked(p: &Path, file: File, before: &fs::Metadata, narrow: bool) -> Result<File, Refused> {
    let m = file.metadata().map_err(|e| Refused::io(p, e))?;
    if let Some(why) = refuse_file(p, &m) {
        return Err(why);
    }
    if (m.dev(), m.ino()) != (before.dev(), before.ino()) {
        return Err(Refused::Replaced(p.to_path_buf()));
    }
    if narrow && m.mode() & 0o077 != 0 {
        file.set_permissions(Permissions::from_mode(0o600))
            .map_err(|e| Refused::io(p, e))?;
    }
    Ok(file)
}

/// Opens (creating `0600` if missing, whatever the umask) a cache file for reading and
/// writing, never through a symlink, never a FIFO or device, only a private file of ours.
pub(crate) fn create_file(p: &Path) -> Result<File, Refused> {
    if let Some(f) = check_file(p, Use::Write)? {
        return Ok(f);
    }
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(SAFE_OPEN)
        .open(p)
    {
        Ok(f) => f,
        // Made by someone else between the two calls: check that one instead.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return check_file(p, Use::Write)?.ok_or_else(|| Refused::Vanished(p.to_path_buf()));
        }
        Err(e) => return Err(Refused::io(p, e)),
    };
    let m = file.metadata().map_err(|e| Refused::io(p, e))?;
    if m.mode() & 0o777 != 0o600 {
        // A umask can only take bits away; 0600 must hold exactly (a umask of 0277 or so).
        file.set_permissions(Permissions::from_mode(0o600))
            .map_err(|e| Refused::io(p, e))?;
    }
    Ok(file)
}

/// Why an existing cache directory may not be used (None: it may): it must be the effective
/// user's and writable by nobody else; with `private`, readable by nobody else either (dtui
/// never changes the mode of a directory it did not make, so a `--cache-dir /var/cache` is
/// refused, not narrowed).
fn refuse_dir(dir: &Path, st: &nix::sys::stat::FileStat, private: bool) -> Option<Refused> {
    let euid = geteuid().as_raw();
    let path = dir.to_path_buf();
    if st.st_uid != euid {
        return Some(Refused::DirOwner {
            path,
            uid: st.st_uid,
            euid,
        });
    }
    if st.st_mode & 0o022 != 0 {
        return Some(Refused::Writable {
            path,
            mode: st.st_mode & 0o7777,
        });
    }
    if private && st.st_mode & 0o077 != 0 {
        return Some(Refused::Readable {
            path,
            mode: st.st_mode & 0o7777,
        });
    }
    None
}

/// A path as given on the command line, made absolute against the working directory.
fn absolute(dir: &Path) -> Result<PathBuf, Refused> {
    std::path::absolute(dir).map_err(|e| Refused::io(dir, e))
}

/// Makes the cache directory ready: reached through a trusted walk (`crate::trusted`: no
/// directory or symlink on the way that another user controls), created `0700` with its
/// parents if missing, else ours and private as it is. Returns where it is, with no symlink
/// in the path.
pub(crate) fn prepare_dir(dir: &Path) -> Result<PathBuf, Refused> {
    let d = trusted::open_or_create(&absolute(dir)?)?;
    if let Some(why) = refuse_dir(&d.path, &d.stat, true) {
        return Err(why);
    }
    Ok(d.path)
}

/// Checks an existing cache directory for `cache list` and `cache clear`, changing nothing:
/// reached through a trusted walk, ours, writable by nobody else. `Ok(None)`: there is none.
pub(crate) fn check_dir(dir: &Path) -> Result<Option<PathBuf>, Refused> {
    let Some(d) = trusted::open_existing(&absolute(dir)?)? else {
        return Ok(None);
    };
    match refuse_dir(&d.path, &d.stat, false) {
        Some(why) => Err(why),
        None => Ok(Some(d.path)),
    }
}

/// `base/dtui` if it can be ours: every part of it that exists reached through a trusted walk,
/// and the part where it would be created (or itself) the effective user's. Creating it as
/// root inside another user's home (`sudo -E` keeps `HOME`) would leave root-owned
/// directories there, or follow a symlink that user planted.
fn usable_base(var: &'static str, base: &Path) -> Result<PathBuf, Refused> {
    let euid = geteuid().as_raw();
    let r = trusted::resolve(&base.join("dtui")).map_err(|source| Refused::Base { var, source })?;
    if r.stat.st_uid != euid {
        return Err(Refused::BaseOwner {
            var,
            path: r.existing.clone(),
            uid: r.stat.st_uid,
            euid,
        });
    }
    Ok(r.path())
}

/// The default cache directory: `$XDG_CACHE_HOME/dtui`, else `$HOME/.cache/dtui`, else the
/// effective user's own home from the password database; only a place that belongs to the
/// effective user. Returns it with a note when it is not the one the environment names, or
/// why there is none.
pub(crate) fn default_dir() -> Result<(PathBuf, Option<String>), Refused> {
    let mut refused = Vec::new();
    let abs = |v: &str| std::env::var_os(v).filter(|v| Path::new(v).is_absolute());
    let own_home = || {
        User::from_uid(Uid::effective())
            .ok()
            .flatten()
            .map(|u| u.dir)
            .filter(|d| d.is_absolute())
            .map(|h| h.join(".cache"))
    };
    let candidates: [(&str, &dyn Fn() -> Option<PathBuf>); 3] = [
        ("XDG_CACHE_HOME", &|| {
            abs("XDG_CACHE_HOME").map(PathBuf::from)
        }),
        ("HOME", &|| {
            abs("HOME").map(|h| PathBuf::from(h).join(".cache"))
        }),
        ("your home", &own_home),
    ];
    for (var, base) in candidates {
        let Some(base) = base() else { continue };
        match usable_base(var, &base) {
            Ok(dir) => {
                let note = (!refused.is_empty())
                    .then(|| format!("{}: using {}", joined(&refused), shown(&dir)));
                return Ok((dir, note));
            }
            Err(why) => refused.push(why),
        }
    }
    if refused.is_empty() {
        return Err(Refused::NoDirectory);
    }
    Err(Refused::NoneOfYours(refused))
}
