//! Directories reached only through places that the effective user or root controls.
//!
//! dtui runs as root with another user's environment (`sudo -E` keeps `HOME` and the XDG
//! variables), so a directory named by the environment (the cache, the trash) is trusted only
//! if nobody else could have put it there or could move it afterwards. The path is walked from
//! `/` one component at a time, each opened `O_PATH|O_NOFOLLOW` relative to its parent's fd:
//! every directory on the way must belong to root or to the effective user and be writable by
//! nobody else (a sticky directory such as `/tmp` may be, since only an entry's owner can move
//! it there); a symlink on the way is followed only if it belongs to root or the effective user
//! too (one that another user planted never is). Missing directories are created `0700`, by
//! `mkdirat` on the fd of their parent, and only in a parent of the effective user's own: root
//! never creates directories in another user's home.
//!
//! Every refusal is one phrase naming the path, for the caller's "not used: ..." message.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{FchmodatFlags, FileStat, Mode, SFlag, fchmodat, fstat, mkdirat};
use nix::unistd::geteuid;

use crate::path::display_name;

/// Why a walk refused a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TrustError {
    /// Someone other than root or the effective user controls a part of it (or it is not
    /// the effective user's to create in): look elsewhere, e.g. in the user's own home.
    #[error("{0}")]
    Untrusted(String),
    /// It is the user's but cannot be used (not a directory, unreadable, a loop, ...).
    #[error("{0}")]
    Unusable(String),
}

use TrustError::{Untrusted, Unusable};

/// Lost races for a missing directory before the walk gives up.
const MAX_RACES: u32 = 8;

/// Symlinks followed in one walk at most, as the kernel's own limit (`ELOOP`).
const MAX_LINKS: u32 = 40;

fn shown(p: &Path) -> String {
    display_name(p.as_os_str().as_bytes())
}

/// A directory opened through a trusted walk.
#[derive(Debug)]
pub(crate) struct TrustedDir {
    /// Where it is, with no symlink in it.
    pub path: PathBuf,
    /// Opened `O_RDONLY|O_DIRECTORY`: the directory checked is the directory used.
    pub fd: OwnedFd,
    pub stat: FileStat,
}

/// What a walk that creates nothing found.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// The longest existing part, with no symlink in it.
    pub existing: PathBuf,
    /// Its status (a directory).
    pub stat: FileStat,
    /// The components below it that do not exist yet.
    pub missing: Vec<OsString>,
}

impl Resolved {
    /// The whole path: `existing` and the missing components.
    pub fn path(&self) -> PathBuf {
        let mut p = self.existing.clone();
        p.extend(&self.missing);
        p
    }
}

fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

fn is_symlink(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK
}

/// Why a directory on the way may not be trusted (None: it may).
fn refuse_dir(p: &Path, st: &FileStat, euid: u32) -> Option<TrustError> {
    if st.st_uid != 0 && st.st_uid != euid {
        return Some(Untrusted(format!(
            "{} belongs to uid {}, not to you (uid {euid})",
            shown(p),
            st.st_uid
        )));
    }
    let sticky = st.st_mode & 0o1000 != 0;
    if st.st_mode & 0o022 != 0 && !sticky {
        return Some(Untrusted(format!(
            "{} is writable by group or others (mode {:04o})",
            shown(p),
            st.st_mode & 0o7777
        )));
    }
    None
}

/// The components of an absolute path, `.` left out; `..` kept (resolved on the way).
fn components(path: &Path) -> Result<VecDeque<OsString>, TrustError> {
    if !path.is_absolute() {
        return Err(Unusable(format!("{} is not an absolute path", shown(path))));
    }
    Ok(path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect())
}

const PATH_FLAGS: OFlag = OFlag::O_PATH
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// One walk's state: the directories entered so far, each trusted, as (fd, path, status).
struct Walk {
    euid: u32,
    stack: Vec<(OwnedFd, PathBuf, FileStat)>,
    links: u32,
    /// Directories someone else made between our look and our `mkdirat`.
    races: u32,
}

