//! The pipeline file is outside input: whatever its bytes, loading it ends in a pipeline or an
//! error, never a panic, and in a bounded time. Checked on arbitrary text, on the example
//! pipelines with random edits of their text (so that the parsers get deep), and on the example
//! pipelines with random values changed, written as YAML and JSON (so that the checks behind the
//! parsers run).

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test by panicking"
)]

use std::time::{Duration, Instant};

use cannectors_config::{ConfigError, parse_str};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Far above what any of these inputs needs (a few milliseconds); a parser that takes longer
/// has found a way to spend time out of proportion to the text.
const BOUND: Duration = Duration::from_secs(2);

/// Every variable is set (as the examples need) except `UNSET`; `EMPTY` is empty.
fn env(name: &str) -> Option<String> {
    match name {
        "UNSET" => None,
        "EMPTY" => Some(String::new()),
        name if name.ends_with("DATABASE_URL") => {
            Some("postgres://user:pw@127.0.0.1:5432/app".to_owned())
        }
        _ => Some("value-from-env".to_owned()),
    }
}

/// Loads `text` as the file `origin`, checking the outcome is well formed and timely.
fn check(text: &str, origin: &str) -> Result<(), TestCaseError> {
    let started = Instant::now();
    let outcome = parse_str(text, origin, &env);
    let elapsed = started.elapsed();
    prop_assert!(
        elapsed < BOUND,
        "loading took {elapsed:?}: {:?}",
        excerpt(text)
    );
    if let Err(error) = outcome {
        let message = error.to_string();
        prop_assert!(!message.is_empty());
        prop_assert!(message.starts_with(origin), "{message}");
        match &error {
            ConfigError::Invalid { problems, .. } => prop_assert!(!problems.is_empty()),
            ConfigError::Parse { .. } => prop_assert!(error.is_parse_error()),
            ConfigError::Read { .. } => prop_assert!(false, "no file was read"),
        }
    }
    Ok(())
}

fn excerpt(text: &str) -> String {
    text.chars().take(300).collect()
}

const EXAMPLES: [(&str, &str); 6] = [
    (
        "events-sync.yaml",
        include_str!("../../../examples/events-sync.yaml"),
    ),
    (
        "events-sync.json",
        include_str!("../../../examples/events-sync.json"),
    ),
    (
        "database-events.yaml",
        include_str!("../../../examples/database-events.yaml"),
    ),
    (
        "orders-to-crm.yaml",
        include_str!("../../../examples/orders-to-crm.yaml"),
    ),
    (
        "customers-replica.yaml",
        include_str!("../../../examples/customers-replica.yaml"),
    ),
    (
        "tickets-to-file.yaml",
        include_str!("../../../examples/tickets-to-file.yaml"),
    ),
];

/// Pieces of YAML and JSON syntax, and of the values the validation reads.
const PIECES: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    ":",
    ": ",
    "- ",
    ",",
    "\n",
    "\n  ",
    "  ",
    "\t",
    "#",
    "'",
    "\"",
    "\\",
    "*a",
    "&a ",
    "<<: *a\n",
    "!tag ",
    "!!str ",
    "|\n",
    ">-\n",
    "? ",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "~",
    "null",
    "true",
    ".inf",
    ".nan",
    "-1",
    "0",
    "1e400",
    "18446744073709551616",
    "0x1F",
    "${SET}",
    "${UNSET}",
    "${EMPTY:-d}",
    "${",
    "}}",
    "{{state.id}}",
    "{{state.timestamp}}",
    "{{record.id}}",
    "{{window.end}}",
    "$1",
    "$99",
    "'",
    "\u{feff}",
    "\r\n",
    "\u{0}",
    "é",
    "http://",
    "https://127.0.0.1:0/x",
    "postgres://",
    "sqlite://",
    "*/5 * * * *",
    "a..b",
    "type: ",
    "httpPolling",
    "database",
    "stdout",
    "file",
    "httpRequest",
    "pagination: ",
    "statePersistence: ",
    "timestamp: ",
    "id: ",
    "field: ",
    "queryParam: ",
    "enabled: ",
    "schedule: ",
    "dataField: ",
    "query: ",
    "parameters: ",
    "retry: ",
    "authentication: ",
    "[[[[[[[[[[[[[[[[",
    "{a: {a: {a: {a: ",
    "- - - - - - - - ",
    "]]]]]]]]",
    "}}}}}}}}",
];

/// One edit of a text: insert a piece, delete a span, or repeat a span.
#[derive(Debug, Clone)]
enum Edit {
    Insert(prop::sample::Index, &'static str),
    Delete(prop::sample::Index, usize),
    Repeat(prop::sample::Index, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), prop::sample::select(PIECES)).prop_map(|(at, piece)| Edit::Insert(at, piece)),
        2 => (any::<prop::sample::Index>(), 1_usize..40).prop_map(|(at, len)| Edit::Delete(at, len)),
        1 => (any::<prop::sample::Index>(), 1_usize..40, 2_usize..50).prop_map(|(at, len, times)| Edit::Repeat(at, len, times)),
    ]
}

/// The character boundary at or before `index` of `text`.
fn boundary(text: &str, at: &prop::sample::Index) -> usize {
    let mut index = at.index(text.len() + 1);
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut text = text.to_owned();
    for edit in edits {
        match edit {
            Edit::Insert(at, piece) => {
                let at = boundary(&text, at);
                text.insert_str(at, piece);
            }
            Edit::Delete(at, len) => {
                let start = boundary(&text, at);
                let mut end = (start + len).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.replace_range(start..end, "");
            }
            Edit::Repeat(at, len, times) => {
                let start = boundary(&text, at);
                let mut end = (start + len).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                let span = text[start..end].repeat(*times);
                text.insert_str(start, &span);
            }
        }
    }
    text
}

