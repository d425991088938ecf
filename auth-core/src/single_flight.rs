//! One refresh in flight at a time; callers with the same key share its result.
//!
//! The refresh runs in a spawned task, so a caller that gives up (its future dropped)
//! neither cancels it nor poisons the next attempt.
//!
//! A flight started because the provider rejected its key (a 401) is marked: until it ends,
//! [`SingleFlight::rejected`] hands it to anyone about to use that key, so no more requests
//! go out with a token already known to be refused. The mark is an atomic, so the check
//! costs `auth()` one load when no such flight runs.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::error::RefreshError;
use crate::secret::Secret;

type Outcome = Option<Result<(), RefreshError>>;

/// A handle on a refresh: the result channel.
pub(crate) struct Flight {
    rx: watch::Receiver<Outcome>,
}

impl Flight {
    /// Waits for the refresh's result.
    pub(crate) async fn wait(mut self) -> Result<(), RefreshError> {
        match self.rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or(Ok(())),
            Err(_) => Err(RefreshError::transient("auth refresh ended unexpectedly")),
        }
    }
}

/// What `join_or_start` found.
pub(crate) enum Joined {
    /// A refresh of this key (possibly just started by us).
    Same(Flight),
    /// A refresh of another key is still running: wait for it, then look again.
    Other(Flight),
}

/// Why a flight was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// The provider refused the key: nobody should use it until the flight ends.
    Rejected,
    /// Anything else (a proactive refresh): the key is still good meanwhile.
    Other,
}

#[derive(Default)]
pub(crate) struct SingleFlight {
    current: Mutex<Option<Running>>,
    /// True from the start of a [`Cause::Rejected`] flight until just before its result.
    rejected_running: Arc<AtomicBool>,
}

struct Running {
    key: Secret,
    cause: Cause,
    rx: watch::Receiver<Outcome>,
}

impl Running {
    fn finished(&self) -> bool {
        self.rx.borrow().is_some() || self.rx.has_changed().is_err()
    }
}

impl SingleFlight {
    /// Joins the running refresh, or spawns `start()` for `key` when none runs.
    pub(crate) fn join_or_start<F>(
        &self,
        key: &Secret,
        cause: Cause,
        start: impl FnOnce() -> F,
    ) -> Joined
    where
        F: Future<Output = Result<(), RefreshError>> + Send + 'static,
    {
        let mut slot = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(running) = slot.as_ref().filter(|r| !r.finished()) {
            let flight = Flight {
                rx: running.rx.clone(),
            };
            return if running.key == *key {
                Joined::Same(flight)
            } else {
                Joined::Other(flight)
            };
        }
        let (tx, rx) = watch::channel(None);
        let fut = start();
        let mark = (cause == Cause::Rejected).then(|| self.rejected_running.clone());
        if let Some(mark) = &mark {
            mark.store(true, Ordering::Release);
        }
        tokio::spawn(async move {
            // Cleared if the task is dropped unfinished (the runtime shutting down) too.
            let _clear = mark.map(ClearOnDrop);
            let result = fut.await;
            drop(_clear);
            // Cleared before the result is sent: no later flight can have started yet.
            let _ = tx.send(Some(result));
        });
        *slot = Some(Running {
            key: key.clone(),
            cause,
            rx: rx.clone(),
        });
        Joined::Same(Flight { rx })
    }

    /// The running flight for `key` if it was started because `key` was refused.
    pub(crate) fn rejected(&self, key: &Secret) -> Option<Flight> {
        if !self.rejected_running.load(Ordering::Acquire) {
            return None;
        }
        let slot = self.current.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref()
            .filter(|r| r.cause == Cause::Rejected && r.key == *key && !r.finished())
            .map(|r| Flight { rx: r.rx.clone() })
    }
}

struct ClearOnDrop(Arc<AtomicBool>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