/// What the walk does at a missing component.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AtMissing {
    Stop,
    Create,
}

enum Step {
    /// The component was a directory (or a symlink resolved into the queue): go on.
    Next,
    /// It does not exist and the walk creates nothing.
    Missing,
}

impl Walk {
    fn start(path: &Path) -> Result<(Walk, VecDeque<OsString>), TrustError> {
        let queue = components(path)?;
        let euid = geteuid().as_raw();
        let root = nix::fcntl::open("/", PATH_FLAGS | OFlag::O_DIRECTORY, Mode::empty())
            .map_err(|e| Unusable(format!("/: {}", e.desc())))?;
        let st = fstat(&root).map_err(|e| Unusable(format!("/: {}", e.desc())))?;
        if let Some(why) = refuse_dir(Path::new("/"), &st, euid) {
            return Err(why);
        }
        let walk = Walk {
            euid,
            stack: vec![(root, PathBuf::from("/"), st)],
            links: 0,
            races: 0,
        };
        Ok((walk, queue))
    }

    fn top(&self) -> &(OwnedFd, PathBuf, FileStat) {
        self.stack.last().expect("the stack always holds /")
    }

    /// Takes one component off the front of `queue`.
    fn step(
        &mut self,
        queue: &mut VecDeque<OsString>,
        at_missing: AtMissing,
    ) -> Result<Step, TrustError> {
        let Some(name) = queue.pop_front() else {
            return Ok(Step::Next);
        };
        if name == ".." {
            if self.stack.len() > 1 {
                self.stack.pop();
            }
            return Ok(Step::Next);
        }
        let (dir, dir_path, dir_st) = self.top();
        let here = dir_path.join(&name);
        match openat(dir, name.as_os_str(), PATH_FLAGS, Mode::empty()) {
            Ok(fd) => {
                let st =
                    fstat(&fd).map_err(|e| Unusable(format!("{}: {}", shown(&here), e.desc())))?;
                if is_symlink(&st) {
                    self.follow(&here, &st, &name, queue)?;
                } else if is_dir(&st) {
                    if let Some(why) = refuse_dir(&here, &st, self.euid) {
                        return Err(why);
                    }
                    self.stack.push((fd, here, st));
                } else {
                    return Err(Unusable(format!("{} is not a directory", shown(&here))));
                }
                Ok(Step::Next)
            }
            Err(Errno::ENOENT) if at_missing == AtMissing::Stop => {
                queue.push_front(name);
                Ok(Step::Missing)
            }
            Err(Errno::ENOENT) => {
                if dir_st.st_uid != self.euid {
                    return Err(Untrusted(format!(
                        "{} belongs to uid {}, not to you (uid {}): nothing is created there",
                        shown(dir_path),
                        dir_st.st_uid,
                        self.euid
                    )));
                }
                match mkdirat(dir, name.as_os_str(), Mode::from_bits_truncate(0o700)) {
                    Ok(()) => {}
                    // Made by someone else meanwhile: the next round checks it as an existing
                    // directory (and never changes its mode: it is not ours to narrow).
                    Err(Errno::EEXIST) => {
                        self.races += 1;
                        if self.races > MAX_RACES {
                            return Err(Untrusted(format!(
                                "{} keeps being made and removed by someone else",
                                shown(&here)
                            )));
                        }
                        queue.push_front(name);
                        return Ok(Step::Next);
                    }
                    Err(e) => {
                        return Err(Unusable(format!(
                            "cannot create {}: {}",
                            shown(&here),
                            e.desc()
                        )));
                    }
                }
                let fd = openat(dir, name.as_os_str(), PATH_FLAGS, Mode::empty())
                    .map_err(|e| Unusable(format!("{}: {}", shown(&here), e.desc())))?;
                let st =
                    fstat(&fd).map_err(|e| Unusable(format!("{}: {}", shown(&here), e.desc())))?;
                if !is_dir(&st) || st.st_uid != self.euid {
                    return Err(Untrusted(format!(
                        "{} was replaced while being created",
                        shown(&here)
                    )));
                }
                if st.st_mode & 0o777 != 0o700 {
                    // The umask took bits from our own new directory (0277 leaves no write).
                    // The name cannot be swapped: its parent is ours (or sticky, and it ours).
                    fchmodat(
                        dir,
                        name.as_os_str(),
                        Mode::from_bits_truncate(0o700),
                        FchmodatFlags::FollowSymlink,
                    )
                    .map_err(|e| Unusable(format!("{}: {}", shown(&here), e.desc())))?;
                }
                let st =
                    fstat(&fd).map_err(|e| Unusable(format!("{}: {}", shown(&here), e.desc())))?;
                self.stack.push((fd, here, st));
                Ok(Step::Next)
            }
            Err(e) => Err(Unusable(format!("{}: {}", shown(&here), e.desc()))),
        }
    }

