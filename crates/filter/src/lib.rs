//! The filters of cannectors: what happens to records between the source and the sink.
//!
//! [`Filters`] is built once per run from a loaded pipeline's `filters` (settings checked and
//! expressions compiled when the pipeline was loaded) and applied to every batch. Each record
//! is read once into its top-level fields, each kept as the source's text until a filter reads
//! or changes it, and a record that is kept is written back once, the fields no filter changed
//! as they came. A pipeline without filters gets an empty [`Filters`], and the executor does not
//! call it: its records are never parsed.
//!
//! A filter that fails on a record does what its `onError` says: `fail` stops the batch with a
//! [`FilterError`], `skip` leaves the record out (counted in [`Filtered::skipped`]), `log`
//! lets it go on as it was before that filter. A failure inside a `condition` branch that the
//! failing filter does not absorb itself is a failure of the `condition`.
//!
//! ```
//! use cannectors_connector::Record;
//! use cannectors_filter::Filters;
//! use serde_json::json;
//!
//! let yaml = r#"
//! name: shaped
//! input: {type: httpPolling, endpoint: "http://127.0.0.1:8080/events"}
//! filters:
//!   - type: mapping
//!     mappings:
//!       - {source: email, target: contact.email, transforms: [{op: trim}, {op: lowercase}]}
//!       - {target: email}
//!   - type: condition
//!     expression: "amount > 100"
//!     then: [{type: set, target: bucket, value: hot}]
//!     else: [{type: drop}]
//! output: {type: stdout}
//! "#;
//! let loaded = cannectors_config::parse_str(yaml, "shaped.yaml", &|_| None).unwrap();
//! let filters = Filters::new(&loaded.pipeline.filters);
//! let batch = vec![
//!     Record::from(json!({"email": " Ann@Example.COM ", "amount": 250})),
//!     Record::from(json!({"email": "bob@example.com", "amount": 5})),
//! ];
//! let filtered = filters.apply(batch).unwrap();
//! assert_eq!(filtered.dropped, 1);
//! assert_eq!(
//!     filtered.records[0].json(),
//!     r#"{"amount":250,"contact":{"email":"ann@example.com"},"bucket":"hot"}"#
//! );
//! ```

mod document;
mod target;
mod transform;

use cannectors_config::{
    ConditionFilter, Expression, FieldMapping, FilterConfig, MappingFilter, OnError, OnMissing,
};
use cannectors_connector::Record;
use serde_json::Value;

use crate::document::{Document, Room};

/// The filters of a pipeline, ready to apply to batches.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    steps: Vec<Step>,
}

/// A batch after the filters.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Filtered {
    /// The records kept, in their order, each written back as JSON text.
    pub records: Vec<Record>,
    /// Records a `drop` filter removed.
    pub dropped: u64,
    /// Records a failing filter with `onError: skip` removed.
    pub skipped: u64,
}

/// A filter with `onError: fail` (the default) failed on a record: the batch cannot be
/// delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{path} ({kind}) failed on record {record} of the batch: {reason}; set `onError: skip` on \
     this filter to leave such records out, or `onError: log` to let them through unchanged"
)]
pub struct FilterError {
    path: String,
    kind: &'static str,
    record: usize,
    reason: String,
}

impl FilterError {
    /// The key path of the filter in the pipeline file, e.g. `filters[1].then[0]`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The position of the record in its batch, from 1.
    pub fn record(&self) -> usize {
        self.record
    }
}

/// One filter with its key path, for messages.
#[derive(Debug, Clone)]
struct Step {
    path: String,
    on_error: OnError,
    action: Action,
}

#[derive(Debug, Clone)]
enum Action {
    Set(cannectors_config::SetFilter),
    Remove(cannectors_config::RemoveFilter),
    Mapping(MappingFilter),
    Condition {
        expression: Expression,
        then: Vec<Step>,
        otherwise: Vec<Step>,
    },
    Drop,
}

