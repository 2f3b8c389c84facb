//! The records delivered inside a lookback window, known by identity, so that a run reading
//! the window again delivers only what it had not delivered yet.
//!
//! An identity is a 64-bit XXH3 hash (seed 0, a specified algorithm, so the same in every
//! build and version) of what tells a record apart: its id, chosen fields, or its whole text.
//! Identities are kept per record timestamp, because a record updated later (a new timestamp)
//! is a new version to deliver, and because the window is pruned by timestamp. In the state
//! file they are one JSON object from RFC 3339 instants (UTC) to the hashes of that instant,
//! each written as 16 lower-case hex digits, one after another in one string: 16 bytes an
//! identity, a tenth of what a list of JSON numbers with their indentation would take.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hasher as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::cursor::CursorId;
use crate::path::FieldPath;
use crate::position::Position;
use crate::state::StateFormatError;

/// What tells one record from another, for recognising a record delivered before.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Identity {
    /// The id cursor's value: read with the cursors already, so no record is read again.
    Id,
    /// The values at these fields, taken together.
    Fields(Vec<FieldPath>),
    /// The record's whole JSON text, as the source sent it.
    Text,
}

impl Identity {
    /// The identity of the record `text` whose cursors are at `position`.
    ///
    /// ```
    /// use cannectors_state::{CursorId, Identity, Position};
    /// let at = Position { timestamp: None, id: Some(CursorId::Integer(7)) };
    /// let same_id = Identity::Id.of(r#"{"id": 7, "v": 1}"#, &at);
    /// assert_eq!(same_id, Identity::Id.of(r#"{"id": 7, "v": 2}"#, &at));
    /// assert_ne!(Identity::Text.of(r#"{"id": 7, "v": 1}"#, &at), Identity::Text.of(r#"{"id": 7, "v": 2}"#, &at));
    /// ```
    pub fn of(&self, text: &str, position: &Position) -> u64 {
        let mut hasher = twox_hash::XxHash3_64::with_seed(0);
        match (self, &position.id) {
            (Identity::Id, Some(CursorId::Integer(id))) => {
                hasher.write(b"i");
                hasher.write(&id.to_le_bytes());
            }
            (Identity::Id, Some(CursorId::Text(id))) => {
                hasher.write(b"s");
                hasher.write(id.as_bytes());
            }
            (Identity::Fields(paths), _) => {
                // Only here is a record parsed again; a record that does not parse (it did
                // when its cursors were read) counts by its text.
                match serde_json::from_str::<Value>(text) {
                    Ok(record) => {
                        for path in paths {
                            let value = path.get(&record).unwrap_or(&Value::Null).to_string();
                            hasher.write(&(value.len() as u64).to_le_bytes());
                            hasher.write(value.as_bytes());
                        }
                    }
                    Err(_) => hasher.write(text.as_bytes()),
                }
            }
            (Identity::Text | Identity::Id, _) => hasher.write(text.as_bytes()),
        }
        hasher.finish()
    }
}

/// The identities of the records delivered inside the lookback window, by record timestamp.
///
/// ```
/// use cannectors_state::Identities;
/// let at = |text: &str| chrono::DateTime::parse_from_rfc3339(text).unwrap().to_utc();
/// let mut delivered = Identities::default();
/// delivered.insert(at("2026-01-01T00:00:00Z"), 0xfeed);
/// delivered.insert(at("2026-01-01T00:10:00Z"), 0xbeef);
/// assert!(delivered.contains(at("2026-01-01T00:00:00Z"), 0xfeed));
/// assert!(!delivered.contains(at("2026-01-01T00:10:00Z"), 0xfeed));
/// assert_eq!(delivered.prune(at("2026-01-01T00:05:00Z"), 100), 0);
/// assert_eq!(delivered.len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identities {
    by_instant: BTreeMap<DateTime<Utc>, BTreeSet<u64>>,
    len: usize,
}

