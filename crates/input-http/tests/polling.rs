//! The httpPolling source against real HTTP servers on 127.0.0.1: pagination and its stop
//! rules, cursors in requests, templates, resuming, and the errors a user can meet.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use cannectors_config::{HttpPollingInput, InputConfig, parse_str};
use cannectors_connector::{Batch, Checkpoint, Source};
use cannectors_input_http::HttpPollingSource;
use cannectors_state::State;
use cannectors_test_support::credentials::in_wiremock_request;
use cannectors_test_support::reporting::Reporting;
use serde_json::{Value, json};
use wiremock::matchers::{
    body_json, body_string, header, method, path, query_param, query_param_is_missing,
};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A pipeline file (as JSON) whose input is `config`, an httpPolling block without its `type`.
fn pipeline(config: Value) -> String {
    let mut config = config;
    config["type"] = json!("httpPolling");
    // Keep failing tests fast: one attempt unless a test asks for retries.
    if config.get("retry").is_none() {
        config["retry"] = json!({"maxAttempts": 0});
    }
    json!({"name": "polling", "input": config, "output": {"type": "stdout"}}).to_string()
}

/// The settings of `config`, loaded as a pipeline is: the only way to get them.
fn input(config: Value) -> HttpPollingInput {
    let loaded = parse_str(&pipeline(config), "polling.json", &|_| None)
        .unwrap_or_else(|error| panic!("{error}"));
    match loaded.pipeline.input {
        InputConfig::HttpPolling(input) => input,
        other => panic!("not an httpPolling input: {other:?}"),
    }
}

fn state(text: &str) -> State {
    State::from_json_str(text).unwrap()
}

fn source(config: Value, state: Option<&State>) -> HttpPollingSource {
    HttpPollingSource::new(&input(config), state).unwrap()
}

/// Every batch of a run, and the error that ended it, if any.
async fn run(source: &mut HttpPollingSource) -> (Vec<Batch>, Option<String>) {
    let mut batches = Vec::new();
    for _ in 0..100 {
        match source.next_batch().await {
            Ok(Some(batch)) => batches.push(batch),
            Ok(None) => return (batches, None),
            Err(error) => return (batches, Some(error.to_string())),
        }
    }
    panic!("the run did not end within 100 batches");
}

async fn complete_run(source: &mut HttpPollingSource) -> Vec<Batch> {
    let (batches, error) = run(source).await;
    assert_eq!(error, None);
    batches
}

fn ids(batches: &[Batch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.records
                .iter()
                .map(|r| r.to_value().unwrap()["id"].as_i64().unwrap())
        })
        .collect()
}

/// The saved position of a batch, without the fingerprint of its page (`previousPage`), which
/// the tests of repeated pages look at on their own.
fn resume(batch: &Batch) -> Value {
    let mut resume = saved_resume(batch).clone();
    if let Value::Object(map) = &mut resume {
        map.remove("previousPage");
    }
    resume
}

fn saved_resume(batch: &Batch) -> &Value {
    match &batch.checkpoint {
        Checkpoint::Progress { resume, .. } => resume,
        other => panic!("expected progress, got {other:?}"),
    }
}

fn records(range: std::ops::Range<i64>) -> Vec<Value> {
    range.map(|id| json!({"id": id})).collect()
}

async fn page(server: &MockServer, param: &str, value: &str, body: Value) {
    Mock::given(path("/items"))
        .and(query_param(param, value))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn without_pagination_one_request_yields_the_root_array() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(200).set_body_json(records(1..4)))
        .expect(1)
        .mount(&server)
        .await;
    let mut source = source(json!({"endpoint": format!("{}/items", server.uri())}), None);
    let batches = complete_run(&mut source).await;
    assert_eq!(ids(&batches), vec![1, 2, 3]);
    assert_eq!(resume(&batches[0]), json!({"complete": true}));
}

