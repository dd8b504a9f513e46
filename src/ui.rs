//! The interactive browser (`dtui [PATH]`): ratatui + crossterm, Elm-style. One channel of
//! `Event`s (input from our own reader, engine messages, status ticks, signals) feeds
//! `App::update`; frames are drawn from
//! `App` and the tree only, at most ~30 per second. The loop is generic over the ratatui
//! `Backend` and takes its events from any receiver, so tests drive it with `TestBackend`.
//! This thread never touches the disk: the engine's threads do, and the jobs it starts for
//! what the engine does not answer (`jobs`).

pub mod app;
mod imported;
mod input;
mod jobs;
pub mod keys;
pub(crate) mod terminal;
pub mod view;

use std::io::{self, IsTerminal};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError, unbounded};
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::{Frame, Terminal};

pub use app::{App, Command, Event, Inspection, Prefs, Request, Status, Watch};
pub use imported::run_imported;

use crate::cache::Origin;
use crate::engine::{Engine, EngineMsg, EngineOptions};
use crate::path::display_name;
use crate::tree::{self, Tree};

/// Frames are at least this far apart (about 30 per second).
const FRAME: Duration = Duration::from_millis(33);

/// Draws, waits for events, updates, until the app asks for something only the caller can do
/// (quit, run a shell, suspend, redraw). Events queued together are applied before the next
/// frame. `Command`s from `update` are handed to `commands` as they come.
pub fn event_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    tree: &RwLock<Tree>,
    events: &Receiver<Event>,
    commands: &mut dyn FnMut(Command),
) -> Result<Request, B::Error> {
    event_loop_with(terminal, app, tree, events, commands, &mut |_| {})
}

/// Draws one frame: the tree's read lock is held while the frame is built in memory, and
/// released before anything is written to the terminal (a slow terminal must not stall the
/// engine's writer).
pub fn draw_frame<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    tree: &RwLock<Tree>,
) -> Result<(), B::Error> {
    terminal.autoresize()?;
    {
        let mut frame = terminal.get_frame();
        render(&mut frame, app, &tree::read(tree));
    }
    terminal.apply_buffer()?;
    app.dirty = false;
    Ok(())
}

/// One frame into `frame`: its parts measured (`view::Areas`) and handed to the app
/// (`App::lay_out`: the page the keys move by, the list's place for clicks), then drawn from
/// the app's state alone (`view::draw`), all under one read of the tree.
pub fn render(frame: &mut Frame<'_>, app: &mut App, tree: &Tree) {
    let areas = view::Areas::new(frame.area(), app);
    app.lay_out(areas.list, tree);
    view::draw(frame, app, tree, &areas);
}

/// `event_loop`, calling `applied` after each input event is applied (the input reader waits
/// for that before it reads on).
fn event_loop_with<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    tree: &RwLock<Tree>,
    events: &Receiver<Event>,
    commands: &mut dyn FnMut(Command),
    applied: &mut dyn FnMut(&App),
) -> Result<Request, B::Error> {
    let mut apply = |app: &mut App, ev: Event| {
        let input = matches!(ev, Event::Input(_));
        app.update(ev, &tree::read(tree));
        for c in app.commands.drain(..) {
            commands(c);
        }
        if input {
            applied(app);
        }
    };
    // The first frame of each entry into the loop is always drawn (after a shell, a resize).
    app.dirty = true;
    loop {
        if app.dirty {
            draw_frame(terminal, app, tree)?;
        }
        let drawn = Instant::now();
        let Ok(first) = events.recv() else {
            return Ok(Request::Quit);
        };
        apply(app, first);
        loop {
            if let Some(r) = app.request.take() {
                return Ok(r);
            }
            let left = FRAME.saturating_sub(drawn.elapsed());
            match events.recv_timeout(left) {
                Ok(ev) => apply(app, ev),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return Ok(Request::Quit),
            }
        }
    }
}

