//! The database output against a real PostgreSQL (started by `cargo xtask pg` or `cargo xtask
//! ci`, its URL in `CANNECTORS_TEST_POSTGRES_URL`) and against SQLite files in temporary
//! directories. Each PostgreSQL test writes into its own schema.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cannectors_config::{OutputConfig, parse_str};
use cannectors_connector::{Record, Sink};
use cannectors_test_support::postgres::{fresh_schema as schema, url as postgres_url};
use serde_json::{Value, json};

/// A pipeline file (as JSON) whose output is the database block `block` (without its `type`).
fn pipeline(block: Value) -> String {
    let mut block = block;
    block["type"] = json!("database");
    json!({
        "name": "store",
        "input": {"type": "httpPolling", "endpoint": "http://127.0.0.1:9/source"},
        "output": block
    })
    .to_string()
}

/// The output of `block`, loaded as a pipeline is: the only way to get it.
fn config(block: Value) -> OutputConfig {
    parse_str(&pipeline(block), "store.json", &|_| None)
        .unwrap_or_else(|error| panic!("{error}"))
        .pipeline
        .output
}

fn sink(url: &str, query: &str, parameters: Value, transaction: bool) -> Box<dyn Sink> {
    let config = config(json!({
        "connectionString": url,
        "query": query,
        "parameters": parameters,
        "transaction": transaction
    }));
    cannectors_output::build(&config).unwrap()
}

