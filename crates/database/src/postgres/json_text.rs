//! `json` and `jsonb` values copied from their text into a record, in one pass over the bytes.
//!
//! The server sends a document as text (`jsonb` after a version byte). Parsing it into a
//! `serde_json::Value` and writing that back cost more than the rest of a wide row together
//! (a map and a string per key), so the text is copied instead, checked as it goes: whitespace
//! outside strings is dropped, strings are copied with their escapes as they are, and the
//! document must be one complete JSON value, so that a record is always valid JSON whatever
//! the server sent.
//!
//! Numbers are written as a JSON parser reading the document and writing it back writes them
//! (`2.50` becomes `2.5`, `1E3` becomes `1000.0`), which is what records held when documents
//! went through `serde_json::Value`; a number that would lose digits that way (more than a
//! double carries, or beyond its range) is kept as written instead.

use std::fmt::Write as _;

/// Why a document could not be copied; the server never sends one of these for a valid value.
pub(crate) type JsonTextError = String;

/// What the next token may be.
#[derive(Clone, Copy)]
enum Expect {
    /// Any value (the document, an object member's value, an array element after a comma).
    Value,
    /// An element or `]`, just after `[`.
    ElementOrEnd,
    /// A key or `}`, just after `{`.
    KeyOrEnd,
    /// A key, after a comma in an object.
    Key,
    /// The `:` after a key.
    Colon,
    /// A comma or the end of the innermost container, after a value.
    CommaOrEnd,
}

/// Appends `text`, one JSON document, without its insignificant whitespace.
///
/// The text must be UTF-8. That is checked in the copy rather than in a pass of its own (which
/// showed in profiles): outside strings only ASCII is valid JSON, and a string is checked only
/// when it holds a byte beyond ASCII. Whatever fails, a text that is not UTF-8 gets that
/// message, as when the whole text was checked first.
pub(crate) fn write_minified(text: &[u8], out: &mut Vec<u8>) -> Result<(), JsonTextError> {
    copy_minified(text, out).map_err(|error| match std::str::from_utf8(text) {
        Err(e) => format!("the JSON text is not UTF-8: {e}"),
        Ok(_) => error,
    })
}

fn copy_minified(text: &[u8], out: &mut Vec<u8>) -> Result<(), JsonTextError> {
    let mut open = Open::default();
    let mut expect = Expect::Value;
    let mut at = 0;
    loop {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = text.get(at) {
            at += 1;
        }
        let Some(&byte) = text.get(at) else {
            return Err("the JSON text ends before its value is complete".to_owned());
        };
        let unexpected = || {
            format!(
                "unexpected `{}` at byte {at} of the JSON text",
                byte as char
            )
        };
        match expect {
            Expect::Colon => {
                if byte != b':' {
                    return Err(unexpected());
                }
                out.push(b':');
                at += 1;
                expect = Expect::Value;
                continue;
            }
            Expect::CommaOrEnd => {
                let next = match (byte, open.innermost()) {
                    (b',', Some(b'{')) => Some(Expect::Key),
                    (b',', Some(_)) => Some(Expect::Value),
                    (b'}', Some(b'{')) | (b']', Some(b'[')) => {
                        open.pop();
                        None
                    }
                    _ => return Err(unexpected()),
                };
                out.push(byte);
                at += 1;
                if let Some(next) = next {
                    expect = next;
                    continue;
                }
            }
            Expect::KeyOrEnd | Expect::Key => match byte {
                b'"' => {
                    at = copy_string(text, at, out)?;
                    expect = Expect::Colon;
                    continue;
                }
                b'}' if matches!(expect, Expect::KeyOrEnd) => {
                    open.pop();
                    out.push(byte);
                    at += 1;
                }
                _ => return Err(unexpected()),
            },
            Expect::Value | Expect::ElementOrEnd => match byte {
                b']' if matches!(expect, Expect::ElementOrEnd) => {
                    open.pop();
                    out.push(byte);
                    at += 1;
                }
                b'{' | b'[' => {
                    open.push(byte);
                    out.push(byte);
                    at += 1;
                    expect = if byte == b'{' {
                        Expect::KeyOrEnd
                    } else {
                        Expect::ElementOrEnd
                    };
                    continue;
                }
                b'"' => at = copy_string(text, at, out)?,
                b'-' | b'0'..=b'9' => at = copy_number(text, at, out)?,
                b't' | b'f' | b'n' => {
                    let word: &[u8] = match byte {
                        b't' => b"true",
                        b'f' => b"false",
                        _ => b"null",
                    };
                    if !text[at..].starts_with(word) {
                        return Err(unexpected());
                    }
                    out.extend_from_slice(word);
                    at += word.len();
                }
                _ => return Err(unexpected()),
            },
        }
        // A value (or a container) just ended.
        if open.depth == 0 {
            break;
        }
        expect = Expect::CommaOrEnd;
    }
    match text[at..]
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        None => Ok(()),
        Some(extra) => Err(format!(
            "the JSON text goes on after its value, at byte {}",
            at + extra
        )),
    }
}