impl Action {
    fn kind(&self) -> &'static str {
        match self {
            Action::Set(_) => "set",
            Action::Remove(_) => "remove",
            Action::Mapping(_) => "mapping",
            Action::Condition { .. } => "condition",
            Action::Drop => "drop",
        }
    }

    /// Whether the action can change a record and then fail, so that `onError: log` needs
    /// the record as it was before.
    fn can_fail_half_way(&self) -> bool {
        matches!(
            self,
            Action::Remove(_) | Action::Mapping(_) | Action::Condition { .. }
        )
    }
}

/// What became of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Kept,
    Dropped,
    Skipped,
}

/// A filter failed on a record, with the key path of the filter that failed.
struct Failure {
    path: String,
    kind: &'static str,
    reason: String,
}

impl Filters {
    /// The filters of a loaded pipeline (its `filters`), in order.
    pub fn new(filters: &[FilterConfig]) -> Filters {
        Filters {
            steps: steps(filters, "filters"),
        }
    }

    /// Whether there is no filter: the records of a batch go to the sink as the source sent
    /// them, never parsed.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Runs every filter on every record of `records`.
    pub fn apply(&self, records: Vec<Record>) -> Result<Filtered, FilterError> {
        let mut filtered = Filtered {
            records: Vec::with_capacity(records.len()),
            dropped: 0,
            skipped: 0,
        };
        // One buffer for the whole batch: each record is written into it and copied out at
        // its exact size.
        let mut out = Vec::new();
        let mut room = Room::default();
        for (i, record) in records.iter().enumerate() {
            let position = i + 1;
            let mut document =
                Document::parse(record.json(), room).map_err(|error| FilterError {
                    path: "filters".to_owned(),
                    kind: "parse",
                    record: position,
                    reason: format!("the record cannot be read as JSON: {error}"),
                })?;
            let fate =
                run(&self.steps, &mut document, position).map_err(|failure| FilterError {
                    path: failure.path,
                    kind: failure.kind,
                    record: position,
                    reason: failure.reason,
                })?;
            match fate {
                Fate::Kept => {
                    out.clear();
                    let written = document
                        .write(&mut out)
                        .map_err(|error| error.to_string())
                        .and_then(|()| {
                            std::str::from_utf8(&out).map_err(|error| error.to_string())
                        });
                    let text = written.map_err(|error| FilterError {
                        path: "filters".to_owned(),
                        kind: "write",
                        record: position,
                        reason: format!("the record cannot be written as JSON: {error}"),
                    })?;
                    filtered.records.push(Record::from_encoded(text.to_owned()));
                }
                Fate::Dropped => filtered.dropped += 1,
                Fate::Skipped => filtered.skipped += 1,
            }
            room = document.into_room();
        }
        Ok(filtered)
    }
}

fn steps(filters: &[FilterConfig], path: &str) -> Vec<Step> {
    filters
        .iter()
        .enumerate()
        .map(|(i, filter)| {
            let path = format!("{path}[{i}]");
            let action = match filter {
                FilterConfig::Set(set) => Action::Set(set.clone()),
                FilterConfig::Remove(remove) => Action::Remove(remove.clone()),
                FilterConfig::Mapping(mapping) => Action::Mapping(mapping.clone()),
                FilterConfig::Condition(condition) => condition_action(condition, &path),
                FilterConfig::Drop(_) => Action::Drop,
            };
            Step {
                path,
                on_error: filter.on_error(),
                action,
            }
        })
        .collect()
}

fn condition_action(condition: &ConditionFilter, path: &str) -> Action {
    Action::Condition {
        expression: condition.expression.clone(),
        then: steps(&condition.then, &format!("{path}.then")),
        otherwise: steps(&condition.otherwise, &format!("{path}.else")),
    }
}

