//! The command line: `dtui scan`, `dtui export`. Parsing is clap (derive); each command returns
//! an exit status, errors go back to `main` with their context for one clear line on stderr.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod changes;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::format::signed_size;

mod shell;

use crate::cache::{self, CacheOptions, Saved};
use crate::engine::{Engine, EngineMsg, EngineOptions};
use crate::export;
use crate::path::display_name;
use crate::reconcile::ReconcileStats;
use crate::scan::{self, Excludes, ScanOptions};
use crate::tree::{self, Census, Kind, NodeId, Tree, flag_char};

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

#[derive(Debug, Parser)]
#[command(
    name = "dtui",
    version,
    about = "An ncdu-style disk usage explorer that never goes stale",
    after_help = "Exit status: 0 ok, 1 error, 2 bad usage, 3 finished but some entries could not be read."
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Directory to browse (default: the current directory)
    pub path: Option<PathBuf>,
    /// Browse an ncdu JSON export instead, read-only (`ncdu -o`, `gdu -o`, `dtui export`,
    /// zstd-compressed too); `-` reads it from standard input
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "path"
    )]
    pub file: Option<PathBuf>,
    /// Write PATH's tree to FILE in ncdu's JSON format instead of browsing it, as `ncdu -o`
    /// does (the same as `dtui export PATH -o FILE`; `-` for stdout)
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        conflicts_with = "file"
    )]
    pub output: Option<PathBuf>,
    /// Disable everything that writes (the shell, delete, the trash)
    #[arg(short = 'r', long)]
    pub read_only: bool,
    /// Disable delete, the trash and undo (d, D, u) in the browser
    #[arg(long)]
    pub no_delete: bool,
    /// Watch backend for live updates: auto (fanotify where permitted, else inotify), inotify,
    /// notify, fanotify or fanotify-mount (default: $DISKTRACKER_WATCH_BACKEND, else auto);
    /// `none` browses a snapshot
    #[arg(long, value_name = "BACKEND")]
    pub watch_backend: Option<String>,
    #[command(flatten)]
    pub scan: ScanArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan a directory (or load its cache and catch up) and print totals and the largest entries
    Scan {
        /// Directory to scan
        #[arg(required_unless_present = "file")]
        path: Option<PathBuf>,
        /// Report on an ncdu JSON export instead (`-` reads standard input)
        #[arg(
            short = 'f',
            long = "file",
            value_name = "FILE",
            conflicts_with = "path"
        )]
        file: Option<PathBuf>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        /// How many of the largest entries to list
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// Rank entries by apparent size instead of disk usage
        #[arg(long)]
        apparent_size: bool,
        /// With a cache: report the tree as it was saved, without verifying it against the disk
        #[arg(long)]
        no_catch_up: bool,
        #[command(flatten)]
        scan: ScanArgs,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Write a directory's tree in ncdu's JSON format (open it with `ncdu -f FILE`)
    Export {
        /// Directory to export
        path: PathBuf,
        /// Output file (`-` for stdout)
        #[arg(short, long)]
        output: PathBuf,
        /// With a cache: export the tree as it was saved, without verifying it against the disk
        #[arg(long)]
        no_catch_up: bool,
        #[command(flatten)]
        scan: ScanArgs,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Watch a directory and print one line per batch of changes (until Ctrl-C)
    Watch {
        /// Directory to watch
        path: PathBuf,
        /// Watch backend: auto (fanotify where permitted, else inotify), inotify, notify (the
        /// portable crate), fanotify or fanotify-mount (a mount mark plus inotify) (default:
        /// $DISKTRACKER_WATCH_BACKEND, else auto)
        #[arg(long, value_name = "BACKEND")]
        watch_backend: Option<crate::watch::Choice>,
        /// Keep at most this many rows in the cache's mutation_log
        #[arg(long, value_name = "ROWS", default_value_t = 1_000_000)]
        log_max_rows: u64,
        /// Drop mutation_log rows older than this many days
        #[arg(long, value_name = "DAYS", default_value_t = 30)]
        log_max_days: u64,
        #[command(flatten)]
        scan: ScanArgs,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Load a directory's cache and align it with the disk, reporting what changed
    Reconcile {
        /// Directory to reconcile
        path: PathBuf,
        /// Re-read every directory and re-stat every entry, whatever the times say
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        scan: ScanArgs,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Print the directories that grew or shrank the most (since the previous run, or over a
    /// period), from the size history in the cache, after catching up with the disk
    Changes {
        /// Directory to report on
        path: PathBuf,
        /// `last` (since the previous run) or a period: 30m, 1h, 2d, 1w
        #[arg(long, value_name = "DURATION|last", default_value = "last",
              value_parser = crate::history::parse_since)]
        since: crate::history::Since,
        /// How many directories to list (0: all)
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// Count apparent sizes instead of disk usage
        #[arg(long)]
        apparent_size: bool,
        #[command(flatten)]
        scan: ScanArgs,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Delete entries of ROOT's tree (or move them to the trash), as the browser's `d` does
    Delete {
        /// The root whose tree holds the entries
        root: PathBuf,
        /// Entries to delete (each must be inside ROOT)
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Move to the freedesktop trash of each entry's filesystem instead
        #[arg(long)]
        trash: bool,
        /// Do not ask first
        #[arg(long, short = 'y')]
        yes: bool,
        /// What to do when an entry cannot be deleted
        #[arg(long, value_enum, default_value = "abort")]
        on_error: crate::delete::command::OnError,
        #[command(flatten)]
        scan: ScanArgs,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// List or remove caches
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Print a shell completion script to standard output (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to standard output
    Man,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Show every cache with its root, size, entries and age
    List {
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Remove the cache of PATH (even if PATH is gone), or every cache (asks first, or --all)
    Clear {
        /// The root whose cache goes
        path: Option<PathBuf>,
        /// Remove every cache without asking
        #[arg(long, conflicts_with = "path")]
        all: bool,
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Scanner threads (default: the number of cores)
    #[arg(long, short = 't', value_name = "N")]
    pub threads: Option<usize>,
    /// Stay on the filesystem of the root (by mount id, so bind mounts count as other)
    #[arg(short = 'x', long = "one-file-system")]
    pub one_file_system: bool,
    /// Exclude entries matching a glob (repeatable); a pattern with '/' matches the full path
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
}

impl ScanArgs {
    pub fn options(&self) -> Result<ScanOptions> {
        Ok(ScanOptions {
            threads: self
                .threads
                .unwrap_or_else(scan::default_threads)
                .clamp(1, scan::MAX_THREADS),
            one_filesystem: self.one_file_system,
            excludes: Excludes::new(&self.exclude).map_err(|e| UsageError(e.to_string()))?,
        })
    }
}

#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Keep caches in DIR (default: $XDG_CACHE_HOME/dtui, else ~/.cache/dtui)
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Run without a cache: scan every time, write nothing
    #[arg(long)]
    pub no_cache: bool,
    /// The most bytes this root's cache may take on disk (database, WAL and arena): the
    /// oldest history and mutation_log rows are dropped to stay within it. `auto`: 6 times
    /// the tree's arena, at least 256 MiB
    #[arg(long, value_name = "SIZE", default_value = "auto")]
    pub cache_max_bytes: crate::store::CacheBudget,
}

impl CacheArgs {
    fn options(&self) -> CacheOptions {
        CacheOptions {
            dir: self.cache_dir.clone(),
            disabled: self.no_cache,
        }
    }

    /// The engine's options with these and `scan`'s.
    fn engine(&self, scan: &ScanArgs) -> Result<EngineOptions> {
        Ok(EngineOptions::new(self.options(), scan.options()?)
            .with_cache_budget(self.cache_max_bytes))
    }
}

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
    let Some(command) = cli.command else {
        if let Some(file) = cli.file {
            return crate::ui::run_imported(&file).map(|()| ExitCode::SUCCESS);
        }
        let path = cli.path.unwrap_or_else(|| PathBuf::from("."));
        if let Some(output) = cli.output {
            return run_export(&path, &output, false, &cli.scan, &cli.cache);
        }
        let mut opts = cli.cache.engine(&cli.scan)?;
        opts.watch = match cli.watch_backend.as_deref() {
            Some("none") => None,
            Some(b) => Some(b.parse().map_err(UsageError)?),
            None => Some(crate::watch::Choice::resolve(None).map_err(UsageError)?),
        };
        let errors: u64 = crate::ui::run(&path, opts, cli.read_only, cli.no_delete)?;
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
            apparent_size,
            no_catch_up,
            scan,
            cache,
        } => {
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
        } => changes::run_changes(
            &path,
            &changes::ChangesArgs {
                since,
                top,
                apparent: apparent_size,
            },
            cache.engine(&scan)?,
        ),
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
        if let Saved::Failed { why } = self.engine.shutdown() {
            eprintln!("dtui: warning: the cache was not saved: {why}");
        }
    }
}

/// Opens `path` through its engine (cache, first scan or catch-up, and the watcher if
/// `opts.watch` asks) and waits for the first pass, with a one-line progress indicator on
/// stderr when it is a terminal.
fn open_tree(path: &Path, opts: EngineOptions, show: bool) -> Result<Opened> {
    let t0 = Instant::now();
    let (tx, rx) = crossbeam_channel::unbounded();
    let engine = Engine::start(path, opts, tx).map_err(anyhow::Error::from)?;
    wait_ready(engine, rx, show, t0)
}

/// Waits for an engine's first pass (scan or catch-up) to end.
fn wait_ready(
    engine: Engine,
    rx: crossbeam_channel::Receiver<EngineMsg>,
    show: bool,
    t0: Instant,
) -> Result<Opened> {
    let show = show && io::stderr().is_terminal();
    for w in &engine.warnings {
        eprintln!("dtui: warning: {w}");
    }
    let mut shown = false;
    let mut catch_up = None;
    let mut failed = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(EngineMsg::Ready) => break,
            // The engine ended without a tree: never report what it had so far as the tree.
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                failed.get_or_insert_with(|| {
                    "the engine stopped before the tree was complete".into()
                });
                break;
            }
            Ok(EngineMsg::CatchUpDone(c)) => catch_up = Some(c),
            Ok(EngineMsg::Failed(e)) => failed = Some(e),
            Ok(_) => {}
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
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
            }
        }
    }
    if shown {
        eprint!("\r\x1b[K");
    }
    if let Some(e) = failed {
        let _ = engine.shutdown();
        anyhow::bail!("{e}");
    }
    Ok(Opened {
        engine,
        events: rx,
        catch_up,
        elapsed: t0.elapsed(),
    })
}

