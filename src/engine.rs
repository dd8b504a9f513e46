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
//!
//! This file is the handle (`Engine`) and its options; the thread is `worker` (its passes and
//! its batches below it), what goes to and from it `messages`.

mod apply;
mod messages;
mod session;
mod wait;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

pub use apply::{ChangeKind, ChangeLine};
pub(crate) use messages::EngineCmd;
pub use messages::{EngineMsg, Taps, TreeDelta, UserChange, UserChangeKind, UserChanges};
pub use wait::{FirstPass, Reconciled};

use crate::cache::{CacheOptions, OpenError, OpenWith, Origin, Saved};
use crate::fs::{self, FsError, RootDir};
use crate::scan::{Progress, ScanOptions};
use crate::store::{CacheBudget, Retention, TotalBudget};
use crate::tree::{self, NodeRef, Tree};
use crate::watch::{self, Choice, QueueLimits};
use session::Session;
use worker::Worker;

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
    /// How many bytes all the caches of the cache directory may take (`$DISKTRACKER_CACHE_TOTAL_MAX`).
    pub cache_total: TotalBudget,
    /// A root without a cache of its own may start from an ancestor's cache (and then keeps
    /// none): off for `dtui changes`, whose history is the root's own cache's.
    pub from_ancestor: bool,
    pub limits: QueueLimits,
    /// Start the watch and the first pass only once the client says the tree is on screen
    /// (`Engine::shown`, or after `HOLD_AT_MOST`): on two cores, a catch-up's threads
    /// starting with the first frame delay it, and the terminal that draws it.
    pub hold_until_shown: bool,
    /// This run is a session of the size history (the browser, `dtui watch`): its start is
    /// the baseline of "since the previous session" for the runs after it. A query (`scan`,
    /// `export`, `changes`, `reconcile`) records what its catch-up sees but never moves
    /// that baseline, so `dtui changes` twice shows the same changes.
    pub history_session: bool,
    /// How `Engine::open` shares the root with other processes (see `attach`).
    pub share: Share,
}

/// How a run shares its root with the other `dtui` processes of its user (`Engine::open`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// On its own, as `Engine::start`.
    Alone,
    /// Attached to the process that owns the root live, if one does; else on its own (a
    /// query: `scan`, `export`, `changes`, `reconcile`).
    Join,
    /// A query again after its owner went away: as `Join`, but waits up to `REJOIN_WITHIN`
    /// for the process taking the root over (an attached browser or watch) to listen, rather
    /// than opening the cache first and leaving that process without it.
    Rejoin,
    /// Attached to the owner, if there is one; else the owner, serving whoever attaches
    /// (the browser, `watch`, `serve`).
    Own,
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
            cache_total: TotalBudget::default(),
            from_ancestor: true,
            limits: QueueLimits::default(),
            hold_until_shown: false,
            history_session: false,
            share: Share::Alone,
        }
    }

    /// The same, with the cache kept within `budget`.
    #[must_use]
    pub fn with_cache_budget(mut self, budget: CacheBudget) -> EngineOptions {
        self.cache_budget = budget;
        self
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
    /// What else opening the cache tells the user (`cache::Opened::notes`): where a first
    /// cache goes, an ancestor's cache used instead, caches the global budget removed.
    pub notes: Vec<String>,
    /// The watch backend and why, when it was required and so started by `start` (`None`:
    /// not required, or not asked for; the worker then reports it as `EngineMsg::Watching`).
    pub watching: Option<Result<String, String>>,
    /// Where this session's size history is (None without a cache).
    pub history: Option<crate::history::HistorySource>,
    freshness: Arc<AtomicU8>,
    cmd: Sender<EngineCmd>,
    worker: Option<JoinHandle<()>>,
    /// Who else hears this engine's messages.
    taps: Taps,
    /// The attach server, when this process owns the root for others.
    server: Option<crate::attach::Server>,
    /// Attached with a preview of the owner's tree: said once the validated tree replaces
    /// it (`attach::attach`); `shown` waits for it.
    ready: Option<Receiver<()>>,
}

/// What an attach server needs of a running engine (`Engine::served`).
pub struct Served {
    pub root: PathBuf,
    pub tree: Arc<RwLock<Tree>>,
    pub progress: Arc<Progress>,
    pub freshness: Box<dyn Fn() -> Freshness + Send + Sync>,
    pub taps: Taps,
    pub commands: UserChanges,
    pub origin: String,
    pub watching: Option<Result<String, String>>,
    pub warnings: Vec<String>,
    pub history: Option<crate::history::HistorySource>,
}

/// What a process opening a root with `opts` attaches as.
fn attach_as(opts: &EngineOptions) -> crate::attach::As {
    use crate::attach::As;
    if opts.hold_until_shown {
        As::Browser
    } else if matches!(opts.share, Share::Join | Share::Rejoin) {
        As::Query
    } else {
        As::Follower
    }
}

/// How long a start waits for the process that just won the root's election to listen.
const OWNER_LISTENS_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

/// How long a query whose owner went away waits for another process to take the root over
/// (the followers hear the owner go when it does, and listen once their cache is open).
const REJOIN_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

