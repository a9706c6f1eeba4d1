//! The open-connection state machine (RFC 6455 §5-§7).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::config::Config;
use crate::error::{ProtocolError, SendError};
use crate::event::{CloseReason, Closed, Event};
use crate::frame::{OpCode, MAX_HEADER_LEN};
use crate::message::{CloseCode, CloseFrame, Message};
use crate::queue::EventQueue;

mod recv;
mod send;
mod timer;

use recv::{HeldInput, IncomingFrame, IncomingMessage};
use send::{Chunk, OutgoingMessage};
use timer::ping_interval;

/// Which end of the connection we are: clients mask what they send, servers must not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that opened the connection.
    Client,
    /// The end that accepted it.
    Server,
}

/// Where the connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// A close frame was sent; waiting for the peer's, or for the transport to close.
    Closing,
    /// Over: [`Event::Closed`] has been queued. The last bytes may still be written until
    /// the deadline from [`Connection::poll_timeout`] (see [`Event::Closed`]).
    Closed,
}

/// What a [`Connection`] is ready for, from [`Connection::io_state`]: a snapshot of a few
/// fields, as cheap to take as to copy (ask again after any input, command or output).
///
/// ```
/// use std::{sync::Arc, time::Instant};
/// use wsflow::{CloseCode, Config, Connection};
///
/// let now = Instant::now();
/// let mut client = Connection::client(Arc::new(Config::default()), now, [7; 32]);
/// assert!(client.io_state().can_send());
/// client.close(now, CloseCode::NORMAL, "bye").unwrap();
/// let state = client.io_state();
/// assert!(!state.can_send() && !state.events_waiting());
/// assert_eq!(state.buffered(), client.buffered_amount());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoState {
    events_waiting: bool,
    next_is_data: bool,
    can_send: bool,
    sending_fragments: bool,
    buffered: usize,
}

impl IoState {
    /// Whether an event waits to be pulled with [`Connection::poll_event`].
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use wsflow::{Config, Connection};
    ///
    /// let now = Instant::now();
    /// let mut server = Connection::server(Arc::new(Config::default()), now);
    /// assert!(!server.io_state().events_waiting());
    /// server.handle_data(now, b"\x89\x80\x00\x00\x00\x00"); // a masked, empty ping
    /// assert!(server.io_state().events_waiting());
    /// while server.poll_event().is_some() {}
    /// assert!(!server.io_state().events_waiting());
    /// ```
    #[must_use]
    #[inline]
    pub fn events_waiting(&self) -> bool {
        self.events_waiting
    }

    /// Whether the next event is a [`Message`](crate::Event::Message) or a
    /// [`Fragment`](crate::Event::Fragment), answered without building it. Adapters hand
    /// data over before writing, so that the answers to all the messages of one read go
    /// out together.
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use wsflow::{Config, Connection, Event};
    ///
    /// let now = Instant::now();
    /// let mut server = Connection::server(Arc::new(Config::default()), now);
    /// // A masked "hi", then a masked, empty ping.
    /// server.handle_data(now, b"\x81\x82\x00\x00\x00\x00hi\x89\x80\x00\x00\x00\x00");
    /// assert!(server.io_state().next_is_data());
    /// assert!(matches!(server.poll_event(), Some(Event::Message(_))));
    /// assert!(server.io_state().events_waiting() && !server.io_state().next_is_data());
    /// ```
    #[must_use]
    #[inline]
    pub fn next_is_data(&self) -> bool {
        self.next_is_data
    }

    /// Whether data may still be sent: no close frame was sent yet (a pong may still go
    /// out after ours, until the peer's arrives).
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use wsflow::{CloseCode, Config, Connection, Message, SendError};
    ///
    /// let now = Instant::now();
    /// let mut server = Connection::server(Arc::new(Config::default()), now);
    /// assert!(server.io_state().can_send());
    /// server.close(now, CloseCode::GOING_AWAY, "").unwrap();
    /// assert!(!server.io_state().can_send());
    /// assert_eq!(server.send(Message::text("late")), Err(SendError::Closed));
    /// ```
    #[must_use]
    #[inline]
    pub fn can_send(&self) -> bool {
        self.can_send
    }

