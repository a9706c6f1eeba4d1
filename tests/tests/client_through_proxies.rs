//! Each adapter's client (tokio, smol, blocking) reaches an in-process echo server over ws
//! and wss through real proxies started on loopback: `tinyproxy` (HTTP CONNECT, with and
//! without BasicAuth) and `microsocks` (SOCKS5, socks5h and socks5, with and without a user
//! name and password), and the proxies' logs show the tunnels. Wrong or missing
//! credentials, a refusing proxy, an unreachable proxy, a proxy that answers garbage and
//! one that never answers each give their own error, within the handshake timeout.
//! wsflow's HTTP/2 client (`Http2Client::connect`, RFC 8441) goes through both proxies too.
//!
//! `tests/proxies/setup.sh` installs the proxies. Without them these tests print why and
//! pass, unless `CI` is set: then they fail.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::tls::self_signed;
use common::within;
use wsflow::{Config, Message, ProxyError, SocksReply};
use wsflow_io::Error;

/// The proxy binaries, or `None` (with the reason printed) when a test must be skipped.
/// Under `CI` a missing binary fails the test.
fn binary(name: &str) -> Option<PathBuf> {
    let found = ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .chain(
            std::env::var_os("PATH")
                .iter()
                .flat_map(std::env::split_paths)
                .map(|dir| dir.join(name)),
        )
        .find(|path| path.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is not installed (CI is set): run tests/proxies/setup.sh"
        );
        eprintln!("skipped: {name} is not installed (tests/proxies/setup.sh installs it)");
    }
    found
}

