//! PostgreSQL values in the binary protocol, decoded straight into JSON.
//!
//! A row becomes a record, JSON text, without any intermediate map: [`RecordShape`] takes each
//! column's bytes as they arrived and writes the JSON value after the column's key, encoded
//! once per statement. Which types have a JSON form is [`PgType`]'s table, shared with the
//! encoding of parameters; the JSON each becomes is the table in docs/databases.md; keep the
//! two in step.
//!
//! This is the hot path of a database input (millions of rows a run): booleans, integers, text
//! and timestamps are written straight from the wire bytes (timestamps without going through
//! `fmt`), other types through a `serde_json::Value` of the one cell, and the row holding the
//! greatest cursor position is found on the binary values ([`CursorColumns`]).

use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use cannectors_connector::Record;
use chrono::{
    Datelike as _, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, TimeDelta, Timelike as _,
};
use fallible_iterator::FallibleIterator;
use postgres_protocol::types as wire;
use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Type};

use super::numeric;
use super::types::PgType;

type DecodeError = Box<dyn Error + Sync + Send>;

/// The bytes of one column as they arrived, `None` for NULL; any type is accepted: a column
/// without a JSON form fails when its value is written.
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
    /// The field names, in column order.
    names: Vec<String>,
    /// For each field, in order: what precedes its value in the record (`{"id":`,
    /// `,"name":`), the column that fills it and its type.
    fields: Vec<(String, usize, Column)>,
    /// The length of the last record written, to size the next one.
    last_len: AtomicUsize,
}

/// The type of a result column.
#[derive(Debug, Clone)]
struct Column {
    /// How its values become JSON; `None` when they have no JSON form.
    form: Option<PgType>,
    /// Its name in the database, for messages.
    name: String,
}

