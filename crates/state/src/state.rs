//! The content of a state file: the committed cursors, the progress of a run in flight, and the
//! metadata the program adds; how it reads from and writes to JSON; and the transitions the
//! executor applies after each delivered batch.
//!
//! Reading is strict: an unknown key, a wrong type or an unreadable timestamp is an error naming
//! the key, because a silently ignored typo (`"timestamps"`) would restart a sync from scratch.

use std::path::PathBuf;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::cursor::{CursorId, Timestamp, excerpt};
use crate::identities::Identities;
use crate::json_kind::json_kind;
use crate::position::Position;

/// The state of one pipeline: where the next run starts, and where an interrupted run resumes.
///
/// A file written by hand with only `{"timestamp": "2026-01-01T00:00:00Z"}` is a valid state;
/// so is a file of the older tool with `lastTimestamp` / `lastId` (written back with the new
/// keys).
///
/// ```
/// use cannectors_state::State;
/// let state = State::from_json_str(r#"{"lastTimestamp": "2026-01-01 00:00:00", "lastId": 7}"#)
///     .unwrap();
/// assert_eq!(state.timestamp.as_ref().unwrap().to_rfc3339_utc(), "2026-01-01T00:00:00Z");
/// assert!(state.to_json_pretty().contains(r#""id": 7"#));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct State {
    /// The largest record timestamp delivered (in the order of [`Position`]).
    pub timestamp: Option<Timestamp>,
    /// The id of the greatest record delivered (in the order of [`Position`]).
    pub id: Option<CursorId>,
    /// The pagination offset reached.
    pub offset: Option<u64>,
    /// The run in flight, while a paginated run is going or after it was interrupted.
    pub run: Option<Run>,
    /// The pipeline that wrote the file (set by [`StateLock::commit`](crate::StateLock::commit)).
    pub pipeline: Option<String>,
    /// The absolute path of the pipeline file whose run wrote the file, when the writer said
    /// (set by [`StateLock::commit`](crate::StateLock::commit) from
    /// [`StateStore::set_pipeline_file`](crate::StateStore::set_pipeline_file)). Two pipeline
    /// files of the same name and storage share one state file; this tells them apart.
    pub pipeline_file: Option<PathBuf>,
    /// When the file was last written (set by [`StateLock::commit`](crate::StateLock::commit)).
    pub updated_at: Option<DateTime<Utc>>,
    /// The records delivered inside the lookback window, by identity (empty without
    /// `lookback`).
    pub identities: Identities,
    /// Where a pipeline that reads explicit ranges (windows) stands: the end of the last
    /// window it committed, and the window in flight.
    pub window: Option<WindowProgress>,
    /// A bounded run over a past range, kept beside the committed cursors, which it never
    /// moves.
    pub backfill: Option<Backfill>,
}

/// What a state file says about its writer: set by the store at every commit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Metadata<'a> {
    /// The pipeline's name.
    pub(crate) pipeline: Option<&'a str>,
    /// The pipeline file of the run that writes.
    pub(crate) pipeline_file: Option<&'a std::path::Path>,
    /// When the state was written.
    pub(crate) updated_at: Option<DateTime<Utc>>,
}

/// The progress of a pipeline that reads explicit ranges, one window after the other.
///
/// ```
/// use cannectors_state::State;
/// let state = State::from_json_str(
///     r#"{"window": {"end": "2026-01-02T00:00:00Z", "reading": "2026-01-03T00:00:00Z"}}"#,
/// )
/// .unwrap();
/// let window = state.window.unwrap();
/// assert_eq!(window.end.unwrap().to_rfc3339(), "2026-01-02T00:00:00+00:00");
/// assert!(window.reading.is_some());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WindowProgress {
    /// The end of the last window read completely: where the next window starts.
    pub end: Option<DateTime<Utc>>,
    /// The end of the window in flight, while it is being read or after its run was
    /// interrupted: a restarted run reads the same window again, from its saved position.
    pub reading: Option<DateTime<Utc>>,
}

/// A backfill: a run over the range `from`..`to` with its own progress, a state of its own
/// nested in the state file.
///
/// ```
/// use cannectors_state::{Backfill, State};
/// let from = "2026-01-01T00:00:00Z".parse().unwrap();
/// let to = "2026-02-01T00:00:00Z".parse().unwrap();
/// let mut state = State::from_json_str(r#"{"timestamp": "2026-03-01T00:00:00Z"}"#).unwrap();
/// state.backfill = Some(Backfill::start(from, to, chrono::Utc::now()));
/// let read = State::from_json_str(&state.to_json_pretty()).unwrap();
/// let backfill = read.backfill.unwrap();
/// assert!(!backfill.is_finished());
/// assert_eq!(backfill.progress.timestamp.unwrap().to_rfc3339_utc(), "2026-01-01T00:00:00Z");
/// assert_eq!(read.timestamp.unwrap().to_rfc3339_utc(), "2026-03-01T00:00:00Z");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Backfill {
    /// The start of the range.
    pub from: DateTime<Utc>,
    /// The end of the range (inclusive).
    pub to: DateTime<Utc>,
    /// When the backfill started.
    pub started_at: DateTime<Utc>,
    /// When it read the whole range; `None` while it is unfinished.
    pub completed_at: Option<DateTime<Utc>>,
    /// Its cursors, run section and window progress, moved as a run moves a state's own.
    pub progress: Box<State>,
}

impl Backfill {
    /// A backfill of `from`..`to` that has read nothing yet: its cursor starts at `from`.
    pub fn start(from: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>) -> Backfill {
        Backfill {
            from,
            to,
            started_at: now,
            completed_at: None,
            progress: Box::new(State {
                timestamp: Some(Timestamp::from_instant(from)),
                ..State::default()
            }),
        }
    }

    /// Whether it read its whole range.
    pub fn is_finished(&self) -> bool {
        self.completed_at.is_some()
    }
}

