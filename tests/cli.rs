//! The command line's edges: usage errors exit 2, printed paths are escaped, `watch` stops on
//! SIGHUP and names the inotify limit it hits.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

#[test]
fn usage_errors_exit_2_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_glob = ["--exclude", "a["];
    for args in [
        vec!["scan", "--no-cache"],
        vec!["export", "--no-cache", "-o", "-"],
    ] {
        let out = run(dtui().args(&args).args(bad_glob).arg(dir.path()));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("bad exclude pattern"), "{stderr}");
    }
    // The browser checks its options before it asks for a terminal.
    let out = run(dtui().args(bad_glob).arg(dir.path()));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = run(dtui()
        .args(["watch", "--no-cache"])
        .arg(dir.path())
        .env("DISKTRACKER_WATCH_BACKEND", "junk"));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown watch backend \"junk\""),
        "{out:?}"
    );
}

#[test]
fn watch_help_lists_every_backend() {
    let out = run(dtui().args(["watch", "--help"]));
    let text = String::from_utf8_lossy(&out.stdout);
    for b in ["auto", "inotify", "notify", "fanotify", "fanotify-mount"] {
        assert!(text.contains(b), "{b} missing: {text}");
    }
}

/// A directory whose name would set the terminal's title and clear its screen if printed raw.
fn hostile_dir(parent: &std::path::Path) -> std::path::PathBuf {
    let root = parent.join("\x1b]0;pwned\x07\x1b[2J");
    std::fs::create_dir(&root).expect("mkdir");
    write(&root.join("file"), 10);
    root
}

#[test]
fn scan_prints_a_hostile_root_path_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = hostile_dir(dir.path());
    let out = run(dtui().args(["scan", "--no-cache"]).arg(&root));
    assert!(out.status.success(), "{out:?}");
    let first = out.stdout.split(|&b| b == b'\n').next().expect("a line");
    assert!(
        !first.contains(&0x1b) && !first.contains(&0x07),
        "escaped: {:?}",
        String::from_utf8_lossy(first)
    );
    assert!(String::from_utf8_lossy(first).contains("pwned"));
}

/// `dtui watch` on `root` with the notify backend, its stdout lines as they come.
fn spawn_watch(
    root: &std::path::Path,
) -> (
    std::process::Child,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
) {
    let mut child = dtui()
        .args(["watch", "--no-cache", "--watch-backend", "notify"])
        .arg(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    (child, lines)
}

#[test]
fn watch_prints_a_hostile_root_path_escaped_and_stops_cleanly_on_sighup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = hostile_dir(dir.path());
    let (child, mut lines) = spawn_watch(&root);
    let watching = lines.next().expect("a line").expect("text");
    assert!(watching.starts_with("watching "), "{watching}");
    assert!(
        !watching.contains('\x1b') && !watching.contains('\x07'),
        "escaped: {watching:?}"
    );
    // The loop runs once the tree is reported; SIGHUP (a closed terminal) then stops it.
    let tree = lines.next().expect("a line").expect("text");
    assert!(tree.starts_with("tree: "), "{tree}");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("hup");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dtui: stopped"),
        "{out:?}"
    );
}

#[test]
fn an_inotify_instance_limit_is_named_as_such() {
    // In a user namespace of its own, the limit on inotify instances can be set to 0 without
    // touching the machine's.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(Command::new("unshare")
        .args(["-U", "-r", "sh", "-c"])
        .arg(
            "echo 0 > /proc/sys/user/max_inotify_instances && \
             exec \"$DTUI\" watch --no-cache --watch-backend notify \"$ROOT\"",
        )
        .env("DTUI", env!("CARGO_BIN_EXE_dtui"))
        .env("ROOT", dir.path())
        .env("XDG_CACHE_HOME", test_cache_home()));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fs.inotify.max_user_instances"), "{stderr}");
    assert!(!stderr.contains("Too many open files"), "{stderr}");
}

/// No byte of a terminal escape sequence (ESC, BEL) in `bytes`.
fn assert_no_escapes(what: &str, bytes: &[u8]) {
    assert!(
        !bytes.contains(&0x1b) && !bytes.contains(&0x07),
        "{what}: printed raw: {:?}",
        String::from_utf8_lossy(bytes)
    );
}

#[test]
fn errors_and_warnings_print_hostile_paths_escaped() {
    // The errors of a root that cannot be scanned, and the warnings of a damaged cache whose
    // directory has a hostile name, used to print the path raw.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = hostile_dir(dir.path());
    let missing = root.join("\x1b[31mmissing");
    let out = run(dtui().args(["scan", "--no-cache"]).arg(&missing));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_no_escapes("a missing root", &out.stderr);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing"),
        "{out:?}"
    );
    let out = run(dtui().args(["scan", "--no-cache"]).arg(root.join("file")));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_no_escapes("a file as the root", &out.stderr);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a directory"),
        "{out:?}"
    );

    let cache = dir.path().join("cache\x1b[2J\x07");
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).expect("mkdir");
    write(&tree.join("f"), 10);
    let out = run(dtui().args(["scan", "--cache-dir"]).arg(&cache).arg(&tree));
    assert!(out.status.success(), "{out:?}");
    // A damaged arena: the warning and the report's cache line name it.
    for e in std::fs::read_dir(&cache).expect("ls") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "arena") {
            std::fs::write(&p, b"junk").expect("damage");
        }
    }
    let out = run(dtui().args(["scan", "--cache-dir"]).arg(&cache).arg(&tree));
    assert!(out.status.success(), "{out:?}");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("rebuilt from the database"), "{report}");
    assert_no_escapes("the report", &out.stdout);
    assert_no_escapes("the warnings", &out.stderr);
}

#[test]
fn a_missing_path_is_said_in_words_without_the_os_error_number() {
    for args in [
        vec!["scan", "--no-cache", "/nonexistent-dtui-path"],
        vec!["export", "--no-cache", "-o", "-", "/nonexistent-dtui-path"],
        vec!["scan", "-f", "/nonexistent-dtui-path"],
    ] {
        let out = run(dtui().args(&args));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("/nonexistent-dtui-path: No such file or directory\n"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("os error"), "{args:?}: {stderr}");
    }
}

#[test]
fn the_browser_without_a_terminal_names_a_missing_path_before_asking_for_a_terminal() {
    // It said "the browser needs a terminal; for text output use `dtui scan /nonexistent`",
    // advice that fails again.
    let out = run(dtui().arg("/nonexistent-dtui-path"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        "dtui: /nonexistent-dtui-path: No such file or directory\n"
    );
    let out = run(dtui().arg("/etc/passwd"));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "dtui: /etc/passwd: not a directory\n"
    );
    // A good path still gets the advice.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(dtui().arg(dir.path()));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the browser needs a terminal"),
        "{out:?}"
    );
}
