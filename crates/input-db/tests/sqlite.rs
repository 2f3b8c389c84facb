//! The database source against real SQLite files in temporary directories.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use cannectors_config::{DatabaseInput, InputConfig, parse_str};
use cannectors_connector::{Record, Source};
use cannectors_input_db::DatabaseSource;
use cannectors_state::State;
use serde_json::{Value, json};

/// The records of a batch as values, to compare with `json!` literals.
fn values(records: Vec<Record>) -> Vec<Value> {
    records.iter().map(|r| r.to_value().unwrap()).collect()
}

fn seed(path: &Path, sql: &str) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

/// A pipeline file (as JSON) whose input is `block`, a database block without its `type`.
fn pipeline(block: Value) -> String {
    let mut block = block;
    block["type"] = json!("database");
    json!({"name": "rows", "input": block, "output": {"type": "stdout"}}).to_string()
}

/// The settings of `block`, loaded as a pipeline is: the only way to get them.
fn load(block: Value) -> DatabaseInput {
    let loaded = parse_str(&pipeline(block), "rows.json", &|_| None)
        .unwrap_or_else(|error| panic!("{error}"));
    match loaded.pipeline.input {
        InputConfig::Database(input) => input,
        other => panic!("not a database input: {other:?}"),
    }
}

/// The problems loading `block` finds, each as `key.path: message`.
fn problems_of(block: Value) -> Vec<String> {
    let error = parse_str(&pipeline(block), "rows.json", &|_| None).unwrap_err();
    error
        .problems()
        .iter()
        .map(|p| format!("{}: {}", p.key_path, p.message))
        .collect()
}

fn input(path: &Path, mut value: Value) -> DatabaseInput {
    value["connectionString"] = json!(format!("sqlite://{}", path.display()));
    load(value)
}

async fn drain(source: &mut DatabaseSource) -> Vec<Vec<Value>> {
    let mut batches = Vec::new();
    for _ in 0..1000 {
        match source.next_batch().await.unwrap() {
            Some(batch) => batches.push(values(batch.records)),
            None => return batches,
        }
    }
    panic!("the source did not end after 1000 batches");
}

#[tokio::test]
async fn keyset_over_an_sqlite_file_delivers_every_row_once_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    seed(
        &db,
        "CREATE TABLE events (id INTEGER PRIMARY KEY, updated_at TEXT NOT NULL, name TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 250)
         INSERT INTO events SELECT i, '2026-03-01T12:00:00Z', 'row ' || i FROM n;",
    );
    let config = input(
        &db,
        json!({
            "query": "SELECT id, updated_at, name FROM events \
                      WHERE (updated_at, id) > (COALESCE($1, ''), COALESCE($2, 0)) \
                      ORDER BY updated_at, id LIMIT 100",
            "statePersistence": {"timestamp": {"field": "updated_at"}, "id": {"field": "id"}}
        }),
    );
    let mut source = DatabaseSource::connect(&config, None).await.unwrap();
    let first = values(source.next_batch().await.unwrap().unwrap().records);
    assert_eq!(
        first[0],
        json!({"id": 1, "updated_at": "2026-03-01T12:00:00Z", "name": "row 1"})
    );
    let fields = config.state_persistence.as_ref().unwrap().cursor_fields();
    let mut state = State::default();
    state.advance(&fields.greatest_position(&first).unwrap().unwrap());

    let mut restarted = DatabaseSource::connect(&config, Some(&state))
        .await
        .unwrap();
    let rest = drain(&mut restarted).await;
    assert_eq!(rest.iter().map(Vec::len).collect::<Vec<_>>(), [100, 50]);
    let ids: Vec<i64> = first
        .iter()
        .chain(rest.concat().iter())
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, (1..=250).collect::<Vec<i64>>());
}

#[tokio::test]
async fn sqlite_values_keep_their_storage_class() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("types.db");
    seed(
        &db,
        "CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n TEXT);
         INSERT INTO t VALUES (9007199254740993, 2.5, 'héllo', x'00ff10', NULL);",
    );
    let mut source =
        DatabaseSource::connect(&input(&db, json!({"query": "SELECT * FROM t"})), None)
            .await
            .unwrap();
    let row = drain(&mut source).await.remove(0).remove(0);
    assert_eq!(
        row,
        json!({"i": 9007199254740993i64, "r": 2.5, "s": "héllo", "b": "AP8Q", "n": null})
    );
}

