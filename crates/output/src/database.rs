//! The `database` output: one statement per record, one transaction per batch.
//!
//! `parameters` are evaluated against each record (`record.<path>`, literals, `a ?? b`; a
//! missing field is null) and bound to `$1..$n` as the types the database expects, through the
//! same conversions the database input uses. With `transaction: true` (the default) the batch
//! is written whole or not at all, so a failed `write` leaves nothing half-applied and the
//! executor commits no cursor. The connection is opened at the first batch, so building the
//! sink needs no network.

use std::time::Duration;

use cannectors_config::{DatabaseOutput, Expr, FieldPath};
use cannectors_connector::{BoxError, BoxFuture, Record, Sink};
use cannectors_database::{Access, ConnectionSettings, Database, DatabaseError, Statement};
use serde_json::Value;

use crate::OutputError;

/// Writes records into PostgreSQL or SQLite.
pub struct DatabaseSink {
    config: DatabaseOutput,
    parameters: Vec<Parameter>,
    shown: Vec<String>,
    connection: Option<(Database, Statement)>,
}

/// A `parameters` entry with its record paths parsed once.
enum Parameter {
    Record(FieldPath),
    Literal(Value),
    Coalesce(Vec<Parameter>),
}

impl Parameter {
    fn new(expr: &Expr, index: usize) -> Result<Parameter, OutputError> {
        let refuse = |reason: String| OutputError::DatabaseConfig {
            source: DatabaseError::BadParameter {
                key: "output",
                index,
                expr: expr.to_string(),
                reason,
            },
        };
        match expr {
            Expr::Record(path) => FieldPath::parse(path)
                .map(Parameter::Record)
                .map_err(|e| refuse(e.to_string())),
            Expr::Literal(value) => Ok(Parameter::Literal(value.clone())),
            Expr::Coalesce(items) => items
                .iter()
                .map(|item| Parameter::new(item, index))
                .collect::<Result<_, _>>()
                .map(Parameter::Coalesce),
            Expr::State(cursor) => Err(refuse(format!(
                "reads `{cursor}`, the input's cursor, which an output does not see; bind record \
                 fields (record.<path>), literals or `a ?? b`"
            ))),
        }
    }

    fn evaluate(&self, record: &Value) -> Value {
        match self {
            Parameter::Record(path) => path.get(record).cloned().unwrap_or(Value::Null),
            Parameter::Literal(value) => value.clone(),
            Parameter::Coalesce(items) => items
                .iter()
                .map(|item| item.evaluate(record))
                .find(|value| !value.is_null())
                .unwrap_or(Value::Null),
        }
    }
}

impl DatabaseSink {
    /// Checks the `output` block; the connection opens at the first batch.
    pub fn new(config: &DatabaseOutput) -> Result<DatabaseSink, OutputError> {
        if config.connection_string.is_none() && config.connection_string_ref.is_none() {
            return Err(OutputError::DatabaseConfig {
                source: DatabaseError::MissingConnectionString { key: "output" },
            });
        }
        let parameters = config
            .parameters
            .iter()
            .enumerate()
            .map(|(index, expr)| Parameter::new(expr, index))
            .collect::<Result<_, _>>()?;
        Ok(DatabaseSink {
            config: config.clone(),
            parameters,
            shown: config.parameters.iter().map(Expr::to_string).collect(),
            connection: None,
        })
    }

    async fn connect(&self) -> Result<(Database, Statement), DatabaseError> {
        let database = Database::connect(ConnectionSettings {
            key: "output",
            connection_string: self.config.connection_string.as_deref(),
            connection_string_ref: self.config.connection_string_ref.as_deref(),
            driver: self.config.driver,
            access: Access::Write,
            statement_timeout: Duration::from_millis(self.config.statement_timeout_ms),
        })
        .await?;
        let statement = database.prepare(&self.config.query).await?;
        if statement.placeholders() != self.parameters.len() {
            return Err(DatabaseError::ParameterCount {
                key: "output",
                placeholders: statement.placeholders(),
                given: self.parameters.len(),
                bound: format!("parameters: [{}]", self.shown.join(", ")),
            });
        }
        Ok((database, statement))
    }

    async fn write_batch(&mut self, records: &[Record]) -> Result<(), OutputError> {
        if records.is_empty() {
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
                Ok(self
                    .parameters
                    .iter()
                    .map(|p| p.evaluate(&fields))
                    .collect())
            })
            .collect::<Result<_, OutputError>>()?;
        let transaction = self.config.transaction;
        let Some((database, statement)) = self.connection.as_mut() else {
            return Ok(());
        };
        database
            .write(statement, rows, &self.shown, transaction)
            .await
            .map_err(|source| OutputError::Database { source })
    }
}

impl Sink for DatabaseSink {
    fn write<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move { self.write_batch(records).await.map_err(BoxError::from) })
    }
}
