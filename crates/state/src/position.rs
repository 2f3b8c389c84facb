//! Positions in a source, and the greatest position of a batch of records.
//!
//! With both cursors enabled, a position is a keyset pair (timestamp, id): records sharing a
//! timestamp are told apart by their id. Reading it from records runs once per record of every
//! batch, so the field paths are parsed once, in [`CursorFields`], and nothing is allocated per
//! record.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use chrono::{DateTime, Utc};
use serde_core::de::{
    Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::Value;

use crate::cursor::{CursorId, IdRef, Timestamp, excerpt, instant_of_json, parse_instant_text};
use crate::path::FieldPath;

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

/// What orders a record among others: its timestamp's instant and its id, without the text the
/// timestamp was written with, which only a committed [`Position`] needs. A source that found
/// the cursor values of each record hands these over, so that a pipeline that looks at every
/// record (lookback, `delay`, `onMissingCursor`) builds no position per record. Ordered as
/// positions are.
///
/// ```
/// use cannectors_state::{CursorId, CursorKey, Position, Timestamp};
/// let position = Position {
///     timestamp: Some(Timestamp::parse("2026-01-01T01:00:00+01:00").unwrap()),
///     id: Some(CursorId::Integer(7)),
/// };
/// let key = CursorKey::of(&position);
/// assert_eq!(key.instant.unwrap().to_rfc3339(), "2026-01-01T00:00:00+00:00");
/// assert!(key < CursorKey { id: Some(CursorId::Integer(8)), ..key.clone() });
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CursorKey {
    /// The instant of the timestamp cursor, compared first.
    pub instant: Option<DateTime<Utc>>,
    /// The id cursor, compared when the instants are equal.
    pub id: Option<CursorId>,
}

impl CursorKey {
    /// The key of `position`.
    pub fn of(position: &Position) -> CursorKey {
        CursorKey {
            instant: position.timestamp.as_ref().map(Timestamp::instant),
            id: position.id.clone(),
        }
    }
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
/// use cannectors_state::{CursorFields, FieldPath};
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
    on_missing: OnMissingCursor,
}

/// What becomes of a record whose cursor field is missing or null.
///
/// A value that is there but unreadable (a timestamp field holding `"soon"`) is always an
/// error: it says the path or the source is wrong, which no mode should hide.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnMissingCursor {
    /// The whole batch fails, and nothing of it is delivered (the default).
    #[default]
    Fail,
    /// The record is not delivered; the cursor moves over the other records.
    Skip,
    /// The record is delivered and does not move the cursor.
    Deliver,
}

/// Why the cursors of a record cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CursorError {
    /// A record lacks the cursor field.
    #[error(
        "record {index} of the batch (counting from 0) has no `{field}`: every record needs the \
         {cursor} cursor field; check the path of that field against the records the source \
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
    /// A record given as text is not JSON.
    #[error("record {index} of the batch (counting from 0) is not JSON: {reason}")]
    NotJson {
        /// Position of the record in its batch, from 0.
        index: usize,
        /// What the JSON parser reported.
        reason: String,
    },
}

impl CursorFields {
    /// Cursor fields from already parsed paths; `None` for a cursor that is not enabled.
    pub fn new(timestamp: Option<FieldPath>, id: Option<FieldPath>) -> CursorFields {
        CursorFields {
            timestamp,
            id,
            on_missing: OnMissingCursor::Fail,
        }
    }

    /// The same fields, with records that lack a cursor treated as `mode` says: with
    /// [`OnMissingCursor::Skip`] or [`OnMissingCursor::Deliver`], the greatest position of a
    /// batch is found among the records that hold their cursors, and such a record is no
    /// error.
    ///
    /// ```
    /// use cannectors_state::{CursorFields, FieldPath, OnMissingCursor};
    /// let fields = CursorFields::new(None, Some(FieldPath::parse("id").unwrap()));
    /// let records = [r#"{"id": 4}"#, r#"{"id": null}"#, r#"{"other": 1}"#];
    /// assert!(fields.greatest_position_in_json(records).is_err());
    /// let tolerant = fields.on_missing(OnMissingCursor::Deliver);
    /// let greatest = tolerant.greatest_position_in_json(records).unwrap().unwrap();
    /// assert_eq!(greatest.id.unwrap().to_string(), "4");
    /// ```
    pub fn on_missing(mut self, mode: OnMissingCursor) -> CursorFields {
        self.on_missing = mode;
        self
    }

