//! The engine's thread: its loop over events and commands, the watch it starts before the
//! first pass, the events it queues (its own cache files dropped, this process's changes
//! added), housekeeping (lost events, unwatched paths, the root's own fate, a full cache disk)
//! and the state word. Its passes and its batches are in `passes` and `batch`.

mod batch;
mod passes;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, never, select};

use super::messages::EngineCmd;
use super::session::Session;
use super::{EngineMsg, EngineOptions, Freshness, UserChange, UserChangeKind, from_u8, watch_name};
use crate::cache::Saved;
use crate::fs::{RootDir, sys};
use crate::scan::Progress;
use crate::store::writer::DISK_FULL;
use crate::tree;
use crate::watch::{self, Backend, DirtyQueue, FsEvent, FsEventKind};

/// How long the engine waits for a client's first frame (`hold_until_shown`).
const HOLD_AT_MOST: Duration = Duration::from_millis(500);
/// How often directories a watch could not cover are verified again.
const UNWATCHED_EVERY: Duration = Duration::from_secs(30);
/// How often the root itself is checked (moved away or deleted).
const ROOT_CHECK_EVERY: Duration = Duration::from_secs(2);
/// How long a `Sync` waits at most for the watch to hand over what the kernel queued.
const SETTLE_WITHIN: Duration = Duration::from_millis(500);

/// The engine's thread.
pub(super) struct Worker {
    session: Session,
    root: Arc<RootDir>,
    watcher: Option<watch::Watcher>,
    events: Receiver<FsEvent>,
    /// The watch to start before the first pass (when `Engine::start` did not).
    pending_watch: Option<watch::Choice>,
    cmds: Receiver<EngineCmd>,
    msgs: Sender<EngineMsg>,
    /// Who else hears every message (attached clients, through the attach server).
    taps: super::messages::Taps,
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
    /// The next batch also re-stats the linked entries whose names in the tree disagree with
    /// their link count (`Applier::relink_odd`): set when a pass ran while events arrived.
    relink_odd: bool,
    /// `Sync`s asked for while a pass ran: answered once it is over.
    syncs: Vec<u64>,
}

impl Worker {
    /// The engine's thread, not started yet: `started` is the watch `Engine::start` started
    /// (and its events); without one, the watch asked for is started by `run`.
    #[expect(
        clippy::too_many_arguments,
        reason = "the thread's parts, as Engine::start made them"
    )]
    pub(super) fn new(
        session: Session,
        opts: EngineOptions,
        started: Option<(watch::Watcher, Receiver<FsEvent>)>,
        cmds: Receiver<EngineCmd>,
        msgs: Sender<EngineMsg>,
        taps: super::messages::Taps,
        progress: Arc<Progress>,
        freshness: Arc<AtomicU8>,
    ) -> Worker {
        let (watcher, events, pending_watch) = match started {
            Some((w, rx)) => (Some(w), rx, None),
            None => (None, never(), opts.watch),
        };
        Worker {
            own_files: session.cache_dir().map(Path::to_path_buf),
            root: Arc::clone(session.root()),
            session,
            watcher,
            events,
            pending_watch,
            cmds,
            msgs,
            taps,
            queue: DirtyQueue::new(opts.limits),
            opts,
            progress,
            freshness,
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
            relink_odd: false,
            syncs: Vec::new(),
        }
    }

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
        self.taps.send(&m);
        let _ = self.msgs.send(m);
    }

    pub(super) fn run(mut self) {
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
            // `Sync`s that came while a pass ran (the first, a reconcile's), answered now.
            for token in std::mem::take(&mut self.syncs) {
                self.sync(token);
            }
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
                    Ok(EngineCmd::Sync(token)) => self.sync(token),
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
                Ok(EngineCmd::Sync(token)) => self.syncs.push(token),
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

    /// An attached query's `Sync`: every event the watch had read from the kernel when it
    /// came (`Watcher::settle`: the kernel's queue read and handed over) applied now, not
    /// after the quiet window, then `Synced`.
    fn sync(&mut self, token: u64) {
        // A reader that does not settle in time (far behind a flood, which then ends in a
        // verification anyway): what it handed over so far is applied.
        if let Some(w) = &self.watcher {
            let _ = w.settle(SETTLE_WITHIN);
        }
        while let Ok(ev) = self.events.try_recv() {
            self.push(ev);
        }
        let batch = self.queue.take();
        self.apply(&batch);
        self.send(EngineMsg::Synced(token));
    }

    fn close(self, reply: &Sender<Saved>) {
        let Worker {
            session, watcher, ..
        } = self;
        drop(watcher);
        let _ = reply.send(session.close());
    }
}
