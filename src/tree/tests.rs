use super::*;

fn dir(size: u64) -> EntryInfo {
    EntryInfo {
        kind: Kind::Dir,
        flags: 0,
        ino: 1,
        dev: 7,
        nlink: 2,
        mtime: 100,
        mtime_nsec: 0,
        apparent: size,
        disk: size,
        errno: 0,
    }
}

fn file(apparent: u64, disk: u64) -> EntryInfo {
    EntryInfo {
        kind: Kind::File,
        flags: 0,
        ino: 0,
        dev: 7,
        nlink: 1,
        mtime: 100,
        mtime_nsec: 0,
        apparent,
        disk,
        errno: 0,
    }
}

fn link(ino: u64, size: u64, nlink: u32) -> EntryInfo {
    EntryInfo {
        ino,
        nlink,
        ..file(size, size)
    }
}

fn new_tree() -> Tree {
    Tree::create(
        Arena::create_temp().expect("arena"),
        Path::new("/r"),
        &dir(10),
    )
    .expect("tree")
}

#[test]
fn sizes_bubble_up_to_the_root() {
    let mut t = new_tree();
    let root = t.root();
    let a = t.add_child(root, b"a", &dir(4)).expect("a");
    let b = t.add_child(a, b"b", &dir(4)).expect("b");
    t.add_child(b, b"f", &file(100, 4096)).expect("f");
    assert_eq!(
        t.totals(root),
        Totals {
            apparent: 118,
            disk: 4096 + 18,
            items: 3
        }
    );
    assert_eq!(t.totals(a).items, 2);
    let f = t.lookup(Path::new("/r/a/b/f")).expect("lookup");
    t.set_own(f, 50, 0, crate::tree::Time { sec: 5, nsec: 0 });
    assert_eq!(t.totals(root).apparent, 68);
    assert_eq!(t.totals(b).disk, 4);
    assert_eq!(t.path_of(f), PathBuf::from("/r/a/b/f"));
    assert_eq!(t.depth(f), 3);
}

#[test]
fn removing_a_subtree_subtracts_it_and_recycles_slots() {
    let mut t = new_tree();
    let root = t.root();
    let a = t.add_child(root, b"a", &dir(4)).expect("a");
    for i in 0..10u8 {
        t.add_child(a, &[b'f', i], &file(10, 10)).expect("f");
    }
    t.add_child(root, b"keep", &file(1, 1)).expect("keep");
    assert_eq!(t.len(), 13);
    let before_gen = t.node(a).generation;
    t.remove(a);
    assert_eq!(t.len(), 2);
    assert_eq!(t.totals(root).apparent, 11);
    assert_eq!(t.totals(root).items, 1);
    assert!(!t.is_live(a));
    assert_ne!(t.node(a).generation, before_gen);
    let nodes_before = t.arena().header().node_count;
    let again = t.add_child(root, b"again", &dir(4)).expect("again");
    assert_eq!(
        t.arena().header().node_count,
        nodes_before,
        "a freed slot is reused"
    );
    assert!(t.is_live(again));
    assert!(t.lookup(Path::new("/r/a")).is_none());
    assert_eq!(
        t.lookup(Path::new("/r/again")),
        Some(again),
        "lookup finds the new entry"
    );
}

#[test]
fn hard_links_count_once_and_the_charge_moves_when_the_counted_link_goes() {
    let mut t = new_tree();
    let root = t.root();
    let a = t.add_child(root, b"a", &dir(0)).expect("a");
    let b = t.add_child(root, b"b", &dir(0)).expect("b");
    let first = t.add_child(a, b"x", &link(42, 1000, 2)).expect("x");
    let second = t.add_child(b, b"y", &link(42, 1000, 2)).expect("y");
    assert_eq!(t.totals(root).apparent, 10 + 1000);
    assert_eq!(t.flags(first) & flags::HARDLINK_DUP, 0);
    assert_ne!(t.flags(second) & flags::HARDLINK_DUP, 0);
    assert_eq!(t.totals(b).apparent, 0);
    t.remove(first);
    assert_eq!(t.flags(second) & flags::HARDLINK_DUP, 0);
    assert_eq!(t.totals(b).apparent, 1000);
    assert_eq!(t.totals(root).apparent, 10 + 1000);
    t.remove(second);
    assert_eq!(t.totals(root).apparent, 10);
}