/// A port that was free a moment ago (the proxies cannot report the one they bound).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A proxy process, killed on drop; its log (tinyproxy's file, microsocks' stdout).
struct Proxy {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log says `what` (the proxy writes it after the tunnel is up).
    fn assert_logged(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.log().contains(what) {
            assert!(
                Instant::now() < deadline,
                "the proxy's log lacks {what:?}:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wsflow-{name}-{}-{count}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts `command` for a port (a few tries: another test may take the port first) and
/// waits until the port accepts connections.
fn start(name: &str, command: impl Fn(u16, &Path) -> (Command, PathBuf)) -> Proxy {
    for _ in 0..5 {
        let dir = TempDir::new(name);
        let port = free_port();
        let (mut command, log) = command(port, &dir.0);
        let mut child = command.stdin(Stdio::null()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Proxy {
                    child,
                    port,
                    log,
                    _dir: dir,
                };
            }
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("{name} did not start")
}

/// tinyproxy on loopback, with BasicAuth when `auth` is given, allowing CONNECT only to
/// `connect_port` when given (to all ports otherwise).
fn tinyproxy(auth: Option<(&str, &str)>, connect_port: Option<u16>) -> Option<Proxy> {
    let binary = binary("tinyproxy")?;
    Some(start("tinyproxy", |port, dir| {
        let log = dir.join("tinyproxy.log");
        let mut conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{}\"\nLogLevel Connect\n\
             MaxClients 50\nAllow 127.0.0.1\nDisableViaHeader Yes\n",
            log.display()
        );
        if let Some((user, password)) = auth {
            conf.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        if let Some(connect_port) = connect_port {
            conf.push_str(&format!("ConnectPort {connect_port}\n"));
        }
        let path = dir.join("tinyproxy.conf");
        std::fs::write(&path, conf).unwrap();
        let mut command = Command::new(&binary);
        command
            .arg("-d")
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        (command, log)
    }))
}

/// microsocks on loopback, with a user name and password when `auth` is given.
fn microsocks(auth: Option<(&str, &str)>) -> Option<Proxy> {
    let binary = binary("microsocks")?;
    Some(start("microsocks", |port, dir| {
        let log = dir.join("microsocks.log");
        let mut command = Command::new(&binary);
        command.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
        if let Some((user, password)) = auth {
            command.args(["-u", user, "-P", password]);
        }
        // microsocks logs each connection on stderr (unbuffered).
        command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        (command, log)
    }))
}

/// The echo servers (blocking adapter, one thread per connection): ws and wss, each on
/// 127.0.0.1 and, when it can be bound, on ::1 at the same port, so that `localhost`
/// reaches them whichever address a proxy tries first. Started once.
struct Echo {
    ws_port: u16,
    wss_port: u16,
    client_tls: Arc<rustls::ClientConfig>,
}

fn echo() -> &'static Echo {
    static ECHO: OnceLock<Echo> = OnceLock::new();
    ECHO.get_or_init(|| {
        let tls = self_signed();
        let ws_port = serve_echo(None);
        let wss_port = serve_echo(Some(tls.server));
        Echo {
            ws_port,
            wss_port,
            client_tls: tls.client,
        }
    })
}

fn serve_echo(tls: Option<Arc<rustls::ServerConfig>>) -> u16 {
    let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = v4.local_addr().unwrap().port();
    let v6 = TcpListener::bind(("::1", port)).ok();
    for listener in std::iter::once(v4).chain(v6) {
        let tls = tls.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let tls = tls.clone();
                thread::spawn(move || match tls {
                    None => echo_loop(wsflow_blocking::accept(stream)),
                    Some(config) => echo_loop(wsflow_blocking::accept(
                        wsflow_blocking::tls_accept(stream, config).unwrap(),
                    )),
                });
            }
        });
    }
    port
}

fn echo_loop<S: wsflow_blocking::Transport>(websocket: Result<wsflow_blocking::WebSocket<S>, Error>) {
    let Ok(mut websocket) = websocket else { return };
    while let Ok(Some(message)) = websocket.recv_message() {
        if websocket.send(message).is_err() {
            break;
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Adapter {
    Tokio,
    Smol,
    Blocking,
}

const ADAPTERS: [Adapter; 3] = [Adapter::Tokio, Adapter::Smol, Adapter::Blocking];

/// Connects `adapter`'s client to `url` through `proxy` and round-trips two messages;
/// returns the connect error, if any.
fn round_trip(adapter: Adapter, url: &str, proxy: &str, config: Arc<Config>) -> Result<(), Error> {
    let tls = echo().client_tls.clone();
    let text = Message::text(format!("through {proxy} by {adapter:?}"));
    let binary = Message::binary(vec![7u8; 100_000]);
    match adapter {
        Adapter::Blocking => {
            let builder = wsflow_blocking::ClientBuilder::new(url)
                .proxy(proxy)
                .config(config)
                .tls_config(tls);
            let (mut websocket, _) = builder.connect()?;
            for message in [text, binary] {
                websocket.send(message.clone()).unwrap();
                assert_eq!(websocket.recv_message().unwrap(), Some(message));
            }
            websocket.close(wsflow::CloseCode::NORMAL, "done").unwrap();
            while websocket.recv().unwrap().is_some() {}
        }
        Adapter::Tokio => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let builder = wsflow_tokio::ClientBuilder::new(url)
                    .proxy(proxy)
                    .config(config)
                    .tls_config(tls);
                let (mut websocket, _) = builder.connect().await?;
                for message in [text, binary] {
                    websocket.send(message.clone()).await.unwrap();
                    assert_eq!(websocket.recv_message().await.unwrap(), Some(message));
                }
                websocket.close(wsflow::CloseCode::NORMAL, "done").await.unwrap();
                while websocket.recv().await.unwrap().is_some() {}
                Ok::<(), Error>(())
            })?;
        }
        Adapter::Smol => {
            smol::block_on(async {
                let builder = wsflow_smol::ClientBuilder::new(url)
                    .proxy(proxy)
                    .config(config)
                    .tls_config(tls);
                let (mut websocket, _) = builder.connect().await?;
                for message in [text, binary] {
                    websocket.send(message.clone()).await.unwrap();
                    assert_eq!(websocket.recv_message().await.unwrap(), Some(message));
                }
                websocket.close(wsflow::CloseCode::NORMAL, "done").await.unwrap();
                while websocket.recv().await.unwrap().is_some() {}
                Ok::<(), Error>(())
            })?;
        }
    }
    Ok(())
}

/// Every adapter over ws and wss through `proxy` (a URL without the port's digits: the
/// port is appended); checks the log names each target.
fn every_adapter_round_trips(proxy: &Proxy, url_of_proxy: &str, logged: impl Fn(u16) -> String) {
    let echo = echo();
    for adapter in ADAPTERS {
        for url in [
            format!("ws://localhost:{}/chat", echo.ws_port),
            format!("wss://localhost:{}/chat", echo.wss_port),
        ] {
            round_trip(adapter, &url, url_of_proxy, Arc::default())
                .unwrap_or_else(|error| panic!("{adapter:?} to {url} through {url_of_proxy}: {error}"));
        }
    }
    proxy.assert_logged(&logged(echo.ws_port));
    proxy.assert_logged(&logged(echo.wss_port));
}

/// The error every adapter gets from `url` through `proxy`, the same for all three.
fn error_of_every_adapter(url: &str, proxy: &str, config: Arc<Config>) -> Error {
    let mut errors: Vec<Error> = ADAPTERS
        .iter()
        .map(|&adapter| match round_trip(adapter, url, proxy, config.clone()) {
            Ok(()) => panic!("{adapter:?} got through {proxy} to {url}"),
            Err(error) => error,
        })
        .collect();
    let first = errors.remove(0);
    for other in errors {
        assert_eq!(other.to_string(), first.to_string(), "the adapters disagree");
    }
    first
}

fn proxy_error(error: Error) -> ProxyError {
    match error {
        Error::Proxy(error) => error,
        other => panic!("not a proxy error: {other}"),
    }
}

#[test]
fn every_adapter_round_trips_through_tinyproxy() {
    within("tinyproxy", || {
        let Some(proxy) = tinyproxy(None, None) else { return };
        let url = format!("http://127.0.0.1:{}", proxy.port);
        every_adapter_round_trips(&proxy, &url, |port| format!("CONNECT localhost:{port} HTTP/1.1"));
    });
}

#[test]
fn every_adapter_round_trips_through_tinyproxy_with_basic_auth_and_gets_407_without() {
    within("tinyproxy basic auth", || {
        let Some(proxy) = tinyproxy(Some(("alice", "s3cret")), None) else {
            return;
        };
        // The password is percent-encoded in the URL: "s3cret" with its "3" as %33.
        let url = format!("http://alice:s%33cret@127.0.0.1:{}", proxy.port);
        every_adapter_round_trips(&proxy, &url, |port| format!("CONNECT localhost:{port} HTTP/1.1"));
        let target = format!("ws://localhost:{}/", echo().ws_port);
        // Without credentials: 407 with the scheme. With wrong ones tinyproxy 1.11 answers
        // 401 (without Proxy-Authenticate): the status and reason are reported as they come.
        let none = format!("http://127.0.0.1:{}", proxy.port);
        let error = proxy_error(error_of_every_adapter(&target, &none, Arc::default()));
        let expected = ProxyError::HttpRefused {
            status: 407,
            reason: "Proxy Authentication Required".into(),
            authenticate: Some("Basic".into()),
        };
        assert_eq!(error, expected);
        let wrong = format!("http://alice:wrong@127.0.0.1:{}", proxy.port);
        let error = proxy_error(error_of_every_adapter(&target, &wrong, Arc::default()));
        let ProxyError::HttpRefused { status, .. } = &error else {
            panic!("{error}")
        };
        assert!(matches!(status, 401 | 407), "{error}");
        assert!(!error.to_string().contains("wrong"), "{error}");
    });
}

#[test]
fn every_adapter_round_trips_through_microsocks_resolving_remotely_and_locally() {
    within("microsocks", || {
        let Some(proxy) = microsocks(None) else { return };
        for scheme in ["socks5h", "socks5"] {
            let url = format!("{scheme}://127.0.0.1:{}", proxy.port);
            // socks5h: the proxy resolves "localhost"; socks5: the client sends an address.
            let logged = |port| match scheme {
                "socks5h" => format!("connected to localhost:{port}"),
                _ => format!(":{port}"),
            };
            every_adapter_round_trips(&proxy, &url, logged);
        }
    });
}

#[test]
fn every_adapter_round_trips_through_microsocks_with_a_password_and_fails_without() {
    within("microsocks password", || {
        let Some(proxy) = microsocks(Some(("bob", "p@ss"))) else {
            return;
        };
        let url = format!("socks5h://bob:p%40ss@127.0.0.1:{}", proxy.port);
        every_adapter_round_trips(&proxy, &url, |port| format!("connected to localhost:{port}"));
        let target = format!("ws://localhost:{}/", echo().ws_port);
        let wrong = format!("socks5h://bob:wrong@127.0.0.1:{}", proxy.port);
        let error = proxy_error(error_of_every_adapter(&target, &wrong, Arc::default()));
        assert!(
            matches!(error, ProxyError::SocksAuthFailed(status) if status != 0),
            "{error}"
        );
        let none = format!("socks5h://127.0.0.1:{}", proxy.port);
        let error = proxy_error(error_of_every_adapter(&target, &none, Arc::default()));
        assert_eq!(error, ProxyError::SocksNoAcceptableMethod);
    });
}

#[test]
fn a_refusing_or_unreachable_proxy_says_so() {
    within("refusing proxies", || {
        let echo_port = echo().ws_port;
        let target = format!("ws://localhost:{echo_port}/");
        if let Some(proxy) = tinyproxy(None, Some(443)) {
            let url = format!("http://127.0.0.1:{}", proxy.port);
            let error = proxy_error(error_of_every_adapter(&target, &url, Arc::default()));
            assert!(matches!(&error, ProxyError::HttpRefused { status: 403, .. }), "{error}");
        }
        if let Some(proxy) = microsocks(None) {
            // A target port nobody listens on.
            let closed = format!("ws://127.0.0.1:{}/", free_port());
            let url = format!("socks5://127.0.0.1:{}", proxy.port);
            let error = proxy_error(error_of_every_adapter(&closed, &url, Arc::default()));
            assert_eq!(error, ProxyError::SocksRefused(SocksReply::ConnectionRefused));
        }
        // No proxy at all on that port: a transport error that names the proxy.
        let url = format!("http://127.0.0.1:{}", free_port());
        let error = error_of_every_adapter(&target, &url, Arc::default());
        let Error::Transport(io) = &error else {
            panic!("{error}")
        };
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
        assert!(
            error.to_string().contains(&format!("proxy {url} unreachable")),
            "{error}"
        );
    });
}

/// A fake proxy that reads what the client says, then answers `reply` (or nothing, and
/// keeps the connection open, for `None`).
fn fake_proxy(reply: Option<&'static [u8]>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut request = [0; 1024];
                let _ = stream.read(&mut request);
                if let Some(reply) = reply {
                    let _ = std::io::Write::write_all(&mut stream, reply);
                }
                // Hold the connection until the client gives up.
                let _ = stream.read(&mut request);
            });
        }
    });
    address
}

