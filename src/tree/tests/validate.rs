//! The start check: an arena whose checksums pass but whose links, free lists or records
//! are forged or damaged is refused, never panicked or looped on.

use super::*;

#[test]
fn a_mapped_arena_with_indexes_out_of_range_is_refused_not_panicked_on() {
    // A file whose checksums pass but whose contents are wrong must not panic later.
    let dir_ = tempfile::tempdir().expect("tempdir");
    let path = dir_.path().join("tree.arena");
    let mut t = new_tree();
    let root = t.root();
    let a = t.add_child(root, b"a", &dir(0)).expect("a");
    t.add_child(a, b"f", &file(1, 1)).expect("f");
    // A sibling cycle, then a parent out of range.
    let f = t.lookup(Path::new("/r/a/f")).expect("f");
    t.arena_mut().nodes_mut()[f.index()].next_sibling = f.0;
    t.save(&path).expect("save");
    let err = Tree::from_arena(Arena::open(&path).expect("open")).err();
    assert!(err.is_some(), "a cycle is refused");
    t.arena_mut().nodes_mut()[f.index()].next_sibling = u32::MAX;
    t.arena_mut().nodes_mut()[f.index()].parent = 999_999;
    t.save(&path).expect("save");
    assert!(Tree::from_arena(Arena::open(&path).expect("open")).is_err());
    t.arena_mut().nodes_mut()[f.index()].parent = a.0;
    t.save(&path).expect("save");
    assert!(Tree::from_arena(Arena::open(&path).expect("open")).is_ok());
}

#[test]
fn forged_child_lists_are_refused_and_reordered_valid_ones_accepted() {
    // Each forgery keeps every index in range, so only the structure can give it away.
    let dir_ = tempfile::tempdir().expect("tempdir");
    let path = dir_.path().join("tree.arena");
    let build = || {
        let mut t = new_tree();
        let root = t.root();
        let a = t.add_child(root, b"a", &dir(0)).expect("a");
        t.add_child(root, b"b", &dir(0)).expect("b");
        let x = t.add_child(a, b"x", &file(1, 1)).expect("x");
        let y = t.add_child(a, b"y", &file(1, 1)).expect("y");
        (t, a, x, y)
    };
    let loads = |t: &Tree| {
        t.save(&path).expect("save");
        Tree::from_arena(Arena::open(&path).expect("open"))
    };
    // x and y link to each other, in a ring no list reaches (every node still has one
    // incoming link, and the links run both ways, so only a walk finds it).
    let (mut t, a, x, y) = build();
    t.dir_rec_mut(a).expect("a dir").first_child = u32::MAX;
    t.arena_mut().nodes_mut()[x.index()].next_sibling = y.0;
    t.arena_mut().nodes_mut()[y.index()].next_sibling = x.0;
    assert!(loads(&t).is_err(), "a ring of siblings no list reaches");
    // y listed twice in a's list.
    let (mut t, _, x, y) = build();
    t.arena_mut().nodes_mut()[x.index()].next_sibling = y.0;
    assert!(loads(&t).is_err(), "a child listed twice");
    // x moved into the root's list while its parent stays a.
    let (mut t, _, x, y) = build();
    let root = t.root();
    t.arena_mut().nodes_mut()[y.index()].next_sibling = u32::MAX;
    let first = t.dir_rec_mut(root).expect("root dir").first_child;
    t.dir_rec_mut(root).expect("root dir").first_child = x.0;
    t.arena_mut().nodes_mut()[x.index()].next_sibling = first;
    assert!(loads(&t).is_err(), "a child in another directory's list");
    // The root given a sibling.
    let (mut t, _, x, _) = build();
    let root_slot = t.root().index();
    t.arena_mut().nodes_mut()[root_slot].next_sibling = x.0;
    assert!(loads(&t).is_err(), "the root with a sibling");
    // A list leading to a freed slot.
    let (mut t, a, x, y) = build();
    t.remove(x);
    t.arena_mut().nodes_mut()[y.index()].next_sibling = x.0;
    assert!(loads(&t).is_err(), "a list through a free slot");
    let _ = a;
    // Valid, with slots reused so the sibling links run both ways: accepted, and whole.
    let (mut t, a, x, _) = build();
    let root = t.root();
    t.remove(x);
    t.add_child(a, b"z", &file(5, 5)).expect("z");
    let old = t.lookup(Path::new("/r/b")).expect("b");
    t.remove(old);
    let reused = t.add_child(root, b"c", &dir(0)).expect("c");
    t.add_child(reused, b"w", &file(7, 7)).expect("w");
    let back = loads(&t).expect("a valid reordered tree loads");
    assert_eq!(back.totals(back.root()), t.totals(t.root()));
    assert!(back.lookup(Path::new("/r/c/w")).is_some());
    assert!(back.lookup(Path::new("/r/a/z")).is_some());
}

