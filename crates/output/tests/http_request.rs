//! The `httpRequest` output against a real HTTP server on 127.0.0.1.

#![cfg(test)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cannectors_config::{OutputConfig, parse_str};
use cannectors_connector::{Record, Sink};
use cannectors_test_support::reporting::Reporting;
use serde_json::{Value, json};
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A pipeline file (as JSON) whose output is an httpRequest block with `settings`.
fn pipeline(settings: Value) -> String {
    let mut block = json!({"type": "httpRequest", "retry": {"maxAttempts": 0}});
    for (key, value) in settings.as_object().unwrap() {
        block[key] = value.clone();
    }
    json!({
        "name": "deliver",
        "input": {"type": "httpPolling", "endpoint": "http://127.0.0.1:9/source"},
        "output": block
    })
    .to_string()
}

/// The output of `settings`, loaded as a pipeline is: the only way to get it.
fn config(settings: Value) -> OutputConfig {
    parse_str(&pipeline(settings), "deliver.json", &|_| None)
        .unwrap_or_else(|error| panic!("{error}"))
        .pipeline
        .output
}

fn sink(settings: Value) -> Box<dyn Sink> {
    cannectors_output::build(&config(settings)).unwrap()
}

/// The problems loading `settings` finds, each as `key.path: message`.
fn problems_of(settings: Value) -> Vec<String> {
    parse_str(&pipeline(settings), "deliver.json", &|_| None)
        .unwrap_err()
        .problems()
        .iter()
        .map(|p| format!("{}: {}", p.key_path, p.message))
        .collect()
}

fn records(count: usize) -> Vec<Record> {
    (0..count)
        .map(|id| Record::from(json!({ "id": id })))
        .collect()
}

async fn accepting_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

/// Answers the first `successes` requests with 200 and every later one with `status`.
struct FailAfter {
    successes: usize,
    status: u16,
    body: &'static str,
    seen: Arc<AtomicUsize>,
}

impl Respond for FailAfter {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        if self.seen.fetch_add(1, Ordering::SeqCst) < self.successes {
            ResponseTemplate::new(200)
        } else {
            ResponseTemplate::new(self.status).set_body_string(self.body)
        }
    }
}

#[tokio::test]
async fn batch_mode_splits_a_batch_into_arrays_of_at_most_batch_size() {
    let server = accepting_server().await;
    let mut sink = sink(json!({
        "endpoint": format!("{}/import", server.uri()),
        "batchSize": 2,
        "headers": {"X-Source": "cannectors"},
        "queryParams": {"dataset": "events"},
    }));

    sink.write(&records(5)).await.unwrap();

    let requests = server.received_requests().await.unwrap();
    let bodies: Vec<Value> = requests.iter().map(|r| r.body_json().unwrap()).collect();
    assert_eq!(
        bodies,
        vec![
            json!([{"id": 0}, {"id": 1}]),
            json!([{"id": 2}, {"id": 3}]),
            json!([{"id": 4}])
        ]
    );
    for request in &requests {
        assert_eq!(request.method.as_str(), "POST");
        assert_eq!(request.url.path(), "/import");
        assert_eq!(request.url.query(), Some("dataset=events"));
        assert_eq!(request.headers["x-source"], "cannectors");
        assert_eq!(request.headers["content-type"], "application/json");
    }
}

#[tokio::test]
async fn batch_mode_without_batch_size_sends_the_whole_batch_in_one_request() {
    let server = accepting_server().await;
    let mut sink = sink(json!({"endpoint": format!("{}/import", server.uri()), "method": "PUT"}));

    sink.write(&records(3)).await.unwrap();

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method.as_str(), "PUT");
    assert_eq!(requests[0].body, br#"[{"id":0},{"id":1},{"id":2}]"#);
}