    /// Whether a message sent in fragments ([`Connection::send_fragment`]) is unfinished:
    /// until its last fragment, whole messages cannot be sent
    /// ([`SendError::FragmentInProgress`](crate::SendError::FragmentInProgress)).
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use wsflow::{Config, Connection, MessageKind};
    ///
    /// let mut server = Connection::server(Arc::new(Config::default()), Instant::now());
    /// server.send_fragment(MessageKind::Binary, b"part".to_vec().into(), false).unwrap();
    /// assert!(server.io_state().sending_fragments());
    /// server.send_fragment(MessageKind::Binary, b"end".to_vec().into(), true).unwrap();
    /// assert!(!server.io_state().sending_fragments());
    /// ```
    #[must_use]
    #[inline]
    pub fn sending_fragments(&self) -> bool {
        self.sending_fragments
    }

    /// Outgoing bytes queued and not yet pulled with
    /// [`poll_transmit`](Connection::poll_transmit), as
    /// [`Connection::buffered_amount`].
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use wsflow::{Config, Connection, Message};
    ///
    /// let mut server = Connection::server(Arc::new(Config::default()), Instant::now());
    /// server.send(Message::text("hello")).unwrap();
    /// assert_eq!(server.io_state().buffered(), 7); // 2 bytes of header, 5 of text
    /// ```
    #[must_use]
    #[inline]
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// The one batching rule: answer the messages of one read in one write. The write of
    /// what was just queued may wait while events of that read are still to be pulled,
    /// and the outgoing bytes (the connection's, and the `unwritten` ones a driver took
    /// and holds) stay within `high_water_mark`. A driver that waits writes the answers
    /// to all the messages of the read together once the events run out, in one system
    /// call instead of one per answer.
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use wsflow::{Config, Connection, Message};
    ///
    /// let now = Instant::now();
    /// let mut server = Connection::server(Arc::new(Config::default()), now);
    /// // Two masked messages in one read: "a" and "b".
    /// server.handle_data(now, b"\x81\x81\x00\x00\x00\x00a\x81\x81\x00\x00\x00\x00b");
    /// let first = server.poll_message().unwrap();
    /// server.send(first).unwrap(); // an echo
    /// assert!(server.io_state().write_may_wait(0, 1 << 20)); // "b" waits: write later
    /// assert!(!server.io_state().write_may_wait(0, 2)); // over the mark: write now
    /// let second = server.poll_message().unwrap();
    /// server.send(second).unwrap();
    /// assert!(!server.io_state().write_may_wait(0, 1 << 20)); // the read is answered
    /// ```
    #[must_use]
    #[inline]
    pub fn write_may_wait(&self, unwritten: usize, high_water_mark: usize) -> bool {
        self.events_waiting && self.buffered + unwritten <= high_water_mark
    }
}

/// How far "never" is: a timeout too large to add to an `Instant` waits this long instead.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + after`, saturating at [`FAR_FUTURE`] instead of panicking on overflow.
pub(crate) fn deadline(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .unwrap_or(now)
}

#[derive(Clone, Debug)]
enum Phase {
    Open,
    /// The peer's close frame arrived (at `since`); the echo goes out once the application
    /// has pulled [`Event::CloseReceived`], so it can still answer the messages before it.
    CloseReceived {
        since: Instant,
    },
    /// The peer broke the protocol (at `since`) after frames whose events the application
    /// has not pulled yet: the failure is carried out once it has, so it can still answer
    /// them (Autobahn 4.1.3 and kin: echo, then close with 1002).
    Failing {
        error: ProtocolError,
        since: Instant,
    },
    /// We sent a close frame and wait for the peer's.
    CloseSent {
        deadline: Instant,
    },
    /// Client: the closing handshake is done; wait for the server to close TCP.
    AwaitingEof {
        deadline: Instant,
        reason: CloseReason,
    },
    /// Shutdown is queued; ignore input until EOF or the deadline, then report `reason`.
    Draining {
        deadline: Instant,
        reason: CloseReason,
    },
    /// `Closed` has been queued. Until `linger` (the close timeout after the end), the
    /// transport is still written to: what `poll_transmit` has left (a close echo, the
    /// shutdown) and what the driver took and holds. Then `handle_timeout` drops what is
    /// left, and the transport may be dropped in any case.
    Done {
        linger: Option<Instant>,
    },
}

