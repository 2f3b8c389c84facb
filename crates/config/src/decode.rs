//! From the JSON tree to the pipeline file as written (`RawPipeline`), finding every place where
//! the tree does not fit the model in one pass, so that a user fixes a file in one round instead
//! of one error at a time.
//!
//! Two walks, each repairing what it reports so that the next one can go on:
//!
//! - **Names.** The JSON Schema of the model (generated from the same types, so the two never
//!   disagree) says which keys each mapping takes and needs, and which names a `type` or a
//!   `method` may hold. An unknown key is dropped, or, when it is a near miss of a key of that
//!   mapping, read as that key ("did you mean"); a missing key gets a placeholder; an unknown name
//!   is replaced by its near miss, dropped, or replaced by a placeholder.
//! - **Values.** serde reads the repaired tree. Each value it refuses is reported in serde's
//!   words (reworded for people), dropped (an optional key then takes its default) or replaced by
//!   a placeholder, and the tree is read again, until it reads. The checks written in the model's
//!   own deserializers (an expression in `parameters`, a decimal `version`) keep their messages.
//!
//! The file read from the repaired tree then goes through validation (`validate.rs` and the
//! rules beside each block's model), which builds the typed settings, so that problems of
//! structure and problems of meaning are reported together. What the repairs put in
//! the tree is never reported: [`Problems`] leaves out whatever a later step finds at or under a
//! path an earlier step already reported.
//!
//! serde buffers an internally tagged enum (`input.type`, `output.type`) before it picks the
//! variant, and the buffered value has forgotten both the path and the position. So the struct
//! of the chosen input and output type is read on its own, under its own path, before the whole
//! pipeline is.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::document::{KeyPath, Segment};
use crate::input::database::RawDatabaseInput;
use crate::input::http::RawHttpPollingInput;
use crate::model::RawPipeline;
use crate::output::database::RawDatabaseOutput;
use crate::output::file::RawFileOutput;
use crate::output::http_request::RawHttpRequestOutput;
use crate::output::stdout::RawStdoutOutput;

/// The most values the value walk reports. Each one costs a reading of the whole tree; a file
/// with more wrong values than this is better fixed in rounds than read hundreds of times.
const MAX_VALUE_PROBLEMS: usize = 100;

/// The problems of one file, each at the first step that found it.
///
/// Steps run in order (the document, its variables, the names, the values, the rules), and each
/// repairs what it reports so that the next can run. A later step that finds something at or
/// under a path an earlier step reported only sees the repair (a placeholder, a default): that is
/// left out. A key read as the near miss it most likely meant is reported under the key as
/// written.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    found: Vec<(KeyPath, String)>,
    /// Paths reported, with the step that reported them.
    covered: HashMap<KeyPath, usize>,
    /// Keys read as another key: the key meant, and the key as written.
    renamed: HashMap<KeyPath, KeyPath>,
    step: usize,
}

impl Problems {
    /// Reports a problem at `path`; what later steps find at or under it is left out.
    pub(crate) fn report(&mut self, path: &KeyPath, message: impl Into<String>) {
        let path = self.as_written(path);
        if self.is_covered(&path) {
            return;
        }
        self.covered.entry(path.clone()).or_insert(self.step);
        self.push(path, message.into());
    }

    /// Adds a problem, unless the same was found at the same place: a value of `defaults`
    /// copied into two modules is reported once, where it was written.
    fn push(&mut self, path: KeyPath, message: String) {
        if !self.found.iter().any(|(p, m)| *p == path && *m == message) {
            self.found.push((path, message));
        }
    }

    /// The value at `meant` was copied from `written` (a key of `defaults`): a problem in it is
    /// reported where it was written.
    pub(crate) fn inherited(&mut self, meant: &KeyPath, written: &KeyPath) {
        self.renamed.insert(meant.clone(), written.clone());
    }

