//! Catch-up and cache regressions found in review, each pinned by the bug it was.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;
use disktracker::cache::{CacheOptions, CachePaths, Origin, Saved};
use disktracker::scan::{Excludes, Progress, ScanOptions};
use disktracker::tree;

fn opts(cache: &Path) -> CacheOptions {
    CacheOptions {
        dir: Some(cache.to_path_buf()),
        disabled: false,
    }
}

/// Opens through the cache, catches up, returns (disk total, catch-up stats), closes.
fn catch_up(
    root: &Path,
    cache: &Path,
    scan: &ScanOptions,
) -> (u64, Option<disktracker::reconcile::ReconcileStats>) {
    let s = open_engine(root, &opts(cache), scan, true).expect("open");
    let stats = s.first.catch_up;
    let disk = {
        let t = tree::read(&s.engine.tree);
        t.totals(t.root()).disk
    };
    assert!(matches!(s.engine.shutdown(), Saved::Clean { .. }));
    (disk, stats)
}

fn touch_date(path: &Path, date: &str) {
    let out = run(Command::new("touch").args(["-d", date]).arg(path));
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_directory_whose_mtime_was_set_back_is_still_reread() {
    // Regression: the parent's pass recorded the child directory's new mtime, so the child's
    // own "mtime unchanged" check could never fail.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    fs::create_dir_all(root.join("d")).expect("mkdir");
    write(&root.join("d/old"), 100);
    touch_date(&root.join("d"), "2000-01-01");
    let cache = dir.path().join("cache");
    let scan = ScanOptions::default();
    catch_up(&root, &cache, &scan);
    // Like rsync -a or tar x: new content, and the directory's mtime set to another old date.
    write(&root.join("d/new"), 700_000);
    touch_date(&root.join("d"), "2001-01-01");
    let (disk, stats) = catch_up(&root, &cache, &scan);
    assert_eq!(disk, du(&root, false), "{stats:?}");
    assert_eq!(stats.expect("caught up").added, 1);
}

#[test]
fn an_excluded_entry_keeps_its_kind_when_its_directory_is_unchanged() {
    // Regression: names listed from the cache carried no type, so an excluded directory came
    // back as "unknown" and was replaced on every catch-up.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    fs::create_dir_all(root.join("node_modules/pkg")).expect("mkdir");
    write(&root.join("keep"), 10);
    touch_date(&root, "2000-01-01");
    let cache = dir.path().join("cache");
    let scan = ScanOptions {
        excludes: Excludes::new(&["node_modules"]).expect("pattern"),
        ..ScanOptions::default()
    };
    catch_up(&root, &cache, &scan);
    let (_, stats) = catch_up(&root, &cache, &scan);
    let stats = stats.expect("caught up");
    assert_eq!(stats.replaced, 0, "{stats:?}");
    assert!(!stats.changed(), "{stats:?}");
}

#[test]
fn an_old_arena_never_passes_for_a_new_database() {
    // Regression: arena and database were matched by generation number only, and a new
    // database starts again at generation 1.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    fs::create_dir(&root).expect("mkdir");
    write(&root.join("a"), 1000);
    let cache = dir.path().join("cache");
    let scan = ScanOptions::default();
    catch_up(&root, &cache, &scan);
    let paths = CachePaths::new(&cache, &root.canonicalize().expect("canon"));
    for f in &paths.all_files()[..3] {
        let _ = fs::remove_file(f);
    }
    write(&root.join("b"), 500_000);
    let s = open_engine(&root, &opts(&cache), &scan, false).expect("open");
    assert!(matches!(s.engine.origin, Origin::Scanned { .. }));
    // The process dies after the database commit, before saving the arena: the database is
    // whole, and no arena is left (the start removed the old one, to be replaced).
    assert!(matches!(s.engine.shutdown(), Saved::Clean { .. }));
    let _ = fs::remove_file(&paths.arena);
    let s = open_engine(&root, &opts(&cache), &scan, false).expect("reopen");
    assert!(
        !matches!(s.engine.origin, Origin::Mapped { .. }),
        "the old arena is not mapped: {:?}",
        s.engine.origin
    );
    let t = tree::read(&s.engine.tree);
    assert_eq!(t.totals(t.root()).disk, du(&root, false));
}

/// Waits (polling, with a deadline) until the clock is well past `path`'s ctime, so a listing
/// read now is trusted by the next catch-up (see `scan::listing_stamp`).
fn settle(path: &Path) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::symlink_metadata(path).expect("stat");
    let ctime = i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec());
    poll_until(std::time::Duration::from_secs(10), "the clock", || {
        (disktracker::scan::listing_clock() > ctime + 200_000_000).then_some(())
    });
}

