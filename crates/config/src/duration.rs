//! Durations written in a pipeline file: a whole number and a unit, `500ms`, `30s`, `10m`,
//! `1h`, `1d` (`statePersistence.lookback` and `delay`).

use std::time::Duration;

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a duration; write a whole number and a unit: 500ms, 30s, 10m, 1h or 1d")]
pub struct DurationError {
    /// The text as written.
    pub text: String,
}

/// Reads a whole number followed by `ms`, `s`, `m`, `h` or `d`.
///
/// ```
/// use std::time::Duration;
/// use cannectors_config::parse_duration;
/// assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
/// assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
/// assert!(parse_duration("10").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let refuse = || DurationError {
        text: text.to_owned(),
    };
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().map_err(|_| refuse())?;
    let seconds_per_unit: u64 = match unit {
        "ms" => return Ok(Duration::from_millis(number)),
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(refuse()),
    };
    number
        .checked_mul(seconds_per_unit)
        // chrono's TimeDelta, which the window is computed with, holds less than u64 seconds.
        .filter(|seconds| *seconds <= i64::MAX as u64 / 1_000)
        .map(Duration::from_secs)
        .ok_or_else(refuse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_unit_reads_as_its_length() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
    }

    #[test]
    fn anything_else_is_refused_with_the_accepted_forms() {
        for text in [
            "",
            "10",
            "m",
            "1.5h",
            "-1m",
            "10 m",
            "10M",
            "1w",
            "99999999999999999999d",
        ] {
            assert_eq!(
                parse_duration(text).unwrap_err().to_string(),
                format!(
                    "`{text}` is not a duration; write a whole number and a unit: 500ms, 30s, \
                     10m, 1h or 1d"
                )
            );
        }
    }
}
