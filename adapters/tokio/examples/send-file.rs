//! Sends a file as one binary message; the server stores it and answers with its SHA-256.
//!
//! ```text
//! send-file serve ADDR DIR [--tls CERT_PEM KEY_PEM]   (TLS needs --features rustls)
//! send-file send URL FILE [--ca CA_PEM]               (wss:// needs --features rustls)
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use wsflow_tokio::{Config, Error, Message};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["serve", addr, dir, tls @ ..] => serve(addr, PathBuf::from(dir), tls).await,
        ["send", url, file, ca @ ..] => send(url, Path::new(file), ca).await,
        _ => {
            eprintln!(
                "usage: send-file serve ADDR DIR [--tls CERT_PEM KEY_PEM] | send-file send URL FILE [--ca CA_PEM]"
            );
            std::process::exit(2);
        }
    }
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Files up to 1 GiB.
fn config() -> Arc<Config> {
    let mut config = Config::default();
    config.max_message_size(1 << 30).max_frame_size(1 << 30);
    Arc::new(config)
}

async fn serve(addr: &str, dir: PathBuf, tls: &[&str]) -> Result<(), Error> {
    let tls = match tls {
        [] => None,
        ["--tls", cert, key] => Some(tls::acceptor(cert, key)?),
        _ => return Err(std::io::Error::other("expected --tls CERT_PEM KEY_PEM").into()),
    };
    let listener = TcpListener::bind(addr).await?;
    println!(
        "send-file: storing files in {} from {}",
        dir.display(),
        listener.local_addr()?
    );
    loop {
        let (tcp, peer) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let (dir, tls) = (dir.clone(), tls.clone());
        tokio::spawn(async move {
            let stored = match tls {
                Some(tls) => match tls::accept(&tls, tcp).await {
                    Ok(stream) => store_files(stream, &dir).await,
                    Err(error) => Err(error.into()),
                },
                None => store_files(tcp, &dir).await,
            };
            if let Err(error) = stored {
                eprintln!("send-file: {peer}: {error}");
            }
        });
    }
}

/// Stores every binary message under its SHA-256 and answers with the hash.
async fn store_files<S: AsyncRead + AsyncWrite + Unpin>(stream: S, dir: &Path) -> Result<(), Error> {
    let accept = |_: &wsflow_tokio::Request| wsflow_tokio::Decision::Accept(wsflow_tokio::Accept::new());
    let wsflow_tokio::Accepted::WebSocket(mut websocket, _) =
        wsflow_tokio::accept_with(stream, config(), accept).await?
    else {
        return Ok(());
    };
    while let Some(message) = websocket.recv_message().await? {
        if let Message::Binary(data) = message {
            let hash = sha256_hex(&data);
            tokio::fs::write(dir.join(&hash), &data).await?;
            println!("send-file: stored {} bytes as {hash}", data.len());
            websocket.send_text(hash).await?;
        }
    }
    Ok(())
}

async fn send(url: &str, file: &Path, ca: &[&str]) -> Result<(), Error> {
    let data = tokio::fs::read(file).await?;
    let local = sha256_hex(&data);
    let builder = wsflow_tokio::ClientBuilder::new(url).config(config());
    let builder = match ca {
        [] => builder,
        ["--ca", ca] => tls::trusting(builder, ca)?,
        _ => return Err(std::io::Error::other("expected --ca CA_PEM").into()),
    };
    let (mut websocket, _) = builder.connect().await?;
    websocket.send_binary(data).await?;
    let answer = websocket.recv_message().await?;
    websocket.close(wsflow_tokio::CloseCode::NORMAL, "").await?;
    while websocket.recv().await?.is_some() {}
    let remote = match &answer {
        Some(Message::Text(text)) => text.as_str(),
        _ => "(no answer)",
    };
    println!("local  {local}\nremote {remote}");
    if remote != local {
        eprintln!("send-file: hashes differ");
        std::process::exit(1);
    }
    Ok(())
}

#[cfg(feature = "rustls")]
mod tls {
    use std::io;
    use std::sync::Arc;

    use tokio::net::TcpStream;
    use wsflow_tokio::tokio_rustls::rustls::{self, pki_types::pem::PemObject, pki_types::CertificateDer};
    use wsflow_tokio::tokio_rustls::{server::TlsStream, TlsAcceptor};

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    pub fn acceptor(cert: &str, key: &str) -> io::Result<TlsAcceptor> {
        let certs = CertificateDer::pem_file_iter(cert)
            .and_then(Iterator::collect)
            .map_err(io::Error::other)?;
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).map_err(io::Error::other)?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
            .map_err(io::Error::other)?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    pub async fn accept(acceptor: &TlsAcceptor, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        acceptor.accept(tcp).await
    }

    /// Trusts the certificates in `ca` (e.g. a self-signed server certificate).
    pub fn trusting(builder: wsflow_tokio::ClientBuilder, ca: &str) -> io::Result<wsflow_tokio::ClientBuilder> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).map_err(io::Error::other)? {
            roots.add(cert.map_err(io::Error::other)?).map_err(io::Error::other)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(builder.tls_config(Arc::new(config)))
    }
}

#[cfg(not(feature = "rustls"))]
mod tls {
    use std::io;

    use tokio::net::TcpStream;

    fn unsupported() -> io::Error {
        io::Error::new(io::ErrorKind::Unsupported, "TLS needs --features rustls")
    }

    /// Cannot exist: there is no TLS without the feature.
    #[derive(Clone)]
    pub enum NoTls {}

    pub fn acceptor(_cert: &str, _key: &str) -> io::Result<NoTls> {
        Err(unsupported())
    }

    pub async fn accept(acceptor: &NoTls, _tcp: TcpStream) -> io::Result<TcpStream> {
        match *acceptor {}
    }

    pub fn trusting(_builder: wsflow_tokio::ClientBuilder, _ca: &str) -> io::Result<wsflow_tokio::ClientBuilder> {
        Err(unsupported())
    }
}
