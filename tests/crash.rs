//! `kill -9` at varied moments while the snapshot is written and while an update batch is
//! applied: the next start always finds a consistent index (one whole generation, never a mix),
//! says which path it took, and ends with totals equal to `du`.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use disktracker::cache::CachePaths;
use disktracker::store::Store;
use disktracker::tree::{Arena, Kind, Tree, arena, flags};

/// Checks the database left behind: if it holds a generation, every directory's stored totals
/// must equal its own size plus what its children are charged. Returns that generation.
fn consistent_generation(db: &Path, root: &Path) -> Option<u64> {
    let store = Store::open_read_only(db).ok()?;
    let generation = store.meta().ok()?.generation?;
    let rows = store
        .load_rows()
        .expect("a database with a generation has readable rows");
    let tree = Tree::from_rows(
        Arena::create_temp().expect("arena"),
        root,
        &rows,
        generation,
    )
    .expect("the rows form a tree");
    assert_eq!(tree.len() as usize, rows.len(), "every row is reachable");
    for id in tree.live_ids() {
        if tree.kind(id) != Kind::Dir {
            continue;
        }
        let n = tree.node(id);
        let (mut a, mut d, mut items) = (n.apparent, n.disk, 0u64);
        for c in tree.children(id) {
            items += 1;
            if tree.flags(c) & flags::NOT_CHARGED != 0 {
                continue;
            }
            let t = tree.totals(c);
            a += t.apparent;
            d += t.disk;
            items += t.items;
        }
        let t = tree.totals(id);
        assert_eq!(
            (t.apparent, t.disk, t.items),
            (a, d, items),
            "generation {generation}: stored totals of {} match its children",
            tree.path_of(id).display()
        );
    }
    Some(generation)
}

/// An arena file on disk is always complete (saved whole and renamed into place) and never
/// ahead of the database: the next start either maps it (same generation) or rebuilds.
fn check_arena(arena_path: &Path, db_generation: Option<u64>) {
    let a = match Arena::open(arena_path) {
        Ok(a) => a,
        Err(e) => {
            assert!(
                !arena_path.exists(),
                "an arena file on disk is complete: {e}"
            );
            return;
        }
    };
    assert_eq!(a.header().state, arena::STATE_CLEAN);
    assert!(
        a.body_is_intact(),
        "a saved arena's body matches its checksum"
    );
    assert!(
        Some(a.header().generation) <= db_generation,
        "the arena ({}) is never ahead of the database ({db_generation:?})",
        a.header().generation
    );
}

fn spawn_scan(cache: &Path, root: &Path) -> Child {
    dtui()
        .args(["scan", "--cache-dir"])
        .arg(cache)
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dtui")
}

/// Waits until the WAL has grown past `bytes`, or `after` has passed, or the child exited;
/// then kills it. Returns whether it was still running (a real kill).
fn kill_when(child: &mut Child, wal: &Path, bytes: u64, after: Duration) -> bool {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(30);
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return false;
        }
        let grown = bytes > 0 && fs::metadata(wal).is_ok_and(|m| m.len() >= bytes);
        let due = bytes == 0 && start.elapsed() >= after;
        if grown || due || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return true;
        }
        std::thread::yield_now();
    }
}

/// Waits until the database commits a generation past `before` (the batch is in, the arena
/// not yet marked clean), then kills the child. Returns whether it was still running.
fn kill_after_commit(child: &mut Child, db: &Path, before: Option<u64>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return false;
        }
        let now = Store::open_read_only(db)
            .ok()
            .and_then(|s| s.meta().ok())
            .and_then(|m| m.generation);
        if now > before || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return true;
        }
        std::thread::yield_now();
    }
}

