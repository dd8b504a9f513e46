//! `dtui changes` across real runs with a real cache: growth, shrinkage, a deleted directory,
//! nothing changed; `--since` parsing; the size history stays bounded.

mod common;

use std::path::Path;

use common::*;
use disktracker::history::{self, Base, GONE, Recorder, Sample, Since};
use disktracker::store::Store;

/// The samples-only transaction these tests write (`Store::commit` with samples alone).
trait WriteSamples {
    fn write_samples(&mut self, samples: &[Sample]) -> Result<u64, disktracker::store::StoreError>;
}

impl WriteSamples for Store {
    fn write_samples(&mut self, samples: &[Sample]) -> Result<u64, disktracker::store::StoreError> {
        self.commit(&disktracker::store::Commit {
            samples: samples.to_vec(),
            ..disktracker::store::Commit::default()
        })
    }
}

fn changes(root: &Path, cache: &Path, extra: &[&str]) -> (String, String, i32) {
    let out = run(dtui()
        .arg("changes")
        .arg("--cache-dir")
        .arg(cache)
        .args(extra)
        .arg(root));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// The line naming `dir` (as printed: relative, ending in `/`).
fn line_for<'a>(out: &'a str, dir: &str) -> Option<&'a str> {
    out.lines().find(|l| {
        let name = l.trim_start().split_once("  ").map(|x| x.1);
        name.is_some_and(|n| n == dir || n.starts_with(&format!("{dir}  (")))
    })
}

fn tree(root: &Path) {
    for d in ["grower/sub", "shrinker", "doomed/inner", "same"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    write(&root.join("shrinker/big"), 3_000_000);
    write(&root.join("doomed/inner/f"), 200_000);
    write(&root.join("same/x"), 5000);
}

#[test]
fn changes_lists_growth_shrinkage_and_a_deleted_directory_largest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, cache) = (dir.path().join("root"), dir.path().join("cache"));
    tree(&root);
    let (out, err, code) = changes(&root, &cache, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("no size history before this run"), "{out}");

    write(&root.join("grower/sub/new"), 5_000_000);
    std::fs::File::options()
        .write(true)
        .open(root.join("shrinker/big"))
        .and_then(|f| f.set_len(1000))
        .expect("truncate");
    remove_all(&root.join("doomed"));
    let (out, err, code) = changes(&root, &cache, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let grower = line_for(&out, "grower/").expect(&out);
    assert!(grower.trim_start().starts_with("+4.7"), "{out}");
    let shrinker = line_for(&out, "shrinker/").expect(&out);
    assert!(shrinker.trim_start().starts_with("-2.8"), "{out}");
    let doomed = line_for(&out, "doomed/").expect(&out);
    assert!(
        doomed.contains("-2") && doomed.ends_with("(deleted)"),
        "{out}"
    );
    assert!(line_for(&out, "doomed/inner/").is_some(), "{out}");
    assert!(line_for(&out, "same/").is_none(), "unchanged listed: {out}");
    // Largest absolute change first.
    let first = out.lines().next().expect("a line");
    assert!(first.ends_with("grower/"), "{out}");
    let pos = |d: &str| out.find(line_for(&out, d).expect(d)).expect(d);
    assert!(
        pos("grower/") < pos("shrinker/") && pos("shrinker/") < pos("doomed/"),
        "{out}"
    );

    // A query never moves the baseline: asked again, the same changes.
    let (again, err, code) = changes(&root, &cache, &[]);
    assert_eq!(code, 0, "{again}{err}");
    assert_eq!(again, out, "a second `dtui changes` moved the baseline");
    // A watch is a session: after it, nothing changed since.
    watch_session(&root, &cache);
    let (after, err, code) = changes(&root, &cache, &[]);
    assert_eq!(code, 0, "{after}{err}");
    assert_eq!(
        after.trim(),
        "no changes since the previous session",
        "{after}"
    );

    // Over a period longer than the history: from its beginning, with a note.
    let (out, err, code) = changes(&root, &cache, &["--since", "2d"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        line_for(&out, "grower/").expect(&out).contains("+4.7"),
        "{out}"
    );
    assert!(err.contains("size history begins"), "{err}");
}

#[test]
fn a_run_that_shows_the_cache_without_looking_at_the_disk_writes_no_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, cache) = (dir.path().join("root"), dir.path().join("cache"));
    tree(&root);
    let scan = |extra: &[&str]| {
        let out = run(dtui()
            .arg("scan")
            .args(extra)
            .arg("--cache-dir")
            .arg(&cache)
            .arg(&root));
        assert!(out.status.success(), "{out:?}");
    };
    let sessions = || -> i64 {
        let c = rusqlite::Connection::open(only_db(&cache)).expect("open db");
        c.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
            .expect("count")
    };
    scan(&[]);
    scan(&[]);
    // Queries record what they see but are no sessions (they never move the baseline).
    assert_eq!(sessions(), 0, "a scan and a catch-up are queries");
    watch_session(&root, &cache);
    assert_eq!(sessions(), 1, "a watch is a session");
    // It saw nothing: no session (and no write, so no fsync on the way out).
    scan(&["--no-catch-up"]);
    assert_eq!(sessions(), 1);
}

