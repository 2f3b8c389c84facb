//! PostgreSQL values in the binary protocol, decoded straight into JSON.
//!
//! [`Cell`] is a `FromSql` target that looks at the column type and produces the JSON value at
//! once, so a row becomes a record without any intermediate Rust value per column. The
//! mapping is the table in docs/databases.md; keep the two in step.

use std::error::Error;

use base64::Engine as _;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, TimeDelta};
use fallible_iterator::FallibleIterator;
use postgres_protocol::types as wire;
use serde_json::Value;
use tokio_postgres::types::{FromSql, Kind, Type};

use super::numeric;

type DecodeError = Box<dyn Error + Sync + Send>;

/// One column value as JSON.
pub(crate) struct Cell(pub(crate) Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Cell, DecodeError> {
        decode(ty, raw).map(Cell)
    }

    fn from_sql_null(_: &Type) -> Result<Cell, DecodeError> {
        Ok(Cell(Value::Null))
    }

    fn accepts(ty: &Type) -> bool {
        readable(ty)
    }
}

/// Whether a column of this type has a JSON form.
pub(crate) fn readable(ty: &Type) -> bool {
    match ty.kind() {
        Kind::Enum(_) => true,
        Kind::Array(member) => !matches!(member.kind(), Kind::Array(_)) && readable(member),
        Kind::Domain(base) => readable(base),
        _ => {
            matches!(
                *ty,
                Type::BOOL
                    | Type::INT2
                    | Type::INT4
                    | Type::INT8
                    | Type::OID
                    | Type::FLOAT4
                    | Type::FLOAT8
                    | Type::NUMERIC
                    | Type::TEXT
                    | Type::VARCHAR
                    | Type::BPCHAR
                    | Type::NAME
                    | Type::CHAR
                    | Type::UNKNOWN
                    | Type::TIMESTAMPTZ
                    | Type::TIMESTAMP
                    | Type::DATE
                    | Type::TIME
                    | Type::UUID
                    | Type::JSON
                    | Type::JSONB
                    | Type::BYTEA
            ) || ty.name() == "citext"
        }
    }
}

fn decode(ty: &Type, raw: &[u8]) -> Result<Value, DecodeError> {
    Ok(match *ty {
        Type::BOOL => Value::Bool(wire::bool_from_sql(raw)?),
        Type::INT2 => wire::int2_from_sql(raw)?.into(),
        Type::INT4 => wire::int4_from_sql(raw)?.into(),
        Type::INT8 => wire::int8_from_sql(raw)?.into(),
        Type::OID => wire::oid_from_sql(raw)?.into(),
        // Through the shortest decimal of the f32, so that 1.1 stays 1.1 and not 1.100000023...
        Type::FLOAT4 => float(wire::float4_from_sql(raw)?.to_string().parse::<f64>()?),
        Type::FLOAT8 => float(wire::float8_from_sql(raw)?),
        Type::NUMERIC => numeric::to_json(numeric::decode(raw)?),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            Value::String(wire::text_from_sql(raw)?.to_owned())
        }
        Type::CHAR => Value::String(char::from(wire::char_from_sql(raw)? as u8).to_string()),
        Type::TIMESTAMPTZ | Type::TIMESTAMP => timestamp(wire::timestamp_from_sql(raw)?)?,
        Type::DATE => date(wire::date_from_sql(raw)?)?,
        Type::TIME => time(wire::time_from_sql(raw)?)?,
        Type::UUID => Value::String(
            uuid::Uuid::from_bytes(wire::uuid_from_sql(raw)?)
                .hyphenated()
                .to_string(),
        ),
        Type::JSON => serde_json::from_slice(raw)?,
        Type::JSONB => match raw.split_first() {
            Some((1, document)) => serde_json::from_slice(document)?,
            _ => return Err("unknown jsonb format version".into()),
        },
        Type::BYTEA => Value::String(base64::engine::general_purpose::STANDARD.encode(raw)),
        _ => match ty.kind() {
            Kind::Array(member) => array(member, raw)?,
            Kind::Domain(base) => decode(base, raw)?,
            Kind::Enum(_) => Value::String(wire::text_from_sql(raw)?.to_owned()),
            _ if ty.name() == "citext" => Value::String(wire::text_from_sql(raw)?.to_owned()),
            _ => return Err(format!("the type {} has no JSON form", ty.name()).into()),
        },
    })
}

