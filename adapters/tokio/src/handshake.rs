//! Opening handshakes: [`accept`] and [`accept_with`] for servers, [`connect`] and
//! [`ClientBuilder`] for clients.

use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wsflow::{
    Accept, ClientHandshake, ClientRequest, Config, Decision, HandshakeError, HandshakeEvent, Request, Response,
    SansIo, ServerHandshake, UrlError,
};

use crate::io::{Io, Role};
use crate::{Error, MaybeTlsStream, WebSocket};

/// What [`accept_with`] did with a request.
#[derive(Debug)]
// A short-lived return value, matched at once: boxing the connection would cost an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Accepted<S> {
    /// The hook accepted the upgrade.
    WebSocket(WebSocket<S>, Request),
    /// The hook answered with an HTTP response (a rejection, or a page for a plain HTTP
    /// request); it has been written and the stream shut down.
    Responded(Request),
}

/// Accepts any WebSocket upgrade on `stream` with [`Config::default`]. A plain HTTP request
/// is answered with `426 Upgrade Required` and reported as a handshake error.
///
/// # Errors
/// [`Error::Handshake`] for a malformed request (answered with the matching HTTP error) or
/// a timeout; [`Error::Transport`] if the stream fails.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> Result<WebSocket<S>, Error> {
    // The core answers a plain HTTP request that is "accepted" with 426.
    match accept_with(stream, Arc::new(Config::default()), |_| Decision::Accept(Accept::new())).await? {
        Accepted::WebSocket(websocket, _) => Ok(websocket),
        Accepted::Responded(_) => Err(HandshakeError::BadHeader("Upgrade: websocket").into()),
    }
}

/// Reads the request on `stream` and lets `hook` decide: upgrade
/// ([`Decision::Accept`], with a subprotocol or headers) or answer with an HTTP response
/// ([`Decision::Respond`], also how plain HTTP requests are served; see
/// [`Request::is_websocket`]). The handshake must finish within
/// [`Config::handshake_timeout`]. Set `TCP_NODELAY` on a TCP stream first for low latency.
///
/// # Errors
/// [`Error::Handshake`] for a malformed request (answered with the matching HTTP error) or
/// a timeout; [`Error::Send`] when the hook's answer is invalid (e.g. a subprotocol the
/// client did not offer); [`Error::Transport`] if the stream fails.
pub async fn accept_with<S, F>(stream: S, config: Arc<Config>, hook: F) -> Result<Accepted<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Decision,
{
    // The handshake's state is bigger than the connection it yields: boxed, it does not
    // set the size of the caller's future (an idle connection's memory) for its whole life.
    Box::pin(handshake_then_decide(stream, config, hook)).await
}

async fn handshake_then_decide<S, F>(stream: S, config: Arc<Config>, hook: F) -> Result<Accepted<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Decision,
{
    let mut io = Io::new(stream);
    let mut handshake = ServerHandshake::new(config, Instant::now());
    let request = match next_event(&mut io, &mut handshake, ServerHandshake::poll_event).await? {
        HandshakeEvent::Request(request) => request,
        HandshakeEvent::Failed(error) => return Err(finish(&mut io, &mut handshake, error.into()).await),
        other => unreachable!("a server handshake reported {other:?}"),
    };
    let decided = handshake.decide(Instant::now(), hook(&request));
    if let Ok(Some(conn)) = decided {
        let mut websocket = WebSocket::new(io, conn);
        websocket.flush().await?;
        return Ok(Accepted::WebSocket(websocket, request));
    }
    // A response: the hook's, or the core's 500 for a decision it could not carry out.
    write_all(&mut io, &mut handshake).await?;
    decided?;
    Ok(Accepted::Responded(request))
}

/// Connects to a `ws://` or `wss://` URL with [`Config::default`]: shorthand for
/// [`ClientBuilder::new(url).connect()`](ClientBuilder::connect).
///
/// # Errors
/// As [`ClientBuilder::connect`].
pub async fn connect(url: &str) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    ClientBuilder::new(url).connect().await
}

/// Opens client connections: the URL, the optional parts of the upgrade request, the
/// configuration and (feature `rustls`) the TLS configuration.
///
/// ```no_run
/// # async fn run() -> Result<(), wsflow_tokio::Error> {
/// let (mut websocket, response) = wsflow_tokio::ClientBuilder::new("ws://127.0.0.1:9002/chat")
///     .subprotocol("chat.v1")
///     .header("Authorization", "Bearer token")
///     .connect()
///     .await?;
/// assert_eq!(response.subprotocol(), Some("chat.v1"));
/// websocket.send_text("hello").await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ClientBuilder {
    request: Result<ClientRequest, UrlError>,
    config: Arc<Config>,
    #[cfg(feature = "rustls")]
    tls_config: Option<Arc<rustls::ClientConfig>>,
}

impl ClientBuilder {
    /// A builder for `url` (`ws://` or `wss://`; a bad URL is reported by `connect`).
    pub fn new(url: &str) -> Self {
        Self {
            request: ClientRequest::new(url),
            config: Arc::new(Config::default()),
            #[cfg(feature = "rustls")]
            tls_config: None,
        }
    }

