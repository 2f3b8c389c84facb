//! The `database` output: its settings, the block as written, and its rules.

use std::num::{NonZeroU64, NonZeroUsize};
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
use crate::validate::Findings;

/// The `database` output (docs/outputs.md), checked.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DatabaseOutput {
    /// Where the database is.
    pub connection: Connection,
    /// Statement run once a record, not empty; `$1..$n` are bound from `parameters`.
    pub query: String,
    /// Values bound to `$1..$n`, one each: record fields, JSON literals, `a ?? b`.
    pub parameters: Vec<Expr<FieldPath>>,
    /// One transaction a batch (default true): the batch commits whole or not at all.
    pub transaction: bool,
    /// The longest the database may take to answer one statement, in milliseconds (default
    /// 300000): beginning or committing the transaction, or writing a group of records.
    pub statement_timeout_ms: NonZeroU64,
    /// Records a delivery gathers across source batches, one transaction each; `None`: one
    /// delivery a source batch.
    pub batch_size: Option<NonZeroUsize>,
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
    pub(crate) query: String,
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
    /// Records a delivery gathers across pages or query results (default: one delivery a page or query result), one
    /// transaction each.
    #[serde(default)]
    pub(crate) batch_size: Option<usize>,
}

impl RawDatabaseOutput {
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
        let count = self.parameters.len();
        let parameters: Vec<Expr<FieldPath>> = self
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
        if self.query.trim().is_empty() {
            findings.problem(
                path.key("query"),
                "the query is empty; write the SQL run for each record",
            );
        } else {
            let shape = sql::scan(&self.query);
            check_placeholders(
                findings,
                path,
                &path.key("query"),
                &shape,
                &Bound::Listed(count),
            );
        }
        if !findings.clean_since(mark) {
            return None;
        }
        Some(DatabaseOutput {
            connection: connection?,
            query: self.query,
            parameters,
            transaction: self.transaction,
            statement_timeout_ms: statement_timeout_ms?,
            batch_size,
        })
    }
}
