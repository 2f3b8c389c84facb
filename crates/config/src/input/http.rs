//! The `httpPolling` input: its settings, the block as written, and its rules.

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::authentication::{Authentication, RawAuthentication};
use crate::document::KeyPath;
use crate::expr::StateCursor;
use crate::http::{
    Endpoint, RECORD_PLACES, RawRetryConfig, RetryConfig, SourceMethod, default_timeout_ms,
    endpoint, template, timeout,
};
use crate::input::pagination::{Pagination, RawPagination};
use crate::model::ScalarSchema;
use crate::path::FieldPath;
use crate::schedule::{self, CronSchedule};
use crate::state_persistence::{RawStatePersistence, StatePersistence};
use crate::template::Template;
use crate::validate::Findings;

/// The `httpPolling` input (docs/http-input.md), checked. Its templates refer to committed
/// cursors only.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HttpPollingInput {
    /// When the input runs (`schedule`, read in `timezone`). Absent: run once.
    pub schedule: Option<CronSchedule>,
    /// The API's http or https URL, or a template that becomes one.
    pub endpoint: Endpoint<StateCursor>,
    /// `GET` (default) or `POST`.
    pub method: SourceMethod,
    /// Extra request headers.
    pub headers: BTreeMap<String, Template<StateCursor>>,
    /// Extra query parameters.
    pub query_params: BTreeMap<String, Template<StateCursor>>,
    /// The request body; only with `POST`.
    pub body: Option<SourceBody>,
    /// Where the array of records is in the response.
    pub data_field: Option<FieldPath>,
    /// Request timeout in milliseconds (default 30000).
    pub timeout_ms: NonZeroU64,
    /// How to authenticate against the API, with exactly the credentials of its type.
    pub authentication: Option<Authentication>,
    /// Retries of failed requests.
    pub retry: RetryConfig,
    /// How to walk through the pages of one run; absent: one request a run.
    pub pagination: Option<Pagination>,
    /// Which cursors to keep between runs; each enabled one reaches the request.
    pub state_persistence: Option<StatePersistence>,
    /// Explicit ranges for APIs that need one on every request; absent: the committed cursors
    /// alone say where a run starts.
    pub window: Option<Window>,
}

/// `window: {start, step}`: a run reads the ranges `[start, start + step)`,
/// `[start + step, start + 2 step)`, ... from the last committed window end (or `start`) up to
/// now - `delay`, each range sent as `{{window.start}}` and `{{window.end}}` and committed when
/// its last page was delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Window {
    /// Where the first window starts.
    pub start: chrono::DateTime<chrono::Utc>,
    /// The length of each window, more than zero.
    pub step: Duration,
}

impl HttpPollingInput {
    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.get())
    }
}

/// The body of a `POST` request of an httpPolling input.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceBody {
    /// Text, sent as it is once filled.
    Text(Template<StateCursor>),
    /// A JSON value, sent as JSON once its strings are filled.
    Json(JsonBody),
}

/// A JSON body whose strings may hold `{{state.*}}` placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonBody {
    value: serde_json::Value,
    /// The strings with placeholders, by JSON pointer.
    templates: Vec<(String, Template<StateCursor>)>,
}

impl JsonBody {
    /// The body as written.
    pub fn as_written(&self) -> &serde_json::Value {
        &self.value
    }

    /// The templates in the body's strings.
    pub fn templates(&self) -> impl Iterator<Item = &Template<StateCursor>> {
        self.templates.iter().map(|(_, template)| template)
    }

