//! The cache's byte budget (`--cache-max-bytes`): a user who can write under a watched root
//! cannot grow its cache past the budget (mkdir/rmdir churn, 4 KiB paths), what is thinned
//! goes in the documented order, the files shrink on disk, and `cache list` counts them all.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use crossbeam_channel::Receiver;
use disktracker::cache::CachePaths;
use disktracker::history::{GONE, Sample};
use disktracker::store::budget::{self, CacheBudget};
use disktracker::store::{Commit, LogBatch, LogKind, LogRow, Retention, Store};

/// `dtui watch` with its stdout as a channel of lines.
fn spawn_watch(args: &[&str], cache: &Path, root: &Path) -> (Child, Receiver<String>) {
    let mut child = dtui()
        .arg("watch")
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .arg(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dtui watch");
    let rx = stdout_lines(&mut child);
    (child, rx)
}

/// Waits for a line starting with `prefix`; the lines read on the way are returned too.
fn wait_line(rx: &Receiver<String>, prefix: &str, limit: Duration) -> Result<String, String> {
    let deadline = Instant::now() + limit;
    let mut seen = String::new();
    while let Ok(l) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if l.starts_with(prefix) {
            return Ok(l);
        }
        seen.push_str(&l);
        seen.push('\n');
    }
    Err(seen)
}

