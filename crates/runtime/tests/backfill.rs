//! Backfills, where the executor runs them: a past range read with progress of its own in the
//! state file's backfill section, the pipeline's own cursors written back as they were.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use cannectors_runtime::{BackfillRange, Executor, RunError, RunOptions};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

fn minute(n: i64) -> DateTime<Utc> {
    "2026-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + TimeDelta::minutes(n)
}

/// Twenty rows, one a minute from minute 1, read five at a time below `window.end`.
fn executor(dir: &Path) -> Executor {
    let db = dir.join("events.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, at TEXT NOT NULL);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
             INSERT INTO events SELECT i, strftime('%Y-%m-%dT%H:%M:%SZ', '2026-01-01', '+' || i || ' minutes') FROM n;",
        )
        .unwrap();
    let yaml = format!(
        "name: rows\ninput:\n  type: database\n  connectionString: 'sqlite://{}'\n  \
         query: SELECT id, at FROM events WHERE at > COALESCE($1, '') AND at <= $2 ORDER BY at, id LIMIT 5\n  \
         parameters: [state.timestamp, window.end]\n  \
         statePersistence: {{timestamp: {{field: at}}, storagePath: '{}'}}\n\
         output: {{type: file, path: '{}'}}\n",
        db.display(),
        dir.join("state").display(),
        dir.join("out.jsonl").display()
    );
    let loaded = cannectors_config::parse_str(&yaml, "rows.yaml", &|_| None).unwrap();
    Executor::new(&loaded.pipeline).unwrap()
}

fn delivered(dir: &Path) -> Vec<i64> {
    std::fs::read_to_string(dir.join("out.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

fn state_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("state/rows.json")).unwrap()
}

fn state(dir: &Path) -> Value {
    serde_json::from_str(&state_text(dir)).unwrap()
}

#[tokio::test]
async fn a_backfill_reads_its_range_and_writes_the_main_cursors_back_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path());
    executor.run(&RunOptions::default()).await.unwrap();
    assert_eq!(delivered(dir.path()), (1..=20).collect::<Vec<_>>());
    let before = state(dir.path());

    let summary = executor
        .backfill(
            BackfillRange::new(minute(5), Some(minute(12))),
            &RunOptions::default(),
        )
        .await
        .unwrap();

    assert_eq!(summary.records_written, 7);
    assert_eq!(delivered(dir.path())[20..], [6, 7, 8, 9, 10, 11, 12]);
    let after = state(dir.path());
    for key in ["timestamp", "id", "offset", "run", "window", "identities"] {
        assert_eq!(after.get(key), before.get(key), "{key}");
    }
    assert_eq!(
        after["backfill"]["progress"]["timestamp"],
        "2026-01-01T00:12:00Z"
    );
    assert!(after["backfill"]["completedAt"].is_string());
}

#[tokio::test]
async fn an_unfinished_backfill_of_another_range_is_refused_unless_restarting() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path());
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(
        dir.path().join("state/rows.json"),
        r#"{"timestamp": "2026-01-01T00:20:00Z", "backfill": {"from": "2026-01-01T00:00:00Z",
            "to": "2026-01-01T00:10:00Z", "startedAt": "2026-02-01T00:00:00Z",
            "progress": {"timestamp": "2026-01-01T00:04:00Z"}}}"#,
    )
    .unwrap();
    let before = state_text(dir.path());

    let refused = executor
        .backfill(
            BackfillRange::new(minute(2), Some(minute(6))),
            &RunOptions::default(),
        )
        .await
        .unwrap_err();

    assert!(
        matches!(refused, RunError::BackfillUnfinished { .. }),
        "{refused:?}"
    );
    assert_eq!(
        refused.to_string(),
        "a backfill from 2026-01-01T00:00:00Z to 2026-01-01T00:10:00Z started at \
         2026-02-01T00:00:00Z is unfinished; it is resumed by a backfill of that same range, \
         and a backfill of another range must start over"
    );
    assert_eq!(state_text(dir.path()), before, "the state is unchanged");
    assert!(delivered(dir.path()).is_empty());

    // The same range without --to resumes from its saved position.
    executor
        .backfill(BackfillRange::new(minute(0), None), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(delivered(dir.path()), [5, 6, 7, 8, 9, 10]);

    // A finished one gives way; so does an unfinished one with restart.
    executor
        .backfill(
            BackfillRange::new(minute(2), Some(minute(4))).restarting(true),
            &RunOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(delivered(dir.path())[6..], [3, 4]);
    assert_eq!(state(dir.path())["timestamp"], "2026-01-01T00:20:00Z");
}

#[tokio::test]
async fn an_empty_range_is_refused_before_anything_is_read_or_written() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path());
    executor.run(&RunOptions::default()).await.unwrap();
    let before = state_text(dir.path());

    // Without an end, the range ends at the committed timestamp, minute 20.
    let error = executor
        .backfill(BackfillRange::new(minute(30), None), &RunOptions::default())
        .await
        .unwrap_err();

    assert_eq!(
        error.to_string(),
        "the backfill range is empty: it starts at 2026-01-01T00:30:00Z and ends at \
         2026-01-01T00:20:00Z; the start must be before the end"
    );
    assert_eq!(state_text(dir.path()), before);
}
