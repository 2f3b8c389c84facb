//! What the HTTP input and the HTTP output share: methods, retries, timeouts and endpoints,
//! with their rules (authentication has its own module).
//!
//! Retries are handed to the shared HTTP client of cannectors-connector as numbers it uses as
//! they are; an endpoint is parsed into a URL, or into a template that becomes one when it is
//! filled.

use crate::expression::Expression;
use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU64;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use url::Url;

use crate::document::KeyPath;
use crate::template::Template;
use crate::validate::Findings;

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

/// Retries of failed requests with exponential backoff (docs/http-input.md, Retries), checked:
/// delays that do not shrink, a cap not below the first delay, real status codes.
/// `maxAttempts` counts the retries after the first attempt, as the Go tool this project
/// descends from reads it: 0 never retries.
///
/// ```
/// use std::time::Duration;
/// use cannectors_config::{InputConfig, RetryConfig};
///
/// let yaml = r#"
/// name: events
/// input:
///   type: httpPolling
///   endpoint: https://api.example.com/events
///   retry: {maxAttempts: 5, delayMs: 100}
/// output: {type: stdout}
/// "#;
/// let pipeline = cannectors_config::parse_str(yaml, "events.yaml", &|_| None).unwrap().pipeline;
/// let InputConfig::HttpPolling(input) = &pipeline.input else { unreachable!() };
/// // Five retries after the first attempt: six requests at most.
/// assert_eq!(input.retry.max_retries(), 5);
/// assert_eq!(input.retry.delay(), Duration::from_millis(100));
/// // Keys left out keep their defaults.
/// assert_eq!(input.retry.max_delay(), RetryConfig::default().max_delay());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    max_retries: u32,
    delay: Duration,
    backoff_multiplier: f64,
    max_delay: Duration,
    retryable_status_codes: Vec<u16>,
    use_retry_after_header: bool,
    retry_hint_from_body: Option<Expression>,
}

impl RetryConfig {
    /// Retries after the first attempt (`maxAttempts`; 0 = never retry).
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The delay before the first retry.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// The factor applied to the delay after each retry: finite, 1 or more.
    pub fn backoff_multiplier(&self) -> f64 {
        self.backoff_multiplier
    }

    /// The longest one delay may be, `Retry-After` included; not below [`RetryConfig::delay`].
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The status codes worth another attempt, each 100 to 599.
    pub fn retryable_status_codes(&self) -> &[u16] {
        &self.retryable_status_codes
    }

    /// Whether a `Retry-After` header sets the wait.
    pub fn use_retry_after_header(&self) -> bool {
        self.use_retry_after_header
    }

    /// `retryHintFromBody`: an expression on the JSON body (`body`) and the status (`status`)
    /// of a response whose status is retryable; when it is false the request is not retried.
    pub fn retry_hint_from_body(&self) -> Option<&Expression> {
        self.retry_hint_from_body.as_ref()
    }
}

impl Default for RetryConfig {
    /// The documented defaults: 3 retries after the first attempt, 500 ms doubling up to 30 s, on 429, 500, 502, 503
    /// and 504, `Retry-After` honoured.
    fn default() -> Self {
        let raw = RawRetryConfig::default();
        RetryConfig {
            max_retries: raw.max_attempts,
            delay: Duration::from_millis(raw.delay_ms),
            backoff_multiplier: raw.backoff_multiplier,
            max_delay: Duration::from_millis(raw.max_delay_ms),
            retryable_status_codes: raw.retryable_status_codes,
            use_retry_after_header: raw.use_retry_after_header,
            retry_hint_from_body: None,
        }
    }
}

/// Retries after the first attempt unless `maxAttempts` says otherwise (the Go tool's default).
const DEFAULT_MAX_RETRIES: u32 = 3;

