//! The live engine is exact (issue 10): while an engine watches a random tree, mutation
//! scripts run at full speed or with random pauses; once it is quiet, its live tree equals a
//! fresh scan node by node (kind, sizes, inode, link count, flags, items, one charge per
//! hard-link group, totals) and `du`, and so does the cache it saved. For each backend: the
//! fanotify filesystem mark, the fanotify mount mark + notify, and notify alone. Overflows (a
//! collapsing queue, a flood while the engine is stalled, a tiny inotify watch limit) end
//! equal too, with the stale state seen in between. The real `dtui watch` is checked the same
//! way through its saved cache.
//!
//! `DTUI_LIVE_SEEDS=7,12` runs only those seeds; `cargo bench --bench live_soak` runs many.

mod common;
#[path = "live/harness.rs"]
mod harness;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::difftree::compare::{compare, dump_json, escape_invalid_utf8};
use common::difftree::{self, Rng};
use common::spawn_lines;
use crossbeam_channel::Receiver;
use disktracker::watch::{Choice, QueueLimits};
use harness::{Settings, backend_arg};

/// Seeds of this test: `DTUI_LIVE_SEEDS` if set, else `default`.
fn seeds(default: impl IntoIterator<Item = u64>) -> Vec<u64> {
    match std::env::var("DTUI_LIVE_SEEDS") {
        Ok(list) => list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
        Err(_) => default.into_iter().collect(),
    }
}

fn needs_root(what: &str) -> bool {
    if common::is_root() {
        return true;
    }
    eprintln!("skipped: {what} needs root (fanotify)");
    false
}

/// Runs the seeds and fails with every failing seed's report.
fn check_seeds(seeds: &[u64], backend: Choice, settings: &Settings) {
    let failures = harness::run_seeds(seeds, backend, settings, 3, &harness::out_dir());
    if failures.is_empty() {
        return;
    }
    for f in failures.iter().take(2) {
        println!("{}", f.report(12));
    }
    let list: Vec<String> = failures
        .iter()
        .map(|f| {
            format!(
                "seed {}: {}",
                f.case.seed,
                f.problems.first().map_or("", String::as_str)
            )
        })
        .collect();
    panic!(
        "{} of {} seeds ({}): the live tree differs from a fresh scan (reproductions in {})\n{}",
        failures.len(),
        seeds.len(),
        backend_arg(backend),
        harness::out_dir().display(),
        list.join("\n")
    );
}

#[test]
fn fanotify_filesystem_mark_keeps_the_live_tree_equal_to_a_fresh_scan() {
    if needs_root("the filesystem mark") {
        check_seeds(&seeds(1..=10), Choice::Fanotify, &Settings::ci());
    }
}

#[test]
fn fanotify_mount_mark_keeps_the_live_tree_equal_to_a_fresh_scan() {
    if needs_root("the mount mark") {
        check_seeds(&seeds(1..=10), Choice::FanotifyMount, &Settings::ci());
    }
}

#[test]
fn inotify_keeps_the_live_tree_equal_to_a_fresh_scan() {
    check_seeds(&seeds(1..=10), Choice::Inotify, &Settings::ci());
}

#[test]
fn notify_keeps_the_live_tree_equal_to_a_fresh_scan() {
    // Seed 6 deletes a file right after moving one of its ancestors, which notify names by the
    // old path until it has watched the moved tree again; the backend then has the tree re-read
    // (`Reread`), and `a_change_right_after_a_directory_moves_is_reported_at_its_new_path`
    // shows that directly. (Seed 6 failed 2 runs in 6 before.)
    check_seeds(&seeds(1..=10), Choice::Notify, &Settings::ci());
}

