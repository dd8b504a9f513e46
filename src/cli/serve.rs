//! `dtui serve [--listen ADDR] PATH...`: one engine per root, headless, until SIGTERM (or
//! SIGINT, SIGHUP); with `--listen`, the metrics port. Logs a line when a root is watched and
//! ready and whenever its state changes, and a summary of its batches at most once a minute
//! (`--log-batches`: one line per batch, as `dtui watch` prints).

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;

use super::watch::{describe_msg, stop_signals};
use super::{CacheArgs, ScanArgs, UsageError};
use crate::cache::Saved;
use crate::engine::{Engine, EngineMsg};
use crate::format::signed_size;
use crate::path::display_path;
use crate::serve::series::Selection;
use crate::serve::{Server, parse_listen};
use crate::tree;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directories to keep live (none inside another)
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Serve GET /metrics (OpenMetrics) and GET /healthz on ADDR: PORT (on 127.0.0.1) or
    /// HOST:PORT (default: no port)
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,
    /// Export every directory down to this many levels below each root
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub metrics_depth: usize,
    /// And the N largest directories anywhere in each root
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub metrics_top: usize,
    /// Log one line per batch of changes (default: a summary at most once a minute)
    #[arg(long)]
    pub log_batches: bool,
    /// Watch backend: auto (fanotify where permitted, else inotify), inotify, notify,
    /// fanotify or fanotify-mount (default: $DISKTRACKER_WATCH_BACKEND, else auto)
    #[arg(long, value_name = "BACKEND")]
    pub watch_backend: Option<crate::watch::Choice>,
    /// Keep at most this many rows in each cache's mutation_log
    #[arg(long, value_name = "ROWS", default_value_t = 1_000_000)]
    pub log_max_rows: u64,
    /// Drop mutation_log rows older than this many days
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub log_max_days: u64,
    #[command(flatten)]
    pub scan: ScanArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// How often the batches of a root are summed up in the log (without `--log-batches`).
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// `dtui serve`.
pub(super) fn run_serve(args: &ServeArgs) -> Result<ExitCode> {
    // Before any thread starts: every thread inherits the blocked signals.
    let (stop_rx, in_loop) = stop_signals()?;
    check_roots(&args.paths)?;
    let choice = crate::watch::Choice::resolve(args.watch_backend).map_err(UsageError)?;
    let mut eopts = args.cache.engine(&args.scan)?;
    eopts.watch = Some(choice);
    eopts.watch_required = true;
    eopts.history_session = true;
    eopts.retention = crate::store::Retention {
        max_age_secs: args.log_max_days.saturating_mul(86_400),
        max_rows: args.log_max_rows,
    };
    // Bound before anything is scanned: a port in use fails at once.
    let listener = args
        .listen
        .map(|addr| TcpListener::bind(addr).with_context(|| format!("listening on {addr}")))
        .transpose()?;
    if let Some(addr) = args.listen
        && !addr.ip().is_loopback()
    {
        eprintln!(
            "dtui: warning: {addr} is not a loopback address: the names of every directory \
             exported are served to whoever reaches it"
        );
    }
    let mut out = io::stdout();
    let mut started = Vec::new();
    for path in &args.paths {
        let (tx, rx) = crossbeam_channel::unbounded();
        // An engine already started is shut down (and saved) when `started` drops.
        // The owner of the root, serving every dtui of this user that attaches to it.
        let mut opts = eopts.clone();
        if !opts.cache.disabled {
            opts.share = crate::engine::Share::Own;
        }
        let engine = Engine::open(path, opts, tx).map_err(anyhow::Error::from)?;
        if let crate::cache::Origin::Attached { pid, .. } = &engine.origin {
            anyhow::bail!(
                "{} is kept live by dtui {pid} already (a browser or `dtui watch`): quit it \
                 first, `dtui serve` owns its roots itself",
                display_path(&engine.root)
            );
        }
        for w in &engine.warnings {
            eprintln!("dtui: warning: {}: {w}", display_path(&engine.root));
        }
        // Where a first cache goes and what it costs, as every command says it.
        for n in &engine.notes {
            eprintln!("dtui: {n}");
        }
        if let Some(Ok(what)) = &engine.watching {
            writeln!(out, "watching {} with {what}", display_path(&engine.root))?;
        }
        started.push((engine, rx));
    }
    let (msg_tx, msg_rx) = crossbeam_channel::unbounded();
    let selection = Selection {
        depth: args.metrics_depth,
        top: args.metrics_top,
    };
    let server = Server::start(started, selection, listener, &msg_tx)
        .context("starting the server's threads")?;
    drop(msg_tx);
    // From here a signal stops every engine cleanly, a first scan included (it is cancelled).
    in_loop.store(true, Ordering::SeqCst);
    if let Some(addr) = server.listening() {
        writeln!(out, "listening on http://{addr}/metrics")?;
    }
    out.flush()?;
    let roots: Vec<String> = server.roots().iter().map(|r| display_path(r)).collect();
    let mut log = Log {
        out,
        roots,
        every_batch: args.log_batches,
        sums: HashMap::new(),
    };
    loop {
        crossbeam_channel::select! {
            recv(msg_rx) -> msg => match msg {
                Ok((i, msg)) => log.message(&server, i, &msg)?,
                Err(_) => break,
            },
            recv(stop_rx) -> _ => break,
            default(Duration::from_secs(5)) => {},
        }
        log.summaries(false)?;
    }
    let saved = server.stop();
    // The last batches (applied by the shutdown) and anything else said meanwhile.
    for (i, msg) in msg_rx.try_iter() {
        log.message_after_stop(i, &msg)?;
    }
    log.summaries(true)?;
    for (root, s) in log.roots.iter().zip(saved) {
        if let Saved::Failed { why } = s {
            eprintln!("dtui: warning: {root}: the cache was not saved: {why}");
        }
    }
    eprintln!("dtui: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Refuses a root inside another (or given twice): its directories would be watched, counted
/// and cached twice, and served under two roots. Serve the outer one: its tree holds them.
fn check_roots(paths: &[PathBuf]) -> Result<()> {
    let resolved: Vec<PathBuf> = paths
        .iter()
        .map(|p| std::fs::canonicalize(p).with_context(|| display_path(p)))
        .collect::<Result<_>>()?;
    for (i, a) in resolved.iter().enumerate() {
        for b in &resolved[i + 1..] {
            let (outer, inner) = if crate::path::is_within(a, b) {
                (a, b)
            } else if crate::path::is_within(b, a) {
                (b, a)
            } else {
                continue;
            };
            return Err(UsageError(if outer == inner {
                format!("{} is given twice", display_path(outer))
            } else {
                format!(
                    "{} is inside {}: serve {} alone (its tree holds the other)",
                    display_path(inner),
                    display_path(outer),
                    display_path(outer)
                )
            })
            .into());
        }
    }
    Ok(())
}

/// The log on stdout: one line per state change, batches one by one or summed up.
struct Log {
    out: io::Stdout,
    roots: Vec<String>,
    every_batch: bool,
    /// Per root: batches, events and the disk change since the last summary, and when it began.
    sums: HashMap<usize, (u64, u64, i128, Instant)>,
}

impl Log {
    fn message(&mut self, server: &Server, i: usize, msg: &EngineMsg) -> io::Result<()> {
        if let EngineMsg::Ready = msg {
            let engine = &server.engines()[i];
            let n = tree::read(&engine.tree).len();
            let line = format!(
                "ready {}: {n} entries; cache {}",
                self.roots[i], engine.origin
            );
            return self.line(&line);
        }
        self.message_after_stop(i, msg)
    }

    fn message_after_stop(&mut self, i: usize, msg: &EngineMsg) -> io::Result<()> {
        if let EngineMsg::Applied(d) = msg
            && d.batch > 0
            && !self.every_batch
        {
            let s = self
                .sums
                .entry(i)
                .or_insert_with(|| (0, 0, 0, Instant::now()));
            s.0 += 1;
            s.1 += d.events;
            s.2 += d.lines.iter().map(|l| l.disk).sum::<i128>();
            return Ok(());
        }
        match describe_msg(msg) {
            Some(text) => {
                let line = format!("{}: {text}", self.roots[i]);
                self.line(&line)
            }
            None => Ok(()),
        }
    }

    /// The batches of each root summed up, once a minute (`all`: now, whatever is pending).
    fn summaries(&mut self, all: bool) -> io::Result<()> {
        let due: Vec<usize> = self
            .sums
            .iter()
            .filter(|(_, s)| all || s.3.elapsed() >= SUMMARY_EVERY)
            .map(|(&i, _)| i)
            .collect();
        for i in due {
            if let Some((batches, events, disk, since)) = self.sums.remove(&i) {
                let line = format!(
                    "{}: {batches} batches, {events} events, {} in {:.0} s",
                    self.roots[i],
                    signed_size(disk),
                    since.elapsed().as_secs_f64()
                );
                self.line(&line)?;
            }
        }
        Ok(())
    }

    fn line(&mut self, line: &str) -> io::Result<()> {
        writeln!(self.out, "{line}")?;
        self.out.flush()
    }
}
