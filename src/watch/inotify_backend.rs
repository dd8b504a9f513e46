//! inotify without a middleman: a watch per directory, placed by our own walk with one
//! `inotify_add_watch` each, and one thread reading the events.
//!
//! Why not through `notify` (still here, `--watch-backend notify`): every `watch()` call of
//! notify's inotify watcher is a round trip to its event thread (a message, a wake-up, a
//! reply) plus a `stat` and two path-keyed maps, about 110 µs a directory here; a tree of
//! 47,432 directories took 5–7 s to watch, and notify's recursive mode took 17 s and stops at
//! the first directory it may not watch. The system call alone is about 12 µs. The events
//! are translated exactly as the notify backend translates notify's (same kinds, same paths,
//! the same rename triple), so the engine cannot tell the two apart except by name.
//!
//! inotify misses what is written in a new directory before its watch exists: a directory
//! that appears is watched by the adder thread, which then reports every entry found below it
//! as created (the engine stats each name).
//!
//! A watch names its directory by the path it had when it was placed; inotify does not follow
//! renames. So the reader renames the paths of every watch below a directory the moment it
//! reads that directory's move, before it translates the next event: a change made in the
//! moved tree right after the move is reported at its new path, not at the old one where the
//! engine would find nothing (a live tree then kept a deleted file: `notify` has that race).
//! A directory moved out of the root has its watches forgotten.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent};

use super::dir_walk::{DirWalk, Placed};
use super::gate::Gate;
use super::{Backend, FsEvent, FsEventKind, Sink, WatchError, inside};

/// Directories for the adder to watch (and report what it finds in), each counted on its
/// gate until it is done.
#[derive(Clone)]
struct Adds {
    tx: crossbeam_channel::Sender<Option<PathBuf>>,
    gate: Arc<Gate>,
}

impl Adds {
    fn send(&self, dir: PathBuf) {
        self.gate.enter();
        if self.tx.send(Some(dir)).is_err() {
            self.gate.leave();
        }
    }
}

/// The running watch: dropping it stops both threads and closes the inotify descriptor.
pub struct InotifyWatch {
    adder: crossbeam_channel::Sender<Option<PathBuf>>,
    state: Arc<State>,
    tx: Sink,
    /// Dropped to stop the reader (its end of the pipe then polls as hung up).
    stop: Option<OwnedFd>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for InotifyWatch {
    fn drop(&mut self) {
        let _ = self.adder.send(None);
        drop(self.stop.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The inotify instance and the directory each watch descriptor stands for. A directory
/// watched again under a new path (it was renamed) gets the same descriptor back, and the map
/// takes the new path.
struct State {
    inotify: Inotify,
    dirs: Mutex<HashMap<i32, PathBuf>>,
    walk: DirWalk,
}

/// What a directory watch reports: changes of its entries, and its own deletion or move (the
/// root has no watched parent to say so). Opens and reads are not asked for.
fn mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR
        | AddWatchFlags::IN_DONT_FOLLOW
}

impl InotifyWatch {
    pub fn start(root: &Path, tx: Sink) -> Result<InotifyWatch, WatchError> {
        let fail = |why: String| WatchError::Notify {
            path: root.to_path_buf(),
            why,
        };
        let inotify =
            Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).map_err(|e| match e {
                Errno::EMFILE if std::fs::File::open("/dev/null").is_ok() => {
                    fail(super::notify_backend::INSTANCE_LIMIT.into())
                }
                e => fail(format!("inotify: {}", e.desc())),
            })?;
        let state = Arc::new(State {
            inotify,
            dirs: Mutex::new(HashMap::new()),
            walk: DirWalk::default(),
        });
        // Every directory is watched before this returns: watch first, then scan.
        if watch_tree(&state, root, &tx, false) == 0 {
            return Err(fail("no directory could be watched".into()));
        }
        let (stop_rx, stop_tx) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail(e.to_string()))?;
        let (add_tx, add_rx) = crossbeam_channel::unbounded::<Option<PathBuf>>();
        // The reader's gate first: the adder is fed by it (see `gate`).
        let reading = tx.gates().add(Some(state.inotify.as_fd()));
        let adds = Adds {
            tx: add_tx.clone(),
            gate: tx.gates().add(None),
        };
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| fail(e.to_string()))
        };
        let reader = {
            let (state, tx, add, root) = (
                Arc::clone(&state),
                tx.clone(),
                adds.clone(),
                root.to_path_buf(),
            );
            spawn(
                "dtui-inotify",
                Box::new(move || read_loop(&state, &root, &tx, &add, &reading, &stop_rx)),
            )?
        };
        let adder = {
            let (state, top, tx) = (Arc::clone(&state), root.to_path_buf(), tx.clone());
            let gate = Arc::clone(&adds.gate);
            spawn(
                "dtui-inotify-add",
                Box::new(move || {
                    while let Ok(Some(p)) = add_rx.recv() {
                        if inside(&top, &p)
                            && std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir())
                        {
                            watch_tree(&state, &p, &tx, true);
                        }
                        gate.leave();
                    }
                }),
            )?
        };
        Ok(InotifyWatch {
            adder: add_tx,
            state,
            tx,
            stop: Some(stop_tx),
            threads: vec![reader, adder],
        })
    }
}

