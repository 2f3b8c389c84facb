//! Project automation, in plain Rust so that it runs wherever cargo does.
//!
//! - `cargo xtask ci`: every check a change must pass (format, lints, tests, dependency policy).
//! - `cargo xtask bench <http|db>`: the end-to-end benchmarks recorded in docs/performance.md.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("help") | Some("--help") | Some("-h") | None => {
            print_help();
            Ok(())
        }
        Some(other) => Err(format!("unknown task `{other}`; run `cargo xtask help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn print_help() {
    println!(
        "cargo xtask <task>\n\n\
         tasks:\n  \
         ci      cargo fmt --check, clippy -D warnings, the whole test suite, cargo deny\n  \
         help    this text"
    );
}

/// The root of the workspace (the parent of this crate's directory).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut command = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command.current_dir(workspace_root());
    command
}

fn run(step: &str, mut command: Command) -> Result<(), String> {
    eprintln!("\n==> {step}");
    let status = command
        .status()
        .map_err(|e| format!("{step}: cannot start {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed ({status})"))
    }
}

fn ci() -> Result<(), String> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run("format (cargo fmt --check)", fmt)?;

    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]);
    run("lints (cargo clippy -D warnings)", clippy)?;

    let mut test = cargo();
    test.args(["test", "--workspace", "--locked"]);
    run("tests (cargo test --workspace)", test)?;

    let mut deny = cargo();
    deny.args(["deny", "--locked", "check", "licenses", "bans", "sources"]);
    run("dependency policy (cargo deny)", deny)?;

    eprintln!("\nci: all checks passed");
    Ok(())
}
