//! The `file` output: its settings, the block as written, and its rule.

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
}

// As written; validation turns it into `FileOutput`.
/// The `file` output: JSON Lines appended to `path`, flushed and fsynced before every commit.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "FileOutput")]
pub(crate) struct RawFileOutput {
    /// File to append to; a relative path resolves against the working directory.
    pub(crate) path: String,
}

impl RawFileOutput {
    pub(crate) fn validate(self, path: &KeyPath, findings: &mut Findings) -> Option<FileOutput> {
        if self.path.trim().is_empty() {
            findings.problem(
                path.key("path"),
                "the file path is empty; write where to append the records, e.g. \
                 ./out/events.jsonl",
            );
            return None;
        }
        Some(FileOutput {
            path: PathBuf::from(self.path),
        })
    }
}
