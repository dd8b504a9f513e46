//! Deleting, trashing and undoing on real temp trees: the library directly (`delete::delete`,
//! `trash`), the live engine told of our own changes, and the real `dtui delete` as nobody and
//! in a mount namespace.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use crossbeam_channel::Receiver;
use disktracker::cache::CacheOptions;
use disktracker::delete::{self, Decision, DeleteError, Listener, Progress, Target, trash};
use disktracker::engine::{Engine, EngineMsg, EngineOptions};
use disktracker::fs::RootDir;
use disktracker::scan::ScanOptions;
use disktracker::tree::{self, Kind, flags};

/// Answers every error the same way and remembers them.
struct Answer(Decision, Vec<DeleteError>);

impl Listener for Answer {
    fn failed(&mut self, e: &DeleteError) -> Decision {
        self.1.push(e.clone());
        self.0
    }
}

fn target(path: &Path) -> Target {
    let m = fs::symlink_metadata(path).expect("stat");
    let kind = if m.file_type().is_dir() {
        Kind::Dir
    } else if m.file_type().is_symlink() {
        Kind::Symlink
    } else {
        Kind::File
    };
    Target {
        path: path.to_path_buf(),
        dev: m.dev(),
        ino: Some(m.ino()),
        kind,
        apparent: m.len(),
        mtime: m.mtime(),
        disk: m.blocks() * 512,
        items: 1,
        bare: false,
    }
}

/// What `targets` hold, counted on the disk (no tree), as the user would confirm it.
fn plan_of(r: &RootDir, targets: &[Target]) -> delete::Plan {
    delete::plan::plan(
        r,
        None,
        targets.to_vec(),
        &Progress::default(),
        &mut Answer(Decision::Abort, Vec::new()),
    )
}

fn write(path: &Path, bytes: usize) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, vec![7u8; bytes]).expect("write");
}

fn delete_all(root: &Path, targets: &[Target]) -> delete::Outcome {
    let r = RootDir::open(root).expect("root");
    delete::delete(
        &r,
        &plan_of(&r, targets),
        &Progress::default(),
        &mut Answer(Decision::Abort, Vec::new()),
    )
}

fn tree_root(dir: &tempfile::TempDir) -> PathBuf {
    let root = dir.path().join("root");
    fs::create_dir_all(&root).expect("mkdir");
    fs::canonicalize(root).expect("canon")
}

#[test]
fn deleting_a_file_removes_it_and_counts_its_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    write(&root.join("f"), 100_000);
    write(&root.join("g"), 10);
    let t = target(&root.join("f"));
    let out = delete_all(&root, std::slice::from_ref(&t));
    assert!(!root.join("f").exists());
    assert!(root.join("g").exists());
    assert_eq!(out.items, 1);
    assert_eq!(out.bytes, t.disk);
    assert!(out.done[0].whole);
}

#[test]
fn deleting_a_directory_removes_its_whole_subtree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    for i in 0..50 {
        write(&root.join(format!("d/a{}/b/f{i}", i % 5)), 100);
    }
    write(&root.join("keep"), 1);
    let before = find_count(&root.join("d")) + 1;
    let out = delete_all(&root, &[target(&root.join("d"))]);
    assert!(!root.join("d").exists());
    assert!(root.join("keep").exists());
    assert_eq!(out.items, before);
    assert!(out.failed.is_empty());
}

#[test]
fn a_marked_set_with_nested_marks_deletes_each_entry_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    write(&root.join("a/inner/f"), 100);
    write(&root.join("a/g"), 100);
    write(&root.join("b"), 100);
    write(&root.join("c"), 100);
    let marks = [
        target(&root.join("a")),
        target(&root.join("a/inner")),
        target(&root.join("a/inner/f")),
        target(&root.join("b")),
    ];
    let out = delete_all(&root, &marks);
    assert!(out.failed.is_empty(), "{:?}", out.failed);
    assert_eq!(
        out.done.len(),
        2,
        "the nested marks go with their directory"
    );
    assert!(!root.join("a").exists() && !root.join("b").exists());
    assert!(root.join("c").exists());
    assert_eq!(out.items, 5);
}

