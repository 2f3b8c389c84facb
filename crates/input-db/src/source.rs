//! The `database` input: a query re-run with the advanced cursor until it returns no rows.
//!
//! The source keeps its own copy of the cursors, moved forward by every result it yields,
//! because the executor commits each batch after the source has already been asked for the
//! next one. The copy starts from the loaded state and is never written anywhere: committing
//! is the executor's job.
//!
//! As soon as a result is handed over, the next query (bound to the cursors that result
//! reached) runs in the background, so that the database works and the rows travel while the
//! output writes the current ones. Its rows are decoded into records as they arrive, on that
//! background task, and the executor reads one batch ahead while it writes a delivery: the
//! server's work, the decoding and the output's writes and syncs overlap, and a run holds a
//! delivery, the batch read ahead and the result being received. A failure of the query in the
//! background is reported when the executor asks for that batch, and every call after a
//! failure fails again.

use std::sync::Arc;

use cannectors_config::{DatabaseInput, Expr, InputParameters, StateCursor, StatePersistence};
use cannectors_connector::{
    Batch, BoxError, BoxFuture, Checkpoint, Prefetch, Record, RunWindow, Source,
};
use cannectors_state::{CursorFields, State, Timestamp};
use serde_json::Value;

use cannectors_database::{
    Access, ConnectionSettings, CursorColumns, Database, DatabaseError, Decoded, Statement,
};

const KEY: &str = "input";

/// Reads rows from PostgreSQL or SQLite, batch by batch, as described by a `database` input.
pub struct DatabaseSource {
    shared: Arc<Shared>,
    /// What `$1..$n` are bound to.
    parameters: Vec<Expr<StateCursor>>,
    /// The values of `window.start` and `window.end`.
    window_end: (Value, Value),
    /// The committed cursors, then the greatest position this run has yielded.
    cursors: State,
    /// Only the offset cursor is enabled: it counts the rows delivered.
    offset_only: bool,
    /// The next query: run with the current cursors when asked, or already running.
    upcoming: Prefetch<(), Decoded, DatabaseError>,
    /// Records of the last result, to make room for as many in the next.
    last_len: usize,
}

/// What the queries of a run share; held by the task that queries ahead.
struct Shared {
    database: Database,
    statement: Statement,
    /// The parameters written out, for messages.
    shown: Vec<String>,
    fields: CursorFields,
    /// Where the cursors can be read from the rows before they become records.
    cursor_columns: Option<CursorColumns>,
}

/// Runs the query with `values` bound, making room for `capacity` records.
async fn fetch(
    shared: Arc<Shared>,
    values: Vec<Value>,
    capacity: usize,
) -> Result<Decoded, DatabaseError> {
    shared
        .database
        .fetch(
            &shared.statement,
            &values,
            &shared.shown,
            shared.cursor_columns,
            capacity,
        )
        .await
}

impl DatabaseSource {
    /// Connects, prepares the query and checks that `parameters` fit its placeholders as the
    /// database counts them. `state` is the loaded state (`None` on the first run); it is only
    /// read. The parameter `window.end` is bound to the time of the call.
    pub async fn connect(
        input: &DatabaseInput,
        state: Option<&State>,
    ) -> Result<DatabaseSource, DatabaseError> {
        DatabaseSource::connect_within(input, state, RunWindow::until_now()).await
    }

