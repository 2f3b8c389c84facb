//! The `filters` of a pipeline: their settings, the blocks as written, and their rules
//! (docs/filters.md).
//!
//! Names and meanings follow the Go tool this project descends from, so that its pipeline
//! files load unchanged: `set`, `remove` (with `target` or `targets`), `mapping`, `condition`
//! (whose `then` and `else` are lists of any filter) and `drop`, each with `onError` and
//! `enabled`. A filter with `enabled: false` is left out when the pipeline is loaded.

pub(crate) mod mapping;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::document::KeyPath;
use crate::expression::Expression;
use crate::path::FieldPath;
use crate::validate::Findings;

use mapping::RawMappingFilter;
pub use mapping::{DateFormat, FieldMapping, MappingFilter, OnMissing, Pattern, Transform};

/// One step of `filters`, chosen by `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterConfig {
    /// `set`: writes a value at a path.
    Set(SetFilter),
    /// `remove`: deletes paths.
    Remove(RemoveFilter),
    /// `mapping`: copies, reshapes and converts fields, in place.
    Mapping(MappingFilter),
    /// `condition`: runs `then` or `else` depending on an expression.
    Condition(ConditionFilter),
    /// `drop`: removes the record from the batch.
    Drop(DropFilter),
}

impl FilterConfig {
    /// What a failure of this filter on a record does.
    pub fn on_error(&self) -> OnError {
        match self {
            FilterConfig::Set(filter) => filter.on_error,
            FilterConfig::Remove(filter) => filter.on_error,
            FilterConfig::Mapping(filter) => filter.on_error,
            FilterConfig::Condition(filter) => filter.on_error,
            FilterConfig::Drop(filter) => filter.on_error,
        }
    }

    /// The filter's `type`, as written in a pipeline file.
    pub fn kind(&self) -> &'static str {
        match self {
            FilterConfig::Set(_) => "set",
            FilterConfig::Remove(_) => "remove",
            FilterConfig::Mapping(_) => "mapping",
            FilterConfig::Condition(_) => "condition",
            FilterConfig::Drop(_) => "drop",
        }
    }
}

/// What a filter that fails on a record does (`onError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OnError {
    /// The run stops; nothing of the batch is delivered or committed (the default).
    #[default]
    Fail,
    /// The record is left out of the batch, logged and counted as skipped.
    Skip,
    /// The record goes on as it was before this filter, and the error is logged.
    Log,
}

/// The `set` filter: writes `value` at `target`, creating objects on the way and replacing
/// what was there.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SetFilter {
    /// Where to write.
    pub target: FieldPath,
    /// Any JSON value.
    pub value: Value,
    /// What a failure (a path through something that is not an object) does.
    pub on_error: OnError,
}

/// The `remove` filter: deletes each path; a path the record lacks is not an error.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RemoveFilter {
    /// The paths to delete, at least one.
    pub targets: Vec<FieldPath>,
    /// Never used by a remove, which cannot fail; kept for symmetry with the other filters.
    pub on_error: OnError,
}

/// The `condition` filter: `then` runs on a record for which the expression holds, `else` on
/// the others; an absent branch leaves the record unchanged.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConditionFilter {
    /// The condition, compiled.
    pub expression: Expression,
    /// Filters run when the expression holds.
    pub then: Vec<FilterConfig>,
    /// Filters run when it does not (`else`).
    pub otherwise: Vec<FilterConfig>,
    /// What an expression that cannot be evaluated, or a failure inside a branch, does.
    pub on_error: OnError,
}

/// The `drop` filter: the record is not delivered (its cursor values still count).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DropFilter {
    /// Kept for symmetry with the other filters: a drop cannot fail.
    pub on_error: OnError,
}

// As written; validation turns it into `FilterConfig`.
/// One filter, chosen by `type`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
#[schemars(rename = "Filter")]
pub(crate) enum RawFilter {
    /// Writes a value at a path.
    Set(RawSetFilter),
    /// Deletes paths.
    Remove(RawRemoveFilter),
    /// Copies, reshapes and converts fields, in place.
    Mapping(RawMappingFilter),
    /// Runs `then` or `else` depending on an expression.
    Condition(RawConditionFilter),
    /// Removes the record.
    Drop(RawDropFilter),
}