#[test]
fn a_saved_arena_passes_the_start_check_and_a_changed_byte_or_forged_link_fails_it() {
    let dir_ = tempfile::tempdir().expect("tempdir");
    let path = dir_.path().join("tree.arena");
    // Enough nodes for the check to split them between threads (on a machine with more than
    // one core), in many directories, so that lists and parents cross the split.
    let build = || {
        let mut t = new_tree();
        let root = t.root();
        let mut files = Vec::new();
        for d in 0..40u32 {
            let a = t
                .add_child(root, format!("d{d}").as_bytes(), &dir(0))
                .expect("d");
            for i in 0..1_000u32 {
                let f = t
                    .add_child(a, format!("f{i}").as_bytes(), &file(u64::from(i), 4096))
                    .expect("f");
                files.push(f);
            }
        }
        (t, files)
    };
    let (t, _) = build();
    t.save(&path).expect("save");
    let arena = Arena::open(&path).expect("open");
    assert!(arena.body_is_intact());
    assert!(Tree::check_arena(&arena).is_ok(), "intact and valid");
    drop(arena);
    // One byte of a size changed behind the checksum's back.
    let mut bytes = std::fs::read(&path).expect("read");
    let last = bytes.len() - 200;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).expect("write");
    let arena = Arena::open(&path).expect("open");
    assert!(
        matches!(Tree::check_arena(&arena), Err(None)),
        "the checksum"
    );
    // Forged with every checksum right, far apart in the node array.
    let forged = |f: &dyn Fn(&mut Tree, &[NodeId])| {
        let (mut t, files) = build();
        f(&mut t, &files);
        t.save(&path).expect("save");
        let arena = Arena::open(&path).expect("open");
        Tree::check_arena(&arena).err().flatten()
    };
    // A late node whose parent is an early file.
    let why = forged(&|t, files| {
        let (early, late) = (files[10], files[files.len() - 10]);
        t.arena_mut().nodes_mut()[late.index()].parent = early.0;
    });
    assert!(why.is_some(), "a file as a parent");
    // An early node's sibling link to a late node that its own list already holds.
    let why = forged(&|t, files| {
        let (early, late) = (files[10], files[files.len() - 10]);
        t.arena_mut().nodes_mut()[early.index()].next_sibling = late.0;
    });
    assert!(
        why.is_some(),
        "a node listed twice, the two links in different halves"
    );
}

/// A tree with both free lists in use: a freed file and a freed directory.
fn tree_with_free_slots() -> (Tree, NodeId, NodeId) {
    let mut t = new_tree();
    let root = t.root();
    let a = t.add_child(root, b"a", &dir(0)).expect("a");
    let b = t.add_child(root, b"b", &dir(0)).expect("b");
    t.add_child(a, b"x", &file(1, 1)).expect("x");
    let gone = t.add_child(a, b"gone", &file(1, 1)).expect("gone");
    let gone_dir = t.add_child(root, b"gone-dir", &dir(0)).expect("gone-dir");
    let gone2 = t.add_child(gone_dir, b"gone2", &file(1, 1)).expect("gone2");
    t.remove(gone);
    t.remove(gone_dir);
    let _ = gone2;
    (t, a, b)
}

