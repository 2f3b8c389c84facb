//! Records that do not fit the cursor: `onMissingCursor` for records without a cursor value,
//! and `lookback` for records that become visible after later ones were delivered.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::support::http::{Response, Server};
use crate::support::{Outcome, Workspace};

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
    let identities = state["identities"].as_object().unwrap();
    let kept: usize = identities
        .values()
        .map(|h| h.as_str().unwrap().len() / 16)
        .sum();
    assert_eq!(kept, 4, "{identities:?}");
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
    assert_eq!(state["identities"].as_object().unwrap().len(), 3);
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
            "`identities.2026-01-01T10:00:00Z` holds \"12345\", but it must be a string of hex \
             digits, 16 an identity"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(ws.read("state/late.json"), bad);
    assert!(server.requests().is_empty());
    assert!(delivered_ids(&ws).is_empty());
}
