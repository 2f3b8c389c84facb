//! `{{state.timestamp}}` and `{{record.customer.id}}` placeholders in endpoints, headers, query
//! values and bodies.
//!
//! A template is parsed once, when the pipeline is loaded. What its placeholders may refer to
//! depends on where it is written, and the loaded pipeline says so in the type: an httpPolling
//! input holds `Template<StateCursor>` (only committed cursors), an httpRequest output endpoint
//! `Template<FieldPath>` (only fields of the record being sent). The connectors render them and
//! never meet a placeholder that does not belong where it is.

use std::fmt;

use crate::expr::{Reference, StateCursor};
use crate::path::FieldPath;

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart<R = Reference> {
    /// Text sent as written.
    Text(String),
    /// A placeholder, filled when the request is built.
    Ref(R),
}

/// A string with `{{...}}` placeholders, split into its parts. `R` is what a placeholder refers
/// to: a [`Reference`] of either kind as parsed, a [`StateCursor`] in an httpPolling input, a
/// record [`FieldPath`] in an httpRequest output.
///
/// ```
/// use cannectors_config::{Reference, StateCursor, Template, TemplatePart};
/// let template = Template::parse("/items?since={{ state.timestamp }}").unwrap();
/// assert_eq!(
///     template.parts(),
///     &[
///         TemplatePart::Text("/items?since=".into()),
///         TemplatePart::Ref(Reference::State(StateCursor::Timestamp)),
///     ]
/// );
/// assert!(template.uses_state(StateCursor::Timestamp));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template<R = Reference> {
    parts: Vec<TemplatePart<R>>,
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
            parts.push(TemplatePart::Ref(placeholder(after[..close].trim())?));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// Whether `cursor` appears in the template.
    pub fn uses_state(&self, cursor: StateCursor) -> bool {
        self.references().any(|r| *r == Reference::State(cursor))
    }

    /// Whether any `{{state.*}}` appears.
    pub fn uses_any_state(&self) -> bool {
        self.references().any(|r| matches!(r, Reference::State(_)))
    }

    /// Whether any `{{record.*}}` appears.
    pub fn uses_record(&self) -> bool {
        self.references().any(|r| matches!(r, Reference::Record(_)))
    }

    /// The same template if every placeholder is a committed cursor.
    pub fn into_state(self) -> Option<Template<StateCursor>> {
        self.narrow(|r| match r {
            Reference::State(cursor) => Some(cursor),
            Reference::Record(_) => None,
        })
    }

    /// The same template if every placeholder is a record field.
    pub fn into_record(self) -> Option<Template<FieldPath>> {
        self.narrow(|r| match r {
            Reference::Record(path) => Some(path),
            Reference::State(_) => None,
        })
    }
}

impl<R> Template<R> {
    /// The parts in order.
    pub fn parts(&self) -> &[TemplatePart<R>] {
        &self.parts
    }

    /// Whether the template has no placeholder.
    pub fn is_plain(&self) -> bool {
        self.references().next().is_none()
    }

    /// The placeholders, in order.
    pub fn references(&self) -> impl Iterator<Item = &R> {
        self.parts.iter().filter_map(|part| match part {
            TemplatePart::Text(_) => None,
            TemplatePart::Ref(reference) => Some(reference),
        })
    }

    /// The template with every placeholder replaced by `fill`, e.g. to check that an endpoint
    /// is a URL once rendered.
    pub fn render_with(&self, fill: &str) -> String {
        self.parts
            .iter()
            .map(|part| match part {
                TemplatePart::Text(text) => text.as_str(),
                TemplatePart::Ref(_) => fill,
            })
            .collect()
    }

    fn narrow<S>(self, keep: impl Fn(R) -> Option<S>) -> Option<Template<S>> {
        let parts = self
            .parts
            .into_iter()
            .map(|part| match part {
                TemplatePart::Text(text) => Some(TemplatePart::Text(text)),
                TemplatePart::Ref(reference) => keep(reference).map(TemplatePart::Ref),
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Template { parts })
    }

    fn write(
        &self,
        f: &mut fmt::Formatter<'_>,
        reference: impl Fn(&R, &mut fmt::Formatter<'_>) -> fmt::Result,
    ) -> fmt::Result {
        for part in &self.parts {
            match part {
                TemplatePart::Text(text) => f.write_str(text)?,
                TemplatePart::Ref(r) => {
                    f.write_str("{{")?;
                    reference(r, f)?;
                    f.write_str("}}")?;
                }
            }
        }
        Ok(())
    }
}

impl Template<StateCursor> {
    /// Whether `cursor` appears in the template.
    pub fn uses(&self, cursor: StateCursor) -> bool {
        self.references().any(|r| *r == cursor)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, |r, f| write!(f, "{r}"))
    }
}

impl fmt::Display for Template<StateCursor> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, |cursor, f| write!(f, "{cursor}"))
    }
}

impl fmt::Display for Template<FieldPath> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, |path, f| write!(f, "record.{path}"))
    }
}

fn placeholder(inner: &str) -> Result<Reference, TemplateError> {
    let fail = |reason: String| TemplateError { reason };
    if inner == "window.end" {
        return Ok(Reference::State(StateCursor::WindowEnd));
    }
    if inner == "window.start" {
        return Ok(Reference::State(StateCursor::WindowStart));
    }
    if let Some(name) = inner.strip_prefix("state.") {
        return StateCursor::from_name(name)
            .map(Reference::State)
            .ok_or_else(|| {
                fail(format!(
                    "`{{{{{inner}}}}}` names no cursor; use {{{{state.timestamp}}}}, \
                     {{{{state.id}}}} or {{{{state.offset}}}}"
                ))
            });
    }
    if let Some(path) = inner.strip_prefix("record.") {
        return FieldPath::parse(path)
            .map(Reference::Record)
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
    fn narrows_to_the_placeholders_a_place_allows() {
        let state = Template::parse("a={{state.id}}").unwrap();
        let record = Template::parse("/u/{{record.user.id}}").unwrap();
        assert_eq!(
            state.clone().into_state().unwrap().to_string(),
            "a={{state.id}}"
        );
        assert_eq!(
            record.clone().into_record().unwrap().to_string(),
            "/u/{{record.user.id}}"
        );
        assert!(state.into_record().is_none());
        assert!(record.into_state().is_none());
        let plain = Template::parse("no placeholder").unwrap();
        assert!(plain.clone().into_state().unwrap().is_plain());
        assert!(plain.into_record().unwrap().is_plain());
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