#[test]
fn a_proxy_answering_garbage_is_reported_as_malformed() {
    within("garbage proxies", || {
        let target = format!("ws://localhost:{}/", echo().ws_port);
        let http = fake_proxy(Some(b"220 smtp.example ESMTP ready\r\n"));
        let error = proxy_error(error_of_every_adapter(
            &target,
            &format!("http://{http}"),
            Arc::default(),
        ));
        assert_eq!(error, ProxyError::Malformed("not an HTTP response"));
        let socks = fake_proxy(Some(b"HTTP/1.1 400 Bad Request\r\n\r\n"));
        let error = proxy_error(error_of_every_adapter(
            &target,
            &format!("socks5h://{socks}"),
            Arc::default(),
        ));
        assert_eq!(error, ProxyError::Malformed("not a SOCKS5 reply"));
        // A head that never ends is cut at the limit, not buffered.
        static ENDLESS: OnceLock<Vec<u8>> = OnceLock::new();
        let endless = ENDLESS.get_or_init(|| [&b"HTTP/1.1 200 OK\r\n"[..], &[b'x'; 40 << 10]].concat());
        let http = fake_proxy(Some(endless.as_slice()));
        let error = proxy_error(error_of_every_adapter(
            &target,
            &format!("http://{http}"),
            Arc::default(),
        ));
        assert_eq!(error, ProxyError::TooLarge);
    });
}