fn enabled_by_default() -> bool {
    true
}

/// The `set` filter.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "SetFilter")]
pub(crate) struct RawSetFilter {
    /// Dot path to write, e.g. `meta.source`.
    pub(crate) target: String,
    /// Any JSON value, null included.
    #[serde(deserialize_with = "any_value")]
    pub(crate) value: Value,
    /// `fail` (default), `skip` or `log`.
    #[serde(default)]
    pub(crate) on_error: OnError,
    /// `false` leaves the filter out.
    #[serde(default = "enabled_by_default")]
    pub(crate) enabled: bool,
}

/// A path, or a list of paths.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Targets")]
pub(crate) enum RawTargets {
    /// One path.
    One(String),
    /// Several paths.
    Many(Vec<String>),
}

/// The `remove` filter.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "RemoveFilter")]
pub(crate) struct RawRemoveFilter {
    /// A dot path or a list of them.
    #[serde(default)]
    pub(crate) target: Option<RawTargets>,
    /// A list of dot paths (the spelling of some files of the Go tool).
    #[serde(default)]
    pub(crate) targets: Option<Vec<String>>,
    /// `fail` (default), `skip` or `log`.
    #[serde(default)]
    pub(crate) on_error: OnError,
    /// `false` leaves the filter out.
    #[serde(default = "enabled_by_default")]
    pub(crate) enabled: bool,
}

/// The `condition` filter.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "ConditionFilter")]
pub(crate) struct RawConditionFilter {
    /// An expression on the record, e.g. `status == 'active' && amount > 100`.
    pub(crate) expression: String,
    /// Filters run when the expression holds.
    #[serde(default)]
    pub(crate) then: Vec<RawFilter>,
    /// Filters run when it does not.
    #[serde(default, rename = "else")]
    pub(crate) otherwise: Vec<RawFilter>,
    /// `fail` (default), `skip` or `log`.
    #[serde(default)]
    pub(crate) on_error: OnError,
    /// `false` leaves the filter out.
    #[serde(default = "enabled_by_default")]
    pub(crate) enabled: bool,
}

/// The `drop` filter.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "DropFilter")]
pub(crate) struct RawDropFilter {
    /// `fail` (default), `skip` or `log`.
    #[serde(default)]
    pub(crate) on_error: OnError,
    /// `false` leaves the filter out.
    #[serde(default = "enabled_by_default")]
    pub(crate) enabled: bool,
}

/// Reads any JSON value as it is: unlike `Option<Value>`, an explicit `null` is a value.
pub(crate) fn any_value<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    Value::deserialize(deserializer)
}

/// Checks `filters` (at `path`) into their settings; the enabled ones come back only when none
/// has a problem.
pub(crate) fn validate_list(
    filters: Vec<RawFilter>,
    path: &KeyPath,
    findings: &mut Findings,
) -> Option<Vec<FilterConfig>> {
    let mark = findings.mark();
    let mut checked = Vec::with_capacity(filters.len());
    for (i, filter) in filters.into_iter().enumerate() {
        if let Some(Some(filter)) = filter.validate(&path.index(i), findings) {
            checked.push(filter);
        }
    }
    findings.clean_since(mark).then_some(checked)
}

impl RawFilter {
    /// The filter's settings; `Some(None)` for a filter with `enabled: false`, which is
    /// checked all the same so that enabling it later cannot reveal a mistake.
    fn validate(self, path: &KeyPath, findings: &mut Findings) -> Option<Option<FilterConfig>> {
        let mark = findings.mark();
        let (enabled, filter) = match self {
            RawFilter::Set(set) => {
                let target = findings.field_path(path.key("target"), &set.target);
                (
                    set.enabled,
                    target.map(|target| {
                        FilterConfig::Set(SetFilter {
                            target,
                            value: set.value,
                            on_error: set.on_error,
                        })
                    }),
                )
            }
            RawFilter::Remove(remove) => (remove.enabled, remove.validate(path, findings)),
            RawFilter::Mapping(mapping) => (
                mapping.enabled,
                mapping.validate(path, findings).map(FilterConfig::Mapping),
            ),
            RawFilter::Condition(condition) => {
                (condition.enabled, condition.validate(path, findings))
            }
            RawFilter::Drop(drop) => (
                drop.enabled,
                Some(FilterConfig::Drop(DropFilter {
                    on_error: drop.on_error,
                })),
            ),
        };
        if !findings.clean_since(mark) {
            return None;
        }
        Some(filter.filter(|_| enabled))
    }
}