    /// [`DatabaseSource::connect`] for a run whose upper bound is `window.end`, bound to the
    /// parameter `window.end` in the form of the committed timestamp (RFC 3339 before the
    /// first commit), so that the query compares it as it compares the cursor.
    pub async fn connect_within(
        input: &DatabaseInput,
        state: Option<&State>,
        window: RunWindow,
    ) -> Result<DatabaseSource, DatabaseError> {
        let settings = input.state_persistence.as_ref();
        let fields = settings
            .map(StatePersistence::cursor_fields)
            .unwrap_or_default();
        let parameters = input.parameters.exprs().to_vec();
        let database = Database::connect(ConnectionSettings {
            key: KEY,
            url: &input.connection.url,
            driver: input.connection.driver,
            access: Access::Read,
            statement_timeout: input.statement_timeout(),
        })
        .await?;
        let statement = database.prepare(&input.query).await?;
        database.check_columns(&statement)?;
        let shown: Vec<String> = parameters.iter().map(Expr::to_string).collect();
        // Loading counted the placeholders of the text; the database's count is the one that
        // binds.
        if statement.placeholders() != parameters.len() {
            return Err(DatabaseError::ParameterCount {
                key: KEY,
                placeholders: statement.placeholders(),
                given: parameters.len(),
                bound: match &input.parameters {
                    InputParameters::Listed(_) => format!("parameters: [{}]", shown.join(", ")),
                    InputParameters::Cursors(_) if shown.is_empty() => {
                        "no `parameters` and no enabled cursor".to_owned()
                    }
                    InputParameters::Cursors(_) => format!(
                        "no `parameters`, so the enabled cursors: {}",
                        shown.join(", ")
                    ),
                },
            });
        }
        let mut cursors = state.cloned().unwrap_or_default();
        // A run interrupted mid-way resumes from the offset it had reached.
        if let Some(offset) = cursors
            .run
            .as_ref()
            .and_then(|run| run.resume().get("offset"))
            .and_then(Value::as_u64)
        {
            cursors.offset = Some(offset);
        }
        let cursor_columns = top_level(fields.timestamp())
            .zip(top_level(fields.id()))
            .and_then(|(timestamp, id)| statement.cursor_columns(timestamp, id));
        // Bounds are bound in the form of the committed timestamp, so that a query compares
        // them with its column the way it compares the cursor.
        let bound = |instant| {
            match state.and_then(|state| state.timestamp.as_ref()) {
                Some(committed) => committed.with_instant(instant),
                None => Timestamp::from_instant(instant),
            }
            .as_json()
            .clone()
        };
        let window_end = (window.start.map_or(Value::Null, bound), bound(window.end));
        Ok(DatabaseSource {
            window_end,
            offset_only: fields.is_empty() && settings.is_some_and(|s| s.offset().is_some()),
            shared: Arc::new(Shared {
                database,
                statement,
                shown,
                fields,
                cursor_columns,
            }),
            parameters,
            cursors,
            upcoming: Prefetch::at(()),
            last_len: 0,
        })
    }

    /// Starts the query for the current cursors in the background.
    fn query_ahead(&mut self) {
        let values = bind(&self.parameters, &self.cursors, &self.window_end);
        self.upcoming
            .fetch_ahead(fetch(Arc::clone(&self.shared), values, self.last_len));
    }

    async fn next(&mut self) -> Result<Option<Batch>, DatabaseError> {
        let (shared, parameters, cursors, window_end, last_len) = (
            &self.shared,
            &self.parameters,
            &self.cursors,
            &self.window_end,
            self.last_len,
        );
        let fetched = self
            .upcoming
            .next(|()| {
                fetch(
                    Arc::clone(shared),
                    bind(parameters, cursors, window_end),
                    last_len,
                )
            })
            .await?;
        let Some(Decoded { records, greatest }) = fetched else {
            return Ok(None);
        };
        self.last_len = records.len();
        if records.is_empty() {
            self.upcoming.finish();
            return Ok(None);
        }
        if self.offset_only {
            let offset = self.cursors.offset.unwrap_or(0) + records.len() as u64;
            self.cursors.offset = Some(offset);
            self.query_ahead();
            return Ok(Some(Batch {
                records,
                checkpoint: Checkpoint::Progress {
                    resume: serde_json::json!({ "offset": offset }),
                    offset: Some(offset),
                },
                greatest: None,
                keys: None,
            }));
        }
        if self.shared.fields.is_empty() {
            // No cursor: a full read, which one execution completes.
            self.upcoming.finish();
            return Ok(Some(Batch {
                records,
                checkpoint: Checkpoint::Advance,
                greatest: None,
                keys: None,
            }));
        }
        // The row the binary values point at yields the same position as a scan of all of
        // them, without looking up two fields in every record.
        let scanned = match greatest.and_then(|index| records.get(index..=index)) {
            Some(greatest) => greatest,
            None => &records[..],
        };
        let greatest = self
            .shared
            .fields
            .greatest_position_in_json(scanned.iter().map(Record::json))
            .map_err(DatabaseError::CursorValues)?;
        let before = self.cursors.committed();
        match greatest {
            Some(position) if self.cursors.advance(&position) => {
                self.query_ahead();
                // Found from every row (the binary shortcut reads the cursor columns of all of
                // them, NULLs included), so the executor need not look through the records.
                Ok(Some(Batch {
                    records,
                    checkpoint: Checkpoint::Advance,
                    greatest: Some(position),
                    keys: None,
                }))
            }
            _ => {
                tracing::warn!(
                    "the query returned {} row(s) but none lies after the cursor ({}), so the \
                     run ends here instead of reading the same rows again; the query should \
                     select only rows after its placeholders and be ORDER BY its cursor columns \
                     (e.g. WHERE (updated_at, id) > ($1, $2) ORDER BY updated_at, id)",
                    records.len(),
                    describe_position(&before),
                );
                self.upcoming.finish();
                Ok(None)
            }
        }
    }
}

impl Source for DatabaseSource {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>, BoxError>> {
        Box::pin(async move {
            let result = self.next().await;
            // A failed run stays failed: asking again never turns it into a complete one.
            self.upcoming.remember(result).map_err(BoxError::from)
        })
    }

    fn final_offset(&self) -> Option<u64> {
        if self.offset_only {
            self.cursors.offset
        } else {
            None
        }
    }
}