    /// Reports a problem at `path` that does not stand for what is under it.
    pub(crate) fn note(&mut self, path: &KeyPath, message: impl Into<String>) {
        let path = self.as_written(path);
        if !self.is_covered(&path) {
            self.push(path, message.into());
        }
    }

    /// Leaves out what later steps find at or under `path`, without a problem of its own.
    fn cover(&mut self, path: &KeyPath) {
        let path = self.as_written(path);
        self.covered.entry(path).or_insert(self.step);
    }

    /// Starts the next step: what it finds under paths reported so far is left out.
    pub(crate) fn next_step(&mut self) {
        self.step += 1;
    }

    /// Whether no problem was found.
    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Every problem, in the order found.
    pub(crate) fn into_vec(self) -> Vec<(KeyPath, String)> {
        self.found
    }

    fn is_covered(&self, path: &KeyPath) -> bool {
        path.ancestors().any(|ancestor| {
            self.covered
                .get(&ancestor)
                .is_some_and(|&at| at < self.step)
        })
    }

    fn as_written(&self, path: &KeyPath) -> KeyPath {
        path.ancestors()
            .find_map(|meant| {
                let written = self.renamed.get(&meant)?;
                Some(written.join(&path.segments()[meant.segments().len()..]))
            })
            .unwrap_or_else(|| path.clone())
    }
}

/// Reads `tree` into a pipeline, reporting to `problems` every place where it does not fit. `None`
/// when the tree is too far from a pipeline to read one even after the repairs (the problems say
/// why).
pub(crate) fn decode(mut tree: Value, problems: &mut Problems) -> Option<RawPipeline> {
    let root = KeyPath::root();
    if !tree.is_object() {
        problems.report(
            &root,
            format!(
                "the file holds {}, but a pipeline is a mapping with the keys name, input and \
                 output",
                describe(&tree)
            ),
        );
        return None;
    }
    problems.next_step();
    Names {
        schema: &MODEL,
        problems: &mut *problems,
    }
    .walk(&MODEL, &mut tree, &root);
    read_values(tree, problems)
}

/// The JSON Schema of the model, generated once.
static MODEL: LazyLock<Value> = LazyLock::new(crate::schema::json_schema);

// ---- names ---------------------------------------------------------------------------------

/// The walk over keys and names.
struct Names<'a> {
    schema: &'a Value,
    problems: &'a mut Problems,
}

/// Whether a value can stay where it is after the walk looked at it.
enum Fit {
    /// It fits, or was repaired in place.
    Stays,
    /// It cannot be used; the problem is reported and the caller drops or replaces it.
    Goes,
}

