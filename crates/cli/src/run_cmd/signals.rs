//! SIGINT and SIGTERM turned into shutdown requests: the first drains, the second stops at once.

use cannectors_scheduler::{Shutdown, ShutdownPhase};

/// Listens for the signals for the rest of the process. Registering happens before this
/// returns, so a signal that comes right after is not missed.
pub(super) fn listen(shutdown: Shutdown) -> std::io::Result<()> {
    let mut signals = Signals::register()?;
    tokio::spawn(async move {
        while let Some(name) = signals.next().await {
            // Logged before the request: the scheduler may return, and the process end, as soon
            // as it sees the request.
            if shutdown.phase() == ShutdownPhase::Running {
                tracing::info!("{name} received: shutting down");
            } else {
                tracing::warn!(
                    "{name} received again: stopping at once; batches in flight are not \
                     committed and are sent again by the next run"
                );
            }
            shutdown.request();
        }
    });
    Ok(())
}

/// SIGINT and SIGTERM (Ctrl-C elsewhere), registered once.
#[cfg(unix)]
pub(crate) struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    /// Starts receiving the signals.
    pub(crate) fn register() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// The name of the next signal; `None` once signals can no longer be received.
    pub(crate) async fn next(&mut self) -> Option<&'static str> {
        tokio::select! {
            received = self.interrupt.recv() => received.map(|()| "SIGINT"),
            received = self.terminate.recv() => received.map(|()| "SIGTERM"),
        }
    }
}

/// Ctrl-C, on systems without SIGINT and SIGTERM.
#[cfg(not(unix))]
pub(crate) struct Signals;

#[cfg(not(unix))]
impl Signals {
    /// Starts receiving the signals.
    pub(crate) fn register() -> std::io::Result<Signals> {
        Ok(Signals)
    }

    /// The name of the next signal; `None` once signals can no longer be received.
    pub(crate) async fn next(&mut self) -> Option<&'static str> {
        tokio::signal::ctrl_c().await.ok().map(|()| "Ctrl-C")
    }
}
