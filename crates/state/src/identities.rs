//! The records delivered inside a lookback window, known by identity, so that a run reading
//! the window again delivers only what it had not delivered yet.
//!
//! An identity is a 64-bit XXH3 hash (seed 0, a specified algorithm, so the same in every
//! build and version) of what tells a record apart: its id, chosen fields, or its whole text.
//! What is kept is a hash of the identity with the record's exact timestamp, because a record
//! updated later (a new timestamp) is a new version to deliver, grouped by the second of that
//! timestamp, because the window is pruned by timestamp. In the state file they are one JSON
//! object from RFC 3339 seconds (UTC) to the entries of that second, 8 bytes each, one after
//! another in one Z85 string (ZeroMQ's base-85 text encoding, whose alphabet needs no escaping
//! in JSON): 10 bytes an identity, so that a window of 100000 records whose timestamps all
//! differ stays under 1 MiB.

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

/// The identities of the records delivered inside the lookback window.
///
/// Each entry is one 64-bit hash of a record's exact timestamp and its identity, so that a
/// record updated later (a new timestamp) is a new version to deliver; entries are grouped by
/// the second of their timestamp, which is all pruning needs and keeps the file small when
/// every record has a timestamp of its own.
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
    /// Entries by the second (Unix time) of the record's timestamp.
    by_second: BTreeMap<i64, BTreeSet<u64>>,
    len: usize,
}

/// Bytes an entry takes before Z85.
const ENTRY_BYTES: usize = 8;

const EXPECT_IDENTITIES: &str = "it must be an object from RFC 3339 timestamps (whole seconds) \
                                 to Z85 strings of 8 bytes an identity";
const EXPECT_ENTRIES: &str = "it must be a Z85 string of 8 bytes an identity";

/// The entry of a record: its exact timestamp and its identity, hashed together.
fn entry(instant: DateTime<Utc>, identity: u64) -> u64 {
    let mut hasher = twox_hash::XxHash3_64::with_seed(0);
    hasher.write(&instant.timestamp().to_le_bytes());
    hasher.write(&instant.timestamp_subsec_nanos().to_le_bytes());
    hasher.write(&identity.to_le_bytes());
    hasher.finish()
}

impl Identities {
    /// Whether the record of `instant` with `identity` was delivered.
    pub fn contains(&self, instant: DateTime<Utc>, identity: u64) -> bool {
        self.by_second
            .get(&instant.timestamp())
            .is_some_and(|set| set.contains(&entry(instant, identity)))
    }

