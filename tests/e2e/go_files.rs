//! Files written for or by the Go tool this project descends from: its state files, and its
//! pipeline files as its documentation describes them, run here unchanged.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::http::{Response, Server};
use crate::support::{Outcome, Workspace, output_within};

/// Pipeline files written in the Go tool's format, as its documentation describes them.
const PRODUCTS: &str = include_str!("go_files/products-to-warehouse.yaml");
const UPSERT_PRODUCT: &str = include_str!("go_files/sql/upsert_product.sql");
const INVOICES: &str = include_str!("go_files/invoices-cursor-oauth2.yaml");
const ACCOUNTS_DEFAULTS: &str = include_str!("go_files/accounts-defaults.yaml");

/// Runs the binary in `ws` with `env` set, for at most 60 seconds.
fn run_with_env(ws: &Workspace, args: &[&str], env: &[(&str, String)]) -> Outcome {
    let mut command = ws.command(args);
    for (name, value) in env {
        command.env(name, value);
    }
    output_within(command, Duration::from_secs(60))
}

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

#[test]
fn a_go_pipeline_with_offset_pages_run_start_state_and_a_database_output_runs_unchanged() {
    // Five products over three pages of two; the third has no sku, which the warehouse
    // refuses. The first request meets a 503 once: `maxAttempts: 1` is one retry.
    let failed_once = Arc::new(AtomicUsize::new(0));
    let failures = Arc::clone(&failed_once);
    let server = Server::start(move |request| {
        if failures.fetch_add(1, Ordering::SeqCst) == 0 {
            return Response::status(503, "warming up");
        }
        let after: i64 = request
            .param("after_id")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let offset: usize = request
            .param("offset")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let all: Vec<Value> = (1..=5)
            .filter(|id| *id > after)
            .map(|id| {
                let sku = if id == 3 { Value::Null } else { json!(format!("SKU-{id}")) };
                json!({"id": id, "sku": sku, "price": id * 10, "updated_at": "2026-01-01T00:00:00Z"})
            })
            .collect();
        let page: Vec<Value> = all.iter().skip(offset).take(2).cloned().collect();
        Response::json(&json!({"products": page, "total": all.len()}))
    });
    let ws = Workspace::new();
    ws.write("products.yaml", PRODUCTS);
    ws.write("sql/upsert_product.sql", UPSERT_PRODUCT);
    let warehouse = ws.path().join("warehouse.db");
    rusqlite::Connection::open(&warehouse)
        .unwrap()
        .execute_batch(
            "CREATE TABLE products (product_id INTEGER PRIMARY KEY, sku TEXT NOT NULL, \
             price REAL, updated_at TEXT);",
        )
        .unwrap();
    let env = [
        ("SOURCE_URL", server.url("")),
        (
            "WAREHOUSE_DATABASE_URL",
            format!("sqlite://{}", warehouse.display()),
        ),
    ];

    let validated = run_with_env(&ws, &["validate", "products.yaml"], &env);
    assert_eq!(validated.code, Some(0), "{validated:?}");
    let first = run_with_env(&ws, &["run", "--once", "products.yaml"], &env);
    assert_eq!(first.code, Some(0), "{first:?}");
    let requests = server.requests();
    assert_eq!(requests[0].param("offset"), Some("0"));
    assert_eq!(
        requests[1].param("offset"),
        Some("0"),
        "the 503 was retried once"
    );
    assert_eq!(requests[1].param("limit"), Some("2"));
    assert_eq!(requests.len(), 4, "offsets 0, 2 and 4 after the retry");
    // onError: log: the refused product is logged with the database's words, the rest stored.
    assert!(
        first.stderr.contains("the database refused record ")
            && first
                .stderr
                .contains("NOT NULL constraint failed: products.sku"),
        "{first:?}"
    );
    let ids: Vec<i64> = rusqlite::Connection::open(&warehouse)
        .unwrap()
        .prepare("SELECT product_id FROM products ORDER BY product_id")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ids, [1, 2, 4, 5]);
    let state: Value =
        serde_json::from_str(&ws.read("canectors-data/state/products-to-warehouse.json")).unwrap();
    assert_eq!(state["id"], 5, "{state}");
    assert!(state["timestamp"].is_string(), "{state}");

    let second = run_with_env(&ws, &["run", "--once", "products.yaml"], &env);
    assert_eq!(second.code, Some(0), "{second:?}");
    let next = &server.requests()[4];
    assert_eq!(next.param("after_id"), Some("5"));
    assert_eq!(
        next.param("updated_after"),
        state["timestamp"].as_str(),
        "the start of the first run"
    );
}