/// The keys of a pipeline, and a few that are not.
const KEYS: &[&str] = &[
    "name",
    "input",
    "output",
    "filters",
    "type",
    "endpoint",
    "method",
    "headers",
    "queryParams",
    "body",
    "dataField",
    "timeoutMs",
    "schedule",
    "timezone",
    "authentication",
    "credentials",
    "token",
    "retry",
    "maxAttempts",
    "pagination",
    "param",
    "limit",
    "statePersistence",
    "timestamp",
    "id",
    "offset",
    "field",
    "queryParam",
    "enabled",
    "format",
    "storagePath",
    "connectionString",
    "connectionStringRef",
    "query",
    "queryFile",
    "parameters",
    "path",
    "requestMode",
    "batchSize",
    "success",
    "statusCodes",
    "expression",
    "target",
    "value",
    "<<",
    "unknown",
    "",
];

const WORDS: &[&str] = &[
    "httpPolling",
    "database",
    "stdout",
    "file",
    "httpRequest",
    "bearer",
    "oauth2",
    "offset",
    "page",
    "cursor",
    "link",
    "GET",
    "POST",
    "https://api.example.com/x",
    "sqlite://x.db",
    "postgres://127.0.0.1/db",
    "select $1",
    "event.id",
    "a..b",
    "rfc3339",
    "unix",
    "%Y",
    "*/5 * * * *",
    "0 0 * * * * *",
    "${SET}",
    "${UNSET}",
    "{{state.id}}",
    "state.id",
    "events",
    "Europe/Paris",
    "Mars/Base",
    "-",
    "",
];

/// A value the validation may not expect where it lands.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-3_i64..1000).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(WORDS).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        Just(Value::Array(Vec::new())),
        Just(Value::Object(Map::new())),
    ]
}

/// One change to a parsed pipeline, at the node the index picks.
#[derive(Debug, Clone)]
enum Change {
    Replace(prop::sample::Index, Value),
    Remove(prop::sample::Index),
    Add(prop::sample::Index, &'static str, Value),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (any::<prop::sample::Index>(), leaf()).prop_map(|(at, value)| Change::Replace(at, value)),
        any::<prop::sample::Index>().prop_map(Change::Remove),
        (
            any::<prop::sample::Index>(),
            prop::sample::select(KEYS),
            leaf()
        )
            .prop_map(|(at, key, value)| Change::Add(at, key, value)),
    ]
}

fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(map) => map.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// The node numbered `n` in depth-first order, the root being 0.
fn nth_node<'v>(value: &'v mut Value, n: &mut usize) -> Option<&'v mut Value> {
    if *n == 0 {
        return Some(value);
    }
    *n -= 1;
    match value {
        Value::Array(items) => items.iter_mut().find_map(|item| nth_node(item, n)),
        Value::Object(map) => map.values_mut().find_map(|item| nth_node(item, n)),
        _ => None,
    }
}

fn apply_change(tree: &mut Value, change: &Change) {
    match change {
        Change::Replace(at, value) => {
            let mut n = at.index(count_nodes(tree));
            if let Some(node) = nth_node(tree, &mut n) {
                *node = value.clone();
            }
        }
        Change::Remove(at) => {
            let mut n = at.index(count_nodes(tree));
            if let Some(Value::Object(map)) = nth_node(tree, &mut n) {
                let key = map.keys().next().cloned();
                if let Some(key) = key {
                    map.remove(&key);
                }
            }
        }
        Change::Add(at, key, value) => {
            let mut n = at.index(count_nodes(tree));
            match nth_node(tree, &mut n) {
                Some(Value::Object(map)) => {
                    map.insert((*key).to_owned(), value.clone());
                }
                Some(Value::Array(items)) => items.push(value.clone()),
                _ => {}
            }
        }
    }
}

/// The example pipelines as trees, changed in a few places, so that most of a tree is still a
/// pipeline and the checks behind the parser run on what is wrong.
fn changed_example() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(&EXAMPLES[..]),
        prop::collection::vec(change(), 1..4),
    )
        .prop_map(|((file, text), changes)| {
            let mut tree: Value = if file.ends_with(".json") {
                serde_json::from_str(text).unwrap()
            } else {
                serde_yaml::from_str(text).unwrap()
            };
            for change in &changes {
                apply_change(&mut tree, change);
            }
            tree
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_text_loads_or_fails_cleanly(text in any::<String>()) {
        check(&text, "pipeline.yaml")?;
        check(&text, "pipeline.json")?;
    }

    #[test]
    fn arbitrary_bytes_read_as_text_load_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        check(&text, "pipeline.yaml")?;
        check(&text, "pipeline.json")?;
    }

    #[test]
    fn edited_example_pipelines_load_or_fail_cleanly(
        example in prop::sample::select(&EXAMPLES[..]),
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        let (file, text) = example;
        let origin = format!("{}/../../examples/{file}", env!("CARGO_MANIFEST_DIR"));
        check(&apply(text, &edits), &origin)?;
    }

    #[test]
    fn changed_example_pipelines_load_or_fail_cleanly(tree in changed_example()) {
        check(&serde_yaml::to_string(&tree).unwrap(), "pipeline.yaml")?;
        check(&serde_json::to_string_pretty(&tree).unwrap(), "pipeline.json")?;
    }
}

#[test]
fn the_examples_still_load_before_any_edit() {
    for (file, text) in EXAMPLES {
        let origin = format!("{}/../../examples/{file}", env!("CARGO_MANIFEST_DIR"));
        assert!(parse_str(text, &origin, &env).is_ok(), "{file}");
    }
}