/// The progress of a paginated run that has not completed yet.
///
/// While it exists, the committed cursors stay where the run started, so that the run's
/// requests (built from them) stay the same, and a restarted run picks up at
/// [`resume`](Run::resume). It is made by [`State::record_progress`] (or read from a state
/// file) and ended by [`State::complete_run`] or [`State::discard_run`], never built by hand:
/// its parts only make sense together.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    started_at: DateTime<Utc>,
    batches: u64,
    offset: Option<u64>,
    seen: Position,
    resume: Value,
}

impl Run {
    /// When the run started.
    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    /// Batches delivered so far in this run.
    pub fn batches(&self) -> u64 {
        self.batches
    }

    /// The pagination offset reached so far in this run.
    pub fn offset(&self) -> Option<u64> {
        self.offset
    }

    /// The greatest position delivered so far in this run (empty before the first record).
    pub fn seen(&self) -> &Position {
        &self.seen
    }

    /// Where the source continues: opaque JSON that only the source that wrote it understands.
    pub fn resume(&self) -> &Value {
        &self.resume
    }
}

/// What is wrong with the content of a state file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateFormatError {
    /// The file holds nothing but white space.
    #[error(
        "it is empty; a state file holds a JSON object such as {{\"timestamp\": \
         \"2026-01-01T00:00:00Z\"}}"
    )]
    Empty,
    /// The file holds bytes that are not UTF-8 text.
    #[error("it is not text: the bytes at offset {byte} are not UTF-8")]
    NotText {
        /// Offset of the first byte that is not UTF-8.
        byte: usize,
    },
    /// The JSON stops before it is complete.
    #[error(
        "it ends in the middle of the JSON (line {line}, column {column}): it was cut short, \
         perhaps by a full disk or an interrupted copy"
    )]
    Truncated {
        /// Line where the text ends, from 1.
        line: usize,
        /// Column where the text ends, from 1.
        column: usize,
    },
    /// The text is not JSON.
    #[error("it is not valid JSON: {reason} at line {line}, column {column}")]
    Syntax {
        /// What the parser found.
        reason: String,
        /// Line of the problem, from 1.
        line: usize,
        /// Column of the problem, from 1.
        column: usize,
    },
    /// The document is JSON but not an object.
    #[error(
        "it holds {found}, but a state file holds a JSON object such as {{\"timestamp\": \
         \"2026-01-01T00:00:00Z\"}}"
    )]
    NotAnObject {
        /// What it holds instead: `an array`, `a string`, ...
        found: &'static str,
    },
    /// A key the format does not have, often a typo.
    #[error(
        "unknown key `{key}`{}; the keys allowed here are {allowed}",
        did_you_mean(suggestion)
    )]
    UnknownKey {
        /// The key path, such as `timestamps` or `run.sen`.
        key: String,
        /// The allowed key it probably meant.
        suggestion: Option<&'static str>,
        /// The allowed keys at that place.
        allowed: &'static str,
    },
    /// A key is written both in the current and in the older spelling.
    #[error("`{key}` and its older spelling `{legacy}` are both set; keep only `{key}`")]
    Conflict {
        /// The current key.
        key: &'static str,
        /// The older key.
        legacy: &'static str,
    },
    /// The identities are in a journal file beside the state file, which this text does not
    /// hold: only the file store that wrote them reads them.
    #[error(
        "`{key}` refers to the journal {journal}, a file beside the state file that only the \
         file store reads: read this state with `FileStore::load`, which reads the journal too"
    )]
    JournalNotRead {
        /// The key path of the identities section.
        key: String,
        /// The journal's name, as written.
        journal: String,
    },
    /// A key holds a value of the wrong type or form.
    #[error("`{key}` holds {value}, but {expected}")]
    Invalid {
        /// The key path, such as `offset` or `run.seen.id`.
        key: String,
        /// The value, as compact JSON (shortened when long).
        value: String,
        /// What it must be.
        expected: &'static str,
    },
}

fn did_you_mean(suggestion: &Option<&'static str>) -> String {
    suggestion
        .map(|key| format!(" (did you mean `{key}`?)"))
        .unwrap_or_default()
}

const TOP_KEYS: &[&str] = &[
    "timestamp",
    "id",
    "offset",
    "run",
    "pipeline",
    "pipelineFile",
    "updatedAt",
    "identities",
    "window",
    "backfill",
    "lastTimestamp",
    "lastId",
    "lastOffset",
    "pipelineId",
];
const TOP_ALLOWED: &str = "timestamp, id, offset, run, pipeline, pipelineFile, updatedAt, \
                           identities, window, backfill (and lastTimestamp, lastId, lastOffset, \
                           pipelineId from files of the older tool)";
const WINDOW_KEYS: &[&str] = &["end", "reading"];
const WINDOW_ALLOWED: &str = "end, reading";
const BACKFILL_KEYS: &[&str] = &["from", "to", "startedAt", "completedAt", "progress"];
const BACKFILL_ALLOWED: &str = "from, to, startedAt, completedAt, progress";
const RUN_KEYS: &[&str] = &["startedAt", "batches", "offset", "seen", "resume"];
const RUN_ALLOWED: &str = "startedAt, batches, offset, seen, resume";
const SEEN_KEYS: &[&str] = &["timestamp", "id"];
const SEEN_ALLOWED: &str = "timestamp, id";

const EXPECT_TIMESTAMP: &str = "it must be a timestamp: RFC 3339 such as \
                                \"2026-01-01T00:00:00Z\", \"YYYY-MM-DD HH:MM:SS\" (read as UTC), \
                                or epoch seconds or milliseconds as a number";
const EXPECT_ID: &str = "it must be an integer (up to 9223372036854775807) or a string";
const EXPECT_COUNT: &str = "it must be a non-negative integer";
const EXPECT_INSTANT: &str = "it must be an RFC 3339 timestamp such as \"2026-01-01T00:00:00Z\"";
const EXPECT_TEXT: &str = "it must be a string";
const EXPECT_OBJECT: &str = "it must be a JSON object";

