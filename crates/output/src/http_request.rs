//! The `httpRequest` output: records sent to an HTTP API.
//!
//! Batch mode sends a JSON array of records a request, at most `batchSize` of them; single mode
//! sends one request a record, whose endpoint may hold `{{record.path}}` templates. Requests go
//! out one after the other, in record order, through the shared client of
//! `cannectors_connector::http`, which owns authentication, retries, timeouts and the hiding of
//! secrets; this sink adds nothing on top of its retry policy. The first request that finally
//! fails ends the batch: the error says which records did not reach the destination. In single
//! mode, `onError: skip | log` leaves out instead a record the destination answered is wrong
//! (a 4xx about the record), as the Go tool does, and counts it.
//!
//! Delivery is at-least-once: a failed batch is not committed, so the next run sends all of it
//! again, including the requests that had succeeded before the failure.

use std::num::NonZeroUsize;

use cannectors_config::{
    Endpoint, Expression, FieldPath, HttpRequestOutput, OnRefusedRow, RequestMode, Template,
    TemplatePart,
};
use cannectors_connector::http::{
    HttpClient, HttpError, HttpMethod, HttpRequest, HttpResponse, push_url_encoded,
};
use cannectors_connector::{BoxError, BoxFuture, Record, Sink};
use tokio::sync::watch;

use crate::{OutputError, Positions, RecordCount};

/// Sends records to an HTTP API, as JSON arrays (batch mode) or one record a request (single
/// mode).
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// use cannectors_connector::{Record, Sink};
///
/// let yaml = r#"
/// name: users
/// input: {type: httpPolling, endpoint: "https://source.example.com/users"}
/// output:
///   type: httpRequest
///   endpoint: "https://dest.example.com/api/users/{{record.id}}"
///   method: PUT
///   requestMode: single
/// "#;
/// let pipeline = cannectors_config::parse_str(yaml, "users.yaml", &|_| None)?.pipeline;
/// let mut sink = cannectors_output::build(&pipeline.output)?;
/// sink.write(&[Record::from(serde_json::json!({"id": 7, "email": "ada@example.com"}))]).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct HttpRequestSink {
    client: HttpClient,
    method: HttpMethod,
    /// How records are sent, and where.
    mode: RequestMode,
    headers: Vec<(String, String)>,
    query_params: Vec<(String, String)>,
    success: Option<Vec<u16>>,
    /// `success.expression`: must hold for a response whose status is accepted.
    confirm: Option<Expression>,
    /// Size of the last batch body, so that the next one is allocated once at about its size.
    last_body_len: usize,
    /// What a record the destination refuses does (single mode).
    on_error: OnRefusedRow,
    /// Records left out because the destination refused them, since the sink was built.
    refused: u64,
}

impl HttpRequestSink {
    /// Sets up the client of an `httpRequest` output: its authentication, retries and
    /// timeout. The settings were checked when the pipeline was loaded.
    pub fn new(config: &HttpRequestOutput) -> Result<HttpRequestSink, OutputError> {
        let client = HttpClient::builder()
            .timeout(config.timeout())
            .authentication(config.authentication.as_ref())
            .retry(&config.retry)
            .build()
            .map_err(|source| OutputError::HttpClient { source })?;
        Ok(HttpRequestSink {
            client,
            method: config.method.into(),
            mode: config.request_mode.clone(),
            headers: config
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            query_params: config
                .query_params
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            success: config
                .success
                .as_ref()
                .and_then(|success| success.status_codes().map(<[u16]>::to_vec)),
            confirm: config
                .success
                .as_ref()
                .and_then(|success| success.expression.clone()),
            last_body_len: 0,
            on_error: config.on_error,
            refused: 0,
        })
    }

    /// Gives up a request waiting to be retried (a `Retry-After`, a backoff) as soon as `stop`
    /// turns `true`, so that a shutdown is not held up by the wait. The batch is then not
    /// delivered, and the error has [`cannectors_connector::StoppedByShutdown`] among its
    /// causes.
    pub fn stop_on(mut self, stop: watch::Receiver<bool>) -> HttpRequestSink {
        self.client = self.client.stop_on(stop);
        self
    }

    async fn write_batch(&mut self, records: &[Record]) -> Result<(), OutputError> {
        match &self.mode {
            RequestMode::Batch {
                endpoint,
                batch_size,
            } => {
                let endpoint = endpoint.to_string();
                let size = batch_size.map_or(usize::MAX, NonZeroUsize::get);
                self.send_arrays(records, &endpoint, size).await
            }
            RequestMode::Single { endpoint } => {
                let refused = self.send_each(records, endpoint).await?;
                self.refused += refused;
                Ok(())
            }
        }
    }