/// The containers open at a point of a document, innermost last: `b'{'` or `b'['`. The first
/// 64 levels (all that real documents use) are bits of one word, so that a document costs no
/// allocation; deeper ones go to a `Vec`.
#[derive(Default)]
struct Open {
    depth: usize,
    /// Bit `i` set: the container at depth `i` (from 0) is an object.
    objects: u64,
    deeper: Vec<u8>,
}

impl Open {
    fn push(&mut self, byte: u8) {
        if self.depth < 64 {
            let bit = 1 << self.depth;
            if byte == b'{' {
                self.objects |= bit;
            } else {
                self.objects &= !bit;
            }
        } else {
            self.deeper.push(byte);
        }
        self.depth += 1;
    }

    fn pop(&mut self) {
        if self.depth > 64 {
            self.deeper.pop();
        }
        self.depth = self.depth.saturating_sub(1);
    }

    fn innermost(&self) -> Option<u8> {
        let at = self.depth.checked_sub(1)?;
        if at >= 64 {
            return self.deeper.last().copied();
        }
        Some(if self.objects >> at & 1 == 1 {
            b'{'
        } else {
            b'['
        })
    }
}

/// Copies the string starting at `text[start]` (a `"`), escapes as they are; returns the
/// position after its closing quote. A string holding bytes beyond ASCII must be UTF-8.
fn copy_string(text: &[u8], start: usize, out: &mut Vec<u8>) -> Result<usize, JsonTextError> {
    let mut at = start + 1;
    let mut ascii = true;
    loop {
        // The plain run up to the next quote, backslash or control character.
        let run = text[at..]
            .iter()
            .position(|&b| {
                ascii &= b.is_ascii();
                b == b'"' || b == b'\\' || b < 0x20
            })
            .ok_or("a JSON string is not closed")?;
        at += run;
        match text[at] {
            b'"' => {
                at += 1;
                let string = &text[start..at];
                if !ascii && std::str::from_utf8(string).is_err() {
                    return Err("a JSON string is not UTF-8".to_owned());
                }
                out.extend_from_slice(string);
                return Ok(at);
            }
            b'\\' => {
                at = escape_end(text, at)?;
            }
            other => {
                return Err(format!(
                    "a JSON string holds the control character {other:#04x} unescaped"
                ));
            }
        }
    }
}

/// The position after the escape starting at `text[at]` (a backslash), which must be one JSON
/// allows; a `\u` escape of half a surrogate pair must be followed by the other half.
fn escape_end(text: &[u8], at: usize) -> Result<usize, JsonTextError> {
    match text.get(at + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(at + 2),
        Some(b'u') => {
            let unit = hex4(text, at + 2)?;
            match unit {
                0xD800..=0xDBFF => {
                    let low = (text.get(at + 6..at + 8) == Some(b"\\u"))
                        .then(|| hex4(text, at + 8))
                        .transpose()?;
                    match low {
                        Some(0xDC00..=0xDFFF) => Ok(at + 12),
                        _ => Err("a JSON string holds half a surrogate pair".to_owned()),
                    }
                }
                0xDC00..=0xDFFF => Err("a JSON string holds half a surrogate pair".to_owned()),
                _ => Ok(at + 6),
            }
        }
        _ => Err("a JSON string holds an unknown escape".to_owned()),
    }
}

fn hex4(text: &[u8], at: usize) -> Result<u16, JsonTextError> {
    text.get(at..at + 4)
        .and_then(|digits| std::str::from_utf8(digits).ok())
        .and_then(|digits| u16::from_str_radix(digits, 16).ok())
        .ok_or_else(|| "a JSON string holds a \\u escape without four hex digits".to_owned())
}

