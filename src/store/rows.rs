//! An entry's row in SQLite: written with every column, read back checked (a value that does
//! not fit its field is an error).

use rusqlite::params;

use super::i;
use crate::tree::{Row, RowChunk};

/// The statement `insert_row` runs: every column, a row of the same id replaced.
pub(super) const INSERT_ENTRY: &str = "INSERT OR REPLACE INTO entries
    (id, parent, name, kind, flags, size, disk, total_size, total_disk, items, mtime, ino, dev,
     nlink, errno, mtime_nsec, ctime, ctime_nsec, dflags)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";

/// One stored row (the columns of `journal::COLUMNS`), checked and added to `out`.
pub(super) fn decode_row(r: &rusqlite::Row<'_>, out: &mut RowChunk) -> rusqlite::Result<()> {
    let get = |k: usize| -> rusqlite::Result<i64> { r.get(k) };
    let row = Row {
        id: u32::try_from(get(0)?).map_err(|_| bad_value(0))?,
        parent: u32::try_from(get(1)?).map_err(|_| bad_value(1))?,
        kind: u8::try_from(get(3)?).map_err(|_| bad_value(3))?,
        flags: u8::try_from(get(4)?).map_err(|_| bad_value(4))?,
        apparent: get(5)? as u64,
        disk: get(6)? as u64,
        total_apparent: get(7)? as u64,
        total_disk: get(8)? as u64,
        items: u32::try_from(get(9)?).map_err(|_| bad_value(9))?,
        mtime: get(10)?,
        mtime_nsec: u32::try_from(get(15)?).map_err(|_| bad_value(15))?,
        ctime: get(16)?,
        ctime_nsec: u32::try_from(get(17)?).map_err(|_| bad_value(17))?,
        dflags: u8::try_from(get(18)?).map_err(|_| bad_value(18))?,
        ino: get(11)? as u64,
        dev: get(12)? as u64,
        aux: u32::try_from(get(13)?).map_err(|_| bad_value(13))?,
        errno: u32::try_from(get(14)?).map_err(|_| bad_value(14))?,
    };
    let name = r
        .get_ref(2)
        .and_then(|v| v.as_blob().map_err(rusqlite::Error::from))?;
    out.push(row, name);
    Ok(())
}

fn bad_value(col: usize) -> rusqlite::Error {
    rusqlite::Error::IntegralValueOutOfRange(col, 0)
}

pub(super) fn insert_row(
    stmt: &mut rusqlite::CachedStatement<'_>,
    r: &Row,
    name: &[u8],
) -> rusqlite::Result<()> {
    stmt.execute(params![
        r.id,
        r.parent,
        name,
        r.kind,
        r.flags,
        i(r.apparent),
        i(r.disk),
        i(r.total_apparent),
        i(r.total_disk),
        r.items,
        r.mtime,
        i(r.ino),
        i(r.dev),
        r.aux,
        r.errno,
        r.mtime_nsec,
        r.ctime,
        r.ctime_nsec,
        r.dflags,
    ])
    .map(drop)
}
