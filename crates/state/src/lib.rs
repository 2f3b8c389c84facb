//! Cursor state of cannectors pipelines: the one place that knows where a pipeline's cursors
//! live, how they are encoded, how they compare, and how they are written without ever losing
//! the previous value.
//!
//! - [`Timestamp`], [`CursorId`] and [`Position`]: cursor values and their order (timestamps as
//!   instants, ids as integers or strings, positions as (timestamp, id) pairs).
//! - [`CursorFields`]: the greatest position of a batch of JSON records.
//! - [`State`]: the committed cursors and the progress of a run in flight, with the transitions
//!   an executor applies after each delivered batch.
//! - [`StateStore`]: `<storagePath>/<name>.json`, crash-consistent commits, the run lock.
//!
//! The file format is described in `docs/state-file.md`.
//!
//! ```
//! use cannectors_config::FieldPath;
//! use cannectors_state::{CursorFields, State, StateStore};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = StateStore::new("events-sync", Some(dir.path()))?;
//! let _lock = store.lock()?; // one writer per pipeline
//! let mut state = store.load()?.unwrap_or_default(); // None on the first run
//!
//! let fields = CursorFields::new(Some(FieldPath::parse("updated_at")?), None);
//! let batch = [json!({"updated_at": "2026-01-01T10:00:00Z"}), json!({"updated_at": 1767261600})];
//! if let Some(greatest) = fields.greatest_position(&batch)? {
//!     state.advance(&greatest); // after the output accepted the batch
//!     store.commit(&state)?;
//! }
//!
//! let reloaded = store.load()?.expect("committed above");
//! assert_eq!(reloaded.timestamp.unwrap().to_rfc3339_utc(), "2026-01-01T10:00:00Z");
//! # Ok(())
//! # }
//! ```

mod cursor;
mod json_kind;
mod position;
mod state;
mod store;

pub use cursor::{CursorId, IdError, Timestamp, TimestampError};
pub use json_kind::json_kind;
pub use position::{CursorError, CursorFields, Position};
pub use state::{Run, State, StateFormatError};
pub use store::{RunLock, StateError, StateStore};
