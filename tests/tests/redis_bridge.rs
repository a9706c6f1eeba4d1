//! `wsflow-redis` against a real `redis-server` (Debian's, started here on a loopback port):
//! two bridges (as two server processes would run them) share a room; Redis killed and
//! restarted: both keep serving their local subscribers, what could not cross is counted,
//! and cross-process delivery resumes; garbage published on a bridged channel is dropped
//! and counted, never delivered.
//!
//! Needs `redis-server` on the PATH (tests/services/setup.sh installs it). Without it the
//! test is skipped with a message, except under CI (`CI` set), where it fails.

use std::net::TcpListener;
use std::time::Duration;

use wsflow_io::hub::{Delivery, Hub, Subscriber};
use wsflow_io::{Message, PreparedMessage};
use wsflow_redis::{BridgeConfig, RedisBridge};

mod common;

use common::redis::RedisServer;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn config() -> BridgeConfig {
    BridgeConfig {
        prefix: "test:".into(),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        ..BridgeConfig::default()
    }
}

/// A subscriber to "room" and the messages of its last batch not looked at yet.
struct Member {
    subscriber: Subscriber,
    batch: Vec<PreparedMessage>,
}

fn room(hub: &Hub) -> Member {
    let subscriber = hub.subscriber();
    subscriber.subscribe("room");
    Member {
        subscriber,
        batch: Vec::new(),
    }
}

/// The next message for `member`, within `wait`.
async fn next_within(member: &mut Member, wait: Duration) -> Option<Message> {
    if member.batch.is_empty() {
        let delivery = tokio::time::timeout(wait, member.subscriber.next_batch(&mut member.batch)).await;
        match delivery {
            Ok(Delivery::Messages { .. }) => member.batch.reverse(),
            Err(_) => return None,
            Ok(other) => panic!("{other:?}"),
        }
    }
    member.batch.pop().map(|prepared| prepared.message().clone())
}

async fn next(member: &mut Member) -> Message {
    next_within(member, Duration::from_secs(5))
        .await
        .expect("a message within 5 s")
}

async fn nothing_for(member: &mut Member, wait: Duration) {
    let got = next_within(member, wait).await;
    assert!(got.is_none(), "unexpected {got:?}");
}

#[test]
fn two_processes_share_a_room_through_redis_and_survive_its_restart() {
    let port = free_port();
    let Some(redis) = RedisServer::start(port) else { return };
    common::within("redis", move || {
        common::tokio_block_on_multi(async move {
            let mut redis = redis;
            let (hub_a, hub_b) = (Hub::default(), Hub::default());
            let a = RedisBridge::start(hub_a.clone(), &redis.url(), config()).unwrap();
            let b = RedisBridge::start(hub_b.clone(), &redis.url(), config()).unwrap();
            assert!(a.wait_subscribed(Duration::from_secs(5)).await && b.wait_subscribed(Duration::from_secs(5)).await);
            let (mut alice, mut bob) = (room(&hub_a), room(&hub_b));

            for i in 0..20 {
                a.publish("room", Message::text(format!("a{i}")));
            }
            for i in 0..20 {
                let expected = Message::text(format!("a{i}"));
                assert_eq!(next(&mut alice).await, expected, "local delivery");
                assert_eq!(next(&mut bob).await, expected, "through Redis, in order");
            }
            b.publish("room", Message::binary(vec![1u8, 2, 3]));
            assert_eq!(next(&mut bob).await, Message::binary(vec![1u8, 2, 3]));
            assert_eq!(next(&mut alice).await, Message::binary(vec![1u8, 2, 3]));
            nothing_for(&mut alice, Duration::from_millis(200)).await; // no echo of its own

            // Redis goes away: local delivery goes on, what could not cross is counted.
            drop(std::mem::replace(&mut redis, RedisServer::none()));
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(!a.is_subscribed() && !b.is_subscribed());
            a.publish("room", Message::text("while Redis is down"));
            assert_eq!(next(&mut alice).await, Message::text("while Redis is down"));
            nothing_for(&mut bob, Duration::from_millis(300)).await;

            // Redis is back on the same port: both resubscribe and delivery resumes.
            redis = RedisServer::start(port).unwrap();
            assert!(a.wait_subscribed(Duration::from_secs(10)).await, "a resubscribed");
            assert!(b.wait_subscribed(Duration::from_secs(10)).await, "b resubscribed");
            // The sender reconnects at its next publish after the backoff.
            let mut crossed = false;
            for attempt in 0..40 {
                b.publish("room", Message::text(format!("after restart {attempt}")));
                assert_eq!(next(&mut bob).await, Message::text(format!("after restart {attempt}")));
                if next_within(&mut alice, Duration::from_millis(100)).await.is_some() {
                    crossed = true;
                    break;
                }
            }
            assert!(crossed, "cross-process delivery resumed");
            let stats = a.stats();
            assert!(stats.lost_outgoing >= 1 && stats.disconnects >= 1, "{stats:?}");
            assert!(b.stats().received >= 20, "{:?}", b.stats());
            drop(redis);
        });
    });
}

#[test]
fn garbage_on_a_bridged_channel_is_dropped_and_counted() {
    let port = free_port();
    let Some(redis) = RedisServer::start(port) else { return };
    common::within("redis garbage", move || {
        common::tokio_block_on_multi(async move {
            let hub = Hub::default();
            let bridge = RedisBridge::start(hub.clone(), &redis.url(), config()).unwrap();
            assert!(bridge.wait_subscribed(Duration::from_secs(5)).await);
            let mut listener = room(&hub);
            let client = wsflow_redis::redis::Client::open(redis.url()).unwrap();
            let mut connection = client.get_multiplexed_async_connection().await.unwrap();
            let mut invalid_utf8 = b"WSF1t".to_vec();
            invalid_utf8.extend_from_slice(&[7u8; 16]);
            invalid_utf8.extend_from_slice(&[0xff, 0xfe]);
            let too_big = [b"WSF1b".as_slice(), &[7u8; 16], &vec![0u8; 17 << 20]].concat();
            for payload in [
                b"".to_vec(),
                b"hello".to_vec(),
                b"WSF1x".to_vec(),
                invalid_utf8,
                too_big,
            ] {
                wsflow_redis::redis::cmd("PUBLISH")
                    .arg("test:room")
                    .arg(payload)
                    .query_async::<()>(&mut connection)
                    .await
                    .unwrap();
            }
            let mut valid = b"WSF1t".to_vec();
            valid.extend_from_slice(&[7u8; 16]);
            valid.extend_from_slice("from another process ✓".as_bytes());
            wsflow_redis::redis::cmd("PUBLISH")
                .arg("test:room")
                .arg(valid)
                .query_async::<()>(&mut connection)
                .await
                .unwrap();
            assert_eq!(next(&mut listener).await, Message::text("from another process ✓"));
            assert_eq!(bridge.stats().malformed, 5);
            drop(redis);
        });
    });
}