#[test]
fn files_added_and_renamed_behind_a_restored_mtime_are_found() {
    // Regression (the issue's minimal case): "changed" was the directory's mtime in whole
    // seconds, so tar x / rsync -a / touch -d hid new and renamed files from every catch-up.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("r");
    fs::create_dir_all(root.join("d")).expect("mkdir");
    write(&root.join("d/a"), 100_000);
    touch_date(&root.join("d"), "2000-01-01");
    settle(&root.join("d"));
    let cache = dir.path().join("cache");
    let scan = ScanOptions::default();
    catch_up(&root, &cache, &scan);
    // Quiet: every listing is trusted, nothing is read again.
    let (_, stats) = catch_up(&root, &cache, &scan);
    let stats = stats.expect("caught up");
    assert_eq!(
        stats.dirs_read, 0,
        "an unchanged tree is not re-listed: {stats:?}"
    );
    write(&root.join("d/new"), 50_000);
    fs::rename(root.join("d/a"), root.join("d/b")).expect("mv");
    touch_date(&root.join("d"), "2000-01-01");
    let (disk, stats) = catch_up(&root, &cache, &scan);
    assert_eq!(disk, du(&root, false), "{stats:?}");
    let stats = stats.expect("caught up");
    assert_eq!((stats.added, stats.removed), (2, 1), "{stats:?}");
}

#[test]
fn two_changes_within_one_second_and_pre_1970_times_are_both_seen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("r");
    fs::create_dir_all(root.join("d")).expect("mkdir");
    write(&root.join("d/a"), 10);
    touch_date(&root.join("d"), "1960-01-01");
    let cache = dir.path().join("cache");
    let scan = ScanOptions::default();
    catch_up(&root, &cache, &scan);
    for (i, date) in ["1950-06-01", "1960-01-01"].iter().enumerate() {
        write(&root.join(format!("d/n{i}")), 20_000 * (i + 1));
        touch_date(&root.join("d"), date);
        let (disk, stats) = catch_up(&root, &cache, &scan);
        assert_eq!(disk, du(&root, false), "step {i}: {stats:?}");
        assert_eq!(du(&root, true), {
            let s = open_engine(&root, &opts(&cache), &scan, false).expect("open");
            let t = tree::read(&s.engine.tree);
            t.totals(t.root()).apparent
        });
    }
}

#[test]
fn writes_through_either_name_of_a_hard_link_are_counted_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("r");
    fs::create_dir_all(root.join("a")).expect("mkdir");
    fs::create_dir_all(root.join("b")).expect("mkdir");
    write(&root.join("a/x"), 10_000);
    fs::hard_link(root.join("a/x"), root.join("b/y")).expect("link");
    let cache = dir.path().join("cache");
    let scan = ScanOptions::default();
    catch_up(&root, &cache, &scan);
    for (name, len) in [("a/x", 300_000), ("b/y", 700_000), ("a/x", 5)] {
        write(&root.join(name), len);
        let (disk, stats) = catch_up(&root, &cache, &scan);
        assert_eq!(disk, du(&root, false), "after writing {name}: {stats:?}");
    }
    // Remove each name in turn: the remaining one carries the current size.
    fs::remove_file(root.join("a/x")).expect("rm");
    write(&root.join("b/y"), 123_456);
    let (disk, stats) = catch_up(&root, &cache, &scan);
    assert_eq!(disk, du(&root, false), "{stats:?}");
}

#[test]
fn scanning_a_subtree_twice_never_adds_its_children_twice() {
    use disktracker::fs::RootDir;
    use disktracker::scan;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("r");
    fs::create_dir_all(root.join("d/e")).expect("mkdir");
    write(&root.join("d/f"), 1000);
    write(&root.join("d/e/g"), 3000);
    let scan_opts = ScanOptions::default();
    let rootdir = RootDir::open(&root).expect("open");
    let (t, _) = scan::scan_path(&root, &scan_opts, &Progress::new()).expect("scan");
    let d = t.lookup(&rootdir.path.join("d")).expect("d");
    let lock = std::sync::RwLock::new(t);
    for _ in 0..2 {
        scan::scan_subtree(&lock, &rootdir, d, &scan_opts, &Progress::new()).expect("subtree");
    }
    let t = tree::read(&lock);
    assert_eq!(t.children(d).count(), 2, "f and e, once each");
    assert_eq!(t.totals(t.root()).disk, du(&root, false));
    assert_eq!(t.totals(t.root()).items, 4);
}

#[test]
fn a_second_pass_in_the_same_session_lists_the_root_again() {
    // Regression: passes listed a dup of the session's root fd, which shares its offset; after
    // the first scan the root listed as empty and a reconcile dropped the whole tree.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("r");
    fs::create_dir_all(root.join("d")).expect("mkdir");
    write(&root.join("d/f"), 10_000);
    write(&root.join("g"), 20_000);
    let scan = ScanOptions::default();
    let no_cache = CacheOptions {
        dir: None,
        disabled: true,
    };
    let s = open_engine(&root, &no_cache, &scan, true).expect("open");
    // `reconcile --full` (trusting nothing), then a reconcile trusting listings.
    for full in [true, false] {
        let stats = s
            .engine
            .reconcile_and_wait(&s.msgs, full)
            .expect("reconcile")
            .stats()
            .expect("reconciled");
        assert_eq!(stats.removed, 0, "{stats:?}");
        let t = tree::read(&s.engine.tree);
        assert_eq!(t.totals(t.root()).items, 3);
        assert_eq!(t.totals(t.root()).disk, du(&root, false));
        // Each pass counts its own entries: the second never shows more than the tree holds
        // ("Verifying: N checked" stays at most the tree's entries).
        let checked = s.engine.progress.snapshot().entries;
        assert!(
            checked <= t.len(),
            "a pass counted {checked} entries of a tree of {}",
            t.len()
        );
    }
}
