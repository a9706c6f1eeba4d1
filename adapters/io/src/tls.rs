//! TLS defaults for clients (feature `rustls`), shared by every adapter.

use std::io;
use std::sync::Arc;

/// A client configuration trusting the webpki-roots (Mozilla) root store, with the `ring`
/// provider and rustls' safe default protocol versions.
///
/// # Errors
/// When rustls refuses the configuration.
pub fn default_tls_config() -> io::Result<Arc<rustls::ClientConfig>> {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The name a TLS client checks the server's certificate against: the URL's host.
///
/// # Errors
/// `InvalidInput` for a host that is no DNS name or IP address.
pub fn server_name(host: &str) -> io::Result<rustls_pki_types::ServerName<'static>> {
    rustls_pki_types::ServerName::try_from(host.to_owned())
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))
}