/// `dtui [PATH]`: opens the tree through the engine and runs the browser until `q`; returns
/// how many entries could not be read.
pub fn run(
    path: &Path,
    mut opts: EngineOptions,
    read_only: bool,
    no_delete: bool,
    prefs: &Prefs,
) -> Result<u64> {
    browsable(path)?;
    // Standard output taken (`cd "$(dtui)"`): the screen goes to the terminal, and `Q`'s line
    // to what standard output was.
    let stdout_saved = terminal::screen_on_tty().with_context(|| {
        format!(
            "the browser needs a terminal; for text output use `dtui scan {}`",
            crate::path::display_path(path)
        )
    })?;
    let signals = jobs::block_signals()?;
    let (engine_tx, engine_rx) = unbounded::<EngineMsg>();
    opts.hold_until_shown = true;
    opts.history_session = true;
    // Attached to the dtui that owns this root live, if one runs; else its owner.
    // (`--no-cache` asks for a tree of its own, from a scan.)
    if !opts.cache.disabled {
        opts.share = crate::engine::Share::Own;
    }
    let engine = Engine::open(path, opts.clone(), engine_tx.clone())?;
    // On the terminal's own screen, before the browser takes the alternate one: read there
    // once it quits (a notice would take a line of the screen for the whole session).
    for n in &engine.notes {
        eprintln!("dtui: {n}");
    }
    let (tx, rx) = unbounded::<Event>();
    let input = input::Input::spawn(tx.clone()).context("starting the input reader")?;
    jobs::engine_msgs(tx.clone(), engine_rx)?;
    jobs::status(tx.clone(), &engine)?;
    let in_shell = Arc::new(AtomicBool::new(false));
    jobs::signals(tx.clone(), signals, Arc::clone(&in_shell))?;

    let mut app = browser_app(&engine, read_only, no_delete);
    app.apply_prefs(prefs);
    let deleting = std::cell::RefCell::new(None::<crate::delete::worker::Worker>);

    let mut guard = terminal::TerminalGuard::enter().context("setting up the terminal")?;
    let mut term = fresh_terminal()?;
    // The first frame, then the engine's work (see `EngineOptions::hold_until_shown`).
    draw_frame(&mut term, &mut app, &engine.tree)?;
    engine.shown();
    // The engine is replaced when the owner this browser was attached to goes away.
    let engine = std::cell::RefCell::new(engine);
    // After an input event that hands the terminal over, the reader parks before it may read
    // on: what is typed next belongs to the shell (or to the shell that `fg` comes from).
    let mut applied = |app: &App| {
        if matches!(app.request, Some(Request::Shell(_) | Request::Suspend)) {
            input.pause();
        }
        input.applied();
    };
    // Commands run here, on the loop's thread, and never block it: the engine's command
    // queue does not wait, and an inspection runs on a thread of its own.
    let mut commands = |c: Command| match c {
        Command::Reconcile { dir, full } => engine.borrow().reconcile(dir, full),
        Command::Inspect { node, path } => jobs::inspect(&tx, node, path),
        Command::LoadBaseline(since) => {
            jobs::baseline(&tx, engine.borrow().history.clone(), since);
        }
        Command::Open(path) => jobs::open(&tx, path),
        Command::Delete(job) => *deleting.borrow_mut() = jobs::delete(&tx, &engine.borrow(), job),
        Command::DeleteAnswer(d) => {
            if let Some(w) = deleting.borrow().as_ref() {
                w.answer(d);
            }
        }
        Command::DeleteCancel => {
            if let Some(w) = deleting.borrow().as_ref() {
                w.cancel();
            }
        }
    };
    let mut print_dir = None;
    // The root being opened again after the owner went away (`Request::TakeOver`).
    let mut reopening = None;
    let outcome = (|| -> Result<()> {
        loop {
            let tree = Arc::clone(&engine.borrow().tree);
            match event_loop_with(&mut term, &mut app, &tree, &rx, &mut commands, &mut applied)? {
                Request::Quit => return Ok(()),
                Request::QuitPrint(dir) => {
                    print_dir = Some(dir);
                    return Ok(());
                }
                Request::Redraw => term = fresh_terminal()?,
                Request::Suspend => term = suspend(&input, &mut guard)?,
                Request::Shell(dir) => term = shell(&dir, &input, &mut guard, &in_shell)?,
                Request::TakeOver => {
                    reopening = Some(jobs::reopen(&tx, path, &opts, &engine_tx));
                }
                Request::Adopt => adopt(&mut app, &tree, reopening.take(), &engine, &tx)?,
            }
        }
    })();
    // Nothing on the way out may fail on a terminal that hung up, let alone panic (ratatui's
    // `Terminal` reports with `eprintln!` a cursor it could not show), before the engine has
    // saved the cache: its outputs are quieted first.
    let hung_up = terminal::quiet_if_hung_up();
    // Before standard output is given back: ratatui shows the cursor as it goes.
    drop(term);
    drop(guard);
    if let Some(w) = deleting.borrow().as_ref() {
        w.cancel();
    }
    let engine = engine.into_inner();
    let errors = tree::read(&engine.tree).census().unreadable;
    let saved = engine.shutdown();
    match outcome {
        // A frame, or taking the terminal back after a shell, failed because the terminal
        // hung up: the browser ends as the hangup's SIGHUP ends it, not with an error.
        Err(e) if hung_up && is_eio(&e) => {}
        other => other?,
    }
    crate::cli::say_saved(&saved);
    if let Some(saved) = stdout_saved {
        nix::unistd::dup2_stdout(saved).context("giving standard output back")?;
    }
    if let Some(dir) = print_dir {
        print_dir_line(&dir)?;
    }
    Ok(errors)
}

