//! The client side: [`connect`] and [`ClientBuilder`].

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wsflow::{ClientHandshake, ClientRequest, Config, HandshakeEvent, Response, UrlError};

use crate::pump::{drive_handshake, Inbox};
use crate::transport::{MaybeTlsStream, Transport};
use crate::{Error, WebSocket};

/// Connects to a `ws://` (or, with the `rustls` feature, `wss://`) URL with the default
/// configuration. Returns the connection and the server's 101 response.
///
/// # Errors
/// [`Error::Url`](wsflow::Error::Url) for a bad URL; transport errors (also for `wss://`
/// without the `rustls` feature); [`Error::Rejected`](wsflow::Error::Rejected) with the
/// server's response when it refused the upgrade; [`Error::Handshake`](wsflow::Error::Handshake)
/// for an invalid response or the handshake timeout.
pub fn connect(url: &str) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    ClientBuilder::new(url).connect()
}

/// A client connection with options: configuration, subprotocols, headers, TLS roots.
///
/// ```no_run
/// let (mut ws, response) = wsflow_blocking::ClientBuilder::new("ws://127.0.0.1:9002/chat")
///     .subprotocol("chat")
///     .header("Authorization", "Bearer token")
///     .connect()?;
/// assert_eq!(response.subprotocol(), Some("chat"));
/// ws.send_text("hello")?;
/// # Ok::<(), wsflow_blocking::Error>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct ClientBuilder {
    request: Result<ClientRequest, UrlError>,
    config: Arc<Config>,
    #[cfg(feature = "rustls")]
    tls_config: Option<Arc<rustls::ClientConfig>>,
}

impl ClientBuilder {
    /// A connection to `url` (checked when connecting).
    pub fn new(url: &str) -> Self {
        Self {
            request: ClientRequest::new(url),
            config: Arc::default(),
            #[cfg(feature = "rustls")]
            tls_config: None,
        }
    }

    /// The connection's configuration (limits, timers, handshake timeout).
    pub fn config(mut self, config: impl Into<Arc<Config>>) -> Self {
        self.config = config.into();
        self
    }

    /// Offers a subprotocol (call again for more, in order of preference).
    pub fn subprotocol(mut self, name: impl Into<String>) -> Self {
        self.request = self.request.map(|request| request.subprotocol(name));
        self
    }

    /// Adds a header to the upgrade request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.request = self.request.map(|request| request.header(name, value));
        self
    }

    /// Sends an `Origin` header.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.request = self.request.map(|request| request.origin(origin));
        self
    }

    /// The TLS configuration for `wss://` (default: the webpki-roots root store, ring).
    #[cfg(feature = "rustls")]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls_config = Some(config);
        self
    }

    /// Opens a TCP connection (within the handshake timeout), TLS for `wss://`, and runs
    /// the handshake over it.
    ///
    /// # Errors
    /// As [`connect`].
    pub fn connect(self) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
        let request = self.request?;
        let host = request.host_unbracketed();
        let tcp = connect_tcp(host, request.port(), self.config.get_handshake_timeout())?;
        let stream = if request.is_secure() {
            #[cfg(feature = "rustls")]
            {
                crate::tls::client_stream(tcp, host, self.tls_config)?
            }
            #[cfg(not(feature = "rustls"))]
            {
                drop(tcp);
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "wss:// needs the `rustls` feature of wsflow-blocking",
                )
                .into());
            }
        } else {
            MaybeTlsStream::Plain(tcp)
        };
        handshake(&request, self.config, stream)
    }

    /// Runs the handshake over a stream you opened (TLS is then up to you; the URL's
    /// scheme only decides the `Host` header's default port).
    ///
    /// # Errors
    /// As [`connect`], except for connecting.
    pub fn connect_on<S: Transport>(self, stream: S) -> Result<(WebSocket<S>, Response), Error> {
        handshake(&self.request?, self.config, stream)
    }
}

fn connect_tcp(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last_error = None;
    for address in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))))
}

fn handshake<S: Transport>(
    request: &ClientRequest,
    config: Arc<Config>,
    mut stream: S,
) -> Result<(WebSocket<S>, Response), Error> {
    let mut entropy = [0; 32];
    getrandom::fill(&mut entropy).map_err(io::Error::from)?;
    let mut handshake = ClientHandshake::new(request, config, Instant::now(), entropy)?;
    let mut inbox = Inbox::new();
    match drive_handshake(&mut handshake, &mut stream, &mut inbox, ClientHandshake::poll_event)? {
        HandshakeEvent::Accepted(response) => {
            let conn = handshake.into_connection(Instant::now())?;
            Ok((WebSocket::start(stream, conn, inbox)?, response))
        }
        HandshakeEvent::Rejected(response) => Err(Error::Rejected(Box::new(response))),
        HandshakeEvent::Failed(error) => Err(Error::Handshake(error)),
        _ => unreachable!("a client handshake reports only Accepted, Rejected or Failed"),
    }
}
