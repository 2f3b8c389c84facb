//! The executor's delivery guarantees, tested where they live: in-memory sources and sinks
//! around a real state file, no HTTP server and no database.
//!
//! - a commit happens only after the sink returned `Ok` for that batch;
//! - commits happen in batch order;
//! - a failing sink leaves the state at the last batch it accepted;
//! - a dry run commits nothing;
//! - a paginated run (`Checkpoint::Progress`) keeps its cursors and offset in the run section
//!   and promotes them only when the run completes.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cannectors_connector::{Batch, BoxError, BoxFuture, Checkpoint, Record, Sink, Source};
use cannectors_runtime::{Executor, RunError, RunOptions};
use cannectors_state::{FileStore, State, StateStore};
use serde_json::json;

const NAME: &str = "guarded";

/// A pipeline with an `id` cursor (and an offset cursor), stored in `dir`.
/// Each source batch is a delivery of its own (`batchSize: 1`).
fn executor(dir: &Path) -> Executor {
    executor_with(dir, "{type: stdout, batchSize: 1}")
}

/// [`executor`] with `output`.
fn executor_with(dir: &Path, output: &str) -> Executor {
    let yaml = format!(
        "name: {NAME}\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:9/x', \
         statePersistence: {{id: {{field: id, queryParam: after}}, \
         offset: {{enabled: true, queryParam: offset}}, storagePath: '{}'}}}}\n\
         output: {output}\n",
        dir.display()
    );
    let loaded = cannectors_config::parse_str(&yaml, "guarded.yaml", &|_| None).unwrap();
    Executor::new(&loaded.pipeline).unwrap()
}

fn records(ids: &[i64]) -> Vec<Record> {
    ids.iter()
        .map(|id| Record::from(json!({ "id": id })))
        .collect()
}

/// Batches handed out in order, then the end of the run.
struct Pages {
    batches: VecDeque<Batch>,
    final_offset: Option<u64>,
}

impl Pages {
    fn ordered(pages: &[&[i64]]) -> Pages {
        Pages {
            batches: pages
                .iter()
                .map(|ids| Batch {
                    records: records(ids),
                    checkpoint: Checkpoint::Advance,
                    greatest: None,
                    keys: None,
                })
                .collect(),
            final_offset: None,
        }
    }

    fn paginated(pages: &[&[i64]]) -> Pages {
        Pages {
            batches: pages
                .iter()
                .enumerate()
                .map(|(n, ids)| Batch {
                    records: records(ids),
                    checkpoint: Checkpoint::Progress {
                        resume: json!({ "page": n + 2 }),
                        offset: Some(10 * (n as u64 + 1)),
                    },
                    greatest: None,
                    keys: None,
                })
                .collect(),
            final_offset: Some(10 * pages.len() as u64),
        }
    }
}

impl Source for Pages {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>, BoxError>> {
        let next = self.batches.pop_front();
        Box::pin(async move { Ok(next) })
    }

    fn final_offset(&self) -> Option<u64> {
        self.final_offset
    }
}

/// What the sink saw: for each write, the ids it was given and the state file as it was on
/// disk at that moment.
#[derive(Default)]
struct Seen {
    writes: Vec<(Vec<i64>, Option<State>)>,
}

/// A sink that records each write with the state on disk, and fails on the write numbered
/// `fail_on` (from 1).
struct Recording {
    store: FileStore,
    seen: Arc<Mutex<Seen>>,
    fail_on: Option<usize>,
}

impl Recording {
    fn new(dir: &Path, fail_on: Option<usize>) -> (Recording, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sink = Recording {
            store: FileStore::new(NAME, Some(dir)).unwrap(),
            seen: Arc::clone(&seen),
            fail_on,
        };
        (sink, seen)
    }
}

impl Sink for Recording {
    fn write<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let ids = records
                .iter()
                .map(|r| {
                    serde_json::from_str::<serde_json::Value>(r.json()).unwrap()["id"]
                        .as_i64()
                        .unwrap()
                })
                .collect();
            let on_disk = self.store.load().await.unwrap();
            let mut seen = self.seen.lock().unwrap();
            seen.writes.push((ids, on_disk));
            if self.fail_on == Some(seen.writes.len()) {
                return Err("the destination refused the batch".into());
            }
            Ok(())
        })
    }
}

