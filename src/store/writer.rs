//! The store's own thread: it owns the `Connection`; everyone else sends it `StoreCmd`s over a
//! channel and goes on. Each batch is one transaction, and after it the cache is kept within
//! its byte budget (`super::budget`).
//!
//! A failed transaction is rolled back, so the database stays at its last whole generation.
//! When the cache's filesystem is full, the thread says so (`Health`), drops what it is sent
//! (a batch changes only some rows: one missing makes every later one wrong), and looks again
//! after a backoff (1 s doubling to a minute); once there is room it asks the session for a
//! whole snapshot (`Health::take_retry`), which replaces the rows and is a new lineage. Any
//! other failure stops writing for good, and says why to anyone who asks.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};

use super::budget::{self, CacheBudget};
use super::{Commit, Store, StoreError};
use crate::tree::RowChunk;

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
    /// One transaction: a batch's rows, log and samples (see `Commit`).
    Commit(Commit),
    /// A full scan or reconcile finished.
    RecordScan {
        kind: &'static str,
        start: u64,
        entries: u64,
        errors: u64,
        full: bool,
    },
    /// Thin the size history as of this time (ms since the epoch).
    ThinHistory(i64),
    /// A session starts (ms since the epoch): its `sessions` row, a thinning, then the newest
    /// sample of each directory goes back on `reply`. Here, not before the first frame: a
    /// start from the cache must not wait on SQLite writes.
    BeginSession {
        start_ms: i64,
        /// A session of its own (the browser, a watch); a query only reads the samples.
        new_session: bool,
        reply: Sender<super::Latest>,
    },
    /// The session begun by `BeginSession` ends now (ms since the epoch).
    EndSession { end_ms: i64 },
    /// Replies once everything sent before it is committed (or failed).
    Flush(Sender<Result<u64, WriteError>>),
}

/// A piece of a snapshot.
pub enum SnapshotPart {
    Rows(RowChunk),
    End,
}

/// What the store thread keeps within bounds, and where.
#[derive(Debug, Clone)]
pub struct Upkeep {
    pub budget: CacheBudget,
    /// The arena file beside the database (its bytes count against the budget).
    pub arena: PathBuf,
    /// The bytes the tree's arena takes once saved, kept current by the session: the arena
    /// file will be that large at the next clean close, and `CacheBudget::Auto` scales by it.
    pub arena_len: Arc<AtomicU64>,
}

/// How the store thread is doing, for the state word: read by the engine, never waited on.
#[derive(Debug, Default)]
pub struct Health {
    full: AtomicBool,
    retry: AtomicBool,
}

impl Health {
    /// The cache's filesystem is full: nothing is being saved.
    #[must_use]
    pub fn disk_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }

    /// There is room again: the session should send a whole snapshot (once per `true`).
    #[must_use]
    pub fn take_retry(&self) -> bool {
        self.retry.swap(false, Ordering::Relaxed)
    }
}

/// What the state word says while the cache's filesystem is full.
pub const DISK_FULL: &str = "cache not saved (disk full)";

/// The sending side; dropping it (after `close`) ends the thread.
pub struct StoreHandle {
    tx: Option<Sender<StoreCmd>>,
    thread: Option<JoinHandle<()>>,
    health: Arc<Health>,
}

/// How a snapshot's rows travel to the thread: a bounded channel, so a slow disk slows the
/// copier (which holds no lock while it waits) instead of filling memory.
const SNAPSHOT_QUEUE: usize = 8;

impl StoreHandle {
    /// Starts the thread with an open store whose last committed generation is `committed`
    /// and which holds `entries` rows.
    pub fn spawn(
        store: Store,
        committed: u64,
        entries: u64,
        upkeep: Upkeep,
    ) -> std::io::Result<StoreHandle> {
        let (tx, rx) = unbounded();
        let health = Arc::new(Health::default());
        let writer = Writer {
            store,
            committed,
            entries,
            failure: None,
            full: None,
            session: None,
            health: Arc::clone(&health),
            upkeep,
            limit: 0,
            futile_above: 0,
        };
        let thread = std::thread::Builder::new()
            .name("dtui-store".into())
            .spawn(move || writer.run(&rx))?;
        Ok(StoreHandle {
            tx: Some(tx),
            thread: Some(thread),
            health,
        })
    }

