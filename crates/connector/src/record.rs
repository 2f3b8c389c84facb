//! One record as JSON text.
//!
//! Records travel from the source to the sink as the text the source sent, not as a tree of
//! maps: a page of records is parsed once to find where each record starts and ends, and the
//! file and stdout outputs write those bytes as they came. Building a `serde_json::Value` for
//! every record (a map, a string per key and per value) and encoding it again was most of the
//! CPU time of a run. Numbers keep every digit the source wrote, and key order and duplicates
//! are kept too. A sink that needs the fields (a URL template, database columns) parses the
//! record with [`Record::to_value`].

use std::fmt;

use serde_json::Value;
use serde_json::value::RawValue;

/// One record: a JSON value (an object, as sources deliver them) held as compact-enough JSON
/// text to be one line of JSON Lines: it never holds a line break.
///
/// ```
/// use cannectors_connector::Record;
/// use serde_json::json;
///
/// let record = Record::parse("{\"id\": 7,\n \"amount\": 12.50}").unwrap();
/// assert_eq!(record.json(), "{\"id\": 7, \"amount\": 12.50}");
/// assert_eq!(record.to_value().unwrap(), json!({"id": 7, "amount": 12.5}));
/// assert_eq!(Record::from(json!({"id": 7})).json(), "{\"id\":7}");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Record(Box<str>);

impl Record {
    /// A record from JSON text; an error when the text is not one JSON value.
    pub fn parse(text: &str) -> Result<Record, serde_json::Error> {
        let raw: Box<RawValue> = serde_json::from_str(text)?;
        Ok(Record::from_raw(raw))
    }

    /// A record from a JSON value found by a parser (which checked it is valid JSON).
    pub fn from_raw(raw: Box<RawValue>) -> Record {
        Record::from_valid_json(raw.into())
    }

    /// A record from JSON text a JSON encoder wrote (a database row written field by field,
    /// say). Nothing checks that it is JSON: the caller vouches for it, as for the output of
    /// `serde_json::to_string`. Line breaks are dropped as [`Record::parse`] drops them.
    pub fn from_encoded(text: String) -> Record {
        Record::from_valid_json(text.into_boxed_str())
    }

    /// A record from JSON text its writer knows to be one valid JSON value without a line break
    /// (`\n` or `\r`): a decoder that wrote no whitespace, or a parser that saw none between
    /// the tokens (a JSON string cannot hold a raw line break). Nothing is checked, so the text
    /// is not read a second time; use [`Record::from_encoded`] when line breaks may be there.
    ///
    /// ```
    /// use cannectors_connector::Record;
    ///
    /// let record = Record::from_json_line(r#"{"id":7,"note":"a\nb"}"#.to_owned());
    /// assert_eq!(record.json(), r#"{"id":7,"note":"a\nb"}"#);
    /// ```
    pub fn from_json_line(text: String) -> Record {
        debug_assert!(
            memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_none(),
            "a record's text holds a line break: {text}"
        );
        Record(text.into_boxed_str())
    }

    /// A record from text that is one valid JSON value. Line breaks outside strings are dropped
    /// so that the record fits on one line (a JSON string cannot hold a raw line break, and no
    /// two JSON tokens need one between them).
    fn from_valid_json(text: Box<str>) -> Record {
        if memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_some() {
            let mut one_line = String::from(text);
            one_line.retain(|c| c != '\n' && c != '\r');
            return Record(one_line.into_boxed_str());
        }
        Record(text)
    }

    /// The record as JSON text, without line breaks.
    pub fn json(&self) -> &str {
        &self.0
    }

    /// The record parsed into a `serde_json::Value`, for sinks that read its fields.
    ///
    /// The text is valid JSON, so this fails only on a record nested more than 128 levels
    /// deep, which serde_json refuses to build.
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(&self.0)
    }
}

impl From<Value> for Record {
    fn from(value: Value) -> Record {
        Record::from(&value)
    }
}

impl From<&Value> for Record {
    /// The value as compact JSON.
    fn from(value: &Value) -> Record {
        Record(value.to_string().into_boxed_str())
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_the_text_the_source_sent() {
        let text = r#"{"z": 1, "a": 12345678901234567890123, "f": 1.50, "z": 2}"#;
        assert_eq!(Record::parse(text).unwrap().json(), text);
    }

    #[test]
    fn drops_line_breaks_between_tokens_but_keeps_escaped_ones() {
        let record = Record::parse("{\r\n  \"text\": \"a\\nb\",\n  \"n\": [1,\n2]\n}").unwrap();
        assert_eq!(record.json(), "{  \"text\": \"a\\nb\",  \"n\": [1,2]}");
        assert_eq!(
            record.to_value().unwrap(),
            json!({"text": "a\nb", "n": [1, 2]})
        );
    }

    #[test]
    fn refuses_text_that_is_not_one_json_value() {
        assert!(Record::parse("{\"id\": 1").is_err());
        assert!(Record::parse("{} {}").is_err());
    }

    #[test]
    fn values_become_compact_json() {
        let record = Record::from(json!({"id": 1, "tags": ["a", "b"]}));
        assert_eq!(record.json(), r#"{"id":1,"tags":["a","b"]}"#);
        assert_eq!(record.to_string(), record.json());
    }
}