/// A WebSocket connection after the opening handshake: a sans-IO state machine.
///
/// It never touches a socket or a clock. Four kinds of methods:
/// - getters (`&self`): [`state`](Self::state), [`buffered_amount`](Self::buffered_amount),
///   [`io_state`](Self::io_state) (what it is ready for, to batch writes), ...
/// - inputs (`handle_*`) that never fail: [`handle_data`](Self::handle_data),
///   [`handle_eof`](Self::handle_eof), [`handle_timeout`](Self::handle_timeout);
/// - commands (verbs) that return `Result`: [`send`](Self::send),
///   [`send_copied`](Self::send_copied), [`send_fragment`](Self::send_fragment),
///   [`ping`](Self::ping), [`close`](Self::close);
/// - outputs (`poll_*`): [`poll_transmit`](Self::poll_transmit),
///   [`poll_event`](Self::poll_event) (or [`poll_message`](Self::poll_message)),
///   [`poll_timeout`](Self::poll_timeout).
///
/// **The contract:** after any input or command, drain `poll_event` and then
/// `poll_transmit` (write the bytes in order; on [`Transmit::Shutdown`](crate::Transmit::Shutdown) shut down the write
/// side), then arm a timer for `poll_timeout`. Commands issued while draining events are
/// fine, and pulling [`Event::CloseReceived`] queues the close echo, so messages that
/// arrived before the peer's close frame can still be answered. A peer's violation is never an `Err`: it queues a close frame with the right code
/// and ends in [`Event::Closed`] with [`CloseReason::Failed`].
pub struct Connection {
    role: Role,
    /// On one stream of an HTTP/2 connection (RFC 8441): see [`Connection::on_http2_stream`].
    http2_stream: bool,
    config: Arc<Config>,
    masks: Option<Box<ChaCha8Rng>>,
    phase: Phase,

    /// The start of a frame header split across reads.
    partial_header: [u8; MAX_HEADER_LEN],
    partial_header_len: u8,
    frame: Option<IncomingFrame>,
    /// The payload of the current frame when it is a control frame or a whole message.
    frame_payload: Vec<u8>,
    /// (Boxed, as the close frames below: an idle connection's struct stays small.)
    message: Option<Box<IncomingMessage>>,
    /// Input set aside while too many message bytes wait to be pulled.
    held: Option<Box<HeldInput>>,
    /// When the message being received must be complete ([`Config::message_timeout`]).
    message_deadline: Option<Instant>,
    /// What the unfinished message holds of [`Config::memory_budget`].
    budget_charge: crate::budget::Charge,

    tx_buf: BytesMut,
    tx_queue: VecDeque<Chunk>,
    tx_queued: usize,
    pending_pongs: VecDeque<Bytes>,
    shutdown_queued: bool,
    outgoing: Option<OutgoingMessage>,

    close_sent: Option<Box<CloseFrame>>,
    close_received: Option<Box<CloseFrame>>,
    events: EventQueue,

    #[cfg(feature = "deflate")]
    deflate: Option<Box<crate::deflate::DeflateCodec>>,

    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
    ping_count: u32,
    last_received: Instant,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("phase", &self.phase)
            .field("buffered_amount", &self.buffered_amount())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A server-side connection over a transport whose upgrade was handled elsewhere.
    pub fn server(config: Arc<Config>, now: Instant) -> Self {
        Self::new(Role::Server, config, now, None)
    }

    /// A client-side connection over a transport whose upgrade was handled elsewhere.
    /// `entropy` seeds the generator of masking keys: give 32 bytes from a strong source
    /// (e.g. `getrandom`), as RFC 6455 §5.3 asks for unpredictable masks.
    pub fn client(config: Arc<Config>, now: Instant, entropy: [u8; 32]) -> Self {
        Self::new(
            Role::Client,
            config,
            now,
            Some(Box::new(ChaCha8Rng::from_seed(entropy))),
        )
    }

    /// Marks the connection as running on one stream of an HTTP/2 connection (RFC 8441),
    /// which [`ServerNegotiation`](crate::ServerNegotiation) and
    /// [`ClientNegotiation`](crate::ClientNegotiation) do for an extended CONNECT.
    ///
    /// The end of the stream (`END_STREAM`) stands in for TCP's close there. A server does
    /// as over TCP: it ends its stream first and waits (up to the close timeout) for the
    /// client's end. A client over TCP waits for the server to close first (RFC 6455
    /// §7.1.1, for TCP's TIME_WAIT, which HTTP/2 streams do not have), and some servers
    /// never end their stream after a close the client started (Hypercorn 0.18), which
    /// would cost a close timeout each time. So over HTTP/2 a client ends its stream (the
    /// shutdown of [`poll_transmit`](Self::poll_transmit)) and reports [`Event::Closed`] as
    /// soon as the close frames have crossed or the connection fails, without waiting for
    /// the server's end.
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use wsflow::{CloseCode, Config, Connection, Event};
    ///
    /// let now = Instant::now();
    /// let mut client = Connection::client(Arc::new(Config::default()), now, [7; 32]).on_http2_stream();
    /// client.close(now, CloseCode::NORMAL, "bye").unwrap();
    /// while client.poll_transmit().is_some() {}
    /// client.handle_data(now, &[0x88, 0x02, 0x03, 0xe8]); // the server's close frame
    /// let mut closed = None;
    /// while let Some(event) = client.poll_event() {
    ///     if let Event::Closed(end) = event {
    ///         closed = Some(end);
    ///     }
    /// }
    /// assert!(closed.is_some_and(|end| end.is_clean())); // no wait for the end of the stream
    /// ```
    #[must_use]
    pub fn on_http2_stream(mut self) -> Self {
        self.http2_stream = true;
        self
    }

