//! The `mapping` filter: its settings, the block as written, its transforms and their rules.

use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, Timelike};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::{OnError, enabled_by_default};
use crate::document::KeyPath;
use crate::path::FieldPath;
use crate::validate::Findings;

/// The `mapping` filter: each mapping, in order, reads `source`, transforms the value and
/// writes it at `target`, in the record itself (fields not mapped stay as they are).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MappingFilter {
    /// The mappings, applied in order; at least one.
    pub mappings: Vec<FieldMapping>,
    /// What a failure (a missing field with `onMissing: fail`, a transform error) does.
    pub on_error: OnError,
}

/// One entry of `mappings`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FieldMapping {
    /// Where the value is read; `None` deletes `target`.
    pub source: Option<FieldPath>,
    /// Where the value is written.
    pub target: FieldPath,
    /// Applied in order to the value read (or to the default value).
    pub transforms: Vec<Transform>,
    /// What a source that is absent or null does.
    pub on_missing: OnMissing,
}

/// What a mapping whose source is absent or null does (`onMissing`).
#[derive(Debug, Clone, PartialEq)]
pub enum OnMissing {
    /// The target is set to null (the default); transforms are not applied to it.
    SetNull,
    /// The target is left as it is.
    SkipField,
    /// The target is set to this value (`defaultValue`), transformed.
    UseDefault(Value),
    /// The record fails the filter (see `onError`).
    Fail,
}

/// One transform of a mapping (`op`). Text transforms pass values that are not strings
/// through unchanged.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// Removes leading and trailing white space.
    Trim,
    /// Lower case.
    Lowercase,
    /// Upper case.
    Uppercase,
    /// Every match of `pattern` replaced with `replacement` (which may use `$1`, `${name}`).
    Replace {
        /// The regular expression.
        pattern: Pattern,
        /// The text each match is replaced with.
        replacement: String,
    },
    /// A string cut at each separator into a list of trimmed parts.
    Split {
        /// The separator (default `,`).
        separator: String,
    },
    /// A list joined into a string, each item as text.
    Join {
        /// The separator (default `,`).
        separator: String,
    },
    /// A date or time string rewritten in `format`.
    DateFormat(DateFormat),
    /// Any value as text: numbers and booleans as written in JSON, lists and objects as JSON.
    ToString,
    /// A whole number: from a number without a fraction, a string holding one, or a boolean.
    ToInt,
    /// A number: from a number, a string holding one, or a boolean.
    ToFloat,
    /// A boolean: from a boolean, a string (`true`, `false`, `1`, `0`, `t`, `f`, any case) or a
    /// number (non-zero is true).
    ToBool,
    /// A list: a list stays, anything else is wrapped in one.
    ToArray,
    /// An object: an object stays, anything else is an error.
    ToObject,
}

/// A regular expression of a `replace` transform, compiled when the pipeline is loaded.
#[derive(Clone)]
pub struct Pattern(regex::Regex);

impl Pattern {
    /// The compiled expression.
    pub fn regex(&self) -> &regex::Regex {
        &self.0
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.0.as_str()).finish()
    }
}

/// The output format of a `dateFormat` transform: `YYYY`, `YY`, `MM`, `DD`, `HH`, `mm`, `ss`
/// and `SSS` (milliseconds) stand for the parts of the date; everything else is copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateFormat {
    text: String,
    parts: Vec<DatePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DatePart {
    Text(String),
    Year,
    ShortYear,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
}

/// The tokens of a date format, longest first where one begins another.
const DATE_TOKENS: &[(&str, DatePart)] = &[
    ("YYYY", DatePart::Year),
    ("YY", DatePart::ShortYear),
    ("MM", DatePart::Month),
    ("DD", DatePart::Day),
    ("HH", DatePart::Hour),
    ("mm", DatePart::Minute),
    ("ss", DatePart::Second),
    ("SSS", DatePart::Millisecond),
];

impl DateFormat {
    /// The Go tool's default: `YYYY-MM-DDTHH:mm:ss`.
    pub const DEFAULT: &'static str = "YYYY-MM-DDTHH:mm:ss";

