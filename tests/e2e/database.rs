//! Database pipelines through the binary: the SQLite quickstart, and PostgreSQL pipelines
//! against the throwaway server that `cargo xtask pg` / `cargo xtask ci` start (its URL in
//! `CANNECTORS_TEST_POSTGRES_URL`). Each PostgreSQL test works in its own schema.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use cannectors_test_support::postgres::{
    self, fresh_schema_blocking as fresh_schema, run_sql as sql, url as postgres_url,
};

use crate::support::silent::Silent;
use crate::support::{Outcome, Workspace, output_within};

fn run(ws: &Workspace, pipeline: &str) -> Outcome {
    let mut command = ws.command(&["run", pipeline]);
    command.env("TEST_DATABASE_URL", postgres_url());
    let output = command.output().expect("start cannectors");
    Outcome {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn lines(ws: &Workspace, name: &str) -> Vec<Value> {
    let path = ws.path().join(name);
    if !path.exists() {
        return Vec::new();
    }
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn ids(records: &[Value]) -> Vec<i64> {
    records.iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

/// The quickstart as `cargo xtask quickstart` lays it out: the tracked files, and the working
/// copy of events.db under the ignored out/ directory.
fn quickstart_in(ws: &Workspace) -> std::path::PathBuf {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart");
    let target = ws.path().join("examples/quickstart");
    std::fs::create_dir_all(target.join("out")).unwrap();
    for name in ["pipeline.yaml", "add-event.yaml", "events.db"] {
        std::fs::copy(examples.join(name), target.join(name)).unwrap();
    }
    std::fs::copy(examples.join("events.db"), target.join("out/events.db")).unwrap();
    target
}

#[test]
fn quickstart_runs_without_services_and_then_delivers_only_new_rows() {
    let ws = Workspace::new();
    let quickstart = quickstart_in(&ws);
    let tracked = std::fs::read(quickstart.join("events.db")).unwrap();

    let first = ws.run(&["run", "examples/quickstart/pipeline.yaml"]);
    assert_eq!(first.code, Some(0), "{first:?}");
    let delivered = lines(&ws, "examples/quickstart/out/events.jsonl");
    assert_eq!(ids(&delivered), (1..=12).collect::<Vec<i64>>());
    assert_eq!(delivered[0]["updated_at"], "2026-01-05T09:00:00Z");

    let second = ws.run(&["run", "examples/quickstart/pipeline.yaml"]);
    assert_eq!(second.code, Some(0), "{second:?}");
    assert!(second.stderr.contains("nothing new"), "{second:?}");
    assert_eq!(lines(&ws, "examples/quickstart/out/events.jsonl").len(), 12);

    let add = ws.run(&["run", "examples/quickstart/add-event.yaml"]);
    assert_eq!(add.code, Some(0), "{add:?}");
    let third = ws.run(&["run", "examples/quickstart/pipeline.yaml"]);
    assert_eq!(third.code, Some(0), "{third:?}");
    let delivered = lines(&ws, "examples/quickstart/out/events.jsonl");
    assert_eq!(ids(&delivered[12..]), [13], "only the added row");
    assert_eq!(delivered[12]["kind"], "note");

    assert_eq!(
        std::fs::read(quickstart.join("events.db")).unwrap(),
        tracked,
        "the tracked database is never written"
    );
}

#[test]
fn the_tracked_quickstart_database_holds_exactly_the_seed() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart");
    let seeded = rusqlite::Connection::open_in_memory().unwrap();
    seeded
        .execute_batch(&std::fs::read_to_string(examples.join("seed.sql")).unwrap())
        .unwrap();
    let tracked = rusqlite::Connection::open_with_flags(
        examples.join("events.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let rows = |db: &rusqlite::Connection| -> Vec<(i64, String, String, String)> {
        let mut statement = db
            .prepare("SELECT id, updated_at, kind, payload FROM events ORDER BY id")
            .unwrap();
        statement
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(rows(&tracked), rows(&seeded));
}

const DOCUMENTED: &str = r#"
name: documented
input:
  type: database
  connectionStringRef: ${TEST_DATABASE_URL}
  query: |
    SELECT id, updated_at FROM e2e_documented.events
    WHERE updated_at > COALESCE($1::timestamptz, '-infinity'::timestamptz)
    ORDER BY updated_at ASC LIMIT 500
  statePersistence:
    timestamp: {field: updated_at}
    storagePath: ./state
output: {type: file, path: ./out.jsonl}
"#;

#[test]
fn documented_timestamp_pipeline_delivers_everything_then_only_newer_rows() {
    fresh_schema(
        "e2e_documented",
        "CREATE TABLE events (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL);
         INSERT INTO events SELECT n, '2026-01-01'::timestamptz + n * interval '1 second'
           FROM generate_series(1, 1200) AS n;",
    );
    let ws = Workspace::new();
    ws.write("documented.yaml", DOCUMENTED);
    let first = run(&ws, "documented.yaml");
    assert_eq!(first.code, Some(0), "{first:?}");
    assert!(first.stderr.contains("batches=3"), "{first:?}");
    assert_eq!(
        ids(&lines(&ws, "out.jsonl")),
        (1..=1200).collect::<Vec<i64>>()
    );

    sql("INSERT INTO e2e_documented.events SELECT n, '2026-01-01'::timestamptz + n * interval '1 second'
           FROM generate_series(1201, 1205) AS n;");
    let second = run(&ws, "documented.yaml");
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(
        ids(&lines(&ws, "out.jsonl")[1200..]),
        [1201, 1202, 1203, 1204, 1205]
    );
    let state: Value = serde_json::from_str(&ws.read("state/documented.json")).unwrap();
    assert_eq!(state["timestamp"], "2026-01-01T00:20:05Z");
}

fn keyset_pipeline(schema: &str, limit: u32) -> String {
    format!(
        r#"
name: keyset
input:
  type: database
  connectionStringRef: ${{TEST_DATABASE_URL}}
  query: |
    SELECT id, updated_at, name FROM {schema}.events
    WHERE (updated_at, id) > (COALESCE($1::timestamptz, '-infinity'), COALESCE($2::bigint, 0))
    ORDER BY updated_at, id LIMIT {limit}
  statePersistence:
    timestamp: {{field: updated_at}}
    id: {{field: id}}
    storagePath: ./state
output: {{type: file, path: ./out.jsonl}}
"#
    )
}

#[test]
fn keyset_delivers_1000_rows_sharing_a_timestamp_once_across_batches_and_runs() {
    fresh_schema(
        "e2e_keyset",
        "CREATE TABLE events (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL, name text);
         INSERT INTO events SELECT n, '2026-03-01T12:00:00Z', 'row ' || n FROM generate_series(1, 1000) AS n;",
    );
    let ws = Workspace::new();
    ws.write("keyset.yaml", &keyset_pipeline("e2e_keyset", 100));
    let first = run(&ws, "keyset.yaml");
    assert_eq!(first.code, Some(0), "{first:?}");
    assert!(first.stderr.contains("batches=10"), "{first:?}");
    sql(
        "INSERT INTO e2e_keyset.events SELECT n, '2026-03-01T12:00:00Z', 'row ' || n FROM generate_series(1001, 1050) AS n;",
    );
    let second = run(&ws, "keyset.yaml");
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(
        ids(&lines(&ws, "out.jsonl")),
        (1..=1050).collect::<Vec<i64>>()
    );
}

#[test]
fn sigkill_mid_run_then_rerun_loses_nothing_and_repeats_at_most_one_batch() {
    // Every query result a delivery of its own: at most one result of 200 rows re-sent.
    kill_mid_run_then_rerun("e2e_kill", ", batchSize: 1", 200);
}

#[test]
fn sigkill_mid_run_with_the_default_deliveries_repeats_at_most_one_delivery() {
    // Without batchSize, query results are gathered up to 10,000 rows a delivery.
    kill_mid_run_then_rerun("e2e_kill_default", "", 10_000);
}

/// Kills a keyset run of 100,000 rows in results of 200 once a few deliveries are committed,
/// runs it again: every row is delivered, and at most `bound` rows twice (one delivery).
fn kill_mid_run_then_rerun(schema: &str, output_settings: &str, bound: usize) {
    fresh_schema(
        schema,
        "CREATE TABLE events (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL, name text);
         INSERT INTO events SELECT n, '2026-01-01'::timestamptz + (n / 7) * interval '1 second', repeat('x', 50)
           FROM generate_series(1, 100000) AS n;",
    );
    let ws = Workspace::new();
    let pipeline = keyset_pipeline(schema, 200).replace(
        "output: {type: file, path: ./out.jsonl}",
        &format!("output: {{type: file, path: ./out.jsonl{output_settings}}}"),
    );
    ws.write("keyset.yaml", &pipeline);
    let mut child = ws
        .command(&["run", "keyset.yaml"])
        .env("TEST_DATABASE_URL", postgres_url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once a few batches are committed, well before the 500 batches are through.
    let started = Instant::now();
    while lines_in(&ws, "out.jsonl") < 2000 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed_at = lines_in(&ws, "out.jsonl");
    assert!(
        killed_at < 100_000,
        "the run ended before it could be killed"
    );

    let rerun = run(&ws, "keyset.yaml");
    assert_eq!(rerun.code, Some(0), "{rerun:?}");
    let delivered = ids(&lines(&ws, "out.jsonl"));
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for id in &delivered {
        *seen.entry(*id).or_default() += 1;
    }
    assert_eq!(seen.len(), 100_000, "every row delivered");
    let repeated = seen.values().filter(|n| **n > 1).count();
    assert!(
        repeated <= bound,
        "{repeated} rows delivered twice: more than one delivery of {bound}"
    );
}

fn lines_in(ws: &Workspace, name: &str) -> usize {
    std::fs::read(ws.path().join(name))
        .map(|bytes| bytecount(&bytes))
        .unwrap_or(0)
}

fn bytecount(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| **b == b'\n').count()
}

const SEEDED_STATE: &str = "{\"timestamp\": \"2026-01-01T00:00:00Z\", \"id\": 5}\n";

fn fails_with_state_unchanged(pipeline: &str, expected: &[&str]) {
    let ws = Workspace::new();
    ws.write("p.yaml", pipeline);
    ws.write("state/p.json", SEEDED_STATE);
    let outcome = run(&ws, "p.yaml");
    assert_eq!(outcome.code, Some(3), "{outcome:?}");
    for text in expected {
        assert!(
            outcome.stderr.contains(text),
            "missing `{text}` in {outcome:?}"
        );
    }
    assert_eq!(
        ws.read("state/p.json"),
        SEEDED_STATE,
        "the state file is untouched"
    );
}

fn pipeline_with(url: &str, query: &str) -> String {
    format!(
        r#"
name: p
input:
  type: database
  connectionString: "{url}"
  query: "{query}"
  statePersistence:
    timestamp: {{field: updated_at}}
    id: {{field: id}}
    storagePath: ./state
output: {{type: file, path: ./out.jsonl}}
"#
    )
}

#[test]
fn bad_query_refused_connection_and_wrong_password_exit_3_with_state_unchanged() {
    let url = postgres_url();
    fails_with_state_unchanged(
        &pipeline_with(
            &url,
            "SELEC id FROM nowhere WHERE $1::timestamptz < $2::bigint",
        ),
        &[
            "input.query does not prepare on postgres://",
            "42601: syntax error",
        ],
    );
    fails_with_state_unchanged(
        &pipeline_with(
            "postgres://app:s3cret@127.0.0.1:1/db",
            "SELECT 1 AS id WHERE $1::timestamptz IS NULL AND $2::bigint IS NULL",
        ),
        &[
            "cannot connect to postgres://app@127.0.0.1:1/db",
            "Connection refused",
        ],
    );
    let mut wrong = url::Url::parse(&url).unwrap();
    wrong.set_password(Some("wrong-password")).unwrap();
    fails_with_state_unchanged(
        &pipeline_with(
            wrong.as_str(),
            "SELECT 1 AS id WHERE $1::timestamptz IS NULL AND $2::bigint IS NULL",
        ),
        &["28P01: password authentication failed"],
    );
}

#[test]
fn database_output_writes_rows_and_a_bad_row_leaves_the_state_unchanged() {
    fresh_schema(
        "e2e_sink",
        "CREATE TABLE dest (id bigint PRIMARY KEY, email text NOT NULL);",
    );
    let ws = Workspace::new();
    let source = ws.path().join("source.db");
    rusqlite::Connection::open(&source)
        .unwrap()
        .execute_batch(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT);
             INSERT INTO people VALUES (1, 'a@example.com'), (2, 'b@example.com');",
        )
        .unwrap();
    ws.write(
        "sink.yaml",
        r#"
name: sink
input:
  type: database
  connectionString: sqlite://source.db
  query: SELECT id, email FROM people WHERE id > COALESCE($1, 0) ORDER BY id LIMIT 10
  statePersistence:
    id: {field: id}
    storagePath: ./state
output:
  type: database
  connectionStringRef: ${TEST_DATABASE_URL}
  query: INSERT INTO e2e_sink.dest (id, email) VALUES ($1, $2)
  parameters: [record.id, record.email]
"#,
    );
    let first = run(&ws, "sink.yaml");
    assert_eq!(first.code, Some(0), "{first:?}");
    let state_after_first = ws.read("state/sink.json");

    rusqlite::Connection::open(&source)
        .unwrap()
        .execute_batch(
            "INSERT INTO people VALUES (3, 'c@example.com'), (4, NULL), (5, 'e@example.com');",
        )
        .unwrap();
    let second = run(&ws, "sink.yaml");
    assert_eq!(second.code, Some(3), "{second:?}");
    assert!(
        second
            .stderr
            .contains("record 1 of the batch could not be written"),
        "{second:?}"
    );
    assert!(second.stderr.contains("23502"), "{second:?}");
    assert_eq!(
        ws.read("state/sink.json"),
        state_after_first,
        "nothing committed"
    );
    // Nothing of the failed batch landed: rows 1 and 2 only.
    let count = {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let row = postgres::connect()
                .await
                .query_one("SELECT count(*) FROM e2e_sink.dest", &[])
                .await
                .unwrap();
            row.get::<_, i64>(0)
        })
    };
    assert_eq!(count, 2);
}

#[test]
fn database_output_on_error_skip_writes_the_good_rows_counts_the_refused_and_moves_on() {
    fresh_schema(
        "e2e_sink_skip",
        "CREATE TABLE dest (id bigint PRIMARY KEY, email text NOT NULL);",
    );
    let ws = Workspace::new();
    let source = ws.path().join("source.db");
    rusqlite::Connection::open(&source)
        .unwrap()
        .execute_batch(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT);
             INSERT INTO people VALUES (1, 'a@example.com'), (2, NULL), (3, 'c@example.com');",
        )
        .unwrap();
    ws.write(
        "sql/insert.sql",
        "INSERT INTO e2e_sink_skip.dest (id, email) VALUES ($1, $2)",
    );
    ws.write(
        "sink.yaml",
        r#"
name: sink
input:
  type: database
  connectionString: sqlite://source.db
  query: SELECT id, email FROM people WHERE id > COALESCE($1, 0) ORDER BY id LIMIT 10
  statePersistence:
    id: {field: id}
    storagePath: ./state
output:
  type: database
  connectionStringRef: ${TEST_DATABASE_URL}
  queryFile: sql/insert.sql
  parameters: [record.id, record.email]
  onError: skip
"#,
    );
    let out = run(&ws, "sink.yaml");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains(
            "left out 1 record(s) of the batch that the database refused (output.onError: \
             skip); 1 left out this run"
        ),
        "{out:?}"
    );
    // `skip` counts; only `log` names each refused record.
    assert!(
        !out.stderr.contains("the database refused record"),
        "{out:?}"
    );
    let state: Value = serde_json::from_str(&ws.read("state/sink.json")).unwrap();
    assert_eq!(state["id"], 3, "the cursor moves past the refused record");
    let ids = {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            postgres::connect()
                .await
                .query("SELECT id FROM e2e_sink_skip.dest ORDER BY id", &[])
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<_, i64>(0))
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(ids, [1, 3]);
    assert!(
        out.stderr.contains(" read=3 written=2 refused=1 "),
        "{out:?}"
    );
}

#[test]
fn the_run_summary_counts_the_rows_a_sqlite_output_refused_under_on_error_log() {
    let ws = Workspace::new();
    let source = ws.path().join("source.db");
    rusqlite::Connection::open(&source)
        .unwrap()
        .execute_batch(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT);
             INSERT INTO people VALUES (1, 'a@example.com'), (2, NULL), (3, 'c@example.com'),
               (4, NULL);",
        )
        .unwrap();
    rusqlite::Connection::open(ws.path().join("dest.db"))
        .unwrap()
        .execute_batch("CREATE TABLE dest (id INTEGER PRIMARY KEY, email TEXT NOT NULL);")
        .unwrap();
    ws.write(
        "sink.yaml",
        r#"
name: sink
input:
  type: database
  connectionString: sqlite://source.db
  query: SELECT id, email FROM people WHERE id > COALESCE($1, 0) ORDER BY id LIMIT 3
  statePersistence:
    id: {field: id}
    storagePath: ./state
output:
  type: database
  connectionString: sqlite://dest.db
  query: INSERT INTO dest (id, email) VALUES ($1, $2)
  parameters: [record.id, record.email]
  onError: log
"#,
    );
    let output = ws.command(&["run", "sink.yaml"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("run complete: pipeline=sink read=4 written=2 refused=2 batches=2 "),
        "{stderr}"
    );
    let state: Value = serde_json::from_str(&ws.read("state/sink.json")).unwrap();
    assert_eq!(state["id"], 4, "the cursor moves past the refused records");
}

/// A PostgreSQL URL with a password, pointing at a server that never answers.
fn silent_url(silent: &Silent, database: &str) -> String {
    format!(
        "postgres://app:s3cret-pw@127.0.0.1:{}/{database}?connect_timeout=1",
        silent.port()
    )
}

#[test]
fn a_database_input_that_never_answers_fails_at_its_connect_timeout_with_exit_3() {
    let silent = Silent::start();
    let ws = Workspace::new();
    ws.write(
        "silent.yaml",
        &format!(
            r#"
name: silent
input:
  type: database
  connectionString: "{}"
  query: SELECT id FROM events WHERE id > COALESCE($1::bigint, 0) ORDER BY id LIMIT 10
  statePersistence:
    id: {{field: id}}
    storagePath: ./state
output: {{type: file, path: ./out.jsonl}}
"#,
            silent_url(&silent, "sales")
        ),
    );
    let seeded = "{\"id\": 7}\n";
    ws.write("state/silent.json", seeded);
    let started = Instant::now();
    let outcome = output_within(
        ws.command(&["run", "silent.yaml", "--once"]),
        Duration::from_secs(30),
    );
    assert_eq!(outcome.code, Some(3), "{outcome:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(
        outcome.stderr.contains(&format!(
            "cannot connect to postgres://app@127.0.0.1:{}/sales: no answer within 1 s \
             (connect_timeout, which bounds the TCP connection, TLS and the login together)",
            silent.port()
        )),
        "{outcome:?}"
    );
    assert!(!outcome.stderr.contains("s3cret-pw"), "{outcome:?}");
    assert_eq!(silent.accepted(), 1);
    assert_eq!(ws.read("state/silent.json"), seeded);
    assert!(!ws.path().join("out.jsonl").exists());
}

#[test]
fn a_database_output_that_never_answers_fails_at_its_connect_timeout_with_exit_3() {
    let silent = Silent::start();
    let ws = Workspace::new();
    rusqlite::Connection::open(ws.path().join("source.db"))
        .unwrap()
        .execute_batch(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT);
             INSERT INTO people VALUES (1, 'a@example.com'), (2, 'b@example.com');",
        )
        .unwrap();
    ws.write(
        "silent.yaml",
        &format!(
            r#"
name: silent
input:
  type: database
  connectionString: sqlite://source.db
  query: SELECT id, email FROM people WHERE id > COALESCE($1, 0) ORDER BY id LIMIT 10
  statePersistence:
    id: {{field: id}}
    storagePath: ./state
output:
  type: database
  connectionString: "{}"
  query: INSERT INTO dest (id, email) VALUES ($1, $2)
  parameters: [record.id, record.email]
"#,
            silent_url(&silent, "dest")
        ),
    );
    let outcome = output_within(
        ws.command(&["run", "silent.yaml", "--once"]),
        Duration::from_secs(30),
    );
    assert_eq!(outcome.code, Some(3), "{outcome:?}");
    assert!(
        outcome.stderr.contains(&format!(
            "output failed on batch 1 (2 records): cannot connect to \
             postgres://app@127.0.0.1:{}/dest: no answer within 1 s",
            silent.port()
        )),
        "{outcome:?}"
    );
    assert!(!outcome.stderr.contains("s3cret-pw"), "{outcome:?}");
    assert!(!ws.path().join("state/silent.json").exists());
}
