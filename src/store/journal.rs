//! The entry rows of live batches, appended to a journal and folded into `entries` in bulk.
//!
//! A batch of 1,000 changes in random directories of a 500,000-entry tree changes about 1,500
//! rows of `entries`, each in a page of its B-tree that no other change of the batch shares:
//! each row cost a page read, a page in the WAL and a page checkpointed, so the store's CPU
//! per change grew with the tree (4.8 µs at 10,000 entries, 14 at 500,000). A batch now appends
//! its rows' new images (a deletion as an image with no kind) to `entries_journal`, whose
//! pages are the last ones of its B-tree: a batch's cost no longer depends on the tree. When
//! the journal holds a quarter of the tree (at least `MIN_FOLD` rows), the batch that passes it
//! also folds it: the newest image of each id goes into `entries` in id order (so rows share
//! their pages: at most every page of `entries` once per quarter of the tree), and the journal
//! is emptied. A whole snapshot empties it too.
//!
//! The stored tree is always `entries` overlaid with the journal's newest images (`overlay`),
//! in the batch's one transaction, so a kill at any moment leaves a whole generation as before.

use rusqlite::{Transaction, params};

use crate::tree::{Changes, Row, RowChunk};

/// Version 4 of the schema: the journal. Every column but the id may be `NULL` (a deletion).
pub(super) const SCHEMA_V4: &str = "
CREATE TABLE IF NOT EXISTS entries_journal (
    seq INTEGER PRIMARY KEY,
    id INTEGER NOT NULL,
    parent INTEGER, name BLOB, kind INTEGER, flags INTEGER, size INTEGER, disk INTEGER,
    total_size INTEGER, total_disk INTEGER, items INTEGER, mtime INTEGER, ino INTEGER,
    dev INTEGER, nlink INTEGER, errno INTEGER, mtime_nsec INTEGER, ctime INTEGER,
    ctime_nsec INTEGER, dflags INTEGER
);
";

/// The columns of an entry, in the order `super::rows::decode_row` reads them.
pub(super) const COLUMNS: &str = "id, parent, name, kind, flags, size, disk, total_size, \
     total_disk, items, mtime, ino, dev, nlink, errno, mtime_nsec, ctime, ctime_nsec, dflags";

/// The journal's newest image of each id (the `seq` primary key orders them).
const NEWEST: &str = "seq IN (SELECT max(seq) FROM entries_journal GROUP BY id)";

/// The fewest rows folded at once (a small tree folds every few batches, not every one).
const MIN_FOLD: u64 = 8192;

/// Whether a journal of `rows` is folded, for a tree of `entries`.
#[must_use]
pub(super) fn due(rows: u64, entries: u64) -> bool {
    rows >= MIN_FOLD.max(entries / 4)
}

/// Appends a batch's rows (then its deletions, as `entries` took them: a later image wins);
/// returns how many journal rows it added.
pub(super) fn append(tx: &Transaction<'_>, changes: &Changes) -> rusqlite::Result<u64> {
    let mut image = tx.prepare_cached(&format!(
        "INSERT INTO entries_journal ({COLUMNS}) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
    ))?;
    for (r, name) in changes.upserts.iter() {
        super::rows::insert_row(&mut image, r, name)?;
    }
    let mut gone = tx.prepare_cached("INSERT INTO entries_journal (id) VALUES (?1)")?;
    for &id in &changes.deletes {
        gone.execute(params![id])?;
    }
    Ok((changes.upserts.len() + changes.deletes.len()) as u64)
}

/// Moves the journal into `entries`: the newest image of each id replaces its row (in id
/// order), a deletion removes it, and the journal is emptied.
pub(super) fn fold(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(&format!(
        "INSERT OR REPLACE INTO entries ({COLUMNS})
             SELECT {COLUMNS} FROM entries_journal WHERE {NEWEST} AND kind IS NOT NULL
             ORDER BY id;
         DELETE FROM entries WHERE id IN
             (SELECT id FROM entries_journal WHERE {NEWEST} AND kind IS NULL);
         DELETE FROM entries_journal;"
    ))
}

