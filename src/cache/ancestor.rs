//! A root with no cache of its own opened from the cache of a directory above it
//! (`dtui /usr/share/doc` after `dtui /usr`): the ancestor's tree is loaded as its own start
//! would load it, the root's subtree copied out into a tree of its own, and the session runs
//! on that, caught up like any cached start, without a second cache. Nothing is written back:
//! the ancestor's next start catches up with whatever changed meanwhile, its subtree included.
//!
//! An ancestor serves only if nothing else uses its cache (its lock is taken while it is read,
//! so no writer is in the middle of it), its tree was kept with the same scan options
//! (`super::options_key`: excludes, `-x`, `--exclude-caches`, `--exclude-kernfs`; a cache
//! from before they were recorded does not serve), and it holds the root as a directory it
//! read whole: the same device and inode, not excluded, not on another filesystem (with `-x`
//! its subtree was never read), not unreadable.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::private::{Use, check_file};
use super::{CachePaths, check, load_tree_at, lock_cache};
use crate::fs::RootDir;
use crate::store::Store;
use crate::tree::{Arena, Kind, NodeId, RowChunk, Tree, flags};

/// The root's tree, taken from the cache of `ancestor`.
pub(super) struct FromAncestor {
    pub tree: Tree,
    pub ancestor: PathBuf,
    pub generation: u64,
}

/// The nearest ancestor of `root` whose cache in `dir` can serve it (see the module's
/// comment), and the root's tree from it; None if none can (the root then gets a cache of
/// its own, as before).
pub(super) fn open(dir: &Path, root: &RootDir, options: u64) -> Option<FromAncestor> {
    root.path.ancestors().skip(1).find_map(|above| {
        let paths = CachePaths::new(dir, above);
        // Only a regular file of ours is a cache (never a symlink, a FIFO).
        if !matches!(check_file(&paths.db, Use::Inspect), Ok(Some(_))) {
            return None;
        }
        from(&paths, above, root, options)
    })
}

/// The root's tree from the cache `paths` of `above`, if it can serve.
fn from(paths: &CachePaths, above: &Path, root: &RootDir, options: u64) -> Option<FromAncestor> {
    // In use by another dtui: its files may be mid-write, and its session will save a newer
    // tree anyway. Held until the tree is read.
    let lock = lock_cache(paths).ok()?;
    for f in paths.all_files() {
        if f != paths.lock && check_file(&f, Use::Read).is_err() {
            return None;
        }
    }
    let store = Store::open_read_only(&paths.db).ok()?;
    let meta = store.meta().ok()?;
    if meta.root != above.as_os_str().as_bytes() || store.options_key().ok()? != Some(options) {
        return None;
    }
    let generation = meta.generation?;
    let (whole, _) = load_tree_at(paths, &store, above, generation, meta.epoch).ok()?;
    drop(store);
    // A use of that cache, for the global budget's order (`manage::enforce_total`).
    let now = nix::sys::time::TimeSpec::UTIME_NOW;
    let _ = nix::sys::stat::futimens(&*lock, &now, &now);
    drop(lock);
    let at = whole.lookup(&root.path)?;
    let n = whole.node(at);
    let info = root.info();
    let unread = flags::READ_ERROR | flags::EXCLUDED | flags::OTHER_FS;
    if whole.kind(at) != Kind::Dir
        || n.flags & unread != 0
        || whole.ino(at) != Some(info.ino)
        || whole.dev(at) != Some(info.dev)
    {
        return None;
    }
    let tree = subtree(&whole, at, &root.path, generation)?;
    drop(whole);
    root.matches(&tree).then(|| FromAncestor {
        tree,
        ancestor: above.to_path_buf(),
        generation,
    })
}

