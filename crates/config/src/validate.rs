//! Checking a pipeline file as written into the settings a run is built from.
//!
//! Validation is the only way from the file as written (`Raw*` types, what serde reads) to the
//! loaded settings ([`Pipeline`] and the types inside it), and it happens once: what it returns
//! holds parsed values (record paths, templates, URLs, timestamp formats, non-zero numbers, one
//! pagination type per kind), so sources and sinks never check a setting again. Each
//! component's rules sit beside its model (`input/http.rs`, `input/database.rs`,
//! `output/*.rs`, `state_persistence.rs`, ...); this module holds the pipeline's own rules (its
//! name, its filters) and what they all share.
//!
//! Every rule adds a problem and goes on, so a user fixes a file in one round instead of one
//! error at a time. Warnings are for settings that work but are likely to lose or repeat
//! records. Validation does no I/O: the loader reads a `queryFile` before it runs.

use crate::document::KeyPath;
use crate::filter;
use crate::input::database::QueryFile;
use crate::model::{Pipeline, RawPipeline};
use crate::path::FieldPath;
use cannectors_state::MAX_NAME_LEN;

/// Problems and warnings, each with the key path it is about.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub(crate) problems: Vec<(KeyPath, String)>,
    pub(crate) warnings: Vec<(KeyPath, String)>,
}

/// How many problems were found when a component's check began; see [`Findings::mark`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark(usize);

impl Findings {
    pub(crate) fn problem(&mut self, path: KeyPath, message: impl Into<String>) {
        self.problems.push((path, message.into()));
    }

    pub(crate) fn warning(&mut self, path: KeyPath, message: impl Into<String>) {
        self.warnings.push((path, message.into()));
    }

    /// Where a component's check begins: a component yields its settings only when
    /// [`Findings::clean_since`] that mark.
    pub(crate) fn mark(&self) -> Mark {
        Mark(self.problems.len())
    }

    /// Whether no problem was found since `mark`.
    pub(crate) fn clean_since(&self, mark: Mark) -> bool {
        self.problems.len() == mark.0
    }

    /// `text` as a record path, or a problem at `path`.
    pub(crate) fn field_path(&mut self, path: KeyPath, text: &str) -> Option<FieldPath> {
        match FieldPath::parse(text) {
            Ok(field) => Some(field),
            Err(error) => {
                self.problem(path, error.to_string());
                None
            }
        }
    }
}

/// Checks `pipeline` into its settings; `query_file` is the `queryFile` of a database input,
/// read by the loader. The settings come back only when no problem was found.
pub(crate) fn validate(
    pipeline: RawPipeline,
    query_file: Option<QueryFile>,
) -> (Option<Pipeline>, Findings) {
    let mut findings = Findings::default();
    let root = KeyPath::root();
    check_name(&mut findings, &root.key("name"), &pipeline.name);
    let input = pipeline
        .input
        .validate(&root.key("input"), query_file, &mut findings);
    let filters = filter::validate_list(pipeline.filters, &root.key("filters"), &mut findings);
    let output = pipeline.output.validate(&root.key("output"), &mut findings);
    let settings = match (input, filters, output) {
        (Some(input), Some(filters), Some(output)) if findings.problems.is_empty() => {
            Some(Pipeline {
                name: pipeline.name,
                version: pipeline.version,
                description: pipeline.description,
                tags: pipeline.tags,
                input,
                filters,
                output,
            })
        }
        _ => None,
    };
    (settings, findings)
}

/// A duration in milliseconds at `path.key`, where zero would mean no bound or no chance at
/// all: the value, or a problem that names the default to fall back on.
pub(crate) fn positive_ms(
    findings: &mut Findings,
    path: &KeyPath,
    key: &str,
    value: u64,
    default: &str,
) -> Option<std::num::NonZeroU64> {
    let positive = std::num::NonZeroU64::new(value);
    if positive.is_none() {
        findings.problem(
            path.key(key),
            format!("{key} must be more than 0; remove it for the default {default}"),
        );
    }
    positive
}

fn check_name(findings: &mut Findings, path: &KeyPath, name: &str) {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        findings.problem(
            path.clone(),
            format!(
                "`{name}` is not a valid pipeline name: it names the state file, so use letters, \
                 digits, `.`, `_` and `-`, starting with a letter or digit (e.g. events-sync)"
            ),
        );
    } else if name.len() > MAX_NAME_LEN {
        // The limit is the state crate's; a longer name would validate, deliver its first batch
        // and then fail to commit it, sending the same batch again on every run.
        findings.problem(
            path.clone(),
            format!(
                "the pipeline name is {} characters long, but at most {MAX_NAME_LEN} are \
                 allowed: it names the state files (the longest is `<name>.json.tmp`) and a file \
                 name may have at most 255 bytes; shorten the name",
                name.len()
            ),
        );
    }
}
