//! ncdu's JSON export format (`ncdu -o`), readable by `ncdu -f` and `gdu -f`.
//!
//! `[1, 2, {metadata}, [root-info, child, [dir-info, ...], ...]]`: every item carries its own
//! sizes (a reader sums them up), hard links carry `ino`/`hlnkc`/`nlink` so the reader counts
//! them once, names are written as their raw bytes (JSON-escaped where needed, invalid UTF-8
//! passed through as ncdu itself does). The writer walks the tree with an explicit stack, so any
//! depth works.
//!
//! `Output` is where `dtui export -o TARGET` writes: a device, FIFO or socket is written in
//! place (`-o /dev/null` must never replace the system's `/dev/null`), a symlink is followed,
//! and only a regular file or a new path is written beside the target and renamed over it.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::tree::{Kind, NodeId, Tree, flags};

/// Writes the tree to `out` in ncdu's JSON format (major 1, minor 2).
pub fn write_ncdu_json(tree: &Tree, out: &mut impl Write) -> io::Result<()> {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    write!(
        out,
        "[1,2,{{\"progname\":\"dtui\",\"progver\":\"{}\",\"timestamp\":{timestamp}}}",
        env!("CARGO_PKG_VERSION")
    )?;
    // Each stack frame: the next child to write of an open directory (NONE once done).
    let root = tree.root();
    out.write_all(b",\n[")?;
    write_info(tree, root, None, out)?;
    let mut stack: Vec<NodeId> = vec![first_child(tree, root)];
    while let Some(top) = stack.last_mut() {
        let cur = *top;
        if cur.is_none() {
            stack.pop();
            out.write_all(b"]")?;
            continue;
        }
        *top = NodeId(tree.node(cur).next_sibling);
        out.write_all(b",\n")?;
        let parent_dev = tree.parent(cur).and_then(|p| tree.dev(p));
        if tree.kind(cur) == Kind::Dir {
            out.write_all(b"[")?;
            write_info(tree, cur, parent_dev, out)?;
            stack.push(first_child(tree, cur));
        } else {
            write_info(tree, cur, parent_dev, out)?;
        }
    }
    out.write_all(b"]\n")?;
    out.flush()
}

fn first_child(tree: &Tree, dir: NodeId) -> NodeId {
    tree.children(dir).next().unwrap_or(NodeId::NONE)
}

fn write_info(
    tree: &Tree,
    id: NodeId,
    parent_dev: Option<u64>,
    out: &mut impl Write,
) -> io::Result<()> {
    let n = tree.node(id);
    let own = tree.own(id);
    let kind = tree.kind(id);
    out.write_all(b"{\"name\":")?;
    write_json_bytes(tree.name(id), out)?;
    if n.flags & (flags::EXCLUDED | flags::OTHER_FS) == 0 {
        if own.apparent != 0 {
            write!(out, ",\"asize\":{}", own.apparent)?;
        }
        if own.disk != 0 {
            write!(out, ",\"dsize\":{}", own.disk)?;
        }
    }
    if kind == Kind::Dir {
        let dev = tree.dev(id);
        if dev.is_some() && dev != parent_dev {
            write!(out, ",\"dev\":{}", dev.unwrap_or(0))?;
        }
    } else if tree.nlink(id) > 1
        && let Some(ino) = own.ino
    {
        // ncdu's format needs an inode only to group hard links, and the tree keeps the
        // inode of every linked entry.
        write!(
            out,
            ",\"ino\":{},\"hlnkc\":true,\"nlink\":{}",
            ino,
            tree.nlink(id)
        )?;
    }
    if matches!(kind, Kind::Symlink | Kind::Other) {
        out.write_all(b",\"notreg\":true")?;
    }
    if n.flags & flags::READ_ERROR != 0 {
        out.write_all(b",\"read_error\":true")?;
    }
    if n.flags & flags::EXCLUDED != 0 {
        out.write_all(b",\"excluded\":\"pattern\"")?;
    } else if n.flags & flags::OTHER_FS != 0 {
        out.write_all(b",\"excluded\":\"otherfs\"")?;
    }
    if own.mtime.sec != 0 {
        write!(out, ",\"mtime\":{}", own.mtime.sec)?;
    }
    out.write_all(b"}")
}

/// A JSON string of raw bytes: quotes, backslashes and control characters escaped, every other
/// byte (including invalid UTF-8) written as it is, as ncdu does.
pub fn write_json_bytes(bytes: &[u8], out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"\"")?;
    write_json_body(bytes, out)?;
    out.write_all(b"\"")
}

