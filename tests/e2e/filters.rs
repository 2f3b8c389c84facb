//! `cannectors run` with filters, against a source API on 127.0.0.1: records arrive shaped,
//! dropped records are not delivered but the cursor moves past them, a failing filter leaves
//! the state file as it was.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::support::Workspace;
use crate::support::http::{Response, Server};

/// A source API answering every request with the orders after `after_id`.
fn orders_api(orders: Vec<Value>) -> (Server, Arc<Mutex<Vec<Value>>>) {
    let orders = Arc::new(Mutex::new(orders));
    let held = Arc::clone(&orders);
    let server = Server::start(move |request| {
        let after: i64 = request
            .param("after_id")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let page: Vec<Value> = held
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o["id"].as_i64().unwrap() > after)
            .cloned()
            .collect();
        Response::json(&json!({ "orders": page }))
    });
    (server, orders)
}

fn order(id: i64, email: &str, amount: Value, status: &str) -> Value {
    json!({"id": id, "email": email, "amount": amount, "status": status, "internal": "x"})
}

fn pipeline(ws: &Workspace, server: &Server, filters: &str) {
    ws.write(
        "orders.yaml",
        &format!(
            "name: orders\n\
             input:\n  type: httpPolling\n  endpoint: {}\n  dataField: orders\n  \
             statePersistence:\n    id: {{enabled: true, field: id, queryParam: after_id}}\n\
             filters:\n{filters}\n\
             output: {{type: file, path: out.jsonl}}\n",
            server.url("/api/orders")
        ),
    );
}

/// A mapping with transforms, a set, a remove, and a condition that drops small orders.
const SHAPE: &str = "  - type: mapping
    mappings:
      - {source: email, target: contact.email, transforms: [{op: trim}, {op: lowercase}]}
      - {source: amount, target: amount, transforms: [{op: toFloat}]}
      - {target: email}
  - {type: set, target: meta.source, value: shop}
  - {type: remove, target: internal}
  - type: condition
    expression: \"status == 'paid' && amount >= 10\"
    then: [{type: set, target: bucket, value: billable}]
    else: [{type: drop}]";

