//! A record as the filters work on it: its top-level fields, each kept as the text the source
//! sent until a filter changes it.
//!
//! Building a whole `serde_json::Value` for every record (a hashed map, a string for every key
//! and every text value) and encoding all of it again cost far more than the filters, which
//! read and write a few fields. Here the record is read once into a list of its top-level
//! fields, each a slice of the record's text; a field is parsed when a filter first reads it,
//! and written back as it came unless a filter changed it. Key order is kept, and a key written
//! twice keeps its first place and its last value, as a parsed map would.
//!
//! A record that is not an object (rare: sources deliver objects) is parsed whole.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;

use cannectors_config::{FieldPath, Fields};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::target;

/// One record being filtered.
#[derive(Debug, Clone)]
pub(crate) enum Document<'a> {
    /// An object, by top-level field.
    Object(Object<'a>),
    /// Any other JSON value, parsed.
    Other(Value),
}

/// The top-level fields of an object record, in order, each name once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Object<'a> {
    fields: Vec<Field<'a>>,
}

#[derive(Debug, Clone)]
struct Field<'a> {
    name: Cow<'a, str>,
    /// The name is its own JSON text (read from the record without escapes), so it is written
    /// back as it is; a name from a filter's path is escaped when written.
    name_is_json: bool,
    slot: Slot<'a>,
}

/// Room for the fields of one record, kept from one record to the next so that reading a
/// record does not allocate its list of fields again.
#[derive(Debug, Default)]
pub(crate) struct Room(Vec<Field<'static>>);

/// The allocation of `fields`, emptied, for fields that borrow from another record. Collecting
/// an emptied vector into one of the same layout reuses its allocation.
// `filter` would keep the type: the point is to change the lifetime of the (absent) items.
#[allow(clippy::unnecessary_filter_map)]
fn emptied<'b>(mut fields: Vec<Field<'_>>) -> Vec<Field<'b>> {
    fields.clear();
    fields.into_iter().filter_map(|_| None).collect()
}

#[derive(Debug, Clone)]
enum Slot<'a> {
    /// As the source wrote it; `parsed` once a filter read it.
    Source {
        text: &'a str,
        parsed: OnceCell<Value>,
    },
    /// Written by a filter, or read to be changed.
    Changed(Value),
}

impl<'a> Document<'a> {
    /// Reads the record `text`, which is one valid JSON value, into `room`.
    pub(crate) fn parse(text: &'a str, room: Room) -> Result<Document<'a>, serde_json::Error> {
        if text.trim_start().starts_with('{') {
            let mut deserializer = serde_json::Deserializer::from_str(text);
            let fields = FieldsSeed(emptied(room.0)).deserialize(&mut deserializer)?;
            deserializer.end()?;
            Ok(Document::Object(Object { fields }.without_repeated_names()))
        } else {
            serde_json::from_str(text).map(Document::Other)
        }
    }

    /// Gives back the room this record's fields took, for the next record.
    pub(crate) fn into_room(self) -> Room {
        match self {
            Document::Object(object) => Room(emptied(object.fields)),
            Document::Other(_) => Room::default(),
        }
    }

    /// The value at `path`, if the record has one there.
    pub(crate) fn get(&self, path: &FieldPath) -> Result<Option<&Value>, String> {
        match self {
            Document::Object(object) => {
                let Some((first, rest)) = path.segments().split_first() else {
                    return Ok(None);
                };
                match object.position(first) {
                    Some(i) => Ok(target::get_at(object.fields[i].slot.parsed()?, rest)),
                    None => Ok(None),
                }
            }
            Document::Other(value) => Ok(path.get(value)),
        }
    }

    /// The text of the string at the top-level field `path` when the source wrote it without
    /// escapes and no filter changed it: read in place, without making a value of it.
    pub(crate) fn plain_text(&self, path: &FieldPath) -> Option<&'a str> {
        let Document::Object(object) = self else {
            return None;
        };
        let [name] = path.segments() else {
            return None;
        };
        let Slot::Source { text, .. } = object.fields[object.position(name)?].slot else {
            return None;
        };
        let inner = text.strip_prefix('"')?.strip_suffix('"')?;
        (!inner.contains('\\')).then_some(inner)
    }

