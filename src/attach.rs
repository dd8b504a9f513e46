//! Attach: one process owns a live root (a browser, `dtui watch`, `dtui serve`), and every
//! other `dtui` of the same user on that root attaches to it instead of opening the cache:
//! no catch-up, the owner's live tree from the first frame, its commands (`r`/`R`, the
//! changes a delete made) applied by the owner.
//!
//! The rendezvous is a directory private to the user (`$XDG_RUNTIME_DIR/dtui`, else
//! `/tmp/dtui-<uid>`; 0700, ours, no symlink, or nothing is attached), holding per root
//! (named by a hash of its canonical path) a lock file and a socket. The lock elects the owner:
//! whoever holds it owns the root (`Election`); a start that cannot take it waits for the
//! owner's socket and attaches. The socket's peer is checked both ways (`SO_PEERCRED`): an
//! owner serves its own user only (root serves root), and a client talks to its own user's
//! owner only.
//!
//! What the client holds is a replica: the owner writes its arena, as a save lays it out, to a
//! sealed memory file and passes the descriptor; the client maps it and validates it as it
//! would a cache file, so its drawing code reads a `Tree` as ever. Every applied batch sends
//! a new image (one per batch, shared by every client: O(tree) bytes copied per batch, a
//! memcpy; see ARCHITECTURE.md) and the batch's message, so rows are highlighted as at home.
//! When the owner goes away, the client is told (`EngineMsg::Detached`) and the browser opens
//! the root itself, keeping its place.

pub mod client;
pub mod frame;
pub mod server;
pub mod wire;

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

pub use client::{As, Attach, attach};
pub use server::Server;

/// The directory of the rendezvous, made if missing; `None` when there is no private one to
/// be had (then nothing attaches and nothing is served: every process is on its own).
#[must_use]
pub fn runtime_dir() -> Option<PathBuf> {
    let uid = nix::unistd::geteuid().as_raw();
    let dir = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() && Path::new(&d).is_absolute() => Path::new(&d).join("dtui"),
        _ => PathBuf::from(format!("/tmp/dtui-{uid}")),
    };
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(_) => return None,
    }
    // Ours, a directory (not a symlink to one), and no one else's to enter.
    let m = fs::symlink_metadata(&dir).ok()?;
    (m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o777 == 0o700).then_some(dir)
}

/// The name of a root's files in the runtime directory: a hash of its canonical path.
fn key(root: &Path) -> String {
    format!(
        "{:016x}",
        xxhash_rust::xxh3::xxh3_64(root.as_os_str().as_bytes())
    )
}

/// The socket an owner of `root` listens on.
#[must_use]
pub fn socket_path(dir: &Path, root: &Path) -> PathBuf {
    dir.join(format!("{}.sock", key(root)))
}

/// The lock whose holder owns `root`.
fn lock_path(dir: &Path, root: &Path) -> PathBuf {
    dir.join(format!("{}.lock", key(root)))
}

/// The ownership of a live root: held for as long as this value lives (an advisory lock on a
/// file in the runtime directory, released by the kernel when the process dies, however).
pub struct Election {
    _lock: nix::fcntl::Flock<File>,
}

impl Election {
    /// Takes the ownership of `root` if no other process holds it: `Ok(None)` when one does.
    pub fn try_own(dir: &Path, root: &Path) -> io::Result<Option<Election>> {
        use nix::fcntl::{Flock, FlockArg};
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(lock_path(dir, root))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(Election { _lock: lock })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(e.into()),
        }
    }
}

/// The uid at the other end of a Unix socket.
pub fn peer_uid(sock: &UnixStream) -> io::Result<u32> {
    let cred = nix::sys::socket::getsockopt(sock, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(io::Error::from)?;
    Ok(cred.uid())
}

/// A path's bytes as a `PathBuf`.
fn path_of(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(OsString::from_vec(bytes))
}