#[tokio::test]
async fn page_pagination_stops_after_the_last_page_announced() {
    let server = MockServer::start().await;
    for (n, range) in [(1, 1..3), (2, 3..5), (3, 5..7)] {
        page(
            &server,
            "page",
            &n.to_string(),
            json!({"data": records(range), "pages": 3}),
        )
        .await;
    }
    let mut source = source(
        json!({
            "endpoint": format!("{}/items", server.uri()),
            "pagination": {"type": "page", "limit": 2, "limitParam": "per_page", "totalPagesField": "pages"}
        }),
        None,
    );
    let batches = complete_run(&mut source).await;
    assert_eq!(ids(&batches), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(resume(&batches[0]), json!({"page": 2}));
    assert_eq!(resume(&batches[2]), json!({"complete": true}));
    let requests = server.received_requests().await.unwrap();
    assert!(
        requests
            .iter()
            .all(|r| r.url.query().unwrap().contains("per_page=2"))
    );
}

#[tokio::test]
async fn page_pagination_stops_on_a_page_shorter_than_the_limit() {
    let server = MockServer::start().await;
    page(&server, "page", "0", json!(records(1..3))).await;
    page(&server, "page", "1", json!(records(3..4))).await;
    let mut source = source(
        json!({
            "endpoint": format!("{}/items", server.uri()),
            "pagination": {"type": "page", "limit": 2, "startPage": 0}
        }),
        None,
    );
    assert_eq!(ids(&complete_run(&mut source).await), vec![1, 2, 3]);
}

#[tokio::test]
async fn an_empty_page_ends_the_run_without_a_batch() {
    let server = MockServer::start().await;
    page(&server, "page", "1", json!({"items": records(1..3)})).await;
    page(&server, "page", "2", json!({"items": []})).await;
    let mut source = source(
        json!({"endpoint": format!("{}/items", server.uri()), "pagination": {"type": "page"}}),
        None,
    );
    let batches = complete_run(&mut source).await;
    assert_eq!(batches.len(), 1);
    assert_eq!(resume(&batches[0]), json!({"page": 2}));
}

#[tokio::test]
async fn offset_pagination_stops_when_the_offset_reaches_the_total() {
    let server = MockServer::start().await;
    page(
        &server,
        "offset",
        "0",
        json!({"results": records(1..3), "meta": {"total": 4}}),
    )
    .await;
    page(
        &server,
        "offset",
        "2",
        json!({"results": records(3..5), "meta": {"total": 4}}),
    )
    .await;
    let mut source = source(
        json!({
            "endpoint": format!("{}/items", server.uri()),
            "pagination": {"type": "offset", "param": "offset", "limit": 2, "totalField": "meta.total"}
        }),
        None,
    );
    let batches = complete_run(&mut source).await;
    assert_eq!(ids(&batches), vec![1, 2, 3, 4]);
    assert_eq!(resume(&batches[0]), json!({"offset": 2}));
}

#[tokio::test]
async fn offset_cursor_starts_from_the_committed_offset_and_reports_the_offset_reached() {
    let server = MockServer::start().await;
    page(&server, "skip", "10", json!(records(11..13))).await;
    page(&server, "skip", "12", json!(records(13..14))).await;
    let committed = state(r#"{"offset": 10}"#);
    let mut source = source(
        json!({
            "endpoint": format!("{}/items", server.uri()),
            "pagination": {"type": "offset", "param": "skip", "limit": 2},
            "statePersistence": {"offset": {"enabled": true, "queryParam": "skip"}}
        }),
        Some(&committed),
    );
    let batches = complete_run(&mut source).await;
    assert_eq!(ids(&batches), vec![11, 12, 13]);
    let offsets: Vec<_> = batches
        .iter()
        .map(|b| match &b.checkpoint {
            Checkpoint::Progress { offset, .. } => *offset,
            Checkpoint::Advance => None,
        })
        .collect();
    assert_eq!(offsets, vec![Some(12), Some(13)]);
    assert_eq!(source.final_offset(), Some(13));
}

#[tokio::test]
async fn cursor_pagination_follows_tokens_until_the_cursor_is_null() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .and(query_param_is_missing("after"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": records(1..3), "meta": {"next": "c2"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    page(
        &server,
        "after",
        "c2",
        json!({"data": records(3..5), "meta": {"next": 3}}),
    )
    .await;
    page(
        &server,
        "after",
        "3",
        json!({"data": records(5..6), "meta": {"next": null}}),
    )
    .await;
    let mut source = source(
        json!({
            "endpoint": format!("{}/items", server.uri()),
            "pagination": {"type": "cursor", "param": "after", "nextCursorField": "meta.next"}
        }),
        None,
    );
    let batches = complete_run(&mut source).await;
    assert_eq!(ids(&batches), vec![1, 2, 3, 4, 5]);
    assert_eq!(resume(&batches[0]), json!({"cursor": "c2"}));
    assert_eq!(resume(&batches[1]), json!({"cursor": "3"}));
}

#[tokio::test]
async fn cursor_pagination_stops_when_the_cursor_is_absent_or_empty() {
    for last_page in [
        json!({"data": records(3..4)}),
        json!({"data": records(3..4), "next": ""}),
    ] {
        let server = MockServer::start().await;
        Mock::given(path("/items"))
            .and(query_param_is_missing("cursor"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"data": records(1..3), "next": "x"})),
            )
            .mount(&server)
            .await;
        page(&server, "cursor", "x", last_page).await;
        let mut source = source(
            json!({
                "endpoint": format!("{}/items", server.uri()),
                "pagination": {"type": "cursor", "nextCursorField": "next"}
            }),
            None,
        );
        assert_eq!(ids(&complete_run(&mut source).await), vec![1, 2, 3]);
    }
}