    /// What becomes of a record whose cursor field is missing or null.
    pub fn missing_mode(&self) -> OnMissingCursor {
        self.on_missing
    }

    /// Whether `error` is one the mode lets pass: a missing or null cursor, outside `Fail`.
    fn tolerates(&self, error: &CursorError) -> bool {
        self.on_missing != OnMissingCursor::Fail
            && matches!(
                error,
                CursorError::Missing { .. } | CursorError::Null { .. }
            )
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
        let lookup = |record| self.lookup(record);
        let mut greatest: Option<(usize, Key<'_>)> = None;
        for (index, record) in records.iter().enumerate() {
            let (timestamp, id) = lookup(record);
            let key = match self.key_of(timestamp, id, index) {
                Err(error) if self.tolerates(&error) => continue,
                key => key?,
            };
            if greatest.as_ref().is_none_or(|(_, best)| key > *best) {
                greatest = Some((index, key));
            }
        }
        let Some((index, _)) = greatest else {
            return Ok(None);
        };
        let (timestamp, id) = lookup(&records[index]);
        self.position_of(timestamp, id, index).map(Some)
    }

    fn lookup<'r>(&self, record: &'r Value) -> (Option<&'r Value>, Option<&'r Value>) {
        (
            self.timestamp.as_ref().and_then(|path| path.get(record)),
            self.id.as_ref().and_then(|path| path.get(record)),
        )
    }

