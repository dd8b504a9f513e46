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
    t.set_own(f, 50, 0, crate::tree::Time { sec: 5, nsec: 0 })
        .expect("set");
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

/// Recomputes every directory's totals from scratch and compares them with the stored ones.
fn assert_totals_consistent(t: &Tree) {
    fn walk(t: &Tree, id: NodeId) -> (u128, u128, u64) {
        let n = t.own(id);
        let (mut a, mut d, mut items) = (u128::from(n.apparent), u128::from(n.disk), 0);
        for c in t.children(id) {
            let (ca, cd, ci) = if t.kind(c) == Kind::Dir {
                walk(t, c)
            } else {
                (u128::from(t.own(c).apparent), u128::from(t.own(c).disk), 0)
            };
            items += ci + 1;
            if t.flags(c) & flags::NOT_CHARGED == 0 {
                a += ca;
                d += cd;
            }
        }
        let sat = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
        let got = t.totals(id);
        assert_eq!(
            (got.apparent, got.disk, got.items),
            (sat(a), sat(d), items),
            "totals of {:?}",
            t.path_of(id)
        );
        (a, d, items)
    }
    walk(t, t.root());
}

#[test]
fn sizes_beyond_u64_saturate_instead_of_wrapping_and_come_back_exactly() {
    // Regression: three 8 EiB sparse files totalled 236 B (wrapping arithmetic).
    let mut t = new_tree();
    let root = t.root();
    let big = i64::MAX as u64;
    let a = t.add_child(root, b"a", &dir(0)).expect("a");
    let f1 = t.add_child(a, b"f1", &file(big, 4096)).expect("f1");
    let f2 = t.add_child(a, b"f2", &file(big, 4096)).expect("f2");
    t.add_child(a, b"f3", &file(big, 4096)).expect("f3");
    assert_eq!(t.totals(a).apparent, u64::MAX);
    assert_eq!(t.totals(root).apparent, u64::MAX);
    assert_eq!(t.totals(root).disk, 10 + 3 * 4096);
    t.remove(f1);
    assert_eq!(t.totals(a).apparent, 2 * big, "exact again once it fits");
    assert_eq!(
        t.totals(root).apparent,
        u64::MAX,
        "root: 10 B + 2 x (8 EiB - 1)"
    );
    t.remove(f2);
    assert_eq!(t.totals(a).apparent, big, "exact again once it fits");
    assert_eq!(t.totals(root).apparent, 10 + big);
    assert_totals_consistent(&t);
}

#[test]
fn removing_many_children_at_once_keeps_the_others_linked() {
    let mut t = new_tree();
    let root = t.root();
    let a = t.add_child(root, b"a", &dir(0)).expect("a");
    let mut ids = Vec::new();
    for i in 0..100u8 {
        ids.push(t.add_child(a, &[b'f', i], &file(10, 10)).expect("f"));
    }
    let doomed: Vec<NodeId> = ids.iter().copied().step_by(3).collect();
    t.remove_children(a, &doomed);
    assert_eq!(t.children(a).count(), 100 - doomed.len());
    assert!(t.children(a).all(|c| !doomed.contains(&c)));
    assert_totals_consistent(&t);
}

#[test]
fn deferred_totals_handed_up_one_level_add_up_to_the_same_tree() {
    let mut t = new_tree();
    let root = t.root();
    let a = t.add_child(root, b"a", &dir(4)).expect("a");
    let b = t.add_child(a, b"b", &dir(4)).expect("b");
    let names = b"f1f2";
    let entries = [
        NewEntry {
            name_start: 0,
            name_len: 2,
            info: file(100, 4096),
        },
        NewEntry {
            name_start: 2,
            name_len: 2,
            info: file(50, 4096),
        },
    ];
    let owed = t
        .add_children_local(b, &entries, names, |_, _| {})
        .expect("add");
    assert_eq!(t.totals(b).apparent, 154);
    assert_eq!(t.totals(a).apparent, 8, "not charged above yet");
    let moved = t.apply_local(a, owed);
    t.bubble_from(a, moved);
    assert_totals_consistent(&t);
}