#[tokio::test]
async fn link_pagination_follows_relative_next_links_until_there_is_none() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/items"))
        .and(query_param_is_missing("page"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "Link",
                    r#"</v1/items?page=2>; rel="next", </v1/items?page=9>; rel="last""#,
                )
                .set_body_json(records(1..3)),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/v1/items"))
        .and(query_param("page", "2"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Link", "<items?page=3>; rel=next")
                .set_body_json(records(3..5)),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/v1/items"))
        .and(query_param("page", "3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(records(5..6)))
        .expect(1)
        .mount(&server)
        .await;
    let mut source = source(
        json!({"endpoint": format!("{}/v1/items", server.uri()), "pagination": {"type": "link"}}),
        None,
    );
    let batches = complete_run(&mut source).await;
    assert_eq!(ids(&batches), vec![1, 2, 3, 4, 5]);
    assert_eq!(
        resume(&batches[0]),
        json!({"link": format!("{}/v1/items?page=2", server.uri())})
    );
}

#[tokio::test]
async fn committed_cursors_go_out_on_every_page_and_static_params_stay() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .and(query_param("updated_after", "2026-01-01T00:00:00Z"))
        .and(query_param("after_id", "42"))
        .and(query_param("status", "open"))
        .and(query_param("limit", "2"))
        .respond_with(|request: &wiremock::Request| {
            let offset: i64 = request
                .url
                .query_pairs()
                .find(|(name, _)| name == "offset")
                .and_then(|(_, value)| value.parse().ok())
                .unwrap_or(0);
            ResponseTemplate::new(200)
                .set_body_json(json!({"events": records(offset + 1..offset + 3), "total": 5}))
        })
        .expect(3)
        .mount(&server)
        .await;
    let committed = state(r#"{"timestamp": "2026-01-01T01:00:00+01:00", "id": 42}"#);
    let mut source = source(
        json!({
            "endpoint": format!("{}/items", server.uri()),
            "queryParams": {"status": "open", "limit": 999},
            "dataField": "events",
            "pagination": {"type": "offset", "limit": 2, "totalField": "total"},
            "statePersistence": {
                "timestamp": {"field": "updated_at", "queryParam": "updated_after"},
                "id": {"field": "id", "queryParam": "after_id"}
            }
        }),
        Some(&committed),
    );
    assert_eq!(complete_run(&mut source).await.len(), 3);
}

#[tokio::test]
async fn first_run_sends_no_cursor_parameters() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .and(query_param_is_missing("updated_after"))
        .and(query_param_is_missing("after_id"))
        .respond_with(ResponseTemplate::new(200).set_body_json(records(1..2)))
        .expect(1)
        .mount(&server)
        .await;
    let mut source = source(
        json!({
            "endpoint": format!("{}/items", server.uri()),
            "statePersistence": {
                "timestamp": {"field": "updated_at", "queryParam": "updated_after"},
                "id": {"field": "id", "queryParam": "after_id"}
            }
        }),
        None,
    );
    complete_run(&mut source).await;
}

#[tokio::test]
async fn seeded_timestamp_is_sent_in_the_chosen_format() {
    let server = MockServer::start().await;
    Mock::given(query_param("since", "1767225600"))
        .respond_with(ResponseTemplate::new(200).set_body_json(records(1..2)))
        .expect(1)
        .mount(&server)
        .await;
    let seeded = state(r#"{"timestamp": "2026-01-01T00:00:00Z"}"#);
    let mut source = source(
        json!({
            "endpoint": format!("{}/items", server.uri()),
            "statePersistence": {"timestamp": {"field": "t", "queryParam": "since", "format": "unix"}}
        }),
        Some(&seeded),
    );
    complete_run(&mut source).await;
}

#[tokio::test]
async fn templates_fill_endpoint_headers_query_values_and_post_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/tenants/a%20b/items"))
        .and(query_param("$filter", "Modified gt 2026-01-01T00:00:00Z"))
        .and(header("X-Since", "2026-01-01T00:00:00Z"))
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({"query": {"after": "a b", "offset": "7"}, "fixed": 1}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(records(1..2)))
        .expect(1)
        .mount(&server)
        .await;
    let committed = state(r#"{"timestamp": "2026-01-01T00:00:00Z", "id": "a b", "offset": 7}"#);
    let mut source = source(
        json!({
            "endpoint": format!("{}/tenants/{{{{state.id}}}}/items", server.uri()),
            "method": "POST",
            "headers": {"X-Since": "{{state.timestamp}}"},
            "queryParams": {"$filter": "Modified gt {{ state.timestamp }}"},
            "body": {"query": {"after": "{{state.id}}", "offset": "{{state.offset}}"}, "fixed": 1}
        }),
        Some(&committed),
    );
    complete_run(&mut source).await;
}

#[tokio::test]
async fn templates_before_any_commit_render_the_epoch_and_empty_values() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(query_param("from", "1970-01-01T00:00:00Z"))
        .and(body_string("since=0&id="))
        .respond_with(ResponseTemplate::new(200).set_body_json(records(1..2)))
        .expect(1)
        .mount(&server)
        .await;
    let mut source = source(
        json!({
            "endpoint": format!("{}/items?from={{{{state.timestamp}}}}", server.uri()),
            "method": "POST",
            "body": "since={{state.offset}}0&id={{state.id}}",
            "statePersistence": {"timestamp": {"field": "t"}}
        }),
        None,
    );
    complete_run(&mut source).await;
}

fn interrupted(resume: Value) -> State {
    let run = json!({"startedAt": "2026-01-01T00:00:00Z", "batches": 1, "resume": resume});
    State::from_json(&json!({"timestamp": "2026-01-01T00:00:00Z", "run": run})).unwrap()
}

#[tokio::test]
async fn resumes_an_interrupted_run_at_its_saved_cursor_with_the_committed_cursors() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .and(query_param("cursor", "c2"))
        .and(query_param("since", "2026-01-01T00:00:00Z"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": records(3..5)})))
        .expect(1)
        .mount(&server)
        .await;
    let saved = interrupted(json!({"cursor": "c2"}));
    let mut source = source(
        json!({
            "endpoint": format!("{}/items", server.uri()),
            "pagination": {"type": "cursor", "nextCursorField": "next"},
            "statePersistence": {"timestamp": {"field": "t", "queryParam": "since"}}
        }),
        Some(&saved),
    );
    assert_eq!(ids(&complete_run(&mut source).await), vec![3, 4]);
}

#[tokio::test]
async fn a_run_saved_as_complete_fetches_nothing() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let saved = interrupted(json!({"complete": true}));
    let mut source = source(
        json!({"endpoint": format!("{}/items", server.uri()), "pagination": {"type": "page"}}),
        Some(&saved),
    );
    assert!(complete_run(&mut source).await.is_empty());
}

#[tokio::test]
async fn an_expired_saved_cursor_restarts_the_run_from_the_first_page() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .and(query_param("cursor", "expired"))
        .respond_with(ResponseTemplate::new(410).set_body_string("cursor expired"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/items"))
        .and(query_param_is_missing("cursor"))
        .and(query_param("since", "2026-01-01T00:00:00Z"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": records(1..3)})))
        .expect(1)
        .mount(&server)
        .await;
    let saved = interrupted(json!({"cursor": "expired"}));
    let mut source = source(
        json!({
            "endpoint": format!("{}/items", server.uri()),
            "pagination": {"type": "cursor", "nextCursorField": "next"},
            "statePersistence": {"timestamp": {"field": "t", "queryParam": "since"}}
        }),
        Some(&saved),
    );
    assert_eq!(ids(&complete_run(&mut source).await), vec![1, 2]);
}

#[tokio::test]
async fn a_saved_position_of_another_pagination_kind_restarts_from_the_first_page() {
    let server = MockServer::start().await;
    page(&server, "page", "1", json!(records(1..2))).await;
    let saved = interrupted(json!({"cursor": "c9"}));
    let mut source = source(
        json!({"endpoint": format!("{}/items", server.uri()), "pagination": {"type": "page", "limit": 5}}),
        Some(&saved),
    );
    assert_eq!(ids(&complete_run(&mut source).await), vec![1]);
}

#[tokio::test]
async fn a_refusal_outside_a_resume_stops_the_run_with_the_server_message() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(404).set_body_string("no such collection"))
        .mount(&server)
        .await;
    let mut source = source(
        json!({"endpoint": format!("{}/items?x=1", server.uri())}),
        None,
    );
    let (_, error) = run(&mut source).await;
    assert_eq!(
        error.unwrap(),
        format!(
            "GET {}/items?x=1 answered HTTP 404 Not Found after 1 attempt: no such collection; \
             check the endpoint path",
            server.uri()
        )
    );
}

#[tokio::test]
async fn a_failed_run_keeps_failing_instead_of_looking_complete() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(400))
        .expect(1)
        .mount(&server)
        .await;
    let mut source = source(json!({"endpoint": format!("{}/items", server.uri())}), None);
    let first = source.next_batch().await.unwrap_err().to_string();
    for _ in 0..2 {
        let again = source.next_batch().await.unwrap_err().to_string();
        assert_eq!(
            again,
            format!(
                "the source failed earlier in this run and cannot go on; start a new run \
                 ({first})"
            )
        );
    }
}

#[tokio::test]
async fn a_page_failing_while_the_previous_one_is_written_keeps_the_run_failed() {
    let server = MockServer::start().await;
    page(&server, "page", "1", json!(records(1..3))).await;
    Mock::given(path("/items"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(500).set_body_string("database is down"))
        .expect(1)
        .mount(&server)
        .await;
    let mut source = source(
        json!({"endpoint": format!("{}/items", server.uri()), "pagination": {"type": "page"}}),
        None,
    );
    let first = source.next_batch().await.unwrap().unwrap();
    assert_eq!(ids(&[first]), [1, 2]);
    let failed = source.next_batch().await.unwrap_err().to_string();
    assert!(failed.contains("answered HTTP 500"), "{failed}");
    for _ in 0..2 {
        match source.next_batch().await {
            Err(error) => assert!(
                error
                    .to_string()
                    .starts_with("the source failed earlier in this run"),
                "{error}"
            ),
            Ok(batch) => panic!("a failed run answered {batch:?}"),
        }
    }
    // Nothing more was asked of the server.
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_missing_data_field_names_the_path_and_the_url() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&server)
        .await;
    let mut source = source(
        json!({"endpoint": format!("{}/items", server.uri()), "dataField": "result.events"}),
        None,
    );
    let (_, error) = run(&mut source).await;
    assert_eq!(
        error.unwrap(),
        format!(
            "GET {}/items: the response has no `result.events` (input.dataField); check the \
             path against a response of the API",
            server.uri()
        )
    );
}

#[tokio::test]
async fn a_data_field_that_is_not_an_array_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"events": {"id": 1}})))
        .mount(&server)
        .await;
    let mut source = source(
        json!({"endpoint": format!("{}/items", server.uri()), "dataField": "events"}),
        None,
    );
    let (_, error) = run(&mut source).await;
    assert_eq!(
        error.unwrap(),
        format!(
            "GET {}/items: `events` (input.dataField) holds an object, not an array of records; \
             point dataField at the array",
            server.uri()
        )
    );
}

