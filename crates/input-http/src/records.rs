//! Finding the records in a response.
//!
//! The records are moved out of the parsed document, never cloned: a page of a thousand
//! records is parsed once and handed on as it is. What stays behind (totals, next cursors) is
//! what pagination reads.

use cannectors_config::FieldPath;
use serde_json::Value;

use crate::pagination::describe;

/// Keys looked at, in order, when no `dataField` is set and the response is an object.
const ARRAY_KEYS: [&str; 4] = ["data", "items", "results", "records"];

/// Why a response holds no records where they were expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Missing {
    /// `dataField` is not in the response.
    NoSuchPath,
    /// `dataField` holds something else than an array.
    NotAnArray(&'static str),
    /// The response is neither an object nor an array.
    NotRecords(&'static str),
}

/// Takes the records out of `document`.
///
/// With `data_field`, the array at that path. Without it: the root when it is an array, else
/// the first of `data`, `items`, `results`, `records` that holds an array, else the whole
/// object as one record.
pub(crate) fn take_records(
    document: &mut Value,
    data_field: Option<&FieldPath>,
) -> Result<Vec<Value>, Missing> {
    if let Some(path) = data_field {
        if path.get(document).is_none() {
            return Err(Missing::NoSuchPath);
        }
        return match path.take(document) {
            Some(Value::Array(records)) => Ok(records),
            Some(other) => {
                let found = describe(&other);
                // Put it back: the document is still read for pagination fields.
                if let Some(slot) = path_slot(document, path) {
                    *slot = other;
                }
                Err(Missing::NotAnArray(found))
            }
            None => Err(Missing::NoSuchPath),
        };
    }
    match document {
        Value::Array(records) => Ok(std::mem::take(records)),
        Value::Object(map) => {
            for key in ARRAY_KEYS {
                if let Some(Value::Array(records)) = map.get_mut(key) {
                    return Ok(std::mem::take(records));
                }
            }
            Ok(vec![document.clone()])
        }
        other => Err(Missing::NotRecords(describe(other))),
    }
}

fn path_slot<'v>(document: &'v mut Value, path: &FieldPath) -> Option<&'v mut Value> {
    path.as_str()
        .split('.')
        .try_fold(document, |current, segment| match current {
            Value::Object(map) => map.get_mut(segment),
            Value::Array(items) => items.get_mut(segment.parse::<usize>().ok()?),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn take(mut document: Value, path: Option<&str>) -> Result<Vec<Value>, Missing> {
        let path = path.map(|p| FieldPath::parse(p).unwrap());
        take_records(&mut document, path.as_ref())
    }

    #[test]
    fn a_root_array_is_the_records() {
        assert_eq!(take(json!([{"id": 1}, {"id": 2}]), None).unwrap().len(), 2);
    }

    #[test]
    fn the_first_known_key_holding_an_array_is_the_records() {
        let document = json!({"data": {"not": "array"}, "items": [{"id": 1}], "results": [1, 2]});
        assert_eq!(take(document, None).unwrap(), vec![json!({"id": 1})]);
    }

    #[test]
    fn an_object_without_a_known_array_is_one_record() {
        let document = json!({"id": 7, "name": "x"});
        assert_eq!(take(document.clone(), None).unwrap(), vec![document]);
    }

    #[test]
    fn data_field_reads_a_nested_array_and_leaves_the_rest() {
        let mut document = json!({"result": {"events": [{"id": 1}]}, "next": "c2"});
        let path = FieldPath::parse("result.events").unwrap();
        let records = take_records(&mut document, Some(&path)).unwrap();
        assert_eq!(records, vec![json!({"id": 1})]);
        assert_eq!(document["next"], json!("c2"));
    }

    #[test]
    fn data_field_errors_tell_missing_from_not_an_array() {
        assert_eq!(
            take(json!({"a": 1}), Some("events")),
            Err(Missing::NoSuchPath)
        );
        assert_eq!(
            take(json!({"events": {"x": 1}}), Some("events")),
            Err(Missing::NotAnArray("an object"))
        );
        assert_eq!(
            take(json!({"events": null}), Some("events")),
            Err(Missing::NotAnArray("null"))
        );
        assert_eq!(
            take(json!("text"), None),
            Err(Missing::NotRecords("a string"))
        );
    }
}
