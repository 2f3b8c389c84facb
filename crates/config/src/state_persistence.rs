//! `statePersistence`: which cursors a pipeline keeps between runs, how an httpPolling input
//! writes the timestamp into its requests, and where the state files live.
//!
//! The rules every input shares (an enabled timestamp or id cursor has a `field`, a
//! `storagePath` is not empty) are here; each input adds its own (an httpPolling cursor must
//! reach the request, a database cursor has no `queryParam`) in its module.

use std::fmt::Write as _;
use std::num::NonZeroU64;
use std::time::Duration;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::database::{Connection, Driver};
pub use cannectors_state::{Identity, OnMissingCursor};

use std::num::NonZeroUsize;

use crate::document::KeyPath;
use crate::path::FieldPath;
use crate::validate::Findings;

/// Which cursors a pipeline keeps between runs, and where. Only enabled cursors are here: a
/// cursor written with `enabled: false` is `None`.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct StatePersistence {
    /// The largest record timestamp delivered.
    pub timestamp: Option<TimestampCursor>,
    /// The largest record id delivered.
    pub id: Option<IdCursor>,
    /// The pagination offset reached.
    pub offset: Option<OffsetCursor>,
    /// Directory of the state files as written (default `./.cannectors-state`); never empty.
    /// Always `None` with the PostgreSQL store.
    pub storage_path: Option<String>,
    /// What becomes of a record whose timestamp or id field is missing or null
    /// (`onMissingCursor`, default `fail`).
    pub on_missing_cursor: OnMissingCursor,
    /// `lookback`: each run reads again the records of a window before the committed
    /// timestamp, and delivers those it had not delivered.
    pub lookback: Option<Lookback>,
    /// `delay`: records newer than now - delay are not read yet; a run's upper bound
    /// (`{{window.end}}`, `untilParam`, `window.end`) is then now - delay instead of now.
    pub delay: Option<Duration>,
    /// Where the state is kept: files (the default) or PostgreSQL.
    pub store: StoreKind,
}

/// Where a pipeline's state is kept (`statePersistence.store`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StoreKind {
    /// A file per pipeline in `storagePath`, with an OS lock beside it.
    #[default]
    File,
    /// A row per pipeline in a PostgreSQL table, with a lease shared by several processes.
    Postgres(PostgresStore),
}

/// The PostgreSQL state store of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresStore {
    /// The database, from `connectionString` or `connectionStringRef`; always PostgreSQL.
    pub connection: Connection,
    /// How long a lease lasts unless renewed (`leaseTtlMs`, default 30 s).
    pub lease_ttl: Duration,
    /// How often a held lease is renewed (`leaseRenewMs`, default a third of the TTL); always
    /// shorter than the TTL.
    pub lease_renew: Duration,
}

/// The longest `leaseTtlMs`: an hour.
const LONGEST_LEASE_TTL_MS: u64 = 3_600_000;

/// `leaseTtlMs` unless set: long enough for a batch of a few thousand records to be fetched,
/// delivered and committed under one renewal, short enough that a dead process's pipelines
/// move on within half a minute.
const DEFAULT_LEASE_TTL_MS: u64 = 30_000;

/// How far a run reaches back before the committed timestamp, and how it recognises the
/// records it delivered already (`lookback`, `identity`, `maxIdentities`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lookback {
    /// How far before the committed timestamp the first request of a run reaches; zero still
    /// recognises the records at the committed timestamp (an inclusive `since`).
    pub window: Duration,
    /// What tells records apart: `identity` fields, else the id cursor, else the whole record.
    pub identity: Identity,
    /// At most this many identities are kept; the oldest go first.
    pub max_identities: NonZeroUsize,
}

/// The number of identities a lookback window keeps when `maxIdentities` is not written:
/// about 1 MB of state file at most.
pub(crate) const DEFAULT_MAX_IDENTITIES: usize = 100_000;

