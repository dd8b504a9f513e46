//! `dtui delete ROOT PATH...`: the browser's delete (or `--trash`) from the command line, for
//! scripts and tests: the tree of ROOT is opened through its engine (so its cache learns what
//! went), every PATH must be an entry of it (else nothing is deleted), what they hold is
//! planned (and asked about, unless `-y`), then one worker deletes what the plan holds and
//! errors are answered by `--on-error`.

use std::io::{BufRead, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::worker::{self, DeleteMsg, Job, Summary};
use super::{Decision, DeleteError, Listener, Plan, Progress, Target, short};
use crate::engine::{Engine, EngineOptions};
use crate::path::display_name;
use crate::tree;

/// What `--on-error` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnError {
    Abort,
    Ignore,
}

/// A user's path as an absolute path whose parent has no symlink left (the entry itself is
/// never resolved: a symlink is deleted as the link).
fn absolute(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => {
            std::fs::canonicalize(parent).map_or_else(|_| abs.clone(), |c| c.join(name))
        }
        _ => abs,
    }
}

pub struct Request<'a> {
    pub root: &'a Path,
    pub paths: &'a [PathBuf],
    pub trash: bool,
    pub yes: bool,
    pub on_error: OnError,
}

/// Runs `dtui delete`; exit 0 when everything went, 1 otherwise.
pub fn run(req: &Request<'_>, mut opts: EngineOptions) -> Result<ExitCode> {
    // Attached to the dtui that owns the root live, if one runs: it plans from the owner's
    // tree, and the owner hears what went (its tree, and every browser's, follows at once).
    if !opts.cache.disabled {
        opts.share = crate::engine::Share::Join;
    }
    // The delete plans from the tree as the first pass left it (a failure there is not
    // reported here); what opening the cache said is said (a browser holding the cache, for
    // one, means this runs without it). The receiver lives as long as the engine.
    let (engine, _rx, _) = crate::cli::open_first_pass(
        req.root,
        &mut opts,
        false,
        &mut crate::cli::Reopen::default(),
    )?;
    let outcome = delete_with(&engine, req);
    for m in engine.shutdown().messages() {
        eprintln!("dtui: {m}");
    }
    outcome
}

/// The entries of the tree the user named; any path outside the root refuses them all.
fn targets_of(engine: &Engine, paths: &[PathBuf]) -> Result<Vec<Target>> {
    let root = engine.root_dir.path.clone();
    let t = tree::read(&engine.tree);
    let mut targets = Vec::new();
    for p in paths {
        let abs = absolute(p);
        let shown = display_name(abs.as_os_str().as_bytes());
        if let Err(e) = super::components(&root, &abs) {
            bail!("{e} (nothing was deleted)");
        }
        let Some(id) = t.lookup(&abs) else {
            bail!("{shown}: not in the tree of the root (nothing was deleted)");
        };
        targets.push(Target::of(&t, id));
    }
    Ok(super::outermost(targets))
}

/// Planning asks nothing (it has no errors to ask about).
struct Quiet;

impl Listener for Quiet {
    fn failed(&mut self, _: &DeleteError) -> Decision {
        Decision::Abort
    }
}

/// Says what the plan counted on the disk, or could not count.
fn tell_plan(plan: &Plan) {
    for (p, n) in &plan.counted {
        eprintln!(
            "dtui: {}: its contents are not in the tree (excluded, unread or changed), counted on the disk: {}",
            short(p),
            super::count(*n, "item", "items")
        );
    }
    for e in &plan.refused {
        eprintln!("dtui: {e} (left)");
    }
    for (p, why) in &plan.uncounted {
        eprintln!(
            "dtui: {}: its contents could not be counted ({why}); they stay",
            short(p)
        );
    }
    if let Some(kept) = super::plan::kept_note(plan) {
        eprintln!("dtui: {kept}");
    }
}

