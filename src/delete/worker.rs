//! The thread a delete, a move to the trash or an undo runs on (never the browser's): it
//! reports progress (items, bytes) at most ~30 times a second, waits for an answer when an
//! error needs one, hands the engine what changed as each target is done (fanotify does not
//! report our own process's changes), and ends with one summary.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::trash::{self, TrashError, Trashed};
use super::{Decision, DeleteError, Listener, Progress, Target};
use crate::engine::{UserChange, UserChangeKind, UserChanges};
use crate::scan::RootDir;

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    Delete(Vec<Target>),
    Trash(Vec<Target>),
    /// Put these back from the trash.
    Restore(Vec<Trashed>),
}

/// Messages from the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteMsg {
    Progress {
        items: u64,
        bytes: u64,
    },
    /// An error that needs an answer (`Worker::answer`); the worker waits for it.
    Failed(DeleteError),
    /// Nothing was done: these targets are not what was shown; here they are as they are now,
    /// to be confirmed again.
    Changed(Vec<Target>),
    /// These could not go to a trash (why); everything else did. The user may delete them.
    NoTrash {
        targets: Vec<Target>,
        why: String,
    },
    Done(Summary),
}

/// How a job ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub items: u64,
    pub bytes: u64,
    /// What could not go, one line each (escaped for the terminal).
    pub failed: Vec<String>,
    pub trashed: Vec<Trashed>,
    pub restored: Vec<PathBuf>,
    pub aborted: bool,
    pub cancelled: bool,
}

/// The running job: answer its questions, or cancel it.
pub struct Worker {
    answers: Sender<Decision>,
    pub progress: Arc<Progress>,
}

impl Worker {
    pub fn answer(&self, d: Decision) {
        let _ = self.answers.send(d);
    }

    /// Stops at the next entry (a question waiting is answered `Abort`).
    pub fn cancel(&self) {
        self.progress.cancel();
        let _ = self.answers.send(Decision::Abort);
    }
}

/// How often progress is sent at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(33);

struct Asker<'a> {
    send: &'a (dyn Fn(DeleteMsg) + Send + Sync),
    answers: &'a Receiver<Decision>,
    last: Instant,
}

impl Listener for Asker<'_> {
    fn failed(&mut self, error: &DeleteError) -> Decision {
        (self.send)(DeleteMsg::Failed(error.clone()));
        self.answers.recv().unwrap_or(Decision::Abort)
    }

    fn tick(&mut self, progress: &Progress) {
        if self.last.elapsed() >= PROGRESS_EVERY {
            self.last = Instant::now();
            let (items, bytes) = progress.snapshot();
            (self.send)(DeleteMsg::Progress { items, bytes });
        }
    }
}

/// Starts `job` on a thread of its own; `send` gets its messages, `engine` its changes.
pub fn spawn(
    root: Arc<RootDir>,
    job: Job,
    engine: Option<UserChanges>,
    send: Box<dyn Fn(DeleteMsg) + Send + Sync>,
) -> std::io::Result<Worker> {
    let (tx, rx) = unbounded();
    let progress = Arc::new(Progress::default());
    let p = Arc::clone(&progress);
    std::thread::Builder::new()
        .name("dtui-delete".into())
        .spawn(move || {
            let mut asker = Asker {
                send: &*send,
                answers: &rx,
                last: Instant::now(),
            };
            let summary = run(&root, job, engine.as_ref(), &p, &mut asker);
            if let Some(s) = summary {
                send(DeleteMsg::Done(s));
            }
        })?;
    Ok(Worker {
        answers: tx,
        progress,
    })
}

fn tell(engine: Option<&UserChanges>, changes: Vec<UserChange>) {
    if let Some(e) = engine {
        e.send(changes);
    }
}

/// Runs a job; `None` when it ended with a `Changed` (nothing done, the user is asked again).
fn run(
    root: &RootDir,
    job: Job,
    engine: Option<&UserChanges>,
    progress: &Progress,
    asker: &mut Asker<'_>,
) -> Option<Summary> {
    match job {
        Job::Delete(targets) => run_delete(root, &targets, engine, progress, asker),
        Job::Trash(targets) => run_trash(root, targets, engine, progress, asker),
        Job::Restore(items) => Some(run_restore(root, items, engine)),
    }
}

