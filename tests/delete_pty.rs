//! The delete dialogs end to end: the real `dtui` in a pseudo-terminal, its screen parsed with
//! `vt100`, the disk checked after each key.

mod common;

use common::pty::{NO_ENV, Pty};

/// The screen row holding `text`.
fn row_of(screen: &str, text: &str) -> Option<usize> {
    screen.lines().position(|l| l.contains(text))
}

#[test]
fn the_delete_dialog_confirms_cancels_trashes_and_undoes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    for (name, size) in [("alpha", 400_000), ("bravo", 300_000), ("charlie", 200_000)] {
        std::fs::create_dir_all(root.join(name)).expect("mkdir");
        std::fs::write(root.join(name).join("data"), vec![1u8; size]).expect("write");
    }
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let root_s = root.to_str().expect("utf-8 path");
    let mut p = Pty::dtui(
        &["--no-cache", "--watch-backend", "none", root_s],
        &[("XDG_DATA_HOME", &data)],
        30,
        100,
    );
    // Delete waits for the scan to end (it says so): the state word says it ended.
    p.wait_for("the scanned list", |s| {
        s.contains("charlie/") && s.contains("[cached]")
    });
    // The cursor is on the top entry (the biggest): alpha.
    p.send(b"d");
    p.wait_for("the confirmation", |s| s.contains("Delete alpha (2 items"));
    let s = p.screen();
    assert!(
        s.contains("[ No ]") && s.contains("This cannot be undone"),
        "{s}"
    );
    // Enter takes the focused button, which is No.
    p.send(b"\r");
    p.wait_for("the dialog closed", |s| !s.contains("Delete alpha"));
    assert!(root.join("alpha").exists());
    // n and Esc cancel too.
    p.send(b"d");
    p.wait_for("the confirmation", |s| s.contains("Delete alpha"));
    p.send(b"n");
    p.wait_for("the dialog closed", |s| !s.contains("Delete alpha"));
    p.send(b"d");
    p.wait_for("the confirmation", |s| s.contains("Delete alpha"));
    p.send(b"\x1b");
    p.wait_for("the dialog closed", |s| !s.contains("Delete alpha"));
    assert!(root.join("alpha").exists());
    // y deletes: gone from the disk and the list, the freed space said, the cursor on the
    // next entry.
    let alpha_row = row_of(&p.screen(), "alpha/").expect("alpha's row");
    p.send(b"d");
    p.wait_for("the confirmation", |s| s.contains("Delete alpha"));
    p.send(b"y");
    p.wait_for("the freed space", |s| {
        s.contains("deleted 2 items, freed") && !s.contains("alpha/")
    });
    assert!(!root.join("alpha").exists());
    assert_eq!(
        row_of(&p.screen(), "bravo/"),
        Some(alpha_row),
        "bravo took alpha's row"
    );
    // D moves the selected entry (bravo) to the trash; u puts it back.
    p.send(b"D");
    p.wait_for("the trash confirmation", |s| {
        s.contains("Move bravo (2 items, ") && s.contains(") to the trash?")
    });
    p.send(b"y");
    p.wait_for("moved to the trash", |s| {
        s.contains("moved bravo to the trash") && !s.contains("bravo/")
    });
    assert!(data.join("Trash/files/bravo/data").exists());
    assert!(data.join("Trash/info/bravo.trashinfo").exists());
    p.send(b"u");
    p.wait_for("put back", |s| {
        s.contains("put back 1 entry from the trash") && s.contains("bravo/")
    });
    assert!(root.join("bravo/data").exists());
    // The cursor stayed on charlie (the entry after bravo). "Don't ask again": the next d
    // deletes at once.
    p.send(b"d");
    p.wait_for("the confirmation", |s| s.contains("Delete charlie"));
    p.send(b"\t\t\r");
    p.wait_for("charlie deleted", |s| {
        !s.contains("charlie/") && s.contains("deleted 2 items")
    });
    assert!(!root.join("charlie").exists());
    p.send(b"d");
    p.wait_for("bravo deleted without a question", |s| {
        !s.contains("bravo/")
    });
    assert!(!root.join("bravo").exists());
    p.quit();
}

#[test]
fn read_only_and_no_delete_refuse_d_and_say_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("keep")).expect("mkdir");
    let root_s = root.to_str().expect("utf-8 path");
    for (flag, says) in [("-r", "read-only mode"), ("--no-delete", "--no-delete")] {
        let mut p = Pty::dtui(
            &["--no-cache", "--watch-backend", "none", flag, root_s],
            NO_ENV,
            30,
            100,
        );
        // After the scan (whose end clears the footer's message).
        p.wait_for("the list", |s| {
            s.contains("keep/") && s.contains("[cached]")
        });
        p.send(b"d");
        p.wait_for("the refusal", |s| {
            s.contains(&format!("{says}: delete is disabled"))
        });
        assert!(root.join("keep").exists());
        p.quit();
    }
}

