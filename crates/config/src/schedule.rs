//! Cron expressions as users write them, turned into what the `cron` crate reads.
//!
//! Users write the classic 5 fields (minute first) or 6 (seconds first). The `cron` crate wants
//! the seconds field, and it numbers the days of the week 1-7 from Sunday where classic cron
//! numbers them 0-7 with 0 and 7 both Sunday. `0 9 * * 1-5` means Monday to Friday to anyone who
//! has written a crontab, so numeric days are translated here instead of silently moving every
//! weekday schedule by one day.
//!
//! A loaded pipeline holds its schedule parsed ([`CronSchedule`]: the `cron` crate's schedule
//! and the time zone), so the scheduler computes fire times without reading text again.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono_tz::Tz;

use crate::document::KeyPath;
use crate::validate::Findings;

/// Why a schedule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{expression}` is not a usable cron schedule: {reason}")]
pub struct ScheduleError {
    /// The expression as written.
    pub expression: String,
    /// What is wrong with it, and how to write it.
    pub reason: String,
}

const FIELDS_HINT: &str = "write 5 fields `minute hour day-of-month month day-of-week` \
                           (e.g. `*/10 * * * *`) or 6 with seconds first (e.g. `0 */10 * * * *`)";

/// Turns a 5- or 6-field cron expression into the 6-field form of the `cron` crate, and checks
/// that the crate accepts it.
///
/// A 5-field expression gets `0` seconds. In the day-of-week field, numbers follow classic
/// cron (`0` or `7` is Sunday, `1` Monday) in both forms; numbers and names (`MON-FRI`) are
/// rewritten into the `cron` crate's numbering. `@hourly`, `@daily` (or `@midnight`), `@weekly`, `@monthly` and
/// `@yearly` (or `@annually`) are accepted. A 7th (year) field is rejected.
///
/// ```
/// use cannectors_config::normalize_schedule;
/// assert_eq!(normalize_schedule("*/10 * * * *").unwrap(), "0 */10 * * * *");
/// assert_eq!(normalize_schedule("30 0 9 * * *").unwrap(), "30 0 9 * * *");
/// // Classic cron numbers days from Sunday = 0; the cron crate from Sunday = 1.
/// assert_eq!(normalize_schedule("0 9 * * 1-5").unwrap(), "0 0 9 * * 2,3,4,5,6");
/// assert!(normalize_schedule("0 0 9 * * * 2030").is_err());
/// ```
pub fn normalize_schedule(expression: &str) -> Result<String, ScheduleError> {
    parse(expression).map(|cron| cron.source().to_owned())
}

/// The `cron` crate's schedule of a 5- or 6-field expression, read as [`normalize_schedule`]
/// says.
fn parse(expression: &str) -> Result<cron::Schedule, ScheduleError> {
    let fail = |reason: String| ScheduleError {
        expression: expression.to_owned(),
        reason,
    };
    let trimmed = expression.trim();
    if let Some(keyword) = trimmed.strip_prefix('@') {
        let shorthand = match keyword {
            "hourly" | "daily" | "weekly" | "monthly" | "yearly" => trimmed,
            "midnight" => "@daily",
            "annually" => "@yearly",
            _ => {
                return Err(fail(format!(
                    "`@{keyword}` is not a known shorthand; use @hourly, @daily, @weekly, \
                     @monthly or @yearly, or {FIELDS_HINT}"
                )));
            }
        };
        return cron::Schedule::from_str(shorthand)
            .map_err(|error| fail(format!("{error}; {FIELDS_HINT}")));
    }
    let fields: Vec<&str> = trimmed.split_whitespace().collect();
    let mut six: Vec<String> = match fields.len() {
        5 => std::iter::once("0")
            .chain(fields.iter().copied())
            .map(str::to_owned)
            .collect(),
        6 => fields.iter().map(|f| (*f).to_owned()).collect(),
        7 => {
            return Err(fail(format!(
                "a 7th (year) field is not supported; {FIELDS_HINT}"
            )));
        }
        0 => return Err(fail(format!("it is empty; {FIELDS_HINT}"))),
        n => return Err(fail(format!("it has {n} fields; {FIELDS_HINT}"))),
    };
    six[5] = day_of_week(&six[5]).map_err(fail)?;
    cron::Schedule::from_str(&six.join(" "))
        .map_err(|error| fail(format!("{error}; {FIELDS_HINT}")))
}

/// When an input runs: its `schedule`, parsed, in the time zone of its `timezone` (UTC when
/// absent), with the expression as written for messages.
///
/// ```
/// use cannectors_config::CronSchedule;
///
/// let schedule = CronSchedule::new(" 0 9 * * 1-5 ", chrono_tz::Europe::Paris).unwrap();
/// assert_eq!(schedule.expression(), "0 9 * * 1-5");
/// assert_eq!(schedule.normalized(), "0 0 9 * * 2,3,4,5,6");
/// assert_eq!(schedule.zone(), chrono_tz::Europe::Paris);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    expression: String,
    cron: cron::Schedule,
    zone: Tz,
}

impl CronSchedule {
    /// Reads a 5- or 6-field cron expression (see [`normalize_schedule`]) in `zone`.
    pub fn new(expression: &str, zone: Tz) -> Result<CronSchedule, ScheduleError> {
        Ok(CronSchedule {
            expression: expression.trim().to_owned(),
            cron: parse(expression)?,
            zone,
        })
    }

    /// The expression as written, without surrounding spaces.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The 6-field form (seconds first) the expression was read as.
    pub fn normalized(&self) -> &str {
        self.cron.source()
    }

