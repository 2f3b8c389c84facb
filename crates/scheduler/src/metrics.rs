//! What the scheduler counts per pipeline, and its rendering in the Prometheus text format.
//!
//! The scheduler is the only writer; readers (a metrics endpoint, a progress line) take a
//! consistent snapshot under one lock. Records of a run in progress are included as they are
//! committed, so a long run shows up before it ends. For a pipeline whose state store has
//! leases (replicas sharing a PostgreSQL store), the lease as this process last read it: who
//! holds it, or held it last, and whether that is this process. Rendering never reads a
//! store: a scrape costs the store nothing, and the time of the last reading is shown.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use cannectors_runtime::RunProgress;
use cannectors_state::{CursorId, Lease, State};
use chrono::{DateTime, Utc};

/// How a run (or a tick that did not become a run) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The run completed.
    Success,
    /// The run stopped on an error; the state is where the last accepted batch left it.
    Failure,
    /// The tick did not run: the previous run was still going, or another process held the
    /// pipeline's file lock.
    Skipped,
    /// The run stopped early because the process is shutting down; it resumes on the next start.
    Interrupted,
    /// The run stopped because another process took its pipeline's lease over (PostgreSQL
    /// store); that process goes on from the committed state.
    Fenced,
    /// The tick is another replica's: it held the pipeline's lease, or had already taken it for
    /// this tick (PostgreSQL store). The normal case on every replica but one.
    Held,
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Outcome::Success,
        Outcome::Failure,
        Outcome::Skipped,
        Outcome::Interrupted,
        Outcome::Fenced,
        Outcome::Held,
    ];

    /// The value of the `outcome` label.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Skipped => "skipped",
            Outcome::Interrupted => "interrupted",
            Outcome::Fenced => "fenced",
            Outcome::Held => "held",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A run in progress, as seen from outside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningRun {
    /// The pipeline name.
    pub pipeline: String,
    /// Records received from the source so far.
    pub records_read: u64,
    /// Records the output accepted so far.
    pub records_written: u64,
    /// Batches committed so far.
    pub batches: u64,
    /// Time since the run started.
    pub elapsed: Duration,
}

/// Per-pipeline counters of a scheduler, shared with whoever shows them.
///
/// ```
/// let metrics = cannectors_scheduler::Metrics::default();
/// assert_eq!(metrics.render(), "");
/// ```
#[derive(Debug, Default)]
pub struct Metrics {
    pipelines: Mutex<BTreeMap<String, PipelineMetrics>>,
}

#[derive(Debug, Default)]
struct PipelineMetrics {
    runs: [u64; Outcome::ALL.len()],
    records_read: u64,
    records_written: u64,
    batches: u64,
    last_duration: Option<Duration>,
    last_success: Option<DateTime<Utc>>,
    next_run: Option<DateTime<Utc>>,
    cursors: Cursors,
    current: Option<CurrentRun>,
    /// `None` for a store without leases, and until the lease was first read.
    lease: Option<LeaseView>,
}

/// A pipeline's lease as this process last read it.
#[derive(Debug, Clone, PartialEq)]
struct LeaseView {
    /// The name this process's leases carry.
    mine: String,
    /// Who holds it, or held it last; `None` for a lease taken by hand without an owner.
    owner: Option<String>,
    /// When it expires, while it is held.
    until: Option<DateTime<Utc>>,
    epoch: u64,
    holder: Holder,
    observed: DateTime<Utc>,
}

/// Whose the lease is, as this process sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    ThisProcess,
    AnotherProcess,
    Nobody,
}

impl Holder {
    const ALL: [Holder; 3] = [Holder::ThisProcess, Holder::AnotherProcess, Holder::Nobody];

    /// The value of the `state` label.
    fn label(self) -> &'static str {
        match self {
            Holder::ThisProcess => "held_here",
            Holder::AnotherProcess => "held_elsewhere",
            Holder::Nobody => "free",
        }
    }
}

#[derive(Debug)]
struct CurrentRun {
    progress: Arc<RunProgress>,
    started: Instant,
}

