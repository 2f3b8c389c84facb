//! The executor with filters: cursor values come from the source records, before any filter;
//! a dropped record still moves the cursor; a failing filter delivers and commits nothing.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

use cannectors_connector::{Batch, BoxError, BoxFuture, Checkpoint, Record, Sink, Source};
use cannectors_runtime::{Executor, RunError, RunOptions};
use serde_json::{Value, json};

const NAME: &str = "filtered";

/// A pipeline with an `id` cursor stored in `dir` and the given `filters` block.
fn executor(dir: &Path, filters: &str) -> Executor {
    let yaml = format!(
        "name: {NAME}\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:9/x', \
         statePersistence: {{id: {{field: id, queryParam: after}}, storagePath: '{}'}}}}\n\
         filters:\n{filters}\noutput: {{type: stdout, batchSize: 1}}\n",
        dir.display()
    );
    let loaded = cannectors_config::parse_str(&yaml, "filtered.yaml", &|_| None).unwrap();
    Executor::new(&loaded.pipeline).unwrap()
}

struct Pages(VecDeque<Batch>);

impl Pages {
    fn of(pages: &[&[Value]]) -> Pages {
        Pages(
            pages
                .iter()
                .map(|records| Batch {
                    records: records.iter().map(Record::from).collect(),
                    checkpoint: Checkpoint::Advance,
                    greatest: None,
                    keys: None,
                })
                .collect(),
        )
    }
}

impl Source for Pages {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>, BoxError>> {
        let next = self.0.pop_front();
        Box::pin(async move { Ok(next) })
    }
}

/// Every write the sink was given.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Vec<Value>>>>);

impl Sink for Collect {
    fn write<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>> {
        let values = records.iter().map(|r| r.to_value().unwrap()).collect();
        self.0.lock().unwrap().push(values);
        Box::pin(async { Ok(()) })
    }
}

const DROP_SMALL: &str = "  - type: condition\n    expression: amount < 10\n    then: [{type: drop}]\n  \
                          - {type: set, target: shaped, value: true}";

#[tokio::test]
async fn dropped_records_are_not_delivered_but_move_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path(), DROP_SMALL);
    let mut source = Pages::of(&[
        &[
            json!({"id": 1, "amount": 50}),
            json!({"id": 2, "amount": 5}),
        ],
        &[json!({"id": 3, "amount": 1})],
    ]);
    let sink = Collect::default();

    let summary = executor
        .run_with(&mut source, &mut sink.clone(), &RunOptions::default())
        .await
        .unwrap();

    assert_eq!(
        *sink.0.lock().unwrap(),
        [vec![json!({"id": 1, "amount": 50, "shaped": true})]],
        "a batch whose records were all dropped is not written"
    );
    assert_eq!(
        (
            summary.records_read,
            summary.records_written,
            summary.records_dropped,
            summary.batches
        ),
        (3, 1, 2, 2)
    );
    assert!(
        summary
            .to_string()
            .contains(" read=3 written=1 dropped=2 batches=2"),
        "{summary}"
    );
    let state = executor.store().load().await.unwrap().unwrap();
    assert_eq!(
        state.id.unwrap().to_string(),
        "3",
        "the dropped record 3 moved the cursor"
    );
}

#[tokio::test]
async fn a_filter_cannot_move_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path(), "  - {type: set, target: id, value: 1000}");
    let mut source = Pages::of(&[&[json!({"id": 4}), json!({"id": 7})]]);

    executor
        .run_with(&mut source, &mut Collect::default(), &RunOptions::default())
        .await
        .unwrap();

    let state = executor.store().load().await.unwrap().unwrap();
    assert_eq!(state.id.unwrap().to_string(), "7");
}

#[tokio::test]
async fn skipped_records_are_counted_and_move_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(
        dir.path(),
        "  - type: mapping\n    onError: skip\n    mappings: [{source: n, target: n, transforms: [{op: toInt}]}]",
    );
    let mut source = Pages::of(&[&[json!({"id": 1, "n": "1"}), json!({"id": 2, "n": "x"})]]);

    let summary = executor
        .run_with(&mut source, &mut Collect::default(), &RunOptions::default())
        .await
        .unwrap();

    assert_eq!((summary.records_written, summary.records_skipped), (1, 1));
    let state = executor.store().load().await.unwrap().unwrap();
    assert_eq!(state.id.unwrap().to_string(), "2");
}

#[tokio::test]
async fn a_failing_filter_delivers_and_commits_nothing_of_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(
        dir.path(),
        "  - type: mapping\n    mappings: [{source: n, target: n, transforms: [{op: toInt}]}]",
    );
    let mut source = Pages::of(&[
        &[json!({"id": 1, "n": "1"})],
        &[json!({"id": 2, "n": "2"}), json!({"id": 3, "n": "three"})],
        &[json!({"id": 4, "n": "4"})],
    ]);
    let sink = Collect::default();

    let error = executor
        .run_with(&mut source, &mut sink.clone(), &RunOptions::default())
        .await
        .unwrap_err();

    assert!(
        matches!(error, RunError::Filter { batch: 2, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with(
            "batch 2: filters[0] (mapping) failed on record 2 of the batch: mappings[0]: \
             transforms[0] of `n`: `\"three\"` (a string) is not a whole number;"
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .ends_with("; nothing of this batch was delivered, the state is unchanged"),
        "{error}"
    );
    assert_eq!(
        sink.0.lock().unwrap().len(),
        1,
        "only the first batch was written"
    );
    let state = executor.store().load().await.unwrap().unwrap();
    assert_eq!(state.id.unwrap().to_string(), "1");
}

#[tokio::test]
async fn a_dry_run_shows_the_records_after_the_filters() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path(), DROP_SMALL);
    let mut source = Pages::of(&[&[
        json!({"id": 1, "amount": 50}),
        json!({"id": 2, "amount": 5}),
    ]]);
    let sink = Collect::default();
    let options = RunOptions {
        dry_run: true,
        ..RunOptions::default()
    };

    let summary = executor
        .run_with(&mut source, &mut sink.clone(), &options)
        .await
        .unwrap();

    assert_eq!(
        *sink.0.lock().unwrap(),
        [vec![json!({"id": 1, "amount": 50, "shaped": true})]]
    );
    assert_eq!(summary.records_dropped, 1);
    assert!(executor.store().load().await.unwrap().is_none());
}
