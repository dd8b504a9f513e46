//! Forged caches, many of them: a saved arena with random fields overwritten (its checksums
//! recomputed, so only the structure can give it away), and a database with forged rows. Each
//! must load (mapped, rebuilt or scanned again) without a panic or a hang, and after the
//! catch-up the tree must equal a fresh scan.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use crossbeam_channel::bounded;
use disktracker::cache::{self, CacheOptions, CachePaths, Origin, Saved};
use disktracker::scan::ScanOptions;
use disktracker::tree::{self, Arena, NodeId, Tree};

type Entry = (Vec<u8>, u8, u8, u64, u64, u64, u64, u64);

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

/// What one start from a forged cache came to.
struct Opened {
    origin: Origin,
    /// The tree after the catch-up.
    caught_up: Vec<Entry>,
    /// The tree after a `reconcile --full` on top of it.
    full: Vec<Entry>,
}

/// Opens through the cache, catches up, then re-reads everything (`reconcile --full`), on a
/// thread given `secs` to finish (a forged cycle must not hang the load). After the catch-up
/// the totals must add up, whatever the cache said.
fn open_within(root: &Path, cache: &Path, secs: u64) -> Result<Opened, String> {
    let (root, cache) = (root.to_path_buf(), cache.to_path_buf());
    let (tx, rx) = bounded(1);
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| {
            let s = open_engine(&root, &cache_opts(&cache), &ScanOptions::default(), true)?;
            let caught_up = {
                let t = tree::read(&s.engine.tree);
                t.validate()
                    .map_err(|e| format!("caught up, not a tree: {e}"))?;
                let wrong = cache::totals_fixes(&t);
                if !wrong.is_empty() {
                    return Err(format!("caught up, totals that do not add up: {wrong:?}"));
                }
                listing(&t)
            };
            s.engine
                .reconcile_and_wait(&s.msgs, true)?
                .stats()
                .ok_or("the engine stopped before its reconcile --full")?;
            let full = listing(&tree::read(&s.engine.tree));
            let origin = s.engine.origin.clone();
            match s.engine.shutdown() {
                Saved::Clean { .. } => Ok(Opened {
                    origin,
                    caught_up,
                    full,
                }),
                other => Err(format!("closed {other:?}")),
            }
        });
        let _ = tx.send(r.unwrap_or_else(|p| {
            Err(format!(
                "panicked: {}",
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default()
            ))
        }));
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| Err(format!("hung (more than {secs} s)")))
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

/// A small tree with every kind of record: directories, plain files, hard links, a sparse
/// file past 4 GiB and one dated before 1970 (rare records), a symlink, a non-UTF-8 name,
/// and a directory wide enough to get a child index. The names of each hard-linked inode
/// share a directory: which of them is charged is the reader's choice (the first read), and
/// must not make two right trees differ.
fn varied_tree(root: &Path) {
    fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
    write(&root.join("small"), 100);
    write(&root.join("sub/medium"), 70_000);
    write(&root.join("sub/deeper/big"), 300_000);
    fs::hard_link(
        root.join("sub/deeper/big"),
        root.join("sub/deeper/big-link"),
    )
    .expect("link");
    fs::create_dir_all(root.join("wide")).expect("mkdir");
    for i in 0..40 {
        write(&root.join(format!("wide/f{i}")), i * 10);
    }
    fs::hard_link(root.join("wide/f7"), root.join("wide/f7-link")).expect("link");
    let sparse = fs::File::create(root.join("sub/sparse")).expect("create");
    sparse.set_len(5 << 30).expect("set_len");
    let old = root.join("sub/old");
    write(&old, 10);
    let t = std::time::UNIX_EPOCH - Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(&old)
        .expect("open")
        .set_modified(t)
        .expect("touch");
    symlink("/", root.join("sub/to-root")).expect("symlink");
    write(&root.join(name(b"bad-\xff\n\x1b[31m")), 5);
}

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// A value a forger would try: the edges, a count, a neighbour of one, or noise.
    fn interesting(&mut self, count: u32) -> u32 {
        match self.below(8) {
            0 => 0,
            1 => u32::MAX,
            2 => u32::MAX - 1,
            3 => count,
            4 => count.saturating_sub(1),
            5 => self.below(u64::from(count.max(1))) as u32,
            6 => 1,
            _ => self.next() as u32,
        }
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    cache: PathBuf,
    paths: CachePaths,
    fresh: Vec<Entry>,
    arena: Vec<u8>,
    db: Vec<u8>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    varied_tree(&root);
    let cache = dir.path().join("cache");
    let fresh = fresh_listing(&root);
    let o = open_within(&root, &cache, 60).expect("first scan");
    assert_eq!(o.full, fresh);
    let paths = CachePaths::new(&cache, &root.canonicalize().expect("canon"));
    // Once more, so the arena and the database are at rest and agree.
    let o = open_within(&root, &cache, 60).expect("second start");
    assert!(matches!(o.origin, Origin::Mapped { .. }), "{:?}", o.origin);
    assert_eq!(o.caught_up, fresh);
    let arena = fs::read(&paths.arena).expect("arena");
    let db = fs::read(&paths.db).expect("db");
    assert!(
        !paths.all_files()[1].exists(),
        "the WAL is checkpointed at close"
    );
    Setup {
        _dir: dir,
        root,
        cache,
        paths,
        fresh,
        arena,
        db,
    }
}

