//! What each command does, and how its outcome maps to an exit code.

use std::path::Path;

use crate::cli::Command;

/// Exit codes of the program (docs/operations.md, "Signals and exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Code {
    Validation = 1,
    Parse = 2,
    Runtime = 3,
}

/// A command that did not succeed: the exit code and what to tell the user.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: Code,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

pub(crate) fn dispatch(command: Command) -> Result<(), Failure> {
    match command {
        Command::Validate { files } => validate(&files),
        Command::Run(args) => crate::run_cmd::run(args),
        Command::Schedule(args) => crate::schedule_cmd::schedule(&args),
        Command::State(command) => crate::state_cmd::state(command),
        Command::Backfill(args) => crate::backfill_cmd::backfill(&args),
        Command::Schema => {
            let schema = cannectors_config::json_schema();
            let text = serde_json::to_string_pretty(&schema).map_err(|e| {
                Failure::new(Code::Runtime, format!("cannot render the schema: {e}"))
            })?;
            println!("{text}");
            Ok(())
        }
    }
}

fn validate(files: &[std::path::PathBuf]) -> Result<(), Failure> {
    let mut worst: Option<Code> = None;
    for file in files {
        match load(file) {
            Ok(loaded) => {
                for warning in &loaded.warnings {
                    eprintln!("warning: {}: {warning}", file.display());
                }
                println!(
                    "ok: {} (pipeline `{}`)",
                    file.display(),
                    loaded.pipeline.name
                );
                println!(
                    "  delivery: {}",
                    cannectors_runtime::delivery_guarantee(&loaded.pipeline)
                );
            }
            Err(failure) => {
                eprintln!("error: {}", failure.message);
                worst = worst.max(Some(failure.code));
            }
        }
    }
    match worst {
        None => Ok(()),
        Some(code) => Err(Failure::new(code, "")),
    }
}

/// Loads a pipeline file, mapping its errors to exit codes.
pub(crate) fn load(file: &Path) -> Result<cannectors_config::LoadedPipeline, Failure> {
    let loaded = cannectors_config::load(file).map_err(|error| {
        let code = if error.is_parse_error() {
            Code::Parse
        } else {
            Code::Validation
        };
        Failure::new(code, error.to_string())
    })?;
    crate::logging::keep_out(&loaded.secrets);
    Ok(loaded)
}
