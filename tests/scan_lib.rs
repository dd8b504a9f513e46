//! The scanner as a library: the shallow read and the subtree scan that later stages build on,
//! and a tree that readers can watch while it fills.

mod common;

use std::fs;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use disktracker::scan::{self, Progress, ScanOptions};
use disktracker::tree::{self, Arena, EntryInfo, Kind};

#[test]
fn a_new_subtree_is_scanned_into_the_live_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(&root.join("old"), 1000);
    let opts = ScanOptions::default();
    let (t, _) = scan::scan_path(root, &opts, &Progress::new()).expect("scan");
    let lock = RwLock::new(t);

    // A directory appears after the first scan: it gets a node (as reconcile does), then one scan.
    fs::create_dir_all(root.join("new/a/b")).expect("mkdir");
    write(&root.join("new/a/b/f"), 123_456);
    write(&root.join("new/g"), 10);
    let st = fs::symlink_metadata(root.join("new")).expect("stat");
    let info = EntryInfo {
        kind: Kind::Dir,
        flags: 0,
        ino: std::os::unix::fs::MetadataExt::ino(&st),
        dev: std::os::unix::fs::MetadataExt::dev(&st),
        nlink: 2,
        mtime: 0,
        mtime_nsec: 0,
        apparent: st.len(),
        disk: std::os::unix::fs::MetadataExt::blocks(&st) * 512,
        errno: 0,
    };
    let node = {
        let mut t = tree::write(&lock);
        let r = t.root();
        t.add_child(r, b"new", &info).expect("add")
    };
    let rootdir = disktracker::fs::RootDir::open(root).expect("open root");
    let stats =
        scan::scan_subtree(&lock, &rootdir, node, &opts, &Progress::new()).expect("subtree");
    assert_eq!(stats.entries, 4, "a, a/b, a/b/f, g");
    let t = tree::read(&lock);
    // The root's own size may have changed since the first scan; compare below it.
    assert_eq!(t.totals(node).disk, du(&root.join("new"), false));
    assert_eq!(t.totals(node).apparent, du(&root.join("new"), true));
    let f = t.lookup(&root.canonicalize().expect("canon").join("new/a/b/f"));
    assert_eq!(t.totals(f.expect("f is in the tree")).apparent, 123_456);
}

#[test]
fn the_direct_children_of_a_directory_can_be_read_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fs::create_dir_all(root.join("d/sub")).expect("mkdir");
    write(&root.join("d/f1"), 10);
    write(&root.join("d/sub/deep"), 99);
    let opts = ScanOptions::default();
    let (t, _) = scan::scan_path(root, &opts, &Progress::new()).expect("scan");
    let d = t
        .lookup(&root.canonicalize().expect("canon").join("d"))
        .expect("d");
    let lock = RwLock::new(t);
    write(&root.join("d/f2"), 2000);
    let rootdir = disktracker::fs::RootDir::open(root).expect("open root");
    let mut kids = scan::read_children(&lock, &rootdir, d, &opts).expect("read");
    kids.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&[u8]> = kids.iter().map(|c| c.name.as_slice()).collect();
    assert_eq!(names, [&b"f1"[..], b"f2", b"sub"]);
    assert_eq!(kids[1].info.apparent, 2000);
    assert_eq!(kids[2].info.kind, Kind::Dir);
    // The tree itself is untouched by a shallow read.
    assert_eq!(tree::read(&lock).children(d).count(), 2);
}

#[test]
fn readers_see_totals_only_grow_while_the_scan_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for d in 0..40 {
        let sub = root.join(format!("d{d}"));
        fs::create_dir(&sub).expect("mkdir");
        for f in 0..100 {
            write(&sub.join(format!("f{f}")), 100);
        }
    }
    let rootdir =
        disktracker::fs::RootDir::open(&root.canonicalize().expect("canon")).expect("open");
    let lock = RwLock::new(
        rootdir
            .new_tree(Arena::create_temp().expect("arena"))
            .expect("tree"),
    );
    let progress = Progress::new();
    let done = AtomicBool::new(false);
    let seen = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut seen = Vec::new();
            while !done.load(Ordering::Acquire) {
                let t = tree::read(&lock);
                seen.push((t.totals(t.root()).items, progress.snapshot().entries));
            }
            seen
        });
        let opts = ScanOptions {
            threads: 2,
            ..ScanOptions::default()
        };
        scan::scan_root(&rootdir, &lock, &opts, &progress).expect("scan");
        done.store(true, Ordering::Release);
        reader.join().expect("reader")
    });
    assert!(
        seen.windows(2).all(|w| w[0].0 <= w[1].0),
        "items never go down"
    );
    let t = tree::read(&lock);
    assert_eq!(t.totals(t.root()).items, 4040);
    assert_eq!(progress.snapshot().entries, 4040);
    assert_eq!(t.totals(t.root()).disk, du(root, false));
}