async fn rows(client: &tokio_postgres::Client, sql: &str) -> Vec<(i64, Option<String>)> {
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[tokio::test]
async fn records_land_in_postgres_with_typed_parameters_and_upserts() {
    let client = schema(
        "sink_lands",
        "CREATE TABLE dest (id bigint PRIMARY KEY, email text, seen_at timestamptz, score numeric);",
    )
    .await;
    let mut sink = sink(
        &postgres_url(),
        "INSERT INTO sink_lands.dest (id, email, seen_at, score) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email",
        json!([
            "record.id",
            "record.contact.email ?? \"unknown\"",
            "record.seen",
            "record.score"
        ]),
        true,
    );
    let batch = [
        json!({"id": 1, "contact": {"email": "a@example.com"}, "seen": "2026-01-01T00:00:00Z", "score": "10.25"}),
        json!({"id": 2, "seen": "2026-01-01 10:00:00", "score": 3}),
    ];
    sink.write(&batch.map(Record::from)).await.unwrap();
    sink.write(&[Record::from(
        json!({"id": 1, "contact": {"email": "new@example.com"}}),
    )])
    .await
    .unwrap();
    assert_eq!(
        rows(&client, "SELECT id, email FROM sink_lands.dest ORDER BY id").await,
        [
            (1, Some("new@example.com".to_owned())),
            (2, Some("unknown".to_owned()))
        ]
    );
    let row = client
        .query_one(
            "SELECT seen_at::text, score::text FROM sink_lands.dest WHERE id = 2",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "2026-01-01 10:00:00+00");
    assert_eq!(row.get::<_, String>(1), "3");
}

#[tokio::test]
async fn one_bad_record_rolls_the_whole_batch_back_and_names_its_position() {
    let client = schema(
        "sink_rollback",
        "CREATE TABLE dest (id bigint PRIMARY KEY, email text NOT NULL);
         INSERT INTO dest VALUES (100, 'existing@example.com');",
    )
    .await;
    let mut sink = sink(
        &postgres_url(),
        "INSERT INTO sink_rollback.dest (id, email) VALUES ($1, $2)",
        json!(["record.id", "record.email"]),
        true,
    );
    let mut batch: Vec<Record> = (1001..=1600)
        .map(|id| Record::from(json!({"id": id, "email": format!("{id}@example.com")})))
        .collect();
    batch[457] = Record::from(json!({"id": 100, "email": "dup@example.com"}));
    let message = sink.write(&batch).await.unwrap_err().to_string();
    assert!(
        message.starts_with(
            "record 457 of the batch could not be written to postgres://cannectors@127.0.0.1:"
        ),
        "{message}"
    );
    assert!(
        message.contains("(the whole batch was rolled back; nothing of it is committed)"),
        "{message}"
    );
    assert!(
        message.contains(
            "ERROR 23505: duplicate key value violates unique constraint \"dest_pkey\" (detail: \
             Key (id)=(100) already exists.)"
        ),
        "{message}"
    );
    assert!(
        message.ends_with("the batch is not committed and is sent again by the next run"),
        "{message}"
    );
    assert_eq!(
        rows(&client, "SELECT id, email FROM sink_rollback.dest").await,
        [(100, Some("existing@example.com".to_owned()))],
        "nothing of the batch stays"
    );
    // The connection is still usable for the next batch.
    sink.write(&[Record::from(json!({"id": 1, "email": "one@example.com"}))])
        .await
        .unwrap();
    assert_eq!(
        rows(
            &client,
            "SELECT count(*), NULL::text FROM sink_rollback.dest"
        )
        .await,
        [(2, None)]
    );
}

#[tokio::test]
async fn a_value_that_does_not_fit_its_column_names_the_record() {
    schema("sink_bind", "CREATE TABLE dest (id bigint PRIMARY KEY);").await;
    let mut sink = sink(
        &postgres_url(),
        "INSERT INTO sink_bind.dest (id) VALUES ($1)",
        json!(["record.id"]),
        true,
    );
    let message = sink
        .write(&[
            Record::from(json!({"id": 1})),
            Record::from(json!({"id": "abc"})),
        ])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("record 1 of the batch could not be written"),
        "{message}"
    );
    assert!(
        message.contains(
            "output.parameters: cannot bind \"abc\" (record.id) to $1 as int8: not an integer \
             that fits 64 bits"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn state_cursors_and_mismatched_placeholders_are_refused() {
    let problems: Vec<String> = parse_str(
        &pipeline(json!({
            "connectionString": "postgres://localhost/x",
            "query": "INSERT INTO t VALUES ($1)",
            "parameters": ["state.id"]
        })),
        "store.json",
        &|_| None,
    )
    .unwrap_err()
    .problems()
    .iter()
    .map(|p| format!("{}: {}", p.key_path, p.message))
    .collect();
    assert_eq!(
        problems,
        [
            "output.parameters[0]: `state.id`: an output binds values of each record; use \
          record.<path> or a literal, not state.*"
        ]
    );

    let problems: Vec<String> = parse_str(
        &pipeline(json!({
            "connectionString": "postgres://localhost/x",
            "query": "INSERT INTO t (id, email) VALUES ($1, $2)",
            "parameters": ["record.id"]
        })),
        "store.json",
        &|_| None,
    )
    .unwrap_err()
    .problems()
    .iter()
    .map(|p| format!("{}: {}", p.key_path, p.message))
    .collect();
    assert_eq!(
        problems,
        [
            "output.parameters: the query uses $1 to $2 but `parameters` lists 1 value; bind \
          exactly one value per placeholder"
        ]
    );

    // PostgreSQL nests block comments and loading's reading of the text does not, so only the
    // database sees that `$2` is commented out: the count it reports is the one that binds.
    schema("sink_count", "CREATE TABLE dest (id bigint, email text);").await;
    let mut sink = sink(
        &postgres_url(),
        "INSERT INTO sink_count.dest (id) VALUES ($1) /* a /* nested */ $2 */",
        json!(["record.id", "record.email"]),
        true,
    );
    let message = sink
        .write(&[Record::from(json!({"id": 1}))])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with(
            "output.parameters: the query has 1 placeholder(s) but 2 value(s) are bound \
             (parameters: [record.id, record.email])"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn sqlite_rows_land_and_a_bad_row_rolls_back_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dest.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE dest (id INTEGER PRIMARY KEY, email TEXT NOT NULL);")
        .unwrap();
    let url = format!("sqlite://{}", path.display());
    let mut sink = sink(
        &url,
        "INSERT INTO dest (id, email) VALUES ($1, $2)",
        json!(["record.id", "record.email"]),
        true,
    );
    sink.write(&[Record::from(json!({"id": 1, "email": "a@example.com"}))])
        .await
        .unwrap();
    let message = sink
        .write(&[
            Record::from(json!({"id": 2, "email": "b@example.com"})),
            Record::from(json!({"id": 3})),
        ])
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        format!(
            "record 1 of the batch could not be written to {url} (the whole batch was rolled \
             back; nothing of it is committed): ConstraintViolation (1299): NOT NULL constraint \
             failed: dest.email; the batch is not committed and is sent again by the next run"
        )
    );
    let count: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM dest", [], |row| row.get(0))
        .unwrap();
    assert_eq!(count, 1, "only the first batch is written");
}

#[tokio::test]
async fn without_a_transaction_the_records_before_the_failure_stay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dest.db");
    let url = format!("sqlite://{}", path.display());
    let mut sink = sink(
        &url,
        "INSERT INTO dest (id) VALUES ($1)",
        json!(["record.id"]),
        false,
    );
    // The sink creates the file; the table comes from the test.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE dest (id INTEGER PRIMARY KEY);")
        .unwrap();
    let message = sink
        .write(&[
            Record::from(json!({"id": 1})),
            Record::from(json!({"id": 1})),
            Record::from(json!({"id": 2})),
        ])
        .await
        .unwrap_err()
        .to_string();
    assert!(message.contains("record 1 of the batch"), "{message}");
    assert!(
        message.contains("(transaction: false, so the records before it stay written)"),
        "{message}"
    );
    let count: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM dest", [], |row| row.get(0))
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn a_write_slower_than_statement_timeout_ms_fails_and_commits_nothing() {
    let client = schema(
        "sink_slow",
        "CREATE TABLE dest (id bigint PRIMARY KEY, email text);",
    )
    .await;
    let config = config(json!({
        "connectionString": postgres_url(),
        // The second record's row makes the server sleep far past the bound.
        "query": "INSERT INTO sink_slow.dest (id, email) \
                  SELECT $1, $2 FROM pg_sleep(CASE WHEN $1::bigint = 2 THEN 30 ELSE 0 END)",
        "parameters": ["record.id", "record.email"],
        "statementTimeoutMs": 300
    }));
    let mut sink = cannectors_output::build(&config).unwrap();
    let batch = [json!({"id": 1, "email": "a@example.com"}), json!({"id": 2})].map(Record::from);
    let started = std::time::Instant::now();
    let message = tokio::time::timeout(std::time::Duration::from_secs(20), sink.write(&batch))
        .await
        .expect("the statement timeout ends the wait")
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{message}"
    );
    assert!(
        message.starts_with("writing records 0 to 1 of the batch did not finish on postgres://"),
        "{message}"
    );
    assert!(
        message.contains("within output.statementTimeoutMs (300 ms), so it was cancelled"),
        "{message}"
    );
    assert!(
        rows(&client, "SELECT id, email FROM sink_slow.dest")
            .await
            .is_empty()
    );
}

/// The sink of a database output block (`type` added), loaded as a pipeline is.
fn sink_of(block: Value) -> Box<dyn Sink> {
    cannectors_output::build(&config(block)).unwrap()
}

#[tokio::test]
async fn postgres_on_error_skip_writes_the_good_records_and_leaves_out_the_refused_ones() {
    let client = schema(
        "sink_skip",
        "CREATE TABLE dest (id bigint PRIMARY KEY, email text NOT NULL CHECK (email <> ''));
         INSERT INTO dest VALUES (100, 'existing@example.com');",
    )
    .await;
    for transaction in [true, false] {
        client
            .batch_execute("DELETE FROM sink_skip.dest WHERE id <> 100")
            .await
            .unwrap();
        let mut sink = sink_of(json!({
            "connectionString": postgres_url(),
            "query": "INSERT INTO sink_skip.dest (id, email) VALUES ($1, $2)",
            "parameters": ["record.id", "record.email"],
            "transaction": transaction,
            "onError": "skip",
        }));
        // More records than one pipelined group, with refusals of each kind in it.
        let mut batch: Vec<Record> = (1001..=1400)
            .map(|id| Record::from(json!({"id": id, "email": format!("{id}@example.com")})))
            .collect();
        batch[3] = Record::from(json!({"id": 100, "email": "dup@example.com"})); // 23505
        batch[260] = Record::from(json!({"id": 1261})); // 23502 NOT NULL
        batch[300] = Record::from(json!({"id": 1301, "email": ""})); // 23514 CHECK
        batch[399] = Record::from(json!({"id": "four hundred", "email": "x@example.com"})); // bind
        sink.write(&batch).await.unwrap();
        let count = client
            .query_one("SELECT count(*) FROM sink_skip.dest", &[])
            .await
            .unwrap()
            .get::<_, i64>(0);
        assert_eq!(count, 1 + 400 - 4, "transaction: {transaction}");
        assert_eq!(
            rows(
                &client,
                "SELECT id, email FROM sink_skip.dest WHERE id = 100"
            )
            .await,
            [(100, Some("existing@example.com".to_owned()))]
        );
    }
}

#[tokio::test]
async fn postgres_on_error_skip_still_fails_on_what_is_not_about_a_record() {
    let client = schema(
        "sink_skip_fail",
        "CREATE TABLE dest (id bigint PRIMARY KEY);",
    )
    .await;
    let mut sink = sink_of(json!({
        "connectionString": postgres_url(),
        "query": "INSERT INTO sink_skip_fail.dest (id) VALUES ($1)",
        "parameters": ["record.id"],
        "onError": "skip",
    }));
    sink.write(&[Record::from(json!({"id": 1}))]).await.unwrap();
    // A permission or a dropped table is the same for every record: leaving them all out would
    // only hide it.
    client
        .batch_execute("DROP TABLE sink_skip_fail.dest")
        .await
        .unwrap();
    let message = sink
        .write(&[Record::from(json!({"id": 2}))])
        .await
        .unwrap_err()
        .to_string();
    assert!(message.contains("42P01"), "{message}");
}

#[tokio::test]
async fn sqlite_on_error_skip_and_log_write_the_good_records_of_the_batch() {
    for (on_error, transaction) in [("skip", true), ("log", true), ("skip", false)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dest.db");
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE dest (id INTEGER PRIMARY KEY, email TEXT NOT NULL);
                 INSERT INTO dest VALUES (100, 'existing@example.com');",
            )
            .unwrap();
        let mut sink = sink_of(json!({
            "connectionString": format!("sqlite://{}", path.display()),
            "query": "INSERT INTO dest (id, email) VALUES ($1, $2)",
            "parameters": ["record.id", "record.email"],
            "transaction": transaction,
            "onError": on_error,
        }));
        sink.write(&[
            Record::from(json!({"id": 1, "email": "a@example.com"})),
            Record::from(json!({"id": 100, "email": "dup@example.com"})),
            Record::from(json!({"id": 2})),
            Record::from(json!({"id": 3, "email": "c@example.com"})),
        ])
        .await
        .unwrap();
        let ids: Vec<i64> = rusqlite::Connection::open(&path)
            .unwrap()
            .prepare("SELECT id FROM dest ORDER BY id")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ids, [1, 3, 100], "{on_error}, transaction: {transaction}");
        // What the run summary reports as refused=: counted over the sink's batches.
        assert_eq!(sink.refused(), 2, "{on_error}, transaction: {transaction}");
        sink.write(&[Record::from(json!({"id": 4}))]).await.unwrap();
        assert_eq!(sink.refused(), 3, "{on_error}, transaction: {transaction}");
    }
}