    /// Remembers a delivered record; `false` when it was known already.
    pub fn insert(&mut self, instant: DateTime<Utc>, identity: u64) -> bool {
        let added = self
            .by_second
            .entry(instant.timestamp())
            .or_default()
            .insert(entry(instant, identity));
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

    /// Forgets the identities of records older than the second of `start`, the beginning of
    /// the window the next run reads (those of that second stay: an inclusive `since` returns
    /// the records at `start` again), then, while more than `max` are left, those of the
    /// oldest seconds. Returns how many the bound made it forget: records that may be
    /// delivered again if a source returns them.
    pub fn prune(&mut self, start: DateTime<Utc>, max: usize) -> usize {
        let kept = self.by_second.split_off(&start.timestamp());
        self.by_second = kept;
        self.len = self.by_second.values().map(BTreeSet::len).sum();
        let mut dropped = 0;
        while self.len > max {
            let Some(mut oldest) = self.by_second.first_entry() else {
                break;
            };
            let excess = self.len - max;
            let forgotten = if oldest.get().len() <= excess {
                oldest.remove().len()
            } else {
                for _ in 0..excess {
                    oldest.get_mut().pop_first();
                }
                excess
            };
            self.len -= forgotten;
            dropped += forgotten;
        }
        dropped
    }

    /// The state file's form: `{"<second, RFC 3339 UTC>": "<Z85 of 8 bytes an entry>"}`.
    pub(crate) fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (second, set) in &self.by_second {
            let Some(instant) = DateTime::<Utc>::from_timestamp(*second, 0) else {
                continue;
            };
            let mut bytes = Vec::with_capacity(set.len() * ENTRY_BYTES);
            for entry in set {
                bytes.extend_from_slice(&entry.to_le_bytes());
            }
            map.insert(
                instant.to_rfc3339_opts(SecondsFormat::Secs, true),
                Value::String(z85::encode(bytes)),
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
        for (second_text, entries) in map {
            let second = DateTime::parse_from_rfc3339(second_text)
                .ok()
                .filter(|instant| instant.timestamp_subsec_nanos() == 0)
                .ok_or_else(|| {
                    invalid(
                        key.to_owned(),
                        &Value::String(second_text.clone()),
                        EXPECT_IDENTITIES,
                    )
                })?
                .timestamp();
            let at = format!("{key}.{second_text}");
            let bytes = match entries {
                // Z85 proper: whole groups of 5 characters (the crate's padded tail form is not
                // written here, so it is refused).
                Value::String(text) if text.len() % 5 == 0 => z85::decode(text)
                    .ok()
                    .filter(|bytes| bytes.len() % ENTRY_BYTES == 0)
                    .ok_or_else(|| invalid(at.clone(), entries, EXPECT_ENTRIES))?,
                other => return Err(invalid(at, other, EXPECT_ENTRIES)),
            };
            let set = identities.by_second.entry(second).or_default();
            for chunk in bytes.chunks_exact(ENTRY_BYTES) {
                let mut word = [0_u8; ENTRY_BYTES];
                word.copy_from_slice(chunk);
                set.insert(u64::from_le_bytes(word));
            }
        }
        identities.len = identities.by_second.values().map(BTreeSet::len).sum();
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
        identities.insert(at("2026-01-01T00:00:01Z"), 1);
        let json = identities.to_json();
        let seconds: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(seconds, ["2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"]);
        // Three entries of 8 bytes in the first second: 24 bytes, 30 characters of Z85.
        assert_eq!(json["2026-01-01T00:00:00Z"].as_str().unwrap().len(), 30);
        let read = Identities::from_json("identities", &json).unwrap();
        assert_eq!(read, identities);
        assert_eq!(read.len(), 4);
        assert!(read.contains(at("2026-01-01T00:00:00.5Z"), 0xabc));
        assert!(
            !read.contains(at("2026-01-01T00:00:00.6Z"), 0xabc),
            "another version"
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
        // Within one second, exactly the excess goes.
        let mut same_second = Identities::default();
        for identity in 0..10 {
            same_second.insert(at("2026-01-01T00:00:00Z"), identity);
        }
        assert_eq!(same_second.prune(at("2025-01-01T00:00:00Z"), 7), 3);
        assert_eq!(same_second.len(), 7);
    }

    #[test]
    fn a_bad_identities_section_names_the_key_and_the_form() {
        let problem = |value: Value| {
            Identities::from_json("identities", &value)
                .unwrap_err()
                .to_string()
        };
        let object = "but it must be an object from RFC 3339 timestamps (whole seconds) to \
                      Z85 strings of 8 bytes an identity";
        assert_eq!(
            problem(json!(["00"])),
            format!("`identities` holds [\"00\"], {object}")
        );
        assert_eq!(
            problem(json!({"yesterday": "0000000001"})),
            format!("`identities` holds \"yesterday\", {object}")
        );
        assert_eq!(
            problem(json!({"2026-01-01T00:00:00.5Z": "0000000001"})),
            format!("`identities` holds \"2026-01-01T00:00:00.5Z\", {object}")
        );
        let entries = "but it must be a Z85 string of 8 bytes an identity";
        // Not whole groups of five characters; one group (4 bytes, half an identity); a
        // character outside the Z85 alphabet.
        for text in ["0000", "00000", "0000~00000"] {
            assert_eq!(
                problem(json!({"2026-01-01T00:00:00Z": text})),
                format!("`identities.2026-01-01T00:00:00Z` holds \"{text}\", {entries}")
            );
        }
        assert_eq!(
            problem(json!({"2026-01-01T00:00:00Z": 5})),
            format!("`identities.2026-01-01T00:00:00Z` holds 5, {entries}")
        );
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
