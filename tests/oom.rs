//! Out of memory, for real: the running `dtui`'s address space is cut (prlimit(2) on its pid,
//! below what it already uses), then it is asked for something that needs more. glibc's
//! allocator is told (GLIBC_TUNABLES) to take every block of 64 KiB or more with a fresh
//! mmap and to hand memory back at once, so the request cannot be served from memory it kept:
//! the allocation fails where the test says, not somewhere before.
//!
//! Regression: a failed allocation printed "memory allocation of N bytes failed" and aborted
//! (SIGABRT, no panic hook): the browser left the terminal raw, on the alternate screen, the
//! cursor hidden, and the line itself went to the alternate screen; `dtui scan` ended
//! "Aborted (core dumped)". Any other SIGABRT (a panic while panicking, a stack overflow, an
//! abort in a library) restores the terminal too. And threads that cannot be made (a thread
//! limit, or no memory for a stack) leave fewer threads to do the work, never a panic.

mod common;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::time::Duration;

use common::pty::{Pty, sh_quote};
use common::*;

const TUNABLES: &str =
    "glibc.malloc.mmap_threshold=65536:glibc.malloc.trim_threshold=0:glibc.malloc.arena_max=1";

/// Cuts the address space of `pid` to 1 MiB: whatever it has stays mapped, nothing new can be.
fn starve(pid: i32) {
    let limit = libc::rlimit {
        rlim_cur: 1 << 20,
        rlim_max: 1 << 20,
    };
    // SAFETY: a valid rlimit, no old value asked for.
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_AS, &raw const limit, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// The state letter of `pid` (R running, S sleeping...), from /proc.
fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// The pid of `parent`'s child named `name`, waiting for it to appear.
fn child_named(parent: u32, name: &str) -> i32 {
    poll_until(
        Duration::from_secs(20),
        &format!("{name} under {parent}"),
        || {
            std::fs::read_dir("/proc")
                .ok()?
                .flatten()
                .find_map(|entry| {
                    let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
                    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
                    let ppid = stat[close + 1..].split_whitespace().nth(1)?;
                    (&stat[open + 1..close] == name && ppid == parent.to_string())
                        .then(|| stat[..open].trim().parse().ok())?
                })
        },
    )
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// The value printed after `key` on a line of its own.
fn value_after(raw: &str, key: &str) -> String {
    raw.lines()
        .find_map(|l| l.trim().strip_prefix(key).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {key} in {raw:?}"))
}

#[test]
fn out_of_memory_in_the_browser_restores_the_terminal_and_says_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    for d in 0..20 {
        let sub = dir.path().join(format!("d{d}"));
        std::fs::create_dir(&sub).expect("mkdir");
        for f in 0..600 {
            std::fs::File::create(sub.join(format!("f{f}"))).expect("create");
        }
    }
    // The terminal's modes (stty -g) before and after, to be compared whole.
    let mut pty = Pty::spawn(&between_stty(
        dir.path(),
        &format!("GLIBC_TUNABLES={TUNABLES}"),
    ));
    pty.wait_for_raw("the list, the scan done", |s, _| {
        s.contains("d19/") && s.contains("[live]")
    });
    let sh = pty.child.process_id().expect("pid");
    starve(child_named(sh, "dtui"));
    // A search of every name: 12,000 matches want more than 64 KiB.
    pty.send(b"/*\r");
    assert_eq!(pty.exit_code(), 0, "the script ends");
    let raw = &pty.raw;
    let text = String::from_utf8_lossy(raw).into_owned();
    assert_eq!(value_after(&text, "RC="), "1", "{text}");
    let entered = find(raw, b"\x1b[?1049h").expect("the alternate screen was used");
    let left = find(raw, b"\x1b[?1049l").expect("the alternate screen was left");
    assert!(left > entered, "left after entering");
    for (what, seq) in [
        ("the cursor", &b"\x1b[?25h"[..]),
        ("the mouse", b"\x1b[?1000l"),
    ] {
        assert!(
            find(raw, seq).is_some_and(|p| p > entered),
            "{what} given back: {text}"
        );
    }
    // One line, on the screen the user sees after (not the alternate one).
    let after = String::from_utf8_lossy(&raw[left..]);
    let said: Vec<&str> = after.lines().filter(|l| l.contains("memory")).collect();
    assert_eq!(said.len(), 1, "{after}");
    // (After the escape sequences that left the alternate screen, on the same line.)
    let line = said[0].trim();
    let line = &line[line.find("dtui: ").unwrap_or(0)..];
    assert!(
        line.starts_with("dtui: out of memory (allocating ") && line.ends_with(" bytes)"),
        "{after}"
    );
    assert_eq!(
        value_after(&text, "AFTER="),
        value_after(&text, "BEFORE="),
        "the terminal's modes are those it had"
    );
}

/// The script that runs dtui on `dir` in a terminal between two `stty -g`, then its status.
fn between_stty(dir: &std::path::Path, env: &str) -> String {
    format!(
        "echo \"BEFORE=$(stty -g)\"; {env} {} --no-cache {}; rc=$?; echo; \
         echo \"AFTER=$(stty -g)\"; echo \"RC=$rc\"",
        env!("CARGO_BIN_EXE_dtui"),
        sh_quote(dir)
    )
}

#[test]
fn sigabrt_in_the_browser_restores_the_terminal_then_aborts() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(&dir.path().join("file"), 1000);
    let mut pty = Pty::spawn(&between_stty(dir.path(), ""));
    pty.wait_for_raw("the list", |s, _| s.contains("Total disk usage"));
    let sh = pty.child.process_id().expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child_named(sh, "dtui")),
        nix::sys::signal::Signal::SIGABRT,
    )
    .expect("kill");
    assert_eq!(pty.exit_code(), 0, "the script ends");
    let text = String::from_utf8_lossy(&pty.raw).into_owned();
    assert_eq!(value_after(&text, "RC="), "134", "still an abort: {text}");
    let left = find(&pty.raw, b"\x1b[?1049l").expect("the alternate screen was left");
    assert!(
        find(&pty.raw, b"\x1b[?25h").is_some_and(|p| p > left),
        "{text}"
    );
    let after = String::from_utf8_lossy(&pty.raw[left..]);
    assert!(
        after.contains("dtui: aborted (SIGABRT); the terminal was restored"),
        "{after}"
    );
    assert_eq!(value_after(&text, "AFTER="), value_after(&text, "BEFORE="));
}

