//! A publish/subscribe hub for broadcast (chat rooms, live feeds, dashboards): topics,
//! subscribers with a bounded queue each, publish once to every subscriber of a topic.
//!
//! A publish frames (and, where connections share it, compresses) the message once as a
//! [`PreparedMessage`] and queues a reference to it for every subscriber; it never waits
//! and never writes to a socket: each connection takes its queue in batches and writes a
//! whole batch at once ([`WebSocket::recv_forwarding`](crate::WebSocket::recv_forwarding),
//! a member in one task, or [`WsSender::forward`](crate::WsSender::forward) for a writer
//! task, on the async adapters; [`Subscriber::try_batch`] or
//! [`Subscriber::next_batch_blocking`] on the blocking one). A subscriber whose queue is
//! full (in messages or bytes, see [`HubConfig`]) when a message arrives is handled by the
//! hub's [`SlowConsumer`] policy, counted in [`HubStats`].
//!
//! Runtime-agnostic: waiting is a [`Waker`] (async) or a [`Condvar`] (blocking).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use wsflow::{Message, PreparedMessage};

/// What the hub does with a message for a subscriber whose queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlowConsumer {
    /// Drop the oldest queued message to make room (a live feed: the latest matters most).
    DropOldest,
    /// Drop the new message (the subscriber misses it; what it has queued stays in order).
    Skip,
    /// Unsubscribe it from every topic and have its writer close the connection with 1008
    /// "too slow" (a chat room that must not stall or silently lose lines).
    Close,
}

/// A hub's settings.
///
/// ```
/// use wsflow_io::hub::{HubConfig, SlowConsumer};
/// let config = HubConfig { queue_len: 1024, slow_consumer: SlowConsumer::DropOldest, ..HubConfig::default() };
/// assert_eq!(HubConfig::default().queue_len, 256);
/// assert_eq!(HubConfig::default().queue_bytes, 16 << 20);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct HubConfig {
    /// Messages each subscriber may have queued (at least 1). Default 256.
    pub queue_len: usize,
    /// Bytes (of message payloads) each subscriber may have queued: a message that would
    /// pass it finds the queue full, except an empty queue, which takes one message of any
    /// size. Default 16 MiB. (The messages are shared by every subscriber; this bounds what
    /// one slow subscriber keeps alive.)
    pub queue_bytes: usize,
    /// What happens when a subscriber's queue is full. Default [`SlowConsumer::Close`].
    pub slow_consumer: SlowConsumer,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            queue_len: 256,
            queue_bytes: 16 << 20,
            slow_consumer: SlowConsumer::Close,
        }
    }
}

/// What one [`Hub::publish`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Published {
    /// Subscribers the message was queued for.
    pub queued: usize,
    /// Queued messages dropped to make room ([`SlowConsumer::DropOldest`]): one per full
    /// subscriber, more when a large message needed the room of several.
    pub dropped_oldest: usize,
    /// Subscribers that missed the message ([`SlowConsumer::Skip`]).
    pub skipped: usize,
    /// Subscribers closed as too slow ([`SlowConsumer::Close`]).
    pub closed: usize,
}

/// Counts since the hub was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Publishes.
    pub published: u64,
    /// Messages queued for subscribers (one per subscriber per publish).
    pub queued: u64,
    /// Oldest messages dropped to make room.
    pub dropped_oldest: u64,
    /// New messages skipped for a full queue.
    pub skipped: u64,
    /// Subscribers closed as too slow.
    pub closed_too_slow: u64,
}

/// What a subscriber's writer gets from [`Subscriber::poll_batch`] and its variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Messages were moved into the batch; `dropped` of this subscriber's messages were lost
    /// to the slow-consumer policy since the last batch (tell the user, if it matters).
    Messages {
        /// Messages dropped or skipped for this subscriber since the last batch.
        dropped: u64,
    },
    /// The hub gave up on this subscriber ([`SlowConsumer::Close`]): close the connection
    /// with 1008 "too slow".
    TooSlow,
    /// [`Subscriber::close`] was called: nothing more will come.
    Closed,
}