/// Churn outside the root (so its directories are known to be outside and carry the kernel's
/// ignore marks), then directories moved in and out of the root and changed where they are
/// now, each round after the last was applied.
fn moves_across_the_root_after_foreign_churn() -> (Vec<difftree::Op>, Vec<Vec<difftree::Op>>) {
    use difftree::Op;
    let p = |s: &str| std::path::PathBuf::from(s);
    let setup = vec![
        Op::MkdirP(p("root/keep/a")),
        Op::Write(p("root/keep/a/f"), 100),
        Op::MkdirP(p("root/leaving/sub")),
        Op::Write(p("root/leaving/sub/g"), 50),
        Op::MkdirP(p("outside/d/sub/deep")),
        Op::Write(p("outside/d/sub/x"), 10),
    ];
    let mut churn = Vec::new();
    for i in 0..40 {
        churn.push(Op::Write(p(&format!("outside/d/sub/c{i}")), 10 + i));
        churn.push(Op::Write(p(&format!("outside/d/f{i}")), 5));
        churn.push(Op::Append(p("outside/d/sub/x"), 3));
    }
    for i in 0..20 {
        churn.push(Op::Remove(p(&format!("outside/d/f{i}"))));
    }
    churn.push(Op::Write(p("outside/d/sub/deep/y"), 7));
    churn.push(Op::Chmod(p("outside/d/sub/deep"), 0o700));
    churn.push(Op::Write(p("root/keep/a/f2"), 1));
    let rounds = vec![
        churn,
        vec![
            Op::Rename(p("outside/d"), p("root/d")),
            Op::Rename(p("root/leaving"), p("outside/left")),
        ],
        vec![
            Op::Write(p("root/d/sub/new"), 5),
            Op::Append(p("root/d/sub/x"), 7),
            Op::Remove(p("root/d/sub/c1")),
            Op::Write(p("root/d/f30"), 1000),
            Op::Write(p("root/d/sub/deep/z"), 9),
            Op::Chmod(p("root/d/sub/deep"), 0o755),
            Op::Mkdir(p("root/d/sub/deep/e")),
            Op::Write(p("outside/left/sub/h"), 100),
            Op::Remove(p("outside/left/sub/g")),
        ],
        vec![Op::Rename(p("outside/left"), p("root/back"))],
        vec![
            Op::Write(p("root/back/sub/i"), 33),
            Op::Append(p("root/back/sub/h"), 2),
            Op::Write(p("root/d/sub/deep/e/w"), 4),
        ],
    ];
    (setup, rounds)
}

#[test]
fn directories_moved_across_the_root_after_foreign_churn_keep_the_live_tree_exact() {
    if needs_root("the filesystem mark") {
        let (setup, rounds) = moves_across_the_root_after_foreign_churn();
        if let Err(f) = harness::run_fixed(Choice::Fanotify, &setup, &rounds) {
            panic!("{}", f.report(12));
        }
    }
}

/// Settings whose queue collapses almost at once: a handful of paths become their
/// directories, two directories a rescan of the root.
fn collapsing() -> Settings {
    Settings {
        ops: (60, 120),
        rounds: 1,
        pause_percent: 0,
        early_percent: 0,
        restart_percent: 0,
        limits: QueueLimits {
            max_paths: 8,
            max_dirs: 2,
            ..QueueLimits::default()
        },
        ..Settings::ci()
    }
}

#[test]
fn a_collapsing_queue_is_seen_stale_and_ends_equal_to_a_fresh_scan() {
    let mut backends = vec![Choice::Inotify, Choice::Notify];
    if common::is_root() {
        backends.push(Choice::Fanotify);
    }
    for backend in backends {
        for seed in seeds(501..=502) {
            let seen = harness::run_seed(seed, backend, &collapsing())
                .unwrap_or_else(|f| panic!("{}", f.report(12)));
            assert!(
                !seen.stale.is_empty(),
                "{}: seed {seed}: the collapse to a root rescan was said: {seen:?}",
                backend_arg(backend)
            );
            assert!(
                seen.not_live.contains(&Freshness::Verifying),
                "{}: seed {seed}: the re-verification was visible: {seen:?}",
                backend_arg(backend)
            );
        }
    }
}

use disktracker::engine::Freshness;

#[test]
fn a_flood_while_the_engine_is_stalled_is_seen_stale_and_ends_equal() {
    let mut backends = vec![Choice::Inotify, Choice::Notify];
    if common::is_root() {
        backends.push(Choice::Fanotify);
    }
    for backend in backends {
        let seen = harness::stalled_flood(backend, 120_000)
            .unwrap_or_else(|p| panic!("{}: {p}", backend_arg(backend)));
        eprintln!(
            "{}: {} batches of {} events, stale: {:?}, freshness seen {:?}",
            backend_arg(backend),
            seen.applied,
            seen.events,
            seen.stale,
            seen.not_live
        );
        assert!(
            seen.stale.iter().any(|s| s.contains("lost")),
            "{}: the lost events were said: {seen:?}",
            backend_arg(backend)
        );
        assert!(
            seen.not_live.contains(&Freshness::Verifying),
            "{}: the re-verification was visible: {seen:?}",
            backend_arg(backend)
        );
    }
}

