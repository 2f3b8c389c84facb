//! The run loop: every pipeline on its own schedule in one process, never two runs of one
//! pipeline at a time, and a shutdown that lets the batch in flight be committed.
//!
//! Each pipeline has a driver task. A scheduled driver sleeps until the next fire time of its
//! schedule, then starts a run in a task of its own, so that the ticks keep coming while the run
//! goes: a tick that finds the previous run still going is skipped. A pipeline without a
//! schedule (or every pipeline, with `once`) runs once, right away. A failed run is logged and
//! counted; it never ends its driver or any other. A run that panics is a failed run like any
//! other: the panic is caught where the run is awaited, so it is counted, reported and frees
//! the pipeline for the next tick.

use std::any::Any;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cannectors_config::{LoadedPipeline, Secrets};
use cannectors_runtime::{Executor, RunError, RunOptions, RunProgress};
use cannectors_state::StateError;
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::FutureExt as _;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::metrics::{Metrics, Outcome};
use crate::schedule::Schedule;
use crate::shutdown::{Shutdown, ShutdownPhase};

/// The longest a driver sleeps without looking at the wall clock again, so that a clock that
/// was set or a machine that was suspended moves the next run only this much.
const WAKE_SLICE: Duration = Duration::from_secs(10);

/// How often the lease of a pipeline is read again while this process runs it, for the
/// metrics; it is also read when each tick ends.
const LEASE_READ_EVERY: Duration = Duration::from_secs(5);

/// A pipeline ready to be scheduled: its file, its schedule and its executor.
#[derive(Debug)]
pub struct Job {
    file: PathBuf,
    name: String,
    schedule: Option<Schedule>,
    executor: Executor,
    secrets: Secrets,
    slot: RunSlot,
}

/// Why a loaded pipeline cannot be prepared to run.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The executor cannot be prepared (the state location cannot be resolved).
    #[error("{}: {source}", file.display())]
    Executor {
        /// The pipeline file.
        file: PathBuf,
        /// What the executor reported.
        source: RunError,
    },
}

impl Job {
    /// Prepares a loaded pipeline (its schedule was read when it was loaded): resolves its
    /// state file.
    pub fn new(loaded: &LoadedPipeline) -> Result<Job, JobError> {
        let schedule = Schedule::of_pipeline(&loaded.pipeline);
        let executor = Executor::new(&loaded.pipeline)
            .map(|executor| executor.with_pipeline_file(&loaded.path))
            .map_err(|source| JobError::Executor {
                file: loaded.path.clone(),
                source,
            })?;
        Ok(Job {
            file: loaded.path.clone(),
            name: loaded.pipeline.name.clone(),
            schedule,
            executor,
            secrets: loaded.secrets.clone(),
            slot: RunSlot::default(),
        })
    }

    /// The pipeline name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file the pipeline came from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The schedule, `None` for a pipeline that runs once.
    pub fn schedule(&self) -> Option<&Schedule> {
        self.schedule.as_ref()
    }
}

/// Why a set of pipelines cannot be scheduled together.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// Two pipelines have the same name, so they would share one state file.
    #[error(
        "pipeline name `{name}` is used by both {} and {}: the name names the state file, so \
         each pipeline needs its own; rename one of them",
        first.display(),
        second.display()
    )]
    DuplicateName {
        /// The name.
        name: String,
        /// The first file with it.
        first: PathBuf,
        /// The second file with it.
        second: PathBuf,
    },
}

/// How the scheduler runs its pipelines.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Run every pipeline once, now, even those with a schedule.
    pub once: bool,
    /// Fetch and show what would be sent; send nothing, commit nothing.
    pub dry_run: bool,
    /// How long runs in progress get to finish their batch after a shutdown was requested.
    pub shutdown_timeout: Duration,
    /// How a failed run is told, given the pipeline file and the error: in the log of a
    /// long-running scheduler and in [`RunFailure::message`]. The default is the error's own
    /// message; the program that embeds the scheduler adds its advice here (its own command
    /// that fixes the problem, say).
    pub describe_failure: fn(&Path, &RunError) -> String,
}

impl Default for SchedulerOptions {
    fn default() -> SchedulerOptions {
        SchedulerOptions {
            once: false,
            dry_run: false,
            shutdown_timeout: Duration::from_secs(30),
            describe_failure: |_, error| error.to_string(),
        }
    }
}

