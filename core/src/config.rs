//! Connection settings, shared between connections through an `Arc`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::budget::MemoryBudget;
use crate::frame::FrameHeader;

/// Which way a frame went, for a [`FrameObserver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameDirection {
    /// Read from the peer.
    Received,
    /// Queued to be sent to the peer.
    Sent,
}

/// Called with the header of every frame a connection reads or queues: a frame log for
/// tools (the `wsflow` command's `-v`), see [`Config::frame_observer`].
pub type FrameObserver = Arc<dyn Fn(FrameDirection, &FrameHeader) + Send + Sync>;

/// The observer as a field: `Debug` without printing the closure.
#[derive(Clone, Default)]
pub(crate) struct ObserverSlot(pub(crate) Option<FrameObserver>);

impl fmt::Debug for ObserverSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Some(FrameObserver)"
        } else {
            "None"
        })
    }
}

/// Limits, timers and behaviour switches for connections and handshakes.
///
/// The defaults suit a general-purpose server or client: 64 MiB messages and frames,
/// 131,072 fragments a message, automatic pongs, a 10 s handshake and close timeout, no
/// keepalive and no idle timeout.
///
/// ```
/// use std::time::Duration;
/// let mut config = wsflow::Config::default();
/// config.max_message_size(1 << 20).ping_interval(Some(Duration::from_secs(20)));
/// assert_eq!(config.get_max_message_size(), 1 << 20);
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) max_message_size: usize,
    pub(crate) max_frame_size: usize,
    pub(crate) max_fragments: usize,
    pub(crate) max_waiting_size: usize,
    pub(crate) message_timeout: Option<Duration>,
    pub(crate) streaming: bool,
    pub(crate) auto_pong: bool,
    pub(crate) outgoing_frame_size: Option<usize>,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) pong_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) close_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_handshake_size: usize,
    pub(crate) max_headers: usize,
    #[cfg(feature = "deflate")]
    pub(crate) deflate: Option<crate::deflate::DeflateConfig>,
    pub(crate) frame_observer: ObserverSlot,
    pub(crate) memory_budget: Option<MemoryBudget>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_message_size: 64 << 20,
            max_frame_size: 64 << 20,
            max_fragments: 1 << 17,
            max_waiting_size: 1 << 20,
            message_timeout: None,
            streaming: false,
            auto_pong: true,
            outgoing_frame_size: None,
            ping_interval: None,
            pong_timeout: Duration::from_secs(20),
            idle_timeout: None,
            close_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            max_handshake_size: 16 << 10,
            max_headers: 64,
            #[cfg(feature = "deflate")]
            deflate: None,
            frame_observer: ObserverSlot(None),
            memory_budget: None,
        }
    }
}

impl Config {
    /// Shares `budget` among every connection made with this config (and any other config
    /// holding a clone of it): together they hold at most its limit in unfinished incoming
    /// messages, and a connection that would pass it is failed with 1013 (see
    /// [`MemoryBudget`]). `None` (the default): each connection is bounded only by its own
    /// limits.
    ///
    /// ```
    /// let budget = wsflow::MemoryBudget::new(256 << 20);
    /// let mut config = wsflow::Config::default();
    /// config.memory_budget(Some(budget.clone()));
    /// assert_eq!(config.get_memory_budget().map(|budget| budget.limit()), Some(256 << 20));
    /// ```
    pub fn memory_budget(&mut self, budget: Option<MemoryBudget>) -> &mut Self {
        self.memory_budget = budget;
        self
    }

    /// The value set by [`Config::memory_budget`].
    pub fn get_memory_budget(&self) -> Option<&MemoryBudget> {
        self.memory_budget.as_ref()
    }

    /// Calls `observer` with the header of every frame a connection with this config reads
    /// (as soon as the header is complete) or queues to send, control frames included: a
    /// frame log for debugging tools. Off (`None`) by default; while it is set, runs of small
    /// messages are read frame by frame (no fast path), so leave it off where speed matters.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Instant;
    /// use wsflow::{Config, Connection, FrameDirection, Message};
    ///
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let mut config = Config::default();
    /// let seen = log.clone();
    /// config.frame_observer(Some(Arc::new(move |direction, header: &wsflow::frame::FrameHeader| {
    ///     seen.lock().unwrap().push((direction, header.opcode, header.fin, header.payload_len));
    /// })));
    /// let mut server = Connection::server(Arc::new(config), Instant::now());
    /// server.send(Message::text("hi")).unwrap();
    /// assert_eq!(
    ///     log.lock().unwrap()[0],
    ///     (FrameDirection::Sent, wsflow::frame::OpCode::Text, true, 2)
    /// );
    /// ```
    pub fn frame_observer(&mut self, observer: Option<FrameObserver>) -> &mut Self {
        self.frame_observer = ObserverSlot(observer);
        self
    }