fn delivered(ws: &Workspace) -> Vec<Value> {
    match std::fs::read_to_string(ws.path().join("out.jsonl")) {
        Ok(text) => text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn filters_reshape_records_and_dropped_ones_still_move_the_cursor() {
    let (server, orders) = orders_api(vec![
        order(1, " Ann@Example.COM ", json!("25.5"), "paid"),
        order(2, "bob@example.com", json!(3), "paid"),
        order(3, "cy@example.com", json!(99), "refunded"),
    ]);
    let ws = Workspace::new();
    pipeline(&ws, &server, SHAPE);

    let first = ws.run(&["run", "orders.yaml"]);
    assert_eq!(first.code, Some(0), "{first:?}");
    assert_eq!(
        delivered(&ws),
        [
            json!({"id": 1, "amount": 25.5, "status": "paid", "contact": {"email": "ann@example.com"},
                "meta": {"source": "shop"}, "bucket": "billable"})
        ]
    );
    assert!(
        first
            .stderr
            .contains("read=3 written=1 dropped=2 batches=1"),
        "{first:?}"
    );
    let state: Value = serde_json::from_str(&ws.read(".cannectors-state/orders.json")).unwrap();
    assert_eq!(
        state["id"], 3,
        "the last record was dropped, and the cursor is past it"
    );

    orders
        .lock()
        .unwrap()
        .push(order(4, "dee@example.com", json!(10), "paid"));
    let second = ws.run(&["run", "orders.yaml"]);
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(server.requests()[1].param("after_id"), Some("3"));
    assert_eq!(
        delivered(&ws)
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [1, 4]
    );
}

#[test]
fn a_failing_filter_exits_3_and_leaves_the_state_file_unchanged() {
    let (server, _) = orders_api(vec![
        order(5, "a@example.com", json!("12"), "paid"),
        order(6, "b@example.com", json!("twelve"), "paid"),
    ]);
    let ws = Workspace::new();
    pipeline(
        &ws,
        &server,
        "  - type: mapping\n    mappings: [{source: amount, target: amount, transforms: [{op: toInt}]}]",
    );
    let seed = "{\"id\": 4}\n";
    ws.write(".cannectors-state/orders.json", seed);

    let out = ws.run(&["run", "orders.yaml"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        out.stderr.contains(
            "batch 1: filters[0] (mapping) failed on record 2 of the batch: mappings[0]: \
             transforms[0] of `amount`: `\"twelve\"` (a string) is not a whole number; set \
             `onError: skip` on this filter to leave such records out, or `onError: log` to let \
             them through unchanged; nothing of this batch was delivered, the state is unchanged"
        ),
        "{out:?}"
    );
    assert_eq!(ws.read(".cannectors-state/orders.json"), seed);
    assert!(delivered(&ws).is_empty());
}

#[test]
fn on_error_skip_and_log_deliver_what_they_promise_and_the_summary_counts_skips() {
    let (server, _) = orders_api(vec![
        order(1, "a@example.com", json!("1"), "paid"),
        order(2, "b@example.com", json!("two"), "paid"),
        order(3, "c@example.com", json!(null), "paid"),
    ]);
    let ws = Workspace::new();
    pipeline(
        &ws,
        &server,
        "  - type: mapping\n    onError: skip\n    mappings: [{source: amount, target: amount, transforms: [{op: toInt}]}]\n  \
         - type: mapping\n    onError: log\n    mappings:\n      - {source: email, target: email, transforms: [{op: uppercase}]}\n      \
         - {source: amount, target: checked, onMissing: fail}",
    );

    let out = ws.run(&["run", "orders.yaml"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let records = delivered(&ws);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(
        (&records[0]["email"], &records[0]["checked"]),
        (&json!("A@EXAMPLE.COM"), &json!(1))
    );
    // Record 3 failed the second mapping (onError: log): it goes on as it was before it.
    assert_eq!(
        (&records[1]["email"], &records[1].get("checked")),
        (&json!("c@example.com"), &None)
    );
    assert!(out.stderr.contains("read=3 written=2 skipped=1"), "{out:?}");
    assert!(
        out.stderr
            .contains("filters[0] (mapping) failed: mappings[0]: transforms[0] of `amount`"),
        "the skip is logged: {out:?}"
    );
    assert!(
        out.stderr.contains(
            "filters[1] (mapping) failed: mappings[1]: the source `amount` is absent or null"
        ),
        "the error is logged: {out:?}"
    );
    let state: Value = serde_json::from_str(&ws.read(".cannectors-state/orders.json")).unwrap();
    assert_eq!(state["id"], 3);
}

#[test]
fn a_dry_run_shows_the_records_after_the_filters_and_commits_nothing() {
    let (server, _) = orders_api(vec![
        order(1, "Ann@Example.com", json!(50), "paid"),
        order(2, "bob@example.com", json!(1), "paid"),
    ]);
    let ws = Workspace::new();
    pipeline(&ws, &server, SHAPE);

    let out = ws.run(&["run", "orders.yaml", "--dry-run"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let shown: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        shown,
        [
            json!({"id": 1, "amount": 50.0, "status": "paid", "contact": {"email": "ann@example.com"},
                "meta": {"source": "shop"}, "bucket": "billable"})
        ]
    );
    assert!(out.stderr.contains("dropped=1"), "{out:?}");
    assert!(!ws.path().join(".cannectors-state").exists());
    assert!(delivered(&ws).is_empty());
}

#[test]
fn a_syntax_error_in_an_expression_exits_1_with_its_key_path() {
    let (server, _) = orders_api(Vec::new());
    let ws = Workspace::new();
    pipeline(
        &ws,
        &server,
        "  - {type: set, target: a, value: 1}\n  - type: condition\n    then:\n      \
         - {type: condition, expression: \"amount >> 3\", then: [{type: drop}]}\n    expression: \"true\"",
    );
    for command in ["validate", "run"] {
        let out = ws.run(&[command, "orders.yaml"]);
        assert_eq!(out.code, Some(1), "{command}: {out:?}");
        assert!(
            out.stderr.contains(
                "orders.yaml:12:27: filters[1].then[0].expression: `amount >> 3` is not a valid \
                 expression: at character 9, expected a value, a field name or an opening bracket"
            ),
            "{command}: {out:?}"
        );
    }
    assert!(server.requests().is_empty(), "nothing was fetched");
    assert!(!ws.path().join(".cannectors-state").exists());
}

#[test]
fn a_pipeline_written_for_the_go_tool_runs_its_filters_unchanged() {
    let (server, _) = orders_api(vec![
        json!({"id": 1, "status": "paid", "amount": 30, "card": {"number": "4242", "cvv": "123"}, "phone": "+33 6 12"}),
        json!({"id": 2, "status": "failed", "amount": 5, "card": {"number": "4242", "cvv": "123"}, "phone": "06-12"}),
    ]);
    let ws = Workspace::new();
    // The shapes of the Go tool's own examples: `onError` on a mapping, `confidence`, a mapping
    // entry without source, a double-quoted string in an unquoted expression, nested filters
    // in `then` and `else`, and `targets` on remove.
    pipeline(
        &ws,
        &server,
        r#"  - type: mapping
    onError: log
    mappings:
      - source: phone
        target: phone
        confidence: 0.9
        transforms:
          - op: replace
            pattern: "[^0-9+]"
            replacement: ""
      - target: deprecatedField
  - type: condition
    expression: status == "paid" && amount > 0
    then:
      - type: set
        target: routing.bucket
        value: billable
      - type: mapping
        mappings:
          - source: id
            target: payment.id
    else:
      - type: set
        target: routing.bucket
        value: review
      - type: remove
        targets:
          - card.number
          - card.cvv"#,
    );

    let out = ws.run(&["run", "orders.yaml"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        delivered(&ws),
        [
            json!({"id": 1, "status": "paid", "amount": 30, "card": {"number": "4242", "cvv": "123"},
                   "phone": "+33612", "routing": {"bucket": "billable"}, "payment": {"id": 1}}),
            json!({"id": 2, "status": "failed", "amount": 5, "card": {}, "phone": "0612",
                   "routing": {"bucket": "review"}}),
        ]
    );
}
