//! What passes between the engine's thread and its clients: the messages it sends
//! (`EngineMsg`, with each batch's `TreeDelta`), the commands it takes (`EngineCmd`), and the
//! changes this process made itself, told to it directly (`UserChange`).

use std::path::PathBuf;
use std::time::Duration;

use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_channel::{Receiver, Sender};

use super::ChangeLine;
use crate::cache::Saved;
use crate::reconcile::ReconcileStats;
use crate::scan::ScanStats;
use crate::tree::NodeRef;

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
    /// The owner this attached client followed went away (why): the tree is its last image,
    /// no longer live; the client opens the root itself (see `attach`).
    Detached(String),
    /// What the watch had seen when `EngineCmd::Sync` with this token came is applied (and
    /// its message sent before this one).
    Synced(u64),
}

pub(crate) enum EngineCmd {
    Reconcile {
        dir: Option<NodeRef>,
        full: bool,
    },
    User(Vec<UserChange>),
    Shutdown(Sender<Saved>),
    /// The client's first frame is on screen (see `EngineOptions::hold_until_shown`).
    Shown,
    /// Apply every event the watch has seen up to now at once (no quiet window), then say
    /// `EngineMsg::Synced` with the token: an attached query asks before it answers.
    Sync(u64),
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
pub struct UserChanges(pub(super) Sender<EngineCmd>);

impl UserChanges {
    /// Hands the engine paths it must re-read now; answered by `EngineMsg::Applied`.
    pub fn send(&self, changes: Vec<UserChange>) {
        if !changes.is_empty() {
            let _ = self.0.send(EngineCmd::User(changes));
        }
    }

    /// Asks for a reconcile, as `Engine::reconcile` does (for an attached client's `r`/`R`).
    pub fn reconcile(&self, dir: Option<NodeRef>, full: bool) {
        let _ = self.0.try_send(EngineCmd::Reconcile { dir, full });
    }

    /// Asks for everything seen up to now to be applied, answered by `EngineMsg::Synced`
    /// with `token` (for an attached query; waits for room in the command queue).
    pub fn sync(&self, token: u64) {
        let _ = self.0.send(EngineCmd::Sync(token));
    }
}

/// Listeners of the engine's messages besides the client that started it (an attach
/// server's publisher): each gets a copy of every message sent after it was added.
#[derive(Clone, Default)]
pub struct Taps(Arc<Mutex<Vec<Sender<EngineMsg>>>>);

impl Taps {
    /// A new listener.
    #[must_use]
    pub fn add(&self) -> Receiver<EngineMsg> {
        let (tx, rx) = crossbeam_channel::unbounded();
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tx);
        rx
    }

    /// A copy of `m` to every listener still listening.
    pub(super) fn send(&self, m: &EngineMsg) {
        let mut taps = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !taps.is_empty() {
            taps.retain(|t| t.send(m.clone()).is_ok());
        }
    }
}