    fn map_request(mut self, f: impl FnOnce(ClientRequest) -> ClientRequest) -> Self {
        self.request = self.request.map(f);
        self
    }

    /// The connection's configuration (a `Config` or an `Arc<Config>`).
    #[must_use]
    pub fn config(mut self, config: impl Into<Arc<Config>>) -> Self {
        self.config = config.into();
        self
    }

    /// Offers a subprotocol (call again for more, in order of preference).
    #[must_use]
    pub fn subprotocol(self, name: impl Into<String>) -> Self {
        self.map_request(|request| request.subprotocol(name))
    }

    /// Adds a header to the upgrade request (e.g. `Authorization`).
    #[must_use]
    pub fn header(self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.map_request(|request| request.header(name, value))
    }

    /// Sends an `Origin` header.
    #[must_use]
    pub fn origin(self, origin: impl Into<String>) -> Self {
        self.map_request(|request| request.origin(origin))
    }

    /// The TLS configuration for `wss://` (default: the webpki-roots root store).
    #[cfg(feature = "rustls")]
    #[must_use]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls_config = Some(config);
        self
    }

    /// Opens TCP (with `TCP_NODELAY`) to the URL's host and port, TLS for `wss://`, and
    /// performs the upgrade. Returns the connection and the server's response.
    ///
    /// # Errors
    /// [`Error::Url`] for a bad URL; [`Error::Transport`] if TCP or TLS fails (or for
    /// `wss://` without the `rustls` feature); [`Error::Rejected`] when the server answers
    /// with another status (status, headers and body included); [`Error::Handshake`] for
    /// an invalid response or a timeout.
    pub async fn connect(self) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
        let request = self.request.as_ref().map_err(UrlError::clone)?;
        let tcp = TcpStream::connect((request.host_unbracketed(), request.port())).await?;
        tcp.set_nodelay(true)?;
        let stream = if request.is_secure() {
            self.tls_connect(tcp, request).await?
        } else {
            MaybeTlsStream::Plain(tcp)
        };
        self.connect_on(stream).await
    }

    #[cfg(feature = "rustls")]
    async fn tls_connect(&self, tcp: TcpStream, request: &ClientRequest) -> io::Result<MaybeTlsStream> {
        let config = match &self.tls_config {
            Some(config) => config.clone(),
            None => default_tls_config()?,
        };
        let server_name = rustls_pki_types::ServerName::try_from(request.host_unbracketed().to_owned())
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(server_name, tcp)
            .await?;
        Ok(MaybeTlsStream::Rustls(Box::new(tls)))
    }

    #[cfg(not(feature = "rustls"))]
    async fn tls_connect(&self, _tcp: TcpStream, _request: &ClientRequest) -> io::Result<MaybeTlsStream> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "wss:// needs the `rustls` feature of wsflow-tokio",
        ))
    }

    /// Performs the upgrade over a stream the caller opened (TLS or not, any transport).
    ///
    /// # Errors
    /// As [`connect`](Self::connect), without the TCP and TLS part.
    pub async fn connect_on<S: AsyncRead + AsyncWrite + Unpin>(
        self,
        stream: S,
    ) -> Result<(WebSocket<S>, Response), Error> {
        let request = self.request?;
        let mut entropy = [0; 32];
        getrandom::fill(&mut entropy).map_err(io::Error::from)?;
        let mut handshake = ClientHandshake::new(&request, self.config, Instant::now(), entropy)?;
        let mut io = Io::new(stream);
        let error = match next_event(&mut io, &mut handshake, ClientHandshake::poll_event).await? {
            HandshakeEvent::Accepted(response) => {
                let conn = handshake.into_connection(Instant::now())?;
                return Ok((WebSocket::new(io, conn), response));
            }
            HandshakeEvent::Rejected(response) => Error::Rejected(Box::new(response)),
            HandshakeEvent::Failed(error) => error.into(),
            other => unreachable!("a client handshake reported {other:?}"),
        };
        Err(finish(&mut io, &mut handshake, error).await)
    }
}

/// A client configuration trusting the webpki-roots root store.
#[cfg(feature = "rustls")]
fn default_tls_config() -> io::Result<Arc<rustls::ClientConfig>> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Drives a handshake until it reports an event.
async fn next_event<S, T, E>(io: &mut Io<S>, handshake: &mut T, poll_event: fn(&mut T) -> Option<E>) -> io::Result<E>
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: SansIo,
{
    poll_fn(|cx| io.poll_event(handshake, Role::Receiver, cx, poll_event, |_| false)).await
}

/// Writes everything the handshake queued, shutdown included.
async fn write_all<S: AsyncRead + AsyncWrite + Unpin>(io: &mut Io<S>, handshake: &mut impl SansIo) -> io::Result<()> {
    poll_fn(|cx| io.poll_drain(handshake, Role::Receiver, cx, 0, |_| false)).await
}

/// Writes, as far as the stream allows, what a failed handshake queued (an HTTP error
/// response, the shutdown), and returns `error`.
async fn finish<S: AsyncRead + AsyncWrite + Unpin>(io: &mut Io<S>, handshake: &mut impl SansIo, error: Error) -> Error {
    // The handshake's error says more than a failure to deliver its last words.
    let _ = write_all(io, handshake).await;
    error
}