/// JSON has no NaN or infinities: those become the strings PostgreSQL writes for them.
fn float(value: f64) -> Value {
    match serde_json::Number::from_f64(value) {
        Some(number) => Value::Number(number),
        None if value.is_nan() => Value::String("NaN".to_owned()),
        None if value > 0.0 => Value::String("Infinity".to_owned()),
        None => Value::String("-Infinity".to_owned()),
    }
}

/// PostgreSQL's epoch for timestamps and dates.
fn epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .unwrap_or_default()
        .and_time(NaiveTime::MIN)
}

/// Microseconds since 2000-01-01 as RFC 3339 in UTC; a `timestamp` without time zone is read
/// as UTC too, so that every timestamp compares as an instant.
fn timestamp(micros: i64) -> Result<Value, DecodeError> {
    match micros {
        i64::MAX => return Ok(Value::String("infinity".to_owned())),
        i64::MIN => return Ok(Value::String("-infinity".to_owned())),
        _ => {}
    }
    let at = epoch()
        .checked_add_signed(TimeDelta::microseconds(micros))
        .ok_or("the timestamp is out of range")?;
    Ok(Value::String(
        at.and_utc().to_rfc3339_opts(SecondsFormat::AutoSi, true),
    ))
}

fn date(days: i32) -> Result<Value, DecodeError> {
    match days {
        i32::MAX => return Ok(Value::String("infinity".to_owned())),
        i32::MIN => return Ok(Value::String("-infinity".to_owned())),
        _ => {}
    }
    let day = epoch()
        .date()
        .checked_add_signed(TimeDelta::days(i64::from(days)))
        .ok_or("the date is out of range")?;
    Ok(Value::String(day.format("%Y-%m-%d").to_string()))
}

fn time(micros: i64) -> Result<Value, DecodeError> {
    let seconds = u32::try_from(micros.div_euclid(1_000_000)).map_err(|_| "time out of range")?;
    let nanos =
        u32::try_from(micros.rem_euclid(1_000_000) * 1000).map_err(|_| "time out of range")?;
    // 24:00:00 is a valid PostgreSQL time but not a chrono one.
    if seconds == 86_400 && nanos == 0 {
        return Ok(Value::String("24:00:00".to_owned()));
    }
    let at = NaiveTime::from_num_seconds_from_midnight_opt(seconds, nanos)
        .ok_or("the time is out of range")?;
    Ok(Value::String(at.format("%H:%M:%S%.f").to_string()))
}

/// Arrays of any dimension become nested JSON arrays, NULL elements null.
fn array(member: &Type, raw: &[u8]) -> Result<Value, DecodeError> {
    let array = wire::array_from_sql(raw)?;
    let dimensions: Vec<usize> = array
        .dimensions()
        .map(|d| usize::try_from(d.len).map_err(|_| "negative array dimension".into()))
        .collect()?;
    if dimensions.is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    let mut values = array.values();
    nest(member, &dimensions, &mut values)
}

fn nest<'a>(
    member: &Type,
    dimensions: &[usize],
    values: &mut impl FallibleIterator<Item = Option<&'a [u8]>, Error = DecodeError>,
) -> Result<Value, DecodeError> {
    let Some((&len, inner)) = dimensions.split_first() else {
        return Err("array without dimensions".into());
    };
    let mut items = Vec::with_capacity(len);
    for _ in 0..len {
        items.push(if inner.is_empty() {
            match values.next()? {
                Some(Some(raw)) => decode(member, raw)?,
                Some(None) => Value::Null,
                None => return Err("the array holds fewer values than its dimensions".into()),
            }
        } else {
            nest(member, inner, values)?
        });
    }
    Ok(Value::Array(items))
}
