//! `cannectors run` as a long-running process: pipelines on 1-second schedules against a source
//! API on 127.0.0.1, directories of pipelines, SIGTERM, the metrics endpoint and JSON logs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::Workspace;
use crate::support::http::{Request, Response, Server};
use crate::support::silent::Silent;

/// A source of records with ids 1..=`last`: each request gets the next `per_request` records
/// after its `after_id`, and pages through them with `page`/`limit` when asked.
pub(crate) fn records_after(request: &Request, per_request: i64, last: i64) -> Value {
    let after: i64 = request
        .param("after_id")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let page: i64 = request
        .param("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let first = after + (page - 1) * per_request + 1;
    let records: Vec<Value> = (first..first + per_request)
        .filter(|id| *id <= last)
        .map(|id| json!({"id": id, "name": format!("record {id}")}))
        .collect();
    Value::Array(records)
}

fn pipeline(name: &str, endpoint: &str, schedule: Option<&str>, extra: &str) -> String {
    let schedule = schedule
        .map(|s| format!("  schedule: \"{s}\"\n"))
        .unwrap_or_default();
    format!(
        "name: {name}\n\
         input:\n\
         \x20 type: httpPolling\n\
         {schedule}\
         \x20 endpoint: {endpoint}\n\
         \x20 retry: {{maxAttempts: 0}}\n\
         {extra}\
         \x20 statePersistence:\n\
         \x20   id: {{field: id, queryParam: after_id}}\n\
         \x20   storagePath: ./state\n\
         output: {{type: file, path: ./out/{name}.jsonl}}\n"
    )
}

/// The ids in an output file, in order.
fn delivered(ws: &Workspace, name: &str) -> Vec<i64> {
    let path = ws.path().join(format!("out/{name}.jsonl"));
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

/// The binary running in the background, its standard error collected as it comes.
pub(crate) struct Running {
    child: Child,
    log: Arc<Log>,
}

/// Standard error so far, with a signal on every new line and at its end.
#[derive(Default)]
struct Log {
    text: Mutex<(String, bool)>,
    changed: Condvar,
}

impl Log {
    /// Blocks until `done(text, ended)` holds, or `limit` passes; returns whether it held.
    fn wait(&self, limit: Duration, done: impl Fn(&str, bool) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        let mut guard = self.text.lock().unwrap();
        loop {
            if done(&guard.0, guard.1) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            guard = self.changed.wait_timeout(guard, left).unwrap().0;
        }
    }
}

impl Running {
    pub(crate) fn start(ws: &Workspace, args: &[&str]) -> Running {
        let mut command: Command = ws.command(args);
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cannectors");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Log::default());
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut text = log.text.lock().unwrap();
                    text.0.push_str(&line);
                    text.0.push('\n');
                    log.changed.notify_all();
                }
                log.text.lock().unwrap().1 = true;
                log.changed.notify_all();
            });
        }
        Running { child, log }
    }

    pub(crate) fn log(&self) -> String {
        self.log.text.lock().unwrap().0.clone()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the log satisfies `done`, for at most `limit`; fails the test with the log
    /// otherwise, or when the process ended first.
    pub(crate) fn wait_for_log(&self, what: &str, limit: Duration, done: impl Fn(&str) -> bool) {
        self.log.wait(limit, |text, ended| ended || done(text));
        let log = self.log();
        if !done(&log) {
            panic!("no {what} within {limit:?}:\n{log}");
        }
    }

    /// Waits until `server` received `count` requests, for at most `limit`.
    fn wait_for_requests(&self, server: &Server, count: usize, limit: Duration) {
        if !server.wait_for_requests(count, limit) {
            panic!("no request within {limit:?}:\n{}", self.log());
        }
    }

    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {name} failed");
    }

    /// Waits for the process to exit, for at most `limit`; returns its exit code and log.
    /// Standard error closes when the process ends, which is the event waited for.
    pub(crate) fn exit(mut self, limit: Duration) -> (Option<i32>, String) {
        if !self.log.wait(limit, |_, ended| ended) {
            panic!("cannectors did not exit within {limit:?}:\n{}", self.log());
        }
        let status = self.child.wait().unwrap();
        (status.code(), self.log())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn every_second() -> Option<&'static str> {
    Some("* * * * * *")
}

