//! The adapter conformance suite: every scenario is written once, generic over
//! [`Adapter`] (adapter_conformance/mod.rs), and runs on each adapter as
//! `tokio::<scenario>`, `smol::<scenario>` and `blocking::<scenario>`.
//!
//! Connections run over in-memory streams: tokio duplex pipes on a paused clock (keepalive,
//! close and handshake timeouts take no real time), Unix socket pairs with short real
//! timeouts on smol and blocking. Only the `wss://` scenarios use TCP; the 3x3 matrix of
//! clients and servers over TCP is cross.rs. Every test is bounded in time (an upper bound,
//! never a synchronisation).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, SinkExt};
use wsflow::{
    Accept, CloseCode, CloseFrame, CloseReason, Closed, Config, Event, HandshakeError, Message, MessageKind, Response,
    Timeout,
};
use wsflow_io::{Accepted, Decision, Error};

mod common;
#[path = "adapter_conformance/mod.rs"]
mod harness;

use harness::{
    accept, builder, client_frame, close_cleanly, connected, echo_until_closed, events_until_closed, parse_frames,
    raw_upgrade, read_frames, read_to_end, read_to_end_by, Adapter, Clock, Connected, PairStream, Receiver, Sender, Ws,
    CLOSE, PING, TEXT,
};

/// Each scenario as a test on one adapter, on the given clock (with an optional attribute).
macro_rules! tests {
    ($adapter:ty, $clock:expr; $($scenario:ident),* $(,)?) => {
        tests!($adapter, $clock, #[cfg(all())]; $($scenario),*);
    };
    ($adapter:ty, $clock:expr, #[$attr:meta]; $($scenario:ident),* $(,)?) => {$(
        #[test]
        #[$attr]
        fn $scenario() {
            <$adapter as Adapter>::run($clock, super::$scenario::<$adapter>());
        }
    )*};
}

/// The suite on one adapter, plus the scenarios only it can run.
macro_rules! suite {
    ($module:ident: $adapter:ty; only: [$($only:ident),*]) => {
        mod $module {
            use super::*;

            tests!($adapter, Clock::Virtual;
                text_with_non_ascii_round_trips,
                binary_16_mib_round_trips,
                fragmented_send_arrives_as_one_message,
                ping_is_answered_with_pong,
                client_close_code_and_reason_reach_the_server,
                server_close_code_and_reason_reach_the_client,
                server_selects_an_offered_subprotocol,
                rejected_upgrade_reports_status_and_body,
                plain_http_request_is_answered_by_the_hook,
                keepalive_detects_a_silent_peer,
                close_times_out_when_the_peer_never_answers,
                close_by_the_sending_half_times_out_on_the_receiving_half,
                handshake_times_out_on_half_a_request,
                send_waits_when_the_peer_stops_reading,
                split_halves_carry_10000_messages_each_way_and_answer_pings,
                answers_to_one_read_go_out_in_one_write,
                last_bytes_reach_the_peer_after_a_close,
                last_bytes_reach_the_peer_behind_a_queued_message,
                $($only,)*
            );
            tests!($adapter, Clock::Real;
                wss_round_trip_with_a_self_signed_certificate,
                wss_refuses_an_untrusted_certificate,
                bad_url_is_reported,
            );
        }
    };
}

suite!(tokio: harness::tokio::Tokio; only: [sender_half_batches_fed_messages]);
suite!(smol: harness::smol::Smol; only: [sender_half_batches_fed_messages]);
// No `feed` on a blocking sender: every send writes through.
suite!(blocking: harness::blocking::Blocking; only: []);

fn config(edit: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::default();
    edit(&mut config);
    config
}

/// An echo server on one end of a fresh pair, and a client on the other.
async fn echo_pair<A: Adapter>() -> (A::Ws, harness::Joined<Closed>) {
    let Connected { server, client, .. } = connected::<A>(Config::default()).await;
    (client, A::spawn(echo_until_closed(server)))
}

