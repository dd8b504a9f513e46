//! `dtui -f FILE`: the browser on an imported export. The file is read before the browser
//! starts (on a worker, with progress on stderr), then the browser runs on that tree alone:
//! no engine, no watcher, no cache, and the keys that need the disk say why they are off.
//! With `-f -` the export is standard input; once it is read, the keys come from the
//! terminal (`/dev/tty`), as with ncdu.

use std::io::{self, IsTerminal};
use std::path::Path;
use std::sync::RwLock;

use anyhow::{Context, Result};
use crossbeam_channel::unbounded;

use super::{App, Event, Request, Status, Watch, event_loop_with, fresh_terminal, input, terminal};
use crate::engine::Freshness;
use crate::scan::ProgressSnapshot;

/// Reads the export at `file` (`-`: standard input) and browses it until `q`.
pub fn run_imported(file: &Path, prefs: &super::Prefs) -> Result<()> {
    let from_stdin = file == Path::new("-");
    if !io::stdout().is_terminal() || (!from_stdin && !io::stdin().is_terminal()) {
        anyhow::bail!(
            "the browser needs a terminal; for text output use `dtui scan -f {}`",
            crate::import::shown_file(file)
        );
    }
    let imported = crate::import::load_reporting(file, true)?;
    if from_stdin {
        // The export was standard input: the keys come from the terminal from now on.
        let tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .context("the export was read from standard input; the keys need /dev/tty")?;
        nix::unistd::dup2_stdin(&tty)
            .context("the export was read from standard input; the keys need /dev/tty")?;
    }
    let signals = super::jobs::block_signals()?;
    let (tx, rx) = unbounded::<Event>();
    let input = input::Input::spawn(tx.clone()).context("starting the input reader")?;
    // No shell runs here (`b` is off), so the keyboard's signals are always ours.
    super::jobs::signals(
        tx.clone(),
        signals,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    )?;

    let status = Status {
        freshness: Freshness::Fresh,
        progress: ProgressSnapshot {
            entries: imported.tree.len(),
            ..ProgressSnapshot::default()
        },
    };
    let mut app = App::new(&imported.tree, imported.describe(), status);
    app.read_only = true;
    app.watch = Watch::Off;
    app.color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    app.imported = Some(
        imported
            .meta
            .timestamp
            .filter(|&t| t != 0)
            .map(crate::format::format_local),
    );
    app.notice = Some(format!("{}: read-only", imported.describe()));
    app.apply_prefs(prefs);
    let tree = RwLock::new(imported.tree);

    let mut guard = terminal::TerminalGuard::enter().context("setting up the terminal")?;
    let mut term = fresh_terminal()?;
    let mut applied = |app: &App| {
        if matches!(app.request, Some(Request::Suspend)) {
            input.pause();
        }
        input.applied();
    };
    // Nothing here asks for the disk: `r`, `R` and `i`'s inspection are off on an import.
    let mut commands = |_| {};
    let outcome = (|| -> Result<()> {
        loop {
            match event_loop_with(&mut term, &mut app, &tree, &rx, &mut commands, &mut applied)? {
                // `Q` is refused on an import before it can ask (its paths are not this disk's).
                Request::Quit | Request::QuitPrint(_) => return Ok(()),
                Request::Redraw => term = fresh_terminal()?,
                Request::Suspend => term = super::suspend(&input, &mut guard)?,
                // `b` is refused on an import before it can ask; an import is attached to
                // no owner.
                Request::Shell(_) | Request::TakeOver | Request::Adopt => {}
            }
        }
    })();
    drop(guard);
    outcome
}
