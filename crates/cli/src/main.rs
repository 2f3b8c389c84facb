//! The `cannectors` command-line program: parses arguments, sets up logging, runs a command
//! and turns its outcome into an exit code.
//!
//! Exit codes: 0 success, 1 a pipeline file is not valid (every problem of it listed), 2 a file
//! is not YAML or JSON or cannot be read, 3 runtime error.

mod backfill_cmd;
mod cli;
mod commands;
mod logging;
mod run_cmd;
mod schedule_cmd;
mod state_cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(&cli.log);
    let outcome = commands::dispatch(cli.command);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("error: {}", logging::redact(&failure.message));
            }
            ExitCode::from(failure.code as u8)
        }
    }
}
