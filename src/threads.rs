//! Helper threads that may not be had. Under a thread limit (RLIMIT_NPROC) or with no memory
//! left for a stack, creating a thread fails; std's `Scope::spawn` then panics, which ended a
//! scan with a panic and an empty tree. Work split over threads runs here instead, on the
//! thread that asked: slower, never wrong.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{Scope, ScopedJoinHandle};

/// Work given to a scoped thread, or its result when no thread could be made for it.
pub enum Job<'s, T> {
    Thread(ScopedJoinHandle<'s, T>),
    Done(T),
}

impl<T> Job<'_, T> {
    /// The result, or the panic of the thread that ran it.
    pub fn join(self) -> std::thread::Result<T> {
        match self {
            Job::Thread(h) => h.join(),
            Job::Done(v) => Ok(v),
        }
    }

    #[must_use]
    pub fn is_finished(&self) -> bool {
        match self {
            Job::Thread(h) => h.is_finished(),
            Job::Done(_) => true,
        }
    }
}

/// Runs `f` on a new scoped thread named `name`, or here and now if none can be made.
pub fn spawn_or_run<'s, T: Send + 's>(
    s: &'s Scope<'s, '_>,
    name: &str,
    f: impl FnOnce() -> T + Send + 's,
) -> Job<'s, T> {
    // `f` waits in a slot shared with the thread, so that it is still here if the thread
    // never starts (spawning takes the closure, and drops it on failure).
    let slot = Arc::new(Mutex::new(Some(f)));
    let theirs = Arc::clone(&slot);
    let take = |slot: &Mutex<Option<_>>| slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    match std::thread::Builder::new()
        .name(name.into())
        .spawn_scoped(s, move || take(&theirs).expect("the work is taken once")())
    {
        Ok(h) => Job::Thread(h),
        Err(_) => Job::Done(take(&slot).expect("no thread took the work")()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_is_done_once_on_a_thread_or_here() {
        let runs = std::sync::atomic::AtomicUsize::new(0);
        let got = std::thread::scope(|s| {
            let jobs: Vec<_> = (0..4)
                .map(|i| {
                    let runs = &runs;
                    spawn_or_run(s, "dtui-test", move || {
                        runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        i * 2
                    })
                })
                .collect();
            jobs.into_iter()
                .map(|j| j.join().expect("no panic"))
                .collect::<Vec<_>>()
        });
        assert_eq!(got, [0, 2, 4, 6]);
        assert_eq!(runs.into_inner(), 4);
    }
}
