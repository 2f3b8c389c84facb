//! The transforms of a `mapping`, applied to one value (docs/filters.md, Transforms).
//!
//! Their meanings are the Go tool's: text transforms pass other values through, conversions
//! fail on what they cannot convert, and a null reaches no transform (a mapping writes it as
//! it is).

use cannectors_config::Transform;
use cannectors_state::json_kind;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use serde_json::{Number, Value};

/// `value` after `transform`, or why it cannot be transformed.
pub(crate) fn apply(transform: &Transform, value: Value) -> Result<Value, String> {
    if value.is_null() {
        return Ok(value);
    }
    Ok(match transform {
        Transform::Trim => map_text(value, |text| text.trim().to_owned()),
        Transform::Lowercase => map_text(value, |text| text.to_lowercase()),
        Transform::Uppercase => map_text(value, |text| text.to_uppercase()),
        Transform::Replace {
            pattern,
            replacement,
        } => map_text(value, |text| {
            pattern
                .regex()
                .replace_all(text, replacement.as_str())
                .into_owned()
        }),
        Transform::Split { separator } => match value {
            Value::String(text) => Value::Array(
                text.split(separator.as_str())
                    .map(|part| Value::String(part.trim().to_owned()))
                    .collect(),
            ),
            other => other,
        },
        Transform::Join { separator } => match value {
            Value::Array(items) => Value::String(
                items
                    .iter()
                    .map(as_text)
                    .collect::<Vec<_>>()
                    .join(separator),
            ),
            other => other,
        },
        Transform::DateFormat(format) => match value {
            Value::String(text) => Value::String(format.render(&parse_date(&text)?)),
            other => other,
        },
        Transform::ToString => Value::String(as_text(&value)),
        Transform::ToInt => to_int(&value)?,
        Transform::ToFloat => to_float(&value)?,
        Transform::ToBool => Value::Bool(to_bool(&value)?),
        Transform::ToArray => match value {
            Value::Array(items) => Value::Array(items),
            other => Value::Array(vec![other]),
        },
        Transform::ToObject => match value {
            Value::Object(map) => Value::Object(map),
            other => return Err(format!("{} is not an object", describe(&other))),
        },
    })
}

/// `transform` of a string borrowed from the record, when it is a text transform that makes a
/// new string anyway (so the string need not be copied first); `None` for any other case.
pub(crate) fn apply_to_text(transform: &Transform, text: &str) -> Option<Value> {
    let changed = match transform {
        Transform::Trim => text.trim().to_owned(),
        Transform::Lowercase => text.to_lowercase(),
        Transform::Uppercase => text.to_uppercase(),
        _ => return None,
    };
    Some(Value::String(changed))
}

fn map_text(value: Value, change: impl FnOnce(&str) -> String) -> Value {
    match value {
        Value::String(text) => Value::String(change(&text)),
        other => other,
    }
}

/// A value as text: a string as it is, anything else as its JSON.
fn as_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A value and its kind, for messages: `` `"12a"` (a string) ``.
fn describe(value: &Value) -> String {
    let mut shown = value.to_string();
    if shown.len() > 60 {
        let mut end = 57;
        while !shown.is_char_boundary(end) {
            end -= 1;
        }
        shown.truncate(end);
        shown.push_str("...");
    }
    format!("`{shown}` ({})", json_kind(value))
}

fn to_int(value: &Value) -> Result<Value, String> {
    let whole = |number: f64| -> Result<Value, String> {
        if number.fract() == 0.0 && number.abs() < 9.2e18 {
            Ok(Value::from(number as i64))
        } else {
            Err(format!(
                "{} has a fractional part, so it is not a whole number",
                describe(value)
            ))
        }
    };
    match value {
        Value::Number(number) => match (number.as_i64(), number.as_u64(), number.as_f64()) {
            (Some(integer), _, _) => Ok(Value::from(integer)),
            (None, Some(integer), _) => Ok(Value::from(integer)),
            (None, None, Some(float)) => whole(float),
            _ => Err(format!("{} is not a whole number", describe(value))),
        },
        Value::String(text) => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("{} is not a whole number", describe(value))),
        Value::Bool(flag) => Ok(Value::from(i64::from(*flag))),
        other => Err(format!("{} cannot be made a whole number", describe(other))),
    }
}

fn to_float(value: &Value) -> Result<Value, String> {
    let float = match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok(),
        Value::Bool(flag) => Some(if *flag { 1.0 } else { 0.0 }),
        _ => None,
    };
    float
        .and_then(Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| format!("{} is not a number", describe(value)))
}