fn committed_id(state: &Option<State>) -> Option<String> {
    state.as_ref()?.id.as_ref().map(ToString::to_string)
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join(format!("{NAME}.json"))
}

#[tokio::test]
async fn each_commit_follows_the_sinks_ok_for_its_batch_in_batch_order() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path());
    let mut source = Pages::ordered(&[&[1, 2], &[3, 4], &[5]]);
    let (mut sink, seen) = Recording::new(dir.path(), None);

    let summary = executor
        .run_with(&mut source, &mut sink, &RunOptions::default())
        .await
        .unwrap();

    assert_eq!(summary.batches, 3);
    let on_disk_at_each_write: Vec<Option<String>> = seen
        .lock()
        .unwrap()
        .writes
        .iter()
        .map(|(_, s)| committed_id(s))
        .collect();
    // While batch N is being written, the state holds batch N-1's position: never its own.
    assert_eq!(
        on_disk_at_each_write,
        [None, Some("2".to_owned()), Some("4".to_owned())]
    );
    let last = executor.store().load().await.unwrap();
    assert_eq!(committed_id(&last).as_deref(), Some("5"));
}

#[tokio::test]
async fn without_batch_size_batches_read_at_once_make_one_delivery_and_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor_with(dir.path(), "{type: stdout}");
    let mut source = Pages::ordered(&[&[1, 2], &[3, 4], &[5]]);
    let (mut sink, seen) = Recording::new(dir.path(), None);

    let summary = executor
        .run_with(&mut source, &mut sink, &RunOptions::default())
        .await
        .unwrap();

    assert_eq!(summary.batches, 3);
    let writes: Vec<Vec<i64>> = seen
        .lock()
        .unwrap()
        .writes
        .iter()
        .map(|(ids, _)| ids.clone())
        .collect();
    assert_eq!(writes, [vec![1, 2, 3, 4, 5]]);
    let last = executor.store().load().await.unwrap();
    assert_eq!(committed_id(&last).as_deref(), Some("5"));
}

/// Hands out `pages`, then fails.
struct FailsAfter(Pages);

impl Source for FailsAfter {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>, BoxError>> {
        let next = self.0.batches.pop_front();
        Box::pin(async move {
            match next {
                Some(batch) => Ok(Some(batch)),
                None => Err("page 3 answered HTTP 500".into()),
            }
        })
    }
}

#[tokio::test]
async fn a_source_failure_first_delivers_and_commits_the_batches_gathered_before_it() {
    for output in ["{type: stdout}", "{type: stdout, batchSize: 100}"] {
        let dir = tempfile::tempdir().unwrap();
        let executor = executor_with(dir.path(), output);
        let mut source = FailsAfter(Pages::ordered(&[&[1, 2], &[3]]));
        let (mut sink, seen) = Recording::new(dir.path(), None);

        let error = executor
            .run_with(&mut source, &mut sink, &RunOptions::default())
            .await
            .unwrap_err();

        assert!(
            matches!(error, RunError::Source { .. }),
            "{output}: {error:?}"
        );
        let writes: Vec<Vec<i64>> = seen
            .lock()
            .unwrap()
            .writes
            .iter()
            .map(|(ids, _)| ids.clone())
            .collect();
        assert_eq!(writes, [vec![1, 2, 3]], "{output}");
        let last = executor.store().load().await.unwrap();
        assert_eq!(committed_id(&last).as_deref(), Some("3"), "{output}");
    }
}

#[tokio::test]
async fn a_failing_sink_leaves_the_state_at_the_last_batch_it_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path());
    let mut source = Pages::ordered(&[&[1, 2], &[3, 4], &[5, 6], &[7]]);
    let (mut sink, seen) = Recording::new(dir.path(), Some(3));

    let error = executor
        .run_with(&mut source, &mut sink, &RunOptions::default())
        .await
        .unwrap_err();

    assert!(
        matches!(
            error,
            RunError::Sink {
                batch: 3,
                records: 2,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("the state was not advanced past this batch"),
        "{error}"
    );
    assert_eq!(
        seen.lock().unwrap().writes.len(),
        3,
        "nothing after the failure"
    );
    let state = executor.store().load().await.unwrap();
    assert_eq!(committed_id(&state).as_deref(), Some("4"));
}

#[tokio::test]
async fn a_sink_failing_on_the_first_batch_leaves_no_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path());
    let mut source = Pages::ordered(&[&[1, 2]]);
    let (mut sink, _) = Recording::new(dir.path(), Some(1));

    executor
        .run_with(&mut source, &mut sink, &RunOptions::default())
        .await
        .unwrap_err();

    assert!(!state_file(dir.path()).exists());
}

