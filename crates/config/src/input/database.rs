//! The `database` input: its settings, the block as written, and its rules.

use std::num::NonZeroU64;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::database::{
    Bound, Connection, Driver, check_placeholders, connection, default_statement_timeout_ms,
    millis, statement_timeout,
};
use crate::document::KeyPath;
use crate::expr::{Expr, StateCursor};
use crate::schedule::{self, CronSchedule};
use crate::sql;
use crate::state_persistence::{RawStatePersistence, StatePersistence};
use crate::validate::Findings;

/// The `database` input (docs/databases.md), checked.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DatabaseInput {
    /// When the input runs (`schedule`, read in `timezone`). Absent: run once.
    pub schedule: Option<CronSchedule>,
    /// Where the database is.
    pub connection: Connection,
    /// The SQL, from `query` or read from `queryFile` when the pipeline was loaded; not empty.
    pub query: String,
    /// What `$1..$n` are bound to, one value each.
    pub parameters: InputParameters,
    /// Which cursors to keep between runs.
    pub state_persistence: Option<StatePersistence>,
    /// The longest the database may take to answer one statement, in milliseconds (default
    /// 300000): the query with all its rows.
    pub statement_timeout_ms: NonZeroU64,
}

impl DatabaseInput {
    /// The longest the database may take to answer one statement.
    pub fn statement_timeout(&self) -> Duration {
        millis(self.statement_timeout_ms)
    }
}

/// What `$1..$n` of a database input's query are bound to: committed cursors and literals
/// (there is no record before the query runs).
#[derive(Debug, Clone, PartialEq)]
pub enum InputParameters {
    /// The `parameters` list.
    Listed(Vec<Expr<StateCursor>>),
    /// No `parameters`: the enabled cursors, in the order timestamp, id, offset.
    Cursors(Vec<Expr<StateCursor>>),
}

impl InputParameters {
    /// The expressions, in placeholder order.
    pub fn exprs(&self) -> &[Expr<StateCursor>] {
        match self {
            InputParameters::Listed(exprs) | InputParameters::Cursors(exprs) => exprs,
        }
    }
}

/// The text of a `queryFile`, read by the loader (validation does no I/O).
#[derive(Debug)]
pub(crate) struct QueryFile {
    /// The file, resolved against the directory of the pipeline file.
    pub(crate) path: PathBuf,
    /// Its text, or why it could not be read.
    pub(crate) text: std::io::Result<String>,
}

// As written; validation turns it into `DatabaseInput`.
/// The `database` input (docs/databases.md).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "DatabaseInput")]
pub(crate) struct RawDatabaseInput {
    /// Cron expression, 5 fields (minute first) or 6 (seconds first). Absent: run once.
    #[serde(default)]
    pub(crate) schedule: Option<String>,
    /// IANA time zone of the schedule (default UTC).
    #[serde(default)]
    pub(crate) timezone: Option<String>,
    /// Connection URL written in the file.
    #[serde(default)]
    pub(crate) connection_string: Option<String>,
    /// Connection URL, usually `${VAR}` so that it stays out of the file.
    #[serde(default)]
    pub(crate) connection_string_ref: Option<String>,
    /// `postgres` or `sqlite`; inferred from the URL when absent. Always set in a loaded
    /// pipeline.
    #[serde(default)]
    pub(crate) driver: Option<Driver>,
    /// The query; `$1..$n` are bound from `parameters`. Always set in a loaded pipeline: the
    /// loader reads `queryFile` into it.
    #[serde(default)]
    pub(crate) query: Option<String>,
    /// A file holding the query, relative to the directory of the pipeline file.
    #[serde(default)]
    pub(crate) query_file: Option<String>,
    /// Values bound to `$1..$n`: `state.timestamp`, `state.id`, `state.offset`, JSON literals,
    /// `a ?? b`. Default: the enabled cursors in the order timestamp, id, offset.
    #[serde(default)]
    pub(crate) parameters: Option<Vec<Expr>>,
    /// Which cursors to keep between runs.
    #[serde(default)]
    pub(crate) state_persistence: Option<RawStatePersistence>,
    /// The longest the database may take to answer one statement, in milliseconds (default
    /// 300000): the query with all its rows. A statement that takes longer fails the run.
    #[serde(default = "default_statement_timeout_ms")]
    pub(crate) statement_timeout_ms: u64,
}

