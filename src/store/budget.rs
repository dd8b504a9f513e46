//! The cache's byte budget: how many bytes one root's cache (database, WAL, shared-memory
//! file and saved arena) may take on disk, and how the store keeps to it.
//!
//! What grows with time is thinned, never the tree itself: first the size history of
//! directories that no longer exist (oldest first), then the oldest `mutation_log` rows, then
//! the oldest size samples (each directory keeping its newest, its oldest and its baseline for
//! the previous session, as the tiers do). One batch's log rows are
//! bounded too (`log_cap`): past it they are collapsed into their directories, as the watch
//! queue collapses a flood. The freed pages go back to the filesystem (`auto_vacuum =
//! INCREMENTAL`, set on a new database and by one `VACUUM` on an older one) and the WAL is
//! truncated, so the files shrink rather than only stop growing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rusqlite::params;

use super::GONE;
use super::history::newest_session_start;
use super::{LogKind, LogRow, Store, StoreError, sqlite_err};

/// The smallest budget `--cache-max-bytes` takes: below it the database's own tables and the
/// WAL's minimum leave nothing to thin.
pub const MIN_BUDGET: u64 = 256 * 1024;
/// The default budget's floor: a small tree keeps a long history and log.
pub const AUTO_FLOOR: u64 = 256 * 1024 * 1024;
/// The default budget, in saved arenas: the tree's own rows take about two arenas and the
/// arena one (BENCHMARKS.md, "The cache's byte budget"), so at any size of tree half the
/// budget is left for what grows with time (the history and the log).
pub const AUTO_ARENAS: u64 = 6;

/// How many bytes one root's cache may take (`--cache-max-bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheBudget {
    /// `max(AUTO_FLOOR, AUTO_ARENAS x the saved arena)`.
    #[default]
    Auto,
    /// At most this many bytes.
    Max(u64),
}

impl CacheBudget {
    /// The limit in bytes, for a tree whose arena takes `arena` bytes saved.
    #[must_use]
    pub fn limit(self, arena: u64) -> u64 {
        match self {
            CacheBudget::Auto => AUTO_FLOOR.max(arena.saturating_mul(AUTO_ARENAS)),
            CacheBudget::Max(b) => b,
        }
    }
}

impl std::str::FromStr for CacheBudget {
    type Err = String;

    /// `auto`, or bytes with an optional binary unit: `1048576`, `512K`, `1M`, `1MiB`, `2G`.
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(CacheBudget::Auto);
        }
        let bytes = parse_size(s)
            .ok_or_else(|| format!("`{s}`: expected `auto` or a size such as 64M, 1G, 256MiB"))?;
        if bytes < MIN_BUDGET {
            return Err(format!("`{s}`: a cache needs at least 256 KiB"));
        }
        Ok(CacheBudget::Max(bytes))
    }
}

/// Bytes with an optional binary unit: `1048576`, `512K`, `1M`, `1MiB`, `2G`, `1T`.
fn parse_size(s: &str) -> Option<u64> {
    let at = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(at);
    let n: u64 = n.parse().ok()?;
    let shift = match unit.trim_end_matches("iB").trim_end_matches('B') {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

/// The default of `$DISKTRACKER_CACHE_TOTAL_MAX`: what every cache in the directory may take together.
pub const DEFAULT_TOTAL: u64 = 1 << 30;

/// How many bytes all the caches of one cache directory may take together
/// (`$DISKTRACKER_CACHE_TOTAL_MAX`): past it, whole caches of other roots go, least recently used first
/// (`cache::enforce_total`). `None`: no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotalBudget(pub Option<u64>);

impl Default for TotalBudget {
    fn default() -> Self {
        TotalBudget(Some(DEFAULT_TOTAL))
    }
}

impl std::str::FromStr for TotalBudget {
    type Err = String;

    /// A size as `--cache-max-bytes` takes it, or `none` for no limit.
    fn from_str(s: &str) -> Result<Self, String> {
        if matches!(s, "none" | "unlimited") {
            return Ok(TotalBudget(None));
        }
        parse_size(s)
            .map(|b| TotalBudget(Some(b)))
            .ok_or_else(|| format!("`{s}`: expected `none` or a size such as 512M, 1G, 10GiB"))
    }
}

impl std::fmt::Display for TotalBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(b) => f.write_str(&crate::format::size(b)),
            None => f.write_str("no limit"),
        }
    }
}

