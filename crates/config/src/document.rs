//! The pipeline file as a plain JSON tree, plus where each key was written.
//!
//! serde_yaml (or serde_json for `.json` files) turns the text into values; it forgets where they
//! came from. A second, event-level pass with saphyr-parser records the line and column of every
//! key and list item under its key path, so that any later error (a wrong type deep inside the
//! input, a validation rule) can point at the line the user has to edit. serde_yaml is used only
//! here, so swapping the YAML parser touches this module alone.

use std::collections::{HashMap, HashSet};
use std::fmt;

use saphyr_parser::{Event, Parser, Span};
use serde_json::Value;

/// One step of a key path: a mapping key or a list index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// Where a value sits in the file, written as users read it: `input.statePersistence.id.field`,
/// `filters[2].type`. The empty path is the whole file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct KeyPath(Vec<Segment>);

impl KeyPath {
    pub(crate) fn root() -> KeyPath {
        KeyPath(Vec::new())
    }

    pub(crate) fn key(&self, key: &str) -> KeyPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        KeyPath(segments)
    }

    pub(crate) fn index(&self, index: usize) -> KeyPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        KeyPath(segments)
    }

    pub(crate) fn push(&mut self, segment: Segment) {
        self.0.push(segment);
    }

    pub(crate) fn parent(&self) -> Option<KeyPath> {
        let (_, rest) = self.0.split_last()?;
        Some(KeyPath(rest.to_vec()))
    }

    pub(crate) fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// This path followed by `segments`.
    pub(crate) fn join(&self, segments: &[Segment]) -> KeyPath {
        let mut joined = self.0.clone();
        joined.extend_from_slice(segments);
        KeyPath(joined)
    }

    /// This path, its parent, and so on up to the whole file.
    pub(crate) fn ancestors(&self) -> impl Iterator<Item = KeyPath> + '_ {
        (0..=self.0.len())
            .rev()
            .map(|len| KeyPath(self.0[..len].to_vec()))
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) if is_plain_key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                // A header such as `X.Request.Id` would otherwise read as three nested keys.
                Segment::Key(key) => write!(f, "[{key:?}]")?,
            }
        }
        Ok(())
    }
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A line and column in the file, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl Position {
    fn of(span: &Span) -> Position {
        Position {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

/// Positions of keys and list items by key path.
#[derive(Debug, Default)]
pub(crate) struct PositionIndex {
    positions: HashMap<KeyPath, Position>,
}

impl PositionIndex {
    /// The position of `path`, or of its nearest ancestor that was written in the file (a key
    /// that is missing, or that came from a YAML alias, has no position of its own).
    pub(crate) fn locate(&self, path: &KeyPath) -> Option<Position> {
        let mut current = Some(path.clone());
        while let Some(path) = current {
            if let Some(position) = self.positions.get(&path) {
                return Some(*position);
            }
            current = path.parent();
        }
        None
    }
}

/// Which parser reads the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Yaml,
    Json,
}

impl Format {
    /// JSON for a `.json` file (its parser gives the better messages), YAML otherwise.
    pub(crate) fn of(origin: &str) -> Format {
        let is_json = std::path::Path::new(origin)
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
        if is_json { Format::Json } else { Format::Yaml }
    }
}

/// The text could not be read as a document.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub(crate) path: KeyPath,
    pub(crate) position: Option<Position>,
    pub(crate) message: String,
}

/// The parsed file: its values and where they were written.
pub(crate) struct Document {
    pub(crate) tree: Value,
    pub(crate) index: PositionIndex,
    /// YAML values that have no JSON meaning (a tag, `.inf`, a list as a key), left out of the
    /// tree: the file is YAML, so these are mistakes in a pipeline, reported with the others.
    pub(crate) left_out: Vec<LeftOut>,
}

/// A YAML value left out of the tree, and why.
#[derive(Debug)]
pub(crate) struct LeftOut {
    pub(crate) path: KeyPath,
    pub(crate) message: String,
    /// Whether the value at `path` itself was left out (it is null in the tree), rather than one
    /// entry of the mapping at `path`, which has no key path of its own.
    pub(crate) whole_value: bool,
}

/// How deeply lists and mappings may nest. A pipeline needs about ten levels. serde_yaml and
/// serde_json stop at 128 anyway, but serde_yaml only after reading the whole text, in a time that
/// grows with the square of the depth (100,000 `[` took over half a minute): the event pass below
/// stops at this depth first, reading no further than the level that passes it.
const MAX_NESTING: usize = 64;

/// How many values aliases (`*name`) may add to a file in all. A pipeline shares a block or two
/// with `<<: *defaults`. serde_yaml builds every alias out in full, so a 30 kB file of aliases of
/// aliases would otherwise take minutes and gigabytes before any key is checked.
const MAX_ALIAS_VALUES: usize = 10_000;

/// Parses `text` into a JSON tree and indexes the positions of its keys.
pub(crate) fn parse(text: &str, format: Format) -> Result<Document, SyntaxError> {
    // Indexed first: a key written twice is reported with its own path and line, which
    // serde_yaml does not give and serde_json does not even notice; nesting too deep is refused
    // before the slower parsers see it.
    let (index, refused) = index_positions(text, format);
    if let Some(refused) = refused {
        return Err(refused);
    }
    let mut left_out = Vec::new();
    let tree = match format {
        Format::Yaml => parse_yaml(text, &mut left_out),
        Format::Json => parse_json(text),
    }
    .map_err(|mut error| {
        if error.position.is_none() {
            error.position = index.locate(&error.path);
        }
        error
    })?;
    Ok(Document {
        tree,
        index,
        left_out,
    })
}

fn parse_json(text: &str) -> Result<Value, SyntaxError> {
    serde_json::from_str(text).map_err(|error| {
        let position = (error.line() > 0).then(|| Position {
            line: error.line(),
            column: error.column().max(1),
        });
        SyntaxError {
            path: KeyPath::root(),
            position,
            message: format!("not valid JSON: {}", strip_location(&error.to_string())),
        }
    })
}

fn parse_yaml(text: &str, left_out: &mut Vec<LeftOut>) -> Result<Value, SyntaxError> {
    let mut yaml: serde_yaml::Value = serde_yaml::from_str(text).map_err(|error| {
        let position = error.location().map(|l| Position {
            line: l.line(),
            column: l.column().max(1),
        });
        let mut message = format!("not valid YAML: {}", strip_location(&error.to_string()));
        if let Some(hint) = yaml_hint(text, position, &message) {
            message.push_str("; ");
            message.push_str(hint);
        }
        SyntaxError {
            path: KeyPath::root(),
            position,
            message,
        }
    })?;
    // `<<: *defaults` is how YAML users share blocks; without this it would be an unknown key.
    yaml.apply_merge().map_err(|error| SyntaxError {
        path: KeyPath::root(),
        position: None,
        message: format!("cannot apply a `<<` merge key: {error}"),
    })?;
    Ok(yaml_to_json(yaml, &KeyPath::root(), left_out))
}

/// The YAML mistakes people make in pipeline files, named where the parser's words are cryptic.
fn yaml_hint(text: &str, position: Option<Position>, message: &str) -> Option<&'static str> {
    if message.contains("more than one document") {
        return Some("a pipeline file holds one document; remove the `---` after the first");
    }
    let line = text.lines().nth(position?.line.checked_sub(1)?)?;
    if line.contains("{{") {
        Some("a value holding a {{...}} template must be quoted, e.g. \"Bearer {{state.id}}\"")
    } else if line.contains(": *") || line.trim_start().starts_with("- *") {
        Some(
            "a value starting with `*` reads as a YAML alias; quote it, e.g. schedule: \
             \"*/10 * * * *\"",
        )
    } else {
        None
    }
}

