//! [`ProxyError`] and the SOCKS5 reply codes ([`SocksReply`]).

use std::fmt;

/// Why a tunnel through a proxy could not be opened. None of the variants carries a
/// password.
///
/// ```
/// use wsflow::{ProxyError, SocksReply};
/// let error = ProxyError::SocksRefused(SocksReply::from_code(5));
/// assert_eq!(error.to_string(), "the SOCKS5 proxy refused the connection: connection refused (code 5)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy URL is not usable (see [`ProxyUrl::parse`](crate::ProxyUrl::parse)).
    InvalidUrl(&'static str),
    /// The target cannot be sent to this proxy (a name longer than 255 bytes for SOCKS5,
    /// a name where `socks5://` needs an address, credentials longer than 255 bytes).
    InvalidTarget(&'static str),
    /// The HTTP proxy answered `CONNECT` with a status other than 2xx.
    HttpRefused {
        /// The status code (407: the proxy wants credentials, or other ones).
        status: u16,
        /// The reason phrase (cleaned of control characters, at most 128 characters).
        reason: String,
        /// The authentication scheme of the first `Proxy-Authenticate` header of a 407
        /// (e.g. `Basic`), if any.
        authenticate: Option<String>,
    },
    /// The SOCKS5 proxy accepted none of the authentication methods offered (method
    /// `0xFF`): it wants credentials the URL does not have, or others.
    SocksNoAcceptableMethod,
    /// The SOCKS5 proxy rejected the user name and password (RFC 1929 status, not 0).
    SocksAuthFailed(u8),
    /// The SOCKS5 proxy answered the `CONNECT` with a failure.
    SocksRefused(SocksReply),
    /// The proxy's reply is not what the protocol allows.
    Malformed(&'static str),
    /// The proxy's reply (or what followed it) is larger than the limit
    /// ([`Config::max_handshake_size`](crate::Config::max_handshake_size), or more headers
    /// than [`Config::max_headers`](crate::Config::max_headers)).
    TooLarge,
    /// The proxy closed the connection before its reply was complete.
    UnexpectedEof,
    /// The proxy's reply did not come within
    /// [`Config::handshake_timeout`](crate::Config::handshake_timeout).
    TimedOut,
    /// The proxy sent bytes past its reply before the client spoke (a `wss://` tunnel: the
    /// TLS server never speaks first). The count of bytes.
    EarlyData(usize),
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl(problem) => write!(f, "invalid proxy URL: {problem}"),
            Self::InvalidTarget(problem) => write!(f, "cannot ask the proxy for this target: {problem}"),
            Self::HttpRefused {
                status,
                reason,
                authenticate,
            } => {
                write!(f, "the HTTP proxy refused the tunnel: {status} {reason}")?;
                match authenticate {
                    Some(scheme) => write!(f, " (Proxy-Authenticate: {scheme})"),
                    None => Ok(()),
                }
            }
            Self::SocksNoAcceptableMethod => {
                f.write_str("the SOCKS5 proxy accepts none of the offered authentication methods")
            }
            Self::SocksAuthFailed(status) => {
                write!(
                    f,
                    "the SOCKS5 proxy rejected the user name and password (status {status})"
                )
            }
            Self::SocksRefused(reply) => write!(f, "the SOCKS5 proxy refused the connection: {reply}"),
            Self::Malformed(problem) => write!(f, "malformed proxy reply: {problem}"),
            Self::TooLarge => f.write_str("the proxy's reply is too large"),
            Self::UnexpectedEof => f.write_str("the proxy closed the connection during its handshake"),
            Self::TimedOut => f.write_str("the proxy did not answer in time"),
            Self::EarlyData(count) => write!(f, "the proxy sent {count} unexpected bytes after its reply"),
        }
    }
}

impl std::error::Error for ProxyError {}

/// A SOCKS5 reply code (RFC 1928 §6), by name.
///
/// ```
/// use wsflow::SocksReply;
/// assert_eq!(SocksReply::from_code(4), SocksReply::HostUnreachable);
/// assert_eq!(SocksReply::from_code(0x42).code(), 0x42);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SocksReply {
    /// 1: general SOCKS server failure.
    GeneralFailure,
    /// 2: connection not allowed by ruleset.
    NotAllowed,
    /// 3: network unreachable.
    NetworkUnreachable,
    /// 4: host unreachable.
    HostUnreachable,
    /// 5: connection refused.
    ConnectionRefused,
    /// 6: TTL expired.
    TtlExpired,
    /// 7: command not supported.
    CommandNotSupported,
    /// 8: address type not supported.
    AddressTypeNotSupported,
    /// Another failure code (9 to 255, unassigned).
    Other(u8),
}

impl SocksReply {
    /// The reply for a (non-zero) code.
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => Self::GeneralFailure,
            2 => Self::NotAllowed,
            3 => Self::NetworkUnreachable,
            4 => Self::HostUnreachable,
            5 => Self::ConnectionRefused,
            6 => Self::TtlExpired,
            7 => Self::CommandNotSupported,
            8 => Self::AddressTypeNotSupported,
            other => Self::Other(other),
        }
    }

    /// The code on the wire.
    pub fn code(self) -> u8 {
        match self {
            Self::GeneralFailure => 1,
            Self::NotAllowed => 2,
            Self::NetworkUnreachable => 3,
            Self::HostUnreachable => 4,
            Self::ConnectionRefused => 5,
            Self::TtlExpired => 6,
            Self::CommandNotSupported => 7,
            Self::AddressTypeNotSupported => 8,
            Self::Other(code) => code,
        }
    }
}

impl fmt::Display for SocksReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::GeneralFailure => "general SOCKS server failure",
            Self::NotAllowed => "connection not allowed by ruleset",
            Self::NetworkUnreachable => "network unreachable",
            Self::HostUnreachable => "host unreachable",
            Self::ConnectionRefused => "connection refused",
            Self::TtlExpired => "TTL expired",
            Self::CommandNotSupported => "command not supported",
            Self::AddressTypeNotSupported => "address type not supported",
            Self::Other(_) => "unassigned failure code",
        };
        write!(f, "{name} (code {})", self.code())
    }
}
