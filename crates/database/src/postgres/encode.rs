//! JSON values bound to PostgreSQL placeholders, converted to the type the server inferred.
//!
//! The statement is prepared first; its parameter types decide how a JSON value is sent, so
//! `WHERE updated_at > $1` receives a real `timestamptz` and `WHERE id > $2` a real `int8`,
//! never text the server would have to cast (or compare as text). Which types can be bound is
//! [`PgType`]'s table, shared with the decoding of rows.

use std::error::Error;

use base64::Engine as _;
use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde_json::Value;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::numeric;
use super::types::PgType;

/// A value ready to be sent for one placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Null,
    Bool(bool),
    Int2(i16),
    Int4(i32),
    Int8(i64),
    Float4(f32),
    Float8(f64),
    Numeric(String),
    /// Text in the binary protocol is its UTF-8 bytes, whatever the text-like type (text,
    /// varchar, char, name, citext, an enum).
    Text(String),
    Timestamptz(DateTime<Utc>),
    Timestamp(NaiveDateTime),
    Date(NaiveDate),
    Time(NaiveTime),
    Uuid(uuid::Uuid),
    Json(Value),
    Bytea(Vec<u8>),
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Param::Null => Ok(IsNull::Yes),
            Param::Bool(v) => v.to_sql(ty, out),
            Param::Int2(v) => v.to_sql(ty, out),
            Param::Int4(v) => v.to_sql(ty, out),
            Param::Int8(v) => v.to_sql(ty, out),
            Param::Float4(v) => v.to_sql(ty, out),
            Param::Float8(v) => v.to_sql(ty, out),
            Param::Numeric(text) => {
                let mut buf = Vec::new();
                numeric::encode(text, &mut buf)?;
                out.extend_from_slice(&buf);
                Ok(IsNull::No)
            }
            Param::Text(text) => {
                out.extend_from_slice(text.as_bytes());
                Ok(IsNull::No)
            }
            Param::Timestamptz(v) => v.to_sql(ty, out),
            Param::Timestamp(v) => v.to_sql(ty, out),
            Param::Date(v) => v.to_sql(ty, out),
            Param::Time(v) => v.to_sql(ty, out),
            Param::Uuid(v) => v.to_sql(ty, out),
            Param::Json(v) => v.to_sql(ty, out),
            Param::Bytea(v) => v.to_sql(ty, out),
        }
    }

    // Every value was converted for its placeholder's type by `convert`.
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Whether values can be bound to a placeholder of this type.
pub(crate) fn bindable(ty: &Type) -> bool {
    PgType::of(ty).is_some_and(|ty| ty.bindable())
}

/// Converts a JSON value for a placeholder of type `ty`; the error says why it does not fit.
pub(crate) fn convert(value: &Value, ty: &Type) -> Result<Param, String> {
    if value.is_null() {
        return Ok(Param::Null);
    }
    // A placeholder of another type is refused when the statement is prepared.
    let Some(form) = PgType::of(ty).filter(PgType::bindable) else {
        return Err(format!("the type {} cannot be bound", ty.name()));
    };
    Ok(match form {
        PgType::Bool => Param::Bool(match value {
            Value::Bool(b) => *b,
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "t" | "yes" | "y" | "on" | "1" => true,
                "false" | "f" | "no" | "n" | "off" | "0" => false,
                _ => return Err("not a boolean (true or false)".to_owned()),
            },
            Value::Number(n) if n.as_i64() == Some(0) => false,
            Value::Number(n) if n.as_i64() == Some(1) => true,
            _ => return Err("not a boolean (true or false)".to_owned()),
        }),
        PgType::Int2 => Param::Int2(
            i16::try_from(integer(value)?).map_err(|_| "out of the int2 range".to_owned())?,
        ),
        PgType::Int4 => Param::Int4(
            i32::try_from(integer(value)?).map_err(|_| "out of the int4 range".to_owned())?,
        ),
        PgType::Int8 => Param::Int8(integer(value)?),
        PgType::Float4 => Param::Float4(float(value)? as f32),
        PgType::Float8 => Param::Float8(float(value)?),
        PgType::Numeric => {
            let text = match value {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.trim().to_owned(),
                _ => return Err("not a number".to_owned()),
            };
            // Checked now, so that the error names the parameter rather than the protocol.
            numeric::encode(&text, &mut Vec::new())?;
            Param::Numeric(text)
        }
        PgType::Timestamptz => Param::Timestamptz(instant(value)?),
        PgType::Timestamp => Param::Timestamp(instant(value)?.naive_utc()),
        PgType::Date => Param::Date(match value {
            Value::String(s) => match NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
                Ok(day) => day,
                Err(_) => instant(value)?.date_naive(),
            },
            _ => instant(value)?.date_naive(),
        }),
        PgType::Time => Param::Time(match value {
            Value::String(s) => NaiveTime::parse_from_str(s.trim(), "%H:%M:%S%.f")
                .map_err(|_| "not a time of day (HH:MM:SS[.ffffff])".to_owned())?,
            _ => return Err("not a time of day (HH:MM:SS[.ffffff])".to_owned()),
        }),
        PgType::Uuid => Param::Uuid(match value {
            Value::String(s) => {
                uuid::Uuid::parse_str(s.trim()).map_err(|e| format!("not a UUID ({e})"))?
            }
            _ => return Err("not a UUID".to_owned()),
        }),
        PgType::Json | PgType::Jsonb => Param::Json(value.clone()),
        PgType::Bytea => Param::Bytea(match value {
            Value::String(s) => base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|e| format!("not base64 ({e})"))?,
            _ => return Err("not base64 text".to_owned()),
        }),
        // Only text reaches here of these: the others are not bindable.
        PgType::Text | PgType::Oid | PgType::Char | PgType::Array(_) => Param::Text(match value {
            Value::String(s) => s.clone(),
            Value::Number(_) | Value::Bool(_) => value.to_string(),
            // Lists and mappings go to a text column as JSON text.
            _ => value.to_string(),
        }),
    })
}

