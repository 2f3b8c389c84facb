//! The scheduler driving real executors: pipelines read from a local HTTP server (wiremock) and
//! write JSON Lines files in a temp directory, on 1-second schedules.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Once;
use std::time::{Duration, Instant};

use cannectors_scheduler::{Ending, Job, Outcome, Scheduler, SchedulerOptions, Shutdown};
use cannectors_test_support::reporting::Reporting;
use serde_json::json;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn job(dir: &Path, server: &MockServer, name: &str, schedule: Option<&str>) -> Job {
    let schedule = schedule
        .map(|expression| format!("  schedule: '{expression}'\n"))
        .unwrap_or_default();
    let yaml = format!(
        "name: {name}\n\
         input:\n\
         {schedule}  type: httpPolling\n  endpoint: '{}/{name}'\n  retry: {{maxAttempts: 0}}\n  \
         statePersistence: {{id: {{field: id, queryParam: after}}, storagePath: '{}'}}\n\
         output: {{type: file, path: '{}'}}\n",
        server.uri(),
        dir.display(),
        dir.join(format!("{name}.jsonl")).display()
    );
    let origin = dir.join(format!("{name}.yaml"));
    std::fs::write(&origin, &yaml).unwrap();
    let loaded = cannectors_config::load(&origin).unwrap();
    Job::new(&loaded).unwrap()
}

async fn serve(server: &MockServer, name: &str, response: ResponseTemplate) {
    Mock::given(path(format!("/{name}")))
        .respond_with(response)
        .mount(server)
        .await;
}

/// Serves `response` at `/name`; the receiver gets a message as each request arrives.
async fn serve_reporting(
    server: &MockServer,
    name: &str,
    response: ResponseTemplate,
) -> tokio::sync::mpsc::UnboundedReceiver<()> {
    let (responder, arrivals) = Reporting::new(response);
    Mock::given(path(format!("/{name}")))
        .respond_with(responder)
        .mount(server)
        .await;
    arrivals
}

/// Waits for the next request reported by [`serve_reporting`], for at most ten seconds.
async fn request_arrives(arrivals: &mut tokio::sync::mpsc::UnboundedReceiver<()>) {
    let arrived = tokio::time::timeout(Duration::from_secs(10), arrivals.recv()).await;
    assert!(matches!(arrived, Ok(Some(()))), "the run sent no request");
}

/// Waits until `done` holds, for at most `limit`.
async fn until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

