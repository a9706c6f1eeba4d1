//! The three error types: the peer broke the protocol ([`ProtocolError`]), the application
//! asked for something impossible ([`SendError`]), or the HTTP upgrade failed
//! ([`HandshakeError`]). None of them wraps `io::Error` or a dependency's type.

use std::fmt;

use crate::message::CloseCode;

/// The peer violated RFC 6455 (or a configured limit). Each variant knows the close code the
/// connection is failed with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// RSV bits set without a negotiated extension that defines them (§5.2).
    ReservedBits(u8),
    /// An opcode reserved for future use (§5.2).
    ReservedOpcode(u8),
    /// A client frame without a mask (§5.1).
    UnmaskedFrame,
    /// A server frame with a mask (§5.1).
    MaskedFrame,
    /// A 64-bit payload length with the most significant bit set (§5.2).
    InvalidLength,
    /// A control frame with a payload over 125 bytes (§5.5).
    ControlFrameTooLong(u64),
    /// A control frame without FIN (§5.5).
    FragmentedControlFrame,
    /// A continuation frame with no message in progress (§5.4).
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is unfinished (§5.4).
    ExpectedContinuation,
    /// A text message or close reason that is not UTF-8 (§8.1).
    InvalidUtf8,
    /// A close frame with a one-byte payload (§5.5.1).
    CloseFrameTooShort,
    /// A close code that may not appear on the wire (§7.4).
    InvalidCloseCode(u16),
    /// A frame larger than the configured frame limit.
    FrameTooBig {
        /// The frame's payload length.
        size: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A message larger than the configured message limit (after decompression).
    MessageTooBig {
        /// The size reached when the limit was passed.
        size: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A message split into more fragments than the configured limit.
    TooManyFragments {
        /// The configured limit.
        limit: usize,
    },
    /// A compressed message that does not inflate (RFC 7692 §7.2.2).
    CompressionError,
    /// The connection's unfinished message would take the memory budget shared with other
    /// connections past its limit ([`MemoryBudget`](crate::MemoryBudget)).
    MemoryBudgetExceeded {
        /// The bytes this connection held for the unfinished message.
        held: usize,
        /// The budget's limit (for all connections together).
        limit: usize,
    },
}

impl ProtocolError {
    /// The close code this error fails the connection with.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::InvalidUtf8 | Self::CompressionError => CloseCode::INVALID_PAYLOAD,
            Self::FrameTooBig { .. } | Self::MessageTooBig { .. } | Self::TooManyFragments { .. } => {
                CloseCode::MESSAGE_TOO_BIG
            }
            Self::MemoryBudgetExceeded { .. } => CloseCode::TRY_AGAIN_LATER,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReservedBits(bits) => write!(f, "reserved bits {bits:#05b} set without an extension"),
            Self::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            Self::UnmaskedFrame => f.write_str("client frame is not masked"),
            Self::MaskedFrame => f.write_str("server frame is masked"),
            Self::InvalidLength => f.write_str("64-bit payload length has its top bit set"),
            Self::ControlFrameTooLong(len) => write!(f, "control frame payload of {len} bytes (max 125)"),
            Self::FragmentedControlFrame => f.write_str("fragmented control frame"),
            Self::UnexpectedContinuation => f.write_str("continuation frame without a message in progress"),
            Self::ExpectedContinuation => f.write_str("new data frame inside a fragmented message"),
            Self::InvalidUtf8 => f.write_str("invalid UTF-8 in text"),
            Self::CloseFrameTooShort => f.write_str("close frame with a one-byte payload"),
            Self::InvalidCloseCode(code) => write!(f, "close code {code} is not allowed on the wire"),
            Self::FrameTooBig { size, limit } => write!(f, "frame of {size} bytes exceeds the {limit}-byte limit"),
            Self::MessageTooBig { size, limit } => {
                write!(f, "message of at least {size} bytes exceeds the {limit}-byte limit")
            }
            Self::TooManyFragments { limit } => write!(f, "message has more than {limit} fragments"),
            Self::CompressionError => f.write_str("compressed message does not inflate"),
            Self::MemoryBudgetExceeded { held, limit } => write!(
                f,
                "an unfinished message of {held} bytes does not fit the {limit}-byte memory budget"
            ),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// A command the connection cannot carry out. The connection is left as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// A close frame was already sent (or the connection is closed): no more data may be sent.
    Closed,
    /// A ping or pong payload over 125 bytes.
    ControlPayloadTooLong(usize),
    /// A close code that may not be sent (1005, 1006, 1015, or outside the ranges of §7.4).
    InvalidCloseCode(u16),
    /// A close reason over 123 bytes.
    CloseReasonTooLong(usize),
    /// A whole message or a new fragmented message while another is being sent in fragments.
    FragmentInProgress,
    /// A text fragment that makes the message invalid UTF-8.
    InvalidUtf8,
    /// The handshake is not at a point where this call makes sense (e.g. accepting twice).
    InvalidState(&'static str),
    /// The server tried to select a subprotocol the client did not offer.
    SubprotocolNotOffered(String),
    /// A header name or value that would corrupt the HTTP message.
    InvalidHeader(String),
    /// More bytes (the count) are queued than the high-water mark given to
    /// [`Connection::send_prepared`](crate::Connection::send_prepared): nothing was queued.
    OverHighWaterMark(usize),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("the connection is closing or closed"),
            Self::ControlPayloadTooLong(len) => write!(f, "control payload of {len} bytes (max 125)"),
            Self::InvalidCloseCode(code) => write!(f, "close code {code} may not be sent"),
            Self::CloseReasonTooLong(len) => write!(f, "close reason of {len} bytes (max 123)"),
            Self::FragmentInProgress => f.write_str("a fragmented message is being sent"),
            Self::InvalidUtf8 => f.write_str("text fragment is not valid UTF-8"),
            Self::InvalidState(what) => write!(f, "invalid state: {what}"),
            Self::SubprotocolNotOffered(name) => write!(f, "subprotocol {name:?} was not offered"),
            Self::InvalidHeader(name) => write!(f, "invalid header {name:?}"),
            Self::OverHighWaterMark(queued) => write!(f, "{queued} bytes queued, over the high-water mark"),
        }
    }
}

