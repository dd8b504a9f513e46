//! A full cache filesystem during live batches: the state word says so, nothing of the tree
//! is lost, the store looks for room with backoff and saves the whole tree once there is
//! some, and the next start's tree is the disk's. On a small tmpfs in a private mount
//! namespace (`unshare -m`), held by a sleeping shell that the test enters with `nsenter`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::pty::{NO_ENV, Pty};
use common::*;
use crossbeam_channel::Receiver;

/// A private mount namespace with a tmpfs mounted at `mnt`, held open by a sleeping shell.
struct Namespace {
    holder: Child,
}

impl Namespace {
    /// None where this system has no mount namespaces for us (the test is then skipped, and
    /// says so); any other failure fails the test.
    fn new(mnt: &Path, size: &str) -> Option<Namespace> {
        let mut holder = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount -t tmpfs -o size={size},mode=0700 none '{}' && echo mounted && exec sleep 600",
                mnt.display()
            ))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("unshare starts");
        let rx = stdout_lines(&mut holder);
        if rx.recv_timeout(Duration::from_secs(10)).as_deref() == Ok("mounted") {
            return Some(Namespace { holder });
        }
        let _ = holder.kill();
        let out = holder.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("unshare") || stderr.contains("mount"),
            "only a missing mount-namespace facility may skip this: {stderr}"
        );
        eprintln!("skipped: no mount namespaces here ({stderr})");
        None
    }

    /// `program args...` run inside the namespace.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.holder.id().to_string())
            .args(["-m", "--"])
            .arg(program);
        c.env("XDG_CACHE_HOME", test_cache_home());
        c
    }

    /// A shell command run inside the namespace; its status.
    fn sh(&self, script: &str) -> std::process::ExitStatus {
        self.command("sh")
            .args(["-c", script])
            .status()
            .expect("nsenter starts")
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Waits for a line starting with `prefix`; panics with what came instead.
fn expect_line(rx: &Receiver<String>, prefix: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut seen = String::new();
    while let Ok(l) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if l.starts_with(prefix) {
            return l;
        }
        seen.push_str(&l);
        seen.push('\n');
    }
    panic!("no line `{prefix}...` within {limit:?}; the lines were:\n{seen}");
}

/// Waits until the watch has reported `n` more changes in its batch lines.
fn expect_changes(rx: &Receiver<String>, n: u64, what: &str) {
    let mut got = 0;
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("{what}: {got} of {n} changes reported:\n{seen}"));
        seen.push_str(&line);
        seen.push('\n');
        // (a verification after lost events applies what it finds as one change)
        if line.starts_with("verified: ") {
            got += 1;
        }
        got += line
            .strip_prefix("batch ")
            .and_then(|l| l.split(", ").find_map(|p| p.strip_suffix(" changes")))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
}

/// Waits until the cache's database holds `entries` entries below the root (`cache list`
/// reads what is committed).
fn wait_committed(ns: &Namespace, cache: &Path, entries: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let want = entries.to_string();
    loop {
        let out = ns
            .command(env!("CARGO_BIN_EXE_dtui"))
            .args(["cache", "list", "--cache-dir"])
            .arg(cache)
            .output()
            .expect("cache list");
        let text = String::from_utf8_lossy(&out.stdout);
        // SIZE (a number and a unit), ENTRIES, ...
        if text
            .lines()
            .any(|l| l.split_whitespace().nth(2) == Some(want.as_str()))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{entries} entries never committed: {text}"
        );
    }
}

/// An ncdu export's tree with every directory's children sorted by name (the order a tree
/// keeps them in is not the disk's).
fn sorted_tree(export: &[u8]) -> serde_json::Value {
    fn sort(v: &mut serde_json::Value) {
        if let Some(items) = v.as_array_mut() {
            let name = |c: &serde_json::Value| {
                let info = c.as_array().and_then(|a| a.first()).unwrap_or(c);
                info["name"].as_str().unwrap_or_default().to_owned()
            };
            for c in items.iter_mut().skip(1) {
                sort(c);
            }
            items[1..].sort_by_key(name);
        }
    }
    let v: serde_json::Value = serde_json::from_slice(export).expect("an export");
    let mut tree = v[3].clone();
    sort(&mut tree);
    tree
}

/// A root of 50 small files and a 2 MiB tmpfs for its cache, in a namespace of its own.
fn setup(dir: &Path) -> Option<(PathBuf, PathBuf, Namespace)> {
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs needs root");
        return None;
    }
    let root = dir.join("root");
    fs::create_dir(&root).expect("mkdir");
    let root = root.canonicalize().expect("canon");
    for i in 0..50 {
        write(&root.join(format!("f{i}")), 100);
    }
    let mnt = dir.join("mnt");
    fs::create_dir(&mnt).expect("mkdir");
    let ns = Namespace::new(&mnt, "2m")?;
    Some((root, mnt, ns))
}