impl Column {
    fn of(ty: &Type) -> Column {
        Column {
            form: PgType::of(ty),
            name: ty.name().to_owned(),
        }
    }
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
        let mut names: Vec<String> = Vec::with_capacity(columns.len());
        let mut fields: Vec<(String, usize, Column)> = Vec::with_capacity(columns.len());
        for (index, column) in columns.iter().enumerate() {
            match names.iter().position(|name| name == column.name()) {
                Some(at) => {
                    fields[at].1 = index;
                    fields[at].2 = Column::of(column.type_());
                }
                None => {
                    let separator = if names.is_empty() { '{' } else { ',' };
                    let key = format!("{separator}{}:", Value::from(column.name()));
                    names.push(column.name().to_owned());
                    fields.push((key, index, Column::of(column.type_())));
                }
            }
        }
        RecordShape {
            names,
            fields,
            last_len: AtomicUsize::new(0),
        }
    }

    /// The cursor columns when the timestamp and id cursors (the enabled ones) are these
    /// top-level fields with a type [`CursorColumns`] reads; `None` otherwise.
    pub(crate) fn cursor_columns(
        &self,
        timestamp: Option<&str>,
        id: Option<&str>,
    ) -> Option<CursorColumns> {
        let column = |name: &str, accepts: fn(&PgType) -> bool| {
            let at = self.names.iter().position(|key| key == name)?;
            let (_, column, ty) = self.fields.get(at)?;
            ty.form.as_ref().is_some_and(accepts).then_some(*column)
        };
        let timestamp = match timestamp {
            Some(name) => Some(column(name, |ty| {
                matches!(ty, PgType::Timestamptz | PgType::Timestamp)
            })?),
            None => None,
        };
        let id = match id {
            Some(name) => Some(column(name, |ty| {
                matches!(ty, PgType::Int2 | PgType::Int4 | PgType::Int8)
            })?),
            None => None,
        };
        (timestamp.is_some() || id.is_some()).then_some(CursorColumns { timestamp, id })
    }

    /// The record of one row.
    pub(crate) fn record(&self, row: &Row) -> Result<Record, CellError> {
        let mut text = Vec::with_capacity(self.last_len.load(Ordering::Relaxed) + 16);
        for (key, column, ty) in &self.fields {
            let fail = |reason: String| CellError {
                column: *column,
                reason,
            };
            text.extend_from_slice(key.as_bytes());
            let Raw(raw) = row.try_get(*column).map_err(|e| fail(e.to_string()))?;
            match (raw, &ty.form) {
                (None, _) => text.extend_from_slice(b"null"),
                (Some(raw), Some(form)) => {
                    write_value(form, raw, &mut text).map_err(|e| fail(e.to_string()))?;
                }
                (Some(_), None) => {
                    return Err(fail(format!("the type {} has no JSON form", ty.name)));
                }
            }
        }
        if self.fields.is_empty() {
            text.push(b'{');
        }
        text.push(b'}');
        self.last_len.store(text.len(), Ordering::Relaxed);
        // Every piece is UTF-8: keys and text values come from `str`s, the rest is ASCII.
        let text = String::from_utf8(text).map_err(|e| CellError {
            column: 0,
            reason: e.to_string(),
        })?;
        Ok(Record::from_encoded(text))
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

/// Appends the JSON form of one non-NULL value: the common types straight from the wire bytes,
/// the others through [`decode`].
fn write_value(ty: &PgType, raw: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    match ty {
        PgType::Bool => {
            let text: &[u8] = if wire::bool_from_sql(raw)? {
                b"true"
            } else {
                b"false"
            };
            out.extend_from_slice(text);
        }
        PgType::Int2 => out.extend_from_slice(
            itoa::Buffer::new()
                .format(wire::int2_from_sql(raw)?)
                .as_bytes(),
        ),
        PgType::Int4 => out.extend_from_slice(
            itoa::Buffer::new()
                .format(wire::int4_from_sql(raw)?)
                .as_bytes(),
        ),
        PgType::Int8 => out.extend_from_slice(
            itoa::Buffer::new()
                .format(wire::int8_from_sql(raw)?)
                .as_bytes(),
        ),
        PgType::Text => {
            serde_json::to_writer(&mut *out, wire::text_from_sql(raw)?)?;
        }
        PgType::Timestamptz | PgType::Timestamp => {
            match timestamp_text(wire::timestamp_from_sql(raw)?)? {
                Some(text) => {
                    // Digits, separators and `Z`: nothing to escape.
                    out.push(b'"');
                    out.extend_from_slice(text.as_bytes());
                    out.push(b'"');
                }
                None => serde_json::to_writer(&mut *out, &decode(ty, raw)?)?,
            }
        }
        _ => serde_json::to_writer(&mut *out, &decode(ty, raw)?)?,
    }
    Ok(())
}

fn decode(ty: &PgType, raw: &[u8]) -> Result<Value, DecodeError> {
    Ok(match ty {
        PgType::Bool => Value::Bool(wire::bool_from_sql(raw)?),
        PgType::Int2 => wire::int2_from_sql(raw)?.into(),
        PgType::Int4 => wire::int4_from_sql(raw)?.into(),
        PgType::Int8 => wire::int8_from_sql(raw)?.into(),
        PgType::Oid => wire::oid_from_sql(raw)?.into(),
        // Through the shortest decimal of the f32, so that 1.1 stays 1.1 and not 1.100000023...
        PgType::Float4 => float(wire::float4_from_sql(raw)?.to_string().parse::<f64>()?),
        PgType::Float8 => float(wire::float8_from_sql(raw)?),
        PgType::Numeric => numeric::to_json_value(raw)?,
        PgType::Text => Value::String(wire::text_from_sql(raw)?.to_owned()),
        PgType::Char => Value::String(char::from(wire::char_from_sql(raw)? as u8).to_string()),
        PgType::Timestamptz | PgType::Timestamp => timestamp(wire::timestamp_from_sql(raw)?)?,
        PgType::Date => date(wire::date_from_sql(raw)?)?,
        PgType::Time => time(wire::time_from_sql(raw)?)?,
        PgType::Uuid => Value::String(
            uuid::Uuid::from_bytes(wire::uuid_from_sql(raw)?)
                .hyphenated()
                .to_string(),
        ),
        PgType::Json => serde_json::from_slice(raw)?,
        PgType::Jsonb => match raw.split_first() {
            Some((1, document)) => serde_json::from_slice(document)?,
            _ => return Err("unknown jsonb format version".into()),
        },
        PgType::Bytea => Value::String(base64::engine::general_purpose::STANDARD.encode(raw)),
        PgType::Array(member) => array(member, raw)?,
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
/// needed), built by hand by [`timestamp_text`] for the years 0 to 9999: this runs for every
/// timestamp of every row, and chrono's formatting through `fmt` showed in profiles.
fn timestamp(micros: i64) -> Result<Value, DecodeError> {
    match micros {
        i64::MAX => return Ok(Value::String("infinity".to_owned())),
        i64::MIN => return Ok(Value::String("-infinity".to_owned())),
        _ => {}
    }
    if let Some(text) = timestamp_text(micros)? {
        return Ok(Value::String(text));
    }
    let at = epoch()
        .checked_add_signed(TimeDelta::microseconds(micros))
        .ok_or("the timestamp is out of range")?;
    Ok(Value::String(
        at.and_utc().to_rfc3339_opts(SecondsFormat::AutoSi, true),
    ))
}

/// The text of [`timestamp`] for the instants of the years 0 to 9999; `None` for the others
/// and the infinities, which [`timestamp`] writes through chrono or by name.
fn timestamp_text(micros: i64) -> Result<Option<String>, DecodeError> {
    if micros == i64::MAX || micros == i64::MIN {
        return Ok(None);
    }
    let at = epoch()
        .checked_add_signed(TimeDelta::microseconds(micros))
        .ok_or("the timestamp is out of range")?;
    let year = at.year();
    if !(0..=9999).contains(&year) {
        return Ok(None);
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
    Ok(Some(text))
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
fn array(member: &PgType, raw: &[u8]) -> Result<Value, DecodeError> {
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
    member: &PgType,
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
