//! Cursor values and how they compare.
//!
//! Sources write timestamps in many shapes (RFC 3339 with any offset or precision, SQL-style text
//! without an offset, epoch numbers). A [`Timestamp`] keeps the value as it was written, so that
//! the state file and the next request show what the source itself produced, and compares by the
//! instant it denotes, so that `2026-01-01T01:00:00+01:00` and `2026-01-01T00:00:00Z` are the same
//! cursor. A [`CursorId`] keeps integers as integers, so that 10 sorts after 9.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde_json::Value;

/// Epoch numbers whose integer part is at least this large (in magnitude) are milliseconds,
/// smaller ones are seconds. 10^11 seconds is the year 5138, while 10^11 milliseconds is
/// March 1973: no real seconds value is this large, and every millisecond value after 1973 is.
const EPOCH_MILLIS_FROM: u64 = 100_000_000_000;

/// A timestamp cursor: the value as it was written, and the instant it denotes.
///
/// Two timestamps are equal and ordered by their instants only, whatever their offsets,
/// precision or form. Accepted forms:
///
/// - RFC 3339 with any offset and any number of fraction digits: `2026-01-01T00:00:00.5+02:00`;
/// - `YYYY-MM-DD HH:MM:SS[.f]` and `YYYY-MM-DDTHH:MM:SS[.f]` without offset, read as UTC;
/// - `YYYY-MM-DD HH:MM:SS[.f]±HH[:MM]` (PostgreSQL's text form);
/// - `YYYY-MM-DD`, read as midnight UTC;
/// - epoch time as a JSON number or a decimal string (`1767225600`, `"1767225600.25"`): seconds
///   when the integer part is below 10^11 in magnitude, milliseconds from 10^11 on.
///
/// ```
/// use cannectors_state::Timestamp;
/// let utc = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
/// let paris = Timestamp::parse("2026-01-01T01:00:00.000+01:00").unwrap();
/// let millis = Timestamp::from_json(&serde_json::json!(1767225600000_u64)).unwrap();
/// assert_eq!(utc, paris);
/// assert_eq!(utc, millis);
/// assert_eq!(paris.to_string(), "2026-01-01T01:00:00.000+01:00");
/// ```
#[derive(Debug, Clone)]
pub struct Timestamp {
    instant: DateTime<Utc>,
    /// A JSON string or number, exactly as read.
    written: Value,
}

/// A value that is not a timestamp in any accepted form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value} is not a timestamp: write RFC 3339 such as \"2026-01-01T00:00:00Z\", \
     \"YYYY-MM-DD HH:MM:SS\" (read as UTC), or epoch seconds or milliseconds as a number"
)]
pub struct TimestampError {
    /// The rejected value, as compact JSON (shortened when long).
    pub value: String,
}

impl Timestamp {
    /// Parses a timestamp written as text (see the accepted forms on [`Timestamp`]).
    pub fn parse(text: &str) -> Result<Timestamp, TimestampError> {
        match parse_instant_text(text) {
            Some(instant) => Ok(Timestamp {
                instant,
                written: Value::String(text.to_owned()),
            }),
            None => Err(TimestampError {
                value: excerpt(&Value::String(text.to_owned())),
            }),
        }
    }

    /// Reads a timestamp from a JSON string or number (epoch seconds or milliseconds).
    pub fn from_json(value: &Value) -> Result<Timestamp, TimestampError> {
        match instant_of_json(value) {
            Some(instant) => Ok(Timestamp {
                instant,
                written: value.clone(),
            }),
            None => Err(TimestampError {
                value: excerpt(value),
            }),
        }
    }

    /// The timestamp written as the JSON string `text` (no escapes), whose instant the caller
    /// already read from it with [`parse_instant_text`].
    pub(crate) fn of_plain_text(instant: DateTime<Utc>, text: &str) -> Timestamp {
        Timestamp {
            instant,
            written: Value::String(text.to_owned()),
        }
    }

