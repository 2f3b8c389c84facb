//! `batchSize`: the executor gathers whole source batches into one delivery, writes it once and
//! commits once, with the state of the last source batch it holds. In-memory sources and sinks
//! around a real state file.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

use cannectors_connector::{Batch, BoxError, BoxFuture, Checkpoint, Record, Sink, Source};
use cannectors_runtime::{Executor, RunError, RunOptions};
use cannectors_state::{FileStore, State, StateStore};
use serde_json::json;
use tokio::sync::watch;

const NAME: &str = "gathered";

/// A pipeline with an `id` cursor (and a timestamp `at` cursor when `extra` names lookback),
/// `filters` as written, and an output gathering `batch_size` records.
fn executor(dir: &Path, batch_size: usize, extra: &str, filters: &str) -> Executor {
    let yaml = format!(
        "name: {NAME}\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:9/x', \
         statePersistence: {{id: {{field: id, queryParam: after}}, {extra} storagePath: '{}'}}}}\n\
         {filters}output: {{type: stdout, batchSize: {batch_size}}}\n",
        dir.display()
    );
    let loaded = cannectors_config::parse_str(&yaml, "gathered.yaml", &|_| None).unwrap();
    Executor::new(&loaded.pipeline).unwrap()
}

/// [`executor`] with a timestamp cursor and a lookback window of a minute.
fn with_lookback(dir: &Path, batch_size: usize) -> Executor {
    executor(
        dir,
        batch_size,
        "timestamp: {field: at, queryParam: since}, lookback: 1m,",
        "",
    )
}

/// Runs `pages` through a lookback pipeline gathering `batch_size` records into a recording
/// sink: the ids of each delivery, and the summary.
async fn run_with_lookback(
    dir: &Path,
    batch_size: usize,
    pages: &[&[i64]],
) -> (Vec<Vec<i64>>, cannectors_runtime::RunSummary) {
    let executor = with_lookback(dir, batch_size);
    let mut source = Pages::ordered(pages);
    let (mut sink, writes) = recording(dir, None);
    let summary = executor
        .run_with(&mut source, &mut sink, &RunOptions::default())
        .await
        .unwrap();
    (ids_written(&writes), summary)
}

fn records(ids: &[i64]) -> Vec<Record> {
    ids.iter()
        .map(|id| Record::from(json!({ "id": id, "at": format!("2026-01-01T00:00:{id:02}Z") })))
        .collect()
}

/// Batches handed out in order; when `stop_after` batches were handed out, a stop is asked
/// for (as a signal would, between two batches).
struct Pages {
    batches: VecDeque<Batch>,
    final_offset: Option<u64>,
    handed: usize,
    stop_after: Option<(usize, watch::Sender<bool>)>,
    /// Told how many batches were handed out, each time one is.
    handed_tx: Option<watch::Sender<usize>>,
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
            handed: 0,
            stop_after: None,
            handed_tx: None,
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
            handed: 0,
            stop_after: None,
            handed_tx: None,
        }
    }
}

impl Source for Pages {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>, BoxError>> {
        let next = self.batches.pop_front();
        self.handed += 1;
        if let Some((after, stop)) = &self.stop_after
            && self.handed == *after
        {
            stop.send_replace(true);
        }
        if let Some(handed) = &self.handed_tx {
            handed.send_replace(self.handed);
        }
        Box::pin(async move { Ok(next) })
    }

    fn final_offset(&self) -> Option<u64> {
        self.final_offset
    }
}

/// For each write: the ids it was given and the state file as it was on disk at that moment.
type Writes = Arc<Mutex<Vec<(Vec<i64>, Option<State>)>>>;

/// A sink that records each write with the state on disk, and fails on the write numbered
/// `fail_on` (from 1).
struct Recording {
    store: FileStore,
    writes: Writes,
    fail_on: Option<usize>,
}

fn recording(dir: &Path, fail_on: Option<usize>) -> (Recording, Writes) {
    let writes = Writes::default();
    let sink = Recording {
        store: FileStore::new(NAME, Some(dir)).unwrap(),
        writes: Arc::clone(&writes),
        fail_on,
    };
    (sink, writes)
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
            let mut writes = self.writes.lock().unwrap();
            writes.push((ids, on_disk));
            if self.fail_on == Some(writes.len()) {
                return Err("the destination refused the delivery".into());
            }
            Ok(())
        })
    }
}

