//! Hard links: one charge per inode, moved when the charged name goes or the inode is
//! written through another name, and the groups rebuilt from a saved arena.

use super::*;

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
fn a_write_through_a_hard_link_counted_elsewhere_moves_the_one_charge() {
    // Regression: a size change through an `H` link changed nothing (its own charge is 0).
    let mut t = new_tree();
    let root = t.root();
    let da = t.add_child(root, b"a", &dir(0)).expect("a");
    let db = t.add_child(root, b"b", &dir(0)).expect("b");
    let lx = t.add_child(da, b"x", &link(42, 1000, 2)).expect("x");
    let ly = t.add_child(db, b"y", &link(42, 1000, 2)).expect("y");
    let (charged, dup) = if t.flags(lx) & flags::HARDLINK_DUP == 0 {
        (lx, ly)
    } else {
        (ly, lx)
    };
    assert!(t.update_in_place(dup, &link(42, 5000, 2)).expect("update"));
    assert_eq!(t.totals(root).apparent, 10 + 5000, "one charge, new size");
    assert_eq!(
        t.own(charged).apparent,
        5000,
        "every name sees the inode's size"
    );
    assert_totals_consistent(&t);
    // The charged name goes: the survivor carries the current size, not a stale one.
    t.remove(charged);
    assert_eq!(t.totals(root).apparent, 10 + 5000);
    assert_totals_consistent(&t);
}

#[test]
fn a_new_link_with_a_newer_size_updates_its_group() {
    let mut t = new_tree();
    let root = t.root();
    t.add_child(root, b"x", &link(7, 100, 2)).expect("x");
    t.add_child(root, b"y", &link(7, 900, 2)).expect("y");
    assert_eq!(t.totals(root).apparent, 10 + 900);
    assert_totals_consistent(&t);
}

#[test]
fn a_name_the_tree_knew_first_keeps_the_charge_when_a_new_link_to_it_appears() {
    // Regression (issue 21): after `cp -al orig snap` the snapshot's new names were charged
    // (inserted first, as links), and each original, a plain file until its re-stat, joined
    // their groups as counted elsewhere: orig/ showed ~0 and snap/ the bytes.
    let mut t = new_tree();
    let root = t.root();
    let orig = t.add_child(root, b"orig", &dir(0)).expect("orig");
    let x = t.add_child(orig, b"x", &file(1000, 1000)).expect("x");
    let snap = t.add_child(root, b"snap", &dir(0)).expect("snap");
    t.track_changes();
    let y = t.add_child(snap, b"x", &link(42, 1000, 2)).expect("snap/x");
    assert!(t.update_in_place(x, &link(42, 1000, 2)).expect("update"));
    assert_eq!(
        t.flags(x) & flags::HARDLINK_DUP,
        0,
        "orig/x keeps the charge"
    );
    assert_ne!(
        t.flags(y) & flags::HARDLINK_DUP,
        0,
        "snap/x is counted elsewhere"
    );
    assert_eq!(t.totals(orig).apparent, 1000);
    assert_eq!(t.totals(snap).apparent, 0);
    assert_eq!(t.totals(root).apparent, 10 + 1000);
    assert_totals_consistent(&t);
    // The group's size follows the newest stat, through the name that now carries it.
    assert!(t.update_in_place(y, &link(42, 3000, 2)).expect("write"));
    assert_eq!(t.totals(orig).apparent, 3000);
    assert_eq!(t.totals(snap).apparent, 0);
    assert_totals_consistent(&t);
    // The original goes: the snapshot's name takes the charge.
    t.remove(orig);
    assert_eq!(t.flags(y) & flags::HARDLINK_DUP, 0);
    assert_eq!(t.totals(snap).apparent, 3000);
    assert_totals_consistent(&t);
}
