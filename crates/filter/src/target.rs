//! Writing and deleting at a dot path of a record, as `set`, `remove` and `mapping` do.
//!
//! As in the Go tool, a write never fails: the objects on the way are created, and a value on
//! the way that is not an object (nor a list indexed by a number it has) is replaced by one.

use cannectors_config::FieldPath;
use serde_json::{Map, Value};

/// Writes `value` at `path` in `record`, replacing what was there.
pub(crate) fn set(record: &mut Value, path: &FieldPath, value: Value) {
    set_at(record, path.segments(), value);
}

/// Writes `value` at the path made of `segments` under `record`.
pub(crate) fn set_at(record: &mut Value, segments: &[String], value: Value) {
    let mut current = record;
    for segment in segments {
        current = step_or_create(current, segment);
    }
    *current = value;
}

/// The value at the path made of `segments` under `value`, if every step exists.
pub(crate) fn get_at<'v>(value: &'v Value, segments: &[String]) -> Option<&'v Value> {
    segments
        .iter()
        .try_fold(value, |current, segment| match current {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

/// The value at `segment` under `current`, created (as null) when absent; `current` becomes
/// an object first when it is neither an object nor a list that has that index.
fn step_or_create<'v>(current: &'v mut Value, segment: &str) -> &'v mut Value {
    let index = match &*current {
        Value::Array(items) => segment.parse::<usize>().ok().filter(|i| *i < items.len()),
        _ => None,
    };
    if index.is_none() && !current.is_object() {
        *current = Value::Object(Map::new());
    }
    match (current, index) {
        (Value::Array(items), Some(i)) => &mut items[i],
        (Value::Object(map), _) => map.entry(segment.to_owned()).or_insert(Value::Null),
        // Neither: made an object just above.
        (other, _) => other,
    }
}

/// Deletes what is at `path` in `record`; a path the record lacks is not an error. An item of
/// a list is removed from it.
pub(crate) fn remove(record: &mut Value, path: &FieldPath) {
    remove_at(record, path.segments());
}

/// Deletes what is at the path made of `segments` under `record`.
pub(crate) fn remove_at(record: &mut Value, segments: &[String]) {
    let Some((last, parents)) = segments.split_last() else {
        return;
    };
    let mut current = record;
    for segment in parents {
        current = match current {
            Value::Object(map) => match map.get_mut(segment) {
                Some(next) => next,
                None => return,
            },
            Value::Array(items) => {
                match segment.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(next) => next,
                    None => return,
                }
            }
            _ => return,
        };
    }
    match current {
        Value::Object(map) => {
            map.shift_remove(last);
        }
        Value::Array(items) => {
            if let Some(i) = last.parse::<usize>().ok().filter(|i| *i < items.len()) {
                items.remove(i);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(text: &str) -> FieldPath {
        FieldPath::parse(text).unwrap()
    }

    #[test]
    fn set_creates_objects_on_the_way_and_overwrites() {
        let mut record = json!({"a": 1});
        set(&mut record, &path("meta.source.name"), json!("crm"));
        set(&mut record, &path("a"), json!({"x": true}));
        assert_eq!(
            record,
            json!({"a": {"x": true}, "meta": {"source": {"name": "crm"}}})
        );
    }

    #[test]
    fn set_replaces_a_value_on_the_way_that_is_not_an_object() {
        let mut record = json!({"a": "text", "items": [{"id": 1}]});
        set(&mut record, &path("a.b"), json!(2));
        set(&mut record, &path("items.0.id"), json!(9));
        set(&mut record, &path("items.5"), json!(0));
        assert_eq!(record, json!({"a": {"b": 2}, "items": {"5": 0}}));
    }

    #[test]
    fn set_on_a_list_index_it_has() {
        let mut record = json!({"items": [{"id": 1}, {"id": 2}]});
        set(&mut record, &path("items.1.id"), json!(9));
        assert_eq!(record, json!({"items": [{"id": 1}, {"id": 9}]}));
    }

    #[test]
    fn remove_deletes_nested_keys_and_ignores_absent_paths() {
        let mut record = json!({"a": {"b": 1, "c": 2}, "d": [1, 2, 3], "e": "x"});
        remove(&mut record, &path("a.b"));
        remove(&mut record, &path("d.1"));
        remove(&mut record, &path("missing.x"));
        remove(&mut record, &path("e.x"));
        remove(&mut record, &path("d.9"));
        assert_eq!(record, json!({"a": {"c": 2}, "d": [1, 3], "e": "x"}));
    }

    #[test]
    fn remove_keeps_the_order_of_the_other_keys() {
        let mut record = json!({"z": 1, "y": 2, "x": 3});
        remove(&mut record, &path("z"));
        assert_eq!(serde_json::to_string(&record).unwrap(), r#"{"y":2,"x":3}"#);
    }
}