/// serde_yaml and serde_json end their messages with the position, which is reported apart.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

fn yaml_to_json(value: serde_yaml::Value, path: &KeyPath, left_out: &mut Vec<LeftOut>) -> Value {
    let leave_out = |left_out: &mut Vec<LeftOut>, message: String| {
        left_out.push(LeftOut {
            path: path.clone(),
            message,
            whole_value: true,
        });
        Value::Null
    };
    match value {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let float = n.as_f64().unwrap_or(f64::NAN);
                match serde_json::Number::from_f64(float) {
                    Some(number) => Value::Number(number),
                    None => leave_out(
                        left_out,
                        format!("`{n}` is not a finite number; write a number or quote it"),
                    ),
                }
            }
        }
        serde_yaml::Value::String(s) => Value::String(s),
        serde_yaml::Value::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| yaml_to_json(item, &path.index(i), left_out))
                .collect(),
        ),
        serde_yaml::Value::Mapping(entries) => {
            let mut map = serde_json::Map::with_capacity(entries.len());
            for (key, value) in entries {
                let key = match key {
                    serde_yaml::Value::String(s) => s,
                    // `200: ok` or `true: x` as a key: YAML reads them as numbers and booleans,
                    // the user meant the text.
                    serde_yaml::Value::Number(n) => n.to_string(),
                    serde_yaml::Value::Bool(b) => b.to_string(),
                    other => {
                        left_out.push(LeftOut {
                            path: path.clone(),
                            message: format!(
                                "a mapping key must be text, not {}",
                                yaml_kind(&other)
                            ),
                            whole_value: false,
                        });
                        continue;
                    }
                };
                let converted = yaml_to_json(value, &path.key(&key), left_out);
                map.insert(key, converted);
            }
            Value::Object(map)
        }
        serde_yaml::Value::Tagged(tagged) => leave_out(
            left_out,
            format!(
                "YAML tags such as `{}` are not supported; remove the tag",
                tagged.tag
            ),
        ),
    }
}

