//! `cannectors validate`: exit codes and messages. A file that is YAML or JSON but not a valid
//! pipeline exits 1 with every problem listed; text that is not YAML or JSON exits 2.

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
fn an_unknown_key_is_a_validation_error_naming_the_key_it_most_likely_meant() {
    let ws = Workspace::new();
    ws.write("events.yaml", &EVENTS.replace("dataField", "dataFeild"));
    let out = ws.run(&["validate", "events.yaml"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        "error: events.yaml:7:3: input.dataFeild: unknown key `dataFeild`; did you mean \
         `dataField`?\n"
    );
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[test]
fn every_problem_of_a_file_is_reported_at_once_with_exit_code_1() {
    let ws = Workspace::new();
    let broken = EVENTS
        .replace("\"*/10 * * * *\"", "\"*/10 * * *\"")
        .replace("dataField", "dataFeild")
        .replace(
            "  statePersistence:",
            "  timeoutMs: soon\n  statePersistence:",
        )
        .replace("{type: stdout}", "{type: file}");
    ws.write("events.yaml", &broken);
    // A valid file next to it is still checked and reported as valid.
    ws.write("other.yaml", EVENTS);
    let out = ws.run(&["validate", "events.yaml", "other.yaml"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 5, "{out:?}");
    assert_eq!(lines[0], "error: events.yaml: 4 problems");
    assert!(
        lines[1].starts_with(
            "  events.yaml:5:3: input.schedule: `*/10 * * *` is not a usable cron schedule"
        ),
        "{out:?}"
    );
    assert_eq!(
        lines[2],
        "  events.yaml:7:3: input.dataFeild: unknown key `dataFeild`; did you mean `dataField`?"
    );
    assert_eq!(
        lines[3],
        "  events.yaml:8:3: input.timeoutMs: wrong type: found string \"soon\", expected a whole \
         number of 0 or more"
    );
    assert_eq!(
        lines[4],
        "  events.yaml:14:1: output.path: missing key `path`"
    );
    assert_eq!(
        out.stdout,
        "ok: other.yaml (pipeline `events-sync`)\n  delivery: at least once (a crash re-sends \
         at most the one batch in flight): the output is `stdout`, which cannot take part in a \
         transaction of the state store (only a `database` output into the store's own \
         PostgreSQL database can)\n"
    );
}

#[test]
fn text_that_is_not_yaml_is_a_parse_error_with_exit_code_2() {
    let ws = Workspace::new();
    ws.write("events.yaml", "name: events-sync\ninput: [\n");
    ws.write("typo.yaml", &EVENTS.replace("dataField", "dataFeild"));
    let out = ws.run(&["validate", "typo.yaml", "events.yaml"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains(
            "error: events.yaml:3:1: not valid YAML: did not find expected node content\n"
        ),
        "{out:?}"
    );
    assert!(out.stderr.contains("did you mean `dataField`?"), "{out:?}");
}

#[test]
fn run_refuses_a_pipeline_with_problems_with_exit_code_1_and_leaves_its_state_alone() {
    let ws = Workspace::new();
    let seeded = "{\"timestamp\": \"2026-01-01T00:00:00Z\"}";
    ws.write(".cannectors-state/events-sync.json", seeded);
    ws.write("events.yaml", &EVENTS.replace("dataField", "datafield"));
    let out = ws.run(&["run", "events.yaml", "--once"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(
            "events.yaml:7:3: input.datafield: unknown key `datafield`; did you mean `dataField`?"
        ),
        "{out:?}"
    );
    assert_eq!(ws.read(".cannectors-state/events-sync.json"), seeded);
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
        .env(
            "STATE_DATABASE_URL",
            "postgres://user:secret@127.0.0.1:5432/state",
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

/// A database pipeline whose state is in the PostgreSQL store of `${STATE_DATABASE_URL}` and
/// whose output writes into `output`.
fn database_pipeline(name: &str, output: &str) -> String {
    format!(
        r#"
name: {name}
input:
  type: database
  connectionString: "postgres://reader@source.internal/app"
  query: "SELECT id FROM events WHERE id > COALESCE($1::bigint, 0) ORDER BY id LIMIT 500"
  statePersistence:
    id: {{field: id}}
    store: postgres
    connectionStringRef: ${{STATE_DATABASE_URL}}
output:
  type: database
  connectionString: "{output}"
  query: "INSERT INTO events (id) VALUES ($1)"
  parameters: [record.id]
"#
    )
}

#[test]
fn validate_says_which_pipeline_is_delivered_exactly_once_and_why_another_is_not() {
    let ws = Workspace::new();
    // The same database written another way: a key=value string, another password.
    ws.write(
        "same.yaml",
        &database_pipeline(
            "same",
            "host=DB.internal port=5432 user=sync dbname=warehouse password=other",
        )
        .replace(
            "  type: database\n  connectionString: \"host",
            "  type: database\n  driver: postgres\n  connectionString: \"host",
        ),
    );
    ws.write(
        "other.yaml",
        &database_pipeline("other", "postgres://sync@db.internal:5432/reports"),
    );
    let out = ws
        .command(&["validate", "same.yaml", "other.yaml"])
        .env(
            "STATE_DATABASE_URL",
            "postgres://sync:secret@db.internal/warehouse",
        )
        .output()
        .expect("run validate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout,
        "ok: same.yaml (pipeline `same`)\n  delivery: exactly once: the database output writes \
         into the state store's database (postgres://sync@db.internal:5432/warehouse), and each \
         batch's rows and its state commit are one transaction\n\
         ok: other.yaml (pipeline `other`)\n  delivery: at least once (a crash re-sends at most \
         the one batch in flight): the output's database is not the state store's: their \
         connection strings differ in the database name; write the output into the store's \
         database (same host, port, database, user and options) for exactly once\n"
    );
}