fn verify_next_start(cache: &Path, root: &Path, what: &str) {
    let out = run(dtui()
        .args(["scan", "--json", "--cache-dir"])
        .arg(cache)
        .arg(root));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what}: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let said = v["cache"].as_str().expect("cache");
    assert!(
        said.starts_with("loaded") || said.starts_with("new"),
        "{what}: says which path it took: {said}"
    );
    assert_eq!(v["disk"].as_u64(), Some(du(root, false)), "{what}: {said}");
    assert_eq!(
        v["apparent"].as_u64(),
        Some(du(root, true)),
        "{what}: {said}"
    );
    assert_eq!(
        v["items"].as_u64(),
        Some(find_count(root)),
        "{what}: {said}"
    );
}

fn build_tree(root: &Path) {
    for d in 0..60 {
        let dir = root.join(format!("dir-{d:02}/sub"));
        fs::create_dir_all(&dir).expect("mkdir");
        for f in 0..1000 {
            write(&dir.join(format!("file-{f:04}.dat")), f % 97);
        }
    }
}

/// Changes a tenth of the tree (grow, delete, create), differently each round.
fn churn(root: &Path, round: usize) {
    for d in (round % 6..60).step_by(6) {
        let dir = root.join(format!("dir-{d:02}/sub"));
        for f in 0..100 {
            let p = dir.join(format!("file-{f:04}.dat"));
            if round % 2 == 0 {
                write(&p, 1000 + round);
                let _ = fs::remove_file(dir.join(format!("new-{f}-{}.dat", round - 1)));
            } else {
                let _ = fs::remove_file(&p);
                write(&dir.join(format!("new-{f}-{round}.dat")), 50);
            }
        }
    }
}

#[test]
fn kill_9_at_any_moment_leaves_a_consistent_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    fs::create_dir(&root).expect("mkdir");
    build_tree(&root);
    let root = root.canonicalize().expect("canon");
    let cache = dir.path().join("cache");
    let paths = CachePaths::new(&cache, &root);
    let mut wal = paths.db.clone().into_os_string();
    wal.push("-wal");
    let wal = std::path::PathBuf::from(wal);
    let mut kills = 0;

    // 1. While the first snapshot is written.
    for i in 0..12u64 {
        let _ = fs::remove_dir_all(&cache);
        let mut child = spawn_scan(&cache, &root);
        let killed = if i % 2 == 0 {
            kill_when(&mut child, &wal, 64 * 1024 * (i + 1), Duration::ZERO)
        } else {
            kill_when(&mut child, &wal, 0, Duration::from_millis(20 * i))
        };
        kills += u32::from(killed);
        let g = consistent_generation(&paths.db, &root);
        eprintln!("snapshot kill {i}: killed={killed}, database generation {g:?}");
        check_arena(&paths.arena, g);
        verify_next_start(&cache, &root, &format!("snapshot kill {i}"));
    }

    // 2. While catch-up batches are applied to an existing cache: kill moments spread over the
    // whole run (as long as the last complete run took), so some land before the batch commits
    // and some after it, before the arena is marked clean.
    let mut full_run = Duration::from_millis(300);
    for i in 0..12u32 {
        churn(&root, i as usize + 1);
        let before = consistent_generation(&paths.db, &root);
        let mut child = spawn_scan(&cache, &root);
        let at = full_run.mul_f64(f64::from(i + 1) / 16.0);
        let killed = if i % 3 == 2 {
            kill_after_commit(&mut child, &paths.db, before)
        } else {
            kill_when(&mut child, &wal, 0, at)
        };
        kills += u32::from(killed);
        let after = consistent_generation(&paths.db, &root);
        eprintln!("batch kill {i} at {at:?}: killed={killed}, generation {before:?} -> {after:?}");
        assert!(
            after.is_some() && after >= before,
            "batch kill {i}: the database keeps a whole generation ({before:?} -> {after:?})"
        );
        check_arena(&paths.arena, after);
        churn(&root, i as usize + 100);
        let t = Instant::now();
        verify_next_start(&cache, &root, &format!("batch kill {i}"));
        full_run = t.elapsed();
    }
    assert!(kills >= 20, "at least 20 real kills, got {kills}");
}
