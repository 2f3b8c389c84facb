//! PostgreSQL `numeric` in its binary form, to and from exact decimal text.
//!
//! The wire value is base-10000 digits with a weight (the power of 10000 of the first digit),
//! a sign and a display scale. Going through text keeps every digit, whatever the precision;
//! only the last step, [`write_json`], decides whether a JSON number can carry the value.

use std::fmt::Write;

const POSITIVE: u16 = 0x0000;
const NEGATIVE: u16 = 0x4000;
const NAN: u16 = 0xC000;
const POSITIVE_INFINITY: u16 = 0xD000;
const NEGATIVE_INFINITY: u16 = 0xF000;

/// Reads a binary `numeric` into decimal text with its display scale (`10.50` stays `10.50`).
pub(crate) fn decode(raw: &[u8]) -> Result<String, String> {
    let word = |i: usize| -> Result<u16, String> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "the numeric value is truncated".to_owned())
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(1)? as i16);
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    match sign {
        NAN => return Ok("NaN".to_owned()),
        POSITIVE_INFINITY => return Ok("Infinity".to_owned()),
        NEGATIVE_INFINITY => return Ok("-Infinity".to_owned()),
        POSITIVE | NEGATIVE => {}
        other => return Err(format!("unknown numeric sign {other:#06x}")),
    }
    let mut digits = Vec::with_capacity(ndigits);
    for i in 0..ndigits {
        let digit = word(4 + i)?;
        if digit > 9999 {
            return Err(format!("numeric digit {digit} is out of range"));
        }
        digits.push(digit);
    }
    // digits[i] is worth 10000^(weight - i); indexes outside the list are zeros.
    let digit = |i: i32| -> u16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut text = String::with_capacity(8 + ndigits * 4 + dscale);
    if sign == NEGATIVE {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        for i in 0..=weight {
            // Writing to a String cannot fail.
            let _ = if i == 0 {
                write!(text, "{}", digit(i))
            } else {
                write!(text, "{:04}", digit(i))
            };
        }
    }
    if dscale > 0 {
        text.push('.');
        let start = text.len();
        let mut i = weight + 1;
        while text.len() - start < dscale {
            let _ = write!(text, "{:04}", digit(i));
            i += 1;
        }
        text.truncate(start + dscale);
    }
    Ok(text)
}

/// The number decimal text is in JSON when a JSON number carries it exactly (integers that fit
/// 64 bits; fractions whose closest `f64` prints back as the same decimal, trailing zeros
/// aside); `None` when only a string keeps every digit.
fn exact_number(text: &str) -> Option<serde_json::Number> {
    let normalized = match text.split_once('.') {
        Some((int, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                int.to_owned()
            } else {
                format!("{int}.{frac}")
            }
        }
        None => text.to_owned(),
    };
    if !normalized.contains('.') {
        if let Ok(n) = normalized.parse::<i64>() {
            return Some(n.into());
        }
        return normalized.parse::<u64>().ok().map(Into::into);
    }
    let number = serde_json::Number::from_f64(normalized.parse::<f64>().ok()?)?;
    (number.to_string() == normalized).then_some(number)
}

/// Appends the JSON form of a binary `numeric`: a number when one carries the value exactly
/// ([`exact_number`]), else a string with every digit of its decimal text; `NaN` and the
/// infinities are strings. Values of at most 15 significant digits (prices, amounts,
/// quantities), which are most of them, are computed without the text.
pub(crate) fn write_json(raw: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let number = match small_number(raw) {
        Some(number) => number,
        None => {
            let text = decode(raw)?;
            match exact_number(&text) {
                Some(number) => number,
                None => {
                    // Digits, a sign, a point or a special value's name: nothing to escape.
                    out.push(b'"');
                    out.extend_from_slice(text.as_bytes());
                    out.push(b'"');
                    return Ok(());
                }
            }
        }
    };
    serde_json::to_writer(out, &number).map_err(|e| e.to_string())
}