/// Rows in the journal.
pub(super) fn rows(conn: &rusqlite::Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT count(*) FROM entries_journal", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n.max(0) as u64)
}

/// The journal's newest image of each id, in id order: `Some` row, or `None` for a deletion.
pub(super) fn newest(
    conn: &rusqlite::Connection,
    decode: &dyn Fn(&rusqlite::Row<'_>, &mut RowChunk) -> rusqlite::Result<()>,
) -> rusqlite::Result<(Vec<(u32, bool)>, RowChunk)> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM entries_journal WHERE {NEWEST} ORDER BY id"
    ))?;
    let mut rows = stmt.query([])?;
    let mut ids = Vec::new();
    let mut images = RowChunk::default();
    while let Some(r) = rows.next()? {
        let id = u32::try_from(r.get::<_, i64>(0)?)
            .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, 0))?;
        let kind: Option<i64> = r.get(3)?;
        if kind.is_some() {
            decode(r, &mut images)?;
        }
        ids.push((id, kind.is_some()));
    }
    Ok((ids, images))
}

/// `entries` (in id order, from `base`) overlaid with the journal's newest images: a row the
/// journal names is replaced by its image or dropped; the images of new ids come in order.
pub(super) fn overlay(base: RowChunk, ids: &[(u32, bool)], images: &RowChunk) -> RowChunk {
    if ids.is_empty() {
        return base;
    }
    let mut out = RowChunk::with_capacity(base.len() + images.len());
    let mut journal = ids.iter().peekable();
    let mut image = images.iter().peekable();
    let mut take_journal = |upto: Option<u32>, out: &mut RowChunk| {
        while let Some(&&(id, live)) = journal.peek() {
            if upto.is_some_and(|u| id > u) {
                break;
            }
            journal.next();
            if live && let Some((r, name)) = image.next() {
                push(out, r, name);
            }
        }
    };
    for (r, name) in base.iter() {
        let named = ids.binary_search_by_key(&r.id, |&(id, _)| id).is_ok();
        take_journal(Some(r.id), &mut out);
        if !named {
            push(&mut out, r, name);
        }
    }
    take_journal(None, &mut out);
    out
}

fn push(out: &mut RowChunk, r: &Row, name: &[u8]) {
    out.push(*r, name);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(rows: &[(u32, u64)]) -> RowChunk {
        let mut c = RowChunk::default();
        for &(id, size) in rows {
            c.push(
                Row {
                    id,
                    parent: 0,
                    kind: 2,
                    flags: 0,
                    ino: 0,
                    dev: 0,
                    aux: 0,
                    mtime: 0,
                    mtime_nsec: 0,
                    ctime: 0,
                    ctime_nsec: 0,
                    dflags: 0,
                    apparent: size,
                    disk: 0,
                    total_apparent: 0,
                    total_disk: 0,
                    items: 0,
                    errno: 0,
                },
                format!("n{id}").as_bytes(),
            );
        }
        c
    }

    #[test]
    fn the_journal_replaces_drops_and_adds_rows_in_id_order() {
        let base = chunk(&[(1, 10), (3, 30), (5, 50), (9, 90)]);
        // 0 new, 3 replaced, 5 deleted, 7 new, 12 new.
        let ids = [(0, true), (3, true), (5, false), (7, true), (12, true)];
        let images = chunk(&[(0, 1), (3, 33), (7, 77), (12, 120)]);
        let out = overlay(base, &ids, &images);
        let got: Vec<(u32, u64, Vec<u8>)> = out
            .iter()
            .map(|(r, n)| (r.id, r.apparent, n.to_vec()))
            .collect();
        let want: Vec<(u32, u64, Vec<u8>)> =
            [(0, 1), (1, 10), (3, 33), (7, 77), (9, 90), (12, 120)]
                .iter()
                .map(|&(id, s)| (id, s, format!("n{id}").into_bytes()))
                .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_fold_is_due_at_a_quarter_of_the_tree_and_never_below_the_minimum() {
        assert!(!due(MIN_FOLD - 1, 1000));
        assert!(due(MIN_FOLD, 1000));
        assert!(!due(100_000, 500_000));
        assert!(due(125_000, 500_000));
    }
}
