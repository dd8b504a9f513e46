//! The cache: a tree survives between runs byte for byte, catches up with what changed on
//! disk, and any damage to its files is detected and rebuilt, never trusted or panicked on.

mod common;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use common::*;
use disktracker::cache::{CacheOptions, CachePaths, Origin, Saved};
use disktracker::scan::ScanOptions;
use disktracker::tree::{self, NodeId, Tree};

/// (path bytes, kind, flags, own apparent, own disk, total apparent, total disk, items)
type Entry = (Vec<u8>, u8, u8, u64, u64, u64, u64, u64);

/// Every entry of a tree, sorted: two trees with equal listings are the same tree.
fn listing(t: &Tree) -> Vec<Entry> {
    let mut out: Vec<_> = t
        .live_ids()
        .map(|id: NodeId| {
            let n = t.node(id);
            let own = t.own(id);
            let tot = t.totals(id);
            (
                t.path_of(id).as_os_str().as_bytes().to_vec(),
                n.kind() as u8,
                n.flags & !tree::flags::HARDLINK_DUP,
                own.apparent,
                own.disk,
                tot.apparent,
                tot.disk,
                tot.items,
            )
        })
        .collect();
    out.sort();
    out
}

fn cache_opts(dir: &Path) -> CacheOptions {
    CacheOptions {
        dir: Some(dir.to_path_buf()),
        disabled: false,
    }
}

/// Opens through the cache, catches up, returns the listing and the origin, closes cleanly.
fn open_listing(root: &Path, cache: &Path) -> (Vec<Entry>, Origin) {
    let s = open_engine(root, &cache_opts(cache), &ScanOptions::default(), true).expect("open");
    let l = listing(&tree::read(&s.engine.tree));
    let origin = s.engine.origin.clone();
    assert!(
        matches!(s.engine.shutdown(), Saved::Clean { .. }),
        "the session closes clean"
    );
    (l, origin)
}

fn fresh_listing(root: &Path) -> Vec<Entry> {
    let s = open_engine(
        root,
        &CacheOptions {
            dir: None,
            disabled: true,
        },
        &ScanOptions::default(),
        true,
    )
    .expect("scan");
    listing(&tree::read(&s.engine.tree))
}

fn paths(cache: &Path, root: &Path) -> CachePaths {
    CachePaths::new(cache, &root.canonicalize().expect("canon"))
}

#[test]
fn a_cached_tree_reopens_identical_with_byte_exact_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    fs::create_dir(&root).expect("mkdir");
    awkward_tree(&root);
    let cache = dir.path().join("cache");
    let (first, origin) = open_listing(&root, &cache);
    assert!(matches!(origin, Origin::Scanned { .. }), "{origin:?}");
    let (second, origin) = open_listing(&root, &cache);
    assert!(matches!(origin, Origin::Mapped { .. }), "{origin:?}");
    assert_eq!(first, second);
    assert_eq!(first, fresh_listing(&root));
    // The odd names came back byte for byte.
    assert!(
        second
            .iter()
            .any(|e| e.0.ends_with(b"/dir\nwith\xffodd/inner"))
    );
}

