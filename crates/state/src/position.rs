//! Positions in a source, and the greatest position of a batch of records.
//!
//! With both cursors enabled, a position is a keyset pair (timestamp, id): records sharing a
//! timestamp are told apart by their id. Reading it from records runs once per record of every
//! batch, so the field paths are parsed once, in [`CursorFields`], and nothing is allocated per
//! record.

use cannectors_config::{FieldPath, FieldPathError, StatePersistence};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::cursor::{CursorId, IdRef, Timestamp, excerpt, instant_of_json};

/// A position in a source: a timestamp, an id, or both, ordered as the pair (timestamp, id).
///
/// A cursor that is not enabled is `None`. Positions of one pipeline always carry the same
/// cursors, so `None` only meets `None`; where it meets a value anyway (a hand-written seed
/// without an id), the value is greater.
///
/// ```
/// use cannectors_state::{CursorId, Position, Timestamp};
/// let at = |ts: &str, id: i64| Position {
///     timestamp: Some(Timestamp::parse(ts).unwrap()),
///     id: Some(CursorId::Integer(id)),
/// };
/// assert!(at("2026-01-01T00:00:00Z", 9) < at("2026-01-01T00:00:00Z", 10));
/// assert!(at("2026-01-01T00:00:00Z", 10) < at("2026-01-01T00:00:01Z", 1));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The timestamp cursor, compared first.
    pub timestamp: Option<Timestamp>,
    /// The id cursor, compared when the timestamps are equal.
    pub id: Option<CursorId>,
}

impl Position {
    /// Whether the position carries no cursor at all.
    pub fn is_empty(&self) -> bool {
        self.timestamp.is_none() && self.id.is_none()
    }

    /// Whether `candidate` lies after this position, compared on the cursors `candidate`
    /// carries (a cursor that is not enabled any more does not hold the others back), with an
    /// id of the other kind read as the kind of the candidate's id.
    pub(crate) fn is_passed_by(&self, candidate: &Position) -> bool {
        let current = Position {
            timestamp: candidate.timestamp.as_ref().and(self.timestamp.clone()),
            id: match (&self.id, &candidate.id) {
                (Some(id), Some(like)) => Some(id.as_kind_of(like)),
                _ => None,
            },
        };
        *candidate > current
    }
}

/// The record fields that hold the enabled cursors, parsed once per pipeline.
///
/// ```
/// use cannectors_config::FieldPath;
/// use cannectors_state::CursorFields;
/// use serde_json::json;
/// let fields = CursorFields::new(
///     Some(FieldPath::parse("event.timestamp").unwrap()),
///     Some(FieldPath::parse("event.id").unwrap()),
/// );
/// let records = [
///     json!({"event": {"timestamp": "2026-01-01T00:00:00Z", "id": 12}}),
///     json!({"event": {"timestamp": "2026-01-01T01:00:00+01:00", "id": 30}}),
///     json!({"event": {"timestamp": "2025-12-31T23:59:59Z", "id": 99}}),
/// ];
/// let greatest = fields.greatest_position(&records).unwrap().unwrap();
/// assert_eq!(greatest.id.unwrap().to_string(), "30");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CursorFields {
    timestamp: Option<FieldPath>,
    id: Option<FieldPath>,
}

