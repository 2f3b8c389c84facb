//! `cannectors state show|path|reset|set`: look at and move a pipeline's cursors by hand.

use std::path::Path;

use cannectors_state::{State, StateStore};

use crate::cli::StateCommand;
use crate::commands::{Code, Failure, load};

pub(crate) fn state(command: StateCommand) -> Result<(), Failure> {
    match command {
        StateCommand::Show { file } => show(&file),
        StateCommand::Path { file } => {
            let store = store(&file)?;
            println!("{}", store.path().display());
            Ok(())
        }
        StateCommand::Reset { file } => reset(&file),
        StateCommand::Set {
            file,
            timestamp,
            id,
            offset,
        } => set(
            &file,
            timestamp.as_deref(),
            id.as_deref(),
            offset.as_deref(),
        ),
    }
}

fn store(file: &Path) -> Result<StateStore, Failure> {
    let loaded = load(file)?;
    StateStore::for_pipeline(&loaded.pipeline)
        .map(|store| store.with_pipeline_file(file))
        .map_err(|e| Failure::new(Code::Runtime, e.to_string()))
}

fn runtime(error: impl std::fmt::Display) -> Failure {
    Failure::new(Code::Runtime, error.to_string())
}

fn show(file: &Path) -> Result<(), Failure> {
    let store = store(file)?;
    println!("state file: {}", store.path().display());
    match store.load().map_err(runtime)? {
        Some(state) => println!("{}", state.to_json_pretty()),
        None => println!("no state yet: the next run starts from the beginning"),
    }
    Ok(())
}

fn reset(file: &Path) -> Result<(), Failure> {
    let store = store(file)?;
    let _lock = store.lock().map_err(runtime)?;
    if store.reset().map_err(runtime)? {
        println!(
            "removed {}: the next run starts from the beginning",
            store.path().display()
        );
    } else {
        println!(
            "no state file at {}: nothing to reset",
            store.path().display()
        );
    }
    Ok(())
}

fn set(
    file: &Path,
    timestamp: Option<&str>,
    id: Option<&str>,
    offset: Option<&str>,
) -> Result<(), Failure> {
    if timestamp.is_none() && id.is_none() && offset.is_none() {
        return Err(Failure::new(
            Code::Validation,
            "state set needs at least one of --timestamp, --id, --offset",
        ));
    }
    let seed = State::seed(timestamp, id, offset)
        .map_err(|e| Failure::new(Code::Validation, format!("state set: {e}")))?;
    let store = store(file)?;
    let _lock = store.lock().map_err(runtime)?;
    // A file that cannot be read is never overwritten: load it first, and stop on an error.
    let mut state = store.load().map_err(runtime)?.unwrap_or_default();
    if timestamp.is_some() {
        state.timestamp = seed.timestamp;
    }
    if id.is_some() {
        state.id = seed.id;
    }
    if offset.is_some() {
        state.offset = seed.offset;
    }
    if state.discard_run().is_some() {
        println!(
            "dropped the progress of an interrupted run: the next run starts from the new cursors"
        );
    }
    store.commit(&state).map_err(runtime)?;
    println!("state file: {}", store.path().display());
    println!("{}", state.to_json_pretty());
    Ok(())
}
