//! The first screen of a tree not yet validated: the root and its children, checked and
//! copied, so that a browser attached to an owner draws its first frame while the owner's
//! image is validated (`validate`, O(tree)) on another thread.
//!
//! The copy is sparse: an arena of the image's layout in anonymous memory, zero but for the
//! root, its children, their directory and rare records and their names, each at the index
//! and offset it has in the image. Ids are the image's, so the validated image replaces the
//! copy as any image does, under ids the browser already holds. The copy is a closed tree: a
//! child directory's list is cut (its totals kept), and nothing else is reachable from the
//! root, so no access to it can read what was not checked.

use super::{Arena, Node, Tree, flags};

/// Below this many children the root's listing is copied; a root with more is not worth a
/// preview (its listing alone is a good part of the tree).
const MAX_CHILDREN: usize = 1 << 16;

impl Tree {
    /// The root of `image` and its children (see the module), checked as `validate` checks
    /// them; `Err` if they do not pass or the root has too many children to be worth it.
    pub fn preview(image: &Arena) -> Result<Tree, &'static str> {
        let h = *image.header();
        let (nodes, dirs, rares, names) =
            (image.nodes(), image.dirs(), image.rares(), image.names());
        let count = h.node_count;
        let root = h.root;
        if root >= count {
            return Err("root out of range");
        }
        let path = (h.root_path_off as usize, h.root_path_len as usize);
        if path
            .0
            .checked_add(path.1)
            .is_none_or(|end| end > names.len())
        {
            return Err("root path out of range");
        }
        let r = nodes[root as usize];
        if r.flags & flags::FREE != 0 || !r.is_dir() || r.parent != u32::MAX {
            return Err("the root is not a directory");
        }
        let mut copy = image.blank_like().map_err(|_| "no memory for a preview")?;
        let mut copied = vec![0u64; (count as usize).div_ceil(64)].into_boxed_slice();
        let mut mark = |id: u32| copied[id as usize / 64] |= 1 << (id % 64);
        mark(root);
        copy.copy_name(image, path.0, path.1);
        // Every node copied: its record, its rare record, its name (the root's may hold '/',
        // as `validate` allows).
        let take = |copy: &mut Arena, id: u32, n: &Node, root: bool| {
            if let Some(k) = n.rare_index() {
                let rare = rares.get(k as usize).ok_or("rare record out of range")?;
                copy.rares_mut()[k as usize] = *rare;
            }
            if n.flags & flags::HARDLINK_DUP != 0
                && (n.is_dir() || n.rare_index().is_none_or(|k| rares[k as usize].nlink < 2))
            {
                return Err("an entry counted elsewhere that is no hard link");
            }
            let (off, len) = (n.name_off as usize, usize::from(n.name_len));
            let name = names.get(off..off + len).ok_or("name out of range")?;
            if !root
                && (name.is_empty()
                    || name == b"."
                    || name == b".."
                    || name.iter().any(|&c| c == b'/' || c == 0))
            {
                return Err("a name that is not one plain component");
            }
            copy.copy_name(image, off, len);
            copy.nodes_mut()[id as usize] = *n;
            Ok(())
        };
        take(&mut copy, root, &r, true)?;
        let rec = *dirs
            .get(r.aux as usize)
            .ok_or("directory record out of range")?;
        copy.dirs_mut()[r.aux as usize] = rec;
        let mut next = rec.first_child;
        let mut seen = 0;
        while next != u32::MAX {
            seen += 1;
            if next >= count || seen > MAX_CHILDREN {
                return Err("the root's listing is out of range or too long");
            }
            let n = nodes[next as usize];
            if n.flags & flags::FREE != 0 || n.parent != root || next == root {
                return Err("a child of the root that is not one");
            }
            // A node met twice would make the list a cycle: its slot is taken already (a
            // copied node has a name; a blank one has none).
            if copy.nodes()[next as usize].name_len != 0 {
                return Err("the root's listing loops");
            }
            take(&mut copy, next, &n, false)?;
            mark(next);
            if n.is_dir() {
                let mut d = *dirs
                    .get(n.aux as usize)
                    .ok_or("directory record out of range")?;
                // A copied child's record has its list cut; the root's is the root's.
                if n.aux == r.aux || copy.dirs()[n.aux as usize].first_child == u32::MAX {
                    return Err("a directory record used twice");
                }
                // The list below is not copied: cut, the totals kept.
                d.first_child = u32::MAX;
                copy.dirs_mut()[n.aux as usize] = d;
            }
            next = n.next_sibling;
        }
        let mut tree = Tree::bare(copy, false);
        tree.copied = Some(copied);
        Ok(tree)
    }
}
