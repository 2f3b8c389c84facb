//! Dot paths into JSON documents: `event.timestamp`, `data.items`, `items.0.id`.
//!
//! Cursor fields are written as such paths; programs built on this crate use the same type for
//! every other path into a record, so that all of them read a record the same way.

use std::fmt;

/// A parsed dot path. A segment that is a number also indexes an array.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath {
    text: String,
    segments: Vec<String>,
}

/// Why a path did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a dot path: write names separated by single dots, such as `event.id`")]
pub struct FieldPathError(String);

impl FieldPathError {
    /// The text that is not a path, as it was given.
    pub fn text(&self) -> &str {
        &self.0
    }
}

impl FieldPath {
    /// Parses `a.b.c`.
    ///
    /// ```
    /// use cannectors_state::FieldPath;
    /// let path = FieldPath::parse("event.id").unwrap();
    /// let record = serde_json::json!({"event": {"id": 7}});
    /// assert_eq!(path.get(&record), Some(&serde_json::json!(7)));
    /// ```
    pub fn parse(text: &str) -> Result<FieldPath, FieldPathError> {
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.split('.').any(str::is_empty) {
            return Err(FieldPathError(text.to_owned()));
        }
        Ok(FieldPath {
            text: trimmed.to_owned(),
            segments: trimmed.split('.').map(str::to_owned).collect(),
        })
    }

    /// The value at this path, if every step exists.
    pub fn get<'v>(&self, value: &'v serde_json::Value) -> Option<&'v serde_json::Value> {
        self.segments
            .iter()
            .try_fold(value, |current, segment| match current {
                serde_json::Value::Object(map) => map.get(segment),
                serde_json::Value::Array(items) => {
                    segment.parse::<usize>().ok().and_then(|i| items.get(i))
                }
                _ => None,
            })
    }

    /// Takes the value at this path out of `value`, leaving null in its place.
    pub fn take(&self, value: &mut serde_json::Value) -> Option<serde_json::Value> {
        let mut current = value;
        for segment in &self.segments {
            current = match current {
                serde_json::Value::Object(map) => map.get_mut(segment)?,
                serde_json::Value::Array(items) => items.get_mut(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(current.take())
    }

    /// The names of the path, in order (`event.id`: `event`, `id`).
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for FieldPath {
    type Err = FieldPathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldPath::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_nested_objects_and_array_indexes() {
        let doc = json!({"a": {"items": [{"id": 1}, {"id": 2}]}});
        assert_eq!(
            FieldPath::parse("a.items.1.id").unwrap().get(&doc),
            Some(&json!(2))
        );
        assert_eq!(FieldPath::parse("a.missing").unwrap().get(&doc), None);
    }

    #[test]
    fn rejects_empty_segments() {
        assert!(FieldPath::parse("a..b").is_err());
        assert!(FieldPath::parse("").is_err());
        assert!(FieldPath::parse(".a").is_err());
    }
}
