//! The `database` input: a query re-run with the advanced cursor until it returns no rows.
//!
//! The source keeps its own copy of the cursors, moved forward by every result it yields,
//! because the executor commits each batch after the source has already been asked for the
//! next one. The copy starts from the loaded state and is never written anywhere: committing
//! is the executor's job.

use cannectors_config::{DatabaseInput, Expr, StateCursor};
use cannectors_connector::{Batch, BoxError, BoxFuture, Checkpoint, Source};
use cannectors_state::{CursorFields, State};
use serde_json::Value;

use crate::DatabaseError;
use crate::database::{Access, ConnectionSettings, Database, Statement};

const KEY: &str = "input";

/// Reads rows from PostgreSQL or SQLite, batch by batch, as described by a `database` input.
pub struct DatabaseSource {
    database: Database,
    statement: Statement,
    /// What `$1..$n` are bound to, and the same written out for messages.
    parameters: Vec<Expr>,
    shown: Vec<String>,
    fields: CursorFields,
    /// The committed cursors, then the greatest position this run has yielded.
    cursors: State,
    /// Only the offset cursor is enabled: it counts the rows delivered.
    offset_only: bool,
    finished: bool,
}

impl DatabaseSource {
    /// Connects, prepares the query and checks that `parameters` fit its placeholders.
    /// `state` is the loaded state (`None` on the first run); it is only read.
    pub async fn connect(
        input: &DatabaseInput,
        state: Option<&State>,
    ) -> Result<DatabaseSource, DatabaseError> {
        let settings = input.state_persistence.clone().unwrap_or_default();
        let fields = CursorFields::from_config(&settings).map_err(DatabaseError::CursorSettings)?;
        let parameters = match &input.parameters {
            Some(parameters) => parameters.clone(),
            None => default_parameters(&settings),
        };
        for (index, expr) in parameters.iter().enumerate() {
            if expr.uses_record() {
                return Err(DatabaseError::BadParameter {
                    key: KEY,
                    index,
                    expr: expr.to_string(),
                    reason: "reads a record, but an input binds its parameters before any record \
                             is read; use state.timestamp, state.id, state.offset or a literal"
                        .to_owned(),
                });
            }
        }
        let sql = query_text(input)?;
        let database = Database::connect(ConnectionSettings {
            key: KEY,
            connection_string: input.connection_string.as_deref(),
            connection_string_ref: input.connection_string_ref.as_deref(),
            driver: input.driver,
            access: Access::Read,
        })
        .await?;
        let statement = database.prepare(&sql).await?;
        database.check_columns(&statement)?;
        let shown: Vec<String> = parameters.iter().map(Expr::to_string).collect();
        if statement.placeholders() != parameters.len() {
            return Err(DatabaseError::ParameterCount {
                key: KEY,
                placeholders: statement.placeholders(),
                given: parameters.len(),
                bound: if input.parameters.is_some() {
                    format!("parameters: [{}]", shown.join(", "))
                } else if shown.is_empty() {
                    "no `parameters` and no enabled cursor".to_owned()
                } else {
                    format!(
                        "no `parameters`, so the enabled cursors: {}",
                        shown.join(", ")
                    )
                },
            });
        }
        let mut cursors = state.cloned().unwrap_or_default();
        // A run interrupted mid-way resumes from the offset it had reached.
        if let Some(offset) = cursors
            .run
            .as_ref()
            .and_then(|run| run.resume.get("offset"))
            .and_then(Value::as_u64)
        {
            cursors.offset = Some(offset);
        }
        Ok(DatabaseSource {
            database,
            statement,
            parameters,
            shown,
            offset_only: fields.is_empty() && settings.offset().is_some(),
            fields,
            cursors,
            finished: false,
        })
    }