#[test]
fn forged_free_lists_that_reach_live_slots_or_loop_are_refused() {
    // Checksums all right: an allocation from such a list would overwrite a live node or a
    // live directory's record (the root overwritten by its own new child made every walk
    // up from it loop forever).
    let dir_ = tempfile::tempdir().expect("tempdir");
    let path = dir_.path().join("tree.arena");
    let loads = |t: &Tree| {
        t.save(&path).expect("save");
        let arena = Arena::open(&path).expect("open");
        let checked = Tree::check_arena(&arena).err();
        let plain = Tree::from_arena(arena).err();
        assert_eq!(checked.is_some(), plain.is_some(), "both checks agree");
        plain.is_none()
    };
    let (t, ..) = tree_with_free_slots();
    assert!(loads(&t), "the unforged tree loads");
    let free_nodes = |t: &Tree| {
        let h = t.arena.header();
        let mut out = Vec::new();
        let mut c = h.free_node;
        while c != u32::MAX {
            out.push(c);
            c = t.arena.nodes()[c as usize].next_sibling;
        }
        out
    };
    // The free list's head is the root.
    let (mut t, ..) = tree_with_free_slots();
    t.arena_mut().header_mut().free_node = t.root().0;
    assert!(!loads(&t), "a free list starting at the root");
    // A free slot's link to a live file.
    let (mut t, a, _) = tree_with_free_slots();
    let x = t.children(a).next().expect("x");
    let last = *free_nodes(&t).last().expect("free slots");
    t.arena_mut().nodes_mut()[last as usize].next_sibling = x.0;
    assert!(!loads(&t), "a free list leading to a live file");
    // A ring of free slots.
    let (mut t, ..) = tree_with_free_slots();
    let free = free_nodes(&t);
    assert!(free.len() >= 2, "{free:?}");
    t.arena_mut().nodes_mut()[free[free.len() - 1] as usize].next_sibling = free[0];
    assert!(!loads(&t), "a ring of free slots");
    // The free directory records: the head is a live directory's record.
    let (mut t, a, _) = tree_with_free_slots();
    let rec = t.node(a).aux;
    t.arena_mut().header_mut().free_dir = rec;
    assert!(
        !loads(&t),
        "a free record list starting at a live directory's"
    );
    // A free record linking to itself.
    let (mut t, ..) = tree_with_free_slots();
    let head = t.arena.header().free_dir;
    assert_ne!(head, u32::MAX);
    t.arena_mut().dirs_mut()[head as usize].first_child = head;
    assert!(!loads(&t), "a ring of free records");
}

#[test]
fn two_directories_sharing_one_record_are_refused() {
    // Both empty, so no child list gives it away: a child added to one showed in both, and
    // removing one freed the other's record (and children) under it.
    let dir_ = tempfile::tempdir().expect("tempdir");
    let path = dir_.path().join("tree.arena");
    let mut t = new_tree();
    let root = t.root();
    let a = t.add_child(root, b"a", &dir(0)).expect("a");
    let b = t.add_child(root, b"b", &dir(0)).expect("b");
    let rec = t.node(a).aux;
    t.arena_mut().nodes_mut()[b.index()].aux = rec;
    t.save(&path).expect("save");
    let arena = Arena::open(&path).expect("open");
    assert!(Tree::check_arena(&arena).is_err(), "the start check");
    assert!(Tree::from_arena(arena).is_err(), "the plain check");
}

