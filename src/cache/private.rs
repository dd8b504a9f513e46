//! The cache directory is private: created `0700`, every file in it `0600` whatever the umask,
//! nothing in it opened through a symlink or waited on (a FIFO), and a directory or file that
//! someone else owns, or that group or others may write, is not used at all.
//!
//! Every check here says why it failed in one phrase that names the path, for the "running
//! without a cache: ..." warning.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{Uid, User, geteuid};

use crate::path::display_name;

/// How a path is shown in a warning (escaped like every other path we print).
pub(crate) fn shown(p: &Path) -> String {
    display_name(p.as_os_str().as_encoded_bytes())
}

/// `O_NOFOLLOW`: a symlink at the last component fails with `ELOOP` instead of being followed;
/// `O_NONBLOCK`: opening a FIFO returns at once instead of waiting for a writer.
const SAFE_OPEN: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;

/// Why a metadata record is not one of our private files (None: it is).
fn refuse_file(p: &Path, m: &fs::Metadata) -> Option<String> {
    let euid = geteuid().as_raw();
    if m.file_type().is_symlink() {
        return Some(format!("{} is a symbolic link", shown(p)));
    }
    if !m.file_type().is_file() {
        return Some(format!("{} is not a regular file", shown(p)));
    }
    if m.uid() != euid {
        return Some(format!(
            "{} is owned by uid {}, not by you (uid {euid})",
            shown(p),
            m.uid()
        ));
    }
    if m.mode() & 0o022 != 0 {
        return Some(format!(
            "{} is writable by group or others (mode {:04o})",
            shown(p),
            m.mode() & 0o7777
        ));
    }
    if m.nlink() != 1 {
        // A hard link to a file elsewhere would have us write (or remove) that file.
        return Some(format!("{} has {} hard links", shown(p), m.nlink()));
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
pub(crate) fn check_file(p: &Path, how: Use) -> Result<Option<File>, String> {
    let lm = match fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", shown(p))),
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
        Err(e) => return Err(format!("{}: {e}", shown(p))),
    };
    checked(p, file, &lm, how != Use::Inspect).map(Some)
}

/// The `fstat` half of `check_file`: the open file is the one `lstat` saw, and it is private.
fn checked(p: &Path, file: File, before: &fs::Metadata, narrow: bool) -> Result<File, String> {
    let m = file.metadata().map_err(|e| format!("{}: {e}", shown(p)))?;
    if let Some(why) = refuse_file(p, &m) {
        return Err(why);
    }
    if (m.dev(), m.ino()) != (before.dev(), before.ino()) {
        return Err(format!("{} was replaced while being opened", shown(p)));
    }
    if narrow && m.mode() & 0o077 != 0 {
        file.set_permissions(Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", shown(p)))?;
    }
    Ok(file)
}

/// Opens (creating `0600` if missing, whatever the umask) a cache file for reading and
/// writing, never through a symlink, never a FIFO or device, only a private file of ours.
pub(crate) fn create_file(p: &Path) -> Result<File, String> {
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
            return check_file(p, Use::Write)?.ok_or_else(|| format!("{}: vanished", shown(p)));
        }
        Err(e) => return Err(format!("{}: {e}", shown(p))),
    };
    let m = file.metadata().map_err(|e| format!("{}: {e}", shown(p)))?;
    if m.mode() & 0o777 != 0o600 {
        // A umask can only take bits away; 0600 must hold exactly (a umask of 0277 or so).
        file.set_permissions(Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", shown(p)))?;
    }
    Ok(file)
}

/// Creates the cache directory (`0700`, parents too) if missing, and checks that it is a
/// directory of ours that nobody else can write; an existing one left more open by an older
/// version (`0755`) is narrowed to `0700`.
pub(crate) fn prepare_dir(dir: &Path) -> Result<(), String> {
    match fs::metadata(dir) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("{}: {e}", shown(dir)))?;
        }
        Err(e) => return Err(format!("{}: {e}", shown(dir))),
    }
    check_dir(dir, true)
}