impl InotifyWatch {
    /// What to do when the filesystem seen at a directory inside the root changed (a mount
    /// or an unmount there): watch the directories there now, then forget the watches that
    /// were at or below it and were not placed again. Those watch directories that are out
    /// of sight: hidden under the new mount (the kernel keeps their watches, and a walk after
    /// the unmount gets the same descriptors back), or on a filesystem unmounted lazily and
    /// still in use, whose events would otherwise be named by paths that now show other
    /// files.
    pub(crate) fn rewatcher(&self) -> super::Rewatch {
        let (state, tx) = (Arc::clone(&self.state), self.tx.clone());
        Arc::new(move |top: &Path| rewatch(&state, top, &tx))
    }
}

fn rewatch(state: &State, top: &Path, tx: &Sink) {
    let top_bytes = top.as_os_str().as_bytes();
    let before: Vec<i32> = state
        .dirs
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter(|(_, p)| under(top_bytes, p.as_os_str().as_bytes()))
        .map(|(&wd, _)| wd)
        .collect();
    let mut placed = std::collections::HashSet::new();
    state
        .walk
        .watch_tree(top, tx, Backend::Inotify, false, |d| {
            let (r, wd) = place_wd(state, d);
            placed.extend(wd);
            r
        });
    let mut dirs = state.dirs.lock().unwrap_or_else(PoisonError::into_inner);
    for wd in before.into_iter().filter(|wd| !placed.contains(wd)) {
        dirs.remove(&wd);
    }
}

/// One directory's watch, by one system call.
fn place(state: &State, dir: &Path) -> Placed {
    place_wd(state, dir).0
}

/// `place`, with the descriptor placed.
fn place_wd(state: &State, dir: &Path) -> (Placed, Option<i32>) {
    match state.inotify.add_watch(dir, mask()) {
        Ok(wd) => {
            state
                .dirs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(wd.as_raw(), dir.to_path_buf());
            (Placed::Watched, Some(wd.as_raw()))
        }
        Err(Errno::ENOSPC) => (Placed::Limit, None),
        Err(Errno::EACCES | Errno::EPERM) => (Placed::Refused, None),
        Err(_) => (Placed::Gone, None),
    }
}

/// `DirWalk::watch_tree` with this backend's watches.
fn watch_tree(state: &State, top: &Path, tx: &Sink, announce: bool) -> usize {
    state
        .walk
        .watch_tree(top, tx, Backend::Inotify, announce, |d| place(state, d))
}

/// Reads events until `stop` hangs up; a read that fails for good says the watch is lost
/// (`Overflow`: the engine verifies everything) and ends.
fn read_loop(state: &State, root: &Path, tx: &Sink, add: &Adds, gate: &Gate, stop: &OwnedFd) {
    let mut moved_from: Option<Moved> = None;
    loop {
        let mut fds = [
            PollFd::new(state.inotify.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return lost(root, tx),
        }
        if fds[1].any().unwrap_or(true) {
            return;
        }
        // Counted in before the reads, out once what they read is handed over (`Gate`).
        let _round = gate.round();
        loop {
            match state.inotify.read_events() {
                Ok(events) if events.is_empty() => break,
                Ok(events) => {
                    for e in events {
                        translate(state, root, tx, add, &mut moved_from, &e);
                    }
                }
                Err(Errno::EAGAIN | Errno::EINTR) => break,
                Err(_) => return lost(root, tx),
            }
        }
    }
}

fn lost(root: &Path, tx: &Sink) {
    tx.send(ev(FsEventKind::Overflow, root, Some(true)));
}

/// The first half of a move: its cookie, the old path, and whether a directory moved.
struct Moved {
    cookie: u32,
    from: PathBuf,
    is_dir: bool,
}

/// Is `p` `top` or below it (bytes, by whole components)?
fn under(top: &[u8], p: &[u8]) -> bool {
    p.starts_with(top) && (p.len() == top.len() || p[top.len()] == b'/' || top.ends_with(b"/"))
}

/// Gives every watch at or below `from` the path it has below `to` now.
fn rename_watches(state: &State, from: &Path, to: &Path) {
    let (from, to) = (from.as_os_str().as_bytes(), to.as_os_str().as_bytes());
    let mut dirs = state.dirs.lock().unwrap_or_else(PoisonError::into_inner);
    for p in dirs.values_mut() {
        let b = p.as_os_str().as_bytes();
        if under(from, b) {
            let mut n = to.to_vec();
            n.extend_from_slice(&b[from.len()..]);
            *p = PathBuf::from(std::ffi::OsString::from_vec(n));
        }
    }
}

/// Forgets the watches at or below `from` (moved out of the root): their events are dropped
/// from now on. If the directory comes back, the adder watches it again.
fn forget_watches(state: &State, from: &Path) {
    let from = from.as_os_str().as_bytes();
    state
        .dirs
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|_, p| !under(from, p.as_os_str().as_bytes()));
}

