//! Finding the records in a response.
//!
//! A response body is read once. The records are kept as the JSON text the server sent (one
//! [`Record`] each, never built into maps); the rest of the document (totals, next cursors,
//! links in the body) is built into a `serde_json::Value` for pagination to read.
//!
//! The common shapes (the records in an array at `dataField` through objects, or the root
//! array) are read by [`scan_page`], which also picks up each record's cursor values on the
//! way, so that neither the page nor a record is scanned a second time. Anything else (no
//! `dataField` on an object, a path through arrays, a key on the path written twice, a body
//! that is not JSON) is left to serde_json, which gives the error messages, and the cursor
//! values are then read from the records afterwards.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use cannectors_config::FieldPath;
use cannectors_connector::Record;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use cannectors_state::json_kind;

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

/// A parsed response: the document without its records, and the records.
#[derive(Debug)]
pub(crate) struct Parsed<'t> {
    /// Everything but the record array, which is left empty in its place.
    pub(crate) document: Value,
    pub(crate) records: Result<Vec<Record>, Missing>,
    /// The values at the cursor paths of each record, in order, when they were found while
    /// the page was read; `None` when the records must be looked into for them.
    pub(crate) found: Option<Vec<CursorValues<'t>>>,
}

/// The values at the timestamp and the id cursor paths of one record (`None`: no such field),
/// as their JSON text in the page: most are a short string or number, and reading them from the
/// text spares building a `serde_json::Value` (an allocation for a string) per record.
pub(crate) type CursorValues<'t> = [Option<&'t str>; 2];

/// The cursor paths (timestamp, id) whose values [`parse_page`] picks up in each record.
pub(crate) type CursorPaths<'p> = [Option<&'p [String]>; 2];

/// Parses a response body and finds its records.
///
/// With `data_field`, the records are the array at that path. Without it: the root when it is
/// an array, else the first of `data`, `items`, `results`, `records` that holds an array, else
/// the whole object as one record. An error is the parser's message (the body is not JSON).
pub(crate) fn parse_page<'t>(
    body: &'t [u8],
    data_field: Option<&FieldPath>,
    cursors: CursorPaths<'_>,
) -> Result<Parsed<'t>, String> {
    let text = std::str::from_utf8(body).map_err(|error| {
        format!(
            "the body is not UTF-8 text (invalid byte at position {})",
            error.valid_up_to()
        )
    })?;
    if let Some(parsed) = scan_page(text, data_field, cursors) {
        return Ok(parsed);
    }
    let found = RefCell::new(Vec::new());
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let target = match data_field {
        Some(path) => Target::Path(path.segments()),
        None => Target::Root,
    };
    let document = DocumentSeed {
        target,
        found: &found,
    }
    .deserialize(&mut deserializer)
    .and_then(|document| deserializer.end().map(|()| document))
    .map_err(|error| error.to_string())?;
    let mut found = found.into_inner();
    let records = match data_field {
        Some(path) => match found.pop() {
            Some((_, records)) => Ok(records),
            None => match path.get(&document) {
                None => Err(Missing::NoSuchPath),
                Some(other) => Err(Missing::NotAnArray(json_kind(other))),
            },
        },
        None => root_records(&document, found),
    };
    Ok(Parsed {
        document,
        records,
        found: None,
    })
}

