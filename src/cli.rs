//! The command line: `dtui scan`, `dtui export`. Parsing is clap (derive); each command returns
//! an exit status, errors go back to `main` with their context for one clear line on stderr.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use humansize::{BINARY, format_size};

use crate::export;
use crate::scan::{self, Excludes, Progress, ScanOptions, ScanStats};
use crate::tree::{Kind, NodeId, Tree, flags};

/// Exit status when the scan finished but some entries could not be read.
pub const EXIT_PARTIAL: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "dtui",
    version,
    about = "An ncdu-style disk usage explorer that never goes stale",
    after_help = "Exit status: 0 ok, 1 error, 2 bad usage, 3 finished but some entries could not be read."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan a directory and print its totals and largest entries
    Scan {
        /// Directory to scan
        path: PathBuf,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        /// How many of the largest entries to list
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// Rank entries by apparent size instead of disk usage
        #[arg(long)]
        apparent_size: bool,
        #[command(flatten)]
        scan: ScanArgs,
    },
    /// Scan a directory and write it in ncdu's JSON format (open it with `ncdu -f FILE`)
    Export {
        /// Directory to scan
        path: PathBuf,
        /// Output file (`-` for stdout)
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        scan: ScanArgs,
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
            threads: self.threads.unwrap_or_else(scan::default_threads).max(1),
            one_filesystem: self.one_file_system,
            excludes: Excludes::new(&self.exclude)?,
        })
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Scan {
            path,
            json,
            top,
            apparent_size,
            scan,
        } => {
            let (tree, stats) = scan_with_progress(&path, &scan.options()?, !json)?;
            let report = Report {
                tree: &tree,
                stats: &stats,
                top,
                apparent: apparent_size,
            };
            let mut out = io::stdout().lock();
            if json {
                report.write_json(&mut out)?;
            } else {
                report.write_text(&mut out)?;
            }
            out.flush()?;
            Ok(status(&stats))
        }
        Command::Export { path, output, scan } => {
            let (tree, stats) = scan_with_progress(&path, &scan.options()?, true)?;
            write_export(&tree, &output)?;
            if stats.errors > 0 {
                eprintln!(
                    "dtui: {} entries could not be read; they are marked read_error in the export",
                    stats.errors
                );
            }
            Ok(status(&stats))
        }
    }
}

fn status(stats: &ScanStats) -> ExitCode {
    if stats.errors > 0 {
        ExitCode::from(EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    }
}

fn write_export(tree: &Tree, output: &Path) -> Result<()> {
    if output == Path::new("-") {
        let mut out = BufWriter::new(io::stdout().lock());
        return export::write_ncdu_json(tree, &mut out).context("writing the export to stdout");
    }
    // Written beside the target and renamed into place: a failed export leaves no half file.
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    let mut out = BufWriter::new(tmp);
    export::write_ncdu_json(tree, &mut out)
        .and_then(|()| out.get_ref().as_file().sync_all())
        .with_context(|| format!("writing {}", output.display()))?;
    let tmp = out
        .into_inner()
        .map_err(io::IntoInnerError::into_error)
        .with_context(|| format!("writing {}", output.display()))?;
    tmp.persist(output)
        .with_context(|| format!("writing {}", output.display()))?;
    Ok(())
}

/// Scans `path`, drawing a one-line progress indicator on stderr when it is a terminal.
fn scan_with_progress(path: &Path, opts: &ScanOptions, show: bool) -> Result<(Tree, ScanStats)> {
    let progress = Progress::new();
    let done = AtomicBool::new(false);
    let show = show && io::stderr().is_terminal();
    std::thread::scope(|s| {
        if show {
            s.spawn(|| {
                let mut shown = false;
                while !done.load(Ordering::Relaxed) {
                    std::thread::park_timeout(Duration::from_millis(200));
                    if done.load(Ordering::Relaxed) {
                        break;
                    }
                    let p = progress.snapshot();
                    eprint!(
                        "\r\x1b[Kscanning: {} entries, {}, {} errors",
                        p.entries,
                        format_size(p.disk, BINARY),
                        p.errors
                    );
                    shown = true;
                }
                if shown {
                    eprint!("\r\x1b[K");
                }
            });
        }
        let result = scan::scan_path(path, opts, &progress);
        done.store(true, Ordering::Relaxed);
        result.with_context(|| format!("cannot scan {}", path.display()))
    })
}

struct Report<'a> {
    tree: &'a Tree,
    stats: &'a ScanStats,
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
        let s = self.stats;
        let secs = s.elapsed.as_secs_f64();
        writeln!(out, "{}", self.tree.root_path().display())?;
        writeln!(
            out,
            "  disk usage     {} ({} bytes)",
            format_size(t.disk, BINARY),
            t.disk
        )?;
        writeln!(
            out,
            "  apparent size  {} ({} bytes)",
            format_size(t.apparent, BINARY),
            t.apparent
        )?;
        writeln!(out, "  items          {}", t.items)?;
        writeln!(out, "  directories    {}", s.dirs)?;
        if s.errors > 0 {
            writeln!(
                out,
                "  errors         {} (unreadable entries are flagged; totals are partial)",
                s.errors
            )?;
        } else {
            writeln!(out, "  errors         0")?;
        }
        writeln!(
            out,
            "  elapsed        {secs:.3} s ({:.0} entries/s)",
            s.entries as f64 / secs.max(1e-9)
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
                format_size(self.size_of(id), BINARY),
            )?;
        }
        Ok(())
    }

    fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        let root = self.tree.root();
        let t = self.tree.totals(root);
        let s = self.stats;
        out.write_all(b"{\"root\":")?;
        export::write_json_string_lossy(self.tree.name(root), out)?;
        write!(
            out,
            ",\"disk\":{},\"apparent\":{},\"items\":{},\"dirs\":{},\"errors\":{},\"elapsed_ms\":{:.3},\"arena_bytes\":{},\"largest\":[",
            t.disk,
            t.apparent,
            t.items,
            s.dirs,
            s.errors,
            s.elapsed.as_secs_f64() * 1000.0,
            self.tree.arena().used_bytes(),
        )?;
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

/// ncdu's flag column for an entry (one character, space if none).
#[must_use]
pub fn flag_char(f: u8, kind: Kind) -> &'static str {
    if f & flags::READ_ERROR != 0 {
        "!"
    } else if f & flags::ERROR_BELOW != 0 {
        "."
    } else if f & flags::EXCLUDED != 0 {
        "<"
    } else if f & flags::OTHER_FS != 0 {
        ">"
    } else if kind == Kind::Symlink {
        "@"
    } else if f & flags::HARDLINK_DUP != 0 {
        "H"
    } else {
        " "
    }
}

/// A name for a terminal: invalid UTF-8 shown as U+FFFD, control characters escaped (`\n`), so
/// a hostile name cannot move the cursor or split a line.
#[must_use]
pub fn display_name(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}