/// How [`Scheduler::run`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Every pipeline ran once and nothing is scheduled: there was nothing left to do.
    Completed,
    /// A shutdown was requested and every run in progress stopped after committing its batch.
    Stopped,
    /// A shutdown was requested and these pipelines were still in a batch when the shutdown
    /// timeout ran out; those batches were not committed and are sent again by the next run.
    TimedOut {
        /// The pipelines whose run was cut.
        unfinished: Vec<String>,
    },
    /// A second shutdown request stopped these pipelines in the middle of a batch; those
    /// batches were not committed and are sent again by the next run.
    Forced {
        /// The pipelines whose run was cut.
        unfinished: Vec<String>,
    },
}

/// The last run of a pipeline failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFailure {
    /// The pipeline name.
    pub pipeline: String,
    /// The pipeline file.
    pub file: PathBuf,
    /// The error, with values that came from environment variables masked.
    pub message: String,
}

/// What [`Scheduler::run`] leaves behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Why it returned.
    pub ending: Ending,
    /// The pipelines whose last run failed, in name order.
    pub failures: Vec<RunFailure>,
}

/// Runs pipelines on their schedules in one process until it is asked to stop.
#[derive(Debug)]
pub struct Scheduler {
    jobs: Vec<Arc<Job>>,
    metrics: Arc<Metrics>,
    options: SchedulerOptions,
}

impl Scheduler {
    /// A scheduler for `jobs`; two jobs with the same pipeline name are refused.
    pub fn new(jobs: Vec<Job>, options: SchedulerOptions) -> Result<Scheduler, SchedulerError> {
        let mut files: BTreeMap<&str, &Path> = BTreeMap::new();
        for job in &jobs {
            if let Some(first) = files.insert(&job.name, &job.file) {
                return Err(SchedulerError::DuplicateName {
                    name: job.name.clone(),
                    first: first.to_owned(),
                    second: job.file.clone(),
                });
            }
        }
        let metrics = Arc::new(Metrics::default());
        for job in &jobs {
            metrics.register(&job.name);
        }
        Ok(Scheduler {
            jobs: jobs.into_iter().map(Arc::new).collect(),
            metrics,
            options,
        })
    }

    /// The counters of this scheduler, live while it runs.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Whether the scheduler keeps running until it is stopped: some pipeline has a schedule
    /// and the options do not say `once`.
    pub fn is_long_running(&self) -> bool {
        !self.options.once && self.jobs.iter().any(|job| job.schedule.is_some())
    }

    /// Runs every pipeline: scheduled ones on their schedule, the others once, now. Returns
    /// when every pipeline is done (none is scheduled) or when `shutdown` was requested and
    /// the runs in progress stopped (see [`Ending`]).
    pub async fn run(self, shutdown: &Shutdown) -> Report {
        // The cursors committed before this process started, and the leases, published before
        // the first run.
        for job in &self.jobs {
            // A store that cannot be reached now is not waited for twice; the run says why.
            if let Ok(state) = job.executor.store().load_cursors().await {
                if let Some(state) = state {
                    self.metrics.set_cursors(&job.name, &state);
                }
                read_lease(job, &self.metrics).await;
            }
        }
        let mut phase = shutdown.subscribe();
        let (stop, stopping) = watch::channel(false);
        let context = Arc::new(Context {
            metrics: self.metrics.clone(),
            options: self.options.clone(),
            stopping,
            long_running: self.is_long_running(),
            failures: Mutex::new(BTreeMap::new()),
        });
        let mut drivers = JoinSet::new();
        for job in &self.jobs {
            drivers.spawn(drive(job.clone(), context.clone()));
        }
        let requested = loop {
            tokio::select! {
                joined = drivers.join_next() => if joined.is_none() {
                    break false;
                },
                () = reached(&mut phase, ShutdownPhase::Draining) => break true,
            }
        };
        let ending = if requested {
            let _ = stop.send(true);
            let running = context.running();
            if running.is_empty() {
                tracing::info!("stopping: no run in progress");
            } else {
                tracing::info!(
                    "stopping: no new run starts; the run of {} stops once its batch in flight \
                     is committed (at most {}s; a second signal stops at once)",
                    running.join(", "),
                    self.options.shutdown_timeout.as_secs_f64()
                );
            }
            let drained = async { while drivers.join_next().await.is_some() {} };
            tokio::select! {
                () = drained => Ending::Stopped,
                () = tokio::time::sleep(self.options.shutdown_timeout) => Ending::TimedOut {
                    unfinished: context.running(),
                },
                () = reached(&mut phase, ShutdownPhase::Immediate) => Ending::Forced {
                    unfinished: context.running(),
                },
            }
        } else {
            Ending::Completed
        };
        // Dropping the drivers cancels the runs still going, at an await point: a commit is
        // never cut half-way, and the batch in flight is simply not committed.
        drivers.abort_all();
        let failures = context
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        Report { ending, failures }
    }
}