/// SIGINT/SIGTERM/SIGHUP for `dtui watch`, blocked in every thread (they inherit the mask) and waited
/// for on one. Before the watch loop runs (`in_loop` false: the first scan), a signal ends the
/// process at once: there is no batch to flush. In the loop, the first one stops it cleanly
/// (the receiver gets `()`); a second one does not wait for that.
fn stop_signals() -> Result<(crossbeam_channel::Receiver<()>, std::sync::Arc<AtomicBool>)> {
    use nix::sys::signal::{SigSet, Signal};
    let mut stop_set = SigSet::empty();
    stop_set.add(Signal::SIGINT);
    stop_set.add(Signal::SIGTERM);
    stop_set.add(Signal::SIGHUP);
    stop_set.thread_block().context("blocking signals")?;
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    let in_loop = std::sync::Arc::new(AtomicBool::new(false));
    let loop_flag = std::sync::Arc::clone(&in_loop);
    std::thread::spawn(move || {
        let mut asked = false;
        while stop_set.wait().is_ok() {
            if asked || !loop_flag.load(Ordering::SeqCst) {
                std::process::exit(130);
            }
            asked = true;
            let _ = stop_tx.try_send(());
        }
    });
    Ok((stop_rx, in_loop))
}

/// `dtui watch`: watch first, then scan or load (so nothing falls between), say `tree:` once
/// the tree is ready, then print one line per applied batch with what it changed, until
/// SIGINT/SIGTERM/SIGHUP; the last batch is applied and saved.
fn run_watch(
    path: &Path,
    backend: Option<crate::watch::Choice>,
    retention: crate::store::Retention,
    mut eopts: EngineOptions,
) -> Result<ExitCode> {
    let (stop_rx, in_loop) = stop_signals()?;
    let choice = crate::watch::Choice::resolve(backend).map_err(UsageError)?;
    eopts.watch = Some(choice);
    eopts.watch_required = true;
    eopts.retention = retention;
    let t0 = Instant::now();
    let (tx, rx) = crossbeam_channel::unbounded();
    let engine = Engine::start(path, eopts, tx).map_err(anyhow::Error::from)?;
    let mut out = io::stdout();
    if let Some(Ok(what)) = &engine.watching {
        writeln!(
            out,
            "watching {} with {what}",
            display_name(engine.root.as_os_str().as_bytes())
        )?;
        out.flush()?;
    }
    let opened = wait_ready(engine, rx, false, t0)?;
    // From here a signal stops the loop cleanly (set before saying the tree is ready).
    in_loop.store(true, Ordering::SeqCst);
    writeln!(
        out,
        "tree: {} entries; cache {}",
        tree::read(&opened.engine.tree).len(),
        opened.engine.origin
    )?;
    out.flush()?;
    let mut print = |msg: EngineMsg| -> io::Result<()> {
        if let Some(line) = describe_msg(&msg) {
            writeln!(out, "{line}")?;
            out.flush()?;
        }
        Ok(())
    };
    loop {
        crossbeam_channel::select! {
            recv(opened.events) -> msg => match msg {
                Ok(msg) => print(msg)?,
                Err(_) => break,
            },
            recv(stop_rx) -> _ => break,
        }
    }
    let Opened { engine, events, .. } = opened;
    let saved = engine.shutdown();
    // The last batch (applied by the shutdown) and anything else said meanwhile.
    for msg in events.try_iter() {
        print(msg)?;
    }
    if let Saved::Failed { why } = saved {
        eprintln!("dtui: warning: the cache was not saved: {why}");
    }
    eprintln!("dtui: stopped");
    Ok(ExitCode::SUCCESS)
}

