//! `dtui cache list | clear`: the caches on this machine, and removing them.

use std::io::{self, IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use super::CacheCommand;
use crate::cache::{self};
use crate::path::display_name;

pub(super) fn run_cache(command: CacheCommand) -> Result<ExitCode> {
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
        CacheCommand::List {
            cache_dir,
            cache_total_max,
        } => {
            let budget = super::args::total_budget(cache_total_max)?;
            list_caches(&dir(cache_dir)?, budget)
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

/// `dtui cache list`: a row per cache in `dir`, then their TOTAL against `budget`.
fn list_caches(dir: &Path, budget: crate::store::TotalBudget) -> Result<ExitCode> {
    let shown = |p: &Path| display_name(p.as_os_str().as_bytes());
    let dir = dir.to_path_buf();
    let caches = cache::list(&dir).with_context(|| format!("reading {}", shown(&dir)))?;
    let mut out = io::stdout().lock();
    if caches.is_empty() {
        writeln!(out, "no caches in {}", shown(&dir))?;
        return Ok(ExitCode::SUCCESS);
    }
    let dash = || "-".to_owned();
    let mut rows: Vec<[String; 5]> = caches
        .iter()
        .map(|c| {
            [
                crate::format::size(c.bytes),
                c.entries.to_string(),
                c.age.map_or_else(dash, format_age),
                c.idle().map_or_else(dash, format_age),
                format!("{}{}", shown(&c.root), if c.gone { "  (gone)" } else { "" }),
            ]
        })
        .collect();
    let total: u64 = caches.iter().map(|c| c.bytes).sum();
    let s = if caches.len() == 1 { "" } else { "s" };
    rows.push([
        crate::format::size(total),
        caches.iter().map(|c| c.entries).sum::<u64>().to_string(),
        dash(),
        dash(),
        format!(
            "TOTAL of {} cache{s} in {}; budget {budget} ($DISKTRACKER_CACHE_TOTAL_MAX)",
            caches.len(),
            shown(&dir)
        ),
    ]);
    let header = ["SIZE", "ENTRIES", "AGE", "USED", "ROOT"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2, w3) = (width(0), width(1), width(2), width(3));
    for r in std::iter::once(header.map(String::from)).chain(rows) {
        writeln!(
            out,
            "{:>w0$}  {:>w1$}  {:>w2$}  {:>w3$}  {}",
            r[0], r[1], r[2], r[3], r[4]
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn format_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}
