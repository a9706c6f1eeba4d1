//! The client side, written once: [`ClientBuilder`] (URL, configuration, subprotocols,
//! headers, origin, TLS configuration) and the handshake outcome.

use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use wsflow::{ClientEvent, ClientHandshake, ClientRequest, Config, ProxyUrl, Response, UrlError};

use crate::proxy::{ProxyChoice, Route};
use crate::runtime::{AsyncStream, Runtime};
use crate::Error;

/// How an adapter opens a connection for [`ClientBuilder::connect`]: TCP to the
/// [`route`](ClientBuilder::route)'s address (with `TCP_NODELAY`), the proxy's tunnel if
/// any ([`tunnel`](crate::tunnel)), TLS for `wss://`, then the upgrade. Implemented by each
/// adapter's runtime marker (`wsflow_tokio::Tokio`, `wsflow_smol::Smol`,
/// `wsflow_blocking::Blocking`).
pub trait Connector: Sized {
    /// What `connect` returns: a future for an async adapter, the result for the blocking one.
    type Connecting;

    /// Opens the connection `builder` describes.
    fn connect(builder: ClientBuilder<Self>) -> Self::Connecting;
}

/// How an adapter performs the upgrade over a stream `S` the caller opened, for
/// [`ClientBuilder::connect_on`].
pub trait ConnectOn<S>: Sized {
    /// What `connect_on` returns: a future for an async adapter, the result for the
    /// blocking one.
    type Connecting;

    /// Performs the upgrade `builder` describes over `stream`.
    fn connect_on(builder: ClientBuilder<Self>, stream: S) -> Self::Connecting;
}

/// How an async adapter opens a client's transport: TCP (with `TCP_NODELAY`) to the
/// [`route`](ClientBuilder::route)'s address, the proxy's tunnel if any
/// ([`tunnel`](crate::tunnel)), TLS for `wss://` offering the ALPN protocols `alpn` (when
/// empty, those of the TLS configuration). The adapter's [`Connector::connect`] performs the
/// upgrade over it; `Http2Client::connect` (feature `http2`) speaks HTTP/2 over it.
pub trait OpenTransport: Runtime + Sized {
    /// The transport: TCP, or TLS over TCP.
    type Stream: AsyncStream<Runtime = Self> + Send + 'static;

    /// Opens the transport `builder` describes.
    fn open_transport<'a>(
        builder: &'a ClientBuilder<Self>,
        alpn: &'a [&'a [u8]],
    ) -> impl Future<Output = Result<OpenedTransport<Self::Stream>, Error>> + Send + 'a;
}

/// A client's transport as [`OpenTransport`] opened it.
#[derive(Debug)]
pub struct OpenedTransport<S> {
    /// TCP, or TLS over it for `wss://`, through the proxy's tunnel if any.
    pub stream: S,
    /// The bytes that followed the proxy's reply (see [`tunnel`](crate::tunnel)).
    pub read_ahead: Bytes,
    /// The protocol TLS's ALPN chose: `None` without TLS or when the server chose none.
    pub alpn: Option<Vec<u8>>,
}

/// Opens client connections: the URL, the optional parts of the upgrade request, the
/// configuration and (feature `rustls`) the TLS configuration. `R` is the adapter (each
/// has `type ClientBuilder = wsflow_io::ClientBuilder<Runtime>`), which carries out
/// [`connect`](Self::connect) and [`connect_on`](Self::connect_on) its own way.
///
/// ```
/// # struct Adapter;
/// let builder = wsflow_io::ClientBuilder::<Adapter>::new("ws://127.0.0.1:9002/chat")
///     .subprotocol("chat.v1")
///     .header("Authorization", "Bearer token")
///     .origin("https://example.com");
/// assert_eq!(builder.request().unwrap().port(), 9002);
/// ```
#[must_use]
pub struct ClientBuilder<R> {
    request: Result<ClientRequest, UrlError>,
    config: Arc<Config>,
    #[cfg(feature = "rustls")]
    tls_config: Option<Arc<rustls::ClientConfig>>,
    proxy: ProxyChoice,
    read_ahead: Bytes,
    adapter: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for ClientBuilder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("request", &self.request)
            .field("config", &self.config)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl<R> Clone for ClientBuilder<R> {
    fn clone(&self) -> Self {
        Self {
            request: self.request.clone(),
            config: self.config.clone(),
            #[cfg(feature = "rustls")]
            tls_config: self.tls_config.clone(),
            proxy: self.proxy.clone(),
            read_ahead: self.read_ahead.clone(),
            adapter: PhantomData,
        }
    }
}

impl<R> ClientBuilder<R> {
    /// A builder for `url` (`ws://` or `wss://`; a bad URL is reported by `connect`).
    pub fn new(url: &str) -> Self {
        Self {
            request: ClientRequest::new(url),
            config: crate::handshake::DEFAULT_CONFIG.clone(),
            #[cfg(feature = "rustls")]
            tls_config: None,
            proxy: ProxyChoice::Environment,
            read_ahead: Bytes::new(),
            adapter: PhantomData,
        }
    }