#[tokio::test]
async fn malformed_json_names_the_url_and_the_position() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("<html>oops</html>", "text/html"))
        .mount(&server)
        .await;
    let mut source = source(json!({"endpoint": format!("{}/items", server.uri())}), None);
    let (_, error) = run(&mut source).await;
    assert_eq!(
        error.unwrap(),
        format!(
            "GET {}/items answered with a body that is not JSON (expected value at line 1 column \
             1; Content-Type: text/html); check that the endpoint returns JSON",
            server.uri()
        )
    );
}

#[tokio::test]
async fn a_server_that_repeats_a_cursor_stops_the_run_after_delivering_what_it_read() {
    let server = MockServer::start().await;
    // New records every time, so that only the cursor gives the loop away.
    let served = std::sync::atomic::AtomicI64::new(0);
    Mock::given(path("/items"))
        .respond_with(move |_: &wiremock::Request| {
            let first = served.fetch_add(2, std::sync::atomic::Ordering::SeqCst) + 1;
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": records(first..first + 2), "next": "same"}))
        })
        .mount(&server)
        .await;
    let mut source = source(
        json!({
            "endpoint": format!("{}/items", server.uri()),
            "pagination": {"type": "cursor", "nextCursorField": "next"}
        }),
        None,
    );
    let (batches, error) = run(&mut source).await;
    assert_eq!(batches.len(), 2);
    assert_eq!(
        error.unwrap(),
        format!(
            "{}/items?cursor=same answered with the next cursor `same` a second time in this \
             run; the server does not move forward, so the run stops instead of reading the same \
             pages again",
            server.uri()
        )
    );
}