/// The values bound to `$1..$n`, from the cursors reached so far.
fn bind(
    parameters: &[Expr<StateCursor>],
    cursors: &State,
    window_end: &(Value, Value),
) -> Vec<Value> {
    parameters
        .iter()
        .map(|expr| expr.evaluate(&|cursor| evaluate(*cursor, cursors, window_end)))
        .collect()
}

fn evaluate(cursor: StateCursor, cursors: &State, window: &(Value, Value)) -> Value {
    match cursor {
        StateCursor::WindowStart => window.0.clone(),
        StateCursor::WindowEnd => window.1.clone(),
        StateCursor::Timestamp => cursors
            .timestamp
            .as_ref()
            .map_or(Value::Null, |t| t.as_json().clone()),
        StateCursor::Id => cursors.id.as_ref().map_or(Value::Null, |id| id.to_json()),
        StateCursor::Offset => cursors.offset.map_or(Value::Null, Value::from),
    }
}

/// The field name of a cursor that is a top-level field (`Some(None)` for a cursor that is not
/// enabled); `None` for a nested path.
fn top_level(path: Option<&cannectors_config::FieldPath>) -> Option<Option<&str>> {
    match path {
        None => Some(None),
        Some(path) if !path.as_str().contains('.') => Some(Some(path.as_str())),
        Some(_) => None,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use cannectors_config::{InputConfig, parse_str};
    use cannectors_state::CursorId;
    use cannectors_test_support::postgres::{fresh_schema, url};
    use serde_json::json;

    fn keyset(schema: &str) -> DatabaseInput {
        let block = json!({
            "type": "database",
            "connectionString": url(),
            "query": format!(
                "SELECT id, updated_at FROM {schema}.events \
                 WHERE (updated_at, id) > (COALESCE($1::timestamptz, '-infinity'), \
                 COALESCE($2::bigint, 0)) ORDER BY updated_at, id LIMIT 3"
            ),
            "statePersistence": {"timestamp": {"field": "updated_at"}, "id": {"field": "id"}}
        });
        let text = json!({"name": "rows", "input": block, "output": {"type": "stdout"}});
        match parse_str(&text.to_string(), "rows.json", &|_| None)
            .unwrap()
            .pipeline
            .input
        {
            InputConfig::Database(input) => input,
            other => panic!("not a database input: {other:?}"),
        }
    }

    fn ids(batch: &Batch) -> Vec<Value> {
        batch
            .records
            .iter()
            .map(|record| record.to_value().unwrap()["id"].clone())
            .collect()
    }

    #[tokio::test]
    async fn the_next_query_starts_from_the_greatest_row_when_a_result_is_handed_over() {
        let client = fresh_schema(
            "ahead_of_delivery",
            "CREATE TABLE events (id bigint, updated_at timestamptz);
             INSERT INTO events SELECT i, '2026-01-01Z'::timestamptz + i * interval '1 s'
               FROM generate_series(1, 7) i;",
        )
        .await;
        drop(client);
        let mut source = DatabaseSource::connect(&keyset("ahead_of_delivery"), None)
            .await
            .unwrap();
        let first = source.next_batch().await.unwrap().unwrap();
        assert_eq!(ids(&first), [json!(1), json!(2), json!(3)]);
        // Found on the binary cursor columns while decoding.
        assert_eq!(first.greatest.unwrap().id, Some(CursorId::Integer(3)));
        assert_eq!(source.cursors.id, Some(CursorId::Integer(3)));
        assert!(
            source.upcoming.position().is_none(),
            "the next query is already running"
        );
        // The next result is decoded with room for as many records as this one.
        assert_eq!(source.last_len, 3);
        let second = source.next_batch().await.unwrap().unwrap();
        assert_eq!(ids(&second), [json!(4), json!(5), json!(6)]);
        assert!(second.records.capacity() >= 3);
        let third = source.next_batch().await.unwrap().unwrap();
        assert_eq!(ids(&third), [json!(7)]);
        assert!(source.next_batch().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_null_cursor_fails_the_batch_and_moves_no_cursor() {
        let client = fresh_schema(
            "null_cursor",
            "CREATE TABLE events (id bigint, updated_at timestamptz);
             INSERT INTO events VALUES (1, '2026-01-01Z'), (NULL, '2026-01-02Z');",
        )
        .await;
        drop(client);
        let mut source = DatabaseSource::connect(&keyset("null_cursor"), None)
            .await
            .unwrap();
        let error = source.next_batch().await.err().unwrap().to_string();
        assert_eq!(
            error,
            "input: record 1 of the batch (counting from 0) holds null in `id`: every record \
             needs a value in the id cursor field"
        );
        assert_eq!(source.cursors.id, None, "the cursors did not move");
        // The run stays failed.
        assert!(source.next_batch().await.is_err());
    }
}