/// Checks an existing cache directory: ours, not writable by group or others; `fix` makes it
/// `0700` if it is readable by them.
pub(crate) fn check_dir(dir: &Path, fix: bool) -> Result<(), String> {
    let euid = geteuid().as_raw();
    // Opened once (following a symlinked `~/.cache`, as every tool does) and checked by fd, so
    // the directory checked is the directory changed.
    let d = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| format!("{}: {e}", shown(dir)))?;
    let m = d.metadata().map_err(|e| format!("{}: {e}", shown(dir)))?;
    if m.uid() != euid {
        return Err(format!(
            "{} is owned by uid {}, not by you (uid {euid})",
            shown(dir),
            m.uid()
        ));
    }
    if m.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is writable by group or others (mode {:04o})",
            shown(dir),
            m.mode() & 0o7777
        ));
    }
    if fix && m.mode() & 0o777 != 0o700 {
        d.set_permissions(Permissions::from_mode(0o700))
            .map_err(|e| format!("{}: {e}", shown(dir)))?;
    }
    Ok(())
}

/// The nearest existing ancestor of `p` (itself included) and its owner.
fn nearest_owner(p: &Path) -> Option<(PathBuf, u32)> {
    p.ancestors()
        .find_map(|a| fs::metadata(a).ok().map(|m| (a.to_path_buf(), m.uid())))
}

/// `base/dtui` if what exists of it belongs to the effective user; else why not. Creating it
/// as root inside another user's home (`sudo` keeps `HOME`) would leave root-owned
/// directories there.
fn usable_base(var: &str, base: &Path) -> Result<PathBuf, String> {
    let dir = base.join("dtui");
    let euid = geteuid().as_raw();
    match nearest_owner(&dir) {
        Some((_, uid)) if uid == euid => Ok(dir),
        Some((at, uid)) => Err(format!(
            "{var} ({}) belongs to uid {uid}, not to you (uid {euid})",
            shown(&at)
        )),
        None => Err(format!("{var} ({}) does not exist", shown(base))),
    }
}

/// The default cache directory: `$XDG_CACHE_HOME/dtui`, else `$HOME/.cache/dtui`, else the
/// effective user's own home from the password database; only a place that belongs to the
/// effective user. Returns it with a note when it is not the one the environment names, or
/// why there is none.
pub fn default_dir() -> Result<(PathBuf, Option<String>), String> {
    let mut refused = Vec::new();
    let abs = |v: &str| std::env::var_os(v).filter(|v| Path::new(v).is_absolute());
    let candidates = [
        ("XDG_CACHE_HOME", abs("XDG_CACHE_HOME").map(PathBuf::from)),
        ("HOME", abs("HOME").map(|h| PathBuf::from(h).join(".cache"))),
    ];
    for (var, base) in candidates {
        let Some(base) = base else { continue };
        match usable_base(var, &base) {
            Ok(dir) => {
                let note = (!refused.is_empty())
                    .then(|| format!("{}: using {}", refused.join("; "), shown(&dir)));
                return Ok((dir, note));
            }
            Err(why) => refused.push(why),
        }
    }
    let own_home = User::from_uid(Uid::effective())
        .ok()
        .flatten()
        .map(|u| u.dir)
        .filter(|d| d.is_absolute());
    if let Some(home) = own_home {
        match usable_base("your home", &home.join(".cache")) {
            Ok(dir) => {
                let note = (!refused.is_empty())
                    .then(|| format!("{}: using {}", refused.join("; "), shown(&dir)));
                return Ok((dir, note));
            }
            Err(why) => refused.push(why),
        }
    }
    if refused.is_empty() {
        return Err("no cache directory (set HOME or XDG_CACHE_HOME, or pass --cache-dir)".into());
    }
    Err(format!(
        "no cache directory of yours: {} (pass --cache-dir)",
        refused.join("; ")
    ))
}
