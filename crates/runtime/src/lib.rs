//! The executor of cannectors: one run of a pipeline, from the source through the filters to the
//! sink, committing the cursor state after every batch the sink accepted.
//!
//! ```text
//! store = store_for(&pipeline)                  // resolves storagePath once
//! lock  = store.lock()?                         // exclusive per pipeline; none for a dry run
//! state = store.load()?                         // None on first run; error on a bad file
//! source = build(&pipeline.input, &state)       // reads state, never writes it
//! for batch in source:
//!     position = batch.greatest or fields.greatest_position_in_json(&batch)  // before filters
//!     gathered += filters.apply(batch); state += position  // whole batches, up to batchSize
//!     if gathered is full (or the source ended, or a stop was asked for):
//!         sink.write(gathered)?                     // error -> stop, nothing committed
//!         lock.commit(state)                        // durable, only after the sink succeeded
//! ```
//!
//! A delivery gathers whole source batches up to the output's `batchSize` records, or without it
//! up to 10,000 records and 1 MiB, waiting at most 200 ms for the next batch (an httpRequest
//! output without `batchSize`, and `batchSize: 1`, deliver every source batch alone). While a
//! delivery is written and committed, the source's next batches are read and held: they are
//! admitted and gathered only after that commit.
//!
//! [`store_for`] is the one place a state store is made from a pipeline's configuration; the
//! executor holds it as a [`StateStore`] and writes only through the [`StateLock`] it takes.
//!
//! [`Executor::run_with`] runs that loop over any [`Source`] and [`Sink`]:
//!
//! ```
//! use cannectors_connector::{Batch, BoxError, BoxFuture, Checkpoint, Record, Sink, Source};
//! use cannectors_runtime::{Executor, RunOptions};
//!
//! struct OnePage(Option<Vec<Record>>);
//! impl Source for OnePage {
//!     fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>, BoxError>> {
//!         let page = self.0.take();
//!         Box::pin(async move {
//!             Ok(page.map(|records| Batch { records, checkpoint: Checkpoint::Advance, greatest: None, keys: None }))
//!         })
//!     }
//! }
//! struct Count(usize);
//! impl Sink for Count {
//!     fn write<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>> {
//!         self.0 += records.len();
//!         Box::pin(async { Ok(()) })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let yaml = format!(
//!     "name: demo\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:9/x', \
//!      statePersistence: {{id: {{field: id, queryParam: after}}, storagePath: '{}'}}}}\n\
//!      output: {{type: stdout}}\n",
//!     dir.path().display()
//! );
//! let loaded = cannectors_config::parse_str(&yaml, "demo.yaml", &|_| None)?;
//! let executor = Executor::new(&loaded.pipeline)?;
//! let mut source = OnePage(Some(vec![
//!     Record::from(serde_json::json!({"id": 3})),
//!     Record::from(serde_json::json!({"id": 9})),
//! ]));
//! let mut sink = Count(0);
//! let summary = executor.run_with(&mut source, &mut sink, &RunOptions::default()).await?;
//! assert_eq!(summary.records_written, 2);
//! assert_eq!(executor.store().load().await?.unwrap().id.unwrap().to_string(), "9");
//! # Ok(())
//! # }
//! ```

mod admit;
mod build;
mod guarantee;
mod progress;
mod store;
mod summary;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use cannectors_config::{InputConfig, Lookback, Pipeline, StatePersistence, Window};
use cannectors_connector::{
    Batch, BoxError, Checkpoint, Record, RunWindow, Sink, Source, StoppedByShutdown,
};
use cannectors_database::DatabaseError;
use cannectors_filter::{FilterError, Filters};
use cannectors_output::{DatabaseSink, OutputError};
use cannectors_state::{
    Backfill, CursorError, State, StateError, StateLock, StateStore, Timestamp, WindowProgress,
};
use cannectors_state_postgres::PgLease;
use chrono::Timelike as _;
use tokio::sync::watch;

use admit::Admission;

pub use build::BuildError;
pub use guarantee::{DeliveryGuarantee, delivery_guarantee};
pub use progress::RunProgress;
pub use store::{Migration, migration_stores, store_for};
pub use summary::RunSummary;

/// How one run behaves.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Fetch and show what would be sent; send nothing, commit nothing: the run takes no lock,
    /// so it has nothing to commit with.
    pub dry_run: bool,
    /// When this turns `true`, the run stops after the batch in flight is delivered and
    /// committed (graceful shutdown). A batch whose source or sink is waiting to retry a
    /// request is not waited for: the wait ends at once and the batch is left uncommitted.
    pub stop: Option<watch::Receiver<bool>>,
    /// Advanced as batches arrive and are committed, for watching a run while it goes.
    pub progress: Option<Arc<RunProgress>>,
    /// The schedule's tick this run is for, when a scheduler started it: the lock is then taken
    /// with [`StateStore::lock_for_tick`], so that processes sharing a store and a schedule run
    /// each tick once.
    pub tick: Option<chrono::DateTime<chrono::Utc>>,
}

impl RunOptions {
    fn stop_requested(&self) -> bool {
        self.stop.as_ref().is_some_and(|stop| *stop.borrow())
    }

    /// Whether `error` is a source or a sink giving up a wait because this run was asked to
    /// stop: a clean stop, not a failure.
    fn stopped_by(&self, error: &BoxError) -> bool {
        self.stop_requested() && StoppedByShutdown::is_cause_of(&**error)
    }
}

/// Why a run stopped before it completed. Every variant leaves the state file as it was after
/// the last batch the sink accepted.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The state file could not be located, locked, read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The source or the sink could not be built from the configuration.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The source failed.
    #[error("{source}; nothing of this batch was delivered, the state is unchanged")]
    Source {
        /// What the source reported.
        source: BoxError,
    },
    /// A record's cursor field could not be read.
    #[error("batch {batch}: {source}; nothing of this batch was delivered, the state is unchanged")]
    Cursor {
        /// Batch number in this run, from 1.
        batch: u64,
        /// What is wrong with the record.
        source: CursorError,
    },
    /// A filter with `onError: fail` failed on a record.
    #[error("batch {batch}: {source}; nothing of this batch was delivered, the state is unchanged")]
    Filter {
        /// Batch number in this run, from 1.
        batch: u64,
        /// Which filter failed on which record, and why.
        source: FilterError,
    },
    /// The sink did not accept a batch.
    #[error(
        "output failed on batch {batch} ({records} records): {source}; the state was not advanced \
         past this batch, the next run sends it again"
    )]
    Sink {
        /// Batch number in this run, from 1.
        batch: u64,
        /// Records in the batch.
        records: usize,
        /// What the sink reported.
        source: BoxError,
    },
    /// A backfill was asked for an empty or reversed range.
    #[error(
        "the backfill range is empty: it starts at {from} and ends at {to}; the start must be \
         before the end"
    )]
    BackfillRange {
        /// The start asked for.
        from: String,
        /// The end asked for (or the default end).
        to: String,
    },
    /// Another backfill of the pipeline has not read its whole range yet.
    #[error(
        "a backfill from {from} to {to} started at {started_at} is unfinished; it is resumed \
         by a backfill of that same range, and a backfill of another range must start over"
    )]
    BackfillUnfinished {
        /// Its start.
        from: String,
        /// Its end.
        to: String,
        /// When it started.
        started_at: String,
    },
}

