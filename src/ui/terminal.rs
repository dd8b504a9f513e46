//! The terminal: its modes saved once at start (termios), raw mode derived from that saved state,
//! the alternate screen and mouse capture on; and exactly the saved state back on drop (quit,
//! error), before a shell or a suspend, from a panic hook (a panic in any thread), and from the
//! paths that run no panic hook: an allocation that fails (`crate::oom`) and SIGABRT. A
//! terminal that hung up gets nothing back: the outputs that were it are quieted instead.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, OnceLock};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::termios::{self, SetArg, Termios};
use ratatui::crossterm::{
    cursor,
    event::{DisableMouseCapture, EnableMouseCapture},
    execute,
    terminal::{EnterAlternateScreen, LeaveAlternateScreen},
};

/// The terminal's modes before the browser touched them. Saved once: a shell run with `b` that
/// leaves the terminal raw must not make raw the state we restore at `q`.
static SAVED: OnceLock<libc::termios> = OnceLock::new();

/// The browser's modes are on: what `restore_fatal` must undo. An atomic, so that a path that
/// may neither lock nor allocate (a signal handler, a failed allocation) can read it.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// What `restore` writes to leave the browser's modes (crossterm's `DisableMouseCapture`,
/// `LeaveAlternateScreen`, `cursor::Show`), built ahead for `restore_fatal`.
const LEAVE: &[u8] = b"\x1b[?1006l\x1b[?1015l\x1b[?1003l\x1b[?1002l\x1b[?1000l\x1b[?1049l\x1b[?25h";

/// While alive (and active), the terminal is in the browser's modes.
pub struct TerminalGuard {
    active: bool,
}

impl TerminalGuard {
    pub fn enter() -> io::Result<TerminalGuard> {
        if SAVED.get().is_none() {
            let now = termios::tcgetattr(io::stdin()).map_err(io::Error::from)?;
            let _ = SAVED.set(now.into());
        }
        install_panic_hook();
        install_abort_handler();
        let mut guard = TerminalGuard { active: false };
        guard.resume()?;
        Ok(guard)
    }

    /// Restores the saved terminal (for a shell, a suspend); `resume` enters the modes again.
    pub fn leave(&mut self) {
        if self.active {
            restore();
            self.active = false;
        }
    }

    /// Raw mode (from the saved state, whatever a shell left), the alternate screen, the mouse.
    pub fn resume(&mut self) -> io::Result<()> {
        let Some(saved) = SAVED.get() else {
            return Err(io::Error::other("the terminal state was not saved"));
        };
        let mut raw = Termios::from(*saved);
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(io::stdin(), SetArg::TCSANOW, &raw).map_err(io::Error::from)?;
        self.active = true;
        ACTIVE.store(true, Ordering::SeqCst);
        if let Err(e) = execute!(
            io::stdout(),
            EnterAlternateScreen,
            EnableMouseCapture,
            cursor::Hide
        ) {
            self.leave();
            return Err(e);
        }
        Ok(())
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Leaves every mode the browser enters and puts back the saved terminal state. Safe to call
/// more than once. TCSANOW, not TCSAFLUSH: keys typed ahead (for a shell) stay queued.
pub fn restore() {
    ACTIVE.store(false, Ordering::SeqCst);
    let mut out = io::stdout();
    let _ = execute!(out, DisableMouseCapture, LeaveAlternateScreen, cursor::Show);
    let _ = out.flush();
    if let Some(saved) = SAVED.get() {
        let _ = termios::tcsetattr(io::stdin(), SetArg::TCSANOW, &Termios::from(*saved));
    }
}

/// Whether the terminal on `fd` hung up (its window closed, an ssh connection lost, `tmux
/// kill-server`): the kernel then answers every ioctl on it with EIO, where a live terminal
/// answers and anything else is no terminal (ENOTTY).
fn is_hung_up(fd: impl AsFd) -> bool {
    matches!(termios::tcgetattr(fd), Err(Errno::EIO))
}

/// Says whether the browser's terminal (standard input) hung up, and if it did, makes
/// standard output and standard error /dev/null where they are that dead terminal. Left on
/// it, every later write fails with EIO, and a failed `eprintln!` panics (ratatui's
/// `Terminal` says with one that it could not show the cursor as it drops): the panic hook
/// would end dtui before its engine saved the cache. Quieted, the writes of the way out
/// (`restore`, the cache's last words, another thread's warning) go into nothing. Safe to
/// call more than once, from any thread.
pub fn quiet_if_hung_up() -> bool {
    if !is_hung_up(io::stdin()) {
        return false;
    }
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        if is_hung_up(io::stdout()) {
            let _ = nix::unistd::dup2_stdout(&null);
        }
        if is_hung_up(io::stderr()) {
            let _ = nix::unistd::dup2_stderr(&null);
        }
    }
    true
}

/// When standard output is not the terminal (`cd "$(dtui)"`) but standard input is: the
/// controlling terminal (`/dev/tty`) made standard output for the browser's life, so that every
/// write of the screen, of `restore` and of a shell reaches it; what standard output was, to
/// put back before `Q` prints. `None`: standard output is the terminal already. An error: there
/// is no terminal to draw on.
pub fn screen_on_tty() -> io::Result<Option<std::os::fd::OwnedFd>> {
    use std::io::IsTerminal as _;
    if io::stdout().is_terminal() {
        return Ok(None);
    }
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    if !tty.is_terminal() {
        return Err(io::Error::other("/dev/tty is not a terminal"));
    }
    let saved = nix::unistd::dup(io::stdout()).map_err(io::Error::from)?;
    // Not inherited: a program `o` started, still running after `Q`, must not hold a
    // `$(dtui)` open.
    nix::fcntl::fcntl(
        &saved,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(io::Error::from)?;
    nix::unistd::dup2_stdout(&tty).map_err(io::Error::from)?;
    Ok(Some(saved))
}

/// `restore` for the paths that may neither lock nor allocate (they can run in a signal
/// handler, or in a thread whose allocation just failed while another holds the stdout lock):
/// only write(2) of pre-built bytes and tcsetattr(3), both async-signal-safe. Says whether the
/// browser's modes were on (so whatever was printed meanwhile went to the alternate screen,
/// which is gone now).
pub fn restore_fatal() -> bool {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return false;
    }
    write_all_raw(libc::STDOUT_FILENO, LEAVE);
    if let Some(saved) = SAVED.get() {
        // SAFETY: `saved` is a valid termios (read by tcgetattr); fd 0 is the terminal the
        // browser set raw (or tcsetattr fails, harmlessly).
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved) };
    }
    true
}