#[tokio::test]
async fn a_dry_run_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path());
    std::fs::write(state_file(dir.path()), r#"{"id": 1}"#).unwrap();
    let before = std::fs::read(state_file(dir.path())).unwrap();
    let mut source = Pages::ordered(&[&[2, 3], &[4]]);
    let (mut sink, seen) = Recording::new(dir.path(), None);

    let options = RunOptions {
        dry_run: true,
        ..RunOptions::default()
    };
    let summary = executor
        .run_with(&mut source, &mut sink, &options)
        .await
        .unwrap();

    assert_eq!(summary.records_written, 3);
    assert_eq!(seen.lock().unwrap().writes.len(), 2);
    assert_eq!(std::fs::read(state_file(dir.path())).unwrap(), before);
}

#[tokio::test]
async fn a_dry_run_takes_no_lock_so_it_runs_beside_the_writer_that_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path());
    std::fs::write(state_file(dir.path()), r#"{"id": 1}"#).unwrap();
    let before = std::fs::read(state_file(dir.path())).unwrap();
    // Another writer of the same pipeline holds the lock for the whole test.
    let other = FileStore::new(NAME, Some(dir.path())).unwrap();
    let _held = other.lock().await.unwrap();

    let dry_run = RunOptions {
        dry_run: true,
        ..RunOptions::default()
    };
    let (mut sink, seen) = Recording::new(dir.path(), None);
    let summary = executor
        .run_with(&mut Pages::ordered(&[&[2, 3]]), &mut sink, &dry_run)
        .await
        .unwrap();
    assert_eq!(summary.records_written, 2);
    assert_eq!(seen.lock().unwrap().writes.len(), 1);

    let (mut sink, seen) = Recording::new(dir.path(), None);
    let error = executor
        .run_with(
            &mut Pages::ordered(&[&[2, 3]]),
            &mut sink,
            &RunOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("pipeline `guarded` is already running"),
        "{error}"
    );
    assert!(
        seen.lock().unwrap().writes.is_empty(),
        "a locked-out run wrote"
    );
    assert_eq!(std::fs::read(state_file(dir.path())).unwrap(), before);
}

#[tokio::test]
async fn a_paginated_run_promotes_its_cursors_and_offset_only_when_it_completes() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path());
    // Not sorted by id across pages: the committed id must be the greatest of the run.
    let mut source = Pages::paginated(&[&[5, 9], &[2, 3], &[7]]);
    let (mut sink, seen) = Recording::new(dir.path(), None);

    executor
        .run_with(&mut source, &mut sink, &RunOptions::default())
        .await
        .unwrap();

    // During the run: the committed cursors and offset do not move; the run section does.
    let at_third_write = seen.lock().unwrap().writes[2].1.clone();
    let mid_run = at_third_write.as_ref().unwrap();
    assert_eq!(mid_run.id, None);
    assert_eq!(mid_run.offset, None);
    let run = mid_run.run.as_ref().unwrap();
    assert_eq!(run.batches(), 2);
    assert_eq!(run.offset(), Some(20));
    assert_eq!(run.resume(), &json!({ "page": 3 }));
    // At the end: the greatest id seen and the final offset are committed, the run is gone.
    let done = executor.store().load().await.unwrap().unwrap();
    assert_eq!(done.id.unwrap().to_string(), "9");
    assert_eq!(done.offset, Some(30));
    assert!(done.run.is_none());
}

