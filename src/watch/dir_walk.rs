//! What the two backends with a watch per directory (inotify directly, and the `notify`
//! crate) share: the walk that places those watches, and what it keeps between walks (the
//! watch limit was hit; directories that may not be watched, to try again after a chmod).

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use super::{Backend, FsEvent, FsEventKind, Sink};

/// What placing one directory's watch came to.
pub(super) enum Placed {
    Watched,
    /// The watch limit: nothing more can be watched.
    Limit,
    /// No permission: nothing to watch below it either, until its mode changes.
    Refused,
    /// Gone, or no longer a directory.
    Gone,
}

#[derive(Default)]
pub(super) struct DirWalk {
    limit: AtomicBool,
    refused: Mutex<HashSet<PathBuf>>,
}

impl DirWalk {
    /// Watches `top` and every directory below it that may be watched (symlinks not
    /// followed), each through `place`; returns how many were placed. A directory that may
    /// not be read is left out (the scan flags it); the watch limit stops the walk with one
    /// `Rescan` of the part left unwatched, which the engine then verifies periodically.
    ///
    /// With `announce` (a directory that appeared after the start), every entry found below it
    /// is reported as created once its directory is watched: what was written there before
    /// the watch was placed has no event of its own (inotify's race), and the engine stats
    /// each name.
    pub(super) fn watch_tree(
        &self,
        top: &Path,
        tx: &Sink,
        backend: Backend,
        announce: bool,
        mut place: impl FnMut(&Path) -> Placed,
    ) -> usize {
        let ev = |kind: FsEventKind, path: &Path, is_dir: Option<bool>| FsEvent {
            kind,
            path: path.as_os_str().as_bytes().to_vec(),
            is_dir,
            backend,
        };
        let mut placed = 0;
        let mut stack = vec![top.to_path_buf()];
        while let Some(dir) = stack.pop() {
            match place(&dir) {
                Placed::Watched => {
                    placed += 1;
                    let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
                    if !refused.is_empty() {
                        refused.remove(&dir);
                    }
                }
                Placed::Limit => {
                    if !self.limit.swap(true, Ordering::SeqCst) {
                        log_limit_once();
                    }
                    tx.send(ev(FsEventKind::Rescan, top, Some(true)));
                    return placed;
                }
                Placed::Refused => {
                    self.refused
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(dir);
                    continue;
                }
                Placed::Gone => continue,
            }
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                if announce {
                    tx.send(ev(FsEventKind::Created, &e.path(), Some(is_dir)));
                }
                if is_dir {
                    stack.push(e.path());
                }
            }
        }
        placed
    }

    /// Could `dir` not be watched for want of permission (so a chmod may change that)?
    pub(super) fn refused(&self, dir: &Path) -> bool {
        self.refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(dir)
    }
}

/// The watch limit is said once per process, with the setting that raises it.
fn log_limit_once() {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::SeqCst) {
        eprintln!(
            "dtui: warning: the inotify watch limit was reached; part of the tree is verified \
             periodically instead (raise the sysctl fs.inotify.max_user_watches)"
        );
    }
}
