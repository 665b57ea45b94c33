//! The node's WebSocket sessions as a count: how many are open, a bound on them, and a way for
//! a stopping node to wait until the last one has closed.
//!
//! A session runs on its own task, not inside the HTTP connection's task that accepted it
//! (that task ends at the upgrade, and with it actix-http's dispatcher: 3 KB less per idle
//! connection, docs/benchmarks.md). actix-server no longer counts such a connection, so the
//! bound and the wait at shutdown that it gave are kept here.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Counts open sessions; cheap to clone.
#[derive(Debug, Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    open: AtomicUsize,
    limit: usize,
    /// Set when the node stops: no new session is admitted.
    closing: AtomicBool,
    /// Woken when the count falls to zero.
    none_open: Notify,
}

/// Why a session was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The node holds its maximum of sessions.
    Full,
    /// The node is stopping.
    Closing,
}

/// One admitted session; the count falls when it is dropped.
#[derive(Debug)]
pub struct Admitted {
    inner: Arc<Inner>,
}

impl Sessions {
    /// At most `limit` sessions open at once.
    pub fn new(limit: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                open: AtomicUsize::new(0),
                limit,
                closing: AtomicBool::new(false),
                none_open: Notify::new(),
            }),
        }
    }

    /// Counts a new session, unless the node holds its maximum or is stopping.
    pub fn admit(&self) -> Result<Admitted, Refusal> {
        let limit = self.inner.limit;
        self.inner
            .open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .map_err(|_| Refusal::Full)?;
        // Counted first, then checked: `close_all` sets `closing` before it reads the count, so
        // either it sees this session or this session sees it closing (and leaves, waking it).
        let admitted = Admitted {
            inner: self.inner.clone(),
        };
        if self.inner.closing.load(Ordering::SeqCst) {
            return Err(Refusal::Closing);
        }
        Ok(admitted)
    }

    /// Whether the node is stopping (`close_all` was called).
    pub fn closing(&self) -> bool {
        self.inner.closing.load(Ordering::SeqCst)
    }

    /// Sessions open now.
    pub fn open(&self) -> usize {
        self.inner.open.load(Ordering::SeqCst)
    }

    /// Admits no more sessions, then waits until every open one has closed. The caller bounds
    /// the wait: a session that never closes keeps it waiting.
    pub async fn close_all(&self) {
        self.inner.closing.store(true, Ordering::SeqCst);
        loop {
            // Registered before the count is read: a close between the two still wakes it.
            let none_open = self.inner.none_open.notified();
            tokio::pin!(none_open);
            none_open.as_mut().enable();
            if self.open() == 0 {
                return;
            }
            none_open.await;
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if self.inner.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.inner.none_open.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_count_is_bounded_and_falls_as_sessions_close() {
        let sessions = Sessions::new(2);
        let a = sessions.admit().unwrap();
        let b = sessions.admit().unwrap();
        assert_eq!(sessions.admit().unwrap_err(), Refusal::Full);
        assert_eq!(sessions.open(), 2);
        drop(a);
        let c = sessions.admit().unwrap();
        assert_eq!(sessions.open(), 2);
        drop((b, c));
        assert_eq!(sessions.open(), 0);
    }

    #[tokio::test]
    async fn closing_refuses_new_sessions_and_waits_for_the_open_ones() {
        let sessions = Sessions::new(10);
        let open = sessions.admit().unwrap();
        let waiting = tokio::spawn({
            let sessions = sessions.clone();
            async move { sessions.close_all().await }
        });
        // The waiter has marked the node closing once a new session is refused.
        while sessions.admit().map(drop).is_ok() {
            tokio::task::yield_now().await;
        }
        assert_eq!(sessions.admit().unwrap_err(), Refusal::Closing);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "a session is still open");
        drop(open);
        waiting.await.unwrap();
        // With none open it returns at once.
        sessions.close_all().await;
    }
}
