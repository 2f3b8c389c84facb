//! Value expressions of `parameters` lists: where a bound value comes from.
//!
//! The grammar is small on purpose: `state.timestamp`, `state.id`, `state.offset` (also the
//! older `state.lastTimestamp` and `state.lastId`), `record.<dot path>`, a JSON literal, and
//! `a ?? b`, the first operand that is not null.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

/// A committed cursor named in an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateCursor {
    /// `state.timestamp` (or `state.lastTimestamp`).
    Timestamp,
    /// `state.id` (or `state.lastId`).
    Id,
    /// `state.offset`.
    Offset,
}

impl fmt::Display for StateCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateCursor::Timestamp => "state.timestamp",
            StateCursor::Id => "state.id",
            StateCursor::Offset => "state.offset",
        })
    }
}

/// A parsed value expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A committed cursor; null before the first commit.
    State(StateCursor),
    /// A dot path into the current record, e.g. `record.customer.email`.
    Record(String),
    /// A JSON literal, e.g. `10`, `"active"`, `null`.
    Literal(serde_json::Value),
    /// The first operand that is not null.
    Coalesce(Vec<Expr>),
}

/// Why an expression did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot read `{text}` as a value: {reason}; write state.timestamp, state.id, state.offset, \
     record.<path>, a JSON literal such as 10 or '\"text\"', or `a ?? b`"
)]
pub struct ExprError {
    /// The expression as written.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Expr {
    /// Parses an expression written as a string.
    ///
    /// ```
    /// use cannectors_config::{Expr, StateCursor};
    /// let expr = Expr::parse("state.id ?? 0").unwrap();
    /// assert_eq!(
    ///     expr,
    ///     Expr::Coalesce(vec![Expr::State(StateCursor::Id), Expr::Literal(0.into())])
    /// );
    /// ```
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let fail = |reason: &str| ExprError {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let operands = split_coalesce(text).map_err(|reason| fail(&reason))?;
        let mut parsed = Vec::with_capacity(operands.len());
        for operand in &operands {
            parsed.push(parse_operand(operand.trim()).map_err(|reason| fail(&reason))?);
        }
        if parsed.len() == 1 {
            Ok(parsed.remove(0))
        } else {
            Ok(Expr::Coalesce(parsed))
        }
    }

    /// Whether the expression reads committed state anywhere.
    pub fn uses_state(&self) -> bool {
        match self {
            Expr::State(_) => true,
            Expr::Coalesce(items) => items.iter().any(Expr::uses_state),
            Expr::Record(_) | Expr::Literal(_) => false,
        }
    }

    /// Whether the expression reads the current record anywhere.
    pub fn uses_record(&self) -> bool {
        match self {
            Expr::Record(_) => true,
            Expr::Coalesce(items) => items.iter().any(Expr::uses_record),
            Expr::State(_) | Expr::Literal(_) => false,
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::State(cursor) => write!(f, "{cursor}"),
            Expr::Record(path) => write!(f, "record.{path}"),
            Expr::Literal(value) => write!(f, "{value}"),
            Expr::Coalesce(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ?? ")?;
                    }
                    write!(f, "{item}")?;
                }
                Ok(())
            }
        }
    }
}

/// Splits on `??` outside JSON string literals.
fn split_coalesce(text: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            current.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if c == '"' {
            in_string = true;
            current.push(c);
        } else if c == '?' && chars.peek() == Some(&'?') {
            chars.next();
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    if in_string {
        return Err("a string literal is not closed".to_owned());
    }
    parts.push(current);
    if parts.iter().any(|p| p.trim().is_empty()) {
        return Err("an operand of `??` is empty".to_owned());
    }
    Ok(parts)
}

fn parse_operand(text: &str) -> Result<Expr, String> {
    if let Some(name) = text.strip_prefix("state.") {
        return match name {
            "timestamp" | "lastTimestamp" => Ok(Expr::State(StateCursor::Timestamp)),
            "id" | "lastId" => Ok(Expr::State(StateCursor::Id)),
            "offset" => Ok(Expr::State(StateCursor::Offset)),
            other => Err(format!(
                "`state.{other}` is not a cursor (the cursors are timestamp, id and offset)"
            )),
        };
    }
    if let Some(path) = text.strip_prefix("record.") {
        if path.is_empty() || path.split('.').any(str::is_empty) {
            return Err("a record path needs names between its dots".to_owned());
        }
        return Ok(Expr::Record(path.to_owned()));
    }
    serde_json::from_str::<serde_json::Value>(text)
        .map(Expr::Literal)
        .map_err(|_| "it is neither a state cursor, a record path nor a JSON literal".to_owned())
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(text) => Expr::parse(&text).map_err(serde::de::Error::custom),
            literal @ (serde_json::Value::Number(_)
            | serde_json::Value::Bool(_)
            | serde_json::Value::Null) => Ok(Expr::Literal(literal)),
            _ => Err(serde::de::Error::custom(
                "a parameter is a string expression or a scalar literal, not a list or a mapping",
            )),
        }
    }
}

impl JsonSchema for Expr {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Expr".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "state.timestamp | state.id | state.offset | record.<path> | a JSON literal | a ?? b",
            "type": ["string", "number", "boolean", "null"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_state_record_literal_and_coalesce() {
        assert_eq!(
            Expr::parse("state.lastId").unwrap(),
            Expr::State(StateCursor::Id)
        );
        assert_eq!(
            Expr::parse("record.a.b").unwrap(),
            Expr::Record("a.b".into())
        );
        assert_eq!(
            Expr::parse("\"active\"").unwrap(),
            Expr::Literal("active".into())
        );
        assert_eq!(
            Expr::parse("record.x ?? \"a??b\"").unwrap(),
            Expr::Coalesce(vec![Expr::Record("x".into()), Expr::Literal("a??b".into())])
        );
    }

    #[test]
    fn rejects_unknown_cursor_and_bare_words() {
        let err = Expr::parse("state.cursor").unwrap_err();
        assert!(
            err.to_string().contains("`state.cursor` is not a cursor"),
            "{err}"
        );
        assert!(Expr::parse("active").is_err());
        assert!(Expr::parse("state.id ??").is_err());
    }
}
