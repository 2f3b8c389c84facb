//! Keeping secrets out of logs and error messages.
//!
//! Every URL the client names goes through [`Redactor::url`] (no userinfo, secret query values
//! replaced by `***`), and every text that came from a server or a library goes through
//! [`Redactor::text`], which masks the secrets wherever they appear and in every form a request
//! carries them: as written, base64-encoded with the user name in a basic `Authorization`
//! header, percent- or form-encoded in a URL or a form body, escaped in JSON. A server that
//! echoes the request it was sent must not leak a credential into a log.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use cannectors_config::Secrets;
use percent_encoding::percent_decode_str;
use url::Url;

use super::auth::Credential;
use super::error::body_excerpt;

/// The mask written in place of a secret.
pub(crate) const MASK: &str = "***";

/// Query parameters whose values are masked even when no authentication names them, because
/// APIs commonly carry credentials in them.
const SENSITIVE_PARAMS: &[&str] = &[
    "access_token",
    "api-key",
    "api_key",
    "apikey",
    "client_secret",
    "key",
    "password",
    "secret",
    "sig",
    "signature",
    "token",
];

/// A URL as it may be shown in a log line or a message: without userinfo (a user name can be
/// a token) and with the values of the query parameters that commonly carry credentials
/// (`api_key`, `token`, `password`, ...) replaced by `***`. A text that does not parse as a URL
/// loses what looks like userinfo and those values all the same.
///
/// This is the one redaction of URLs for every crate (endpoints, connection strings); an HTTP
/// client also masks the secrets of its own authentication (`HttpClient::redact_url`).
///
/// ```
/// use cannectors_connector::redact_url;
///
/// assert_eq!(
///     redact_url("https://ada:pw@api.example.com/v1/items?api_key=k-1&page=2"),
///     "https://api.example.com/v1/items?api_key=***&page=2"
/// );
/// assert_eq!(
///     redact_url("postgres://app:s3cret@db:5432/sales?password=s3cret"),
///     "postgres://db:5432/sales?password=***"
/// );
/// assert_eq!(redact_url("https://me:pw@exa mple/x"), "https://***@exa mple/x");
/// ```
pub fn redact_url(text: &str) -> String {
    let redactor = Redactor::default();
    match Url::parse(text) {
        Ok(url) => redactor.url(&url),
        Err(_) => redactor.raw_url(text),
    }
}

/// Masks the secrets of one client.
#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    /// Every secret in every encoded form, longest first.
    secrets: Vec<String>,
    secret_params: Vec<String>,
}

impl Redactor {
    /// A redactor masking these secret values (in all their encoded forms) and the values of
    /// these query parameters.
    pub(crate) fn new(secrets: Vec<String>, secret_params: Vec<String>) -> Redactor {
        let mut redactor = Redactor {
            secrets: Vec::new(),
            secret_params,
        };
        redactor.add(secrets);
        redactor
    }

    fn add(&mut self, secrets: impl IntoIterator<Item = String>) {
        for secret in secrets {
            for form in Secrets::encoded_forms(&secret) {
                if !self.secrets.contains(&form) {
                    self.secrets.push(form);
                }
            }
        }
        // Longest first, so that a secret containing another is masked whole.
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// This redactor, also masking the secrets of one attempt that were not known when the
    /// client was built: the userinfo of the request's URL, and the access token the
    /// attempt carries (an OAuth 2 token fetched since).
    pub(crate) fn for_attempt(&self, url: &Url, credential: &Credential) -> Cow<'_, Redactor> {
        let mut extra = userinfo_secrets(url);
        if let Credential::Header(_, value) = credential
            && let Ok(text) = value.to_str()
        {
            // `Bearer <token>`: a server quotes the token alone as often as the whole value.
            let token = text.split_once(' ').map_or(text, |(_, token)| token);
            extra.push(token.to_owned());
        }
        extra.retain(|secret| !secret.is_empty() && !self.secrets.contains(secret));
        if extra.is_empty() {
            return Cow::Borrowed(self);
        }
        let mut redactor = self.clone();
        redactor.add(extra);
        Cow::Owned(redactor)
    }

