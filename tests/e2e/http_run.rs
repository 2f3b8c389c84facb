//! `cannectors run` with an httpPolling input against a source API on 127.0.0.1.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::http::{Request, Response, Server};
use crate::support::{Workspace, output_within};

/// A source API holding events, answering like a real incremental API: it filters on the
/// (updated_after, after_id) keyset it is given and pages with offset/limit over what is left.
#[derive(Clone)]
struct EventsApi {
    events: Arc<Mutex<Vec<Value>>>,
    page_delay: Duration,
}

fn event(id: i64, second: u32) -> Value {
    json!({"event": {"id": id, "timestamp": format!("2026-01-01T00:{:02}:{:02}Z", second / 60, second % 60)}, "payload": format!("p{id}")})
}

fn key(event: &Value) -> (String, i64) {
    (
        event["event"]["timestamp"].as_str().unwrap().to_owned(),
        event["event"]["id"].as_i64().unwrap(),
    )
}

impl EventsApi {
    fn new(events: Vec<Value>) -> EventsApi {
        EventsApi {
            events: Arc::new(Mutex::new(events)),
            page_delay: Duration::ZERO,
        }
    }

    fn add(&self, events: Vec<Value>) {
        self.events.lock().unwrap().extend(events);
    }

    fn answer(&self, request: &Request) -> Response {
        let after_ts = request.param("updated_after").map(str::to_owned);
        let after_id: Option<i64> = request.param("after_id").and_then(|v| v.parse().ok());
        let matching: Vec<Value> = self
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| {
                let (ts, id) = key(e);
                match (&after_ts, after_id) {
                    (Some(after_ts), Some(after_id)) => {
                        (ts.as_str(), id) > (after_ts.as_str(), after_id)
                    }
                    (Some(after_ts), None) => ts.as_str() > after_ts.as_str(),
                    _ => true,
                }
            })
            .cloned()
            .collect();
        let offset: usize = request
            .param("offset")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let limit: usize = request
            .param("limit")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        let page: Vec<Value> = matching.iter().skip(offset).take(limit).cloned().collect();
        Response::json(&json!({"total": matching.len(), "events": page})).delayed(self.page_delay)
    }

    fn serve(&self) -> Server {
        let api = self.clone();
        Server::start(move |request| api.answer(request))
    }
}

fn pipeline(ws: &Workspace, server: &Server, extra_input: &str, output: &str) {
    ws.write(
        "events.yaml",
        &format!(
            r#"name: events-sync
input:
  type: httpPolling
  endpoint: {}
  dataField: events
{extra_input}
  statePersistence:
    timestamp: {{enabled: true, field: event.timestamp, queryParam: updated_after}}
    id: {{enabled: true, field: event.id, queryParam: after_id}}
    storagePath: ./.cannectors-state
filters: []
output: {output}
"#,
            server.url("/api/events")
        ),
    );
}

const PAGED: &str =
    "  pagination: {type: offset, param: offset, limitParam: limit, limit: 5, totalField: total}";
const FILE_OUT: &str = "{type: file, path: out.jsonl}";