impl Names<'_> {
    fn walk(&mut self, schema: &Value, value: &mut Value, path: &KeyPath) -> Fit {
        let schema = resolve(self.schema, schema);
        if let Some(options) = names(self.schema, schema) {
            return self.check_name(&options, value, path);
        }
        if tags(self.schema, schema).is_some() {
            self.walk_tagged(schema, value, path);
            return Fit::Stays;
        }
        if alternatives(schema).is_some() {
            if let Some(chosen) = narrow(self.schema, schema, value) {
                return self.walk(chosen, value, path);
            }
            // No alternative takes this kind of value: reading the values says so.
            return Fit::Stays;
        }
        if !admits(self.schema, schema, value, 0) {
            return Fit::Stays;
        }
        match value {
            Value::Object(map) => self.walk_mapping(schema, map, path),
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter_mut().enumerate() {
                        let item_path = path.index(i);
                        if let Fit::Goes = self.walk(item_schema, item, &item_path) {
                            *item = placeholder(self.schema, item_schema, 0);
                        }
                    }
                }
            }
            _ => {}
        }
        Fit::Stays
    }

    fn walk_mapping(&mut self, schema: &Value, map: &mut Map<String, Value>, path: &KeyPath) {
        let empty = Map::new();
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let others = schema.get("additionalProperties");
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|keys| keys.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let written: Vec<String> = map.keys().cloned().collect();
        for key in written {
            let key_path = path.key(&key);
            let (key, property) = match properties.get(&key) {
                Some(property) => (key, property),
                None => match others {
                    Some(other @ Value::Object(_)) => (key, other),
                    Some(Value::Bool(false)) => {
                        match self.unknown_key(properties, map, &key, &key_path) {
                            Some(meant) => meant,
                            None => continue,
                        }
                    }
                    _ => continue,
                },
            };
            let Some(value) = map.get_mut(&key) else {
                continue;
            };
            if let Fit::Goes = self.walk(property, value, &path.key(&key)) {
                if required.contains(&key.as_str()) {
                    *value = placeholder(self.schema, property, 0);
                } else {
                    map.remove(&key);
                }
            }
        }
        for key in required {
            if !map.contains_key(key) {
                self.problems
                    .report(&path.key(key), format!("missing key `{key}`"));
                let property = properties.get(key).unwrap_or(&Value::Null);
                map.insert(key.to_owned(), placeholder(self.schema, property, 0));
            }
        }
    }

    /// Reports `key`, unknown in `map`. A near miss of a key not written is moved to that key
    /// (returned with its schema), so that the rest of the file is checked as meant; any other
    /// unknown key is dropped.
    fn unknown_key<'s>(
        &mut self,
        properties: &'s Map<String, Value>,
        map: &mut Map<String, Value>,
        key: &str,
        key_path: &KeyPath,
    ) -> Option<(String, &'s Value)> {
        let free = properties
            .keys()
            .map(String::as_str)
            .filter(|known| !map.contains_key(*known));
        if let Some(meant) = suggest(key, free) {
            self.problems.note(
                key_path,
                format!("unknown key `{key}`; did you mean `{meant}`?"),
            );
            let parent = key_path.parent().unwrap_or_default();
            let written = self.problems.as_written(key_path);
            self.problems.renamed.insert(parent.key(meant), written);
            let value = map.remove(key)?;
            map.insert(meant.to_owned(), value);
            let property = properties.get(meant)?;
            return Some((meant.to_owned(), property));
        }
        // The `type` that chose this block is not one of the keys it takes.
        let known: Vec<&str> = properties
            .iter()
            .filter(|(_, property)| property.get("const").is_none())
            .map(|(known, _)| known.as_str())
            .collect();
        let hint = if known.is_empty() {
            "this block takes no other keys".to_owned()
        } else {
            format!("expected {}", one_of(&known))
        };
        self.problems
            .report(key_path, format!("unknown key `{key}`; {hint}"));
        map.remove(key);
        None
    }

    /// A value that must be one of a few names (`method`, `location`, `requestMode`...).
    fn check_name(&mut self, options: &[&str], value: &mut Value, path: &KeyPath) -> Fit {
        let written = match value {
            Value::String(written) if options.contains(&written.as_str()) => return Fit::Stays,
            Value::String(written) => written.clone(),
            other => {
                self.problems.report(
                    path,
                    format!(
                        "wrong type: found {}, expected {}",
                        describe(other),
                        one_of(options)
                    ),
                );
                return Fit::Goes;
            }
        };
        if let Some(meant) = suggest(&written, options.iter().copied()) {
            self.problems.report(
                path,
                format!("unknown value `{written}`; did you mean `{meant}`?"),
            );
            *value = Value::String(meant.to_owned());
            return Fit::Stays;
        }
        self.problems.report(
            path,
            format!("unknown value `{written}`; expected {}", one_of(options)),
        );
        Fit::Goes
    }

    /// A block whose `type` chooses its keys (`input`, `output`). When the type cannot be told,
    /// the block cannot be checked: it is replaced by a placeholder and nothing under it is
    /// reported.
    fn walk_tagged(&mut self, schema: &Value, value: &mut Value, path: &KeyPath) {
        let Some(tags) = tags(self.schema, schema) else {
            return;
        };
        let block = match path.segments().last() {
            Some(Segment::Key(key)) => key.as_str(),
            // The blocks chosen by `type` in a list are the filters (`filters`, `then`, `else`).
            Some(Segment::Index(_)) => "filter",
            _ => "block",
        };
        let names = tags
            .iter()
            .map(|(tag, _)| format!("`{tag}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let type_path = path.key("type");
        let chosen = match value.as_object_mut() {
            None => {
                self.problems.report(
                    path,
                    format!(
                        "expected a mapping with a `type` ({names}), found {}",
                        describe(value)
                    ),
                );
                None
            }
            Some(map) => match map.get("type") {
                None => {
                    self.problems.report(
                        &type_path,
                        format!("missing key `type`: the {block} type, one of {names}"),
                    );
                    None
                }
                Some(Value::String(kind)) => {
                    let kind = kind.clone();
                    if let Some((_, alternative)) = tags.iter().find(|(tag, _)| *tag == kind) {
                        Some(*alternative)
                    } else if let Some(meant) = suggest(&kind, tags.iter().map(|(tag, _)| *tag)) {
                        self.problems.report(
                            &type_path,
                            format!("unknown {block} type `{kind}`; did you mean `{meant}`?"),
                        );
                        map.insert("type".to_owned(), Value::String(meant.to_owned()));
                        tags.iter()
                            .find(|(tag, _)| *tag == meant)
                            .map(|(_, alternative)| *alternative)
                    } else {
                        self.problems.report(
                            &type_path,
                            format!("unknown {block} type `{kind}`; expected one of {names}"),
                        );
                        None
                    }
                }
                Some(other) => {
                    self.problems.report(
                        &type_path,
                        format!(
                            "expected the {block} type as text ({names}), found {}",
                            describe(other)
                        ),
                    );
                    None
                }
            },
        };
        match chosen {
            Some(alternative) => {
                self.walk(alternative, value, path);
            }
            None => {
                self.problems.cover(path);
                if let Some((_, first)) = tags.first() {
                    *value = placeholder(self.schema, first, 0);
                }
            }
        }
    }
}

/// `` `a` ``, `` `a` or `b` ``, `` one of `a`, `b`, `c` ``.
fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    match quoted.as_slice() {
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        many => format!("one of {}", many.join(", ")),
    }
}

