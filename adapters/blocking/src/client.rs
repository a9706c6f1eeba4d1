//! The client side: [`connect`] and [`ClientBuilder`].

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use wsflow::{ClientHandshake, ProxyHandshake, Response};
use wsflow_io::{response_of, Bytes, ConnectOn, Connector, Route};

use crate::pump::{drive_handshake, Inbox};
use crate::transport::{MaybeTlsStream, Transport};
use crate::{Error, WebSocket};

/// Connects to a `ws://` (or, with the `rustls` feature, `wss://`) URL with the default
/// configuration. Returns the connection and the server's 101 response.
///
/// # Errors
/// [`Error::Url`] for a bad URL; transport errors (also for `wss://`
/// without the `rustls` feature); [`Error::Rejected`] with the
/// server's response when it refused the upgrade; [`Error::Handshake`]
/// for an invalid response or the handshake timeout.
pub fn connect(url: &str) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    ClientBuilder::new(url).connect()
}

/// Opens client connections over blocking sockets: see [`wsflow_io::ClientBuilder`].
///
/// ```no_run
/// let (mut ws, response) = wsflow_blocking::ClientBuilder::new("ws://127.0.0.1:9002/chat")
///     .subprotocol("chat")
///     .header("Authorization", "Bearer secret")
///     .connect()?;
/// assert_eq!(response.subprotocol(), Some("chat"));
/// ws.send_text("hello")?;
/// # Ok::<(), wsflow_blocking::Error>(())
/// ```
pub type ClientBuilder = wsflow_io::ClientBuilder<Blocking>;

/// The blocking adapter as a [`wsflow_io`] client runtime: how [`ClientBuilder`] connects
/// (TCP within [`Config::handshake_timeout`](wsflow::Config), the proxy's tunnel, TLS for
/// `wss://`).
#[derive(Clone, Copy, Debug)]
pub struct Blocking;

impl Connector for Blocking {
    type Connecting = Result<(WebSocket<MaybeTlsStream>, Response), Error>;

    fn connect(builder: ClientBuilder) -> Self::Connecting {
        let request = builder.request()?;
        let timeout = builder.get_config().get_handshake_timeout();
        let mut route = builder.route()?;
        let (to_host, to_port) = route.address();
        let mut tcp = connect_tcp(to_host, to_port, timeout).map_err(|error| route.unreachable(error))?;
        if let Some(target) = route.to_resolve() {
            let addresses = target.to_socket_addrs()?;
            route.resolved(addresses)?;
        }
        let read_ahead = tunnel(&route, &mut tcp)?;
        let stream = if request.is_secure() {
            #[cfg(feature = "rustls")]
            {
                crate::tls::client_stream(tcp, request.host_unbracketed(), builder.tls_client_config(&[])?)?
            }
            #[cfg(not(feature = "rustls"))]
            {
                drop(tcp);
                return Err(ClientBuilder::tls_unsupported("wsflow-blocking"));
            }
        } else {
            MaybeTlsStream::Plain(tcp)
        };
        handshake(builder.read_ahead(read_ahead), stream)
    }
}

impl<S: Transport> ConnectOn<S> for Blocking {
    type Connecting = Result<(WebSocket<S>, Response), Error>;

    fn connect_on(builder: ClientBuilder, stream: S) -> Self::Connecting {
        handshake(builder, stream)
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

/// The proxy's tunnel, if the route has one: the bytes that followed the proxy's reply.
fn tunnel(route: &Route, tcp: &mut TcpStream) -> Result<Bytes, Error> {
    let Some(mut handshake) = route.proxy_handshake(Instant::now())? else {
        return Ok(Bytes::new());
    };
    let event = drive_handshake(&mut handshake, tcp, &mut Inbox::new(), ProxyHandshake::poll_event)?;
    route.tunnel_opened(event, handshake)
}

fn handshake<S: Transport>(builder: ClientBuilder, mut stream: S) -> Result<(WebSocket<S>, Response), Error> {
    let span = builder.span();
    let mut handshake = builder.handshake(Instant::now())?;
    let mut inbox = Inbox::new();
    let event = drive_handshake(&mut handshake, &mut stream, &mut inbox, ClientHandshake::poll_event)?;
    let response = span.in_scope(|| response_of(event))?;
    let conn = handshake.into_connection(Instant::now())?;
    span.in_scope(|| wsflow_io::trace::accepted(response.subprotocol(), &conn));
    Ok((WebSocket::start(stream, conn, inbox, span)?, response))
}
