//! `{{state.timestamp}}` and `{{record.customer.id}}` placeholders in endpoints, headers, query
//! values and bodies.
//!
//! The loader only checks them (known names, closed braces, used where they can be filled); the
//! connectors render them. Parsing lives here so that both read the same syntax.

use std::fmt;

use crate::expr::StateCursor;
use crate::path::FieldPath;

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    /// Text sent as written.
    Text(String),
    /// `{{state.timestamp}}`, `{{state.id}}` or `{{state.offset}}`: a committed cursor.
    State(StateCursor),
    /// `{{record.path}}`: a value of the record being sent.
    Record(FieldPath),
}

/// A string with `{{...}}` placeholders, split into its parts.
///
/// ```
/// use cannectors_config::{StateCursor, Template, TemplatePart};
/// let template = Template::parse("/items?since={{ state.timestamp }}").unwrap();
/// assert_eq!(
///     template.parts(),
///     &[
///         TemplatePart::Text("/items?since=".into()),
///         TemplatePart::State(StateCursor::Timestamp),
///     ]
/// );
/// assert!(template.uses_state(StateCursor::Timestamp));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<TemplatePart>,
}

/// Why a template did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct TemplateError {
    /// What is wrong, and how to write it.
    pub reason: String,
}

impl Template {
    /// Splits `text` on `{{...}}`. Inside the braces: `state.timestamp`, `state.id`,
    /// `state.offset` (or the older `state.lastTimestamp`, `state.lastId`) or `record.<path>`,
    /// with optional spaces around.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(TemplatePart::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| TemplateError {
                reason: "a `{{` is not closed by `}}`".to_owned(),
            })?;
            parts.push(placeholder(after[..close].trim())?);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// The parts in order.
    pub fn parts(&self) -> &[TemplatePart] {
        &self.parts
    }

    /// Whether the template has no placeholder.
    pub fn is_plain(&self) -> bool {
        self.parts
            .iter()
            .all(|part| matches!(part, TemplatePart::Text(_)))
    }

    /// Whether `cursor` appears in the template.
    pub fn uses_state(&self, cursor: StateCursor) -> bool {
        self.parts.contains(&TemplatePart::State(cursor))
    }

    /// Whether any `{{state.*}}` appears.
    pub fn uses_any_state(&self) -> bool {
        self.parts
            .iter()
            .any(|part| matches!(part, TemplatePart::State(_)))
    }

    /// Whether any `{{record.*}}` appears.
    pub fn uses_record(&self) -> bool {
        self.parts
            .iter()
            .any(|part| matches!(part, TemplatePart::Record(_)))
    }

    /// The template with every placeholder replaced by `fill`, e.g. to check that an endpoint
    /// is a URL once rendered.
    pub fn render_with(&self, fill: &str) -> String {
        self.parts
            .iter()
            .map(|part| match part {
                TemplatePart::Text(text) => text.as_str(),
                TemplatePart::State(_) | TemplatePart::Record(_) => fill,
            })
            .collect()
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                TemplatePart::Text(text) => f.write_str(text)?,
                TemplatePart::State(cursor) => write!(f, "{{{{{cursor}}}}}")?,
                TemplatePart::Record(path) => write!(f, "{{{{record.{path}}}}}")?,
            }
        }
        Ok(())
    }
}

fn placeholder(inner: &str) -> Result<TemplatePart, TemplateError> {
    let fail = |reason: String| TemplateError { reason };
    if let Some(name) = inner.strip_prefix("state.") {
        let cursor = match name {
            "timestamp" | "lastTimestamp" => StateCursor::Timestamp,
            "id" | "lastId" => StateCursor::Id,
            "offset" => StateCursor::Offset,
            _ => {
                return Err(fail(format!(
                    "`{{{{{inner}}}}}` names no cursor; use {{{{state.timestamp}}}}, \
                     {{{{state.id}}}} or {{{{state.offset}}}}"
                )));
            }
        };
        return Ok(TemplatePart::State(cursor));
    }
    if let Some(path) = inner.strip_prefix("record.") {
        return FieldPath::parse(path)
            .map(TemplatePart::Record)
            .map_err(|error| fail(format!("`{{{{{inner}}}}}`: {error}")));
    }
    Err(fail(format!(
        "`{{{{{inner}}}}}` is not a placeholder; use {{{{state.timestamp}}}}, {{{{state.id}}}}, \
         {{{{state.offset}}}} or {{{{record.<path>}}}}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_text_state_and_record_parts() {
        let template =
            Template::parse("https://x/{{record.customer.id}}/e?id={{state.lastId}}").unwrap();
        assert_eq!(template.parts().len(), 4);
        assert!(template.uses_record());
        assert!(template.uses_state(StateCursor::Id));
        assert_eq!(template.render_with("0"), "https://x/0/e?id=0");
        assert_eq!(
            template.to_string(),
            "https://x/{{record.customer.id}}/e?id={{state.id}}"
        );
    }

    #[test]
    fn rejects_unclosed_and_unknown_placeholders() {
        assert!(
            Template::parse("a {{state.id")
                .unwrap_err()
                .reason
                .contains("not closed")
        );
        let err = Template::parse("{{state.cursor}}").unwrap_err();
        assert!(
            err.reason.contains("`{{state.cursor}}` names no cursor"),
            "{err}"
        );
        let err = Template::parse("{{ now }}").unwrap_err();
        assert!(
            err.reason.contains("`{{now}}` is not a placeholder"),
            "{err}"
        );
    }
}
