//! ncdu's JSON export format (`ncdu -o`), readable by `ncdu -f` and `gdu -f`.
//!
//! `[1, 2, {metadata}, [root-info, child, [dir-info, ...], ...]]`: every item carries its own
//! sizes (a reader sums them up), hard links carry `ino`/`hlnkc`/`nlink` so the reader counts
//! them once, names are written as their raw bytes (JSON-escaped where needed, invalid UTF-8
//! passed through as ncdu itself does). The writer walks the tree with an explicit stack, so any
//! depth works.

use std::io::{self, Write};
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
    let kind = tree.kind(id);
    out.write_all(b"{\"name\":")?;
    write_json_bytes(tree.name(id), out)?;
    if n.flags & (flags::EXCLUDED | flags::OTHER_FS) == 0 {
        if n.apparent != 0 {
            write!(out, ",\"asize\":{}", n.apparent)?;
        }
        if n.disk != 0 {
            write!(out, ",\"dsize\":{}", n.disk)?;
        }
    }
    if kind == Kind::Dir {
        let dev = tree.dev(id);
        if dev.is_some() && dev != parent_dev {
            write!(out, ",\"dev\":{}", dev.unwrap_or(0))?;
        }
    } else if tree.nlink(id) > 1 {
        write!(
            out,
            ",\"ino\":{},\"hlnkc\":true,\"nlink\":{}",
            n.ino,
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
    if n.mtime != 0 {
        write!(out, ",\"mtime\":{}", n.mtime)?;
    }
    out.write_all(b"}")
}

/// A JSON string of raw bytes: quotes, backslashes and control characters escaped, every other
/// byte (including invalid UTF-8) written as it is, as ncdu does.
pub fn write_json_bytes(bytes: &[u8], out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"\"")?;
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
    out.write_all(&bytes[start..])?;
    out.write_all(b"\"")
}

/// A strictly valid JSON (UTF-8) string: invalid bytes become U+FFFD. For reports meant for
/// scripts, not for the ncdu format.
pub fn write_json_string_lossy(bytes: &[u8], out: &mut impl Write) -> io::Result<()> {
    let s = String::from_utf8_lossy(bytes);
    write_json_bytes(s.as_bytes(), out)
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
}