/// The changes a `batch N: E events, C changes, ...` line reports.
fn changes_of(line: &str) -> u64 {
    line.split(", ")
        .find_map(|p| p.strip_suffix(" changes"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Waits until the watch has reported at least `n` changes in its batch lines.
fn wait_changes(rx: &Receiver<String>, n: u64, what: &str) {
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while got < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("{what}: {got} of {n} changes reported"));
        if line.starts_with("batch ") {
            got += changes_of(&line);
        }
    }
}

fn stop(mut child: Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("term");
    let status = child.wait().expect("wait");
    assert!(status.success(), "dtui watch stops cleanly: {status:?}");
}

/// A chain of 14 directories of 250-byte names below `root`: a path of 3.5 KiB.
fn deep_dir(root: &Path) -> PathBuf {
    let mut d = root.to_path_buf();
    for i in 0..14 {
        d.push(format!("{i:02}{}", "p".repeat(248)));
    }
    fs::create_dir_all(&d).expect("mkdir deep");
    d
}

/// The cache's files on disk, sampled every 10 ms until `stop` says so (or is dropped): the
/// largest total seen.
fn sample_bytes(paths: &CachePaths, stop: Receiver<()>) -> std::thread::JoinHandle<u64> {
    let (db, arena) = (paths.db.clone(), paths.arena.clone());
    std::thread::spawn(move || {
        let mut most = 0;
        loop {
            most = most.max(budget::cache_bytes(&db, &arena));
            if !matches!(
                stop.recv_timeout(Duration::from_millis(10)),
                Err(crossbeam_channel::RecvTimeoutError::Timeout)
            ) {
                return most;
            }
        }
    })
}

/// The budget the test gives, and how far past it the files may be between two checks: one
/// batch's transaction (the log rows of a batch are capped at a sixteenth of the budget, its
/// samples are a few KiB) and the WAL the checkpoints leave (a sixteenth).
const BUDGET: u64 = 1024 * 1024;
const SLACK: u64 = 256 * 1024;

#[test]
fn mkdir_rmdir_churn_and_long_paths_under_a_watched_root_keep_the_cache_within_its_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    fs::create_dir(&root).expect("mkdir");
    let root = root.canonicalize().expect("canon");
    let cache = dir.path().join("cache");
    let deep = deep_dir(&root);
    let paths = CachePaths::new(&cache, &root);
    let (child, rx) = spawn_watch(&["--cache-max-bytes", "1M"], &cache, &root);
    if let Err(seen) = wait_line(&rx, "tree: ", Duration::from_secs(30)) {
        let out = child.wait_with_output().expect("wait");
        panic!(
            "no tree line: {seen} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (done, stop_sampling) = crossbeam_channel::bounded(1);
    let sampler = sample_bytes(&paths, stop_sampling);
    // The attack: directories that live across batches (each one a size-history sample and a
    // tombstone, each name a log row) and files with 3.5 KiB paths (a log row each), made and
    // removed again, round after round. Unchecked, each round adds about 200 KiB.
    let rounds = 24;
    let dirs = 100;
    let files = 8;
    for r in 0..rounds {
        let name = |i: usize| root.join(format!("d{r:02}-{i:03}-{}", "x".repeat(140)));
        for i in 0..dirs {
            fs::create_dir(name(i)).expect("mkdir");
        }
        for i in 0..files {
            write(&deep.join(format!("f{r}-{i}")), 10);
        }
        wait_changes(&rx, (dirs + files) as u64, "made");
        for i in 0..dirs {
            fs::remove_dir(name(i)).expect("rmdir");
        }
        for i in 0..files {
            fs::remove_file(deep.join(format!("f{r}-{i}"))).expect("unlink");
        }
        wait_changes(&rx, (dirs + files) as u64, "removed");
    }
    let _ = done.send(());
    let most = sampler.join().expect("sampler");
    stop(child);
    let after = budget::cache_bytes(&paths.db, &paths.arena);
    eprintln!("cache bytes: at most {most} while churning, {after} after the clean close");
    assert!(
        most <= BUDGET + SLACK,
        "the cache stayed within its budget of {BUDGET} bytes (+{SLACK}) while churning: {most}"
    );
    assert!(after <= BUDGET, "and is within it after: {after}");

    // What was kept is the tree, whole: the next start's tree is the disk's.
    let out = run(dtui()
        .args(["scan", "--json", "--no-catch-up", "--cache-dir"])
        .arg(&cache)
        .arg(&root));
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        v["cache"].as_str().is_some_and(|c| c.starts_with("loaded")),
        "{v}"
    );
    assert_eq!(v["items"].as_u64(), Some(find_count(&root)), "{v}");
    assert_eq!(v["disk"].as_u64(), Some(du(&root, false)), "{v}");

    // `cache list` counts every file of the cache.
    let listed = disktracker::cache::list(&cache).expect("list");
    assert_eq!(listed.len(), 1);
    let on_disk: u64 = fs::read_dir(&cache)
        .expect("ls")
        .map(|e| e.expect("entry").metadata().expect("stat").len())
        .sum();
    assert_eq!(listed[0].bytes, on_disk, "{:?}", listed[0]);
}

fn log_row(path: Vec<u8>) -> LogRow {
    LogRow {
        kind: LogKind::Create,
        path,
        path2: None,
        backend: "inotify",
        bytes: None,
    }
}

/// A store holding `gone` directories that were made and deleted, `live` directories with a
/// history of `samples` each, and a log of `rows` rows of 2 KiB paths.
fn filled_store(path: &Path, gone: usize, live: usize, samples: usize, rows: usize) -> Store {
    let mut s = Store::open(path, b"/root").expect("open");
    let mut batch = Vec::new();
    let t0 = 1_700_000_000_000i64;
    for d in 0..gone {
        let dir = format!("gone-{d:05}-{}", "g".repeat(100)).into_bytes();
        for (t, items) in [(t0 + d as i64, 1), (t0 + 1_000_000 + d as i64, GONE)] {
            batch.push(Sample {
                dir: dir.clone(),
                time_ms: t,
                disk: 4096,
                apparent: 4096,
                items,
            });
        }
    }
    for d in 0..live {
        for k in 0..samples {
            batch.push(Sample {
                dir: format!("live-{d:03}").into_bytes(),
                time_ms: t0 + 60_000 * k as i64,
                disk: 4096 * k as u64,
                apparent: 4096,
                items: k as i64,
            });
        }
    }
    s.commit(&Commit {
        samples: batch,
        ..Commit::default()
    })
    .expect("samples");
    let log: Vec<LogRow> = (0..rows)
        .map(|i| log_row(format!("/root/{i:06}-{}", "l".repeat(2000)).into_bytes()))
        .collect();
    s.commit(&Commit {
        log: Some(LogBatch {
            batch: 1,
            rows: log,
            retention: Retention::default(),
        }),
        ..Commit::default()
    })
    .expect("log");
    s
}

fn count(db: &Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(db).expect("open");
    c.query_row(sql, [], |r| r.get(0)).expect("count")
}

#[test]
fn thinning_drops_deleted_directories_first_then_the_oldest_log_then_old_samples() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    let mut s = filled_store(&db, 2000, 50, 40, 400);
    let gone = || {
        count(
            &db,
            "SELECT count(DISTINCT dir) FROM size_history WHERE dir GLOB 'gone-*'",
        )
    };
    let log = || count(&db, "SELECT count(*) FROM mutation_log");
    let live = || {
        count(
            &db,
            "SELECT count(*) FROM size_history WHERE dir GLOB 'live-*'",
        )
    };
    assert_eq!((gone(), log(), live()), (2000, 400, 2000));
    let used = s.used_bytes().expect("used");

    // A little: only deleted directories go, the longest gone first.
    let t = s.thin_to(used - 100 * 1024).expect("thin");
    assert!(
        t.gone_dirs > 0 && t.log_rows == 0 && t.samples == 0,
        "{t:?}"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM size_history WHERE dir GLOB 'gone-00000-*'"
        ),
        0,
        "the longest gone went first"
    );
    assert_eq!((log(), live()), (400, 2000));

    // More: every deleted directory (about 1 MiB), then the oldest log rows (the newest
    // kept: the log is about 800 KiB).
    let t = s
        .thin_to(s.used_bytes().expect("used") - 1536 * 1024)
        .expect("thin");
    assert_eq!(gone(), 0, "{t:?}");
    assert!(t.log_rows > 0 && t.samples == 0, "{t:?}");
    let oldest: Vec<u8> = rusqlite::Connection::open(&db)
        .expect("open")
        .query_row(
            "SELECT path FROM mutation_log ORDER BY seq LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("oldest");
    assert!(
        !oldest.starts_with(b"/root/000000-"),
        "the oldest went first"
    );
    assert_eq!(live(), 2000);

    // Down to nothing: the log is empty and each live directory keeps its oldest and its
    // newest sample (no session: no baseline of one to keep).
    let t = s.thin_to(0).expect("thin");
    assert!(t.samples > 0, "{t:?}");
    assert_eq!(log(), 0);
    assert_eq!(live(), 100);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM size_history WHERE dir GLOB 'live-*' AND items = 39"
        ),
        50,
        "each directory keeps its newest sample"
    );
}