#[test]
fn catching_up_after_changes_on_disk_equals_a_fresh_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    fs::create_dir(&root).expect("mkdir");
    awkward_tree(&root);
    fs::create_dir_all(root.join("keep/deep/er")).expect("mkdir");
    write(&root.join("keep/deep/er/grow"), 10);
    write(&root.join("keep/deep/er/shrink"), 100_000);
    write(&root.join("keep/gone"), 5000);
    fs::create_dir_all(root.join("olddir/x")).expect("mkdir");
    write(&root.join("olddir/x/f"), 7000);
    write(&root.join("becomes-dir"), 10);
    let cache = dir.path().join("cache");
    open_listing(&root, &cache);

    // Change everything a day can change.
    write(&root.join("keep/deep/er/grow"), 300_000);
    write(&root.join("keep/deep/er/shrink"), 10);
    fs::remove_file(root.join("keep/gone")).expect("rm");
    fs::rename(root.join("olddir"), root.join("newdir")).expect("rename dir");
    fs::remove_file(root.join("becomes-dir")).expect("rm");
    fs::create_dir_all(root.join("becomes-dir/inside")).expect("mkdir");
    write(&root.join("becomes-dir/inside/f"), 1234);
    fs::create_dir_all(root.join("brand/new/tree")).expect("mkdir");
    write(&root.join("brand/new/tree/f"), 99_999);
    fs::remove_dir_all(root.join("sub/deeper")).expect("rm -r");
    fs::hard_link(root.join("small"), root.join("keep/small-link")).expect("link");

    let (after, origin) = open_listing(&root, &cache);
    assert!(origin_loaded(&origin), "{origin:?}");
    assert_eq!(after, fresh_listing(&root));
    // And the caught-up state was saved: the next start maps it and finds nothing to do.
    let s = open_engine(&root, &cache_opts(&cache), &ScanOptions::default(), true).expect("open");
    assert!(
        matches!(s.engine.origin, Origin::Mapped { .. }),
        "{:?}",
        s.engine.origin
    );
    assert_eq!(listing(&tree::read(&s.engine.tree)), after);
    let stats = s.first.catch_up.expect("stats");
    assert!(!stats.changed(), "{stats:?}");
    assert!(matches!(s.engine.shutdown(), Saved::Clean { .. }));
}

#[test]
fn a_tree_rebuilt_from_the_database_after_deep_changes_has_exact_totals_before_any_catch_up() {
    // A batch writes the rows of what changed and of their parents, not of every ancestor
    // whose totals moved (totals are derived): the rebuild recomputes them from the rows.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    fs::create_dir_all(root.join("a/b/c/d/e")).expect("mkdir");
    write(&root.join("a/b/c/d/e/grow"), 10);
    write(&root.join("a/b/c/d/e/shrink"), 300_000);
    write(&root.join("a/b/c/d/gone"), 70_000);
    let cache = dir.path().join("cache");
    open_listing(&root, &cache);
    write(&root.join("a/b/c/d/e/grow"), 500_000);
    write(&root.join("a/b/c/d/e/shrink"), 1);
    fs::remove_file(root.join("a/b/c/d/gone")).expect("rm");
    fs::create_dir_all(root.join("a/b/new/deeper")).expect("mkdir");
    write(&root.join("a/b/new/deeper/f"), 12_345);
    open_listing(&root, &cache);
    fs::remove_file(paths(&cache, &root).arena).expect("rm arena");
    let s = open_engine(&root, &cache_opts(&cache), &ScanOptions::default(), false).expect("open");
    assert!(
        matches!(s.engine.origin, Origin::Rebuilt { .. }),
        "{:?}",
        s.engine.origin
    );
    assert_eq!(listing(&tree::read(&s.engine.tree)), fresh_listing(&root));
}

fn origin_loaded(o: &Origin) -> bool {
    matches!(o, Origin::Mapped { .. } | Origin::Rebuilt { .. })
}

#[test]
fn a_missing_arena_is_rebuilt_from_sqlite_and_both_missing_means_a_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    fs::create_dir(&root).expect("mkdir");
    awkward_tree(&root);
    let cache = dir.path().join("cache");
    let (first, _) = open_listing(&root, &cache);
    let p = paths(&cache, &root);
    fs::remove_file(&p.arena).expect("rm arena");
    let (again, origin) = open_listing(&root, &cache);
    assert!(matches!(origin, Origin::Rebuilt { .. }), "{origin:?}");
    assert_eq!(again, first);
    fs::remove_file(&p.arena).expect("rm arena");
    fs::remove_file(&p.db).expect("rm db");
    let (third, origin) = open_listing(&root, &cache);
    assert!(matches!(origin, Origin::Scanned { .. }), "{origin:?}");
    assert_eq!(third, first);
}

