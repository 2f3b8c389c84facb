//! The fixed part of every request of a run: the endpoint, headers, query parameters and body
//! with their `{{state.*}}` templates filled from the committed cursors, and the cursor query
//! parameters.
//!
//! The committed cursors do not move while a run is going (they are promoted when it
//! completes), so all of this is rendered once, when the source is built; a page request only
//! adds its pagination parameters.

use std::fmt::Write as _;

use bytes::Bytes;
use cannectors_config::{HttpPollingInput, SourceMethod, StateCursor, Template, TemplatePart};
use cannectors_connector::http::{HttpMethod, HttpRequest, push_url_encoded};
use cannectors_state::State;
use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, SecondsFormat, Utc};
use url::Url;

use crate::HttpSourceError;

/// How `timestamp.format` renders the committed timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TimestampFormat {
    /// RFC 3339 in UTC with `Z` (the default).
    Rfc3339,
    /// Epoch seconds.
    Unix,
    /// Epoch milliseconds.
    UnixMs,
    /// A strftime pattern, applied in UTC.
    Strftime(String),
}

impl TimestampFormat {
    pub(crate) fn parse(text: Option<&str>) -> Result<TimestampFormat, HttpSourceError> {
        match text.map(str::trim) {
            None | Some("rfc3339" | "RFC3339") => Ok(TimestampFormat::Rfc3339),
            Some("unix") => Ok(TimestampFormat::Unix),
            Some("unix_ms") => Ok(TimestampFormat::UnixMs),
            Some(pattern) => {
                let valid = !pattern.is_empty()
                    && !StrftimeItems::new(pattern).any(|item| matches!(item, Item::Error));
                if valid {
                    Ok(TimestampFormat::Strftime(pattern.to_owned()))
                } else {
                    Err(HttpSourceError::Config {
                        key: "statePersistence.timestamp.format".into(),
                        problem: format!(
                            "`{pattern}` is not a timestamp format; write rfc3339, unix, \
                             unix_ms or a strftime pattern such as %Y-%m-%dT%H:%M:%S"
                        ),
                    })
                }
            }
        }
    }

    pub(crate) fn render(&self, instant: DateTime<Utc>) -> Result<String, HttpSourceError> {
        match self {
            TimestampFormat::Rfc3339 => Ok(instant.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            TimestampFormat::Unix => Ok(instant.timestamp().to_string()),
            TimestampFormat::UnixMs => Ok(instant.timestamp_millis().to_string()),
            TimestampFormat::Strftime(pattern) => {
                let mut text = String::new();
                // chrono reports a pattern it cannot render as a formatting error, which
                // `to_string` would turn into a panic; write it out and report it instead.
                write!(
                    text,
                    "{}",
                    instant.format_with_items(StrftimeItems::new(pattern))
                )
                .map_err(|_| HttpSourceError::Config {
                    key: "statePersistence.timestamp.format".into(),
                    problem: format!("`{pattern}` cannot render the timestamp {instant}"),
                })?;
                Ok(text)
            }
        }
    }
}

/// The committed cursors as they go into requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RenderedCursors {
    /// The committed timestamp, in the chosen format; `None` before any commit.
    pub(crate) timestamp: Option<String>,
    /// The committed id.
    pub(crate) id: Option<String>,
    /// The committed offset.
    pub(crate) offset: Option<u64>,
    /// The Unix epoch in the chosen format: what `{{state.timestamp}}` shows before any commit.
    epoch: String,
}

impl RenderedCursors {
    pub(crate) fn new(
        state: Option<&State>,
        format: &TimestampFormat,
    ) -> Result<RenderedCursors, HttpSourceError> {
        let timestamp = state
            .and_then(|s| s.timestamp.as_ref())
            .map(|t| format.render(t.instant()))
            .transpose()?;
        Ok(RenderedCursors {
            timestamp,
            id: state.and_then(|s| s.id.as_ref()).map(|id| id.to_string()),
            offset: state.and_then(|s| s.offset),
            epoch: format.render(DateTime::<Utc>::UNIX_EPOCH)?,
        })
    }

    fn template_value(&self, cursor: StateCursor) -> String {
        match cursor {
            StateCursor::Timestamp => self.timestamp.clone().unwrap_or_else(|| self.epoch.clone()),
            StateCursor::Id => self.id.clone().unwrap_or_default(),
            StateCursor::Offset => self.offset.map(|o| o.to_string()).unwrap_or_default(),
        }
    }

