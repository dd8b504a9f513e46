//! `dtui`: parse the command line, run the command, report an error as one clear line.

use std::process::ExitCode;

use clap::Parser;

/// The system allocator, but a failed allocation ends dtui with one line and the terminal as it
/// was (see `disktracker::oom`).
#[global_allocator]
static ALLOCATOR: disktracker::oom::Allocator = disktracker::oom::Allocator;

fn main() -> ExitCode {
    let cli = disktracker::cli::Cli::parse();
    match disktracker::cli::run(cli) {
        Ok(code) => code,
        // Nobody is left to read a message (`dtui scan | head -1`): end as `seq | head` does.
        Err(e) if disktracker::cli::is_broken_pipe(&e) => {
            ExitCode::from(disktracker::cli::EXIT_BROKEN_PIPE)
        }
        Err(e) => {
            eprintln!("dtui: {}", disktracker::cli::error_line(&e));
            disktracker::cli::error_status(&e)
        }
    }
}
