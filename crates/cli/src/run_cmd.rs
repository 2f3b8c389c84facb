//! `cannectors run`: one run of a pipeline through the executor.

use std::path::Path;

use cannectors_runtime::{Executor, RunOptions};

use crate::commands::{Code, Failure, load};

pub(crate) fn run(file: &Path, once: bool, dry_run: bool) -> Result<(), Failure> {
    let loaded = load(file)?;
    for warning in &loaded.warnings {
        tracing::warn!("{}: {warning}", file.display());
    }
    if loaded.pipeline.input.schedule().is_some() && !once {
        return Err(Failure::new(
            Code::Runtime,
            format!(
                "{}: the pipeline has a schedule, and scheduled mode is not available in this \
                 build yet; run it with --once",
                file.display()
            ),
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::new(
                Code::Runtime,
                format!("cannot start the async runtime: {e}"),
            )
        })?;
    let options = RunOptions {
        dry_run,
        stop: None,
        progress: None,
    };
    let outcome = runtime.block_on(async {
        let executor = Executor::new(&loaded.pipeline)?;
        executor.run(&options).await
    });
    match outcome {
        Ok(_summary) => Ok(()),
        Err(error) => Err(Failure::new(
            Code::Runtime,
            format!("{}: {error}", file.display()),
        )),
    }
}
