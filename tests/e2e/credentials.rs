//! Where credentials go and where they show: redirects and next links from 127.0.0.1 to
//! another origin, 127.0.0.2, and servers that echo the request in their error bodies.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::Workspace;
use crate::support::http::{Request, Response, Server};

fn records(range: std::ops::Range<i64>) -> Value {
    json!({"items": range.map(|id| json!({"id": id})).collect::<Vec<_>>()})
}

fn write_pipeline(ws: &Workspace, endpoint: &str, input: &str) {
    ws.write(
        "p.yaml",
        &format!(
            "name: creds\ninput:\n  type: httpPolling\n  endpoint: {endpoint}\n  dataField: items\n\
             {input}  statePersistence:\n    id: {{field: id, queryParam: after_id}}\noutput: {{type: file, path: out.jsonl}}\n"
        ),
    );
}

fn delivered(ws: &Workspace) -> usize {
    std::fs::read_to_string(ws.path().join("out.jsonl")).map_or(0, |text| text.lines().count())
}

const SECRET: &str = "s3cret-e2e-value";

#[test]
fn a_redirect_to_another_host_is_followed_without_the_api_key() {
    let key_in_header = "  authentication:\n    type: api-key\n    credentials: {key: \"${SOURCE_KEY}\", headerName: X-Source-Key}\n";
    let key_in_query = "  authentication:\n    type: api-key\n    credentials: {key: \"${SOURCE_KEY}\", location: query}\n";
    for authentication in [key_in_header, key_in_query] {
        let elsewhere = Server::start_at("127.0.0.2", |_| Response::json(&records(1..3)));
        let target = elsewhere.url("/moved?from=redirect");
        let home =
            Server::start(move |_| Response::status(302, "").with_header("location", &target));
        let ws = Workspace::new();
        write_pipeline(&ws, &home.url("/items"), authentication);
        let out = ws
            .command(&["run", "p.yaml"])
            .env("SOURCE_KEY", SECRET)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_eq!(
            delivered(&ws),
            2,
            "the records of the other host were delivered"
        );
        assert!(!home.requests()[0].credentials().is_empty());
        let moved = elsewhere.requests();
        assert_eq!(moved.len(), 1);
        assert_eq!(moved[0].credentials(), Vec::<String>::new(), "{moved:?}");
        assert_eq!(moved[0].param("from"), Some("redirect"));
        for value in moved[0].headers.values().chain(moved[0].query.values()) {
            assert!(!value.contains(SECRET), "{moved:?}");
        }
    }
}

#[test]
fn a_next_link_to_another_host_stops_the_run_before_the_token_goes_there() {
    let elsewhere = Server::start_at("127.0.0.2", |_| Response::json(&records(3..5)));
    let link = format!("<{}>; rel=next", elsewhere.url("/items?page=2"));
    let home = Server::start(move |_| Response::json(&records(1..3)).with_header("link", &link));
    let ws = Workspace::new();
    write_pipeline(
        &ws,
        &home.url("/items"),
        "  pagination: {type: link}\n  authentication:\n    type: bearer\n    credentials: {token: \"${SOURCE_TOKEN}\"}\n",
    );
    let seeded = "{\"id\": 0}\n";
    ws.write(".cannectors-state/creds.json", seeded);
    let out = ws
        .command(&["run", "p.yaml"])
        .env("SOURCE_TOKEN", SECRET)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let origin = home.url("");
    assert!(
        stderr.contains(&format!(
            "the next link `{}` leads away from {origin}, the origin of input.endpoint; the \
             input's credentials are sent only there",
            elsewhere.url("/items?page=2")
        )),
        "{stderr}"
    );
    assert_eq!(
        elsewhere.requests().len(),
        0,
        "nothing went to the other host"
    );
    assert_eq!(
        home.requests()[0]
            .headers
            .get("authorization")
            .map(String::as_str),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert_eq!(delivered(&ws), 0);
    assert_eq!(ws.read(".cannectors-state/creds.json"), seeded);
}

/// Answers 401 with what the request carried, as servers that echo the request in their
/// errors do: the query as the client encoded it, the authorization and a custom header.
fn echo(request: &Request) -> Response {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&request.query)
        .finish();
    let header = |name: &str| request.headers.get(name).cloned().unwrap_or_default();
    Response::status(
        401,
        &format!(
            "url={}?{query} authorization={} x-tenant={}",
            request.path,
            header("authorization"),
            header("x-tenant")
        ),
    )
}

/// Every form a secret takes on the way: as it is, percent- and form-encoded, escaped in JSON.
fn forms(secret: &str) -> Vec<String> {
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let json = serde_json::to_string(secret).unwrap();
    vec![
        secret.to_owned(),
        form.replace('+', "%20"),
        form,
        json[1..json.len() - 1].to_owned(),
    ]
}

#[test]
fn a_server_echoing_the_request_shows_no_secret_in_either_log_format() {
    let password = "p@ss w/\"rd";
    let tenant = "tt-\"quoted\"\\back";
    let account = "acc k/+1";
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("ada:{password}"));
    let mut hidden = [forms(password), forms(tenant), forms(account)].concat();
    hidden.push(basic);

    let server = Server::start(echo);
    let ws = Workspace::new();
    write_pipeline(
        &ws,
        &server.url("/items"),
        "  headers: {X-Tenant: \"${TENANT_TOKEN}\"}\n  queryParams: {account: \"${ACCOUNT_TOKEN}\"}\n  \
         authentication:\n    type: basic\n    credentials: {username: ada, password: \"${SOURCE_PASSWORD}\"}\n",
    );
    for format in ["human", "json"] {
        let out = ws
            .command(&["--log-format", format, "run", "p.yaml"])
            .env("SOURCE_PASSWORD", password)
            .env("TENANT_TOKEN", tenant)
            .env("ACCOUNT_TOKEN", account)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        // The echo is in the message, masked: by the HTTP client for the credential it
        // sends, by the binary for the values that came from the environment.
        for shown in [
            "authorization=Basic ***",
            "x-tenant=${TENANT_TOKEN}",
            "account=${ACCOUNT_TOKEN}",
        ] {
            assert!(
                stderr.contains(shown),
                "{format}: `{shown}` not in {stderr}"
            );
        }
        for secret in &hidden {
            assert!(
                !stderr.contains(secret.as_str()),
                "{format}: `{secret}` in {stderr}"
            );
        }
    }
    let sent = &server.requests()[0];
    assert_eq!(sent.param("account"), Some(account));
    assert_eq!(sent.headers["x-tenant"], tenant);
}
