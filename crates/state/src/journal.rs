//! The journal of a lookback window's identities: the file store keeps them beside the state
//! file, in one of two files (`<name>.idents-a`, `<name>.idents-b`), so that a commit appends
//! what the batch added (a few kilobytes) instead of writing the whole window again (about a
//! megabyte for 100000 records).
//!
//! A journal holds lines `<RFC 3339 second> <Z85 entries>\n`, the text of the state file's
//! inline form, one line for each second a commit added to (a second may have several). The
//! state file's `identities` section is then a reference: which file, how many of its first
//! bytes count, how many identities they must give, the second before which lines are
//! forgotten entries, and a checksum of those bytes. Bytes beyond the counted ones are what an
//! interrupted commit appended: ignored, and cut by the next commit. When the file holds much
//! more than the live entries, or a change is not an addition, a commit writes the live entries
//! into the other file (never into the one the state file refers to) and refers to it.

use std::fmt;
use std::hash::Hasher as _;
use std::io;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use twox_hash::XxHash3_64;

use crate::state::StateFormatError;

/// The two files a journal alternates between.
pub(crate) const SLOT_SUFFIXES: [&str; 2] = [".idents-a", ".idents-b"];

/// A journal may grow to twice the size of its live entries, plus this, before a commit writes
/// the live entries into the other file.
pub(crate) const COMPACT_FLOOR: u64 = 64 * 1024;

/// One of the two journal files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    A,
    B,
}

impl Slot {
    /// The file that is not this one.
    pub(crate) fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    /// The suffix added to the pipeline name.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Slot::A => SLOT_SUFFIXES[0],
            Slot::B => SLOT_SUFFIXES[1],
        }
    }
}

/// What the state file says of its journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JournalRef {
    /// The file.
    pub(crate) slot: Slot,
    /// How many of its first bytes count.
    pub(crate) bytes: u64,
    /// How many identities they give, lines of seconds before `since` left out.
    pub(crate) count: u64,
    /// Lines of seconds before this one are forgotten entries.
    pub(crate) since: i64,
    /// XXH3 (seed 0) of the first `bytes` bytes.
    pub(crate) checksum: u64,
}

const KEYS: &[&str] = &["journal", "bytes", "count", "since", "checksum"];
const ALLOWED: &str = "journal, bytes, count, since, checksum";
const EXPECT_JOURNAL: &str = "it must name one of the pipeline's two journal files beside the \
                              state file, `<name>.idents-a` or `<name>.idents-b`";
const EXPECT_COUNT: &str = "it must be a non-negative integer";
const EXPECT_SECOND: &str =
    "it must be an RFC 3339 timestamp of a whole second such as \"2026-01-01T00:00:00Z\"";
const EXPECT_CHECKSUM: &str =
    "it must be 16 hexadecimal digits, the XXH3 hash of the journal's first `bytes` bytes";

impl JournalRef {
    /// The file's name for the pipeline `pipeline`.
    pub(crate) fn file_name(&self, pipeline: &str) -> String {
        format!("{pipeline}{}", self.slot.suffix())
    }

    /// The state file's `identities` section.
    pub(crate) fn to_json(&self, pipeline: &str) -> Value {
        let mut map = Map::new();
        map.insert("journal".into(), Value::String(self.file_name(pipeline)));
        map.insert("bytes".into(), Value::from(self.bytes));
        map.insert("count".into(), Value::from(self.count));
        if let Some(since) = DateTime::<Utc>::from_timestamp(self.since, 0) {
            map.insert(
                "since".into(),
                Value::String(since.to_rfc3339_opts(SecondsFormat::Secs, true)),
            );
        }
        map.insert(
            "checksum".into(),
            Value::String(format!("{:016x}", self.checksum)),
        );
        Value::Object(map)
    }