#[test]
fn the_dialog_counts_only_what_goes_and_says_what_hard_links_outside_keep() {
    // Regression (issue 21): the dialog offered a directory's size with the bytes of a file
    // whose other name is outside the selection, which a delete does not free.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("aa")).expect("mkdir");
    std::fs::write(root.join("aa/big"), vec![1u8; 1 << 20]).expect("write");
    std::fs::hard_link(root.join("aa/big"), dir.path().join("outside")).expect("link");
    let root_s = root.to_str().expect("utf-8 path");
    let mut p = Pty::dtui(
        &["--no-cache", "--watch-backend", "none", root_s],
        NO_ENV,
        30,
        100,
    );
    p.wait_for("the list", |s| s.contains("aa/") && s.contains("[cached]"));
    p.send(b"d");
    p.wait_for("the confirmation", |s| s.contains("Delete aa (2 items"));
    let s = p.screen();
    let asked = s
        .lines()
        .find(|l| l.contains("Delete aa"))
        .expect("the question");
    assert!(!asked.contains("MiB"), "the linked file's bytes stay: {s}");
    assert!(
        s.contains("Not freed, they stay: 1 MiB in 1 file with hard links outside"),
        "{s}"
    );
    p.send(b"n");
    p.wait_for("the dialog closed", |s| !s.contains("Delete aa"));
    p.quit();
}

fn files(dir: &std::path::Path, n: usize) {
    std::fs::create_dir_all(dir).expect("mkdir");
    for i in 0..n {
        std::fs::write(dir.join(format!("f{i}")), b"data").expect("write");
    }
}

/// Entries below `path` (the path itself not counted).
fn count_below(path: &std::path::Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(path).expect("read_dir") {
        let e = e.expect("entry");
        n += 1;
        if e.file_type().expect("type").is_dir() {
            n += count_below(&e.path());
        }
    }
    n
}

#[test]
fn a_directory_moved_into_the_victim_while_the_dialog_is_open_is_left_and_said() {
    // Regression: the dialog said what the tree showed, then the delete took whatever the
    // disk held once confirmed, a directory moved in meanwhile included.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    files(&root.join("victim/sub"), 50);
    files(&root.join("precious"), 20);
    let root_s = root.to_str().expect("utf-8 path");
    let mut p = Pty::dtui(&["--no-cache", root_s], NO_ENV, 30, 100);
    p.wait_for("the live list", |s| {
        s.contains("victim/") && s.contains("precious/") && s.contains("[live]")
    });
    // The cursor is on the biggest: victim.
    p.send(b"d");
    p.wait_for("the confirmation", |s| {
        s.contains("Delete victim (52 items")
    });
    std::fs::rename(root.join("precious"), root.join("victim/sub/precious")).expect("mv");
    p.send(b"y");
    let s = p.wait_for("what was left, said", |s| {
        s.contains("left: not what was confirmed") && s.contains("deleted 50 items")
    });
    assert!(s.contains("sub/precious: not shown when the"), "{s}");
    assert_eq!(count_below(&root.join("victim/sub/precious")), 20, "{s}");
    assert_eq!(
        count_below(&root.join("victim")),
        22,
        "only what was shown went"
    );
    p.send(b"\x1b");
    p.wait_for("the summary closed", |s| !s.contains("Enter or Esc closes"));
    p.quit();
}

#[test]
fn an_excluded_directory_says_what_goes_and_leaves_no_ghost_row() {
    // Regression: `d` on an excluded directory said "1 item, 0 B", then "changed on disk",
    // then deleted 311 items, and its row stayed in the list.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    for k in 0..10 {
        files(&root.join(format!("node_modules/p{k}")), 30);
    }
    std::fs::write(root.join("other"), b"x").expect("write");
    let root_s = root.to_str().expect("utf-8 path");
    let mut p = Pty::dtui(
        &["--no-cache", "--exclude", "node_modules", root_s],
        NO_ENV,
        30,
        100,
    );
    p.wait_for("the live list", |s| {
        s.contains("node_modules/") && s.contains("other") && s.contains("[live]")
    });
    // `other` (4 KiB) comes first; the excluded directory (0 B) second.
    p.send(b"j");
    p.send(b"d");
    let s = p.wait_for("the confirmation", |s| {
        s.contains("Delete node_modules (311 items")
    });
    assert!(
        s.contains("excluded, unread") && s.contains("(310 items)"),
        "{s}"
    );
    p.send(b"y");
    let s = p.wait_for("deleted, its row gone", |s| {
        s.contains("deleted 311 items") && !s.contains("node_modules")
    });
    assert!(!s.contains("Changed on disk"), "{s}");
    assert!(!root.join("node_modules").exists());
    p.quit();
}