/// write(2) until all of `bytes` went (or an error): no allocation, no lock.
pub fn write_all_raw(fd: libc::c_int, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid slice for its length.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        match usize::try_from(n) {
            Ok(n) if n > 0 => bytes = &bytes[n.min(bytes.len())..],
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => return,
        }
    }
}

/// SIGABRT (Rust's own aborts: a panic while panicking, a stack overflow; or an abort in a
/// library) runs no panic hook: the terminal would stay raw, on the alternate screen, the
/// cursor hidden. The handler puts it back, says so (the reason printed before went to the
/// alternate screen), then lets the signal take its default action.
fn install_abort_handler() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, sigaction};
    static ONCE: Once = Once::new();
    extern "C" fn on_abort(_: libc::c_int) {
        if restore_fatal() {
            write_all_raw(
                libc::STDERR_FILENO,
                b"dtui: aborted (SIGABRT); the terminal was restored\n",
            );
        }
        // SA_RESETHAND made the action the default again; blocked in this handler, the signal
        // raised again is delivered as soon as it returns, and ends the process as an abort.
        let _ = nix::sys::signal::raise(Signal::SIGABRT);
    }
    ONCE.call_once(|| {
        let action = SigAction::new(
            SigHandler::Handler(on_abort),
            SaFlags::SA_RESETHAND,
            SigSet::empty(),
        );
        // SAFETY: the handler only calls async-signal-safe functions (write, tcsetattr,
        // raise) and reads atomics and an initialised OnceLock.
        let _ = unsafe { sigaction(Signal::SIGABRT, &action) };
    });
}

/// Stops the process as Ctrl-Z would (the terminal already restored), returning on SIGCONT.
///
/// SIGTSTP is blocked in every thread (a signal thread waits for it); raised at this thread
/// with only this thread unblocking it, it takes its default action here: stop.
pub fn stop_self() {
    let mut tstp = SigSet::empty();
    tstp.add(Signal::SIGTSTP);
    if tstp.thread_unblock().is_ok() {
        let _ = nix::sys::signal::raise(Signal::SIGTSTP);
        let _ = tstp.thread_block();
    }
}

/// Makes our process group the terminal's foreground again: a shell killed while it had the
/// terminal could not give it back. SIGTTOU is blocked meanwhile, or the kernel would stop a
/// background process that asks.
pub fn take_back() {
    use nix::unistd::{getpgrp, tcgetpgrp, tcsetpgrp};
    let ours = getpgrp();
    if tcgetpgrp(io::stdin()).is_ok_and(|fg| fg == ours) {
        return;
    }
    let mut ttou = SigSet::empty();
    ttou.add(Signal::SIGTTOU);
    let Ok(before) = ttou.thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK) else {
        return;
    };
    let _ = tcsetpgrp(io::stdin(), ours);
    let _ = before.thread_set_mask();
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // A panic in any thread: the terminal comes back first, then the message, then
            // the process ends (a browser whose engine died would only show a frozen tree).
            restore();
            previous(info);
            std::process::exit(101);
        }));
    });
}
