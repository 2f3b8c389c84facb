//! The pipeline model: one Rust type per block of the pipeline file.
//!
//! These types are the documentation of the file format (docs/configuration.md). Each struct
//! rejects unknown keys; defaults live here, next to the key they belong to, so that the JSON
//! Schema and the runtime agree on them. Checks that need more than one key at a time live in
//! `validate.rs`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::expr::Expr;

/// A whole pipeline file: where records come from, how they are reshaped, where they go.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Pipeline {
    /// Pipeline name, `[A-Za-z0-9][A-Za-z0-9._-]*`. Names the state file and the lock.
    pub name: String,
    /// Free text version of the pipeline file; `version: 2` is read as the text `2`.
    #[serde(default, deserialize_with = "crate::scalar::version_text")]
    #[schemars(with = "Option<VersionSchema>")]
    pub version: Option<String>,
    /// Free text description.
    #[serde(default)]
    pub description: Option<String>,
    /// Free labels.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Where records come from.
    pub input: InputConfig,
    /// Ordered reshaping steps applied to every batch.
    #[serde(default)]
    pub filters: Vec<FilterConfig>,
    /// Where records go.
    pub output: OutputConfig,
}

/// The source of a pipeline, chosen by `type`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per pipeline, read once; boxing would only complicate matching"
)]
pub enum InputConfig {
    /// Polls an HTTP API (docs/http-input.md).
    HttpPolling(HttpPollingInput),
    /// Reads rows from a SQL database (docs/databases.md).
    Database(DatabaseInput),
}

impl InputConfig {
    /// The cron schedule of the input, if any.
    pub fn schedule(&self) -> Option<&str> {
        match self {
            InputConfig::HttpPolling(input) => input.schedule.as_deref(),
            InputConfig::Database(input) => input.schedule.as_deref(),
        }
    }

    /// The IANA time zone the schedule is read in, if any (UTC when absent).
    pub fn timezone(&self) -> Option<&str> {
        match self {
            InputConfig::HttpPolling(input) => input.timezone.as_deref(),
            InputConfig::Database(input) => input.timezone.as_deref(),
        }
    }

    /// The cursor settings of the input, if any.
    pub fn state_persistence(&self) -> Option<&StatePersistence> {
        match self {
            InputConfig::HttpPolling(input) => input.state_persistence.as_ref(),
            InputConfig::Database(input) => input.state_persistence.as_ref(),
        }
    }
}

/// HTTP method of a source request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum SourceMethod {
    /// `GET` (the default).
    #[default]
    Get,
    /// `POST`, with an optional `body`.
    Post,
}

/// HTTP method of a destination request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum SinkMethod {
    /// `POST` (the default).
    #[default]
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
    /// `GET`.
    Get,
}

/// The `httpPolling` input (docs/http-input.md).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpPollingInput {
    /// Cron expression, 5 fields (minute first) or 6 (seconds first). Absent: run once.
    #[serde(default)]
    pub schedule: Option<String>,
    /// IANA time zone of the schedule (default UTC).
    #[serde(default)]
    pub timezone: Option<String>,
    /// http or https URL of the API. May hold `{{state.timestamp}}`, `{{state.id}}`,
    /// `{{state.offset}}`.
    pub endpoint: String,
    /// `GET` (default) or `POST`.
    #[serde(default)]
    pub method: SourceMethod,
    /// Extra request headers.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ScalarSchema>")]
    #[serde(deserialize_with = "crate::scalar::string_map")]
    pub headers: BTreeMap<String, String>,
    /// Extra query parameters.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ScalarSchema>")]
    #[serde(deserialize_with = "crate::scalar::string_map")]
    pub query_params: BTreeMap<String, String>,
    /// `POST` body: a mapping is sent as JSON, a string as it is.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// Dot path to the array of records in the response.
    #[serde(default)]
    pub data_field: Option<String>,
    /// Request timeout in milliseconds (default 30000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How to authenticate against the API.
    #[serde(default)]
    pub authentication: Option<Authentication>,
    /// Retries of failed requests.
    #[serde(default)]
    pub retry: RetryConfig,
    /// How to walk through the pages of one run.
    #[serde(default)]
    pub pagination: Option<Pagination>,
    /// Which cursors to keep between runs.
    #[serde(default)]
    pub state_persistence: Option<StatePersistence>,
}