/// Topics and their subscribers. Cloning gives another handle to the same hub.
///
/// ```
/// use wsflow_io::hub::{Delivery, Hub};
/// use wsflow_io::Message;
///
/// let hub = Hub::default();
/// let alice = hub.subscriber();
/// alice.subscribe("lobby");
/// let published = hub.publish("lobby", Message::text("hello"));
/// assert_eq!(published.queued, 1);
/// let mut batch = Vec::new();
/// assert_eq!(alice.try_batch(&mut batch), Some(Delivery::Messages { dropped: 0 }));
/// assert_eq!(batch[0].message(), &Message::text("hello"));
/// ```
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<HubInner>,
}

#[derive(Default)]
struct HubInner {
    config: HubConfig,
    topics: Mutex<HashMap<String, Vec<Arc<Mailbox>>>>,
    next_id: AtomicU64,
    published: AtomicU64,
    queued: AtomicU64,
    dropped_oldest: AtomicU64,
    skipped: AtomicU64,
    closed_too_slow: AtomicU64,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hub {
    /// A hub with `config`.
    ///
    /// ```
    /// use wsflow_io::hub::{Hub, HubConfig, SlowConsumer};
    /// let hub = Hub::new(HubConfig { queue_len: 64, slow_consumer: SlowConsumer::Skip, ..HubConfig::default() });
    /// ```
    #[must_use]
    pub fn new(config: HubConfig) -> Self {
        Self {
            inner: Arc::new(HubInner {
                config: HubConfig {
                    queue_len: config.queue_len.max(1),
                    ..config
                },
                ..HubInner::default()
            }),
        }
    }

    /// A new subscriber (one per connection), subscribed to nothing yet.
    ///
    /// ```
    /// let hub = wsflow_io::hub::Hub::default();
    /// let subscriber = hub.subscriber();
    /// subscriber.subscribe("news");
    /// assert_eq!(hub.subscriber_count("news"), 1);
    /// drop(subscriber); // unsubscribed from everything
    /// assert_eq!(hub.subscriber_count("news"), 0);
    /// ```
    #[must_use]
    pub fn subscriber(&self) -> Subscriber {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        Subscriber {
            shared: Arc::new(SubscriberShared {
                hub: self.inner.clone(),
                mailbox: Arc::new(Mailbox {
                    id,
                    state: Mutex::new(MailboxState::default()),
                    ready: Condvar::new(),
                }),
            }),
        }
    }

    /// Frames `message` once and queues it for every subscriber of `topic`, applying the
    /// slow-consumer policy to full queues. Never waits, never writes to a socket.
    ///
    /// ```
    /// let hub = wsflow_io::hub::Hub::default();
    /// assert_eq!(hub.publish("empty room", wsflow_io::Message::text("anyone?")).queued, 0);
    /// ```
    pub fn publish(&self, topic: &str, message: Message) -> Published {
        self.publish_prepared(topic, &PreparedMessage::new(message))
    }

    /// [`publish`](Self::publish) for a message already prepared (published to several
    /// topics, or relayed).
    ///
    /// ```
    /// use wsflow_io::{hub::Hub, wsflow::PreparedMessage, Message};
    /// let hub = Hub::default();
    /// let prepared = PreparedMessage::new(Message::text("to all rooms"));
    /// for room in ["a", "b"] {
    ///     hub.publish_prepared(room, &prepared);
    /// }
    /// ```
    pub fn publish_prepared(&self, topic: &str, message: &PreparedMessage) -> Published {
        let inner = &*self.inner;
        let mut published = Published::default();
        let mut too_slow = Vec::new();
        {
            let topics = lock(&inner.topics);
            for mailbox in topics.get(topic).into_iter().flatten() {
                match mailbox.push(message, &inner.config) {
                    Pushed::Queued => published.queued += 1,
                    Pushed::DroppedOldest(count) => {
                        published.queued += 1;
                        published.dropped_oldest += count;
                    }
                    Pushed::Skipped => published.skipped += 1,
                    Pushed::TooSlow => {
                        published.closed += 1;
                        too_slow.push(mailbox.clone());
                    }
                    Pushed::Gone => {}
                }
            }
        }
        for mailbox in too_slow {
            inner.remove_everywhere(&mailbox);
        }
        inner.published.fetch_add(1, Ordering::Relaxed);
        inner.queued.fetch_add(published.queued as u64, Ordering::Relaxed);
        inner
            .dropped_oldest
            .fetch_add(published.dropped_oldest as u64, Ordering::Relaxed);
        inner.skipped.fetch_add(published.skipped as u64, Ordering::Relaxed);
        inner
            .closed_too_slow
            .fetch_add(published.closed as u64, Ordering::Relaxed);
        published
    }

    /// Subscribers of `topic`.
    ///
    /// ```
    /// assert_eq!(wsflow_io::hub::Hub::default().subscriber_count("lobby"), 0);
    /// ```
    #[must_use]
    pub fn subscriber_count(&self, topic: &str) -> usize {
        lock(&self.inner.topics).get(topic).map_or(0, Vec::len)
    }

    /// Every topic with at least one subscriber, and how many it has, sorted by name.
    ///
    /// ```
    /// let hub = wsflow_io::hub::Hub::default();
    /// let subscriber = hub.subscriber();
    /// subscriber.subscribe("b");
    /// subscriber.subscribe("a");
    /// assert_eq!(hub.topics(), [("a".to_owned(), 1), ("b".to_owned(), 1)]);
    /// ```
    #[must_use]
    pub fn topics(&self) -> Vec<(String, usize)> {
        let mut topics: Vec<(String, usize)> = lock(&self.inner.topics)
            .iter()
            .map(|(topic, mailboxes)| (topic.clone(), mailboxes.len()))
            .collect();
        topics.sort();
        topics
    }

    /// The hub's counts so far.
    ///
    /// ```
    /// assert_eq!(wsflow_io::hub::Hub::default().stats().published, 0);
    /// ```
    #[must_use]
    pub fn stats(&self) -> HubStats {
        let inner = &*self.inner;
        HubStats {
            published: inner.published.load(Ordering::Relaxed),
            queued: inner.queued.load(Ordering::Relaxed),
            dropped_oldest: inner.dropped_oldest.load(Ordering::Relaxed),
            skipped: inner.skipped.load(Ordering::Relaxed),
            closed_too_slow: inner.closed_too_slow.load(Ordering::Relaxed),
        }
    }
}

impl HubInner {
    /// Unsubscribes `mailbox` from every topic.
    fn remove_everywhere(&self, mailbox: &Mailbox) {
        let topics = std::mem::take(&mut lock(&mailbox.state).topics);
        let mut map = lock(&self.topics);
        for topic in topics {
            remove(&mut map, &topic, mailbox.id);
        }
    }
}

fn remove(map: &mut HashMap<String, Vec<Arc<Mailbox>>>, topic: &str, id: u64) {
    if let Some(mailboxes) = map.get_mut(topic) {
        mailboxes.retain(|mailbox| mailbox.id != id);
        if mailboxes.is_empty() {
            map.remove(topic);
        }
    }
}

/// One connection's subscriptions and queue. Cloning gives another handle to the same
/// subscriber (the reading task keeps one to subscribe, the writing task one to forward);
/// when the last handle is dropped it is unsubscribed from everything.
#[derive(Clone)]
pub struct Subscriber {
    shared: Arc<SubscriberShared>,
}

struct SubscriberShared {
    hub: Arc<HubInner>,
    mailbox: Arc<Mailbox>,
}

impl Drop for SubscriberShared {
    fn drop(&mut self) {
        self.hub.remove_everywhere(&self.mailbox);
    }
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared.mailbox.state);
        f.debug_struct("Subscriber")
            .field("topics", &state.topics)
            .field("queued", &state.queue.len())
            .finish_non_exhaustive()
    }
}

