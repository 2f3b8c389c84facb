//! What can go wrong with an HTTP call, told to the person at the terminal.
//!
//! Every message names the request (method and URL, without secrets), what failed and what to
//! try. Values that came from the configuration's secrets or from `${VAR}` never appear: URLs
//! and server texts are redacted before they reach a variant.

use std::fmt;

use super::HttpMethod;
use crate::StoppedByShutdown;

/// Why an HTTP call failed or could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HttpError {
    /// A URL is not an absolute http or https URL.
    #[error("`{url}` is not a usable URL: {problem}; write an absolute http:// or https:// URL")]
    InvalidUrl {
        /// The URL as written, without secrets.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A request header name or value cannot be sent.
    #[error("request header `{name}` cannot be sent: {problem}")]
    InvalidHeader {
        /// The header name.
        name: String,
        /// What is wrong (the value itself is never shown: it may be a secret).
        problem: String,
    },
    /// The HTTP client could not be set up (TLS roots, resolver).
    #[error("cannot set up the HTTP client: {problem}")]
    Setup {
        /// What failed.
        problem: String,
    },
    /// No response arrived: timeout, connection refused or reset, TLS failure.
    #[error(
        "{method} {url} failed after {attempts} attempt{s}: {problem}; {hint}",
        s = plural(*attempts),
        hint = kind.hint()
    )]
    Transport {
        /// The request method.
        method: HttpMethod,
        /// The URL, without secrets.
        url: String,
        /// Attempts made, the first included.
        attempts: u32,
        /// The kind of failure.
        kind: TransportFailure,
        /// What the network layer reported.
        problem: String,
    },
    /// The server answered with a status the request does not accept.
    #[error(
        "{method} {url} answered HTTP {status}{reason} after {attempts} attempt{s}{excerpt}; {hint}",
        reason = reason_phrase(*status),
        s = plural(*attempts),
        excerpt = excerpt_suffix(body),
        hint = status_hint(*status, *retried, *refused_by_body)
    )]
    Status {
        /// The request method.
        method: HttpMethod,
        /// The URL, without secrets.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, without secrets.
        body: String,
        /// Attempts made, the first included.
        attempts: u32,
        /// Whether the status was one of the retryable ones (the retries ran out).
        retried: bool,
        /// The status was retryable, but `retry.retryHintFromBody` said of the body not to
        /// retry.
        refused_by_body: bool,
    },
    /// A shutdown was requested while the request waited to be tried again; it was given up.
    #[error(
        "{method} {url}: stopped by shutdown while waiting to try again after {attempts} \
         failed attempt{s}",
        s = plural(*attempts)
    )]
    Stopped {
        /// The request method.
        method: HttpMethod,
        /// The URL, without secrets.
        url: String,
        /// Attempts made, the first included.
        attempts: u32,
        /// What lets the executor tell this from a failure through any error that wraps it.
        #[source]
        cause: StoppedByShutdown,
    },
    /// An OAuth 2 access token could not be obtained.
    #[error(
        "cannot obtain an OAuth2 access token from {url}: {problem}; check credentials.tokenUrl, \
         clientId and clientSecret"
    )]
    Token {
        /// The token endpoint, without secrets.
        url: String,
        /// What went wrong.
        problem: String,
    },
}

/// Kinds of failure where no response arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportFailure {
    /// No complete response within the timeout.
    Timeout,
    /// The connection could not be opened (refused, unreachable, DNS, TLS handshake).
    Connect,
    /// The server's TLS certificate could not be verified (unknown issuer, expired, issued for
    /// another name): the server is there, but is not trusted.
    Certificate,
    /// The connection broke while sending the request or reading the response.
    Connection,
    /// The response could not be decoded (e.g. a corrupt gzip body).
    Decode,
    /// Anything else the HTTP library reported.
    Other,
}

impl TransportFailure {
    fn hint(self) -> &'static str {
        match self {
            TransportFailure::Timeout => {
                "the server did not answer in time: raise timeoutMs or check the server"
            }
            TransportFailure::Connect => {
                "check that the server is running and that the host and port are right"
            }
            TransportFailure::Certificate => {
                "this is a certificate problem, not a connection one: the server answered with a \
                 TLS certificate that is not trusted (signed by an unknown or private CA, \
                 self-signed, expired, or issued for another host name); give the server a \
                 certificate from a public CA for the host name in the URL"
            }
            TransportFailure::Connection => {
                "the connection broke: check the server and the network"
            }
            TransportFailure::Decode => "the server sent a body that cannot be decoded",
            TransportFailure::Other => "check the endpoint and the network",
        }
    }

    /// Whether trying again may help.
    pub(crate) fn is_retryable(self) -> bool {
        matches!(
            self,
            TransportFailure::Timeout | TransportFailure::Connect | TransportFailure::Connection
        )
    }
}

