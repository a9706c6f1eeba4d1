//! Sends a file as one binary message; the server stores it and answers with its SHA-256.
//!
//! `send-file serve [ADDR] [DIR] [--tls CERT_PEM KEY_PEM]` (default 127.0.0.1:9002, `.`):
//! stores each binary message as `DIR/<sha256>.bin`.
//! `send-file send URL FILE [--ca CERT_PEM]`: exits 1 unless the server's digest matches.
//! `wss://` and `--tls`/`--ca` need `--features rustls`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::thread;

use sha2::{Digest, Sha256};
use wsflow_blocking::{accept, ClientBuilder, CloseCode, Error, Message, Transport};

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let option = |name: &str, count: usize| {
        let at = args.iter().position(|arg| arg == name)?;
        Some(args[at + 1..=at + count].to_vec())
    };
    let positional = |index: usize, default: &str| {
        args.get(index)
            .filter(|arg| !arg.starts_with("--"))
            .map_or(default.to_owned(), String::clone)
    };
    match args.first().map(String::as_str) {
        Some("serve") => serve(
            &positional(1, "127.0.0.1:9002"),
            PathBuf::from(positional(2, ".")),
            option("--tls", 2),
        ),
        Some("send") => send(
            &positional(1, "ws://127.0.0.1:9002/"),
            Path::new(&positional(2, "")),
            option("--ca", 1),
        ),
        _ => {
            eprintln!("usage: send-file serve [ADDR] [DIR] [--tls CERT KEY] | send-file send URL FILE [--ca CERT]");
            std::process::exit(2);
        }
    }
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|byte| format!("{byte:02x}")).collect()
}

fn serve(addr: &str, dir: PathBuf, tls: Option<Vec<String>>) -> Result<(), Error> {
    #[cfg(feature = "rustls")]
    let tls = tls.map(|paths| tls::server_config(&paths[0], &paths[1])).transpose()?;
    #[cfg(not(feature = "rustls"))]
    assert!(tls.is_none(), "--tls needs --features rustls");
    let listener = TcpListener::bind(addr)?;
    println!(
        "storing files in {} from ws://{}/",
        dir.display(),
        listener.local_addr()?
    );
    for stream in listener.incoming() {
        let (stream, dir) = (stream?, dir.clone());
        #[cfg(feature = "rustls")]
        let tls = tls.clone();
        thread::spawn(move || {
            #[cfg(feature = "rustls")]
            let result = match tls {
                Some(config) => wsflow_blocking::tls_accept(stream, config)
                    .map_err(Error::from)
                    .and_then(|s| store(s, &dir)),
                None => store(stream, &dir),
            };
            #[cfg(not(feature = "rustls"))]
            let result = store(stream, &dir);
            if let Err(error) = result {
                eprintln!("connection failed: {error}");
            }
        });
    }
    Ok(())
}

fn store(stream: impl Transport, dir: &Path) -> Result<(), Error> {
    let mut ws = accept(stream)?;
    while let Some(message) = ws.recv_message()? {
        if let Message::Binary(data) = message {
            let digest = sha256_hex(&data);
            std::fs::write(dir.join(format!("{digest}.bin")), &data)?;
            println!("stored {} bytes as {digest}.bin", data.len());
            ws.send_text(digest)?;
        }
    }
    Ok(())
}

fn send(url: &str, file: &Path, ca: Option<Vec<String>>) -> Result<(), Error> {
    let data = std::fs::read(file)?;
    let local = sha256_hex(&data);
    let client = ClientBuilder::new(url);
    #[cfg(feature = "rustls")]
    let client = match ca {
        Some(paths) => client.tls_config(tls::client_config(&paths[0])?),
        None => client,
    };
    #[cfg(not(feature = "rustls"))]
    assert!(ca.is_none(), "--ca needs --features rustls");
    let (mut ws, _) = client.connect()?;
    ws.send_binary(data)?;
    let answer = ws.recv_message()?;
    ws.close(CloseCode::NORMAL, "")?;
    while ws.recv()?.is_some() {}
    let remote = answer
        .map(|message| String::from_utf8_lossy(message.payload()).into_owned())
        .unwrap_or_default();
    println!("server: {remote}\nlocal:  {local}");
    if remote != local {
        eprintln!("mismatch");
        std::process::exit(1);
    }
    Ok(())
}

#[cfg(feature = "rustls")]
mod tls {
    use std::io;
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn certificates(path: &str) -> io::Result<Vec<CertificateDer<'static>>> {
        CertificateDer::pem_file_iter(path)
            .and_then(Iterator::collect)
            .map_err(io::Error::other)
    }

    pub fn server_config(cert: &str, key: &str) -> io::Result<Arc<rustls::ServerConfig>> {
        let key = PrivateKeyDer::from_pem_file(key).map_err(io::Error::other)?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(certificates(cert)?, key)
            .map_err(io::Error::other)?;
        Ok(Arc::new(config))
    }

    pub fn client_config(ca: &str) -> io::Result<Arc<rustls::ClientConfig>> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(certificates(ca)?);
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}