#[test]
fn a_symlink_to_a_directory_outside_goes_as_a_link_and_its_target_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    let outside = dir.path().join("outside");
    write(&outside.join("precious"), 1000);
    fs::create_dir_all(root.join("d")).expect("mkdir");
    symlink(&outside, root.join("d/link")).expect("symlink");
    symlink(&outside, root.join("toplink")).expect("symlink");
    let out = delete_all(
        &root,
        &[target(&root.join("toplink")), target(&root.join("d"))],
    );
    assert!(out.failed.is_empty(), "{:?}", out.failed);
    assert!(fs::symlink_metadata(root.join("toplink")).is_err());
    assert!(!root.join("d").exists());
    assert!(outside.join("precious").exists());
}

#[test]
fn a_plain_file_shown_without_an_inode_is_told_by_its_size_and_mtime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    write(&root.join("f"), 100);
    // As the tree shows a plain file: no inode number.
    let shown = Target {
        ino: None,
        ..target(&root.join("f"))
    };
    write(&root.join("f"), 5000);
    let out = delete_all(&root, std::slice::from_ref(&shown));
    assert_eq!(out.changed.len(), 1, "another size: not what was shown");
    assert!(root.join("f").exists());
    let now = Target {
        ino: None,
        ..target(&root.join("f"))
    };
    let out = delete_all(&root, &[now]);
    assert!(out.changed.is_empty() && out.failed.is_empty());
    assert!(!root.join("f").exists());
}

#[test]
fn an_entry_changed_since_it_was_shown_is_not_deleted_but_handed_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    write(&root.join("f"), 100);
    write(&root.join("other"), 100);
    let shown = target(&root.join("f"));
    let other = target(&root.join("other"));
    // Replaced by another file of the same name since the list was drawn (the old one kept
    // elsewhere, so its inode number is not reused at once).
    fs::rename(root.join("f"), dir.path().join("old")).expect("mv");
    write(&root.join("f"), 5000);
    let out = delete_all(&root, &[shown.clone(), other]);
    assert_eq!(out.changed.len(), 1);
    assert_ne!(out.changed[0].ino, shown.ino);
    assert!(
        root.join("f").exists() && root.join("other").exists(),
        "nothing went"
    );
    // Confirmed again as it is now: it goes.
    let again = delete_all(&root, &out.changed);
    assert!(again.failed.is_empty(), "{:?}", again.failed);
    assert!(again.changed.is_empty());
    assert!(!root.join("f").exists());
}

#[test]
fn a_path_outside_the_root_or_the_root_itself_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    write(&dir.path().join("outside/f"), 100);
    write(&root.join("f"), 100);
    let mut sneaky = target(&dir.path().join("outside/f"));
    sneaky.path = root.join("../outside/f");
    // Refused when planned, before anything is asked: nothing of them is in the plan.
    let r = RootDir::open(&root).expect("root");
    let plan = plan_of(
        &r,
        &[target(&dir.path().join("outside/f")), sneaky, target(&root)],
    );
    assert!(plan.targets.is_empty(), "{:?}", plan.targets);
    let mut kinds: Vec<&str> = plan
        .refused
        .iter()
        .map(|e| match e {
            DeleteError::OutsideRoot(_) => "outside",
            DeleteError::Root(_) => "root",
            _ => "other",
        })
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["outside", "outside", "root"], "{:?}", plan.refused);
    let out = delete::delete(
        &r,
        &plan,
        &Progress::default(),
        &mut Answer(Decision::Abort, Vec::new()),
    );
    assert!(dir.path().join("outside/f").exists());
    assert!(root.exists());
    assert!(out.failed.is_empty(), "{:?}", out.failed);
    assert_eq!(out.items, 0);
    // The walk refuses them too, whatever the plan says (a plan of root/f whose target is
    // then made to name the outside, or the root).
    for (path, outside) in [(root.join("../outside/f"), true), (root.clone(), false)] {
        let mut plan = plan_of(&r, &[target(&root.join("f"))]);
        assert!(plan.refused.is_empty(), "{:?}", plan.refused);
        plan.targets[0].path = path;
        let out = delete::delete(
            &r,
            &plan,
            &Progress::default(),
            &mut Answer(Decision::Abort, Vec::new()),
        );
        assert_eq!(out.failed.len(), 1, "{:?}", out.failed);
        assert!(
            matches!(
                (&out.failed[0], outside),
                (DeleteError::OutsideRoot(_), true) | (DeleteError::Root(_), false)
            ),
            "{:?}",
            out.failed
        );
        assert_eq!(out.items, 0);
        assert!(dir.path().join("outside/f").exists() && root.join("f").exists());
    }
    // And through the command line.
    let cli = run(dtui()
        .args(["delete", "--no-cache", "-y"])
        .arg(&root)
        .arg(dir.path().join("outside/f")));
    assert_eq!(cli.status.code(), Some(1), "{cli:?}");
    assert!(String::from_utf8_lossy(&cli.stderr).contains("not inside the root"));
    assert!(dir.path().join("outside/f").exists());
    let cli = run(dtui()
        .args(["delete", "--no-cache", "-y"])
        .arg(&root)
        .arg(&root));
    assert_eq!(cli.status.code(), Some(1), "{cli:?}");
    assert!(root.join("f").exists());
}

