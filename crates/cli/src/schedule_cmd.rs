//! `cannectors schedule`: the next fire times of a pipeline's schedule, in its time zone and
//! in UTC, so that a cron expression can be checked before it is deployed.

use cannectors_scheduler::Schedule;
use chrono::{SecondsFormat, Utc};

use crate::cli::ScheduleArgs;
use crate::commands::{Failure, load};

pub(crate) fn schedule(args: &ScheduleArgs) -> Result<(), Failure> {
    let loaded = load(&args.file)?;
    let name = &loaded.pipeline.name;
    let file = args.file.display();
    let Some(schedule) = Schedule::of_pipeline(&loaded.pipeline) else {
        println!(
            "{file}: pipeline `{name}` has no schedule: `cannectors run` runs it once and exits"
        );
        return Ok(());
    };
    let after = args.after.unwrap_or_else(Utc::now);
    println!(
        "{file}: pipeline `{name}` runs on `{}` (as 6 fields: `{}`) in {}",
        schedule.expression(),
        schedule.normalized(),
        schedule.zone()
    );
    println!(
        "next fire times after {}:",
        after.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    );
    println!("  {:<34} UTC", format!("in {}", schedule.zone()));
    let mut printed = 0;
    for fire in schedule.upcoming(after).take(args.count as usize) {
        let local = fire
            .with_timezone(&schedule.zone())
            .format("%Y-%m-%d %H:%M:%S %Z (%:z)")
            .to_string();
        println!(
            "  {local:<34} {}",
            fire.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        printed += 1;
    }
    if printed == 0 {
        println!("  none: the schedule never fires again");
    }
    Ok(())
}