fn integer(value: &Value) -> Result<i64, String> {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Ok(i);
            }
            match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(f as i64),
                _ => Err("not an integer that fits 64 bits".to_owned()),
            }
        }
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| "not an integer that fits 64 bits".to_owned()),
        _ => Err("not an integer".to_owned()),
    }
}

fn float(value: &Value) -> Result<f64, String> {
    match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| "not a number".to_owned()),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| "not a number".to_owned()),
        _ => Err("not a number".to_owned()),
    }
}

/// Timestamps are read the way the state crate reads cursors, so that a committed cursor binds
/// back as the instant it denotes.
fn instant(value: &Value) -> Result<DateTime<Utc>, String> {
    cannectors_state::Timestamp::from_json(value)
        .map(|t| t.instant())
        .map_err(|_| {
            "not a timestamp (RFC 3339, `YYYY-MM-DD HH:MM:SS[.f]` as UTC, `YYYY-MM-DD`, or epoch \
             seconds/milliseconds)"
                .to_owned()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cursors_convert_to_the_placeholder_types() {
        assert_eq!(convert(&json!(null), &Type::INT8).unwrap(), Param::Null);
        assert_eq!(convert(&json!(42), &Type::INT8).unwrap(), Param::Int8(42));
        assert_eq!(convert(&json!("42"), &Type::INT4).unwrap(), Param::Int4(42));
        assert_eq!(
            convert(&json!(42), &Type::TEXT).unwrap(),
            Param::Text("42".into())
        );
        assert_eq!(
            convert(&json!("2026-01-01T01:00:00+01:00"), &Type::TIMESTAMPTZ).unwrap(),
            Param::Timestamptz("2026-01-01T00:00:00Z".parse().unwrap())
        );
        assert_eq!(
            convert(&json!("2026-03-04"), &Type::DATE).unwrap(),
            Param::Date(NaiveDate::from_ymd_opt(2026, 3, 4).unwrap())
        );
        assert_eq!(
            convert(&json!("12.50"), &Type::NUMERIC).unwrap(),
            Param::Numeric("12.50".into())
        );
    }

    #[test]
    fn values_that_do_not_fit_say_why() {
        assert_eq!(
            convert(&json!(70000), &Type::INT2).unwrap_err(),
            "out of the int2 range"
        );
        assert_eq!(
            convert(&json!("abc"), &Type::INT8).unwrap_err(),
            "not an integer that fits 64 bits"
        );
        assert!(
            convert(&json!("yesterday"), &Type::TIMESTAMPTZ)
                .unwrap_err()
                .starts_with("not a timestamp")
        );
        assert!(
            convert(&json!("nope"), &Type::UUID)
                .unwrap_err()
                .starts_with("not a UUID")
        );
        assert_eq!(
            convert(&json!("1.2.3"), &Type::NUMERIC).unwrap_err(),
            "`1.2.3` is not a decimal number"
        );
    }
}
