//! `cannectors state show|path|reset|set|migrate`: look at and move a pipeline's cursors by
//! hand, copy them from a state file into the PostgreSQL store, and the advice this program adds
//! to the state crate's errors.

use std::future::Future;
use std::path::Path;

use cannectors_config::StoreKind;
use cannectors_state::{Lease, State, StateError, StateLock, StateStore};

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
        StateCommand::Migrate {
            file,
            to,
            from_dir,
            force,
        } => block_on(migrate(&file, &to, from_dir.as_deref(), force)),
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
        StateError::Journal { .. } => format!(
            "{error} (`cannectors state reset {}` removes the state file and its journals)",
            file.display()
        ),
        StateError::StorageDir { .. } | StateError::CreateDir { .. } => format!(
            "{error} (the directory is statePersistence.storagePath in {})",
            file.display()
        ),
        StateError::CorruptRecord { .. } => format!(
            "{error} (`cannectors state reset {}` removes it)",
            file.display()
        ),
        StateError::Unavailable { .. } => format!(
            "{error} (the database is statePersistence.connectionStringRef or \
             connectionString in {})",
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
    store_and_kind(file).map(|(store, _)| store)
}

/// The pipeline's store, and whether it is the PostgreSQL one.
fn store_and_kind(file: &Path) -> Result<(Box<dyn StateStore>, bool), Failure> {
    let loaded = load(file)?;
    let shared = loaded
        .pipeline
        .input
        .state_persistence()
        .is_some_and(|settings| matches!(settings.store, StoreKind::Postgres(_)));
    let mut store = cannectors_runtime::store_for(&loaded.pipeline)
        .map_err(|error| Failure::new(Code::Runtime, with_advice(&error, file)))?;
    store.set_pipeline_file(file);
    Ok((store, shared))
}

/// Gives a lock back before the command ends, so that a run can take it at once; the
/// command's runtime ends with the command, so a release left to the drop would not happen.
async fn release(lock: Box<dyn StateLock>, file: &Path) -> Result<(), Failure> {
    lock.release().await.map_err(runtime(file))
}

/// What the location of a store is, for people.
fn label(shared: bool) -> &'static str {
    if shared { "state store" } else { "state file" }
}

/// A lease for people: who holds it and until when, or who held it last.
fn describe_lease(lease: &Lease) -> String {
    let owner = lease.owner.as_deref().unwrap_or("nobody");
    let epoch = lease.epoch;
    let holder = match lease.until {
        Some(until) if lease.held => format!(
            "held by {owner} until {} (epoch {epoch})",
            until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ),
        Some(until) => format!(
            "free: expired at {} (last held by {owner}, epoch {epoch})",
            until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ),
        None => format!("free: released (last held by {owner}, epoch {epoch})"),
    };
    match lease.last_tick {
        Some(tick) => format!(
            "{holder}; last scheduled tick {}",
            tick.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => holder,
    }
}

/// Maps a state error of the pipeline in `file` to exit code 3.
fn runtime(file: &Path) -> impl Fn(StateError) -> Failure + '_ {
    move |error| Failure::new(Code::Runtime, with_advice(&error, file))
}

async fn show(file: &Path) -> Result<(), Failure> {
    let (store, shared) = store_and_kind(file)?;
    println!("{}: {}", label(shared), store.location());
    if shared {
        let lease = store.lease().await.map_err(runtime(file))?;
        match lease {
            Some(lease) => println!("lease: {}", describe_lease(&lease)),
            None => println!("lease: never taken"),
        }
    }
    match store.load().await.map_err(runtime(file))? {
        Some(mut state) => {
            // A lookback window's identities are hashes, up to a megabyte of them: their count
            // tells a person what they need.
            let remembered = std::mem::take(&mut state.identities).len();
            println!("{}", state.to_json_pretty());
            if remembered > 0 {
                println!(
                    "identities: {remembered} records delivered inside the lookback window \
                     are remembered"
                );
            }
        }
        None => println!("no state yet: the next run starts from the beginning"),
    }
    Ok(())
}