/// One inotify event as our events (as the notify backend turns notify's into ours).
fn translate(
    state: &State,
    root: &Path,
    tx: &Sink,
    add: &Adds,
    moved_from: &mut Option<Moved>,
    e: &InotifyEvent,
) {
    let m = e.mask;
    // A directory's move whose second half did not come next left the root (the halves of a
    // move inside it come together unless other processes' events fall between, rarely:
    // then its watches are forgotten and placed again, and the adder announces what it
    // finds).
    let second_half = m.contains(AddWatchFlags::IN_MOVED_TO)
        && moved_from.as_ref().is_some_and(|f| f.cookie == e.cookie);
    if !second_half
        && let Some(Moved {
            from, is_dir: true, ..
        }) = moved_from.take()
    {
        forget_watches(state, &from);
    }
    if m.contains(AddWatchFlags::IN_Q_OVERFLOW) {
        return lost(root, tx);
    }
    let dir = {
        let mut dirs = state.dirs.lock().unwrap_or_else(PoisonError::into_inner);
        if m.contains(AddWatchFlags::IN_IGNORED) {
            // The watch is gone (its directory deleted, or unmounted): its number may be
            // given to another directory from now on.
            dirs.remove(&e.wd.as_raw());
            return;
        }
        match dirs.get(&e.wd.as_raw()) {
            Some(d) => d.clone(),
            None => return,
        }
    };
    let path = match &e.name {
        Some(name) => dir.join(name),
        None => dir,
    };
    let is_dir = m.contains(AddWatchFlags::IN_ISDIR);
    let send = |kind: FsEventKind, p: &Path, is_dir: Option<bool>| {
        if inside(root, p) {
            tx.send(ev(kind, p, is_dir));
        }
    };
    if m.contains(AddWatchFlags::IN_MOVED_FROM) {
        send(FsEventKind::Removed, &path, None);
        *moved_from = Some(Moved {
            cookie: e.cookie,
            from: path.clone(),
            is_dir,
        });
    } else if m.contains(AddWatchFlags::IN_MOVED_TO) {
        send(FsEventKind::Created, &path, None);
        if let Some(Moved { from, is_dir, .. }) = moved_from.take() {
            if is_dir {
                rename_watches(state, &from, &path);
            }
            match (inside(root, &from), inside(root, &path)) {
                (true, true) => tx.send(FsEvent {
                    kind: FsEventKind::Renamed {
                        to: path.as_os_str().as_bytes().to_vec(),
                    },
                    path: from.as_os_str().as_bytes().to_vec(),
                    is_dir: None,
                    backend: Backend::Inotify,
                }),
                (true, false) => tx.send(ev(FsEventKind::Removed, &from, None)),
                (false, true) => tx.send(ev(FsEventKind::Created, &path, None)),
                (false, false) => {}
            }
        }
        add.send(path.clone());
    }
    // Only the root's own move needs its own event: any other directory's parent reported it,
    // and its watch now names the new path.
    if m.contains(AddWatchFlags::IN_MOVE_SELF) && path == root {
        send(FsEventKind::Removed, &path, None);
    }
    if m.contains(AddWatchFlags::IN_CREATE) {
        send(FsEventKind::Created, &path, Some(is_dir));
        if is_dir {
            add.send(path.clone());
        }
    }
    if m.contains(AddWatchFlags::IN_DELETE) {
        send(FsEventKind::Removed, &path, Some(is_dir));
    }
    if m.contains(AddWatchFlags::IN_DELETE_SELF) {
        send(FsEventKind::Removed, &path, Some(true));
    }
    if m.intersects(AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_CLOSE_WRITE) {
        send(FsEventKind::Modified, &path, None);
    }
    if m.contains(AddWatchFlags::IN_ATTRIB) {
        send(FsEventKind::Modified, &path, None);
        // A directory we could not watch may be watchable (and readable) after a chmod. Only
        // those: a watched directory's times or mode changing (rsync sets them on every
        // directory it writes) must not walk its subtree again.
        if is_dir && state.walk.refused(&path) {
            add.send(path);
        }
    }
}

fn ev(kind: FsEventKind, path: &Path, is_dir: Option<bool>) -> FsEvent {
    FsEvent {
        kind,
        path: path.as_os_str().as_bytes().to_vec(),
        is_dir,
        backend: Backend::Inotify,
    }
}
