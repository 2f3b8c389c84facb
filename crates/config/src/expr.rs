//! Value expressions of `parameters` lists: where a bound value comes from.
//!
//! The grammar is small on purpose: `state.timestamp`, `state.id`, `state.offset` (also the
//! older `state.lastTimestamp` and `state.lastId`), `record.<dot path>`, a JSON literal, and
//! `a ?? b`, the first operand that is not null.
//!
//! What an expression may read depends on where it is written, and a loaded pipeline says so in
//! the type: a database input binds `Expr<StateCursor>` (there is no record before its query
//! runs), a database output `Expr<FieldPath>` (an output does not see the input's cursors).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use crate::path::FieldPath;

/// A committed cursor named in an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateCursor {
    /// `state.timestamp` (or `state.lastTimestamp`).
    Timestamp,
    /// `state.id` (or `state.lastId`).
    Id,
    /// `state.offset`.
    Offset,
    /// `window.end`: not a cursor but the upper bound of the run, now - `delay` (or the start
    /// of the run without a delay), fixed when the run starts; with `window`, the end of the
    /// window in flight; in a backfill, `--to`.
    WindowEnd,
    /// `window.start`: the lower bound of the run where it has one: the start of the window in
    /// flight (`window`), or `--from` in a backfill; the Unix epoch otherwise.
    WindowStart,
}

impl StateCursor {
    /// The cursor `state.<name>` names: `timestamp`, `id`, `offset`, or the older
    /// `lastTimestamp`, `lastId`.
    pub(crate) fn from_name(name: &str) -> Option<StateCursor> {
        match name {
            "timestamp" | "lastTimestamp" => Some(StateCursor::Timestamp),
            "id" | "lastId" => Some(StateCursor::Id),
            "offset" => Some(StateCursor::Offset),
            _ => None,
        }
    }
}

impl fmt::Display for StateCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateCursor::Timestamp => "state.timestamp",
            StateCursor::Id => "state.id",
            StateCursor::Offset => "state.offset",
            StateCursor::WindowEnd => "window.end",
            StateCursor::WindowStart => "window.start",
        })
    }
}

/// What a placeholder or an expression reads: a committed cursor or a field of the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `state.timestamp`, `state.id` or `state.offset`: a committed cursor.
    State(StateCursor),
    /// `record.<path>`: a value of the record being sent.
    Record(FieldPath),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::State(cursor) => write!(f, "{cursor}"),
            Reference::Record(path) => write!(f, "record.{path}"),
        }
    }
}

/// A parsed value expression. `R` is what it may read: a [`Reference`] of either kind as
/// parsed, a [`StateCursor`] in a database input, a record [`FieldPath`] in a database output.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr<R = Reference> {
    /// A committed cursor or a record field; null before the first commit, or when the record
    /// lacks the field.
    Ref(R),
    /// A JSON literal, e.g. `10`, `"active"`, `null`.
    Literal(serde_json::Value),
    /// The first operand that is not null.
    Coalesce(Vec<Expr<R>>),
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
    /// use cannectors_config::{Expr, Reference, StateCursor};
    /// let expr = Expr::parse("state.id ?? 0").unwrap();
    /// assert_eq!(
    ///     expr,
    ///     Expr::Coalesce(vec![
    ///         Expr::Ref(Reference::State(StateCursor::Id)),
    ///         Expr::Literal(0.into()),
    ///     ])
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
        self.references()
            .iter()
            .any(|r| matches!(r, Reference::State(_)))
    }

    /// Whether the expression reads the current record anywhere.
    pub fn uses_record(&self) -> bool {
        self.references()
            .iter()
            .any(|r| matches!(r, Reference::Record(_)))
    }

    /// The same expression if it reads only committed cursors.
    pub fn into_state(self) -> Option<Expr<StateCursor>> {
        self.narrow(&|r| match r {
            Reference::State(cursor) => Some(cursor),
            Reference::Record(_) => None,
        })
    }

    /// The same expression if it reads only record fields.
    pub fn into_record(self) -> Option<Expr<FieldPath>> {
        self.narrow(&|r| match r {
            Reference::Record(path) => Some(path),
            Reference::State(_) => None,
        })
    }
}

impl<R> Expr<R> {
    /// What the expression reads, in order.
    pub fn references(&self) -> Vec<&R> {
        let mut found = Vec::new();
        self.collect_references(&mut found);
        found
    }