    /// The body with every string that holds placeholders replaced by `fill` of its template.
    ///
    /// ```
    /// use cannectors_config::{InputConfig, SourceBody, TemplatePart};
    /// let yaml = r#"
    /// name: search
    /// input:
    ///   type: httpPolling
    ///   endpoint: https://api.example.com/search
    ///   method: POST
    ///   body: {filter: {since: "{{state.timestamp}}"}, size: 100}
    ///   statePersistence: {timestamp: {field: updated_at}}
    /// output: {type: stdout}
    /// "#;
    /// let pipeline = cannectors_config::parse_str(yaml, "s.yaml", &|_| None).unwrap().pipeline;
    /// let InputConfig::HttpPolling(input) = &pipeline.input else { unreachable!() };
    /// let Some(SourceBody::Json(body)) = &input.body else { unreachable!() };
    /// let filled = body.render(|template| template.render_with("2026-01-01T00:00:00Z"));
    /// assert_eq!(
    ///     filled,
    ///     serde_json::json!({"filter": {"since": "2026-01-01T00:00:00Z"}, "size": 100})
    /// );
    /// ```
    pub fn render(&self, fill: impl Fn(&Template<StateCursor>) -> String) -> serde_json::Value {
        let mut value = self.value.clone();
        for (pointer, template) in &self.templates {
            if let Some(slot) = value.pointer_mut(pointer) {
                *slot = serde_json::Value::String(fill(template));
            }
        }
        value
    }
}

// As written; validation turns it into `HttpPollingInput`.
/// The `httpPolling` input (docs/http-input.md).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "HttpPollingInput")]
pub(crate) struct RawHttpPollingInput {
    /// Cron expression, 5 fields (minute first) or 6 (seconds first). Absent: run once.
    #[serde(default)]
    pub(crate) schedule: Option<String>,
    /// IANA time zone of the schedule (default UTC).
    #[serde(default)]
    pub(crate) timezone: Option<String>,
    /// http or https URL of the API. May hold `{{state.timestamp}}`, `{{state.id}}`,
    /// `{{state.offset}}`.
    pub(crate) endpoint: String,
    /// `GET` (default) or `POST`.
    #[serde(default)]
    pub(crate) method: SourceMethod,
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
    /// `POST` body: a mapping is sent as JSON, a string as it is.
    #[serde(default)]
    pub(crate) body: Option<serde_json::Value>,
    /// Dot path to the array of records in the response.
    #[serde(default)]
    pub(crate) data_field: Option<String>,
    /// Request timeout in milliseconds (default 30000).
    #[serde(default = "default_timeout_ms")]
    pub(crate) timeout_ms: u64,
    /// How to authenticate against the API.
    #[serde(default)]
    pub(crate) authentication: Option<RawAuthentication>,
    /// Retries of failed requests.
    #[serde(default)]
    pub(crate) retry: RawRetryConfig,
    /// How to walk through the pages of one run.
    #[serde(default)]
    pub(crate) pagination: Option<RawPagination>,
    /// Which cursors to keep between runs.
    #[serde(default)]
    pub(crate) state_persistence: Option<RawStatePersistence>,
    /// Explicit ranges: each request carries `{{window.start}}` and `{{window.end}}`, windows of
    /// `step` from `start`, each committed once read, up to now - `statePersistence.delay`.
    #[serde(default)]
    pub(crate) window: Option<RawWindow>,
}

// As written; validation turns it into `Window`.
/// Explicit ranges for APIs that need one on every request.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Window")]
pub(crate) struct RawWindow {
    /// Where the first window starts: an RFC 3339 instant such as `2026-01-01T00:00:00Z`.
    pub(crate) start: String,
    /// The length of each window: a whole number and a unit, `30s`, `10m`, `1h`, `1d`.
    pub(crate) step: String,
}

impl RawWindow {
    fn validate(&self, path: &KeyPath, findings: &mut Findings) -> Option<Window> {
        let start = match chrono::DateTime::parse_from_rfc3339(self.start.trim()) {
            Ok(start) => Some(start.to_utc()),
            Err(_) => {
                findings.problem(
                    path.key("start"),
                    format!(
                        "`{}` is not an RFC 3339 instant; write it with a date, a time and an \
                         offset, such as 2026-01-01T00:00:00Z",
                        self.start
                    ),
                );
                None
            }
        };
        let step = match crate::duration::parse_duration(self.step.trim()) {
            Ok(step) if step.is_zero() => {
                findings.problem(
                    path.key("step"),
                    "step is 0, so no window would ever end; write a length such as 1h or 1d",
                );
                None
            }
            Ok(step) => Some(step),
            Err(error) => {
                findings.problem(path.key("step"), error.to_string());
                None
            }
        };
        Some(Window {
            start: start?,
            step: step?,
        })
    }
}