#[tokio::test]
async fn a_missing_database_file_is_an_error_not_a_new_empty_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("missing.db");
    let err = DatabaseSource::connect(&input(&db, json!({"query": "SELECT 1"})), None)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with(&format!("cannot connect to sqlite://{}: ", db.display())),
        "{err}"
    );
    assert!(err.contains("check that the file exists"), "{err}");
    assert!(!db.exists());
}

#[tokio::test]
async fn named_sqlite_parameters_are_refused_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("named.db");
    seed(&db, "CREATE TABLE t (id INTEGER);");
    // Loading counts the `$n` of the text (none here, and nothing is bound); the named
    // parameter is found by SQLite when the query is prepared.
    let err = DatabaseSource::connect(
        &input(&db, json!({"query": "SELECT id FROM t WHERE id > :last"})),
        None,
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("the named parameter `:last` is not supported; number the placeholders $1"),
        "{err}"
    );
}

#[test]
fn connection_settings_that_cannot_work_are_refused_when_the_pipeline_is_loaded() {
    assert_eq!(
        problems_of(json!({
            "connectionString": "sqlite://x.db", "driver": "postgres", "query": "SELECT 1"
        })),
        [
            "input.driver: driver is postgres but connectionString is a sqlite URL; remove \
          `driver` or fix the URL"
        ]
    );
    assert_eq!(
        problems_of(json!({"query": "SELECT 1"})),
        [
            "input.connectionStringRef: missing key: set `connectionStringRef` (usually \
          ${DATABASE_URL}) or `connectionString`"
        ]
    );
    assert_eq!(
        problems_of(
            json!({"connectionString": "sqlite::memory:", "connectionStringRef": "sqlite::memory:", "query": "SELECT 1"})
        ),
        ["input.connectionString: write only one of `connectionString` and `connectionStringRef`"]
    );
    assert_eq!(
        problems_of(json!({"connectionStringRef": "", "query": "SELECT 1"})),
        [
            "input.connectionStringRef: `connectionStringRef` is empty (an empty variable?); write \
          a postgres:// or sqlite:// URL"
        ]
    );
    let unknown = problems_of(json!({"connectionString": "mysql://db/x", "query": "SELECT 1"}));
    assert!(
        unknown[0].starts_with(
            "input.connectionString: cannot tell the database from `connectionString`: start \
             it with postgres://"
        ),
        "{unknown:?}"
    );
    assert_eq!(
        problems_of(json!({"connectionString": "sqlite::memory:"})),
        [
            "input.query: a database input needs `query` (the SQL) or `queryFile` (a file holding \
          it)"
        ]
    );
    let missing = problems_of(
        json!({"connectionString": "sqlite::memory:", "queryFile": "/nonexistent/q.sql"}),
    );
    assert!(
        missing[0].starts_with(
            "input.queryFile: cannot read the query file /nonexistent/q.sql (No such file"
        ),
        "{missing:?}"
    );
}

#[tokio::test]
async fn a_query_file_is_read_by_the_loader_next_to_the_pipeline_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("q.sql"), "SELECT 7 AS seven").unwrap();
    let file = dir.path().join("rows.json");
    std::fs::write(
        &file,
        pipeline(json!({"connectionString": "sqlite::memory:", "queryFile": "q.sql"})),
    )
    .unwrap();
    let loaded = cannectors_config::load_with_env(&file, &|_| None).unwrap();
    let InputConfig::Database(config) = &loaded.pipeline.input else {
        panic!("a database input");
    };
    assert_eq!(config.query, "SELECT 7 AS seven");
    let mut source = DatabaseSource::connect(config, None).await.unwrap();
    assert_eq!(drain(&mut source).await, [vec![json!({"seven": 7})]]);
}

