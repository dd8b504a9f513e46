//! A delete removes what was confirmed and nothing else: the plan (`delete::plan`) against
//! directories moved in or out while the walk runs (at known points, through the listener),
//! excluded directories counted on the disk, a chain thousands deep under a low fd limit, and
//! the real `dtui delete` with something moved in while it asks.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use disktracker::delete::{self, Decision, DeleteError, Listener, Plan, Progress, Target};
use disktracker::fs::RootDir;
use disktracker::tree::Kind;

fn target(path: &Path) -> Target {
    let m = fs::symlink_metadata(path).expect("stat");
    Target {
        path: path.to_path_buf(),
        dev: m.dev(),
        ino: Some(m.ino()),
        kind: if m.is_dir() { Kind::Dir } else { Kind::File },
        apparent: m.len(),
        mtime: m.mtime(),
        disk: m.blocks() * 512,
        items: 1,
        bare: false,
    }
}

fn files(dir: &Path, n: usize) {
    fs::create_dir_all(dir).expect("mkdir");
    for i in 0..n {
        fs::write(dir.join(format!("f{i}")), b"data").expect("write");
    }
}

fn tree_root(dir: &tempfile::TempDir) -> PathBuf {
    let root = dir.path().join("root");
    fs::create_dir_all(&root).expect("mkdir");
    fs::canonicalize(root).expect("canon")
}

/// Runs `act` once, as the walk enters `at` (its listing just read); errors are ignored.
struct OnEnter<F: FnMut()> {
    at: PathBuf,
    act: Option<F>,
}

impl<F: FnMut()> Listener for OnEnter<F> {
    fn failed(&mut self, _: &DeleteError) -> Decision {
        Decision::Ignore
    }

    fn entered(&mut self, dir: &Path) {
        if dir == self.at
            && let Some(mut act) = self.act.take()
        {
            act();
        }
    }
}

struct Quiet;

impl Listener for Quiet {
    fn failed(&mut self, _: &DeleteError) -> Decision {
        Decision::Abort
    }
}

fn plan_of(r: &RootDir, targets: &[Target]) -> Plan {
    delete::plan::plan(r, None, targets.to_vec(), &Progress::default(), &mut Quiet)
}

/// Deletes `victim` as planned now, running `act` when the walk enters `at`.
fn delete_racing(
    root: &Path,
    victim: &Path,
    at: &Path,
    act: impl FnMut(),
) -> (Plan, delete::Outcome) {
    let r = RootDir::open(root).expect("root");
    let plan = plan_of(&r, &[target(victim)]);
    let mut hook = OnEnter {
        at: at.to_path_buf(),
        act: Some(act),
    };
    let out = delete::delete(&r, &plan, &Progress::default(), &mut hook);
    assert!(hook.act.is_none(), "the walk entered {}", at.display());
    (plan, out)
}

#[test]
fn a_directory_moved_into_the_victim_during_the_walk_is_left_and_reported() {
    // Regression: the walk deleted whatever the disk held when it got there, so a directory
    // moved into the victim after the confirmation went with it.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    let victim = root.join("victim");
    files(&victim.join("sub"), 10);
    files(&victim, 10);
    files(&root.join("precious"), 50);
    files(&root.join("precious2"), 20);
    let (plan, out) = delete_racing(&root, &victim, &victim, || {
        // Into `sub`, not listed yet; and into the victim itself, listed already.
        fs::rename(root.join("precious"), victim.join("sub/precious")).expect("mv");
        fs::rename(root.join("precious2"), victim.join("precious2")).expect("mv");
    });
    assert_eq!(
        find_count(&victim.join("sub/precious")),
        50,
        "nothing of it went"
    );
    assert_eq!(
        find_count(&victim.join("precious2")),
        20,
        "nothing of it went"
    );
    // sub, sub/precious and its 50, precious2 and its 20.
    assert_eq!(find_count(&victim), 1 + 1 + 50 + 1 + 20, "the rest went");
    assert!(out.failed.is_empty(), "{:?}", out.failed);
    assert!(
        out.items <= plan.items(),
        "{} > {}",
        out.items,
        plan.items()
    );
    assert_eq!(out.items, 10 + 10, "the files confirmed, no directory");
    let mut left = out.left.clone();
    left.sort_by(|a, b| a.path().cmp(b.path()));
    assert_eq!(
        left,
        [
            DeleteError::NotShown(victim.join("precious2")),
            DeleteError::NotShown(victim.join("sub/precious")),
        ]
    );
    assert!(!out.done[0].whole);
}

