//! The terminal guard: raw mode, the alternate screen and mouse capture on, and always off
//! again: on drop (quit, error) and from a panic hook (a panic in any thread).

use std::io::{self, Write};
use std::sync::Once;

use ratatui::crossterm::{
    cursor,
    event::{DisableMouseCapture, EnableMouseCapture},
    execute,
    terminal::{self, EnterAlternateScreen, LeaveAlternateScreen},
};

/// While alive, the terminal is in the browser's modes.
pub struct TerminalGuard {
    active: bool,
}

impl TerminalGuard {
    pub fn enter() -> io::Result<TerminalGuard> {
        install_panic_hook();
        terminal::enable_raw_mode()?;
        let mut guard = TerminalGuard { active: true };
        if let Err(e) = execute!(
            io::stdout(),
            EnterAlternateScreen,
            EnableMouseCapture,
            cursor::Hide
        ) {
            guard.leave();
            return Err(e);
        }
        Ok(guard)
    }

    /// Restores the terminal (for a shell, say); `resume` enters the modes again.
    pub fn leave(&mut self) {
        if self.active {
            restore();
            self.active = false;
        }
    }

    pub fn resume(&mut self) -> io::Result<()> {
        terminal::enable_raw_mode()?;
        execute!(
            io::stdout(),
            EnterAlternateScreen,
            EnableMouseCapture,
            cursor::Hide
        )?;
        self.active = true;
        Ok(())
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Leaves every mode the browser enters. Safe to call more than once.
pub fn restore() {
    let _ = terminal::disable_raw_mode();
    let mut out = io::stdout();
    let _ = execute!(out, DisableMouseCapture, LeaveAlternateScreen, cursor::Show);
    let _ = out.flush();
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
