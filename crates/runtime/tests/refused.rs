//! Records an output left out on purpose (a database output's `onError: skip | log`) are counted
//! as refused in the run summary, not as written, and the cursor moves past them.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;

use cannectors_connector::{Batch, BoxError, BoxFuture, Checkpoint, Record, Sink, Source};
use cannectors_runtime::{Executor, RunOptions};
use serde_json::json;

struct Pages(VecDeque<Batch>);

impl Source for Pages {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>, BoxError>> {
        let next = self.0.pop_front();
        Box::pin(async move { Ok(next) })
    }
}

/// Accepts the records with an even id and leaves out the others, as a database output under
/// `onError: skip` leaves out the rows the database refuses.
#[derive(Default)]
struct RefusesOdd {
    refused: u64,
}

impl Sink for RefusesOdd {
    fn write<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>> {
        for record in records {
            if record.to_value().unwrap()["id"].as_u64().unwrap() % 2 == 1 {
                self.refused += 1;
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn refused(&self) -> u64 {
        self.refused
    }
}

fn executor(dir: &std::path::Path) -> Executor {
    let yaml = format!(
        "name: refusing\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:9/x', \
         statePersistence: {{id: {{field: id, queryParam: after}}, storagePath: '{}'}}}}\n\
         output: {{type: stdout}}\n",
        dir.display()
    );
    let loaded = cannectors_config::parse_str(&yaml, "refusing.yaml", &|_| None).unwrap();
    Executor::new(&loaded.pipeline).unwrap()
}

fn pages(ids: &[&[u64]]) -> Pages {
    Pages(
        ids.iter()
            .map(|page| Batch {
                records: page
                    .iter()
                    .map(|id| Record::from(json!({"id": id})))
                    .collect(),
                checkpoint: Checkpoint::Advance,
                greatest: None,
                keys: None,
            })
            .collect(),
    )
}

#[tokio::test]
async fn refused_records_are_counted_apart_from_the_written_ones() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(dir.path());
    let summary = executor
        .run_with(
            &mut pages(&[&[1, 2, 3], &[4, 5]]),
            &mut RefusesOdd::default(),
            &RunOptions::default(),
        )
        .await
        .unwrap();

    assert_eq!(
        (
            summary.records_read,
            summary.records_written,
            summary.records_refused
        ),
        (5, 2, 3)
    );
    assert!(
        summary
            .to_string()
            .contains(" read=5 written=2 refused=3 batches=2"),
        "{summary}"
    );
    let state = executor.store().load().await.unwrap().unwrap();
    assert_eq!(
        state.id.unwrap().to_string(),
        "5",
        "past the refused record 5"
    );
}

#[tokio::test]
async fn refused_is_shown_only_when_a_record_was_refused() {
    let dir = tempfile::tempdir().unwrap();
    let summary = executor(dir.path())
        .run_with(
            &mut pages(&[&[2, 4]]),
            &mut RefusesOdd::default(),
            &RunOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(summary.records_refused, 0);
    assert!(!summary.to_string().contains("refused="), "{summary}");
    assert!(
        summary.to_string().contains(" read=2 written=2 batches=1"),
        "{summary}"
    );
}
