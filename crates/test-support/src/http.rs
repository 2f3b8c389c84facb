//! A small HTTP/1.1 server on 127.0.0.1 (or another loopback address): every request is
//! recorded, and a handler closure decides the response. Plain threads, so tests need no async
//! runtime, and the benchmark's source server is this one too.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::signal::wait_until;

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The query parameters, decoded.
    pub query: BTreeMap<String, String>,
    /// The headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body as received.
    pub body: Vec<u8>,
}

impl Request {
    /// The decoded value of the query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// What of this request could be a credential (see [`crate::credentials`]).
    pub fn credentials(&self) -> Vec<String> {
        crate::credentials::found(
            self.headers.keys().map(String::as_str),
            self.query
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        )
    }
}

/// What the handler answers.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers besides `content-length`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Response {
    /// `200` with `body` written as JSON text (a `serde_json::Value`, or any text).
    pub fn json(body: &impl std::fmt::Display) -> Response {
        Response::json_text(body.to_string())
    }

    /// `200` with `body`, already JSON text, as it is.
    pub fn json_text(body: impl Into<Vec<u8>>) -> Response {
        Response {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// `status` with a plain `body`.
    pub fn status(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    /// This response with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// This response, sent after `delay`.
    pub fn delayed(mut self, delay: Duration) -> Response {
        self.delay = delay;
        self
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// The server; it stops accepting when dropped.
pub struct Server {
    ip: &'static str,
    port: u16,
    requests: Arc<Recorded>,
    stop: Arc<AtomicBool>,
}

/// The requests received, with a signal on each new one for tests waiting on them.
#[derive(Default)]
struct Recorded {
    list: Mutex<Vec<Request>>,
    arrived: Condvar,
}

impl Server {
    /// A server on 127.0.0.1, on a free port, answering through `handler`.
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Server {
        Server::start_at("127.0.0.1", handler)
    }

    /// A server on the loopback address `ip` (127.0.0.2 is another origin than 127.0.0.1).
    pub fn start_at(
        ip: &'static str,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind((ip, 0)).expect("bind a loopback address");
        let port = listener.local_addr().expect("local addr").port();
        let requests = Arc::new(Recorded::default());
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let requests = Arc::clone(&requests);
            let stop = Arc::clone(&stop);
            // A blocking accept: dropping the server sets `stop` and connects once to wake it.
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    // Head and body go out in two writes: without this, the body would wait
                    // for the client's delayed acknowledgement of the head.
                    let _ = stream.set_nodelay(true);
                    let requests = Arc::clone(&requests);
                    let handler = Arc::clone(&handler);
                    let stop = Arc::clone(&stop);
                    std::thread::spawn(move || {
                        let _ = serve(stream, &requests, &*handler, &stop);
                    });
                }
            });
        }
        Server {
            ip,
            port,
            requests,
            stop,
        }
    }

    /// `http://IP:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}:{}{path}", self.ip, self.port)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.list.lock().expect("requests").clone()
    }

    /// Blocks until at least `count` requests arrived; `false` if `limit` passed first.
    pub fn wait_for_requests(&self, count: usize, limit: Duration) -> bool {
        wait_until(&self.requests.list, &self.requests.arrived, limit, |list| {
            list.len() >= count
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect((self.ip, self.port));
    }
}

fn serve(
    stream: TcpStream,
    requests: &Recorded,
    handler: &Handler,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    while !stop.load(Ordering::Relaxed) {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let mut headers = BTreeMap::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path.to_owned(), parse_query(query)),
            None => (target.clone(), BTreeMap::new()),
        };
        let request = Request {
            method,
            path,
            query,
            headers,
            body,
        };
        requests
            .list
            .lock()
            .expect("requests")
            .push(request.clone());
        requests.arrived.notify_all();
        let response = handler(&request);
        if !response.delay.is_zero() {
            std::thread::sleep(response.delay);
        }
        let mut head = format!(
            "HTTP/1.1 {} X\r\ncontent-length: {}\r\n",
            response.status,
            response.body.len()
        );
        for (name, value) in &response.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        writer.write_all(head.as_bytes())?;
        writer.write_all(&response.body)?;
        writer.flush()?;
    }
    Ok(())
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