/// Swaps a directory for a symlink to the outside as soon as the walk enters its parent.
struct Swapper {
    at: PathBuf,
    victim: PathBuf,
    outside: PathBuf,
    done: bool,
}

impl Listener for Swapper {
    fn failed(&mut self, _: &DeleteError) -> Decision {
        Decision::Ignore
    }

    fn entered(&mut self, dir: &Path) {
        if dir == self.at && !self.done {
            self.done = true;
            let away = self.at.parent().expect("parent").join("moved-away");
            fs::rename(&self.victim, away).expect("move the dir away");
            symlink(&self.outside, &self.victim).expect("symlink in its place");
        }
    }
}

#[test]
fn a_directory_swapped_for_a_symlink_while_the_worker_runs_touches_nothing_outside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    let outside = dir.path().join("outside");
    for i in 0..20 {
        write(&outside.join(format!("precious{i}")), 100);
    }
    for i in 0..20 {
        write(&root.join(format!("d/victim/f{i}")), 100);
    }
    let r = RootDir::open(&root).expect("root");
    let mut swapper = Swapper {
        at: root.join("d"),
        victim: root.join("d/victim"),
        outside: outside.clone(),
        done: false,
    };
    let out = delete::delete(
        &r,
        &plan_of(&r, &[target(&root.join("d"))]),
        &Progress::default(),
        &mut swapper,
    );
    assert!(swapper.done, "the swap ran");
    assert_eq!(find_count(&outside), 20, "nothing outside was touched");
    // The link is not what was confirmed: it stays, said without a question.
    assert!(
        fs::symlink_metadata(root.join("d/victim"))
            .expect("the link stays")
            .file_type()
            .is_symlink()
    );
    assert!(out.failed.is_empty(), "{:?}", out.failed);
    assert_eq!(out.left, [DeleteError::Changed(root.join("d/victim"))]);
    assert_eq!(
        find_count(&root.join("moved-away")),
        20,
        "the directory moved away is whole"
    );
}

/// Replaces a later target with another directory of the tree once the walk is inside an
/// earlier one: after the first check, before that target is reached.
struct Replacer {
    at: PathBuf,
    target: PathBuf,
    with: PathBuf,
    done: bool,
}

impl Listener for Replacer {
    fn failed(&mut self, _: &DeleteError) -> Decision {
        Decision::Ignore
    }

    fn entered(&mut self, dir: &Path) {
        if dir == self.at && !self.done {
            self.done = true;
            let mut away = std::ffi::OsString::from("shown-");
            away.push(self.target.file_name().expect("a name"));
            let away = self.at.parent().expect("parent").join(away);
            fs::rename(&self.target, away).expect("move the shown one away");
            fs::rename(&self.with, &self.target).expect("another in its place");
        }
    }
}

