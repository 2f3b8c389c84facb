//! The HTTP client shared by the HTTP source and the HTTP sink.
//!
//! One place owns what every HTTP call of a pipeline needs: authentication (api-key, bearer,
//! basic, OAuth 2 client credentials with a cached token), retries with exponential backoff and
//! `Retry-After`, a timeout, gzip, rustls, redirects that never carry a credential to another
//! origin, and error messages that name the request without its secrets. A caller describes a
//! call with [`HttpRequest`] and gets back the [`HttpResponse`] once its status is one the
//! request accepts (any 2xx unless told otherwise); anything else is an [`HttpError`] that says
//! what failed and after how many attempts.
//!
//! ```no_run
//! # async fn example() -> Result<(), cannectors_connector::http::HttpError> {
//! use std::time::Duration;
//! use cannectors_config::RetryConfig;
//! use cannectors_connector::http::{HttpClient, HttpMethod, HttpRequest};
//!
//! let client = HttpClient::builder()
//!     .timeout(Duration::from_secs(30))
//!     .retry(&RetryConfig::default())
//!     .build()?;
//! let request = HttpRequest::new(HttpMethod::Get, "https://api.example.com/events")?
//!     .query("status", "open")
//!     .header("Accept", "application/json");
//! let response = client.send(request).await?;
//! assert!(response.status() < 300);
//! # Ok(())
//! # }
//! ```

mod auth;
mod error;
pub(crate) mod redact;
mod retry;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use cannectors_config::{Authentication, RetryConfig, SinkMethod, SourceMethod};
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HeaderName,
    HeaderValue, LOCATION, PROXY_AUTHORIZATION, TRANSFER_ENCODING,
};
use tokio::sync::watch;
use tokio::time::Instant;
use url::{Origin, Url};

use crate::StoppedByShutdown;

pub use error::{HttpError, TransportFailure};
pub use reqwest::header::HeaderMap;

use auth::{Auth, Credential, OAuth2};
use error::{classify, describe_reqwest};
use redact::{Redactor, redact_url};
use retry::RetryPolicy;

/// Default request timeout, as documented for `timeoutMs`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Redirects followed within one attempt, as reqwest and browsers do by default.
const MAX_REDIRECTS: usize = 10;

/// Request headers that carry credentials when a user writes them under `headers`: like the
/// `authentication` block's credential, they go only to the origin it belongs to.
const CREDENTIAL_HEADERS: [HeaderName; 3] = [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION];

/// An HTTP method a pipeline may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
}

impl HttpMethod {
    /// The method as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }

    fn to_reqwest(self) -> reqwest::Method {
        match self {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
            HttpMethod::Patch => reqwest::Method::PATCH,
            HttpMethod::Delete => reqwest::Method::DELETE,
        }
    }
}

impl From<SourceMethod> for HttpMethod {
    fn from(method: SourceMethod) -> HttpMethod {
        match method {
            SourceMethod::Get => HttpMethod::Get,
            SourceMethod::Post => HttpMethod::Post,
        }
    }
}

impl From<SinkMethod> for HttpMethod {
    fn from(method: SinkMethod) -> HttpMethod {
        match method {
            SinkMethod::Get => HttpMethod::Get,
            SinkMethod::Post => HttpMethod::Post,
            SinkMethod::Put => HttpMethod::Put,
            SinkMethod::Patch => HttpMethod::Patch,
            SinkMethod::Delete => HttpMethod::Delete,
        }
    }
}

/// Which statuses count as an answer the caller wants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum Accepted {
    #[default]
    AnySuccess,
    Only(Vec<u16>),
}

/// One HTTP call to make: method, URL with its query, headers and body.
///
/// Setters that can fail on what a user wrote (a header name, a header value) keep the first
/// problem and report it when the request is sent, so that a request reads as one chain.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    method: HttpMethod,
    url: Url,
    headers: HeaderMap,
    body: Option<Bytes>,
    json: bool,
    accepted: Accepted,
    /// Where the credentials may go; `None`: the origin of `url`.
    credentials_origin: Option<Origin>,
    problem: Option<HttpError>,
}