impl State {
    /// Reads a state from the text of a state file.
    ///
    /// The file store keeps a lookback window's identities in a journal beside the state file;
    /// a text whose `identities` refer to one is refused with
    /// [`StateFormatError::JournalNotRead`] rather than read without them.
    pub fn from_json_str(text: &str) -> Result<State, StateFormatError> {
        State::from_json(&State::parse_document(text)?)
    }

    /// The JSON document of a state file's text, with the errors of a state file.
    pub(crate) fn parse_document(text: &str) -> Result<Value, StateFormatError> {
        // Editors on some systems put a byte order mark in front of hand-written files.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim().is_empty() {
            return Err(StateFormatError::Empty);
        }
        serde_json::from_str(text).map_err(|error| {
            let (line, column) = (error.line(), error.column());
            if error.is_eof() {
                StateFormatError::Truncated { line, column }
            } else {
                let message = error.to_string();
                let reason = match message.rfind(" at line ") {
                    Some(end) => message[..end].to_owned(),
                    None => message,
                };
                StateFormatError::Syntax {
                    reason,
                    line,
                    column,
                }
            }
        })
    }

    /// Reads a state from a parsed JSON document.
    pub fn from_json(document: &Value) -> Result<State, StateFormatError> {
        let Value::Object(map) = document else {
            return Err(StateFormatError::NotAnObject {
                found: json_kind(document),
            });
        };
        check_keys(map, "", TOP_KEYS, TOP_ALLOWED)?;
        let timestamp = either(map, "timestamp", "lastTimestamp")?
            .map(|(key, value)| read_timestamp(key, value))
            .transpose()?;
        let id = either(map, "id", "lastId")?
            .map(|(key, value)| read_id(key, value))
            .transpose()?;
        let offset = either(map, "offset", "lastOffset")?
            .map(|(key, value)| read_count(key, value))
            .transpose()?;
        let run = present(map, "run").map(read_run).transpose()?;
        let pipeline = either(map, "pipeline", "pipelineId")?
            .map(|(key, value)| match value {
                Value::String(name) => Ok(name.clone()),
                other => Err(invalid(key, other, EXPECT_TEXT)),
            })
            .transpose()?;
        let pipeline_file = present(map, "pipelineFile")
            .map(|value| match value {
                Value::String(path) => Ok(PathBuf::from(path)),
                other => Err(invalid("pipelineFile", other, EXPECT_TEXT)),
            })
            .transpose()?;
        let updated_at = present(map, "updatedAt")
            .map(|value| read_instant("updatedAt", value))
            .transpose()?;
        let identities = present(map, "identities")
            .map(|value| Identities::from_json("identities", value))
            .transpose()?
            .unwrap_or_default();
        let window = present(map, "window").map(read_window).transpose()?;
        let backfill = present(map, "backfill").map(read_backfill).transpose()?;
        Ok(State {
            timestamp,
            id,
            offset,
            run,
            pipeline,
            pipeline_file,
            updated_at,
            identities,
            window,
            backfill,
        })
    }

    /// The state as a JSON document, in the current keys.
    pub fn to_json(&self) -> Value {
        let mut map = self.sections(&self.metadata());
        // Last, and only with lookback: the one part of the file that can be long.
        if !self.identities.is_empty() {
            map.insert("identities".into(), self.identities.to_json());
        }
        Value::Object(map)
    }

    /// The metadata the state holds, as it was read or set.
    fn metadata(&self) -> Metadata<'_> {
        Metadata {
            pipeline: self.pipeline.as_deref(),
            pipeline_file: self.pipeline_file.as_deref(),
            updated_at: self.updated_at,
        }
    }

    /// Every section of the JSON document but the identities, with `metadata` in place of the
    /// state's own.
    fn sections(&self, metadata: &Metadata<'_>) -> Map<String, Value> {
        let mut map = Map::new();
        if let Some(pipeline) = metadata.pipeline {
            map.insert("pipeline".into(), Value::String(pipeline.to_owned()));
        }
        if let Some(file) = metadata.pipeline_file {
            // A path that is not UTF-8 is recorded readably; it then matches no path, which at
            // worst warns once about a shared state file that is not shared.
            map.insert(
                "pipelineFile".into(),
                Value::String(file.to_string_lossy().into_owned()),
            );
        }
        insert_position(&mut map, &self.timestamp, &self.id);
        if let Some(offset) = self.offset {
            map.insert("offset".into(), Value::from(offset));
        }
        if let Some(updated_at) = metadata.updated_at {
            map.insert(
                "updatedAt".into(),
                Value::String(render_instant(updated_at)),
            );
        }
        if let Some(run) = &self.run {
            let mut section = Map::new();
            section.insert(
                "startedAt".into(),
                Value::String(render_instant(run.started_at)),
            );
            section.insert("batches".into(), Value::from(run.batches));
            if let Some(offset) = run.offset {
                section.insert("offset".into(), Value::from(offset));
            }
            if !run.seen.is_empty() {
                let mut seen = Map::new();
                insert_position(&mut seen, &run.seen.timestamp, &run.seen.id);
                section.insert("seen".into(), Value::Object(seen));
            }
            section.insert("resume".into(), run.resume.clone());
            map.insert("run".into(), Value::Object(section));
        }
        if let Some(window) = &self.window {
            let mut section = Map::new();
            if let Some(end) = window.end {
                section.insert("end".into(), Value::String(render_instant(end)));
            }
            if let Some(reading) = window.reading {
                section.insert("reading".into(), Value::String(render_instant(reading)));
            }
            map.insert("window".into(), Value::Object(section));
        }
        if let Some(backfill) = &self.backfill {
            let mut section = Map::new();
            section.insert("from".into(), Value::String(render_instant(backfill.from)));
            section.insert("to".into(), Value::String(render_instant(backfill.to)));
            section.insert(
                "startedAt".into(),
                Value::String(render_instant(backfill.started_at)),
            );
            if let Some(completed_at) = backfill.completed_at {
                section.insert(
                    "completedAt".into(),
                    Value::String(render_instant(completed_at)),
                );
            }
            section.insert("progress".into(), backfill.progress.to_json());
            map.insert("backfill".into(), Value::Object(section));
        }
        map
    }

    /// The state as indented JSON, as it is written to the file and shown to users.
    pub fn to_json_pretty(&self) -> String {
        let mut text = String::new();
        self.write_json_pretty(&self.metadata(), None, &mut text);
        text
    }

    /// Replaces the content of `text` with the state file's text: [`to_json_pretty`] with the
    /// metadata a store stamps on a commit in place of the state's own. It copies nothing of
    /// the state, and a writer committing again and again reuses one buffer.
    ///
    /// [`to_json_pretty`]: Self::to_json_pretty
    ///
    /// With `journal`, the `identities` section is that value (the file store's reference to
    /// the journal holding them) in place of the identities themselves.
    pub(crate) fn write_json_pretty(
        &self,
        metadata: &Metadata<'_>,
        journal: Option<Value>,
        text: &mut String,
    ) {
        use std::fmt::Write as _;
        text.clear();
        let mut sections = self.sections(metadata);
        let inline = journal.is_none();
        if let Some(journal) = journal {
            sections.insert("identities".into(), journal);
        }
        // Writing into a String cannot fail.
        let _ = write!(text, "{:#}", Value::Object(sections));
        // The identities are written straight into the text rather than built as a JSON
        // value first: with lookback they are most of the file.
        if inline && !self.identities.is_empty() {
            if text.ends_with("\n}") {
                text.truncate(text.len() - 2);
                text.push_str(",\n");
            } else {
                // No other section: `{}`.
                text.truncate(text.len() - 1);
                text.push('\n');
            }
            text.push_str("  \"identities\": ");
            self.identities.write_pretty(text);
            text.push_str("\n}");
        }
        text.push('\n');
    }

    /// A state seeded from values typed by a user (`cannectors state set`): `timestamp` in any
    /// accepted form (see [`Timestamp`]), `id` as for [`CursorId::parse`], `offset` a
    /// non-negative integer.
    ///
    /// ```
    /// use cannectors_state::State;
    /// let state = State::seed(Some("2026-01-01T00:00:00Z"), Some("42"), None).unwrap();
    /// assert_eq!(state.id.unwrap().to_string(), "42");
    /// let error = State::seed(None, None, Some("-3")).unwrap_err();
    /// assert_eq!(error.to_string(), "`offset` holds -3, but it must be a non-negative integer");
    /// ```
    pub fn seed(
        timestamp: Option<&str>,
        id: Option<&str>,
        offset: Option<&str>,
    ) -> Result<State, StateFormatError> {
        let timestamp = timestamp
            .map(|text| {
                let text = text.trim();
                // A bare number is epoch time and stays a number in the file.
                let parsed = match serde_json::from_str::<Value>(text) {
                    Ok(number @ Value::Number(_)) => Timestamp::from_json(&number),
                    _ => Timestamp::parse(text),
                };
                parsed.map_err(|_| StateFormatError::Invalid {
                    key: "timestamp".into(),
                    value: text.to_owned(),
                    expected: EXPECT_TIMESTAMP,
                })
            })
            .transpose()?;
        let offset = offset
            .map(|text| {
                text.trim()
                    .parse::<u64>()
                    .map_err(|_| StateFormatError::Invalid {
                        key: "offset".into(),
                        value: text.to_owned(),
                        expected: EXPECT_COUNT,
                    })
            })
            .transpose()?;
        Ok(State {
            timestamp,
            id: id.map(CursorId::parse),
            offset,
            ..State::default()
        })
    }

    /// The state a run with a lookback window reads from: the committed timestamp moved back
    /// by `lookback` (in the form it was written in, so that a query binds it as before) and no
    /// id, so that the first request reaches back over every record of the window. Without a
    /// committed timestamp (the first run) the state is the same.
    ///
    /// ```
    /// use cannectors_state::State;
    /// let state = State::from_json_str(r#"{"timestamp": "2026-01-01 10:00:00", "id": 9}"#).unwrap();
    /// let window = state.reaching_back(chrono::TimeDelta::minutes(10));
    /// assert_eq!(window.timestamp.unwrap().to_string(), "2026-01-01 09:50:00");
    /// assert_eq!(window.id, None);
    /// ```
    pub fn reaching_back(&self, lookback: chrono::TimeDelta) -> State {
        let mut reading = self.clone();
        if let Some(timestamp) = &self.timestamp {
            reading.timestamp = Some(timestamp.earlier_by(lookback));
            reading.id = None;
        }
        reading
    }

    /// The committed position: where the next run starts.
    pub fn committed(&self) -> Position {
        Position {
            timestamp: self.timestamp.clone(),
            id: self.id.clone(),
        }
    }

    /// Commits `position` directly (a source ordered by its cursor: `Checkpoint::Advance` in
    /// the connector crate), unless it lies before the committed position: a cursor never moves
    /// backwards. Returns whether the cursors moved, so that a source that stops advancing can
    /// be noticed.
    ///
    /// The comparison looks at the cursors `position` carries only, and reads a committed id of
    /// the other kind as that kind (`"42"` as 42 next to integer ids), so that a hand-written or
    /// older file is compared the way its user meant it.
    pub fn advance(&mut self, position: &Position) -> bool {
        if position.is_empty() || !self.committed().is_passed_by(position) {
            return false;
        }
        if let Some(timestamp) = &position.timestamp {
            self.timestamp = Some(timestamp.clone());
        }
        if let Some(id) = &position.id {
            self.id = Some(id.clone());
        }
        true
    }

    /// Records a delivered batch of a paginated run (`Checkpoint::Progress`): starts the run
    /// section at `now` if there is none, counts the batch, keeps the greatest position seen,
    /// the offset reached and where the source continues. The committed cursors do not move.
    ///
    /// `batch` is the greatest position of the batch (`None` when it had no records or no
    /// cursor is enabled); `offset` is `None` unless the offset cursor is enabled.
    pub fn record_progress(
        &mut self,
        batch: Option<&Position>,
        resume: Value,
        offset: Option<u64>,
        now: DateTime<Utc>,
    ) {
        let run = self.run.get_or_insert_with(|| Run {
            started_at: now,
            batches: 0,
            offset: None,
            seen: Position::default(),
            resume: Value::Null,
        });
        run.batches = run.batches.saturating_add(1);
        run.resume = resume;
        if offset.is_some() {
            run.offset = offset;
        }
        if let Some(batch) = batch
            && !batch.is_empty()
            && run.seen.is_passed_by(batch)
        {
            run.seen = batch.clone();
        }
    }

    /// Ends a run that delivered everything: promotes the greatest position seen to the
    /// committed cursors (never moving one backwards), commits the offset reached
    /// (`final_offset`, else the last one recorded; never lower than the committed one) and
    /// clears the run section.
    pub fn complete_run(&mut self, final_offset: Option<u64>) {
        let run = self.run.take();
        let offset = final_offset.or(run.as_ref().and_then(|run| run.offset));
        if let Some(run) = run {
            self.advance(&run.seen);
        }
        if let Some(offset) = offset {
            self.offset = Some(
                self.offset
                    .map_or(offset, |committed| committed.max(offset)),
            );
        }
    }

    /// Drops the run section, so that the next run starts again from the committed cursors
    /// (for a saved position that cannot be reused, such as an expired pagination token:
    /// duplicates, never loss). Returns the dropped run.
    pub fn discard_run(&mut self) -> Option<Run> {
        self.run.take()
    }
}

