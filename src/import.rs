//! Opens an ncdu JSON export (`ncdu -o`, `gdu -o`, `restic ls --ncdu`, `dtui export`) as a
//! `Tree`, for the read-only browser (`dtui -f FILE`) and `dtui scan -f FILE`.
//!
//! The format: `[1, minor, {metadata}, [ {dir info}, item, [subdir info, item...], ... ]]`,
//! each item its own sizes. The document is read as a stream (`lexer`) straight into the arena,
//! one entry at a time: nothing of the whole document is held beside the tree, so an imported
//! entry costs what a scanned one does. Totals are summed as the scanner sums them (each
//! directory's change handed up one level when it closes), and hard links (`hlnkc`, by device
//! and inode) are charged once, as by a scan and by ncdu. zstd-compressed exports (`ncdu -c`)
//! are recognised by their magic number (`source`).

mod lexer;
mod seen;
mod source;
mod stops;

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use lexer::{LexError, Lexer, Position};

use crate::path::display_name;
use crate::tree::{Arena, Delta, EntryInfo, Kind, NewEntry, NodeId, Tree, TreeError, flags};

/// What the export's header says about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub minor: u64,
    pub progname: Option<String>,
    pub progver: Option<String>,
    /// When the export was written (seconds since the epoch), if it says.
    pub timestamp: Option<i64>,
    /// It was zstd-compressed.
    pub compressed: bool,
}

/// An export opened as a tree.
pub struct Imported {
    pub tree: Tree,
    pub meta: Meta,
    /// The file it came from, as given (`-` for standard input).
    pub file: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {}: {source}", shown_file(file))]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not a readable export: what is wrong and where (in the decompressed data when it was
    /// compressed).
    #[error("{}:{}:{}: {what} (byte {}{})", shown_file(file), at.line, at.column, at.offset,
        if *compressed { " of the decompressed data" } else { "" })]
    Syntax {
        file: PathBuf,
        at: Position,
        what: String,
        compressed: bool,
    },
    /// Compressed data that cannot be decoded: what is wrong, in plain words, and the byte of
    /// the compressed data where the frame or block in question starts.
    #[error("{}: {what}", shown_file(file))]
    Compressed {
        file: PathBuf,
        at: u64,
        what: String,
    },
    #[error("{}: {source}", shown_file(file))]
    Tree {
        file: PathBuf,
        #[source]
        source: TreeError,
    },
}

/// A file as messages name it (`-` is standard input).
#[must_use]
pub fn shown_file(file: &Path) -> String {
    if file == Path::new("-") {
        "(standard input)".into()
    } else {
        display_name(file.as_os_str().as_encoded_bytes())
    }
}

/// Opens `file` (`-`: standard input) and reads it into a tree. `progress` counts the entries
/// read so far, for a caller that shows it.
pub fn load(file: &Path, progress: &AtomicU64) -> std::result::Result<Imported, ImportError> {
    let io_err = |source| io_failure(file, source);
    let raw: Box<dyn Read + Send> = if file == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(file).map_err(io_err)?)
    };
    let (src, compressed) = source::open(raw).map_err(io_err)?;
    read(src, file, compressed, progress)
}

