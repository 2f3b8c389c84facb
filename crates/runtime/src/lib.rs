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
//! Without the output's `batchSize` every source batch is a delivery of its own.
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
//!             Ok(page.map(|records| Batch { records, checkpoint: Checkpoint::Advance, greatest: None }))
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
mod progress;
mod store;
mod summary;

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use cannectors_config::{Lookback, Pipeline, StatePersistence};
use cannectors_connector::{
    BoxError, Checkpoint, Record, RunWindow, Sink, Source, StoppedByShutdown,
};
use cannectors_filter::{FilterError, Filters};
use cannectors_state::{CursorError, State, StateError, StateLock, StateStore};
use chrono::Timelike as _;
use tokio::sync::watch;

use admit::Admission;

pub use build::BuildError;
pub use progress::RunProgress;
pub use store::store_for;
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
        Ok(Some(self.store.lock().await?))
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

    /// One complete run with the source and sink the configuration names.
    pub async fn run(&self, options: &RunOptions) -> Result<RunSummary, RunError> {
        let mut lock = self.writer(options).await?;
        let state = self.load().await?;
        tracing::info!(
            pipeline = %self.pipeline.name,
            state_file = %self.store.location(),
            "starting run"
        );
        // With lookback the first request reaches back before the committed timestamp; the
        // run commits to `state` as always.
        let reading = match (&self.lookback, &state) {
            (Some(lookback), Some(state)) => Some(state.reaching_back(window_delta(lookback))),
            _ => state.clone(),
        };
        let window = self.window();
        let mut source = build::source(
            &self.pipeline.input,
            reading.as_ref(),
            window,
            options.stop.as_ref(),
        )
        .await?;
        if options.dry_run {
            let mut sink = build::DryRun::new(&self.pipeline.output);
            return self
                .run_loaded(
                    state,
                    source.as_mut(),
                    &mut sink,
                    &mut lock,
                    window,
                    options,
                )
                .await;
        }
        let mut sink = build::sink(&self.pipeline.output, options.stop.as_ref())?;
        self.run_loaded(
            state,
            source.as_mut(),
            sink.as_mut(),
            &mut lock,
            window,
            options,
        )
        .await
    }

    /// One run over a given source and sink, under the pipeline's lock (none for a dry run).
    pub async fn run_with(
        &self,
        source: &mut dyn Source,
        sink: &mut dyn Sink,
        options: &RunOptions,
    ) -> Result<RunSummary, RunError> {
        let mut lock = self.writer(options).await?;
        let state = self.load().await?;
        self.run_loaded(state, source, sink, &mut lock, self.window(), options)
            .await
    }

    /// The batch loop. Commits go through `lock`; without one (a dry run) nothing is written.
    async fn run_loaded(
        &self,
        loaded: Option<State>,
        source: &mut dyn Source,
        sink: &mut dyn Sink,
        lock: &mut Option<Box<dyn StateLock>>,
        window: RunWindow,
        options: &RunOptions,
    ) -> Result<RunSummary, RunError> {
        let started = Instant::now();
        // The bound the source was built with: records after it wait for a later run.
        let until = self.delay.map(|_| window.end);
        let mut state = loaded.unwrap_or_default();
        let mut summary = RunSummary::start(&self.pipeline.name, &state, options.dry_run);
        let mut stopped_early = false;
        if state.run.is_some() {
            tracing::warn!(
                pipeline = %self.pipeline.name,
                "the previous run was interrupted; resuming from its saved position"
            );
        }
        let limit = self.pipeline.output.batch_size();
        let mut gathered = Gathered::default();
        let mut read_batches = 0u64;
        loop {
            if options.stop_requested() {
                stopped_early = true;
                break;
            }
            let batch = match source.next_batch().await {
                Ok(Some(batch)) => batch,
                Ok(None) => {
                    // The source is done: what is gathered goes out with the completed run in
                    // one commit. A run that read nothing new commits nothing: the state file
                    // stays as it was, byte for byte.
                    if state.run.is_some() {
                        state.complete_run(source.final_offset());
                        self.prune_identities(&mut state);
                        gathered.changed = true;
                    }
                    break;
                }
                Err(error) if options.stopped_by(&error) => {
                    tracing::info!(
                        pipeline = %self.pipeline.name,
                        "{error}; nothing of this batch was delivered or committed"
                    );
                    stopped_early = true;
                    break;
                }
                Err(source) => return Err(RunError::Source { source }),
            };
            read_batches += 1;
            let number = read_batches;
            let read = batch.records.len();
            summary.records_read += read as u64;
            if let Some(progress) = &options.progress {
                progress.read(read);
            }
            let admitted = self
                .admission
                .admit(batch.records, batch.greatest, &state.identities, until)
                .map_err(|source| RunError::Cursor {
                    batch: number,
                    source,
                })?;
            let position = admitted.position;
            if admitted.skipped > 0 {
                summary.records_missing_cursor += admitted.skipped;
                tracing::warn!(
                    pipeline = %self.pipeline.name,
                    batch = number,
                    skipped = admitted.skipped,
                    "batch {number}: {} record(s) without a timestamp or id cursor value were \
                     not delivered (statePersistence.onMissingCursor: skip)",
                    admitted.skipped
                );
            }
            if admitted.without_cursor > 0 {
                tracing::info!(
                    pipeline = %self.pipeline.name,
                    batch = number,
                    delivered = admitted.without_cursor,
                    "batch {number}: {} record(s) without a timestamp or id cursor value are \
                     delivered without moving the cursor (statePersistence.onMissingCursor: \
                     deliver)",
                    admitted.without_cursor
                );
            }
            // After the cursor values were read: a filter never moves a cursor, and a dropped
            // record still counts for it.
            let records: Vec<Record> = if self.filters.is_empty() {
                admitted.records
            } else {
                let filtered =
                    self.filters
                        .apply(admitted.records)
                        .map_err(|source| RunError::Filter {
                            batch: number,
                            source,
                        })?;
                summary.records_dropped += filtered.dropped;
                summary.records_skipped += filtered.skipped;
                filtered.records
            };
            // A source batch is never split: when it does not fit beside what is gathered,
            // that goes out first, and committed with the state of the batches it holds.
            if !gathered.fits(read, limit)
                && self
                    .deliver(&mut gathered, sink, lock, &state, &mut summary, options)
                    .await?
                    == Delivery::Stopped
            {
                stopped_early = true;
                break;
            }
            match batch.checkpoint {
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
            for (instant, identity) in admitted.identities {
                state.identities.insert(instant, identity);
            }
            self.prune_identities(&mut state);
            gathered.add(number, read, records);
            if gathered.full(limit)
                && self
                    .deliver(&mut gathered, sink, lock, &state, &mut summary, options)
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
                .deliver(&mut gathered, sink, lock, &state, &mut summary, options)
                .await?
                == Delivery::Stopped
        {
            stopped_early = true;
        }
        summary.finish(&state, started.elapsed(), stopped_early);
        tracing::info!("{summary}");
        Ok(summary)
    }

    /// Delivers what is gathered in one write, then commits `state` (the state after the last
    /// source batch gathered) once. Leaves nothing gathered, whatever happens.
    async fn deliver(
        &self,
        gathered: &mut Gathered,
        sink: &mut dyn Sink,
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
        if !records.is_empty() {
            match sink.write(&records).await {
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
        summary.records_written += records.len() as u64;
        summary.batches = summary.batches.max(last);
        if let Some(lock) = lock.as_mut() {
            lock.commit(state).await?;
        }
        if let Some(progress) = &options.progress {
            progress.committed(records.len());
        }
        // `batch` is the last source batch of the delivery, as it was when each batch was a
        // delivery of its own.
        tracing::debug!(
            batch = last,
            first_batch = first,
            records = records.len(),
            "batch committed"
        );
        Ok(Delivery::Committed)
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

/// Whole source batches waiting to go out in one delivery (`batchSize`), with the records of
/// them that pass admission and filters. Memory stays bounded by `batchSize`: a batch that does
/// not fit beside what is gathered waits until that went out.
#[derive(Debug, Default)]
struct Gathered {
    /// The records to deliver, in source order.
    records: Vec<Record>,
    /// Records the source returned in the batches gathered, delivered or not: what bounds a
    /// delivery, so that a filter dropping most records does not hold commits back.
    read: usize,
    /// Numbers of the first and last batch gathered, from 1.
    first: u64,
    last: u64,
    /// Some batch (or the end of the run) changed the state since the last commit.
    changed: bool,
}

impl Gathered {
    /// Whether a source batch of `read` records may join what is gathered.
    fn fits(&self, read: usize, limit: Option<NonZeroUsize>) -> bool {
        !self.changed || limit.is_some_and(|limit| self.read + read <= limit.get())
    }

    /// Whether what is gathered goes out now; without a limit, every batch goes out alone.
    fn full(&self, limit: Option<NonZeroUsize>) -> bool {
        limit.is_none_or(|limit| self.read >= limit.get())
    }

    fn add(&mut self, number: u64, read: usize, records: Vec<Record>) {
        if self.first == 0 {
            self.first = number;
        }
        self.last = number;
        self.read += read;
        if self.records.is_empty() {
            self.records = records;
        } else {
            self.records.extend(records);
        }
        self.changed = true;
    }
}
