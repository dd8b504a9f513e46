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