/// A backfill: which range, and whether an unfinished one is dropped to start this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackfillRange {
    /// The start of the range.
    pub from: chrono::DateTime<chrono::Utc>,
    /// The end of the range; `None`: the committed position of the pipeline (its timestamp,
    /// or the end of its last window), else now - `delay`.
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Start over even when an unfinished backfill of another range is in the state.
    pub restart: bool,
}

impl BackfillRange {
    /// The range from `from` to `to` (see [`BackfillRange::to`]), not restarting.
    pub fn new(
        from: chrono::DateTime<chrono::Utc>,
        to: Option<chrono::DateTime<chrono::Utc>>,
    ) -> BackfillRange {
        BackfillRange {
            from,
            to,
            restart: false,
        }
    }

    /// The same range, dropping an unfinished backfill of another range.
    pub fn restarting(mut self, restart: bool) -> BackfillRange {
        self.restart = restart;
        self
    }
}

/// Which part of the state file a run moves.
enum Scope {
    /// The pipeline's own cursors.
    Main,
    /// A backfill's progress, nested in `main`, whose other parts are written back as they
    /// were loaded: a backfill never moves the pipeline's cursors.
    Backfill {
        main: Box<State>,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        started_at: chrono::DateTime<chrono::Utc>,
    },
}

impl Scope {
    /// The state file's content for `working`, the state the run moves: `working` itself for
    /// the pipeline's own run, whose commits (one a batch) then copy nothing.
    fn persisted<'a>(&self, working: &'a State, completed: bool) -> Cow<'a, State> {
        match self {
            Scope::Main => Cow::Borrowed(working),
            Scope::Backfill {
                main,
                from,
                to,
                started_at,
            } => {
                let mut progress = working.clone();
                // Identities belong to the pipeline's lookback window, not to the backfill.
                progress.identities = Default::default();
                let mut backfill = Backfill::start(*from, *to, *started_at);
                backfill.progress = Box::new(progress);
                backfill.completed_at = completed.then(chrono::Utc::now);
                let mut file = main.as_ref().clone();
                file.backfill = Some(backfill);
                Cow::Owned(file)
            }
        }
    }
}

/// Instants as RFC 3339 in UTC, for messages.
fn rfc3339(instant: chrono::DateTime<chrono::Utc>) -> String {
    instant.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The lookback window as chrono counts time; loading bounded it well inside chrono's range.
fn window_delta(lookback: &Lookback) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(lookback.window).unwrap_or(chrono::TimeDelta::MAX)
}

/// Runs one pipeline: owns its state store and its cursor settings.
#[derive(Debug)]
pub struct Executor {
    pipeline: Pipeline,
    store: Box<dyn StateStore>,
    admission: Admission,
    lookback: Option<Lookback>,
    delay: Option<std::time::Duration>,
    filters: Filters,
    /// Whether each delivery and its commit are one transaction ([`delivery_guarantee`]).
    exactly_once: bool,
}

impl Executor {
    /// Prepares a run of `pipeline`: resolves its state store (once, with [`store_for`]) and its
    /// cursor fields.
    pub fn new(pipeline: &Pipeline) -> Result<Executor, RunError> {
        let store = store_for(pipeline)?;
        let settings = pipeline.input.state_persistence();
        let fields = settings
            .map(StatePersistence::cursor_fields)
            .unwrap_or_default();
        let lookback = settings.and_then(|settings| settings.lookback.clone());
        let delay = settings.and_then(|settings| settings.delay);
        Ok(Executor {
            pipeline: pipeline.clone(),
            store,
            admission: Admission::new(fields, lookback.clone()),
            lookback,
            delay,
            filters: Filters::new(&pipeline.filters),
            exactly_once: delivery_guarantee(pipeline).is_exactly_once(),
        })
    }

    /// The same executor, for the pipeline read from `file`: its commits record the file, and a
    /// run warns when the state was last written for another pipeline file (two files with the
    /// same name and storage silently sharing one cursor). See
    /// [`StateStore::set_pipeline_file`].
    pub fn with_pipeline_file(mut self, file: &Path) -> Executor {
        self.store.set_pipeline_file(file);
        self
    }

    /// The state store of this pipeline, for reading its state.
    pub fn store(&self) -> &dyn StateStore {
        self.store.as_ref()
    }

    /// The pipeline's lock for a run that writes; `None` for a dry run, which takes no lock and
    /// so has nothing to commit with.
    async fn writer(&self, options: &RunOptions) -> Result<Option<Box<dyn StateLock>>, RunError> {
        if options.dry_run {
            return Ok(None);
        }
        let lock = match options.tick {
            Some(tick) => self.store.lock_for_tick(tick).await?,
            None => self.store.lock().await?,
        };
        Ok(Some(lock))
    }

    /// Loads the state, warning when another pipeline file wrote it.
    async fn load(&self) -> Result<Option<State>, RunError> {
        let state = self.store.load().await?;
        if let Some(state) = &state
            && let (Some(other), Some(this)) = (
                self.store.other_pipeline_file(state),
                self.store.pipeline_file(),
            )
        {
            tracing::warn!(
                pipeline = %self.pipeline.name,
                state_file = %self.store.location(),
                "the state file {} was last written by the pipeline file {}, not by this one, {}: \
                 two pipeline files with the name `{}` and the same statePersistence.storagePath \
                 share one cursor, so each run skips or repeats records of the other; give one of \
                 them another name or another storagePath (if the pipeline file was moved, \
                 ignore this: the next commit records its new path)",
                self.store.location(),
                other.display(),
                this.display(),
                self.pipeline.name,
            );
        }
        Ok(state)
    }

