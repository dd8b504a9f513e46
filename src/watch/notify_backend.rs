//! The portable backend: a recursive `notify` watcher (inotify here) on the root, symlinks not
//! followed. The handler only converts and forwards. Queue overflow becomes `Overflow`; a watch
//! limit hit becomes `Rescan` of the directories that could not be watched. inotify misses files
//! created in a new directory before its watch exists, so a consumer must scan new directories.
//!
//! notify keeps its own map from watch to path and renames nothing on a move: after `mv a b`,
//! events in the moved tree name `a/...` until each of its directories has been watched again
//! under `b` (a delete reported at the old path then finds nothing to delete). So once the
//! adder has watched a moved directory's tree again, it sends `Reread` of it: every change made
//! before that is in what the engine's verification then reads, and every later one is named
//! at its new path.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher as _};

use super::dir_walk::{DirWalk, Placed};
use super::{Backend, FsEvent, FsEventKind, Sink, WatchError, inside};

/// A watch per directory, placed by our own walk: notify's recursive mode gives up on the
/// first directory it may not watch (an unreadable one, as a normal user), and leaves the rest
/// of the tree unwatched. A thread adds watches for directories that appear or move in (their
/// events name them), and re-tries one whose permissions changed.
pub struct NotifyWatch {
    adder: crossbeam_channel::Sender<Option<(PathBuf, Appeared)>>,
    watcher: Shared,
    walk: Arc<DirWalk>,
    tx: Sink,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for NotifyWatch {
    fn drop(&mut self) {
        let _ = self.adder.send(None);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Shared = Arc<Mutex<notify::RecommendedWatcher>>;

impl NotifyWatch {
    pub fn start(root: &Path, tx: Sink) -> Result<NotifyWatch, WatchError> {
        let err = |e: notify::Error| WatchError::Notify {
            path: root.to_path_buf(),
            why: e.to_string(),
        };
        let (add_tx, add_rx) = crossbeam_channel::unbounded::<Option<(PathBuf, Appeared)>>();
        let handler_root = root.to_path_buf();
        let handler_tx = tx.clone();
        let handler_add = add_tx.clone();
        let watcher = notify::RecommendedWatcher::new(
            move |res: notify::Result<notify::Event>| {
                // The event first, then the adder: its `Reread` must come after the move.
                let new = res.as_ref().ok().and_then(new_directory);
                for ev in convert(&handler_root, res) {
                    handler_tx.send(ev);
                }
                if let Some(p) = new {
                    let _ = handler_add.send(Some(p));
                }
            },
            notify::Config::default().with_follow_symlinks(false),
        )
        .map_err(|e| match instance_limit(&e) {
            Some(why) => WatchError::Notify {
                path: root.to_path_buf(),
                why,
            },
            None => err(e),
        })?;
        let watcher: Shared = Arc::new(Mutex::new(watcher));
        let walk = Arc::new(DirWalk::default());
        // Every directory is watched before this returns: watch first, then scan.
        let placed = walk.watch_tree(root, &tx, Backend::Notify, false, |d| place(&watcher, d));
        if placed == 0 {
            return Err(WatchError::Notify {
                path: root.to_path_buf(),
                why: "no directory could be watched".into(),
            });
        }
        let thread = {
            let (watcher, walk, tx) = (Arc::clone(&watcher), Arc::clone(&walk), tx.clone());
            let top = root.to_path_buf();
            std::thread::Builder::new()
                .name("dtui-notify-add".into())
                .spawn(move || {
                    while let Ok(Some((p, how))) = add_rx.recv() {
                        if inside(&top, &p)
                            && (how != Appeared::Attributes || walk.refused(&p))
                            && std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir())
                        {
                            // A moved tree is read again whole once watched: no need to
                            // announce its entries one by one.
                            let moved = how == Appeared::Moved;
                            let placed = walk.watch_tree(&p, &tx, Backend::Notify, !moved, |d| {
                                place(&watcher, d)
                            });
                            if moved && placed > 0 {
                                tx.send(ev(FsEventKind::Reread, &p, Some(true)));
                            }
                        }
                    }
                })
                .map_err(|e| WatchError::Notify {
                    path: root.to_path_buf(),
                    why: e.to_string(),
                })?
        };
        Ok(NotifyWatch {
            adder: add_tx,
            watcher,
            walk,
            tx,
            thread: Some(thread),
        })
    }
}

impl NotifyWatch {
    /// What to do when the filesystem seen at a directory inside the root changed (a mount
    /// or an unmount there): watch the directories there now. notify keys its watches by
    /// path: watching a path again takes the new descriptor, and the old one (hidden under a
    /// mount, or on a filesystem unmounted lazily) is not forgotten, so its events, if any,
    /// name paths where the engine finds what is there now (a stat each, no wrong state).
    pub(crate) fn rewatcher(&self) -> super::Rewatch {
        let (watcher, walk, tx) = (
            Arc::clone(&self.watcher),
            Arc::clone(&self.walk),
            self.tx.clone(),
        );
        Arc::new(move |top: &Path| {
            walk.watch_tree(top, &tx, Backend::Notify, false, |d| place(&watcher, d));
        })
    }
}

/// How a directory the adder is told about came to be there.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Appeared {
    Created,
    /// Moved here (from inside the root or from outside).
    Moved,
    /// Only its attributes changed: only a directory we could not watch is tried again (rsync
    /// sets the times of every directory it writes, and each must not walk a watched subtree
    /// again).
    Attributes,
}

/// A directory an event says appeared, moved in, or changed its permissions.
fn new_directory(e: &notify::Event) -> Option<(PathBuf, Appeared)> {
    let how = match e.kind {
        EventKind::Create(CreateKind::Folder | CreateKind::Any) => Appeared::Created,
        EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => Appeared::Moved,
        EventKind::Modify(ModifyKind::Metadata(_)) => Appeared::Attributes,
        _ => return None,
    };
    e.paths.last().map(|p| (p.clone(), how))
}

/// One directory's watch through notify.
fn place(watcher: &Shared, dir: &Path) -> Placed {
    let r = watcher
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .watch(dir, RecursiveMode::NonRecursive);
    match r {
        Ok(()) => Placed::Watched,
        Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => Placed::Limit,
        Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => Placed::Gone,
        Err(_) => Placed::Refused,
    }
}

/// EMFILE from `inotify_init` is the per-user limit on inotify instances, unless the process
/// is out of file descriptors too: "Too many open files" would send the user to `ulimit -n`.
fn instance_limit(e: &notify::Error) -> Option<String> {
    let notify::ErrorKind::Io(io) = &e.kind else {
        return None;
    };
    if io.raw_os_error() != Some(libc::EMFILE) {
        return None;
    }
    // A descriptor still opens: the fd limit is not what was hit.
    std::fs::File::open("/dev/null").ok()?;
    Some(INSTANCE_LIMIT.into())
}

/// Why an inotify instance could not be made when descriptors are not what ran out.
pub(super) const INSTANCE_LIMIT: &str = "this user has as many inotify instances as allowed \
     (raise the sysctl fs.inotify.max_user_instances, or close other watchers)";

fn ev(kind: FsEventKind, path: &Path, is_dir: Option<bool>) -> FsEvent {
    FsEvent {
        kind,
        path: path.as_os_str().as_bytes().to_vec(),
        is_dir,
        backend: Backend::Notify,
    }
}

/// One notify event (or error) as our events; anything outside the root is dropped.
fn convert(root: &Path, res: notify::Result<notify::Event>) -> Vec<FsEvent> {
    let event = match res {
        Ok(e) => e,
        Err(e) => {
            // A watch limit (or any error) leaves part of the tree unwatched: rescan it.
            let paths: Vec<PathBuf> = if e.paths.is_empty() {
                vec![root.to_path_buf()]
            } else {
                e.paths
            };
            return paths
                .iter()
                .filter(|p| inside(root, p))
                .map(|p| ev(FsEventKind::Rescan, p, Some(true)))
                .collect();
        }
    };
    if event.need_rescan() {
        return vec![ev(FsEventKind::Overflow, root, Some(true))];
    }
    let paths: Vec<&PathBuf> = event.paths.iter().collect();
    let one = |kind: FsEventKind, is_dir: Option<bool>| -> Vec<FsEvent> {
        paths
            .iter()
            .filter(|p| inside(root, p))
            .map(|p| ev(kind.clone(), p, is_dir))
            .collect()
    };
    match event.kind {
        EventKind::Create(k) => one(
            FsEventKind::Created,
            match k {
                CreateKind::Folder => Some(true),
                CreateKind::File => Some(false),
                _ => None,
            },
        ),
        EventKind::Remove(k) => one(
            FsEventKind::Removed,
            match k {
                RemoveKind::Folder => Some(true),
                RemoveKind::File => Some(false),
                _ => None,
            },
        ),
        EventKind::Modify(ModifyKind::Name(mode)) => match mode {
            RenameMode::From => one(FsEventKind::Removed, None),
            RenameMode::To => one(FsEventKind::Created, None),
            RenameMode::Both if paths.len() == 2 => {
                let (from, to) = (paths[0], paths[1]);
                match (inside(root, from), inside(root, to)) {
                    (true, true) => vec![FsEvent {
                        kind: FsEventKind::Renamed {
                            to: to.as_os_str().as_bytes().to_vec(),
                        },
                        path: from.as_os_str().as_bytes().to_vec(),
                        is_dir: None,
                        backend: Backend::Notify,
                    }],
                    (true, false) => vec![ev(FsEventKind::Removed, from, None)],
                    (false, true) => vec![ev(FsEventKind::Created, to, None)],
                    (false, false) => Vec::new(),
                }
            }
            _ => one(FsEventKind::Modified, None),
        },
        EventKind::Modify(_) | EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
            one(FsEventKind::Modified, None)
        }
        EventKind::Access(_) => Vec::new(), // opens and reads, ours included: not changes
        EventKind::Any | EventKind::Other => one(FsEventKind::Modified, None),
    }
}
