//! The open-connection state machine (RFC 6455 §5-§7).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::config::Config;
use crate::error::{ProtocolError, SendError};
use crate::event::{CloseReason, Closed, Event, Timeout, Transmit};
use crate::frame::{apply_mask, extend_unmasked, FrameHeader, OpCode, MAX_HEADER_LEN};
use crate::message::{CloseCode, CloseFrame, Message, MessageKind, Utf8Bytes};
use crate::queue::{EventQueue, SMALL_MESSAGE_MAX};
use crate::utf8::Utf8Validator;

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
    /// Over: [`Event::Closed`] has been queued.
    Closed,
}

/// Payloads at least this long are sent as their own chunk: a server's without a copy, a
/// client's masked in one pass (not copied into the send buffer, then masked there).
const OWN_CHUNK_MIN: usize = 4096;
/// A frame's payload as the sender holds it.
#[derive(Clone, Copy)]
enum Payload<'a> {
    /// Shared: a big one goes out as it is (unless masked), without a copy.
    Shared(&'a Bytes),
    /// Borrowed: copied (masked on the way by a client).
    Borrowed(&'a [u8]),
}

impl Payload<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Self::Shared(bytes) => bytes,
            Self::Borrowed(bytes) => bytes,
        }
    }
}

/// The least room a fresh send buffer gets.
const TX_BUF_MIN: usize = 512;
/// A message in one frame that spans reads gets room for this much of its announced length
/// when its first bytes arrive (whole frames up to 1 MiB: one allocation, no regrowth
/// copies); a peer that announces a huge frame and sends little commits no more than this.
const RESERVE_AHEAD: usize = 1 << 20;
/// How far "never" is: a timeout too large to add to an `Instant` waits this long instead.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + after`, saturating at [`FAR_FUTURE`] instead of panicking on overflow.
pub(crate) fn deadline(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .unwrap_or(now)
}

/// The keepalive interval, if any (a zero interval would ping in a busy loop: none).
fn ping_interval(config: &Config) -> Option<Duration> {
    config.ping_interval.filter(|interval| !interval.is_zero())
}

/// In streaming mode a compressed message is inflated and delivered this much at a time.
const STREAMED_INFLATE_STEP: usize = 64 << 10;
/// Pongs waiting to be sent; past this, the oldest is dropped (only the latest ping must be answered).
const MAX_PENDING_PONGS: usize = 16;

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
    /// `Closed` has been queued.
    Done,
}

/// The frame whose payload is arriving.
#[derive(Clone, Copy, Debug)]
struct IncomingFrame {
    opcode: OpCode,
    fin: bool,
    mask: Option<[u8; 4]>,
    len: usize,
    /// Payload bytes received so far.
    received: usize,
    /// Set when this frame is a whole message (final, uncompressed, not streamed): it
    /// collects in `frame_payload` and needs no [`IncomingMessage`] (an allocation per
    /// message that spans reads).
    whole_message: Option<MessageKind>,
    /// The text of a whole-message frame so far, validated as it arrives.
    utf8: Utf8Validator,
}

/// The data message being received, when it may span frames (fragmented, compressed
/// or streamed).
#[derive(Debug)]
struct IncomingMessage {
    kind: MessageKind,
    size: usize,
    fragments: usize,
    /// Earlier fragments (reassembly mode only).
    assembled: Vec<u8>,
    utf8: Utf8Validator,
    /// RSV1 was set on the first frame: the payload is deflated (RFC 7692).
    compressed: bool,
    /// Inflated bytes of a compressed message (reassembly mode), or their count (streaming).
    #[cfg(feature = "deflate")]
    inflated: Vec<u8>,
    #[cfg(feature = "deflate")]
    inflated_len: usize,
}

impl IncomingMessage {
    fn new(kind: MessageKind, compressed: bool) -> Self {
        Self {
            kind,
            size: 0,
            fragments: 0,
            assembled: Vec::new(),
            utf8: Utf8Validator::new(),
            compressed,
            #[cfg(feature = "deflate")]
            inflated: Vec::new(),
            #[cfg(feature = "deflate")]
            inflated_len: 0,
        }
    }
}

/// A piece of outgoing bytes; pongs may be slipped in only where a frame starts.
#[derive(Debug)]
struct Chunk {
    bytes: Bytes,
    starts_frame: bool,
}

/// The outgoing message being sent in fragments.
#[derive(Debug)]
struct OutgoingMessage {
    kind: MessageKind,
    utf8: Utf8Validator,
}

/// A WebSocket connection after the opening handshake: a sans-IO state machine.
///
/// It never touches a socket or a clock. Four kinds of methods:
/// - getters (`&self`): [`state`](Self::state), [`buffered_amount`](Self::buffered_amount), ...
/// - inputs (`handle_*`) that never fail: [`handle_data`](Self::handle_data),
///   [`handle_eof`](Self::handle_eof), [`handle_timeout`](Self::handle_timeout);
/// - commands (verbs) that return `Result`: [`send`](Self::send),
///   [`send_fragment`](Self::send_fragment), [`ping`](Self::ping), [`close`](Self::close);
/// - outputs (`poll_*`): [`poll_transmit`](Self::poll_transmit),
///   [`poll_event`](Self::poll_event), [`poll_timeout`](Self::poll_timeout).
///
/// **The contract:** after any input or command, drain `poll_event` and then
/// `poll_transmit` (write the bytes in order; on [`Transmit::Shutdown`] shut down the write
/// side), then arm a timer for `poll_timeout`. Commands issued while draining events are
/// fine, and pulling [`Event::CloseReceived`] queues the close echo, so messages that
/// arrived before the peer's close frame can still be answered. A peer's violation is never an `Err`: it queues a close frame with the right code
/// and ends in [`Event::Closed`] with [`CloseReason::Failed`].
pub struct Connection {
    role: Role,
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