/// The line `dtui watch` prints for an engine message, if any.
fn describe_msg(msg: &EngineMsg) -> Option<String> {
    use crate::engine::ChangeKind;
    use std::fmt::Write as _;
    match msg {
        EngineMsg::Applied(d) if d.batch == 0 => (!d.touched.is_empty())
            .then(|| format!("verified: {} entries updated", d.touched.len())),
        EngineMsg::Applied(d) => {
            let total: i128 = d.lines.iter().map(|l| l.disk).sum();
            let mut line = format!(
                "batch {}: {} events, {} changes, {} ({:.1} ms)",
                d.batch,
                d.events,
                d.lines.len(),
                signed_size(total),
                d.elapsed.as_secs_f64() * 1000.0
            );
            for l in d.lines.iter().take(8) {
                let path = display_name(&l.path);
                let _ = match (l.kind, &l.to) {
                    (ChangeKind::Moved, Some(to)) => {
                        write!(line, "  {path} -> {}", display_name(to))
                    }
                    (ChangeKind::Verified, _) => write!(line, "  !{path}"),
                    (ChangeKind::Added, _) if l.disk == 0 => write!(line, "  +{path}"),
                    (ChangeKind::Removed, _) if l.disk == 0 => write!(line, "  -{path}"),
                    (ChangeKind::Changed, _) if l.disk == 0 => write!(line, "  ~{path}"),
                    _ => write!(line, "  {} {path}", signed_size(l.disk)),
                };
            }
            if d.lines.len() > 8 {
                let _ = write!(line, "  (+{} more)", d.lines.len() - 8);
            }
            Some(line)
        }
        EngineMsg::Stale(why) => Some(format!("stale: {why}")),
        EngineMsg::CacheSaved => Some("cache saved again: its disk has room".into()),
        EngineMsg::Watching(Err(why)) => Some(format!("not watching: {why}")),
        EngineMsg::Failed(e) => Some(format!("error: {e}")),
        EngineMsg::Reconciled(s) => Some(format!(
            "reconciled: {} added, {} removed, {} resized",
            s.added, s.removed, s.resized
        )),
        EngineMsg::Watching(Ok(_))
        | EngineMsg::ScanDone(_)
        | EngineMsg::CatchUpDone(_)
        | EngineMsg::Ready => None,
    }
}

