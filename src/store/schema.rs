//! The tables of a cache, version by version, and the migration of an older database to
//! `SCHEMA_VERSION` (a foreign one, or one that says a version it does not hold, is refused).

use super::{SCHEMA_VERSION, Store, StoreError, journal};

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    parent INTEGER NOT NULL,
    name BLOB NOT NULL,
    kind INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    size INTEGER NOT NULL,
    disk INTEGER NOT NULL,
    total_size INTEGER NOT NULL,
    total_disk INTEGER NOT NULL,
    items INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    dev INTEGER NOT NULL,
    nlink INTEGER NOT NULL,
    errno INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS mutation_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    kind TEXT NOT NULL,
    path BLOB NOT NULL,
    path2 BLOB,
    backend TEXT NOT NULL,
    batch INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS scans (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    entries INTEGER NOT NULL,
    errors INTEGER NOT NULL
);
";

/// Version 2: times at full precision, and each directory's listing stamp (ctime and whether
/// the listing can be trusted while it is unchanged). Rows from version 1 get 0: untrusted,
/// so their directories are read again once.
const SCHEMA_V2: &str = "
ALTER TABLE entries ADD COLUMN mtime_nsec INTEGER NOT NULL DEFAULT 0;
ALTER TABLE entries ADD COLUMN ctime INTEGER NOT NULL DEFAULT 0;
ALTER TABLE entries ADD COLUMN ctime_nsec INTEGER NOT NULL DEFAULT 0;
ALTER TABLE entries ADD COLUMN dflags INTEGER NOT NULL DEFAULT 0;
";

/// Version 3: what a deletion from the browser freed (`NULL` for what a watcher saw).
const SCHEMA_V3: &str = "ALTER TABLE mutation_log ADD COLUMN bytes INTEGER;";

impl Store {
    pub(super) fn migrate(&mut self, from: i64) -> Result<(), StoreError> {
        if from == SCHEMA_VERSION {
            // Still check that it is ours: a foreign database may say version 1 too.
            let ok: i64 = self
                .conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'
                     AND name IN ('meta', 'entries', 'mutation_log', 'scans')",
                    [],
                    |r| r.get(0),
                )
                .map_err(|e| self.err(e))?;
            if ok != 4 {
                return Err(StoreError::Foreign {
                    path: self.path.clone(),
                    why: "the dtui tables are missing".into(),
                });
            }
            return Ok(());
        }
        let has_tables: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        if from == 0 && has_tables > 0 {
            return Err(StoreError::Foreign {
                path: self.path.clone(),
                why: "it holds other tables".into(),
            });
        }
        // One step per version, from where the file is.
        let tx = self.conn.transaction().map_err(|e| StoreError::Sqlite {
            path: self.path.clone(),
            source: e,
        })?;
        let step = |since: i64, sql: &str| {
            if from < since {
                tx.execute_batch(sql)
            } else {
                Ok(())
            }
        };
        step(1, SCHEMA_V1)
            .and_then(|()| step(2, SCHEMA_V2))
            .and_then(|()| step(3, SCHEMA_V3))
            .and_then(|()| step(4, journal::SCHEMA_V4))
            .and_then(|()| tx.pragma_update(None, "user_version", SCHEMA_VERSION))
            .and_then(|()| tx.commit())
            .map_err(|e| StoreError::Sqlite {
                path: self.path.clone(),
                source: e,
            })
    }
}
