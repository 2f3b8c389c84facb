//! The JSON Schema of the pipeline file, generated from the file as written (the `Raw*` types)
//! so the two never disagree on a key, a type or a default.

use crate::model::RawPipeline;

/// The JSON Schema of the pipeline file, for editors and `cannectors schema`.
///
/// It describes keys, types and defaults; the rules that need more than one key (which
/// pagination settings go together, what a query binds) are checked by [`crate::load`] only.
///
/// ```
/// let schema = cannectors_config::json_schema();
/// assert_eq!(schema["title"], "Pipeline");
/// assert!(schema["properties"]["input"].is_object());
/// ```
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(RawPipeline).to_value()
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use serde_json::Value;

    use super::json_schema;
    use crate::document::{self, Format};

    #[test]
    fn schema_says_max_attempts_counts_retries_and_allows_zero() {
        let schema = json_schema();
        let max_attempts = &schema["$defs"]["RetryConfig"]["properties"]["maxAttempts"];
        assert_eq!(max_attempts["minimum"], 0, "{max_attempts}");
        assert_eq!(max_attempts["default"], 3, "{max_attempts}");
        let description = max_attempts["description"].as_str().unwrap();
        assert!(
            description.contains("Retries after the first attempt")
                && description.contains("0 = never retry"),
            "{description}"
        );
    }

    #[test]
    fn schema_is_json_and_names_every_top_level_key() {
        let schema = json_schema();
        let text = serde_json::to_string(&schema).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), schema);
        let mut keys: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "defaults",
                "description",
                "filters",
                "input",
                "name",
                "output",
                "tags",
                "version"
            ]
        );
        assert_eq!(
            schema["required"],
            serde_json::json!(["name", "input", "output"])
        );
        assert_eq!(schema["additionalProperties"], false);
        for name in [
            "httpPolling",
            "database",
            "stdout",
            "file",
            "httpRequest",
            "set",
            "remove",
            "mapping",
            "condition",
            "drop",
        ] {
            assert!(
                text.contains(&format!("\"const\":\"{name}\"")),
                "schema lacks {name}"
            );
        }
    }

    #[test]
    fn every_example_pipeline_passes_the_schema() {
        let schema = json_schema();
        let mut files = Vec::new();
        collect(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples"),
            &mut files,
        );
        assert!(files.iter().any(|f| f.ends_with("events-sync.yaml")));
        assert!(files.iter().any(|f| f.ends_with("database-events.yaml")));
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let tree = document::parse(&text, Format::of(&file.display().to_string()))
                .unwrap_or_else(|e| panic!("{}: {}", file.display(), e.message))
                .tree;
            let mut errors = Vec::new();
            check(&schema, &schema, &tree, "", &mut errors);
            assert!(errors.is_empty(), "{}: {errors:?}", file.display());
        }
    }

    #[test]
    fn the_schema_check_catches_an_unknown_key_and_a_wrong_type() {
        let schema = json_schema();
        let tree = serde_json::json!({
            "name": "a",
            "input": {"type": "httpPolling", "endpoint": "https://a.example.com", "timeoutMs": "x"},
            "output": {"type": "stdout", "extra": 1}
        });
        let mut errors = Vec::new();
        check(&schema, &schema, &tree, "", &mut errors);
        assert!(errors.iter().any(|e| e.starts_with("input")), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("output")), "{errors:?}");
    }

    fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                collect(&path, files);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "json") {
                files.push(path);
            }
        }
    }

    /// A small JSON Schema checker: the keywords schemars emits for this model ($ref, type,
    /// properties, required, additionalProperties, items, oneOf, anyOf, enum, const, minimum).
    fn check(root: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = reference.trim_start_matches("#/$defs/");
            check(root, &root["$defs"][name], value, at, errors);
        }
        if let Some(types) = schema.get("type") {
            let allowed: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !allowed.iter().any(|t| has_type(value, t)) {
                errors.push(format!("{at}: {value} is not of type {allowed:?}"));
                return;
            }
        }
        if let Some(expected) = schema.get("const")
            && value != expected
        {
            errors.push(format!("{at}: {value} is not {expected}"));
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array)
            && !options.contains(value)
        {
            errors.push(format!("{at}: {value} is not one of {options:?}"));
        }
        if let (Some(minimum), Some(number)) = (
            schema.get("minimum").and_then(Value::as_f64),
            value.as_f64(),
        ) && number < minimum
        {
            errors.push(format!("{at}: {number} is below {minimum}"));
        }
        for (keyword, exactly_one) in [("oneOf", true), ("anyOf", false)] {
            if let Some(options) = schema.get(keyword).and_then(Value::as_array) {
                let passing = options
                    .iter()
                    .filter(|option| {
                        let mut inner = Vec::new();
                        check(root, option, value, at, &mut inner);
                        inner.is_empty()
                    })
                    .count();
                if passing == 0 || (exactly_one && passing > 1) {
                    errors.push(format!("{at}: {passing} alternatives of {keyword} match"));
                }
            }
        }
        if let Some(object) = value.as_object() {
            let properties = schema.get("properties").and_then(Value::as_object);
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !object.contains_key(required.as_str().unwrap_or_default()) {
                    errors.push(format!("{at}: missing {required}"));
                }
            }
            for (key, item) in object {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                match properties.and_then(|p| p.get(key)) {
                    Some(property) => check(root, property, item, &path, errors),
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => errors.push(format!("{path}: not allowed")),
                        Some(extra @ Value::Object(_)) => check(root, extra, item, &path, errors),
                        _ => {}
                    },
                }
            }
        }
        if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
            for (i, item) in array.iter().enumerate() {
                check(root, items, item, &format!("{at}[{i}]"), errors);
            }
        }
    }

    fn has_type(value: &Value, kind: &str) -> bool {
        match kind {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        }
    }
}