    /// Reads a format; any text is one (unknown letters are copied as they are).
    pub fn parse(text: &str) -> DateFormat {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut literal = String::new();
        'outer: while !rest.is_empty() {
            for (token, part) in DATE_TOKENS {
                if let Some(after) = rest.strip_prefix(token) {
                    if !literal.is_empty() {
                        parts.push(DatePart::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(part.clone());
                    rest = after;
                    continue 'outer;
                }
            }
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                literal.push(c);
            }
            rest = chars.as_str();
        }
        if !literal.is_empty() {
            parts.push(DatePart::Text(literal));
        }
        DateFormat {
            text: text.to_owned(),
            parts,
        }
    }

    /// The format as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `instant` in this format, in its own offset.
    ///
    /// ```
    /// use cannectors_config::DateFormat;
    /// let instant = chrono::DateTime::parse_from_rfc3339("2026-03-04T05:06:07.089+01:00").unwrap();
    /// assert_eq!(DateFormat::parse("DD/MM/YY HH:mm:ss.SSS").render(&instant), "04/03/26 05:06:07.089");
    /// ```
    pub fn render(&self, instant: &DateTime<FixedOffset>) -> String {
        let mut out = String::with_capacity(self.text.len() + 8);
        for part in &self.parts {
            match part {
                DatePart::Text(text) => out.push_str(text),
                DatePart::Year => out.push_str(&format!("{:04}", instant.year())),
                DatePart::ShortYear => {
                    out.push_str(&format!("{:02}", instant.year().rem_euclid(100)))
                }
                DatePart::Month => out.push_str(&format!("{:02}", instant.month())),
                DatePart::Day => out.push_str(&format!("{:02}", instant.day())),
                DatePart::Hour => out.push_str(&format!("{:02}", instant.hour())),
                DatePart::Minute => out.push_str(&format!("{:02}", instant.minute())),
                DatePart::Second => out.push_str(&format!("{:02}", instant.second())),
                DatePart::Millisecond => out.push_str(&format!(
                    "{:03}",
                    (instant.nanosecond() % 1_000_000_000) / 1_000_000
                )),
            }
        }
        out
    }
}

// As written; validation turns it into `MappingFilter`.
/// The `mapping` filter.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "MappingFilter")]
pub(crate) struct RawMappingFilter {
    /// The mappings, applied in order.
    pub(crate) mappings: Vec<RawFieldMapping>,
    /// `fail` (default), `skip` or `log`.
    #[serde(default)]
    pub(crate) on_error: OnError,
    /// `false` leaves the filter out.
    #[serde(default = "enabled_by_default")]
    pub(crate) enabled: bool,
}

/// One mapping.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "FieldMapping")]
pub(crate) struct RawFieldMapping {
    /// Dot path read; absent: the target is deleted.
    #[serde(default)]
    pub(crate) source: Option<String>,
    /// Dot path written.
    pub(crate) target: String,
    /// Transforms applied in order.
    #[serde(default)]
    pub(crate) transforms: Vec<RawTransform>,
    /// `setNull` (default), `skipField`, `useDefault` or `fail`.
    #[serde(default)]
    pub(crate) on_missing: RawOnMissing,
    /// The value of `onMissing: useDefault`.
    #[serde(default, deserialize_with = "some_value")]
    pub(crate) default_value: Option<Value>,
    /// Read and ignored: files of the Go tool may carry it.
    #[serde(default)]
    pub(crate) confidence: Option<f64>,
}

fn some_value<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Value>, D::Error> {
    super::any_value(deserializer).map(Some)
}

/// What an absent or null source does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "OnMissing")]
pub(crate) enum RawOnMissing {
    /// The target is set to null.
    #[default]
    SetNull,
    /// The target is left as it is.
    SkipField,
    /// The target is set to `defaultValue`.
    UseDefault,
    /// The record fails the filter.
    Fail,
}

/// A transform's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "TransformOp")]
pub(crate) enum RawTransformOp {
    /// Removes surrounding white space.
    Trim,
    /// Lower case.
    Lowercase,
    /// Upper case.
    Uppercase,
    /// Regular expression replacement (`pattern`, `replacement`).
    Replace,
    /// String to list (`separator`).
    Split,
    /// List to string (`separator`).
    Join,
    /// Date rewritten in `format`.
    DateFormat,
    /// Any value as text.
    ToString,
    /// Whole number.
    ToInt,
    /// Number.
    ToFloat,
    /// Boolean.
    ToBool,
    /// List.
    ToArray,
    /// Object.
    ToObject,
}

