//! The PostgreSQL state store through the binary: a run committing there, `state
//! show|set|reset` with the lease, `state migrate` from a state file, and the runs that must
//! stop before delivering anything (store unreachable, pipeline held elsewhere, bad row). Each
//! test works in a schema of its own on the throwaway server of `cargo xtask pg`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use cannectors_test_support::postgres::{self, fresh_schema_blocking as fresh_schema};

use crate::support::{Outcome, Workspace, output_within};

/// Ten source rows.
const SOURCE: &str = "CREATE TABLE events (id bigint PRIMARY KEY, name text NOT NULL); \
                      INSERT INTO events SELECT n, 'event ' || n FROM generate_series(1, 10) n;";

/// A database pipeline reading `events` in `schema` four rows at a time, its state in the
/// store of `${STATE_DATABASE_URL}`, delivering to out.jsonl.
fn pipeline(schema: &str) -> String {
    format!(
        r#"
name: events
input:
  type: database
  connectionString: "{source}"
  query: "SELECT id, name FROM events WHERE id > COALESCE($1::bigint, 0) ORDER BY id LIMIT 4"
  statePersistence:
    id: {{field: id}}
    store: postgres
    connectionStringRef: ${{STATE_DATABASE_URL}}
output: {{type: file, path: ./out.jsonl}}
"#,
        source = postgres::url_in_schema(schema),
    )
}

/// The binary with `STATE_DATABASE_URL` set to `store`, for at most a minute.
fn run(ws: &Workspace, store: &str, args: &[&str]) -> Outcome {
    let mut command = ws.command(args);
    command.env("STATE_DATABASE_URL", store);
    output_within(command, Duration::from_secs(60))
}