/// Reads lines until one starts with `prefix`; returns every line read.
fn lines_until(rx: &Receiver<String>, prefix: &str, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                let done = l.starts_with(prefix);
                got.push(l);
                if done {
                    return got;
                }
            }
            Err(e) => panic!("no line starting with {prefix:?} within {limit:?} ({e}): {got:?}"),
        }
    }
}

/// Takes lines until none came for `quiet` after `script` ended, and `done` holds for the
/// lines read (all of them, and those since the script ended).
fn lines_until_quiet(
    rx: &Receiver<String>,
    mut script: Option<Child>,
    quiet: Duration,
    limit: Duration,
    done: impl Fn(&[String], &[String]) -> bool,
) -> Vec<String> {
    let t0 = Instant::now();
    let mut last = Instant::now();
    let mut got = Vec::new();
    let mut since_end = 0;
    loop {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(20)) {
            got.push(l);
            last = Instant::now();
        }
        if let Some(c) = &mut script
            && let Some(status) = c.try_wait().expect("try_wait")
        {
            assert!(status.success(), "the script failed: {status}");
            script = None;
            since_end = got.len();
            last = Instant::now();
        }
        if script.is_none() && last.elapsed() >= quiet && done(&got, &got[since_end..]) {
            return got;
        }
        assert!(t0.elapsed() < limit, "not quiet within {limit:?}: {got:?}");
    }
}

/// SIGINT, and a clean exit.
fn interrupt(mut child: Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("kill");
    let status = child.wait().expect("wait");
    assert!(status.success(), "a clean stop exits 0: {status:?}");
}

/// `dtui export --no-catch-up` of the saved cache against `dtui export --no-cache` and `du`.
fn saved_cache_problems(base: &Path) -> Vec<String> {
    let root = base.join("root");
    let export = |args: &[&str]| {
        let out = common::run(
            common::dtui()
                .arg("export")
                .args(args)
                .args(["-o", "-"])
                .arg(&root),
        );
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "dtui export {args:?}: {err}");
        let v: serde_json::Value = serde_json::from_str(&escape_invalid_utf8(&out.stdout))
            .unwrap_or_else(|e| panic!("dtui export {args:?} printed no JSON ({e}): {err}"));
        dump_json(&v)
    };
    let cache = base.join("cache");
    let cache = cache.to_str().expect("a UTF-8 temp path");
    let saved = export(&["--no-catch-up", "--cache-dir", cache]);
    let fresh = export(&["--no-cache"]);
    let mut problems = Vec::new();
    compare(&saved, &fresh, &mut problems);
    let (a, d) = (saved.canonical_root.0, saved.canonical_root.1);
    let du = (common::du(&root, true), common::du(&root, false));
    if (a, d) != du {
        problems.push(format!(
            "[du] saved root (apparent, disk) ({a}, {d}) != du -sb, -sB1 {du:?}"
        ));
    }
    problems
        .into_iter()
        .map(|p| p.replace("catch-up", "saved"))
        .collect()
}

fn dtui_watch(backend: Choice, base: &Path) -> (Child, Receiver<String>) {
    spawn_lines(
        common::dtui()
            .args([
                "watch",
                "--watch-backend",
                backend_arg(backend),
                "--cache-dir",
            ])
            .arg(base.join("cache"))
            .arg(base.join("root")),
    )
}

#[test]
fn dtui_watch_saves_a_cache_equal_to_a_fresh_scan() {
    let mut backends = vec![Choice::Inotify, Choice::Notify];
    if common::is_root() {
        backends.push(Choice::Fanotify);
    }
    for (k, backend) in backends.into_iter().enumerate() {
        let seed = 900 + k as u64;
        let settings = Settings::ci();
        let mut rng = Rng::new(seed);
        let bases = harness::Bases::new(&mut rng, &settings);
        let base = bases.base();
        let what = |round: usize| {
            format!(
                "dtui watch ({}) seed {seed} round {round}",
                backend_arg(backend)
            )
        };
        // Round 1: watch, wait for the tree, run the script, wait for quiet, SIGINT.
        let (child, rx) = dtui_watch(backend, base);
        lines_until(&rx, "tree:", Duration::from_secs(60));
        let steps = bases.steps(&mut rng, &settings, true);
        let script = harness::spawn_steps(base, &steps);
        let out = lines_until_quiet(
            &rx,
            Some(script),
            Duration::from_millis(1500),
            Duration::from_secs(120),
            |l, _| l.iter().any(|l| l.starts_with("batch")),
        );
        interrupt(child);
        let problems = saved_cache_problems(base);
        assert!(problems.is_empty(), "{}: {problems:#?}\n{out:#?}", what(1));
        // Round 2: start again from that cache, the script racing its catch-up.
        let (child, rx) = dtui_watch(backend, base);
        let steps = bases.steps(&mut rng, &settings, false);
        let script = harness::spawn_steps(base, &steps);
        let out = lines_until_quiet(
            &rx,
            Some(script),
            Duration::from_millis(1500),
            Duration::from_secs(120),
            |l, _| l.iter().any(|l| l.starts_with("tree:")),
        );
        interrupt(child);
        let problems = saved_cache_problems(base);
        assert!(problems.is_empty(), "{}: {problems:#?}\n{out:#?}", what(2));
    }
}