impl HttpRequest {
    /// A request to an absolute http or https URL written as text.
    pub fn new(method: HttpMethod, url: &str) -> Result<HttpRequest, HttpError> {
        let parsed = Url::parse(url).map_err(|e| HttpError::InvalidUrl {
            url: redact_url(url),
            problem: e.to_string(),
        })?;
        HttpRequest::from_url(method, parsed)
    }

    /// A request to an absolute http or https URL.
    pub fn from_url(method: HttpMethod, url: Url) -> Result<HttpRequest, HttpError> {
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return Err(HttpError::InvalidUrl {
                url: redact_url(url.as_str()),
                problem: format!("the scheme `{}` is not http or https", url.scheme()),
            });
        }
        Ok(HttpRequest {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            json: false,
            accepted: Accepted::AnySuccess,
            credentials_origin: None,
            problem: None,
        })
    }

    /// Sends the credentials only to the origin (scheme, host and port) of `url` rather than
    /// to the origin of the request's own URL: for a request to a URL a server sent, such as a
    /// next link, which must not take the credentials of the configured endpoint elsewhere.
    pub fn credentials_for(mut self, url: &Url) -> HttpRequest {
        self.credentials_origin = Some(url.origin());
        self
    }

    /// Appends a query parameter (URL-encoded here).
    pub fn query(mut self, name: &str, value: &str) -> HttpRequest {
        self.url.query_pairs_mut().append_pair(name, value);
        self
    }

    /// Sets a header, replacing one of the same name.
    pub fn header(mut self, name: &str, value: &str) -> HttpRequest {
        let parsed_name = HeaderName::from_bytes(name.as_bytes()).map_err(
            |_| "the name is not a valid HTTP header name (letters, digits and -, no spaces)",
        );
        let parsed_value = HeaderValue::from_str(value).map_err(|_| {
            "the value holds characters that cannot be sent in a header (control characters or \
             non-ASCII)"
        });
        match (parsed_name, parsed_value) {
            (Ok(name), Ok(value)) => {
                self.headers.insert(name, value);
            }
            (Err(problem), _) | (_, Err(problem)) => {
                self.problem.get_or_insert(HttpError::InvalidHeader {
                    name: name.to_owned(),
                    problem: problem.to_owned(),
                });
            }
        }
        self
    }

    /// Sends `value` as a JSON body (`Content-Type: application/json` unless set).
    pub fn json(self, value: &serde_json::Value) -> HttpRequest {
        // Serialising a `Value` cannot fail: its keys are strings and its numbers are finite.
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        self.json_bytes(bytes)
    }

    /// Sends bytes that already hold JSON (`Content-Type: application/json` unless set), for a
    /// caller that serialised a whole batch into one buffer.
    pub fn json_bytes(mut self, bytes: impl Into<Bytes>) -> HttpRequest {
        self.body = Some(bytes.into());
        self.json = true;
        self
    }

    /// Sends bytes as they are.
    pub fn body(mut self, bytes: impl Into<Bytes>) -> HttpRequest {
        self.body = Some(bytes.into());
        self.json = false;
        self
    }

    /// Accepts exactly these statuses as success, instead of any 2xx.
    pub fn accept_statuses(mut self, statuses: impl Into<Vec<u16>>) -> HttpRequest {
        self.accepted = Accepted::Only(statuses.into());
        self
    }

    /// The method.
    pub fn method(&self) -> HttpMethod {
        self.method
    }

    /// The URL with the query parameters added so far (not the ones authentication adds).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The origin the credentials of this request belong to.
    fn credentials_origin(&self) -> Origin {
        self.credentials_origin
            .clone()
            .unwrap_or_else(|| self.url.origin())
    }

    fn accepts(&self, status: u16) -> bool {
        match &self.accepted {
            Accepted::AnySuccess => (200..300).contains(&status),
            Accepted::Only(statuses) => statuses.contains(&status),
        }
    }

    /// The request as it goes out, or the first problem found while building it.
    fn ready(mut self) -> Result<HttpRequest, HttpError> {
        if let Some(problem) = self.problem.take() {
            return Err(problem);
        }
        if self.json && !self.headers.contains_key(CONTENT_TYPE) {
            self.headers
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        Ok(self)
    }
}

