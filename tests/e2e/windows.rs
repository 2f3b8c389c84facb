//! Explicit ranges: `window: {start, step}` on an httpPolling input, and `cannectors backfill`
//! over a past range beside the pipeline's own cursors.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::support::Workspace;
use crate::support::http::{Response, Server};

fn rfc3339(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// An API of records with an `at` timestamp, paged by `page` and `limit`, that reads the range
/// `from <= at < to` and the cursor range `since < at <= until` when they are given (each
/// bound can be left out of what it honours).
#[derive(Clone)]
struct RangeApi {
    records: Arc<Mutex<Vec<Value>>>,
    honour_until: bool,
    page_delay: Duration,
    /// Requests refused (403, which is not retried) once this many were answered
    /// (`usize::MAX`: never).
    fail_after: Arc<Mutex<usize>>,
}

impl RangeApi {
    fn new() -> RangeApi {
        RangeApi {
            records: Arc::new(Mutex::new(Vec::new())),
            honour_until: true,
            page_delay: Duration::ZERO,
            fail_after: Arc::new(Mutex::new(usize::MAX)),
        }
    }

    fn publish(&self, id: i64, at: DateTime<Utc>) {
        self.records
            .lock()
            .unwrap()
            .push(json!({"id": id, "at": rfc3339(at)}));
    }

    fn serve(&self) -> Server {
        let api = self.clone();
        let answered = Arc::new(Mutex::new(0usize));
        Server::start(move |request| {
            let mut count = answered.lock().unwrap();
            *count += 1;
            if *count > *api.fail_after.lock().unwrap() {
                return Response::status(403, "refused");
            }
            let bound = |name: &str| request.param(name).map(instant);
            let (from, to) = (bound("from"), bound("to"));
            let (since, until) = (bound("since"), bound("until"));
            let mut matching: Vec<Value> = api
                .records
                .lock()
                .unwrap()
                .iter()
                .filter(|record| {
                    let at = instant(record["at"].as_str().unwrap());
                    from.is_none_or(|from| at >= from)
                        && to.is_none_or(|to| at < to)
                        && since.is_none_or(|since| at > since)
                        && (!api.honour_until || until.is_none_or(|until| at <= until))
                })
                .cloned()
                .collect();
            matching.sort_by_key(|r| (r["at"].as_str().unwrap().to_owned(), r["id"].as_i64()));
            let page: usize = request.param("page").unwrap_or("1").parse().unwrap();
            let limit: usize = request.param("limit").unwrap_or("1000").parse().unwrap();
            let items: Vec<Value> = matching
                .into_iter()
                .skip((page - 1) * limit)
                .take(limit)
                .collect();
            Response::json(&json!({ "items": items })).delayed(api.page_delay)
        })
    }
}

fn window_pipeline(ws: &Workspace, server: &Server, start: DateTime<Utc>, extra: &str) {
    ws.write(
        "p.yaml",
        &format!(
            "name: ranges\ninput:\n  type: httpPolling\n  endpoint: {}\n  dataField: items\n  \
             queryParams: {{from: '{{{{window.start}}}}', to: '{{{{window.end}}}}'}}\n  \
             pagination: {{type: page, param: page, limit: 3}}\n  \
             window: {{start: '{}', step: 1h}}\n  statePersistence:\n    \
             timestamp: {{field: at}}\n{extra}    storagePath: ./state\n\
             output: {{type: file, path: out.jsonl}}\n",
            server.url("/items"),
            rfc3339(start)
        ),
    );
}

fn delivered(ws: &Workspace) -> Vec<i64> {
    std::fs::read_to_string(ws.path().join("out.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

fn state(ws: &Workspace) -> Value {
    serde_json::from_str(&ws.read("state/ranges.json")).unwrap()
}

/// The distinct `(from, to)` ranges requested, in order.
fn ranges(server: &Server) -> Vec<(String, String)> {
    let mut ranges: Vec<(String, String)> = Vec::new();
    for request in server.requests() {
        let range = (
            request.param("from").unwrap_or_default().to_owned(),
            request.param("to").unwrap_or_default().to_owned(),
        );
        if ranges.last() != Some(&range) {
            ranges.push(range);
        }
    }
    ranges
}

/// The start of the hour three hours before now.
fn three_hours_ago() -> DateTime<Utc> {
    let now = Utc::now().timestamp();
    DateTime::from_timestamp(now - now % 3600 - 3 * 3600, 0).unwrap()
}

#[test]
fn a_window_run_requests_each_range_page_by_page_and_commits_each_window() {
    let api = RangeApi::new();
    let start = three_hours_ago();
    // Four records in the first hour (two pages of 3), one in each later hour, one in the
    // future.
    for (id, minutes) in [
        (1, 0),
        (2, 15),
        (3, 30),
        (4, 45),
        (5, 70),
        (6, 130),
        (7, 180),
    ] {
        api.publish(id, start + TimeDelta::minutes(minutes));
    }
    api.publish(8, Utc::now() + TimeDelta::hours(2));
    let server = api.serve();
    let ws = Workspace::new();
    window_pipeline(&ws, &server, start, "");

    let before = Utc::now();
    let run = ws.run(&["run", "p.yaml"]);
    let after = Utc::now();

    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(delivered(&ws), [1, 2, 3, 4, 5, 6, 7]);
    let hour = |n: i64| rfc3339(start + TimeDelta::hours(n));
    let requested = ranges(&server);
    assert_eq!(
        requested[..3],
        [(hour(0), hour(1)), (hour(1), hour(2)), (hour(2), hour(3))]
    );
    assert_eq!(requested.len(), 4, "{requested:?}");
    let (last_start, last_end) = &requested[3];
    assert_eq!(last_start, &hour(3));
    let end = instant(last_end);
    assert!(
        end >= before - TimeDelta::seconds(1) && end <= after,
        "the last window ends at now: {end}"
    );
    // The first window took two pages.
    let pages: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.param("from") == Some(hour(0).as_str()))
        .map(|r| r.param("page").unwrap_or("1").to_owned())
        .collect();
    assert_eq!(pages, ["1", "2"]);
    let state = state(&ws);
    assert_eq!(state["window"], json!({"end": last_end}), "{state}");
    assert!(state.get("run").is_none(), "{state}");

    let requests_before = server.requests().len();
    let next = ws.run(&["run", "p.yaml"]);

    assert_eq!(next.code, Some(0), "{next:?}");
    assert_eq!(delivered(&ws), [1, 2, 3, 4, 5, 6, 7], "nothing twice");
    let next_requests = &server.requests()[requests_before..];
    if let Some(first) = next_requests.first() {
        assert_eq!(
            first.param("from"),
            Some(last_end.as_str()),
            "the next run continues from the last committed window"
        );
    }
}

#[test]
fn a_window_run_stops_at_now_minus_delay_and_the_next_run_continues_from_there() {
    let api = RangeApi::new();
    let start = three_hours_ago();
    let recent = Utc::now() - TimeDelta::minutes(30);
    api.publish(1, start + TimeDelta::minutes(10));
    api.publish(2, recent);
    let server = api.serve();
    let ws = Workspace::new();
    window_pipeline(&ws, &server, start, "    delay: 1h\n");

    let before = Utc::now();
    let first = ws.run(&["run", "p.yaml"]);

    assert_eq!(first.code, Some(0), "{first:?}");
    assert_eq!(delivered(&ws), [1], "the recent record waits");
    let committed = state(&ws)["window"]["end"].as_str().unwrap().to_owned();
    let end = instant(&committed);
    assert!(
        end <= Utc::now() - TimeDelta::hours(1)
            && end >= before - TimeDelta::hours(1) - TimeDelta::seconds(1),
        "the run stopped at now - delay: {end}"
    );
    assert!(
        ranges(&server).iter().all(|(_, to)| instant(to) <= end),
        "{:?}",
        ranges(&server)
    );

    // Without the delay, the next run continues where the first stopped and reads up to now.
    window_pipeline(&ws, &server, start, "");
    let requests_before = server.requests().len();
    let second = ws.run(&["run", "p.yaml"]);

    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(delivered(&ws), [1, 2]);
    assert_eq!(
        server.requests()[requests_before].param("from"),
        Some(committed.as_str())
    );
}

#[test]
fn a_window_run_killed_inside_a_window_resumes_there_and_loses_nothing() {
    let mut api = RangeApi::new();
    api.page_delay = Duration::from_millis(15);
    let start = three_hours_ago();
    let mut id = 0;
    for hour in 0..3 {
        for second in 0..60 {
            id += 1;
            api.publish(
                id,
                start + TimeDelta::hours(hour) + TimeDelta::seconds(second * 30),
            );
        }
    }
    let server = api.serve();
    let ws = Workspace::new();
    window_pipeline(&ws, &server, start, "");
    // Every page a delivery of its own, so that the kill lands between pages of a window.
    let per_page = ws
        .read("p.yaml")
        .replace("path: out.jsonl}", "path: out.jsonl, batchSize: 1}");
    assert_ne!(per_page, ws.read("p.yaml"));
    ws.write("p.yaml", &per_page);

    let mut child = ws
        .command(&["run", "p.yaml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while delivered(&ws).len() < 75 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed_at = delivered(&ws).len();
    assert!(
        (75..180).contains(&killed_at),
        "killed inside the second window: {killed_at}"
    );
    let saved = state(&ws);
    let hour = |n: i64| rfc3339(start + TimeDelta::hours(n));
    assert_eq!(
        saved["window"],
        json!({"end": hour(1), "reading": hour(2)}),
        "{saved}"
    );
    assert!(saved["run"]["resume"].is_object(), "{saved}");

    let requests_before = server.requests().len();
    let rerun = ws.run(&["run", "p.yaml"]);

    assert_eq!(rerun.code, Some(0), "{rerun:?}");
    let resumed = &server.requests()[requests_before];
    assert_eq!(resumed.param("from"), Some(hour(1).as_str()));
    assert_ne!(
        resumed.param("page"),
        Some("1"),
        "resumed inside the window"
    );
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for id in delivered(&ws) {
        *seen.entry(id).or_default() += 1;
    }
    assert_eq!(seen.len(), 180, "every record delivered");
    let repeated = seen.values().filter(|n| **n > 1).count();
    assert!(
        repeated <= 3,
        "{repeated} delivered twice: more than the page in flight"
    );
}

// ---- backfill ------------------------------------------------------------------------------

const T0: &str = "2026-01-01T00:00:00Z";

fn at_minute(minute: i64) -> DateTime<Utc> {
    instant(T0) + TimeDelta::minutes(minute)
}

/// A pipeline with a timestamp cursor sent as `since`, its bound as `until`, and the lower
/// bound as `{{window.start}}` in `start`.
fn cursor_pipeline(ws: &Workspace, server: &Server) {
    ws.write(
        "p.yaml",
        &format!(
            "name: ranges\ninput:\n  type: httpPolling\n  endpoint: {}\n  dataField: items\n  \
             queryParams: {{start: '{{{{window.start}}}}'}}\n  \
             pagination: {{type: page, param: page, limit: 2}}\n  statePersistence:\n    \
             timestamp: {{field: at, queryParam: since, untilParam: until}}\n    \
             storagePath: ./state\noutput: {{type: file, path: out.jsonl}}\n",
            server.url("/items")
        ),
    );
}

/// The keys of the state file a backfill must leave as they were.
fn main_cursors(ws: &Workspace) -> Vec<String> {
    let state = state(ws);
    ["timestamp", "id", "offset", "run", "identities", "window"]
        .iter()
        .map(|key| state.get(*key).map(Value::to_string).unwrap_or_default())
        .collect()
}

/// Ten records, one a minute from T0 + 1 min, delivered by a first run.
fn synced(api: &RangeApi) -> (Workspace, Server) {
    for minute in 1..=10 {
        api.publish(minute, at_minute(minute));
    }
    let server = api.serve();
    let ws = Workspace::new();
    cursor_pipeline(&ws, &server);
    let run = ws.run(&["run", "p.yaml"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(delivered(&ws), (1..=10).collect::<Vec<_>>());
    (ws, server)
}

#[test]
fn a_backfill_delivers_exactly_its_range_and_leaves_the_main_cursors_as_they_were() {
    let mut api = RangeApi::new();
    // The API does not honour `until`: records after --to must be held back by the run.
    api.honour_until = false;
    let (ws, server) = synced(&api);
    let cursors = main_cursors(&ws);
    let requests_before = server.requests().len();

    let backfill = ws.run(&[
        "backfill",
        "p.yaml",
        "--from",
        &rfc3339(at_minute(2)),
        "--to",
        &rfc3339(at_minute(5)),
    ]);

    assert_eq!(backfill.code, Some(0), "{backfill:?}");
    assert_eq!(delivered(&ws)[10..], [3, 4, 5], "(from, to]");
    assert_eq!(main_cursors(&ws), cursors, "the main cursors did not move");
    let request = &server.requests()[requests_before];
    assert_eq!(request.param("since"), Some(rfc3339(at_minute(2)).as_str()));
    assert_eq!(request.param("start"), Some(rfc3339(at_minute(2)).as_str()));
    assert_eq!(request.param("until"), Some(rfc3339(at_minute(5)).as_str()));
    let saved = state(&ws);
    assert_eq!(saved["backfill"]["from"], rfc3339(at_minute(2)));
    assert_eq!(saved["backfill"]["to"], rfc3339(at_minute(5)));
    assert!(saved["backfill"]["completedAt"].is_string(), "{saved}");
    let show = ws.run(&["state", "show", "p.yaml"]);
    assert!(show.stdout.contains("\"backfill\""), "{show:?}");
    assert!(show.stdout.contains("\"completedAt\""), "{show:?}");

    // The next run continues from the main cursor, as if the backfill had not happened.
    let run = ws.run(&["run", "p.yaml"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(delivered(&ws).len(), 13, "nothing more to deliver");
}

#[test]
fn a_backfill_without_to_ends_at_the_committed_timestamp() {
    let api = RangeApi::new();
    let (ws, server) = synced(&api);
    let requests_before = server.requests().len();

    let backfill = ws.run(&["backfill", "p.yaml", "--from", &rfc3339(at_minute(7))]);

    assert_eq!(backfill.code, Some(0), "{backfill:?}");
    assert_eq!(delivered(&ws)[10..], [8, 9, 10]);
    assert_eq!(
        server.requests()[requests_before].param("until"),
        Some(rfc3339(at_minute(10)).as_str())
    );
}

#[test]
fn an_unfinished_backfill_refuses_another_range_resumes_its_own_and_restart_drops_it() {
    let api = RangeApi::new();
    let (ws, server) = synced(&api);
    // One page of the backfill is answered, then the API refuses.
    *api.fail_after.lock().unwrap() = server.requests().len() + 1;
    let from = rfc3339(at_minute(0));
    let to = rfc3339(at_minute(8));

    let failed = ws.run(&["backfill", "p.yaml", "--from", &from, "--to", &to]);

    assert_eq!(failed.code, Some(3), "{failed:?}");
    assert_eq!(delivered(&ws)[10..], [1, 2], "the first page was delivered");
    let unfinished = ws.read("state/ranges.json");
    assert!(
        !state(&ws)["backfill"]
            .get("completedAt")
            .is_some_and(Value::is_string)
    );

    *api.fail_after.lock().unwrap() = usize::MAX;
    let other = ws.run(&["backfill", "p.yaml", "--from", &rfc3339(at_minute(3))]);

    assert_eq!(other.code, Some(3), "{other:?}");
    assert!(
        other
            .stderr
            .contains(&format!("a backfill from {from} to {to} started at"))
            && other.stderr.contains("is unfinished")
            && other.stderr.contains("--restart"),
        "{other:?}"
    );
    assert_eq!(
        ws.read("state/ranges.json"),
        unfinished,
        "the state is unchanged"
    );
    assert_eq!(delivered(&ws).len(), 12, "nothing delivered");

    let resumed = ws.run(&["backfill", "p.yaml", "--from", &from, "--to", &to]);

    assert_eq!(resumed.code, Some(0), "{resumed:?}");
    assert_eq!(
        delivered(&ws)[10..],
        [1, 2, 3, 4, 5, 6, 7, 8],
        "resumed after page 1"
    );

    // A finished backfill does not stand in the way; an unfinished one gives way to --restart.
    *api.fail_after.lock().unwrap() = server.requests().len() + 1;
    let again = ws.run(&["backfill", "p.yaml", "--from", &from, "--to", &to]);
    assert_eq!(again.code, Some(3), "{again:?}");
    *api.fail_after.lock().unwrap() = usize::MAX;
    let restarted = ws.run(&[
        "backfill",
        "p.yaml",
        "--from",
        &rfc3339(at_minute(8)),
        "--restart",
    ]);
    assert_eq!(restarted.code, Some(0), "{restarted:?}");
    assert_eq!(state(&ws)["backfill"]["from"], rfc3339(at_minute(8)));
    assert!(state(&ws)["backfill"]["completedAt"].is_string());
}

#[test]
fn a_backfill_killed_midway_resumes_without_loss_or_moving_the_main_cursors() {
    let mut api = RangeApi::new();
    api.page_delay = Duration::from_millis(15);
    for minute in 1..=200 {
        api.publish(minute, at_minute(minute));
    }
    let server = api.serve();
    let ws = Workspace::new();
    cursor_pipeline(&ws, &server);
    // Every page a delivery of its own: the kill re-sends at most one page.
    let per_page = ws
        .read("p.yaml")
        .replace("path: out.jsonl}", "path: out.jsonl, batchSize: 1}");
    assert_ne!(per_page, ws.read("p.yaml"));
    ws.write("p.yaml", &per_page);
    ws.write(
        "state/ranges.json",
        &format!("{{\"timestamp\": \"{}\"}}", rfc3339(at_minute(500))),
    );
    let cursors = main_cursors(&ws);
    let from = rfc3339(at_minute(0));
    let to = rfc3339(at_minute(200));

    let mut child = ws
        .command(&["backfill", "p.yaml", "--from", &from, "--to", &to])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while delivered(&ws).len() < 60 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(delivered(&ws).len() < 200, "killed before the end");
    assert_eq!(main_cursors(&ws), cursors);

    let resumed = ws.run(&["backfill", "p.yaml", "--from", &from, "--to", &to]);

    assert_eq!(resumed.code, Some(0), "{resumed:?}");
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for id in delivered(&ws) {
        *seen.entry(id).or_default() += 1;
    }
    assert_eq!(seen.len(), 200, "every record of the range delivered");
    assert!(
        seen.values().filter(|n| **n > 1).count() <= 2,
        "at most the page in flight twice"
    );
    assert_eq!(main_cursors(&ws), cursors, "the main cursors did not move");
}

#[test]
fn a_bad_from_or_to_exits_with_a_clear_message_and_changes_no_state() {
    let api = RangeApi::new();
    let (ws, _server) = synced(&api);
    let before = ws.read("state/ranges.json");

    let unparseable = ws.run(&["backfill", "p.yaml", "--from", "yesterday"]);
    assert_eq!(unparseable.code, Some(1), "{unparseable:?}");
    assert!(
        unparseable
            .stderr
            .contains("backfill --from: `yesterday` is not an RFC 3339 time"),
        "{unparseable:?}"
    );

    let reversed = ws.run(&[
        "backfill",
        "p.yaml",
        "--from",
        &rfc3339(at_minute(5)),
        "--to",
        &rfc3339(at_minute(2)),
    ]);
    assert_eq!(reversed.code, Some(1), "{reversed:?}");
    assert!(
        reversed.stderr.contains("is not before --to"),
        "{reversed:?}"
    );

    // Without --to the end is the committed timestamp, minute 10: minute 20 is after it.
    let after_cursor = ws.run(&["backfill", "p.yaml", "--from", &rfc3339(at_minute(20))]);
    assert_eq!(after_cursor.code, Some(1), "{after_cursor:?}");
    assert!(
        after_cursor.stderr.contains("the backfill range is empty"),
        "{after_cursor:?}"
    );

    assert_eq!(
        ws.read("state/ranges.json"),
        before,
        "the state is unchanged"
    );
    assert_eq!(delivered(&ws).len(), 10, "nothing delivered");
}

#[test]
fn a_database_backfill_binds_its_range_and_leaves_the_main_cursors_as_they_were() {
    use cannectors_test_support::postgres;
    let schema = "e2e_backfill";
    postgres::fresh_schema_blocking(
        schema,
        "CREATE TABLE events (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL);
         INSERT INTO events SELECT n, '2026-01-01'::timestamptz + n * interval '1 minute'
           FROM generate_series(1, 300) AS n;",
    );
    let ws = Workspace::new();
    ws.write(
        "rows.yaml",
        &format!(
            r#"
name: ranges
input:
  type: database
  connectionStringRef: ${{TEST_DATABASE_URL}}
  query: |
    SELECT id, updated_at FROM {schema}.events
    WHERE (updated_at, id) > (COALESCE($1::timestamptz, '-infinity'), COALESCE($2::bigint, 0))
      AND updated_at <= $3::timestamptz
    ORDER BY updated_at, id LIMIT 40
  parameters: [state.timestamp, state.id, window.end]
  statePersistence:
    timestamp: {{field: updated_at}}
    id: {{field: id}}
    storagePath: ./state
output: {{type: file, path: ./out.jsonl}}
"#
        ),
    );
    let run = |args: &[&str]| {
        let mut command = ws.command(args);
        command.env("TEST_DATABASE_URL", postgres::url());
        crate::support::output_within(command, Duration::from_secs(120))
    };
    let first = run(&["run", "rows.yaml"]);
    assert_eq!(first.code, Some(0), "{first:?}");
    assert_eq!(delivered(&ws), (1..=300).collect::<Vec<_>>());
    let cursors = main_cursors(&ws);

    let backfill = run(&[
        "backfill",
        "rows.yaml",
        "--from",
        &rfc3339(at_minute(100)),
        "--to",
        &rfc3339(at_minute(200)),
    ]);

    assert_eq!(backfill.code, Some(0), "{backfill:?}");
    // --from is the keyset position (from, no id): the row at exactly --from comes after it.
    assert_eq!(delivered(&ws)[300..], (100..=200).collect::<Vec<_>>()[..]);
    assert_eq!(main_cursors(&ws), cursors, "the main cursors did not move");
    let saved = state(&ws);
    assert!(saved["backfill"]["completedAt"].is_string(), "{saved}");
    assert_eq!(saved["backfill"]["progress"]["id"], 200, "{saved}");

    let again = run(&["run", "rows.yaml"]);
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(
        delivered(&ws).len(),
        401,
        "the main run continues where it was"
    );
}

#[test]
fn a_backfill_of_a_window_pipeline_reads_its_range_window_by_window() {
    let api = RangeApi::new();
    let start = three_hours_ago();
    for (id, minutes) in [(1, 10), (2, 70), (3, 130), (4, 150)] {
        api.publish(id, start + TimeDelta::minutes(minutes));
    }
    let server = api.serve();
    let ws = Workspace::new();
    window_pipeline(&ws, &server, start, "");
    let run = ws.run(&["run", "p.yaml"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let cursors = main_cursors(&ws);
    let requests_before = server.requests().len();
    let hour = |n: i64| rfc3339(start + TimeDelta::hours(n));

    let backfill = ws.run(&[
        "backfill",
        "p.yaml",
        "--from",
        &hour(1),
        "--to",
        &rfc3339(start + TimeDelta::minutes(140)),
    ]);

    assert_eq!(backfill.code, Some(0), "{backfill:?}");
    assert_eq!(delivered(&ws)[4..], [2, 3]);
    let backfill_ranges: Vec<(String, String)> = server.requests()[requests_before..]
        .iter()
        .map(|r| {
            (
                r.param("from").unwrap().to_owned(),
                r.param("to").unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        backfill_ranges,
        [
            (hour(1), hour(2)),
            (hour(2), rfc3339(start + TimeDelta::minutes(140)))
        ]
    );
    assert_eq!(main_cursors(&ws), cursors, "the main window did not move");
    assert_eq!(
        state(&ws)["backfill"]["progress"]["window"]["end"],
        rfc3339(start + TimeDelta::minutes(140))
    );
}

#[test]
fn sigint_stops_a_backfill_after_the_batch_in_flight_and_the_same_command_resumes_it() {
    let mut api = RangeApi::new();
    api.page_delay = Duration::from_millis(100);
    for minute in 1..=100 {
        api.publish(minute, at_minute(minute));
    }
    let server = api.serve();
    let ws = Workspace::new();
    cursor_pipeline(&ws, &server);
    let from = rfc3339(at_minute(0));
    let to = rfc3339(at_minute(100));
    let child = ws
        .command(&["backfill", "p.yaml", "--from", &from, "--to", &to])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while delivered(&ws).len() < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let interrupt = std::process::Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    let stopped = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&stopped.stderr);

    assert_eq!(stopped.status.code(), Some(0), "{log}");
    assert!(
        log.contains("SIGINT received: stopping after the batch in flight"),
        "{log}"
    );
    assert!(log.contains("the backfill is unfinished"), "{log}");
    let partial = delivered(&ws).len();
    assert!(partial < 100, "stopped before the end: {partial}");
    let saved = state(&ws);
    assert!(saved["backfill"].get("completedAt").is_none(), "{saved}");

    let resumed = ws.run(&["backfill", "p.yaml", "--from", &from, "--to", &to]);

    assert_eq!(resumed.code, Some(0), "{resumed:?}");
    assert_eq!(
        delivered(&ws),
        (1..=100).collect::<Vec<_>>(),
        "a graceful stop repeats nothing"
    );
    assert!(state(&ws)["backfill"]["completedAt"].is_string());
}
