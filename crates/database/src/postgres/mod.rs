//! PostgreSQL through tokio-postgres: connection strings, TLS, and errors worth reading.
//!
//! TLS is used only when the connection string asks for it (`sslmode=require`, `verify-ca` or
//! `verify-full`); all three verify the server certificate and host name against the Mozilla
//! roots plus `sslrootcert` when given. Without `sslmode` (or with `prefer`/`disable`) the
//! connection is plain, which is what a server on localhost or a private network expects.

pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod numeric;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::config::Host;
use tokio_postgres::tls::TlsStream;
use tokio_postgres::{Client, Config, Connection, NoTls};

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

/// Takes out the TLS settings tokio-postgres does not read itself (`sslmode=verify-ca`,
/// `verify-full`, `sslrootcert`), leaving `sslmode=require` where TLS is asked for.
fn split_tls_settings(text: &str) -> (String, Option<Option<PathBuf>>) {
    let Ok(mut url) = url::Url::parse(text) else {
        let tls = text.contains("sslmode=require").then_some(None);
        return (text.to_owned(), tls);
    };
    let mut wants_tls = false;
    let mut root_cert = None;
    let mut kept = Vec::new();
    for (name, value) in url.query_pairs() {
        match (name.as_ref(), value.as_ref()) {
            ("sslmode", "require" | "verify-ca" | "verify-full") => wants_tls = true,
            ("sslrootcert", path) => root_cert = Some(PathBuf::from(path)),
            _ => kept.push((name.into_owned(), value.into_owned())),
        }
    }
    if wants_tls {
        kept.push(("sslmode".to_owned(), "require".to_owned()));
    }
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    (url.to_string(), wants_tls.then_some(root_cert))
}

/// A connection string for a message: the password replaced.
fn redact(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) if text.contains("password") => "(the connection string)".to_owned(),
        Err(_) => text.to_owned(),
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
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let database = config.get_dbname().unwrap_or_default();
    format!("postgres://{user}{host}:{port}/{database}")
}

/// Connects and drives the connection on a background task.
pub(crate) async fn connect(target: &Target) -> Result<Client, DatabaseError> {
    let mut config = target.config.clone();
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(30));
    }
    if config.get_application_name().is_none() {
        config.application_name("cannectors");
    }
    let fail = |reason: String| DatabaseError::Connect {
        target: target.shown.clone(),
        reason,
    };
    match &target.tls {
        None => {
            let (client, connection) = config
                .connect(NoTls)
                .await
                .map_err(|e| fail(describe(&e)))?;
            drive(connection, target.shown.clone());
            Ok(client)
        }
        Some(root_cert) => {
            let tls = rustls_connector(root_cert.as_deref()).map_err(fail)?;
            let (client, connection) = config.connect(tls).await.map_err(|e| {
                let mut reason = describe(&e);
                if reason.contains("invalid peer certificate") {
                    reason.push_str(
                        "; for a server whose certificate comes from a private CA, add \
                         sslrootcert=/path/to/ca.pem to the connection string",
                    );
                }
                fail(reason)
            })?;
            drive(connection, target.shown.clone());
            Ok(client)
        }
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

fn rustls_connector(
    root_cert: Option<&Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = root_cert {
        let unreadable = |e: &dyn std::fmt::Display| {
            format!("cannot read the sslrootcert file {}: {e}", path.display())
        };
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))?;
        for cert in certs {
            roots
                .add(cert.map_err(|e| unreadable(&e))?)
                .map_err(|e| unreadable(&e))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The server's own words for an error: severity, SQLSTATE, message, detail and hint; for
/// other errors the whole chain of causes.
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
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
    fn verify_modes_become_required_tls_with_the_root_certificate() {
        let (text, tls) =
            split_tls_settings("postgres://u@db:5432/x?sslmode=verify-full&sslrootcert=/ca.pem");
        assert_eq!(text, "postgres://u@db:5432/x?sslmode=require");
        assert_eq!(tls, Some(Some(PathBuf::from("/ca.pem"))));
        let (_, tls) = split_tls_settings("postgres://u@db/x?sslmode=prefer");
        assert_eq!(tls, None);
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
            err.starts_with("input.connectionString: `postgres://app:***@db.local"),
            "{err}"
        );
    }
}
