//! A server on 127.0.0.1 that accepts TCP connections and never says a word, as a stopped
//! PostgreSQL postmaster (or a proxy whose backend is gone) does.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::signal::wait_until;

/// The listener; it stops accepting when dropped. Accepted sockets are held open until then.
pub struct Silent {
    port: u16,
    accepted: Arc<(Mutex<usize>, Condvar)>,
    stop: Arc<AtomicBool>,
}

impl Silent {
    /// A listener on 127.0.0.1, on a free port.
    pub fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local addr").port();
        let accepted = Arc::new((Mutex::new(0), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (accepted, stop) = (Arc::clone(&accepted), Arc::clone(&stop));
            // A blocking accept: dropping the listener sets `stop` and connects once to wake it.
            std::thread::spawn(move || {
                let mut held = Vec::new();
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    held.extend(stream.ok());
                    *accepted.0.lock().expect("count") += 1;
                    accepted.1.notify_all();
                }
            });
        }
        Silent {
            port,
            accepted,
            stop,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        *self.accepted.0.lock().expect("count")
    }

    /// Blocks until at least `count` connections were accepted; `false` if `limit` passed first.
    pub fn wait_for_connections(&self, count: usize, limit: Duration) -> bool {
        let (accepted, changed) = &*self.accepted;
        wait_until(accepted, changed, limit, |accepted| *accepted >= count)
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
