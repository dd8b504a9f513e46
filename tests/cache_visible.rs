//! The cache is visible and bounded (issue 23, item 6): a root's first cache says where it
//! goes and what it costs, once; `cache list` counts what the browser's `Items:` counts and
//! adds every cache up against the global budget; that budget removes the least recently
//! used other roots' caches, never one in use or the current one; and a root inside a cached
//! root opens from that cache, making no second one.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::difftree::compare::{compare, dump_json, escape_invalid_utf8};
use common::*;
use disktracker::cache::{CachePaths, list};

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `dtui ARGS... --cache-dir CACHE ROOT`, which must succeed: its stdout and stderr.
fn cached(args: &[&str], cache: &Path, root: &Path) -> (String, String) {
    cached_in(args, cache, root, None)
}

/// `cached` with all the caches kept within `budget` (`$DISKTRACKER_CACHE_TOTAL_MAX`).
fn cached_in(args: &[&str], cache: &Path, root: &Path, budget: Option<&str>) -> (String, String) {
    let mut cmd = dtui();
    if let Some(b) = budget {
        cmd.env("DISKTRACKER_CACHE_TOTAL_MAX", b);
    }
    let out = run(cmd.args(args).arg("--cache-dir").arg(cache).arg(root));
    let stderr = stderr_of(&out);
    assert!(
        out.status.success(),
        "{args:?} {}: {stderr}",
        root.display()
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// A directory of `files` files of 1 KiB under `root` (made), in `dirs` subdirectories.
fn tree_of(root: &Path, dirs: usize, files: usize) {
    for d in 0..dirs {
        let dir = root.join(format!("d{d}"));
        fs::create_dir_all(&dir).expect("mkdir");
        for f in 0..files {
            write(&dir.join(format!("f{f}")), 1024);
        }
    }
}

/// The database files in the cache directory, sorted.
fn databases(cache: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(cache)
        .expect("ls the cache")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| Path::new(n).extension().is_some_and(|e| e == "db"))
        .collect();
    v.sort();
    v
}

fn key_db(cache: &Path, root: &Path) -> PathBuf {
    CachePaths::new(cache, &root.canonicalize().expect("canon")).db
}

#[test]
fn a_first_cache_says_where_it_goes_and_its_cost_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    tree_of(&a, 2, 3);
    tree_of(&b, 2, 3);
    let first = |stderr: &str| -> Vec<String> {
        stderr
            .lines()
            .filter(|l| l.contains("caching the tree of"))
            .map(str::to_owned)
            .collect()
    };
    // `scan`, then `export`: one line on stderr the first time, naming the root, the
    // directory (escaped as every path shown) and the bytes per entry.
    let (_, stderr) = cached(&["scan"], &cache, &a);
    let lines = first(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    let line = &lines[0];
    assert!(line.starts_with("dtui: "), "{line}");
    assert!(line.contains(&a.display().to_string()), "{line}");
    assert!(line.contains(&cache.display().to_string()), "{line}");
    assert!(line.contains("112 bytes per entry"), "{line}");
    assert!(line.contains("1 GiB"), "the global budget: {line}");
    let (_, stderr) = cached(&["export", "-o", "-"], &cache, &b);
    assert_eq!(first(&stderr).len(), 1, "{stderr}");
    // Never again for either root.
    for root in [&a, &b, &a] {
        let (_, stderr) = cached(&["scan"], &cache, root);
        assert!(first(&stderr).is_empty(), "{stderr}");
    }
    // Without a cache there is nothing to say.
    let c = dir.path().join("c");
    tree_of(&c, 1, 1);
    let out = run(dtui().args(["scan", "--no-cache"]).arg(&c));
    assert!(first(&stderr_of(&out)).is_empty(), "{out:?}");
}

/// The `cache list` row of `root`: its columns (SIZE is a number and a unit).
fn row_of(text: &str, root: &Path) -> Vec<String> {
    let line = text
        .lines()
        .find(|l| l.ends_with(&format!("  {}", root.display())))
        .unwrap_or_else(|| panic!("{} listed: {text}", root.display()));
    line.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn cache_list_counts_what_the_browser_counts_and_adds_every_cache_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    tree_of(&a, 3, 7);
    tree_of(&b, 1, 2);
    awkward_tree(&b.join("d0"));
    for r in [&a, &b] {
        cached(&["scan"], &cache, r);
    }
    let out = run(dtui().args(["cache", "list", "--cache-dir"]).arg(&cache));
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for r in [&a, &b] {
        // The browser's Items is the root's item count: every entry below it, as `find`
        // counts them and `dtui scan` reports them.
        let (report, _) = cached(&["scan", "--json"], &cache, r);
        let v: serde_json::Value = serde_json::from_str(&report).expect("json");
        let row = row_of(&text, r);
        assert_eq!(row[2], find_count(r).to_string(), "{text}");
        assert_eq!(row[2], v["items"].to_string(), "{text}");
    }
    // The TOTAL row: the bytes of every file of every cache, the entries of all, the budget.
    let listed = list(&cache).expect("list");
    let bytes: u64 = listed.iter().map(|c| c.bytes).sum();
    let on_disk: u64 = fs::read_dir(&cache)
        .expect("ls")
        .map(|e| e.expect("entry").metadata().expect("stat").len())
        .sum();
    assert_eq!(bytes, on_disk);
    let total = text
        .lines()
        .find(|l| l.contains("TOTAL of 2 caches"))
        .unwrap_or_else(|| panic!("a TOTAL row: {text}"));
    let size = disktracker::format::size(bytes);
    assert!(total.trim_start().starts_with(&size), "{size}: {total}");
    let entries = find_count(&a) + find_count(&b);
    assert_eq!(
        total.split_whitespace().nth(2),
        Some(entries.to_string().as_str()),
        "{total}"
    );
    assert!(total.contains("budget 1 GiB"), "{total}");
    // The budget shown is the one the commands use.
    let out = run(dtui()
        .args(["cache", "list", "--cache-dir"])
        .arg(&cache)
        .env("DISKTRACKER_CACHE_TOTAL_MAX", "64M"));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("budget 64 MiB ($DISKTRACKER_CACHE_TOTAL_MAX)"),
        "{out:?}"
    );
    let out = run(dtui()
        .args(["cache", "list", "--cache-total-max", "none", "--cache-dir"])
        .arg(&cache));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("budget no limit"),
        "{out:?}"
    );
}