async fn reset(file: &Path) -> Result<(), Failure> {
    let (store, shared) = store_and_kind(file)?;
    let mut lock = store.lock().await.map_err(runtime(file))?;
    let removed = lock.reset().await.map_err(runtime(file))?;
    release(lock, file).await?;
    let what = if shared {
        format!(
            "the state of pipeline `{}` in {}",
            store.pipeline(),
            store.location()
        )
    } else {
        store.location().to_owned()
    };
    if removed {
        println!("removed {what}: the next run starts from the beginning");
    } else {
        println!("no state at {}: nothing to reset", store.location());
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
    let (store, shared) = store_and_kind(file)?;
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
    release(lock, file).await?;
    println!("{}: {}", label(shared), store.location());
    println!("{}", state.to_json_pretty());
    Ok(())
}

/// Copies the state file into the PostgreSQL store, under both locks (no run writes either
/// meanwhile). The store's row is written only when it holds no state, or the same cursors and
/// run, or with `force`; the file is left as it was, so that going back is only a matter of
/// the pipeline file.
async fn migrate(file: &Path, to: &str, dir: Option<&Path>, force: bool) -> Result<(), Failure> {
    let loaded = load(file)?;
    let cannectors_runtime::Migration {
        mut from, mut into, ..
    } = cannectors_runtime::migration_stores(&loaded.pipeline, dir, to).map_err(runtime(file))?;
    from.set_pipeline_file(file);
    into.set_pipeline_file(file);
    let _file_lock = from.lock().await.map_err(runtime(file))?;
    let Some(state) = from.load().await.map_err(runtime(file))? else {
        return Err(Failure::new(
            Code::Runtime,
            format!(
                "no state file at {}: nothing to migrate (give its directory with --from-dir)",
                from.location()
            ),
        ));
    };
    let mut lock = into.lock().await.map_err(runtime(file))?;
    let outcome = copy(&state, into.as_ref(), lock.as_mut(), force, file).await;
    release(lock, file).await?;
    outcome?;
    println!("copied {} into {}", from.location(), into.location());
    println!("{}", state.to_json_pretty());
    println!(
        "the state file is left as it was; set `store: postgres` and `connectionStringRef` \
         under statePersistence in {} to use the store",
        file.display()
    );
    Ok(())
}

async fn copy(
    state: &State,
    into: &dyn StateStore,
    lock: &mut dyn StateLock,
    force: bool,
    file: &Path,
) -> Result<(), Failure> {
    if let Some(existing) = into.load().await.map_err(runtime(file))?
        && !force
        && cursors_and_run(&existing) != cursors_and_run(state)
    {
        return Err(Failure::new(
            Code::Runtime,
            format!(
                "{} already holds a different state for pipeline `{}`:\n{}\nNothing was \
                 changed; pass --force to replace it with the state file's",
                into.location(),
                into.pipeline(),
                existing.to_json_pretty()
            ),
        ));
    }
    lock.commit(state).await.map_err(runtime(file))
}

/// A state without the metadata a commit stamps (which pipeline file, when).
fn cursors_and_run(state: &State) -> State {
    let mut bare = state.clone();
    bare.pipeline = None;
    bare.pipeline_file = None;
    bare.updated_at = None;
    bare
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_lease_says_who_holds_it_until_when_and_the_tick_it_was_last_taken_for() {
        let held = Lease::new(
            Some("replica-a pid 7".to_owned()),
            Some(at("2026-05-04T10:00:35Z")),
            4,
            true,
        );
        assert_eq!(
            describe_lease(&held),
            "held by replica-a pid 7 until 2026-05-04T10:00:35.000Z (epoch 4)"
        );
        assert_eq!(
            describe_lease(&held.with_last_tick(Some(at("2026-05-04T10:00:05Z")))),
            "held by replica-a pid 7 until 2026-05-04T10:00:35.000Z (epoch 4); last scheduled \
             tick 2026-05-04T10:00:05Z"
        );
        let released = Lease::new(Some("replica-b pid 9".to_owned()), None, 5, false);
        assert_eq!(
            describe_lease(&released),
            "free: released (last held by replica-b pid 9, epoch 5)"
        );
    }
}
