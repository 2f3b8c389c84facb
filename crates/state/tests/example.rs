//! The example program of the crate, run as it is: its file is compiled into this test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../examples/advance_cursor.rs"]
mod advance_cursor;

use cannectors_state::{CursorId, State};

#[test]
fn the_example_program_runs_to_the_end() {
    advance_cursor::main().unwrap();
}

#[tokio::test]
async fn the_example_advances_the_cursor_and_the_next_batch_starts_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let [first, second] = advance_cursor::batches();

    let after_first = advance_cursor::advance(dir.path(), &first).await.unwrap();
    assert_eq!(
        after_first.timestamp.unwrap().to_rfc3339_utc(),
        "2026-03-01T10:00:00Z"
    );
    assert_eq!(after_first.id, Some(CursorId::Integer(9)), "keyset order");

    // 11:30+01:00 is 10:30Z: later than the committed position, unlike the record with id 2.
    let after_second = advance_cursor::advance(dir.path(), &second).await.unwrap();
    assert_eq!(after_second.id, Some(CursorId::Integer(12)));
    assert_eq!(
        after_second.timestamp.as_ref().unwrap().to_string(),
        "2026-03-01T11:30:00+01:00",
        "the timestamp is kept as the source wrote it"
    );

    // Nothing newer: the cursor stays, and the file is the one the crate wrote.
    let unchanged = advance_cursor::advance(dir.path(), &first).await.unwrap();
    assert_eq!(unchanged.id, Some(CursorId::Integer(12)));
    let text = std::fs::read_to_string(dir.path().join("orders-export.json")).unwrap();
    let on_disk = State::from_json_str(&text).unwrap();
    assert_eq!(on_disk.pipeline.as_deref(), Some("orders-export"));
    assert_eq!(on_disk.committed(), unchanged.committed());
}