/// The inside of `write_json_bytes`' string.
fn write_json_body(bytes: &[u8], out: &mut impl Write) -> io::Result<()> {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            _ => None,
        };
        if esc.is_none() && b >= 0x20 && b != 0x7f {
            continue;
        }
        out.write_all(&bytes[start..i])?;
        match esc {
            Some(e) => out.write_all(e)?,
            None => write!(out, "\\u{b:04x}")?,
        }
        start = i + 1;
    }
    out.write_all(&bytes[start..])
}

/// A strictly valid JSON (UTF-8) string: invalid bytes become U+FFFD. For reports meant for
/// scripts, not for the ncdu format. A report is often read on a terminal too: C1 controls and
/// invisible characters (`crate::path::is_invisible`: bidi controls, zero-width characters,
/// tags) are written as `\u` escapes, the same string to a JSON reader, never raw.
pub fn write_json_string_lossy(bytes: &[u8], out: &mut impl Write) -> io::Result<()> {
    let s = String::from_utf8_lossy(bytes);
    out.write_all(b"\"")?;
    let mut plain = 0;
    for (i, c) in s.char_indices() {
        if !((c.is_control() && !c.is_ascii()) || crate::path::is_invisible(c)) {
            continue;
        }
        write_json_body(&s.as_bytes()[plain..i], out)?;
        for unit in c.encode_utf16(&mut [0; 2]) {
            write!(out, "\\u{unit:04x}")?;
        }
        plain = i + c.len_utf8();
    }
    write_json_body(&s.as_bytes()[plain..], out)?;
    out.write_all(b"\"")
}

/// Why an export target could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{what} {}: {source}", crate::path::display_name(path.as_os_str().as_encoded_bytes()))]
pub struct OutputError {
    what: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

impl OutputError {
    fn new(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> OutputError {
        let path = path.to_path_buf();
        move |source| OutputError { what, path, source }
    }

    /// The I/O error underneath (a closed pipe is not worth a message).
    #[must_use]
    pub fn io(&self) -> &io::Error {
        &self.source
    }
}

/// The temp file an export is writing, if any: a signal handler removes it before the process
/// dies, and `Output::commit` holds the lock while renaming, so the two never cross.
pub type TempSlot = Arc<Mutex<Option<PathBuf>>>;

/// An export target, open for writing.
pub struct Output {
    out: BufWriter<File>,
    dest: PathBuf,
    /// Written beside `dest` and renamed over it on `commit`; `None` when written in place.
    temp: Option<Temp>,
}

struct Temp {
    /// Removes the file when dropped; taken (kept) once renamed into place.
    file: Option<tempfile::TempPath>,
    slot: TempSlot,
    /// The mode (and owner) of the regular file being replaced, which the new one keeps.
    keep: Option<std::fs::Metadata>,
}

impl Drop for Temp {
    fn drop(&mut self) {
        // Uncommitted: the temp file goes, then its slot entry (in this order, so a signal in
        // between still finds a path to remove).
        drop(self.file.take());
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

/// Symlinks are followed (a dangling one names the file to create, as the shell's `>` does).
const MAX_LINKS: usize = 40;

impl Output {
    /// Opens `target` for an export: an existing non-regular file (a character device, a FIFO,
    /// a socket) is opened and written directly, as ncdu does; a regular file or a new path is
    /// written to a temp file beside it, registered in `slot` until `commit` renames it.
    pub fn create(target: &Path, slot: &TempSlot) -> Result<Output, OutputError> {
        if let Some(fd) = std_stream(target) {
            // `/dev/stdout` is the stream the shell set up (`>>` appends), not a path to open.
            let file = fd
                .map(File::from)
                .map_err(OutputError::new("cannot open", target))?;
            return Ok(Output::in_place(file, target));
        }
        // The kernel follows the links (procfs ones included) to see what the target is.
        match std::fs::metadata(target) {
            Ok(m) if !m.is_file() => {
                let file = OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NOCTTY)
                    .open(target)
                    .map_err(OutputError::new("cannot open", target))?;
                // Replaced by a regular file since the check: never write one in place.
                let now = file
                    .metadata()
                    .map_err(OutputError::new("cannot open", target))?;
                if now.is_file() {
                    return Output::replacing(resolve_links(target)?, Some(now), slot);
                }
                Ok(Output::in_place(file, target))
            }
            Ok(m) => Output::replacing(resolve_links(target)?, Some(m), slot),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Output::replacing(resolve_links(target)?, None, slot)
            }
            Err(e) => Err(OutputError::new("cannot write", target)(e)),
        }
    }

    fn in_place(file: File, target: &Path) -> Output {
        Output {
            out: BufWriter::new(file),
            dest: target.to_path_buf(),
            temp: None,
        }
    }