    pub(crate) fn new(role: Role, config: Arc<Config>, now: Instant, masks: Option<Box<ChaCha8Rng>>) -> Self {
        let next_ping = ping_interval(&config).map(|interval| deadline(now, interval));
        Self {
            role,
            http2_stream: false,
            config,
            masks,
            phase: Phase::Open,
            partial_header: [0; MAX_HEADER_LEN],
            partial_header_len: 0,
            frame: None,
            frame_payload: Vec::new(),
            message: None,
            held: None,
            message_deadline: None,
            budget_charge: Default::default(),
            tx_buf: BytesMut::new(),
            tx_queue: VecDeque::new(),
            tx_queued: 0,
            pending_pongs: VecDeque::new(),
            shutdown_queued: false,
            outgoing: None,
            close_sent: None,
            close_received: None,
            events: EventQueue::default(),
            #[cfg(feature = "deflate")]
            deflate: None,
            next_ping,
            pong_deadline: None,
            ping_count: 0,
            last_received: now,
        }
    }

    /// Turns on permessage-deflate with the parameters the handshake agreed on.
    #[cfg(feature = "deflate")]
    pub(crate) fn set_deflate(&mut self, codec: crate::deflate::DeflateCodec) {
        self.deflate = Some(Box::new(codec));
    }

    /// Whether permessage-deflate was negotiated.
    pub fn is_compressed(&self) -> bool {
        #[cfg(feature = "deflate")]
        return self.deflate.is_some();
        #[cfg(not(feature = "deflate"))]
        false
    }

    /// The extensions in use, as a `Sec-WebSocket-Extensions` value with every agreed
    /// parameter spelled out (`permessage-deflate; server_max_window_bits=15;
    /// client_max_window_bits=15`), or `None` when none was negotiated. For logs (e.g.
    /// `wsflow-io`'s `tracing` feature); [`is_compressed`](Self::is_compressed) to test.
    pub fn extensions(&self) -> Option<String> {
        #[cfg(feature = "deflate")]
        return self.deflate.as_ref().map(|codec| codec.params().to_string());
        #[cfg(not(feature = "deflate"))]
        None
    }