#[test]
fn a_later_target_replaced_while_an_earlier_one_is_deleted_is_not_deleted() {
    // Targets are checked against what was shown, then deleted one by one: a target replaced
    // while an earlier (large) one was being deleted used to be deleted as it was then,
    // unchecked, with everything in it.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    for i in 0..20 {
        write(&root.join(format!("a/f{i}")), 100);
    }
    fs::create_dir_all(root.join("b")).expect("mkdir");
    for i in 0..20 {
        write(&root.join(format!("keep/precious{i}")), 100);
    }
    write(&root.join("c"), 10);
    let r = RootDir::open(&root).expect("root");
    let mut replacer = Replacer {
        at: root.join("a"),
        target: root.join("b"),
        with: root.join("keep"),
        done: false,
    };
    let out = delete::delete(
        &r,
        &plan_of(
            &r,
            &[
                target(&root.join("a")),
                target(&root.join("b")),
                target(&root.join("c")),
            ],
        ),
        &Progress::default(),
        &mut replacer,
    );
    assert!(replacer.done, "the replacement ran");
    assert_eq!(
        find_count(&root.join("b")),
        20,
        "the directory now at b stays whole"
    );
    assert!(
        !root.join("a").exists() && !root.join("c").exists(),
        "the others went"
    );
    assert!(
        out.failed
            .iter()
            .any(|e| matches!(e, DeleteError::Changed(p) if p == &root.join("b"))),
        "{:?}",
        out.failed
    );
    assert!(
        out.done.iter().all(|d| d.path != root.join("b")),
        "{:?}",
        out.done
    );

    // The same for a plain file replaced by another one.
    write(&root.join("x/f"), 100);
    write(&root.join("y"), 100);
    write(&root.join("z"), 7000);
    let mut replacer = Replacer {
        at: root.join("x"),
        target: root.join("y"),
        with: root.join("z"),
        done: false,
    };
    let out = delete::delete(
        &r,
        &plan_of(&r, &[target(&root.join("x")), target(&root.join("y"))]),
        &Progress::default(),
        &mut replacer,
    );
    assert!(replacer.done, "the replacement ran");
    assert_eq!(fs::metadata(root.join("y")).expect("y stays").len(), 7000);
    assert_eq!(out.failed.len(), 1, "{:?}", out.failed);
}

fn engine(root: &Path, cache: &Path) -> (Engine, Receiver<EngineMsg>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let opts = EngineOptions::new(
        CacheOptions {
            dir: Some(cache.to_path_buf()),
            disabled: false,
        },
        ScanOptions::default(),
    );
    let e = Engine::start(root, opts, tx).expect("engine");
    while !matches!(
        rx.recv_timeout(Duration::from_secs(20)).expect("ready"),
        EngineMsg::Ready
    ) {}
    (e, rx)
}

fn wait_applied(rx: &Receiver<EngineMsg>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let EngineMsg::Applied(_) = rx.recv_timeout(left).expect("a batch applied") {
            return;
        }
    }
}

/// What `targets` hold in the engine's tree, as the browser plans them.
fn tree_plan(e: &Engine, targets: Vec<Target>) -> delete::Plan {
    delete::plan::plan(
        &e.root_dir,
        Some(&e.tree),
        targets,
        &Progress::default(),
        &mut Answer(Decision::Abort, Vec::new()),
    )
}

