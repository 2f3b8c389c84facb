//! The destination of a pipeline (`output`), chosen by `type`.

pub(crate) mod database;
pub(crate) mod file;
pub(crate) mod http_request;
pub(crate) mod stdout;

use std::num::NonZeroUsize;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::document::KeyPath;
use crate::validate::Findings;

use database::{DatabaseOutput, RawDatabaseOutput};
use file::{FileOutput, RawFileOutput};
use http_request::{HttpRequestOutput, RawHttpRequestOutput};
use stdout::{RawStdoutOutput, StdoutOutput};

/// The destination of a pipeline, chosen by `type`.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per pipeline, read once; boxing would only complicate matching"
)]
pub enum OutputConfig {
    /// JSON Lines to standard output.
    Stdout(StdoutOutput),
    /// JSON Lines appended to a file.
    File(FileOutput),
    /// HTTP requests to an API.
    HttpRequest(HttpRequestOutput),
    /// Statements against a SQL database.
    Database(DatabaseOutput),
}

// As written; validation turns it into `OutputConfig`.
/// The destination of a pipeline, chosen by `type`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
#[schemars(rename = "OutputConfig")]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per pipeline, read once; boxing would only complicate matching"
)]
pub(crate) enum RawOutput {
    /// JSON Lines to standard output.
    Stdout(RawStdoutOutput),
    /// JSON Lines appended to a file.
    File(RawFileOutput),
    /// HTTP requests to an API.
    HttpRequest(RawHttpRequestOutput),
    /// Statements against a SQL database.
    Database(RawDatabaseOutput),
}

impl RawOutput {
    pub(crate) fn validate(self, path: &KeyPath, findings: &mut Findings) -> Option<OutputConfig> {
        match self {
            RawOutput::Stdout(output) => output.validate(path, findings).map(OutputConfig::Stdout),
            RawOutput::File(output) => output.validate(path, findings).map(OutputConfig::File),
            RawOutput::HttpRequest(output) => output
                .validate(path, findings)
                .map(OutputConfig::HttpRequest),
            RawOutput::Database(output) => {
                output.validate(path, findings).map(OutputConfig::Database)
            }
        }
    }
}

impl OutputConfig {
    /// Records a delivery gathers across source batches (`batchSize`), or `None` when it is
    /// not set: one delivery a source batch (a page or a query result).
    pub fn batch_size(&self) -> Option<NonZeroUsize> {
        match self {
            OutputConfig::Stdout(output) => output.batch_size,
            OutputConfig::File(output) => output.batch_size,
            OutputConfig::Database(output) => output.batch_size,
            OutputConfig::HttpRequest(output) => output.batch_size,
        }
    }
}

/// `batchSize` as written, checked: more than 0.
pub(crate) fn batch_size(
    path: &KeyPath,
    findings: &mut Findings,
    written: Option<usize>,
) -> Option<NonZeroUsize> {
    let written = written?;
    let size = NonZeroUsize::new(written);
    if size.is_none() {
        findings.problem(path.key("batchSize"), "batchSize must be more than 0");
    }
    size
}
