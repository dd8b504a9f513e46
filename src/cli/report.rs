//! What `dtui scan` prints: the summary, the largest entries, or the tree as JSON.

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use crate::export;
use crate::path::display_name;
use crate::reconcile::ReconcileStats;
use crate::tree::{Census, Kind, NodeId, Tree, flag_char};

pub(super) struct Report<'a> {
    /// Where the tree came from (the cache taken, or the export read).
    pub(super) origin: String,
    /// From the start to a complete tree.
    pub(super) elapsed: Duration,
    pub(super) catch_up: Option<&'a ReconcileStats>,
    pub(super) tree: &'a Tree,
    pub(super) census: Census,
    pub(super) top: usize,
    pub(super) apparent: bool,
}

impl Report<'_> {
    pub(super) fn size_of(&self, id: NodeId) -> u64 {
        let t = self.tree.totals(id);
        if self.apparent { t.apparent } else { t.disk }
    }

    /// The root's children, largest first.
    pub(super) fn largest(&self) -> Vec<NodeId> {
        let root = self.tree.root();
        let mut kids: Vec<NodeId> = self.tree.children(root).collect();
        kids.sort_by(|&a, &b| {
            self.size_of(b)
                .cmp(&self.size_of(a))
                .then_with(|| self.tree.name(a).cmp(self.tree.name(b)))
        });
        kids.truncate(self.top);
        kids
    }

    pub(super) fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        let root = self.tree.root();
        let t = self.tree.totals(root);
        let secs = self.elapsed.as_secs_f64();
        let errors = self.census.unreadable;
        writeln!(
            out,
            "{}",
            display_name(self.tree.root_path().as_os_str().as_bytes())
        )?;
        writeln!(
            out,
            "  disk usage     {} ({} bytes)",
            crate::format::size(t.disk),
            t.disk
        )?;
        writeln!(
            out,
            "  apparent size  {} ({} bytes)",
            crate::format::size(t.apparent),
            t.apparent
        )?;
        writeln!(out, "  items          {}", t.items)?;
        writeln!(out, "  directories    {}", self.census.dirs)?;
        if errors > 0 {
            writeln!(
                out,
                "  errors         {errors} (unreadable entries are flagged; totals are partial)"
            )?;
        } else {
            writeln!(out, "  errors         0")?;
        }
        writeln!(out, "  cache          {}", self.origin)?;
        if let Some(c) = &self.catch_up {
            writeln!(
                out,
                "  catch-up       {:.3} s: {} added, {} removed, {} resized, {} replaced \
                 ({} directories re-read, {} unchanged)",
                c.elapsed.as_secs_f64(),
                c.added,
                c.removed,
                c.resized,
                c.replaced,
                c.dirs_read,
                c.dirs_kept
            )?;
        }
        writeln!(
            out,
            "  elapsed        {secs:.3} s ({:.0} entries/s)",
            t.items as f64 / secs.max(1e-9)
        )?;
        let largest = self.largest();
        if !largest.is_empty() {
            writeln!(
                out,
                "\nLargest entries ({}):",
                if self.apparent {
                    "apparent size"
                } else {
                    "disk usage"
                }
            )?;
        }
        for id in largest {
            let name = display_name(self.tree.name(id));
            let slash = if self.tree.kind(id) == Kind::Dir {
                "/"
            } else {
                ""
            };
            writeln!(
                out,
                "  {} {:>10}  {name}{slash}",
                flag_char(self.tree.flags(id), self.tree.kind(id)),
                crate::format::column_size(self.size_of(id)),
            )?;
        }
        Ok(())
    }

    pub(super) fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        let root = self.tree.root();
        let t = self.tree.totals(root);
        out.write_all(b"{\"root\":")?;
        export::write_json_string_lossy(self.tree.name(root), out)?;
        write!(
            out,
            ",\"disk\":{},\"apparent\":{},\"items\":{},\"dirs\":{},\"errors\":{},\"elapsed_ms\":{:.3},\"arena_bytes\":{},\"cache\":",
            t.disk,
            t.apparent,
            t.items,
            self.census.dirs,
            self.census.unreadable,
            self.elapsed.as_secs_f64() * 1000.0,
            self.tree.arena().used_bytes(),
        )?;
        export::write_json_string_lossy(self.origin.as_bytes(), out)?;
        let m = self.tree.memory();
        write!(
            out,
            ",\"memory\":{{\"header\":{},\"nodes\":{},\"dirs\":{},\"rares\":{},\"names\":{},\"index\":{},\"index_all_wide\":{},\"name_cache\":{},\"links\":{},\"all_in\":{}}}",
            m.header,
            m.nodes,
            m.dirs,
            m.rares,
            m.names,
            m.index,
            m.index_all_wide,
            m.name_cache,
            m.links,
            m.all_in()
        )?;
        if let Some(c) = &self.catch_up {
            write!(
                out,
                ",\"catch_up\":{{\"added\":{},\"removed\":{},\"resized\":{},\"replaced\":{},\"dirs_read\":{},\"dirs_kept\":{},\"elapsed_ms\":{:.3}}}",
                c.added,
                c.removed,
                c.resized,
                c.replaced,
                c.dirs_read,
                c.dirs_kept,
                c.elapsed.as_secs_f64() * 1000.0
            )?;
        }
        out.write_all(b",\"largest\":[")?;
        for (i, id) in self.largest().into_iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            let tt = self.tree.totals(id);
            out.write_all(b"{\"name\":")?;
            export::write_json_string_lossy(self.tree.name(id), out)?;
            write!(
                out,
                ",\"kind\":\"{}\",\"disk\":{},\"apparent\":{},\"items\":{},\"flags\":\"{}\"}}",
                kind_name(self.tree.kind(id)),
                tt.disk,
                tt.apparent,
                tt.items,
                flag_char(self.tree.flags(id), self.tree.kind(id)).trim()
            )?;
        }
        out.write_all(b"]}\n")
    }
}

pub(super) fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::File => "file",
        Kind::Dir => "dir",
        Kind::Symlink => "symlink",
        Kind::Other => "other",
        Kind::Unknown => "unknown",
    }
}
