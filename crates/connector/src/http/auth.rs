//! Authentication of requests: api-key, bearer, basic and OAuth 2 client credentials.
//!
//! The `authentication` block was checked when the pipeline was loaded: its settings hold each
//! credential as the header value it travels in (marked sensitive, so that it never shows in
//! `Debug` output), so a client takes them as they are. The OAuth 2 token is fetched on first
//! use, cached until shortly before it expires, and fetched again when the server rejects it.

use std::time::{Duration, Instant};

use cannectors_config::{ApiKeyLocation, Authentication, OAuth2Credentials, TokenAuthMethod};
use reqwest::header::{self, HeaderName, HeaderValue};
use url::Url;

use super::redact::basic_credentials_forms;

/// A cached token is renewed this long before the server said it expires (at most a tenth
/// of its lifetime), so that a request never leaves with a token that dies on the way.
const TOKEN_MARGIN: Duration = Duration::from_secs(30);
/// An `expires_in` longer than this counts as "does not expire": some servers send huge numbers
/// (`9223372036854775807`, `1e20`) to mean never, and no real token lives a year.
const LONGEST_TOKEN_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// The authentication of a client.
#[derive(Debug)]
pub(crate) enum Auth {
    None,
    /// A header added to every request (api-key header, bearer, basic).
    Header(HeaderName, HeaderValue),
    /// A query parameter set on every request (api-key in the query).
    Query {
        name: String,
        value: String,
    },
    OAuth2(OAuth2),
}

/// What one attempt carries to prove who it is.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    None,
    Header(HeaderName, HeaderValue),
    Query { name: String, value: String },
}

impl Auth {
    /// What requests will carry.
    pub(crate) fn new(authentication: Option<&Authentication>) -> Auth {
        match authentication {
            None => Auth::None,
            Some(Authentication::ApiKey(api_key)) => match api_key.location() {
                ApiKeyLocation::Header(name, value) => Auth::Header(name.clone(), value.clone()),
                ApiKeyLocation::Query(name) => Auth::Query {
                    name: name.clone(),
                    value: api_key.key().to_owned(),
                },
            },
            Some(Authentication::Bearer(bearer)) => {
                Auth::Header(header::AUTHORIZATION, bearer.header_value().clone())
            }
            Some(Authentication::Basic(basic)) => {
                Auth::Header(header::AUTHORIZATION, basic.header_value().clone())
            }
            Some(Authentication::OAuth2(credentials)) => Auth::OAuth2(OAuth2::new(credentials)),
        }
    }

    /// The secret values, for the redactor: each credential, and the basic `Authorization`
    /// values that carry a password or client secret together with a name, base64-encoded,
    /// where the credential itself cannot be recognised.
    pub(crate) fn secrets(authentication: Option<&Authentication>) -> Vec<String> {
        match authentication {
            None => Vec::new(),
            Some(Authentication::ApiKey(api_key)) => vec![api_key.key().to_owned()],
            Some(Authentication::Bearer(bearer)) => vec![bearer.token().to_owned()],
            Some(Authentication::Basic(basic)) => {
                let mut secrets = vec![basic.password().to_owned()];
                secrets.extend(basic_credentials_forms(basic.username(), basic.password()));
                secrets
            }
            Some(Authentication::OAuth2(credentials)) => {
                // As it is written in a `client_secret_post` form body, in case a token server
                // echoes the request back in an error.
                let mut secrets = vec![
                    credentials.client_secret().to_owned(),
                    form_encode(credentials.client_secret()),
                ];
                secrets.extend(basic_credentials_forms(
                    &form_encode(credentials.client_id()),
                    &form_encode(credentials.client_secret()),
                ));
                secrets
            }
        }
    }

