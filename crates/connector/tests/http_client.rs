//! The shared HTTP client against real HTTP servers on 127.0.0.1: authentication on the wire,
//! the OAuth 2 token cache, retries and what errors and logs show.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use cannectors_config::{Authentication, OutputConfig, RetryConfig, parse_str};
use cannectors_connector::StoppedByShutdown;
use cannectors_connector::http::{
    HttpClient, HttpError, HttpMethod, HttpRequest, TransportFailure,
};
use cannectors_test_support::credentials::in_wiremock_request;
use cannectors_test_support::reporting::Reporting;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{
    basic_auth, bearer_token, body_json, body_string, header, method, path, path_regex, query_param,
};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The settings of an httpRequest output written with `keys`, loaded as a pipeline file is:
/// settings are made only by loading, so a test uses what a pipeline would.
fn output_with(keys: Value) -> cannectors_config::HttpRequestOutput {
    let mut output = json!({"type": "httpRequest", "endpoint": "http://127.0.0.1:9/items"});
    for (key, value) in keys.as_object().unwrap() {
        output[key] = value.clone();
    }
    let pipeline = json!({
        "name": "p",
        "input": {"type": "httpPolling", "endpoint": "http://127.0.0.1:9/"},
        "output": output,
    });
    match parse_str(&pipeline.to_string(), "p.json", &|_| None)
        .unwrap()
        .pipeline
        .output
    {
        OutputConfig::HttpRequest(output) => output,
        other => panic!("expected an httpRequest output, got {other:?}"),
    }
}

/// A `retry` block, loaded.
fn retry(block: Value) -> RetryConfig {
    output_with(json!({"retry": block})).retry
}

/// `retries` after the first attempt (`maxAttempts`), with short delays.
fn fast_retry(retries: u32) -> RetryConfig {
    retry(json!({"maxAttempts": retries, "delayMs": 10, "maxDelayMs": 50}))
}

fn client(authentication: Option<Authentication>, retry: RetryConfig) -> HttpClient {
    HttpClient::builder()
        .timeout(Duration::from_secs(5))
        .authentication(authentication.as_ref())
        .retry(&retry)
        .build()
        .unwrap()
}

/// An `authentication` block of type `kind` with `credentials`, loaded.
fn auth(kind: &str, credentials: Value) -> Option<Authentication> {
    output_with(json!({"authentication": {"type": kind, "credentials": credentials}}))
        .authentication
}

fn get(server: &MockServer, route: &str) -> HttpRequest {
    HttpRequest::new(HttpMethod::Get, &format!("{}{route}", server.uri())).unwrap()
}

async fn ok_at(server: &MockServer, route: &str) {
    Mock::given(path(route.to_owned()))
        .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
        .mount(server)
        .await;
}

