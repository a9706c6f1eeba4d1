//! Helpers shared by the test binaries: [`within`] (the upper bound on a test's duration),
//! [`tls`] (a self-signed certificate and the configurations that use it), and the client
//! checks of the interop tests (against Python `websockets` and Node `ws`) and the
//! cross-adapter matrix: every adapter's client runs the same script against an echo server
//! that selects "superchat"/"chat", accepts permessage-deflate, and closes with CODE and
//! REASON when it receives the text `close:CODE:REASON`.
#![allow(dead_code)] // each test binary uses its part

pub mod redis;
pub mod tls;

use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use wsflow::{CloseCode, Config, DeflateConfig, Event, Message, MessageKind};

pub const TEXT: &str = "héllo wörld ✓ 🦀";

/// The longest any test may take: an upper bound, never a synchronisation.
pub const LIMIT: Duration = Duration::from_secs(60);

/// Runs `test` on a thread named `name` and fails if it takes longer than [`LIMIT`]; a
/// panic in it is re-raised here with its own message.
pub fn within<T: Send + 'static>(name: &str, test: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, finished) = mpsc::channel();
    let thread = thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _ = done.send(test());
        })
        .unwrap();
    match finished.recv_timeout(LIMIT) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name}: the test took longer than {LIMIT:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the test thread ended without a result"),
        },
    }
}

/// Offer permessage-deflate, as browsers do; every server here accepts it.
pub fn deflate_config() -> Arc<Config> {
    let mut config = Config::default();
    config.deflate(Some(DeflateConfig::default()));
    Arc::new(config)
}

/// 16 MiB of binary that does not compress to nothing.
pub fn big_binary() -> Bytes {
    Bytes::from((0..(16u32 << 20)).map(|i| (i * 31 % 251) as u8).collect::<Vec<_>>())
}

/// The checks, written once for the blocking adapter and once (as a macro over the crate)
/// for the async ones.
pub mod blocking_client {
    use super::*;
    use wsflow_blocking::ClientBuilder;

    /// The server answers `/reject` with 403 and a body; the client must see both.
    pub fn rejection(url: &str) {
        let Err(wsflow_blocking::Error::Rejected(response)) = ClientBuilder::new(&format!("{url}reject")).connect()
        else {
            panic!("expected a rejection")
        };
        assert_eq!((response.status(), response.body().as_ref()), (403, &b"go away"[..]));
    }

    pub fn run(url: &str) {
        let (mut ws, response) = ClientBuilder::new(url)
            .config(deflate_config())
            .subprotocol("superchat")
            .subprotocol("chat")
            .connect()
            .unwrap();
        assert_eq!(response.subprotocol(), Some("superchat"), "the first offered protocol");
        let extensions = response.headers().get("sec-websocket-extensions").unwrap_or_default();
        assert!(
            extensions.starts_with("permessage-deflate"),
            "deflate negotiated: {extensions:?}"
        );

        ws.send_text(TEXT).unwrap();
        assert_eq!(ws.recv_message().unwrap(), Some(Message::text(TEXT)));
        ws.send_binary(big_binary()).unwrap();
        assert_eq!(ws.recv_message().unwrap(), Some(Message::Binary(big_binary())));
        let png = Message::binary(&b"\x89PNG already compressed"[..]);
        ws.send_uncompressed(png.clone()).unwrap();
        assert_eq!(ws.recv_message().unwrap(), Some(png));
        for (i, part) in ["frag", "men", "ted ✓"].iter().enumerate() {
            ws.send_fragment(MessageKind::Text, Bytes::from(part.to_string()), i == 2)
                .unwrap();
        }
        assert_eq!(ws.recv_message().unwrap(), Some(Message::text("fragmented ✓")));
        ws.ping(Bytes::from_static(b"are you there")).unwrap();
        loop {
            match ws.recv().unwrap() {
                Some(Event::Pong(payload)) => break assert_eq!(payload.as_ref(), b"are you there"),
                Some(Event::Ping(_)) => {}
                other => panic!("expected a pong, got {other:?}"),
            }
        }
        // The peer closes with the code and reason we ask for.
        ws.send_text("close:4001:bye").unwrap();
        while ws.recv().unwrap().is_some() {}
        let closed = ws.closed().unwrap();
        assert!(closed.is_clean(), "{closed:?}");
        assert_eq!(
            (closed.code(), closed.received.as_ref().unwrap().reason.as_str()),
            (CloseCode::new(4001), "bye")
        );

        // And we close: 1000 both ways.
        let (mut ws, _) = ClientBuilder::new(url).config(deflate_config()).connect().unwrap();
        ws.close(CloseCode::NORMAL, "done").unwrap();
        while ws.recv().unwrap().is_some() {}
        let closed = ws.closed().unwrap();
        assert!(closed.is_clean() && closed.code() == CloseCode::NORMAL, "{closed:?}");
    }
}

