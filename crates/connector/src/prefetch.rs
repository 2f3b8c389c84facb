//! Fetching the next batch while the executor writes the current one, and the rule that a
//! source which failed stays failed.
//!
//! Both sources work this way: when a batch is handed over, the request (or query) for the next
//! one starts in a background task, and the next call of [`Source::next_batch`] awaits it. What
//! that call does next is one of a few steps (fetch from a position, await the task, report a
//! failure, report completion); [`Prefetch`] holds that step so that each source does not keep
//! its own copy of the state machine, and so that a source cannot forget the contract of
//! [`Source`]: once a call failed, or was cancelled half-way, no later call reads as complete.
//!
//! [`Source`]: crate::Source
//! [`Source::next_batch`]: crate::Source::next_batch

use std::fmt::Display;
use std::future::Future;

use tokio::task::JoinHandle;

/// What a [`Prefetch`] reports about the run itself rather than about one fetch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrefetchError {
    /// An earlier call failed; the run cannot go on from where it stands.
    #[error("the source failed earlier in this run and cannot go on; start a new run ({0})")]
    FailedEarlier(String),
    /// An earlier call was dropped before it finished, so where the run stands is unknown.
    #[error(
        "an earlier request for the next batch was cancelled before it finished, so the source \
         cannot tell where the run stands; start a new run"
    )]
    Cancelled,
    /// The background task fetching the next batch ended without an answer (it panicked or
    /// its runtime shut down).
    #[error("the task fetching the next batch ended without an answer: {0}")]
    Task(String),
}

/// The next step of a source that fetches one batch ahead.
///
/// `P` is where a fetch starts (a page position; `()` for a query re-run with the current
/// cursors), `T` what a fetch yields, `E` the source's error.
///
/// [`Prefetch::next`] takes the step. Until the source then says what comes after it
/// ([`fetch_ahead`](Prefetch::fetch_ahead), [`fetch_at`](Prefetch::fetch_at),
/// [`finish`](Prefetch::finish) or [`fail_next`](Prefetch::fail_next)), the source counts as
/// broken: a call dropped half-way, or an error returned in between, leaves every later call
/// failing. Errors of a fetch are remembered by `next` itself; the source passes the result of
/// its own work through [`remember`](Prefetch::remember). A fetch still running in the
/// background is aborted when the `Prefetch` is dropped.
///
/// ```
/// use cannectors_connector::{Prefetch, PrefetchError};
///
/// #[derive(Debug, thiserror::Error)]
/// enum PageError {
///     #[error("page {0} answered HTTP 500")]
///     Server(u32),
///     #[error(transparent)]
///     Prefetch(#[from] PrefetchError),
/// }
///
/// async fn page(number: u32) -> Result<Vec<u32>, PageError> {
///     if number < 3 { Ok(vec![number]) } else { Err(PageError::Server(number)) }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut pages: Prefetch<u32, Vec<u32>, PageError> = Prefetch::at(1);
/// // The first page is fetched on the call; the second while the first is written.
/// assert_eq!(pages.next(page).await.unwrap(), Some(vec![1]));
/// pages.fetch_ahead(page(2));
/// assert_eq!(pages.next(page).await.unwrap(), Some(vec![2]));
/// pages.fetch_ahead(page(3));
/// assert_eq!(pages.next(page).await.unwrap_err().to_string(), "page 3 answered HTTP 500");
/// // A failed source stays failed: never `Ok(None)`, which would read as a complete run.
/// assert_eq!(
///     pages.next(page).await.unwrap_err().to_string(),
///     "the source failed earlier in this run and cannot go on; start a new run \
///      (page 3 answered HTTP 500)"
/// );
/// # }
/// ```
pub struct Prefetch<P, T, E> {
    step: Step<P, T, E>,
}

enum Step<P, T, E> {
    /// Fetch from this position when asked.
    At(P),
    /// The fetch started while the previous batch was written.
    Ahead(Ahead<Result<T, E>>),
    /// Report this error on the next call (a problem found while scheduling the next fetch).
    Fail(E),
    /// Every call fails: an earlier one did, with this message.
    Failed(String),
    /// A call took the step and has not said what comes after it.
    Unsettled,
    /// The run is complete.
    Done,
}

/// A background task that is aborted when nobody waits for it any more.
struct Ahead<R>(JoinHandle<R>);

