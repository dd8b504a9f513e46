//! What lets the engine wait until the watch has handed over everything the kernel queued
//! before a moment (`Watcher::settle`): an attached query's answer must include what was
//! written before it asked, and the engine otherwise applies a change only after its quiet
//! window.
//!
//! Each reader of a kernel queue (a fanotify or inotify descriptor) and each thread that
//! works for one (inotify's adder, which watches a new directory and reports what is in it)
//! holds a `Gate`: the queue (a duplicate of the descriptor, so it outlives nothing) and a
//! count of work in hand. A reader counts itself in before its read and out once what it
//! read is in the sink; work it hands to another gate is counted there before it counts
//! itself out. Everything queued before a check is then in the sink once every gate, taken
//! in the order the gates were made (readers before the threads they feed), shows an empty
//! kernel queue and then no work in hand: what a reader took from the queue before the check
//! was counted before it was taken.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One reader's (or worker's) state, for `Gates::settled`.
pub(crate) struct Gate {
    queue: Option<OwnedFd>,
    work: AtomicUsize,
}

impl Gate {
    /// Work in hand: before a read, or as work is handed to this gate's thread.
    pub(crate) fn enter(&self) {
        self.work.fetch_add(1, Ordering::SeqCst);
    }

    /// `enter`, and `leave` when the guard goes (a reader's round, whichever way it ends).
    pub(crate) fn round(&self) -> Round<'_> {
        self.enter();
        Round(self)
    }

    /// That work is done: what it read is in the sink (or handed to another gate).
    pub(crate) fn leave(&self) {
        self.work.fetch_sub(1, Ordering::SeqCst);
    }

    /// The kernel's queue is empty, then no work is in hand.
    fn settled(&self) -> bool {
        let empty = self
            .queue
            .as_ref()
            .is_none_or(|fd| queued(fd.as_raw_fd()) == 0);
        empty && self.work.load(Ordering::SeqCst) == 0
    }
}

/// A reader's round in hand (`Gate::round`).
pub(crate) struct Round<'a>(&'a Gate);

impl Drop for Round<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// Bytes waiting in a kernel event queue (`FIONREAD`, which fanotify and inotify answer);
/// 0 if it cannot tell (a queue that errs hands over nothing more).
fn queued(fd: i32) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, valid for the call.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &raw mut n) };
    if r < 0 { 0 } else { n.max(0) as usize }
}

/// Every gate of one watch, in the order they were made.
#[derive(Clone, Default)]
pub(crate) struct Gates(Arc<Mutex<Vec<Arc<Gate>>>>);

impl Gates {
    /// A new gate over `queue` (duplicated), or over work only.
    pub(crate) fn add(&self, queue: Option<BorrowedFd<'_>>) -> Arc<Gate> {
        let gate = Arc::new(Gate {
            queue: queue.and_then(|fd| fd.try_clone_to_owned().ok()),
            work: AtomicUsize::new(0),
        });
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&gate));
        gate
    }

    /// Waits until everything the kernel queued before this call is in the sink, at most
    /// `within`; whether it is. A watch with no gate (`notify`, whose reader is the crate's)
    /// is taken as settled.
    pub(crate) fn settle(&self, within: Duration) -> bool {
        let end = Instant::now() + within;
        loop {
            let settled = self
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .all(|g| g.settled());
            if settled {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            // A reader wakes within a poll's latency (fanotify's pause after a small read
            // is 5 ms): a short wait, not a spin.
            std::thread::sleep(Duration::from_micros(250));
        }
    }
}