/// `load`, showing how many entries are read on stderr when `show` and it is a terminal (then
/// the load runs on a worker while this thread shows its progress; otherwise right here).
///
/// While the progress line is up, SIGINT, SIGTERM and SIGHUP (Ctrl-C while a slow `-f -`
/// is read) are taken here: the line is cleared, so that the shell's prompt starts on a fresh
/// line, then the process dies of the signal as it would have.
pub fn load_reporting(file: &Path, show: bool) -> std::result::Result<Imported, ImportError> {
    use std::io::{IsTerminal, Write};
    let show = show && std::io::stderr().is_terminal();
    let progress = AtomicU64::new(0);
    if !show {
        return load(file, &progress);
    }
    // Blocked before the loader starts, which inherits the mask: the signal waits for us.
    let stops = stops::Stops::block();
    let (tx, rx) = crossbeam_channel::bounded(1);
    let out = std::thread::scope(|s| {
        let _loader = crate::threads::spawn_or_run(s, "dtui-import", || {
            let _ = tx.send(load(file, &progress));
        });
        let mut shown = false;
        let started = std::time::Instant::now();
        loop {
            match rx.recv_timeout(std::time::Duration::from_millis(50)) {
                Ok(out) => {
                    if shown {
                        eprint!("\r\x1b[K");
                    }
                    break out;
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if let Some(stops) = &stops {
                        stops.die_if_asked();
                    }
                    if started.elapsed() >= std::time::Duration::from_millis(200) {
                        let mut err = std::io::stderr().lock();
                        let _ = write!(
                            err,
                            "\r\x1b[Kreading {}: {} entries",
                            shown_file(file),
                            progress.load(Ordering::Relaxed)
                        );
                        let _ = err.flush();
                        shown = true;
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    panic!("the loader thread ended without a result")
                }
            }
        }
    });
    drop(stops);
    out
}

impl Imported {
    /// Where the tree came from, for the report and the browser's footer: the file, who wrote
    /// it and when.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut s = format!("imported from {}", shown_file(&self.file));
        let who = match (&self.meta.progname, &self.meta.progver) {
            (Some(n), Some(v)) => Some(format!("{n} {v}")),
            (Some(n), None) => Some(n.clone()),
            _ => None,
        };
        let when = self
            .meta
            .timestamp
            .filter(|&t| t != 0)
            .map(|t| format!("{} UTC", crate::format::format_mtime(t)));
        match (who, when) {
            (Some(w), Some(t)) => s = format!("{s} ({w}, {t})"),
            (Some(w), None) | (None, Some(w)) => s = format!("{s} ({w})"),
            (None, None) => {}
        }
        s
    }
}

/// Reads an export from `src` (already decompressed); `file` and `compressed` only name it in
/// errors.
pub fn read(
    src: impl Read,
    file: &Path,
    compressed: bool,
    progress: &AtomicU64,
) -> std::result::Result<Imported, ImportError> {
    let mut p = Parser {
        lx: Lexer::new(src),
        names: Vec::with_capacity(256),
        key: Vec::with_capacity(32),
        progress,
        count: 0,
        gdu: false,
    };
    let out = p.document();
    progress.store(p.count, Ordering::Relaxed);
    out.map(|(tree, mut meta)| {
        meta.compressed = compressed;
        Imported {
            tree,
            meta,
            file: file.to_path_buf(),
        }
    })
    .map_err(|e| match e {
        Failure::Lex(LexError::Syntax { at, what }) => ImportError::Syntax {
            file: file.to_path_buf(),
            at,
            what,
            compressed,
        },
        Failure::Lex(LexError::Io(source)) => io_failure(file, source),
        Failure::Tree(source) => ImportError::Tree {
            file: file.to_path_buf(),
            source,
        },
    })
}

/// A read of `file` that failed: the decompressor's own error, or the system's.
fn io_failure(file: &Path, source: std::io::Error) -> ImportError {
    match source::ZstdError::inside(&source) {
        Some(z) => ImportError::Compressed {
            file: file.to_path_buf(),
            at: z.at,
            what: z.what.clone(),
        },
        None => ImportError::Io {
            file: file.to_path_buf(),
            source,
        },
    }
}

enum Failure {
    Lex(LexError),
    Tree(TreeError),
}

impl From<LexError> for Failure {
    fn from(e: LexError) -> Failure {
        Failure::Lex(e)
    }
}

impl From<TreeError> for Failure {
    fn from(e: TreeError) -> Failure {
        Failure::Tree(e)
    }
}

type Result<T> = std::result::Result<T, Failure>;

/// A syntax error at `at`.
fn fail<T>(at: Position, what: impl Into<String>) -> Result<T> {
    Err(Failure::Lex(lexer::error_at(at, what)))
}

/// One item's fields as the export gives them.
#[derive(Default)]
struct Item {
    asize: u64,
    dsize: u64,
    /// Absent: the parent's.
    dev: Option<u64>,
    ino: u64,
    hlnkc: bool,
    nlink: u32,
    read_error: bool,
    /// `EXCLUDED` or `OTHER_FS`.
    excluded: u8,
    notreg: bool,
    mtime: i64,
    mode: Option<u32>,
    /// Where the name string starts (for its errors), if there was one.
    name_at: Option<Position>,
    /// Both sizes absent (gdu writes no directory sizes).
    sizeless: bool,
}

/// An open directory: its node, its device, and the change of its totals that its ancestors
/// have not been charged yet.
struct Frame {
    node: NodeId,
    dev: u64,
    owed: Delta,
    /// The names read in it so far.
    seen: seen::Seen,
}

