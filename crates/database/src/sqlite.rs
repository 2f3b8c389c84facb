//! SQLite through rusqlite (bundled, so no system library is needed).
//!
//! rusqlite blocks: every call runs on tokio's blocking pool with the connection behind a
//! mutex, so a long query never stalls the async workers that drive the rest of the pipeline.
//! SQLite has no declared parameter types: JSON values bind as their natural SQLite value
//! (null, integer, real, text; a list or mapping as JSON text), and columns are read by the
//! type of the value each row holds.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use cannectors_connector::Record;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

use crate::DatabaseError;
use crate::database::Access;

/// An SQLite database file to open.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// What SQLite opens: a path, `:memory:` or a `file:` URI.
    location: String,
    /// The database for messages.
    pub(crate) shown: String,
}

/// Reads `sqlite://path`, `sqlite:path`, `file:path[?mode=ro]` or a plain path.
pub(crate) fn parse_target(text: &str) -> Target {
    let location = if text.starts_with("file:") {
        text.to_owned()
    } else if let Some(rest) = text.strip_prefix("sqlite://") {
        rest.to_owned()
    } else if let Some(rest) = text.strip_prefix("sqlite:") {
        rest.to_owned()
    } else {
        text.to_owned()
    };
    let location = if location.is_empty() {
        ":memory:".to_owned()
    } else {
        location
    };
    let shown = if location.starts_with("file:") {
        location.clone()
    } else {
        format!("sqlite://{location}")
    };
    Target { location, shown }
}

/// An open database, shared with blocking tasks.
#[derive(Clone)]
pub(crate) struct Handle {
    connection: Arc<Mutex<Connection>>,
    /// Stops the statement a blocking task is running, from any thread.
    interrupt: Arc<rusqlite::InterruptHandle>,
    pub(crate) shown: String,
}

impl Handle {
    /// Makes the statement in progress fail with `SQLITE_INTERRUPT`, so that a blocking
    /// thread nobody waits for any more is given back.
    pub(crate) fn interrupt(&self) {
        self.interrupt.interrupt();
    }

    async fn run<T, F>(&self, work: F) -> Result<T, DatabaseError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> T + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || work(&mut lock(&connection)))
            .await
            .map_err(|e| DatabaseError::Task {
                target: self.shown.clone(),
                reason: e.to_string(),
            })
    }
}

/// A poisoned lock only means an earlier task panicked; the connection itself is still usable.
fn lock(connection: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    connection
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Opens the database. A statement waits for another process's lock at most
/// `statement_timeout` (SQLite's busy timeout), which is also the bound on the whole statement.
pub(crate) async fn open(
    target: &Target,
    access: Access,
    statement_timeout: Duration,
) -> Result<Handle, DatabaseError> {
    let location = target.location.clone();
    let shown = target.shown.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let mut flags = OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        flags |= match access {
            // A source must not create an empty database where the user mistyped a path.
            Access::Read => OpenFlags::SQLITE_OPEN_READ_ONLY,
            Access::Write => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        };
        let connection = Connection::open_with_flags(&location, flags)?;
        // SQLite counts the busy timeout in milliseconds in an i32, and rusqlite panics
        // beyond it; 24 days is no bound anyone means to set.
        connection.busy_timeout(statement_timeout.min(Duration::from_millis(i32::MAX as u64)))?;
        Ok::<_, rusqlite::Error>(connection)
    })
    .await
    .map_err(|e| DatabaseError::Task {
        target: shown.clone(),
        reason: e.to_string(),
    })?;
    let connection = opened.map_err(|e| DatabaseError::Connect {
        target: shown.clone(),
        reason: format!(
            "{e}; check that the file exists and is readable (a relative path is read from the \
             working directory)"
        ),
    })?;
    Ok(Handle {
        interrupt: Arc::new(connection.get_interrupt_handle()),
        connection: Arc::new(Mutex::new(connection)),
        shown,
    })
}

/// A checked statement: which placeholder each SQLite parameter slot takes.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    sql: String,
    /// For SQLite parameter index `i + 1`, the placeholder number (from 0) it binds.
    slots: Vec<usize>,
    pub(crate) placeholders: usize,
}

pub(crate) async fn prepare(
    handle: &Handle,
    sql: &str,
) -> Result<Result<Prepared, String>, DatabaseError> {
    let sql = sql.to_owned();
    handle
        .run(move |connection| {
            let statement = connection.prepare_cached(&sql).map_err(|e| e.to_string())?;
            let mut slots = Vec::with_capacity(statement.parameter_count());
            for index in 1..=statement.parameter_count() {
                slots.push(match statement.parameter_name(index) {
                    None => index - 1,
                    Some(name) => match name[1..].parse::<usize>() {
                        Ok(n) if n >= 1 && (name.starts_with('$') || name.starts_with('?')) => {
                            n - 1
                        }
                        _ => {
                            return Err(format!(
                                "the named parameter `{name}` is not supported; number the \
                                 placeholders $1, $2, ... in the order of `parameters`"
                            ));
                        }
                    },
                });
            }
            let placeholders = slots.iter().map(|s| s + 1).max().unwrap_or(0);
            drop(statement);
            Ok(Prepared {
                sql,
                slots,
                placeholders,
            })
        })
        .await
}