pub(crate) fn default_timeout_ms() -> u64 {
    30_000
}

/// Authentication of an HTTP request.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Authentication {
    /// `api-key`, `bearer`, `basic` or `oauth2`.
    #[serde(rename = "type")]
    pub kind: AuthKind,
    /// The secrets of the chosen type.
    pub credentials: Credentials,
}

/// Kind of authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum AuthKind {
    /// A key sent in a header or a query parameter (`key`, `location`, `headerName`, `paramName`).
    #[serde(rename = "api-key")]
    ApiKey,
    /// `Authorization: Bearer <token>` (`token`).
    #[serde(rename = "bearer")]
    Bearer,
    /// `Authorization: Basic` (`username`, `password`).
    #[serde(rename = "basic")]
    Basic,
    /// OAuth 2 client credentials (`tokenUrl`, `clientId`, `clientSecret`, `scopes`).
    #[serde(rename = "oauth2")]
    OAuth2,
}

/// Where an api key goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ApiKeyLocation {
    /// In a request header (default `X-API-Key`).
    #[default]
    Header,
    /// In a query parameter (default `api_key`).
    Query,
}

/// Credentials of every authentication kind; which keys are required depends on the kind.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Credentials {
    /// api-key: the key.
    #[serde(default)]
    pub key: Option<String>,
    /// api-key: `header` (default) or `query`.
    #[serde(default)]
    pub location: Option<ApiKeyLocation>,
    /// api-key: header name (default `X-API-Key`).
    #[serde(default)]
    pub header_name: Option<String>,
    /// api-key: query parameter name (default `api_key`).
    #[serde(default)]
    pub param_name: Option<String>,
    /// bearer: the token.
    #[serde(default)]
    pub token: Option<String>,
    /// basic: the user name.
    #[serde(default)]
    pub username: Option<String>,
    /// basic: the password.
    #[serde(default)]
    pub password: Option<String>,
    /// oauth2: the token endpoint.
    #[serde(default)]
    pub token_url: Option<String>,
    /// oauth2: the client id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// oauth2: the client secret.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// oauth2: requested scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// Retries with exponential backoff.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct RetryConfig {
    /// Attempts in all, the first included (default 3).
    pub max_attempts: u32,
    /// Delay before the first retry in milliseconds (default 500).
    pub delay_ms: u64,
    /// Factor applied to the delay after each retry (default 2).
    pub backoff_multiplier: f64,
    /// Upper bound of one delay in milliseconds (default 30000).
    pub max_delay_ms: u64,
    /// Status codes worth another attempt (default 429, 500, 502, 503, 504).
    pub retryable_status_codes: Vec<u16>,
    /// Wait as long as a `Retry-After` header asks (default true).
    pub use_retry_after_header: bool,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            delay_ms: 500,
            backoff_multiplier: 2.0,
            max_delay_ms: 30_000,
            retryable_status_codes: vec![429, 500, 502, 503, 504],
            use_retry_after_header: true,
        }
    }
}

/// Kind of pagination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PaginationKind {
    /// Page numbers in `param`; stops after `totalPagesField`.
    Page,
    /// Record offsets in `param`; stops when offset >= `totalField`.
    Offset,
    /// An opaque token read from `nextCursorField`.
    Cursor,
    /// The `Link: <...>; rel="next"` response header (RFC 8288).
    Link,
}