    /// The value of the expression, with `read` giving the value of each reference (null when
    /// there is none).
    pub fn evaluate(&self, read: &impl Fn(&R) -> serde_json::Value) -> serde_json::Value {
        match self {
            Expr::Ref(reference) => read(reference),
            Expr::Literal(value) => value.clone(),
            Expr::Coalesce(items) => items
                .iter()
                .map(|item| item.evaluate(read))
                .find(|value| !value.is_null())
                .unwrap_or(serde_json::Value::Null),
        }
    }

    fn collect_references<'e>(&'e self, found: &mut Vec<&'e R>) {
        match self {
            Expr::Ref(reference) => found.push(reference),
            Expr::Literal(_) => {}
            Expr::Coalesce(items) => {
                for item in items {
                    item.collect_references(found);
                }
            }
        }
    }

    fn narrow<S>(self, keep: &impl Fn(R) -> Option<S>) -> Option<Expr<S>> {
        match self {
            Expr::Ref(reference) => keep(reference).map(Expr::Ref),
            Expr::Literal(value) => Some(Expr::Literal(value)),
            Expr::Coalesce(items) => items
                .into_iter()
                .map(|item| item.narrow(keep))
                .collect::<Option<Vec<_>>>()
                .map(Expr::Coalesce),
        }
    }

    fn write(
        &self,
        f: &mut fmt::Formatter<'_>,
        reference: &impl Fn(&R, &mut fmt::Formatter<'_>) -> fmt::Result,
    ) -> fmt::Result {
        match self {
            Expr::Ref(r) => reference(r, f),
            Expr::Literal(value) => write!(f, "{value}"),
            Expr::Coalesce(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ?? ")?;
                    }
                    item.write(f, reference)?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, &|r, f| write!(f, "{r}"))
    }
}

impl fmt::Display for Expr<StateCursor> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, &|cursor, f| write!(f, "{cursor}"))
    }
}

impl fmt::Display for Expr<FieldPath> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, &|path, f| write!(f, "record.{path}"))
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
    if text == "window.end" {
        return Ok(Expr::Ref(Reference::State(StateCursor::WindowEnd)));
    }
    if text == "window.start" {
        return Ok(Expr::Ref(Reference::State(StateCursor::WindowStart)));
    }
    if let Some(name) = text.strip_prefix("state.") {
        return StateCursor::from_name(name)
            .map(|cursor| Expr::Ref(Reference::State(cursor)))
            .ok_or_else(|| {
                format!("`state.{name}` is not a cursor (the cursors are timestamp, id and offset)")
            });
    }
    if let Some(path) = text.strip_prefix("record.") {
        return FieldPath::parse(path)
            .map(|path| Expr::Ref(Reference::Record(path)))
            .map_err(|_| "a record path needs names between its dots".to_owned());
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
        let record = |path: &str| Expr::Ref(Reference::Record(FieldPath::parse(path).unwrap()));
        assert_eq!(
            Expr::parse("state.lastId").unwrap(),
            Expr::Ref(Reference::State(StateCursor::Id))
        );
        assert_eq!(Expr::parse("record.a.b").unwrap(), record("a.b"));
        assert_eq!(
            Expr::parse("\"active\"").unwrap(),
            Expr::Literal("active".into())
        );
        assert_eq!(
            Expr::parse("record.x ?? \"a??b\"").unwrap(),
            Expr::Coalesce(vec![record("x"), Expr::Literal("a??b".into())])
        );
    }

    #[test]
    fn narrows_to_what_a_place_may_read() {
        let input = Expr::parse("state.id ?? 0").unwrap();
        let output = Expr::parse("record.email ?? \"none\"").unwrap();
        assert_eq!(
            input.clone().into_state().unwrap().to_string(),
            "state.id ?? 0"
        );
        assert_eq!(
            output.clone().into_record().unwrap().to_string(),
            "record.email ?? \"none\""
        );
        assert!(input.into_record().is_none());
        assert!(output.into_state().is_none());
    }

    #[test]
    fn evaluates_the_first_operand_that_is_not_null() {
        let expr = Expr::parse("state.id ?? state.offset ?? 7")
            .unwrap()
            .into_state()
            .unwrap();
        let read = |cursor: &StateCursor| match cursor {
            StateCursor::Offset => serde_json::json!(3),
            _ => serde_json::Value::Null,
        };
        assert_eq!(expr.evaluate(&read), serde_json::json!(3));
        assert_eq!(
            expr.evaluate(&|_: &StateCursor| serde_json::Value::Null),
            serde_json::json!(7)
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
