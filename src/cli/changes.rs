//! `dtui changes PATH [--since DURATION|last]`: the directories that grew or shrank the most,
//! against the size history in the cache, after a catch-up with the disk.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::{UsageError, open_tree, signed_size};
use crate::engine::EngineOptions;
use crate::history::{self, Change, HistoryError, Since};
use crate::path::display_name;
use crate::tree;

/// What `dtui changes` was asked.
pub struct ChangesArgs {
    pub since: Since,
    pub top: usize,
    pub apparent: bool,
}

pub fn run_changes(path: &Path, args: &ChangesArgs, opts: EngineOptions) -> Result<ExitCode> {
    if opts.cache.disabled {
        return Err(UsageError(
            "changes needs the cache: the size history is kept there (drop --no-cache)".into(),
        )
        .into());
    }
    let opened = open_tree(path, opts, true)?;
    let Some(source) = opened.engine.history.clone() else {
        opened.finish();
        anyhow::bail!("there is no usable cache, so no size history to compare with");
    };
    let baseline = match history::load_baseline(&source, args.since, history::now_ms()) {
        Ok(b) => b,
        Err(HistoryError::NoHistory) => {
            opened.finish();
            println!(
                "no size history before this run: this is the first with this cache; \
                 changes show from the next run on"
            );
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => {
            opened.finish();
            return Err(e.into());
        }
    };
    let written = {
        let t = tree::read(&opened.engine.tree);
        let rows = history::changed_dirs(&t, &baseline, args.apparent);
        let mut out = io::stdout().lock();
        write_rows(&mut out, &rows, args, &baseline)
    };
    opened.finish();
    written?;
    Ok(ExitCode::SUCCESS)
}

fn write_rows(
    out: &mut impl Write,
    rows: &[history::Changed],
    args: &ChangesArgs,
    baseline: &history::Baseline,
) -> io::Result<()> {
    if baseline.clamped {
        eprintln!(
            "dtui: note: the size history begins {} ago; changes are counted from there",
            history::short_duration(std::time::Duration::from_millis(
                u64::try_from(history::now_ms() - baseline.at_ms).unwrap_or(0)
            ))
        );
    }
    if rows.is_empty() {
        writeln!(out, "no changes {}", args.since)?;
        return out.flush();
    }
    let top = if args.top == 0 { usize::MAX } else { args.top };
    for r in rows.iter().take(top) {
        let mut name = if r.dir.is_empty() {
            ".".to_owned()
        } else {
            display_name(&r.dir)
        };
        name.push('/');
        let note = match r.change {
            Change::New => "  (new)",
            Change::Gone => "  (deleted)",
            Change::Bytes(_) => "",
        };
        writeln!(out, "{:>11}  {name}{note}", signed_size(r.bytes))?;
    }
    if rows.len() > top {
        writeln!(out, "… and {} more (--top 0 lists all)", rows.len() - top)?;
    }
    out.flush()
}
