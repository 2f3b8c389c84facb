//! The `database` output: one statement per record, one transaction per batch.
//!
//! `parameters` are evaluated against each record (`record.<path>`, literals, `a ?? b`; a
//! missing field is null) and bound to `$1..$n` as the types the database expects, through the
//! same conversions the database input uses. With `transaction: true` (the default) the batch
//! is written whole or not at all, so a failed `write` leaves nothing half-applied and the
//! executor commits no cursor. With `onError: skip` or `log`, a record the database refuses
//! (a constraint, a value its column cannot take) is left out instead and the rest of the
//! batch is written; `skip` counts them, `log` also logs each with the database's message. The
//! connection is opened at the first batch, so building the sink needs no network.

use cannectors_config::{DatabaseOutput, Expr, FieldPath, OnRefusedRow};
use cannectors_connector::{BoxError, BoxFuture, Record, Sink};
use cannectors_database::{
    Access, ConnectionSettings, Database, DatabaseError, Refusals, Statement,
};
use cannectors_state::{State, StateLock as _};
use cannectors_state_postgres::PgLease;
use serde_json::Value;

use crate::OutputError;

/// Writes records into PostgreSQL or SQLite.
pub struct DatabaseSink {
    config: DatabaseOutput,
    shown: Vec<String>,
    connection: Option<(Database, Statement)>,
    /// Records left out because the database refused them, this run.
    refused: u64,
}

impl DatabaseSink {
    /// The sink of a `database` output; the connection opens at the first batch.
    pub fn new(config: &DatabaseOutput) -> DatabaseSink {
        DatabaseSink {
            config: config.clone(),
            shown: config.parameters.iter().map(Expr::to_string).collect(),
            connection: None,
            refused: 0,
        }
    }

    async fn connect(&self) -> Result<(Database, Statement), DatabaseError> {
        let database = Database::connect(ConnectionSettings {
            key: "output",
            url: &self.config.connection.url,
            driver: self.config.connection.driver,
            access: Access::Write,
            statement_timeout: self.config.statement_timeout(),
        })
        .await?;
        let statement = database.prepare(&self.config.query).await?;
        // Loading counted the placeholders of the text; the database's count is the one that
        // binds.
        if statement.placeholders() != self.config.parameters.len() {
            return Err(DatabaseError::ParameterCount {
                key: "output",
                placeholders: statement.placeholders(),
                given: self.config.parameters.len(),
                bound: format!("parameters: [{}]", self.shown.join(", ")),
            });
        }
        Ok((database, statement))
    }

    /// Writes `records` and commits `state` through `lease` in one transaction: both are
    /// durable together or not at all, so that a crash at any point neither loses nor repeats
    /// a record. Only for an output into the database that holds the lease's store, with
    /// `transaction: true` (the executor checks both before it takes this path); `onError`
    /// leaves refused records out as [`Sink::write`] does, in the transaction that commits.
    /// A lease taken over by another process rolls the batch back:
    /// [`OutputError::Database`] with a [`DatabaseError::StateCommit`] holding
    /// [`StateError::Fenced`](cannectors_state::StateError::Fenced).
    pub async fn write_committing(
        &mut self,
        records: &[Record],
        lease: &mut PgLease,
        state: &State,
    ) -> Result<(), OutputError> {
        self.write_batch(records, Some((lease, state))).await
    }

    async fn write_batch(
        &mut self,
        records: &[Record],
        commit: Option<(&mut PgLease, &State)>,
    ) -> Result<(), OutputError> {
        if records.is_empty() {
            if let Some((lease, state)) = commit {
                // Nothing to write: the state alone, as any commit.
                return lease
                    .commit(state)
                    .await
                    .map_err(|source| OutputError::Database {
                        source: DatabaseError::StateCommit { source },
                    });
            }
            return Ok(());
        }
        if self.connection.is_none() {
            let connected = self
                .connect()
                .await
                .map_err(|source| OutputError::Database { source })?;
            self.connection = Some(connected);
        }
        let rows: Vec<Vec<Value>> = records
            .iter()
            .enumerate()
            .map(|(position, record)| {
                let fields = record
                    .to_value()
                    .map_err(|source| OutputError::Fields { position, source })?;
                let field = |path: &FieldPath| path.get(&fields).cloned().unwrap_or(Value::Null);
                Ok(self
                    .config
                    .parameters
                    .iter()
                    .map(|p| p.evaluate(&field))
                    .collect())
            })
            .collect::<Result<_, OutputError>>()?;
        let transaction = self.config.transaction;
        let on_error = self.config.on_error;
        let refusals = match on_error {
            OnRefusedRow::Fail => Refusals::Fail,
            OnRefusedRow::Skip | OnRefusedRow::Log => Refusals::LeaveOut,
        };
        let Some((database, statement)) = self.connection.as_mut() else {
            return Ok(());
        };
        let written = match commit {
            Some((lease, state)) => {
                database
                    .write_committing(statement, rows, &self.shown, refusals, lease, state)
                    .await
            }
            None => {
                database
                    .write(statement, rows, &self.shown, transaction, refusals)
                    .await
            }
        };
        let refused = written.map_err(|source| OutputError::Database { source })?;
        if refused.is_empty() {
            return Ok(());
        }
        if on_error == OnRefusedRow::Log {
            for row in &refused {
                tracing::warn!(
                    record = row.position,
                    target = database.target(),
                    "the database refused record {} of the batch, left out (output.onError: \
                     log): {}",
                    row.position,
                    row.reason
                );
            }
        }
        self.refused += refused.len() as u64;
        tracing::warn!(
            refused = refused.len(),
            refused_this_run = self.refused,
            written = records.len() - refused.len(),
            "left out {} record(s) of the batch that the database refused (output.onError: {}); \
             {} left out this run",
            refused.len(),
            if on_error == OnRefusedRow::Log {
                "log"
            } else {
                "skip"
            },
            self.refused
        );
        Ok(())
    }
}

impl Sink for DatabaseSink {
    fn write<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            self.write_batch(records, None)
                .await
                .map_err(BoxError::from)
        })
    }

    fn refused(&self) -> u64 {
        self.refused
    }
}