#[test]
fn a_silent_proxy_times_out_within_the_handshake_timeout() {
    within("silent proxies", || {
        let target = format!("ws://localhost:{}/", echo().ws_port);
        let mut config = Config::default();
        config.handshake_timeout(Duration::from_millis(300));
        let config = Arc::new(config);
        for scheme in ["http", "socks5h"] {
            let silent = fake_proxy(None);
            let started = Instant::now();
            let error = proxy_error(error_of_every_adapter(
                &target,
                &format!("{scheme}://{silent}"),
                config.clone(),
            ));
            assert_eq!(error, ProxyError::TimedOut);
            let elapsed = started.elapsed();
            assert!(
                elapsed >= Duration::from_millis(900),
                "three adapters timed out in {elapsed:?}"
            );
            assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
        }
    });
}

/// A fake HTTP proxy that refuses every `CONNECT` with 403 and reports each request line.
fn recording_proxy() -> (SocketAddr, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (seen, requests) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = [0; 1024];
            let read = stream.read(&mut head).unwrap_or(0);
            let line = String::from_utf8_lossy(&head[..read])
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            let _ = std::io::Write::write_all(&mut stream, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
            let _ = seen.send(line);
        }
    });
    (address, requests)
}

/// Connects `adapter`'s client to `url` with the proxy from the environment (or none, for
/// `no_proxy`); the connect error, if any.
fn connect_from_environment(adapter: Adapter, url: &str, no_proxy: bool) -> Result<(), Error> {
    fn pick<R>(builder: wsflow_io::ClientBuilder<R>, no_proxy: bool) -> wsflow_io::ClientBuilder<R> {
        if no_proxy {
            builder.no_proxy()
        } else {
            builder
        }
    }
    match adapter {
        Adapter::Blocking => pick(wsflow_blocking::ClientBuilder::new(url), no_proxy)
            .connect()
            .map(drop),
        Adapter::Tokio => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime
                .block_on(pick(wsflow_tokio::ClientBuilder::new(url), no_proxy).connect())
                .map(drop)
        }
        Adapter::Smol => smol::block_on(pick(wsflow_smol::ClientBuilder::new(url), no_proxy).connect()).map(drop),
    }
}