fn yaml_kind(value: &serde_yaml::Value) -> &'static str {
    match value {
        serde_yaml::Value::Null => "null",
        serde_yaml::Value::Bool(_) => "a boolean",
        serde_yaml::Value::Number(_) => "a number",
        serde_yaml::Value::String(_) => "text",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a mapping",
        serde_yaml::Value::Tagged(_) => "a tagged value",
    }
}

enum Frame {
    Mapping {
        path: Option<KeyPath>,
        key: Option<String>,
        expecting_key: bool,
        seen: HashSet<String>,
    },
    Sequence {
        path: Option<KeyPath>,
        next: usize,
    },
}

/// Walks the YAML events (JSON is YAML too) and records where every key and list item starts.
/// Also finds the first key written twice in one mapping, which serde_json would silently
/// resolve to the last one, and refuses lists and mappings nested deeper than [`MAX_NESTING`]
/// and aliases standing for more than [`MAX_ALIAS_VALUES`] values (in every document of the
/// text: serde_yaml reads a second one before refusing it). A text
/// the event parser rejects yields the positions found so far; the value parser then says what
/// is wrong with it.
fn index_positions(text: &str, format: Format) -> (PositionIndex, Option<SyntaxError>) {
    let mut index = PositionIndex::default();
    index
        .positions
        .insert(KeyPath::root(), Position { line: 1, column: 1 });
    let mut stack: Vec<Frame> = Vec::new();
    let mut documents = 0;
    let mut size = Size::default();
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        let (event, span) = match next {
            Ok(next) => next,
            Err(error) => return (index, refused_deep_text(text, format, &error)),
        };
        if let Err(refused) = size.add(&event, &span) {
            return (index, Some(refused));
        }
        if let Event::DocumentStart(_) = event {
            documents += 1;
        }
        if documents > 1 {
            // Only the first document is a pipeline; the others are read for their depth.
            continue;
        }
        match event {
            Event::Scalar(value, ..) => {
                if let Some(duplicate) = on_scalar(&mut stack, &mut index, &value, &span) {
                    return (index, Some(duplicate));
                }
            }
            Event::Alias(_) => {
                node_path(&mut stack, &mut index, &span);
                node_done(&mut stack);
            }
            Event::MappingStart(..) => {
                let path = node_path(&mut stack, &mut index, &span);
                stack.push(Frame::Mapping {
                    path,
                    key: None,
                    expecting_key: true,
                    seen: HashSet::new(),
                });
            }
            Event::SequenceStart(..) => {
                let path = node_path(&mut stack, &mut index, &span);
                stack.push(Frame::Sequence { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                node_done(&mut stack);
            }
            _ => {}
        }
    }
    (index, None)
}

/// What serde_yaml would build from the events seen so far: how deep it nests, and how many
/// values aliases add to it.
#[derive(Default)]
struct Size {
    /// The open lists and mappings: the anchor each is stored under (0 for none) and the values
    /// it holds so far, itself included, aliases counted out.
    open: Vec<(usize, usize)>,
    /// The values each anchor stands for, aliases inside it counted out.
    anchored: HashMap<usize, usize>,
    /// The values aliases added so far.
    from_aliases: usize,
}

impl Size {
    fn add(&mut self, event: &Event<'_>, span: &Span) -> Result<(), SyntaxError> {
        match event {
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                self.open.push((*anchor, 1));
                if self.open.len() > MAX_NESTING {
                    return Err(nested_too_deep(Position::of(span)));
                }
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some((anchor, values)) = self.open.pop() {
                    self.close(anchor, values);
                }
            }
            Event::Scalar(_, _, anchor, _) => self.close(*anchor, 1),
            Event::Alias(anchor) => {
                // An alias of a collection still open (itself or an ancestor) is refused by the
                // value parser; it counts as one value here.
                let values = self.anchored.get(anchor).copied().unwrap_or(1);
                self.from_aliases = self.from_aliases.saturating_add(values);
                if self.from_aliases > MAX_ALIAS_VALUES {
                    return Err(SyntaxError {
                        path: KeyPath::root(),
                        position: Some(Position::of(span)),
                        message: format!(
                            "the aliases (`*name`) of this file stand for more than \
                             {MAX_ALIAS_VALUES} values in all; a pipeline needs far fewer: \
                             write large blocks out once instead of repeating their aliases"
                        ),
                    });
                }
                self.close(0, values);
            }
            _ => {}
        }
        Ok(())
    }

    /// A value of `values` values in all ended: it counts in the collection holding it.
    fn close(&mut self, anchor: usize, values: usize) {
        if anchor != 0 {
            self.anchored.insert(anchor, values);
        }
        if let Some((_, parent)) = self.open.last_mut() {
            *parent = parent.saturating_add(values);
        }
    }
}

