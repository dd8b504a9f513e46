//! Filesystems mounted and unmounted inside a watched root (issue 21), for every backend: the
//! live tree follows at once, with no `r`, and equals a fresh scan node by node (kind, own
//! sizes, inode, flags, items, totals) and directory by directory in device: a mount point
//! shows the mounted filesystem while it is mounted, and its own directory again (its device,
//! its own size, the files hidden under it) once it is unmounted, lazily or not, nested or not.
//!
//! Each test runs itself again in a private mount namespace (`unshare -m`), so its mounts
//! never reach the machine and go with the namespace; it needs root (skipped otherwise). The
//! mounts and the writes are made by `sh` (fanotify does not report the watcher's own pid).

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::difftree::compare::{compare, dump_tree};
use crossbeam_channel::Receiver;
use disktracker::cache::CacheOptions;
use disktracker::engine::{Engine, EngineMsg, EngineOptions, Freshness};
use disktracker::scan::{self, Progress, ScanOptions};
use disktracker::tree::{self, Kind, NodeId, Tree};
use disktracker::watch::Choice;

/// Set in the namespace: run the body.
const IN_NS: &str = "DTUI_MOUNTS_IN_NAMESPACE";

/// How long the live tree may take to follow one step.
const FOLLOW: Duration = Duration::from_secs(20);

/// Runs test `name` again in a private mount namespace, where `body` then runs.
fn in_namespace(name: &str, body: impl FnOnce()) {
    if std::env::var_os(IN_NS).is_some() {
        body();
        return;
    }
    if !common::is_root() {
        eprintln!("skipped: mounting needs root");
        return;
    }
    let out = common::run(
        Command::new("unshare")
            .args(["-m", "--propagation", "private"])
            .arg(std::env::current_exe().expect("the test binary"))
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env(IN_NS, "1"),
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} in its namespace:\n{stdout}\n{stderr}"
    );
}

/// A watched root in a temp directory and its engine.
struct Case {
    _dir: tempfile::TempDir,
    root: PathBuf,
    engine: Engine,
    rx: Receiver<EngineMsg>,
    backend: Choice,
}

fn scan_opts() -> ScanOptions {
    ScanOptions {
        threads: 2,
        ..ScanOptions::default()
    }
}

impl Case {
    /// `files` (relative path, size) are made before the engine starts; it then runs until
    /// live and equal to a fresh scan.
    fn start(backend: Choice, files: &[(&str, usize)]) -> Case {
        let dir = tempfile::Builder::new()
            .prefix("dtui-mounts")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir(&root).expect("mkdir root");
        let root = root.canonicalize().expect("canon");
        for (rel, size) in files {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
            common::write(&p, *size);
        }
        let mut opts = EngineOptions::new(
            CacheOptions {
                dir: None,
                disabled: true,
            },
            scan_opts(),
        );
        opts.watch = Some(backend);
        opts.watch_required = true;
        let (tx, rx) = crossbeam_channel::unbounded();
        let engine = Engine::start(&root, opts, tx).expect("the engine starts");
        if backend == Choice::Fanotify {
            assert!(
                matches!(&engine.watching, Some(Ok(w)) if w.contains("filesystem mark")),
                "{:?}",
                engine.watching
            );
        }
        let mut case = Case {
            _dir: dir,
            root,
            engine,
            rx,
            backend,
        };
        case.expect_equal("at the start");
        case
    }

    /// Runs a shell script in the root (another process than the watcher).
    fn sh(&self, script: &str) {
        let out = common::run(
            Command::new("sh")
                .arg("-ec")
                .arg(script)
                .current_dir(&self.root),
        );
        assert!(out.status.success(), "{script}: {out:?}");
    }

    /// Waits (on the engine's messages) until the live tree is live and equals a fresh scan,
    /// devices included; fails with the differences left at the deadline.
    fn expect_equal(&mut self, what: &str) {
        let deadline = Instant::now() + FOLLOW;
        loop {
            let problems = self.differences();
            if problems.is_empty() {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{:?} {what}: the live tree is not a fresh scan after {FOLLOW:?}:\n{}",
                self.backend,
                problems.join("\n")
            );
            // Any message (a batch applied, a verification over) may have changed it; the
            // state word turns live without one, hence the short wait.
            let _ = self.rx.recv_timeout(left.min(Duration::from_millis(200)));
        }
    }

