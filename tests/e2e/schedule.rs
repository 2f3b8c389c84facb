//! `cannectors schedule`: the next fire times of a pipeline, in its time zone and in UTC.

use crate::support::Workspace;

fn pipeline(schedule: Option<&str>, timezone: Option<&str>) -> String {
    let mut input = String::from("  type: httpPolling\n  endpoint: http://127.0.0.1:9/events\n");
    if let Some(schedule) = schedule {
        input.push_str(&format!("  schedule: \"{schedule}\"\n"));
    }
    if let Some(timezone) = timezone {
        input.push_str(&format!("  timezone: {timezone}\n"));
    }
    format!("name: nightly\ninput:\n{input}output: {{type: stdout}}\n")
}

/// The fire-time lines of the output: local time and UTC, spaces collapsed.
fn fire_times(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .skip(3)
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn a_fixed_time_in_berlin_moves_to_summer_time_on_the_last_sunday_of_march() {
    let ws = Workspace::new();
    ws.write(
        "nightly.yaml",
        &pipeline(Some("30 2 * * *"), Some("Europe/Berlin")),
    );
    let out = ws.run(&[
        "schedule",
        "nightly.yaml",
        "-n",
        "4",
        "--after",
        "2026-03-27T12:00:00Z",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "nightly.yaml: pipeline `nightly` runs on `30 2 * * *` (as 6 fields: `0 30 2 * * *`) in \
         Europe/Berlin"
    );
    assert_eq!(lines[1], "next fire times after 2026-03-27T12:00:00Z:");
    assert_eq!(
        fire_times(&out.stdout),
        [
            "2026-03-28 02:30:00 CET (+01:00) 2026-03-28T01:30:00Z",
            // 02:30 does not exist that night: the run happens when it would have, an hour on.
            "2026-03-29 03:30:00 CEST (+02:00) 2026-03-29T01:30:00Z",
            "2026-03-30 02:30:00 CEST (+02:00) 2026-03-30T00:30:00Z",
            "2026-03-31 02:30:00 CEST (+02:00) 2026-03-31T00:30:00Z",
        ]
    );
}

#[test]
fn an_hourly_schedule_in_berlin_runs_twice_in_the_hour_that_repeats_in_october() {
    let ws = Workspace::new();
    ws.write(
        "nightly.yaml",
        &pipeline(Some("0 * * * *"), Some("Europe/Berlin")),
    );
    let out = ws.run(&[
        "schedule",
        "nightly.yaml",
        "-n",
        "4",
        "--after",
        "2026-10-24T23:30:00Z",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        fire_times(&out.stdout),
        [
            "2026-10-25 02:00:00 CEST (+02:00) 2026-10-25T00:00:00Z",
            "2026-10-25 02:00:00 CET (+01:00) 2026-10-25T01:00:00Z",
            "2026-10-25 03:00:00 CET (+01:00) 2026-10-25T02:00:00Z",
            "2026-10-25 04:00:00 CET (+01:00) 2026-10-25T03:00:00Z",
        ]
    );
}

#[test]
fn six_fields_fire_on_seconds_and_utc_is_the_default_zone() {
    let ws = Workspace::new();
    ws.write("nightly.yaml", &pipeline(Some("*/20 * * * * *"), None));
    let out = ws.run(&[
        "schedule",
        "nightly.yaml",
        "--count",
        "3",
        "--after",
        "2026-05-04T10:00:05+02:00",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("in UTC\n"), "{out:?}");
    assert!(
        out.stdout
            .contains("next fire times after 2026-05-04T08:00:05Z:"),
        "{out:?}"
    );
    assert_eq!(
        fire_times(&out.stdout),
        [
            "2026-05-04 08:00:20 UTC (+00:00) 2026-05-04T08:00:20Z",
            "2026-05-04 08:00:40 UTC (+00:00) 2026-05-04T08:00:40Z",
            "2026-05-04 08:01:00 UTC (+00:00) 2026-05-04T08:01:00Z",
        ]
    );
}

#[test]
fn five_fields_with_weekdays_read_like_a_crontab() {
    let ws = Workspace::new();
    ws.write(
        "nightly.yaml",
        &pipeline(Some("0 9 * * 1-5"), Some("America/New_York")),
    );
    // 2026-05-08 is a Friday: the next runs are Friday, then Monday.
    let out = ws.run(&[
        "schedule",
        "nightly.yaml",
        "-n",
        "2",
        "--after",
        "2026-05-08T00:00:00Z",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        fire_times(&out.stdout),
        [
            "2026-05-08 09:00:00 EDT (-04:00) 2026-05-08T13:00:00Z",
            "2026-05-11 09:00:00 EDT (-04:00) 2026-05-11T13:00:00Z",
        ]
    );
}

#[test]
fn without_a_schedule_it_says_the_pipeline_runs_once() {
    let ws = Workspace::new();
    ws.write("nightly.yaml", &pipeline(None, None));
    let out = ws.run(&["schedule", "nightly.yaml"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "nightly.yaml: pipeline `nightly` has no schedule: `cannectors run` runs it once and \
         exits\n"
    );
}

#[test]
fn an_unknown_time_zone_is_a_validation_error() {
    let ws = Workspace::new();
    ws.write(
        "nightly.yaml",
        &pipeline(Some("0 9 * * *"), Some("Europe/Atlantis")),
    );
    let out = ws.run(&["schedule", "nightly.yaml"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(
            "input.timezone: `Europe/Atlantis` is not an IANA time zone name; write e.g. \
             Europe/Paris or UTC"
        ),
        "{out:?}"
    );
}

#[test]
fn a_bad_after_time_is_a_usage_error() {
    let ws = Workspace::new();
    ws.write("nightly.yaml", &pipeline(Some("0 9 * * *"), None));
    let out = ws.run(&["schedule", "nightly.yaml", "--after", "tomorrow"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("`tomorrow` is not an RFC 3339 time"),
        "{out:?}"
    );
}

/// The pipeline files embedded in a Kubernetes ConfigMap of the operations guide
/// (`docs/deploy/kubernetes/<file>`), by name.
fn configmap_pipelines(file: &str) -> Vec<(String, String)> {
    let path = format!(
        "{}/../../docs/deploy/kubernetes/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("read the ConfigMap");
    let mut files: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line
            .strip_prefix("  ")
            .and_then(|rest| rest.strip_suffix(": |"))
        {
            files.push((name.to_owned(), String::new()));
        } else if let (Some(body), Some((_, content))) =
            (line.strip_prefix("    "), files.last_mut())
        {
            content.push_str(body);
            content.push('\n');
        }
    }
    files
}

#[test]
fn the_pipelines_of_the_kubernetes_examples_are_valid() {
    let ws = Workspace::new();
    let single = configmap_pipelines("pipelines-configmap.yaml");
    assert_eq!(single.len(), 2, "{single:?}");
    let replicated = configmap_pipelines("replicas/pipelines-configmap.yaml");
    assert_eq!(replicated.len(), 1, "{replicated:?}");
    for (name, content) in single.iter().chain(&replicated) {
        ws.write(name, content);
        let out = ws
            .command(&["validate", name])
            .env("SOURCE_TOKEN", "source-token")
            .env("DEST_TOKEN", "dest-token")
            .env(
                "STATE_DATABASE_URL",
                "postgres://cannectors@127.0.0.1:5432/cannectors",
            )
            .output()
            .expect("run validate");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
