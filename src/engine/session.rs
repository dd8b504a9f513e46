//! A root's session: the tree opened through its cache (`cache::open`), and what keeps the
//! two aligned while the engine runs it: the first snapshot after a scan, every batch's
//! rows and size history samples, the record of each pass, a resave after a full disk, and
//! the clean close that marks the saved arena as the database's. Only the engine's thread
//! holds one; the passes it runs are its workers.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::Flock;

use crate::cache::{self, CacheOptions, OpenError, OpenWith, Origin, Saved};
use crate::fs::RootDir;
use crate::history::{self, HistorySource, SessionHistory};
use crate::reconcile::ReconcileStats;
use crate::scan::ScanStats;
use crate::store::writer::{SnapshotPart, StoreCmd, StoreHandle};
use crate::store::{Commit, TotalBudget};
use crate::tree::{self, NodeId, RowChunk, Tree};

/// A fresh lineage id for a new snapshot: unlike a generation number, never reused.
fn new_epoch() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut seed = nanos.to_le_bytes().to_vec();
    seed.extend_from_slice(&std::process::id().to_le_bytes());
    seed.extend_from_slice(&(std::ptr::from_ref(&seed) as usize).to_le_bytes());
    xxhash_rust::xxh3::xxh3_64(&seed).max(1)
}

/// A tree opened through its cache (or without one), and what keeps the two aligned.
pub struct Session {
    pub tree: Arc<RwLock<Tree>>,
    pub origin: Origin,
    /// Set when this run scanned the whole tree.
    scan: Option<ScanStats>,
    /// Things worth telling the user (a cache that could not be used, and why).
    pub warnings: Vec<String>,
    /// What the user is told besides (`cache::Opened::notes`).
    pub notes: Vec<String>,
    store: Option<StoreHandle>,
    snapshot: Option<JoinHandle<()>>,
    /// The root, opened once for the whole session: every scan and catch-up starts from it.
    root: Arc<RootDir>,
    /// The first scan is still to run.
    pending: bool,
    verified_at: u64,
    /// Where the arena is saved at a clean close.
    arena_path: Option<PathBuf>,
    /// The size history this session records (with a cache only, once `begin_history`).
    history: Option<std::sync::Mutex<SessionHistory>>,
    /// `settle_loaded` has run.
    settled: std::sync::atomic::AtomicBool,
    /// The database a history would be kept in (with a cache only).
    history_db: Option<PathBuf>,
    /// The bytes the arena takes once saved, for the store's budget (`Upkeep::arena_len`).
    arena_len: Arc<AtomicU64>,
    /// The cache's directory and key, and what all the caches there may take: kept again
    /// at a clean close, when this cache has its new size.
    total: Option<(PathBuf, String, TotalBudget)>,
    _lock: Option<Flock<File>>,
}

impl Session {
    /// Opens `path` through its cache, as `with` says (its budgets, its scan options, an
    /// ancestor's cache allowed): the cached tree if there is a usable one, else a tree
    /// holding only the root, its first scan left to the engine (so a browser can show the
    /// tree while it fills; `needs_scan`).
    pub fn prepare(
        path: &Path,
        cache: &CacheOptions,
        with: OpenWith,
    ) -> Result<Session, OpenError> {
        let opened = cache::open(path, cache, with)?;
        let pending = !opened.origin.from_cache();
        let (store, verified_at, arena_path, history_db, arena_len, lock, total) = match opened.kept
        {
            Some(k) => (
                Some(k.store),
                k.verified_at,
                Some(k.paths.arena),
                Some(k.paths.db),
                k.arena_len,
                Some(k.lock),
                Some((k.dir, k.paths.key, with.total)),
            ),
            None => (None, 0, None, None, Arc::new(AtomicU64::new(0)), None, None),
        };
        Ok(Session {
            tree: Arc::new(RwLock::new(opened.tree)),
            origin: opened.origin,
            scan: None,
            warnings: opened.warnings,
            notes: opened.notes,
            store,
            snapshot: None,
            root: Arc::new(opened.root),
            pending,
            verified_at,
            arena_path,
            history: None,
            settled: std::sync::atomic::AtomicBool::new(false),
            history_db,
            arena_len,
            total,
            _lock: lock,
        })
    }

    /// Starts recording this run as a session of the size history (`dtui changes` counts
    /// from sessions). Only a run that looks at the disk (a scan, a catch-up, a watch) is
    /// one: a run that shows the cached tree as it is would hide the changes it never saw.
    pub fn begin_history(&mut self, new_session: bool) {
        if self.history.is_some() {
            return;
        }
        if let (Some(db), Some(store)) = (&self.history_db, &self.store) {
            let h = SessionHistory::begin(store, db, self.origin.from_cache(), new_session);
            self.history = Some(std::sync::Mutex::new(h));
        }
    }