    pub(crate) fn new(role: Role, config: Arc<Config>, now: Instant, masks: Option<Box<ChaCha8Rng>>) -> Self {
        let next_ping = ping_interval(&config).map(|interval| deadline(now, interval));
        Self {
            role,
            config,
            masks,
            phase: Phase::Open,
            partial_header: [0; MAX_HEADER_LEN],
            partial_header_len: 0,
            frame: None,
            frame_payload: Vec::new(),
            message: None,
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

    /// Queues bytes to go out before anything else (the handshake response).
    pub(crate) fn queue_raw(&mut self, bytes: Bytes) {
        // Not a frame start: no pong may be slipped in front of the handshake response.
        self.push_chunk(bytes, false);
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
            Phase::Done => State::Closed,
        }
    }

    /// Outgoing bytes queued and not yet pulled with [`poll_transmit`](Self::poll_transmit):
    /// compare with a high-water mark for backpressure.
    pub fn buffered_amount(&self) -> usize {
        self.tx_queued + self.tx_buf.len() + self.pending_pongs.iter().map(|pong| pong.len() + 6).sum::<usize>()
    }

    /// The event [`poll_event`](Self::poll_event) would return next, if one is queued
    /// (without pulling it: pulling a close notice queues the close echo). Adapters hold
    /// back writes while the application works through the messages of one read, so the
    /// answers to all of them go out together.
    pub fn peek_event(&mut self) -> Option<&Event> {
        self.events.peek()
    }

    /// Whether an event is waiting to be pulled: cheaper than
    /// [`peek_event`](Self::peek_event)`.is_some()`, which builds the next message.
    #[must_use]
    #[inline]
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Whether the write of what was just queued may wait: events of the last read are
    /// still to be pulled, and the outgoing bytes (this connection's and the `unwritten`
    /// ones a driver took and holds) stay within `high_water_mark`. A driver that waits
    /// writes the answers to all the messages of one read together, once the events run
    /// out, in one system call instead of one per answer.
    #[must_use]
    #[inline]
    pub fn write_may_wait(&self, unwritten: usize, high_water_mark: usize) -> bool {
        self.has_events() && self.buffered_amount() + unwritten <= high_water_mark
    }

    /// Whether the next event is a [`Message`](Event::Message) or a
    /// [`Fragment`](Event::Fragment), answered without building it. Adapters hand data
    /// over before writing, so that the answers to all the messages of one read go out
    /// together.
    #[must_use]
    #[inline]
    pub fn next_event_is_data(&self) -> bool {
        self.events.next_is_data()
    }

    /// Whether a pong may go out: until the peer's close frame arrived (§5.5.2), even
    /// after ours was sent.
    fn can_send_pong(&self) -> bool {
        self.can_send() || matches!(self.phase, Phase::CloseSent { .. })
    }

    /// Whether data may still be sent (no close frame sent yet).
    pub fn can_send(&self) -> bool {
        matches!(
            self.phase,
            Phase::Open | Phase::CloseReceived { .. } | Phase::Failing { .. }
        )
    }

    // ---- inputs ----

    /// Feeds bytes read from the transport. Never fails: violations close the connection.
    ///
    /// Payload bytes are copied (and unmasked in the same pass) straight into the buffer of
    /// the message they belong to; nothing else of `data` is kept.
    pub fn handle_data(&mut self, now: Instant, data: &[u8]) {
        if data.is_empty() || !self.reads_frames() {
            return;
        }
        self.last_received = now;
        self.process_received(now, data);
    }

    /// Reports that the transport was closed by the peer (read returned 0).
    pub fn handle_eof(&mut self, _now: Instant) {
        self.carry_out_deferred_failure();
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Open | Phase::CloseReceived { .. } | Phase::Failing { .. } | Phase::CloseSent { .. } => {
                self.queue_shutdown();
                self.finish(CloseReason::Eof);
            }
            Phase::AwaitingEof { reason, .. } => {
                self.queue_shutdown();
                self.finish(reason);
            }
            Phase::Draining { reason, .. } => self.finish(reason),
            Phase::Done => {}
        }
    }