/// Why the cursors of a record, or the cursor settings, cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// An enabled cursor has no `field`.
    #[error(
        "statePersistence.{cursor} is enabled but has no `field`: name the record field that \
         holds it, such as `field: updated_at` or `field: event.id`, or set `enabled: false`"
    )]
    NoField {
        /// `timestamp` or `id`.
        cursor: &'static str,
    },
    /// The `field` of a cursor is not a dot path.
    #[error("statePersistence.{cursor}.field: {source}")]
    BadField {
        /// `timestamp` or `id`.
        cursor: &'static str,
        /// What is wrong with the path.
        source: FieldPathError,
    },
    /// A record lacks the cursor field.
    #[error(
        "record {index} of the batch (counting from 0) has no `{field}`: every record needs the \
         {cursor} cursor field; check statePersistence.{cursor}.field against what the source \
         returns"
    )]
    Missing {
        /// Position of the record in its batch, from 0.
        index: usize,
        /// The field path.
        field: String,
        /// `timestamp` or `id`.
        cursor: &'static str,
    },
    /// A record holds null in the cursor field.
    #[error(
        "record {index} of the batch (counting from 0) holds null in `{field}`: every record \
         needs a value in the {cursor} cursor field"
    )]
    Null {
        /// Position of the record in its batch, from 0.
        index: usize,
        /// The field path.
        field: String,
        /// `timestamp` or `id`.
        cursor: &'static str,
    },
    /// A record's timestamp field holds something that is not a timestamp.
    #[error("record {index} of the batch (counting from 0), field `{field}`: {source}")]
    NotATimestamp {
        /// Position of the record in its batch, from 0.
        index: usize,
        /// The field path.
        field: String,
        /// The rejected value.
        source: crate::TimestampError,
    },
    /// A record's id field holds something that is not an id.
    #[error("record {index} of the batch (counting from 0), field `{field}`: {source}")]
    NotAnId {
        /// Position of the record in its batch, from 0.
        index: usize,
        /// The field path.
        field: String,
        /// The rejected value.
        source: crate::IdError,
    },
}

impl CursorFields {
    /// Cursor fields from already parsed paths; `None` for a cursor that is not enabled.
    pub fn new(timestamp: Option<FieldPath>, id: Option<FieldPath>) -> CursorFields {
        CursorFields { timestamp, id }
    }

