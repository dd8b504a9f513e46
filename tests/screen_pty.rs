//! The screen explains itself, through the real binary in a pseudo-terminal (issue 23): `? for
//! help` in the header at every width, the order and size mode in the footer at every width,
//! plain words in the header (the backend only in the help), messages gone at the next key,
//! and the message of a directory that went naming it as it was last called.

mod common;

use common::pty::{NO_ENV, Pty};
use common::*;

fn header(screen: &str) -> &str {
    screen.lines().next().unwrap_or("")
}

fn footer(screen: &str) -> &str {
    screen.lines().last().unwrap_or("")
}

#[test]
fn the_header_offers_help_and_the_footer_keeps_the_order_at_every_width() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("sub")).expect("mkdir");
    write(&root.join("sub/file"), 10_000);
    let root_s = root.to_str().expect("utf-8");
    for cols in [100, 60, 40, 24] {
        let mut pty = Pty::dtui(
            &["--no-cache", "--watch-backend", "inotify", root_s],
            NO_ENV,
            12,
            cols,
        );
        let screen = pty.wait_for(&format!("{cols}: the list, live"), |s| {
            s.contains("sub/") && header(s).trim_end().ends_with("live")
        });
        let head = header(&screen);
        assert!(
            head.contains("? for help") || (cols < 50 && head.contains("?:help")),
            "{cols} columns: the header offers help: {head:?}"
        );
        assert!(
            !head.contains("inotify"),
            "{cols} columns: the backend is not in the header: {head:?}"
        );
        assert!(
            footer(&screen).contains("size↓") && footer(&screen).contains("disk"),
            "{cols} columns: the footer says the order and the size shown:\n{screen}"
        );
        pty.send(b"a");
        pty.wait_for(&format!("{cols}: apparent sizes"), |s| {
            footer(s).contains("size↓") && footer(s).contains("apparent")
        });
        // The help names the backend, on its last line (End: a short terminal scrolls it).
        pty.send(b"?");
        pty.send(b"\x1b[F");
        pty.wait_for(&format!("{cols}: the help's watcher line"), |s| {
            s.lines()
                .any(|l| l.contains("watcher") && l.contains("inotify"))
        });
        pty.send(b"q");
        pty.wait_for(&format!("{cols}: the help closed"), |s| {
            !s.contains("watcher")
        });
        assert_eq!(pty.quit(), 0);
    }
}

#[test]
fn a_message_goes_at_the_next_key_and_counts_one_in_the_singular() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("sub")).expect("mkdir");
    write(&root.join("sub/file"), 10_000);
    let mut pty = Pty::dtui(
        &[
            "--no-cache",
            "--watch-backend",
            "none",
            root.to_str().expect("utf-8"),
        ],
        NO_ENV,
        20,
        100,
    );
    pty.wait_for("the list", |s| s.contains("sub/") && s.contains("[cached]"));
    pty.send(b"\r");
    pty.wait_for("inside sub/", |s| s.contains("file") && s.contains(".."));
    pty.send(b"r");
    pty.wait_for("r's answer, singular", |s| {
        s.contains("re-read: no changes (1 directory read)")
    });
    pty.send(b"j");
    pty.wait_for("the message gone at the next key", |s| {
        !s.contains("re-read:") && s.contains("file")
    });
    assert_eq!(pty.quit(), 0);
}

#[test]
fn the_gone_message_names_the_directory_as_it_was_last_called() {
    // Regression: a directory renamed while on screen, then deleted, was named by the path it
    // had when the user opened it.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("before/inner")).expect("mkdir");
    write(&root.join("before/inner/file"), 10_000);
    write(&root.join("other"), 1_000);
    let mut pty = Pty::dtui(
        &[
            "--no-cache",
            "--watch-backend",
            "inotify",
            root.to_str().expect("utf-8"),
        ],
        NO_ENV,
        20,
        120,
    );
    pty.wait_for("the list, live", |s| {
        s.contains("before/") && header(s).trim_end().ends_with("live")
    });
    pty.send(b"\r");
    pty.wait_for("inside before/", |s| {
        header(s).contains("/tree/before") && s.contains("inner/")
    });
    std::fs::rename(root.join("before"), root.join("after")).expect("rename");
    pty.wait_for("the header follows the rename", |s| {
        header(s).contains("/tree/after")
    });
    std::fs::remove_dir_all(root.join("after")).expect("rm -r");
    let screen = pty.wait_for("the gone message", |s| s.contains("is gone"));
    let line = screen
        .lines()
        .find(|l| l.contains("is gone"))
        .expect("the message line");
    assert!(
        line.contains("/tree/after is gone"),
        "named as it was last called: {line}"
    );
    // Gone at the next key, as every message.
    pty.send(b"j");
    pty.wait_for("the message gone", |s| !s.contains("is gone"));
    assert_eq!(pty.quit(), 0);
}

#[test]
fn the_delete_dialog_follows_the_disk_and_asks_again_when_the_target_grew() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("victim")).expect("mkdir");
    for i in 0..3 {
        write(&root.join(format!("victim/f{i}")), 100_000);
    }
    write(&root.join("small"), 1_000);
    let mut pty = Pty::dtui(
        &[
            "--no-cache",
            "--watch-backend",
            "inotify",
            root.to_str().expect("utf-8"),
        ],
        NO_ENV,
        30,
        100,
    );
    pty.wait_for("the list, live", |s| {
        s.contains("victim/") && header(s).trim_end().ends_with("live")
    });
    // The cursor is on the biggest: victim.
    pty.send(b"d");
    pty.wait_for("the confirmation", |s| s.contains("Delete victim (4 items"));
    write(&root.join("victim/grown"), 5 * 1024 * 1024);
    let screen = pty.wait_for("the dialog counted again", |s| {
        s.contains("Changed on disk since it was shown") && s.contains("Delete victim (5 items")
    });
    assert!(screen.contains("MiB"), "the new size is shown:\n{screen}");
    pty.send(b"y");
    pty.wait_for("the delete of what was shown", |s| {
        s.contains("deleted 5 items")
    });
    assert!(!root.join("victim").exists(), "all of it went");
    assert_eq!(pty.quit(), 0);
}