    /// Does the tree still need its first scan (the engine's first pass runs it)?
    #[must_use]
    pub fn needs_scan(&self) -> bool {
        self.pending
    }

    /// The session's root, opened once.
    #[must_use]
    pub fn root(&self) -> &Arc<RootDir> {
        &self.root
    }

    /// The first scan, run by someone else on `tree` from `root` (the engine runs it on a
    /// worker while it queues watch events): marks it done and starts writing the snapshot.
    pub fn adopt_scan(&mut self, stats: ScanStats, started: u64) {
        self.pending = false;
        self.scan = Some(stats);
        self.verified_at = started;
        if let Some(store) = &self.store {
            let epoch = new_epoch();
            let generation = {
                let mut t = tree::write(&self.tree);
                t.track_changes();
                t.set_epoch(epoch);
                self.arena_len.store(t.saved_len(), Ordering::Relaxed);
                t.bump_generation()
            };
            self.snapshot = Some(start_snapshot(
                store, &self.tree, generation, epoch, started,
            ));
            if let Some(h) = &self.history {
                let mut h = h.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let samples = h
                    .recorder(true)
                    .sync_all(&tree::read(&self.tree), history::now_ms());
                store.send(StoreCmd::Commit(Commit {
                    samples,
                    ..Commit::default()
                }));
            }
            store.send(StoreCmd::RecordScan {
                kind: "scan",
                start: started,
                entries: stats.entries,
                errors: stats.errors,
                full: false,
            });
        }
    }

    /// The thread copying the first snapshot out of the tree, if it runs: changes applied
    /// while it copies would put rows of two moments into one generation, so the engine waits
    /// for it (queueing events) before it applies anything.
    pub fn take_snapshot_copier(&mut self) -> Option<JoinHandle<()>> {
        self.snapshot.take()
    }

    /// A catch-up or reconcile run by someone else: persists what it changed and records it.
    pub fn adopt_pass(&mut self, kind: &'static str, stats: &ReconcileStats, started: u64) {
        self.persist();
        if let Some(store) = &self.store {
            store.send(StoreCmd::RecordScan {
                kind,
                start: started,
                entries: tree::read(&self.tree).len(),
                errors: stats.errors,
                full: true,
            });
        }
        self.verified_at = started;
    }

    /// Persists what changed since the last batch with this watch batch's log rows, in one
    /// transaction; returns the ids of the changed (and freed) nodes.
    #[must_use = "the ids are what the batch touched"]
    pub fn commit_batch(&self, log: Option<crate::store::LogBatch>) -> Vec<u32> {
        let changes = {
            let mut t = tree::write(&self.tree);
            if log.is_none() && !t.has_changes() {
                // Nothing to persist: no new generation (the tree must never be ahead of
                // the database for nothing).
                return Vec::new();
            }
            let changes = t.take_changes();
            self.arena_len.store(t.saved_len(), Ordering::Relaxed);
            (self.samples(&t, &changes), changes)
        };
        let (samples, changes) = changes;
        let ids: Vec<u32> = changes.touched().collect();
        if let Some(store) = &self.store {
            if log.is_some() || !changes.is_empty() {
                store.send(StoreCmd::Commit(Commit {
                    changes: Some(changes),
                    log,
                    samples,
                }));
            }
        }
        ids
    }

    /// Now, in seconds since the epoch: when a pass started, for `adopt_*`.
    #[must_use]
    pub fn now() -> u64 {
        cache::now_secs()
    }

    /// Sends what changed in the tree since the last batch to the store (one transaction).
    pub fn persist(&self) {
        let Some(store) = &self.store else {
            return;
        };
        let changes = {
            let mut t = tree::write(&self.tree);
            if !t.has_changes() {
                return;
            }
            let changes = t.take_changes();
            self.arena_len.store(t.saved_len(), Ordering::Relaxed);
            (self.samples(&t, &changes), changes)
        };
        let (samples, changes) = changes;
        store.send(StoreCmd::Commit(Commit {
            changes: Some(changes),
            log: None,
            samples,
        }));
    }

