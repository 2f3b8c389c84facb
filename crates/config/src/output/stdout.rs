//! The `stdout` output: nothing to set but how many records a delivery gathers.

use std::num::NonZeroUsize;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::document::KeyPath;
use crate::validate::Findings;

/// The `stdout` output: one JSON object a line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StdoutOutput {
    /// Records a delivery gathers across source batches; `None`: one delivery a source batch.
    pub batch_size: Option<NonZeroUsize>,
}

// As written: `type` and `batchSize`.
/// The `stdout` output: one JSON object a line.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "StdoutOutput")]
pub(crate) struct RawStdoutOutput {
    /// Records a delivery gathers across pages or query results (default: one delivery a page or query result).
    #[serde(default)]
    pub(crate) batch_size: Option<usize>,
}

impl RawStdoutOutput {
    pub(crate) fn validate(self, path: &KeyPath, findings: &mut Findings) -> Option<StdoutOutput> {
        let mark = findings.mark();
        let batch_size = super::batch_size(path, findings, self.batch_size);
        findings
            .clean_since(mark)
            .then_some(StdoutOutput { batch_size })
    }
}