#[tokio::test]
async fn api_key_goes_in_the_default_header() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .and(header("X-API-Key", "k-123"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(auth("api-key", json!({"key": "k-123"})), fast_retry(0));
    client.send(get(&server, "/items")).await.unwrap();
}

#[tokio::test]
async fn api_key_goes_in_a_named_header() {
    let server = MockServer::start().await;
    Mock::given(header("Api-Token", "k-123"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let credentials = json!({"key": "k-123", "headerName": "Api-Token"});
    client(auth("api-key", credentials), fast_retry(0))
        .send(get(&server, "/items"))
        .await
        .unwrap();
}

#[tokio::test]
async fn api_key_in_the_query_replaces_one_written_in_the_url_and_stays_out_of_the_response_url() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .and(query_param("api_key", "k-123"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let credentials = json!({"key": "k-123", "location": "query"});
    let client = client(auth("api-key", credentials), fast_retry(0));
    let response = client
        .send(get(&server, "/items?api_key=stale").query("page", "2"))
        .await
        .unwrap();
    assert_eq!(response.url().query(), Some("page=2"));
}

#[tokio::test]
async fn api_key_in_a_named_query_parameter_is_masked_in_errors() {
    let server = MockServer::start().await;
    Mock::given(query_param("token_v2", "k-123"))
        .respond_with(ResponseTemplate::new(400).set_body_string("bad key k-123"))
        .mount(&server)
        .await;
    let credentials = json!({"key": "k-123", "location": "query", "paramName": "token_v2"});
    let client = client(auth("api-key", credentials), fast_retry(0));
    let error = client
        .send(get(&server, "/items?token_v2=k-123"))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(!message.contains("k-123"), "{message}");
    assert!(message.contains("/items?token_v2=***"), "{message}");
    assert!(message.contains("bad key ***"), "{message}");
}

#[tokio::test]
async fn bearer_token_is_sent_in_the_authorization_header() {
    let server = MockServer::start().await;
    Mock::given(bearer_token("t-abc"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let credentials = json!({"token": "t-abc"});
    client(auth("bearer", credentials), fast_retry(0))
        .send(get(&server, "/"))
        .await
        .unwrap();
}

#[tokio::test]
async fn basic_credentials_are_sent_base64_encoded() {
    let server = MockServer::start().await;
    Mock::given(basic_auth("ada", "p@ss:word"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let credentials = json!({"username": "ada", "password": "p@ss:word"});
    client(auth("basic", credentials), fast_retry(0))
        .send(get(&server, "/"))
        .await
        .unwrap();
}

fn oauth2(server: &MockServer, scopes: Vec<&str>) -> Option<Authentication> {
    auth(
        "oauth2",
        json!({"tokenUrl": format!("{}/oauth/token", server.uri()), "clientId": "client one", "clientSecret": "s3cret", "scopes": scopes}),
    )
}

/// As [`oauth2`], with the id and secret sent as HTTP basic credentials.
fn oauth2_basic(server: &MockServer, scopes: Vec<&str>) -> Option<Authentication> {
    auth(
        "oauth2",
        json!({"tokenUrl": format!("{}/oauth/token", server.uri()), "clientId": "client one", "clientSecret": "s3cret", "scopes": scopes, "tokenAuthMethod": "client_secret_basic"}),
    )
}

fn token_response(token: &str, expires_in: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": token, "token_type": "Bearer", "expires_in": expires_in
    }))
}

#[tokio::test]
async fn oauth2_token_is_fetched_once_with_client_basic_auth_and_reused() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        // RFC 6749 2.3.1: the id is form-encoded before it goes into the basic credentials.
        .and(basic_auth("client+one", "s3cret"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string(
            "grant_type=client_credentials&scope=read+write",
        ))
        .respond_with(token_response("tok-1", 3600))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/items"))
        .and(bearer_token("tok-1"))
        .respond_with(ResponseTemplate::new(200))
        .expect(3)
        .mount(&server)
        .await;
    let client = client(oauth2_basic(&server, vec!["read", "write"]), fast_retry(0));
    for _ in 0..3 {
        client.send(get(&server, "/items")).await.unwrap();
    }
}

#[tokio::test]
async fn oauth2_client_credentials_go_in_the_form_body_by_default_as_the_go_tool_sends_them() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string(
            "grant_type=client_credentials&client_id=client+one&client_secret=s3cret&scope=read+write",
        ))
        .respond_with(token_response("tok-1", 3600))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/items"))
        .and(bearer_token("tok-1"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(oauth2(&server, vec!["read", "write"]), fast_retry(0));
    client.send(get(&server, "/items")).await.unwrap();
    let received = server.received_requests().await.unwrap();
    let token_request = received
        .iter()
        .find(|request| request.url.path() == "/oauth/token")
        .unwrap();
    assert!(
        token_request.headers.get("authorization").is_none(),
        "client_secret_post sends no basic credentials as well"
    );
}

#[tokio::test]
async fn the_go_tools_space_separated_scope_is_asked_for_as_scopes_are() {
    let server = MockServer::start().await;
    Mock::given(path("/oauth/token"))
        .and(body_string(
            "grant_type=client_credentials&client_id=c&client_secret=s&scope=read+write",
        ))
        .respond_with(token_response("tok-1", 3600))
        .expect(1)
        .mount(&server)
        .await;
    ok_at(&server, "/items").await;
    let credentials = json!({"tokenUrl": format!("{}/oauth/token", server.uri()), "clientId": "c", "clientSecret": "s", "scope": " read  write "});
    let client = client(auth("oauth2", credentials), fast_retry(0));
    client.send(get(&server, "/items")).await.unwrap();
}

#[tokio::test]
async fn oauth2_token_that_expires_at_once_is_fetched_for_every_request() {
    let server = MockServer::start().await;
    Mock::given(path("/oauth/token"))
        .respond_with(token_response("tok-1", 0))
        .expect(2)
        .mount(&server)
        .await;
    ok_at(&server, "/items").await;
    let client = client(oauth2(&server, vec![]), fast_retry(0));
    client.send(get(&server, "/items")).await.unwrap();
    client.send(get(&server, "/items")).await.unwrap();
}

#[tokio::test]
async fn oauth2_token_with_an_absurd_lifetime_is_kept_until_refused() {
    for expires_in in ["9223372036854775807", "1e20", "\"1e20\""] {
        let server = MockServer::start().await;
        Mock::given(path("/oauth/token"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(
                format!(r#"{{"access_token": "tok-1", "expires_in": {expires_in}}}"#),
                "application/json",
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(path("/items"))
            .and(bearer_token("tok-1"))
            .respond_with(ResponseTemplate::new(200))
            .expect(2)
            .mount(&server)
            .await;
        let client = client(oauth2(&server, vec![]), fast_retry(0));
        client.send(get(&server, "/items")).await.unwrap();
        client.send(get(&server, "/items")).await.unwrap();
    }
}

#[tokio::test]
async fn oauth2_token_with_a_negative_lifetime_is_fetched_for_every_request() {
    let server = MockServer::start().await;
    Mock::given(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"access_token": "tok-1", "expires_in": -60}"#,
            "application/json",
        ))
        .expect(2)
        .mount(&server)
        .await;
    ok_at(&server, "/items").await;
    let client = client(oauth2(&server, vec![]), fast_retry(0));
    client.send(get(&server, "/items")).await.unwrap();
    client.send(get(&server, "/items")).await.unwrap();
}

#[tokio::test]
async fn oauth2_token_refused_with_401_is_fetched_again_once() {
    let server = MockServer::start().await;
    Mock::given(path("/oauth/token"))
        .respond_with(token_response("revoked", 3600))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/oauth/token"))
        .respond_with(token_response("fresh", 3600))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/items"))
        .and(bearer_token("revoked"))
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/items"))
        .and(bearer_token("fresh"))
        .respond_with(ResponseTemplate::new(200))
        .expect(2)
        .mount(&server)
        .await;
    let client = client(oauth2(&server, vec![]), fast_retry(0));
    client.send(get(&server, "/items")).await.unwrap();
    client.send(get(&server, "/items")).await.unwrap();
}

#[tokio::test]
async fn oauth2_gives_up_when_the_new_token_is_refused_too() {
    let server = MockServer::start().await;
    Mock::given(path("/oauth/token"))
        .respond_with(token_response("tok-1", 3600))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(401).set_body_string("token rejected"))
        .expect(2)
        .mount(&server)
        .await;
    let client = client(oauth2(&server, vec![]), fast_retry(2));
    let error = client.send(get(&server, "/items")).await.unwrap_err();
    assert_eq!(error.status(), Some(401));
    assert!(
        error.to_string().ends_with(
            "answered HTTP 401 Unauthorized after 1 attempt: token rejected; check the \
             authentication credentials"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn oauth2_token_endpoint_refusal_names_the_endpoint_without_the_secret() {
    let server = MockServer::start().await;
    Mock::given(path("/oauth/token"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_string(r#"{"error":"invalid_client","secret":"s3cret"}"#),
        )
        .mount(&server)
        .await;
    let client = client(oauth2(&server, vec![]), fast_retry(0));
    let error = client.send(get(&server, "/items")).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "cannot obtain an OAuth2 access token from {}/oauth/token: the token endpoint \
             answered HTTP 401 after 1 attempt: {{\"error\":\"invalid_client\",\"secret\":\"***\"}}; \
             check credentials.tokenUrl, clientId and clientSecret",
            server.uri()
        )
    );
}

#[tokio::test]
async fn service_unavailable_then_ok_is_retried_and_succeeds() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(200).set_body_string("[1]"))
        .expect(1)
        .mount(&server)
        .await;
    let response = client(None, fast_retry(2))
        .send(get(&server, "/items"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(&response.body()[..], b"[1]");
}

#[tokio::test]
async fn retryable_status_that_persists_fails_after_max_attempts() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(502).set_body_string("upstream down"))
        .expect(3)
        .mount(&server)
        .await;
    let error = client(None, fast_retry(2))
        .send(get(&server, "/items"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "GET {}/items answered HTTP 502 Bad Gateway after 3 attempts: upstream down; the \
             server kept failing; raise retry.maxAttempts or try again later",
            server.uri()
        )
    );
}

#[tokio::test]
async fn max_attempts_counts_the_retries_after_the_first_attempt() {
    // As the Go tool reads it: `maxAttempts: 0` sends once, `maxAttempts: 1` twice.
    for (retries, requests) in [(0, 1), (1, 2)] {
        let server = MockServer::start().await;
        Mock::given(path("/items"))
            .respond_with(ResponseTemplate::new(503))
            .expect(requests)
            .mount(&server)
            .await;
        let error = client(None, fast_retry(retries))
            .send(get(&server, "/items"))
            .await
            .unwrap_err();
        let attempts = if requests == 1 {
            "1 attempt"
        } else {
            "2 attempts"
        };
        assert!(error.to_string().contains(attempts), "{error}");
        server.verify().await;
    }
}

#[tokio::test]
async fn retry_after_in_seconds_is_waited_for() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    ok_at(&server, "/items").await;
    let retry = retry(json!({"maxAttempts": 1, "delayMs": 0, "maxDelayMs": 5_000}));
    let started = Instant::now();
    client(None, retry)
        .send(get(&server, "/items"))
        .await
        .unwrap();
    // Only a lower bound: the backoff alone (0 ms) would return at once.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_waited_for() {
    let server = MockServer::start().await;
    let when = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", when.as_str()))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    ok_at(&server, "/items").await;
    let retry = retry(json!({"maxAttempts": 1, "delayMs": 0, "maxDelayMs": 5_000}));
    let started = Instant::now();
    client(None, retry)
        .send(get(&server, "/items"))
        .await
        .unwrap();
    // The date has whole seconds, so the wait is somewhere in (1 s, 2 s].
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn retry_after_longer_than_the_maximum_delay_is_capped() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "3600"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    ok_at(&server, "/items").await;
    let client = client(None, fast_retry(1));
    let request = client.send(get(&server, "/items"));
    tokio::time::timeout(Duration::from_secs(20), request)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn bad_request_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(400).set_body_string("{\"error\": \"bad filter\"}"))
        .expect(1)
        .mount(&server)
        .await;
    let error = client(None, fast_retry(4))
        .send(get(&server, "/items").query("filter", "x"))
        .await
        .unwrap_err();
    assert_eq!(error.attempts(), Some(1));
    assert_eq!(
        error.to_string(),
        format!(
            "GET {}/items?filter=x answered HTTP 400 Bad Request after 1 attempt: {{\"error\": \
             \"bad filter\"}}; the server rejected the request; it is not retried",
            server.uri()
        )
    );
}

#[tokio::test]
async fn an_untrusted_certificate_is_reported_as_a_certificate_problem_and_not_retried() {
    let server = cannectors_test_support::tls::SelfSigned::start();
    let request = HttpRequest::new(HttpMethod::Get, &server.url("/items")).unwrap();
    let error = client(None, fast_retry(2)).send(request).await.unwrap_err();
    let HttpError::Transport { kind, attempts, .. } = &error else {
        panic!("{error:?}")
    };
    // Another attempt would meet the same certificate.
    assert_eq!(
        (*kind, *attempts),
        (TransportFailure::Certificate, 1),
        "{error}"
    );
    assert!(server.wait_for_connections(1, Duration::from_secs(5)));
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "GET {} failed after 1 attempt: ",
            server.url("/items")
        )),
        "{message}"
    );
    assert!(message.contains("invalid peer certificate"), "{message}");
    assert!(
        message.contains("this is a certificate problem, not a connection one"),
        "{message}"
    );
    assert!(
        !message.contains("check that the server is running"),
        "{message}"
    );
}

#[tokio::test]
async fn refused_connection_is_retried_then_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let request = HttpRequest::new(HttpMethod::Get, &format!("http://{address}/items")).unwrap();
    let error = client(None, fast_retry(2)).send(request).await.unwrap_err();
    let HttpError::Transport { kind, attempts, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!((*kind, *attempts), (TransportFailure::Connect, 3));
    let message = error.to_string();
    assert!(message.starts_with(&format!(
        "GET http://{address}/items failed after 3 attempts: "
    )));
    assert!(
        message.ends_with("check that the server is running and that the host and port are right"),
        "{message}"
    );
}

#[tokio::test]
async fn timeout_is_retried_then_reported() {
    let server = MockServer::start().await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .expect(2)
        .mount(&server)
        .await;
    let client = HttpClient::builder()
        .timeout(Duration::from_millis(200))
        .retry(&fast_retry(1))
        .build()
        .unwrap();
    let error = client.send(get(&server, "/slow")).await.unwrap_err();
    assert!(matches!(
        error,
        HttpError::Transport {
            kind: TransportFailure::Timeout,
            ..
        }
    ));
    assert!(
        error.to_string().contains("failed after 2 attempts"),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .ends_with("raise timeoutMs or check the server"),
        "{error}"
    );
}

#[tokio::test]
async fn sends_method_query_headers_and_json_body() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path("/import"))
        .and(query_param("mode", "a b"))
        .and(header("X-Tenant", "t1"))
        .and(header("content-type", "application/json"))
        .and(header("accept-encoding", "gzip"))
        .and(body_json(json!([{"id": 1}])))
        .respond_with(ResponseTemplate::new(202).insert_header("X-Request-Id", "r-9"))
        .expect(1)
        .mount(&server)
        .await;
    let request = HttpRequest::new(HttpMethod::Patch, &format!("{}/import", server.uri()))
        .unwrap()
        .query("mode", "a b")
        .header("X-Tenant", "t1")
        .json(&json!([{"id": 1}]));
    let response = client(None, fast_retry(0)).send(request).await.unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.header("x-request-id"), Some("r-9"));
}