    fn map_request(mut self, f: impl FnOnce(ClientRequest) -> ClientRequest) -> Self {
        self.request = self.request.map(f);
        self
    }

    /// The connection's configuration (a `Config` or an `Arc<Config>`).
    pub fn config(mut self, config: impl Into<Arc<Config>>) -> Self {
        self.config = config.into();
        self
    }

    /// Offers a subprotocol (call again for more, in order of preference).
    pub fn subprotocol(self, name: impl Into<String>) -> Self {
        self.map_request(|request| request.subprotocol(name))
    }

    /// Adds a header to the upgrade request (e.g. `Authorization`).
    pub fn header(self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.map_request(|request| request.header(name, value))
    }

    /// Sends an `Origin` header.
    pub fn origin(self, origin: impl Into<String>) -> Self {
        self.map_request(|request| request.origin(origin))
    }

    /// The TLS configuration for `wss://` (default: [`default_tls_config`](crate::default_tls_config)).
    #[cfg(feature = "rustls")]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls_config = Some(config);
        self
    }

    /// Connects through this proxy (`http://[user:pass@]host:port`, `socks5://..`,
    /// `socks5h://..`; see [`ProxyUrl`]), whatever the environment says, loopback targets
    /// included. A bad URL is reported by `connect`. Without this call (or
    /// [`no_proxy`](Self::no_proxy)) the proxy comes from the environment: see [`Route`].
    ///
    /// ```
    /// # struct Adapter;
    /// let builder = wsflow_io::ClientBuilder::<Adapter>::new("wss://example.com/feed")
    ///     .proxy("http://me:secret@proxy.corp:3128");
    /// assert_eq!(builder.route().unwrap().address(), ("proxy.corp", 3128));
    /// ```
    pub fn proxy(mut self, url: &str) -> Self {
        self.proxy = ProxyChoice::Explicit(ProxyUrl::parse(url));
        self
    }

