//! The database source against a real PostgreSQL, started by `cargo xtask pg` (or `cargo xtask
//! ci`), which hands its URL over in `CANNECTORS_TEST_POSTGRES_URL`. Each test works in its own
//! schema, so the tests run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use cannectors_config::{DatabaseInput, InputConfig, parse_str};
use cannectors_connector::{Checkpoint, Record, Source};
use cannectors_input_db::DatabaseSource;
use cannectors_state::State;
use cannectors_test_support::postgres::{ca_file, fresh_schema as schema, url as postgres_url};
use serde_json::{Value, json};

/// The records of a batch as values, to compare with `json!` literals.
fn values(records: Vec<Record>) -> Vec<Value> {
    records.iter().map(|r| r.to_value().unwrap()).collect()
}

/// The settings of `block`, a database input block without its `type`, loaded as a pipeline
/// is: the only way to get them.
fn load(block: Value) -> DatabaseInput {
    let mut block = block;
    block["type"] = json!("database");
    let text = json!({"name": "rows", "input": block, "output": {"type": "stdout"}}).to_string();
    let loaded = parse_str(&text, "rows.json", &|_| None).unwrap_or_else(|error| panic!("{error}"));
    match loaded.pipeline.input {
        InputConfig::Database(input) => input,
        other => panic!("not a database input: {other:?}"),
    }
}

fn input(value: Value) -> DatabaseInput {
    let mut value = value;
    value["connectionString"] = json!(postgres_url());
    load(value)
}

async fn drain(source: &mut DatabaseSource) -> Vec<Vec<Value>> {
    let mut batches = Vec::new();
    // Bounded: a source that never ends fails the test instead of hanging it.
    for _ in 0..1000 {
        match source.next_batch().await.unwrap() {
            Some(batch) => {
                assert_eq!(batch.checkpoint, Checkpoint::Advance);
                batches.push(values(batch.records));
            }
            None => return batches,
        }
    }
    panic!("the source did not end after 1000 batches");
}

fn keyset_input(schema: &str, limit: u32) -> DatabaseInput {
    input(json!({
        "query": format!(
            "SELECT id, updated_at, name FROM {schema}.events \
             WHERE (updated_at, id) > (COALESCE($1::timestamptz, '-infinity'), COALESCE($2::bigint, 0)) \
             ORDER BY updated_at, id LIMIT {limit}"
        ),
        "statePersistence": {
            "timestamp": {"field": "updated_at"},
            "id": {"field": "id"}
        }
    }))
}

#[tokio::test]
async fn maps_every_listed_type_value_by_value() {
    let client = schema(
        "types_mapping",
        "CREATE TYPE mood AS ENUM ('happy', 'sad');
         CREATE TABLE everything (
           i2 int2, i4 int4, i8 int8, n_small numeric(10,2), n_big numeric, n_int numeric,
           f4 float4, f8 float8, f8_nan float8, b bool, t text, v varchar(10), c char(3), nm name,
           tstz timestamptz, ts timestamp, d date, tm time, u uuid, j json, jb jsonb, by bytea,
           ints int4[], texts text[], grid int8[][], m mood, nothing text);
         INSERT INTO everything VALUES (
           -32768, 2147483647, 9223372036854775807, 10.50, 123456789012345678901234.5678, 42,
           1.1, 0.1, 'NaN', true, 'héllo', 'short', 'ab', 'pg_name',
           '2026-01-02 03:04:05.123456+02', '2026-01-02 03:04:05', '2026-01-02', '13:14:15.5',
           'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": [1, 2.5, null]}', '{\"b\": {\"c\": true}}',
           '\\x00ff10', '{1, NULL, 3}', '{\"x\", \"y\"}', '{{1,2},{3,4}}', 'sad', NULL);",
    )
    .await;
    drop(client);
    let mut source = DatabaseSource::connect(
        &input(json!({"query": "SELECT * FROM types_mapping.everything"})),
        None,
    )
    .await
    .unwrap();
    let batches = drain(&mut source).await;
    assert_eq!(batches.len(), 1);
    let row = &batches[0][0];
    let expected = json!({
        "i2": -32768, "i4": 2147483647, "i8": 9223372036854775807i64,
        "n_small": 10.5, "n_big": "123456789012345678901234.5678", "n_int": 42,
        "f4": 1.1, "f8": 0.1, "f8_nan": "NaN", "b": true, "t": "héllo", "v": "short",
        "c": "ab ", "nm": "pg_name",
        "tstz": "2026-01-02T01:04:05.123456Z", "ts": "2026-01-02T03:04:05Z",
        "d": "2026-01-02", "tm": "13:14:15.500",
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "j": {"a": [1, 2.5, null]}, "jb": {"b": {"c": true}}, "by": "AP8Q",
        "ints": [1, null, 3], "texts": ["x", "y"], "grid": [[1, 2], [3, 4]], "m": "sad",
        "nothing": null
    });
    for (column, value) in expected.as_object().unwrap() {
        assert_eq!(&row[column], value, "column {column}");
    }
    // Columns keep the order of the query.
    let columns: Vec<&String> = row.as_object().unwrap().keys().collect();
    assert_eq!(columns.first().map(|c| c.as_str()), Some("i2"));
    assert_eq!(columns.last().map(|c| c.as_str()), Some("nothing"));
}

