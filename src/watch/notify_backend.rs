//! The portable backend: a recursive `notify` watcher (inotify here) on the root, symlinks not
//! followed. The handler only converts and forwards. Queue overflow becomes `Overflow`; a watch
//! limit hit becomes `Rescan` of the directories that could not be watched. inotify misses files
//! created in a new directory before its watch exists, so a consumer must scan new directories.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher as _};

use super::{Backend, FsEvent, FsEventKind, Sink, WatchError, inside};

pub struct NotifyWatch {
    _watcher: notify::RecommendedWatcher,
}

impl NotifyWatch {
    pub fn start(root: &Path, tx: Sink) -> Result<NotifyWatch, WatchError> {
        let err = |e: notify::Error| WatchError::Notify {
            path: root.to_path_buf(),
            why: e.to_string(),
        };
        let handler_root = root.to_path_buf();
        let rescan_tx = tx.clone();
        let handler_tx = tx;
        let mut watcher = notify::RecommendedWatcher::new(
            move |res: notify::Result<notify::Event>| {
                for ev in convert(&handler_root, res) {
                    handler_tx.send(ev);
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
        match watcher.watch(root, RecursiveMode::Recursive) {
            Ok(()) => {}
            Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                // Part of the tree is watched, part is not: keep serving, ask for a rescan.
                rescan_tx.send(FsEvent {
                    kind: FsEventKind::Rescan,
                    path: root.as_os_str().as_bytes().to_vec(),
                    is_dir: Some(true),
                    backend: Backend::Notify,
                });
            }
            Err(e) => return Err(err(e)),
        }
        Ok(NotifyWatch { _watcher: watcher })
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
    Some(
        "this user has as many inotify instances as allowed \
         (raise the sysctl fs.inotify.max_user_instances, or close other watchers)"
            .into(),
    )
}

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
