//! What a connection reports: events, outgoing transmissions and how it ended.

use bytes::Bytes;

use crate::error::ProtocolError;
use crate::message::{CloseCode, CloseFrame, Message, MessageKind};

/// Something that happened on a connection, pulled with
/// [`Connection::poll_event`](crate::Connection::poll_event).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A complete, validated data message (reassembled from its fragments).
    Message(Message),
    /// Part of a data message, delivered as it arrives when
    /// [`Config::streaming`](crate::Config::streaming) is on. `fin` marks the last part.
    /// Text parts may split a code point; the whole message has been validated as far as
    /// it has arrived, and a message that ends invalid fails the connection with 1007.
    Fragment {
        /// The kind of the message this part belongs to.
        kind: MessageKind,
        /// The bytes of this part.
        data: Bytes,
        /// Whether this is the last part of the message.
        fin: bool,
    },
    /// A ping arrived; if automatic pongs are on, the answer is already queued.
    Ping(Bytes),
    /// A pong arrived (solicited or not).
    Pong(Bytes),
    /// The peer sent a close frame (`None`: without a status code). Unless we had sent a
    /// close frame first, pulling this event queues the echo (same code). To answer with a
    /// code of your own, call [`Connection::close`](crate::Connection::close) before
    /// pulling it: while it waits, [`Connection::state`](crate::Connection::state) is
    /// already `Closing` and [`IoState::can_send`](crate::IoState::can_send) still holds.
    CloseReceived(Option<CloseFrame>),
    /// The connection is over. Always the last event, exactly once. (Boxed: it is rare,
    /// and keeps every other event small.)
    ///
    /// The end of the transport is one rule: keep writing what
    /// [`poll_transmit`](crate::Connection::poll_transmit) still gives (a close echo, the
    /// close frame of a failure, [`Transmit::Shutdown`]); drop the transport once all of it
    /// is written, or when the deadline [`poll_timeout`](crate::Connection::poll_timeout)
    /// still returns (the close timeout after the end) has passed: `handle_timeout` then
    /// drops what is left and `poll_timeout` returns `None`. Dropping at once instead can
    /// cost the peer the close frame (a TCP reset); waiting with no deadline lets a peer
    /// that stopped reading hold the socket.
    Closed(Box<Closed>),
}

/// How a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closed {
    /// The close frame we sent, if any.
    pub sent: Option<CloseFrame>,
    /// The close frame we received, if any (`None` also when it carried no code).
    pub received: Option<CloseFrame>,
    /// Why it ended.
    pub reason: CloseReason,
}

impl Closed {
    /// The status code as an application reports it (RFC 6455 §7.1.5): the code the peer
    /// sent, 1005 when its close frame had none, or 1006 when no close frame arrived.
    pub fn code(&self) -> CloseCode {
        match (&self.received, &self.reason) {
            (Some(frame), _) => frame.code,
            (None, CloseReason::Clean) => CloseCode::NO_STATUS,
            (None, _) => CloseCode::ABNORMAL,
        }
    }

    /// Whether the closing handshake completed.
    pub fn is_clean(&self) -> bool {
        self.reason == CloseReason::Clean
    }
}

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Both close frames were exchanged.
    Clean,
    /// The peer broke the protocol; we sent a close frame with the error's code.
    Failed(ProtocolError),
    /// A timer ran out.
    TimedOut(Timeout),
    /// The transport closed without a closing handshake (1006).
    Eof,
}

/// Which timer ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timeout {
    /// No pong answered a keepalive ping in time (we sent 1011).
    Keepalive,
    /// The peer did not answer our close frame in time.
    Close,
    /// A message was not complete within [`Config::message_timeout`](crate::Config::message_timeout) (we sent 1008).
    Message,
}

/// Bytes to write to the transport, pulled with
/// [`Connection::poll_transmit`](crate::Connection::poll_transmit).
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Transmit {
    /// Write these bytes, in order.
    Data(Bytes),
    /// Everything has been written: shut down the write side of the transport
    /// (TCP `shutdown(Write)`, TLS `close_notify`). Reads may continue until
    /// [`Event::Closed`].
    Shutdown,
}
