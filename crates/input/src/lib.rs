//! The sources of cannectors: where a pipeline's records come from.
//!
//! Each `input` block of a pipeline file has a runtime object in a crate of its own that
//! implements [`cannectors_connector::Source`]: `cannectors-input-http` polls an HTTP API,
//! `cannectors-input-db` runs a query against PostgreSQL or SQLite. [`build`] turns the loaded
//! block and the loaded state into the source the executor drives, as
//! `cannectors_output::build` does for sinks. The settings were checked when the pipeline was
//! loaded; what can fail here is what only a run can find (the database does not answer, an
//! endpoint template filled with the committed cursors is no URL). A source only reads the
//! state; this crate never writes it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let yaml = r#"
//! name: people
//! input:
//!   type: database
//!   connectionString: "sqlite::memory:"
//!   query: SELECT 1 AS id, 'first' AS name
//! output: {type: stdout}
//! "#;
//! let pipeline = cannectors_config::parse_str(yaml, "people.yaml", &|_| None)?.pipeline;
//! let mut source = cannectors_input::build(&pipeline.input, None).await?;
//! let batch = source.next_batch().await?.expect("one batch");
//! assert_eq!(batch.records[0].json(), r#"{"id":1,"name":"first"}"#);
//! assert!(source.next_batch().await?.is_none());
//! # Ok(())
//! # }
//! ```

use cannectors_config::InputConfig;
use cannectors_connector::{RunWindow, Source};
use cannectors_input_db::{DatabaseError, DatabaseSource};
use cannectors_input_http::{HttpPollingSource, HttpSourceError};
use cannectors_state::State;
use tokio::sync::watch;

/// Why a source could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The httpPolling source could not be set up.
    #[error(transparent)]
    Http(#[from] HttpSourceError),
    /// The database could not be reached or refused the query.
    #[error(transparent)]
    Database(#[from] DatabaseError),
}

/// Builds the source of a loaded `input` block; `state` is the loaded state (`None` on the
/// first run), which the source only reads. A database source connects and prepares its query
/// here; an HTTP source sends nothing until the first batch is asked for.
pub async fn build(
    config: &InputConfig,
    state: Option<&State>,
) -> Result<Box<dyn Source>, InputError> {
    build_with(config, state, None).await
}

/// Builds the source of an `input` block for a run that `stop` may ask to stop: a source that
/// waits before retrying (`httpPolling`) gives the wait up when it turns `true`. A database
/// source finishes the query it runs, which is bounded by its statement timeout.
pub async fn build_stopping_on(
    config: &InputConfig,
    state: Option<&State>,
    stop: watch::Receiver<bool>,
) -> Result<Box<dyn Source>, InputError> {
    build_with(config, state, Some(stop)).await
}

/// Builds the source of an `input` block for a run bounded by `window` (what
/// `{{window.end}}`, `timestamp.untilParam` and the SQL parameter `window.end` send), which
/// `stop`, when given, may ask to stop as for [`build_stopping_on`].
pub async fn build_within(
    config: &InputConfig,
    state: Option<&State>,
    window: RunWindow,
    stop: Option<watch::Receiver<bool>>,
) -> Result<Box<dyn Source>, InputError> {
    match config {
        InputConfig::HttpPolling(http) => {
            let source = HttpPollingSource::within(http, state, window)?;
            Ok(Box::new(match stop {
                Some(stop) => source.stop_on(stop),
                None => source,
            }))
        }
        InputConfig::Database(database) => Ok(Box::new(
            DatabaseSource::connect_within(database, state, window).await?,
        )),
    }
}

async fn build_with(
    config: &InputConfig,
    state: Option<&State>,
    stop: Option<watch::Receiver<bool>>,
) -> Result<Box<dyn Source>, InputError> {
    build_within(config, state, RunWindow::until_now(), stop).await
}
