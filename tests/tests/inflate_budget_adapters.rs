//! The inflation bound (`Config::max_waiting_size`) holds on every adapter: a client that
//! negotiated permessage-deflate with context takeover writes, without reading, 200
//! compressed messages that each inflate to 1 MiB (about 1 KiB each on the wire), and the
//! server process's heap stays within a few MiB while the adapter receives them all. Before
//! the bound, one read of that burst became as many MiB as messages it held (the issue
//! measured 260 MiB on the tokio and smol echo servers).
//!
//! The heap is measured by this binary's counting allocator (bytes live, sampled), so the
//! scenarios run one after another in one test.

use std::alloc::System;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use wsflow::{
    ClientEvent, ClientHandshake, ClientRequest, CloseCode, Config, Connection, DeflateConfig, Message, Transmit,
};

mod common;
#[path = "adapter_conformance/mod.rs"]
#[allow(dead_code)]
mod harness;

use harness::{accept, read_head, read_to_end, Adapter, Clock, PairStream, Receiver};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes live on the heap now.
fn live() -> usize {
    let stats = ALLOCATOR.stats();
    stats.bytes_allocated.saturating_sub(stats.bytes_deallocated)
}

/// The most bytes seen live while `sampling` is set, sampled every 100 microseconds (a
/// burst's events sit in the queue while the application pulls them one by one, far
/// longer than that).
fn sample_peak(sampling: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut peak = live();
        while sampling.load(Ordering::Relaxed) {
            peak = peak.max(live());
            std::thread::sleep(Duration::from_micros(100));
        }
        peak.max(live())
    })
}

const MIB: usize = 1 << 20;
const BOMBS: usize = 200;

fn deflating() -> Config {
    let mut config = Config::default();
    config.deflate(Some(DeflateConfig::default()));
    config
}

/// Upgrades `stream` with a sans-IO client (deflate offered) and returns the connection.
async fn upgraded_client(stream: &mut impl PairStream) -> Connection {
    let now = Instant::now();
    let request = ClientRequest::new("ws://test/").unwrap();
    // The densest bombs zlib makes: level 9, a 32 KiB window (about 1 KiB per MiB of zeros).
    let mut config = Config::default();
    config.deflate(Some(DeflateConfig::default().level(9).window_bits(15).clone()));
    let mut client = ClientHandshake::new(&request, Arc::new(config), now, [3; 32]).unwrap();
    while let Some(Transmit::Data(bytes)) = client.poll_transmit() {
        stream.write_all(&bytes).await;
    }
    let head = read_head(stream).await;
    assert!(head.contains("permessage-deflate"), "deflate not negotiated: {head}");
    client.handle_data(now, head.as_bytes());
    assert!(matches!(client.poll_event(), Some(ClientEvent::Accepted(_))));
    client.into_connection(now).unwrap()
}

fn transmitted(connection: &mut Connection) -> Vec<u8> {
    let mut wire = Vec::new();
    while let Some(Transmit::Data(bytes)) = connection.poll_transmit() {
        wire.extend_from_slice(&bytes);
    }
    wire
}

/// Returns the peak heap growth while the server received the burst.
fn peak_while_receiving_bombs<A: Adapter>() -> usize {
    let peak = Arc::new(AtomicUsize::new(0));
    let result = peak.clone();
    A::run(Clock::Real, async move {
        let (server_end, mut client_end) = A::pair();
        let server = A::spawn(async move {
            let mut websocket = accept::<A>(server_end, Arc::new(deflating())).await;
            let mut received = 0;
            while let Some(message) = websocket.recv_message().await.unwrap() {
                assert_eq!(message.len(), MIB);
                received += 1;
            }
            (received, websocket.closed().unwrap())
        });
        let mut client = upgraded_client(&mut client_end).await;
        let bomb = Message::binary(Bytes::from(vec![0u8; MIB]));
        for _ in 0..BOMBS {
            client.send(bomb.clone()).unwrap();
        }
        let wire = transmitted(&mut client);
        assert!(wire.len() < BOMBS * 2048, "{} bytes on the wire", wire.len());
        drop(bomb);
        client.close(Instant::now(), CloseCode::NORMAL, "done").unwrap();
        let close = transmitted(&mut client);

        let before = live();
        let sampling = Arc::new(AtomicBool::new(true));
        let sampler = sample_peak(sampling.clone());
        client_end.write_all(&wire).await;
        client_end.write_all(&close).await;
        client_end.shutdown_write().await;
        let (received, closed) = server.await;
        sampling.store(false, Ordering::Relaxed);
        peak.store(sampler.join().unwrap().saturating_sub(before), Ordering::Relaxed);

        assert_eq!(received, BOMBS);
        assert_eq!(closed.code(), CloseCode::NORMAL);
        client.handle_data(Instant::now(), &read_to_end(&mut client_end).await);
    });
    result.load(Ordering::Relaxed)
}

#[test]
fn a_burst_of_deflate_bombs_stays_within_a_few_mib_on_every_adapter() {
    // One message being pulled, the budget, the read buffer and the compressor and
    // inflater state of both ends; without the bound: tens of MiB per read.
    let bound = 16 * MIB;
    let peaks = [
        ("tokio", peak_while_receiving_bombs::<harness::tokio::Tokio>()),
        ("smol", peak_while_receiving_bombs::<harness::smol::Smol>()),
        ("blocking", peak_while_receiving_bombs::<harness::blocking::Blocking>()),
    ];
    for (adapter, peak) in peaks {
        eprintln!("{adapter}: peak heap growth {:.1} MiB", peak as f64 / MIB as f64);
    }
    for (adapter, peak) in peaks {
        assert!(
            peak < bound,
            "{adapter}: the heap grew by {peak} bytes receiving the burst"
        );
    }
}
