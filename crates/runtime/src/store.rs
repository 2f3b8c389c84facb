//! From a pipeline's configuration to its state store: the one place that chooses a store and
//! hands it the settings of the pipeline file.

use std::path::Path;

use cannectors_config::{Pipeline, StoreKind};
use cannectors_state::{FileStore, StateError, StateStore};
use cannectors_state_postgres::PgStore;

/// The state store of `pipeline`: with `statePersistence.store: postgres`, its row in the
/// PostgreSQL store, with the lease settings of the file (nothing is connected until the store
/// is used); otherwise the file store in the input's `statePersistence.storagePath` (default
/// `./.cannectors-state`), a relative path resolved against the working directory, once, here. Everything else (the executor, the scheduler, the `state` commands) uses the
/// store through [`StateStore`], so that another kind of store is added here alone.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let yaml = format!(
///     "name: orders\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:9/x', \
///      statePersistence: {{storagePath: '{}'}}}}\noutput: {{type: stdout}}\n",
///     dir.path().display()
/// );
/// let pipeline = cannectors_config::parse_str(&yaml, "orders.yaml", &|_| None)?.pipeline;
/// let store = cannectors_runtime::store_for(&pipeline)?;
/// assert_eq!(store.location(), dir.path().join("orders.json").display().to_string());
/// assert_eq!(store.load().await?, None);
/// # Ok(())
/// # }
/// ```
pub fn store_for(pipeline: &Pipeline) -> Result<Box<dyn StateStore>, StateError> {
    let settings = pipeline.input.state_persistence();
    if let Some(StoreKind::Postgres(postgres)) = settings.map(|settings| &settings.store) {
        let store = PgStore::new(&pipeline.name, &postgres.connection.url)?
            .with_lease_ttl(postgres.lease_ttl)
            .with_renewal(postgres.lease_renew);
        return Ok(Box::new(store));
    }
    let storage_path = settings
        .and_then(|settings| settings.storage_path.as_deref())
        .map(Path::new);
    Ok(Box::new(FileStore::new(&pipeline.name, storage_path)?))
}

/// The two ends of copying a pipeline's state from files into PostgreSQL: the file store in
/// `dir` (or, when not given, the pipeline's `storagePath` or the default directory), and the
/// pipeline's row in the PostgreSQL store of `url`, with the pipeline's lease settings when it
/// already names that store.
pub fn migration_stores(
    pipeline: &Pipeline,
    dir: Option<&Path>,
    url: &str,
) -> Result<Migration, StateError> {
    let settings = pipeline.input.state_persistence();
    let dir = dir.or_else(|| {
        settings
            .and_then(|settings| settings.storage_path.as_deref())
            .map(Path::new)
    });
    let from = FileStore::new(&pipeline.name, dir)?;
    let mut to = PgStore::new(&pipeline.name, url)?;
    if let Some(StoreKind::Postgres(postgres)) = settings.map(|settings| &settings.store) {
        to = to
            .with_lease_ttl(postgres.lease_ttl)
            .with_renewal(postgres.lease_renew);
    }
    Ok(Migration {
        from: Box::new(from),
        into: Box::new(to),
    })
}

/// The two ends of copying a pipeline's state into the PostgreSQL store.
#[derive(Debug)]
#[non_exhaustive]
pub struct Migration {
    /// The file store the state is copied from.
    pub from: Box<dyn StateStore>,
    /// The PostgreSQL store it is copied into.
    pub into: Box<dyn StateStore>,
}
