//! `${VAR}` and `${VAR:-default}` in string values, replaced after the file was parsed.
//!
//! Substituting after parsing means a value from the environment is never read as YAML: a
//! password holding `#`, `: ` or a quote stays one string. Only string values are touched, never
//! keys, and a value stays a string (`timeoutMs: ${TIMEOUT}` is a type error, not a number).
//! `$${` writes a literal `${`. Every value that came from the environment is remembered in
//! [`Secrets`] so that it can be kept out of logs and error messages.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use crate::document::KeyPath;

/// Every byte but the unreserved characters of RFC 3986 (letters, digits, `-._~`): how a value
/// is written into a URL path, userinfo or query by a strict encoder.
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The values that came from environment variables, to keep them out of logs and messages.
///
/// ```
/// let env = |name: &str| (name == "TOKEN").then(|| "s3cr3t-token".to_owned());
/// let yaml = r#"
/// name: demo
/// input:
///   type: httpPolling
///   endpoint: https://api.example.com/items
///   authentication: {type: bearer, credentials: {token: "${TOKEN}"}}
/// output: {type: stdout}
/// "#;
/// let loaded = cannectors_config::parse_str(yaml, "demo.yaml", &env).unwrap();
/// assert_eq!(
///     loaded.secrets.redact("401 for token s3cr3t-token"),
///     "401 for token ${TOKEN}"
/// );
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// (value or one of its encoded forms, variable name), longest first so that a value
    /// containing another one is replaced whole.
    values: Vec<(String, String)>,
}

impl Secrets {
    /// Values shorter than this are not masked: hiding every `1` or `eu` would garble each log
    /// line, and a value that short protects nothing.
    pub const MIN_LEN: usize = 4;

    /// Replaces every occurrence of a substituted value in `text` with `${NAME}`, the
    /// variable it came from, so a message still says what it was about.
    pub fn redact(&self, text: &str) -> String {
        let mut redacted = text.to_owned();
        for (value, name) in &self.values {
            if redacted.contains(value.as_str()) {
                redacted = redacted.replace(value.as_str(), &format!("${{{name}}}"));
            }
        }
        redacted
    }

    /// The ways `value` may be written in a text that quotes a request or a log line: as it
    /// is, percent-encoded (a URL path, userinfo or query), form-encoded (a query string or a
    /// form body), both with upper- or lower-case hex digits, and escaped as in a JSON string
    /// (with `/` escaped or not). Masking a secret means masking all of them: a server that
    /// echoes the URL it was sent shows the encoded form, a JSON log line the escaped one.
    ///
    /// ```
    /// let forms = cannectors_config::Secrets::encoded_forms("p@ss w\"rd");
    /// for form in ["p@ss w\"rd", "p%40ss%20w%22rd", "p%40ss+w%22rd", "p@ss w\\\"rd"] {
    ///     assert!(forms.iter().any(|f| f == form), "{form}");
    /// }
    /// ```
    pub fn encoded_forms(value: &str) -> Vec<String> {
        let percent = utf8_percent_encode(value, URL_COMPONENT).to_string();
        let form: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        // Serialising a string cannot fail; an empty result only drops the JSON forms.
        let quoted = serde_json::to_string(value).unwrap_or_default();
        let json = quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .unwrap_or(value)
            .to_owned();
        let candidates = [
            value.to_owned(),
            lower_hex(&percent),
            percent,
            lower_hex(&form),
            form,
            json.replace('/', "\\/"),
            json,
        ];
        let mut forms: Vec<String> = Vec::with_capacity(candidates.len());
        for candidate in candidates {
            if !candidate.is_empty() && !forms.contains(&candidate) {
                forms.push(candidate);
            }
        }
        forms
    }

    /// Whether no value came from the environment.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The names of the variables whose values are masked, each once.
    pub fn variable_names(&self) -> impl Iterator<Item = &str> {
        let mut names: Vec<&str> = self.values.iter().map(|(_, name)| name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.into_iter()
    }

    fn remember(&mut self, name: &str, value: &str) {
        if value.chars().count() < Self::MIN_LEN {
            return;
        }
        for form in Secrets::encoded_forms(value) {
            if !self.values.iter().any(|(known, _)| *known == form) {
                self.values.push((form, name.to_owned()));
            }
        }
        self.values
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
    }
}

/// Names the variables only: a `{:?}` in a log line must not undo the redaction.
impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("variables", &self.variable_names().collect::<Vec<_>>())
            .finish()
    }
}

/// `text` with the two hex digits after every `%` in lower case.
fn lower_hex(text: &str) -> String {
    let mut lowered = String::with_capacity(text.len());
    let mut hex_left = 0;
    for c in text.chars() {
        if hex_left > 0 {
            lowered.push(c.to_ascii_lowercase());
            hex_left -= 1;
        } else {
            lowered.push(c);
            if c == '%' {
                hex_left = 2;
            }
        }
    }
    lowered
}

/// A reference that could not be replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubstitutionProblem {
    pub(crate) path: KeyPath,
    pub(crate) message: String,
}