    fn is_secret_param(&self, name: &str) -> bool {
        SENSITIVE_PARAMS
            .iter()
            .any(|p| p.eq_ignore_ascii_case(name))
            || self
                .secret_params
                .iter()
                .any(|p| p.eq_ignore_ascii_case(name))
    }

    /// The URL as it may be shown: without userinfo, secret query values masked.
    pub(crate) fn url(&self, url: &Url) -> String {
        let mut shown = url.clone();
        // Both setters only fail for URLs that cannot have userinfo, which then have none.
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        if url.query().is_some() {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(name, value)| {
                    let value = if self.is_secret_param(&name) {
                        MASK.to_owned()
                    } else {
                        value.into_owned()
                    };
                    (name.into_owned(), value)
                })
                .collect();
            if pairs.iter().any(|(_, v)| v == MASK) {
                shown.query_pairs_mut().clear().extend_pairs(pairs);
            }
        }
        self.text(shown.as_str())
    }

    /// A URL written by a user that did not parse: drop what looks like userinfo, mask secrets.
    pub(crate) fn raw_url(&self, text: &str) -> String {
        let without_userinfo = match text.find("://") {
            Some(scheme_end) => {
                let authority_start = scheme_end + 3;
                let rest = &text[authority_start..];
                let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                match rest[..authority_len].rfind('@') {
                    Some(at) => format!("{}{MASK}@{}", &text[..authority_start], &rest[at + 1..]),
                    None => text.to_owned(),
                }
            }
            None => text.to_owned(),
        };
        let shown = match without_userinfo.split_once('?') {
            Some((base, query)) => {
                let pairs: Vec<String> = query
                    .split('&')
                    .map(|pair| match pair.split_once('=') {
                        Some((name, _)) if self.is_secret_param(name) => format!("{name}={MASK}"),
                        _ => pair.to_owned(),
                    })
                    .collect();
                format!("{base}?{}", pairs.join("&"))
            }
            None => without_userinfo,
        };
        self.text(&shown)
    }

    /// The text with every configured secret masked.
    pub(crate) fn text(&self, text: &str) -> String {
        let mut shown = text.to_owned();
        for secret in &self.secrets {
            if shown.contains(secret.as_str()) {
                shown = shown.replace(secret.as_str(), MASK);
            }
        }
        shown
    }

    /// The start of a response body as one line, with the secrets masked in the whole body
    /// before it is cut: cutting first could leave the beginning of a secret at the cut.
    pub(crate) fn excerpt(&self, body: &[u8]) -> String {
        if self.secrets.is_empty() {
            return body_excerpt(body);
        }
        body_excerpt(self.text(&String::from_utf8_lossy(body)).as_bytes())
    }
}

/// The forms `user:password` takes in a basic `Authorization` header: base64, standard or
/// URL-safe, with or without padding (servers that echo it do not all keep the padding).
pub(crate) fn basic_credentials_forms(user: &str, password: &str) -> Vec<String> {
    let pair = format!("{user}:{password}");
    let mut forms = Vec::with_capacity(4);
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        let form = engine.encode(&pair);
        if !forms.contains(&form) {
            forms.push(form);
        }
    }
    forms
}

