//! Dot paths into JSON documents (`event.timestamp`, `data.items`, `items.0.id`).
//!
//! The type lives in the state crate, which reads cursor fields with it and depends on nothing
//! of the workspace; the pipeline model re-exports it, so that every place a path is written
//! (cursor fields, `dataField`, pagination fields, record parameters) reads a record the same way.

pub use cannectors_state::{FieldPath, FieldPathError};