impl Setup {
    fn restore(&self) {
        for f in &self.paths.all_files()[..4] {
            let _ = fs::remove_file(f);
        }
        fs::write(&self.paths.db, &self.db).expect("db");
        fs::write(&self.paths.arena, &self.arena).expect("arena");
        fs::set_permissions(
            &self.paths.db,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("chmod");
        fs::set_permissions(
            &self.paths.arena,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("chmod");
    }

    /// One start from the forged cache: no panic, no hang, totals that add up after the
    /// catch-up, and the disk's tree after a full re-read. Returns whether the catch-up alone
    /// already had it (a forged name in a listing the catch-up trusts is only found by a full
    /// re-read, by design: see `reconcile::Trust`).
    fn check(&self, what: &str) -> bool {
        let o = open_within(&self.root, &self.cache, 30).unwrap_or_else(|e| panic!("{what}: {e}"));
        let show = |e: &Entry| {
            let mut e = e.clone();
            e.0 = e.0[self.root.as_os_str().len()..].to_vec();
            (String::from_utf8_lossy(&e.0).into_owned(), e)
        };
        let extra: Vec<_> = o
            .full
            .iter()
            .filter(|e| !self.fresh.contains(e))
            .map(show)
            .collect();
        let missing: Vec<_> = self
            .fresh
            .iter()
            .filter(|e| !o.full.contains(e))
            .map(show)
            .collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "{what}: loaded {:?}\n  not on disk: {extra:?}\n  missed: {missing:?}",
            o.origin
        );
        o.caught_up == self.fresh
    }
}

/// Overwrites a random 4-byte field of a random record of the arena's regions (or of its
/// header) with a value a forger would try, then saves it with correct checksums.
fn forge_arena(setup: &Setup, rng: &mut Rng) -> String {
    let mut arena = Arena::open(&setup.paths.arena).expect("open the saved arena");
    let h = *arena.header();
    let what;
    match rng.below(5) {
        0 => {
            let i = rng.below(u64::from(h.node_count)) as usize;
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut arena.nodes_mut()[i..=i]);
            let at = rng.below(bytes.len() as u64 / 4) as usize * 4;
            let v = rng.interesting(h.node_count);
            bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
            what = format!("node {i} word {} = {v}", at / 4);
        }
        1 => {
            let i = rng.below(u64::from(h.dir_count)) as usize;
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut arena.dirs_mut()[i..=i]);
            let at = rng.below(bytes.len() as u64 / 4) as usize * 4;
            let v = rng.interesting(h.node_count);
            bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
            what = format!("dir record {i} word {} = {v}", at / 4);
        }
        2 if h.rare_count > 0 => {
            let i = rng.below(u64::from(h.rare_count)) as usize;
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut arena.rares_mut()[i..=i]);
            let at = rng.below(bytes.len() as u64 / 4) as usize * 4;
            let v = rng.interesting(h.rare_count);
            bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
            what = format!("rare record {i} word {} = {v}", at / 4);
        }
        3 => {
            let v = rng.interesting(h.node_count);
            let hm = arena.header_mut();
            let field = rng.below(7);
            match field {
                0 => hm.root = v,
                1 => hm.free_node = v,
                2 => hm.free_dir = v,
                3 => hm.free_rare = v,
                4 => hm.live_nodes = v,
                5 => hm.root_path_len = v,
                _ => hm.device_count = v % 200,
            }
            what = format!("header field {field} = {v}");
        }
        _ => {
            // A flipped bit anywhere in the used part of the records.
            let i = rng.below(u64::from(h.node_count)) as usize;
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut arena.nodes_mut()[i..=i]);
            let at = rng.below(bytes.len() as u64) as usize;
            let bit = rng.below(8);
            bytes[at] ^= 1 << bit;
            what = format!("node {i} byte {at} bit {bit}");
        }
    }
    // `save` writes the used part of each region by the header's counts: a forged count
    // must not make the forger's own tool read out of bounds.
    fs::remove_file(&setup.paths.arena).expect("rm");
    arena
        .save(&setup.paths.arena)
        .expect("save the forged arena");
    what
}

