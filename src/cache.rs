//! Where a root's cache lives and how a tree is opened through it: mapped as it is, rebuilt
//! from SQLite, or scanned, whichever the files on disk allow, and said which.
//!
//! One cache per canonical root under `$XDG_CACHE_HOME/dtui/` (else `~/.cache/dtui/`), or
//! `--cache-dir`: `<key>.db` (SQLite), `<key>.arena` (the mmap tree) and `<key>.lock` (held
//! while a process uses them). A cache that cannot be used (read-only, full, in use, damaged
//! beyond rebuilding, not private: see `private`) never stops the command: it runs without
//! one and says why. What it holds is checked before it is used (`check`).
//!
//! What the caches take is said and bounded: a root's first cache says where it goes and
//! what it costs per entry; all the caches of a directory share one budget
//! (`$DISKTRACKER_CACHE_TOTAL_MAX`), kept at each open and each clean close by removing other roots'
//! caches, least recently used first (`manage::enforce_total`); and a root without a cache
//! of its own opens from an ancestor's (`ancestor`) rather than making a second one.

mod ancestor;
pub(crate) use ancestor::subtree_mapped;
mod check;
mod manage;
mod private;

pub use check::{
    TotalsFix, apply_totals, bad_name, names_in_rows, names_in_tree, recompute_totals, totals_fixes,
};
pub use manage::{CacheInfo, ClearTarget, Evicted, ago, clear, enforce_total, list};
pub(crate) use private::default_dir;

use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{Flock, FlockArg};

use crate::fs::{FsError, RootDir};
use crate::scan::ScanOptions;
use crate::store::writer::{StoreHandle, Upkeep};
use crate::store::{CacheBudget, Meta, Store, StoreError, TotalBudget};
use crate::tree::{Arena, ArenaError, Tree, TreeError};
use private::Refused;

/// `--cache-dir` and `--no-cache`.
#[derive(Debug, Clone, Default)]
pub struct CacheOptions {
    pub dir: Option<PathBuf>,
    pub disabled: bool,
}

/// What a cache takes on disk per entry of its tree, about: database and saved arena after a
/// first scan (`dtui scan /usr` then `dtui cache list`: 134,476 entries below the root in
/// 14.41 MiB, 48 bytes each of arena and 64 of database; BENCHMARKS.md, "The cache's byte
/// budget", has 124 on another `/usr`). Said when a root's first cache is made.
pub const BYTES_PER_ENTRY: u64 = 112;

/// How a root's cache is opened, besides `CacheOptions`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenWith {
    /// What this root's cache may take (`--cache-max-bytes`).
    pub budget: CacheBudget,
    /// What all the caches of the directory may take together (`$DISKTRACKER_CACHE_TOTAL_MAX`).
    pub total: TotalBudget,
    /// The scan options the tree is kept with (`options_key`).
    pub options: u64,
    /// A root without a cache of its own may open from an ancestor's (`ancestor`).
    pub from_ancestor: bool,
}

/// What a cache records of the scan options its tree was made with: a tree made with other
/// excludes, or with `-x` where now without, holds other entries, so another root's session
/// may not start from it (`ancestor`). Threads do not count.
#[must_use]
pub fn options_key(scan: &ScanOptions) -> u64 {
    let mut bytes = scan.excludes.key().to_le_bytes().to_vec();
    bytes.extend([
        u8::from(scan.one_filesystem),
        u8::from(scan.exclude_caches),
        u8::from(scan.exclude_kernfs),
    ]);
    xxhash_rust::xxh3::xxh3_64(&bytes)
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
    /// The root's subtree of an ancestor's cache (at that cache's generation); the session
    /// keeps no cache of its own.
    Ancestor { ancestor: PathBuf, generation: u64 },
    /// A replica of another process's live tree (`attach`): it owns the cache.
    Attached { pid: u32, origin: String },
}