/// The only test here that reads the environment (the others name their proxy), so
/// setting `ws_proxy` cannot disturb them.
#[test]
fn the_proxy_comes_from_the_environment_but_not_for_loopback_or_no_proxy() {
    within("environment", || {
        let (proxy, requests) = recording_proxy();
        std::env::set_var("ws_proxy", format!("http://{proxy}"));
        std::env::remove_var("no_proxy");
        std::env::remove_var("NO_PROXY");
        for adapter in ADAPTERS {
            let error = connect_from_environment(adapter, "ws://example.invalid:9/", false).unwrap_err();
            let error = proxy_error(error);
            assert!(
                matches!(error, ProxyError::HttpRefused { status: 403, .. }),
                "{adapter:?}: {error}"
            );
            let request = requests.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(request, "CONNECT example.invalid:9 HTTP/1.1");
            // A loopback target goes direct.
            let echo = format!("ws://localhost:{}/", echo().ws_port);
            connect_from_environment(adapter, &echo, false).unwrap();
            // So does any target when the builder says no_proxy(): DNS fails on .invalid.
            let error = connect_from_environment(adapter, "ws://example.invalid:9/", true).unwrap_err();
            assert!(matches!(error, Error::Transport(_)), "{adapter:?}: {error}");
        }
        std::env::remove_var("ws_proxy");
        assert!(
            requests.try_recv().is_err(),
            "the proxy saw a request it should not have"
        );
    });
}