/// Runs `dtui watch` until its first pass is done, then stops it as a user would (SIGINT).
fn watch_session(root: &Path, cache: &Path) {
    let mut child = dtui()
        .arg("watch")
        .arg("--cache-dir")
        .arg(cache)
        .arg(root)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn dtui watch");
    let rx = stdout_lines(&mut child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen = String::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            Ok(l) if l.starts_with("tree: ") => break,
            Ok(l) => {
                seen.push_str(&l);
                seen.push('\n');
            }
            Err(_) => {
                let _ = child.kill();
                panic!("dtui watch never reported its tree: {seen}");
            }
        }
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("interrupt");
    let status = child.wait().expect("wait for dtui watch");
    assert!(status.success(), "dtui watch ended with {status}");
}

#[test]
fn changes_escapes_hostile_directory_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, cache) = (dir.path().join("root"), dir.path().join("cache"));
    std::fs::create_dir_all(&root).expect("mkdir");
    let _ = changes(&root, &cache, &[]);
    let evil = root.join("\x1b[2Jevil");
    std::fs::create_dir(&evil).expect("mkdir");
    write(&evil.join("f"), 100_000);
    let (out, _, code) = changes(&root, &cache, &[]);
    assert_eq!(code, 0);
    assert!(!out.contains('\x1b'), "{out:?}");
    assert!(out.contains("evil/  (new)"), "{out}");
}

#[test]
fn since_takes_last_and_durations_and_refuses_anything_else() {
    assert_eq!(history::parse_since("last"), Ok(Since::Last));
    let secs = |s: &str| match history::parse_since(s) {
        Ok(Since::Ago(d)) => d.as_secs(),
        other => panic!("{s}: {other:?}"),
    };
    assert_eq!(secs("30m"), 1800);
    assert_eq!(secs("1h"), 3600);
    assert_eq!(secs("2d"), 172_800);
    assert_eq!(secs("1w"), 604_800);
    for bad in [
        "",
        "h",
        "5",
        "5x",
        "-1h",
        "0h",
        "1.5h",
        "lastt",
        "99999999999999999999d",
    ] {
        assert!(history::parse_since(bad).is_err(), "{bad}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for bad in ["5x", "yesterday", "0d"] {
        let out = run(dtui()
            .args(["changes", "--since", bad, "--cache-dir"])
            .arg(dir.path().join("cache"))
            .arg(dir.path()));
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--since"),
            "{out:?}"
        );
    }
    let out = run(dtui().args(["changes", "--no-cache"]).arg(dir.path()));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// A store with a session at `start` and `n` per-minute samples of one directory, ending at
/// `now`.
fn store_with_samples(path: &Path, now: i64, n: i64, every: i64) -> Store {
    let mut store = Store::open(path, b"/r").expect("open");
    let samples: Vec<Sample> = (0..n)
        .map(|i| Sample {
            dir: b"a".to_vec(),
            time_ms: now - i * every,
            disk: i as u64,
            apparent: i as u64,
            items: 1,
        })
        .collect();
    store.write_samples(&samples).expect("write");
    store
}

#[test]
fn history_is_thinned_to_minutes_hours_and_days_by_age() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = 1_900_000_000_000i64;
    // One sample a minute for 200 days.
    let n = 200 * 24 * 60;
    let mut store = store_with_samples(&dir.path().join("h.db"), now, n, 60_000);
    assert_eq!(store.history_len().expect("len"), n as u64);
    store.begin_session(now).expect("session");
    store.thin_history(now).expect("thin");
    let kept = store.history_len().expect("len");
    // 120 minutes + 46 hours + 88 days + the one beyond + the oldest, give or take a
    // bucket at each tier's edge.
    assert!((250..=265).contains(&kept), "{kept} samples kept");
    // The newest is kept exactly (it is the current state).
    let (base, first) = store.baseline_at(now).expect("baseline");
    assert_eq!(base[&b"a".to_vec()].disk, 0);
    assert_eq!(first, Some(now - (n - 1) * 60_000), "the oldest is kept");
    // A baseline an hour back is the sample of an hour ago, a minute off at most.
    let (base, _) = store.baseline_at(now - 3_600_000).expect("baseline");
    assert!((60..=61).contains(&base[&b"a".to_vec()].disk), "{base:?}");
    // Thinning again changes nothing.
    store.thin_history(now).expect("thin");
    assert_eq!(store.history_len().expect("len"), kept);
}