/// One transform: `op` and the settings that op reads.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Transform")]
pub(crate) struct RawTransform {
    /// The transform.
    pub(crate) op: RawTransformOp,
    /// `replace`: the regular expression.
    #[serde(default)]
    pub(crate) pattern: Option<String>,
    /// `replace`: the replacement (default empty), may use `$1`.
    #[serde(default)]
    pub(crate) replacement: Option<String>,
    /// `split`, `join`: the separator (default `,`).
    #[serde(default)]
    pub(crate) separator: Option<String>,
    /// `dateFormat`: the output format (default `YYYY-MM-DDTHH:mm:ss`).
    #[serde(default)]
    pub(crate) format: Option<String>,
}

impl RawMappingFilter {
    pub(crate) fn validate(self, path: &KeyPath, findings: &mut Findings) -> Option<MappingFilter> {
        if self.mappings.is_empty() {
            findings.problem(
                path.key("mappings"),
                "`mappings` is an empty list; list at least one {source, target}",
            );
            return None;
        }
        let mark = findings.mark();
        let mappings: Vec<Option<FieldMapping>> = self
            .mappings
            .into_iter()
            .enumerate()
            .map(|(i, mapping)| mapping.validate(&path.key("mappings").index(i), findings))
            .collect();
        if !findings.clean_since(mark) {
            return None;
        }
        Some(MappingFilter {
            mappings: mappings.into_iter().collect::<Option<_>>()?,
            on_error: self.on_error,
        })
    }
}

impl RawFieldMapping {
    fn validate(mut self, path: &KeyPath, findings: &mut Findings) -> Option<FieldMapping> {
        let mark = findings.mark();
        // The Go tool reads an empty source as no source: the entry deletes its target.
        self.source = self.source.filter(|source| !source.trim().is_empty());
        let target = findings.field_path(path.key("target"), &self.target);
        let source = match &self.source {
            Some(text) => findings.field_path(path.key("source"), text),
            None => None,
        };
        if self.source.is_none() && !self.transforms.is_empty() {
            findings.problem(
                path.key("transforms"),
                "a mapping without `source` deletes its target, so its transforms never run; \
                 add the `source` to read, or remove the transforms",
            );
        }
        let on_missing = match (self.on_missing, self.default_value) {
            (RawOnMissing::UseDefault, Some(value)) => OnMissing::UseDefault(value),
            (RawOnMissing::UseDefault, None) => {
                findings.problem(
                    path.key("onMissing"),
                    "onMissing `useDefault` needs `defaultValue`: add the value to write when \
                     the source is absent or null",
                );
                OnMissing::SetNull
            }
            (other, default) => {
                if default.is_some() {
                    findings.warning(
                        path.key("defaultValue"),
                        "`defaultValue` is only written with `onMissing: useDefault`; without \
                         it the value is never used",
                    );
                }
                match other {
                    RawOnMissing::SkipField => OnMissing::SkipField,
                    RawOnMissing::Fail => OnMissing::Fail,
                    _ => OnMissing::SetNull,
                }
            }
        };
        let transforms: Vec<Option<Transform>> = self
            .transforms
            .into_iter()
            .enumerate()
            .map(|(i, transform)| transform.validate(&path.key("transforms").index(i), findings))
            .collect();
        if !findings.clean_since(mark) {
            return None;
        }
        Some(FieldMapping {
            source,
            target: target?,
            transforms: transforms.into_iter().collect::<Option<_>>()?,
            on_missing,
        })
    }
}