    /// The query parameter that carries a secret, for the redactor.
    pub(crate) fn secret_param(&self) -> Option<&str> {
        match self {
            Auth::Query { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The credential of requests that need no token.
    pub(crate) fn static_credential(&self) -> Credential {
        match self {
            Auth::None | Auth::OAuth2(_) => Credential::None,
            Auth::Header(name, value) => Credential::Header(name.clone(), value.clone()),
            Auth::Query { name, value } => Credential::Query {
                name: name.clone(),
                value: value.clone(),
            },
        }
    }
}

/// OAuth 2 client credentials grant (RFC 6749 section 4.4) with a cached token.
#[derive(Debug)]
pub(crate) struct OAuth2 {
    pub(crate) token_url: Url,
    /// The `Authorization` value of the token request, with `client_secret_basic`.
    client_auth: Option<HeaderValue>,
    form: String,
    cache: tokio::sync::Mutex<Option<CachedToken>>,
}

#[derive(Debug)]
struct CachedToken {
    value: HeaderValue,
    renew_at: Option<Instant>,
}

impl OAuth2 {
    fn new(credentials: &OAuth2Credentials) -> OAuth2 {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        let client_auth = match credentials.token_auth_method() {
            TokenAuthMethod::ClientSecretPost => {
                form.append_pair("client_id", credentials.client_id());
                form.append_pair("client_secret", credentials.client_secret());
                None
            }
            TokenAuthMethod::ClientSecretBasic => Some(credentials.client_authentication().clone()),
        };
        if !credentials.scopes().is_empty() {
            form.append_pair("scope", &credentials.scopes().join(" "));
        }
        OAuth2 {
            token_url: credentials.token_url().clone(),
            client_auth,
            form: form.finish(),
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// The `Authorization` value of the token request; none when the id and secret go in
    /// the form body.
    pub(crate) fn client_auth(&self) -> Option<&HeaderValue> {
        self.client_auth.as_ref()
    }

    /// The form body of the token request.
    pub(crate) fn form(&self) -> &str {
        &self.form
    }

    /// The cached token's header value, or `None` when a new one must be fetched. The returned
    /// guard keeps other requests waiting while one fetches, so that only one token request
    /// leaves at a time.
    pub(crate) async fn lock(&self) -> TokenGuard<'_> {
        TokenGuard {
            guard: self.cache.lock().await,
        }
    }

    /// Forgets the token a request was refused with, unless another request renewed it already.
    pub(crate) async fn forget(&self, refused: &HeaderValue) {
        let mut cache = self.cache.lock().await;
        if cache
            .as_ref()
            .is_some_and(|cached| cached.value == *refused)
        {
            *cache = None;
        }
    }
}

/// Exclusive access to the token cache.
pub(crate) struct TokenGuard<'a> {
    guard: tokio::sync::MutexGuard<'a, Option<CachedToken>>,
}

impl TokenGuard<'_> {
    /// The cached token, if it is still good.
    pub(crate) fn current(&self) -> Option<HeaderValue> {
        let cached = self.guard.as_ref()?;
        match cached.renew_at {
            Some(renew_at) if Instant::now() >= renew_at => None,
            _ => Some(cached.value.clone()),
        }
    }

    /// Stores a token read from a token response, good for `lifetime` (`None`: until the
    /// server refuses it).
    pub(crate) fn store(
        &mut self,
        token: &str,
        lifetime: Option<Duration>,
    ) -> Result<HeaderValue, String> {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "the access token holds characters that cannot be sent in a header")?;
        value.set_sensitive(true);
        // A moment too far away to be represented is as good as never.
        let renew_at = lifetime.and_then(|lifetime| {
            Instant::now().checked_add(lifetime - TOKEN_MARGIN.min(lifetime / 10))
        });
        *self.guard = Some(CachedToken {
            value: value.clone(),
            renew_at,
        });
        Ok(value)
    }
}

fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The fields of a token response this client reads: the access token, and how long it is
/// good for (`None`: until the server refuses it).
pub(crate) fn read_token_response(body: &[u8]) -> Result<(String, Option<Duration>), String> {
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        format!("the token endpoint answered with something that is not JSON ({e})")
    })?;
    let token = json
        .get("access_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or("the token endpoint's answer has no `access_token` string")?;
    Ok((token.to_owned(), token_lifetime(json.get("expires_in"))))
}

