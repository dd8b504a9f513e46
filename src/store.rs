//! SQLite persistence (rusqlite, bundled): the schema and its migrations, the snapshot of the
//! tree in `entries`, batches of changes, `scans` and `mutation_log`.
//!
//! `Store` is the connection and its operations; `writer` runs one `Store` on its own thread
//! and takes commands over a channel, each batch one transaction, so nothing else ever waits on
//! SQLite. The generation in `meta` is written in the same transaction as the rows it
//! describes: whatever a crash leaves, the database is at one whole generation.

pub mod budget;
mod history;
pub use history::{Base, Dirs, GONE, Latest, Sample, THIN_EVERY};
mod journal;
mod log;
mod rows;
mod schema;
pub mod writer;

pub use budget::{CacheBudget, TotalBudget};
pub use history::THINNING;
pub use log::{LogBatch, LogKind, LogRow, Retention};

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use rows::{INSERT_ENTRY, decode_row, insert_row};

use crate::tree::{Changes, RowChunk};

/// The schema this build writes. Older databases are migrated forward; newer ones are refused.
pub const SCHEMA_VERSION: i64 = 4;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", crate::path::display_path(.path))]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "{}: written by a newer dtui (schema {found}, this one knows {SCHEMA_VERSION})",
        crate::path::display_path(.path)
    )]
    NewerSchema { path: PathBuf, found: i64 },
    #[error(
        "{}: the snapshot was cut short; nothing was committed",
        crate::path::display_path(.path)
    )]
    Incomplete { path: PathBuf },
    #[error("{}: not a dtui cache ({why})", crate::path::display_path(.path))]
    Foreign { path: PathBuf, why: String },
}

impl StoreError {
    /// Is this the disk or the directory refusing writes (full, read-only), rather than a
    /// damaged file?
    #[must_use]
    pub fn is_environment(&self) -> bool {
        use rusqlite::ErrorCode as C;
        match self {
            StoreError::Sqlite {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } => matches!(
                e.code,
                C::DiskFull
                    | C::ReadOnly
                    | C::CannotOpen
                    | C::PermissionDenied
                    | C::SystemIoFailure
            ),
            _ => false,
        }
    }

    /// Is this the filesystem holding the cache being full (`SQLITE_FULL`, which SQLite
    /// returns for `ENOSPC`)? Such a failure is waited out, not final (see `writer`).
    #[must_use]
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } if e.code == rusqlite::ErrorCode::DiskFull
        )
    }
}

/// What `meta` says about the stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub root: Vec<u8>,
    /// The generation of the last committed batch (None: no complete snapshot yet).
    pub generation: Option<u64>,
    pub entries: u64,
    /// Seconds since the epoch of the last committed batch.
    pub updated_at: u64,
    /// Seconds since the epoch when the last full scan or full reconcile started.
    pub verified_at: u64,
    /// The lineage id of the snapshot (an arena must carry the same one).
    pub epoch: u64,
}

