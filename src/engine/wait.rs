//! Waiting on an engine, for a client with nothing else to do meanwhile (the headless
//! commands, and the tests, which open trees the way they do): for its first pass, and for
//! a reconcile of the whole tree.

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::{Engine, EngineMsg};
use crate::reconcile::ReconcileStats;
use crate::scan::ScanStats;

/// How an engine's first pass went, as its messages said (`Engine::wait_ready`).
#[derive(Debug, Clone, Default)]
pub struct FirstPass {
    /// The pass was a scan, done.
    pub scan: Option<ScanStats>,
    /// The pass was a catch-up, done.
    pub catch_up: Option<ReconcileStats>,
    /// Why the pass could not finish (the tree keeps what it had), or why the engine stopped
    /// before its tree was complete: the tree is then not to be reported as the tree.
    pub failed: Option<String>,
    /// Attached, the owner went away (who it was) before the tree was complete (`failed`
    /// says so too): opening the root again (on its own, or attached to the next owner) can
    /// still answer.
    pub detached: Option<String>,
}

/// How `Engine::reconcile_and_wait` ended.
#[derive(Debug)]
pub enum Reconciled {
    /// What the re-read changed.
    Done(ReconcileStats),
    /// Attached, the owner went away (who it was) before it answered.
    Detached(String),
    /// The engine stopped first.
    Stopped,
}

impl Reconciled {
    /// What the re-read changed, if it said.
    #[must_use]
    pub fn stats(self) -> Option<ReconcileStats> {
        match self {
            Reconciled::Done(s) => Some(s),
            Reconciled::Detached(_) | Reconciled::Stopped => None,
        }
    }
}

/// How often `wait_ready` calls its `waiting`.
const TICK: Duration = Duration::from_millis(200);

impl Engine {
    /// Waits for the first pass (scan or catch-up) to end, reading `msgs` (the channel given
    /// to `start`), and calls `waiting` every 200 ms while it runs (a progress line).
    pub fn wait_ready(
        &self,
        msgs: &Receiver<EngineMsg>,
        mut waiting: impl FnMut(&Engine),
    ) -> FirstPass {
        let mut first = FirstPass::default();
        loop {
            match msgs.recv_timeout(TICK) {
                Ok(EngineMsg::Ready) => return first,
                Err(RecvTimeoutError::Disconnected) => {
                    first.failed.get_or_insert_with(|| {
                        "the engine stopped before the tree was complete".into()
                    });
                    return first;
                }
                Ok(EngineMsg::ScanDone(s)) => first.scan = Some(s),
                Ok(EngineMsg::CatchUpDone(c)) => first.catch_up = Some(c),
                Ok(EngineMsg::Failed(e)) => first.failed = Some(e),
                Ok(EngineMsg::Detached(owner)) => {
                    first.failed.get_or_insert_with(|| {
                        format!("the owner this attached to, {owner}, went away before the tree was complete")
                    });
                    first.detached = Some(owner);
                    return first;
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => waiting(self),
            }
        }
    }

    /// Re-reads the whole tree (`full`: every directory, whatever its times say) and waits
    /// for it: what it changed, or why it did not say, or why it failed.
    pub fn reconcile_and_wait(
        &self,
        msgs: &Receiver<EngineMsg>,
        full: bool,
    ) -> Result<Reconciled, String> {
        self.reconcile(None, full);
        loop {
            match msgs.recv() {
                Ok(EngineMsg::Reconciled(s)) => return Ok(Reconciled::Done(s)),
                Ok(EngineMsg::Failed(e)) => return Err(e),
                Ok(EngineMsg::Detached(owner)) => return Ok(Reconciled::Detached(owner)),
                Ok(_) => {}
                Err(_) => return Ok(Reconciled::Stopped),
            }
        }
    }
}