#[tokio::test]
async fn an_empty_batch_sends_nothing() {
    let server = accepting_server().await;
    let mut sink = sink(json!({"endpoint": format!("{}/import", server.uri())}));

    sink.write(&[]).await.unwrap();

    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn single_mode_sends_one_request_a_record_with_the_url_encoded_template() {
    let server = accepting_server().await;
    let mut sink = sink(json!({
        "endpoint": format!("{}/users/{{{{record.user.id}}}}/events?kind={{{{record.kind}}}}", server.uri()),
        "requestMode": "single",
        "method": "PATCH",
    }));
    let batch = [
        json!({"user": {"id": "ada lovelace/1"}, "kind": "a&b=c", "n": 1}),
        json!({"user": {"id": 42}, "kind": "é", "n": 2}),
    ];

    sink.write(&batch.clone().map(Record::from)).await.unwrap();

    let requests = server.received_requests().await.unwrap();
    let urls: Vec<String> = requests
        .iter()
        .map(|r| format!("{}?{}", r.url.path(), r.url.query().unwrap_or("")))
        .collect();
    assert_eq!(
        urls,
        vec![
            "/users/ada%20lovelace%2F1/events?kind=a%26b%3Dc".to_owned(),
            "/users/42/events?kind=%C3%A9".to_owned(),
        ]
    );
    assert_eq!(requests[0].method.as_str(), "PATCH");
    assert_eq!(requests[0].body_json::<Value>().unwrap(), batch[0]);
    assert_eq!(requests[1].body_json::<Value>().unwrap(), batch[1]);
}

#[tokio::test]
async fn single_mode_stops_before_sending_when_a_record_lacks_the_templated_field() {
    let server = accepting_server().await;
    let mut sink = sink(json!({
        "endpoint": format!("{}/users/{{{{record.user.id}}}}", server.uri()),
        "requestMode": "single",
    }));
    let batch = [
        json!({"user": {"id": 1}}),
        json!({"user": {"id": 2}}),
        json!({"user": {}}),
    ];

    let error = sink.write(&batch.map(Record::from)).await.unwrap_err();

    assert_eq!(
        error.to_string(),
        "cannot fill in `{{record.user.id}}` of output.endpoint for the record at position 2 \
         (counting from 0): the record has no such field; nothing of this batch of 3 records was \
         sent and it is not committed: make sure every record has `user.id`, for example with a \
         filter"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_get_request_carries_no_body() {
    let server = accepting_server().await;
    let mut sink = sink(json!({
        "endpoint": format!("{}/ping/{{{{record.id}}}}", server.uri()),
        "requestMode": "single",
        "method": "GET",
    }));

    sink.write(&records(1)).await.unwrap();

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests[0].url.path(), "/ping/0");
    assert!(requests[0].body.is_empty());
    assert!(!requests[0].headers.contains_key("content-type"));
}

#[tokio::test]
async fn any_2xx_is_success_by_default() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let mut sink = sink(json!({"endpoint": server.uri()}));

    sink.write(&records(2)).await.unwrap();
}

#[tokio::test]
async fn configured_success_codes_replace_the_2xx_rule() {
    let server = MockServer::start().await;
    Mock::given(path("/accepted"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    Mock::given(path("/ok"))
        .respond_with(ResponseTemplate::new(200).set_body_string("queued elsewhere"))
        .mount(&server)
        .await;
    let success = json!({"statusCodes": [201, 202]});

    let mut accepted =
        sink(json!({"endpoint": format!("{}/accepted", server.uri()), "success": success}));
    accepted.write(&records(1)).await.unwrap();

    let mut refused = sink(json!({"endpoint": format!("{}/ok", server.uri()), "success": success}));
    let error = refused.write(&records(1)).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "cannot deliver record 0 of a batch of 1 record (positions count from 0): POST \
             {}/ok answered HTTP 200 OK after 1 attempt: queued elsewhere; the request does not \
             accept this status; not delivered: record 0; the batch is not committed and is sent \
             again by the next run",
            server.uri()
        )
    );
}

#[tokio::test]
async fn a_retryable_status_is_retried_by_the_client_and_then_succeeds() {
    let server = MockServer::start().await;
    let seen = Arc::new(AtomicUsize::new(0));
    // First answer 503, then 200: the opposite order of FailAfter, so count by hand.
    let counter = Arc::clone(&seen);
    Mock::given(method("POST"))
        .respond_with(move |_: &Request| {
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                ResponseTemplate::new(503)
            } else {
                ResponseTemplate::new(200)
            }
        })
        .mount(&server)
        .await;
    let mut sink = sink(json!({
        "endpoint": server.uri(),
        "retry": {"maxAttempts": 2, "delayMs": 1},
    }));

    sink.write(&records(2)).await.unwrap();

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body);
}