#[test]
fn a_go_pipeline_with_cursor_pages_oauth2_and_output_retries_runs_unchanged() {
    let source = Server::start(|request| match request.path.as_str() {
        "/oauth/token" => {
            let form = String::from_utf8_lossy(&request.body).into_owned();
            // As the Go tool sends them: the client credentials in the form body.
            if form.contains("client_id=invoices-client")
                && form.contains("client_secret=s3cret")
                && form.contains("scope=invoices.read+customers.read")
            {
                Response::json(&json!({"access_token": "tok-1", "expires_in": 3600}))
            } else {
                Response::status(401, "invalid_client")
            }
        }
        _ if request.headers.get("authorization").map(String::as_str) != Some("Bearer tok-1") => {
            Response::status(401, "no token")
        }
        _ => match request.param("cursor") {
            None => Response::json(&json!({"items": [{"id": 1}, {"id": 2}], "next_cursor": "c2"})),
            // An API that says "no more pages" with false.
            Some("c2") => {
                Response::json(&json!({"items": [{"id": 3}, {"id": 4}], "next_cursor": false}))
            }
            Some(other) => Response::status(400, &format!("unknown cursor {other}")),
        },
    });
    let refused = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&refused);
    let destination = Server::start(move |_| {
        // Two 503s, then success: `maxAttempts: 2` is two retries.
        if count.fetch_add(1, Ordering::SeqCst) < 2 {
            Response::status(503, "busy")
        } else {
            Response::status(202, "")
        }
    });
    let ws = Workspace::new();
    ws.write("invoices.yaml", INVOICES);
    let env = [
        ("SOURCE_URL", source.url("")),
        ("SOURCE_CLIENT_ID", "invoices-client".to_owned()),
        ("SOURCE_CLIENT_SECRET", "s3cret".to_owned()),
        ("DESTINATION_URL", destination.url("")),
    ];

    let validated = run_with_env(&ws, &["validate", "invoices.yaml"], &env);
    assert_eq!(validated.code, Some(0), "{validated:?}");
    let out = run_with_env(&ws, &["run", "--once", "invoices.yaml"], &env);
    assert_eq!(out.code, Some(0), "{out:?}");
    let pages: Vec<Option<String>> = source
        .requests()
        .iter()
        .filter(|r| r.path == "/api/invoices")
        .map(|r| r.param("cursor").map(str::to_owned))
        .collect();
    assert_eq!(pages, [None, Some("c2".to_owned())]);
    let delivered: Vec<Value> = destination
        .requests()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(
        delivered,
        [
            json!([{"id": 1}, {"id": 2}]),
            json!([{"id": 1}, {"id": 2}]),
            json!([{"id": 1}, {"id": 2}]),
            json!([{"id": 3}, {"id": 4}]),
        ]
    );
    assert!(!out.stderr.contains("s3cret"), "{out:?}");
}

/// Answers `failures` times with `status`, then with `then`.
fn failing_then(failures: usize, status: u16, then: Value) -> Server {
    let seen = Arc::new(AtomicUsize::new(0));
    Server::start(move |_| {
        if seen.fetch_add(1, Ordering::SeqCst) < failures {
            Response::status(status, "try again")
        } else {
            Response::json(&then)
        }
    })
}

#[test]
fn the_defaults_block_of_a_go_pipeline_reaches_the_modules_that_set_nothing_themselves() {
    // Twice unavailable: within the two retries of defaults.retry.
    let source = failing_then(
        2,
        503,
        json!({"accounts": [{"id": 7, "name": "Ada"}, {"id": "x-9", "name": "Bob"}]}),
    );
    // Three failures: beyond defaults.retry, within the output's own retry block (4).
    let destination = failing_then(3, 500, json!({"ok": true}));
    let ws = Workspace::new();
    ws.write("accounts.yaml", ACCOUNTS_DEFAULTS);
    let env = [
        ("SOURCE_URL", source.url("")),
        ("DESTINATION_URL", destination.url("")),
    ];

    let validated = run_with_env(&ws, &["validate", "accounts.yaml"], &env);
    assert_eq!(validated.code, Some(0), "{validated:?}");
    assert!(!validated.stderr.contains("warning"), "{validated:?}");
    let out = run_with_env(&ws, &["run", "--once", "accounts.yaml"], &env);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        source.requests().len(),
        3,
        "the first attempt and two retries"
    );
    let delivered: Vec<Value> = destination
        .requests()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(delivered.len(), 4, "the output's own retry block wins");
    // The second mapping sets no onError and inherits `log` from defaults: the record whose id
    // is not a number goes on as it was before that mapping instead of failing the run.
    assert_eq!(
        delivered[3],
        json!([
            {"id": 7, "name": "Ada", "account": {"id": 7, "name": "Ada", "number": 7}},
            {"id": "x-9", "name": "Bob", "account": {"id": "x-9", "name": "Bob"}}
        ])
    );
    assert!(
        out.stderr.contains("filters[1] (mapping) failed"),
        "{out:?}"
    );
    assert!(out.stderr.contains("(onError: log)"), "{out:?}");

    // Without the defaults block the same file fails on that record.
    let without = ACCOUNTS_DEFAULTS.replace("  onError: log\n", "");
    assert!(!without.contains("onError: log"));
    ws.write("accounts.yaml", &without);
    let source = failing_then(0, 503, json!({"accounts": [{"id": "x-9", "name": "Bob"}]}));
    let env = [
        ("SOURCE_URL", source.url("")),
        ("DESTINATION_URL", destination.url("")),
    ];
    let out = run_with_env(&ws, &["run", "--once", "accounts.yaml"], &env);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        out.stderr
            .contains("filters[1] (mapping) failed on record 1"),
        "{out:?}"
    );
}