#[tokio::test]
async fn a_row_is_written_as_compact_json_text_in_column_order() {
    let mut source = DatabaseSource::connect(
        &input(
            json!({"query": "SELECT 7::int2 AS a, E'q\"\\\\\\n' || 'é' AS t, false AS b, \
                                 '2026-01-02 03:04:05+00'::timestamptz AS ts, NULL::int8 AS n, \
                                 '-9223372036854775808'::int8 AS i8, 2.5::float8 AS f"}),
        ),
        None,
    )
    .await
    .unwrap();
    let batch = source.next_batch().await.unwrap().unwrap();
    assert_eq!(
        batch.records[0].json(),
        r#"{"a":7,"t":"q\"\\\né","b":false,"ts":"2026-01-02T03:04:05Z","n":null,"i8":-9223372036854775808,"f":2.5}"#
    );
}

#[tokio::test]
async fn parameters_are_converted_to_the_types_postgres_infers() {
    schema("param_types", "").await;
    let mut source = DatabaseSource::connect(
        &input(json!({
            "query": "SELECT $1::timestamptz AS tstz, $2::timestamp AS ts, $3::date AS d, \
                      $4::int2 AS i2, $5::int4 AS i4, $6::int8 AS i8, $7::numeric AS n, \
                      $8::text AS t, $9::varchar AS v, $10::uuid AS u, $11::bool AS b",
            "parameters": [
                "\"2026-01-01T01:00:00+01:00\"", "\"2026-01-01 00:00:00\"", "\"2026-01-01\"",
                "\"7\"", 8, 9, "\"12345678901234567890.000001\"", 10, "\"v\"",
                "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"", true
            ]
        })),
        None,
    )
    .await
    .unwrap();
    let row = drain(&mut source).await.remove(0).remove(0);
    assert_eq!(
        row,
        json!({
            "tstz": "2026-01-01T00:00:00Z", "ts": "2026-01-01T00:00:00Z", "d": "2026-01-01",
            "i2": 7, "i4": 8, "i8": 9, "n": "12345678901234567890.000001", "t": "10", "v": "v",
            "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "b": true
        })
    );
}