#[test]
fn a_deleted_directory_keeps_its_first_and_last_samples_and_its_tombstone() {
    // Regression (of the collapse): keeping only the last sample and the tombstone lost when
    // the directory began, so a baseline from before its last change (`--since 10m` for one
    // that changed 1 minute before it went) had no such directory, and its deletion was not
    // reported.
    let dir = tempfile::tempdir().expect("tempdir");
    let now = 1_900_000_000_000i64;
    // Thirty samples a minute apart, then deleted; a live directory's thirty stay.
    let mut store = store_with_samples(&dir.path().join("h.db"), now - 60_000, 30, 60_000);
    let live: Vec<Sample> = (0..30)
        .map(|i| Sample {
            dir: b"b".to_vec(),
            time_ms: now - i * 60_000,
            disk: i as u64,
            apparent: 0,
            items: 1,
        })
        .collect();
    store.write_samples(&live).expect("write");
    store
        .write_samples(&[Sample {
            dir: b"a".to_vec(),
            time_ms: now,
            disk: 0,
            apparent: 0,
            items: disktracker::history::GONE,
        }])
        .expect("tombstone");
    store.thin_history(now).expect("thin");
    assert_eq!(store.history_len().expect("len"), 30 + 3);
    // Just before it went, it is there with its last size; after, it is gone.
    let (base, _) = store.baseline_at(now - 1).expect("baseline");
    assert_eq!(base[&b"a".to_vec()].disk, 0, "its last sample");
    // Ten minutes before it went it was there too (with its oldest size known).
    let (base, _) = store.baseline_at(now - 10 * 60_000).expect("baseline");
    assert_eq!(base[&b"a".to_vec()].disk, 29, "its first sample");
    let (base, _) = store.baseline_at(now).expect("baseline");
    assert!(!base.contains_key(b"a".as_slice()));
}

#[test]
fn thinning_keeps_the_baseline_of_the_previous_session_within_a_minute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = 1_900_000_000_000i64;
    let mut store = store_with_samples(&dir.path().join("h.db"), now - 10, 3, 1);
    store.begin_session(now).expect("session");
    store
        .write_samples(&[Sample {
            dir: b"a".to_vec(),
            time_ms: now + 5,
            disk: 99,
            apparent: 99,
            items: 1,
        }])
        .expect("write");
    store.thin_history(now + 10).expect("thin");
    let (base, _) = store.baseline_at(now - 1).expect("baseline");
    assert_eq!(
        base[&b"a".to_vec()].disk,
        0,
        "the newest before the session"
    );
}

#[test]
fn a_recorder_tombstones_directories_gone_since_it_last_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("r");
    std::fs::create_dir_all(root.join("kept")).expect("mkdir");
    let opened = open_engine(
        &root,
        &disktracker::cache::CacheOptions {
            dir: None,
            disabled: true,
        },
        &disktracker::scan::ScanOptions::default(),
        true,
    )
    .expect("scan");
    let t = disktracker::tree::read(&opened.engine.tree);
    let base = |items| Base {
        disk: 1,
        apparent: 1,
        items,
        time_ms: 0,
    };
    let mut rec = Recorder::new(
        10,
        vec![(b"kept".to_vec(), base(0)), (b"gone".to_vec(), base(3))],
    );
    let samples = rec.sync_all(&t, 20);
    let gone = samples
        .iter()
        .find(|s| s.dir == b"gone")
        .expect("tombstone");
    assert_eq!(gone.items, GONE);
    assert!(samples.iter().any(|s| s.dir == b"kept" && s.items == 0));
    assert!(samples.iter().any(|s| s.dir.is_empty()), "the root");
    assert_eq!(rec.tracked(), 2);
}

/// The cache's database, after one run of `dtui changes` made it.
fn only_db(cache: &Path) -> std::path::PathBuf {
    std::fs::read_dir(cache)
        .expect("cache dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "db"))
        .expect("a database")
}

#[test]
fn a_forged_time_of_the_last_thinning_does_not_panic_the_store_thread() {
    // `now - last` overflowed (a debug build's store thread panicked) for a stored time past
    // i64::MAX.
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, cache) = (dir.path().join("t"), dir.path().join("cache"));
    tree(&root);
    let (_, err, code) = changes(&root, &cache, &[]);
    assert_eq!(code, 0, "{err}");
    let c = rusqlite::Connection::open(only_db(&cache)).expect("db");
    c.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('history_thinned_at', '9223372036854775808')",
        [],
    )
    .expect("forge");
    drop(c);
    let (_, err, code) = changes(&root, &cache, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn forged_rows_of_the_size_history_are_skipped_not_fatal_or_shown() {
    // A text `dir` made every `dtui changes` fail ("Invalid column type Text") for as long as
    // the row lived; a negative size showed as a change of -16 EiB.
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, cache) = (dir.path().join("t"), dir.path().join("cache"));
    tree(&root);
    let (_, err, code) = changes(&root, &cache, &[]);
    assert_eq!(code, 0, "{err}");
    let c = rusqlite::Connection::open(only_db(&cache)).expect("db");
    c.execute_batch(
        "INSERT INTO size_history VALUES ('same', 1, 5, 5, 1);
         INSERT INTO size_history VALUES (x'7368726b', 2, -5, -5, 1);
         INSERT INTO size_history VALUES (x'736872696e6b6572', 3, 1.5, 'x', 1);",
    )
    .expect("forge");
    drop(c);
    for since in ["last", "1w"] {
        let (out, err, code) = changes(&root, &cache, &["--since", since]);
        assert_eq!(code, 0, "{since}: {err}");
        assert!(!out.contains("EiB"), "{since}: {out}");
    }
}