/// `dtui reconcile [--full] PATH`: load the cache, align it with the disk, say what changed.
fn run_reconcile(path: &Path, full: bool, mut eopts: EngineOptions) -> Result<ExitCode> {
    // `--full` does its own pass: the catch-up would only do part of it first.
    eopts.catch_up = !full;
    let t0 = Instant::now();
    let opened = open_tree(path, eopts, true)?;
    let mut out = io::stdout();
    writeln!(out, "cache {}", opened.engine.origin)?;
    let stats = if full || opened.catch_up.is_none() && opened.engine.origin.from_cache() {
        opened.engine.reconcile(None, true);
        loop {
            match opened.events.recv() {
                Ok(EngineMsg::Reconciled(s)) => break Some(s),
                Ok(EngineMsg::Failed(e)) => {
                    opened.finish();
                    anyhow::bail!("{e}");
                }
                Ok(_) => {}
                Err(_) => break None,
            }
        }
    } else {
        opened.catch_up
    };
    let t = tree::read(&opened.engine.tree);
    let totals = t.totals(t.root());
    let errors = t.census().unreadable;
    drop(t);
    match stats {
        Some(s) => writeln!(
            out,
            "{}: {} added, {} removed, {} resized, {} replaced; {} directories read, {} kept; {} errors",
            if full { "full reconcile" } else { "catch-up" },
            s.added,
            s.removed,
            s.resized,
            s.replaced,
            s.dirs_read,
            s.dirs_kept,
            s.errors
        )?,
        None => writeln!(
            out,
            "scanned: no cache to reconcile, the tree was scanned afresh"
        )?,
    }
    writeln!(
        out,
        "total: {} on disk, {} apparent, {} items; {:.3} s",
        crate::format::size(totals.disk),
        crate::format::size(totals.apparent),
        totals.items,
        t0.elapsed().as_secs_f64()
    )?;
    opened.finish();
    Ok(status(errors))
}

