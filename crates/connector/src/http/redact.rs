//! Keeping secrets out of logs and error messages.
//!
//! Every URL the client names goes through [`Redactor::url`] (no userinfo, secret query values
//! replaced by `***`), and every text that came from a server or a library goes through
//! [`Redactor::text`], which masks the configured secrets wherever they appear: a server that
//! echoes the key it was sent must not leak it into a log.

use url::Url;

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

/// Masks the secrets of one client.
#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
    secret_params: Vec<String>,
}

impl Redactor {
    /// A redactor masking these secret values and the values of these query parameters.
    pub(crate) fn new(secrets: Vec<String>, secret_params: Vec<String>) -> Redactor {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        // Longest first, so that a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor {
            secrets,
            secret_params,
        }
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
