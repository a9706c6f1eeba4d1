//! The `Stream` and `Sink` implementations of an async connection (wsflow-smol here; tokio's
//! is the same wsflow-io type), whole and split, over a Unix socket pair.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use smol::net::unix::UnixStream;
use wsflow_smol::{accept, ClientBuilder, Closed, Message, WebSocket};

mod common;

fn run(test: impl std::future::Future<Output = ()> + Send + 'static) {
    common::within("smol", move || smol::block_on(test));
}

/// A client connected to an echo server; the server's task returns how it closed.
async fn echo_pair() -> (WebSocket<UnixStream>, smol::Task<Closed>) {
    let (server_end, client_end) = UnixStream::pair().unwrap();
    let server = smol::spawn(async move {
        let mut server = accept(server_end).await.unwrap();
        while let Some(message) = server.recv_message().await.unwrap() {
            server.send(message).await.unwrap();
        }
        server.closed().cloned().unwrap()
    });
    let (client, _) = ClientBuilder::new("ws://test/").connect_on(client_end).await.unwrap();
    (client, server)
}

#[test]
fn whole_connection_works_as_stream_and_sink() {
    run(async {
        let (mut client, server) = echo_pair().await;
        SinkExt::send(&mut client, Message::text("ß")).await.unwrap();
        client.feed(Message::text("∑")).await.unwrap();
        client
            .feed(Message::binary(Bytes::from_static(b"\x00\xff")))
            .await
            .unwrap();
        SinkExt::flush(&mut client).await.unwrap();
        assert_eq!(client.next().await.unwrap().unwrap(), Message::text("ß"));
        assert_eq!(client.next().await.unwrap().unwrap(), Message::text("∑"));
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::binary(Bytes::from_static(b"\x00\xff"))
        );
        // `Sink::close` sends a 1000 close frame; the stream ends after the echo.
        SinkExt::close(&mut client).await.unwrap();
        assert!(client.next().await.is_none());
        assert!(client.closed().unwrap().is_clean());
        assert!(client.recv().await.unwrap().is_none());
        assert!(server.await.is_clean());
    });
}

#[test]
fn split_halves_work_as_stream_and_sink() {
    run(async {
        let (client, server) = echo_pair().await;
        let (mut sender, mut receiver) = client.split();
        sender.feed(Message::text("one")).await.unwrap();
        sender.feed(Message::binary(&b"two"[..])).await.unwrap();
        sender.flush().await.unwrap();
        assert_eq!(receiver.next().await.unwrap().unwrap(), Message::text("one"));
        assert_eq!(receiver.next().await.unwrap().unwrap(), Message::binary(&b"two"[..]));
        SinkExt::close(&mut sender).await.unwrap();
        assert!(receiver.next().await.is_none());
        assert!(receiver.closed().unwrap().is_clean());
        assert!(server.await.is_clean());
    });
}