    /// How the thread is doing.
    #[must_use]
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// Sends a command. If the thread is gone the command is lost, and that shows where it
    /// matters: `flush` then reports the thread gone.
    pub fn send(&self, cmd: StoreCmd) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(cmd);
        }
    }

    /// Waits until everything sent so far is committed; the committed generation, or why not.
    pub fn flush(&self) -> Result<u64, WriteError> {
        let (tx, rx) = bounded(1);
        self.send(StoreCmd::Flush(tx));
        rx.recv().unwrap_or(Err(WriteError::Gone))
    }

    /// A bounded sender for snapshot rows (see `SNAPSHOT_QUEUE`).
    #[must_use]
    pub fn snapshot_queue() -> (Sender<SnapshotPart>, Receiver<SnapshotPart>) {
        bounded(SNAPSHOT_QUEUE)
    }

    /// Flushes, then stops the thread.
    pub fn close(mut self) -> Result<u64, WriteError> {
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

/// The first wait after the disk filled, and the longest.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Waiting out a full disk.
struct Full {
    backoff: Duration,
    next: Instant,
    /// There was room: a snapshot is asked for, and nothing else is tried until it comes.
    asked: bool,
}

/// Why what was sent to the store is not all in the database.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// A write failed, and writing stopped for good (its error, as it was said).
    #[error("{0}")]
    Stopped(String),
    /// The cache's filesystem is full: the database keeps its last saved state.
    #[error("{}: the disk is full; it keeps its last saved state", crate::path::display_path(.0))]
    DiskFull(PathBuf),
    #[error("the store thread has stopped")]
    Gone,
}

/// The store thread's state.
struct Writer {
    store: Store,
    committed: u64,
    /// Rows in `entries` (what a snapshot needs room for).
    entries: u64,
    /// Why writing stopped for good.
    failure: Option<String>,
    full: Option<Full>,
    /// The `sessions` row of this run, once begun.
    session: Option<i64>,
    health: Arc<Health>,
    upkeep: Upkeep,
    /// The budget's limit the WAL was last bounded for.
    limit: u64,
    /// Thinning could not bring the cache under its budget at this size: not tried again
    /// until it grows past it (the tree's own rows are never thinned).
    futile_above: u64,
}