#[tokio::test]
async fn a_request_that_keeps_failing_names_the_url_status_body_and_undelivered_records() {
    let server = MockServer::start().await;
    let seen = Arc::new(AtomicUsize::new(0));
    Mock::given(any())
        .respond_with(FailAfter {
            successes: 1,
            status: 500,
            body: r#"{"error": "database unavailable"}"#,
            seen: Arc::clone(&seen),
        })
        .mount(&server)
        .await;
    let mut sink = sink(json!({
        "endpoint": format!("{}/import", server.uri()),
        "batchSize": 2,
        "retry": {"maxAttempts": 1, "delayMs": 1},
    }));

    let error = sink.write(&records(5)).await.unwrap_err();

    assert_eq!(
        error.to_string(),
        format!(
            "cannot deliver records 2 to 3 of a batch of 5 records (positions count from 0): POST \
             {}/import answered HTTP 500 Internal Server Error after 2 attempts: {{\"error\": \
             \"database unavailable\"}}; the server kept failing; raise retry.maxAttempts or try \
             again later; not delivered: records 2 to 4; delivered before the failure, and so sent \
             twice: records 0 to 1; the batch is not committed and is sent again by the next run",
            server.uri()
        )
    );
    // One accepted request, then the failing one and its single retry; nothing after it.
    assert_eq!(seen.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn single_mode_names_the_record_whose_request_failed() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(FailAfter {
            successes: 1,
            status: 422,
            body: "bad email",
            seen: Default::default(),
        })
        .mount(&server)
        .await;
    let mut sink = sink(json!({
        "endpoint": format!("{}/users/{{{{record.id}}}}", server.uri()),
        "requestMode": "single",
    }));

    let error = sink.write(&records(3)).await.unwrap_err();

    assert_eq!(
        error.to_string(),
        format!(
            "cannot deliver record 1 of a batch of 3 records (positions count from 0): POST \
             {}/users/1 answered HTTP 422 Unprocessable Entity after 1 attempt: bad email; the \
             server rejected the request; it is not retried; not delivered: records 1 to 2; \
             delivered before the failure, and so sent twice: record 0; the batch is not \
             committed and is sent again by the next run",
            server.uri()
        )
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_slow_destination_fails_after_timeout_ms() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let mut sink = sink(json!({"endpoint": server.uri(), "timeoutMs": 100}));

    let error = tokio::time::timeout(Duration::from_secs(10), sink.write(&records(1)))
        .await
        .unwrap()
        .unwrap_err()
        .to_string();

    assert!(
        error.starts_with("cannot deliver record 0 of a batch of 1 record"),
        "{error}"
    );
    assert!(error.contains("raise timeoutMs"), "{error}");
}

#[tokio::test]
async fn sends_the_configured_authentication_and_keeps_the_api_key_out_of_errors() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(400))
        .mount(&server)
        .await;
    let mut bearer = sink(json!({
        "endpoint": server.uri(),
        "authentication": {"type": "bearer", "credentials": {"token": "t0ken"}},
    }));
    let mut api_key = sink(json!({
        "endpoint": server.uri(),
        "authentication": {
            "type": "api-key",
            "credentials": {"key": "s3cret-key", "location": "query", "paramName": "key"},
        },
    }));

    bearer.write(&records(1)).await.unwrap_err();
    let error = api_key.write(&records(1)).await.unwrap_err().to_string();

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests[0].headers["authorization"], "Bearer t0ken");
    assert_eq!(requests[1].url.query(), Some("key=s3cret-key"));
    assert!(!error.contains("s3cret-key"), "{error}");
}

#[test]
fn settings_that_cannot_work_are_refused_when_the_pipeline_is_loaded() {
    // The sink is built from loaded settings only, so each of these stops at loading, with the
    // key path, and no sink is ever built from it.
    let single = |endpoint: &str| json!({"endpoint": endpoint, "requestMode": "single"});
    let cases = [
        (
            json!({"endpoint": "http://127.0.0.1:9/users/{{record.id}}"}),
            "output.endpoint: {{record.*}} is filled only in the endpoint of an httpRequest \
             output with `requestMode: single`; remove it here or send one request a record",
        ),
        (
            single("http://127.0.0.1:9/{{state.id}}"),
            "output.endpoint: {{state.*}} is filled only in an httpPolling input (endpoint, \
             headers, queryParams, body); remove it here",
        ),
        (
            single("http://127.0.0.1:9/{{record.id"),
            "output.endpoint: a `{{` is not closed by `}}`",
        ),
        (
            single("http://127.0.0.1:9/{{ now }}"),
            "output.endpoint: `{{now}}` is not a placeholder; use {{state.timestamp}}, \
             {{state.id}}, {{state.offset}} or {{record.<path>}}",
        ),
        (
            json!({"endpoint": "ftp://127.0.0.1/import"}),
            "output.endpoint: `ftp://127.0.0.1/import` uses the scheme `ftp`; write an http:// \
             or https:// URL such as https://api.example.com/v1/items",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:9/import", "batchSize": 0}),
            "output.batchSize: batchSize must be more than 0",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:9/import", "timeoutMs": 0}),
            "output.timeoutMs: timeoutMs must be more than 0; remove it for the default 30000",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:9/import", "success": {"statusCodes": []}}),
            "output.success.statusCodes: statusCodes is empty, so no response would count as \
             delivered; list codes or remove `success` (default: any 2xx)",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:9/import", "success": {"statusCodes": [200, 2000]}}),
            "output.success.statusCodes[1]: 2000 is not an HTTP status code (100 to 599)",
        ),
        (
            json!({
                "endpoint": "http://127.0.0.1:9/import",
                "authentication": {"type": "bearer", "credentials": {}},
            }),
            "output.authentication.credentials.token: bearer authentication needs \
             `credentials.token`",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:9/import", "headers": {"X-Id": "{{record.id}}"}}),
            "output.headers.X-Id: {{record.*}} is filled only in the endpoint of an httpRequest \
             output with `requestMode: single`; remove it here or send one request a record",
        ),
    ];
    for (settings, message) in cases {
        assert_eq!(problems_of(settings), [message]);
    }
}