impl std::error::Error for SendError {}

/// The HTTP upgrade failed. On the server each variant knows the status it is answered with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The request or response head exceeds the configured size or header count.
    TooLarge,
    /// Malformed HTTP.
    MalformedHttp(String),
    /// An upgrade request with a method other than GET.
    MethodNotAllowed(String),
    /// Not HTTP/1.1.
    UnsupportedHttpVersion,
    /// A required header is missing or wrong.
    BadHeader(&'static str),
    /// `Sec-WebSocket-Version` is not 13.
    UnsupportedVersion(String),
    /// The server's `Sec-WebSocket-Accept` does not match our key.
    BadAccept,
    /// The server selected a subprotocol we did not offer (or none of ours when it must).
    UnexpectedSubprotocol(String),
    /// The server answered with an extension we did not offer or with parameters we cannot accept.
    UnexpectedExtension(String),
    /// The server answered with a status other than 101 Switching Protocols (seen when
    /// checking a response that another HTTP client received, see
    /// [`ClientNegotiation::into_connection`](crate::ClientNegotiation::into_connection)).
    UnexpectedStatus(u16),
    /// The peer closed the connection before the handshake finished.
    UnexpectedEof,
    /// The handshake did not finish within the configured time.
    TimedOut,
}

impl HandshakeError {
    /// The HTTP status a server answers this error with (`None` for errors seen by a client).
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::TooLarge => Some(431),
            Self::MalformedHttp(_) | Self::UnsupportedHttpVersion | Self::BadHeader(_) => Some(400),
            Self::MethodNotAllowed(_) => Some(405),
            Self::UnsupportedVersion(_) => Some(426),
            Self::TimedOut => Some(408),
            Self::BadAccept
            | Self::UnexpectedSubprotocol(_)
            | Self::UnexpectedExtension(_)
            | Self::UnexpectedStatus(_)
            | Self::UnexpectedEof => None,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => f.write_str("handshake head too large or too many headers"),
            Self::MalformedHttp(what) => write!(f, "malformed HTTP: {what}"),
            Self::MethodNotAllowed(method) => write!(f, "method {method} not allowed for an upgrade"),
            Self::UnsupportedHttpVersion => f.write_str("HTTP version is not 1.1"),
            Self::BadHeader(what) => write!(f, "bad or missing header: {what}"),
            Self::UnsupportedVersion(version) => write!(f, "unsupported Sec-WebSocket-Version {version:?}"),
            Self::BadAccept => f.write_str("Sec-WebSocket-Accept does not match the key"),
            Self::UnexpectedSubprotocol(name) => write!(f, "server selected subprotocol {name:?} that was not offered"),
            Self::UnexpectedExtension(name) => write!(f, "server selected extension {name:?} that was not offered"),
            Self::UnexpectedStatus(status) => write!(f, "server answered {status} instead of 101"),
            Self::UnexpectedEof => f.write_str("connection closed during the handshake"),
            Self::TimedOut => f.write_str("handshake timed out"),
        }
    }
}

impl std::error::Error for HandshakeError {}
