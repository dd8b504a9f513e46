//! The store's own thread: it owns the `Connection`; everyone else sends it `StoreCmd`s over a
//! channel and goes on. Each batch is one transaction. After a failure (a full disk, say) it
//! stops writing, so the database stays at its last whole generation, and says why to anyone
//! who asks.

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use super::{Store, StoreError};
use crate::tree::{Changes, RowChunk};

/// Commands to the store thread.
pub enum StoreCmd {
    /// A snapshot of the whole tree: its rows arrive on `rows`, closed by `SnapshotPart::End`.
    /// A snapshot whose sender goes away before `End` is rolled back, never committed. Other
    /// commands wait until it is done.
    Snapshot {
        generation: u64,
        epoch: u64,
        verified_at: u64,
        rows: Receiver<SnapshotPart>,
    },
    /// One batch of changes (one transaction).
    Apply(Changes),
    /// One applied watch batch: its changes and its `mutation_log` rows, in one transaction.
    ApplyLogged(Changes, super::LogBatch),
    /// A full scan or reconcile finished.
    RecordScan {
        kind: &'static str,
        start: u64,
        entries: u64,
        errors: u64,
        full: bool,
    },
    /// One released watch batch for `mutation_log` (one transaction, then retention).
    LogMutations {
        batch: u64,
        rows: Vec<super::LogRow>,
        retention: super::Retention,
    },
    /// One batch with the size history samples it made (one transaction).
    Batch {
        changes: Changes,
        log: Option<super::LogBatch>,
        samples: Vec<crate::history::Sample>,
    },
    /// Size history samples on their own (one transaction).
    Samples(Vec<crate::history::Sample>),
    /// Thin the size history as of this time (ms since the epoch).
    ThinHistory(i64),
    /// A session starts (ms since the epoch): its `sessions` row, a thinning, then the newest
    /// sample of each directory goes back on `reply`. Here, not before the first frame: a
    /// start from the cache must not wait on SQLite writes.
    BeginSession {
        start_ms: i64,
        reply: Sender<crate::history::Latest>,
    },
    /// The session begun by `BeginSession` ends now (ms since the epoch).
    EndSession { end_ms: i64 },
    /// Replies once everything sent before it is committed (or failed).
    Flush(Sender<Result<u64, String>>),
}

/// A piece of a snapshot.
pub enum SnapshotPart {
    Rows(RowChunk),
    End,
}

/// The sending side; dropping it (after `close`) ends the thread.
pub struct StoreHandle {
    tx: Option<Sender<StoreCmd>>,
    thread: Option<JoinHandle<()>>,
}

/// How a snapshot's rows travel to the thread: a bounded channel, so a slow disk slows the
/// copier (which holds no lock while it waits) instead of filling memory.
const SNAPSHOT_QUEUE: usize = 8;

impl StoreHandle {
    /// Starts the thread with an open store whose last committed generation is `committed`.
    pub fn spawn(store: Store, committed: u64) -> std::io::Result<StoreHandle> {
        let (tx, rx) = unbounded();
        let thread = std::thread::Builder::new()
            .name("dtui-store".into())
            .spawn(move || run(store, &rx, committed))?;
        Ok(StoreHandle {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Sends a command. If the thread is gone the command is lost, and that shows where it
    /// matters: `flush` then reports the thread gone.
    pub fn send(&self, cmd: StoreCmd) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(cmd);
        }
    }

    /// Waits until everything sent so far is committed; the committed generation, or why not.
    pub fn flush(&self) -> Result<u64, String> {
        let (tx, rx) = bounded(1);
        self.send(StoreCmd::Flush(tx));
        rx.recv()
            .unwrap_or_else(|_| Err("the store thread has stopped".into()))
    }

    /// A bounded sender for snapshot rows (see `SNAPSHOT_QUEUE`).
    #[must_use]
    pub fn snapshot_queue() -> (Sender<SnapshotPart>, Receiver<SnapshotPart>) {
        bounded(SNAPSHOT_QUEUE)
    }

    /// Flushes, then stops the thread.
    pub fn close(mut self) -> Result<u64, String> {
        let result = self.flush();
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        result
    }
}

impl Drop for StoreHandle {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(mut store: Store, rx: &Receiver<StoreCmd>, mut committed: u64) {
    let mut failure: Option<String> = None;
    // The `sessions` row of this run, once begun.
    let mut session: Option<i64> = None;
    let fail = |e: StoreError, failure: &mut Option<String>| {
        if failure.is_none() {
            *failure = Some(e.to_string());
        }
    };
    while let Ok(cmd) = rx.recv() {
        match cmd {
            StoreCmd::Flush(reply) => {
                let _ = reply.send(match &failure {
                    Some(why) => Err(why.clone()),
                    None => Ok(committed),
                });
            }
            _ if failure.is_some() => {} // the database stays at its last whole generation
            StoreCmd::Snapshot {
                generation,
                epoch,
                verified_at,
                rows,
            } => {
                let ended = std::cell::Cell::new(false);
                let chunks = std::iter::from_fn(|| match rows.recv() {
                    Ok(SnapshotPart::Rows(c)) => Some(c),
                    Ok(SnapshotPart::End) => {
                        ended.set(true);
                        None
                    }
                    Err(_) => None,
                });
                match store.write_snapshot(chunks, &|| ended.get(), generation, epoch, verified_at)
                {
                    Ok(_) => {
                        committed = generation;
                        let _ = store.checkpoint();
                    }
                    Err(e) => fail(e, &mut failure),
                }
            }
            StoreCmd::Apply(changes) => match store.apply(&changes) {
                Ok(()) => committed = changes.generation,
                Err(e) => fail(e, &mut failure),
            },
            StoreCmd::ApplyLogged(changes, log) => {
                match store.apply_with_log(&changes, Some(&log)) {
                    Ok(()) => committed = changes.generation,
                    Err(e) => fail(e, &mut failure),
                }
            }
            StoreCmd::Batch {
                changes,
                log,
                samples,
            } => match store.apply_batch(&changes, log.as_ref(), &samples) {
                Ok(()) => committed = changes.generation,
                Err(e) => fail(e, &mut failure),
            },
            StoreCmd::Samples(samples) => {
                if let Err(e) = store.write_samples(&samples) {
                    fail(e, &mut failure);
                }
            }
            // History upkeep is not worth stopping the cache for.
            StoreCmd::ThinHistory(now_ms) => {
                let _ = store.thin_history(now_ms);
            }
            StoreCmd::BeginSession { start_ms, reply } => {
                session = store.begin_session(start_ms).ok();
                let every =
                    i64::try_from(crate::history::THIN_EVERY.as_millis()).unwrap_or(i64::MAX);
                let _ = store.thin_history_if_due(start_ms, every);
                let _ = reply.send(store.latest_samples().unwrap_or_default());
            }
            StoreCmd::EndSession { end_ms } => {
                if let Some(id) = session {
                    let _ = store.end_session(id, end_ms);
                }
            }
            StoreCmd::LogMutations {
                batch,
                rows,
                retention,
            } => {
                if let Err(e) = store.log_mutations(batch, &rows, retention) {
                    fail(e, &mut failure);
                }
            }
            StoreCmd::RecordScan {
                kind,
                start,
                entries,
                errors,
                full,
            } => {
                if let Err(e) = store.record_scan(kind, start, entries, errors, full) {
                    fail(e, &mut failure);
                }
            }
        }
    }
}