impl Origin {
    #[must_use]
    pub fn from_cache(&self) -> bool {
        matches!(
            self,
            Origin::Mapped { .. } | Origin::Rebuilt { .. } | Origin::Ancestor { .. }
        )
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
            Origin::Ancestor {
                ancestor,
                generation,
            } => write!(
                f,
                "loaded: from the cache of {} (generation {generation}; none of its own)",
                crate::path::display_path(ancestor)
            ),
            Origin::Attached { pid, origin } => {
                write!(f, "attached: live from dtui {pid} (its cache: {origin})")
            }
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

/// Now, in whole seconds since the epoch.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What closing a session did (`Engine::shutdown`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    /// Database and arena are at this generation, and the arena is marked clean; then the
    /// caches of other roots that the global budget removed.
    Clean {
        generation: u64,
        evicted: Vec<Evicted>,
    },
    NoCache,
    /// The database could not be written; the arena is left unclean so it is not trusted.
    Failed {
        why: String,
    },
}

impl Saved {
    /// What to tell the user of it, a line each (for `dtui: `): the caches the budget
    /// removed, or why the cache was not saved.
    #[must_use]
    pub fn messages(&self) -> Vec<String> {
        match self {
            Saved::Clean { evicted, .. } => evicted.iter().map(ToString::to_string).collect(),
            Saved::NoCache => Vec::new(),
            Saved::Failed { why } => vec![format!("warning: the cache was not saved: {why}")],
        }
    }
}

/// Why a root could not be opened at all (a cache that cannot be used is not one: it is a
/// warning, and the run goes on without it).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// The cache's writer thread could not start.
    #[error("{}: {source}", crate::path::display_path(.path))]
    Writer {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A root's tree as its cache gave it (mapped, rebuilt, or the root alone, to scan), and the
/// cache kept open for the session that runs it.
pub(crate) struct Opened {
    /// The root, opened once: every scan and catch-up of the session starts from it.
    pub root: RootDir,
    pub tree: Tree,
    pub origin: Origin,
    /// Things worth telling the user (a cache that could not be used, and why).
    pub warnings: Vec<String>,
    /// What the user is told besides (not warnings): where a first cache goes, an ancestor's
    /// cache opened instead, the caches the global budget removed.
    pub notes: Vec<String>,
    /// `None`: running without a cache (`origin` says why).
    pub kept: Option<Kept>,
}

/// A cache in use: locked, its files checked, its store's writer running.
pub(crate) struct Kept {
    pub store: StoreHandle,
    pub paths: CachePaths,
    /// When the cached tree was last verified against the disk (0: nothing loaded).
    pub verified_at: u64,
    /// The bytes the arena takes once saved, for the store's budget (`Upkeep::arena_len`).
    pub arena_len: Arc<AtomicU64>,
    pub lock: Flock<File>,
    /// The directory the cache is in, as `prepare_dir` made it ready.
    pub dir: PathBuf,
}

/// Opens `path` and its cache, kept within `with.budget` bytes on disk: the cached tree if
/// there is a usable one (the root's own cache, else with `with.from_ancestor` an ancestor's
/// that can serve: see `ancestor`), else a tree holding only the root (`origin` then says why
/// it is to be scanned). A cache that cannot be used is a warning and no cache, never an
/// error.
#[expect(
    clippy::too_many_lines,
    reason = "one ladder: disabled, no directory, ancestor, locked, database, arena, else a scan"
)]
pub(crate) fn open(path: &Path, cache: &CacheOptions, with: OpenWith) -> Result<Opened, OpenError> {
    let root = RootDir::open(path)?;
    if cache.disabled {
        return without_cache(root, "disabled by --no-cache".into(), vec![]);
    }
    let mut warnings = Vec::new();
    let dir = match cache_dir(cache, &mut warnings) {
        Ok(d) => d,
        Err(why) => {
            warnings.push(format!("running without a cache: {why}"));
            return without_cache(root, why.to_string(), warnings);
        }
    };
    let dir = match private::prepare_dir(&dir) {
        Ok(d) => d,
        Err(why) => {
            warnings.push(format!("running without a cache: {why}"));
            return without_cache(root, why.to_string(), warnings);
        }
    };
    let paths = CachePaths::new(&dir, &root.path);
    let first = matches!(fs::symlink_metadata(&paths.db), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
    if first
        && with.from_ancestor
        && let Some(a) = ancestor::open(&dir, &root, with.options)
    {
        let note = format!(
            "opening {} from the cache of {}",
            crate::path::display_path(&root.path),
            crate::path::display_path(&a.ancestor)
        );
        return Ok(Opened {
            root,
            tree: a.tree,
            origin: Origin::Ancestor {
                ancestor: a.ancestor,
                generation: a.generation,
            },
            warnings,
            notes: vec![note],
            kept: None,
        });
    }
    let lock = match open_cache(&dir, &paths) {
        Ok(lock) => lock,
        Err(why) => {
            warnings.push(format!("running without a cache: {why}"));
            return without_cache(root, why.to_string(), warnings);
        }
    };
    // Room for this cache as its last close left it (none yet, for a new one), before the
    // store opens (its WAL and shared memory, while open, are not what it keeps).
    let mut notes: Vec<String> = enforce_total(&dir, &paths.key, with.total)
        .iter()
        .map(ToString::to_string)
        .collect();
    let root_bytes = root.path.as_os_str().as_bytes().to_vec();
    let store = match open_store(&paths, &root_bytes) {
        Ok(s) => s,
        Err(why) if why.environment() => {
            let why = format!("the cache cannot be written: {why}");
            warnings.push(format!("running without a cache: {why}"));
            return without_cache(root, why, warnings).map(|o| o.with_notes(notes));
        }
        Err(why) => {
            warnings.push(format!("cache database unusable, rebuilt: {why}"));
            paths.remove_db();
            match open_store(&paths, &root_bytes) {
                Ok(s) => s,
                Err(why) => {
                    let why = format!("the cache cannot be written: {why}");
                    warnings.push(format!("running without a cache: {why}"));
                    return without_cache(root, why, warnings).map(|o| o.with_notes(notes));
                }
            }
        }
    };
    if store.options_key().ok().flatten() != Some(with.options) {
        // (Not recorded: an ancestor's cache this can never serve, nothing worse.)
        let _ = store.set_options_key(with.options);
    }
    if first {
        notes.insert(
            0,
            format!(
                "caching the tree of {} in {} (about {BYTES_PER_ENTRY} bytes per entry; all \
             caches together at most {}: `dtui cache list`)",
                crate::path::display_path(&root.path),
                crate::path::display_path(&dir),
                with.total
            ),
        );
    }
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
        budget: with.budget,
        arena: paths.arena.clone(),
        arena_len: Arc::clone(&arena_len),
    };
    let entries = meta.entries;
    let spawn = |store, generation| {
        StoreHandle::spawn(store, generation, entries, upkeep).map_err(|e| OpenError::Writer {
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
                return Ok(Opened {
                    root,
                    tree,
                    origin,
                    warnings,
                    notes,
                    kept: Some(Kept {
                        store,
                        paths,
                        verified_at: meta.verified_at,
                        arena_len,
                        lock,
                        dir,
                    }),
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
    let tree = root.new_tree(Arena::create_temp().map_err(TreeError::from)?)?;
    let store = spawn(store, 0)?;
    Ok(Opened {
        root,
        tree,
        origin: Origin::Scanned { why },
        warnings,
        notes,
        kept: Some(Kept {
            store,
            paths,
            verified_at: 0,
            arena_len,
            lock,
            dir,
        }),
    })
}

impl Opened {
    fn with_notes(mut self, notes: Vec<String>) -> Opened {
        self.notes = notes;
        self
    }
}

/// The root alone, to scan, without a cache (`why`).
fn without_cache(root: RootDir, why: String, warnings: Vec<String>) -> Result<Opened, OpenError> {
    let tree = root.new_tree(Arena::create_temp().map_err(TreeError::from)?)?;
    Ok(Opened {
        root,
        tree,
        origin: Origin::NoCache { why },
        warnings,
        notes: Vec::new(),
        kept: None,
    })
}

/// `--cache-dir`, else the default one (with a note in `warnings` when it is not the one the
/// environment names), or why there is none.
fn cache_dir(cache: &CacheOptions, warnings: &mut Vec<String>) -> Result<PathBuf, Refused> {
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
fn open_cache(dir: &Path, paths: &CachePaths) -> Result<Flock<File>, Refused> {
    let lock = lock_cache(paths)?;
    // The lock file's time is when a dtui last opened this cache (a start that changes
    // nothing writes nothing else): the global budget removes the least recently used.
    let now = nix::sys::time::TimeSpec::UTIME_NOW;
    let _ = nix::sys::stat::futimens(&*lock, &now, &now);
    for f in paths.all_files() {
        if f != paths.lock {
            private::check_file(&f, private::Use::Read)?;
        }
    }
    manage::remove_temp_files(dir, &paths.key);
    Ok(lock)
}

/// Takes the cache's lock, or says why not.
fn lock_cache(paths: &CachePaths) -> Result<Flock<File>, Refused> {
    let file = private::create_file(&paths.lock)?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        if errno == nix::errno::Errno::EWOULDBLOCK {
            Refused::InUse(paths.lock.clone())
        } else {
            Refused::Lock {
                path: paths.lock.clone(),
                errno,
            }
        }
    })
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
enum OpenFailure {
    #[error(transparent)]
    File(#[from] Refused),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OpenFailure {
    /// Are the disk or the directory to blame (not the database's contents)?
    fn environment(&self) -> bool {
        match self {
            OpenFailure::File(_) => true,
            OpenFailure::Store(e) => e.is_environment(),
        }
    }
}

/// Opens the database, created `0600` by us first (so SQLite's `-wal` and `-shm`, which take
/// its mode, are private too, whatever the umask).
fn open_store(paths: &CachePaths, root: &[u8]) -> Result<Store, OpenFailure> {
    private::create_file(&paths.db)?;
    Ok(Store::open(&paths.db, root)?)
}

/// Why the cached tree was not loaded (it is then scanned again).
#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("the directory was replaced since the cache was written")]
    Replaced,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored tree is inconsistent: {0}")]
    Inconsistent(&'static str),
    #[error(transparent)]
    Arena(#[from] ArenaError),
    #[error(transparent)]
    Tree(#[from] TreeError),
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
) -> Result<(Tree, Origin), LoadError> {
    let (tree, origin) = load_tree_at(paths, store, &root.path, generation, epoch)?;
    if !root.matches(&tree) {
        return Err(LoadError::Replaced);
    }
    Ok((tree, origin))
}

fn load_tree_at(
    paths: &CachePaths,
    store: &Store,
    root: &Path,
    generation: u64,
    epoch: u64,
) -> Result<(Tree, Origin), LoadError> {
    // Why the arena file is not used, if it is not: said in `Origin::Rebuilt`.
    let opened = match private::check_file(&paths.arena, private::Use::Read) {
        Ok(Some(f)) => Arena::from_file(&f, &paths.arena).map_err(|e| e.to_string()),
        Ok(None) => Err("there is no arena file".to_owned()),
        Err(why) => Err(why.to_string()),
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
    let rows = store.load_rows()?;
    check::names_in_rows(&rows).map_err(LoadError::Inconsistent)?;
    let arena = Arena::create_temp()?;
    let mut tree = Tree::from_rows(arena, root, &rows, generation)?;
    // Totals are derived data: recomputed, never taken from the rows as they are.
    check::recompute_totals(&mut tree);
    tree.set_epoch(epoch);
    Ok((tree, Origin::Rebuilt { generation, why }))
}