struct Mailbox {
    id: u64,
    state: Mutex<MailboxState>,
    ready: Condvar,
}

#[derive(Default)]
struct MailboxState {
    queue: VecDeque<PreparedMessage>,
    /// The payload bytes in `queue`.
    queued_bytes: usize,
    topics: Vec<String>,
    waker: Option<Waker>,
    /// Threads blocked in `next_batch_blocking` (the condvar is signalled only for them:
    /// a signal costs a system call).
    blocked: usize,
    dropped: u64,
    too_slow: bool,
    closed: bool,
}

impl MailboxState {
    /// Wakes `cx`'s task at the next push (one waiting task per subscriber).
    fn register(&mut self, cx: &Context<'_>) {
        if !self.waker.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
            self.waker = Some(cx.waker().clone());
        }
    }
}

enum Pushed {
    Queued,
    /// Queued after dropping this many of the oldest.
    DroppedOldest(usize),
    Skipped,
    TooSlow,
    Gone,
}

impl Mailbox {
    fn push(&self, message: &PreparedMessage, config: &HubConfig) -> Pushed {
        let pushed = {
            let mut state = lock(&self.state);
            if state.too_slow || state.closed {
                return Pushed::Gone;
            }
            let len = message.len();
            let full = |state: &MailboxState| {
                state.queue.len() >= config.queue_len
                    || (!state.queue.is_empty() && state.queued_bytes + len > config.queue_bytes)
            };
            let pushed = if !full(&state) {
                Pushed::Queued
            } else {
                match config.slow_consumer {
                    SlowConsumer::DropOldest => {
                        let mut count = 0;
                        while full(&state) {
                            let Some(oldest) = state.queue.pop_front() else { break };
                            state.queued_bytes -= oldest.len();
                            count += 1;
                        }
                        state.dropped += count as u64;
                        Pushed::DroppedOldest(count)
                    }
                    SlowConsumer::Skip => {
                        state.dropped += 1;
                        Pushed::Skipped
                    }
                    SlowConsumer::Close => {
                        state.dropped += 1;
                        state.too_slow = true;
                        state.queue = VecDeque::new();
                        state.queued_bytes = 0;
                        Pushed::TooSlow
                    }
                }
            };
            if matches!(pushed, Pushed::Queued | Pushed::DroppedOldest(_)) {
                state.queue.push_back(message.clone());
                state.queued_bytes += len;
            }
            let blocked = state.blocked > 0;
            (pushed, state.waker.take(), blocked)
        };
        let (pushed, waker, blocked) = pushed;
        if blocked {
            self.ready.notify_one();
        }
        if let Some(waker) = waker {
            waker.wake();
        }
        pushed
    }

