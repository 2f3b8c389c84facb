//! The fixed part of every request of a run: the endpoint, headers, query parameters and body
//! with their `{{state.*}}` templates filled from the committed cursors, and the cursor query
//! parameters.
//!
//! The committed cursors do not move while a run is going (they are promoted when it
//! completes), so all of this is rendered once, when the source is built; a page request only
//! adds its pagination parameters.

use bytes::Bytes;
use cannectors_config::{
    Endpoint, HttpPollingInput, SourceBody, StateCursor, Template, TemplatePart, TimestampFormat,
};
use cannectors_connector::RunWindow;
use cannectors_connector::http::{HttpMethod, HttpRequest, push_url_encoded};
use cannectors_state::State;
use chrono::{DateTime, Utc};
use url::Url;

use crate::HttpSourceError;

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
    /// The run's upper bound in the chosen format: `{{window.end}}` and `untilParam`.
    pub(crate) window_end: String,
    /// The run's lower bound in the chosen format (`{{window.start}}`), when it has one.
    pub(crate) window_start: Option<String>,
}

impl RenderedCursors {
    pub(crate) fn new(
        state: Option<&State>,
        format: &TimestampFormat,
        window: RunWindow,
    ) -> RenderedCursors {
        RenderedCursors {
            timestamp: state
                .and_then(|s| s.timestamp.as_ref())
                .map(|t| format.render(t.instant())),
            id: state.and_then(|s| s.id.as_ref()).map(|id| id.to_string()),
            offset: state.and_then(|s| s.offset),
            epoch: format.render(DateTime::<Utc>::UNIX_EPOCH),
            window_end: format.render(window.end),
            window_start: window.start.map(|start| format.render(start)),
        }
    }

    fn template_value(&self, cursor: StateCursor) -> String {
        match cursor {
            StateCursor::Timestamp => self.timestamp.clone().unwrap_or_else(|| self.epoch.clone()),
            StateCursor::Id => self.id.clone().unwrap_or_default(),
            StateCursor::Offset => self.offset.map(|o| o.to_string()).unwrap_or_default(),
            StateCursor::WindowEnd => self.window_end.clone(),
            StateCursor::WindowStart => self
                .window_start
                .clone()
                .unwrap_or_else(|| self.epoch.clone()),
        }
    }

    /// `template` with its `{{state.*}}` placeholders filled. `in_url` percent-encodes the
    /// values, for text that lands in a URL as it is.
    pub(crate) fn fill(&self, template: &Template<StateCursor>, in_url: bool) -> String {
        let mut filled = String::new();
        for part in template.parts() {
            match part {
                TemplatePart::Text(text) => filled.push_str(text),
                TemplatePart::Ref(cursor) => {
                    let value = self.template_value(*cursor);
                    if in_url {
                        push_url_encoded(&value, &mut filled);
                    } else {
                        filled.push_str(&value);
                    }
                }
            }
        }
        filled
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
        let endpoint = match &config.endpoint {
            Endpoint::Url(url) => url.clone(),
            // Loading checked the template with plain values; the committed cursors are known
            // only now.
            Endpoint::Template(template) => {
                let rendered = cursors.fill(template, true);
                Url::parse(&rendered)
                    .ok()
                    .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
                    .ok_or_else(|| HttpSourceError::RenderedEndpoint {
                        endpoint: template.to_string(),
                        rendered,
                    })?
            }
        };
        let headers = config
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), cursors.fill(value, false)))
            .collect();
        let mut params: Vec<(String, String)> = config
            .query_params
            .iter()
            .map(|(name, value)| (name.clone(), cursors.fill(value, false)))
            .collect();
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
        let until_param = persistence
            .and_then(|p| p.timestamp())
            .and_then(|c| c.until_param.as_deref());
        if let Some(name) = until_param {
            // The bound goes out on every run, the first one included.
            params.retain(|(existing, _)| existing != name);
            params.push((name.to_owned(), cursors.window_end.clone()));
        }
        // First run: a cursor that was never committed sends no parameter at all.
        for (name, value) in cursor_params {
            if let (Some(name), Some(value)) = (name, value) {
                params.retain(|(existing, _)| existing != name);
                params.push((name.to_owned(), value));
            }
        }
        params.retain(|(name, _)| !reserved.contains(&name.as_str()));

        let body = config.body.as_ref().map(|body| match body {
            SourceBody::Text(template) => Body::Text(Bytes::from(cursors.fill(template, false))),
            SourceBody::Json(json) => {
                let value = json.render(|template| cursors.fill(template, false));
                Body::Json(Bytes::from(value.to_string()))
            }
        });
        Ok(RequestPlan {
            method: HttpMethod::from(config.method),
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

    #[test]
    fn templates_before_any_commit_show_the_epoch_and_empty_values() {
        let end = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .to_utc();
        let cursors =
            RenderedCursors::new(None, &TimestampFormat::Rfc3339, RunWindow::ending_at(end));
        let template = Template::parse(
            "t={{state.timestamp}} i={{state.id}} o={{state.offset}} e={{window.end}}",
        )
        .unwrap()
        .into_state()
        .unwrap();
        assert_eq!(
            cursors.fill(&template, false),
            "t=1970-01-01T00:00:00Z i= o= e=2026-01-02T03:04:05Z"
        );
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