fn nested_too_deep(position: Position) -> SyntaxError {
    SyntaxError {
        path: KeyPath::root(),
        position: Some(position),
        message: format!(
            "lists and mappings are nested more than {MAX_NESTING} levels deep here; a pipeline \
             needs far fewer: look for a `[` or `{{` that is never closed"
        ),
    }
}

/// What to report when the event parser refused `text`, if its brackets nest deeper than
/// [`MAX_NESTING`]; `None` hands the text over to serde_yaml (serde_json), which then says what
/// is wrong in its words.
///
/// The event parser reads ahead over opening brackets (each may start a key), so deep flow
/// nesting reaches it as an error of its own (at 256 levels), not as events. When that error lies
/// past the point where the brackets pass the limit, the nesting is the problem. When it lies
/// before (a YAML 1.2 rule that serde_yaml does not apply), the text still must not reach
/// serde_yaml, which would take quadratic time over the brackets: the event parser's own error
/// is reported. The brackets are counted without regard to quotes or comments, so the count may
/// pass the limit where the YAML does not; it only ever decides for a text the event parser
/// already refused.
fn refused_deep_text(
    text: &str,
    format: Format,
    error: &saphyr_parser::ScanError,
) -> Option<SyntaxError> {
    let too_deep = first_bracket_past_limit(text)?;
    if error.marker().index() >= too_deep.offset {
        return Some(nested_too_deep(too_deep.position));
    }
    // serde_json refuses deep nesting in linear time and words the mistake for JSON.
    (format == Format::Yaml).then(|| SyntaxError {
        path: KeyPath::root(),
        position: Some(Position {
            line: error.marker().line(),
            column: error.marker().col() + 1,
        }),
        message: format!("not valid YAML: {}", error.info()),
    })
}

/// Where a bracket first opens a level deeper than [`MAX_NESTING`].
struct DeepBracket {
    /// Offset in characters, as the event parser counts them.
    offset: usize,
    position: Position,
}