    /// A timestamp for an instant, written as RFC 3339 in UTC.
    pub fn from_instant(instant: DateTime<Utc>) -> Timestamp {
        let written = Value::String(instant.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        Timestamp { instant, written }
    }

    /// The timestamp `by` earlier, written in the same form as this one where it can be
    /// (epoch seconds or milliseconds as a number or text, `YYYY-MM-DD HH:MM:SS` text,
    /// `YYYY-MM-DDTHH:MM:SS` text, a date), else as RFC 3339 in UTC: a database compares the
    /// value it is bound to as it compared the committed one. A date is moved back to the
    /// date that holds the earlier instant, which only widens what is read.
    ///
    /// ```
    /// use cannectors_state::Timestamp;
    /// let minutes = chrono::TimeDelta::minutes(10);
    /// let back = |text: &str| Timestamp::parse(text).unwrap().earlier_by(minutes).to_string();
    /// assert_eq!(back("2026-01-01T00:05:00+01:00"), "2025-12-31T22:55:00Z");
    /// assert_eq!(back("2026-01-01 00:05:00.250"), "2025-12-31 23:55:00.250");
    /// assert_eq!(back("2026-01-01"), "2025-12-31");
    /// assert_eq!(back("1767225600"), "1767225000");
    /// let millis = Timestamp::from_json(&serde_json::json!(1767225600000_u64)).unwrap();
    /// assert_eq!(millis.earlier_by(minutes).as_json(), &serde_json::json!(1767225000000_u64));
    /// ```
    pub fn earlier_by(&self, by: chrono::TimeDelta) -> Timestamp {
        self.with_instant(
            self.instant
                .checked_sub_signed(by)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        )
    }

    /// Another instant, written in the form of this timestamp (as for
    /// [`earlier_by`](Self::earlier_by)).
    ///
    /// ```
    /// use cannectors_state::Timestamp;
    /// let committed = Timestamp::parse("2026-01-01 10:00:00").unwrap();
    /// let end = chrono::DateTime::parse_from_rfc3339("2026-01-02T08:30:00Z").unwrap().to_utc();
    /// assert_eq!(committed.with_instant(end).to_string(), "2026-01-02 08:30:00");
    /// ```
    pub fn with_instant(&self, instant: DateTime<Utc>) -> Timestamp {
        let written = match &self.written {
            Value::Number(number) => {
                let millis = number
                    .as_f64()
                    .is_some_and(|n| n.abs() >= EPOCH_MILLIS_FROM as f64);
                let whole = if millis {
                    instant.timestamp_millis()
                } else {
                    instant.timestamp()
                };
                Value::from(whole)
            }
            Value::String(text) => Value::String(written_like(text, instant)),
            _ => Value::String(instant.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        };
        Timestamp { instant, written }
    }

    /// The instant this timestamp denotes.
    pub fn instant(&self) -> DateTime<Utc> {
        self.instant
    }

    /// The value as it was written: a JSON string, or a JSON number for epoch time.
    pub fn as_json(&self) -> &Value {
        &self.written
    }

    /// The instant as RFC 3339 in UTC with a `Z`, with as many fraction digits as it needs.
    pub fn to_rfc3339_utc(&self) -> String {
        self.instant.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }
}

impl PartialEq for Timestamp {
    fn eq(&self, other: &Self) -> bool {
        self.instant == other.instant
    }
}

impl Eq for Timestamp {}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> Ordering {
        self.instant.cmp(&other.instant)
    }
}

impl Hash for Timestamp {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.instant.hash(state);
    }
}

impl fmt::Display for Timestamp {
    /// The value as it was written, without JSON quotes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.written {
            Value::String(text) => f.write_str(text),
            other => write!(f, "{other}"),
        }
    }
}

/// `instant` in the form of `text`, a timestamp as it was written (see
/// [`Timestamp::earlier_by`]).
fn written_like(text: &str, instant: DateTime<Utc>) -> String {
    if DateTime::parse_from_rfc3339(text).is_ok() {
        return instant.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    }
    if parse_epoch_text(text).is_some() {
        let millis = text
            .trim_start_matches('-')
            .split('.')
            .next()
            .and_then(|whole| whole.parse::<u64>().ok())
            .is_some_and(|whole| whole >= EPOCH_MILLIS_FROM);
        return if millis {
            instant.timestamp_millis().to_string()
        } else {
            instant.timestamp().to_string()
        };
    }
    let fraction = text.contains('.');
    for (format, with_fraction) in [
        ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.3f"),
        ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.3f"),
    ] {
        if NaiveDateTime::parse_from_str(text, format).is_ok() {
            let format = if fraction {
                with_fraction
            } else {
                format.trim_end_matches("%.f")
            };
            return instant.format(format).to_string();
        }
    }
    if NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok() {
        return instant.format("%Y-%m-%d").to_string();
    }
    instant.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The instant of a JSON value, without allocating: this runs once per record.
pub(crate) fn instant_of_json(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(text) => parse_instant_text(text),
        Value::Number(number) => {
            if let Some(integer) = number.as_i64() {
                instant_of_epoch(integer < 0, integer.unsigned_abs(), 0)
            } else if let Some(integer) = number.as_u64() {
                instant_of_epoch(false, integer, 0)
            } else {
                instant_of_epoch_float(number.as_f64()?)
            }
        }
        _ => None,
    }
}

