//! One connection to PostgreSQL or SQLite, shared by the database source and the database sink.
//!
//! Both ends need the same things: pick the driver from the URL, connect, prepare a statement,
//! bind JSON values to `$1..$n` by the types the database expects, and turn rows into records.
//! They live here, once, so the sink in `cannectors-output` and the source in this crate agree
//! on every conversion.

use std::future::Future;
use std::time::Duration;

use futures_util::{StreamExt as _, future};
use serde_json::Value;
use tokio_postgres::GenericClient;

use crate::DatabaseError;
use crate::postgres::decode::{CursorColumns, CursorKey, RecordShape};
use crate::postgres::encode::{Param, bindable, convert};
use crate::postgres::types::PgType;
use crate::{postgres, sqlite};
use cannectors_config::Driver;
use cannectors_connector::Record;
use cannectors_state::State;
use cannectors_state_postgres::PgLease;

/// Whether a connection only reads (a source) or also writes (a sink).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read only: an SQLite file that does not exist is an error, not a new empty database.
    Read,
    /// Read and write: an SQLite file is created when missing.
    Write,
}

/// Where and how to connect: a loaded pipeline block's connection (its URL and its driver were
/// checked when the pipeline was loaded).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSettings<'a> {
    /// The pipeline block the settings come from, for messages: `input` or `output`.
    pub key: &'static str,
    /// The connection URL.
    pub url: &'a str,
    /// The engine.
    pub driver: Driver,
    /// Read only, or read and write.
    pub access: Access,
    /// The longest the database may take to answer one statement (`statementTimeoutMs`).
    pub statement_timeout: Duration,
}

/// What a batch write does with a record the database refuses (a constraint it violates, a
/// value its column cannot take).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusals {
    /// The write fails, naming the record (with a transaction, nothing of the batch stays).
    Fail,
    /// The record is left out and reported; the other records of the batch are written.
    LeaveOut,
}

/// A record of a batch that the database refused, left out under [`Refusals::LeaveOut`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefusedRow {
    /// Its position in the batch, from 0.
    pub position: usize,
    /// The database's message (SQLSTATE or SQLite code, message, detail), or why its value
    /// could not be bound.
    pub reason: String,
}

/// An open connection to a database.
pub struct Database {
    engine: Engine,
    statement_timeout: Duration,
    target: String,
    key: &'static str,
}

#[allow(
    clippy::large_enum_variant,
    reason = "one value per connection; boxing would only complicate matching"
)]
enum Engine {
    Postgres(postgres::Session),
    Sqlite(sqlite::Handle),
}

/// The bound on one statement, and how to stop a statement that outlives it.
///
/// A client-side bound is the only one that holds when the server stops answering; a stopped
/// statement is then also cancelled at the database, so that it does not keep working (or
/// holding locks) for a client that has given up on it.
struct Limit<'a> {
    key: &'static str,
    target: &'a str,
    timeout: Duration,
    stop: Stop<'a>,
}

enum Stop<'a> {
    Postgres(&'a postgres::Canceller),
    Sqlite(&'a sqlite::Handle),
}

impl Limit<'_> {
    /// Waits for `work` at most the statement timeout; `action` says what it was doing, for
    /// the message.
    async fn run<T>(
        &self,
        action: impl FnOnce() -> String,
        work: impl Future<Output = Result<T, DatabaseError>>,
    ) -> Result<T, DatabaseError> {
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => {
                match self.stop {
                    Stop::Postgres(canceller) => canceller.cancel().await,
                    Stop::Sqlite(handle) => handle.interrupt(),
                }
                Err(DatabaseError::StatementTimeout {
                    key: self.key,
                    target: self.target.to_owned(),
                    action: action(),
                    timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
                })
            }
        }
    }
}

/// A prepared statement and what it expects.
pub struct Statement {
    kind: StatementKind,
    placeholders: usize,
}

enum StatementKind {
    Postgres {
        statement: tokio_postgres::Statement,
        shape: RecordShape,
    },
    Sqlite(sqlite::Prepared),
}

impl Statement {
    /// The number of values the statement binds (`$1..$n`).
    pub fn placeholders(&self) -> usize {
        self.placeholders
    }