#[tokio::test]
async fn a_status_outside_the_accepted_list_is_an_error_even_when_2xx() {
    let server = MockServer::start().await;
    Mock::given(path("/a"))
        .respond_with(ResponseTemplate::new(409))
        .mount(&server)
        .await;
    Mock::given(path("/b"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let client = client(None, fast_retry(0));
    let conflict = client
        .send(get(&server, "/a").accept_statuses([200, 409]))
        .await
        .unwrap();
    assert_eq!(conflict.status(), 409);
    let error = client
        .send(get(&server, "/b").accept_statuses([201]))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(200));
}

#[tokio::test]
async fn userinfo_and_key_parameters_never_reach_error_messages() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://ada:pa55@{address}/x?access_token=abc123&page=1");
    let error = client(None, fast_retry(0))
        .send(HttpRequest::new(HttpMethod::Get, &url).unwrap())
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&format!("http://{address}/x?access_token=***&page=1")),
        "{message}"
    );
    assert!(
        !message.contains("pa55") && !message.contains("abc123"),
        "{message}"
    );
}

/// Collects what the client logs.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn retry_logs_never_show_the_key() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(503).set_body_string("no"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    ok_at(&server, "/items").await;
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let credentials = json!({"key": "k-secret-9", "location": "query"});
    // The key also written into the URL by hand, as some pipelines do.
    client(auth("api-key", credentials), fast_retry(2))
        .send(get(&server, "/items?api_key=k-secret-9"))
        .await
        .unwrap();
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("retryable status; trying again"), "{text}");
    assert!(!text.contains("k-secret-9"), "{text}");
}