fn ids_written(writes: &Writes) -> Vec<Vec<i64>> {
    writes.lock().unwrap().iter().map(|w| w.0.clone()).collect()
}

fn id_on_disk_at(writes: &Writes, write: usize) -> Option<String> {
    let writes = writes.lock().unwrap();
    let state = writes[write].1.as_ref()?;
    state.id.as_ref().map(ToString::to_string)
}

async fn committed_id(executor: &Executor) -> Option<String> {
    let state = executor.store().load().await.unwrap()?;
    state.id.map(|id| id.to_string())
}

#[tokio::test]
async fn pages_are_gathered_up_to_batch_size_and_each_delivery_is_committed_once() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path(), 4, "", "");
    let mut source = Pages::ordered(&[&[1, 2], &[3, 4], &[5], &[6, 7, 8], &[9]]);
    let (mut sink, writes) = recording(dir.path(), None);

    let summary = executor
        .run_with(&mut source, &mut sink, &RunOptions::default())
        .await
        .unwrap();

    assert_eq!(
        ids_written(&writes),
        vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8], vec![9]],
        "whole pages, up to 4 records a delivery, the rest when the source ends"
    );
    // Nothing committed before the first delivery; each later one finds the state of the
    // last page of the delivery before it, not of a page in between.
    assert_eq!(id_on_disk_at(&writes, 0), None);
    assert_eq!(id_on_disk_at(&writes, 1).as_deref(), Some("4"));
    assert_eq!(id_on_disk_at(&writes, 2).as_deref(), Some("8"));
    assert_eq!(committed_id(&executor).await.as_deref(), Some("9"));
    assert_eq!(summary.records_written, 9);
    assert_eq!(summary.batches, 5);
}

#[tokio::test]
async fn a_page_that_does_not_fit_goes_into_the_next_delivery_and_a_larger_one_goes_alone() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path(), 3, "", "");
    let mut source = Pages::ordered(&[&[1, 2], &[3, 4], &[5], &[6, 7, 8, 9], &[10]]);
    let (mut sink, writes) = recording(dir.path(), None);

    executor
        .run_with(&mut source, &mut sink, &RunOptions::default())
        .await
        .unwrap();

    assert_eq!(
        ids_written(&writes),
        vec![vec![1, 2], vec![3, 4, 5], vec![6, 7, 8, 9], vec![10]],
        "a page is never split and a delivery never holds more than 3 records but for a \
         page larger than that"
    );
    assert_eq!(id_on_disk_at(&writes, 1).as_deref(), Some("2"));
    assert_eq!(id_on_disk_at(&writes, 2).as_deref(), Some("5"));
    assert_eq!(id_on_disk_at(&writes, 3).as_deref(), Some("9"));
}

/// A sink whose first write waits until the source handed out `wait_for` batches, as a
/// delivery whose syncs take a while; it records what `Recording` records.
struct Slow {
    inner: Recording,
    handed: watch::Receiver<usize>,
    wait_for: usize,
}

impl Sink for Slow {
    fn write<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            if self.inner.writes.lock().unwrap().is_empty() {
                let wait_for = self.wait_for;
                // Bounded: without reading ahead, the source is not asked while this waits.
                tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    self.handed.wait_for(|handed| *handed >= wait_for),
                )
                .await
                .expect("the source was not read while the delivery was being written")
                .unwrap();
            }
            self.inner.write(records).await
        })
    }
}

#[tokio::test]
async fn the_next_pages_are_read_while_a_delivery_is_written_and_committed_in_their_turn() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path(), 4, "", "");
    let mut source = Pages::ordered(&[&[1, 2], &[3, 4], &[5, 6], &[7, 8], &[9]]);
    let (handed_tx, handed) = watch::channel(0);
    source.handed_tx = Some(handed_tx);
    let (inner, writes) = recording(dir.path(), None);
    // The first delivery holds two pages; the next two are read while it is written.
    let mut sink = Slow {
        inner,
        handed,
        wait_for: 4,
    };

    let summary = executor
        .run_with(&mut source, &mut sink, &RunOptions::default())
        .await
        .unwrap();

    assert_eq!(
        ids_written(&writes),
        vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8], vec![9]]
    );
    // The pages read ahead were committed with their own delivery, not with the first one.
    assert_eq!(id_on_disk_at(&writes, 0), None);
    assert_eq!(id_on_disk_at(&writes, 1).as_deref(), Some("4"));
    assert_eq!(id_on_disk_at(&writes, 2).as_deref(), Some("8"));
    assert_eq!(committed_id(&executor).await.as_deref(), Some("9"));
    assert_eq!(summary.batches, 5);
    assert_eq!(summary.records_read, 9);
}

