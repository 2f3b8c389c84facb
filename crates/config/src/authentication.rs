//! The `authentication` block of the HTTP input and output: its settings, the block as written,
//! and its rules.
//!
//! The settings hold each credential in the form it travels in: a header name and a header
//! value (marked sensitive), or the name of a query parameter. Making those values is the check
//! that a credential can be sent at all, so it happens here, once, with the key path of the
//! credential; the HTTP client takes them as they are.

use std::fmt;

use base64::Engine as _;
use http::{HeaderName, HeaderValue};
use schemars::JsonSchema;
use serde::Deserialize;
use url::Url;

use crate::document::KeyPath;
use crate::http::url;
use crate::validate::Findings;

/// Header of an api key unless `headerName` says otherwise.
const API_KEY_HEADER: &str = "x-api-key";
/// Query parameter of an api key unless `paramName` says otherwise.
const API_KEY_PARAM: &str = "api_key";

/// How requests say who sends them (docs/http-input.md, Authentication), checked: one variant
/// per `type`, holding exactly its credentials.
///
/// ```
/// use cannectors_config::{ApiKeyLocation, Authentication, OutputConfig};
///
/// let yaml = r#"
/// name: push
/// input: {type: httpPolling, endpoint: "https://source.example.com/items"}
/// output:
///   type: httpRequest
///   endpoint: https://sink.example.com/items
///   authentication: {type: api-key, credentials: {key: k-123, headerName: Api-Token}}
/// "#;
/// let pipeline = cannectors_config::parse_str(yaml, "push.yaml", &|_| None).unwrap().pipeline;
/// let OutputConfig::HttpRequest(output) = &pipeline.output else { unreachable!() };
/// let Some(Authentication::ApiKey(api_key)) = &output.authentication else { unreachable!() };
/// assert_eq!(api_key.key(), "k-123");
/// let ApiKeyLocation::Header(name, value) = api_key.location() else { unreachable!() };
/// assert_eq!((name.as_str(), value.is_sensitive()), ("api-token", true));
/// ```
// Exhaustive, as `Pagination` is: a client that meets a type it does not know would send no
// credential, so a new type must be a build error in every crate that sends requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// `api-key`: a key in a request header or a query parameter.
    ApiKey(ApiKey),
    /// `bearer`: `Authorization: Bearer <token>`.
    Bearer(BearerToken),
    /// `basic`: `Authorization: Basic base64(username:password)`.
    Basic(BasicCredentials),
    /// `oauth2`: an access token from the client credentials grant (RFC 6749 section 4.4).
    OAuth2(OAuth2Credentials),
}

/// The credentials of `api-key` authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    key: String,
    location: ApiKeyLocation,
}

impl ApiKey {
    /// The key, not empty.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Where the key goes.
    pub fn location(&self) -> &ApiKeyLocation {
        &self.location
    }
}

/// Where an api key goes, under which name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeyLocation {
    /// In this request header (`headerName`, default `X-API-Key`), with the key as its value,
    /// marked sensitive.
    Header(HeaderName, HeaderValue),
    /// In this query parameter (`paramName`, default `api_key`), not empty.
    Query(String),
}

/// The credentials of `bearer` authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken {
    token: String,
    header: HeaderValue,
}

impl BearerToken {
    /// The token, not empty.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// `Bearer <token>`, the value of the `Authorization` header, marked sensitive.
    pub fn header_value(&self) -> &HeaderValue {
        &self.header
    }
}

/// The credentials of `basic` authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    username: String,
    password: String,
    header: HeaderValue,
}

impl BasicCredentials {
    /// The user name, not empty.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password; it may be empty (some APIs take a key as the user name and no password).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// `Basic base64(username:password)`, the value of the `Authorization` header, marked
    /// sensitive.
    pub fn header_value(&self) -> &HeaderValue {
        &self.header
    }
}

/// The credentials of `oauth2` authentication (client credentials grant).
#[derive(Clone, PartialEq, Eq)]
pub struct OAuth2Credentials {
    token_url: Url,
    client_id: String,
    client_secret: String,
    scopes: Vec<String>,
    client_authentication: HeaderValue,
    method: TokenAuthMethod,
}

/// How the client id and secret travel in the token request (`credentials.tokenAuthMethod`,
/// named as in RFC 7591).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    /// `client_id` and `client_secret` in the form body (the default). The Go tool this project
    /// descends from sends them so, and only so: the token servers its pipelines were written
    /// against accept them there.
    #[default]
    ClientSecretPost,
    /// HTTP basic `Authorization` with the form-encoded id and secret (RFC 6749 section 2.3.1).
    ClientSecretBasic,
}