/// The subtree of `at` as a tree of its own rooted at `path`: its rows renumbered from 0 in
/// walk order, rebuilt as a cache's rows are (`Tree::from_rows`: each hard-link group charged
/// once among the members it holds, whichever of them was charged above), then its totals
/// recomputed (a group whose charged name was outside the subtree is charged inside now).
fn subtree(whole: &Tree, at: NodeId, path: &Path, generation: u64) -> Option<Tree> {
    subtree_mapped(whole, at, path, generation).map(|(tree, _)| tree)
}

/// `subtree`, with each new node's id in `whole` (indexed by the new id): how an attached
/// client of a directory below its owner's root reads the owner's messages (`attach`).
pub(crate) fn subtree_mapped(
    whole: &Tree,
    at: NodeId,
    path: &Path,
    generation: u64,
) -> Option<(Tree, Vec<NodeId>)> {
    let mut rows = RowChunk::with_capacity(64);
    let mut old = Vec::new();
    // (node, its new id, its parent's new id)
    let mut stack = vec![(at, u32::MAX)];
    let mut next = 0u32;
    while let Some((id, parent)) = stack.pop() {
        let mut row = whole.row(id);
        row.id = next;
        row.parent = parent;
        // A root is named by its path, which the tree's header holds.
        let name: &[u8] = if id == at { b"" } else { whole.name(id) };
        rows.push(row, name);
        old.push(id);
        stack.extend(whole.children(id).map(|c| (c, next)));
        next = next.checked_add(1)?;
    }
    let mut tree = Tree::from_rows(Arena::create_temp().ok()?, path, &rows, generation).ok()?;
    check::recompute_totals(&mut tree);
    Some((tree, old))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Row;

    fn row(id: u32, parent: u32, kind: Kind, flags: u8, ino: u64, nlink: u32, size: u64) -> Row {
        let dir = kind == Kind::Dir;
        Row {
            id,
            parent,
            kind: kind as u8,
            flags,
            ino,
            dev: if dir { 7 } else { 0 },
            aux: if dir { 0 } else { nlink },
            mtime: 1_700_000_000,
            mtime_nsec: 0,
            ctime: 0,
            ctime_nsec: 0,
            dflags: 0,
            apparent: size,
            disk: size,
            total_apparent: 0,
            total_disk: 0,
            items: 0,
            errno: 0,
        }
    }

    #[test]
    fn a_hard_link_charged_outside_the_subtree_is_charged_inside_it() {
        // /p: `out` (charged) and sub/`in` (the same inode, counted elsewhere), sub/`own`.
        let mut rows = RowChunk::with_capacity(5);
        rows.push(row(0, u32::MAX, Kind::Dir, 0, 10, 1, 4096), b"");
        rows.push(row(1, 0, Kind::File, 0, 77, 2, 8192), b"out");
        rows.push(row(2, 0, Kind::Dir, 0, 11, 1, 4096), b"sub");
        rows.push(
            row(3, 2, Kind::File, flags::HARDLINK_DUP, 77, 2, 8192),
            b"in",
        );
        rows.push(row(4, 2, Kind::File, 0, 0, 1, 512), b"own");
        let arena = Arena::create_temp().expect("arena");
        let mut whole = Tree::from_rows(arena, Path::new("/p"), &rows, 3).expect("tree");
        check::recompute_totals(&mut whole);
        let sub = whole.lookup(Path::new("/p/sub")).expect("sub");
        assert_eq!(whole.totals(sub).disk, 4096 + 512, "charged outside");

        let t = subtree(&whole, sub, Path::new("/p/sub"), 3).expect("subtree");
        assert_eq!(t.root_path(), Path::new("/p/sub"));
        assert_eq!(t.name(t.root()), b"/p/sub");
        let totals = t.totals(t.root());
        assert_eq!(
            (totals.disk, totals.items),
            (4096 + 8192 + 512, 2),
            "the link is charged inside now"
        );
        let inside = t.lookup(Path::new("/p/sub/in")).expect("in");
        assert_eq!(t.node(inside).flags & flags::HARDLINK_DUP, 0);
        assert_eq!(t.ino(t.root()), Some(11));
    }
}