/// Damage of every kind to the arena file: detected, rebuilt from SQLite, same tree.
#[test]
fn a_damaged_arena_is_detected_and_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    fs::create_dir(&root).expect("mkdir");
    awkward_tree(&root);
    let cache = dir.path().join("cache");
    let (good, _) = open_listing(&root, &cache);
    let p = paths(&cache, &root);
    let pristine = fs::read(&p.arena).expect("read");
    let damages: Vec<(&str, Vec<u8>)> = vec![
        ("zero-length", Vec::new()),
        ("truncated header", pristine[..100].to_vec()),
        ("truncated body", pristine[..pristine.len() / 3].to_vec()),
        (
            "foreign",
            b"PK\x03\x04 this is a zip file, not ours".repeat(200),
        ),
        ("body bit flip", {
            let mut b = pristine.clone();
            b[4096 + 50] ^= 0x40;
            b
        }),
        ("header bit flip", {
            let mut b = pristine.clone();
            b[30] ^= 1;
            b
        }),
    ];
    for (what, bytes) in damages {
        fs::write(&p.arena, &bytes).expect("damage");
        let (l, origin) = open_listing(&root, &cache);
        assert!(
            matches!(origin, Origin::Rebuilt { .. }),
            "{what}: {origin:?}"
        );
        assert_eq!(l, good, "{what}");
    }
}

/// Damage to the database: the cache is rebuilt by a scan, with a message, and nothing
/// outside the cache directory is touched.
#[test]
fn a_damaged_foreign_or_newer_database_is_replaced_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    fs::create_dir(&root).expect("mkdir");
    awkward_tree(&root);
    let cache = dir.path().join("cache");
    let sentinel = dir.path().join("sentinel");
    write(&sentinel, 77);
    let (good, _) = open_listing(&root, &cache);
    let p = paths(&cache, &root);
    let pristine = fs::read(&p.db).expect("read");
    let foreign = {
        let f = dir.path().join("foreign.db");
        let c = rusqlite_connection(&f);
        drop(c);
        fs::read(&f).expect("read")
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("zero-length", Vec::new()),
        ("truncated", pristine[..pristine.len() / 2].to_vec()),
        ("garbage", b"definitely not sqlite ".repeat(300)),
        ("foreign sqlite", foreign),
    ];
    for (what, bytes) in cases {
        for f in &p.all_files()[..4] {
            let _ = fs::remove_file(f);
        }
        fs::write(&p.db, &bytes).expect("damage");
        let out = run(dtui()
            .args(["scan", "--json", "--cache-dir"])
            .arg(&cache)
            .arg(&root));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{what}: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(
            v["items"].as_u64(),
            Some(good[0].7),
            "{what}: the root's items"
        );
        let cache_said = v["cache"].as_str().expect("cache");
        assert!(cache_said.starts_with("new"), "{what}: {cache_said}");
        if what != "zero-length" {
            assert!(
                stderr.contains("cache database unusable"),
                "{what}: {stderr}"
            );
        }
        let (l, origin) = open_listing(&root, &cache);
        assert!(
            matches!(origin, Origin::Mapped { .. }),
            "{what}: {origin:?}"
        );
        assert_eq!(l, good, "{what}");
    }
    // A database from a newer dtui: not touched as if it were ours, replaced with a message.
    set_user_version(&p.db, 99);
    let out = run(dtui().args(["scan", "--cache-dir"]).arg(&cache).arg(&root));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("newer dtui"), "{stderr}");
    assert_eq!(fs::read(&sentinel).expect("sentinel").len(), 77);
    let mut left: Vec<PathBuf> = fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .collect();
    left.sort();
    assert_eq!(
        left,
        vec![
            dir.path().join("cache"),
            dir.path().join("foreign.db"),
            sentinel.clone(),
            root.clone()
        ]
    );
}

fn rusqlite_connection(path: &Path) -> std::process::Output {
    // A foreign SQLite database, made by the sqlite3 library through Python (always here).
    run(std::process::Command::new("python3").args([
        "-c",
        &format!(
            "import sqlite3; c = sqlite3.connect({:?}); c.execute('create table photos (id integer, data blob)'); c.commit()",
            path.display().to_string()
        ),
    ]))
}