    /// Tells the observer, if any, about a frame.
    #[inline]
    pub(crate) fn observe(&self, direction: FrameDirection, header: &FrameHeader) {
        if let Some(observer) = &self.frame_observer.0 {
            observer(direction, header);
        }
    }
}

macro_rules! settings {
    ($($(#[$doc:meta])* $name:ident / $getter:ident: $ty:ty;)*) => {
        impl Config {
            $(
                $(#[$doc])*
                pub fn $name(&mut self, value: $ty) -> &mut Self {
                    self.$name = value;
                    self
                }

                #[doc = concat!("The value set by [`Config::", stringify!($name), "`].")]
                pub fn $getter(&self) -> $ty {
                    self.$name
                }
            )*
        }
    };
}

settings! {
    /// Largest message accepted, in bytes (after decompression); a bigger one fails the
    /// connection with 1009, detected from frame headers before any payload is buffered.
    max_message_size / get_max_message_size: usize;
    /// Largest single frame accepted, in bytes (1009 beyond it).
    max_frame_size / get_max_frame_size: usize;
    /// Most fragments accepted in one message (1009 beyond it). Bounds the work that many
    /// tiny fragments can cost.
    max_fragments / get_max_fragments: usize;
    /// Most message bytes that may wait to be pulled (with
    /// [`Connection::poll_event`](crate::Connection::poll_event)) before the connection stops
    /// taking input; 1 MiB by default. Past it, the rest of a read is set aside unparsed (no
    /// bigger than the read) and taken up again as the application pulls events, so that
    /// one read of small compressed messages that each inflate to a lot cannot fill memory
    /// (a deflate bomb spread over many messages): a connection holds at most this much plus
    /// one message (one inflate step of 64 KiB in streaming mode) plus one read. Messages that
    /// arrive whole and small are not counted (they never outgrow the read that brought them).
    ///
    /// ```
    /// let mut config = wsflow::Config::default();
    /// config.max_waiting_size(256 << 10);
    /// assert_eq!(config.get_max_waiting_size(), 256 << 10);
    /// ```
    max_waiting_size / get_max_waiting_size: usize;
    /// Fail the connection (1008, [`Timeout::Message`](crate::Timeout::Message)) when a
    /// message that has started (its first frame header has arrived) is not complete this
    /// long after; `None` (the default) waits forever. A peer that trickles a large message,
    /// or never sends the last fragment, holds the connection's reassembly buffer only this
    /// long (what other servers call a fragment or message timeout).
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut config = wsflow::Config::default();
    /// config.message_timeout(Some(Duration::from_secs(30)));
    /// assert_eq!(config.get_message_timeout(), Some(Duration::from_secs(30)));
    /// ```
    message_timeout / get_message_timeout: Option<Duration>;
    /// Deliver data frames as [`Event::Fragment`](crate::Event::Fragment)s as their bytes
    /// arrive instead of reassembled messages: memory stays bounded by the read size.
    streaming / get_streaming: bool;
    /// Answer pings automatically (the latest ping of a burst is answered).
    auto_pong / get_auto_pong: bool;
    /// Split outgoing messages into frames of at most this many payload bytes.
    outgoing_frame_size / get_outgoing_frame_size: Option<usize>;
    /// Send a keepalive ping this long after the previous one.
    ping_interval / get_ping_interval: Option<Duration>;
    /// Fail the connection (1011) if no pong arrives this long after a keepalive ping.
    pong_timeout / get_pong_timeout: Duration;
    /// Start a closing handshake (1001) when no data (no message, no fragment's bytes)
    /// arrives for this long. Pings and pongs do not count, so keepalive does not keep an
    /// idle peer open.
    idle_timeout / get_idle_timeout: Option<Duration>;
    /// How long to wait for the peer's close frame, or a client for the server's TCP close.
    close_timeout / get_close_timeout: Duration;
    /// How long the opening handshake may take.
    handshake_timeout / get_handshake_timeout: Duration;
    /// Largest HTTP head (request or response line plus headers) accepted, in bytes (431).
    max_handshake_size / get_max_handshake_size: usize;
    /// Most HTTP headers accepted in a handshake (431).
    max_headers / get_max_headers: usize;
}

#[cfg(feature = "deflate")]
impl Config {
    /// Enables permessage-deflate (RFC 7692): a client offers it, a server accepts a
    /// client's offer. `None` (the default) turns it off.
    pub fn deflate(&mut self, deflate: Option<crate::deflate::DeflateConfig>) -> &mut Self {
        self.deflate = deflate;
        self
    }

    /// The value set by [`Config::deflate`].
    pub fn get_deflate(&self) -> Option<&crate::deflate::DeflateConfig> {
        self.deflate.as_ref()
    }
}