#[tokio::test]
async fn first_run_binds_null_and_the_next_run_delivers_only_newer_rows() {
    let client = schema(
        "first_run",
        "CREATE TABLE events (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL);
         INSERT INTO events SELECT n, '2026-01-01'::timestamptz + n * interval '1 second'
           FROM generate_series(1, 1200) AS n;",
    )
    .await;
    let config = input(json!({
        "query": "SELECT id, updated_at, $1::timestamptz IS NULL AS first_run FROM first_run.events \
                  WHERE updated_at > COALESCE($1::timestamptz, '-infinity'::timestamptz) \
                  ORDER BY updated_at ASC LIMIT 500",
        "statePersistence": {"timestamp": {"field": "updated_at"}}
    }));
    let mut source = DatabaseSource::connect(&config, None).await.unwrap();
    let batches = drain(&mut source).await;
    assert_eq!(
        batches.iter().map(Vec::len).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    assert_eq!(
        batches[0][0]["first_run"],
        json!(true),
        "the first query binds NULL"
    );
    assert_eq!(batches[1][0]["first_run"], json!(false));

    // What the executor would have committed after the last batch.
    let fields = config.state_persistence.as_ref().unwrap().cursor_fields();
    let mut state = State::default();
    state.advance(
        &fields
            .greatest_position(batches.last().unwrap())
            .unwrap()
            .unwrap(),
    );
    client
        .batch_execute(
            "INSERT INTO first_run.events SELECT n, '2026-01-01'::timestamptz + n * interval '1 second'
               FROM generate_series(1201, 1203) AS n;",
        )
        .await
        .unwrap();
    let mut next_run = DatabaseSource::connect(&config, Some(&state))
        .await
        .unwrap();
    let ids: Vec<Value> = drain(&mut next_run)
        .await
        .concat()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, [json!(1201), json!(1202), json!(1203)]);
}

#[tokio::test]
async fn keyset_delivers_each_of_1000_rows_sharing_a_timestamp_exactly_once() {
    schema(
        "keyset",
        "CREATE TABLE events (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL, name text);
         INSERT INTO events SELECT n, '2026-03-01T12:00:00Z', 'row ' || n FROM generate_series(1, 1000) AS n;",
    )
    .await;
    let config = keyset_input("keyset", 100);
    let mut source = DatabaseSource::connect(&config, None).await.unwrap();
    // Three batches in one run, then the process "restarts" from the committed cursor.
    let mut delivered = Vec::new();
    let fields = config.state_persistence.as_ref().unwrap().cursor_fields();
    let mut state = State::default();
    for _ in 0..3 {
        let batch = source.next_batch().await.unwrap().unwrap();
        state.advance(
            &fields
                .greatest_position_in_json(batch.records.iter().map(Record::json))
                .unwrap()
                .unwrap(),
        );
        delivered.extend(values(batch.records));
    }
    drop(source);
    let mut restarted = DatabaseSource::connect(&config, Some(&state))
        .await
        .unwrap();
    let batches = drain(&mut restarted).await;
    assert_eq!(batches.len(), 7);
    assert!(batches.iter().all(|b| b.len() == 100));
    delivered.extend(batches.concat());
    let ids: Vec<i64> = delivered
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        (1..=1000).collect::<Vec<i64>>(),
        "every row once, in order"
    );
}

/// Collects what is logged while it is alive.
struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_cursor_that_does_not_advance_ends_the_run_with_a_warning() {
    schema(
        "stuck",
        "CREATE TABLE events (id bigint PRIMARY KEY);
         INSERT INTO events SELECT n FROM generate_series(1, 5) AS n;",
    )
    .await;
    let logs = Arc::new(Mutex::new(Vec::new()));
    let writer = Arc::clone(&logs);
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || LogCapture(Arc::clone(&writer)))
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // The query ignores the cursor: every execution returns the same rows.
    let mut source = DatabaseSource::connect(
        &input(json!({
            "query": "SELECT id FROM stuck.events ORDER BY id",
            "parameters": [],
            "statePersistence": {"id": {"field": "id"}}
        })),
        None,
    )
    .await
    .unwrap();
    let batches = drain(&mut source).await;
    assert_eq!(
        batches.len(),
        1,
        "the repeated rows are not delivered again"
    );
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("WARN"), "{logs}");
    assert!(logs.contains("none lies after the cursor (id 5)"), "{logs}");
}