    /// The columns the greatest cursor position of a result can be found from, when the
    /// enabled cursors are these top-level fields of a type read that way (PostgreSQL only).
    pub fn cursor_columns(
        &self,
        timestamp: Option<&str>,
        id: Option<&str>,
    ) -> Option<CursorColumns> {
        match &self.kind {
            StatementKind::Postgres { shape, .. } => shape.cursor_columns(timestamp, id),
            StatementKind::Sqlite(_) => None,
        }
    }
}

/// The records of one result, and which of them holds the greatest cursor position when
/// [`CursorColumns`] could tell.
pub struct Decoded {
    /// The records, in the order the rows came.
    pub records: Vec<Record>,
    /// The index of the record with the greatest cursor position, when it was found on the
    /// binary values.
    pub greatest: Option<usize>,
}

impl Database {
    /// Connects (PostgreSQL) or opens the file (SQLite).
    pub async fn connect(settings: ConnectionSettings<'_>) -> Result<Database, DatabaseError> {
        let key = settings.key;
        let url = settings.url;
        match settings.driver {
            Driver::Postgres => {
                let target = postgres::parse_target(url, key)?;
                let session = postgres::connect(&target).await?;
                Ok(Database {
                    engine: Engine::Postgres(session),
                    statement_timeout: settings.statement_timeout,
                    target: target.shown,
                    key,
                })
            }
            Driver::Sqlite => {
                let target = sqlite::parse_target(url);
                let handle =
                    sqlite::open(&target, settings.access, settings.statement_timeout).await?;
                Ok(Database {
                    engine: Engine::Sqlite(handle),
                    statement_timeout: settings.statement_timeout,
                    target: target.shown,
                    key,
                })
            }
        }
    }

    /// The database as a URL without its password.
    pub fn target(&self) -> &str {
        &self.target
    }