/// The answer to an [`HttpRequest`], with its body read in full.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
    url: Url,
}

impl HttpResponse {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header value, when present and readable as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body, without copying it.
    pub fn into_body(self) -> Bytes {
        self.body
    }

    /// The URL that answered, after redirects, without the query parameter an api key added:
    /// the base to resolve relative links against.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

/// Builds an [`HttpClient`] from the `timeoutMs`, `authentication` and `retry` keys.
#[derive(Debug, Clone)]
pub struct HttpClientBuilder {
    timeout: Duration,
    authentication: Option<Authentication>,
    retry: RetryConfig,
}

impl HttpClientBuilder {
    /// The time one attempt may take, from sending to the last byte of the body, redirects
    /// included (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> HttpClientBuilder {
        self.timeout = timeout;
        self
    }

    /// How requests authenticate (default: they do not).
    pub fn authentication(mut self, authentication: Option<&Authentication>) -> HttpClientBuilder {
        self.authentication = authentication.cloned();
        self
    }

    /// When and how failed requests are tried again (default: [`RetryConfig::default`]).
    pub fn retry(mut self, retry: &RetryConfig) -> HttpClientBuilder {
        self.retry = retry.clone();
        self
    }

    /// Sets up the connection pool.
    pub fn build(self) -> Result<HttpClient, HttpError> {
        let auth = Auth::new(self.authentication.as_ref());
        let secret_params = auth.secret_param().map(str::to_owned).into_iter().collect();
        let redactor = Redactor::new(Auth::secrets(self.authentication.as_ref()), secret_params);
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            // Redirects are followed by `HttpClient::once`, which knows what a credential is
            // and where it belongs; reqwest would forward an api-key header to any host.
            .redirect(reqwest::redirect::Policy::none())
            .gzip(true)
            .user_agent(concat!("cannectors/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpError::Setup {
                problem: describe_reqwest(e),
            })?;
        Ok(HttpClient {
            inner: Arc::new(Inner {
                client,
                auth,
                retry: RetryPolicy::new(&self.retry),
                redactor,
                timeout: self.timeout,
            }),
            stop: None,
        })
    }
}

/// An HTTP client with its authentication and retry policy. Cheap to clone: clones share the
/// connection pool and the OAuth 2 token.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
    /// Turns `true` when the run is asked to stop: a retry waiting out its backoff gives up.
    stop: Option<watch::Receiver<bool>>,
}

#[derive(Debug)]
struct Inner {
    client: reqwest::Client,
    auth: Auth,
    retry: RetryPolicy,
    redactor: Redactor,
    /// The time one attempt may take, redirects included.
    timeout: Duration,
}