/// gdu leaves directory sizes out of its exports and counts every directory as 4096 bytes when
/// it scans and when it reads one back; an export it wrote is read the same way.
const GDU_DIR_SIZE: u64 = 4096;

/// How often the progress counter is published.
const PROGRESS_EVERY: u64 = 4096;

struct Parser<'p, R> {
    lx: Lexer<R>,
    /// The current item's name.
    names: Vec<u8>,
    /// The current member's key (and the scratch of skipped values).
    key: Vec<u8>,
    progress: &'p AtomicU64,
    count: u64,
    /// The export's progname is gdu (see `GDU_DIR_SIZE`).
    gdu: bool,
}

impl<R: Read> Parser<'_, R> {
    fn document(&mut self) -> Result<(Tree, Meta)> {
        if self.lx.skip_ws()?.is_none() {
            let at = self.lx.position();
            return fail(at, "an empty file, not an ncdu export");
        }
        self.lx
            .expect(b'[', "'[' (an ncdu export is a JSON array)")?;
        let at = self.position_after_ws()?;
        let major = self.lx.integer()?;
        if major != 1 {
            return fail(
                at,
                format!("unsupported major version {major} (ncdu exports are version 1)"),
            );
        }
        self.lx.expect(b',', "','")?;
        let minor = self.lx.unsigned(u64::MAX)?;
        let mut meta = Meta {
            minor,
            ..Meta::default()
        };
        self.lx.expect(b',', "','")?;
        if self.lx.skip_ws()? == Some(b'{') {
            self.metadata(&mut meta)?;
            self.gdu = meta.progname.as_deref() == Some("gdu");
            self.lx.expect(b',', "',' and the root directory")?;
        }
        self.lx.expect(
            b'[',
            "'[' opening the root directory (its info, then its items)",
        )?;
        let tree = self.tree()?;
        // Later versions may add elements after the tree: skipped, as ncdu does.
        loop {
            let at = self.position_after_ws()?;
            match self.lx.next_token()? {
                b',' => self.lx.skip_value(&mut self.key)?,
                b']' => break,
                b => {
                    return fail(
                        at,
                        format!("expected ',' or ']', found {}", lexer::shown(b)),
                    );
                }
            }
        }
        if let Some(b) = self.lx.skip_ws()? {
            let at = self.lx.position();
            return fail(
                at,
                format!("{} after the end of the export", lexer::shown(b)),
            );
        }
        Ok((tree, meta))
    }

    fn position_after_ws(&mut self) -> Result<Position> {
        self.lx.skip_ws()?;
        Ok(self.lx.position())
    }

    /// The metadata object (after whitespace, at its `{`).
    fn metadata(&mut self, meta: &mut Meta) -> Result<()> {
        self.lx.expect(b'{', "'{'")?;
        if self.lx.skip_ws()? == Some(b'}') {
            self.lx.next_token()?;
            return Ok(());
        }
        loop {
            self.lx.expect(b'"', "a member name")?;
            self.lx.string_into(&mut self.key)?;
            self.lx.expect(b':', "':'")?;
            match self.key.as_slice() {
                b"timestamp" => {
                    let t = self.lx.integer()?;
                    meta.timestamp = i64::try_from(t).ok();
                }
                b"progname" | b"progver" => {
                    let is_name = self.key == b"progname";
                    self.lx.expect(b'"', "a string")?;
                    self.lx.string_into(&mut self.names)?;
                    // Shown in the footer and the report as it is: escaped once, here.
                    let v = display_name(&self.names);
                    if is_name {
                        meta.progname = Some(v);
                    } else {
                        meta.progver = Some(v);
                    }
                }
                _ => self.lx.skip_value(&mut self.key)?,
            }
            if !self.member_follows()? {
                return Ok(());
            }
        }
    }

    /// After a member: `,` (true) or `}` (false).
    fn member_follows(&mut self) -> Result<bool> {
        let at = self.position_after_ws()?;
        match self.lx.next_token()? {
            b',' => Ok(true),
            b'}' => Ok(false),
            b => fail(
                at,
                format!("expected ',' or '}}', found {}", lexer::shown(b)),
            ),
        }
    }

    /// An item's object (after whitespace, at its `{`); its name goes to `self.names`. The
    /// root's name is the path it was scanned at; any other is one path component.
    fn item(&mut self, root: bool) -> Result<Item> {
        let at = self.position_after_ws()?;
        if self.lx.next_token()? != b'{' {
            return fail(at, "expected '{' (an item's info object)");
        }
        let mut it = Item {
            nlink: 1,
            sizeless: true,
            ..Item::default()
        };
        if self.lx.skip_ws()? == Some(b'}') {
            self.lx.next_token()?;
            return fail(at, "an item without a name");
        }
        loop {
            self.lx.expect(b'"', "a member name")?;
            self.lx.string_into(&mut self.key)?;
            self.lx.expect(b':', "':'")?;
            match self.key.as_slice() {
                b"name" => {
                    self.lx.skip_ws()?;
                    it.name_at = Some(self.lx.position());
                    self.lx.expect(b'"', "a string (the name)")?;
                    self.lx.string_into(&mut self.names)?;
                }
                b"asize" => {
                    it.asize = self.lx.unsigned(u64::MAX)?;
                    it.sizeless = false;
                }
                b"dsize" => {
                    it.dsize = self.lx.unsigned(u64::MAX)?;
                    it.sizeless = false;
                }
                b"dev" => it.dev = Some(self.lx.unsigned(u64::MAX)?),
                b"ino" => it.ino = self.lx.unsigned(u64::MAX)?,
                b"nlink" => it.nlink = self.lx.unsigned(u64::from(u32::MAX))? as u32,
                b"mode" => it.mode = Some(self.lx.unsigned(u64::from(u32::MAX))? as u32),
                b"mtime" => {
                    self.lx.skip_ws()?;
                    let at = self.lx.position();
                    let t = self.lx.integer()?;
                    it.mtime = i64::try_from(t)
                        .map_err(|_| Failure::Lex(lexer::error_at(at, "a number too large")))?;
                }
                b"hlnkc" => it.hlnkc = self.lx.boolean()?,
                b"read_error" => it.read_error = self.lx.boolean()?,
                b"notreg" => it.notreg = self.lx.boolean()?,
                b"excluded" => {
                    self.lx.expect(b'"', "a string (why it was excluded)")?;
                    self.lx.string_into(&mut self.key)?;
                    it.excluded = match self.key.as_slice() {
                        b"otherfs" | b"othfs" => flags::OTHER_FS,
                        _ => flags::EXCLUDED,
                    };
                }
                _ => self.lx.skip_value(&mut self.key)?,
            }
            if !self.member_follows()? {
                break;
            }
        }
        let Some(name_at) = it.name_at else {
            return fail(at, "an item without a name");
        };
        let n = &self.names;
        let component = n.as_slice() != b"." && n.as_slice() != b".." && !n.contains(&b'/');
        if n.is_empty() || n.contains(&0) || !(root || component) {
            return fail(
                name_at,
                format!(
                    "an invalid name \"{}\" (not one path component)",
                    display_name(n)
                ),
            );
        }
        if n.len() > 255 && !root {
            return fail(name_at, "a name longer than 255 bytes");
        }
        Ok(it)
    }

    fn info(&self, it: &Item, dir: bool, parent_dev: u64) -> EntryInfo {
        let kind = if dir {
            Kind::Dir
        } else {
            match it.mode.map(Kind::from_mode) {
                Some(k) if k != Kind::Dir => k,
                _ if it.notreg => Kind::Other,
                _ => Kind::File,
            }
        };
        let mut f = it.excluded;
        if it.read_error {
            f |= flags::READ_ERROR;
        }
        let (mut apparent, mut disk) = (it.asize, it.dsize);
        if dir && self.gdu && it.sizeless {
            (apparent, disk) = (GDU_DIR_SIZE, GDU_DIR_SIZE);
        }
        // Only entries marked as hard links are grouped (by device and inode), as ncdu does.
        let linked = !dir && it.hlnkc && it.ino != 0 && !it.read_error;
        EntryInfo {
            kind,
            flags: f,
            ino: it.ino,
            dev: it.dev.unwrap_or(parent_dev),
            nlink: if linked { it.nlink.max(2) } else { 1 },
            mtime: it.mtime,
            mtime_nsec: 0,
            apparent,
            disk,
            errno: 0,
        }
    }

    /// The root directory and everything below it (after the root's `[`).
    fn tree(&mut self) -> Result<Tree> {
        let root_item = self.item(true)?;
        // The root's name is the path it was scanned at; `/` is a fine name for it.
        let root_dev = root_item.dev.unwrap_or(0);
        let root_info = self.info(&root_item, true, root_dev);
        let root_path = PathBuf::from(OsStr::from_bytes(&self.names));
        let arena = Arena::create_temp().map_err(TreeError::from)?;
        let mut tree = Tree::create(arena, &root_path, &root_info)?;
        self.count = 1;
        let mut pool = seen::Pool::default();
        let mut stack = vec![Frame {
            node: tree.root(),
            dev: root_dev,
            owed: Delta::default(),
            seen: pool.take(),
        }];
        loop {
            // After an element of the innermost open directory: more, or its end.
            let at = self.position_after_ws()?;
            match self.lx.next_token()? {
                b',' => {}
                b']' => {
                    let done = stack.pop().expect("a directory is open until its ']'");
                    pool.give(done.seen);
                    let Some(parent) = stack.last_mut() else {
                        return Ok(tree);
                    };
                    if tree.flags(done.node) & flags::NOT_CHARGED == 0 {
                        let moved = tree.apply_local(parent.node, done.owed);
                        parent.owed.add(moved);
                    }
                    continue;
                }
                b => {
                    return fail(
                        at,
                        format!("expected ',' or ']', found {}", lexer::shown(b)),
                    );
                }
            }
            let frame = stack
                .last_mut()
                .expect("the loop ends when the root closes");
            let (parent, parent_dev) = (frame.node, frame.dev);
            let at = self.position_after_ws()?;
            let bracket = match self.lx.skip_ws()? {
                Some(b'[') => {
                    self.lx.next_token()?;
                    true
                }
                Some(b'{') => false,
                Some(b) => {
                    return fail(
                        at,
                        format!(
                            "expected an item ('{{') or a directory ('['), found {}",
                            lexer::shown(b)
                        ),
                    );
                }
                None => return fail(at, "unexpected end of the file"),
            };
            let it = self.item(false)?;
            // Two entries of one name in one directory cannot both be (ncdu never writes
            // that): a damaged or forged export, refused where the second starts.
            if !seen::first_time(&mut frame.seen, &self.names)
                && tree.find_child(parent, &self.names).is_some()
            {
                return fail(
                    at,
                    format!(
                        "a second entry named {} in the same directory",
                        display_name(&self.names)
                    ),
                );
            }
            // An object whose mode says directory is a directory listed without children.
            let dir = bracket || it.mode.is_some_and(|m| Kind::from_mode(m) == Kind::Dir);
            let info = self.info(&it, dir, parent_dev);
            let entry = NewEntry {
                name_start: 0,
                name_len: self.names.len() as u8,
                info,
            };
            let mut new_dir = NodeId::NONE;
            let owed = tree.add_children_local(parent, &[entry], &self.names, |id, _| {
                new_dir = id;
            })?;
            stack
                .last_mut()
                .expect("the parent is still open")
                .owed
                .add(owed);
            if bracket {
                stack.push(Frame {
                    node: new_dir,
                    dev: info.dev,
                    owed: Delta::default(),
                    seen: pool.take(),
                });
            }
            self.count += 1;
            if self.count % PROGRESS_EVERY == 0 {
                self.progress.store(self.count, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(text: &[u8]) -> Imported {
        let n = AtomicU64::new(0);
        read(text, Path::new("t.json"), false, &n).unwrap_or_else(|e| panic!("{e}"))
    }

    fn child(tree: &Tree, dir: NodeId, name: &[u8]) -> NodeId {
        tree.child_by_name(dir, name)
            .unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(name)))
    }

    #[test]
    fn names_keep_their_raw_bytes_and_escapes_become_utf8() {
        let t = import(
            b"[1,2,{},[{\"name\":\"/r\"},{\"name\":\"caf\xe9\"},{\"name\":\"\\u00e9\\ud83d\\ude00\\t\"},{\"name\":\"\\ud800x\"}]]",
        )
        .tree;
        let root = t.root();
        child(&t, root, b"caf\xe9");
        child(&t, root, "é😀\t".as_bytes());
        child(&t, root, "\u{fffd}x".as_bytes());
    }

    #[test]
    fn hard_links_are_charged_once_per_device_and_inode() {
        let t = import(
            br#"[1,2,{"timestamp":1700000000},[{"name":"/r","dev":1},
            {"name":"a","asize":100,"dsize":4096,"ino":7,"hlnkc":true},
            {"name":"b","asize":100,"dsize":4096,"ino":7,"hlnkc":true},
            {"name":"c","asize":100,"dsize":4096,"ino":7},
            [{"name":"other","dev":2},{"name":"d","asize":100,"dsize":4096,"ino":7,"hlnkc":true}]]]"#,
        );
        assert_eq!(t.meta.timestamp, Some(1_700_000_000));
        let tree = &t.tree;
        let root = tree.totals(tree.root());
        // a and b are one inode; c is not marked as a link; d is on another device.
        assert_eq!(root.apparent, 300);
        assert_eq!(root.disk, 3 * 4096);
        assert_eq!(root.items, 5);
        let b = child(tree, tree.root(), b"b");
        assert_ne!(tree.flags(b) & flags::HARDLINK_DUP, 0);
    }

    #[test]
    fn excluded_and_unreadable_entries_are_flagged_and_excluded_ones_not_counted() {
        let t = import(
            br#"[1,2,{},[{"name":"/r"},
            {"name":"x","asize":50,"excluded":"pattern"},
            {"name":"m","excluded":"otherfs"},
            [{"name":"bad","asize":10,"read_error":true}],
            {"name":"f","asize":5,"mode":41471,"notreg":true}]]"#,
        )
        .tree;
        let root = t.root();
        assert_eq!(t.totals(root).apparent, 15);
        assert_eq!(t.totals(root).items, 4);
        assert_ne!(t.flags(child(&t, root, b"x")) & flags::EXCLUDED, 0);
        assert_ne!(t.flags(child(&t, root, b"m")) & flags::OTHER_FS, 0);
        assert_ne!(t.flags(child(&t, root, b"bad")) & flags::READ_ERROR, 0);
        assert_ne!(t.flags(root) & flags::ERROR_BELOW, 0);
        assert_eq!(
            t.kind(child(&t, root, b"f")),
            Kind::Symlink,
            "from the mode"
        );
    }

    /// An export whose name string goes on for `len` bytes; counts what was read of it.
    struct LongName {
        head: &'static [u8],
        len: u64,
        tail: &'static [u8],
        read: u64,
    }

    impl Read for LongName {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let h = self.head.len() as u64;
            let (i, n) = if self.read < h {
                let rest = &self.head[self.read as usize..];
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                (self.read, n)
            } else if self.read < h + self.len {
                let n = (h + self.len - self.read).min(buf.len() as u64) as usize;
                buf[..n].fill(b'a');
                (self.read, n)
            } else {
                let rest =
                    &self.tail[(self.read - h - self.len).min(self.tail.len() as u64) as usize..];
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                (self.read, n)
            };
            self.read = i + n as u64;
            Ok(n)
        }
    }

    #[test]
    fn a_huge_string_is_refused_where_it_starts_without_reading_it_all() {
        // A zstd bomb of one long name made the reader hold the whole decompressed string (a
        // 92 KB file: a failed 2 GiB allocation, an abort).
        let head: &[u8] = br#"[1,2,{},[{"name":"/r"},{"name":""#;
        let mut src = LongName {
            head,
            len: 64 << 20,
            tail: br#""}]]"#,
            read: 0,
        };
        let n = AtomicU64::new(0);
        let err = read(&mut src, Path::new("t.json"), true, &n)
            .err()
            .expect("refused");
        let msg = err.to_string();
        assert!(msg.contains("longer than"), "{msg}");
        assert!(
            msg.contains(&format!("(byte {} of", head.len())),
            "the string's position: {msg}"
        );
        assert!(src.read < 4 << 20, "read {} bytes of it", src.read);
        // A long string in a field that is skipped is read through and dropped: accepted.
        let mut src = LongName {
            head: br#"[1,2,{},[{"name":"/r","future":""#,
            len: 1 << 20,
            tail: br#""},{"name":"f","asize":3}]]"#,
            read: 0,
        };
        let t = read(&mut src, Path::new("t.json"), false, &n)
            .unwrap_or_else(|e| panic!("{e}"))
            .tree;
        assert_eq!(t.totals(t.root()).apparent, 3);
    }

    #[test]
    fn a_gdu_export_counts_its_directories_as_gdu_does() {
        let t = import(
            br#"[1,2,{"progname":"gdu"},[{"name":"/r"},[{"name":"d"},{"name":"f","asize":1,"dsize":4096}]]]"#,
        )
        .tree;
        assert_eq!(t.totals(t.root()).disk, 3 * 4096);
        let other = import(br#"[1,2,{"progname":"ncdu"},[{"name":"/r"},[{"name":"d"}]]]"#).tree;
        assert_eq!(other.totals(other.root()).disk, 0);
    }
}
