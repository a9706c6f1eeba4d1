//! The broadcast hub (`wsflow_io::hub`) and prepared messages end to end: 1,000 subscribers
//! get every message in order; each slow-consumer policy does what it says and the others
//! are not slowed; nothing arrives after unsubscribing; over real sockets (the tokio
//! broadcast-server example) deflate and plain members decode the same broadcast, a member
//! that stops reading is closed as too slow while the rest get everything; and the hub
//! works from smol and from the blocking adapter.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use wsflow_io::hub::{Delivery, Hub, HubConfig, SlowConsumer};
use wsflow_io::{Message, PreparedMessage};

mod common;

#[allow(dead_code, unreachable_pub)]
#[path = "../../adapters/tokio/examples/broadcast-server.rs"]
mod broadcast_server;

fn line(i: usize) -> Message {
    Message::text(format!("line {i}"))
}

#[test]
fn a_thousand_subscribers_get_every_message_in_order() {
    common::within("thousand", || {
        common::tokio_block_on_multi(async {
            let hub = Hub::new(HubConfig {
                queue_len: 4096,
                slow_consumer: SlowConsumer::Close,
                ..HubConfig::default()
            });
            let readers: Vec<_> = (0..1000)
                .map(|_| {
                    let subscriber = hub.subscriber();
                    subscriber.subscribe("room");
                    tokio::spawn(async move {
                        let (mut got, mut batch) = (Vec::new(), Vec::new());
                        while let Delivery::Messages { dropped } = subscriber.next_batch(&mut batch).await {
                            assert_eq!(dropped, 0);
                            got.extend(batch.drain(..).map(|prepared| prepared.message().clone()));
                            if got.len() == 500 {
                                break;
                            }
                        }
                        got
                    })
                })
                .collect();
            for i in 0..500 {
                assert_eq!(hub.publish("room", line(i)).queued, 1000);
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            let expected: Vec<Message> = (0..500).map(line).collect();
            for reader in readers {
                assert_eq!(reader.await.unwrap(), expected);
            }
            let stats = hub.stats();
            assert_eq!((stats.published, stats.queued), (500, 500_000));
        });
    });
}

fn full_queue(policy: SlowConsumer) -> (Hub, wsflow_io::hub::Subscriber, wsflow_io::hub::Subscriber) {
    let hub = Hub::new(HubConfig {
        queue_len: 3,
        slow_consumer: policy,
        ..HubConfig::default()
    });
    let (slow, fast) = (hub.subscriber(), hub.subscriber());
    slow.subscribe("room");
    fast.subscribe("room");
    (hub, slow, fast)
}

fn texts(batch: &[PreparedMessage]) -> Vec<Message> {
    batch.iter().map(|prepared| prepared.message().clone()).collect()
}

#[test]
fn drop_oldest_keeps_the_latest_and_says_how_many_were_lost() {
    let (hub, slow, fast) = full_queue(SlowConsumer::DropOldest);
    let mut batch = Vec::new();
    for i in 0..5 {
        hub.publish("room", line(i));
        assert!(fast.try_batch(&mut batch).is_some());
    }
    assert_eq!(batch.len(), 5, "the fast subscriber got everything");
    batch.clear();
    assert_eq!(slow.try_batch(&mut batch), Some(Delivery::Messages { dropped: 2 }));
    assert_eq!(texts(&batch), [line(2), line(3), line(4)]);
    assert_eq!(hub.stats().dropped_oldest, 2);
}

#[test]
fn skip_keeps_what_was_queued_and_misses_the_rest() {
    let (hub, slow, _fast) = full_queue(SlowConsumer::Skip);
    for i in 0..5 {
        hub.publish("room", line(i));
    }
    let mut batch = Vec::new();
    assert_eq!(slow.try_batch(&mut batch), Some(Delivery::Messages { dropped: 2 }));
    assert_eq!(texts(&batch), [line(0), line(1), line(2)]);
    assert_eq!(hub.stats().skipped, 4, "two for each of the two full subscribers");
}

#[test]
fn close_unsubscribes_the_slow_one_everywhere() {
    let (hub, slow, fast) = full_queue(SlowConsumer::Close);
    slow.subscribe("other");
    let mut batch = Vec::new();
    for i in 0..4 {
        let published = hub.publish("room", line(i));
        assert_eq!(published.closed, usize::from(i == 3));
        fast.try_batch(&mut batch);
    }
    assert_eq!(batch.len(), 4);
    assert_eq!(slow.try_batch(&mut Vec::new()), Some(Delivery::TooSlow));
    assert_eq!(hub.subscriber_count("room"), 1);
    assert_eq!(hub.subscriber_count("other"), 0);
    assert_eq!(hub.stats().closed_too_slow, 1);
}

/// A hub whose subscribers may hold 1,000 bytes (and any number of messages), `slow` and
/// `fast` in "room".
fn byte_budget(policy: SlowConsumer) -> (Hub, wsflow_io::hub::Subscriber, wsflow_io::hub::Subscriber) {
    let hub = Hub::new(HubConfig {
        queue_len: 1000,
        queue_bytes: 1000,
        slow_consumer: policy,
    });
    let (slow, fast) = (hub.subscriber(), hub.subscriber());
    slow.subscribe("room");
    fast.subscribe("room");
    (hub, slow, fast)
}

fn sized(byte: u8, len: usize) -> Message {
    Message::binary(vec![byte; len])
}

#[test]
fn the_byte_budget_fills_a_queue_as_its_length_does() {
    // Close: 400 + 400 fit, 400 more would pass 1,000 bytes.
    let (hub, slow, fast) = byte_budget(SlowConsumer::Close);
    let mut batch = Vec::new();
    for i in 0..3 {
        let published = hub.publish("room", sized(i, 400));
        assert_eq!(published.closed, usize::from(i == 2), "publish {i}");
        fast.try_batch(&mut batch);
    }
    assert_eq!(batch.len(), 3, "the reading subscriber got all three");
    assert_eq!(slow.try_batch(&mut Vec::new()), Some(Delivery::TooSlow));

    // Skip: the queue keeps what fits; a message larger than the budget still goes into an
    // empty queue (once taken, the queue is empty again).
    let (hub, slow, _fast) = byte_budget(SlowConsumer::Skip);
    for i in 0..3 {
        hub.publish("room", sized(i, 400));
    }
    let mut batch = Vec::new();
    assert_eq!(slow.try_batch(&mut batch), Some(Delivery::Messages { dropped: 1 }));
    assert_eq!(texts(&batch), [sized(0, 400), sized(1, 400)]);
    // The other subscriber still holds 800 bytes: it skips it.
    assert_eq!(hub.publish("room", sized(9, 5000)).queued, 1);
    batch.clear();
    assert_eq!(slow.try_batch(&mut batch), Some(Delivery::Messages { dropped: 0 }));
    assert_eq!(texts(&batch), [sized(9, 5000)]);

    // DropOldest: a large message drops as many of the oldest as it needs room for.
    let (hub, slow, _fast) = byte_budget(SlowConsumer::DropOldest);
    for i in 0..4 {
        hub.publish("room", sized(i, 250));
    }
    let published = hub.publish("room", sized(7, 600));
    assert_eq!(
        (published.queued, published.dropped_oldest),
        (2, 6),
        "three for each subscriber"
    );
    let mut batch = Vec::new();
    assert_eq!(slow.try_batch(&mut batch), Some(Delivery::Messages { dropped: 3 }));
    assert_eq!(texts(&batch), [sized(3, 250), sized(7, 600)]);
    assert_eq!(hub.stats().dropped_oldest, 6, "three for each of the two subscribers");
}

#[test]
fn nothing_arrives_after_unsubscribe_or_close() {
    let hub = Hub::default();
    let subscriber = hub.subscriber();
    subscriber.subscribe("a");
    subscriber.subscribe("b");
    hub.publish("a", line(0));
    subscriber.unsubscribe("a");
    hub.publish("a", line(1));
    hub.publish("b", line(2));
    let mut batch = Vec::new();
    subscriber.try_batch(&mut batch);
    assert_eq!(texts(&batch), [line(0), line(2)]);
    subscriber.close();
    assert_eq!(hub.publish("b", line(3)).queued, 0);
    assert_eq!(subscriber.try_batch(&mut batch), Some(Delivery::Closed));
    let other = subscriber.clone();
    drop(subscriber);
    assert_eq!(other.topics(), Vec::<String>::new());
}

async fn start_broadcast_server(deflate: bool) -> String {
    start_broadcast_server_with(broadcast_server::config(deflate)).await
}

async fn start_broadcast_server_with(config: Arc<wsflow_io::Config>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(broadcast_server::serve(listener, config));
    url
}

async fn member(url: &str, deflate: bool) -> wsflow_tokio::WebSocket<wsflow_tokio::MaybeTlsStream> {
    let mut builder = wsflow_tokio::ClientBuilder::new(url);
    if deflate {
        builder = builder.config(common::deflate_config());
    }
    let (websocket, response) = builder.connect().await.unwrap();
    let extensions = response.headers().get("sec-websocket-extensions").unwrap_or_default();
    assert_eq!(
        extensions.contains("server_no_context_takeover"),
        deflate,
        "{extensions:?}"
    );
    websocket
}

#[test]
fn deflate_and_plain_members_decode_the_same_broadcast() {
    common::within("mixed", || {
        common::tokio_block_on_multi(async {
            let url = start_broadcast_server(true).await;
            let mut members = Vec::new();
            for i in 0..20 {
                members.push(member(&url, i % 2 == 0).await);
            }
            // Everyone is in the room once a message from the last one reaches the first.
            members[19].send_text("ready").await.unwrap();
            for member in &mut members {
                assert_eq!(member.recv_message().await.unwrap(), Some(Message::text("ready")));
            }
            let sent: Vec<Message> = (0..30)
                .map(|i| match i % 3 {
                    0 => Message::text(format!(r#"{{"seq":{i},"text":"hello everyone, hello"}}"#)),
                    1 => Message::binary(Bytes::from(vec![i as u8; 10_000])),
                    _ => Message::text(""),
                })
                .collect();
            for message in &sent {
                members[3].send(message.clone()).await.unwrap();
            }
            for member in &mut members {
                for message in &sent {
                    assert_eq!(member.recv_message().await.unwrap().as_ref(), Some(message));
                }
            }
        });
    });
}

#[test]
fn a_member_that_stops_reading_is_closed_and_does_not_slow_the_others() {
    common::within("slow member", || {
        common::tokio_block_on_multi(async {
            // A short close timeout: the server drops a member that reads nothing, not even
            // its close frame, a second after giving up on it.
            let mut config = (*broadcast_server::config(false)).clone();
            config.close_timeout(Duration::from_secs(1));
            let url = start_broadcast_server_with(Arc::new(config)).await;
            let mut slow = member(&url, false).await;
            let mut others = Vec::new();
            for _ in 0..10 {
                others.push(member(&url, false).await);
            }
            others[9].send_text("ready").await.unwrap();
            assert_eq!(slow.recv_message().await.unwrap(), Some(Message::text("ready")));
            for other in &mut others {
                assert_eq!(other.recv_message().await.unwrap(), Some(Message::text("ready")));
            }
            // The slow member reads nothing more: 4,000 messages of 4 KiB (16 MiB) pass its
            // socket buffers, the 1 MiB high-water mark and its 1,024-message queue. Every
            // other member (the publisher too) reads all of them meanwhile; the publisher
            // keeps at most 256 messages ahead of the slowest reader among them, so that a
            // loaded machine cannot make them too slow as well.
            let (mut publisher, publisher_receiver) = others.remove(0).split();
            let received: Arc<Vec<std::sync::atomic::AtomicUsize>> =
                Arc::new((0..10).map(|_| std::sync::atomic::AtomicUsize::new(0)).collect());
            let mut receivers: Vec<_> = others.into_iter().map(|other| other.split()).collect();
            let mut readers = Vec::new();
            for (index, (sender, mut receiver)) in receivers.drain(..).enumerate() {
                let received = received.clone();
                readers.push(tokio::spawn(async move {
                    for _ in 0..4000 {
                        let message = tokio::time::timeout(Duration::from_secs(30), receiver.recv_message()).await;
                        assert_eq!(message.unwrap().unwrap().map(|m| m.len()), Some(4096));
                        received[index].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    drop(sender);
                }));
            }
            let publisher_received = received.clone();
            readers.push(tokio::spawn(async move {
                let mut receiver = publisher_receiver;
                for _ in 0..4000 {
                    assert!(receiver.recv_message().await.unwrap().is_some());
                    publisher_received[9].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }));
            let payload = Bytes::from(vec![b'x'; 4096]);
            for sent in 0..4000 {
                publisher.send_binary(payload.clone()).await.unwrap();
                let slowest = || {
                    received
                        .iter()
                        .map(|count| count.load(std::sync::atomic::Ordering::Relaxed))
                        .min()
                };
                while sent >= 256 + slowest().unwrap_or(0) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            for reader in readers {
                reader.await.unwrap();
            }
            // The server gave up on the slow member at once (not when it would read
            // again): its close frame could not be written, and after the close timeout the
            // connection was dropped. Reading now finds the end without a close frame.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let ended = loop {
                match slow.recv().await {
                    Ok(Some(wsflow_tokio::Event::Closed(closed))) => break closed.received.is_none(),
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("no Closed"),
                    Err(_) => break true,
                }
            };
            assert!(ended, "the stuck member was dropped, not served when it read again");
        });
    });
}

#[test]
fn smol_writers_forward_a_hub() {
    common::within("smol hub", || {
        smol::block_on(async {
            let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("ws://{}/", listener.local_addr().unwrap());
            let hub = Hub::default();
            let server_hub = hub.clone();
            let server = smol::spawn(async move {
                let (tcp, _) = listener.accept().await.unwrap();
                let websocket = wsflow_smol::accept(tcp).await.unwrap();
                let subscriber = server_hub.subscriber();
                subscriber.subscribe("feed");
                let (mut sender, _receiver) = websocket.split();
                sender.forward(&subscriber, |_| None).await
            });
            let (mut client, _) = wsflow_smol::connect(&url).await.unwrap();
            while hub.subscriber_count("feed") == 0 {
                smol::Timer::after(Duration::from_millis(5)).await;
            }
            for i in 0..100 {
                hub.publish("feed", line(i));
            }
            for i in 0..100 {
                assert_eq!(client.recv_message().await.unwrap(), Some(line(i)));
            }
            drop(client);
            drop(server);
        });
    });
}

#[test]
fn the_blocking_adapter_sends_what_a_hub_delivers() {
    common::within("blocking hub", || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let hub = Hub::default();
        let subscriber = hub.subscriber();
        subscriber.subscribe("feed");
        let closer = subscriber.clone();
        let writer = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let mut websocket = wsflow_blocking::accept(tcp).unwrap();
            let mut batch = Vec::new();
            while let Some(Delivery::Messages { .. }) = subscriber.next_batch_blocking(&mut batch, None) {
                for prepared in batch.drain(..) {
                    websocket.send_prepared(&prepared).unwrap();
                }
            }
            websocket.close(wsflow_blocking::CloseCode::NORMAL, "").unwrap();
        });
        let (mut client, _) = wsflow_blocking::connect(&url).unwrap();
        let prepared = PreparedMessage::new(Message::binary(vec![9u8; 100_000]));
        for _ in 0..10 {
            hub.publish_prepared("feed", &prepared);
        }
        for _ in 0..10 {
            assert_eq!(client.recv_message().unwrap().as_ref(), Some(prepared.message()));
        }
        closer.close();
        assert_eq!(
            client.recv_message().unwrap(),
            None,
            "the server closed once its subscriber ended"
        );
        writer.join().unwrap();
    });
}

/// A one-task member (`recv_forwarding`) whose writes keep going over its high-water mark
/// (a mark of one byte: every batch passes it until written) still takes every message the
/// hub queues while it writes: the last of a burst is not left in the hub until something
/// else wakes the task.
#[test]
fn a_one_task_member_over_its_mark_still_takes_the_last_message_of_a_burst() {
    common::within("recv_forwarding over the mark", || {
        common::tokio_block_on_multi(async {
            let hub = Hub::new(HubConfig {
                queue_len: 100_000,
                ..HubConfig::default()
            });
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("ws://{}/", listener.local_addr().unwrap());
            let member_hub = hub.clone();
            tokio::spawn(async move {
                let (tcp, _) = listener.accept().await.unwrap();
                let mut websocket = wsflow_tokio::accept(tcp).await.unwrap();
                websocket.set_high_water_mark(1);
                let subscriber = member_hub.subscriber();
                subscriber.subscribe("room");
                websocket.send_text("subscribed").await.unwrap();
                while let Ok(Some(_)) = websocket.recv_forwarding(&subscriber, |_| None).await {}
            });
            let (mut client, _) = wsflow_tokio::ClientBuilder::new(&url).connect().await.unwrap();
            assert_eq!(client.recv_message().await.unwrap(), Some(Message::text("subscribed")));
            for round in 0..20 {
                let payload = Bytes::from(vec![round as u8; 32 << 10]);
                for n in 0..50 {
                    hub.publish("room", Message::binary(payload.clone()));
                    if n % 7 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                for n in 0..50 {
                    let message = tokio::time::timeout(Duration::from_secs(5), client.recv_message()).await;
                    let message =
                        message.unwrap_or_else(|_| panic!("round {round}: message {n} of 50 stuck in the hub"));
                    assert_eq!(message.unwrap().map(|m| m.len()), Some(32 << 10));
                }
            }
        });
    });
}
