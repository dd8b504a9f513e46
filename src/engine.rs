//! The engine: the one owner of a root's session. Its thread owns the cache session (so it is
//! the only writer of the tree), the watcher, the `DirtyQueue` and the store handle; the
//! browser and every headless command (`scan`, `export`, `watch`, `reconcile`) are its clients.
//! It knows nothing of terminals.
//!
//! `Engine::start` watches first, then opens the tree (cache or root only) on the caller's
//! thread, which is quick, and hands the rest to its thread: the first scan or the catch-up
//! runs on a worker while events queue up, then every released batch is applied in
//! O(changes) (`apply`), persisted as one transaction with its `mutation_log` rows, and
//! announced once as `EngineMsg::Applied` with the nodes it touched. A lost event (queue
//! overflow) marks the tree stale and is re-verified by a parallel catch-up, with backoff.

mod apply;
mod session;
mod wait;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, never, select};

pub use apply::{ChangeKind, ChangeLine};
pub use wait::FirstPass;

use crate::cache::{CacheOptions, OpenError, Origin, Saved};
use crate::fs::{self, FsError, Reopener, RootDir, sys};
use crate::reconcile::{self, ReconcileStats, Trust};
use crate::scan::{self, Progress, ScanError, ScanOptions, ScanStats};
use crate::store::writer::DISK_FULL;
use crate::store::{CacheBudget, LogBatch, Retention};
use crate::tree::{self, NodeId, NodeRef, Tree, flags};
use crate::watch::{self, Backend, Batch, Choice, DirtyQueue, FsEvent, FsEventKind, QueueLimits};
use session::Session;

/// Where the tree stands against the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The first scan is running: the tree is incomplete and growing.
    Scanning,
    /// Loaded from the cache, not verified (or events were lost and it is not re-verified).
    Stale,
    /// A catch-up or re-verification is running.
    Verifying,
    /// Scanned or verified, and not watched.
    Fresh,
    /// Verified and kept current by a watcher.
    Live,
}

/// How to run an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub cache: CacheOptions,
    pub scan: ScanOptions,
    /// Watch the tree and apply its changes (`None`: a snapshot, not watched).
    pub watch: Option<Choice>,
    /// Fail to start when the watcher cannot start (else go on unwatched and say why).
    pub watch_required: bool,
    /// Catch up after loading the cache (`--no-catch-up` turns it off).
    pub catch_up: bool,
    pub retention: Retention,
    /// How many bytes the cache may take on disk (`--cache-max-bytes`).
    pub cache_budget: CacheBudget,
    pub limits: QueueLimits,
    /// Start the watch and the first pass only once the client says the tree is on screen
    /// (`Engine::shown`, or after `HOLD_AT_MOST`): on two cores, a catch-up's threads
    /// starting with the first frame delay it, and the terminal that draws it.
    pub hold_until_shown: bool,
}

impl EngineOptions {
    #[must_use]
    pub fn new(cache: CacheOptions, scan: ScanOptions) -> EngineOptions {
        EngineOptions {
            cache,
            scan,
            watch: None,
            watch_required: false,
            catch_up: true,
            retention: Retention::default(),
            cache_budget: CacheBudget::Auto,
            limits: QueueLimits::default(),
            hold_until_shown: false,
        }
    }

    /// The same, with the cache kept within `budget`.
    #[must_use]
    pub fn with_cache_budget(mut self, budget: CacheBudget) -> EngineOptions {
        self.cache_budget = budget;
        self
    }
}

/// What one applied batch (or reconcile) changed in the tree: sent once to every listener.
#[derive(Debug, Clone, Default)]
pub struct TreeDelta {
    /// The tree's generation after it.
    pub generation: u64,
    /// The watch batch it came from (0 for a reconcile).
    pub batch: u64,
    /// Raw events folded into it.
    pub events: u64,
    /// Nodes written (the changed entries and their ancestors) or freed.
    pub touched: Vec<NodeRef>,
    pub lines: Vec<ChangeLine>,
    pub elapsed: Duration,
}

/// Messages from the engine.
#[derive(Debug, Clone)]
pub enum EngineMsg {
    /// The watch asked for started (which backend, and why that one), or could not (why).
    /// Sent before the first pass starts, so before `Ready`.
    Watching(Result<String, String>),
    ScanDone(ScanStats),
    CatchUpDone(ReconcileStats),
    /// The first pass (scan or catch-up) is over: the tree is as complete as it will be.
    Ready,
    Applied(TreeDelta),
    /// A reconcile asked for with `Engine::reconcile` is done.
    Reconciled(ReconcileStats),
    /// The tree may be out of date (why); a re-verification follows when it can.
    Stale(String),
    /// The worker could not finish (the tree keeps what it had).
    Failed(String),
    /// The cache is saved again after its filesystem was full (the tree was not: nothing of
    /// it was lost; the state word said `stale: cache not saved (disk full)` meanwhile).
    CacheSaved,
}

