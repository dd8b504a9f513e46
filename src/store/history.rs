//! The size history's tables: `size_history` (one row per sample of a directory's totals,
//! keyed by its path relative to the root, so it survives a rescan that renumbers the entries)
//! and `sessions` (when each run started, the baseline of "since the previous session").
//!
//! Both are created with `CREATE TABLE IF NOT EXISTS` on every open: they need no schema
//! version of their own (an older dtui ignores them, a newer one finds them).

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use std::collections::HashMap;
use std::time::Duration;

/// `items` of a tombstone: the directory was gone from then on.
pub const GONE: i64 = -1;

/// One sample of a directory's totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Relative to the root, `/`-separated; empty for the root.
    pub dir: Vec<u8>,
    /// Milliseconds since the epoch.
    pub time_ms: i64,
    pub disk: u64,
    pub apparent: u64,
    /// Entries below it, or `GONE`.
    pub items: i64,
}

/// A directory's totals in a baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Base {
    pub disk: u64,
    pub apparent: u64,
    pub items: i64,
    /// When the sample was taken (ms since the epoch).
    pub time_ms: i64,
}

/// Directories by path relative to the root, with their totals at a moment.
pub type Dirs = HashMap<Vec<u8>, Base>;

/// Each directory's newest sample, by path.
pub type Latest = Vec<(Vec<u8>, Base)>;

/// How often the history is thinned: by a long session, and at a start.
pub const THIN_EVERY: Duration = Duration::from_secs(3600);

pub(super) const HISTORY_TABLES: &str = "
CREATE TABLE IF NOT EXISTS size_history (
    dir BLOB NOT NULL,
    time INTEGER NOT NULL,
    disk INTEGER NOT NULL,
    apparent INTEGER NOT NULL,
    items INTEGER NOT NULL,
    PRIMARY KEY (dir, time)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS size_history_time ON size_history(time);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    start INTEGER NOT NULL,
    end INTEGER
);
";

/// A row as dtui writes it. SQLite keeps any value in any column: a row forged or damaged
/// otherwise is left out of every read (one such row failed every `dtui changes`), and a
/// negative size would read as an exabyte one.
const VALID_SAMPLE: &str = "typeof(dir) = 'blob' AND typeof(time) = 'integer'
    AND typeof(disk) = 'integer' AND typeof(apparent) = 'integer'
    AND typeof(items) = 'integer' AND disk >= 0 AND apparent >= 0";

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// How finely old samples are kept: per minute for two hours, per hour for two days, per day
/// for 90 days, and beyond that only each directory's newest (the baseline of anything
/// older), and each directory's newest sample from before the newest session (its baseline
/// for "since the previous session") and its oldest (where a period longer than the history
/// starts). At most about 260 samples per directory, however long it is watched; a directory
/// that no longer exists keeps three at most (its first and last states and its tombstone).
pub const THINNING: [(i64, i64); 3] = [(2 * HOUR, MINUTE), (2 * DAY, HOUR), (90 * DAY, DAY)];

/// When the newest session started (0 before the first): samples older than it are what
/// "since the previous session" measures from, so thinning keeps one of them per directory.
pub(super) fn newest_session_start(conn: &rusqlite::Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT coalesce(max(start), 0) FROM sessions", [], |r| {
        r.get(0)
    })
}

impl Store {
    /// Creates the history tables if they are missing (every open: see the module doc).
    pub(super) fn ensure_history(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch(HISTORY_TABLES)
            .map_err(|e| self.err(e))
    }

