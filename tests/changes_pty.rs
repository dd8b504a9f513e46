//! The browser's change column in a real pseudo-terminal: after a catch-up that grew one
//! directory and shrank another, `v` shows both against the previous run, `V` orders by them.

mod common;

use common::pty::{NO_ENV, Pty};
use common::*;

#[test]
fn the_change_column_shows_growth_and_shrinkage_since_the_previous_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, cache) = (dir.path().join("root"), dir.path().join("cache"));
    for d in ["grower", "shrinker", "steady"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    write(&root.join("shrinker/big"), 3 * 1024 * 1024);
    write(&root.join("steady/f"), 100_000);
    let cache_arg = cache.to_str().expect("utf-8");
    let root_arg = root.to_str().expect("utf-8");
    let out = run(dtui().args(["scan", "--cache-dir", cache_arg, root_arg]));
    assert!(out.status.success(), "{out:?}");

    // Between the runs: one grows, one shrinks. The browser's catch-up finds both.
    write(&root.join("grower/new"), 5 * 1024 * 1024);
    std::fs::remove_file(root.join("shrinker/big")).expect("rm");
    write(&root.join("shrinker/small"), 1024 * 1024);

    let mut pty = Pty::dtui(
        &[
            "--watch-backend",
            "none",
            "--cache-dir",
            cache_arg,
            root_arg,
        ],
        NO_ENV,
        30,
        110,
    );
    pty.wait_for("the catch-up", |s| s.contains("caught up with the disk"));
    pty.send(b"v");
    pty.wait_for("the change column", |s| {
        s.lines()
            .any(|l| l.contains("+5 MiB") && l.contains("grower/"))
            && s.lines()
                .any(|l| l.contains("-2 MiB") && l.contains("shrinker/"))
    });
    let steady = pty.line_with("steady/").expect("steady row");
    assert!(
        steady.contains("   0  steady/"),
        "an unchanged directory shows 0: {steady}"
    );
    assert!(
        pty.parser
            .screen()
            .contents()
            .contains("since the previous session"),
        "the period is said"
    );

    // `V` orders by change: the grower first, the shrinker last.
    pty.send(b"V");
    pty.wait_for("the order by change", |s| {
        let pos = |n: &str| s.find(n);
        s.contains("change↓")
            && pos("grower/") < pos("steady/")
            && pos("steady/") < pos("shrinker/")
    });
    // `p` moves to the last hour: the history began with the scan just before, so the
    // same changes show from there.
    pty.send(b"p");
    pty.wait_for("the hour period", |s| s.contains("in the last 1h"));
    pty.wait_for("the changes over the hour", |s| {
        s.lines()
            .any(|l| l.contains("+5 MiB") && l.contains("grower/"))
    });
    assert_eq!(pty.quit(), 0);
}
