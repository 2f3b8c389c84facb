//! Expressions of the expr language (`condition` filters), compiled once when a pipeline is
//! loaded and evaluated against each record.
//!
//! The language is the one of the Go tool this project descends from (expr-lang), through the
//! `expr-lang` crate, which implements it with the same runtime meaning: `==`, `!=`, `<`, `>`,
//! `&&`/`and`, `||`/`or`, `!`/`not`, `in`, `matches`, `contains`, `startsWith`, arithmetic,
//! `nil`, single- or double-quoted strings, dot paths. As in that tool, a variable the record
//! does not have is `nil` rather than an error, and a result that is not a boolean counts as
//! true unless it is `nil`, `false`, zero, or an empty string, list or object.
//!
//! Evaluation converts only the fields an expression reads, each at most once a record, from
//! the record's `serde_json` value into the crate's values; the rest of the record is never
//! copied.

use std::cell::OnceCell;
use std::fmt;

use ::expr::{Context, ContextProvider, Program};
use serde_json::{Map, Value};

/// A compiled expression and the text it was compiled from.
///
/// ```
/// use cannectors_config::Expression;
/// use serde_json::json;
///
/// let hot = Expression::compile("status == 'active' && amount > 100").unwrap();
/// assert!(hot.is_true(&json!({"status": "active", "amount": 150})).unwrap());
/// assert!(!hot.is_true(&json!({"status": "active", "amount": 20})).unwrap());
/// // A field the record lacks is nil, as in the Go tool.
/// assert!(Expression::compile("email == nil").unwrap().is_true(&json!({})).unwrap());
/// ```
#[derive(Clone)]
pub struct Expression {
    text: String,
    program: Program,
}

/// Why an expression does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpressionError {
    /// Nothing but spaces.
    #[error(
        "the expression is empty; write a condition on the record, such as `status == 'active'`"
    )]
    Empty,
    /// Not a sentence of the language.
    #[error("`{text}` is not a valid expression: {reason}")]
    Syntax {
        /// The expression as written.
        text: String,
        /// Where the parser stopped and what it expected there.
        reason: String,
    },
}

/// Why an expression could not be evaluated on one record: an operator on values it does not
/// take (`amount > 'a'`), a field read from something that is not an object, a bad regular
/// expression after `matches`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot evaluate `{expression}`: {reason}")]
pub struct EvaluationError {
    expression: String,
    reason: String,
}