/// Runs `steps` in order on one record (`position` in its batch, from 1, for the logs).
fn run<'a>(steps: &'a [Step], record: &mut Document<'a>, position: usize) -> Result<Fate, Failure> {
    for step in steps {
        let before = (step.on_error == OnError::Log && step.action.can_fail_half_way())
            .then(|| record.clone());
        match perform(step, record, position) {
            Ok(Fate::Kept) => {}
            Ok(gone) => return Ok(gone),
            Err(failure) => match step.on_error {
                OnError::Fail => return Err(failure),
                OnError::Skip => {
                    tracing::warn!(
                        filter = %failure.path,
                        record = position,
                        "{} ({}) failed: {}; the record is skipped (onError: skip)",
                        failure.path,
                        failure.kind,
                        failure.reason
                    );
                    return Ok(Fate::Skipped);
                }
                OnError::Log => {
                    tracing::error!(
                        filter = %failure.path,
                        record = position,
                        "{} ({}) failed: {}; the record goes on unchanged by {} (onError: log)",
                        failure.path,
                        failure.kind,
                        failure.reason,
                        step.path
                    );
                    if let Some(before) = before {
                        *record = before;
                    }
                }
            },
        }
    }
    Ok(Fate::Kept)
}

fn perform<'a>(
    step: &'a Step,
    record: &mut Document<'a>,
    position: usize,
) -> Result<Fate, Failure> {
    let fail = |reason: String| Failure {
        path: step.path.clone(),
        kind: step.action.kind(),
        reason,
    };
    match &step.action {
        Action::Set(set) => record.set(&set.target, set.value.clone()).map_err(&fail)?,
        Action::Remove(remove) => {
            for path in &remove.targets {
                record.remove(path).map_err(&fail)?;
            }
        }
        Action::Mapping(mapping) => {
            for (i, entry) in mapping.mappings.iter().enumerate() {
                map_one(entry, record)
                    .map_err(|reason| fail(format!("mappings[{i}]: {reason}")))?;
            }
        }
        Action::Condition {
            expression,
            then,
            otherwise,
        } => {
            let holds = record
                .holds(expression)
                .map_err(|error| fail(error.to_string()))?;
            let branch = if holds { then } else { otherwise };
            return run(branch, record, position);
        }
        Action::Drop => return Ok(Fate::Dropped),
    }
    Ok(Fate::Kept)
}

/// One entry of a mapping: read, transform, write.
fn map_one<'a>(entry: &'a FieldMapping, record: &mut Document<'a>) -> Result<(), String> {
    let Some(source) = &entry.source else {
        return record.remove(&entry.target);
    };
    // A plain copy between top-level fields copies the text, unparsed.
    if entry.transforms.is_empty() && record.copy_text(source, &entry.target) {
        return Ok(());
    }
    // A text transform of a string read in place, without making a value of it first.
    if let (Some(first), Some(text)) = (entry.transforms.first(), record.plain_text(source))
        && let Some(changed) = transform::apply_to_text(first, text)
    {
        let value = transformed_after(entry, 1, changed)?;
        return record.set(&entry.target, value);
    }
    let value = match record.get(source)?.filter(|value| !value.is_null()) {
        Some(value) => transformed_from(entry, value)?,
        None => match &entry.on_missing {
            OnMissing::SetNull => Value::Null,
            OnMissing::SkipField => return Ok(()),
            OnMissing::UseDefault(default) => transformed(entry, default.clone())?,
            OnMissing::Fail => {
                return Err(format!(
                    "the source `{source}` is absent or null (onMissing: fail); give it a \
                     default with `onMissing: useDefault` and `defaultValue`, or leave the \
                     target alone with `onMissing: skipField`"
                ));
            }
        },
    };
    record.set(&entry.target, value)
}

/// [`transformed`] of a value read from the record: a first text transform reads it in place
/// rather than from a copy.
fn transformed_from(entry: &FieldMapping, value: &Value) -> Result<Value, String> {
    if let (Some(first), Value::String(text)) = (entry.transforms.first(), value)
        && let Some(changed) = transform::apply_to_text(first, text)
    {
        return transformed_after(entry, 1, changed);
    }
    transformed(entry, value.clone())
}

fn transformed(entry: &FieldMapping, value: Value) -> Result<Value, String> {
    transformed_after(entry, 0, value)
}

/// `value` through the transforms of `entry` from the one at `skip` on.
fn transformed_after(entry: &FieldMapping, skip: usize, mut value: Value) -> Result<Value, String> {
    for (i, op) in entry.transforms.iter().enumerate().skip(skip) {
        value = transform::apply(op, value)
            .map_err(|reason| format!("transforms[{i}] of `{}`: {reason}", entry.target))?;
    }
    Ok(value)
}