#[tokio::test]
async fn a_sink_built_for_a_run_gives_up_its_retry_wait_when_the_run_is_asked_to_stop() {
    let server = MockServer::start().await;
    let (responder, mut arrivals) = Reporting::unavailable_for_20_seconds();
    Mock::given(any())
        .respond_with(responder)
        .mount(&server)
        .await;
    let settings = json!({
        "endpoint": format!("{}/import", server.uri()),
        "retry": {"maxAttempts": 2, "maxDelayMs": 60000}
    });
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut sink = cannectors_output::build_stopping_on(&config(settings), stopping).unwrap();
    let write =
        tokio::spawn(async move { sink.write(&records(2)).await.map_err(|e| e.to_string()) });
    arrivals.recv().await.unwrap();
    stop.send(true).unwrap();
    let error = tokio::time::timeout(Duration::from_secs(10), write)
        .await
        .expect("the wait was not cut short")
        .unwrap()
        .unwrap_err();
    assert!(
        error.contains(&format!(
            "POST {}/import: stopped by shutdown while waiting to try again after 1 failed \
             attempt; not delivered: records 0 to 1",
            server.uri()
        )),
        "{error}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn success_expression_must_hold_for_the_response_as_well_as_the_status() {
    let server = MockServer::start().await;
    Mock::given(path("/ok"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("X-Import", "done")
                .set_body_json(json!({"ok": true, "accepted": 2})),
        )
        .mount(&server)
        .await;
    Mock::given(path("/partial"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"ok": false, "errors": ["row 2"]})),
        )
        .mount(&server)
        .await;
    Mock::given(path("/created"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"ok": true})))
        .mount(&server)
        .await;
    let success = |expression: &str| json!({"statusCodes": [200], "expression": expression});
    let expression =
        "status == 200 && body.ok == true && headers['x-import'] == 'done' && body.accepted == 2";

    let mut ok =
        sink(json!({"endpoint": format!("{}/ok", server.uri()), "success": success(expression)}));
    ok.write(&records(2)).await.unwrap();
    // The example of docs/outputs.md.
    let documented = "body.ok == true && len(body.errors ?? []) == 0";
    let mut ok =
        sink(json!({"endpoint": format!("{}/ok", server.uri()), "success": success(documented)}));
    ok.write(&records(1)).await.unwrap();
    let mut partial = sink(
        json!({"endpoint": format!("{}/partial", server.uri()), "success": success(documented)}),
    );
    assert!(partial.write(&records(1)).await.is_err());

    let mut partial = sink(
        json!({"endpoint": format!("{}/partial", server.uri()), "success": success("body.ok")}),
    );
    let error = partial.write(&records(2)).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "cannot deliver records 0 to 1 of a batch of 2 records (positions count from 0): POST \
             {}/partial answered HTTP 200, but output.success.expression `body.ok` does not hold \
             for the response (body: {{\"ok\":false,\"errors\":[\"row 2\"]}}); not delivered: \
             records 0 to 1; the batch is not committed and is sent again by the next run",
            server.uri()
        )
    );
    let partial_requests = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/partial")
        .count();
    assert_eq!(partial_requests, 2, "an answered request is not retried");

    // Both must hold: an expression that holds does not accept a status outside statusCodes.
    let mut created = sink(
        json!({"endpoint": format!("{}/created", server.uri()), "success": success("body.ok")}),
    );
    assert!(created.write(&records(1)).await.is_err());
    // Without statusCodes, the expression adds to the default rule (any 2xx).
    let mut created = sink(
        json!({"endpoint": format!("{}/created", server.uri()), "success": {"expression": "body.ok"}}),
    );
    created.write(&records(1)).await.unwrap();
}

