//! PostgreSQL through tokio-postgres: connection strings, TLS, and errors worth reading.
//!
//! TLS is set up as for every PostgreSQL connection of cannectors, by
//! `cannectors_state_postgres::tls`: only when the connection string asks for it
//! (`sslmode=require`, `verify-ca` or `verify-full`), always verified.

pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod json_text;
pub(crate) mod numeric;
pub(crate) mod types;

use std::path::PathBuf;
use std::time::Duration;

pub(crate) use cannectors_state_postgres::describe;
use cannectors_state_postgres::tls::{
    Tls, rustls_connector, split_tls_settings, with_certificate_hint,
};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::config::Host;
use tokio_postgres::tls::TlsStream;
use tokio_postgres::{CancelToken, Client, Config, Connection, NoTls};

use crate::DatabaseError;

/// A PostgreSQL server to connect to.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    config: Config,
    /// `Some` when TLS is required: the extra root certificate file, if any.
    tls: Option<Option<PathBuf>>,
    /// The server as a URL without the password, for messages.
    pub(crate) shown: String,
}

/// Reads a `postgres://` URL (or a `key=value` connection string).
pub(crate) fn parse_target(text: &str, key: &'static str) -> Result<Target, DatabaseError> {
    let (text, tls) = split_tls_settings(text);
    let tls = match tls {
        Tls::Verified { root_cert } => Some(root_cert),
        _ => None,
    };
    let config: Config = text
        .parse()
        .map_err(|e| DatabaseError::BadConnectionString {
            key,
            reason: format!(
                "`{}` is not a PostgreSQL connection string ({e}); write \
             postgres://user:password@host:5432/database",
                redact(&text)
            ),
        })?;
    let shown = show(&config);
    Ok(Target { config, tls, shown })
}

/// A connection string for a message: a URL without its userinfo and secret parameters; the
/// libpq `key=value` form, which is no URL, is not shown at all when it holds a password.
fn redact(text: &str) -> String {
    if !text.contains("://") && text.contains("password") {
        return "(the connection string)".to_owned();
    }
    cannectors_connector::redact_url(text)
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
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let database = config.get_dbname().unwrap_or_default();
    format!("postgres://{user}{host}:{port}/{database}")
}

/// How long connecting may take when the connection string sets no `connect_timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// An open connection, and what it takes to ask the server to stop a statement on it.
pub(crate) struct Session {
    pub(crate) client: Client,
    pub(crate) canceller: Canceller,
}

/// Sends PostgreSQL's cancel request for the statement running on one connection.
pub(crate) struct Canceller {
    token: CancelToken,
    /// The TLS settings of the connection, when it uses TLS: a cancel request travels the same way.
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// The bound on reaching the server for the request.
    connect_timeout: Duration,
    shown: String,
}

impl Canceller {
    /// Asks the server to stop the statement in progress, so that it does not keep working
    /// on a statement nobody waits for. Best effort: a server that does not answer this
    /// either is only logged.
    pub(crate) async fn cancel(&self) {
        let sent = match &self.tls {
            None => {
                tokio::time::timeout(self.connect_timeout, self.token.cancel_query(NoTls)).await
            }
            Some(tls) => {
                tokio::time::timeout(self.connect_timeout, self.token.cancel_query(tls.clone()))
                    .await
            }
        };
        match sent {
            Ok(Ok(())) => tracing::debug!("asked {} to cancel the statement", self.shown),
            Ok(Err(e)) => tracing::warn!(
                "could not ask {} to cancel the statement: {}",
                self.shown,
                describe(&e)
            ),
            Err(_) => tracing::warn!(
                "could not ask {} to cancel the statement: no answer within {}",
                self.shown,
                seconds(self.connect_timeout)
            ),
        }
    }
}

