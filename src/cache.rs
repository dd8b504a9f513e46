//! Where a root's cache lives and how a tree is opened through it: mapped as it is, rebuilt
//! from SQLite, or scanned, whichever the files on disk allow, and said which.
//!
//! One cache per canonical root under `$XDG_CACHE_HOME/dtui/` (else `~/.cache/dtui/`), or
//! `--cache-dir`: `<key>.db` (SQLite), `<key>.arena` (the mmap tree) and `<key>.lock` (held
//! while a process uses them). A cache that cannot be used (read-only, full, in use, damaged
//! beyond rebuilding, not private: see `private`) never stops the command: it runs without
//! one and says why. What it holds is checked before it is used (`check`).

mod check;
mod manage;
mod private;

pub use check::{
    TotalsFix, apply_totals, bad_name, names_in_rows, names_in_tree, recompute_totals, totals_fixes,
};
pub use manage::{CacheInfo, ClearTarget, clear, list};
pub use private::default_dir;

use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};

use crate::history::{self, HistorySource, SessionHistory};
use crate::reconcile::{self, ReconcileStats};
use crate::scan::{self, Progress, RootDir, ScanError, ScanOptions, ScanStats};
use crate::store::writer::{SnapshotPart, StoreCmd, StoreHandle, Upkeep};
use crate::store::{CacheBudget, Commit, Meta, Store};
use crate::tree::{self, Arena, NodeId, RowChunk, Tree, TreeError};

/// `--cache-dir` and `--no-cache`.
#[derive(Debug, Clone, Default)]
pub struct CacheOptions {
    pub dir: Option<PathBuf>,
    pub disabled: bool,
}

/// How the tree of this run came to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The arena file was mapped as it was.
    Mapped { generation: u64 },
    /// The arena was rebuilt from the database.
    Rebuilt { generation: u64, why: String },
    /// A full scan, with a cache to keep it in.
    Scanned { why: String },
    /// A full scan, without a cache.
    NoCache { why: String },
}

impl Origin {
    #[must_use]
    pub fn from_cache(&self) -> bool {
        matches!(self, Origin::Mapped { .. } | Origin::Rebuilt { .. })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Mapped { generation } => {
                write!(f, "loaded: arena mapped as is (generation {generation})")
            }
            Origin::Rebuilt { generation, why } => write!(
                f,
                "loaded: arena rebuilt from the database (generation {generation}; {why})"
            ),
            Origin::Scanned { why } => write!(f, "new: full scan ({why})"),
            Origin::NoCache { why } => write!(f, "none: {why}"),
        }
    }
}

/// The files of one root's cache.
#[derive(Debug, Clone)]
pub struct CachePaths {
    /// `<name>-<16 hex>`, the stem every file of this cache shares.
    pub key: String,
    pub db: PathBuf,
    pub arena: PathBuf,
    pub lock: PathBuf,
}

impl CachePaths {
    /// `<dir>/<name>-<hash>.*`, keyed by the canonical root path.
    #[must_use]
    pub fn new(dir: &Path, root: &Path) -> CachePaths {
        let bytes = root.as_os_str().as_bytes();
        let hash = xxhash_rust::xxh3::xxh3_64(bytes);
        let base: String = root
            .file_name()
            .map_or_else(|| "root".into(), |n| n.to_string_lossy().into_owned())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(32)
            .collect();
        Self::from_key(dir, &format!("{base}-{hash:016x}"))
    }

    /// The files of the cache whose stem is `key`.
    #[must_use]
    pub fn from_key(dir: &Path, key: &str) -> CachePaths {
        CachePaths {
            key: key.to_owned(),
            db: dir.join(format!("{key}.db")),
            arena: dir.join(format!("{key}.arena")),
            lock: dir.join(format!("{key}.lock")),
        }
    }

    /// Every file of the cache, the SQLite side files included.
    #[must_use]
    pub fn all_files(&self) -> Vec<PathBuf> {
        let side = |suffix: &str| {
            let mut p = self.db.clone().into_os_string();
            p.push(suffix);
            PathBuf::from(p)
        };
        vec![
            self.db.clone(),
            side("-wal"),
            side("-shm"),
            self.arena.clone(),
            self.lock.clone(),
        ]
    }

    fn remove_db(&self) {
        for f in &self.all_files()[..3] {
            let _ = fs::remove_file(f);
        }
    }
}

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

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A tree opened through its cache (or without one), and what keeps the two aligned.
pub struct Session {
    pub tree: Arc<RwLock<Tree>>,
    pub origin: Origin,
    /// Set when this run scanned the whole tree.
    pub scan: Option<ScanStats>,
    /// Things worth telling the user (a cache that could not be used, and why).
    pub warnings: Vec<String>,
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
    _lock: Option<Flock<File>>,
}