/// Sets every file of `root`'s cache to have been last touched `days` ago.
fn age_cache(cache: &Path, root: &Path, days: i64) {
    let paths = CachePaths::new(cache, &root.canonicalize().expect("canon"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let then =
        nix::sys::time::TimeSpec::new(i64::try_from(now).expect("a time") - days * 86_400 - 60, 0);
    for f in paths.all_files() {
        if f.exists() {
            nix::sys::stat::utimensat(
                nix::fcntl::AT_FDCWD,
                &f,
                &then,
                &then,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            )
            .expect("utimensat");
        }
    }
}

/// The bytes `root`'s cache takes, by `cache list`'s count.
fn bytes_of(cache: &Path, root: &Path) -> u64 {
    let root = root.canonicalize().expect("canon");
    list(cache)
        .expect("list")
        .into_iter()
        .find(|c| c.root == root)
        .map_or_else(|| panic!("{} has a cache", root.display()), |c| c.bytes)
}

#[test]
fn the_global_budget_removes_the_least_recently_used_other_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let roots: Vec<PathBuf> = ["old", "recent", "new"]
        .iter()
        .map(|n| dir.path().join(n))
        .collect();
    for r in &roots {
        tree_of(r, 4, 50);
    }
    let (old, recent, new) = (&roots[0], &roots[1], &roots[2]);
    cached(&["scan"], &cache, old);
    cached(&["scan"], &cache, recent);
    age_cache(&cache, old, 3);
    age_cache(&cache, recent, 1);
    // Room for two of the three caches (they are the same size, about).
    let one = bytes_of(&cache, old);
    let budget = (one * 5 / 2).to_string();
    let (_, stderr) = cached_in(&["scan"], &cache, new, Some(&budget));
    let removed: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("cache budget"))
        .collect();
    assert_eq!(removed.len(), 1, "{stderr}");
    assert!(
        removed[0].starts_with(&format!(
            "dtui: cache budget: removed the cache of {} (",
            old.display()
        )) && removed[0].ends_with(", last used 3 days ago)"),
        "{stderr}"
    );
    assert!(!key_db(&cache, old).exists(), "the oldest went");
    assert!(key_db(&cache, recent).exists(), "the newer one stays");
    assert!(key_db(&cache, new).exists(), "the current one stays");
    // Within the budget now: nothing more goes, and `old` (scanned again) is the newest.
    let (_, stderr) = cached_in(&["scan"], &cache, new, Some(&budget));
    assert!(!stderr.contains("cache budget"), "{stderr}");
    let (_, stderr) = cached_in(&["scan"], &cache, old, Some(&budget));
    assert!(
        stderr.contains(&format!("removed the cache of {} (", recent.display())),
        "now {} is the least recently used: {stderr}",
        recent.display()
    );
    // Once more, in the environment as a user sets it.
    age_cache(&cache, new, 2);
    let out = run(dtui()
        .args(["scan", "--cache-dir"])
        .arg(&cache)
        .arg(recent)
        .env("DISKTRACKER_CACHE_TOTAL_MAX", &budget));
    assert!(out.status.success(), "{out:?}");
    assert!(
        stderr_of(&out).contains(&format!("removed the cache of {} (", new.display())),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn the_global_budget_never_removes_a_cache_in_use_or_the_current_one() {
    use nix::fcntl::{Flock, FlockArg};
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let roots: Vec<PathBuf> = ["held", "idle", "current"]
        .iter()
        .map(|n| dir.path().join(n))
        .collect();
    for r in &roots {
        tree_of(r, 2, 20);
    }
    let (held, idle, current) = (&roots[0], &roots[1], &roots[2]);
    cached(&["scan"], &cache, held);
    cached(&["scan"], &cache, idle);
    age_cache(&cache, held, 5);
    age_cache(&cache, idle, 2);
    // A running dtui holds `held`'s lock (as a browser does while it runs).
    let lock_path = CachePaths::new(&cache, &held.canonicalize().expect("canon")).lock;
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&lock_path)
        .expect("open the lock");
    let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).expect("take the lock");
    // A budget nothing fits in: every cache but the held one and the current one goes.
    let (_, stderr) = cached_in(&["scan"], &cache, current, Some("1K"));
    let removed: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("cache budget"))
        .collect();
    assert_eq!(removed.len(), 1, "{stderr}");
    assert!(removed[0].contains(&idle.display().to_string()), "{stderr}");
    assert!(key_db(&cache, held).exists(), "in use: kept");
    assert!(key_db(&cache, current).exists(), "current: kept");
    assert!(!key_db(&cache, idle).exists());
    // Once it is let go, it is the next to go.
    drop(lock);
    let (_, stderr) = cached_in(&["scan"], &cache, current, Some("1K"));
    assert!(
        stderr.contains(&format!("removed the cache of {} (", held.display())),
        "{stderr}"
    );
    assert_eq!(
        databases(&cache),
        vec![
            key_db(&cache, current)
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned()
        ]
    );
    // `none`: no limit.
    cached_in(&["scan"], &cache, idle, Some("none"));
    assert_eq!(databases(&cache).len(), 2);
}

