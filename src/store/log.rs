//! The `mutation_log`: what changed, a row per change, written with the batch that applied
//! it, and trimmed by age and count (`Retention`). Rows are made here only (`LogRow::seen`,
//! `renamed`, `user`, and the budget's `dirty-dir`/`rescan-root`), their kind an enum.

use rusqlite::params;

use super::{budget, i, now_secs};

/// One watch batch's `mutation_log` rows, with the retention to apply after them.
#[derive(Debug, Clone)]
pub struct LogBatch {
    pub batch: u64,
    pub rows: Vec<LogRow>,
    pub retention: Retention,
}

/// What a `mutation_log` row records (stored as its `as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Create,
    Modify,
    Remove,
    /// `path` moved to `path2`.
    Rename,
    /// A subtree verified (a backend asked, or it could not be watched).
    Rescan,
    /// A moved directory read again once watched.
    Reread,
    /// A directory whose changes did not fit one batch's share of the budget.
    DirtyDir,
    /// Changes that did not fit even as directories: the whole root was verified.
    RescanRoot,
}

impl LogKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::Create => "create",
            LogKind::Modify => "modify",
            LogKind::Remove => "remove",
            LogKind::Rename => "rename",
            LogKind::Rescan => "rescan",
            LogKind::Reread => "reread",
            LogKind::DirtyDir => "dirty-dir",
            LogKind::RescanRoot => "rescan-root",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    pub kind: LogKind,
    pub path: Vec<u8>,
    pub path2: Option<Vec<u8>>,
    pub backend: &'static str,
    /// Bytes freed by a deletion made by the user (`backend` "user"); `NULL` otherwise.
    pub bytes: Option<u64>,
}

/// How much of `mutation_log` to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_age_secs: u64,
    pub max_rows: u64,
}

impl LogRow {
    /// A row for `path` as a backend (`Backend::name`) saw it.
    #[must_use]
    pub fn seen(kind: LogKind, path: Vec<u8>, backend: &'static str) -> LogRow {
        LogRow {
            kind,
            path,
            path2: None,
            backend,
            bytes: None,
        }
    }

    /// A move from `path` to `to` (if the backend named it).
    #[must_use]
    pub fn renamed(path: Vec<u8>, to: Option<Vec<u8>>, backend: &'static str) -> LogRow {
        LogRow {
            path2: to,
            ..LogRow::seen(LogKind::Rename, path, backend)
        }
    }

    /// A change this process made for the user (backend `user`), with the bytes a deletion
    /// freed.
    #[must_use]
    pub fn user(kind: LogKind, path: Vec<u8>, bytes: Option<u64>) -> LogRow {
        LogRow {
            bytes,
            ..LogRow::seen(kind, path, "user")
        }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age_secs: 30 * 86_400,
            max_rows: 1_000_000,
        }
    }
}

/// Inserts a batch's log rows (within `cap` bytes) and applies retention, inside `tx`.
pub(super) fn insert(
    tx: &rusqlite::Transaction<'_>,
    log: &LogBatch,
    cap: u64,
) -> rusqlite::Result<u64> {
    let (batch, retention) = (log.batch, log.retention);
    let rows = budget::cap_rows(&log.rows, cap);
    let now = now_secs();
    {
        let mut ins = tx.prepare_cached(
            "INSERT INTO mutation_log (time, kind, path, path2, backend, batch, bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for r in rows.iter() {
            ins.execute(params![
                i(now),
                r.kind.as_str(),
                r.path,
                r.path2,
                r.backend,
                i(batch),
                r.bytes.map(i)
            ])?;
        }
    }
    // `seq` follows time (a clock stepped back only delays a trim): the old rows are the
    // first ones, and the search for the first young row stops there (no index on
    // `time`: a `WHERE time < ?` read the whole log at every batch).
    let mut trimmed = tx.execute(
        "DELETE FROM mutation_log WHERE seq < coalesce(
             (SELECT seq FROM mutation_log WHERE time >= ?1 ORDER BY seq LIMIT 1),
             (SELECT max(seq) + 1 FROM mutation_log))",
        [i(now.saturating_sub(retention.max_age_secs))],
    )? as u64;
    trimmed += tx.execute(
        "DELETE FROM mutation_log WHERE seq <= (SELECT max(seq) FROM mutation_log) - ?1",
        [i(retention.max_rows)],
    )? as u64;
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_row_names_the_user_backend_and_kinds_keep_their_stored_names() {
        let r = LogRow::user(LogKind::Remove, b"/r/x".to_vec(), Some(4096));
        assert_eq!(r.backend, crate::watch::Backend::User.name());
        assert_eq!(r.bytes, Some(4096));
        let names: Vec<&str> = [
            LogKind::Create,
            LogKind::Modify,
            LogKind::Remove,
            LogKind::Rename,
            LogKind::Rescan,
            LogKind::Reread,
            LogKind::DirtyDir,
            LogKind::RescanRoot,
        ]
        .iter()
        .map(|k| k.as_str())
        .collect();
        assert_eq!(
            names,
            [
                "create",
                "modify",
                "remove",
                "rename",
                "rescan",
                "reread",
                "dirty-dir",
                "rescan-root"
            ]
        );
    }
}
