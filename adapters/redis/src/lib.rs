#![cfg_attr(docsrs, feature(doc_cfg))]
//! # wsflow-redis: a broadcast hub shared by several processes through Redis pub/sub
//!
//! A [`RedisBridge`] relays the topics of a [`wsflow_io::hub::Hub`] through Redis, so that
//! several server processes, on one machine or many, share their rooms: a message published
//! with [`RedisBridge::publish`] goes to the local subscribers at once and, through Redis, to
//! the subscribers of every other process running a bridge with the same
//! [prefix](BridgeConfig::prefix).
//!
//! ```no_run
//! use wsflow_io::{hub::Hub, Message};
//! use wsflow_redis::{BridgeConfig, RedisBridge};
//!
//! # async fn run() -> Result<(), wsflow_redis::redis::RedisError> {
//! let hub = Hub::default();
//! let bridge = RedisBridge::start(hub.clone(), "redis://127.0.0.1:6379/", BridgeConfig::default())?;
//! let subscriber = hub.subscriber();
//! subscriber.subscribe("lobby");
//! bridge.publish("lobby", Message::text("hello from this process"));
//! # Ok(())
//! # }
//! ```
//!
//! ## Delivery
//! **At most once across processes.** Redis pub/sub keeps nothing: a process that is
//! disconnected from Redis misses what the others publish meanwhile, and what it publishes
//! while disconnected reaches only its own subscribers (counted in
//! [`BridgeStats::lost_outgoing`]). Within one publishing process, messages reach every
//! other process in the order they were published. Local delivery never depends on Redis.
//!
//! **A publish never blocks on Redis.** [`RedisBridge::publish`] queues the message for a
//! background task (at most [`BridgeConfig::queue_len`]; past that it counts as lost) that
//! sends what has accumulated in one pipeline.
//!
//! **Reconnects with backoff.** When Redis goes away (restart, network), both background
//! tasks retry with exponential backoff (100 ms doubling up to 5 s by default), whether or
//! not anything is published meanwhile, and resume; [`BridgeStats`] says how often the
//! bridge was disconnected and what was lost.
//!
//! **Redis is a peer like any other.** Every message read from Redis is checked (its header,
//! its size against [`BridgeConfig::max_message_size`], UTF-8 for text) and a malformed one
//! is dropped and counted, never trusted.
//!
//! ## On the wire
//! Channel `PREFIX + topic`; payload `WSF1`, the kind (`t` text, `b` binary), the sending
//! process's 16-byte random id (so that a process skips its own messages), then the message.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use wsflow_io::hub::{Hub, Published};
use wsflow_io::{Bytes, Message, PreparedMessage};

pub use redis;

