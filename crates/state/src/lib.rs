//! Cursor state of data pipelines: the one place that knows where a pipeline's cursors live,
//! how they are encoded, how they compare, and how they are written without ever losing the
//! previous value. It depends on no other crate of cannectors, so that a program of its own can
//! read and advance cursors that cannectors pipelines also use.
//!
//! - [`Timestamp`], [`CursorId`] and [`Position`]: cursor values and their order (timestamps as
//!   instants, ids as integers or strings, positions as (timestamp, id) pairs).
//! - [`FieldPath`] and [`CursorFields`]: where the cursors are in a record, and the greatest
//!   position of a batch of JSON records.
//! - [`State`]: the committed cursors and the progress of a run in flight ([`Run`]), with the
//!   transitions an executor applies after each delivered batch.
//! - [`Identity`] and [`Identities`]: how a record is recognised, and the records delivered
//!   inside a lookback window, kept in the state so that a run reading the window again
//!   delivers only what is new.
//! - [`StateStore`]: where a pipeline's state is kept. [`StateStore::lock`] returns the one
//!   right to write it, a [`StateLock`]; only that guard can commit or reset, so writing
//!   without the lock does not compile.
//! - [`FileStore`]: the store in `<dir>/<name>.json`, with crash-consistent commits and an OS
//!   lock beside the file; a lookback window's identities go to a journal beside it, to which
//!   a commit appends what it added. Stores shared by several processes (cannectors-state-postgres) take
//!   a [`Lease`] instead, and report it with [`StateStore::lease`].
//!
//! Store operations return futures ([`StoreFuture`]), so that stores doing asynchronous I/O fit
//! the same trait; any executor runs them. The file format is described in `docs/state-file.md`.
//!
//! ```
//! use cannectors_state::{CursorFields, FieldPath, FileStore, StateStore};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = FileStore::new("events-sync", Some(dir.path()))?;
//! let mut lock = store.lock().await?; // one writer per pipeline
//! let mut state = store.load().await?.unwrap_or_default(); // None on the first run
//!
//! let fields = CursorFields::new(Some(FieldPath::parse("updated_at")?), None);
//! let batch = [json!({"updated_at": "2026-01-01T10:00:00Z"}), json!({"updated_at": 1767261600})];
//! if let Some(greatest) = fields.greatest_position(&batch)? {
//!     state.advance(&greatest); // after the output accepted the batch
//!     lock.commit(&state).await?; // only the lock writes
//! }
//! drop(lock);
//!
//! let reloaded = store.load().await?.expect("committed above");
//! assert_eq!(reloaded.timestamp.unwrap().to_rfc3339_utc(), "2026-01-01T10:00:00Z");
//! # Ok(())
//! # }
//! ```
//!
//! A store has no `commit` of its own:
//!
//! ```compile_fail,E0599
//! use cannectors_state::{FileStore, State, StateStore};
//! fn write_without_the_lock(store: &FileStore, state: &State) {
//!     let _ = store.commit(state); // error[E0599]: no method named `commit`
//! }
//! ```

mod cursor;
mod file_store;
mod identities;
mod journal;
mod json_kind;
mod path;
mod position;
mod state;
mod store;

pub use cursor::{CursorId, IdError, Timestamp, TimestampError};
pub use file_store::FileStore;
pub use identities::{Entry, Identities, Identity};
pub use journal::JournalProblem;
pub use json_kind::json_kind;
pub use path::{FieldPath, FieldPathError};
pub use position::{CursorError, CursorFields, CursorKey, OnMissingCursor, Position};
pub use state::{Backfill, Run, State, StateFormatError, WindowProgress};
pub use store::{Lease, MAX_NAME_LEN, StateError, StateLock, StateStore, StoreFuture};
