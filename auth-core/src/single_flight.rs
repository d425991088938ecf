//! One refresh in flight at a time; callers with the same key share its result.
//!
//! The refresh runs in a spawned task, so a caller that gives up (its future dropped)
//! neither cancels it nor poisons the next attempt.

use std::future::Future;
use std::sync::Mutex;

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

#[derive(Default)]
pub(crate) struct SingleFlight {
    current: Mutex<Option<(Secret, watch::Receiver<Outcome>)>>,
}

impl SingleFlight {
    /// Joins the running refresh, or spawns `start()` for `key` when none runs.
    pub(crate) fn join_or_start<F>(&self, key: &Secret, start: impl FnOnce() -> F) -> Joined
    where
        F: Future<Output = Result<(), RefreshError>> + Send + 'static,
    {
        let mut slot = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((running, rx)) = slot.as_ref() {
            let finished = rx.borrow().is_some() || rx.has_changed().is_err();
            if !finished {
                let flight = Flight { rx: rx.clone() };
                return if running == key {
                    Joined::Same(flight)
                } else {
                    Joined::Other(flight)
                };
            }
        }
        let (tx, rx) = watch::channel(None);
        let fut = start();
        tokio::spawn(async move {
            let result = fut.await;
            let _ = tx.send(Some(result));
        });
        *slot = Some((key.clone(), rx.clone()));
        Joined::Same(Flight { rx })
    }
}