    /// The parsed schedule, read on the wall clock of [`CronSchedule::zone`].
    pub fn cron(&self) -> &cron::Schedule {
        &self.cron
    }

    /// The time zone the schedule is read in.
    pub fn zone(&self) -> Tz {
        self.zone
    }
}

/// The `schedule` and `timezone` of the input at `path` as a [`CronSchedule`] (`None`
/// without a schedule), or the problems of each key.
pub(crate) fn check(
    findings: &mut Findings,
    path: &KeyPath,
    expression: Option<&str>,
    timezone: Option<&str>,
) -> Option<CronSchedule> {
    let cron = expression.and_then(|expression| match parse(expression) {
        Ok(cron) => Some(cron),
        Err(error) => {
            findings.problem(path.key("schedule"), error.to_string());
            None
        }
    });
    let zone = match timezone {
        None => Some(Tz::UTC),
        Some(name) => Tz::from_str(name).ok().or_else(|| {
            findings.problem(
                path.key("timezone"),
                format!("`{name}` is not an IANA time zone name; write e.g. Europe/Paris or UTC"),
            );
            None
        }),
    };
    Some(CronSchedule {
        expression: expression?.trim().to_owned(),
        cron: cron?,
        zone: zone?,
    })
}

/// Rewrites numeric days of the week (0-7, Sunday = 0 or 7) into the `cron` crate's numbering
/// (1-7, Sunday = 1). Names are read too, so that a list may mix both.
fn day_of_week(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok(field.to_owned());
    }
    let mut days = BTreeSet::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("`{item}`: the step after `/` must be 1 or more"))?;
                (range, step)
            }
            None => (item, 1),
        };
        let (first, last) = match range {
            "*" | "?" => (0, 6),
            _ => match range.split_once('-') {
                Some((a, b)) => (day_number(a)?, day_number(b)?),
                None if item.contains('/') => (day_number(range)?, 6),
                None => {
                    let day = day_number(range)?;
                    (day, day)
                }
            },
        };
        if first > last {
            return Err(format!(
                "day of week `{range}` runs backwards; write the earlier day first or list the \
                 days (`5,6,0`)"
            ));
        }
        // Classic cron: 7 is Sunday again, so `5-7` is Friday to Sunday.
        days.extend((first..=last).step_by(step as usize).map(|day| day % 7 + 1));
    }
    Ok(days
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(","))
}

fn day_number(text: &str) -> Result<u32, String> {
    if let Ok(number) = text.parse::<u32>() {
        return if number <= 7 {
            Ok(number)
        } else {
            Err(format!(
                "day of week `{number}` is out of range: use 0-7 (0 and 7 are Sunday)"
            ))
        };
    }
    let day = match text.to_ascii_lowercase().as_str() {
        "sun" => 0,
        "mon" => 1,
        "tue" => 2,
        "wed" => 3,
        "thu" => 4,
        "fri" => 5,
        "sat" => 6,
        _ => {
            return Err(format!(
                "`{text}` is not a day of the week; use 0-7 (0 and 7 are Sunday) or SUN..SAT"
            ));
        }
    };
    Ok(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_fields_get_a_zero_seconds_field() {
        assert_eq!(normalize_schedule(" 0 3 * * * ").unwrap(), "0 0 3 * * *");
        assert_eq!(
            normalize_schedule("*/5 * * * * *").unwrap(),
            "*/5 * * * * *"
        );
    }

    #[test]
    fn numeric_weekdays_follow_classic_cron() {
        assert_eq!(normalize_schedule("0 9 * * 0").unwrap(), "0 0 9 * * 1");
        assert_eq!(normalize_schedule("0 9 * * 7").unwrap(), "0 0 9 * * 1");
        assert_eq!(
            normalize_schedule("0 9 * * 5-7").unwrap(),
            "0 0 9 * * 1,6,7"
        );
        assert_eq!(
            normalize_schedule("0 9 * * */2").unwrap(),
            "0 0 9 * * 1,3,5,7"
        );
        assert_eq!(
            normalize_schedule("0 9 * * MON,3").unwrap(),
            "0 0 9 * * 2,4"
        );
        assert_eq!(
            normalize_schedule("0 9 * * mon-fri").unwrap(),
            "0 0 9 * * 2,3,4,5,6"
        );
        assert!(
            normalize_schedule("0 9 * * SAT-SUN")
                .unwrap_err()
                .reason
                .contains("backwards")
        );
    }

    #[test]
    fn shorthands_are_accepted() {
        assert_eq!(normalize_schedule("@daily").unwrap(), "@daily");
        assert_eq!(normalize_schedule("@midnight").unwrap(), "@daily");
        assert!(
            normalize_schedule("@reboot")
                .unwrap_err()
                .reason
                .contains("not a known")
        );
    }

    #[test]
    fn rejects_garbage_years_and_bad_days_with_a_hint() {
        let err = normalize_schedule("every ten minutes").unwrap_err();
        assert!(
            err.to_string().contains("it has 3 fields; write 5 fields"),
            "{err}"
        );
        let err = normalize_schedule("0 0 0 1 1 * 2030").unwrap_err();
        assert!(
            err.reason.contains("7th (year) field is not supported"),
            "{err}"
        );
        let err = normalize_schedule("61 * * * *").unwrap_err();
        assert!(
            err.to_string()
                .contains("`61 * * * *` is not a usable cron schedule"),
            "{err}"
        );
        let err = normalize_schedule("0 9 * * 8").unwrap_err();
        assert!(
            err.reason.contains("day of week `8` is out of range"),
            "{err}"
        );
        let err = normalize_schedule("0 9 * * 5-1").unwrap_err();
        assert!(err.reason.contains("runs backwards"), "{err}");
    }
}