fn to_bool(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(flag) => Ok(*flag),
        // The words Go's strconv.ParseBool takes, as the Go tool does.
        Value::String(text) => match text.trim() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            _ => Err(format!(
                "{} is not a boolean (true, false, 1, 0, t or f)",
                describe(value)
            )),
        },
        Value::Number(number) => Ok(number.as_f64().is_some_and(|n| n != 0.0)),
        other => Err(format!("{} cannot be made a boolean", describe(other))),
    }
}

/// A date or time as the Go tool reads one: RFC 3339 (any offset and precision), a date and
/// time without offset (taken as UTC), a date alone, or RFC 1123 (`Mon, 02 Jan 2006 15:04:05 MST`).
fn parse_date(text: &str) -> Result<DateTime<FixedOffset>, String> {
    let utc = FixedOffset::east_opt(0).ok_or("no UTC offset")?;
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant);
    }
    for layout in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, layout) {
            return Ok(utc.from_utc_datetime(&naive));
        }
    }
    if let Some(midnight) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
    {
        return Ok(utc.from_utc_datetime(&midnight));
    }
    if let Ok(instant) = DateTime::parse_from_rfc2822(text) {
        return Ok(instant);
    }
    Err(format!(
        "`{text}` is not a date: expected RFC 3339 (2026-01-02T15:04:05Z), a date and time \
         without offset, a date (2026-01-02) or RFC 1123 (Fri, 02 Jan 2026 15:04:05 GMT)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cannectors_config::DateFormat;
    use serde_json::json;

    fn run(transform: Transform, value: Value) -> Result<Value, String> {
        apply(&transform, value)
    }

    fn pattern(text: &str) -> cannectors_config::Pattern {
        // Built through a pipeline: a Pattern is made only by validation.
        let yaml = format!(
            "name: p\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:1/'}}\nfilters:\n  \
             - type: mapping\n    mappings:\n      - {{source: a, target: a, transforms: [{{op: \
             replace, pattern: '{text}'}}]}}\noutput: {{type: stdout}}\n"
        );
        let loaded = cannectors_config::parse_str(&yaml, "p.yaml", &|_| None).unwrap();
        let cannectors_config::FilterConfig::Mapping(mapping) = &loaded.pipeline.filters[0] else {
            panic!()
        };
        let Transform::Replace { pattern, .. } = &mapping.mappings[0].transforms[0] else {
            panic!()
        };
        pattern.clone()
    }

    #[test]
    fn text_transforms_change_strings_and_pass_other_values_through() {
        assert_eq!(run(Transform::Trim, json!("  a b \n")), Ok(json!("a b")));
        assert_eq!(run(Transform::Lowercase, json!("ÀB")), Ok(json!("àb")));
        assert_eq!(run(Transform::Uppercase, json!("àb")), Ok(json!("ÀB")));
        for transform in [Transform::Trim, Transform::Lowercase, Transform::Uppercase] {
            assert_eq!(run(transform.clone(), json!(12)), Ok(json!(12)));
            assert_eq!(run(transform.clone(), json!([" a "])), Ok(json!([" a "])));
            assert_eq!(run(transform, json!(null)), Ok(json!(null)));
        }
    }

    #[test]
    fn replace_uses_a_regular_expression_and_groups() {
        let phone = Transform::Replace {
            pattern: pattern("[^0-9+]"),
            replacement: String::new(),
        };
        assert_eq!(
            run(phone.clone(), json!("+33 (6) 12-34")),
            Ok(json!("+3361234"))
        );
        assert_eq!(run(phone, json!(33)), Ok(json!(33)));
        let swap = Transform::Replace {
            pattern: pattern("(\\w+)@(\\w+)"),
            replacement: "$2 at ${1}".to_owned(),
        };
        assert_eq!(run(swap, json!("ann@corp")), Ok(json!("corp at ann")));
    }

    #[test]
    fn split_trims_parts_and_join_writes_items_as_text() {
        let split = Transform::Split {
            separator: ",".to_owned(),
        };
        assert_eq!(
            run(split.clone(), json!("a, b ,c")),
            Ok(json!(["a", "b", "c"]))
        );
        assert_eq!(run(split.clone(), json!("")), Ok(json!([""])));
        assert_eq!(run(split, json!(["x"])), Ok(json!(["x"])));
        let join = Transform::Join {
            separator: "|".to_owned(),
        };
        assert_eq!(
            run(join.clone(), json!(["a", 1, true, 1.5, null, {"k": 1}])),
            Ok(json!("a|1|true|1.5|null|{\"k\":1}"))
        );
        assert_eq!(run(join, json!("a,b")), Ok(json!("a,b")));
    }

    #[test]
    fn date_format_reads_the_go_tool_inputs() {
        let date = Transform::DateFormat(DateFormat::parse("YYYY-MM-DD HH:mm:ss.SSS"));
        for (input, output) in [
            ("2026-01-02T03:04:05Z", "2026-01-02 03:04:05.000"),
            ("2026-01-02T03:04:05.678+02:00", "2026-01-02 03:04:05.678"),
            ("2026-01-02T03:04:05", "2026-01-02 03:04:05.000"),
            ("2026-01-02", "2026-01-02 00:00:00.000"),
            ("Fri, 02 Jan 2026 03:04:05 GMT", "2026-01-02 03:04:05.000"),
        ] {
            assert_eq!(
                run(date.clone(), json!(input)),
                Ok(json!(output)),
                "{input}"
            );
        }
        assert_eq!(run(date.clone(), json!(1700000000)), Ok(json!(1700000000)));
        let error = run(date, json!("yesterday")).unwrap_err();
        assert!(
            error.starts_with("`yesterday` is not a date: expected RFC 3339"),
            "{error}"
        );
    }

    #[test]
    fn to_string_writes_json_for_what_is_not_a_string() {
        assert_eq!(run(Transform::ToString, json!("a")), Ok(json!("a")));
        assert_eq!(run(Transform::ToString, json!(42)), Ok(json!("42")));
        assert_eq!(run(Transform::ToString, json!(1.5)), Ok(json!("1.5")));
        assert_eq!(run(Transform::ToString, json!(false)), Ok(json!("false")));
        assert_eq!(
            run(Transform::ToString, json!({"a": [1]})),
            Ok(json!("{\"a\":[1]}"))
        );
    }

    #[test]
    fn to_int_takes_whole_numbers_numeric_strings_and_booleans() {
        assert_eq!(run(Transform::ToInt, json!(7)), Ok(json!(7)));
        assert_eq!(run(Transform::ToInt, json!(7.0)), Ok(json!(7)));
        assert_eq!(run(Transform::ToInt, json!(" 42 ")), Ok(json!(42)));
        assert_eq!(run(Transform::ToInt, json!(true)), Ok(json!(1)));
        assert_eq!(
            run(Transform::ToInt, json!(7.5)),
            Err("`7.5` (a number) has a fractional part, so it is not a whole number".to_owned())
        );
        assert_eq!(
            run(Transform::ToInt, json!("12a")),
            Err("`\"12a\"` (a string) is not a whole number".to_owned())
        );
        assert_eq!(
            run(Transform::ToInt, json!("1.5")),
            Err("`\"1.5\"` (a string) is not a whole number".to_owned())
        );
        assert_eq!(
            run(Transform::ToInt, json!([1])),
            Err("`[1]` (an array) cannot be made a whole number".to_owned())
        );
    }

    #[test]
    fn to_float_takes_numbers_numeric_strings_and_booleans() {
        assert_eq!(run(Transform::ToFloat, json!(7)), Ok(json!(7.0)));
        assert_eq!(run(Transform::ToFloat, json!("2.5")), Ok(json!(2.5)));
        assert_eq!(run(Transform::ToFloat, json!(false)), Ok(json!(0.0)));
        assert_eq!(
            run(Transform::ToFloat, json!("abc")),
            Err("`\"abc\"` (a string) is not a number".to_owned())
        );
        assert_eq!(
            run(Transform::ToFloat, json!("NaN")),
            Err("`\"NaN\"` (a string) is not a number".to_owned())
        );
        assert!(run(Transform::ToFloat, json!({})).is_err());
    }

    #[test]
    fn to_bool_takes_the_go_words_and_numbers() {
        for (input, output) in [
            (json!("true"), true),
            (json!(" T "), true),
            (json!("1"), true),
            (json!("FALSE"), false),
            (json!("f"), false),
            (json!(0), false),
            (json!(2.5), true),
            (json!(false), false),
        ] {
            assert_eq!(
                run(Transform::ToBool, input.clone()),
                Ok(json!(output)),
                "{input}"
            );
        }
        assert_eq!(
            run(Transform::ToBool, json!("yes")),
            Err("`\"yes\"` (a string) is not a boolean (true, false, 1, 0, t or f)".to_owned())
        );
        assert!(run(Transform::ToBool, json!([])).is_err());
    }

    #[test]
    fn to_array_wraps_and_to_object_refuses_non_objects() {
        assert_eq!(run(Transform::ToArray, json!([1])), Ok(json!([1])));
        assert_eq!(run(Transform::ToArray, json!("a")), Ok(json!(["a"])));
        assert_eq!(
            run(Transform::ToObject, json!({"a": 1})),
            Ok(json!({"a": 1}))
        );
        assert_eq!(
            run(Transform::ToObject, json!("a")),
            Err("`\"a\"` (a string) is not an object".to_owned())
        );
    }

    #[test]
    fn null_reaches_no_transform() {
        assert_eq!(run(Transform::ToInt, json!(null)), Ok(json!(null)));
        assert_eq!(run(Transform::ToObject, json!(null)), Ok(json!(null)));
    }
}
