//! An HTTPS server on 127.0.0.1 whose certificate is self-signed, made afresh by the `openssl`
//! program (as the throwaway PostgreSQL's certificates are): no client trusts it, which is what
//! a test of a certificate failure needs.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::signal::wait_until;

/// The server; it stops accepting when dropped.
pub struct SelfSigned {
    port: u16,
    accepted: Arc<(Mutex<usize>, Condvar)>,
    stop: Arc<AtomicBool>,
}

/// A self-signed certificate for 127.0.0.1 and its key, in PEM, valid for two days.
fn self_signed_certificate() -> Vec<u8> {
    let output = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "-",
            "-out",
            "-",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .output()
        .expect("run openssl to make a self-signed test certificate");
    assert!(
        output.status.success(),
        "openssl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

impl SelfSigned {
    /// A server on 127.0.0.1, on a free port. It answers every request it can read with
    /// `200` and `[]`; a client that refuses its certificate never gets that far.
    pub fn start() -> SelfSigned {
        let pem = self_signed_certificate();
        let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .expect("the certificate openssl made");
        let key = PrivateKeyDer::from_pem_slice(&pem).expect("the key openssl made");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certificates, key)
            .expect("a usable certificate");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local addr").port();
        let accepted = Arc::new((Mutex::new(0), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (accepted, stop) = (Arc::clone(&accepted), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    *accepted.0.lock().expect("count") += 1;
                    accepted.1.notify_all();
                    let config = Arc::clone(&config);
                    std::thread::spawn(move || serve(stream, config));
                }
            });
        }
        SelfSigned {
            port,
            accepted,
            stop,
        }
    }

    /// The URL of `path` on this server, with `https://`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Blocks until at least `count` connections were accepted; `false` if `limit` passed first.
    pub fn wait_for_connections(&self, count: usize, limit: Duration) -> bool {
        let (accepted, changed) = &*self.accepted;
        wait_until(accepted, changed, limit, |accepted| *accepted >= count)
    }
}

/// One connection: the handshake, then one request answered, if the client gets that far.
fn serve(stream: TcpStream, config: Arc<rustls::ServerConfig>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(connection) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(connection, stream);
    let mut request = Vec::new();
    let mut buffer = [0; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n[]");
    let _ = tls.flush();
}

impl Drop for SelfSigned {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