impl HttpClient {
    /// A builder with the documented defaults.
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder {
            timeout: DEFAULT_TIMEOUT,
            authentication: None,
            retry: RetryConfig::default(),
        }
    }

    /// This client, giving up a retry as soon as `stop` turns `true` instead of waiting out its
    /// backoff: a shutdown is then not held up by a server that asked to wait (`Retry-After`).
    /// A request given up that way fails with [`HttpError::Stopped`], whose cause is
    /// [`StoppedByShutdown`]. A request already on the wire is not cut: it ends within
    /// `timeoutMs`.
    pub fn stop_on(mut self, stop: watch::Receiver<bool>) -> HttpClient {
        self.stop = Some(stop);
        self
    }

    /// The URL as it may appear in logs and errors: no userinfo, no api-key or other secret
    /// query values.
    pub fn redact_url(&self, url: &Url) -> String {
        self.inner.redactor.url(url)
    }

    /// The text with this client's secrets masked, for text a server sent back.
    pub fn redact_text(&self, text: &str) -> String {
        self.inner.redactor.text(text)
    }

    /// Whether `request` carries credentials: this client's authentication, a credential
    /// header written by the user (`Authorization`, `Cookie`, `Proxy-Authorization`), or
    /// userinfo in its URL.
    pub fn carries_credentials(&self, request: &HttpRequest) -> bool {
        !matches!(self.inner.auth, Auth::None)
            || CREDENTIAL_HEADERS
                .iter()
                .any(|name| request.headers.contains_key(name))
            || !request.url.username().is_empty()
            || request.url.password().is_some()
    }

    /// The URL without the query parameter this client's api key travels in, for a URL a
    /// server sent back (a next link) that is about to be saved or shown.
    pub fn without_credentials(&self, url: &Url) -> Url {
        let mut url = url.clone();
        if let Some(name) = self.inner.auth.secret_param() {
            set_query_param(&mut url, name, None);
        }
        url
    }

    /// Sends the request, authenticated and retried, and returns the answer once its status is
    /// accepted.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let request = request.ready()?;
        let Auth::OAuth2(oauth) = &self.inner.auth else {
            return self
                .execute(&request, &self.inner.auth.static_credential())
                .await;
        };
        let token = self.token(oauth).await?;
        let result = self
            .execute(&request, &Credential::Header(AUTHORIZATION, token.clone()))
            .await;
        match result {
            Err(HttpError::Status { status: 401, .. }) => {
                // The token may have been revoked or expired early: one new token, one more try.
                tracing::info!(
                    url = %self.redact_url(&request.url),
                    "the server refused the OAuth2 access token; fetching a new one"
                );
                oauth.forget(&token).await;
                let token = self.token(oauth).await?;
                self.execute(&request, &Credential::Header(AUTHORIZATION, token))
                    .await
            }
            other => other,
        }
    }

    /// The cached OAuth 2 token, or a new one from the token endpoint.
    async fn token(&self, oauth: &OAuth2) -> Result<HeaderValue, HttpError> {
        let mut cache = oauth.lock().await;
        if let Some(token) = cache.current() {
            return Ok(token);
        }
        let url = self.redact_url(&oauth.token_url);
        let mut request = HttpRequest::from_url(HttpMethod::Post, oauth.token_url.clone())?
            .body(oauth.form().to_owned());
        request.headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        request
            .headers
            .insert(ACCEPT, HeaderValue::from_static("application/json"));
        let credential = match oauth.client_auth() {
            Some(value) => Credential::Header(AUTHORIZATION, value.clone()),
            None => Credential::None,
        };
        let response = self
            .execute(&request, &credential)
            .await
            .map_err(|error| match error {
                HttpError::Stopped { .. } => error,
                error => HttpError::Token {
                    url: url.clone(),
                    problem: token_problem(&error),
                },
            })?;
        let (token, lifetime) =
            auth::read_token_response(response.body()).map_err(|problem| HttpError::Token {
                url: url.clone(),
                problem,
            })?;
        tracing::debug!(
            url = %url,
            lifetime_s = lifetime.map(|l| l.as_secs()),
            "obtained an OAuth2 access token"
        );
        cache
            .store(&token, lifetime)
            .map_err(|problem| HttpError::Token { url, problem })
    }

    /// Sends with retries and the given credential.
    async fn execute(
        &self,
        request: &HttpRequest,
        credential: &Credential,
    ) -> Result<HttpResponse, HttpError> {
        let inner = &*self.inner;
        let redactor = inner.redactor.for_attempt(&request.url, credential);
        let max_attempts = inner.retry.max_attempts();
        let mut attempt = 0;
        loop {
            attempt += 1;
            tracing::debug!(
                method = %request.method,
                url = %redactor.url(&request.url),
                attempt,
                "sending request"
            );
            match self.once(request, credential).await {
                Ok(response) if request.accepts(response.status) => return Ok(response),
                Ok(response) => {
                    let retryable = inner.retry.retries_status(response.status);
                    let refused_by_body = retryable
                        && !inner
                            .retry
                            .body_allows_retry(response.status, &response.body);
                    if retryable && !refused_by_body && attempt < max_attempts {
                        let delay = inner.retry.delay_after_response(attempt, &response.headers);
                        tracing::warn!(
                            method = %request.method,
                            url = %redactor.url(&request.url),
                            status = response.status,
                            attempt,
                            delay_ms = delay.as_millis() as u64,
                            "retryable status; trying again"
                        );
                        self.wait_to_retry(request, attempt, delay).await?;
                        continue;
                    }
                    return Err(HttpError::Status {
                        method: request.method,
                        url: redactor.url(&request.url),
                        status: response.status,
                        body: redactor.excerpt(&response.body),
                        attempts: attempt,
                        retried: retryable && !refused_by_body,
                        refused_by_body,
                    });
                }
                Err(error) => {
                    let kind = classify(&error);
                    let problem = redactor.text(&describe_reqwest(error));
                    if kind.is_retryable() && attempt < max_attempts {
                        let delay = inner.retry.backoff(attempt);
                        tracing::warn!(
                            method = %request.method,
                            url = %redactor.url(&request.url),
                            problem = %problem,
                            attempt,
                            delay_ms = delay.as_millis() as u64,
                            "request failed; trying again"
                        );
                        self.wait_to_retry(request, attempt, delay).await?;
                        continue;
                    }
                    return Err(HttpError::Transport {
                        method: request.method,
                        url: redactor.url(&request.url),
                        attempts: attempt,
                        kind,
                        problem,
                    });
                }
            }
        }
    }

    /// Waits `delay` before the attempt after `attempts`, unless a shutdown request comes first.
    async fn wait_to_retry(
        &self,
        request: &HttpRequest,
        attempts: u32,
        delay: Duration,
    ) -> Result<(), HttpError> {
        let Some(stop) = &self.stop else {
            tokio::time::sleep(delay).await;
            return Ok(());
        };
        let mut stop = stop.clone();
        let requested = async {
            // Nobody left to ask for a stop: only the delay ends the wait.
            if stop.wait_for(|stop| *stop).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            biased;
            () = requested => Err(HttpError::Stopped {
                method: request.method,
                url: self.inner.redactor.url(&request.url),
                attempts,
                cause: StoppedByShutdown,
            }),
            () = tokio::time::sleep(delay) => Ok(()),
        }
    }

    /// One attempt: send, follow redirects, and read the whole body (a body cut short is a
    /// failed attempt too). The credential and the credential headers go only to the origin
    /// they belong to; a redirect elsewhere is followed without them.
    async fn once(
        &self,
        request: &HttpRequest,
        credential: &Credential,
    ) -> Result<HttpResponse, reqwest::Error> {
        let deadline = Instant::now() + self.inner.timeout;
        let home = request.credentials_origin();
        let mut hop = Hop::first(request);
        let has_credentials = !matches!(credential, Credential::None)
            || CREDENTIAL_HEADERS
                .iter()
                .any(|name| hop.headers.contains_key(name));
        let mut redirects = 0;
        loop {
            let at_home = hop.url.origin() == home;
            let (url, headers) = hop.outgoing(at_home, credential);
            let mut builder = self
                .inner
                .client
                .request(hop.method.clone(), url)
                .headers(headers)
                .timeout(deadline.saturating_duration_since(Instant::now()));
            if let Some(body) = &hop.body {
                builder = builder.body(body.clone());
            }
            let mut response = builder.send().await?;
            if redirects < MAX_REDIRECTS
                && let Some(next) = redirect_target(&response, &hop.url)
            {
                redirects += 1;
                tracing::debug!(
                    status = response.status().as_u16(),
                    from = %self.redact_url(&hop.url),
                    to = %self.redact_url(&next),
                    credentials = if next.origin() == home { "sent" } else { "withheld" },
                    "following a redirect"
                );
                hop = hop.redirected(response.status(), next);
                continue;
            }
            let status = response.status().as_u16();
            if !at_home && has_credentials && matches!(status, 401 | 403) {
                tracing::warn!(
                    url = %self.redact_url(&hop.url),
                    status,
                    "a redirect led to another origin, which refused the request; credentials \
                     are sent only to {}, where they belong",
                    home.ascii_serialization()
                );
            }
            let headers = std::mem::take(response.headers_mut());
            let mut url = hop.url;
            if let Credential::Query { name, .. } = credential {
                set_query_param(&mut url, name, None);
            }
            let body = response.bytes().await?;
            return Ok(HttpResponse {
                status,
                headers,
                body,
                url,
            });
        }
    }
}