#[tokio::test]
async fn a_token_answer_without_an_access_token_is_reported() {
    let server = MockServer::start().await;
    Mock::given(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"token": "x"})))
        .mount(&server)
        .await;
    let error = client(oauth2(&server, vec![]), fast_retry(0))
        .send(get(&server, "/items"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "cannot obtain an OAuth2 access token from {}/oauth/token: the token endpoint's \
             answer has no `access_token` string; check credentials.tokenUrl, clientId and \
             clientSecret",
            server.uri()
        )
    );
}

#[tokio::test]
async fn a_token_answer_that_is_not_json_is_reported() {
    let server = MockServer::start().await;
    Mock::given(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>login</html>"))
        .mount(&server)
        .await;
    let error = client(oauth2(&server, vec![]), fast_retry(0))
        .send(get(&server, "/items"))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains(
            "/oauth/token: the token endpoint answered with something that is not JSON (expected \
             value at line 1 column 1)"
        ),
        "{error}"
    );
}

/// Two servers whose origins differ in the host only: 127.0.0.1 and 127.0.0.2 (loopback on
/// Linux) on the same port.
async fn two_origins() -> (MockServer, MockServer) {
    for _ in 0..20 {
        let home = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = home.local_addr().unwrap().port();
        if let Ok(elsewhere) = std::net::TcpListener::bind(("127.0.0.2", port)) {
            let home = MockServer::builder().listener(home).start().await;
            let elsewhere = MockServer::builder().listener(elsewhere).start().await;
            return (home, elsewhere);
        }
    }
    panic!("no port was free on both 127.0.0.1 and 127.0.0.2");
}