fn insert_position(map: &mut Map<String, Value>, ts: &Option<Timestamp>, id: &Option<CursorId>) {
    if let Some(timestamp) = ts {
        map.insert("timestamp".into(), timestamp.as_json().clone());
    }
    if let Some(id) = id {
        map.insert("id".into(), id.to_json());
    }
}

fn render_instant(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn read_run(value: &Value) -> Result<Run, StateFormatError> {
    let Value::Object(map) = value else {
        return Err(invalid("run", value, EXPECT_OBJECT));
    };
    check_keys(map, "run.", RUN_KEYS, RUN_ALLOWED)?;
    let started_at = match present(map, "startedAt") {
        Some(value) => read_instant("run.startedAt", value)?,
        None => {
            return Err(StateFormatError::Invalid {
                key: "run.startedAt".into(),
                value: "nothing".into(),
                expected: EXPECT_INSTANT,
            });
        }
    };
    let batches = present(map, "batches")
        .map(|value| read_count("run.batches", value))
        .transpose()?;
    let offset = present(map, "offset")
        .map(|value| read_count("run.offset", value))
        .transpose()?;
    let seen = match present(map, "seen") {
        None => Position::default(),
        Some(Value::Object(seen)) => {
            check_keys(seen, "run.seen.", SEEN_KEYS, SEEN_ALLOWED)?;
            Position {
                timestamp: present(seen, "timestamp")
                    .map(|value| read_timestamp("run.seen.timestamp", value))
                    .transpose()?,
                id: present(seen, "id")
                    .map(|value| read_id("run.seen.id", value))
                    .transpose()?,
            }
        }
        Some(other) => return Err(invalid("run.seen", other, EXPECT_OBJECT)),
    };
    let resume = map.get("resume").cloned().unwrap_or(Value::Null);
    Ok(Run {
        started_at,
        batches: batches.unwrap_or(0),
        offset,
        seen,
        resume,
    })
}

fn read_window(value: &Value) -> Result<WindowProgress, StateFormatError> {
    let Value::Object(map) = value else {
        return Err(invalid("window", value, EXPECT_OBJECT));
    };
    check_keys(map, "window.", WINDOW_KEYS, WINDOW_ALLOWED)?;
    Ok(WindowProgress {
        end: present(map, "end")
            .map(|value| read_instant("window.end", value))
            .transpose()?,
        reading: present(map, "reading")
            .map(|value| read_instant("window.reading", value))
            .transpose()?,
    })
}

fn read_backfill(value: &Value) -> Result<Backfill, StateFormatError> {
    let Value::Object(map) = value else {
        return Err(invalid("backfill", value, EXPECT_OBJECT));
    };
    check_keys(map, "backfill.", BACKFILL_KEYS, BACKFILL_ALLOWED)?;
    let required = |key: &str| {
        let path = format!("backfill.{key}");
        match present(map, key) {
            Some(value) => read_instant(&path, value),
            None => Err(StateFormatError::Invalid {
                key: path,
                value: "nothing".into(),
                expected: EXPECT_INSTANT,
            }),
        }
    };
    let (from, to, started_at) = (required("from")?, required("to")?, required("startedAt")?);
    let completed_at = present(map, "completedAt")
        .map(|value| read_instant("backfill.completedAt", value))
        .transpose()?;
    let progress = match present(map, "progress") {
        None => State::default(),
        Some(progress) if !progress.is_object() => {
            return Err(invalid("backfill.progress", progress, EXPECT_OBJECT));
        }
        Some(progress) => {
            if progress.get("backfill").is_some() {
                return Err(StateFormatError::UnknownKey {
                    key: "backfill.progress.backfill".into(),
                    suggestion: None,
                    allowed: TOP_ALLOWED,
                });
            }
            // Its keys are named from the top of the file in messages.
            State::from_json(progress).map_err(|error| match error {
                StateFormatError::UnknownKey {
                    key,
                    suggestion,
                    allowed,
                } => StateFormatError::UnknownKey {
                    key: format!("backfill.progress.{key}"),
                    suggestion,
                    allowed,
                },
                StateFormatError::Invalid {
                    key,
                    value,
                    expected,
                } => StateFormatError::Invalid {
                    key: format!("backfill.progress.{key}"),
                    value,
                    expected,
                },
                other => other,
            })?
        }
    };
    Ok(Backfill {
        from,
        to,
        started_at,
        completed_at,
        progress: Box::new(progress),
    })
}

/// A key's value, with null read as absent (a hand-written `"id": null` means no id).
fn present<'m>(map: &'m Map<String, Value>, key: &str) -> Option<&'m Value> {
    map.get(key).filter(|value| !value.is_null())
}

