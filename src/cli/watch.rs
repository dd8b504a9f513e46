//! `dtui watch` and `dtui reconcile`: an engine run without a terminal, its messages as lines.

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};

use super::{Opened, UsageError, status, wait_ready};

use crate::engine::{Engine, EngineMsg, EngineOptions, Reconciled};
use crate::format::signed_size;
use crate::path::display_name;
use crate::tree::{self};

/// SIGINT/SIGTERM/SIGHUP for `dtui watch`, blocked in every thread (they inherit the mask) and waited
/// for on one. Before the watch loop runs (`in_loop` false: the first scan), a signal ends the
/// process at once: there is no batch to flush. In the loop, the first one stops it cleanly
/// (the receiver gets `()`); a second one does not wait for that.
pub(super) fn stop_signals() -> Result<(crossbeam_channel::Receiver<()>, std::sync::Arc<AtomicBool>)>
{
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
pub(super) fn run_watch(
    path: &Path,
    backend: Option<crate::watch::Choice>,
    retention: crate::store::Retention,
    mut eopts: EngineOptions,
) -> Result<ExitCode> {
    let (stop_rx, in_loop) = stop_signals()?;
    let choice = crate::watch::Choice::resolve(backend).map_err(UsageError)?;
    eopts.watch = Some(choice);
    eopts.watch_required = true;
    eopts.history_session = true;
    eopts.retention = retention;
    // Attached to the dtui that owns the root live, if one runs (its batches are printed
    // here as they come); else its owner, serving whoever attaches.
    if !eopts.cache.disabled {
        eopts.share = crate::engine::Share::Own;
    }
    let mut out = io::stdout();
    loop {
        let t0 = Instant::now();
        let (tx, rx) = crossbeam_channel::unbounded();
        let engine = Engine::open(path, eopts.clone(), tx).map_err(anyhow::Error::from)?;
        if let crate::cache::Origin::Attached { pid, .. } = &engine.origin {
            writeln!(
                out,
                "attached to dtui {pid}, which watches {}",
                display_name(engine.root.as_os_str().as_bytes())
            )?;
        } else if let Some(Ok(what)) = &engine.watching {
            writeln!(
                out,
                "watching {} with {what}",
                display_name(engine.root.as_os_str().as_bytes())
            )?;
        }
        out.flush()?;
        let opened = match wait_ready(engine, rx, false, t0) {
            Ok(opened) => opened,
            // The owner went away before its tree was all here: taken over as below.
            Err(e) => match e.downcast::<super::OwnerGone>() {
                Ok(super::OwnerGone(owner)) => {
                    if let Some(line) = describe_msg(&EngineMsg::Detached(owner)) {
                        writeln!(out, "{line}")?;
                    }
                    continue;
                }
                Err(e) => return Err(e),
            },
        };
        // From here a signal stops the loop cleanly (set before saying the tree is ready).
        in_loop.store(true, Ordering::SeqCst);
        writeln!(
            out,
            "tree: {} entries; cache {}",
            tree::read(&opened.engine.tree).len(),
            opened.engine.origin
        )?;
        out.flush()?;
        let mut print = |msg: &EngineMsg| -> io::Result<()> {
            if let Some(line) = describe_msg(msg) {
                writeln!(out, "{line}")?;
                out.flush()?;
            }
            Ok(())
        };
        // The owner this watch was attached to went away: it takes the root over.
        let mut detached = false;
        loop {
            crossbeam_channel::select! {
                recv(opened.events) -> msg => match msg {
                    Ok(msg) => {
                        print(&msg)?;
                        if matches!(msg, EngineMsg::Detached(_)) {
                            detached = true;
                            break;
                        }
                    }
                    Err(_) => break,
                },
                recv(stop_rx) -> _ => break,
            }
        }
        let Opened { engine, events, .. } = opened;
        let saved = engine.shutdown();
        // The last batch (applied by the shutdown) and anything else said meanwhile.
        for msg in events.try_iter() {
            print(&msg)?;
        }
        if detached {
            in_loop.store(false, Ordering::SeqCst);
            continue;
        }
        super::say_saved(&saved);
        eprintln!("dtui: stopped");
        return Ok(ExitCode::SUCCESS);
    }
}

/// The line `dtui watch` prints for an engine message, if any.
pub(super) fn describe_msg(msg: &EngineMsg) -> Option<String> {
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
        EngineMsg::Detached(owner) => Some(format!(
            "detached: the owner, {owner}, went away; taking the root over"
        )),
        EngineMsg::Reconciled(s) => Some(format!(
            "reconciled: {} added, {} removed, {} resized",
            s.added, s.removed, s.resized
        )),
        EngineMsg::Watching(Ok(_))
        | EngineMsg::ScanDone(_)
        | EngineMsg::CatchUpDone(_)
        | EngineMsg::Ready
        | EngineMsg::Synced(_) => None,
    }
}

/// `dtui reconcile [--full] PATH`: load the cache, align it with the disk, say what changed.
pub(super) fn run_reconcile(path: &Path, full: bool, mut eopts: EngineOptions) -> Result<ExitCode> {
    // `--full` does its own pass: the catch-up would only do part of it first.
    eopts.catch_up = !full;
    let t0 = Instant::now();
    let mut out = io::stdout();
    let mut reopen = super::Reopen::default();
    let (opened, attached, stats) = loop {
        let mut opened = super::open_tree_again(path, eopts.clone(), true, &mut reopen)?;
        // Attached to a live owner, the owner re-reads (there was no catch-up here to report).
        let pid = super::attached_pid(&opened.engine);
        if !(full
            || pid.is_some()
            || opened.catch_up.is_none() && opened.engine.origin.from_cache())
        {
            let stats = opened.catch_up.take();
            break (opened, false, stats);
        }
        if let Some(pid) = pid {
            eprintln!("dtui: the owner, dtui {pid}, re-reads the tree");
        }
        match opened.engine.reconcile_and_wait(&opened.events, true) {
            Ok(Reconciled::Done(s)) => break (opened, pid.is_some(), Some(s)),
            Ok(Reconciled::Stopped) => {
                opened.finish();
                anyhow::bail!("the engine stopped before the re-read ended");
            }
            Ok(Reconciled::Detached(owner)) => {
                opened.finish();
                reopen.after(&mut eopts, pid, owner)?;
            }
            Err(e) => {
                opened.finish();
                anyhow::bail!("{e}");
            }
        }
    };
    // Where the tree answered from: the last opening's (after an owner went away, not the
    // first's).
    writeln!(out, "cache {}", opened.engine.origin)?;
    let t = tree::read(&opened.engine.tree);
    let totals = t.totals(t.root());
    let errors = t.census().unreadable;
    drop(t);
    match stats {
        Some(s) => writeln!(
            out,
            "{}: {} added, {} removed, {} resized, {} replaced; {} directories read, {} kept; {} errors",
            if full {
                "full reconcile"
            } else if attached {
                "reconcile by the owner"
            } else {
                "catch-up"
            },
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
