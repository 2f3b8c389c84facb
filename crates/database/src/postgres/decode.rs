//! PostgreSQL values in the binary protocol, decoded straight into JSON.
//!
//! A row becomes a record without any intermediate Rust value per column: [`RecordShape`]
//! takes each column's bytes as they arrived and writes the JSON value into the record's field
//! at once. The mapping is the table in docs/databases.md; keep the two in step.
//!
//! This is the hot path of a database input (millions of rows a run): timestamps and numerics
//! are written without going through `fmt`, a record is a copy of a prepared one whose keys
//! are never hashed again, and the row holding the greatest cursor position is found on the
//! binary values ([`CursorColumns`]).

use std::error::Error;

use base64::Engine as _;
use chrono::{
    Datelike as _, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, TimeDelta, Timelike as _,
};
use fallible_iterator::FallibleIterator;
use postgres_protocol::types as wire;
use serde_json::{Map, Value};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Kind, Type};

use super::numeric;

type DecodeError = Box<dyn Error + Sync + Send>;

/// The bytes of one column as they arrived, `None` for NULL; any type is accepted, since
/// [`RecordShape`] was built from columns that all passed [`readable`].
struct Raw<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Raw<'a>, DecodeError> {
        Ok(Raw(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Raw<'a>, DecodeError> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// How the rows of one statement become records.
pub(crate) struct RecordShape {
    /// A record with every key in column order and null values: each row starts as a copy of
    /// it, which copies the key index instead of hashing every key again.
    template: Map<String, Value>,
    /// For each field of `template`, in order: the column that fills it and its type.
    fields: Vec<(usize, Type)>,
}

/// A column value that could not be decoded.
#[derive(Debug)]
pub(crate) struct CellError {
    /// The column's position in the row.
    pub(crate) column: usize,
    /// What is wrong with the value.
    pub(crate) reason: String,
}

impl RecordShape {
    /// The shape of rows with these columns. Two columns with one name make one field, at the
    /// place of the first and with the value of the last, as inserting them in turn would.
    pub(crate) fn new(columns: &[tokio_postgres::Column]) -> RecordShape {
        let mut template = Map::with_capacity(columns.len());
        let mut fields: Vec<(usize, Type)> = Vec::with_capacity(columns.len());
        for (index, column) in columns.iter().enumerate() {
            let field = (index, column.type_().clone());
            match template.keys().position(|name| name == column.name()) {
                Some(at) => fields[at] = field,
                None => {
                    template.insert(column.name().to_owned(), Value::Null);
                    fields.push(field);
                }
            }
        }
        RecordShape { template, fields }
    }

    /// The cursor columns when the timestamp and id cursors (the enabled ones) are these
    /// top-level fields with a type [`CursorColumns`] reads; `None` otherwise.
    pub(crate) fn cursor_columns(
        &self,
        timestamp: Option<&str>,
        id: Option<&str>,
    ) -> Option<CursorColumns> {
        let column = |name: &str, accepts: fn(&Type) -> bool| {
            let at = self.template.keys().position(|key| key == name)?;
            let (column, ty) = self.fields.get(at)?;
            accepts(ty).then_some(*column)
        };
        let timestamp = match timestamp {
            Some(name) => Some(column(name, |ty| {
                matches!(*ty, Type::TIMESTAMPTZ | Type::TIMESTAMP)
            })?),
            None => None,
        };
        let id = match id {
            Some(name) => Some(column(name, |ty| {
                matches!(*ty, Type::INT2 | Type::INT4 | Type::INT8)
            })?),
            None => None,
        };
        (timestamp.is_some() || id.is_some()).then_some(CursorColumns { timestamp, id })
    }

    /// The record of one row.
    pub(crate) fn record(&self, row: &Row) -> Result<Value, CellError> {
        // `clone_from` into a map of the exact size: a plain `clone` rounds the entries up to
        // the index's capacity, a sixth more memory per record.
        let mut record = Map::with_capacity(self.fields.len());
        record.clone_from(&self.template);
        for (value, (column, ty)) in record.values_mut().zip(&self.fields) {
            let fail = |reason: String| CellError {
                column: *column,
                reason,
            };
            let Raw(raw) = row.try_get(*column).map_err(|e| fail(e.to_string()))?;
            if let Some(raw) = raw {
                *value = decode(ty, raw).map_err(|e| fail(e.to_string()))?;
            }
        }
        Ok(Value::Object(record))
    }
}

/// The columns that hold the cursors of a record as plain top-level fields: a `timestamptz`
/// or `timestamp` column for the timestamp cursor, an `int2`, `int4` or `int8` column for the
/// id. From those, the row with the greatest position is found on the binary values, without
/// looking anything up in the records.
#[derive(Debug, Clone, Copy)]
pub struct CursorColumns {
    timestamp: Option<usize>,
    id: Option<usize>,
}

/// A row's position as read by [`CursorColumns`]: microseconds since 2000, then the id.
pub(crate) type CursorKey = (Option<i64>, Option<i64>);

/// The timestamps whose RFC 3339 text (years 1 to 9999) every reader parses back: microseconds
/// since 2000-01-01 of 0001-01-01 and of 10000-01-01.
const READABLE_MICROS: std::ops::Range<i64> = -63_082_281_600_000_000..252_455_616_000_000_000;

impl CursorColumns {
    /// The key of one row, or `None` when a cursor is NULL or a timestamp lies outside
    /// [`READABLE_MICROS`]: such a batch is left to the cursor code, which explains what is
    /// wrong with the value.
    pub(crate) fn key(&self, row: &Row) -> Option<CursorKey> {
        let raw = |column: usize| match row.try_get::<_, Raw<'_>>(column) {
            Ok(Raw(Some(raw))) => Some(raw),
            _ => None,
        };
        let timestamp = match self.timestamp {
            Some(column) => Some(
                wire::timestamp_from_sql(raw(column)?)
                    .ok()
                    .filter(|micros| READABLE_MICROS.contains(micros))?,
            ),
            None => None,
        };
        let id = match self.id {
            Some(column) => {
                let raw = raw(column)?;
                // The column is int2, int4 or int8, which the width tells apart.
                Some(match raw.len() {
                    2 => i64::from(wire::int2_from_sql(raw).ok()?),
                    4 => i64::from(wire::int4_from_sql(raw).ok()?),
                    _ => wire::int8_from_sql(raw).ok()?,
                })
            }
            None => None,
        };
        Some((timestamp, id))
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
        Type::NUMERIC => numeric::to_json_value(raw)?,
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
/// as UTC too, so that every timestamp compares as an instant. The text is what chrono's
/// `to_rfc3339_opts(SecondsFormat::AutoSi, true)` writes (the fraction in 3 or 6 digits, as
/// needed), built by hand for the years 0 to 9999: this runs for every timestamp of every row,
/// and chrono's formatting through `fmt` showed in profiles.
fn timestamp(micros: i64) -> Result<Value, DecodeError> {
    match micros {
        i64::MAX => return Ok(Value::String("infinity".to_owned())),
        i64::MIN => return Ok(Value::String("-infinity".to_owned())),
        _ => {}
    }
    let at = epoch()
        .checked_add_signed(TimeDelta::microseconds(micros))
        .ok_or("the timestamp is out of range")?;
    let year = at.year();
    if !(0..=9999).contains(&year) {
        return Ok(Value::String(
            at.and_utc().to_rfc3339_opts(SecondsFormat::AutoSi, true),
        ));
    }
    let mut text = String::with_capacity(27);
    push_digits(&mut text, year.unsigned_abs(), 4);
    for (separator, value) in [
        ('-', at.month()),
        ('-', at.day()),
        ('T', at.hour()),
        (':', at.minute()),
        (':', at.second()),
    ] {
        text.push(separator);
        push_digits(&mut text, value, 2);
    }
    let micros = at.nanosecond() / 1000;
    if micros != 0 {
        text.push('.');
        if micros % 1000 == 0 {
            push_digits(&mut text, micros / 1000, 3);
        } else {
            push_digits(&mut text, micros, 6);
        }
    }
    text.push('Z');
    Ok(Value::String(text))
}

/// Appends the last `width` decimal digits of `value`, zero-padded.
fn push_digits(text: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = value / 10u32.pow(place) % 10;
        text.push(char::from(b'0' + digit as u8));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_as_chrono_writes_rfc_3339() {
        const DAY: i64 = 86_400_000_000;
        let mut samples = vec![0, 1, 1_000, 999_999, 1_000_000, 123_456_789, -1, -1_000];
        for days in [-730_485, -730_120, -1, 1, 9_497, 2_921_939, 2_922_304] {
            for micros in [0, 1, 123_000, 59_999_999, DAY - 1] {
                samples.push(days * DAY + micros);
            }
        }
        for micros in samples {
            let expected = epoch()
                .checked_add_signed(TimeDelta::microseconds(micros))
                .unwrap()
                .and_utc()
                .to_rfc3339_opts(SecondsFormat::AutoSi, true);
            assert_eq!(
                timestamp(micros).unwrap(),
                Value::String(expected),
                "{micros}"
            );
        }
    }

    #[test]
    fn infinite_timestamps_keep_their_postgres_names() {
        assert_eq!(timestamp(i64::MAX).unwrap(), "infinity");
        assert_eq!(timestamp(i64::MIN).unwrap(), "-infinity");
    }
}