impl RawRemoveFilter {
    fn validate(self, path: &KeyPath, findings: &mut Findings) -> Option<FilterConfig> {
        let (key, written) = match (self.target, self.targets) {
            (Some(_), Some(_)) => {
                findings.problem(
                    path.key("targets"),
                    "both `target` and `targets` are written; keep one of them, with every \
                     path to remove",
                );
                return None;
            }
            (Some(RawTargets::One(one)), None) => ("target", vec![one]),
            (Some(RawTargets::Many(many)), None) => ("target", many),
            (None, Some(many)) => ("targets", many),
            (None, None) => {
                findings.problem(
                    path.key("target"),
                    "missing key `target`: the path, or list of paths, to remove",
                );
                return None;
            }
        };
        if written.is_empty() {
            findings.problem(
                path.key(key),
                format!("`{key}` is an empty list; list the paths to remove, e.g. [internalId]"),
            );
            return None;
        }
        let single = written.len() == 1 && key == "target";
        let targets: Vec<Option<FieldPath>> = written
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let at = if single {
                    path.key(key)
                } else {
                    path.key(key).index(i)
                };
                findings.field_path(at, text)
            })
            .collect();
        let targets: Option<Vec<FieldPath>> = targets.into_iter().collect();
        Some(FilterConfig::Remove(RemoveFilter {
            targets: targets?,
            on_error: self.on_error,
        }))
    }
}

