//! Running as root on other people's trees: the root opened once, costs that stay linear on
//! deep trees and under a low fd limit, and arguments that cannot exhaust the machine.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use disktracker::cache::CacheOptions;
use disktracker::scan::{self, Progress, ScanOptions};
use disktracker::tree;

/// A chain `d/d/d/...` of `depth` directories, each holding a file of `len` bytes.
fn chain(top: &Path, depth: usize, len: usize) {
    use nix::fcntl::{OFlag, open, openat};
    use nix::sys::stat::{Mode, mkdirat};
    fs::create_dir(top).expect("mkdir");
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut fd = open(top, flags, Mode::empty()).expect("open");
    for _ in 0..depth {
        mkdirat(&fd, "d", Mode::from_bits_truncate(0o755)).expect("mkdirat");
        let f = openat(
            &fd,
            "f",
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .expect("create");
        nix::unistd::write(&f, &vec![b'x'; len]).expect("write");
        fd = openat(&fd, "d", flags, Mode::empty()).expect("openat");
    }
}

#[test]
fn totals_of_a_deep_chain_are_exact_at_every_level() {
    // Deep directories hand their totals up one level when done (linear), shallow ones
    // bubble at once: both must give every level its exact subtree total.
    let dir = tempfile::tempdir().expect("tempdir");
    let top = dir.path().join("chain");
    chain(&top, 1500, 3000);
    let opts = ScanOptions::default();
    let (t, _) = scan::scan_path(&top, &opts, &Progress::new()).expect("scan");
    let mut path = top.canonicalize().expect("canon");
    for level in 0..=1500usize {
        if [0, 1, 47, 48, 49, 50, 700, 1499, 1500].contains(&level) {
            let id = t.lookup(&path).expect("in the tree");
            assert_eq!(t.totals(id).disk, du(&path, false), "level {level}");
            assert_eq!(t.totals(id).apparent, du(&path, true), "level {level}");
            assert_eq!(
                t.totals(id).items,
                2 * (1500 - level) as u64,
                "level {level}"
            );
        }
        path.push("d");
    }
    remove_all(&top);
}

#[test]
fn a_deep_tree_with_side_branches_catches_up_fully_under_a_low_fd_limit() {
    // Regression: the catch-up took EMFILE for "unreadable" and dropped (and persisted the
    // loss of) whole subtrees.
    let dir = tempfile::tempdir().expect("tempdir");
    let top = dir.path().join("branchy");
    chain(&top, 2000, 10);
    // A side branch with content at every level.
    let mut p = top.clone();
    for _ in 0..2000 {
        fs::create_dir(p.join("side")).expect("mkdir");
        write(&p.join("side/s"), 100);
        p.push("d");
    }
    let cache = dir.path().join("cache");
    let run_limited = || {
        let script = format!(
            "ulimit -Sn 64 && ulimit -Hn 64 && exec {} scan --json --cache-dir {} {}",
            env!("CARGO_BIN_EXE_dtui"),
            cache.display(),
            top.display()
        );
        let out = run(Command::new("bash").args(["-c", &script]));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        (v, stderr)
    };
    let (v, stderr) = run_limited();
    assert_eq!(v["errors"], 0, "first scan: {stderr}");
    // A change deep down, then the catch-up under the same limit.
    write(&p.join("late"), 70_000);
    let (v, stderr) = run_limited();
    assert_eq!(v["errors"], 0, "catch-up: {stderr}");
    assert_eq!(v["items"], 4 * 2000 + 1, "{stderr}");
    assert_eq!(v["disk"].as_u64(), Some(du(&top, false)), "{stderr}");
    remove_all(&top);
}

#[test]
fn a_root_swapped_for_a_symlink_during_scans_never_counts_the_outside() {
    // Regression: the root was opened by path several times; a root swapped with a symlink
    // (renameat2 RENAME_EXCHANGE in a loop) made scans count another tree under its name.
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    let root = base.join("root");
    fs::create_dir(&root).expect("mkdir");
    for i in 0..300 {
        fs::create_dir(root.join(format!("in{i}"))).expect("mkdir");
        write(&root.join(format!("in{i}/f")), 10);
    }
    let outside = base.join("outside");
    fs::create_dir(&outside).expect("mkdir");
    for i in 0..50 {
        write(&outside.join(format!("OUTSIDE{i}")), 10);
    }
    let swap = base.join("swap");
    std::os::unix::fs::symlink(&outside, &swap).expect("symlink");
    let root_c = root.canonicalize().expect("canon");
    let stop = AtomicBool::new(false);
    let results = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let _ = nix::fcntl::renameat2(
                    nix::fcntl::AT_FDCWD,
                    &root,
                    nix::fcntl::AT_FDCWD,
                    &swap,
                    nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                );
            }
        });
        let mut results = Vec::new();
        for _ in 0..150 {
            let opts = ScanOptions {
                threads: 2,
                ..ScanOptions::default()
            };
            if let Ok((t, _)) = scan::scan_path(&root_c, &opts, &Progress::new()) {
                let names: Vec<Vec<u8>> =
                    t.children(t.root()).map(|c| t.name(c).to_vec()).collect();
                results.push((t.root_path(), t.totals(t.root()).items, names));
            }
        }
        stop.store(true, Ordering::Relaxed);
        results
    });
    assert!(!results.is_empty(), "some scans got through");
    for (path, items, names) in results {
        let outside_names = names.iter().filter(|n| n.starts_with(b"OUTSIDE")).count();
        if path == root_c {
            assert_eq!(outside_names, 0, "an outside entry counted under {path:?}");
            assert_eq!(items, 600);
        } else {
            assert_eq!(outside_names, names.len(), "a mixed tree under {path:?}");
        }
    }
}

#[test]
fn an_absurd_thread_count_is_clamped_not_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(&dir.path().join("f"), 10);
    for t in ["18446744073709551615", "100000000", "0"] {
        let (v, code, stderr) = scan_json(dir.path(), &["-t", t]);
        assert_eq!(code, 0, "-t {t}: {stderr}");
        assert_eq!(v["items"], 1);
    }
}

#[test]
fn a_cache_of_a_directory_replaced_at_the_same_path_is_not_trusted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("r");
    fs::create_dir(&root).expect("mkdir");
    write(&root.join("old"), 1000);
    let cache = CacheOptions {
        dir: Some(dir.path().join("cache")),
        disabled: false,
    };
    let opts = ScanOptions::default();
    let s = open_engine(&root, &cache, &opts, false).expect("open");
    let _ = s.engine.shutdown();
    remove_all(&root);
    fs::create_dir(&root).expect("mkdir");
    write(&root.join("new"), 5000);
    let s = open_engine(&root, &cache, &opts, true).expect("reopen");
    let t = tree::read(&s.engine.tree);
    assert_eq!(t.totals(t.root()).disk, du(&root, false));
    assert_eq!(t.totals(t.root()).items, 1);
}