#[tokio::test]
async fn a_server_that_never_stops_is_cut_at_max_pages() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .respond_with(|request: &wiremock::Request| {
            let page: i64 = request
                .url
                .query_pairs()
                .find(|(name, _)| name == "page")
                .and_then(|(_, value)| value.parse().ok())
                .unwrap_or(1);
            ResponseTemplate::new(200).set_body_json(records(page * 2 - 1..page * 2 + 1))
        })
        .expect(3)
        .mount(&server)
        .await;
    let mut source = source(
        json!({"endpoint": format!("{}/items", server.uri()), "pagination": {"type": "page", "maxPages": 3}}),
        None,
    );
    let (batches, error) = run(&mut source).await;
    assert_eq!(batches.len(), 3);
    assert_eq!(
        error.unwrap(),
        format!(
            "{}/items?page=3 still announces more pages after 3 pages in this run; the run stops \
             so that a server that never ends pagination cannot keep it going forever. Raise \
             input.pagination.maxPages if the source really has more pages",
            server.uri()
        )
    );
}

#[tokio::test]
async fn a_server_that_ignores_the_page_parameter_stops_the_run_before_the_repeated_page() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(200).set_body_json(records(1..3)))
        .expect(2)
        .mount(&server)
        .await;
    let mut source = source(
        json!({"endpoint": format!("{}/items", server.uri()), "pagination": {"type": "page"}}),
        None,
    );
    let (batches, error) = run(&mut source).await;
    assert_eq!(ids(&batches), vec![1, 2], "the first page only, once");
    assert_eq!(
        error.unwrap(),
        format!(
            "{}/items?page=2 answered page 2 of this run with exactly the records of the page \
             before it; the server seems to ignore the `page` query parameter: check \
             input.pagination.param (and type) against the API's documentation. The run stops \
             instead of delivering the same records again; nothing of this page was delivered",
            server.uri()
        )
    );
    // A failed run stays failed, and asks the server nothing more.
    assert!(source.next_batch().await.is_err());
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_run_resumed_after_a_page_still_notices_that_the_next_page_repeats_it() {
    // The first run delivers page 1 and is interrupted before page 2: the next run resumes at
    // page 2, which the server answers with page 1's records again. Delivering them would send
    // page 1 twice; the saved fingerprint of page 1 stops the resumed run before it does.
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(200).set_body_json(records(1..3)))
        .mount(&server)
        .await;
    let config =
        json!({"endpoint": format!("{}/items", server.uri()), "pagination": {"type": "page"}});
    let mut first = source(config.clone(), None);
    let delivered = first.next_batch().await.unwrap().unwrap();
    assert_eq!(ids(std::slice::from_ref(&delivered)), vec![1, 2]);
    let saved = saved_resume(&delivered).clone();
    assert_eq!(saved["page"], 2);
    assert!(saved["previousPage"].is_string(), "{saved}");
    drop(first);

    let mut resumed = source(config, Some(&interrupted(saved)));
    let (batches, error) = run(&mut resumed).await;
    assert!(batches.is_empty(), "nothing delivered twice");
    let error = error.unwrap();
    assert!(
        error.contains("with exactly the records of the page before it"),
        "{error}"
    );
}

#[tokio::test]
async fn a_run_resumed_from_a_position_saved_without_a_fingerprint_goes_on_as_before() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(records(3..5)))
        .mount(&server)
        .await;
    Mock::given(path("/items"))
        .and(query_param("page", "3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    let mut resumed = source(
        json!({"endpoint": format!("{}/items", server.uri()), "pagination": {"type": "page"}}),
        Some(&interrupted(json!({"page": 2}))),
    );
    assert_eq!(ids(&complete_run(&mut resumed).await), vec![3, 4]);
}

#[tokio::test]
async fn a_server_that_ignores_the_offset_parameter_is_named_without_its_secrets() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"total": 1000, "items": records(1..3)})),
        )
        .mount(&server)
        .await;
    let mut source = source(
        json!({
            "endpoint": format!("{}/items?access_token=abc123", server.uri()),
            "pagination": {"type": "offset", "param": "skip", "limit": 2, "totalField": "total"}
        }),
        None,
    );
    let (batches, error) = run(&mut source).await;
    assert_eq!(ids(&batches), vec![1, 2]);
    let error = error.unwrap();
    assert!(
        error.starts_with(&format!(
            "{}/items?access_token=***&skip=2&limit=2 answered page 2 of this run with exactly \
             the records of the page before it; the server seems to ignore the `skip` query \
             parameter",
            server.uri()
        )),
        "{error}"
    );
    assert!(!error.contains("abc123"), "{error}");
}

#[tokio::test]
async fn pages_that_differ_in_one_byte_are_all_delivered() {
    let server = MockServer::start().await;
    page(&server, "page", "1", json!([{"id": 1, "v": "a"}])).await;
    page(&server, "page", "2", json!([{"id": 1, "v": "b"}])).await;
    page(&server, "page", "3", json!([])).await;
    let mut source = source(
        json!({"endpoint": format!("{}/items", server.uri()), "pagination": {"type": "page"}}),
        None,
    );
    assert_eq!(complete_run(&mut source).await.len(), 2);
}

