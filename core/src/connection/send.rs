//! Sending: the commands that queue frames, and the bytes they go out as.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use rand_core::RngCore;

use crate::error::SendError;
use crate::event::Transmit;
use crate::frame::{apply_mask, extend_unmasked, FrameHeader, OpCode, MAX_HEADER_LEN};
use crate::message::{BorrowedMessage, CloseCode, CloseFrame, Message, MessageKind};
use crate::prepared::PreparedMessage;
use crate::utf8::Utf8Validator;

use super::Connection;

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

/// A piece of outgoing bytes; pongs may be slipped in only where a frame starts.
#[derive(Debug)]
pub(super) struct Chunk {
    bytes: Bytes,
    starts_frame: bool,
}

/// The outgoing message being sent in fragments.
#[derive(Debug)]
pub(super) struct OutgoingMessage {
    kind: MessageKind,
    utf8: Utf8Validator,
}

impl Connection {
    /// Queues bytes to go out before anything else (the handshake response).
    pub(crate) fn queue_raw(&mut self, bytes: Bytes) {
        // Not a frame start: no pong may be slipped in front of the handshake response.
        self.push_chunk(bytes, false);
    }

    // ---- commands ----

    /// Sends a whole message (split into frames of
    /// [`Config::outgoing_frame_size`](crate::Config::outgoing_frame_size) if set).
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

    /// Queues a [`PreparedMessage`] (a broadcast): on a server connection its shared frame,
    /// or with permessage-deflate and no context takeover for what the server sends, its
    /// shared compressed form for this connection's window and level (compressed by the
    /// first connection that needs it). Frames under 4 KiB are copied into the send buffer
    /// (cheaper than a chunk of their own), larger ones go out shared. A connection that
    /// must encode the message itself (a client, context takeover, outgoing frames split
    /// by [`Config::outgoing_frame_size`](crate::Config::outgoing_frame_size)) sends it as
    /// [`send`](Self::send) does.
    ///
    /// Nothing is queued while more than `high_water_mark` bytes are
    /// [buffered](Self::buffered_amount) (a slow reader): the broadcaster decides what
    /// to do about it (`usize::MAX`: no mark).
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use wsflow::{Config, Connection, Message, PreparedMessage, SendError};
    ///
    /// let mut server = Connection::server(Arc::new(Config::default()), Instant::now());
    /// let line = PreparedMessage::new(Message::text("x".repeat(100)));
    /// server.send_prepared(&line, 100).unwrap(); // 0 bytes were queued
    /// assert_eq!(server.send_prepared(&line, 100), Err(SendError::OverHighWaterMark(102)));
    /// ```
    ///
    /// # Errors
    /// [`SendError::OverHighWaterMark`] (nothing queued), and as [`send`](Self::send).
    pub fn send_prepared(&mut self, message: &PreparedMessage, high_water_mark: usize) -> Result<(), SendError> {
        self.check_can_start_message()?;
        let buffered = self.buffered_amount();
        if buffered > high_water_mark {
            return Err(SendError::OverHighWaterMark(buffered));
        }
        let split = self
            .config
            .outgoing_frame_size
            .is_some_and(|size| size > 0 && message.len() > size);
        if self.masks.is_some() || split {
            return self.send(message.message().clone());
        }
        #[cfg(feature = "deflate")]
        if let Some(codec) = self.deflate.as_ref().filter(|codec| codec.wants(message.len())) {
            return match codec.shared_form() {
                Some((bits, level)) => {
                    self.queue_whole_frame(message.compressed_frame(bits, level));
                    Ok(())
                }
                None => self.send(message.message().clone()),
            };
        }
        self.queue_whole_frame(message.frame().clone());
        Ok(())
    }

    /// Queues a complete unmasked frame: copied into the send buffer when small, else
    /// shared as a chunk of its own.
    fn queue_whole_frame(&mut self, frame: Bytes) {
        if self.config.frame_observer.0.is_some() {
            if let Ok(Some((header, _))) = FrameHeader::decode(&frame) {
                self.config.observe(crate::config::FrameDirection::Sent, &header);
            }
        }
        if frame.len() >= OWN_CHUNK_MIN {
            return self.push_chunk(frame, true);
        }
        self.reserve_tx_buf(frame.len());
        self.tx_buf.extend_from_slice(&frame);
    }

