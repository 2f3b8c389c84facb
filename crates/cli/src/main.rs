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

/// Gives the whole process one glibc malloc arena instead of one per thread that allocates.
///
/// The runtime's threads hand records to each other (a page is parsed on one, written on
/// another), and with an arena each the memory freed on one thread stays reserved for the
/// next allocation on that thread: the peak RSS of the wide-table bench was 1.5 to 2 MiB
/// higher that way, the rate the same (docs/performance.md, "One malloc arena"). A
/// `MALLOC_ARENA_MAX` set in the environment is left to decide.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn one_malloc_arena() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: mallopt takes no pointer and only sets one of glibc's allocator tunables; it
    // runs first thing in main, before any other thread of the process exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}

use clap::Parser;

fn main() -> ExitCode {
    one_malloc_arena();
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
