//! How a scheduler is asked to stop: first gracefully, then at once.
//!
//! The signal handling itself belongs to the program; this is what a signal turns into, so that
//! the stopping rules can be exercised without sending signals.

use std::sync::Arc;

use tokio::sync::watch;

/// How far a shutdown has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShutdownPhase {
    /// Nothing was asked: runs start on their schedule.
    Running,
    /// No new run starts; runs in progress stop after their current batch is committed.
    Draining,
    /// Stop now, without waiting for a batch in flight (it is not committed).
    Immediate,
}

/// A handle that asks a [`Scheduler`](crate::Scheduler) to stop; clones share the request.
///
/// ```
/// use cannectors_scheduler::{Shutdown, ShutdownPhase};
/// let shutdown = Shutdown::new();
/// assert_eq!(shutdown.phase(), ShutdownPhase::Running);
/// assert_eq!(shutdown.request(), ShutdownPhase::Draining);
/// assert_eq!(shutdown.clone().request(), ShutdownPhase::Immediate);
/// ```
#[derive(Debug, Clone)]
pub struct Shutdown {
    phase: Arc<watch::Sender<ShutdownPhase>>,
}

impl Default for Shutdown {
    fn default() -> Shutdown {
        Shutdown::new()
    }
}

impl Shutdown {
    /// A handle on which nothing was requested yet.
    pub fn new() -> Shutdown {
        Shutdown {
            phase: Arc::new(watch::Sender::new(ShutdownPhase::Running)),
        }
    }

    /// Asks to stop: the first request drains (no new runs, current batches finish), any later
    /// one stops at once. Returns the phase entered.
    pub fn request(&self) -> ShutdownPhase {
        let mut entered = ShutdownPhase::Draining;
        self.phase.send_modify(|phase| {
            *phase = match *phase {
                ShutdownPhase::Running => ShutdownPhase::Draining,
                _ => ShutdownPhase::Immediate,
            };
            entered = *phase;
        });
        entered
    }

    /// The phase now.
    pub fn phase(&self) -> ShutdownPhase {
        *self.phase.borrow()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<ShutdownPhase> {
        self.phase.subscribe()
    }
}
