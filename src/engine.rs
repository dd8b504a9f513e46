//! The engine: starts and owns the background work on a tree (the first scan or the catch-up
//! after a cache load, and the cache session that saves it at the end) and is the one API the
//! browser and the headless commands use. It knows nothing of terminals.
//!
//! `Engine::start` opens the tree (cache or root only) on the caller's thread, which is quick,
//! and hands the rest to a worker thread; readers browse `tree` meanwhile and watch `progress`.
//! What happens is reported as `EngineMsg`s on the channel given to `start`.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::cache::{CacheOptions, Origin, Saved, Session};
use crate::reconcile::ReconcileStats;
use crate::scan::{Progress, ScanError, ScanOptions, ScanStats};
use crate::tree::Tree;

/// Where the tree stands against the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The first scan is running: the tree is incomplete and growing.
    Scanning,
    /// Loaded from the cache, not yet verified.
    Stale,
    /// Loaded from the cache; the catch-up is running.
    Verifying,
    /// Scanned or verified.
    Fresh,
}

/// Messages from the engine's worker.
#[derive(Debug, Clone)]
pub enum EngineMsg {
    ScanDone(ScanStats),
    CatchUpDone(ReconcileStats),
    /// The worker could not finish (the tree keeps what it had).
    Failed(String),
}

enum EngineCmd {
    Shutdown(Sender<Saved>),
}

pub struct Engine {
    pub tree: Arc<RwLock<Tree>>,
    pub progress: Arc<Progress>,
    pub origin: Origin,
    /// Warnings from opening the cache, for the user.
    pub warnings: Vec<String>,
    freshness: Arc<std::sync::atomic::AtomicU8>,
    cmd: Sender<EngineCmd>,
    worker: Option<JoinHandle<()>>,
}

impl Engine {
    /// Opens `path` through its cache and starts the scan or the catch-up in the background.
    pub fn start(
        path: &Path,
        cache: &CacheOptions,
        opts: ScanOptions,
        msgs: Sender<EngineMsg>,
    ) -> Result<Engine, ScanError> {
        let session = Session::prepare(path, cache)?;
        let tree = Arc::clone(&session.tree);
        let origin = session.origin.clone();
        let warnings = session.warnings.clone();
        let progress = Arc::new(Progress::new());
        let initial = if session.needs_scan() {
            Freshness::Scanning
        } else {
            Freshness::Stale
        };
        let freshness = Arc::new(std::sync::atomic::AtomicU8::new(initial as u8));
        let (cmd_tx, cmd_rx) = bounded(1);
        let worker = {
            let progress = Arc::clone(&progress);
            let freshness = Arc::clone(&freshness);
            std::thread::Builder::new()
                .name("dtui-engine".into())
                .spawn(move || work(session, &opts, &progress, &freshness, &msgs, &cmd_rx))
                .map_err(|e| ScanError::Root {
                    path: path.to_path_buf(),
                    source: e,
                })?
        };
        Ok(Engine {
            tree,
            progress,
            origin,
            warnings,
            freshness,
            cmd: cmd_tx,
            worker: Some(worker),
        })
    }

    /// A reader of the freshness for another thread.
    pub fn freshness_handle(&self) -> impl Fn() -> Freshness + Send + 'static {
        let f = Arc::clone(&self.freshness);
        move || from_u8(f.load(std::sync::atomic::Ordering::Relaxed))
    }

    #[must_use]
    pub fn freshness(&self) -> Freshness {
        from_u8(self.freshness.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Stops what is running (a scan is cancelled, not saved) and closes the cache session.
    #[must_use]
    pub fn shutdown(mut self) -> Saved {
        self.progress.cancel();
        let (tx, rx) = bounded(1);
        let _ = self.cmd.send(EngineCmd::Shutdown(tx));
        let saved = rx.recv().unwrap_or(Saved::NoCache);
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        saved
    }
}

fn from_u8(v: u8) -> Freshness {
    match v {
        0 => Freshness::Scanning,
        1 => Freshness::Stale,
        2 => Freshness::Verifying,
        _ => Freshness::Fresh,
    }
}

fn work(
    mut session: Session,
    opts: &ScanOptions,
    progress: &Progress,
    freshness: &std::sync::atomic::AtomicU8,
    msgs: &Sender<EngineMsg>,
    cmds: &Receiver<EngineCmd>,
) {
    let set = |f: Freshness| freshness.store(f as u8, std::sync::atomic::Ordering::Relaxed);
    if session.needs_scan() {
        match session.run_scan(opts, progress) {
            Ok(Some(stats)) => {
                set(Freshness::Fresh);
                let _ = msgs.send(EngineMsg::ScanDone(stats));
            }
            Ok(None) => set(Freshness::Fresh),
            Err(ScanError::Cancelled) => {}
            Err(e) => {
                // The tree keeps what was read; it is not complete, so not fresh.
                set(Freshness::Stale);
                let _ = msgs.send(EngineMsg::Failed(e.to_string()));
            }
        }
    } else {
        set(Freshness::Verifying);
        match session.catch_up(opts, progress) {
            Ok(Some(stats)) => {
                set(Freshness::Fresh);
                let _ = msgs.send(EngineMsg::CatchUpDone(stats));
            }
            Ok(None) => set(Freshness::Fresh),
            Err(ScanError::Cancelled) => set(Freshness::Stale),
            Err(e) => {
                set(Freshness::Stale);
                let _ = msgs.send(EngineMsg::Failed(e.to_string()));
            }
        }
    }
    // Keep the session (and the cache lock) until asked to close.
    if let Ok(EngineCmd::Shutdown(reply)) = cmds.recv() {
        let _ = reply.send(session.close());
    } else {
        let _ = session.close();
    }
}
