//! The persistence benchmark: on a real tree (default: the 500,000-entry benchmark tree made
//! by `benches/gen_tree.py`), how fast the snapshot is written to SQLite, how fast a tree comes
//! back (arena mapped as is, or rebuilt from the database), and what the cache costs on disk.
//!
//! `cargo bench --bench store -- [TREE]`

use std::path::PathBuf;
use std::time::Instant;

use disktracker::scan::{self, Progress, ScanOptions};
use disktracker::store::Store;
use disktracker::tree::{Arena, NodeId, RowChunk, Tree};

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
}
