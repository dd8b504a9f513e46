//! The watch engine: filesystem changes under the root, as `FsEvent`s, from the best backend
//! that starts here (fanotify with a filesystem mark, else inotify, else the `notify` crate),
//! through the `DirtyQueue` that coalesces them into batches.
//!
//! Events only say *where* to look; whoever applies them re-reads the current state. A backend
//! that loses events (queue overflow, watch limit) says so with `Overflow`/`Rescan`, never
//! silently.

mod dir_walk;
pub mod fanotify;
mod gate;
mod inotify_backend;
mod mounts;
mod notify_backend;
pub mod queue;

use std::path::{Path, PathBuf};

use crossbeam_channel::Sender;

pub use queue::{Batch, DirtyQueue, QueueLimits};

/// Which backend produced an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Fanotify,
    /// inotify directly, a watch per directory (`inotify_backend`).
    Inotify,
    Notify,
    /// This process itself (a delete or a move to the trash from the browser), told to the
    /// engine directly: fanotify does not report its own process's changes.
    User,
}

impl Backend {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Backend::Fanotify => "fanotify",
            Backend::Inotify => "inotify",
            Backend::Notify => "notify",
            Backend::User => "user",
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsEventKind {
    Created,
    /// Content or metadata changed (write, truncate, close after write, chmod).
    Modified,
    Removed,
    /// Moved from `path` (inside the root) to a place outside it or one the backend could not
    /// resolve: a removal, with the kernel's handle of what moved (fanotify), by which the
    /// applier stats it where it went. A hard link made in the root and moved out before the
    /// batch (`ln a b; mv b /elsewhere`) changed the link count of the names left inside, and
    /// no event names them (`engine::apply::links`).
    MovedOut {
        handle: Box<[u8]>,
    },
    /// Moved from `path` to `to` (both inside the root).
    Renamed {
        to: Vec<u8>,
    },
    /// The backend lost events: everything under the root must be verified.
    Overflow,
    /// This subtree must be verified (a watch could not be placed, a handle could not be
    /// resolved); the engine verifies it again now and then, as long as it runs.
    Rescan,
    /// The watches at this path have just been placed again: settle it in its parent (a
    /// node of another identity is replaced, its subtree read whole) and otherwise verify its
    /// subtree once. Sent for a directory that moved here (`notify`, whose events in a moved
    /// tree name the old path until then) and for a mount point whose filesystem changed (a
    /// mount or an unmount there, `mounts.rs`).
    Reread,
}

/// One change under the root: an absolute path (raw bytes), whether it is a directory when the
/// backend knows, and which backend saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsEvent {
    pub kind: FsEventKind,
    pub path: Vec<u8>,
    pub is_dir: Option<bool>,
    pub backend: Backend,
}

/// Where backends put events: a channel bounded at `CHANNEL_CAPACITY` waiting events, so a
/// stalled consumer cannot make memory grow without end. An event that does not fit is
/// dropped and `lost` is set: the consumer must then verify the whole root
/// (`Watcher::take_lost`). The bound is counted, not preallocated: a preallocated array of
/// 65,536 slots (4 MiB, each slot written at creation) cost every start 2 ms before the
/// first frame.
#[derive(Clone)]
pub struct Sink {
    tx: Sender<FsEvent>,
    lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The readers' gates, for `Watcher::settle`.
    gates: gate::Gates,
}

impl Sink {
    /// Where each reader of a kernel queue (and each thread working for one) registers its
    /// gate, before it starts.
    pub(crate) fn gates(&self) -> &gate::Gates {
        &self.gates
    }

    pub fn send(&self, ev: FsEvent) {
        // Several backends' threads may send at once: the bound may be passed by a few
        // events, never by more than one per sender.
        if self.tx.len() >= CHANNEL_CAPACITY {
            self.lost.store(true, std::sync::atomic::Ordering::SeqCst);
        } else {
            // Sending fails only when the consumer is gone, and then nothing is watching.
            let _ = self.tx.send(ev);
        }
    }
}

/// How many events may wait between a backend and its consumer.
pub const CHANNEL_CAPACITY: usize = 65_536;

/// `DISKTRACKER_WATCH_BACKEND` / `--watch-backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Auto,
    /// inotify directly, a watch per directory.
    Inotify,
    /// The portable `notify` crate (inotify underneath here, one round trip per watch).
    Notify,
    /// Tier (a), the filesystem mark; if refused, tier (b).
    Fanotify,
    /// Tier (b) forced: a mount mark for writes, notify for the rest.
    FanotifyMount,
}

