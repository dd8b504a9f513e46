//! `dtui`: parse the command line, run the command, report an error as one clear line.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;

/// The system allocator, but a failed allocation ends dtui with one line and the terminal as it
/// was (see `disktracker::oom`).
#[global_allocator]
static ALLOCATOR: disktracker::oom::Allocator = disktracker::oom::Allocator;

fn main() -> ExitCode {
    disktracker::oom::fixed_mmap_threshold();
    let cli = disktracker::cli::Cli::parse();
    match disktracker::cli::run(cli) {
        Ok(code) => code,
        // Nobody is left to read a message (`dtui scan | head -1`): end as `seq | head` does.
        Err(e) if disktracker::cli::is_broken_pipe(&e) => {
            ExitCode::from(disktracker::cli::EXIT_BROKEN_PIPE)
        }
        Err(e) => {
            // Not `eprintln!`: with standard error gone (a terminal that hung up) that would
            // panic, and the status would say so instead of the error.
            let _ = writeln!(
                std::io::stderr(),
                "dtui: {}",
                disktracker::cli::error_line(&e)
            );
            disktracker::cli::error_status(&e)
        }
    }
}