    /// Fills the `{{state.*}}` placeholders of `text`, the value of the key `key`.
    /// `in_url` percent-encodes the values, for text that lands in a URL as it is.
    pub(crate) fn fill(
        &self,
        text: &str,
        key: &str,
        in_url: bool,
    ) -> Result<String, HttpSourceError> {
        if !text.contains("{{") {
            return Ok(text.to_owned());
        }
        let template = Template::parse(text).map_err(|e| HttpSourceError::Config {
            key: key.to_owned(),
            problem: e.to_string(),
        })?;
        let mut filled = String::with_capacity(text.len());
        for part in template.parts() {
            match part {
                TemplatePart::Text(text) => filled.push_str(text),
                TemplatePart::State(cursor) => {
                    let value = self.template_value(*cursor);
                    if in_url {
                        push_url_encoded(&value, &mut filled);
                    } else {
                        filled.push_str(&value);
                    }
                }
                TemplatePart::Record(path) => {
                    return Err(HttpSourceError::Config {
                        key: key.to_owned(),
                        problem: format!(
                            "`{{{{record.{path}}}}}` has no record to read from in an input; \
                             use {{{{state.timestamp}}}}, {{{{state.id}}}} or {{{{state.offset}}}}"
                        ),
                    });
                }
            }
        }
        Ok(filled)
    }