impl HttpError {
    /// The HTTP status of a [`HttpError::Status`], to tell apart answers such as 404.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Attempts made before giving up, for errors of a request that was sent.
    pub fn attempts(&self) -> Option<u32> {
        match self {
            HttpError::Transport { attempts, .. }
            | HttpError::Status { attempts, .. }
            | HttpError::Stopped { attempts, .. } => Some(*attempts),
            _ => None,
        }
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn reason_phrase(status: u16) -> String {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|reason| format!(" {reason}"))
        .unwrap_or_default()
}

fn excerpt_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

fn status_hint(status: u16, retried: bool, refused_by_body: bool) -> &'static str {
    match status {
        _ if refused_by_body => {
            "retry.retryHintFromBody is false for this response, so it was not retried"
        }
        _ if retried => "the server kept failing; raise retry.maxAttempts or try again later",
        401 => "check the authentication credentials",
        403 => "the credentials lack permission for this resource",
        404 | 410 => "check the endpoint path",
        429 => {
            "the server is rate limiting; add 429 to retry.retryableStatusCodes to wait and retry"
        }
        400..=499 => "the server rejected the request; it is not retried",
        500..=599 => "the server failed; add the status to retry.retryableStatusCodes to retry it",
        300..=399 => {
            "a redirect that was not followed: it had no usable http or https Location, or it \
             came after 10 redirects in a row"
        }
        _ => "the request does not accept this status",
    }
}

/// At most this many characters of a response body go into an error.
const EXCERPT_CHARS: usize = 200;

/// The start of a body as one line of text.
pub(crate) fn body_excerpt(body: &[u8]) -> String {
    let head = &body[..body.len().min(EXCERPT_CHARS * 4)];
    let text = String::from_utf8_lossy(head);
    let mut excerpt: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(EXCERPT_CHARS)
        .collect();
    let truncated = text.chars().count() > EXCERPT_CHARS || body.len() > head.len();
    excerpt = excerpt.split_whitespace().collect::<Vec<_>>().join(" ");
    if truncated {
        excerpt.push_str(" ...");
    }
    excerpt
}

/// The message of a network error with its causes, without the URL the library would add.
pub(crate) fn describe_reqwest(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Classifies a network error.
pub(crate) fn classify(error: &reqwest::Error) -> TransportFailure {
    if error.is_timeout() {
        TransportFailure::Timeout
    } else if refused_certificate(error) {
        // Before `is_connect`: another attempt would meet the same certificate, and "check that
        // the server is running" sends the reader the wrong way.
        TransportFailure::Certificate
    } else if error.is_connect() {
        TransportFailure::Connect
    } else if broke_in_transit(error) {
        // reqwest reports every failed body read as a decoding error, a body cut short before
        // its Content-Length or a broken chunk included; those are a connection that broke,
        // and another attempt may well get the whole body.
        TransportFailure::Connection
    } else if error.is_decode() {
        TransportFailure::Decode
    } else if error.is_request() || error.is_body() {
        TransportFailure::Connection
    } else {
        TransportFailure::Other
    }
}

/// Whether TLS refused the server's certificate somewhere in the chain. The TLS error sits
/// inside `io::Error`s (one in another, from the TLS stream and from the connector), whose
/// `source` skips what they wrap, so each `io::Error` is opened too.
fn refused_certificate(error: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        let mut inner = Some(current);
        while let Some(layer) = inner {
            if matches!(
                layer.downcast_ref::<rustls::Error>(),
                Some(
                    rustls::Error::InvalidCertificate(_)
                        | rustls::Error::NoCertificatesPresented
                        | rustls::Error::InvalidCertRevocationList(_)
                )
            ) {
                return true;
            }
            inner = layer
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .map(|wrapped| wrapped as &(dyn std::error::Error + 'static));
        }
        cause = current.source();
    }
    false
}

/// Whether the HTTP layer itself (hyper) reported the failure somewhere in the chain: the bytes
/// did not arrive as framed, as opposed to bytes that arrived whole and could not be decoded
/// (a corrupt gzip body), which another attempt would only receive again.
fn broke_in_transit(error: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if current.is::<hyper::Error>() {
            return true;
        }
        cause = current.source();
    }
    false
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_one_short_line() {
        let body = format!("{{\n  \"error\": \"{}\"\n}}", "x".repeat(500));
        let excerpt = body_excerpt(body.as_bytes());
        assert!(excerpt.starts_with("{ \"error\": \"xxx"));
        assert!(excerpt.ends_with(" ..."));
        assert!(excerpt.chars().count() <= EXCERPT_CHARS + 4);
    }

    #[test]
    fn status_error_names_request_status_body_and_attempts() {
        let error = HttpError::Status {
            method: HttpMethod::Get,
            url: "http://api.test/items".into(),
            status: 400,
            body: "{\"error\":\"bad filter\"}".into(),
            attempts: 1,
            retried: false,
            refused_by_body: false,
        };
        assert_eq!(
            error.to_string(),
            "GET http://api.test/items answered HTTP 400 Bad Request after 1 attempt: \
             {\"error\":\"bad filter\"}; the server rejected the request; it is not retried"
        );
    }
}