/// The powers of ten an `f64` holds exactly.
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// [`exact_number`] of the text of a numeric of at most four base-10000 digits, or `None` when the
/// value needs the text path: special values, a malformed value, or a fraction that is too
/// long or too small to be written back digit for digit as a plain JSON number.
///
/// A fraction `m / 10^s` with `m < 10^15` and `s <= 22` is one correctly rounded division of
/// two exact `f64`s, so it is the closest `f64` to the decimal; with at most 15 significant
/// digits that `f64` prints back as the same digits, and from 1e-5 up it prints without an
/// exponent, which is exactly when the text path keeps it as a number.
fn small_number(raw: &[u8]) -> Option<serde_json::Number> {
    let word = |i: usize| {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(1)? as i16);
    let sign = word(2)?;
    let dscale = i32::from(word(3)?);
    if ndigits > 4 || raw.len() != 8 + 2 * ndigits || !matches!(sign, POSITIVE | NEGATIVE) {
        return None;
    }
    let mut mantissa = 0u64;
    for i in 0..ndigits {
        let digit = word(4 + i)?;
        if digit > 9999 {
            return None;
        }
        mantissa = mantissa * 10_000 + u64::from(digit);
    }
    if mantissa == 0 {
        return Some(0u64.into());
    }
    // The value is mantissa * 10^exponent.
    let mut exponent = 4 * (weight + 1 - i32::try_from(ndigits).ok()?);
    while mantissa.is_multiple_of(10) {
        mantissa /= 10;
        exponent += 1;
    }
    let negative = sign == NEGATIVE;
    if exponent >= 0 {
        let magnitude =
            u128::from(mantissa).checked_mul(10u128.checked_pow(exponent.unsigned_abs())?)?;
        return if negative {
            i64::try_from(-i128::try_from(magnitude).ok()?)
                .ok()
                .map(Into::into)
        } else {
            u64::try_from(magnitude).ok().map(Into::into)
        };
    }
    let scale = exponent.unsigned_abs();
    let significant = mantissa.ilog10() + 1;
    // Digits past the display scale are dropped by the text path; leave those values to it.
    if mantissa >= 1_000_000_000_000_000 || scale > 22 || i64::from(scale) > i64::from(dscale) {
        return None;
    }
    // The exponent of the leading digit, as it would be written in scientific notation.
    if i64::from(significant) - i64::from(scale) - 1 < -5 {
        return None;
    }
    let magnitude = mantissa as f64 / EXACT_POWERS_OF_TEN[scale as usize];
    serde_json::Number::from_f64(if negative { -magnitude } else { magnitude })
}

