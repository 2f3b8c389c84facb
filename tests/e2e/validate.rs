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

#[test]
fn schema_prints_a_json_schema_naming_both_inputs() {
    let ws = Workspace::new();
    let out = ws.run(&["schema"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let text = schema.to_string();
    for name in [
        "httpPolling",
        "database",
        "statePersistence",
        "stdout",
        "httpRequest",
    ] {
        assert!(text.contains(name), "schema lacks {name}");
    }
}

#[test]
fn every_example_pipeline_validates() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&examples).expect("examples/") {
        let path = entry.expect("entry").path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            files.push(path);
        }
    }
    assert!(files.len() >= 2, "{files:?}");
    let ws = Workspace::new();
    let mut command = ws.command(&["validate"]);
    command
        .args(&files)
        .env(
            "SOURCE_DATABASE_URL",
            "postgres://user:secret@127.0.0.1:5432/db",
        )
        .env(
            "DEST_DATABASE_URL",
            "postgres://user:secret@127.0.0.1:5432/dest",
        )
        .env("CRM_API_TOKEN", "token")
        .env("HELPDESK_API_KEY", "key")
        .env("SHOP_API_TOKEN", "token");
    let out = command.output().expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
