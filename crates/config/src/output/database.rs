//! The `database` output: its settings, the block as written, and its rules.

use std::num::{NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::database::{
    Bound, Connection, Driver, check_placeholders, connection, default_statement_timeout_ms,
    millis, statement_timeout,
};
use crate::document::KeyPath;
use crate::expr::Expr;
use crate::path::FieldPath;
use crate::sql;
use crate::state_persistence::enabled_by_default;
use crate::template::{Template, TemplatePart};
use crate::validate::Findings;

/// The `database` output (docs/outputs.md), checked.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DatabaseOutput {
    /// Where the database is.
    pub connection: Connection,
    /// Statement run once a record, not empty; `$1..$n` are bound from `parameters`. From
    /// `query`, or read from `queryFile` when the pipeline was loaded.
    pub query: String,
    /// Values bound to `$1..$n`, one each: record fields, JSON literals, `a ?? b`.
    pub parameters: Vec<Expr<FieldPath>>,
    /// One transaction a batch (default true): the batch commits whole or not at all.
    pub transaction: bool,
    /// The longest the database may take to answer one statement, in milliseconds (default
    /// 300000): beginning or committing the transaction, or writing a group of records.
    pub statement_timeout_ms: NonZeroU64,
    /// What a record the database refuses does (`onError`, default `fail`).
    pub on_error: OnRefusedRow,
    /// Records a delivery gathers across source batches, one transaction each; `None`: one
    /// delivery a source batch.
    pub batch_size: Option<NonZeroUsize>,
}

/// What an output does with a record its destination refuses (a database: a constraint it
/// violates, a value its column cannot take; an HTTP API in single mode: a 4xx answer about
/// the record): `onError`, as in the Go tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OnRefusedRow {
    /// The batch fails and nothing of it is committed (the default).
    #[default]
    Fail,
    /// The record is left out, counted; the other records of the batch are written.
    Skip,
    /// As `skip`, and each refused record is logged with the database's message.
    Log,
}

impl DatabaseOutput {
    /// The longest the database may take to answer one statement.
    pub fn statement_timeout(&self) -> Duration {
        millis(self.statement_timeout_ms)
    }
}

// As written; validation turns it into `DatabaseOutput`.
/// The `database` output.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "DatabaseOutput")]
pub(crate) struct RawDatabaseOutput {
    /// Connection URL written in the file.
    #[serde(default)]
    pub(crate) connection_string: Option<String>,
    /// Connection URL, usually `${VAR}`.
    #[serde(default)]
    pub(crate) connection_string_ref: Option<String>,
    /// `postgres` or `sqlite`; inferred from the URL when absent. Always set in a loaded
    /// pipeline.
    #[serde(default)]
    pub(crate) driver: Option<Driver>,
    /// Statement run once a record; `$1..$n` are bound from `parameters`.
    #[serde(default)]
    pub(crate) query: Option<String>,
    /// A file holding the statement, relative to the directory of the pipeline file.
    #[serde(default)]
    pub(crate) query_file: Option<String>,
    /// What a record the database refuses does: `fail` (default), `skip` or `log`.
    #[serde(default)]
    pub(crate) on_error: OnRefusedRow,
    /// Values bound to `$1..$n`: `record.path`, JSON literals, `a ?? b`.
    #[serde(default)]
    pub(crate) parameters: Vec<Expr>,
    /// One transaction a batch (default true): the batch commits whole or not at all.
    #[serde(default = "enabled_by_default")]
    pub(crate) transaction: bool,
    /// The longest the database may take to answer one statement, in milliseconds (default
    /// 300000): beginning or committing the transaction, or writing a group of records.
    #[serde(default = "default_statement_timeout_ms")]
    pub(crate) statement_timeout_ms: u64,
    /// The text of `queryFile`, read by the loader before validation (which does no I/O).
    #[serde(skip)]
    #[schemars(skip)]
    pub(crate) loaded_query_file: Option<LoadedQueryFile>,
    /// Records a delivery gathers across pages or query results (default: one delivery a page or query result), one
    /// transaction each.
    #[serde(default)]
    pub(crate) batch_size: Option<usize>,
}

/// A `queryFile` as the loader found it: where, and its text or why it could not be read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LoadedQueryFile {
    path: PathBuf,
    text: Result<String, String>,
}

impl RawDatabaseOutput {
    /// Reads `queryFile` relative to `base_dir`, the directory of the pipeline file, as the
    /// database input does.
    pub(crate) fn read_query_file(&mut self, base_dir: &Path) {
        if let Some(file) = &self.query_file {
            let path = base_dir.join(file);
            let text = std::fs::read_to_string(&path).map_err(|error| {
                let mut reason = error.to_string();
                // The Go tool read `queryFile` from the working directory.
                if Path::new(file).is_relative() && Path::new(file).is_file() {
                    reason.push_str(&format!(
                        "; `{file}` exists in the working directory, where the Go tool looked \
                         for it: write its path relative to the pipeline file"
                    ));
                }
                reason
            });
            self.loaded_query_file = Some(LoadedQueryFile { path, text });
        }
    }