fn delivered(ws: &Workspace) -> Vec<Value> {
    match std::fs::read_to_string(ws.path().join("out.jsonl")) {
        Ok(text) => text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn ids(records: &[Value]) -> Vec<i64> {
    records
        .iter()
        .map(|r| r["event"]["id"].as_i64().unwrap())
        .collect()
}

fn state_file(ws: &Workspace) -> Value {
    serde_json::from_str(&ws.read(".cannectors-state/events-sync.json")).unwrap()
}

#[test]
fn second_run_sends_the_greatest_delivered_position_on_every_page() {
    let api = EventsApi::new((1..=12).map(|i| event(i, (i as u32) / 2)).collect());
    let server = api.serve();
    let ws = Workspace::new();
    pipeline(&ws, &server, PAGED, FILE_OUT);

    let first = ws.run(&["run", "events.yaml"]);
    assert_eq!(first.code, Some(0), "{first:?}");
    assert!(first.stderr.contains("read=12"), "{first:?}");
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "pages of 5, 5 and 2");
    for request in &requests {
        assert_eq!(request.param("updated_after"), None, "{request:?}");
        assert_eq!(request.param("after_id"), None, "{request:?}");
    }
    assert_eq!(ids(&delivered(&ws)), (1..=12).collect::<Vec<_>>());
    let state = state_file(&ws);
    assert_eq!(state["timestamp"], "2026-01-01T00:00:06Z");
    assert_eq!(state["id"], 12);

    api.add((13..=19).map(|i| event(i, 100 + i as u32)).collect());
    let second = ws.run(&["run", "events.yaml"]);
    assert_eq!(second.code, Some(0), "{second:?}");
    let requests = server.requests();
    let second_run = &requests[3..];
    assert_eq!(second_run.len(), 2, "pages of 5 and 2: {second_run:?}");
    for request in second_run {
        assert_eq!(request.param("updated_after"), Some("2026-01-01T00:00:06Z"));
        assert_eq!(request.param("after_id"), Some("12"));
    }
    assert_eq!(ids(&delivered(&ws)), (1..=19).collect::<Vec<_>>());

    let third = ws.run(&["run", "events.yaml"]);
    assert_eq!(third.code, Some(0), "{third:?}");
    assert!(third.stderr.contains("nothing new"), "{third:?}");
    assert_eq!(delivered(&ws).len(), 19);
}

#[test]
fn the_documented_pipeline_omits_cursors_on_the_first_run_and_sends_them_on_the_next() {
    let api = EventsApi::new(vec![event(1, 1), event(2, 2)]);
    let server = api.serve();
    let ws = Workspace::new();
    pipeline(&ws, &server, "", "{type: stdout}");
    let first = ws.run(&["run", "events.yaml"]);
    assert_eq!(first.code, Some(0), "{first:?}");
    assert_eq!(first.stdout.lines().count(), 2, "{first:?}");
    let second = ws.run(&["run", "events.yaml"]);
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(second.stdout, "");
    let requests = server.requests();
    assert_eq!(requests[0].query, BTreeMap::new());
    assert_eq!(
        requests[1].param("updated_after"),
        Some("2026-01-01T00:00:02Z")
    );
    assert_eq!(requests[1].param("after_id"), Some("2"));
}

#[test]
fn a_custom_storage_path_holds_the_state_and_the_next_run_reads_it_back() {
    let api = EventsApi::new(vec![event(1, 1), event(2, 2)]);
    let server = api.serve();
    let ws = Workspace::new();
    pipeline(&ws, &server, "", FILE_OUT);
    let yaml = ws
        .read("events.yaml")
        .replace("./.cannectors-state", "./var/cursors");
    ws.write("events.yaml", &yaml);

    assert_eq!(ws.run(&["run", "events.yaml"]).code, Some(0));
    assert!(ws.path().join("var/cursors/events-sync.json").is_file());
    assert!(
        !ws.path().join(".cannectors-state").exists(),
        "no state in the default place"
    );
    let state_files: Vec<_> = walk(ws.path())
        .into_iter()
        .filter(|p| p.ends_with("events-sync.json"))
        .collect();
    assert_eq!(state_files.len(), 1, "{state_files:?}");

    assert_eq!(ws.run(&["run", "events.yaml"]).code, Some(0));
    assert_eq!(server.requests()[1].param("after_id"), Some("2"));
    assert_eq!(delivered(&ws).len(), 2);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_state_file_seeded_by_hand_is_honoured() {
    let api = EventsApi::new((1..=6).map(|i| event(i, i as u32 * 10)).collect());
    let server = api.serve();
    let ws = Workspace::new();
    pipeline(&ws, &server, "", FILE_OUT);
    let yaml = ws.read("events.yaml").replace(
        "    id: {enabled: true, field: event.id, queryParam: after_id}\n",
        "",
    );
    ws.write("events.yaml", &yaml);
    ws.write(
        ".cannectors-state/events-sync.json",
        r#"{"timestamp": "2026-01-01T00:00:30Z"}"#,
    );
    let out = ws.run(&["run", "events.yaml"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        server.requests()[0].param("updated_after"),
        Some("2026-01-01T00:00:30Z")
    );
    assert_eq!(ids(&delivered(&ws)), vec![4, 5, 6]);
}

#[test]
fn records_reach_the_file_as_the_source_wrote_them_one_a_line() {
    let first = "{\n      \"event\": {\"id\": 1, \"timestamp\": \"2026-01-01T00:00:01Z\"},\r\n      \
                 \"amount\": 12.50,\n      \"big\": 123456789012345678901234567890\n    }";
    let second = r#"{"event":{"id":2,"timestamp":"2026-01-01T00:00:02Z"},"note":"a\nb"}"#;
    let body = format!("{{\n  \"events\": [\n    {first},\n    {second}\n  ]\n}}\n");
    let server = Server::start(move |_| Response::status(200, &body));
    let ws = Workspace::new();
    pipeline(&ws, &server, "", FILE_OUT);
    let out = ws.run(&["run", "events.yaml"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let expected = format!("{}\n{second}\n", first.replace(['\r', '\n'], ""));
    assert_eq!(ws.read("out.jsonl"), expected);
    assert_eq!(state_file(&ws)["id"], json!(2));
}

#[test]
fn a_503_is_retried_and_the_run_succeeds() {
    let calls = Arc::new(Mutex::new(0));
    let server = {
        let calls = Arc::clone(&calls);
        Server::start(move |_| {
            let mut calls = calls.lock().unwrap();
            *calls += 1;
            if *calls == 1 {
                Response::status(503, "busy").with_header("retry-after", "1")
            } else {
                Response::json(&json!({"events": [event(1, 1)]}))
            }
        })
    };
    let ws = Workspace::new();
    pipeline(
        &ws,
        &server,
        "  retry: {maxAttempts: 2, delayMs: 10}",
        FILE_OUT,
    );
    let started = Instant::now();
    let out = ws.run(&["run", "events.yaml"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(server.requests().len(), 2);
    assert_eq!(delivered(&ws).len(), 1);
}

/// Runs a pipeline whose source or destination misbehaves and checks that the run fails with
/// exit code 3 and `message`, and that the state file is byte-for-byte unchanged.
fn fails_and_keeps_state(source: Server, output: &str, message: &str) {
    let ws = Workspace::new();
    pipeline(
        &ws,
        &source,
        "  retry: {maxAttempts: 1, delayMs: 10}",
        output,
    );
    let seeded = "{\"timestamp\": \"2026-01-01T00:00:00Z\", \"id\": 0}\n";
    ws.write(".cannectors-state/events-sync.json", seeded);
    let out = ws.run(&["run", "events.yaml"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        out.stderr.contains(message),
        "expected `{message}` in: {}",
        out.stderr
    );
    assert_eq!(ws.read(".cannectors-state/events-sync.json"), seeded);
    assert!(
        !ws.path()
            .join(".cannectors-state/events-sync.json.tmp")
            .exists(),
        "the state prepared for the failed batch was removed"
    );
}

#[test]
fn a_400_from_the_source_ends_the_run_with_exit_3_and_the_state_unchanged() {
    let source = Server::start(|_| Response::status(400, "bad filter"));
    fails_and_keeps_state(source, FILE_OUT, "400");
}

#[test]
fn malformed_json_ends_the_run_with_exit_3_and_the_state_unchanged() {
    let source = Server::start(|_| Response::status(200, "{\"events\": [1, 2"));
    fails_and_keeps_state(source, FILE_OUT, "JSON");
}

#[test]
fn a_missing_data_field_ends_the_run_with_exit_3_and_the_state_unchanged() {
    let source = Server::start(|_| Response::json(&json!({"items": []})));
    fails_and_keeps_state(source, FILE_OUT, "events");
}

#[test]
fn a_destination_that_keeps_failing_ends_the_run_with_exit_3_and_the_state_unchanged() {
    let source = EventsApi::new(vec![event(1, 1), event(2, 2)]).serve();
    let destination = Server::start(|_| Response::status(500, "down"));
    let output = format!(
        "{{type: httpRequest, endpoint: '{}', retry: {{maxAttempts: 1, delayMs: 10}}}}",
        destination.url("/import")
    );
    fails_and_keeps_state(source, &output, "500");
    let requests = destination.requests();
    assert_eq!(requests.len(), 2, "one request and one retry");
    assert_eq!(requests[0].method, "POST");
    assert_eq!(
        requests[0].headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    let sent: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(
        ids(sent.as_array().unwrap()),
        vec![1, 2],
        "the batch as one JSON array"
    );
}

#[test]
fn a_second_run_of_the_same_pipeline_exits_with_a_lock_message_and_delivers_nothing() {
    let mut api = EventsApi::new((1..=10).map(|i| event(i, i as u32)).collect());
    api.page_delay = Duration::from_millis(400);
    let server = api.serve();
    let ws = Workspace::new();
    pipeline(&ws, &server, PAGED, FILE_OUT);
    let mut first = ws
        .command(&["run", "events.yaml"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        server.wait_for_requests(1, Duration::from_secs(10)),
        "the first run sent no request"
    );
    let second = ws.run(&["run", "events.yaml"]);
    assert_eq!(second.code, Some(3), "{second:?}");
    assert!(second.stderr.contains("already running"), "{second:?}");
    assert_eq!(first.wait().unwrap().code(), Some(0));
    assert_eq!(
        ids(&delivered(&ws)),
        (1..=10).collect::<Vec<_>>(),
        "only the first run delivered"
    );
}

/// Kills the run with SIGKILL once the output holds at least each of `kill_after` lines, runs
/// it again each time, and finally lets it complete.
fn kill_and_restart(ws: &Workspace, kill_after: &[usize]) -> usize {
    let mut kills = 0;
    for &threshold in kill_after {
        let mut child = ws
            .command(&["run", "events.yaml"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if delivered_lines(ws) >= threshold {
                child.kill().unwrap(); // SIGKILL
                kills += 1;
                break;
            }
            assert!(Instant::now() < deadline, "the run made no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        child.wait().unwrap();
    }
    let last = ws.run(&["run", "events.yaml"]);
    assert_eq!(last.code, Some(0), "{last:?}");
    kills
}

fn delivered_lines(ws: &Workspace) -> usize {
    std::fs::read(ws.path().join("out.jsonl"))
        .map(|bytes| bytes.iter().filter(|b| **b == b'\n').count())
        .unwrap_or(0)
}

/// Every page a delivery of its own (`batchSize: 1`): each kill re-sends at most one page.
fn assert_no_loss_and_bounded_duplicates(api: EventsApi) {
    assert_no_loss_and_bounded_duplicates_with(
        api,
        "{type: file, path: out.jsonl, batchSize: 1}",
        5,
        &[3, 12, 21, 33],
    );
}

/// Kills the run at each of `kill_after` lines of output: every record is delivered, and each
/// kill re-sends at most `per_kill` records (one delivery).
fn assert_no_loss_and_bounded_duplicates_with(
    api: EventsApi,
    output: &str,
    per_kill: usize,
    kill_after: &[usize],
) {
    let total = api.events.lock().unwrap().len();
    let server = api.serve();
    let ws = Workspace::new();
    pipeline(&ws, &server, PAGED, output);

    let kills = kill_and_restart(&ws, kill_after);
    let records = delivered(&ws);
    let mut seen = ids(&records);
    let lines = seen.len();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), total, "every record delivered, none lost");
    assert!(kills >= 3, "the kills landed mid-run ({kills})");
    assert!(
        lines - total <= kills * per_kill,
        "{} duplicates after {kills} kills: more than one delivery of {per_kill} per kill",
        lines - total
    );

    let again = ws.run(&["run", "events.yaml"]);
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(
        delivered(&ws).len(),
        lines,
        "a completed sync delivers nothing new"
    );
}

#[test]
fn sigkill_at_several_points_loses_nothing_and_resends_at_most_one_page_per_kill() {
    let mut api = EventsApi::new((1..=40).map(|i| event(i, i as u32)).collect());
    api.page_delay = Duration::from_millis(60);
    assert_no_loss_and_bounded_duplicates(api);
}

#[test]
fn sigkill_during_gathered_deliveries_loses_nothing_and_resends_at_most_one_delivery_per_kill() {
    let mut api = EventsApi::new((1..=60).map(|i| event(i, i as u32)).collect());
    api.page_delay = Duration::from_millis(60);
    // Three pages of 5 a delivery: the output grows 15 lines at a time.
    assert_no_loss_and_bounded_duplicates_with(
        api,
        "{type: file, path: out.jsonl, batchSize: 15}",
        15,
        &[10, 25, 40, 55],
    );
}

/// The records of each delivery of a run, in order, from its debug log.
fn deliveries(ws: &Workspace) -> Vec<usize> {
    let out = output_within(
        {
            let mut command = ws.command(&["run", "events.yaml"]);
            command.env("RUST_LOG", "warn,cannectors_runtime=debug");
            command
        },
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    out.stderr
        .lines()
        .filter(|line| line.contains("batch committed"))
        .filter_map(|line| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix("records="))
                .and_then(|count| count.parse().ok())
        })
        .collect()
}

#[test]
fn without_batch_size_a_fast_source_s_pages_are_gathered_into_fewer_deliveries() {
    let server = EventsApi::new((1..=23).map(|i| event(i, i as u32)).collect()).serve();
    let ws = Workspace::new();
    pipeline(&ws, &server, PAGED, FILE_OUT);

    let deliveries = deliveries(&ws);
    assert_eq!(deliveries.iter().sum::<usize>(), 23, "{deliveries:?}");
    // Five pages of at most 5 answered at once: each page arrives well within the 200 ms a
    // delivery waits for the next.
    assert!(
        deliveries.len() < 5,
        "{deliveries:?}: a delivery a page, nothing gathered"
    );
    assert_eq!(ids(&delivered(&ws)), (1..=23).collect::<Vec<_>>());
    assert_eq!(state_file(&ws)["id"], json!(23));
}

#[test]
fn without_batch_size_a_slow_source_s_pages_go_out_without_waiting_for_the_next() {
    let mut api = EventsApi::new((1..=12).map(|i| event(i, i as u32)).collect());
    // Longer than the 200 ms a delivery waits for the next page.
    api.page_delay = Duration::from_millis(400);
    let server = api.serve();
    let ws = Workspace::new();
    pipeline(&ws, &server, PAGED, FILE_OUT);

    assert_eq!(deliveries(&ws), [5, 5, 2], "each page went out on its own");
    assert_eq!(ids(&delivered(&ws)), (1..=12).collect::<Vec<_>>());
}

#[test]
fn batch_size_gathers_pages_into_one_request_and_commit_per_delivery() {
    let source = EventsApi::new((1..=23).map(|i| event(i, i as u32)).collect()).serve();
    let destination = Server::start(|_| Response::status(200, ""));
    let ws = Workspace::new();
    let output = format!(
        "{{type: httpRequest, endpoint: '{}', batchSize: 10}}",
        destination.url("/import")
    );
    pipeline(&ws, &source, PAGED, &output);

    let out = ws.run(&["run", "events.yaml"]);
    assert_eq!(out.code, Some(0), "{out:?}");

    let sizes: Vec<Vec<i64>> = destination
        .requests()
        .iter()
        .map(|request| {
            let sent: Value = serde_json::from_slice(&request.body).unwrap();
            ids(sent.as_array().unwrap())
        })
        .collect();
    assert_eq!(
        sizes,
        vec![
            (1..=10).collect::<Vec<_>>(),
            (11..=20).collect(),
            (21..=23).collect()
        ],
        "pages of 5 gathered two by two, the last one when the source ended"
    );
    let state = state_file(&ws);
    assert_eq!(state["id"], json!(23), "{state}");
}

#[test]
fn sigkill_loses_nothing_when_pages_are_not_sorted_by_the_cursor() {
    // A fixed permutation: the newest records come first, the oldest last.
    let order: Vec<i64> = (1..=40).map(|i| (i * 17) % 41).collect();
    let mut api = EventsApi::new(order.into_iter().map(|i| event(i, i as u32)).collect());
    api.page_delay = Duration::from_millis(60);
    assert_no_loss_and_bounded_duplicates(api);
}

#[test]
fn values_from_environment_variables_never_reach_the_terminal() {
    let source = Server::start(|_| Response::status(400, "no such tenant"));
    let ws = Workspace::new();
    ws.write(
        "events.yaml",
        &format!(
            "name: tenant-sync\ninput:\n  type: httpPolling\n  endpoint: {}\noutput: {{type: stdout}}\n",
            source.url("/tenants/${TENANT_SECRET}/events")
        ),
    );
    let out = ws
        .command(&["run", "events.yaml"])
        .env("TENANT_SECRET", "t0p-s3cret-tenant")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(
        source.requests()[0].path,
        "/tenants/t0p-s3cret-tenant/events"
    );
    assert!(!stderr.contains("t0p-s3cret-tenant"), "{stderr}");
    assert!(stderr.contains("${TENANT_SECRET}"), "{stderr}");
}

#[test]
fn a_dry_run_shows_the_records_but_sends_and_commits_nothing() {
    let source = EventsApi::new(vec![event(1, 1), event(2, 2)]).serve();
    let destination = Server::start(|_| Response::status(200, ""));
    let ws = Workspace::new();
    let endpoint = destination.url("/import?api_key=k-42&mode=bulk");
    let output = format!(
        "{{type: httpRequest, endpoint: '{}'}}",
        endpoint.replacen("http://", "http://ada:pw-42@", 1)
    );
    pipeline(&ws, &source, "", &output);
    let out = ws.run(&["run", "events.yaml", "--dry-run"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let shown: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ids(&shown), vec![1, 2]);
    // The destination is named without its userinfo and the value of its key parameter.
    let shown = endpoint.replace("k-42", "***");
    assert!(
        out.stderr
            .contains(&format!("would send 2 records to POST {shown}")),
        "{out:?}"
    );
    assert!(!out.stderr.contains("pw-42"), "{out:?}");
    assert!(destination.requests().is_empty(), "nothing was sent");
    assert!(
        !ws.path().join(".cannectors-state").exists(),
        "nothing was committed"
    );
}

#[test]
fn an_untrusted_certificate_stops_the_run_as_a_certificate_problem_and_keeps_the_state() {
    let server = cannectors_test_support::tls::SelfSigned::start();
    let ws = Workspace::new();
    ws.write(
        "events.yaml",
        &format!(
            "name: events-sync\ninput:\n  type: httpPolling\n  endpoint: {}\n  statePersistence:\n    \
             id: {{field: id, queryParam: after}}\noutput: {{type: stdout}}\n",
            server.url("/events")
        ),
    );
    let seed = "{\"id\": 7}\n";
    ws.write(".cannectors-state/events-sync.json", seed);
    let out = ws.run(&["run", "--once", "events.yaml"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        out.stderr.contains("invalid peer certificate")
            && out
                .stderr
                .contains("this is a certificate problem, not a connection one"),
        "{out:?}"
    );
    assert!(
        !out.stderr.contains("check that the server is running"),
        "{out:?}"
    );
    assert_eq!(ws.read(".cannectors-state/events-sync.json"), seed);
}