    /// Moves what is queued into `out`, or says why nothing will come; `None` when empty.
    fn take(state: &mut MailboxState, out: &mut Vec<PreparedMessage>) -> Option<Delivery> {
        if state.too_slow {
            return Some(Delivery::TooSlow);
        }
        if !state.queue.is_empty() {
            out.extend(state.queue.drain(..));
            state.queued_bytes = 0;
            if state.queue.capacity() > 64 {
                state.queue = VecDeque::new(); // a burst's room is given back
            }
            return Some(Delivery::Messages {
                dropped: std::mem::take(&mut state.dropped),
            });
        }
        state.closed.then_some(Delivery::Closed)
    }
}

impl Subscriber {
    /// Subscribes to `topic` (again: no effect).
    ///
    /// ```
    /// let hub = wsflow_io::hub::Hub::default();
    /// let subscriber = hub.subscriber();
    /// subscriber.subscribe("lobby");
    /// subscriber.subscribe("lobby");
    /// assert_eq!(hub.subscriber_count("lobby"), 1);
    /// ```
    pub fn subscribe(&self, topic: &str) {
        let mailbox = &self.shared.mailbox;
        {
            let mut state = lock(&mailbox.state);
            if state.too_slow || state.closed || state.topics.iter().any(|t| t == topic) {
                return;
            }
            state.topics.push(topic.to_owned());
        }
        lock(&self.shared.hub.topics)
            .entry(topic.to_owned())
            .or_default()
            .push(mailbox.clone());
    }

    /// Unsubscribes from `topic`: nothing published to it after this call is queued (what
    /// was queued before still is).
    ///
    /// ```
    /// let hub = wsflow_io::hub::Hub::default();
    /// let subscriber = hub.subscriber();
    /// subscriber.subscribe("lobby");
    /// subscriber.unsubscribe("lobby");
    /// assert_eq!(hub.publish("lobby", wsflow_io::Message::text("gone")).queued, 0);
    /// ```
    pub fn unsubscribe(&self, topic: &str) {
        let mailbox = &self.shared.mailbox;
        lock(&mailbox.state).topics.retain(|t| t != topic);
        remove(&mut lock(&self.shared.hub.topics), topic, mailbox.id);
    }

    /// The topics subscribed to.
    ///
    /// ```
    /// let subscriber = wsflow_io::hub::Hub::default().subscriber();
    /// subscriber.subscribe("lobby");
    /// assert_eq!(subscriber.topics(), ["lobby"]);
    /// ```
    #[must_use]
    pub fn topics(&self) -> Vec<String> {
        lock(&self.shared.mailbox.state).topics.clone()
    }