/// Pagination of one run. Every kind also stops on an empty page and on a page shorter than
/// `limit`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Pagination {
    /// `page`, `offset`, `cursor` or `link`.
    #[serde(rename = "type")]
    pub kind: PaginationKind,
    /// Request parameter carrying the page number, offset or cursor token.
    #[serde(default)]
    pub param: Option<String>,
    /// Request parameter carrying the page size.
    #[serde(default)]
    pub limit_param: Option<String>,
    /// Page size.
    #[serde(default)]
    pub limit: Option<u64>,
    /// offset: response path of the total number of records.
    #[serde(default)]
    pub total_field: Option<String>,
    /// page: response path of the number of pages.
    #[serde(default)]
    pub total_pages_field: Option<String>,
    /// cursor: response path of the next token; stops when null, absent or empty.
    #[serde(default)]
    pub next_cursor_field: Option<String>,
    /// page: number of the first page (default 1).
    #[serde(default)]
    pub start_page: Option<u64>,
    /// Guard against a server that never stops: at most this many pages in one run
    /// (default 10000).
    #[serde(default)]
    pub max_pages: Option<u64>,
}

/// Which cursors a pipeline keeps between runs, and where.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StatePersistence {
    /// The largest record timestamp delivered.
    #[serde(default)]
    pub timestamp: Option<TimestampCursor>,
    /// The largest record id delivered.
    #[serde(default)]
    pub id: Option<IdCursor>,
    /// The pagination offset reached.
    #[serde(default)]
    pub offset: Option<OffsetCursor>,
    /// Directory of the state files (default `./.cannectors-state`).
    #[serde(default)]
    pub storage_path: Option<String>,
}

/// The timestamp cursor.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimestampCursor {
    /// Whether the cursor is kept (default true when the block is present).
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Dot path of the timestamp in each record.
    #[serde(default)]
    pub field: Option<String>,
    /// HTTP: query parameter that carries the committed timestamp.
    #[serde(default)]
    pub query_param: Option<String>,
    /// HTTP: `rfc3339` (default), `unix`, `unix_ms`, or a strftime pattern.
    #[serde(default)]
    pub format: Option<String>,
}

impl TimestampCursor {
    /// How the committed timestamp is rendered into a request; `rfc3339` when `format` is
    /// absent. A loaded pipeline has a valid `format`; an invalid one reads as a strftime
    /// pattern here.
    pub fn timestamp_format(&self) -> TimestampFormat {
        match &self.format {
            None => TimestampFormat::Rfc3339,
            Some(text) => TimestampFormat::parse(text)
                .unwrap_or_else(|_| TimestampFormat::Strftime(text.clone())),
        }
    }
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
    Strftime(String),
}

impl TimestampFormat {
    /// Reads `rfc3339`, `unix`, `unix_ms` or a strftime pattern that chrono accepts.
    ///
    /// ```
    /// use cannectors_config::TimestampFormat;
    /// assert_eq!(TimestampFormat::parse("unix_ms"), Ok(TimestampFormat::UnixMs));
    /// assert!(TimestampFormat::parse("%Y-%m-%dT%H:%M:%S").is_ok());
    /// assert!(TimestampFormat::parse("%Q").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<TimestampFormat, String> {
        match text {
            "rfc3339" => return Ok(TimestampFormat::Rfc3339),
            "unix" => return Ok(TimestampFormat::Unix),
            "unix_ms" => return Ok(TimestampFormat::UnixMs),
            _ => {}
        }
        let hint = "use rfc3339, unix, unix_ms or a strftime pattern such as %Y-%m-%dT%H:%M:%SZ";
        if !text.contains('%') {
            return Err(format!("`{text}` is not a timestamp format; {hint}"));
        }
        let invalid = chrono::format::StrftimeItems::new(text)
            .any(|item| matches!(item, chrono::format::Item::Error));
        if invalid {
            return Err(format!(
                "`{text}` is not a strftime pattern chrono accepts; {hint}"
            ));
        }
        Ok(TimestampFormat::Strftime(text.to_owned()))
    }
}

/// The id cursor.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IdCursor {
    /// Whether the cursor is kept (default true when the block is present).
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Dot path of the id in each record.
    #[serde(default)]
    pub field: Option<String>,
    /// HTTP: query parameter that carries the committed id.
    #[serde(default)]
    pub query_param: Option<String>,
}

/// The offset cursor.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OffsetCursor {
    /// Whether the cursor is kept (default true when the block is present).
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// HTTP: query parameter that carries the committed offset.
    #[serde(default)]
    pub query_param: Option<String>,
}