/// Answers with a redirect to `target`.
async fn redirect(server: &MockServer, route: &str, status: u16, target: &str) {
    Mock::given(path(route.to_owned()))
        .respond_with(ResponseTemplate::new(status).insert_header("Location", target))
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_followed_without_any_credential() {
    let with_auth = |kind, credentials| (auth(kind, credentials), vec![], "/items");
    let cases = [
        with_auth("api-key", json!({"key": "k-secret-1"})),
        with_auth(
            "api-key",
            json!({"key": "k-secret-2", "headerName": "Api-Token"}),
        ),
        with_auth("api-key", json!({"key": "k-secret-3", "location": "query"})),
        with_auth("bearer", json!({"token": "t-secret-4"})),
        with_auth(
            "basic",
            json!({"username": "ada", "password": "p-secret-5"}),
        ),
        (
            None,
            vec![
                ("Authorization", "Token secret-6"),
                ("Cookie", "session=secret-7"),
                ("Proxy-Authorization", "Basic c2VjcmV0LTg="),
            ],
            "/items",
        ),
        (None, vec![], "userinfo"),
    ];
    for (authentication, headers, route) in cases {
        let (home, elsewhere) = two_origins().await;
        let target = format!("{}/moved?page=2", elsewhere.uri());
        redirect(&home, "/items", 302, &target).await;
        ok_at(&elsewhere, "/moved").await;
        let url = match route {
            "userinfo" => home.uri().replace("http://", "http://ada:secret-9@") + "/items",
            _ => format!("{}/items", home.uri()),
        };
        let mut request = HttpRequest::new(HttpMethod::Get, &url)
            .unwrap()
            .header("Accept", "application/json");
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let response = client(authentication, fast_retry(0))
            .send(request)
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.url().as_str(), target);

        let at_home = &home.received_requests().await.unwrap()[0];
        assert!(
            !in_wiremock_request(at_home).is_empty(),
            "{route} {headers:?}"
        );
        let received = elsewhere.received_requests().await.unwrap();
        assert_eq!(received.len(), 1);
        let moved = &received[0];
        assert_eq!(
            in_wiremock_request(moved),
            Vec::<String>::new(),
            "{headers:?}"
        );
        for (name, value) in &moved.headers {
            let value = value.to_str().unwrap();
            assert!(!value.contains("secret"), "{name}: {value}");
        }
        assert!(!moved.url.as_str().contains("secret"), "{}", moved.url);
        assert_eq!(moved.headers["accept"], "application/json");
    }
}

#[tokio::test]
async fn a_redirect_within_the_origin_keeps_the_credential_and_one_back_home_regains_it() {
    let (home, elsewhere) = two_origins().await;
    redirect(&home, "/items", 301, "/items/v2").await;
    redirect(&home, "/items/v2", 302, &format!("{}/hop", elsewhere.uri())).await;
    redirect(&elsewhere, "/hop", 302, &format!("{}/final", home.uri())).await;
    ok_at(&home, "/final").await;
    let credentials = json!({"key": "k-123"});
    let response = client(auth("api-key", credentials), fast_retry(0))
        .send(get(&home, "/items"))
        .await
        .unwrap();
    assert_eq!(response.url().path(), "/final");
    let home_paths: Vec<(String, Vec<String>)> = home
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| (r.url.path().to_owned(), in_wiremock_request(r)))
        .collect();
    let key = vec!["x-api-key".to_owned()];
    assert_eq!(
        home_paths,
        [
            ("/items".to_owned(), key.clone()),
            ("/items/v2".to_owned(), key.clone()),
            ("/final".to_owned(), key)
        ]
    );
    let hop = &elsewhere.received_requests().await.unwrap()[0];
    assert_eq!(in_wiremock_request(hop), Vec::<String>::new());
}

