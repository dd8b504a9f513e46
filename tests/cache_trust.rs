//! A loaded cache is checked, not trusted (issue 8, section 1): forged names and totals are
//! rejected or recomputed; `cache list` reads only and `cache clear` touches only the files
//! dtui named, finds a root that is gone, and asks before removing everything.

mod cache_support;
mod common;

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cache_support::*;
use common::*;
use crossbeam_channel::{bounded, unbounded};
use disktracker::cache::{CacheOptions, CachePaths, Origin, Saved};
use disktracker::scan::ScanOptions;
use disktracker::tree::{self, Arena, NodeId, Tree};

type Entry = (Vec<u8>, u8, u8, u64, u64, u64, u64, u64);

/// Every entry with its sizes and totals, sorted: equal listings are the same tree.
fn listing(t: &Tree) -> Vec<Entry> {
    use std::os::unix::ffi::OsStrExt;
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

/// Opens through the cache, optionally catches up, closes cleanly.
fn open_listing(root: &Path, cache: &Path, catch_up: bool) -> (Vec<Entry>, Origin, Vec<String>) {
    let s = open_engine(root, &cache_opts(cache), &ScanOptions::default(), catch_up).expect("open");
    let l = listing(&tree::read(&s.engine.tree));
    let (origin, warnings) = (s.engine.origin.clone(), s.engine.warnings.clone());
    assert!(
        matches!(s.engine.shutdown(), Saved::Clean { .. }),
        "closes clean"
    );
    (l, origin, warnings)
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

/// Runs an `UPDATE entries ...` on the stored tree: the rows of `entries` and the newer
/// images of the same entries in the journal that live batches append to.
fn sql(db: &Path, statement: &str) {
    let c = rusqlite::Connection::open(db).expect("open db");
    let n = c.execute(statement, []).expect("forge");
    let journal = statement.replacen("UPDATE entries ", "UPDATE entries_journal ", 1);
    let m = c.execute(&journal, []).expect("forge the journal");
    assert!(n + m > 0, "{statement} changed nothing");
}

#[test]
fn forged_names_in_the_database_are_rejected_and_the_tree_equals_a_fresh_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    small_tree(&root);
    // Outside the root, where a `..` would lead.
    write(&dir.path().join("outside-file"), 123_456);
    let cache = dir.path().join("cache");
    let fresh = fresh_listing(&root);
    let p = CachePaths::new(&cache, &root.canonicalize().expect("canon"));
    for (forged, of) in [
        ("X'2E2E'", "sub"),     // ..
        ("X'612F62'", "small"), // a/b
        ("X''", "small"),       // empty
        ("X'2E'", "sub"),       // .
        ("X'610062'", "small"), // a NUL b
    ] {
        for catch_up in [false, true] {
            open_listing(&root, &cache, true);
            fs::remove_file(&p.arena).expect("rm arena");
            sql(
                &p.db,
                &format!("UPDATE entries SET name = {forged} WHERE name = CAST('{of}' AS BLOB)"),
            );
            let (l, origin, warnings) = open_listing(&root, &cache, catch_up);
            assert_eq!(l, fresh, "{forged}, catch-up {catch_up}: {origin:?}");
            assert!(
                matches!(origin, Origin::Scanned { .. }),
                "{forged}: {origin:?}"
            );
            assert!(
                warnings
                    .iter()
                    .any(|w| w.contains("cache unusable") && w.contains("inconsistent")),
                "{forged}: {warnings:?}"
            );
        }
    }
}

#[test]
fn a_forged_name_in_the_arena_is_rejected_and_the_tree_rebuilt_from_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    small_tree(&root);
    let cache = dir.path().join("cache");
    let (good, _, _) = open_listing(&root, &cache, true);
    let p = CachePaths::new(&cache, &root.canonicalize().expect("canon"));
    for forged in [&b".."[..], b"a/b", b"."] {
        // Rewritten through the library so every checksum is right: only the name is wrong.
        let mut t = Tree::from_arena(Arena::open(&p.arena).expect("open")).expect("valid");
        let small = t
            .live_ids()
            .find(|&id| t.name(id) == b"small")
            .expect("small");
        t.arena_mut()
            .reserve(0, 0, forged.len() as u64)
            .expect("room");
        let off = t.arena_mut().push_name(forged);
        let node = &mut t.arena_mut().nodes_mut()[small.index()];
        node.name_off = off as u32;
        node.name_len = forged.len() as u8;
        t.save(&p.arena).expect("save");
        let (l, origin, _) = open_listing(&root, &cache, false);
        match &origin {
            Origin::Rebuilt { why, .. } => assert!(why.contains("inconsistent"), "{why}"),
            o => panic!("{forged:?}: rebuilt from the database, not {o:?}"),
        }
        assert_eq!(l, good, "{forged:?}");
    }
}

