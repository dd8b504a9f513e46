//! The watch engine: filesystem changes under the root, as `FsEvent`s, from the best backend
//! that starts here (fanotify with a filesystem mark, else inotify, else the `notify` crate),
//! through the `DirtyQueue` that coalesces them into batches.
//!
//! Events only say *where* to look; whoever applies them re-reads the current state. A backend
//! that loses events (queue overflow, watch limit) says so with `Overflow`/`Rescan`, never
//! silently.

mod dir_walk;
pub mod fanotify;
mod inotify_backend;
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
    /// Moved from `path` to `to` (both inside the root).
    Renamed {
        to: Vec<u8>,
    },
    /// The backend lost events: everything under the root must be verified.
    Overflow,
    /// This subtree must be verified (a watch could not be placed, a handle could not be
    /// resolved); the engine verifies it again now and then, as long as it runs.
    Rescan,
    /// This directory moved here and its watches have just been placed again: verify its
    /// subtree once (`notify`, whose events in a moved tree name the old path until then).
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
}

impl Sink {
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
    /// The backend's own handle: dropping it stops the backend.
    _inner: Box<dyn Send>,
    /// A fanotify filesystem mark sees only the root's filesystem: filesystems mounted inside
    /// the root get a notify watch each (`refresh_mounts` follows `/proc/self/mountinfo`).
    nested: Option<Nested>,
}

struct Nested {
    root: PathBuf,
    sink: Sink,
    root_dev: u64,
    watches: Vec<(PathBuf, DirWatch)>,
}

impl Watcher {
    /// Were events dropped because the consumer did not keep up (since the last call)? If so,
    /// everything under the root must be verified.
    #[must_use]
    pub fn take_lost(&self) -> bool {
        self.lost.swap(false, std::sync::atomic::Ordering::SeqCst)
    }

    /// Follows the mounts inside the root: a new one gets a watch, and a `Rescan` of its mount
    /// point (what was there before is covered now); one that went away loses its watch and
    /// is verified the same way. Cheap when nothing changed (one read of mountinfo).
    pub fn refresh_mounts(&mut self) {
        self.follow_mounts(true);
    }

    fn follow_mounts(&mut self, announce: bool) {
        let Some(n) = &mut self.nested else {
            return;
        };
        let now = nested_mounts(&n.root, n.root_dev);
        let mut changed = Vec::new();
        n.watches.retain(|(p, _)| {
            let keep = now.contains(p);
            if !keep {
                changed.push(p.clone());
            }
            keep
        });
        for p in now {
            if n.watches.iter().any(|(w, _)| *w == p) {
                continue;
            }
            if let Ok(w) = DirWatch::start(&p, n.sink.clone()) {
                n.watches.push((p.clone(), w));
            }
            changed.push(p);
        }
        for p in changed.into_iter().filter(|_| announce) {
            n.sink.send(FsEvent {
                kind: FsEventKind::Rescan,
                path: std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()).to_vec(),
                is_dir: Some(true),
                backend: Backend::Inotify,
            });
        }
    }
}

/// A watch per directory of a tree: inotify directly, or the `notify` crate where inotify
/// itself cannot start (its instance limit) but notify might say why better.
pub(crate) enum DirWatch {
    Inotify(#[expect(dead_code, reason = "held for its Drop")] inotify_backend::InotifyWatch),
    Notify(#[expect(dead_code, reason = "held for its Drop")] notify_backend::NotifyWatch),
}

impl DirWatch {
    pub(crate) fn start(root: &Path, tx: Sink) -> Result<DirWatch, WatchError> {
        inotify_backend::InotifyWatch::start(root, tx.clone())
            .map(DirWatch::Inotify)
            .or_else(|_| notify_backend::NotifyWatch::start(root, tx).map(DirWatch::Notify))
    }
}

/// Mount points strictly inside `root` whose filesystem is not the root's (from
/// `/proc/self/mountinfo`; its escapes `\040` and the like decoded).
fn nested_mounts(root: &Path, root_dev: u64) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let Ok(text) = std::fs::read("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let Some(field) = line.split(|&b| b == b' ').nth(4) else {
            continue;
        };
        let p = PathBuf::from(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&unescape_mountinfo(
                field,
            )),
        );
        if crate::path::is_strictly_within(root, &p)
            && std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir() && m.dev() != root_dev)
            && !out.contains(&p)
        {
            out.push(p);
        }
    }
    out
}

