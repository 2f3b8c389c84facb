//! Each pagination type through the binary: what is requested, where it stops, and the offset
//! cursor across runs.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::support::Workspace;
use crate::support::http::{Response, Server};

fn records(range: std::ops::Range<i64>) -> Vec<Value> {
    range.map(|id| json!({"id": id})).collect()
}

fn write_pipeline(ws: &Workspace, endpoint: &str, pagination: &str, persistence: &str) {
    ws.write(
        "p.yaml",
        &format!(
            "name: paged\ninput:\n  type: httpPolling\n  endpoint: {endpoint}\n  dataField: items\n  \
             pagination: {pagination}\n{persistence}output: {{type: file, path: out.jsonl}}\n"
        ),
    );
}

fn delivered_ids(ws: &Workspace) -> Vec<i64> {
    ws.read("out.jsonl")
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

fn run_ok(ws: &Workspace) {
    let out = ws.run(&["run", "p.yaml"]);
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[test]
fn page_pagination_stops_after_the_last_page() {
    let server = Server::start(|request| {
        let page: i64 = request.param("page").unwrap().parse().unwrap();
        Response::json(&json!({"pages": 3, "items": records(page * 10..page * 10 + 2)}))
    });
    let ws = Workspace::new();
    write_pipeline(
        &ws,
        &server.url("/items"),
        "{type: page, param: page, totalPagesField: pages}",
        "",
    );
    run_ok(&ws);
    let pages: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.param("page").unwrap().to_owned())
        .collect();
    assert_eq!(pages, ["1", "2", "3"]);
    assert_eq!(delivered_ids(&ws), [10, 11, 20, 21, 30, 31]);
}

#[test]
fn cursor_pagination_follows_tokens_until_there_is_none() {
    let server = Server::start(|request| match request.param("after") {
        None => Response::json(&json!({"items": records(1..3), "next": "t2"})),
        Some("t2") => Response::json(&json!({"items": records(3..5), "next": "t3"})),
        Some(_) => Response::json(&json!({"items": records(5..6), "next": null})),
    });
    let ws = Workspace::new();
    write_pipeline(
        &ws,
        &server.url("/items"),
        "{type: cursor, param: after, nextCursorField: next}",
        "",
    );
    run_ok(&ws);
    let tokens: Vec<Option<String>> = server
        .requests()
        .iter()
        .map(|r| r.param("after").map(str::to_owned))
        .collect();
    assert_eq!(tokens, [None, Some("t2".into()), Some("t3".into())]);
    assert_eq!(delivered_ids(&ws), [1, 2, 3, 4, 5]);
}

#[test]
fn link_pagination_follows_rel_next_and_resolves_relative_links() {
    let server = Server::start(|request| match request.param("p") {
        None => Response::json(&json!({"items": records(1..3)})).with_header(
            "link",
            "</items?p=2>; rel=\"next\", </items?p=9>; rel=\"last\"",
        ),
        Some("2") => Response::json(&json!({"items": records(3..4)})),
        Some(_) => Response::status(404, "no such page"),
    });
    let ws = Workspace::new();
    write_pipeline(&ws, &server.url("/items"), "{type: link}", "");
    run_ok(&ws);
    assert_eq!(server.requests().len(), 2);
    assert_eq!(delivered_ids(&ws), [1, 2, 3]);
}

#[test]
fn a_page_shorter_than_the_limit_ends_the_run_without_another_request() {
    let server = Server::start(|request| {
        let offset: i64 = request.param("offset").unwrap().parse().unwrap();
        let end = (offset + 4).min(10);
        Response::json(&json!({"items": records(offset..end)}))
    });
    let ws = Workspace::new();
    write_pipeline(
        &ws,
        &server.url("/items"),
        "{type: offset, param: offset, limitParam: limit, limit: 4}",
        "",
    );
    run_ok(&ws);
    let offsets: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.param("offset").unwrap().to_owned())
        .collect();
    assert_eq!(
        offsets,
        ["0", "4", "8"],
        "the page of 2 at offset 8 is the last"
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.param("limit") == Some("4"))
    );
    assert_eq!(delivered_ids(&ws), (0..10).collect::<Vec<_>>());
}

#[test]
fn an_empty_page_ends_the_run() {
    let server = Server::start(|request| match request.param("offset") {
        Some("0") => Response::json(&json!({"items": records(0..3), "total": 100})),
        _ => Response::json(&json!({"items": [], "total": 100})),
    });
    let ws = Workspace::new();
    write_pipeline(
        &ws,
        &server.url("/items"),
        "{type: offset, totalField: total}",
        "",
    );
    run_ok(&ws);
    assert_eq!(server.requests().len(), 2);
    assert_eq!(delivered_ids(&ws), [0, 1, 2]);
}

#[test]
fn the_offset_cursor_starts_the_next_run_where_the_last_one_ended() {
    // An append-only API: records never change, new ones are appended.
    let log = Arc::new(Mutex::new(records(0..12)));
    let server = {
        let log = Arc::clone(&log);
        Server::start(move |request| {
            let offset: usize = request.param("offset").unwrap().parse().unwrap();
            let log = log.lock().unwrap();
            let page: Vec<Value> = log.iter().skip(offset).take(5).cloned().collect();
            Response::json(&json!({"items": page, "total": log.len()}))
        })
    };
    let ws = Workspace::new();
    write_pipeline(
        &ws,
        &server.url("/log"),
        "{type: offset, param: offset, limitParam: limit, limit: 5, totalField: total}",
        "  statePersistence:\n    offset: {enabled: true}\n",
    );
    run_ok(&ws);
    let state: Value = serde_json::from_str(&ws.read(".cannectors-state/paged.json")).unwrap();
    assert_eq!(state["offset"], 12);

    log.lock().unwrap().extend(records(12..15));
    run_ok(&ws);
    let second: Vec<String> = server.requests()[3..]
        .iter()
        .map(|r| r.param("offset").unwrap().to_owned())
        .collect();
    assert_eq!(
        second,
        ["12"],
        "the second run starts at the committed offset"
    );
    assert_eq!(delivered_ids(&ws), (0..15).collect::<Vec<_>>());
    let state: Value = serde_json::from_str(&ws.read(".cannectors-state/paged.json")).unwrap();
    assert_eq!(state["offset"], 15);
}

#[test]
fn a_server_that_ignores_the_offset_parameter_ends_the_run_with_exit_3_before_any_duplicate() {
    let server = Server::start(|_| Response::json(&json!({"items": records(1..3)})));
    let ws = Workspace::new();
    write_pipeline(
        &ws,
        &server.url("/items"),
        "{type: offset, param: offset}",
        "",
    );
    let out = ws.run(&["run", "p.yaml"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "{}?offset=2 answered page 2 of this run with exactly the records of the page before \
             it; the server seems to ignore the `offset` query parameter",
            server.url("/items")
        )),
        "{}",
        out.stderr
    );
    assert_eq!(delivered_ids(&ws), [1, 2], "the first page, once");
    assert_eq!(server.requests().len(), 2);
}