    async fn send_arrays(
        &mut self,
        records: &[Record],
        endpoint: &str,
        size: usize,
    ) -> Result<(), OutputError> {
        let mut start = 0;
        for chunk in records.chunks(size) {
            let mut body = Vec::with_capacity(self.last_body_len);
            encode_array(chunk, &mut body);
            self.last_body_len = body.len();
            let body = match self.method {
                HttpMethod::Get => None,
                _ => Some(body),
            };
            self.send(endpoint, body).await.map_err(|source| {
                not_delivered(source, start..start + chunk.len(), records.len())
            })?;
            start += chunk.len();
        }
        Ok(())
    }

    /// Sends one request a record; returns how many records the destination refused and
    /// `onError: skip | log` left out.
    async fn send_each(
        &self,
        records: &[Record],
        endpoint: &Endpoint<FieldPath>,
    ) -> Result<u64, OutputError> {
        // Every endpoint is rendered before the first request, so that a record lacking a
        // templated field stops the batch before anything of it was sent.
        let urls = records
            .iter()
            .enumerate()
            .map(|(position, record)| match endpoint {
                Endpoint::Url(url) => Ok(url.to_string()),
                // Only a templated endpoint reads the record's fields.
                Endpoint::Template(template) => {
                    let fields = record
                        .to_value()
                        .map_err(|source| OutputError::Fields { position, source })?;
                    render(template, &fields, position, records.len())
                }
            })
            .collect::<Result<Vec<String>, OutputError>>()?;
        let mut refused = 0;
        for (position, (record, url)) in records.iter().zip(&urls).enumerate() {
            let body = match self.method {
                HttpMethod::Get => None,
                _ => Some(record.json().as_bytes().to_vec()),
            };
            match self.send(url, body).await {
                Ok(()) => {}
                Err(refusal)
                    if self.on_error != OnRefusedRow::Fail && refusal.is_about_the_record() =>
                {
                    refused += 1;
                    if self.on_error == OnRefusedRow::Log {
                        tracing::warn!(
                            record = position,
                            "the destination refused record {position} of the batch, left out \
                             (output.onError: log): {}",
                            refusal.reason()
                        );
                    }
                }
                Err(refusal) => {
                    return Err(not_delivered(
                        refusal,
                        position..position + 1,
                        records.len(),
                    ));
                }
            }
        }
        if refused > 0 {
            tracing::warn!(
                refused,
                written = records.len() as u64 - refused,
                "left out {refused} record(s) of the batch that the destination refused \
                 (output.onError: {})",
                if self.on_error == OnRefusedRow::Log {
                    "log"
                } else {
                    "skip"
                },
            );
        }
        Ok(refused)
    }

    /// Sends one request to `url` with the configured headers, query parameters and success
    /// codes, and checks `success.expression` on the response; a `GET` carries no body.
    async fn send(&self, url: &str, body: Option<Vec<u8>>) -> Result<(), Refused> {
        let mut request = HttpRequest::new(self.method, url).map_err(Refused::Http)?;
        for (name, value) in &self.query_params {
            request = request.query(name, value);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(codes) = &self.success {
            request = request.accept_statuses(codes.clone());
        }
        if let Some(body) = body {
            request = request.json_bytes(body);
        }
        let response = self.client.send(request).await.map_err(Refused::Http)?;
        match &self.confirm {
            Some(expression) => confirm(expression, &response, self.method, url),
            None => Ok(()),
        }
    }
}

/// Why a request did not deliver its records.
enum Refused {
    /// No response, or a status the request does not accept (after the client's retries).
    Http(HttpError),
    /// A response with an accepted status for which `success.expression` does not hold (or
    /// cannot be evaluated): not retried, since the server did answer.
    Unconfirmed(String),
}

impl Refused {
    /// Whether the destination answered that this record is wrong, rather than that it cannot
    /// take any record now: a 4xx status other than the ones about credentials (401, 403,
    /// 407) or load (408, 429), or `success.expression` not holding. No answer, a 5xx, or
    /// credentials would be the same for every record, and leaving them all out would lose
    /// them; those fail the batch whatever `onError` says.
    fn is_about_the_record(&self) -> bool {
        match self {
            Refused::Unconfirmed(_) => true,
            Refused::Http(error) => error.status().is_some_and(|status| {
                (400..500).contains(&status) && ![401, 403, 407, 408, 429].contains(&status)
            }),
        }
    }

