//! PostgreSQL values in the binary protocol, decoded straight into JSON.
//!
//! A row becomes a record, JSON text, without any intermediate map: [`RecordShape`] takes each
//! column's bytes as they arrived and writes the JSON value after the column's key, encoded
//! once per statement. Which types have a JSON form is [`PgType`]'s table, shared with the
//! encoding of parameters; the JSON each becomes is the table in docs/databases.md; keep the
//! two in step.
//!
//! This is the hot path of a database input (millions of rows a run): every value is written
//! straight from its wire bytes into the record's text, with no `serde_json::Value` between
//! (timestamps, dates and times without going through `fmt`; `json` and `jsonb` copied from
//! their text by [`json_text`]), and the row holding the greatest cursor position is found on
//! the binary values ([`CursorColumns`]).

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

use super::types::PgType;
use super::{json_text, numeric};

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
        // No line break either: strings are escaped, and no whitespace is written between tokens.
        Ok(Record::from_json_line(text))
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

/// Appends the JSON form of one non-NULL value, written from the wire bytes without an
/// intermediate value.
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
        PgType::Int2 => write_integer(wire::int2_from_sql(raw)?, out),
        PgType::Int4 => write_integer(wire::int4_from_sql(raw)?, out),
        PgType::Int8 => write_integer(wire::int8_from_sql(raw)?, out),
        PgType::Oid => write_integer(wire::oid_from_sql(raw)?, out),
        // Through the shortest decimal of the f32, so that 1.1 stays 1.1 and not 1.100000023...
        PgType::Float4 => {
            write_float(wire::float4_from_sql(raw)?.to_string().parse::<f64>()?, out)?
        }
        PgType::Float8 => write_float(wire::float8_from_sql(raw)?, out)?,
        PgType::Numeric => numeric::write_json(raw, out)?,
        PgType::Text => write_text(raw, out)?,
        PgType::Char => {
            let byte = [wire::char_from_sql(raw)? as u8];
            // A byte of 0x80 and up is the Latin-1 character of that code, as it always was.
            let char = char::from(byte[0]);
            serde_json::to_writer(&mut *out, char.encode_utf8(&mut [0; 4]))?;
        }
        PgType::Timestamptz | PgType::Timestamp => {
            write_timestamp(wire::timestamp_from_sql(raw)?, out)?;
        }
        PgType::Date => write_date(wire::date_from_sql(raw)?, out)?,
        PgType::Time => write_time(wire::time_from_sql(raw)?, out)?,
        PgType::Uuid => {
            let uuid = uuid::Uuid::from_bytes(wire::uuid_from_sql(raw)?);
            let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
            write_quoted(uuid.hyphenated().encode_lower(&mut text), out);
        }
        PgType::Json => json_text::write_minified(raw, out)?,
        PgType::Jsonb => match raw.split_first() {
            Some((1, document)) => json_text::write_minified(document, out)?,
            _ => return Err("unknown jsonb format version".into()),
        },
        PgType::Bytea => {
            out.push(b'"');
            let start = out.len();
            out.resize(start + base64::encoded_len(raw.len(), true).unwrap_or(0), 0);
            let written =
                base64::engine::general_purpose::STANDARD.encode_slice(raw, &mut out[start..])?;
            out.truncate(start + written);
            out.push(b'"');
        }
        PgType::Array(member) => write_array(member, raw, out)?,
    }
    Ok(())
}

/// Appends text as a JSON string. ASCII with nothing to escape (most text: names, codes) is
/// copied as it is, which is what serde_json writes for it; anything else goes through
/// serde_json, after the check that it is UTF-8.
fn write_text(raw: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    if raw
        .iter()
        .all(|&b| b.is_ascii() && b >= 0x20 && b != b'"' && b != b'\\')
    {
        write_quoted_bytes(raw, out);
    } else {
        serde_json::to_writer(&mut *out, wire::text_from_sql(raw)?)?;
    }
    Ok(())
}