    /// Takes the `identities` section out of `document` when it refers to a journal of the
    /// pipeline `pipeline`; an inline section stays where it is.
    pub(crate) fn take(
        document: &mut Value,
        pipeline: &str,
    ) -> Result<Option<JournalRef>, StateFormatError> {
        let Some(map) = document.as_object_mut() else {
            return Ok(None);
        };
        let is_reference = map
            .get("identities")
            .and_then(Value::as_object)
            .is_some_and(|section| section.contains_key("journal"));
        if !is_reference {
            return Ok(None);
        }
        let Some(Value::Object(section)) = map.remove("identities") else {
            return Ok(None);
        };
        if let Some(key) = section.keys().find(|key| !KEYS.contains(&key.as_str())) {
            return Err(StateFormatError::UnknownKey {
                key: format!("identities.{key}"),
                suggestion: None,
                allowed: ALLOWED,
            });
        }
        let field = |key: &'static str, expected: &'static str| {
            let value = section.get(key).unwrap_or(&Value::Null);
            move || StateFormatError::Invalid {
                key: format!("identities.{key}"),
                value: match value {
                    Value::Null => "nothing".into(),
                    other => crate::cursor::excerpt(other),
                },
                expected,
            }
        };
        let slot = match section.get("journal").and_then(Value::as_str) {
            Some(name) if name == format!("{pipeline}{}", Slot::A.suffix()) => Slot::A,
            Some(name) if name == format!("{pipeline}{}", Slot::B.suffix()) => Slot::B,
            _ => return Err(field("journal", EXPECT_JOURNAL)()),
        };
        let count_of = |key: &'static str| {
            section
                .get(key)
                .and_then(Value::as_u64)
                .ok_or_else(field(key, EXPECT_COUNT))
        };
        let (bytes, count) = (count_of("bytes")?, count_of("count")?);
        let since = section
            .get("since")
            .and_then(Value::as_str)
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .filter(|instant| instant.timestamp_subsec_nanos() == 0)
            .ok_or_else(field("since", EXPECT_SECOND))?
            .timestamp();
        let checksum = section
            .get("checksum")
            .and_then(Value::as_str)
            .filter(|text| text.len() == 16)
            .and_then(|text| u64::from_str_radix(text, 16).ok())
            .ok_or_else(field("checksum", EXPECT_CHECKSUM))?;
        Ok(Some(JournalRef {
            slot,
            bytes,
            count,
            since,
            checksum,
        }))
    }
}

/// What a writer knows of the journal the state file refers to: enough to append to it.
#[derive(Clone)]
pub(crate) struct JournalTail {
    /// The reference the state file holds.
    pub(crate) reference: JournalRef,
    /// XXH3 of the counted bytes, to go on with the bytes appended.
    pub(crate) hasher: XxHash3_64,
    /// The version of the identities the counted bytes hold, when this writer wrote them.
    pub(crate) version: Option<(u64, u64)>,
}

impl fmt::Debug for JournalTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalTail")
            .field("reference", &self.reference)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// XXH3 (seed 0) of `bytes`, as a hasher that can go on.
pub(crate) fn hasher_of(bytes: &[u8]) -> XxHash3_64 {
    let mut hasher = XxHash3_64::with_seed(0);
    hasher.write(bytes);
    hasher
}

/// What is wrong with the journal of identities a state file refers to.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalProblem {
    /// The journal file does not exist.
    #[error("it is missing")]
    Missing,
    /// The journal file cannot be read.
    #[error("it cannot be read: {0}")]
    Unreadable(io::Error),
    /// The journal is shorter than the part the state file counts on.
    #[error(
        "it holds {length} bytes, but the state file counts on its first {expected}: it was cut \
         short"
    )]
    Short {
        /// The journal's length.
        length: u64,
        /// The bytes the state file counts on.
        expected: u64,
    },
    /// The bytes the state file counts on are not those it was written with.
    #[error(
        "its first {bytes} bytes have checksum {found:016x}, but the state file recorded \
         {expected:016x}: they were changed since"
    )]
    Checksum {
        /// The bytes the state file counts on.
        bytes: u64,
        /// The checksum recorded in the state file.
        expected: u64,
        /// The checksum of the bytes found.
        found: u64,
    },
    /// The journal gives another number of identities than the state file recorded.
    #[error("it holds {found} identities from {since} on, but the state file recorded {expected}")]
    Count {
        /// How many it holds.
        found: u64,
        /// How many the state file recorded.
        expected: u64,
        /// The second from which they count, RFC 3339.
        since: String,
    },
    /// A line is not `<RFC 3339 second> <Z85 entries>`.
    #[error("its line {line} {problem}")]
    Line {
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
}
