//! Late commits, where the executor decides them: records delivered before are left out of a
//! lookback window and their identities are committed with the batch that delivered them, so
//! a failed batch is offered again; records after the run's upper bound are held back.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

use cannectors_connector::{Batch, BoxError, BoxFuture, Checkpoint, Record, Sink, Source};
use cannectors_runtime::{Executor, RunOptions};
use serde_json::json;

/// A pipeline with a timestamp and an id cursor and `extra` statePersistence keys.
fn executor(dir: &Path, extra: &str) -> Executor {
    let yaml = format!(
        "name: late\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:9/x', \
         statePersistence: {{timestamp: {{field: at, queryParam: since}}, \
         id: {{field: id, queryParam: after}}, {extra} storagePath: '{}'}}}}\n\
         output: {{type: stdout, batchSize: 1}}\n",
        dir.display()
    );
    let loaded = cannectors_config::parse_str(&yaml, "late.yaml", &|_| None).unwrap();
    Executor::new(&loaded.pipeline).unwrap()
}

fn record(id: i64, at: &str) -> Record {
    Record::from(json!({ "id": id, "at": at }))
}

struct Pages(VecDeque<Vec<Record>>);

impl Source for Pages {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>, BoxError>> {
        let next = self.0.pop_front().map(|records| Batch {
            records,
            checkpoint: Checkpoint::Advance,
            greatest: None,
            keys: None,
        });
        Box::pin(async move { Ok(next) })
    }
}

/// Records the ids written; refuses the write numbered `fail_on` (from 1).
struct Ids {
    written: Arc<Mutex<Vec<i64>>>,
    writes: usize,
    fail_on: Option<usize>,
}

impl Sink for Ids {
    fn write<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>> {
        self.writes += 1;
        let refused = self.fail_on == Some(self.writes);
        if !refused {
            let mut written = self.written.lock().unwrap();
            for r in records {
                let value: serde_json::Value = serde_json::from_str(r.json()).unwrap();
                written.push(value["id"].as_i64().unwrap());
            }
        }
        Box::pin(async move {
            if refused {
                return Err("the destination refused the batch".into());
            }
            Ok(())
        })
    }
}

fn sink(fail_on: Option<usize>) -> (Ids, Arc<Mutex<Vec<i64>>>) {
    let written = Arc::new(Mutex::new(Vec::new()));
    let sink = Ids {
        written: Arc::clone(&written),
        writes: 0,
        fail_on,
    };
    (sink, written)
}

async fn run(executor: &Executor, pages: Vec<Vec<Record>>, sink: &mut Ids) -> bool {
    let mut source = Pages(pages.into());
    executor
        .run_with(&mut source, sink, &RunOptions::default())
        .await
        .is_ok()
}

#[tokio::test]
async fn records_of_the_window_delivered_before_are_left_out_and_a_late_one_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path(), "lookback: 10m,");
    let (mut ids, written) = sink(None);
    let first = vec![vec![
        record(1, "2026-01-01T10:00:00Z"),
        record(3, "2026-01-01T10:00:30Z"),
    ]];
    assert!(run(&executor, first, &mut ids).await);
    let window = vec![
        vec![
            record(1, "2026-01-01T10:00:00Z"),
            record(2, "2026-01-01T10:00:20Z"),
        ],
        vec![
            record(3, "2026-01-01T10:00:30Z"),
            record(4, "2026-01-01T10:00:40Z"),
        ],
    ];
    assert!(run(&executor, window, &mut ids).await);

    assert_eq!(*written.lock().unwrap(), [1, 3, 2, 4]);
    let state = executor.store().load().await.unwrap().unwrap();
    assert_eq!(state.timestamp.unwrap().to_string(), "2026-01-01T10:00:40Z");
    assert_eq!(state.identities.len(), 4);
}

#[tokio::test]
async fn the_identities_of_each_delivery_are_synced_beside_the_sink_and_counted_by_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path(), "lookback: 10m,");
    let (mut ids, written) = sink(None);
    let pages = (0..5)
        .map(|page| {
            (0..4)
                .map(|n| {
                    let id = page * 4 + n;
                    record(id, &format!("2026-01-01T10:00:{id:02}Z"))
                })
                .collect()
        })
        .collect();
    assert!(run(&executor, pages, &mut ids).await);

    assert_eq!(written.lock().unwrap().len(), 20);
    // Staged while the sink wrote, every delivery's lines were synced before its commit: the
    // state file counts them all and carries none.
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("late.json")).unwrap())
            .unwrap();
    let identities = &file["identities"];
    assert!(identities.get("tail").is_none(), "{identities}");
    let journal = dir.path().join(identities["journal"].as_str().unwrap());
    assert_eq!(
        identities["bytes"].as_u64().unwrap(),
        std::fs::metadata(journal).unwrap().len()
    );
    assert_eq!(identities["count"], 20);
}

#[tokio::test]
async fn the_identities_of_a_refused_batch_are_not_committed_so_it_is_offered_again() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path(), "lookback: 10m,");
    let (mut refusing, written) = sink(Some(2));
    let pages = || {
        vec![
            vec![record(1, "2026-01-01T10:00:00Z")],
            vec![record(2, "2026-01-01T10:00:10Z")],
        ]
    };
    assert!(!run(&executor, pages(), &mut refusing).await);
    let (mut accepting, written_again) = sink(None);
    assert!(run(&executor, pages(), &mut accepting).await);

    assert_eq!(*written.lock().unwrap(), [1]);
    assert_eq!(
        *written_again.lock().unwrap(),
        [2],
        "1 is known, 2 was never committed"
    );
}

#[tokio::test]
async fn records_after_now_minus_delay_are_held_back_and_the_cursor_stays_before_them() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path(), "delay: 1h,");
    let (mut ids, written) = sink(None);
    let now = chrono::Utc::now();
    let old = (now - chrono::TimeDelta::hours(2)).to_rfc3339();
    let fresh = now.to_rfc3339();
    let page = vec![vec![record(1, &old), record(2, &fresh)]];

    let mut source = Pages(page.into());
    let summary = executor
        .run_with(&mut source, &mut ids, &RunOptions::default())
        .await
        .unwrap();

    assert_eq!(*written.lock().unwrap(), [1]);
    assert_eq!(summary.records_held, 1);
    let state = executor.store().load().await.unwrap().unwrap();
    assert_eq!(state.timestamp.unwrap().to_string(), old);
}

#[tokio::test]
async fn identities_left_by_a_lookback_that_was_removed_are_dropped_at_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ids, _) = sink(None);
    let with = executor(dir.path(), "lookback: 10m,");
    assert!(
        run(
            &with,
            vec![vec![record(1, "2026-01-01T10:00:00Z")]],
            &mut ids
        )
        .await
    );
    assert_eq!(
        with.store().load().await.unwrap().unwrap().identities.len(),
        1
    );

    let without = executor(dir.path(), "");
    assert!(
        run(
            &without,
            vec![vec![record(2, "2026-01-01T10:00:10Z")]],
            &mut ids
        )
        .await
    );

    let state = without.store().load().await.unwrap().unwrap();
    assert!(state.identities.is_empty());
    assert!(!state.to_json_pretty().contains("identities"));
}
