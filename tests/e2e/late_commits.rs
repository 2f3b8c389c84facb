//! Records that do not fit the cursor: `onMissingCursor` for records without a cursor value,
//! and `lookback` for records that become visible after later ones were delivered.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cannectors_test_support::postgres;
use serde_json::{Value, json};

use crate::support::http::{Response, Server};
use crate::support::{Outcome, Workspace, output_within};

fn lines(ws: &Workspace, name: &str) -> Vec<Value> {
    match std::fs::read_to_string(ws.path().join(name)) {
        Ok(text) => text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// One page of records, some without a timestamp.
fn serve_records(records: Value) -> Server {
    Server::start(move |_| Response::json(&json!({ "items": records })))
}

fn missing_cursor_pipeline(ws: &Workspace, server: &Server, mode: Option<&str>) {
    let mode = mode
        .map(|mode| format!("    onMissingCursor: {mode}\n"))
        .unwrap_or_default();
    ws.write(
        "p.yaml",
        &format!(
            "name: missing\ninput:\n  type: httpPolling\n  endpoint: {}\n  dataField: items\n  \
             statePersistence:\n    timestamp: {{field: at, queryParam: since}}\n{mode}    \
             storagePath: ./state\noutput: {{type: file, path: out.jsonl}}\n",
            server.url("/items")
        ),
    );
}

fn mixed() -> Value {
    json!([
        {"n": 1, "at": "2026-01-01T00:00:01Z"},
        {"n": 2},
        {"n": 3, "at": null},
        {"n": 4, "at": "2026-01-01T00:00:04Z"},
    ])
}

fn numbers(records: &[Value]) -> Vec<i64> {
    records.iter().map(|r| r["n"].as_i64().unwrap()).collect()
}

#[test]
fn on_missing_cursor_fail_stops_the_batch_and_leaves_the_state_as_it_was() {
    let ws = Workspace::new();
    let server = serve_records(mixed());
    missing_cursor_pipeline(&ws, &server, None);
    let seed = "{\"timestamp\": \"2025-12-31T00:00:00Z\"}\n";
    ws.write("state/missing.json", seed);

    let run = ws.run(&["run", "p.yaml"]);

    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(
        run.stderr.contains(
            "record 1 of the batch (counting from 0) has no `at`: every record needs the \
             timestamp cursor field"
        ),
        "{}",
        run.stderr
    );
    assert!(lines(&ws, "out.jsonl").is_empty());
    assert_eq!(ws.read("state/missing.json"), seed);
}

#[test]
fn on_missing_cursor_skip_leaves_those_records_out_counts_them_and_advances() {
    let ws = Workspace::new();
    let server = serve_records(mixed());
    missing_cursor_pipeline(&ws, &server, Some("skip"));

    let run = ws.run(&["run", "p.yaml"]);

    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(numbers(&lines(&ws, "out.jsonl")), [1, 4]);
    assert!(
        run.stderr.contains(
            "batch 1: 2 record(s) without a timestamp or id cursor value were not delivered \
             (statePersistence.onMissingCursor: skip)"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("were not delivered").count(),
        1,
        "one line a batch"
    );
    assert!(
        run.stderr.contains("read=4 written=2 missing-cursor=2"),
        "{}",
        run.stderr
    );
    let state: Value = serde_json::from_str(&ws.read("state/missing.json")).unwrap();
    assert_eq!(state["timestamp"], "2026-01-01T00:00:04Z");
}

#[test]
fn on_missing_cursor_deliver_sends_every_record_and_the_cursor_comes_from_the_others() {
    let ws = Workspace::new();
    let server = serve_records(json!([
        {"n": 1, "at": "2026-01-01T00:00:01Z"},
        {"n": 2, "at": "2026-01-01T00:00:07Z"},
        {"n": 3},
    ]));
    missing_cursor_pipeline(&ws, &server, Some("deliver"));

    let run = ws.run(&["run", "p.yaml"]);

    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(numbers(&lines(&ws, "out.jsonl")), [1, 2, 3]);
    assert!(
        run.stderr.contains("read=3 written=3 batches=1"),
        "{}",
        run.stderr
    );
    let state: Value = serde_json::from_str(&ws.read("state/missing.json")).unwrap();
    assert_eq!(state["timestamp"], "2026-01-01T00:00:07Z");
}

// ---- lookback over an HTTP source --------------------------------------------------------

/// A source API whose records become visible out of timestamp order: it returns the visible
/// records after `since` (or from `since` on, when `inclusive`), in timestamp order.
#[derive(Clone)]
struct LateApi {
    visible: Arc<Mutex<Vec<Value>>>,
    inclusive: bool,
}

impl LateApi {
    fn new(inclusive: bool) -> LateApi {
        LateApi {
            visible: Arc::new(Mutex::new(Vec::new())),
            inclusive,
        }
    }

    fn publish(&self, id: i64, at: &str) {
        self.visible
            .lock()
            .unwrap()
            .push(json!({"id": id, "at": at, "body": format!("record {id}")}));
    }

    fn serve(&self) -> Server {
        let api = self.clone();
        Server::start(move |request| {
            let since = request.param("since").map(str::to_owned);
            let mut page: Vec<Value> = api
                .visible
                .lock()
                .unwrap()
                .iter()
                .filter(|r| match &since {
                    None => true,
                    Some(since) if api.inclusive => r["at"].as_str().unwrap() >= since.as_str(),
                    Some(since) => r["at"].as_str().unwrap() > since.as_str(),
                })
                .cloned()
                .collect();
            page.sort_by_key(|r| (r["at"].as_str().unwrap().to_owned(), r["id"].as_i64()));
            Response::json(&json!({ "items": page }))
        })
    }
}

fn lookback_pipeline(ws: &Workspace, server: &Server, lookback: &str) {
    ws.write(
        "p.yaml",
        &format!(
            "name: late\ninput:\n  type: httpPolling\n  endpoint: {}\n  dataField: items\n  \
             statePersistence:\n    timestamp: {{field: at, queryParam: since}}\n    \
             id: {{field: id, queryParam: after_id}}\n{lookback}    storagePath: ./state\n\
             output: {{type: file, path: out.jsonl}}\n",
            server.url("/items")
        ),
    );
}

fn delivered_ids(ws: &Workspace) -> Vec<i64> {
    lines(ws, "out.jsonl")
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

/// Records 1 and 3 are visible first; record 2, with a timestamp between theirs, only after
/// the first run delivered record 3.
fn late_record_scenario(lookback: &str) -> (Workspace, Vec<Outcome>) {
    let ws = Workspace::new();
    let api = LateApi::new(false);
    let server = api.serve();
    // The id cursor is sent but the API filters on the timestamp only.
    lookback_pipeline(&ws, &server, lookback);
    api.publish(1, "2026-01-01T10:00:00Z");
    api.publish(3, "2026-01-01T10:00:30Z");
    let first = ws.run(&["run", "p.yaml"]);
    api.publish(2, "2026-01-01T10:00:20Z");
    api.publish(4, "2026-01-01T10:00:40Z");
    let second = ws.run(&["run", "p.yaml"]);
    let third = ws.run(&["run", "p.yaml"]);
    (ws, vec![first, second, third])
}

#[test]
fn without_lookback_a_record_visible_late_is_lost() {
    let (ws, runs) = late_record_scenario("");
    for run in &runs {
        assert_eq!(run.code, Some(0), "{run:?}");
    }
    // The documented failure that lookback fixes: record 2 is never delivered.
    assert_eq!(delivered_ids(&ws), [1, 3, 4]);
}

#[test]
fn with_lookback_a_record_visible_late_arrives_once_and_nothing_twice() {
    let (ws, runs) = late_record_scenario("    lookback: 1m\n");
    for run in &runs {
        assert_eq!(run.code, Some(0), "{run:?}");
    }
    assert_eq!(delivered_ids(&ws), [1, 3, 2, 4]);
    assert!(
        runs[1]
            .stderr
            .contains("read=4 written=2 already-delivered=2"),
        "{}",
        runs[1].stderr
    );
    assert!(
        runs[2].stderr.contains("run complete: nothing new"),
        "{}",
        runs[2].stderr
    );
    let state: Value = serde_json::from_str(&ws.read("state/late.json")).unwrap();
    assert_eq!(state["timestamp"], "2026-01-01T10:00:40Z");
    // The identities are in the journal beside the state file, which counts them.
    assert_eq!(state["identities"]["count"], 4, "{state}");
    assert_eq!(state["identities"]["journal"], "late.idents-a", "{state}");
    let journal = ws.read("state/late.idents-a");
    let kept: usize = journal
        .lines()
        // `<second> <Z85>`: 10 characters an entry of 8 bytes.
        .map(|line| line.split_once(' ').unwrap().1.len() / 10)
        .sum();
    assert_eq!(kept, 4, "{journal}");
}

#[test]
fn the_lookback_request_reaches_back_by_the_window_from_the_committed_timestamp() {
    let ws = Workspace::new();
    let api = LateApi::new(false);
    let server = api.serve();
    lookback_pipeline(&ws, &server, "    lookback: 10m\n");
    ws.write(
        "state/late.json",
        "{\"timestamp\": \"2026-01-01T10:00:00Z\", \"id\": 7}\n",
    );

    let run = ws.run(&["run", "p.yaml"]);

    assert_eq!(run.code, Some(0), "{run:?}");
    let requests = server.requests();
    assert_eq!(requests[0].param("since"), Some("2026-01-01T09:50:00Z"));
}

#[test]
fn an_inclusive_since_delivers_no_duplicate_over_ten_runs() {
    let ws = Workspace::new();
    let api = LateApi::new(true);
    let server = api.serve();
    lookback_pipeline(&ws, &server, "    lookback: 0s\n");
    let mut expected = Vec::new();
    for run_number in 0..10_i64 {
        // Two records a run, the second sharing the timestamp of the boundary.
        let id = run_number * 2;
        let at = format!("2026-01-01T10:00:{:02}Z", run_number);
        api.publish(id, &at);
        api.publish(id + 1, &at);
        expected.extend([id, id + 1]);
        let run = ws.run(&["run", "p.yaml"]);
        assert_eq!(run.code, Some(0), "{run:?}");
    }
    assert_eq!(delivered_ids(&ws), expected);
}

#[test]
fn reaching_max_identities_warns_with_the_count_and_the_remedy() {
    let ws = Workspace::new();
    let api = LateApi::new(false);
    let server = api.serve();
    lookback_pipeline(&ws, &server, "    lookback: 1h\n    maxIdentities: 3\n");
    for id in 1..=5 {
        api.publish(id, &format!("2026-01-01T10:00:0{id}Z"));
    }

    let run = ws.run(&["run", "p.yaml"]);

    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stderr.contains(
            "the lookback window holds more than statePersistence.maxIdentities (3) delivered \
             records; the 2 oldest were forgotten, so those records are delivered again if the \
             source returns them (duplicates, never loss): raise maxIdentities or shorten \
             lookback"
        ),
        "{}",
        run.stderr
    );
    let state: Value = serde_json::from_str(&ws.read("state/late.json")).unwrap();
    assert_eq!(state["identities"]["count"], 3, "{state}");
}

#[test]
fn a_bad_identities_section_stops_the_run_and_leaves_the_file_unchanged() {
    let ws = Workspace::new();
    let api = LateApi::new(false);
    let server = api.serve();
    api.publish(1, "2026-01-01T10:00:01Z");
    lookback_pipeline(&ws, &server, "    lookback: 10m\n");
    let bad = "{\"timestamp\": \"2026-01-01T10:00:00Z\", \"identities\": \
               {\"2026-01-01T10:00:00Z\": \"12345\"}}\n";
    ws.write("state/late.json", bad);

    let run = ws.run(&["run", "p.yaml"]);

    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(
        run.stderr.contains(
            "`identities.2026-01-01T10:00:00Z` holds \"12345\", but it must be a Z85 string \
             of 8 bytes an identity"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(ws.read("state/late.json"), bad);
    assert!(server.requests().is_empty());
    assert!(delivered_ids(&ws).is_empty());
}

#[test]
fn a_missing_journal_stops_the_run_and_leaves_the_state_file_unchanged() {
    let ws = Workspace::new();
    let api = LateApi::new(false);
    let server = api.serve();
    api.publish(1, "2026-01-01T10:00:01Z");
    lookback_pipeline(&ws, &server, "    lookback: 10m\n");
    let first = ws.run(&["run", "p.yaml"]);
    assert_eq!(first.code, Some(0), "{first:?}");
    let show = ws.run(&["state", "show", "p.yaml"]);
    assert!(
        show.stdout
            .contains("identities: 1 records delivered inside the lookback window are remembered"),
        "{show:?}"
    );
    let state = ws.read("state/late.json");
    let journal = ws.path().join("state/late.idents-a");
    std::fs::remove_file(&journal).unwrap();
    let requests = server.requests().len();

    let run = ws.run(&["run", "p.yaml"]);

    assert_eq!(run.code, Some(3), "{run:?}");
    let state_file = ws.path().join("state/late.json");
    assert!(
        run.stderr.contains(&format!(
            "the identities journal {} of state file {} is not usable: it is missing. Nothing \
             was changed",
            journal.display(),
            state_file.display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("(`cannectors state reset p.yaml` removes the state file and its journals)"),
        "{}",
        run.stderr
    );
    assert_eq!(ws.read("state/late.json"), state);
    assert!(!journal.exists());
    assert_eq!(server.requests().len(), requests, "nothing was requested");
    assert_eq!(delivered_ids(&ws), [1]);
}

#[test]
fn state_reset_removes_the_journal_of_identities_too() {
    let ws = Workspace::new();
    let api = LateApi::new(false);
    let server = api.serve();
    api.publish(1, "2026-01-01T10:00:01Z");
    lookback_pipeline(&ws, &server, "    lookback: 10m\n");
    let first = ws.run(&["run", "p.yaml"]);
    assert_eq!(first.code, Some(0), "{first:?}");
    assert!(ws.path().join("state/late.idents-a").exists());

    let reset = ws.run(&["state", "reset", "p.yaml"]);

    assert_eq!(reset.code, Some(0), "{reset:?}");
    assert!(!ws.path().join("state/late.json").exists());
    assert!(!ws.path().join("state/late.idents-a").exists());
}

// ---- lookback over PostgreSQL ------------------------------------------------------------

fn pg_run(ws: &Workspace, pipeline: &str) -> Outcome {
    let mut command = ws.command(&["run", pipeline]);
    command.env("TEST_DATABASE_URL", postgres::url());
    output_within(command, Duration::from_secs(120))
}

fn pg_pipeline(schema: &str, limit: u32, lookback: &str) -> String {
    format!(
        r#"
name: rows
input:
  type: database
  connectionStringRef: ${{TEST_DATABASE_URL}}
  query: |
    SELECT id, updated_at FROM {schema}.events
    WHERE (updated_at, id) > (COALESCE($1::timestamptz, '-infinity'), COALESCE($2::bigint, 0))
    ORDER BY updated_at, id LIMIT {limit}
  statePersistence:
    timestamp: {{field: updated_at}}
    id: {{field: id}}
{lookback}    storagePath: ./state
output: {{type: file, path: ./out.jsonl}}
"#
    )
}

/// Two transactions take `updated_at` from `now()`, the time they started: the earlier one
/// commits only after a run delivered the later one. Returns the ids each run delivered.
fn late_transaction_scenario(schema: &str, lookback: &str) -> (Workspace, Vec<Outcome>) {
    postgres::fresh_schema_blocking(
        schema,
        "CREATE TABLE events (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now());",
    );
    let ws = Workspace::new();
    ws.write("rows.yaml", &pg_pipeline(schema, 100, lookback));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let early = runtime.block_on(async {
        let early = postgres::connect().await;
        let later = postgres::connect().await;
        early
            .batch_execute(&format!(
                "BEGIN; INSERT INTO {schema}.events (id) VALUES (1)"
            ))
            .await
            .unwrap();
        later
            .batch_execute(&format!(
                "BEGIN; INSERT INTO {schema}.events (id) VALUES (2); COMMIT"
            ))
            .await
            .unwrap();
        early
    });
    let first = pg_run(&ws, "rows.yaml");
    runtime.block_on(async { early.batch_execute("COMMIT").await.unwrap() });
    let second = pg_run(&ws, "rows.yaml");
    let third = pg_run(&ws, "rows.yaml");
    (ws, vec![first, second, third])
}

fn pg_ids(ws: &Workspace) -> Vec<i64> {
    lines(ws, "out.jsonl")
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn without_lookback_a_row_committed_late_is_lost() {
    let (ws, runs) = late_transaction_scenario("e2e_late_none", "");
    for run in &runs {
        assert_eq!(run.code, Some(0), "{run:?}");
    }
    // The documented failure: row 1 took its timestamp before row 2 but committed after row 2
    // was delivered, so the cursor had passed it.
    assert_eq!(pg_ids(&ws), [2]);
}

#[test]
fn with_lookback_a_row_committed_late_arrives_once_and_nothing_twice() {
    let (ws, runs) = late_transaction_scenario("e2e_late_lookback", "    lookback: 1m\n");
    for run in &runs {
        assert_eq!(run.code, Some(0), "{run:?}");
    }
    assert_eq!(pg_ids(&ws), [2, 1]);
    assert!(
        runs[1]
            .stderr
            .contains("read=2 written=1 already-delivered=1"),
        "{runs:?}"
    );
    assert!(runs[2].stderr.contains("nothing new"), "{runs:?}");
}

#[test]
fn a_lookback_window_holding_more_rows_than_the_limit_completes() {
    let schema = "e2e_late_limit";
    postgres::fresh_schema_blocking(
        schema,
        "CREATE TABLE events (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL);
         INSERT INTO events SELECT n, '2026-01-01T10:00:00Z'::timestamptz + n * interval '100 ms'
           FROM generate_series(1, 250) AS n;",
    );
    let ws = Workspace::new();
    ws.write(
        "rows.yaml",
        &pg_pipeline(schema, 100, "    lookback: 10m\n"),
    );
    let first = pg_run(&ws, "rows.yaml");
    assert_eq!(first.code, Some(0), "{first:?}");
    // A row committed late, inside the window, and rows after the cursor.
    postgres::run_sql(&format!(
        "INSERT INTO {schema}.events VALUES (1000, '2026-01-01T10:00:03.05Z');
         INSERT INTO {schema}.events SELECT n, '2026-01-01T10:01:00Z'::timestamptz + n * interval '1 s'
           FROM generate_series(251, 255) AS n;"
    ));

    let second = pg_run(&ws, "rows.yaml");

    assert_eq!(second.code, Some(0), "{second:?}");
    assert!(second.stderr.contains("read=256 written=6"), "{second:?}");
    let delivered = pg_ids(&ws);
    assert_eq!(delivered[..250], (1..=250).collect::<Vec<i64>>());
    assert_eq!(delivered[250..], [1000, 251, 252, 253, 254, 255]);
}

#[test]
fn sigkill_during_a_lookback_run_loses_nothing_and_repeats_at_most_the_batch_in_flight() {
    let schema = "e2e_late_kill";
    postgres::fresh_schema_blocking(
        schema,
        "CREATE TABLE events (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL);
         INSERT INTO events SELECT n, '2026-01-01'::timestamptz + (n / 7) * interval '1 second'
           FROM generate_series(1, 5000) AS n;",
    );
    let ws = Workspace::new();
    // Every query result a delivery of its own (batchSize: 1): the kill re-sends at most one.
    let pipeline = pg_pipeline(schema, 200, "    lookback: 10m\n").replace(
        "output: {type: file, path: ./out.jsonl}",
        "output: {type: file, path: ./out.jsonl, batchSize: 1}",
    );
    assert!(pipeline.contains("batchSize: 1"));
    ws.write("rows.yaml", &pipeline);
    let first = pg_run(&ws, "rows.yaml");
    assert_eq!(first.code, Some(0), "{first:?}");
    // Rows committed late inside the window, and many new rows after it.
    postgres::run_sql(&format!(
        "INSERT INTO {schema}.events SELECT n, '2026-01-01'::timestamptz + (714 - n % 100) * interval '1 second'
           FROM generate_series(100001, 100050) AS n;
         INSERT INTO {schema}.events SELECT n, '2026-01-01'::timestamptz + (n / 7) * interval '1 second'
           FROM generate_series(5001, 60000) AS n;"
    ));
    let mut child = ws
        .command(&["run", "rows.yaml"])
        .env("TEST_DATABASE_URL", postgres::url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while line_count(&ws) < 5000 + 2000 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        line_count(&ws) < 60_050,
        "the run ended before it could be killed"
    );

    let rerun = pg_run(&ws, "rows.yaml");

    assert_eq!(rerun.code, Some(0), "{rerun:?}");
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for id in pg_ids(&ws) {
        *seen.entry(id).or_default() += 1;
    }
    assert_eq!(seen.len(), 60_050, "every row delivered");
    let repeated = seen.values().filter(|n| **n > 1).count();
    assert!(
        repeated <= 200,
        "{repeated} rows delivered twice: more than one batch"
    );
    // The window's identities went to a journal that grew by a few kilobytes a batch, and was
    // written whole into the other file when it held too many forgotten entries.
    let state: Value = serde_json::from_str(&ws.read("state/rows.json")).unwrap();
    let journal = state["identities"]["journal"].as_str().unwrap();
    assert!(
        ws.path().join("state/rows.idents-a").exists()
            && ws.path().join("state/rows.idents-b").exists(),
        "the journal was written into both files: {state}"
    );
    // Its synced bytes, then the lines the state file carries until it knows them synced.
    let tail: u64 = state["identities"]
        .get("tail")
        .and_then(Value::as_array)
        .map_or(0, |lines| {
            lines
                .iter()
                .map(|line| line.as_str().unwrap().len() as u64 + 1)
                .sum()
        });
    assert_eq!(
        std::fs::metadata(ws.path().join("state").join(journal))
            .unwrap()
            .len(),
        state["identities"]["bytes"].as_u64().unwrap() + tail
    );
    // What the journal holds is what was delivered: reading the window again delivers nothing.
    let again = pg_run(&ws, "rows.yaml");
    assert_eq!(again.code, Some(0), "{again:?}");
    assert!(
        again.stderr.contains("run complete: nothing new"),
        "{again:?}"
    );
    assert_eq!(pg_ids(&ws).len(), 60_050 + repeated);
}

/// The lines of the output so far, without parsing them: polled while a run is going.
fn line_count(ws: &Workspace) -> usize {
    std::fs::read(ws.path().join("out.jsonl"))
        .map(|bytes| bytes.iter().filter(|b| **b == b'\n').count())
        .unwrap_or(0)
}

// ---- delay --------------------------------------------------------------------------------

fn rfc3339(instant: chrono::DateTime<chrono::Utc>) -> String {
    instant.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[test]
fn delay_holds_back_fresh_records_until_they_are_old_enough() {
    let ws = Workspace::new();
    // The API ignores the upper bound: the run itself must hold fresh records back.
    let api = LateApi::new(false);
    let server = api.serve();
    ws.write(
        "p.yaml",
        &format!(
            "name: delayed\ninput:\n  type: httpPolling\n  endpoint: {}\n  dataField: items\n  \
             queryParams: {{before: '{{{{window.end}}}}'}}\n  statePersistence:\n    \
             timestamp: {{field: at, queryParam: since, untilParam: until}}\n    delay: 2s\n    \
             storagePath: ./state\noutput: {{type: file, path: out.jsonl}}\n",
            server.url("/items")
        ),
    );
    let now = chrono::Utc::now();
    api.publish(1, &rfc3339(now - chrono::TimeDelta::hours(1)));
    let fresh_at = now;
    api.publish(2, &rfc3339(fresh_at));

    let first = ws.run(&["run", "p.yaml"]);

    assert_eq!(first.code, Some(0), "{first:?}");
    assert_eq!(delivered_ids(&ws), [1]);
    assert!(
        first.stderr.contains("read=2 written=1 held-back=1"),
        "{first:?}"
    );
    let request = &server.requests()[0];
    let until = chrono::DateTime::parse_from_rfc3339(request.param("until").unwrap()).unwrap();
    assert!(until < fresh_at, "until {until} is now - delay");
    assert_eq!(
        request.param("before"),
        request.param("until"),
        "{{window.end}} is the bound"
    );
    let state: Value = serde_json::from_str(&ws.read("state/delayed.json")).unwrap();
    assert_eq!(
        state["timestamp"],
        rfc3339(now - chrono::TimeDelta::hours(1))
    );

    // The one thing to wait for is the clock passing the record's time plus the delay.
    let old_enough = fresh_at + chrono::TimeDelta::seconds(3);
    let deadline = Instant::now() + Duration::from_secs(10);
    while chrono::Utc::now() < old_enough && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = ws.run(&["run", "p.yaml"]);

    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(delivered_ids(&ws), [1, 2]);
}

#[test]
fn a_database_query_binds_window_end_and_rows_after_it_wait_for_a_later_run() {
    let schema = "e2e_late_delay";
    postgres::fresh_schema_blocking(
        schema,
        "CREATE TABLE events (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL);
         INSERT INTO events VALUES (1, now() - interval '3 hours'), (2, now());",
    );
    let ws = Workspace::new();
    ws.write(
        "rows.yaml",
        &format!(
            r#"
name: rows
input:
  type: database
  connectionStringRef: ${{TEST_DATABASE_URL}}
  query: |
    SELECT id, updated_at FROM {schema}.events
    WHERE updated_at > COALESCE($1::timestamptz, '-infinity') AND updated_at <= $2::timestamptz
    ORDER BY updated_at, id LIMIT 100
  parameters: [state.timestamp, window.end]
  statePersistence:
    timestamp: {{field: updated_at}}
    delay: 1h
    storagePath: ./state
output: {{type: file, path: ./out.jsonl}}
"#
        ),
    );
    let first = pg_run(&ws, "rows.yaml");
    assert_eq!(first.code, Some(0), "{first:?}");
    assert_eq!(pg_ids(&ws), [1]);

    // Row 2 grows old enough (its time moves back past now - delay).
    postgres::run_sql(&format!(
        "UPDATE {schema}.events SET updated_at = now() - interval '2 hours' WHERE id = 2"
    ));
    let second = pg_run(&ws, "rows.yaml");
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(pg_ids(&ws), [1, 2]);
}

#[test]
fn state_set_timestamp_forgets_the_records_remembered_by_lookback() {
    let ws = Workspace::new();
    let api = LateApi::new(false);
    let server = api.serve();
    lookback_pipeline(&ws, &server, "    lookback: 10m\n");
    api.publish(1, "2026-01-01T10:00:01Z");
    let first = ws.run(&["run", "p.yaml"]);
    assert_eq!(first.code, Some(0), "{first:?}");

    let set = ws.run(&[
        "state",
        "set",
        "p.yaml",
        "--timestamp",
        "2026-01-01T00:00:00Z",
    ]);
    assert_eq!(set.code, Some(0), "{set:?}");
    assert!(
        set.stdout
            .contains("forgot the records remembered by lookback"),
        "{set:?}"
    );
    let again = ws.run(&["run", "p.yaml"]);

    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(
        delivered_ids(&ws),
        [1, 1],
        "a seeded timestamp delivers again"
    );
}

#[test]
fn a_database_row_without_a_cursor_value_is_skipped_or_delivered_as_configured() {
    let schema = "e2e_late_missing";
    postgres::fresh_schema_blocking(
        schema,
        "CREATE TABLE events (id bigint PRIMARY KEY, updated_at timestamptz);
         INSERT INTO events VALUES (1, '2026-01-01T10:00:00Z'), (2, NULL),
           (3, '2026-01-01T10:00:05Z');",
    );
    let pipeline = |mode: &str| {
        format!(
            r#"
name: rows
input:
  type: database
  connectionStringRef: ${{TEST_DATABASE_URL}}
  query: |
    SELECT id, updated_at FROM {schema}.events
    WHERE updated_at IS NULL OR updated_at > COALESCE($1::timestamptz, '-infinity')
    ORDER BY updated_at NULLS FIRST, id LIMIT 100
  statePersistence:
    timestamp: {{field: updated_at}}
    onMissingCursor: {mode}
    storagePath: ./state
output: {{type: file, path: ./out.jsonl}}
"#
        )
    };
    for (mode, expected) in [("skip", vec![1, 3]), ("deliver", vec![2, 1, 3])] {
        let ws = Workspace::new();
        ws.write("rows.yaml", &pipeline(mode));
        let run = pg_run(&ws, "rows.yaml");
        assert_eq!(run.code, Some(0), "{mode}: {run:?}");
        assert_eq!(pg_ids(&ws), expected, "{mode}");
        let state: Value = serde_json::from_str(&ws.read("state/rows.json")).unwrap();
        assert_eq!(state["timestamp"], "2026-01-01T10:00:05Z", "{mode}");
    }
}