/// Runs a job on the worker with the engine told, answering errors `answer`.
fn run_job(e: &Engine, job: delete::worker::Job) -> delete::worker::Summary {
    let (tx, rx) = crossbeam_channel::unbounded();
    let w = delete::worker::spawn(
        Arc::clone(&e.root_dir),
        Some(Arc::clone(&e.tree)),
        job,
        Some(e.user_changes()),
        Box::new(move |m| {
            let _ = tx.send(m);
        }),
    )
    .expect("worker");
    loop {
        match rx
            .recv_timeout(Duration::from_secs(20))
            .expect("worker message")
        {
            delete::worker::DeleteMsg::Done(s) => return s,
            delete::worker::DeleteMsg::Failed(_) => w.answer(Decision::Abort),
            delete::worker::DeleteMsg::Progress { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn deleting_a_hard_link_moves_the_charge_to_the_other_name_and_logs_the_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    write(&root.join("a/first"), 200_000);
    fs::create_dir_all(root.join("b")).expect("mkdir");
    fs::hard_link(root.join("a/first"), root.join("b/second")).expect("link");
    write(&root.join("c/big"), 300_000);
    let cache = dir.path().join("cache");
    let (e, rx) = engine(&root, &cache);
    let (charged, total_before) = {
        let t = tree::read(&e.tree);
        let a = t.lookup(&root.join("a/first")).expect("a/first");
        let b = t.lookup(&root.join("b/second")).expect("b/second");
        assert_eq!(t.flags(b) & flags::HARDLINK_DUP, flags::HARDLINK_DUP);
        (Target::of(&t, a), t.totals(t.root()).disk)
    };
    let s = run_job(
        &e,
        delete::worker::Job::Delete(tree_plan(&e, vec![charged.clone()])),
    );
    assert_eq!(s.items, 1);
    assert_eq!(
        s.bytes, 0,
        "a name of an inode with another name frees nothing"
    );
    wait_applied(&rx);
    {
        let t = tree::read(&e.tree);
        assert!(t.lookup(&root.join("a/first")).is_none());
        let b = t.lookup(&root.join("b/second")).expect("b/second");
        assert_eq!(
            t.flags(b) & flags::HARDLINK_DUP,
            0,
            "the other name is charged now"
        );
        assert_eq!(
            t.totals(t.lookup(&root.join("b")).expect("b")).disk,
            charged.disk + 4096
        );
        assert_eq!(
            t.totals(t.root()).disk,
            total_before,
            "the inode is still on the disk"
        );
    }
    // A plain file frees its blocks, in the tree, the cache and the log.
    let big = {
        let t = tree::read(&e.tree);
        Target::of(&t, t.lookup(&root.join("c/big")).expect("c/big"))
    };
    let s = run_job(
        &e,
        delete::worker::Job::Delete(tree_plan(&e, vec![big.clone()])),
    );
    assert_eq!(s.bytes, big.disk);
    wait_applied(&rx);
    assert_eq!(
        tree::read(&e.tree).totals(tree::read(&e.tree).root()).disk,
        total_before - big.disk
    );
    let _ = e.shutdown();
    let db = fs::read_dir(&cache)
        .expect("cache dir")
        .filter_map(Result::ok)
        .map(|d| d.path())
        .find(|p| p.extension().is_some_and(|x| x == "db"))
        .expect("a database");
    let conn = rusqlite::Connection::open(&db).expect("open db");
    let rows: Vec<(String, Vec<u8>, Option<i64>)> = conn
        .prepare("SELECT kind, path, bytes FROM mutation_log WHERE backend = 'user' ORDER BY seq")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        rows,
        vec![
            (
                "remove".into(),
                root.join("a/first").into_os_string().into_encoded_bytes(),
                Some(0)
            ),
            (
                "remove".into(),
                root.join("c/big").into_os_string().into_encoded_bytes(),
                Some(big.disk as i64)
            ),
        ]
    );
}

#[test]
fn a_version_2_cache_gains_the_bytes_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    drop(disktracker::store::Store::open(&db, b"/r").expect("create"));
    {
        let c = rusqlite::Connection::open(&db).expect("open");
        c.execute_batch("ALTER TABLE mutation_log DROP COLUMN bytes; PRAGMA user_version = 2;")
            .expect("back to v2");
    }
    drop(disktracker::store::Store::open(&db, b"/r").expect("migrate"));
    let c = rusqlite::Connection::open(&db).expect("open");
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(v, disktracker::store::SCHEMA_VERSION);
    c.execute("INSERT INTO mutation_log (time, kind, path, backend, batch, bytes) VALUES (0, 'remove', x'00', 'user', 1, 42)", [])
        .expect("the bytes column exists");
}

#[test]
fn trash_writes_its_trashinfo_and_undo_puts_the_entry_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    write(&root.join("d/sub/f"), 5000);
    write(&root.join("odd name%"), 10);
    let data = dir.path().join("data");
    fs::create_dir_all(&data).expect("mkdir");
    // SAFETY: no other test of this binary reads XDG_DATA_HOME; spawned processes only
    // inherit it.
    unsafe { std::env::set_var("XDG_DATA_HOME", &data) };
    let r = RootDir::open(&root).expect("root");
    let t = trash::trash(&r, &target(&root.join("d"))).expect("trashed");
    let odd = trash::trash(&r, &target(&root.join("odd name%"))).expect("trashed");
    assert!(!root.join("d").exists());
    assert!(data.join("Trash/files/d/sub/f").exists());
    let info = fs::read_to_string(data.join("Trash/info/d.trashinfo")).expect("trashinfo");
    assert!(info.starts_with("[Trash Info]\n"), "{info}");
    assert!(
        info.contains(&format!("\nPath={}\n", root.join("d").display())),
        "{info}"
    );
    assert!(info.contains("\nDeletionDate=20"), "{info}");
    let info = fs::read_to_string(odd.info()).expect("trashinfo");
    assert!(info.contains("odd%20name%25\n"), "{info}");
    // A second entry of the same name gets another name in the trash.
    write(&root.join("d"), 1);
    let second = trash::trash(&r, &target(&root.join("d"))).expect("trashed");
    assert_eq!(second.name, b"d.2");
    // Undo: not over an entry that took the name meanwhile...
    write(&root.join("d"), 1);
    assert!(trash::restore(&r, &t).is_err());
    assert!(data.join("Trash/files/d").exists());
    // ...and back once the name is free.
    fs::remove_file(root.join("d")).expect("rm");
    trash::restore(&r, &t).expect("restored");
    assert!(root.join("d/sub/f").exists());
    assert!(!data.join("Trash/info/d.trashinfo").exists());
}