#[test]
fn thinning_samples_for_the_budget_never_makes_a_directory_new_or_moves_its_baseline() {
    // Regression: the budget's last step dropped the oldest samples of every directory but
    // its newest, so a directory whose samples before a moment all went was missing from the
    // baseline there: `dtui changes` called it new (its whole size as growth), and "since the
    // previous session" compared with whatever older sample was left. Like the tiers, the
    // budget keeps each directory's oldest sample and its newest before the newest session.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    // 50 directories with a sample a minute for 40 minutes; the session began at minute 30.
    let mut s = filled_store(&db, 0, 50, 40, 0);
    let t0 = 1_700_000_000_000i64;
    let session = t0 + 30 * 60_000 - 1;
    s.begin_session(session).expect("session");
    let before = s.baseline_at(session - 1).expect("baseline").0;
    let early = s.baseline_at(t0 + 5 * 60_000).expect("baseline").0;
    let t = s.thin_to(0).expect("thin");
    assert!(t.samples > 0, "{t:?}");
    let (after, first) = s.baseline_at(session - 1).expect("baseline");
    assert_eq!(first, Some(t0), "the history still begins where it began");
    assert_eq!(
        after.len(),
        50,
        "every directory is in the previous session's baseline"
    );
    for (d, b) in &before {
        assert_eq!(
            after[d].disk,
            b.disk,
            "{}: its baseline kept",
            String::from_utf8_lossy(d)
        );
    }
    let (after, _) = s.baseline_at(t0 + 5 * 60_000).expect("baseline");
    assert_eq!(
        after.keys().collect::<std::collections::BTreeSet<_>>(),
        early.keys().collect(),
        "no directory is missing (new) from an earlier baseline"
    );
    // What stays: the oldest, the baseline and the newest of each.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM size_history WHERE dir GLOB 'live-*'"
        ),
        150
    );
}