    fn limit(&self) -> Limit<'_> {
        Limit {
            key: self.key,
            target: &self.target,
            timeout: self.statement_timeout,
            stop: match &self.engine {
                Engine::Postgres(session) => Stop::Postgres(&session.canceller),
                Engine::Sqlite(handle) => Stop::Sqlite(handle),
            },
        }
    }

    /// Prepares `sql`; every placeholder must have a type values can be bound to.
    pub async fn prepare(&self, sql: &str) -> Result<Statement, DatabaseError> {
        let key = self.key;
        let fail = |reason: String| DatabaseError::Prepare {
            key,
            target: self.target.clone(),
            reason,
        };
        let limit = self.limit();
        let preparing = || format!("preparing {key}.query");
        match &self.engine {
            Engine::Postgres(session) => {
                let statement = limit
                    .run(preparing, async {
                        session
                            .client
                            .prepare(sql)
                            .await
                            .map_err(|e| fail(postgres::describe(&e)))
                    })
                    .await?;
                for (i, ty) in statement.params().iter().enumerate() {
                    if !bindable(ty) {
                        return Err(DatabaseError::UnsupportedParameterType {
                            key,
                            placeholder: i + 1,
                            ty: ty.name().to_owned(),
                        });
                    }
                }
                let placeholders = statement.params().len();
                let shape = RecordShape::new(statement.columns());
                Ok(Statement {
                    kind: StatementKind::Postgres { statement, shape },
                    placeholders,
                })
            }
            Engine::Sqlite(handle) => {
                let prepared = limit
                    .run(preparing, async {
                        sqlite::prepare(handle, sql).await?.map_err(fail)
                    })
                    .await?;
                let placeholders = prepared.placeholders;
                Ok(Statement {
                    kind: StatementKind::Sqlite(prepared),
                    placeholders,
                })
            }
        }
    }

    /// Fails unless every result column of `statement` has a JSON form.
    pub fn check_columns(&self, statement: &Statement) -> Result<(), DatabaseError> {
        if let StatementKind::Postgres { statement, .. } = &statement.kind {
            for column in statement.columns() {
                if PgType::of(column.type_()).is_none() {
                    return Err(DatabaseError::UnsupportedColumn {
                        key: self.key,
                        column: column.name().to_owned(),
                        ty: column.type_().name().to_owned(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Runs a query with `values` bound to `$1..$n` (`exprs` says where each came from) and
    /// returns its records. PostgreSQL rows are decoded as they arrive, each dropped once it is
    /// a record, so a result is never held in its binary form beside its records, and the
    /// decoding runs while the server still sends the rest. With `cursor`, also which record
    /// holds the greatest cursor position. `capacity` is how many records to make room for at
    /// once (the size of the result before), so that the vector is not grown anew every query.
    pub async fn fetch(
        &self,
        statement: &Statement,
        values: &[Value],
        exprs: &[String],
        cursor: Option<CursorColumns>,
        capacity: usize,
    ) -> Result<Decoded, DatabaseError> {
        let key = self.key;
        let fail = |reason: String| DatabaseError::Query {
            key,
            target: self.target.clone(),
            reason,
        };
        let limit = self.limit();
        let running = || format!("{key}.query");
        match (&self.engine, &statement.kind) {
            (Engine::Postgres(session), StatementKind::Postgres { statement, shape }) => {
                let params = self.convert_row(statement, values, exprs)?;
                // The bound covers the rows too: a server can stop answering half-way.
                limit
                    .run(running, async {
                        let stream = session
                            .client
                            .query_raw(statement, params.iter())
                            .await
                            .map_err(|e| fail(postgres::describe(&e)))?;
                        let mut stream = std::pin::pin!(stream);
                        let mut records = Vec::with_capacity(capacity);
                        let mut greatest: Option<(usize, CursorKey)> = None;
                        let mut cursor = cursor;
                        while let Some(row) = stream.next().await {
                            let row = row.map_err(|e| fail(postgres::describe(&e)))?;
                            if let Some(columns) = cursor {
                                match columns.key(&row) {
                                    Some(key) => {
                                        if greatest.is_none_or(|(_, best)| key > best) {
                                            greatest = Some((records.len(), key));
                                        }
                                    }
                                    None => {
                                        cursor = None;
                                        greatest = None;
                                    }
                                }
                            }
                            let record = shape.record(&row).map_err(|cell| {
                                let column = &statement.columns()[cell.column];
                                DatabaseError::Decode {
                                    key,
                                    column: column.name().to_owned(),
                                    ty: column.type_().name().to_owned(),
                                    row: records.len(),
                                    reason: cell.reason,
                                }
                            })?;
                            records.push(record);
                        }
                        Ok(Decoded {
                            records,
                            greatest: greatest.map(|(index, _)| index),
                        })
                    })
                    .await
            }
            (Engine::Sqlite(handle), StatementKind::Sqlite(prepared)) => {
                limit
                    .run(running, async {
                        sqlite::query(handle, prepared, values.to_vec())
                            .await?
                            .map(|records| Decoded {
                                records,
                                greatest: None,
                            })
                            .map_err(fail)
                    })
                    .await
            }
            _ => Err(fail(
                "the statement was prepared on another connection".to_owned(),
            )),
        }
    }

    fn convert_row(
        &self,
        statement: &tokio_postgres::Statement,
        values: &[Value],
        exprs: &[String],
    ) -> Result<Vec<Param>, DatabaseError> {
        statement
            .params()
            .iter()
            .enumerate()
            .map(|(i, ty)| {
                let value = values.get(i).unwrap_or(&Value::Null);
                convert(value, ty).map_err(|reason| DatabaseError::Bind {
                    key: self.key,
                    placeholder: i + 1,
                    expr: exprs.get(i).cloned().unwrap_or_default(),
                    value: excerpt(value),
                    ty: ty.name().to_owned(),
                    reason,
                })
            })
            .collect()
    }

    /// Runs `statement` once for each row of values, in one transaction when `transaction`:
    /// then either every row is written or, on the first failure, none. With
    /// [`Refusals::LeaveOut`], a row the database refuses is left out instead, and the rows it
    /// refused come back; any other failure (the connection, a timeout) still fails the write.
    pub async fn write(
        &mut self,
        statement: &Statement,
        rows: Vec<Vec<Value>>,
        exprs: &[String],
        transaction: bool,
        refusals: Refusals,
    ) -> Result<Vec<RefusedRow>, DatabaseError> {
        let target = self.target.clone();
        let key = self.key;
        let timeout = self.statement_timeout;
        match (&mut self.engine, &statement.kind) {
            (
                Engine::Postgres(postgres::Session { client, canceller }),
                StatementKind::Postgres { statement, .. },
            ) => {
                let limit = Limit {
                    key,
                    target: &target,
                    timeout,
                    stop: Stop::Postgres(canceller),
                };
                if !transaction {
                    return match refusals {
                        Refusals::Fail => {
                            execute_all(&*client, statement, &rows, exprs, &limit, false)
                                .await
                                .map(|()| Vec::new())
                        }
                        Refusals::LeaveOut => {
                            execute_one_by_one(
                                Writer::Autocommit(client),
                                statement,
                                &rows,
                                exprs,
                                &limit,
                            )
                            .await
                        }
                    };
                }
                write_batch_in_transaction(client, &limit, statement, &rows, exprs, refusals, None)
                    .await
            }
            (Engine::Sqlite(handle), StatementKind::Sqlite(prepared)) => {
                let limit = Limit {
                    key,
                    target: &target,
                    timeout,
                    stop: Stop::Sqlite(handle),
                };
                // The batch is one call on the blocking pool, so the bound covers all of it.
                let records = rows.len();
                let leave_out = refusals == Refusals::LeaveOut;
                let written = limit
                    .run(
                        || format!("writing the batch of {records} record(s)"),
                        sqlite::write(handle, prepared, rows, transaction, leave_out),
                    )
                    .await?;
                match written {
                    Ok(refused) => Ok(refused
                        .into_iter()
                        .map(|(position, reason)| RefusedRow { position, reason })
                        .collect()),
                    Err(failure) => Err(match failure.position {
                        Some(position) => DatabaseError::Write {
                            position,
                            target,
                            rolled_back: transaction,
                            reason: failure.reason,
                        },
                        None => DatabaseError::Transaction {
                            action: failure.action,
                            target,
                            reason: failure.reason,
                        },
                    }),
                }
            }
            _ => Err(DatabaseError::Query {
                key,
                target,
                reason: "the statement was prepared on another connection".to_owned(),
            }),
        }
    }

    /// Writes a batch as [`Database::write`] does with `transaction: true`, and commits
    /// `state` through `lease` in the same transaction, so that the rows and the state become
    /// durable together or not at all: PostgreSQL only, on the database that holds the
    /// lease's store. A lease found taken over ([`cannectors_state::StateError::Fenced`]) or
    /// any failure of the state's statements rolls the whole batch back and is
    /// [`DatabaseError::StateCommit`].
    pub async fn write_committing(
        &mut self,
        statement: &Statement,
        rows: Vec<Vec<Value>>,
        exprs: &[String],
        refusals: Refusals,
        lease: &mut PgLease,
        state: &State,
    ) -> Result<Vec<RefusedRow>, DatabaseError> {
        let target = self.target.clone();
        let key = self.key;
        let timeout = self.statement_timeout;
        match (&mut self.engine, &statement.kind) {
            (
                Engine::Postgres(postgres::Session { client, canceller }),
                StatementKind::Postgres { statement, .. },
            ) => {
                let limit = Limit {
                    key,
                    target: &target,
                    timeout,
                    stop: Stop::Postgres(canceller),
                };
                write_batch_in_transaction(
                    client,
                    &limit,
                    statement,
                    &rows,
                    exprs,
                    refusals,
                    Some((lease, state)),
                )
                .await
            }
            _ => Err(DatabaseError::NotTransactional { target }),
        }
    }
}

/// The state a batch's transaction commits with its rows, and the lease that commits it.
type StateCommit<'a> = (&'a mut PgLease, &'a State);

/// Writes `rows` in one transaction, and with them `state` when given (see
/// [`Database::write_committing`]).
#[allow(clippy::too_many_arguments)]
async fn write_batch_in_transaction(
    client: &mut tokio_postgres::Client,
    limit: &Limit<'_>,
    statement: &tokio_postgres::Statement,
    rows: &[Vec<Value>],
    exprs: &[String],
    refusals: Refusals,
    mut state: Option<StateCommit<'_>>,
) -> Result<Vec<RefusedRow>, DatabaseError> {
    let fast = write_in_transaction(
        client,
        limit,
        statement,
        rows,
        exprs,
        false,
        state.as_mut().map(|(lease, state)| (&mut **lease, *state)),
    )
    .await;
    match (fast, refusals) {
        // The batch goes fast, pipelined, in the usual case where the database takes every
        // row. Only a batch with a refused row is written again, one row at a time, each in a
        // savepoint, so that a refused row rolls back alone (docs/databases.md says why this
        // beats a savepoint for every row). The state goes with whichever transaction commits.
        (Err(DatabaseError::Write { .. }), Refusals::LeaveOut) => {
            write_in_transaction(client, limit, statement, rows, exprs, true, state).await
        }
        (result, _) => result,
    }
}

/// Writes `rows` in one transaction: pipelined, stopping at the first failure, or
/// `one_by_one`, each row in a savepoint and the refused ones left out; then `state`, when
/// given, through its lease in the same transaction. Committed when all of it is written,
/// rolled back otherwise.
async fn write_in_transaction(
    client: &mut tokio_postgres::Client,
    limit: &Limit<'_>,
    statement: &tokio_postgres::Statement,
    rows: &[Vec<Value>],
    exprs: &[String],
    one_by_one: bool,
    state: Option<StateCommit<'_>>,
) -> Result<Vec<RefusedRow>, DatabaseError> {
    let target = limit.target;
    let transaction_failure = |action, e: tokio_postgres::Error| DatabaseError::Transaction {
        action,
        target: target.to_owned(),
        reason: postgres::describe(&e),
    };
    let mut tx = limit
        .run(|| "beginning the transaction".to_owned(), async {
            client
                .transaction()
                .await
                .map_err(|e| transaction_failure("begin", e))
        })
        .await?;
    let mut written = if one_by_one {
        execute_one_by_one(Writer::Transaction(&mut tx), statement, rows, exprs, limit).await
    } else {
        execute_all(&tx, statement, rows, exprs, limit, true)
            .await
            .map(|()| Vec::new())
    };
    if let (Ok(_), Some((lease, state))) = (&written, state) {
        let started = std::time::Instant::now();
        let committed = limit
            .run(
                || "committing the pipeline's state with the batch".to_owned(),
                async {
                    lease
                        .commit_in(&tx, state)
                        .await
                        .map_err(|source| DatabaseError::StateCommit { source })
                },
            )
            .await;
        // How long the state's statements took inside the transaction, for `cargo xtask bench
        // db` (the commit's share of a run on the exactly-once path).
        tracing::debug!(
            state_commit_us = started.elapsed().as_micros() as u64,
            "state written in the batch's transaction"
        );
        if let Err(error) = committed {
            written = Err(error);
        }
    }
    match written {
        Ok(refused) => {
            limit
                .run(
                    || {
                        "committing the transaction (whether the database committed it is \
                         unknown)"
                            .to_owned()
                    },
                    async {
                        tx.commit()
                            .await
                            .map_err(|e| transaction_failure("commit", e))
                    },
                )
                .await?;
            Ok(refused)
        }
        // A rollback would wait on the same silent server; dropping the transaction queues
        // one without waiting, and the cancelled statement ends the transaction at the server
        // anyway.
        Err(e @ DatabaseError::StatementTimeout { .. }) => Err(e),
        Err(e) => {
            let rollback = limit
                .run(|| "rolling back the transaction".to_owned(), async {
                    tx.rollback()
                        .await
                        .map_err(|e| transaction_failure("roll back", e))
                })
                .await;
            if let Err(rollback) = rollback {
                tracing::warn!(
                    "{rollback} (the server drops the transaction anyway when the connection \
                     closes)"
                );
            }
            Err(e)
        }
    }
}

/// Where rows written one at a time go.
enum Writer<'a, 'c> {
    /// Straight to the database, each row committed on its own (`transaction: false`).
    Autocommit(&'a tokio_postgres::Client),
    /// Into a transaction, each row in a savepoint.
    Transaction(&'a mut tokio_postgres::Transaction<'c>),
}

/// Whether PostgreSQL refused the row itself, for its values: an integrity constraint
/// (SQLSTATE class 23) or a data exception (class 22). Anything else (a lost connection, a
/// missing table, a permission, a serialization failure) is not about the row, and leaving
/// rows out would hide it.
fn refused_by_database(error: &tokio_postgres::Error) -> bool {
    error
        .as_db_error()
        .is_some_and(|db| matches!(db.code().code().get(..2), Some("22" | "23")))
}

/// Writes `rows` one at a time, leaving out the rows the database refuses (and those whose
/// values cannot be bound) and returning them.
async fn execute_one_by_one(
    mut writer: Writer<'_, '_>,
    statement: &tokio_postgres::Statement,
    rows: &[Vec<Value>],
    exprs: &[String],
    limit: &Limit<'_>,
) -> Result<Vec<RefusedRow>, DatabaseError> {
    let rolled_back = matches!(writer, Writer::Transaction(_));
    let write_failure = |position, reason| DatabaseError::Write {
        position,
        target: limit.target.to_owned(),
        rolled_back,
        reason,
    };
    let mut refused = Vec::new();
    for (position, values) in rows.iter().enumerate() {
        let params = match bind_row(statement, values, exprs, limit.key) {
            Ok(params) => params,
            Err(reason) => {
                refused.push(RefusedRow { position, reason });
                continue;
            }
        };
        let writing = || format!("writing record {position} of the batch");
        let outcome = match &mut writer {
            Writer::Autocommit(client) => {
                limit
                    .run(writing, async {
                        Ok(client.execute_raw(statement, params.iter()).await)
                    })
                    .await?
            }
            Writer::Transaction(tx) => {
                limit
                    .run(writing, async {
                        let savepoint_failure = |e: tokio_postgres::Error| {
                            write_failure(
                                position,
                                format!("cannot use a savepoint: {}", postgres::describe(&e)),
                            )
                        };
                        let savepoint = tx
                            .savepoint("cannectors_row")
                            .await
                            .map_err(savepoint_failure)?;
                        let result = savepoint.execute_raw(statement, params.iter()).await;
                        if result.is_ok() {
                            savepoint.commit().await.map_err(savepoint_failure)?;
                        } else {
                            savepoint.rollback().await.map_err(savepoint_failure)?;
                        }
                        Ok(result)
                    })
                    .await?
            }
        };
        match outcome {
            Ok(_) => {}
            Err(e) if refused_by_database(&e) => refused.push(RefusedRow {
                position,
                reason: postgres::describe(&e),
            }),
            Err(e) => return Err(write_failure(position, postgres::describe(&e))),
        }
    }
    Ok(refused)
}

/// The values of one row converted to the types the statement expects, or why one cannot be.
fn bind_row(
    statement: &tokio_postgres::Statement,
    values: &[Value],
    exprs: &[String],
    key: &'static str,
) -> Result<Vec<Param>, String> {
    statement
        .params()
        .iter()
        .enumerate()
        .map(|(i, ty)| {
            let value = values.get(i).unwrap_or(&Value::Null);
            convert(value, ty).map_err(|reason| {
                DatabaseError::Bind {
                    key,
                    placeholder: i + 1,
                    expr: exprs.get(i).cloned().unwrap_or_default(),
                    value: excerpt(value),
                    ty: ty.name().to_owned(),
                    reason,
                }
                .to_string()
            })
        })
        .collect()
}

/// Rows are sent in pipelined groups (many statements in flight on the one connection) so a
/// batch does not pay one network round trip per record.
const PIPELINE: usize = 256;

async fn execute_all<C: GenericClient + Sync>(
    client: &C,
    statement: &tokio_postgres::Statement,
    rows: &[Vec<Value>],
    exprs: &[String],
    limit: &Limit<'_>,
    rolled_back: bool,
) -> Result<(), DatabaseError> {
    let key = limit.key;
    let write_failure = |position, reason| DatabaseError::Write {
        position,
        target: limit.target.to_owned(),
        rolled_back,
        reason,
    };
    // Without a transaction the rows must stop at the first failure exactly, so one at a time.
    let group_size = if rolled_back { PIPELINE } else { 1 };
    for (group, chunk) in rows.chunks(group_size).enumerate() {
        let first = group * group_size;
        let mut params = Vec::with_capacity(chunk.len());
        for (offset, values) in chunk.iter().enumerate() {
            let row = bind_row(statement, values, exprs, key)
                .map_err(|reason| write_failure(first + offset, reason))?;
            params.push(row);
        }
        let writing = || match chunk.len() {
            1 => format!("writing record {first} of the batch"),
            n => format!("writing records {first} to {} of the batch", first + n - 1),
        };
        limit
            .run(writing, async {
                let results = future::join_all(
                    params
                        .iter()
                        .map(|row| client.execute_raw(statement, row.iter())),
                )
                .await;
                // Statements after a failed one fail too ("transaction is aborted"); the first
                // failure in batch order is the one that names the bad record.
                match results
                    .into_iter()
                    .enumerate()
                    .find_map(|(i, r)| r.err().map(|e| (i, e)))
                {
                    Some((offset, e)) => Err(write_failure(first + offset, postgres::describe(&e))),
                    None => Ok(()),
                }
            })
            .await?;
    }
    Ok(())
}

/// A value for a message, shortened so that a large field does not flood the terminal.
fn excerpt(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}...", text.chars().take(77).collect::<String>())
    } else {
        text
    }
}
