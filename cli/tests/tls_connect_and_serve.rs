//! wss://: `wsflow serve --tls-cert/--tls-key` and `wsflow connect` with `--cacert`,
//! `--insecure`, and the failures a bad certificate gives.

mod common;

use std::path::PathBuf;

use common::{run, Serve};

/// A self-signed certificate for `localhost`, written as PEM files in a fresh directory.
struct Certificate {
    dir: PathBuf,
    cert: String,
    key: String,
}

impl Certificate {
    fn new(name: &str) -> Self {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let dir = std::env::temp_dir().join(format!("wsflow-cli-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, generated.cert.pem()).unwrap();
        std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
        Self {
            dir,
            cert: cert.to_string_lossy().into_owned(),
            key: key.to_string_lossy().into_owned(),
        }
    }
}

impl Drop for Certificate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `wss://localhost:PORT/` for a server started with `certificate`.
fn tls_server(certificate: &Certificate) -> (Serve, String) {
    let server = Serve::start(&["--tls-cert", &certificate.cert, "--tls-key", &certificate.key]);
    assert!(server.url.starts_with("wss://127.0.0.1:"), "{}", server.url);
    let url = server.url.replace("127.0.0.1", "localhost");
    (server, url)
}

#[test]
fn cacert_trusts_the_servers_certificate() {
    let certificate = Certificate::new("cacert");
    let (_server, url) = tls_server(&certificate);
    let run = run(&["connect", "--cacert", &certificate.cert, &url], b"over tls\nagain\n");
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.out(), "over tls\nagain\n");
}

#[test]
fn binary_streams_over_tls() {
    let certificate = Certificate::new("binary");
    let (_server, url) = tls_server(&certificate);
    let data: Vec<u8> = (0..2u32 << 20)
        .map(|n| (n.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let run = run(&["connect", "--binary", "--cacert", &certificate.cert, &url], &data);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stdout == data, "got {} bytes back", run.stdout.len());
}

#[test]
fn unknown_issuer_is_a_connect_failure() {
    let certificate = Certificate::new("unknown");
    let (_server, url) = tls_server(&certificate);
    let run = run(&["connect", &url], b"hello\n");
    assert_eq!(run.code(), 3, "{run:?}");
    assert!(
        run.stderr.contains("certificate") && run.stderr.contains("UnknownIssuer"),
        "{}",
        run.stderr
    );
    // Trusting another certificate is no better.
    let other = Certificate::new("other");
    let run = common::run(&["connect", "--cacert", &other.cert, &url], b"hello\n");
    assert_eq!(run.code(), 3, "{run:?}");
}

#[test]
fn name_mismatch_is_a_connect_failure() {
    let certificate = Certificate::new("name");
    let (server, _) = tls_server(&certificate);
    // The certificate is for localhost, not 127.0.0.1.
    let run = run(&["connect", "--cacert", &certificate.cert, &server.url], b"");
    assert_eq!(run.code(), 3, "{run:?}");
    assert!(run.stderr.contains("not valid for name"), "{}", run.stderr);
}

#[test]
fn insecure_accepts_any_certificate() {
    let certificate = Certificate::new("insecure");
    let (server, _) = tls_server(&certificate);
    let run = run(&["connect", "--insecure", &server.url], b"trusting\n");
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.out(), "trusting\n");
}

#[test]
fn plain_client_to_a_tls_server_fails_to_connect() {
    let certificate = Certificate::new("plain");
    let (server, _) = tls_server(&certificate);
    let url = server.url.replace("wss://", "ws://");
    let run = run(&["connect", "--connect-timeout", "2", &url], b"");
    assert_eq!(run.code(), 3, "{run:?}");
}

#[test]
fn unreadable_certificate_files_are_reported() {
    let run = run(
        &["connect", "--cacert", "/nonexistent/ca.pem", "wss://localhost:1/"],
        b"",
    );
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(run.stderr.contains("/nonexistent/ca.pem"), "{}", run.stderr);
    let run = common::run(
        &[
            "serve",
            "--tls-cert",
            "/nonexistent/c.pem",
            "--tls-key",
            "/nonexistent/k.pem",
            "127.0.0.1:0",
        ],
        b"",
    );
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(run.stderr.contains("/nonexistent/c.pem"), "{}", run.stderr);
}