#[test]
fn a_permission_failure_half_way_is_ignored_or_aborts_as_nobody() {
    for (answer, code) in [("ignore", 1), ("abort", 1)] {
        let dir = world_tempdir();
        let root = dir.path().join("root");
        for i in 0..10 {
            write(&root.join(format!("d/f{i}")), 10);
        }
        write(&root.join("d/locked/x"), 10);
        for d in [&root, &root.join("d")] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o777)).expect("chmod");
        }
        // Owned by root and not writable by nobody: `x` cannot go, nor `locked`.
        fs::set_permissions(root.join("d/locked"), fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let out = run(dtui_unprivileged()
            .args(["delete", "--no-cache", "-y", "--on-error", answer])
            .arg(&root)
            .arg(root.join("d")));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{answer}: {stdout} {stderr}");
        assert!(root.join("d/locked/x").exists());
        assert!(stderr.contains("Permission denied"), "{stderr}");
        assert!(stdout.contains("could not delete"), "{stdout}");
        let left = find_count(&root.join("d"));
        if answer == "ignore" {
            assert_eq!(left, 2, "everything else went: {stdout}");
        } else {
            assert!(stdout.contains("(aborted)"), "{stdout}");
        }
    }
}

#[test]
fn a_mount_point_inside_is_refused_and_what_is_mounted_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    write(&root.join("d/f"), 10);
    fs::create_dir_all(root.join("d/mnt")).expect("mkdir");
    fs::create_dir_all(root.join("m")).expect("mkdir");
    let script = format!(
        "set -e; mount -t tmpfs none {d}/mnt; echo hi > {d}/mnt/inside; \
         mount -t tmpfs none {m}; echo hi > {m}/inside; \
         {bin} delete --no-cache -y --on-error ignore {root} {d} || echo d-rc=$?; \
         {bin} delete --no-cache -y {root} {m} || echo m-rc=$?; \
         {bin} delete --no-cache -y {root} {m}/inside || echo below-rc=$?; \
         echo x > {root}/x; {bin} delete --no-cache -y {root} {m}/inside {root}/x || echo abort-rc=$?; \
         test -e {root}/x && echo x-kept; \
         {bin} delete --no-cache -y --on-error ignore {root} {m}/inside {root}/x || echo partial-rc=$?; \
         test -e {root}/x || echo x-gone; \
         test -f {d}/mnt/inside && echo inside-kept; test -f {m}/inside && echo m-kept",
        d = root.join("d").display(),
        m = root.join("m").display(),
        root = root.display(),
        bin = env!("CARGO_BIN_EXE_dtui"),
    );
    let Some((stdout, stderr)) = in_private_mount_namespace(&script) else {
        return;
    };
    assert!(stdout.contains("inside-kept"), "{stdout} {stderr}");
    assert!(stdout.contains("m-kept"), "{stdout} {stderr}");
    assert!(
        stderr.contains("another filesystem is mounted there"),
        "{stderr}"
    );
    assert!(stdout.contains("m-rc=1"), "{stdout} {stderr}");
    // An entry below the mount point (not itself one) is refused naming the mount point.
    assert!(stdout.contains("below-rc=1"), "{stdout} {stderr}");
    let below = format!(
        "{}/inside: on the filesystem mounted at {} (",
        root.join("m").display(),
        root.join("m").display()
    );
    assert!(stderr.contains(&below), "{stderr}");
    // With something that could go: a refusal aborts the whole delete, as any error does
    // (all or nothing for a script with -y); with --on-error ignore, the rest goes. Either way
    // the refusal is said before anything is asked, and the status says not all went.
    assert!(stdout.contains("abort-rc=1"), "{stdout} {stderr}");
    assert!(stdout.contains("x-kept"), "{stdout} {stderr}");
    assert!(stdout.contains("partial-rc=1"), "{stdout} {stderr}");
    assert!(stdout.contains("x-gone"), "{stdout} {stderr}");
    assert_eq!(
        stderr
            .matches("(dtui deletes only on the root's filesystem) (left)")
            .count(),
        3,
        "{stderr}"
    );
    assert!(stderr.contains("nothing was deleted"), "{stderr}");
    assert!(!root.join("d/f").exists(), "the rest of d went: {stdout}");
}