    /// Connects directly, whatever the environment says.
    ///
    /// ```
    /// # struct Adapter;
    /// let builder = wsflow_io::ClientBuilder::<Adapter>::new("ws://example.com:9002/").no_proxy();
    /// assert!(builder.route().unwrap().proxy().is_none());
    /// ```
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxyChoice::Direct;
        self
    }

    /// Bytes the server already sent, read past something else on the stream (the reply
    /// of a proxy): the upgrade reads them before the stream.
    ///
    /// ```
    /// # struct Adapter;
    /// let builder = wsflow_io::ClientBuilder::<Adapter>::new("ws://example.com/")
    ///     .read_ahead(wsflow_io::Bytes::from_static(b"HTTP/1.1 101 "));
    /// ```
    pub fn read_ahead(mut self, bytes: Bytes) -> Self {
        self.read_ahead = bytes;
        self
    }

    /// Where the connection goes: directly, or through the proxy set with
    /// [`proxy`](Self::proxy) or found in the environment (see [`Route`]).
    ///
    /// # Errors
    /// [`Error::Url`] for a bad URL, [`Error::Proxy`] for a bad proxy URL given to
    /// [`proxy`](Self::proxy), [`Error::Transport`] (`InvalidInput`, naming the variable)
    /// for a bad one in the environment.
    pub fn route(&self) -> Result<Route, Error> {
        Route::new(self.request()?, self.config.clone(), &self.proxy)
    }

    /// The configuration set with [`config`](Self::config).
    pub fn get_config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The span of a connection to this builder's URL (see [`trace`](crate::trace)).
    pub fn span(&self) -> crate::trace::ConnectionSpan {
        let request = self.request.as_ref().ok();
        crate::trace::ConnectionSpan::client(request.map(|request| (request.host(), request.port())))
    }

    /// The request to send.
    ///
    /// # Errors
    /// [`Error::Url`] for a bad URL.
    pub fn request(&self) -> Result<&ClientRequest, Error> {
        self.request.as_ref().map_err(|error| Error::Url(error.clone()))
    }

    /// The TLS configuration for `wss://`: the one set, or the default; offering the ALPN
    /// protocols `alpn` instead of its own when `alpn` is not empty.
    ///
    /// ```
    /// # struct Adapter;
    /// let builder = wsflow_io::ClientBuilder::<Adapter>::new("wss://example.com/");
    /// assert!(builder.tls_client_config(&[]).unwrap().alpn_protocols.is_empty());
    /// assert_eq!(builder.tls_client_config(&[b"h2"]).unwrap().alpn_protocols, [b"h2".to_vec()]);
    /// ```
    ///
    /// # Errors
    /// When the default cannot be built.
    #[cfg(feature = "rustls")]
    pub fn tls_client_config(&self, alpn: &[&[u8]]) -> io::Result<Arc<rustls::ClientConfig>> {
        let config = match &self.tls_config {
            Some(config) => config.clone(),
            None => crate::tls::default_tls_config()?,
        };
        if alpn.is_empty() {
            return Ok(config);
        }
        let mut config = Arc::unwrap_or_clone(config);
        config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        Ok(Arc::new(config))
    }

    /// The error for a `wss://` URL when the adapter was built without TLS.
    pub fn tls_unsupported(adapter: &str) -> Error {
        Error::Transport(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("wss:// needs the `rustls` feature of {adapter}"),
        ))
    }

    /// Starts the opening handshake at `now`, with fresh entropy from the OS for the key
    /// and the masks, and the bytes set with [`read_ahead`](Self::read_ahead) fed in.
    ///
    /// # Errors
    /// [`Error::Url`] for a bad URL, [`Error::Send`] for an invalid header,
    /// [`Error::Transport`] when the OS has no randomness to give.
    pub fn handshake(self, now: Instant) -> Result<ClientHandshake, Error> {
        let request = self.request?;
        let mut entropy = [0; 32];
        getrandom::fill(&mut entropy).map_err(io::Error::from)?;
        let mut handshake = ClientHandshake::new(&request, self.config, now, entropy)?;
        if !self.read_ahead.is_empty() {
            handshake.handle_data(now, &self.read_ahead);
        }
        Ok(handshake)
    }

    /// Opens TCP (with `TCP_NODELAY`) to the URL's host and port (or to the proxy, then
    /// the tunnel: see [`route`](Self::route)), TLS for `wss://`, and performs the upgrade.
    /// Returns the connection and the server's response.
    ///
    /// # Errors
    /// [`Error::Url`] for a bad URL; [`Error::Transport`] if TCP or TLS fails (or for
    /// `wss://` without the adapter's `rustls` feature, or when the proxy is unreachable);
    /// [`Error::Proxy`] when the proxy refuses or fails the tunnel; [`Error::Rejected`] when the
    /// server answers with another status (status, headers and body included);
    /// [`Error::Handshake`] for an invalid response or a timeout.
    pub fn connect(self) -> R::Connecting
    where
        R: Connector,
    {
        R::connect(self)
    }

    /// Performs the upgrade over a stream the caller opened (TLS or not, any transport).
    ///
    /// # Errors
    /// As [`connect`](Self::connect), without the TCP and TLS part.
    pub fn connect_on<S>(self, stream: S) -> R::Connecting
    where
        R: ConnectOn<S>,
    {
        R::connect_on(self, stream)
    }
}

/// The server's response when the upgrade was accepted, or the failure as an [`Error`]
/// (the core has queued the shutdown: write it, then return the error).
///
/// With feature `tracing`, a rejection or failure is recorded in the current span (see
/// [`trace`](crate::trace)); record the success with [`trace::accepted`](crate::trace::accepted)
/// once the connection is open.
///
/// # Errors
/// [`Error::Rejected`] for another status, [`Error::Handshake`] for an invalid response
/// or a timeout.
pub fn response_of(event: ClientEvent) -> Result<Response, Error> {
    match event {
        ClientEvent::Accepted(response) => Ok(response),
        ClientEvent::Rejected(response) => {
            crate::trace::rejected(response.status());
            Err(Error::Rejected(Box::new(response)))
        }
        ClientEvent::Failed(error) => {
            crate::trace::failed(&error);
            Err(Error::Handshake(error))
        }
    }
}