async fn connect_error(config: DatabaseInput) -> String {
    match DatabaseSource::connect(&config, None).await {
        Ok(_) => panic!("the source connected"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_bad_query_gives_the_database_error() {
    let message = connect_error(input(json!({"query": "SELEC id FROM nowhere"}))).await;
    assert!(
        message.starts_with("input.query does not prepare on postgres://"),
        "{message}"
    );
    assert!(
        message.contains("ERROR 42601: syntax error at or near \"SELEC\""),
        "{message}"
    );
    let message = connect_error(input(json!({"query": "SELECT id FROM no_such_table"}))).await;
    assert!(
        message.contains("42P01: relation \"no_such_table\" does not exist"),
        "{message}"
    );
}

#[tokio::test]
async fn a_refused_connection_names_the_server_without_the_password() {
    // Port 1 on loopback: nothing listens there.
    let config = load(json!({
        "connectionString": "postgres://app:s3cret@127.0.0.1:1/sales",
        "query": "SELECT 1"
    }));
    let message = connect_error(config).await;
    assert!(
        message.starts_with("cannot connect to postgres://app@127.0.0.1:1/sales: "),
        "{message}"
    );
    assert!(message.contains("Connection refused"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
}

#[tokio::test]
async fn a_wrong_password_is_reported_as_such() {
    let mut url = url::Url::parse(&postgres_url()).unwrap();
    url.set_password(Some("not-the-password")).unwrap();
    let config = load(json!({
        "connectionString": url.to_string(),
        "query": "SELECT 1"
    }));
    let message = connect_error(config).await;
    assert!(
        message.starts_with("cannot connect to postgres://"),
        "{message}"
    );
    assert!(
        message.contains("FATAL 28P01: password authentication failed"),
        "{message}"
    );
    assert!(!message.contains("not-the-password"), "{message}");
}

#[tokio::test]
async fn an_unsupported_column_type_names_the_column_and_the_type() {
    let message = connect_error(input(
        json!({"query": "SELECT 1 AS id, interval '1 day' AS span"}),
    ))
    .await;
    assert_eq!(
        message,
        "input.query: column `span` has the type interval, which cannectors cannot read; cast it \
         in the query, e.g. span::text"
    );
}

#[tokio::test]
async fn a_value_that_does_not_fit_its_placeholder_names_both() {
    let mut source = DatabaseSource::connect(
        &input(json!({
            "query": "SELECT 1 WHERE 2 > $1::bigint",
            "parameters": ["\"ten\""]
        })),
        None,
    )
    .await
    .unwrap();
    let message = source.next_batch().await.unwrap_err().to_string();
    assert_eq!(
        message,
        "input.parameters: cannot bind \"ten\" (\"ten\") to $1 as int8: not an integer that fits \
         64 bits"
    );
}

#[tokio::test]
async fn placeholders_and_parameters_must_match() {
    // PostgreSQL nests block comments and loading's reading of the text does not, so only the
    // database sees that `$2` is commented out: the count it reports is the one that binds.
    let message = connect_error(input(json!({
        "query": "SELECT 1 /* a /* nested */ $2 */ WHERE now() > $1",
        "statePersistence": {"timestamp": {"field": "updated_at"}, "id": {"field": "id"}}
    })))
    .await;
    assert_eq!(
        message,
        "input.parameters: the query has 1 placeholder(s) but 2 value(s) are bound (no \
         `parameters`, so the enabled cursors: state.timestamp, state.id); make \
         input.parameters list one value for each of $1..$1"
    );
}

fn ssl_query(url: String) -> DatabaseInput {
    load(json!({
        "connectionString": url,
        "query": "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    }))
}

#[tokio::test]
async fn tls_is_used_and_verified_when_the_url_asks_for_it() {
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        postgres_url(),
        ca_file()
    );
    let mut source = DatabaseSource::connect(&ssl_query(url), None)
        .await
        .unwrap();
    assert_eq!(drain(&mut source).await, [vec![json!({"ssl": true})]]);

    let mut plain = DatabaseSource::connect(&ssl_query(postgres_url()), None)
        .await
        .unwrap();
    assert_eq!(
        drain(&mut plain).await,
        [vec![json!({"ssl": false})]],
        "no sslmode, no TLS"
    );
}

#[tokio::test]
async fn a_server_certificate_that_cannot_be_verified_is_refused() {
    // The test CA is not among the Mozilla roots.
    let url = format!("{}?sslmode=require", postgres_url());
    let message = connect_error(ssl_query(url)).await;
    assert!(
        message.starts_with("cannot connect to postgres://"),
        "{message}"
    );
    assert!(
        message.contains("invalid peer certificate: UnknownIssuer"),
        "{message}"
    );
    assert!(
        message.contains("this is a certificate problem, not a connection one"),
        "{message}"
    );
    assert!(
        message.ends_with("add sslrootcert=/path/to/ca.pem to the connection string"),
        "{message}"
    );

    let url = format!(
        "{}?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        postgres_url()
    );
    let message = connect_error(ssl_query(url)).await;
    assert!(
        message.contains("cannot read the sslrootcert file /nonexistent/ca.pem"),
        "{message}"
    );
}

#[tokio::test]
async fn a_domain_is_read_and_bound_as_its_base_type() {
    schema(
        "domains",
        "CREATE DOMAIN event_id AS bigint CHECK (VALUE > 0);
         CREATE TABLE events (id event_id PRIMARY KEY, tags text[]);
         INSERT INTO events VALUES (1, '{a}'), (2, '{b,c}'), (3, NULL);",
    )
    .await;
    let mut source = DatabaseSource::connect(
        &input(json!({
            "query": "SELECT id, tags FROM domains.events \
                      WHERE id > COALESCE($1::domains.event_id, 0) ORDER BY id LIMIT 2",
            "statePersistence": {"id": {"field": "id"}}
        })),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        drain(&mut source).await,
        [
            vec![
                json!({"id": 1, "tags": ["a"]}),
                json!({"id": 2, "tags": ["b", "c"]})
            ],
            vec![json!({"id": 3, "tags": null})]
        ]
    );
}

#[tokio::test]
async fn a_placeholder_of_a_type_that_cannot_be_bound_says_to_cast_it() {
    let message = connect_error(input(json!({
        "query": "SELECT 1 WHERE now() - $1::interval < now()",
        "parameters": ["\"1 day\""]
    })))
    .await;
    assert_eq!(
        message,
        "input.query: $1 has the type interval, which cannectors cannot bind; cast the \
         placeholder in the query to a supported type, e.g. $1::text"
    );
}

#[tokio::test]
async fn an_unsorted_result_moves_the_cursor_to_its_greatest_row() {
    // Without ORDER BY the rows come in the order they were inserted: the greatest position
    // (timestamp, then id) is in the middle of the result.
    schema(
        "unsorted",
        "CREATE TABLE events (id int PRIMARY KEY, updated_at timestamp NOT NULL);
         INSERT INTO events VALUES
           (3, '2026-01-01 00:00:02'), (1, '2026-01-01 00:00:01'), (7, '2026-01-01 00:00:03'),
           (5, '2026-01-01 00:00:03'), (2, '2026-01-01 00:00:01');",
    )
    .await;
    let mut source = DatabaseSource::connect(
        &input(json!({
            "query": "SELECT id, updated_at FROM unsorted.events \
                      WHERE (updated_at, id) > (COALESCE($1::timestamp, '-infinity'), COALESCE($2::int, 0))",
            "statePersistence": {"timestamp": {"field": "updated_at"}, "id": {"field": "id"}}
        })),
        None,
    )
    .await
    .unwrap();
    let batches = drain(&mut source).await;
    assert_eq!(
        batches.len(),
        1,
        "the second query starts after (00:00:03, 7)"
    );
    assert_eq!(batches[0].len(), 5);
}

#[tokio::test]
async fn a_null_or_infinite_cursor_value_is_named_with_its_row() {
    schema(
        "odd_cursors",
        "CREATE TABLE events (id bigint PRIMARY KEY, updated_at timestamptz);
         INSERT INTO events VALUES (1, '2026-01-01T00:00:00Z'), (2, NULL), (3, 'infinity');",
    )
    .await;
    let read = |filter: &str| {
        input(json!({
            "query": format!(
                "SELECT id, updated_at FROM odd_cursors.events WHERE {filter} \
                 AND ($1::timestamptz IS NULL OR updated_at > $1) ORDER BY id"
            ),
            "statePersistence": {"timestamp": {"field": "updated_at"}}
        }))
    };
    let mut source = DatabaseSource::connect(&read("id < 3"), None)
        .await
        .unwrap();
    let message = source.next_batch().await.unwrap_err().to_string();
    assert_eq!(
        message,
        "input: record 1 of the batch (counting from 0) holds null in `updated_at`: every \
         record needs a value in the timestamp cursor field"
    );
    // The rows were read; the source still stays failed rather than complete.
    assert!(
        source
            .next_batch()
            .await
            .unwrap_err()
            .to_string()
            .starts_with("input: the source failed earlier in this run")
    );
    let mut source = DatabaseSource::connect(&read("id <> 2"), None)
        .await
        .unwrap();
    let message = source.next_batch().await.unwrap_err().to_string();
    assert!(
        message.starts_with(
            "input: record 1 of the batch (counting from 0), field `updated_at`: \"infinity\" \
             is not a timestamp"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn columns_sharing_a_name_make_one_field_holding_the_last_value() {
    let mut source = DatabaseSource::connect(
        &input(json!({"query": "SELECT 1 AS a, 'two' AS b, 3 AS a"})),
        None,
    )
    .await
    .unwrap();
    let batch = source.next_batch().await.unwrap().unwrap();
    assert_eq!(
        serde_json::to_string(&values(batch.records)).unwrap(),
        r#"[{"a":3,"b":"two"}]"#
    );
}

#[tokio::test]
async fn a_query_failing_ahead_fails_the_next_batch_after_the_previous_one_was_delivered() {
    schema(
        "fails_ahead",
        "CREATE TABLE events (id bigint PRIMARY KEY);
         INSERT INTO events SELECT n FROM generate_series(1, 3) AS n;",
    )
    .await;
    // The query for the rows after id 2 divides by zero.
    let mut source = DatabaseSource::connect(
        &input(json!({
            "query": "SELECT id, 10 / (3 - id) AS share FROM fails_ahead.events \
                      WHERE id > COALESCE($1::bigint, 0) ORDER BY id LIMIT 2",
            "statePersistence": {"id": {"field": "id"}}
        })),
        None,
    )
    .await
    .unwrap();
    let first = source.next_batch().await.unwrap().unwrap();
    assert_eq!(
        values(first.records),
        [json!({"id": 1, "share": 5}), json!({"id": 2, "share": 10})]
    );
    let message = source.next_batch().await.unwrap_err().to_string();
    assert!(
        message.starts_with("input.query failed on postgres://"),
        "{message}"
    );
    assert!(
        message.ends_with("ERROR 22012: division by zero"),
        "{message}"
    );
    // A failed source stays failed: asking again never reads as a complete run.
    let again = source.next_batch().await.unwrap_err().to_string();
    assert_eq!(
        again,
        format!(
            "input: the source failed earlier in this run and cannot go on; start a new run \
             ({message})"
        )
    );
}

#[tokio::test]
async fn a_value_without_a_json_form_names_its_column_and_row() {
    // PostgreSQL timestamps reach the year 294276; RFC 3339 text stops at 262142.
    let mut source = DatabaseSource::connect(
        &input(json!({
            "query": "SELECT n, CASE WHEN n = 2 THEN '294276-01-01'::timestamp \
                      ELSE '2026-01-01'::timestamp END AS at FROM generate_series(1, 2) AS n"
        })),
        None,
    )
    .await
    .unwrap();
    let message = source.next_batch().await.unwrap_err().to_string();
    assert_eq!(
        message,
        "input.query: cannot read column `at` (timestamp) of row 1: the timestamp is out of range"
    );
}

#[tokio::test]
async fn a_query_slower_than_statement_timeout_ms_ends_the_run_with_a_clear_message() {
    let mut source = DatabaseSource::connect(
        &input(json!({
            "query": "SELECT 1 AS id FROM pg_sleep(30)",
            "statementTimeoutMs": 300
        })),
        None,
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let message = tokio::time::timeout(std::time::Duration::from_secs(20), source.next_batch())
        .await
        .expect("the statement timeout ends the wait")
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{message}"
    );
    assert!(
        message.starts_with("input.query did not finish on postgres://cannectors@127.0.0.1:"),
        "{message}"
    );
    assert!(
        message.contains(
            "within input.statementTimeoutMs (300 ms), so it was cancelled; if the database is \
             up and the statement is only slow, raise input.statementTimeoutMs"
        ),
        "{message}"
    );
}