async fn text_with_non_ascii_round_trips<A: Adapter>() {
    let (mut client, server) = echo_pair::<A>().await;
    let text = "héllo wörld, 你好, 日本語 🦀 🚀 — ünïcödé ✓";
    client.send_text(text).await.unwrap();
    assert_eq!(client.recv_message().await.unwrap(), Some(Message::text(text)));
    // Copied from borrowed bytes: small (into the send buffer) and big.
    let big = text.repeat(1000);
    for copied in [text, big.as_str()] {
        client.send_text_copied(copied).await.unwrap();
        client.send_binary_copied(copied.as_bytes()).await.unwrap();
        assert_eq!(client.recv_message().await.unwrap(), Some(Message::text(copied)));
        let binary = Message::binary(Bytes::copy_from_slice(copied.as_bytes()));
        assert_eq!(client.recv_message().await.unwrap(), Some(binary));
    }
    close_cleanly(&mut client).await;
    assert!(server.await.is_clean());
}

async fn binary_16_mib_round_trips<A: Adapter>() {
    let (mut client, server) = echo_pair::<A>().await;
    let data = common::big_binary();
    client.send(Message::Binary(data.clone())).await.unwrap();
    let Some(Message::Binary(echoed)) = client.recv_message().await.unwrap() else {
        panic!("expected binary")
    };
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "the echo differs");
    close_cleanly(&mut client).await;
    assert!(server.await.is_clean());
}

async fn fragmented_send_arrives_as_one_message<A: Adapter>() {
    let (mut client, server) = echo_pair::<A>().await;
    // The fragments split the three bytes of "€" and the two of "ö"; a ping goes between.
    let ping = Bytes::from_static(b"between fragments");
    client
        .send_fragment(MessageKind::Text, Bytes::from_static(b"price: \xe2\x82"), false)
        .await
        .unwrap();
    client.ping(ping.clone()).await.unwrap();
    client
        .send_fragment(MessageKind::Text, Bytes::from_static(b"\xac sch\xc3"), false)
        .await
        .unwrap();
    client
        .send_fragment(MessageKind::Text, Bytes::from_static(b"\xb6n!"), true)
        .await
        .unwrap();
    // The pong was queued when the ping arrived, before the message was complete.
    assert_eq!(client.recv().await.unwrap(), Some(Event::Pong(ping)));
    assert_eq!(
        client.recv().await.unwrap(),
        Some(Event::Message(Message::text("price: € schön!")))
    );
    close_cleanly(&mut client).await;
    assert!(server.await.is_clean());
}

async fn ping_is_answered_with_pong<A: Adapter>() {
    let Connected { server, mut client, .. } = connected::<A>(Config::default()).await;
    let server = A::spawn(async move {
        let mut server = server;
        events_until_closed(&mut server).await
    });
    let payload = Bytes::from_static(b"are you there");
    client.ping(payload.clone()).await.unwrap();
    assert_eq!(client.recv().await.unwrap(), Some(Event::Pong(payload.clone())));
    close_cleanly(&mut client).await;
    let events = server.await;
    assert_eq!(events[0], Event::Ping(payload));
    assert!(
        matches!(events.last(), Some(Event::Closed(closed)) if closed.is_clean()),
        "{events:?}"
    );
}

async fn client_close_code_and_reason_reach_the_server<A: Adapter>() {
    let Connected { server, client, .. } = connected::<A>(Config::default()).await;
    close_code_and_reason::<A>(client, server).await;
}

async fn server_close_code_and_reason_reach_the_client<A: Adapter>() {
    let Connected { server, client, .. } = connected::<A>(Config::default()).await;
    close_code_and_reason::<A>(server, client).await;
}