fn set_user_version(db: &Path, v: u32) {
    let out = run(std::process::Command::new("python3").args([
        "-c",
        &format!(
            "import sqlite3; c = sqlite3.connect({:?}); c.execute('pragma user_version = {v}'); c.commit()",
            db.display().to_string()
        ),
    ]));
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn an_unwritable_cache_directory_means_running_without_a_cache_and_saying_why() {
    let dir = world_tempdir();
    let root = dir.path().join("tree");
    fs::create_dir(&root).expect("mkdir");
    write(&root.join("f"), 1000);
    fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let cache = dir.path().join("cache");
    fs::create_dir(&cache).expect("mkdir");
    // Owned by root, mode 0755: the unprivileged user can read it but not write it.
    let out = run(dtui_unprivileged()
        .args(["scan", "--json", "--cache-dir"])
        .arg(&cache)
        .arg(&root));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("running without a cache"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        v["cache"].as_str().expect("cache").starts_with("none"),
        "{v}"
    );
    assert_eq!(v["items"], 1);
    assert_eq!(
        fs::read_dir(&cache).expect("ls").count(),
        0,
        "nothing written"
    );
}

#[test]
fn a_full_cache_filesystem_means_running_without_a_cache_and_saying_why() {
    if !is_root() {
        eprintln!("skipped: mounting a tiny tmpfs needs root (CI runs as root)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    fs::create_dir(&root).expect("mkdir");
    for d in 0..20 {
        fs::create_dir(root.join(format!("d{d}"))).expect("mkdir");
        for f in 0..200 {
            write(&root.join(format!("d{d}/file-with-a-longish-name-{f}")), 10);
        }
    }
    let cache = dir.path().join("cache");
    fs::create_dir(&cache).expect("mkdir");
    // 64k: the database cannot even be created; 400k: the arena fits, the snapshot does not.
    for size in ["64k", "400k"] {
        let script = format!(
            "mount -t tmpfs -o size={size} none {cache} && chmod 700 {cache} && \
             {dtui} scan --json --cache-dir {cache} {root} && echo && \
             {dtui} scan --json --cache-dir {cache} {root}",
            cache = cache.display(),
            root = root.display(),
            dtui = env!("CARGO_BIN_EXE_dtui"),
        );
        let out = run(std::process::Command::new("unshare").args(["-m", "sh", "-c", &script]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{size}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            stderr.contains("disk is full") || stderr.contains("No space left"),
            "{size}: {stderr}"
        );
        let text = String::from_utf8_lossy(&out.stdout);
        for doc in text.lines().filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_str(doc).expect("json");
            assert_eq!(v["items"], 20 * 201, "{size}");
            assert_eq!(v["disk"].as_u64(), Some(du(&root, false)), "{size}");
            // Whatever the next run trusts is whole: the totals above are exact either way.
            let said = v["cache"].as_str().expect("cache");
            assert!(
                !said.contains("mapped"),
                "{size}: nothing half-saved is mapped: {said}"
            );
        }
    }
}

#[test]
fn cache_list_shows_every_root_and_clear_removes_one_or_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let (a, b) = (dir.path().join("alpha"), dir.path().join("beta"));
    for (r, n) in [(&a, 3), (&b, 5)] {
        fs::create_dir(r).expect("mkdir");
        for i in 0..n {
            write(&r.join(format!("f{i}")), 100);
        }
        let out = run(dtui().args(["scan", "--cache-dir"]).arg(&cache).arg(r));
        assert!(out.status.success(), "{out:?}");
    }
    let list = |c: &Path| {
        let out = run(dtui().args(["cache", "list", "--cache-dir"]).arg(c));
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = list(&cache);
    let a_line = text
        .lines()
        .find(|l| l.ends_with(&format!("  {}", a.display())))
        .unwrap_or_else(|| panic!("alpha listed: {text}"));
    // SIZE (number and unit), ENTRIES (below the root, as the browser's Items), AGE, USED,
    // ROOT
    assert_eq!(a_line.split_whitespace().nth(2), Some("3"), "{a_line}");
    assert!(text.contains(&b.display().to_string()), "{text}");

    let out = run(dtui()
        .args(["cache", "clear", "--cache-dir"])
        .arg(&cache)
        .arg(&a));
    assert!(out.status.success(), "{out:?}");
    let text = list(&cache);
    assert!(!text.contains(&a.display().to_string()), "{text}");
    assert!(text.contains(&b.display().to_string()), "{text}");
    let out = run(dtui()
        .args(["cache", "clear", "--all", "--cache-dir"])
        .arg(&cache));
    assert!(out.status.success(), "{out:?}");
    assert!(list(&cache).starts_with("no caches"));
    assert_eq!(
        fs::read_dir(&cache).expect("ls").count(),
        0,
        "every file removed"
    );
}

/// Rows in the database's entry journal (live batches append there; see `store::journal`).
fn journal_rows(db: &Path) -> i64 {
    let c = rusqlite::Connection::open(db).expect("open the database");
    c.query_row("SELECT count(*) FROM entries_journal", [], |r| r.get(0))
        .expect("count the journal")
}

#[test]
fn a_tree_rebuilt_from_entries_and_the_journal_equals_a_fresh_scan_before_and_after_a_fold() {
    // Batches append their rows to a journal, folded into `entries` once it holds a quarter
    // of the tree (at least 8,192 rows): a rebuild reads `entries` with the journal over it.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    for d in 0..30 {
        fs::create_dir_all(root.join(format!("d{d}"))).expect("mkdir");
        for f in 0..100 {
            write(&root.join(format!("d{d}/f{f}")), f * 10);
        }
    }
    let cache = dir.path().join("cache");
    let p = paths(&cache, &root);
    open_listing(&root, &cache);
    assert_eq!(journal_rows(&p.db), 0, "a first scan is a whole snapshot");
    let (mut saw_journal, mut saw_fold) = (false, false);
    let mut last = 0;
    for round in 1..=8usize {
        // Every file of half the directories rewritten, some removed, some added, a
        // directory gone and a new one.
        for d in (round % 2..30).step_by(2) {
            if !root.join(format!("d{d}")).exists() {
                continue;
            }
            for f in 0..100 {
                let path = root.join(format!("d{d}/f{f}"));
                if path.exists() && f % 7 == round % 7 {
                    fs::remove_file(&path).expect("rm");
                } else if path.exists() {
                    write(&path, f * 10 + round * 3);
                }
            }
            write(&root.join(format!("d{d}/new{round}")), round);
        }
        let gone = root.join(format!("d{}", 29 - round));
        let _ = fs::remove_dir_all(&gone);
        fs::create_dir_all(root.join(format!("n{round}/deeper"))).expect("mkdir");
        write(&root.join(format!("n{round}/deeper/f")), 4096 * round);
        open_listing(&root, &cache);
        let now = journal_rows(&p.db);
        eprintln!("round {round}: {now} journal rows");
        saw_journal |= now > 0;
        saw_fold |= now < last;
        last = now;
        // A rebuild (the arena gone) from entries plus the journal: the tree as it is.
        fs::remove_file(&p.arena).expect("rm arena");
        let s =
            open_engine(&root, &cache_opts(&cache), &ScanOptions::default(), false).expect("open");
        assert!(
            matches!(s.engine.origin, Origin::Rebuilt { .. }),
            "{:?}",
            s.engine.origin
        );
        assert_eq!(
            listing(&tree::read(&s.engine.tree)),
            fresh_listing(&root),
            "round {round}: journal of {now} rows"
        );
        assert!(matches!(s.engine.shutdown(), Saved::Clean { .. }));
    }
    assert!(saw_journal, "some rebuild read rows from the journal");
    assert!(saw_fold, "the journal was folded at least once");
}
