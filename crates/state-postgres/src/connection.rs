//! One connection to the store's database, opened on first use and opened again after it broke,
//! and the bound on every wait.
//!
//! Nothing is kept on the connection between statements (no session settings, no advisory lock
//! held across statements, no named prepared statement: every statement goes out with its
//! parameter types, unnamed), so the store works through a proxy that hands each transaction
//! to another server connection.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Mutex;
use tokio_postgres::config::Host;
use tokio_postgres::tls::TlsStream;
use tokio_postgres::{Client, Config, Connection, NoTls};

use crate::schema;
use crate::tls::{Tls, rustls_connector, split_tls_settings, with_certificate_hint};

/// How long connecting may take when the connection string sets no `connect_timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the database could not be used, in words for a person.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Connecting or a statement failed, or took longer than the bound.
    Unavailable(String),
    /// The tables were made by a newer program.
    SchemaTooNew { found: i64 },
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Failure {
        Failure::Unavailable(describe(&error))
    }
}

/// The store's database: its settings, the server as people see it, and the open connection.
#[derive(Debug)]
pub(crate) struct Database {
    config: Config,
    tls: Tls,
    /// The server as a URL without the password.
    pub(crate) shown: String,
    /// The longest wait for a statement (or for connecting, per host).
    bound: Duration,
    client: Mutex<Option<Arc<Client>>>,
}

impl Database {
    /// Reads a connection string; connects later, on first use.
    pub(crate) fn new(url: &str, bound: Duration) -> Result<Database, String> {
        let (text, tls) = split_tls_settings(url);
        let mut config: Config = text.parse().map_err(|error| {
            format!(
                "the connection string is not a PostgreSQL connection string ({error}); write \
                 postgres://user:password@host:5432/database"
            )
        })?;
        let shown = show(&config);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("cannectors state");
        }
        Ok(Database {
            config,
            tls,
            shown,
            bound,
            client: Mutex::new(None),
        })
    }

    /// The same database with another bound on waits, not connected yet.
    pub(crate) fn with_bound(&self, bound: Duration) -> Database {
        Database {
            config: self.config.clone(),
            tls: self.tls.clone(),
            shown: self.shown.clone(),
            bound,
            client: Mutex::new(None),
        }
    }

    /// The open connection, connecting (and creating or upgrading the tables) when there is
    /// none or the last one broke.
    pub(crate) async fn client(&self) -> Result<Arc<Client>, Failure> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|client| !client.is_closed()) {
            return Ok(Arc::clone(client));
        }
        let client = self.connect().await?;
        self.bounded(schema::migrate(&client)).await?;
        let client = Arc::new(client);
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }

    /// Runs `work` within the bound on a statement.
    pub(crate) async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        tokio::time::timeout(self.bound, work)
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Unavailable(format!(
                    "no answer within {} ms; check that the server is up and not overloaded",
                    self.bound.as_millis()
                )))
            })
    }

    async fn connect(&self) -> Result<Client, Failure> {
        let per_host = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let hosts = u32::try_from(self.config.get_hosts().len().max(1)).unwrap_or(u32::MAX);
        // tokio-postgres bounds the TCP connection only; a server that accepts it and then says
        // nothing would hold the login forever.
        let whole = per_host.saturating_mul(hosts);
        let silent = || {
            Failure::Unavailable(format!(
                "no answer within {} ms while connecting; check that a PostgreSQL server is up \
                 at that address, or set connect_timeout=SECONDS in the connection string",
                whole.as_millis()
            ))
        };
        let refused = |reason: String| Failure::Unavailable(format!("cannot connect: {reason}"));
        match &self.tls {
            Tls::Off => {
                let (client, connection) = tokio::time::timeout(whole, self.config.connect(NoTls))
                    .await
                    .map_err(|_| silent())?
                    .map_err(|error| refused(describe(&error)))?;
                self.drive(connection);
                Ok(client)
            }
            Tls::Verified { root_cert } => {
                let tls = rustls_connector(root_cert.as_deref()).map_err(refused)?;
                let (client, connection) = tokio::time::timeout(whole, self.config.connect(tls))
                    .await
                    .map_err(|_| silent())?
                    .map_err(|error| refused(with_certificate_hint(describe(&error))))?;
                self.drive(connection);
                Ok(client)
            }
        }
    }

    fn drive<S, T>(&self, connection: Connection<S, T>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        T: TlsStream + Unpin + Send + 'static,
    {
        let shown = self.shown.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(
                    "the state store connection to {shown} closed: {}",
                    describe(&error)
                );
            }
        });
    }
}

fn show(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config
        .get_user()
        .map(|user| format!("{user}@"))
        .unwrap_or_default();
    let database = config.get_dbname().unwrap_or_default();
    format!("postgres://{user}{host}:{port}/{database}")
}

/// The server's own words for an error: severity, SQLSTATE, message, detail and hint; for
/// other errors the whole chain of causes. One wording for every PostgreSQL error of
/// cannectors: this store's and the database input's and output's.
pub fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" (detail: {detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!(" (hint: {hint})"));
        }
        if let Some(tokio_postgres::error::ErrorPosition::Original(at)) = db.position() {
            text.push_str(&format!(" at character {at} of the query"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_is_shown_without_its_password() {
        let database = Database::new(
            "postgres://app:s3cret@db.internal:6432/sync?connect_timeout=3",
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(database.shown, "postgres://app@db.internal:6432/sync");
    }

    #[test]
    fn a_text_that_is_no_connection_string_is_refused_without_echoing_it() {
        let error =
            Database::new("postgres://app:pw@db:notaport/x", Duration::from_secs(1)).unwrap_err();
        assert!(
            error.starts_with("the connection string is not a PostgreSQL"),
            "{error}"
        );
        assert!(!error.contains("pw"), "{error}");
    }
}
