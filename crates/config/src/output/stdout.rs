//! The `stdout` output: nothing to set.

use schemars::JsonSchema;
use serde::Deserialize;

/// The `stdout` output: one JSON object a line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StdoutOutput {}

// As written: no key but `type`.
/// The `stdout` output: one JSON object a line.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "StdoutOutput")]
pub(crate) struct RawStdoutOutput {}
