//! The adapters' `tracing` feature (see `wsflow_io::trace`): the span of each connection
//! and the events of its handshake and its end, recorded by a small collector: a deflate
//! handshake and a clean close on tokio, both roles; a protocol error (an unmasked frame
//! from a raw peer: 1002 with the error); the close timeout and the handshake timeout; and
//! the blocking adapter's server (its own drive loop) with a protocol error.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use wsflow::{Accept, CloseCode, Config, Message};
use wsflow_io::Decision;

mod common;

use common::{deflate_config, tokio_block_on};

type Fields = BTreeMap<String, String>;

/// An event of `wsflow_io`: its fields (`message` included) and those of its span.
#[derive(Clone, Debug)]
struct Recorded {
    fields: Fields,
    span: Fields,
}

impl Recorded {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// A `tracing::Subscriber` that keeps every span's fields and every event of `wsflow_io`.
#[derive(Clone, Default)]
struct Collector(Arc<State>);

#[derive(Default)]
struct State {
    next_id: AtomicU64,
    spans: Mutex<HashMap<u64, Fields>>,
    events: Mutex<Vec<Recorded>>,
}

thread_local! {
    /// The spans entered on this thread, innermost last.
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Collector {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = Fields::from([("name".to_owned(), span.metadata().name().to_owned())]);
        span.record(&mut Visitor(&mut fields));
        self.0.spans.lock().unwrap().insert(id, fields);
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut spans = self.0.spans.lock().unwrap();
        values.record(&mut Visitor(spans.entry(span.into_u64()).or_default()));
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        if !event.metadata().target().starts_with("wsflow_io") {
            return;
        }
        let mut fields = Fields::new();
        event.record(&mut Visitor(&mut fields));
        let parent = match event.parent() {
            Some(parent) => Some(parent.into_u64()),
            None if event.is_contextual() => ENTERED.with(|entered| entered.borrow().last().copied()),
            None => None,
        };
        let span = parent
            .and_then(|id| self.0.spans.lock().unwrap().get(&id).cloned())
            .unwrap_or_default();
        fields.insert("level".to_owned(), event.metadata().level().to_string());
        self.0.events.lock().unwrap().push(Recorded { fields, span });
    }

    fn enter(&self, span: &Id) {
        ENTERED.with(|entered| entered.borrow_mut().push(span.into_u64()));
    }

    fn exit(&self, _: &Id) {
        ENTERED.with(|entered| entered.borrow_mut().pop());
    }
}

impl Collector {
    /// The events recorded in spans of `role`.
    fn events(&self, role: &str) -> Vec<Recorded> {
        let events = self.0.events.lock().unwrap();
        let of_role = events
            .iter()
            .filter(|event| event.span.get("role").map(String::as_str) == Some(role));
        of_role.cloned().collect()
    }

    /// The one event `message` in a span of `role`.
    fn event(&self, role: &str, message: &str) -> Recorded {
        let events = self.events(role);
        let found: Vec<_> = events
            .iter()
            .filter(|event| event.get("message") == Some(message))
            .collect();
        assert_eq!(found.len(), 1, "one {message:?} of the {role}: {events:#?}");
        found[0].clone()
    }
}

const RAW_UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// An unmasked text frame "hi": a protocol error from a client.
const UNMASKED: &[u8] = &[0x81, 0x02, b'h', b'i'];

/// Reads up to the end of the 101 response's head.
async fn read_head(stream: &mut tokio::net::TcpStream) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "), "{}", String::from_utf8_lossy(&head));
}

fn short_timeouts() -> Arc<Config> {
    let mut config = Config::default();
    config
        .close_timeout(Duration::from_millis(200))
        .handshake_timeout(Duration::from_millis(200));
    Arc::new(config)
}

#[test]
fn tokio_deflate_handshake_and_clean_close_in_both_roles() {
    let collector = Collector::default();
    tracing::subscriber::with_default(collector.clone(), || {
        tokio_block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let (tcp, _) = listener.accept().await.unwrap();
                let hook =
                    |request: &wsflow::Request| Decision::Accept(Accept::new().subprotocol_from(request, &["chat"]));
                let accepted = wsflow_tokio::accept_with(tcp, deflate_config(), hook).await.unwrap();
                let wsflow_tokio::Accepted::WebSocket(mut websocket, _) = accepted else {
                    panic!("not upgraded")
                };
                while let Some(message) = websocket.recv_message().await.unwrap() {
                    websocket.send(message).await.unwrap();
                }
            });
            let (mut websocket, _) = wsflow_tokio::ClientBuilder::new(&format!("ws://127.0.0.1:{port}/"))
                .config(deflate_config())
                .subprotocol("chat")
                .no_proxy()
                .connect()
                .await
                .unwrap();
            websocket.send(Message::text("hello")).await.unwrap();
            assert_eq!(websocket.recv_message().await.unwrap(), Some(Message::text("hello")));
            websocket.close(CloseCode::NORMAL, "bye").await.unwrap();
            while websocket.recv().await.unwrap().is_some() {}
            server.await.unwrap();
            assert_eq!(
                collector.event("client", "handshake accepted").span.get("peer"),
                Some(&format!("127.0.0.1:{port}"))
            );
        });
    });

    for role in ["server", "client"] {
        let events = collector.events(role);
        let messages: Vec<_> = events.iter().filter_map(|event| event.get("message")).collect();
        assert_eq!(
            messages,
            ["handshake accepted", "connection closed"],
            "{role}: {events:#?}"
        );
        let accepted = collector.event(role, "handshake accepted");
        assert_eq!(accepted.span.get("name").map(String::as_str), Some("websocket"));
        assert_eq!(
            (
                accepted.get("status"),
                accepted.get("subprotocol"),
                accepted.get("level")
            ),
            (Some("101"), Some("chat"), Some("DEBUG"))
        );
        assert_eq!(
            accepted.get("extensions"),
            Some("permessage-deflate; server_max_window_bits=15; client_max_window_bits=15"),
            "{role}"
        );
        let closed = collector.event(role, "connection closed");
        assert_eq!(
            (
                closed.get("cause"),
                closed.get("clean"),
                closed.get("code"),
                closed.get("sent")
            ),
            (Some("clean"), Some("true"), Some("1000"), Some("1000")),
            "{role}: {closed:#?}"
        );
        assert_eq!(closed.get("reason"), Some("bye"));
        assert_eq!((closed.get("error"), closed.get("timer")), (None, None));
    }
}