#[tokio::test]
async fn an_interrupted_paginated_run_keeps_the_committed_cursors_where_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path());
    std::fs::write(state_file(dir.path()), r#"{"id": 1, "offset": 5}"#).unwrap();
    let mut source = Pages::paginated(&[&[5, 9], &[2, 3], &[7]]);
    let (mut sink, _) = Recording::new(dir.path(), Some(3));

    executor
        .run_with(&mut source, &mut sink, &RunOptions::default())
        .await
        .unwrap_err();

    let state = executor.store().load().await.unwrap().unwrap();
    assert_eq!(state.id.unwrap().to_string(), "1");
    assert_eq!(state.offset, Some(5));
    let run = state.run.unwrap();
    assert_eq!(run.batches(), 2, "the two accepted batches are recorded");
    assert_eq!(
        run.resume(),
        &json!({ "page": 3 }),
        "a restart resumes after them"
    );
}

#[tokio::test]
async fn a_stop_request_ends_the_run_after_the_batch_in_flight_without_promoting() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    /// Asks for a stop while writing the first batch.
    struct StopDuring {
        inner: Recording,
        stop: tokio::sync::watch::Sender<bool>,
    }
    impl Sink for StopDuring {
        fn write<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>> {
            self.stop.send_replace(true);
            self.inner.write(records)
        }
    }

    let mut source = Pages::paginated(&[&[5, 9], &[2, 3]]);
    let (inner, seen) = Recording::new(dir.path(), None);
    let mut sink = StopDuring {
        inner,
        stop: stop_tx,
    };
    let options = RunOptions {
        stop: Some(stop_rx),
        ..RunOptions::default()
    };
    let summary = executor
        .run_with(&mut source, &mut sink, &options)
        .await
        .unwrap();

    assert!(summary.interrupted);
    assert_eq!(
        seen.lock().unwrap().writes.len(),
        1,
        "the batch in flight only"
    );
    let state = executor.store().load().await.unwrap().unwrap();
    assert_eq!(state.id, None, "not promoted: the run did not complete");
    assert_eq!(
        state.run.unwrap().batches(),
        1,
        "the delivered batch is committed"
    );
}

/// A pipeline whose timestamp cursor has no `field` (the Go tool's form), and an id cursor.
fn run_start_executor(dir: &Path) -> Executor {
    let yaml = format!(
        "name: {NAME}\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:9/x', \
         statePersistence: {{timestamp: {{enabled: true, queryParam: since}}, \
         id: {{field: id, queryParam: after}}, storagePath: '{}'}}}}\n\
         output: {{type: stdout, batchSize: 1}}\n",
        dir.display()
    );
    let loaded = cannectors_config::parse_str(&yaml, "guarded.yaml", &|_| None).unwrap();
    Executor::new(&loaded.pipeline).unwrap()
}

#[tokio::test]
async fn a_timestamp_cursor_without_field_commits_the_start_of_each_complete_run() {
    let dir = tempfile::tempdir().unwrap();
    let executor = run_start_executor(dir.path());

    let before = chrono::Utc::now();
    let mut source = Pages::ordered(&[&[1, 2], &[3]]);
    let (mut sink, seen) = Recording::new(dir.path(), None);
    executor
        .run_with(&mut source, &mut sink, &RunOptions::default())
        .await
        .unwrap();
    let after = chrono::Utc::now();
    let first = executor.store().load().await.unwrap().unwrap();
    let started = first.timestamp.as_ref().unwrap().instant();
    assert!(before <= started && started <= after, "{started}");
    assert_eq!(committed_id(&Some(first.clone())).as_deref(), Some("3"));
    // While the batches were written, the start of this run was not committed yet.
    assert!(
        seen.lock()
            .unwrap()
            .writes
            .iter()
            .all(|(_, on_disk)| on_disk
                .as_ref()
                .is_none_or(|state| state.timestamp.is_none())),
        "the run's start was committed before the run completed"
    );

    // A run that delivers nothing still completes, and moves the cursor to its own start.
    let mut empty = Pages::ordered(&[]);
    let (mut sink, _) = Recording::new(dir.path(), None);
    executor
        .run_with(&mut empty, &mut sink, &RunOptions::default())
        .await
        .unwrap();
    let second = executor.store().load().await.unwrap().unwrap();
    assert!(second.timestamp.as_ref().unwrap().instant() >= after);

    // A failed run leaves it where the last complete run put it.
    let mut failing = Pages::ordered(&[&[4]]);
    let (mut sink, _) = Recording::new(dir.path(), Some(1));
    executor
        .run_with(&mut failing, &mut sink, &RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(executor.store().load().await.unwrap().unwrap(), second);
}
