//! What the database input and the database output share: the driver, the connection, the
//! statement timeout, and the rule that binds one value to each `$n` of a query.

use std::num::NonZeroU64;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::document::KeyPath;
use crate::sql;
use crate::validate::Findings;

/// A database engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Driver {
    /// PostgreSQL (`postgres://`, `postgresql://`).
    Postgres,
    /// SQLite (`sqlite://path`, `file:path`).
    Sqlite,
}

impl Driver {
    /// The driver a connection URL names: `postgres://` and `postgresql://` are PostgreSQL;
    /// `sqlite:`, `file:` and a path ending in `.db`, `.sqlite` or `.sqlite3` are SQLite.
    ///
    /// ```
    /// use cannectors_config::Driver;
    /// assert_eq!(Driver::from_url("postgresql://app@db/app"), Some(Driver::Postgres));
    /// assert_eq!(Driver::from_url("./data/events.db"), Some(Driver::Sqlite));
    /// assert_eq!(Driver::from_url("mysql://db/app"), None);
    /// ```
    pub fn from_url(url: &str) -> Option<Driver> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Some(Driver::Postgres)
        } else if lower.starts_with("sqlite:")
            || lower.starts_with("file:")
            || [".db", ".sqlite", ".sqlite3"]
                .iter()
                .any(|ext| lower.ends_with(ext))
        {
            Some(Driver::Sqlite)
        } else {
            None
        }
    }

    /// The name written in a pipeline file: `postgres` or `sqlite`.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Postgres => "postgres",
            Driver::Sqlite => "sqlite",
        }
    }
}

/// Where a database is: its URL, from `connectionString` or `connectionStringRef`, and its
/// driver, as written or inferred from the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Connection {
    /// The connection URL; never empty.
    pub url: String,
    /// The engine; agrees with the URL when the URL names one.
    pub driver: Driver,
}

/// The statement timeout unless `statementTimeoutMs` says otherwise. Five minutes: long enough
/// for a heavy query on a large table, short enough that a server that stopped answering does
/// not hold a scheduled pipeline for hours.
pub(crate) fn default_statement_timeout_ms() -> u64 {
    300_000
}

/// `statementTimeoutMs`: zero would mean "no bound", which lets a silent server hold a run
/// forever.
pub(crate) fn statement_timeout(
    findings: &mut Findings,
    path: &KeyPath,
    timeout_ms: u64,
) -> Option<NonZeroU64> {
    crate::validate::positive_ms(
        findings,
        path,
        "statementTimeoutMs",
        timeout_ms,
        "300000 (5 minutes)",
    )
}

/// The statement timeout as a duration.
pub(crate) fn millis(timeout_ms: NonZeroU64) -> Duration {
    Duration::from_millis(timeout_ms.get())
}

/// Checks the connection settings: exactly one URL, not empty, and a driver that is known and
/// agrees with it.
pub(crate) fn connection(
    findings: &mut Findings,
    path: &KeyPath,
    connection_string: Option<&str>,
    connection_string_ref: Option<&str>,
    driver: Option<Driver>,
) -> Option<Connection> {
    let (key, url) = match (connection_string, connection_string_ref) {
        (None, None) => {
            findings.problem(
                path.key("connectionStringRef"),
                "missing key: set `connectionStringRef` (usually ${DATABASE_URL}) or \
                 `connectionString`",
            );
            return None;
        }
        (Some(_), Some(_)) => {
            findings.problem(
                path.key("connectionString"),
                "write only one of `connectionString` and `connectionStringRef`",
            );
            return None;
        }
        (Some(url), None) => ("connectionString", url),
        (None, Some(url)) => ("connectionStringRef", url),
    };
    if url.trim().is_empty() {
        findings.problem(
            path.key(key),
            format!("`{key}` is empty (an empty variable?); write a postgres:// or sqlite:// URL"),
        );
        return None;
    }
    let driver = match (Driver::from_url(url), driver) {
        (Some(inferred), Some(given)) if inferred != given => {
            findings.problem(
                path.key("driver"),
                format!(
                    "driver is {} but {key} is a {} URL; remove `driver` or fix the URL",
                    given.name(),
                    inferred.name()
                ),
            );
            return None;
        }
        (Some(driver), _) | (None, Some(driver)) => driver,
        (None, None) => {
            findings.problem(
                path.key(key),
                format!(
                    "cannot tell the database from `{key}`: start it with postgres://, \
                     postgresql://, sqlite:// or file:, or set `driver: postgres` or `driver: \
                     sqlite`"
                ),
            );
            return None;
        }
    };
    Some(Connection {
        url: url.to_owned(),
        driver,
    })
}

/// What fills `$1..$n`.
pub(crate) enum Bound<'a> {
    /// A `parameters` list of this length.
    Listed(usize),
    /// No `parameters`: the enabled cursors, in the order timestamp, id, offset.
    Cursors(&'a [&'a str]),
}

pub(crate) fn check_placeholders(
    findings: &mut Findings,
    block: &KeyPath,
    query_path: &KeyPath,
    shape: &sql::QueryShape,
    bound: &Bound<'_>,
) {
    let count = match bound {
        Bound::Listed(n) => *n,
        Bound::Cursors(cursors) => cursors.len(),
    };
    let highest = shape.placeholders.last().copied().unwrap_or(0);
    if let Some(gap) = (1..highest).find(|n| !shape.placeholders.contains(n)) {
        findings.problem(
            query_path.clone(),
            format!(
                "the query uses ${highest} but not ${gap}; number the placeholders $1 to \
                 ${highest} without gaps (the database cannot type an unused placeholder)"
            ),
        );
    }
    if highest == count {
        return;
    }
    let what_is_bound = match bound {
        Bound::Listed(1) => "`parameters` lists 1 value".to_owned(),
        Bound::Listed(n) => format!("`parameters` lists {n} values"),
        Bound::Cursors([]) => "nothing is bound (no `parameters` and no enabled cursor)".to_owned(),
        Bound::Cursors(cursors) => format!(
            "without `parameters` the enabled cursors are bound ({})",
            cursors
                .iter()
                .map(|c| format!("state.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let uses = match highest {
        0 => "the query has no placeholder".to_owned(),
        1 => "the query uses $1".to_owned(),
        n => format!("the query uses $1 to ${n}"),
    };
    let path = match bound {
        Bound::Listed(_) => block.key("parameters"),
        Bound::Cursors(_) => query_path.clone(),
    };
    findings.problem(
        path,
        format!("{uses} but {what_is_bound}; bind exactly one value per placeholder"),
    );
}