#[tokio::test]
async fn pages_read_ahead_are_neither_delivered_nor_committed_when_a_stop_comes_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path(), 2, "", "");
    let mut source = Pages::paginated(&[&[1, 2], &[3, 4], &[5, 6]]);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Page 2 is read while page 1 is delivered, and the stop comes with it.
    source.stop_after = Some((2, stop_tx));
    let (handed_tx, handed) = watch::channel(0);
    source.handed_tx = Some(handed_tx);
    let (inner, writes) = recording(dir.path(), None);
    let mut sink = Slow {
        inner,
        handed,
        wait_for: 2,
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
    assert_eq!(ids_written(&writes), vec![vec![1, 2]]);
    let state = executor.store().load().await.unwrap().unwrap();
    let run = state.run.unwrap();
    assert_eq!(run.batches(), 1);
    assert_eq!(
        run.resume(),
        &json!({ "page": 2 }),
        "the next run starts at the page read ahead"
    );
}

/// Two pages of two records, then a failure that comes with a stop request (a server error
/// while a SIGTERM arrives).
struct FailsWithStop {
    served: usize,
    stop: watch::Sender<bool>,
}

impl Source for FailsWithStop {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>, BoxError>> {
        self.served += 1;
        let served = self.served;
        if served == 3 {
            self.stop.send_replace(true);
        }
        Box::pin(async move {
            match served {
                1 => Ok(Some(Batch {
                    records: records(&[1, 2]),
                    checkpoint: Checkpoint::Advance,
                    greatest: None,
                    keys: None,
                })),
                2 => Ok(Some(Batch {
                    records: records(&[3, 4]),
                    checkpoint: Checkpoint::Advance,
                    greatest: None,
                    keys: None,
                })),
                _ => Err("GET http://127.0.0.1:9/x: the server answered HTTP 500".into()),
            }
        })
    }
}

#[tokio::test]
async fn a_failure_met_while_reading_ahead_is_reported_though_a_stop_came_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path(), 4, "", "");
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut source = FailsWithStop {
        served: 0,
        stop: stop_tx,
    };
    let (mut sink, writes) = recording(dir.path(), None);
    let options = RunOptions {
        stop: Some(stop_rx),
        ..RunOptions::default()
    };

    // The failure is read while the two pages are delivered.
    let error = executor
        .run_with(&mut source, &mut sink, &options)
        .await
        .unwrap_err();

    assert!(
        matches!(&error, RunError::Source { .. }),
        "a failure stays one: {error}"
    );
    assert!(error.to_string().contains("HTTP 500"), "{error}");
    assert_eq!(ids_written(&writes), vec![vec![1, 2, 3, 4]]);
    assert_eq!(committed_id(&executor).await.as_deref(), Some("4"));
}

#[tokio::test]
async fn a_refused_delivery_leaves_the_state_of_the_last_accepted_one() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path(), 4, "", "");
    let mut source = Pages::ordered(&[&[1, 2], &[3, 4], &[5, 6], &[7, 8]]);
    let (mut sink, writes) = recording(dir.path(), Some(2));

    let error = executor
        .run_with(&mut source, &mut sink, &RunOptions::default())
        .await
        .unwrap_err();

    assert!(
        matches!(
            error,
            RunError::Sink {
                batch: 4,
                records: 4,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(ids_written(&writes).len(), 2);
    assert_eq!(committed_id(&executor).await.as_deref(), Some("4"));
}

#[tokio::test]
async fn a_gathered_paginated_run_commits_the_resume_position_of_the_last_page_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path(), 4, "", "");
    std::fs::write(dir.path().join(format!("{NAME}.json")), r#"{"id": 1}"#).unwrap();
    // Not sorted by id: the run section keeps the greatest seen, not the last.
    let mut source = Pages::paginated(&[&[5, 9], &[2, 3], &[7], &[8]]);
    let (mut sink, writes) = recording(dir.path(), Some(2));

    executor
        .run_with(&mut source, &mut sink, &RunOptions::default())
        .await
        .unwrap_err();

    assert_eq!(ids_written(&writes), vec![vec![5, 9, 2, 3], vec![7, 8]]);
    let state = executor.store().load().await.unwrap().unwrap();
    assert_eq!(state.id.unwrap().to_string(), "1", "not promoted mid-run");
    let run = state.run.unwrap();
    assert_eq!(run.batches(), 2, "both pages of the accepted delivery");
    assert_eq!(run.offset(), Some(20));
    assert_eq!(
        run.resume(),
        &json!({ "page": 3 }),
        "a restart resumes after the last page delivered"
    );
    assert_eq!(run.seen().id.as_ref().unwrap().to_string(), "9");
}

#[tokio::test]
async fn the_end_of_a_paginated_run_is_committed_with_its_last_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path(), 100, "", "");
    let mut source = Pages::paginated(&[&[5, 9], &[2, 3], &[7]]);
    let (mut sink, writes) = recording(dir.path(), None);

    executor
        .run_with(&mut source, &mut sink, &RunOptions::default())
        .await
        .unwrap();

    assert_eq!(ids_written(&writes), vec![vec![5, 9, 2, 3, 7]]);
    let state = executor.store().load().await.unwrap().unwrap();
    assert_eq!(state.id.unwrap().to_string(), "9");
    assert_eq!(state.offset, Some(30));
    assert!(state.run.is_none());
}