#[test]
fn out_of_memory_in_dtui_scan_is_one_line_and_status_1() {
    let mut child = dtui()
        .args(["scan", "-f", "-"])
        .env("GLIBC_TUNABLES", TUNABLES)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as i32;
    let mut stdin = child.stdin.take().expect("stdin");
    // An export up to the middle of a name: read and parsed, dtui waits for the rest.
    stdin
        .write_all(br#"[1,2,{"progname":"t"},[{"name":"/r"},{"name":"a","asize":1},{"name":""#)
        .expect("write");
    stdin.flush().expect("flush");
    poll_until(Duration::from_secs(20), "the start read and parsed", || {
        let mut unread: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int: the bytes in the pipe not yet read.
        let rc = unsafe { libc::ioctl(stdin.as_raw_fd(), libc::FIONREAD, &raw mut unread) };
        (rc == 0 && unread == 0 && state(pid) == Some('S')).then_some(())
    });
    starve(pid);
    // The name goes on for 200,000 bytes: reading it needs a fresh block (dtui refuses a
    // string that long, but only once it has read past 64 KiB of it).
    let _ = stdin.write_all(&vec![b'a'; 200_000]);
    let _ = stdin.write_all(br#""}]]"#);
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("dtui: out of memory (allocating ") && lines[0].ends_with(" bytes)"),
        "{stderr}"
    );
}

/// Regression: with a thread that could not be made (RLIMIT_NPROC here; under a memory limit,
/// no room for its stack), `dtui scan` printed a panic and reported an empty tree, exit 0.
/// Now the work is done by the threads there are (the calling one at least), or dtui says in
/// one line that it cannot start.
#[test]
fn a_scan_short_of_threads_is_complete_or_one_line() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run as a uid of its own (setpriv)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    for d in 0..8 {
        std::fs::create_dir_all(root.join(format!("d{d}/sub"))).expect("mkdir");
        for f in 0..50 {
            write(&root.join(format!("d{d}/sub/f{f}")), 5000);
        }
    }
    let chmod = std::process::Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(dir.path())
        .status()
        .expect("chmod");
    assert!(chmod.success());
    let (disk, items) = (du(&root, false), find_count(&root));
    // The second round loads a cache (its check and catch-up run on threads too), made by a
    // scan without a limit (the thread that saves a changed cache is not this test's).
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).expect("mkdir");
    std::fs::set_permissions(&cache, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    std::os::unix::fs::chown(&cache, Some(61234), Some(61234)).expect("chown");
    // 61234: a uid nobody else uses, so the count of its threads is dtui's alone.
    let rounds = (1..=5).map(|n| (n, false));
    let rounds = rounds
        .chain([(100, true)])
        .chain((1..=5).map(|n| (n, true)));
    for (n, cached) in rounds {
        let out = run(std::process::Command::new("prlimit")
            .arg(format!("--nproc={n}"))
            .args([
                "setpriv",
                "--reuid=61234",
                "--regid=61234",
                "--clear-groups",
                "--",
            ])
            .arg(env!("CARGO_BIN_EXE_dtui"))
            .args(["scan", "--json"])
            .args(if cached {
                vec!["--cache-dir".as_ref(), cache.as_os_str()]
            } else {
                vec![std::ffi::OsStr::new("--no-cache")]
            })
            .arg(&root));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked"),
            "{n} threads, cached {cached}: {stderr}"
        );
        match out.status.code() {
            Some(0) => {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
                assert_eq!(v["disk"], disk, "{n} threads, cached {cached}: {v}");
                assert_eq!(v["items"], items, "{n} threads, cached {cached}: {v}");
            }
            Some(1) => {
                assert_eq!(
                    stderr.lines().count(),
                    1,
                    "{n} threads, cached {cached}: {stderr}"
                );
                // (Where the cache is opened first, its reader says it.)
                assert!(
                    stderr.contains("Resource temporarily unavailable"),
                    "{n} threads, cached {cached}: {stderr}"
                );
            }
            _ => panic!("{n} threads: {out:?}"),
        }
        // The caller's thread and the engine's are all a scan needs (with a cache, the
        // store's writer too).
        assert_eq!(
            out.status.code() == Some(0),
            n >= if cached { 3 } else { 2 },
            "{n} threads, cached {cached}: {stderr}"
        );
    }
}