/// The largest share of the budget one batch's `mutation_log` rows may take.
#[must_use]
pub fn log_cap(limit: u64) -> u64 {
    (limit / 16).max(64 * 1024)
}

/// A file beside the database: `-wal`, `-shm`.
fn side(db: &Path, suffix: &str) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// The size of a regular file (0 for anything else or nothing).
fn size(p: &Path) -> u64 {
    std::fs::symlink_metadata(p).map_or(0, |m| if m.is_file() { m.len() } else { 0 })
}

/// The bytes one root's cache takes on disk: the database, its WAL and shared-memory file,
/// and the arena (what the budget counts, and what `cache list` shows).
#[must_use]
pub fn cache_bytes(db: &Path, arena: &Path) -> u64 {
    size(db) + size(&side(db, "-wal")) + size(&side(db, "-shm")) + size(arena)
}

/// The WAL's bytes.
#[must_use]
pub fn wal_bytes(db: &Path) -> u64 {
    size(&side(db, "-wal"))
}

/// The shared-memory file's bytes.
#[must_use]
pub fn shm_bytes(db: &Path) -> u64 {
    size(&side(db, "-shm"))
}

/// Is there room on the filesystem holding `dir` for `need` more bytes? (Root may use the
/// blocks reserved for it, as its writes would.)
#[must_use]
pub fn room_for(dir: &Path, need: u64) -> bool {
    match nix::sys::statvfs::statvfs(dir) {
        Ok(s) => {
            let blocks = if nix::unistd::geteuid().is_root() {
                s.blocks_free()
            } else {
                s.blocks_available()
            };
            blocks.saturating_mul(s.fragment_size()) >= need
        }
        // Unknown: let the write itself tell.
        Err(_) => true,
    }
}

/// What `thin_to` removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Thinned {
    /// Directories that no longer exist, their whole history.
    pub gone_dirs: u64,
    pub log_rows: u64,
    pub samples: u64,
}

impl Thinned {
    #[must_use]
    pub fn any(&self) -> bool {
        self.gone_dirs + self.log_rows + self.samples > 0
    }
}

/// A log row's bytes in the database, about (its text and blobs, and a row's overhead).
fn row_bytes(r: &LogRow) -> u64 {
    (r.path.len()
        + r.path2.as_ref().map_or(0, Vec::len)
        + r.kind.as_str().len()
        + r.backend.len()
        + 40) as u64
}

/// One batch's log rows within `cap` bytes: as they are if they fit; else this process's own
/// rows (the bytes a delete freed) and, for the rest, one `dirty-dir` row per directory they
/// were in; if even that does not fit, one `rescan-root` row. The log then says where things
/// changed, not each name (a flood of 4 KiB paths cannot fill the disk through it).
#[must_use]
pub fn cap_rows(rows: &[LogRow], cap: u64) -> std::borrow::Cow<'_, [LogRow]> {
    if rows.iter().map(row_bytes).sum::<u64>() <= cap {
        return std::borrow::Cow::Borrowed(rows);
    }
    let (own, seen): (Vec<&LogRow>, Vec<&LogRow>) = rows.iter().partition(|r| r.backend == "user");
    let backend = seen.first().map_or("", |r| r.backend);
    let mut out: Vec<LogRow> = own.into_iter().cloned().collect();
    let dirs: BTreeSet<&[u8]> = seen
        .iter()
        .map(|r| match r.path.iter().rposition(|&b| b == b'/') {
            Some(0) => &r.path[..1],
            Some(i) => &r.path[..i],
            None => &r.path[..],
        })
        .collect();
    let dir_rows: Vec<LogRow> = dirs
        .into_iter()
        .map(|d| LogRow::seen(LogKind::DirtyDir, d.to_vec(), backend))
        .collect();
    let own_bytes: u64 = out.iter().map(row_bytes).sum();
    if own_bytes + dir_rows.iter().map(row_bytes).sum::<u64>() <= cap {
        out.extend(dir_rows);
    } else if !seen.is_empty() {
        out.push(LogRow::seen(LogKind::RescanRoot, Vec::new(), backend));
    }
    std::borrow::Cow::Owned(out)
}

