//! The end-to-end harness: a program (the real `dtui`, or a shell running it) in a new
//! pseudo-terminal, its screen parsed with `vt100`, waited on with a deadline, never a sleep.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::{BorrowedFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, unbounded};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};

use super::test_cache_home;

/// No extra environment.
pub const NO_ENV: &[(&str, &str)] = &[];

/// The default size of the terminal.
pub const ROWS: u16 = 30;
pub const COLS: u16 = 100;

pub struct Pty {
    rx: Receiver<Vec<u8>>,
    /// `None` once the terminal was hung up (`hang_up`).
    writer: Option<Box<dyn Write + Send>>,
    /// Tells the reader thread, which holds the master, to close it.
    hang_up: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
    pub parser: vt100::Parser,
    /// Everything the program wrote, escape sequences included.
    pub raw: Vec<u8>,
}

impl Pty {
    /// Runs `script` with `sh -c` in a new pseudo-terminal (so `stty` can report on it after).
    pub fn spawn(script: &str) -> Pty {
        Pty::spawn_with("sh", &["-c", script], NO_ENV)
    }

    /// Runs `program` with `args` and extra environment in a new pseudo-terminal.
    pub fn spawn_with<A: AsRef<OsStr>, E: AsRef<OsStr>>(
        program: &str,
        args: &[A],
        env: &[(&str, E)],
    ) -> Pty {
        Pty::sized(program, args, env, ROWS, COLS)
    }

    /// The real `dtui` with `args` and extra environment, in a terminal of `rows` x `cols`.
    pub fn dtui<A: AsRef<OsStr>, E: AsRef<OsStr>>(
        args: &[A],
        env: &[(&str, E)],
        rows: u16,
        cols: u16,
    ) -> Pty {
        Pty::sized(env!("CARGO_BIN_EXE_dtui"), args, env, rows, cols)
    }

    /// `spawn_with` in a terminal of `rows` x `cols`.
    pub fn sized<A: AsRef<OsStr>, E: AsRef<OsStr>>(
        program: &str,
        args: &[A],
        env: &[(&str, E)],
        rows: u16,
        cols: u16,
    ) -> Pty {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let mut cmd = CommandBuilder::new(program);
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
        let master_fd = pair
            .master
            .as_raw_fd()
            .expect("a Unix pty's master has an fd");
        let (tx, rx) = unbounded();
        let hang_up = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&hang_up);
        let reader = std::thread::spawn(move || {
            let _master = pair.master;
            let mut buf = [0u8; 8192];
            // Never blocked in a read for long: `hang_up` needs this thread's descriptors of
            // the master closed, and a read waits for the program to write.
            while !stop.load(Ordering::SeqCst) {
                if !readable(master_fd) {
                    continue;
                }
                match reader.read(&mut buf) {
                    Ok(n) if n > 0 && tx.send(buf[..n].to_vec()).is_ok() => {}
                    _ => break,
                }
            }
        });
        Pty {
            rx,
            writer: Some(writer),
            hang_up,
            reader: Some(reader),
            child,
            parser: vt100::Parser::new(rows, cols, 0),
            raw: Vec::new(),
        }
    }

    pub fn screen(&self) -> String {
        self.parser.screen().contents()
    }

    /// The first line of the screen holding `needle`.
    pub fn line_with(&self, needle: &str) -> Option<String> {
        self.screen()
            .lines()
            .find(|l| l.contains(needle))
            .map(str::to_owned)
    }

    fn take(&mut self, bytes: &[u8]) {
        if std::env::var_os("PTY_DEBUG").is_some() {
            eprintln!("<<{}>>", String::from_utf8_lossy(bytes).escape_debug());
        }
        self.parser.process(bytes);
        self.raw.extend_from_slice(bytes);
    }

    /// Reads output until `cond` holds for the screen, or fails after 20 s; the screen then.
    pub fn wait_for(&mut self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        self.wait_for_raw(what, |s, _| cond(s));
        self.screen()
    }

    /// Reads output until `cond` holds for the screen or the raw output, or fails after 20 s.
    pub fn wait_for_raw(&mut self, what: &str, cond: impl Fn(&str, &[u8]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if cond(&self.screen(), &self.raw) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; screen:\n{}",
                self.screen()
            );
            match self.rx.recv_timeout(left) {
                Ok(bytes) => self.take(&bytes),
                Err(_) => assert!(
                    cond(&self.screen(), &self.raw),
                    "output ended before {what}; screen:\n{}\nraw: {}",
                    self.screen(),
                    String::from_utf8_lossy(&self.raw)
                ),
            }
        }
    }

    pub fn send(&mut self, keys: &[u8]) {
        let writer = self.writer.as_mut().expect("the terminal is up");
        writer.write_all(keys).expect("write keys");
        writer.flush().expect("flush");
    }

    /// Closes the terminal's master side, as a terminal window closed or `tmux kill-server`
    /// does: the kernel hangs the program's terminal up (SIGHUP to the session leader, reads
    /// end, writes fail with EIO). Its output after this is not read. (portable-pty's writer
    /// sends a newline and an end of file as it closes: two keys the program may still read.)
    pub fn hang_up(&mut self) {
        self.hang_up.store(true, Ordering::SeqCst);
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the pty reader ends");
        }
        self.writer = None;
    }

    /// Waits for the process to end (draining output) and returns its exit code.
    pub fn exit_code(&mut self) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            while let Ok(bytes) = self.rx.try_recv() {
                self.take(&bytes);
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Whatever is still in flight.
                while let Ok(bytes) = self.rx.recv_timeout(Duration::from_millis(200)) {
                    self.raw.extend_from_slice(&bytes);
                }
                return status.exit_code();
            }
            assert!(Instant::now() < deadline, "dtui did not exit");
            match self.rx.recv_timeout(Duration::from_millis(50)) {
                Ok(bytes) => self.take(&bytes),
                // Nothing more to read (the terminal hung up, or the program closed it while
                // it ends): short parks between looks at the process.
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::park_timeout(Duration::from_millis(10));
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// `q`, then the exit code.
    pub fn quit(&mut self) -> u32 {
        self.send(b"q");
        self.exit_code()
    }
}

/// Waits up to 100 ms for `fd` to have something to read (or to be closed at the other end).
fn readable(fd: RawFd) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    // SAFETY: `fd` is the master's, which the calling thread keeps open while it polls.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::from(100u16)).is_ok_and(|n| n > 0)
}

/// A path quoted for `sh -c`.
pub fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}
