//! `retry.retryHintFromBody` against a real HTTP server on 127.0.0.1: the JSON body of a
//! response with a retryable status can say not to retry it.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cannectors_config::{OutputConfig, RetryConfig, parse_str};
use cannectors_connector::http::{HttpClient, HttpMethod, HttpRequest};
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn pipeline(retry: Value) -> String {
    json!({
        "name": "p",
        "input": {"type": "httpPolling", "endpoint": "http://127.0.0.1:9/"},
        "output": {"type": "httpRequest", "endpoint": "http://127.0.0.1:9/items", "retry": retry},
    })
    .to_string()
}

/// A `retry` block with a hint and short delays, loaded as a pipeline file is.
fn retry_with(hint: &str) -> RetryConfig {
    let retry =
        json!({"maxAttempts": 3, "delayMs": 10, "maxDelayMs": 20, "retryHintFromBody": hint});
    match parse_str(&pipeline(retry), "p.json", &|_| None)
        .unwrap_or_else(|error| panic!("{error}"))
        .pipeline
        .output
    {
        OutputConfig::HttpRequest(output) => output.retry,
        other => panic!("{other:?}"),
    }
}

fn client(retry: RetryConfig) -> HttpClient {
    HttpClient::builder()
        .timeout(Duration::from_secs(5))
        .retry(&retry)
        .build()
        .unwrap()
}

/// Answers 503 with `body` the first time, then 200.
struct FailsOnce {
    seen: Arc<AtomicUsize>,
    body: ResponseTemplate,
}

impl Respond for FailsOnce {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        if self.seen.fetch_add(1, Ordering::SeqCst) == 0 {
            self.body.clone()
        } else {
            ResponseTemplate::new(200).set_body_string("[]")
        }
    }
}

async fn server_failing_once_with(body: ResponseTemplate) -> (MockServer, Arc<AtomicUsize>) {
    let server = MockServer::start().await;
    let seen = Arc::new(AtomicUsize::new(0));
    Mock::given(path("/items"))
        .respond_with(FailsOnce {
            seen: Arc::clone(&seen),
            body,
        })
        .mount(&server)
        .await;
    (server, seen)
}

const HINT: &str = "body.error.code != 'PERMANENT'";

fn get(server: &MockServer) -> HttpRequest {
    HttpRequest::new(HttpMethod::Get, &format!("{}/items", server.uri())).unwrap()
}

#[tokio::test]
async fn a_body_the_hint_is_false_for_is_not_retried() {
    let (server, seen) = server_failing_once_with(
        ResponseTemplate::new(503).set_body_json(json!({"error": {"code": "PERMANENT"}})),
    )
    .await;

    let error = client(retry_with(HINT))
        .send(get(&server))
        .await
        .unwrap_err();

    assert_eq!(seen.load(Ordering::SeqCst), 1, "one request, no retry");
    assert_eq!(
        error.to_string(),
        format!(
            "GET {}/items answered HTTP 503 Service Unavailable after 1 attempt: \
             {{\"error\":{{\"code\":\"PERMANENT\"}}}}; retry.retryHintFromBody is false for this \
             response, so it was not retried",
            server.uri()
        )
    );
}

#[tokio::test]
async fn a_body_the_hint_holds_for_is_retried() {
    let (server, seen) = server_failing_once_with(
        ResponseTemplate::new(503).set_body_json(json!({"error": {"code": "BUSY"}})),
    )
    .await;

    client(retry_with(HINT)).send(get(&server)).await.unwrap();

    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_body_that_is_not_json_falls_back_to_the_status_code() {
    let (server, seen) =
        server_failing_once_with(ResponseTemplate::new(503).set_body_string("<html>busy</html>"))
            .await;

    client(retry_with(HINT)).send(get(&server)).await.unwrap();

    assert_eq!(seen.load(Ordering::SeqCst), 2, "retried on the status code");
}

#[tokio::test]
async fn a_hint_that_cannot_be_evaluated_falls_back_to_the_status_code() {
    let (server, seen) =
        server_failing_once_with(ResponseTemplate::new(503).set_body_json(json!(["a", "list"])))
            .await;

    client(retry_with("body.error.code > 3"))
        .send(get(&server))
        .await
        .unwrap();

    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

#[test]
fn a_hint_with_a_syntax_error_is_reported_at_its_key_path() {
    let error = parse_str(
        &pipeline(json!({"retryHintFromBody": "body.code =="})),
        "p.json",
        &|_| None,
    )
    .unwrap_err();
    let problems: Vec<String> = error
        .problems()
        .iter()
        .map(|p| format!("{}: {}", p.key_path, p.message))
        .collect();
    assert_eq!(
        problems,
        [
            "output.retry.retryHintFromBody: `body.code ==` is not a valid expression: at character \
          13, expected a value, a field name or an opening bracket"
        ]
    );
}
