//! The thread the planning of a delete, a delete, a move to the trash or an undo runs on
//! (never the browser's): it reports progress (items, bytes) at most ~30 times a second,
//! waits for an answer when an error needs one, hands the engine what changed as each target
//! is done (fanotify does not report our own process's changes), and ends with one summary.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::plan::{self, Plan};
use super::trash::{self, TrashError, Trashed};
use super::{Decision, DeleteError, Listener, Progress, Target};
use crate::engine::{UserChange, UserChangeKind, UserChanges};
use crate::fs::RootDir;
use crate::tree::Tree;

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Count what these hold, to be confirmed (answered by `Planned`).
    Plan(Vec<Target>),
    Delete(Plan),
    Trash(Plan),
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
    /// What would go, to be confirmed (the end of a `Job::Plan`).
    Planned(Plan),
    /// Nothing was done: these targets are not what was shown; here they are as they are now,
    /// planned again, to be confirmed again.
    Changed(Plan),
    /// These could not go to a trash (why); everything else did. The user may delete them.
    NoTrash {
        plan: Plan,
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
    /// How many entries were left because they were not what was confirmed, and the first
    /// of them, one line each.
    pub left: u64,
    pub left_lines: Vec<String>,
    pub trashed: Vec<Trashed>,
    pub restored: Vec<PathBuf>,
    /// What could not be put back: still in the trash, for undo to try again.
    pub not_restored: Vec<Trashed>,
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

/// Starts `job` on a thread of its own; `send` gets its messages, `engine` its changes; a plan
/// is taken from `tree` (else counted on the disk).
pub fn spawn(
    root: Arc<RootDir>,
    tree: Option<Arc<RwLock<Tree>>>,
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
            let ctx = Ctx {
                root: &root,
                tree: tree.as_deref(),
                engine: engine.as_ref(),
                progress: &p,
            };
            let summary = run(&ctx, job, &mut asker);
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

/// What every job runs against.
struct Ctx<'a> {
    root: &'a RootDir,
    tree: Option<&'a RwLock<Tree>>,
    engine: Option<&'a UserChanges>,
    progress: &'a Progress,
}

impl Ctx<'_> {
    fn plan(&self, targets: Vec<Target>, asker: &mut Asker<'_>) -> Plan {
        plan::plan(self.root, self.tree, targets, self.progress, asker)
    }
}

/// Runs a job; `None` when it ended with a plan to confirm (nothing done).
fn run(ctx: &Ctx<'_>, job: Job, asker: &mut Asker<'_>) -> Option<Summary> {
    match job {
        Job::Plan(targets) => {
            let plan = ctx.plan(targets, asker);
            if plan.cancelled {
                return Some(Summary {
                    cancelled: true,
                    ..Summary::default()
                });
            }
            (asker.send)(DeleteMsg::Planned(plan));
            None
        }
        Job::Delete(plan) => run_delete(ctx, &plan, asker),
        Job::Trash(plan) => run_trash(ctx, &plan, asker),
        Job::Restore(items) => Some(run_restore(ctx.root, items, ctx.engine)),
    }
}

fn run_delete(ctx: &Ctx<'_>, plan: &Plan, asker: &mut Asker<'_>) -> Option<Summary> {
    let out = super::delete(ctx.root, plan, ctx.progress, asker);
    if !out.changed.is_empty() {
        let again = ctx.plan(out.changed, asker);
        (asker.send)(DeleteMsg::Changed(again));
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
    tell(ctx.engine, changes);
    Some(Summary {
        items: out.items,
        bytes: out.bytes,
        failed: out.failed.iter().map(ToString::to_string).collect(),
        left: out.left_count,
        left_lines: out.left.iter().map(ToString::to_string).collect(),
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

fn run_trash(ctx: &Ctx<'_>, plan: &Plan, asker: &mut Asker<'_>) -> Option<Summary> {
    let (root, engine, progress) = (ctx.root, ctx.engine, ctx.progress);
    let targets = &plan.targets;
    let (differ, errors) = super::verify(root, targets);
    if !differ.is_empty() {
        let again = ctx.plan(differ, asker);
        (asker.send)(DeleteMsg::Changed(again));
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
                no_trash.push(t.path.clone());
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
            plan: plan.subset(|t| no_trash.contains(&t.path)),
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
            Err(e) => {
                summary.failed.push(e.to_string());
                summary.not_restored.push(t);
            }
        }
    }
    summary
}