    /// The fields of the enabled timestamp and id cursors of a pipeline's `statePersistence`.
    pub fn from_config(settings: &StatePersistence) -> Result<CursorFields, CursorError> {
        let path = |cursor: &'static str, field: Option<&String>| match field {
            None => Err(CursorError::NoField { cursor }),
            Some(field) => {
                FieldPath::parse(field).map_err(|source| CursorError::BadField { cursor, source })
            }
        };
        Ok(CursorFields {
            timestamp: settings
                .timestamp()
                .map(|cursor| path("timestamp", cursor.field.as_ref()))
                .transpose()?,
            id: settings
                .id()
                .map(|cursor| path("id", cursor.field.as_ref()))
                .transpose()?,
        })
    }

    /// The timestamp field, when that cursor is enabled.
    pub fn timestamp(&self) -> Option<&FieldPath> {
        self.timestamp.as_ref()
    }

    /// The id field, when that cursor is enabled.
    pub fn id(&self) -> Option<&FieldPath> {
        self.id.as_ref()
    }

    /// Whether neither the timestamp nor the id cursor is enabled.
    pub fn is_empty(&self) -> bool {
        self.timestamp.is_none() && self.id.is_none()
    }

    /// The greatest position among `records`, or `None` when there are no records or no
    /// enabled cursor. Every record must hold every enabled cursor field: one that lacks it,
    /// holds null or holds an unreadable value fails the whole batch, since skipping it could
    /// move the cursor past records that were never tracked.
    pub fn greatest_position(&self, records: &[Value]) -> Result<Option<Position>, CursorError> {
        if self.is_empty() {
            return Ok(None);
        }
        let mut greatest: Option<(usize, Key<'_>)> = None;
        for (index, record) in records.iter().enumerate() {
            let key = self.key_of(record, index)?;
            if greatest.as_ref().is_none_or(|(_, best)| key > *best) {
                greatest = Some((index, key));
            }
        }
        let Some((index, _)) = greatest else {
            return Ok(None);
        };
        self.position_of(&records[index], index).map(Some)
    }

    fn position_of(&self, record: &Value, index: usize) -> Result<Position, CursorError> {
        let timestamp = match &self.timestamp {
            Some(path) => {
                let value = field(record, path, index, "timestamp")?;
                Some(
                    Timestamp::from_json(value).map_err(|source| CursorError::NotATimestamp {
                        index,
                        field: path.to_string(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let id = match &self.id {
            Some(path) => {
                let value = field(record, path, index, "id")?;
                Some(
                    CursorId::from_json(value).map_err(|source| CursorError::NotAnId {
                        index,
                        field: path.to_string(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        Ok(Position { timestamp, id })
    }

    fn key_of<'r>(&self, record: &'r Value, index: usize) -> Result<Key<'r>, CursorError> {
        let instant = match &self.timestamp {
            Some(path) => {
                let value = field(record, path, index, "timestamp")?;
                match instant_of_json(value) {
                    Some(instant) => Some(instant),
                    None => {
                        return Err(CursorError::NotATimestamp {
                            index,
                            field: path.to_string(),
                            source: crate::TimestampError {
                                value: excerpt(value),
                            },
                        });
                    }
                }
            }
            None => None,
        };
        let id = match &self.id {
            Some(path) => {
                let value = field(record, path, index, "id")?;
                match IdRef::of_json(value) {
                    Some(id) => Some(id),
                    None => {
                        return Err(CursorError::NotAnId {
                            index,
                            field: path.to_string(),
                            source: crate::IdError {
                                value: excerpt(value),
                            },
                        });
                    }
                }
            }
            None => None,
        };
        Ok((instant, id))
    }
}

/// What orders records while scanning a batch: the position without its written forms.
type Key<'r> = (Option<DateTime<Utc>>, Option<IdRef<'r>>);

fn field<'r>(
    record: &'r Value,
    path: &FieldPath,
    index: usize,
    cursor: &'static str,
) -> Result<&'r Value, CursorError> {
    match path.get(record) {
        None => Err(CursorError::Missing {
            index,
            field: path.to_string(),
            cursor,
        }),
        Some(Value::Null) => Err(CursorError::Null {
            index,
            field: path.to_string(),
            cursor,
        }),
        Some(value) => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cannectors_config::{IdCursor, TimestampCursor};
    use serde_json::json;

    fn fields(timestamp: Option<&str>, id: Option<&str>) -> CursorFields {
        CursorFields::new(
            timestamp.map(|path| FieldPath::parse(path).unwrap()),
            id.map(|path| FieldPath::parse(path).unwrap()),
        )
    }

    fn keyset() -> CursorFields {
        fields(Some("event.timestamp"), Some("event.id"))
    }

    #[test]
    fn greatest_position_orders_by_timestamp_then_id() {
        let records = [
            json!({"event": {"timestamp": "2026-01-01T00:00:00Z", "id": 99}}),
            json!({"event": {"timestamp": "2026-01-02T00:00:00Z", "id": 5}}),
            json!({"event": {"timestamp": "2026-01-02T01:00:00+01:00", "id": 7}}),
            json!({"event": {"timestamp": "2026-01-01T23:00:00Z", "id": 1000}}),
        ];
        let greatest = keyset().greatest_position(&records).unwrap().unwrap();
        assert_eq!(greatest.id, Some(CursorId::Integer(7)));
        assert_eq!(
            greatest.timestamp.unwrap().to_string(),
            "2026-01-02T01:00:00+01:00"
        );
    }

    #[test]
    fn greatest_position_of_an_unsorted_batch_with_only_an_id() {
        let records = [json!({"id": 3}), json!({"id": 10}), json!({"id": 9})];
        let greatest = fields(None, Some("id"))
            .greatest_position(&records)
            .unwrap()
            .unwrap();
        assert_eq!(
            greatest,
            Position {
                timestamp: None,
                id: Some(CursorId::Integer(10))
            }
        );
    }

    #[test]
    fn an_empty_batch_or_no_enabled_cursor_has_no_position() {
        assert_eq!(keyset().greatest_position(&[]).unwrap(), None);
        let records = [json!({"anything": 1})];
        assert_eq!(
            CursorFields::default().greatest_position(&records).unwrap(),
            None
        );
    }

    #[test]
    fn a_record_without_the_field_names_its_index_and_the_path() {
        let records = [
            json!({"event": {"timestamp": "2026-01-01T00:00:00Z", "id": 1}}),
            json!({"event": {"id": 2}}),
        ];
        let error = keyset().greatest_position(&records).unwrap_err();
        assert_eq!(
            error.to_string(),
            "record 1 of the batch (counting from 0) has no `event.timestamp`: every record needs \
             the timestamp cursor field; check statePersistence.timestamp.field against what the \
             source returns"
        );
    }

    #[test]
    fn a_record_with_null_in_the_field_is_an_error() {
        let records = [json!({"event": {"timestamp": "2026-01-01T00:00:00Z", "id": null}})];
        let error = keyset().greatest_position(&records).unwrap_err();
        assert_eq!(
            error.to_string(),
            "record 0 of the batch (counting from 0) holds null in `event.id`: every record needs \
             a value in the id cursor field"
        );
    }

    #[test]
    fn an_unparseable_timestamp_names_record_field_and_value() {
        let records = [
            json!({"event": {"timestamp": "2026-01-01T00:00:00Z", "id": 1}}),
            json!({"event": {"timestamp": "2026-01-01T00:00:00Z", "id": 2}}),
            json!({"event": {"timestamp": "yesterday", "id": 3}}),
        ];
        let error = keyset().greatest_position(&records).unwrap_err();
        assert_eq!(
            error.to_string(),
            "record 2 of the batch (counting from 0), field `event.timestamp`: \"yesterday\" is \
             not a timestamp: write RFC 3339 such as \"2026-01-01T00:00:00Z\", \"YYYY-MM-DD \
             HH:MM:SS\" (read as UTC), or epoch seconds or milliseconds as a number"
        );
    }

    #[test]
    fn an_id_that_is_neither_integer_nor_string_is_an_error() {
        let records = [json!({"event": {"timestamp": "2026-01-01T00:00:00Z", "id": [1]}})];
        let error = keyset().greatest_position(&records).unwrap_err();
        assert!(
            error.to_string().starts_with(
                "record 0 of the batch (counting from 0), field `event.id`: [1] is not an id"
            ),
            "{error}"
        );
    }

    #[test]
    fn fields_come_from_the_enabled_cursors_of_the_pipeline() {
        let settings = StatePersistence {
            timestamp: Some(TimestampCursor {
                enabled: true,
                field: Some("updated_at".into()),
                query_param: None,
                format: None,
            }),
            id: Some(IdCursor {
                enabled: false,
                field: Some("id".into()),
                query_param: None,
            }),
            ..StatePersistence::default()
        };
        let fields = CursorFields::from_config(&settings).unwrap();
        assert_eq!(
            fields.timestamp().map(FieldPath::as_str),
            Some("updated_at")
        );
        assert_eq!(fields.id(), None);
    }

    #[test]
    fn an_enabled_cursor_without_field_is_a_configuration_error() {
        let settings = StatePersistence {
            id: Some(IdCursor {
                enabled: true,
                field: None,
                query_param: None,
            }),
            ..StatePersistence::default()
        };
        assert_eq!(
            CursorFields::from_config(&settings)
                .unwrap_err()
                .to_string(),
            "statePersistence.id is enabled but has no `field`: name the record field that holds \
             it, such as `field: updated_at` or `field: event.id`, or set `enabled: false`"
        );
        let settings = StatePersistence {
            id: Some(IdCursor {
                enabled: true,
                field: Some("a..b".into()),
                query_param: None,
            }),
            ..StatePersistence::default()
        };
        assert!(
            CursorFields::from_config(&settings)
                .unwrap_err()
                .to_string()
                .starts_with("statePersistence.id.field: `a..b` is not a dot path")
        );
    }

    #[test]
    fn a_candidate_passes_a_position_only_on_the_cursors_it_carries() {
        let ts = |text: &str| Some(Timestamp::parse(text).unwrap());
        let committed = Position {
            timestamp: ts("2030-01-01T00:00:00Z"),
            id: Some(5.into()),
        };
        let id_only = Position {
            timestamp: None,
            id: Some(6.into()),
        };
        assert!(committed.is_passed_by(&id_only));
        let legacy = Position {
            timestamp: None,
            id: Some("42".into()),
        };
        assert!(legacy.is_passed_by(&Position {
            timestamp: None,
            id: Some(100.into())
        }));
        assert!(!legacy.is_passed_by(&Position {
            timestamp: None,
            id: Some(41.into())
        }));
    }
}