impl StatePersistence {
    /// Whether the timestamp cursor is enabled without `field`: it then holds the start time
    /// of the last successful run rather than a record's timestamp.
    pub fn timestamp_is_run_start(&self) -> bool {
        self.timestamp
            .as_ref()
            .is_some_and(|cursor| cursor.field.is_none())
    }

    /// The timestamp cursor when it is enabled.
    pub fn timestamp(&self) -> Option<&TimestampCursor> {
        self.timestamp.as_ref()
    }

    /// The id cursor when it is enabled.
    pub fn id(&self) -> Option<&IdCursor> {
        self.id.as_ref()
    }

    /// The offset cursor when it is enabled.
    pub fn offset(&self) -> Option<&OffsetCursor> {
        self.offset.as_ref()
    }

    /// Whether any cursor is enabled.
    pub fn any_enabled(&self) -> bool {
        self.timestamp.is_some() || self.id.is_some() || self.offset.is_some()
    }
}

/// The timestamp cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimestampCursor {
    /// Where the timestamp is in each record. `None` (httpPolling only): the cursor is the
    /// start time of the last successful run, by this machine's clock, as the Go tool keeps it.
    pub field: Option<FieldPath>,
    /// httpPolling: the query parameter that carries the committed timestamp; never empty.
    pub query_param: Option<String>,
    /// httpPolling: how the committed timestamp is written into a request (`rfc3339` for a
    /// database input, which binds it with its SQL type).
    pub format: TimestampFormat,
    /// httpPolling: the query parameter that carries the run's upper bound (now - `delay`, or
    /// now), in `format`; never empty.
    pub until_param: Option<String>,
}

/// The id cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdCursor {
    /// Where the id is in each record.
    pub field: FieldPath,
    /// httpPolling: the query parameter that carries the committed id; never empty.
    pub query_param: Option<String>,
}

/// The offset cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OffsetCursor {
    /// httpPolling: the query parameter that carries the committed offset; never empty.
    pub query_param: Option<String>,
}

/// How a timestamp cursor is written into an HTTP request (`timestamp.format`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimestampFormat {
    /// RFC 3339 in UTC with a `Z`, e.g. `2026-01-01T00:00:00Z` (the default).
    Rfc3339,
    /// Seconds since the Unix epoch.
    Unix,
    /// Milliseconds since the Unix epoch.
    UnixMs,
    /// A chrono strftime pattern applied to the UTC time, e.g. `%Y-%m-%d %H:%M:%S`.
    Strftime(StrftimePattern),
}

/// A strftime pattern that chrono accepts; made by [`TimestampFormat::parse`] only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrftimePattern(String);

impl StrftimePattern {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a text is not a timestamp format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not {what}; use rfc3339, unix, unix_ms or a strftime pattern such as \
     %Y-%m-%dT%H:%M:%SZ"
)]
pub struct TimestampFormatError {
    /// The format as written.
    pub text: String,
    what: &'static str,
}