/// What follows the proxy's reply belongs to the WebSocket handshake: over ws it is read
/// as the server's response (here a 403 with its body, which proves it was not lost);
/// over wss it can only be an error, as a TLS server never speaks first.
#[test]
fn the_bytes_after_the_reply_reach_the_websocket_handshake() {
    within("bytes after the reply", || {
        let proxy = fake_proxy(Some(
            b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno",
        ));
        let error = error_of_every_adapter("ws://example.invalid/", &format!("http://{proxy}"), Arc::default());
        let Error::Rejected(response) = error else {
            panic!("{error}")
        };
        assert_eq!((response.status(), &response.body()[..]), (403, &b"no"[..]));
        let proxy = fake_proxy(Some(b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03"));
        let error = proxy_error(error_of_every_adapter(
            "wss://example.invalid/",
            &format!("http://{proxy}"),
            Arc::default(),
        ));
        assert_eq!(error, ProxyError::EarlyData(3));
    });
}

/// `Http2Client::connect` takes the builder's proxy like `connect` does: HTTP/2 with prior
/// knowledge (h2c) to wsflow-axum under `axum::serve`, through tinyproxy and through
/// microsocks (socks5h), two WebSockets on the tunnelled connection.
#[test]
fn http2_client_goes_through_tinyproxy_and_microsocks() {
    within("http2 through proxies", || {
        let Some(tinyproxy) = tinyproxy(None, None) else { return };
        let Some(microsocks) = microsocks(None) else { return };
        common::tokio_block_on_multi(async {
            use axum::routing::any;
            use wsflow_axum::WebSocketUpgrade;
            let app = axum::Router::new().route(
                "/h2",
                any(|upgrade: WebSocketUpgrade| async move {
                    upgrade.on_upgrade(|mut socket| async move {
                        while let Ok(Some(message)) = socket.recv_message().await {
                            if socket.send(message).await.is_err() {
                                break;
                            }
                        }
                    })
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            tokio::spawn(async move { axum::serve(listener, app).await });
            for proxy in [
                format!("http://127.0.0.1:{}", tinyproxy.port),
                format!("socks5h://127.0.0.1:{}", microsocks.port),
            ] {
                let builder = wsflow_tokio::ClientBuilder::new(&format!("ws://localhost:{port}/h2")).proxy(&proxy);
                let (mut client, driver) = wsflow_io::Http2Client::connect(&builder)
                    .await
                    .unwrap_or_else(|error| panic!("HTTP/2 through {proxy}: {error}"));
                tokio::spawn(driver);
                assert!(client.supports_websockets());
                for n in 0..2 {
                    let (mut socket, response) = client.open(builder.clone()).await.unwrap();
                    assert_eq!(response.status(), 200);
                    let message = Message::text(format!("{n} through {proxy}"));
                    socket.send(message.clone()).await.unwrap();
                    assert_eq!(socket.recv_message().await.unwrap(), Some(message));
                }
            }
            tinyproxy.assert_logged(&format!("CONNECT localhost:{port} HTTP/1.1"));
        });
    });
}