/// What the drivers share.
struct Context {
    metrics: Arc<Metrics>,
    options: SchedulerOptions,
    /// Turns `true` when a shutdown was requested.
    stopping: watch::Receiver<bool>,
    long_running: bool,
    failures: Mutex<BTreeMap<String, RunFailure>>,
}

impl Context {
    fn running(&self) -> Vec<String> {
        self.metrics
            .running()
            .into_iter()
            .map(|run| run.pipeline)
            .collect()
    }
}

/// Resolves once `phase` is at least `target`; never, when nobody can request it any more.
async fn reached(phase: &mut watch::Receiver<ShutdownPhase>, target: ShutdownPhase) {
    if phase.wait_for(|phase| *phase >= target).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn drive(job: Arc<Job>, context: Arc<Context>) {
    let schedule = match &job.schedule {
        Some(schedule) if !context.options.once => schedule,
        _ => {
            if let Ok(slot) = job.slot.try_start(Utc::now()) {
                execute(&job, &context, slot, None).await;
            }
            return;
        }
    };
    let mut stopping = context.stopping.clone();
    let mut current = CurrentRun(None);
    let mut reference = Utc::now();
    let mut first = true;
    loop {
        let Some(fire) = schedule.next_after(reference) else {
            tracing::warn!(
                pipeline = %job.name,
                "the schedule `{}` has no fire time after {}: the pipeline does not run again",
                schedule.expression(),
                utc(reference)
            );
            break;
        };
        context.metrics.set_next_run(&job.name, Some(fire));
        if first {
            tracing::info!(
                pipeline = %job.name,
                file = %job.file.display(),
                "scheduled `{}` ({}); next run at {}",
                schedule.expression(),
                schedule.zone(),
                utc(fire)
            );
            first = false;
        } else {
            tracing::debug!(pipeline = %job.name, "next run at {}", utc(fire));
        }
        tokio::select! {
            biased;
            _ = stopping.wait_for(|stop| *stop) => break,
            () = sleep_until(fire) => {}
        }
        // A tick due at the very moment of a shutdown request does not start a run.
        if *stopping.borrow() {
            break;
        }
        // A tick that woke up late (a suspended machine) runs once; missed ticks are not
        // made up, and the next one is computed from now.
        reference = fire.max(Utc::now());
        match job.slot.try_start(fire) {
            Ok(slot) => {
                let (job, context) = (job.clone(), context.clone());
                current.0 = Some(tokio::spawn(async move {
                    execute(&job, &context, slot, Some(fire)).await;
                }));
            }
            Err(since) => {
                tracing::warn!(
                    pipeline = %job.name,
                    tick = %millis(fire),
                    "skipping the run due at {}: the previous run, started at {}, is still going",
                    utc(fire),
                    utc(since)
                );
                context.metrics.skipped(&job.name);
            }
        }
    }
    context.metrics.set_next_run(&job.name, None);
    if let Some(handle) = current.0.as_mut() {
        let _ = handle.await;
    }
}

/// The run a driver started; cancelled when the driver itself is cancelled.
struct CurrentRun(Option<JoinHandle<()>>);

impl Drop for CurrentRun {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}

/// Runs `job` once: for the schedule's `tick`, or outside any schedule (`None`).
async fn execute(job: &Job, context: &Context, slot: SlotGuard, tick: Option<DateTime<Utc>>) {
    let scheduled = tick.is_some();
    let progress = Arc::new(RunProgress::default());
    context.metrics.started(&job.name, progress.clone());
    let options = RunOptions {
        dry_run: context.options.dry_run,
        stop: Some(context.stopping.clone()),
        progress: Some(progress),
        tick,
    };
    // A panic anywhere in the run (a bug) must not pass for a success, nor leave the run
    // "in progress" forever: it is caught here, in the task that awaits the run, and goes the
    // way of any other failure.
    let run = AssertUnwindSafe(job.executor.run(&options)).catch_unwind();
    let finished = reading_the_lease_meanwhile(job, &context.metrics, run).await;
    let outcome = match finished {
        Ok(Ok(summary)) if summary.interrupted => Outcome::Interrupted,
        Ok(Ok(_)) => Outcome::Success,
        Ok(Err(RunError::State(error @ StateError::Locked { .. }))) if scheduled => {
            tracing::warn!(pipeline = %job.name, "skipping this run: {error}");
            Outcome::Skipped
        }
        // Replicas sharing a PostgreSQL store: the tick belongs to the one holding the lease,
        // or to the one that took it first, which is the normal case on every other replica,
        // so it is not worth a warning.
        Ok(Err(RunError::State(StateError::Held { owner, until, .. }))) if scheduled => {
            tracing::debug!(
                pipeline = %job.name,
                tick = %tick.map(millis).unwrap_or_default(),
                "skipping this run: held by {owner} until {}",
                millis(until)
            );
            Outcome::Held
        }
        Ok(Err(RunError::State(StateError::TickTaken { owner, .. }))) if scheduled => {
            tracing::debug!(
                pipeline = %job.name,
                tick = %tick.map(millis).unwrap_or_default(),
                "skipping this run: {owner} already took this tick"
            );
            Outcome::Held
        }
        // Another replica took the lease over while this run was going: the run stopped before
        // delivering more, and the state is the other replica's to move on.
        Ok(Err(RunError::State(error @ StateError::Fenced { .. }))) if scheduled => {
            tracing::warn!(pipeline = %job.name, "{error}");
            Outcome::Fenced
        }
        Ok(Err(error)) => failed(
            job,
            context,
            scheduled,
            &(context.options.describe_failure)(&job.file, &error),
        ),
        Err(panic) => failed(
            job,
            context,
            scheduled,
            &format!(
                "the run of pipeline `{}` stopped on an internal error ({}); the state stays \
                 where the last committed batch left it and the batch in flight is sent again \
                 by the next run. This is a bug in cannectors: please report it",
                job.name,
                panic_text(panic.as_ref())
            ),
        ),
    };
    if outcome == Outcome::Success {
        context
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&job.name);
    }
    if !context.options.dry_run {
        // A store the run could not reach is not waited for twice more.
        if let Ok(state) = job.executor.store().load_cursors().await {
            if let Some(state) = state {
                context.metrics.set_cursors(&job.name, &state);
            }
            read_lease(job, &context.metrics).await;
        }
    }
    context.metrics.finished(&job.name, outcome);
    drop(slot);
}