/// What `Session::close` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    /// Database and arena are at this generation, and the arena is marked clean.
    Clean {
        generation: u64,
    },
    NoCache,
    /// The database could not be written; the arena is left unclean so it is not trusted.
    Failed {
        why: String,
    },
}

impl Session {
    /// Opens `path` through its cache: the cached tree if there is a usable one, else a scan.
    pub fn open(
        path: &Path,
        cache: &CacheOptions,
        opts: &ScanOptions,
        progress: &Progress,
    ) -> Result<Session, ScanError> {
        let mut s = Self::prepare(path, cache)?;
        s.begin_history();
        s.run_scan(opts, progress)?;
        Ok(s)
    }

    /// Everything `open` does but the scan: the cached tree if there is a usable one, else a
    /// tree holding only the root, with the scan left to `run_scan` (so a browser can show the
    /// tree while it fills).
    pub fn prepare(path: &Path, cache: &CacheOptions) -> Result<Session, ScanError> {
        Self::prepare_within(path, cache, CacheBudget::Auto)
    }

    /// `prepare`, with the cache kept within `budget` bytes on disk.
    #[expect(
        clippy::too_many_lines,
        reason = "one ladder: disabled, no directory, locked, database, arena, else a scan"
    )]
    pub fn prepare_within(
        path: &Path,
        cache: &CacheOptions,
        budget: CacheBudget,
    ) -> Result<Session, ScanError> {
        let root = RootDir::open(path)?;
        if cache.disabled {
            return Self::without_cache(root, "disabled by --no-cache".into(), vec![]);
        }
        let mut warnings = Vec::new();
        let dir = match cache_dir(cache, &mut warnings) {
            Ok(d) => d,
            Err(why) => {
                warnings.push(format!("running without a cache: {why}"));
                return Self::without_cache(root, why, warnings);
            }
        };
        let dir = match private::prepare_dir(&dir) {
            Ok(d) => d,
            Err(why) => {
                warnings.push(format!("running without a cache: {why}"));
                return Self::without_cache(root, why, warnings);
            }
        };
        let paths = CachePaths::new(&dir, &root.path);
        let lock = match open_cache(&dir, &paths) {
            Ok(lock) => lock,
            Err(why) => {
                warnings.push(format!("running without a cache: {why}"));
                return Self::without_cache(root, why, warnings);
            }
        };
        let root_bytes = root.path.as_os_str().as_bytes().to_vec();
        let store = match open_store(&paths, &root_bytes) {
            Ok(s) => s,
            Err(why) if why.environment => {
                let why = format!("the cache cannot be written: {}", why.text);
                warnings.push(format!("running without a cache: {why}"));
                return Self::without_cache(root, why, warnings);
            }
            Err(why) => {
                warnings.push(format!("cache database unusable, rebuilt: {}", why.text));
                paths.remove_db();
                match open_store(&paths, &root_bytes) {
                    Ok(s) => s,
                    Err(why) => {
                        let why = format!("the cache cannot be written: {}", why.text);
                        warnings.push(format!("running without a cache: {why}"));
                        return Self::without_cache(root, why, warnings);
                    }
                }
            }
        };
        let meta = store.meta().unwrap_or(Meta {
            root: root_bytes.clone(),
            generation: None,
            entries: 0,
            updated_at: 0,
            verified_at: 0,
            epoch: 0,
        });
        let arena_len = Arc::new(AtomicU64::new(0));
        let upkeep = Upkeep {
            budget,
            arena: paths.arena.clone(),
            arena_len: Arc::clone(&arena_len),
        };
        let entries = meta.entries;
        let spawn = |store, generation| {
            StoreHandle::spawn(store, generation, entries, upkeep).map_err(|e| ScanError::Root {
                path: paths.db.clone(),
                source: e,
            })
        };
        if let Some(generation) = meta.generation {
            match load_tree(&paths, &store, &root, generation, meta.epoch) {
                Ok((mut tree, origin)) => {
                    if !matches!(origin, Origin::Mapped { .. }) {
                        // The file on disk was not trusted: it must not be trusted later
                        // either, when the database may have reached its generation.
                        let _ = fs::remove_file(&paths.arena);
                    }
                    tree.track_changes();
                    arena_len.store(tree.saved_len(), Ordering::Relaxed);
                    let store = spawn(store, generation)?;
                    return Ok(Session {
                        tree: Arc::new(RwLock::new(tree)),
                        origin,
                        scan: None,
                        warnings,
                        store: Some(store),
                        snapshot: None,
                        root: Arc::new(root),
                        pending: false,
                        verified_at: meta.verified_at,
                        arena_path: Some(paths.arena.clone()),
                        history: None,
                        settled: std::sync::atomic::AtomicBool::new(false),
                        history_db: Some(paths.db.clone()),
                        arena_len,
                        _lock: Some(lock),
                    });
                }
                Err(why) => warnings.push(format!("cache unusable, scanning again: {why}")),
            }
        }
        let why = if meta.generation.is_some() {
            "the cached tree could not be loaded".to_owned()
        } else {
            "no complete snapshot in the cache yet".to_owned()
        };
        let _ = fs::remove_file(&paths.arena); // whatever it was, a new snapshot replaces it
        let tree = Arc::new(RwLock::new(
            root.new_tree(Arena::create_temp().map_err(TreeError::from)?)?,
        ));
        let store = spawn(store, 0)?;
        Ok(Session {
            tree,
            origin: Origin::Scanned { why },
            scan: None,
            warnings,
            store: Some(store),
            snapshot: None,
            root: Arc::new(root),
            pending: true,
            verified_at: 0,
            arena_path: Some(paths.arena.clone()),
            history: None,
            settled: std::sync::atomic::AtomicBool::new(false),
            history_db: Some(paths.db.clone()),
            arena_len,
            _lock: Some(lock),
        })
    }

    fn without_cache(
        root: RootDir,
        why: String,
        warnings: Vec<String>,
    ) -> Result<Session, ScanError> {
        let tree = Arc::new(RwLock::new(
            root.new_tree(Arena::create_temp().map_err(TreeError::from)?)?,
        ));
        Ok(Session {
            tree,
            origin: Origin::NoCache { why },
            scan: None,
            warnings,
            store: None,
            snapshot: None,
            root: Arc::new(root),
            pending: true,
            verified_at: 0,
            arena_path: None,
            history: None,
            settled: std::sync::atomic::AtomicBool::new(false),
            history_db: None,
            arena_len: Arc::new(AtomicU64::new(0)),
            _lock: None,
        })
    }

    /// Starts recording this run as a session of the size history (`dtui changes` counts
    /// from sessions). Only a run that looks at the disk (a scan, a catch-up, a watch) is
    /// one: a run that shows the cached tree as it is would hide the changes it never saw.
    pub fn begin_history(&mut self) {
        if self.history.is_some() {
            return;
        }
        if let (Some(db), Some(store)) = (&self.history_db, &self.store) {
            let h = SessionHistory::begin(store, db, self.origin.from_cache());
            self.history = Some(std::sync::Mutex::new(h));
        }
    }

    /// Does the tree still need its first scan (`run_scan`)?
    #[must_use]
    pub fn needs_scan(&self) -> bool {
        self.pending
    }

    /// The session's root, opened once.
    #[must_use]
    pub fn root(&self) -> &Arc<RootDir> {
        &self.root
    }

    /// Runs the first scan if the tree needs one (readers of `tree` see it fill), then starts
    /// writing the snapshot to the store in the background.
    pub fn run_scan(
        &mut self,
        opts: &ScanOptions,
        progress: &Progress,
    ) -> Result<Option<ScanStats>, ScanError> {
        if !std::mem::replace(&mut self.pending, false) {
            return Ok(None);
        }
        let started = now_secs();
        let stats = match scan::scan_root(&self.root, &self.tree, opts, progress) {
            Ok(stats) => stats,
            Err(e) => {
                self.pending = true;
                return Err(e);
            }
        };
        self.adopt_scan(stats, started);
        Ok(Some(stats))
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

    /// When the session was started (seconds since the epoch), for `adopt_*`.
    #[must_use]
    pub fn now() -> u64 {
        now_secs()
    }

    /// After loading from the cache: verifies the whole tree against the disk, applying only
    /// the differences (to the tree and, in one batch, to the store). `None` if the tree was
    /// just scanned.
    pub fn catch_up(
        &mut self,
        opts: &ScanOptions,
        progress: &Progress,
    ) -> Result<Option<ReconcileStats>, ScanError> {
        if !self.origin.from_cache() {
            return Ok(None);
        }
        self.before_catch_up();
        let started = now_secs();
        let stats = reconcile::full(
            &self.tree,
            &self.root,
            opts,
            progress,
            reconcile::Trust::Listings,
        )?;
        self.persist();
        if let Some(store) = &self.store {
            store.send(StoreCmd::RecordScan {
                kind: "catch-up",
                start: started,
                entries: tree::read(&self.tree).len(),
                errors: stats.errors,
                full: true,
            });
        }
        self.verified_at = started;
        Ok(Some(stats))
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
        let fixes = check::totals_fixes(&tree::read(&self.tree));
        let mut t = tree::write(&self.tree);
        if !fixes.is_empty() {
            check::apply_totals(&mut t, &fixes);
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

    /// Sends a command to the store, if there is one (without a cache it is dropped).
    pub fn send_to_store(&self, cmd: StoreCmd) {
        if let Some(s) = &self.store {
            s.send(cmd);
        }
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
        match store.close() {
            Ok(committed) => {
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
                    return Saved::Clean {
                        generation: committed,
                    };
                }
                match t.save(path) {
                    Ok(()) => Saved::Clean {
                        generation: committed,
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
            Err(why) => Saved::Failed { why },
        }
    }
}

/// `--cache-dir`, else the default one (with a note in `warnings` when it is not the one the
/// environment names), or why there is none.
fn cache_dir(cache: &CacheOptions, warnings: &mut Vec<String>) -> Result<PathBuf, String> {
    if let Some(d) = &cache.dir {
        return Ok(d.clone());
    }
    let (d, note) = default_dir()?;
    warnings.extend(note);
    Ok(d)
}

/// Takes this root's lock (the directory made ready by `private::prepare_dir`), checks every file of
/// the cache that exists (ours, private, regular: never a symlink or a FIFO), and removes the
/// temp files an interrupted save left. Any failure: why the cache is not used.
fn open_cache(dir: &Path, paths: &CachePaths) -> Result<Flock<File>, String> {
    let lock = lock_cache(paths)?;
    for f in paths.all_files() {
        if f != paths.lock {
            private::check_file(&f, private::Use::Read)?;
        }
    }
    manage::remove_temp_files(dir, &paths.key);
    Ok(lock)
}

/// Takes the cache's lock, or says why not.
fn lock_cache(paths: &CachePaths) -> Result<Flock<File>, String> {
    let file = private::create_file(&paths.lock)?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        if e == nix::errno::Errno::EWOULDBLOCK {
            format!(
                "{}: in use by another dtui process",
                private::shown(&paths.lock)
            )
        } else {
            format!("{}: {e}", private::shown(&paths.lock))
        }
    })
}

/// Why the store could not be opened, and whether the disk or directory is to blame.
struct OpenFailure {
    text: String,
    environment: bool,
}

/// Opens the database, created `0600` by us first (so SQLite's `-wal` and `-shm`, which take
/// its mode, are private too, whatever the umask).
fn open_store(paths: &CachePaths, root: &[u8]) -> Result<Store, OpenFailure> {
    private::create_file(&paths.db).map_err(|text| OpenFailure {
        text,
        environment: true,
    })?;
    Store::open(&paths.db, root).map_err(|e| OpenFailure {
        environment: e.is_environment(),
        text: e.to_string(),
    })
}

/// The tree from the arena file if it is clean and at the database's generation, else rebuilt
/// from the database's rows.
/// The cached tree of `root`, if it is one of this very directory (not another one made
/// at the same path since).
fn load_tree(
    paths: &CachePaths,
    store: &Store,
    root: &RootDir,
    generation: u64,
    epoch: u64,
) -> Result<(Tree, Origin), String> {
    let (tree, origin) = load_tree_at(paths, store, &root.path, generation, epoch)?;
    if !root.matches(&tree) {
        return Err("the directory was replaced since the cache was written".into());
    }
    Ok((tree, origin))
}

fn load_tree_at(
    paths: &CachePaths,
    store: &Store,
    root: &Path,
    generation: u64,
    epoch: u64,
) -> Result<(Tree, Origin), String> {
    let opened = match private::check_file(&paths.arena, private::Use::Read) {
        Ok(Some(f)) => Arena::from_file(&f, &paths.arena).map_err(|e| e.to_string()),
        Ok(None) => Err("there is no arena file".to_owned()),
        Err(why) => Err(why),
    };
    let why = match opened {
        Ok(a) => {
            let h = *a.header();
            if h.epoch != epoch {
                "the arena belongs to another snapshot".to_owned()
            } else if h.generation != generation {
                format!(
                    "the arena is at generation {}, the database at {generation}",
                    h.generation
                )
            } else {
                // The checksum and the validation in one pass over the file, on every core.
                match Tree::check_arena(&a) {
                    Err(None) => "the arena's checksum does not match".to_owned(),
                    Err(Some(e)) => format!("the arena is inconsistent: {e}"),
                    // The validation checked every name too.
                    Ok(valid) => {
                        let tree = Tree::from_validated(a, valid);
                        if tree.root_path() == root {
                            return Ok((tree, Origin::Mapped { generation }));
                        }
                        "the arena belongs to another root".to_owned()
                    }
                }
            }
        }
        Err(why) => why,
    };
    let rows = store.load_rows().map_err(|e| e.to_string())?;
    check::names_in_rows(&rows).map_err(|e| format!("the stored tree is inconsistent: {e}"))?;
    let arena = Arena::create_temp().map_err(|e| e.to_string())?;
    let mut tree = Tree::from_rows(arena, root, &rows, generation).map_err(|e| e.to_string())?;
    // Totals are derived data: recomputed, never taken from the rows as they are.
    check::recompute_totals(&mut tree);
    tree.set_epoch(epoch);
    Ok((tree, Origin::Rebuilt { generation, why }))
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