#[test]
fn a_bad_value_in_the_defaults_block_is_reported_where_it_was_written() {
    let ws = Workspace::new();
    ws.write(
        "accounts.yaml",
        &ACCOUNTS_DEFAULTS
            .replace("onError: log", "onError: sometimes")
            .replace("maxAttempts: 2", "maxAtempts: 2"),
    );
    let env = [
        ("SOURCE_URL", "http://127.0.0.1:9".to_owned()),
        ("DESTINATION_URL", "http://127.0.0.1:9".to_owned()),
    ];
    let out = run_with_env(&ws, &["validate", "accounts.yaml"], &env);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("accounts.yaml:9:3: defaults.onError: unknown value `sometimes`"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains(
            "accounts.yaml:11:5: defaults.retry.maxAtempts: unknown key `maxAtempts`; did you \
             mean `maxAttempts`?"
        ),
        "{out:?}"
    );
    assert!(!out.stderr.contains("filters[1].onError"), "{out:?}");
    assert!(!out.stderr.contains("input.retry"), "{out:?}");
    assert!(
        out.stderr.contains("2 problems"),
        "each reported once: {out:?}"
    );
}

/// A destination that answers `status` to the request for record 2 and 200 to the others.
fn refusing_record_2(status: u16) -> Server {
    Server::start(move |request| {
        if request.path == "/accounts/2" {
            Response::status(status, "{\"error\": \"email already taken\"}")
        } else {
            Response::json(&json!({"ok": true}))
        }
    })
}

const PUSH_ACCOUNTS: &str = "name: push-accounts
input:
  type: httpPolling
  endpoint: ${SOURCE_URL}/orders
  dataField: data
  statePersistence:
    id: {field: id, queryParam: after_id}
    storagePath: ./state
output:
  type: httpRequest
  endpoint: ${DESTINATION_URL}/accounts/{{record.id}}
  method: PUT
  requestMode: single
  retry: {maxAttempts: 0}
  onError: log
";

#[test]
fn an_http_output_under_on_error_log_leaves_out_a_record_the_destination_refuses() {
    let source = records_after_id();
    let destination = refusing_record_2(422);
    let ws = Workspace::new();
    ws.write("push.yaml", PUSH_ACCOUNTS);
    let env = [
        ("SOURCE_URL", source.url("")),
        ("DESTINATION_URL", destination.url("")),
    ];

    let out = run_with_env(&ws, &["run", "--once", "push.yaml"], &env);

    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains(" read=3 written=2 refused=1 "),
        "{out:?}"
    );
    assert!(
        out.stderr.contains(
            "the destination refused record 1 of the batch, left out (output.onError: log)"
        ),
        "{out:?}"
    );
    assert!(out.stderr.contains("email already taken"), "{out:?}");
    let paths: Vec<String> = destination
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(paths, ["/accounts/1", "/accounts/2", "/accounts/3"]);
    let state: Value = serde_json::from_str(&ws.read("state/push-accounts.json")).unwrap();
    assert_eq!(state["id"], 3, "the cursor moves past the refused record");
}

#[test]
fn an_http_output_under_on_error_log_still_fails_when_the_destination_is_in_trouble() {
    let source = records_after_id();
    let destination = refusing_record_2(503);
    let ws = Workspace::new();
    ws.write("push.yaml", PUSH_ACCOUNTS);
    let env = [
        ("SOURCE_URL", source.url("")),
        ("DESTINATION_URL", destination.url("")),
    ];

    let out = run_with_env(&ws, &["run", "--once", "push.yaml"], &env);

    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        out.stderr
            .contains("cannot deliver record 1 of a batch of 3 records"),
        "{out:?}"
    );
    assert!(
        !ws.path().join("state/push-accounts.json").exists(),
        "nothing is committed"
    );
}
