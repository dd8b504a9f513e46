//! A scan's slices added in bulk give the tree the general path gives, entry by entry.

use super::*;

fn on(dev: u64, e: EntryInfo) -> EntryInfo {
    EntryInfo { dev, ..e }
}

fn dated(e: EntryInfo, sec: i64, nsec: u32) -> EntryInfo {
    EntryInfo {
        mtime: sec,
        mtime_nsec: nsec,
        ..e
    }
}

type Slices = Vec<(Option<usize>, Vec<(Vec<u8>, EntryInfo)>)>;

/// Two slices of a root, then one of a directory of the first, with every kind of entry
/// (plain and rare, directories among them, hard links within a slice and across slices).
fn slices() -> Slices {
    let mut first = vec![
        (b"plain".to_vec(), file(100, 4096)),
        (b"d1".to_vec(), dir(4096)),
        (b"sparse-5g".to_vec(), file(5 << 30, 4096)),
        (b"not-whole-blocks".to_vec(), file(10, 1000)),
        (b"link-a".to_vec(), link(77, 3000, 3)),
        (b"dir-of-5g".to_vec(), dir(5 << 30)),
        (b"d2".to_vec(), on(9, dir(4096))),
        (b"link-b".to_vec(), link(77, 3000, 3)),
        (b"before-1970".to_vec(), dated(file(1, 512), -86_400, 5)),
        (b"dir-after-2262".to_vec(), dated(dir(4096), 1 << 40, 3)),
        (
            b"unreadable".to_vec(),
            EntryInfo::bare(Kind::File, flags::READ_ERROR, 13),
        ),
        (
            b"unreadable-dir".to_vec(),
            EntryInfo::bare(Kind::Dir, flags::READ_ERROR, 13),
        ),
        (
            b"excluded".to_vec(),
            EntryInfo::bare(Kind::Dir, flags::EXCLUDED, 0),
        ),
        (
            b"elsewhere".to_vec(),
            EntryInfo {
                flags: flags::OTHER_FS,
                apparent: 0,
                disk: 0,
                ..on(11, dir(0))
            },
        ),
        (b"d3".to_vec(), dated(dir(8192), 1_700_000_000, 999)),
    ];
    for i in 0..40 {
        first.push((format!("f{}", i % 7).into_bytes(), file(i, i * 512)));
    }
    let second = vec![
        (b"link-c".to_vec(), link(77, 3000, 3)),
        (b"index.js".to_vec(), file(7, 4096)),
        (b"d4".to_vec(), dir(4096)),
    ];
    let below = vec![
        (b"index.js".to_vec(), file(7, 4096)),
        (b"plain".to_vec(), file(1, 512)),
        (b"link-d".to_vec(), link(78, 10, 2)),
        (b"sub".to_vec(), dir(4096)),
    ];
    // `Some(k)`: the slice goes into the k-th directory the earlier slices added.
    vec![(None, first), (None, second), (Some(0), below)]
}

fn build(bulk: bool) -> Tree {
    let mut t = new_tree();
    t.bulk_off = !bulk;
    let mut dirs = Vec::new();
    for (into, slice) in slices() {
        let parent = into.map_or(t.root(), |k| dirs[k]);
        assert_eq!(t.can_add_in_bulk(parent), bulk);
        let slice: Vec<(&[u8], EntryInfo)> = slice.iter().map(|(n, e)| (&n[..], *e)).collect();
        let ids = add(&mut t, parent, &slice);
        dirs.extend(ids.into_iter().filter(|&id| t.kind(id) == Kind::Dir));
    }
    t
}

#[test]
fn slices_added_in_bulk_give_the_same_tree_as_entry_by_entry() {
    let (bulk, general) = (build(true), build(false));
    bulk.validate().expect("the bulk tree validates");
    general.validate().expect("the general tree validates");
    let count = general.arena.header().node_count;
    assert_eq!(bulk.arena.header().node_count, count);
    assert_eq!(
        bulk.arena.header().live_nodes,
        general.arena.header().live_nodes
    );
    assert_eq!(
        bulk.arena.header().dir_count,
        general.arena.header().dir_count
    );
    assert_eq!(
        bulk.arena.header().rare_count,
        general.arena.header().rare_count
    );
    assert_eq!(bulk.arena.names(), general.arena.names());
    for i in 0..count {
        let id = NodeId(i);
        let (b, g) = (bulk.node(id), general.node(id));
        let what = String::from_utf8_lossy(bulk.name(id)).into_owned();
        // Directory records may sit at other indexes (the bulk path takes the plain ones
        // first); everything else is the same, slot for slot.
        let strip = |n: &Node| Node {
            aux: if n.is_dir() { 0 } else { n.aux },
            ..*n
        };
        assert_eq!(
            bytemuck::bytes_of(&strip(b)),
            bytemuck::bytes_of(&strip(g)),
            "{what}"
        );
        assert_eq!(
            bulk.dir_rec(id).map(bytemuck::bytes_of),
            general.dir_rec(id).map(bytemuck::bytes_of),
            "{what}"
        );
        assert_eq!(bulk.own(id), general.own(id), "{what}");
        assert_eq!(bulk.totals(id), general.totals(id), "{what}");
        assert_eq!(bulk.group_of(id), general.group_of(id), "{what}");
        assert_eq!(
            bulk.children(id).collect::<Vec<_>>(),
            general.children(id).collect::<Vec<_>>(),
            "{what}"
        );
    }
}

/// A slice's entries added to `parent` on the bulk path or the general one; their ids.
fn add(t: &mut Tree, parent: NodeId, slice: &[(&[u8], EntryInfo)]) -> Vec<NodeId> {
    let mut names = Vec::new();
    let mut entries = Vec::new();
    for (name, info) in slice {
        entries.push(NewEntry {
            name_start: names.len() as u32,
            name_len: name.len() as u8,
            info: *info,
        });
        names.extend_from_slice(name);
    }
    let first = t.arena.header().node_count;
    t.add_children(parent, &entries, &names, |_, _| {})
        .expect("add");
    (first..first + entries.len() as u32).map(NodeId).collect()
}

/// Regression: the bulk path interned the devices of a slice's plain directories before
/// those of its rare ones, so with one slot left in the device table a plain directory took
/// it where the general path (entry by entry) gives it to the directory listed first.
#[test]
fn the_last_device_slot_goes_to_the_same_directory_on_both_paths() {
    let devs = |bulk: bool| {
        let mut t = new_tree();
        t.bulk_off = !bulk;
        let mut dev = 1000;
        while t.arena.header().device_count as usize + 1 < arena::MAX_DEVICES {
            t.intern_dev(dev);
            dev += 1;
        }
        let root = t.root();
        assert_eq!(t.can_add_in_bulk(root), bulk);
        let ids = add(
            &mut t,
            root,
            &[
                (b"a-mount-dated-2300", dated(on(1, dir(4096)), 1 << 40, 0)),
                (b"another-mount", on(2, dir(4096))),
            ],
        );
        t.validate().expect("valid");
        ids.iter().map(|&id| t.dev(id)).collect::<Vec<_>>()
    };
    let general = devs(false);
    assert_eq!(general, [Some(1), None]);
    assert_eq!(devs(true), general);
}
