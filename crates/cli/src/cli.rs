//! The command line: every command, flag and help text.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Declarative data pipelines with incremental sync that survives restarts.
#[derive(Debug, Parser)]
#[command(
    name = "cannectors",
    version,
    after_help = "Examples:\n  \
        cannectors validate pipelines/*.yaml\n  \
        cannectors run pipelines/events.yaml --once\n  \
        cannectors run pipelines/ --metrics-addr 127.0.0.1:9464\n  \
        cannectors schedule pipelines/events.yaml -n 10\n  \
        cannectors state show pipelines/events.yaml\n  \
        cannectors state set pipelines/events.yaml --timestamp 2026-01-01T00:00:00Z\n  \
        cannectors schema > pipeline.schema.json\n  \
        cannectors backfill pipelines/events.yaml --from 2026-01-01T00:00:00Z\n\n\
        Exit codes: 0 success, 1 a pipeline file is not valid, 2 a file is not YAML or JSON\n\
        (or cannot be read), 3 runtime error."
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
        Every problem of a file is reported in one pass, each as FILE:LINE:COLUMN: KEY.PATH:\n\
        what is wrong: unknown keys (with the key most likely meant), missing keys, wrong\n\
        types and values that break a rule.\n\n\
        Exit codes: 0 every file is valid, 1 a file is not a valid pipeline, 2 a file is not\n\
        YAML or JSON (or cannot be read). With several files, the highest code.")]
    Validate {
        /// Pipeline files (YAML or JSON).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a pipeline, or every pipeline of a directory: once, or on their schedules until
    /// SIGINT/SIGTERM.
    #[command(after_help = "Examples:\n  cannectors run events.yaml --once\n  \
        cannectors run events.yaml --dry-run\n  \
        cannectors run /etc/cannectors/pipelines --metrics-addr 127.0.0.1:9464\n\n\
        A pipeline with a schedule runs on it until SIGINT or SIGTERM; one without a schedule,\n\
        or any pipeline with --once or --dry-run, runs once and the program exits.\n\
        With a directory, every *.yaml, *.yml and *.json file in it is a pipeline, each on its\n\
        own schedule; those without a schedule run once at start.\n\
        On SIGINT/SIGTERM no new run starts and runs in progress stop once their batch in\n\
        flight is committed (at most --shutdown-timeout); a second signal stops at once.\n\n\
        Exit codes: 0 success or stopped by a signal, 1 a pipeline file is not valid, 2 a file\n\
        is not YAML or JSON (or cannot be read), 3 runtime error (a run that runs once failed).")]
    Run(RunArgs),
    /// Print the next fire times of a pipeline's schedule.
    #[command(after_help = "Examples:\n  cannectors schedule events.yaml\n  \
        cannectors schedule events.yaml -n 10 --after 2026-03-28T00:00:00Z")]
    Schedule(ScheduleArgs),
    /// Inspect or change the cursor state of a pipeline.
    #[command(subcommand)]
    State(StateCommand),
    /// Print the JSON Schema of the pipeline file (for editor autocompletion).
    Schema,
    /// Run a pipeline once over a past range, with progress of its own beside the state;
    /// the pipeline's cursors do not move.
    #[command(after_help = "Examples:\n  \
        cannectors backfill events.yaml --from 2026-01-01T00:00:00Z --to 2026-02-01T00:00:00Z\n  \
        cannectors backfill events.yaml --from 2026-01-01T00:00:00Z\n  \
        cannectors backfill events.yaml --from 2026-01-15T00:00:00Z --restart\n\n\
        The range goes out as the run's bounds: --from as the timestamp cursor (its queryParam,\n\
        {{state.timestamp}}, the SQL parameter state.timestamp) and {{window.start}}, --to as\n\
        {{window.end}}, untilParam and the SQL parameter window.end; records after --to are held\n\
        back. Without --to: the pipeline's committed position (its timestamp, or with `window`\n\
        the end of its last window), else now - statePersistence.delay.\n\
        The progress is kept in the backfill section of the state file (cannectors state show);\n\
        a backfill that was interrupted is resumed by the same command. While it is unfinished,\n\
        a backfill of another range is refused unless --restart. It takes the run lock.\n\
        SIGINT/SIGTERM stop it after the batch in flight, to be resumed; a second signal at once.\n\n\
        Exit codes: 0 the range was read, 1 the pipeline file or --from/--to is not valid, 2 a\n\
        file is not YAML or JSON, 3 runtime error.")]
    Backfill(BackfillArgs),
}