fn enabled_by_default() -> bool {
    true
}

impl StatePersistence {
    /// The timestamp cursor when it is enabled.
    pub fn timestamp(&self) -> Option<&TimestampCursor> {
        self.timestamp.as_ref().filter(|c| c.enabled)
    }

    /// The id cursor when it is enabled.
    pub fn id(&self) -> Option<&IdCursor> {
        self.id.as_ref().filter(|c| c.enabled)
    }

    /// The offset cursor when it is enabled.
    pub fn offset(&self) -> Option<&OffsetCursor> {
        self.offset.as_ref().filter(|c| c.enabled)
    }

    /// Whether any cursor is enabled.
    pub fn any_enabled(&self) -> bool {
        self.timestamp().is_some() || self.id().is_some() || self.offset().is_some()
    }
}

/// A database engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Driver {
    /// PostgreSQL (`postgres://`, `postgresql://`).
    Postgres,
    /// SQLite (`sqlite://path`, `file:path`).
    Sqlite,
}

impl Driver {
    /// The driver a connection URL names: `postgres://` and `postgresql://` are PostgreSQL;
    /// `sqlite:`, `file:` and a path ending in `.db`, `.sqlite` or `.sqlite3` are SQLite.
    ///
    /// ```
    /// use cannectors_config::Driver;
    /// assert_eq!(Driver::from_url("postgresql://app@db/app"), Some(Driver::Postgres));
    /// assert_eq!(Driver::from_url("./data/events.db"), Some(Driver::Sqlite));
    /// assert_eq!(Driver::from_url("mysql://db/app"), None);
    /// ```
    pub fn from_url(url: &str) -> Option<Driver> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Some(Driver::Postgres)
        } else if lower.starts_with("sqlite:")
            || lower.starts_with("file:")
            || [".db", ".sqlite", ".sqlite3"]
                .iter()
                .any(|ext| lower.ends_with(ext))
        {
            Some(Driver::Sqlite)
        } else {
            None
        }
    }

    /// The name written in a pipeline file: `postgres` or `sqlite`.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Postgres => "postgres",
            Driver::Sqlite => "sqlite",
        }
    }
}

/// The `database` input (docs/databases.md).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DatabaseInput {
    /// Cron expression, 5 fields (minute first) or 6 (seconds first). Absent: run once.
    #[serde(default)]
    pub schedule: Option<String>,
    /// IANA time zone of the schedule (default UTC).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Connection URL written in the file.
    #[serde(default)]
    pub connection_string: Option<String>,
    /// Connection URL, usually `${VAR}` so that it stays out of the file.
    #[serde(default)]
    pub connection_string_ref: Option<String>,
    /// `postgres` or `sqlite`; inferred from the URL when absent. Always set in a loaded
    /// pipeline.
    #[serde(default)]
    pub driver: Option<Driver>,
    /// The query; `$1..$n` are bound from `parameters`. Always set in a loaded pipeline: the
    /// loader reads `queryFile` into it.
    #[serde(default)]
    pub query: Option<String>,
    /// A file holding the query, relative to the directory of the pipeline file.
    #[serde(default)]
    pub query_file: Option<String>,
    /// Values bound to `$1..$n`: `state.timestamp`, `state.id`, `state.offset`, JSON literals,
    /// `a ?? b`. Default: the enabled cursors in the order timestamp, id, offset.
    #[serde(default)]
    pub parameters: Option<Vec<Expr>>,
    /// Which cursors to keep between runs.
    #[serde(default)]
    pub state_persistence: Option<StatePersistence>,
    /// The longest the database may take to answer one statement, in milliseconds (default
    /// 300000): the query with all its rows. A statement that takes longer fails the run.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
}

/// Five minutes: long enough for a heavy query on a large table, short enough that a server
/// that stopped answering does not hold a scheduled pipeline for hours.
pub(crate) fn default_statement_timeout_ms() -> u64 {
    300_000
}

impl DatabaseInput {
    /// The connection URL, from `connectionString` or `connectionStringRef`.
    pub fn connection(&self) -> Option<&str> {
        self.connection_string
            .as_deref()
            .or(self.connection_string_ref.as_deref())
    }
}