impl RawTransform {
    fn validate(self, path: &KeyPath, findings: &mut Findings) -> Option<Transform> {
        let op = self.op;
        let name = op_name(op);
        let mut read = |key: &str, value: Option<String>, ops: &[RawTransformOp]| {
            if value.is_some() && !ops.contains(&op) {
                let by: Vec<String> = ops.iter().map(|op| format!("`{}`", op_name(*op))).collect();
                findings.problem(
                    path.key(key),
                    format!(
                        "`{key}` is not read by the `{name}` transform (only by {}); remove it",
                        by.join(" and ")
                    ),
                );
            }
            value
        };
        let pattern = read("pattern", self.pattern, &[RawTransformOp::Replace]);
        let replacement = read("replacement", self.replacement, &[RawTransformOp::Replace]);
        let separator = read(
            "separator",
            self.separator,
            &[RawTransformOp::Split, RawTransformOp::Join],
        );
        let format = read("format", self.format, &[RawTransformOp::DateFormat]);
        // The Go tool reads an empty separator as the default.
        let separator = separator
            .filter(|separator| !separator.is_empty())
            .unwrap_or_else(|| ",".to_owned());
        Some(match op {
            RawTransformOp::Trim => Transform::Trim,
            RawTransformOp::Lowercase => Transform::Lowercase,
            RawTransformOp::Uppercase => Transform::Uppercase,
            RawTransformOp::Replace => {
                let Some(pattern) = pattern else {
                    findings.problem(
                        path.key("pattern"),
                        "missing key `pattern`: the `replace` transform needs the regular \
                         expression to replace, e.g. \"[^0-9+]\"",
                    );
                    return None;
                };
                match regex::Regex::new(&pattern) {
                    Ok(regex) => Transform::Replace {
                        pattern: Pattern(regex),
                        replacement: replacement.unwrap_or_default(),
                    },
                    Err(error) => {
                        let reason = error.to_string();
                        let reason = reason.lines().last().unwrap_or_default().trim();
                        findings.problem(
                            path.key("pattern"),
                            format!("`{pattern}` is not a valid regular expression: {reason}"),
                        );
                        return None;
                    }
                }
            }
            RawTransformOp::Split => Transform::Split { separator },
            RawTransformOp::Join => Transform::Join { separator },
            RawTransformOp::DateFormat => Transform::DateFormat(DateFormat::parse(
                format.as_deref().unwrap_or(DateFormat::DEFAULT),
            )),
            RawTransformOp::ToString => Transform::ToString,
            RawTransformOp::ToInt => Transform::ToInt,
            RawTransformOp::ToFloat => Transform::ToFloat,
            RawTransformOp::ToBool => Transform::ToBool,
            RawTransformOp::ToArray => Transform::ToArray,
            RawTransformOp::ToObject => Transform::ToObject,
        })
    }
}

