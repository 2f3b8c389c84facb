//! The PostgreSQL state store through the binary: a run committing there, `state
//! show|set|reset` with the lease, `state migrate` from a state file, the runs that must stop
//! before delivering anything (store unreachable, pipeline held elsewhere, bad row), and a
//! process frozen past its lease that is fenced when it wakes. Each
//! test works in a schema of its own on the throwaway server of `cargo xtask pg`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use cannectors_test_support::postgres::{self, fresh_schema_blocking as fresh_schema};

use crate::support::http::{Response, Server};
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

/// A connection to the test server in `schema`, and the runtime that drives it.
pub(crate) fn client(schema: &str) -> (tokio_postgres::Client, tokio::runtime::Runtime) {
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
fn a_scheduled_tick_of_a_pipeline_held_elsewhere_is_skipped_quietly_and_the_process_goes_on() {
    let schema = "e2e_pg_store_held_scheduled";
    fresh_schema(schema, SOURCE);
    let store = postgres::url_in_schema(schema);
    let ws = Workspace::new();
    // Every second, so that a few ticks fall inside the test.
    ws.write(
        "events.yaml",
        &pipeline(schema).replace(
            "  type: database\n",
            "  type: database\n  schedule: \"* * * * * *\"\n",
        ),
    );
    assert_eq!(
        run(&ws, &store, &["state", "show", "events.yaml"]).code,
        Some(0)
    );
    sql(
        schema,
        "INSERT INTO cannectors_state (pipeline, owner, lease_until, epoch) \
         VALUES ('events', 'replica-b pid 7', now() + interval '1 hour', 3)",
    );

    let mut command = ws.command(&["run", "events.yaml", "--verbose"]);
    command
        .env("STATE_DATABASE_URL", &store)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let guard = KillOnDrop(Some(child.id()));
    let stderr = child.stderr.take().unwrap();
    let (line, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for text in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = line.send(text);
        }
    });
    let (done, status) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait().unwrap());
    });
    let running = Running {
        guard,
        lines,
        status,
    };
    // Two ticks, each skipped with the holder named.
    running.wait_for_log("skipping this run: held by replica-b pid 7 until 20");
    running.wait_for_log("skipping this run: held by replica-b pid 7 until 20");
    signal(running.pid(), "TERM");
    let (code, stderr) = running.ended();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(delivered(&ws), 0);
    // Nothing of it is an error or a warning: the tick is the other replica's.
    assert!(!stderr.contains("ERROR"), "{stderr}");
    assert!(!stderr.contains("WARN"), "{stderr}");
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

/// Sends `signal` (`STOP`, `CONT`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let sent = std::process::Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -s {signal} {pid}");
}

/// Six source rows, delivered two at a time to an HTTP destination whose answer to the second
/// request waits until the test opens the gate: the first run is then held with its second
/// batch in flight.
struct Gated {
    schema: &'static str,
    store: String,
    ws: Workspace,
    destination: Server,
    open_gate: mpsc::Sender<()>,
}

impl Gated {
    fn new(schema: &'static str, lease: &str) -> Gated {
        fresh_schema(
            schema,
            "CREATE TABLE events (id bigint PRIMARY KEY); \
             INSERT INTO events SELECT generate_series(1, 6);",
        );
        let store = postgres::url_in_schema(schema);
        let (open_gate, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let count = AtomicUsize::new(0);
        let destination = Server::start(move |_| {
            if count.fetch_add(1, Ordering::SeqCst) == 1 {
                let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(60));
            }
            Response::status(200, "ok")
        });
        let ws = Workspace::new();
        ws.write(
            "events.yaml",
            &format!(
                r#"
name: events
input:
  type: database
  connectionString: "{store}"
  query: "SELECT id FROM events WHERE id > COALESCE($1::bigint, 0) ORDER BY id LIMIT 2"
  statePersistence:
    id: {{field: id}}
    store: postgres
    connectionStringRef: ${{STATE_DATABASE_URL}}
{lease}output:
  type: httpRequest
  endpoint: {endpoint}
  timeoutMs: 30000
  retry: {{maxAttempts: 1}}
"#,
                endpoint = destination.url("/in"),
            ),
        );
        Gated {
            schema,
            store,
            ws,
            destination,
            open_gate,
        }
    }