/// One request of an attempt: the first one, then one per redirect followed.
struct Hop {
    method: reqwest::Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Bytes>,
}

impl Hop {
    /// The request as the caller built it. Userinfo in the URL becomes the basic
    /// `Authorization` header the HTTP library would make of it, so that it stays with its
    /// origin like any credential header.
    fn first(request: &HttpRequest) -> Hop {
        let mut url = request.url.clone();
        let mut headers = request.headers.clone();
        if let Some(value) = take_userinfo(&mut url)
            && !headers.contains_key(AUTHORIZATION)
        {
            headers.insert(AUTHORIZATION, value);
        }
        Hop {
            method: request.method.to_reqwest(),
            url,
            headers,
            body: request.body.clone(),
        }
    }

    /// The request after a redirect to `next`, with the method and body rules reqwest
    /// applies: a 303 drops the body and turns anything but HEAD into GET, a 301 or 302 does
    /// so for POST only, a 307 or 308 repeats the request as it was.
    fn redirected(mut self, status: StatusCode, next: Url) -> Hop {
        let drop_body = match status {
            StatusCode::SEE_OTHER => {
                if self.method != reqwest::Method::HEAD {
                    self.method = reqwest::Method::GET;
                }
                true
            }
            StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND
                if self.method == reqwest::Method::POST =>
            {
                self.method = reqwest::Method::GET;
                true
            }
            _ => false,
        };
        if drop_body {
            self.body = None;
            for name in [
                CONTENT_TYPE,
                CONTENT_LENGTH,
                CONTENT_ENCODING,
                TRANSFER_ENCODING,
            ] {
                self.headers.remove(name);
            }
        }
        self.url = next;
        self
    }

