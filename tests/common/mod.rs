//! Helpers shared by the integration tests: the real binary, real temp trees, real `du`.
#![allow(dead_code, reason = "each test crate uses a different subset")]

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An entry for trees built in memory: device 1, one link, a fixed mtime (2023-11-14), disk
/// usage in whole 4 KiB blocks.
pub fn info(kind: disktracker::tree::Kind, size: u64, ino: u64) -> disktracker::tree::EntryInfo {
    disktracker::tree::EntryInfo {
        kind,
        flags: 0,
        ino,
        dev: 1,
        nlink: 1,
        mtime: 1_700_000_000,
        mtime_nsec: 0,
        apparent: size,
        disk: size.div_ceil(4096) * 4096,
        errno: 0,
    }
}

/// A spawned command's stdout, line by line, as a channel (read on a thread of its own), so
/// a test waits for a line with a timeout instead of blocking on the pipe.
pub fn stdout_lines(child: &mut std::process::Child) -> crossbeam_channel::Receiver<String> {
    lines_of(child.stdout.take().expect("a piped stdout"))
}

/// A reader's lines as a channel, read on a thread of its own (a child's stderr, say).
pub fn lines_of(r: impl std::io::Read + Send + 'static) -> crossbeam_channel::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(r).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Starts a command (stdout and stderr piped) and hands its stdout over line by line.
pub fn spawn_lines(
    cmd: &mut Command,
) -> (std::process::Child, crossbeam_channel::Receiver<String>) {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let rx = stdout_lines(&mut child);
    (child, rx)
}

/// The real binary, with its cache kept out of the user's home (a per-run temp dir).
pub fn dtui() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dtui"));
    c.env("XDG_CACHE_HOME", test_cache_home());
    c
}

/// A cache home for this test process, shared by its tests (each root has its own cache).
pub fn test_cache_home() -> PathBuf {
    std::env::temp_dir().join(format!("dtui-test-cache-{}", std::process::id()))
}

/// Runs a command and returns its output (it must start).
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the command starts")
}

/// `du -sB1` (disk usage) or `du -sb` (apparent size) of a path, in bytes.
pub fn du(path: &Path, apparent: bool) -> u64 {
    let out = run(Command::new("du")
        .arg(if apparent { "-sb" } else { "-sB1" })
        .arg(path));
    assert!(out.status.success(), "du failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("du prints a number first")
}

/// Entries below `path` as `find` counts them (the root itself not included).
pub fn find_count(path: &Path) -> u64 {
    let out = run(Command::new("find").arg(path).arg("-printf").arg("x"));
    assert!(out.status.success(), "find failed: {out:?}");
    out.stdout.len() as u64 - 1
}

/// `dtui scan --json --no-cache PATH ARGS...` (a real scan every time): the parsed report and
/// the exit code.
pub fn scan_json(path: &Path, args: &[&str]) -> (serde_json::Value, i32, String) {
    let out = run(dtui()
        .arg("scan")
        .arg("--json")
        .arg("--no-cache")
        .args(args)
        .arg(path));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "dtui panicked: {stderr}");
    let value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("scan --json printed no JSON ({e}): {out:?}"));
    (value, out.status.code().unwrap_or(-1), stderr)
}