/// One row of `mutation_log`.
/// One transaction of the cache: a batch's entry rows (with the generation and entry count
/// they reach), its `mutation_log` rows, its size history samples; any of them may be absent.
#[derive(Debug, Default)]
pub struct Commit {
    pub changes: Option<Changes>,
    pub log: Option<LogBatch>,
    pub samples: Vec<Sample>,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The most bytes one batch's `mutation_log` rows may take (see `budget::cap_rows`).
    log_cap: u64,
    /// Rows in `entries_journal` (see `journal`).
    journal_rows: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Rows of `scans` kept.
const KEEP_SCANS: i64 = 1000;

/// SQLite integers are signed 64-bit: u64 values are stored by their bit pattern.
fn i(v: u64) -> i64 {
    v as i64
}

/// What a failed statement on the database at `path` reports.
fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + Copy + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, sets WAL, and migrates it to
    /// `SCHEMA_VERSION`. `root` is the canonical root it must belong to.
    pub fn open(path: &Path, root: &[u8]) -> Result<Store, StoreError> {
        let err = sqlite_err(path);
        // No URI parsing (a cache dir named `file:...` is a path), and never through a
        // symlink; SQLite opens its `-wal` and `-shm` with `O_NOFOLLOW` and the database's
        // mode, so a database created `0600` keeps its side files private too.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = Connection::open_with_flags(path, flags).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: path.to_path_buf(),
                found: version,
            });
        }
        if version == 0 {
            // Before the first table (it cannot be changed after without a VACUUM): pages
            // freed by thinning can then be given back to the filesystem (`budget`).
            let tables: i64 = conn
                .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                .map_err(err)?;
            if tables == 0 {
                conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
                    .map_err(err)?;
            }
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            log_cap: u64::MAX,
            journal_rows: 0,
        };
        store.migrate(version)?;
        store.journal_rows = journal::rows(&store.conn).map_err(err)?;
        // An index on `entries(parent)` (older versions made one) serves no query here, and
        // every upsert of a live batch kept a second B-tree up to date.
        store
            .conn
            .execute_batch("DROP INDEX IF EXISTS entries_parent;")
            .map_err(err)?;
        store.ensure_history()?;
        match store.meta()?.root {
            stored if stored.is_empty() => {
                store
                    .conn
                    .execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES ('root', ?1)",
                        [root],
                    )
                    .map_err(err)?;
            }
            stored if stored != root => {
                return Err(StoreError::Foreign {
                    path: path.to_path_buf(),
                    why: format!("it belongs to {}", crate::path::display_name(&stored)),
                });
            }
            _ => {}
        }
        Ok(store)
    }

    /// Opens a database read-only (for `cache list`), without migrating it and without
    /// creating anything: a read-only connection to a WAL database would create `-shm` (and
    /// its reader lock files) when they are missing, so then the file is opened `immutable`
    /// (without them there is no WAL content to read, bar a `-wal` left alone by a crash).
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let side = |suffix: &str| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            PathBuf::from(p)
        };
        let live = side("-wal").exists() && side("-shm").exists();
        let uri = format!(
            "file:{}?{}",
            uri_path(path),
            if live { "mode=ro" } else { "immutable=1" }
        );
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn =
            Connection::open_with_flags(uri, flags).map_err(|source| StoreError::Sqlite {
                path: path.to_path_buf(),
                source,
            })?;
        // (An older schema has no journal; a read-only store is for reports, not rebuilds.)
        let journal_rows = journal::rows(&conn).unwrap_or(0);
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            log_cap: u64::MAX,
            journal_rows,
        })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }
    fn meta_value(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
                let v: rusqlite::types::Value = r.get(0)?;
                Ok(match v {
                    rusqlite::types::Value::Blob(b) => b,
                    rusqlite::types::Value::Text(t) => t.into_bytes(),
                    rusqlite::types::Value::Integer(n) => n.to_string().into_bytes(),
                    _ => Vec::new(),
                })
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    fn meta_u64(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .meta_value(key)?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse().ok()))
    }

    pub fn meta(&self) -> Result<Meta, StoreError> {
        Ok(Meta {
            root: self.meta_value("root")?.unwrap_or_default(),
            generation: self.meta_u64("generation")?,
            entries: self.meta_u64("entries")?.unwrap_or(0),
            updated_at: self.meta_u64("updated_at")?.unwrap_or(0),
            verified_at: self.meta_u64("verified_at")?.unwrap_or(0),
            epoch: self.meta_u64("epoch")?.unwrap_or(0),
        })
    }

    /// The key of the scan options the stored tree is kept with (`cache::options_key`), if
    /// one was recorded (older caches have none).
    pub fn options_key(&self) -> Result<Option<u64>, StoreError> {
        self.meta_u64("options")
    }

    /// Records the scan options this cache's tree is kept with from now on.
    pub fn set_options_key(&self, key: u64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('options', ?1)",
                [key.to_string()],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn set_meta(tx: &rusqlite::Transaction<'_>, key: &str, v: u64) -> rusqlite::Result<()> {
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![key, v.to_string()],
        )
        .map(drop)
    }

    /// Replaces the whole snapshot in one transaction: every row, in id order, with the index
    /// built after the load. `chunks` yields the rows; `complete` says, once they are consumed,
    /// whether all of them came (if not, nothing is committed); `generation` is the tree's.
    pub fn write_snapshot(
        &mut self,
        chunks: impl IntoIterator<Item = RowChunk>,
        complete: &dyn Fn() -> bool,
        generation: u64,
        epoch: u64,
        verified_at: u64,
    ) -> Result<u64, StoreError> {
        let err = sqlite_err(&self.path);
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute_batch(
            "DROP INDEX IF EXISTS entries_parent; DELETE FROM entries; DELETE FROM entries_journal;",
        )
        .map_err(err)?;
        let mut rows = 0u64;
        {
            let mut stmt = tx.prepare_cached(INSERT_ENTRY).map_err(err)?;
            for chunk in chunks {
                for (r, name) in chunk.iter() {
                    insert_row(&mut stmt, r, name).map_err(err)?;
                    rows += 1;
                }
            }
        }
        if !complete() {
            // Dropping the transaction rolls it back.
            return Err(StoreError::Incomplete {
                path: self.path.clone(),
            });
        }
        Self::set_meta(&tx, "generation", generation).map_err(err)?;
        Self::set_meta(&tx, "epoch", epoch).map_err(err)?;
        Self::set_meta(&tx, "entries", rows).map_err(err)?;
        Self::set_meta(&tx, "updated_at", now_secs()).map_err(err)?;
        Self::set_meta(&tx, "verified_at", verified_at).map_err(err)?;
        tx.commit().map_err(err)?;
        self.journal_rows = 0;
        Ok(rows)
    }

    /// The one transaction of a batch (`Commit`): its `mutation_log` rows (then retention),
    /// its samples, and its entry rows (appended to the journal, which is folded into
    /// `entries` now and then) with the generation and entry count they reach, so the cache is
    /// never between two of them. Returns the log rows the retention trimmed.
    pub fn commit(&mut self, c: &Commit) -> Result<u64, StoreError> {
        let err = sqlite_err(&self.path);
        let tx = self.conn.transaction().map_err(err)?;
        let mut trimmed = 0;
        if let Some(log) = &c.log {
            trimmed = log::insert(&tx, log, self.log_cap).map_err(err)?;
        }
        Self::insert_samples(&tx, &c.samples).map_err(err)?;
        let mut journal_rows = self.journal_rows;
        if let Some(changes) = &c.changes {
            journal_rows += journal::append(&tx, changes).map_err(err)?;
            if journal::due(journal_rows, changes.entries) {
                journal::fold(&tx).map_err(err)?;
                journal_rows = 0;
            }
            Self::set_meta(&tx, "generation", changes.generation).map_err(err)?;
            // The tree's own count (a count(*) here cost O(entries) per batch).
            Self::set_meta(&tx, "entries", changes.entries).map_err(err)?;
            Self::set_meta(&tx, "updated_at", now_secs()).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        self.journal_rows = journal_rows;
        Ok(trimmed)
    }

    /// Records that a full scan or reconcile that started at `start` finished.
    pub fn record_scan(
        &mut self,
        kind: &str,
        start: u64,
        entries: u64,
        errors: u64,
        full: bool,
    ) -> Result<(), StoreError> {
        let err = sqlite_err(&self.path);
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "INSERT INTO scans (kind, start, end, entries, errors) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![kind, i(start), i(now_secs()), i(entries), i(errors)],
        )
        .map_err(err)?;
        // A row per pass: verifications repeat (a watch's lost events), so only the newest
        // are kept.
        tx.execute(
            "DELETE FROM scans WHERE id <= (SELECT max(id) FROM scans) - ?1",
            [KEEP_SCANS],
        )
        .map_err(err)?;
        if full {
            Self::set_meta(&tx, "verified_at", start).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Caps one batch's `mutation_log` rows at `bytes` (see `budget::cap_rows`).
    pub fn set_log_cap(&mut self, bytes: u64) {
        self.log_cap = bytes;
    }

    /// Rows in `mutation_log` (for reports and tests).
    pub fn mutation_log_len(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM mutation_log", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// Rows in the entry journal (see `journal`), for reports and benchmarks.
    #[must_use]
    pub fn journal_rows(&self) -> u64 {
        self.journal_rows
    }

    /// Every stored row, for rebuilding the arena: `entries` with the journal's newest images
    /// over it, in id order.
    pub fn load_rows(&self) -> Result<RowChunk, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM entries ORDER BY id",
                journal::COLUMNS
            ))
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut out = RowChunk::default();
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            decode_row(r, &mut out).map_err(|e| self.err(e))?;
        }
        if self.journal_rows == 0 {
            return Ok(out);
        }
        let (ids, images) = journal::newest(&self.conn, &decode_row).map_err(|e| self.err(e))?;
        Ok(journal::overlay(out, &ids, &images))
    }

    /// Makes sure no transaction is left open: a failed one is rolled back when dropped, but
    /// if that rollback failed too, the next `BEGIN` would fail for good.
    pub fn end_transaction(&self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// Checkpoints the WAL into the main file (after a big write).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(|e| self.err(e))
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A path as the path part of a `file:` URI: every byte but the unreserved ones and `/`
/// percent-encoded (so `?`, `#`, `%` and non-UTF-8 names stay part of the path).
fn uri_path(path: &Path) -> String {
    use std::fmt::Write;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = String::new();
    for &b in abs.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}
