//! The executor on the PostgreSQL store, against a real server (`cargo xtask pg -- cargo test
//! -p cannectors-runtime`): what a run commits there, the lease it gives back, and a run that
//! lost its lease delivering nothing more.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cannectors_connector::{Batch, BoxError, BoxFuture, Checkpoint, Record, Sink, Source};
use cannectors_runtime::{Executor, RunError, RunOptions, store_for};
use cannectors_state::StateError;
use cannectors_test_support::postgres;
use serde_json::json;
use tokio::sync::Notify;
use tracing_subscriber::layer::{Context, SubscriberExt as _};

fn pipeline(schema: &str, lease: &str) -> cannectors_config::Pipeline {
    let yaml = format!(
        "name: orders\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:9/x', \
         statePersistence: {{id: {{field: id, queryParam: after}}, store: postgres, \
         connectionString: '{}'{lease}}}}}\noutput: {{type: stdout, batchSize: 1}}\n",
        postgres::url_in_schema(schema)
    );
    cannectors_config::parse_str(&yaml, "orders.yaml", &|_| None)
        .unwrap()
        .pipeline
}

/// Wakes `noticed` when the lease renewal logs that another process took the lease over: the
/// one sign, outside the run, that the run knows it.
struct TakeoverNoticed {
    noticed: Arc<Notify>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for TakeoverNoticed {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if message
            .0
            .contains("the lease was taken over by another process")
        {
            self.noticed.notify_one();
        }
    }
}

/// Pages of one record each; before handing out page `pause_before`, runs `pause` (the test's
/// way to act while the run waits for its source).
struct Pages {
    pages: Vec<i64>,
    served: usize,
    pause_before: usize,
    pause: Option<Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>>,
}

impl Source for Pages {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>, BoxError>> {
        Box::pin(async move {
            if self.served == self.pause_before
                && let Some(pause) = self.pause.take()
            {
                pause().await;
            }
            let Some(&id) = self.pages.get(self.served) else {
                return Ok(None);
            };
            self.served += 1;
            Ok(Some(Batch {
                records: vec![Record::from(json!({ "id": id }))],
                checkpoint: Checkpoint::Advance,
                greatest: None,
                keys: None,
            }))
        })
    }
}

#[derive(Clone, Default)]
struct Delivered(Arc<Mutex<Vec<String>>>);

impl Sink for Delivered {
    fn write<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>> {
        let mut seen = self.0.lock().unwrap();
        seen.extend(records.iter().map(|record| record.json().to_owned()));
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn a_run_commits_to_the_postgres_store_and_gives_the_lease_back_when_it_ends() {
    postgres::fresh_schema("runtime_pg_commit", "").await;
    let configured = pipeline("runtime_pg_commit", "");
    let executor = Executor::new(&configured).unwrap();
    assert!(
        executor
            .store()
            .location()
            .starts_with("table cannectors_state of postgres://"),
        "{}",
        executor.store().location()
    );
    let mut source = Pages {
        pages: vec![40, 41],
        served: 0,
        pause_before: usize::MAX,
        pause: None,
    };
    executor
        .run_with(
            &mut source,
            &mut Delivered::default(),
            &RunOptions::default(),
        )
        .await
        .unwrap();

    let store = store_for(&configured).unwrap();
    let state = store.load().await.unwrap().unwrap();
    assert_eq!(state.id.unwrap().to_string(), "41");
    let lease = store.lease().await.unwrap().unwrap();
    assert_eq!((lease.epoch, lease.held), (1, false), "released at the end");
    // Given back, not left to expire: the next run takes it at once.
    store.lock().await.unwrap();
}

#[tokio::test]
async fn a_run_whose_lease_was_taken_over_delivers_nothing_more() {
    let client = Arc::new(postgres::fresh_schema("runtime_pg_fenced", "").await);
    let configured = pipeline("runtime_pg_fenced", ", leaseTtlMs: 5000, leaseRenewMs: 50");
    let executor = Executor::new(&configured).unwrap();
    let takeover = Arc::clone(&client);
    // The test runtime has one thread, so the renewal task logs through this subscriber too.
    let noticed = Arc::new(Notify::new());
    let _logs =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(TakeoverNoticed {
            noticed: Arc::clone(&noticed),
        }));
    let mut source = Pages {
        pages: vec![1, 2, 3],
        served: 0,
        pause_before: 1,
        pause: Some(Box::new(move || {
            Box::pin(async move {
                // Another replica takes the lease over while this run fetches its next page.
                takeover
                    .batch_execute(
                        "UPDATE cannectors_state SET owner = 'replica-b', epoch = epoch + 1, \
                         lease_until = now() + interval '1 minute' WHERE pipeline = 'orders'",
                    )
                    .await
                    .unwrap();
                // The run learns it from its renewal, every 50 ms, which logs it.
                tokio::time::timeout(Duration::from_secs(10), noticed.notified())
                    .await
                    .expect("the renewal noticed the takeover within 10 s");
            })
        })),
    };
    let delivered = Delivered::default();
    let error = executor
        .run_with(&mut source, &mut delivered.clone(), &RunOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(error, RunError::State(StateError::Fenced { epoch: 1, .. })),
        "{error:?}"
    );
    assert_eq!(*delivered.0.lock().unwrap(), vec![r#"{"id":1}"#.to_owned()]);
    let state = store_for(&configured)
        .unwrap()
        .load()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.id.unwrap().to_string(), "1");
    let owner: String = client
        .query_one("SELECT owner FROM cannectors_state", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        owner, "replica-b",
        "the fenced run's release left the new lease alone"
    );
}

#[tokio::test]
async fn a_tick_another_executor_already_ran_delivers_nothing_and_says_who_ran_it() {
    postgres::fresh_schema("runtime_pg_tick", "").await;
    let configured = pipeline("runtime_pg_tick", "");
    let first = Executor::new(&configured).unwrap();
    let late = Executor::new(&configured).unwrap();
    let tick = Some("2026-05-04T10:00:05Z".parse().unwrap());
    let options = RunOptions {
        tick,
        ..RunOptions::default()
    };
    let pages = |pages: Vec<i64>| Pages {
        pages,
        served: 0,
        pause_before: usize::MAX,
        pause: None,
    };
    first
        .run_with(&mut pages(vec![1]), &mut Delivered::default(), &options)
        .await
        .unwrap();

    // The same tick, woken up late on another replica: the lease is free again, the tick is not.
    let delivered = Delivered::default();
    let error = late
        .run_with(&mut pages(vec![2]), &mut delivered.clone(), &options)
        .await
        .unwrap_err();
    let owner = first.store().owner().unwrap().to_owned();
    assert!(
        matches!(
            &error,
            RunError::State(StateError::TickTaken { owner: taker, .. }) if *taker == owner
        ),
        "{error:?}"
    );
    assert!(delivered.0.lock().unwrap().is_empty());
    let state = late.store().load().await.unwrap().unwrap();
    assert_eq!(state.id.unwrap().to_string(), "1");

    // The next tick runs, on whichever replica wakes first.
    let next = RunOptions {
        tick: Some("2026-05-04T10:00:06Z".parse().unwrap()),
        ..RunOptions::default()
    };
    late.run_with(&mut pages(vec![2]), &mut delivered.clone(), &next)
        .await
        .unwrap();
    assert_eq!(*delivered.0.lock().unwrap(), vec![r#"{"id":2}"#.to_owned()]);
}
