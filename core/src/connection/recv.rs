//! Receiving: frames parsed from the transport's bytes, delivered as events.

use std::time::Instant;

use bytes::Bytes;

use crate::error::ProtocolError;
use crate::event::Event;
use crate::frame::{extend_unmasked, FrameHeader, OpCode, MAX_HEADER_LEN};
use crate::message::{CloseCode, CloseFrame, Message, MessageKind};
use crate::queue::SMALL_MESSAGE_MAX;
use crate::utf8::Utf8Validator;

use super::{Connection, Phase, Role};

/// A message in one frame that spans reads gets room for this much of its announced length
/// when its first bytes arrive (whole frames up to 1 MiB: one allocation, no regrowth
/// copies); a peer that announces a huge frame and sends little commits no more than this.
const RESERVE_AHEAD: usize = 1 << 20;

/// In streaming mode a compressed message is inflated and delivered this much at a time.
#[cfg(feature = "deflate")]
const STREAMED_INFLATE_STEP: usize = 64 << 10;
/// Pongs waiting to be sent; past this, the oldest is dropped (only the latest ping must be answered).
const MAX_PENDING_PONGS: usize = 16;

/// The frame whose payload is arriving.
#[derive(Clone, Copy, Debug)]
pub(super) struct IncomingFrame {
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
pub(super) struct IncomingMessage {
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

/// Input set aside, unparsed, while more than [`Config::max_waiting_size`] bytes of
/// messages wait to be pulled; taken up again when the application has pulled them.
///
/// [`Config::max_waiting_size`]: crate::Config::max_waiting_size
#[derive(Debug)]
pub(super) struct HeldInput {
    data: Vec<u8>,
    /// Where the bytes not yet taken start.
    start: usize,
    /// When the last of them arrived.
    now: Instant,
    /// When the transport's end was reported, if it came after them.
    pub(super) eof: Option<Instant>,
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

impl Connection {
    // ---- inputs ----

    /// Feeds bytes read from the transport. Never fails: violations close the connection.
    ///
    /// Payload bytes are copied (and unmasked in the same pass) straight into the buffer of
    /// the message they belong to; nothing else of `data` is kept.
    ///
    /// While more than [`Config::max_waiting_size`](crate::Config::max_waiting_size) bytes
    /// of messages wait to be pulled, input is set aside unparsed (bytes fed meanwhile
    /// join it: an event loop should pull events before it reads again, as the adapters
    /// do; [`IoState::events_waiting`](super::IoState::events_waiting) stays true until all
    /// of it is taken up) and taken up by [`poll_event`](Self::poll_event) once the events
    /// before it are pulled.
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use wsflow::{Config, Connection, Event};
    ///
    /// let now = Instant::now();
    /// let mut config = Config::default();
    /// config.max_waiting_size(0); // stop after each message that must wait
    /// let mut server = Connection::server(Arc::new(config), now);
    /// // Three masked 2,000-byte messages in one read.
    /// let frame = [&[0x82, 0xFE, 0x07, 0xD0, 0, 0, 0, 0][..], &[7; 2000]].concat();
    /// server.handle_data(now, &frame.repeat(3));
    /// let mut count = 0;
    /// while let Some(Event::Message(message)) = server.poll_event() {
    ///     assert_eq!(message.len(), 2000);
    ///     count += 1;
    /// }
    /// assert_eq!(count, 3);
    /// ```
    pub fn handle_data(&mut self, now: Instant, data: &[u8]) {
        if data.is_empty() || !self.reads_frames() {
            return;
        }
        if let Some(held) = self.held.as_mut() {
            // What came first is parsed first: the new bytes wait behind the held ones.
            held.data.drain(..held.start);
            held.start = 0;
            held.data.extend_from_slice(data);
            held.now = now;
            return;
        }
        let left = self.process_received(now, data);
        if left > 0 {
            self.held = Some(Box::new(HeldInput {
                data: data[data.len() - left..].to_vec(),
                start: 0,
                now,
                eof: None,
            }));
        }
    }