fn delete_with(engine: &Engine, req: &Request<'_>) -> Result<ExitCode> {
    let targets = targets_of(engine, req.paths)?;
    let mut plan = super::plan::plan(
        &engine.root_dir,
        Some(&engine.tree),
        targets,
        &Progress::default(),
        &mut Quiet,
    );
    tell_plan(&plan);
    // A refusal aborts the whole delete, as any error does, unless errors are to be ignored:
    // with `-y`, a script gets all of it or nothing.
    if plan.targets.is_empty() || !plan.refused.is_empty() && req.on_error == OnError::Abort {
        eprintln!("dtui: nothing was deleted");
        return Ok(ExitCode::FAILURE);
    }
    let verb = if req.trash {
        "move to the trash"
    } else {
        "delete"
    };
    if !req.yes {
        eprint!(
            "dtui: {verb} {} ({} items, {})? [y/N] ",
            names(&plan.targets),
            plan.items(),
            crate::format::size(plan.disk())
        );
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !line.trim().eq_ignore_ascii_case("y") {
            eprintln!("dtui: nothing was deleted");
            return Ok(ExitCode::FAILURE);
        }
    }
    let plan_refused = std::mem::take(&mut plan.refused);
    let job = if req.trash {
        Job::Trash(plan)
    } else {
        Job::Delete(plan)
    };
    let (tx, rx) = crossbeam_channel::unbounded();
    let w = worker::spawn(
        std::sync::Arc::clone(&engine.root_dir),
        Some(std::sync::Arc::clone(&engine.tree)),
        job,
        Some(engine.user_changes()),
        Box::new(move |m| {
            let _ = tx.send(m);
        }),
    )
    .context("starting the delete worker")?;
    // What was refused before asking is not gone: not a success.
    let mut ok = plan_refused.is_empty();
    loop {
        match rx.recv_timeout(Duration::from_secs(3600)) {
            Ok(DeleteMsg::Progress { .. } | DeleteMsg::Planned(_)) => {}
            Ok(DeleteMsg::Failed(e)) => {
                eprintln!("dtui: {e}");
                w.answer(match req.on_error {
                    OnError::Abort => Decision::Abort,
                    OnError::Ignore => Decision::Ignore,
                });
            }
            Ok(DeleteMsg::Changed(now)) => {
                for t in &now.targets {
                    eprintln!("dtui: {}", DeleteError::Changed(t.path.clone()));
                }
                for e in &now.refused {
                    eprintln!("dtui: {e} (changed on disk since it was shown)");
                }
                eprintln!("dtui: nothing was deleted");
                return Ok(ExitCode::FAILURE);
            }
            Ok(DeleteMsg::NoTrash { plan, why }) => {
                ok = false;
                eprintln!(
                    "dtui: not moved to a trash: {} ({why}); delete without --trash instead",
                    names(&plan.targets)
                );
            }
            Ok(DeleteMsg::Done(s)) => {
                ok &= report(&s, req.trash);
                break;
            }
            Err(_) => bail!("the delete worker stopped"),
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints how a job ended; false when something could not go.
fn report(s: &Summary, trash: bool) -> bool {
    let what = if trash { "trashed" } else { "deleted" };
    println!(
        "{what} {}, freed {}{}",
        super::count(s.items, "item", "items"),
        crate::format::size(s.bytes),
        if s.aborted { " (aborted)" } else { "" }
    );
    for t in &s.trashed {
        println!(
            "trash: {} -> {}",
            display_name(t.original.as_os_str().as_bytes()),
            display_name(t.file().as_os_str().as_bytes())
        );
    }
    if !s.failed.is_empty() {
        println!("could not delete {}:", s.failed.len());
        for f in &s.failed {
            println!("  {f}");
        }
    }
    if s.left > 0 {
        println!(
            "left {} (not what was confirmed):",
            super::count(s.left, "entry", "entries")
        );
        for f in &s.left_lines {
            println!("  {f}");
        }
        let more = s.left.saturating_sub(s.left_lines.len() as u64);
        if more > 0 {
            println!("  and {more} more");
        }
    }
    s.failed.is_empty() && s.left == 0
}

/// The first few names, escaped, and how many more.
#[must_use]
pub fn names(targets: &[Target]) -> String {
    let mut s: Vec<String> = targets
        .iter()
        .take(3)
        .map(|t| display_name(t.path.file_name().unwrap_or(t.path.as_os_str()).as_bytes()))
        .collect();
    if targets.len() > 3 {
        s.push(format!("and {} more", targets.len() - 3));
    }
    s.join(", ")
}
