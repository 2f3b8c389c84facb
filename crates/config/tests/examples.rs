//! Every pipeline in `examples/` loads and validates, so the examples never rot.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test by panicking"
)]

use std::path::{Path, PathBuf};

/// Variables the examples use. Database URLs get a local PostgreSQL URL, anything else a
/// stand-in secret, so that a new example needs no change here.
fn example_env(name: &str) -> Option<String> {
    if name.ends_with("DATABASE_URL") {
        Some("postgres://cannectors:secret@127.0.0.1:5432/app".to_owned())
    } else {
        Some(format!("stand-in-value-of-{name}"))
    }
}

fn pipeline_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            pipeline_files(&path, found);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml" || ext == "json")
        {
            found.push(path);
        }
    }
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

#[test]
fn every_example_pipeline_validates() {
    let mut files = Vec::new();
    pipeline_files(&examples_dir(), &mut files);
    assert!(
        files.len() >= 6,
        "expected the example pipelines, found {files:?}"
    );
    for file in files {
        if let Err(error) = cannectors_config::load_with_env(&file, &example_env) {
            panic!("{} does not validate:\n{error}", file.display());
        }
    }
}

#[test]
fn the_events_sync_fixture_reads_as_written() {
    let loaded =
        cannectors_config::load_with_env(examples_dir().join("events-sync.yaml"), &example_env)
            .unwrap();
    let cannectors_config::InputConfig::HttpPolling(input) = &loaded.pipeline.input else {
        panic!("expected an httpPolling input");
    };
    assert_eq!(
        input.endpoint.to_string(),
        "https://source.example.com/api/events"
    );
    assert_eq!(
        input
            .schedule
            .as_ref()
            .map(|schedule| schedule.expression()),
        Some("*/10 * * * *")
    );
    let state = input.state_persistence.as_ref().unwrap();
    assert_eq!(
        state.timestamp().unwrap().query_param.as_deref(),
        Some("updated_after")
    );
    assert_eq!(state.id().unwrap().field.as_str(), "event.id");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn the_database_fixture_takes_its_url_from_the_environment_and_warns_about_ties() {
    let loaded =
        cannectors_config::load_with_env(examples_dir().join("database-events.yaml"), &example_env)
            .unwrap();
    let cannectors_config::InputConfig::Database(input) = &loaded.pipeline.input else {
        panic!("expected a database input");
    };
    assert_eq!(
        input.connection.url,
        "postgres://cannectors:secret@127.0.0.1:5432/app"
    );
    assert_eq!(input.connection.driver, cannectors_config::Driver::Postgres);
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].contains("WHERE (updated_at, id) > ($1, $2)"),
        "{}",
        loaded.warnings[0]
    );
    assert_eq!(
        loaded.redact("cannot connect to postgres://cannectors:secret@127.0.0.1:5432/app"),
        "cannot connect to ${SOURCE_DATABASE_URL}"
    );
}

#[test]
fn a_query_file_is_read_relative_to_the_pipeline_file() {
    let loaded = cannectors_config::load_with_env(
        examples_dir().join("customers-replica.yaml"),
        &example_env,
    )
    .unwrap();
    let cannectors_config::InputConfig::Database(input) = &loaded.pipeline.input else {
        panic!("expected a database input");
    };
    assert!(input.query.contains("ORDER BY updated_at, id"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}
