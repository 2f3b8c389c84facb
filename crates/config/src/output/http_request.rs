//! The `httpRequest` output: its settings, the block as written, and its rules.

use std::collections::BTreeMap;
use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use url::Url;

use crate::authentication::{Authentication, RawAuthentication};
use crate::document::KeyPath;
use crate::expression::Expression;
use crate::http::{
    Endpoint, RawRetryConfig, RetryConfig, STATE_PLACES, SinkMethod, default_timeout_ms, endpoint,
    plain_values, timeout, url,
};
use crate::model::ScalarSchema;
use crate::output::database::OnRefusedRow;
use crate::path::FieldPath;
use crate::validate::Findings;

/// The `httpRequest` output (docs/outputs.md), checked.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HttpRequestOutput {
    /// `POST` (default), `PUT`, `PATCH`, `DELETE` or `GET`.
    pub method: SinkMethod,
    /// How records are sent, and where.
    pub request_mode: RequestMode,
    /// Extra request headers, sent as written.
    pub headers: BTreeMap<String, String>,
    /// Extra query parameters, sent as written.
    pub query_params: BTreeMap<String, String>,
    /// How to authenticate against the API, with exactly the credentials of its type.
    pub authentication: Option<Authentication>,
    /// Retries of failed requests.
    pub retry: RetryConfig,
    /// Request timeout in milliseconds (default 30000).
    pub timeout_ms: NonZeroU64,
    /// Which responses count as delivered (default: any 2xx): status codes, an expression on
    /// the response, or both.
    pub success: Option<SuccessConfig>,
    /// Records a delivery gathers across source batches (`batchSize`); `None`: one delivery a
    /// source batch. In batch mode the same number also bounds the records of a request.
    pub batch_size: Option<NonZeroUsize>,
    /// What a record the destination refuses does in single mode (`onError`, as in the Go
    /// tool); batch mode always fails on a refused request.
    pub on_error: OnRefusedRow,
}

impl HttpRequestOutput {
    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.get())
    }

    /// The endpoint as written (with its templates), for messages.
    pub fn endpoint(&self) -> String {
        match &self.request_mode {
            RequestMode::Batch { endpoint, .. } => endpoint.to_string(),
            RequestMode::Single { endpoint } => endpoint.to_string(),
        }
    }
}

/// How an `httpRequest` output sends records (`requestMode`), with the endpoint that mode
/// allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestMode {
    /// JSON arrays of records (the default). A request carries many records, so the endpoint
    /// is one URL.
    Batch {
        /// The http or https URL.
        endpoint: Url,
        /// At most this many records a request; absent: a whole batch in one request.
        batch_size: Option<NonZeroUsize>,
    },
    /// One request a record; the endpoint may hold `{{record.path}}`.
    Single {
        /// The URL, or a template filled from each record.
        endpoint: Endpoint<FieldPath>,
    },
}

/// Which responses count as delivered (`success`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SuccessConfig {
    /// Accepted status codes, 100 to 599, at least one; `None`: any 2xx.
    pub status_codes: Option<Vec<u16>>,
    /// Must also hold for a response whose status is accepted; its variables are `status`
    /// (a number), `headers` (names in lower case) and `body` (the JSON body, its text when
    /// it is not JSON, null when empty).
    pub expression: Option<Expression>,
}

impl SuccessConfig {
    /// The accepted status codes, or the default rule (any 2xx) when `None`.
    pub fn status_codes(&self) -> Option<&[u16]> {
        self.status_codes.as_deref()
    }
}

// As written; validation turns it into `SuccessConfig`.
/// Which responses count as delivered: status codes, an expression, or both (both must hold).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "SuccessConfig")]
pub(crate) struct RawSuccessConfig {
    /// Accepted status codes (default: any 2xx).
    #[serde(default)]
    pub(crate) status_codes: Option<Vec<u16>>,
    /// An expression on `status`, `headers` and `body` that must hold, e.g. `body.ok == true`.
    #[serde(default)]
    pub(crate) expression: Option<String>,
}

impl RawSuccessConfig {
    fn validate(self, path: &KeyPath, findings: &mut Findings) -> Option<SuccessConfig> {
        let mark = findings.mark();
        if self.status_codes.is_none() && self.expression.is_none() {
            findings.problem(
                path.clone(),
                "`success` says nothing: give `statusCodes`, `expression` or both, or remove it \
                 (default: any 2xx)",
            );
        }
        if let Some(codes) = &self.status_codes {
            let at = path.key("statusCodes");
            if codes.is_empty() {
                let remove = if self.expression.is_some() {
                    "`statusCodes`"
                } else {
                    "`success`"
                };
                findings.problem(
                    at.clone(),
                    format!(
                        "statusCodes is empty, so no response would count as delivered; list \
                         codes or remove {remove} (default: any 2xx)"
                    ),
                );
            }
            for (i, code) in codes.iter().enumerate() {
                if !(100..=599).contains(code) {
                    findings.problem(
                        at.index(i),
                        format!("{code} is not an HTTP status code (100 to 599)"),
                    );
                }
            }
        }
        let expression = match self.expression.as_deref().map(Expression::compile) {
            None => None,
            Some(Ok(expression)) => Some(expression),
            Some(Err(error)) => {
                findings.problem(path.key("expression"), error.to_string());
                None
            }
        };
        findings.clean_since(mark).then_some(SuccessConfig {
            status_codes: self.status_codes,
            expression,
        })
    }
}