    fn differences(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let f = self.engine.freshness();
        if f != Freshness::Live {
            problems.push(format!("not live: {f:?}"));
        }
        let (live, live_devs) = {
            let t = tree::read(&self.engine.tree);
            (dump_tree(&t), devices(&t))
        };
        let (fresh, _) =
            scan::scan_path(&self.root, &scan_opts(), &Progress::new()).expect("a fresh scan");
        compare(&live, &dump_tree(&fresh), &mut problems);
        let fresh_devs = devices(&fresh);
        for (p, dev) in &fresh_devs {
            if live_devs.get(p) != Some(dev) {
                problems.push(format!(
                    "[device] {}: live {:?}, fresh {dev}",
                    String::from_utf8_lossy(p),
                    live_devs.get(p)
                ));
            }
        }
        problems
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

/// Every directory's device, by path below the root.
fn devices(t: &Tree) -> BTreeMap<Vec<u8>, u64> {
    let mut out = BTreeMap::new();
    let mut stack: Vec<(NodeId, Vec<u8>)> = vec![(t.root(), b".".to_vec())];
    while let Some((id, path)) = stack.pop() {
        if t.kind(id) != Kind::Dir {
            continue;
        }
        out.insert(path.clone(), t.dev(id).unwrap_or(0));
        for c in t.children(id) {
            let mut p = path.clone();
            p.push(b'/');
            p.extend_from_slice(t.name(c));
            stack.push((c, p));
        }
    }
    out
}

/// Files under a mount point before mounting are hidden while it is mounted and back after;
/// what is written in the mounted filesystem, right after the mount and later, is followed,
/// a filesystem replaced by another of the same inode numbers too, and so is a write under
/// the mount point after the unmount.
fn hidden_files_come_back(backend: Choice) {
    let mut c = Case::start(
        backend,
        &[("keep/f", 1000), ("m/hidden", 5000), ("m/sub/deep", 300)],
    );
    let under = std::fs::symlink_metadata(c.p("m")).expect("stat").dev();
    c.sh(
        "mount -t tmpfs -o size=8m none m && head -c 70000 /dev/zero > m/new && mkdir m/d \
         && head -c 3000 /dev/zero > m/d/x",
    );
    assert_ne!(
        std::fs::symlink_metadata(c.p("m")).expect("stat").dev(),
        under
    );
    c.expect_equal("after the mount");
    c.sh("head -c 1000 /dev/zero >> m/new && mkdir m/d/e && echo hi > m/d/e/y");
    c.expect_equal("after writes in the mounted filesystem");
    // Another tmpfs at the same place: its root has the same inode number (1) as the last.
    c.sh("umount m && mount -t tmpfs none m && echo z > m/z");
    c.expect_equal("after another filesystem replaced it at the same place");
    c.sh("umount m");
    assert_eq!(
        std::fs::symlink_metadata(c.p("m")).expect("stat").dev(),
        under
    );
    c.expect_equal("after the unmount");
    c.sh("head -c 100 /dev/zero > m/after && head -c 10 /dev/zero >> m/sub/deep");
    c.expect_equal("after writes under the mount point once unmounted");
}

/// A filesystem mounted inside one mounted inside the root: each mount and unmount, inner
/// first, then the outer one again over both, unmounted lazily with its mount inside.
fn nested_mounts(backend: Choice) {
    let mut c = Case::start(backend, &[("m/hidden", 5000)]);
    c.sh(
        "mount -t tmpfs none m && mkdir m/n && head -c 2000 /dev/zero > m/n/under \
         && mount -t tmpfs none m/n && head -c 9000 /dev/zero > m/n/x",
    );
    c.expect_equal("after the mount inside a mount");
    c.sh("head -c 100 /dev/zero >> m/n/x && echo a > m/top");
    c.expect_equal("after writes in both");
    c.sh("umount m/n");
    c.expect_equal("after the inner unmount");
    c.sh("echo b > m/n/y");
    c.expect_equal("after a write in the uncovered directory");
    c.sh("mount -t tmpfs none m/n && echo c > m/n/z");
    c.expect_equal("after the inner mount again");
    c.sh("umount -l m");
    c.expect_equal("after the lazy unmount of both");
    c.sh("echo d > m/hidden2");
    c.expect_equal("after a write under the first mount point");
}

/// A lazy unmount of a filesystem still in use: the tree shows the directory under it at
/// once, and what is still written in the detached filesystem does not show.
fn lazy_unmount_while_in_use(backend: Choice) {
    let mut c = Case::start(backend, &[("m/hidden", 5000), ("m/sub/deep", 10)]);
    c.sh("mount -t tmpfs none m && mkdir m/sub && head -c 7000 /dev/zero > m/sub/busy");
    c.expect_equal("after the mount");
    // A shell whose working directory is in the mounted filesystem keeps it busy.
    let mut busy = Command::new("sh")
        .current_dir(c.p("m/sub"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("sh");
    c.sh("umount -l m");
    c.expect_equal("after the lazy unmount");
    {
        let mut stdin = busy.stdin.take().expect("stdin");
        stdin
            .write_all(b"head -c 4000 /dev/zero > deep; echo x >> busy; mkdir late; exit 0\n")
            .expect("write to sh");
    }
    assert!(busy.wait().expect("wait").success());
    // Written after the detached filesystem's writes: applied with or after them.
    c.sh("echo e >> m/hidden");
    c.expect_equal("after writes in the detached filesystem and under the mount point");
}

macro_rules! per_backend {
    ($scenario:ident: $($test:ident => $backend:expr),+ $(,)?) => {
        $(
            #[test]
            fn $test() {
                in_namespace(stringify!($test), || $scenario($backend));
            }
        )+
    };
}

per_backend!(hidden_files_come_back:
    unmount_restores_the_mount_point_fanotify => Choice::Fanotify,
    unmount_restores_the_mount_point_fanotify_mount => Choice::FanotifyMount,
    unmount_restores_the_mount_point_inotify => Choice::Inotify,
    unmount_restores_the_mount_point_notify => Choice::Notify,
);

per_backend!(nested_mounts:
    nested_mounts_fanotify => Choice::Fanotify,
    nested_mounts_fanotify_mount => Choice::FanotifyMount,
    nested_mounts_inotify => Choice::Inotify,
    nested_mounts_notify => Choice::Notify,
);

per_backend!(lazy_unmount_while_in_use:
    lazy_unmount_fanotify => Choice::Fanotify,
    lazy_unmount_fanotify_mount => Choice::FanotifyMount,
    lazy_unmount_inotify => Choice::Inotify,
    lazy_unmount_notify => Choice::Notify,
);