    // ---- getters ----

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Open => State::Open,
            Phase::CloseReceived { .. }
            | Phase::Failing { .. }
            | Phase::CloseSent { .. }
            | Phase::AwaitingEof { .. }
            | Phase::Draining { .. } => State::Closing,
            Phase::Done { .. } => State::Closed,
        }
    }

    /// Outgoing bytes queued and not yet pulled with [`poll_transmit`](Self::poll_transmit):
    /// compare with a high-water mark for backpressure.
    #[inline]
    pub fn buffered_amount(&self) -> usize {
        self.tx_queued + self.tx_buf.len() + self.pending_pongs.iter().map(|pong| pong.len() + 6).sum::<usize>()
    }

    /// What the connection is ready for, in one cheap snapshot: whether events wait to be
    /// pulled and whether the next is data, whether data may be sent, and how many bytes
    /// are queued. Adapters ask it on every send and receive, to batch writes (see
    /// [`IoState::write_may_wait`]).
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use wsflow::{Config, Connection};
    ///
    /// let mut server = Connection::server(Arc::new(Config::default()), Instant::now());
    /// let state = server.io_state();
    /// assert!(!state.events_waiting() && state.can_send() && state.buffered() == 0);
    /// server.handle_data(Instant::now(), b"\x81\x82\x00\x00\x00\x00hi"); // a masked "hi"
    /// assert!(server.io_state().events_waiting() && server.io_state().next_is_data());
    /// ```
    #[must_use]
    #[inline]
    pub fn io_state(&self) -> IoState {
        IoState {
            events_waiting: !self.events.is_empty() || self.held.is_some(),
            next_is_data: self.events.next_is_data(),
            can_send: self.can_send(),
            sending_fragments: self.outgoing.is_some(),
            buffered: self.buffered_amount(),
        }
    }

    /// Whether a pong may go out: until the peer's close frame arrived (§5.5.2), even
    /// after ours was sent.
    fn can_send_pong(&self) -> bool {
        self.can_send() || matches!(self.phase, Phase::CloseSent { .. })
    }

    /// Whether data may still be sent (no close frame sent yet).
    #[inline]
    fn can_send(&self) -> bool {
        matches!(
            self.phase,
            Phase::Open | Phase::CloseReceived { .. } | Phase::Failing { .. }
        )
    }

    // ---- inputs ----

    /// Reports that the transport was closed by the peer (read returned 0).
    /// If input is held (see [`handle_data`](Self::handle_data)), the end is carried out
    /// after it has been taken up.
    pub fn handle_eof(&mut self, now: Instant) {
        if let Some(held) = self.held.as_mut() {
            held.eof.get_or_insert(now);
            return;
        }
        self.carry_out_deferred_failure();
        match std::mem::replace(&mut self.phase, Phase::Done { linger: None }) {
            Phase::Open | Phase::CloseReceived { .. } | Phase::Failing { .. } | Phase::CloseSent { .. } => {
                self.queue_shutdown();
                self.finish(now, CloseReason::Eof);
            }
            Phase::AwaitingEof { reason, .. } => {
                self.queue_shutdown();
                self.finish(now, reason);
            }
            Phase::Draining { reason, .. } => self.finish(now, reason),
            done @ Phase::Done { .. } => self.phase = done,
        }
    }

    // ---- commands ----

    /// Starts the closing handshake: queues a close frame and waits (up to
    /// [`Config::close_timeout`]) for the peer's.
    ///
    /// # Errors
    /// [`SendError::Closed`] if a close frame was already sent;
    /// [`SendError::InvalidCloseCode`] for a code that may not be sent;
    /// [`SendError::CloseReasonTooLong`] over 123 bytes.
    pub fn close(&mut self, now: Instant, code: CloseCode, reason: &str) -> Result<(), SendError> {
        if matches!(self.phase, Phase::Failing { .. }) {
            // The peer already broke the protocol: its failure (and close code) wins.
            self.carry_out_deferred_failure();
            return Err(SendError::Closed);
        }
        self.check_can_send()?;
        if !code.is_sendable() {
            return Err(SendError::InvalidCloseCode(code.as_u16()));
        }
        if reason.len() > CloseFrame::MAX_REASON_LEN {
            return Err(SendError::CloseReasonTooLong(reason.len()));
        }
        if let Phase::CloseReceived { since } = self.phase {
            // The application answers the peer's close with its own code.
            self.queue_close_frame(code, reason);
            self.handshake_complete(since);
        } else {
            self.start_close(now, code, reason);
        }
        Ok(())
    }

    // ---- outputs ----

    /// The next event, or `None`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(message) = self.events.pop_small() {
            return Some(Event::Message(message));
        }
        self.poll_other_event()
    }

    /// The next event if it is a whole [`Message`](Event::Message), or `None`: then
    /// call [`poll_event`](Self::poll_event), which has the other events (and carries
    /// out what an empty queue means, such as a deferred failure). For loops that take
    /// messages as they come, as the adapters' `recv_message` does: no `Event` to unwrap.
    #[must_use]
    #[inline]
    pub fn poll_message(&mut self) -> Option<Message> {
        self.events.pop_message()
    }

    /// [`poll_event`](Self::poll_event) past the hot path (small messages).
    fn poll_other_event(&mut self) -> Option<Event> {
        let mut event = self.events.pop();
        if event.is_none() && self.held.is_some() {
            self.resume_held_input();
            event = self.events.pop();
        }
        if let (Some(Event::CloseReceived(_)), Phase::CloseReceived { since }) = (&event, &self.phase) {
            let since = *since;
            self.echo_close(since);
        }
        if event.is_none() {
            // The application has seen everything that came before a violation.
            self.carry_out_deferred_failure();
        }
        event
    }

    // ---- phase transitions ----

    fn on_close_received(&mut self, now: Instant, frame: Option<CloseFrame>) {
        self.close_received = frame.clone().map(Box::new);
        self.events.push(Event::CloseReceived(frame));
        self.drop_receive_state();
        match self.phase {
            Phase::Open => self.phase = Phase::CloseReceived { since: now },
            _ => self.handshake_complete(now),
        }
    }

    /// Answers the peer's close frame: echoes its status code (§5.5.1), or an empty close
    /// for an empty one.
    fn echo_close(&mut self, since: Instant) {
        match self.close_received.as_ref().map(|frame| frame.code) {
            Some(code) => self.queue_close_frame(code, ""),
            None => self.queue_frame(OpCode::Close, true, &Bytes::new()),
        }
        self.handshake_complete(since);
    }

    fn handshake_complete(&mut self, now: Instant) {
        let deadline = deadline(now, self.config.close_timeout);
        self.drop_receive_state();
        if self.http2_client() {
            self.queue_shutdown();
            return self.finish(now, CloseReason::Clean);
        }
        self.phase = match self.role {
            // §7.1.1: the server closes TCP first; the client waits for it.
            Role::Server => {
                self.queue_shutdown();
                Phase::Draining {
                    deadline,
                    reason: CloseReason::Clean,
                }
            }
            Role::Client => Phase::AwaitingEof {
                deadline,
                reason: CloseReason::Clean,
            },
        };
    }

    /// Fails the connection (§7.1.7), once the application has pulled the events of the
    /// frames that came before the violation (at the next `poll_event` returning `None` or
    /// `poll_transmit` with no event left).
    fn fail(&mut self, now: Instant, error: ProtocolError) {
        if matches!(self.phase, Phase::Open) && !self.events.is_empty() {
            self.drop_receive_state();
            self.phase = Phase::Failing { error, since: now };
        } else {
            self.fail_now(now, error);
        }
    }

    fn carry_out_deferred_failure(&mut self) {
        if let Phase::Failing { error, since } = &self.phase {
            let (error, since) = (error.clone(), *since);
            self.phase = Phase::Open;
            self.fail_now(since, error);
        }
    }

    /// Fails the connection now: close frame with the error's code, then shutdown.
    fn fail_now(&mut self, now: Instant, error: ProtocolError) {
        let text = error.to_string();
        self.end_with(
            now,
            error.close_code(),
            truncate_reason(&text),
            CloseReason::Failed(error),
        );
    }

    /// Ends the connection on one of our timers that cuts it short: close frame with `code`
    /// and `text`, then shutdown.
    fn fail_with_timeout(&mut self, now: Instant, code: CloseCode, text: &str, timeout: crate::event::Timeout) {
        self.end_with(now, code, text, CloseReason::TimedOut(timeout));
    }

    /// Queues a close frame (if none was sent) and the shutdown; `Closed` with `reason` follows
    /// at the peer's end of stream or the close timeout.
    fn end_with(&mut self, now: Instant, code: CloseCode, text: &str, reason: CloseReason) {
        if matches!(self.phase, Phase::Open) {
            self.queue_close_frame(code, text);
        }
        self.drop_receive_state();
        self.queue_shutdown();
        if self.http2_client() {
            return self.finish(now, reason);
        }
        self.phase = Phase::Draining {
            deadline: deadline(now, self.config.close_timeout),
            reason,
        };
    }

    /// A client on an HTTP/2 stream: see [`Connection::on_http2_stream`].
    fn http2_client(&self) -> bool {
        self.http2_stream && self.role == Role::Client
    }

    fn drop_receive_state(&mut self) {
        self.message_deadline = None;
        self.budget_charge.release();
        self.partial_header_len = 0;
        self.frame_payload = Vec::new();
        self.frame = None;
        self.message = None;
    }

    /// The end: `Closed` is queued, and the transport lingers for at most the close
    /// timeout while the last bytes are written (see [`Event::Closed`]).
    fn finish(&mut self, now: Instant, reason: CloseReason) {
        self.phase = Phase::Done {
            linger: Some(deadline(now, self.config.close_timeout)),
        };
        self.drop_receive_state();
        self.events.push(Event::Closed(Box::new(Closed {
            sent: self.close_sent.as_deref().cloned(),
            received: self.close_received.as_deref().cloned(),
            reason,
        })));
    }

    fn start_close(&mut self, now: Instant, code: CloseCode, reason: &str) {
        self.queue_close_frame(code, reason);
        self.phase = Phase::CloseSent {
            deadline: deadline(now, self.config.close_timeout),
        };
    }
}

/// The longest prefix of `reason` that fits a close frame, cut at a character boundary.
fn truncate_reason(reason: &str) -> &str {
    let mut end = reason.len().min(CloseFrame::MAX_REASON_LEN);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}