/// Arguments of `cannectors backfill`.
#[derive(Debug, Args)]
pub(crate) struct BackfillArgs {
    /// The pipeline file.
    pub(crate) file: PathBuf,
    /// The start of the range, RFC 3339 (e.g. 2026-01-01T00:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub(crate) from: String,
    /// The end of the range, RFC 3339; default: the pipeline's committed position.
    #[arg(long, value_name = "TIME")]
    pub(crate) to: Option<String>,
    /// Drop an unfinished backfill of another range and start this one.
    #[arg(long)]
    pub(crate) restart: bool,
}

/// Arguments of `cannectors run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// A pipeline file, or a directory of pipeline files.
    #[arg(value_name = "FILE|DIR")]
    pub(crate) target: PathBuf,
    /// Run once and exit, even pipelines that have a schedule.
    #[arg(long)]
    pub(crate) once: bool,
    /// Fetch and show what would be sent (on standard output); send nothing, commit nothing.
    /// Runs once.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// After SIGINT/SIGTERM, how long runs in progress get to commit their batch in flight
    /// (e.g. 30s, 2m, 500ms); then the program exits without committing it.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub(crate) shutdown_timeout: Duration,
    /// Serve Prometheus metrics on http://ADDR/metrics and a health check on /healthz
    /// (e.g. 127.0.0.1:9464; port 0 picks a free port, logged at start).
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics_addr: Option<SocketAddr>,
}

/// Arguments of `cannectors schedule`.
#[derive(Debug, Args)]
pub(crate) struct ScheduleArgs {
    /// The pipeline file.
    pub(crate) file: PathBuf,
    /// How many fire times to print.
    #[arg(short = 'n', long = "count", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) count: u32,
    /// Start from this instant (RFC 3339, e.g. 2026-03-28T00:00:00Z) instead of now.
    #[arg(long, value_name = "TIME", value_parser = parse_instant)]
    pub(crate) after: Option<DateTime<Utc>>,
}

/// `30s`, `2m`, `500ms`, `1h`, or a number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let hint = "write a whole number with a unit: 500ms, 30s, 2m or 1h";
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; {hint}"))?;
    let millis = match unit {
        "ms" => Some(number),
        "" | "s" => number.checked_mul(1_000),
        "m" => number.checked_mul(60_000),
        "h" => number.checked_mul(3_600_000),
        _ => return Err(format!("`{text}` has an unknown unit `{unit}`; {hint}")),
    };
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too long a duration"))
}

pub(crate) fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|instant| instant.with_timezone(&Utc))
        .map_err(|error| {
            format!("`{text}` is not an RFC 3339 time ({error}); write e.g. 2026-03-28T00:00:00Z")
        })
}

#[derive(Debug, Subcommand)]
pub(crate) enum StateCommand {
    /// Print the state and where it is kept: the absolute path of its file, or the table of
    /// the PostgreSQL store with the pipeline's lease (owner, expiry, epoch).
    #[command(after_help = "Example:\n  cannectors state show events.yaml")]
    Show {
        /// The pipeline file.
        file: PathBuf,
    },
    /// Print where the state is kept: the absolute path of the state file, or the table of the
    /// PostgreSQL store.
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
    /// Copy a pipeline's state from its state file into the PostgreSQL store. A state the
    /// store already holds for the pipeline is replaced only with --force; the file is left
    /// as it was.
    #[command(after_help = "Examples:\n  \
        cannectors state migrate events.yaml --to \"$STATE_DATABASE_URL\"\n  \
        cannectors state migrate events.yaml --to postgres://app@db/app --from-dir ./state")]
    Migrate {
        /// The pipeline file.
        file: PathBuf,
        /// The PostgreSQL database of the store (postgres://user:password@host:5432/database).
        #[arg(long, value_name = "URL")]
        to: String,
        /// The directory of the state file (default: the pipeline's storagePath, or
        /// ./.cannectors-state).
        #[arg(long, value_name = "DIR")]
        from_dir: Option<PathBuf>,
        /// Replace a different state the store already holds for the pipeline.
        #[arg(long)]
        force: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_or_mean_seconds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(
            parse_duration("10 minutes").unwrap_err(),
            "`10 minutes` has an unknown unit ` minutes`; write a whole number with a unit: \
             500ms, 30s, 2m or 1h"
        );
        assert_eq!(
            parse_duration("soon").unwrap_err(),
            "`soon` is not a duration; write a whole number with a unit: 500ms, 30s, 2m or 1h"
        );
    }

    #[test]
    fn instants_are_rfc_3339_in_any_offset() {
        assert_eq!(
            parse_instant("2026-03-28T01:00:00+01:00")
                .unwrap()
                .to_rfc3339(),
            "2026-03-28T00:00:00+00:00"
        );
        assert!(
            parse_instant("yesterday")
                .unwrap_err()
                .starts_with("`yesterday` is not an RFC 3339 time")
        );
    }
}