#[tokio::test]
async fn the_next_page_is_requested_while_the_current_one_is_being_written() {
    let server = MockServer::start().await;
    page(&server, "page", "1", json!(records(1..3))).await;
    let (responder, mut arrivals) =
        Reporting::new(ResponseTemplate::new(200).set_body_json(json!(records(3..5))));
    Mock::given(path("/items"))
        .and(query_param("page", "2"))
        .respond_with(responder)
        .expect(1)
        .mount(&server)
        .await;
    page(&server, "page", "3", json!([])).await;
    let mut source = source(
        json!({"endpoint": format!("{}/items", server.uri()), "pagination": {"type": "page"}}),
        None,
    );
    let first = source.next_batch().await.unwrap().unwrap();
    assert_eq!(ids(&[first]), vec![1, 2]);
    // Without asking for the next batch, the second page arrives at the server.
    let fetched_ahead = tokio::time::timeout(Duration::from_secs(5), arrivals.recv()).await;
    assert!(
        matches!(fetched_ahead, Ok(Some(()))),
        "the next page was not fetched ahead"
    );
    assert_eq!(ids(&complete_run(&mut source).await), vec![3, 4]);
}

#[tokio::test]
async fn a_saved_next_link_does_not_keep_the_api_key() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .and(query_param_is_missing("page"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Link", "</items?page=2&api_key=k-1>; rel=next")
                .set_body_json(records(1..2)),
        )
        .mount(&server)
        .await;
    page(&server, "page", "2", json!([])).await;
    let mut source = source(
        json!({
            "endpoint": format!("{}/items", server.uri()),
            "pagination": {"type": "link"},
            "authentication": {"type": "api-key", "credentials": {"key": "k-1", "location": "query"}}
        }),
        None,
    );
    let batches = complete_run(&mut source).await;
    assert_eq!(
        resume(&batches[0]),
        json!({"link": format!("{}/items?page=2", server.uri())})
    );
}

async fn first_error(config: Value, response: ResponseTemplate) -> String {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .respond_with(response)
        .mount(&server)
        .await;
    let mut config = config;
    config["endpoint"] = json!(format!("{}/items", server.uri()));
    let (_, error) = run(&mut source(config, None)).await;
    error.unwrap().replace(&server.uri(), "SERVER")
}

#[tokio::test]
async fn a_response_that_is_neither_object_nor_array_is_an_error() {
    let error = first_error(
        json!({}),
        ResponseTemplate::new(200).set_body_json("just text"),
    )
    .await;
    assert_eq!(
        error,
        "GET SERVER/items: the response is a string, not a JSON object or array of records"
    );
}

#[tokio::test]
async fn a_total_that_is_not_a_number_names_the_field() {
    let error = first_error(
        json!({"pagination": {"type": "offset", "totalField": "meta.total"}}),
        ResponseTemplate::new(200)
            .set_body_json(json!({"data": records(1..3), "meta": {"total": "many"}})),
    )
    .await;
    assert_eq!(
        error,
        "GET SERVER/items?offset=0: `meta.total` (input.pagination.totalField) holds \"many\", but \
         it must be a non-negative integer"
    );
}

#[tokio::test]
async fn a_next_cursor_that_is_not_a_token_ends_pagination() {
    // As in the Go tool: `false`, `true`, an object or an array at `nextCursorField` is the last
    // page, not a failed run.
    for next in [json!(false), json!(true), json!({"a": 1}), json!([1])] {
        let server = MockServer::start().await;
        Mock::given(path("/items"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"data": records(1..3), "next": next})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let mut source = source(
            json!({
                "endpoint": format!("{}/items", server.uri()),
                "pagination": {"type": "cursor", "nextCursorField": "next"}
            }),
            None,
        );
        assert_eq!(
            ids(&complete_run(&mut source).await),
            vec![1, 2],
            "next: {next}"
        );
        server.verify().await;
    }
}

#[tokio::test]
async fn a_next_link_to_another_scheme_is_an_error() {
    let error = first_error(
        json!({"pagination": {"type": "link"}}),
        ResponseTemplate::new(200)
            .insert_header("Link", "<ftp://files.test/p2>; rel=next")
            .set_body_json(records(1..3)),
    )
    .await;
    assert_eq!(
        error,
        "GET SERVER/items: the next link `ftp://files.test/p2` is not an http or https URL (the \
         scheme is `ftp`)"
    );
}

#[tokio::test]
async fn a_server_that_links_back_to_a_page_already_read_stops_the_run() {
    let server = MockServer::start().await;
    let link = format!("<{}/items?page=2>; rel=next", server.uri());
    // New records every time, so that only the link gives the loop away.
    let served = std::sync::atomic::AtomicI64::new(0);
    Mock::given(path("/items"))
        .respond_with(move |_: &wiremock::Request| {
            let first = served.fetch_add(2, std::sync::atomic::Ordering::SeqCst) + 1;
            ResponseTemplate::new(200)
                .insert_header("Link", link.as_str())
                .set_body_json(records(first..first + 2))
        })
        .mount(&server)
        .await;
    let mut source = source(
        json!({"endpoint": format!("{}/items", server.uri()), "pagination": {"type": "link"}}),
        None,
    );
    let (batches, error) = run(&mut source).await;
    assert_eq!(batches.len(), 2);
    assert_eq!(
        error.unwrap().replace(&server.uri(), "SERVER"),
        "SERVER/items?page=2 answered with the next link `SERVER/items?page=2` a second time in \
         this run; the server does not move forward, so the run stops instead of reading the \
         same pages again"
    );
}