/// The records of a response without `dataField`, from the arrays found under the known keys.
fn root_records(
    document: &Value,
    mut found: Vec<(&'static str, Vec<Record>)>,
) -> Result<Vec<Record>, Missing> {
    match document {
        Value::Object(_) => {
            for key in ARRAY_KEYS {
                // One entry a key at most: a key written twice left the records of its last value.
                if let Some(at) = found.iter().position(|(name, _)| *name == key) {
                    return Ok(found.swap_remove(at).1);
                }
            }
            Ok(vec![Record::from(document)])
        }
        Value::Array(_) => Ok(found.pop().map(|(_, records)| records).unwrap_or_default()),
        other => Err(Missing::NotRecords(json_kind(other))),
    }
}

/// Where the record array is expected below the value being parsed.
#[derive(Clone, Copy)]
enum Target<'p> {
    /// No `dataField`: the root array, or the first known key of the root object.
    Root,
    /// The rest of the `dataField` path; empty: this value is the record array.
    Path(&'p [String]),
    /// No `dataField`, and this value is under one of the known keys of the root object: its
    /// records if it is an array.
    Known(&'static str),
    /// Not below this value.
    Nowhere,
}

/// Arrays of records found while parsing, with the key they were under at the root.
type Found = RefCell<Vec<(&'static str, Vec<Record>)>>;

/// Builds a `Value` of everything except the record array, whose elements it collects as
/// records, unparsed.
struct DocumentSeed<'p> {
    target: Target<'p>,
    found: &'p Found,
}

impl<'p> DocumentSeed<'p> {
    fn below(&self, target: Target<'p>) -> DocumentSeed<'p> {
        DocumentSeed {
            target,
            found: self.found,
        }
    }

    /// The target below the member `name` (or `index`) of an object or array at this level.
    fn target_of(&self, name: Option<&str>, index: Option<usize>) -> Target<'p> {
        match self.target {
            Target::Path([first, rest @ ..])
                if name == Some(first.as_str())
                    || (index.is_some() && first.parse::<usize>().ok() == index) =>
            {
                Target::Path(rest)
            }
            _ => Target::Nowhere,
        }
    }
}

impl<'de> DeserializeSeed<'de> for DocumentSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DocumentSeed<'_> {
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

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        match self.target {
            Target::Root | Target::Path([]) => return collect_records(seq, self.found, UNNAMED),
            Target::Known(key) => return collect_records(seq, self.found, key),
            Target::Path(_) | Target::Nowhere => {}
        }
        let mut items = Vec::new();
        loop {
            let seed = self.below(self.target_of(None, Some(items.len())));
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        // How many records were found before the key on the `dataField` path: when that key is
        // written twice, its last value counts, as in the document, so what an earlier one
        // held is dropped.
        let mut before_path: Option<usize> = None;
        while let Some(key) = access.next_key::<String>()? {
            let target = match self.target {
                Target::Root => match ARRAY_KEYS.iter().find(|known| **known == key) {
                    Some(known) => Target::Known(known),
                    None => Target::Nowhere,
                },
                _ => self.target_of(Some(&key), None),
            };
            match target {
                Target::Known(known) => self.found.borrow_mut().retain(|(name, _)| *name != known),
                Target::Path(_) => {
                    let mark = *before_path.get_or_insert(self.found.borrow().len());
                    self.found.borrow_mut().truncate(mark);
                }
                Target::Root | Target::Nowhere => {}
            }
            let value = access.next_value_seed(self.below(target))?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// What the records of a root array or of the `dataField` array are filed under: only the
/// known keys of a root object need telling apart.
const UNNAMED: &str = "";

/// Collects the elements of an array as raw records; leaves an empty array in the document.
fn collect_records<'de, A: SeqAccess<'de>>(
    mut seq: A,
    found: &Found,
    key: &'static str,
) -> Result<Value, A::Error> {
    let mut records = Vec::with_capacity(seq.size_hint().unwrap_or(0));
    while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
        records.push(Record::from_raw(raw));
    }
    found.borrow_mut().push((key, records));
    Ok(Value::Array(Vec::new()))
}

/// How deep [`scan_page`] follows nested values before leaving the page to serde_json, which
/// has the same limit.
const MAX_DEPTH: usize = 128;

/// Reads a page in one pass when its records are in an array at `dataField` (reached through
/// objects only) or, without `dataField`, in the root array; picks up the values at the cursor
/// paths of each record on the way. `None` for any other page, and for any page that is not
/// valid JSON or that the scan would read differently from [`DocumentSeed`]: serde_json then
/// reads it, and tells what is wrong.
fn scan_page<'t>(
    text: &'t str,
    data_field: Option<&FieldPath>,
    cursors: CursorPaths<'_>,
) -> Option<Parsed<'t>> {
    let mut scan = Scan {
        text,
        bytes: text.as_bytes(),
        at: 0,
        depth: 0,
        line_breaks: 0,
    };
    scan.whitespace();
    let (records, found, span) = match data_field {
        None if scan.peek()? == b'[' => {
            let (records, found) = scan.records(cursors)?;
            (records, found, None)
        }
        None => return None,
        Some(path) => {
            let (records, found, span) = scan.follow(path.segments(), cursors)?;
            (records, found, Some(span))
        }
    };
    scan.whitespace();
    if scan.at != text.len() {
        return None;
    }
    let document = match span {
        None => Value::Array(Vec::new()),
        Some((start, end)) => {
            // The rest of the document, usually a few dozen bytes: totals, next cursors.
            let mut rest = String::with_capacity(text.len() - (end - start) + 2);
            rest.push_str(text.get(..start)?);
            rest.push_str("[]");
            rest.push_str(text.get(end..)?);
            serde_json::from_str(&rest).ok()?
        }
    };
    let found = cursors.iter().any(Option::is_some).then_some(found);
    Some(Parsed {
        document,
        records: Ok(records),
        found,
    })
}

/// A position in a page being read by [`scan_page`]. Every method checks the JSON it passes
/// over and answers `None` where the text is not what it reads (or not valid JSON).
struct Scan<'t> {
    text: &'t str,
    bytes: &'t [u8],
    at: usize,
    depth: usize,
    /// How many `\n` and `\r` were passed over so far (only whitespace can hold them), so that
    /// a record without any needs no second look for them.
    line_breaks: usize,
}