#[test]
fn trash_on_a_filesystem_without_the_home_trash_uses_its_top_directory_never_a_symlinked_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (vol, home) = (dir.path().join("vol"), dir.path().join("home"));
    for d in [&vol, &home] {
        fs::create_dir_all(d).expect("mkdir");
    }
    // A fresh tmpfs (another filesystem than the home trash's) holding the root, and a shared
    // `.Trash` there that is a symlink to a sticky directory on the same tmpfs: the spec says
    // not to use it, so the entries go to `.Trash-$uid` at the tmpfs's top.
    let script = format!(
        "set -e; mount -t tmpfs none {vol}; mkdir -p {vol}/r/sub; \
         head -c 50000 /dev/zero > {vol}/r/sub/big; echo x > '{vol}/r/odd %name'; \
         mkdir -m 1777 {vol}/evil; ln -s evil {vol}/.Trash; \
         HOME={home} XDG_DATA_HOME= {bin} delete --trash --no-cache -y {vol}/r {vol}/r/sub \
           '{vol}/r/odd %name'; echo rc=$?; \
         test -f {vol}/.Trash-0/files/sub/big && echo big-trashed; \
         test -f '{vol}/.Trash-0/files/odd %name' && echo odd-trashed; \
         cat {vol}/.Trash-0/info/sub.trashinfo '{vol}/.Trash-0/info/odd %name.trashinfo'; \
         stat -c 'mode=%a' {vol}/.Trash-0; ls -A {vol}/evil | wc -l | sed 's/^/evil=/'",
        vol = vol.display(),
        home = home.display(),
        bin = env!("CARGO_BIN_EXE_dtui"),
    );
    let Some((stdout, stderr)) = in_private_mount_namespace(&script) else {
        return;
    };
    assert!(stdout.contains("rc=0"), "{stdout} {stderr}");
    assert!(stdout.contains("big-trashed"), "{stdout} {stderr}");
    assert!(stdout.contains("odd-trashed"), "{stdout} {stderr}");
    // Paths in a per-filesystem trash are relative to its top, percent-encoded.
    assert!(stdout.contains("\nPath=r/sub\n"), "{stdout}");
    assert!(stdout.contains("\nPath=r/odd%20%25name\n"), "{stdout}");
    assert!(stdout.contains("mode=700"), "{stdout}");
    assert!(
        stdout.contains("evil=0"),
        "nothing went through the symlink: {stdout}"
    );
    assert!(
        stdout.contains("trashed 3 items"),
        "sub, big and the odd name: {stdout}"
    );
}

#[test]
fn a_home_without_a_data_directory_gets_its_trash_created_there() {
    // Regression: the home trash was judged by `~/.local/share` itself, so on an account
    // where it did not exist yet an entry on the home filesystem went to `.Trash-$uid` at the
    // top of that filesystem (`/.Trash-0`) instead of `~/.local/share/Trash`.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    write(&root.join("junk/f"), 3000);
    let home = dir.path().join("home");
    fs::create_dir_all(&home).expect("mkdir");
    let out = run(dtui()
        .env("HOME", &home)
        .env_remove("XDG_DATA_HOME")
        .args(["delete", "--trash", "-y", "--no-cache"])
        .arg(&root)
        .arg(root.join("junk")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trash = home.join(".local/share/Trash");
    assert!(trash.join("files/junk/f").exists());
    assert!(trash.join("info/junk.trashinfo").exists());
    let mode = fs::metadata(&trash).expect("trash").permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "the trash is private");
}
