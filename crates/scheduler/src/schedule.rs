//! When a pipeline runs: its cron expression, read on the wall clock of its time zone.
//!
//! Each fire time is computed from the schedule and the current instant, never by adding an
//! interval to the previous one, so a late wake-up or a slow run never shifts later runs.
//!
//! Clock changes follow classic cron. A schedule that names every hour (`*` in the hour field,
//! such as `*/10 * * * *`) follows real time: local times skipped when clocks go forward do not
//! happen, and local times repeated when clocks go back happen twice. A schedule with fixed hours
//! (`30 2 * * *`) runs once per matching local time: a time skipped by the change runs that much
//! later (02:30 becomes 03:30 on the night clocks go forward), a repeated time runs at its first
//! occurrence only.

use cannectors_config::CronSchedule;
use chrono::offset::LocalResult;
use chrono::{DateTime, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// A cron schedule in a time zone, with its fire times.
///
/// ```
/// use cannectors_config::CronSchedule;
/// use cannectors_scheduler::Schedule;
/// use chrono::{DateTime, Utc};
///
/// let schedule = Schedule::new(&CronSchedule::new("30 2 * * *", chrono_tz::Europe::Berlin)?);
/// let after: DateTime<Utc> = "2026-03-28T12:00:00Z".parse()?;
/// let next: Vec<String> = schedule
///     .upcoming(after)
///     .take(2)
///     .map(|at| at.to_rfc3339())
///     .collect();
/// // 02:30 does not exist on 29 March in Berlin: that run happens at 03:30 summer time.
/// assert_eq!(next, ["2026-03-29T01:30:00+00:00", "2026-03-30T00:30:00+00:00"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Schedule {
    settings: CronSchedule,
    every_hour: bool,
}

/// Longer than any clock change in the time zone database (2 hours), so that a search that
/// looks this far around an instant sees every local time that can map near it.
const MAX_SHIFT: TimeDelta = TimeDelta::hours(3);

/// Bounds the search for one fire time; a schedule that matches nothing in this many local
/// candidates (it cannot happen for a valid expression) has no next time.
const MAX_CANDIDATES: usize = 200_000;

impl Schedule {
    /// The fire times of a schedule that was read when its pipeline was loaded.
    pub fn new(settings: &CronSchedule) -> Schedule {
        Schedule {
            every_hour: cron::TimeUnitSpec::is_all(settings.cron().hours()),
            settings: settings.clone(),
        }
    }

    /// The schedule of a pipeline's input, `None` when it has none (it runs once).
    pub fn of_pipeline(pipeline: &cannectors_config::Pipeline) -> Option<Schedule> {
        pipeline.input.schedule().map(Schedule::new)
    }

    /// The expression as the user wrote it.
    pub fn expression(&self) -> &str {
        self.settings.expression()
    }

    /// The 6-field form (seconds first) the expression was read as.
    pub fn normalized(&self) -> &str {
        self.settings.normalized()
    }

    /// The time zone the schedule is read in.
    pub fn zone(&self) -> Tz {
        self.settings.zone()
    }