enum EngineCmd {
    Reconcile {
        dir: Option<NodeRef>,
        full: bool,
    },
    User(Vec<UserChange>),
    Shutdown(Sender<Saved>),
    /// The client's first frame is on screen (see `EngineOptions::hold_until_shown`).
    Shown,
}

/// What this process changed itself under the root (a delete, a move to or from the trash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChangeKind {
    /// Gone (with everything below it).
    Removed,
    /// Appeared (a directory is scanned whole).
    Created,
    /// Partly changed: verify its subtree (a delete that left some of it).
    Verify,
}

/// One change this process made, told to the engine directly: fanotify does not report its
/// own process's changes, and the tree must show them at once anyway. Applied as a watch
/// batch is, and logged in `mutation_log` with backend `user` and the bytes it freed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserChange {
    pub kind: UserChangeKind,
    /// Absolute.
    pub path: PathBuf,
    /// Disk space freed (for a removal).
    pub bytes: Option<u64>,
}

/// A handle another thread (a delete worker) tells the engine its changes with.
#[derive(Clone)]
pub struct UserChanges(Sender<EngineCmd>);

impl UserChanges {
    /// Hands the engine paths it must re-read now; answered by `EngineMsg::Applied`.
    pub fn send(&self, changes: Vec<UserChange>) {
        if !changes.is_empty() {
            let _ = self.0.send(EngineCmd::User(changes));
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Watch(#[from] watch::WatchError),
    #[error("cannot start a thread: {0} (a limit on threads or memory)")]
    Thread(std::io::Error),
}

pub struct Engine {
    pub tree: Arc<RwLock<Tree>>,
    /// The root as the session opened it (every fd-relative open below it starts here).
    pub root_dir: Arc<RootDir>,
    pub progress: Arc<Progress>,
    pub origin: Origin,
    pub root: PathBuf,
    /// Warnings from opening the cache, for the user.
    pub warnings: Vec<String>,
    /// The watch backend and why, when it was required and so started by `start` (`None`:
    /// not required, or not asked for; the worker then reports it as `EngineMsg::Watching`).
    pub watching: Option<Result<String, String>>,
    /// Where this session's size history is (None without a cache).
    pub history: Option<crate::history::HistorySource>,
    freshness: Arc<AtomicU8>,
    cmd: Sender<EngineCmd>,
    worker: Option<JoinHandle<()>>,
}

impl Engine {
    /// Opens `path` through its cache and starts, in the background, the watch (if asked) and
    /// then the first scan or the catch-up. With `opts.watch_required` the watch is started
    /// here, before anything else, and its failure is this call's error.
    pub fn start(
        path: &Path,
        opts: EngineOptions,
        msgs: Sender<EngineMsg>,
    ) -> Result<Engine, EngineError> {
        // Watch first, then scan or catch up: nothing falls between. Loading the cache reads
        // no directory, so the browser's first frame need not wait for the watch (a recursive
        // notify watch of a large tree takes seconds, and fanotify's handle table walks every
        // directory): the worker starts it before its first pass.
        let (watcher, events, watching) = match opts.watch {
            Some(choice) if opts.watch_required => {
                let (tx, rx) = watch::channel();
                let w = watch::start(&fs::resolve_root(path)?, choice, tx)?;
                let what = watch_name(&w);
                (Some(w), rx, Some(Ok(what)))
            }
            _ => (None, never(), None),
        };
        let pending_watch = if watcher.is_none() { opts.watch } else { None };
        let mut session = Session::prepare(path, &opts.cache, opts.cache_budget)?;
        if opts.catch_up || opts.watch.is_some() || session.needs_scan() {
            session.begin_history();
        }
        // A first scan writes every node: recording each one in the change set cost ~9 % of
        // the scan's CPU, under the tree's lock, for rows the snapshot writes anyway. Tracking
        // starts once it is done (`first_pass`).
        if !session.needs_scan() {
            tree::write(&session.tree).track_changes();
        }
        let tree = Arc::clone(&session.tree);
        let origin = session.origin.clone();
        let warnings = session.warnings.clone();
        let root = session.root().path.clone();
        let history = session.history_source();
        let root_dir = Arc::clone(session.root());
        let progress = Arc::new(Progress::new());
        let initial = if session.needs_scan() {
            Freshness::Scanning
        } else {
            Freshness::Stale
        };
        let freshness = Arc::new(AtomicU8::new(initial as u8));
        let (cmd_tx, cmd_rx) = bounded(16);
        let worker = {
            let w = Worker {
                own_files: session.cache_dir().map(Path::to_path_buf),
                root: Arc::clone(session.root()),
                session,
                watcher,
                events,
                pending_watch,
                cmds: cmd_rx,
                msgs,
                queue: DirtyQueue::new(opts.limits),
                opts,
                progress: Arc::clone(&progress),
                freshness: Arc::clone(&freshness),
                shutdown: None,
                next_root_rescan: Instant::now(),
                rescan_backoff: Duration::ZERO,
                unwatched: Vec::new(),
                last_unwatched: Instant::now(),
                last_root_check: Instant::now(),
                root_gone: false,
                cache_full: false,
                other_reason: std::cell::Cell::new(false),
                user: Vec::new(),
            };
            std::thread::Builder::new()
                .name("dtui-engine".into())
                .spawn(move || w.run())
                .map_err(EngineError::Thread)?
        };
        Ok(Engine {
            tree,
            root_dir,
            progress,
            origin,
            root,
            warnings,
            watching,
            history,
            freshness,
            cmd: cmd_tx,
            worker: Some(worker),
        })
    }

    /// A reader of the freshness for another thread.
    pub fn freshness_handle(&self) -> impl Fn() -> Freshness + Send + 'static {
        let f = Arc::clone(&self.freshness);
        move || from_u8(f.load(Ordering::Relaxed))
    }

    #[must_use]
    pub fn freshness(&self) -> Freshness {
        from_u8(self.freshness.load(Ordering::Relaxed))
    }

    /// Asks for a reconcile of one directory's subtree (`None`: everything). `full` re-reads
    /// every directory whatever its times say. Answered by `EngineMsg::Reconciled`.
    pub fn reconcile(&self, dir: Option<NodeRef>, full: bool) {
        let _ = self.cmd.try_send(EngineCmd::Reconcile { dir, full });
    }

    /// Tells the engine the tree is on screen: with `hold_until_shown`, its work starts now.
    pub fn shown(&self) {
        let _ = self.cmd.try_send(EngineCmd::Shown);
    }

    /// A handle to tell the engine what this process changed under the root.
    #[must_use]
    pub fn user_changes(&self) -> UserChanges {
        UserChanges(self.cmd.clone())
    }

    /// Stops what is running (a first scan is cancelled, not saved), applies what is queued,
    /// and closes the cache session.
    #[must_use]
    pub fn shutdown(mut self) -> Saved {
        let (tx, rx) = bounded(1);
        let _ = self.cmd.send(EngineCmd::Shutdown(tx));
        let saved = rx.recv().unwrap_or(Saved::NoCache);
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        saved
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(w) = self.worker.take() {
            self.progress.cancel();
            let (tx, _rx) = bounded(1);
            let _ = self.cmd.send(EngineCmd::Shutdown(tx));
            let _ = w.join();
        }
    }
}

fn from_u8(v: u8) -> Freshness {
    match v {
        0 => Freshness::Scanning,
        1 => Freshness::Stale,
        2 => Freshness::Verifying,
        3 => Freshness::Fresh,
        _ => Freshness::Live,
    }
}

/// A started watch, as the user is told: its backend and why that one.
fn watch_name(w: &watch::Watcher) -> String {
    format!("{} ({})", w.backend.name(), w.reason)
}

/// How long the engine waits for a client's first frame (`hold_until_shown`).
const HOLD_AT_MOST: Duration = Duration::from_millis(500);
/// How often directories a watch could not cover are verified again.
const UNWATCHED_EVERY: Duration = Duration::from_secs(30);
/// How often the root itself is checked (moved away or deleted).
const ROOT_CHECK_EVERY: Duration = Duration::from_secs(2);
/// Persist a long pass's changes this often.
const PERSIST_EVERY: Duration = Duration::from_secs(1);

/// The engine's thread.
struct Worker {
    session: Session,
    root: Arc<RootDir>,
    watcher: Option<watch::Watcher>,
    events: Receiver<FsEvent>,
    /// The watch to start before the first pass (when `Engine::start` did not).
    pending_watch: Option<watch::Choice>,
    cmds: Receiver<EngineCmd>,
    msgs: Sender<EngineMsg>,
    queue: DirtyQueue,
    opts: EngineOptions,
    progress: Arc<Progress>,
    freshness: Arc<AtomicU8>,
    own_files: Option<PathBuf>,
    /// A shutdown asked for while a pass ran.
    shutdown: Option<Sender<Saved>>,
    next_root_rescan: Instant,
    rescan_backoff: Duration,
    /// Paths a notify watch could not cover (its limit): verified every `UNWATCHED_EVERY`.
    unwatched: Vec<(Vec<u8>, Backend)>,
    last_unwatched: Instant,
    last_root_check: Instant,
    root_gone: bool,
    /// The cache's filesystem is full, as last seen (said in the state word).
    cache_full: bool,
    /// The last `Stale` said was for another reason than a full cache disk.
    other_reason: std::cell::Cell<bool>,
    /// Changes this process made, queued and not yet applied (logged with the next batch).
    user: Vec<UserChange>,
}

impl Worker {
    fn set(&self, f: Freshness) {
        self.freshness.store(f as u8, Ordering::Relaxed);
    }

    fn settled(&self) -> Freshness {
        if self.root_gone || self.cache_full {
            // The tree is the last state of a directory no longer at its path (never
            // "cached"), or its changes are not being saved.
            Freshness::Stale
        } else if self.watcher.is_some() {
            Freshness::Live
        } else {
            Freshness::Fresh
        }
    }

    /// A pass is over: the state it leaves, and why when that is a full cache disk (another
    /// reason may have been said meanwhile).
    fn settle(&self) {
        self.set(self.settled());
        if self.cache_full && self.other_reason.get() {
            self.send(EngineMsg::Stale(DISK_FULL.into()));
        }
    }

    /// The cache's filesystem filled or has room again: says so, and when the store has seen
    /// room, saves the whole tree (events queue meanwhile, as after a first scan).
    fn watch_cache(&mut self) {
        let full = self.session.cache_full();
        if full != self.cache_full {
            self.cache_full = full;
            if full {
                self.set(Freshness::Stale);
                self.send(EngineMsg::Stale(DISK_FULL.into()));
            } else {
                self.set(self.settled());
                self.send(EngineMsg::CacheSaved);
            }
        }
        if full
            && self.session.resave_due()
            && let Some(copier) = self.session.resave()
        {
            self.run_pass(false, move |_| {
                let _ = copier.join();
            });
        }
    }

    fn send(&self, m: EngineMsg) {
        if let EngineMsg::Stale(why) = &m {
            self.other_reason.set(why != DISK_FULL);
        }
        let _ = self.msgs.send(m);
    }

    fn run(mut self) {
        // The C library reads the time zone (`/etc/localtime`) once, on the first local-time
        // conversion: here, not when the browser first shows a time (the UI thread does not
        // touch the disk).
        let _ = crate::format::local_tm(0);
        self.hold();
        if let Some(reply) = self.shutdown.take() {
            self.close(&reply);
            return;
        }
        self.start_watch();
        // A tree mapped from the cache moves to memory of its own now, off the write lock,
        // not inside the first batch that adds an entry (O(tree) once; see `detach_from_file`).
        tree::detach_from_file(&self.session.tree);
        if self.watcher.is_some() {
            // A watched tree keeps each entry's inode fingerprint, filled by the first scan
            // or the catch-up's stat of every entry: a new hard link finds its other names
            // by it (4 bytes an entry; see `tree::inodes`).
            tree::write(&self.session.tree).track_inodes();
        }
        self.first_pass();
        if let Some(reply) = self.shutdown.take() {
            self.close(&reply);
            return;
        }
        loop {
            let timeout = self
                .queue
                .deadline()
                .map_or(Duration::from_millis(500), |d| {
                    d.saturating_duration_since(Instant::now())
                })
                .min(Duration::from_millis(500));
            let events = self.events.clone();
            let cmds = self.cmds.clone();
            select! {
                recv(events) -> ev => if let Ok(ev) = ev {
                    self.push(ev);
                } else {
                    // The backend stopped: no more events; say so once.
                    self.events = never();
                    self.watcher = None;
                    self.set(Freshness::Stale);
                    self.send(EngineMsg::Stale("the watcher stopped".into()));
                },
                recv(cmds) -> cmd => match cmd {
                    Ok(EngineCmd::Reconcile { dir, full }) => self.reconcile_cmd(dir, full),
                    Ok(EngineCmd::User(changes)) => {
                        // At once, not after a quiet window: the user is looking at it.
                        self.queue_user(changes);
                        let batch = self.queue.take();
                        self.apply(&batch);
                    }
                    Ok(EngineCmd::Shutdown(reply)) => {
                        self.flush();
                        self.close(&reply);
                        return;
                    }
                    Ok(EngineCmd::Shown) => {}
                    Err(_) => {
                        let (tx, _rx) = bounded(1);
                        self.close(&tx);
                        return;
                    }
                },
                default(timeout) => {}
            }
            self.housekeeping();
            if let Some(batch) = self.queue.take_ready(Instant::now()) {
                self.apply(&batch);
            }
            if let Some(reply) = self.shutdown.take() {
                self.close(&reply);
                return;
            }
        }
    }

    /// Waits for the client's first frame (see `EngineOptions::hold_until_shown`), at most
    /// `HOLD_AT_MOST`; a shutdown asked for meanwhile ends the wait.
    fn hold(&mut self) {
        if !self.opts.hold_until_shown {
            return;
        }
        let end = Instant::now() + HOLD_AT_MOST;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.cmds.recv_timeout(left) {
                Ok(EngineCmd::Shown) | Err(_) => return,
                Ok(EngineCmd::Shutdown(reply)) => {
                    self.shutdown = Some(reply);
                    return;
                }
                // The first pass verifies everything anyway.
                Ok(EngineCmd::Reconcile { .. }) => {}
                Ok(EngineCmd::User(changes)) => self.queue_user(changes),
            }
        }
    }

    /// Starts the watch asked for, before the first pass reads any directory, and says how
    /// it went. A watch that cannot start leaves the tree correct once, and stale after.
    fn start_watch(&mut self) {
        let Some(choice) = self.pending_watch.take() else {
            return;
        };
        // A recursive notify watch of a large tree takes seconds: say what the wait is.
        if from_u8(self.freshness.load(Ordering::Relaxed)) == Freshness::Stale {
            self.send(EngineMsg::Stale("starting the watch".into()));
        }
        let (tx, rx) = watch::channel();
        let outcome = match watch::start(&self.root.path, choice, tx) {
            Ok(w) => {
                let what = watch_name(&w);
                self.watcher = Some(w);
                self.events = rx;
                Ok(what)
            }
            Err(e) => Err(e.to_string()),
        };
        self.send(EngineMsg::Watching(outcome));
    }

    /// Queues an event, unless it is about our own cache files.
    fn push(&mut self, ev: FsEvent) {
        let own = self.own_files.as_deref().is_some_and(|d| {
            crate::path::is_within(
                d,
                Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&ev.path)),
            )
        });
        if own {
            return;
        }
        if ev.kind == FsEventKind::Rescan
            && matches!(ev.backend, Backend::Inotify | Backend::Notify)
            && !self.unwatched.iter().any(|(p, _)| *p == ev.path)
            && self.unwatched.len() < 10_000
        {
            self.unwatched.push((ev.path.clone(), ev.backend));
        }
        self.queue.push(ev, Instant::now());
    }

    /// Queues this process's own changes as events (applied like a watcher's).
    fn queue_user(&mut self, changes: Vec<UserChange>) {
        for c in &changes {
            let kind = match c.kind {
                UserChangeKind::Removed => FsEventKind::Removed,
                UserChangeKind::Created => FsEventKind::Created,
                UserChangeKind::Verify => FsEventKind::Rescan,
            };
            self.queue.push(
                FsEvent {
                    kind,
                    path: c.path.as_os_str().as_encoded_bytes().to_vec(),
                    is_dir: None,
                    backend: Backend::User,
                },
                Instant::now(),
            );
        }
        self.user.extend(changes);
    }

    /// The `mutation_log` rows of a batch: what the watcher saw, and this process's own
    /// changes (source `user`, with the bytes freed).
    fn log_rows(&mut self, batch: &Batch) -> Vec<crate::store::LogRow> {
        let mut rows = watch::log_rows(batch);
        rows.retain(|r| r.backend != Backend::User.name());
        for c in self.user.drain(..) {
            let kind = match c.kind {
                UserChangeKind::Removed => crate::store::LogKind::Remove,
                UserChangeKind::Created => crate::store::LogKind::Create,
                UserChangeKind::Verify => crate::store::LogKind::Rescan,
            };
            let path = c.path.as_os_str().as_encoded_bytes().to_vec();
            rows.push(crate::store::LogRow::user(kind, path, c.bytes));
        }
        rows
    }

    fn housekeeping(&mut self) {
        self.watch_cache();
        if let Some(w) = &self.watcher
            && w.take_lost()
        {
            let backend = w.backend;
            // Said now, not when the batch with the overflow is applied (up to a second
            // later, more while a backlog drains): until then the tree is not live.
            self.set(Freshness::Stale);
            self.send(EngineMsg::Stale(
                "events were lost (queue overflow); verifying again".into(),
            ));
            self.queue.push(
                FsEvent {
                    kind: FsEventKind::Overflow,
                    path: Vec::new(),
                    is_dir: Some(true),
                    backend,
                },
                Instant::now(),
            );
        }
        if !self.unwatched.is_empty() && self.last_unwatched.elapsed() >= UNWATCHED_EVERY {
            self.last_unwatched = Instant::now();
            for (path, backend) in self.unwatched.clone() {
                self.queue.push(
                    FsEvent {
                        kind: FsEventKind::Rescan,
                        path,
                        is_dir: Some(true),
                        backend,
                    },
                    Instant::now(),
                );
            }
        }
        if self.watcher.is_some() && self.last_root_check.elapsed() >= ROOT_CHECK_EVERY {
            self.last_root_check = Instant::now();
            self.check_root();
        }
    }

    /// The watched root moved away or deleted: say so, stop watching (the tree stays as the
    /// last state seen).
    fn check_root(&mut self) {
        use std::os::unix::fs::MetadataExt;
        if self.root_gone {
            return;
        }
        let deleted = self.root_deleted();
        let moved = match std::fs::symlink_metadata(&self.root.path) {
            Ok(m) => (m.dev(), m.ino()) != (self.root.stat().dev, self.root.stat().ino),
            Err(_) => true,
        };
        if deleted || moved {
            let watching = if self.watcher.is_some() {
                " (not watching any more)"
            } else {
                ""
            };
            self.root_gone = true;
            self.watcher = None;
            self.events = never();
            self.set(Freshness::Stale);
            let why = if deleted {
                "the watched directory was deleted"
            } else {
                "the watched directory was moved or replaced"
            };
            self.send(EngineMsg::Stale(format!(
                "{why}: {}{watching}",
                crate::path::display_name(self.root.path.as_os_str().as_encoded_bytes())
            )));
        }
    }

    /// Is the directory we hold (by fd) deleted? Then it has nothing left to read.
    fn root_deleted(&self) -> bool {
        sys::stat_fd(self.root.fd()).is_ok_and(|s| s.nlink == 0)
    }

    /// The first scan or the catch-up, on a worker, while events queue up.
    fn first_pass(&mut self) {
        let tree = Arc::clone(&self.session.tree);
        let root = Arc::clone(&self.root);
        let scan_opts = self.opts.scan.clone();
        let started = Session::now();
        if self.session.needs_scan() {
            self.set(Freshness::Scanning);
            let r = self.run_pass(false, move |p| scan::scan_root(&root, &tree, &scan_opts, p));
            {
                let mut t = tree::write(&self.session.tree);
                if r.is_ok() {
                    t.track_changes();
                } else {
                    // A partial tree: whatever comes next carries all of it, as when every
                    // write of the scan was recorded.
                    t.track_changes_of_all();
                }
            }
            match r {
                Ok(stats) => {
                    self.session.adopt_scan(stats, started);
                    self.settle();
                    self.send(EngineMsg::ScanDone(stats));
                    if let Some(copier) = self.session.take_snapshot_copier() {
                        self.run_pass(false, move |_| {
                            let _ = copier.join();
                        });
                    }
                }
                Err(ScanError::Cancelled) => {}
                Err(e) => {
                    // The tree keeps what was read; it is not complete, so not fresh.
                    self.set(Freshness::Stale);
                    self.send(EngineMsg::Failed(e.to_string()));
                }
            }
        } else if self.opts.catch_up && self.session.origin.from_cache() {
            // Before the catch-up changes anything: totals that add up, and what the tree
            // was when loaded.
            self.session.before_catch_up();
            self.set(Freshness::Verifying);
            let r = self.run_pass(true, move |p| {
                reconcile::full(&tree, &root, &scan_opts, p, Trust::Listings)
            });
            match r {
                Ok(stats) => {
                    self.session.adopt_pass("catch-up", &stats, started);
                    self.settle();
                    self.send(EngineMsg::CatchUpDone(stats));
                }
                Err(ScanError::Cancelled) => self.set(Freshness::Stale),
                Err(e) => {
                    self.set(Freshness::Stale);
                    self.send(EngineMsg::Failed(e.to_string()));
                }
            }
        } else if self.watcher.is_some() {
            self.set(Freshness::Stale);
        }
        self.send(EngineMsg::Ready);
        // What happened meanwhile.
        if self.shutdown.is_none() && !self.queue.is_empty() {
            let batch = self.queue.take();
            self.apply(&batch);
        }
    }

    /// Runs `f` on a worker thread while this one keeps queueing events (and persisting every
    /// second, if asked); a shutdown asked meanwhile cancels it.
    fn run_pass<R: Send>(&mut self, persist: bool, f: impl FnOnce(&Progress) -> R + Send) -> R {
        let progress = Arc::clone(&self.progress);
        std::thread::scope(|s| {
            // No thread to be had (a thread limit, no memory for its stack): the pass runs
            // here, events waiting in their channel until it ends.
            let h = crate::threads::spawn_or_run(s, "dtui-pass", || f(&progress));
            let mut last = Instant::now();
            while !h.is_finished() {
                let events = self.events.clone();
                let cmds = self.cmds.clone();
                select! {
                    recv(events) -> ev => match ev {
                        Ok(ev) => self.push(ev),
                        Err(_) => self.events = never(),
                    },
                    recv(cmds) -> cmd => match cmd {
                        Ok(EngineCmd::Shutdown(reply)) => {
                            self.shutdown = Some(reply);
                            progress.cancel();
                        }
                        // A pass is running; it covers what a reconcile would.
                        Ok(EngineCmd::Reconcile { .. } | EngineCmd::Shown) => {}
                        // Applied with the next batch once the pass is over.
                        Ok(EngineCmd::User(changes)) => self.queue_user(changes),
                        Err(_) => progress.cancel(),
                    },
                    default(Duration::from_millis(20)) => {}
                }
                if persist && last.elapsed() >= PERSIST_EVERY {
                    last = Instant::now();
                    self.session.persist();
                }
            }
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }

    /// Runs `f` with an applier of changes to this session's tree.
    fn with_applier<R>(&self, f: impl FnOnce(&apply::Applier) -> R) -> R {
        let reopen = Reopener::new(&self.root);
        f(&apply::Applier {
            lock: &self.session.tree,
            root: &self.root,
            reopen: &reopen,
            opts: &self.opts.scan,
            progress: &self.progress,
        })
    }

    /// Applies one released batch and tells everyone, once.
    fn apply(&mut self, batch: &Batch) {
        if batch.is_empty() {
            return;
        }
        let t0 = Instant::now();
        let outcome = self.with_applier(|a| a.apply(batch));
        let mut outcome = match outcome {
            Ok(o) => o,
            Err(ScanError::Cancelled) => return,
            Err(e) => {
                self.send(EngineMsg::Failed(e.to_string()));
                apply::Outcome {
                    rescan_root: true,
                    ..apply::Outcome::default()
                }
            }
        };
        let log = LogBatch {
            batch: batch.id,
            rows: self.log_rows(batch),
            retention: self.opts.retention,
        };
        let ids = self.session.commit_batch(Some(log));
        tree::write(&self.session.tree).maybe_compact_names();
        let mut lines = std::mem::take(&mut outcome.lines);
        let rescans = self.outermost(std::mem::take(&mut outcome.rescans));
        {
            // Say which subtrees are re-verified next.
            let t = tree::read(&self.session.tree);
            let root = self.root.path.as_os_str().as_encoded_bytes();
            for &dir in &rescans {
                let p = t.path_of(dir);
                let p = p.as_os_str().as_encoded_bytes();
                let rel = p.strip_prefix(root).unwrap_or(p);
                lines.push(ChangeLine {
                    kind: ChangeKind::Verified,
                    path: rel.strip_prefix(b"/").unwrap_or(rel).to_vec(),
                    to: None,
                    disk: 0,
                });
            }
        }
        let delta = self.delta(batch, ids, lines, t0);
        self.send(EngineMsg::Applied(delta));
        if outcome.rescan_root {
            self.rescan(None, "events were lost (queue overflow)");
        }
        for dir in rescans {
            self.rescan(
                Some(dir),
                "a subtree is verified again (a watch could not cover it, a mount changed, or \
                 a directory moved under a name)",
            );
        }
    }

    /// The subtrees to verify, each once, and none inside another (a batch can name one
    /// directory many times); a slot freed and reused meanwhile (by anything, even a file)
    /// is not the directory that was meant: its name was settled afresh, so it is dropped.
    fn outermost(&self, refs: Vec<NodeRef>) -> Vec<NodeId> {
        let t = tree::read(&self.session.tree);
        let mut dirs: Vec<NodeId> = refs
            .into_iter()
            .filter_map(|r| t.resolve(r))
            .filter(|&d| t.kind(d) == tree::Kind::Dir)
            .collect();
        dirs.sort_unstable_by_key(|d| d.0);
        dirs.dedup();
        let set: std::collections::HashSet<NodeId> = dirs.iter().copied().collect();
        dirs.retain(|&d| {
            let mut cur = t.parent(d);
            while let Some(p) = cur {
                if set.contains(&p) {
                    return false;
                }
                cur = t.parent(p);
            }
            true
        });
        dirs
    }

    fn delta(
        &self,
        batch: &Batch,
        ids: Vec<u32>,
        lines: Vec<ChangeLine>,
        t0: Instant,
    ) -> TreeDelta {
        let t = tree::read(&self.session.tree);
        TreeDelta {
            generation: t.generation(),
            batch: batch.id,
            events: batch.events,
            touched: ids.into_iter().map(|i| t.node_ref(NodeId(i))).collect(),
            lines,
            elapsed: t0.elapsed(),
        }
    }

    /// Marks a subtree stale (the root for lost events) and verifies it with a parallel
    /// catch-up. Repeated root rescans back off (1 s, doubling to a minute) instead of storming.
    fn rescan(&mut self, dir: Option<NodeId>, why: &str) {
        // A deleted root has nothing to verify: what it held went with it, and its reason
        // stays the one shown (not a routine "verified again" said after it).
        self.check_root();
        if self.root_deleted() {
            return;
        }
        let node = dir.unwrap_or_else(|| tree::read(&self.session.tree).root());
        if dir.is_none() {
            let now = Instant::now();
            if now < self.next_root_rescan {
                // Too soon after the last one: wait, queueing events, then verify once.
                self.set(Freshness::Stale);
                self.send(EngineMsg::Stale(format!("{why}; re-verifying shortly")));
                let wait = self.next_root_rescan - now;
                let end = Instant::now() + wait;
                self.run_pass(false, move |p| {
                    while Instant::now() < end && !p.cancelled() {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                });
                if self.shutdown.is_some() {
                    return;
                }
                self.queue = DirtyQueue::new(self.opts.limits); // the rescan covers it all
            }
        }
        {
            let mut t = tree::write(&self.session.tree);
            if t.is_live(node) {
                t.set_flag(node, flags::STALE, true);
            }
        }
        // Verifying a subtree below the root is routine (a new directory under notify, a
        // moved directory): said only in the state word. The root is said out loud.
        if node == tree::read(&self.session.tree).root() {
            self.send(EngineMsg::Stale(why.to_string()));
        }
        self.set(Freshness::Verifying);
        let t0 = Instant::now();
        let r = self.verify(node, Trust::Listings);
        if dir.is_none() {
            let quick = t0.elapsed() < Duration::from_secs(2);
            self.rescan_backoff = if quick && self.rescan_backoff > Duration::ZERO {
                (self.rescan_backoff * 2).min(Duration::from_secs(60))
            } else {
                Duration::from_secs(1)
            };
            self.next_root_rescan = Instant::now() + self.rescan_backoff;
        }
        if let Err(e) = r {
            self.send(EngineMsg::Failed(e.to_string()));
        }
    }

    /// A parallel catch-up of one subtree, persisted, announced as a delta.
    fn verify(&mut self, node: NodeId, trust: Trust) -> Result<ReconcileStats, ScanError> {
        let tree = Arc::clone(&self.session.tree);
        let root = Arc::clone(&self.root);
        let scan_opts = self.opts.scan.clone();
        let started = Session::now();
        let t0 = Instant::now();
        // A subtree's hard links (before and after the pass) have names outside it whose link
        // counts the pass does not see; the root's pass stats every name.
        let subtree = node != tree::read(&self.session.tree).root();
        let mut linked = if subtree {
            apply::linked_keys(&tree::read(&self.session.tree), node)
        } else {
            Vec::new()
        };
        let r = self.run_pass(true, move |p| {
            reconcile::run(&tree, &root, node, &scan_opts, p, trust, true)
        });
        if r.is_ok() && subtree {
            let t = tree::read(&self.session.tree);
            if t.is_live(node) {
                linked.extend(apply::linked_keys(&t, node));
            }
        }
        let r = match r {
            Ok(stats) if !linked.is_empty() => {
                self.with_applier(|a| a.relink_keys(linked)).map(|()| stats)
            }
            r => r,
        };
        match &r {
            Ok(stats) => {
                let kind = if trust == Trust::Nothing {
                    "reconcile --full"
                } else {
                    "reconcile"
                };
                // The ids first (the pass's persisting took only what changed before its last
                // second), and no commit when nothing is left: a commit bumps the tree's
                // generation, and an empty one never reaches the database, which left the tree
                // a generation ahead (the shutdown then refused to save the arena).
                let pending = tree::read(&self.session.tree).has_changes();
                let ids = if pending {
                    self.session.commit_batch(None)
                } else {
                    Vec::new()
                };
                self.session.adopt_pass(kind, stats, started);
                let delta = self.delta(&Batch::default(), ids, Vec::new(), t0);
                self.send(EngineMsg::Applied(delta));
                self.settle();
            }
            Err(_) => self.set(Freshness::Stale),
        }
        r
    }

    fn reconcile_cmd(&mut self, dir: Option<NodeRef>, full: bool) {
        let node = {
            let t = tree::read(&self.session.tree);
            match dir {
                Some(r) => t.resolve(r),
                None => Some(t.root()),
            }
        };
        let Some(node) = node else {
            self.send(EngineMsg::Failed(
                "that directory is no longer in the tree".into(),
            ));
            return;
        };
        // Without a watcher nobody has looked yet. A deleted root has nothing to re-read:
        // a pass would only find it unreadable and call that "no changes" (a directory made
        // at its path since is another one, which this session does not hold).
        self.check_root();
        if self.root_deleted() {
            self.send(EngineMsg::Failed(format!(
                "cannot re-read {}: it was deleted (start dtui again to see what is there now)",
                crate::path::display_name(self.root.path.as_os_str().as_encoded_bytes())
            )));
            return;
        }
        self.session.settle_loaded();
        self.set(Freshness::Verifying);
        let trust = if full {
            Trust::Nothing
        } else {
            Trust::Listings
        };
        match self.verify(node, trust) {
            Ok(stats) => self.send(EngineMsg::Reconciled(stats)),
            Err(ScanError::Cancelled) => {}
            Err(e) => self.send(EngineMsg::Failed(e.to_string())),
        }
    }

    /// Applies what is queued (a write just before shutdown joins the last batch: events on
    /// their way get one quiet window, at most a second).
    fn flush(&mut self) {
        if self.watcher.is_some() {
            let grace_end = Instant::now() + Duration::from_secs(1);
            while let Ok(ev) = self.events.recv_timeout(self.opts.limits.quiet) {
                self.push(ev);
                if Instant::now() >= grace_end {
                    break;
                }
            }
        }
        let batch = self.queue.take();
        self.apply(&batch);
    }

    fn close(self, reply: &Sender<Saved>) {
        let Worker {
            session, watcher, ..
        } = self;
        drop(watcher);
        let _ = reply.send(session.close());
    }
}