#[test]
fn a_pipeline_on_a_one_second_schedule_runs_again_from_the_state_it_committed() {
    let server = Server::start(|request| Response::json(&records_after(request, 2, 100)));
    let ws = Workspace::new();
    ws.write(
        "events.yaml",
        &pipeline("events", &server.url("/events"), every_second(), ""),
    );
    let running = Running::start(&ws, &["run", "events.yaml"]);
    // Two records a run: the second run's summary comes after its records are committed.
    running.wait_for_log("second run", Duration::from_secs(20), |log| {
        log.matches("run complete:").count() >= 2
    });
    running.signal("TERM");
    let (code, log) = running.exit(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{log}");

    let ids = delivered(&ws, "events");
    let expected: Vec<i64> = (1..=ids.len() as i64).collect();
    assert_eq!(ids, expected, "each record once, in order");
    let requests = server.requests();
    assert_eq!(
        requests[0].param("after_id"),
        None,
        "the first run has no state"
    );
    assert_eq!(
        requests[1].param("after_id"),
        Some("2"),
        "the second run starts from what the first committed"
    );
    assert!(
        log.contains("scheduled `* * * * * *` (UTC); next run at"),
        "{log}"
    );
    assert!(log.contains("SIGTERM received: shutting down"), "{log}");
}

#[test]
fn sigterm_during_a_slow_multi_batch_run_commits_what_was_delivered_and_the_next_start_resumes() {
    let server = Server::start(|request| {
        Response::json(&records_after(request, 2, 12)).delayed(Duration::from_millis(400))
    });
    let ws = Workspace::new();
    ws.write(
        "events.yaml",
        &pipeline(
            "events",
            &server.url("/events"),
            None,
            "  pagination: {type: page, param: page, limitParam: limit, limit: 2}\n",
        ),
    );
    let running = Running::start(&ws, &["-v", "run", "events.yaml"]);
    running.wait_for_log("two batches", Duration::from_secs(20), |log| {
        log.contains("batch committed batch=2")
    });
    running.signal("TERM");
    let (code, log) = running.exit(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("run stopped on request"), "{log}");

    let first = delivered(&ws, "events");
    assert!(
        first.len() >= 4 && first.len() < 12,
        "stopped mid-run: {first:?}"
    );
    assert_eq!(first, (1..=first.len() as i64).collect::<Vec<_>>());
    let pages_done = first.len() / 2;
    let state: Value = serde_json::from_str(&ws.read("state/events.json")).unwrap();
    assert_eq!(state["run"]["batches"], pages_done, "{state}");

    let requests_before = server.requests().len();
    let again = ws.run(&["run", "events.yaml"]);
    assert_eq!(again.code, Some(0), "{again:?}");
    let ids = delivered(&ws, "events");
    assert_eq!(
        ids,
        (1..=12).collect::<Vec<_>>(),
        "nothing lost, nothing twice"
    );
    let resumed = &server.requests()[requests_before];
    assert_eq!(
        resumed.param("page"),
        Some((pages_done + 1).to_string().as_str()),
        "the second start continues after the committed pages"
    );
}

#[test]
fn a_tick_that_comes_while_the_previous_run_is_going_is_skipped() {
    let server = Server::start(|request| {
        Response::json(&records_after(request, 1, 100)).delayed(Duration::from_millis(2500))
    });
    let ws = Workspace::new();
    ws.write(
        "slow.yaml",
        &pipeline("slow", &server.url("/slow"), every_second(), ""),
    );
    let running = Running::start(&ws, &["run", "slow.yaml"]);
    running.wait_for_log("skipped tick", Duration::from_secs(20), |log| {
        log.contains("skipping the run due at")
    });
    running.signal("TERM");
    let (code, log) = running.exit(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("the previous run, started at"),
        "the skip names the run still going: {log}"
    );
    assert!(log.contains("is still going"), "{log}");
    // One run at a time: no request was sent while another was waiting for its answer.
    assert_eq!(server.requests().len(), delivered(&ws, "slow").len());
}

#[test]
fn a_directory_keeps_running_its_pipelines_when_one_always_fails_and_reports_them_as_metrics() {
    let server = Server::start(|request| {
        if request.path == "/broken" {
            Response::status(500, "the source is down")
        } else {
            Response::json(&records_after(request, 1, 100))
        }
    });
    let ws = Workspace::new();
    for name in ["alpha", "beta", "broken"] {
        ws.write(
            &format!("pipelines/{name}.yaml"),
            &pipeline(name, &server.url(&format!("/{name}")), every_second(), ""),
        );
    }
    let running = Running::start(&ws, &["run", "pipelines", "--metrics-addr", "127.0.0.1:0"]);
    running.wait_for_log("the metrics address", Duration::from_secs(20), |log| {
        log.contains("serving metrics on http://")
    });
    let log = running.log();
    let address = log
        .split("serving metrics on http://")
        .nth(1)
        .and_then(|rest| rest.split("/metrics").next())
        .unwrap_or_else(|| panic!("no metrics address in the log:\n{log}"))
        .to_owned();
    let runs = |metrics: &str, name: &str, outcome: &str| {
        sample_or_zero(
            metrics,
            &format!("cannectors_runs_total{{pipeline=\"{name}\",outcome=\"{outcome}\"}}"),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let metrics = http_get(&address, "/metrics");
        if runs(&metrics, "alpha", "success") >= 2.0
            && runs(&metrics, "beta", "success") >= 2.0
            && runs(&metrics, "broken", "failure") >= 2.0
        {
            break metrics;
        }
        assert!(
            Instant::now() < deadline,
            "not two runs of each pipeline in time:\n{metrics}\n{}",
            running.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let health = http_get(&address, "/healthz");
    running.signal("TERM");
    let (code, log) = running.exit(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{log}");

    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("ok\n"), "{health}");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("content-type: text/plain; version=0.0.4"),
        "{metrics}"
    );
    for name in ["alpha", "beta"] {
        assert!(
            sample(
                &metrics,
                &format!("cannectors_records_written_total{{pipeline=\"{name}\"}}")
            ) >= 2.0,
            "{metrics}"
        );
        assert!(
            sample(
                &metrics,
                &format!("cannectors_cursor_value{{pipeline=\"{name}\",cursor=\"id\"}}")
            ) >= 2.0,
            "{metrics}"
        );
        assert!(
            sample(
                &metrics,
                &format!("cannectors_last_success_timestamp_seconds{{pipeline=\"{name}\"}}")
            ) > 1.0e9,
            "{metrics}"
        );
    }
    assert!(
        sample(
            &metrics,
            "cannectors_runs_total{pipeline=\"broken\",outcome=\"failure\"}"
        ) >= 2.0,
        "{metrics}"
    );
    assert!(log.contains("run failed: pipelines/broken.yaml: "), "{log}");
    assert!(
        log.contains("the source is down"),
        "the failure is logged with the server's answer: {log}"
    );
    assert!(!ws.path().join("state/broken.json").exists());
}

/// The value of the sample whose name and labels are `series`.
pub(crate) fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {series}"))
}

fn sample_or_zero(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A GET over a plain socket: status line, headers and body as text.
pub(crate) fn http_get(address: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn pipelines_without_a_schedule_in_a_directory_run_once_and_the_program_exits() {
    let server = Server::start(|request| Response::json(&records_after(request, 3, 3)));
    let ws = Workspace::new();
    ws.write(
        "pipelines/one.yml",
        &pipeline("one", &server.url("/one"), None, ""),
    );
    ws.write(
        "pipelines/two.json",
        &serde_json::to_string(&json!({
            "name": "two",
            "input": {
                "type": "httpPolling",
                "endpoint": server.url("/two"),
                "statePersistence": {"id": {"field": "id", "queryParam": "after_id"}, "storagePath": "./state"}
            },
            "output": {"type": "file", "path": "./out/two.jsonl"}
        }))
        .unwrap(),
    );
    ws.write("pipelines/README.txt", "not a pipeline");
    let out = ws.run(&["run", "pipelines"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(delivered(&ws, "one"), [1, 2, 3]);
    assert_eq!(delivered(&ws, "two"), [1, 2, 3]);
}

#[test]
fn a_directory_run_once_exits_3_and_names_every_pipeline_that_failed() {
    let server = Server::start(|request| match request.path.as_str() {
        "/good" => Response::json(&records_after(request, 1, 1)),
        _ => Response::status(404, "no such thing"),
    });
    let ws = Workspace::new();
    for name in ["good", "lost", "gone"] {
        ws.write(
            &format!("pipelines/{name}.yaml"),
            &pipeline(name, &server.url(&format!("/{name}")), every_second(), ""),
        );
    }
    let out = ws.run(&["run", "pipelines", "--once"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        out.stderr.contains("error: pipelines/gone.yaml: "),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("error: pipelines/lost.yaml: "),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("error: 2 pipelines failed: gone, lost"),
        "{out:?}"
    );
    assert_eq!(delivered(&ws, "good"), [1]);
}

#[test]
fn two_files_with_the_same_name_in_a_directory_are_rejected_with_both_file_names() {
    let ws = Workspace::new();
    ws.write(
        "pipelines/a.yaml",
        &pipeline("shared", "http://127.0.0.1:9/a", every_second(), ""),
    );
    ws.write(
        "pipelines/b.yaml",
        &pipeline("shared", "http://127.0.0.1:9/b", every_second(), ""),
    );
    let out = ws.run(&["run", "pipelines"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(
            "error: pipeline name `shared` is used by both pipelines/a.yaml and \
             pipelines/b.yaml: the name names the state file, so each pipeline needs its own; \
             rename one of them"
        ),
        "{out:?}"
    );
    assert!(!ws.path().join("state").exists(), "nothing ran");
}

#[test]
fn a_file_that_does_not_validate_stops_a_directory_from_starting() {
    let server = Server::start(|request| Response::json(&records_after(request, 1, 1)));
    let ws = Workspace::new();
    ws.write(
        "pipelines/good.yaml",
        &pipeline("good", &server.url("/good"), every_second(), ""),
    );
    ws.write(
        "pipelines/bad.yaml",
        &pipeline("bad", &server.url("/bad"), Some("every minute"), ""),
    );
    let out = ws.run(&["run", "pipelines"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("pipelines/bad.yaml:4:"),
        "the error names the file and line: {out:?}"
    );
    assert!(
        out.stderr
            .contains("input.schedule: `every minute` is not a usable cron schedule"),
        "{out:?}"
    );
    assert!(out.stderr.contains("nothing was started"), "{out:?}");
    assert!(server.requests().is_empty());
}

#[test]
fn an_empty_directory_is_an_error() {
    let ws = Workspace::new();
    std::fs::create_dir(ws.path().join("pipelines")).unwrap();
    let out = ws.run(&["run", "pipelines"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("pipelines: no pipeline files in this directory (*.yaml, *.yml or *.json)"),
        "{out:?}"
    );
}

#[test]
fn a_metrics_address_in_use_stops_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let ws = Workspace::new();
    ws.write(
        "events.yaml",
        &pipeline("events", "http://127.0.0.1:9/events", every_second(), ""),
    );
    let out = ws.run(&["run", "events.yaml", "--metrics-addr", &address]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("error: cannot serve metrics on {address}: ")),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("choose another --metrics-addr"),
        "{out:?}"
    );
}

#[test]
fn json_logs_are_one_object_per_line_including_errors() {
    let server = Server::start(|request| match request.path.as_str() {
        "/events" => Response::json(&records_after(request, 2, 2)),
        _ => Response::status(503, "maintenance"),
    });
    let ws = Workspace::new();
    ws.write(
        "events.yaml",
        &pipeline("events", &server.url("/events"), None, ""),
    );
    ws.write(
        "down.yaml",
        &pipeline("down", &server.url("/down"), None, ""),
    );
    for (file, code) in [("events.yaml", 0), ("down.yaml", 3)] {
        let out = ws.run(&["--log-format", "json", "run", file]);
        assert_eq!(out.code, Some(code), "{out:?}");
        assert!(!out.stderr.is_empty());
        for line in out.stderr.lines() {
            let event: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{}", out.stderr));
            assert!(event["level"].is_string(), "{line}");
            assert!(event["message"].is_string(), "{line}");
        }
        if code == 3 {
            assert!(out.stderr.contains("maintenance"), "{}", out.stderr);
        } else {
            assert!(out.stderr.contains("run complete"), "{}", out.stderr);
        }
    }
}

#[test]
fn a_run_stuck_in_its_batch_is_cut_at_the_shutdown_timeout_without_committing() {
    let server = Server::start(|request| {
        Response::json(&records_after(request, 1, 100)).delayed(Duration::from_secs(15))
    });
    let ws = Workspace::new();
    ws.write(
        "events.yaml",
        &pipeline("events", &server.url("/events"), None, ""),
    );
    let running = Running::start(&ws, &["run", "events.yaml", "--shutdown-timeout", "300ms"]);
    running.wait_for_requests(&server, 1, Duration::from_secs(20));
    let signalled = Instant::now();
    running.signal("TERM");
    let (code, log) = running.exit(Duration::from_secs(10));
    assert!(signalled.elapsed() < Duration::from_secs(10));
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains(
            "stopped after the shutdown timeout of 0.3s: the batch in flight of events was not \
             committed and is sent again by the next run"
        ),
        "{log}"
    );
    assert!(!ws.path().join("state/events.json").exists());
}

#[test]
fn a_second_signal_stops_at_once() {
    let server = Server::start(|request| {
        Response::json(&records_after(request, 1, 100)).delayed(Duration::from_secs(15))
    });
    let ws = Workspace::new();
    ws.write(
        "events.yaml",
        &pipeline("events", &server.url("/events"), every_second(), ""),
    );
    let running = Running::start(&ws, &["run", "events.yaml"]);
    running.wait_for_requests(&server, 1, Duration::from_secs(20));
    running.signal("INT");
    running.wait_for_log("the first signal", Duration::from_secs(10), |log| {
        log.contains("SIGINT received: shutting down")
    });
    let signalled = Instant::now();
    running.signal("TERM");
    let (code, log) = running.exit(Duration::from_secs(10));
    assert!(signalled.elapsed() < Duration::from_secs(10));
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("SIGTERM received again: stopping at once"),
        "{log}"
    );
    assert!(
        log.contains("stopped at once on a second signal: the batch in flight of events"),
        "{log}"
    );
    assert!(!ws.path().join("state/events.json").exists());
}

#[test]
fn a_tick_that_finds_the_pipeline_running_in_another_process_is_skipped() {
    let server = Server::start(|request| {
        Response::json(&records_after(request, 1, 100)).delayed(Duration::from_secs(4))
    });
    let ws = Workspace::new();
    ws.write(
        "events.yaml",
        &pipeline("events", &server.url("/events"), every_second(), ""),
    );
    // Another process holds the pipeline's lock for the length of one slow run.
    let other = Running::start(&ws, &["run", "events.yaml", "--once"]);
    other.wait_for_requests(&server, 1, Duration::from_secs(20));
    let scheduled = Running::start(&ws, &["run", "events.yaml"]);
    scheduled.wait_for_log("a skipped run", Duration::from_secs(20), |log| {
        log.contains("skipping this run: pipeline `events` is already running")
    });
    scheduled.signal("TERM");
    let (code, log) = scheduled.exit(Duration::from_secs(20));
    assert_eq!(code, Some(0), "the lock held elsewhere is not fatal: {log}");
    let (code, log) = other.exit(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{log}");
}

/// A pipeline whose input (or output) is answered `503` with `Retry-After: 20`, retried with a
/// backoff cap above those 20 seconds, over a state seeded by hand.
fn waiting_on_retry_after(ws: &Workspace, endpoint: &str, output: &str) -> String {
    ws.write(
        "events.yaml",
        &format!(
            "name: events\n\
             input:\n\
             \x20 type: httpPolling\n\
             \x20 endpoint: {endpoint}\n\
             \x20 retry: {{maxAttempts: 2, maxDelayMs: 60000}}\n\
             \x20 statePersistence:\n\
             \x20   id: {{field: id, queryParam: after_id}}\n\
             \x20   storagePath: ./state\n\
             output: {output}\n"
        ),
    );
    ws.write("state/events.json", "{\"id\": 5}\n");
    ws.read("state/events.json")
}

fn unavailable_for_20_seconds() -> Response {
    Response::status(503, "busy").with_header("Retry-After", "20")
}

#[test]
fn sigterm_while_the_source_waits_out_a_retry_after_exits_at_once_with_the_state_unchanged() {
    let server = Server::start(|_| unavailable_for_20_seconds());
    let ws = Workspace::new();
    let seeded = waiting_on_retry_after(
        &ws,
        &server.url("/events"),
        "{type: file, path: ./out/events.jsonl}",
    );
    let running = Running::start(&ws, &["run", "events.yaml"]);
    running.wait_for_requests(&server, 1, Duration::from_secs(20));
    running.wait_for_log("the retry waiting", Duration::from_secs(20), |log| {
        log.contains("retryable status; trying again")
    });
    running.signal("TERM");
    // The server asked for 20 s; the bound is well below it and well above a prompt exit.
    let (code, log) = running.exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains(&format!(
            "GET {}?after_id=5: stopped by shutdown while waiting to try again after 1 failed \
             attempt; nothing of this batch was delivered or committed",
            server.url("/events")
        )),
        "{log}"
    );
    assert!(log.contains("run stopped on request"), "{log}");
    assert!(!log.contains("ERROR"), "a clean stop, not a failure: {log}");
    assert_eq!(ws.read("state/events.json"), seeded);
    assert_eq!(
        std::fs::read_to_string(ws.path().join("out/events.jsonl")).unwrap_or_default(),
        "",
        "nothing delivered"
    );
    assert_eq!(server.requests().len(), 1, "no retry after the signal");
}

#[test]
fn sigterm_while_the_http_output_waits_out_a_retry_after_exits_at_once_with_the_state_unchanged() {
    let source = Server::start(|_| Response::json(&json!([{"id": 6}, {"id": 7}])));
    let destination = Server::start(|_| unavailable_for_20_seconds());
    let ws = Workspace::new();
    let seeded = waiting_on_retry_after(
        &ws,
        &source.url("/events"),
        &format!(
            "{{type: httpRequest, endpoint: '{}', retry: {{maxAttempts: 2, maxDelayMs: 60000}}}}",
            destination.url("/import")
        ),
    );
    let running = Running::start(&ws, &["run", "events.yaml"]);
    running.wait_for_requests(&destination, 1, Duration::from_secs(20));
    running.wait_for_log("the retry waiting", Duration::from_secs(20), |log| {
        log.contains("retryable status; trying again")
    });
    running.signal("TERM");
    let (code, log) = running.exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains(&format!(
            "POST {}: stopped by shutdown while waiting to try again after 1 failed attempt",
            destination.url("/import")
        )),
        "{log}"
    );
    assert!(log.contains("the batch is not committed"), "{log}");
    assert!(log.contains("run stopped on request"), "{log}");
    assert!(!log.contains("ERROR"), "a clean stop, not a failure: {log}");
    assert_eq!(ws.read("state/events.json"), seeded);
    assert_eq!(
        destination.requests().len(),
        1,
        "no retry after the signal, and the one request was refused"
    );
}

#[test]
fn a_scheduled_run_against_a_silent_database_fails_at_its_connect_timeout_and_the_next_tick_connects_again()
 {
    let silent = Silent::start();
    let ws = Workspace::new();
    ws.write(
        "silent.yaml",
        &format!(
            r#"
name: silent
input:
  type: database
  schedule: "* * * * * *"
  connectionString: "postgres://app:s3cret-pw@127.0.0.1:{}/sales?connect_timeout=1"
  query: SELECT id FROM events WHERE id > COALESCE($1::bigint, 0) ORDER BY id LIMIT 10
  statePersistence:
    id: {{field: id}}
    storagePath: ./state
output: {{type: file, path: ./out.jsonl}}
"#,
            silent.port()
        ),
    );
    let running = Running::start(&ws, &["run", "silent.yaml"]);
    running.wait_for_log("a failed run", Duration::from_secs(20), |log| {
        log.contains(&format!(
            "run failed: silent.yaml: input: cannot connect to \
             postgres://app@127.0.0.1:{}/sales: no answer within 1 s",
            silent.port()
        ))
    });
    // A run that hung would keep every later tick skipped: a second connection means the
    // pipeline was free again and a later tick tried afresh.
    if !silent.wait_for_connections(2, Duration::from_secs(20)) {
        panic!("no second connection:\n{}", running.log());
    }
    running.signal("TERM");
    let (code, log) = running.exit(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("s3cret-pw"), "{log}");
    assert!(!ws.path().join("state/silent.json").exists());
}
