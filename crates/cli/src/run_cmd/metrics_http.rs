//! The metrics endpoint: `GET /metrics` in the Prometheus text format and `GET /healthz`, on a
//! small HTTP/1.1 server that lives as long as the process.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cannectors_scheduler::Metrics;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::commands::{Code, Failure};

/// A scraper that opens a connection and sends nothing is dropped after this long.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `addr` and serves in the background. Fails when the address cannot be bound, before
/// any pipeline runs.
pub(super) async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<SocketAddr, Failure> {
    let listener = TcpListener::bind(addr).await.map_err(|error| {
        Failure::new(
            Code::Runtime,
            format!(
                "cannot serve metrics on {addr}: {error}; choose another --metrics-addr (port 0 \
                 picks a free one)"
            ),
        )
    })?;
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(
        "serving metrics on http://{bound}/metrics and health on http://{bound}/healthz"
    );
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, usually: wait a little instead of spinning.
                    tracing::warn!("metrics endpoint: cannot accept a connection: {error}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let response = respond(&request, &metrics);
                    async move { Ok::<_, Infallible>(response) }
                });
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(error) = connection.await {
                    tracing::debug!("metrics endpoint: connection ended: {error}");
                }
            });
        }
    });
    Ok(bound)
}

fn respond(request: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let readable = matches!(*request.method(), Method::GET | Method::HEAD);
    match (request.uri().path(), readable) {
        ("/metrics", true) => text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        ("/healthz", true) => text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into()),
        ("/metrics" | "/healthz", false) => {
            let mut response = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "use GET\n".into(),
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: the metrics are at /metrics, the health check at /healthz\n".into(),
        ),
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
