//! The `file` output: its settings, the block as written, and its rule.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::document::KeyPath;
use crate::validate::Findings;

/// The `file` output: JSON Lines appended to `path`, flushed and fsynced before every commit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileOutput {
    /// File to append to, not empty; a relative path resolves against the working directory.
    pub path: PathBuf,
    /// Records a delivery gathers across source batches; `None`: one delivery a source batch.
    pub batch_size: Option<NonZeroUsize>,
}

// As written; validation turns it into `FileOutput`.
/// The `file` output: JSON Lines appended to `path`, flushed and fsynced before every commit.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "FileOutput")]
pub(crate) struct RawFileOutput {
    /// File to append to; a relative path resolves against the working directory.
    pub(crate) path: String,
    /// Records a delivery gathers across pages or query results (default: one delivery a page or query result): one write,
    /// one fsync and one state commit each.
    #[serde(default)]
    pub(crate) batch_size: Option<usize>,
}

impl RawFileOutput {
    pub(crate) fn validate(self, path: &KeyPath, findings: &mut Findings) -> Option<FileOutput> {
        let mark = findings.mark();
        let batch_size = super::batch_size(path, findings, self.batch_size);
        if self.path.trim().is_empty() {
            findings.problem(
                path.key("path"),
                "the file path is empty; write where to append the records, e.g. \
                 ./out/events.jsonl",
            );
        }
        if !findings.clean_since(mark) {
            return None;
        }
        Some(FileOutput {
            path: PathBuf::from(self.path),
            batch_size,
        })
    }
}