fn run_delete(
    root: &RootDir,
    targets: &[Target],
    engine: Option<&UserChanges>,
    progress: &Progress,
    asker: &mut Asker<'_>,
) -> Option<Summary> {
    let out = super::delete(root, targets, progress, asker);
    if !out.changed.is_empty() {
        (asker.send)(DeleteMsg::Changed(out.changed));
        return None;
    }
    let changes = out
        .done
        .iter()
        .map(|d| UserChange {
            kind: if d.whole {
                UserChangeKind::Removed
            } else {
                UserChangeKind::Verify
            },
            path: d.path.clone(),
            bytes: Some(d.bytes),
        })
        .collect();
    tell(engine, changes);
    Some(Summary {
        items: out.items,
        bytes: out.bytes,
        failed: out.failed.iter().map(ToString::to_string).collect(),
        aborted: out.aborted,
        cancelled: out.cancelled,
        ..Summary::default()
    })
}

/// Asks about an error unless told to ignore them all; true when the job stops.
fn ask(asker: &mut Asker<'_>, ignore_all: &mut bool, e: &DeleteError, s: &mut Summary) -> bool {
    s.failed.push(e.to_string());
    if *ignore_all {
        return false;
    }
    match asker.failed(e) {
        Decision::Abort => {
            s.aborted = true;
            true
        }
        Decision::Ignore => false,
        Decision::IgnoreAll => {
            *ignore_all = true;
            false
        }
    }
}

fn run_trash(
    root: &RootDir,
    targets: Vec<Target>,
    engine: Option<&UserChanges>,
    progress: &Progress,
    asker: &mut Asker<'_>,
) -> Option<Summary> {
    let targets = super::outermost(targets);
    let (differ, errors) = super::verify(root, &targets);
    if !differ.is_empty() {
        (asker.send)(DeleteMsg::Changed(differ));
        return None;
    }
    let mut summary = Summary::default();
    let mut ignore_all = false;
    let mut stop = false;
    for e in &errors {
        if ask(asker, &mut ignore_all, e, &mut summary) {
            stop = true;
            break;
        }
    }
    let mut no_trash = Vec::new();
    let mut why = String::new();
    for t in targets.iter().filter(|_| !stop) {
        if progress.cancelled() {
            summary.cancelled = true;
            break;
        }
        match trash::trash(root, t) {
            Ok(done) => {
                summary.items += t.items.max(1);
                progress
                    .items
                    .fetch_add(t.items.max(1), std::sync::atomic::Ordering::Relaxed);
                let mut told = vec![UserChange {
                    kind: UserChangeKind::Removed,
                    path: t.path.clone(),
                    bytes: Some(0),
                }];
                if crate::path::is_within(&root.path, &done.file()) {
                    told.push(UserChange {
                        kind: UserChangeKind::Verify,
                        path: done.trash.clone(),
                        bytes: None,
                    });
                }
                tell(engine, told);
                summary.trashed.push(done);
            }
            Err(TrashError::NoTrash { why: w, .. }) => {
                why = w;
                no_trash.push(t.clone());
            }
            Err(TrashError::Delete(e)) => {
                if ask(asker, &mut ignore_all, &e, &mut summary) {
                    break;
                }
            }
        }
    }
    if !no_trash.is_empty() {
        (asker.send)(DeleteMsg::NoTrash {
            targets: no_trash,
            why,
        });
    }
    Some(summary)
}

fn run_restore(root: &RootDir, items: Vec<Trashed>, engine: Option<&UserChanges>) -> Summary {
    let mut summary = Summary::default();
    for t in items {
        match trash::restore(root, &t) {
            Ok(()) => {
                let mut told = vec![UserChange {
                    kind: UserChangeKind::Created,
                    path: t.original.clone(),
                    bytes: None,
                }];
                if crate::path::is_within(&root.path, &t.trash) {
                    told.push(UserChange {
                        kind: UserChangeKind::Verify,
                        path: t.trash.clone(),
                        bytes: None,
                    });
                }
                tell(engine, told);
                summary.items += t.items.max(1);
                summary.restored.push(t.original);
            }
            Err(e) => summary.failed.push(e.to_string()),
        }
    }
    summary
}