#[test]
fn a_full_cache_disk_is_said_waited_out_with_backoff_and_the_tree_saved_once_there_is_room() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((root, mnt, ns)) = setup(dir.path()) else {
        return;
    };
    let cache: PathBuf = mnt.join("cache");
    let mut watch = ns
        .command(env!("CARGO_BIN_EXE_dtui"))
        .args(["watch", "--cache-dir"])
        .arg(&cache)
        .arg(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dtui watch starts");
    let rx = stdout_lines(&mut watch);
    expect_line(&rx, "tree: ", Duration::from_secs(30));

    // The cache's filesystem fills up (as root: tmpfs keeps nothing back).
    let fill = mnt.join("fill");
    ns.sh(&format!(
        "head -c 64M /dev/zero > '{}' 2>/dev/null",
        fill.display()
    ));
    // Then the tree changes: rows the database has no room for.
    let long = "n".repeat(200);
    for i in 0..300 {
        write(&root.join(format!("{long}-{i}")), 10);
    }
    expect_line(
        &rx,
        "stale: cache not saved (disk full)",
        Duration::from_secs(30),
    );
    // The tree goes on following the disk meanwhile.
    fs::create_dir(root.join("while-full")).expect("mkdir");
    write(&root.join("while-full/inside"), 5000);
    for i in 0..10 {
        fs::remove_file(root.join(format!("f{i}"))).expect("rm");
    }
    // (a new directory is one change, with what it holds, when one batch sees both)
    expect_changes(&rx, 11, "while full");

    // Room again: the store sees it at its next look (1 s, then doubling), and saves the
    // whole tree.
    assert!(ns.sh(&format!("rm '{}'", fill.display())).success());
    expect_line(&rx, "cache saved again", Duration::from_secs(90));
    write(&root.join("after"), 300);
    expect_changes(&rx, 1, "after");

    let pid = nix::unistd::Pid::from_raw(watch.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("term");
    let out = watch.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("not saved"), "{stderr}");

    // The next start maps what was saved, and it is the disk's tree, entry for entry.
    let scan = ns
        .command(env!("CARGO_BIN_EXE_dtui"))
        .args(["scan", "--json", "--no-catch-up", "--cache-dir"])
        .arg(&cache)
        .arg(&root)
        .output()
        .expect("scan");
    assert!(scan.status.success(), "{scan:?}");
    let v: serde_json::Value = serde_json::from_slice(&scan.stdout).expect("json");
    assert!(
        v["cache"]
            .as_str()
            .is_some_and(|c| c.starts_with("loaded: arena mapped")),
        "{v}"
    );
    let saved = ns
        .command(env!("CARGO_BIN_EXE_dtui"))
        .args(["export", "--no-catch-up", "-o", "-", "--cache-dir"])
        .arg(&cache)
        .arg(&root)
        .output()
        .expect("export");
    assert!(saved.status.success(), "{saved:?}");
    let fresh = run(dtui().args(["export", "--no-cache", "-o", "-"]).arg(&root));
    assert!(fresh.status.success(), "{fresh:?}");
    assert_eq!(sorted_tree(&saved.stdout), sorted_tree(&fresh.stdout));
    assert_eq!(v["items"].as_u64(), Some(find_count(&root)));
}

/// The browser's first line, as shown.
fn header(screen: &str) -> &str {
    screen.lines().next().unwrap_or_default().trim_end()
}

#[test]
fn the_browser_says_the_cache_is_not_saved_while_its_disk_is_full_and_when_it_is_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((root, mnt, ns)) = setup(dir.path()) else {
        return;
    };
    let cache = mnt.join("cache");
    let args: Vec<std::ffi::OsString> = vec![
        "-t".into(),
        ns.holder.id().to_string().into(),
        "-m".into(),
        "--".into(),
        env!("CARGO_BIN_EXE_dtui").into(),
        "--cache-dir".into(),
        cache.clone().into(),
        root.clone().into(),
    ];
    let mut pty = Pty::sized("nsenter", &args, NO_ENV, 24, 120);
    pty.wait_for("the tree, live", |s| {
        header(s).ends_with("· live") && s.contains("f0")
    });
    let fill = mnt.join("fill");
    ns.sh(&format!(
        "head -c 64M /dev/zero > '{}' 2>/dev/null",
        fill.display()
    ));
    let long = "n".repeat(200);
    for i in 0..300 {
        write(&root.join(format!("{long}-{i}")), 10);
    }
    // In the header (after the backend) and in the footer's state.
    let screen = pty.wait_for("the state word", |s| {
        header(s).ends_with("stale: cache not saved (disk full)")
    });
    assert!(
        screen.contains("[stale: cache not saved (disk full)]"),
        "the footer says it too:\n{screen}"
    );
    // The rows follow the disk meanwhile.
    write(&root.join("zz-while-full"), 3 * 1024 * 1024);
    pty.wait_for("a row made while full", |s| s.contains("zz-while-full"));

    assert!(ns.sh(&format!("rm '{}'", fill.display())).success());
    pty.wait_for("the cache saved again", |s| {
        s.contains("the cache is saved again") && header(s).ends_with("· live")
    });
    assert_eq!(pty.quit(), 0);
}