#[test]
fn a_directory_moved_out_of_the_root_during_the_walk_is_not_emptied_there() {
    // Regression: the walk held the directory's fd and went on emptying it wherever it was
    // moved to.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    let victim = root.join("victim");
    files(&victim.join("a"), 50);
    files(&victim.join("b"), 5);
    let outside = dir.path().join("outside-a");
    let (_, out) = delete_racing(&root, &victim, &victim.join("a"), || {
        fs::rename(victim.join("a"), &outside).expect("mv out");
    });
    assert_eq!(find_count(&outside), 50, "nothing went outside the root");
    assert!(
        out.left.contains(&DeleteError::Moved(victim.join("a"))),
        "{:?}",
        out.left
    );
    assert!(!victim.join("b").exists(), "the rest went");

    // An ancestor moved out while the walk is deeper: found by the check of the whole chain
    // (amortized), long before the directory is emptied.
    let victim = root.join("victim2");
    files(&victim.join("a/deep"), 300);
    let outside = dir.path().join("outside-a2");
    let (_, out) = delete_racing(&root, &victim, &victim.join("a/deep"), || {
        fs::rename(victim.join("a"), &outside).expect("mv out");
    });
    let kept = find_count(&outside.join("deep"));
    assert!(kept >= 200, "only {kept} of 300 stayed outside the root");
    assert!(
        out.left.contains(&DeleteError::Moved(victim.join("a"))),
        "{:?}",
        out.left
    );
}

#[test]
fn a_plan_counts_what_it_holds_and_the_delete_never_exceeds_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    let victim = root.join("v");
    files(&victim.join("x/y"), 7);
    files(&victim, 3);
    let r = RootDir::open(&root).expect("root");
    let plan = plan_of(&r, &[target(&victim)]);
    // v, x, y, 7 + 3 files.
    assert_eq!(plan.items(), 13);
    files(&victim.join("x/y"), 9); // two more files, not planned
    let out = delete::delete(&r, &plan, &Progress::default(), &mut Quiet);
    assert_eq!(out.items, 10, "the 10 files planned; no directory is empty");
    assert_eq!(out.left_count, 2);
    assert_eq!(find_count(&victim), 4, "x, y and the two new files");
}

#[test]
fn error_lines_keep_a_readable_length() {
    // Regression: a failure deep in a tree printed its whole path (thousands of characters).
    let deep: PathBuf = std::iter::repeat_n("component", 500).collect();
    let line = DeleteError::Io {
        path: Path::new("/").join(&deep).join("the-end"),
        errno: nix::errno::Errno::EACCES,
    }
    .to_string();
    assert!(
        line.chars().count() <= 160,
        "{} chars: {line}",
        line.chars().count()
    );
    assert!(line.starts_with("/component/"), "{line}");
    assert!(
        line.ends_with("component/the-end: Permission denied"),
        "{line}"
    );
    assert!(line.contains('…'), "{line}");
}

/// `dtui delete -y --no-cache ROOT PATH` with at most `nofile` open files.
fn delete_limited(nofile: u32, root: &Path, path: &Path) -> std::process::Output {
    run(std::process::Command::new("prlimit")
        .arg(format!("--nofile={nofile}:{nofile}"))
        .arg(env!("CARGO_BIN_EXE_dtui"))
        .env("XDG_CACHE_HOME", test_cache_home())
        .args(["delete", "--no-cache", "-y"])
        .arg(root)
        .arg(path))
}