#[tokio::test]
async fn redirects_keep_or_change_the_method_and_body_as_reqwest_does() {
    let server = MockServer::start().await;
    for (status, route) in [(307, "/307"), (308, "/308"), (303, "/303"), (302, "/302")] {
        redirect(&server, route, status, &format!("/target{route}")).await;
    }
    Mock::given(path_regex("^/target/"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let client = client(None, fast_retry(0));
    for route in ["/307", "/308", "/303", "/302"] {
        let request = HttpRequest::new(HttpMethod::Post, &format!("{}{route}", server.uri()))
            .unwrap()
            .json(&json!({"id": 1}));
        client.send(request).await.unwrap();
    }
    let put = HttpRequest::new(HttpMethod::Put, &format!("{}/302", server.uri()))
        .unwrap()
        .body("kept");
    client.send(put).await.unwrap();
    let landed: Vec<(String, String, String, bool)> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().starts_with("/target/"))
        .map(|r| {
            (
                r.url.path().to_owned(),
                r.method.to_string(),
                String::from_utf8(r.body.clone()).unwrap(),
                r.headers.contains_key("content-type"),
            )
        })
        .collect();
    let row = |path: &str, method: &str, body: &str, typed| {
        (path.to_owned(), method.to_owned(), body.to_owned(), typed)
    };
    assert_eq!(
        landed,
        [
            row("/target/307", "POST", r#"{"id":1}"#, true),
            row("/target/308", "POST", r#"{"id":1}"#, true),
            row("/target/303", "GET", "", false),
            row("/target/302", "GET", "", false),
            row("/target/302", "PUT", "kept", false),
        ]
    );
}

#[tokio::test]
async fn a_server_that_keeps_redirecting_is_left_after_ten_redirects() {
    let server = MockServer::start().await;
    redirect(&server, "/loop", 302, "/loop").await;
    let error = client(None, fast_retry(0))
        .send(get(&server, "/loop"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "GET {}/loop answered HTTP 302 Found after 1 attempt; a redirect that was not \
             followed: it had no usable http or https Location, or it came after 10 redirects \
             in a row",
            server.uri()
        )
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 11);
}

#[tokio::test]
async fn a_refusal_after_a_redirect_elsewhere_says_where_the_credentials_stayed() {
    let (home, elsewhere) = two_origins().await;
    redirect(&home, "/items", 302, &format!("{}/moved", elsewhere.uri())).await;
    Mock::given(path("/moved"))
        .respond_with(ResponseTemplate::new(401).set_body_string("who are you?"))
        .mount(&elsewhere)
        .await;
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let credentials = json!({"token": "t-abc"});
    let error = client(auth("bearer", credentials), fast_retry(0))
        .send(get(&home, "/items"))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(401));
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains(&format!(
            "a redirect led to another origin, which refused the request; credentials are sent \
             only to {}, where they belong url={}/moved status=401",
            home.uri(),
            elsewhere.uri()
        )),
        "{text}"
    );
}

/// Answers with `status` and the parts of the request that carry credentials, as servers
/// that echo the request in their errors do.
fn echo(status: u16) -> impl Fn(&wiremock::Request) -> ResponseTemplate {
    move |request| {
        let mut text = format!("url={}", &request.url[url::Position::BeforePath..]);
        for name in ["authorization", "x-api-key"] {
            if let Some(value) = request.headers.get(name) {
                text.push_str(&format!(" {name}={}", value.to_str().unwrap()));
            }
        }
        ResponseTemplate::new(status).set_body_string(text)
    }
}

/// A secret as a request may carry it: as it is, percent- and form-encoded.
fn encoded(secret: &str) -> Vec<String> {
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    vec![secret.to_owned(), form.replace('+', "%20"), form]
}

/// `user:password` as a basic `Authorization` header carries it.
fn basic(user: &str, password: &str) -> Vec<String> {
    use base64::Engine as _;
    vec![base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))]
}

#[tokio::test]
async fn a_server_echoing_the_request_shows_no_credential_in_any_form() {
    let cases = [
        (
            auth("basic", json!({"username": "ada", "password": "p@ss w/rd"})),
            "",
            [encoded("p@ss w/rd"), basic("ada", "p@ss w/rd")].concat(),
            "authorization=Basic ***",
        ),
        (
            auth("bearer", json!({"token": "t-s3cr3t/+="})),
            "",
            encoded("t-s3cr3t/+="),
            "authorization=Bearer ***",
        ),
        (
            auth("api-key", json!({"key": "k-s3cr3t"})),
            "",
            encoded("k-s3cr3t"),
            "x-api-key=***",
        ),
        (
            auth("api-key", json!({"key": "k s3cr3t/+", "location": "query"})),
            "",
            encoded("k s3cr3t/+"),
            "url=/items?api_key=***",
        ),
        (
            None,
            "ada:p%40ss%2Bw0rd@",
            [encoded("p@ss+w0rd"), basic("ada", "p@ss+w0rd")].concat(),
            "authorization=Basic ***",
        ),
    ];
    for (authentication, userinfo, forms, masked) in cases {
        let server = MockServer::start().await;
        Mock::given(path("/items"))
            .respond_with(echo(400))
            .mount(&server)
            .await;
        let url = server
            .uri()
            .replace("http://", &format!("http://{userinfo}"))
            + "/items";
        let error = client(authentication, fast_retry(0))
            .send(HttpRequest::new(HttpMethod::Get, &url).unwrap())
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains(masked), "{message}");
        for form in &forms {
            assert!(!message.contains(form.as_str()), "{form} in {message}");
        }
    }
}

#[tokio::test]
async fn the_oauth2_client_credentials_and_access_token_are_masked_when_echoed() {
    let server = MockServer::start().await;
    Mock::given(path("/oauth/token"))
        .respond_with(echo(401))
        .mount(&server)
        .await;
    let credentials = json!({"tokenUrl": format!("{}/oauth/token", server.uri()), "clientId": "client one", "clientSecret": "s3c ret/+", "tokenAuthMethod": "client_secret_basic"});
    let error = client(auth("oauth2", credentials), fast_retry(0))
        .send(get(&server, "/items"))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("authorization=Basic ***"), "{message}");
    for form in [encoded("s3c ret/+"), basic("client+one", "s3c+ret%2F%2B")].concat() {
        assert!(!message.contains(form.as_str()), "{form} in {message}");
    }
}

