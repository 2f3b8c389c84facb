//! Live counters of a run in progress, for whoever watches a long run (a progress line, a
//! metrics endpoint) while the executor is still in its batch loop.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters the executor advances during a run: records read as each batch arrives, records
/// written and batches as each batch is committed. Share one through [`RunOptions::progress`](crate::RunOptions::progress)
/// and read it from another task at any time.
///
/// ```
/// let progress = cannectors_runtime::RunProgress::default();
/// assert_eq!((progress.records_read(), progress.records_written(), progress.batches()), (0, 0, 0));
/// ```
#[derive(Debug, Default)]
pub struct RunProgress {
    records_read: AtomicU64,
    records_written: AtomicU64,
    batches: AtomicU64,
}

impl RunProgress {
    /// Records received from the source so far.
    pub fn records_read(&self) -> u64 {
        self.records_read.load(Ordering::Relaxed)
    }

    /// Records the sink accepted so far.
    pub fn records_written(&self) -> u64 {
        self.records_written.load(Ordering::Relaxed)
    }

    /// Batches delivered and committed so far.
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    pub(crate) fn read(&self, records: usize) {
        self.records_read
            .fetch_add(records as u64, Ordering::Relaxed);
    }

    pub(crate) fn committed(&self, records: usize) {
        self.records_written
            .fetch_add(records as u64, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cannectors_connector::{Batch, BoxError, BoxFuture, Checkpoint, Record, Sink, Source};
    use serde_json::json;

    use crate::{Executor, RunOptions, RunProgress};

    struct Pages(Vec<Vec<Record>>);
    impl Source for Pages {
        fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>, BoxError>> {
            let page = (!self.0.is_empty()).then(|| self.0.remove(0));
            Box::pin(async move {
                Ok(page.map(|records| Batch {
                    records,
                    checkpoint: Checkpoint::Advance,
                    greatest: None,
                    keys: None,
                }))
            })
        }
    }

    /// Accepts the first batch and refuses the second.
    struct RefusesSecond(usize);
    impl Sink for RefusesSecond {
        fn write<'a>(&'a mut self, _: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>> {
            self.0 += 1;
            let refuse = self.0 > 1;
            Box::pin(async move {
                if refuse {
                    Err("destination down".into())
                } else {
                    Ok(())
                }
            })
        }
    }

    #[tokio::test]
    async fn counts_records_read_and_only_committed_batches_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "name: progress\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:9/x', \
             statePersistence: {{id: {{field: id, queryParam: after}}, storagePath: '{}'}}}}\n\
             output: {{type: stdout, batchSize: 1}}\n",
            dir.path().display()
        );
        // batchSize 1: each source batch is a delivery of its own.
        let loaded = cannectors_config::parse_str(&yaml, "progress.yaml", &|_| None).unwrap();
        let executor = Executor::new(&loaded.pipeline).unwrap();
        let progress = Arc::new(RunProgress::default());
        let options = RunOptions {
            progress: Some(progress.clone()),
            ..RunOptions::default()
        };
        let mut source = Pages(vec![
            vec![
                Record::from(json!({"id": 1})),
                Record::from(json!({"id": 2})),
            ],
            vec![Record::from(json!({"id": 3}))],
        ]);
        let outcome = executor
            .run_with(&mut source, &mut RefusesSecond(0), &options)
            .await;
        assert!(outcome.is_err());
        assert_eq!(progress.records_read(), 3);
        assert_eq!(progress.records_written(), 2);
        assert_eq!(progress.batches(), 1);
    }
}
