//! What reaches the app and what it asks for: `Event`s into `update` (input, the engine, the
//! status ticks, signals, the answers of the jobs it asked for), the engine's `Status` and the
//! watcher's `Watch` as the app keeps them, and what it hands back to the loop: a `Request`
//! (only the loop can do it: it owns the terminal) or a `Command` (work off this thread).

use std::path::PathBuf;

use ratatui::crossterm::event::Event as TermEvent;

use super::BaselineError;
use crate::engine::{EngineMsg, Freshness};
use crate::scan::ProgressSnapshot;
use crate::tree::NodeRef;

/// Everything that reaches the browser's loop.
#[derive(Debug, Clone)]
pub enum Event {
    Input(TermEvent),
    Engine(EngineMsg),
    /// SIGTERM, SIGHUP, SIGINT or SIGQUIT: quit as on `q` (the terminal restored, the cache
    /// saved).
    Terminate,
    /// SIGTSTP from outside (`kill -TSTP`): suspend as on Ctrl-Z.
    Suspend,
    /// SIGCONT or SIGWINCH: the screen may hold anything; draw all of it again.
    Redraw,
    /// Where the engine stands, sent periodically (and so a redraw).
    Status(Status),
    /// What `Command::Inspect` found on the disk for the info window.
    Inspected(NodeRef, Inspection),
    /// The size history's baseline for a period (`Command::LoadBaseline`), or why not.
    Baseline(
        crate::history::Since,
        Result<std::sync::Arc<crate::history::Baseline>, BaselineError>,
    ),
    /// `Command::Open` could not start `xdg-open` (why).
    OpenFailed(String),
    /// From the delete worker `Command::Delete` started.
    Delete(crate::delete::worker::DeleteMsg),
    /// The root, opened again off this thread after the owner went away (`Request::TakeOver`),
    /// is ready for the loop to adopt.
    Reopened,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub freshness: Freshness,
    pub progress: ProgressSnapshot,
}

/// What the info window shows beyond the tree: facts only a `lstat`/`readlink` knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inspection {
    /// The entry's link count (for a directory: 2 + its subdirectories on most filesystems).
    pub nlink: Option<u64>,
    /// A symlink's target, escaped for the terminal.
    pub target: Option<String>,
    /// Why the entry could not be inspected.
    pub error: Option<String>,
}

/// How the engine's watcher stands (told once, at start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watch {
    /// Not asked to watch (`--watch-backend none`, or a test).
    Off,
    /// Watching with this backend.
    On(String),
    /// Asked to watch, and the backend could not start (why).
    Failed(String),
}

/// What the loop must do outside `update` (it owns the terminal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Quit,
    /// Quit, then print this directory on standard output (`Q`, as gdu's).
    QuitPrint(PathBuf),
    /// Run a shell in this directory (the terminal restored meanwhile).
    Shell(std::path::PathBuf),
    /// Stop the process (Ctrl-Z), the terminal restored until it continues.
    Suspend,
    /// Clear the screen and draw every cell again.
    Redraw,
    /// The owner this browser was attached to went away: open the root here (on a thread of
    /// its own; the last image stays on screen meanwhile).
    TakeOver,
    /// That open is done: the loop takes the new engine, the app carried over to its tree by
    /// path (`App::place`, `App::rebind`).
    Adopt,
}

/// Work `update` asks of the loop without leaving it (the loop owns the engine and threads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `engine.reconcile(dir, full)`: re-read a subtree (`None`: everything).
    Reconcile {
        dir: Option<NodeRef>,
        full: bool,
    },
    /// `lstat` and `readlink` this entry off the UI thread, answered by `Event::Inspected`.
    Inspect {
        node: NodeRef,
        path: PathBuf,
    },
    /// Run a delete, a move to the trash or an undo on a worker (answered by `Event::Delete`).
    Delete(crate::delete::worker::Job),
    /// The answer to the worker's question about an error.
    DeleteAnswer(crate::delete::Decision),
    DeleteCancel,
    /// Open this entry with `xdg-open`, detached, off the UI thread (`o`); a failure comes
    /// back as `Event::OpenFailed`.
    Open(PathBuf),
    /// Read the size history's baseline for a period off the UI thread, answered by
    /// `Event::Baseline`.
    LoadBaseline(crate::history::Since),
}