/// `closer` closes with a code and reason; both ends must see them and end cleanly.
async fn close_code_and_reason<A: Adapter>(mut closer: A::Ws, other: A::Ws) {
    let frame = CloseFrame::new(CloseCode::new(4001), "bye ✓");
    let other = A::spawn(async move {
        let mut other = other;
        let events = events_until_closed(&mut other).await;
        (events, other.closed().unwrap())
    });
    closer.close(frame.code, &frame.reason).await.unwrap();
    let late = closer.send_text("too late").await;
    assert!(matches!(late, Err(Error::Send(_))), "{late:?}");
    let closer_events = events_until_closed(&mut closer).await;
    let closer_closed = closer.closed().unwrap();

    // The other end sees the frame as sent, then the end.
    let (other_events, other_closed) = other.await;
    let [Event::CloseReceived(received), Event::Closed(ended)] = &other_events[..] else {
        panic!("{other_events:?}")
    };
    assert_eq!(received.as_ref(), Some(&frame));
    assert_eq!(**ended, other_closed);
    assert!(other_closed.is_clean(), "{other_closed:?}");
    assert_eq!(other_closed.code(), frame.code);
    assert_eq!(other_closed.received.as_ref(), Some(&frame));
    assert_eq!(other_closed.sent.as_ref().map(|echo| echo.code), Some(frame.code));

    // The closer gets the echo, which carries its code.
    let [Event::CloseReceived(echo), Event::Closed(ended)] = &closer_events[..] else {
        panic!("{closer_events:?}")
    };
    assert_eq!(echo.as_ref().map(|echo| echo.code), Some(frame.code));
    assert_eq!(**ended, closer_closed);
    assert!(closer_closed.is_clean(), "{closer_closed:?}");
    assert_eq!(closer_closed.code(), frame.code, "the echo carries our code");
    assert_eq!(closer_closed.sent.as_ref(), Some(&frame));
}