#[test]
fn a_chain_thousands_deep_goes_under_a_low_fd_limit() {
    // Regression: the walk held one fd per level, so `ulimit -n 256` stopped it at EMFILE.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    fs::write(root.join("keep"), b"x").expect("write");
    // 256 as asked; 34 leaves less than the walk's window of fds once the process's own are
    // open, so it gives some up when `EMFILE` says so.
    for nofile in [256, 34] {
        let chain = deep_chain(&root, 3000);
        let out = delete_limited(nofile, &root, &chain);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{nofile}: {stdout}\n{stderr}");
        assert!(stdout.contains("deleted 3002 items"), "{stdout}");
        assert!(!chain.exists());
        assert!(root.join("keep").exists());
        assert!(
            stderr.lines().all(|l| l.chars().count() <= 200),
            "no endless line: {stderr}"
        );
    }
}

#[test]
fn running_short_of_fds_gives_fds_up_and_is_never_taken_for_a_move() {
    // Regressions: (1) the walk's periodic check of its chain (by `..` opens) took `EMFILE` for
    // a directory moved away: with exactly the walk's window of fds and one to spare, a chain
    // 40 deep with 500 files at its bottom stopped at the chain check, said "moved away while
    // being deleted" and left most of it (exit 1); (2) giving fds up halved the window from 32
    // whatever was held, so a walk not yet 32 deep gave nothing up and stopped at `EMFILE`
    // (nofile 12 to 27 here). Every limit from a few fds above the process's own to above the
    // window must delete the whole of it.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    fs::write(root.join("keep"), b"x").expect("write");
    // Below the window a few (each `EMFILE` is met the same way); around and above it, each
    // (where exactly one fd is spare depends on what the process holds).
    for nofile in [10, 13, 16, 20, 24].into_iter().chain(28..=52) {
        let chain = deep_chain(&root, 40);
        let bottom: PathBuf = std::iter::once(chain.clone())
            .chain(std::iter::repeat_n(PathBuf::from("d"), 40))
            .collect();
        for i in 0..500 {
            fs::write(bottom.join(format!("f{i}")), b"").expect("write");
        }
        let out = delete_limited(nofile, &root, &chain);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "nofile {nofile}: {stdout}\n{stderr}");
        assert!(
            stdout.contains("deleted 542 items"),
            "nofile {nofile}: {stdout}"
        );
        assert!(!chain.exists(), "nofile {nofile}");
    }
    assert!(root.join("keep").exists());
}

#[test]
fn an_excluded_directory_is_counted_on_the_disk_and_deleted_without_a_false_change() {
    // Regression: an excluded directory is known to the tree by name only; its delete said
    // "changed on disk since it was shown" and deleted nothing (the browser then asked again
    // and deleted what it had never counted).
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    for p in 0..10 {
        files(&root.join(format!("node_modules/p{p}")), 30);
    }
    files(&root.join("project/node_modules/q"), 5);
    files(&root.join("project/src"), 3);
    let out = run(dtui()
        .args(["delete", "--no-cache", "--exclude", "node_modules", "-y"])
        .arg(&root)
        .arg(root.join("node_modules"))
        .arg(root.join("project")));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!stderr.contains("changed on disk"), "{stderr}");
    assert!(
        stderr.contains("counted on the disk: 310 items"),
        "{stderr}"
    );
    // node_modules: itself, 10 + 300; project: itself, node_modules, q, 5, src, 3.
    assert!(stdout.contains("deleted 323 items"), "{stdout}");
    assert_eq!(find_count(&root), 0);
}

#[test]
fn dtui_delete_leaves_what_moved_in_while_it_asked() {
    // Regression: `dtui delete` deleted what the disk held once answered, not what it had
    // counted when it asked.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    let victim = root.join("victim");
    files(&victim.join("sub"), 10);
    files(&root.join("precious"), 40);
    let mut child = dtui()
        .args(["delete", "--no-cache"])
        .arg(&root)
        .arg(&victim)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dtui delete starts");
    let mut stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut said = Vec::new();
    while !String::from_utf8_lossy(&said).contains("[y/N]") {
        said.extend(
            rx.recv_timeout(Duration::from_secs(20))
                .expect("the question"),
        );
    }
    assert!(
        String::from_utf8_lossy(&said).contains("delete victim (12 items"),
        "{}",
        String::from_utf8_lossy(&said)
    );
    fs::rename(root.join("precious"), victim.join("sub/precious")).expect("mv");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"y\n")
        .expect("answer");
    let out = child.wait_with_output().expect("dtui delete ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(find_count(&victim.join("sub/precious")), 40, "{stdout}");
    assert!(stdout.contains("deleted 10 items"), "{stdout}");
    assert!(
        stdout.contains("left 1 entry (not what was confirmed)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sub/precious: not shown when the delete was confirmed"),
        "{stdout}"
    );
}