fn every_second() -> Option<&'static str> {
    Some("* * * * * *")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pipeline_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start().await;
    serve(
        &server,
        "good",
        ResponseTemplate::new(200).set_body_json(json!([{"id": 1}])),
    )
    .await;
    serve(&server, "broken", ResponseTemplate::new(500)).await;
    let jobs = vec![
        job(dir.path(), &server, "good", every_second()),
        job(dir.path(), &server, "broken", every_second()),
    ];
    let scheduler = Scheduler::new(jobs, SchedulerOptions::default()).unwrap();
    assert!(scheduler.is_long_running());
    let metrics = scheduler.metrics();
    let shutdown = Shutdown::new();
    let running = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { scheduler.run(&shutdown).await }
    });

    let both_twice = until(Duration::from_secs(15), || {
        metrics.runs("good", Outcome::Success) >= 2 && metrics.runs("broken", Outcome::Failure) >= 2
    })
    .await;
    shutdown.request();
    let report = running.await.unwrap();
    assert!(both_twice, "{}", metrics.render());
    assert_eq!(report.ending, Ending::Stopped);
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert_eq!(report.failures[0].pipeline, "broken");
    assert!(
        report.failures[0].message.contains("HTTP 500"),
        "{report:?}"
    );
    let state = std::fs::read_to_string(dir.path().join("good.json")).unwrap();
    assert!(state.contains("\"id\": 1"), "{state}");
    assert!(!dir.path().join("broken.json").exists());
    let text = metrics.render();
    assert!(
        text.contains("cannectors_cursor_value{pipeline=\"good\",cursor=\"id\"} 1\n"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_during_a_slow_run_is_skipped_and_the_run_finishes_its_batch_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start().await;
    serve(
        &server,
        "slow",
        ResponseTemplate::new(200)
            .set_body_json(json!([{"id": 7}]))
            .set_delay(Duration::from_millis(2500)),
    )
    .await;
    let jobs = vec![job(dir.path(), &server, "slow", every_second())];
    let scheduler = Scheduler::new(jobs, SchedulerOptions::default()).unwrap();
    let metrics = scheduler.metrics();
    let shutdown = Shutdown::new();
    let running = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { scheduler.run(&shutdown).await }
    });

    let skipped = until(Duration::from_secs(10), || {
        metrics.runs("slow", Outcome::Skipped) >= 1 && !metrics.running().is_empty()
    })
    .await;
    shutdown.request();
    let report = running.await.unwrap();
    assert!(skipped, "{}", metrics.render());
    assert_eq!(report.ending, Ending::Stopped);
    // The run in progress was let finish: its batch is delivered and committed.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("slow.jsonl")).unwrap(),
        "{\"id\":7}\n"
    );
    // It stopped on request after that batch instead of asking the source for more.
    assert_eq!(
        metrics.runs("slow", Outcome::Interrupted),
        1,
        "{}",
        metrics.render()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_still_in_its_batch_when_the_shutdown_timeout_ends_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start().await;
    let mut arrivals = serve_reporting(
        &server,
        "stuck",
        ResponseTemplate::new(200)
            .set_body_json(json!([{"id": 1}]))
            .set_delay(Duration::from_secs(20)),
    )
    .await;
    let jobs = vec![job(dir.path(), &server, "stuck", None)];
    let options = SchedulerOptions {
        shutdown_timeout: Duration::from_millis(300),
        ..SchedulerOptions::default()
    };
    let scheduler = Scheduler::new(jobs, options).unwrap();
    assert!(!scheduler.is_long_running());
    let metrics = scheduler.metrics();
    let shutdown = Shutdown::new();
    let running = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { scheduler.run(&shutdown).await }
    });
    // The request is at the server, waiting for its answer, when the shutdown comes.
    request_arrives(&mut arrivals).await;
    assert!(!metrics.running().is_empty());
    let started = Instant::now();
    shutdown.request();
    let report = running.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        report.ending,
        Ending::TimedOut {
            unfinished: vec!["stuck".to_owned()]
        }
    );
    assert!(!dir.path().join("stuck.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_request_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start().await;
    let mut arrivals = serve_reporting(
        &server,
        "stuck",
        ResponseTemplate::new(200)
            .set_body_json(json!([{"id": 1}]))
            .set_delay(Duration::from_secs(20)),
    )
    .await;
    let jobs = vec![job(dir.path(), &server, "stuck", None)];
    let scheduler = Scheduler::new(jobs, SchedulerOptions::default()).unwrap();
    let metrics = scheduler.metrics();
    let shutdown = Shutdown::new();
    let running = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { scheduler.run(&shutdown).await }
    });
    request_arrives(&mut arrivals).await;
    assert!(!metrics.running().is_empty());
    // Whether the second request comes before or during the drain, it is seen: the phase is
    // a watch. (The end-to-end test `a_second_signal_stops_at_once` sends it mid-drain, once
    // the log says the drain began.)
    shutdown.request();
    shutdown.request();
    let report = tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("a second request stops the scheduler well before the shutdown timeout")
        .unwrap();
    assert_eq!(
        report.ending,
        Ending::Forced {
            unfinished: vec!["stuck".to_owned()]
        }
    );
    assert!(!dir.path().join("stuck.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_once_every_pipeline_runs_one_time_and_failures_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start().await;
    serve(
        &server,
        "scheduled",
        ResponseTemplate::new(200).set_body_json(json!([{"id": 3}])),
    )
    .await;
    serve(&server, "missing", ResponseTemplate::new(404)).await;
    let jobs = vec![
        job(dir.path(), &server, "scheduled", every_second()),
        job(dir.path(), &server, "missing", None),
    ];
    let options = SchedulerOptions {
        once: true,
        ..SchedulerOptions::default()
    };
    let scheduler = Scheduler::new(jobs, options).unwrap();
    assert!(!scheduler.is_long_running());
    let metrics = scheduler.metrics();
    let report = tokio::time::timeout(Duration::from_secs(20), scheduler.run(&Shutdown::new()))
        .await
        .unwrap();
    assert_eq!(report.ending, Ending::Completed);
    assert_eq!(metrics.runs("scheduled", Outcome::Success), 1);
    assert_eq!(metrics.runs("missing", Outcome::Failure), 1);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].file, dir.path().join("missing.yaml"));
    assert!(report.failures[0].message.contains("404"), "{report:?}");
}

/// Stands in for a bug anywhere in a run: a log layer that panics when a run of a pipeline
/// whose name starts with `panics` logs its start. The panic happens inside the executor's
/// run, where a real one would, without any hook in the code under test.
struct PanicsOnStart;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PanicsOnStart {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Fields {
            pipeline: String,
            message: String,
        }
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                match field.name() {
                    "pipeline" => self.pipeline = format!("{value:?}"),
                    "message" => self.message = format!("{value:?}"),
                    _ => {}
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.message == "starting run" && fields.pipeline.starts_with("panics") {
            panic!("a bug in the run of {}", fields.pipeline);
        }
    }
}

