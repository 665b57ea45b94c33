//! A session's outbox: a bounded queue from the hub and the connection to the session's writer.
//!
//! The writer takes everything queued at once (one lock per batch, one wake-up per batch: an
//! offer to a writer that is already woken wakes nothing), and an idle session's queue holds no
//! allocation: tokio's channel kept a first block of 32 slots (2.6 KB) for every connection.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use confab_protocol::realtime::CloseCode;
use tokio::sync::Notify;

use super::{ByteBudget, Kick, Outbound};

/// A queue's capacity, in items, that an emptied queue keeps; beyond it, the memory is given
/// back.
const KEPT_CAPACITY: usize = 8;

#[derive(Debug)]
struct Queue {
    items: Mutex<VecDeque<Outbound>>,
    /// Most items queued at once.
    limit: usize,
    /// The writer waits here for items, or for the last sender to go.
    ready: Notify,
    /// Senders that wait for room wait here.
    room: Notify,
    /// Live `Outbox` handles; the writer ends when none is left and nothing is queued.
    senders: AtomicUsize,
    /// The writer is gone: what is offered is dropped.
    closed: AtomicBool,
    /// Items the writer took and has not handed out yet: they count against `limit` too.
    taken: AtomicUsize,
    /// Senders waiting for room: while there are any, each item handed out tells them.
    waiting: AtomicUsize,
}

impl Queue {
    fn items(&self) -> MutexGuard<'_, VecDeque<Outbound>> {
        // A panic while holding the lock cannot leave the queue half changed (push and swap
        // are whole), so a poisoned lock is taken as it is.
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sending side of a session's outbox, as the hub and the connection hold it.
#[derive(Debug)]
pub struct Outbox {
    queue: Arc<Queue>,
    /// How the session is told to close.
    pub kick: Arc<Kick>,
    /// The bytes the queue may hold; the writer gives back what it wrote.
    pub budget: Arc<ByteBudget>,
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.queue.senders.fetch_add(1, Ordering::AcqRel);
        Self {
            queue: self.queue.clone(),
            kick: self.kick.clone(),
            budget: self.budget.clone(),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if self.queue.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.queue.ready.notify_one();
        }
    }
}

/// A sender waiting for room, counted while it lives (a wait given up is uncounted too).
struct Waiter<'a>(&'a AtomicUsize);

impl<'a> Waiter<'a> {
    fn count(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::SeqCst);
        Self(waiting)
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why an item could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The queue is full (in frames).
    Full,
    /// The writer is gone.
    Closed,
}

impl Outbox {
    /// A session's outbox, bounded by `frames` and `bytes`, and the end its writer reads.
    pub fn bounded(frames: usize, bytes: usize) -> (Self, OutboxReader) {
        let queue = Arc::new(Queue {
            items: Mutex::new(VecDeque::new()),
            limit: frames.max(1),
            ready: Notify::new(),
            room: Notify::new(),
            senders: AtomicUsize::new(1),
            closed: AtomicBool::new(false),
            taken: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
        });
        let outbox = Self {
            queue: queue.clone(),
            kick: Arc::new(Kick::default()),
            budget: Arc::new(ByteBudget::new(bytes)),
        };
        (
            outbox,
            OutboxReader {
                queue,
                batch: VecDeque::new(),
            },
        )
    }

    /// Offers an item; `false` when the session is too slow (its queue is full in frames or in
    /// bytes), and it has been told to close.
    pub fn offer(&self, item: Outbound) -> bool {
        let bytes = item.bytes();
        if !self.budget.reserve(bytes) {
            self.kick.kick(CloseCode::TooSlow);
            return false;
        }
        match self.try_push(item) {
            Ok(()) => true,
            Err(Refused::Full) => {
                self.budget.release(bytes);
                self.kick.kick(CloseCode::TooSlow);
                false
            }
            // The session is gone; its unregister is on its way.
            Err(Refused::Closed) => {
                self.budget.release(bytes);
                true
            }
        }
    }

    /// Queues an item, waiting for room (not counted against the byte budget: for markers).
    /// Refused once the writer is gone or the session was told to close: a writer stuck on a
    /// client that does not read makes no room.
    pub async fn send(&self, mut item: Outbound) -> Result<(), Refused> {
        loop {
            // Created, and the waiter counted, before the check: a slot freed in between is
            // not missed (the reader reads `waiting` after it gives `taken` back, both SeqCst).
            let room = self.queue.room.notified();
            let _waiter = Waiter::count(&self.queue.waiting);
            item = match self.push_or_return(item) {
                Ok(()) => return Ok(()),
                Err((Refused::Closed, _)) => return Err(Refused::Closed),
                Err((Refused::Full, back)) => back,
            };
            tokio::select! {
                _ = room => {}
                _ = self.kick.kicked() => return Err(Refused::Closed),
            }
        }
    }

    fn try_push(&self, item: Outbound) -> Result<(), Refused> {
        self.push_or_return(item).map_err(|(why, _)| why)
    }

    fn push_or_return(&self, item: Outbound) -> Result<(), (Refused, Outbound)> {
        if self.queue.closed.load(Ordering::Acquire) {
            return Err((Refused::Closed, item));
        }
        let mut items = self.queue.items();
        if items.len() + self.queue.taken.load(Ordering::SeqCst) >= self.queue.limit {
            return Err((Refused::Full, item));
        }
        items.push_back(item);
        drop(items);
        self.queue.ready.notify_one();
        Ok(())
    }
}

