//! The source of a pipeline (`input`), chosen by `type`, and what the input types share.

pub(crate) mod database;
pub(crate) mod http;
pub(crate) mod pagination;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::document::KeyPath;
use crate::schedule::CronSchedule;
use crate::state_persistence::StatePersistence;
use crate::validate::Findings;

use database::{DatabaseInput, QueryFile, RawDatabaseInput};
use http::{HttpPollingInput, RawHttpPollingInput};

/// The source of a pipeline, chosen by `type`.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per pipeline, read once; boxing would only complicate matching"
)]
pub enum InputConfig {
    /// Polls an HTTP API (docs/http-input.md).
    HttpPolling(HttpPollingInput),
    /// Reads rows from a SQL database (docs/databases.md).
    Database(DatabaseInput),
}

impl InputConfig {
    /// When the input runs, in its time zone; `None`: it runs once.
    pub fn schedule(&self) -> Option<&CronSchedule> {
        match self {
            InputConfig::HttpPolling(input) => input.schedule.as_ref(),
            InputConfig::Database(input) => input.schedule.as_ref(),
        }
    }

    /// The cursor settings of the input, if any.
    pub fn state_persistence(&self) -> Option<&StatePersistence> {
        match self {
            InputConfig::HttpPolling(input) => input.state_persistence.as_ref(),
            InputConfig::Database(input) => input.state_persistence.as_ref(),
        }
    }
}

// As written; validation turns it into `InputConfig`.
/// The source of a pipeline, chosen by `type`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
#[schemars(rename = "InputConfig")]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per pipeline, read once; boxing would only complicate matching"
)]
pub(crate) enum RawInput {
    /// Polls an HTTP API (docs/http-input.md).
    HttpPolling(RawHttpPollingInput),
    /// Reads rows from a SQL database (docs/databases.md).
    Database(RawDatabaseInput),
}

impl RawInput {
    /// The file a database input's `queryFile` names, when that is where its query is.
    pub(crate) fn query_file(&self) -> Option<&str> {
        match self {
            RawInput::Database(input) if input.query.is_none() => input.query_file.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn validate(
        self,
        path: &KeyPath,
        query_file: Option<QueryFile>,
        findings: &mut Findings,
    ) -> Option<InputConfig> {
        match self {
            RawInput::HttpPolling(input) => {
                input.validate(path, findings).map(InputConfig::HttpPolling)
            }
            RawInput::Database(input) => input
                .validate(path, query_file, findings)
                .map(InputConfig::Database),
        }
    }
}
