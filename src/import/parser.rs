//! The export's grammar read into a tree: the header and metadata, each item's fields, and
//! the nesting of directories, one entry at a time into the arena (as `import` describes).

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Meta;
use super::lexer::{self, LexError, Lexer, Position};
use super::seen;
use crate::path::display_name;
use crate::tree::{Arena, Delta, EntryInfo, Kind, NewEntry, NodeId, Tree, TreeError, flags};

/// Why a read stopped: the document (or reading it), or the tree it was read into.
pub(super) enum Failure {
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

/// Reads the export in `src` (already decompressed) into a tree, counting its entries in
/// `progress` as it goes.
pub(super) fn parse(
    src: impl Read,
    progress: &AtomicU64,
) -> std::result::Result<(Tree, Meta), Failure> {
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
    out
}

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
