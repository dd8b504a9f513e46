//! A rename the backend reported with both names: the node moves with its subtree when the
//! destination is the same inode; later changes named by a moved directory's old path are
//! settled at its new one too.

use std::ffi::CString;
use std::os::fd::AsFd;

use super::{Applier, ChangeKind, ChangeLine, Outcome, Place};
use crate::fs::sys;
use crate::scan::ScanError;
use crate::tree::{self, Kind, flags};

impl Applier<'_> {
    /// A rename with both names: a move if the destination is the same inode as the node at
    /// the source; otherwise both names are settled like any change (later in the batch).
    /// Returns whether it moved.
    pub(super) fn rename(
        &self,
        from: &[u8],
        to: &[u8],
        out: &mut Outcome,
    ) -> Result<bool, ScanError> {
        let (Place::Known(from_dir, _, Some(id)), Place::Known(to_dir, to_name, existing)) =
            (self.place(from), self.place(to))
        else {
            return Ok(false);
        };
        if to_name.is_empty() || existing == Some(id) {
            return Ok(false);
        }
        let Ok(c_to) = CString::new(to_name.clone()) else {
            return Ok(false);
        };
        // The destination's path must hold the tree's directory (not one a later rename of
        // this batch puts there).
        let Ok(fd) = self.open_dir(to_dir) else {
            return Ok(false);
        };
        let Ok(st) = sys::stat_at(fd.as_fd(), &c_to) else {
            return Ok(false);
        };
        let before = {
            let t = tree::read(self.lock);
            t.totals(t.root()).disk
        };
        {
            let mut t = tree::write(self.lock);
            if !t.is_live(id) || !t.is_live(to_dir) {
                return Ok(false);
            }
            // Where the tree keeps neither the inode number nor its fingerprint (a plain file
            // loaded from the cache), the same sizes and mtime stand for it: a different file
            // that matches them leaves the tree as the move would have.
            let o = t.own(id);
            let same_inode = match (o.ino, t.fingerprint(id)) {
                (Some(ino), _) => ino == st.ino,
                (None, Some(fp)) => fp == tree::fingerprint(st.dev, st.ino),
                (None, None) => {
                    (o.apparent, o.disk, o.mtime.sec) == (st.size, st.blocks * 512, st.mtime)
                }
            } && t.kind(id) == st.kind()
                && (t.kind(id) != Kind::Dir || t.dev(id) == Some(st.dev));
            if !same_inode || t.flags(id) & flags::NOT_CHARGED & !flags::HARDLINK_DUP != 0 {
                return Ok(false);
            }
            if let Some(old) = existing.filter(|&e| t.is_live(e)) {
                t.remove(old); // renamed over
            }
            if !t.move_node(id, to_dir, &to_name)? {
                return Ok(false);
            }
        }
        let _ = from_dir;
        self.refresh_own(from_dir);
        self.refresh_own(to_dir);
        let after = {
            let t = tree::read(self.lock);
            t.totals(t.root()).disk
        };
        out.lines.push(ChangeLine {
            kind: ChangeKind::Moved,
            path: self.rel(from),
            to: Some(self.rel(to)),
            disk: i128::from(after) - i128::from(before),
        });
        Ok(true)
    }
}

/// `path`, and where this batch's directory moves put it (moves applied in any order, as
/// often as they chain).
pub(super) fn moved_paths(path: &[u8], moves: &[(&[u8], &[u8])]) -> Vec<Vec<u8>> {
    let mut out = vec![path.to_vec()];
    let mut i = 0;
    while i < out.len() && out.len() <= moves.len() + 1 {
        for (from, to) in moves {
            if let Some(rest) = out[i].strip_prefix(*from)
                && rest.first() == Some(&b'/')
            {
                let mut p = to.to_vec();
                p.extend_from_slice(rest);
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        i += 1;
    }
    out
}