/// The value of `key` or of its older spelling, refusing files that set both.
fn either<'m>(
    map: &'m Map<String, Value>,
    key: &'static str,
    legacy: &'static str,
) -> Result<Option<(&'static str, &'m Value)>, StateFormatError> {
    match (present(map, key), present(map, legacy)) {
        (Some(_), Some(_)) => Err(StateFormatError::Conflict { key, legacy }),
        (Some(value), None) => Ok(Some((key, value))),
        (None, Some(value)) => Ok(Some((legacy, value))),
        (None, None) => Ok(None),
    }
}

fn check_keys(
    map: &Map<String, Value>,
    prefix: &str,
    known: &[&'static str],
    allowed: &'static str,
) -> Result<(), StateFormatError> {
    match map.keys().find(|key| !known.contains(&key.as_str())) {
        None => Ok(()),
        Some(key) => Err(StateFormatError::UnknownKey {
            key: format!("{prefix}{key}"),
            suggestion: closest(key, known),
            allowed,
        }),
    }
}

fn read_timestamp(key: &str, value: &Value) -> Result<Timestamp, StateFormatError> {
    Timestamp::from_json(value).map_err(|_| invalid(key, value, EXPECT_TIMESTAMP))
}

fn read_id(key: &str, value: &Value) -> Result<CursorId, StateFormatError> {
    CursorId::from_json(value).map_err(|_| invalid(key, value, EXPECT_ID))
}

fn read_count(key: &str, value: &Value) -> Result<u64, StateFormatError> {
    let count = match value {
        // The older tool writes its cursors as strings (`"lastId": "42"`); an offset may come
        // the same way.
        Value::String(text) if key == "lastOffset" => text.parse().ok(),
        other => other.as_u64(),
    };
    count.ok_or_else(|| invalid(key, value, EXPECT_COUNT))
}

fn read_instant(key: &str, value: &Value) -> Result<DateTime<Utc>, StateFormatError> {
    value
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|instant| instant.to_utc())
        .ok_or_else(|| invalid(key, value, EXPECT_INSTANT))
}

