//! The client side: connecting over TCP (and TLS) or over a stream of your own.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use async_net::TcpStream;
use futures_io::{AsyncRead, AsyncWrite};
use wsflow::{ClientHandshake, ClientRequest, Config, HandshakeEvent, Response, UrlError};

use crate::io::Io;
use crate::{Error, WebSocket};

/// Connects to a `ws://` (or, with the `rustls` feature, `wss://`) URL with the default
/// configuration. Returns the connection and the server's 101 response.
///
/// # Errors
/// [`Error::Url`] for a bad URL, [`Error::Transport`] when connecting fails (or for `wss://`
/// without the `rustls` feature), [`Error::Rejected`] when the server answers with another
/// status, [`Error::Handshake`] when its answer is not a valid upgrade.
///
/// Not cancel safe: dropping the future abandons the connection.
pub async fn connect(url: &str) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    ClientBuilder::new(url).connect().await
}

/// A client connection's stream: plain TCP or TLS.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// A `ws://` connection.
    Plain(TcpStream),
    /// A `wss://` connection.
    #[cfg(feature = "rustls")]
    Rustls(Box<futures_rustls::client::TlsStream<TcpStream>>),
}

/// Forwards a futures-io method to the stream inside.
macro_rules! forward {
    ($self:ident, $method:ident($($arg:expr),*)) => {
        match $self.get_mut() {
            MaybeTlsStream::Plain(stream) => Pin::new(stream).$method($($arg),*),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(stream) => Pin::new(stream).$method($($arg),*),
        }
    };
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        forward!(self, poll_read(cx, buf))
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        forward!(self, poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        forward!(self, poll_write_vectored(cx, bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        forward!(self, poll_flush(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        forward!(self, poll_close(cx))
    }
}

/// Options for a client connection.
///
/// ```no_run
/// # smol::block_on(async {
/// let (mut socket, response) = wsflow_smol::ClientBuilder::new("ws://127.0.0.1:9002/chat")
///     .subprotocol("chat")
///     .header("Authorization", "Bearer secret")
///     .connect()
///     .await?;
/// assert_eq!(response.subprotocol(), Some("chat"));
/// socket.send_text("hello").await?;
/// # Ok::<(), wsflow_smol::Error>(()) });
/// ```
#[derive(Debug)]
#[must_use]
pub struct ClientBuilder {
    request: Result<ClientRequest, UrlError>,
    config: Arc<Config>,
    #[cfg(feature = "rustls")]
    tls_config: Option<Arc<rustls::ClientConfig>>,
}

impl ClientBuilder {
    /// Starts a connection to `url` (`ws://` or `wss://`); a bad URL is reported by `connect`.
    pub fn new(url: &str) -> Self {
        Self {
            request: ClientRequest::new(url),
            config: Arc::default(),
            #[cfg(feature = "rustls")]
            tls_config: None,
        }
    }

    /// Uses `config` for the handshake and the connection.
    pub fn config(mut self, config: impl Into<Arc<Config>>) -> Self {
        self.config = config.into();
        self
    }

    /// Offers a subprotocol (call again for more, in order of preference).
    pub fn subprotocol(self, name: impl Into<String>) -> Self {
        self.map_request(|request| request.subprotocol(name))
    }

    /// Adds a header to the request.
    pub fn header(self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.map_request(|request| request.header(name, value))
    }

    /// Sends an `Origin` header.
    pub fn origin(self, origin: impl Into<String>) -> Self {
        self.map_request(|request| request.origin(origin))
    }

    /// Uses `config` for `wss://` instead of the default (the webpki-roots root store).
    #[cfg(feature = "rustls")]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls_config = Some(config);
        self
    }

    fn map_request(mut self, map: impl FnOnce(ClientRequest) -> ClientRequest) -> Self {
        self.request = self.request.map(map);
        self
    }

    /// Connects over TCP (and TLS for `wss://`) and performs the handshake.
    ///
    /// # Errors
    /// As [`connect`].
    ///
    /// Not cancel safe: dropping the future abandons the connection.
    pub async fn connect(self) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
        let request = self.request.as_ref().map_err(Clone::clone)?;
        let tcp = TcpStream::connect((request.host_unbracketed(), request.port())).await?;
        tcp.set_nodelay(true)?;
        let stream = if request.is_secure() {
            self.tls_stream(request, tcp).await?
        } else {
            MaybeTlsStream::Plain(tcp)
        };
        self.connect_on(stream).await
    }

    #[cfg(feature = "rustls")]
    async fn tls_stream(&self, request: &ClientRequest, tcp: TcpStream) -> io::Result<MaybeTlsStream> {
        let config = match &self.tls_config {
            Some(config) => config.clone(),
            None => crate::tls::default_client_config()?,
        };
        let server_name = rustls_pki_types::ServerName::try_from(request.host_unbracketed().to_owned())
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        let stream = futures_rustls::TlsConnector::from(config)
            .connect(server_name, tcp)
            .await?;
        Ok(MaybeTlsStream::Rustls(Box::new(stream)))
    }

    #[cfg(not(feature = "rustls"))]
    async fn tls_stream(&self, _request: &ClientRequest, _tcp: TcpStream) -> io::Result<MaybeTlsStream> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "wss:// needs the `rustls` feature of wsflow-smol",
        ))
    }

    /// Performs the handshake over `stream`, already connected to the server (and secured
    /// for `wss://`).
    ///
    /// # Errors
    /// As [`connect`], except for connecting.
    ///
    /// Not cancel safe: dropping the future abandons the handshake and the stream.
    pub async fn connect_on<S>(self, mut stream: S) -> Result<(WebSocket<S>, Response), Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let request = self.request?;
        let mut entropy = [0; 32];
        getrandom::fill(&mut entropy).map_err(io::Error::from)?;
        let mut handshake = ClientHandshake::new(&request, self.config, Instant::now(), entropy)?;
        let mut io = Io::new();
        let event = io
            .drive_until(&mut stream, &mut handshake, ClientHandshake::poll_event)
            .await?;
        let error = match event {
            HandshakeEvent::Accepted(response) => {
                let connection = handshake.into_connection(Instant::now())?;
                return Ok((WebSocket::from_parts(stream, connection, io), response));
            }
            HandshakeEvent::Rejected(response) => Error::Rejected(Box::new(response)),
            HandshakeEvent::Failed(error) => Error::Handshake(error),
            other => unreachable!("a client handshake reported {other:?}"),
        };
        io.flush(&mut stream, &mut handshake).await?;
        Err(error)
    }
}