impl<'t> Scan<'t> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn whitespace(&mut self) {
        while let Some(&byte) = self.bytes.get(self.at) {
            match byte {
                b' ' | b'\t' => {}
                b'\n' | b'\r' => self.line_breaks += 1,
                _ => return,
            }
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn enter(&mut self, open: u8) -> Option<()> {
        self.eat(open)?;
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// After a member or an element: a comma (`Some(true)`) or the closing byte (`Some(false)`).
    fn next_or_close(&mut self, close: u8) -> Option<bool> {
        self.whitespace();
        match self.peek()? {
            b',' => {
                self.at += 1;
                self.whitespace();
                Some(true)
            }
            byte if byte == close => {
                self.at += 1;
                self.depth -= 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// Just after an opening byte: whether the container is empty (and then closes it).
    fn closes_at_once(&mut self, close: u8) -> Option<bool> {
        self.whitespace();
        if self.peek()? == close {
            self.at += 1;
            self.depth -= 1;
            return Some(true);
        }
        Some(false)
    }

    /// An object key and its colon; the key decoded only when it holds an escape.
    fn key(&mut self) -> Option<Cow<'t, str>> {
        let start = self.at;
        let escaped = self.string()?;
        let text = self.text;
        let key = if escaped {
            Cow::Owned(serde_json::from_str::<String>(text.get(start..self.at)?).ok()?)
        } else {
            Cow::Borrowed(text.get(start + 1..self.at - 1)?)
        };
        self.whitespace();
        self.eat(b':')?;
        self.whitespace();
        Some(key)
    }

    /// Passes over one value.
    fn value(&mut self) -> Option<()> {
        match self.peek()? {
            b'{' => {
                self.enter(b'{')?;
                if self.closes_at_once(b'}')? {
                    return Some(());
                }
                loop {
                    self.string()?;
                    self.whitespace();
                    self.eat(b':')?;
                    self.whitespace();
                    self.value()?;
                    if !self.next_or_close(b'}')? {
                        return Some(());
                    }
                }
            }
            b'[' => {
                self.enter(b'[')?;
                if self.closes_at_once(b']')? {
                    return Some(());
                }
                loop {
                    self.value()?;
                    if !self.next_or_close(b']')? {
                        return Some(());
                    }
                }
            }
            b'"' => self.string().map(|_| ()),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.word(b"true"),
            b'f' => self.word(b"false"),
            b'n' => self.word(b"null"),
            _ => None,
        }
    }

    fn word(&mut self, word: &[u8]) -> Option<()> {
        self.bytes
            .get(self.at..)?
            .starts_with(word)
            .then(|| self.at += word.len())
    }

    /// Passes over a string; whether it holds an escape.
    fn string(&mut self) -> Option<bool> {
        self.eat(b'"')?;
        let mut escaped = false;
        loop {
            self.at += plain_run(self.bytes.get(self.at..)?)?;
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                _ => return None,
            }
        }
    }

    /// Passes over an escape; half a surrogate pair is left to serde_json.
    fn escape(&mut self) -> Option<()> {
        self.at += 1;
        match self.peek()? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                self.at += 1;
                Some(())
            }
            b'u' => {
                self.at += 1;
                match self.hex4()? {
                    0xD800..=0xDBFF => {
                        self.eat(b'\\')?;
                        self.eat(b'u')?;
                        matches!(self.hex4()?, 0xDC00..=0xDFFF).then_some(())
                    }
                    0xDC00..=0xDFFF => None,
                    _ => Some(()),
                }
            }
            _ => None,
        }
    }

    fn hex4(&mut self) -> Option<u16> {
        let digits = self.text.get(self.at..self.at + 4)?;
        let unit = u16::from_str_radix(digits, 16).ok()?;
        // from_str_radix takes a sign; JSON does not.
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.at += 4;
        Some(unit)
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Option<()> {
        if self.peek()? == b'-' {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// Follows the `dataField` path from the object here to the record array: its records,
    /// their cursor values and where the array lies in the text.
    #[allow(clippy::type_complexity)]
    fn follow(
        &mut self,
        path: &[String],
        cursors: CursorPaths<'_>,
    ) -> Option<(Vec<Record>, Vec<CursorValues<'t>>, (usize, usize))> {
        let (first, rest) = path.split_first()?;
        self.enter(b'{')?;
        if self.closes_at_once(b'}')? {
            return None;
        }
        let mut result = None;
        loop {
            let key = self.key()?;
            if key == first.as_str() {
                // Written twice: which value counts is DocumentSeed's business.
                if result.is_some() {
                    return None;
                }
                result = Some(if rest.is_empty() {
                    let start = self.at;
                    let (records, found) = self.records(cursors)?;
                    (records, found, (start, self.at))
                } else {
                    self.follow(rest, cursors)?
                });
            } else {
                self.value()?;
            }
            if !self.next_or_close(b'}')? {
                return result;
            }
        }
    }

    /// The array here as records, with the values at the cursor paths of each.
    fn records(
        &mut self,
        cursors: CursorPaths<'_>,
    ) -> Option<(Vec<Record>, Vec<CursorValues<'t>>)> {
        let wanted = cursors.iter().any(Option::is_some);
        self.enter(b'[')?;
        let mut records = Vec::new();
        let mut found = Vec::new();
        if self.closes_at_once(b']')? {
            return Some((records, found));
        }
        loop {
            let start = self.at;
            let line_breaks = self.line_breaks;
            let mut values: CursorValues<'t> = [None, None];
            match self.peek()? {
                b'{' if wanted => self.capture(cursors, &mut values)?,
                // A path may index into an array record; the record lookup reads those.
                b'[' if wanted => return None,
                _ => self.value()?,
            }
            let text = self.text.get(start..self.at)?.to_owned();
            records.push(if self.line_breaks == line_breaks {
                Record::from_json_line(text)
            } else {
                Record::from_encoded(text)
            });
            if wanted {
                found.push(values);
            }
            if !self.next_or_close(b']')? {
                return Some((records, found));
            }
        }
    }

    /// Passes over the object here, keeping in `found` the values at the rest of each path.
    fn capture(&mut self, paths: CursorPaths<'_>, found: &mut CursorValues<'t>) -> Option<()> {
        self.enter(b'{')?;
        if self.closes_at_once(b'}')? {
            return Some(());
        }
        let mut seen = [false, false];
        loop {
            let key = self.key()?;
            let mut below: CursorPaths<'_> = [None, None];
            let mut ends = [false, false];
            for (i, path) in paths.iter().enumerate() {
                if let Some((first, rest)) = path.and_then(<[String]>::split_first)
                    && *first == key
                {
                    // Written twice: which value counts is the record lookup's business.
                    if seen[i] {
                        return None;
                    }
                    seen[i] = true;
                    if rest.is_empty() {
                        ends[i] = true;
                    } else {
                        below[i] = Some(rest);
                    }
                }
            }
            let start = self.at;
            match self.peek()? {
                b'{' if below.iter().any(Option::is_some) => self.capture(below, found)?,
                b'[' if below.iter().any(Option::is_some) => return None,
                _ => self.value()?,
            }
            for (slot, ends) in found.iter_mut().zip(ends) {
                if ends {
                    *slot = Some(self.text.get(start..self.at)?);
                }
            }
            if !self.next_or_close(b'}')? {
                return Some(());
            }
        }
    }
}

/// The length of the run of plain string content at the start of `bytes`: where the first `"`,
/// `\\` or control character is, `None` when there is none.
///
/// Most of a page is string content, so this is the scan's inner loop: it looks at eight bytes
/// a step, with the classic test for a zero byte (`(x - 0x01…) & !x & 0x80…`) on the word XORed
/// with each of `"` and `\\`, and the same test against 0x20 for control characters. A borrow can
/// only mark bytes after a true match, so the lowest mark is the first such byte.
fn plain_run(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const QUOTES: u64 = ONES * b'"' as u64;
    const BACKSLASHES: u64 = ONES * b'\\' as u64;
    const SPACES: u64 = ONES * 0x20;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let quote = word ^ QUOTES;
        let backslash = word ^ BACKSLASHES;
        let marks = (quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash
            | word.wrapping_sub(SPACES) & !word)
            & HIGHS;
        if marks != 0 {
            return Some(at + (marks.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|run| at + run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse<'t>(body: &'t str, path: Option<&str>) -> Parsed<'t> {
        let path = path.map(|p| FieldPath::parse(p).unwrap());
        parse_page(body.as_bytes(), path.as_ref(), [None, None]).unwrap()
    }

    fn texts(records: Result<Vec<Record>, Missing>) -> Vec<String> {
        records
            .unwrap()
            .iter()
            .map(|r| r.json().to_owned())
            .collect()
    }

    #[test]
    fn a_key_on_the_data_field_path_written_twice_counts_with_its_last_value() {
        let body = r#"{"a": {"b": [1]}, "a": {"c": 2}}"#;
        assert_eq!(parse(body, Some("a.b")).records, Err(Missing::NoSuchPath));
        let body = r#"{"a": {"b": [1]}, "a": {"b": [2, 3]}}"#;
        assert_eq!(texts(parse(body, Some("a.b")).records), ["2", "3"]);
        let body = r#"{"a": {"b": [1]}, "x": 0, "a": {"b": 5}}"#;
        assert_eq!(
            parse(body, Some("a.b")).records,
            Err(Missing::NotAnArray("a number"))
        );
        // Without `dataField`, for the known keys of the root.
        let body = r#"{"data": [1], "data": null}"#;
        assert_eq!(texts(parse(body, None).records), [r#"{"data":null}"#]);
        let body = r#"{"items": [1], "data": [2], "items": [3, 4]}"#;
        assert_eq!(texts(parse(body, None).records), ["2"]);
    }

    #[test]
    fn records_keep_their_text_and_the_rest_is_parsed() {
        let body = r#"{"total": 3, "items": [{"id": 1, "n": -2, "f": 1.50, "b": true,
            "z": null, "s": "x\u00e9\n", "tags": ["a", {"deep": [1, [2, []]]}]},
            {"id": 18446744073709551616, "e": 1e300, "o": {}},
            {"id": 3, "dup": 1, "dup": 2}], "next": {"cursor": "c2", "list": [1, 2.5]}}"#;
        let parsed = parse(body, Some("items"));
        assert_eq!(
            texts(parsed.records),
            [
                r#"{"id": 1, "n": -2, "f": 1.50, "b": true,            "z": null, "s": "x\u00e9\n", "tags": ["a", {"deep": [1, [2, []]]}]}"#,
                r#"{"id": 18446744073709551616, "e": 1e300, "o": {}}"#,
                r#"{"id": 3, "dup": 1, "dup": 2}"#,
            ]
        );
        assert_eq!(
            parsed.document,
            json!({"total": 3, "items": [], "next": {"cursor": "c2", "list": [1, 2.5]}})
        );
    }

    #[test]
    fn parsing_errors_are_serde_json_errors() {
        let error = parse_page(b"{\"a\": [1, 2} ", None, [None, None]).unwrap_err();
        assert_eq!(
            error,
            serde_json::from_slice::<Value>(b"{\"a\": [1, 2} ")
                .unwrap_err()
                .to_string()
        );
        let error = parse_page(
            b"{\"items\": [{\"id\": 1}, {\"id\": }]}",
            None,
            [None, None],
        )
        .unwrap_err();
        assert!(error.contains("line 1 column 30"), "{error}");
        assert!(
            parse_page(b"[1] [2]", None, [None, None])
                .unwrap_err()
                .contains("trailing characters")
        );
        assert!(
            parse_page(b"[\"\xff\"]", None, [None, None])
                .unwrap_err()
                .contains("not UTF-8")
        );
    }

    #[test]
    fn records_at_data_field_and_their_cursor_values_come_from_one_pass() {
        let timestamp = FieldPath::parse("meta.updated_at").unwrap();
        let id = FieldPath::parse("id").unwrap();
        let body = r#"{"total": 3, "page": {"items": [
            {"id": 1, "meta": {"updated_at": "2026-01-01T00:00:00Z", "x": [1]}},
            {"meta": {}, "id": "b\u00e9", "n": {"id": 5}}, 7, "s"]}, "next": "c2"}"#;
        let parsed = parse_page(
            body.as_bytes(),
            Some(&FieldPath::parse("page.items").unwrap()),
            [Some(timestamp.segments()), Some(id.segments())],
        )
        .unwrap();
        assert_eq!(
            parsed.found,
            Some(vec![
                [Some(r#""2026-01-01T00:00:00Z""#), Some("1")],
                [None, Some(r#""b\u00e9""#)],
                [None, None],
                [None, None],
            ])
        );
        assert_eq!(
            texts(parsed.records),
            [
                r#"{"id": 1, "meta": {"updated_at": "2026-01-01T00:00:00Z", "x": [1]}}"#,
                r#"{"meta": {}, "id": "b\u00e9", "n": {"id": 5}}"#,
                "7",
                r#""s""#,
            ]
        );
        assert_eq!(
            parsed.document,
            json!({"total": 3, "page": {"items": []}, "next": "c2"})
        );
        let parsed = parse_page(b" [{\"id\": 2}] ", None, [None, Some(id.segments())]).unwrap();
        assert_eq!(parsed.found, Some(vec![[None, Some("2")]]));
        assert_eq!(parsed.document, json!([]));
    }

    #[test]
    fn pages_of_other_shapes_leave_the_cursor_values_to_be_looked_up_in_the_records() {
        let id = FieldPath::parse("id").unwrap();
        let through_array = FieldPath::parse("id.0").unwrap();
        for (body, path, cursor) in [
            // No `dataField` on an object.
            (r#"{"items": [{"id": 1}]}"#, None, &id),
            // A `dataField` through an array.
            (
                r#"{"pages": [{"rows": [{"id": 1}]}]}"#,
                Some("pages.0.rows"),
                &id,
            ),
            // A key on the `dataField` path written twice.
            (
                r#"{"items": [{"id": 1}], "items": [{"id": 2}]}"#,
                Some("items"),
                &id,
            ),
            // A cursor key written twice in a record.
            (r#"{"items": [{"id": 1, "id": 2}]}"#, Some("items"), &id),
            // A cursor path into an array of a record.
            (r#"{"items": [{"id": [1]}]}"#, Some("items"), &through_array),
        ] {
            let path = path.map(|p| FieldPath::parse(p).unwrap());
            let parsed = parse_page(
                body.as_bytes(),
                path.as_ref(),
                [None, Some(cursor.segments())],
            )
            .unwrap();
            assert_eq!(parsed.found, None, "{body}");
            assert!(parsed.records.is_ok(), "{body}");
        }
    }

    #[test]
    fn a_plain_run_ends_at_the_first_quote_backslash_or_control_character_wherever_it_lies() {
        for len in 0..20 {
            for at in 0..=len {
                for end in [b'"', b'\\', 0x00, 0x1f, 0x0a] {
                    // Bytes just above and below the ones that end a run, and non-ASCII ones.
                    let mut bytes: Vec<u8> = (0..len)
                        .map(|i| [b' ', b'#', b'!', b'[', b']', 0x7f, 0x80, 0xff, 0xe9][i % 9])
                        .collect();
                    let expected = (at < len).then(|| {
                        bytes[at] = end;
                        at
                    });
                    // What follows the first one does not matter, even another one.
                    if at + 1 < len {
                        bytes[at + 1] = 0x01;
                    }
                    assert_eq!(plain_run(&bytes), expected, "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn line_breaks_inside_a_record_are_dropped_and_those_between_records_do_not_matter() {
        let body = "[\r\n  {\"id\":\r\n 1, \"note\": \"a\\nb\"},\n  {\"id\": 2}\n]\n";
        let parsed = parse(body, None);
        assert_eq!(
            texts(parsed.records),
            [r#"{"id": 1, "note": "a\nb"}"#, r#"{"id": 2}"#]
        );
        let body = "{\"data\": [{\"id\": 1}, {\n\"id\": 2}],\n\"next\": null}";
        let path = FieldPath::parse("data").unwrap();
        let ts = FieldPath::parse("id").unwrap();
        let parsed = parse_page(body.as_bytes(), Some(&path), [None, Some(ts.segments())]).unwrap();
        assert_eq!(
            parsed.found,
            Some(vec![[None, Some("1")], [None, Some("2")]])
        );
        assert_eq!(texts(parsed.records), [r#"{"id": 1}"#, r#"{"id": 2}"#]);
    }

    #[test]
    fn a_root_array_is_the_records() {
        assert_eq!(
            texts(parse(r#"[{"id": 1}, {"id": 2}]"#, None).records),
            [r#"{"id": 1}"#, r#"{"id": 2}"#]
        );
        assert_eq!(texts(parse("[]", None).records), Vec::<String>::new());
    }

    #[test]
    fn the_first_known_key_holding_an_array_is_the_records() {
        let parsed = parse(
            r#"{"results": [1, 2], "data": {"not": "array"}, "items": [{"id": 1}]}"#,
            None,
        );
        assert_eq!(texts(parsed.records), [r#"{"id": 1}"#]);
        assert_eq!(parsed.document["data"], json!({"not": "array"}));
    }

    #[test]
    fn an_object_without_a_known_array_is_one_record() {
        let parsed = parse(r#"{"id": 7, "name": "x", "nested": {"items": [1]}}"#, None);
        assert_eq!(
            texts(parsed.records),
            [r#"{"id":7,"name":"x","nested":{"items":[1]}}"#]
        );
    }

    #[test]
    fn data_field_reads_a_nested_array_and_leaves_the_rest() {
        let parsed = parse(
            r#"{"result": {"events": [{"id": 1}], "other": [{"id": 2}]}, "next": "c2"}"#,
            Some("result.events"),
        );
        assert_eq!(texts(parsed.records), [r#"{"id": 1}"#]);
        assert_eq!(parsed.document["next"], json!("c2"));
        assert_eq!(parsed.document["result"]["other"], json!([{"id": 2}]));
        let parsed = parse(
            r#"{"pages": [{"x": 1}, {"rows": [{"id": 3}]}]}"#,
            Some("pages.1.rows"),
        );
        assert_eq!(texts(parsed.records), [r#"{"id": 3}"#]);
    }

    #[test]
    fn data_field_errors_tell_missing_from_not_an_array() {
        assert_eq!(
            parse(r#"{"a": 1}"#, Some("events")).records.unwrap_err(),
            Missing::NoSuchPath
        );
        assert_eq!(
            parse(r#"{"events": {"x": 1}}"#, Some("events"))
                .records
                .unwrap_err(),
            Missing::NotAnArray("an object")
        );
        assert_eq!(
            parse(r#"{"events": null}"#, Some("events"))
                .records
                .unwrap_err(),
            Missing::NotAnArray("null")
        );
        assert_eq!(
            parse(r#""text""#, None).records.unwrap_err(),
            Missing::NotRecords("a string")
        );
    }
}

/// A response body is outside input: whatever its bytes, parsing it ends in records or an error,
/// never a panic, in a bounded time; and on JSON bodies the records found while parsing once are
/// the ones a full parse into a `Value` would give.
#[cfg(test)]
mod properties {
    use std::time::{Duration, Instant};

    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::*;

    /// Far above what any of these bodies needs (well under a millisecond).
    const BOUND: Duration = Duration::from_secs(2);

    /// `dataField` values: none, the known keys, nested paths, paths through arrays.
    const PATHS: &[Option<&str>] = &[
        None,
        Some("data"),
        Some("items"),
        Some("a"),
        Some("a.b"),
        Some("a.0"),
        Some("0"),
        Some("data.items.1"),
    ];

    /// Keys that make the known arrays and the paths above likely to be found.
    const KEYS: &[&str] = &[
        "data", "items", "results", "records", "a", "b", "0", "1", "total", "next", "",
    ];

    fn field_path(path: Option<&str>) -> Option<FieldPath> {
        path.map(|path| FieldPath::parse(path).unwrap())
    }

    fn body_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| {
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
            }),
            ".{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(
                    |members| {
                        Value::Object(
                            members
                                .into_iter()
                                .map(|(key, value)| (key.to_owned(), value))
                                .collect::<Map<_, _>>(),
                        )
                    }
                ),
            ]
        })
    }

    /// A body as text whose objects may write a key twice (which a `Value` cannot hold).
    fn body_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            ".{0,6}".prop_map(|s| Value::from(s).to_string()),
            Just("[]".to_owned()),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|items| format!("[{}]", items.join(", "))),
                prop::collection::vec((prop::sample::select(&KEYS[..6]), inner), 0..5).prop_map(
                    |members| {
                        let members: Vec<String> = members
                            .into_iter()
                            .map(|(key, value)| format!("{}: {value}", Value::from(key)))
                            .collect();
                        format!("{{{}}}", members.join(", "))
                    }
                ),
            ]
        })
    }

    /// The records and the document a full parse gives, by the rules of [`parse_page`].
    fn expected(value: &Value, path: Option<&FieldPath>) -> (Value, Result<Vec<Value>, Missing>) {
        let mut document = value.clone();
        let records = match path {
            Some(path) => match path.get(value) {
                Some(Value::Array(items)) => {
                    empty_at(&mut document, path.segments());
                    Ok(items.clone())
                }
                Some(other) => Err(Missing::NotAnArray(json_kind(other))),
                None => Err(Missing::NoSuchPath),
            },
            None => match value {
                Value::Array(items) => {
                    document = json!([]);
                    Ok(items.clone())
                }
                Value::Object(map) => {
                    let found = ARRAY_KEYS
                        .iter()
                        .find_map(|key| map.get(*key).and_then(Value::as_array).cloned());
                    // Every known key holding an array is emptied, the one read or not.
                    for key in ARRAY_KEYS {
                        if let Some(items @ Value::Array(_)) = document.get_mut(key) {
                            *items = json!([]);
                        }
                    }
                    Ok(found.unwrap_or_else(|| vec![value.clone()]))
                }
                other => Err(Missing::NotRecords(json_kind(other))),
            },
        };
        (document, records)
    }

    /// `value` with an array of `items` at `path` (created on the way), as a body that holds
    /// its records where `dataField` says.
    fn planted(mut value: Value, path: Option<&str>, items: Vec<Value>) -> Value {
        let segments: Vec<&str> = path.unwrap_or("data").split('.').collect();
        let mut node = &mut value;
        for segment in segments {
            node = match segment.parse::<usize>() {
                Ok(index) => {
                    if !node.is_array() {
                        *node = json!([]);
                    }
                    let list = node.as_array_mut().unwrap();
                    while list.len() <= index {
                        list.push(Value::Null);
                    }
                    &mut list[index]
                }
                Err(_) => {
                    if !node.is_object() {
                        *node = json!({});
                    }
                    node.as_object_mut()
                        .unwrap()
                        .entry(segment)
                        .or_insert(Value::Null)
                }
            };
        }
        *node = Value::Array(items);
        value
    }

    fn empty_at(document: &mut Value, segments: &[String]) {
        let mut node = document;
        for segment in segments {
            node = match node {
                Value::Object(map) => map.get_mut(segment).unwrap(),
                Value::Array(items) => &mut items[segment.parse::<usize>().unwrap()],
                _ => unreachable!("the path was found"),
            };
        }
        *node = json!([]);
    }

    /// Cursor paths (timestamp, id), over the keys of [`KEYS`], some through arrays.
    const CURSORS: &[(Option<&str>, Option<&str>)] = &[
        (Some("a"), Some("b")),
        (Some("a.b"), None),
        (None, Some("0")),
        (Some("b.a"), Some("a.1")),
        (Some("data"), Some("a.b")),
    ];

    /// The page parsed with `cursors` gives the records and the document it gives without
    /// them, and, when it found the cursor values in one pass, those a lookup in each record
    /// finds.
    fn check_cursor_values(
        body: &str,
        path: Option<&str>,
        cursors: (Option<&str>, Option<&str>),
    ) -> Result<(), TestCaseError> {
        let path = field_path(path);
        let (timestamp, id) = (field_path(cursors.0), field_path(cursors.1));
        let paths = [
            timestamp.as_ref().map(FieldPath::segments),
            id.as_ref().map(FieldPath::segments),
        ];
        let parsed = parse_page(body.as_bytes(), path.as_ref(), paths).unwrap();
        let plain = parse_page(body.as_bytes(), path.as_ref(), [None, None]).unwrap();
        prop_assert_eq!(&parsed.document, &plain.document);
        let texts = |records: &Result<Vec<Record>, Missing>| {
            records
                .as_ref()
                .map(|records| {
                    records
                        .iter()
                        .map(|r| r.json().to_owned())
                        .collect::<Vec<_>>()
                })
                .map_err(Clone::clone)
        };
        prop_assert_eq!(texts(&parsed.records), texts(&plain.records));
        if let Some(found) = parsed.found {
            let records = parsed.records.unwrap();
            prop_assert_eq!(found.len(), records.len());
            for (values, record) in found.iter().zip(&records) {
                let record = record.to_value().unwrap();
                let at = |path: &Option<FieldPath>| path.as_ref().and_then(|p| p.get(&record));
                let value =
                    |text: Option<&str>| text.map(|t| serde_json::from_str::<Value>(t).unwrap());
                prop_assert_eq!(value(values[0]), at(&timestamp).cloned());
                prop_assert_eq!(value(values[1]), at(&id).cloned());
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn arbitrary_bytes_parse_or_fail_cleanly(
            body in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..300),
                "[\\[\\]{}\":,0-9a-z \\\\n-]{0,60}".prop_map(String::into_bytes),
            ],
            path in prop::sample::select(PATHS),
        ) {
            let path = field_path(path);
            let started = Instant::now();
            let parsed = parse_page(&body, path.as_ref(), [None, None]);
            prop_assert!(started.elapsed() < BOUND, "parsing took {:?}", started.elapsed());
            if let Err(message) = parsed {
                prop_assert!(!message.is_empty());
            }
        }

        #[test]
        fn records_found_in_one_pass_are_those_of_a_full_parse(
            value in body_value(),
            pretty in any::<bool>(),
            path in prop::sample::select(PATHS),
            plant in prop::option::of(prop::collection::vec(body_value(), 0..4)),
        ) {
            let value = match plant {
                Some(items) => planted(value, path, items),
                None => value,
            };
            let body = if pretty { format!("{value:#}") } else { value.to_string() };
            let path = field_path(path);
            let started = Instant::now();
            let parsed = parse_page(body.as_bytes(), path.as_ref(), [None, None]).unwrap();
            prop_assert!(started.elapsed() < BOUND, "parsing took {:?}", started.elapsed());
            let (document, records) = expected(&value, path.as_ref());
            let found = parsed.records.map(|records| {
                records.iter().map(|record| record.to_value().unwrap()).collect::<Vec<_>>()
            });
            prop_assert_eq!(found, records);
            prop_assert_eq!(parsed.document, document);
        }

        #[test]
        fn cursor_values_found_in_one_pass_are_those_of_the_records(
            value in body_value(),
            pretty in any::<bool>(),
            path in prop::sample::select(PATHS),
            plant in prop::collection::vec(body_value(), 0..4),
            cursors in prop::sample::select(CURSORS),
        ) {
            let value = planted(value, path, plant);
            let body = if pretty { format!("{value:#}") } else { value.to_string() };
            check_cursor_values(&body, path, cursors)?;
        }

        #[test]
        fn cursor_values_of_records_writing_a_key_twice_are_those_of_the_records(
            body in body_text(),
            path in prop::sample::select(PATHS),
            cursors in prop::sample::select(CURSORS),
        ) {
            check_cursor_values(&body, path, cursors)?;
        }

        #[test]
        fn a_key_written_twice_counts_with_its_last_value_as_in_a_full_parse(
            body in body_text(),
            path in prop::sample::select(PATHS),
        ) {
            let value: Value = serde_json::from_str(&body).unwrap();
            let path = field_path(path);
            let parsed = parse_page(body.as_bytes(), path.as_ref(), [None, None]).unwrap();
            let (document, records) = expected(&value, path.as_ref());
            let found = parsed.records.map(|records| {
                records.iter().map(|record| record.to_value().unwrap()).collect::<Vec<_>>()
            });
            prop_assert_eq!(found, records);
            prop_assert_eq!(parsed.document, document);
        }
    }
}