async fn server_selects_an_offered_subprotocol<A: Adapter>() {
    let (server_end, client_end) = A::pair();
    let server = A::spawn(async move {
        let choose = |request: &wsflow::Request| {
            let chosen = request
                .subprotocols()
                .find(|name| *name == "chat.v2")
                .map(str::to_owned);
            Decision::Accept(chosen.map_or_else(Accept::new, |name| Accept::new().subprotocol(name)))
        };
        let accepted = A::accept_with(server_end, Arc::default(), choose).await.unwrap();
        let Accepted::WebSocket(server, request) = accepted else {
            panic!("not upgraded")
        };
        assert_eq!(request.path(), "/chat");
        assert_eq!(request.subprotocols().collect::<Vec<_>>(), ["chat.v1", "chat.v2"]);
        echo_until_closed(server).await
    });
    let (mut client, response) = A::connect_on(
        builder::<A>("ws://test/chat")
            .subprotocol("chat.v1")
            .subprotocol("chat.v2"),
        client_end,
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(response.subprotocol(), Some("chat.v2"));
    close_cleanly(&mut client).await;
    assert!(server.await.is_clean());
}

async fn rejected_upgrade_reports_status_and_body<A: Adapter>() {
    let (server_end, client_end) = A::pair();
    let reject = |_: &wsflow::Request| Decision::Respond(Response::new(403).with_body("no entry"));
    let server = A::spawn(A::accept_with(server_end, Arc::default(), reject));
    let rejected = A::connect_on(
        builder::<A>("ws://test/secret").header("Authorization", "Bearer wrong"),
        client_end,
    )
    .await;
    let Err(Error::Rejected(response)) = rejected else {
        panic!("expected a rejection: {:?}", rejected.map(|(_, response)| response))
    };
    assert_eq!(response.status(), 403);
    assert_eq!(&response.body()[..], b"no entry");
    let Accepted::Responded(request) = server.await.unwrap() else {
        panic!("upgraded")
    };
    assert_eq!(request.path(), "/secret");
    assert_eq!(request.headers().get("authorization"), Some("Bearer wrong"));
}

async fn plain_http_request_is_answered_by_the_hook<A: Adapter>() {
    let (server_end, mut peer) = A::pair();
    let page = |request: &wsflow::Request| {
        Decision::Respond(Response::new(200).with_body(format!("you asked for {}", request.path())))
    };
    let server = A::spawn(A::accept_with(server_end, Arc::default(), page));
    peer.write_all(b"GET /hello?x=1 HTTP/1.1\r\nHost: test\r\n\r\n").await;
    let answer = String::from_utf8(read_to_end(&mut peer).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nyou asked for /hello"), "{answer}");
    let Accepted::Responded(request) = server.await.unwrap() else {
        panic!("upgraded")
    };
    assert!(!request.is_websocket());
    assert_eq!(request.path(), "/hello");
}

/// A server over `server_end` with `config` that receives until the end; returns how it
/// ended and how long that took on the adapter's clock.
fn serve_until_closed<A: Adapter>(
    server_end: A::Stream,
    config: Config,
    close_with: Option<CloseFrame>,
) -> harness::Joined<(Closed, Duration)> {
    A::spawn(async move {
        let mut server = accept::<A>(server_end, Arc::new(config)).await;
        let start = A::now();
        if let Some(frame) = close_with {
            server.close(frame.code, &frame.reason).await.unwrap();
        }
        events_until_closed(&mut server).await;
        (server.closed().unwrap(), A::now() - start)
        // The server is dropped here: its peer reads to the end of the stream.
    })
}

async fn keepalive_detects_a_silent_peer<A: Adapter>() {
    let (ping_interval, pong_timeout) = (Duration::from_millis(50), Duration::from_millis(200));
    let keepalive = config(|config| {
        config.ping_interval(Some(ping_interval)).pong_timeout(pong_timeout);
    });
    let (server_end, mut silent) = A::pair();
    let server = serve_until_closed::<A>(server_end, keepalive, None);
    // Completes the handshake, then neither reads nor answers.
    raw_upgrade(&mut silent).await;
    let (closed, took) = server.await;
    assert_eq!(closed.reason, CloseReason::TimedOut(Timeout::Keepalive));
    assert_eq!(
        closed.sent.as_ref().map(|frame| frame.code),
        Some(CloseCode::INTERNAL_ERROR)
    );
    assert!(took >= ping_interval + pong_timeout, "gave up after {took:?}");
    // What the silent peer was sent: pings, then the close frame, then the end.
    let bytes = read_to_end(&mut silent).await;
    let (frames, used) = parse_frames(&bytes);
    assert_eq!(used, bytes.len(), "only whole frames");
    let (close, pings) = frames.split_last().unwrap();
    assert!(
        !pings.is_empty() && pings.iter().all(|frame| frame.opcode == PING),
        "{frames:?}"
    );
    assert_eq!(close.close_code_and_reason().0, 1011);
}

async fn close_times_out_when_the_peer_never_answers<A: Adapter>() {
    let close_timeout = Duration::from_millis(200);
    let short_close = config(|config| {
        config.close_timeout(close_timeout);
    });
    let (server_end, mut mute) = A::pair();
    let frame = CloseFrame::new(CloseCode::GOING_AWAY, "shutting down");
    let server = serve_until_closed::<A>(server_end, short_close, Some(frame.clone()));
    raw_upgrade(&mut mute).await;
    let (closed, took) = server.await;
    assert_eq!(closed.reason, CloseReason::TimedOut(Timeout::Close));
    assert_eq!(closed.code(), CloseCode::ABNORMAL);
    assert_eq!(closed.sent, Some(frame));
    assert!(took >= close_timeout, "gave up after {took:?}");
    let bytes = read_to_end(&mut mute).await;
    let (frames, used) = parse_frames(&bytes);
    assert_eq!(used, bytes.len(), "only whole frames");
    let [close] = &frames[..] else { panic!("{frames:?}") };
    assert_eq!(close.close_code_and_reason(), (1001, "shutting down"));
}

async fn handshake_times_out_on_half_a_request<A: Adapter>() {
    let handshake_timeout = Duration::from_millis(200);
    let short_handshake = Arc::new(config(|config| {
        config.handshake_timeout(handshake_timeout);
    }));
    let (server_end, mut peer) = A::pair();
    let server = A::spawn(async move {
        let start = A::now();
        let accepted = A::accept_with(server_end, short_handshake, harness::accept_all).await;
        (accepted.map(|_| ()), A::now() - start)
    });
    peer.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nUpgrade: web").await;
    let (accepted, took) = server.await;
    let error = accepted.unwrap_err();
    assert!(matches!(error, Error::Handshake(HandshakeError::TimedOut)), "{error:?}");
    assert!(took >= handshake_timeout, "gave up after {took:?}");
    let answer = String::from_utf8(read_to_end(&mut peer).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
}

async fn send_waits_when_the_peer_stops_reading<A: Adapter>() {
    let Connected { mut server, client, .. } = connected::<A>(Config::default()).await;
    let mark = 256 << 10;
    server.set_high_water_mark(mark);
    let message = Message::binary(vec![7; 16 << 10]);
    let frame_len = message.len() + 14;
    // The client reads nothing: the stream fills up, then a send must wait.
    let mut sent = 0;
    loop {
        assert!(sent < 100_000, "{} MiB went into a peer that reads nothing", sent / 64);
        sent += 1;
        match server.try_send(message.clone()) {
            Some(result) => result.unwrap(),
            // Queued all the same.
            None => break,
        }
        assert!(server.buffered_amount() <= mark, "{} queued", server.buffered_amount());
    }
    // Memory stays at the mark plus one message.
    assert!(server.buffered_amount() > mark, "{} queued", server.buffered_amount());
    assert!(
        server.buffered_amount() <= mark + frame_len,
        "{} queued",
        server.buffered_amount()
    );

    // Once the peer reads, sending goes on, and every message arrives.
    let client = A::spawn(async move {
        let mut client = client;
        let mut received = 0;
        while let Some(arrived) = client.recv_message().await.unwrap() {
            assert_eq!(arrived.len(), 16 << 10);
            received += 1;
        }
        (received, client.closed().unwrap())
    });
    server.flush().await.unwrap();
    assert_eq!(server.buffered_amount(), 0);
    close_cleanly(&mut server).await;
    let (received, client_closed) = client.await;
    assert_eq!(received, sent);
    assert!(client_closed.is_clean());
}

async fn split_halves_carry_10000_messages_each_way_and_answer_pings<A: Adapter>() {
    let Connected {
        mut server, mut client, ..
    } = connected::<A>(Config::default()).await;
    // A low mark: the senders wait for the peer's reads while the receiving halves write
    // pongs, both on the one stream.
    server.set_high_water_mark(4 << 10);
    client.set_high_water_mark(4 << 10);
    let (server_tx, server_rx) = server.split();
    let (client_tx, client_rx) = client.split();
    // Each end sends its messages and pings on one half while the other half receives.
    let server_sends = A::spawn(send_numbered(server_tx, "to client"));
    let client_sends = A::spawn(send_numbered(client_tx, "to server"));
    let server_receives = A::spawn(receive_numbered(server_rx, "to server"));
    let client_receives = A::spawn(receive_numbered(client_rx, "to client"));

    let (mut client_tx, client_pings) = client_sends.await;
    let (mut server_tx, server_pings) = server_sends.await;
    let (mut client_rx, pings_at_client, pongs_at_client) = client_receives.await;
    let (server_rx, pings_at_server, pongs_at_server) = server_receives.await;
    assert_eq!(pongs_at_client, client_pings, "every ping answered, in order");
    assert_eq!(pongs_at_server, server_pings, "every ping answered, in order");
    assert_eq!(pings_at_client, server_pings);
    assert_eq!(pings_at_server, client_pings);

    client_tx.close(CloseCode::NORMAL, "done").await.unwrap();
    let server_end = A::spawn(async move {
        let mut server_rx = server_rx;
        events_until_closed(&mut server_rx).await;
        server_rx.closed().unwrap()
    });
    let client_end = events_until_closed(&mut client_rx).await;
    assert!(
        matches!(client_end.last(), Some(Event::Closed(closed)) if closed.is_clean()),
        "{client_end:?}"
    );
    let server_closed = server_end.await;
    assert!(
        server_closed.is_clean() && server_closed.code() == CloseCode::NORMAL,
        "{server_closed:?}"
    );
    let late = server_tx.send_text("late").await;
    assert!(late.is_err(), "{late:?}");
}

/// The sending half closes while the receiving half waits for the peer, who never answers:
/// the close timeout the sender started must wake the receiver, which then ends.
async fn close_by_the_sending_half_times_out_on_the_receiving_half<A: Adapter>() {
    let close_timeout = Duration::from_millis(200);
    let short_close = Arc::new(config(|config| {
        config.close_timeout(close_timeout);
    }));
    let (server_end, mut mute) = A::pair();
    let frame = CloseFrame::new(CloseCode::GOING_AWAY, "shutting down");
    let server = A::spawn({
        let frame = frame.clone();
        async move {
            let (mut sender, receiver) = accept::<A>(server_end, short_close).await.split();
            let receiving = A::spawn(async move {
                let mut receiver = receiver;
                let start = A::now();
                events_until_closed(&mut receiver).await;
                (receiver.closed().unwrap(), A::now() - start)
            });
            // The receiving half is waiting for the peer before the close starts.
            A::yield_now().await;
            sender.close(frame.code, &frame.reason).await.unwrap();
            receiving.await
        }
    });
    raw_upgrade(&mut mute).await;
    let (closed, took) = server.await;
    assert_eq!(closed.reason, CloseReason::TimedOut(Timeout::Close));
    assert_eq!(closed.sent, Some(frame));
    assert!(took >= close_timeout, "gave up after {took:?}");
    let (frames, _) = parse_frames(&read_to_end(&mut mute).await);
    let [close] = &frames[..] else { panic!("{frames:?}") };
    assert_eq!(close.close_code_and_reason(), (1001, "shutting down"));
}

const MESSAGES: usize = 10_000;
/// Ten pings each way: even if every one lands in a single read, the core keeps a pong for
/// each (it keeps 16; past that only the latest pings must be answered, §5.5.2).
const PING_EVERY: usize = 1_000;

/// Sends `MESSAGES` numbered texts, with a ping after every `PING_EVERY`-th, and flushes;
/// returns the pings' payloads.
async fn send_numbered<T: Sender>(mut sender: T, prefix: &'static str) -> (T, Vec<Bytes>) {
    let mut pings = Vec::new();
    for i in 0..MESSAGES {
        sender.send_text(&format!("{prefix} {i}")).await.unwrap();
        if i % PING_EVERY == 0 {
            let payload = Bytes::from(format!("{prefix} ping {i}"));
            sender.ping(payload.clone()).await.unwrap();
            pings.push(payload);
        }
    }
    // A send returns with up to the high-water mark still queued.
    sender.flush().await.unwrap();
    (sender, pings)
}

/// Receives the peer's numbered texts in order and the pongs to our pings; returns the
/// pings and pongs that arrived.
async fn receive_numbered<R: Receiver>(mut receiver: R, prefix: &'static str) -> (R, Vec<Bytes>, Vec<Bytes>) {
    let (mut count, mut pings, mut pongs) = (0, Vec::new(), Vec::new());
    while count < MESSAGES || pongs.len() < MESSAGES / PING_EVERY {
        match receiver.recv().await.unwrap() {
            Some(Event::Message(message)) => {
                assert_eq!(message, Message::text(format!("{prefix} {count}")));
                count += 1;
            }
            Some(Event::Ping(payload)) => pings.push(payload),
            Some(Event::Pong(payload)) => pongs.push(payload),
            other => panic!("unexpected {other:?}"),
        }
    }
    (receiver, pings, pongs)
}

/// An echo loop over the whole connection answers the messages of one read with one write
/// (a vectored one), not a write per message.
async fn answers_to_one_read_go_out_in_one_write<A: Adapter>() {
    const COUNT: usize = 50;
    let (server_end, mut peer) = A::pair();
    let writes = server_end.write_counter();
    let server = A::spawn(async move { echo_until_closed(accept::<A>(server_end, Arc::default()).await).await });
    raw_upgrade(&mut peer).await;
    let before = writes.get();
    let texts: Vec<String> = (0..COUNT).map(|i| format!("message {i}")).collect();
    let burst: Vec<u8> = texts
        .iter()
        .flat_map(|text| client_frame(TEXT, text.as_bytes()))
        .collect();
    peer.write_all(&burst).await;
    let echoes = read_frames(&mut peer, COUNT).await;
    let answer_writes = writes.get() - before;
    for (echo, text) in echoes.iter().zip(&texts) {
        assert!(
            echo.fin && echo.opcode == TEXT && echo.payload == text.as_bytes(),
            "{echo:?}"
        );
    }
    assert!(
        (1..=COUNT / 10).contains(&answer_writes),
        "{answer_writes} writes for {COUNT} answers"
    );

    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    peer.write_all(&client_frame(CLOSE, &close)).await;
    // The server echoes and shuts its side down; then we close ours.
    let (frames, _) = parse_frames(&read_to_end(&mut peer).await);
    let [echo] = &frames[..] else { panic!("{frames:?}") };
    assert_eq!(echo.close_code_and_reason().0, 1000);
    drop(peer);
    assert!(server.await.is_clean());
}

/// Messages fed to a split sender with `Sink::feed` are written together at the flush.
async fn sender_half_batches_fed_messages<A: Adapter>()
where
    <A::Ws as Ws>::Tx: Sink<Message, Error = Error> + Unpin,
{
    const COUNT: usize = 50;
    let Connected {
        server,
        client,
        client_writes,
        ..
    } = connected::<A>(Config::default()).await;
    let server = A::spawn(async move {
        let mut server = server;
        let mut received = Vec::new();
        while let Some(message) = server.recv_message().await.unwrap() {
            received.push(message);
        }
        (received, server.closed().unwrap())
    });
    let (mut sender, mut receiver) = client.split();
    let before = client_writes.get();
    sender.send_text("one write per send").await.unwrap();
    assert!(client_writes.get() > before, "the counter sees the writes");

    let before = client_writes.get();
    let fed: Vec<Message> = (0..COUNT).map(|i| Message::text(format!("fed {i}"))).collect();
    for message in &fed {
        sender.feed(message.clone()).await.unwrap();
    }
    assert_eq!(client_writes.get(), before, "feed writes nothing within the mark");
    SinkExt::flush(&mut sender).await.unwrap();
    let flush_writes = client_writes.get() - before;
    assert!(
        (1..=COUNT / 10).contains(&flush_writes),
        "{flush_writes} writes for {COUNT} fed messages"
    );

    Sender::close(&mut sender, CloseCode::NORMAL, "done").await.unwrap();
    let events = events_until_closed(&mut receiver).await;
    assert!(
        matches!(events.last(), Some(Event::Closed(closed)) if closed.is_clean()),
        "{events:?}"
    );
    let (received, closed) = server.await;
    assert_eq!(received[0], Message::text("one write per send"));
    assert_eq!(received[1..], fed[..]);
    assert!(closed.is_clean());
}

/// A big message in the way: its tail and what follows it are still queued when the
/// connection ends, unless the peer has read them.
fn big_message() -> Message {
    Message::Binary(big_payload())
}

fn big_payload() -> Bytes {
    (0..2u32 << 20).map(|i| (i % 253) as u8).collect::<Vec<_>>().into()
}

/// A server that closes and drops its connection as soon as `recv` returns `Closed` leaves
/// the client with everything it sent: the message, the close frame, then the end.
async fn last_bytes_reach_the_peer_after_a_close<A: Adapter>() {
    let Connected { server, mut client, .. } = connected::<A>(Config::default()).await;
    let frame = CloseFrame::new(CloseCode::new(4001), "bye");
    let server = A::spawn({
        let frame = frame.clone();
        async move {
            let mut server = server;
            server.set_high_water_mark(16 << 20);
            server.send(big_message()).await.unwrap();
            server.close(frame.code, &frame.reason).await.unwrap();
            while !matches!(server.recv().await.unwrap(), Some(Event::Closed(_))) {}
            server.closed().unwrap()
            // Dropped at once.
        }
    });
    expect_message_then_close::<A>(&mut client, CloseFrame::clone(&frame)).await;
    let server_closed = server.await;
    assert!(server_closed.is_clean(), "{server_closed:?}");
}

/// A peer that sends its close frame and shuts its side down at once (reading on) ends the
/// connection while the server's big message is still queued, and the echo behind it. A
/// server that drops its connection as soon as `recv` returns `Closed` must still have
/// written both.
async fn last_bytes_reach_the_peer_behind_a_queued_message<A: Adapter>() {
    let (server_end, mut peer) = A::pair();
    let server = A::spawn(async move {
        let mut server = accept::<A>(server_end, Arc::default()).await;
        server.set_high_water_mark(16 << 20);
        server.send(big_message()).await.unwrap();
        while !matches!(server.recv().await.unwrap(), Some(Event::Closed(_))) {}
        server.closed().unwrap()
    });
    raw_upgrade(&mut peer).await;
    let mut close = 4002u16.to_be_bytes().to_vec();
    close.extend_from_slice("leaving ✓".as_bytes());
    peer.write_all(&client_frame(CLOSE, &close)).await;
    peer.shutdown_write().await;
    // Slowly: the server's writes must wait, with the end of our stream already there to
    // read.
    let bytes = read_to_end_by(&mut peer, 4 << 10).await;
    let (frames, used) = parse_frames(&bytes);
    assert_eq!(used, bytes.len(), "only whole frames");
    let [message, echo] = &frames[..] else {
        let kinds: Vec<_> = frames.iter().map(|frame| (frame.opcode, frame.payload.len())).collect();
        panic!(
            "expected the message and the close echo, got (opcode, length) {kinds:?} in {} bytes",
            bytes.len()
        )
    };
    assert!(
        message.fin && message.opcode == 0x2 && message.payload == big_payload(),
        "the message differs"
    );
    assert_eq!(echo.close_code_and_reason().0, 4002);
    let server_closed = server.await;
    assert_eq!(
        server_closed.received,
        Some(CloseFrame::new(CloseCode::new(4002), "leaving ✓"))
    );
}

/// The client's events: the big message, the server's close frame (its code, and `reason`
/// unless empty), then a clean end.
async fn expect_message_then_close<A: Adapter>(client: &mut A::Ws, frame: CloseFrame) {
    let events = events_until_closed(client).await;
    let [Event::Message(message), Event::CloseReceived(Some(received)), Event::Closed(closed)] = &events[..] else {
        let kinds: Vec<_> = events.iter().map(|event| format!("{event:.60?}")).collect();
        panic!("expected the message, the close frame and the end: {kinds:?}")
    };
    assert!(
        *message == big_message(),
        "the message differs ({} bytes)",
        message.len()
    );
    assert_eq!(received.code, frame.code);
    if !frame.reason.is_empty() {
        assert_eq!(received.reason, frame.reason);
    }
    assert!(closed.is_clean(), "{closed:?}");
    assert_eq!(closed.code(), frame.code);
}

async fn wss_round_trip_with_a_self_signed_certificate<A: Adapter>() {
    let tls = common::tls::self_signed();
    let (port, server) = A::tcp_server(Some(tls.server), Arc::new(Config::default()), harness::Serve::Echo);
    let (mut client, _) = A::connect(builder::<A>(&format!("wss://localhost:{port}/secure")).tls_config(tls.client))
        .await
        .unwrap();
    assert!(A::is_tls(&client));
    client.send_text("over TLS ✓").await.unwrap();
    assert_eq!(client.recv_message().await.unwrap(), Some(Message::text("over TLS ✓")));
    let payload = Bytes::from(vec![42; 1 << 20]);
    client.send(Message::Binary(payload.clone())).await.unwrap();
    assert!(client.recv_message().await.unwrap() == Some(Message::Binary(payload)));
    close_cleanly(&mut client).await;
    assert!(server.await.closed.is_clean());
}

async fn wss_refuses_an_untrusted_certificate<A: Adapter>() {
    // The default roots (webpki-roots) do not trust a self-signed certificate.
    let port = common::tls::handshake_only_server(common::tls::self_signed().server);
    let refused = A::connect(builder::<A>(&format!("wss://localhost:{port}/"))).await;
    let Err(Error::Transport(error)) = refused else {
        panic!("expected a TLS error: {:?}", refused.map(|(_, response)| response))
    };
    let tls_error = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
    assert!(
        matches!(tls_error, Some(rustls::Error::InvalidCertificate(_))),
        "{error:?}"
    );
}

async fn bad_url_is_reported<A: Adapter>() {
    for url in ["ws://[::1", "http://localhost/", "ws://"] {
        let result = A::connect(builder::<A>(url)).await;
        assert!(
            matches!(result, Err(Error::Url(_))),
            "{url}: {:?}",
            result.map(|(_, response)| response)
        );
    }
}