// As written; validation turns it into `RetryConfig`.
/// Retries with exponential backoff.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
#[schemars(rename = "RetryConfig")]
pub(crate) struct RawRetryConfig {
    /// Retries after the first attempt, as the Go tool counts them: 0 = never retry (default 3).
    pub(crate) max_attempts: u32,
    /// Delay before the first retry in milliseconds (default 500).
    pub(crate) delay_ms: u64,
    /// Factor applied to the delay after each retry (default 2).
    pub(crate) backoff_multiplier: f64,
    /// Upper bound of one delay in milliseconds (default 30000).
    pub(crate) max_delay_ms: u64,
    /// Status codes worth another attempt (default 429, 500, 502, 503, 504).
    pub(crate) retryable_status_codes: Vec<u16>,
    /// Wait as long as a `Retry-After` header asks (default true).
    pub(crate) use_retry_after_header: bool,
    /// An expression on the JSON `body` (and `status`) of a response with a retryable status;
    /// false: do not retry. A body that is not JSON falls back to the status code.
    pub(crate) retry_hint_from_body: Option<String>,
}

impl Default for RawRetryConfig {
    fn default() -> Self {
        RawRetryConfig {
            max_attempts: DEFAULT_MAX_RETRIES,
            delay_ms: 500,
            backoff_multiplier: 2.0,
            max_delay_ms: 30_000,
            retryable_status_codes: vec![429, 500, 502, 503, 504],
            use_retry_after_header: true,
            retry_hint_from_body: None,
        }
    }
}

impl RawRetryConfig {
    /// Delays that do not shrink, a cap not below the first delay, real status codes; `path` is
    /// the `retry` block.
    pub(crate) fn validate(&self, path: &KeyPath, findings: &mut Findings) -> Option<RetryConfig> {
        let mark = findings.mark();
        if !(self.backoff_multiplier.is_finite() && self.backoff_multiplier >= 1.0) {
            findings.problem(
                path.key("backoffMultiplier"),
                format!(
                    "backoffMultiplier is {}, but delays must not shrink: use 1 (constant) or more",
                    self.backoff_multiplier
                ),
            );
        }
        if self.max_delay_ms < self.delay_ms {
            findings.problem(
                path.key("maxDelayMs"),
                format!(
                    "maxDelayMs ({}) is below delayMs ({}); raise maxDelayMs",
                    self.max_delay_ms, self.delay_ms
                ),
            );
        }
        for (i, code) in self.retryable_status_codes.iter().enumerate() {
            if !(100..=599).contains(code) {
                findings.problem(
                    path.key("retryableStatusCodes").index(i),
                    format!("{code} is not an HTTP status code (100 to 599)"),
                );
            }
        }
        let retry_hint_from_body = match self.retry_hint_from_body.as_deref() {
            None => None,
            Some(text) => match Expression::compile(text) {
                Ok(expression) => Some(expression),
                Err(error) => {
                    findings.problem(path.key("retryHintFromBody"), error.to_string());
                    None
                }
            },
        };
        findings.clean_since(mark).then_some(RetryConfig {
            max_retries: self.max_attempts,
            delay: Duration::from_millis(self.delay_ms),
            backoff_multiplier: self.backoff_multiplier,
            max_delay: Duration::from_millis(self.max_delay_ms),
            retryable_status_codes: self.retryable_status_codes.clone(),
            use_retry_after_header: self.use_retry_after_header,
            retry_hint_from_body,
        })
    }
}

/// Request timeout unless `timeoutMs` says otherwise.
pub(crate) fn default_timeout_ms() -> u64 {
    30_000
}

/// `timeoutMs`: zero would fail every request.
pub(crate) fn timeout(
    findings: &mut Findings,
    path: &KeyPath,
    timeout_ms: u64,
) -> Option<NonZeroU64> {
    crate::validate::positive_ms(findings, path, "timeoutMs", timeout_ms, "30000")
}

/// Where requests go: a URL, or a template that becomes one when its placeholders are filled.
/// `R` is what the placeholders refer to (see [`Template`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint<R> {
    /// An http or https URL with a host.
    Url(Url),
    /// A template with at least one placeholder, which renders into an http or https URL
    /// once filled with plain values; what a value makes of it is known only at run time.
    Template(Template<R>),
}

