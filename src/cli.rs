//! The command line: `dtui scan`, `dtui export`. Parsing is clap (derive); each command returns
//! an exit status, errors go back to `main` with their context for one clear line on stderr.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod args;
mod cache_cmd;
mod changes;
mod ncdu;
mod report;
mod serve;
mod watch;

pub use args::{CacheArgs, CacheCommand, Cli, Command, ScanArgs};
use cache_cmd::run_cache;
pub use ncdu::NcduArgs;
use report::Report;
use watch::{run_reconcile, run_watch};

use anyhow::{Context, Result};

use crate::format::signed_size;

mod shell;

use crate::cache::Saved;
use crate::engine::{Engine, EngineMsg, EngineOptions, FirstPass};
use crate::export;
use crate::path::display_name;
use crate::reconcile::ReconcileStats;
use crate::tree::{self, Tree};

/// Exit status when the scan finished but some entries could not be read.
pub const EXIT_PARTIAL: u8 = 3;
/// Exit status of a command line that cannot be used (clap's own usage errors exit 2 too).
pub const EXIT_USAGE: u8 = 2;

/// A command line that parsed but cannot be used: a bad `--exclude` glob, an unknown watch
/// backend. `main` exits 2 for it, like clap does for its own usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit status for an error: 2 for bad usage, else 1.
#[must_use]
pub fn error_status(e: &anyhow::Error) -> ExitCode {
    if e.chain().any(<dyn std::error::Error>::is::<UsageError>) {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::FAILURE
    }
}

/// Did the output's reader go away (`dtui scan | head -1`)? Not an error worth a message.
#[must_use]
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The status a shell reports for a process killed by SIGPIPE (what `seq | head` gives).
pub const EXIT_BROKEN_PIPE: u8 = 128 + 13;

/// `dtui export PATH -o FILE`, and `dtui -o FILE PATH` (ncdu's way to say it).
fn run_export(
    path: &Path,
    output: &Path,
    no_catch_up: bool,
    scan: &ScanArgs,
    cache: &CacheArgs,
) -> Result<ExitCode> {
    // Before any thread starts, so that every thread inherits the blocked signals.
    let temp = export::TempSlot::default();
    clean_up_on_signals(std::sync::Arc::clone(&temp))?;
    let mut opts = cache.engine(scan)?;
    opts.catch_up = !no_catch_up;
    let opened = open_tree(path, opts, true)?;
    let written = {
        let t = tree::read(&opened.engine.tree);
        write_export(&t, output, &temp).map(|()| t.census().unreadable)
    };
    let errors = match written {
        Ok(n) => n,
        Err(e) => {
            opened.finish();
            return Err(e);
        }
    };
    if errors > 0 {
        eprintln!(
            "dtui: {errors} entries could not be read; they are marked read_error in the export"
        );
    }
    opened.finish();
    Ok(status(errors))
}