    /// Unsubscribes from everything and ends the writer: the next batch after what is
    /// queued is [`Delivery::Closed`]. For the reading task to stop the writing one when
    /// the connection ends.
    ///
    /// ```
    /// use wsflow_io::hub::{Delivery, Hub};
    /// let subscriber = Hub::default().subscriber();
    /// subscriber.close();
    /// assert_eq!(subscriber.try_batch(&mut Vec::new()), Some(Delivery::Closed));
    /// ```
    pub fn close(&self) {
        let mailbox = &self.shared.mailbox;
        let waker = {
            let mut state = lock(&mailbox.state);
            state.closed = true;
            state.waker.take()
        };
        self.shared.hub.remove_everywhere(mailbox);
        mailbox.ready.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Moves every queued message into `out` without waiting; `None` when nothing is
    /// queued.
    ///
    /// ```
    /// let subscriber = wsflow_io::hub::Hub::default().subscriber();
    /// assert_eq!(subscriber.try_batch(&mut Vec::new()), None);
    /// ```
    pub fn try_batch(&self, out: &mut Vec<PreparedMessage>) -> Option<Delivery> {
        Mailbox::take(&mut lock(&self.shared.mailbox.state), out)
    }

    /// Moves every queued message into `out`, or registers `cx`'s waker until something is
    /// queued (one waiting task per subscriber).
    ///
    /// ```
    /// # use std::task::{Context, Poll, Waker};
    /// let subscriber = wsflow_io::hub::Hub::default().subscriber();
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(subscriber.poll_batch(&mut cx, &mut Vec::new()).is_pending());
    /// ```
    pub fn poll_batch(&self, cx: &mut Context<'_>, out: &mut Vec<PreparedMessage>) -> Poll<Delivery> {
        let mut state = lock(&self.shared.mailbox.state);
        match Mailbox::take(&mut state, out) {
            Some(delivery) => Poll::Ready(delivery),
            None => {
                state.register(cx);
                Poll::Pending
            }
        }
    }

    /// Ready once the hub has given up on this subscriber ([`SlowConsumer::Close`]),
    /// registering `cx`'s waker until then: for a writer stuck behind a peer that does not
    /// read, so that it can close the connection instead of waiting.
    ///
    /// ```
    /// # use std::task::{Context, Waker};
    /// let subscriber = wsflow_io::hub::Hub::default().subscriber();
    /// assert!(subscriber.poll_too_slow(&mut Context::from_waker(Waker::noop())).is_pending());
    /// ```
    pub fn poll_too_slow(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(&self.shared.mailbox.state);
        if state.too_slow {
            return Poll::Ready(());
        }
        state.register(cx);
        Poll::Pending
    }

    /// [`poll_batch`](Self::poll_batch) as a future.
    ///
    /// ```
    /// # async fn writer(subscriber: wsflow_io::hub::Subscriber) {
    /// let mut batch = Vec::new();
    /// let delivery = subscriber.next_batch(&mut batch).await;
    /// # }
    /// ```
    pub async fn next_batch(&self, out: &mut Vec<PreparedMessage>) -> Delivery {
        std::future::poll_fn(|cx| self.poll_batch(cx, out)).await
    }

    /// [`poll_batch`](Self::poll_batch) for a thread: blocks until something is queued, or
    /// `timeout` passes (`None`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let subscriber = wsflow_io::hub::Hub::default().subscriber();
    /// assert_eq!(subscriber.next_batch_blocking(&mut Vec::new(), Some(Duration::from_millis(1))), None);
    /// ```
    pub fn next_batch_blocking(&self, out: &mut Vec<PreparedMessage>, timeout: Option<Duration>) -> Option<Delivery> {
        let mailbox = &self.shared.mailbox;
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let mut state = lock(&mailbox.state);
        loop {
            if let Some(delivery) = Mailbox::take(&mut state, out) {
                return Some(delivery);
            }
            let left = match deadline {
                None => None,
                Some(deadline) => Some(deadline.checked_duration_since(Instant::now())?),
            };
            state.blocked += 1;
            state = match left {
                None => mailbox.ready.wait(state).unwrap_or_else(PoisonError::into_inner),
                Some(left) => {
                    mailbox
                        .ready
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            state.blocked -= 1;
        }
    }
}
