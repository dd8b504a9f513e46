//! What passes between the engine's thread and its clients: the messages it sends
//! (`EngineMsg`, with each batch's `TreeDelta`), the commands it takes (`EngineCmd`), and the
//! changes this process made itself, told to it directly (`UserChange`).

use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::Sender;

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
}

pub(super) enum EngineCmd {
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
pub struct UserChanges(pub(super) Sender<EngineCmd>);

impl UserChanges {
    /// Hands the engine paths it must re-read now; answered by `EngineMsg::Applied`.
    pub fn send(&self, changes: Vec<UserChange>) {
        if !changes.is_empty() {
            let _ = self.0.send(EngineCmd::User(changes));
        }
    }
}
