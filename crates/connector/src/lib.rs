//! The vocabulary shared by every source and sink of cannectors.
//!
//! A [`Source`] yields [`Batch`]es of [`Record`]s (a page of an API, one query result); a
//! [`Sink`] delivers them and returns only once they are durable at the destination. The
//! executor (in `cannectors-runtime`) sits between the two and commits the cursor after every
//! batch the sink accepted. Nothing here knows where state lives: a source receives the loaded
//! state read-only and reports, with each batch, how the executor should record it.
//!
//! The [`http`] module is the HTTP client both HTTP connectors share: authentication, retries,
//! timeouts, and errors that never show a secret.
//!
//! ```
//! use cannectors_connector::{Batch, Checkpoint, Record};
//! let batch = Batch {
//!     records: vec![Record::from(serde_json::json!({"id": 1}))],
//!     checkpoint: Checkpoint::Advance,
//!     greatest: None,  // the executor finds it
//!     keys: None, // and reads each record when it needs to
//! };
//! assert_eq!(batch.records.len(), 1);
//! ```

pub mod http;
mod prefetch;
mod record;

use std::future::Future;
use std::pin::Pin;

pub use http::redact::redact_url;
pub use prefetch::{Prefetch, PrefetchError};
pub use record::Record;

/// Any error a source or sink reports; its `Display` is written for the person at the terminal.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The cause a source or a sink reports when it gave up waiting (the backoff before a retry)
/// because a shutdown was requested: the batch it was working on is neither complete nor
/// failed, and the executor ends the run as stopped on request, committing nothing of it.
///
/// ```
/// use cannectors_connector::{BoxError, StoppedByShutdown};
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("page 3: {0}")]
/// struct PageError(#[source] StoppedByShutdown);
///
/// let error: BoxError = Box::new(PageError(StoppedByShutdown));
/// assert!(StoppedByShutdown::is_cause_of(&*error));
/// assert!(!StoppedByShutdown::is_cause_of(&std::fmt::Error));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stopped by shutdown")]
pub struct StoppedByShutdown;

impl StoppedByShutdown {
    /// Whether `error` is a [`StoppedByShutdown`] or has one among its causes.
    pub fn is_cause_of(error: &(dyn std::error::Error + 'static)) -> bool {
        let mut cause = Some(error);
        while let Some(current) = cause {
            if current.is::<StoppedByShutdown>() {
                return true;
            }
            cause = current.source();
        }
        false
    }
}

/// The range of record timestamps one run reads, beside the committed cursors, fixed when the
/// run starts: the upper bound `end` is `now - delay` (`statePersistence.delay`), or the start
/// of the run without a delay. Sources send it where the pipeline says (`{{window.end}}`,
/// `timestamp.untilParam`, the SQL parameter `window.end`); the executor holds back what lies
/// beyond it when a delay is set.
///
///
/// A run over explicit ranges (`window: {start, step}` on httpPolling, or a backfill) also has
/// a lower bound `start`, sent as `{{window.start}}` or the SQL parameter `window.start`.
///
/// ```
/// use cannectors_connector::RunWindow;
/// let start = chrono::Utc::now();
/// let window = RunWindow::ending_at(start - chrono::TimeDelta::seconds(30));
/// assert!(window.end < start);
/// assert_eq!(window.start, None);
/// let range = RunWindow::between(start - chrono::TimeDelta::days(1), start);
/// assert!(range.start.is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunWindow {
    /// The least record timestamp the run reads, when the run has an explicit range.
    pub start: Option<chrono::DateTime<chrono::Utc>>,
    /// The greatest record timestamp the run reads (inclusive).
    pub end: chrono::DateTime<chrono::Utc>,
}

impl RunWindow {
    /// A window up to `end`.
    pub fn ending_at(end: chrono::DateTime<chrono::Utc>) -> RunWindow {
        RunWindow { start: None, end }
    }

    /// A window from `start` up to `end`.
    pub fn between(
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
    ) -> RunWindow {
        RunWindow {
            start: Some(start),
            end,
        }
    }

    /// A window up to now: what a source built without a window sends.
    pub fn until_now() -> RunWindow {
        RunWindow::ending_at(chrono::Utc::now())
    }
}

/// A boxed future, so that sources and sinks can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A group of records that is delivered and committed as one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The records, in source order.
    pub records: Vec<Record>,
    /// How the executor records this batch once the sink accepted it.
    pub checkpoint: Checkpoint,
    /// The greatest cursor position of `records`, when the source already found it with the
    /// pipeline's `CursorFields` (the HTTP source does while the previous batch is written, the
    /// database source reads it from the binary row values), so that the executor does not look
    /// through the records again. `None`: the executor finds it, and reports a record whose
    /// cursor field is missing or unreadable.
    pub greatest: Option<cannectors_state::Position>,
    /// The cursor key of each record, in order, when the source already found them with the
    /// pipeline's `CursorFields`, as `CursorFields::keys_of_found` gives them (the HTTP source
    /// does for a pipeline that looks at records one by one: `lookback`, `delay`, windows,
    /// `onMissingCursor` other than `fail`), so that the executor does not read every record
    /// again. `greatest` is then the position of the first record with the greatest key.
    /// `None`: the executor reads them from the records when it needs them.
    pub keys: Option<Vec<Option<cannectors_state::CursorKey>>>,
}

/// How a delivered batch moves the state forward.
#[derive(Debug, Clone, PartialEq)]
pub enum Checkpoint {
    /// The source is ordered by its cursor (a database query ordered by its cursor columns):
    /// the greatest position of the batch becomes the committed cursor at once.
    Advance,
    /// The source is paginated within one run and not necessarily sorted by the cursor: the
    /// executor saves `resume` in the run's progress, and promotes the greatest position seen
    /// to the committed cursors only when the run completes.
    Progress {
        /// Where the next request of this run starts (opaque to everyone but the source that
        /// wrote it): a restarted run hands it back to the source through the loaded state.
        resume: serde_json::Value,
        /// The pagination offset reached after this batch, for the `offset` cursor.
        offset: Option<u64>,
    },
}

/// Where records come from.
///
/// A source that failed stays failed: once `next_batch` returned an error, or its future was
/// dropped before it finished, every later call returns an error (the same one, or one saying
/// that the source failed earlier), never `Ok(None)`, which would read as a complete run and
/// let a caller promote cursors over records that were never delivered. [`Prefetch`] keeps
/// that rule for a source that fetches one batch ahead.
pub trait Source: Send {
    /// The next batch, or `None` when the run is complete; after an error, never `None` again.
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>, BoxError>>;

    /// The final pagination offset of a completed run, for the `offset` cursor.
    fn final_offset(&self) -> Option<u64> {
        None
    }
}

/// Where records go.
pub trait Sink: Send {
    /// Delivers the records; `Ok` means they are durable at the destination (flushed, fsynced,
    /// acknowledged or committed), so the executor may commit the cursor.
    fn write<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>>;

    /// Records the destination refused and this sink left out on purpose, since it was built
    /// (a database output under `onError: skip` or `log`). A `write` that leaves records out
    /// still returns `Ok`: the executor counts the difference to report them.
    fn refused(&self) -> u64 {
        0
    }
}