#[tokio::test]
async fn a_success_expression_that_cannot_be_evaluated_refuses_the_batch() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string("plain text"))
        .mount(&server)
        .await;
    let mut sink =
        sink(json!({"endpoint": server.uri(), "success": {"expression": "body.ok == true"}}));

    let error = sink.write(&records(1)).await.unwrap_err().to_string();
    assert!(
        error.contains(
            "but output.success.expression could not be checked: cannot evaluate `body.ok == true`"
        ),
        "{error}"
    );
    assert!(error.contains("(body: plain text)"), "{error}");
}

#[test]
fn success_settings_are_checked_when_the_pipeline_is_loaded() {
    let endpoint = "http://127.0.0.1:9/import";
    assert_eq!(
        problems_of(json!({"endpoint": endpoint, "success": {"expression": "body.ok =="}})),
        [
            "output.success.expression: `body.ok ==` is not a valid expression: at character 11, \
          expected a value, a field name or an opening bracket"
        ]
    );
    assert_eq!(
        problems_of(json!({"endpoint": endpoint, "success": {}})),
        [
            "output.success: `success` says nothing: give `statusCodes`, `expression` or both, or \
          remove it (default: any 2xx)"
        ]
    );
}

/// Answers 422 to the requests for the given record ids, 200 to the others.
struct RefuseIds(&'static [&'static str], u16);

impl Respond for RefuseIds {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = request.url.path().rsplit('/').next().unwrap_or_default();
        if self.0.contains(&id) {
            ResponseTemplate::new(self.1).set_body_string("email already taken")
        } else {
            ResponseTemplate::new(200)
        }
    }
}

#[tokio::test]
async fn single_mode_on_error_skip_and_log_leave_out_the_records_the_destination_refuses() {
    for on_error in ["skip", "log"] {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(RefuseIds(&["1", "3"], 422))
            .mount(&server)
            .await;
        let mut sink = sink(json!({
            "endpoint": format!("{}/users/{{{{record.id}}}}", server.uri()),
            "requestMode": "single",
            "onError": on_error,
        }));

        sink.write(&records(5)).await.unwrap();

        // Every record was tried once, the refused ones included, and counted for refused=.
        assert_eq!(server.received_requests().await.unwrap().len(), 5);
        assert_eq!(sink.refused(), 2, "{on_error}");
        sink.write(&records(2)).await.unwrap();
        assert_eq!(sink.refused(), 3, "{on_error}");
    }
}

#[tokio::test]
async fn single_mode_on_error_skip_still_fails_when_the_refusal_is_not_about_the_record() {
    for status in [401, 403, 429, 500, 503] {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(RefuseIds(&["1"], status))
            .mount(&server)
            .await;
        let mut sink = sink(json!({
            "endpoint": format!("{}/users/{{{{record.id}}}}", server.uri()),
            "requestMode": "single",
            "onError": "skip",
        }));

        let error = sink.write(&records(3)).await.unwrap_err().to_string();

        assert!(
            error.starts_with("cannot deliver record 1 of a batch of 3 records"),
            "{status}: {error}"
        );
        assert_eq!(sink.refused(), 0);
    }
    // No answer at all: the destination is down, not the record wrong.
    let mut sink = sink(json!({
        "endpoint": "http://127.0.0.1:9/users/{{record.id}}",
        "requestMode": "single",
        "onError": "skip",
    }));
    let error = sink.write(&records(1)).await.unwrap_err().to_string();
    assert!(error.starts_with("cannot deliver record 0"), "{error}");
}

#[tokio::test]
async fn single_mode_on_error_skip_leaves_out_a_response_success_expression_rejects() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": false})))
        .mount(&server)
        .await;
    let mut sink = sink(json!({
        "endpoint": format!("{}/users/{{{{record.id}}}}", server.uri()),
        "requestMode": "single",
        "onError": "skip",
        "success": {"expression": "body.ok == true"},
    }));

    sink.write(&records(2)).await.unwrap();

    assert_eq!(sink.refused(), 2);
}

#[test]
fn on_error_in_batch_mode_is_a_warning_that_it_has_no_effect() {
    let loaded = parse_str(
        &pipeline(json!({"endpoint": "http://127.0.0.1:9/import", "onError": "skip"})),
        "deliver.json",
        &|_| None,
    )
    .unwrap();
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].contains(
            "output.onError (line 1): has no effect in batch mode: a request carries many records"
        ),
        "{:?}",
        loaded.warnings
    );
}
