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
    let mut rows = RowChunk::with_capacity(64);
    // (node, its new id, its parent's new id)
    let mut stack = vec![(at, u32::MAX)];
    let mut next = 0u32;
    while let Some((id, parent)) = stack.pop() {
        let mut row = whole.row(id);
        row.id = next;
        row.parent = parent;
        // The root's name is its path, held by the tree (a fresh tree's root has no name).
        let name: &[u8] = if id == at { b"" } else { whole.name(id) };
        rows.push(row, name);
        stack.extend(whole.children(id).map(|c| (c, next)));
        next = next.checked_add(1)?;
    }
    let mut tree = Tree::from_rows(Arena::create_temp().ok()?, path, &rows, generation).ok()?;
    check::recompute_totals(&mut tree);
    Some(tree)
}