/// Connects and drives the connection on a background task.
///
/// tokio-postgres applies `connect_timeout` to the TCP connection only; a server that accepts
/// it and then says nothing (a stopped postmaster, a proxy whose backend is gone) would hold
/// the TLS handshake or the login forever. So the whole setup runs under the same bound, once
/// for each host the connection string lists, as libpq counts it.
pub(crate) async fn connect(target: &Target) -> Result<Session, DatabaseError> {
    let mut config = target.config.clone();
    let per_host = config
        .get_connect_timeout()
        .copied()
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    config.connect_timeout(per_host);
    if config.get_application_name().is_none() {
        config.application_name("cannectors");
    }
    let hosts = u32::try_from(config.get_hosts().len().max(1)).unwrap_or(u32::MAX);
    let whole = per_host.saturating_mul(hosts);
    let fail = |reason: String| DatabaseError::Connect {
        target: target.shown.clone(),
        reason,
    };
    let bound = if target.config.get_connect_timeout().is_some() {
        "connect_timeout"
    } else {
        "the default connect timeout"
    };
    let silent = || {
        fail(format!(
            "no answer within {} ({bound}, which bounds the TCP connection, TLS and the login \
             together); check that a PostgreSQL server is up and answering at that address, or \
             set connect_timeout=SECONDS in the connection string",
            seconds(whole),
        ))
    };
    let canceller = |client: &Client, tls| Canceller {
        token: client.cancel_token(),
        tls,
        connect_timeout: per_host,
        shown: target.shown.clone(),
    };
    match &target.tls {
        None => {
            let (client, connection) = tokio::time::timeout(whole, config.connect(NoTls))
                .await
                .map_err(|_| silent())?
                .map_err(|e| fail(describe(&e)))?;
            drive(connection, target.shown.clone());
            let canceller = canceller(&client, None);
            Ok(Session { client, canceller })
        }
        Some(root_cert) => {
            let tls = rustls_connector(root_cert.as_deref()).map_err(fail)?;
            let (client, connection) = tokio::time::timeout(whole, config.connect(tls.clone()))
                .await
                .map_err(|_| silent())?
                .map_err(|e| fail(with_certificate_hint(describe(&e))))?;
            drive(connection, target.shown.clone());
            let canceller = canceller(&client, Some(tls));
            Ok(Session { client, canceller })
        }
    }
}

/// A duration for a message: `2 s`, `1.5 s`, `250 ms`.
pub(crate) fn seconds(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{} s", duration.as_secs_f64())
    }
}

fn drive<S, T>(connection: Connection<S, T>, shown: String)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: TlsStream + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!("the connection to {shown} closed: {}", describe(&e));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_modes_become_required_tls_with_the_root_certificate() {
        let target = parse_target(
            "postgres://u@db:5432/x?sslmode=verify-full&sslrootcert=/ca.pem",
            "input",
        )
        .unwrap();
        assert_eq!(target.tls, Some(Some(PathBuf::from("/ca.pem"))));
        let target = parse_target("postgres://u@db/x?sslmode=prefer", "input").unwrap();
        assert_eq!(target.tls, None);
    }

    #[test]
    fn other_parameters_reach_the_driver_as_written() {
        let target = parse_target(
            "postgres://u@db/x?options=-c%20statement_timeout%3D60000&sslmode=verify-full&application_name=a%2Bb",
            "input",
        )
        .unwrap();
        assert_eq!(
            target.config.get_options(),
            Some("-c statement_timeout=60000")
        );
        assert_eq!(target.config.get_application_name(), Some("a+b"));
        assert_eq!(target.tls, Some(None));
    }

    #[test]
    fn shown_target_never_holds_the_password() {
        let target = parse_target("postgres://app:s3cret@db.local:6543/sales", "input").unwrap();
        assert_eq!(target.shown, "postgres://app@db.local:6543/sales");
        let err = parse_target("postgres://app:s3cret@db.local:6543/sales?bogus=1", "input")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(
            err.starts_with("input.connectionString: `postgres://db.local:6543/sales?bogus=1`"),
            "{err}"
        );
    }

    #[test]
    fn a_password_in_the_query_of_a_connection_string_is_never_shown() {
        let err = parse_target(
            "postgres://app@db.local/sales?password=s3cret&bogus=1",
            "input",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(
                "input.connectionString: `postgres://db.local/sales?password=***&bogus=1`"
            ),
            "{err}"
        );
        let err = parse_target("host=db password=s3cret bogus=1", "input")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("input.connectionString: `(the connection string)` is not"),
            "{err}"
        );
    }
}