    pub(super) fn has_history(&self) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'
                 AND name IN ('size_history', 'sessions')",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n == 2)
            .map_err(|e| self.err(e))
    }

    /// Records that a session starts at `start_ms`.
    pub fn begin_session(&mut self, start_ms: i64) -> Result<i64, StoreError> {
        self.conn
            .execute("INSERT INTO sessions (start) VALUES (?1)", [start_ms])
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records when session `id` ended.
    pub fn end_session(&mut self, id: i64, end_ms: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE sessions SET end = ?2 WHERE id = ?1",
                params![id, end_ms],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// The newest sample of every directory whose newest is not a tombstone.
    pub fn latest_samples(&self) -> Result<Vec<(Vec<u8>, Base)>, StoreError> {
        Ok(self
            .samples_at(i64::MAX)?
            .into_iter()
            .filter(|(_, b)| b.items != GONE)
            .collect())
    }

    /// Each directory's newest sample at or before `at_ms` (tombstones included).
    fn samples_at(&self, at_ms: i64) -> Result<Vec<(Vec<u8>, Base)>, StoreError> {
        if !self.has_history()? {
            return Ok(Vec::new());
        }
        // SQLite takes the bare columns of a max() aggregate from the row holding the max.
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT dir, disk, apparent, items, max(time) FROM size_history
                     WHERE time <= ?1 AND {VALID_SAMPLE} GROUP BY dir"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([at_ms], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    Base {
                        disk: r.get::<_, i64>(1)? as u64,
                        apparent: r.get::<_, i64>(2)? as u64,
                        items: r.get(3)?,
                        time_ms: r.get(4)?,
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The directories as they were at `at_ms` (the gone ones left out), and when the oldest
    /// sample was taken (None: no history at all).
    pub fn baseline_at(&self, at_ms: i64) -> Result<(Dirs, Option<i64>), StoreError> {
        if !self.has_history()? {
            return Ok((Dirs::new(), None));
        }
        let first: Option<i64> = self
            .conn
            .query_row(
                &format!("SELECT min(time) FROM size_history WHERE {VALID_SAMPLE}"),
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        let dirs = self
            .samples_at(at_ms)?
            .into_iter()
            .filter(|(_, b)| b.items != GONE)
            .collect();
        Ok((dirs, first))
    }

    /// The start of the newest session that began before `before_ms`, if any.
    pub fn session_before(&self, before_ms: i64) -> Result<Option<i64>, StoreError> {
        if !self.has_history()? {
            return Ok(None);
        }
        self.conn
            .query_row(
                "SELECT max(start) FROM sessions WHERE start < ?1",
                [before_ms],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// Writes samples inside a transaction (a batch's, so it stays one).
    pub(super) fn insert_samples(
        tx: &rusqlite::Transaction<'_>,
        samples: &[Sample],
    ) -> rusqlite::Result<()> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut ins = tx.prepare_cached(
            "INSERT OR REPLACE INTO size_history (dir, time, disk, apparent, items)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for s in samples {
            ins.execute(params![
                s.dir,
                s.time_ms,
                s.disk as i64,
                s.apparent as i64,
                s.items
            ])?;
        }
        Ok(())
    }

    /// Thins the history as of `now_ms` (see `THINNING`): in each directory's bucket only the
    /// newest sample stays; directories gone for longer than the last tier are forgotten.
    /// Returns the rows removed.
    pub fn thin_history(&mut self, now_ms: i64) -> Result<u64, StoreError> {
        let [(t1, w1), (t2, w2), (t3, w3)] = THINNING;
        // Each directory's newest sample from before the newest session is its baseline for
        // "since the previous session": kept whatever bucket it shares.
        let session = newest_session_start(&self.conn).map_err(|e| self.err(e))?;
        let removed = self
            .conn
            .execute(
                "DELETE FROM size_history WHERE (dir, time) IN (
                    SELECT dir, time FROM (
                        SELECT dir, time, row_number() OVER (
                            PARTITION BY dir, CASE
                                WHEN ?1 - time < ?2 THEN 1000000000 + time / ?3
                                WHEN ?1 - time < ?4 THEN 2000000000 + time / ?5
                                WHEN ?1 - time < ?6 THEN 3000000000 + time / ?7
                                ELSE 0 END
                            ORDER BY time DESC) AS rank,
                        row_number() OVER (
                            PARTITION BY dir, time < ?8 ORDER BY time DESC) AS before,
                        row_number() OVER (PARTITION BY dir ORDER BY time) AS oldest,
                        time < ?8 AS old
                        FROM size_history)
                    WHERE rank > 1 AND oldest > 1 AND NOT (old AND before = 1))",
                params![now_ms, t1, w1, t2, w2, t3, w3, session],
            )
            .map_err(|e| self.err(e))?;
        // A directory that no longer exists keeps its first sample, its last state and its
        // tombstone (what a baseline from any moment it existed needs to say "deleted" and
        // how much went), not how it grew between: churn of short-lived directories leaves
        // two rows each, until the budget drops them (`budget`) or the last tier forgets them.
        let collapsed = self
            .conn
            .execute(
                "DELETE FROM size_history WHERE (dir, time) IN (
                    SELECT dir, time FROM (
                        SELECT dir, time,
                            row_number() OVER (PARTITION BY dir ORDER BY time DESC) AS rank,
                            row_number() OVER (PARTITION BY dir ORDER BY time) AS oldest,
                            first_value(items) OVER (PARTITION BY dir ORDER BY time DESC)
                                AS newest
                        FROM size_history)
                    WHERE newest = ?1 AND rank > 2 AND oldest > 1)",
                [GONE],
            )
            .map_err(|e| self.err(e))?;
        let forgotten = self
            .conn
            .execute(
                "DELETE FROM size_history WHERE dir IN (
                    SELECT dir FROM (
                        SELECT dir, items, max(time) AS newest FROM size_history GROUP BY dir)
                    WHERE newest < ?1 AND items = ?2)",
                params![now_ms - t3, GONE],
            )
            .map_err(|e| self.err(e))?;
        Ok((removed + collapsed + forgotten) as u64)
    }

    /// `thin_history`, unless the last thinning (of any run: its time is kept in `meta`) is
    /// less than `every_ms` old. A thinning reads the whole history; most runs start within
    /// minutes of the last one, when there is nothing to thin.
    pub fn thin_history_if_due(&mut self, now_ms: i64, every_ms: i64) -> Result<(), StoreError> {
        // A forged or future time must neither overflow nor put thinning off for good.
        let last = self
            .meta_u64("history_thinned_at")?
            .and_then(|v| i64::try_from(v).ok())
            .unwrap_or(0);
        if (0..every_ms).contains(&now_ms.saturating_sub(last)) {
            return Ok(());
        }
        self.thin_history(now_ms)?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('history_thinned_at', ?1)",
                [now_ms.to_string()],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Rows of `size_history` (for reports and tests).
    pub fn history_len(&self) -> Result<u64, StoreError> {
        if !self.has_history()? {
            return Ok(0);
        }
        self.conn
            .query_row("SELECT count(*) FROM size_history", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }
}
