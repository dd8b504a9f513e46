//! Catch-up and cache regressions found in review, each pinned by the bug it was.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;
use disktracker::cache::{CacheOptions, CachePaths, Origin, Saved, Session};
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
    let progress = Progress::new();
    let mut s = Session::open(root, &opts(cache), scan, &progress).expect("open");
    let stats = s.catch_up(scan, &progress).expect("catch up");
    let disk = {
        let t = tree::read(&s.tree);
        t.totals(t.root()).disk
    };
    assert!(matches!(s.close(), Saved::Clean { .. }));
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
    let progress = Progress::new();
    let s = Session::open(&root, &opts(&cache), &scan, &progress).expect("open");
    assert!(matches!(s.origin, Origin::Scanned { .. }));
    // The process dies after the database commit, before saving the arena.
    drop(s);
    let progress = Progress::new();
    let s = Session::open(&root, &opts(&cache), &scan, &progress).expect("reopen");
    assert!(
        !matches!(s.origin, Origin::Mapped { .. }),
        "the old arena is not mapped: {:?}",
        s.origin
    );
    let t = tree::read(&s.tree);
    assert_eq!(t.totals(t.root()).disk, du(&root, false));
}