    /// Writes `value` at `path`, creating objects on the way (see [`target::set`]). A new
    /// top-level field borrows its name from `path`.
    pub(crate) fn set(&mut self, path: &'a FieldPath, value: Value) -> Result<(), String> {
        match self {
            Document::Object(object) => {
                let Some((first, rest)) = path.segments().split_first() else {
                    return Ok(());
                };
                let i = match object.position(first) {
                    Some(i) => i,
                    None => {
                        object.fields.push(Field {
                            name: Cow::Borrowed(first),
                            name_is_json: false,
                            slot: Slot::Changed(Value::Null),
                        });
                        object.fields.len() - 1
                    }
                };
                let slot = &mut object.fields[i].slot;
                if rest.is_empty() {
                    *slot = Slot::Changed(value);
                } else {
                    target::set_at(slot.parsed_mut()?, rest, value);
                }
                Ok(())
            }
            Document::Other(record) => {
                target::set(record, path, value);
                Ok(())
            }
        }
    }

    /// Copies the top-level field `source` to the top-level field `target` as the text the
    /// source sent, when both are single names and `source` is a field no filter changed and
    /// not null; whether it did (otherwise nothing changed, and the caller copies by value).
    pub(crate) fn copy_text(&mut self, source: &FieldPath, target: &'a FieldPath) -> bool {
        let Document::Object(object) = self else {
            return false;
        };
        let ([source], [target]) = (source.segments(), target.segments()) else {
            return false;
        };
        let Some(from) = object.position(source) else {
            return false;
        };
        let Slot::Source { text, .. } = object.fields[from].slot else {
            return false;
        };
        if text == "null" {
            return false;
        }
        let slot = Slot::Source {
            text,
            parsed: OnceCell::new(),
        };
        match object.position(target) {
            Some(to) => object.fields[to].slot = slot,
            None => object.fields.push(Field {
                name: Cow::Borrowed(target.as_str()),
                name_is_json: false,
                slot,
            }),
        }
        true
    }

    /// Deletes what is at `path`; a path the record lacks is not an error.
    pub(crate) fn remove(&mut self, path: &FieldPath) -> Result<(), String> {
        match self {
            Document::Object(object) => {
                let Some((first, rest)) = path.segments().split_first() else {
                    return Ok(());
                };
                let Some(i) = object.position(first) else {
                    return Ok(());
                };
                if rest.is_empty() {
                    object.fields.remove(i);
                } else if target::get_at(object.fields[i].slot.parsed()?, rest).is_some() {
                    // Only a field that loses something is written again.
                    target::remove_at(object.fields[i].slot.parsed_mut()?, rest);
                }
                Ok(())
            }
            Document::Other(record) => {
                target::remove(record, path);
                Ok(())
            }
        }
    }

    /// Whether `expression` holds for this record's fields.
    pub(crate) fn holds(
        &self,
        expression: &cannectors_config::Expression,
    ) -> Result<bool, cannectors_config::EvaluationError> {
        match self {
            Document::Object(object) => expression.is_true_in(object),
            Document::Other(value) => expression.is_true(value),
        }
    }

    /// Appends the record as compact JSON text to `out`: the fields no filter changed as the
    /// source wrote them.
    pub(crate) fn write(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        let object = match self {
            Document::Object(object) => object,
            Document::Other(value) => return serde_json::to_writer(out, value),
        };
        out.push(b'{');
        for (i, field) in object.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if field.name_is_json {
                out.push(b'"');
                out.extend_from_slice(field.name.as_bytes());
                out.push(b'"');
            } else {
                serde_json::to_writer(&mut *out, field.name.as_ref())?;
            }
            out.push(b':');
            match &field.slot {
                Slot::Source { text, .. } => out.extend_from_slice(text.as_bytes()),
                Slot::Changed(value) => serde_json::to_writer(&mut *out, value)?,
            }
        }
        out.push(b'}');
        Ok(())
    }
}

impl<'a> Object<'a> {
    fn position(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|field| field.name == name)
    }

    /// The fields with each name once, at its first place with its last value, as a parsed
    /// map has them. Names are compared pairwise in a small object and sorted in a large one;
    /// the rebuild is only for the rare record that repeats a name.
    fn without_repeated_names(self) -> Object<'a> {
        let n = self.fields.len();
        let repeats = if n <= 16 {
            // Names compared by a fingerprint first: most pairs differ in it, and comparing
            // two numbers is cheaper than comparing two strings, on every record.
            let mut prints = [0u64; 16];
            for (print, field) in prints.iter_mut().zip(&self.fields) {
                *print = fingerprint(&field.name);
            }
            (1..n).any(|i| {
                (0..i).any(|j| prints[j] == prints[i] && self.fields[j].name == self.fields[i].name)
            })
        } else {
            let mut names: Vec<&str> = self.fields.iter().map(|f| f.name.as_ref()).collect();
            names.sort_unstable();
            names.windows(2).any(|pair| pair[0] == pair[1])
        };
        if !repeats {
            return self;
        }
        let mut kept = Object {
            fields: Vec::with_capacity(n),
        };
        for field in self.fields {
            match kept.position(&field.name) {
                Some(i) => kept.fields[i].slot = field.slot,
                None => kept.fields.push(field),
            }
        }
        kept
    }
}