impl TimestampFormat {
    /// Reads `rfc3339`, `unix`, `unix_ms` (exactly these words), or a strftime pattern: a text
    /// holding at least one `%` whose every `%` item chrono knows and can write (`%#z` only
    /// reads). A text without `%` (`YYYY-MM-DD`, `RFC3339`) is refused: it would be sent as it
    /// is, the same for every timestamp.
    ///
    /// ```
    /// use cannectors_config::TimestampFormat;
    /// assert_eq!(TimestampFormat::parse("unix_ms"), Ok(TimestampFormat::UnixMs));
    /// assert!(TimestampFormat::parse("%Y-%m-%dT%H:%M:%S").is_ok());
    /// assert!(TimestampFormat::parse("%Q").is_err());
    /// assert!(TimestampFormat::parse("YYYY-MM-DD").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<TimestampFormat, TimestampFormatError> {
        match text {
            "rfc3339" => return Ok(TimestampFormat::Rfc3339),
            "unix" => return Ok(TimestampFormat::Unix),
            "unix_ms" => return Ok(TimestampFormat::UnixMs),
            _ => {}
        }
        let refuse = |what| TimestampFormatError {
            text: text.to_owned(),
            what,
        };
        if !text.contains('%') {
            return Err(refuse("a timestamp format"));
        }
        if StrftimeItems::new(text).any(|item| matches!(item, Item::Error)) {
            return Err(refuse("a strftime pattern chrono accepts"));
        }
        // Some items chrono parses but cannot write (`%#z` reads an offset only), whatever the
        // instant: trying one finds them.
        let mut probe = String::new();
        write!(
            probe,
            "{}",
            DateTime::<Utc>::UNIX_EPOCH.format_with_items(StrftimeItems::new(text))
        )
        .map_err(|_| refuse("a strftime pattern that can write a timestamp"))?;
        Ok(TimestampFormat::Strftime(StrftimePattern(text.to_owned())))
    }

    /// `instant` written in this format: RFC 3339 in UTC with `Z` and as many fraction digits
    /// as it has (0, 3, 6 or 9), epoch seconds or milliseconds, or the pattern applied in UTC.
    ///
    /// ```
    /// use cannectors_config::TimestampFormat;
    /// let instant = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05.250+01:00")
    ///     .unwrap()
    ///     .to_utc();
    /// let render = |format: &str| TimestampFormat::parse(format).unwrap().render(instant);
    /// assert_eq!(render("rfc3339"), "2026-01-02T02:04:05.250Z");
    /// assert_eq!(render("unix"), "1767319445");
    /// assert_eq!(render("unix_ms"), "1767319445250");
    /// assert_eq!(render("%Y/%m/%d %H:%M"), "2026/01/02 02:04");
    /// ```
    pub fn render(&self, instant: DateTime<Utc>) -> String {
        match self {
            TimestampFormat::Rfc3339 => instant.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            TimestampFormat::Unix => instant.timestamp().to_string(),
            TimestampFormat::UnixMs => instant.timestamp_millis().to_string(),
            TimestampFormat::Strftime(pattern) => {
                // chrono fails to write only an item it does not know or cannot write (both
                // refused by `parse`, which tries the pattern) or a field the value lacks (a
                // UTC time has them all), so nothing is lost here; `write!` rather than
                // `to_string` keeps even that impossible case from panicking.
                let mut text = String::new();
                let _ = write!(
                    text,
                    "{}",
                    instant.format_with_items(StrftimeItems::new(pattern.as_str()))
                );
                text
            }
        }
    }
}

// As written; validation turns it into `StatePersistence`.
/// Which cursors a pipeline keeps between runs, and where.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "StatePersistence")]
pub(crate) struct RawStatePersistence {
    /// The largest record timestamp delivered.
    #[serde(default)]
    pub(crate) timestamp: Option<RawTimestampCursor>,
    /// The largest record id delivered.
    #[serde(default)]
    pub(crate) id: Option<RawIdCursor>,
    /// The pagination offset reached.
    #[serde(default)]
    pub(crate) offset: Option<RawOffsetCursor>,
    /// Directory of the state files (default `./.cannectors-state`).
    #[serde(default)]
    pub(crate) storage_path: Option<String>,
    /// A record whose timestamp or id field is missing or null: `fail` (default) stops the
    /// batch, `skip` leaves the record out (counted and logged), `deliver` delivers it without
    /// moving the cursor.
    #[serde(default)]
    pub(crate) on_missing_cursor: Option<RawOnMissingCursor>,
    /// Timestamp cursor: each run first reads again this far before the committed timestamp
    /// (`10m`, `30s`, `1h`, `1d`) and delivers only the records it had not delivered, so that
    /// records committed late are not lost. `0s` removes the duplicates of an inclusive
    /// `since`.
    #[serde(default)]
    pub(crate) lookback: Option<String>,
    /// With `lookback`: the dot paths whose values tell records apart (default: the id
    /// cursor's field, else the whole record).
    #[serde(default)]
    pub(crate) identity: Option<Vec<String>>,
    /// With `lookback`: at most this many delivered records are remembered (default 100000);
    /// beyond it the oldest are forgotten, with a warning.
    #[serde(default)]
    pub(crate) max_identities: Option<u64>,
    /// Timestamp cursor: records newer than now - delay (`30s`, `5m`) are not read yet; the
    /// bound goes out as `timestamp.untilParam`, `{{window.end}}` or the SQL parameter
    /// `window.end`, and records a source returns beyond it are held back for a later run.
    #[serde(default)]
    pub(crate) delay: Option<String>,
    /// Where the state is kept: `file` (default) or `postgres` (shared by several processes).
    #[serde(default)]
    pub(crate) store: Option<RawStoreKind>,
    /// PostgreSQL store: the connection URL, written in the file.
    #[serde(default)]
    pub(crate) connection_string: Option<String>,
    /// PostgreSQL store: the connection URL, usually `${STATE_DATABASE_URL}`.
    #[serde(default)]
    pub(crate) connection_string_ref: Option<String>,
    /// PostgreSQL store: how long a lease lasts unless renewed, in milliseconds (default
    /// 30000); keep it well above the longest batch.
    #[serde(default)]
    pub(crate) lease_ttl_ms: Option<u64>,
    /// PostgreSQL store: how often a held lease is renewed, in milliseconds (default a third
    /// of leaseTtlMs).
    #[serde(default)]
    pub(crate) lease_renew_ms: Option<u64>,
}