/// Whether `e` comes of an EIO: what a terminal that hung up answers.
fn is_eio(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.raw_os_error() == Some(libc::EIO))
    })
}

/// The root opened again after the owner went away (attached to whoever took it over
/// first, else owned; `jobs::reopen`): it replaces `engine`, and the app is carried over to
/// its tree by path, from where the user is now in the last image. If it could not be
/// opened, the screen says why and the last image stays.
fn adopt(
    app: &mut App,
    tree: &RwLock<Tree>,
    opened: Option<Receiver<Result<Engine, crate::engine::EngineError>>>,
    engine: &std::cell::RefCell<Engine>,
    tx: &crossbeam_channel::Sender<Event>,
) -> Result<()> {
    let new = match opened.and_then(|r| r.try_recv().ok()) {
        Some(Ok(new)) => new,
        Some(Err(e)) => {
            app.message = Some(format!("cannot open the root here: {e}"));
            return Ok(());
        }
        None => return Ok(()),
    };
    let place = app.place(&tree::read(tree));
    jobs::status(tx.clone(), &new)?;
    new.shown();
    let status = Status {
        freshness: new.freshness(),
        progress: new.progress.snapshot(),
    };
    let said = app.message.take();
    app.rebind(
        &place,
        &tree::read(&new.tree),
        new.origin.to_string(),
        status,
    );
    app.message = said;
    tell_app(app, &new);
    drop(engine.replace(new));
    Ok(())
}

/// Says why `path` cannot be browsed here, before anything starts: the advice to use `dtui
/// scan` on a path that cannot be read would only fail again.
fn browsable(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Err(e) => anyhow::bail!(
            "{}: {e}",
            crate::path::display_name(path.as_os_str().as_encoded_bytes())
        ),
        Ok(m) if !m.is_dir() => anyhow::bail!(
            "{}: not a directory",
            crate::path::display_name(path.as_os_str().as_encoded_bytes())
        ),
        Ok(_) => {}
    }
    if !io::stdin().is_terminal() {
        anyhow::bail!(
            "the browser needs a terminal; for text output use `dtui scan {}`",
            crate::path::display_path(path)
        );
    }
    Ok(())
}