/// The secrets of a URL's userinfo: the password (as written and decoded), or the user name
/// when there is no password (a token written as the user name), and the basic
/// `Authorization` value the HTTP library makes of them.
fn userinfo_secrets(url: &Url) -> Vec<String> {
    let decode = |text: &str| percent_decode_str(text).decode_utf8_lossy().into_owned();
    let user = decode(url.username());
    let mut secrets = match url.password() {
        Some(password) => vec![password.to_owned(), decode(password)],
        None if !user.is_empty() => vec![url.username().to_owned(), user.clone()],
        None => return Vec::new(),
    };
    let password = url.password().map(decode).unwrap_or_default();
    secrets.extend(basic_credentials_forms(&user, &password));
    secrets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn drops_userinfo_and_masks_key_parameters() {
        let redactor = Redactor::new(vec![], vec!["custom".into()]);
        let shown = redactor.url(&url(
            "https://me:pw@api.test/v1/items?custom=abc&page=2&api_key=k",
        ));
        assert_eq!(
            shown,
            "https://api.test/v1/items?custom=***&page=2&api_key=***"
        );
    }

    #[test]
    fn leaves_a_url_without_secrets_untouched() {
        let redactor = Redactor::default();
        let shown = redactor.url(&url("https://api.test/items?filter=a%20b&page=2"));
        assert_eq!(shown, "https://api.test/items?filter=a%20b&page=2");
    }

    #[test]
    fn masks_secrets_wherever_they_appear_in_text() {
        let redactor = Redactor::new(vec!["s3cr3t".into(), String::new()], vec![]);
        assert_eq!(
            redactor.text("invalid key s3cr3t for /a/s3cr3t"),
            "invalid key *** for /a/***"
        );
    }

    #[test]
    fn masks_a_secret_in_its_encoded_forms() {
        let redactor = Redactor::new(vec!["p@ss w/rd".into()], vec![]);
        assert_eq!(
            redactor
                .text(r#"{"q":"key=p%40ss+w%2Frd","path":"/p%40ss%20w%2Frd","raw":"p@ss w\/rd"}"#),
            r#"{"q":"key=***","path":"/***","raw":"***"}"#
        );
    }

    #[test]
    fn masks_basic_credentials_with_and_without_padding() {
        assert_eq!(
            basic_credentials_forms("ada", "p?>w"),
            ["YWRhOnA/Pnc=", "YWRhOnA/Pnc", "YWRhOnA_Pnc=", "YWRhOnA_Pnc"]
        );
        let redactor = Redactor::new(basic_credentials_forms("ada", "p?>w"), vec![]);
        assert_eq!(
            redactor.text("Basic YWRhOnA/Pnc= | YWRhOnA_Pnc | YWRhOnA%2FPnc%3D"),
            "Basic *** | *** | ***"
        );
    }

    #[test]
    fn an_excerpt_never_shows_the_start_of_a_secret_cut_at_its_end() {
        let secret = "s".repeat(40);
        let redactor = Redactor::new(vec![secret.clone()], vec![]);
        let body = format!("{}{secret}", "x".repeat(190));
        let excerpt = redactor.excerpt(body.as_bytes());
        assert!(!excerpt.contains("sss"), "{excerpt}");
        assert!(excerpt.ends_with("***"), "{excerpt}");
    }

    #[test]
    fn an_attempt_also_masks_userinfo_and_a_token_fetched_since() {
        let redactor = Redactor::new(vec!["static-key".into()], vec![]);
        let token = reqwest::header::HeaderValue::from_static("Bearer fresh-token");
        let credential = Credential::Header(reqwest::header::AUTHORIZATION, token);
        let attempt = redactor.for_attempt(&url("http://ada:p%40ss@api.test/x"), &credential);
        let basic = STANDARD.encode("ada:p@ss");
        assert_eq!(
            attempt.text(&format!(
                "Basic {basic}; p@ss; p%40ss; fresh-token; static-key"
            )),
            "Basic ***; ***; ***; ***; ***"
        );
        let token_as_user =
            redactor.for_attempt(&url("https://ghp_abc123@api.test/"), &Credential::None);
        assert_eq!(token_as_user.text("user ghp_abc123"), "user ***");
        assert!(matches!(
            redactor.for_attempt(&url("http://api.test/"), &Credential::None),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn hides_userinfo_of_a_url_that_does_not_parse() {
        let redactor = Redactor::default();
        assert_eq!(
            redactor.raw_url("https://me:pw@exa mple/x"),
            "https://***@exa mple/x"
        );
        assert_eq!(redactor.raw_url("not a url"), "not a url");
        assert_eq!(
            redactor.raw_url("api.test/x?api_key=k&a=1"),
            "api.test/x?api_key=***&a=1"
        );
    }
}