macro_rules! async_client {
    ($name:ident, $krate:ident) => {
        pub mod $name {
            use super::*;
            use $krate::ClientBuilder;

            pub async fn rejection(url: &str) {
                let Err($krate::Error::Rejected(response)) =
                    ClientBuilder::new(&format!("{url}reject")).connect().await
                else {
                    panic!("expected a rejection")
                };
                assert_eq!(
                    (response.status(), response.body().as_ref()),
                    (403, &b"go away"[..])
                );
            }

            pub async fn run(url: &str) {
                let (mut ws, response) = ClientBuilder::new(url)
                    .config(deflate_config())
                    .subprotocol("superchat")
                    .subprotocol("chat")
                    .connect()
                    .await
                    .unwrap();
                assert_eq!(
                    response.subprotocol(),
                    Some("superchat"),
                    "the first offered protocol"
                );
                let extensions = response
                    .headers()
                    .get("sec-websocket-extensions")
                    .unwrap_or_default();
                assert!(
                    extensions.starts_with("permessage-deflate"),
                    "deflate negotiated: {extensions:?}"
                );

                ws.send_text(TEXT).await.unwrap();
                assert_eq!(ws.recv_message().await.unwrap(), Some(Message::text(TEXT)));
                ws.send_binary(big_binary()).await.unwrap();
                assert_eq!(
                    ws.recv_message().await.unwrap(),
                    Some(Message::Binary(big_binary()))
                );
                let png = Message::binary(&b"\x89PNG already compressed"[..]);
                ws.send_uncompressed(png.clone()).await.unwrap();
                assert_eq!(ws.recv_message().await.unwrap(), Some(png));
                for (i, part) in ["frag", "men", "ted ✓"].iter().enumerate() {
                    ws.send_fragment(MessageKind::Text, Bytes::from(part.to_string()), i == 2)
                        .await
                        .unwrap();
                }
                assert_eq!(
                    ws.recv_message().await.unwrap(),
                    Some(Message::text("fragmented ✓"))
                );
                ws.ping(Bytes::from_static(b"are you there")).await.unwrap();
                loop {
                    match ws.recv().await.unwrap() {
                        Some(Event::Pong(payload)) => break assert_eq!(payload.as_ref(), b"are you there"),
                        Some(Event::Ping(_)) => {}
                        other => panic!("expected a pong, got {other:?}"),
                    }
                }
                ws.send_text("close:4001:bye").await.unwrap();
                while ws.recv().await.unwrap().is_some() {}
                let closed = ws.closed().unwrap();
                assert!(closed.is_clean(), "{closed:?}");
                assert_eq!(
                    (closed.code(), closed.received.as_ref().unwrap().reason.as_str()),
                    (CloseCode::new(4001), "bye")
                );

                let (mut ws, _) = ClientBuilder::new(url)
                    .config(deflate_config())
                    .connect()
                    .await
                    .unwrap();
                ws.close(CloseCode::NORMAL, "done").await.unwrap();
                while ws.recv().await.unwrap().is_some() {}
                let closed = ws.closed().unwrap();
                assert!(
                    closed.is_clean() && closed.code() == CloseCode::NORMAL,
                    "{closed:?}"
                );
            }
        }
    };
}

async_client!(tokio_client, wsflow_tokio);
async_client!(smol_client, wsflow_smol);

/// Runs `future` on a fresh current-thread tokio runtime.
pub fn tokio_block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Runs `future` on a fresh multi-threaded tokio runtime with two workers.
pub fn tokio_block_on_multi<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Runs the tokio client's checks.
pub fn tokio_run(url: &str) {
    tokio_block_on(tokio_client::run(url));
}

/// Runs the smol client's checks.
pub fn smol_run(url: &str) {
    smol::block_on(smol_client::run(url));
}
