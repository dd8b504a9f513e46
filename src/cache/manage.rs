//! `cache list` and `cache clear`, and the removal of an interrupted save's temp files: they
//! touch only the files dtui names. A database counts only when its name is
//! `<name>-<16 hex>.db` and its `meta` names a root whose key is that name; then its siblings
//! (`-wal`, `-shm`, `.arena`, `.lock`, `.tmp-<key>.arena.*`) are its own. Only regular files
//! are read or removed (a FIFO is never opened), never through a symlink, and only in a
//! directory that is ours and private.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, ErrorKind};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::CachePaths;
use super::private::{Use, check_dir, check_file};
use crate::store::{Store, TotalBudget};

/// The key of a name dtui gives a database (`<name>-<16 hex>.db`, the name 1 to 32 of
/// `[A-Za-z0-9_-]`), or None.
fn db_key(file: &OsStr) -> Option<&str> {
    let key = file.to_str()?.strip_suffix(".db")?;
    let (base, hash) = key.rsplit_once('-')?;
    let ok = (1..=32).contains(&base.len())
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && hash.len() == 16
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then_some(key)
}

/// The key of an arena temp file (`.tmp-<key>.arena.XXXXXX`), or None.
fn temp_key(file: &OsStr) -> Option<&str> {
    let rest = file.to_str()?.strip_prefix(".tmp-")?;
    let (stem, random) = rest.rsplit_once(".arena.")?;
    let ok = random.len() == 6 && random.bytes().all(|b| b.is_ascii_alphanumeric());
    let mut db = stem.to_owned();
    db.push_str(".db");
    (ok && db_key(OsStr::new(&db)).is_some()).then_some(stem)
}

/// A temp file of the unnamed kind older versions wrote (`.tmpXXXXXX`, tempfile's default).
fn legacy_temp(file: &OsStr) -> bool {
    file.as_bytes()
        .strip_prefix(b".tmp")
        .is_some_and(|r| r.len() == 6 && r.iter().all(u8::is_ascii_alphanumeric))
}

/// Removes a file of ours if it is a regular file we own (never through a symlink); true if
/// one was removed. Anything else at that name is left alone.
fn remove_ours(p: &Path) -> io::Result<bool> {
    match check_file(p, Use::Inspect) {
        Ok(Some(_)) => match fs::remove_file(p) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        },
        Ok(None) | Err(_) => Ok(false),
    }
}

/// Removes what interrupted saves left in `dir`: the temp files of `key` (the caller holds
/// its lock, so none of them is being written) and unnamed ones from older versions.
pub(crate) fn remove_temp_files(dir: &Path, key: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if temp_key(&name) == Some(key) || legacy_temp(&name) {
            let _ = remove_ours(&e.path());
        }
    }
}

/// One cache found by `list`.
#[derive(Debug, Clone)]
pub struct CacheInfo {
    pub db: PathBuf,
    /// The root it was made for (from `meta`).
    pub root: PathBuf,
    /// The root no longer exists.
    pub gone: bool,
    /// Every file of it on disk: database, WAL, shared memory and arena (what its budget,
    /// `--cache-max-bytes`, counts).
    pub bytes: u64,
    /// Entries below the root (the root itself not counted), as the browser's `Items:` and
    /// `dtui scan`'s `items` count them.
    pub entries: u64,
    /// Since the last committed batch.
    pub age: Option<Duration>,
    /// When a dtui last opened or wrote it, in seconds since the epoch (0: unknown): the
    /// newest modification time of its files (a start touches the lock file, see
    /// `super::open_cache`). The global budget removes the smallest first.
    pub used_at: u64,
}

impl CacheInfo {
    /// How long ago it was last used (see `used_at`).
    #[must_use]
    pub fn idle(&self) -> Option<Duration> {
        (self.used_at > 0)
            .then(|| Duration::from_secs(super::now_secs().saturating_sub(self.used_at)))
    }
}

/// The directory as `list` and `clear` may use it: None if it does not exist, an error if it
/// is not ours and private; else where it is, with no symlink in the path.
fn usable(dir: &Path) -> io::Result<Option<PathBuf>> {
    check_dir(dir).map_err(|why| io::Error::other(format!("not used: {why}")))
}

/// The caches in `dir`, sorted by root.
pub fn list(dir: &Path) -> io::Result<Vec<CacheInfo>> {
    let mut out = Vec::new();
    let Some(dir) = usable(dir)? else {
        return Ok(out);
    };
    let dir = dir.as_path();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(key) = db_key(&name) else { continue };
        let path = entry.path();
        // A regular file of ours, checked before SQLite sees it (a FIFO would block it).
        if !matches!(check_file(&path, Use::Inspect), Ok(Some(_))) {
            continue;
        }
        let Ok(meta) = Store::open_read_only(&path).and_then(|s| s.meta()) else {
            continue;
        };
        if meta.root.is_empty() {
            continue;
        }
        let root = PathBuf::from(OsStr::from_bytes(&meta.root));
        let paths = CachePaths::new(dir, &root);
        if paths.key != key {
            continue; // not a name dtui gave this root: not ours to describe or remove
        }
        out.push(CacheInfo {
            gone: matches!(fs::symlink_metadata(&root), Err(e) if e.kind() == ErrorKind::NotFound),
            bytes: crate::store::budget::cache_bytes(&paths.db, &paths.arena),
            // `meta.entries` is the tree's live nodes, the root among them.
            entries: meta.entries.saturating_sub(1),
            used_at: used_at(&paths),
            age: (meta.updated_at > 0)
                .then(|| Duration::from_secs(super::now_secs().saturating_sub(meta.updated_at))),
            db: path,
            root,
        });
    }
    out.sort_by(|a, b| a.root.cmp(&b.root));
    Ok(out)
}