/// Accepts one connection on `listener` and upgrades it with [`short_timeouts`].
async fn upgrade_one(listener: &tokio::net::TcpListener) -> wsflow_tokio::WebSocket<tokio::net::TcpStream> {
    let (tcp, _) = listener.accept().await.unwrap();
    let accepted = wsflow_tokio::accept_with(tcp, short_timeouts(), |_| Decision::Accept(Accept::new()));
    let wsflow_tokio::Accepted::WebSocket(websocket, _) = accepted.await.unwrap() else {
        panic!("not upgraded")
    };
    websocket
}

#[test]
fn tokio_protocol_error_is_recorded_with_1002_and_the_error() {
    let collector = Collector::default();
    tracing::subscriber::with_default(collector.clone(), || {
        tokio_block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let mut websocket = upgrade_one(&listener).await;
                while websocket.recv().await.unwrap().is_some() {}
            });
            let mut peer = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            peer.write_all(RAW_UPGRADE).await.unwrap();
            read_head(&mut peer).await;
            peer.write_all(UNMASKED).await.unwrap();
            server.await.unwrap();
        });
    });
    let closed = collector.event("server", "connection closed");
    assert_eq!(
        (closed.get("cause"), closed.get("sent"), closed.get("clean")),
        (Some("protocol error"), Some("1002"), Some("false")),
        "{closed:#?}"
    );
    assert_eq!(closed.get("error"), Some("client frame is not masked"));
    assert_eq!(closed.get("level"), Some("DEBUG"));
    // The peer never answered the close frame: 1006 for the application.
    assert_eq!(closed.get("code"), Some("1006"));
}

#[test]
fn tokio_close_timeout_and_handshake_timeout_are_recorded() {
    let collector = Collector::default();
    tracing::subscriber::with_default(collector.clone(), || {
        tokio_block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                // A peer that never answers our close frame.
                let mut websocket = upgrade_one(&listener).await;
                websocket.close(CloseCode::GOING_AWAY, "shutting down").await.unwrap();
                while websocket.recv().await.unwrap().is_some() {}
                // A peer that never sends its request.
                let (tcp, _) = listener.accept().await.unwrap();
                let silent = wsflow_tokio::accept_with(tcp, short_timeouts(), |_| Decision::Accept(Accept::new()));
                assert!(silent.await.is_err());
            });
            let mut peer = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            peer.write_all(RAW_UPGRADE).await.unwrap();
            read_head(&mut peer).await;
            let _silent = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            server.await.unwrap();
            drop(peer);
        });
    });
    let closed = collector.event("server", "connection closed");
    assert_eq!(
        (
            closed.get("cause"),
            closed.get("timer"),
            closed.get("sent"),
            closed.get("code")
        ),
        (Some("timeout"), Some("close"), Some("1001"), Some("1006")),
        "{closed:#?}"
    );
    assert_eq!(closed.get("reason"), Some("shutting down"));
    let failed = collector.event("server", "handshake failed");
    assert_eq!(failed.get("error"), Some("handshake timed out"));
}

#[test]
fn blocking_server_records_its_span_with_the_peer_and_the_protocol_error() {
    let collector = Collector::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = {
        let collector = collector.clone();
        std::thread::spawn(move || {
            tracing::subscriber::with_default(collector, || {
                let (tcp, _) = listener.accept().unwrap();
                let accepted = wsflow_blocking::accept_with(tcp, short_timeouts(), |_| Decision::Accept(Accept::new()));
                let wsflow_blocking::Accepted::WebSocket(mut websocket, _) = accepted.unwrap() else {
                    panic!("not upgraded")
                };
                while websocket.recv().unwrap().is_some() {}
            })
        })
    };
    let mut peer = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    peer.write_all(RAW_UPGRADE).unwrap();
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        peer.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    peer.write_all(UNMASKED).unwrap();
    server.join().unwrap();

    let peer_address = peer.local_addr().unwrap().to_string();
    let accepted = collector.event("server", "handshake accepted");
    assert_eq!(accepted.span.get("peer"), Some(&peer_address));
    assert_eq!((accepted.get("subprotocol"), accepted.get("extensions")), (None, None));
    let closed = collector.event("server", "connection closed");
    assert_eq!(closed.span.get("peer"), Some(&peer_address));
    assert_eq!(
        (closed.get("cause"), closed.get("sent"), closed.get("error")),
        (Some("protocol error"), Some("1002"), Some("client frame is not masked")),
        "{closed:#?}"
    );
}
