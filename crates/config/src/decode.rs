//! From the JSON tree to the pipeline file as written (`RawPipeline`), with the exact key path
//! of the first mismatch.
//!
//! serde buffers an internally tagged enum (`input.type`, `output.type`) before it picks the
//! variant, and the buffered value has forgotten both the path and the position. So the `type`
//! of the input and of the output is read here first, and the chosen variant struct is
//! deserialized on its own under its own path; only a tree that passes that is handed to the
//! derived `Deserialize` of the whole pipeline.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::document::{KeyPath, Segment};
use crate::input::database::RawDatabaseInput;
use crate::input::http::RawHttpPollingInput;
use crate::model::RawPipeline;
use crate::output::database::RawDatabaseOutput;
use crate::output::file::RawFileOutput;
use crate::output::http_request::RawHttpRequestOutput;
use crate::output::stdout::RawStdoutOutput;

/// The first place where the tree does not fit the model.
#[derive(Debug)]
pub(crate) struct Mismatch {
    pub(crate) path: KeyPath,
    pub(crate) message: String,
}

type Check = fn(Value, &KeyPath) -> Result<(), Mismatch>;

const INPUT_TYPES: &[(&str, Check)] = &[
    ("httpPolling", check_as::<RawHttpPollingInput>),
    ("database", check_as::<RawDatabaseInput>),
];

const OUTPUT_TYPES: &[(&str, Check)] = &[
    ("stdout", check_as::<RawStdoutOutput>),
    ("file", check_as::<RawFileOutput>),
    ("httpRequest", check_as::<RawHttpRequestOutput>),
    ("database", check_as::<RawDatabaseOutput>),
];

pub(crate) fn decode(tree: &Value) -> Result<RawPipeline, Mismatch> {
    let root = KeyPath::root();
    let Some(map) = tree.as_object() else {
        return Err(Mismatch {
            path: root,
            message: format!(
                "the file holds {}, but a pipeline is a mapping with the keys name, input and \
                 output",
                describe(tree)
            ),
        });
    };
    if let Some(input) = map.get("input") {
        check_tagged(input, &root.key("input"), "input", INPUT_TYPES)?;
    }
    if let Some(output) = map.get("output") {
        check_tagged(output, &root.key("output"), "output", OUTPUT_TYPES)?;
    }
    deserialize(tree.clone(), &root)
}

fn check_as<T: DeserializeOwned>(value: Value, path: &KeyPath) -> Result<(), Mismatch> {
    deserialize::<T>(value, path).map(drop)
}

/// Reads `type` of a tagged block and checks the rest against the struct of that type.
fn check_tagged(
    value: &Value,
    path: &KeyPath,
    block: &str,
    types: &[(&str, Check)],
) -> Result<(), Mismatch> {
    let names = types
        .iter()
        .map(|(name, _)| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let Some(map) = value.as_object() else {
        return Err(Mismatch {
            path: path.clone(),
            message: format!(
                "expected a mapping with a `type` ({names}), found {}",
                describe(value)
            ),
        });
    };
    let kind = match map.get("type") {
        None => {
            return Err(Mismatch {
                path: path.key("type"),
                message: format!("missing key `type`: the {block} type, one of {names}"),
            });
        }
        Some(Value::String(kind)) => kind,
        Some(other) => {
            return Err(Mismatch {
                path: path.key("type"),
                message: format!(
                    "expected the {block} type as text ({names}), found {}",
                    describe(other)
                ),
            });
        }
    };
    let Some((_, check)) = types.iter().find(|(name, _)| name == kind) else {
        return Err(Mismatch {
            path: path.key("type"),
            message: format!("unknown {block} type `{kind}`; expected one of {names}"),
        });
    };
    let mut rest = map.clone();
    rest.remove("type");
    check(Value::Object(rest), path)
}

fn deserialize<T: DeserializeOwned>(value: Value, at: &KeyPath) -> Result<T, Mismatch> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let mut path = at.clone();
        for segment in error.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => path.push(Segment::Index(*index)),
                serde_path_to_error::Segment::Map { key } => path.push(Segment::Key(key.clone())),
                serde_path_to_error::Segment::Enum { variant } => {
                    path.push(Segment::Key(variant.clone()));
                }
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        let (path, message) = reword(path, &error.inner().to_string());
        Mismatch { path, message }
    })
}

/// serde's messages speak of fields, maps and u64s; users wrote keys, mappings and numbers.
/// For a missing or unknown key, the key joins the path so the user sees where it belongs.
fn reword(path: KeyPath, message: &str) -> (KeyPath, String) {
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((key, expected)) = rest.split_once('`')
    {
        let expected = expected.trim_start_matches(',').trim();
        let hint = if expected == "there are no fields" {
            "this block takes no other keys"
        } else {
            expected
        };
        // serde_path_to_error already ends the path with the unknown key.
        let path = if path_ends_with(&path, key) {
            path
        } else {
            path.key(key)
        };
        return (path, format!("unknown key `{key}`; {hint}"));
    }
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some((key, _)) = rest.split_once('`')
    {
        return (path.key(key), format!("missing key `{key}`"));
    }
    if let Some(rest) = message.strip_prefix("unknown variant `")
        && let Some((value, expected)) = rest.split_once('`')
    {
        let expected = expected.trim_start_matches(',').trim();
        return (path, format!("unknown value `{value}`; {expected}"));
    }
    let mut reworded = message.to_owned();
    for (from, to) in [
        ("invalid type: ", "wrong type: found "),
        ("invalid value: ", "wrong value: found "),
        ("expected struct ", "expected a mapping: "),
        ("expected u64", "expected a whole number of 0 or more"),
        ("expected u32", "expected a whole number of 0 or more"),
        ("expected u16", "expected a whole number of 0 or more"),
        ("expected usize", "expected a whole number of 0 or more"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected a list"),
        ("expected a map", "expected a mapping"),
        ("found map", "found a mapping"),
        ("found sequence", "found a list"),
    ] {
        reworded = reworded.replace(from, to);
    }
    // `expected a mapping: RetryConfig` names a Rust type the user never wrote.
    if let Some(at) = reworded.find("expected a mapping: ") {
        reworded.truncate(at + "expected a mapping".len());
    }
    (path, reworded)
}

fn path_ends_with(path: &KeyPath, key: &str) -> bool {
    path.parent().is_some_and(|parent| parent.key(key) == *path)
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