    fn evaluate(&self, expr: &Expr) -> Value {
        match expr {
            Expr::State(StateCursor::Timestamp) => self
                .cursors
                .timestamp
                .as_ref()
                .map_or(Value::Null, |t| t.as_json().clone()),
            Expr::State(StateCursor::Id) => self
                .cursors
                .id
                .as_ref()
                .map_or(Value::Null, |id| id.to_json()),
            Expr::State(StateCursor::Offset) => {
                self.cursors.offset.map_or(Value::Null, Value::from)
            }
            Expr::Literal(value) => value.clone(),
            Expr::Coalesce(items) => items
                .iter()
                .map(|item| self.evaluate(item))
                .find(|value| !value.is_null())
                .unwrap_or(Value::Null),
            // Refused in `connect`.
            Expr::Record(_) => Value::Null,
        }
    }

    async fn next(&mut self) -> Result<Option<Batch>, DatabaseError> {
        if self.finished {
            return Ok(None);
        }
        let values: Vec<Value> = self.parameters.iter().map(|e| self.evaluate(e)).collect();
        let records = self
            .database
            .query(&self.statement, &values, &self.shown)
            .await?;
        if records.is_empty() {
            self.finished = true;
            return Ok(None);
        }
        if self.offset_only {
            let offset = self.cursors.offset.unwrap_or(0) + records.len() as u64;
            self.cursors.offset = Some(offset);
            return Ok(Some(Batch {
                records,
                checkpoint: Checkpoint::Progress {
                    resume: serde_json::json!({ "offset": offset }),
                    offset: Some(offset),
                },
            }));
        }
        if self.fields.is_empty() {
            // No cursor: a full read, which one execution completes.
            self.finished = true;
            return Ok(Some(Batch {
                records,
                checkpoint: Checkpoint::Advance,
            }));
        }
        let greatest = self
            .fields
            .greatest_position(&records)
            .map_err(DatabaseError::CursorValues)?;
        let before = self.cursors.committed();
        match greatest {
            Some(position) if self.cursors.advance(&position) => Ok(Some(Batch {
                records,
                checkpoint: Checkpoint::Advance,
            })),
            _ => {
                tracing::warn!(
                    "the query returned {} row(s) but none lies after the cursor ({}), so the \
                     run ends here instead of reading the same rows again; the query should \
                     select only rows after its placeholders and be ORDER BY its cursor columns \
                     (e.g. WHERE (updated_at, id) > ($1, $2) ORDER BY updated_at, id)",
                    records.len(),
                    describe_position(&before),
                );
                self.finished = true;
                Ok(None)
            }
        }
    }
}

impl Source for DatabaseSource {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>, BoxError>> {
        Box::pin(async move { self.next().await.map_err(BoxError::from) })
    }

    fn final_offset(&self) -> Option<u64> {
        if self.offset_only {
            self.cursors.offset
        } else {
            None
        }
    }
}

/// Without `parameters`, `$1..` are the enabled cursors in the order timestamp, id, offset.
fn default_parameters(settings: &cannectors_config::StatePersistence) -> Vec<Expr> {
    let mut parameters = Vec::new();
    if settings.timestamp().is_some() {
        parameters.push(Expr::State(StateCursor::Timestamp));
    }
    if settings.id().is_some() {
        parameters.push(Expr::State(StateCursor::Id));
    }
    if settings.offset().is_some() {
        parameters.push(Expr::State(StateCursor::Offset));
    }
    parameters
}

/// The SQL: `query`, or the file `queryFile` names (the pipeline loader usually read it into
/// `query` already, relative to the pipeline file).
fn query_text(input: &DatabaseInput) -> Result<String, DatabaseError> {
    match (&input.query, &input.query_file) {
        (Some(query), _) => Ok(query.clone()),
        (None, Some(path)) => {
            std::fs::read_to_string(path).map_err(|source| DatabaseError::ReadQueryFile {
                key: KEY,
                path: path.into(),
                source,
            })
        }
        (None, None) => Err(DatabaseError::MissingQuery { key: KEY }),
    }
}

fn describe_position(position: &cannectors_state::Position) -> String {
    let mut parts = Vec::new();
    if let Some(timestamp) = &position.timestamp {
        parts.push(format!("timestamp {timestamp}"));
    }
    if let Some(id) = &position.id {
        parts.push(format!("id {id}"));
    }
    if parts.is_empty() {
        "no cursor yet".to_owned()
    } else {
        parts.join(", ")
    }
}