#[test]
fn forged_arena_fields_with_valid_checksums_never_panic_hang_or_survive_the_catch_up() {
    let s = setup();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut missed = Vec::new();
    for round in 0..300 {
        s.restore();
        let what = forge_arena(&s, &mut rng);
        if !s.check(&format!("round {round}: {what}")) {
            missed.push(what);
        }
    }
    eprintln!("the catch-up alone missed {}: {missed:#?}", missed.len());
}

/// Rewrites the saved arena with `forge` applied to the node named `name` (checksums right).
fn forge_node(s: &Setup, name: &[u8], forge: impl FnOnce(&mut disktracker::tree::Node)) {
    let mut t = Tree::from_arena(Arena::open(&s.paths.arena).expect("open")).expect("valid");
    let id = t
        .live_ids()
        .find(|&id| t.name(id) == name)
        .expect("the node");
    forge(&mut t.arena_mut().nodes_mut()[id.index()]);
    fs::remove_file(&s.paths.arena).expect("rm");
    t.save(&s.paths.arena).expect("save");
}

#[test]
fn a_file_size_forged_in_a_mapped_arena_leaves_totals_that_add_up_after_the_catch_up() {
    // The catch-up corrects a size by its difference with the disk: a size that its
    // directory's totals did not hold used to leave them wrong by as much, for good.
    let s = setup();
    s.restore();
    forge_node(&s, b"f3", |n| n.aux = 999_999);
    let o = open_within(&s.root, &s.cache, 30).expect("opens");
    assert!(matches!(o.origin, Origin::Mapped { .. }), "{:?}", o.origin);
    assert_eq!(o.caught_up, s.fresh, "right after the catch-up");
    // And the next start maps a right arena.
    let o = open_within(&s.root, &s.cache, 30).expect("opens");
    assert!(matches!(o.origin, Origin::Mapped { .. }), "{:?}", o.origin);
    assert_eq!(o.caught_up, s.fresh);
}

#[test]
fn a_plain_file_forged_as_counted_elsewhere_is_refused_at_load() {
    // Its bytes would have been left out of every total, and no catch-up looks at a flag of
    // an entry that did not change.
    let s = setup();
    s.restore();
    forge_node(&s, b"medium", |n| n.flags |= tree::flags::HARDLINK_DUP);
    let o = open_within(&s.root, &s.cache, 30).expect("opens");
    match &o.origin {
        Origin::Rebuilt { why, .. } => assert!(why.contains("inconsistent"), "{why}"),
        other => panic!("rebuilt from the database, not {other:?}"),
    }
    assert_eq!(o.caught_up, s.fresh);
}

#[test]
fn a_hard_link_group_loaded_with_no_or_two_charged_names_is_charged_once() {
    for (what, flip) in [("none charged", true), ("both charged", false)] {
        let s = setup();
        s.restore();
        let mut t = Tree::from_arena(Arena::open(&s.paths.arena).expect("open")).expect("valid");
        let ids: Vec<_> = t
            .live_ids()
            .filter(|&id| t.name(id) == b"big" || t.name(id) == b"big-link")
            .collect();
        assert_eq!(ids.len(), 2);
        for id in ids {
            let n = &mut t.arena_mut().nodes_mut()[id.index()];
            if flip {
                n.flags |= tree::flags::HARDLINK_DUP;
            } else {
                n.flags &= !tree::flags::HARDLINK_DUP;
            }
        }
        // The totals made to agree with the forged flags, so only the flags are wrong.
        cache::recompute_totals(&mut t);
        fs::remove_file(&s.paths.arena).expect("rm");
        t.save(&s.paths.arena).expect("save");
        let o = open_within(&s.root, &s.cache, 30).expect("opens");
        assert!(
            matches!(o.origin, Origin::Mapped { .. }),
            "{what}: {:?}",
            o.origin
        );
        assert_eq!(o.caught_up, s.fresh, "{what}");
    }
}