    /// The first fire time strictly after `after`, `None` when the schedule never fires again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Local times repeat when clocks go back: start the local search early enough to see
        // the times that come again after the change.
        let offset_now = self.offset_at(after);
        let look_back = (offset_now - self.offset_at(after + MAX_SHIFT)).max(TimeDelta::zero());
        let start = after.naive_utc() + offset_now - look_back - TimeDelta::seconds(1);
        let mut best: Option<DateTime<Utc>> = None;
        let mut stop_at: Option<NaiveDateTime> = None;
        // The cron crate walks local wall-clock times when given UTC, which has no clock changes.
        let candidates = self.settings.cron().after(&Utc.from_utc_datetime(&start));
        for candidate in candidates.take(MAX_CANDIDATES) {
            let local = candidate.naive_utc();
            if stop_at.is_some_and(|limit| local >= limit) {
                break;
            }
            for instant in self.instants(local).into_iter().flatten() {
                if instant > after && best.is_none_or(|current| instant < current) {
                    best = Some(instant);
                    stop_at = Some(self.search_limit(after, instant));
                }
            }
        }
        best
    }

    /// Fire times after `after`, one after the other.
    pub fn upcoming(&self, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        std::iter::successors(self.next_after(after), |previous| {
            self.next_after(*previous)
        })
    }

    /// The local time from which no later candidate can map to an instant before `found`: the
    /// local time of `found`, plus the largest clock change near the two ends of the search.
    fn search_limit(&self, after: DateTime<Utc>, found: DateTime<Utc>) -> NaiveDateTime {
        let offsets = [
            self.offset_at(after),
            self.offset_at(after + MAX_SHIFT),
            self.offset_at(found - MAX_SHIFT),
            self.offset_at(found),
            self.offset_at(found + MAX_SHIFT),
        ];
        let lowest = offsets.iter().min().copied().unwrap_or_default();
        let highest = offsets.iter().max().copied().unwrap_or_default();
        found.naive_utc() + self.offset_at(found) + (highest - lowest)
    }

    /// The instants a local wall-clock time stands for under this schedule's rules for clock
    /// changes (see the module documentation).
    fn instants(&self, local: NaiveDateTime) -> [Option<DateTime<Utc>>; 2] {
        match self.zone().from_local_datetime(&local) {
            LocalResult::Single(at) => [Some(at.with_timezone(&Utc)), None],
            LocalResult::Ambiguous(first, second) => [
                Some(first.with_timezone(&Utc)),
                self.every_hour.then(|| second.with_timezone(&Utc)),
            ],
            LocalResult::None if self.every_hour => [None, None],
            LocalResult::None => {
                // Shifted by the length of the gap: read with the offset in force before it.
                // Clock changes are months apart, so a day earlier is before the gap.
                let before = self.offset_at(Utc.from_utc_datetime(&local) - TimeDelta::days(1));
                [Some(Utc.from_utc_datetime(&(local - before))), None]
            }
        }
    }

    fn offset_at(&self, instant: DateTime<Utc>) -> TimeDelta {
        let seconds = self
            .zone()
            .offset_from_utc_datetime(&instant.naive_utc())
            .fix()
            .local_minus_utc();
        TimeDelta::seconds(i64::from(seconds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schedule of `expression` in the time zone named `zone`.
    fn schedule_in(expression: &str, zone: &str) -> Schedule {
        Schedule::new(&CronSchedule::new(expression, zone.parse().unwrap()).unwrap())
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn next(schedule: &Schedule, after: &str, count: usize) -> Vec<String> {
        schedule
            .upcoming(at(after))
            .take(count)
            .map(|instant| instant.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .collect()
    }

    #[test]
    fn five_field_expressions_fire_on_the_minute() {
        let schedule = schedule_in("*/10 * * * *", "UTC");
        assert_eq!(schedule.normalized(), "0 */10 * * * *");
        assert_eq!(schedule.zone(), Tz::UTC);
        assert_eq!(
            next(&schedule, "2026-05-04T10:05:07Z", 3),
            [
                "2026-05-04T10:10:00Z",
                "2026-05-04T10:20:00Z",
                "2026-05-04T10:30:00Z"
            ]
        );
    }

    #[test]
    fn six_field_expressions_fire_on_seconds() {
        let schedule = schedule_in("*/15 * * * * *", "UTC");
        assert_eq!(
            next(&schedule, "2026-05-04T10:05:07Z", 3),
            [
                "2026-05-04T10:05:15Z",
                "2026-05-04T10:05:30Z",
                "2026-05-04T10:05:45Z"
            ]
        );
    }

    #[test]
    fn next_fire_is_strictly_after_the_given_instant() {
        let schedule = schedule_in("* * * * * *", "UTC");
        assert_eq!(
            schedule.next_after(at("2026-05-04T10:00:00Z")),
            Some(at("2026-05-04T10:00:01Z"))
        );
        let late = at("2026-05-04T10:00:00.999Z");
        assert_eq!(schedule.next_after(late), Some(at("2026-05-04T10:00:01Z")));
    }

    #[test]
    fn fire_times_come_from_the_schedule_not_from_the_time_of_the_last_run() {
        // A run that wakes up late (or lasts long) does not move later runs: the next time is
        // computed from the schedule, so a tick at 10:20 stays at 10:20.
        let schedule = schedule_in("*/10 * * * *", "UTC");
        assert_eq!(
            schedule.next_after(at("2026-05-04T10:13:42.5Z")),
            Some(at("2026-05-04T10:20:00Z"))
        );
    }

    #[test]
    fn weekday_numbers_follow_classic_cron() {
        // 2026-05-04 is a Monday.
        let schedule = schedule_in("0 9 * * 1", "UTC");
        assert_eq!(
            next(&schedule, "2026-05-01T00:00:00Z", 2),
            ["2026-05-04T09:00:00Z", "2026-05-11T09:00:00Z"]
        );
    }

    #[test]
    fn a_time_zone_moves_fire_times_with_its_offset() {
        let schedule = schedule_in("0 9 * * *", "America/New_York");
        // EST (UTC-5) in January, EDT (UTC-4) in July.
        assert_eq!(
            next(&schedule, "2026-01-10T00:00:00Z", 1),
            ["2026-01-10T14:00:00Z"]
        );
        assert_eq!(
            next(&schedule, "2026-07-10T00:00:00Z", 1),
            ["2026-07-10T13:00:00Z"]
        );
    }

    #[test]
    fn a_fixed_time_skipped_by_spring_forward_runs_an_hour_later_once() {
        // Berlin, 29 March 2026: 02:00 CET becomes 03:00 CEST.
        let schedule = schedule_in("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            next(&schedule, "2026-03-27T12:00:00Z", 4),
            [
                "2026-03-28T01:30:00Z", // 02:30 CET
                "2026-03-29T01:30:00Z", // 03:30 CEST, for the 02:30 that did not exist
                "2026-03-30T00:30:00Z", // 02:30 CEST
                "2026-03-31T00:30:00Z",
            ]
        );
    }

    #[test]
    fn a_fixed_time_shifted_by_spring_forward_does_not_run_twice_with_an_existing_time() {
        let schedule = schedule_in("0 2,3 * * *", "Europe/Berlin");
        assert_eq!(
            next(&schedule, "2026-03-28T12:00:00Z", 3),
            [
                "2026-03-29T01:00:00Z", // 03:00 CEST stands for both 02:00 and 03:00
                "2026-03-30T00:00:00Z", // 02:00 CEST
                "2026-03-30T01:00:00Z", // 03:00 CEST
            ]
        );
    }

    #[test]
    fn a_fixed_time_repeated_by_fall_back_runs_once() {
        // Berlin, 25 October 2026: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
        let schedule = schedule_in("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            next(&schedule, "2026-10-24T12:00:00Z", 2),
            [
                "2026-10-25T00:30:00Z", // 02:30 CEST, the first 02:30
                "2026-10-26T01:30:00Z", // 02:30 CET
            ]
        );
        // Asked from between the two 02:30s, the repeated one is not a fire time either.
        assert_eq!(
            next(&schedule, "2026-10-25T00:45:00Z", 1),
            ["2026-10-26T01:30:00Z"]
        );
    }

    #[test]
    fn an_every_hour_schedule_follows_real_time_across_clock_changes() {
        let schedule = schedule_in("0 * * * *", "Europe/Berlin");
        // Spring forward: there is no 02:00; after 01:30 CET come 03:00 and 04:00 CEST.
        assert_eq!(
            next(&schedule, "2026-03-29T00:30:00Z", 2),
            ["2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"]
        );
        // Fall back: 02:00 happens twice, an hour apart, and both are fire times.
        assert_eq!(
            next(&schedule, "2026-10-24T23:30:00Z", 4),
            [
                "2026-10-25T00:00:00Z", // 02:00 CEST
                "2026-10-25T01:00:00Z", // 02:00 CET
                "2026-10-25T02:00:00Z", // 03:00 CET
                "2026-10-25T03:00:00Z",
            ]
        );
    }

    #[test]
    fn every_hour_schedules_match_a_minute_by_minute_walk_through_a_clock_change() {
        // Walk every minute through the night of the fall-back and keep the instants whose
        // Berlin wall-clock time matches; the schedule must give exactly those.
        let schedule = schedule_in("*/20 * * * *", "Europe/Berlin");
        let start = at("2026-10-24T22:00:00Z");
        let zone: Tz = "Europe/Berlin".parse().unwrap();
        let walked: Vec<DateTime<Utc>> = (1..=6 * 60)
            .map(|minutes| start + TimeDelta::minutes(minutes))
            .filter(|instant| {
                let local = instant.with_timezone(&zone);
                chrono::Timelike::minute(&local) % 20 == 0
            })
            .collect();
        let scheduled: Vec<DateTime<Utc>> = schedule
            .upcoming(start)
            .take_while(|instant| *instant <= start + TimeDelta::hours(6))
            .collect();
        assert_eq!(scheduled, walked);
        assert_eq!(scheduled.len(), 18);
    }

    #[test]
    fn a_schedule_that_never_matches_has_no_next_time() {
        let schedule = schedule_in("0 0 30 2 *", "UTC");
        assert_eq!(schedule.next_after(at("2026-01-01T00:00:00Z")), None);
    }
}