/// Encodes decimal text (`-12.50`, `1e6`, `NaN`, `Infinity`) as a binary `numeric`.
pub(crate) fn encode(text: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let text = text.trim();
    let special = match text {
        "NaN" | "nan" => Some(NAN),
        "Infinity" | "infinity" | "+Infinity" | "inf" => Some(POSITIVE_INFINITY),
        "-Infinity" | "-infinity" | "-inf" => Some(NEGATIVE_INFINITY),
        _ => None,
    };
    if let Some(sign) = special {
        for word in [0u16, 0, sign, 0] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        return Ok(());
    }
    let not_decimal = || format!("`{text}` is not a decimal number");
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => {
            let exponent = unsigned[at + 1..]
                .parse::<i32>()
                .map_err(|_| not_decimal())?;
            (&unsigned[..at], exponent)
        }
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        || exponent.unsigned_abs() > 100_000
    {
        return Err(not_decimal());
    }
    let frac_len = i32::try_from(frac.len()).map_err(|_| not_decimal())?;
    let scale = (frac_len - exponent).max(0);
    let dscale = u16::try_from(scale)
        .ok()
        .filter(|s| *s <= 16383)
        .ok_or_else(|| format!("`{text}` has more than 16383 digits after the point"))?;
    // Align the digits on the decimal point in groups of four.
    let point = i32::try_from(int.len()).map_err(|_| not_decimal())? + exponent;
    let left_pad = (4 - point.rem_euclid(4)) % 4;
    let mut all: Vec<u8> = Vec::with_capacity(int.len() + frac.len() + 8);
    all.extend(std::iter::repeat_n(0u8, left_pad as usize));
    all.extend(int.bytes().chain(frac.bytes()).map(|b| b - b'0'));
    while !all.len().is_multiple_of(4) {
        all.push(0);
    }
    let mut groups: Vec<u16> = all
        .chunks(4)
        .map(|c| c.iter().fold(0u16, |acc, d| acc * 10 + u16::from(*d)))
        .collect();
    let mut weight = (point + left_pad) / 4 - 1;
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= i32::try_from(leading).map_err(|_| not_decimal())?;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let ndigits = u16::try_from(groups.len()).map_err(|_| not_decimal())?;
    let weight = i16::try_from(weight).map_err(|_| format!("`{text}` is out of numeric range"))?;
    let sign = if negative && !groups.is_empty() {
        NEGATIVE
    } else {
        POSITIVE
    };
    for word in [ndigits, weight as u16, sign, dscale] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    for group in groups {
        out.extend_from_slice(&group.to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(text: &str) -> String {
        let mut buf = Vec::new();
        encode(text, &mut buf).unwrap();
        decode(&buf).unwrap()
    }

    #[test]
    fn encoded_decimals_read_back_digit_for_digit() {
        for text in [
            "0",
            "1",
            "-1",
            "10.50",
            "0.0001",
            "0.00001",
            "123456789.987654321",
            "-0.5",
            "99999999999999999999999999999999999999.000000000001",
            "10000",
            "0.10",
        ] {
            assert_eq!(round_trip(text), text);
        }
    }

    #[test]
    fn exponents_become_plain_decimals() {
        assert_eq!(round_trip("1e6"), "1000000");
        assert_eq!(round_trip("1.5E-3"), "0.0015");
        assert_eq!(round_trip("NaN"), "NaN");
        assert_eq!(round_trip("-Infinity"), "-Infinity");
    }

    #[test]
    fn rejects_text_that_is_not_a_number() {
        let mut buf = Vec::new();
        assert_eq!(
            encode("12a", &mut buf).unwrap_err(),
            "`12a` is not a decimal number"
        );
        assert!(encode("", &mut buf).is_err());
        assert!(encode(".", &mut buf).is_err());
    }

    /// The JSON a numeric's text became before [`write_json`] existed.
    fn to_json(text: String) -> serde_json::Value {
        match exact_number(&text) {
            Some(number) => serde_json::Value::Number(number),
            None => serde_json::Value::String(text),
        }
    }

    fn written(raw: &[u8]) -> String {
        let mut out = Vec::new();
        write_json(raw, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn numeric(text: &str) -> Vec<u8> {
        let mut raw = Vec::new();
        encode(text, &mut raw).unwrap();
        raw
    }

    #[test]
    fn the_short_path_writes_what_the_text_path_writes() {
        let mut texts: Vec<String> = [
            "0",
            "0.00",
            "1",
            "-1",
            "10.50",
            "79.19",
            "-0.5",
            "0.00001",
            "0.000010",
            "0.000015",
            "0.0000099",
            "0.000001",
            "123456789012345",
            "12345678901234.5",
            "0.123456789012345",
            "1234567890123456",
            "123456789012345.6",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "18446744073709551616",
            "1e20",
            "1e30",
            "99999999.99",
            "0.1",
            "0.2",
            "0.3",
            "1.1",
            "2.675",
            "1e-22",
            "NaN",
            "Infinity",
        ]
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
        // Every amount a numeric(12,2) can hold follows one pattern; sample it densely.
        for cents in (0..100_000_000_000i64).step_by(7_919_113) {
            texts.push(format!("{}.{:02}", cents / 100, cents % 100));
            texts.push(format!("-{}.{:02}", cents / 100, cents % 100));
        }
        for scale in 0..20 {
            for digits in ["1", "15", "123456789", "999999999999999", "100000000000001"] {
                let text = if scale == 0 {
                    digits.to_owned()
                } else {
                    format!("0.{}{digits}", "0".repeat(scale))
                };
                texts.push(text);
            }
        }
        for text in texts {
            let raw = numeric(&text);
            assert_eq!(
                written(&raw),
                serde_json::to_string(&to_json(decode(&raw).unwrap())).unwrap(),
                "{text}"
            );
        }
    }

    #[test]
    fn json_numbers_only_when_no_digit_is_lost() {
        assert_eq!(to_json("42".into()), json!(42));
        assert_eq!(to_json("10.50".into()), json!(10.5));
        assert_eq!(to_json("10.00".into()), json!(10));
        assert_eq!(
            to_json("18446744073709551615".into()),
            json!(18446744073709551615u64)
        );
        assert_eq!(
            to_json("123456789012345678901234".into()),
            json!("123456789012345678901234")
        );
        assert_eq!(
            to_json("0.12345678901234567890".into()),
            json!("0.12345678901234567890")
        );
        assert_eq!(to_json("NaN".into()), json!("NaN"));
    }
}