/// The known name that `written` most likely meant, if one is close enough to be a slip: the
/// same name in another case, one or two letters added, dropped, changed or swapped in a name
/// long enough for that to leave it recognisable, or a name that starts the same way and differs
/// little (`user` for `username`). The closest wins; on a tie, the first known.
fn suggest<'k>(written: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    let written = written.to_lowercase();
    let mut best: Option<(usize, f64, &'k str)> = None;
    for name in known {
        let lower = name.to_lowercase();
        let edits = strsim::osa_distance(&written, &lower);
        let similarity = strsim::jaro_winkler(&written, &lower);
        let longest = written.chars().count().max(lower.chars().count());
        let close = edits == 0 || (edits <= 2 && 3 * edits <= longest) || similarity > 0.85;
        let better = best.is_none_or(|(best_edits, best_similarity, _)| {
            (edits, -similarity) < (best_edits, -best_similarity)
        });
        if close && better {
            best = Some((edits, similarity, name));
        }
    }
    best.map(|(_, _, name)| name)
}

// ---- values --------------------------------------------------------------------------------

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

/// A place where the tree does not fit the model, in serde's words reworded.
#[derive(Debug)]
struct Mismatch {
    path: KeyPath,
    message: String,
}

/// Reads the tree, reporting and repairing one refused value a round.
fn read_values(mut tree: Value, problems: &mut Problems) -> Option<RawPipeline> {
    let mut repaired = HashSet::new();
    loop {
        problems.next_step();
        let mismatch = match first_mismatch(&tree) {
            Ok(pipeline) => return Some(pipeline),
            Err(mismatch) => mismatch,
        };
        if repaired.len() == MAX_VALUE_PROBLEMS {
            problems.note(
                &mismatch.path,
                format!(
                    "checking stopped here, after {MAX_VALUE_PROBLEMS} values that do not fit; \
                     correct those and validate again"
                ),
            );
            return None;
        }
        problems.report(&mismatch.path, mismatch.message);
        // A placeholder that does not read either: the model holds a rule the schema does not
        // show. What was reported stands; the rules of validate.rs are not run.
        if !repaired.insert(mismatch.path.clone()) || !repair(&mut tree, &mismatch.path) {
            return None;
        }
    }
}

