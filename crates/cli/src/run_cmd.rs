//! `cannectors run`: a pipeline file or a directory of them, once or on their schedules, until
//! SIGINT/SIGTERM; with a metrics endpoint and a progress line on request.

mod metrics_http;
mod progress;
pub(crate) mod signals;

use std::path::{Path, PathBuf};

use cannectors_config::LoadedPipeline;
use cannectors_runtime::RunError;
use cannectors_scheduler::{Ending, Job, JobError, Report, Scheduler, SchedulerOptions, Shutdown};

use crate::cli::RunArgs;
use crate::commands::{Code, Failure, load};
use crate::logging;

pub(crate) fn run(args: RunArgs) -> Result<(), Failure> {
    let outcome = run_args(&args);
    // In JSON mode the error goes out as a log event, so that standard error stays JSON.
    match outcome {
        Err(failure) if logging::is_json() && !failure.message.is_empty() => {
            logging::report_error(&failure.message);
            Err(Failure::new(failure.code, ""))
        }
        outcome => outcome,
    }
}

fn run_args(args: &RunArgs) -> Result<(), Failure> {
    let pipelines = if args.target.is_dir() {
        load_directory(&args.target)?
    } else {
        vec![load(&args.target)?]
    };
    let mut jobs = Vec::with_capacity(pipelines.len());
    for loaded in &pipelines {
        for warning in &loaded.warnings {
            tracing::warn!("{}: {warning}", loaded.path.display());
        }
        jobs.push(Job::new(loaded).map_err(|error| match &error {
            JobError::Executor { file, source } => Failure::new(
                Code::Runtime,
                format!("{}: {}", file.display(), describe_failure(file, source)),
            ),
        })?);
    }
    let options = SchedulerOptions {
        once: args.once || args.dry_run,
        dry_run: args.dry_run,
        shutdown_timeout: args.shutdown_timeout,
        describe_failure,
    };
    let scheduler = Scheduler::new(jobs, options)
        .map_err(|error| Failure::new(Code::Validation, error.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::new(
                Code::Runtime,
                format!("cannot start the async runtime: {e}"),
            )
        })?;
    let report = runtime.block_on(async {
        let shutdown = Shutdown::new();
        signals::listen(shutdown.clone()).map_err(|e| {
            Failure::new(
                Code::Runtime,
                format!("cannot listen for SIGINT/SIGTERM: {e}"),
            )
        })?;
        if let Some(addr) = args.metrics_addr {
            metrics_http::serve(addr, scheduler.metrics()).await?;
        }
        let progress = logging::progress_enabled().then(|| progress::spawn(scheduler.metrics()));
        let report = scheduler.run(&shutdown).await;
        if let Some(progress) = progress {
            progress.abort();
            logging::show_status(None);
        }
        Ok::<Report, Failure>(report)
    });
    // Runs cut by the shutdown timeout may sit in a blocking call; they are not waited for.
    runtime.shutdown_background();
    conclude(report?, args.shutdown_timeout)
}

/// A failed run as this program tells it: a state error gets the advice of the `state` commands.
fn describe_failure(file: &Path, error: &RunError) -> String {
    match error {
        RunError::State(error) => crate::state_cmd::with_advice(error, file),
        other => other.to_string(),
    }
}

/// Maps how the scheduler ended to an exit code: stopping on a signal is a success, a failed
/// run is an error only when the program ran its pipelines once.
fn conclude(report: Report, timeout: std::time::Duration) -> Result<(), Failure> {
    match &report.ending {
        Ending::Completed => {}
        Ending::Stopped => {
            tracing::info!("stopped: no batch was left uncommitted");
            return Ok(());
        }
        Ending::TimedOut { unfinished } => {
            tracing::warn!(
                "stopped after the shutdown timeout of {}s: the batch in flight of {} was not \
                 committed and is sent again by the next run",
                timeout.as_secs_f64(),
                unfinished.join(", ")
            );
            return Ok(());
        }
        Ending::Forced { unfinished } => {
            tracing::warn!(
                "stopped at once on a second signal: the batch in flight of {} was not \
                 committed and is sent again by the next run",
                unfinished.join(", ")
            );
            return Ok(());
        }
    }
    match report.failures.as_slice() {
        [] => Ok(()),
        [one] => Err(Failure::new(
            Code::Runtime,
            format!("{}: {}", one.file.display(), one.message),
        )),
        many => {
            for failure in many {
                logging::report_error(&format!("{}: {}", failure.file.display(), failure.message));
            }
            let names: Vec<&str> = many.iter().map(|f| f.pipeline.as_str()).collect();
            Err(Failure::new(
                Code::Runtime,
                format!("{} pipelines failed: {}", many.len(), names.join(", ")),
            ))
        }
    }
}

/// Every pipeline file of `dir`: `*.yaml`, `*.yml` and `*.json`, not hidden, in name order.
/// Each is loaded; any that does not load stops the start with its error.
fn load_directory(dir: &Path) -> Result<Vec<LoadedPipeline>, Failure> {
    let files = pipeline_files(dir).map_err(|error| {
        Failure::new(
            Code::Parse,
            format!(
                "{}: cannot list the pipeline directory: {error}",
                dir.display()
            ),
        )
    })?;
    if files.is_empty() {
        return Err(Failure::new(
            Code::Validation,
            format!(
                "{}: no pipeline files in this directory (*.yaml, *.yml or *.json)",
                dir.display()
            ),
        ));
    }
    let mut loaded = Vec::with_capacity(files.len());
    let mut failures = Vec::new();
    for file in &files {
        match load(file) {
            Ok(pipeline) => loaded.push(pipeline),
            Err(failure) => failures.push(failure),
        }
    }
    if failures.len() > 1 {
        for failure in &failures {
            logging::report_error(&failure.message);
        }
        let code = failures
            .iter()
            .map(|f| f.code)
            .max()
            .unwrap_or(Code::Validation);
        return Err(Failure::new(
            code,
            format!(
                "{} of the {} pipeline files in {} are not valid; nothing was started",
                failures.len(),
                files.len(),
                dir.display()
            ),
        ));
    }
    match failures.pop() {
        Some(failure) => Err(Failure::new(
            failure.code,
            format!("{}; nothing was started", failure.message),
        )),
        None => Ok(loaded),
    }
}

fn pipeline_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let is_pipeline = matches!(extension.as_deref(), Some("yaml" | "yml" | "json"));
        // Hidden files are editor swap files and the like, never pipelines.
        if is_pipeline && !name.starts_with('.') && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_once_whose_run_panicked_exits_3_naming_the_file_and_the_pipeline() {
        let message = "the run of pipeline `events` stopped on an internal error (panicked: \
                       attempt to add with overflow); the state stays where the last committed \
                       batch left it";
        let report = Report {
            ending: Ending::Completed,
            failures: vec![cannectors_scheduler::RunFailure {
                pipeline: "events".to_owned(),
                file: PathBuf::from("pipelines/events.yaml"),
                message: message.to_owned(),
            }],
        };
        let failure = conclude(report, std::time::Duration::from_secs(30)).unwrap_err();
        assert_eq!(failure.code, Code::Runtime);
        assert_eq!(failure.code as u8, 3);
        assert_eq!(failure.message, format!("pipelines/events.yaml: {message}"));
    }

    #[test]
    fn directory_listing_keeps_pipeline_files_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b.yml",
            "a.yaml",
            "c.JSON",
            ".a.yaml.swp",
            ".hidden.yaml",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
        let names: Vec<String> = pipeline_files(dir.path())
            .unwrap()
            .iter()
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.yaml", "b.yml", "c.JSON"]);
    }
}