/// The writer's end of an outbox.
#[derive(Debug)]
pub struct OutboxReader {
    queue: Arc<Queue>,
    /// Items taken from the queue and not yet handed out, in order.
    batch: VecDeque<Outbound>,
}

impl OutboxReader {
    /// The next item, waiting for one; `None` once every sender is gone and nothing is left.
    pub async fn next(&mut self) -> Option<Outbound> {
        loop {
            if let Some(item) = self.try_next() {
                return Some(item);
            }
            let queue = self.queue.clone();
            // Created before the check below: an offer in between leaves its permit here.
            let ready = queue.ready.notified();
            if queue.senders.load(Ordering::Acquire) == 0 {
                drop(ready);
                return self.try_next();
            }
            ready.await;
        }
    }

    /// The next item if one is queued, without waiting: everything queued is taken at once.
    pub fn try_next(&mut self) -> Option<Outbound> {
        if self.batch.is_empty() {
            if self.batch.capacity() > KEPT_CAPACITY {
                self.batch = VecDeque::new();
            }
            let mut items = self.queue.items();
            if items.is_empty() {
                return None;
            }
            std::mem::swap(&mut *items, &mut self.batch);
            self.queue.taken.store(self.batch.len(), Ordering::SeqCst);
            drop(items);
        }
        let item = self.batch.pop_front();
        if item.is_some() {
            self.queue.taken.fetch_sub(1, Ordering::SeqCst);
            // Senders waiting for room (rare: markers) are told of each slot.
            if self.queue.waiting.load(Ordering::SeqCst) > 0 {
                self.queue.room.notify_waiters();
            }
        }
        item
    }
}

impl Drop for OutboxReader {
    fn drop(&mut self) {
        self.queue.closed.store(true, Ordering::Release);
        self.queue.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytestring::ByteString;

    fn frame(text: &str) -> Outbound {
        Outbound::Frame(ByteString::from(text.to_owned()))
    }

    fn text(item: Option<Outbound>) -> String {
        match item {
            Some(Outbound::Frame(f)) => f.to_string(),
            other => panic!("not a frame: {other:?}"),
        }
    }

    #[tokio::test]
    async fn items_come_out_in_order_and_the_reader_ends_with_the_last_sender() {
        let (outbox, mut reader) = Outbox::bounded(16, 1024);
        let second = outbox.clone();
        assert!(outbox.offer(frame("a")));
        assert!(second.offer(frame("b")));
        assert_eq!(text(reader.next().await), "a");
        assert!(outbox.offer(frame("c")));
        assert_eq!(text(reader.try_next()), "b");
        assert_eq!(text(reader.next().await), "c");
        assert!(reader.try_next().is_none());
        drop(outbox);
        assert!(second.offer(frame("d")));
        drop(second);
        assert_eq!(
            text(reader.next().await),
            "d",
            "what was queued is still delivered"
        );
        assert!(reader.next().await.is_none());
    }

    #[tokio::test]
    async fn a_full_queue_kicks_and_refuses_and_gives_the_bytes_back() {
        let (outbox, mut reader) = Outbox::bounded(2, 1024);
        assert!(outbox.offer(frame("1")));
        assert!(outbox.offer(frame("2")));
        assert!(!outbox.offer(frame("3")), "full in frames");
        assert_eq!(outbox.budget.queued(), 2);
        assert_eq!(outbox.kick.kicked().await, CloseCode::TooSlow);
        assert_eq!(text(reader.next().await), "1");
        let (outbox, _reader) = Outbox::bounded(100, 10);
        assert!(outbox.offer(frame("12345")));
        assert!(!outbox.offer(frame("123456")), "full in bytes");
        assert_eq!(outbox.budget.queued(), 5);
    }

    #[tokio::test]
    async fn a_sender_waits_for_room_and_a_gone_writer_refuses() {
        let (outbox, mut reader) = Outbox::bounded(1, 1024);
        outbox.send(frame("1")).await.unwrap();
        let waiting = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.send(frame("2")).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "no room yet");
        assert_eq!(text(reader.next().await), "1");
        waiting.await.unwrap().unwrap();
        assert_eq!(text(reader.next().await), "2");
        drop(reader);
        assert_eq!(outbox.send(frame("3")).await, Err(Refused::Closed));
        assert!(
            outbox.offer(frame("4")),
            "offered to a gone session: dropped"
        );
        assert_eq!(outbox.budget.queued(), 0);
    }

    #[tokio::test]
    async fn a_sender_waiting_for_room_stops_when_the_session_is_kicked() {
        let (outbox, _reader) = Outbox::bounded(1, 1024);
        outbox.send(frame("1")).await.unwrap();
        let waiting = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.send(frame("2")).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "no room");
        outbox.kick.kick(CloseCode::Draining);
        assert_eq!(waiting.await.unwrap(), Err(Refused::Closed));
        assert_eq!(outbox.queue.waiting.load(Ordering::SeqCst), 0);
        assert_eq!(outbox.kick.code(), Some(CloseCode::Draining));
    }
}