/// The text inside a dialog box, its lines joined by spaces (to read what it wrapped).
fn boxed(screen: &str) -> String {
    screen
        .lines()
        .filter_map(|l| {
            let inner = l.split('│').nth(1)?;
            Some(inner.trim().to_owned())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The row of the bottom border of the dialog box (the last `└` on screen).
fn bottom_border(screen: &str) -> Option<usize> {
    screen
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains('└'))
        .map(|(i, _)| i)
        .last()
}

#[test]
fn the_dialogs_keep_their_buttons_inside_the_box_at_a_narrow_size() {
    // Regression: at 40 columns the confirmation's buttons and the "no trash" dialog's were
    // wrapped below the box's last row, out of sight.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("alpha")).expect("mkdir");
    std::fs::write(root.join("alpha/data"), vec![1u8; 100_000]).expect("write");
    // A data directory that is a file: no trash can be made there.
    let not_a_dir = dir.path().join("not-a-dir");
    std::fs::write(&not_a_dir, b"").expect("write");
    let root_s = root.to_str().expect("utf-8 path");
    let mut p = Pty::dtui(
        &["--no-cache", "--watch-backend", "none", root_s],
        &[("XDG_DATA_HOME", &not_a_dir)],
        20,
        40,
    );
    // (At 40 columns the footer says "cached" without brackets.)
    p.wait_for("the list", |s| s.contains("alpha/") && s.contains("cached"));
    p.send(b"d");
    let s = p.wait_for("the confirmation", |s| {
        s.contains("[ Yes, don't ask again ]")
    });
    let last = row_of(&s, "[ Yes, don't ask again ]").expect("the last button");
    assert!(
        row_of(&s, "[ No ]").is_some_and(|r| r <= last) && last < bottom_border(&s).expect("box"),
        "{s}"
    );
    p.send(b"\x1b");
    p.wait_for("closed", |s| !s.contains("[ No ]"));
    p.send(b"D");
    p.wait_for("the trash confirmation", |s| {
        s.contains("Move alpha (") && s.contains("trash?")
    });
    p.send(b"y");
    let s = p.wait_for("no trash: delete instead?", |s| {
        s.contains("Delete permanently instead?") && s.contains("[ Yes ]")
    });
    let buttons = row_of(&s, "[ Yes ]").expect("the buttons");
    assert!(
        row_of(&s, "Delete permanently instead?").is_some_and(|r| r < buttons)
            && buttons < bottom_border(&s).expect("box"),
        "{s}"
    );
    p.send(b"n");
    p.wait_for("closed", |s| !s.contains("[ Yes ]"));
    assert!(root.join("alpha/data").exists());
    p.quit();
}

#[test]
fn a_failed_undo_says_why_in_full_and_u_tries_again() {
    // Regression: a failed undo forgot what it was putting back (`u` then said "nothing to
    // undo"), and its box said " 1 could not go " with the reason cut.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir
        .path()
        .join("a-directory-with-a-rather-long-name-so-that-the-reason-wraps");
    files(&root.join("bravo"), 3);
    std::fs::write(root.join("small"), b"x").expect("write");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let root_s = root.to_str().expect("utf-8 path");
    let mut p = Pty::dtui(
        &["--no-cache", "--watch-backend", "none", root_s],
        &[("XDG_DATA_HOME", &data)],
        24,
        50,
    );
    p.wait_for("the list", |s| s.contains("bravo/") && s.contains("cached"));
    p.send(b"D");
    p.wait_for("the trash confirmation", |s| {
        s.contains("Move bravo (") && s.contains("trash?")
    });
    p.send(b"y");
    p.wait_for("moved", |s| s.contains("moved bravo to the trash"));
    // Something takes the name meanwhile: it cannot go back.
    std::fs::write(root.join("bravo"), b"in the way").expect("write");
    p.send(b"u");
    let s = p.wait_for("why it could not", |s| {
        s.contains("1 could not be put back") && boxed(s).contains("bravo: File exists")
    });
    assert!(s.contains("Enter or Esc closes"), "{s}");
    p.send(b"\x1b");
    p.wait_for("closed", |s| !s.contains("Enter or Esc closes"));
    std::fs::remove_file(root.join("bravo")).expect("rm");
    p.send(b"u");
    p.wait_for("put back", |s| {
        s.contains("put back 1 entry from the trash")
    });
    assert_eq!(count_below(&root.join("bravo")), 3);
    p.quit();
}

#[test]
fn dtui_delete_attaches_to_the_browser_that_owns_the_root_and_the_browser_follows() {
    // `dtui delete` beside a browser of the same root used to run without the cache the
    // browser held (a warning); it now attaches to the browser, which owns the root: the
    // delete plans from the browser's tree and tells it what went. The browser watches
    // nothing here, so only what the delete told it can take `x` off its screen.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    files(&root.join("x"), 2);
    files(&root.join("y"), 2);
    let root_s = root.to_str().expect("utf-8 path");
    let mut p = Pty::dtui(&["--watch-backend", "none", root_s], NO_ENV, 30, 100);
    p.wait_for("the list", |s| s.contains("x/") && s.contains("y/"));
    let out = common::run(
        common::dtui()
            .args(["delete", "-y"])
            .arg(&root)
            .arg(root.join("x")),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("running without a cache"), "{stderr}");
    assert!(!root.join("x").exists());
    p.wait_for("x gone from the browser", |s| {
        !s.contains("x/") && s.contains("y/")
    });
    p.quit();
}

/// The browser of `root` (`--no-cache`, no watch) in a private mount namespace of its own,
/// after `setup` (shell, run there first: its mounts); `None` where this machine has no
/// mount namespaces.
fn browser_in_private_mounts(root: &std::path::Path, setup: &str) -> Option<Pty> {
    common::in_private_mount_namespace("true")?;
    let script = format!(
        "set -e; {setup} exec {bin} --no-cache --watch-backend none {root}",
        bin = env!("CARGO_BIN_EXE_dtui"),
        root = common::pty::sh_quote(root),
    );
    Some(Pty::spawn_with(
        "unshare",
        &["-m", "--propagation", "private", "sh", "-c", &script],
        NO_ENV,
    ))
}

#[test]
fn an_entry_below_a_mount_inside_the_root_is_refused_before_anything_is_asked() {
    // Inside a private mount namespace (where this machine has them): a tmpfs mounted at
    // root/mnt, holding a/big; the browser runs in that namespace.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("mnt")).expect("mkdir");
    std::fs::create_dir_all(root.join("plain")).expect("mkdir");
    std::fs::write(root.join("plain/f"), vec![1u8; 1000]).expect("write");
    let root_s = common::pty::sh_quote(&root);
    let setup = format!(
        "mount -t tmpfs none {root_s}/mnt; mkdir {root_s}/mnt/a; \
         head -c 3000000 /dev/zero > {root_s}/mnt/a/big;"
    );
    let Some(mut p) = browser_in_private_mounts(&root, &setup) else {
        return;
    };
    p.wait_for("the scanned list", |s| {
        s.contains("mnt/") && s.contains("plain/") && s.contains("[cached]")
    });
    // mnt/ is the biggest, on top: into it; a/ is its only row.
    p.send(b"\r");
    p.wait_for("inside mnt/", |s| s.contains("a/") && !s.contains("plain/"));
    p.send(b"d");
    let s = p.wait_for("the refusal", |s| s.contains("cannot delete: "));
    assert!(!s.contains("Delete a"), "asked all the same: {s}");
    // (The status line ends where the terminal does: the reason's tail may be cut.)
    let said = format!(
        "{}/mnt/a: on the filesystem mounted at {}/mnt",
        root.display(),
        root.display()
    );
    assert!(s.contains(&said), "{s}");
    // Still there: the row and its size.
    assert!(s.contains("a/") && s.contains("2.86 MiB"), "{s}");
    p.quit();
}

#[test]
fn a_target_that_became_a_mount_point_after_the_question_is_refused_with_its_reason() {
    // The browser in a private mount namespace; a tmpfs mounted over a/ (in that namespace,
    // through nsenter) between `d` and `y`: the delete finds it changed, and what it is now
    // would be refused, so the dialog closes with the reason (it showed "Delete (0 items)?").
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("a")).expect("mkdir");
    std::fs::write(root.join("a/f"), vec![1u8; 400_000]).expect("write");
    std::fs::create_dir_all(root.join("b")).expect("mkdir");
    std::fs::write(root.join("b/g"), vec![1u8; 1000]).expect("write");
    let Some(mut p) = browser_in_private_mounts(&root, "") else {
        return;
    };
    p.wait_for("the scanned list", |s| {
        s.contains("a/") && s.contains("b/") && s.contains("[cached]")
    });
    p.send(b"d");
    p.wait_for("the question", |s| s.contains("Delete a (2 items"));
    let pid = p.child.process_id().expect("dtui's pid").to_string();
    let out = common::run(
        std::process::Command::new("nsenter")
            .args(["-t", &pid, "-m", "mount", "-t", "tmpfs", "none"])
            .arg(root.join("a")),
    );
    assert!(out.status.success(), "{out:?}");
    p.send(b"y");
    let s = p.wait_for("the refusal", |s| s.contains("cannot delete: "));
    assert!(!s.contains("(0 items"), "{s}");
    assert!(
        s.contains(&format!(
            "{}: another filesystem is mounted there",
            root.join("a").display()
        )),
        "{s}"
    );
    // Under the mount (seen from outside the namespace), a/ and its file are untouched.
    assert!(root.join("a/f").exists());
    p.quit();
}