    /// Takes up the held input (see [`handle_data`](Self::handle_data)), once the
    /// application has pulled every event; then the end of the transport, if it was
    /// reported after it.
    pub(super) fn resume_held_input(&mut self) {
        let Some(mut held) = self.held.take() else {
            return;
        };
        let left = if self.reads_frames() {
            self.process_received(held.now, &held.data[held.start..])
        } else {
            0
        };
        if left > 0 {
            held.start = held.data.len() - left;
            self.held = Some(held);
        } else if let Some(at) = held.eof {
            self.handle_eof(at);
        }
    }

    // ---- receiving ----

    fn reads_frames(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::CloseSent { .. })
    }

    /// Parses `data`; returns how many of its bytes (at its end) were not taken because too
    /// many message bytes wait to be pulled (see [`HeldInput`]).
    fn process_received(&mut self, now: Instant, mut data: &[u8]) -> usize {
        while !data.is_empty() && self.reads_frames() {
            if self.events.data_bytes() > self.config.max_waiting_size {
                return data.len();
            }
            let mut frame = match self.frame.take() {
                Some(frame) => frame,
                None => {
                    if self.partial_header_len == 0 {
                        let before = data.len();
                        let taken = self.take_small_messages(&mut data);
                        if data.len() != before {
                            self.last_received = now;
                        }
                        if let Err(error) = taken {
                            self.fail(now, error);
                            return 0;
                        }
                        if data.is_empty() {
                            return 0;
                        }
                    }
                    let header = match self.take_header(&mut data) {
                        Ok(Some(header)) => header,
                        Ok(None) => return 0,
                        Err(error) => {
                            self.fail(now, error);
                            return 0;
                        }
                    };
                    self.config.observe(crate::config::FrameDirection::Received, &header);
                    if !header.opcode.is_control() {
                        // Only data counts against the idle timeout: pongs to our own
                        // keepalive pings (and the peer's pings) do not.
                        self.last_received = now;
                    }
                    if let Some(kind) = self.whole_message_kind(&header, data.len()) {
                        // The common case, a whole unfragmented message in this read: no
                        // per-frame state at all.
                        let read_left = data.len();
                        let (wire, rest) = data.split_at(header.payload_len as usize);
                        data = rest;
                        if let Err(error) = self.deliver_whole(kind, wire, header.mask, read_left) {
                            self.fail(now, error);
                            return 0;
                        }
                        continue;
                    }
                    match self.start_frame(header) {
                        Ok(frame) => {
                            if !frame.opcode.is_control() && self.message_deadline.is_none() {
                                self.message_deadline =
                                    self.config.message_timeout.map(|timeout| super::deadline(now, timeout));
                            }
                            frame
                        }
                        Err(error) => {
                            self.fail(now, error);
                            return 0;
                        }
                    }
                }
            };
            let take = (frame.len - frame.received).min(data.len());
            let (chunk, rest) = data.split_at(take);
            let offset = frame.received;
            frame.received += take;
            let complete = frame.received == frame.len;
            let result = if frame.opcode.is_control() {
                extend_unmasked(&mut self.frame_payload, chunk, frame.mask, offset);
                if complete {
                    let payload = Bytes::from(std::mem::take(&mut self.frame_payload));
                    self.on_control_frame(now, frame.opcode, payload).map(|()| take)
                } else {
                    Ok(take)
                }
            } else {
                self.last_received = now;
                self.on_data(&mut frame, chunk, offset, complete)
            };
            let taken = match result {
                Ok(taken) => taken,
                Err(error) => {
                    self.fail(now, error);
                    return 0;
                }
            };
            if taken < take {
                // Inflating in streaming mode stopped with input left: too much waits.
                frame.received = offset + taken;
                self.frame = Some(frame);
                return data.len() - taken;
            }
            data = rest;
            if !complete {
                self.frame = Some(frame);
            } else if self.message.is_none() {
                self.message_deadline = None;
            }
        }
        0
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
        let allowed = self.message.is_none()
            && !config.streaming
            && config.max_fragments > 0
            && config.frame_observer.0.is_none();
        allowed.then(|| config.max_frame_size.min(config.max_message_size))
    }

    /// Copies (and unmasks) a whole message's payload and reports it; small ones share
    /// blocks (see [`EventQueue`](crate::queue::EventQueue)). `read_left`: the bytes of this read from `wire` on.
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

