//! Files written for or by the Go tool this project descends from: its state files, and its
//! pipeline files as its documentation describes them, run here unchanged.

use serde_json::{Value, json};

use crate::support::Workspace;
use crate::support::http::{Response, Server};

/// A source of three records that honours the `after_id` id cursor, as the Go tool sends it.
fn records_after_id() -> Server {
    Server::start(|request| {
        let after: i64 = request
            .param("after_id")
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        let records: Vec<Value> = [1, 2, 3]
            .into_iter()
            .filter(|id| *id > after)
            .map(|id| json!({"id": id, "name": format!("n{id}")}))
            .collect();
        Response::json(&json!({"data": records}))
    })
}

#[test]
fn a_state_file_of_the_go_tool_is_resumed_from_and_rewritten_in_this_format() {
    let server = records_after_id();
    let ws = Workspace::new();
    // A pipeline as the Go tool's documentation writes one, with its default state directory.
    ws.write(
        "orders.yaml",
        &format!(
            "name: orders-sync\nversion: 1.0.0\ninput:\n  type: httpPolling\n  endpoint: {}\n  \
             dataField: data\n  statePersistence:\n    id:\n      enabled: true\n      \
             field: id\n      queryParam: after_id\n    storagePath: ./canectors-data/state\n\
             filters: []\noutput:\n  type: stdout\n",
            server.url("/orders")
        ),
    );
    // As the Go tool leaves it: the id as a string, instants in nanoseconds with an offset.
    ws.write(
        "canectors-data/state/orders-sync.json",
        "{\n  \"pipelineId\": \"orders-sync\",\n  \"lastId\": \"1\",\n  \"updatedAt\": \
         \"2026-01-26T10:31:02.123456789+01:00\"\n}",
    );

    let out = ws.run(&["run", "--once", "orders.yaml"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        server.requests()[0].param("after_id"),
        Some("1"),
        "the Go tool's cursor was not sent"
    );
    assert_eq!(
        out.stdout,
        "{\"id\":2,\"name\":\"n2\"}\n{\"id\":3,\"name\":\"n3\"}\n"
    );
    let state: Value =
        serde_json::from_str(&ws.read("canectors-data/state/orders-sync.json")).unwrap();
    assert_eq!(state["pipeline"], "orders-sync");
    assert_eq!(state["id"], 3);
    for go_key in ["pipelineId", "lastId", "lastTimestamp", "lastOffset"] {
        assert!(state.get(go_key).is_none(), "{go_key} left in {state}");
    }

    let again = ws.run(&["run", "--once", "orders.yaml"]);
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(again.stdout, "");
    assert_eq!(server.requests()[1].param("after_id"), Some("3"));
}

#[test]
fn a_timestamp_cursor_without_field_sends_the_start_of_the_last_successful_run() {
    let server = Server::start(|_| Response::json(&json!({"data": [{"id": 1}]})));
    let ws = Workspace::new();
    // As the Go tool's pipelines write it: no `field`, the run's start time is the cursor.
    ws.write(
        "events.yaml",
        &format!(
            "name: events\ninput:\n  type: httpPolling\n  endpoint: {}\n  statePersistence:\n    \
             timestamp:\n      enabled: true\n      queryParam: since\n    \
             storagePath: ./canectors-data/state\nfilters: []\noutput:\n  type: stdout\n",
            server.url("/events")
        ),
    );
    let before = chrono::Utc::now();
    let first = ws.run(&["run", "--once", "events.yaml"]);
    let after = chrono::Utc::now();
    assert_eq!(first.code, Some(0), "{first:?}");
    assert_eq!(
        server.requests()[0].param("since"),
        None,
        "nothing to send yet"
    );
    let state: Value = serde_json::from_str(&ws.read("canectors-data/state/events.json")).unwrap();
    let started = chrono::DateTime::parse_from_rfc3339(state["timestamp"].as_str().unwrap())
        .unwrap()
        .to_utc();
    assert!(before <= started && started <= after, "{state}");

    let second = ws.run(&["run", "--once", "events.yaml"]);
    assert_eq!(second.code, Some(0), "{second:?}");
    let sent = server.requests()[1].param("since").unwrap().to_owned();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(&sent)
            .unwrap()
            .to_utc(),
        started,
        "the second run asks for what changed since the first one started"
    );
}
