//! TLS for PostgreSQL connections, the one setup every PostgreSQL connection of cannectors
//! uses (this store's, and the database input's and output's through cannectors-database).
//!
//! TLS is used only when the connection string asks for it (`sslmode=require`, `verify-ca` or
//! `verify-full`); all three verify the server certificate and host name against the Mozilla
//! roots plus `sslrootcert` when given. Without `sslmode` (or with `prefer`/`disable`) the
//! connection is plain, which is what a server on localhost or a private network expects.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a connection string asks of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tls {
    /// No TLS.
    Off,
    /// TLS, verified against the Mozilla roots and, when given, this certificate file.
    Verified {
        /// The `sslrootcert` file.
        root_cert: Option<PathBuf>,
    },
}

/// Takes out the TLS settings tokio-postgres does not read itself (`sslmode=verify-ca`,
/// `verify-full`, `sslrootcert`), leaving `sslmode=require` where TLS is asked for, and says
/// what TLS the connection needs.
///
/// The other parameters are kept as written: re-encoding them as a form would turn the spaces
/// of `options=-c%20statement_timeout%3D60000` into `+`, which tokio-postgres (like libpq)
/// reads as a plus sign.
///
/// ```
/// use cannectors_state_postgres::tls::{Tls, split_tls_settings};
/// let (text, tls) =
///     split_tls_settings("postgres://u@db:5432/x?sslmode=verify-full&sslrootcert=/ca.pem");
/// assert_eq!(text, "postgres://u@db:5432/x?sslmode=require");
/// assert_eq!(tls, Tls::Verified { root_cert: Some("/ca.pem".into()) });
/// assert_eq!(split_tls_settings("postgres://u@db/x?sslmode=prefer").1, Tls::Off);
/// ```
pub fn split_tls_settings(text: &str) -> (String, Tls) {
    let Ok(mut url) = url::Url::parse(text) else {
        let tls = if text.contains("sslmode=require") {
            Tls::Verified { root_cert: None }
        } else {
            Tls::Off
        };
        return (text.to_owned(), tls);
    };
    let Some(query) = url.query().map(str::to_owned) else {
        return (url.to_string(), Tls::Off);
    };
    let mut wants_tls = false;
    let mut root_cert = None;
    let mut kept = Vec::new();
    for piece in query.split('&') {
        let decoded = url::form_urlencoded::parse(piece.as_bytes()).next();
        match decoded
            .as_ref()
            .map(|(name, value)| (name.as_ref(), value.as_ref()))
        {
            Some(("sslmode", "require" | "verify-ca" | "verify-full")) => wants_tls = true,
            Some(("sslrootcert", path)) => root_cert = Some(PathBuf::from(path)),
            _ => kept.push(piece),
        }
    }
    if wants_tls {
        kept.push("sslmode=require");
    }
    url.set_query((!kept.is_empty()).then(|| kept.join("&")).as_deref());
    let tls = if wants_tls {
        Tls::Verified { root_cert }
    } else {
        Tls::Off
    };
    (url.to_string(), tls)
}

/// The TLS connector for tokio-postgres: the Mozilla roots, plus the certificates of
/// `root_cert` when given. The error says which file could not be read.
pub fn rustls_connector(
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

/// `reason`, a failure to connect with TLS, with the way out when the server's certificate
/// could not be verified.
pub fn with_certificate_hint(mut reason: String) -> String {
    if reason.contains("invalid peer certificate") {
        reason.push_str(
            "; this is a certificate problem, not a connection one: the server's TLS \
             certificate is not trusted (from a private CA, self-signed, expired, or for another \
             host name); for a server whose certificate comes from a private CA, add \
             sslrootcert=/path/to/ca.pem to the connection string",
        );
    }
    reason
}
