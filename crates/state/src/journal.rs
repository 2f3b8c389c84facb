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
//!
//! The counted bytes are synced before a state file counts on them, but not at every commit:
//! a commit appends its lines without a sync and carries them in the state file as well (its
//! `tail`, the lines that follow the counted bytes), which is synced anyway. Once the tail
//! exceeds [`TAIL_MAX`], a commit syncs the journal and counts the tail's bytes. A commit thus
//! pays one sync fewer most of the time, and a crash loses nothing: the journal's bytes beyond
//! the counted ones are never read, and the next commit writes the tail there again.

use std::fmt;
use std::hash::Hasher as _;
use std::io;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use twox_hash::XxHash3_64;

use crate::state::StateFormatError;

/// The two files a journal alternates between.
pub(crate) const SLOT_SUFFIXES: [&str; 2] = [".idents-a", ".idents-b"];

/// A journal may grow to twice the size of its live entries, plus this, before a commit writes
/// the live entries into the other file.
pub(crate) const COMPACT_FLOOR: u64 = 64 * 1024;

/// The journal is synced, and the lines the state file carries counted, once they exceed this.
/// It bounds what each commit writes to the state file beyond its cursors; a commit of a run
/// that adds 5,000 identities (50 KB of lines) then syncs the journal every fifth commit.
pub(crate) const TAIL_MAX: usize = 256 * 1024;

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
    /// The lines that follow the counted bytes, each with its line end: appended to the
    /// journal without a sync, so carried by the state file.
    pub(crate) tail: Arc<str>,
}

const KEYS: &[&str] = &["journal", "bytes", "count", "since", "checksum", "tail"];
const ALLOWED: &str = "journal, bytes, count, since, checksum, tail";
const EXPECT_JOURNAL: &str = "it must name one of the pipeline's two journal files beside the \
                              state file, `<name>.idents-a` or `<name>.idents-b`";
const EXPECT_COUNT: &str = "it must be a non-negative integer";
const EXPECT_SECOND: &str =
    "it must be an RFC 3339 timestamp of a whole second such as \"2026-01-01T00:00:00Z\"";
const EXPECT_CHECKSUM: &str =
    "it must be 16 hexadecimal digits, the XXH3 hash of the journal's first `bytes` bytes";
/// What [`JournalRef::to_json`] puts in place of the tail's lines, and how it is written in the
/// text: no journal line can be this.
const TAIL_PLACEHOLDER: &str = "\u{1}tail\u{1}";
const TAIL_PLACEHOLDER_JSON: &str = "\"\\u0001tail\\u0001\"";

const EXPECT_TAIL: &str = "it must be a list of journal lines (strings), those that follow the \
                           journal's first `bytes` bytes";

impl JournalRef {
    /// The file's name for the pipeline `pipeline`.
    pub(crate) fn file_name(&self, pipeline: &str) -> String {
        format!("{pipeline}{}", self.slot.suffix())
    }

    /// The state file's `identities` section, with a placeholder for the tail's lines that
    /// [`write_tail`](Self::write_tail) replaces.
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
        if !self.tail.is_empty() {
            map.insert("tail".into(), Value::String(TAIL_PLACEHOLDER.into()));
        }
        Value::Object(map)
    }

    /// Puts the tail's lines in `text`, the state file's text written with
    /// [`to_json`](Self::to_json), in place of the placeholder `to_json` left: they are
    /// written straight into the text rather than built as JSON values first, since they are
    /// most of the file.
    pub(crate) fn write_tail(&self, text: &mut String) {
        let Some(at) = text.find(TAIL_PLACEHOLDER_JSON) else {
            return;
        };
        let rest = text.split_off(at + TAIL_PLACEHOLDER_JSON.len());
        text.truncate(at);
        text.reserve(self.tail.len() + self.tail.len() / 8 + 16 + rest.len());
        let lines = text;
        lines.push('[');
        for (index, line) in self.tail.lines().enumerate() {
            if index > 0 {
                lines.push(',');
            }
            // RFC 3339, a space and the Z85 alphabet hold nothing JSON escapes.
            lines.push_str("\n      \"");
            lines.push_str(line);
            lines.push('"');
        }
        lines.push_str("\n    ]");
        lines.push_str(&rest);
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
        let mut tail = String::new();
        match section.get("tail") {
            None => {}
            Some(Value::Array(lines)) => {
                for line in lines {
                    match line.as_str() {
                        Some(line) if !line.is_empty() && !line.contains(['\n', '\r']) => {
                            tail.push_str(line);
                            tail.push('\n');
                        }
                        _ => return Err(field("tail", EXPECT_TAIL)()),
                    }
                }
            }
            Some(_) => return Err(field("tail", EXPECT_TAIL)()),
        }
        Ok(Some(JournalRef {
            slot,
            bytes,
            count,
            since,
            checksum,
            tail: tail.into(),
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
    /// Whether the journal holds the reference's tail after the counted bytes, as this writer
    /// appended it (after a load it may hold anything there).
    pub(crate) tail_written: bool,
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
    /// A line of the state file's `identities.tail` is not `<RFC 3339 second> <Z85 entries>`.
    #[error("the line {line} of the state file's `identities.tail` {problem}")]
    TailLine {
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
}
