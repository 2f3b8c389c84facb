//! Header and query values may be written as YAML numbers or booleans (`limit: 100`); they are
//! sent as text, so they are read as text here. The same goes for `version: 2`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

pub(crate) fn string_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, serde_json::Value>::deserialize(deserializer)?;
    raw.into_iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(text) => Ok((key, text)),
            serde_json::Value::Number(n) => Ok((key, n.to_string())),
            serde_json::Value::Bool(b) => Ok((key, b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "`{key}` must be a string, number or boolean, not {}",
                match other {
                    serde_json::Value::Null => "null",
                    serde_json::Value::Array(_) => "a list",
                    _ => "a mapping",
                }
            ))),
        })
        .collect()
}

/// `version: 2` is the text `2`; `version: 1.10` is refused, because YAML has already turned it
/// into the number 1.1 and the text the user wrote is lost.
pub(crate) fn version_text<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    match Option::<serde_json::Value>::deserialize(deserializer)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(text)) => Ok(Some(text)),
        Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(serde_json::Value::Number(n)) => Err(serde::de::Error::custom(format!(
            "YAML reads this version as the number {n}; quote it to keep what you wrote, e.g. \
             version: \"1.10\""
        ))),
        Some(_) => Err(serde::de::Error::custom(
            "a version is text, e.g. version: 1.0.0",
        )),
    }
}
