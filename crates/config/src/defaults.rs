//! The `defaults` block of the Go tool's pipeline files: `timeoutMs`, `onError` and `retry`
//! shared by the modules.
//!
//! As in that tool, a module's own key wins, and `retry` is taken whole: a module with a `retry`
//! block of its own (even one key of it) does not inherit any key of `defaults.retry`. The block
//! reaches the top-level modules that take each key: `timeoutMs` and `retry` the `httpPolling`
//! input and the `httpRequest` output; `onError` the top-level filters (not those inside a
//! `condition` branch, as in that tool), the `database` output, and the `httpRequest` output in
//! `requestMode: single`, the only mode where it means something.
//!
//! The values are copied into the modules before the file is read into settings, so every rule
//! of a module applies to what it inherits; a problem in an inherited value is reported at its
//! place in `defaults`.

use serde_json::{Map, Value};

use crate::decode::Problems;
use crate::document::KeyPath;

/// Which keys of `defaults` a module of type `kind` (`input` or `output` for `place`, or a
/// filter) takes.
fn inherits(place: Place, kind: &str, module: &Map<String, Value>) -> &'static [&'static str] {
    match (place, kind) {
        (Place::Input, "httpPolling") => &["timeoutMs", "retry"],
        (Place::Output, "httpRequest") => {
            let single = module.get("requestMode").and_then(Value::as_str) == Some("single");
            if single {
                &["timeoutMs", "retry", "onError"]
            } else {
                &["timeoutMs", "retry"]
            }
        }
        (Place::Output, "database") => &["onError"],
        (Place::Filter, _) => &["onError"],
        _ => &[],
    }
}

#[derive(Debug, Clone, Copy)]
enum Place {
    Input,
    Output,
    Filter,
}

/// Copies the keys of `defaults` into the modules of `tree` that take them and do not set them,
/// and tells `problems` to report a problem in a copied value at its place in `defaults`.
/// `defaults` itself stays, to be checked with the rest of the file.
pub(crate) fn apply(tree: &mut Value, problems: &mut Problems) {
    let Some(root) = tree.as_object_mut() else {
        return;
    };
    let Some(Value::Object(defaults)) = root.get("defaults").cloned() else {
        return;
    };
    let top = KeyPath::root();
    if let Some(input) = root.get_mut("input") {
        inherit(Place::Input, &top.key("input"), input, &defaults, problems);
    }
    if let Some(output) = root.get_mut("output") {
        inherit(
            Place::Output,
            &top.key("output"),
            output,
            &defaults,
            problems,
        );
    }
    if let Some(Value::Array(filters)) = root.get_mut("filters") {
        for (i, filter) in filters.iter_mut().enumerate() {
            let path = top.key("filters").index(i);
            inherit(Place::Filter, &path, filter, &defaults, problems);
        }
    }
}

/// Copies into `module` (at `path`) the keys of `defaults` it takes and does not set.
fn inherit(
    place: Place,
    path: &KeyPath,
    module: &mut Value,
    defaults: &Map<String, Value>,
    problems: &mut Problems,
) {
    let Value::Object(module) = module else {
        return;
    };
    let Some(kind) = module.get("type").and_then(Value::as_str) else {
        return;
    };
    for key in inherits(place, kind, module) {
        let Some(value) = defaults.get(*key) else {
            continue;
        };
        if module.contains_key(*key) {
            continue;
        }
        module.insert((*key).to_owned(), value.clone());
        problems.inherited(&path.key(key), &KeyPath::root().key("defaults").key(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn applied(mut tree: Value) -> Value {
        apply(&mut tree, &mut Problems::default());
        tree
    }

    #[test]
    fn module_keys_win_and_retry_is_taken_whole() {
        let tree = applied(json!({
            "defaults": {"timeoutMs": 15000, "onError": "log", "retry": {"maxAttempts": 2, "delayMs": 1000}},
            "input": {"type": "httpPolling", "timeoutMs": 5000},
            "filters": [
                {"type": "mapping", "onError": "skip"},
                {"type": "set"},
                {"type": "condition", "then": [{"type": "set"}]}
            ],
            "output": {"type": "httpRequest", "retry": {"maxAttempts": 4}}
        }));
        assert_eq!(tree["input"]["timeoutMs"], 5000);
        assert_eq!(
            tree["input"]["retry"],
            json!({"maxAttempts": 2, "delayMs": 1000})
        );
        assert_eq!(tree["filters"][0]["onError"], "skip");
        assert_eq!(tree["filters"][1]["onError"], "log");
        assert_eq!(tree["filters"][2]["onError"], "log");
        assert_eq!(tree["filters"][2]["then"][0].get("onError"), None);
        assert_eq!(tree["output"]["retry"], json!({"maxAttempts": 4}));
        assert_eq!(tree["output"]["timeoutMs"], 15000);
        // Batch mode, where onError means nothing.
        assert_eq!(tree["output"].get("onError"), None);
    }

    #[test]
    fn modules_that_do_not_take_a_key_are_left_alone() {
        let tree = applied(json!({
            "defaults": {"timeoutMs": 15000, "onError": "skip", "retry": {"maxAttempts": 1}},
            "input": {"type": "database"},
            "output": {"type": "database"}
        }));
        assert_eq!(tree["input"], json!({"type": "database"}));
        assert_eq!(
            tree["output"],
            json!({"type": "database", "onError": "skip"})
        );
        let single = applied(json!({
            "defaults": {"onError": "log"},
            "output": {"type": "httpRequest", "requestMode": "single"}
        }));
        assert_eq!(single["output"]["onError"], "log");
        let file = applied(json!({
            "defaults": {"onError": "log", "timeoutMs": 1},
            "output": {"type": "file", "path": "out.jsonl"}
        }));
        assert_eq!(file["output"], json!({"type": "file", "path": "out.jsonl"}));
    }
}
