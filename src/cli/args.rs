//! The command line as clap parses it: the commands, their flags and what they default to.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use super::UsageError;
use super::ncdu::NcduArgs;
use crate::cache::CacheOptions;
use crate::engine::EngineOptions;
use crate::scan::{self, Excludes, ScanOptions};

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
    /// ncdu's binary export: dtui writes ncdu's JSON format instead, as -o (ncdu -f reads it)
    #[arg(
        short = 'O',
        value_name = "FILE",
        hide = true,
        conflicts_with_all = ["file", "output"]
    )]
    pub binary_output: Option<PathBuf>,
    /// Print the version (ncdu's -v; -V and --version too)
    #[arg(short = 'v', action = clap::ArgAction::Version, hide = true)]
    pub ncdu_version: (),
    /// Disable everything that writes (the shell, delete, the trash); ncdu's `-rr` too
    #[arg(short = 'r', long, action = clap::ArgAction::Count)]
    pub read_only: u8,
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
    #[command(flatten)]
    pub ncdu: NcduArgs,
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
        /// With a cache: report the tree as it was saved, without verifying it against the disk
        #[arg(long)]
        no_catch_up: bool,
        #[command(flatten)]
        scan: ScanArgs,
        #[command(flatten)]
        cache: CacheArgs,
        /// ncdu's flags (`--apparent-size` ranks by apparent size here)
        #[command(flatten)]
        ncdu: NcduArgs,
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
    /// Keep directories live without a terminal (each watched, its cache saved and its size
    /// history recorded) until SIGTERM; with --listen, serve their sizes as OpenMetrics
    Serve(super::serve::ServeArgs),
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
    /// Show every cache with its root, size, entries (what the browser's Items counts), age
    /// and last use, then their total and the budget they share
    List {
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// The budget to show instead of $DISKTRACKER_CACHE_TOTAL_MAX's (default 1G)
        #[arg(long, value_name = "SIZE")]
        cache_total_max: Option<crate::store::TotalBudget>,
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
    #[arg(
        short = 'x',
        long = "one-file-system",
        overrides_with = "cross_file_system"
    )]
    pub one_file_system: bool,
    /// Cross into other filesystems (the default; undoes an earlier -x)
    #[arg(long, hide = true, overrides_with = "one_file_system")]
    pub cross_file_system: bool,
    /// Exclude entries matching a glob (repeatable); a pattern with '/' matches the full path
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Exclude the patterns in FILE, one per line, as --exclude does (repeatable)
    #[arg(short = 'X', long, value_name = "FILE")]
    pub exclude_from: Vec<PathBuf>,
    /// Exclude directories holding a valid CACHEDIR.TAG (listed, marked <, not counted)
    #[arg(long, overrides_with = "include_caches")]
    pub exclude_caches: bool,
    #[arg(long, hide = true, overrides_with = "exclude_caches")]
    pub include_caches: bool,
    /// Exclude directories on kernel filesystems: proc, sysfs, cgroup, debugfs, tracefs...
    #[arg(long, overrides_with = "include_kernfs")]
    pub exclude_kernfs: bool,
    #[arg(long, hide = true, overrides_with = "exclude_kernfs")]
    pub include_kernfs: bool,
    /// ncdu's -L: accepted with a note; dtui never follows symlinks
    #[arg(short = 'L', long, hide = true, overrides_with = "no_follow_symlinks")]
    pub follow_symlinks: bool,
    #[arg(long, hide = true, overrides_with = "follow_symlinks")]
    pub no_follow_symlinks: bool,
    /// Show sizes in powers of 1000 (kB, MB) instead of 1024 (KiB, MiB)
    #[arg(long, overrides_with = "no_si")]
    pub si: bool,
    #[arg(long, hide = true, overrides_with = "si")]
    pub no_si: bool,
}

impl ScanArgs {
    pub fn options(&self) -> Result<ScanOptions> {
        let mut patterns = self.exclude.clone();
        for file in &self.exclude_from {
            patterns.extend(read_patterns(file)?);
        }
        Ok(ScanOptions {
            threads: self
                .threads
                .unwrap_or_else(scan::default_threads)
                .clamp(1, scan::MAX_THREADS),
            one_filesystem: self.one_file_system,
            excludes: Excludes::new(&patterns).map_err(|e| UsageError(e.to_string()))?,
            exclude_caches: self.exclude_caches,
            exclude_kernfs: self.exclude_kernfs,
        })
    }

    /// One line per flag accepted but not acted on.
    #[must_use]
    pub fn notes(&self) -> Vec<String> {
        if self.follow_symlinks {
            vec!["-L: ignored (dtui never follows symlinks, so that it stays inside the tree it shows)".into()]
        } else {
            Vec::new()
        }
    }
}

/// `-X FILE`: one pattern per line, as ncdu reads it (empty lines skipped).
fn read_patterns(file: &std::path::Path) -> Result<Vec<String>> {
    use anyhow::Context;
    let shown = crate::path::display_path(file);
    let text = std::fs::read(file).with_context(|| format!("reading exclude file {shown}"))?;
    let text = String::from_utf8(text)
        .map_err(|_| UsageError(format!("exclude file {shown}: patterns must be UTF-8")))?;
    Ok(text
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
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
    /// the tree's arena, at least 256 MiB. All the caches together may take
    /// $DISKTRACKER_CACHE_TOTAL_MAX (default 1G; `none`: no limit): past it, other roots'
    /// caches are removed, least recently used first
    #[arg(long, value_name = "SIZE", default_value = "auto")]
    pub cache_max_bytes: crate::store::CacheBudget,
}

/// What all the caches of a directory may take together (a size, or `none`). An
/// environment variable rather than a flag of every command: it is the user's setting for
/// all of them, as `$DISKTRACKER_WATCH_BACKEND` is.
pub const TOTAL_MAX_ENV: &str = "DISKTRACKER_CACHE_TOTAL_MAX";

/// `cache list --cache-total-max` if given, else `$DISKTRACKER_CACHE_TOTAL_MAX`, else 1 GiB.
pub fn total_budget(flag: Option<crate::store::TotalBudget>) -> Result<crate::store::TotalBudget> {
    if let Some(b) = flag {
        return Ok(b);
    }
    match std::env::var(TOTAL_MAX_ENV) {
        Ok(v) if !v.is_empty() => Ok(v
            .parse()
            .map_err(|e| UsageError(format!("${TOTAL_MAX_ENV}: {e}")))?),
        _ => Ok(crate::store::TotalBudget::default()),
    }
}

impl CacheArgs {
    pub(super) fn options(&self) -> CacheOptions {
        CacheOptions {
            dir: self.cache_dir.clone(),
            disabled: self.no_cache,
        }
    }

    /// The engine's options with these and `scan`'s.
    pub(super) fn engine(&self, scan: &ScanArgs) -> Result<EngineOptions> {
        let mut opts = EngineOptions::new(self.options(), scan.options()?)
            .with_cache_budget(self.cache_max_bytes);
        opts.cache_total = total_budget(None)?;
        Ok(opts)
    }
}