#[test]
fn a_tiny_notify_watch_limit_is_seen_stale_and_ends_equal() {
    // Both per-directory backends: inotify directly and through the notify crate.
    for backend in ["inotify", "notify"] {
        tiny_watch_limit_seen_stale(backend);
    }
}

fn tiny_watch_limit_seen_stale(backend: &str) {
    // A user namespace of our own with its inotify watch limit lowered to 5: most directories
    // cannot be watched; the engine says so, verifies them at once and again periodically.
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    for sub in ["root", "cache"] {
        std::fs::create_dir(base.join(sub)).expect("mkdir");
    }
    for i in 0..20 {
        std::fs::create_dir_all(base.join(format!("root/d{i}/sub"))).expect("mkdir");
        common::write(&base.join(format!("root/d{i}/sub/f")), 1000 * i);
    }
    let script = format!(
        "echo 5 > /proc/sys/user/max_inotify_watches && \
         exec {} watch --watch-backend {backend} --cache-dir {} {}",
        env!("CARGO_BIN_EXE_dtui"),
        base.join("cache").display(),
        base.join("root").display()
    );
    let (child, rx) = spawn_lines(
        Command::new("unshare")
            .args(["-U", "-r", "sh", "-c", &script])
            .env("XDG_CACHE_HOME", common::test_cache_home()),
    );
    let Ok(first) = rx.recv_timeout(Duration::from_secs(30)) else {
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("unshare") || stderr.contains("max_inotify_watches"),
            "only a missing user-namespace facility may skip this: {stderr}"
        );
        eprintln!("skipped: no user namespaces here ({stderr})");
        return;
    };
    assert!(first.contains(&format!("with {backend}")), "{first}");
    let mut lines = lines_until(&rx, "tree:", Duration::from_secs(60));
    // Writes in directories no watch covers: a periodic verification must find them.
    let writes = Command::new("sh")
        .arg("-c")
        .arg("for i in $(seq 0 19); do head -c $((i * 3000 + 1)) /dev/zero > d$i/sub/new; rm -f d$i/sub/f; done")
        .current_dir(base.join("root"))
        .spawn()
        .expect("sh");
    lines.extend(lines_until_quiet(
        &rx,
        Some(writes),
        Duration::from_millis(1500),
        Duration::from_secs(90),
        // The periodic verification of what no watch covers, after the writes.
        |_, after| after.iter().any(|l| l.starts_with("stale:")),
    ));
    interrupt(child);
    assert!(
        lines.iter().any(|l| l.starts_with("stale:")),
        "the unwatched directories were said stale: {lines:#?}"
    );
    let problems = saved_cache_problems(base);
    assert!(problems.is_empty(), "{problems:#?}\n{lines:#?}");
}