#[tokio::test]
async fn a_stop_request_delivers_and_commits_what_is_gathered() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path(), 100, "", "");
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut source = Pages::paginated(&[&[1, 2], &[3], &[4]]);
    source.stop_after = Some((2, stop_tx));
    let (mut sink, writes) = recording(dir.path(), None);
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
        ids_written(&writes),
        vec![vec![1, 2, 3]],
        "the two pages read before the stop, in one delivery"
    );
    let state = executor.store().load().await.unwrap().unwrap();
    let run = state.run.unwrap();
    assert_eq!(run.batches(), 2);
    assert_eq!(run.resume(), &json!({ "page": 3 }));
}

#[tokio::test]
async fn a_record_repeated_within_one_delivery_is_delivered_once_and_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let executor = with_lookback(dir.path(), 100);
    // Offset pagination over a table that grew: record 2 shows up on both pages.
    let mut source = Pages::ordered(&[&[1, 2], &[2, 3]]);
    let (mut sink, writes) = recording(dir.path(), None);

    let summary = executor
        .run_with(&mut source, &mut sink, &RunOptions::default())
        .await
        .unwrap();

    assert_eq!(ids_written(&writes), vec![vec![1, 2, 3]]);
    assert_eq!(summary.records_repeated, 1);
    // The identities of every record of the delivery were committed with it: a second run
    // over the same pages delivers nothing.
    let mut again = Pages::ordered(&[&[1, 2], &[3]]);
    let (mut sink, writes) = recording(dir.path(), None);
    executor
        .run_with(&mut again, &mut sink, &RunOptions::default())
        .await
        .unwrap();
    assert!(
        ids_written(&writes).is_empty(),
        "{:?}",
        ids_written(&writes)
    );
}

#[tokio::test]
async fn records_a_filter_drops_still_count_for_the_cursor_of_their_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(
        dir.path(),
        4,
        "",
        "filters: [{type: condition, expression: 'id % 4 == 0', then: [{type: drop}]}]\n",
    );
    let mut source = Pages::ordered(&[&[1, 2], &[3, 4], &[5, 6], &[7, 8]]);
    let (mut sink, writes) = recording(dir.path(), None);

    let summary = executor
        .run_with(&mut source, &mut sink, &RunOptions::default())
        .await
        .unwrap();

    // Bounded by the records read, so deliveries follow the pages, not the filter.
    assert_eq!(ids_written(&writes), vec![vec![1, 2, 3], vec![5, 6, 7]]);
    assert_eq!(id_on_disk_at(&writes, 1).as_deref(), Some("4"));
    assert_eq!(committed_id(&executor).await.as_deref(), Some("8"));
    assert_eq!(summary.records_dropped, 2);
}

/// A pipeline like [`executor`]'s with no `batchSize`: the default gathering.
fn executor_by_default(dir: &Path) -> Executor {
    let yaml = format!(
        "name: {NAME}\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:9/x', \
         statePersistence: {{id: {{field: id, queryParam: after}}, storagePath: '{}'}}}}\n\
         output: {{type: stdout}}\n",
        dir.display()
    );
    let loaded = cannectors_config::parse_str(&yaml, "gathered.yaml", &|_| None).unwrap();
    Executor::new(&loaded.pipeline).unwrap()
}