    /// The URL and headers this request goes out with: with the credential at the origin it
    /// belongs to; elsewhere without it, without the credential headers, and without the
    /// api key should the server have copied it into the redirect.
    fn outgoing(&self, at_home: bool, credential: &Credential) -> (Url, HeaderMap) {
        let mut url = self.url.clone();
        let mut headers = self.headers.clone();
        if at_home {
            match credential {
                Credential::None => {}
                Credential::Header(name, value) => {
                    headers.insert(name.clone(), value.clone());
                }
                Credential::Query { name, value } => set_query_param(&mut url, name, Some(value)),
            }
        } else {
            for name in &CREDENTIAL_HEADERS {
                headers.remove(name);
            }
            match credential {
                Credential::None => {}
                Credential::Header(name, _) => {
                    headers.remove(name);
                }
                Credential::Query { name, value } => remove_query_pair(&mut url, name, value),
            }
        }
        (url, headers)
    }
}

/// Where a redirect response sends the request, when it is one to follow: a 301, 302, 303,
/// 307 or 308 with a `Location` that resolves to an http or https URL. Any other answer is
/// the attempt's answer.
fn redirect_target(response: &reqwest::Response, current: &Url) -> Option<Url> {
    let status = response.status();
    let is_redirect = matches!(
        status,
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    );
    if !is_redirect {
        return None;
    }
    let location = response.headers().get(LOCATION)?.to_str().ok()?;
    let next = current.join(location).ok()?;
    matches!(next.scheme(), "http" | "https").then_some(next)
}