    /// [`greatest_position`](Self::greatest_position) of records given as JSON text, each
    /// read once: only the values of the cursor fields are built, everything else is skipped.
    ///
    /// ```
    /// use cannectors_state::{CursorFields, FieldPath};
    /// let fields = CursorFields::new(None, Some(FieldPath::parse("event.id").unwrap()));
    /// let records = [r#"{"event": {"id": 12}, "x": [1, 2]}"#, r#"{"event": {"id": 30}}"#];
    /// let greatest = fields.greatest_position_in_json(records).unwrap().unwrap();
    /// assert_eq!(greatest.id.unwrap().to_string(), "30");
    /// ```
    pub fn greatest_position_in_json<'t>(
        &self,
        records: impl IntoIterator<Item = &'t str>,
    ) -> Result<Option<Position>, CursorError> {
        if self.is_empty() {
            return Ok(None);
        }
        let paths = [
            self.timestamp.as_ref().map(FieldPath::segments),
            self.id.as_ref().map(FieldPath::segments),
        ];
        self.greatest_of(records.into_iter().enumerate().map(|(index, text)| {
            project(text, paths).map_err(|error| CursorError::NotJson {
                index,
                reason: error.to_string(),
            })
        }))
    }

    /// [`greatest_position`](Self::greatest_position) of records whose cursor values the
    /// caller found while reading them: for each record, in order, the JSON text of the value at
    /// the timestamp field and of the value at the id field (`None` where the record has no such
    /// field, or where that cursor is not enabled). Each text must be one JSON value, as cut out
    /// of the record. A string without escapes and a non-negative integer are read from the text
    /// itself, so that nothing is allocated per record; any other value is parsed.
    ///
    /// ```
    /// use cannectors_state::{CursorFields, FieldPath};
    /// let fields = CursorFields::new(None, Some(FieldPath::parse("id").unwrap()));
    /// let found = [[None, Some("12")], [None, Some("30")]];
    /// let greatest = fields.greatest_position_of_found(found).unwrap().unwrap();
    /// assert_eq!(greatest.id.unwrap().to_string(), "30");
    /// ```
    pub fn greatest_position_of_found<'t>(
        &self,
        found: impl IntoIterator<Item = [Option<&'t str>; 2]>,
    ) -> Result<Option<Position>, CursorError> {
        if self.is_empty() {
            return Ok(None);
        }
        // The greatest so far: its index, its key, and the texts found in it.
        let mut greatest: Option<(usize, OwnedKey<'t>, [Option<&'t str>; 2])> = None;
        for (index, texts) in found.into_iter().enumerate() {
            let key = match self.key_of_texts(texts, index) {
                Err(error) if self.tolerates(&error) => continue,
                key => key?,
            };
            if greatest.as_ref().is_none_or(|(_, best, _)| key > *best) {
                greatest = Some((index, key, texts));
            }
        }
        let Some((index, _, texts)) = greatest else {
            return Ok(None);
        };
        let [timestamp, id] = parse_texts(texts, index)?;
        self.position_of(timestamp.as_ref(), id.as_ref(), index)
            .map(Some)
    }

    /// [`positions_in_json`](Self::positions_in_json) of records whose cursor values the
    /// caller found while reading them, given as for
    /// [`greatest_position_of_found`](Self::greatest_position_of_found): the same positions,
    /// the same `None`s and the same errors, without reading the records again.
    ///
    /// ```
    /// use cannectors_state::{CursorFields, FieldPath, OnMissingCursor};
    /// let fields = CursorFields::new(None, Some(FieldPath::parse("id").unwrap()))
    ///     .on_missing(OnMissingCursor::Skip);
    /// let positions = fields.positions_of_found([[None, Some("4")], [None, Some("null")]]).unwrap();
    /// assert_eq!(positions[0].as_ref().unwrap().id.as_ref().unwrap().to_string(), "4");
    /// assert!(positions[1].is_none());
    /// ```
    pub fn positions_of_found<'t>(
        &self,
        found: impl IntoIterator<Item = [Option<&'t str>; 2]>,
    ) -> Result<Vec<Option<Position>>, CursorError> {
        if self.is_empty() {
            return Ok(Vec::new());
        }
        let found = found.into_iter();
        let mut positions = Vec::with_capacity(found.size_hint().0);
        for (index, texts) in found.enumerate() {
            if let Some(position) = self.plain_position(texts) {
                positions.push(Some(position));
                continue;
            }
            // Most values read from their text; one that does not is parsed.
            let plain = texts.map(|text| text.map(plain_value));
            let [timestamp, id] = if plain.iter().any(|value| matches!(value, Some(None))) {
                parse_texts(texts, index)?
            } else {
                plain.map(Option::flatten)
            };
            match self.position_of(timestamp.as_ref(), id.as_ref(), index) {
                Ok(position) => positions.push(Some(position)),
                Err(error) if self.tolerates(&error) => positions.push(None),
                Err(error) => return Err(error),
            }
        }
        Ok(positions)
    }

    /// The key of each record whose cursor values the caller found while reading them (given
    /// as for [`greatest_position_of_found`](Self::greatest_position_of_found)), in order, with
    /// the same `None`s and the same errors as
    /// [`positions_of_found`](Self::positions_of_found), and the position of the first of the
    /// greatest. Nothing is allocated per record but a string id.
    ///
    /// ```
    /// use cannectors_state::{CursorFields, CursorId, FieldPath, OnMissingCursor};
    /// let fields = CursorFields::new(None, Some(FieldPath::parse("id").unwrap()))
    ///     .on_missing(OnMissingCursor::Skip);
    /// let found = [[None, Some("4")], [None, Some("null")], [None, Some("9")]];
    /// let (keys, greatest) = fields.keys_of_found(found).unwrap();
    /// assert_eq!(keys[0].as_ref().unwrap().id, Some(CursorId::Integer(4)));
    /// assert!(keys[1].is_none());
    /// assert_eq!(greatest.unwrap().id.unwrap().to_string(), "9");
    /// ```
    pub fn keys_of_found<'t>(
        &self,
        found: impl IntoIterator<Item = [Option<&'t str>; 2]>,
    ) -> Result<(Vec<Option<CursorKey>>, Option<Position>), CursorError> {
        if self.is_empty() {
            return Ok((Vec::new(), None));
        }
        let found = found.into_iter();
        let mut keys: Vec<Option<CursorKey>> = Vec::with_capacity(found.size_hint().0);
        // The first of the greatest: its index and the texts found in it.
        let mut greatest: Option<(usize, [Option<&'t str>; 2])> = None;
        for (index, texts) in found.enumerate() {
            let (instant, id) = match self.key_of_texts(texts, index) {
                Err(error) if self.tolerates(&error) => {
                    keys.push(None);
                    continue;
                }
                key => key?,
            };
            let key = CursorKey {
                instant,
                id: id.map(|id| match id {
                    OwnedId::Integer(integer) => CursorId::Integer(integer),
                    OwnedId::Text(text) => CursorId::Text(text.into_owned()),
                }),
            };
            let greater = match greatest {
                None => true,
                Some((best, _)) => keys[best].as_ref().is_none_or(|best| key > *best),
            };
            if greater {
                greatest = Some((index, texts));
            }
            keys.push(Some(key));
        }
        let greatest = match greatest {
            None => None,
            Some((index, texts)) => {
                let [timestamp, id] = parse_texts(texts, index)?;
                Some(self.position_of(timestamp.as_ref(), id.as_ref(), index)?)
            }
        };
        Ok((keys, greatest))
    }

    /// The position of a record whose cursor values are a string without escapes (the
    /// timestamp, in a form [`Timestamp`] reads) and a string or small non-negative integer
    /// (the id), read from their text; `None` for anything else, which
    /// [`position_of`](Self::position_of) then reads and explains.
    fn plain_position(&self, texts: [Option<&str>; 2]) -> Option<Position> {
        let timestamp = match self.timestamp {
            None => None,
            Some(_) => {
                let inner = plain_string(texts[0]?)?;
                Some(Timestamp::of_plain_text(parse_instant_text(inner)?, inner))
            }
        };
        let id = match self.id {
            None => None,
            Some(_) => {
                let text = texts[1]?;
                match plain_string(text) {
                    Some(inner) => Some(CursorId::Text(inner.to_owned())),
                    None => Some(CursorId::Integer(small_integer(text)?)),
                }
            }
        };
        Some(Position { timestamp, id })
    }

    /// The ordering key of a record from the JSON texts of its cursor values: read from the
    /// text when it is a plain string or a small non-negative integer, parsed otherwise (which
    /// also gives the errors their wording).
    fn key_of_texts<'t>(
        &self,
        texts: [Option<&'t str>; 2],
        index: usize,
    ) -> Result<OwnedKey<'t>, CursorError> {
        let instant = match self.timestamp {
            None => None,
            Some(_) => match texts[0].and_then(plain_string).and_then(parse_instant_text) {
                Some(instant) => Some(instant),
                None => return self.key_of_parsed(texts, index),
            },
        };
        let id = match self.id {
            None => None,
            Some(_) => match texts[1] {
                Some(text) if let Some(inner) = plain_string(text) => {
                    Some(OwnedId::Text(Cow::Borrowed(inner)))
                }
                Some(text) if let Some(integer) = small_integer(text) => {
                    Some(OwnedId::Integer(integer))
                }
                _ => return self.key_of_parsed(texts, index),
            },
        };
        Ok((instant, id))
    }

    fn key_of_parsed<'t>(
        &self,
        texts: [Option<&'t str>; 2],
        index: usize,
    ) -> Result<OwnedKey<'t>, CursorError> {
        let [timestamp, id] = parse_texts(texts, index)?;
        let (instant, id) = self.key_of(timestamp.as_ref(), id.as_ref(), index)?;
        Ok((instant, id.map(OwnedId::of)))
    }

    fn greatest_of(
        &self,
        found: impl Iterator<Item = Result<Found, CursorError>>,
    ) -> Result<Option<Position>, CursorError> {
        // The greatest so far: its index, its instant, and the values found in it.
        let mut greatest: Option<(usize, Option<DateTime<Utc>>, Found)> = None;
        for (index, found) in found.enumerate() {
            let found = found?;
            let key = match self.key_of(found[0].as_ref(), found[1].as_ref(), index) {
                Err(error) if self.tolerates(&error) => continue,
                key => key?,
            };
            let greater = match &greatest {
                None => true,
                Some((_, instant, best)) => {
                    key > (*instant, best[1].as_ref().and_then(IdRef::of_json))
                }
            };
            if greater {
                let instant = key.0;
                greatest = Some((index, instant, found));
            }
        }
        let Some((index, _, found)) = greatest else {
            return Ok(None);
        };
        self.position_of(found[0].as_ref(), found[1].as_ref(), index)
            .map(Some)
    }

    /// The position of each record given as JSON text, in order: `None` for a record that
    /// lacks a cursor field or holds null there when the mode lets it pass
    /// ([`on_missing`](Self::on_missing)); an error otherwise, as for
    /// [`greatest_position_in_json`](Self::greatest_position_in_json). Empty when no cursor is
    /// enabled.
    ///
    /// ```
    /// use cannectors_state::{CursorFields, FieldPath, OnMissingCursor};
    /// let fields = CursorFields::new(None, Some(FieldPath::parse("id").unwrap()))
    ///     .on_missing(OnMissingCursor::Skip);
    /// let positions = fields.positions_in_json([r#"{"id": 4}"#, r#"{"id": null}"#]).unwrap();
    /// assert_eq!(positions[0].as_ref().unwrap().id.as_ref().unwrap().to_string(), "4");
    /// assert!(positions[1].is_none());
    /// ```
    pub fn positions_in_json<'t>(
        &self,
        records: impl IntoIterator<Item = &'t str>,
    ) -> Result<Vec<Option<Position>>, CursorError> {
        if self.is_empty() {
            return Ok(Vec::new());
        }
        let paths = [
            self.timestamp.as_ref().map(FieldPath::segments),
            self.id.as_ref().map(FieldPath::segments),
        ];
        let records = records.into_iter();
        let mut positions = Vec::with_capacity(records.size_hint().0);
        for (index, text) in records.enumerate() {
            let found = project(text, paths).map_err(|error| CursorError::NotJson {
                index,
                reason: error.to_string(),
            })?;
            match self.position_of(found[0].as_ref(), found[1].as_ref(), index) {
                Ok(position) => positions.push(Some(position)),
                Err(error) if self.tolerates(&error) => positions.push(None),
                Err(error) => return Err(error),
            }
        }
        Ok(positions)
    }

    fn position_of(
        &self,
        timestamp: Option<&Value>,
        id: Option<&Value>,
        index: usize,
    ) -> Result<Position, CursorError> {
        let timestamp = match &self.timestamp {
            Some(path) => {
                let value = field(timestamp, path, index, "timestamp")?;
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
                let value = field(id, path, index, "id")?;
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

    /// The ordering key of a record from the values found at the cursor fields.
    fn key_of<'r>(
        &self,
        timestamp: Option<&'r Value>,
        id: Option<&'r Value>,
        index: usize,
    ) -> Result<Key<'r>, CursorError> {
        let instant = match &self.timestamp {
            Some(path) => {
                let value = field(timestamp, path, index, "timestamp")?;
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
                let value = field(id, path, index, "id")?;
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

/// [`Key`] with an id that may be borrowed from a record's text or owned (when it had to be
/// decoded from an escaped string).
type OwnedKey<'t> = (Option<DateTime<Utc>>, Option<OwnedId<'t>>);

/// An id in a [`OwnedKey`]; the derived order (integers first) is that of [`IdRef`].
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum OwnedId<'t> {
    Integer(i64),
    Text(Cow<'t, str>),
}

impl OwnedId<'_> {
    fn of(id: IdRef<'_>) -> OwnedId<'static> {
        match id {
            IdRef::Integer(integer) => OwnedId::Integer(integer),
            IdRef::Text(text) => OwnedId::Text(Cow::Owned(text.to_owned())),
        }
    }
}

/// The content of a JSON string written without escapes (most cursor values), read from its
/// text; `None` for any other JSON text.
/// The value of the JSON text of a string without escapes or of a small non-negative
/// integer, read without a parser; `None` for any other text.
fn plain_value(text: &str) -> Option<Value> {
    match plain_string(text) {
        Some(inner) => Some(Value::String(inner.to_owned())),
        None => small_integer(text).map(Value::from),
    }
}

fn plain_string(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('\\')).then_some(inner)
}

/// A JSON integer of up to 18 digits without a sign, which every parser reads as the same
/// `i64`; `None` for any other JSON text (`-0`, for one, is a double to serde_json).
fn small_integer(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The values of JSON texts found in record `index`.
fn parse_texts(texts: [Option<&str>; 2], index: usize) -> Result<[Option<Value>; 2], CursorError> {
    let parse = |text: Option<&str>| {
        text.map(serde_json::from_str::<Value>)
            .transpose()
            .map_err(|error| CursorError::NotJson {
                index,
                reason: error.to_string(),
            })
    };
    Ok([parse(texts[0])?, parse(texts[1])?])
}

/// The value found at a cursor field, checked for presence and null.
fn field<'r>(
    found: Option<&'r Value>,
    path: &FieldPath,
    index: usize,
    cursor: &'static str,
) -> Result<&'r Value, CursorError> {
    match found {
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

/// The values at the timestamp and id paths of one record.
type Found = [Option<Value>; 2];

/// Reads `text` once and builds only the values at `paths` (names, or array indexes written as
/// numbers, as [`FieldPath::get`] reads them); every other value is skipped unbuilt.
fn project(text: &str, paths: [Option<&[String]>; 2]) -> Result<Found, serde_json::Error> {
    let found = RefCell::new([None, None]);
    let mut deserializer = serde_json::Deserializer::from_str(text);
    Project {
        paths,
        found: &found,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(found.into_inner())
}

/// Walks one JSON value along the rest of each path that is still being followed.
struct Project<'p> {
    /// The segments left of each path, never empty; `None` for a path not followed here.
    paths: [Option<&'p [String]>; 2],
    found: &'p RefCell<Found>,
}

/// What to do with the value under one key or index.
enum Step<'p> {
    /// No path goes there.
    Skip,
    /// A path ends there: build the value and read every path within it.
    Build([Option<&'p [String]>; 2]),
    /// Paths continue below it.
    Descend([Option<&'p [String]>; 2]),
}

impl<'p> Project<'p> {
    fn step(&self, matches: impl Fn(&str) -> bool) -> Step<'p> {
        let mut below = [None, None];
        let mut ends = false;
        for (slot, path) in below.iter_mut().zip(self.paths) {
            if let Some((first, rest)) = path.and_then(<[String]>::split_first)
                && matches(first)
            {
                ends |= rest.is_empty();
                *slot = Some(rest);
            }
        }
        if ends {
            Step::Build(below)
        } else if below.iter().any(Option::is_some) {
            Step::Descend(below)
        } else {
            Step::Skip
        }
    }

    fn forget(&self, below: [Option<&[String]>; 2]) {
        let mut found = self.found.borrow_mut();
        for (slot, path) in found.iter_mut().zip(below) {
            if path.is_some() {
                *slot = None;
            }
        }
    }

    fn keep(&self, value: &Value, rests: [Option<&[String]>; 2]) {
        let mut found = self.found.borrow_mut();
        for (slot, rest) in found.iter_mut().zip(rests) {
            if let Some(rest) = rest {
                *slot = value_at(value, rest).cloned();
            }
        }
    }
}

fn value_at<'v>(value: &'v Value, segments: &[String]) -> Option<&'v Value> {
    segments
        .iter()
        .try_fold(value, |current, segment| match current {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

impl<'de> DeserializeSeed<'de> for Project<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Project<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<ObjectKey<'de>>()? {
            match self.step(|segment| segment == key.0) {
                Step::Skip => {
                    map.next_value::<IgnoredAny>()?;
                }
                Step::Build(rests) => {
                    let value: Value = map.next_value()?;
                    self.keep(&value, rests);
                }
                Step::Descend(paths) => {
                    // A key written twice counts once, with its last value, as in a parsed
                    // record: forget what an earlier occurrence held.
                    self.forget(paths);
                    map.next_value_seed(Project {
                        paths,
                        found: self.found,
                    })?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let step = self.step(|segment| segment.parse::<usize>() == Ok(index));
            let more = match step {
                Step::Skip => seq.next_element::<IgnoredAny>()?.is_some(),
                Step::Build(rests) => match seq.next_element::<Value>()? {
                    Some(value) => {
                        self.keep(&value, rests);
                        true
                    }
                    None => false,
                },
                Step::Descend(paths) => seq
                    .next_element_seed(Project {
                        paths,
                        found: self.found,
                    })?
                    .is_some(),
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }
}

/// An object key, borrowed from the text unless it holds escapes.
struct ObjectKey<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for ObjectKey<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = ObjectKey<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<ObjectKey<'de>, E> {
                Ok(ObjectKey(Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<ObjectKey<'de>, E> {
                Ok(ObjectKey(Cow::Owned(key.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    /// The greatest position read from parsed records, after checking that reading the same
    /// records as JSON text gives the same answer (or the same error).
    fn both(fields: &CursorFields, records: &[Value]) -> Result<Option<Position>, CursorError> {
        let texts: Vec<String> = records.iter().map(Value::to_string).collect();
        let parsed = fields.greatest_position(records);
        let from_text = fields.greatest_position_in_json(texts.iter().map(String::as_str));
        assert_eq!(parsed, from_text, "records: {texts:?}");
        parsed
    }

    #[test]
    fn greatest_position_orders_by_timestamp_then_id() {
        let records = [
            json!({"event": {"timestamp": "2026-01-01T00:00:00Z", "id": 99}}),
            json!({"event": {"timestamp": "2026-01-02T00:00:00Z", "id": 5}}),
            json!({"event": {"timestamp": "2026-01-02T01:00:00+01:00", "id": 7}}),
            json!({"event": {"timestamp": "2026-01-01T23:00:00Z", "id": 1000}}),
        ];
        let greatest = both(&keyset(), &records).unwrap().unwrap();
        assert_eq!(greatest.id, Some(CursorId::Integer(7)));
        assert_eq!(
            greatest.timestamp.unwrap().to_string(),
            "2026-01-02T01:00:00+01:00"
        );
    }

    #[test]
    fn json_text_is_read_along_the_paths_only() {
        let paths = fields(Some("a.0.ts"), Some("a.1"));
        let records = [
            json!({"skip": {"a": [9]}, "a": [{"ts": "2026-01-01T00:00:00Z", "x": [1, {"y": null}]}, 5]}),
            json!({"a": [{"ts": "2026-01-01T00:00:00Z"}, "5"], "tail": "\"quoted\" \u{e9}"}),
            json!({"a": [{"ts": 1767225600}, 7]}),
        ];
        let greatest = both(&paths, &records).unwrap().unwrap();
        assert_eq!(greatest.id, Some(CursorId::Text("5".to_owned())));
        // A path and a longer one through the same key; a key written with escapes.
        let texts = [r#"{"e\u0076ent": 1767225600}"#];
        let escaped = fields(Some("event"), None)
            .greatest_position_in_json(texts)
            .unwrap()
            .unwrap();
        assert_eq!(
            escaped.timestamp.unwrap().to_rfc3339_utc(),
            "2026-01-01T00:00:00Z"
        );
        let texts = [r#"{"event": {"id": 4}, "event": {"other": 3}}"#];
        assert!(matches!(
            fields(None, Some("event.id")).greatest_position_in_json(texts),
            Err(CursorError::Missing { .. })
        ));
        let texts = [r#"{"ev\u0065nt": {"id": 4}, "event": {"id": 3}}"#];
        assert_eq!(
            fields(None, Some("event.id"))
                .greatest_position_in_json(texts)
                .unwrap()
                .unwrap()
                .id,
            Some(CursorId::Integer(3))
        );
        let prefix = fields(Some("event"), Some("event.id"));
        assert!(matches!(
            both(&prefix, &[json!({"event": {"id": 1}})]),
            Err(CursorError::NotATimestamp { .. })
        ));
    }

    #[test]
    fn text_that_is_not_json_names_the_record() {
        let error = keyset()
            .greatest_position_in_json([r#"{"event": {}}"#, "{\"event\": "])
            .unwrap_err();
        assert!(
            matches!(error, CursorError::Missing { index: 0, .. }),
            "{error}"
        );
        let error = keyset()
            .greatest_position_in_json(["{\"event\": "])
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("record 0 of the batch (counting from 0) is not JSON"),
            "{error}"
        );
    }

    #[test]
    fn greatest_position_of_an_unsorted_batch_with_only_an_id() {
        let records = [json!({"id": 3}), json!({"id": 10}), json!({"id": 9})];
        let greatest = both(&fields(None, Some("id")), &records).unwrap().unwrap();
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
        assert_eq!(both(&keyset(), &[]).unwrap(), None);
        let records = [json!({"anything": 1})];
        assert_eq!(both(&CursorFields::default(), &records).unwrap(), None);
    }

    #[test]
    fn a_record_without_the_field_names_its_index_and_the_path() {
        let records = [
            json!({"event": {"timestamp": "2026-01-01T00:00:00Z", "id": 1}}),
            json!({"event": {"id": 2}}),
        ];
        let error = both(&keyset(), &records).unwrap_err();
        assert_eq!(
            error.to_string(),
            "record 1 of the batch (counting from 0) has no `event.timestamp`: every record needs \
             the timestamp cursor field; check the path of that field against the records the \
             source returns"
        );
    }

    #[test]
    fn a_record_with_null_in_the_field_is_an_error() {
        let records = [json!({"event": {"timestamp": "2026-01-01T00:00:00Z", "id": null}})];
        let error = both(&keyset(), &records).unwrap_err();
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
        let error = both(&keyset(), &records).unwrap_err();
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
        let error = both(&keyset(), &records).unwrap_err();
        assert!(
            error.to_string().starts_with(
                "record 0 of the batch (counting from 0), field `event.id`: [1] is not an id"
            ),
            "{error}"
        );
    }

    #[test]
    fn cursor_values_given_as_text_read_as_the_record_would() {
        let fields = fields(Some("ts"), Some("id"));
        let of_texts =
            |texts: &[[Option<&str>; 2]]| fields.greatest_position_of_found(texts.iter().copied());
        let of_records = |texts: &[&str]| fields.greatest_position_in_json(texts.iter().copied());
        // serde_json reads `-0` as a double, which is no id.
        assert_eq!(
            of_texts(&[[Some("\"2026-01-01T00:00:00Z\""), Some("-0")]]),
            of_records(&[r#"{"ts": "2026-01-01T00:00:00Z", "id": -0}"#])
        );
        assert!(of_texts(&[[Some("\"2026-01-01T00:00:00Z\""), Some("-0")]]).is_err());
        // Escaped strings are decoded, and order as their text.
        let greatest = of_texts(&[
            [Some("\"2026-01-01T00:00:00Z\""), Some("\"b\"")],
            [Some("\"2026-01-01T00:00:00\\u005a\""), Some("\"\\u0063\"")],
            [Some("\"2026-01-01T00:00:00Z\""), Some("\"a\"")],
        ])
        .unwrap()
        .unwrap();
        assert_eq!(greatest.id, Some(CursorId::Text("c".to_owned())));
        assert_eq!(
            greatest.timestamp.unwrap().to_string(),
            "2026-01-01T00:00:00Z"
        );
        // A text that is not JSON names the record.
        let error = of_texts(&[
            [Some("\"2026-01-01T00:00:00Z\""), Some("1")],
            [None, Some("{")],
        ])
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("record 1 of the batch (counting from 0) is not JSON: EOF"),
            "{error}"
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