// As written; validation turns it into `StoreKind`.
/// Where the state is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "StateStore")]
pub(crate) enum RawStoreKind {
    /// A file per pipeline in `storagePath` (the default).
    File,
    /// A row per pipeline in a PostgreSQL table, shared by several processes.
    Postgres,
}

// As written; validation turns it into `OnMissingCursor`.
/// What becomes of a record whose cursor field is missing or null.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "OnMissingCursor")]
pub(crate) enum RawOnMissingCursor {
    /// The batch fails and nothing of it is delivered.
    Fail,
    /// The record is not delivered; counted in the run summary and logged.
    Skip,
    /// The record is delivered; it does not move the cursor.
    Deliver,
}

// As written; validation turns it into `TimestampCursor`.
/// The timestamp cursor.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "TimestampCursor")]
pub(crate) struct RawTimestampCursor {
    /// Whether the cursor is kept (default true when the block is present).
    #[serde(default = "enabled_by_default")]
    pub(crate) enabled: bool,
    /// Dot path of the timestamp in each record.
    #[serde(default)]
    pub(crate) field: Option<String>,
    /// HTTP: query parameter that carries the committed timestamp.
    #[serde(default)]
    pub(crate) query_param: Option<String>,
    /// HTTP: `rfc3339` (default), `unix`, `unix_ms`, or a strftime pattern.
    #[serde(default)]
    pub(crate) format: Option<String>,
    /// HTTP: query parameter that carries the run's upper bound, now - `delay` (or now without
    /// a delay), written in `format`.
    #[serde(default)]
    pub(crate) until_param: Option<String>,
}

// As written; validation turns it into `IdCursor`.
/// The id cursor.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "IdCursor")]
pub(crate) struct RawIdCursor {
    /// Whether the cursor is kept (default true when the block is present).
    #[serde(default = "enabled_by_default")]
    pub(crate) enabled: bool,
    /// Dot path of the id in each record.
    #[serde(default)]
    pub(crate) field: Option<String>,
    /// HTTP: query parameter that carries the committed id.
    #[serde(default)]
    pub(crate) query_param: Option<String>,
}

// As written; validation turns it into `OffsetCursor`.
/// The offset cursor.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "OffsetCursor")]
pub(crate) struct RawOffsetCursor {
    /// Whether the cursor is kept (default true when the block is present).
    #[serde(default = "enabled_by_default")]
    pub(crate) enabled: bool,
    /// HTTP: query parameter that carries the committed offset.
    #[serde(default)]
    pub(crate) query_param: Option<String>,
}