/// Removes the userinfo of `url` and returns the basic `Authorization` value it stands for,
/// decoded as reqwest decodes it.
fn take_userinfo(url: &mut Url) -> Option<HeaderValue> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    let user = decode(url.username());
    let password = url.password().map(decode).unwrap_or_default();
    // Both setters only fail for URLs that cannot have userinfo, which then have none.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Appends `value` to `out` with everything but the unreserved characters of RFC 3986 (letters,
/// digits, `-._~`) percent-encoded, so that a value filled into a URL template stays one path
/// segment or one query value wherever it lands: a `/`, `&` or `+` in it stays data.
///
/// ```
/// let mut url = String::from("https://api.test/users/");
/// cannectors_connector::http::push_url_encoded("ada lovelace/1+é", &mut url);
/// assert_eq!(url, "https://api.test/users/ada%20lovelace%2F1%2B%C3%A9");
/// ```
pub fn push_url_encoded(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

/// Sets (or with `None` removes) a query parameter, keeping the others as they were written.
fn set_query_param(url: &mut Url, name: &str, value: Option<&str>) {
    let had_it = url.query_pairs().any(|(n, _)| n == name);
    if had_it {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(n, _)| n != name)
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        if !kept.is_empty() || value.is_some() {
            url.query_pairs_mut().extend_pairs(kept);
        }
    }
    if let Some(value) = value {
        url.query_pairs_mut().append_pair(name, value);
    }
}

/// Removes the query parameter `name` where it holds `value`, leaving the others as written.
fn remove_query_pair(url: &mut Url, name: &str, value: &str) {
    if url.query_pairs().any(|(n, v)| n == name && v == value) {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(n, v)| !(n == name && v == value))
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
    }
}

/// What went wrong with a token request, without repeating its URL.
fn token_problem(error: &HttpError) -> String {
    match error {
        HttpError::Status {
            status,
            body,
            attempts,
            ..
        } => {
            let excerpt = if body.is_empty() {
                String::new()
            } else {
                format!(": {body}")
            };
            let s = if *attempts == 1 { "" } else { "s" };
            format!(
                "the token endpoint answered HTTP {status} after {attempts} attempt{s}{excerpt}"
            )
        }
        HttpError::Transport {
            problem, attempts, ..
        } => {
            let s = if *attempts == 1 { "" } else { "s" };
            format!("no answer after {attempts} attempt{s}: {problem}")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_a_query_param_replaces_an_existing_one() {
        let mut url = Url::parse("http://api.test/x?a=1&api_key=old&b=%20").unwrap();
        set_query_param(&mut url, "api_key", Some("new"));
        assert_eq!(url.as_str(), "http://api.test/x?a=1&b=+&api_key=new");
        set_query_param(&mut url, "api_key", None);
        assert_eq!(url.as_str(), "http://api.test/x?a=1&b=+");
    }

    #[test]
    fn removing_the_only_query_param_leaves_no_question_mark() {
        let mut url = Url::parse("http://api.test/x?api_key=k").unwrap();
        set_query_param(&mut url, "api_key", None);
        assert_eq!(url.as_str(), "http://api.test/x");
    }

    #[test]
    fn a_request_reports_the_first_bad_header_when_sent() {
        let request = HttpRequest::new(HttpMethod::Get, "http://api.test/")
            .unwrap()
            .header("Bad Name", "x")
            .header("X-Ok", "fine");
        let error = request.ready().unwrap_err();
        assert_eq!(
            error.to_string(),
            "request header `Bad Name` cannot be sent: the name is not a valid HTTP header name \
             (letters, digits and -, no spaces)"
        );
    }

    #[test]
    fn a_non_http_url_is_refused_with_its_secrets_hidden() {
        let error = HttpRequest::new(HttpMethod::Get, "ftp://me:pw@files.test/x").unwrap_err();
        assert_eq!(
            error.to_string(),
            "`ftp://files.test/x` is not a usable URL: the scheme `ftp` is not http or https; \
             write an absolute http:// or https:// URL"
        );
    }
}