/// The instant of a timestamp written as text, in any form [`Timestamp`] accepts.
pub(crate) fn parse_instant_text(text: &str) -> Option<DateTime<Utc>> {
    if let Some(instant) = parse_utc_rfc3339(text) {
        return Some(instant);
    }
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Some(instant.to_utc());
    }
    if let Some(instant) = parse_epoch_text(text) {
        return Some(instant);
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Some(naive.and_utc());
        }
    }
    if let Ok(instant) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z") {
        return Some(instant.to_utc());
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc());
    }
    None
}

/// `YYYY-MM-DDTHH:MM:SS[.F]Z` with 1 to 9 fraction digits, the form most sources write, read
/// without chrono's general parser (which showed in profiles: this runs for every record);
/// `None` for any other text, a leap second included, which chrono then reads. Where it answers,
/// it answers what `DateTime::parse_from_rfc3339` does (a property test holds it to that).
fn parse_utc_rfc3339(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    let [fixed @ .., b'Z'] = bytes else {
        return None;
    };
    let (fixed, fraction) = fixed.split_at_checked(19)?;
    if fixed[4] != b'-'
        || fixed[7] != b'-'
        || fixed[10] != b'T'
        || fixed[13] != b':'
        || fixed[16] != b':'
    {
        return None;
    }
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0u32, |value, &digit| {
            digit
                .is_ascii_digit()
                .then(|| value * 10 + u32::from(digit - b'0'))
        })
    };
    let nanos = match fraction {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            number(digits)? * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let second = number(&fixed[17..19])?;
    if second > 59 {
        return None;
    }
    let year = i32::try_from(number(&fixed[..4])?).ok()?;
    let day = NaiveDate::from_ymd_opt(year, number(&fixed[5..7])?, number(&fixed[8..10])?)?;
    let time = day.and_hms_nano_opt(
        number(&fixed[11..13])?,
        number(&fixed[14..16])?,
        second,
        nanos,
    )?;
    Some(time.and_utc())
}

/// Reads `[-]digits[.digits]` exactly (no float rounding), so that two epoch values a
/// microsecond apart still compare in the right order.
fn parse_epoch_text(text: &str) -> Option<DateTime<Utc>> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (unsigned, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    if unsigned.ends_with('.') {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let scale: u32 = if whole >= EPOCH_MILLIS_FROM { 6 } else { 9 };
    // Digits past nanosecond precision cannot change the order of two instants chrono can hold.
    let mut nanos: u64 = 0;
    let mut digits = 0;
    for byte in fraction.bytes().take(scale as usize) {
        nanos = nanos * 10 + u64::from(byte - b'0');
        digits += 1;
    }
    nanos *= 10_u64.pow(scale - digits);
    instant_of_epoch(negative, whole, nanos)
}

/// `whole` seconds or milliseconds (by magnitude) plus `sub_nanos`, the fraction of one unit
/// expressed in nanoseconds.
fn instant_of_epoch(negative: bool, whole: u64, sub_nanos: u64) -> Option<DateTime<Utc>> {
    let total_nanos: i128 = if whole >= EPOCH_MILLIS_FROM {
        i128::from(whole) * 1_000_000 + i128::from(sub_nanos)
    } else {
        i128::from(whole) * 1_000_000_000 + i128::from(sub_nanos)
    };
    let signed = if negative { -total_nanos } else { total_nanos };
    let seconds = i64::try_from(signed.div_euclid(1_000_000_000)).ok()?;
    let nanos = u32::try_from(signed.rem_euclid(1_000_000_000)).ok()?;
    DateTime::from_timestamp(seconds, nanos)
}

fn instant_of_epoch_float(number: f64) -> Option<DateTime<Utc>> {
    if !number.is_finite() {
        return None;
    }
    let seconds = if number.abs() >= EPOCH_MILLIS_FROM as f64 {
        number / 1000.0
    } else {
        number
    };
    let whole = seconds.floor();
    if whole.abs() > i64::MAX as f64 / 2.0 {
        return None;
    }
    let nanos = ((seconds - whole) * 1e9).round().min(999_999_999.0);
    DateTime::from_timestamp(whole as i64, nanos as u32)
}

/// An id cursor: an integer or a string.
///
/// Integers compare as integers and strings as strings (byte by byte, which for ULIDs,
/// zero-padded numbers and ISO dates is their natural order). The two kinds do not mix in a
/// well-behaved source; when they meet anyway, every integer sorts before every string, so that
/// the order stays total. [`State`](crate::State) compares a committed id of the other kind as
/// the spec asks (a string holding an integer as that integer, an integer against strings as
/// its decimal text), which is what matters when an older or hand-written file stored `"42"`.
///
/// ```
/// use cannectors_state::CursorId;
/// assert!(CursorId::Integer(9) < CursorId::Integer(10));
/// assert!(CursorId::from("a9") > CursorId::from("a10"));
/// assert_eq!(CursorId::parse("42"), CursorId::Integer(42));
/// assert_eq!(CursorId::parse("\"42\""), CursorId::from("42"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CursorId {
    /// An integer id.
    Integer(i64),
    /// A string id.
    Text(String),
}

