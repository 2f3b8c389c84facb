//! `cannectors state show|path|reset|set`: look at and move a pipeline's cursors by hand, and
//! the advice this program adds to the state crate's errors.

use std::future::Future;
use std::path::Path;

use cannectors_state::{State, StateError, StateStore};

use crate::cli::StateCommand;
use crate::commands::{Code, Failure, load};

pub(crate) fn state(command: StateCommand) -> Result<(), Failure> {
    match command {
        StateCommand::Show { file } => block_on(show(&file)),
        StateCommand::Path { file } => {
            let store = store(&file)?;
            println!("{}", store.location());
            Ok(())
        }
        StateCommand::Reset { file } => block_on(reset(&file)),
        StateCommand::Set {
            file,
            timestamp,
            id,
            offset,
        } => block_on(set(
            &file,
            timestamp.as_deref(),
            id.as_deref(),
            offset.as_deref(),
        )),
    }
}

/// `error` as this program tells it: the library's message, with the command or the pipeline
/// key that fixes it where there is one. `file` is the pipeline file the state belongs to.
pub(crate) fn with_advice(error: &StateError, file: &Path) -> String {
    match error {
        StateError::Corrupt { .. } => format!(
            "{error} (`cannectors state reset {}` removes it)",
            file.display()
        ),
        StateError::StorageDir { .. } | StateError::CreateDir { .. } => format!(
            "{error} (the directory is statePersistence.storagePath in {})",
            file.display()
        ),
        _ => error.to_string(),
    }
}

/// Store operations are futures; these commands wait for each in turn.
fn block_on<F: Future<Output = Result<(), Failure>>>(command: F) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::new(
                Code::Runtime,
                format!("cannot start the async runtime: {e}"),
            )
        })?;
    runtime.block_on(command)
}

fn store(file: &Path) -> Result<Box<dyn StateStore>, Failure> {
    let loaded = load(file)?;
    let mut store = cannectors_runtime::store_for(&loaded.pipeline)
        .map_err(|error| Failure::new(Code::Runtime, with_advice(&error, file)))?;
    store.set_pipeline_file(file);
    Ok(store)
}

/// Maps a state error of the pipeline in `file` to exit code 3.
fn runtime(file: &Path) -> impl Fn(StateError) -> Failure + '_ {
    move |error| Failure::new(Code::Runtime, with_advice(&error, file))
}

async fn show(file: &Path) -> Result<(), Failure> {
    let store = store(file)?;
    println!("state file: {}", store.location());
    match store.load().await.map_err(runtime(file))? {
        Some(state) => println!("{}", state.to_json_pretty()),
        None => println!("no state yet: the next run starts from the beginning"),
    }
    Ok(())
}

async fn reset(file: &Path) -> Result<(), Failure> {
    let store = store(file)?;
    let mut lock = store.lock().await.map_err(runtime(file))?;
    if lock.reset().await.map_err(runtime(file))? {
        println!(
            "removed {}: the next run starts from the beginning",
            store.location()
        );
    } else {
        println!("no state file at {}: nothing to reset", store.location());
    }
    Ok(())
}

async fn set(
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
    let mut lock = store.lock().await.map_err(runtime(file))?;
    // A file that cannot be read is never overwritten: load it first, and stop on an error.
    let mut state = store
        .load()
        .await
        .map_err(runtime(file))?
        .unwrap_or_default();
    if timestamp.is_some() {
        state.timestamp = seed.timestamp;
        // A new timestamp means "deliver from here": records remembered as delivered in the
        // old lookback window must not be left out of that.
        if !state.identities.is_empty() {
            state.identities = Default::default();
            println!("forgot the records remembered by lookback: the next run delivers them again");
        }
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
    lock.commit(&state).await.map_err(runtime(file))?;
    println!("state file: {}", store.location());
    println!("{}", state.to_json_pretty());
    Ok(())
}
