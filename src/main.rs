//! `dtui`: parse the command line, run the command, report an error as one clear line.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = disktracker::cli::Cli::parse();
    match disktracker::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dtui: {}", disktracker::cli::error_line(&e));
            ExitCode::FAILURE
        }
    }
}
