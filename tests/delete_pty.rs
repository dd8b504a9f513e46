//! The delete dialogs end to end: the real `dtui` in a pseudo-terminal, its screen parsed with
//! `vt100`, the disk checked after each key.

mod common;

use std::io::{Read, Write};
use std::path::Path;
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
    fn spawn(args: &[&str], env: &[(&str, &Path)]) -> Pty {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 30,
                cols: 100,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_dtui"));
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        cmd.env("XDG_CACHE_HOME", test_cache_home());
        for (k, v) in env {
            cmd.env(k, v);
        }
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
            parser: vt100::Parser::new(30, 100, 0),
        }
    }

    fn screen(&self) -> String {
        self.parser.screen().contents()
    }

    fn wait_for(&mut self, what: &str, cond: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if cond(&self.screen()) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}:\n{}",
                self.screen()
            );
            match self.rx.recv_timeout(left) {
                Ok(bytes) => {
                    if std::env::var_os("PTY_DEBUG").is_some() {
                        eprintln!("<<{}>>", String::from_utf8_lossy(&bytes).escape_debug());
                    }
                    self.parser.process(&bytes);
                }
                Err(e) => panic!("{e} before {what}:\n{}", self.screen()),
            }
        }
    }

    fn send(&mut self, keys: &[u8]) {
        self.writer.write_all(keys).expect("write keys");
        self.writer.flush().expect("flush");
    }

    fn quit(&mut self) {
        self.send(b"q");
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().expect("try_wait").is_none() {
            assert!(Instant::now() < deadline, "dtui did not exit");
            let _ = self.rx.recv_timeout(Duration::from_millis(50));
        }
    }
}

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
    let mut p = Pty::spawn(
        &["--no-cache", "--watch-backend", "none", root_s],
        &[("XDG_DATA_HOME", &data)],
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
        s.contains("Move to the trash bravo")
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
        let mut p = Pty::spawn(
            &["--no-cache", "--watch-backend", "none", flag, root_s],
            &[],
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