    /// Starts `run --once` in the background, and waits until its second batch is in flight.
    fn start_held(&self) -> Running {
        let mut command = self.ws.command(&["run", "events.yaml", "--once"]);
        command
            .env("STATE_DATABASE_URL", &self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let guard = KillOnDrop(Some(child.id()));
        let stderr = child.stderr.take().unwrap();
        let (line, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for text in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = line.send(text);
            }
        });
        let (done, status) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(child.wait().unwrap());
        });
        assert!(
            self.destination
                .wait_for_requests(2, Duration::from_secs(30))
        );
        Running {
            guard,
            lines,
            status,
        }
    }

    /// Waits until the pipeline's lease expired by the database's clock.
    fn wait_for_expiry(&self) {
        let (client, runtime) = client(self.schema);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while runtime.block_on(async {
            client
                .query_one(
                    "SELECT coalesce(lease_until > now(), false) FROM cannectors_state \
                     WHERE pipeline = 'events'",
                    &[],
                )
                .await
                .unwrap()
                .get::<_, bool>(0)
        }) {
            assert!(
                std::time::Instant::now() < deadline,
                "the lease never expired"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn bodies(&self) -> Vec<String> {
        self.destination
            .requests()
            .iter()
            .map(|request| String::from_utf8_lossy(&request.body).into_owned())
            .collect()
    }
}

/// Kills a process the test started, should the test fail before the process ended: a stopped
/// or held process would otherwise outlive the test run.
struct KillOnDrop(Option<u32>);

impl KillOnDrop {
    fn pid(&self) -> u32 {
        self.0.unwrap()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-s", "KILL", &pid.to_string()])
                .status();
        }
    }
}

/// A `run --once` in the background.
struct Running {
    guard: KillOnDrop,
    lines: mpsc::Receiver<String>,
    status: mpsc::Receiver<std::process::ExitStatus>,
}

impl Running {
    fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// Waits, for at most a minute, until it logged a line holding `text`.
    fn wait_for_log(&self, text: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return,
                Ok(_) => {}
                Err(error) => panic!("no log line with `{text}`: {error}"),
            }
        }
    }

    /// Its exit code and what it logged, once it ended (within a minute).
    fn ended(mut self) -> (Option<i32>, String) {
        let status = self
            .status
            .recv_timeout(Duration::from_secs(60))
            .expect("the process ends");
        self.guard.0 = None;
        let logged: Vec<String> = self.lines.iter().collect();
        (status.code(), logged.join("\n"))
    }
}

#[test]
fn a_holder_frozen_past_its_lease_is_fenced_and_delivers_nothing_more_when_it_wakes() {
    let gated = Gated::new(
        "e2e_pg_store_frozen",
        "    leaseTtlMs: 1000\n    leaseRenewMs: 200\n",
    );
    let first = gated.start_held();
    signal(first.pid(), "STOP");

    // Its lease expires by the database's clock; then a second process takes it over and
    // runs the pipeline to its end.
    gated.wait_for_expiry();
    let second = run(&gated.ws, &gated.store, &["run", "events.yaml", "--once"]);
    assert_eq!(second.code, Some(0), "{second:?}");
    let after_second = row(gated.schema);
    let committed: serde_json::Value =
        serde_json::from_str(after_second.as_deref().unwrap()).unwrap();
    assert_eq!(committed["id"], 6);
    assert_eq!(gated.bodies().len(), 4, "batches 3-4 (again) and 5-6");

    // The first process wakes up, its batch in flight is answered: its commit is refused.
    signal(first.pid(), "CONT");
    gated.open_gate.send(()).unwrap();
    let (code, stderr) = first.ended();
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr
            .contains("pipeline `events` lost its lease in table cannectors_state of postgres://"),
        "{stderr}"
    );
    assert_eq!(
        row(gated.schema),
        after_second,
        "the state is the second process's"
    );
    assert_eq!(
        gated.bodies(),
        [
            r#"[{"id":1},{"id":2}]"#,
            r#"[{"id":3},{"id":4}]"#,
            r#"[{"id":3},{"id":4}]"#,
            r#"[{"id":5},{"id":6}]"#
        ],
        "nothing more delivered by the first process"
    );
}

#[test]
fn a_killed_holder_loses_its_lease_at_expiry_and_another_process_continues_without_loss() {
    let gated = Gated::new(
        "e2e_pg_store_killed",
        "    leaseTtlMs: 1000\n    leaseRenewMs: 200\n",
    );
    let first = gated.start_held();
    signal(first.pid(), "KILL");
    let (code, _) = first.ended();
    assert_eq!(code, None, "killed by a signal");

    gated.wait_for_expiry();
    let second = run(&gated.ws, &gated.store, &["run", "events.yaml", "--once"]);
    assert_eq!(second.code, Some(0), "{second:?}");
    let committed: serde_json::Value = serde_json::from_str(&row(gated.schema).unwrap()).unwrap();
    assert_eq!(committed["id"], 6);
    assert_eq!(
        gated.bodies(),
        [
            r#"[{"id":1},{"id":2}]"#,
            r#"[{"id":3},{"id":4}]"#,
            r#"[{"id":3},{"id":4}]"#,
            r#"[{"id":5},{"id":6}]"#
        ],
        "every record, the batch in flight at the kill twice"
    );
    gated.open_gate.send(()).ok();
}

#[test]
fn sigterm_finishes_the_batch_and_hands_the_lease_over_without_waiting_for_its_expiry() {
    // A lease of ten minutes: a second run could not wait for it.
    let gated = Gated::new("e2e_pg_store_sigterm", "    leaseTtlMs: 600000\n");
    let first = gated.start_held();
    signal(first.pid(), "TERM");
    // Answered only once the process knows it is to stop: it then finishes this batch and
    // starts no other.
    first.wait_for_log("SIGTERM received: shutting down");
    gated.open_gate.send(()).unwrap();
    let (code, stderr) = first.ended();
    assert_eq!(code, Some(0), "{stderr}");
    let committed: serde_json::Value = serde_json::from_str(&row(gated.schema).unwrap()).unwrap();
    assert_eq!(
        committed["id"], 4,
        "the batch in flight was finished and committed"
    );

    let second = run(&gated.ws, &gated.store, &["run", "events.yaml", "--once"]);
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(
        gated.bodies(),
        [
            r#"[{"id":1},{"id":2}]"#,
            r#"[{"id":3},{"id":4}]"#,
            r#"[{"id":5},{"id":6}]"#
        ],
        "each record once"
    );
}