// As written; validation turns it into `RequestMode`, with the endpoint.
/// How an `httpRequest` output sends records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "RequestMode")]
pub(crate) enum RawRequestMode {
    /// One JSON array a request (default).
    #[default]
    Batch,
    /// One request a record.
    Single,
}

// As written; validation turns it into `HttpRequestOutput`.
/// The `httpRequest` output.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "HttpRequestOutput")]
pub(crate) struct RawHttpRequestOutput {
    /// http or https URL; in single mode it may hold `{{record.path}}`.
    pub(crate) endpoint: String,
    /// `POST` (default), `PUT`, `PATCH`, `DELETE` or `GET`.
    #[serde(default)]
    pub(crate) method: SinkMethod,
    /// `batch` (default) or `single`.
    #[serde(default)]
    pub(crate) request_mode: RawRequestMode,
    /// Records a delivery gathers across pages or query results (default: one delivery a
    /// page); in batch mode also at most this many records a request.
    #[serde(default)]
    pub(crate) batch_size: Option<usize>,
    /// Extra request headers.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ScalarSchema>")]
    #[serde(deserialize_with = "crate::scalar::string_map")]
    pub(crate) headers: BTreeMap<String, String>,
    /// Extra query parameters.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ScalarSchema>")]
    #[serde(deserialize_with = "crate::scalar::string_map")]
    pub(crate) query_params: BTreeMap<String, String>,
    /// How to authenticate against the API.
    #[serde(default)]
    pub(crate) authentication: Option<RawAuthentication>,
    /// Retries of failed requests.
    #[serde(default)]
    pub(crate) retry: RawRetryConfig,
    /// Request timeout in milliseconds (default 30000).
    #[serde(default = "default_timeout_ms")]
    pub(crate) timeout_ms: u64,
    /// Which responses count as delivered (default: any 2xx).
    #[serde(default)]
    pub(crate) success: Option<RawSuccessConfig>,
    /// `requestMode: single` only: what a record the destination refuses (a 4xx answer other
    /// than 401, 403, 407, 408 and 429, or `success.expression` not holding) does: `fail`
    /// (default) stops the run, `skip` leaves it out and counts it, `log` also logs each.
    #[serde(default)]
    pub(crate) on_error: OnRefusedRow,
}

impl RawHttpRequestOutput {
    pub(crate) fn validate(
        self,
        path: &KeyPath,
        findings: &mut Findings,
    ) -> Option<HttpRequestOutput> {
        let mark = findings.mark();
        let batch_size = super::batch_size(path, findings, self.batch_size);
        let endpoint_path = path.key("endpoint");
        let batch_mode = matches!(self.request_mode, RawRequestMode::Batch);
        let request_mode = match self.request_mode {
            RawRequestMode::Single => endpoint(findings, &endpoint_path, &self.endpoint, |t| {
                t.into_record().ok_or(STATE_PLACES)
            })
            .map(|endpoint| RequestMode::Single { endpoint }),
            RawRequestMode::Batch => {
                url(findings, &endpoint_path, &self.endpoint).map(|endpoint| RequestMode::Batch {
                    endpoint,
                    batch_size,
                })
            }
        };
        let headers = plain_values(findings, &path.key("headers"), self.headers);
        let query_params = plain_values(findings, &path.key("queryParams"), self.query_params);
        let timeout_ms = timeout(findings, path, self.timeout_ms);
        let authentication = self
            .authentication
            .as_ref()
            .map(|auth| auth.validate(&path.key("authentication"), findings));
        let retry = self.retry.validate(&path.key("retry"), findings);
        let success = self
            .success
            .map(|success| success.validate(&path.key("success"), findings));
        if self.on_error != OnRefusedRow::Fail && batch_mode {
            findings.warning(
                path.key("onError"),
                "has no effect in batch mode: a request carries many records, and a refused \
                 request fails the run as with `onError: fail` (as in the Go tool); use \
                 `requestMode: single` to leave out only the records the destination refuses",
            );
        }
        if !findings.clean_since(mark) {
            return None;
        }
        Some(HttpRequestOutput {
            method: self.method,
            request_mode: request_mode?,
            headers,
            query_params,
            authentication: match authentication {
                Some(built) => Some(built?),
                None => None,
            },
            retry: retry?,
            timeout_ms: timeout_ms?,
            success: match success {
                Some(checked) => Some(checked?),
                None => None,
            },
            batch_size,
            on_error: self.on_error,
        })
    }
}
