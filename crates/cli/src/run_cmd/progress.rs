//! The progress line of long runs on a terminal: records read and written, batches and rate.
//! Runs shorter than a couple of seconds never show one.

use std::sync::Arc;
use std::time::Duration;

use cannectors_scheduler::{Metrics, RunningRun};
use tokio::task::JoinHandle;

use crate::logging;

/// A run shows progress once it has been going this long.
const SHOW_AFTER: Duration = Duration::from_secs(2);
const REFRESH: Duration = Duration::from_millis(500);
/// Longer lines would wrap on a narrow terminal, and a wrapped line cannot be erased.
const MAX_WIDTH: usize = 78;

/// Draws the progress line until the returned task is aborted.
pub(super) fn spawn(metrics: Arc<Metrics>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REFRESH);
        loop {
            tick.tick().await;
            let runs: Vec<RunningRun> = metrics
                .running()
                .into_iter()
                .filter(|run| run.elapsed >= SHOW_AFTER)
                .collect();
            logging::show_status(line(&runs).as_deref());
        }
    })
}

/// `events: 12,340 read, 12,000 written, 24 batches, 1,230/s, 10s`, or a short form per run
/// when several are going.
fn line(runs: &[RunningRun]) -> Option<String> {
    let text = match runs {
        [] => return None,
        [run] => format!(
            "{}: {} read, {} written, {} batches, {}/s, {}s",
            run.pipeline,
            grouped(run.records_read),
            grouped(run.records_written),
            grouped(run.batches),
            grouped(rate(run)),
            run.elapsed.as_secs()
        ),
        many => many
            .iter()
            .map(|run| {
                format!(
                    "{} {} read ({}/s)",
                    run.pipeline,
                    grouped(run.records_read),
                    grouped(rate(run))
                )
            })
            .collect::<Vec<_>>()
            .join(" | "),
    };
    Some(shorten(text))
}

fn rate(run: &RunningRun) -> u64 {
    let seconds = run.elapsed.as_secs_f64();
    if seconds > 0.0 {
        (run.records_read as f64 / seconds).round() as u64
    } else {
        0
    }
}

fn shorten(text: String) -> String {
    if text.chars().count() <= MAX_WIDTH {
        return text;
    }
    let mut short: String = text.chars().take(MAX_WIDTH - 1).collect();
    short.push('…');
    short
}

/// `1234567` as `1,234,567`.
fn grouped(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pipeline: &str, read: u64, seconds: u64) -> RunningRun {
        RunningRun {
            pipeline: pipeline.to_owned(),
            records_read: read,
            records_written: read - read / 10,
            batches: read / 500,
            elapsed: Duration::from_secs(seconds),
        }
    }

    #[test]
    fn one_run_shows_records_batches_and_rate() {
        assert_eq!(
            line(&[run("events", 12_340, 10)]).unwrap(),
            "events: 12,340 read, 11,106 written, 24 batches, 1,234/s, 10s"
        );
    }

    #[test]
    fn several_runs_share_one_line_that_never_wraps() {
        let text = line(&[
            run("events", 1_000, 2),
            run("orders", 5_000_000, 100),
            run("customers-with-a-long-name", 9, 3),
        ])
        .unwrap();
        assert!(
            text.starts_with("events 1,000 read (500/s) | orders 5,000,000 read"),
            "{text}"
        );
        assert_eq!(text.chars().count(), MAX_WIDTH);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn no_line_without_long_runs() {
        assert_eq!(line(&[]), None);
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
