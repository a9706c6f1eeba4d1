//! `wss`: echo over TLS. The servers `wss:wsflow-tokio` and `wss:tokio-tungstenite` are the
//! plain ones behind tokio-rustls, with one rustls configuration (ring, TLS 1.3: the same
//! cipher suite for all); the load generator connects through tokio-rustls with a client
//! configuration that trusts the run's self-signed certificate. The certificate is made
//! by the load generator and handed to the server processes through files named by
//! `WSFLOW_BENCH_TLS` (the child processes inherit it).

use std::sync::{Arc, OnceLock};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const ENV: &str = "WSFLOW_BENCH_TLS";

/// The server and client configurations of this run.
pub fn configs() -> &'static (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    static CONFIGS: OnceLock<(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>)> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let (cert, key) = match std::env::var_os(ENV) {
            Some(dir) => {
                let dir = std::path::PathBuf::from(dir);
                (
                    std::fs::read(dir.join("cert.der")).expect("the run's certificate"),
                    std::fs::read(dir.join("key.der")).expect("the run's key"),
                )
            }
            None => {
                let rcgen::CertifiedKey { cert, key_pair } =
                    rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
                let dir = std::env::temp_dir().join(format!("wsflow-bench-tls-{}", std::process::id()));
                std::fs::create_dir_all(&dir).expect("a directory for the certificate");
                std::fs::write(dir.join("cert.der"), cert.der()).expect("write the certificate");
                std::fs::write(dir.join("key.der"), key_pair.serialize_der()).expect("write the key");
                // Read by the server processes started after this.
                std::env::set_var(ENV, &dir);
                (cert.der().to_vec(), key_pair.serialize_der())
            }
        };
        // ring, as wsflow's own TLS defaults (this rustls marks it deprecated for lacking
        // post-quantum key exchange; every side of the run uses the same).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cert = CertificateDer::from(cert);
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)))
            .expect("the server configuration");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (Arc::new(server), Arc::new(client))
    })
}
