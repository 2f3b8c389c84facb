//! The pipeline model: [`Pipeline`], what loading a pipeline file returns, and the file as
//! written (`RawPipeline`).
//!
//! Every block of the file has two types, side by side in its module (`input/http.rs`,
//! `input/database.rs`, `output/*.rs`, `state_persistence.rs`, ...): the block as written
//! (`Raw*`: serde reads it, rejects unknown keys, applies defaults, and the JSON Schema is
//! generated from it), and its settings (public: parsed values, built only by validation, so
//! that holding one means it passed every rule). docs/configuration.md describes the file.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::filter::{FilterConfig, OnError, RawFilter};
use crate::http::RawRetryConfig;
use crate::input::{InputConfig, RawInput};
use crate::output::{OutputConfig, RawOutput};

/// A whole pipeline: where records come from, how they are reshaped, where they go.
///
/// Loading a pipeline file ([`crate::load`], [`crate::parse_str`]) is the only way to get one,
/// and what it holds passed every rule: sources and sinks take these settings as they are.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Pipeline {
    /// Pipeline name, `[A-Za-z0-9][A-Za-z0-9._-]*`. Names the state file and the lock.
    pub name: String,
    /// Free text version of the pipeline file; `version: 2` is read as the text `2`.
    pub version: Option<String>,
    /// Free text description.
    pub description: Option<String>,
    /// Free labels.
    pub tags: Vec<String>,
    /// Where records come from.
    pub input: InputConfig,
    /// Ordered reshaping steps applied to every record, without those with `enabled: false`.
    pub filters: Vec<FilterConfig>,
    /// Where records go.
    pub output: OutputConfig,
}

// The file as written; validation turns it into `Pipeline`.
/// A whole pipeline file: where records come from, how they are reshaped, where they go.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Pipeline")]
pub(crate) struct RawPipeline {
    /// Pipeline name, `[A-Za-z0-9][A-Za-z0-9._-]*`. Names the state file and the lock.
    pub(crate) name: String,
    /// Free text version of the pipeline file; `version: 2` is read as the text `2`.
    #[serde(default, deserialize_with = "crate::scalar::version_text")]
    #[schemars(with = "Option<VersionSchema>")]
    pub(crate) version: Option<String>,
    /// Free text description.
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// Free labels.
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    /// Where records come from.
    pub(crate) input: RawInput,
    /// Ordered reshaping steps applied to every batch.
    #[serde(default)]
    pub(crate) filters: Vec<RawFilter>,
    /// Where records go.
    pub(crate) output: RawOutput,
    /// Settings shared by the modules, as in the Go tool's files; a module's own key wins.
    #[serde(default)]
    pub(crate) defaults: Option<RawDefaults>,
}

// Copied into the modules before the file is read (crate::defaults), so that every rule of a
// module applies to what it inherits; read here for its own checks and the JSON Schema.
/// Settings shared by the modules (the Go tool's `defaults`); a module's own key wins.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct RawDefaults {
    /// Request timeout in milliseconds of the `httpPolling` input and `httpRequest` output
    /// that set none.
    #[serde(default)]
    pub(crate) timeout_ms: Option<u64>,
    /// `onError` of the top-level filters, the `database` output and the `httpRequest` output
    /// in single mode that set none.
    #[serde(default)]
    pub(crate) on_error: Option<OnError>,
    /// `retry` of the `httpPolling` input and `httpRequest` output that have no `retry` block
    /// (taken whole: a module's own block, even of one key, replaces it).
    #[serde(default)]
    pub(crate) retry: Option<RawRetryConfig>,
}

/// Schema stand-in for `version`: text, or a whole number.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum VersionSchema {
    Text(String),
    Number(u64),
}

/// Schema stand-in for a header or query value: a string, number or boolean.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum ScalarSchema {
    Text(String),
    Number(f64),
    Flag(bool),
}