/// Pages of consecutive ids, `sizes[n]` records in page `n`.
fn pages_of(sizes: &[i64]) -> Pages {
    let mut next = 1;
    let pages: Vec<Vec<i64>> = sizes
        .iter()
        .map(|size| {
            let page = (next..next + size).collect();
            next += size;
            page
        })
        .collect();
    let borrowed: Vec<&[i64]> = pages.iter().map(Vec::as_slice).collect();
    Pages::ordered(&borrowed)
}

/// A sink that notes, at each write, how many batches the source had handed out when the
/// write began and once the executor had its turn to read ahead meanwhile (the pages here are
/// ready at once, so reading ahead is over after one yield); it records what `Recording`
/// records.
struct Watching {
    inner: Recording,
    handed: watch::Receiver<usize>,
    seen: Arc<Mutex<Vec<(usize, usize)>>>,
}

impl Sink for Watching {
    fn write<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let before = *self.handed.borrow();
            tokio::task::yield_now().await;
            let after = *self.handed.borrow();
            self.seen.lock().unwrap().push((before, after));
            self.inner.write(records).await
        })
    }
}

/// Runs `sizes` through the default gathering; the ids of each delivery's first and last
/// record, its length, and the batches handed out during each write.
async fn run_by_default(sizes: &[i64]) -> (Vec<(i64, i64, usize)>, Vec<(usize, usize)>) {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor_by_default(dir.path());
    let mut source = pages_of(sizes);
    let (handed_tx, handed) = watch::channel(0);
    source.handed_tx = Some(handed_tx);
    let (inner, writes) = recording(dir.path(), None);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut sink = Watching {
        inner,
        handed,
        seen: Arc::clone(&seen),
    };
    executor
        .run_with(&mut source, &mut sink, &RunOptions::default())
        .await
        .unwrap();
    let total: i64 = sizes.iter().sum();
    assert_eq!(committed_id(&executor).await, Some(total.to_string()));
    let deliveries = ids_written(&writes)
        .iter()
        .map(|ids| (ids[0], ids[ids.len() - 1], ids.len()))
        .collect();
    let seen = seen.lock().unwrap().clone();
    (deliveries, seen)
}

#[tokio::test]
async fn by_default_a_delivery_goes_out_when_a_page_like_its_last_would_not_fit() {
    // 10,000 records a delivery at most: three pages of 3,000 go out without waiting for the
    // fourth, which is read while they are written, and the fourth and fifth go out when the
    // source ends (the sixth call found the end).
    let (deliveries, seen) = run_by_default(&[3000, 3000, 3000, 3000, 3000]).await;
    assert_eq!(deliveries, [(1, 9000, 9000), (9001, 15000, 6000)]);
    assert_eq!(
        seen,
        [(3, 4), (6, 6)],
        "the first write began before the fourth page was asked for, which was read meanwhile"
    );
}

#[tokio::test]
async fn by_default_nothing_is_read_ahead_beside_a_page_that_did_not_fit() {
    // The third page does not fit beside the first two and waits for the next delivery:
    // nothing more is read while they are written, so a run holds a delivery and one page.
    let (deliveries, seen) = run_by_default(&[3000, 3000, 5000, 1000]).await;
    assert_eq!(deliveries, [(1, 6000, 6000), (6001, 12000, 6000)]);
    assert_eq!(seen, [(3, 3), (5, 5)]);
}

#[tokio::test]
async fn a_page_read_ahead_is_screened_against_the_delivery_being_written() {
    let dir = tempfile::tempdir().unwrap();
    // The second page is read and admitted while the first is written: record 2 of the
    // delivery in flight is known and left out.
    let (written, summary) = run_with_lookback(dir.path(), 2, &[&[1, 2], &[2, 3]]).await;

    assert_eq!(written, vec![vec![1, 2], vec![3]]);
    assert_eq!(summary.records_repeated, 1);
    assert_eq!(summary.records_read, 4);
}

#[tokio::test]
async fn a_page_read_beside_one_that_did_not_fit_is_admitted_after_it() {
    let dir = tempfile::tempdir().unwrap();
    // The second page does not fit beside the first and waits, not yet remembered; the third,
    // read while the first is written, repeats its record 3, which must still be left out.
    let (written, summary) = run_with_lookback(dir.path(), 3, &[&[1, 2], &[2, 3], &[3, 4]]).await;

    assert_eq!(written, vec![vec![1, 2], vec![3], vec![4]]);
    assert_eq!(summary.records_repeated, 2);
}