#[test]
fn an_engine_held_for_the_first_frame_starts_when_told_and_a_shutdown_while_held_skips_its_pass() {
    use disktracker::cache::{CacheOptions, Saved};
    use disktracker::engine::{Engine, EngineMsg, EngineOptions};
    use disktracker::scan::ScanOptions;

    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("a")).expect("mkdir");
    common::write(&root.join("a/f"), 10_000);
    let held = || {
        let mut opts = EngineOptions::new(
            CacheOptions {
                dir: None,
                disabled: true,
            },
            ScanOptions::default(),
        );
        opts.hold_until_shown = true;
        let (tx, rx) = crossbeam_channel::unbounded();
        (Engine::start(&root, opts, tx).expect("engine"), rx)
    };

    let (engine, rx) = held();
    // Held: no pass yet (the hold ends by itself after half a second at most).
    let early = rx.recv_timeout(Duration::from_millis(100));
    assert!(early.is_err(), "started before the first frame: {early:?}");
    engine.shown();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if matches!(
            rx.recv_timeout(left).expect("ready once shown"),
            EngineMsg::Ready
        ) {
            break;
        }
    }
    let t = disktracker::tree::read(&engine.tree);
    assert_eq!(t.totals(t.root()).items, 2);
    drop(t);
    let _ = engine.shutdown();

    let (engine, _rx) = held();
    let tree = std::sync::Arc::clone(&engine.tree);
    assert_eq!(engine.shutdown(), Saved::NoCache);
    let t = disktracker::tree::read(&tree);
    assert_eq!(t.totals(t.root()).items, 0, "a shutdown while held scanned");
}

/// Plain entries becoming rare (4 GiB and more, a time before 1970, a second name) and back,
/// while the engine watches.
fn rare_transitions() -> (Vec<difftree::Op>, Vec<Vec<difftree::Op>>) {
    use difftree::Op;
    const GIB: u64 = 1 << 30;
    let p = std::path::PathBuf::from;
    let setup = vec![
        Op::MkdirP(p("root/a")),
        Op::MkdirP(p("root/b")),
        Op::Write(p("root/a/small"), 10_000),
        Op::Truncate(p("root/a/big"), 5 * GIB),
        Op::Write(p("root/a/f"), 3000),
        Op::Write(p("root/a/g"), 20_000),
        Op::Link(p("root/a/g"), p("root/b/g2")),
    ];
    let rounds = vec![
        vec![
            Op::Truncate(p("root/a/small"), 6 * GIB),
            Op::Truncate(p("root/a/big"), 1000),
            Op::Link(p("root/a/f"), p("root/b/f2")),
            Op::Remove(p("root/b/g2")),
            Op::Touch(p("root/a/g"), -100, 5),
        ],
        vec![
            Op::Truncate(p("root/a/small"), 3000),
            Op::Truncate(p("root/b/f2"), 5 * GIB),
            Op::Rename(p("root/a/big"), p("root/b/big")),
            Op::Touch(p("root/a/g"), 1_000_000, 0),
            Op::Link(p("root/a/g"), p("root/a/g3")),
        ],
        vec![
            Op::Remove(p("root/a/f")),
            Op::Truncate(p("root/b/f2"), 7),
            Op::Rename(p("root/a/g3"), p("root/b/g3")),
            Op::Remove(p("root/a/g")),
        ],
    ];
    (setup, rounds)
}

#[test]
fn rare_entries_coming_and_going_keep_the_live_tree_equal_to_a_fresh_scan() {
    let mut backends = vec![Choice::Inotify, Choice::Notify];
    if common::is_root() {
        backends.push(Choice::Fanotify);
    }
    let (setup, rounds) = rare_transitions();
    for backend in backends {
        if let Err(f) = harness::run_fixed(backend, &setup, &rounds) {
            panic!("{}: {}", backend_arg(backend), f.report(12));
        }
    }
}

#[test]
fn verifying_a_subtree_updates_the_link_count_of_a_hard_links_names_outside_it() {
    use disktracker::cache::CacheOptions;
    use disktracker::engine::{Engine, EngineMsg, EngineOptions};
    use disktracker::scan::ScanOptions;

    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("sub/x")).expect("mkdir");
    common::write(&root.join("a"), 10_000);
    std::fs::hard_link(root.join("a"), root.join("sub/x/b")).expect("link");
    let opts = EngineOptions::new(
        CacheOptions {
            dir: None,
            disabled: true,
        },
        ScanOptions::default(),
    );
    let (tx, rx) = crossbeam_channel::unbounded();
    let engine = Engine::start(&root, opts, tx).expect("engine");
    let wait = |what: fn(&EngineMsg) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = rx.recv_timeout(left).expect("the engine answers");
            assert!(!matches!(m, EngineMsg::Failed(_)), "{m:?}");
            if what(&m) {
                return;
            }
        }
    };
    wait(|m| matches!(m, EngineMsg::Ready));
    let nlink_of_a = || {
        let t = disktracker::tree::read(&engine.tree);
        t.nlink(t.lookup(&root.join("a")).expect("a"))
    };
    let sub = || {
        let t = disktracker::tree::read(&engine.tree);
        t.node_ref(t.lookup(&root.join("sub")).expect("sub"))
    };
    assert_eq!(nlink_of_a(), 2);

    // The other name goes: `r` on sub/ must leave `a` with one link, as a fresh scan would.
    std::fs::remove_file(root.join("sub/x/b")).expect("rm");
    engine.reconcile(Some(sub()), false);
    wait(|m| matches!(m, EngineMsg::Reconciled(_)));
    assert_eq!(
        nlink_of_a(),
        1,
        "the name outside the subtree was not stat'ed again"
    );

    // And a new name inside it gives `a` two again.
    std::fs::hard_link(root.join("a"), root.join("sub/x/c")).expect("link");
    engine.reconcile(Some(sub()), false);
    wait(|m| matches!(m, EngineMsg::Reconciled(_)));
    assert_eq!(nlink_of_a(), 2);
    let t = disktracker::tree::read(&engine.tree);
    let r = t.totals(t.root());
    drop(t);
    let _ = engine.shutdown();
    let progress = disktracker::scan::Progress::default();
    let fresh = disktracker::scan::scan_path(&root, &ScanOptions::default(), &progress)
        .expect("scan")
        .0;
    assert_eq!(r, fresh.totals(fresh.root()), "totals as a fresh scan's");
}