fn first_bracket_past_limit(text: &str) -> Option<DeepBracket> {
    let mut depth = 0_usize;
    let (mut line, mut column) = (1, 1);
    for (offset, c) in text.chars().enumerate() {
        match c {
            '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(DeepBracket {
                        offset,
                        position: Position { line, column },
                    });
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    None
}

fn on_scalar(
    stack: &mut [Frame],
    index: &mut PositionIndex,
    value: &str,
    span: &Span,
) -> Option<SyntaxError> {
    if let Some(Frame::Mapping {
        path,
        key,
        expecting_key,
        seen,
    }) = stack.last_mut()
        && *expecting_key
    {
        *expecting_key = false;
        *key = Some(value.to_owned());
        if let Some(path) = path {
            let key_path = path.key(value);
            if !seen.insert(value.to_owned()) {
                let first = index.positions.get(&key_path).copied();
                return Some(SyntaxError {
                    position: Some(Position::of(span)),
                    message: format!(
                        "the key `{value}` is written twice in the same mapping{}; keep one",
                        first
                            .map(|p| format!(" (first at line {})", p.line))
                            .unwrap_or_default()
                    ),
                    path: key_path,
                });
            }
            index.positions.insert(key_path, Position::of(span));
        }
        return None;
    }
    node_path(stack, index, span);
    node_done(stack);
    None
}

/// The key path of a value node that starts at `span`; list items get their position here
/// (mapping values already got theirs from their key).
fn node_path(stack: &mut [Frame], index: &mut PositionIndex, span: &Span) -> Option<KeyPath> {
    match stack.last_mut() {
        None => Some(KeyPath::root()),
        Some(Frame::Mapping {
            path,
            key,
            expecting_key,
            ..
        }) => {
            if *expecting_key {
                // A list or mapping used as a key: nothing under it has a key path.
                *expecting_key = false;
                *key = None;
                return None;
            }
            Some(path.as_ref()?.key(key.as_deref()?))
        }
        Some(Frame::Sequence { path, next }) => {
            let item = path.as_ref().map(|p| p.index(*next));
            *next += 1;
            if let Some(item) = &item {
                index.positions.insert(item.clone(), Position::of(span));
            }
            item
        }
    }
}

/// A value node ended: its mapping now waits for the next key.
fn node_done(stack: &mut [Frame]) {
    if let Some(Frame::Mapping { expecting_key, .. }) = stack.last_mut() {
        *expecting_key = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_like_the_file() {
        let path = KeyPath::root().key("filters").index(2).key("type");
        assert_eq!(path.to_string(), "filters[2].type");
        let header = KeyPath::root().key("input").key("headers").key("X.Trace");
        assert_eq!(header.to_string(), "input.headers[\"X.Trace\"]");
    }

    #[test]
    fn indexes_block_and_flow_keys_and_list_items() {
        let text = "name: a\ninput:\n  type: database\n  statePersistence:\n    id: {enabled: true, field: id}\nfilters:\n  - type: set\n  - type: drop\n";
        let doc = parse(text, Format::Yaml).unwrap();
        let at = |path: KeyPath| doc.index.locate(&path).unwrap();
        let sp = KeyPath::root().key("input").key("statePersistence");
        assert_eq!(
            at(sp.key("id").key("field")),
            Position {
                line: 5,
                column: 25
            }
        );
        assert_eq!(
            at(KeyPath::root().key("filters").index(1)),
            Position { line: 8, column: 5 }
        );
        assert_eq!(
            at(KeyPath::root().key("filters").index(1).key("type")),
            Position { line: 8, column: 5 }
        );
        // A missing key falls back to its parent.
        assert_eq!(at(sp.key("offset")), Position { line: 4, column: 3 });
    }

    #[test]
    fn a_key_written_twice_is_an_error_in_json_too() {
        let err = parse("{\"name\": \"a\", \"name\": \"b\"}", Format::Json)
            .err()
            .unwrap();
        assert_eq!(err.path.to_string(), "name");
        assert!(err.message.contains("written twice"), "{}", err.message);
    }
}