    pub(crate) fn validate(
        self,
        path: &KeyPath,
        findings: &mut Findings,
    ) -> Option<DatabaseOutput> {
        let mark = findings.mark();
        let connection = connection(
            findings,
            path,
            self.connection_string.as_deref(),
            self.connection_string_ref.as_deref(),
            self.driver,
        );
        let statement_timeout_ms = statement_timeout(findings, path, self.statement_timeout_ms);
        let batch_size = super::batch_size(path, findings, self.batch_size);
        let listed_count = self.parameters.len();
        let listed = listed_count > 0;
        let mut parameters: Vec<Expr<FieldPath>> = self
            .parameters
            .into_iter()
            .enumerate()
            .filter_map(|(i, parameter)| {
                let shown = parameter.to_string();
                let narrowed = parameter.into_record();
                if narrowed.is_none() {
                    findings.problem(
                        path.key("parameters").index(i),
                        format!(
                            "`{shown}`: an output binds values of each record; use \
                             record.<path> or a literal, not state.*"
                        ),
                    );
                }
                narrowed
            })
            .collect();
        let (query, query_path) = match (self.query, &self.query_file) {
            (None, None) => {
                findings.problem(
                    path.key("query"),
                    "a database output needs `query` (the SQL run for each record) or \
                     `queryFile` (a file holding it)",
                );
                (None, path.key("query"))
            }
            (Some(_), Some(_)) => {
                findings.problem(
                    path.key("queryFile"),
                    "write only one of `query` and `queryFile`",
                );
                (None, path.key("queryFile"))
            }
            (Some(query), None) => (Some(query), path.key("query")),
            (None, Some(_)) => {
                let query_path = path.key("queryFile");
                let query = match self.loaded_query_file {
                    Some(LoadedQueryFile { text: Ok(text), .. }) => Some(text),
                    Some(LoadedQueryFile {
                        path: full,
                        text: Err(error),
                    }) => {
                        findings.problem(
                            query_path.clone(),
                            format!(
                                "cannot read the query file {} ({error}); a relative queryFile \
                                 is read from the directory of the pipeline file",
                                full.display()
                            ),
                        );
                        None
                    }
                    None => {
                        findings.problem(
                            query_path.clone(),
                            "the query file was not read; load the pipeline from its file",
                        );
                        None
                    }
                };
                (query, query_path)
            }
        };
        // The Go tool's form: `{{record.path}}` in the SQL, each bound as a parameter.
        let query = match query {
            Some(text) if text.contains("{{") => match record_placeholders(&text) {
                Err(reason) => {
                    findings.problem(query_path.clone(), reason);
                    None
                }
                Ok(_) if listed => {
                    findings.problem(
                        path.key("parameters"),
                        "the query binds its values with {{record.<path>}} placeholders, \
                             so `parameters` has nothing left to bind; remove `parameters`, or \
                             write $1..$n in the query",
                    );
                    None
                }
                Ok((rewritten, fields)) => {
                    parameters = fields.into_iter().map(Expr::Ref).collect();
                    Some(rewritten)
                }
            },
            other => other,
        };
        // The values as written, refused ones included: a `state.*` parameter is reported on
        // its own, not once more as a missing value.
        let count = if listed {
            listed_count
        } else {
            parameters.len()
        };
        match &query {
            Some(query) if query.trim().is_empty() => findings.problem(
                query_path,
                "the query is empty; write the SQL run for each record",
            ),
            Some(query) => {
                let shape = sql::scan(query);
                check_placeholders(findings, path, &query_path, &shape, &Bound::Listed(count));
            }
            None => {}
        }
        if !findings.clean_since(mark) {
            return None;
        }
        Some(DatabaseOutput {
            connection: connection?,
            query: query?,
            parameters,
            transaction: self.transaction,
            statement_timeout_ms: statement_timeout_ms?,
            on_error: self.on_error,
            batch_size,
        })
    }
}

/// A query written with `{{record.path}}` placeholders, as the Go tool takes it: each becomes
/// the next `$n` and binds that field of the record (null when it is missing), never text
/// spliced into the SQL.
fn record_placeholders(text: &str) -> Result<(String, Vec<FieldPath>), String> {
    let template = Template::parse(text).map_err(|error| error.to_string())?;
    let template = template.into_record().ok_or_else(|| {
        "an output query binds fields of each record: use {{record.<path>}}, not \
         {{state.*}}"
            .to_owned()
    })?;
    let mut query = String::with_capacity(text.len());
    let mut fields = Vec::new();
    for part in template.parts() {
        match part {
            TemplatePart::Text(text) => query.push_str(text),
            TemplatePart::Ref(field) => {
                fields.push(field.clone());
                query.push_str(&format!("${}", fields.len()));
            }
        }
    }
    Ok((query, fields))
}
