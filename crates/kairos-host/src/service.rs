//! The lifecycle of a server's tasks: started under one [`Service`], stopped together.
//!
//! Every long-running task of a server (accept loops, heartbeats, sweepers, federation
//! pullers) is spawned with [`Service::spawn`] and watches [`Service::token`] (or awaits
//! [`Service::cancelled`]) to know when to stop. [`Service::shutdown`] cancels the token and
//! waits until every tracked task has returned.
//!
//! Invariants: once [`Service::shutdown`] returns, no task spawned through this service is
//! running (so the state they shared — a database handle, a socket — can be closed); a task
//! spawned after cancellation still runs but sees the token already cancelled; dropping the
//! [`StopOnDrop`] guard cancels without waiting, so a server handle dropped without a
//! graceful shutdown still stops its tasks.

use std::future::Future;
use tokio_util::sync::{CancellationToken, DropGuard, WaitForCancellationFutureOwned};
use tokio_util::task::TaskTracker;

/// One cancellation token and the tasks that watch it. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Service {
    token: CancellationToken,
    tracker: TaskTracker,
}

/// Cancels its [`Service`] when dropped (see [`Service::stop_on_drop`]).
pub struct StopOnDrop(#[allow(dead_code)] DropGuard);

impl Service {
    pub fn new() -> Self {
        Self::default()
    }

    /// The token every task of this service watches.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Resolves once the service is stopping.
    pub fn cancelled(&self) -> WaitForCancellationFutureOwned {
        self.token.clone().cancelled_owned()
    }

    pub fn is_stopping(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Spawns `task` on the current runtime, tracked by this service.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(task)
    }

    /// A guard that stops the service (without waiting) when dropped.
    pub fn stop_on_drop(&self) -> StopOnDrop {
        StopOnDrop(self.token.clone().drop_guard())
    }

    /// Signals every task to stop and waits until all of them have returned.
    pub async fn shutdown(&self) {
        self.token.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn shutdown_waits_for_every_task() {
        let service = Service::new();
        let finished = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let (stop, finished) = (service.cancelled(), finished.clone());
            service.spawn(async move {
                stop.await;
                // Work after the signal must still be waited for.
                tokio::task::yield_now().await;
                finished.fetch_add(1, Ordering::SeqCst);
            });
        }
        service.shutdown().await;
        assert_eq!(finished.load(Ordering::SeqCst), 3);
        assert!(service.is_stopping());
    }

    #[tokio::test]
    async fn dropping_the_guard_cancels() {
        let service = Service::new();
        let guard = service.stop_on_drop();
        assert!(!service.is_stopping());
        drop(guard);
        assert!(service.is_stopping());
    }
}