#[tokio::test]
async fn cursor_settings_and_rows_without_cursor_fields_are_errors() {
    assert_eq!(
        problems_of(json!({
            "connectionString": "sqlite::memory:", "query": "SELECT 1 AS id WHERE $1 IS NULL",
            "parameters": ["record.id"]
        })),
        [
            "input.parameters[0]: `record.id`: an input query runs before there is a record; bind \
          state.timestamp, state.id, state.offset or a literal"
        ]
    );
    let problems = problems_of(json!({
        "connectionString": "sqlite::memory:", "query": "SELECT 1 AS id WHERE $1 IS NULL",
        "statePersistence": {"id": {"enabled": true}}
    }));
    assert!(
        problems[0]
            .starts_with("input.statePersistence.id.field: an enabled id cursor needs `field`"),
        "{problems:?}"
    );

    let config = load(json!({
        "connectionString": "sqlite::memory:",
        "query": "SELECT 1 AS id WHERE $1 IS NULL",
        "statePersistence": {"id": {"field": "event_id"}}
    }));
    let mut source = DatabaseSource::connect(&config, None).await.unwrap();
    let message = next_error(&mut source).await;
    assert!(
        message.starts_with("input: record 0 of the batch (counting from 0) has no `event_id`"),
        "{message}"
    );
    // The rows were read; the source stays failed all the same, never complete.
    assert_eq!(
        next_error(&mut source).await,
        format!(
            "input: the source failed earlier in this run and cannot go on; start a new run \
             ({message})"
        )
    );
}

#[tokio::test]
async fn a_query_that_fails_while_running_names_the_database_and_keeps_the_source_failed() {
    let config = load(json!({
        "connectionString": "sqlite::memory:",
        "query": "SELECT abs(-9223372036854775807 - 1) AS overflow"
    }));
    let mut source = DatabaseSource::connect(&config, None).await.unwrap();
    let first = next_error(&mut source).await;
    assert_eq!(
        first,
        "input.query failed on sqlite://:memory:: integer overflow"
    );
    // Asking again never reads as a complete run.
    for _ in 0..2 {
        assert_eq!(
            next_error(&mut source).await,
            format!(
                "input: the source failed earlier in this run and cannot go on; start a new run \
                 ({first})"
            )
        );
    }
}

#[tokio::test]
async fn the_offset_cursor_counts_the_rows_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("paged.db");
    seed(
        &db,
        "CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1), (2), (3), (4), (5);",
    );
    let config = input(
        &db,
        json!({
            "query": "SELECT n FROM t ORDER BY n LIMIT 2 OFFSET COALESCE($1, 0)",
            "statePersistence": {"offset": {"enabled": true}}
        }),
    );
    let mut source = DatabaseSource::connect(&config, None).await.unwrap();
    let mut offsets = Vec::new();
    while let Some(batch) = source.next_batch().await.unwrap() {
        match batch.checkpoint {
            cannectors_connector::Checkpoint::Progress { offset, .. } => offsets.push(offset),
            other => panic!("unexpected checkpoint {other:?}"),
        }
        assert!(offsets.len() <= 3, "the source did not stop");
    }
    assert_eq!(offsets, [Some(2), Some(4), Some(5)]);
    assert_eq!(source.final_offset(), Some(5));

    // The next run starts from the committed offset.
    let mut state = State::default();
    state.offset = Some(4);
    let mut next = DatabaseSource::connect(&config, Some(&state))
        .await
        .unwrap();
    assert_eq!(drain(&mut next).await, [vec![json!({"n": 5})]]);
}

/// The next call after an error: it must fail again, never read as a complete run.
async fn next_error(source: &mut DatabaseSource) -> String {
    match source.next_batch().await {
        Ok(Some(_)) => panic!("a batch after the source failed"),
        Ok(None) => panic!("the source that failed read as complete"),
        Err(error) => error.to_string(),
    }
}

#[tokio::test]
async fn a_query_failing_ahead_keeps_the_source_failed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ahead.db");
    seed(
        &db,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, doc TEXT);
         INSERT INTO t VALUES (1, '{}'), (2, '[]'), (3, 'not json');",
    );
    // The query for the rows after id 2, run while the first batch is delivered, fails.
    let config = input(
        &db,
        json!({
            "query": "SELECT id, json(doc) AS doc FROM t WHERE id > COALESCE($1, 0) \
                      ORDER BY id LIMIT 2",
            "statePersistence": {"id": {"field": "id"}}
        }),
    );
    let mut source = DatabaseSource::connect(&config, None).await.unwrap();
    let first = source.next_batch().await.unwrap().unwrap();
    assert_eq!(
        values(first.records),
        [json!({"id": 1, "doc": "{}"}), json!({"id": 2, "doc": "[]"})]
    );
    let failed = next_error(&mut source).await;
    assert!(
        failed.starts_with("input.query failed on sqlite://"),
        "{failed}"
    );
    assert!(failed.ends_with("malformed JSON"), "{failed}");
    assert!(
        next_error(&mut source)
            .await
            .starts_with("input: the source failed earlier in this run"),
    );
}