impl<R> Drop for Ahead<R> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<P, T, E> Prefetch<P, T, E>
where
    T: Send + 'static,
    E: From<PrefetchError> + Display + Send + 'static,
{
    /// A run whose first fetch starts at `position`, when the first batch is asked for.
    pub fn at(position: P) -> Prefetch<P, T, E> {
        Prefetch {
            step: Step::At(position),
        }
    }

    /// A run with nothing (more) to fetch: the first call reports it complete.
    pub fn done() -> Prefetch<P, T, E> {
        Prefetch { step: Step::Done }
    }

    /// Where the next fetch starts, when it has not started yet.
    pub fn position(&self) -> Option<&P> {
        match &self.step {
            Step::At(position) => Some(position),
            _ => None,
        }
    }

    /// Takes the next step: the result of the fetch started ahead, else `fetch` run from the
    /// position given; `Ok(None)` once the run is complete. A failed fetch is remembered, so
    /// every later call fails too, unless the source moves on with [`fetch_at`](Self::fetch_at).
    pub async fn next<F, Fut>(&mut self, fetch: F) -> Result<Option<T>, E>
    where
        F: FnOnce(P) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        // Until this call and the source's work on its result finish, the run counts as broken:
        // a caller that dropped the future half-way and asks again must not be told that the
        // run is complete.
        let fetched = match std::mem::replace(&mut self.step, Step::Unsettled) {
            Step::Done => {
                self.step = Step::Done;
                return Ok(None);
            }
            Step::Failed(first) => {
                let error = PrefetchError::FailedEarlier(first.clone());
                self.step = Step::Failed(first);
                return Err(error.into());
            }
            Step::Unsettled => return Err(PrefetchError::Cancelled.into()),
            Step::Fail(error) => Err(error),
            Step::At(position) => fetch(position).await,
            Step::Ahead(mut task) => match (&mut task.0).await {
                Ok(fetched) => fetched,
                Err(error) => Err(PrefetchError::Task(error.to_string()).into()),
            },
        };
        match fetched {
            Ok(item) => Ok(Some(item)),
            Err(error) => {
                self.step = Step::Failed(error.to_string());
                Err(error)
            }
        }
    }

    /// Starts `fetch` in the background; the next call of [`next`](Self::next) awaits it.
    pub fn fetch_ahead<Fut>(&mut self, fetch: Fut)
    where
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.step = Step::Ahead(Ahead(tokio::spawn(fetch)));
    }

    /// The next call fetches from `position` (such as the first page again, after a saved
    /// position was refused).
    pub fn fetch_at(&mut self, position: P) {
        self.step = Step::At(position);
    }

    /// The run is complete: every later call reports it so.
    pub fn finish(&mut self) {
        self.step = Step::Done;
    }

    /// The next call fails with `error` (found while deciding what comes next, after a batch
    /// that is still delivered), and every call after it too.
    pub fn fail_next(&mut self, error: E) {
        self.step = Step::Fail(error);
    }

    /// Passes on the result of a call of [`Source::next_batch`](crate::Source::next_batch),
    /// remembering an error that the source found itself (in a fetched batch), so that every
    /// later call fails too.
    pub fn remember<B>(&mut self, result: Result<B, E>) -> Result<B, E> {
        if let (Err(error), Step::Unsettled) = (&result, &self.step) {
            self.step = Step::Failed(error.to_string());
        }
        result
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum TestError {
        #[error("fetch {0} failed")]
        Fetch(u32),
        #[error("batch {0} is unreadable")]
        Batch(u32),
        #[error(transparent)]
        Prefetch(#[from] PrefetchError),
    }

    type Pages = Prefetch<u32, u32, TestError>;

    async fn ok(position: u32) -> Result<u32, TestError> {
        Ok(position)
    }

    async fn failing(position: u32) -> Result<u32, TestError> {
        Err(TestError::Fetch(position))
    }

    #[tokio::test]
    async fn a_complete_run_stays_complete() {
        let mut pages = Pages::at(1);
        assert_eq!(pages.next(ok).await.unwrap(), Some(1));
        pages.finish();
        assert_eq!(pages.next(ok).await.unwrap(), None);
        assert_eq!(pages.next(ok).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_failed_fetch_fails_every_later_call() {
        let mut pages = Pages::at(1);
        assert_eq!(
            pages.next(failing).await.unwrap_err().to_string(),
            "fetch 1 failed"
        );
        for _ in 0..2 {
            assert_eq!(
                pages.next(ok).await.unwrap_err().to_string(),
                "the source failed earlier in this run and cannot go on; start a new run \
                 (fetch 1 failed)"
            );
        }
    }

    #[tokio::test]
    async fn a_failed_fetch_ahead_fails_every_later_call() {
        let mut pages = Pages::at(1);
        pages.next(ok).await.unwrap();
        pages.fetch_ahead(failing(2));
        assert!(matches!(
            pages.next(ok).await.unwrap_err(),
            TestError::Fetch(2)
        ));
        assert!(matches!(
            pages.next(ok).await.unwrap_err(),
            TestError::Prefetch(PrefetchError::FailedEarlier(_))
        ));
    }

    #[tokio::test]
    async fn an_error_the_source_found_in_a_batch_fails_every_later_call() {
        let mut pages = Pages::at(1);
        let fetched = pages.next(ok).await;
        let result: Result<u32, TestError> = pages.remember(fetched.and(Err(TestError::Batch(1))));
        assert_eq!(result.unwrap_err().to_string(), "batch 1 is unreadable");
        assert_eq!(
            pages.next(ok).await.unwrap_err().to_string(),
            "the source failed earlier in this run and cannot go on; start a new run \
             (batch 1 is unreadable)"
        );
    }

    #[tokio::test]
    async fn an_error_for_the_next_call_is_reported_once_then_as_failed_earlier() {
        let mut pages = Pages::at(1);
        pages.next(ok).await.unwrap();
        pages.fail_next(TestError::Batch(2));
        assert!(matches!(
            pages.next(ok).await.unwrap_err(),
            TestError::Batch(2)
        ));
        assert!(matches!(
            pages.next(ok).await.unwrap_err(),
            TestError::Prefetch(PrefetchError::FailedEarlier(_))
        ));
    }

    #[tokio::test]
    async fn a_source_may_move_on_from_a_failed_fetch() {
        let mut pages = Pages::at(7);
        pages.next(failing).await.unwrap_err();
        pages.fetch_at(1);
        assert_eq!(pages.next(ok).await.unwrap(), Some(1));
    }

    #[tokio::test]
    async fn a_call_dropped_half_way_leaves_the_run_failed_not_complete() {
        let mut pages = Pages::at(1);
        {
            let call = pages.next(|_| std::future::pending::<Result<u32, TestError>>());
            // Polled once, then dropped before it finished.
            assert!(futures_poll_once(call).await);
        }
        assert!(matches!(
            pages.next(ok).await.unwrap_err(),
            TestError::Prefetch(PrefetchError::Cancelled)
        ));
    }

    #[tokio::test]
    async fn a_batch_handed_over_without_saying_what_comes_next_is_not_complete() {
        let mut pages = Pages::at(1);
        pages.next(ok).await.unwrap();
        assert!(matches!(
            pages.next(ok).await.unwrap_err(),
            TestError::Prefetch(PrefetchError::Cancelled)
        ));
    }

    #[tokio::test]
    async fn a_task_that_panicked_is_an_error() {
        let mut pages = Pages::at(1);
        pages.next(ok).await.unwrap();
        pages.fetch_ahead(async { panic!("boom") });
        let error = pages.next(ok).await.unwrap_err().to_string();
        assert!(
            error.starts_with("the task fetching the next batch ended without an answer: "),
            "{error}"
        );
        assert!(pages.next(ok).await.is_err());
    }

    #[tokio::test]
    async fn dropping_the_prefetch_aborts_the_fetch_ahead() {
        struct SetOnDrop(Arc<AtomicBool>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let (started, mut running) = tokio::sync::mpsc::channel(1);
        let mut pages = Pages::at(1);
        let guard = SetOnDrop(Arc::clone(&dropped));
        pages.fetch_ahead(async move {
            let _guard = guard;
            started.send(()).await.unwrap();
            std::future::pending::<Result<u32, TestError>>().await
        });
        running.recv().await.unwrap();
        drop(pages);
        // The aborted task drops its future, guard included, the next time the runtime looks
        // at it; a closed channel says the task is gone.
        tokio::time::timeout(std::time::Duration::from_secs(5), running.recv())
            .await
            .unwrap();
        assert!(dropped.load(Ordering::SeqCst));
    }

    /// Polls `future` once; `true` when it was still pending.
    async fn futures_poll_once<F: Future>(future: F) -> bool {
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|cx| std::task::Poll::Ready(future.as_mut().poll(cx).is_pending()))
            .await
    }
}
