//! The executor and a shutdown request that comes while the source or the sink waits to retry:
//! a clean stop that commits nothing of the batch, never a failure; and a failure stays one.

#![allow(clippy::unwrap_used, clippy::panic)]

use cannectors_config::parse_str;
use cannectors_connector::{
    Batch, BoxError, BoxFuture, Checkpoint, Record, Sink, Source, StoppedByShutdown,
};
use cannectors_runtime::{Executor, RunError, RunOptions};
use tokio::sync::watch;

/// How a source or sink ends its second call.
#[derive(Clone, Copy)]
enum Second {
    /// Gives up a wait because of the shutdown request, after asking for it.
    Stopped,
    /// Fails with a cause that is a stop, although no stop was requested.
    StoppedUnasked,
    /// Fails for another reason, after asking for a stop.
    Fails,
}

/// Asks for a stop (the way a SIGTERM reaches a run) and reports what a client reports then.
fn second_call(second: Second, stop: &watch::Sender<bool>) -> BoxError {
    #[derive(Debug, thiserror::Error)]
    #[error("GET http://127.0.0.1:9/items: {0}")]
    struct Wrapped(#[source] StoppedByShutdown);

    match second {
        Second::Stopped => {
            stop.send_replace(true);
            Box::new(Wrapped(StoppedByShutdown))
        }
        Second::StoppedUnasked => Box::new(Wrapped(StoppedByShutdown)),
        Second::Fails => {
            stop.send_replace(true);
            "the server answered HTTP 500".into()
        }
    }
}

/// Two pages of one record each; the second call ends as told.
struct TwoPages {
    calls: u32,
    second: Second,
    stop: watch::Sender<bool>,
}

impl Source for TwoPages {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>, BoxError>> {
        self.calls += 1;
        let id = self.calls;
        Box::pin(async move {
            match id {
                1 => Ok(Some(Batch {
                    records: vec![Record::from(serde_json::json!({"id": 1}))],
                    checkpoint: Checkpoint::Advance,
                    greatest: None,
                    keys: None,
                })),
                _ => Err(second_call(self.second, &self.stop)),
            }
        })
    }
}

/// Pages without end, of one record each: 1, 2, ...
struct Endless(u32);

impl Source for Endless {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>, BoxError>> {
        self.0 += 1;
        let id = self.0;
        Box::pin(async move {
            Ok(Some(Batch {
                records: vec![Record::from(serde_json::json!({"id": id}))],
                checkpoint: Checkpoint::Advance,
                greatest: None,
                keys: None,
            }))
        })
    }
}

/// Accepts the first batch; the second write ends as told.
struct AcceptsOne {
    written: Vec<String>,
    second: Second,
    stop: watch::Sender<bool>,
}

impl Sink for AcceptsOne {
    fn write<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            if self.written.is_empty() {
                self.written
                    .extend(records.iter().map(|r| r.json().to_owned()));
                Ok(())
            } else {
                Err(second_call(self.second, &self.stop))
            }
        })
    }
}

struct Nothing;

impl Sink for Nothing {
    fn write<'a>(&'a mut self, _: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Ok(()) })
    }
}

fn executor(dir: &tempfile::TempDir) -> Executor {
    let yaml = format!(
        "name: events\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:9/items', \
         statePersistence: {{id: {{field: id, queryParam: after}}, storagePath: '{}'}}}}\n\
         output: {{type: stdout, batchSize: 1}}\n",
        dir.path().display()
    );
    Executor::new(&parse_str(&yaml, "events.yaml", &|_| None).unwrap().pipeline).unwrap()
}

async fn committed_id(executor: &Executor) -> String {
    executor
        .store()
        .load()
        .await
        .unwrap()
        .unwrap()
        .id
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_source_that_gives_up_its_retry_on_shutdown_ends_the_run_as_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(&dir);
    let (stop, stopping) = watch::channel(false);
    let mut source = TwoPages {
        calls: 0,
        second: Second::Stopped,
        stop,
    };
    let options = RunOptions {
        stop: Some(stopping),
        ..RunOptions::default()
    };
    let summary = executor
        .run_with(&mut source, &mut Nothing, &options)
        .await
        .unwrap();
    assert!(summary.interrupted);
    assert_eq!((summary.batches, summary.records_written), (1, 1));
    assert!(summary.to_string().starts_with("run stopped on request:"));
    assert_eq!(
        executor
            .store()
            .load()
            .await
            .unwrap()
            .unwrap()
            .id
            .unwrap()
            .to_string(),
        "1",
        "the batch before the stop stays committed"
    );
}

#[tokio::test]
async fn a_sink_that_gives_up_its_retry_on_shutdown_leaves_its_batch_uncommitted() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(&dir);
    let (stop, stopping) = watch::channel(false);
    let mut sink = AcceptsOne {
        written: Vec::new(),
        second: Second::Stopped,
        stop,
    };
    let options = RunOptions {
        stop: Some(stopping),
        ..RunOptions::default()
    };
    let summary = executor
        .run_with(&mut Endless(0), &mut sink, &options)
        .await
        .unwrap();
    assert!(summary.interrupted);
    assert_eq!((summary.batches, summary.records_written), (1, 1));
    assert_eq!(sink.written, [r#"{"id":1}"#]);
    assert_eq!(
        committed_id(&executor).await,
        "1",
        "batch 2 is not committed"
    );
}

#[tokio::test]
async fn a_stop_error_without_a_stop_request_is_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(&dir);
    let (stop, stopping) = watch::channel(false);
    let mut source = TwoPages {
        calls: 0,
        second: Second::StoppedUnasked,
        stop,
    };
    let options = RunOptions {
        stop: Some(stopping),
        ..RunOptions::default()
    };
    let error = executor
        .run_with(&mut source, &mut Nothing, &options)
        .await
        .unwrap_err();
    assert!(matches!(error, RunError::Source { .. }), "{error:?}");
}

#[tokio::test]
async fn a_sink_failure_during_a_shutdown_is_still_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let executor = executor(&dir);
    let (stop, stopping) = watch::channel(false);
    let mut sink = AcceptsOne {
        written: Vec::new(),
        second: Second::Fails,
        stop,
    };
    let options = RunOptions {
        stop: Some(stopping),
        ..RunOptions::default()
    };
    let error = executor
        .run_with(&mut Endless(0), &mut sink, &options)
        .await
        .unwrap_err();
    assert!(
        matches!(error, RunError::Sink { batch: 2, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("the server answered HTTP 500"),
        "{error}"
    );
    assert_eq!(committed_id(&executor).await, "1");
}
