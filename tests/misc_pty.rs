//! Small things of the browser through the real binary in a pseudo-terminal: what `R` says
//! when the root was deleted and made again, and where the shell prompt starts after Ctrl-C
//! while an export is read from standard input.

mod common;

use common::pty::{NO_ENV, Pty, sh_quote};
use common::*;

/// Regression: after the root was deleted and a new directory made at its path, `R` said
/// "re-read: no changes (1 directories)" beside "cannot read: No such file or directory", and
/// the state word went from stale to "cached".
#[test]
fn r_after_the_root_was_deleted_and_made_again_says_so_not_no_changes() {
    for backend in ["none", "inotify"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("tree");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        write(&root.join("sub/file"), 10_000);
        let mut pty = Pty::spawn_with(
            env!("CARGO_BIN_EXE_dtui"),
            &[
                "--no-cache",
                "--watch-backend",
                backend,
                root.to_str().expect("utf-8"),
            ],
            NO_ENV,
        );
        pty.wait_for_raw("the list", |s, _| {
            s.contains("sub/") && (s.contains("[cached]") || s.contains("[live]"))
        });
        std::fs::remove_dir_all(&root).expect("rm -rf");
        std::fs::create_dir(&root).expect("mkdir again");
        if backend != "none" {
            // The watcher notices on its own.
            pty.wait_for_raw("the root said deleted", |s, _| {
                s.contains("stale: the watched directory was deleted")
            });
        }
        pty.send(b"R");
        // The state stays stale, with its reason (read from the engine's next status).
        let screen = pty.wait_for(&format!("{backend}: R's answer"), |s| {
            s.contains("it was deleted") && s.contains("[stale: the watched directory was d")
        });
        assert!(!screen.contains("no changes"), "{backend}:\n{screen}");
        assert!(!screen.contains("[cached]"), "{backend}:\n{screen}");
        assert_eq!(pty.quit(), 0, "{backend}");
    }
}

/// `r` on a directory that cannot be read says so instead of "no changes".
#[test]
fn r_on_a_directory_that_cannot_be_read_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("locked")).expect("mkdir");
    write(&root.join("locked/file"), 10_000);
    let script = format!(
        "exec setpriv --reuid=65534 --regid=65534 --clear-groups -- {} --no-cache \
         --watch-backend none {}",
        env!("CARGO_BIN_EXE_dtui"),
        sh_quote(&root)
    );
    std::process::Command::new("chmod")
        .args(["-R", "a+rwX"])
        .arg(dir.path())
        .status()
        .expect("chmod");
    let mut pty = Pty::spawn(&script);
    pty.wait_for_raw("the list", |s, _| s.contains("locked/"));
    pty.send(b"\r");
    pty.wait_for_raw("inside locked/", |s, _| s.contains("file"));
    std::process::Command::new("chmod")
        .arg("000")
        .arg(root.join("locked"))
        .status()
        .expect("chmod");
    pty.send(b"r");
    let screen = pty.wait_for("r's answer", |s| s.contains("re-read: cannot read"));
    assert!(screen.contains("Permission denied"), "{screen}");
    assert!(!screen.contains("no changes"), "{screen}");
    // 3: entries that could not be read.
    assert_eq!(pty.quit(), 3);
}

/// Regression: Ctrl-C while `dtui -f -` waited for a slow export left "reading (standard
/// input): 0 entries^C" and the next output (the shell's prompt) went on after it.
#[test]
fn ctrl_c_while_an_export_is_read_leaves_the_cursor_on_a_fresh_line() {
    // The producer ignores SIGINT (the read is what is interrupted) and sends a space (JSON
    // whitespace) now and then, until dtui is gone; the shell traps SIGINT, so that it lives
    // to print its mark after dtui.
    let script = format!(
        "trap 'true' INT; (trap '' INT; while printf ' '; do sleep 0.1; done) | {} -f -; \
         echo \"[rc=$?]\"",
        env!("CARGO_BIN_EXE_dtui")
    );
    let mut pty = Pty::spawn(&script);
    pty.wait_for("the progress line", |s| {
        s.contains("reading (standard input)")
    });
    pty.send(b"\x03");
    let screen = pty.wait_for("the shell's mark", |s| s.contains("[rc="));
    let mark = screen
        .lines()
        .find(|l| l.contains("[rc="))
        .expect("the mark's line");
    // Killed by SIGINT (128 + 2), the mark at the start of its line.
    assert!(mark.starts_with("[rc=130]"), "{screen}");
    assert!(!screen.contains("reading (standard input)"), "{screen}");
    let _ = pty.exit_code();
}