#[test]
fn quitting_while_the_cache_disk_is_full_leaves_an_older_whole_cache_that_the_next_start_corrects()
{
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((root, mnt, ns)) = setup(dir.path()) else {
        return;
    };
    let cache = mnt.join("cache");
    let mut watch = ns
        .command(env!("CARGO_BIN_EXE_dtui"))
        .args(["watch", "--cache-dir"])
        .arg(&cache)
        .arg(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dtui watch starts");
    let rx = stdout_lines(&mut watch);
    expect_line(&rx, "tree: ", Duration::from_secs(30));
    // The first snapshot is committed (else there would be nothing to load, only to scan).
    wait_committed(&ns, &cache, 50);
    let fill = mnt.join("fill");
    ns.sh(&format!(
        "head -c 64M /dev/zero > '{}' 2>/dev/null",
        fill.display()
    ));
    for i in 0..300 {
        write(&root.join(format!("{}-{i}", "q".repeat(200))), 10);
    }
    for i in 0..20 {
        fs::remove_file(root.join(format!("f{i}"))).expect("rm");
    }
    expect_line(
        &rx,
        "stale: cache not saved (disk full)",
        Duration::from_secs(30),
    );
    // Quit while it is still full: said, and nothing half-saved.
    let pid = nix::unistd::Pid::from_raw(watch.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("term");
    let out = watch.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the cache was not saved") && stderr.contains("disk is full"),
        "{stderr}"
    );
    assert!(ns.sh(&format!("rm '{}'", fill.display())).success());
    let scan = ns
        .command(env!("CARGO_BIN_EXE_dtui"))
        .args(["scan", "--json", "--cache-dir"])
        .arg(&cache)
        .arg(&root)
        .output()
        .expect("scan");
    assert!(scan.status.success(), "{scan:?}");
    let v: serde_json::Value = serde_json::from_slice(&scan.stdout).expect("json");
    assert!(
        v["cache"].as_str().is_some_and(|c| c.starts_with("loaded")),
        "{v}"
    );
    // What the database missed, the catch-up found (it trusted nothing newer than it had).
    assert_eq!(v["catch_up"]["added"].as_u64(), Some(300), "{v}");
    assert_eq!(v["catch_up"]["removed"].as_u64(), Some(20), "{v}");
    assert_eq!(v["items"].as_u64(), Some(find_count(&root)), "{v}");
    assert_eq!(v["disk"].as_u64(), Some(du(&root, false)), "{v}");
}

#[test]
fn an_arena_that_does_not_fit_at_quitting_is_said_and_the_next_start_rebuilds_from_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((root, mnt, ns)) = setup(dir.path()) else {
        return;
    };
    let cache = mnt.join("cache");
    let mut watch = ns
        .command(env!("CARGO_BIN_EXE_dtui"))
        .args(["watch", "--cache-dir"])
        .arg(&cache)
        .arg(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dtui watch starts");
    let rx = stdout_lines(&mut watch);
    expect_line(&rx, "tree: ", Duration::from_secs(30));
    for i in 0..300 {
        write(&root.join(format!("{}-{i}", "a".repeat(200))), 10);
    }
    // Every batch is in the database; then the disk fills, so only the arena has no room.
    wait_committed(&ns, &cache, 350);
    let fill = mnt.join("fill");
    ns.sh(&format!(
        "head -c 64M /dev/zero > '{}' 2>/dev/null",
        fill.display()
    ));
    let pid = nix::unistd::Pid::from_raw(watch.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("term");
    let out = watch.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the cache was not saved") && stderr.contains("the disk is full"),
        "{stderr}"
    );
    assert!(ns.sh(&format!("rm '{}'", fill.display())).success());
    let listed = ns
        .command("sh")
        .arg("-c")
        .arg(format!("ls -a '{}'", cache.display()))
        .output()
        .expect("ls");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(!listed.contains(".tmp"), "no temp file left: {listed}");
    let scan = ns
        .command(env!("CARGO_BIN_EXE_dtui"))
        .args(["scan", "--json", "--no-catch-up", "--cache-dir"])
        .arg(&cache)
        .arg(&root)
        .output()
        .expect("scan");
    assert!(scan.status.success(), "{scan:?}");
    let v: serde_json::Value = serde_json::from_slice(&scan.stdout).expect("json");
    assert!(
        v["cache"]
            .as_str()
            .is_some_and(|c| c.starts_with("loaded: arena rebuilt from the database")),
        "{v}"
    );
    assert_eq!(v["items"].as_u64(), Some(find_count(&root)), "{v}");
    assert_eq!(v["disk"].as_u64(), Some(du(&root, false)), "{v}");
}
