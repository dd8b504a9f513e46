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
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => waiting(self),
            }
        }
    }

    /// Re-reads the whole tree (`full`: every directory, whatever its times say) and waits
    /// for it: what it changed, `None` if the engine stopped first, or why it failed.
    pub fn reconcile_and_wait(
        &self,
        msgs: &Receiver<EngineMsg>,
        full: bool,
    ) -> Result<Option<ReconcileStats>, String> {
        self.reconcile(None, full);
        loop {
            match msgs.recv() {
                Ok(EngineMsg::Reconciled(s)) => return Ok(Some(s)),
                Ok(EngineMsg::Failed(e)) => return Err(e),
                Ok(_) => {}
                Err(_) => return Ok(None),
            }
        }
    }
}
