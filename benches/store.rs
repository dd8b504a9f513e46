//! The persistence benchmark: on a real tree (default: the 500,000-entry benchmark tree made
//! by `benches/gen_tree.py`), how fast the snapshot is written to SQLite, how fast a tree comes
//! back (arena mapped as is, or rebuilt from the database), and what the cache costs on disk.
//!
//! `cargo bench --bench store -- [TREE]`

use std::path::PathBuf;
use std::time::Instant;

use disktracker::scan::{self, Progress, ScanOptions};
use disktracker::store::{Commit, Store};
use disktracker::tree::{Arena, Changes, NodeId, RowChunk, Tree};

/// CPU time of the calling thread.
fn thread_cpu() -> std::time::Duration {
    // SAFETY: clock_gettime writes only the timespec it is given.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let tree_dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or_else(|| PathBuf::from("/tmp/dtui-bench-tree"), PathBuf::from);
    let (tree, stats) = scan::scan_path(&tree_dir, &ScanOptions::default(), &Progress::new())
        .unwrap_or_else(|e| {
            panic!(
                "scan {}: {e} (run benches/gen_tree.py first)",
                tree_dir.display()
            )
        });
    let rows = tree.len();
    println!(
        "tree: {} ({rows} entries, scanned in {:.3} s)",
        tree_dir.display(),
        stats.elapsed.as_secs_f64()
    );
    let work =
        tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or_else(|| "/var/tmp".into()))
            .expect("tempdir");
    let root = tree.root_path();

    // 1. The snapshot: copied out in chunks (as the session does) and written in one transaction.
    let mut write_secs = Vec::new();
    let mut db_bytes = 0;
    for run in 0..5 {
        let db = work.path().join(format!("snap-{run}.db"));
        let t0 = Instant::now();
        let mut chunks = Vec::new();
        let mut c = RowChunk::with_capacity(16 * 1024);
        for id in tree.live_ids() {
            c.push(tree.row(id), tree.name(id));
            if c.len() == 16 * 1024 {
                chunks.push(std::mem::replace(
                    &mut c,
                    RowChunk::with_capacity(16 * 1024),
                ));
            }
        }
        chunks.push(c);
        let mut store = Store::open(&db, root.as_os_str().as_encoded_bytes()).expect("open");
        store
            .write_snapshot(chunks, &|| true, 1, 7, 0)
            .expect("snapshot");
        store.checkpoint().expect("checkpoint");
        write_secs.push(t0.elapsed().as_secs_f64());
        db_bytes = std::fs::metadata(&db).map_or(0, |m| m.len());
    }
    let w = median(write_secs);
    println!(
        "snapshot write: median {w:.3} s = {:.0} rows/s (5 runs, copy-out + insert + index + checkpoint)",
        rows as f64 / w
    );
    println!(
        "database: {db_bytes} bytes = {:.1} bytes/entry",
        db_bytes as f64 / rows as f64
    );

    // 2. Back from the cache: the arena mapped as is, and rebuilt from the database.
    let arena_path = work.path().join("tree.arena");
    tree.save(&arena_path).expect("save arena");
    let arena_bytes = std::fs::metadata(&arena_path).map_or(0, |m| m.len());
    println!(
        "arena file: {arena_bytes} bytes = {:.1} bytes/entry",
        arena_bytes as f64 / rows as f64
    );
    let mut map_secs = Vec::new();
    for _ in 0..10 {
        let t0 = Instant::now();
        let a = Arena::open(&arena_path).expect("open arena");
        assert!(a.body_is_intact());
        let t = Tree::from_arena(a).expect("valid arena");
        assert_eq!(t.len(), rows);
        map_secs.push(t0.elapsed().as_secs_f64());
    }
    println!(
        "load, arena mapped (checksum verified): median {:.2} ms",
        median(map_secs) * 1e3
    );
    let db = work.path().join("snap-0.db");
    let mut rebuild_secs = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let store = Store::open_read_only(&db).expect("open db");
        let loaded = store.load_rows().expect("rows");
        let t = Tree::from_rows(Arena::create_temp().expect("arena"), &root, &loaded, 1)
            .expect("rebuild");
        assert_eq!(t.totals(t.root()), tree.totals(tree.root()));
        assert_eq!(t.len(), rows);
        let _ = t.node(NodeId(0));
        rebuild_secs.push(t0.elapsed().as_secs_f64());
    }
    println!(
        "load, rebuilt from SQLite: median {:.3} s",
        median(rebuild_secs)
    );

    journal(&tree, &root, work.path());
}