fn runs_of_pipelines_named_panics_panic() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt as _;
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(PanicsOnStart))
            .unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_once_a_run_that_panics_is_a_reported_failure_and_the_others_run() {
    runs_of_pipelines_named_panics_panic();
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start().await;
    serve(
        &server,
        "fine",
        ResponseTemplate::new(200).set_body_json(json!([{"id": 5}])),
    )
    .await;
    let jobs = vec![
        job(dir.path(), &server, "panics", None),
        job(dir.path(), &server, "fine", None),
    ];
    let scheduler = Scheduler::new(jobs, SchedulerOptions::default()).unwrap();
    let metrics = scheduler.metrics();
    let report = tokio::time::timeout(Duration::from_secs(20), scheduler.run(&Shutdown::new()))
        .await
        .unwrap();
    assert_eq!(report.ending, Ending::Completed);
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert_eq!(report.failures[0].pipeline, "panics");
    assert_eq!(report.failures[0].file, dir.path().join("panics.yaml"));
    assert!(
        report.failures[0].message.starts_with(
            "the run of pipeline `panics` stopped on an internal error (panicked: a bug in the \
             run of panics); the state stays where the last committed batch left it"
        ),
        "{report:?}"
    );
    assert_eq!(metrics.runs("panics", Outcome::Failure), 1);
    assert_eq!(metrics.runs("fine", Outcome::Success), 1);
    let text = metrics.render();
    assert!(
        text.contains("cannectors_run_in_progress{pipeline=\"panics\"} 0\n"),
        "{text}"
    );
    assert!(!dir.path().join("panics.json").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("fine.jsonl")).unwrap(),
        "{\"id\":5}\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_run_that_panics_is_counted_and_the_next_tick_runs_again() {
    runs_of_pipelines_named_panics_panic();
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start().await;
    serve(
        &server,
        "steady",
        ResponseTemplate::new(200).set_body_json(json!([{"id": 1}])),
    )
    .await;
    let jobs = vec![
        job(dir.path(), &server, "panics-often", every_second()),
        job(dir.path(), &server, "steady", every_second()),
    ];
    let scheduler = Scheduler::new(jobs, SchedulerOptions::default()).unwrap();
    let metrics = scheduler.metrics();
    let shutdown = Shutdown::new();
    let running = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { scheduler.run(&shutdown).await }
    });

    let both_twice = until(Duration::from_secs(15), || {
        metrics.runs("panics-often", Outcome::Failure) >= 2
            && metrics.runs("steady", Outcome::Success) >= 2
    })
    .await;
    shutdown.request();
    let report = running.await.unwrap();
    assert!(both_twice, "{}", metrics.render());
    assert_eq!(report.ending, Ending::Stopped);
    assert_eq!(metrics.runs("panics-often", Outcome::Skipped), 0);
    let text = metrics.render();
    assert!(
        text.contains("cannectors_run_in_progress{pipeline=\"panics-often\"} 0\n"),
        "{text}"
    );
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert_eq!(report.failures[0].pipeline, "panics-often");
    assert!(
        report.failures[0]
            .message
            .contains("(panicked: a bug in the run of panics-often)"),
        "{report:?}"
    );
}

#[tokio::test]
async fn cursors_committed_before_the_start_are_published_before_the_first_run() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start().await;
    std::fs::write(dir.path().join("seeded.json"), r#"{"id": 42}"#).unwrap();
    let jobs = vec![job(dir.path(), &server, "seeded", every_second())];
    let scheduler = Scheduler::new(jobs, SchedulerOptions::default()).unwrap();
    let metrics = scheduler.metrics();
    let shutdown = Shutdown::new();
    // Stopped before the first tick: no run, only what was on disk.
    shutdown.request();
    let report = tokio::time::timeout(Duration::from_secs(20), scheduler.run(&shutdown))
        .await
        .unwrap();
    assert_eq!(report.ending, Ending::Stopped);
    assert_eq!(metrics.runs("seeded", Outcome::Success), 0);
    assert!(
        metrics
            .render()
            .contains("cannectors_cursor_value{pipeline=\"seeded\",cursor=\"id\"} 42\n"),
        "{}",
        metrics.render()
    );
}

#[tokio::test]
async fn a_failed_run_is_told_the_way_the_embedding_program_describes_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start().await;
    std::fs::write(dir.path().join("broken.json"), "{\"id\": ").unwrap();
    let jobs = vec![job(dir.path(), &server, "broken", None)];
    let options = SchedulerOptions {
        describe_failure: |file, error| {
            format!(
                "{error} [advice for {}]",
                file.file_name().unwrap().display()
            )
        },
        ..SchedulerOptions::default()
    };
    let report = tokio::time::timeout(
        Duration::from_secs(20),
        Scheduler::new(jobs, options).unwrap().run(&Shutdown::new()),
    )
    .await
    .unwrap();
    assert_eq!(report.failures.len(), 1);
    let message = &report.failures[0].message;
    assert!(message.starts_with("state file "), "{message}");
    assert!(message.ends_with(" [advice for broken.yaml]"), "{message}");
    assert!(server.received_requests().await.unwrap().is_empty());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("broken.json")).unwrap(),
        "{\"id\": "
    );
}