    /// The size history samples a batch of changes makes (see `history::Recorder`), with a
    /// thinning now and then.
    fn samples(&self, t: &Tree, changes: &tree::Changes) -> Vec<history::Sample> {
        let Some(h) = &self.history else {
            return Vec::new();
        };
        let mut h = h.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = history::now_ms();
        if h.thin_due()
            && let Some(store) = &self.store
        {
            store.send(StoreCmd::ThinHistory(now));
        }
        // The loaded state is stamped before the first change, should nobody have asked.
        let mut samples = h.sync_loaded(t);
        samples.extend(h.recorder(false).on_changes(t, changes, now));
        samples
    }

    /// What the catch-up of a tree loaded from the cache does first, before it changes
    /// anything (off the path to the first frame): a mapped arena's totals are made to add up
    /// and its hard-link groups charged once each (the catch-up corrects sizes by differences
    /// and looks at a name only when it changed, so a total or a charge that did not match
    /// the entries, forged or left by a bug, would stay wrong for good; a tree rebuilt from
    /// the database was made so already), then the loaded state is stamped in the size
    /// history.
    pub fn before_catch_up(&self) {
        self.settle_loaded();
        self.sync_loaded_history();
    }

    /// The first half of `before_catch_up`, once per session, for any pass over a tree
    /// mapped from the cache (a `reconcile --full` runs no catch-up first, and corrects by
    /// differences too).
    pub fn settle_loaded(&self) {
        use std::sync::atomic::Ordering;
        if !matches!(self.origin, Origin::Mapped { .. })
            || self.settled.swap(true, Ordering::Relaxed)
        {
            return;
        }
        let fixes = cache::totals_fixes(&tree::read(&self.tree));
        let mut t = tree::write(&self.tree);
        if !fixes.is_empty() {
            cache::apply_totals(&mut t, &fixes);
        }
        // With the totals right, each hard-link group charged exactly once.
        t.build_links();
    }

    /// Stamps the loaded tree's state in the size history (see `SessionHistory::sync_loaded`):
    /// once, before anything changes the tree; off the path to the first frame.
    pub fn sync_loaded_history(&self) {
        let (Some(h), Some(store)) = (&self.history, &self.store) else {
            return;
        };
        let mut h = h.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let samples = h.sync_loaded(&tree::read(&self.tree));
        if !samples.is_empty() {
            store.send(StoreCmd::Commit(Commit {
                samples,
                ..Commit::default()
            }));
        }
    }

    /// Where this session's size history is, if it keeps one.
    #[must_use]
    pub fn history_source(&self) -> Option<HistorySource> {
        self.history.as_ref().map(|h| {
            h.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .source
                .clone()
        })
    }

    /// The directory holding this session's cache files, if it has a cache: a watcher must
    /// ignore changes there (our own writes) when it lies inside the watched tree.
    #[must_use]
    pub fn cache_dir(&self) -> Option<&Path> {
        self.arena_path.as_deref().and_then(Path::parent)
    }

    /// The cache's filesystem is full: the tree is not being saved (`writer::Health`).
    #[must_use]
    pub fn cache_full(&self) -> bool {
        self.store.as_ref().is_some_and(|s| s.health().disk_full())
    }

    /// After a full disk, there is room again (once per answer `true`): time for `resave`.
    #[must_use]
    pub fn resave_due(&self) -> bool {
        self.store.as_ref().is_some_and(|s| s.health().take_retry())
    }

    /// Saves the whole tree again, as a new lineage, after writes were lost to a full disk:
    /// the rows of every batch since then are in it. Returns the thread copying it out of the
    /// tree: the caller applies nothing until it is done (rows of two moments in one
    /// generation), as after a first scan. Then the size history's tracked directories are
    /// all sampled again (the samples of the lost batches went with them).
    #[must_use = "nothing may change the tree until the copier is done"]
    pub fn resave(&self) -> Option<JoinHandle<()>> {
        let store = self.store.as_ref()?;
        let epoch = new_epoch();
        let generation = {
            let mut t = tree::write(&self.tree);
            // Carried by the snapshot, whatever the last batch that reached the disk.
            let _ = t.take_changes();
            t.set_epoch(epoch);
            self.arena_len.store(t.saved_len(), Ordering::Relaxed);
            t.generation()
        };
        let copier = start_snapshot(store, &self.tree, generation, epoch, self.verified_at);
        if let Some(h) = &self.history {
            let mut h = h.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let samples = h
                .recorder(false)
                .resync_all(&tree::read(&self.tree), history::now_ms());
            store.send(StoreCmd::Commit(Commit {
                samples,
                ..Commit::default()
            }));
        }
        Some(copier)
    }