fn unescape_mountinfo(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && i + 3 < s.len()
            && s[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((s[i + 1] - b'0') * 64 + (s[i + 2] - b'0') * 8 + (s[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
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
    };
    let nested_sink = tx.clone();
    let mut w = start_backend(root, choice, tx)?;
    w.lost = lost;
    if w.reason.starts_with("fanotify filesystem mark") {
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = std::fs::symlink_metadata(root) {
            w.nested = Some(Nested {
                root: root.to_path_buf(),
                sink: nested_sink,
                root_dev: m.dev(),
                watches: Vec::new(),
            });
            // The first scan reads what is mounted now: nothing to announce.
            w.follow_mounts(false);
        }
    }
    Ok(w)
}

fn start_backend(root: &Path, choice: Choice, tx: Sink) -> Result<Watcher, WatchError> {
    let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let fanotify = |tx: Sink| -> Result<(Box<dyn Send>, String), WatchError> {
        match fanotify::FanotifyWatch::start(root, tx.clone()) {
            Ok(w) => Ok((Box::new(w), "fanotify filesystem mark".into())),
            Err(a) => match fanotify::FanotifyMountWatch::start(root, tx) {
                Ok(w) => Ok((
                    Box::new(w),
                    format!("fanotify mount mark + inotify (tier b; {a})"),
                )),
                Err(b) => Err(WatchError::Fanotify {
                    path: root.to_path_buf(),
                    why: format!("{}; {}", reason_of(&a), reason_of(&b)),
                }),
            },
        }
    };
    match choice {
        Choice::Fanotify => {
            let (w, reason) = fanotify(tx)?;
            Ok(Watcher {
                backend: Backend::Fanotify,
                reason,
                lost,
                _inner: w,
                nested: None,
            })
        }
        Choice::FanotifyMount => {
            let w = fanotify::FanotifyMountWatch::start(root, tx)?;
            Ok(Watcher {
                backend: Backend::Fanotify,
                reason: "fanotify mount mark + inotify (tier b requested)".into(),
                lost,
                _inner: Box::new(w),
                nested: None,
            })
        }
        Choice::Inotify => {
            let w = inotify_backend::InotifyWatch::start(root, tx)?;
            Ok(Watcher {
                backend: Backend::Inotify,
                reason: "inotify requested".into(),
                lost,
                _inner: Box::new(w),
                nested: None,
            })
        }
        Choice::Notify => {
            let w = notify_backend::NotifyWatch::start(root, tx)?;
            Ok(Watcher {
                backend: Backend::Notify,
                reason: "notify requested".into(),
                lost,
                _inner: Box::new(w),
                nested: None,
            })
        }
        Choice::Auto => match fanotify(tx.clone()) {
            Ok((w, reason)) => Ok(Watcher {
                backend: Backend::Fanotify,
                reason,
                lost,
                _inner: w,
                nested: None,
            }),
            Err(e) => match inotify_backend::InotifyWatch::start(root, tx.clone()) {
                Ok(w) => Ok(Watcher {
                    backend: Backend::Inotify,
                    reason: format!("fell back to inotify: {e}"),
                    lost,
                    _inner: Box::new(w),
                    nested: None,
                }),
                Err(i) => {
                    let w = notify_backend::NotifyWatch::start(root, tx)?;
                    Ok(Watcher {
                        backend: Backend::Notify,
                        reason: format!("fell back to notify: {e}; {i}"),
                        lost,
                        _inner: Box::new(w),
                        nested: None,
                    })
                }
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
    use queue::kinds;
    let mut rows = Vec::new();
    for c in &batch.changes {
        let backend = c.backend.name();
        for (bit, kind) in [
            (kinds::CREATED, "create"),
            (kinds::MODIFIED, "modify"),
            (kinds::REMOVED, "remove"),
            (kinds::RESCAN, "rescan"),
            (kinds::REREAD, "reread"),
        ] {
            if c.kinds & bit != 0 {
                rows.push(crate::store::LogRow {
                    kind,
                    path: c.path.clone(),
                    path2: None,
                    backend,
                    bytes: None,
                });
            }
        }
        if c.kinds & kinds::RENAMED_FROM != 0 {
            rows.push(crate::store::LogRow {
                kind: "rename",
                path: c.path.clone(),
                path2: c.to.clone(),
                backend,
                bytes: None,
            });
        }
    }
    let backend = batch.changes.first().map_or("", |c| c.backend.name());
    for d in &batch.dirty_dirs {
        rows.push(crate::store::LogRow {
            kind: "dirty-dir",
            path: d.clone(),
            path2: None,
            backend,
            bytes: None,
        });
    }
    if batch.rescan_root {
        rows.push(crate::store::LogRow {
            kind: "rescan-root",
            path: Vec::new(),
            path2: None,
            backend,
            bytes: None,
        });
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
