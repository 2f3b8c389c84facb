//! A wiremock responder that reports each request it answers, so that a test waits for the
//! request to arrive (and then, say, asks for a shutdown) instead of sleeping.

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use wiremock::{Request, Respond, ResponseTemplate};

/// Answers with one response and sends `()` on its channel as each request arrives.
///
/// ```
/// use cannectors_test_support::reporting::Reporting;
/// use wiremock::{Mock, MockServer, ResponseTemplate, matchers::any};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let server = MockServer::start().await;
/// let (responder, mut arrivals) = Reporting::new(ResponseTemplate::new(503));
/// Mock::given(any()).respond_with(responder).mount(&server).await;
/// let address = server.address().to_string();
/// tokio::spawn(async move {
///     use tokio::io::AsyncWriteExt;
///     let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
///     stream.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
///     std::future::pending::<()>().await;
/// });
/// arrivals.recv().await.unwrap(); // the request arrived
/// # }
/// ```
pub struct Reporting {
    response: ResponseTemplate,
    arrived: UnboundedSender<()>,
}

impl Reporting {
    /// A responder answering `response`, and the receiver of its reports.
    pub fn new(response: ResponseTemplate) -> (Reporting, UnboundedReceiver<()>) {
        let (arrived, arrivals) = unbounded_channel();
        (Reporting { response, arrived }, arrivals)
    }

    /// A responder answering `503` with `Retry-After: 20`: a server asking the client to wait
    /// far longer than any test does, to see the wait cut short.
    pub fn unavailable_for_20_seconds() -> (Reporting, UnboundedReceiver<()>) {
        Reporting::new(ResponseTemplate::new(503).insert_header("Retry-After", "20"))
    }
}

impl Respond for Reporting {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        // The test may have stopped listening; the answer goes out all the same.
        let _ = self.arrived.send(());
        self.response.clone()
    }
}