/// The length of `name` and its last seven bytes: equal names have equal fingerprints.
fn fingerprint(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let tail = &bytes[bytes.len().saturating_sub(7)..];
    tail.iter()
        .enumerate()
        .fold((bytes.len() as u64) << 56, |print, (i, byte)| {
            print | u64::from(*byte) << (8 * i)
        })
}

impl Slot<'_> {
    /// The value, parsed on first use.
    fn parsed(&self) -> Result<&Value, String> {
        match self {
            Slot::Source { text, parsed } => {
                if let Some(value) = parsed.get() {
                    return Ok(value);
                }
                let value = parse_field(text)?;
                Ok(parsed.get_or_init(|| value))
            }
            Slot::Changed(value) => Ok(value),
        }
    }

    /// The value, to be changed: from now on it is written from the value, not the text.
    fn parsed_mut(&mut self) -> Result<&mut Value, String> {
        if let Slot::Source { text, parsed } = self {
            let value = match parsed.take() {
                Some(value) => value,
                None => parse_field(text)?,
            };
            *self = Slot::Changed(value);
        }
        match self {
            Slot::Changed(value) => Ok(value),
            // Made `Changed` just above.
            Slot::Source { .. } => Err("the field could not be changed".to_owned()),
        }
    }
}

/// A field's text as a value. The text is valid JSON (the record was read whole first); what
/// can still fail is nesting deeper than serde_json builds (128 levels).
fn parse_field(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|error| format!("a field cannot be read as JSON: {error}"))
}

impl Fields for Object<'_> {
    fn count(&self) -> usize {
        self.fields.len()
    }

    fn position(&self, name: &str) -> Option<usize> {
        Object::position(self, name)
    }

    fn value(&self, position: usize) -> Option<&Value> {
        self.fields.get(position)?.slot.parsed().ok()
    }

    fn for_each(&self, each: &mut dyn FnMut(&str, &Value)) {
        for field in &self.fields {
            if let Ok(value) = field.slot.parsed() {
                each(&field.name, value);
            }
        }
    }
}

/// A name as the JSON text has it: borrowed when it holds no escape.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(name)))
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(name.to_owned())))
            }

            fn visit_string<E: de::Error>(self, name: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(name)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// Reads the top-level fields of an object into the given (empty) vector.
struct FieldsSeed<'de>(Vec<Field<'de>>);