/// Awaits `run`, reading the pipeline's lease every [`LEASE_READ_EVERY`] while it goes.
async fn reading_the_lease_meanwhile<T>(
    job: &Job,
    metrics: &Metrics,
    run: impl std::future::Future<Output = T>,
) -> T {
    if job.executor.store().owner().is_none() {
        return run.await;
    }
    alongside(run, LEASE_READ_EVERY, || read_lease(job, metrics)).await
}

/// Awaits `run`, starting `read` every `every` while it goes. Each read is polled together
/// with the run, never instead of it: a store slow to answer delays the metrics, not the run;
/// a read still going when the run ends is dropped.
async fn alongside<T, R: std::future::Future<Output = ()>>(
    run: impl std::future::Future<Output = T>,
    every: Duration,
    mut read: impl FnMut() -> R,
) -> T {
    let mut run = std::pin::pin!(run);
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let reading = async {
            interval.tick().await;
            read().await;
        };
        tokio::select! {
            finished = &mut run => return finished,
            () = reading => {}
        }
    }
}

/// Publishes the pipeline's lease as the store has it now, for a store with leases. A store
/// that cannot be read leaves the last reading in place (its time tells its age).
async fn read_lease(job: &Job, metrics: &Metrics) {
    let store = job.executor.store();
    let Some(mine) = store.owner() else {
        return;
    };
    match store.lease().await {
        Ok(Some(lease)) => metrics.set_lease(&job.name, mine, &lease),
        Ok(None) => {}
        Err(error) => tracing::debug!(pipeline = %job.name, "cannot read the lease: {error}"),
    }
}