fn first_mismatch(tree: &Value) -> Result<RawPipeline, Mismatch> {
    let root = KeyPath::root();
    for (block, types) in [("input", INPUT_TYPES), ("output", OUTPUT_TYPES)] {
        if let Some(Value::Object(map)) = tree.get(block)
            && let Some(Value::String(kind)) = map.get("type")
            && let Some((_, check)) = types.iter().find(|(name, _)| name == kind)
        {
            let mut rest = map.clone();
            rest.remove("type");
            check(Value::Object(rest), &root.key(block))?;
        }
    }
    deserialize(tree.clone(), &root)
}

/// Drops the value at `path` (an optional key then takes its default) or puts a placeholder in
/// its place; false when there is no way to.
fn repair(tree: &mut Value, path: &KeyPath) -> bool {
    let Some((schema, required)) = schema_at(tree, path) else {
        return false;
    };
    let replacement = placeholder(&MODEL, schema, 0);
    let Some((last, parent)) = path.segments().split_last() else {
        return false;
    };
    let Some(container) = value_at_mut(tree, parent) else {
        return false;
    };
    match (container, last) {
        (Value::Object(map), Segment::Key(key)) => {
            if required || !map.contains_key(key) {
                map.insert(key.clone(), replacement);
            } else {
                map.remove(key);
            }
            true
        }
        (Value::Array(items), Segment::Index(i)) => match items.get_mut(*i) {
            Some(item) => {
                *item = replacement;
                true
            }
            None => false,
        },
        _ => false,
    }
}

fn value_at_mut<'v>(tree: &'v mut Value, segments: &[Segment]) -> Option<&'v mut Value> {
    let mut value = tree;
    for segment in segments {
        value = match segment {
            Segment::Key(key) => value.get_mut(key.as_str())?,
            Segment::Index(i) => value.get_mut(*i)?,
        };
    }
    Some(value)
}

fn check_as<T: DeserializeOwned>(value: Value, path: &KeyPath) -> Result<(), Mismatch> {
    deserialize::<T>(value, path).map(drop)
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
    // In this order: `expected a map` must not meet the `expected a mapping: ` written for a
    // struct.
    for (from, to) in [
        ("invalid type: ", "wrong type: found "),
        ("invalid value: ", "wrong value: found "),
        ("expected a map", "expected a mapping"),
        ("expected struct ", "expected a mapping: "),
        ("expected u64", "expected a whole number of 0 or more"),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        ("expected u16", "expected a whole number from 0 to 65535"),
        ("expected usize", "expected a whole number of 0 or more"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected a list"),
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

// ---- reading the schema --------------------------------------------------------------------

/// How deep the schema readers below follow alternatives and references. The model nests a few
/// levels; the bound only guards against a recursive type added to it.
const SCHEMA_DEPTH: usize = 16;

/// `schema`, with its `$ref` followed.
fn resolve<'s>(root: &'s Value, mut schema: &'s Value) -> &'s Value {
    for _ in 0..SCHEMA_DEPTH {
        let target = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|reference| reference.strip_prefix("#/$defs/"))
            .and_then(|name| root.get("$defs")?.get(name));
        match target {
            Some(target) => schema = target,
            None => break,
        }
    }
    schema
}

fn alternatives(schema: &Value) -> Option<&Vec<Value>> {
    schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Value::as_array)
}

/// The names a value must be one of, when the schema is a set of names.
fn names<'s>(root: &'s Value, schema: &'s Value) -> Option<Vec<&'s str>> {
    let schema = resolve(root, schema);
    if let Some(name) = schema.get("const") {
        return Some(vec![name.as_str()?]);
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        return options.iter().map(Value::as_str).collect();
    }
    let mut all = Vec::new();
    for alternative in alternatives(schema)? {
        let alternative = resolve(root, alternative);
        all.push(alternative.get("const")?.as_str()?);
    }
    Some(all)
}

/// The alternatives of a block chosen by its `type`, by their `type`.
fn tags<'s>(root: &'s Value, schema: &'s Value) -> Option<Vec<(&'s str, &'s Value)>> {
    alternatives(schema)?
        .iter()
        .map(|alternative| {
            let alternative = resolve(root, alternative);
            let tag = alternative.get("properties")?.get("type")?.get("const")?;
            Some((tag.as_str()?, alternative))
        })
        .collect()
}

