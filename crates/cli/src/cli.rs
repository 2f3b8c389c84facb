//! The command line: every command, flag and help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Declarative data pipelines with incremental sync that survives restarts.
#[derive(Debug, Parser)]
#[command(
    name = "cannectors",
    version,
    after_help = "Examples:\n  \
        cannectors validate pipelines/*.yaml\n  \
        cannectors run pipelines/events.yaml --once\n  \
        cannectors state show pipelines/events.yaml\n  \
        cannectors state set pipelines/events.yaml --timestamp 2026-01-01T00:00:00Z\n  \
        cannectors schema > pipeline.schema.json\n\n\
        Exit codes: 0 success, 1 validation error, 2 parse error, 3 runtime error."
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) log: LogArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Logging flags, valid before or after the command.
#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// More detail in the logs (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Only warnings and errors in the logs.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    pub(crate) log_format: LogFormat,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human on a terminal, human without colours elsewhere.
    Auto,
    /// Human-readable lines.
    Human,
    /// One JSON object a line.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Parse and check pipeline files; non-zero on any error.
    #[command(after_help = "Examples:\n  cannectors validate events.yaml\n  \
        cannectors validate pipelines/*.yaml\n\n\
        Exit codes: 0 valid, 1 validation error, 2 parse error.")]
    Validate {
        /// Pipeline files (YAML or JSON).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a pipeline: once, or on its schedule until SIGINT/SIGTERM.
    #[command(after_help = "Examples:\n  cannectors run events.yaml --once\n  \
        cannectors run events.yaml --dry-run\n\n\
        A pipeline without a schedule, or with --once, runs once and exits.\n\
        Exit codes: 0 success, 1 validation error, 2 parse error, 3 runtime error.")]
    Run {
        /// The pipeline file.
        file: PathBuf,
        /// Run once and exit, even if the pipeline has a schedule.
        #[arg(long)]
        once: bool,
        /// Fetch and show what would be sent (on standard output); send nothing, commit nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Inspect or change the cursor state of a pipeline.
    #[command(subcommand)]
    State(StateCommand),
    /// Print the JSON Schema of the pipeline file (for editor autocompletion).
    Schema,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StateCommand {
    /// Print the state and the absolute path of its file.
    #[command(after_help = "Example:\n  cannectors state show events.yaml")]
    Show {
        /// The pipeline file.
        file: PathBuf,
    },
    /// Print the absolute path of the state file.
    Path {
        /// The pipeline file.
        file: PathBuf,
    },
    /// Remove the state: the next run starts from scratch.
    #[command(after_help = "Example:\n  cannectors state reset events.yaml")]
    Reset {
        /// The pipeline file.
        file: PathBuf,
    },
    /// Seed or move the cursors (validated, written atomically under the run lock).
    #[command(after_help = "Examples:\n  \
        cannectors state set events.yaml --timestamp 2026-01-01T00:00:00Z\n  \
        cannectors state set events.yaml --timestamp 2026-01-01T00:00:00Z --id 1200\n  \
        cannectors state set events.yaml --offset 5000")]
    Set {
        /// The pipeline file.
        file: PathBuf,
        /// Timestamp cursor, RFC 3339 (e.g. 2026-01-01T00:00:00Z).
        #[arg(long)]
        timestamp: Option<String>,
        /// Id cursor, an integer or a string.
        #[arg(long)]
        id: Option<String>,
        /// Offset cursor, a non-negative integer.
        #[arg(long)]
        offset: Option<String>,
    },
}