/// 3. and 4.: live batches through the entry journal, and a rebuild with it nearly full.
fn journal(tree: &Tree, root: &std::path::Path, work: &std::path::Path) {
    let rows = tree.len();
    // 3. Live batches: 1,000 rows of random entries each, appended to the journal, until it
    // has been folded into `entries` twice (a fold comes once it holds a quarter of the tree).
    let db = work.join("snap-1.db"); // a whole snapshot of the tree, from 1.
    let mut store = Store::open(&db, root.as_os_str().as_encoded_bytes()).expect("open");
    let ids: Vec<NodeId> = tree.live_ids().collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let (mut append_cpu, mut appended, mut fold_cpu, mut folded, mut folds) = (
        std::time::Duration::ZERO,
        0u64,
        std::time::Duration::ZERO,
        0u64,
        0,
    );
    let mut generation = 2;
    while folds < 2 {
        let mut c = Changes {
            generation,
            entries: rows,
            ..Changes::default()
        };
        generation += 1;
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = ids[(x % ids.len() as u64) as usize];
            let mut r = tree.row(id);
            r.apparent += generation;
            c.upserts.push(r, tree.name(id));
        }
        let before = store.journal_rows();
        let t0 = thread_cpu();
        store
            .commit(&Commit {
                changes: Some(c),
                ..Commit::default()
            })
            .expect("batch");
        let spent = thread_cpu().saturating_sub(t0);
        if store.journal_rows() < before + 1000 {
            folds += 1;
            fold_cpu += spent;
            folded += before + 1000;
        } else {
            append_cpu += spent;
            appended += 1000;
        }
    }
    let per = |d: std::time::Duration, n: u64| d.as_secs_f64() * 1e6 / n.max(1) as f64;
    println!(
        "live batches of 1,000 random rows: append {:.2} µs/row ({appended} rows); fold {:.2} µs/row \
         ({folds} folds of {} rows on average); all in all {:.2} µs/row (thread CPU)",
        per(append_cpu, appended),
        per(fold_cpu, folded),
        folded / folds.max(1),
        per(append_cpu + fold_cpu, appended + folds * 1000)
    );
    // 4. A rebuild with the journal nearly full (the worst case of `load_rows`).
    while store.journal_rows() + 1000 < (rows / 4).max(8192) {
        let mut c = Changes {
            generation,
            entries: rows,
            ..Changes::default()
        };
        generation += 1;
        for k in 0..1000u64 {
            let id = ids[((generation * 7919 + k * 104_729) % ids.len() as u64) as usize];
            c.upserts.push(tree.row(id), tree.name(id));
        }
        store
            .commit(&Commit {
                changes: Some(c),
                ..Commit::default()
            })
            .expect("batch");
    }
    let journal = store.journal_rows();
    drop(store);
    let t0 = Instant::now();
    let store = Store::open(&db, root.as_os_str().as_encoded_bytes()).expect("open");
    let loaded = store.load_rows().expect("rows");
    let t =
        Tree::from_rows(Arena::create_temp().expect("arena"), root, &loaded, 1).expect("rebuild");
    assert_eq!(t.len(), rows);
    println!(
        "load, rebuilt from SQLite with {journal} journal rows over it: {:.3} s",
        t0.elapsed().as_secs_f64()
    );
}