pub fn name(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

pub fn write(path: &Path, len: usize) {
    fs::write(path, vec![b'x'; len]).expect("write a fixture file");
}

/// A tree with every awkward thing the scanner must count like `du`: hard links inside the
/// tree, a sparse file, symlinks to a file, to a directory and dangling, a symlink loop, empty
/// directories, non-UTF-8 and newline names, a fifo.
pub fn awkward_tree(root: &Path) {
    let sub = root.join("sub");
    fs::create_dir_all(sub.join("deeper/empty")).expect("mkdir");
    fs::create_dir(root.join("empty")).expect("mkdir");
    write(&root.join("small"), 100);
    write(&sub.join("medium"), 70_000);
    write(&sub.join("deeper/big"), 1_000_000);
    fs::hard_link(sub.join("deeper/big"), root.join("big-link")).expect("hard link");
    fs::hard_link(sub.join("deeper/big"), sub.join("big-link2")).expect("hard link");
    let sparse = fs::File::create(root.join("sparse")).expect("sparse");
    sparse.set_len(50_000_000).expect("truncate");
    symlink("small", root.join("link-to-file")).expect("symlink");
    symlink("sub", root.join("link-to-dir")).expect("symlink");
    symlink("/nonexistent/target", root.join("dangling")).expect("symlink");
    symlink("loop-b", root.join("loop-a")).expect("symlink");
    symlink("loop-a", root.join("loop-b")).expect("symlink");
    symlink(".", sub.join("self")).expect("symlink");
    write(&root.join(name(b"caf\xe9-latin1")), 10);
    write(&root.join(name(b"new\nline")), 20);
    write(&root.join(name(b"\xff\xfe")), 30);
    fs::create_dir(root.join(name(b"dir\nwith\xffodd"))).expect("mkdir odd");
    write(&root.join(name(b"dir\nwith\xffodd/inner")), 5000);
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .expect("mkfifo");
}

/// A chain of `depth` nested directories named `d`, built with `*at` calls (the full path is
/// far longer than `PATH_MAX`), with a file at the bottom. Returns the root of the chain.
pub fn deep_chain(root: &Path, depth: usize) -> PathBuf {
    use nix::fcntl::{OFlag, open, openat};
    use nix::sys::stat::{Mode, mkdirat};
    let top = root.join("chain");
    fs::create_dir(&top).expect("mkdir chain");
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut fd = open(&top, flags, Mode::empty()).expect("open chain");
    for _ in 0..depth {
        mkdirat(&fd, "d", Mode::from_bits_truncate(0o755)).expect("mkdirat");
        fd = openat(&fd, "d", flags, Mode::empty()).expect("openat");
    }
    let file = openat(
        &fd,
        "bottom",
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .expect("create bottom");
    nix::unistd::write(&file, b"the bottom").expect("write bottom");
    top
}

/// Removes a tree of any depth (`rm -rf` does not recurse on the stack).
pub fn remove_all(path: &Path) {
    let _ = Command::new("rm").arg("-rf").arg(path).status();
}

/// Is this process root (so privileges can be dropped with `setpriv`)?
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A temp directory that the unprivileged user 65534 can enter (for `setpriv` tests).
pub fn world_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("dtui-test")
        .tempdir_in("/tmp")
        .expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// `program` run as user and group 65534 (root only: `setpriv`).
pub fn as_nobody(program: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        program,
    ]);
    c
}

/// `dtui` run as user/group 65534 when we are root, else as ourselves (already unprivileged).
pub fn dtui_unprivileged() -> Command {
    if is_root() {
        let mut c = as_nobody(env!("CARGO_BIN_EXE_dtui"));
        c.env("XDG_CACHE_HOME", test_cache_home());
        c
    } else {
        dtui()
    }
}

pub mod attach;
pub mod difftree;
pub mod pty;

#[allow(unused_imports, reason = "each test crate uses a different subset")]
pub use difftree::opened::{Opened, open_engine, start_engine};

/// Polls `cond` until it yields a value or `timeout` passes (then fails, naming `what`). The
/// one place tests wait on something that has no channel to wait on (a process appearing in
/// /proc, the clock passing a file's ctime): short parks between polls, a hard deadline.
pub fn poll_until<T>(
    timeout: std::time::Duration,
    what: &str,
    mut cond: impl FnMut() -> Option<T>,
) -> T {
    poll_until_or(
        timeout,
        || cond().ok_or(()),
        |()| format!("timed out waiting for {what}"),
    )
}

/// `poll_until` where `cond` says what it saw when not done yet (`Err`): the last of that is
/// handed to `failed`, which says why the wait failed (the last value seen, a log).
pub fn poll_until_or<T, E>(
    timeout: std::time::Duration,
    mut cond: impl FnMut() -> Result<T, E>,
    failed: impl FnOnce(E) -> String,
) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let seen = match cond() {
            Ok(v) => return v,
            Err(seen) => seen,
        };
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(!left.is_zero(), "{}", failed(seen));
        std::thread::park_timeout(left.min(std::time::Duration::from_millis(10)));
    }
}

/// Runs `script` with `sh` in a private mount namespace: its stdout and stderr whatever its
/// exit status (the caller asserts on what it printed), or `None` (said) where this machine
/// has no mount namespaces — found by a namespace that runs `true`, so a script that fails
/// never passes for a machine without them.
pub fn in_private_mount_namespace(script: &str) -> Option<(String, String)> {
    let unshare = |argv: &[&str]| {
        let mut c = Command::new("unshare");
        c.args(["-m", "--propagation", "private"]).args(argv);
        run(&mut c)
    };
    let probe = unshare(&["true"]);
    if !probe.status.success() {
        eprintln!(
            "skipped: no mount namespaces here ({})",
            String::from_utf8_lossy(&probe.stderr).trim()
        );
        return None;
    }
    let out = unshare(&["sh", "-c", script]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    Some((stdout, stderr))
}