#[test]
fn sparse_old_and_hard_linked_files_keep_exact_sizes_through_a_save_and_a_rebuild() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fs::File::create(root.join("sparse-5g"))
        .and_then(|f| f.set_len(5 << 30))
        .expect("sparse file");
    // A hole then one byte: its disk usage is not its size rounded up.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = fs::File::create(root.join("holey")).expect("create");
        f.seek(SeekFrom::Start(1 << 20)).expect("seek");
        f.write_all(b"x").expect("write");
    }
    write(&root.join("old"), 10);
    let t = nix::sys::time::TimeSpec::new(-86_400, 5);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        &root.join("old"),
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .expect("set an mtime before 1970");
    write(&root.join("a"), 5000);
    fs::hard_link(root.join("a"), root.join("b")).expect("link");
    write(&root.join("plain"), 100);

    let (t, _) = scan::scan_path(root, &ScanOptions::default(), &Progress::new()).expect("scan");
    let canon = root.canonicalize().expect("canon");
    let exact = |t: &tree::Tree, how: &str| {
        for name in ["sparse-5g", "holey", "old", "a", "b", "plain"] {
            let m = fs::symlink_metadata(root.join(name)).expect("stat");
            let id = t.lookup(&canon.join(name)).expect("in the tree");
            let own = t.own(id);
            assert_eq!(own.apparent, m.len(), "{how}: {name}");
            assert_eq!(own.disk, m.blocks() * 512, "{how}: {name}");
            assert_eq!(own.mtime.sec, m.mtime(), "{how}: {name}");
        }
        let old = t.lookup(&canon.join("old")).expect("old");
        assert_eq!(
            t.own(old).mtime.nsec,
            5,
            "{how}: a rare entry keeps nanoseconds"
        );
        let a = t.lookup(&canon.join("a")).expect("a");
        let ino = fs::symlink_metadata(root.join("a")).expect("stat").ino();
        assert_eq!(
            t.own(a).ino,
            Some(ino),
            "{how}: a hard link keeps its inode"
        );
        assert_eq!(t.totals(t.root()).disk, du(root, false), "{how}");
        assert_eq!(t.totals(t.root()).apparent, du(root, true), "{how}");
    };
    exact(&t, "scanned");
    let path = dir.path().join("tree.arena");
    t.save(&path).expect("save");
    let mapped = tree::Tree::from_arena(Arena::open(&path).expect("open")).expect("valid");
    fs::remove_file(&path).expect("rm");
    exact(&mapped, "mapped");
    let mut rows = tree::RowChunk::default();
    for id in t.live_ids() {
        rows.push(t.row(id), t.name(id));
    }
    let rebuilt = tree::Tree::from_rows(Arena::create_temp().expect("arena"), &canon, &rows, 1)
        .expect("rebuilt");
    exact(&rebuilt, "rebuilt from rows");
}

#[test]
fn scan_progress_counts_a_hard_linked_file_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fs::create_dir_all(root.join("a")).expect("mkdir");
    fs::create_dir_all(root.join("b")).expect("mkdir");
    write(&root.join("a/big"), 1 << 20);
    fs::hard_link(root.join("a/big"), root.join("b/big")).expect("link");
    fs::hard_link(root.join("a/big"), root.join("b/big2")).expect("link");
    let progress = Progress::new();
    let (t, _) = scan::scan_path(root, &ScanOptions::default(), &progress).expect("scan");
    let p = progress.snapshot();
    let total = t.totals(t.root());
    let own = fs::symlink_metadata(root).expect("stat root");
    // The progress line is what the footer shows while scanning: it must end at the total
    // (less the root's own size), not at three times the file.
    assert_eq!(
        p.disk,
        total.disk - std::os::unix::fs::MetadataExt::blocks(&own) * 512
    );
    assert_eq!(p.apparent, total.apparent - own.len());
    assert_eq!(p.entries, 5);
}
