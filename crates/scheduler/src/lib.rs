//! The scheduler of cannectors: runs pipelines on their cron schedules, many in one process,
//! never two runs of one pipeline at a time, and stops on request without losing a batch.
//!
//! - [`Schedule`]: a 5- or 6-field cron expression in an IANA time zone; fire times come from
//!   the wall clock, each computed from the schedule, so they never drift.
//! - [`Scheduler`]: drives [`Job`]s (a loaded pipeline with its executor). Scheduled pipelines
//!   run on every tick; a tick that comes while the previous run is still going is skipped
//!   and counted; a failed run is logged and counted and the next tick tries again. Pipelines
//!   without a schedule run once, at start. Replicas sharing a store with leases run each tick
//!   once: the run takes the pipeline's lease for its tick, and the others count the tick as
//!   held.
//! - [`Shutdown`]: the first request lets the runs in progress commit their batch in flight
//!   and stop (bounded by [`SchedulerOptions::shutdown_timeout`]); a second stops at once.
//! - [`Metrics`]: runs by outcome, records, batches, durations and cursors per pipeline, and
//!   the lease as this process last read it, in the Prometheus text format.
//!
//! Signals, the HTTP endpoint for the metrics and the progress line belong to the program that
//! embeds the scheduler.
//!
//! ```
//! use cannectors_scheduler::{Ending, Job, Scheduler, SchedulerOptions, Shutdown};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let yaml = format!(
//!     "name: events\ninput: {{type: httpPolling, schedule: '*/10 * * * *', \
//!      timezone: Europe/Berlin, endpoint: 'http://127.0.0.1:9/events', \
//!      statePersistence: {{storagePath: '{}'}}}}\noutput: {{type: stdout}}\n",
//!     dir.path().display()
//! );
//! let loaded = cannectors_config::parse_str(&yaml, "events.yaml", &|_| None)?;
//! let job = Job::new(&loaded)?;
//! assert_eq!(job.schedule().unwrap().normalized(), "0 */10 * * * *");
//!
//! // The same name twice would share one state file.
//! let twice = vec![Job::new(&loaded)?, Job::new(&loaded)?];
//! let error = Scheduler::new(twice, SchedulerOptions::default()).unwrap_err();
//! assert!(error.to_string().starts_with("pipeline name `events` is used by both"));
//!
//! let scheduler = Scheduler::new(vec![job], SchedulerOptions::default())?;
//! let metrics = scheduler.metrics();
//! let shutdown = Shutdown::new();
//! shutdown.request(); // as a SIGTERM would, before the first tick
//! let report = scheduler.run(&shutdown).await;
//! assert_eq!(report.ending, Ending::Stopped);
//! assert!(metrics.render().contains("cannectors_runs_total{pipeline=\"events\",outcome=\"success\"} 0"));
//! # Ok(())
//! # }
//! ```

mod metrics;
mod schedule;
mod scheduler;
mod shutdown;

pub use metrics::{Metrics, Outcome, RunningRun};
pub use schedule::Schedule;
pub use scheduler::{
    Ending, Job, JobError, Report, RunFailure, Scheduler, SchedulerError, SchedulerOptions,
};
pub use shutdown::{Shutdown, ShutdownPhase};