/// Candidates are read this many at a time (deleted directories: more, since finding them
/// reads the whole history).
const CHUNK: i64 = 2048;
const GONE_CHUNK: i64 = 16_384;
/// Passes of one kind of thinning before the next kind is tried (each frees at least what
/// it estimates; pages shared with kept rows make it free less).
const PASSES: usize = 16;

impl Store {
    /// (page size, pages, free pages) of the database.
    fn pages(&self) -> Result<(u64, u64, u64), StoreError> {
        let get = |p: &str| -> Result<u64, StoreError> {
            self.conn
                .query_row(&format!("PRAGMA {p}"), [], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
                .map_err(|e| self.err(e))
        };
        Ok((
            get("page_size")?,
            get("page_count")?,
            get("freelist_count")?,
        ))
    }

    /// The bytes of the database's pages in use (free pages are not counted: they are reused,
    /// and given back by `shrink`).
    pub fn used_bytes(&self) -> Result<u64, StoreError> {
        let (size, count, free) = self.pages()?;
        Ok(size * count.saturating_sub(free))
    }

    /// Bounds the WAL to a share of a budget of `limit` bytes: checkpointed once it holds
    /// about a sixteenth of it, and cut back to that size after (a WAL is otherwise reused at
    /// its largest size, and a big transaction leaves it big).
    pub fn set_wal_limit(&self, limit: u64) -> Result<(), StoreError> {
        let share = (limit / 16).clamp(64 * 1024, 64 * 1024 * 1024);
        let (page, _, _) = self.pages()?;
        let pages = (share / page.max(512)).clamp(16, 1000);
        self.conn
            .execute_batch(&format!(
                "PRAGMA wal_autocheckpoint = {pages}; PRAGMA journal_size_limit = {share};"
            ))
            .map_err(|e| self.err(e))
    }

    /// Thins what grows with time (see the module doc) until the pages in use take at most
    /// `target` bytes, or nothing is left to thin.
    pub fn thin_to(&mut self, target: u64) -> Result<Thinned, StoreError> {
        let mut out = Thinned::default();
        for step in 0..3 {
            for _ in 0..PASSES {
                let used = self.used_bytes()?;
                if used <= target {
                    return Ok(out);
                }
                let deficit = used - target;
                let removed = match step {
                    0 => {
                        let n = self.drop_gone_dirs(deficit)?;
                        out.gone_dirs += n;
                        n
                    }
                    1 => {
                        let n = self.drop_oldest_log(deficit)?;
                        out.log_rows += n;
                        n
                    }
                    _ => {
                        let n = self.drop_oldest_samples(deficit)?;
                        out.samples += n;
                        n
                    }
                };
                if removed == 0 {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The whole history of directories whose newest sample is a tombstone, the longest gone
    /// first, about `bytes` of it. Returns the directories dropped.
    fn drop_gone_dirs(&mut self, bytes: u64) -> Result<u64, StoreError> {
        if !self.has_history()? {
            return Ok(0);
        }
        let err = sqlite_err(&self.path);
        let tx = self.conn.transaction().map_err(err)?;
        let mut dropped = 0u64;
        let mut freed = 0u64;
        {
            // SQLite takes the bare `items` from the row holding max(time).
            let mut pick = tx
                .prepare(
                    "SELECT dir, newest, bytes FROM (
                        SELECT dir, items, max(time) AS newest,
                               count(*) * (2 * length(dir) + 48) AS bytes
                        FROM size_history GROUP BY dir)
                     WHERE items = ?1 ORDER BY newest LIMIT ?2",
                )
                .map_err(err)?;
            let mut del = tx
                .prepare("DELETE FROM size_history WHERE dir = ?1")
                .map_err(err)?;
            let gone: Vec<(Vec<u8>, i64)> = pick
                .query_map(params![GONE, GONE_CHUNK], |r| Ok((r.get(0)?, r.get(2)?)))
                .map_err(err)?
                .collect::<Result<_, _>>()
                .map_err(err)?;
            for (dir, b) in gone {
                if freed >= bytes {
                    break;
                }
                del.execute([&dir]).map_err(err)?;
                freed += b.max(0) as u64;
                dropped += 1;
            }
        }
        tx.commit().map_err(err)?;
        Ok(dropped)
    }

    /// The oldest `mutation_log` rows, about `bytes` of them. Returns the rows removed.
    fn drop_oldest_log(&mut self, bytes: u64) -> Result<u64, StoreError> {
        let mut last = None;
        let mut freed = 0u64;
        {
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT seq, length(path) + ifnull(length(path2), 0) + length(kind)
                            + length(backend) + 40
                     FROM mutation_log ORDER BY seq LIMIT ?1",
                )
                .map_err(|e| self.err(e))?;
            let mut rows = stmt.query([CHUNK]).map_err(|e| self.err(e))?;
            while let Some(r) = rows.next().map_err(|e| self.err(e))? {
                if freed >= bytes {
                    break;
                }
                last = Some(r.get::<_, i64>(0).map_err(|e| self.err(e))?);
                freed += r.get::<_, i64>(1).map_err(|e| self.err(e))?.max(0) as u64;
            }
        }
        let Some(last) = last else { return Ok(0) };
        self.conn
            .execute("DELETE FROM mutation_log WHERE seq <= ?1", [last])
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// The oldest size samples that are none of their directory's newest, oldest, or newest
    /// before the newest session (as the tiers keep: so no directory goes missing from a
    /// baseline it was in, and "since the previous session" keeps its baseline), about
    /// `bytes` of them. Returns the samples removed.
    fn drop_oldest_samples(&mut self, bytes: u64) -> Result<u64, StoreError> {
        if !self.has_history()? {
            return Ok(0);
        }
        let err = sqlite_err(&self.path);
        let tx = self.conn.transaction().map_err(err)?;
        let mut removed = 0u64;
        {
            let session = newest_session_start(&tx).map_err(err)?;
            let mut pick = tx
                .prepare(
                    "SELECT dir, time, 2 * length(dir) + 48 FROM (
                        SELECT dir, time,
                            row_number() OVER (PARTITION BY dir ORDER BY time DESC) AS rank,
                            row_number() OVER (PARTITION BY dir ORDER BY time) AS oldest,
                            row_number() OVER (
                                PARTITION BY dir, time < ?2 ORDER BY time DESC) AS before,
                            time < ?2 AS old
                        FROM size_history)
                     WHERE rank > 1 AND oldest > 1 AND NOT (old AND before = 1)
                     ORDER BY time LIMIT ?1",
                )
                .map_err(err)?;
            let mut del = tx
                .prepare("DELETE FROM size_history WHERE dir = ?1 AND time = ?2")
                .map_err(err)?;
            let old: Vec<(Vec<u8>, i64, i64)> = pick
                .query_map([CHUNK, session], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(err)?
                .collect::<Result<_, _>>()
                .map_err(err)?;
            let mut freed = 0u64;
            for (dir, time, b) in old {
                if freed >= bytes {
                    break;
                }
                removed += del.execute(params![dir, time]).map_err(err)? as u64;
                freed += b.max(0) as u64;
            }
        }
        tx.commit().map_err(err)?;
        Ok(removed)
    }

    /// Gives free pages back to the filesystem and truncates the WAL. A database made before
    /// `auto_vacuum = INCREMENTAL` is rebuilt with it once (`VACUUM`), when it holds at least
    /// `min_free` bytes of free pages.
    pub fn shrink(&self, min_free: u64) -> Result<(), StoreError> {
        let mode: i64 = self
            .conn
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let (page, _, free) = self.pages()?;
        if mode == 2 {
            if free > 0 {
                // A page per step: stepped to its end (a single step frees one page).
                let mut stmt = self
                    .conn
                    .prepare("PRAGMA incremental_vacuum")
                    .map_err(|e| self.err(e))?;
                let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
                while rows.next().map_err(|e| self.err(e))?.is_some() {}
            }
        } else if free * page >= min_free {
            self.conn
                .execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")
                .map_err(|e| self.err(e))?;
        }
        self.checkpoint()
    }
}