    /// Sends a message copied from borrowed text or bytes (a reused buffer, a slice of a
    /// larger one): a `&str` or `&String` goes out as text (already UTF-8: not validated
    /// again), a `&[u8]`, `&[u8; N]` or `&Vec<u8>` as binary. A message that goes out whole
    /// and uncompressed is copied once: under 4 KiB straight into the send buffer (no
    /// allocation, no reference count), else into a buffer of its own (masked on the way
    /// by a client). Others are copied into a [`Message`] and sent as [`send`](Self::send)
    /// sends it.
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use wsflow::{Config, Connection, Transmit};
    ///
    /// let mut server = Connection::server(Arc::new(Config::default()), Instant::now());
    /// let mut line = String::from("hello");
    /// server.send_copied(&line).unwrap(); // text
    /// line.clear(); // the buffer is free again at once
    /// server.send_copied(b"\x01\x02").unwrap(); // binary
    /// let Some(Transmit::Data(wire)) = server.poll_transmit() else { panic!() };
    /// assert_eq!(&wire[..], b"\x81\x05hello\x82\x02\x01\x02");
    /// ```
    ///
    /// # Errors
    /// As [`send`](Self::send).
    #[inline]
    pub fn send_copied<'a>(&mut self, message: impl Into<BorrowedMessage<'a>>) -> Result<(), SendError> {
        // Inlined, so that the caller's type picks the kind's path at compile time: a
        // slice in two registers, not an enum on the stack (6 instructions a send).
        match message.into() {
            BorrowedMessage::Text(text) => self.send_copied_text(text),
            BorrowedMessage::Binary(data) => self.send_copied_binary(data),
        }
    }

    fn send_copied_text(&mut self, text: &str) -> Result<(), SendError> {
        if self.sends_whole_uncompressed(text.len()) {
            self.send_borrowed(OpCode::Text, text.as_bytes())
        } else {
            self.send(Message::text(text))
        }
    }

    fn send_copied_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        if self.sends_whole_uncompressed(data.len()) {
            self.send_borrowed(OpCode::Binary, data)
        } else {
            self.send(Message::Binary(Bytes::copy_from_slice(data)))
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

    // ---- sending ----

    pub(super) fn check_can_send(&self) -> Result<(), SendError> {
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

    pub(super) fn queue_close_frame(&mut self, code: CloseCode, reason: &str) {
        let mut payload = Vec::with_capacity(2 + reason.len());
        payload.extend_from_slice(&code.as_u16().to_be_bytes());
        payload.extend_from_slice(reason.as_bytes());
        self.queue_frame(OpCode::Close, true, &Bytes::from(payload));
        self.close_sent = Some(Box::new(CloseFrame::new(code, reason)));
    }

    pub(super) fn queue_shutdown(&mut self) {
        self.shutdown_queued = true;
    }

    /// Forgets every byte not yet pulled (the linger is over: nobody will write them).
    pub(super) fn drop_transmits(&mut self) {
        self.tx_buf = BytesMut::new();
        self.tx_queue = VecDeque::new();
        self.tx_queued = 0;
        self.pending_pongs = VecDeque::new();
        self.shutdown_queued = false;
        self.outgoing = None;
    }

    fn next_mask(&mut self) -> Option<[u8; 4]> {
        self.masks.as_mut().map(|rng| rng.next_u32().to_ne_bytes())
    }

    pub(super) fn queue_frame(&mut self, opcode: OpCode, fin: bool, payload: &Bytes) {
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
        self.reserve_tx_buf(head_len + payload.len());
        put_frame(&mut self.tx_buf, &head[..head_len], payload, mask);
    }

    /// Room for a frame of `len` bytes in a fresh send buffer (the last one went out).
    /// While messages of the last read wait to be pulled, more answers are likely to
    /// follow: room for a few small frames, so that the batch does not grow it step by
    /// step; else this frame's.
    fn reserve_tx_buf(&mut self, len: usize) {
        if self.tx_buf.capacity() == 0 {
            let batch = if self.events.is_empty() { 0 } else { TX_BUF_MIN };
            self.tx_buf.reserve(len.max(batch));
        }
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
        self.config.observe(crate::config::FrameDirection::Sent, &header);
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