impl OAuth2Credentials {
    /// The token endpoint, an http or https URL.
    pub fn token_url(&self) -> &Url {
        &self.token_url
    }

    /// The client id, not empty.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The client secret, not empty.
    pub fn client_secret(&self) -> &str {
        &self.client_secret
    }

    /// The scopes to ask for; none: the server's default.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The `Authorization` value of the token request with
    /// [`TokenAuthMethod::ClientSecretBasic`], marked sensitive: HTTP basic credentials of the
    /// form-encoded client id and secret (RFC 6749 section 2.3.1).
    pub fn client_authentication(&self) -> &HeaderValue {
        &self.client_authentication
    }

    /// How the client id and secret are sent to the token endpoint.
    pub fn token_auth_method(&self) -> TokenAuthMethod {
        self.method
    }
}

// Secrets never show in `Debug` output (a settings dump in a log line, a test failure).
const HIDDEN: &str = "***";

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("key", &HIDDEN)
            .field("location", &self.location)
            .finish()
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerToken")
            .field("token", &HIDDEN)
            .finish()
    }
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("username", &self.username)
            .field("password", &HIDDEN)
            .finish()
    }
}

impl fmt::Debug for OAuth2Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2Credentials")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &HIDDEN)
            .field("scopes", &self.scopes)
            .field("method", &self.method)
            .finish()
    }
}

// As written; validation turns it into `Authentication`.
/// Authentication of an HTTP request.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Authentication")]
pub(crate) struct RawAuthentication {
    /// `api-key`, `bearer`, `basic` or `oauth2`.
    #[serde(rename = "type")]
    pub(crate) kind: RawAuthKind,
    /// The secrets of the chosen type.
    pub(crate) credentials: RawCredentials,
}

// As written; validation turns it into the variant of `Authentication`.
/// Kind of authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[schemars(rename = "AuthKind")]
pub(crate) enum RawAuthKind {
    /// A key sent in a header or a query parameter (`key`, `location`, `headerName`, `paramName`).
    #[serde(rename = "api-key")]
    ApiKey,
    /// `Authorization: Bearer <token>` (`token`).
    #[serde(rename = "bearer")]
    Bearer,
    /// `Authorization: Basic` (`username`, `password`).
    #[serde(rename = "basic")]
    Basic,
    /// OAuth 2 client credentials (`tokenUrl`, `clientId`, `clientSecret`, `scopes` or `scope`,
    /// `tokenAuthMethod`).
    #[serde(rename = "oauth2")]
    OAuth2,
}

// As written; validation turns it into `ApiKeyLocation`, with the name.
/// Where an api key goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "ApiKeyLocation")]
pub(crate) enum RawApiKeyLocation {
    /// In a request header (default `X-API-Key`).
    #[default]
    Header,
    /// In a query parameter (default `api_key`).
    Query,
}

// As written; validation keeps the credentials of the chosen kind.
/// Credentials of every authentication kind; which keys are required depends on the kind.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Credentials")]
pub(crate) struct RawCredentials {
    /// api-key: the key.
    #[serde(default)]
    pub(crate) key: Option<String>,
    /// api-key: `header` (default) or `query`.
    #[serde(default)]
    pub(crate) location: Option<RawApiKeyLocation>,
    /// api-key: header name (default `X-API-Key`).
    #[serde(default)]
    pub(crate) header_name: Option<String>,
    /// api-key: query parameter name (default `api_key`).
    #[serde(default)]
    pub(crate) param_name: Option<String>,
    /// bearer: the token.
    #[serde(default)]
    pub(crate) token: Option<String>,
    /// basic: the user name.
    #[serde(default)]
    pub(crate) username: Option<String>,
    /// basic: the password.
    #[serde(default)]
    pub(crate) password: Option<String>,
    /// oauth2: the token endpoint.
    #[serde(default)]
    pub(crate) token_url: Option<String>,
    /// oauth2: the client id.
    #[serde(default)]
    pub(crate) client_id: Option<String>,
    /// oauth2: the client secret.
    #[serde(default)]
    pub(crate) client_secret: Option<String>,
    /// oauth2: requested scopes.
    #[serde(default)]
    pub(crate) scopes: Vec<String>,
    /// oauth2: requested scopes in one space-separated string, as the Go tool writes them.
    #[serde(default)]
    pub(crate) scope: Option<String>,
    /// oauth2: how the client id and secret are sent: `client_secret_post` (in the form body,
    /// the default, as the Go tool does) or `client_secret_basic` (HTTP basic).
    #[serde(default)]
    pub(crate) token_auth_method: Option<TokenAuthMethod>,
}