/// The destination of a pipeline, chosen by `type`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per pipeline, read once; boxing would only complicate matching"
)]
pub enum OutputConfig {
    /// JSON Lines to standard output.
    Stdout(StdoutOutput),
    /// JSON Lines appended to a file.
    File(FileOutput),
    /// HTTP requests to an API.
    HttpRequest(HttpRequestOutput),
    /// Statements against a SQL database.
    Database(DatabaseOutput),
}

/// The `stdout` output: one JSON object a line.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StdoutOutput {}

/// The `file` output: JSON Lines appended to `path`, flushed and fsynced before every commit.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileOutput {
    /// File to append to; a relative path resolves against the working directory.
    pub path: String,
}

/// How an `httpRequest` output sends records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RequestMode {
    /// One JSON array a request (default).
    #[default]
    Batch,
    /// One request a record.
    Single,
}

/// The `httpRequest` output.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRequestOutput {
    /// http or https URL; in single mode it may hold `{{record.path}}`.
    pub endpoint: String,
    /// `POST` (default), `PUT`, `PATCH`, `DELETE` or `GET`.
    #[serde(default)]
    pub method: SinkMethod,
    /// `batch` (default) or `single`.
    #[serde(default)]
    pub request_mode: RequestMode,
    /// Batch mode: at most this many records a request.
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Extra request headers.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ScalarSchema>")]
    #[serde(deserialize_with = "crate::scalar::string_map")]
    pub headers: BTreeMap<String, String>,
    /// Extra query parameters.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ScalarSchema>")]
    #[serde(deserialize_with = "crate::scalar::string_map")]
    pub query_params: BTreeMap<String, String>,
    /// How to authenticate against the API.
    #[serde(default)]
    pub authentication: Option<Authentication>,
    /// Retries of failed requests.
    #[serde(default)]
    pub retry: RetryConfig,
    /// Request timeout in milliseconds (default 30000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Which responses count as delivered (default: any 2xx).
    #[serde(default)]
    pub success: Option<SuccessConfig>,
}

/// Which responses count as delivered.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SuccessConfig {
    /// Accepted status codes.
    pub status_codes: Vec<u16>,
}

/// The `database` output.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DatabaseOutput {
    /// Connection URL written in the file.
    #[serde(default)]
    pub connection_string: Option<String>,
    /// Connection URL, usually `${VAR}`.
    #[serde(default)]
    pub connection_string_ref: Option<String>,
    /// `postgres` or `sqlite`; inferred from the URL when absent. Always set in a loaded
    /// pipeline.
    #[serde(default)]
    pub driver: Option<Driver>,
    /// Statement run once a record; `$1..$n` are bound from `parameters`.
    pub query: String,
    /// Values bound to `$1..$n`: `record.path`, JSON literals, `a ?? b`.
    #[serde(default)]
    pub parameters: Vec<Expr>,
    /// One transaction a batch (default true): the batch commits whole or not at all.
    #[serde(default = "enabled_by_default")]
    pub transaction: bool,
    /// The longest the database may take to answer one statement, in milliseconds (default
    /// 300000): beginning or committing the transaction, or writing a group of records.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
}

impl DatabaseOutput {
    /// The connection URL, from `connectionString` or `connectionStringRef`.
    pub fn connection(&self) -> Option<&str> {
        self.connection_string
            .as_deref()
            .or(self.connection_string_ref.as_deref())
    }
}

/// One filter step: its `type` and its settings.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
pub struct FilterConfig {
    /// Filter type, e.g. `set`, `remove`, `mapping`, `condition`, `drop`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The settings of the filter.
    #[serde(flatten)]
    pub settings: BTreeMap<String, serde_json::Value>,
}

/// Schema stand-in for `version`: text, or a whole number.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum VersionSchema {
    Text(String),
    Number(u64),
}

/// Schema stand-in for a header or query value: a string, number or boolean.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum ScalarSchema {
    Text(String),
    Number(f64),
    Flag(bool),
}