#[test]
fn configuration_mistakes_are_found_when_the_pipeline_is_loaded() {
    // The source is built from loaded settings only, so each of these stops at loading, with
    // the key path, and no source is ever built from it.
    let cases = [
        (
            json!({"endpoint": "ftp://x/y"}),
            "input.endpoint: `ftp://x/y` uses the scheme `ftp`; write an http:// or https:// URL \
             such as https://api.example.com/v1/items",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:9/x", "pagination": {"type": "cursor"}}),
            "input.pagination.nextCursorField: cursor pagination needs `nextCursorField`, the \
             response path of the next token",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:9/x", "headers": {"X-A": "{{record.id}}"}}),
            "input.headers.X-A: {{record.*}} is filled only in the endpoint of an httpRequest \
             output with `requestMode: single`; remove it here or send one request a record",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:9/x", "body": {"a": 1}}),
            "input.body: a body is sent only with `method: POST`; set the method or remove the \
             body",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:9/x", "authentication": {"type": "bearer", "credentials": {}}}),
            "input.authentication.credentials.token: bearer authentication needs \
             `credentials.token`",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:9/x", "pagination": {"type": "page", "limit": 0}}),
            "input.pagination.limit: `limit` must be more than 0",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:9/x", "pagination": {"type": "page", "maxPages": 0}}),
            "input.pagination.maxPages: `maxPages` must be more than 0",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:9/x", "timeoutMs": 0}),
            "input.timeoutMs: timeoutMs must be more than 0; remove it for the default 30000",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:9/x", "dataField": "a..b"}),
            "input.dataField: `a..b` is not a dot path: write names separated by single dots, \
             such as `event.id`",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:9/x", "queryParams": {"since": "{{state.timestamp"}}),
            "input.queryParams.since: a `{{` is not closed by `}}`",
        ),
        (
            json!({
                "endpoint": "http://127.0.0.1:9/x",
                "statePersistence": {"timestamp": {"field": "t", "queryParam": "since", "format": "%Y-%"}}
            }),
            "input.statePersistence.timestamp.format: `%Y-%` is not a strftime pattern chrono \
             accepts; use rfc3339, unix, unix_ms or a strftime pattern such as %Y-%m-%dT%H:%M:%SZ",
        ),
    ];
    for (config, message) in cases {
        let error = parse_str(&pipeline(config), "polling.json", &|_| None).unwrap_err();
        let problems: Vec<String> = error
            .problems()
            .iter()
            .map(|p| format!("{}: {}", p.key_path, p.message))
            .collect();
        assert_eq!(problems, [message]);
    }
}

#[tokio::test]
async fn an_endpoint_the_committed_cursors_turn_into_no_url_fails_before_any_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(0)
        .mount(&server)
        .await;
    // Checked with plain values when loaded (port 0 is a port); only the committed offset
    // makes it a port no URL can have.
    let endpoint = "http://127.0.0.1:{{state.offset}}/items";
    let config = json!({"endpoint": endpoint, "statePersistence": {"offset": {}}});
    let error = HttpPollingSource::new(&input(config), Some(&state(r#"{"offset": 70000}"#)))
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        "input.endpoint `http://127.0.0.1:{{state.offset}}/items` filled with the committed \
         cursors is `http://127.0.0.1:70000/items`, which is not an absolute http:// or https:// \
         URL; place the {{state.*}} templates where a value fits (a path segment or a query \
         value)"
    );
}

/// A server at another origin than `MockServer::start`'s: 127.0.0.2 (loopback on Linux).
async fn server_elsewhere() -> MockServer {
    let listener = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    MockServer::builder().listener(listener).start().await
}

#[tokio::test]
async fn a_next_link_to_another_origin_stops_a_run_with_credentials_before_it_sends_them() {
    let credentialed = [
        json!({"authentication": {"type": "bearer", "credentials": {"token": "t-1"}}}),
        json!({"authentication": {"type": "api-key", "credentials": {"key": "k-1", "location": "query"}}}),
        json!({"headers": {"Authorization": "Token t-2"}}),
    ];
    for extra in credentialed {
        let (home, elsewhere) = (MockServer::start().await, server_elsewhere().await);
        let foreign = format!("{}/items?page=3", elsewhere.uri());
        Mock::given(path("/items"))
            .and(query_param_is_missing("page"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("Link", "</items?page=2>; rel=next")
                    .set_body_json(records(1..3)),
            )
            .mount(&home)
            .await;
        Mock::given(path("/items"))
            .and(query_param("page", "2"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("Link", format!("<{foreign}>; rel=next").as_str())
                    .set_body_json(records(3..5)),
            )
            .mount(&home)
            .await;
        Mock::given(path("/items"))
            .respond_with(ResponseTemplate::new(200).set_body_json(records(5..6)))
            .mount(&elsewhere)
            .await;
        let mut config =
            json!({"endpoint": format!("{}/items", home.uri()), "pagination": {"type": "link"}});
        for (key, value) in extra.as_object().unwrap() {
            config[key] = value.clone();
        }
        let (batches, error) = run(&mut source(config, None)).await;
        assert_eq!(ids(&batches), vec![1, 2], "{extra}");
        assert_eq!(
            error.unwrap(),
            format!(
                "GET {home}/items?page=2: the next link `{foreign}` leads away from {home}, the \
                 origin of input.endpoint; the input's credentials are sent only there and a page \
                 requested without them would be refused, so the run stops. If the API moved, \
                 set input.endpoint to its new address",
                home = home.uri()
            )
        );
        assert_eq!(elsewhere.received_requests().await.unwrap().len(), 0);
        for request in home.received_requests().await.unwrap() {
            assert!(!in_wiremock_request(&request).is_empty(), "{extra}");
        }
    }
}

#[tokio::test]
async fn a_next_link_to_another_origin_is_followed_when_the_input_has_no_credentials() {
    let (home, elsewhere) = (MockServer::start().await, server_elsewhere().await);
    Mock::given(path("/items"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "Link",
                    format!("<{}/archive?page=2>; rel=next", elsewhere.uri()).as_str(),
                )
                .set_body_json(records(1..3)),
        )
        .mount(&home)
        .await;
    Mock::given(path("/archive"))
        .respond_with(ResponseTemplate::new(200).set_body_json(records(3..4)))
        .expect(1)
        .mount(&elsewhere)
        .await;
    let mut source = source(
        json!({"endpoint": format!("{}/items", home.uri()), "pagination": {"type": "link"}, "headers": {"Accept": "application/json"}}),
        None,
    );
    assert_eq!(ids(&complete_run(&mut source).await), vec![1, 2, 3]);
}

#[tokio::test]
async fn a_next_cursor_holding_a_url_elsewhere_is_sent_to_the_endpoint_with_the_credentials() {
    let (home, elsewhere) = (MockServer::start().await, server_elsewhere().await);
    let foreign = format!("{}/items?cursor=c2", elsewhere.uri());
    Mock::given(path("/items"))
        .and(query_param_is_missing("after"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": records(1..3), "next": foreign.clone()})),
        )
        .mount(&home)
        .await;
    Mock::given(path("/items"))
        .and(query_param("after", foreign.as_str()))
        .and(header("Authorization", "Bearer t-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": records(3..4)})))
        .expect(1)
        .mount(&home)
        .await;
    let mut source = source(
        json!({
            "endpoint": format!("{}/items", home.uri()),
            "pagination": {"type": "cursor", "param": "after", "nextCursorField": "next"},
            "authentication": {"type": "bearer", "credentials": {"token": "t-1"}}
        }),
        None,
    );
    assert_eq!(ids(&complete_run(&mut source).await), vec![1, 2, 3]);
    assert_eq!(elsewhere.received_requests().await.unwrap().len(), 0);
}

#[tokio::test]
async fn a_saved_next_link_to_another_origin_restarts_the_run_at_the_endpoint() {
    let (home, elsewhere) = (MockServer::start().await, server_elsewhere().await);
    Mock::given(path("/items"))
        .and(header("Authorization", "Bearer t-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(records(1..3)))
        .expect(1)
        .mount(&home)
        .await;
    let saved = interrupted(json!({"link": format!("{}/items?page=7", elsewhere.uri())}));
    let mut source = source(
        json!({
            "endpoint": format!("{}/items", home.uri()),
            "pagination": {"type": "link"},
            "authentication": {"type": "bearer", "credentials": {"token": "t-1"}}
        }),
        Some(&saved),
    );
    assert_eq!(ids(&complete_run(&mut source).await), vec![1, 2]);
    assert_eq!(elsewhere.received_requests().await.unwrap().len(), 0);
}

#[tokio::test]
async fn a_source_told_to_stop_gives_up_a_page_request_waiting_to_be_retried() {
    let server = MockServer::start().await;
    let (responder, mut arrivals) = Reporting::unavailable_for_20_seconds();
    Mock::given(path("/items"))
        .respond_with(responder)
        .mount(&server)
        .await;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut source = source(
        json!({
            "endpoint": format!("{}/items", server.uri()),
            "retry": {"maxAttempts": 2, "maxDelayMs": 60000}
        }),
        None,
    )
    .stop_on(stopping);
    let page = tokio::spawn(async move { source.next_batch().await.map(drop) });
    arrivals.recv().await.unwrap();
    stop.send(true).unwrap();
    let error = tokio::time::timeout(Duration::from_secs(10), page)
        .await
        .expect("the wait was not cut short")
        .unwrap()
        .unwrap_err();
    assert!(cannectors_connector::StoppedByShutdown::is_cause_of(
        &*error
    ));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn with_lookback_each_record_s_position_is_handed_over_with_the_batch() {
    let server = MockServer::start().await;
    let body = json!({"items": [
        {"id": 2, "at": "2026-01-01T00:00:02Z"},
        {"id": 1, "at": "2026-01-01T00:00:05Z"},
        {"id": 3, "at": "2026-01-01T00:00:04Z"}
    ]});
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(&server)
        .await;
    let config = |lookback: Option<&str>| {
        let mut persistence = json!({
            "timestamp": {"field": "at", "queryParam": "since"},
            "id": {"field": "id", "queryParam": "after"}
        });
        if let Some(lookback) = lookback {
            persistence["lookback"] = json!(lookback);
        }
        json!({
            "endpoint": format!("{}/items", server.uri()),
            "dataField": "items",
            "statePersistence": persistence
        })
    };
    let batches = complete_run(&mut source(config(Some("10m")), None)).await;
    let ids: Vec<String> = batches[0]
        .keys
        .as_ref()
        .unwrap()
        .iter()
        .map(|key| key.as_ref().unwrap().id.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["2", "1", "3"]);
    let greatest = batches[0].greatest.as_ref().unwrap();
    assert_eq!(
        greatest.id.as_ref().unwrap().to_string(),
        "1",
        "the latest timestamp"
    );
    // Without a setting that looks at each record, only the greatest is found.
    let plain = complete_run(&mut source(config(None), None)).await;
    assert!(plain[0].keys.is_none());
    assert_eq!(plain[0].greatest.as_ref(), Some(greatest));
}