/// The committed cursors that have a number for a value.
#[derive(Debug, Default, Clone, PartialEq)]
struct Cursors {
    timestamp: Option<f64>,
    id: Option<i64>,
    offset: Option<u64>,
}

impl Metrics {
    /// How many runs of `pipeline` ended with `outcome`.
    pub fn runs(&self, pipeline: &str, outcome: Outcome) -> u64 {
        self.lock()
            .get(pipeline)
            .map_or(0, |metrics| metrics.runs[outcome.index()])
    }

    /// The runs in progress now, by pipeline name.
    pub fn running(&self) -> Vec<RunningRun> {
        self.lock()
            .iter()
            .filter_map(|(name, metrics)| {
                let current = metrics.current.as_ref()?;
                Some(RunningRun {
                    pipeline: name.clone(),
                    records_read: current.progress.records_read(),
                    records_written: current.progress.records_written(),
                    batches: current.progress.batches(),
                    elapsed: current.started.elapsed(),
                })
            })
            .collect()
    }

    /// Every metric in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let pipelines = self.lock();
        if pipelines.is_empty() {
            return String::new();
        }
        let mut out = String::new();
        family(
            &mut out,
            "cannectors_runs_total",
            "counter",
            "Runs of a pipeline by outcome: success, failure, skipped (previous run still going or \
             file lock held elsewhere), interrupted (stopped by shutdown), fenced (lease taken \
             over mid-run), held (another replica held the lease or had taken this tick).",
        );
        for (name, metrics) in pipelines.iter() {
            for outcome in Outcome::ALL {
                let labels = format!(
                    "pipeline=\"{}\",outcome=\"{}\"",
                    escape(name),
                    outcome.label()
                );
                sample(
                    &mut out,
                    "cannectors_runs_total",
                    &labels,
                    metrics.runs[outcome.index()],
                );
            }
        }
        let live = |metrics: &PipelineMetrics, pick: fn(&RunProgress) -> u64| {
            metrics
                .current
                .as_ref()
                .map_or(0, |current| pick(&current.progress))
        };
        counter(
            &mut out,
            &pipelines,
            "cannectors_records_read_total",
            "Records received from the source.",
            |m| Some((m.records_read + live(m, RunProgress::records_read)) as f64),
        );
        counter(
            &mut out,
            &pipelines,
            "cannectors_records_written_total",
            "Records the output accepted.",
            |m| Some((m.records_written + live(m, RunProgress::records_written)) as f64),
        );
        counter(
            &mut out,
            &pipelines,
            "cannectors_batches_total",
            "Batches delivered and committed.",
            |m| Some((m.batches + live(m, RunProgress::batches)) as f64),
        );
        gauge(
            &mut out,
            &pipelines,
            "cannectors_run_in_progress",
            "1 while a run of the pipeline is going.",
            |m| Some(if m.current.is_some() { 1.0 } else { 0.0 }),
        );
        gauge(
            &mut out,
            &pipelines,
            "cannectors_last_run_duration_seconds",
            "Wall time of the last run that ended (success, failure or interrupted).",
            |m| m.last_duration.map(|d| d.as_secs_f64()),
        );
        gauge(
            &mut out,
            &pipelines,
            "cannectors_last_success_timestamp_seconds",
            "When the last successful run ended, as a Unix timestamp.",
            |m| m.last_success.map(unix_seconds),
        );
        gauge(
            &mut out,
            &pipelines,
            "cannectors_next_run_timestamp_seconds",
            "When the next scheduled run starts, as a Unix timestamp.",
            |m| m.next_run.map(unix_seconds),
        );
        family(
            &mut out,
            "cannectors_cursor_value",
            "gauge",
            "Committed cursors that are numbers: timestamp (as a Unix timestamp), id (integer \
             ids only), offset.",
        );
        for (name, metrics) in pipelines.iter() {
            let cursors = &metrics.cursors;
            let values = [
                ("timestamp", cursors.timestamp),
                ("id", cursors.id.map(|id| id as f64)),
                ("offset", cursors.offset.map(|offset| offset as f64)),
            ];
            for (cursor, value) in values {
                if let Some(value) = value {
                    let labels = format!("pipeline=\"{}\",cursor=\"{cursor}\"", escape(name));
                    sample(&mut out, "cannectors_cursor_value", &labels, value);
                }
            }
        }
        render_leases(&mut out, &pipelines);
        out
    }

    pub(crate) fn register(&self, pipeline: &str) {
        self.lock().entry(pipeline.to_owned()).or_default();
    }

    pub(crate) fn started(&self, pipeline: &str, progress: Arc<RunProgress>) {
        self.lock().entry(pipeline.to_owned()).or_default().current = Some(CurrentRun {
            progress,
            started: Instant::now(),
        });
    }

    /// Ends the current run of `pipeline`: its records move into the totals.
    pub(crate) fn finished(&self, pipeline: &str, outcome: Outcome) {
        let mut pipelines = self.lock();
        let metrics = pipelines.entry(pipeline.to_owned()).or_default();
        metrics.runs[outcome.index()] += 1;
        if let Some(current) = metrics.current.take() {
            metrics.records_read += current.progress.records_read();
            metrics.records_written += current.progress.records_written();
            metrics.batches += current.progress.batches();
            // A tick that did not become a run has no duration worth showing.
            if !matches!(outcome, Outcome::Skipped | Outcome::Held) {
                metrics.last_duration = Some(current.started.elapsed());
            }
        }
        if outcome == Outcome::Success {
            metrics.last_success = Some(Utc::now());
        }
    }

    /// Counts a tick that did not start a run because the previous one is still going.
    pub(crate) fn skipped(&self, pipeline: &str) {
        self.lock().entry(pipeline.to_owned()).or_default().runs[Outcome::Skipped.index()] += 1;
    }

    pub(crate) fn set_next_run(&self, pipeline: &str, next: Option<DateTime<Utc>>) {
        self.lock().entry(pipeline.to_owned()).or_default().next_run = next;
    }

    /// Records `lease` as read now; `mine` is the name this process's leases carry.
    pub(crate) fn set_lease(&self, pipeline: &str, mine: &str, lease: &Lease) {
        let mut pipelines = self.lock();
        let metrics = pipelines.entry(pipeline.to_owned()).or_default();
        // The name alone is not enough: a container started again in the same pod has the same
        // host name and process id as the one that died holding the lease.
        let holder = match &lease.owner {
            _ if !lease.held => Holder::Nobody,
            Some(owner) if owner == mine && metrics.current.is_some() => Holder::ThisProcess,
            _ => Holder::AnotherProcess,
        };
        let view = LeaseView {
            mine: mine.to_owned(),
            owner: lease.owner.clone(),
            until: lease.until.filter(|_| lease.held),
            epoch: lease.epoch,
            holder,
            observed: Utc::now(),
        };
        metrics.lease = Some(view);
    }

    pub(crate) fn set_cursors(&self, pipeline: &str, state: &State) {
        let cursors = Cursors {
            timestamp: state
                .timestamp
                .as_ref()
                .map(|timestamp| unix_seconds(timestamp.instant())),
            id: match &state.id {
                Some(CursorId::Integer(id)) => Some(*id),
                _ => None,
            },
            offset: state.offset,
        };
        self.lock().entry(pipeline.to_owned()).or_default().cursors = cursors;
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, PipelineMetrics>> {
        // Counters stay meaningful even if a writer panicked half-way: keep serving them.
        self.pipelines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The lease families, for the pipelines whose lease was read; nothing when there is none.
fn render_leases(out: &mut String, pipelines: &BTreeMap<String, PipelineMetrics>) {
    let leases: Vec<(&String, &LeaseView)> = pipelines
        .iter()
        .filter_map(|(name, metrics)| Some((name, metrics.lease.as_ref()?)))
        .collect();
    if leases.is_empty() {
        return;
    }
    // One name per process in practice (every store of a process names it the same way);
    // a set, so that a series is never written twice.
    let mine: std::collections::BTreeSet<&str> =
        leases.iter().map(|(_, view)| view.mine.as_str()).collect();
    family(
        out,
        "cannectors_replica_info",
        "gauge",
        "The owner name this process's leases carry (host name and process id), to match the \
         owner label of cannectors_lease_owner_info with a scrape target.",
    );
    for owner in mine {
        sample(
            out,
            "cannectors_replica_info",
            &format!("owner=\"{}\"", escape(owner)),
            1,
        );
    }
    family(
        out,
        "cannectors_lease_state",
        "gauge",
        "The pipeline's lease as this process last read it: 1 for held_here (this process runs \
         the pipeline), held_elsewhere (another replica does) or free, 0 for the other two.",
    );
    for (name, view) in &leases {
        for holder in Holder::ALL {
            let labels = format!("pipeline=\"{}\",state=\"{}\"", escape(name), holder.label());
            let value = u8::from(view.holder == holder);
            sample(out, "cannectors_lease_state", &labels, value);
        }
    }
    family(
        out,
        "cannectors_lease_owner_info",
        "gauge",
        "Who holds the pipeline's lease, or held it last (the replica that ran the pipeline \
         last), as this process last read it.",
    );
    for (name, view) in &leases {
        if let Some(owner) = &view.owner {
            let labels = format!("pipeline=\"{}\",owner=\"{}\"", escape(name), escape(owner));
            sample(out, "cannectors_lease_owner_info", &labels, 1);
        }
    }
    let per_lease =
        |out: &mut String, name: &str, help: &str, value: fn(&LeaseView) -> Option<f64>| {
            family(out, name, "gauge", help);
            for (pipeline, view) in &leases {
                if let Some(value) = value(view) {
                    let labels = format!("pipeline=\"{}\"", escape(pipeline));
                    sample(out, name, &labels, value);
                }
            }
        };
    per_lease(
        out,
        "cannectors_lease_expiry_timestamp_seconds",
        "When the held lease expires unless renewed, by the database's clock, as a Unix \
         timestamp; absent while the lease is free.",
        |view| view.until.map(unix_seconds),
    );
    per_lease(
        out,
        "cannectors_lease_epoch",
        "The lease's fencing epoch: one more at every taking, so its rate is the rate of runs \
         across all replicas.",
        |view| Some(view.epoch as f64),
    );
    per_lease(
        out,
        "cannectors_lease_observed_timestamp_seconds",
        "When this process last read the lease, as a Unix timestamp: the lease metrics are as \
         of then.",
        |view| Some(unix_seconds(view.observed)),
    );
}

fn unix_seconds(instant: DateTime<Utc>) -> f64 {
    instant.timestamp_millis() as f64 / 1000.0
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{name}{{{labels}}} {value}");
}

fn counter(
    out: &mut String,
    pipelines: &BTreeMap<String, PipelineMetrics>,
    name: &str,
    help: &str,
    value: impl Fn(&PipelineMetrics) -> Option<f64>,
) {
    per_pipeline(out, pipelines, name, "counter", help, value);
}

fn gauge(
    out: &mut String,
    pipelines: &BTreeMap<String, PipelineMetrics>,
    name: &str,
    help: &str,
    value: impl Fn(&PipelineMetrics) -> Option<f64>,
) {
    per_pipeline(out, pipelines, name, "gauge", help, value);
}

fn per_pipeline(
    out: &mut String,
    pipelines: &BTreeMap<String, PipelineMetrics>,
    name: &str,
    kind: &str,
    help: &str,
    value: impl Fn(&PipelineMetrics) -> Option<f64>,
) {
    family(out, name, kind, help);
    for (pipeline, metrics) in pipelines {
        if let Some(value) = value(metrics) {
            let labels = format!("pipeline=\"{}\"", escape(pipeline));
            sample(out, name, &labels, value);
        }
    }
}

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_of<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting with {prefix} in\n{text}"))
    }

    #[test]
    fn counts_runs_by_outcome_and_adds_records_of_finished_runs() {
        let metrics = Metrics::default();
        metrics.register("events");
        let progress = Arc::new(RunProgress::default());
        metrics.started("events", progress);
        metrics.finished("events", Outcome::Success);
        metrics.started("events", Arc::new(RunProgress::default()));
        metrics.finished("events", Outcome::Failure);
        metrics.finished("events", Outcome::Skipped);

        assert_eq!(metrics.runs("events", Outcome::Success), 1);
        assert_eq!(metrics.runs("events", Outcome::Failure), 1);
        assert_eq!(metrics.runs("events", Outcome::Skipped), 1);
        assert_eq!(metrics.runs("other", Outcome::Success), 0);
        let text = metrics.render();
        assert_eq!(
            line_of(
                &text,
                "cannectors_runs_total{pipeline=\"events\",outcome=\"success\"}"
            ),
            "cannectors_runs_total{pipeline=\"events\",outcome=\"success\"} 1"
        );
        assert_eq!(
            line_of(
                &text,
                "cannectors_runs_total{pipeline=\"events\",outcome=\"interrupted\"}"
            ),
            "cannectors_runs_total{pipeline=\"events\",outcome=\"interrupted\"} 0"
        );
        assert!(
            text.contains("# TYPE cannectors_runs_total counter\n"),
            "{text}"
        );
        assert!(
            line_of(
                &text,
                "cannectors_last_success_timestamp_seconds{pipeline=\"events\"}"
            )
            .split(' ')
            .nth(1)
            .and_then(|value| value.parse::<f64>().ok())
            .is_some_and(|seconds| seconds > 1.7e9),
            "{text}"
        );
    }

    #[test]
    fn shows_numeric_cursors_and_leaves_out_text_ids() {
        let metrics = Metrics::default();
        let state = State::from_json_str(
            r#"{"timestamp": "2026-01-01T00:00:00Z", "id": 42, "offset": 500}"#,
        )
        .unwrap();
        metrics.set_cursors("events", &state);
        let text_ids = State::from_json_str(r#"{"id": "a-17"}"#).unwrap();
        metrics.set_cursors("tickets", &text_ids);
        let text = metrics.render();
        assert!(
            text.contains(
                "cannectors_cursor_value{pipeline=\"events\",cursor=\"timestamp\"} 1767225600\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("cannectors_cursor_value{pipeline=\"events\",cursor=\"id\"} 42\n"),
            "{text}"
        );
        assert!(
            text.contains("cannectors_cursor_value{pipeline=\"events\",cursor=\"offset\"} 500\n"),
            "{text}"
        );
        assert!(!text.contains("pipeline=\"tickets\",cursor"), "{text}");
    }

    #[test]
    fn a_run_in_progress_is_visible_before_it_ends() {
        let metrics = Metrics::default();
        let progress = Arc::new(RunProgress::default());
        metrics.started("events", progress);
        let running = metrics.running();
        assert_eq!(running.len(), 1);
        assert_eq!(running[0].pipeline, "events");
        let text = metrics.render();
        assert!(
            text.contains("cannectors_run_in_progress{pipeline=\"events\"} 1\n"),
            "{text}"
        );
        metrics.finished("events", Outcome::Interrupted);
        assert!(metrics.running().is_empty());
        assert!(
            metrics
                .render()
                .contains("cannectors_run_in_progress{pipeline=\"events\"} 0\n")
        );
    }

    fn lease(owner: &str, until: Option<&str>, epoch: u64, held: bool) -> Lease {
        Lease::new(
            Some(owner.to_owned()),
            until.map(|until| until.parse().unwrap()),
            epoch,
            held,
        )
    }

    #[test]
    fn a_lease_held_here_shows_this_process_as_its_owner_with_its_expiry_and_epoch() {
        let metrics = Metrics::default();
        metrics.register("events");
        metrics.started("events", Arc::new(RunProgress::default()));
        metrics.set_lease(
            "events",
            "pod-a pid 1",
            &lease("pod-a pid 1", Some("2026-01-01T00:00:30Z"), 7, true),
        );
        let text = metrics.render();
        for line in [
            "cannectors_replica_info{owner=\"pod-a pid 1\"} 1\n",
            "cannectors_lease_state{pipeline=\"events\",state=\"held_here\"} 1\n",
            "cannectors_lease_state{pipeline=\"events\",state=\"held_elsewhere\"} 0\n",
            "cannectors_lease_state{pipeline=\"events\",state=\"free\"} 0\n",
            "cannectors_lease_owner_info{pipeline=\"events\",owner=\"pod-a pid 1\"} 1\n",
            "cannectors_lease_expiry_timestamp_seconds{pipeline=\"events\"} 1767225630\n",
            "cannectors_lease_epoch{pipeline=\"events\"} 7\n",
            "# TYPE cannectors_lease_state gauge\n",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
        assert!(
            line_of(
                &text,
                "cannectors_lease_observed_timestamp_seconds{pipeline=\"events\"}"
            )
            .split(' ')
            .nth(1)
            .and_then(|value| value.parse::<f64>().ok())
            .is_some_and(|seconds| seconds > 1.7e9),
            "{text}"
        );
    }

    #[test]
    fn a_lease_of_another_replica_or_a_free_one_names_who_ran_the_pipeline_last() {
        let metrics = Metrics::default();
        metrics.set_lease(
            "events",
            "pod-a pid 1",
            &lease("pod-b pid 1", Some("2026-01-01T00:00:30Z"), 8, true),
        );
        // Released: its expiry is gone, its last holder and epoch stay.
        metrics.set_lease(
            "orders",
            "pod-a pid 1",
            &lease("pod-c pid 1", Some("2026-01-01T00:00:30Z"), 3, false),
        );
        let text = metrics.render();
        for line in [
            "cannectors_lease_state{pipeline=\"events\",state=\"held_elsewhere\"} 1\n",
            "cannectors_lease_state{pipeline=\"events\",state=\"held_here\"} 0\n",
            "cannectors_lease_owner_info{pipeline=\"events\",owner=\"pod-b pid 1\"} 1\n",
            "cannectors_lease_state{pipeline=\"orders\",state=\"free\"} 1\n",
            "cannectors_lease_owner_info{pipeline=\"orders\",owner=\"pod-c pid 1\"} 1\n",
            "cannectors_lease_epoch{pipeline=\"orders\"} 3\n",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
        assert!(
            !text.contains("cannectors_lease_expiry_timestamp_seconds{pipeline=\"orders\"}"),
            "{text}"
        );
        assert_eq!(
            text.matches("cannectors_replica_info{").count(),
            1,
            "one series per process: {text}"
        );
        // A newer reading replaces the old one: one owner series per pipeline at a time.
        metrics.set_lease(
            "events",
            "pod-a pid 1",
            &lease("pod-a pid 1", None, 9, false),
        );
        let text = metrics.render();
        assert_eq!(
            text.matches("cannectors_lease_owner_info{pipeline=\"events\"")
                .count(),
            1,
            "{text}"
        );
        assert!(
            text.contains("cannectors_lease_state{pipeline=\"events\",state=\"free\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn a_lease_under_this_process_name_is_not_held_here_without_a_run_here() {
        // The process that died holding it had the same host name and process id (pid 1 of a
        // container started again in the same pod).
        let metrics = Metrics::default();
        metrics.set_lease(
            "events",
            "pod-a pid 1",
            &lease("pod-a pid 1", Some("2026-01-01T00:00:30Z"), 4, true),
        );
        let text = metrics.render();
        assert!(
            text.contains(
                "cannectors_lease_state{pipeline=\"events\",state=\"held_elsewhere\"} 1\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn pipelines_without_leases_have_no_lease_metrics() {
        let metrics = Metrics::default();
        metrics.register("events");
        let text = metrics.render();
        assert!(!text.contains("cannectors_lease"), "{text}");
        assert!(!text.contains("cannectors_replica_info"), "{text}");
    }

    #[test]
    fn ticks_another_replica_ran_are_counted_apart_from_skipped_ones() {
        let metrics = Metrics::default();
        metrics.started("events", Arc::new(RunProgress::default()));
        metrics.finished("events", Outcome::Held);
        metrics.skipped("events");
        let text = metrics.render();
        assert!(
            text.contains("cannectors_runs_total{pipeline=\"events\",outcome=\"held\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("cannectors_runs_total{pipeline=\"events\",outcome=\"skipped\"} 1\n"),
            "{text}"
        );
        assert!(
            !text.contains("cannectors_last_run_duration_seconds{"),
            "a tick that did not run has no duration: {text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