#[tokio::test]
async fn a_client_secret_sent_in_the_form_body_is_masked_when_echoed() {
    let server = MockServer::start().await;
    Mock::given(path("/oauth/token"))
        .respond_with(|request: &wiremock::Request| {
            let body = String::from_utf8_lossy(&request.body).into_owned();
            ResponseTemplate::new(401).set_body_string(format!("invalid client; request: {body}"))
        })
        .mount(&server)
        .await;
    let credentials = json!({"tokenUrl": format!("{}/oauth/token", server.uri()), "clientId": "client one", "clientSecret": "s3c ret/+"});
    let error = client(auth("oauth2", credentials), fast_retry(0))
        .send(get(&server, "/items"))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("request: grant_type=client_credentials"),
        "{message}"
    );
    assert!(message.contains("client_secret=***"), "{message}");
    for form in encoded("s3c ret/+") {
        assert!(!message.contains(form.as_str()), "{form} in {message}");
    }
}

#[tokio::test]
async fn an_oauth2_access_token_is_masked_when_the_api_echoes_it() {
    let server = MockServer::start().await;
    Mock::given(path("/oauth/token"))
        .respond_with(token_response("at-fresh-123", 3600))
        .mount(&server)
        .await;
    Mock::given(path("/items"))
        .respond_with(echo(400))
        .mount(&server)
        .await;
    let error = client(oauth2(&server, vec![]), fast_retry(0))
        .send(get(&server, "/items"))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("authorization=Bearer ***"), "{message}");
    assert!(!message.contains("at-fresh-123"), "{message}");
}

#[tokio::test]
async fn a_request_to_a_url_a_server_sent_carries_no_credential_of_another_origin() {
    let (home, elsewhere) = two_origins().await;
    ok_at(&elsewhere, "/page2").await;
    let credentials = json!({"token": "t-abc"});
    let endpoint = url::Url::parse(&format!("{}/items", home.uri())).unwrap();
    let client = client(auth("bearer", credentials), fast_retry(0));
    let request = get(&elsewhere, "/page2")
        .header("Cookie", "session=abc")
        .credentials_for(&endpoint);
    assert!(client.carries_credentials(&request));
    client.send(request).await.unwrap();
    let sent = &elsewhere.received_requests().await.unwrap()[0];
    assert_eq!(in_wiremock_request(sent), Vec::<String>::new());
}

#[tokio::test]
async fn a_redirect_elsewhere_that_copies_the_api_key_into_its_location_loses_it() {
    let (home, elsewhere) = two_origins().await;
    let target = format!("{}/moved?api_key=k-123&page=2", elsewhere.uri());
    redirect(&home, "/items", 307, &target).await;
    ok_at(&elsewhere, "/moved").await;
    let credentials = json!({"key": "k-123", "location": "query"});
    client(auth("api-key", credentials), fast_retry(0))
        .send(get(&home, "/items"))
        .await
        .unwrap();
    let moved = &elsewhere.received_requests().await.unwrap()[0];
    assert_eq!(moved.url.query(), Some("page=2"));
}

#[tokio::test]
async fn the_timeout_covers_an_attempt_with_all_its_redirects() {
    let server = MockServer::start().await;
    let slow = Duration::from_millis(300);
    for (route, next) in [("/r1", "/r2"), ("/r2", "/r3"), ("/r3", "/r4")] {
        Mock::given(path(route))
            .respond_with(
                ResponseTemplate::new(302)
                    .insert_header("Location", next)
                    .set_delay(slow),
            )
            .mount(&server)
            .await;
    }
    Mock::given(path("/r4"))
        .respond_with(ResponseTemplate::new(200).set_delay(slow))
        .mount(&server)
        .await;
    let client = HttpClient::builder()
        .timeout(Duration::from_millis(700))
        .retry(&fast_retry(0))
        .build()
        .unwrap();
    let error = client.send(get(&server, "/r1")).await.unwrap_err();
    assert!(
        matches!(
            error,
            HttpError::Transport {
                kind: TransportFailure::Timeout,
                ..
            }
        ),
        "{error}"
    );
    assert!(server.received_requests().await.unwrap().len() < 4);
}

/// A server on 127.0.0.1 that answers its n-th connection with the n-th of `answers`, written
/// as raw bytes, and then closes that connection: for answers that no server library sends,
/// such as a body shorter than its `Content-Length`. Returns its address and a counter of the
/// connections it answered.
async fn raw_server(answers: Vec<Vec<u8>>) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let answered = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&answered);
    tokio::spawn(async move {
        for answer in answers {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            // The request head ends with an empty line; these tests send no body.
            let mut head = Vec::new();
            let mut buffer = [0_u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buffer[..n]),
                }
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(&answer).await;
            let _ = stream.shutdown().await;
        }
    });
    (address, answered)
}