impl Writer {
    fn run(mut self, rx: &Receiver<StoreCmd>) {
        self.upkeep_budget();
        loop {
            let next = self.full.as_ref().filter(|f| !f.asked).map(|f| f.next);
            let cmd = match next {
                Some(at) => match rx.recv_deadline(at) {
                    Ok(cmd) => cmd,
                    Err(RecvTimeoutError::Timeout) => {
                        self.look_for_room();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match rx.recv() {
                    Ok(cmd) => cmd,
                    Err(_) => return,
                },
            };
            if self.handle(cmd) {
                self.upkeep_budget();
            }
        }
    }

    /// A write failed: a full disk is waited out, anything else stops writing for good.
    fn fail(&mut self, e: &StoreError) {
        if !e.is_disk_full() {
            if self.failure.is_none() {
                self.failure = Some(e.to_string());
            }
            return;
        }
        let backoff = self
            .full
            .as_ref()
            .map_or(FIRST_BACKOFF, |f| (f.backoff * 2).min(MAX_BACKOFF));
        self.full = Some(Full {
            backoff,
            next: Instant::now() + backoff,
            asked: false,
        });
        self.health.retry.store(false, Ordering::Relaxed);
        self.health.full.store(true, Ordering::Relaxed);
        self.store.end_transaction();
        // The rolled-back frames stay in the WAL file: give their room back.
        let _ = self.store.checkpoint();
    }

    /// The backoff is over: if the filesystem has room for a snapshot, ask for one; else wait
    /// longer.
    fn look_for_room(&mut self) {
        let Some(full) = &mut self.full else { return };
        let dir = self
            .store
            .path()
            .parent()
            .map_or_else(|| PathBuf::from("."), PathBuf::from);
        if budget::room_for(&dir, snapshot_room(self.entries)) {
            full.asked = true;
            self.health.retry.store(true, Ordering::Relaxed);
        } else {
            full.backoff = (full.backoff * 2).min(MAX_BACKOFF);
            full.next = Instant::now() + full.backoff;
        }
    }

    /// Handles one command; true if it wrote to the database.
    fn handle(&mut self, cmd: StoreCmd) -> bool {
        match cmd {
            StoreCmd::Flush(reply) => {
                let _ = reply.send(match (&self.failure, &self.full) {
                    (Some(why), _) => Err(WriteError::Stopped(why.clone())),
                    (None, Some(_)) => Err(WriteError::DiskFull(self.store.path().to_path_buf())),
                    (None, None) => Ok(self.committed),
                });
                false
            }
            _ if self.failure.is_some() => false, // the database stays at its last generation
            StoreCmd::Snapshot {
                generation,
                epoch,
                verified_at,
                rows,
            } => {
                self.snapshot(generation, epoch, verified_at, &rows);
                true
            }
            // The session's row and reads: tried even on a full disk (the newest samples
            // are read, not written).
            StoreCmd::BeginSession {
                start_ms,
                new_session,
                reply,
            } => {
                if new_session {
                    self.session = self.store.begin_session(start_ms).ok();
                    let every = i64::try_from(super::THIN_EVERY.as_millis()).unwrap_or(i64::MAX);
                    if self.full.is_none() {
                        let _ = self.store.thin_history_if_due(start_ms, every);
                    }
                }
                let _ = reply.send(self.store.latest_samples().unwrap_or_default());
                true
            }
            StoreCmd::EndSession { end_ms } => {
                if let Some(id) = self.session {
                    let _ = self.store.end_session(id, end_ms);
                }
                false
            }
            // Waiting for room: a batch alone would be wrong, the snapshot that follows
            // carries it.
            _ if self.full.is_some() => false,
            cmd => {
                self.write(cmd);
                true
            }
        }
    }

    fn snapshot(
        &mut self,
        generation: u64,
        epoch: u64,
        verified_at: u64,
        rows: &Receiver<SnapshotPart>,
    ) {
        let ended = std::cell::Cell::new(false);
        let chunks = std::iter::from_fn(|| match rows.recv() {
            Ok(SnapshotPart::Rows(c)) => Some(c),
            Ok(SnapshotPart::End) => {
                ended.set(true);
                None
            }
            Err(_) => None,
        });
        match self
            .store
            .write_snapshot(chunks, &|| ended.get(), generation, epoch, verified_at)
        {
            Ok(n) => {
                self.committed = generation;
                self.entries = n;
                if self.full.take().is_some() {
                    self.health.full.store(false, Ordering::Relaxed);
                    self.health.retry.store(false, Ordering::Relaxed);
                }
                let _ = self.store.checkpoint();
            }
            Err(e) => self.fail(&e),
        }
    }

    /// A command that writes rows (not while the disk is full).
    fn write(&mut self, cmd: StoreCmd) {
        let r = match cmd {
            StoreCmd::Commit(c) => self.store.commit(&c).map(|_| c.changes),
            // History upkeep is not worth stopping the cache for.
            StoreCmd::ThinHistory(now_ms) => {
                let _ = self.store.thin_history(now_ms);
                return;
            }
            StoreCmd::RecordScan {
                kind,
                start,
                entries,
                errors,
                full,
            } => {
                let r = self.store.record_scan(kind, start, entries, errors, full);
                self.done(r);
                return;
            }
            StoreCmd::Snapshot { .. }
            | StoreCmd::BeginSession { .. }
            | StoreCmd::EndSession { .. }
            | StoreCmd::Flush(_) => return, // handled by `handle`
        };
        match r {
            Ok(Some(changes)) => {
                self.committed = changes.generation;
                self.entries = changes.entries;
            }
            Ok(None) => {}
            Err(e) => self.fail(&e),
        }
    }

    fn done(&mut self, r: Result<(), StoreError>) {
        if let Err(e) = r {
            self.fail(&e);
        }
    }

    /// Keeps the cache within its budget: when the files pass seven eighths of it, what
    /// grows with time is thinned until they take three quarters, and the files shrink.
    fn upkeep_budget(&mut self) {
        if self.failure.is_some() || self.full.is_some() {
            return;
        }
        let u = &self.upkeep;
        let arena = u
            .arena_len
            .load(Ordering::Relaxed)
            .max(std::fs::symlink_metadata(&u.arena).map_or(0, |m| m.len()));
        let limit = u.budget.limit(arena);
        if limit != self.limit {
            self.limit = limit;
            self.store.set_log_cap(budget::log_cap(limit));
            let _ = self.store.set_wal_limit(limit);
        }
        let db = self.store.path().to_path_buf();
        let other = arena + budget::shm_bytes(&db);
        let total = || {
            std::fs::symlink_metadata(&db).map_or(0, |m| m.len()) + budget::wal_bytes(&db) + other
        };
        let before = total();
        if before <= limit / 8 * 7 || before <= self.futile_above {
            return;
        }
        let target = (limit / 4 * 3).saturating_sub(other);
        if let Err(e) = self.store.thin_to(target)
            && e.is_disk_full()
        {
            self.fail(&e);
            return;
        }
        let _ = self.store.shrink(limit / 8);
        let after = total();
        self.futile_above = if after > limit / 8 * 7 {
            after + limit / 8
        } else {
            0
        };
    }
}

/// Room a whole snapshot of `entries` rows needs, about: a row and its index entry take
/// about 120 bytes, written once to the WAL and once to the database.
#[must_use]
pub fn snapshot_room(entries: u64) -> u64 {
    entries.saturating_mul(256) + 1024 * 1024
}