#[test]
fn the_child_index_stays_within_its_budget_and_answers_for_a_dropped_directory() {
    let mut t = new_tree();
    let root = t.root();
    // 500 wide directories of 40 files: every one indexed would take ~100 KiB, over the
    // budget of a tree this small (64 KiB).
    let dirs: Vec<NodeId> = (0..500)
        .map(|d| {
            let dir = t
                .add_child(root, format!("d{d}").as_bytes(), &dir(0))
                .expect("d");
            for f in 0..40 {
                t.add_child(dir, format!("f{f}").as_bytes(), &file(1, 1))
                    .expect("f");
            }
            dir
        })
        .collect();
    for &d in &dirs {
        assert!(t.find_child(d, b"f39").is_some());
        assert!(t.index_bytes() <= 96 << 10, "{} bytes", t.index_bytes());
    }
    assert!(t.index_len() < 500 * 40, "nothing was dropped");
    // The first directory's table went first; it is built again and still answers.
    let first = dirs[0];
    let f7 = t.find_child(first, b"f7").expect("f7");
    assert_eq!(t.name(f7), b"f7");
    assert_eq!(t.find_child(first, b"nope"), None);
    // A child added to and removed from a dropped directory is seen correctly.
    let later = dirs[1];
    let g = t.add_child(later, b"g", &file(1, 1)).expect("g");
    assert_eq!(t.find_child(later, b"g"), Some(g));
    t.remove(g);
    assert_eq!(t.find_child(later, b"g"), None);
    assert!(t.index_bytes_all_wide() <= 96 << 10);
}

#[test]
fn a_moved_subtree_keeps_its_ids_and_totals_and_is_found_by_its_new_name() {
    let mut t = new_tree();
    let root = t.root();
    let a = t.add_child(root, b"a", &dir(0)).expect("a");
    let b = t.add_child(root, b"b", &dir(0)).expect("b");
    let sub = t.add_child(a, b"sub", &dir(4)).expect("sub");
    let f = t.add_child(sub, b"f", &file(100, 4096)).expect("f");
    for i in 0..40u8 {
        t.add_child(b, format!("x{i}").as_bytes(), &file(1, 1))
            .expect("x");
    }
    assert_eq!(
        t.find_child(b, b"x7").map(|id| t.name(id).to_vec()),
        Some(b"x7".to_vec())
    );
    assert!(t.move_node(sub, b, b"moved").expect("move"));
    assert_eq!(
        t.find_child(b, b"moved"),
        Some(sub),
        "the index of a wide directory follows"
    );
    assert_eq!(t.find_child(a, b"sub"), None);
    assert_eq!(t.parent(f), Some(sub));
    assert_eq!(t.totals(a).apparent, 0);
    assert_eq!(t.totals(b).apparent, 40 + 4 + 100);
    assert!(
        !t.move_node(b, sub, b"loop").expect("refused"),
        "not inside itself"
    );
    assert_totals_consistent(&t);
    t.remove(sub);
    assert_eq!(t.find_child(b, b"moved"), None);
    assert_totals_consistent(&t);
}