pub(crate) fn enabled_by_default() -> bool {
    true
}

impl RawStatePersistence {
    /// The timestamp cursor when it is enabled.
    pub(crate) fn timestamp(&self) -> Option<&RawTimestampCursor> {
        self.timestamp.as_ref().filter(|c| c.enabled)
    }

    /// The id cursor when it is enabled.
    pub(crate) fn id(&self) -> Option<&RawIdCursor> {
        self.id.as_ref().filter(|c| c.enabled)
    }

    /// The offset cursor when it is enabled.
    pub(crate) fn offset(&self) -> Option<&RawOffsetCursor> {
        self.offset.as_ref().filter(|c| c.enabled)
    }

    /// The rules every input shares: the enabled timestamp and id cursors have a `field`, each
    /// `queryParam` and the `storagePath` are not empty, `format` is a timestamp format. The
    /// input checks what else applies to it (which keys it takes, whether the cursors reach
    /// the request); a database input refuses `queryParam` and `format` before this runs.
    pub(crate) fn validate(&self, path: &KeyPath, findings: &mut Findings) -> StatePersistence {
        if self
            .storage_path
            .as_deref()
            .is_some_and(|p| p.trim().is_empty())
        {
            findings.problem(
                path.key("storagePath"),
                "storagePath is empty; remove it for the default ./.cannectors-state or name a \
                 directory",
            );
        }
        let timestamp = self.timestamp().and_then(|cursor| {
            let cursor_path = path.key("timestamp");
            // Without `field` the cursor is the run's start time (httpPolling; a database input
            // refuses it on its own).
            let field = match cursor.field.as_deref() {
                None => Some(None),
                Some(field) => findings
                    .field_path(cursor_path.key("field"), field)
                    .map(Some),
            };
            let query_param = query_param(findings, &cursor_path, cursor.query_param.as_deref());
            let until_param = cursor.until_param.as_deref().and_then(|param| {
                if param.trim().is_empty() {
                    findings.problem(
                        cursor_path.key("untilParam"),
                        "untilParam is empty; name the query parameter",
                    );
                    return None;
                }
                Some(param.to_owned())
            });
            let format = match cursor.format.as_deref().map(TimestampFormat::parse) {
                None => Some(TimestampFormat::Rfc3339),
                Some(Ok(format)) => Some(format),
                Some(Err(error)) => {
                    findings.problem(cursor_path.key("format"), error.to_string());
                    None
                }
            };
            Some(TimestampCursor {
                field: field?,
                query_param,
                format: format?,
                until_param,
            })
        });
        let id = self.id().and_then(|cursor| {
            let cursor_path = path.key("id");
            let field = cursor_field(findings, &cursor_path, "id", cursor.field.as_deref());
            let query_param = query_param(findings, &cursor_path, cursor.query_param.as_deref());
            Some(IdCursor {
                field: field?,
                query_param,
            })
        });
        let offset = self.offset().map(|cursor| OffsetCursor {
            query_param: query_param(findings, &path.key("offset"), cursor.query_param.as_deref()),
        });
        let on_missing_cursor = match self.on_missing_cursor {
            None | Some(RawOnMissingCursor::Fail) => OnMissingCursor::Fail,
            Some(RawOnMissingCursor::Skip) => OnMissingCursor::Skip,
            Some(RawOnMissingCursor::Deliver) => OnMissingCursor::Deliver,
        };
        if on_missing_cursor != OnMissingCursor::Fail
            && self.timestamp().is_none()
            && self.id().is_none()
        {
            findings.problem(
                path.key("onMissingCursor"),
                "onMissingCursor applies to records that lack the timestamp or id cursor field, \
                 but neither cursor is enabled; enable one, or remove onMissingCursor",
            );
        }
        let lookback = self.lookback(path, findings);
        let delay = self.delay.as_deref().and_then(|written| {
            let delay = match crate::duration::parse_duration(written) {
                Ok(delay) => delay,
                Err(error) => {
                    findings.problem(path.key("delay"), error.to_string());
                    return None;
                }
            };
            if self.timestamp().is_none() {
                findings.problem(
                    path.key("delay"),
                    "delay holds back records by their timestamp, but no timestamp cursor is \
                     enabled; enable statePersistence.timestamp or remove delay",
                );
                return None;
            }
            Some(delay)
        });
        StatePersistence {
            timestamp,
            id,
            offset,
            storage_path: self.storage_path.clone(),
            on_missing_cursor,
            lookback,
            delay,
            store: self.store_kind(path, findings),
        }
    }

