//! Waiting, with a bound, for what a server thread reports: a value behind a mutex and a
//! condition variable notified whenever it changes.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Blocks until `done` holds for the value in `lock`, re-checked at each notification of
/// `changed`; `false` if `limit` passed first.
pub(crate) fn wait_until<T>(
    lock: &Mutex<T>,
    changed: &Condvar,
    limit: Duration,
    done: impl Fn(&T) -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    let mut value = lock.lock().expect("a server thread panicked");
    while !done(&value) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        value = changed
            .wait_timeout(value, left)
            .expect("a server thread panicked")
            .0;
    }
    true
}