/// Hard links made and written before any batch sees them: `ln a sub/b; echo x >> sub/b`
/// (the other name a plain file in the tree, its sizes no longer the new name's), and `cp
/// -al` snapshots rewritten, replaced and removed as backups do.
fn links_written_at_once() -> (Vec<difftree::Op>, Vec<Vec<difftree::Op>>) {
    use difftree::Op;
    let p = std::path::PathBuf::from;
    let setup = vec![
        Op::MkdirP(p("root/sub")),
        Op::MkdirP(p("root/d/e")),
        Op::Write(p("root/a"), 3000),
        Op::Write(p("root/c"), 5000),
        Op::Write(p("root/d/f1"), 5000),
        Op::Write(p("root/d/f2"), 7000),
        Op::Write(p("root/d/e/f3"), 9000),
        Op::Symlink(b"f1".to_vec(), p("root/d/s")),
    ];
    let rounds = vec![
        vec![
            Op::Link(p("root/a"), p("root/sub/b")),
            Op::Append(p("root/sub/b"), 50_000),
            Op::CopyLinks(p("root/d"), p("root/snap")),
            Op::Append(p("root/snap/f1"), 20_000),
            Op::Link(p("root/c"), p("root/sub/c2")),
            Op::Truncate(p("root/sub/c2"), 10),
        ],
        vec![
            // rsync --link-dest: a changed file is written beside and renamed over.
            Op::Write(p("root/snap/.f2.tmp"), 100),
            Op::Rename(p("root/snap/.f2.tmp"), p("root/snap/f2")),
            Op::Write(p("root/snap/e/f3"), 70_000),
            Op::CopyLinks(p("root/snap"), p("root/snap2")),
            Op::Append(p("root/snap2/e/f3"), 1),
            Op::Remove(p("root/sub/b")),
        ],
        vec![
            Op::RemoveAll(p("root/snap")),
            Op::Link(p("root/d/f2"), p("root/sub/f2b")),
            Op::Write(p("root/sub/f2b"), 123_456),
        ],
    ];
    (setup, rounds)
}

fn live_backends() -> Vec<Choice> {
    let mut backends = vec![Choice::Inotify, Choice::Notify];
    if common::is_root() {
        backends.extend([Choice::Fanotify, Choice::FanotifyMount]);
    }
    backends
}

#[test]
fn links_made_and_written_at_once_keep_the_live_tree_equal_to_a_fresh_scan() {
    let (setup, rounds) = links_written_at_once();
    for backend in live_backends() {
        if let Err(f) = harness::run_fixed(backend, &setup, &rounds) {
            panic!("{}: {}", backend_arg(backend), f.report(12));
        }
    }
}

/// The same after every restart from the cache: the cache keeps no inode of a plain file, so
/// the catch-up's stat of every entry must tell the tree which inode each name is.
#[test]
fn links_made_and_written_at_once_after_a_restart_from_the_cache() {
    let (setup, rounds) = links_written_at_once();
    for backend in live_backends() {
        if let Err(f) = harness::run_fixed_with(backend, &setup, &rounds, true) {
            panic!("{}: {}", backend_arg(backend), f.report(12));
        }
    }
}
