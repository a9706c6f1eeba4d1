//! Sends a file as one binary message and checks the SHA-256 the server answers.
//!
//! - `send-file serve [ADDR] [DIR] [--tls CERT_PEM KEY_PEM]`: stores every binary message
//!   in DIR (named by its SHA-256) and answers with its SHA-256 in hex.
//! - `send-file send URL FILE [--ca CERT_PEM]`: sends FILE, prints the answer, exits 1 if it
//!   is not the local SHA-256. `--ca` trusts a (self-signed) certificate for `wss://`.
//!
//! TLS needs `--features rustls`.

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use smol::io::{AsyncRead, AsyncWrite};
use smol::net::TcpListener;
use wsflow_smol::{CloseCode, Error, Message, WebSocket};

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let option = |name: &str| args.iter().position(|arg| arg == name).map(|index| &args[index + 1..]);
    smol::block_on(async {
        match args.first().map(String::as_str) {
            Some("serve") => {
                let addr = args.get(1).map_or("127.0.0.1:9002", String::as_str);
                let dir = PathBuf::from(args.get(2).map_or(".", String::as_str));
                serve(addr, dir, option("--tls")).await
            }
            Some("send") if args.len() >= 3 => send(&args[1], &args[2], option("--ca")).await,
            _ => {
                eprintln!("usage: send-file serve [ADDR] [DIR] [--tls CERT KEY] | send-file send URL FILE [--ca CERT]");
                std::process::exit(2);
            }
        }
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

async fn serve(addr: &str, dir: PathBuf, tls: Option<&[String]>) -> Result<(), Error> {
    let acceptor = tls.map(tls::acceptor).transpose()?;
    let listener = TcpListener::bind(addr).await?;
    eprintln!("storing files in {} from {}", dir.display(), listener.local_addr()?);
    loop {
        let (stream, peer) = listener.accept().await?;
        let (dir, acceptor) = (dir.clone(), acceptor.clone());
        smol::spawn(async move {
            let result = match acceptor {
                Some(acceptor) => match tls::accept(&acceptor, stream).await {
                    Ok(stream) => store_files(stream, &dir).await,
                    Err(error) => Err(error.into()),
                },
                None => store_files(stream, &dir).await,
            };
            if let Err(error) = result {
                eprintln!("{peer}: {error}");
            }
        })
        .detach();
    }
}

async fn store_files<S: AsyncRead + AsyncWrite + Unpin>(stream: S, dir: &std::path::Path) -> Result<(), Error> {
    let mut socket = wsflow_smol::accept(stream).await?;
    while let Some(message) = socket.recv_message().await? {
        if let Message::Binary(bytes) = message {
            let hash = sha256_hex(&bytes);
            smol::fs::write(dir.join(&hash), &bytes).await?;
            println!("stored {} bytes as {hash}", bytes.len());
            socket.send_text(hash).await?;
        }
    }
    Ok(())
}

async fn send(url: &str, file: &str, ca: Option<&[String]>) -> Result<(), Error> {
    let bytes = smol::fs::read(file).await?;
    let local = sha256_hex(&bytes);
    let mut builder = wsflow_smol::ClientBuilder::new(url);
    if let Some(ca) = ca {
        builder = tls::trust(builder, &ca[0])?;
    }
    let (mut socket, _) = builder.connect().await?;
    socket.send_binary(bytes).await?;
    let answer = socket.recv_message().await?;
    finish(&mut socket).await?;
    let Some(Message::Text(remote)) = answer else {
        eprintln!("no answer from the server");
        std::process::exit(1);
    };
    println!("server: {remote}\nlocal:  {local}");
    if remote.as_str() != local {
        eprintln!("SHA-256 mismatch");
        std::process::exit(1);
    }
    Ok(())
}

async fn finish<S: AsyncRead + AsyncWrite + Unpin>(socket: &mut WebSocket<S>) -> Result<(), Error> {
    socket.close(CloseCode::NORMAL, "").await?;
    while socket.recv().await?.is_some() {}
    Ok(())
}

#[cfg(feature = "rustls")]
mod tls {
    use std::io;
    use std::sync::Arc;

    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use smol::net::TcpStream;
    use wsflow_smol::futures_rustls::{server::TlsStream, TlsAcceptor};
    use wsflow_smol::{rustls, ClientBuilder, Error};

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn pem_error(error: rustls_pki_types::pem::Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, error)
    }

    /// A TLS acceptor for `[CERT_PEM, KEY_PEM]`.
    pub fn acceptor(paths: &[String]) -> Result<TlsAcceptor, Error> {
        let certificates = CertificateDer::pem_file_iter(&paths[0])
            .and_then(Iterator::collect)
            .map_err(pem_error)?;
        let key = PrivateKeyDer::from_pem_file(&paths[1]).map_err(pem_error)?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_no_client_auth().with_single_cert(certificates, key))
            .map_err(io::Error::other)?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    pub async fn accept(acceptor: &TlsAcceptor, stream: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        acceptor.accept(stream).await
    }

    /// Trusts the certificate in `path` (instead of the webpki roots).
    pub fn trust(builder: ClientBuilder, path: &str) -> Result<ClientBuilder, Error> {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_file_iter(path).map_err(pem_error)? {
            roots.add(certificate.map_err(pem_error)?).map_err(io::Error::other)?;
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
    use smol::net::TcpStream;
    use wsflow_smol::{ClientBuilder, Error};

    fn unsupported() -> Error {
        std::io::Error::new(std::io::ErrorKind::Unsupported, "TLS needs --features rustls").into()
    }

    /// No TLS acceptor can exist without the feature.
    #[derive(Clone)]
    pub enum Acceptor {}

    pub fn acceptor(_paths: &[String]) -> Result<Acceptor, Error> {
        Err(unsupported())
    }

    pub async fn accept(acceptor: &Acceptor, _stream: TcpStream) -> std::io::Result<TcpStream> {
        match *acceptor {}
    }

    pub fn trust(_builder: ClientBuilder, _path: &str) -> Result<ClientBuilder, Error> {
        Err(unsupported())
    }
}
