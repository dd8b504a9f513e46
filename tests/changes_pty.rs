//! The browser's change column in a real pseudo-terminal: after a catch-up that grew one
//! directory and shrank another, `v` shows both against the previous run, `V` orders by them.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use crossbeam_channel::{Receiver, unbounded};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};

struct Pty {
    rx: Receiver<Vec<u8>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    parser: vt100::Parser,
}

impl Pty {
    fn spawn(args: &[&str]) -> Pty {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 30,
                cols: 110,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_dtui"));
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        cmd.env("XDG_CACHE_HOME", test_cache_home());
        let child = pair.slave.spawn_command(cmd).expect("spawn");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("reader");
        let writer = pair.master.take_writer().expect("writer");
        let (tx, rx) = unbounded();
        std::thread::spawn(move || {
            let _master = pair.master;
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Pty {
            rx,
            writer,
            child,
            parser: vt100::Parser::new(30, 110, 0),
        }
    }

    fn wait_for(&mut self, what: &str, cond: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if cond(&self.parser.screen().contents()) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; screen:\n{}",
                self.parser.screen().contents()
            );
            if let Ok(bytes) = self.rx.recv_timeout(left) {
                self.parser.process(&bytes);
            }
        }
    }

    fn send(&mut self, keys: &[u8]) {
        self.writer.write_all(keys).expect("write keys");
        self.writer.flush().expect("flush");
    }

    fn line_with(&self, needle: &str) -> Option<String> {
        self.parser
            .screen()
            .contents()
            .lines()
            .find(|l| l.contains(needle))
            .map(str::to_owned)
    }

    fn quit(&mut self) -> u32 {
        self.send(b"q");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.exit_code();
            }
            assert!(Instant::now() < deadline, "dtui did not exit");
            let _ = self.rx.recv_timeout(Duration::from_millis(50));
        }
    }
}

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

    let mut pty = Pty::spawn(&[
        "--watch-backend",
        "none",
        "--cache-dir",
        cache_arg,
        root_arg,
    ]);
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