fn client(schema: &str) -> (tokio_postgres::Client, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = runtime.block_on(async {
        let (client, connection) =
            tokio_postgres::connect(&postgres::url_in_schema(schema), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(connection);
        client
    });
    (client, runtime)
}

/// The state of pipeline `events` in the store of `schema`, as text.
fn row(schema: &str) -> Option<String> {
    let (client, runtime) = client(schema);
    runtime.block_on(async {
        client
            .query_opt(
                "SELECT state::text FROM cannectors_state WHERE pipeline = 'events'",
                &[],
            )
            .await
            .unwrap()
            .and_then(|row| row.get(0))
    })
}

fn sql(schema: &str, statements: &str) {
    let (client, runtime) = client(schema);
    runtime.block_on(async { client.batch_execute(statements).await.unwrap() });
}

/// How many records the pipeline delivered so far.
fn delivered(ws: &Workspace) -> usize {
    std::fs::read_to_string(ws.path().join("out.jsonl"))
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

#[test]
fn a_run_commits_to_the_store_and_state_show_set_reset_work_there() {
    let schema = "e2e_pg_store_run";
    fresh_schema(schema, SOURCE);
    let store = postgres::url_in_schema(schema);
    let ws = Workspace::new();
    ws.write("events.yaml", &pipeline(schema));

    let first = run(&ws, &store, &["run", "events.yaml", "--once"]);
    assert_eq!(first.code, Some(0), "{first:?}");
    assert_eq!(delivered(&ws), 10);
    let state: serde_json::Value = serde_json::from_str(&row(schema).unwrap()).unwrap();
    assert_eq!(state["id"], 10);
    assert!(
        !ws.path().join(".cannectors-state").exists(),
        "no state file"
    );

    let show = run(&ws, &store, &["state", "show", "events.yaml"]);
    assert_eq!(show.code, Some(0), "{show:?}");
    let mut lines = show.stdout.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("state store: table cannectors_state of postgres://"),
        "{show:?}"
    );
    let lease = lines.next().unwrap();
    assert!(
        lease.starts_with("lease: free: released (last held by ") && lease.ends_with(", epoch 1)"),
        "{show:?}"
    );
    assert!(show.stdout.contains(r#""id": 10"#), "{show:?}");

    let set = run(&ws, &store, &["state", "set", "events.yaml", "--id", "6"]);
    assert_eq!(set.code, Some(0), "{set:?}");
    let again = run(&ws, &store, &["run", "events.yaml", "--once"]);
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(delivered(&ws), 14, "rows 7 to 10 once more");

    let reset = run(&ws, &store, &["state", "reset", "events.yaml"]);
    assert_eq!(reset.code, Some(0), "{reset:?}");
    assert!(
        reset.stdout.starts_with(
            "removed the state of pipeline `events` in table cannectors_state of postgres://"
        ),
        "{reset:?}"
    );
    assert!(!reset.stderr.contains("NOTICE"), "{reset:?}");
    assert_eq!(row(schema), None);
    let show = run(&ws, &store, &["state", "show", "events.yaml"]);
    assert!(
        show.stdout.contains(", epoch 4)"),
        "each writer took the lease in turn and gave it back: {show:?}"
    );
    assert!(show.stdout.contains("no state yet"), "{show:?}");
}

#[test]
fn an_unreachable_store_stops_the_run_with_exit_3_before_anything_is_delivered() {
    let schema = "e2e_pg_store_unreachable";
    fresh_schema(schema, SOURCE);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let ws = Workspace::new();
    ws.write("events.yaml", &pipeline(schema));

    let store = format!("postgres://app:s3cret@127.0.0.1:{port}/state?connect_timeout=5");
    let outcome = run(&ws, &store, &["run", "events.yaml", "--once"]);
    assert_eq!(outcome.code, Some(3), "{outcome:?}");
    assert!(
        outcome.stderr.contains(&format!(
            "cannot use the state store table cannectors_state of \
             postgres://app@127.0.0.1:{port}/state for pipeline `events`: cannot connect: "
        )),
        "{outcome:?}"
    );
    assert!(
        outcome.stderr.contains(
            "(the database is statePersistence.connectionStringRef or connectionString in \
             events.yaml)"
        ),
        "{outcome:?}"
    );
    assert!(!outcome.stderr.contains("s3cret"), "{outcome:?}");
    assert_eq!(delivered(&ws), 0);
}

#[test]
fn a_pipeline_held_by_another_process_exits_3_naming_the_holder_and_delivers_nothing() {
    let schema = "e2e_pg_store_held";
    fresh_schema(schema, SOURCE);
    let store = postgres::url_in_schema(schema);
    let ws = Workspace::new();
    ws.write("events.yaml", &pipeline(schema));
    // The tables, made by a first command.
    assert_eq!(
        run(&ws, &store, &["state", "show", "events.yaml"]).code,
        Some(0)
    );
    sql(
        schema,
        "INSERT INTO cannectors_state (pipeline, owner, lease_until, epoch) \
         VALUES ('events', 'replica-b pid 7', now() + interval '1 minute', 3)",
    );

    let outcome = run(&ws, &store, &["run", "events.yaml", "--once"]);
    assert_eq!(outcome.code, Some(3), "{outcome:?}");
    assert!(
        outcome.stderr.contains(
            "pipeline `events` is running elsewhere: replica-b pid 7 holds its lease in table \
             cannectors_state of postgres://"
        ),
        "{outcome:?}"
    );
    assert_eq!(delivered(&ws), 0);
    let show = run(&ws, &store, &["state", "show", "events.yaml"]);
    assert!(
        show.stdout
            .contains("lease: held by replica-b pid 7 until 20"),
        "{show:?}"
    );
    assert!(show.stdout.contains("(epoch 3)"), "{show:?}");
}

#[test]
fn a_bad_row_stops_the_run_with_exit_3_and_is_left_as_it_was() {
    let schema = "e2e_pg_store_bad_row";
    fresh_schema(schema, SOURCE);
    let store = postgres::url_in_schema(schema);
    let ws = Workspace::new();
    ws.write("events.yaml", &pipeline(schema));
    assert_eq!(
        run(&ws, &store, &["state", "show", "events.yaml"]).code,
        Some(0)
    );
    sql(
        schema,
        "INSERT INTO cannectors_state (pipeline, state) VALUES ('events', '{\"id\": [1]}')",
    );
    let before = row(schema);

    let outcome = run(&ws, &store, &["run", "events.yaml", "--once"]);
    assert_eq!(outcome.code, Some(3), "{outcome:?}");
    assert!(
        outcome
            .stderr
            .contains("the state of pipeline `events` in table cannectors_state of postgres://"),
        "{outcome:?}"
    );
    assert!(
        outcome
            .stderr
            .contains("(`cannectors state reset events.yaml` removes it)"),
        "{outcome:?}"
    );
    assert_eq!(delivered(&ws), 0);
    assert_eq!(row(schema), before);
}

#[test]
fn state_migrate_copies_a_state_file_and_replaces_a_different_row_only_with_force() {
    let schema = "e2e_pg_store_migrate";
    fresh_schema(schema, "");
    let store = postgres::url_in_schema(schema);
    let ws = Workspace::new();
    // The pipeline as it was before moving: its state in files.
    ws.write(
        "events.yaml",
        &pipeline(schema).replace(
            "    store: postgres\n    connectionStringRef: ${STATE_DATABASE_URL}\n",
            "    storagePath: ./state\n",
        ),
    );
    let seed = run(&ws, &store, &["state", "set", "events.yaml", "--id", "41"]);
    assert_eq!(seed.code, Some(0), "{seed:?}");
    let file = ws.read("state/events.json");

    let migrate = run(
        &ws,
        &store,
        &["state", "migrate", "events.yaml", "--to", &store],
    );
    assert_eq!(migrate.code, Some(0), "{migrate:?}");
    assert!(migrate.stdout.starts_with("copied "), "{migrate:?}");
    let copied: serde_json::Value = serde_json::from_str(&row(schema).unwrap()).unwrap();
    assert_eq!(copied["id"], 41);
    assert_eq!(
        ws.read("state/events.json"),
        file,
        "the file is left as it was"
    );

    // The same cursors again: nothing to refuse.
    let again = run(
        &ws,
        &store,
        &["state", "migrate", "events.yaml", "--to", &store],
    );
    assert_eq!(again.code, Some(0), "{again:?}");

    let moved = run(&ws, &store, &["state", "set", "events.yaml", "--id", "99"]);
    assert_eq!(moved.code, Some(0), "{moved:?}");
    let before = row(schema);
    let refused = run(
        &ws,
        &store,
        &["state", "migrate", "events.yaml", "--to", &store],
    );
    assert_eq!(refused.code, Some(3), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("already holds a different state for pipeline `events`"),
        "{refused:?}"
    );
    assert!(
        refused
            .stderr
            .contains("Nothing was changed; pass --force to replace it with the state file's"),
        "{refused:?}"
    );
    assert_eq!(row(schema), before);

    let forced = run(
        &ws,
        &store,
        &["state", "migrate", "events.yaml", "--to", &store, "--force"],
    );
    assert_eq!(forced.code, Some(0), "{forced:?}");
    let replaced: serde_json::Value = serde_json::from_str(&row(schema).unwrap()).unwrap();
    assert_eq!(replaced["id"], 99);

    let missing = run(
        &ws,
        &store,
        &[
            "state",
            "migrate",
            "events.yaml",
            "--to",
            &store,
            "--from-dir",
            "./nowhere",
        ],
    );
    assert_eq!(missing.code, Some(3), "{missing:?}");
    assert!(missing.stderr.contains("nothing to migrate"), "{missing:?}");
}