    /// A symlink at `here`: followed only if root or the effective user made it (its parent is
    /// already trusted, so nobody else can replace it); its target goes to the queue's front.
    fn follow(
        &mut self,
        here: &Path,
        st: &FileStat,
        name: &OsStr,
        queue: &mut VecDeque<OsString>,
    ) -> Result<(), TrustError> {
        if st.st_uid != 0 && st.st_uid != self.euid {
            return Err(Untrusted(format!(
                "{} is a symbolic link made by uid {}, not by you (uid {})",
                shown(here),
                st.st_uid,
                self.euid
            )));
        }
        self.links += 1;
        if self.links > MAX_LINKS {
            return Err(Unusable(format!(
                "{}: too many levels of symbolic links",
                shown(here)
            )));
        }
        let (dir, _, _) = self.top();
        let target = nix::fcntl::readlinkat(dir, name)
            .map_err(|e| Unusable(format!("{}: {}", shown(here), e.desc())))?;
        let target = PathBuf::from(target);
        let mut parts: VecDeque<OsString> = target
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_owned()),
                Component::ParentDir => Some(OsString::from("..")),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
            })
            .collect();
        if target.is_absolute() {
            self.stack.truncate(1);
        }
        while let Some(p) = parts.pop_back() {
            queue.push_front(p);
        }
        Ok(())
    }
}

/// Resolves `path` without creating anything: the longest existing part (every component
/// trusted, as the module says) and what is missing below it.
pub(crate) fn resolve(path: &Path) -> Result<Resolved, TrustError> {
    let (mut walk, mut queue) = Walk::start(path)?;
    while !queue.is_empty() {
        if let Step::Missing = walk.step(&mut queue, AtMissing::Stop)? {
            break;
        }
    }
    if queue.iter().any(|c| c == "..") {
        return Err(Unusable(format!(
            "{}: `..` below a missing directory",
            shown(path)
        )));
    }
    let (_, existing, stat) = walk.stack.pop().expect("the stack always holds /");
    Ok(Resolved {
        existing,
        stat,
        missing: queue.into_iter().collect(),
    })
}

/// Opens the directory at `path` through a trusted walk, creating what is missing (`0700`,
/// only inside directories of the effective user's own).
pub(crate) fn open_or_create(path: &Path) -> Result<TrustedDir, TrustError> {
    let (mut walk, mut queue) = Walk::start(path)?;
    while !queue.is_empty() {
        walk.step(&mut queue, AtMissing::Create)?;
    }
    let (fd, path, stat) = walk.stack.pop().expect("the stack always holds /");
    let fd = reopen_readable(&fd, &path, &stat)?;
    Ok(TrustedDir { path, fd, stat })
}

/// Opens the existing directory at `path` through a trusted walk (`Ok(None)`: it does not
/// exist).
pub(crate) fn open_existing(path: &Path) -> Result<Option<TrustedDir>, TrustError> {
    let (mut walk, mut queue) = Walk::start(path)?;
    while !queue.is_empty() {
        if let Step::Missing = walk.step(&mut queue, AtMissing::Stop)? {
            return Ok(None);
        }
    }
    let (fd, path, stat) = walk.stack.pop().expect("the stack always holds /");
    let fd = reopen_readable(&fd, &path, &stat)?;
    Ok(Some(TrustedDir { path, fd, stat }))
}