/// Replaces references in every string of `tree`; returns the problems found, all of them.
pub(crate) fn substitute(
    tree: &mut Value,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Secrets,
) -> Vec<SubstitutionProblem> {
    let mut problems = Vec::new();
    walk(tree, &KeyPath::root(), env, secrets, &mut problems);
    problems
}

fn walk(
    value: &mut Value,
    path: &KeyPath,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Secrets,
    problems: &mut Vec<SubstitutionProblem>,
) {
    match value {
        Value::String(text) => {
            if text.contains('$') {
                match substitute_str(text, env, secrets) {
                    Ok(replaced) => *text = replaced,
                    Err(messages) => {
                        problems.extend(messages.into_iter().map(|message| SubstitutionProblem {
                            path: path.clone(),
                            message,
                        }))
                    }
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &path.index(i), env, secrets, problems);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                walk(item, &path.key(key), env, secrets, problems);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Replaces the references in one string. `${VAR:-default}` takes the default when `VAR` is
/// unset or empty, as a shell does.
fn substitute_str(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Secrets,
) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                problems.push(format!(
                    "`{}` has no closing `}}`; write `$${{` for a literal `${{`",
                    shorten(tail)
                ));
                rest = "";
                break;
            };
            let inner = &after[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            if !is_variable_name(name) {
                problems.push(format!(
                    "`${{{inner}}}` is not a variable reference: a name is letters, digits and `_` \
                     and does not start with a digit (write `$${{` for a literal `${{`)"
                ));
            } else {
                match (env(name), default) {
                    (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
                    (Some(value), _) => {
                        secrets.remember(name, &value);
                        out.push_str(&value);
                    }
                    (None, Some(default)) => out.push_str(default),
                    (None, None) => problems.push(format!(
                        "the environment variable `{name}` is not set; set it, or give a \
                         default with `${{{name}:-default}}`"
                    )),
                }
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn shorten(text: &str) -> String {
    let short: String = text.chars().take(30).collect();
    if short.len() < text.len() {
        format!("{short}...")
    } else {
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PASSWORD" => Some("p#ss: word".to_owned()),
            "EMPTY" => Some(String::new()),
            "HOST" => Some("db.internal".to_owned()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<String, Vec<String>> {
        substitute_str(text, &env, &mut Secrets::default())
    }

    #[test]
    fn replaces_variables_and_defaults() {
        assert_eq!(run("a ${PASSWORD} b").unwrap(), "a p#ss: word b");
        assert_eq!(run("${MISSING:-fallback}").unwrap(), "fallback");
        assert_eq!(run("${EMPTY:-fallback}").unwrap(), "fallback");
        assert_eq!(run("x${EMPTY}y").unwrap(), "xy");
        assert_eq!(run("${MISSING:-}").unwrap(), "");
    }

    #[test]
    fn keeps_dollar_signs_that_are_not_references() {
        assert_eq!(
            run("WHERE id > $1 AND x = $$a$$").unwrap(),
            "WHERE id > $1 AND x = $$a$$"
        );
        assert_eq!(run("price in $").unwrap(), "price in $");
        assert_eq!(run("$${HOST} is literal").unwrap(), "${HOST} is literal");
    }

    #[test]
    fn reports_every_missing_variable_by_name() {
        let problems = run("${A}/${B:-ok}/${C}").unwrap_err();
        assert_eq!(problems.len(), 2);
        assert!(problems[0].contains("`A` is not set"), "{problems:?}");
        assert!(problems[1].contains("`C` is not set"), "{problems:?}");
    }

    #[test]
    fn rejects_unclosed_and_malformed_references() {
        assert!(
            run("${HOST").unwrap_err()[0]
                .contains("has no closing `}`; write `$${` for a literal `${`")
        );
        assert!(run("${1X}").unwrap_err()[0].contains("is not a variable reference"));
    }

    #[test]
    fn debug_output_names_variables_but_not_values() {
        let mut secrets = Secrets::default();
        secrets.remember("TOKEN", "very-secret-token");
        assert_eq!(format!("{secrets:?}"), "Secrets { variables: [\"TOKEN\"] }");
    }

    #[test]
    fn masks_a_value_in_the_encodings_a_url_a_form_or_a_json_log_line_gives_it() {
        let mut secrets = Secrets::default();
        secrets.remember("PASSWORD", "p@ss/w\"rd é");
        for shown in [
            "p@ss/w\"rd é",
            "p%40ss%2Fw%22rd%20%C3%A9",
            "p%40ss%2fw%22rd%20%c3%a9",
            "p%40ss%2Fw%22rd+%C3%A9",
            "p@ss/w\\\"rd é",
            "p@ss\\/w\\\"rd é",
        ] {
            assert_eq!(
                secrets.redact(&format!("sent {shown} back")),
                "sent ${PASSWORD} back",
                "{shown}"
            );
        }
    }

    #[test]
    fn redacts_longest_value_first_and_skips_short_ones() {
        let mut secrets = Secrets::default();
        secrets.remember("URL", "postgres://u:pw@db.internal/app");
        secrets.remember("HOST", "db.internal");
        secrets.remember("REGION", "eu");
        assert_eq!(
            secrets.redact("connect postgres://u:pw@db.internal/app failed; db.internal eu"),
            "connect ${URL} failed; ${HOST} eu"
        );
    }
}
