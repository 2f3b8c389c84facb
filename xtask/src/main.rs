//! Project automation, in plain Rust so that it runs wherever cargo does.
//!
//! - `cargo xtask ci`: every check a change must pass (format, lints, tests, dependency policy).
//! - `cargo xtask bench <http|db|idle>`: the end-to-end benchmarks recorded in docs/performance.md.
//! - `cargo xtask quickstart`: the README's quickstart, on a copy of its database.
//! - `cargo xtask pg -- <command>`: runs a command against a throwaway PostgreSQL cluster.

mod postgres;
mod quickstart;
mod setup;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod bench;
mod bench_db;
mod bench_idle;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(&args[1..]),
        Some("quickstart") => quickstart::quickstart(),
        Some("pg") => postgres::run_with_cluster(strip_separator(&args[1..])),
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
        "cargo xtask <task>

tasks:
  ci                 every check: cargo fmt --check, clippy -D warnings, cargo doc, the whole
                     test suite (with a throwaway PostgreSQL), cargo deny; installs cargo-deny
                     and PostgreSQL first when they are missing
  bench http [RUNS] [WORKLOAD...]
                     end-to-end HTTP benchmark (release build), RUNS per size (default 3);
                     WORKLOADs (plain, lookback, filtered, gathered, per-page, raw) limit it to those
  bench db [RUNS]    end-to-end PostgreSQL benchmark against psql (release build)
  bench idle [RUNS]  nothing new: one run --once, and 100 pipelines in one run DIR (release build)
  quickstart         runs the quickstart pipeline on a copy of its database
                     (examples/quickstart/out/events.db)
  pg -- <command>    runs a command with a throwaway PostgreSQL cluster
  help               this text"
    );
}

/// The arguments after an optional leading `--`.
fn strip_separator(args: &[String]) -> &[String] {
    match args.first().map(String::as_str) {
        Some("--") => &args[1..],
        _ => args,
    }
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
    // Install what is missing first, so that a fresh machine fails early or not at all.
    setup::ensure_cargo_deny()?;
    setup::ensure_postgres()?;

    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run("format (cargo fmt --check)", fmt)?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    run("lints (cargo clippy -D warnings)", clippy)?;

    let mut doc = cargo();
    doc.args(["doc", "--workspace", "--no-deps", "--locked"])
        .env("RUSTDOCFLAGS", "-D warnings");
    run(
        "documentation (cargo doc --no-deps, warnings are errors)",
        doc,
    )?;

    let mut test = cargo();
    test.args(["test", "--workspace", "--locked"]);
    // The database tests need a real PostgreSQL: a throwaway cluster lives for this step only,
    // and its absence fails the tests rather than skipping them.
    let cluster = postgres::attach(&mut test)?;
    let tested = run(
        "tests (cargo test --workspace, with a throwaway PostgreSQL)",
        test,
    );
    drop(cluster);
    tested?;

    let mut deny = cargo();
    deny.args(["deny", "--locked", "check", "licenses", "bans", "sources"]);
    run("dependency policy (cargo deny)", deny)?;

    eprintln!("\nci: all checks passed");
    Ok(())
}

fn bench(args: &[String]) -> Result<(), String> {
    let runs = match args.get(1) {
        Some(n) => n
            .parse()
            .map_err(|_| format!("RUNS must be a number, not `{n}`"))?,
        None => 3,
    };
    // CANNECTORS_BENCH_BINARY measures a binary built elsewhere (to compare two builds).
    let binary = match env::var_os("CANNECTORS_BENCH_BINARY") {
        Some(path) => PathBuf::from(path),
        None => {
            let mut build = cargo();
            build.args(["build", "--release", "--locked", "-p", "cannectors-cli"]);
            run("release build", build)?;
            let target = env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace_root().join("target"));
            target.join("release/cannectors")
        }
    };
    match args.first().map(String::as_str) {
        Some("http") => bench::http(&binary, runs, args.get(2..).unwrap_or_default()),
        Some("db") => bench_db::db(&binary, runs),
        Some("idle") => bench_idle::idle(&binary, runs),
        Some(other) => Err(format!(
            "unknown benchmark `{other}`; try `cargo xtask bench http`, `db` or `idle`"
        )),
        None => Err("which benchmark? `cargo xtask bench http`, `db` or `idle`".to_owned()),
    }
}