/// 16 hex digits an identity.
const HEX_DIGITS: usize = 16;

const EXPECT_IDENTITIES: &str = "it must be an object from RFC 3339 timestamps to strings of \
                                 16 hex digits an identity";
const EXPECT_HASHES: &str = "it must be a string of hex digits, 16 an identity";

impl Identities {
    /// Whether the record of `instant` with `identity` was delivered.
    pub fn contains(&self, instant: DateTime<Utc>, identity: u64) -> bool {
        self.by_instant
            .get(&instant)
            .is_some_and(|set| set.contains(&identity))
    }

    /// Remembers a delivered record; `false` when it was known already.
    pub fn insert(&mut self, instant: DateTime<Utc>, identity: u64) -> bool {
        let added = self.by_instant.entry(instant).or_default().insert(identity);
        self.len += usize::from(added);
        added
    }

    /// How many identities are kept.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets the identities of records older than `start`, the beginning of the window the
    /// next run reads (those at `start` stay: an inclusive `since` returns them again), then,
    /// while more than `max` are left, those of the oldest timestamps. Returns how many the
    /// bound made it forget: records that may be delivered again if a source returns them.
    pub fn prune(&mut self, start: DateTime<Utc>, max: usize) -> usize {
        let kept = self.by_instant.split_off(&start);
        self.by_instant = kept;
        self.len = self.by_instant.values().map(BTreeSet::len).sum();
        let mut dropped = 0;
        while self.len > max {
            let Some((_, oldest)) = self.by_instant.pop_first() else {
                break;
            };
            self.len -= oldest.len();
            dropped += oldest.len();
        }
        dropped
    }