#[test]
fn errors_mark_every_ancestor_and_clear_when_their_subtree_goes() {
    let mut t = new_tree();
    let root = t.root();
    let a = t.add_child(root, b"a", &dir(0)).expect("a");
    let b = t.add_child(a, b"b", &dir(0)).expect("b");
    t.set_read_error(b, 13);
    assert_eq!(t.errno(b), 13);
    assert_ne!(t.flags(a) & flags::ERROR_BELOW, 0);
    assert_ne!(t.flags(root) & flags::ERROR_BELOW, 0);
    t.remove(b);
    assert_eq!(t.flags(a) & flags::ERROR_BELOW, 0);
    assert_eq!(t.flags(root) & flags::ERROR_BELOW, 0);
}

#[test]
fn excluded_entries_are_listed_but_not_charged() {
    let mut t = new_tree();
    let root = t.root();
    let ex = EntryInfo {
        flags: flags::EXCLUDED,
        ..file(500, 500)
    };
    t.add_child(root, b"skip", &ex).expect("skip");
    assert_eq!(t.totals(root).apparent, 10);
    assert_eq!(t.totals(root).items, 1);
}

#[test]
fn names_are_raw_bytes() {
    let mut t = new_tree();
    let root = t.root();
    let name = b"caf\xe9\n\xff";
    let id = t.add_child(root, name, &file(1, 1)).expect("odd name");
    assert_eq!(t.name(id), name);
    assert_eq!(
        t.lookup(&crate::path::join_bytes(Path::new("/r"), name)),
        Some(id)
    );
    assert!(t.add_child(root, &[b'x'; 256], &file(1, 1)).is_err());
}

#[test]
fn a_synced_arena_reopens_with_the_same_tree_and_link_groups() {
    let dir_ = tempfile::tempdir().expect("tempdir");
    let path = dir_.path().join("tree.arena");
    {
        let mut t = Tree::create(
            Arena::create_temp().expect("arena"),
            Path::new("/r"),
            &dir(10),
        )
        .expect("tree");
        let root = t.root();
        t.add_child(root, b"x", &link(9, 100, 2)).expect("x");
        t.add_child(root, b"y", &link(9, 100, 2)).expect("y");
        t.bump_generation();
        t.save(&path).expect("save");
    }
    let mut t = Tree::from_arena(Arena::open(&path).expect("open")).expect("valid");
    assert_eq!(t.generation(), 1);
    assert_eq!(t.totals(t.root()).apparent, 110);
    let x = t.lookup(Path::new("/r/x")).expect("x");
    let y = t.lookup(Path::new("/r/y")).expect("y");
    let counted = if t.flags(x) & flags::HARDLINK_DUP == 0 {
        x
    } else {
        y
    };
    t.remove(counted);
    assert_eq!(
        t.totals(t.root()).apparent,
        110,
        "the charge moved to the other link"
    );
}

#[test]
fn removing_a_directory_moves_the_charge_of_a_hard_link_inside_it() {
    // Regression: the link's group key was computed after its parent directory was freed.
    let mut t = new_tree();
    let root = t.root();
    let a = t.add_child(root, b"a", &dir(0)).expect("a");
    let b = t.add_child(root, b"b", &dir(0)).expect("b");
    t.add_child(a, b"x", &link(42, 1000, 2)).expect("x");
    let survivor = t.add_child(b, b"y", &link(42, 1000, 2)).expect("y");
    t.remove(a);
    assert_eq!(
        t.flags(survivor) & flags::HARDLINK_DUP,
        0,
        "y now carries the charge"
    );
    assert_eq!(t.totals(root).apparent, 10 + 1000);
    let newcomer = t.add_child(root, b"z", &link(42, 1000, 2)).expect("z");
    assert_ne!(
        t.flags(newcomer) & flags::HARDLINK_DUP,
        0,
        "a new link joins y's group"
    );
    assert_eq!(t.totals(root).apparent, 10 + 1000);
}

#[test]
fn a_directory_readable_again_clears_the_error_below_its_ancestors() {
    let mut t = new_tree();
    let root = t.root();
    let a = t.add_child(root, b"a", &dir(0)).expect("a");
    let b = t.add_child(a, b"b", &dir(0)).expect("b");
    t.set_read_error(b, 13);
    t.clear_read_error(b);
    assert_eq!(t.flags(a) & flags::ERROR_BELOW, 0);
    assert_eq!(t.flags(root) & flags::ERROR_BELOW, 0);
}

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
