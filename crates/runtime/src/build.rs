//! From configuration to runtime objects: the sources of `cannectors-input` and the sinks of
//! `cannectors-output`, and the sink of a dry run.

use std::io::Write;

use cannectors_config::{InputConfig, OutputConfig};
use cannectors_connector::{BoxError, BoxFuture, Record, RunWindow, Sink, Source};
use cannectors_state::State;
use tokio::sync::watch;

/// Why a source or a sink could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The input could not be built.
    #[error("input: {0}")]
    Input(BoxError),
    /// The output could not be built.
    #[error("output: {0}")]
    Output(BoxError),
}

/// The source of `input`; with `stop`, its waits before a retry end when a shutdown is
/// requested.
pub(crate) async fn source(
    input: &InputConfig,
    state: Option<&State>,
    window: RunWindow,
    stop: Option<&watch::Receiver<bool>>,
) -> Result<Box<dyn Source>, BuildError> {
    cannectors_input::build_within(input, state, window, stop.cloned())
        .await
        .map_err(|e| BuildError::Input(Box::new(e)))
}

/// The sink of `output`; with `stop`, its waits before a retry end when a shutdown is requested.
pub(crate) fn sink(
    output: &OutputConfig,
    stop: Option<&watch::Receiver<bool>>,
) -> Result<Box<dyn Sink>, BuildError> {
    match stop {
        Some(stop) => cannectors_output::build_stopping_on(output, stop.clone()),
        None => cannectors_output::build(output),
    }
    .map_err(|e| BuildError::Output(Box::new(e)))
}

/// The sink of `--dry-run`: shows on standard output what would be sent, sends nothing.
pub(crate) struct DryRun {
    target: String,
}

impl DryRun {
    pub(crate) fn new(output: &OutputConfig) -> DryRun {
        let target = match output {
            OutputConfig::Stdout(_) => "stdout".to_owned(),
            OutputConfig::File(file) => format!("file {}", file.path.display()),
            OutputConfig::HttpRequest(http) => {
                let method = format!("{:?}", http.method).to_uppercase();
                format!(
                    "{method} {}",
                    cannectors_connector::redact_url(&http.endpoint())
                )
            }
            OutputConfig::Database(_) => "database".to_owned(),
        };
        DryRun { target }
    }
}

impl Sink for DryRun {
    fn write<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            tracing::info!(
                "dry run: would send {} records to {}",
                records.len(),
                self.target
            );
            let mut buffer = Vec::with_capacity(records.len() * 128);
            for record in records {
                buffer.extend_from_slice(record.json().as_bytes());
                buffer.push(b'\n');
            }
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&buffer)?;
            stdout.flush()?;
            Ok(())
        })
    }
}