    fn reason(&self) -> String {
        match self {
            Refused::Http(error) => error.to_string(),
            Refused::Unconfirmed(reason) => reason.clone(),
        }
    }
}

/// Whether `expression` holds for `response`, with `status`, `headers` and `body` as variables.
fn confirm(
    expression: &Expression,
    response: &HttpResponse,
    method: HttpMethod,
    url: &str,
) -> Result<(), Refused> {
    let headers: serde_json::Map<String, serde_json::Value> = response
        .headers()
        .keys()
        .map(|name| {
            let values: Vec<&str> = response
                .headers()
                .get_all(name)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .collect();
            (name.as_str().to_owned(), values.join(", ").into())
        })
        .collect();
    let text = response.body();
    let body = if text.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(text).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(text).into_owned())
        })
    };
    let variables = serde_json::json!({
        "status": response.status(),
        "headers": headers,
        "body": body,
    });
    let method = method.as_str();
    let url = cannectors_connector::redact_url(url);
    match expression.is_true(&variables) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Refused::Unconfirmed(format!(
            "{method} {url} answered HTTP {}, but output.success.expression `{expression}` does \
             not hold for the response{}",
            response.status(),
            excerpt(text)
        ))),
        Err(error) => Err(Refused::Unconfirmed(format!(
            "{method} {url} answered HTTP {}, but output.success.expression could not be \
             checked: {error}{}",
            response.status(),
            excerpt(text)
        ))),
    }
}

/// The start of a response body, for a message.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        " (body: {}{})",
        &text[..end],
        if end < text.len() { "..." } else { "" }
    )
}

impl Sink for HttpRequestSink {
    fn write<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move { self.write_batch(records).await.map_err(BoxError::from) })
    }

    fn refused(&self) -> u64 {
        self.refused
    }
}

/// Writes the records as one JSON array.
fn encode_array(records: &[Record], body: &mut Vec<u8>) {
    body.push(b'[');
    for (index, record) in records.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(record.json().as_bytes());
    }
    body.push(b']');
}

fn not_delivered(refused: Refused, failed: std::ops::Range<usize>, total: usize) -> OutputError {
    let (positions, undelivered, delivered, total) = (
        Positions(failed.clone()),
        Positions(failed.start..total),
        failed.start,
        RecordCount(total),
    );
    match refused {
        Refused::Http(source) => OutputError::NotDelivered {
            source,
            failed: positions,
            undelivered,
            delivered,
            total,
        },
        Refused::Unconfirmed(reason) => OutputError::Unconfirmed {
            reason,
            failed: positions,
            undelivered,
            delivered,
            total,
        },
    }
}

/// The endpoint filled in from one record: each `{{record.path}}` replaced by the field's
/// value, URL-encoded.
fn render(
    template: &Template<FieldPath>,
    record: &serde_json::Value,
    position: usize,
    total: usize,
) -> Result<String, OutputError> {
    let mut url = String::new();
    for part in template.parts() {
        let path = match part {
            TemplatePart::Text(text) => {
                url.push_str(text);
                continue;
            }
            TemplatePart::Ref(path) => path,
        };
        let problem = match path.get(record) {
            Some(serde_json::Value::String(text)) => {
                push_url_encoded(text, &mut url);
                continue;
            }
            Some(value @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                push_url_encoded(&value.to_string(), &mut url);
                continue;
            }
            None => "the record has no such field",
            Some(serde_json::Value::Null) => "the field is null",
            Some(_) => "the field is an object or an array, not a string, number or boolean",
        };
        return Err(OutputError::Template {
            position,
            path: path.as_str().to_owned(),
            problem,
            total: RecordCount(total),
        });
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(text: &str) -> Template<FieldPath> {
        Template::parse(text).unwrap().into_record().unwrap()
    }

    #[test]
    fn renders_strings_numbers_and_booleans() {
        let endpoint = template("http://h/u/{{record.user.id}}/{{ record.flag }}?n={{record.n}}");
        let record = json!({"user": {"id": "a/b"}, "flag": true, "n": 1.5});
        assert_eq!(
            render(&endpoint, &record, 0, 1).unwrap(),
            "http://h/u/a%2Fb/true?n=1.5"
        );
    }

    #[test]
    fn a_null_or_object_field_is_an_error_naming_the_position() {
        let endpoint = template("http://h/{{record.id}}");
        let error = render(&endpoint, &json!({"id": null}), 4, 9).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot fill in `{{record.id}}` of output.endpoint for the record at position 4 \
             (counting from 0): the field is null; nothing of this batch of 9 records was sent \
             and it is not committed: make sure every record has `id`, for example with a filter"
        );
        let error = render(&endpoint, &json!({"id": {"a": 1}}), 0, 1).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("the field is an object or an array"),
            "{error}"
        );
    }
}