    /// `store` and the keys that go with it: the PostgreSQL store needs a PostgreSQL
    /// connection and takes no `storagePath`; the file store takes none of the PostgreSQL
    /// keys, so that a forgotten `store: postgres` is not silently a file store.
    fn store_kind(&self, path: &KeyPath, findings: &mut Findings) -> StoreKind {
        if self.store != Some(RawStoreKind::Postgres) {
            let postgres_keys = [
                ("connectionString", self.connection_string.is_some()),
                ("connectionStringRef", self.connection_string_ref.is_some()),
                ("leaseTtlMs", self.lease_ttl_ms.is_some()),
                ("leaseRenewMs", self.lease_renew_ms.is_some()),
            ];
            for (key, _) in postgres_keys.iter().filter(|(_, written)| *written) {
                findings.problem(
                    path.key(key),
                    format!(
                        "{key} is a setting of the PostgreSQL state store; add `store: postgres` \
                         or remove it"
                    ),
                );
            }
            return StoreKind::File;
        }
        if self.storage_path.is_some() {
            findings.problem(
                path.key("storagePath"),
                "storagePath is the directory of the file store, but `store: postgres` keeps \
                 the state in the database; remove one of them",
            );
        }
        let written = [
            ("connectionString", self.connection_string.as_deref()),
            ("connectionStringRef", self.connection_string_ref.as_deref()),
        ];
        let not_postgres = written.iter().find_map(|(key, url)| {
            let url = url.filter(|url| !url.trim().is_empty())?;
            (Driver::from_url(url) != Some(Driver::Postgres)).then_some(*key)
        });
        let connection = match not_postgres {
            Some(key) => {
                findings.problem(
                    path.key(key),
                    format!(
                        "the state store is a PostgreSQL database: write a postgres:// or \
                         postgresql:// URL in `{key}`"
                    ),
                );
                None
            }
            None => crate::database::connection(
                findings,
                path,
                self.connection_string.as_deref(),
                self.connection_string_ref.as_deref(),
                None,
            ),
        };
        let ttl_ms = self.lease_ttl_ms.unwrap_or(DEFAULT_LEASE_TTL_MS);
        let ttl = crate::validate::positive_ms(
            findings,
            path,
            "leaseTtlMs",
            ttl_ms,
            "30000 (30 seconds)",
        )
        .filter(|ttl| {
            // Every operation on the store is bounded by the TTL, and a dead replica's
            // pipelines wait for it: past an hour, an unreachable database or a lost node
            // would hold a pipeline for longer than anyone watches a run.
            let within = ttl.get() <= LONGEST_LEASE_TTL_MS;
            if !within {
                findings.problem(
                    path.key("leaseTtlMs"),
                    format!(
                        "leaseTtlMs ({ttl}) is longer than an hour ({LONGEST_LEASE_TTL_MS}): a \
                         replica that dies would hold its pipelines that long; keep it well \
                         above the longest batch but at most 3600000"
                    ),
                );
            }
            within
        });
        let renew = match self.lease_renew_ms {
            None => ttl.and_then(|ttl| NonZeroU64::new(ttl.get() / 3)).or(ttl),
            Some(renew_ms) => {
                let renew = crate::validate::positive_ms(
                    findings,
                    path,
                    "leaseRenewMs",
                    renew_ms,
                    "a third of leaseTtlMs",
                );
                match (renew, ttl) {
                    (Some(renew), Some(ttl)) if renew >= ttl => {
                        findings.problem(
                            path.key("leaseRenewMs"),
                            format!(
                                "leaseRenewMs ({renew}) must be shorter than leaseTtlMs ({ttl}), \
                                 or the lease expires before it is renewed; remove it for a \
                                 third of leaseTtlMs"
                            ),
                        );
                        None
                    }
                    (renew, _) => renew,
                }
            }
        };
        match (connection, ttl, renew) {
            (Some(connection), Some(ttl), Some(renew)) => StoreKind::Postgres(PostgresStore {
                connection,
                lease_ttl: Duration::from_millis(ttl.get()),
                lease_renew: Duration::from_millis(renew.get()),
            }),
            // A problem was reported; the settings are not used.
            _ => StoreKind::File,
        }
    }
}