/// What `window` cannot be combined with, and that its range reaches the request.
fn check_window(
    findings: &mut Findings,
    path: &KeyPath,
    state: Option<&RawStatePersistence>,
    templates: &[Template],
) {
    let window_path = path.key("window");
    let state_path = path.key("statePersistence");
    let until_param = state
        .and_then(RawStatePersistence::timestamp)
        .is_some_and(|cursor| cursor.until_param.is_some());
    let sent = until_param
        || templates.iter().any(|template| {
            template.uses_state(StateCursor::WindowStart)
                || template.uses_state(StateCursor::WindowEnd)
        });
    if !sent {
        findings.problem(
            window_path,
            "no request carries the window, so every window would read the same records: use \
             {{window.start}} and {{window.end}} in the endpoint, headers, queryParams or body",
        );
    }
    let Some(state) = state else {
        return;
    };
    if state.lookback.is_some() {
        findings.problem(
            state_path.key("lookback"),
            "lookback reaches back before the committed timestamp, but with `window` each run \
             continues from the end of the last committed window; remove lookback or window",
        );
    }
    if let Some(cursor) = state.timestamp()
        && cursor.query_param.is_some()
    {
        findings.problem(
            state_path.key("timestamp").key("queryParam"),
            "with `window` the range goes out as {{window.start}} and {{window.end}}, and the \
             committed position is the end of the last window read; a timestamp queryParam \
             would send a second lower bound: remove queryParam",
        );
    }
    if state.offset().is_some() {
        findings.problem(
            state_path.key("offset"),
            "the offset cursor continues from one run to the next, but each window starts at \
             its first page; remove statePersistence.offset or window",
        );
    }
}

impl RawHttpPollingInput {
    pub(crate) fn validate(
        self,
        path: &KeyPath,
        findings: &mut Findings,
    ) -> Option<HttpPollingInput> {
        let mark = findings.mark();
        let schedule = schedule::check(
            findings,
            path,
            self.schedule.as_deref(),
            self.timezone.as_deref(),
        );
        let endpoint = endpoint(findings, &path.key("endpoint"), &self.endpoint, |t| {
            t.into_state().ok_or(RECORD_PLACES)
        });
        let headers = state_templates(findings, &path.key("headers"), &self.headers);
        let query_params = state_templates(findings, &path.key("queryParams"), &self.query_params);
        let body = self.body.as_ref().and_then(|body| {
            if self.method != SourceMethod::Post {
                findings.problem(
                    path.key("body"),
                    "a body is sent only with `method: POST`; set the method or remove the body",
                );
            }
            source_body(findings, &path.key("body"), body)
        });
        let data_field = self
            .data_field
            .as_deref()
            .and_then(|field| findings.field_path(path.key("dataField"), field));
        let timeout_ms = timeout(findings, path, self.timeout_ms);
        let authentication = self
            .authentication
            .as_ref()
            .map(|auth| auth.validate(&path.key("authentication"), findings));
        let retry = self.retry.validate(&path.key("retry"), findings);
        let pagination = self
            .pagination
            .as_ref()
            .map(|pagination| pagination.validate(&path.key("pagination"), findings));
        let window = self.window.as_ref().and_then(|window| {
            check_window(
                findings,
                path,
                self.state_persistence.as_ref(),
                &self.templates(),
            );
            window.validate(&path.key("window"), findings)
        });
        let state_persistence = self.state_persistence.as_ref().map(|state| {
            let state_path = path.key("statePersistence");
            let settings = state.validate(&state_path, findings);
            let templates = self.templates();
            // With a window the range reaches the request and is the committed position.
            let windowed = self.window.is_some();
            let sent_by_template = |cursor| {
                (windowed && cursor == StateCursor::Timestamp)
                    || templates.iter().any(|template| template.uses_state(cursor))
            };
            check_cursors_reach_the_request(
                findings,
                &state_path,
                state,
                sent_by_template,
                self.pagination.as_ref(),
            );
            settings
        });
        if !findings.clean_since(mark) {
            return None;
        }
        Some(HttpPollingInput {
            schedule,
            endpoint: endpoint?,
            method: self.method,
            headers,
            query_params,
            body,
            data_field,
            timeout_ms: timeout_ms?,
            authentication: match authentication {
                Some(built) => Some(built?),
                None => None,
            },
            retry: retry?,
            pagination: pagination.flatten(),
            state_persistence,
            window,
        })
    }
}