/// A credential key and its value, if given.
type Credential<'a> = (&'a str, Option<&'a String>);

impl RawAuthentication {
    /// The credentials of the kind, each in the form it is sent in; `path` is the
    /// `authentication` block.
    pub(crate) fn validate(
        &self,
        path: &KeyPath,
        findings: &mut Findings,
    ) -> Option<Authentication> {
        let mark = findings.mark();
        self.check_keys(path, findings);
        let credentials = path.key("credentials");
        let c = &self.credentials;
        let settings = match self.kind {
            RawAuthKind::ApiKey => api_key(findings, &credentials, c).map(Authentication::ApiKey),
            RawAuthKind::Bearer => {
                let token = given(&c.token)?;
                let header =
                    sensitive(findings, &credentials, "token", &format!("Bearer {token}"))?;
                Some(Authentication::Bearer(BearerToken {
                    token: token.to_owned(),
                    header,
                }))
            }
            RawAuthKind::Basic => {
                let username = given(&c.username)?;
                let password = c.password.as_deref()?;
                let header = sensitive(
                    findings,
                    &credentials,
                    "password",
                    &basic_value(username, password),
                )?;
                Some(Authentication::Basic(BasicCredentials {
                    username: username.to_owned(),
                    password: password.to_owned(),
                    header,
                }))
            }
            RawAuthKind::OAuth2 => oauth2(findings, &credentials, c).map(Authentication::OAuth2),
        };
        findings.clean_since(mark).then_some(settings).flatten()
    }

    /// The credentials fit the kind, required ones are not empty, `headerName`/`paramName`
    /// match `location`.
    fn check_keys(&self, path: &KeyPath, findings: &mut Findings) {
        let c = &self.credentials;
        let given: [(&str, bool); 13] = [
            ("key", c.key.is_some()),
            ("location", c.location.is_some()),
            ("headerName", c.header_name.is_some()),
            ("paramName", c.param_name.is_some()),
            ("token", c.token.is_some()),
            ("username", c.username.is_some()),
            ("password", c.password.is_some()),
            ("tokenUrl", c.token_url.is_some()),
            ("clientId", c.client_id.is_some()),
            ("clientSecret", c.client_secret.is_some()),
            ("scopes", !c.scopes.is_empty()),
            ("scope", c.scope.is_some()),
            ("tokenAuthMethod", c.token_auth_method.is_some()),
        ];
        let (kind, required, optional): (&str, &[Credential<'_>], &[&str]) = match self.kind {
            RawAuthKind::ApiKey => (
                "api-key",
                &[("key", c.key.as_ref())],
                &["location", "headerName", "paramName"],
            ),
            RawAuthKind::Bearer => ("bearer", &[("token", c.token.as_ref())], &[]),
            RawAuthKind::Basic => (
                "basic",
                &[
                    ("username", c.username.as_ref()),
                    ("password", c.password.as_ref()),
                ],
                &[],
            ),
            RawAuthKind::OAuth2 => (
                "oauth2",
                &[
                    ("tokenUrl", c.token_url.as_ref()),
                    ("clientId", c.client_id.as_ref()),
                    ("clientSecret", c.client_secret.as_ref()),
                ],
                &["scopes", "scope", "tokenAuthMethod"],
            ),
        };
        let credentials = path.key("credentials");
        let takes = required
            .iter()
            .map(|(name, _)| *name)
            .chain(optional.iter().copied())
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ");
        for (name, value) in required {
            match value {
                None => findings.problem(
                    credentials.key(name),
                    format!("{kind} authentication needs `credentials.{name}`"),
                ),
                // An empty basic password is real: some APIs take a key as the user name and no
                // password.
                Some(value) if value.trim().is_empty() && *name != "password" => findings.problem(
                    credentials.key(name),
                    format!(
                        "`credentials.{name}` is empty (an unset or empty variable?); {kind} \
                         authentication needs it"
                    ),
                ),
                Some(_) => {}
            }
        }
        for (name, is_given) in given {
            let applies = required.iter().any(|(n, _)| *n == name) || optional.contains(&name);
            if is_given && !applies {
                findings.problem(
                    credentials.key(name),
                    format!(
                        "`{name}` does not apply to {kind} authentication, which takes {takes}"
                    ),
                );
            }
        }
        if self.kind == RawAuthKind::ApiKey {
            let location = c.location.unwrap_or_default();
            if location == RawApiKeyLocation::Header && c.param_name.is_some() {
                findings.problem(
                    credentials.key("paramName"),
                    "paramName applies to `location: query`; the key goes in a header here (set \
                     headerName, or `location: query`)",
                );
            }
            if location == RawApiKeyLocation::Query && c.header_name.is_some() {
                findings.problem(
                    credentials.key("headerName"),
                    "headerName applies to `location: header`; the key goes in the query here (set \
                     paramName, or `location: header`)",
                );
            }
        }
    }
}

/// A required credential that is given and not blank (`check_keys` reported it otherwise).
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|value| !value.trim().is_empty())
}

