//! Ctrl-C while an export is read with a progress line on the terminal (a slow `-f -`): the
//! signals that stop the read are blocked in the reading threads and taken by the thread that
//! draws the line, which clears it (so that the shell's prompt starts on a fresh line, whatever
//! the shell) and then dies of the signal, as the process would have.

/// The signals that stop a read with a progress line, blocked in this thread while it lasts.
pub struct Stops {
    set: nix::sys::signal::SigSet,
    before: nix::sys::signal::SigSet,
}

impl Stops {
    pub fn block() -> Option<Stops> {
        use nix::sys::signal::{SigSet, SigmaskHow, Signal};
        let mut set = SigSet::empty();
        for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            set.add(sig);
        }
        let before = set.thread_swap_mask(SigmaskHow::SIG_BLOCK).ok()?;
        Some(Stops { set, before })
    }

    /// One of the signals came: clear the progress line, then die of it.
    pub fn die_if_asked(&self) {
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid signal set and timeout; no siginfo asked for.
        let sig =
            unsafe { libc::sigtimedwait(self.set.as_ref(), std::ptr::null_mut(), &raw const zero) };
        let Ok(signal) = nix::sys::signal::Signal::try_from(sig) else {
            return;
        };
        eprint!("\r\x1b[K");
        let mut only = nix::sys::signal::SigSet::empty();
        only.add(signal);
        // Default action: raised while blocked, it is delivered as it is unblocked.
        let _ = nix::sys::signal::raise(signal);
        let _ = only.thread_unblock();
        std::process::exit(128 + signal as i32);
    }
}

impl Drop for Stops {
    fn drop(&mut self) {
        let _ = self.before.thread_set_mask();
    }
}