    /// Is there room on the cache's filesystem for a whole snapshot of the tree, about?
    fn room_to_resave(&self) -> bool {
        self.cache_dir().is_some_and(|d| {
            crate::store::budget::room_for(
                d,
                crate::store::writer::snapshot_room(tree::read(&self.tree).len()),
            )
        })
    }

    /// Waits for the store to commit everything, then marks the arena clean at the same
    /// generation, so the next start maps it as it is.
    #[must_use]
    pub fn close(mut self) -> Saved {
        if let Some(s) = self.snapshot.take() {
            let _ = s.join();
        }
        if self.scan.is_none() && !self.origin.from_cache() {
            return Saved::NoCache; // the scan never ran to its end: nothing worth keeping
        }
        self.persist();
        if self.cache_full() && self.room_to_resave() {
            // One last try at quitting: the backoff may not have looked since room came back.
            if let Some(copier) = self.resave() {
                let _ = copier.join();
            }
        }
        let Some(store) = self.store.take() else {
            return Saved::NoCache;
        };
        if self.history.is_some() {
            store.send(StoreCmd::EndSession {
                end_ms: history::now_ms(),
            });
        }
        let saved = match store.close() {
            Ok(committed) => {
                // What the save would write for nothing (names of entries gone meanwhile).
                // Offsets only: no row of the database changes, the generation stays.
                tree::write(&self.tree).compact_names_for_save();
                let t = tree::read(&self.tree);
                if committed != t.generation() {
                    return Saved::Failed {
                        why: format!(
                            "the database is at generation {committed}, the tree at {}",
                            t.generation()
                        ),
                    };
                }
                let Some(path) = &self.arena_path else {
                    return Saved::NoCache;
                };
                if matches!(self.origin, Origin::Mapped { generation } if generation == committed) {
                    // Mapped from that very file and unchanged since: it is already saved.
                    Saved::Clean {
                        generation: committed,
                        evicted: Vec::new(),
                    }
                } else {
                    match t.save(path) {
                        Ok(()) => Saved::Clean {
                            generation: committed,
                            evicted: Vec::new(),
                        },
                        // The database is whole at this generation and no arena claims it (the
                        // temp file is gone, an older arena is at another generation): the next
                        // start rebuilds from the database.
                        Err(e)
                            if matches!(&e, tree::ArenaError::Io { source, .. }
                            if source.raw_os_error() == Some(libc::ENOSPC)) =>
                        {
                            Saved::Failed {
                                why: format!(
                                    "{e}: the disk is full; the next start rebuilds the tree from \
                                 the database"
                                ),
                            }
                        }
                        Err(e) => Saved::Failed { why: e.to_string() },
                    }
                }
            }
            Err(why) => Saved::Failed {
                why: why.to_string(),
            },
        };
        match (saved, &self.total) {
            // This cache has its size for now: the others make room for it, if need be.
            (Saved::Clean { generation, .. }, Some((dir, key, total))) => Saved::Clean {
                generation,
                evicted: cache::enforce_total(dir, key, *total),
            },
            (saved, _) => saved,
        }
    }
}

/// Copies the tree into the store in the background, a chunk of rows per short read lock,
/// so readers and the scanner's successors never wait on SQLite. Changes made meanwhile are
/// tracked and follow as ordinary batches.
fn start_snapshot(
    store: &StoreHandle,
    tree: &Arc<RwLock<Tree>>,
    generation: u64,
    epoch: u64,
    verified_at: u64,
) -> JoinHandle<()> {
    let (tx, rx) = StoreHandle::snapshot_queue();
    store.send(StoreCmd::Snapshot {
        generation,
        epoch,
        verified_at,
        rows: rx,
    });
    let tree = Arc::clone(tree);
    std::thread::Builder::new()
        .name("dtui-snapshot".into())
        .spawn(move || {
            const CHUNK: u32 = 16 * 1024;
            let mut next = 0u32;
            loop {
                let chunk = {
                    let t = tree::read(&tree);
                    let count = t.arena().header().node_count;
                    if next >= count {
                        break;
                    }
                    let end = next.saturating_add(CHUNK).min(count);
                    let mut c = RowChunk::with_capacity((end - next) as usize);
                    for id in next..end {
                        let id = NodeId(id);
                        if t.is_live(id) {
                            c.push(t.row(id), t.name(id));
                        }
                    }
                    next = end;
                    c
                };
                if tx.send(SnapshotPart::Rows(chunk)).is_err() {
                    return;
                }
            }
            let _ = tx.send(SnapshotPart::End);
        })
        .expect("spawning the snapshot thread")
}