/// Copies the number starting at `text[start]`; returns the position after it.
fn copy_number(text: &[u8], start: usize, out: &mut Vec<u8>) -> Result<usize, JsonTextError> {
    let digits = |from: usize| {
        from + text[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let malformed = || format!("a malformed JSON number at byte {start}");
    let mut at = start;
    if text[at] == b'-' {
        at += 1;
    }
    let int_end = digits(at);
    let int = &text[at..int_end];
    if int.is_empty() || int.len() > 1 && int[0] == b'0' {
        return Err(malformed());
    }
    at = int_end;
    let mut plain_integer = true;
    if text.get(at) == Some(&b'.') {
        let end = digits(at + 1);
        if end == at + 1 {
            return Err(malformed());
        }
        at = end;
        plain_integer = false;
    }
    if let Some(b'e' | b'E') = text.get(at) {
        at += 1;
        if let Some(b'+' | b'-') = text.get(at) {
            at += 1;
        }
        let end = digits(at);
        if end == at {
            return Err(malformed());
        }
        at = end;
        plain_integer = false;
    }
    let token = &text[start..at];
    // Integers of up to 18 digits are i64s and u64s, which a parser writes back as they are
    // (but `-0`, which it reads as a double).
    if plain_integer && int.len() <= 18 && token != b"-0" {
        out.extend_from_slice(token);
    } else {
        write_number(token, out);
    }
    Ok(at)
}

/// Appends a JSON number token as a parser writes it back, or as it is when that would change
/// its value.
fn write_number(token: &[u8], out: &mut Vec<u8>) {
    if write_short_fraction(token, out) {
        return;
    }
    // The token is ASCII, checked by `copy_number`.
    let token = std::str::from_utf8(token).unwrap_or_default();
    let reparsed = token.parse::<serde_json::Number>().ok().and_then(|number| {
        let mut written = String::new();
        write!(written, "{number}").ok()?;
        (Decimal::of(&written) == Decimal::of(token)).then_some(written)
    });
    out.extend_from_slice(reparsed.as_deref().unwrap_or(token).as_bytes());
}

/// [`write_number`] without parsing, for the fractions most documents hold (prices, rates):
/// `-?D.D` with 1 to 9 digits before the point, the first of them not 0, and at most 15
/// significant digits. Their closest double prints back as the same digits without the
/// trailing zeros (15 digits always round-trip), in plain notation at that magnitude, and with
/// `.0` when no fraction digit is left. `false`, writing nothing, for any other token.
fn write_short_fraction(token: &[u8], out: &mut Vec<u8>) -> bool {
    let unsigned = token.strip_prefix(b"-").unwrap_or(token);
    let Some(point) = unsigned.iter().position(|&b| b == b'.') else {
        return false;
    };
    let (int, frac) = (&unsigned[..point], &unsigned[point + 1..]);
    let plain = |digits: &[u8]| digits.iter().all(u8::is_ascii_digit);
    if !(1..=9).contains(&int.len())
        || int[0] == b'0'
        || !plain(int)
        || !plain(frac)
        || int.len() + frac.len() > 15
    {
        return false;
    }
    let kept = frac.len() - frac.iter().rev().take_while(|&&b| b == b'0').count();
    out.extend_from_slice(&token[..token.len() - frac.len()]);
    if kept == 0 {
        out.push(b'0');
    } else {
        out.extend_from_slice(&frac[..kept]);
    }
    true
}

/// A decimal number as sign, significant digits and exponent, to compare two writings of one
/// value (`2.50`, `2.5`, `25e-1`).
#[derive(PartialEq, Debug)]
struct Decimal {
    negative: bool,
    /// The digits without leading or trailing zeros; empty for zero.
    digits: Vec<u8>,
    /// The value is `0.DIGITS * 10^exponent`.
    exponent: i64,
}

impl Decimal {
    fn of(text: &str) -> Option<Decimal> {
        let (negative, text) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(at) => (&text[..at], text[at + 1..].parse::<i64>().ok()?),
            None => (text, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
        let leading = all.iter().take_while(|b| **b == b'0').count();
        let digits = all[leading..].to_vec();
        let trailing = digits.iter().rev().take_while(|b| **b == b'0').count();
        let digits = digits[..digits.len() - trailing].to_vec();
        if digits.is_empty() {
            return Some(Decimal {
                negative: false,
                digits,
                exponent: 0,
            });
        }
        let int_len = i64::try_from(int.len()).ok()?;
        let leading = i64::try_from(leading).ok()?;
        Some(Decimal {
            negative,
            digits,
            exponent: exponent.checked_add(int_len - leading)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minified(text: &str) -> Result<String, JsonTextError> {
        let mut out = Vec::new();
        write_minified(text.as_bytes(), &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    /// What a document became when it went through `serde_json::Value`.
    fn through_value(text: &str) -> String {
        serde_json::to_string(&serde_json::from_str::<serde_json::Value>(text).unwrap()).unwrap()
    }

    #[test]
    fn whitespace_outside_strings_goes_and_the_rest_stays() {
        assert_eq!(
            minified(" {\"a b\": [1, 2.5, null, true, false, {}, []],\n\t\"c\" : \"x y\\n\\\"\"} ")
                .unwrap(),
            r#"{"a b":[1,2.5,null,true,false,{},[]],"c":"x y\n\""}"#
        );
        assert_eq!(minified("\"\\u00e9\\/\"").unwrap(), r#""\u00e9\/""#);
        assert_eq!(minified("\"\\ud83d\\ude00\"").unwrap(), r#""\ud83d\ude00""#);
        assert_eq!(minified(" 7 ").unwrap(), "7");
    }

    #[test]
    fn documents_as_postgres_writes_jsonb_come_out_as_serde_json_wrote_them() {
        for text in [
            r#"{"b": 1, "aa": [1, -2, 0, 2.50, 0.1, 1.0, 100.0, -0.5, 12.34]}"#,
            r#"{"n": 0.000001, "big": 123456789012345678, "t": "é \" \\ \t \u001f"}"#,
            r#"[1e3, 1E-7, -0, 18446744073709551615, -9223372036854775808, 1.5e300]"#,
            r#"{"deep": [[[[{"x": [{"y": null}]}]]]]}"#,
        ] {
            assert_eq!(minified(text).unwrap(), through_value(text), "{text}");
        }
    }

    #[test]
    fn short_fractions_are_written_as_a_parser_writes_them_back() {
        let mut tokens = vec![
            "1.0",
            "-1.0",
            "1.50",
            "100.00",
            "-7.25",
            "123456789.123456",
            "999999999.999999",
            "1.000000000000000",
            "5.5e3",
            "0.5",
            "0.05",
            "1234567890.5",
        ];
        let samples: Vec<String> = (0..200_000u64)
            .step_by(7)
            .flat_map(|n| {
                [
                    format!("{}.{:02}", n / 100 + 1, n % 100),
                    format!("-{}.{:03}", n * 37 + 1, n % 1000),
                    format!("{}.{:06}", n * 4_999 + 1, n % 1_000_000),
                ]
            })
            .collect();
        tokens.extend(samples.iter().map(String::as_str));
        for token in tokens {
            let mut fast = Vec::new();
            let taken = write_short_fraction(token.as_bytes(), &mut fast);
            let written =
                serde_json::to_string(&token.parse::<serde_json::Number>().unwrap()).unwrap();
            if taken {
                assert_eq!(String::from_utf8(fast).unwrap(), written, "{token}");
            } else {
                assert!(fast.is_empty(), "{token}");
            }
        }
    }

    /// Past the 64 levels kept in a word, containers are still told apart and closed in order.
    #[test]
    fn deeply_nested_documents_are_copied_and_checked() {
        let mut document = String::new();
        for level in 0..150 {
            document.push_str(if level % 3 == 0 { "[ " } else { "{\"k\": " });
        }
        document.push('1');
        for level in (0..150).rev() {
            document.push_str(if level % 3 == 0 { ", 2 ]" } else { " }" });
        }
        // Deeper than serde_json reads; with only integers and no space inside strings, the
        // minified text is the text without its spaces.
        assert_eq!(minified(&document).unwrap(), document.replace(' ', ""));
        // A wrong closing byte deep down is refused, at either side of the 64th level.
        for level in [10, 64, 65, 100] {
            let mut bad = String::new();
            for _ in 0..level {
                bad.push('[');
            }
            bad.push_str("{\"k\": 1]");
            assert!(minified(&bad).is_err(), "level {level}");
        }
    }

    #[test]
    fn numbers_a_double_cannot_carry_are_kept_as_written() {
        assert_eq!(
            minified("[12345678901234567890123, 0.12345678901234567890, 1e400]").unwrap(),
            "[12345678901234567890123,0.12345678901234567890,1e400]"
        );
    }

    #[test]
    fn text_that_is_not_one_json_value_is_refused() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "[1] 2",
            "01",
            "1.",
            "-",
            "1e",
            "tru",
            "\"open",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"a\tb\"",
            "{1:2}",
            "[}",
            "{]",
            "}",
        ] {
            assert!(minified(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(write_minified(b"\"\xff\"", &mut Vec::new()).is_err());
    }

    /// The message is the one of the check of the whole text that came before the copy, wherever
    /// the bad byte is, and text beyond ASCII that is UTF-8 is copied as it is.
    #[test]
    fn text_that_is_not_utf8_is_named_so_wherever_it_is() {
        for (bad, index) in [
            (&b"{\"a\": \"x\xff\"}"[..], 8),
            (b"{\"a\xe9\": 1}", 3),
            (b"[\"\xc3\"]", 2),
            (b"[1, \xff]", 4),
            (b"{\"a\": 1} \xff", 9),
            (b"\"\xed\xa0\x80\"", 1),
        ] {
            assert_eq!(
                write_minified(bad, &mut Vec::new()).unwrap_err(),
                format!(
                    "the JSON text is not UTF-8: {}",
                    std::str::from_utf8(bad).unwrap_err()
                ),
                "{bad:?}"
            );
            assert!(
                std::str::from_utf8(bad)
                    .unwrap_err()
                    .to_string()
                    .ends_with(&format!("from index {index}")),
                "{bad:?}"
            );
        }
        assert_eq!(
            minified(r#"{"é": ["ü €", "\u00e9 😀"]}"#).unwrap(),
            r#"{"é":["ü €","\u00e9 😀"]}"#
        );
    }
}