/// The newest modification time of a cache's files (its lock file included), in seconds
/// since the epoch; 0 if none can be read.
fn used_at(paths: &CachePaths) -> u64 {
    use std::os::unix::fs::MetadataExt;
    paths
        .all_files()
        .iter()
        .filter_map(|f| fs::symlink_metadata(f).ok())
        .filter(fs::Metadata::is_file)
        .map(|m| u64::try_from(m.mtime()).unwrap_or(0))
        .max()
        .unwrap_or(0)
}

/// What `clear` removes.
#[derive(Debug, Clone)]
pub enum ClearTarget {
    /// Every cache in the directory.
    All,
    /// The caches made for any of these root paths (as given, made absolute, and
    /// canonicalized when it still exists): a root that is gone is found by its stored path.
    Roots(Vec<PathBuf>),
}

/// Removes one cache's files under its lock (the lock file last); true if there was
/// anything but a lock file. A cache in use by another process is refused.
fn remove_cache(dir: &Path, paths: &CachePaths) -> io::Result<bool> {
    let lock = super::lock_cache(paths).map_err(io::Error::other)?;
    let mut any = false;
    for f in paths.all_files() {
        if f != paths.lock {
            any |= remove_ours(&f)?;
        }
    }
    for e in fs::read_dir(dir)?.flatten() {
        if temp_key(&e.file_name()) == Some(paths.key.as_str()) {
            any |= remove_ours(&e.path())?;
        }
    }
    remove_ours(&paths.lock)?;
    drop(lock);
    Ok(any)
}

/// Removes the chosen caches in `dir`; returns how many.
pub fn clear(dir: &Path, target: &ClearTarget) -> io::Result<usize> {
    let Some(dir) = usable(dir)? else {
        return Ok(0);
    };
    let dir = dir.as_path();
    let found = list(dir)?;
    let mut keys: Vec<String> = Vec::new();
    match target {
        ClearTarget::All => {
            keys.extend(found.iter().map(|c| CachePaths::new(dir, &c.root).key));
            // Temp files whose database is gone are still ours by their name.
            for e in fs::read_dir(dir)?.flatten() {
                let name = e.file_name();
                if let Some(k) = temp_key(&name) {
                    keys.push(k.to_owned());
                } else if legacy_temp(&name) {
                    remove_ours(&e.path())?;
                }
            }
        }
        ClearTarget::Roots(roots) => {
            for r in roots {
                // By its key (even if its database is gone), and by the stored root path.
                keys.push(CachePaths::new(dir, r).key);
                keys.extend(
                    found
                        .iter()
                        .filter(|c| &c.root == r)
                        .map(|c| CachePaths::new(dir, &c.root).key),
                );
            }
        }
    }
    keys.sort();
    keys.dedup();
    let mut removed = 0;
    for key in keys {
        let paths = CachePaths::from_key(dir, &key);
        if remove_cache(dir, &paths)? {
            removed += 1;
        }
    }
    Ok(removed)
}

/// A cache the global budget removed (`enforce_total`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evicted {
    pub root: PathBuf,
    pub bytes: u64,
    /// How long ago it was last used (`CacheInfo::idle`).
    pub idle: Option<Duration>,
}

impl std::fmt::Display for Evicted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cache budget: removed the cache of {} ({}, last used {})",
            crate::path::display_path(&self.root),
            crate::format::size(self.bytes),
            self.idle
                .map_or_else(|| "at an unknown time".to_owned(), ago)
        )
    }
}

/// `3 days ago`, `1 hour ago`, `just now`.
#[must_use]
pub fn ago(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = match s {
        0..60 => return "just now".to_owned(),
        60..3600 => (s / 60, "minute"),
        3600..86_400 => (s / 3600, "hour"),
        _ => (s / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// The bytes of every regular file directly in `dir` (a quick upper bound of what its caches
/// take: `enforce_total` looks closer only past its budget).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(fs::Metadata::is_file)
        .map(|m| m.len())
        .sum()
}

/// Keeps the caches in `dir` within `budget` together: while they take more, removes whole
/// caches of other roots than `keep` (a key), least recently used first, skipping any that a
/// dtui holds (its lock is taken, as `clear` takes it). Returns what went. The cache `keep`
/// is never removed: alone over the budget, it is its own budget (`--cache-max-bytes`) that
/// thins it.
#[must_use = "each cache removed is to be told"]
pub fn enforce_total(dir: &Path, keep: &str, budget: TotalBudget) -> Vec<Evicted> {
    let Some(limit) = budget.0 else {
        return Vec::new();
    };
    if dir_bytes(dir) <= limit {
        return Vec::new();
    }
    let Ok(Some(dir)) = usable(dir) else {
        return Vec::new();
    };
    let Ok(mut caches) = list(&dir) else {
        return Vec::new();
    };
    let mut total: u64 = caches.iter().map(|c| c.bytes).sum();
    caches.retain(|c| CachePaths::new(&dir, &c.root).key != keep);
    // Least recently used first; the same moment: the larger first (fewer removed).
    caches.sort_by_key(|c| (c.used_at, std::cmp::Reverse(c.bytes)));
    let mut out = Vec::new();
    for c in caches {
        if total <= limit {
            break;
        }
        let paths = CachePaths::new(&dir, &c.root);
        // In use by a running dtui (locked), or not removable: kept.
        if matches!(remove_cache(&dir, &paths), Ok(true)) {
            total = total.saturating_sub(c.bytes);
            out.push(Evicted {
                idle: c.idle(),
                root: c.root,
                bytes: c.bytes,
            });
        }
    }
    out
}