fn api_key(findings: &mut Findings, credentials: &KeyPath, c: &RawCredentials) -> Option<ApiKey> {
    let location = match c.location.unwrap_or_default() {
        RawApiKeyLocation::Header => {
            let name = match c.header_name.as_deref() {
                None => Some(HeaderName::from_static(API_KEY_HEADER)),
                Some(name) => header_name(findings, &credentials.key("headerName"), name),
            };
            let key = given(&c.key)?;
            let value = sensitive(findings, credentials, "key", key)?;
            ApiKeyLocation::Header(name?, value)
        }
        RawApiKeyLocation::Query => match c.param_name.as_deref() {
            None => ApiKeyLocation::Query(API_KEY_PARAM.to_owned()),
            Some(name) if name.trim().is_empty() => {
                findings.problem(
                    credentials.key("paramName"),
                    "paramName is empty; write the name of the query parameter, or remove it \
                     for the default `api_key`",
                );
                return None;
            }
            Some(name) => ApiKeyLocation::Query(name.to_owned()),
        },
    };
    Some(ApiKey {
        key: given(&c.key)?.to_owned(),
        location,
    })
}

/// `name` as a request header name, or a problem at `path`.
fn header_name(findings: &mut Findings, path: &KeyPath, name: &str) -> Option<HeaderName> {
    let problem = if name.trim().is_empty() {
        "headerName is empty; write a header name, or remove it for the default `X-API-Key`"
            .to_owned()
    } else {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(name) => return Some(name),
            Err(_) => format!(
                "`{name}` is not a valid HTTP header name: use letters, digits and `-`, without \
                 spaces (e.g. X-API-Key)"
            ),
        }
    };
    findings.problem(path.clone(), problem);
    None
}

fn oauth2(
    findings: &mut Findings,
    credentials: &KeyPath,
    c: &RawCredentials,
) -> Option<OAuth2Credentials> {
    let token_url = given(&c.token_url)
        .and_then(|token_url| url(findings, &credentials.key("tokenUrl"), token_url));
    let scopes = match (&c.scope, c.scopes.is_empty()) {
        (Some(_), false) => {
            findings.problem(
                credentials.key("scope"),
                "`scope` and `scopes` are both set; keep one (`scopes` as a list, or `scope` as \
                 one space-separated string)",
            );
            None
        }
        (Some(scope), true) => Some(scope.split_whitespace().map(str::to_owned).collect()),
        (None, _) => Some(c.scopes.clone()),
    };
    let client_id = given(&c.client_id)?;
    let client_secret = given(&c.client_secret)?;
    let client_authentication = sensitive(
        findings,
        credentials,
        "clientSecret",
        &basic_value(&form_encode(client_id), &form_encode(client_secret)),
    )?;
    Some(OAuth2Credentials {
        token_url: token_url?,
        client_id: client_id.to_owned(),
        client_secret: client_secret.to_owned(),
        scopes: scopes?,
        client_authentication,
        method: c.token_auth_method.unwrap_or_default(),
    })
}

/// `text` as a header value marked sensitive, or a problem at `credentials.<key>`, the
/// credential it carries. The value itself is never quoted: it is a secret.
fn sensitive(
    findings: &mut Findings,
    credentials: &KeyPath,
    key: &str,
    text: &str,
) -> Option<HeaderValue> {
    match HeaderValue::from_str(text) {
        Ok(mut value) => {
            value.set_sensitive(true);
            Some(value)
        }
        Err(_) => {
            findings.problem(
                credentials.key(key),
                format!(
                    "`credentials.{key}` holds characters that cannot be sent in an HTTP header \
                     (control characters, such as a line break); check its value"
                ),
            );
            None
        }
    }
}

fn basic_value(username: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
