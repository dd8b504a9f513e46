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
mod parser;
mod seen;
mod source;
mod stops;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use lexer::{LexError, Position};
use parser::Failure;

use crate::path::display_name;
use crate::tree::{Tree, TreeError};

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
    parser::parse(src, progress)
        .map(|(tree, mut meta)| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{Kind, NodeId, flags};

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
