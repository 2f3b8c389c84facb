//! The exactly-once path against a real server (`cargo xtask pg -- cargo test -p
//! cannectors-runtime`): a database input and a database output on the database of the
//! PostgreSQL store, where each batch's rows and its state commit are one transaction; and the
//! same pipeline with the output in another schema, which stays on the at-least-once path.
//!
//! Another writer taking the lease between a batch's rows and its commit is played by a
//! trigger on the destination table: when the row with id 6 arrives, it moves the lease's
//! epoch on, as a replica that took the lease over would. The commit that follows finds the
//! epoch moved and is fenced; what then stays in the destination tells the two paths apart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cannectors_runtime::{Executor, RunError, RunOptions, delivery_guarantee};
use cannectors_state::StateError;
use cannectors_test_support::postgres;
use tokio_postgres::Client;

/// Ten source rows, a destination without a key (so that a duplicate would show), and the
/// trigger that plays a takeover: it bumps the epoch of the lease in `store_schema`.
fn setup(store_schema: &str) -> String {
    format!(
        "CREATE TABLE events (id bigint PRIMARY KEY, name text NOT NULL);
         INSERT INTO events SELECT n, 'event ' || n FROM generate_series(1, 10) n;
         CREATE TABLE delivered (id bigint NOT NULL, name text NOT NULL);
         CREATE FUNCTION take_over() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             UPDATE {store_schema}.cannectors_state SET epoch = epoch + 1, owner = 'replica-b'
             WHERE pipeline = 'events';
             RETURN NEW;
         END $$;
         CREATE TRIGGER take_over AFTER INSERT ON delivered
             FOR EACH ROW WHEN (NEW.id = 6) EXECUTE FUNCTION take_over();"
    )
}

/// Reads `events` four rows at a time from `source`, its state in the store of `store`,
/// writing into `delivered` of `output`. The lease is renewed rarely, so that only a commit
/// can find it taken over.
fn pipeline(source: &str, store: &str, output: &str) -> cannectors_config::Pipeline {
    pipeline_with(source, store, output, ONE_RESULT_A_DELIVERY)
}

/// Each query result a delivery of its own, so that the trigger fences the second one.
const ONE_RESULT_A_DELIVERY: &str = "  batchSize: 1\n";

/// [`pipeline`] with more settings of the output (`extra`, lines of YAML).
fn pipeline_with(
    source: &str,
    store: &str,
    output: &str,
    extra: &str,
) -> cannectors_config::Pipeline {
    let yaml = format!(
        r#"
name: events
input:
  type: database
  connectionString: "{source}"
  query: "SELECT id, name FROM events WHERE id > COALESCE($1::bigint, 0) ORDER BY id LIMIT 4"
  statePersistence:
    id: {{field: id}}
    store: postgres
    connectionString: "{store}"
    leaseTtlMs: 60000
    leaseRenewMs: 50000
output:
  type: database
  connectionString: "{output}"
  query: "INSERT INTO delivered (id, name) VALUES ($1, $2)"
  parameters: [record.id, record.name]
{extra}"#
    );
    cannectors_config::parse_str(&yaml, "events.yaml", &|_| None)
        .unwrap()
        .pipeline
}

async fn delivered(client: &Client) -> Vec<i64> {
    client
        .query("SELECT id FROM delivered ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

async fn committed_id(store: &Client) -> Option<i64> {
    store
        .query_opt(
            "SELECT (state->>'id')::bigint FROM cannectors_state WHERE pipeline = 'events'",
            &[],
        )
        .await
        .unwrap()
        .and_then(|row| row.get(0))
}

#[tokio::test]
async fn a_fenced_commit_rolls_back_the_rows_of_its_batch_and_the_next_run_delivers_each_once() {
    let schema = "runtime_exactly_once";
    let client = postgres::fresh_schema(schema, &setup(schema)).await;
    let url = postgres::url_in_schema(schema);
    let pipeline = pipeline(&url, &url, &url);
    assert!(delivery_guarantee(&pipeline).is_exactly_once());

    let error = Executor::new(&pipeline)
        .unwrap()
        .run(&RunOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(error, RunError::State(StateError::Fenced { .. })),
        "{error:?}"
    );
    assert_eq!(
        delivered(&client).await,
        [1, 2, 3, 4],
        "the second batch was rolled back with its commit"
    );
    assert_eq!(committed_id(&client).await, Some(4));

    // The takeover the trigger played was rolled back too; without it, the next run goes on
    // from the committed state and delivers each row once.
    client
        .batch_execute("DROP TRIGGER take_over ON delivered")
        .await
        .unwrap();
    let summary = Executor::new(&pipeline)
        .unwrap()
        .run(&RunOptions::default())
        .await
        .unwrap();
    assert_eq!(summary.records_written, 6);
    assert_eq!(delivered(&client).await, (1..=10).collect::<Vec<_>>());
    assert_eq!(committed_id(&client).await, Some(10));
}

#[tokio::test]
async fn an_output_into_another_schema_is_committed_after_the_write_as_always() {
    let store_schema = "runtime_at_least_once_store";
    let output_schema = "runtime_at_least_once_output";
    let store = postgres::fresh_schema(store_schema, "").await;
    let output = postgres::fresh_schema(output_schema, &setup(store_schema)).await;
    let pipeline = pipeline(
        &postgres::url_in_schema(output_schema),
        &postgres::url_in_schema(store_schema),
        &postgres::url_in_schema(output_schema),
    );
    let guarantee = delivery_guarantee(&pipeline).to_string();
    assert!(
        guarantee.starts_with("at least once") && guarantee.contains("the `options`"),
        "{guarantee}"
    );

    let error = Executor::new(&pipeline)
        .unwrap()
        .run(&RunOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(error, RunError::State(StateError::Fenced { .. })),
        "{error:?}"
    );
    assert_eq!(
        delivered(&output).await,
        (1..=8).collect::<Vec<_>>(),
        "the second batch stayed written though its commit was refused"
    );
    assert_eq!(committed_id(&store).await, Some(4));
}

#[tokio::test]
async fn a_batch_replayed_row_by_row_for_on_error_commits_its_state_in_the_replay() {
    let schema = "runtime_exactly_once_on_error";
    let client = postgres::fresh_schema(
        schema,
        &format!(
            "{}\nALTER TABLE delivered ADD CHECK (id <> 3);",
            setup(schema)
        ),
    )
    .await;
    let url = postgres::url_in_schema(schema);
    let pipeline = pipeline_with(&url, &url, &url, "  onError: skip\n  batchSize: 1\n");
    assert!(delivery_guarantee(&pipeline).is_exactly_once());

    let error = Executor::new(&pipeline)
        .unwrap()
        .run(&RunOptions::default())
        .await
        .unwrap_err();
    // The first batch: row 3 refused, left out, the rest written in the replay with the
    // state; the second: fenced, rolled back whole.
    assert!(
        matches!(error, RunError::State(StateError::Fenced { .. })),
        "{error:?}"
    );
    assert_eq!(delivered(&client).await, [1, 2, 4]);
    assert_eq!(committed_id(&client).await, Some(4));
}
