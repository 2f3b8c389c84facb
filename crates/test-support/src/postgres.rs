//! The throwaway PostgreSQL that `cargo xtask pg` (and `cargo xtask ci`) start for the tests:
//! its URL and CA file come in environment variables, and each test works in a schema of its
//! own, so that the tests of a crate run in parallel. The names of the variables are here for
//! both ends, the xtask that sets them and the tests that read them; the rest needs the
//! `postgres` feature.

#[cfg(feature = "postgres")]
use tokio_postgres::{Client, NoTls};

/// The variable holding the server's URL (`postgres://user:password@127.0.0.1:PORT/db`).
pub const URL_VARIABLE: &str = "CANNECTORS_TEST_POSTGRES_URL";

/// The variable holding the path of the CA certificate the server's TLS certificate is
/// signed with.
pub const CA_VARIABLE: &str = "CANNECTORS_TEST_POSTGRES_CA";

#[cfg(feature = "postgres")]
fn variable(name: &str, what: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: these tests need {what}. Run them through `cargo xtask ci` or \
             `cargo xtask pg -- cargo test -p CRATE`, which start a throwaway server and set it"
        )
    })
}

/// The URL of the test server; the test fails, saying how to start one, when there is none.
#[cfg(feature = "postgres")]
pub fn url() -> String {
    variable(URL_VARIABLE, "a real PostgreSQL")
}

/// The URL of the test server with `schema` as the search path of every connection made with
/// it, so that a program under test creates and finds its tables there.
#[cfg(feature = "postgres")]
pub fn url_in_schema(schema: &str) -> String {
    let url = url();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// The CA file of the test server's certificate.
#[cfg(feature = "postgres")]
pub fn ca_file() -> String {
    variable(CA_VARIABLE, "a real PostgreSQL with TLS")
}

/// The SQL that empties (or creates) schema `name`, makes it the search path and runs `setup`.
#[cfg(feature = "postgres")]
fn fresh_schema_sql(name: &str, setup: &str) -> String {
    format!(
        "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}; \
         SET search_path TO {name};\n{setup}"
    )
}

/// A connection to the test server, driven on a task of the current runtime.
#[cfg(feature = "postgres")]
pub async fn connect() -> Client {
    let (client, connection) = tokio_postgres::connect(&url(), NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    tokio::spawn(connection);
    client
}

/// A new empty schema `name` with `setup` run in it, and the connection that made it (its
/// search path set to the schema).
#[cfg(feature = "postgres")]
pub async fn fresh_schema(name: &str, setup: &str) -> Client {
    let client = connect().await;
    client
        .batch_execute(&fresh_schema_sql(name, setup))
        .await
        .expect("set up the test schema");
    client
}

/// Runs `statements` on the test server, for tests without an async runtime.
#[cfg(feature = "postgres")]
pub fn run_sql(statements: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the SQL of a test");
    runtime.block_on(async {
        connect()
            .await
            .batch_execute(statements)
            .await
            .expect("run the SQL of a test");
    });
}

/// [`fresh_schema`] for tests without an async runtime.
#[cfg(feature = "postgres")]
pub fn fresh_schema_blocking(name: &str, setup: &str) {
    run_sql(&fresh_schema_sql(name, setup));
}