impl<'de> DeserializeSeed<'de> for FieldsSeed<'de> {
    type Value = Vec<Field<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldsSeed<'de> {
    type Value = Vec<Field<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut fields = self.0;
        while let Some(Name(name)) = map.next_key()? {
            let text: &'de RawValue = map.next_value()?;
            fields.push(Field {
                name_is_json: matches!(name, Cow::Borrowed(_)),
                name,
                slot: Slot::Source {
                    text: text.get(),
                    parsed: OnceCell::new(),
                },
            });
        }
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A path that outlives any document of a test, as a filter's paths outlive its records.
    fn path(text: &str) -> &'static FieldPath {
        Box::leak(Box::new(FieldPath::parse(text).unwrap()))
    }

    fn written(document: &Document<'_>) -> String {
        let mut out = Vec::new();
        document.write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fields_no_filter_changed_keep_the_text_the_source_sent() {
        let text =
            r#"{"a": 1.50, "b" : [1, 2], "c\u0041": "x\/y", "big": 12345678901234567890123}"#;
        let mut document = Document::parse(text, Room::default()).unwrap();
        assert_eq!(
            written(&document),
            r#"{"a":1.50,"b":[1, 2],"cA":"x\/y","big":12345678901234567890123}"#
        );
        document.set(path("z"), json!(true)).unwrap();
        document.set(path("b.x"), json!(1)).unwrap();
        assert_eq!(
            written(&document),
            r#"{"a":1.50,"b":{"x":1},"cA":"x\/y","big":12345678901234567890123,"z":true}"#
        );
    }

    #[test]
    fn a_repeated_name_keeps_its_first_place_and_its_last_value() {
        for text in [
            r#"{"z": 1, "a": 2, "z": 3}"#.to_owned(),
            // Past the pairwise comparison of small objects.
            format!(
                "{{\"z\": 1, {}, \"z\": 3}}",
                (0..20)
                    .map(|i| format!("\"k{i}\": {i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ] {
            let document = Document::parse(&text, Room::default()).unwrap();
            let expected: Value = serde_json::from_str(&text).unwrap();
            let out = written(&document);
            assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), expected);
            assert!(out.starts_with(r#"{"z":3,"#), "{out}");
            assert_eq!(out.matches("\"z\"").count(), 1, "{out}");
        }
    }

    #[test]
    fn get_remove_and_set_read_nested_fields() {
        let mut document = Document::parse(
            r#"{"a": {"b": {"c": 1}, "d": 2}, "e": null, "f": 3}"#,
            Room::default(),
        )
        .unwrap();
        assert_eq!(document.get(path("a.b.c")).unwrap(), Some(&json!(1)));
        assert_eq!(document.get(path("e")).unwrap(), Some(&Value::Null));
        assert_eq!(document.get(path("e.x")).unwrap(), None);
        assert_eq!(document.get(path("missing")).unwrap(), None);
        document.remove(path("a.b")).unwrap();
        document.remove(path("f")).unwrap();
        document.remove(path("missing.x")).unwrap();
        assert_eq!(written(&document), r#"{"a":{"d":2},"e":null}"#);
    }

    #[test]
    fn a_new_name_is_escaped_and_the_room_of_one_record_serves_the_next() {
        let mut document = Document::parse(r#"{"a": 1}"#, Room::default()).unwrap();
        document.set(path("say \"hi\""), json!(2)).unwrap();
        assert_eq!(written(&document), r#"{"a":1,"say \"hi\"":2}"#);
        let room = document.into_room();
        let next = Document::parse(r#"{"b": 3}"#, room).unwrap();
        assert_eq!(written(&next), r#"{"b":3}"#);
    }

    #[test]
    fn a_copy_between_top_level_fields_keeps_the_text() {
        let mut document = Document::parse(
            r#"{"a": 1.50, "n": null, "o": {"x": [1, 2]}}"#,
            Room::default(),
        )
        .unwrap();
        assert!(document.copy_text(path("a"), path("b")));
        assert!(document.copy_text(path("o"), path("a")));
        assert!(
            !document.copy_text(path("n"), path("c")),
            "null goes by value"
        );
        assert!(!document.copy_text(path("missing"), path("c")));
        assert!(!document.copy_text(path("o.x"), path("c")));
        assert!(!document.copy_text(path("a"), path("c.d")));
        assert_eq!(
            written(&document),
            r#"{"a":{"x": [1, 2]},"n":null,"o":{"x": [1, 2]},"b":1.50}"#
        );
    }

    #[test]
    fn plain_text_reads_strings_written_without_escapes() {
        let document = Document::parse(
            r#"{"a": "Ann", "b": "x\"y", "c": 1, "d": {"e": "f"}}"#,
            Room::default(),
        )
        .unwrap();
        assert_eq!(document.plain_text(path("a")), Some("Ann"));
        assert_eq!(document.plain_text(path("b")), None);
        assert_eq!(document.plain_text(path("c")), None);
        assert_eq!(document.plain_text(path("d.e")), None);
        assert_eq!(document.plain_text(path("z")), None);
    }

    #[test]
    fn fingerprints_of_equal_names_are_equal() {
        assert_eq!(fingerprint("customer_name"), fingerprint("customer_name"));
        assert_ne!(fingerprint("name"), fingerprint("names"));
        assert_ne!(fingerprint("ab"), fingerprint("ba"));
        assert_eq!(fingerprint(""), 0);
    }

    #[test]
    fn a_record_that_is_not_an_object_is_parsed_whole() {
        let mut document = Document::parse("[1, 2]", Room::default()).unwrap();
        assert_eq!(document.get(path("1")).unwrap(), Some(&json!(2)));
        document.set(path("a"), json!(1)).unwrap();
        assert_eq!(written(&document), r#"{"a":1}"#);
    }

    #[test]
    fn expressions_read_the_fields_they_name() {
        let document =
            Document::parse(r#"{"id": 20, "status": "active"}"#, Room::default()).unwrap();
        let expression = cannectors_config::Expression::compile(
            "id % 10 == 0 && status == 'active' && x == nil",
        )
        .unwrap();
        assert!(document.holds(&expression).unwrap());
    }

    #[test]
    fn a_field_nested_deeper_than_serde_json_builds_is_an_error_when_read() {
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let text = format!(r#"{{"deep": {deep}, "id": 1}}"#);
        let mut document = Document::parse(&text, Room::default()).unwrap();
        assert!(
            document
                .get(path("deep.0"))
                .unwrap_err()
                .starts_with("a field cannot be read as JSON: recursion limit exceeded")
        );
        // Left alone, it is written back as it came.
        document.set(path("id"), json!(2)).unwrap();
        assert_eq!(written(&document), format!(r#"{{"deep":{deep},"id":2}}"#));
    }
}
