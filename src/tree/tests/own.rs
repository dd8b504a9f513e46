//! Entries whose own attributes do not fit a plain node (rare records: 4 GiB and more, disk
//! usage that is not the size rounded up, times outside 1970..2106, hard links, read
//! errors) keep them exactly, in memory, saved and mapped back, and rebuilt from rows.

use super::*;

fn dated(e: EntryInfo, sec: i64, nsec: u32) -> EntryInfo {
    EntryInfo {
        mtime: sec,
        mtime_nsec: nsec,
        ..e
    }
}

fn cases() -> Vec<(&'static [u8], EntryInfo)> {
    vec![
        (b"sparse-5g", file(5 << 30, 4096)),
        (b"more-blocks-than-bytes", file(10, 1000 * 512)),
        (b"not-whole-blocks", file(10, 1000)),
        (b"two-tib-of-blocks", file(1, (1 << 32) * 512 + 512)),
        (b"before-1970", dated(file(1, 512), -86_400, 5)),
        (b"after-2106", dated(file(1, 512), 1 << 33, 0)),
        (b"link-a", link(77, 3000, 2)),
        (b"link-b", link(77, 3000, 2)),
        (
            b"unreadable",
            EntryInfo::bare(Kind::File, flags::READ_ERROR, 13),
        ),
        (
            b"plain",
            dated(
                EntryInfo {
                    ino: 5,
                    ..file(100, 4096)
                },
                1_700_000_000,
                999,
            ),
        ),
        (b"dir-before-1970", dated(dir(4096), -5, 7)),
        (b"dir-after-2262", dated(dir(4096), 1 << 40, 3)),
        (b"dir-of-5g", dir(5 << 30)),
    ]
}

/// What the tree keeps of an entry (a plain file: no inode, whole seconds).
fn kept(e: &EntryInfo) -> Own {
    if e.kind == Kind::Dir {
        Own {
            nlink: 1,
            ino: Some(e.ino),
            ..e.own()
        }
    } else {
        e.own().stored()
    }
}

fn build() -> Tree {
    let mut t = new_tree();
    let root = t.root();
    for (name, e) in cases() {
        t.add_child(root, name, &e).expect("add");
    }
    t
}

fn check(t: &Tree, how: &str) {
    t.validate().expect("valid");
    let mut apparent = 10u64;
    for (name, e) in cases() {
        let id = t.child_by_name(t.root(), name).expect("there");
        assert_eq!(
            t.own(id),
            kept(&e),
            "{how}: {}",
            String::from_utf8_lossy(name)
        );
        if name != b"link-b" {
            apparent += e.apparent;
        }
    }
    assert_eq!(
        t.own(t.child_by_name(t.root(), b"plain").expect("plain"))
            .ino,
        None
    );
    let unreadable = t.child_by_name(t.root(), b"unreadable").expect("there");
    assert_eq!(t.errno(unreadable), 13, "{how}");
    let a = t.child_by_name(t.root(), b"link-a").expect("a");
    assert_eq!(t.nlink(a), 2, "{how}");
    assert_eq!(
        t.totals(t.root()).apparent,
        apparent,
        "{how}: one charge per link group"
    );
    assert_totals_consistent(t);
}

fn rows_of(t: &Tree) -> RowChunk {
    let mut rows = RowChunk::default();
    for id in t.live_ids() {
        rows.push(t.row(id), t.name(id));
    }
    rows
}

#[test]
fn rare_attributes_survive_memory_a_saved_arena_and_a_rebuild_from_rows() {
    let t = build();
    check(&t, "in memory");
    let dir_ = tempfile::tempdir().expect("tempdir");
    let path = dir_.path().join("tree.arena");
    t.save(&path).expect("save");
    let mapped = Tree::from_arena(Arena::open(&path).expect("open")).expect("valid");
    check(&mapped, "mapped");
    let rebuilt = Tree::from_rows(
        Arena::create_temp().expect("arena"),
        Path::new("/r"),
        &rows_of(&t),
        1,
    )
    .expect("rebuilt");
    check(&rebuilt, "from rows");
    assert_eq!(rows_of(&rebuilt).rows, rows_of(&t).rows);
}

#[test]
fn a_file_that_grows_past_4_gib_and_back_moves_in_and_out_of_a_rare_record() {
    let mut t = new_tree();
    let root = t.root();
    let f = t.add_child(root, b"f", &file(100, 4096)).expect("f");
    let g = t.add_child(root, b"g", &file(1, 512)).expect("g");
    assert!(!t.node(f).is_rare());
    t.set_own(f, 6 << 30, 6 << 30, Time { sec: 9, nsec: 4 })
        .expect("grow");
    assert!(t.node(f).is_rare());
    let record = t.node(f).aux;
    let records = t.arena().header().rare_count;
    assert_eq!(t.totals(root).apparent, 10 + (6 << 30) + 1);
    assert_eq!(t.mtime(f), Time { sec: 9, nsec: 4 });
    t.set_own(f, 200, 4096, Time { sec: 10, nsec: 4 })
        .expect("shrink");
    assert!(!t.node(f).is_rare(), "its record is given back");
    assert_eq!(
        t.mtime(f),
        Time { sec: 10, nsec: 0 },
        "whole seconds when plain"
    );
    assert_eq!(
        t.arena().header().free_rare,
        record,
        "the record is on the free list"
    );
    // The freed record is taken again rather than a new one.
    t.set_own(g, 1, 513, Time::default()).expect("odd disk");
    assert_eq!(t.arena().header().rare_count, records);
    assert_eq!(t.own(g).disk, 513);
    assert_eq!(t.totals(root).apparent, 10 + 200 + 1);
    t.validate().expect("valid");
    assert_totals_consistent(&t);
}