#[test]
fn a_deleted_excluded_directory_leaves_the_tree() {
    // Regression: the engine re-checked an excluded name without a stat (as if a listing had
    // just shown it), so once deleted it stayed in the tree as a ghost row of unknown kind.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    files(&root.join("node_modules/p"), 20);
    fs::write(root.join("keep"), b"x").expect("write");
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut scan = disktracker::scan::ScanOptions::default();
    scan.excludes =
        disktracker::scan::Excludes::new(&["node_modules".to_owned()]).expect("pattern");
    let opts = disktracker::engine::EngineOptions::new(
        disktracker::cache::CacheOptions {
            dir: None,
            disabled: true,
        },
        scan,
    );
    let e = disktracker::engine::Engine::start(&root, opts, tx).expect("engine");
    while !matches!(
        rx.recv_timeout(Duration::from_secs(20)).expect("ready"),
        disktracker::engine::EngineMsg::Ready
    ) {}
    let shown = {
        let t = disktracker::tree::read(&e.tree);
        Target::of(&t, t.lookup(&root.join("node_modules")).expect("listed"))
    };
    assert!(shown.bare, "the tree knows it by name only");
    let plan = delete::plan::plan(
        &e.root_dir,
        Some(&e.tree),
        vec![shown],
        &Progress::default(),
        &mut Quiet,
    );
    assert_eq!(plan.items(), 22, "counted on the disk");
    let (mtx, mrx) = crossbeam_channel::unbounded();
    let _worker = delete::worker::spawn(
        std::sync::Arc::clone(&e.root_dir),
        Some(std::sync::Arc::clone(&e.tree)),
        delete::worker::Job::Delete(plan),
        Some(e.user_changes()),
        Box::new(move |m| {
            let _ = mtx.send(m);
        }),
    )
    .expect("worker");
    match mrx.recv_timeout(Duration::from_secs(20)).expect("done") {
        delete::worker::DeleteMsg::Done(s) => assert_eq!((s.items, s.failed.len()), (22, 0)),
        other => panic!("{other:?}"),
    }
    while !matches!(
        rx.recv_timeout(Duration::from_secs(20)).expect("applied"),
        disktracker::engine::EngineMsg::Applied(_)
    ) {}
    let t = disktracker::tree::read(&e.tree);
    assert!(t.lookup(&root.join("node_modules")).is_none(), "no ghost");
    assert!(t.lookup(&root.join("keep")).is_some());
    drop(t);
    let _ = e.shutdown();
}

/// Disk usage of one entry (its own blocks).
fn blocks_of(path: &Path) -> u64 {
    fs::symlink_metadata(path).expect("stat").blocks() * 512
}

/// `root` scanned into a tree (excluding `exclude`), as the browser would show it.
fn scanned(root: &Path, exclude: &[&str]) -> std::sync::RwLock<disktracker::tree::Tree> {
    let opts = disktracker::scan::ScanOptions {
        excludes: disktracker::scan::Excludes::new(exclude).expect("pattern"),
        ..Default::default()
    };
    let (t, _) = disktracker::scan::scan_path(root, &opts, &disktracker::scan::Progress::default())
        .expect("scan");
    std::sync::RwLock::new(t)
}

fn shown(tree: &std::sync::RwLock<disktracker::tree::Tree>, path: &Path) -> Target {
    let t = disktracker::tree::read(tree);
    Target::of(&t, t.lookup(path).expect("in the tree"))
}

