//! No wait without a bound: connecting to a server that never answers, and statements that
//! run past `statementTimeoutMs`, against a silent TCP listener on 127.0.0.1, the real
//! PostgreSQL that `cargo xtask pg` starts (`CANNECTORS_TEST_POSTGRES_URL`) and SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use cannectors_config::Driver;
use cannectors_database::{Access, ConnectionSettings, Database, DatabaseError};
use cannectors_test_support::postgres::{self, url as postgres_url};
use cannectors_test_support::silent::Silent;

/// The outer bound of every wait in these tests, far above the timeouts they set.
const PATIENCE: Duration = Duration::from_secs(20);

/// `url` with one more query parameter.
fn with_param(url: &str, param: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{param}")
}

fn settings(url: &str, access: Access, statement_timeout: Duration) -> ConnectionSettings<'_> {
    ConnectionSettings {
        key: "input",
        url,
        driver: Driver::from_url(url).expect("a postgres:// or sqlite: URL"),
        access,
        statement_timeout,
    }
}

async fn connect(url: &str, statement_timeout: Duration) -> Result<Database, DatabaseError> {
    tokio::time::timeout(
        PATIENCE,
        Database::connect(settings(url, Access::Read, statement_timeout)),
    )
    .await
    .expect("connecting ended within its own bound")
}

#[tokio::test]
async fn a_server_that_accepts_and_never_answers_fails_within_the_connect_timeout() {
    let silent = Silent::start();
    for tls in ["", "&sslmode=require"] {
        let url = format!(
            "postgres://app:s3cret@127.0.0.1:{}/sales?connect_timeout=1{tls}",
            silent.port()
        );
        let started = Instant::now();
        let error = match connect(&url, Duration::from_secs(60)).await {
            Ok(_) => panic!("a silent server cannot be connected to"),
            Err(error) => error.to_string(),
        };
        assert!(started.elapsed() < Duration::from_secs(5), "{error}");
        assert_eq!(
            error,
            format!(
                "cannot connect to postgres://app@127.0.0.1:{}/sales: no answer within 1 s \
                 (connect_timeout, which bounds the TCP connection, TLS and the login \
                 together); check that a PostgreSQL server is up and answering at that \
                 address, or set connect_timeout=SECONDS in the connection string",
                silent.port()
            )
        );
        assert!(!error.contains("s3cret"), "{error}");
    }
    // The TCP connections were accepted: what hung was the startup (or TLS) handshake.
    assert_eq!(silent.accepted(), 2);
}

#[tokio::test]
async fn a_query_past_the_statement_timeout_fails_and_is_cancelled_at_the_server() {
    // A name of its own, to find this connection among the server's sessions.
    let url = with_param(&postgres_url(), "application_name=statement_timeout_query");
    let database = connect(&url, Duration::from_millis(500)).await.unwrap();
    let statement = database
        .prepare("SELECT 1 AS id FROM pg_sleep(30)")
        .await
        .unwrap();
    let started = Instant::now();
    let error = match database.fetch(&statement, &[], &[], None, 0).await {
        Ok(_) => panic!("pg_sleep(30) cannot finish within 500 ms"),
        Err(error) => error.to_string(),
    };
    assert!(started.elapsed() < Duration::from_secs(10), "{error}");
    assert!(
        error.starts_with(&format!(
            "input.query did not finish on {} within input.statementTimeoutMs (500 ms), \
             so it was cancelled; if the database is up and the statement is only slow, raise \
             input.statementTimeoutMs",
            database.target()
        )),
        "{error}"
    );

    // The server stopped the statement instead of sleeping on for nobody.
    let observer = postgres::connect().await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let active: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = \
                 'statement_timeout_query' AND state = 'active'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if active == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the statement still runs at the server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_sqlite_query_past_the_statement_timeout_is_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("slow.db").display());
    let database = Database::connect(settings(&url, Access::Write, Duration::from_millis(300)))
        .await
        .unwrap();
    // Counts far enough to take minutes unless it is interrupted.
    let slow = database
        .prepare(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30000000) \
             SELECT max(x) AS n FROM c",
        )
        .await
        .unwrap();
    let error = match tokio::time::timeout(PATIENCE, database.fetch(&slow, &[], &[], None, 0))
        .await
        .expect("the statement timeout ended the wait")
    {
        Ok(_) => panic!("the query cannot finish within 300 ms"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.starts_with(&format!(
            "input.query did not finish on {url} within input.statementTimeoutMs (300 ms), \
             so it was cancelled"
        )),
        "{error}"
    );
    // The connection is free again: the interrupted statement gave its thread back.
    let quick = database.prepare("SELECT 1 AS one").await.unwrap();
    let decoded = tokio::time::timeout(PATIENCE, database.fetch(&quick, &[], &[], None, 0))
        .await
        .expect("the interrupted statement let go of the connection")
        .unwrap();
    assert_eq!(decoded.records[0].json(), r#"{"one":1}"#);
}

#[tokio::test]
async fn an_sqlite_statement_timeout_beyond_what_sqlite_counts_opens_the_database() {
    let database = Database::connect(settings(
        "sqlite::memory:",
        Access::Write,
        Duration::from_millis(u64::MAX),
    ))
    .await
    .unwrap();
    assert_eq!(
        database.prepare("SELECT 1").await.unwrap().placeholders(),
        0
    );
}
