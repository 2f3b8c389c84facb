//! `statePersistence.store`: the file store by default, or the PostgreSQL store with its
//! connection and lease settings, each mistake reported with its key path.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test by panicking"
)]

use std::time::Duration;

use cannectors_config::{ConfigError, Pipeline, StoreKind, parse_str};

fn env(name: &str) -> Option<String> {
    match name {
        "STATE_DATABASE_URL" => Some("postgres://app:pw-9876@127.0.0.1:5432/app".to_owned()),
        "SQLITE_URL" => Some("sqlite://state.db".to_owned()),
        _ => None,
    }
}

/// A database pipeline whose statePersistence has `settings` (lines indented by four spaces).
fn yaml(settings: &str) -> String {
    format!(
        "name: events\ninput:\n  type: database\n  connectionString: postgres://src@127.0.0.1/src\n  \
         query: SELECT id FROM events WHERE id > COALESCE($1, 0) ORDER BY id\n  \
         statePersistence:\n    id: {{field: id}}\n{settings}output: {{type: stdout}}\n"
    )
}

fn load(settings: &str) -> Pipeline {
    match parse_str(&yaml(settings), "pipeline.yaml", &env) {
        Ok(loaded) => loaded.pipeline,
        Err(error) => panic!("expected the pipeline to load:\n{error}"),
    }
}

fn invalid(settings: &str) -> String {
    match parse_str(&yaml(settings), "pipeline.yaml", &env) {
        Err(error @ ConfigError::Invalid { .. }) => error.to_string(),
        Err(error) => panic!("expected a validation error, got:\n{error}"),
        Ok(_) => panic!("expected a validation error, the pipeline loaded"),
    }
}

fn store(pipeline: &Pipeline) -> &StoreKind {
    &pipeline.input.state_persistence().unwrap().store
}

#[test]
fn without_store_the_state_is_kept_in_files() {
    assert_eq!(store(&load("")), &StoreKind::File);
    assert_eq!(store(&load("    store: file\n")), &StoreKind::File);
}

#[test]
fn the_postgres_store_has_its_connection_and_a_lease_of_30_seconds_renewed_every_10() {
    let pipeline = load("    store: postgres\n    connectionStringRef: ${STATE_DATABASE_URL}\n");
    let StoreKind::Postgres(settings) = store(&pipeline) else {
        panic!("expected the PostgreSQL store");
    };
    assert_eq!(
        settings.connection.url,
        "postgres://app:pw-9876@127.0.0.1:5432/app"
    );
    assert_eq!(settings.lease_ttl, Duration::from_secs(30));
    assert_eq!(settings.lease_renew, Duration::from_secs(10));

    let pipeline = load(
        "    store: postgres\n    connectionString: postgresql://app@db/app\n    \
         leaseTtlMs: 120000\n",
    );
    let StoreKind::Postgres(settings) = store(&pipeline) else {
        panic!("expected the PostgreSQL store");
    };
    assert_eq!(settings.lease_ttl, Duration::from_secs(120));
    assert_eq!(settings.lease_renew, Duration::from_secs(40));
    let pipeline = load(
        "    store: postgres\n    connectionString: postgresql://app@db/app\n    \
         leaseRenewMs: 5000\n",
    );
    let StoreKind::Postgres(settings) = store(&pipeline) else {
        panic!("expected the PostgreSQL store");
    };
    assert_eq!(settings.lease_renew, Duration::from_secs(5));
}

#[test]
fn each_mistake_in_the_store_settings_names_its_key() {
    let cases = [
        (
            "    store: postgres\n",
            "input.statePersistence.connectionStringRef: missing key: set `connectionStringRef` \
             (usually ${DATABASE_URL}) or `connectionString`",
        ),
        (
            "    store: postgres\n    connectionStringRef: ${SQLITE_URL}\n",
            "input.statePersistence.connectionStringRef: the state store is a PostgreSQL \
             database: write a postgres:// or postgresql:// URL in `connectionStringRef`",
        ),
        (
            "    store: postgres\n    connectionStringRef: ${STATE_DATABASE_URL}\n    \
             storagePath: ./state\n",
            "input.statePersistence.storagePath: storagePath is the directory of the file \
             store, but `store: postgres` keeps the state in the database; remove one of them",
        ),
        (
            "    connectionStringRef: ${STATE_DATABASE_URL}\n",
            "input.statePersistence.connectionStringRef: connectionStringRef is a setting of \
             the PostgreSQL state store; add `store: postgres` or remove it",
        ),
        (
            "    store: file\n    leaseTtlMs: 1000\n",
            "input.statePersistence.leaseTtlMs: leaseTtlMs is a setting of the PostgreSQL state \
             store; add `store: postgres` or remove it",
        ),
        (
            "    store: postgres\n    connectionStringRef: ${STATE_DATABASE_URL}\n    \
             leaseTtlMs: 0\n",
            "input.statePersistence.leaseTtlMs: leaseTtlMs must be more than 0; remove it for \
             the default 30000 (30 seconds)",
        ),
        (
            "    store: postgres\n    connectionStringRef: ${STATE_DATABASE_URL}\n    \
             leaseTtlMs: 18446744073709551615\n",
            "input.statePersistence.leaseTtlMs: leaseTtlMs (18446744073709551615) is longer than \
             an hour (3600000): a replica that dies would hold its pipelines that long; keep it \
             well above the longest batch but at most 3600000",
        ),
        (
            "    store: postgres\n    connectionStringRef: ${STATE_DATABASE_URL}\n    \
             leaseTtlMs: 3000\n    leaseRenewMs: 3000\n",
            "input.statePersistence.leaseRenewMs: leaseRenewMs (3000) must be shorter than \
             leaseTtlMs (3000), or the lease expires before it is renewed; remove it for a third \
             of leaseTtlMs",
        ),
        (
            "    store: redis\n",
            "input.statePersistence.store: unknown value `redis`; expected `file` or `postgres`",
        ),
    ];
    for (settings, expected) in cases {
        let problems = invalid(settings);
        assert!(
            problems.contains(expected),
            "expected to find\n  {expected}\nin\n  {problems}"
        );
    }
}