/// An `O_PATH` fd cannot be read or `fchmod`ed: the same directory opened for reading, through
/// `/proc/self/fd` of the `O_PATH` one (no path walk again), checked by device and inode.
fn reopen_readable(fd: &OwnedFd, path: &Path, st: &FileStat) -> Result<OwnedFd, TrustError> {
    use std::os::fd::AsRawFd;
    let proc = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let rd = match nix::fcntl::open(proc.as_str(), flags, Mode::empty()) {
        Ok(rd) => rd,
        // No /proc: `.` relative to the O_PATH fd opens the same directory.
        Err(Errno::ENOENT) => openat(fd, ".", flags, Mode::empty())
            .map_err(|e| Unusable(format!("{}: {}", shown(path), e.desc())))?,
        Err(e) => return Err(Unusable(format!("{}: {}", shown(path), e.desc()))),
    };
    let now = fstat(&rd).map_err(|e| Unusable(format!("{}: {}", shown(path), e.desc())))?;
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
        return Err(Untrusted(format!(
            "{} was replaced while being opened",
            shown(path)
        )));
    }
    Ok(rd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_missing_path_is_created_0700_with_its_parents() {
        let t = tempfile::tempdir().expect("tempdir");
        let p = t.path().join("a/b/c");
        let d = open_or_create(&p).expect("created");
        assert_eq!(d.stat.st_mode & 0o777, 0o700);
        assert_eq!(
            d.path,
            t.path().canonicalize().expect("canon").join("a/b/c")
        );
        let again = open_or_create(&p).expect("opened");
        assert_eq!(
            (again.stat.st_dev, again.stat.st_ino),
            (d.stat.st_dev, d.stat.st_ino)
        );
    }

    #[test]
    fn a_symlink_of_our_own_is_followed_and_resolved_away() {
        let t = tempfile::tempdir().expect("tempdir");
        let real = t.path().join("real");
        std::fs::create_dir(&real).expect("mkdir");
        symlink(&real, t.path().join("link")).expect("symlink");
        let r = resolve(&t.path().join("link/x/y")).expect("resolved");
        let canon = real.canonicalize().expect("canon");
        assert_eq!(r.existing, canon);
        assert_eq!(r.missing, vec![OsString::from("x"), OsString::from("y")]);
        assert_eq!(r.path(), canon.join("x/y"));
    }

    #[test]
    fn a_symlink_loop_is_refused() {
        let t = tempfile::tempdir().expect("tempdir");
        symlink(t.path().join("b"), t.path().join("a")).expect("symlink");
        symlink(t.path().join("a"), t.path().join("b")).expect("symlink");
        let e = resolve(&t.path().join("a/c")).expect_err("a loop");
        assert!(e.to_string().contains("too many levels"), "{e}");
    }

    #[test]
    fn a_file_on_the_way_is_refused() {
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::write(t.path().join("f"), b"x").expect("write");
        let e = open_or_create(&t.path().join("f/d")).expect_err("a file");
        assert!(e.to_string().contains("is not a directory"), "{e}");
    }

    #[test]
    fn a_group_writable_directory_on_the_way_is_refused_but_a_sticky_one_is_not() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().expect("tempdir");
        let open = t.path().join("open");
        std::fs::create_dir(&open).expect("mkdir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let e = open_or_create(&open.join("d")).expect_err("writable");
        assert!(
            matches!(e, Untrusted(ref w) if w.contains("writable by group or others")),
            "{e}"
        );
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        open_or_create(&open.join("d")).expect("sticky is fine");
    }

    #[test]
    fn a_relative_path_is_refused() {
        let e = resolve(Path::new("rel/dir")).expect_err("relative");
        assert!(e.to_string().contains("not an absolute path"), "{e}");
    }
}