impl Expression {
    /// Compiles `text`; the program is kept and run on every evaluation.
    pub fn compile(text: &str) -> Result<Expression, ExpressionError> {
        if text.trim().is_empty() {
            return Err(ExpressionError::Empty);
        }
        let program = ::expr::compile(text).map_err(|error| ExpressionError::Syntax {
            text: text.to_owned(),
            reason: one_line(&error.to_string()),
        })?;
        Ok(Expression {
            text: text.to_owned(),
            program,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the expression holds for `variables`: the fields of an object are the
    /// variables (any other value has none). A result that is not a boolean is true unless
    /// it is `nil`, zero, or an empty string, list or object, as in the Go tool.
    pub fn is_true(&self, variables: &Value) -> Result<bool, EvaluationError> {
        static NO_FIELDS: std::sync::LazyLock<Map<String, Value>> =
            std::sync::LazyLock::new(Map::new);
        self.is_true_in(variables.as_object().unwrap_or(&NO_FIELDS))
    }

    /// Whether the expression holds for the variables `fields` holds: [`Expression::is_true`]
    /// for a record that is not a `serde_json` map (one whose fields are read only when an
    /// expression asks for them).
    pub fn is_true_in(&self, fields: &dyn Fields) -> Result<bool, EvaluationError> {
        let variables = Variables::new(fields);
        let result = ::expr::run(&self.program, &variables).map_err(|error| EvaluationError {
            expression: self.text.clone(),
            reason: one_line(&error.to_string()),
        })?;
        Ok(truthy(&result))
    }
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expression").field(&self.text).finish()
    }
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Two expressions are the same when they are written the same.
impl PartialEq for Expression {
    fn eq(&self, other: &Expression) -> bool {
        self.text == other.text
    }
}

/// The Go tool's truth of a value that is not a boolean.
fn truthy(value: &::expr::Value) -> bool {
    match value {
        ::expr::Value::Bool(flag) => *flag,
        ::expr::Value::Nil => false,
        ::expr::Value::Integer(number) => *number != 0,
        ::expr::Value::Float(number) => *number != 0.0,
        ::expr::Value::String(text) => !text.is_empty(),
        ::expr::Value::Array(items) => !items.is_empty(),
        ::expr::Value::Map(map) => !map.is_empty(),
        ::expr::Value::KeyedMap(map) => !map.is_empty(),
        ::expr::Value::Bytes(bytes) => !bytes.is_empty(),
        // Dates, durations and the like, which only the crate's optional features make.
        #[allow(unreachable_patterns)]
        _ => true,
    }
}

/// The parser's messages span several lines (the text, a caret, what was expected); a
/// problem is one line, and the expression is already quoted beside it.
fn one_line(message: &str) -> String {
    let position = message
        .lines()
        .find_map(|line| line.trim().strip_prefix("--> "))
        .map(str::trim);
    let expected = message
        .lines()
        .find_map(|line| line.trim().strip_prefix("= "))
        .map(str::trim);
    match (position, expected) {
        (Some(position), Some(expected)) => {
            let column = position.rsplit(':').next().unwrap_or(position);
            format!("at character {column}, {}", plain(expected))
        }
        _ => message.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// What the parser expected, in words instead of the names of its grammar's rules.
fn plain(expected: &str) -> String {
    let rules = expected.strip_prefix("expected ").unwrap_or(expected);
    let words = if rules.contains("value") || rules.contains("expr") {
        "expected a value, a field name or an opening bracket"
    } else if rules.contains("_op") {
        "expected an operator, a closing bracket or the end of the expression"
    } else if rules == "ident" {
        "expected a field name"
    } else if rules == "program" {
        "the text cannot be read from here on (is a closing quote missing?)"
    } else {
        return expected.to_owned();
    };
    words.to_owned()
}

/// The top-level fields of a record, as the variables of an expression read them: by name,
/// each when an expression first asks for it.
pub trait Fields {
    /// How many fields there are; positions go from 0 to this, excluded.
    fn count(&self) -> usize;

    /// The position of the field called `name`, if there is one.
    fn position(&self, name: &str) -> Option<usize>;

    /// The value of the field at `position`; `None` when it cannot be read (the expression
    /// then fails on it rather than seeing `nil`).
    fn value(&self, position: usize) -> Option<&Value>;

    /// Calls `each` with every field, in order.
    fn for_each(&self, each: &mut dyn FnMut(&str, &Value));
}

impl Fields for Map<String, Value> {
    fn count(&self) -> usize {
        self.len()
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.keys().position(|key| key == name)
    }

    fn value(&self, position: usize) -> Option<&Value> {
        self.values().nth(position)
    }

    fn for_each(&self, each: &mut dyn FnMut(&str, &Value)) {
        for (name, value) in self {
            each(name, value);
        }
    }
}

/// The fields of one record as the variables of an expression. A field is converted when the
/// expression first reads it; a name the record does not have is `nil`.
struct Variables<'a> {
    fields: &'a dyn Fields,
    converted: Converted,
}

/// The converted fields, by position: in place for a record of a few fields, so that an
/// evaluation allocates nothing for them.
// Large on purpose: it lives on the stack for one evaluation, instead of on the heap.
#[allow(clippy::large_enum_variant)]
enum Converted {
    Inline([OnceCell<::expr::Value>; INLINE_FIELDS]),
    Heap(Vec<OnceCell<::expr::Value>>),
}

const INLINE_FIELDS: usize = 16;

impl Converted {
    fn for_fields(count: usize) -> Converted {
        if count <= INLINE_FIELDS {
            Converted::Inline(std::array::from_fn(|_| OnceCell::new()))
        } else {
            Converted::Heap(std::iter::repeat_with(OnceCell::new).take(count).collect())
        }
    }

    fn get(&self, position: usize) -> Option<&OnceCell<::expr::Value>> {
        match self {
            Converted::Inline(cells) => cells.get(position),
            Converted::Heap(cells) => cells.get(position),
        }
    }
}

static NIL: ::expr::Value = ::expr::Value::Nil;

impl<'a> Variables<'a> {
    fn new(fields: &'a dyn Fields) -> Variables<'a> {
        Variables {
            fields,
            converted: Converted::for_fields(fields.count()),
        }
    }
}

impl ContextProvider for Variables<'_> {
    fn get(&self, key: &str) -> Option<&::expr::Value> {
        // `#` is the element of a predicate (`all(items, # > 0)`); the crate keeps it in a scope
        // of its own and asks here only outside one, where it is not defined.
        if key == "#" {
            return None;
        }
        match self.fields.position(key) {
            Some(i) => {
                let cell = self.converted.get(i)?;
                if let Some(converted) = cell.get() {
                    return Some(converted);
                }
                let value = self.fields.value(i)?;
                Some(cell.get_or_init(|| convert(value)))
            }
            None => Some(&NIL),
        }
    }

    fn to_context(&self) -> Context {
        let mut context = Context::default();
        self.fields.for_each(&mut |name, value| {
            context.insert(name.to_owned(), convert(value));
        });
        context
    }
}

/// A JSON value as a value of the expr language: whole numbers that fit are integers (so that
/// `count == 3` and `count % 2` behave as in the Go tool), other numbers floats.
fn convert(value: &Value) -> ::expr::Value {
    match value {
        Value::Null => ::expr::Value::Nil,
        Value::Bool(flag) => ::expr::Value::Bool(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(integer) => ::expr::Value::Integer(integer),
            None => ::expr::Value::Float(number.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(text) => ::expr::Value::String(text.clone()),
        Value::Array(items) => ::expr::Value::Array(items.iter().map(convert).collect()),
        Value::Object(map) => ::expr::Value::Map(
            map.iter()
                .map(|(name, value)| (name.clone(), convert(value)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn holds(text: &str, record: Value) -> bool {
        Expression::compile(text).unwrap().is_true(&record).unwrap()
    }

    fn fails(text: &str, record: Value) -> String {
        Expression::compile(text)
            .unwrap()
            .is_true(&record)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn compares_strings_numbers_and_booleans() {
        let record = json!({"status": "active", "amount": 150, "price": 1.5, "vip": true});
        for text in [
            "status == 'active'",
            "status == \"active\"",
            "status != 'closed'",
            "amount > 100 && amount < 200",
            "amount >= 150 and amount <= 150",
            "amount == 150.0",
            "price * 2 == 3",
            "amount + 1 == 151",
            "amount % 7 == 3",
            "amount / 3 == 50",
            "vip",
            "vip == true",
            "!(amount < 100)",
            "not (amount < 100)",
            "amount < 100 || status == 'active'",
            "amount < 100 or status == 'active'",
        ] {
            assert!(holds(text, record.clone()), "{text}");
        }
        assert!(!holds("status == 'closed' || amount < 100", record));
    }

    #[test]
    fn string_operators_and_membership() {
        let record = json!({"email": "Ann@Example.com", "tier": "gold", "tags": ["a", "b"]});
        for text in [
            "email contains '@'",
            "email startsWith 'Ann'",
            "email endsWith '.com'",
            "email matches '^[A-Za-z]+@'",
            "tier in ['gold', 'platinum']",
            "'a' in tags",
            "!('c' in tags)",
            "not ('c' in tags)",
        ] {
            assert!(holds(text, record.clone()), "{text}");
        }
        assert!(!holds("tier in ['silver']", record));
    }

    #[test]
    fn dot_paths_read_nested_objects_and_missing_fields_are_nil() {
        let record =
            json!({"customer": {"name": "Ann", "tier": null, "address": {"city": "Lyon"}}});
        assert!(holds("customer.name == 'Ann'", record.clone()));
        assert!(holds("customer.address.city == 'Lyon'", record.clone()));
        assert!(holds("customer.tier == nil", record.clone()));
        assert!(holds("customer.missing == nil", record.clone()));
        assert!(holds("email == nil", record.clone()));
        assert!(holds("deleted_at?.day == nil", record.clone()));
        assert!(!holds("email", record.clone()));
        assert!(!holds("deleted", record));
    }

    #[test]
    fn a_result_that_is_not_a_boolean_is_true_unless_empty_zero_or_nil() {
        let record = json!({"n": 0, "s": "", "list": [], "map": {}, "full": [1], "text": "x"});
        for (text, expected) in [
            ("n", false),
            ("n + 1", true),
            ("s", false),
            ("text", true),
            ("list", false),
            ("full", true),
            ("map", false),
            ("nil", false),
        ] {
            assert_eq!(holds(text, record.clone()), expected, "{text}");
        }
    }

    #[test]
    fn a_field_of_a_missing_object_and_bad_operands_are_errors() {
        assert_eq!(
            fails("amount > 'a'", json!({"amount": 1})),
            "cannot evaluate `amount > 'a'`: Invalid operands for operator >"
        );
        assert!(
            fails("customer.name == 'Ann'", json!({}))
                .starts_with("cannot evaluate `customer.name == 'Ann'`: ")
        );
        assert!(fails("email matches '('", json!({"email": "a"})).contains("unclosed group"));
    }

    #[test]
    fn a_syntax_error_names_the_character_and_what_was_expected() {
        let error = Expression::compile("status ==== 'a'").unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with(
                "`status ==== 'a'` is not a valid expression: at character 10, expected "
            ),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");
        assert_eq!(
            Expression::compile("  ").unwrap_err(),
            ExpressionError::Empty
        );
    }

    #[test]
    fn records_of_many_fields_read_each_one() {
        let mut record = serde_json::Map::new();
        for i in 0..40 {
            record.insert(format!("f{i}"), json!(i));
        }
        assert!(holds(
            "f0 == 0 && f15 == 15 && f16 == 16 && f39 == 39",
            Value::Object(record)
        ));
    }

    #[test]
    fn large_numbers_and_non_objects() {
        assert!(holds("big > 1", json!({"big": 18446744073709551615u64})));
        assert!(!holds("x == 1", json!([1, 2])));
    }
}