impl<R> fmt::Display for Endpoint<R>
where
    Template<R>: fmt::Display,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Url(url) => f.write_str(url.as_str()),
            Endpoint::Template(template) => write!(f, "{template}"),
        }
    }
}

/// `text` parsed as a template, or a problem at `path`.
pub(crate) fn template(findings: &mut Findings, path: &KeyPath, text: &str) -> Option<Template> {
    match Template::parse(text) {
        Ok(template) => Some(template),
        Err(error) => {
            findings.problem(path.clone(), error.reason);
            None
        }
    }
}

/// Where `{{state.*}}` may be written, for the problem that says it is not allowed elsewhere.
pub(crate) const STATE_PLACES: &str = "{{state.*}} is filled only in an httpPolling input (endpoint, headers, queryParams, body); \
     remove it here";

/// Where `{{record.*}}` may be written.
pub(crate) const RECORD_PLACES: &str = "{{record.*}} is filled only in the endpoint of an httpRequest output with \
     `requestMode: single`; remove it here or send one request a record";

/// Checks an http(s) URL that may hold placeholders; `narrow` keeps the placeholders the place
/// allows (or says which are not). A URL without placeholders is parsed here; one with them
/// must be a URL once they are filled with a plain value.
pub(crate) fn endpoint<R>(
    findings: &mut Findings,
    path: &KeyPath,
    text: &str,
    narrow: impl FnOnce(Template) -> Result<Template<R>, &'static str>,
) -> Option<Endpoint<R>> {
    let parsed = template(findings, path, text)?;
    let rendered = parsed.render_with("0");
    let url = http_url(findings, path, text, rendered.trim());
    let template = match narrow(parsed) {
        Ok(template) => template,
        Err(problem) => {
            findings.problem(path.clone(), problem);
            return None;
        }
    };
    let url = url?;
    if template.is_plain() {
        Some(Endpoint::Url(url))
    } else {
        Some(Endpoint::Template(template))
    }
}

/// `rendered` (the URL `text` once its placeholders are filled) parsed as an http(s) URL with a
/// host, or a problem at `path` quoting `text`.
pub(crate) fn http_url(
    findings: &mut Findings,
    path: &KeyPath,
    text: &str,
    rendered: &str,
) -> Option<Url> {
    let hint = "write an http:// or https:// URL such as https://api.example.com/v1/items";
    let problem = match Url::parse(rendered) {
        Err(error) => format!("`{text}` is not a URL ({error}); {hint}"),
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            format!("`{text}` uses the scheme `{}`; {hint}", url.scheme())
        }
        Ok(url) if url.host_str().is_none_or(str::is_empty) => {
            format!("`{text}` has no host; {hint}")
        }
        Ok(url) => return Some(url),
    };
    findings.problem(path.clone(), problem);
    None
}

/// An http(s) URL in a place that fills no placeholder, or the problems at `path`.
pub(crate) fn url(findings: &mut Findings, path: &KeyPath, text: &str) -> Option<Url> {
    let parsed = template(findings, path, text)?;
    let url = http_url(findings, path, text, parsed.render_with("0").trim());
    if parsed.uses_any_state() {
        findings.problem(path.clone(), STATE_PLACES);
        return None;
    }
    if parsed.uses_record() {
        findings.problem(path.clone(), RECORD_PLACES);
        return None;
    }
    url
}

/// Header or query values of an httpRequest output: sent as written, so no placeholder.
pub(crate) fn plain_values(
    findings: &mut Findings,
    path: &KeyPath,
    values: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    for (name, value) in &values {
        if let Some(template) = template(findings, &path.key(name), value)
            && !template.is_plain()
        {
            let problem = if template.uses_any_state() {
                STATE_PLACES
            } else {
                RECORD_PLACES
            };
            findings.problem(path.key(name), problem);
        }
    }
    values
}