/// Overwrites one column of one random row of `entries` with a value a forger would try (the
/// arena removed, so the tree is rebuilt from these rows).
fn forge_rows(setup: &Setup, rng: &mut Rng) -> String {
    const COLUMNS: [&str; 14] = [
        "id",
        "parent",
        "kind",
        "flags",
        "size",
        "disk",
        "total_size",
        "items",
        "mtime",
        "ino",
        "dev",
        "nlink",
        "errno",
        "ctime",
    ];
    let c = rusqlite::Connection::open(&setup.paths.db).expect("open db");
    let ids: Vec<i64> = c
        .prepare("SELECT id FROM entries ORDER BY id")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("ids");
    let count = ids.len() as u32;
    let id = ids[rng.below(ids.len() as u64) as usize];
    let column = COLUMNS[rng.below(COLUMNS.len() as u64) as usize];
    let value: i64 = match rng.below(6) {
        0 => i64::MAX,
        1 => -1,
        2 => i64::MIN,
        3 => ids[rng.below(ids.len() as u64) as usize], // another row's id: a cycle, perhaps
        4 => id,                                        // itself
        _ => i64::from(rng.interesting(count)),
    };
    // A forged row may collide with another's id: replaced, as a forger would.
    let statement = format!("UPDATE OR REPLACE entries SET {column} = ?1 WHERE id = ?2");
    c.execute(&statement, [value, id]).expect("forge");
    format!("row {id}: {column} = {value}")
}

#[test]
fn forged_database_rows_never_panic_hang_or_survive_a_full_reread() {
    let s = setup();
    let mut rng = Rng(0x5eed_0000_dbdb_0002);
    for round in 0..200 {
        s.restore();
        fs::remove_file(&s.paths.arena).expect("rm arena");
        let what = forge_rows(&s, &mut rng);
        s.check(&format!("round {round}: {what}"));
    }
}

#[test]
fn forged_database_rows_of_every_edge_load_or_are_refused_cleanly() {
    let s = setup();
    let cases = [
        // An id far past every other: no arena of billions of slots.
        "UPDATE entries SET id = 3000000000 WHERE name = CAST('small' AS BLOB)",
        // A plain file counted elsewhere: its bytes would be left out of every total.
        "UPDATE entries SET flags = 16 WHERE name = CAST('medium' AS BLOB)",
        // A parent cycle away from the root, and a row its own parent.
        "UPDATE entries SET parent = id WHERE name = CAST('sub' AS BLOB)",
        // A second root.
        "UPDATE entries SET parent = -1 WHERE name = CAST('wide' AS BLOB)",
    ];
    for case in cases {
        s.restore();
        fs::remove_file(&s.paths.arena).expect("rm arena");
        let c = rusqlite::Connection::open(&s.paths.db).expect("open db");
        assert_eq!(c.execute(case, []).expect("forge"), 1, "{case}");
        drop(c);
        assert!(s.check(case), "{case}: right after the catch-up");
    }
}

/// `dtui scan --json` with these arguments and the root: (disk, apparent, items).
fn scan_totals(args: &[&str], root: &Path) -> (u64, u64, u64) {
    let out = run(dtui().arg("scan").arg("--json").args(args).arg(root));
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let n = |k: &str| v[k].as_u64().expect("a number");
    (n("disk"), n("apparent"), n("items"))
}

#[test]
fn reconcile_full_on_a_forged_mapped_arena_leaves_totals_that_add_up() {
    // `reconcile --full` runs no catch-up first, and corrects sizes by differences too.
    let s = setup();
    s.restore();
    forge_node(&s, b"f3", |n| n.aux = 999_999);
    let out = run(dtui()
        .args(["reconcile", "--full", "--cache-dir"])
        .arg(&s.cache)
        .arg(&s.root));
    assert!(out.status.success(), "{out:?}");
    let cache = s.cache.to_str().expect("utf-8");
    assert_eq!(
        scan_totals(&["--no-catch-up", "--cache-dir", cache], &s.root),
        scan_totals(&["--no-cache"], &s.root)
    );
}

#[test]
fn a_hard_link_whose_inode_was_lost_rejoins_its_group_on_a_full_reread() {
    // A linked name whose record lost its inode (0: unknown, as an import has) is a group of
    // its own at load, charged besides its real group: a full re-read learns the inode, and
    // the name must join the group (charged once), not just take the number.
    for charged in [true, false] {
        let s = setup();
        s.restore();
        let mut t = Tree::from_arena(Arena::open(&s.paths.arena).expect("open")).expect("valid");
        let id = t
            .live_ids()
            .filter(|&id| t.name(id) == b"big" || t.name(id) == b"big-link")
            .find(|&id| (t.flags(id) & tree::flags::HARDLINK_DUP == 0) == charged)
            .expect("a member of the group");
        let r = t
            .node(id)
            .rare_index()
            .expect("a hard link has a rare record");
        t.arena_mut().rares_mut()[r as usize].ino = 0;
        fs::remove_file(&s.paths.arena).expect("rm");
        t.save(&s.paths.arena).expect("save");
        s.check(&format!("the charged member's inode lost: {charged}"));
    }
}
