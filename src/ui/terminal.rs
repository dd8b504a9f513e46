//! The terminal: its modes saved once at start (termios), raw mode derived from that saved state,
//! the alternate screen and mouse capture on; and exactly the saved state back on drop (quit,
//! error), before a shell or a suspend, and from a panic hook (a panic in any thread).

use std::io::{self, Write};
use std::sync::{Once, OnceLock};

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
    let mut out = io::stdout();
    let _ = execute!(out, DisableMouseCapture, LeaveAlternateScreen, cursor::Show);
    let _ = out.flush();
    if let Some(saved) = SAVED.get() {
        let _ = termios::tcsetattr(io::stdin(), SetArg::TCSANOW, &Termios::from(*saved));
    }
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