#[test]
fn repeated_names_share_heap_bytes_and_near_misses_do_not() {
    // The name cache holds a name's length and first 11 bytes: a short repeat is shared
    // without reading the heap, a long one after its tail is compared there. Names that agree
    // in length and head but not in tail must each keep their own bytes.
    let mut t = new_tree();
    let root = t.root();
    let names: [&[u8]; 6] = [
        b"index.js",
        b"exactly-11b",
        b"twelve-bytes",
        // Same length, head and last 8 bytes: the same slot.
        b"a-long-name-0001-with-a-tail.txt",
        b"a-long-name-0002-with-a-tail.txt",
        b"a-long-name-with-\xff\n-tail.txt",
    ];
    assert_eq!(
        super::names::slot_of(names[3]),
        super::names::slot_of(names[4]),
        "the pair must share a slot for the test to mean anything"
    );
    let mut ids = Vec::new();
    for i in 0..3 {
        let dir = t
            .add_child(root, format!("d{i}").as_bytes(), &dir(0))
            .expect("dir");
        for name in names {
            ids.push((t.add_child(dir, name, &file(1, 1)).expect("add"), name));
        }
    }
    // Names alone in their slot are shared again (a long one after its tail is compared);
    // the pair that shares a slot displaces each other and is stored again.
    let before = t.arena().header().names_len;
    let d = t.add_child(root, b"again", &dir(0)).expect("dir");
    for name in [names[0], names[1], names[2], names[5]] {
        ids.push((t.add_child(d, name, &file(1, 1)).expect("add"), name));
    }
    let grown = t.arena().header().names_len - before;
    assert_eq!(
        grown, 5,
        "only the new directory's name is stored again: {grown}"
    );
    for (id, name) in ids {
        assert_eq!(t.name(id), name);
    }
}

#[test]
fn names_of_freed_entries_are_reclaimed_so_a_long_watch_stays_flat() {
    // Regression: 10,000 create/delete cycles left 120 KB of dead names for one entry.
    let mut t = new_tree();
    let root = t.root();
    let keep = t.add_child(root, b"keep-me", &file(1, 1)).expect("keep");
    let mut peak = 0;
    for i in 0..200_000u32 {
        let name = format!("some-temporary-file-{i:08}");
        let id = t
            .add_child(root, name.as_bytes(), &file(1, 1))
            .expect("add");
        t.remove(id);
        t.maybe_compact_names();
        peak = peak.max(t.arena().header().names_len);
    }
    assert!(peak < 4 << 20, "the heap stays bounded: {peak}");
    assert_eq!(t.name(keep), b"keep-me");
    assert_eq!(t.root_path(), Path::new("/r"));
    assert_eq!(t.find_child(root, b"keep-me"), Some(keep));
}

#[test]
fn a_save_does_not_carry_the_names_of_entries_gone_meanwhile() {
    // A small tree that churned (a watch of a build directory): its dead names were most of
    // the saved arena, which the cache's budget counts.
    let mut t = new_tree();
    let root = t.root();
    t.add_child(root, b"keep-me", &file(1, 1)).expect("keep");
    for i in 0..1000u32 {
        let name = format!("{}-{i:04}", "x".repeat(100));
        let id = t.add_child(root, name.as_bytes(), &dir(0)).expect("add");
        t.remove(id);
    }
    let before = t.arena().header().names_len;
    assert!(
        before > 100_000,
        "the churn's names are in the heap: {before}"
    );
    assert!(t.compact_names_for_save(), "compacted before the save");
    let after = t.arena().header().names_len;
    assert!(after < 100, "only the live names are left: {after}");
    assert!(!t.compact_names_for_save(), "nothing more to reclaim");
    assert_eq!(
        t.find_child(root, b"keep-me").map(|id| t.name(id).to_vec()),
        Some(b"keep-me".to_vec())
    );
}

