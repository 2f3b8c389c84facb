//! `cannectors validate`: exit codes and messages.

use crate::support::Workspace;

const EVENTS: &str = r#"
name: events-sync
input:
  type: httpPolling
  schedule: "*/10 * * * *"
  endpoint: https://source.example.com/api/events
  dataField: events
  statePersistence:
    timestamp: {enabled: true, field: event.timestamp, queryParam: updated_after}
    id: {enabled: true, field: event.id, queryParam: after_id}
    storagePath: ./.cannectors-state
filters: []
output: {type: stdout}
"#;

#[test]
fn a_valid_pipeline_exits_zero() {
    let ws = Workspace::new();
    ws.write("events.yaml", EVENTS);
    let out = ws.run(&["validate", "events.yaml"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("events-sync"), "{out:?}");
}

#[test]
fn an_unknown_key_is_a_parse_error_with_exit_code_2() {
    let ws = Workspace::new();
    ws.write("events.yaml", &EVENTS.replace("dataField", "dataFeild"));
    let out = ws.run(&["validate", "events.yaml"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("events.yaml"), "{out:?}");
    assert!(out.stderr.contains("dataFeild"), "{out:?}");
}

#[test]
fn a_missing_file_is_reported_with_its_path() {
    let ws = Workspace::new();
    let out = ws.run(&["validate", "nowhere.yaml"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("nowhere.yaml"), "{out:?}");
}