/// A value that cannot be an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value} is not an id: an id is an integer (up to 9223372036854775807) or a string; \
     store larger or fractional numbers as strings"
)]
pub struct IdError {
    /// The rejected value, as compact JSON (shortened when long).
    pub value: String,
}

impl CursorId {
    /// Reads an id from a JSON integer or string.
    pub fn from_json(value: &Value) -> Result<CursorId, IdError> {
        match IdRef::of_json(value) {
            Some(id) => Ok(id.to_owned()),
            None => Err(IdError {
                value: excerpt(value),
            }),
        }
    }

    /// Reads an id typed on a command line: the decimal form of an integer is that integer,
    /// a JSON string literal (`"42"`, quotes included) is that string, anything else is text.
    pub fn parse(text: &str) -> CursorId {
        if let Ok(integer) = text.parse::<i64>()
            && integer.to_string() == text
        {
            return CursorId::Integer(integer);
        }
        if text.starts_with('"')
            && let Ok(Value::String(inner)) = serde_json::from_str::<Value>(text)
        {
            return CursorId::Text(inner);
        }
        CursorId::Text(text.to_owned())
    }

    /// The id as JSON: a number or a string.
    pub fn to_json(&self) -> Value {
        match self {
            CursorId::Integer(integer) => Value::from(*integer),
            CursorId::Text(text) => Value::String(text.clone()),
        }
    }

    pub(crate) fn as_ref(&self) -> IdRef<'_> {
        match self {
            CursorId::Integer(integer) => IdRef::Integer(*integer),
            CursorId::Text(text) => IdRef::Text(text),
        }
    }

    /// This id read as the kind of `like`, when the kinds differ: `"42"` next to an integer is
    /// 42, and an integer next to a string is its decimal text.
    pub(crate) fn as_kind_of(&self, like: &CursorId) -> CursorId {
        match (self, like) {
            (CursorId::Text(text), CursorId::Integer(_)) => match text.trim().parse::<i64>() {
                Ok(integer) => CursorId::Integer(integer),
                Err(_) => self.clone(),
            },
            (CursorId::Integer(integer), CursorId::Text(_)) => CursorId::Text(integer.to_string()),
            _ => self.clone(),
        }
    }
}

impl From<i64> for CursorId {
    fn from(integer: i64) -> Self {
        CursorId::Integer(integer)
    }
}

impl From<&str> for CursorId {
    fn from(text: &str) -> Self {
        CursorId::Text(text.to_owned())
    }
}

impl From<String> for CursorId {
    fn from(text: String) -> Self {
        CursorId::Text(text)
    }
}

impl PartialOrd for CursorId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for CursorId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_ref().cmp(&other.as_ref())
    }
}

impl fmt::Display for CursorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CursorId::Integer(integer) => write!(f, "{integer}"),
            CursorId::Text(text) => f.write_str(text),
        }
    }
}