#[test]
fn a_hard_link_with_a_name_outside_the_selection_frees_nothing() {
    // Regression (issue 21): the dialog counted a directory's totals, which hold the bytes of
    // a hard-linked file charged inside it even when another name outside keeps them.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    let victim = root.join("victim");
    fs::create_dir_all(victim.join("both")).expect("mkdir");
    fs::create_dir_all(victim.join("ex")).expect("mkdir");
    fs::create_dir_all(root.join("outside")).expect("mkdir");
    write(&victim.join("big"), 1 << 20);
    fs::hard_link(victim.join("big"), root.join("outside/big")).expect("link");
    write(&victim.join("small"), 5000);
    // Both names inside: freed, once.
    write(&victim.join("both/p"), 200_000);
    fs::hard_link(victim.join("both/p"), victim.join("both/q")).expect("link");
    // In an excluded directory (counted on the disk): one kept, one freed.
    write(&victim.join("ex/l"), 300_000);
    fs::hard_link(victim.join("ex/l"), root.join("outside/l")).expect("link");
    write(&victim.join("ex/m"), 7000);
    let freed: u64 = ["", "both", "ex", "small", "both/p", "ex/m"]
        .iter()
        .map(|p| blocks_of(&victim.join(p)))
        .sum();
    let kept = blocks_of(&victim.join("big")) + blocks_of(&victim.join("ex/l"));
    let r = RootDir::open(&root).expect("root");

    let on_disk = plan_of(&r, &[target(&victim)]);
    assert_eq!(on_disk.disk(), freed, "counted on the disk");
    assert_eq!((on_disk.kept, on_disk.kept_files), (kept, 2));

    let tree = scanned(&root, &["ex"]);
    let plan = delete::plan::plan(
        &r,
        Some(&tree),
        vec![shown(&tree, &victim)],
        &Progress::default(),
        &mut Quiet,
    );
    assert_eq!(plan.disk(), freed, "from the tree");
    assert_eq!((plan.kept, plan.kept_files), (kept, 2));
    assert_eq!(plan.items(), 9);

    let out = delete::delete(&r, &plan, &Progress::default(), &mut Quiet);
    assert_eq!(out.items, 9);
    assert_eq!(
        out.bytes, freed,
        "what the walk freed is what the plan said"
    );
    assert!(root.join("outside/big").exists() && root.join("outside/l").exists());
}

#[test]
fn every_name_of_an_inode_among_the_targets_frees_it_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    fs::create_dir_all(root.join("a")).expect("mkdir");
    fs::create_dir_all(root.join("b")).expect("mkdir");
    write(&root.join("a/x"), 100_000);
    fs::hard_link(root.join("a/x"), root.join("b/y")).expect("link");
    let x = blocks_of(&root.join("a/x"));
    let (a, b) = (blocks_of(&root.join("a")), blocks_of(&root.join("b")));
    let tree = scanned(&root, &[]);
    let r = RootDir::open(&root).expect("root");
    let plan_for = |paths: &[&str]| {
        let targets = paths.iter().map(|p| shown(&tree, &root.join(p))).collect();
        delete::plan::plan(&r, Some(&tree), targets, &Progress::default(), &mut Quiet)
    };
    // One name alone, as a file or in its directory: nothing of the inode is freed.
    let one = plan_for(&["a/x"]);
    assert_eq!((one.disk(), one.kept, one.kept_files), (0, x, 1));
    let one = plan_for(&["b"]);
    assert_eq!((one.disk(), one.kept, one.kept_files), (b, x, 1));
    // Both names, in two targets: freed once.
    let both = plan_for(&["a", "b"]);
    assert_eq!((both.disk(), both.kept, both.kept_files), (a + b + x, 0, 0));
    let both = plan_for(&["a/x", "b/y"]);
    assert_eq!((both.disk(), both.kept), (x, 0));
    let out = delete::delete(&r, &both, &Progress::default(), &mut Quiet);
    assert_eq!((out.items, out.bytes), (2, x));
}

#[test]
fn dtui_delete_says_what_hard_links_outside_keep() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree_root(&dir);
    let victim = root.join("victim");
    fs::create_dir_all(&victim).expect("mkdir");
    write(&victim.join("big"), 1 << 20);
    fs::hard_link(victim.join("big"), root.join("outside")).expect("link");
    let out = run(dtui()
        .args(["delete", "--no-cache", "-y"])
        .arg(&root)
        .arg(&victim));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("Not freed, they stay: 1 MiB in 1 file with hard links outside"),
        "{stderr}"
    );
    assert!(stdout.contains("deleted 2 items"), "{stdout}");
    assert!(root.join("outside").exists());
}