impl RawDatabaseInput {
    /// `query_file` is the text of `queryFile`, when that is where the query is.
    pub(crate) fn validate(
        self,
        path: &KeyPath,
        query_file: Option<QueryFile>,
        findings: &mut Findings,
    ) -> Option<DatabaseInput> {
        let mark = findings.mark();
        let schedule = schedule::check(
            findings,
            path,
            self.schedule.as_deref(),
            self.timezone.as_deref(),
        );
        let connection = connection(
            findings,
            path,
            self.connection_string.as_deref(),
            self.connection_string_ref.as_deref(),
            self.driver,
        );
        let query = match (self.query, &self.query_file) {
            (None, None) => {
                findings.problem(
                    path.key("query"),
                    "a database input needs `query` (the SQL) or `queryFile` (a file holding it)",
                );
                None
            }
            (Some(_), Some(_)) => {
                findings.problem(
                    path.key("queryFile"),
                    "write only one of `query` and `queryFile`",
                );
                None
            }
            (None, Some(_)) => match query_file {
                Some(QueryFile { text: Ok(text), .. }) => Some(text),
                Some(QueryFile {
                    path: full,
                    text: Err(error),
                }) => {
                    findings.problem(
                        path.key("queryFile"),
                        format!(
                            "cannot read the query file {} ({error}); a relative queryFile is \
                             read from the directory of the pipeline file",
                            full.display()
                        ),
                    );
                    None
                }
                // The loader reads every `queryFile` that holds the query before validation.
                None => {
                    findings.problem(
                        path.key("queryFile"),
                        "the query file was not read; load the pipeline from its file",
                    );
                    None
                }
            },
            (Some(query), None) => Some(query),
        };
        let statement_timeout_ms = statement_timeout(findings, path, self.statement_timeout_ms);
        let state_path = path.key("statePersistence");
        let raw_state = self.state_persistence.clone().unwrap_or_default();
        refuse_http_cursor_keys(findings, &state_path, &raw_state);
        // A query binds a record column; the run's start time is an httpPolling cursor.
        if raw_state
            .timestamp()
            .is_some_and(|cursor| cursor.field.is_none())
        {
            findings.problem(
                state_path.key("timestamp").key("field"),
                "an enabled timestamp cursor needs `field`, the dot path of the timestamp in each \
                 record (e.g. `updated_at`), or `enabled: false`",
            );
        }
        // The keys just refused are not checked a second time.
        let state_persistence = self
            .state_persistence
            .as_ref()
            .map(|state| without_http_keys(state).validate(&state_path, findings));
        let cursors: Vec<StateCursor> = [
            raw_state.timestamp().map(|_| StateCursor::Timestamp),
            raw_state.id().map(|_| StateCursor::Id),
            raw_state.offset().map(|_| StateCursor::Offset),
        ]
        .into_iter()
        .flatten()
        .collect();
        let listed = self.parameters.as_ref().map(Vec::len);
        let parameters = match self.parameters {
            None => Some(InputParameters::Cursors(
                cursors.iter().copied().map(Expr::Ref).collect(),
            )),
            Some(parameters) => {
                let count = parameters.len();
                let narrowed: Vec<Expr<StateCursor>> = parameters
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, parameter)| {
                        let shown = parameter.to_string();
                        let narrowed = parameter.into_state();
                        if narrowed.is_none() {
                            findings.problem(
                                path.key("parameters").index(i),
                                format!(
                                    "`{shown}`: an input query runs before there is a record; \
                                     bind state.timestamp, state.id, state.offset or a literal"
                                ),
                            );
                        }
                        narrowed
                    })
                    .collect();
                (narrowed.len() == count).then_some(InputParameters::Listed(narrowed))
            }
        };
        if let Some(query) = &query {
            let query_path = if self.query_file.is_some() {
                path.key("queryFile")
            } else {
                path.key("query")
            };
            let names: Vec<&str> = cursors.iter().map(|c| cursor_name(*c)).collect();
            let bound = match listed {
                Some(count) => Bound::Listed(count),
                None => Bound::Cursors(&names),
            };
            check_query(findings, path, &query_path, query, &bound, &raw_state);
        }
        if !findings.clean_since(mark) {
            return None;
        }
        Some(DatabaseInput {
            schedule,
            connection: connection?,
            query: query?,
            parameters: parameters?,
            state_persistence,
            statement_timeout_ms: statement_timeout_ms?,
        })
    }
}

