//! Search end to end: the real `dtui` in a pseudo-terminal (portable-pty), its screen parsed
//! with `vt100`: `/` finds a nested file, Enter opens its directory with it selected, Esc
//! steps back to the results and then to the list where the search started.

mod common;

use common::pty::{COLS, NO_ENV, Pty, ROWS};
use common::*;

/// The screen row holding `text`, and whether it is drawn in reverse video (selected).
fn row_of(pty: &Pty, text: &str) -> Option<(u16, bool)> {
    let screen = pty.parser.screen();
    (0..ROWS).find_map(|y| {
        let line = screen.contents_between(y, 0, y, COLS);
        let x = line.find(text)?;
        let inverse = screen.cell(y, x as u16).is_some_and(vt100::Cell::inverse);
        Some((y, inverse))
    })
}

#[test]
fn searching_finds_a_nested_file_and_enter_opens_its_directory_with_it_selected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    let deep = root.join("projects/alpha/src/inner");
    std::fs::create_dir_all(&deep).expect("mkdir");
    std::fs::create_dir_all(root.join("other")).expect("mkdir");
    for i in 0..12 {
        write(&deep.join(format!("file{i:02}.rs")), 4096 * (i + 1));
        write(&root.join("other").join(format!("noise{i}")), 1000);
    }
    write(&deep.join("Needle.bin"), 300_000);
    write(&root.join("other/needle.txt"), 10);
    let mut pty = Pty::dtui(
        &[
            "--no-cache".as_ref(),
            "--watch-backend".as_ref(),
            "none".as_ref(),
            root.as_os_str(),
        ],
        NO_ENV,
        ROWS,
        COLS,
    );
    pty.wait_for("the list", |s| {
        s.contains("projects/") && s.contains("Total disk usage")
    });

    // The search starts on the second row: leaving the results comes back to it.
    pty.wait_for("both rows", |s| s.contains("other/"));
    pty.send(b"j");
    pty.send(b"/needle");
    pty.wait_for("the prompt", |s| s.contains("/needle█"));
    pty.send(b"\r");
    let s = pty.wait_for("the results", |s| s.contains("2 matches for needle"));
    // Largest first, paths below the root.
    let big = s
        .find("projects/alpha/src/inner/Needle.bin")
        .expect("the nested match");
    let small = s.find("other/needle.txt").expect("the other match");
    assert!(big < small, "largest first:\n{s}");
    assert_eq!(
        row_of(&pty, "projects/alpha/src/inner/Needle.bin").map(|r| r.1),
        Some(true),
        "the largest match is selected:\n{s}"
    );

    pty.send(b"\r");
    let s = pty.wait_for("the holding directory", |s| {
        s.lines()
            .next()
            .is_some_and(|h| h.contains("/tree/projects/alpha/src/inner"))
            && s.contains("file11.rs")
    });
    let (_, selected) = row_of(&pty, "Needle.bin").expect("the match is listed");
    assert!(selected, "the match is the selected row:\n{s}");

    // Esc: back to the results, then to the list where the search started (issue 23: it
    // stayed in the holding directory), on the row selected then.
    pty.send(b"\x1b");
    pty.wait_for("the results again", |s| s.contains("2 matches for needle"));
    pty.send(b"\x1b");
    let s = pty.wait_for("the list where the search started", |s| {
        !s.contains("matches for")
            && s.lines().next().is_some_and(|h| h.contains("/tree "))
            && s.contains("projects/")
            && s.contains("other/")
    });
    assert_eq!(
        row_of(&pty, "other/").map(|r| r.1),
        Some(true),
        "the row selected when the search started:\n{s}"
    );
    pty.send(b"q");
    assert_eq!(pty.exit_code(), 0);
}