/// `dtui export` of `root` (through the cache when `cache` is given, else none) as a dump.
fn export_dump(root: &Path, cache: Option<&Path>) -> (common::difftree::compare::Dump, String) {
    let mut cmd = dtui();
    cmd.args(["export", "-o", "-"]);
    match cache {
        Some(c) => cmd.arg("--cache-dir").arg(c),
        None => cmd.arg("--no-cache"),
    };
    let out = run(cmd.arg(root));
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value =
        serde_json::from_str(&escape_invalid_utf8(&out.stdout)).expect("the export is JSON");
    (dump_json(&v), stderr_of(&out))
}

/// Every file in the cache directory with its size and modification time (a lock file's
/// time is when a dtui last used that cache: not a write).
fn snapshot(cache: &Path) -> Vec<(String, u64, i64, i64)> {
    let mut v: Vec<_> = fs::read_dir(cache)
        .expect("ls")
        .map(|e| {
            let e = e.expect("entry");
            let m = e.metadata().expect("stat");
            let name = e.file_name().to_string_lossy().into_owned();
            let time = if Path::new(&name).extension().is_some_and(|e| e == "lock") {
                (0, 0)
            } else {
                (m.mtime(), m.mtime_nsec())
            };
            (name, m.len(), time.0, time.1)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_root_inside_a_cached_root_opens_from_its_cache_without_a_second_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let parent = dir.path().join("parent");
    let sub = parent.join("inner/sub");
    fs::create_dir_all(&sub).expect("mkdir");
    awkward_tree(&sub);
    tree_of(&parent.join("beside"), 2, 3);
    // A hard link across the subtree's edge: charged outside in the parent's tree, inside in
    // the subtree's own.
    write(&sub.join("shared"), 50_000);
    fs::hard_link(sub.join("shared"), parent.join("0-shared-outside")).expect("link");
    cached(&["scan"], &cache, &parent);
    let dbs = databases(&cache);
    assert_eq!(dbs.len(), 1);

    // Changes inside the subtree and beside it since the parent's cache was written.
    write(&sub.join("small"), 9_000);
    fs::remove_file(sub.join("sub/medium")).expect("rm");
    tree_of(&sub.join("new"), 1, 4);
    write(&parent.join("beside/d0/f0"), 7_777);

    let before = snapshot(&cache);
    let (caught, stderr) = export_dump(&sub, Some(&cache));
    let said = format!(
        "dtui: opening {} from the cache of {}",
        sub.display(),
        parent.display()
    );
    assert!(stderr.lines().any(|l| l == said), "{stderr}");
    assert!(!stderr.contains("caching the tree of"), "{stderr}");
    assert_eq!(snapshot(&cache), before, "no cache made or written");
    let (fresh, _) = export_dump(&sub, None);
    let mut problems = Vec::new();
    compare(&caught, &fresh, &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");
    // `scan` reports the same, and says where its tree came from.
    let (report, _) = cached(&["scan", "--json"], &cache, &sub);
    let v: serde_json::Value = serde_json::from_str(&report).expect("json");
    assert!(
        v["cache"]
            .as_str()
            .is_some_and(|c| c.starts_with("loaded: from the cache of")),
        "{v}"
    );
    assert_eq!(v["items"].as_u64(), Some(find_count(&sub)), "{v}");
    assert_eq!(v["disk"].as_u64(), Some(du(&sub, false)), "{v}");
    assert_eq!(databases(&cache), dbs);
    // The parent, opened again, catches up as ever.
    let (caught, _) = export_dump(&parent, Some(&cache));
    let (fresh, _) = export_dump(&parent, None);
    let mut problems = Vec::new();
    compare(&caught, &fresh, &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_nested_root_gets_its_own_cache_when_the_parents_is_in_use_or_kept_otherwise() {
    use nix::fcntl::{Flock, FlockArg};
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let parent = dir.path().join("parent");
    let sub = parent.join("sub");
    tree_of(&sub, 2, 3);
    cached(&["scan"], &cache, &parent);

    // Other excludes: the parent's tree is not what a scan of the subtree would be.
    let out = run(dtui()
        .args(["scan", "--exclude", "f1", "--cache-dir"])
        .arg(&cache)
        .arg(&sub));
    assert!(out.status.success(), "{out:?}");
    assert!(!stderr_of(&out).contains("opening"), "{}", stderr_of(&out));
    assert!(key_db(&cache, &sub).exists(), "a cache of its own");
    run(dtui()
        .args(["cache", "clear", "--cache-dir"])
        .arg(&cache)
        .arg(&sub));
    assert!(!key_db(&cache, &sub).exists());

    // The parent's cache in use by another dtui: today's way, a cache of its own.
    let lock_path = CachePaths::new(&cache, &parent.canonicalize().expect("canon")).lock;
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&lock_path)
        .expect("open the lock");
    let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).expect("take the lock");
    let (_, stderr) = cached(&["scan"], &cache, &sub);
    assert!(!stderr.contains("opening"), "{stderr}");
    assert!(stderr.contains("caching the tree of"), "{stderr}");
    drop(lock);
    // And a root with a cache of its own keeps using it.
    let (report, stderr) = cached(&["scan", "--json"], &cache, &sub);
    assert!(!stderr.contains("opening"), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&report).expect("json");
    assert!(
        v["cache"]
            .as_str()
            .is_some_and(|c| c.starts_with("loaded: arena mapped")),
        "{v}"
    );
}

/// The browser on `root` until its list shows `name`, then `q`: the terminal's own screen
/// after it quit (what was said before the browser took the alternate screen).
fn browse(cache: &Path, root: &Path, name: &str) -> String {
    use common::pty::{NO_ENV, Pty};
    let args = [
        "--watch-backend",
        "none",
        "--cache-dir",
        cache.to_str().expect("utf-8"),
        root.to_str().expect("utf-8"),
    ];
    let mut pty = Pty::dtui(&args, NO_ENV, 20, 160);
    pty.wait_for("the list", |s| s.contains(name) && s.contains("Items:"));
    assert_eq!(pty.quit(), 0);
    pty.screen()
}

#[test]
fn the_browser_says_it_on_the_terminal_before_it_takes_the_screen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let parent = dir.path().join("parent");
    tree_of(&parent.join("sub"), 2, 2);
    let screen = browse(&cache, &parent, "sub");
    let said = format!(
        "dtui: caching the tree of {} in {}",
        parent.display(),
        cache.display()
    );
    assert!(screen.contains(&said), "{screen}");
    let screen = browse(&cache, &parent, "sub");
    assert!(!screen.contains("caching the tree of"), "once: {screen}");
    let screen = browse(&cache, &parent.join("sub"), "d1");
    assert!(
        screen.contains(&format!(
            "dtui: opening {} from the cache of {}",
            parent.join("sub").display(),
            parent.display()
        )),
        "{screen}"
    );
    assert_eq!(databases(&cache).len(), 1);
}