    /// The bounds of a run starting now: up to now - `delay`, or up to now, in whole seconds
    /// (a bound sent in a request reads the same in every format).
    fn window(&self) -> RunWindow {
        let now = chrono::Utc::now();
        let now = now.with_nanosecond(0).unwrap_or(now);
        let end = match self.delay {
            Some(delay) => chrono::TimeDelta::from_std(delay)
                .ok()
                .and_then(|delay| now.checked_sub_signed(delay))
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC),
            None => now,
        };
        RunWindow::ending_at(end)
    }

    /// Forgets the identities the next run's window no longer reaches, and the oldest ones
    /// beyond `maxIdentities`, saying so: those records may then be delivered twice.
    fn prune_identities(&self, state: &mut State) {
        let Some(lookback) = &self.lookback else {
            // Left by a run that had lookback: nothing reads them any more.
            state.identities = Default::default();
            return;
        };
        // A paginated run promotes its cursors only when it completes; the window of the next
        // run starts after what this run has seen so far.
        let reached = [
            state.timestamp.as_ref(),
            state
                .run
                .as_ref()
                .and_then(|run| run.seen().timestamp.as_ref()),
        ]
        .into_iter()
        .flatten()
        .map(|timestamp| timestamp.instant())
        .max();
        let Some(reached) = reached else {
            return;
        };
        let start = reached
            .checked_sub_signed(window_delta(lookback))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        let max = lookback.max_identities.get();
        let dropped = state.identities.prune(start, max);
        if dropped > 0 {
            tracing::warn!(
                pipeline = %self.pipeline.name,
                dropped,
                "the lookback window holds more than statePersistence.maxIdentities ({max}) \
                 delivered records; the {dropped} oldest were forgotten, so those records are \
                 delivered again if the source returns them (duplicates, never loss): raise \
                 maxIdentities or shorten lookback"
            );
        }
    }

    /// The pipeline's `window` setting, when it reads explicit ranges.
    fn windows(&self) -> Option<Window> {
        match &self.pipeline.input {
            InputConfig::HttpPolling(input) => input.window,
            _ => None,
        }
    }

    /// The sink of the configuration, or the one of a dry run; on the exactly-once path, the
    /// database sink that commits each delivery's state in its transaction.
    fn sink(&self, options: &RunOptions) -> Result<BuiltSink, RunError> {
        if options.dry_run {
            return Ok(BuiltSink::Plain(Box::new(build::DryRun::new(
                &self.pipeline.output,
            ))));
        }
        if self.exactly_once
            && let cannectors_config::OutputConfig::Database(output) = &self.pipeline.output
        {
            return Ok(BuiltSink::Transactional(Box::new(DatabaseSink::new(
                output,
            ))));
        }
        Ok(BuiltSink::Plain(build::sink(
            &self.pipeline.output,
            options.stop.as_ref(),
        )?))
    }

    /// Commits `working` (through `scope`) when the run writes.
    async fn commit(
        lock: &mut Option<Box<dyn StateLock>>,
        scope: &Scope,
        working: &State,
        completed: bool,
    ) -> Result<(), RunError> {
        if let Some(lock) = lock.as_mut() {
            lock.commit(&scope.persisted(working, completed)).await?;
        }
        Ok(())
    }

    /// Lets the store prepare the commit of `working` while the sink writes the delivery it
    /// follows (see [`StateLock::stage`]): with a lookback window, the file store syncs the
    /// window's new identities beside the sink's sync rather than after it. A backfill keeps
    /// no identities, so it has nothing to stage.
    async fn stage(
        lock: &mut Option<Box<dyn StateLock>>,
        scope: &Scope,
        working: &State,
    ) -> Result<(), RunError> {
        if let (Some(lock), Scope::Main) = (lock.as_mut(), scope)
            && !working.identities.is_empty()
        {
            lock.stage(working).await?;
        }
        Ok(())
    }

    /// One complete run with the source and sink the configuration names.
    pub async fn run(&self, options: &RunOptions) -> Result<RunSummary, RunError> {
        let mut lock = self.writer(options).await?;
        let outcome = self.run_locked(&mut lock, options).await;
        release(lock).await;
        outcome
    }

    async fn run_locked(
        &self,
        lock: &mut Option<Box<dyn StateLock>>,
        options: &RunOptions,
    ) -> Result<RunSummary, RunError> {
        let state = self.load().await?;
        tracing::info!(
            pipeline = %self.pipeline.name,
            state_file = %self.store.location(),
            "starting run"
        );
        let bound = self.window();
        if let Some(window) = self.windows() {
            let mut sink = self.sink(options)?;
            let (summary, _) = self
                .run_windows(
                    state.unwrap_or_default(),
                    &Scope::Main,
                    (window.start, bound.end),
                    &mut sink.output(),
                    lock,
                    None,
                    options,
                )
                .await?;
            return Ok(summary);
        }
        // With lookback the first request reaches back before the committed timestamp; the
        // run commits to `state` as always.
        let reading = match (&self.lookback, &state) {
            (Some(lookback), Some(state)) => Some(state.reaching_back(window_delta(lookback))),
            _ => state.clone(),
        };
        let mut source = build::source(
            &self.pipeline.input,
            reading.as_ref(),
            bound,
            options.stop.as_ref(),
        )
        .await?;
        let mut sink = self.sink(options)?;
        // Records after the bound the source was built with wait for a later run.
        let until = self.delay.map(|_| bound.end);
        let (summary, _) = self
            .run_loaded(
                state.unwrap_or_default(),
                &Scope::Main,
                source.as_mut(),
                &mut sink.output(),
                lock,
                until,
                options,
            )
            .await?;
        Ok(summary)
    }

    /// A backfill: the pipeline over `range`, with its progress kept in the state file's
    /// backfill section and the pipeline's own cursors left as they are, byte for byte. The
    /// lower bound goes out as the timestamp cursor would (its `queryParam`, the SQL
    /// parameters that read `state.timestamp`) and as `window.start`; the upper bound as
    /// `window.end` and `untilParam`; records after it are held back. An unfinished backfill of
    /// the same range is resumed; one of another range is refused unless `range.restart`.
    pub async fn backfill(
        &self,
        range: BackfillRange,
        options: &RunOptions,
    ) -> Result<RunSummary, RunError> {
        let mut lock = self.writer(options).await?;
        let outcome = self.backfill_locked(range, &mut lock, options).await;
        release(lock).await;
        outcome
    }

    async fn backfill_locked(
        &self,
        range: BackfillRange,
        lock: &mut Option<Box<dyn StateLock>>,
        options: &RunOptions,
    ) -> Result<RunSummary, RunError> {
        let main = self.load().await?.unwrap_or_default();
        let unfinished = main.backfill.as_ref().filter(|b| !b.is_finished());
        // Resuming without `--to` takes the end the backfill started with.
        let to = match (range.to, unfinished) {
            (Some(to), _) => to,
            (None, Some(unfinished)) if unfinished.from == range.from => unfinished.to,
            (None, _) => self.default_backfill_end(&main),
        };
        if range.from >= to {
            return Err(RunError::BackfillRange {
                from: rfc3339(range.from),
                to: rfc3339(to),
            });
        }
        let (progress, started_at) = match unfinished {
            Some(b) if b.from == range.from && b.to == to => {
                tracing::warn!(
                    pipeline = %self.pipeline.name,
                    "resuming the unfinished backfill from {} to {}",
                    rfc3339(b.from),
                    rfc3339(b.to)
                );
                (b.progress.as_ref().clone(), b.started_at)
            }
            Some(b) if !range.restart => {
                return Err(RunError::BackfillUnfinished {
                    from: rfc3339(b.from),
                    to: rfc3339(b.to),
                    started_at: rfc3339(b.started_at),
                });
            }
            _ => {
                let fresh = Backfill::start(range.from, to, chrono::Utc::now());
                (*fresh.progress, fresh.started_at)
            }
        };
        tracing::info!(
            pipeline = %self.pipeline.name,
            state_file = %self.store.location(),
            "starting backfill from {} to {}",
            rfc3339(range.from),
            rfc3339(to)
        );
        let scope = Scope::Backfill {
            main: Box::new(main),
            from: range.from,
            to,
            started_at,
        };
        let (summary, working) = match self.windows() {
            Some(_) => {
                let mut sink = self.sink(options)?;
                self.run_windows(
                    progress,
                    &scope,
                    (range.from, to),
                    &mut sink.output(),
                    lock,
                    Some(to),
                    options,
                )
                .await?
            }
            None => {
                let mut source = build::source(
                    &self.pipeline.input,
                    Some(&progress),
                    RunWindow::between(range.from, to),
                    options.stop.as_ref(),
                )
                .await?;
                let mut sink = self.sink(options)?;
                self.run_loaded(
                    progress,
                    &scope,
                    source.as_mut(),
                    &mut sink.output(),
                    lock,
                    Some(to),
                    options,
                )
                .await?
            }
        };
        if !summary.interrupted {
            Self::commit(lock, &scope, &working, true).await?;
        }
        Ok(summary)
    }

    /// Where a backfill without `--to` ends: the pipeline's committed position (the end of its
    /// last window, or its committed timestamp), else now - `delay`.
    fn default_backfill_end(&self, main: &State) -> chrono::DateTime<chrono::Utc> {
        let committed = match self.windows() {
            Some(_) => main.window.and_then(|window| window.end),
            None => main.timestamp.as_ref().map(|timestamp| timestamp.instant()),
        };
        committed.unwrap_or_else(|| self.window().end)
    }

    /// One run over a given source and sink, under the pipeline's lock (none for a dry run).
    pub async fn run_with(
        &self,
        source: &mut dyn Source,
        sink: &mut dyn Sink,
        options: &RunOptions,
    ) -> Result<RunSummary, RunError> {
        let mut lock = self.writer(options).await?;
        let outcome = match self.load().await {
            Ok(state) => {
                let until = self.delay.map(|_| self.window().end);
                self.run_loaded(
                    state.unwrap_or_default(),
                    &Scope::Main,
                    source,
                    &mut Output::Sink(sink),
                    &mut lock,
                    until,
                    options,
                )
                .await
                .map(|(summary, _)| summary)
            }
            Err(error) => Err(error),
        };
        release(lock).await;
        outcome
    }

    /// Whether the pipeline's timestamp cursor is the start time of its last successful run.
    fn timestamp_is_run_start(&self) -> bool {
        self.pipeline
            .input
            .state_persistence()
            .is_some_and(StatePersistence::timestamp_is_run_start)
    }

    /// One run over one source: its batches, then its completion. Returns the summary and the
    /// state it reached.
    #[allow(clippy::too_many_arguments)]
    async fn run_loaded(
        &self,
        mut state: State,
        scope: &Scope,
        source: &mut dyn Source,
        output: &mut Output<'_>,
        lock: &mut Option<Box<dyn StateLock>>,
        until: Option<chrono::DateTime<chrono::Utc>>,
        options: &RunOptions,
    ) -> Result<(RunSummary, State), RunError> {
        let started = Instant::now();
        // A timestamp cursor without `field` keeps when the last successful run started (as
        // the Go tool does); a run resumed after an interruption started when the interrupted
        // one did, so that nothing changed in between is missed.
        let run_start =
            (matches!(scope, Scope::Main) && self.timestamp_is_run_start()).then(|| {
                let now = chrono::Utc::now();
                state
                    .run
                    .as_ref()
                    .map_or(now, |run| run.started_at().min(now))
            });
        let mut summary = RunSummary::start(&self.pipeline.name, &state, options.dry_run);
        if state.run.is_some() {
            tracing::warn!(
                pipeline = %self.pipeline.name,
                "the previous run was interrupted; resuming from its saved position"
            );
        }
        let stopped_early = self
            .deliver(
                &mut state,
                scope,
                source,
                output,
                lock,
                until,
                options,
                &mut summary,
            )
            .await?;
        // A run that delivered nothing new leaves the state file as it was, byte for byte,
        // unless the cursor is the run's start time, which every complete run moves.
        if !stopped_early && (state.run.is_some() || run_start.is_some()) {
            if state.run.is_some() {
                state.complete_run(source.final_offset());
            }
            if let Some(start) = run_start {
                state.timestamp = Some(Timestamp::from_instant(start));
            }
            self.prune_identities(&mut state);
            Self::commit(lock, scope, &state, false).await?;
        }
        summary.finish(&state, started.elapsed(), stopped_early);
        tracing::info!("{summary}");
        Ok((summary, state))
    }

    /// One run over explicit ranges: windows of `step` from the end of the last committed
    /// window (or from `bounds.0`) up to `bounds.1`, each read by a source of its own and
    /// committed once its last page was delivered. A window interrupted is read again, from
    /// its saved position, by the next run.
    #[allow(clippy::too_many_arguments)]
    async fn run_windows(
        &self,
        mut state: State,
        scope: &Scope,
        bounds: (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
        output: &mut Output<'_>,
        lock: &mut Option<Box<dyn StateLock>>,
        until: Option<chrono::DateTime<chrono::Utc>>,
        options: &RunOptions,
    ) -> Result<(RunSummary, State), RunError> {
        let started = Instant::now();
        let mut summary = RunSummary::start(&self.pipeline.name, &state, options.dry_run);
        let (origin, bound) = bounds;
        let step = self
            .windows()
            .and_then(|window| chrono::TimeDelta::from_std(window.step).ok())
            .unwrap_or(chrono::TimeDelta::MAX);
        let mut stopped_early = false;
        loop {
            if options.stop_requested() {
                stopped_early = true;
                break;
            }
            let progress = state.window.unwrap_or_default();
            let start = progress.end.unwrap_or(origin);
            let end = match progress.reading {
                Some(reading) => {
                    tracing::warn!(
                        pipeline = %self.pipeline.name,
                        "the window from {} to {} was interrupted; reading it again from its \
                         saved position",
                        rfc3339(start),
                        rfc3339(reading)
                    );
                    reading
                }
                None => {
                    let end = start
                        .checked_add_signed(step)
                        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
                        .min(bound);
                    if end <= start {
                        break;
                    }
                    end
                }
            };
            let mut reading = WindowProgress::default();
            reading.end = progress.end;
            reading.reading = Some(end);
            state.window = Some(reading);
            tracing::info!(
                pipeline = %self.pipeline.name,
                "reading the window from {} to {}",
                rfc3339(start),
                rfc3339(end)
            );
            let mut source = build::source(
                &self.pipeline.input,
                Some(&state),
                RunWindow::between(start, end),
                options.stop.as_ref(),
            )
            .await?;
            if self
                .deliver(
                    &mut state,
                    scope,
                    source.as_mut(),
                    output,
                    lock,
                    until,
                    options,
                    &mut summary,
                )
                .await?
            {
                stopped_early = true;
                break;
            }
            state.complete_run(source.final_offset());
            let mut read = WindowProgress::default();
            read.end = Some(end);
            state.window = Some(read);
            Self::commit(lock, scope, &state, false).await?;
            tracing::debug!(window_end = %rfc3339(end), "window committed");
        }
        summary.finish(&state, started.elapsed(), stopped_early);
        tracing::info!("{summary}");
        Ok((summary, state))
    }

    /// The batch loop over `source`; commits go through `lock` (without one, a dry run,
    /// nothing is written). Returns whether the run stopped early on request.
    #[allow(clippy::too_many_arguments)]
    async fn deliver(
        &self,
        state: &mut State,
        scope: &Scope,
        source: &mut dyn Source,
        output: &mut Output<'_>,
        lock: &mut Option<Box<dyn StateLock>>,
        until: Option<chrono::DateTime<chrono::Utc>>,
        options: &RunOptions,
        summary: &mut RunSummary,
    ) -> Result<bool, RunError> {
        let mut stopped_early = false;
        let gathering = Gathering::of(&self.pipeline.output);
        let mut gathered = Gathered::default();
        let mut ahead = ReadAhead::default();
        // Everything read before this call went out: the batches delivered so far number them.
        let mut read_batches = summary.batches;
        loop {
            let next = if options.stop_requested() {
                // A failure met while reading ahead is still one; batches read ahead are not
                // delivered, as a batch not yet read.
                match ahead.failure(options) {
                    Some(source) => Err(source),
                    None => {
                        stopped_early = true;
                        break;
                    }
                }
            } else {
                match ahead.take() {
                    Some(read) => read,
                    None => match self
                        .read_lingering(
                            source,
                            &mut gathered,
                            (scope, output, lock),
                            state,
                            summary,
                            options,
                        )
                        .await?
                    {
                        Some(read) => read.map(|batch| batch.map(Read::Batch)),
                        None => {
                            stopped_early = true;
                            break;
                        }
                    },
                }
            };
            // A source error and a cursor error end the run the same way: what was gathered
            // before goes out first.
            let admitted = match next {
                Ok(None) => break,
                Err(error) if options.stopped_by(&error) => {
                    tracing::info!(
                        pipeline = %self.pipeline.name,
                        "{error}; nothing of this batch was delivered or committed"
                    );
                    stopped_early = true;
                    break;
                }
                Err(source) => Err(RunError::Source { source }),
                Ok(Some(read)) => {
                    read_batches += 1;
                    let screened = match read {
                        Read::Batch(batch) => self.screen(batch, &state.identities, until),
                        Read::Screened(screened) => screened,
                    };
                    summary.records_read += screened.read as u64;
                    if let Some(progress) = &options.progress {
                        progress.read(screened.read);
                    }
                    let Screened {
                        read,
                        bytes,
                        checkpoint,
                        outcome,
                    } = screened;
                    self.account(outcome, read_batches, summary)
                        .map(|admitted| (admitted, checkpoint, read, bytes))
                }
            };
            let (admitted, checkpoint, read, bytes) = match admitted {
                Ok(admitted) => admitted,
                Err(error) => {
                    return Err(self
                        .deliver_before_failing(
                            error,
                            &mut gathered,
                            (scope, output, lock),
                            state,
                            summary,
                            options,
                        )
                        .await);
                }
            };
            let number = read_batches;
            let position = admitted.position;
            let records = admitted.records;
            // A source batch is never split: when it does not fit beside what is gathered,
            // that goes out first, committed with the state of the batches it holds.
            if !gathered.fits(read, bytes, gathering)
                && self
                    .flush_reading_ahead(
                        &mut gathered,
                        (&mut ahead, true),
                        source,
                        (scope, output, lock),
                        (state, until),
                        summary,
                        options,
                    )
                    .await?
                    == Delivery::Stopped
            {
                stopped_early = true;
                break;
            }
            match checkpoint {
                Checkpoint::Advance => {
                    if let Some(position) = &position {
                        state.advance(position);
                    }
                }
                Checkpoint::Progress { resume, offset } => {
                    state.record_progress(position.as_ref(), resume, offset, chrono::Utc::now());
                }
            }
            if admitted.held > 0 {
                summary.records_held += admitted.held;
                tracing::info!(
                    pipeline = %self.pipeline.name,
                    batch = number,
                    held = admitted.held,
                    "batch {number}: {} record(s) newer than now - statePersistence.delay are \
                     held back for a later run",
                    admitted.held
                );
            }
            if admitted.repeated > 0 {
                summary.records_repeated += admitted.repeated;
                tracing::info!(
                    pipeline = %self.pipeline.name,
                    batch = number,
                    repeated = admitted.repeated,
                    "batch {number}: {} record(s) of the lookback window were delivered before \
                     and are left out",
                    admitted.repeated
                );
            }
            // Remembered at once, so that a later batch of the same delivery that repeats a
            // record leaves it out; committed only with the delivery that holds it.
            for entry in admitted.identities {
                state.identities.insert_entry(entry);
            }
            self.prune_identities(state);
            gathered.add(number, read, bytes, records);
            if gathered.full(gathering)
                && self
                    .flush_reading_ahead(
                        &mut gathered,
                        (&mut ahead, false),
                        source,
                        (scope, output, lock),
                        (state, until),
                        summary,
                        options,
                    )
                    .await?
                    == Delivery::Stopped
            {
                stopped_early = true;
                break;
            }
        }
        // The source ended or a stop was asked for: what is gathered goes out now. After a
        // sink that gave up for the stop, nothing is left to deliver.
        if gathered.changed
            && self
                .flush(&mut gathered, scope, output, lock, state, summary, options)
                .await?
                == Delivery::Stopped
        {
            stopped_early = true;
        }
        Ok(stopped_early)
    }

    /// Admits a source batch (admission reads the cursor values, before any filter: a filter
    /// never moves a cursor, and a dropped record still counts for it) and applies the filters
    /// to the records that pass, against the identities `delivered` so far. Changes nothing:
    /// [`Executor::account`] counts and logs the outcome when the batch takes its turn, so
    /// that a batch read ahead can be screened while the delivery before it is written.
    fn screen(
        &self,
        batch: Batch,
        delivered: &cannectors_state::Identities,
        until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Screened {
        let read = batch.records.len();
        let bytes = text_bytes(&batch.records);
        let outcome = self
            .admission
            .admit(
                batch.records,
                (batch.greatest, batch.keys),
                delivered,
                until,
            )
            .map_err(Unadmitted::Cursor)
            .and_then(|mut admitted| {
                if self.filters.is_empty() {
                    return Ok((admitted, 0, 0));
                }
                let filtered = self
                    .filters
                    .apply(std::mem::take(&mut admitted.records))
                    .map_err(|source| Unadmitted::Filter {
                        missing: (admitted.skipped, admitted.without_cursor),
                        source,
                    })?;
                admitted.records = filtered.records;
                Ok((admitted, filtered.dropped, filtered.skipped))
            });
        Screened {
            read,
            bytes,
            checkpoint: batch.checkpoint,
            outcome,
        }
    }

    /// Counts and logs what [`Executor::screen`] found in source batch `number`; the records
    /// to deliver, or the failure of the batch.
    fn account(
        &self,
        outcome: Result<(admit::Admitted, u64, u64), Unadmitted>,
        number: u64,
        summary: &mut RunSummary,
    ) -> Result<admit::Admitted, RunError> {
        let (admitted, dropped, skipped) = match outcome {
            Ok(screened) => screened,
            Err(Unadmitted::Cursor(source)) => {
                return Err(RunError::Cursor {
                    batch: number,
                    source,
                });
            }
            Err(Unadmitted::Filter { missing, source }) => {
                self.log_missing_cursors(missing, number, summary);
                return Err(RunError::Filter {
                    batch: number,
                    source,
                });
            }
        };
        self.log_missing_cursors((admitted.skipped, admitted.without_cursor), number, summary);
        summary.records_dropped += dropped;
        summary.records_skipped += skipped;
        Ok(admitted)
    }

    /// Counts and logs the records of source batch `number` that had no cursor value:
    /// `skipped` left out, `without_cursor` delivered without moving the cursor.
    fn log_missing_cursors(
        &self,
        (skipped, without_cursor): (u64, u64),
        number: u64,
        summary: &mut RunSummary,
    ) {
        if skipped > 0 {
            summary.records_missing_cursor += skipped;
            tracing::warn!(
                pipeline = %self.pipeline.name,
                batch = number,
                skipped,
                "batch {number}: {skipped} record(s) without a timestamp or id cursor value were \
                 not delivered (statePersistence.onMissingCursor: skip)"
            );
        }
        if without_cursor > 0 {
            tracing::info!(
                pipeline = %self.pipeline.name,
                batch = number,
                delivered = without_cursor,
                "batch {number}: {without_cursor} record(s) without a timestamp or id cursor \
                 value are delivered without moving the cursor \
                 (statePersistence.onMissingCursor: deliver)"
            );
        }
    }

    /// The source's next answer. By default what is gathered does not wait more than
    /// [`DEFAULT_LINGER`] for it: past that it is delivered while the read goes on. `None` when
    /// that delivery gave up for a stop.
    async fn read_lingering(
        &self,
        source: &mut dyn Source,
        gathered: &mut Gathered,
        (scope, output, lock): (&Scope, &mut Output<'_>, &mut Option<Box<dyn StateLock>>),
        state: &State,
        summary: &mut RunSummary,
        options: &RunOptions,
    ) -> Result<Option<Result<Option<Batch>, BoxError>>, RunError> {
        let linger = Gathering::of(&self.pipeline.output).linger();
        let Some(deadline) = linger
            .filter(|_| gathered.changed)
            .map(|linger| gathered.since + linger)
        else {
            return Ok(Some(source.next_batch().await));
        };
        let mut reading = source.next_batch();
        if let Ok(read) = tokio::time::timeout_at(deadline, &mut reading).await {
            return Ok(Some(read));
        }
        let (delivery, read) = tokio::join!(
            self.flush(gathered, scope, output, lock, state, summary, options),
            reading,
        );
        Ok((delivery? == Delivery::Committed).then_some(read))
    }

    /// Delivers and commits what is gathered before the run fails with `error`, met in a later
    /// source batch: as when each source batch is a delivery of its own, the batches before
    /// the failing one are delivered and their state committed, so that the next run does not
    /// read them again. Returns `error`, or the failure of that delivery if it fails too (then
    /// `error` is logged).
    async fn deliver_before_failing(
        &self,
        error: RunError,
        gathered: &mut Gathered,
        (scope, output, lock): (&Scope, &mut Output<'_>, &mut Option<Box<dyn StateLock>>),
        state: &State,
        summary: &mut RunSummary,
        options: &RunOptions,
    ) -> RunError {
        if !gathered.changed {
            return error;
        }
        match self
            .flush(gathered, scope, output, lock, state, summary, options)
            .await
        {
            Ok(_) => error,
            Err(failure) => {
                tracing::error!(pipeline = %self.pipeline.name, "{error}");
                failure
            }
        }
    }

    /// [`Executor::flush`], reading the source's next batches meanwhile, so that fetching and
    /// decoding them overlaps the sink's write and the commit's syncs instead of waiting for
    /// them. The batches read ahead are only held: they are counted, gathered and committed in
    /// their turn, after this delivery's commit, and are never delivered or committed if the
    /// run stops or fails first. The first of them is admitted and filtered at once
    /// ([`Executor::screen`]), unless it is read beside a batch that did not fit.
    ///
    /// With `batchSize`, up to `batchSize` records are read ahead. By default one source batch
    /// is, and none when a batch that did not fit is already `pending` beside the delivery: a
    /// default delivery goes out as soon as a batch like its last would not fit (see
    /// [`Gathered::full`]), so the batch read ahead is the one it would otherwise have held
    /// back, and a run holds no more records than a delivery and one batch. Without
    /// `batchSize` on an httpRequest output (or with `batchSize: 1`) nothing more is read ahead
    /// than the source's own prefetch.
    #[allow(clippy::too_many_arguments)]
    async fn flush_reading_ahead(
        &self,
        gathered: &mut Gathered,
        (ahead, pending): (&mut ReadAhead, bool),
        source: &mut dyn Source,
        (scope, output, lock): (&Scope, &mut Output<'_>, &mut Option<Box<dyn StateLock>>),
        (state, until): (&State, Option<chrono::DateTime<chrono::Utc>>),
        summary: &mut RunSummary,
        options: &RunOptions,
    ) -> Result<Delivery, RunError> {
        let (records, batches) = match Gathering::of(&self.pipeline.output) {
            Gathering::Fixed(limit) => (limit.get(), usize::MAX),
            Gathering::Default if !pending => (DEFAULT_DELIVERY_RECORDS, 1),
            Gathering::Default | Gathering::PerBatch => {
                return self
                    .flush(gathered, scope, output, lock, state, summary, options)
                    .await;
            }
        };
        // The first batch read ahead is screened as it arrives, while the delivery's write and
        // syncs are waited for: every batch before it is gathered and its identities known.
        // Not beside a batch that did not fit, whose identities are not added yet, nor after
        // the first, which must see the identities of the one before it.
        let screen = |batch| self.screen(batch, &state.identities, until);
        let screen = (!pending).then_some(&screen as &(dyn Fn(Batch) -> Screened + Sync));
        let (delivery, ()) = tokio::join!(
            self.flush(gathered, scope, output, lock, state, summary, options),
            ahead.fill(source, (records, batches), screen, options),
        );
        delivery
    }

    /// Delivers what is gathered in one write, then commits `state` (the state after the last
    /// source batch gathered) once. Leaves nothing gathered, whatever happens.
    #[allow(clippy::too_many_arguments)]
    async fn flush(
        &self,
        gathered: &mut Gathered,
        scope: &Scope,
        output: &mut Output<'_>,
        lock: &mut Option<Box<dyn StateLock>>,
        state: &State,
        summary: &mut RunSummary,
        options: &RunOptions,
    ) -> Result<Delivery, RunError> {
        let Gathered {
            records,
            first,
            last,
            ..
        } = std::mem::take(gathered);
        // A lease found taken over in the background stops the run before it delivers more.
        if let Some(lock) = lock.as_ref() {
            lock.check()?;
        }
        let mut committed = false;
        let refused_before = output.refused();
        if !records.is_empty() {
            let written = match output {
                Output::Sink(sink) => {
                    Self::stage(lock, scope, state).await?;
                    sink.write(&records).await
                }
                Output::Transactional(sink) => {
                    match lock
                        .as_mut()
                        .and_then(|lock| lock.as_any_mut())
                        .and_then(|lock| lock.downcast_mut::<PgLease>())
                    {
                        Some(lease) => {
                            let persisted = scope.persisted(state, false);
                            match sink.write_committing(&records, lease, &persisted).await {
                                Ok(()) => {
                                    committed = true;
                                    Ok(())
                                }
                                // Fenced, or the store refused the state: the rows were rolled
                                // back with it.
                                Err(OutputError::Database {
                                    source: DatabaseError::StateCommit { source },
                                }) => return Err(RunError::State(source)),
                                Err(error) => Err(BoxError::from(error)),
                            }
                        }
                        // Only a PostgreSQL store, which the exactly-once path requires, hands
                        // out a lease; anything else commits after the write, as always.
                        None => Sink::write(*sink, &records).await,
                    }
                }
            };
            match written {
                Ok(()) => {}
                Err(error) if options.stopped_by(&error) => {
                    tracing::info!(
                        pipeline = %self.pipeline.name,
                        "batches {first} to {last}: {error}"
                    );
                    return Ok(Delivery::Stopped);
                }
                Err(source) => {
                    return Err(RunError::Sink {
                        batch: last,
                        records: records.len(),
                        source,
                    });
                }
            }
        }
        let refused = output.refused().saturating_sub(refused_before);
        summary.records_refused += refused;
        summary.records_written += (records.len() as u64).saturating_sub(refused);
        summary.batches = summary.batches.max(last);
        // How long the commit took, for `cargo xtask bench db` (its share of a run); on the
        // exactly-once path it was part of the write, and the database output logs it.
        let commit_started = Instant::now();
        if !committed {
            Self::commit(lock, scope, state, false).await?;
        }
        let commit_us = (!committed).then(|| commit_started.elapsed().as_micros() as u64);
        if let Some(progress) = &options.progress {
            progress.committed(records.len());
        }
        // `batch` is the last source batch of the delivery, as it was when each batch was a
        // delivery of its own.
        tracing::debug!(
            batch = last,
            first_batch = first,
            records = records.len(),
            commit_us,
            "batch committed"
        );
        Ok(Delivery::Committed)
    }
}

/// The sink a run built from the configuration.
enum BuiltSink {
    /// Any sink; the executor commits after it accepted a delivery.
    Plain(Box<dyn Sink>),
    /// A database sink into the state store's own database (the exactly-once path).
    Transactional(Box<DatabaseSink>),
}

impl BuiltSink {
    fn output(&mut self) -> Output<'_> {
        match self {
            BuiltSink::Plain(sink) => Output::Sink(sink.as_mut()),
            BuiltSink::Transactional(sink) => Output::Transactional(sink.as_mut()),
        }
    }
}

/// Where the executor hands its deliveries.
enum Output<'s> {
    /// A sink: the executor commits through its lock once the sink accepted a delivery.
    Sink(&'s mut dyn Sink),
    /// A database sink into the store's database: it writes each delivery and commits its
    /// state through the lease in one transaction.
    Transactional(&'s mut DatabaseSink),
}

impl Output<'_> {
    /// Records the sink left out on purpose since it was built ([`Sink::refused`]).
    fn refused(&self) -> u64 {
        match self {
            Output::Sink(sink) => sink.refused(),
            Output::Transactional(sink) => Sink::refused(&**sink),
        }
    }
}

/// How a delivery ended.
#[derive(Debug, PartialEq, Eq)]
enum Delivery {
    /// The sink accepted it and the state is committed (or, in a dry run, would be).
    Committed,
    /// The sink gave up a wait because the run was asked to stop: nothing is committed.
    Stopped,
}

/// Records a delivery holds at most without `batchSize` (file, stdout and database outputs).
const DEFAULT_DELIVERY_RECORDS: usize = 10_000;
/// Bytes of record text a delivery holds at most without `batchSize`: about what one sync
/// needs to be a small part of the time of writing it, and what keeps the memory of a run
/// of large records near that of a page (a page larger than that is a delivery alone).
const DEFAULT_DELIVERY_BYTES: usize = 1 << 20;
/// How long a delivery waits at most, without `batchSize`, for more batches after its first.
const DEFAULT_LINGER: std::time::Duration = std::time::Duration::from_millis(200);

/// How source batches make deliveries (the output's `batchSize`, docs/outputs.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gathering {
    /// `batchSize`: whole source batches up to this many records a delivery, waiting for them.
    Fixed(NonZeroUsize),
    /// No `batchSize` on a file, stdout or database output: whole source batches up to
    /// [`DEFAULT_DELIVERY_RECORDS`] records and [`DEFAULT_DELIVERY_BYTES`] of text, the first
    /// waiting at most [`DEFAULT_LINGER`] for the others, and going out as soon as a batch as
    /// large as the last would not fit; the next batch is read while it is written. A run of
    /// small pages then pays its syncs (or transaction) once for many of them, a slow source
    /// is not held back, and reading overlaps writing.
    Default,
    /// No `batchSize` on an httpRequest output, or `batchSize: 1`: each source batch is a
    /// delivery of its own, and nothing is read ahead but the source's own prefetch. Without
    /// `batchSize` on an httpRequest output because the size of a request is the destination's
    /// business.
    PerBatch,
}

impl Gathering {
    fn of(output: &cannectors_config::OutputConfig) -> Gathering {
        match (output.batch_size(), output) {
            // Every source batch is bigger than that: one delivery each, as without gathering.
            (Some(limit), _) if limit.get() == 1 => Gathering::PerBatch,
            (Some(limit), _) => Gathering::Fixed(limit),
            (None, cannectors_config::OutputConfig::HttpRequest(_)) => Gathering::PerBatch,
            (None, _) => Gathering::Default,
        }
    }

    /// How long what is gathered waits for more source batches.
    fn linger(self) -> Option<std::time::Duration> {
        (self == Gathering::Default).then_some(DEFAULT_LINGER)
    }
}

/// Whole source batches waiting to go out in one delivery (see [`Gathering`]), with the
/// records of them that pass admission and filters. Memory stays bounded by the delivery's
/// size: a batch that does not fit beside what is gathered waits until that went out.
#[derive(Debug)]
struct Gathered {
    /// The records to deliver, in source order.
    records: Vec<Record>,
    /// Records the source returned in the batches gathered, delivered or not: what bounds a
    /// delivery, so that a filter dropping most records does not hold commits back.
    read: usize,
    /// Bytes of text of those records.
    bytes: usize,
    /// When the first batch was gathered.
    since: tokio::time::Instant,
    /// Numbers of the first and last batch gathered, from 1.
    first: u64,
    last: u64,
    /// Some batch changed the state since the last commit.
    changed: bool,
    /// Records and bytes of text of the last source batch gathered.
    last_read: usize,
    last_bytes: usize,
}

impl Default for Gathered {
    fn default() -> Gathered {
        Gathered {
            records: Vec::new(),
            read: 0,
            bytes: 0,
            since: tokio::time::Instant::now(),
            first: 0,
            last: 0,
            changed: false,
            last_read: 0,
            last_bytes: 0,
        }
    }
}

impl Gathered {
    /// Whether a source batch of `read` records (`bytes` of text) may join what is gathered.
    fn fits(&self, read: usize, bytes: usize, gathering: Gathering) -> bool {
        !self.changed
            || match gathering {
                Gathering::Fixed(limit) => self.read + read <= limit.get(),
                Gathering::Default => {
                    self.read + read <= DEFAULT_DELIVERY_RECORDS
                        && self.bytes + bytes <= DEFAULT_DELIVERY_BYTES
                }
                Gathering::PerBatch => false,
            }
    }

    /// Whether what is gathered goes out now. With `batchSize`, when it holds that many
    /// records. By default, when it reached a bound or a source batch as large as the last one
    /// gathered would not fit beside it: waiting for that batch would only hold the delivery
    /// back until it arrived, then hold it beside the delivery while that is written.
    fn full(&self, gathering: Gathering) -> bool {
        let after_another = |limit: usize, gathered: usize, last: usize| {
            gathered >= limit || gathered.saturating_add(last) > limit
        };
        match gathering {
            Gathering::Fixed(limit) => self.read >= limit.get(),
            Gathering::Default => {
                after_another(DEFAULT_DELIVERY_RECORDS, self.read, self.last_read)
                    || after_another(DEFAULT_DELIVERY_BYTES, self.bytes, self.last_bytes)
            }
            Gathering::PerBatch => true,
        }
    }

    fn add(&mut self, number: u64, read: usize, bytes: usize, records: Vec<Record>) {
        if self.first == 0 {
            self.first = number;
            self.since = tokio::time::Instant::now();
        }
        self.last = number;
        self.read += read;
        self.bytes += bytes;
        self.last_read = read;
        self.last_bytes = bytes;
        if self.records.is_empty() {
            self.records = records;
        } else {
            self.records.extend(records);
        }
        self.changed = true;
    }
}

/// A source batch admitted and filtered ([`Executor::screen`]) but not yet counted.
struct Screened {
    /// Records the source returned, and their bytes of text.
    read: usize,
    bytes: usize,
    checkpoint: Checkpoint,
    /// The admitted records with the records the filters dropped and skipped, or why the
    /// batch fails.
    outcome: Result<(admit::Admitted, u64, u64), Unadmitted>,
}

/// Why a screened batch fails.
enum Unadmitted {
    /// A record's cursor value cannot be read.
    Cursor(cannectors_state::CursorError),
    /// A filter failed, after admission left out or let through `missing` records without a
    /// cursor value (skipped, delivered).
    Filter {
        missing: (u64, u64),
        source: FilterError,
    },
}

/// A source batch as read, or already screened while a delivery was written.
enum Read {
    Batch(Batch),
    Screened(Screened),
}

impl Read {
    fn records(&self) -> usize {
        match self {
            Read::Batch(batch) => batch.records.len(),
            Read::Screened(screened) => screened.read,
        }
    }
}

/// What the source answered while a delivery was being written, in order, waiting to be
/// taken by the batch loop as if it had just asked (see [`Executor::flush_reading_ahead`]).
#[derive(Default)]
struct ReadAhead {
    answers: VecDeque<Result<Option<Read>, BoxError>>,
    /// Records in the batches held.
    records: usize,
}

/// Record text in `batch`.
fn text_bytes(records: &[Record]) -> usize {
    records.iter().map(|record| record.json().len()).sum()
}

impl ReadAhead {
    /// The next answer held, if any.
    fn take(&mut self) -> Option<Result<Option<Read>, BoxError>> {
        let answer = self.answers.pop_front()?;
        if let Ok(Some(read)) = &answer {
            self.records -= read.records();
        }
        Some(answer)
    }

    /// The first failure held that is not the source giving up for a stop, with what was held
    /// before it dropped.
    fn failure(&mut self, options: &RunOptions) -> Option<BoxError> {
        while let Some(answer) = self.answers.pop_front() {
            match answer {
                Err(error) if !options.stopped_by(&error) => return Some(error),
                _ => {}
            }
        }
        None
    }

    /// Reads batches from `source` until `records` records or `batches` batches are held, the
    /// source ends or fails, or a stop is asked for; with `screen`, the first batch held is
    /// screened by it as soon as it is read. Nothing is read after an end or a failure: the
    /// loop meets it first.
    async fn fill(
        &mut self,
        source: &mut dyn Source,
        (records, batches): (usize, usize),
        screen: Option<&(dyn Fn(Batch) -> Screened + Sync)>,
        options: &RunOptions,
    ) {
        while self.records < records && self.answers.len() < batches && !options.stop_requested() {
            if matches!(self.answers.back(), Some(Ok(None) | Err(_))) {
                return;
            }
            let first = self.answers.is_empty();
            let answer = source.next_batch().await.map(|batch| {
                batch.map(|batch| match screen {
                    Some(screen) if first => Read::Screened(screen(batch)),
                    _ => Read::Batch(batch),
                })
            });
            if let Ok(Some(read)) = &answer {
                self.records += read.records();
            }
            self.answers.push_back(answer);
        }
    }
}

/// Gives the pipeline's lock back once a run is over, so that another process sharing the
/// store (a replica holding the same pipelines) can run it at once rather than after the lease
/// expired. A release that fails only delays that: the lease expires by itself.
async fn release(lock: Option<Box<dyn StateLock>>) {
    if let Some(lock) = lock
        && let Err(error) = lock.release().await
    {
        tracing::warn!("{error}");
    }
}