#[test]
fn a_thinned_cache_shrinks_on_disk_even_one_made_before_the_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("old.db");
    {
        // A cache as earlier versions made it: no auto_vacuum.
        let s = filled_store(&db, 0, 0, 0, 2000);
        drop(s);
        let c = rusqlite::Connection::open(&db).expect("open");
        c.execute_batch("PRAGMA auto_vacuum = NONE; VACUUM;")
            .expect("vacuum");
        let mode: i64 = c
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, 0);
    }
    let mut s = Store::open(&db, b"/root").expect("open");
    let before = budget::cache_bytes(&db, Path::new("/nonexistent"));
    assert!(before > 4_000_000, "{before}");
    s.thin_to(256 * 1024).expect("thin");
    s.shrink(0).expect("shrink");
    let after = budget::cache_bytes(&db, Path::new("/nonexistent"));
    assert!(
        after < 512 * 1024,
        "the free pages went back to the filesystem: {before} -> {after}"
    );
    let mode: i64 = rusqlite::Connection::open(&db)
        .expect("open")
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, 2, "converted once to incremental vacuum");

    // A new database has it from the start, and gives every free page back.
    let fresh = dir.path().join("new.db");
    let mut s = filled_store(&fresh, 0, 0, 0, 2000);
    let mode: i64 = rusqlite::Connection::open(&fresh)
        .expect("open")
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, 2);
    let before = budget::cache_bytes(&fresh, Path::new("/nonexistent"));
    s.thin_to(256 * 1024).expect("thin");
    s.shrink(0).expect("shrink");
    let after = budget::cache_bytes(&fresh, Path::new("/nonexistent"));
    assert!(after < 512 * 1024, "{before} -> {after}");
}

#[test]
fn one_batch_of_long_paths_is_logged_by_its_directories_past_its_share_of_the_budget() {
    let rows: Vec<LogRow> = (0..100)
        .map(|i| log_row(format!("/root/{}/f{i}", "d".repeat(4000)).into_bytes()))
        .chain([LogRow {
            kind: LogKind::Remove,
            path: b"/root/gone".to_vec(),
            path2: None,
            backend: "user",
            bytes: Some(4096),
        }])
        .collect();
    let capped = budget::cap_rows(&rows, budget::log_cap(BUDGET));
    let kinds: Vec<(&str, usize)> = capped
        .iter()
        .map(|r| (r.kind.as_str(), r.path.len()))
        .collect();
    assert_eq!(
        kinds,
        [("remove", 10), ("dirty-dir", 4006)],
        "the user's own row, then one row for the directory"
    );
    // Rows from many directories that do not fit even as directories: one rescan-root.
    let rows: Vec<LogRow> = (0..100)
        .map(|i| log_row(format!("/root/{i}{}/f", "d".repeat(4000)).into_bytes()))
        .collect();
    let capped = budget::cap_rows(&rows, 64 * 1024);
    assert_eq!(capped.len(), 1);
    assert_eq!(capped[0].kind.as_str(), "rescan-root");
    // Rows that fit are kept as they are.
    let small = vec![log_row(b"/root/a".to_vec())];
    assert_eq!(budget::cap_rows(&small, 64 * 1024).len(), 1);
}

#[test]
fn cache_max_bytes_takes_sizes_and_auto_and_refuses_anything_else() {
    for (s, want) in [
        ("auto", CacheBudget::Auto),
        ("1M", CacheBudget::Max(1 << 20)),
        ("1MiB", CacheBudget::Max(1 << 20)),
        ("512K", CacheBudget::Max(512 << 10)),
        ("2G", CacheBudget::Max(2 << 30)),
        ("1048576", CacheBudget::Max(1 << 20)),
    ] {
        assert_eq!(s.parse::<CacheBudget>(), Ok(want), "{s}");
    }
    assert_eq!(CacheBudget::Auto.limit(1000), 256 << 20);
    assert_eq!(CacheBudget::Auto.limit(100 << 20), 600 << 20);
    let dir = tempfile::tempdir().expect("tempdir");
    for bad in ["", "1X", "-1", "10", "99999999999999T"] {
        let out = run(dtui()
            .arg("scan")
            .arg(format!("--cache-max-bytes={bad}"))
            .arg(dir.path()));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains("--cache-max-bytes"), "{bad}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
