//! The kind of a JSON value, named the same way in every message of every crate.

use serde_json::Value;

/// What kind of JSON value `value` is, as a message says it: `null`, `a boolean`, `a number`,
/// `a string`, `an array`, `an object`.
///
/// ```
/// use cannectors_state::json_kind;
/// use serde_json::json;
///
/// assert_eq!(json_kind(&json!([1, 2])), "an array");
/// assert_eq!(format!("`data` holds {}", json_kind(&json!(null))), "`data` holds null");
/// ```
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
