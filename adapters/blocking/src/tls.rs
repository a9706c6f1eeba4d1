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

/// The client stream for `wss://`: `config`, or the webpki-roots root store with ring.
pub(crate) fn client_stream(
    tcp: TcpStream,
    host: &str,
    config: Option<Arc<rustls::ClientConfig>>,
) -> io::Result<MaybeTlsStream> {
    let config = match config {
        Some(config) => config,
        None => default_client_config()?,
    };
    let name = rustls_pki_types::ServerName::try_from(host.to_owned())
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
    let conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
    Ok(MaybeTlsStream::Rustls(Box::new(rustls::StreamOwned::new(conn, tcp))))
}

fn default_client_config() -> io::Result<Arc<rustls::ClientConfig>> {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
