//! A self-signed certificate for `localhost`, the rustls configurations that serve and trust
//! it, and a TLS server that only runs handshakes (for clients that must refuse it).

use std::net::TcpListener;
use std::sync::Arc;
use std::thread;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A server configuration with a fresh self-signed certificate for `localhost`, and a client
/// configuration that trusts only that certificate; the certificate and its key in PEM too,
/// for servers that are not ours.
pub struct SelfSigned {
    pub server: Arc<rustls::ServerConfig>,
    pub client: Arc<rustls::ClientConfig>,
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn self_signed() -> SelfSigned {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    SelfSigned {
        server: Arc::new(server),
        client: Arc::new(client),
        cert_pem: cert.pem(),
        key_pem: key_pair.serialize_pem(),
    }
}

/// A loopback TLS server with `config` that accepts one connection, runs the TLS handshake
/// as far as the client lets it, and hangs up. Returns its port.
pub fn handshake_only_server(config: Arc<rustls::ServerConfig>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let mut tls = rustls::ServerConnection::new(config).unwrap();
        while tls.is_handshaking() {
            if tls.complete_io(&mut tcp).is_err() {
                break;
            }
        }
    });
    port
}
