//! End to end: the real `dtui` binary in a pseudo-terminal, its screen parsed with `vt100`.

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
    raw: Vec<u8>,
}

const ROWS: u16 = 30;
const COLS: u16 = 100;

impl Pty {
    /// Runs `script` with `sh -c` in a new pseudo-terminal (so `stty` can report on it after).
    fn spawn(script: &str) -> Pty {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let mut cmd = CommandBuilder::new("sh");
        cmd.args(["-c", script]);
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
            parser: vt100::Parser::new(ROWS, COLS, 0),
            raw: Vec::new(),
        }
    }

    /// Reads output until `cond` holds for the screen (or the raw output), or fails after 20 s.
    fn wait_for(&mut self, what: &str, cond: impl Fn(&str, &[u8]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if cond(&self.parser.screen().contents(), &self.raw) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; screen:\n{}",
                self.parser.screen().contents()
            );
            match self.rx.recv_timeout(left) {
                Ok(bytes) => {
                    self.parser.process(&bytes);
                    self.raw.extend_from_slice(&bytes);
                }
                Err(_) => assert!(
                    cond(&self.parser.screen().contents(), &self.raw),
                    "output ended before {what}; screen:\n{}",
                    self.parser.screen().contents()
                ),
            }
        }
    }

    fn send(&mut self, keys: &[u8]) {
        self.writer.write_all(keys).expect("write keys");
        self.writer.flush().expect("flush");
    }

    /// Waits for the process to end (draining output) and returns its exit code.
    fn exit_code(&mut self) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            while let Ok(bytes) = self.rx.try_recv() {
                self.parser.process(&bytes);
                self.raw.extend_from_slice(&bytes);
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Whatever is still in flight.
                while let Ok(bytes) = self.rx.recv_timeout(Duration::from_millis(200)) {
                    self.raw.extend_from_slice(&bytes);
                }
                return status.exit_code();
            }
            assert!(Instant::now() < deadline, "dtui did not exit");
            if let Ok(bytes) = self.rx.recv_timeout(Duration::from_millis(50)) {
                self.parser.process(&bytes);
                self.raw.extend_from_slice(&bytes);
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

#[test]
fn the_browser_opens_descends_and_quits_restoring_the_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    for (d, n) in [("biggest", 40), ("middle", 10), ("smallest", 2)] {
        std::fs::create_dir_all(root.join(d).join("inner")).expect("mkdir");
        for i in 0..n {
            write(&root.join(d).join(format!("file{i}")), 50_000);
        }
    }
    write(&root.join("biggest/inner/needle"), 10);
    let script = format!(
        "{} --no-cache {}; rc=$?; echo; stty -a; exit $rc",
        env!("CARGO_BIN_EXE_dtui"),
        sh_quote(&root)
    );
    let mut pty = Pty::spawn(&script);
    pty.wait_for("the list with totals", |s, _| {
        s.contains("biggest/") && s.contains("Total disk usage") && s.contains("up to date")
    });
    let screen = pty.parser.screen().contents();
    let row = |name: &str| screen.lines().position(|l| l.contains(name));
    assert!(
        row("biggest/") < row("middle/"),
        "largest on top:\n{screen}"
    );
    assert!(row("middle/") < row("smallest/"), "{screen}");

    pty.send(b"\r");
    pty.wait_for("the inside of biggest/", |s, _| {
        s.lines()
            .next()
            .is_some_and(|header| header.contains("/tree/biggest"))
            && s.lines().nth(1).is_some_and(|l| l.trim() == "..")
            && s.contains("file0")
    });
    pty.send(b"q");
    let code = pty.exit_code();
    assert_eq!(code, 0, "q exits 0");
    let raw = &pty.raw;
    let entered = find(raw, b"\x1b[?1049h").expect("the alternate screen was used");
    let left = find(raw, b"\x1b[?1049l").expect("the alternate screen was left");
    assert!(left > entered, "left after entering");
    assert!(
        find(raw, b"\x1b[?25h").is_some_and(|p| p > entered),
        "the cursor is shown again"
    );
    let stty = String::from_utf8_lossy(&raw[left..]);
    assert!(
        stty.contains(" icanon") && stty.contains(" echo"),
        "raw mode is off again: {stty}"
    );
}

#[test]
fn a_missing_path_is_a_clear_error_without_raw_mode() {
    let script = format!(
        "{} /nonexistent/dtui-test-path; rc=$?; echo; stty -a; exit $rc",
        env!("CARGO_BIN_EXE_dtui")
    );
    let mut pty = Pty::spawn(&script);
    let code = pty.exit_code();
    assert_eq!(code, 1);
    let text = String::from_utf8_lossy(&pty.raw).into_owned();
    assert!(
        text.contains("dtui: /nonexistent/dtui-test-path: No such file or directory"),
        "{text}"
    );
    assert!(
        find(&pty.raw, b"\x1b[?1049h").is_none(),
        "no alternate screen"
    );
    assert!(text.contains(" icanon") && text.contains(" echo"), "{text}");
    assert!(!text.contains("panicked"));
}

#[test]
fn sigterm_quits_the_browser_and_restores_the_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(&dir.path().join("file"), 1000);
    let script = format!(
        "exec {} --no-cache {}",
        env!("CARGO_BIN_EXE_dtui"),
        sh_quote(dir.path())
    );
    let mut pty = Pty::spawn(&script);
    pty.wait_for("the list", |s, _| s.contains("Total disk usage"));
    let pid = pty.child.process_id().expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    assert_eq!(pty.exit_code(), 0, "a clean quit");
    let raw = &pty.raw;
    let entered = find(raw, b"\x1b[?1049h").expect("entered");
    assert!(
        find(raw, b"\x1b[?1049l").is_some_and(|p| p > entered),
        "left the alternate screen"
    );
    assert!(
        find(raw, b"\x1b[?25h").is_some_and(|p| p > entered),
        "cursor shown"
    );
}