impl Engine {
    /// `start`, or, as `opts.share` says, attached to the process that owns `path` live when
    /// there is one (no cache opened, no catch-up: its tree from the first frame), else
    /// started (with `Share::Own`, as that owner, serving whoever attaches next). Two owners
    /// at once: one wins the root's election and the other attaches to it once it listens.
    pub fn open(
        path: &Path,
        opts: EngineOptions,
        msgs: Sender<EngineMsg>,
    ) -> Result<Engine, EngineError> {
        let dir = match opts.share {
            Share::Alone => None,
            Share::Join | Share::Rejoin | Share::Own => crate::attach::runtime_dir(),
        };
        let Some(dir) = dir else {
            return Engine::start(path, opts, msgs);
        };
        let root = fs::resolve_root(path)?;
        let deadline = std::time::Instant::now() + OWNER_LISTENS_WITHIN;
        let rejoin_until = std::time::Instant::now() + REJOIN_WITHIN;
        loop {
            match crate::attach::attach(&dir, &root, &msgs, attach_as(&opts)) {
                crate::attach::Attach::To(engine) => return Ok(*engine),
                // An owner that refuses this process (another version of dtui) stays the
                // owner: waiting for its election would only cost the wait.
                crate::attach::Attach::Refused(why) => {
                    let mut engine = Engine::start(path, opts, msgs)?;
                    engine.warnings.push(format!(
                        "another dtui keeps this root live and refused this one ({why}): it \
                         runs on its own"
                    ));
                    return Ok(engine);
                }
                crate::attach::Attach::NoOwner => {}
            }
            match opts.share {
                Share::Rejoin if std::time::Instant::now() < rejoin_until => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                }
                Share::Join | Share::Rejoin => return Engine::start(path, opts, msgs),
                Share::Alone | Share::Own => {}
            }
            match crate::attach::Election::try_own(&dir, &root) {
                Ok(Some(election)) => {
                    let mut engine = Engine::start(path, opts, msgs)?;
                    // Serving is a bonus: a socket that cannot be made leaves a working engine.
                    engine.server =
                        crate::attach::Server::start(&dir, election, engine.served()).ok();
                    return Ok(engine);
                }
                // Another start won: it listens once its cache is open.
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                _ => return Engine::start(path, opts, msgs),
            }
        }
    }

    /// What an attach server of this engine needs.
    #[must_use]
    pub fn served(&self) -> Served {
        Served {
            root: self.root.clone(),
            tree: Arc::clone(&self.tree),
            progress: Arc::clone(&self.progress),
            freshness: Box::new(self.freshness_handle()),
            taps: self.taps.clone(),
            commands: self.user_changes(),
            origin: self.origin.to_string(),
            watching: self.watching.clone(),
            warnings: self.warnings.clone(),
            history: self.history.clone(),
        }
    }

    /// An engine whose worker is an attached client (`attach::client`): its tree a replica
    /// that thread keeps, its commands sent to the owner.
    #[expect(
        clippy::too_many_arguments,
        reason = "the handle's fields, as the client made them"
    )]
    pub(crate) fn attached(
        tree: Arc<RwLock<Tree>>,
        root_dir: Arc<RootDir>,
        progress: Arc<Progress>,
        origin: Origin,
        warnings: Vec<String>,
        watching: Option<Result<String, String>>,
        history: Option<crate::history::HistorySource>,
        freshness: Arc<AtomicU8>,
        cmd: Sender<EngineCmd>,
        worker: JoinHandle<()>,
        ready: Option<Receiver<()>>,
    ) -> Engine {
        Engine {
            tree,
            root: root_dir.path.clone(),
            root_dir,
            progress,
            origin,
            warnings,
            notes: Vec::new(),
            watching,
            history,
            freshness,
            cmd,
            worker: Some(worker),
            taps: Taps::default(),
            server: None,
            ready,
        }
    }

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
        let (started, watching) = match opts.watch {
            Some(choice) if opts.watch_required => {
                let (tx, rx) = watch::channel();
                let w = watch::start(&fs::resolve_root(path)?, choice, tx)?;
                let what = watch_name(&w);
                (Some((w, rx)), Some(Ok(what)))
            }
            _ => (None, None),
        };
        let with = OpenWith {
            budget: opts.cache_budget,
            total: opts.cache_total,
            options: crate::cache::options_key(&opts.scan),
            from_ancestor: opts.from_ancestor,
        };
        let mut session = Session::prepare(path, &opts.cache, with)?;
        if opts.catch_up || opts.watch.is_some() || session.needs_scan() {
            session.begin_history(opts.history_session);
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
        let notes = session.notes.clone();
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
        let taps = Taps::default();
        let worker = {
            let w = Worker::new(
                session,
                opts,
                started,
                cmd_rx,
                msgs,
                taps.clone(),
                Arc::clone(&progress),
                Arc::clone(&freshness),
            );
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
            notes,
            watching,
            history,
            freshness,
            cmd: cmd_tx,
            worker: Some(worker),
            taps,
            server: None,
            ready: None,
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
    /// Attached with a preview (the owner's root listing, `attach::attach`), this returns once
    /// the whole tree, validated, has replaced it (or the owner's image failed and the
    /// client detached): what the caller reads after this is the whole tree.
    pub fn shown(&self) {
        let _ = self.cmd.try_send(EngineCmd::Shown);
        if let Some(ready) = &self.ready {
            let _ = ready.recv();
        }
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
        // The worker answers (into the room the channel has) before it ends; one that ended
        // without reading the command (an attached client whose owner just went) never will,
        // and its command, queued, keeps the answer's sender alive: wait for the thread, not
        // for the answer.
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        let saved = rx.try_recv().unwrap_or(Saved::NoCache);
        // Clients go (and may take the root over) once the cache is saved and unlocked.
        self.server = None;
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
        self.server = None;
    }
}

pub(crate) fn from_u8(v: u8) -> Freshness {
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