impl RawConditionFilter {
    fn validate(self, path: &KeyPath, findings: &mut Findings) -> Option<FilterConfig> {
        let expression = match Expression::compile(&self.expression) {
            Ok(expression) => Some(expression),
            Err(error) => {
                findings.problem(path.key("expression"), error.to_string());
                None
            }
        };
        let then = validate_list(self.then, &path.key("then"), findings);
        let otherwise = validate_list(self.otherwise, &path.key("else"), findings);
        Some(FilterConfig::Condition(ConditionFilter {
            expression: expression?,
            then: then?,
            otherwise: otherwise?,
            on_error: self.on_error,
        }))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{FilterConfig, OnError, Transform};

    fn load(filters: &str) -> Result<Vec<FilterConfig>, String> {
        let text = format!(
            "name: f\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:1/'}}\n\
             filters:\n{filters}\noutput: {{type: stdout}}\n"
        );
        crate::parse_str(&text, "f.yaml", &|_| None)
            .map(|loaded| loaded.pipeline.filters)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn every_filter_type_loads_into_its_settings() {
        let filters = load(
            "  - {type: set, target: meta.source, value: {crm: true}}\n\
             \x20 - {type: remove, target: [internalId, meta.secret], onError: log}\n\
             \x20 - {type: remove, targets: [a]}\n\
             \x20 - type: mapping\n\
             \x20   mappings:\n\
             \x20     - {source: email, target: contact.email, transforms: [{op: trim}, {op: lowercase}]}\n\
             \x20     - {target: legacy}\n\
             \x20 - type: condition\n\
             \x20   expression: status == 'active'\n\
             \x20   then: [{type: set, target: bucket, value: hot}]\n\
             \x20   else: [{type: drop}]\n\
             \x20 - {type: drop, enabled: false}",
        )
        .unwrap();
        assert_eq!(filters.len(), 5);
        let FilterConfig::Set(set) = &filters[0] else {
            panic!("{filters:?}")
        };
        assert_eq!(set.target.as_str(), "meta.source");
        assert_eq!(set.value, json!({"crm": true}));
        let FilterConfig::Remove(remove) = &filters[1] else {
            panic!()
        };
        assert_eq!(remove.targets.len(), 2);
        assert_eq!(remove.on_error, OnError::Log);
        let FilterConfig::Mapping(mapping) = &filters[3] else {
            panic!()
        };
        assert_eq!(
            mapping.mappings[0].transforms,
            [Transform::Trim, Transform::Lowercase]
        );
        assert!(mapping.mappings[1].source.is_none());
        let FilterConfig::Condition(condition) = &filters[4] else {
            panic!()
        };
        assert_eq!(condition.expression.as_str(), "status == 'active'");
        assert_eq!(condition.then.len(), 1);
        assert!(matches!(condition.otherwise[0], FilterConfig::Drop(_)));
    }

    #[test]
    fn a_syntax_error_in_an_expression_is_reported_at_its_key_path() {
        let error = load(
            "  - {type: set, target: a, value: 1}\n\
             \x20 - type: condition\n\
             \x20   expression: \"amount >> 1\"\n\
             \x20   then:\n\
             \x20     - {type: condition, expression: \"a ==\"}",
        )
        .unwrap_err();
        assert!(
            error.contains("f.yaml:6:5: filters[1].expression: `amount >> 1` is not a valid expression: at character"),
            "{error}"
        );
        assert!(
            error.contains("filters[1].then[0].expression: `a ==` is not a valid expression"),
            "{error}"
        );
    }

    #[test]
    fn unknown_types_keys_and_values_get_a_did_you_mean() {
        let error = load(
            "  - {type: sett, target: a, value: 1}\n\
             \x20 - {type: set, traget: a, value: 1}\n\
             \x20 - {type: drop, onError: skpi}",
        )
        .unwrap_err();
        assert!(
            error.contains("filters[0].type: unknown filter type `sett`; did you mean `set`?"),
            "{error}"
        );
        assert!(
            error.contains("filters[1].traget: unknown key `traget`; did you mean `target`?"),
            "{error}"
        );
        assert!(
            error.contains("filters[2].onError: unknown value `skpi`; did you mean `skip`?"),
            "{error}"
        );
    }

    #[test]
    fn filters_written_for_the_go_tool_load_unchanged() {
        // The shapes of the Go tool's examples: `targets` on remove, a mapping entry without
        // source, `confidence`, a double-quoted string in an unquoted expression, `onError: log`.
        let filters = load(
            "  - type: mapping\n\
             \x20   onError: log\n\
             \x20   mappings:\n\
             \x20     - {source: phone, target: phone, confidence: 0.9, transforms: [{op: replace, pattern: '[^0-9+]', replacement: ''}]}\n\
             \x20     - {source: created_at, target: createdDate, transforms: [{op: dateFormat, format: YYYY-MM-DD}]}\n\
             \x20     - target: deprecatedField\n\
             \x20 - type: condition\n\
             \x20   expression: status == \"paid\" && amount > 0\n\
             \x20   then:\n\
             \x20     - {type: set, target: routing.bucket, value: billable}\n\
             \x20   else:\n\
             \x20     - type: remove\n\
             \x20       targets:\n\
             \x20         - card.number\n\
             \x20         - card.cvv",
        )
        .unwrap();
        assert_eq!(filters.len(), 2);
        assert_eq!(filters[0].on_error(), OnError::Log);
        let FilterConfig::Condition(condition) = &filters[1] else {
            panic!()
        };
        let FilterConfig::Remove(remove) = &condition.otherwise[0] else {
            panic!()
        };
        assert_eq!(remove.targets[1].as_str(), "card.cvv");
    }

    #[test]
    fn bad_paths_and_empty_lists_are_reported() {
        let error = load(
            "  - {type: set, target: 'a..b', value: 1}\n\
             \x20 - {type: remove, target: []}\n\
             \x20 - {type: remove}\n\
             \x20 - {type: remove, target: a, targets: [b]}\n\
             \x20 - {type: condition, expression: ' '}",
        )
        .unwrap_err();
        for expected in [
            "filters[0].target: `a..b` is not a dot path",
            "filters[1].target: `target` is an empty list",
            "filters[2].target: missing key `target`",
            "filters[3].targets: both `target` and `targets` are written",
            "filters[4].expression: the expression is empty",
        ] {
            assert!(error.contains(expected), "{expected} in {error}");
        }
    }
}