/// What an `expires_in` value means. RFC 6749 asks for a number of seconds; what servers send
/// besides is read the forgiving way, because a wrong guess costs at most one token request:
/// - a number, or a string holding one, is the lifetime in seconds; zero or less means the
///   token is stale at once (a new one before every request);
/// - a lifetime beyond [`LONGEST_TOKEN_LIFETIME`] (infinity included) means it does not expire;
/// - absent or null: it does not expire (renewed when a request is refused with `401`);
/// - anything else (`"NaN"`, `true`, an object) is ignored the same way, with a warning.
fn token_lifetime(value: Option<&serde_json::Value>) -> Option<Duration> {
    let seconds = match value? {
        serde_json::Value::Null => return None,
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    };
    let Some(seconds) = seconds.filter(|s| !s.is_nan()) else {
        tracing::warn!(
            "the token endpoint's `expires_in` is not a number of seconds; the access token is \
             used until the server refuses it"
        );
        return None;
    };
    if seconds <= 0.0 {
        Some(Duration::ZERO)
    } else if seconds > LONGEST_TOKEN_LIFETIME.as_secs_f64() {
        None
    } else {
        Some(Duration::from_secs_f64(seconds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_response_expiry_may_be_a_number_or_a_string() {
        assert_eq!(
            read_token_response(br#"{"access_token":"t","expires_in":"60"}"#).unwrap(),
            ("t".to_owned(), Some(Duration::from_secs(60)))
        );
        assert_eq!(
            read_token_response(br#"{"access_token":"t"}"#).unwrap(),
            ("t".to_owned(), None)
        );
        assert!(
            read_token_response(br#"{"error":"x"}"#)
                .unwrap_err()
                .contains("no `access_token`")
        );
    }

    fn lifetime(json: &str) -> Option<Duration> {
        token_lifetime(Some(&serde_json::from_str(json).unwrap()))
    }

    #[test]
    fn absurd_token_lifetimes_mean_the_token_does_not_expire() {
        assert_eq!(lifetime("9223372036854775807"), None);
        assert_eq!(lifetime("18446744073709551615"), None);
        assert_eq!(lifetime("1e20"), None);
        assert_eq!(lifetime("\"1e20\""), None);
        assert_eq!(lifetime("\"inf\""), None);
        assert_eq!(lifetime("31536001"), None);
        assert_eq!(lifetime("31536000"), Some(LONGEST_TOKEN_LIFETIME));
    }

    #[test]
    fn token_lifetimes_of_zero_or_less_mean_stale_at_once() {
        assert_eq!(lifetime("0"), Some(Duration::ZERO));
        assert_eq!(lifetime("-5"), Some(Duration::ZERO));
        assert_eq!(lifetime("\" -5 \""), Some(Duration::ZERO));
        assert_eq!(lifetime("-1e300"), Some(Duration::ZERO));
    }

    #[test]
    fn token_lifetimes_that_are_not_numbers_are_ignored() {
        assert_eq!(lifetime("\"NaN\""), None);
        assert_eq!(lifetime("\"soon\""), None);
        assert_eq!(lifetime("true"), None);
        assert_eq!(lifetime("{\"s\": 5}"), None);
        assert_eq!(lifetime("null"), None);
        assert_eq!(token_lifetime(None), None);
        assert_eq!(lifetime("90.5"), Some(Duration::from_millis(90_500)));
    }

    #[tokio::test]
    async fn storing_a_token_with_the_longest_lifetime_there_is_does_not_overflow() {
        let cache = tokio::sync::Mutex::new(None);
        let mut guard = TokenGuard {
            guard: cache.lock().await,
        };
        guard.store("t", Some(Duration::MAX)).unwrap();
        assert_eq!(guard.current().unwrap(), "Bearer t");
    }
}