    fn replacing(
        dest: PathBuf,
        keep: Option<std::fs::Metadata>,
        slot: &TempSlot,
    ) -> Result<Output, OutputError> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        // A new file gets 0666 less the umask, as any file the user creates; one that replaces
        // an existing file starts private and takes that file's mode at the end.
        let mode = if keep.is_some() { 0o600 } else { 0o666 };
        let mut slot_guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .permissions(std::fs::Permissions::from_mode(mode))
            .tempfile_in(dir)
            .map_err(OutputError::new("cannot create a file in", dir))?;
        let (file, path) = tmp.into_parts();
        *slot_guard = Some(path.to_path_buf());
        drop(slot_guard);
        Ok(Output {
            out: BufWriter::new(file),
            dest,
            temp: Some(Temp {
                file: Some(path),
                slot: Arc::clone(slot),
                keep,
            }),
        })
    }

    /// The (buffered) writer.
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        &mut self.out
    }

    /// The file written to (the target with its symlinks followed).
    #[must_use]
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Flushes; a temp file is synced, given its final mode and renamed over the target.
    pub fn commit(mut self) -> Result<(), OutputError> {
        let fail = |what| OutputError::new(what, &self.dest);
        self.out.flush().map_err(fail("cannot write"))?;
        let Some(mut temp) = self.temp.take() else {
            return Ok(());
        };
        let file = self.out.get_ref();
        if let Some(m) = &temp.keep {
            // Owner first (a chown clears set-id bits), best effort: only root may give a
            // file away, and a file we could not chown still gets the mode.
            let _ = std::os::unix::fs::fchown(file, Some(m.uid()), Some(m.gid()));
            file.set_permissions(std::fs::Permissions::from_mode(m.mode() & 0o7777))
                .map_err(fail("cannot write"))?;
        }
        file.sync_all().map_err(fail("cannot write"))?;
        let Some(path) = temp.file.take() else {
            return Ok(());
        };
        let slot = Arc::clone(&temp.slot);
        let mut held = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = std::fs::rename(&path, &self.dest) {
            drop(path); // removed
            held.take();
            return Err(fail("cannot write")(e));
        }
        held.take();
        drop(held);
        // Renamed: nothing left to remove.
        let _ = path.keep();
        Ok(())
    }
}

/// `/dev/stdout`, `/dev/fd/1` and the like: a copy of the process's own stream, whatever it is.
fn std_stream(path: &Path) -> Option<io::Result<std::os::fd::OwnedFd>> {
    use std::os::fd::AsFd;
    Some(match path.to_str()? {
        "/dev/stdout" | "/dev/fd/1" | "/proc/self/fd/1" => {
            io::stdout().as_fd().try_clone_to_owned()
        }
        "/dev/stderr" | "/dev/fd/2" | "/proc/self/fd/2" => {
            io::stderr().as_fd().try_clone_to_owned()
        }
        _ => return None,
    })
}

/// Follows `path` through symlinks to the file to write (which need not exist yet).
fn resolve_links(path: &Path) -> Result<PathBuf, OutputError> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p).map_err(OutputError::new("cannot read", &p))?;
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            Ok(_) => return Ok(p),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(p),
            Err(e) => return Err(OutputError::new("cannot write", &p)(e)),
        }
    }
    Err(OutputError::new("cannot write", path)(
        io::Error::from_raw_os_error(libc::ELOOP),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(b: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        write_json_bytes(b, &mut v).expect("write to a Vec");
        v
    }

    #[test]
    fn names_are_escaped_as_json_and_other_bytes_pass_through() {
        assert_eq!(esc(b"a\"b\\c"), b"\"a\\\"b\\\\c\"");
        assert_eq!(esc(b"new\nline\x01"), b"\"new\\nline\\u0001\"");
        assert_eq!(esc(b"caf\xe9"), b"\"caf\xe9\"");
    }

    #[test]
    fn a_report_string_never_carries_an_invisible_character_raw() {
        let lossy = |b: &[u8]| {
            let mut v = Vec::new();
            write_json_string_lossy(b, &mut v).expect("write to a Vec");
            String::from_utf8(v).expect("UTF-8")
        };
        let name = "a\u{202e}b\u{200b}\u{feff}\u{e0041}\u{9b}\"é\n";
        assert_eq!(
            lossy(name.as_bytes()),
            r#""a\u202eb\u200b\ufeff\udb40\udc41\u009b\"é\n""#
        );
        // The same string to a JSON reader.
        let back: String = serde_json::from_str(&lossy(name.as_bytes())).expect("JSON");
        assert_eq!(back, name);
        assert_eq!(lossy(b"caf\xe9"), "\"caf\u{fffd}\"");
    }
}