    /// Takes `chunk`, the payload bytes of a data frame at `offset` that arrived now; returns
    /// how many of them it took (all of them, unless inflating in streaming mode stopped
    /// because too many bytes wait to be pulled).
    fn on_data(
        &mut self,
        frame: &mut IncomingFrame,
        chunk: &[u8],
        offset: usize,
        complete: bool,
    ) -> Result<usize, ProtocolError> {
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
                    return self
                        .on_streamed_data(frame, chunk, offset, ends_message)
                        .map(|()| chunk.len());
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
            // What arrived, not the capacity reserved ahead from the header: announced
            // bytes that never come cost no memory and must not take the budget.
            let held = buffer.len();
            self.charge_unfinished(held)?;
            return Ok(chunk.len());
        }
        let payload = Bytes::from(std::mem::take(buffer));
        self.message = None;
        self.budget_charge.release();
        self.deliver(kind, payload).map(|()| chunk.len())
    }

    /// Makes the unfinished message's charge to [`Config::memory_budget`](crate::Config::memory_budget)
    /// cover the `held` bytes of its buffer, or fails the connection (1013) when the budget
    /// has no room.
    fn charge_unfinished(&mut self, held: usize) -> Result<(), ProtocolError> {
        match &self.config.memory_budget {
            Some(budget) => self
                .budget_charge
                .cover(budget, held)
                .map_err(|limit| ProtocolError::MemoryBudgetExceeded { held, limit }),
            None => Ok(()),
        }
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
    /// size limit), validates text as it inflates, and delivers as `on_data` does. In
    /// streaming mode it stops, with input left, once more than
    /// [`Config::max_waiting_size`](crate::Config::max_waiting_size) bytes wait to be pulled;
    /// returns how many bytes of `chunk` it took.
    #[cfg(feature = "deflate")]
    fn on_compressed_data(
        &mut self,
        frame: &IncomingFrame,
        chunk: &[u8],
        offset: usize,
        ends_message: bool,
    ) -> Result<usize, ProtocolError> {
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
        // With a memory budget, a message being reassembled inflates no further than the
        // budget has room for (checked as it inflates, not after the whole read).
        let room = match (&self.config.memory_budget, streaming) {
            (Some(budget), false) => Some((
                budget.limit(),
                budget.limit().saturating_sub(budget.used()) + self.budget_charge.bytes(),
            )),
            _ => None,
        };
        loop {
            let limit = max - message.inflated_len;
            let (limit, budget_bound) = match room {
                Some((_, room)) if room < limit => (room, true),
                _ => (limit, false),
            };
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
            outcome.map_err(|error| match (error, room) {
                (ProtocolError::MessageTooBig { .. }, Some((budget, _))) if budget_bound => {
                    ProtocolError::MemoryBudgetExceeded {
                        held: limit + 1,
                        limit: budget,
                    }
                }
                (ProtocolError::MessageTooBig { .. }, _) => ProtocolError::MessageTooBig {
                    size: max as u64 + 1,
                    limit: max,
                },
                (other, _) => other,
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
                // Stop where input is left (what zlib holds without input is little), so
                // that the rest is inflated when the fragments so far have been pulled.
                if !input_done && consumed < input.len() && self.events.data_bytes() > self.config.max_waiting_size {
                    return Ok(consumed);
                }
            }
            if input_done {
                break;
            }
        }
        if !ends_message {
            if !streaming {
                let held = message.inflated.len();
                self.charge_unfinished(held)?;
            }
            return Ok(chunk.len());
        }
        if streaming {
            self.message = None;
            return Ok(chunk.len());
        }
        let payload = Bytes::from(std::mem::take(&mut message.inflated));
        self.message = None;
        self.budget_charge.release();
        self.deliver(kind, payload).map(|()| chunk.len())
    }

    /// Without the `deflate` feature no message is ever marked compressed.
    #[cfg(not(feature = "deflate"))]
    fn on_compressed_data(&mut self, _: &IncomingFrame, _: &[u8], _: usize, _: bool) -> Result<usize, ProtocolError> {
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