/// A borrowed id, so that finding the greatest record of a batch allocates nothing per record.
/// The derived order (integers first, then strings) is the order of [`CursorId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum IdRef<'a> {
    Integer(i64),
    Text(&'a str),
}

impl<'a> IdRef<'a> {
    pub(crate) fn of_json(value: &'a Value) -> Option<IdRef<'a>> {
        match value {
            Value::Number(number) => number.as_i64().map(IdRef::Integer),
            Value::String(text) => Some(IdRef::Text(text)),
            _ => None,
        }
    }

    pub(crate) fn to_owned(self) -> CursorId {
        match self {
            IdRef::Integer(integer) => CursorId::Integer(integer),
            IdRef::Text(text) => CursorId::Text(text.to_owned()),
        }
    }
}

/// A value as compact JSON for an error message, shortened so that a huge record field does not
/// flood the terminal.
pub(crate) fn excerpt(value: &Value) -> String {
    const LIMIT: usize = 80;
    let text = value.to_string();
    if text.chars().count() <= LIMIT {
        return text;
    }
    let mut short: String = text.chars().take(LIMIT).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn instant(text: &str) -> DateTime<Utc> {
        Timestamp::parse(text).unwrap().instant()
    }

    #[test]
    fn same_instant_in_different_offsets_and_precisions_is_equal() {
        let forms = [
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00.000000Z",
            "2026-01-01T01:00:00+01:00",
            "2025-12-31T19:00:00-05:00",
            "2026-01-01t00:00:00z",
            "2026-01-01 00:00:00",
            "2026-01-01T00:00:00",
            "2026-01-01 00:00:00.000",
            "2026-01-01 02:00:00+02",
            "2026-01-01",
            "1767225600",
            "1767225600000",
        ];
        let expected = instant("2026-01-01T00:00:00Z");
        for form in forms {
            assert_eq!(instant(form), expected, "{form}");
        }
    }

    #[test]
    fn epoch_numbers_below_ten_to_the_eleven_are_seconds_and_above_are_milliseconds() {
        let seconds = Timestamp::from_json(&json!(99_999_999_999_i64)).unwrap();
        assert_eq!(seconds.to_rfc3339_utc(), "5138-11-16T09:46:39Z");
        let millis = Timestamp::from_json(&json!(100_000_000_000_i64)).unwrap();
        assert_eq!(millis.to_rfc3339_utc(), "1973-03-03T09:46:40Z");
    }

    #[test]
    fn fractional_epoch_values_keep_their_sub_second_order() {
        let earlier = Timestamp::parse("1700000000.123456").unwrap();
        let later = Timestamp::parse("1700000000.123457").unwrap();
        assert!(earlier < later);
        assert_eq!(earlier.to_rfc3339_utc(), "2023-11-14T22:13:20.123456Z");
        let millis = Timestamp::parse("1700000000123.5").unwrap();
        assert_eq!(millis.to_rfc3339_utc(), "2023-11-14T22:13:20.123500Z");
        let float = Timestamp::from_json(&json!(1700000000.5)).unwrap();
        assert_eq!(float.to_rfc3339_utc(), "2023-11-14T22:13:20.500Z");
        let negative = Timestamp::parse("-1.5").unwrap();
        assert_eq!(negative.to_rfc3339_utc(), "1969-12-31T23:59:58.500Z");
    }

    #[test]
    fn keeps_the_written_form_and_renders_it_back() {
        let text = Timestamp::parse("2026-01-01 10:00:00.5").unwrap();
        assert_eq!(text.to_string(), "2026-01-01 10:00:00.5");
        assert_eq!(text.as_json(), &json!("2026-01-01 10:00:00.5"));
        assert_eq!(text.to_rfc3339_utc(), "2026-01-01T10:00:00.500Z");
        let number = Timestamp::from_json(&json!(1767225600)).unwrap();
        assert_eq!(number.to_string(), "1767225600");
        assert_eq!(number.as_json(), &json!(1767225600));
    }

    #[test]
    fn rejects_text_that_is_no_timestamp_with_the_accepted_forms() {
        for bad in [
            "yesterday",
            "",
            "2026-13-01T00:00:00Z",
            "2026-01-01T25:00:00",
            "12.",
            "1e9",
        ] {
            let error = Timestamp::parse(bad).unwrap_err();
            assert_eq!(error.value, json!(bad).to_string());
            assert!(
                error
                    .to_string()
                    .contains("is not a timestamp: write RFC 3339"),
                "{error}"
            );
        }
        for bad in [json!(true), json!(null), json!({"at": 1}), json!([1])] {
            assert!(Timestamp::from_json(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_compare_as_integers_or_as_strings() {
        assert!(CursorId::Integer(9) < CursorId::Integer(10));
        assert!(CursorId::Integer(-1) < CursorId::Integer(0));
        assert!(CursorId::from("10") < CursorId::from("9"));
        assert!(CursorId::from("0999") < CursorId::from("1000"));
        assert!(CursorId::Integer(i64::MAX) < CursorId::from(""));
    }

    #[test]
    fn ids_come_from_json_integers_and_strings_only() {
        assert_eq!(
            CursorId::from_json(&json!(7)).unwrap(),
            CursorId::Integer(7)
        );
        assert_eq!(
            CursorId::from_json(&json!("7")).unwrap(),
            CursorId::from("7")
        );
        for bad in [
            json!(1.5),
            json!(u64::MAX),
            json!([1]),
            json!(null),
            json!(false),
        ] {
            let error = CursorId::from_json(&bad).unwrap_err();
            assert!(error.to_string().contains("is not an id"), "{error}");
        }
    }

    #[test]
    fn command_line_ids_keep_leading_zeros_and_quoted_strings_as_text() {
        assert_eq!(CursorId::parse("-5"), CursorId::Integer(-5));
        assert_eq!(CursorId::parse("007"), CursorId::from("007"));
        assert_eq!(CursorId::parse("\"42\""), CursorId::from("42"));
        assert_eq!(CursorId::parse("abc"), CursorId::from("abc"));
        assert_eq!(
            CursorId::parse("99999999999999999999"),
            CursorId::from("99999999999999999999")
        );
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let long = "x".repeat(500);
        let error = Timestamp::parse(&long).unwrap_err();
        assert!(error.value.chars().count() <= 81);
        assert!(error.value.ends_with('…'));
    }
}

/// The fast path for UTC RFC 3339 text answers what chrono answers, wherever it answers.
#[cfg(test)]
mod utc_rfc3339 {
    use super::*;
    use proptest::prelude::*;

    fn chrono(text: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc())
    }

    #[test]
    fn reads_the_common_forms_as_chrono_does() {
        for text in [
            "2026-01-01T00:00:00Z",
            "2026-12-31T23:59:59.999999999Z",
            "2024-02-29T12:00:00.5Z",
            "0000-01-01T00:00:00.001Z",
            "9999-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_utc_rfc3339(text), chrono(text), "{text}");
            assert!(parse_utc_rfc3339(text).is_some(), "{text}");
        }
    }

    #[test]
    fn leaves_every_other_form_to_chrono() {
        for text in [
            "2026-01-01T00:00:60Z",
            "2026-01-01t00:00:00Z",
            "2026-01-01 00:00:00Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00.1234567891Z",
            "2026-01-01T00:00:00+00:00",
            "2026-01-01T00:00:00z",
            "2025-02-29T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "+2026-01-01T00:00:00Z",
            "Z",
            "",
        ] {
            assert_eq!(parse_utc_rfc3339(text), None, "{text}");
        }
        // A leap second still reads, through chrono.
        assert_eq!(
            parse_instant_text("2026-01-01T00:00:60Z"),
            chrono("2026-01-01T00:00:60Z")
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn answers_what_chrono_answers(
            text in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,11})?(Z|z|[+-][0-9]{2}:[0-9]{2})?"
        ) {
            if let Some(instant) = parse_utc_rfc3339(&text) {
                prop_assert_eq!(Some(instant), chrono(&text));
            }
        }

        #[test]
        fn answers_for_every_valid_instant_written_with_z(
            seconds in 0i64..253_402_300_800,
            nanos in 0u32..1_000_000_000,
            digits in 0usize..=9,
        ) {
            let exact = DateTime::from_timestamp(seconds, nanos).unwrap();
            let mut text = exact.format("%Y-%m-%dT%H:%M:%S").to_string();
            if digits > 0 {
                let fraction = format!("{nanos:09}");
                text.push('.');
                text.push_str(&fraction[..digits]);
            }
            text.push('Z');
            prop_assert!(parse_utc_rfc3339(&text).is_some(), "{}", text);
            prop_assert_eq!(parse_utc_rfc3339(&text), chrono(&text));
        }
    }
}