fn write_integer(value: impl itoa::Integer, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Appends text that needs no escaping (digits, separators, letters) as a JSON string.
fn write_quoted(text: &str, out: &mut Vec<u8>) {
    write_quoted_bytes(text.as_bytes(), out);
}

fn write_quoted_bytes(text: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    out.extend_from_slice(text);
    out.push(b'"');
}

/// JSON has no NaN or infinities: those become the strings PostgreSQL writes for them.
fn write_float(value: f64, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    match serde_json::Number::from_f64(value) {
        Some(number) => serde_json::to_writer(&mut *out, &number)?,
        None if value.is_nan() => write_quoted("NaN", out),
        None if value > 0.0 => write_quoted("Infinity", out),
        None => write_quoted("-Infinity", out),
    }
    Ok(())
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
fn write_timestamp(micros: i64, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let infinity = match micros {
        i64::MAX => Some("infinity"),
        i64::MIN => Some("-infinity"),
        _ => None,
    };
    if let Some(name) = infinity {
        write_quoted(name, out);
        return Ok(());
    }
    let at = epoch()
        .checked_add_signed(TimeDelta::microseconds(micros))
        .ok_or("the timestamp is out of range")?;
    if !(0..=9999).contains(&at.year()) {
        write_quoted(
            &at.and_utc().to_rfc3339_opts(SecondsFormat::AutoSi, true),
            out,
        );
        return Ok(());
    }
    out.push(b'"');
    write_day(at.date(), out);
    out.push(b'T');
    write_time_of_day(at.time(), out);
    out.extend_from_slice(b"Z\"");
    Ok(())
}

/// `YYYY-MM-DD` of a day of the years 0 to 9999.
fn write_day(day: NaiveDate, out: &mut Vec<u8>) {
    push_digits(out, day.year().unsigned_abs(), 4);
    out.push(b'-');
    push_digits(out, day.month(), 2);
    out.push(b'-');
    push_digits(out, day.day(), 2);
}

/// `HH:MM:SS`, then the fraction in 3 or 6 digits when there is one (chrono's `%H:%M:%S%.f`
/// for whole microseconds).
fn write_time_of_day(at: NaiveTime, out: &mut Vec<u8>) {
    push_digits(out, at.hour(), 2);
    out.push(b':');
    push_digits(out, at.minute(), 2);
    out.push(b':');
    push_digits(out, at.second(), 2);
    let micros = at.nanosecond() / 1000;
    if micros != 0 {
        out.push(b'.');
        if micros.is_multiple_of(1000) {
            push_digits(out, micros / 1000, 3);
        } else {
            push_digits(out, micros, 6);
        }
    }
}

/// Appends the last `width` decimal digits of `value`, zero-padded.
fn push_digits(out: &mut Vec<u8>, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = value / 10u32.pow(place) % 10;
        out.push(b'0' + digit as u8);
    }
}

fn write_date(days: i32, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let infinity = match days {
        i32::MAX => Some("infinity"),
        i32::MIN => Some("-infinity"),
        _ => None,
    };
    if let Some(name) = infinity {
        write_quoted(name, out);
        return Ok(());
    }
    let day = epoch()
        .date()
        .checked_add_signed(TimeDelta::days(i64::from(days)))
        .ok_or("the date is out of range")?;
    if (0..=9999).contains(&day.year()) {
        out.push(b'"');
        write_day(day, out);
        out.push(b'"');
    } else {
        // chrono writes the years it cannot write in four digits with their sign.
        write_quoted(&day.format("%Y-%m-%d").to_string(), out);
    }
    Ok(())
}

fn write_time(micros: i64, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let seconds = u32::try_from(micros.div_euclid(1_000_000)).map_err(|_| "time out of range")?;
    let nanos =
        u32::try_from(micros.rem_euclid(1_000_000) * 1000).map_err(|_| "time out of range")?;
    // 24:00:00 is a valid PostgreSQL time but not a chrono one.
    if seconds == 86_400 && nanos == 0 {
        write_quoted("24:00:00", out);
        return Ok(());
    }
    let at = NaiveTime::from_num_seconds_from_midnight_opt(seconds, nanos)
        .ok_or("the time is out of range")?;
    out.push(b'"');
    write_time_of_day(at, out);
    out.push(b'"');
    Ok(())
}

/// PostgreSQL's `MAXDIM`: no array has more dimensions.
const MAX_DIMENSIONS: usize = 6;

/// Arrays of any dimension become nested JSON arrays, NULL elements null.
fn write_array(member: &PgType, raw: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let array = wire::array_from_sql(raw)?;
    // On the stack: a `Vec` here was an allocation for every array of every row.
    let mut dimensions = [0; MAX_DIMENSIONS];
    let mut count = 0;
    let mut lengths = array.dimensions();
    while let Some(dimension) = lengths.next()? {
        let slot = dimensions
            .get_mut(count)
            .ok_or("an array of more dimensions than PostgreSQL allows")?;
        *slot = usize::try_from(dimension.len).map_err(|_| "negative array dimension")?;
        count += 1;
    }
    if count == 0 {
        out.extend_from_slice(b"[]");
        return Ok(());
    }
    let mut values = array.values();
    write_nested(member, &dimensions[..count], &mut values, out)
}

fn write_nested<'a>(
    member: &PgType,
    dimensions: &[usize],
    values: &mut impl FallibleIterator<Item = Option<&'a [u8]>, Error = DecodeError>,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    let Some((&len, inner)) = dimensions.split_first() else {
        return Err("array without dimensions".into());
    };
    out.push(b'[');
    for at in 0..len {
        if at > 0 {
            out.push(b',');
        }
        if inner.is_empty() {
            match values.next()? {
                Some(Some(raw)) => write_value(member, raw, out)?,
                Some(None) => out.extend_from_slice(b"null"),
                None => return Err("the array holds fewer values than its dimensions".into()),
            }
        } else {
            write_nested(member, inner, values, out)?;
        }
    }
    out.push(b']');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(write: impl FnOnce(&mut Vec<u8>) -> Result<(), DecodeError>) -> String {
        let mut out = Vec::new();
        write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn quoted(text: &str) -> String {
        format!("\"{text}\"")
    }

    #[test]
    fn text_is_written_as_serde_json_writes_it() {
        for text in [
            "",
            "customer-0000001",
            "a \"quoted\" \\ word",
            "tab\there, line\nbreak, \u{1f} and \u{7f}",
            "é ü € 😀",
            "/ < > & '",
        ] {
            assert_eq!(
                written(|out| write_text(text.as_bytes(), out)),
                serde_json::to_string(text).unwrap(),
                "{text:?}"
            );
        }
        let error = write_text(b"bad \xff", &mut Vec::new()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid utf-8 sequence of 1 bytes from index 4"
        );
    }

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
                written(|out| write_timestamp(micros, out)),
                quoted(&expected),
                "{micros}"
            );
        }
    }

    #[test]
    fn infinite_timestamps_and_dates_keep_their_postgres_names() {
        assert_eq!(
            written(|out| write_timestamp(i64::MAX, out)),
            "\"infinity\""
        );
        assert_eq!(
            written(|out| write_timestamp(i64::MIN, out)),
            "\"-infinity\""
        );
        assert_eq!(written(|out| write_date(i32::MAX, out)), "\"infinity\"");
        assert_eq!(written(|out| write_date(i32::MIN, out)), "\"-infinity\"");
    }

    #[test]
    fn dates_are_written_as_chrono_writes_them() {
        for days in [
            -730_485, -730_120, -730_119, -1, 0, 1, 9_497, 2_921_939, 2_922_304, 5_000_000,
        ] {
            let expected = (epoch().date() + TimeDelta::days(days))
                .format("%Y-%m-%d")
                .to_string();
            assert_eq!(
                written(|out| write_date(days as i32, out)),
                quoted(&expected),
                "{days}"
            );
        }
    }

    #[test]
    fn times_are_written_as_chrono_writes_them() {
        for micros in [
            0,
            1,
            500_000,
            999_999,
            1_000,
            47_655_500_000,
            86_399_999_999,
            3_600_000_123_000,
        ] {
            let at = NaiveTime::from_num_seconds_from_midnight_opt(
                (micros / 1_000_000) as u32 % 86_400,
                (micros % 1_000_000) as u32 * 1000,
            )
            .unwrap();
            if micros >= 86_400_000_000 {
                assert!(write_time(micros, &mut Vec::new()).is_err());
                continue;
            }
            assert_eq!(
                written(|out| write_time(micros, out)),
                quoted(&at.format("%H:%M:%S%.f").to_string()),
                "{micros}"
            );
        }
        assert_eq!(
            written(|out| write_time(86_400_000_000, out)),
            "\"24:00:00\""
        );
    }

    #[test]
    fn floats_are_written_as_serde_json_writes_them_and_the_rest_by_name() {
        for value in [0.1, 1.0, -2.5, 1e-7, 1e22, 123456789.125, f64::MIN_POSITIVE] {
            assert_eq!(
                written(|out| write_float(value, out)),
                serde_json::to_string(&Value::from(value)).unwrap()
            );
        }
        assert_eq!(written(|out| write_float(f64::NAN, out)), "\"NaN\"");
        assert_eq!(
            written(|out| write_float(f64::INFINITY, out)),
            "\"Infinity\""
        );
        assert_eq!(
            written(|out| write_float(f64::NEG_INFINITY, out)),
            "\"-Infinity\""
        );
    }
}