/// `Q`'s line: the directory as its bytes are (not escaped), for `cd`, not for reading.
fn print_dir_line(dir: &Path) -> Result<()> {
    use std::io::Write as _;
    let mut out = io::stdout().lock();
    out.write_all(dir.as_os_str().as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .context("printing the directory")
}

/// The browser's state at start: what the engine says of the watcher and the cache, said on
/// screen.
fn browser_app(engine: &Engine, read_only: bool, no_delete: bool) -> App {
    let status = Status {
        freshness: engine.freshness(),
        progress: engine.progress.snapshot(),
    };
    let mut app = App::new(&tree::read(&engine.tree), engine.origin.to_string(), status);
    app.read_only = read_only;
    app.delete.disabled = if read_only {
        Some("read-only mode".into())
    } else if no_delete {
        Some("--no-delete".into())
    } else {
        None
    };
    // `o` has somewhere to show a file.
    app.display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    app.color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tell_app(&mut app, engine);
    app
}

/// What the engine says of the watcher and the cache, said on screen.
fn tell_app(app: &mut App, engine: &Engine) {
    app.watch = match &engine.watching {
        None => Watch::Off,
        Some(Ok(what)) => Watch::On(what.clone()),
        Some(Err(why)) => Watch::Failed(why.clone()),
    };
    let mut notices = engine.warnings.clone();
    if let Some(Err(why)) = &engine.watching {
        notices.push(format!("not watching: {why}"));
    }
    // The cache's own warnings already say why when it was refused; say it once.
    if let Origin::NoCache { why } = &engine.origin
        && !notices.iter().any(|n| n.contains("without a cache"))
    {
        notices.push(format!(
            "running without a cache ({why}): the next start scans again"
        ));
    }
    if !notices.is_empty() {
        app.notice = Some(notices.join("; "));
    }
    if let Origin::Attached { pid, .. } = &engine.origin {
        app.message = Some(format!(
            "attached to dtui {pid}, which keeps this root live (? says more)"
        ));
    }
}

/// `b`: the user's shell in `dir` on the restored terminal, then the terminal taken back; a
/// fresh terminal to draw everything again.
fn shell(
    dir: &Path,
    input: &input::Input,
    guard: &mut terminal::TerminalGuard,
    in_shell: &AtomicBool,
) -> Result<Terminal<CrosstermBackend<io::Stdout>>> {
    input.pause();
    guard.leave();
    in_shell.store(true, Ordering::SeqCst);
    run_shell(dir);
    terminal::take_back();
    in_shell.store(false, Ordering::SeqCst);
    guard.resume()?;
    let term = fresh_terminal()?;
    input.resume();
    Ok(term)
}

/// Ctrl-Z: the input reader parked and the terminal restored, the process stopped until
/// `fg`, then the terminal taken back; a fresh terminal to draw everything again.
fn suspend(
    input: &input::Input,
    guard: &mut terminal::TerminalGuard,
) -> Result<Terminal<CrosstermBackend<io::Stdout>>> {
    input.pause();
    guard.leave();
    terminal::stop_self();
    guard.resume()?;
    let term = fresh_terminal()?;
    input.resume();
    Ok(term)
}

/// A terminal that draws every cell on its first frame, on a cleared screen. Not
/// `Terminal::clear`: that asks the terminal where its cursor is and reads the answer from the
/// input, which is ours to read (and may be paused).
fn fresh_terminal() -> io::Result<Terminal<CrosstermBackend<io::Stdout>>> {
    ratatui::crossterm::execute!(
        io::stdout(),
        ratatui::crossterm::terminal::Clear(ratatui::crossterm::terminal::ClearType::All)
    )?;
    Terminal::new(CrosstermBackend::new(io::stdout()))
}

/// Runs the user's shell in `dir` on the restored terminal, and waits for it.
fn run_shell(dir: &Path) {
    let shell = std::env::var_os("DTUI_SHELL")
        .or_else(|| std::env::var_os("SHELL"))
        .unwrap_or_else(|| "/bin/sh".into());
    let level = std::env::var("DTUI_LEVEL")
        .ok()
        .and_then(|l| l.parse::<u32>().ok())
        .unwrap_or(0)
        + 1;
    let shown = display_name(dir.as_os_str().as_bytes());
    let failed = match std::fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some(format!("{shown} no longer exists")),
        Err(e) => Some(format!("cannot enter {shown}: {e}")),
        Ok(_) => {
            println!("dtui: a shell in {shown} (exit to return to dtui)");
            match std::process::Command::new(&shell)
                .current_dir(dir)
                .env("DTUI_LEVEL", level.to_string())
                .status()
            {
                Ok(_) => None,
                // The directory went between the check and the shell's chdir.
                Err(_) if !dir.exists() => Some(format!("{shown} no longer exists")),
                Err(e) => Some(format!(
                    "cannot run {}: {e}",
                    display_name(shell.as_encoded_bytes())
                )),
            }
        }
    };
    if let Some(why) = failed {
        eprintln!("dtui: {why} (press Enter to return)");
        let _ = io::stdin().read_line(&mut String::new());
    }
}