/// The alternative of `schema` that `value` is read with, with references followed; a set of
/// names stays whole.
fn narrow<'s>(root: &'s Value, schema: &'s Value, value: &Value) -> Option<&'s Value> {
    let mut schema = resolve(root, schema);
    for _ in 0..SCHEMA_DEPTH {
        if names(root, schema).is_some() {
            return Some(schema);
        }
        if let Some(tags) = tags(root, schema) {
            let kind = value.get("type")?.as_str()?;
            return tags
                .into_iter()
                .find(|(tag, _)| *tag == kind)
                .map(|(_, alternative)| alternative);
        }
        let Some(options) = alternatives(schema) else {
            return Some(schema);
        };
        schema = resolve(
            root,
            options
                .iter()
                .find(|option| admits(root, option, value, 0))?,
        );
    }
    None
}

/// Whether `schema` takes a value of the JSON kind of `value` (its contents aside).
fn admits(root: &Value, schema: &Value, value: &Value, depth: usize) -> bool {
    if depth > SCHEMA_DEPTH {
        return true;
    }
    let schema = resolve(root, schema);
    if let Some(name) = schema.get("const") {
        return std::mem::discriminant(name) == std::mem::discriminant(value);
    }
    if let Some(options) = alternatives(schema) {
        return options
            .iter()
            .any(|option| admits(root, option, value, depth + 1));
    }
    let is = |kind: &str| match kind {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    };
    match schema.get("type") {
        None => true,
        Some(Value::String(kind)) => is(kind),
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).any(is),
        Some(_) => true,
    }
}

/// A value that fits `schema`, standing in for one that was missing or refused. It is never
/// reported: it sits at a path that already was.
fn placeholder(root: &Value, schema: &Value, depth: usize) -> Value {
    let schema = resolve(root, schema);
    if depth > SCHEMA_DEPTH {
        return Value::Null;
    }
    if let Some(default) = schema.get("default") {
        return default.clone();
    }
    if let Some(name) = schema.get("const") {
        return name.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|options| options.first())
    {
        return first.clone();
    }
    if let Some(options) = alternatives(schema) {
        if options
            .iter()
            .any(|option| admits(root, option, &Value::Null, depth + 1))
        {
            return Value::Null;
        }
        return options
            .first()
            .map_or(Value::Null, |first| placeholder(root, first, depth + 1));
    }
    let kinds: Vec<&str> = match schema.get("type") {
        Some(Value::String(kind)) => vec![kind.as_str()],
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if kinds.contains(&"null") {
        return Value::Null;
    }
    let minimum = || schema.get("minimum").cloned().unwrap_or(Value::from(0));
    match kinds.first().copied() {
        Some("string") => Value::String(String::new()),
        Some("integer" | "number") => minimum(),
        Some("boolean") => Value::Bool(false),
        Some("array") => Value::Array(Vec::new()),
        Some("object") => {
            let mut map = Map::new();
            let properties = schema.get("properties");
            for key in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let property = properties.and_then(|p| p.get(key)).unwrap_or(&Value::Null);
                map.insert(key.to_owned(), placeholder(root, property, depth + 1));
            }
            Value::Object(map)
        }
        _ => Value::Null,
    }
}

