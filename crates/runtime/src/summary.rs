//! The one line a run ends with: what it read, wrote and committed, and how long it took.

use std::fmt;
use std::time::Duration;

use cannectors_state::State;

/// What one run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The pipeline name.
    pub pipeline: String,
    /// Records received from the source.
    pub records_read: u64,
    /// Records handed to the sink and accepted.
    pub records_written: u64,
    /// Records not delivered because a cursor field was missing or null
    /// (`onMissingCursor: skip`).
    pub records_missing_cursor: u64,
    /// Records of the lookback window left out because they were delivered before.
    pub records_repeated: u64,
    /// Records newer than now - `delay`, held back for a later run.
    pub records_held: u64,
    /// Records a `drop` filter removed (their cursor values still counted).
    pub records_dropped: u64,
    /// Records a failing filter with `onError: skip` removed (their cursor values still
    /// counted).
    pub records_skipped: u64,
    /// Records the destination refused and the output left out (a database output under
    /// `onError: skip` or `log`); not counted in `records_written`.
    pub records_refused: u64,
    /// Batches delivered and committed.
    pub batches: u64,
    /// Wall time of the run.
    pub duration: Duration,
    /// The committed cursors before the run, as shown to a user.
    pub cursor_before: String,
    /// The committed cursors after the run.
    pub cursor_after: String,
    /// The run stopped early on request (graceful shutdown) and will resume.
    pub interrupted: bool,
    /// Nothing was sent and nothing committed.
    pub dry_run: bool,
}

impl RunSummary {
    pub(crate) fn start(pipeline: &str, state: &State, dry_run: bool) -> RunSummary {
        RunSummary {
            pipeline: pipeline.to_owned(),
            records_read: 0,
            records_written: 0,
            records_missing_cursor: 0,
            records_repeated: 0,
            records_held: 0,
            records_dropped: 0,
            records_skipped: 0,
            records_refused: 0,
            batches: 0,
            duration: Duration::ZERO,
            cursor_before: describe(state),
            cursor_after: String::new(),
            interrupted: false,
            dry_run,
        }
    }

    pub(crate) fn finish(&mut self, state: &State, duration: Duration, interrupted: bool) {
        self.cursor_after = describe(state);
        self.duration = duration;
        self.interrupted = interrupted;
    }
}

/// `timestamp=…, id=…, offset=…`, or `none` before the first commit.
fn describe(state: &State) -> String {
    let mut parts = Vec::new();
    if let Some(timestamp) = &state.timestamp {
        parts.push(format!("timestamp={timestamp}"));
    }
    if let Some(id) = &state.id {
        parts.push(format!("id={id}"));
    }
    if let Some(offset) = state.offset {
        parts.push(format!("offset={offset}"));
    }
    if let Some(run) = &state.run {
        parts.push(format!("run in progress after {} batches", run.batches()));
    }
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = match (self.dry_run, self.interrupted) {
            (true, _) => "dry run complete (nothing sent, nothing committed)",
            (false, true) => "run stopped on request",
            (false, false) if self.records_read == self.records_repeated => {
                "run complete: nothing new"
            }
            (false, false) => "run complete",
        };
        let seconds = self.duration.as_secs_f64();
        let rate = if seconds > 0.0 {
            self.records_read as f64 / seconds
        } else {
            0.0
        };
        write!(
            f,
            "{outcome}: pipeline={} read={} written={}",
            self.pipeline, self.records_read, self.records_written,
        )?;
        // Only what happened is shown: most pipelines never leave a record out.
        for (count, label) in [
            (self.records_dropped, "dropped"),
            (self.records_skipped, "skipped"),
            (self.records_refused, "refused"),
            (self.records_missing_cursor, "missing-cursor"),
            (self.records_repeated, "already-delivered"),
            (self.records_held, "held-back"),
        ] {
            if count > 0 {
                write!(f, " {label}={count}")?;
            }
        }
        write!(
            f,
            " batches={} duration={seconds:.3}s rate={rate:.0}/s cursor: {} -> {}",
            self.batches, self.cursor_before, self.cursor_after,
        )
    }
}