fn op_name(op: RawTransformOp) -> &'static str {
    match op {
        RawTransformOp::Trim => "trim",
        RawTransformOp::Lowercase => "lowercase",
        RawTransformOp::Uppercase => "uppercase",
        RawTransformOp::Replace => "replace",
        RawTransformOp::Split => "split",
        RawTransformOp::Join => "join",
        RawTransformOp::DateFormat => "dateFormat",
        RawTransformOp::ToString => "toString",
        RawTransformOp::ToInt => "toInt",
        RawTransformOp::ToFloat => "toFloat",
        RawTransformOp::ToBool => "toBool",
        RawTransformOp::ToArray => "toArray",
        RawTransformOp::ToObject => "toObject",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{FilterConfig, OnMissing, Transform};

    fn load(mappings: &str) -> Result<crate::LoadedPipeline, String> {
        let text = format!(
            "name: f\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:1/'}}\n\
             filters:\n  - type: mapping\n    mappings:\n{mappings}\noutput: {{type: stdout}}\n"
        );
        crate::parse_str(&text, "f.yaml", &|_| None).map_err(|error| error.to_string())
    }

    fn mapping(mappings: &str) -> crate::FieldMapping {
        let loaded = load(mappings).unwrap();
        let FilterConfig::Mapping(mapping) = &loaded.pipeline.filters[0] else {
            panic!()
        };
        mapping.mappings[0].clone()
    }

    #[test]
    fn every_transform_and_its_settings_load() {
        let loaded = load(
            "      - source: a\n\
             \x20       target: b\n\
             \x20       transforms:\n\
             \x20         - {op: replace, pattern: '(\\d+)-x', replacement: '$1'}\n\
             \x20         - {op: split}\n\
             \x20         - {op: join, separator: '|'}\n\
             \x20         - {op: dateFormat, format: YYYY-MM-DD}\n\
             \x20         - {op: dateFormat}\n\
             \x20         - {op: uppercase}\n\
             \x20         - {op: toString}\n\
             \x20         - {op: toInt}\n\
             \x20         - {op: toFloat}\n\
             \x20         - {op: toBool}\n\
             \x20         - {op: toArray}\n\
             \x20         - {op: toObject}",
        )
        .unwrap();
        let FilterConfig::Mapping(mapping) = &loaded.pipeline.filters[0] else {
            panic!()
        };
        let transforms = &mapping.mappings[0].transforms;
        assert_eq!(transforms.len(), 12);
        let Transform::Replace {
            pattern,
            replacement,
        } = &transforms[0]
        else {
            panic!()
        };
        assert_eq!(pattern.regex().as_str(), "(\\d+)-x");
        assert_eq!(replacement, "$1");
        assert_eq!(
            transforms[1],
            Transform::Split {
                separator: ",".into()
            }
        );
        assert_eq!(
            transforms[2],
            Transform::Join {
                separator: "|".into()
            }
        );
        let Transform::DateFormat(format) = &transforms[4] else {
            panic!()
        };
        assert_eq!(format.as_str(), "YYYY-MM-DDTHH:mm:ss");
    }

    #[test]
    fn an_empty_source_is_no_source() {
        assert_eq!(mapping("      - {source: '', target: legacy}").source, None);
    }

    #[test]
    fn on_missing_modes_and_default_values() {
        assert_eq!(
            mapping("      - {source: a, target: b}").on_missing,
            OnMissing::SetNull
        );
        assert_eq!(
            mapping("      - {source: a, target: b, onMissing: skipField}").on_missing,
            OnMissing::SkipField
        );
        assert_eq!(
            mapping("      - {source: a, target: b, onMissing: fail}").on_missing,
            OnMissing::Fail
        );
        assert_eq!(
            mapping("      - {source: a, target: b, onMissing: useDefault, defaultValue: null}")
                .on_missing,
            OnMissing::UseDefault(json!(null))
        );
        let warned = load("      - {source: a, target: b, defaultValue: 3}").unwrap();
        assert_eq!(
            warned.warnings,
            [
                "filters[0].mappings[0].defaultValue (line 6): `defaultValue` is only written with \
              `onMissing: useDefault`; without it the value is never used"
            ]
        );
    }

    #[test]
    fn mistakes_in_mappings_are_reported_with_their_key_paths() {
        let error = load(
            "      - {source: a, target: b, onMissing: useDefault}\n\
             \x20     - {target: c, transforms: [{op: trim}]}\n\
             \x20     - {source: a, target: b, transforms: [{op: replace}]}\n\
             \x20     - {source: a, target: b, transforms: [{op: replace, pattern: '(' }]}\n\
             \x20     - {source: a, target: b, transforms: [{op: trim, separator: ';'}]}\n\
             \x20     - {source: a, target: b, transforms: [{op: lowercas}]}",
        )
        .unwrap_err();
        for expected in [
            "filters[0].mappings[0].onMissing: onMissing `useDefault` needs `defaultValue`",
            "filters[0].mappings[1].transforms: a mapping without `source` deletes its target",
            "filters[0].mappings[2].transforms[0].pattern: missing key `pattern`",
            "filters[0].mappings[3].transforms[0].pattern: `(` is not a valid regular expression: error: unclosed group",
            "filters[0].mappings[4].transforms[0].separator: `separator` is not read by the `trim` transform (only by `split` and `join`); remove it",
            "filters[0].mappings[5].transforms[0].op: unknown value `lowercas`; did you mean `lowercase`?",
        ] {
            assert!(error.contains(expected), "{expected}\nin {error}");
        }
        assert!(
            load("      []")
                .unwrap_err()
                .contains("filters[0].mappings: `mappings` is an empty list"),
            "an empty mapping list is refused"
        );
    }

    #[test]
    fn date_formats_copy_what_is_not_a_token() {
        let instant = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").unwrap();
        assert_eq!(
            super::DateFormat::parse("YYYY-MM-DDTHH:mm:ss").render(&instant),
            "2026-01-02T03:04:05"
        );
        assert_eq!(
            super::DateFormat::parse("day DD of YYYY").render(&instant),
            "day 02 of 2026"
        );
    }
}
