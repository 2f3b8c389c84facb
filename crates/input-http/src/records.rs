//! Finding the records in a response.
//!
//! The records are moved out of the parsed document, never cloned: a page of a thousand
//! records is parsed once and handed on as it is. What stays behind (totals, next cursors) is
//! what pagination reads.

use std::cell::RefCell;
use std::fmt;

use cannectors_config::FieldPath;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

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

/// Parses a response body into a `Value`, exactly as `serde_json::from_slice` does, but with
/// each object and array allocated at the size of the previous one at the same depth.
///
/// Pages hold records of one shape, and growing every record's map from empty (rehashing it
/// two or three times on the way) is the largest single cost of reading a page; sizing it from
/// its predecessor removes that. The numbers arrive as `i64`/`u64`/`f64` because the workspace
/// does not enable serde_json's `arbitrary_precision`.
pub(crate) fn parse_document(body: &[u8]) -> Result<Value, serde_json::Error> {
    let sizes = RefCell::new(Vec::new());
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = ValueSeed {
        sizes: &sizes,
        depth: 0,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Bounds on the sizes carried over, so that one huge object does not make every later one
/// at its depth allocate as much.
const MAX_MAP_HINT: usize = 64;
const MAX_ARRAY_HINT: usize = 4096;

/// The last object and array sizes seen at each depth.
type Sizes = RefCell<Vec<(usize, usize)>>;

#[derive(Clone, Copy)]
struct ValueSeed<'s> {
    sizes: &'s Sizes,
    depth: usize,
}

impl ValueSeed<'_> {
    fn hint(&self) -> (usize, usize) {
        self.sizes
            .borrow()
            .get(self.depth)
            .copied()
            .unwrap_or((0, 0))
    }

    fn remember(&self, update: impl FnOnce(&mut (usize, usize))) {
        let mut sizes = self.sizes.borrow_mut();
        if sizes.len() <= self.depth {
            sizes.resize(self.depth + 1, (0, 0));
        }
        update(&mut sizes[self.depth]);
    }

    fn child(&self) -> Self {
        ValueSeed {
            sizes: self.sizes,
            depth: self.depth + 1,
        }
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(self.hint().1);
        while let Some(item) = seq.next_element_seed(self.child())? {
            items.push(item);
        }
        self.remember(|(_, array)| *array = items.len().min(MAX_ARRAY_HINT));
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::with_capacity(self.hint().0);
        while let Some(key) = access.next_key::<String>()? {
            let value = access.next_value_seed(self.child())?;
            map.insert(key, value);
        }
        self.remember(|(object, _)| *object = map.len().min(MAX_MAP_HINT));
        Ok(Value::Object(map))
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
    fn parsing_gives_what_serde_json_gives() {
        let body = br#"{"total": 3, "items": [{"id": 1, "n": -2, "f": 1.5, "b": true,
            "z": null, "s": "x\u00e9\n", "tags": ["a", {"deep": [1, [2, []]]}]},
            {"id": 18446744073709551615, "n": -9223372036854775808, "e": 1e300, "o": {}},
            {"id": 3, "dup": 1, "dup": 2}]}"#;
        let ours = parse_document(body).unwrap();
        let theirs: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(ours.to_string(), theirs.to_string());
    }

    #[test]
    fn parsing_errors_are_serde_json_errors() {
        let error = parse_document(b"{\"a\": [1, 2} ").unwrap_err();
        assert_eq!(
            error.to_string(),
            serde_json::from_slice::<Value>(b"{\"a\": [1, 2} ")
                .unwrap_err()
                .to_string()
        );
        assert!(
            parse_document(b"[1] [2]")
                .unwrap_err()
                .to_string()
                .contains("trailing characters")
        );
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