fn complete_answer(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A body that stops 90 bytes before the length its header announced.
fn cut_short_answer() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\
      connection: close\r\n\r\n[{\"id\": 1}"
        .to_vec()
}

/// A chunked body whose second chunk size is not hexadecimal.
fn broken_chunk_answer() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\
      connection: close\r\n\r\n5\r\n[{\"id\r\nzz\r\n\": 1}]\r\n0\r\n\r\n"
        .to_vec()
}

#[tokio::test]
async fn a_body_cut_short_before_its_content_length_is_retried() {
    let (address, answered) =
        raw_server(vec![cut_short_answer(), complete_answer("[{\"id\": 1}]")]).await;
    let request = HttpRequest::new(HttpMethod::Get, &format!("http://{address}/items")).unwrap();
    let response = client(None, fast_retry(2)).send(request).await.unwrap();
    assert_eq!(&response.body()[..], b"[{\"id\": 1}]");
    assert_eq!(answered.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_broken_chunked_body_is_retried() {
    let (address, answered) = raw_server(vec![
        broken_chunk_answer(),
        complete_answer("[{\"id\": 1}]"),
    ])
    .await;
    let request = HttpRequest::new(HttpMethod::Get, &format!("http://{address}/items")).unwrap();
    let response = client(None, fast_retry(2)).send(request).await.unwrap();
    assert_eq!(&response.body()[..], b"[{\"id\": 1}]");
    assert_eq!(answered.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_body_cut_short_on_every_attempt_fails_as_a_broken_connection_after_the_retries() {
    let (address, answered) = raw_server(vec![cut_short_answer(); 3]).await;
    let request = HttpRequest::new(HttpMethod::Get, &format!("http://{address}/items")).unwrap();
    let error = client(None, fast_retry(2)).send(request).await.unwrap_err();
    let HttpError::Transport { kind, attempts, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!((*kind, *attempts), (TransportFailure::Connection, 3));
    assert_eq!(answered.load(Ordering::SeqCst), 3);
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "GET http://{address}/items failed after 3 attempts: "
        )),
        "{message}"
    );
    assert!(
        message.ends_with("the connection broke: check the server and the network"),
        "{message}"
    );
}

#[tokio::test]
async fn a_corrupt_gzip_body_is_not_retried() {
    // A complete answer whose gzip content is not gzip: the server sent it as it meant to, so
    // asking again would only get the same bytes.
    let body = b"not gzip at all";
    let mut answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(body);
    let (address, answered) = raw_server(vec![answer.clone(), answer]).await;
    let request = HttpRequest::new(HttpMethod::Get, &format!("http://{address}/items")).unwrap();
    let error = client(None, fast_retry(1)).send(request).await.unwrap_err();
    let HttpError::Transport { kind, attempts, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!((*kind, *attempts), (TransportFailure::Decode, 1), "{error}");
    assert_eq!(answered.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_gzip_body_cut_short_is_retried() {
    // A gzip header and nothing after it, although 100 bytes were announced.
    let mut cut =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n\
      content-length: 100\r\nconnection: close\r\n\r\n"
            .to_vec();
    cut.extend_from_slice(&[0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03]);
    let (address, answered) = raw_server(vec![cut, complete_answer("[]")]).await;
    let request = HttpRequest::new(HttpMethod::Get, &format!("http://{address}/items")).unwrap();
    let response = client(None, fast_retry(1)).send(request).await.unwrap();
    assert_eq!(&response.body()[..], b"[]");
    assert_eq!(answered.load(Ordering::SeqCst), 2);
}

/// Mounts a route that answers `503` with `Retry-After: 20` and reports each request.
async fn unavailable_for_20_seconds(
    server: &MockServer,
    route: &str,
) -> tokio::sync::mpsc::UnboundedReceiver<()> {
    let (responder, arrivals) = Reporting::unavailable_for_20_seconds();
    Mock::given(path(route.to_owned()))
        .respond_with(responder)
        .mount(server)
        .await;
    arrivals
}

fn patient_retry() -> RetryConfig {
    retry(json!({"maxAttempts": 2, "delayMs": 10, "maxDelayMs": 30_000}))
}

#[tokio::test]
async fn a_shutdown_request_cuts_a_retry_wait_short() {
    let server = MockServer::start().await;
    let mut arrivals = unavailable_for_20_seconds(&server, "/items").await;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let client = client(None, patient_retry()).stop_on(stopping);
    let request = tokio::spawn({
        let request = get(&server, "/items");
        async move { client.send(request).await }
    });
    arrivals.recv().await.unwrap();
    stop.send(true).unwrap();
    // Bounded far below the 20 s the server asked for.
    let error = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .expect("the wait was not cut short")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(error, HttpError::Stopped { attempts: 1, .. }),
        "{error:?}"
    );
    assert!(StoppedByShutdown::is_cause_of(&error));
    assert_eq!(
        error.to_string(),
        format!(
            "GET {}/items: stopped by shutdown while waiting to try again after 1 failed attempt",
            server.uri()
        )
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_retry_after_the_stop_was_requested_is_not_sent() {
    let server = MockServer::start().await;
    let _arrivals = unavailable_for_20_seconds(&server, "/items").await;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    stop.send(true).unwrap();
    let error = client(None, patient_retry())
        .stop_on(stopping)
        .send(get(&server, "/items"))
        .await
        .unwrap_err();
    assert!(matches!(error, HttpError::Stopped { .. }), "{error:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_shutdown_during_the_token_request_retry_is_a_stop_not_a_token_failure() {
    let server = MockServer::start().await;
    let mut arrivals = unavailable_for_20_seconds(&server, "/oauth/token").await;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let client = client(oauth2(&server, vec![]), patient_retry()).stop_on(stopping);
    let request = tokio::spawn({
        let request = get(&server, "/items");
        async move { client.send(request).await }
    });
    arrivals.recv().await.unwrap();
    stop.send(true).unwrap();
    let error = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .expect("the wait was not cut short")
        .unwrap()
        .unwrap_err();
    assert!(matches!(error, HttpError::Stopped { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("/oauth/token: stopped by shutdown"),
        "{error}"
    );
}

#[tokio::test]
async fn a_stop_signal_that_stays_false_lets_the_retry_happen() {
    let server = MockServer::start().await;
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    ok_at(&server, "/items").await;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    client(None, fast_retry(1))
        .stop_on(stopping)
        .send(get(&server, "/items"))
        .await
        .unwrap();
    drop(stop);
}