impl RawHttpPollingInput {
    /// Every text of the request that parses as a template, whatever it refers to: what the
    /// rule that cursors reach the request looks through (a template with a problem of its
    /// own is reported where it is written).
    fn templates(&self) -> Vec<Template> {
        let mut texts: Vec<&str> = vec![self.endpoint.as_str()];
        texts.extend(self.headers.values().map(String::as_str));
        texts.extend(self.query_params.values().map(String::as_str));
        let mut strings = Vec::new();
        if let Some(body) = &self.body {
            body_strings(body, &mut strings);
        }
        texts.extend(strings);
        texts
            .into_iter()
            .filter_map(|text| Template::parse(text).ok())
            .collect()
    }
}

fn body_strings<'v>(value: &'v serde_json::Value, strings: &mut Vec<&'v str>) {
    match value {
        serde_json::Value::String(text) => strings.push(text),
        serde_json::Value::Array(items) => {
            items.iter().for_each(|item| body_strings(item, strings))
        }
        serde_json::Value::Object(map) => map.values().for_each(|item| body_strings(item, strings)),
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {}
    }
}

/// Header or query values, which may hold `{{state.*}}`.
fn state_templates(
    findings: &mut Findings,
    path: &KeyPath,
    values: &BTreeMap<String, String>,
) -> BTreeMap<String, Template<StateCursor>> {
    values
        .iter()
        .filter_map(|(name, value)| {
            let value = state_template(findings, &path.key(name), value)?;
            Some((name.clone(), value))
        })
        .collect()
}

fn state_template(
    findings: &mut Findings,
    path: &KeyPath,
    text: &str,
) -> Option<Template<StateCursor>> {
    let parsed = template(findings, path, text)?;
    let narrowed = parsed.into_state();
    if narrowed.is_none() {
        findings.problem(path.clone(), RECORD_PLACES);
    }
    narrowed
}

fn source_body(
    findings: &mut Findings,
    path: &KeyPath,
    body: &serde_json::Value,
) -> Option<SourceBody> {
    if let serde_json::Value::String(text) = body {
        return state_template(findings, path, text).map(SourceBody::Text);
    }
    let mark = findings.mark();
    let mut templates = Vec::new();
    collect_body_templates(findings, path, "", body, &mut templates);
    findings.clean_since(mark).then(|| {
        SourceBody::Json(JsonBody {
            value: body.clone(),
            templates,
        })
    })
}

/// The strings of a JSON body that hold placeholders, by JSON pointer.
fn collect_body_templates(
    findings: &mut Findings,
    path: &KeyPath,
    pointer: &str,
    body: &serde_json::Value,
    templates: &mut Vec<(String, Template<StateCursor>)>,
) {
    match body {
        serde_json::Value::String(text) => {
            if let Some(template) = state_template(findings, path, text)
                && !template.is_plain()
            {
                templates.push((pointer.to_owned(), template));
            }
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let pointer = format!("{pointer}/{i}");
                collect_body_templates(findings, &path.index(i), &pointer, item, templates);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                let pointer = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                collect_body_templates(findings, &path.key(key), &pointer, item, templates);
            }
        }
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {}
    }
}