/// Logs (when the process keeps running) and records a failed run.
fn failed(job: &Job, context: &Context, scheduled: bool, error: &str) -> Outcome {
    let message = job.secrets.redact(error);
    if context.long_running {
        let next = if scheduled {
            "; the next scheduled run tries again"
        } else {
            ""
        };
        tracing::error!(
            pipeline = %job.name,
            "run failed: {}: {message}{next}",
            job.file.display()
        );
    }
    context
        .failures
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(
            job.name.clone(),
            RunFailure {
                pipeline: job.name.clone(),
                file: job.file.clone(),
                message,
            },
        );
    Outcome::Failure
}

/// What a panic said: its message when it has one (`panic!("...")` carries a `&str` or a
/// `String`).
fn panic_text(panic: &(dyn Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => format!("panicked: {text}"),
        (None, Some(text)) => format!("panicked: {text}"),
        (None, None) => "panicked".to_owned(),
    }
}

/// Sleeps until the wall clock reaches `at`, looking at it again at least every
/// [`WAKE_SLICE`].
async fn sleep_until(at: DateTime<Utc>) {
    while let Ok(remaining) = (at - Utc::now()).to_std() {
        if remaining.is_zero() {
            return;
        }
        tokio::time::sleep(remaining.min(WAKE_SLICE)).await;
    }
}

fn utc(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn millis(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Whether a run of a pipeline is going, and since when.
#[derive(Debug, Default)]
struct RunSlot {
    since: Arc<Mutex<Option<DateTime<Utc>>>>,
}

/// Holds a pipeline's [`RunSlot`] for one run; frees it when dropped, even if the run panicked
/// or was cancelled.
#[derive(Debug)]
struct SlotGuard {
    since: Arc<Mutex<Option<DateTime<Utc>>>>,
}

impl RunSlot {
    /// Takes the slot for a run starting at `now`, or tells since when the run holding it goes.
    fn try_start(&self, now: DateTime<Utc>) -> Result<SlotGuard, DateTime<Utc>> {
        let mut since = self.since.lock().unwrap_or_else(PoisonError::into_inner);
        match *since {
            Some(started) => Err(started),
            None => {
                *since = Some(now);
                Ok(SlotGuard {
                    since: self.since.clone(),
                })
            }
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        *self.since.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lease_read_that_never_answers_does_not_hold_the_run_up() {
        let (started, mut reading) = tokio::sync::mpsc::unbounded_channel();
        // The run ends once a read is under way; the read never ends (a store that does not
        // answer).
        let run = async move {
            reading.recv().await;
            42
        };
        let read = || {
            let started = started.clone();
            async move {
                let _ = started.send(());
                std::future::pending::<()>().await;
            }
        };
        let finished = tokio::time::timeout(
            Duration::from_secs(10),
            alongside(run, Duration::from_millis(1), read),
        )
        .await;
        assert_eq!(finished, Ok(42), "the run waited for the lease read");
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_tick_while_a_run_is_going_is_refused_with_the_start_of_that_run() {
        let slot = RunSlot::default();
        let running = slot.try_start(at("2026-05-04T10:00:00Z")).unwrap();
        assert_eq!(
            slot.try_start(at("2026-05-04T10:00:01Z")).unwrap_err(),
            at("2026-05-04T10:00:00Z")
        );
        drop(running);
        assert!(slot.try_start(at("2026-05-04T10:00:02Z")).is_ok());
    }

    #[tokio::test]
    async fn a_run_that_panics_frees_its_slot() {
        let slot = RunSlot::default();
        let guard = slot.try_start(at("2026-05-04T10:00:00Z")).unwrap();
        let outcome = tokio::spawn(async move {
            let _guard = guard;
            panic!("a bug in a run");
        })
        .await;
        assert!(outcome.is_err());
        assert!(slot.try_start(at("2026-05-04T10:00:01Z")).is_ok());
    }

    #[tokio::test]
    async fn sleeping_until_a_past_instant_returns_at_once() {
        let started = std::time::Instant::now();
        sleep_until(at("2020-01-01T00:00:00Z")).await;
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