impl RawStatePersistence {
    /// `lookback` with its `identity` and `maxIdentities`; those two without `lookback`, or
    /// `lookback` without a timestamp cursor, are problems.
    fn lookback(&self, path: &KeyPath, findings: &mut Findings) -> Option<Lookback> {
        let Some(written) = &self.lookback else {
            for (key, set) in [
                ("identity", self.identity.is_some()),
                ("maxIdentities", self.max_identities.is_some()),
            ] {
                if set {
                    findings.problem(
                        path.key(key),
                        format!(
                            "{key} belongs to lookback, which is not set; add lookback (e.g. \
                             `lookback: 10m`) or remove {key}"
                        ),
                    );
                }
            }
            return None;
        };
        let window = match crate::duration::parse_duration(written) {
            Ok(window) => Some(window),
            Err(error) => {
                findings.problem(path.key("lookback"), error.to_string());
                None
            }
        };
        if self.timestamp().is_none() {
            findings.problem(
                path.key("lookback"),
                "lookback reaches back before the committed timestamp, but no timestamp cursor \
                 is enabled; enable statePersistence.timestamp or remove lookback",
            );
            return None;
        }
        let identity = match &self.identity {
            Some(fields) if fields.is_empty() => {
                findings.problem(
                    path.key("identity"),
                    "identity is empty; list the dot paths that tell records apart (e.g. \
                     [order.id, line]) or remove it",
                );
                None
            }
            Some(fields) => {
                let parsed: Vec<FieldPath> = fields
                    .iter()
                    .enumerate()
                    .filter_map(|(i, field)| {
                        findings.field_path(path.key("identity").index(i), field)
                    })
                    .collect();
                (parsed.len() == fields.len()).then_some(Identity::Fields(parsed))
            }
            None if self.id().is_some() => Some(Identity::Id),
            None => Some(Identity::Text),
        };
        let max_identities = match self.max_identities {
            None => NonZeroUsize::new(DEFAULT_MAX_IDENTITIES),
            Some(max) => {
                let max = usize::try_from(max).ok().and_then(NonZeroUsize::new);
                if max.is_none() {
                    findings.problem(
                        path.key("maxIdentities"),
                        format!(
                            "maxIdentities must be more than 0; remove it for the default \
                             {DEFAULT_MAX_IDENTITIES}"
                        ),
                    );
                }
                max
            }
        };
        Some(Lookback {
            window: window?,
            identity: identity?,
            max_identities: max_identities?,
        })
    }
}

fn cursor_field(
    findings: &mut Findings,
    path: &KeyPath,
    name: &str,
    field: Option<&str>,
) -> Option<FieldPath> {
    match field {
        None => {
            findings.problem(
                path.key("field"),
                format!(
                    "an enabled {name} cursor needs `field`, the dot path of the {name} in each \
                     record (e.g. `{}`), or `enabled: false`",
                    if name == "id" {
                        "event.id"
                    } else {
                        "updated_at"
                    }
                ),
            );
            None
        }
        Some(field) => findings.field_path(path.key("field"), field),
    }
}