fn to_sql(value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

fn bind(
    statement: &mut rusqlite::CachedStatement<'_>,
    slots: &[usize],
    values: &[Value],
) -> rusqlite::Result<()> {
    for (index, slot) in slots.iter().enumerate() {
        let value = values.get(*slot).map(to_sql).unwrap_or(SqlValue::Null);
        statement.raw_bind_parameter(index + 1, value)?;
    }
    Ok(())
}

fn to_json(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => i.into(),
        ValueRef::Real(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        ValueRef::Text(bytes) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        ValueRef::Blob(bytes) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
    }
}

/// Runs a query and reads every row as a JSON object keyed by column name.
pub(crate) async fn query(
    handle: &Handle,
    prepared: &Prepared,
    values: Vec<Value>,
) -> Result<Result<Vec<Record>, String>, DatabaseError> {
    let prepared = prepared.clone();
    handle
        .run(move |connection| {
            let mut statement = connection
                .prepare_cached(&prepared.sql)
                .map_err(|e| e.to_string())?;
            bind(&mut statement, &prepared.slots, &values).map_err(|e| e.to_string())?;
            let names: Vec<String> = statement
                .column_names()
                .into_iter()
                .map(str::to_owned)
                .collect();
            let mut rows = statement.raw_query();
            let mut records = Vec::new();
            while let Some(row) = rows.next().map_err(|e| e.to_string())? {
                let mut record = serde_json::Map::with_capacity(names.len());
                for (i, name) in names.iter().enumerate() {
                    record.insert(
                        name.clone(),
                        to_json(row.get_ref(i).map_err(|e| e.to_string())?),
                    );
                }
                records.push(Record::from(Value::Object(record)));
            }
            Ok(records)
        })
        .await
}

/// Why a write stopped: the record position (None for the transaction itself) and the message.
pub(crate) struct WriteFailure {
    pub(crate) position: Option<usize>,
    pub(crate) action: &'static str,
    pub(crate) reason: String,
}

/// Runs the statement once per row, in one transaction when asked. With `leave_out`, a row
/// SQLite refuses for its values is left out and returned with the reason: SQLite backs out
/// only the refused statement (its default conflict resolution, ABORT), so the transaction
/// goes on without savepoints.
pub(crate) async fn write(
    handle: &Handle,
    prepared: &Prepared,
    rows: Vec<Vec<Value>>,
    transaction: bool,
    leave_out: bool,
) -> Result<Result<Vec<(usize, String)>, WriteFailure>, DatabaseError> {
    let prepared = prepared.clone();
    handle
        .run(move |connection| {
            let failure = |position, action, e: &rusqlite::Error| WriteFailure {
                position,
                action,
                reason: describe(e),
            };
            // The connection is ours alone behind the mutex, so the unchecked form is safe.
            let tx = if transaction {
                Some(
                    connection
                        .unchecked_transaction()
                        .map_err(|e| failure(None, "begin", &e))?,
                )
            } else {
                None
            };
            let conn: &Connection = connection;
            let mut refused = Vec::new();
            {
                let mut statement = conn
                    .prepare_cached(&prepared.sql)
                    .map_err(|e| failure(None, "begin", &e))?;
                for (position, row) in rows.iter().enumerate() {
                    match bind(&mut statement, &prepared.slots, row)
                        .and_then(|()| statement.raw_execute())
                    {
                        Ok(_) => {}
                        // A conflict clause of ROLLBACK ends the whole transaction: the rows
                        // before it are gone, so leaving this one out would not keep them.
                        Err(e) if leave_out && refused_for_its_values(&e) => {
                            if transaction && conn.is_autocommit() {
                                return Err(failure(Some(position), "", &e));
                            }
                            refused.push((position, describe(&e)));
                        }
                        Err(e) => return Err(failure(Some(position), "", &e)),
                    }
                }
            }
            if let Some(tx) = tx {
                tx.commit().map_err(|e| failure(None, "commit", &e))?;
            }
            Ok(refused)
        })
        .await
}

/// Whether SQLite refused the row for its values (a constraint, a type, a size) rather than
/// for the database's own state (busy, full, read only, corrupt).
fn refused_for_its_values(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(
            rusqlite::ErrorCode::ConstraintViolation
                | rusqlite::ErrorCode::TypeMismatch
                | rusqlite::ErrorCode::TooBig
        )
    )
}

/// SQLite's extended result code with its message, e.g. `SQLITE_CONSTRAINT_UNIQUE (2067): UNIQUE
/// constraint failed: dest.id`.
fn describe(error: &rusqlite::Error) -> String {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => format!(
            "{:?} ({}): {}",
            code.code,
            code.extended_code,
            message.as_deref().unwrap_or("no message")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_name_the_file() {
        assert_eq!(parse_target("sqlite://data/app.db").location, "data/app.db");
        assert_eq!(
            parse_target("sqlite:///var/lib/app.db").location,
            "/var/lib/app.db"
        );
        assert_eq!(parse_target("sqlite::memory:").location, ":memory:");
        assert_eq!(
            parse_target("file:app.db?mode=ro").location,
            "file:app.db?mode=ro"
        );
        assert_eq!(
            parse_target("sqlite://data/app.db").shown,
            "sqlite://data/app.db"
        );
    }
}
