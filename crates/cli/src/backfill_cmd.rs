//! `cannectors backfill`: one run of a pipeline over a past range, its progress kept in the
//! backfill section of the state file, the pipeline's cursors untouched.

use cannectors_runtime::{BackfillRange, Executor, RunError, RunOptions};

use crate::cli::{BackfillArgs, parse_instant};
use crate::commands::{Code, Failure, load};
use crate::run_cmd::signals::Signals;

pub(crate) fn backfill(args: &BackfillArgs) -> Result<(), Failure> {
    // The range is checked before anything is loaded or locked: a typo changes nothing.
    let bad = |flag: &str, problem: String| {
        Failure::new(Code::Validation, format!("backfill {flag}: {problem}"))
    };
    let from = parse_instant(&args.from).map_err(|problem| bad("--from", problem))?;
    let to = args
        .to
        .as_deref()
        .map(parse_instant)
        .transpose()
        .map_err(|problem| bad("--to", problem))?;
    if let Some(to) = to
        && from >= to
    {
        return Err(bad(
            "--from",
            format!(
                "{} is not before --to {}; the range must start before it ends",
                args.from,
                args.to.as_deref().unwrap_or_default()
            ),
        ));
    }
    let loaded = load(&args.file)?;
    for warning in &loaded.warnings {
        tracing::warn!("{}: {warning}", loaded.path.display());
    }
    let file = &args.file;
    let failed = |error: RunError| {
        let code = match error {
            RunError::BackfillRange { .. } => Code::Validation,
            _ => Code::Runtime,
        };
        let advice = match &error {
            RunError::State(error) => crate::state_cmd::with_advice(error, file),
            RunError::BackfillUnfinished { .. } => format!(
                "{error}: run the backfill of that range again to finish it, or add --restart \
                 to drop it and start this one (see it with `cannectors state show {}`)",
                file.display()
            ),
            RunError::BackfillRange { .. } => format!("{error}: give an earlier --from or a --to"),
            other => other.to_string(),
        };
        Failure::new(code, format!("{}: {advice}", file.display()))
    };
    let executor = Executor::new(&loaded.pipeline)
        .map_err(failed)?
        .with_pipeline_file(&loaded.path);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::new(
                Code::Runtime,
                format!("cannot start the async runtime: {e}"),
            )
        })?;
    let range = BackfillRange::new(from, to).restarting(args.restart);
    let summary = runtime.block_on(async {
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let mut signals = Signals::register().map_err(|e| {
            Failure::new(
                Code::Runtime,
                format!("cannot listen for SIGINT/SIGTERM: {e}"),
            )
        })?;
        tokio::spawn(async move {
            if let Some(name) = signals.next().await {
                tracing::info!("{name} received: stopping after the batch in flight");
                stop.send_replace(true);
            }
            if let Some(name) = signals.next().await {
                tracing::warn!(
                    "{name} received again: stopping at once; the batch in flight is not \
                         committed and is sent again when the backfill is resumed"
                );
                std::process::exit(0);
            }
        });
        let options = RunOptions {
            stop: Some(stopping),
            ..RunOptions::default()
        };
        executor.backfill(range, &options).await.map_err(failed)
    })?;
    if summary.interrupted {
        tracing::info!(
            "stopped: the backfill is unfinished; the same command resumes it where it stopped"
        );
    }
    // A second signal may come while the runtime winds down; the backfill is committed.
    runtime.shutdown_background();
    Ok(())
}