    /// Reports that the time from [`poll_timeout`](Self::poll_timeout) has come. Early or
    /// repeated calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase.clone() {
            Phase::Open => {
                if self.pong_deadline.is_some_and(|deadline| now >= deadline) {
                    self.pong_deadline = None;
                    self.queue_close_frame(CloseCode::INTERNAL_ERROR, "keepalive ping timeout");
                    self.queue_shutdown();
                    self.phase = Phase::Done;
                    self.finish(CloseReason::TimedOut(Timeout::Keepalive));
                    return;
                }
                if let Some(idle) = self.config.idle_timeout {
                    if now >= deadline(self.last_received, idle) {
                        self.start_close(now, CloseCode::GOING_AWAY, "idle timeout");
                        return;
                    }
                }
                if self.next_ping.is_some_and(|at| now >= at) {
                    self.send_keepalive_ping(now);
                }
            }
            Phase::CloseSent { deadline } if now >= deadline => {
                self.queue_shutdown();
                self.phase = Phase::Done;
                self.finish(CloseReason::TimedOut(Timeout::Close));
            }
            Phase::AwaitingEof { deadline, reason } if now >= deadline => {
                self.queue_shutdown();
                self.phase = Phase::Done;
                self.finish(reason);
            }
            Phase::Draining { deadline, reason } if now >= deadline => {
                self.phase = Phase::Done;
                self.finish(reason);
            }
            _ => {}
        }
    }

    // ---- commands ----

    /// Sends a whole message (split into frames of
    /// [`Config::outgoing_frame_size`] if set).
    ///
    /// # Errors
    /// [`SendError::Closed`] after a close frame was sent, [`SendError::FragmentInProgress`]
    /// while a message is being sent in fragments.
    pub fn send(&mut self, message: Message) -> Result<(), SendError> {
        self.send_message(message, true)
    }

    /// Sends a whole message without compressing it, even when permessage-deflate was
    /// negotiated (for data that does not compress, such as images).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_uncompressed(&mut self, message: Message) -> Result<(), SendError> {
        self.send_message(message, false)
    }

    fn send_message(&mut self, message: Message, may_compress: bool) -> Result<(), SendError> {
        self.check_can_start_message()?;
        let opcode = match message.kind() {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        };
        let (payload, mut rsv) = self.maybe_compress(message.into_payload(), may_compress);
        match self.config.outgoing_frame_size {
            Some(size) if size > 0 && payload.len() > size => {
                let mut offset = 0;
                let mut opcode = opcode;
                while offset < payload.len() {
                    let end = (offset + size).min(payload.len());
                    let frame = payload.slice(offset..end);
                    self.queue_frame_rsv(opcode, end == payload.len(), rsv, Payload::Shared(&frame));
                    (opcode, rsv) = (OpCode::Continuation, 0);
                    offset = end;
                }
            }
            _ => self.queue_frame_rsv(opcode, true, rsv, Payload::Shared(&payload)),
        }
        Ok(())
    }

    /// The payload to send and its RSV bits: deflated (RSV1) when negotiated, allowed and
    /// worth it.
    fn maybe_compress(&mut self, payload: Bytes, may_compress: bool) -> (Bytes, u8) {
        #[cfg(feature = "deflate")]
        if let Some(codec) = self
            .deflate
            .as_mut()
            .filter(|codec| may_compress && codec.wants(payload.len()))
        {
            return (Bytes::from(codec.compress(&payload)), 0b100);
        }
        let _ = may_compress;
        (payload, 0)
    }

    /// Sends a text message.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), SendError> {
        self.send(Message::Text(text.into()))
    }

    /// Sends a binary message.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), SendError> {
        self.send(Message::Binary(data.into()))
    }

    /// Sends a text message copied from `text`, for text held only borrowed (a reused
    /// buffer, a slice of a larger one). A message that goes out whole and uncompressed is
    /// copied once: under 4 KiB straight into the send buffer (no allocation, no reference
    /// count), else into a buffer of its own (masked on the way by a client). Others are
    /// sent as [`send_text`](Self::send_text) with a copy.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_text_copied(&mut self, text: &str) -> Result<(), SendError> {
        if self.sends_whole_uncompressed(text.len()) {
            self.send_borrowed(OpCode::Text, text.as_bytes())
        } else {
            self.send_text(text)
        }
    }

    /// Sends a binary message copied from `data`, as
    /// [`send_text_copied`](Self::send_text_copied) does text.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_binary_copied(&mut self, data: &[u8]) -> Result<(), SendError> {
        if self.sends_whole_uncompressed(data.len()) {
            self.send_borrowed(OpCode::Binary, data)
        } else {
            self.send_binary(Bytes::copy_from_slice(data))
        }
    }

    /// Whether a message of `len` bytes goes out in one uncompressed frame.
    fn sends_whole_uncompressed(&self, len: usize) -> bool {
        #[cfg(feature = "deflate")]
        if self.deflate.as_ref().is_some_and(|codec| codec.wants(len)) {
            return false;
        }
        self.config
            .outgoing_frame_size
            .is_none_or(|size| size == 0 || len <= size)
    }

    fn send_borrowed(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), SendError> {
        self.check_can_start_message()?;
        self.queue_frame_rsv(opcode, true, 0, Payload::Borrowed(payload));
        Ok(())
    }

    /// Sends one fragment of a message; `fin` ends the message. Control frames and pongs
    /// may go out between fragments. Text fragments may split code points, but the message
    /// as a whole must be UTF-8.
    ///
    /// # Errors
    /// [`SendError::Closed`] after a close frame was sent; [`SendError::FragmentInProgress`]
    /// when `kind` differs from the message in progress; [`SendError::InvalidUtf8`] when a
    /// text fragment cannot be part of valid UTF-8 (nothing is sent).
    pub fn send_fragment(&mut self, kind: MessageKind, data: Bytes, fin: bool) -> Result<(), SendError> {
        self.check_can_send()?;
        let (opcode, mut utf8) = match &self.outgoing {
            Some(outgoing) if outgoing.kind != kind => return Err(SendError::FragmentInProgress),
            Some(outgoing) => (OpCode::Continuation, outgoing.utf8),
            None if kind == MessageKind::Text => (OpCode::Text, Utf8Validator::new()),
            None => (OpCode::Binary, Utf8Validator::new()),
        };
        if kind == MessageKind::Text {
            utf8.feed(&data).map_err(|_| SendError::InvalidUtf8)?;
            if fin {
                utf8.finish().map_err(|_| SendError::InvalidUtf8)?;
            }
        }
        self.outgoing = (!fin).then_some(OutgoingMessage { kind, utf8 });
        self.queue_frame(opcode, fin, &data);
        Ok(())
    }

    /// Sends a ping.
    ///
    /// # Errors
    /// [`SendError::ControlPayloadTooLong`] over 125 bytes; [`SendError::Closed`] after a
    /// close frame was sent.
    pub fn ping(&mut self, payload: Bytes) -> Result<(), SendError> {
        self.send_control(OpCode::Ping, payload)
    }

    /// Sends an unsolicited pong (or a manual answer when automatic pongs are off).
    ///
    /// # Errors
    /// As [`ping`](Self::ping).
    pub fn pong(&mut self, payload: Bytes) -> Result<(), SendError> {
        self.send_control(OpCode::Pong, payload)
    }

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

    /// The next bytes to write, or `None` when nothing is queued.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if self.events.is_empty() {
            // Every event before a violation has been pulled (and answered, if the
            // application chose to): now the failure's close frame may go out.
            self.carry_out_deferred_failure();
        }
        let at_frame_start = self.tx_queue.front().is_none_or(|chunk| chunk.starts_frame);
        if at_frame_start {
            if let Some(payload) = self.pending_pongs.pop_front() {
                if self.pending_pongs.is_empty() {
                    self.pending_pongs = VecDeque::new();
                }
                return Some(Transmit::Data(self.encode_control(OpCode::Pong, &payload)));
            }
        }
        if let Some(chunk) = self.tx_queue.pop_front() {
            self.tx_queued -= chunk.bytes.len();
            if self.tx_queue.is_empty() {
                // An idle connection holds no queue (at most one allocation per burst).
                self.tx_queue = VecDeque::new();
            }
            return Some(Transmit::Data(chunk.bytes));
        }
        if !self.tx_buf.is_empty() {
            // Hand the whole buffer over: an idle connection keeps no send buffer. Room a
            // batch did not use is given back first (in place), so that bytes waiting for
            // a slow peer hold little more than themselves.
            let mut bytes = Vec::from(std::mem::take(&mut self.tx_buf));
            if bytes.len() < bytes.capacity() / 2 {
                bytes.shrink_to_fit();
            }
            return Some(Transmit::Data(Bytes::from(bytes)));
        }
        if self.shutdown_queued {
            self.shutdown_queued = false;
            return Some(Transmit::Shutdown);
        }
        None
    }

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
        let event = self.events.pop();
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

    /// When [`handle_timeout`](Self::handle_timeout) must next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Open => {
                let idle = self.config.idle_timeout.map(|idle| deadline(self.last_received, idle));
                [self.next_ping, self.pong_deadline, idle].into_iter().flatten().min()
            }
            Phase::CloseSent { deadline } | Phase::AwaitingEof { deadline, .. } | Phase::Draining { deadline, .. } => {
                Some(*deadline)
            }
            // Waiting for the application to pull its events: no timer of ours runs.
            Phase::CloseReceived { .. } | Phase::Failing { .. } | Phase::Done => None,
        }
    }

    // ---- receiving ----

    fn reads_frames(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::CloseSent { .. })
    }

    fn process_received(&mut self, now: Instant, mut data: &[u8]) {
        while !data.is_empty() && self.reads_frames() {
            let mut frame = match self.frame.take() {
                Some(frame) => frame,
                None => {
                    if self.partial_header_len == 0 {
                        if let Err(error) = self.take_small_messages(&mut data) {
                            return self.fail(now, error);
                        }
                        if data.is_empty() {
                            return;
                        }
                    }
                    let header = match self.take_header(&mut data) {
                        Ok(Some(header)) => header,
                        Ok(None) => return,
                        Err(error) => return self.fail(now, error),
                    };
                    if let Some(kind) = self.whole_message_kind(&header, data.len()) {
                        // The common case, a whole unfragmented message in this read: no
                        // per-frame state at all.
                        let read_left = data.len();
                        let (wire, rest) = data.split_at(header.payload_len as usize);
                        data = rest;
                        if let Err(error) = self.deliver_whole(kind, wire, header.mask, read_left) {
                            return self.fail(now, error);
                        }
                        continue;
                    }
                    match self.start_frame(header) {
                        Ok(frame) => frame,
                        Err(error) => return self.fail(now, error),
                    }
                }
            };
            let take = (frame.len - frame.received).min(data.len());
            let (chunk, rest) = data.split_at(take);
            data = rest;
            let offset = frame.received;
            frame.received += take;
            let complete = frame.received == frame.len;
            let result = if frame.opcode.is_control() {
                extend_unmasked(&mut self.frame_payload, chunk, frame.mask, offset);
                if complete {
                    let payload = Bytes::from(std::mem::take(&mut self.frame_payload));
                    self.on_control_frame(now, frame.opcode, payload)
                } else {
                    Ok(())
                }
            } else {
                self.on_data(&mut frame, chunk, offset, complete)
            };
            if let Err(error) = result {
                return self.fail(now, error);
            }
            if !complete {
                self.frame = Some(frame);
            }
        }
    }

    /// The fast path for a run of small whole messages at the start of `data`, the bulk of
    /// a busy connection's traffic: one-byte lengths, no extension bits, masked as the role
    /// requires. It stops at the first frame that is anything else (or incomplete) and
    /// leaves it to the general path, which also reports what is wrong with it.
    fn take_small_messages(&mut self, data: &mut &[u8]) -> Result<(), ProtocolError> {
        let Some(limit) = self.whole_message_limit() else {
            return Ok(());
        };
        let max_len = limit.min(125);
        let masked = self.role == Role::Server;
        let (header_len, mask_bit) = if masked { (6, 0x80) } else { (2, 0) };
        while let [first, second, ..] = **data {
            let kind = match first {
                0x81 => MessageKind::Text,
                0x82 => MessageKind::Binary,
                _ => break,
            };
            let len = usize::from(second & 0x7F);
            if second & 0x80 != mask_bit || len > max_len || data.len() < header_len + len {
                break;
            }
            let mask = masked.then(|| [data[2], data[3], data[4], data[5]]);
            self.events
                .push_small(kind, &data[header_len..header_len + len], mask, data.len() - header_len)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
            *data = &data[header_len + len..];
        }
        Ok(())
    }

    /// Decodes the next frame header from `data` (and any start of it kept from the previous
    /// read), advancing `data` past it. `Ok(None)`: the header is incomplete and kept.
    fn take_header(&mut self, data: &mut &[u8]) -> Result<Option<FrameHeader>, ProtocolError> {
        let kept = usize::from(self.partial_header_len);
        if kept == 0 {
            if let Some((header, len)) = FrameHeader::decode(data).map_err(|_| ProtocolError::InvalidLength)? {
                *data = &data[len..];
                return Ok(Some(header));
            }
        }
        let take = (MAX_HEADER_LEN - kept).min(data.len());
        self.partial_header[kept..kept + take].copy_from_slice(&data[..take]);
        let available = &self.partial_header[..kept + take];
        match FrameHeader::decode(available).map_err(|_| ProtocolError::InvalidLength)? {
            Some((header, len)) => {
                self.partial_header_len = 0;
                *data = &data[len - kept..];
                Ok(Some(header))
            }
            None => {
                // An incomplete header is shorter than MAX_HEADER_LEN, so all of `data` fit.
                self.partial_header_len = (kept + take) as u8;
                *data = &[];
                Ok(None)
            }
        }
    }
    /// The kind of message `header` starts if it is a whole, valid, unfragmented,
    /// uncompressed message whose payload is all in the `available` bytes, received
    /// without streaming; `None` sends it down the general path (which also reports errors).
    fn whole_message_kind(&self, header: &FrameHeader, available: usize) -> Option<MessageKind> {
        let kind = match header.opcode {
            OpCode::Text => MessageKind::Text,
            OpCode::Binary => MessageKind::Binary,
            _ => return None,
        };
        let limit = self.whole_message_limit()?;
        let masked_as_required = header.mask.is_some() == (self.role == Role::Server);
        let fits = header.payload_len <= available.min(limit) as u64;
        let plain = header.fin && header.rsv == 0;
        (plain && masked_as_required && fits).then_some(kind)
    }

    /// The largest message the whole-message paths may take now, or `None` when they may
    /// take none (a fragmented message is in progress, streaming mode, or no data frame is
    /// allowed at all): the general path then decides, and reports what is wrong.
    fn whole_message_limit(&self) -> Option<usize> {
        let config = &self.config;
        let allowed = self.message.is_none() && !config.streaming && config.max_fragments > 0;
        allowed.then(|| config.max_frame_size.min(config.max_message_size))
    }

    /// Copies (and unmasks) a whole message's payload and reports it; small ones share
    /// blocks (see [`EventQueue`]). `read_left`: the bytes of this read from `wire` on.
    fn deliver_whole(
        &mut self,
        kind: MessageKind,
        wire: &[u8],
        mask: Option<[u8; 4]>,
        read_left: usize,
    ) -> Result<(), ProtocolError> {
        if wire.len() <= SMALL_MESSAGE_MAX {
            return self
                .events
                .push_small(kind, wire, mask, read_left)
                .map_err(|_| ProtocolError::InvalidUtf8);
        }
        let mut payload = Vec::with_capacity(wire.len());
        extend_unmasked(&mut payload, wire, mask, 0);
        self.deliver(kind, Bytes::from(payload))
    }

    /// Validates a new frame header against the protocol and the limits, before any payload.
    fn start_frame(&mut self, header: FrameHeader) -> Result<IncomingFrame, ProtocolError> {
        // RSV1 marks a compressed message, on its first frame only (RFC 7692 §6).
        let compressed =
            header.rsv == 0b100 && self.is_compressed() && matches!(header.opcode, OpCode::Text | OpCode::Binary);
        if header.rsv != 0 && !compressed {
            return Err(ProtocolError::ReservedBits(header.rsv));
        }
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        let too_big = ProtocolError::FrameTooBig {
            size: header.payload_len,
            limit: self.config.max_frame_size,
        };
        let len = usize::try_from(header.payload_len).map_err(|_| too_big.clone())?;
        let mut whole_message = None;
        match header.opcode {
            OpCode::Reserved(bits) => return Err(ProtocolError::ReservedOpcode(bits)),
            OpCode::Close | OpCode::Ping | OpCode::Pong => {
                if len > 125 {
                    return Err(ProtocolError::ControlFrameTooLong(header.payload_len));
                }
                if !header.fin {
                    return Err(ProtocolError::FragmentedControlFrame);
                }
            }
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                if len > self.config.max_frame_size {
                    return Err(too_big);
                }
                whole_message = self.start_data_frame(header.opcode, header.fin, len, compressed)?;
            }
        }
        Ok(IncomingFrame {
            opcode: header.opcode,
            fin: header.fin,
            mask: header.mask,
            len,
            received: 0,
            whole_message,
            utf8: Utf8Validator::new(),
        })
    }

    /// Checks a data frame against the message in progress and the limits, and starts or
    /// extends that message. Returns the message's kind if the frame is a whole message that
    /// needs no [`IncomingMessage`] (see [`IncomingFrame::whole_message`]).
    fn start_data_frame(
        &mut self,
        opcode: OpCode,
        fin: bool,
        len: usize,
        compressed: bool,
    ) -> Result<Option<MessageKind>, ProtocolError> {
        match (opcode, self.message.is_some()) {
            (OpCode::Continuation, false) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Continuation, true) | (_, false) => {}
            (_, true) => return Err(ProtocolError::ExpectedContinuation),
        }
        let kind = if opcode == OpCode::Text {
            MessageKind::Text
        } else {
            MessageKind::Binary
        };
        let whole = fin && opcode != OpCode::Continuation && !compressed && !self.config.streaming;
        let (fragments, size) = if whole {
            (1, len)
        } else {
            let message = self
                .message
                .get_or_insert_with(|| Box::new(IncomingMessage::new(kind, compressed)));
            message.fragments += 1;
            message.size += len;
            (message.fragments, message.size)
        };
        if fragments > self.config.max_fragments {
            return Err(ProtocolError::TooManyFragments {
                limit: self.config.max_fragments,
            });
        }
        if size > self.config.max_message_size {
            return Err(ProtocolError::MessageTooBig {
                size: size as u64,
                limit: self.config.max_message_size,
            });
        }
        Ok(whole.then_some(kind))
    }

    /// Takes `chunk`, the payload bytes of a data frame at `offset` that arrived now.
    fn on_data(
        &mut self,
        frame: &mut IncomingFrame,
        chunk: &[u8],
        offset: usize,
        complete: bool,
    ) -> Result<(), ProtocolError> {
        let ends_message = complete && frame.fin;
        // A message in one frame collects in `frame_payload`, sized to the frame as its bytes
        // arrive; a fragmented one in its reassembly buffer.
        let (kind, buffer, utf8) = match frame.whole_message {
            Some(kind) => {
                if offset == 0 {
                    self.frame_payload
                        .reserve(chunk.len().max(frame.len.min(RESERVE_AHEAD)));
                }
                (kind, &mut self.frame_payload, &mut frame.utf8)
            }
            None => {
                let Some(message) = self.message.as_mut() else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                if message.compressed {
                    return self.on_compressed_data(frame, chunk, offset, ends_message);
                }
                if self.config.streaming {
                    return self.on_streamed_data(frame, chunk, offset, ends_message);
                }
                (message.kind, &mut message.assembled, &mut message.utf8)
            }
        };
        let start = buffer.len();
        extend_unmasked(buffer, chunk, frame.mask, offset);
        if kind == MessageKind::Text && !ends_message {
            // Fail fast on partial text; a message completed here is validated whole below.
            utf8.feed(&buffer[start..]).map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        if !ends_message {
            return Ok(());
        }
        let payload = Bytes::from(std::mem::take(buffer));
        self.message = None;
        self.deliver(kind, payload)
    }

    /// Takes payload bytes of an uncompressed message in streaming mode: each piece is
    /// handed over as it arrives, as a fragment event.
    fn on_streamed_data(
        &mut self,
        frame: &IncomingFrame,
        chunk: &[u8],
        offset: usize,
        ends_message: bool,
    ) -> Result<(), ProtocolError> {
        let Some(message) = self.message.as_mut() else {
            return Err(ProtocolError::UnexpectedContinuation);
        };
        if chunk.is_empty() && !ends_message {
            return Ok(());
        }
        let mut data = Vec::with_capacity(chunk.len());
        extend_unmasked(&mut data, chunk, frame.mask, offset);
        if message.kind == MessageKind::Text {
            message.utf8.feed(&data).map_err(|_| ProtocolError::InvalidUtf8)?;
            if ends_message {
                message.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
            }
        }
        let kind = message.kind;
        if ends_message {
            self.message = None;
        }
        self.events.push(Event::Fragment {
            kind,
            data: Bytes::from(data),
            fin: ends_message,
        });
        Ok(())
    }

    /// Takes payload bytes of a compressed message: inflates them (bounded by the message
    /// size limit), validates text as it inflates, and delivers as `on_data` does.
    #[cfg(feature = "deflate")]
    fn on_compressed_data(
        &mut self,
        frame: &IncomingFrame,
        chunk: &[u8],
        offset: usize,
        ends_message: bool,
    ) -> Result<(), ProtocolError> {
        let (Some(message), Some(codec)) = (self.message.as_mut(), self.deflate.as_mut()) else {
            return Err(ProtocolError::CompressionError);
        };
        let mut input = Vec::with_capacity(chunk.len());
        extend_unmasked(&mut input, chunk, frame.mask, offset);
        let streaming = self.config.streaming;
        let max = self.config.max_message_size;
        // Streaming inflates in bounded steps, one fragment each, so a small frame that
        // inflates to a lot never sits in memory whole; reassembly needs it whole anyway.
        let step = if streaming { STREAMED_INFLATE_STEP } else { usize::MAX };
        let kind = message.kind;
        let mut consumed = 0;
        loop {
            let limit = max - message.inflated_len;
            let mut fresh = Vec::new();
            let out = if streaming { &mut fresh } else { &mut message.inflated };
            let start = out.len();
            let mut outcome = codec
                .inflate(&input[consumed..], out, limit, step)
                .map(|(used, pending)| {
                    consumed += used;
                    pending
                });
            let input_done = matches!(outcome, Ok(false));
            let finish = input_done && ends_message;
            if finish {
                outcome = codec.finish_message(out, limit).map(|()| false);
            }
            // Whatever the reads, fail with the first error in the stream: bad text that
            // inflated before a failure (within the limit) comes first, and a message over
            // the limit is reported against the configured limit.
            if kind == MessageKind::Text {
                message
                    .utf8
                    .feed(&out[start..out.len().min(limit).max(start)])
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            outcome.map_err(|error| match error {
                ProtocolError::MessageTooBig { .. } => ProtocolError::MessageTooBig {
                    size: max as u64 + 1,
                    limit: max,
                },
                other => other,
            })?;
            if finish && kind == MessageKind::Text {
                message.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            if streaming {
                message.inflated_len += fresh.len();
                if !fresh.is_empty() || finish {
                    self.events.push(Event::Fragment {
                        kind,
                        data: Bytes::from(fresh),
                        fin: finish,
                    });
                }
            }
            if input_done {
                break;
            }
        }
        if !ends_message {
            return Ok(());
        }
        if streaming {
            self.message = None;
            return Ok(());
        }
        let payload = Bytes::from(std::mem::take(&mut message.inflated));
        self.message = None;
        self.deliver(kind, payload)
    }

    /// Without the `deflate` feature no message is ever marked compressed.
    #[cfg(not(feature = "deflate"))]
    fn on_compressed_data(&mut self, _: &IncomingFrame, _: &[u8], _: usize, _: bool) -> Result<(), ProtocolError> {
        Err(ProtocolError::CompressionError)
    }

    /// Reports a complete message, validating text as a whole.
    fn deliver(&mut self, kind: MessageKind, payload: Bytes) -> Result<(), ProtocolError> {
        let message = Message::from_payload(kind, payload).map_err(|_| ProtocolError::InvalidUtf8)?;
        self.events.push(Event::Message(message));
        Ok(())
    }

    fn on_control_frame(&mut self, now: Instant, opcode: OpCode, payload: Bytes) -> Result<(), ProtocolError> {
        match opcode {
            OpCode::Ping => {
                if self.config.auto_pong && self.can_send_pong() {
                    if self.pending_pongs.len() == MAX_PENDING_PONGS {
                        self.pending_pongs.pop_front();
                    }
                    self.pending_pongs.push_back(payload.clone());
                }
                self.events.push(Event::Ping(payload));
            }
            OpCode::Pong => {
                self.pong_deadline = None;
                self.events.push(Event::Pong(payload));
            }
            _ => {
                let frame = parse_close_payload(&payload)?;
                self.on_close_received(now, frame);
            }
        }
        Ok(())
    }

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
        if matches!(self.phase, Phase::Open) {
            let reason = error.to_string();
            self.queue_close_frame(error.close_code(), truncate_reason(&reason));
        }
        self.drop_receive_state();
        self.queue_shutdown();
        self.phase = Phase::Draining {
            deadline: deadline(now, self.config.close_timeout),
            reason: CloseReason::Failed(error),
        };
    }

    fn drop_receive_state(&mut self) {
        self.partial_header_len = 0;
        self.frame_payload = Vec::new();
        self.frame = None;
        self.message = None;
    }

    fn finish(&mut self, reason: CloseReason) {
        self.phase = Phase::Done;
        self.drop_receive_state();
        self.events.push(Event::Closed(Box::new(Closed {
            sent: self.close_sent.as_deref().cloned(),
            received: self.close_received.as_deref().cloned(),
            reason,
        })));
    }

    // ---- sending ----

    fn check_can_send(&self) -> Result<(), SendError> {
        if self.can_send() {
            Ok(())
        } else {
            Err(SendError::Closed)
        }
    }

    fn check_can_start_message(&self) -> Result<(), SendError> {
        self.check_can_send()?;
        if self.outgoing.is_some() {
            return Err(SendError::FragmentInProgress);
        }
        Ok(())
    }

    fn send_control(&mut self, opcode: OpCode, payload: Bytes) -> Result<(), SendError> {
        if !(self.can_send() || (opcode == OpCode::Pong && self.can_send_pong())) {
            return Err(SendError::Closed);
        }
        if payload.len() > 125 {
            return Err(SendError::ControlPayloadTooLong(payload.len()));
        }
        self.queue_frame(opcode, true, &payload);
        Ok(())
    }

    fn send_keepalive_ping(&mut self, now: Instant) {
        self.ping_count = self.ping_count.wrapping_add(1);
        let payload = Bytes::copy_from_slice(&self.ping_count.to_be_bytes());
        self.queue_frame(OpCode::Ping, true, &payload);
        if self.pong_deadline.is_none() {
            self.pong_deadline = Some(deadline(now, self.config.pong_timeout));
        }
        self.next_ping = ping_interval(&self.config).map(|interval| deadline(now, interval));
    }

    fn start_close(&mut self, now: Instant, code: CloseCode, reason: &str) {
        self.queue_close_frame(code, reason);
        self.phase = Phase::CloseSent {
            deadline: deadline(now, self.config.close_timeout),
        };
    }

    fn queue_close_frame(&mut self, code: CloseCode, reason: &str) {
        let mut payload = Vec::with_capacity(2 + reason.len());
        payload.extend_from_slice(&code.as_u16().to_be_bytes());
        payload.extend_from_slice(reason.as_bytes());
        self.queue_frame(OpCode::Close, true, &Bytes::from(payload));
        self.close_sent = Some(Box::new(CloseFrame::new(code, reason)));
    }

    fn queue_shutdown(&mut self) {
        self.shutdown_queued = true;
    }

    fn next_mask(&mut self) -> Option<[u8; 4]> {
        self.masks.as_mut().map(|rng| rng.next_u32().to_ne_bytes())
    }

    fn queue_frame(&mut self, opcode: OpCode, fin: bool, payload: &Bytes) {
        self.queue_frame_rsv(opcode, fin, 0, Payload::Shared(payload));
    }

    /// Queues a frame. A payload of [`OWN_CHUNK_MIN`] bytes or more goes out as a chunk of
    /// its own after its header: shared as it is, or masked in one pass into a buffer of
    /// its own. Smaller ones are copied into the send buffer.
    fn queue_frame_rsv(&mut self, opcode: OpCode, fin: bool, rsv: u8, payload: Payload<'_>) {
        let bytes = payload.as_slice();
        if bytes.len() < OWN_CHUNK_MIN {
            return self.queue_buffered_frame(opcode, fin, rsv, bytes);
        }
        let (head, head_len, mask) = self.next_header(opcode, fin, rsv, bytes.len());
        let body = match (mask, payload) {
            (None, Payload::Shared(shared)) => shared.clone(),
            (None, Payload::Borrowed(borrowed)) => Bytes::copy_from_slice(borrowed),
            (Some(mask), _) => {
                // Masking is the same XOR as unmasking.
                let mut masked = Vec::with_capacity(bytes.len());
                extend_unmasked(&mut masked, bytes, Some(mask), 0);
                Bytes::from(masked)
            }
        };
        self.push_chunk(Bytes::copy_from_slice(&head[..head_len]), true);
        self.push_chunk(body, false);
    }

    /// Queues a frame with its payload copied into the send buffer.
    fn queue_buffered_frame(&mut self, opcode: OpCode, fin: bool, rsv: u8, payload: &[u8]) {
        let (head, head_len, mask) = self.next_header(opcode, fin, rsv, payload.len());
        if self.tx_buf.capacity() == 0 {
            // A fresh buffer (the last one went out). While messages of the last read
            // wait to be pulled, more answers are likely to follow: room for a few small
            // frames, so that the batch does not grow it step by step; else this frame's.
            let batch = if self.events.is_empty() { 0 } else { TX_BUF_MIN };
            self.tx_buf.reserve((head_len + payload.len()).max(batch));
        }
        put_frame(&mut self.tx_buf, &head[..head_len], payload, mask);
    }

    /// The next frame's header: its bytes, how many of them there are, and its mask (a
    /// client's).
    fn next_header(
        &mut self,
        opcode: OpCode,
        fin: bool,
        rsv: u8,
        payload_len: usize,
    ) -> ([u8; MAX_HEADER_LEN], usize, Option<[u8; 4]>) {
        let mask = self.next_mask();
        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len: payload_len as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let head_len = header.encode(&mut head);
        (head, head_len, mask)
    }

    fn push_chunk(&mut self, bytes: Bytes, starts_frame: bool) {
        if !self.tx_buf.is_empty() {
            let earlier = self.tx_buf.split().freeze();
            self.tx_queued += earlier.len();
            self.tx_queue.push_back(Chunk {
                bytes: earlier,
                starts_frame: true,
            });
        }
        self.tx_queued += bytes.len();
        self.tx_queue.push_back(Chunk { bytes, starts_frame });
    }

    fn encode_control(&mut self, opcode: OpCode, payload: &[u8]) -> Bytes {
        let (head, head_len, mask) = self.next_header(opcode, true, 0, payload.len());
        let mut frame = BytesMut::with_capacity(head_len + payload.len());
        put_frame(&mut frame, &head[..head_len], payload, mask);
        frame.freeze()
    }
}

/// Appends a frame to `buf`: its header, then its payload, masked if `mask` is set.
fn put_frame(buf: &mut BytesMut, head: &[u8], payload: &[u8], mask: Option<[u8; 4]>) {
    buf.extend_from_slice(head);
    let start = buf.len();
    buf.extend_from_slice(payload);
    if let Some(mask) = mask {
        apply_mask(&mut buf[start..], mask, 0);
    }
}

/// Parses and validates a close frame's payload (§5.5.1, §7.4).
fn parse_close_payload(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::CloseFrameTooShort),
        [high, low, reason @ ..] => {
            let code = CloseCode::new(u16::from_be_bytes([*high, *low]));
            if !code.is_sendable() {
                return Err(ProtocolError::InvalidCloseCode(code.as_u16()));
            }
            let reason = simdutf8::basic::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Some(CloseFrame::new(code, reason)))
        }
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