fn cursor_name(cursor: StateCursor) -> &'static str {
    match cursor {
        StateCursor::Timestamp => "timestamp",
        StateCursor::Id => "id",
        StateCursor::Offset => "offset",
        StateCursor::WindowEnd => "window.end",
        StateCursor::WindowStart => "window.start",
    }
}

/// The query is not empty, binds one value to each placeholder, and is warned about when it
/// can skip rows.
fn check_query(
    findings: &mut Findings,
    path: &KeyPath,
    query_path: &KeyPath,
    query: &str,
    bound: &Bound<'_>,
    state: &RawStatePersistence,
) {
    if query.trim().is_empty() {
        findings.problem(query_path.clone(), "the query is empty");
        return;
    }
    let shape = sql::scan(query);
    check_placeholders(findings, path, query_path, &shape, bound);
    if shape.has_limit && !shape.has_order_by {
        findings.warning(
            query_path.clone(),
            "the query has LIMIT but no ORDER BY, so which rows each batch returns is undefined \
             and rows can be skipped; order by the cursor columns (e.g. ORDER BY updated_at, id)",
        );
    }
    if shape.has_limit && state.timestamp().is_some() && state.id().is_none() {
        let column = state
            .timestamp()
            .and_then(|c| c.field.as_deref())
            .and_then(|f| f.rsplit('.').next())
            .unwrap_or("updated_at");
        findings.warning(
            query_path.clone(),
            format!(
                "the cursor is the timestamp alone and the query has LIMIT: when a batch ends \
                 inside a group of rows sharing one {column}, the rest of that group is skipped \
                 by the next query. Page by (timestamp, id) instead: enable the id cursor and \
                 write WHERE ({column}, id) > ($1, $2) ORDER BY {column}, id"
            ),
        );
    }
}

/// `queryParam` and `format` say how an httpPolling input sends a cursor; a database binds it.
fn refuse_http_cursor_keys(findings: &mut Findings, path: &KeyPath, state: &RawStatePersistence) {
    let not_http = "is for httpPolling inputs; a database cursor is bound to a `$n` placeholder \
                    (see `parameters`)";
    if let Some(cursor) = state.timestamp() {
        if cursor.query_param.is_some() {
            findings.problem(
                path.key("timestamp").key("queryParam"),
                format!("queryParam {not_http}"),
            );
        }
        if cursor.until_param.is_some() {
            findings.problem(
                path.key("timestamp").key("untilParam"),
                "untilParam is for httpPolling inputs; a database query binds the upper bound \
                 with the parameter expression `window.end` (see `parameters`)",
            );
        }
        if cursor.format.is_some() {
            findings.problem(
                path.key("timestamp").key("format"),
                "format is for httpPolling inputs; a database timestamp is bound with its SQL \
                 type",
            );
        }
    }
    if let Some(cursor) = state.id()
        && cursor.query_param.is_some()
    {
        findings.problem(
            path.key("id").key("queryParam"),
            format!("queryParam {not_http}"),
        );
    }
    if let Some(cursor) = state.offset()
        && cursor.query_param.is_some()
    {
        findings.problem(
            path.key("offset").key("queryParam"),
            format!("queryParam {not_http}"),
        );
    }
}

fn without_http_keys(state: &RawStatePersistence) -> RawStatePersistence {
    let mut state = state.clone();
    if let Some(cursor) = &mut state.timestamp {
        cursor.query_param = None;
        cursor.format = None;
        cursor.until_param = None;
    }
    if let Some(cursor) = &mut state.id {
        cursor.query_param = None;
    }
    if let Some(cursor) = &mut state.offset {
        cursor.query_param = None;
    }
    state
}