const MAGIC: &[u8; 4] = b"WSF1";
const HEADER_LEN: usize = MAGIC.len() + 1 + 16;
/// Messages sent to Redis in one pipeline at most.
const PIPELINE_MAX: usize = 256;
/// How long one connection attempt or one pipeline may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// A bridge's settings.
///
/// ```
/// let mut config = wsflow_redis::BridgeConfig::default();
/// config.prefix = "chat:".into();
/// assert_eq!(config.queue_len, 10_000);
/// ```
#[derive(Clone, Debug)]
pub struct BridgeConfig {
    /// Channel prefix: bridges with the same prefix (and Redis database) share topics.
    /// Default `wsflow:`.
    pub prefix: String,
    /// Messages waiting to be sent to Redis at most; past that a publish reaches only the
    /// local subscribers (counted as lost). Default 10,000.
    pub queue_len: usize,
    /// Largest message accepted from Redis, in bytes. Default 16 MiB.
    pub max_message_size: usize,
    /// First wait before reconnecting. Default 100 ms.
    pub backoff_min: Duration,
    /// Longest wait between reconnection attempts. Default 5 s.
    pub backoff_max: Duration,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        Self {
            prefix: "wsflow:".into(),
            queue_len: 10_000,
            max_message_size: 16 << 20,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// What a bridge has done since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// Messages sent to Redis.
    pub sent: u64,
    /// Messages received from other processes and published on the local hub.
    pub received: u64,
    /// Messages published while Redis could not take them (disconnected, or the queue was
    /// full): they reached only this process's subscribers.
    pub lost_outgoing: u64,
    /// Messages from Redis that were malformed or too large, dropped.
    pub malformed: u64,
    /// Times a connection to Redis was lost or could not be made.
    pub disconnects: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    lost_outgoing: AtomicU64,
    malformed: AtomicU64,
    disconnects: AtomicU64,
    subscribed: AtomicBool,
    subscribed_changed: Notify,
}

/// Relays a hub's topics through Redis pub/sub (see the [crate docs](crate)). Dropping it
/// stops the relay.
pub struct RedisBridge {
    hub: Hub,
    prefix: String,
    origin: [u8; 16],
    outgoing: mpsc::Sender<(String, Message)>,
    counters: Arc<Counters>,
    tasks: [JoinHandle<()>; 2],
}

impl std::fmt::Debug for RedisBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBridge")
            .field("prefix", &self.prefix)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Drop for RedisBridge {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

impl RedisBridge {
    /// Starts relaying `hub`'s topics through the Redis at `url` (`redis://host:port/db`),
    /// on the current tokio runtime. Connecting happens in the background (and again after
    /// every disconnection): see [`wait_subscribed`](Self::wait_subscribed).
    ///
    /// # Errors
    /// An invalid URL.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    ///
    /// ```no_run
    /// # async fn run() {
    /// let hub = wsflow_io::hub::Hub::default();
    /// let bridge = wsflow_redis::RedisBridge::start(hub, "redis://127.0.0.1/", Default::default()).unwrap();
    /// # }
    /// ```
    pub fn start(hub: Hub, url: &str, config: BridgeConfig) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let mut origin = [0u8; 16];
        getrandom::fill(&mut origin).map_err(|error| std::io::Error::other(error.to_string()))?;
        let counters = Arc::new(Counters::default());
        let (outgoing, queue) = mpsc::channel(config.queue_len.max(1));
        let config = Arc::new(config);
        let receive = tokio::spawn(receive_loop(
            client.clone(),
            hub.clone(),
            config.clone(),
            origin,
            counters.clone(),
        ));
        let send = tokio::spawn(send_loop(client, queue, config.clone(), origin, counters.clone()));
        Ok(Self {
            hub,
            prefix: config.prefix.clone(),
            origin,
            outgoing,
            counters,
            tasks: [receive, send],
        })
    }

    /// Publishes `message` to `topic`: at once to this process's subscribers (framed once,
    /// as [`Hub::publish`]), and queued for Redis, never waiting.
    ///
    /// ```no_run
    /// # fn run(bridge: &wsflow_redis::RedisBridge) {
    /// let local = bridge.publish("lobby", wsflow_io::Message::text("hi"));
    /// println!("{} local subscribers", local.queued);
    /// # }
    /// ```
    pub fn publish(&self, topic: &str, message: Message) -> Published {
        let published = self.hub.publish_prepared(topic, &PreparedMessage::new(message.clone()));
        if self.outgoing.try_send((topic.to_owned(), message)).is_err() {
            self.counters.lost_outgoing.fetch_add(1, Ordering::Relaxed);
        }
        published
    }

    /// The hub it relays.
    ///
    /// ```no_run
    /// # fn run(bridge: &wsflow_redis::RedisBridge) {
    /// let subscriber = bridge.hub().subscriber();
    /// # }
    /// ```
    #[must_use]
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Whether the bridge is subscribed to Redis now (it receives the other processes'
    /// messages).
    ///
    /// ```no_run
    /// # fn run(bridge: &wsflow_redis::RedisBridge) {
    /// if !bridge.is_subscribed() { eprintln!("Redis unreachable: serving local clients only") }
    /// # }
    /// ```
    #[must_use]
    pub fn is_subscribed(&self) -> bool {
        self.counters.subscribed.load(Ordering::Acquire)
    }

    /// Waits until the bridge is subscribed to Redis, for at most `timeout`; returns whether
    /// it is.
    ///
    /// ```no_run
    /// # async fn run(bridge: &wsflow_redis::RedisBridge) {
    /// assert!(bridge.wait_subscribed(std::time::Duration::from_secs(5)).await);
    /// # }
    /// ```
    pub async fn wait_subscribed(&self, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let changed = self.counters.subscribed_changed.notified();
                if self.is_subscribed() {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// The counts so far.
    ///
    /// ```no_run
    /// # fn run(bridge: &wsflow_redis::RedisBridge) {
    /// let stats = bridge.stats();
    /// println!("lost while Redis was away: {}", stats.lost_outgoing);
    /// # }
    /// ```
    #[must_use]
    pub fn stats(&self) -> BridgeStats {
        let counters = &self.counters;
        BridgeStats {
            sent: counters.sent.load(Ordering::Relaxed),
            received: counters.received.load(Ordering::Relaxed),
            lost_outgoing: counters.lost_outgoing.load(Ordering::Relaxed),
            malformed: counters.malformed.load(Ordering::Relaxed),
            disconnects: counters.disconnects.load(Ordering::Relaxed),
        }
    }

    /// This process's id on the wire.
    #[doc(hidden)]
    #[must_use]
    pub fn origin(&self) -> [u8; 16] {
        self.origin
    }
}

/// The payload for Redis: header, then the message.
fn encode(origin: &[u8; 16], message: &Message) -> Vec<u8> {
    let mut payload = Vec::with_capacity(HEADER_LEN + message.len());
    payload.extend_from_slice(MAGIC);
    payload.push(match message {
        Message::Text(_) => b't',
        Message::Binary(_) => b'b',
    });
    payload.extend_from_slice(origin);
    payload.extend_from_slice(message.payload());
    payload
}

/// What a payload from Redis holds.
#[derive(Debug, PartialEq)]
enum Decoded {
    Message(Message),
    Own,
    Malformed,
}

fn decode(own: &[u8; 16], payload: &[u8], max_message_size: usize) -> Decoded {
    if payload.len() < HEADER_LEN || &payload[..4] != MAGIC || payload.len() - HEADER_LEN > max_message_size {
        return Decoded::Malformed;
    }
    if &payload[5..HEADER_LEN] == own {
        return Decoded::Own;
    }
    let body = &payload[HEADER_LEN..];
    match payload[4] {
        b't' => match std::str::from_utf8(body) {
            Ok(text) => Decoded::Message(Message::text(text)),
            Err(_) => Decoded::Malformed,
        },
        b'b' => Decoded::Message(Message::binary(Bytes::copy_from_slice(body))),
        _ => Decoded::Malformed,
    }
}

fn set_subscribed(counters: &Counters, subscribed: bool) {
    counters.subscribed.store(subscribed, Ordering::Release);
    counters.subscribed_changed.notify_waiters();
}

/// Exponential backoff between reconnection attempts: `backoff_min` doubling up to
/// `backoff_max`, back to the start after a success.
struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    fn new(config: &BridgeConfig) -> Self {
        Self {
            next: config.backoff_min,
            min: config.backoff_min,
            max: config.backoff_max,
        }
    }

    /// The wait before the next attempt; the one after that is twice as long.
    fn failed(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    fn succeeded(&mut self) {
        self.next = self.min;
    }
}

/// Subscribes to `PREFIX*` and publishes what other processes send on the local hub;
/// reconnects with backoff.
async fn receive_loop(
    client: redis::Client,
    hub: Hub,
    config: Arc<BridgeConfig>,
    origin: [u8; 16],
    counters: Arc<Counters>,
) {
    let mut backoff = Backoff::new(&config);
    loop {
        let connected = tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub()).await;
        if let Ok(Ok(mut pubsub)) = connected {
            let pattern = format!("{}*", config.prefix);
            if tokio::time::timeout(REDIS_TIMEOUT, pubsub.psubscribe(&pattern))
                .await
                .is_ok_and(|done| done.is_ok())
            {
                set_subscribed(&counters, true);
                backoff.succeeded();
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    let Some(topic) = message.get_channel_name().strip_prefix(&config.prefix) else {
                        continue;
                    };
                    match decode(&origin, message.get_payload_bytes(), config.max_message_size) {
                        Decoded::Message(message) => {
                            hub.publish(topic, message);
                            counters.received.fetch_add(1, Ordering::Relaxed);
                        }
                        Decoded::Own => {}
                        Decoded::Malformed => {
                            counters.malformed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                set_subscribed(&counters, false);
            }
        }
        counters.disconnects.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(backoff.failed()).await;
    }
}

/// Sends what `publish` queued, a pipeline at a time. While Redis is away, what is queued
/// is counted as lost, and a reconnection is tried once per backoff period whether or not
/// anything is published, so that sending resumes as soon as Redis is back.
async fn send_loop(
    client: redis::Client,
    mut queue: mpsc::Receiver<(String, Message)>,
    config: Arc<BridgeConfig>,
    origin: [u8; 16],
    counters: Arc<Counters>,
) {
    let mut connection = None;
    let mut backoff = Backoff::new(&config);
    let mut retry_at = tokio::time::Instant::now();
    let mut batch = Vec::with_capacity(PIPELINE_MAX);
    loop {
        if connection.is_none() && tokio::time::Instant::now() >= retry_at {
            match tokio::time::timeout(REDIS_TIMEOUT, client.get_multiplexed_async_connection()).await {
                Ok(Ok(made)) => {
                    connection = Some(made);
                    backoff.succeeded();
                }
                _ => {
                    counters.disconnects.fetch_add(1, Ordering::Relaxed);
                    retry_at = tokio::time::Instant::now() + backoff.failed();
                }
            }
        }
        let received = if connection.is_some() {
            queue.recv_many(&mut batch, PIPELINE_MAX).await
        } else {
            tokio::select! {
                received = queue.recv_many(&mut batch, PIPELINE_MAX) => received,
                () = tokio::time::sleep_until(retry_at) => continue,
            }
        };
        if received == 0 {
            return; // the bridge is gone
        }
        let count = batch.len() as u64;
        let Some(open) = connection.as_mut() else {
            counters.lost_outgoing.fetch_add(count, Ordering::Relaxed);
            batch.clear();
            continue;
        };
        let mut pipeline = redis::pipe();
        for (topic, message) in batch.drain(..) {
            pipeline
                .cmd("PUBLISH")
                .arg(format!("{}{topic}", config.prefix))
                .arg(encode(&origin, &message))
                .ignore();
        }
        let sent = tokio::time::timeout(REDIS_TIMEOUT, pipeline.query_async::<()>(open)).await;
        if let Ok(Ok(())) = sent {
            counters.sent.fetch_add(count, Ordering::Relaxed);
        } else {
            counters.lost_outgoing.fetch_add(count, Ordering::Relaxed);
            counters.disconnects.fetch_add(1, Ordering::Relaxed);
            connection = None;
            retry_at = tokio::time::Instant::now() + backoff.failed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_hostile_ones_are_refused() {
        let (own, other) = ([1u8; 16], [2u8; 16]);
        for message in [
            Message::text("héllo"),
            Message::binary(vec![0u8, 255]),
            Message::text(""),
        ] {
            let payload = encode(&other, &message);
            assert_eq!(decode(&own, &payload, 100), Decoded::Message(message.clone()));
            assert_eq!(decode(&other, &payload, 100), Decoded::Own);
        }
        let mut bad_utf8 = encode(&other, &Message::text("x"));
        *bad_utf8.last_mut().unwrap() = 0xff;
        let mut bad_kind = encode(&other, &Message::text("x"));
        bad_kind[4] = b'?';
        let too_big = encode(&other, &Message::binary(vec![0u8; 101]));
        for payload in [
            &b""[..],
            b"WSF1",
            b"WSF2t0123456789abcdef",
            &bad_utf8,
            &bad_kind,
            &too_big,
        ] {
            assert_eq!(decode(&own, payload, 100), Decoded::Malformed, "{payload:?}");
        }
        // Every prefix of a valid payload, and every byte flipped: no panic.
        let valid = encode(&other, &Message::text("a longer text ✓"));
        for end in 0..valid.len() {
            let _ = decode(&own, &valid[..end], 100);
        }
        for at in 0..valid.len() {
            let mut flipped = valid.clone();
            flipped[at] ^= 0xff;
            let _ = decode(&own, &flipped, 100);
        }
    }
}
