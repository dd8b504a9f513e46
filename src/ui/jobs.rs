//! The browser's threads besides its own, each turning what it waits on into `Event`s for the
//! loop: the feeders that run as long as the browser (the engine's messages, the status ticks,
//! the signals) and the jobs the app asks for (`Command`) that this thread must not wait on:
//! an inspection (the disk) and a baseline (SQLite). A job is a plain function; `job` runs it
//! on a thread of its own and sends its answer. The delete worker is `delete::worker`'s, told
//! here how to answer.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, Sender};
use nix::sys::signal::{SigSet, Signal};

use super::app::BaselineError;
use super::{Event, FRAME, Inspection, Status};
use crate::delete::worker::{self, DeleteMsg, Job, Summary, Worker};
use crate::engine::{Engine, EngineMsg, Freshness};
use crate::history::{self, HistorySource, Since};
use crate::path::display_name;
use crate::tree::NodeRef;

/// Sends what `next` returns into the loop until it returns `None` or the loop is gone, on a
/// thread named `name`.
fn feed(
    tx: Sender<Event>,
    name: &str,
    mut next: impl FnMut() -> Option<Event> + Send + 'static,
) -> Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while let Some(event) = next() {
                if tx.send(event).is_err() {
                    return;
                }
            }
        })
        .context("spawning a thread")?;
    Ok(())
}

/// Runs `work` on a thread named `name` and sends its answer into the loop. A thread that
/// cannot be made leaves the question unanswered, as a disk that never answers would (the
/// info window shows `…`; the change column stays blank): never the loop's thread waiting.
fn job(tx: &Sender<Event>, name: &str, work: impl FnOnce() -> Event + Send + 'static) {
    // One answer, then the thread ends.
    let mut work = Some(work);
    let _ = feed(tx.clone(), name, move || work.take().map(|w| w()));
}

/// Every signal the browser answers, blocked in this thread and so in every thread it starts
/// (they inherit the mask), to be waited for on one (`signals`), which turns each into an
/// event.
pub(super) fn block_signals() -> Result<SigSet> {
    let mut signals = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTSTP,
        Signal::SIGCONT,
        Signal::SIGWINCH,
    ] {
        signals.add(s);
    }
    signals.thread_block().context("blocking signals")?;
    Ok(signals)
}

/// The signal thread: quit on SIGTERM, SIGHUP, SIGINT, SIGQUIT (the outputs quieted first if
/// the terminal hung up); suspend on SIGTSTP; redraw on SIGCONT and SIGWINCH. While a shell
/// runs, the keyboard's signals (Ctrl-C, Ctrl-\, Ctrl-Z in a shell without job control reach
/// our process group too) are the shell's, not ours.
pub(super) fn signals(tx: Sender<Event>, signals: SigSet, in_shell: Arc<AtomicBool>) -> Result<()> {
    feed(tx, "dtui-signals", move || {
        loop {
            let signal = signals.wait().ok()?;
            let keyboard = matches!(signal, Signal::SIGINT | Signal::SIGQUIT | Signal::SIGTSTP);
            if keyboard && in_shell.load(Ordering::SeqCst) {
                continue;
            }
            return Some(match signal {
                Signal::SIGTSTP => Event::Suspend,
                Signal::SIGCONT | Signal::SIGWINCH => Event::Redraw,
                _ => {
                    // The kernel sends SIGHUP once the terminal hung up: quieted now, a frame
                    // the loop is drawing meanwhile goes into nothing instead of failing.
                    super::terminal::quiet_if_hung_up();
                    Event::Terminate
                }
            });
        }
    })
}

/// Opens `path` again on a thread (the owner this browser was attached to went away): the
/// engine, or why not, comes back on the returned channel, and `Event::Reopened` says so.
pub(super) fn reopen(
    tx: &Sender<Event>,
    path: &Path,
    opts: &crate::engine::EngineOptions,
    engine_tx: &Sender<EngineMsg>,
) -> Receiver<Result<Engine, crate::engine::EngineError>> {
    let (done, opened) = crossbeam_channel::bounded(1);
    let (path, opts, engine_tx) = (path.to_path_buf(), opts.clone(), engine_tx.clone());
    job(tx, "dtui-reopen", move || {
        let _ = done.send(Engine::open(&path, opts, engine_tx));
        Event::Reopened
    });
    opened
}

