//! Tunnels through proxies, sans-IO: HTTP `CONNECT` (RFC 9110 §9.3.6) with optional Basic
//! credentials, and SOCKS5 (RFC 1928) without authentication or with a user name and
//! password (RFC 1929).
//!
//! A [`ProxyHandshake`] runs on the connection to the proxy before anything else: drain
//! [`poll_transmit`](ProxyHandshake::poll_transmit), feed the proxy's bytes to
//! [`handle_data`](ProxyHandshake::handle_data), wake up at
//! [`poll_timeout`](ProxyHandshake::poll_timeout), until
//! [`poll_event`](ProxyHandshake::poll_event) says [`ProxyEvent::Connected`] or
//! [`ProxyEvent::Failed`]. Once connected, the same transport carries the WebSocket
//! handshake (TLS first for `wss://`), starting with the bytes that followed the proxy's
//! reply ([`into_leftover`](ProxyHandshake::into_leftover)).

mod error;
mod http_connect;
mod socks5;
mod url;

pub use error::{ProxyError, SocksReply};
pub use url::{ProxyKind, ProxyUrl};

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::config::Config;
use crate::connection::deadline;
use crate::event::Transmit;

/// What happened in a [`ProxyHandshake`]: exactly one of these, then nothing more (but for
/// [`ProxyError::TooLarge`] if more than the limit is fed after `Connected`).
///
/// ```
/// use wsflow::{ProxyError, ProxyEvent};
/// let event = ProxyEvent::Failed(ProxyError::TimedOut);
/// assert!(matches!(event, ProxyEvent::Failed(ProxyError::TimedOut)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyEvent {
    /// The tunnel is open: the transport now reaches the target. Take the bytes that
    /// followed the reply with [`ProxyHandshake::into_leftover`].
    Connected,
    /// The tunnel could not be opened; drop the transport.
    Failed(ProxyError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// HTTP: reading the reply head to `CONNECT`.
    HttpHead,
    /// SOCKS5: the method selection (2 bytes).
    SocksMethod,
    /// SOCKS5: the reply to the user name and password (2 bytes).
    SocksAuth,
    /// SOCKS5: the reply to `CONNECT` (10, 22 or 7 + name bytes).
    SocksReply,
    /// The tunnel is open.
    Connected,
    /// Failed.
    Finished,
}

/// The client side of a proxy handshake, sans-IO: bytes in, bytes out, one deadline.
///
/// The first request is queued at creation. Limits: the HTTP reply head is at most
/// [`Config::max_handshake_size`] bytes with at most [`Config::max_headers`] headers,
/// SOCKS5 replies are bounded by the protocol (262 bytes at most), the bytes that follow
/// the reply are kept up to `max(max_handshake_size, 64 KiB)`, and the whole handshake
/// must finish within [`Config::handshake_timeout`]. A reply that cannot be one (not
/// starting with `HTTP/`, a SOCKS version other than 5) fails at its first byte.
///
/// ```
/// use std::time::Instant;
/// use wsflow::{Config, ProxyEvent, ProxyHandshake, ProxyUrl, Transmit};
///
/// let proxy = ProxyUrl::parse("http://proxy.example:3128").unwrap();
/// let now = Instant::now();
/// let mut handshake = ProxyHandshake::new(&proxy, "example.com", 443, &Config::default(), now).unwrap();
/// let Some(Transmit::Data(request)) = handshake.poll_transmit() else { panic!() };
/// assert!(request.starts_with(b"CONNECT example.com:443 HTTP/1.1\r\n"));
/// handshake.handle_data(now, b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03");
/// assert_eq!(handshake.poll_event(), Some(ProxyEvent::Connected));
/// assert_eq!(&handshake.into_leftover()[..], b"\x16\x03"); // the target's first bytes
/// ```
pub struct ProxyHandshake {
    stage: Stage,
    /// The reply being read (bounded by the limits above).
    buf: BytesMut,
    /// What followed the reply.
    leftover: BytesMut,
    /// SOCKS5: the requests still to send, in order (user name and password, `CONNECT`).
    pending: VecDeque<Bytes>,
    /// SOCKS5: whether credentials were offered (method 2).
    offered_auth: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ProxyEvent>,
    deadline: Instant,
    max_head: usize,
    max_headers: usize,
    max_leftover: usize,
}