#[test]
fn a_preview_is_the_root_listing_of_a_valid_image_and_refuses_a_forged_one() {
    let dir_ = tempfile::tempdir().expect("tempdir");
    let path = dir_.path().join("tree.arena");
    let build = || {
        let mut t = new_tree();
        let root = t.root();
        let a = t.add_child(root, b"a", &dir(0)).expect("a");
        let b = t.add_child(root, b"b", &file(7, 3)).expect("b");
        let x = t.add_child(a, b"x", &file(1, 5)).expect("x");
        (t, a, b, x)
    };
    let preview = |t: &Tree| {
        t.save(&path).expect("save");
        Tree::preview(&Arena::open(&path).expect("open"))
    };
    // The root's listing, at the image's ids, with its totals; the list below cut.
    let (t, a, b, x) = build();
    let shown = preview(&t).expect("a preview");
    assert_eq!(shown.root(), t.root());
    let mut kids: Vec<_> = shown.children(shown.root()).collect();
    kids.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(kids, want);
    for id in [a, b] {
        assert_eq!(shown.name(id), t.name(id));
        assert_eq!(shown.totals(id), t.totals(id));
        assert_eq!(shown.node_ref(id), t.node_ref(id));
    }
    assert_eq!(shown.totals(shown.root()), t.totals(t.root()));
    assert_eq!(shown.children(a).count(), 0, "a's list is cut");
    assert_eq!(shown.lookup(Path::new("/r/a/x")), None);
    assert_eq!(shown.lookup(Path::new("/r/a")), Some(a));
    // Damage below the root's listing is the whole check's to find, not the preview's.
    let (mut t, ..) = build();
    t.arena_mut().nodes_mut()[x.index()].parent = 999_999;
    assert!(preview(&t).is_ok());
    // Forged at the root's listing: refused.
    let (mut t, ..) = build();
    // Both children point back to the first: whichever is last closes a ring.
    let first = t.dir_rec(t.root()).expect("root").first_child;
    t.arena_mut().nodes_mut()[b.index()].next_sibling = first;
    t.arena_mut().nodes_mut()[a.index()].next_sibling = first;
    assert!(preview(&t).is_err(), "a listing that loops");
    let (mut t, ..) = build();
    t.arena_mut().nodes_mut()[b.index()].parent = a.0;
    assert!(preview(&t).is_err(), "a child of another parent");
    let (mut t, ..) = build();
    t.arena_mut().nodes_mut()[b.index()].next_sibling = 999_999;
    assert!(preview(&t).is_err(), "a sibling out of range");
    let (mut t, ..) = build();
    t.arena_mut().nodes_mut()[b.index()].name_off = u32::MAX - 4;
    assert!(preview(&t).is_err(), "a name out of range");
    let (mut t, ..) = build();
    t.arena_mut().nodes_mut()[a.index()].aux = 999_999;
    assert!(preview(&t).is_err(), "a directory record out of range");
    let (mut t, ..) = build();
    let root_rec = t.node(t.root()).aux;
    t.arena_mut().nodes_mut()[a.index()].aux = root_rec;
    assert!(preview(&t).is_err(), "the root's record shared");
    let (mut t, ..) = build();
    t.arena_mut().nodes_mut()[b.index()].flags |= flags::HARDLINK_DUP;
    assert!(preview(&t).is_err(), "counted elsewhere, no hard link");
    let (mut t, ..) = build();
    let root = t.root();
    t.arena_mut().nodes_mut()[root.index()].flags |= flags::FREE;
    assert!(preview(&t).is_err(), "a free root");
}

#[test]
fn nothing_a_preview_did_not_copy_looks_live_in_it() {
    // The preview's arena is zero outside what it copied, and a zero node has no FREE flag:
    // `is_live` says yes to every slot of the image. The first frame's footer shows the
    // owner's `progress.current` (the directory a scan or a verification is reading, from
    // the handshake's status) when `is_live` says so, through `path_of`, which follows the
    // blank node's parent 0: the root's path here; with the root at another slot than 0
    // (a forged image), a loop that never ends.
    let dir_ = tempfile::tempdir().expect("tempdir");
    let path = dir_.path().join("tree.arena");
    let mut t = new_tree();
    let root = t.root();
    let a = t.add_child(root, b"a", &dir(0)).expect("a");
    let x = t.add_child(a, b"x", &dir(0)).expect("x");
    t.save(&path).expect("save");
    let shown = Tree::preview(&Arena::open(&path).expect("open")).expect("a preview");
    assert!(shown.is_live(a), "a child of the root is copied");
    assert!(
        !shown.is_live(x),
        "x was not copied: it is not in the preview"
    );
    assert_eq!(shown.resolve(t.node_ref(x)), None);
}