#[test]
fn a_tree_rebuilt_from_rows_still_validates_once_its_names_are_compacted_for_a_save() {
    // Rebuilt from the database's rows (the arena was lost), the root node's own name is a
    // copy of the root's path stored after it; a compaction keeps that offset (the root is
    // skipped) in a heap that may now be shorter than it. A small tree that churned (what
    // `compact_names_for_save` now reclaims at every close) then saves an arena the next
    // start refuses.
    let path = format!("/{}", "p".repeat(60));
    let mut t = Tree::create(
        Arena::create_temp().expect("arena"),
        Path::new(&path),
        &dir(10),
    )
    .expect("tree");
    let root = t.root();
    t.add_child(root, b"k", &file(1, 1)).expect("k");
    let mut rows = RowChunk::default();
    for id in t.live_ids() {
        rows.push(t.row(id), t.name(id));
    }
    let mut r = Tree::from_rows(
        Arena::create_temp().expect("arena"),
        Path::new(&path),
        &rows,
        1,
    )
    .expect("rebuilt");
    r.validate().expect("valid as rebuilt");
    let root = r.root();
    for i in 0..100u32 {
        let name = format!("{}-{i:04}", "x".repeat(60));
        let id = r
            .add_child(root, name.as_bytes(), &file(1, 1))
            .expect("add");
        r.remove(id);
    }
    assert!(r.compact_names_for_save(), "compacted before the save");
    r.validate().expect("still valid after the compaction");
    let dir_ = tempfile::tempdir().expect("tempdir");
    let file_ = dir_.path().join("tree.arena");
    r.save(&file_).expect("save");
    Tree::from_arena(Arena::open(&file_).expect("open")).expect("the next start takes it");
}

#[test]
fn rows_cut_off_from_the_root_give_their_directory_records_back() {
    let mut t = new_tree();
    let root = t.root();
    let a = t.add_child(root, b"a", &dir(0)).expect("a");
    let b = t.add_child(a, b"b", &dir(0)).expect("b");
    t.add_child(b, b"c", &dir(0)).expect("c");
    t.add_child(root, b"d", &dir(0)).expect("d");
    let mut rows = RowChunk::default();
    for id in t.live_ids().filter(|&id| id != a) {
        rows.push(t.row(id), t.name(id));
    }
    let mut r = Tree::from_rows(
        Arena::create_temp().expect("arena"),
        Path::new("/r"),
        &rows,
        1,
    )
    .expect("rebuilt");
    assert_eq!(
        r.len(),
        2,
        "the root and d; b and c hang from the missing a"
    );
    let records = r.arena.header().dir_count;
    assert_eq!(records, 4, "root, b, c, d were written");
    // b's and c's records are free again: two new directories take them.
    let root = r.root();
    r.add_child(root, b"e", &dir(0)).expect("e");
    r.add_child(root, b"f", &dir(0)).expect("f");
    assert_eq!(r.arena.header().dir_count, records, "no record leaked");
    // And the free list it built passes the start check.
    let dir_ = tempfile::tempdir().expect("tempdir");
    let path = dir_.path().join("tree.arena");
    r.save(&path).expect("save");
    let arena = Arena::open(&path).expect("open");
    assert!(Tree::check_arena(&arena).is_ok());
}

mod bulk;
mod links;
mod own;
mod validate;

#[test]
fn a_directory_on_another_device_is_replaced_not_updated_in_place() {
    // Regression (issue 21): an unmount left the mount point with the unmounted filesystem's
    // device and size, since the directory under it was updated in place. A tmpfs replaced
    // by another has the same root inode (1): only the device tells them apart.
    let mut t = new_tree();
    let root = t.root();
    let m = t.add_child(root, b"m", &dir(60)).expect("m");
    assert!(t.update_in_place(m, &dir(80)).expect("same directory"));
    assert_eq!(t.own(m).apparent, 80);
    let other = EntryInfo {
        dev: 8,
        apparent: 4096,
        disk: 4096,
        ..dir(0)
    };
    assert!(!t.update_in_place(m, &other).expect("another device"));
    assert_eq!(
        (t.own(m).apparent, t.dev(m)),
        (80, Some(7)),
        "left as it was"
    );
    // A file's device is its directory's: it is not compared.
    let f = t.add_child(m, b"f", &file(10, 4096)).expect("f");
    assert!(
        t.update_in_place(
            f,
            &EntryInfo {
                dev: 9,
                ..file(20, 4096)
            }
        )
        .expect("file")
    );
}
