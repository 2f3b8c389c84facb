//! Durations written in a pipeline file: a whole number and a unit, `500ms`, `30s`, `10m`,
//! `1h`, `1d` (`statePersistence.lookback` and `delay`).

use std::time::Duration;

/// The longest duration a pipeline file may give: a hundred years (of 365 days). Anything longer
/// is a typo (a lookback reaching before any data, a delay that never lets a record through), and
/// is refused rather than carried into date arithmetic.
pub const LONGEST: Duration = Duration::from_secs(36_500 * 86_400);

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The text is not a whole number and a unit.
    #[error(
        "`{text}` is not a duration; write a whole number and a unit: 500ms, 30s, 10m, 1h or 1d"
    )]
    Unreadable {
        /// The text as written.
        text: String,
    },
    /// The duration is longer than a hundred years.
    #[error("`{text}` is longer than a hundred years (36500d); write a shorter duration")]
    TooLong {
        /// The text as written.
        text: String,
    },
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
    let refuse = || DurationError::Unreadable {
        text: text.to_owned(),
    };
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().map_err(|_| refuse())?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(refuse()),
    };
    match number
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
    {
        Some(duration) if duration <= LONGEST => Ok(duration),
        _ => Err(DurationError::TooLong {
            text: text.to_owned(),
        }),
    }
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

    #[test]
    fn a_duration_past_a_hundred_years_is_refused_as_too_long() {
        assert_eq!(parse_duration("36500d"), Ok(LONGEST));
        for text in [
            "36501d",
            "99999999999d",
            "876001h",
            "18446744073709551615ms",
            "18446744073709551615d",
        ] {
            assert_eq!(
                parse_duration(text).unwrap_err().to_string(),
                format!(
                    "`{text}` is longer than a hundred years (36500d); write a shorter duration"
                )
            );
        }
    }
}