/// The `queryParam` of a cursor; an empty one is a problem (and reads as none).
fn query_param(
    findings: &mut Findings,
    path: &KeyPath,
    query_param: Option<&str>,
) -> Option<String> {
    let query_param = query_param?;
    if query_param.trim().is_empty() {
        findings.problem(
            path.key("queryParam"),
            "queryParam is empty; name the query parameter",
        );
        return None;
    }
    Some(query_param.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instant(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn the_three_names_are_exact_words() {
        assert_eq!(
            TimestampFormat::parse("rfc3339"),
            Ok(TimestampFormat::Rfc3339)
        );
        assert_eq!(TimestampFormat::parse("unix"), Ok(TimestampFormat::Unix));
        assert_eq!(
            TimestampFormat::parse("unix_ms"),
            Ok(TimestampFormat::UnixMs)
        );
        for other in ["RFC3339", "Unix", " unix", "unix-ms", "iso", ""] {
            assert_eq!(
                TimestampFormat::parse(other).unwrap_err().to_string(),
                format!(
                    "`{other}` is not a timestamp format; use rfc3339, unix, unix_ms or a \
                     strftime pattern such as %Y-%m-%dT%H:%M:%SZ"
                )
            );
        }
    }

    #[test]
    fn a_strftime_pattern_needs_a_percent_and_items_chrono_knows() {
        for pattern in ["%Y-%m-%d", "since %s", "%Y-%m-%dT%H:%M:%S%.3fZ", "%%Y"] {
            let format = TimestampFormat::parse(pattern).unwrap();
            assert!(matches!(format, TimestampFormat::Strftime(p) if p.as_str() == pattern));
        }
        for pattern in ["%Q", "%Y-%", "%Y %!"] {
            assert_eq!(
                TimestampFormat::parse(pattern).unwrap_err().to_string(),
                format!(
                    "`{pattern}` is not a strftime pattern chrono accepts; use rfc3339, unix, \
                     unix_ms or a strftime pattern such as %Y-%m-%dT%H:%M:%SZ"
                )
            );
        }
        assert!(TimestampFormat::parse("YYYY-MM-DD").is_err());
        assert_eq!(
            TimestampFormat::parse("%Y %#z").unwrap_err().to_string(),
            "`%Y %#z` is not a strftime pattern that can write a timestamp; use rfc3339, unix, \
             unix_ms or a strftime pattern such as %Y-%m-%dT%H:%M:%SZ"
        );
    }

    #[test]
    fn formats_write_the_instant_in_utc() {
        let t = instant("2026-01-02T03:04:05.250+01:00");
        let render = |f: &str| TimestampFormat::parse(f).unwrap().render(t);
        assert_eq!(render("rfc3339"), "2026-01-02T02:04:05.250Z");
        assert_eq!(render("unix"), "1767319445");
        assert_eq!(render("unix_ms"), "1767319445250");
        assert_eq!(render("%Y/%m/%d %H:%M"), "2026/01/02 02:04");
        assert_eq!(
            TimestampFormat::Rfc3339.render(instant("2026-01-01T00:00:00Z")),
            "2026-01-01T00:00:00Z"
        );
    }

    #[test]
    fn every_pattern_writes_instants_far_from_today() {
        let instants = [
            DateTime::<Utc>::UNIX_EPOCH,
            DateTime::<Utc>::from_timestamp(-62_000_000_000, 0).unwrap(),
            DateTime::<Utc>::from_timestamp(400_000_000_000, 999_999_999).unwrap(),
        ];
        let every_item = "%Y %C %y %G %g %m %b %B %h %d %e %a %A %w %u %U %W %V %j %D %x %F %v \
                          %H %k %I %l %P %p %M %S %f %.f %.3f %3f %R %T %X %r %Z %z %:z %c \
                          %+ %s %t %n %%";
        let format = TimestampFormat::parse(every_item).unwrap();
        for instant in instants {
            assert!(!format.render(instant).is_empty());
        }
    }
}