/// An enabled HTTP cursor must reach the request, through its `queryParam` or a
/// `{{state.*}}` template; otherwise every run would read everything again.
fn check_cursors_reach_the_request(
    findings: &mut Findings,
    path: &KeyPath,
    state: &RawStatePersistence,
    sent_by_template: impl Fn(StateCursor) -> bool,
    pagination: Option<&RawPagination>,
) {
    let not_sent = |name: &str| {
        format!(
            "the {name} cursor is never sent to the API, so every run would read everything \
             again: set `queryParam`, or use {{{{state.{name}}}}} in the endpoint, headers, \
             queryParams or body"
        )
    };
    if let Some(cursor) = state.timestamp()
        && cursor.query_param.is_none()
        && !sent_by_template(StateCursor::Timestamp)
    {
        findings.problem(
            path.key("timestamp").key("queryParam"),
            not_sent("timestamp"),
        );
    }
    if let Some(cursor) = state.id()
        && cursor.query_param.is_none()
        && !sent_by_template(StateCursor::Id)
    {
        findings.problem(path.key("id").key("queryParam"), not_sent("id"));
    }
    if let Some(cursor) = state.offset() {
        let offset_pagination =
            pagination.is_some_and(|p| p.kind == crate::input::pagination::PaginationKind::Offset);
        if cursor.query_param.is_none()
            && !offset_pagination
            && !sent_by_template(StateCursor::Offset)
        {
            findings.problem(
                path.key("offset").key("queryParam"),
                "the offset cursor is never sent to the API: use `pagination: {type: offset}`, \
                 set `queryParam`, or use {{state.offset}} in the endpoint, headers, queryParams \
                 or body",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InputConfig;
    use serde_json::json;

    fn input(block: serde_json::Value) -> HttpPollingInput {
        let mut block = block;
        block["type"] = json!("httpPolling");
        let text = json!({"name": "p", "input": block, "output": {"type": "stdout"}});
        match crate::parse_str(&text.to_string(), "p.json", &|_| None)
            .unwrap()
            .pipeline
            .input
        {
            InputConfig::HttpPolling(input) => input,
            InputConfig::Database(_) => panic!("an httpPolling input"),
        }
    }

    #[test]
    fn a_json_body_fills_its_templates_wherever_they_are() {
        let loaded = input(json!({
            "endpoint": "https://api.example.com/search",
            "method": "POST",
            "body": {
                "a/b": "{{state.id}}",
                "c~d": ["plain", "after {{state.offset}}"],
                "n": 1,
                "t": "{{state.timestamp}}"
            },
            "statePersistence": {"id": {"field": "id"}}
        }));
        let Some(SourceBody::Json(body)) = &loaded.body else {
            panic!("a JSON body");
        };
        assert_eq!(body.templates().count(), 3);
        let filled = body.render(|template| {
            template
                .references()
                .map(|cursor| format!("<{cursor}>"))
                .collect()
        });
        assert_eq!(
            filled,
            json!({
                "a/b": "<state.id>",
                "c~d": ["plain", "<state.offset>"],
                "n": 1,
                "t": "<state.timestamp>"
            })
        );
        assert_eq!(body.as_written()["c~d"][1], "after {{state.offset}}");
    }

    #[test]
    fn a_text_body_and_a_templated_endpoint_keep_their_templates() {
        let loaded = input(json!({
            "endpoint": "https://api.example.com/items/{{state.id}}",
            "method": "POST",
            "body": "since={{state.id}}",
            "statePersistence": {"id": {"field": "id"}}
        }));
        assert!(matches!(&loaded.endpoint, Endpoint::Template(t) if t.uses(StateCursor::Id)));
        assert!(matches!(&loaded.body, Some(SourceBody::Text(t)) if t.uses(StateCursor::Id)));
        let plain = input(json!({"endpoint": "https://api.example.com/items"}));
        assert!(
            matches!(&plain.endpoint, Endpoint::Url(url) if url.as_str() == "https://api.example.com/items")
        );
    }
}