/// The schema of the value at `path` of `tree`, and whether its key is required there (a list
/// item always is).
fn schema_at<'s>(tree: &Value, path: &KeyPath) -> Option<(&'s Value, bool)> {
    let root: &'s Value = &MODEL;
    let mut schema = root;
    let mut value = Some(tree);
    let mut required = true;
    for segment in path.segments() {
        let here = narrow(root, schema, value?)?;
        match segment {
            Segment::Key(key) => {
                required = here
                    .get("required")
                    .and_then(Value::as_array)
                    .is_some_and(|keys| keys.iter().any(|k| k.as_str() == Some(key)));
                schema = match here.get("properties").and_then(|p| p.get(key)) {
                    Some(property) => property,
                    None => here
                        .get("additionalProperties")
                        .filter(|other| other.is_object())?,
                };
                value = value.and_then(|v| v.get(key.as_str()));
            }
            Segment::Index(i) => {
                required = true;
                schema = here.get("items")?;
                value = value.and_then(|v| v.get(*i));
            }
        }
    }
    Some((schema, required))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_suggested_and_far_ones_are_not() {
        let keys = [
            "name",
            "version",
            "description",
            "tags",
            "input",
            "filters",
            "output",
        ];
        for (written, meant) in [
            ("nmae", Some("name")),
            ("Name", Some("name")),
            ("filter", Some("filters")),
            ("out", Some("output")),
            ("defaults", None),
            ("x", None),
        ] {
            assert_eq!(suggest(written, keys), meant, "{written}");
        }
        let credentials = [
            "key", "token", "username", "password", "tokenUrl", "clientId",
        ];
        assert_eq!(suggest("user", credentials), Some("username"));
        assert_eq!(suggest("tokenurl", credentials), Some("tokenUrl"));
        assert_eq!(suggest("secret", credentials), None);
        assert_eq!(
            suggest("timeout", ["timeoutMs", "timezone"]),
            Some("timeoutMs")
        );
        assert_eq!(suggest("limit", ["page", "offset", "cursor", "link"]), None);
        assert_eq!(suggest("ip", ["id"]), None);
    }

    #[test]
    fn a_later_step_is_silent_under_what_an_earlier_one_reported() {
        let input = KeyPath::root().key("input");
        let mut problems = Problems::default();
        problems.report(&input.key("timeoutMs"), "wrong type");
        problems.report(&input.key("timeoutMs"), "also reported: the same step");
        problems.next_step();
        problems.report(&input.key("timeoutMs"), "left out");
        problems.report(&input.key("endpoint"), "kept");
        let found: Vec<String> = problems.into_vec().into_iter().map(|(_, m)| m).collect();
        assert_eq!(
            found,
            ["wrong type", "also reported: the same step", "kept"]
        );
    }

    #[test]
    fn placeholders_fit_the_schema_of_every_required_key() {
        let input = resolve(&MODEL, &MODEL["properties"]["input"]);
        let first = tags(&MODEL, input).unwrap()[0].1;
        let block = placeholder(&MODEL, first, 0);
        assert_eq!(
            block,
            serde_json::json!({"type": "httpPolling", "endpoint": ""})
        );
        let tree = serde_json::json!({"name": "", "input": block, "output": {"type": "stdout"}});
        assert!(first_mismatch(&tree).is_ok());
        let mapping = placeholder(&MODEL, &MODEL["$defs"]["FieldMapping"], 0);
        assert_eq!(mapping, serde_json::json!({"target": ""}));
    }
}