#[test]
fn forged_totals_in_the_database_are_recomputed_when_the_arena_is_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    small_tree(&root);
    fs::create_dir(root.join("sub/deeper/empty")).expect("mkdir");
    let cache = dir.path().join("cache");
    let fresh = fresh_listing(&root);
    let p = CachePaths::new(&cache, &root.canonicalize().expect("canon"));
    open_listing(&root, &cache, true);
    fs::remove_file(&p.arena).expect("rm arena");
    // Every directory, the root included, with totals that no scan would give.
    sql(
        &p.db,
        "UPDATE entries SET total_size = 999999999, total_disk = 888888888, items = 77 WHERE kind = 1",
    );
    let (l, origin, _) = open_listing(&root, &cache, false);
    assert!(matches!(origin, Origin::Rebuilt { .. }), "{origin:?}");
    assert_eq!(l, fresh, "recomputed without any catch-up");
    // And it stays right through later starts with catch-up (the arena was saved).
    let (l, origin, _) = open_listing(&root, &cache, true);
    assert!(matches!(origin, Origin::Mapped { .. }), "{origin:?}");
    assert_eq!(l, fresh);
}

/// A database made by Python's sqlite3, with the given statements.
fn python_db(path: &Path, statements: &str) {
    let out = run(Command::new("python3").args([
        "-c",
        &format!(
            "import sqlite3; c = sqlite3.connect({:?}); c.executescript({statements:?}); c.commit()",
            path.display().to_string()
        ),
    ]));
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn cache_list_reads_only_prints_a_header_and_marks_roots_that_are_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let (a, b) = (
        dir.path().join("alpha"),
        dir.path().join("beta-longer-name"),
    );
    for r in [&a, &b] {
        small_tree(r);
        let (_, stderr) = scan_cached(&mut dtui(), &cache, r);
        assert!(!stderr.contains("warning"), "{stderr}");
    }
    remove_all(&b);
    // Group-readable (not writable): listed as it is, not narrowed, since listing writes
    // nothing.
    let db = CachePaths::new(&cache, &a.canonicalize().expect("canon")).db;
    fs::set_permissions(&db, std::os::unix::fs::PermissionsExt::from_mode(0o640)).expect("chmod");
    let before: Vec<_> = modes(&cache)
        .into_iter()
        .map(|(n, m, u)| (n.clone(), m, u, fs::read(cache.join(&n)).expect("read")))
        .collect();
    let out = run_within(
        dtui().args(["cache", "list", "--cache-dir"]).arg(&cache),
        20,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let after: Vec<_> = modes(&cache)
        .into_iter()
        .map(|(n, m, u)| (n.clone(), m, u, fs::read(cache.join(&n)).expect("read")))
        .collect();
    assert_eq!(
        before, after,
        "no file created or changed (no -wal, no -shm)"
    );
    let lines: Vec<&str> = text.lines().collect();
    // The header, a row per cache, the TOTAL row.
    assert_eq!(lines.len(), 4, "{text}");
    let root_col = lines[0].find("ROOT").expect("a header row");
    for h in ["SIZE", "ENTRIES", "AGE"] {
        assert!(lines[0].contains(h), "{text}");
    }
    for (l, r) in [(lines[1], &a), (lines[2], &b)] {
        assert_eq!(l.find('/'), Some(root_col), "aligned under ROOT: {text}");
        assert!(
            l[root_col..].starts_with(&r.display().to_string()),
            "{text}"
        );
        // Below the root, as the browser's Items counts them.
        assert_eq!(l.split_whitespace().nth(2), Some("6"), "entries: {text}");
    }
    assert!(
        !lines[1].contains("gone") && lines[2].ends_with("(gone)"),
        "{text}"
    );
}

#[test]
fn cache_clear_touches_only_dtui_files_and_finds_a_root_that_is_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let (a, b) = (dir.path().join("alpha"), dir.path().join("beta"));
    for r in [&a, &b] {
        small_tree(r);
        scan_cached(&mut dtui(), &cache, r);
    }
    let ours_a = names(&cache);
    // Things that look like caches but are not dtui's.
    python_db(
        &cache.join("photos.db"),
        "create table photos (id integer);",
    );
    python_db(
        &cache.join("other-0123456789abcdef.db"),
        "create table meta (key text primary key, value blob); \
         insert into meta values ('root', '/somewhere/else');",
    );
    for stray in [
        "stray-0123456789abcdef.lock",
        "stray-0123456789abcdef.arena",
        "notes.txt",
    ] {
        fs::write(cache.join(stray), b"not dtui's").expect("write");
    }
    nix::unistd::mkfifo(
        &cache.join("fifo-0123456789abcdef.db"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    let strays = [
        "fifo-0123456789abcdef.db",
        "notes.txt",
        "other-0123456789abcdef.db",
        "photos.db",
        "stray-0123456789abcdef.arena",
        "stray-0123456789abcdef.lock",
    ];
    let list = run_within(
        dtui().args(["cache", "list", "--cache-dir"]).arg(&cache),
        20,
    );
    let text = String::from_utf8_lossy(&list.stdout).into_owned();
    assert_eq!(
        text.lines().count(),
        4,
        "only the two caches (and the TOTAL row): {text}"
    );

    // Without a PATH and without a terminal: refused (exit 2), nothing removed.
    let out = run_within(
        dtui().args(["cache", "clear", "--cache-dir"]).arg(&cache),
        20,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("--all"), "{}", stderr_of(&out));
    assert!(names(&cache).len() == ours_a.len() + strays.len());

    // A root that no longer exists is found by its stored path.
    remove_all(&a);
    let out = run_within(
        dtui()
            .args(["cache", "clear", "--cache-dir"])
            .arg(&cache)
            .arg(&a),
        20,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "removed 1 cache of {} from {}\n",
            a.display(),
            cache.display()
        ),
    );
    // Again: there is none left, and it says so (not "removed 0 cache(s)").
    let out = run_within(
        dtui()
            .args(["cache", "clear", "--cache-dir"])
            .arg(&cache)
            .arg(&a),
        20,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("no cache of {} in {}\n", a.display(), cache.display()),
    );
    let left = names(&cache);
    assert!(!left.iter().any(|n| n.starts_with("alpha-")), "{left:?}");
    assert!(left.iter().any(|n| n.starts_with("beta-")), "{left:?}");

    let out = run_within(
        dtui()
            .args(["cache", "clear", "--all", "--cache-dir"])
            .arg(&cache),
        20,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(names(&cache), strays, "only dtui's own files went");
}

#[test]
fn cache_clear_without_a_path_asks_on_a_terminal() {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let root = dir.path().join("tree");
    small_tree(&root);
    scan_cached(&mut dtui(), &cache, &root);
    let before = names(&cache);
    for (answer, kept) in [("n\r", true), ("y\r", false)] {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 24,
                cols: 100,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_dtui"));
        cmd.args(["cache", "clear", "--cache-dir"]);
        cmd.arg(&cache);
        let mut child = pair.slave.spawn_command(cmd).expect("spawn");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("reader");
        let mut writer = pair.master.take_writer().expect("writer");
        let (tx, rx) = unbounded();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !String::from_utf8_lossy(&seen).contains("[y/N]") {
            let left = deadline.saturating_duration_since(Instant::now());
            let bytes = rx.recv_timeout(left).expect("the question");
            seen.extend(bytes);
        }
        writer.write_all(answer.as_bytes()).expect("answer");
        writer.flush().expect("flush");
        let (done_tx, done_rx) = bounded(1);
        std::thread::spawn(move || {
            let _ = done_tx.send(child.wait());
        });
        let status = done_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("dtui exits")
            .expect("status");
        assert!(status.success(), "{answer:?}");
        drop(pair.master);
        if kept {
            assert_eq!(names(&cache), before, "{answer:?}");
        } else {
            assert!(names(&cache).is_empty(), "{:?}", names(&cache));
        }
    }
}
