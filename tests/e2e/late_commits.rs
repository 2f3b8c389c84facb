//! Records that do not fit the cursor: `onMissingCursor` for records without a cursor value.

use serde_json::{Value, json};

use crate::support::Workspace;
use crate::support::http::{Response, Server};

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
        run.stderr.contains("read=4 written=2 skipped=2"),
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