#[test]
fn a_forged_rare_index_is_refused_at_load() {
    let t = build();
    let dir_ = tempfile::tempdir().expect("tempdir");
    let path = dir_.path().join("tree.arena");
    let mut arena = Arena::open(&{
        t.save(&path).expect("save");
        path.clone()
    })
    .expect("open");
    let f = t.child_by_name(t.root(), b"sparse-5g").expect("f");
    let g = t.child_by_name(t.root(), b"before-1970").expect("g");
    let theirs = arena.nodes()[g.index()].aux;
    arena.nodes_mut()[f.index()].aux = theirs;
    assert_eq!(
        Tree::validate_arena(&arena).err(),
        Some("a rare record used twice")
    );
    arena.nodes_mut()[f.index()].aux = 1_000_000;
    assert_eq!(
        Tree::validate_arena(&arena).err(),
        Some("rare record out of range")
    );
}

#[test]
fn a_plain_file_updated_past_4_gib_or_before_1970_keeps_its_inode() {
    let mut t = new_tree();
    let root = t.root();
    let f = t.add_child(root, b"f", &file(100, 4096)).expect("f");
    let g = t.add_child(root, b"g", &file(100, 4096)).expect("g");
    let grown = EntryInfo {
        ino: 41,
        ..file(5 << 30, 8192)
    };
    assert!(t.update_in_place(f, &grown).expect("update"));
    assert_eq!(t.own(f), kept(&grown));
    let dated_back = dated(
        EntryInfo {
            ino: 42,
            ..file(100, 4096)
        },
        -5,
        7,
    );
    assert!(t.update_in_place(g, &dated_back).expect("update"));
    assert_eq!(t.own(g), kept(&dated_back));
    assert_eq!(t.totals(root).apparent, 10 + (5 << 30) + 100);
    t.validate().expect("valid");
    assert_totals_consistent(&t);
}

#[test]
fn forged_rare_records_are_refused_at_load_or_harmless() {
    let t = build();
    let dir_ = tempfile::tempdir().expect("tempdir");
    let path = dir_.path().join("tree.arena");
    t.save(&path).expect("save");
    let open = || Arena::open(&path).expect("open");
    let id = |name: &[u8]| t.child_by_name(t.root(), name).expect("there");
    let (big, dir5g, plain) = (id(b"sparse-5g"), id(b"dir-of-5g"), id(b"plain"));
    let big_rec = t.node(big).aux;

    // A directory claiming the record of a file.
    let mut a = open();
    a.nodes_mut()[dir5g.index()].word = big_rec;
    assert_eq!(
        Tree::validate_arena(&a).err(),
        Some("a rare record used twice")
    );
    // The RARE bit on a directory whose index is out of range.
    let mut a = open();
    let root = t.root().index();
    a.nodes_mut()[root].kind_bits |= node::RARE_BIT;
    a.nodes_mut()[root].word = 9999;
    assert_eq!(
        Tree::validate_arena(&a).err(),
        Some("rare record out of range")
    );
    // A plain file made rare onto a record in use.
    let mut a = open();
    a.nodes_mut()[plain.index()].kind_bits |= node::RARE_BIT;
    a.nodes_mut()[plain.index()].aux = big_rec;
    assert_eq!(
        Tree::validate_arena(&a).err(),
        Some("a rare record used twice")
    );
    // The free list of records reaching a used one, and looping.
    let mut a = open();
    a.header_mut().free_rare = big_rec;
    assert!(Tree::validate_arena(&a).is_err());
    let mut a = open();
    let n = a.header().rare_count;
    a.reserve_rares(2).expect("room");
    let first = a.push_rares(2);
    assert_eq!(first, n);
    a.rares_mut()[n as usize].link = n + 1;
    a.rares_mut()[n as usize + 1].link = n;
    a.header_mut().free_rare = n;
    assert_eq!(
        Tree::validate_arena(&a).err(),
        Some("the free rare list reaches a used record or loops")
    );
    // Ring links are not trusted: forged ones (a loop past the group, out of range) are
    // rebuilt before a group is used; removing and changing members stays exact.
    let mut a = open();
    let (la, lb) = (id(b"link-a"), id(b"link-b"));
    for r in a.rares_mut() {
        r.link = 7_777_777;
    }
    let ra = a.nodes()[la.index()].aux as usize;
    a.rares_mut()[ra].link = big.0;
    let mut forged = Tree::from_arena(a).expect("valid");
    forged
        .set_own(lb, 9000, 9216, Time::default())
        .expect("set");
    assert_eq!(forged.own(la).apparent, 9000);
    assert_eq!(forged.own(big).apparent, 5 << 30, "not a member");
    forged.remove(la);
    forged.remove(big);
    forged.validate().expect("valid");
    assert_totals_consistent(&forged);
}
