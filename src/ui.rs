//! The interactive browser (`dtui [PATH]`): ratatui + crossterm, Elm-style. One channel of
//! `Event`s (input, engine messages, status ticks) feeds `App::update`; frames are drawn from
//! `App` and the tree only, at most ~30 per second. The loop is generic over the ratatui
//! `Backend` and takes its events from any receiver, so tests drive it with `TestBackend`.
//! This thread never touches the disk: the engine's threads do.

pub mod app;
mod terminal;
pub mod view;

use std::io::{self, IsTerminal};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::crossterm::event as term_event;

pub use app::{App, Event, Request, Status};

use crate::cache::{CacheOptions, Saved};
use crate::engine::{Engine, EngineMsg, Freshness};
use crate::scan::ScanOptions;
use crate::tree::{self, Tree};

/// Frames are at least this far apart (about 30 per second).
const FRAME: Duration = Duration::from_millis(33);

/// Draws, waits for events, updates, until the app asks for something only the caller can do
/// (quit, run a shell). Events queued together are applied before the next frame.
pub fn event_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    tree: &RwLock<Tree>,
    events: &Receiver<Event>,
) -> Result<Request, B::Error> {
    loop {
        {
            let t = tree::read(tree);
            terminal.draw(|f| view::draw(f, app, &t))?;
        }
        let drawn = Instant::now();
        let Ok(first) = events.recv() else {
            return Ok(Request::Quit);
        };
        app.update(first, &tree::read(tree));
        loop {
            if let Some(r) = app.request.take() {
                return Ok(r);
            }
            let left = FRAME.saturating_sub(drawn.elapsed());
            match events.recv_timeout(left) {
                Ok(ev) => app.update(ev, &tree::read(tree)),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return Ok(Request::Quit),
            }
        }
    }
}

/// `dtui [PATH]`: opens the tree through the engine and runs the browser until `q`.
pub fn run(
    path: &Path,
    cache: &CacheOptions,
    opts: ScanOptions,
    read_only: bool,
) -> Result<ExitCode> {
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        anyhow::bail!(
            "the browser needs a terminal; for text output use `dtui scan {}`",
            path.display()
        );
    }
    // SIGTERM and SIGHUP (a closed terminal, `kill`) quit like `q`: blocked in every thread
    // (they inherit the mask) and waited for on one.
    let mut signals = nix::sys::signal::SigSet::empty();
    signals.add(nix::sys::signal::Signal::SIGTERM);
    signals.add(nix::sys::signal::Signal::SIGHUP);
    signals.thread_block().context("blocking signals")?;
    let (engine_tx, engine_rx) = unbounded::<EngineMsg>();
    let engine = Engine::start(path, cache, opts, engine_tx)?;
    let (tx, rx) = unbounded::<Event>();
    let paused = Arc::new(AtomicBool::new(false));
    spawn_input(tx.clone(), Arc::clone(&paused));
    spawn_forwarder(tx.clone(), engine_rx);
    spawn_status(tx.clone(), &engine);
    std::thread::Builder::new()
        .name("dtui-signals".into())
        .spawn(move || {
            if signals.wait().is_ok() {
                let _ = tx.send(Event::Terminate);
            }
        })
        .context("spawning a thread")?;

    let status = Status {
        freshness: engine.freshness(),
        progress: engine.progress.snapshot(),
    };
    let mut app = App::new(&tree::read(&engine.tree), engine.origin.to_string(), status);
    app.read_only = read_only;
    app.color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    if !engine.warnings.is_empty() {
        app.notice = Some(engine.warnings.join("; "));
    }

    let mut guard = terminal::TerminalGuard::enter().context("setting up the terminal")?;
    let mut term = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    let outcome = (|| -> Result<()> {
        loop {
            match event_loop(&mut term, &mut app, &engine.tree, &rx)? {
                Request::Quit => return Ok(()),
                Request::Shell(dir) => {
                    paused.store(true, Ordering::SeqCst);
                    guard.leave();
                    run_shell(&dir);
                    guard.resume()?;
                    paused.store(false, Ordering::SeqCst);
                    term.clear()?;
                }
            }
        }
    })();
    drop(guard);
    let saved = engine.shutdown();
    outcome?;
    if let Saved::Failed { why } = saved {
        eprintln!("dtui: warning: the cache was not saved: {why}");
    }
    Ok(ExitCode::SUCCESS)
}

fn spawn_input(tx: Sender<Event>, paused: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("dtui-input".into())
        .spawn(move || {
            loop {
                if paused.load(Ordering::SeqCst) {
                    std::thread::park_timeout(Duration::from_millis(50));
                    continue;
                }
                match term_event::poll(Duration::from_millis(50)) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(_) => return,
                }
                if paused.load(Ordering::SeqCst) {
                    continue;
                }
                match term_event::read() {
                    Ok(e) => {
                        if tx.send(Event::Input(e)).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        })
        .expect("spawning the input thread");
}

fn spawn_forwarder(tx: Sender<Event>, rx: Receiver<EngineMsg>) {
    std::thread::Builder::new()
        .name("dtui-engine-msgs".into())
        .spawn(move || {
            for msg in rx {
                if tx.send(Event::Engine(msg)).is_err() {
                    return;
                }
            }
        })
        .expect("spawning a thread");
}

/// Sends the engine's status ~30 times a second while it works, 4 times a second otherwise.
fn spawn_status(tx: Sender<Event>, engine: &Engine) {
    let progress = Arc::clone(&engine.progress);
    let freshness = engine.freshness_handle();
    std::thread::Builder::new()
        .name("dtui-status".into())
        .spawn(move || {
            loop {
                let f = freshness();
                let busy = matches!(f, Freshness::Scanning | Freshness::Verifying);
                std::thread::park_timeout(if busy {
                    FRAME
                } else {
                    Duration::from_millis(250)
                });
                let s = Status {
                    freshness: freshness(),
                    progress: progress.snapshot(),
                };
                if tx.send(Event::Status(s)).is_err() {
                    return;
                }
            }
        })
        .expect("spawning a thread");
}

fn run_shell(dir: &Path) {
    let shell = std::env::var_os("DTUI_SHELL")
        .or_else(|| std::env::var_os("SHELL"))
        .unwrap_or_else(|| "/bin/sh".into());
    let level = std::env::var("DTUI_LEVEL")
        .ok()
        .and_then(|l| l.parse::<u32>().ok())
        .unwrap_or(0)
        + 1;
    println!(
        "dtui: a shell in {} (exit to return to dtui)",
        dir.display()
    );
    let status = std::process::Command::new(&shell)
        .current_dir(dir)
        .env("DTUI_LEVEL", level.to_string())
        .status();
    if let Err(e) = status {
        eprintln!(
            "dtui: cannot run {}: {e} (press Enter to return)",
            Path::new(&shell).display()
        );
        let _ = io::stdin().read_line(&mut String::new());
    }
}