fn run_cache(command: CacheCommand) -> Result<ExitCode> {
    let dir = |d: Option<PathBuf>| -> Result<PathBuf> {
        if let Some(d) = d {
            return Ok(d);
        }
        let (d, note) = cache::default_dir().map_err(anyhow::Error::msg)?;
        if let Some(n) = note {
            eprintln!("dtui: warning: {n}");
        }
        Ok(d)
    };
    let shown = |p: &Path| display_name(p.as_os_str().as_bytes());
    match command {
        CacheCommand::List { cache_dir } => {
            let dir = dir(cache_dir)?;
            let caches = cache::list(&dir).with_context(|| format!("reading {}", shown(&dir)))?;
            let mut out = io::stdout().lock();
            if caches.is_empty() {
                writeln!(out, "no caches in {}", shown(&dir))?;
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<[String; 4]> = caches
                .iter()
                .map(|c| {
                    [
                        crate::format::size(c.bytes),
                        c.entries.to_string(),
                        c.age.map_or_else(|| "-".into(), format_age),
                        format!("{}{}", shown(&c.root), if c.gone { "  (gone)" } else { "" }),
                    ]
                })
                .collect();
            let header = ["SIZE", "ENTRIES", "AGE", "ROOT"];
            let width = |i: usize| {
                rows.iter()
                    .map(|r| r[i].chars().count())
                    .chain([header[i].len()])
                    .max()
                    .unwrap_or(0)
            };
            let (w0, w1, w2) = (width(0), width(1), width(2));
            for r in std::iter::once(header.map(String::from)).chain(rows) {
                writeln!(out, "{:>w0$}  {:>w1$}  {:>w2$}  {}", r[0], r[1], r[2], r[3])?;
            }
            Ok(ExitCode::SUCCESS)
        }
        CacheCommand::Clear {
            path,
            all,
            cache_dir,
        } => {
            let dir = dir(cache_dir)?;
            let of = path
                .as_ref()
                .map(|p| format!(" of {}", shown(p)))
                .unwrap_or_default();
            let target = match path {
                Some(p) => {
                    // The stored root is the canonical path at scan time; a root that is gone
                    // cannot be canonicalized, so its absolute path is tried as well.
                    let mut roots = vec![
                        std::path::absolute(&p)
                            .with_context(|| format!("cannot resolve {}", shown(&p)))?,
                    ];
                    roots.extend(std::fs::canonicalize(&p).ok());
                    cache::ClearTarget::Roots(roots)
                }
                None if all => cache::ClearTarget::All,
                None if io::stdin().is_terminal() => {
                    eprint!("dtui: remove every cache in {}? [y/N] ", shown(&dir));
                    io::stderr().flush()?;
                    let mut answer = String::new();
                    io::stdin().read_line(&mut answer)?;
                    if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES") {
                        eprintln!("dtui: nothing removed");
                        return Ok(ExitCode::SUCCESS);
                    }
                    cache::ClearTarget::All
                }
                None => {
                    eprintln!(
                        "dtui: `cache clear` without a PATH removes every cache: pass --all to confirm"
                    );
                    return Ok(ExitCode::from(2));
                }
            };
            let removed =
                cache::clear(&dir, &target).with_context(|| format!("clearing {}", shown(&dir)))?;
            if removed == 0 {
                println!("no cache{of} in {}", shown(&dir));
            } else {
                let s = if removed == 1 { "" } else { "s" };
                println!("removed {removed} cache{s}{of} from {}", shown(&dir));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn format_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

struct Report<'a> {
    /// Where the tree came from (the cache taken, or the export read).
    origin: String,
    /// From the start to a complete tree.
    elapsed: Duration,
    catch_up: Option<&'a ReconcileStats>,
    tree: &'a Tree,
    census: Census,
    top: usize,
    apparent: bool,
}

impl Report<'_> {
    fn size_of(&self, id: NodeId) -> u64 {
        let t = self.tree.totals(id);
        if self.apparent { t.apparent } else { t.disk }
    }

    /// The root's children, largest first.
    fn largest(&self) -> Vec<NodeId> {
        let root = self.tree.root();
        let mut kids: Vec<NodeId> = self.tree.children(root).collect();
        kids.sort_by(|&a, &b| {
            self.size_of(b)
                .cmp(&self.size_of(a))
                .then_with(|| self.tree.name(a).cmp(self.tree.name(b)))
        });
        kids.truncate(self.top);
        kids
    }

    fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        let root = self.tree.root();
        let t = self.tree.totals(root);
        let secs = self.elapsed.as_secs_f64();
        let errors = self.census.unreadable;
        writeln!(
            out,
            "{}",
            display_name(self.tree.root_path().as_os_str().as_bytes())
        )?;
        writeln!(
            out,
            "  disk usage     {} ({} bytes)",
            crate::format::size(t.disk),
            t.disk
        )?;
        writeln!(
            out,
            "  apparent size  {} ({} bytes)",
            crate::format::size(t.apparent),
            t.apparent
        )?;
        writeln!(out, "  items          {}", t.items)?;
        writeln!(out, "  directories    {}", self.census.dirs)?;
        if errors > 0 {
            writeln!(
                out,
                "  errors         {errors} (unreadable entries are flagged; totals are partial)"
            )?;
        } else {
            writeln!(out, "  errors         0")?;
        }
        writeln!(out, "  cache          {}", self.origin)?;
        if let Some(c) = &self.catch_up {
            writeln!(
                out,
                "  catch-up       {:.3} s: {} added, {} removed, {} resized, {} replaced \
                 ({} directories re-read, {} unchanged)",
                c.elapsed.as_secs_f64(),
                c.added,
                c.removed,
                c.resized,
                c.replaced,
                c.dirs_read,
                c.dirs_kept
            )?;
        }
        writeln!(
            out,
            "  elapsed        {secs:.3} s ({:.0} entries/s)",
            t.items as f64 / secs.max(1e-9)
        )?;
        let largest = self.largest();
        if !largest.is_empty() {
            writeln!(
                out,
                "\nLargest entries ({}):",
                if self.apparent {
                    "apparent size"
                } else {
                    "disk usage"
                }
            )?;
        }
        for id in largest {
            let name = display_name(self.tree.name(id));
            let slash = if self.tree.kind(id) == Kind::Dir {
                "/"
            } else {
                ""
            };
            writeln!(
                out,
                "  {} {:>10}  {name}{slash}",
                flag_char(self.tree.flags(id), self.tree.kind(id)),
                crate::format::column_size(self.size_of(id)),
            )?;
        }
        Ok(())
    }

    fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        let root = self.tree.root();
        let t = self.tree.totals(root);
        out.write_all(b"{\"root\":")?;
        export::write_json_string_lossy(self.tree.name(root), out)?;
        write!(
            out,
            ",\"disk\":{},\"apparent\":{},\"items\":{},\"dirs\":{},\"errors\":{},\"elapsed_ms\":{:.3},\"arena_bytes\":{},\"cache\":",
            t.disk,
            t.apparent,
            t.items,
            self.census.dirs,
            self.census.unreadable,
            self.elapsed.as_secs_f64() * 1000.0,
            self.tree.arena().used_bytes(),
        )?;
        export::write_json_string_lossy(self.origin.as_bytes(), out)?;
        let m = self.tree.memory();
        write!(
            out,
            ",\"memory\":{{\"header\":{},\"nodes\":{},\"dirs\":{},\"rares\":{},\"names\":{},\"index\":{},\"index_all_wide\":{},\"name_cache\":{},\"links\":{},\"all_in\":{}}}",
            m.header,
            m.nodes,
            m.dirs,
            m.rares,
            m.names,
            m.index,
            m.index_all_wide,
            m.name_cache,
            m.links,
            m.all_in()
        )?;
        if let Some(c) = &self.catch_up {
            write!(
                out,
                ",\"catch_up\":{{\"added\":{},\"removed\":{},\"resized\":{},\"replaced\":{},\"dirs_read\":{},\"dirs_kept\":{},\"elapsed_ms\":{:.3}}}",
                c.added,
                c.removed,
                c.resized,
                c.replaced,
                c.dirs_read,
                c.dirs_kept,
                c.elapsed.as_secs_f64() * 1000.0
            )?;
        }
        out.write_all(b",\"largest\":[")?;
        for (i, id) in self.largest().into_iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            let tt = self.tree.totals(id);
            out.write_all(b"{\"name\":")?;
            export::write_json_string_lossy(self.tree.name(id), out)?;
            write!(
                out,
                ",\"kind\":\"{}\",\"disk\":{},\"apparent\":{},\"items\":{},\"flags\":\"{}\"}}",
                kind_name(self.tree.kind(id)),
                tt.disk,
                tt.apparent,
                tt.items,
                flag_char(self.tree.flags(id), self.tree.kind(id)).trim()
            )?;
        }
        out.write_all(b"]}\n")
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::File => "file",
        Kind::Dir => "dir",
        Kind::Symlink => "symlink",
        Kind::Other => "other",
        Kind::Unknown => "unknown",
    }
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