impl std::str::FromStr for Choice {
    type Err = String;
    fn from_str(s: &str) -> Result<Choice, String> {
        match s {
            "auto" => Ok(Choice::Auto),
            "inotify" => Ok(Choice::Inotify),
            "notify" => Ok(Choice::Notify),
            "fanotify" => Ok(Choice::Fanotify),
            "fanotify-mount" => Ok(Choice::FanotifyMount),
            other => Err(format!(
                "unknown watch backend {other:?} (auto, inotify, notify, fanotify or fanotify-mount)"
            )),
        }
    }
}

impl Choice {
    /// The flag if given, else `DISKTRACKER_WATCH_BACKEND`, else `auto`.
    pub fn resolve(flag: Option<Choice>) -> Result<Choice, String> {
        if let Some(c) = flag {
            return Ok(c);
        }
        match std::env::var("DISKTRACKER_WATCH_BACKEND") {
            Ok(v) if !v.is_empty() => v.parse(),
            _ => Ok(Choice::Auto),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("fanotify cannot watch {}: {why}", crate::path::display_path(.path))]
    Fanotify { path: PathBuf, why: String },
    #[error("cannot watch {}: {why}", crate::path::display_path(.path))]
    Notify { path: PathBuf, why: String },
}

/// A running watch; dropping it stops the backend.
pub struct Watcher {
    pub backend: Backend,
    /// Why this backend (e.g. why fanotify was not used).
    pub reason: String,
    lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The thread that follows mounts inside the root (`mounts.rs`); `None` if the mount
    /// table could not be read (`reason` then says so). Declared first, so dropped first: it
    /// calls into the backend.
    follower: Option<mounts::Follower>,
    /// The backend's own handle: dropping it stops the backend.
    _inner: Box<dyn Send>,
    gates: gate::Gates,
}

impl Watcher {
    /// Were events dropped because the consumer did not keep up (since the last call)? If so,
    /// everything under the root must be verified.
    #[must_use]
    pub fn take_lost(&self) -> bool {
        self.lost.swap(false, std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until every event the kernel had queued for this watch when called has been
    /// read and handed to the channel (at most `within`; whether it has). With `notify`,
    /// whose reader thread is the crate's, nothing is waited for.
    #[must_use]
    pub fn settle(&self, within: std::time::Duration) -> bool {
        self.gates.settle(within)
    }
}

/// Walks a directory again after the filesystem seen there changed (a mount or an unmount
/// there), so that what is there now is watched; see each backend's `rewatcher`.
pub(crate) type Rewatch = std::sync::Arc<dyn Fn(&Path) + Send + Sync>;

/// What a backend needs when mounts inside the root change.
enum Follow {
    /// A fanotify filesystem mark sees only the root's filesystem: one mounted inside needs
    /// watches of its own (`nested_watches`).
    Nested,
    /// A watch per directory: walk the mount point again.
    Rewatch(Rewatch),
}

/// A watch per directory of a tree: inotify directly, or the `notify` crate where inotify
/// itself cannot start (its instance limit) but notify might say why better.
pub(crate) enum DirWatch {
    Inotify(inotify_backend::InotifyWatch),
    Notify(notify_backend::NotifyWatch),
}

impl DirWatch {
    pub(crate) fn start(root: &Path, tx: Sink) -> Result<DirWatch, WatchError> {
        inotify_backend::InotifyWatch::start(root, tx.clone())
            .map(DirWatch::Inotify)
            .or_else(|_| notify_backend::NotifyWatch::start(root, tx).map(DirWatch::Notify))
    }

    pub(crate) fn rewatcher(&self) -> Rewatch {
        match self {
            DirWatch::Inotify(w) => w.rewatcher(),
            DirWatch::Notify(w) => w.rewatcher(),
        }
    }
}

/// The fanotify filesystem mark's part in following mounts: every filesystem mounted inside
/// the root (another device than the root's) gets a watch per directory (`DirWatch`) while it
/// is mounted, dropped when it goes; a mount or unmount below such a filesystem's mount point
/// has that watch walk the place again. An unmount needs nothing more: what it uncovers is on
/// the filesystems watched already.
fn nested_watches(root: &Path, now: &[mounts::Mount], tx: Sink) -> mounts::OnChange {
    use std::os::unix::fs::MetadataExt;
    let root_dev = std::fs::symlink_metadata(root).map_or(0, |m| m.dev());
    let mut watches: Vec<(mounts::Mount, DirWatch)> = Vec::new();
    let mut sync = move |points: &[PathBuf], now: &[mounts::Mount]| {
        for p in points {
            for (m, w) in &watches {
                if crate::path::is_strictly_within(&m.point, p) {
                    w.rewatcher()(p);
                }
            }
        }
        watches.retain(|(m, _)| now.contains(m));
        for m in now {
            if watches.iter().any(|(w, _)| w == m)
                || !std::fs::symlink_metadata(&m.point)
                    .is_ok_and(|s| s.is_dir() && s.dev() != root_dev)
            {
                continue;
            }
            if let Ok(w) = DirWatch::start(&m.point, tx.clone()) {
                watches.push((m.clone(), w));
            }
        }
    };
    // What is mounted now is read by the first scan: watched, not announced.
    sync(&[], now);
    Box::new(sync)
}

/// The channel for `start` (see `Sink` for its bound).
#[must_use]
pub fn channel() -> (Sender<FsEvent>, crossbeam_channel::Receiver<FsEvent>) {
    crossbeam_channel::unbounded()
}

/// Starts watching `root` (canonical) with the chosen backend; events go to `tx` (make it with
/// `channel`). `Auto` takes fanotify when it starts and falls back to notify, saying why.
pub fn start(root: &Path, choice: Choice, tx: Sender<FsEvent>) -> Result<Watcher, WatchError> {
    let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tx = Sink {
        tx,
        lost: std::sync::Arc::clone(&lost),
        gates: gate::Gates::default(),
    };
    // Opened before the backend places its watches: a mount made from now on is seen.
    let table = mounts::Table::open(root);
    let (mut w, follow) = start_backend(root, choice, tx.clone())?;
    w.lost = lost;
    let followed = table.and_then(|table| {
        let on_change = match follow {
            Follow::Nested => nested_watches(root, &table.mounts, tx.clone()),
            Follow::Rewatch(r) => Box::new(move |points: &[PathBuf], _: &[mounts::Mount]| {
                for p in points {
                    r(p);
                }
            }),
        };
        mounts::Follower::start(table, tx, w.backend, on_change)
    });
    match followed {
        Ok(f) => w.follower = Some(f),
        Err(e) => {
            use std::fmt::Write as _;
            let _ = write!(w.reason, "; mounts inside the root are not followed ({e})");
        }
    }
    Ok(w)
}

fn start_backend(root: &Path, choice: Choice, tx: Sink) -> Result<(Watcher, Follow), WatchError> {
    let gates = tx.gates().clone();
    let watcher = |backend: Backend, reason: String, inner: Box<dyn Send>| Watcher {
        backend,
        reason,
        lost: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        _inner: inner,
        follower: None,
        gates: gates.clone(),
    };
    let fanotify = |tx: Sink| -> Result<(Watcher, Follow), WatchError> {
        match fanotify::FanotifyWatch::start(root, tx.clone()) {
            Ok(w) => Ok((
                watcher(
                    Backend::Fanotify,
                    "fanotify filesystem mark".into(),
                    Box::new(w),
                ),
                Follow::Nested,
            )),
            Err(a) => match fanotify::FanotifyMountWatch::start(root, tx) {
                Ok(w) => {
                    let follow = Follow::Rewatch(w.rewatcher());
                    let reason = format!("fanotify mount mark + inotify (tier b; {a})");
                    Ok((watcher(Backend::Fanotify, reason, Box::new(w)), follow))
                }
                Err(b) => Err(WatchError::Fanotify {
                    path: root.to_path_buf(),
                    why: format!("{}; {}", reason_of(&a), reason_of(&b)),
                }),
            },
        }
    };
    let inotify = |tx: Sink, reason: String| {
        inotify_backend::InotifyWatch::start(root, tx).map(|w| {
            let follow = Follow::Rewatch(w.rewatcher());
            (watcher(Backend::Inotify, reason, Box::new(w)), follow)
        })
    };
    let notify = |tx: Sink, reason: String| {
        notify_backend::NotifyWatch::start(root, tx).map(|w| {
            let follow = Follow::Rewatch(w.rewatcher());
            (watcher(Backend::Notify, reason, Box::new(w)), follow)
        })
    };
    match choice {
        Choice::Fanotify => fanotify(tx),
        Choice::FanotifyMount => {
            let w = fanotify::FanotifyMountWatch::start(root, tx)?;
            let follow = Follow::Rewatch(w.rewatcher());
            let reason = "fanotify mount mark + inotify (tier b requested)".into();
            Ok((watcher(Backend::Fanotify, reason, Box::new(w)), follow))
        }
        Choice::Inotify => inotify(tx, "inotify requested".into()),
        Choice::Notify => notify(tx, "notify requested".into()),
        Choice::Auto => match fanotify(tx.clone()) {
            Ok(w) => Ok(w),
            Err(e) => match inotify(tx.clone(), format!("fell back to inotify: {e}")) {
                Ok(w) => Ok(w),
                Err(i) => notify(tx, format!("fell back to notify: {e}; {i}")),
            },
        },
    }
}

fn reason_of(e: &WatchError) -> String {
    match e {
        WatchError::Fanotify { why, .. } | WatchError::Notify { why, .. } => why.clone(),
    }
}

/// Is `path` the root or inside it (by components)?
pub(crate) fn inside(root: &Path, path: &Path) -> bool {
    crate::path::is_within(root, path)
}

/// A batch as `mutation_log` rows.
#[must_use]
pub fn log_rows(batch: &Batch) -> Vec<crate::store::LogRow> {
    use crate::store::{LogKind, LogRow};
    use queue::kinds;
    let mut rows = Vec::new();
    for c in &batch.changes {
        let backend = c.backend.name();
        for (bit, kind) in [
            (kinds::CREATED, LogKind::Create),
            (kinds::MODIFIED, LogKind::Modify),
            (kinds::REMOVED, LogKind::Remove),
            (kinds::RESCAN, LogKind::Rescan),
            (kinds::REREAD, LogKind::Reread),
        ] {
            if c.kinds & bit != 0 {
                rows.push(LogRow::seen(kind, c.path.clone(), backend));
            }
        }
        if c.kinds & kinds::RENAMED_FROM != 0 {
            rows.push(LogRow::renamed(c.path.clone(), c.to.clone(), backend));
        }
    }
    let backend = batch.changes.first().map_or("", |c| c.backend.name());
    for d in &batch.dirty_dirs {
        rows.push(LogRow::seen(LogKind::DirtyDir, d.clone(), backend));
    }
    if batch.rescan_root {
        rows.push(LogRow::seen(LogKind::RescanRoot, Vec::new(), backend));
    }
    rows
}

/// One line for a batch: its id, size, and its first few paths relative to the root.
#[must_use]
pub fn describe(batch: &Batch, root: &Path) -> String {
    use queue::kinds;
    use std::fmt::Write as _;
    use std::os::unix::ffi::OsStrExt;
    let rel = |p: &[u8]| -> String {
        let path = Path::new(std::ffi::OsStr::from_bytes(p));
        let shown = path.strip_prefix(root).unwrap_or(path);
        let s = crate::path::display_name(shown.as_os_str().as_bytes());
        if s.is_empty() { ".".into() } else { s }
    };
    let mut line = format!(
        "batch {}: {} events, {} paths",
        batch.id,
        batch.events,
        batch.changes.len()
    );
    if !batch.dirty_dirs.is_empty() {
        let _ = write!(line, ", {} dirty directories", batch.dirty_dirs.len());
    }
    if batch.rescan_root {
        line.push_str(", RESCAN of the root");
    }
    for c in batch.changes.iter().take(8) {
        let sign = if c.kinds & (kinds::RESCAN | kinds::REREAD) != 0 {
            "!"
        } else if c.kinds & kinds::RENAMED_FROM != 0 {
            ""
        } else if c.kinds & (kinds::CREATED | kinds::RENAMED_TO) != 0
            && c.kinds & kinds::REMOVED == 0
        {
            "+"
        } else if c.kinds & kinds::REMOVED != 0 && c.kinds & kinds::CREATED == 0 {
            "-"
        } else {
            "~"
        };
        match &c.to {
            Some(to) if c.kinds & kinds::RENAMED_FROM != 0 => {
                let _ = write!(line, "  {}->{}", rel(&c.path), rel(to));
            }
            _ => {
                let _ = write!(line, "  {sign}{}", rel(&c.path));
            }
        }
    }
    if batch.changes.len() > 8 {
        let _ = write!(line, "  (+{} more)", batch.changes.len() - 8);
    }
    line
}
