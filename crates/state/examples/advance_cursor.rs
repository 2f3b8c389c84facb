//! Reads a pipeline's cursor, advances it past a batch of records and commits it, with
//! cannectors-state alone: what a program of another team does to share cursors with
//! cannectors pipelines, or to move them by rules of its own.
//!
//! `cargo run -p cannectors-state --example advance_cursor` runs it in a temporary directory,
//! twice: the second batch starts from what the first one committed.

use std::error::Error;
use std::path::Path;

use cannectors_state::{CursorFields, FieldPath, FileStore, State, StateStore};
use serde_json::{Value, json};

/// Advances the cursor of a store in a temporary directory past each batch, and prints it.
#[tokio::main(flavor = "current_thread")]
pub async fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    for records in batches() {
        let state = advance(dir.path(), &records).await?;
        println!(
            "after {} records: timestamp {}, id {}",
            records.len(),
            state.timestamp.map_or("none".to_owned(), |t| t.to_string()),
            state.id.map_or("none".to_owned(), |id| id.to_string()),
        );
    }
    Ok(())
}

/// Two batches of an `orders` export, the second partly older than the first.
pub fn batches() -> [Vec<Value>; 2] {
    [
        vec![
            json!({"id": 7, "updated_at": "2026-03-01T10:00:00Z"}),
            json!({"id": 9, "updated_at": "2026-03-01T10:00:00Z"}),
            json!({"id": 3, "updated_at": "2026-02-28T23:00:00Z"}),
        ],
        vec![
            json!({"id": 2, "updated_at": "2026-03-01T09:00:00Z"}),
            json!({"id": 12, "updated_at": "2026-03-01T11:30:00+01:00"}),
        ],
    ]
}

/// One delivery of `records` from the state kept in `dir`: takes the pipeline's lock, loads
/// its cursors, moves them to the greatest record (never backwards) and commits through the
/// lock. Returns the state as stored afterwards.
pub async fn advance(dir: &Path, records: &[Value]) -> Result<State, Box<dyn Error>> {
    let store = FileStore::new("orders-export", Some(dir))?;
    let mut lock = store.lock().await?;
    let mut state = store.load().await?.unwrap_or_default();
    let fields = CursorFields::new(
        Some(FieldPath::parse("updated_at")?),
        Some(FieldPath::parse("id")?),
    );
    if let Some(greatest) = fields.greatest_position(records)? {
        // Here the records would be delivered; the cursor moves only once they were.
        state.advance(&greatest);
        lock.commit(&state).await?;
    }
    drop(lock);
    Ok(store.load().await?.unwrap_or_default())
}
