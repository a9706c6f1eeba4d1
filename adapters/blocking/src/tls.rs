//! TLS through rustls (feature `rustls`).

use std::io;
use std::net::TcpStream;
use std::sync::Arc;

use crate::transport::MaybeTlsStream;

/// A server-side TLS stream, from [`tls_accept`].
pub type TlsServerStream = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

/// Wraps an accepted TCP stream in TLS, for [`accept`](crate::accept) or
/// [`accept_with`](crate::accept_with). The TLS handshake runs during the first reads of
/// the WebSocket handshake, so [`Config::handshake_timeout`](wsflow::Config) bounds both.
///
/// # Errors
/// When rustls refuses the configuration.
pub fn tls_accept(stream: TcpStream, config: Arc<rustls::ServerConfig>) -> io::Result<TlsServerStream> {
    let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
    Ok(rustls::StreamOwned::new(conn, stream))
}

/// The client stream for `wss://` to `host`, with `config`.
pub(crate) fn client_stream(
    tcp: TcpStream,
    host: &str,
    config: Arc<rustls::ClientConfig>,
) -> io::Result<MaybeTlsStream> {
    let conn = rustls::ClientConnection::new(config, wsflow_io::server_name(host)?).map_err(io::Error::other)?;
    Ok(MaybeTlsStream::Rustls(Box::new(rustls::StreamOwned::new(conn, tcp))))
}
