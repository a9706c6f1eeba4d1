//! A message framed once for many connections: broadcast without encoding (or, with
//! permessage-deflate and no context takeover, compressing) the message again for every
//! recipient.

use std::fmt;
use std::sync::Arc;
#[cfg(feature = "deflate")]
use std::sync::{Mutex, PoisonError};

use bytes::{Bytes, BytesMut};

use crate::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use crate::message::{Message, MessageKind};

/// A message framed once, server role, as shared [`Bytes`], to be queued on any number of
/// server connections with [`Connection::send_prepared`](crate::Connection::send_prepared)
/// without copying large payloads or encoding them again. Cloning is a reference count.
///
/// With permessage-deflate, a connection that compresses every message from a fresh context
/// (the server asked for, or was asked for, `server_no_context_takeover`) shares one
/// compressed form with every connection that negotiated the same window and level: the
/// message is compressed once per distinct parameter set, not once per recipient. A
/// connection with context takeover compresses the message itself, as
/// [`send`](crate::Connection::send) does (a better ratio for a stream of similar
/// messages, paid for with a compression per recipient and about 300 KiB of compressor
/// state per connection). A client connection (which must mask every frame with its own
/// key) and a connection that splits outgoing messages into frames send the message as
/// `send` does.
///
/// ```
/// use std::{sync::Arc, time::Instant};
/// use wsflow::{Config, Connection, Message, PreparedMessage, Transmit};
///
/// let config = Arc::new(Config::default());
/// let mut members: Vec<Connection> =
///     (0..3).map(|_| Connection::server(config.clone(), Instant::now())).collect();
/// let line = PreparedMessage::new(Message::text("hello, room"));
/// for member in &mut members {
///     member.send_prepared(&line, usize::MAX).unwrap();
///     let Some(Transmit::Data(wire)) = member.poll_transmit() else { panic!() };
///     assert_eq!(&wire[..], b"\x81\x0bhello, room");
/// }
/// ```
#[derive(Clone)]
pub struct PreparedMessage(Arc<Prepared>);

struct Prepared {
    message: Message,
    /// The whole uncompressed frame: FIN, opcode, length, payload.
    frame: Bytes,
    /// The compressed frames made so far, one per (window bits, level).
    #[cfg(feature = "deflate")]
    compressed: Mutex<Vec<((u8, u32), Bytes)>>,
}

impl fmt::Debug for PreparedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedMessage")
            .field("kind", &self.0.message.kind())
            .field("len", &self.0.message.len())
            .finish_non_exhaustive()
    }
}

impl PreparedMessage {
    /// Frames `message` (one frame, FIN set, unmasked).
    ///
    /// ```
    /// let prepared = wsflow::PreparedMessage::new(wsflow::Message::binary(vec![1, 2, 3]));
    /// assert_eq!(prepared.len(), 3);
    /// ```
    #[must_use]
    pub fn new(message: Message) -> Self {
        let frame = encode_frame(message.kind(), 0, message.payload());
        Self(Arc::new(Prepared {
            message,
            frame,
            #[cfg(feature = "deflate")]
            compressed: Mutex::new(Vec::new()),
        }))
    }

    /// The message (a reference count, not a copy).
    ///
    /// ```
    /// use wsflow::{Message, PreparedMessage};
    /// assert_eq!(PreparedMessage::new(Message::text("hi")).message(), &Message::text("hi"));
    /// ```
    #[must_use]
    pub fn message(&self) -> &Message {
        &self.0.message
    }

    /// The payload's length in bytes.
    ///
    /// ```
    /// assert!(wsflow::PreparedMessage::new(wsflow::Message::text("")).is_empty());
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.message.len()
    }

    /// Whether the payload is empty.
    ///
    /// ```
    /// assert!(!wsflow::PreparedMessage::new(wsflow::Message::text("x")).is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.message.is_empty()
    }

    /// How many compressed forms were made so far (one per distinct window and level among
    /// the connections that shared one): what broadcasting it has cost in compression.
    ///
    /// ```
    /// let prepared = wsflow::PreparedMessage::new(wsflow::Message::text("hi"));
    /// assert_eq!(prepared.compressed_forms(), 0);
    /// ```
    #[must_use]
    pub fn compressed_forms(&self) -> usize {
        #[cfg(feature = "deflate")]
        {
            self.0.compressed.lock().unwrap_or_else(PoisonError::into_inner).len()
        }
        #[cfg(not(feature = "deflate"))]
        0
    }

    /// The uncompressed frame.
    pub(crate) fn frame(&self) -> &Bytes {
        &self.0.frame
    }

    /// The frame compressed from a fresh context with a `bits` window at `level` (RSV1
    /// set), made on first use and shared after that.
    #[cfg(feature = "deflate")]
    pub(crate) fn compressed_frame(&self, bits: u8, level: u32) -> Bytes {
        let mut forms = self.0.compressed.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, frame)) = forms.iter().find(|(key, _)| *key == (bits, level)) {
            return frame.clone();
        }
        let payload = crate::deflate::compress_fresh(bits, level, self.0.message.payload());
        let frame = encode_frame(self.0.message.kind(), 0b100, &payload);
        forms.push(((bits, level), frame.clone()));
        frame
    }
}

/// One unmasked frame with FIN set.
fn encode_frame(kind: MessageKind, rsv: u8, payload: &[u8]) -> Bytes {
    let header = FrameHeader {
        fin: true,
        rsv,
        opcode: match kind {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        },
        mask: None,
        payload_len: payload.len() as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let head_len = header.encode(&mut head);
    let mut frame = BytesMut::with_capacity(head_len + payload.len());
    frame.extend_from_slice(&head[..head_len]);
    frame.extend_from_slice(payload);
    frame.freeze()
}