    /// Fills the placeholders of every string inside a JSON body.
    fn fill_json(&self, value: &mut serde_json::Value, key: &str) -> Result<(), HttpSourceError> {
        match value {
            serde_json::Value::String(text) => *text = self.fill(text, key, false)?,
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.fill_json(item, &format!("{key}.{i}"))?;
                }
            }
            serde_json::Value::Object(map) => {
                for (name, item) in map.iter_mut() {
                    self.fill_json(item, &format!("{key}.{name}"))?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A request body as it is sent.
#[derive(Debug, Clone)]
enum Body {
    Json(Bytes),
    Text(Bytes),
}

/// The parts of a request that every page of a run shares.
#[derive(Debug, Clone)]
pub(crate) struct RequestPlan {
    pub(crate) method: HttpMethod,
    pub(crate) endpoint: Url,
    headers: Vec<(String, String)>,
    /// `queryParams` and the cursor parameters, minus the names pagination sets.
    params: Vec<(String, String)>,
    body: Option<Body>,
}

impl RequestPlan {
    /// Renders the templates and the cursor parameters. `reserved` are the parameter names
    /// pagination sets on each page, which win over the same names written elsewhere.
    pub(crate) fn new(
        config: &HttpPollingInput,
        cursors: &RenderedCursors,
        reserved: &[&str],
    ) -> Result<RequestPlan, HttpSourceError> {
        let endpoint_text = cursors.fill(&config.endpoint, "endpoint", true)?;
        let endpoint = Url::parse(&endpoint_text)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or_else(|| HttpSourceError::Config {
                key: "endpoint".into(),
                problem: format!(
                    "`{}` is not an absolute http:// or https:// URL",
                    config.endpoint
                ),
            })?;
        let headers = config
            .headers
            .iter()
            .map(|(name, value)| {
                Ok((
                    name.clone(),
                    cursors.fill(value, &format!("headers.{name}"), false)?,
                ))
            })
            .collect::<Result<Vec<_>, HttpSourceError>>()?;

        let mut params = Vec::new();
        for (name, value) in &config.query_params {
            params.push((
                name.clone(),
                cursors.fill(value, &format!("queryParams.{name}"), false)?,
            ));
        }
        let persistence = config.state_persistence.as_ref();
        let cursor_params = [
            (
                persistence
                    .and_then(|p| p.timestamp())
                    .and_then(|c| c.query_param.as_deref()),
                cursors.timestamp.clone(),
            ),
            (
                persistence
                    .and_then(|p| p.id())
                    .and_then(|c| c.query_param.as_deref()),
                cursors.id.clone(),
            ),
            (
                persistence
                    .and_then(|p| p.offset())
                    .and_then(|c| c.query_param.as_deref()),
                cursors.offset.map(|o| o.to_string()),
            ),
        ];
        // First run: a cursor that was never committed sends no parameter at all.
        for (name, value) in cursor_params {
            if let (Some(name), Some(value)) = (name, value) {
                params.retain(|(existing, _)| existing != name);
                params.push((name.to_owned(), value));
            }
        }
        params.retain(|(name, _)| !reserved.contains(&name.as_str()));

        let method = HttpMethod::from(config.method);
        let body = match (&config.body, config.method) {
            (None, _) => None,
            (Some(_), SourceMethod::Get) => {
                return Err(HttpSourceError::Config {
                    key: "body".into(),
                    problem: "a body is sent with `method: POST` only; remove it or set the \
                              method"
                        .into(),
                });
            }
            (Some(serde_json::Value::String(text)), SourceMethod::Post) => {
                Some(Body::Text(Bytes::from(cursors.fill(text, "body", false)?)))
            }
            (Some(value), SourceMethod::Post) => {
                let mut value = value.clone();
                cursors.fill_json(&mut value, "body")?;
                Some(Body::Json(Bytes::from(value.to_string())))
            }
        };
        Ok(RequestPlan {
            method,
            endpoint,
            headers,
            params,
            body,
        })
    }

    /// The request of one page: `url` (the endpoint unless pagination follows a link) with the
    /// shared parameters and `paging` set on it.
    pub(crate) fn request(
        &self,
        url: Option<&Url>,
        paging: &[(String, String)],
    ) -> Result<HttpRequest, HttpSourceError> {
        let mut url = url.unwrap_or(&self.endpoint).clone();
        set_params(&mut url, self.params.iter().chain(paging));
        // A next link may point anywhere; the credentials stay with the endpoint's origin.
        let mut request = HttpRequest::from_url(self.method, url)?.credentials_for(&self.endpoint);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request = match &self.body {
            None => request,
            Some(Body::Json(bytes)) => request.json_bytes(bytes.clone()),
            Some(Body::Text(bytes)) => request.body(bytes.clone()),
        };
        Ok(request)
    }
}

/// Sets query parameters on `url`, replacing parameters of the same names. Other parameters
/// keep the encoding they were written with (an OData `$filter` stays byte for byte).
fn set_params<'a>(url: &mut Url, params: impl Iterator<Item = &'a (String, String)> + Clone) {
    let replaced = |segment: &str| {
        url::form_urlencoded::parse(segment.as_bytes())
            .next()
            .is_some_and(|(name, _)| params.clone().any(|(n, _)| *n == name))
    };
    if let Some(query) = url.query()
        && query.split('&').any(replaced)
    {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|s| !s.is_empty() && !replaced(s))
            .collect();
        let kept = kept.join("&");
        url.set_query(if kept.is_empty() { None } else { Some(&kept) });
    }
    let mut params = params.peekable();
    if params.peek().is_some() {
        url.query_pairs_mut()
            .extend_pairs(params.map(|(n, v)| (n.as_str(), v.as_str())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instant(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn timestamp_formats_render_utc() {
        let t = instant("2026-01-02T03:04:05.250+01:00");
        let render = |f: Option<&str>| TimestampFormat::parse(f).unwrap().render(t).unwrap();
        assert_eq!(render(None), "2026-01-02T02:04:05.250Z");
        assert_eq!(render(Some("unix")), "1767319445");
        assert_eq!(render(Some("unix_ms")), "1767319445250");
        assert_eq!(render(Some("%Y/%m/%d %H:%M")), "2026/01/02 02:04");
    }

    #[test]
    fn a_broken_strftime_pattern_names_the_key() {
        let error = TimestampFormat::parse(Some("%Y-%")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "input.statePersistence.timestamp.format: `%Y-%` is not a timestamp format; write \
             rfc3339, unix, unix_ms or a strftime pattern such as %Y-%m-%dT%H:%M:%S"
        );
    }

    #[test]
    fn templates_before_any_commit_show_the_epoch_and_empty_values() {
        let cursors = RenderedCursors::new(None, &TimestampFormat::Rfc3339).unwrap();
        let filled = cursors.fill(
            "t={{state.timestamp}} i={{state.id}} o={{state.offset}}",
            "k",
            false,
        );
        assert_eq!(filled.unwrap(), "t=1970-01-01T00:00:00Z i= o=");
    }

    #[test]
    fn values_landing_in_a_url_are_percent_encoded() {
        let mut out = String::new();
        push_url_encoded("2026-01-01T00:00:00+01:00 x/y", &mut out);
        assert_eq!(out, "2026-01-01T00%3A00%3A00%2B01%3A00%20x%2Fy");
    }

    #[test]
    fn setting_params_replaces_same_names_and_keeps_other_encodings() {
        let mut url = Url::parse("http://api.test/x?$filter=a%20gt%201&page=9").unwrap();
        let params = [
            ("page".to_owned(), "2".to_owned()),
            ("limit".to_owned(), "5".to_owned()),
        ];
        set_params(&mut url, params.iter());
        assert_eq!(
            url.as_str(),
            "http://api.test/x?$filter=a%20gt%201&page=2&limit=5"
        );
    }
}