fn invalid(key: &str, value: &Value, expected: &'static str) -> StateFormatError {
    StateFormatError::Invalid {
        key: key.to_owned(),
        value: excerpt(value),
        expected,
    }
}

/// The known key within two edits of `key`, if any: enough for a typo, not for a guess.
fn closest(key: &str, known: &[&'static str]) -> Option<&'static str> {
    known
        .iter()
        .map(|candidate| {
            (
                edit_distance(&key.to_lowercase(), &candidate.to_lowercase()),
                *candidate,
            )
        })
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(timestamp: &str, id: i64) -> Position {
        Position {
            timestamp: Some(Timestamp::parse(timestamp).unwrap()),
            id: Some(id.into()),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn problem(text: &str) -> String {
        State::from_json_str(text).unwrap_err().to_string()
    }

    #[test]
    fn a_hand_written_seed_with_only_a_timestamp_is_valid() {
        let state = State::from_json_str(r#"{"timestamp": "2026-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(
            state.timestamp.unwrap().to_rfc3339_utc(),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!((state.id, state.offset, state.run), (None, None, None));
    }

    #[test]
    fn older_keys_are_read_and_written_back_in_the_new_keys() {
        let state = State::from_json_str(
            r#"{"lastTimestamp": "2026-01-01T00:00:00Z", "lastId": "a-17", "updatedAt": "2026-01-02T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(
            state.to_json(),
            json!({"timestamp": "2026-01-01T00:00:00Z", "id": "a-17", "updatedAt": "2026-01-02T00:00:00Z"})
        );
    }

    #[test]
    fn a_file_of_the_go_tool_is_read_and_written_back_in_the_new_keys() {
        // As the Go tool writes it: its pipeline id, cursors as strings, instants in
        // nanoseconds with the local offset.
        let state = State::from_json_str(
            r#"{
  "pipelineId": "orders-sync",
  "lastTimestamp": "2026-01-26T10:30:00.123456789+01:00",
  "lastId": "12345",
  "lastOffset": "200",
  "updatedAt": "2026-01-26T10:31:02.5+01:00"
}"#,
        )
        .unwrap();
        assert_eq!(state.pipeline.as_deref(), Some("orders-sync"));
        assert_eq!(state.offset, Some(200));
        assert_eq!(
            state.to_json(),
            json!({
                "pipeline": "orders-sync",
                "timestamp": "2026-01-26T10:30:00.123456789+01:00",
                "id": "12345",
                "offset": 200,
                "updatedAt": "2026-01-26T09:31:02.500Z",
            })
        );
        assert_eq!(
            State::from_json_str(r#"{"lastOffset": 40}"#)
                .unwrap()
                .offset,
            Some(40)
        );
        assert_eq!(
            problem(r#"{"lastOffset": "-1"}"#),
            "`lastOffset` holds \"-1\", but it must be a non-negative integer"
        );
        assert_eq!(
            problem(r#"{"pipelineId": 7}"#),
            "`pipelineId` holds 7, but it must be a string"
        );
        assert_eq!(
            problem(r#"{"offset": 1, "lastOffset": 2}"#),
            "`offset` and its older spelling `lastOffset` are both set; keep only `offset`"
        );
    }

    #[test]
    fn a_key_in_both_spellings_is_refused() {
        assert_eq!(
            problem(r#"{"id": 1, "lastId": 2}"#),
            "`id` and its older spelling `lastId` are both set; keep only `id`"
        );
    }

    #[test]
    fn a_file_without_window_or_backfill_reads_as_before_and_is_written_without_them() {
        let text = r#"{"timestamp": "2026-01-01T00:00:00Z"}"#;
        let state = State::from_json_str(text).unwrap();
        assert_eq!((state.window, state.backfill.clone()), (None, None));
        assert_eq!(
            state.to_json(),
            json!({"timestamp": "2026-01-01T00:00:00Z"})
        );
    }

    #[test]
    fn window_progress_and_a_backfill_are_written_back_as_they_were_read() {
        let text = json!({
            "timestamp": "2026-03-01T00:00:00Z",
            "window": {"end": "2026-01-02T00:00:00Z", "reading": "2026-01-03T00:00:00Z"},
            "backfill": {
                "from": "2026-01-01T00:00:00Z",
                "to": "2026-02-01T00:00:00Z",
                "startedAt": "2026-03-01T12:00:00Z",
                "progress": {
                    "timestamp": "2026-01-05T00:00:00Z",
                    "run": {"startedAt": "2026-03-01T12:00:00Z", "batches": 2, "resume": {"page": 3}}
                }
            }
        });
        let state = State::from_json(&text).unwrap();
        let backfill = state.backfill.as_ref().unwrap();
        assert!(!backfill.is_finished());
        assert_eq!(backfill.progress.run.as_ref().unwrap().batches(), 2);
        assert_eq!(state.to_json(), text);
    }

    #[test]
    fn a_bad_window_or_backfill_section_names_its_key() {
        assert_eq!(
            problem(r#"{"window": {"end": "soon"}}"#),
            "`window.end` holds \"soon\", but it must be an RFC 3339 timestamp such as \
             \"2026-01-01T00:00:00Z\""
        );
        assert!(
            problem(r#"{"window": {"ends": "2026-01-01T00:00:00Z"}}"#)
                .starts_with("unknown key `window.ends` (did you mean `end`?)")
        );
        assert_eq!(
            problem(
                r#"{"backfill": {"from": "2026-01-01T00:00:00Z", "startedAt": "2026-01-01T00:00:00Z"}}"#
            ),
            "`backfill.to` holds nothing, but it must be an RFC 3339 timestamp such as \
             \"2026-01-01T00:00:00Z\""
        );
        assert!(
            problem(
                r#"{"backfill": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z",
                   "startedAt": "2026-01-01T00:00:00Z", "progress": {"id": [1]}}}"#
            )
            .starts_with("`backfill.progress.id` holds [1]")
        );
    }

    #[test]
    fn null_values_count_as_absent() {
        let state =
            State::from_json_str(r#"{"timestamp": null, "id": null, "run": null}"#).unwrap();
        assert_eq!(state, State::default());
    }

    #[test]
    fn a_misspelt_key_is_an_error_suggesting_the_right_one() {
        assert_eq!(
            problem(r#"{"timestamps": "2026-01-01T00:00:00Z"}"#),
            "unknown key `timestamps` (did you mean `timestamp`?); the keys allowed here are \
             timestamp, id, offset, run, pipeline, pipelineFile, updatedAt, identities, window, \
             backfill (and lastTimestamp, lastId, lastOffset, pipelineId from files of the older \
             tool)"
        );
        assert_eq!(
            problem(r#"{"cursor": 1}"#),
            "unknown key `cursor`; the keys allowed here are timestamp, id, offset, run, pipeline, \
             pipelineFile, updatedAt, identities, window, backfill (and lastTimestamp, lastId, \
             lastOffset, pipelineId from files of the older tool)"
        );
        assert!(
            problem(r#"{"run": {"startedAt": "2026-01-01T00:00:00Z", "sen": {}}}"#)
                .starts_with("unknown key `run.sen` (did you mean `seen`?)")
        );
    }

    #[test]
    fn wrongly_typed_values_name_the_key_and_what_it_must_be() {
        assert_eq!(
            problem(r#"{"id": [1]}"#),
            "`id` holds [1], but it must be an integer (up to 9223372036854775807) or a string"
        );
        assert_eq!(
            problem(r#"{"offset": -3}"#),
            "`offset` holds -3, but it must be a non-negative integer"
        );
        assert_eq!(
            problem(r#"{"timestamp": "yesterday"}"#),
            "`timestamp` holds \"yesterday\", but it must be a timestamp: RFC 3339 such as \
             \"2026-01-01T00:00:00Z\", \"YYYY-MM-DD HH:MM:SS\" (read as UTC), or epoch seconds or \
             milliseconds as a number"
        );
        assert_eq!(
            problem(r#"{"run": {"startedAt": "2026-01-01T00:00:00Z", "seen": {"id": true}}}"#),
            "`run.seen.id` holds true, but it must be an integer (up to 9223372036854775807) or a \
             string"
        );
        assert_eq!(
            problem(r#"{"run": {"batches": 1}}"#),
            "`run.startedAt` holds nothing, but it must be an RFC 3339 timestamp such as \
             \"2026-01-01T00:00:00Z\""
        );
        assert_eq!(
            problem(r#"{"pipeline": 3}"#),
            "`pipeline` holds 3, but it must be a string"
        );
        assert_eq!(
            problem(r#"{"pipelineFile": ["a.yaml"]}"#),
            "`pipelineFile` holds [\"a.yaml\"], but it must be a string"
        );
    }

    #[test]
    fn empty_truncated_and_non_json_text_are_told_apart() {
        assert!(problem(" \n").starts_with("it is empty; a state file holds a JSON object"));
        assert_eq!(
            problem("{\"timestamp\": \"2026-01-"),
            "it ends in the middle of the JSON (line 1, column 23): it was cut short, perhaps by a \
             full disk or an interrupted copy"
        );
        assert_eq!(
            problem("<state/>"),
            "it is not valid JSON: expected value at line 1, column 1"
        );
        assert_eq!(
            problem("[1, 2]"),
            "it holds an array, but a state file holds a JSON object such as {\"timestamp\": \
             \"2026-01-01T00:00:00Z\"}"
        );
    }

    #[test]
    fn a_byte_order_mark_from_an_editor_is_ignored() {
        let state = State::from_json_str("\u{feff}{\"offset\": 5}").unwrap();
        assert_eq!(state.offset, Some(5));
    }

    #[test]
    fn the_run_section_round_trips_with_its_opaque_resume_value() {
        let mut state = State::from_json_str(r#"{"timestamp": "2026-01-01T00:00:00Z"}"#).unwrap();
        let resume = json!({"next": "token-abc", "page": 3});
        state.record_progress(
            Some(&at("2026-01-05T00:00:00Z", 8)),
            resume.clone(),
            Some(500),
            now(),
        );
        let text = state.to_json_pretty();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({
                "timestamp": "2026-01-01T00:00:00Z",
                "run": {
                    "startedAt": "2026-03-01T12:00:00Z",
                    "batches": 1,
                    "offset": 500,
                    "seen": {"timestamp": "2026-01-05T00:00:00Z", "id": 8},
                    "resume": resume,
                }
            })
        );
        assert_eq!(State::from_json_str(&text).unwrap(), state);
    }

    #[test]
    fn seed_validates_command_line_values() {
        let state = State::seed(Some("1767225600"), Some("\"0042\""), Some("10")).unwrap();
        assert_eq!(
            state.timestamp.as_ref().unwrap().as_json(),
            &json!(1767225600)
        );
        assert_eq!(state.id, Some(CursorId::from("0042")));
        assert_eq!(state.offset, Some(10));
        assert_eq!(
            State::seed(Some("last tuesday"), None, None)
                .unwrap_err()
                .to_string(),
            "`timestamp` holds last tuesday, but it must be a timestamp: RFC 3339 such as \
             \"2026-01-01T00:00:00Z\", \"YYYY-MM-DD HH:MM:SS\" (read as UTC), or epoch seconds or \
             milliseconds as a number"
        );
        assert!(State::seed(None, None, Some("ten")).is_err());
    }

    #[test]
    fn advance_moves_forward_and_never_backwards() {
        let mut state = State::default();
        assert!(state.advance(&at("2026-01-02T00:00:00Z", 5)));
        assert!(!state.advance(&at("2026-01-01T00:00:00Z", 50)));
        assert!(!state.advance(&at("2026-01-02T00:00:00Z", 5)));
        assert!(state.advance(&at("2026-01-02T00:00:00Z", 6)));
        assert_eq!(state.committed(), at("2026-01-02T00:00:00Z", 6));
    }

    #[test]
    fn advance_reads_an_older_string_id_as_an_integer_next_to_integer_ids() {
        let mut state = State::from_json_str(r#"{"lastId": "42"}"#).unwrap();
        let id = |id: i64| Position {
            timestamp: None,
            id: Some(id.into()),
        };
        assert!(!state.advance(&id(41)));
        assert!(state.advance(&id(100)));
        assert_eq!(state.id, Some(CursorId::Integer(100)));
    }

    #[test]
    fn a_hand_seeded_timestamp_advances_to_a_keyset_position_at_the_same_instant() {
        let mut state = State::from_json_str(r#"{"timestamp": "2026-01-01 00:00:00"}"#).unwrap();
        assert!(state.advance(&at("2026-01-01T00:00:00Z", 1)));
        assert_eq!(state.id, Some(CursorId::Integer(1)));
    }

    #[test]
    fn progress_keeps_the_committed_cursors_until_the_run_completes() {
        let mut state = State::default();
        state.advance(&at("2026-01-01T00:00:00Z", 1));
        let before = state.committed();
        // An unsorted source: the second page holds an older record than the first.
        state.record_progress(
            Some(&at("2026-01-09T00:00:00Z", 4)),
            json!({"page": 2}),
            None,
            now(),
        );
        state.record_progress(
            Some(&at("2026-01-03T00:00:00Z", 9)),
            json!({"page": 3}),
            None,
            now(),
        );
        state.record_progress(None, json!({"page": 4}), None, now());
        assert_eq!(state.committed(), before);
        let run = state.run.as_ref().unwrap();
        assert_eq!((run.batches, &run.resume), (3, &json!({"page": 4})));
        assert_eq!(run.seen, at("2026-01-09T00:00:00Z", 4));

        state.complete_run(None);
        assert_eq!(state.committed(), at("2026-01-09T00:00:00Z", 4));
        assert_eq!(state.run, None);
    }

    #[test]
    fn completing_a_run_never_moves_a_cursor_backwards() {
        let mut state = State {
            offset: Some(900),
            ..State::default()
        };
        state.advance(&at("2026-02-01T00:00:00Z", 1));
        state.record_progress(
            Some(&at("2026-01-01T00:00:00Z", 7)),
            Value::Null,
            Some(300),
            now(),
        );
        state.complete_run(None);
        assert_eq!(state.committed(), at("2026-02-01T00:00:00Z", 1));
        assert_eq!(state.offset, Some(900));
    }

    #[test]
    fn completing_a_run_commits_the_final_offset() {
        let mut state = State {
            offset: Some(100),
            ..State::default()
        };
        state.record_progress(None, json!(null), Some(200), now());
        state.record_progress(None, json!(null), Some(300), now());
        state.complete_run(Some(350));
        assert_eq!(state.offset, Some(350));
        let mut state = State::default();
        state.record_progress(None, json!(null), Some(200), now());
        state.complete_run(None);
        assert_eq!(state.offset, Some(200));
    }

    #[test]
    fn a_restarted_run_continues_counting_from_the_saved_progress() {
        let mut state = State::default();
        state.record_progress(
            Some(&at("2026-01-09T00:00:00Z", 4)),
            json!("t1"),
            None,
            now(),
        );
        let mut reloaded = State::from_json_str(&state.to_json_pretty()).unwrap();
        let later = now() + chrono::Duration::hours(1);
        reloaded.record_progress(
            Some(&at("2026-01-02T00:00:00Z", 1)),
            json!("t2"),
            None,
            later,
        );
        let run = reloaded.run.as_ref().unwrap();
        assert_eq!((run.batches, run.started_at), (2, now()));
        assert_eq!(run.seen, at("2026-01-09T00:00:00Z", 4));
    }

    #[test]
    fn discarding_a_run_restarts_from_the_committed_cursors() {
        let mut state = State::default();
        state.advance(&at("2026-01-01T00:00:00Z", 1));
        state.record_progress(
            Some(&at("2026-01-09T00:00:00Z", 4)),
            json!("expired"),
            None,
            now(),
        );
        assert!(state.discard_run().is_some());
        assert_eq!(state.run, None);
        assert_eq!(state.committed(), at("2026-01-01T00:00:00Z", 1));
    }
}