impl std::fmt::Debug for ProxyHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyHandshake")
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

impl ProxyHandshake {
    /// Starts a handshake with `proxy` for a tunnel to `host` and `port` (`host` without
    /// IPv6 brackets; an IP address for `socks5://`, which resolves names on the client:
    /// see [`ProxyUrl::resolves_target_locally`]). Limits and the timeout come from `config`.
    ///
    /// # Errors
    /// [`ProxyError::InvalidTarget`] for a host the proxy cannot be asked for, or SOCKS5
    /// credentials longer than 255 bytes.
    pub fn new(proxy: &ProxyUrl, host: &str, port: u16, config: &Config, now: Instant) -> Result<Self, ProxyError> {
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(ProxyError::InvalidTarget(
                "an empty host or one with spaces or control characters",
            ));
        }
        let mut handshake = Self {
            stage: Stage::HttpHead,
            buf: BytesMut::new(),
            leftover: BytesMut::new(),
            pending: VecDeque::new(),
            offered_auth: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            deadline: deadline(now, config.handshake_timeout),
            max_head: config.max_handshake_size,
            max_headers: config.max_headers,
            max_leftover: crate::handshake::pipelined_limit(config),
        };
        match proxy.kind() {
            ProxyKind::Http => {
                let request = http_connect::request(host, port, proxy.credentials());
                handshake.transmits.push_back(Transmit::Data(request));
            }
            ProxyKind::Socks5 | ProxyKind::Socks5h => {
                let connect = socks5::connect_request(host, port, proxy.resolves_target_locally())?;
                if let Some((user, password)) = proxy.credentials() {
                    handshake.pending.push_back(socks5::auth_request(user, password)?);
                    handshake.offered_auth = true;
                }
                handshake.pending.push_back(connect);
                let greeting = socks5::greeting(handshake.offered_auth);
                handshake.transmits.push_back(Transmit::Data(greeting));
                handshake.stage = Stage::SocksMethod;
            }
        }
        Ok(handshake)
    }

    /// Feeds bytes read from the proxy.
    pub fn handle_data(&mut self, _now: Instant, data: &[u8]) {
        let mut data = data;
        loop {
            let step = match self.stage {
                Stage::HttpHead => return self.read_http(data),
                Stage::SocksMethod => self.read_socks(&mut data, |_| Ok(2), Self::on_method),
                Stage::SocksAuth => self.read_socks(&mut data, |_| Ok(2), Self::on_auth),
                Stage::SocksReply => self.read_socks(&mut data, socks5::reply_len, |this, _| {
                    this.pending.clear();
                    Ok(Stage::Connected)
                }),
                Stage::Connected => {
                    if self.leftover.len() + data.len() > self.max_leftover {
                        self.fail(ProxyError::TooLarge);
                    } else {
                        self.leftover.extend_from_slice(data);
                    }
                    return;
                }
                Stage::Finished => return,
            };
            match step {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => return self.fail(error),
            }
        }
    }

    /// Reports that the proxy closed the connection.
    pub fn handle_eof(&mut self, _now: Instant) {
        if self.in_progress() {
            self.fail(ProxyError::UnexpectedEof);
        }
    }

    /// Reports that the deadline from [`poll_timeout`](Self::poll_timeout) has come; early
    /// calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.deadline && self.in_progress() {
            self.fail(ProxyError::TimedOut);
        }
    }

    /// The next bytes to write to the proxy.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The outcome, once there is one.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ProxyEvent> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout): the handshake's deadline,
    /// while it runs.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.in_progress().then_some(self.deadline)
    }

    /// Whether the tunnel is open.
    pub fn is_connected(&self) -> bool {
        self.stage == Stage::Connected
    }

    /// The bytes that followed the proxy's reply: the target's first bytes, which belong
    /// to the next protocol on the tunnel (empty unless connected).
    #[must_use]
    pub fn into_leftover(self) -> Bytes {
        if self.stage == Stage::Connected {
            self.leftover.freeze()
        } else {
            Bytes::new()
        }
    }

    fn in_progress(&self) -> bool {
        !matches!(self.stage, Stage::Connected | Stage::Finished)
    }

    fn fail(&mut self, error: ProxyError) {
        self.stage = Stage::Finished;
        self.buf = BytesMut::new();
        self.leftover = BytesMut::new();
        self.pending.clear();
        self.events.push_back(ProxyEvent::Failed(error));
    }

    fn connected(&mut self, rest: &[u8]) {
        self.stage = Stage::Connected;
        self.buf = BytesMut::new();
        self.events.push_back(ProxyEvent::Connected);
        self.handle_data(self.deadline, rest);
    }

    /// Reads the HTTP reply head, never buffering more than the limit.
    fn read_http(&mut self, data: &[u8]) {
        let take = self.max_head.saturating_sub(self.buf.len()).min(data.len());
        let scanned = self.buf.len();
        self.buf.extend_from_slice(&data[..take]);
        let seen = self.buf.len().min(5);
        if self.buf[..seen] != b"HTTP/"[..seen] {
            return self.fail(ProxyError::Malformed("not an HTTP response"));
        }
        let Some(head_len) = crate::handshake::find_head_end(&self.buf, scanned) else {
            if self.buf.len() >= self.max_head {
                self.fail(ProxyError::TooLarge);
            }
            return;
        };
        match http_connect::check_reply(&self.buf[..head_len], self.max_headers) {
            Ok(()) => {
                let mut rest = self.buf.split_off(head_len);
                if rest.len() + data.len() - take > self.max_leftover {
                    return self.fail(ProxyError::TooLarge);
                }
                rest.extend_from_slice(&data[take..]);
                self.connected(&rest);
            }
            Err(error) => self.fail(error),
        }
    }

    /// Reads one SOCKS message whose length `needs` tells from what is buffered so far,
    /// then lets `done` act on it. `Ok(true)` when the next stage may go on with the rest
    /// of `data`, `Ok(false)` when more bytes are needed.
    fn read_socks(
        &mut self,
        data: &mut &[u8],
        needs: fn(&[u8]) -> Result<usize, ProxyError>,
        done: fn(&mut Self, &[u8]) -> Result<Stage, ProxyError>,
    ) -> Result<bool, ProxyError> {
        loop {
            let need = needs(&self.buf)?;
            if self.buf.len() >= need {
                break;
            }
            let take = (need - self.buf.len()).min(data.len());
            if take == 0 {
                return Ok(false);
            }
            self.buf.extend_from_slice(&data[..take]);
            *data = &data[take..];
        }
        let message = self.buf.split().freeze();
        let next = done(self, &message)?;
        if next == Stage::Connected {
            let rest = std::mem::take(data);
            if rest.len() > self.max_leftover {
                return Err(ProxyError::TooLarge);
            }
            self.connected(rest);
            return Ok(false);
        }
        self.stage = next;
        Ok(true)
    }

    /// The method selection: send the credentials or the `CONNECT`.
    fn on_method(&mut self, reply: &[u8]) -> Result<Stage, ProxyError> {
        match socks5::method(reply, self.offered_auth)? {
            socks5::Method::NoAuth => {
                if self.offered_auth {
                    self.pending.pop_front(); // the credentials are not needed
                }
                self.send_pending();
                Ok(Stage::SocksReply)
            }
            socks5::Method::UserPassword => {
                self.send_pending();
                Ok(Stage::SocksAuth)
            }
        }
    }

    /// The reply to the credentials: send the `CONNECT`.
    fn on_auth(&mut self, reply: &[u8]) -> Result<Stage, ProxyError> {
        socks5::auth_status(reply)?;
        self.send_pending();
        Ok(Stage::SocksReply)
    }

    fn send_pending(&mut self) {
        if let Some(request) = self.pending.pop_front() {
            self.transmits.push_back(Transmit::Data(request));
        }
    }
}