/// Runs a parsed command line.
#[expect(
    clippy::too_many_lines,
    reason = "one arm per command, each a few lines of glue to its run_* function"
)]
pub fn run(cli: Cli) -> Result<ExitCode> {
    apply_ncdu_flags(&cli);
    let Some(command) = cli.command else {
        if let Some(file) = cli.file {
            return crate::ui::run_imported(&file, &cli.ncdu.prefs()).map(|()| ExitCode::SUCCESS);
        }
        let path = cli.path.unwrap_or_else(|| PathBuf::from("."));
        if let Some(output) = cli.output.or(cli.binary_output) {
            return run_export(&path, &output, false, &cli.scan, &cli.cache);
        }
        let mut opts = cli.cache.engine(&cli.scan)?;
        opts.watch = match cli.watch_backend.as_deref() {
            Some("none") => None,
            Some(b) => Some(b.parse().map_err(UsageError)?),
            None => Some(crate::watch::Choice::resolve(None).map_err(UsageError)?),
        };
        let errors: u64 = crate::ui::run(
            &path,
            opts,
            cli.read_only > 0,
            cli.no_delete || cli.ncdu.no_delete(),
            &cli.ncdu.prefs(),
        )?;
        if errors > 0 {
            eprintln!("dtui: {errors} entries could not be read (marked ! in the browser)");
        }
        return Ok(status(errors));
    };
    match command {
        Command::Scan {
            path,
            file,
            json,
            top,
            no_catch_up,
            scan,
            cache,
            ncdu,
        } => {
            let apparent_size = ncdu.apparent_size;
            let Some(path) = path else {
                let file = file.expect("clap requires a path or a file");
                return scan_imported(&file, json, top, apparent_size);
            };
            let mut opts = cache.engine(&scan)?;
            opts.catch_up = !no_catch_up;
            let opened = open_tree(&path, opts, !json)?;
            let written = {
                let guard = tree::read(&opened.engine.tree);
                let report = Report {
                    origin: opened.engine.origin.to_string(),
                    elapsed: opened.elapsed,
                    catch_up: opened.catch_up.as_ref(),
                    census: guard.census(),
                    tree: &guard,
                    top,
                    apparent: apparent_size,
                };
                let mut out = io::stdout().lock();
                if json {
                    report.write_json(&mut out)
                } else {
                    report.write_text(&mut out)
                }
                .and_then(|()| out.flush())
                .map(|()| report.census.unreadable)
            };
            // The cache is saved even when the reader of the report went away (`| head -1`).
            opened.finish();
            Ok(status(written?))
        }
        Command::Export {
            path,
            output,
            no_catch_up,
            scan,
            cache,
        } => run_export(&path, &output, no_catch_up, &scan, &cache),
        Command::Cache { command } => run_cache(command),
        Command::Changes {
            path,
            since,
            top,
            apparent_size,
            scan,
            cache,
        } => {
            let mut opts = cache.engine(&scan)?;
            // The history is the root's own cache's: an ancestor's would hold none of it.
            opts.from_ancestor = false;
            changes::run_changes(
                &path,
                &changes::ChangesArgs {
                    since,
                    top,
                    apparent: apparent_size,
                },
                opts,
            )
        }
        Command::Completions { shell } => {
            shell::write_completions(shell, &mut io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            shell::write_man(&mut io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Delete {
            root,
            paths,
            trash,
            yes,
            on_error,
            scan,
            cache,
        } => crate::delete::command::run(
            &crate::delete::command::Request {
                root: &root,
                paths: &paths,
                trash,
                yes,
                on_error,
            },
            cache.engine(&scan)?,
        ),
        Command::Reconcile {
            path,
            full,
            scan,
            cache,
        } => run_reconcile(&path, full, cache.engine(&scan)?),
        Command::Watch {
            path,
            watch_backend,
            log_max_rows,
            log_max_days,
            scan,
            cache,
        } => run_watch(
            &path,
            watch_backend,
            crate::store::Retention {
                max_age_secs: log_max_days.saturating_mul(86_400),
                max_rows: log_max_rows,
            },
            cache.engine(&scan)?,
        ),
        Command::Serve(args) => serve::run_serve(&args),
    }
}

/// Before anything else runs (the browser takes the terminal): `--si` for every size shown,
/// and one line on stderr for each ncdu flag accepted but not acted on.
fn apply_ncdu_flags(cli: &Cli) {
    let (scan, ncdu) = match &cli.command {
        None => (Some(&cli.scan), Some(&cli.ncdu)),
        Some(Command::Scan { scan, ncdu, .. }) => (Some(scan), Some(ncdu)),
        Some(
            Command::Export { scan, .. }
            | Command::Watch { scan, .. }
            | Command::Reconcile { scan, .. }
            | Command::Changes { scan, .. }
            | Command::Delete { scan, .. }
            | Command::Serve(serve::ServeArgs { scan, .. }),
        ) => (Some(scan), None),
        Some(Command::Cache { .. } | Command::Completions { .. } | Command::Man) => (None, None),
    };
    if let Some(scan) = scan {
        crate::format::use_si(scan.si);
    }
    let notes = scan
        .map(ScanArgs::notes)
        .into_iter()
        .chain(ncdu.map(NcduArgs::notes))
        .flatten();
    for n in notes {
        eprintln!("dtui: {n}");
    }
    if cli.binary_output.is_some() {
        eprintln!("dtui: -O: writing ncdu's JSON format instead (ncdu -f reads it too)");
    }
}

fn status(errors: u64) -> ExitCode {
    if errors > 0 {
        ExitCode::from(EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    }
}

fn write_export(tree: &Tree, output: &Path, temp: &export::TempSlot) -> Result<()> {
    if output == Path::new("-") {
        let mut out = BufWriter::new(io::stdout().lock());
        return export::write_ncdu_json(tree, &mut out).context("writing the export to stdout");
    }
    let mut out = export::Output::create(output, temp)?;
    let shown = display_name(out.dest().as_os_str().as_bytes());
    export::write_ncdu_json(tree, out.writer()).with_context(|| format!("writing {shown}"))?;
    out.commit()?;
    Ok(())
}

/// SIGINT, SIGTERM and SIGHUP during `dtui export`: blocked in every thread (they inherit the
/// mask) and waited for on one, which removes the temp file being written, if any, then dies
/// of the signal as if it had not been caught (so a shell loop of exports stops on Ctrl-C).
fn clean_up_on_signals(temp: export::TempSlot) -> Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block().context("blocking signals")?;
    std::thread::Builder::new()
        .name("dtui-signals".into())
        .spawn(move || {
            let Ok(signal) = set.wait() else { return };
            // Held to the end: a rename in progress finishes first, none starts after.
            let held = temp
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(path) = held.as_deref() {
                let _ = std::fs::remove_file(path);
            }
            die_of(signal);
        })
        .context("spawning a thread")?;
    Ok(())
}

/// Ends the process by `signal` with its default action (it is blocked in every other thread,
/// so only this one receives it); exits 128+n should it be ignored.
fn die_of(signal: nix::sys::signal::Signal) -> ! {
    let mut only = nix::sys::signal::SigSet::empty();
    only.add(signal);
    let _ = only.thread_unblock();
    let _ = nix::sys::signal::raise(signal);
    std::process::exit(128 + signal as i32);
}

/// A tree ready to report on: opened through the cache and caught up.
struct Opened {
    engine: Engine,
    events: crossbeam_channel::Receiver<EngineMsg>,
    catch_up: Option<ReconcileStats>,
    /// From process start (well, from opening) to a complete, verified tree.
    elapsed: Duration,
}

impl Opened {
    /// Closes the session (the store flushed, the arena marked clean); warns if it could not.
    fn finish(self) {
        say_saved(&self.engine.shutdown());
    }
}

/// The owner a query attached to went away before answering (who it was).
#[derive(Debug, thiserror::Error)]
#[error("the owner this attached to, {0}, went away before it answered")]
pub(crate) struct OwnerGone(pub(crate) String);

/// A query's opening again after the owner it attached to went away: once at most (an owner
/// that goes away while answering it twice is an error, not a loop that could take every
/// process that takes the root over down with it), and never attached to that owner again
/// (still there, it was this side's link to it that failed: the query then runs on its own).
#[derive(Debug, Default)]
pub(crate) struct Reopen {
    /// The owner that went away (its pid), once one did.
    gone: Option<u32>,
}

impl Reopen {
    /// After the owner `pid` (`owner`, as it said) went away: `opts` made to open the root
    /// again (waiting for whoever takes it over), or the error when this query did already.
    pub(crate) fn after(
        &mut self,
        opts: &mut EngineOptions,
        pid: Option<u32>,
        owner: String,
    ) -> Result<()> {
        if self.gone.is_some() || pid.is_none() {
            return Err(OwnerGone(owner).into());
        }
        eprintln!("dtui: the owner this attached to, {owner}, went away; opening the root again");
        self.gone = pid;
        opts.share = crate::engine::Share::Rejoin;
        Ok(())
    }

    /// Is `engine` attached to the owner that went away (so still there)? Then `opts` are
    /// made to open on its own.
    fn same_owner(&self, engine: &Engine, opts: &mut EngineOptions) -> bool {
        let same = self.gone.is_some() && attached_pid(engine) == self.gone;
        if same {
            opts.share = crate::engine::Share::Alone;
        }
        same
    }
}

/// The owner an engine is attached to (its pid), if it is.
pub(crate) fn attached_pid(engine: &Engine) -> Option<u32> {
    match engine.origin {
        crate::cache::Origin::Attached { pid, .. } => Some(pid),
        _ => None,
    }
}

/// Opens `path` through its engine (cache, first scan or catch-up, and the watcher if
/// `opts.watch` asks) and waits for the first pass, with a one-line progress indicator on
/// stderr when it is a terminal. Attached to an owner that goes away first, opens the root
/// again (`Reopen`).
fn open_tree(path: &Path, opts: EngineOptions, show: bool) -> Result<Opened> {
    open_tree_again(path, opts, show, &mut Reopen::default())
}

/// `open_tree`, for a query that may have opened its root before (`reopen`).
fn open_tree_again(
    path: &Path,
    mut opts: EngineOptions,
    show: bool,
    reopen: &mut Reopen,
) -> Result<Opened> {
    let t0 = Instant::now();
    // A query attaches to the dtui that owns the root live, if one runs, where it would have
    // used the cache (`--no-cache` asks for a scan of its own).
    if !opts.cache.disabled && opts.share == crate::engine::Share::Alone {
        opts.share = crate::engine::Share::Join;
    }
    let (engine, rx, first) = open_first_pass(path, &mut opts, show, reopen)?;
    opened(engine, rx, first, t0)
}

/// Opens `path` through its engine and waits for its first pass (`first_pass`); attached to
/// an owner that goes away before that pass ends, opens it again (`Reopen`). The pass may
/// still have failed otherwise (`FirstPass::failed`): the caller decides what that means.
pub(crate) fn open_first_pass(
    path: &Path,
    opts: &mut EngineOptions,
    show: bool,
    reopen: &mut Reopen,
) -> Result<(Engine, crossbeam_channel::Receiver<EngineMsg>, FirstPass)> {
    loop {
        let (tx, rx) = crossbeam_channel::unbounded();
        let engine = Engine::open(path, opts.clone(), tx).map_err(anyhow::Error::from)?;
        if reopen.same_owner(&engine, opts) {
            let _ = engine.shutdown();
            continue;
        }
        let pid = attached_pid(&engine);
        let first = first_pass(&engine, &rx, show);
        let Some(owner) = first.detached.clone() else {
            return Ok((engine, rx, first));
        };
        let _ = engine.shutdown();
        reopen.after(opts, pid, owner)?;
    }
}

/// What opening the cache has to tell, on stderr: its warnings, then its notes (where a first
/// cache goes, an ancestor's used instead, caches the global budget removed).
pub(crate) fn say_opened(engine: &Engine) {
    for w in &engine.warnings {
        eprintln!("dtui: warning: {w}");
    }
    for n in &engine.notes {
        eprintln!("dtui: {n}");
    }
}

/// What closing the cache has to tell, on stderr (`Saved::messages`).
pub(crate) fn say_saved(saved: &Saved) {
    // Not `eprintln!`, which panics when standard error is gone (a terminal that hung up
    // while the cache was saved): the cache is saved either way.
    let mut err = io::stderr().lock();
    for m in saved.messages() {
        let _ = writeln!(err, "dtui: {m}");
    }
}

/// Waits for an engine's first pass (scan or catch-up) to end.
fn wait_ready(
    engine: Engine,
    rx: crossbeam_channel::Receiver<EngineMsg>,
    show: bool,
    t0: Instant,
) -> Result<Opened> {
    let first = first_pass(&engine, &rx, show);
    opened(engine, rx, first, t0)
}

/// Says what opening the engine told (`say_opened`) and waits for its first pass, with a
/// one-line progress indicator on stderr when `show` and it is a terminal.
fn first_pass(
    engine: &Engine,
    rx: &crossbeam_channel::Receiver<EngineMsg>,
    show: bool,
) -> FirstPass {
    let show = show && io::stderr().is_terminal();
    say_opened(engine);
    let mut shown = false;
    let first = engine.wait_ready(rx, |engine| {
        if show {
            let p = engine.progress.snapshot();
            eprint!(
                "\r\x1b[Kscanning: {} entries, {}, {} errors",
                p.entries,
                crate::format::size(p.disk),
                p.errors
            );
            shown = true;
        }
    });
    if shown {
        eprint!("\r\x1b[K");
    }
    first
}

/// The tree ready to report on, or why its first pass did not make it one (the engine shut
/// down then).
fn opened(
    engine: Engine,
    rx: crossbeam_channel::Receiver<EngineMsg>,
    first: FirstPass,
    t0: Instant,
) -> Result<Opened> {
    if let Some(e) = first.failed {
        let _ = engine.shutdown();
        if let Some(owner) = first.detached {
            return Err(OwnerGone(owner).into());
        }
        anyhow::bail!("{e}");
    }
    Ok(Opened {
        engine,
        events: rx,
        catch_up: first.catch_up,
        elapsed: t0.elapsed(),
    })
}

/// An error and its causes on one line, each cause once (library errors already show their
/// source in their own message, so a cause whose text is already there is skipped), escaped
/// for the terminal: a path in some cause (an OS error's, a library's) that was not escaped
/// where it was written must not move the cursor or split the line. Escaping is idempotent
/// (only control characters change), so a message already escaped is shown as it is.
#[must_use]
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = without_os_error(&cause.to_string());
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    display_name(line.as_bytes())
}

/// `No such file or directory (os error 2)` without the number in parentheses, which says
/// nothing more to a user than the words before it.
fn without_os_error(text: &str) -> String {
    const MARK: &str = " (os error ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        let after = &rest[at + MARK.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(&rest[..at]);
        if digits > 0 && after[digits..].starts_with(')') {
            rest = &after[digits + 1..];
        } else {
            out.push_str(MARK);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// `dtui scan -f FILE`: the same report as for a directory, on an export read into a tree.
/// Entries the export marks unreadable are counted, but the export itself was read: exit 0.
fn scan_imported(file: &Path, json: bool, top: usize, apparent: bool) -> Result<ExitCode> {
    let t0 = Instant::now();
    let imported = crate::import::load_reporting(file, !json)?;
    let report = Report {
        origin: imported.describe(),
        elapsed: t0.elapsed(),
        catch_up: None,
        census: imported.tree.census(),
        tree: &imported.tree,
        top,
        apparent,
    };
    let mut out = io::stdout().lock();
    if json {
        report.write_json(&mut out)
    } else {
        report.write_text(&mut out)
    }?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