/// The engine's messages, as they come.
pub(super) fn engine_msgs(tx: Sender<Event>, rx: Receiver<EngineMsg>) -> Result<()> {
    feed(tx, "dtui-engine-msgs", move || {
        rx.recv().ok().map(Event::Engine)
    })
}

/// The engine's status ~30 times a second while it works, 4 times a second otherwise.
/// Ends with the engine (its progress dropped): a browser that replaces its engine starts
/// another.
pub(super) fn status(tx: Sender<Event>, engine: &Engine) -> Result<()> {
    let progress = Arc::downgrade(&engine.progress);
    let freshness = engine.freshness_handle();
    feed(tx, "dtui-status", move || {
        let busy = matches!(freshness(), Freshness::Scanning | Freshness::Verifying);
        std::thread::park_timeout(if busy {
            FRAME
        } else {
            Duration::from_millis(250)
        });
        let progress = progress.upgrade()?.snapshot();
        Some(Event::Status(Status {
            freshness: freshness(),
            progress,
        }))
    })
}

/// `lstat` and `readlink` one entry for the info window, on a thread (the disk may be slow;
/// the browser must not be).
pub(super) fn inspect(tx: &Sender<Event>, node: NodeRef, path: PathBuf) {
    job(tx, "dtui-inspect", move || {
        Event::Inspected(node, inspection(&path))
    });
}

/// What the disk says of `path` that the tree does not know.
fn inspection(path: &Path) -> Inspection {
    let mut ins = Inspection::default();
    match std::fs::symlink_metadata(path) {
        Ok(m) => {
            ins.nlink = Some(m.nlink());
            if m.file_type().is_symlink() {
                match std::fs::read_link(path) {
                    Ok(t) => ins.target = Some(display_name(t.as_os_str().as_bytes())),
                    Err(e) => ins.error = Some(e.to_string()),
                }
            }
        }
        Err(e) => ins.error = Some(e.to_string()),
    }
    ins
}

/// `o`: `xdg-open path` on a thread of its own, detached (its own process group, no terminal
/// for stdio; std resets the signal mask the browser blocked), so the loop neither waits for it
/// nor touches the disk; the thread reaps it. Only a failure is answered (`Event::OpenFailed`).
pub(super) fn open(tx: &Sender<Event>, path: PathBuf) {
    let mut work = Some(move || {
        let name = display_name(path.as_os_str().as_bytes());
        let child = std::process::Command::new("xdg-open")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        match child.and_then(|mut c| c.wait()) {
            Ok(s) if s.success() => None,
            Ok(s) => Some(Event::OpenFailed(format!("xdg-open {name}: {s}"))),
            Err(e) => Some(Event::OpenFailed(format!("cannot run xdg-open: {e}"))),
        }
    });
    let _ = feed(tx.clone(), "dtui-open", move || {
        work.take().and_then(|w| w())
    });
}

/// Reads the size history's baseline for a period on a thread of its own (its own read-only
/// connection: the browser never waits on SQLite).
pub(super) fn baseline(tx: &Sender<Event>, source: Option<HistorySource>, since: Since) {
    job(tx, "dtui-baseline", move || {
        let result = match source {
            None => Err(BaselineError::NoCache),
            Some(src) => history::load_baseline(&src, since, history::now_ms())
                .map(Arc::new)
                .map_err(|e| BaselineError::History(Arc::new(e))),
        };
        Event::Baseline(since, result)
    });
}

/// Starts a delete worker whose messages come back as `Event::Delete` (a worker that cannot
/// start is told as a failed job).
pub(super) fn delete(tx: &Sender<Event>, engine: &Engine, job: Job) -> Option<Worker> {
    let events = tx.clone();
    let started = worker::spawn(
        Arc::clone(&engine.root_dir),
        Some(Arc::clone(&engine.tree)),
        job,
        Some(engine.user_changes()),
        Box::new(move |m| {
            let _ = events.send(Event::Delete(m));
        }),
    );
    match started {
        Ok(w) => Some(w),
        Err(e) => {
            let _ = tx.send(Event::Delete(DeleteMsg::Done(Summary {
                failed: vec![format!("cannot start the delete worker: {e}")],
                ..Summary::default()
            })));
            None
        }
    }
}
