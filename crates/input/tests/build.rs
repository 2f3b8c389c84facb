//! The input factory against a real HTTP server on 127.0.0.1 and real SQLite files: each input
//! type becomes its source, built from the loaded settings and the loaded state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use cannectors_config::{InputConfig, parse_str};
use cannectors_input::InputError;
use cannectors_state::State;
use cannectors_test_support::reporting::Reporting;
use serde_json::{Value, json};
use wiremock::matchers::{any, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The input of a pipeline file (as JSON) whose input block is `block`.
fn input(block: Value) -> InputConfig {
    let text = json!({"name": "source", "input": block, "output": {"type": "stdout"}});
    parse_str(&text.to_string(), "source.json", &|_| None)
        .unwrap_or_else(|error| panic!("{error}"))
        .pipeline
        .input
}

fn state(text: &str) -> State {
    State::from_json_str(text).unwrap()
}

fn ids(records: &[cannectors_connector::Record]) -> Vec<i64> {
    records
        .iter()
        .map(|r| r.to_value().unwrap()["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn an_http_polling_input_becomes_a_source_that_sends_the_committed_cursor() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/events"))
        .and(query_param("since", "2026-01-01T00:00:00Z"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"events": [{"id": 7}]})))
        .expect(1)
        .mount(&server)
        .await;
    let config = input(json!({
        "type": "httpPolling",
        "endpoint": format!("{}/events", server.uri()),
        "dataField": "events",
        "retry": {"maxAttempts": 0},
        "statePersistence": {"timestamp": {"field": "at", "queryParam": "since"}}
    }));
    let committed = state(r#"{"timestamp": "2026-01-01T00:00:00Z"}"#);
    let mut source = cannectors_input::build(&config, Some(&committed))
        .await
        .unwrap();
    let batch = source.next_batch().await.unwrap().expect("one page");
    assert_eq!(ids(&batch.records), [7]);
    assert!(source.next_batch().await.unwrap().is_none());
}

#[tokio::test]
async fn a_database_input_becomes_a_source_bound_to_the_committed_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rows.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3);",
        )
        .unwrap();
    let config = input(json!({
        "type": "database",
        "connectionString": format!("sqlite://{}", db.display()),
        "query": "SELECT id FROM t WHERE id > COALESCE($1, 0) ORDER BY id",
        "statePersistence": {"id": {"field": "id"}}
    }));
    let mut source = cannectors_input::build(&config, Some(&state(r#"{"id": 1}"#)))
        .await
        .unwrap();
    let batch = source
        .next_batch()
        .await
        .unwrap()
        .expect("the rows after id 1");
    assert_eq!(ids(&batch.records), [2, 3]);
    assert!(source.next_batch().await.unwrap().is_none());
}

#[tokio::test]
async fn a_database_that_cannot_be_opened_fails_the_build_with_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let config = input(json!({
        "type": "database",
        "connectionString": format!("sqlite://{}", missing.display()),
        "query": "SELECT 1 AS id"
    }));
    let error = match cannectors_input::build(&config, None).await {
        Ok(_) => panic!("a source over a file that does not exist"),
        Err(error) => error,
    };
    assert!(matches!(error, InputError::Database(_)), "{error:?}");
    assert!(
        error.to_string().contains(&missing.display().to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn a_source_built_for_a_run_gives_up_its_retry_wait_when_the_run_is_asked_to_stop() {
    let server = MockServer::start().await;
    let (responder, mut arrivals) = Reporting::unavailable_for_20_seconds();
    Mock::given(any())
        .respond_with(responder)
        .mount(&server)
        .await;
    let config = input(json!({
        "type": "httpPolling",
        "endpoint": format!("{}/events", server.uri()),
        "retry": {"maxAttempts": 2, "maxDelayMs": 60000}
    }));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut source = cannectors_input::build_stopping_on(&config, None, stopping)
        .await
        .unwrap();
    let read = tokio::spawn(async move {
        source
            .next_batch()
            .await
            .map(|batch| batch.is_some())
            .map_err(|e| e.to_string())
    });
    arrivals.recv().await.unwrap();
    stop.send(true).unwrap();
    let error = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the wait was not cut short")
        .unwrap()
        .unwrap_err();
    assert!(error.contains("stopped by shutdown"), "{error}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}