    /// The state file's form: `{"<RFC 3339 UTC>": "<16 hex digits an identity>", ...}`.
    pub(crate) fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (instant, set) in &self.by_instant {
            let mut hashes = String::with_capacity(set.len() * HEX_DIGITS);
            for identity in set {
                hashes.push_str(&format!("{identity:016x}"));
            }
            map.insert(
                instant.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                Value::String(hashes),
            );
        }
        Value::Object(map)
    }

    /// Reads the form [`to_json`](Self::to_json) writes, the key of its section being `key`.
    pub(crate) fn from_json(key: &str, value: &Value) -> Result<Identities, StateFormatError> {
        let invalid = |key: String, value: &Value, expected| StateFormatError::Invalid {
            key,
            value: crate::cursor::excerpt(value),
            expected,
        };
        let Value::Object(map) = value else {
            return Err(invalid(key.to_owned(), value, EXPECT_IDENTITIES));
        };
        let mut identities = Identities::default();
        for (instant_text, hashes) in map {
            let instant = DateTime::parse_from_rfc3339(instant_text)
                .map_err(|_| {
                    invalid(
                        key.to_owned(),
                        &Value::String(instant_text.clone()),
                        EXPECT_IDENTITIES,
                    )
                })?
                .to_utc();
            let at = format!("{key}.{instant_text}");
            let Value::String(hashes) = hashes else {
                return Err(invalid(at, hashes, EXPECT_HASHES));
            };
            if hashes.len() % HEX_DIGITS != 0 || !hashes.is_ascii() {
                return Err(invalid(at, &Value::String(hashes.clone()), EXPECT_HASHES));
            }
            for start in (0..hashes.len()).step_by(HEX_DIGITS) {
                let digits = &hashes[start..start + HEX_DIGITS];
                let identity = u64::from_str_radix(digits, 16).map_err(|_| {
                    invalid(at.clone(), &Value::String(hashes.clone()), EXPECT_HASHES)
                })?;
                identities.insert(instant, identity);
            }
        }
        Ok(identities)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn identities_round_trip_through_their_compact_form() {
        let mut identities = Identities::default();
        identities.insert(at("2026-01-01T00:00:00Z"), 1);
        identities.insert(at("2026-01-01T00:00:00Z"), u64::MAX);
        identities.insert(at("2026-01-01T01:00:00.5+01:00"), 0xabc);
        let json = identities.to_json();
        assert_eq!(
            json,
            json!({
                "2026-01-01T00:00:00Z": "0000000000000001ffffffffffffffff",
                "2026-01-01T00:00:00.500Z": "0000000000000abc",
            })
        );
        assert_eq!(
            Identities::from_json("identities", &json).unwrap(),
            identities
        );
    }

    #[test]
    fn pruning_keeps_the_window_start_and_forgets_what_is_older() {
        let mut identities = Identities::default();
        identities.insert(at("2026-01-01T00:00:00Z"), 1);
        identities.insert(at("2026-01-01T00:05:00Z"), 2);
        identities.insert(at("2026-01-01T00:10:00Z"), 3);
        assert_eq!(identities.prune(at("2026-01-01T00:05:00Z"), 10), 0);
        assert!(!identities.contains(at("2026-01-01T00:00:00Z"), 1));
        assert!(identities.contains(at("2026-01-01T00:05:00Z"), 2));
        assert_eq!(identities.len(), 2);
    }

    #[test]
    fn the_bound_drops_the_oldest_and_says_how_many() {
        let mut identities = Identities::default();
        for second in 0..10 {
            identities.insert(
                at("2026-01-01T00:00:00Z") + chrono::TimeDelta::seconds(second),
                7,
            );
        }
        assert_eq!(identities.prune(at("2025-01-01T00:00:00Z"), 4), 6);
        assert_eq!(identities.len(), 4);
        assert!(identities.contains(at("2026-01-01T00:00:09Z"), 7));
        assert!(!identities.contains(at("2026-01-01T00:00:05Z"), 7));
    }

    #[test]
    fn a_bad_identities_section_names_the_key_and_the_form() {
        let problem = |value: Value| {
            Identities::from_json("identities", &value)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            problem(json!(["00"])),
            "`identities` holds [\"00\"], but it must be an object from RFC 3339 timestamps to \
             strings of 16 hex digits an identity"
        );
        assert_eq!(
            problem(json!({"yesterday": "0000000000000001"})),
            "`identities` holds \"yesterday\", but it must be an object from RFC 3339 \
             timestamps to strings of 16 hex digits an identity"
        );
        assert_eq!(
            problem(json!({"2026-01-01T00:00:00Z": "00001"})),
            "`identities.2026-01-01T00:00:00Z` holds \"00001\", but it must be a string of hex \
             digits, 16 an identity"
        );
        assert_eq!(
            problem(json!({"2026-01-01T00:00:00Z": "000000000000000g"})),
            "`identities.2026-01-01T00:00:00Z` holds \"000000000000000g\", but it must be a \
             string of hex digits, 16 an identity"
        );
        assert!(Identities::from_json("identities", &json!({"2026-01-01T00:00:00Z": 5})).is_err());
    }

    #[test]
    fn identities_differ_by_kind_of_id_and_by_field_values() {
        let id = |id: CursorId| Position {
            timestamp: None,
            id: Some(id),
        };
        assert_ne!(
            Identity::Id.of("{}", &id(CursorId::Integer(42))),
            Identity::Id.of("{}", &id(CursorId::from("42")))
        );
        let fields = Identity::Fields(vec![
            FieldPath::parse("a").unwrap(),
            FieldPath::parse("b").unwrap(),
        ]);
        let none = Position::default();
        assert_eq!(
            fields.of(r#"{"a": 1, "b": "x", "c": 1}"#, &none),
            fields.of(r#"{"b": "x", "c": 2, "a": 1}"#, &none)
        );
        assert_ne!(
            fields.of(r#"{"a": 1, "b": "x"}"#, &none),
            fields.of(r#"{"a": 1, "b": "y"}"#, &none)
        );
    }
}
